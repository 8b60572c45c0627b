// Stage 5 of the pipeline: per-node class probabilities → kernel objects (paper §3.4), and the
// comparison of detected objects with ground truth.
//
// Contract
//   Votes     For a model of type T with key nodes k_1..k_{K−1} (class c ≥ 1 is k_c), node n votes
//             when its most probable class c is ≥ 1 *and* n carries k_c (carries()): its true
//             segment length matches k_c (equals k_c.length, or is at least that for an open-ended
//             key node) — a key node label is the pair (offset, length) — or n is the first part
//             of k_c's segment split by pointers planted inside it (issue #13: one 8-byte write
//             into a counter splits a segment): n is shorter, and n with the nodes that follow it,
//             each one pointer word after the one before (never a long gap's node,
//             graph/memory_graph.hpp), ends where k_c ends (open-ended: at or past it), or one word before (the planted pointer is k_c's last word). The vote is
//             for the base address vaddr[n] − k_c.offset. A base's votes come from distinct
//             classes by construction (one node per address).
//   Score     score(base) = Σ_{votes} k_c.weight + kVoteBonus · (votes − 1); weights are the
//             key nodes' frequencies over the training objects (0..1], so a score is roughly
//             "how many typical segments of a T agree here". A base is reported when
//             score ≥ threshold (the model's calibrated one unless overridden).
//   Window    With model.vote_window = W > 0 (another build's layout shifts fields by a few words), a
//             voted base b scores every key node that voted for a base within [b − W, b + W], each
//             class once: score(b) = Σ_{classes c voting in the window} k_c.weight + kVoteBonus ·
//             (classes − 1), and votes = that class count. Candidates are still only bases that
//             received a vote. Of overlapping candidates of equal score the one whose own votes
//             include the key node of smallest offset is kept (fields near an object's start move
//             least between builds), then the lower address. W = 0 is the exact rule above.
//   Alignment With model.base_alignment = A > 0 (every training object began at a multiple of A: its
//             slab cache's alignment, engine.hpp), a base that is not a multiple of A is no object:
//             with W = 0 its votes make no candidate; with W > 0 a voted base b proposes instead the
//             multiple of A nearest to it (the lower one on a tie) when that lies within W of b, and
//             that base is scored by the Window rule (a base so proposed with no vote of its own has
//             no lead offset: of equal scores, an overlapping voted base wins). So a dead cred whose
//             one key segment moved by a word is not reported, and a build whose fields moved by a
//             word still is at its true base.
//   Overlap   Two objects of one type never overlap, and every key-node offset lies inside the
//             object, so true objects of one type are more than R = max key-node offset apart.
//             Of candidates closer than R the higher score is kept (ties: lower address), greedily
//             in score order, once, before any threshold: a candidate that survives does so at every
//             threshold, so calibration sweeps thresholds over the same list.
//   Order     Detections are sorted by (type, vaddr); results never depend on thread count.
//   Truth     Labels as written by dmlabel (labels.jsonl: one object per line with "vaddr",
//             "type", "size", "state" live|freed; or labels.tsv: vaddr TAB type TAB size, all live).
//   Evaluate  Per type: a detection at the address of a live label of that type is a TP; at a freed
//             label's it is counted apart (freed_found), neither TP nor FP; else FP, and among those the ones
//             inside a freed label's bytes are counted also apart (freed_inside: a dead object voted
//             at a shifted base, e.g. a freed cred whose rcu_head.next still points moves its one
//             key-node segment by 8; its fields read shifted, so it is a wrong answer). "At the
//             address" = same vaddr, or same paddr when both are known: the graph scans a page mapped
//             twice (kernel image and direct map) once, at its direct-map address, while the labeler
//             names init_task by its image address — one object, two names. Live
//             labels not detected are FN. Precision = TP/(TP+FP), recall = TP/(TP+FN) (1 when the
//             denominator is 0).
#pragma once

#include "engine/engine.hpp"
#include "graph/memory_graph.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace deepmem {

inline constexpr float kVoteBonus = 0.01f;

// The highest score a base can get from `model` (Score, Window): every key node voting, Σ weights
// + kVoteBonus · (K − 2) for its K − 1 key nodes, summed as vote() sums them. A threshold above it
// reports nothing on any dump.
float max_score(const Model& model);

// One value read from a detected object's memory (filled by train/interpret.hpp; detect/ only
// prints them): `key` as the JSON key ("pid", "comm", "hidden", "bad" …), `json` the value as a JSON
// literal (null when it failed a sanity check), `text` the same for the table and CSV ("" for null).
// `misread`: null because the bytes read failed (unreadable, out of range, not printable, a loop);
// false for a value the kernel's BTF has no member for, which says nothing about the object.
// `through`: with misread, the other object whose bytes failed when they are not the detection's
// own (a task's parent or real_cred, a file's dentry, an mm's executable file, a dentry's parent or
// superblock); 0 for the detection's own bytes. detect/fit.hpp judge_fields counts the misread ones.
struct ObjectField {
    std::string key, json, text;
    bool misread = false;
    uint64_t through = 0;
    bool operator==(const ObjectField&) const = default;
};

// The types whose objects get a "hidden" verdict, the cross-view against the kernel's own lists
// (train/interpret.hpp: init_task.tasks and thread groups; the modules list; fd tables and mappings).
inline constexpr std::array<std::string_view, 3> kCrossViewTypes = {"task_struct", "module", "file"};
inline bool is_cross_view_type(std::string_view type) noexcept {
    return std::find(kCrossViewTypes.begin(), kCrossViewTypes.end(), type) != kCrossViewTypes.end();
}

// In the reason ("bad": "hidden: not judged, the kernel's tasks list is broken in memory (…)") of an
// object a kernel list broken in memory misses (train/interpret.hpp): a smeared capture, or tampering.
// The dump's verdict counts them apart (detect/fit.hpp DumpVerdict::broken).
inline constexpr std::string_view kBrokenListReason = "list is broken in memory";

