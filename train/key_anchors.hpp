// Key nodes anchored at fields (issue #9 item 5): a model's key node is a byte range of its
// object type in the layout of the builds it was trained on; on a build that moved the fields
// (another kernel version, PREEMPT_RT's larger locks) the same segment starts elsewhere and the
// key node votes for a base that is no object. Naming the range by the struct members it starts
// and ends in, and placing it again with the dump's own BTF (train/kernel_from_dump.hpp), keeps
// the votes on the object's base.
//
// Contract
//   flat_members   The leaves of a struct in the BTF (train/btf.hpp): every member that is not
//                  itself a struct or union, by dotted path from the struct ("se.run_node.rb_left";
//                  anonymous structs and unions add no name, as in C), array elements of struct
//                  type as "name[i]" (arrays of at most kMaxArrayElements; larger arrays and arrays
//                  of scalars are one leaf). Byte offset from the struct's start and byte size (a
//                  bitfield: the bytes it touches); `pointer` when the member is a pointer. In
//                  declaration order, so overlapping union members keep the compiler's order.
//                  InputError when the struct is not in the BTF; FormatError from a malformed BTF,
//                  and past 65,536 leaves or 2^20 members visited (a crafted BTF of nested arrays of
//                  empty structs would otherwise visit 64^32 members).
//   anchor_key_node  Where key node k lies in one build's layout: its first byte in the first
//                  leaf (declaration order) that holds it, and its end (offset + length) likewise,
//                  or at the struct's end ("" with delta 0); an open-ended key node has no end.
//                  nullopt when a byte lies in no leaf (padding, or past the struct).
//   choose_anchors A model trained on several builds: per key node, the builds whose layout shows
//                  the segment as the memory graph cuts it best (a pointer member ends right before
//                  its start, one begins at its end: graph/memory_graph.hpp Segment) are those its
//                  class was learned from; their distinct readings (anchor_key_node), the most
//                  common first (ties: the first layout's), at most KeyNode::kMaxAnchors. A class
//                  learned from different members in different builds (a model of rt and non-rt
//                  layouts) has several.
//   place_key_node The key node in another layout by one reading: start and end placed at their
//                  leaves' offsets there plus the same deltas (delta within the leaf's size);
//                  nullopt when a leaf is gone, a delta does not fit it, or the placed range is
//                  empty or out of order.
//                  Open-ended key nodes keep their length. Offsets and lengths are bytes.
//   Where used     dmtrain anchors a model's key nodes in the layouts of the builds it was trained on
//                  (the train and validation dumps' kernels; `dmtrain --anchor` for a model made
//                  before format 8); dmdetect places them by the dump's BTF when the model does not
//                  fit the dump as trained or finds nothing there (detect/fit.hpp), runs it again and
//                  says so in the model's fit reason (with its threshold scaled to the key-node weight
//                  that still votes there, detect/fit.hpp Placed threshold, and run a third time); a model that fits as trained is never moved
//                  (the dump's BTF is memory the suspect's kernel controls). Measured:
//                  data/models/README.md.
#pragma once

#include "engine/engine.hpp"
#include "train/btf.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace deepmem {

struct MemberLeaf {
    std::string path;
    uint64_t offset = 0, size = 0;   // bytes
    bool pointer = false;
};
inline constexpr uint32_t kMaxArrayElements = 64;

struct StructLayout {
    std::string name;
    uint64_t size = 0;                // sizeof, bytes
    std::vector<MemberLeaf> leaves;   // declaration order
};
StructLayout flat_members(const btf::Btf&, std::string_view struct_name);

std::optional<KeyAnchor> anchor_key_node(const StructLayout&, const KeyNode&);   // one layout's reading
// The readings of each key node (none where no layout holds it); `layouts` are the training
// builds' layouts of the model's type, `word` the graph's word size in bytes.
std::vector<std::vector<KeyAnchor>> choose_anchors(std::span<const StructLayout> layouts,
                                                     std::span<const KeyNode> keys, uint32_t word);
std::optional<KeyNode> place_key_node(const StructLayout&, const KeyNode&, const KeyAnchor&);

// Sets the anchors of every key node from `layouts` (the builds the model was trained on), by
// choose_anchors; returns how many key nodes have some. InputError for a joint model (its key
// nodes are of several types) or a layout of another struct than its type.
size_t anchor_model(Model&, std::span<const StructLayout> layouts);

// Places each anchored key node of `model` in `layout`: where one of its readings puts it at its
// trained offset and length, the dump's layout is one it was learned from and it stays; else it
// moves where its first reading that places (place_key_node) puts it; one no reading places, or
// without anchors, keeps its trained range. Classes, weights, thresholds and anchors are
// unchanged. InputError for a layout of another struct than its type.
struct Placement {
    size_t anchored = 0, moved = 0, unplaced = 0;   // of model.key_nodes
    std::string text() const;   // "12 of 20 key nodes moved, 1 not placed"
};
Placement place_model(Model&, const StructLayout& layout);

}  // namespace deepmem
