// Memory graph construction (paper §3.2): canonical pages, pointer scan, segmentation, edges, CSR.
//
// Shapes, named once:
//   P  canonical pages: every present kernel page once, at its lowest kernel vaddr, sorted by vaddr
//   W  words per page (4096 / word size); the pointer bitmap holds P×W bits, page-major, so a
//      stretch of vaddr-contiguous pages is one contiguous bit range ("bit space")
//   N  nodes, numbered in vaddr order
//
// Phases (each an OpenMP loop over fixed chunks of pages, so output never depends on threads):
//   scan     the one full pass over the dump: mark pointer fields, resolve each target to a
//            canonical "linear" address q·4096 + offset (q a canonical page index)
//   segment  count nodes per chunk, prefix-sum, fill vaddr/paddr/length/features
//   edges    per pointer run: C (segment ending at the run), D (segment starting after it),
//            the run's distinct target nodes → C's rp row and D's lp row
//   csr      prefix sums over row sizes, then row fills; ln/rn from consecutive nodes
// Every node has exactly one left and one right boundary, so each lp/rp row is written by one run:
// no sort of edges is needed and no two threads write the same row.
#include "graph/memory_graph.hpp"

#include "graph/memory_budget.hpp"
#include "graph/paging.hpp"
#include "graph/parallel_errors.hpp"
#include "graph/text_lines.hpp"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <filesystem>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>
#include <limits>