// A file's field: the address (vaddr, as its detection names it) of a task judged hidden whose fd
// table or mappings hold it. Reached
// through that task, the file is not hidden on its own ("hidden": false); the task carries the
// verdict (train/interpret.hpp; the dump's verdict counts these files beside it, detect/fit.hpp).
inline constexpr std::string_view kHeldByHiddenKey = "held_by_hidden_task";

struct Detection {
    std::string type;
    uint64_t vaddr = 0;
    std::optional<uint64_t> paddr;   // of the object's first byte, when that page is in the dump
    float score = 0;
    uint32_t votes = 0;
    std::vector<ObjectField> fields;   // empty unless interpreted (train/interpret.hpp)
    bool operator==(const Detection&) const = default;
};

// The field of `d` named `key`, or nullptr (a detection has each key at most once).
const ObjectField* field_of(const Detection& d, std::string_view key);
ObjectField* field_of(Detection& d, std::string_view key);

// A scored base address before thresholding (what calibration sweeps over).
struct Candidate {
    uint64_t vaddr = 0;
    float score = 0;
    uint32_t votes = 0;
    std::optional<uint64_t> paddr;   // of the base, when its page is in the graph
    uint32_t lead_offset = 0;        // smallest key-node offset among the votes at exactly vaddr
};

// How many candidate objects of a dump had key-node votes agreeing on one base, and which key nodes
// voted for them (detect/fit.hpp).
struct VoteAgreement {
    uint64_t objects = 0, agreeing = 0;
    std::vector<uint64_t> key_votes;   // per key node: candidate objects whose base it voted for
    // The share of the virtual address space whose candidate objects were counted (detect/fit.hpp
    // Sample): 1 unless the agreement rows were sampled.
    double share = 1;
    double fraction() const noexcept { return objects ? double(agreeing) / double(objects) : NAN; }
};

// Whether `node` can carry key node `key` (Votes above): length match or a split key node.
bool carries(const MemoryGraph& graph, uint32_t node, const KeyNode& key);
// Every base that received at least one vote and survived the overlap rule, sorted by vaddr.
// `probs` is N × K for the graph's N nodes and the model's K classes (InferenceNet::run's
// output). Throws ModelError(BadBatch) on a shape mismatch.
std::vector<Candidate> vote(const MemoryGraph& graph, const Model& model, const Mat<float>& probs);
// The nodes whose vote can matter at `threshold`, ascending: the rows InferenceNet::run(graph,
// rows, probs) needs. A node can only vote as a key node c it carries, for the base
// b = vaddr − k_c.offset, and b can score at most bound(b) = Σ k_c'.weight (+ bonus) over the key
// nodes c' carried by the node at b + k_c'.offset, if any. A node is kept when one of its
// bases has bound ≥ threshold. The others' votes go to bases scoring below threshold, which never
// displace (Overlap) one at or above it: select(vote(rows), threshold) equals
// select(vote(all nodes), threshold), and vote(rows) lacks only below-threshold candidates. With
// threshold −∞ (or a key-node weight ≤ 0) every node matching some key node is kept, but for a
// model with a base alignment and no window, nodes whose every base is unaligned (Alignment). With a vote
// window W the bound of b sums, each class once as Window scores them, the key nodes voting for
// any base in [b − 2W, b + 2W] (a superset of any window that holds b), so the equality holds as
// well. `all_carriers`, when given, receives the rows at −∞ (every node that carries some key node,
// ascending) from the same pass over the nodes.
// `aligned` = false ignores model.base_alignment (Alignment): the fit check's votes (detect/fit.hpp)
// count the bases a shifted layout votes, aligned or not. Past `deadline` (DetectOptions::deadline;
// checked per range of 4,096 nodes) WorkLimitError, timed_out: on a graph crafted so that every node
// carries every key node the merge is N × K heap steps (4 M nodes: seconds a model).
std::vector<uint32_t> voting_rows(const MemoryGraph& graph, const Model& model, float threshold = -INFINITY,
                                  std::vector<uint32_t>* all_carriers = nullptr, bool aligned = true,
                                  InferenceNet::Clock::time_point deadline = InferenceNet::Clock::time_point::max());
// vote() over the probabilities of distinct `rows` only (|rows| × K, row i for node rows[i]);
// other nodes do not vote. Equals the whole-graph vote() when rows ⊇ voting_rows(graph, model).
std::vector<Candidate> vote(const MemoryGraph& graph, const Model& model, std::span<const uint32_t> rows,
                            const Mat<float>& probs);
// The same from each row's class (argmax_classes(probs), engine.hpp; what InferenceNet::run(graph,
// rows, classes) keeps): a class 0..K−1 per row, ModelError(BadBatch) on a count or class out of range.
std::vector<Candidate> vote(const MemoryGraph& graph, const Model& model, std::span<const uint32_t> rows,
                            std::span<const uint32_t> classes);
// vote() in its steps: every vote (base, class) of a node among `rows`, sorted; every base that
// received a vote, with its score (sorted by vaddr); the Overlap rule over them with
// R = overlap_radius(model), the max key-node offset.
std::vector<std::pair<uint64_t, uint32_t>> votes_of(const MemoryGraph& graph, const Model& model,
                                                    std::span<const uint32_t> rows, const Mat<float>& probs);
std::vector<std::pair<uint64_t, uint32_t>> votes_of(const MemoryGraph& graph, const Model& model,
                                                    std::span<const uint32_t> rows, std::span<const uint32_t> classes);
std::vector<Candidate> voted_bases(const MemoryGraph& graph, const Model& model, std::span<const uint32_t> rows,
                                   const Mat<float>& probs);
std::vector<Candidate> voted_bases(const MemoryGraph& graph, const Model& model, std::span<const uint32_t> rows,
                                   std::span<const uint32_t> classes);
