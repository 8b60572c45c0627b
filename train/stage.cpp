// Anchors the dm_train archive while the stage has no other sources.
namespace deepmem { const char* stage_train() { return "train"; } }