namespace deepmem {

const char* to_string(EdgeKind k) {
    switch (k) {
    case EdgeKind::LeftNeighbour: return "ln";
    case EdgeKind::RightNeighbour: return "rn";
    case EdgeKind::LeftPointer: return "lp";
    case EdgeKind::RightPointer: return "rp";
    }
    return "?";
}

void MemoryGraph::set_dump_path(const std::string& path) {
    std::error_code ec;
    const std::filesystem::path abs = path.empty() ? std::filesystem::path() : std::filesystem::absolute(path, ec);
    info_.dump_path = ec ? path : abs.lexically_normal().string();
}

uint64_t MemoryGraph::array_bytes() const noexcept {
    uint64_t bytes = vaddr().size_bytes() + paddr().size_bytes() + length().size_bytes() + features().size_bytes();
    for (const CsrView& c : in_) bytes += c.offsets.size_bytes() + c.sources.size_bytes();
    return bytes;
}

std::optional<uint32_t> MemoryGraph::node_containing(uint64_t v) const noexcept {
    auto it = std::upper_bound(vaddr_.begin(), vaddr_.end(), v);
    if (it == vaddr_.begin()) return std::nullopt;
    auto n = static_cast<uint32_t>(it - vaddr_.begin() - 1);
    if (v - vaddr_[n] < length_[n]) return n;
    return std::nullopt;
}

SegmentSample sample_segments(const MemoryGraph& graph, size_t count) {
    constexpr uint64_t kPage = 4096;
    SegmentSample out;
    const uint64_t N = graph.node_count(), fb = graph.params().feature_bytes;
    uint64_t next = 0;
    for (size_t i = 0; i < count && N; ++i) {
        for (uint64_t n = std::max<uint64_t>(next, i * N / count); n < N && n < (i + 1) * N / count; ++n) {
            const uint64_t pa = graph.paddr()[n];
            const uint64_t len = std::min<uint64_t>({graph.length()[n], fb, kPage - pa % kPage});
            const auto f = graph.features().subspan(n * fb, len);
            if (std::all_of(f.begin(), f.end(), [](uint8_t b) { return b == 0; })) continue;
            out.segments.emplace_back(pa, std::vector<uint8_t>(f.begin(), f.end()));
            next = n + 1;
            break;
        }
    }
    return out;
}

size_t sample_mismatches(const PhysicalLayer& phys, const SegmentSample& sample) {
    size_t bad = 0;
    for (const auto& [pa, bytes] : sample.segments) {
        const uint8_t* at = phys.find(pa, bytes.size());
        bad += !at || std::memcmp(at, bytes.data(), bytes.size()) != 0;
    }
    return bad;
}

std::pair<uint32_t, uint32_t> MemoryGraph::nodes_between(uint64_t from, uint64_t to) const noexcept {
    if (to <= from) return {0, 0};
    auto a = std::lower_bound(vaddr_.begin(), vaddr_.end(), from);
    auto b = std::lower_bound(a, vaddr_.end(), to);
    return {static_cast<uint32_t>(a - vaddr_.begin()), static_cast<uint32_t>(b - vaddr_.begin())};
}

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kChunkPages = 64;   // work unit; fixed so results never depend on thread count
constexpr uint64_t kAbsentTarget = ~uint64_t{0};   // a pointer into a mapped page the dump lacks

// Graph sizes per canonical kernel page. Expected (estimate()): measured on the Debian 6.1 amd64
// QEMU dump of tools/make-dataset (--seed 1000, 256 MiB, 65,506 pages) when the graph counted
// 44 pointer fields, 8 nodes and 37 edges per page, each times a margin of 2. Real dumps now
// (pointer fields / nodes per page): that dump 19.4 / 8.0; Debian i386 686-pae 256 MiB 22.2 /
// 12.5; 5.10 and 6.12 amd64 512 MiB 7.5–8.4 / 3.4–3.6.
constexpr uint64_t kPointersPerPage = 88, kNodesPerPage = 16, kEdgesPerPage = 74;
// The density bound (memory_graph.hpp): 128 pointer fields and one node per 16 words per page,
// 5.8× and 2.6–4× the densest of those dumps (one node per 16 words is 32 per page for 8-byte
// words, 64 for 4-byte ones), and never below kBoundFloor, so that small hand-made images and tiny
// dumps are never refused. Edges are at most 2 × (pointers + nodes): a pointer run gives each of
// its two side nodes at most one edge per pointer, and a node at most one ln and one rn edge.
constexpr uint64_t kMaxPointersPerPage = 128, kWordsPerNode = 16, kBoundFloor = uint64_t{1} << 20;
// A compressed file's bound is also held to the file's size (issue #15, T9-4: a 62.5 MiB kdump whose
// pages decoded to 1.3 GiB at the per-page bound made 11.0 M nodes, 172 per KiB of file; dmdetect
// 43 s, 1.85 GB): 128 pointer fields and 64 nodes per KiB of the file. Kdumps of real kernels, as
// QEMU writes them (zstd; zlib within 0.1): 6.1 amd64 256 MiB 39.3 / 16.2 per KiB, 1 GiB 34.8 /
// 15.1, i386 686-pae 256 MiB 59.4 / 33.3 (5.10 and 6.12 amd64, zlib: 11–13 nodes per KiB); the bound
// is about twice the densest.
constexpr uint64_t kMaxPointersPerFileKiB = 128, kMaxNodesPerFileKiB = 64;
// Heap bytes of build() at its peak (the edges phase), read off MemoryGraphBuilder:
//   per mapping  every present kernel page mapping, aliases included (a page mapped 1000 times
//                counts 1000 times): the canonical-pages sort entry, vaddr map and alias-table
//                slot (24 + 16 + 4 + 4), freed before the scan but live at once
//   per page     page vaddr/paddr/data/stretch (32), page_ptr_first/page_node_first (12), the
//                pointer and node-start bitmaps (2 × 4096/word size / 8), alias-table blocks (8)
//   per pointer  targets (8; given back block by block as they are resolved), resolved target
//                nodes (4), per-chunk copies (8) and sources (4): more than is held at once
//   per node     vaddr, paddr, length (20), four CSR offsets (32), features (feature_bytes)
//   per edge     source (4)
constexpr uint64_t kBytesPerMapping = 48, kBytesPerPage = 32 + 12 + 8, kBytesPerPointer = 24, kBytesPerNode = 52,
                   kBytesPerEdge = 4;

uint64_t file_bound(uint64_t file_bytes, uint64_t per_kib) {
    return file_bytes ? file_bytes / 1024 * per_kib : UINT64_MAX;
}
// The density bound for `pages` kernel pages of `ws`-byte words from a compressed file of
// `file_bytes` (0: no file bound).
uint64_t max_pointers_for(uint64_t pages, uint64_t ws, uint64_t file_bytes) {
    return std::max(std::min(pages * std::min(kMaxPointersPerPage, kPage / ws), file_bound(file_bytes, kMaxPointersPerFileKiB)),
                    kBoundFloor);
}
uint64_t max_nodes_for(uint64_t pages, uint64_t ws, uint64_t file_bytes) {
    return std::max(std::min(pages * (kPage / ws / kWordsPerNode), file_bound(file_bytes, kMaxNodesPerFileKiB)), kBoundFloor);
}
// The file size a dump's density bound is held to: a compressed one's (kdump, AVML), the bytes its
// file holds (a sparse file's apparent size is no bound: reviewer 101 H1), else 0.
uint64_t compressed_bytes(const PhysicalLayer& phys) {
    const DumpFormat f = phys.format();
    return f == DumpFormat::Kdump || f == DumpFormat::Avml ? phys.held_bytes() : 0;
}

// What build() holds at its peak for these counts (see the per-item costs above).
uint64_t bytes_for(uint64_t mappings, uint64_t pages, uint64_t ws, uint64_t pointers, uint64_t nodes, uint64_t edges,
                   uint64_t feature_bytes) {
    return mappings * kBytesPerMapping + pages * (kBytesPerPage + 2 * (kPage / ws / 8)) + pointers * kBytesPerPointer +
           nodes * (kBytesPerNode + feature_bytes) + edges * kBytesPerEdge;
}

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Kernel virtual page number → canonical page index, for every present kernel page (aliases
// included). Two levels: an open-addressing hash of 2 MiB regions, each a dense block of 512
// entries. Kernel space is sparse at the GiB scale but dense inside the regions it uses.
class AliasTable {
public:
    static constexpr unsigned kRegionBits = 9;
    static constexpr uint64_t kRegionPages = uint64_t{1} << kRegionBits;

    void build(std::span<const std::pair<uint64_t, uint32_t>> vpn_to_canon) {   // sorted by vpn
        if (vpn_to_canon.empty()) return;
        lo_vpn_ = vpn_to_canon.front().first;
        hi_vpn_ = vpn_to_canon.back().first;
        uint64_t regions = 0, last = ~uint64_t{0};
        for (auto& [vpn, c] : vpn_to_canon)
            if ((vpn >> kRegionBits) != last) { last = vpn >> kRegionBits; ++regions; }
        uint64_t cap = 16;
        while (cap < 2 * regions) cap <<= 1;
        shift_ = 64 - static_cast<unsigned>(std::countr_zero(cap));
        keys_.assign(cap, ~uint64_t{0});
        slot_.assign(cap, 0);
        blocks_.assign(regions * kRegionPages, kNone);
        uint32_t block = 0;
        last = ~uint64_t{0};
        uint32_t* cur = nullptr;
        for (auto& [vpn, c] : vpn_to_canon) {
            uint64_t key = vpn >> kRegionBits;
            if (key != last) {
                last = key;
                uint64_t h = hash(key);
                while (keys_[h] != ~uint64_t{0}) h = (h + 1) & (cap - 1);
                keys_[h] = key;
                slot_[h] = block;
                cur = &blocks_[uint64_t{block} * kRegionPages];
                ++block;
            }
            cur[vpn & (kRegionPages - 1)] = c;
        }
    }

    // Per-thread memo of the last region looked up: pointers cluster, so most lookups hit it.
    struct Cache { uint64_t key = ~uint64_t{0}; const uint32_t* block = nullptr; };

    uint32_t find(uint64_t vpn, Cache& cache) const noexcept {
        if (vpn < lo_vpn_ || vpn > hi_vpn_) return kNone;
        uint64_t key = vpn >> kRegionBits;
        if (key != cache.key) {
            uint64_t mask = keys_.size() - 1;
            uint64_t h = hash(key);
            for (;;) {
                uint64_t k = keys_[h];
                if (k == key) break;
                if (k == ~uint64_t{0}) return kNone;
                h = (h + 1) & mask;
            }
            cache.key = key;
            cache.block = &blocks_[uint64_t{slot_[h]} * kRegionPages];
        }
        return cache.block[vpn & (kRegionPages - 1)];
    }

private:
    uint64_t hash(uint64_t key) const noexcept { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }
    uint64_t lo_vpn_ = 1, hi_vpn_ = 0;
    unsigned shift_ = 60;
    std::vector<uint64_t> keys_;
    std::vector<uint32_t> slot_;
    std::vector<uint32_t> blocks_;
};

// Kernel virtual pages mapped by the page tables, present in the dump or not, as sorted disjoint
// [first, last) page-number intervals: a word whose page is here is a pointer field even when
// no node can be its target.
class MappedPages {
public:
    // `runs` need not be sorted nor disjoint; each must be 4 KiB-aligned and not wrap. `spans`
    // {vaddr, size}: ranges under absent tables (TranslationLayer::absent_table_spans), whole pages.
    void build(std::span<const VirtualRun> a, std::span<const VirtualRun> b,
               std::span<const std::pair<uint64_t, uint64_t>> spans = {}) {
        std::vector<std::pair<uint64_t, uint64_t>> iv;
        iv.reserve(a.size() + b.size() + spans.size());
        for (auto runs : {a, b})
            for (const auto& r : runs)
                if (r.size) iv.emplace_back(r.vaddr / kPage, r.vaddr / kPage + r.size / kPage);
        for (const auto& [lo, size] : spans)
            if (size / kPage) iv.emplace_back(lo / kPage, lo / kPage + size / kPage);
        std::sort(iv.begin(), iv.end());
        for (const auto& [lo, hi] : iv) {
            if (!iv_.empty() && lo <= iv_.back().second) iv_.back().second = std::max(iv_.back().second, hi);
            else iv_.emplace_back(lo, hi);
        }
    }
    std::span<const std::pair<uint64_t, uint64_t>> intervals() const noexcept { return iv_; }

    // Per-thread memo of the last interval or gap a lookup fell in (values repeat: -1, -ENOENT …).
    struct Cache { uint64_t lo = 1, hi = 0; bool mapped = false; };

    bool contains(uint64_t vpn, Cache& c) const noexcept {
        if (vpn >= c.lo && vpn < c.hi) return c.mapped;
        auto it = std::upper_bound(iv_.begin(), iv_.end(), vpn,
                                   [](uint64_t v, const std::pair<uint64_t, uint64_t>& i) { return v < i.first; });
        if (it != iv_.begin() && vpn < std::prev(it)->second) {
            c = {std::prev(it)->first, std::prev(it)->second, true};
            return true;
        }
        c = {it == iv_.begin() ? 0 : std::prev(it)->second, it == iv_.end() ? ~uint64_t{0} : it->first, false};
        return false;
    }

private:
    std::vector<std::pair<uint64_t, uint64_t>> iv_;
};

// The pointer bitmap and the navigation helpers over bit space.
struct Bits {
    std::vector<uint64_t> w;
    bool test(uint64_t g) const noexcept { return (w[g >> 6] >> (g & 63)) & 1; }
    // First set bit in [g, limit), else limit.
    uint64_t next_set(uint64_t g, uint64_t limit) const noexcept {
        while (g < limit) {
            uint64_t word = w[g >> 6] >> (g & 63);
            if (word) return std::min(limit, g + static_cast<uint64_t>(std::countr_zero(word)));
            g = (g | 63) + 1;
        }
        return limit;
    }
    uint64_t next_clear(uint64_t g, uint64_t limit) const noexcept {
        while (g < limit) {
            uint64_t word = ~w[g >> 6] >> (g & 63);
            if (word) return std::min(limit, g + static_cast<uint64_t>(std::countr_zero(word)));
            g = (g | 63) + 1;
        }
        return limit;
    }
    // Highest set bit in [a, b), else b.
    uint64_t last_set(uint64_t a, uint64_t b) const noexcept {
        uint64_t g = b;
        while (g > a) {
            uint64_t top = g - 1;                     // search [.., top] in top's word
            uint64_t word = w[top >> 6] & (~uint64_t{0} >> (63 - (top & 63)));
            uint64_t lo_word = top & ~uint64_t{63};
            if (lo_word < a) word &= ~uint64_t{0} << (a - lo_word);
            if (word) return lo_word + 63 - static_cast<uint64_t>(std::countl_zero(word));
            g = lo_word;
        }
        return b;
    }
    // Set bits in [a, b).
    uint64_t count(uint64_t a, uint64_t b) const noexcept {
        uint64_t n = 0;
        while (a < b) {
            uint64_t word = w[a >> 6] >> (a & 63);
            uint64_t take = std::min<uint64_t>(64 - (a & 63), b - a);
            if (take < 64) word &= (uint64_t{1} << take) - 1;
            n += static_cast<uint64_t>(std::popcount(word));
            a += take;
        }
        return n;
    }
};

// A big array straight from mmap: zero without a serial memset (the kernel clears each page on
// first touch, so the parallel loops that fill it also spread that cost over the threads).
// (MADV_HUGEPAGE was measured: on the reference VM its compaction and huge-page clearing cost
// more system time than the TLB misses it saves.)
template <typename T>
class BigArray {
public:
    BigArray() = default;
    explicit BigArray(uint64_t n) : n_(n) {
        if (n == 0) return;
        bytes_ = (n * sizeof(T) + 4095) & ~uint64_t{4095};
        void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        p_ = static_cast<T*>(p);
    }
    BigArray(BigArray&& o) noexcept { swap(o); }
    BigArray& operator=(BigArray&& o) noexcept { BigArray t(std::move(o)); swap(t); return *this; }
    ~BigArray() { if (p_) ::munmap(p_, bytes_); }
    T& operator[](uint64_t i) noexcept { return p_[i]; }
    const T& operator[](uint64_t i) const noexcept { return p_[i]; }
    T* begin() noexcept { return p_; }
    T* end() noexcept { return p_ + n_; }
    const T* begin() const noexcept { return p_; }
    const T* end() const noexcept { return p_ + n_; }
    uint64_t size() const noexcept { return n_; }
    std::span<const T> view() const noexcept { return {p_, n_}; }
    // Gives the whole pages inside elements [lo, hi) back to the system once they are read for
    // the last time (they read as zero after).
    void release(uint64_t lo, uint64_t hi) noexcept {
        const uintptr_t a = (reinterpret_cast<uintptr_t>(p_ + lo) + 4095) & ~uintptr_t{4095};
        const uintptr_t b = reinterpret_cast<uintptr_t>(p_ + hi) & ~uintptr_t{4095};
        if (b > a) ::madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
    }
private:
    void swap(BigArray& o) noexcept { std::swap(p_, o.p_); std::swap(n_, o.n_); std::swap(bytes_, o.bytes_); }
    T* p_ = nullptr;
    uint64_t n_ = 0, bytes_ = 0;
};

struct OwnedGraph {
    BigArray<uint64_t> vaddr, paddr;
    BigArray<uint32_t> length;
    BigArray<uint8_t> features;
    std::array<BigArray<uint64_t>, kEdgeKinds> offsets;
    std::array<BigArray<uint32_t>, kEdgeKinds> sources;
    std::vector<AbsentRun> absent;
};

// In-place inclusive prefix sum, block-parallel (integer sums: exact, thread-count independent).
void prefix_sum(uint64_t* a, uint64_t n) {
    constexpr int64_t kBlocks = 64;
    if (n < (1u << 16)) {
        for (uint64_t i = 1; i < n; ++i) a[i] += a[i - 1];
        return;
    }
    uint64_t per = (n + kBlocks - 1) / kBlocks;
    uint64_t sums[kBlocks + 1] = {};
    ParallelErrors errors;
#pragma omp parallel for schedule(static)
    for (int64_t b = 0; b < kBlocks; ++b)
        errors.run([&] {
            uint64_t lo = std::min(n, b * per), hi = std::min(n, lo + per);
            for (uint64_t i = lo + 1; i < hi; ++i) a[i] += a[i - 1];
            sums[b + 1] = hi > lo ? a[hi - 1] : 0;
        });
    errors.rethrow();
    for (int64_t b = 0; b < kBlocks; ++b) sums[b + 1] += sums[b];
#pragma omp parallel for schedule(static)
    for (int64_t b = 1; b < kBlocks; ++b)
        errors.run([&] {
            uint64_t lo = std::min(n, b * per), hi = std::min(n, lo + per);
            for (uint64_t i = lo; i < hi; ++i) a[i] += sums[b];
        });
    errors.rethrow();
}

}  // namespace

std::string GraphParams::long_gap_conflict() const {
    if (!long_gap_nodes) return {};
    if (neighbour_distance > max_segment)
        return "max_segment " + std::to_string(max_segment) + " is below neighbour_distance " + std::to_string(neighbour_distance) +
               ": a long gap's node would stand between two nodes that are neighbours; raise max_segment, lower "
               "neighbour_distance, or turn long gaps' nodes off (dmgraph --no-long-gap-nodes)";
    if (pointer_target_back >= max_segment)
        return "max_segment " + std::to_string(max_segment) + " is not above pointer_target_back " +
               std::to_string(pointer_target_back) +
               ": a long gap's node would hide the node a pointer to a pointer field leads to; raise max_segment, lower "
               "pointer_target_back, or turn long gaps' nodes off (dmgraph --no-long-gap-nodes)";
    return {};
}

namespace {

void check_params(const GraphParams& p) {
    if (p.word_size != 4 && p.word_size != 8)
        throw InputError("graph parameter word_size must be 4 or 8, got " + std::to_string(p.word_size));
    if (p.feature_bytes == 0 || p.feature_bytes > 4096)
        throw InputError("graph parameter feature_bytes must be in [1, 4096], got " + std::to_string(p.feature_bytes));
    if (p.max_segment == 0)
        throw InputError("graph parameter max_segment must be positive");
    if (std::string why = p.long_gap_conflict(); !why.empty()) throw InputError("graph parameters: " + why);
}

}  // namespace

struct MemoryGraphBuilder {
    const PhysicalLayer& phys;
    GraphParams params;
    const ProgressFn& progress;
    GraphBuildPhases phases;
    InterruptFn interrupt;   // build(layer)'s: called per chunk and between steps (memory_graph.hpp)
    void check_interrupt() const {
        if (interrupt) interrupt();
    }