// Scored bases (no paddr) under the model's vote window and base alignment, or under `window` bytes
// (0 = exact) and `alignment` (0 = any base).
std::vector<Candidate> bases_of(const Model& model, std::span<const std::pair<uint64_t, uint32_t>> votes);
std::vector<Candidate> bases_of(const Model& model, std::span<const std::pair<uint64_t, uint32_t>> votes,
                                uint32_t window, uint32_t alignment);
std::vector<Candidate> apply_overlap_rule(const Model& model, std::span<const Candidate> bases);
uint64_t overlap_radius(const Model& model);

// Candidates with score ≥ threshold as Detections of model.object_type, paddr from the graph's
// node containing the base (absent when no node contains it).
std::vector<Detection> select(const MemoryGraph& graph, const Model& model,
                              std::span<const Candidate> candidates, float threshold);

// ---- ground truth and evaluation ------------------------------------------------------------
struct TruthObject {
    uint64_t vaddr = 0;
    std::string type;
    uint64_t size = 0;   // bytes (the BTF struct size); 0 when the file does not say
    bool freed = false;
    std::optional<uint64_t> paddr;   // labels.jsonl's "paddr" when present
    bool tsv = false;                // read from a labels.tsv line: no paddr, never freed
};
// labels.jsonl or labels.tsv (by content: a line starting with '{' is JSON). Throws FormatError
// (byte offset of the bad line) or InputError (unreadable file; read_truth: a file with no label).
std::vector<TruthObject> read_truth(const std::string& path);
std::vector<TruthObject> parse_truth(std::span<const uint8_t> text);

struct TypeScore {
    uint64_t tp = 0, fp = 0, fn = 0, freed_found = 0, freed_total = 0, freed_inside = 0;
    std::vector<uint64_t> missed, spurious;   // vaddrs, ascending
    // Precision is undefined with no detection (tp + fp == 0), recall with no object (tp + fn == 0):
    // precision()/recall() return 1.0 there (the threshold calibration's convention, F1 then 0 or 1);
    // reports print "n/a" / null where has_precision()/has_recall() is false.
    bool has_precision() const noexcept { return tp + fp > 0; }
    bool has_recall() const noexcept { return tp + fn > 0; }
    bool has_f1() const noexcept { return tp + fp + fn > 0; }   // (nothing found, nothing to find: undefined)
    double precision() const noexcept { return tp + fp ? double(tp) / double(tp + fp) : 1.0; }
    double recall() const noexcept { return tp + fn ? double(tp) / double(tp + fn) : 1.0; }
    double f1() const noexcept {
        double p = precision(), r = recall();
        return p + r > 0 ? 2 * p * r / (p + r) : 0.0;
    }
};
// Scores per type for every type that occurs in `detections`, or in `truth` restricted to
// `types` (all truth types when `types` is empty).
std::map<std::string, TypeScore> evaluate(std::span<const Detection> detections,
                                          std::span<const TruthObject> truth,
                                          std::span<const std::string> types = {});

// The threshold that maximises F1 against the live truth objects of `type`, summed over several
// graphs (each element pairs one graph's candidates with its truth). Among thresholds with equal
// F1 the midpoint between the lowest accepted score and the highest rejected one is returned, so
// the margin is largest on both sides. With no live truth object, the lowest threshold above
// every candidate. The threshold is always above `floor` (pass model.single_vote_bound(): a model
// file refuses a threshold at or below it, Model::validate): thresholds that would accept a
// candidate scoring ≤ floor are not considered, and the midpoint is taken from floor when the
// highest rejected score is below it; when every candidate scores ≤ floor, the result is the
// lowest threshold above floor (with score: nothing accepted) — dmtrain prints that score.
struct CalibrationSet {
    std::span<const Candidate> candidates;
    std::span<const TruthObject> truth;
};
struct Calibration {
    float threshold = 0;
    TypeScore score;   // summed over the sets at that threshold (addresses not filled)
};
Calibration calibrate_threshold(const std::string& type, std::span<const CalibrationSet> sets, float floor);
// The score calibrate_threshold() counts at a given threshold: the candidates scoring at or above it
// against the live truth objects of `type`, summed over the sets.
TypeScore score_at_threshold(const std::string& type, std::span<const CalibrationSet> sets, float threshold);

// The engine's view of a memory graph (GraphInput, engine.hpp): its four in-edge CSRs and features.
inline GraphInput graph_input(const MemoryGraph& g) {
    return {{g.in(EdgeKind(0)), g.in(EdgeKind(1)), g.in(EdgeKind(2)), g.in(EdgeKind(3))}, g.features(),
            g.params().feature_bytes};
}

// Whether the dump lacks the kernel image (x86-64): the page tables map less than
// kMinKernelImageBytes of present memory in the image's window (GraphBuildInfo::kernel_image_bytes),
// as when a capture is cut below the image (graph/root_search.cpp, the cut rule) or its pages are
// absent; or the dump's `Linux version` banner was found, but outside that window (the window holds
// something else). False where that is unknown: 32-bit and PAE graphs (the image lies inside the
// direct map), .dmg files before version 6.
// kMinKernelImageBytes: Debian's 6.1 image maps 54 MiB (text, rodata, data, bss); a smaller present
// share is a cut's leftover or a planted mapping (attacker 16: one 2 MiB page planted in the window of
// a cut dump kept every model at its full threshold and hid its 140 task_structs).
inline constexpr uint64_t kMinKernelImageBytes = uint64_t{8} << 20;
bool lacks_kernel_image(const MemoryGraph& graph);
// The threshold `model` detects with on `graph`: `override` when given (dmdetect --threshold), else
// Model::image_absent_threshold when the model has one and lacks_kernel_image(graph), else
// Model::threshold.
float detection_threshold(const Model& model, const MemoryGraph& graph, std::optional<float> override = {});

