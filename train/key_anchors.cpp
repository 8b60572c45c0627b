#include "train/key_anchors.hpp"

#include "graph/errors.hpp"

#include <algorithm>

namespace deepmem {
namespace {

constexpr unsigned kMaxDepth = 32;     // nesting of named and anonymous members
constexpr size_t kMaxLeaves = 1 << 16; // task_struct has about 1,500
constexpr size_t kMaxVisits = 1 << 20; // members visited: arrays of empty structs make no leaf
constexpr size_t kMaxPathBytes = 4096;

void flatten(const btf::Btf& btf, uint32_t id, uint64_t base, const std::string& prefix, unsigned depth,
             std::vector<MemberLeaf>& out, size_t& visits) {
    if (depth > kMaxDepth) throw FormatError(btf.type(id).blob_offset, "struct nesting deeper than 32");
    const btf::Type& t = btf.type(btf.resolve(id));
    for (const btf::Member& m : t.members) {
        if (out.size() >= kMaxLeaves || ++visits > kMaxVisits)
            throw FormatError(t.blob_offset, "more than 65,536 members, or 2^20 visited, in one struct");
        const uint64_t at = base + m.bit_offset / 8;
        const std::string name = m.name.empty() ? prefix : prefix.empty() ? std::string(m.name) : prefix + "." + std::string(m.name);
        if (name.size() > kMaxPathBytes) throw FormatError(t.blob_offset, "a member path longer than 4096 bytes");
        const uint32_t r = btf.resolve(m.type);
        const btf::Type& mt = btf.type(r);
        if (mt.kind == btf::Kind::Struct || mt.kind == btf::Kind::Union) {
            flatten(btf, r, at, name, depth + 1, out, visits);
            continue;
        }
        if (mt.kind == btf::Kind::Array && mt.nelems > 0 && mt.nelems <= kMaxArrayElements) {
            const uint32_t e = btf.resolve(mt.ref);
            const btf::Kind ek = btf.type(e).kind;
            if (ek == btf::Kind::Struct || ek == btf::Kind::Union) {
                const uint64_t stride = btf.size_of(e);
                for (uint32_t i = 0; i < mt.nelems; ++i)
                    flatten(btf, e, at + i * stride, name + "[" + std::to_string(i) + "]", depth + 1, out, visits);
                continue;
            }
        }
        MemberLeaf leaf;
        leaf.path = name;
        leaf.offset = at;
        if (m.bitfield_size) {
            const uint64_t first = m.bit_offset / 8, last = (m.bit_offset + m.bitfield_size - 1) / 8;
            leaf.offset = base + first;
            leaf.size = last - first + 1;
        } else {
            leaf.size = mt.kind == btf::Kind::FuncProto ? 0 : btf.size_of(r);
        }
        leaf.pointer = mt.kind == btf::Kind::Ptr;
        if (leaf.size) out.push_back(std::move(leaf));
    }
}

// The first leaf (declaration order) holding byte `at`.
const MemberLeaf* leaf_at(const StructLayout& s, uint64_t at) {
    for (const MemberLeaf& l : s.leaves)
        if (at >= l.offset && at - l.offset < l.size) return &l;
    return nullptr;
}

const MemberLeaf* leaf_named(const StructLayout& s, std::string_view path) {
    for (const MemberLeaf& l : s.leaves)
        if (l.path == path) return &l;
    return nullptr;
}

}  // namespace

StructLayout flat_members(const btf::Btf& btf, std::string_view struct_name) {
    const std::optional<uint32_t> id = btf.find(struct_name);
    if (!id) throw InputError("struct " + std::string(struct_name) + " is not in the kernel's BTF");
    StructLayout s;
    s.name = std::string(struct_name);
    s.size = btf.size_of(*id);
    size_t visits = 0;
    flatten(btf, *id, 0, "", 0, s.leaves, visits);
    return s;
}

std::optional<KeyAnchor> anchor_key_node(const StructLayout& s, const KeyNode& k) {
    const MemberLeaf* start = leaf_at(s, k.offset);
    if (!start) return std::nullopt;
    KeyAnchor a;
    a.start = start->path;
    a.start_delta = uint32_t(k.offset - start->offset);
    if (k.open_end) return a;
    const uint64_t end = uint64_t(k.offset) + k.length;
    if (end == s.size) {
        a.end = "";
        return a;
    }
    const MemberLeaf* last = leaf_at(s, end);
    if (!last) return std::nullopt;
    a.end = last->path;
    a.end_delta = uint32_t(end - last->offset);
    return a;
}

std::vector<std::vector<KeyAnchor>> choose_anchors(std::span<const StructLayout> layouts, std::span<const KeyNode> keys,
                                                   uint32_t word) {
    std::vector<std::vector<KeyAnchor>> out(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
        const KeyNode& k = keys[i];
        // How well each layout explains the segment: a pointer right before it, one at its end.
        int best = -1;
        std::vector<KeyAnchor> home;   // the readings of the best-scoring layouts, in layout order
        for (const StructLayout& s : layouts) {
            const std::optional<KeyAnchor> a = anchor_key_node(s, k);
            if (!a) continue;
            // (any leaf: of a union's members, the pointer may not be the first declared)
            auto pointer = [&](auto where) { return std::any_of(s.leaves.begin(), s.leaves.end(), [&](const MemberLeaf& l) { return l.pointer && where(l); }); };
            int score = 0;
            if (pointer([&](const MemberLeaf& l) { return l.offset + l.size == k.offset && l.size == word; })) ++score;
            if (!k.open_end && pointer([&](const MemberLeaf& l) { return l.offset == uint64_t(k.offset) + k.length; })) ++score;
            if (score > best) best = score, home.clear();
            if (score == best) home.push_back(*a);
        }
        std::vector<std::pair<size_t, KeyAnchor>> counted;   // (count, reading), first-seen order
        for (const KeyAnchor& a : home) {
            auto at = std::find_if(counted.begin(), counted.end(), [&](const auto& c) { return c.second == a; });
            if (at == counted.end()) counted.emplace_back(1, a);
            else ++at->first;
        }
        std::stable_sort(counted.begin(), counted.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        for (size_t j = 0; j < counted.size() && j < KeyNode::kMaxAnchors; ++j) out[i].push_back(std::move(counted[j].second));
    }
    return out;
}

std::optional<KeyNode> place_key_node(const StructLayout& s, const KeyNode& k, const KeyAnchor& a) {
    const MemberLeaf* start = leaf_named(s, a.start);
    if (!start || a.start_delta >= start->size) return std::nullopt;
    KeyNode placed = k;
    placed.offset = uint32_t(start->offset + a.start_delta);
    if (k.open_end || !a.end) return placed;
    uint64_t end = 0;
    if (a.end->empty()) {
        end = s.size;
    } else {
        const MemberLeaf* last = leaf_named(s, *a.end);
        if (!last || a.end_delta >= last->size) return std::nullopt;
        end = last->offset + a.end_delta;
    }
    if (end <= placed.offset) return std::nullopt;
    placed.length = uint32_t(end - placed.offset);
    return placed;
}

size_t anchor_model(Model& model, std::span<const StructLayout> layouts) {
    if (model.joint()) throw InputError("key-node anchors: joint models are not anchored (their key nodes are of several types)");
    for (const StructLayout& l : layouts)
        if (l.name != model.object_type)
            throw InputError("key-node anchors: a layout of struct " + l.name + " for a " + model.object_type + " model");
    std::vector<std::vector<KeyAnchor>> anchors = choose_anchors(layouts, model.key_nodes, model.graph.word_size);
    size_t n = 0;
    for (size_t i = 0; i < anchors.size(); ++i) {
        n += !anchors[i].empty();
        model.key_nodes[i].anchors = std::move(anchors[i]);
    }
    return n;
}

std::string Placement::text() const {
    std::string t = std::to_string(moved) + " of " + std::to_string(anchored) + " anchored key node" + (anchored == 1 ? "" : "s") + " moved";
    if (unplaced) t += ", " + std::to_string(unplaced) + " not placed (kept where trained)";
    return t;
}

Placement place_model(Model& model, const StructLayout& layout) {
    if (layout.name != model.object_type)
        throw InputError("key-node placement: a layout of struct " + layout.name + " for a " + model.object_type + " model");
    Placement p;
    for (KeyNode& k : model.key_nodes) {
        if (k.anchors.empty()) continue;
        ++p.anchored;
        std::optional<KeyNode> placed;
        bool trained = false;   // a reading puts it where it was trained: a layout it was learned from
        for (const KeyAnchor& a : k.anchors) {
            std::optional<KeyNode> q = place_key_node(layout, k, a);
            if (q && (uint64_t(q->offset) + q->length > Model::kMaxObjectBytes || q->length >= model.graph.max_segment)) q.reset();
            if (q && q->offset == k.offset && q->length == k.length) trained = true;
            if (q && !placed) placed = q;
        }
        if (trained) continue;
        if (!placed) {
            ++p.unplaced;
            continue;
        }
        ++p.moved;
        k = *placed;
    }
    return p;
}

}  // namespace deepmem