    MemoryGraphBuilder(const PhysicalLayer& ph, const GraphParams& pa, const ProgressFn& pr)
        : phys(ph), params(pa), progress(pr) {}

    // Set by build() from a translation layer (memory_graph.hpp, Limits and Density bound); a
    // builder over hand-made runs checks neither. `file_bytes`: the compressed file's size the
    // bound is also held to.
    bool density_bound = false, memory_check = false;
    uint64_t file_bytes = 0;

    uint64_t ws = 8, bpp = 512;   // word size, bits (words) per page
    uint64_t P = 0;
    std::vector<uint64_t> page_vaddr, page_paddr;
    std::vector<const uint8_t*> page_data;
    std::vector<uint32_t> stretch_begin, stretch_end;   // page index range of the page's stretch
    AliasTable alias;
    MappedPages mapped;
    std::vector<AbsentRun> absent;          // mapped kernel pages not in the dump
    Bits bits;
    std::vector<uint64_t> page_ptr_first;   // P+1: index of the page's first pointer in `targets`
    BigArray<uint64_t> targets;             // canonical linear address q·4096 + offset per pointer
    std::vector<uint32_t> page_node_first;  // P+1: first node with vaddr ≥ page vaddr
    Bits starts;                            // bit space again: the first word of every node
    uint64_t chunks = 0;
    uint64_t max_words = 0;                 // a segment of this many words or more is no node