// The memory the GNN may work in beside the graph (InferenceNet::set_memory_budget, engine.hpp):
// 1/16 of the graph's own bytes (MemoryGraph::array_bytes), so that dmdetect's peak RSS with every
// type stays within 1.5× the graph it works on (issue 12: 1.45× on the dev dump's .dmg), or half
// of available_memory() (graph/memory_budget.hpp) when that is less; at least 1 MiB. Each OpenMP
// thread runs its own blocks within its share (engine.hpp), so small blocks cost no barriers.
uint64_t inference_budget(const MemoryGraph& g);
// The input's bytes the bounds below scale by: the dump's file (GraphBuildInfo::dump_bytes,
// compressed for kdump/AVML); of it, the bytes its file holds when the graph was built from it
// (MemoryGraph::dump_held_bytes: a sparse raw file's apparent size is whatever its writer seeked
// to, reviewer 98); at most kDumpBytesPerDmgByte times the bytes of the .dmg when the graph was
// read from one (MemoryGraph::graph_file_bytes): a header can claim any dump (attacker 94: a 51 MiB
// .dmg claiming 4 EiB ran 23.6 s, past every bound). 0 = unknown (dump_bytes 0, and no .dmg).
uint64_t input_bytes(const MemoryGraph& g);
// Real dumps are 2.5–8.6 times their .dmg (ELF cores of the dev, i386 and 6.12 guests; the dev
// dump's sparse 4 GiB raw copy: 61 times, 256 MiB of it data): 16, so that a .dmg keeps its dump's
// whole-graph ceiling (reviewer 98: the dump's 3.8 GiB fell to 0.88 GiB at 1 time).
inline constexpr uint64_t kDumpBytesPerDmgByte = 16;
// The memory a network past the work limit may take to run the whole graph at once
// (DetectOptions::whole_graph_ceiling): of 16 times input_bytes, at least
// DetectOptions::kWholeGraphCeiling, what the graph (MemoryGraph::array_bytes) and
// DetectOptions::kBesideNetwork leave, at most half of available_memory() — issue 15's bound of
// 1 GiB for the process on inputs up to 64 MiB, scaled. A 62 MiB kdump crafted without pointer
// locality (1.4 GiB whole) stays refused; a real 256 MiB dump with 23 MiB of such pointers planted
// in free pages (helper 67: 1.1 GiB whole) runs.
uint64_t whole_graph_ceiling(const MemoryGraph& g);
// The same for `available` bytes of memory (none: unknown, no half-of-available cap).
uint64_t whole_graph_ceiling(const MemoryGraph& g, std::optional<uint64_t> available);
// 4 KiB virtual pages holding at least one node of `g` (its segments; MemoryGraph::vaddr): what the
// dump's content is, which a kdump's zero pages or a raw file's empty ones do not add to.
uint64_t content_pages(const MemoryGraph& g);
// The pages the network work bound counts: content_pages(g), at most one per 4 KiB of a .dmg it
// was read from (MemoryGraph::graph_file_bytes; real ones hold 8.5–10.5 KiB a content page, a
// crafted one 120 bytes: attacker 99), and at most one per PhysicalLayer::kCountedPageBytes (1 KiB)
// of the dump's file — of its size (input_bytes, when known: kContentPagesPerFilePage per 4 KiB)
// and, for kdump and AVML, of what their non-zero pages take of it (GraphBuildInfo::stored_page_bytes: each page's
// compressed bytes, at most 1 KiB a page). A compressed file's pages of one pattern would otherwise
// buy work its file does not hold: attacker 75's 64 MiB kdump, 120 k content pages (7.5 per file
// page); attacker 77's, 92 k content pages, 66 k of them one pointer each in about 50 bytes of zstd,
// ran every model for 57–127 s at the 4-per-file-page limit alone. Real kernel pages compress (zlib
// level 1, as `makedumpfile -c`) to 630 bytes in the median, 1,107 at the 95th percentile (6.12
// dump's content pages), 1,868 (i386): most count whole. Real kdumps (dm-dump-formats, zstd, of real
// guests): 1.6 (i386, 256 MiB) and 0.65 (6.12, 512 MiB) content pages per file page; makedumpfile
// leaving out free and cache pages raises that toward the content pages' compression ratio. A real
// compressed dump loses a model's fit check to the bound only where its content pages take on
// average less than kCountedPageBytes × 328 / 512 = 656 bytes of file each (its detections: 268).
uint64_t counted_pages(const MemoryGraph& g);
inline constexpr uint64_t kContentPagesPerFilePage = 4096 / PhysicalLayer::kCountedPageBytes;   // 4 (x86 pages; graph/paging.hpp is not installed)
// The most node-iterations per content page a network needed on real kernels' graphs, fit check
// included (DetectOptions::kNetworkWork says where it was measured): what messages compare with.
inline constexpr uint32_t kRealKernelNetworkWork = 328;
// ... and all of a scan's networks together (DetectOptions::scan_work_factor says where it was measured)
inline constexpr uint32_t kRealKernelScanWork = 1131;
// The node-iterations each network may do in one detect()/scan() (DetectOptions::network_work):
// `per_page` × counted_pages(g), saturating, at least 1; 0 when per_page is 0 (no cap). InputError
// unless per_page is finite and ≥ 0.
uint64_t network_work_cap(const MemoryGraph& g, double per_page);

