// Stage 3 of the pipeline: translation layer → memory graph (paper §3.2), and its `.dmg` file.
//
// Contract
//   Pointer field  an aligned machine word (layer word size) whose value is a kernel virtual
//                  address the page tables map (TranslationLayer::mapped_kernel_runs()), whether
//                  or not the dump holds that page: a pointer into an absent page (per-CPU areas
//                  cut off a raw dump, MMIO, memory a capture skipped) bounds segments like any
//                  other and only lacks a target node. So does a value under a page table the
//                  dump lacks (TranslationLayer::absent_table_spans(): a dump cut below the
//                  tables of vmalloc, vmemmap and the direct map). So raw, ELF, LiME, kdump and AVML copies of
//                  one dump give identical graphs. "Holds" is PhysicalLayer::runs(): the holes of
//                  a sparse file read as zeros and are held (a sparse copy of a raw dump gives
//                  the dense file's graph), as a kdump or AVML zero page is; memory outside the
//                  runs (an ELF core's missing ranges, past a raw file's end) is absent.
//   Segment/node   the bytes between two pointer fields (or a mapping edge) inside the kernel
//                  mappings; zero-length gaps make no node. A node keeps its true length and its
//                  first `feature_bytes` bytes (zero-padded) as its input vector.
//   Long gaps      a gap of `max_segment` bytes or more makes no ordinary node. When
//                  `long_gap_nodes` is set and the gap follows a pointer field, it makes one node at
//                  its start, of length max_segment rounded up to whole words (so `length ≥
//                  max_segment` tells it; its true length is not known), its first feature_bytes as
//                  input: the tail of the last object before a pointer-free stretch (a slab page's
//                  last slot followed by a page without pointers: its object's last segment was no
//                  node). Such a node is a sink: it receives ln, rn, lp and rp edges as any node but
//                  is no edge's source (never a pointer's target, nobody's neighbour), so every other
//                  node's rows, and so its embedding (paper §3.3), are the same with or without it;
//                  a model trained without them runs unchanged on a graph with them (only the nodes
//                  that can vote are more: nor does one extend a chain of split parts, detect.hpp
//                  Votes). It has no right boundary (no rp edge). This needs neighbour_distance ≤
//                  max_segment and pointer_target_back < max_segment (the defaults are 512, 128, 4096;
//                  InputError otherwise, GraphParams::long_gap_conflict). Not a model parameter; the
//                  .dmg records it (version 7), and its loader checks all of the above.
//   Edges          stored per kind as CSR over *incoming* edges (row n lists the sources m of the
//                  edges m→n), so the GNN's Σ over a neighbour set is a row sum. Directions follow
//                  information flow:
//                    LeftNeighbour  A→B  when A is B's left neighbour  (gap < neighbour_distance)
//                    RightNeighbour B→A  when B is A's right neighbour
//                    LeftPointer    D→C  when a pointer on C's left boundary points into D
//                    RightPointer   A→C  when a pointer on C's right boundary points into A
//                  A run of consecutive pointers between C and D is C's right boundary and D's left
//                  boundary. A pointer's target node is the node containing the target; when the
//                  target is itself a pointer field, the nearest node starting at most
//                  `pointer_target_back` bytes before it. No edges in the points-to direction.
//                  Duplicate edges (same source, destination and kind, e.g. two pointers of one
//                  run into the same node) are stored once; each row is sorted ascending.
//                  Self edges are kept (a pointer on C's boundary may point into C).
//   Aliases        a physical page mapped at several kernel vaddrs is scanned once, at its lowest
//                  kernel vaddr; a pointer value is resolved vaddr → paddr → that canonical vaddr.
//   File           versioned, checksummed, 64-byte-aligned arrays, loadable by mmap. Every
//                  parameter above is recorded in the header and reported by `dmgraph info`,
//                  and so is the kernel banner build() finds (graph/kernel_banner.hpp).
//                  Layout and checks: graph/graph_file.cpp.
//   Determinism    the graph depends only on the memory and the parameters, never on the number
//                  of OpenMP threads; so does its file, apart from build_seconds and dump_path.
//   Limits         fewer than 2^32-1 nodes and kernel pages (InputError otherwise). build() from a
//                  translation layer first compares estimate() with available_memory()
//                  (graph/memory_budget.hpp) and refuses with both figures when it does not fit;
//                  once the pointer scan and the node count are exact it compares again, before
//                  the node and edge arrays are allocated; an allocation failure later is an
//                  InputError too, never an abort.
//   Density bound  build() from a translation layer of a compressed dump (kdump, AVML: up to 24 times
//                  its size of memory, graph/decoded_image.hpp) also stops (InputError) as soon as the
//                  dump holds more pointer fields or nodes than GraphEstimate::max_pointers / max_nodes:
//                  128 pointer fields and one node per 16 words per kernel page, 4–6 times the
//                  densest real kernels measured (graph/memory_graph.cpp), and 128 pointer fields
//                  and 64 nodes per KiB of the compressed file, twice the densest real kdumps, so
//                  only memory crafted to inflate the graph meets it (a 16 MiB kdump whose every
//                  page decompresses to alternating pointers and data: 25 M nodes; a 62.5 MiB one
//                  at the per-page bound: 11 M nodes; issue #15). Time and memory are then bounded
//                  by the kernel pages and the file's size. Raw, ELF and LiME files are not bounded so: their
//                  graph is bounded by the file's size, and honest memory can come near the bound (a
//                  dentry cache filling a third of RAM passes it). `density_bound = false` lifts it
//                  (the memory checks still hold).
#pragma once

