// Anchors the dm_graph archive while the stage has no other sources.
namespace deepmem { const char* stage_graph() { return "graph"; } }