    uint64_t bit_vaddr(uint64_t g) const noexcept { return page_vaddr[g / bpp] + (g % bpp) * ws; }

    // The bytes of the physical page at `paddr`, or nullptr when the dump lacks it. A page no data
    // backs — a hole of a sparse file (a `cp` of a raw dump is the same dump), a kdump or AVML page of
    // zeros (layers.hpp data_runs) — is kZeroPage: the zeros it holds, never read from the mapping,
    // whose read faults would allocate and clear each such page (attacker 94: a 61 MiB kdump of
    // 10 GiB of zero pages, 23 s of dmgraph build, 61 % of it the kernel clearing pages).
    alignas(kPage) static constexpr uint8_t kZeroPage[kPage] = {};
    const uint8_t* page_bytes(uint64_t paddr) const noexcept {
        const uint8_t* d = phys.find(paddr, kPage);
        return d && !phys.has_data(paddr, kPage) ? kZeroPage : d;
    }

    // Enumerates kernel pages, drops pages the physical layer lacks, keeps the lowest vaddr of
    // each physical page, fills the alias table, and lists the mapped pages the dump lacks (not
    // those of the absent tables' `spans`, which only make pointer fields).
    void canonical_pages(std::span<const VirtualRun> runs, std::span<const VirtualRun> mapped_runs,
                         std::span<const std::pair<uint64_t, uint64_t>> spans) {
        struct Entry { uint64_t ppn, vpn; const uint8_t* data; };
        std::vector<Entry> entries;
        uint64_t total = 0;
        for (auto list : {runs, mapped_runs})
            for (const auto& r : list) {
                if ((r.vaddr | r.paddr | r.size) & (kPage - 1))
                    throw InputError("kernel run at vaddr " + hex(r.vaddr) + " is not 4 KiB-aligned");
                if (r.size != 0 && (r.size - 1 > ~r.vaddr || r.size - 1 > ~r.paddr))
                    throw InputError("kernel run at vaddr " + hex(r.vaddr) + " wraps the address space");
            }
        for (const auto& [lo, size] : spans)
            if ((lo | size) & (kPage - 1) || size - 1 > ~lo)
                throw InputError("kernel span at vaddr " + hex(lo) + " is not 4 KiB-aligned or wraps");
        mapped.build(runs, mapped_runs, spans);
        MappedPages known;   // what the tables map, for the absent pages
        known.build(runs, mapped_runs);
        for (const auto& r : runs) total += r.size / kPage;
        entries.reserve(total);
        for (const auto& r : runs)
            for (uint64_t o = 0; o < r.size; o += kPage)
                if (const uint8_t* d = page_bytes(r.paddr + o))
                    entries.push_back({(r.paddr + o) / kPage, (r.vaddr + o) / kPage, d});
        std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
            return a.ppn != b.ppn ? a.ppn < b.ppn : a.vpn < b.vpn;
        });
        // Canonical = first entry of each ppn group; sort them by vpn.
        std::vector<uint64_t> canon_entry;   // index into entries
        for (uint64_t i = 0; i < entries.size(); ++i)
            if (i == 0 || entries[i].ppn != entries[i - 1].ppn) canon_entry.push_back(i);
        std::sort(canon_entry.begin(), canon_entry.end(),
                  [&](uint64_t a, uint64_t b) { return entries[a].vpn < entries[b].vpn; });
        P = canon_entry.size();
        if (P >= kNone) throw InputError("too many kernel pages for one graph");
        page_vaddr.resize(P);
        page_paddr.resize(P);
        page_data.resize(P);
        std::vector<uint32_t> canon_of_ppn_group(entries.size(), kNone);   // at the group's first entry
        for (uint64_t q = 0; q < P; ++q) {
            const Entry& e = entries[canon_entry[q]];
            page_vaddr[q] = e.vpn * kPage;
            page_paddr[q] = e.ppn * kPage;
            page_data[q] = e.data;
            canon_of_ppn_group[canon_entry[q]] = static_cast<uint32_t>(q);
        }
        std::vector<std::pair<uint64_t, uint32_t>> vpn_map(entries.size());
        uint32_t cur = kNone;
        for (uint64_t i = 0; i < entries.size(); ++i) {
            if (canon_of_ppn_group[i] != kNone) cur = canon_of_ppn_group[i];
            vpn_map[i] = {entries[i].vpn, cur};
        }
        free_storage(entries);
        std::sort(vpn_map.begin(), vpn_map.end());
        for (uint64_t i = 1; i < vpn_map.size(); ++i)
            if (vpn_map[i].first == vpn_map[i - 1].first)
                throw InputError("kernel runs overlap at vaddr " + hex(vpn_map[i].first * kPage));
        alias.build(vpn_map);
        // Absent = mapped minus present (every present vpn lies inside some mapped interval).
        auto v = vpn_map.begin();
        for (auto [lo, hi] : known.intervals()) {
            uint64_t at = lo;
            for (; v != vpn_map.end() && v->first < hi; ++v) {
                if (v->first > at) absent.push_back({at * kPage, (v->first - at) * kPage});
                at = v->first + 1;
            }
            if (at < hi) absent.push_back({at * kPage, (hi - at) * kPage});
        }

