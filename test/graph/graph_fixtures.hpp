// Hand-made kernel memory for memory-graph tests: a raw physical image plus explicit kernel
// mappings, and a straightforward sequential reference builder the optimised one must match.
#pragma once

#include "graph/memory_graph.hpp"

#include <cstring>
#include <map>
#include <random>
#include <set>
#include <vector>

namespace deepmem::test {

inline constexpr uint64_t K64 = 0xffff888000000000ull;   // x86-64 direct map
inline constexpr uint64_t K32 = 0xc0000000ull;           // 32-bit kernel base

struct Memory {
    std::vector<uint8_t> image;        // raw dump: paddr == file offset
    std::vector<VirtualRun> runs;      // kernel mappings
    unsigned ws = 8;

    explicit Memory(uint64_t phys_pages, unsigned word = 8) : image(phys_pages * 4096, 0), ws(word) {}
    void map(uint64_t vaddr, uint64_t paddr, uint64_t size) { runs.push_back({vaddr, paddr, size}); }
    void word(uint64_t paddr, uint64_t v) { std::memcpy(&image[paddr], &v, ws); }
    void fill(uint64_t paddr, uint64_t len, uint8_t b) { std::memset(&image[paddr], b, len); }
    std::unique_ptr<PhysicalLayer> phys() const { return PhysicalLayer::from_bytes(image, DumpFormat::Raw); }
    MemoryGraph build(GraphParams p = {}) const {
        p.word_size = ws;
        auto ph = phys();
        return MemoryGraph::build(runs, *ph, p);
    }
};

inline std::vector<uint32_t> row(const MemoryGraph& g, EdgeKind k, uint32_t n) {
    auto r = g.in(k).row(n);
    return {r.begin(), r.end()};
}

// The graph as plain sets, for comparisons and for the reference builder.
struct PlainGraph {
    std::vector<uint64_t> vaddr, paddr;
    std::vector<uint32_t> length;
    std::vector<uint8_t> features;
    std::set<std::pair<uint32_t, uint32_t>> edges[kEdgeKinds];   // (destination, source)
    uint64_t kernel_pages = 0, pointer_fields = 0;
};

inline PlainGraph plain(const MemoryGraph& g) {
    PlainGraph p;
    p.vaddr.assign(g.vaddr().begin(), g.vaddr().end());
    p.paddr.assign(g.paddr().begin(), g.paddr().end());
    p.length.assign(g.length().begin(), g.length().end());
    p.features.assign(g.features().begin(), g.features().end());
    for (int k = 0; k < kEdgeKinds; ++k)
        for (uint32_t n = 0; n < g.node_count(); ++n)
            for (uint32_t s : g.in(static_cast<EdgeKind>(k)).row(n)) p.edges[k].insert({n, s});
    p.kernel_pages = g.info().kernel_pages;
    p.pointer_fields = g.info().pointer_fields;
    return p;
}

// Word by word, with ordered maps, straight from the contract in memory_graph.hpp.
inline PlainGraph reference_graph(const Memory& m, GraphParams prm) {
    const uint64_t ws = m.ws;
    std::map<uint64_t, uint64_t> vpage_to_ppage;   // every present kernel page
    std::set<uint64_t> mapped;                     // every mapped kernel page, present or not
    for (auto& r : m.runs)
        for (uint64_t o = 0; o < r.size; o += 4096) {
            mapped.insert(r.vaddr + o);
            if (r.paddr + o + 4096 <= m.image.size()) vpage_to_ppage[r.vaddr + o] = r.paddr + o;
        }
    std::map<uint64_t, uint64_t> canon_of_ppage;
    for (auto& [v, p] : vpage_to_ppage)
        if (!canon_of_ppage.count(p)) canon_of_ppage[p] = v;   // map iterates vaddr ascending
    std::map<uint64_t, uint64_t> canon_pages;                   // canonical vaddr → paddr
    for (auto& [p, v] : canon_of_ppage) canon_pages[v] = p;
    auto load = [&](uint64_t paddr) {
        uint64_t v = 0;
        std::memcpy(&v, &m.image[paddr], ws);
        return v;
    };
    // A pointer when its page is mapped; a target only when that page is present.
    auto resolve = [&](uint64_t v, bool& has_target, uint64_t& canon) {
        auto it = vpage_to_ppage.find(v & ~uint64_t{4095});
        has_target = it != vpage_to_ppage.end();
        if (has_target) canon = canon_of_ppage[it->second] + (v & 4095);
        return mapped.count(v & ~uint64_t{4095}) != 0;
    };
    struct Word { uint64_t paddr; bool ptr; bool has_target; uint64_t target; };
    std::map<uint64_t, Word> words;
    PlainGraph g;
    g.kernel_pages = canon_pages.size();
    for (auto& [v, p] : canon_pages)
        for (uint64_t o = 0; o < 4096; o += ws) {
            Word w{p + o, false, false, 0};
            w.ptr = resolve(load(p + o), w.has_target, w.target);
            g.pointer_fields += w.ptr;
            words[v + o] = w;
        }
    std::map<uint64_t, uint32_t> node_at;
    const uint64_t long_gap = (prm.max_segment + ws - 1) / ws * ws;   // a long gap's node's length
    auto close_segment = [&](uint64_t start, uint64_t end, bool after_pointer) {
        if (end == start) return;
        if (end - start >= prm.max_segment) {
            if (!prm.long_gap_nodes || !after_pointer) return;
            end = start + long_gap;
        }
        node_at[start] = static_cast<uint32_t>(g.vaddr.size());
        g.vaddr.push_back(start);
        g.paddr.push_back(words[start].paddr);
        g.length.push_back(static_cast<uint32_t>(end - start));
        for (uint64_t i = 0; i < prm.feature_bytes; ++i) {
            uint8_t b = 0;
            if (i < end - start) {
                uint64_t v = start + i;
                b = m.image[words[v & ~(ws - 1)].paddr + (v & (ws - 1))];
            }
            g.features.push_back(b);
        }
    };
    bool in_seg = false, seg_after_pointer = false, prev_ptr = false;
    uint64_t seg_start = 0, prev = 0;
    for (auto& [v, w] : words) {
        bool contiguous = !words.empty() && v == prev + ws && v != words.begin()->first;
        if (in_seg && (!contiguous || w.ptr)) { close_segment(seg_start, prev + ws, seg_after_pointer); in_seg = false; }
        if (!w.ptr && !in_seg) { in_seg = true; seg_start = v; seg_after_pointer = contiguous && prev_ptr; }
        prev = v;
        prev_ptr = w.ptr;
    }
    if (in_seg) close_segment(seg_start, prev + ws, seg_after_pointer);
    auto sink = [&](int64_t n) { return g.length[n] >= prm.max_segment; };   // a long gap's node feeds none

    auto target_node = [&](uint64_t t) -> int64_t {
        auto it = node_at.upper_bound(t);
        if (it == node_at.begin()) return -1;
        --it;
        uint32_t n = it->second;
        if (sink(n)) return -1;
        if (t < g.vaddr[n] + g.length[n]) return n;
        auto w = words.find(t & ~(ws - 1));
        if (w != words.end() && w->second.ptr && t - g.vaddr[n] <= prm.pointer_target_back) return n;
        return -1;
    };
    // Pointer runs: consecutive contiguous pointer words.
    for (auto it = words.begin(); it != words.end();) {
        if (!it->second.ptr) { ++it; continue; }
        uint64_t start = it->first;
        std::vector<int64_t> tg;
        uint64_t end = start;
        while (it != words.end() && it->second.ptr && it->first == end) {
            tg.push_back(it->second.has_target ? target_node(it->second.target) : -1);
            end += ws;
            ++it;
        }
        int64_t C = -1, D = -1;
        auto c = node_at.lower_bound(start);
        if (c != node_at.begin()) {
            --c;
            if (g.vaddr[c->second] + g.length[c->second] == start && !sink(c->second)) C = c->second;
        }
        if (node_at.count(end)) D = node_at[end];
        for (int64_t t : tg) {
            if (t < 0) continue;
            if (C >= 0) g.edges[int(EdgeKind::RightPointer)].insert({uint32_t(C), uint32_t(t)});
            if (D >= 0) g.edges[int(EdgeKind::LeftPointer)].insert({uint32_t(D), uint32_t(t)});
        }
    }
    for (uint32_t b = 1; b < g.vaddr.size(); ++b)
        if (g.vaddr[b] - (g.vaddr[b - 1] + g.length[b - 1]) < prm.neighbour_distance) {
            if (!sink(b - 1)) g.edges[int(EdgeKind::LeftNeighbour)].insert({b, b - 1});
            if (!sink(b)) g.edges[int(EdgeKind::RightNeighbour)].insert({b - 1, b});
        }
    return g;
}

// Random kernel memory: a direct map with holes, a vmalloc-like area aliasing some pages and
// owning others, pointer runs of 1–4 words (valid, unmapped, aliased, into pointer fields),
// zero pages, and runs that straddle page and chunk boundaries.
inline Memory random_memory(uint64_t seed, uint64_t phys_pages, unsigned ws) {
    Memory m(phys_pages, ws);
    std::mt19937_64 rng(seed);
    const uint64_t base = ws == 8 ? K64 : K32;
    const uint64_t valloc = ws == 8 ? 0xffffc90000000000ull : 0xf0000000ull;
    const uint64_t direct = phys_pages * 3 / 4;
    for (uint64_t p = 0; p < direct;) {   // stretches of 1..40 pages with 1-page holes
        uint64_t len = std::min<uint64_t>(1 + rng() % 40, direct - p);
        m.map(base + p * 4096, p * 4096, len * 4096);
        p += len + (rng() % 3 == 0);
    }
    for (uint64_t i = 0; i < phys_pages / 4; ++i) {   // page-sized vmalloc mappings
        uint64_t ppage = rng() % 2 ? rng() % direct : direct + i;
        m.map(valloc + i * 2 * 4096, ppage * 4096, 4096);
    }
    // Mapped but absent from the dump: values into it are pointers without a target.
    m.map(valloc + 0x08000000, phys_pages * 4096 + 0x100000, 4096);
    std::vector<uint64_t> vpages;
    for (auto& r : m.runs)
        for (uint64_t o = 0; o < r.size; o += 4096) vpages.push_back(r.vaddr + o);
    auto pointer = [&]() -> uint64_t {
        switch (rng() % 8) {
        case 0: return base + 0x7ff00000ull + (rng() % 4096);            // unmapped kernel address
        case 1: return vpages[rng() % vpages.size()] + (rng() % (4096 / ws)) * ws;   // a word
        default: return vpages[rng() % vpages.size()] + rng() % 4096;
        }
    };
    for (uint64_t p = 0; p < phys_pages; ++p) {
        uint64_t kind = rng() % 10;
        if (kind == 0) continue;   // zero page
        uint64_t density = kind < 4 ? 4 : kind < 8 ? 40 : 400;
        for (uint64_t o = 0; o < 4096; o += ws) {
            uint64_t at = p * 4096 + o;
            if (rng() % density == 0) {
                uint64_t n = 1 + rng() % 4;
                for (uint64_t i = 0; i < n && o < 4096; ++i, o += ws) m.word(p * 4096 + o, pointer());
                o -= ws;
            } else if (rng() % 3) {
                m.word(at, rng() & (ws == 8 ? 0x0000ffffffffffffull : 0x7fffffffull));
            }
        }
    }
    return m;
}

}  // namespace deepmem::test
