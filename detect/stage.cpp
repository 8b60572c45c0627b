// Anchors the dm_detect archive while the stage has no other sources.
namespace deepmem { const char* stage_detect() { return "detect"; } }