        stretch_begin.resize(P);
        stretch_end.resize(P);
        for (uint64_t q = 0; q < P; ++q)
            stretch_begin[q] = (q > 0 && page_vaddr[q - 1] + kPage == page_vaddr[q]) ? stretch_begin[q - 1]
                                                                                      : static_cast<uint32_t>(q);
        for (uint64_t q = P; q-- > 0;)
            stretch_end[q] = (q + 1 < P && page_vaddr[q] + kPage == page_vaddr[q + 1]) ? stretch_end[q + 1]
                                                                                       : static_cast<uint32_t>(q + 1);
        chunks = (P + kChunkPages - 1) / kChunkPages;
    }

    // Drops the dump pages of canonical pages [q0, q1) from this process (not from the page cache)
    // once a phase is done with them, so RSS stays at a few chunks of the dump instead of all of
    // it. Only for file mappings, where a later read simply refaults the same bytes.
    void release_pages(uint64_t q0, uint64_t q1) const noexcept {
        if (!phys.file_backed()) return;
        PhysicalLayer::Releaser r(phys);
        for (uint64_t q = q0; q < q1; ++q)
            if (page_data[q] != kZeroPage) r.add(page_data[q], kPage);
    }

    // The refusal at the density bound: `what` ("pointer fields", "nodes") passed `bound`.
    [[noreturn]] void throw_density(const char* what, uint64_t bound) const {
        throw InputError("refusing to build the memory graph: its " + std::to_string(P) + " kernel pages from a " +
                         std::to_string(file_bytes) + "-byte compressed file hold more than " + std::to_string(bound) +
                         " " + what + " (" + std::to_string(kMaxPointersPerPage) + " pointer fields and one node per " +
                         std::to_string(kWordsPerNode) + " words per page, and " + std::to_string(kMaxPointersPerFileKiB) +
                         " pointer fields and " + std::to_string(kMaxNodesPerFileKiB) +
                         " nodes per KiB of the file: 2 to 6 times the densest real kernels measured): a compressed "
                         "dump decoding to memory this dense is likely crafted to inflate the graph (a dentry cache "
                         "filling a third of memory comes close); --no-density-bound builds it anyway, within the "
                         "memory available");
    }

    // Before the node and edge arrays exist: what they and the edge phase still take, from the
    // exact pointer count and node count `N` (edges at most 2 × (pointers + N)), against
    // available_memory(), which already leaves out what this process holds.
    void check_memory(uint64_t N) const {
        const uint64_t p = page_ptr_first[P];
        // bytes_for's peak for these counts, less what the scan already holds (targets) or has freed
        // (the per-chunk copies): 8 + 8 bytes per pointer of kBytesPerPointer
        const uint64_t need = bytes_for(0, 0, ws, p, N, 2 * (p + N), params.feature_bytes) - p * 16;
        const auto avail = available_memory();
        if (avail && need > avail->bytes)
            throw InputError("not enough memory for the graph of this dump: its " + std::to_string(p) +
                             " pointer fields and " + std::to_string(N) + " nodes need about " + format_bytes(need) +
                             " more, " + describe(avail) + "; free memory or raise the limit");
    }

    template <typename Word>
    void scan_page(uint64_t q, std::vector<uint64_t>& out, AliasTable::Cache& cache, MappedPages::Cache& mcache) {
        const uint8_t* data = page_data[q];
        if (data == kZeroPage) return;   // no pointer field (a zero word points at no kernel page: none is
                                         // at 0), page_ptr_first[q + 1] the 0 scan() set
        uint64_t* bw = &bits.w[q * bpp / 64];
        uint64_t before = out.size();
        for (uint64_t i = 0; i < bpp; ++i) {
            Word v;
            std::memcpy(&v, data + i * sizeof(Word), sizeof(Word));
            uint32_t c = alias.find(static_cast<uint64_t>(v) / kPage, cache);
            if (c == kNone && !mapped.contains(static_cast<uint64_t>(v) / kPage, mcache)) continue;
            bw[i >> 6] |= uint64_t{1} << (i & 63);
            out.push_back(c == kNone ? kAbsentTarget : uint64_t{c} * kPage + (static_cast<uint64_t>(v) & (kPage - 1)));
        }
        page_ptr_first[q + 1] = out.size() - before;   // a count until the prefix sum
    }

    void scan() {
        bits.w.assign(P * bpp / 64, 0);
        page_ptr_first.assign(P + 1, 0);
        std::vector<std::vector<uint64_t>> chunk_targets(chunks);
        std::atomic<uint64_t> done{0}, found{0};
        const uint64_t bound = density_bound ? max_pointers_for(P, ws, file_bytes) : UINT64_MAX;
        const int64_t nchunks = static_cast<int64_t>(chunks);
        ParallelErrors errors;
#pragma omp parallel
        {
            AliasTable::Cache cache;
            MappedPages::Cache mcache;
#pragma omp for schedule(dynamic, 1)
            for (int64_t c = 0; c < nchunks; ++c)
                errors.run([&] {
                    check_interrupt();
                    uint64_t q0 = static_cast<uint64_t>(c) * kChunkPages, q1 = std::min(P, q0 + kChunkPages);
                    auto& out = chunk_targets[c];
                    out.reserve((q1 - q0) * 32);
                    for (uint64_t q = q0; q < q1; ++q) {
                        if (ws == 8) scan_page<uint64_t>(q, out, cache, mcache);
                        else scan_page<uint32_t>(q, out, cache, mcache);
                    }
                    release_pages(q0, q1);
                    if (found.fetch_add(out.size()) + out.size() > bound) throw_density("pointer fields", bound);
                    uint64_t d = done.fetch_add(q1 - q0) + (q1 - q0);
                    if (progress && omp_get_thread_num() == 0) progress(d * kPage, P * kPage);
                });
        }
        errors.rethrow();
        for (uint64_t q = 0; q < P; ++q) page_ptr_first[q + 1] += page_ptr_first[q];
        targets = BigArray<uint64_t>(page_ptr_first[P]);
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t c = 0; c < nchunks; ++c)
            errors.run([&] {
                auto& v = chunk_targets[c];
                std::copy(v.begin(), v.end(), targets.begin() + page_ptr_first[static_cast<uint64_t>(c) * kChunkPages]);
                std::vector<uint64_t>().swap(v);
            });
        errors.rethrow();
        if (progress) progress(P * kPage, P * kPage);
    }

    // Calls on_segment(start, end, is_node) for each segment starting in chunk c, and
    // on_run(start, end, stretch_begin_bit) for each pointer run starting in it (bit positions).
    // A non-node segment's `end` is only a bound. Events come in bit order.
    template <typename OnSegment, typename OnRun>
    void walk_chunk(uint64_t c, OnSegment&& on_segment, OnRun&& on_run) const {
        uint64_t q = c * kChunkPages, q_end = std::min(P, q + kChunkPages);
        while (q < q_end) {
            uint64_t sb = uint64_t{stretch_begin[q]} * bpp, se = uint64_t{stretch_end[q]} * bpp;
            uint64_t piece_end = std::min<uint64_t>(stretch_end[q], q_end);
            uint64_t g = q * bpp, b = piece_end * bpp;
            if (g != sb) {   // continue what an earlier chunk started
                bool prev = bits.test(g - 1), cur = bits.test(g);
                if (prev && cur) g = bits.next_clear(g, se);
                else if (!prev && !cur) g = bits.next_set(g, b);
            }
            while (g < b) {
                if (!bits.test(g)) {
                    uint64_t lim = std::min(se, g + max_words);
                    uint64_t e = bits.next_set(g, lim);
                    bool whole = e - g < max_words;   // ends at a pointer or the mapping's edge
                    on_segment(g, e, whole || (params.long_gap_nodes && g != sb));   // else: a long gap's node
                    g = whole ? e : bits.next_set(e, b);
                } else {
                    uint64_t e = bits.next_clear(g, se);
                    on_run(g, e, sb);
                    g = e;
                }
            }
            q = piece_end;
        }
    }

    void copy_features(uint64_t g, uint64_t len, uint8_t* dst) const {
        uint64_t want = std::min<uint64_t>(len, params.feature_bytes);
        uint64_t q = g / bpp, off = (g % bpp) * ws;
        while (want > 0) {
            uint64_t n = std::min(want, kPage - off);
            std::memcpy(dst, page_data[q] + off, n);
            dst += n;
            want -= n;
            ++q;
            off = 0;
        }
    }

    void segment(OwnedGraph& g) {
        std::vector<uint64_t> chunk_nodes(chunks + 1, 0);
        const int64_t nchunks = static_cast<int64_t>(chunks);
        ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t c = 0; c < nchunks; ++c)
            errors.run([&] {
                check_interrupt();
                uint64_t n = 0;
                walk_chunk(static_cast<uint64_t>(c), [&](uint64_t, uint64_t, bool node) { n += node; },
                           [](uint64_t, uint64_t, uint64_t) {});
                chunk_nodes[c + 1] = n;
            });
        errors.rethrow();
        for (uint64_t c = 0; c < chunks; ++c) chunk_nodes[c + 1] += chunk_nodes[c];
        uint64_t N = chunk_nodes[chunks];
        if (const uint64_t bound = max_nodes_for(P, ws, file_bytes); density_bound && N > bound) throw_density("nodes", bound);
        if (N >= kNone) throw InputError("memory graph would exceed 2^32-1 nodes");
        if (memory_check) check_memory(N);
        g.vaddr = BigArray<uint64_t>(N);
        g.paddr = BigArray<uint64_t>(N);
        g.length = BigArray<uint32_t>(N);
        g.features = BigArray<uint8_t>(N * params.feature_bytes);   // zero: the padding of short nodes
        starts.w.assign(bits.w.size(), 0);
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t c = 0; c < nchunks; ++c)
            errors.run([&] {
                check_interrupt();
                uint64_t n = chunk_nodes[c];
                walk_chunk(
                    static_cast<uint64_t>(c),
                    [&](uint64_t s, uint64_t e, bool node) {
                        if (!node) return;
                        uint64_t q = s / bpp, off = (s % bpp) * ws;
                        g.vaddr[n] = page_vaddr[q] + off;
                        g.paddr[n] = page_paddr[q] + off;
                        g.length[n] = static_cast<uint32_t>((e - s) * ws);
                        copy_features(s, (e - s) * ws, &g.features[n * params.feature_bytes]);
                        starts.w[s >> 6] |= uint64_t{1} << (s & 63);   // pages of one chunk: no sharing
                        ++n;
                    },
                    [](uint64_t, uint64_t, uint64_t) {});
                uint64_t q0 = static_cast<uint64_t>(c) * kChunkPages;
                release_pages(q0, std::min(P, q0 + kChunkPages));
            });
        errors.rethrow();
        page_node_first.resize(P + 1);
        page_node_first[P] = static_cast<uint32_t>(N);
        const int64_t np = static_cast<int64_t>(P);