// ---- Detector: models + dump → objects, the API for embedding deepmem (in the manner of libyara)
//   Detector d;
//   d.add_model("data/models/task_struct.cereal");
//   MemoryGraph g = d.build_graph("dump.elf");
//   for (const Detection& x : d.detect(g)) …        or   d.scan(g, [](const Detection& x) { …; return true; });
// Models   at most one per object type, all trained on one GraphParams (InputError naming both
//          models otherwise); build_graph() uses those parameters (word size from the dump's paging).
//          Kept without their Adam moments (Model::drop_optimiser_state): detection does not train.
// Graphs   detect() and scan() refuse (InputError) a graph whose GraphParams differ from the models',
//          naming the parameter and both values.
// Joint    a joint model (Model::parts, engine.hpp) is added as its type models (Model::type_models):
//          model(i) is one type, source(i) the joint file; their network runs once for all of them.
// Work     per network: InferenceNet on the union of its types' voting_rows() at their thresholds
//          (the pruned run of engine.hpp); then per type: each of its rows' joint class made the
//          type's (a key node of another type is class 0 for this one), vote(), select() at
//          detection_threshold() (the model's, or the override): the same detections as the
//          whole-graph path, in blocks within DetectOptions::memory_budget — unless the blocks would
//          repeat more than DetectOptions::work_limit whole graphs' work: then the agreement rows
//          fall back to the voting rows, and past the limit again the network is not run (its types
//          detect nothing; last_not_run() says why and the memory that runs it whole). Whatever the
//          memory, a network's runs in one scan together stay within DetectOptions::network_work
//          (node-iterations per page of content): past it the same fall-back, then not run. Each network keeps its
//          InferenceNet and buffers across calls, so one Detector is not for concurrent use; results
//          do not depend on the thread count.
struct BuildOptions {
    DumpFormat format = DumpFormat::Auto;
    bool strict = false;           // refuse truncated dumps (PhysicalLayer::open)
    bool density_bound = true;     // MemoryGraph::build's density bound (graph/memory_graph.hpp)
    std::function<void(const std::string&)> warn;   // each PhysicalLayer::warnings() line, then each TranslationLayer::warnings() line (a .dmg: the lines it recorded, GraphBuildInfo::warnings)
    std::optional<uint64_t> dtb;   // page-table root; else the ELF notes or the search (layers.hpp)
    std::optional<PagingMode> paging;   // with dtb: its paging mode; else found with the root
    ProgressFn progress;           // pointer scan: (bytes done, bytes total)
    // Called through the decompression of a kdump or AVML file (PhysicalLayer::open) and the search for
    // its page tables (TranslationLayer::detect), after each, and through the graph build (MemoryGraph::build;
    // InterruptFn, graph/layers.hpp): an exception it throws stops them and leaves open_graph /
    // build_graph (dmdetect --time-limit). Not called for a .dmg, whose load is bounded by its file.
    InterruptFn interrupt;
    // Called once before the graph is built from a dump (not for a .dmg): what it will need
    // (MemoryGraph::estimate), for a tool to print before the long step.
    std::function<void(const GraphEstimate&)> estimate;
};
struct DetectOptions {
    // Overrides every model's threshold (detection_threshold); finite, ≥ 0 (else InputError). Unlike a
    // model file's, it may be at or below Model::single_vote_bound() (every voted base); dmdetect warns then.
    std::optional<float> threshold;
    // Called before each model runs: (index, model count, object type).
    std::function<void(size_t, size_t, const std::string&)> progress;
    // Measure each model's vote agreement on the graph (detect/fit.hpp Rows: the network runs on more
    // rows, up to every key-node carrier near a candidate; a per-build-keys model's only when it
    // finds nothing).
    bool measure_agreement = false;
    // Agreement rows beyond the voting rows that run unsampled (detect/fit.hpp Sample); past it, a
    // sample of them. x86-64 real dumps measured (256 MiB–2 GiB guests, five builds): at most ≈ 360 k (file,
    // cred); the 812 k-node i386 dump's 640–670 k (cred and file sampled at 79 % and 82 %).
    uint64_t agreement_rows_budget = uint64_t{1} << 19;
    // Working memory of each model's GNN run, bytes (0 = unbounded); default inference_budget(graph).
    std::optional<uint64_t> memory_budget;
    // Work limit of each network run in blocks under that budget, in whole-graph runs (0 = none;
    // InferenceNet::set_work_limit, engine.hpp): past it the whole graph runs at once if it fits
    // whole_graph_ceiling (and network_work below), else a model is not run (last_not_run()), and a
    // fit check's second run on the agreement rows is skipped (last_unmeasured()). Real kernels'
    // graphs take 0.5–1.5; a 62 MiB kdump crafted with no pointer locality took 16 (76 s) before.
    double work_limit = kDetectWorkLimit;
    static constexpr double kDetectWorkLimit = 4;
    // Past the work limit, the whole graph runs at once instead when that takes at most this many
    // bytes (InferenceNet::whole_graph_bytes; last_ran_whole() says so); default
    // whole_graph_ceiling(graph). 0: never.
    std::optional<uint64_t> whole_graph_ceiling;
    static constexpr uint64_t kWholeGraphCeiling = uint64_t{1} << 30;
    // What dmdetect holds beside the graph and the network (models, row lists, votes, buffers): 104 MiB
    // of the 1,292 MiB peak when attacker 75's 44.6 MiB raw file ran a network whole in 1,005 MiB
    // beside its 183 MiB graph.
    static constexpr uint64_t kBesideNetwork = uint64_t{128} << 20;
    // Network work bound, in node-iterations (mu(t) evaluations, engine.hpp) per counted page
    // (counted_pages): each network's runs in one scan — voting rows, the fit check's agreement rows —
    // together do at most network_work_cap(graph, this) (InferenceNet::set_work_cap); past it a run
    // is refused whatever the memory (a fit check's: last_unmeasured(); the voting rows': its types
    // not run, last_not_run(); ModelTiming::capped). Finite, ≥ 0; 0 = none. Unlike work_limit
    // (relative to the graph's nodes) it bounds graphs crafted so that every node is a voting row
    // (issue 15: 2–4 M nodes in a 64 MiB file, 720–980 a page, 18–68 s).
    // kNetworkWork: real kernels' graphs with the fit check (tools/bench-detect, ten dumps of 6.1,
    // 6.1-rt, 5.10, 6.12, 6.12-rt, i386, 256 MiB–2 GiB guests, each with the models dmdetect picks)
    // need at most kRealKernelNetworkWork = 328 a page (i386 file; x86-64 at most 292, dev cred),
    // their voting rows alone at most 134 (dev cred): 512 is 1.56 times the most.
    double network_work = kNetworkWork;
    static constexpr double kNetworkWork = 512;
    // All networks of one scan together do at most scan_work_factor times as much
    // (network_work_cap(graph, network_work × scan_work_factor), saturating); a run past what the runs
    // before it left is refused in the same way (the types run in name order, so the last ones are
    // the first refused). Finite, ≥ 0; 0 = none. Real kernels' graphs need at most kRealKernelScanWork = 1,131 a
    // page for six models, fit check included (the dev dump: cred 292, file 265, dentry 224, mm_struct
    // 160, module 157, task_struct 33; i386 1,067, i386t4 1,077, 6.12 581, 5.10 412). A kdump that
    // makedumpfile -d 31 filtered down to kernel pages holds them at about 0.67 of a counted page each
    // (the dev dump's content pages at zlib level 1: counted_pages), so 1,131 / 0.67 = 1,688 a counted
    // page: 4 × 512 = 2,048 is 1.21 times that, 1.81 times the raw dumps' need. Without it six models
    // could do 6 × 512 = 3,072 a page (attacker 77's raw file: 2,105 in five).
    double scan_work_factor = kScanWorkFactor;
    static constexpr double kScanWorkFactor = 4;
    // Wall-clock deadline of the networks (steady clock; time_point::max() = none, the default): a
    // network run still going at it stops (InferenceNet::set_deadline), as does the search for the
    // rows of one (voting_rows, agreement_rows); its types are not run (last_not_run(),
    // ModelTiming::timed_out) or, a fit check's second run, unmeasured, and the networks after it
    // stop before computing. The work bound above holds a dump to what its file's bytes can
    // justify, and a real compressed dump can need as much as a crafted one; this bounds the
    // seconds, at the cost of answers that depend on the machine and its load (dmdetect
    // --time-limit, default_time_limit).
    InferenceNet::Clock::time_point deadline = InferenceNet::Clock::time_point::max();
    // Seconds what follows the networks takes for each detection made (reading it, writing it out):
    // the deadline above moves this much earlier for each detection the models before have made
    // (attacker 105: 717 k creds made before the networks' deadline left 2.4 s of output past the
    // limit). 0: the deadline stays (dmdetect: kOutputSecondsPerObject).
    double seconds_per_detection = 0;
};
// dmdetect's time limit for one dump with --time-limit auto, in seconds from when it starts on the
// dump (DetectOptions::deadline), for a dump file holding `file_bytes`: kTimeLimitSeconds up to
// kTimeLimitFileBytes — issue 15: any input of ≤ 64 MiB processed or refused in ≤ 10 s, crafted ones
// included — and kTimeLimitPerMiB more for each MiB past it. Not dmdetect's default: on a loaded
// machine real compressed dumps meet it (README, "The time limit", has the figures).
inline constexpr double kTimeLimitSeconds = 10;
inline constexpr uint64_t kTimeLimitFileBytes = uint64_t{64} << 20;
inline constexpr double kTimeLimitPerMiB = 2;
// The share of a dump's time limit its networks may take (DetectOptions::deadline = its start +
// this × the limit): what follows them (votes, the objects found read, the output) took 0.9–1.3 s
// of 11 s on the crafted inputs that reach the limit (load 3).
inline constexpr double kTimeLimitNetworks = 0.9;
// The networks (DetectOptions::seconds_per_detection) and the reading of the objects found
// (train/interpret.hpp InterpretInputs::deadline) stop at the networks' deadline less this for each
// object found, what writing it out takes: attacker 102's 717,641 objects of 37 MiB (cred.kdump) took
// 3.0 s from the reading's end to the exit at load 1.4.
inline constexpr double kOutputSecondsPerObject = 5e-6;
// `deadline` (steady clock) moved `seconds` earlier (at most 1e9 s); time_point::max() (none) stays
// none. What DetectOptions::seconds_per_detection and the reading's deadline (dmdetect) keep.
InferenceNet::Clock::time_point earlier_by(InferenceNet::Clock::time_point deadline, double seconds);
double default_time_limit(uint64_t file_bytes);
// Where the time of one model went in the last detect()/scan() (for tools/bench-detect).
struct ModelTiming {
    std::string type;
    uint64_t rows = 0;                      // voting rows the classifier ran on (a joint model: this type's)
    uint64_t network_rows = 0;              // rows of the network's run (a joint model: its types' union; 0 for
                                            // its types after the first, whose run it was)
    std::vector<uint64_t> frontier;         // nodes computed per iteration t = 1..T (summed over blocks)
    size_t blocks = 0;                      // row blocks of the GNN run, and the largest one's working set
    uint64_t block_bytes = 0;
    double rows_seconds = 0;                // voting_rows()
    double forward = 0, vote = 0;           // seconds: pruned GNN run (0 for a joint model's later types); vote + select
    bool not_run = false, unmeasured = false;   // past the work limit (Detector::last_not_run, last_unmeasured)
    bool capped = false;                    // … a refusal among its runs was DetectOptions::network_work's
    bool timed_out = false;                 // … a run among them stopped at DetectOptions::deadline
    uint64_t work = 0;                      // node-iterations its network's runs did, refused ones' part
                                            // included (0 for a joint model's types after the first)
    uint64_t needed = 0;                    // refused by the work bound: its network's runs' work had it run,
                                            // estimated (`work` + the refused run's estimate); else 0
};

