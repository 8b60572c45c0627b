// Anchors the dm_engine archive while the stage has no other sources.
namespace deepmem { const char* stage_engine() { return "engine"; } }