#pragma omp parallel for schedule(static)
        for (int64_t q = 0; q < np; ++q)
            errors.run([&] {
                page_node_first[q] = static_cast<uint32_t>(
                    std::lower_bound(g.vaddr.begin(), g.vaddr.end(), page_vaddr[q]) - g.vaddr.begin());
            });
        errors.rethrow();
    }

    // The node a pointer with canonical linear target `t` leads to, or kNone.
    //
    // Fast path, when a node starts in t's page at or before t: everything needed sits in the
    // page's cache lines of `starts` and `bits`. t is inside that node iff no pointer field lies
    // between the node's first word and t's word (inclusive); if t's word is itself a pointer
    // field, the node is the nearest one before it. Otherwise, search the node arrays.
    uint32_t target_node(const OwnedGraph& g, uint64_t t) const noexcept {
        if (t == kAbsentTarget) return kNone;
        uint64_t q = t / kPage, off = t % kPage;
        uint64_t g0 = q * bpp, gw = g0 + off / ws;
        uint64_t s = starts.last_set(g0, gw + 1);
        if (s != gw + 1) {
            auto n = static_cast<uint32_t>(page_node_first[q] + starts.count(g0, s));
            if (params.long_gap(g.length[n])) return kNone;   // a long gap's node is no target
            if (!bits.test(gw)) return bits.count(s, gw) == 0 ? n : kNone;
            return (gw - s) * ws + off % ws <= params.pointer_target_back ? n : kNone;
        }
        // A page without pointer fields lies inside one segment of at least a page: no node.
        if (params.max_segment <= kPage && bits.count(g0, g0 + bpp) == 0) return kNone;
        uint64_t v = page_vaddr[q] + off;
        auto first = g.vaddr.begin() + page_node_first[q], last = g.vaddr.begin() + page_node_first[q + 1];
        auto it = std::upper_bound(first, last, v);
        if (it == g.vaddr.begin()) return kNone;
        auto n = static_cast<uint32_t>(it - g.vaddr.begin() - 1);
        if (params.long_gap(g.length[n])) return kNone;
        uint64_t d = v - g.vaddr[n];
        if (d < g.length[n]) return n;
        if (bits.test(q * bpp + off / ws) && d <= params.pointer_target_back) return n;
        return kNone;
    }

    // The nodes C (segment ending where the run starts) and D (segment starting where it ends)
    // of the pointer run [r, e); `next` = number of nodes starting before r.
    std::pair<uint32_t, uint32_t> run_sides(const OwnedGraph& g, uint64_t r, uint64_t e, uint64_t sb,
                                            uint64_t next) const noexcept {
        uint32_t C = kNone, D = kNone;
        uint64_t rv = bit_vaddr(r);
        if (r != sb && next > 0 && g.vaddr[next - 1] + g.length[next - 1] == rv && !params.long_gap(g.length[next - 1]))
            C = static_cast<uint32_t>(next - 1);   // (a long gap's node has no right boundary)
        if (next < g.vaddr.size() && g.vaddr[next] == rv + (e - r) * ws) D = static_cast<uint32_t>(next);
        return {C, D};
    }

    // Frees what only the page walks need (walk_chunk, target_node, run_sides); page_ptr_first and
    // absent stay for run().
    void free_walk_state() noexcept {
        for (auto* v : {&page_vaddr, &page_paddr}) free_storage(*v);
        free_storage(page_data);
        for (auto* v : {&stretch_begin, &stretch_end, &page_node_first}) free_storage(*v);
        for (Bits* b : {&bits, &starts}) free_storage(b->w);
        alias = AliasTable();
        mapped = MappedPages();
        return_free_heap();
    }

    void edges(OwnedGraph& g) {
        const uint64_t N = g.vaddr.size();
        constexpr int LP = static_cast<int>(EdgeKind::LeftPointer), RP = static_cast<int>(EdgeKind::RightPointer);
        for (int k = 0; k < kEdgeKinds; ++k) g.offsets[k] = BigArray<uint64_t>(N + 1);
        auto& lpo = g.offsets[LP];
        auto& rpo = g.offsets[RP];
        auto t0 = Clock::now();
        // Every pointer's target node, in one flat pass: the lookups are random reads of the
        // target page's lines in `starts`, `bits` and `page_node_first`, so prefetch them ahead.
        // Each block's targets are given back once resolved, so that the targets (8 bytes a
        // pointer) and their nodes (4) are not held whole at once; `starts` goes after the pass.
        const uint64_t M = targets.size();
        BigArray<uint32_t> resolved(M);
        constexpr uint64_t kBlock = 1 << 14;   // 128 KiB of targets: whole pages
        const int64_t blocks = static_cast<int64_t>((M + kBlock - 1) / kBlock);
        constexpr uint64_t kAhead = 12;
        ParallelErrors errors;
#pragma omp parallel for schedule(static, 1)
        for (int64_t b = 0; b < blocks; ++b)
            errors.run([&] {
                check_interrupt();
                const uint64_t lo = static_cast<uint64_t>(b) * kBlock, hi = std::min(M, lo + kBlock);
                for (uint64_t i = lo; i < hi; ++i) {
                    if (i + kAhead < hi && targets[i + kAhead] != kAbsentTarget) {
                        uint64_t q = targets[i + kAhead] / kPage;
                        __builtin_prefetch(&starts.w[q * bpp / 64 + (targets[i + kAhead] % kPage) / ws / 64]);
                        __builtin_prefetch(&bits.w[q * bpp / 64 + (targets[i + kAhead] % kPage) / ws / 64]);
                        __builtin_prefetch(&page_node_first[q]);
                    }
                    resolved[i] = target_node(g, targets[i]);
                }
                targets.release(lo, hi);
            });
        errors.rethrow();
        targets = {};
        free_storage(starts.w);
        // Pass 1: each run's distinct target nodes, kept per chunk in run order; row sizes.
        std::vector<std::vector<uint32_t>> chunk_srcs(chunks);
        const int64_t nchunks = static_cast<int64_t>(chunks);
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t ci = 0; ci < nchunks; ++ci)
            errors.run([&] {
                check_interrupt();
                uint64_t c = static_cast<uint64_t>(ci);
                uint64_t next = page_node_first[c * kChunkPages];
                auto& srcs = chunk_srcs[c];
                walk_chunk(
                    c, [&](uint64_t, uint64_t, bool node) { next += node; },
                    [&](uint64_t r, uint64_t e, uint64_t sb) {
                        auto [C, D] = run_sides(g, r, e, sb, next);
                        if (C == kNone && D == kNone) return;
                        uint64_t q = r / bpp;
                        uint64_t k = page_ptr_first[q] + bits.count(q * bpp, r);
                        uint64_t first = srcs.size();
                        for (uint64_t i = 0; i < e - r; ++i) {
                            uint32_t t = resolved[k + i];
                            if (t != kNone) srcs.push_back(t);
                        }
                        std::sort(srcs.begin() + first, srcs.end());
                        srcs.erase(std::unique(srcs.begin() + first, srcs.end()), srcs.end());
                        uint64_t count = srcs.size() - first;
                        if (C != kNone) rpo[C + 1] = count;
                        if (D != kNone) lpo[D + 1] = count;
                    });
            });
        errors.rethrow();
        resolved = {};
        phases.edges = seconds_since(t0);
        t0 = Clock::now();
        prefix_sum(lpo.begin(), N + 1);
        prefix_sum(rpo.begin(), N + 1);
        g.sources[LP] = BigArray<uint32_t>(lpo[N]);
        g.sources[RP] = BigArray<uint32_t>(rpo[N]);
        // Pass 2: the same walk finds the same runs in the same order; copy each list to its rows.