#include "graph/csr.hpp"
#include "graph/kernel_banner.hpp"
#include "graph/layers.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace deepmem {

enum class EdgeKind : uint8_t { LeftNeighbour = 0, RightNeighbour = 1, LeftPointer = 2, RightPointer = 3 };
inline constexpr int kEdgeKinds = 4;
const char* to_string(EdgeKind);   // "ln", "rn", "lp", "rp"

struct GraphParams {
    uint32_t word_size = 8;              // set from the translation layer by build()
    uint32_t feature_bytes = 64;         // content bytes kept per node
    uint32_t max_segment = 4096;         // a gap this long or longer between pointers makes no ordinary node
    uint32_t neighbour_distance = 512;   // ln/rn only when B.vaddr − (A.vaddr + A.length) < this
    uint32_t pointer_target_back = 128;  // see "target is itself a pointer field" above
    bool long_gap_nodes = true;          // see "Long gaps" above
    bool operator==(const GraphParams&) const = default;
    // Whether a node of this length is a long gap's node (no ordinary node is max_segment long).
    bool long_gap(uint32_t length) const noexcept { return length >= max_segment; }
    // The length of a long gap's node: max_segment rounded up to whole words.
    uint32_t long_gap_length() const noexcept { return (max_segment + word_size - 1) / word_size * word_size; }
    // Empty, or why these parameters cannot make long gaps' nodes sinks: a long gap parts two nodes
    // that are neighbours only when neighbour_distance > max_segment, and shadows a pointer field's
    // target node only when pointer_target_back ≥ max_segment.
    std::string long_gap_conflict() const;
};

// Kernel virtual pages [vaddr, vaddr + size) the page tables map but the dump does not hold.
struct AbsentRun {
    uint64_t vaddr = 0;
    uint64_t size = 0;   // bytes, a multiple of 4096
    bool operator==(const AbsentRun&) const = default;
};