class Detector {
public:
    // Model::load (ModelError) or a Model in memory; InputError on a second model of one type (a
    // joint model: of one of its types) or GraphParams unlike the models already added.
    void add_model(const std::string& path);
    void add_model(Model model, std::string source = {});
    size_t model_count() const noexcept { return entries_.size(); }   // object types
    // Keeps the models of these object types only: a joint model's other types are dropped, and its
    // network then runs over the kept types' rows alone (`dmdetect --types`). InputError naming a type
    // no model detects.
    void keep_types(std::span<const std::string> types);
    // One type's model, in object-type order (a joint model's part: its type model, no weights).
    const Model& model(size_t i) const { return entries_.at(i).model; }
    // Replaces model(i)'s key nodes by `keys`, as many and in the same order (their classes): the
    // same key nodes at other offsets and lengths, e.g. placed in a dump's layout by their anchors
    // (train/key_anchors.hpp). Weights, thresholds and the network are unchanged. InputError when
    // the count differs; ModelError (BadValue) when a key node breaks Model::validate_detection.
    void set_key_nodes(size_t i, std::vector<KeyNode> keys);
    // Sets model(i)'s thresholds (Model::threshold, image_absent_threshold) to the ones it was added
    // with times `factor` in (0, 1] (never compounding): a model placed in a dump's layout whose
    // silent key nodes cannot add to any score there (detect/fit.hpp placed_threshold_scale).
    // InputError for a factor outside (0, 1].
    void scale_threshold(size_t i, double factor);
    // Undoes set_key_nodes and scale_threshold for every model: the key nodes and thresholds it was
    // added with. Both are for one dump: a caller running one Detector over several dumps calls this
    // before each (reviewer 85: a 5.10 dump's placement and scaling carried over to the next dump in
    // a batch, the model's own build, which then ran at 9.54 for 13.63 and still read "fits").
    void reset_to_trained();
    const GraphParams& graph_params() const;                           // InputError without models