#pragma omp parallel for schedule(dynamic, 1)
        for (int64_t ci = 0; ci < nchunks; ++ci)
            errors.run([&] {
                check_interrupt();
                uint64_t c = static_cast<uint64_t>(ci);
                uint64_t next = page_node_first[c * kChunkPages];
                const auto& srcs = chunk_srcs[c];
                uint64_t at = 0;
                walk_chunk(
                    c, [&](uint64_t, uint64_t, bool node) { next += node; },
                    [&](uint64_t r, uint64_t e, uint64_t sb) {
                        auto [C, D] = run_sides(g, r, e, sb, next);
                        if (C == kNone && D == kNone) return;
                        uint64_t count = C != kNone ? rpo[C + 1] - rpo[C] : lpo[D + 1] - lpo[D];
                        auto from = srcs.begin() + static_cast<int64_t>(at), to = from + static_cast<int64_t>(count);
                        if (C != kNone) std::copy(from, to, g.sources[RP].begin() + rpo[C]);
                        if (D != kNone) std::copy(from, to, g.sources[LP].begin() + lpo[D]);
                        at += count;
                    });
                std::vector<uint32_t>().swap(chunk_srcs[c]);
            });
        errors.rethrow();
        // The walks are done: what they read of the dump's pages goes before the ln/rn arrays come
        // (bitmaps, page arrays, alias table: 35 MB of the 1 GiB dev guest's 136 MB peak), and the
        // per-thread heaps give back the freed per-chunk lists.
        free_walk_state();
        // ln: A→B in B's row; rn: B→A in A's row; A, B consecutive nodes closer than the limit.
        constexpr int LN = static_cast<int>(EdgeKind::LeftNeighbour), RN = static_cast<int>(EdgeKind::RightNeighbour);
        auto& lno = g.offsets[LN];
        auto& rno = g.offsets[RN];
        const int64_t nn = static_cast<int64_t>(N);
#pragma omp parallel for schedule(static)
        for (int64_t a = 0; a < nn - 1; ++a)
            errors.run([&] {
                if (g.vaddr[a + 1] - (g.vaddr[a] + g.length[a]) < params.neighbour_distance) {
                    // a long gap's node is a sink: it feeds no node
                    if (!params.long_gap(g.length[a])) lno[a + 2] = 1;       // row a+1 gets a
                    if (!params.long_gap(g.length[a + 1])) rno[a + 1] = 1;   // row a gets a+1
                }
            });
        errors.rethrow();
        prefix_sum(lno.begin(), N + 1);
        prefix_sum(rno.begin(), N + 1);
        g.sources[LN] = BigArray<uint32_t>(lno[N]);
        g.sources[RN] = BigArray<uint32_t>(rno[N]);
#pragma omp parallel for schedule(static)
        for (int64_t n = 0; n < nn; ++n)
            errors.run([&] {
                if (lno[n + 1] != lno[n]) g.sources[LN][lno[n]] = static_cast<uint32_t>(n - 1);
                if (rno[n + 1] != rno[n]) g.sources[RN][rno[n]] = static_cast<uint32_t>(n + 1);
            });
        errors.rethrow();
        phases.csr = seconds_since(t0);
    }

    MemoryGraph run(std::span<const VirtualRun> runs, std::span<const VirtualRun> mapped_runs,
                    std::span<const std::pair<uint64_t, uint64_t>> spans = {}) {
        check_params(params);
        ws = params.word_size;
        bpp = kPage / ws;
        max_words = (params.max_segment + ws - 1) / ws;
        auto t = Clock::now();
        canonical_pages(runs, mapped_runs, spans);
        phases.pages = seconds_since(t);
        check_interrupt();
        t = Clock::now();
        scan();
        phases.scan = seconds_since(t);
        check_interrupt();
        auto owned = std::make_shared<OwnedGraph>();
        t = Clock::now();
        segment(*owned);
        phases.segment = seconds_since(t);
        check_interrupt();
        edges(*owned);
        check_interrupt();

        MemoryGraph mg;
        mg.params_ = params;
        mg.info_.kernel_pages = P;
        mg.info_.pointer_fields = page_ptr_first[P];
        for (const auto& a : absent) mg.info_.absent_pages += a.size / kPage;
        owned->absent = std::move(absent);
        mg.absent_ = owned->absent;
        mg.phases_ = phases;
        mg.vaddr_ = owned->vaddr.view();
        mg.paddr_ = owned->paddr.view();
        mg.length_ = owned->length.view();
        mg.features_ = owned->features.view();
        for (int k = 0; k < kEdgeKinds; ++k) mg.in_[k] = {owned->offsets[k].view(), owned->sources[k].view()};
        mg.storage_ = std::move(owned);
        return mg;
    }
};

MemoryGraph MemoryGraph::build(std::span<const VirtualRun> kernel_runs, const PhysicalLayer& phys,
                               GraphParams params, const ProgressFn& progress) {
    auto t = Clock::now();
    MemoryGraphBuilder b(phys, params, progress);
    MemoryGraph g = b.run(kernel_runs, {});
    g.info_.dump_bytes = phys.dump_size();
    g.dump_held_bytes_ = phys.held_bytes();
    g.info_.stored_page_bytes = phys.stored_page_bytes();
    g.info_.kernel_banner = find_kernel_banner(phys, kernel_runs, params.word_size);
    g.info_.build_seconds = seconds_since(t);
    return g;
}