// Facts about how a graph was made, recorded in the file for `dmgraph info` and provenance.
struct GraphBuildInfo {
    std::string dump_path;            // absolute (set_dump_path); older .dmg files: as it was typed
    uint64_t dump_bytes = 0;          // the dump's size as given (compressed for kdump/AVML): PhysicalLayer::dump_size
    // PhysicalLayer::stored_page_bytes: for kdump and AVML, the file bytes their non-zero pages
    // take, at most 1 KiB a page; none for other formats and in .dmg files before version 8.
    std::optional<uint64_t> stored_page_bytes;
    uint64_t kernel_pages = 0;        // 4 KiB kernel pages scanned (after alias removal)
    uint64_t absent_pages = 0;        // 4 KiB kernel pages mapped but not in the dump (Σ absent())
    // Kernel virtual address space, bytes, under page-table entries whose table the dump lacks
    // (Σ TranslationLayer::absent_table_spans sizes, saturating): memory the dump may lack beyond
    // absent_pages, which only counts what surviving tables map. 0 in .dmg files before version 5.
    uint64_t absent_table_bytes = 0;
    // Bytes of present memory the page tables map in the kernel image's window (x86-64
    // [0xffffffff80000000, +1 GiB): __START_KERNEL_map, KERNEL_IMAGE_SIZE,
    // arch/x86/include/asm/page_64_types.h; paging::Scheme anchor_vaddr, text_window), aliases
    // included: the graph keeps those pages at their direct-map addresses, so this is where their
    // loss shows (a capture cut below the image: 0). None for 32-bit and PAE (the image lies in the
    // direct map) and in .dmg files before version 6.
    std::optional<uint64_t> kernel_image_bytes;
    uint64_t pointer_fields = 0;
    uint64_t dtb = 0;
    PagingMode paging = PagingMode::X86_64_4Level;
    double build_seconds = 0;
    std::optional<FoundBanner> kernel_banner;   // the dump's `Linux version …` (kernel_banner.hpp)
    // What the layers said about the dump (PhysicalLayer::warnings, then TranslationLayer::warnings:
    // a truncated file, tables it lacks, a root that maps part of the kernel), one line each, so that
    // a tool reading the .dmg says them too (attacker 12: `dmdetect G.dmg` was silent about them).
    // At most kMaxWarnings lines of 1 to kMaxWarningBytes bytes, each terminal text (text_lines.hpp:
    // valid UTF-8, no control or bidi character).
    std::vector<std::string> warnings;
    static constexpr size_t kMaxWarnings = 256, kMaxWarningBytes = 4096;
};

// Wall-clock seconds of each build phase, for tools/bench-graph. Not stored in the file.
struct GraphBuildPhases {
    double pages = 0;     // kernel pages → canonical pages, alias table
    double scan = 0;      // pointer scan over every canonical page (the only full pass over the dump)
    double segment = 0;   // nodes, lengths, features
    double edges = 0;     // pointer-target resolution, distinct targets per pointer run
    double csr = 0;       // prefix sums and row fills
};

// What build() will need, from the number of kernel pages alone (before any scan):
//   pages     canonical kernel pages, at most min(present kernel pages, pages the dump holds)
//   pointers, nodes, edges   expected: pages × densities of real dumps (graph/memory_graph.cpp,
//             k…PerPage) times a margin of 2, at most the density bound
//   bytes     expected peak heap of build(): a fixed cost per present kernel page mapping (aliases
//             included), page, pointer, node (plus feature_bytes) and edge, read off the
//             builder's arrays (graph/memory_graph.cpp, bytes_for())
//   max_pointers, max_nodes   the density bound build() enforces (see Density bound above);
//             edges are at most 2 × (pointers + nodes) by construction
//   max_bytes the peak heap at the bound: what build() can take at most, unless the bound is lifted
struct GraphEstimate {
    uint64_t pages = 0, pointers = 0, nodes = 0, edges = 0, bytes = 0;
    uint64_t max_pointers = 0, max_nodes = 0, max_bytes = 0;
};
// "a budget of 150 MiB for 60000 kernel pages (960000 nodes and 4400000 edges, twice the densities
// of real kernels, which take about half; at most 1.9 GiB, the density bound)": the one wording of
// an estimate, in refusals and in what dmgraph/dmdetect print (newcomer 17 read "about 282 MiB" as
// a forecast of a run that peaked at 116 MiB).
std::string describe(const GraphEstimate&);