    // Opens the dump (raw/ELF/LiME/kdump/AVML), finds the page-table root and builds the memory graph with
    // graph_params(). Throws InputError / FormatError; InputError too for a graph of no node
    // (refuse_empty_graph, graph/memory_graph.hpp), which open_graph() also refuses from a .dmg.
    MemoryGraph build_graph(const std::string& dump_path, const BuildOptions& = {}) const;
    // A prebuilt .dmg (told by its magic; loaded and checked with check_graph()) or else a dump
    // given to build_graph().
    MemoryGraph open_graph(const std::string& path, const BuildOptions& = {}) const;
    // The same with `params` for a dump, and no check of a .dmg's: for a caller that picks its
    // models after seeing the graph (dmdetect over the shipped models, picked by the graph's word
    // size and kernel banner) and checks it against them then.
    static MemoryGraph open_graph(const std::string& path, const GraphParams& params, const BuildOptions& = {});
    // Throws InputError when `graph` was built with other GraphParams than the models.
    void check_graph(const MemoryGraph& graph) const;
    // Every detection of every model, sorted by (type, vaddr).
    std::vector<Detection> detect(const MemoryGraph& graph, const DetectOptions& = {});
    // The same detections, in the same order, one call each; returns false as soon as
    // `on_detection` does (the models after that one are not run), true when all were seen.
    bool scan(const MemoryGraph& graph, const std::function<bool(const Detection&)>& on_detection,
              const DetectOptions& = {});
    const std::vector<ModelTiming>& last_timings() const noexcept { return timings_; }
    // The last detect()'s counted_pages(graph): what the network work bound and ModelTiming::work
    // per page are counted against.
    uint64_t last_counted_pages() const noexcept { return counted_; }
    // Per model (model() order), of the last detect()/scan() with measure_agreement; else empty.
    // (VoteAgreement: detect/fit.hpp.)
    const std::vector<VoteAgreement>& last_agreements() const noexcept { return agreements_; }
    // Per model (model() order), of the last detect()/scan(): the highest score of a candidate its
    // run voted for, or none without a candidate. Exact when it reaches the threshold; below it, a
    // lower bound (the run scores only the rows that can matter at the threshold, voting_rows or
    // agreement_rows: a base it skipped scores less than the threshold, maybe more than this).
    const std::vector<std::optional<float>>& last_best_scores() const noexcept { return best_scores_; }
    // Per model (model() order), of the last detect()/scan(): the threshold it detected with
    // (detection_threshold).
    const std::vector<float>& last_thresholds() const noexcept { return thresholds_; }
    // Per model (model() order), of the last detect()/scan(): why its network was not run ("" when
    // it ran): DetectOptions::work_limit; it then detected nothing. And why the fit check's second
    // run over its agreement rows was skipped ("" when not): its agreement is over its voting rows.
    const std::vector<std::string>& last_not_run() const noexcept { return not_run_; }
    const std::vector<std::string>& last_unmeasured() const noexcept { return unmeasured_; }
    // … and, when its network ran the whole graph at once in place of blocks past the work limit
    // (DetectOptions::whole_graph_ceiling), why ("" when not): the same results, more memory.
    const std::vector<std::string>& last_ran_whole() const noexcept { return ran_whole_; }
    const std::string& source(size_t i) const { return entries_.at(i).source; }
    // Model i is one type of a joint model (add_model of a format-6 file): its network and weights are
    // the joint model's, not in model(i) (whose params are empty).
    bool is_joint_part(size_t i) const { return entries_.at(i).joint_part; }

private:
    struct Entry {
        Model model;
        std::string source;   // file name or caller's label, for messages
        size_t network = 0;   // in networks_
        uint32_t first_class = 1;   // the network's class of the model's first key node
        bool joint_part = false;    // a joint model's type: the network's classes are not its own
        // as added (reset_to_trained)
        std::vector<KeyNode> trained_keys;
        float trained_threshold = 0, trained_image_absent = 0;
    };
    std::vector<Entry> entries_;
    std::vector<InferenceNet> networks_;   // one per model added (a joint model's types share theirs)
    std::vector<ModelTiming> timings_;
    uint64_t counted_ = 0;
    std::vector<VoteAgreement> agreements_;
    std::vector<std::optional<float>> best_scores_;
    std::vector<float> thresholds_;
    std::vector<std::string> not_run_, unmeasured_, ran_whole_;
};