GraphEstimate MemoryGraph::estimate(const TranslationLayer& layer, const GraphParams& params) {
    uint64_t kernel = 0, held = 0;
    for (const auto& r : layer.kernel_runs()) kernel += r.size / kPage;
    for (const auto& r : layer.physical().runs()) held += r.size / kPage;
    GraphEstimate e;
    e.pages = std::min(kernel, held);
    const uint64_t ws = layer.word_size();
    e.max_pointers = max_pointers_for(e.pages, ws, compressed_bytes(layer.physical()));
    e.max_nodes = max_nodes_for(e.pages, ws, compressed_bytes(layer.physical()));
    // the expected counts, never above the bound (a compressed file's may be the lower)
    e.pointers = std::min(e.pages * std::min<uint64_t>(kPointersPerPage, kPage / ws), e.max_pointers);
    e.nodes = std::min(e.pages * kNodesPerPage, e.max_nodes);
    e.edges = std::min(e.pages * kEdgesPerPage, 2 * (e.max_pointers + e.max_nodes));
    e.bytes = bytes_for(kernel, e.pages, ws, e.pointers, e.nodes, e.edges, params.feature_bytes);
    e.max_bytes = bytes_for(kernel, e.pages, ws, e.max_pointers, e.max_nodes, 2 * (e.max_pointers + e.max_nodes),
                            params.feature_bytes);
    return e;
}

std::string describe(const GraphEstimate& e) {
    return "a budget of " + format_bytes(e.bytes) + " for " + std::to_string(e.pages) + " kernel pages (" +
           std::to_string(e.nodes) + " nodes and " + std::to_string(e.edges) +
           " edges, twice the densities of real kernels, which take about half; at most " + format_bytes(e.max_bytes) +
           ", the density bound)";
}

MemoryGraph MemoryGraph::build(const TranslationLayer& layer, GraphParams params, const ProgressFn& progress,
                               bool density_bound, const InterruptFn& interrupt) {
    auto t = Clock::now();
    params.word_size = layer.word_size();
    auto runs = layer.kernel_runs();
    auto mapped = layer.mapped_kernel_runs();
    double enumerate = seconds_since(t);
    const GraphEstimate need = estimate(layer, params);
    const auto avail = available_memory();
    if (avail && need.bytes > avail->bytes)
        throw InputError("not enough memory for the graph of this dump: it needs " + describe(need) + ", " +
                         describe(avail) + "; free memory or raise the limit");
    MemoryStage stage("building the memory graph of " + std::to_string(need.pages) + " kernel pages", need.bytes);
    MemoryGraph g;
    {   // the builder's page arrays, bitmaps and alias table are freed before the banner search below
        MemoryGraphBuilder b(layer.physical(), params, progress);
        b.interrupt = interrupt;
        // Only a compressed file can hold more memory than its size (kdump, AVML: up to DecodedImage's
        // 24×); the graph of a raw, ELF or LiME file is bounded by the file itself, so dense honest
        // memory (a dentry cache filling a third of RAM passes the bound: tester 9) is never refused there.
        b.file_bytes = compressed_bytes(layer.physical());
        b.density_bound = density_bound && b.file_bytes != 0;
        b.memory_check = true;
        try {
            g = b.run(runs, mapped, layer.absent_table_spans());
        } catch (const std::bad_alloc&) {
            throw InputError(out_of_memory_message());
        }
    }
    g.info_.dump_bytes = layer.physical().dump_size();
    g.dump_held_bytes_ = layer.physical().held_bytes();
    g.info_.stored_page_bytes = layer.physical().stored_page_bytes();
    for (const auto& [lo, size] : layer.absent_table_spans())
        g.info_.absent_table_bytes = size > ~g.info_.absent_table_bytes ? ~uint64_t{0} : g.info_.absent_table_bytes + size;
    if (const paging::Scheme& s = paging::scheme_of(layer.mode()); s.sign_extend) {
        const uint64_t lo = s.anchor_vaddr, hi = s.anchor_vaddr + s.text_window;
        uint64_t image = 0;
        for (const VirtualRun& r : runs)
            if (r.vaddr < hi && r.vaddr + r.size > lo) image += std::min(hi, r.vaddr + r.size) - std::max(lo, r.vaddr);
        g.info_.kernel_image_bytes = image;
    }
    g.info_.kernel_banner = find_kernel_banner(layer.physical(), runs, params.word_size, interrupt);
    g.phases_.pages += enumerate;
    g.info_.dtb = layer.dtb();
    g.info_.paging = layer.mode();
    std::vector<std::string> warnings = layer.physical().warnings();
    for (std::string& w : layer.warnings()) warnings.push_back(std::move(w));
    g.set_warnings(std::move(warnings));
    g.info_.build_seconds = seconds_since(t);
    return g;
}

void MemoryGraph::set_warnings(std::vector<std::string> lines) {
    const size_t limit = GraphBuildInfo::kMaxWarnings;
    const size_t left_out = lines.size() > limit ? lines.size() - (limit - 1) : 0;
    if (left_out > 0) lines.resize(limit - 1);
    for (std::string& w : lines) {
        w = terminal_text(w);
        if (w.size() > GraphBuildInfo::kMaxWarningBytes) {   // valid UTF-8 now: cut on a character boundary
            size_t n = GraphBuildInfo::kMaxWarningBytes;
            while (n > 0 && (static_cast<unsigned char>(w[n]) & 0xc0) == 0x80) --n;
            w.resize(n);
        }
        if (w.empty()) w = "(empty warning)";
    }
    if (left_out > 0)
        lines.push_back("… and " + std::to_string(left_out) + " more warnings, left out (at most " +
                        std::to_string(limit) + " lines are kept)");
    info_.warnings = std::move(lines);
}

Neighbourhood neighbourhood(const MemoryGraph& g, uint32_t centre, unsigned hops, uint32_t max_nodes) {
    Neighbourhood out;
    if (centre >= g.node_count()) throw InputError("node " + std::to_string(centre) + " is not in the graph");
    max_nodes = std::max<uint32_t>(max_nodes, 1);
    std::vector<uint8_t> picked(g.node_count(), 0);
    std::vector<uint32_t> frontier{centre}, next;
    picked[centre] = 1;
    out.nodes.push_back(centre);
    std::array<Csr, kEdgeKinds> outgoing;
    if (hops > 0)
        for (int k = 0; k < kEdgeKinds; ++k) transpose(g.in(static_cast<EdgeKind>(k)), outgoing[k]);
    for (unsigned h = 0; h < hops && !frontier.empty() && !out.truncated; ++h) {
        next.clear();
        for (int k = 0; k < kEdgeKinds; ++k)
            for (uint32_t n : frontier) {
                for (uint32_t s : g.in(static_cast<EdgeKind>(k)).row(n)) next.push_back(s);   // edges into n
                for (uint32_t d : outgoing[k].view().row(n)) next.push_back(d);               // edges out of n
            }
        std::sort(next.begin(), next.end());
        next.erase(std::unique(next.begin(), next.end()), next.end());
        frontier.clear();
        for (uint32_t n : next) {
            if (picked[n]) continue;
            if (out.nodes.size() >= max_nodes) { out.truncated = true; break; }
            picked[n] = 1;
            out.nodes.push_back(n);
            frontier.push_back(n);
        }
    }
    std::sort(out.nodes.begin(), out.nodes.end());
    return out;
}

void refuse_empty_graph(const MemoryGraph& g) {
    if (g.node_count() > 0) return;
    const GraphBuildInfo& i = g.info();
    std::string why = i.kernel_pages == 0 ? "no kernel page is present in the dump"
                      : i.pointer_fields == 0
                          ? "none of them holds a pointer into kernel memory (are the dump's pages zeros, or another "
                            "machine's memory behind these page tables?)"
                          : "their " + std::to_string(i.pointer_fields) + " pointer fields leave no segment";
    throw InputError("the memory graph has no node: " + std::to_string(i.kernel_pages) +
                     " kernel pages scanned under the page-table root " + hex(i.dtb) + " (" + to_string(i.paging) +
                     "), " + why + "; nothing can be detected (give --dtb and --paging if another root is right)");
}

}  // namespace deepmem
