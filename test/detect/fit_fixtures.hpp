// Synthetic objects and a hand-set model for the fit checks (detect/fit.hpp): a model whose
// network recognises each of its key nodes by a marker byte, and objects laid out as the model
// learned them or with part of the layout moved by 64 bytes (as PREEMPT_RT moves task_struct).
//
// Object, as trained (512 bytes): pointer words at offsets 0, 128, 256, 384, each followed by a
// 120-byte segment; the segment at 8 + 128·(c − 1) is key node c (c = 1..4) and carries the marker
// byte 0xff at its byte c. Moved (576 bytes): one more pointer word at 256 and a 56-byte segment
// with no marker, so key nodes 3 and 4 sit at 328 and 456 and vote for base + 64. Cut (512 bytes):
// two more pointer words at 448 and 456 cut key node 4's segment to 56 bytes, so it never votes (one
// word would make it the first part of a key node split by a planted pointer, which still votes:
// detect.hpp carries()).
#pragma once

#include "engine/engine.hpp"
#include "graph/memory_graph.hpp"
#include "../engine/random_graph.hpp"

#include <cstdint>
#include <cstring>
#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace deepmem::test {

// A model with random parameters (seed `seed`) voting with `keys`, one class per key node, at
// threshold 0.5 (tests set their own).
inline Model keyed_model(const std::string& type, std::vector<KeyNode> keys, uint64_t seed, GraphParams params = {}) {
    ModelConfig c;
    c.classes = uint32_t(keys.size() + 1);
    Model m = Model::create(c, seed);
    m.params = random_params<float>(c, seed, 0.5);
    m.object_type = type;
    m.key_nodes = std::move(keys);
    m.graph = params;
    m.threshold = 0.5f;
    return m;
}

// The graph's segment lengths, most frequent first (key nodes that vote somewhere).
inline std::vector<uint32_t> common_lengths(const MemoryGraph& g) {
    std::map<uint32_t, uint32_t> freq;
    for (uint32_t len : g.length()) ++freq[len];
    std::vector<std::pair<uint32_t, uint32_t>> common;
    for (auto [len, n] : freq) common.push_back({n, len});
    std::sort(common.rbegin(), common.rend());
    std::vector<uint32_t> out;
    for (auto [n, len] : common) out.push_back(len);
    return out;
}

inline constexpr uint64_t kObject = 512, kMovedObject = 576;
enum class Layout { Trained, Moved, Cut };

// Class c ≥ 1 when content byte c is 0xff, else class 0: σ all zero, so mu = tanh(v·W1) with W1
// picking bytes 1..4; the classifier's hidden layer passes mu through, the output layer gives class
// c the logit 10·mu_c and class 0 the constant 5.
inline Model marker_model(const std::string& type, float threshold = 3.5f) {
    ModelConfig c;
    c.classes = 5;
    Model m = Model::create(c, 1);
    for (auto& t : m.params.tensors) t.setZero();
    for (int i = 1; i < 5; ++i) m.params.w1()(i, i) = 4.f;
    for (int i = 0; i < 64; ++i) m.params.cls_w(0)(i, i) = 1.f;
    for (int i = 1; i < 5; ++i) m.params.cls_w(1)(i, i) = 10.f;
    m.params.cls_b(1)(0, 0) = 5.f;
    m.object_type = type;
    m.key_nodes = {{8, 120, 1.f}, {136, 120, 1.f}, {264, 120, 1.f}, {392, 120, 1.f}};
    m.threshold = threshold;
    m.provenance.validation_objects = 100;
    m.provenance.validation_agreeing = 99;
    return m;
}

// `count` objects from physical `paddr` (whose kernel vaddr is `vaddr`), each pointer word holding
// its object's base vaddr, and one closing pointer word after the last. Returns the bases' vaddrs.
inline std::vector<uint64_t> put_objects(const std::function<void(uint64_t, uint64_t)>& put64,
                                         const std::function<void(uint64_t, uint8_t)>& put8, uint64_t paddr,
                                         uint64_t vaddr, int count, Layout layout) {
    const bool moved = layout == Layout::Moved;
    const uint64_t size = moved ? kMovedObject : kObject;
    const std::vector<uint64_t> pointers = moved                    ? std::vector<uint64_t>{0, 128, 256, 320, 448}
                                           : layout == Layout::Cut ? std::vector<uint64_t>{0, 128, 256, 384, 448, 456}
                                                                   : std::vector<uint64_t>{0, 128, 256, 384};
    const uint64_t key_at[4] = {8, 136, moved ? 328u : 264u, moved ? 456u : 392u};
    std::vector<uint64_t> bases;
    for (int i = 0; i < count; ++i) {
        const uint64_t p = paddr + uint64_t(i) * size, v = vaddr + uint64_t(i) * size;
        for (uint64_t o : pointers) put64(p + o, v);
        for (int c = 1; c <= 4; ++c) put8(p + key_at[c - 1] + uint64_t(c), 0xff);
        bases.push_back(v);
    }
    put64(paddr + uint64_t(count) * size, vaddr);
    return bases;
}

}  // namespace deepmem::test