// ---- detections as text: what dmdetect writes and dmeval reads ------------------------------
//   table  aligned columns type, vaddr, paddr, score, votes, then "# type: count" per type. With
//          fields: one section per type, its header naming that type's field keys as further
//          columns (a null value is "?", an empty string "-"); a type with verdict fields (exited,
//          freed, hidden) counts the true ones, "# task_struct: 276 (exited 22, freed 22, hidden 0)"
//          ("hidden 0 (3 null)" when some are null), and one line after the total says what each
//          key shown means ("# exited: …; freed: …; hidden: …"). below_trained_threshold is one
//          too (mark_below_trained).
//   json   JSON Lines {"type":"task_struct","vaddr":"0xffff…","paddr":"0x…"|null,"score":1.234,"votes":12}
//          then each field as "key":value in its order
//          (dmdetect puts {"record":…} lines about the kernel and the models' fit first: detect/fit.hpp)
//   csv    header "type,vaddr,paddr,score,votes" then, with fields, one column per key of any
//          detection (first-seen order; RFC 4180 quoting); an absent paddr or value is an empty field
//   Reading back (parse_detections) keeps the five detection columns; fields are not read.
enum class DetectionFormat : uint8_t { Table, Json, Csv };
// The detections of `type` get the verdict field below_trained_threshold: true ("BELOW") where the
// score is under `trained` — the threshold the model was calibrated at, before dmdetect scaled it
// for a placed model (detect/fit.hpp, Placed threshold) — so an object reported only at the lower
// threshold is told from one its model would report as trained (reviewer 85). Appended after
// any fields already read.
void mark_below_trained(std::span<Detection> detections, std::string_view type, float trained);
inline constexpr std::string_view kBelowTrainedKey = "below_trained_threshold";
DetectionFormat parse_detection_format(const std::string&);   // "table|json|csv"; throws InputError
std::string format_detections(std::span<const Detection> detections, DetectionFormat format);
// Warnings about the analysis, written into its output so that a file records an incomplete
// result, not only stderr (dmbaseline pslist: a task list cut short): for `Json`, one line
// {"record":"warning","message":"…"} each (json_string); for `Table` and `Csv`, one line
// "# warning: …" each (kWarningLine; line breaks shown as ' '). Put before the detections; "" for
// none. parse_detections skips both.
inline constexpr std::string_view kWarningLine = "# warning: ";
// A comment line of a CSV output, one that starts with "# ": the kernel and fit lines (detect/fit.hpp
// format_fit_report), "# warning: " (format_warnings), "# verdict: " (format_dump_verdict), and in a
// batch "# dump: " (name_dump_records), "# error: ", "# stopped: " and "# batch: " (format_batch_error,
// format_batch_summary). Readers skip them; any other line is a row (whose first field never starts
// with '#' unquoted), or an error.
inline constexpr std::string_view kVerdictLine = "# verdict: ";
inline constexpr std::string_view kErrorLine = "# error: ";
inline constexpr std::string_view kStoppedLine = "# stopped: ";
inline constexpr std::string_view kBatchLine = "# batch: ";
inline bool is_comment_line(std::string_view line) noexcept { return line.starts_with("# "); }
std::string format_warnings(std::span<const std::string> warnings, DetectionFormat format);
// A batch's record of a dump that could not be analysed (newcomer 87: a failed dump left no trace in
// the output file), in its place among the dumps: JSON {"dump":"…","record":"error","message":"…"};
// table "# dump: NAME" then "# error: message"; CSV "# error: NAME: message" (line breaks shown as ' ').
// `stopped`: one whose analysis the time limit stopped (dmdetect --time-limit, in its graph build),
// which is no failure of the input: record "stopped", line "# stopped: " (kStoppedLine) — also the
// whole output of one such dump alone.
std::string format_batch_error(std::string_view dump, std::string_view message, DetectionFormat format,
                               bool stopped = false);
// A batch's last record: JSON {"record":"batch","dumps":N,"failed":F,"stopped":S,"hidden":H,
// "incomplete":I} (S: dumps the time limit stopped before any model ran, format_batch_error; H: dumps
// whose verdict is HIDDEN, I: INCOMPLETE or not judged, detect/fit.hpp format_dump_verdict); table and
// CSV "# batch: N dumps, F failed, S stopped by the time limit, H with hidden objects, I not judged whole".
std::string format_batch_summary(uint64_t dumps, uint64_t failed, uint64_t stopped, uint64_t hidden, uint64_t incomplete,
                                 DetectionFormat format);
// One dump's part of an output over several dumps (dmdetect DUMP DUMP…): `text` is what dmdetect
// writes for that dump alone in `format` (detect/fit.hpp's format_fit_report, then
// format_detections); every record then names `dump`. JSON: every line gets a first field "dump"
// (json_string). CSV: a line "# dump: NAME" first, then every row gets a first column "dump" (line
// breaks shown as '?', so that a row is one line; quoted, '"' doubled, when it holds ',' or '"' or
// starts with '#'); the header becomes "dump," + its header (dmdetect writes it again only when a
// dump's columns differ from the one before). Table: a line "# dump: NAME" (line breaks in NAME
// shown as '?') before the dump's lines.
struct DumpRecords {
    std::string_view dump;
};
std::string name_dump_records(std::string_view text, DetectionFormat format, const DumpRecords& batch);
// JSON Lines or CSV as above, told apart by content (first non-blank byte '{' → JSON Lines);
// JSON lines with a "record" key and "# warning: " lines (format_warnings) are skipped. Records naming their dump (name_dump_records) are
// read when they all name the same one; records of several dumps are a FormatError (keep one
// dump's lines: detections are compared with one dump's labels).
// `run_types`, when given, receives the types of the JSON fit records (detect/fit.hpp: one per
// model dmdetect ran, found something or not), each once, in order; CSV has none.
// Throws FormatError (byte offset of the bad line, what was expected) or InputError (unreadable).
std::vector<Detection> parse_detections(std::span<const uint8_t> text, std::vector<std::string>* run_types = nullptr);
std::vector<Detection> read_detections(const std::string& path, std::vector<std::string>* run_types = nullptr);

}  // namespace deepmem