using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;
// build()'s InterruptFn (graph/layers.hpp): called between its steps and per chunk of its passes over
// the pages, pointers and nodes (the scan, segment and edge passes; not the sorts of the page list,
// nor the CSR's last fills); what it throws leaves build(), which makes no graph.

// The .dmg checksum over a whole file image (it covers bytes [24, size)); for tests and tools that
// craft or patch files. The value is what load() compares with the header's checksum field.
uint64_t dmg_checksum(std::span<const uint8_t> file) noexcept;

class MemoryGraph;
// Throws InputError when `g` has no node, with what its build saw (kernel pages scanned, pointer
// fields, root and scheme): nothing can be detected in it, and a tool must never hand one on
// silently (issue #11 item 2: correct page tables over pages of zeros gave 0 nodes and exit 0).
// Called by `dmgraph build` before writing and by Detector::build_graph / open_graph.
void refuse_empty_graph(const MemoryGraph& g);

class MemoryGraph {
public:
    static GraphEstimate estimate(const TranslationLayer& layer, const GraphParams& params = {});

    // Scans every kernel page of `layer` once. Parallel (OpenMP); peak RSS is the graph itself
    // plus O(pages + pointers), never a copy of the dump: on a file-backed layer the dump pages
    // are dropped from the process (MADV_DONTNEED) chunk by chunk once read. params.word_size is
    // taken from the layer. Throws InputError for bad params, a graph beyond the limits or the
    // density bound (unless `density_bound` is false), or one that does not fit in memory (see
    // Limits and Density bound above); and what `interrupt` throws (InterruptFn, below).
    static MemoryGraph build(const TranslationLayer& layer, GraphParams params = {},
                             const ProgressFn& progress = {}, bool density_bound = true,
                             const InterruptFn& interrupt = {});
    // The same over an explicit list of kernel mappings (aliases included; pages the physical
    // layer lacks are mapped but absent) and the physical layer that backs them; used by unit
    // tests to build graphs from hand-made memory. No memory check.
    static MemoryGraph build(std::span<const VirtualRun> kernel_runs, const PhysicalLayer& phys,
                             GraphParams params, const ProgressFn& progress = {});

    // Atomic write (temp file + rename). Throws InputError on I/O failure.
    void save(const std::string& path) const;
    // mmaps and validates magic, version, sizes and checksum; throws FormatError on any mismatch.
    static MemoryGraph load(const std::string& path);
    // True when `path` is a regular file that begins with a .dmg's magic ("DMGRAPH\0"); false for
    // anything else, a file that cannot be read included. Reads 8 bytes.
    static bool is_graph_file(const std::string& path);
    static MemoryGraph from_bytes(std::span<const uint8_t> bytes);   // for fuzzers/tests; copies

    const GraphParams& params() const noexcept { return params_; }
    const GraphBuildInfo& info() const noexcept { return info_; }
    const GraphBuildPhases& phases() const noexcept { return phases_; }   // zero after load()
    // Provenance, and where dmdetect reads a .dmg's objects from (the layers do not know file
    // names); recorded by save(). Made absolute: a relative path would be looked up from wherever
    // the .dmg is used (newcomer 18: `dmgraph build n18/d.elf`, then dmdetect from inside n18).
    void set_dump_path(const std::string& path);
    // The layers' warnings (GraphBuildInfo::warnings; build(layer) records them), made what the
    // .dmg accepts: what is not terminal text becomes '?' (terminal_text), a long line is cut on a
    // character boundary, an empty line becomes "(empty warning)", and beyond kMaxWarnings - 1
    // lines the last kept one says how many were left out. Nothing is dropped without a word.
    void set_warnings(std::vector<std::string> lines);
    uint32_t node_count() const noexcept { return static_cast<uint32_t>(vaddr_.size()); }
    uint64_t edge_count(EdgeKind k) const noexcept { return in(k).sources.size(); }
    // Bytes of the node arrays, features and in-edge CSRs: the graph's own size, what a `.dmg`
    // holds beside its header, info and absent runs (the measure of issue 12's memory target).
    uint64_t array_bytes() const noexcept;
    // Bytes of the .dmg this graph was read from (load: those its file holds, a sparse file's holes
    // left out; from_bytes: all); 0 for a graph built from a dump. What the header says of the dump
    // (GraphBuildInfo::dump_bytes) is its writer's word; this is what the input holds (detect.hpp
    // input_bytes).
    uint64_t graph_file_bytes() const noexcept { return graph_file_bytes_; }
    // Bytes the dump's file holds (PhysicalLayer::held_bytes) when the graph was built from it; 0
    // after load() (a .dmg records the dump's size, GraphBuildInfo::dump_bytes, not this).
    uint64_t dump_held_bytes() const noexcept { return dump_held_bytes_; }

