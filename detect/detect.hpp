// Stage 5 of the pipeline: per-node class probabilities → kernel objects (paper §3.4), and the
// comparison of detected objects with ground truth.
//
// Contract
//   Votes     For a model of type T with key nodes k_1..k_{K−1} (class c ≥ 1 is k_c), node n votes
//             when its most probable class c is ≥ 1 *and* its true segment length equals k_c.length
//             (a key node label is the pair (offset, length); a segment of another length cannot
//             carry it). The vote is for the base address vaddr[n] − k_c.offset. A base's votes
//             come from distinct classes by construction (one node per address).
//   Score     score(base) = Σ_{votes} k_c.weight + kVoteBonus · (votes − 1); weights are the
//             key nodes' frequencies over the training objects (0..1], so a score is roughly
//             "how many typical segments of a T agree here". A base is reported when
//             score ≥ threshold (the model's calibrated one unless overridden).
//   Overlap   Two objects of one type never overlap, and every key-node offset lies inside the
//             object, so true objects of one type are more than R = max key-node offset apart.
//             Of candidates closer than R the higher score is kept (ties: lower address), greedily
//             in score order, once, before any threshold: a candidate that survives does so at every
//             threshold, so calibration sweeps thresholds over the same list.
//   Order     Detections are sorted by (type, vaddr); results never depend on thread count.
//   Truth     Labels as written by dmlabel (labels.jsonl: one object per line with "vaddr",
//             "type", "state" live|freed; or labels.tsv: vaddr TAB type TAB size, all live).
//   Evaluate  Per type: a detection at the vaddr of a live label of that type is a TP; at a freed
//             label's vaddr it is counted apart (freed_found), neither TP nor FP; else FP. Live
//             labels not detected are FN. Precision = TP/(TP+FP), recall = TP/(TP+FN) (1 when the
//             denominator is 0).
#pragma once

#include "engine/engine.hpp"
#include "graph/memory_graph.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace deepmem {

inline constexpr float kVoteBonus = 0.01f;

struct Detection {
    std::string type;
    uint64_t vaddr = 0;
    std::optional<uint64_t> paddr;   // of the object's first byte, when that page is in the dump
    float score = 0;
    uint32_t votes = 0;
    bool operator==(const Detection&) const = default;
};

// A scored base address before thresholding (what calibration sweeps over).
struct Candidate {
    uint64_t vaddr = 0;
    float score = 0;
    uint32_t votes = 0;
};

// Every base that received at least one vote and survived the overlap rule, sorted by vaddr.
// `probs` is N × K for the graph's N nodes and the model's K classes (InferenceNet::run's
// output). Throws ModelError(BadBatch) on a shape mismatch.
std::vector<Candidate> vote(const MemoryGraph& graph, const Model& model, const Mat<float>& probs);

// Candidates with score ≥ threshold as Detections of model.object_type, paddr from the graph's
// node containing the base (absent when no node contains it).
std::vector<Detection> select(const MemoryGraph& graph, const Model& model,
                              std::span<const Candidate> candidates, float threshold);

// ---- ground truth and evaluation ------------------------------------------------------------
struct TruthObject {
    uint64_t vaddr = 0;
    std::string type;
    bool freed = false;
};
// labels.jsonl or labels.tsv (by content: a line starting with '{' is JSON). Throws FormatError
// (byte offset of the bad line) or InputError (unreadable file).
std::vector<TruthObject> read_truth(const std::string& path);
std::vector<TruthObject> parse_truth(std::span<const uint8_t> text);

struct TypeScore {
    uint64_t tp = 0, fp = 0, fn = 0, freed_found = 0, freed_total = 0;
    std::vector<uint64_t> missed, spurious;   // vaddrs, ascending
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
// every candidate.
struct CalibrationSet {
    std::span<const Candidate> candidates;
    std::span<const TruthObject> truth;
};
struct Calibration {
    float threshold = 0;
    TypeScore score;   // summed over the sets at that threshold (addresses not filled)
};
Calibration calibrate_threshold(const std::string& type, std::span<const CalibrationSet> sets);

}  // namespace deepmem