    std::span<const uint64_t> vaddr() const noexcept { return vaddr_; }     // sorted ascending
    std::span<const uint64_t> paddr() const noexcept { return paddr_; }
    std::span<const uint32_t> length() const noexcept { return length_; }  // true segment length
    // Node n's input bytes are features()[n*feature_bytes, (n+1)*feature_bytes).
    std::span<const uint8_t> features() const noexcept { return features_; }
    CsrView in(EdgeKind k) const noexcept { return in_[static_cast<int>(k)]; }
    // Mapped kernel pages the dump lacks, sorted by vaddr, disjoint, not adjacent: words pointing
    // there are pointer fields without a target node. Empty in .dmg files of version 1.
    std::span<const AbsentRun> absent() const noexcept { return absent_; }

    // Node whose [vaddr, vaddr+length) contains `vaddr`, if any (binary search).
    std::optional<uint32_t> node_containing(uint64_t vaddr) const noexcept;
    // Nodes with from <= vaddr < to, as [first, last).
    std::pair<uint32_t, uint32_t> nodes_between(uint64_t from, uint64_t to) const noexcept;

private:
    GraphParams params_;
    GraphBuildInfo info_;
    GraphBuildPhases phases_;
    std::shared_ptr<const void> storage_;   // owns the vectors or the mmap the spans below view
    std::span<const uint64_t> vaddr_, paddr_;
    std::span<const uint32_t> length_;
    std::span<const uint8_t> features_;
    std::array<CsrView, kEdgeKinds> in_{};
    std::span<const AbsentRun> absent_;
    uint64_t graph_file_bytes_ = 0;
    uint64_t dump_held_bytes_ = 0;
    friend struct MemoryGraphIo;
    friend struct MemoryGraphBuilder;
};

// Bytes of a graph's segments as its dump held them: which dump a graph was built from, told by
// content (a file's size alone does not tell two raw dumps of one guest apart). Up to `count`
// segments spread over the graph (node i·N/count, or the next with a non-zero byte), each its
// first bytes up to feature_bytes and its page's end, at its paddr.
struct SegmentSample {
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> segments;   // (paddr, bytes)
};
SegmentSample sample_segments(const MemoryGraph& graph, size_t count = 64);
// How many of `sample`'s segments `phys` does not hold byte for byte (absent pages count).
size_t sample_mismatches(const PhysicalLayer& phys, const SegmentSample& sample);

// Nodes within `hops` edges of `centre`, edges of any kind followed in either direction: a BFS
// over the incoming CSRs and their transposes (made once), so each hop costs the edges of its
// frontier only. Each hop adds its new nodes in ascending order and stops at `max_nodes` (then
// `truncated`). What `dmgraph dot --around` draws.
struct Neighbourhood {
    std::vector<uint32_t> nodes;   // ascending, centre included
    bool truncated = false;
};
Neighbourhood neighbourhood(const MemoryGraph& g, uint32_t centre, unsigned hops, uint32_t max_nodes);

}  // namespace deepmem
