// Stage 4 of the pipeline: memory graph → per-node class probabilities (paper §3.3, eq. 4–6,
// Algorithm 1). The GNN engine: embedding recurrence, classifier, exact backward, Adam, the
// inference fast path and the model file.
//
// Shapes (named once, used everywhere in engine/):
//   N = nodes of a batch/graph      D = input width (content bytes per node, default 64)
//   H = embedding width (64)        T = iterations (3)
//   L = σ depth (layers per σ)      J = classifier layers (hidden + output)
//   M = target nodes of a batch     K = classes (key-node classes + 1; class 0 = "not a key node")
//
// Model
//   v_n     = node's D content bytes / 255                                        (1×D)
//   mu_n(0) = 0;  for t = 1..T:
//   mu_n(t) = tanh(v_n·W1 + Σ_k σ_k(Σ_{m∈in_k[n]} mu_m(t−1)))   k ∈ {ln, rn, lp, rp}
//   σ_k(x)  = a_L(…a_1(x·W_k1 + b_k1)…·W_kL + b_kL) with a_l ∈ {None, ReLU} per layer (depth,
//             widths and activations configurable); the last width is H. Default, as in the
//             reference implementation: three 64×64 layers with no activation between them and
//             one ReLU after the last, σ_k(x) = ReLU(((x·W_k1 + b_k1)·W_k2 + b_k2)·W_k3 + b_k3)
//             (the inference fast path folds it into one 64×64 matrix and bias); a ReLU after
//             every layer (the paper's wording) is {{64, Relu}, {64, Relu}, {64, Relu}}.
//             W1 has no bias (the σ biases add one).
//   ψ(mu)   = softmax(a_J(…drop(a_1(drop(mu)·C_1 + c_1))…)·C_J + c_J): inverted dropout (keep
//             probability p, kept values scaled by 1/p) on the input of every classifier layer
//             during training only; the output layer has no activation.
//   loss    = Σ_i w_{y_i}·(−log ψ(mu_i(T))_{y_i}) / Σ_i w_{y_i} over the batch targets i.
// Weights are stored input-major (in × out) so a layer is Y = X·W + b on row-major N×width
// matrices (nodes are rows); biases are 1×out.
//
// Mini-batches are sub-graphs (GraphBatch): the targets plus the nodes they depend on. Because
// mu(0) = 0, a node's mu(1) does not depend on its neighbours, so a target's mu(T) depends only on
// nodes within T−1 hops over incoming edges, and only nodes within T−2 hops need their in-edges.
// extract_batch() keeps exactly those; targets' outputs and parameter gradients equal the
// full-graph ones (tested).
//
// Determinism: for a given seed and OMP thread count every result is bit-reproducible (dropout
// masks come from a counter-based hash, aggregations are gathers in fixed order, reductions are
// never atomic).
#pragma once

#include "graph/csr.hpp"
#include "graph/memory_graph.hpp"   // GraphParams only; engine does not link dm_graph

#include <Eigen/Core>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace deepmem {

inline constexpr int kNeighbourKinds = 4;   // ln, rn, lp, rp: the order of EdgeKind

template <class S> using Mat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// ---------------------------------------------------------------------------------------------
// Errors: every bad model file, config or batch is one of these, never a crash. BadValue: shapes
// agree but a value means nothing (a non-finite weight or threshold, a key node outside any object,
// an unknown word size): such a model would detect nothing, silently.
class ModelError : public std::runtime_error {
public:
    enum class Kind { Io, Truncated, BadMagic, BadVersion, BadChecksum, BadShape, BadConfig, BadBatch, BadValue };
    ModelError(Kind kind, uint64_t offset, const std::string& what);
    // The same error, its message naming what it is about — the model file, or a joint model's
    // part: "model bad magic: PATH: …".
    ModelError naming(const std::string& subject) const;
    Kind kind;
    uint64_t offset;   // byte offset in the model file where the problem was found (0 otherwise)
};
const char* to_string(ModelError::Kind);

// ---------------------------------------------------------------------------------------------
// Hyper-parameters
enum class Activation : uint8_t { None = 0, Relu = 1 };
struct LayerSpec {
    uint32_t width = 64;
    Activation activation = Activation::Relu;
    bool operator==(const LayerSpec&) const = default;
};

struct ModelConfig {
    uint32_t input_width = 64;   // D: bytes of a node fed to W1 (truncated / zero-padded)
    uint32_t embed_width = 64;   // H
    uint32_t iterations = 3;     // T
    // the reference σ: three linear 64×64 layers, one ReLU after the last (header comment)
    std::vector<LayerSpec> sigma{{64, Activation::None}, {64, Activation::None}, {64, Activation::Relu}};
    std::vector<LayerSpec> classifier_hidden{{64, Activation::Relu}};   // output layer is added
    uint32_t classes = 2;        // K (≥ 2)
    float keep_prob = 0.8f;      // dropout keep probability in (0, 1]
    // Throws ModelError(BadConfig) when a width is 0 or > kMaxWidth, the last σ width ≠ H, etc.
    void validate() const;
    bool operator==(const ModelConfig&) const = default;
    static constexpr uint32_t kMaxWidth = 4096, kMaxLayers = 16, kMaxIterations = 64,
                              kMaxClasses = 1u << 16;
};

// ---------------------------------------------------------------------------------------------
// Parameters (and, with the same layout, their gradients and Adam moments).
// Tensor order: W1, then for k = 0..3, l = 0..L−1: W_kl, b_kl, then for j = 0..J−1: C_j, c_j.
template <class S> struct Params {
    uint32_t sigma_depth = 0;        // L
    uint32_t classifier_depth = 0;   // J (hidden layers + output layer)
    std::vector<Mat<S>> tensors;

    static Params zeros(const ModelConfig&);
    // Glorot-uniform weights (He-uniform before a ReLU), zero biases, from `seed`.
    static Params init(const ModelConfig&, uint64_t seed);
    template <class T> Params<T> cast() const {
        Params<T> p{sigma_depth, classifier_depth, {}};
        for (const auto& t : tensors) p.tensors.push_back(t.template cast<T>());
        return p;
    }
    void set_zero() { for (auto& t : tensors) t.setZero(); }
    uint64_t count() const { uint64_t n = 0; for (const auto& t : tensors) n += uint64_t(t.size()); return n; }

    Mat<S>& w1() { return tensors[0]; }
    Mat<S>& sigma_w(int k, int l) { return tensors[1 + 2 * (k * sigma_depth + l)]; }
    Mat<S>& sigma_b(int k, int l) { return tensors[2 + 2 * (k * sigma_depth + l)]; }
    Mat<S>& cls_w(int j) { return tensors[1 + 2 * kNeighbourKinds * sigma_depth + 2 * j]; }
    Mat<S>& cls_b(int j) { return tensors[2 + 2 * kNeighbourKinds * sigma_depth + 2 * j]; }
    const Mat<S>& w1() const { return tensors[0]; }
    const Mat<S>& sigma_w(int k, int l) const { return tensors[1 + 2 * (k * sigma_depth + l)]; }
    const Mat<S>& sigma_b(int k, int l) const { return tensors[2 + 2 * (k * sigma_depth + l)]; }
    const Mat<S>& cls_w(int j) const { return tensors[1 + 2 * kNeighbourKinds * sigma_depth + 2 * j]; }
    const Mat<S>& cls_b(int j) const { return tensors[2 + 2 * kNeighbourKinds * sigma_depth + 2 * j]; }
};
// Shapes (rows, cols) and names ("W1", "sigma_lp.1.W", "classifier.0.b", …) in tensor order.
std::vector<std::pair<uint32_t, uint32_t>> parameter_shapes(const ModelConfig&);
std::vector<std::string> parameter_names(const ModelConfig&);
// Whether tensor i is a weight matrix (decayed by weight decay) rather than a bias.
bool parameter_is_weight(const ModelConfig&, size_t i);

// ---------------------------------------------------------------------------------------------
// Graphs and mini-batches
// Any graph the engine can read: 4 CSR over incoming edges (EdgeKind order) and N rows of
// `feature_bytes` content bytes. A MemoryGraph gives one via {g.in(k)…, g.features(), fb}.
struct GraphInput {
    std::array<CsrView, kNeighbourKinds> in;
    std::span<const uint8_t> features;
    uint32_t feature_bytes = 0;
    uint32_t nodes() const noexcept { return in[0].rows(); }
    // Throws ModelError(BadBatch) when the CSRs disagree on N, offsets are not monotone,
    // a source is ≥ N, or features.size() ≠ N·feature_bytes. O(edges).
    void validate() const;
};

struct GraphBatch {
    uint32_t feature_bytes = 0;
    std::vector<uint8_t> features;                 // nodes × feature_bytes
    std::array<Csr, kNeighbourKinds> in;           // incoming edges, batch-local ids
    std::vector<uint32_t> targets;                 // local rows whose loss counts (distinct)
    std::vector<uint32_t> labels;                  // class of each target (< K)
    std::vector<uint32_t> node_ids;                // local row → node id in the source graph
    uint32_t nodes() const noexcept { return in[0].rows(); }
    GraphInput input() const {
        return {{in[0].view(), in[1].view(), in[2].view(), in[3].view()}, features, feature_bytes};
    }
};

// The sub-graph the targets' mu(T) depends on (see the header comment): targets first (local ids
// 0..M−1, in the given order), then nodes in BFS order. `labels` (same length as targets, or empty)
// are copied. Throws ModelError(BadBatch) on a target ≥ N or a duplicate target.
GraphBatch extract_batch(const GraphInput& graph, std::span<const uint32_t> targets,
                         std::span<const uint32_t> labels, uint32_t iterations);

// ---------------------------------------------------------------------------------------------
// Training path: exact forward and backward over one batch, one code path for float (training)
// and double (gradient check). Buffers grow to the largest batch seen and are reused.
struct StepOptions {
    bool dropout = false;              // apply dropout masks (training)
    uint64_t dropout_seed = 0;         // masks are a pure function of (seed, layer, row, column)
    std::span<const float> class_weights;   // K weights, or empty for all 1
    // When the batch is one share of a larger batch (data-parallel training, train/distributed.hpp):
    // the row of each target in the whole batch, which its dropout mask is drawn for (empty = its
    // own index), and Σ w_{y_i} over the whole batch, which normalises the loss (0 = this batch's
    // own sum). The shares' losses and gradients then add up to the whole batch's.
    std::span<const uint32_t> dropout_rows = {};
    double weight_total = 0;
};

template <class S> class Gnn {
public:
    explicit Gnn(const ModelConfig&);
    // Loss over the batch targets; keeps the activations for backward().
    S forward(const Params<S>& p, const GraphBatch& batch, const StepOptions& opt);
    // d loss / d p of the last forward(), written into `grad` (resized to p's layout).
    void backward(const Params<S>& p, const GraphBatch& batch, Params<S>& grad);
    const Mat<S>& probabilities() const noexcept { return probs_; }   // M × K, rows = targets
    const Mat<S>& embedding(uint32_t t) const { return mu_.at(t); }  // N × H, mu(t)
    const ModelConfig& config() const noexcept { return cfg_; }
    // Node-iterations and GEMM+aggregation flops of the last forward (for benchmarks).
    double last_forward_flops() const noexcept { return flops_; }

private:
    ModelConfig cfg_;
    std::vector<uint32_t> sigma_widths_;   // input width H then the L layer widths
    std::vector<uint32_t> cls_widths_;     // H, hidden widths, K
    std::array<Csr, kNeighbourKinds> out_; // transposes of the batch CSRs (outgoing edges)
    // activations
    Mat<S> x_;                     // N×D
    Mat<S> xw_;                    // N×H   x·W1
    std::vector<Mat<S>> mu_;       // T+1 × (N×H)
    std::vector<Mat<S>> sig_;      // [(t−1)·4 + k]·(L+1) + l: l = 0 the sum A_k·mu(t−1), l ≥ 1 layer outputs
    std::vector<Mat<S>> cls_in_;   // J × (M×in_j): classifier layer inputs after dropout
    std::vector<Mat<S>> cls_mask_; // J × (M×in_j): 0 or 1/p (empty without dropout)
    std::vector<Mat<S>> cls_out_;  // J × (M×out_j): layer outputs after activation; last = logits
    Mat<S> probs_;                 // M×K
    std::vector<S> target_w_;      // per-target loss weight / Σ weights
    // gradient scratch
    Mat<S> dmu_, dmu_prev_, g_, gsum_, da_, db_, dc_a_, dc_b_;
    std::vector<Mat<S>> partial_;  // per-row-block partial weight gradients
    bool dropout_ = false;
    double flops_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Adam (Kingma & Ba) with optional global-norm gradient clipping and decoupled weight decay
// (AdamW, weights only, not biases).
struct AdamConfig {
    float lr = 1e-4f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    float weight_decay = 0.f;   // 0 = off
    float clip_norm = 0.f;      // 0 = off; else gradients are scaled to at most this L2 norm
    bool operator==(const AdamConfig&) const = default;
};
struct AdamState {
    uint64_t step = 0;
    Params<float> m, v;
};
// One update of `p` from `grad` (grad may be scaled in place by clipping). Returns the gradient
// norm before clipping.
float adam_step(const ModelConfig& cfg, const AdamConfig& adam, Params<float>& p,
                Params<float>& grad, AdamState& state);

// ---------------------------------------------------------------------------------------------
// Inference fast path: the same function as Gnn<float>::forward without dropout, for every node
// of a whole graph. Consecutive linear layers with no activation between them are folded into
// one matrix; at t = 1 each σ_k(0) is one constant row; where a σ's first (folded) layer narrows
// the width, aggregation is moved after the product (A·(mu·W) instead of (A·mu)·W), the four
// products then being one GEMM mu·[W_ln|W_rn|W_lp|W_rp]. v·W1 does not depend on t: it is computed
// once (at t = 1) and kept. Work is split into row blocks over OpenMP threads; memory is 2·N·H
// floats (3·N·H when T > 1) plus N·K outputs (plus N·4·w when reordered).
class InferenceNet {
public:
    InferenceNet(const ModelConfig&, const Params<float>&);
    // Class probabilities for every node (N × K). Throws ModelError(BadBatch) on a malformed graph.
    void run(const GraphInput& graph, Mat<float>& probs);
    // Probabilities for `rows` only (|rows| × K, row i for node rows[i]; repeats allowed), equal to
    // the whole-graph run's rows within float rounding. Work is pruned to the T-hop frontier:
    // mu(T) on the distinct rows, mu(t−1) only on the in-neighbours of the nodes needing mu(t)
    // (mu(1) needs none), v·W1 on the union of those sets, the classifier on the rows. When the
    // frontier of iterations 2..T holds over 80% of their whole-graph work, the whole-graph run is
    // cheaper and is done instead, if it fits the memory budget. Throws ModelError(BadBatch) on a
    // malformed graph or a row ≥ N.
    // Memory budget (set_memory_budget; 0 = none): the distinct rows, ascending, are run in blocks
    // of consecutive rows, each block with its own frontier, so that a block's working set — v·W1
    // over its frontier, mu(t) beside mu(t−1) (or P when reordered), the renumbered in-edges, its
    // rows' outputs; 4 bytes a float or index — is at most the budget's share of one OpenMP
    // thread: each thread runs whole blocks, one at a time, serially inside (no barrier per block);
    // a thread's first block is 1024 rows, each next one as many as its last one's bytes per row
    // let 7/8 of the share hold, and a block over the share is halved until it fits or is one row
    // (whose frontier is then run whatever its size), or until halving would keep over 7/8 of its
    // working set (rows sharing a frontier over the share run together, over it). The levels of all the rows at once are
    // collected only when the whole-graph run fits the budget (to choose between the two), and
    // all the rows within the budget run as one block, parallel inside. Nodes are ordered by
    // address, so a block's neighbour edges stay inside it; pointer edges do not, and a node in
    // several blocks' frontiers is computed once per block (last_frontier() sums them). Results do
    // not depend on the blocks or the thread count. Not counted: `probs` (|rows| × K), the graph,
    // O(N) indices and marks (5 bytes a node per thread).
    void run(const GraphInput& graph, std::span<const uint32_t> rows, Mat<float>& probs);
    // The same run, keeping of each row only its class: the argmax of its probabilities (the first
    // of equal maxima), all a node's vote needs (paper §3.4). 4 bytes a row instead of 4·K, held
    // outside the budget (the cred model's agreement rows on the dev dump: 25 MB of probabilities).
    void run(const GraphInput& graph, std::span<const uint32_t> rows, std::vector<uint32_t>& classes);
    void set_memory_budget(uint64_t bytes) noexcept { budget_ = bytes; }
    uint64_t memory_budget() const noexcept { return budget_; }
    // Work limit (0 = none): a run in blocks evaluates mu(t) on at most `times` × T·N nodes,
    // summed over its blocks and iterations (the whole-graph run does T·N). Blocks repeat the
    // nodes their frontiers share: on real kernels' graphs 0.5–1.5 × T·N in all (neighbours lie
    // at nearby addresses); where pointers have no locality (a crafted dump: every pointer to a
    // page of its own) 16 × at a 19 MiB budget and 7.7 × at 148 MiB. Before the blocks run the
    // work is estimated from kWorkSamples blocks spread over the rows (levels collected, nothing
    // computed; `samples` = 0: no estimate, the blocks' count alone); over the limit, or when the
    // blocks reach it anyway, run() throws WorkLimitError and gives nothing. The single-block and
    // whole-graph runs do at most T·N: never refused by this limit (by the cap below, they may be).
    static constexpr size_t kWorkSamples = 8;
    void set_work_limit(double times, size_t samples = kWorkSamples) noexcept {
        work_limit_ = times;
        work_samples_ = samples;
    }
    // Work cap (0 = none): an absolute bound, in node-iterations, on any row-restricted run, whatever
    // its path: the whole-graph run does T·N, the single block its levels' nodes (known before it
    // computes), the blocks their estimate and, when the estimate falls short, what they reach. Past
    // it run() throws WorkLimitError (`capped` set) before computing, or at the block that reaches it
    // (a refused run does at most the cap; last_frontier() says what it did, zeros when refused
    // before computing); blocks past it are refused even where the whole graph's T·N would be within
    // it, and where the whole graph is past it and the pruned single block within, the single block
    // runs. What a dump's content can justify (detect.hpp DetectOptions::network_work), where the
    // work limit above, relative to the graph, cannot bound a graph whose every node is a voting row
    // (issue 15: 2–4 M nodes in 64 MiB, 720–980 node-iterations a page against real kernels' ≤ 328).
    void set_work_cap(uint64_t node_iterations) noexcept { work_cap_ = node_iterations; }
    uint64_t work_cap() const noexcept { return work_cap_; }
    // Deadline (steady clock; time_point::max() = none, the default): checked before a run computes,
    // at each row block and at each iteration of a block or of the whole graph; once it has passed,
    // run() throws WorkLimitError (`timed_out` set) and gives nothing — last_frontier() says what the
    // run computed. The one bound that depends on the machine and its load, not on the graph alone
    // (detect.hpp DetectOptions::deadline: what a dump crafted to be slow costs, issue 15).
    using Clock = std::chrono::steady_clock;
    void set_deadline(Clock::time_point at) noexcept { deadline_ = at; }
    // The whole-graph run's working set for `nodes` nodes: 3·N·H + N·K floats (+ N·4w when reordered).
    uint64_t whole_graph_bytes(uint64_t nodes) const noexcept;
    // Blocks of the last row-restricted run (1 when whole or unbounded) and the largest one's
    // working set in bytes (as the budget counts it).
    size_t last_blocks() const noexcept { return blocks_; }
    uint64_t last_block_bytes() const noexcept { return largest_block_; }
    // mu(T) of the last run: every node, or after a pruned row-restricted run the last block of
    // one of the threads, its distinct rows ascending (embedding().rows() tells which).
    const Mat<float>& embedding() const noexcept { return blocked_ && last_work_ < work_.size() ? work_[last_work_].mu : mu_; }
    // Nodes mu(t) was computed on, t = 1..T, summed over the blocks (all N after a whole-graph run);
    // after a WorkLimitError, what the refused run computed.
    const std::vector<uint64_t>& last_frontier() const noexcept { return frontier_; }
    // Flops of the last run (2 per multiply-add of a GEMM, 1 per aggregation add; biases,
    // activations, tanh and softmax not counted). Executed: what the fast path did (folded layers,
    // v·W1 once, no σ work at t = 1). Model: the unfolded model evaluated literally (v·W1, the
    // aggregation and every σ layer at each of the T iterations, every classifier layer).
    double last_flops() const noexcept { return flops_; }
    double last_model_flops() const noexcept { return model_flops_; }
    // Layers after folding (for tests and the benchmark's report).
    size_t folded_sigma_layers() const noexcept { return sigma_[0].size(); }
    size_t folded_classifier_layers() const noexcept { return cls_.size(); }
    bool reordered() const noexcept { return reorder_; }
    // Frees the working memory of the last run (embeddings, v·W1, frontier levels: ≈ 3–4 × N × H
    // floats after a whole-graph run); embedding() is empty afterwards. A detector running several
    // models calls it after each, so that its peak is the largest model's, not their sum.
    void release() noexcept;

    struct Dense { Mat<float> w, b; Activation activation; };
private:
    ModelConfig cfg_;
    Mat<float> w1_;                                    // W1 / 255 (the input scaling folded in)
    std::array<std::vector<Dense>, kNeighbourKinds> sigma_;
    std::vector<Dense> cls_;
    Mat<float> sigma_zero_;                            // Σ_k σ_k(0): 1×H
    Mat<float> wcat_;                                  // H × 4w when reordered
    bool reorder_ = false;
    Mat<float> mu_, mu_prev_, xw_, p_;                 // whole-graph run: xw_ = v·W1 (N × H), kept over t
    double flops_ = 0, model_flops_ = 0;
    // Row-restricted runs: level t holds the nodes needing mu(t) (ascending), the row of each in
    // xw (v·W1 over the union of the levels) and its in-edges with sources as level t−1 rows.
    struct Level { std::vector<uint32_t> nodes, xw_row; std::array<Csr, kNeighbourKinds> in; };
    // One thread's blocks: their levels, buffers and counts (run_distinct sums the counts).
    struct Work {
        Mat<float> mu, mu_prev, xw, p;
        std::vector<Level> levels;
        std::vector<uint32_t> union_nodes, merged;          // union of the levels (ascending)
        std::vector<uint64_t> seen;                          // N bits, all 0 between level collections
        std::vector<uint64_t> frontier;
        uint64_t level_nodes = 0;                            // Σ_t |level t| of the last collect_levels
        size_t blocks = 0;
        uint64_t largest = 0;
        double flops = 0, model_flops = 0;
        // the run's work limit, in node-iterations (0 = none), and the work its blocks have done
        // (shared by the threads)
        uint64_t work_limit = 0;
        std::atomic<uint64_t>* work_done = nullptr;
        void reset(size_t iterations);   // the counts only
    };
    std::vector<Work> work_;                           // one per thread
    bool blocked_ = false;                             // the last run was row-restricted, in blocks
    size_t last_work_ = 0;                             // … and this thread's Work ran its last block
    Mat<float> whole_;                                 // N × K when the whole-graph run was cheaper
    std::vector<uint64_t> frontier_;
    uint64_t budget_ = 0, largest_block_ = 0;
    double work_limit_ = 0;
    size_t work_samples_ = kWorkSamples;
    uint64_t work_cap_ = 0;
    Clock::time_point deadline_ = Clock::time_point::max();
    size_t blocks_ = 0;
    // Receives the probabilities of distinct rows i0, i0 + 1, … (one block's rows); called from
    // several threads at once, for disjoint rows.
    using RowSink = std::function<void(Eigen::Index i0, const Mat<float>& probs)>;
    uint64_t collect_levels(const GraphInput& g, std::span<const uint32_t> top, Work& w) const;
    void run_distinct(const GraphInput& g, std::span<const uint32_t> rows, std::span<const uint32_t> distinct,
                      const RowSink& sink);
    static constexpr size_t kFirstBlockRows = 1024;   // a thread's first block
    static size_t next_block_rows(uint64_t ws, size_t rows, uint64_t share, size_t total);
    uint64_t limit_work(const GraphInput& g, std::span<const uint32_t> distinct, uint64_t share);
    std::string work_limit_message(double times, bool reached) const;
    void check_cap(uint64_t work, const GraphInput& g) const;   // WorkLimitError past work_cap_
    [[noreturn]] void throw_capped(uint64_t work, const GraphInput& g) const;
    // WorkLimitError (timed_out) once deadline_ has passed; `started`: the run had computed before
    void check_deadline(const GraphInput& g, bool started) const;
    bool run_block(const GraphInput& g, std::span<const uint32_t> top, uint64_t ws, uint64_t budget,
                   const RowSink& sink, Eigen::Index out0, Work& w) const;
};

// A row-restricted run refused for the work its blocks would repeat (InferenceNet::set_work_limit),
// for work past the cap (set_work_cap: `capped`, whatever the memory), or a run stopped at the
// deadline (set_deadline: `timed_out`, any run; detect.hpp voting_rows throws it too, `whole_bytes`
// 0). what() says the figures, and the memory budget under which the whole graph runs at once
// instead: `whole_bytes`.
class WorkLimitError : public std::runtime_error {
public:
    WorkLimitError(const std::string& what, uint64_t whole_bytes, bool capped = false, uint64_t work = 0,
                   bool timed_out = false)
        : std::runtime_error(what), whole_bytes(whole_bytes), capped(capped), work(work), timed_out(timed_out) {}
    uint64_t whole_bytes;   // InferenceNet::whole_graph_bytes(N)
    bool capped;            // past the work cap (set_work_cap): no budget lets it run
    uint64_t work;          // capped: the node-iterations it would take (at least; 0 otherwise)
    bool timed_out;         // stopped at the deadline (set_deadline): no budget or cap lets it run
    // The deadline's: `started`, the run had computed before it stopped (else it passed before)
    static WorkLimitError past_deadline(bool started, uint64_t whole_bytes = 0) {
        return WorkLimitError(started ? "its run stopped at the deadline" : "the deadline passed before its run", whole_bytes,
                              false, 0, true);
    }
};

// Each row's class: the index of its largest probability, the first of equal maxima (Eigen's
// maxCoeff), as InferenceNet::run(graph, rows, classes) keeps it. `probs` is M × K.
std::vector<uint32_t> argmax_classes(const Mat<float>& probs);

// ---------------------------------------------------------------------------------------------
// The model file: everything needed to detect one object type and to resume training.
// Where a key node lies in its object's struct, by member rather than byte offset
// (train/key_anchors.hpp; issue #9 item 5): the leaf member (dotted path) holding its first byte
// and the bytes into it; its end likewise ("" = the struct's end); no end for an open-ended key.
struct KeyAnchor {
    std::string start;
    uint32_t start_delta = 0;
    std::optional<std::string> end;
    uint32_t end_delta = 0;
    bool operator==(const KeyAnchor&) const = default;
};
struct KeyNode {
    uint32_t offset = 0, length = 0;   // bytes from the object's start
    float weight = 1.f;                // voting weight
    // The segment runs past the object's end (its length depends on what follows the object):
    // `length` is its part inside the object, and a node of any length ≥ `length` matches.
    bool open_end = false;
    // Format 8: the members it lies in (train/key_anchors.hpp), so that a dump of another build
    // can place it by its own BTF: one reading per layout of the builds its class was learned from,
    // the most common first (at most kMaxAnchors); none in models made before, or without the
    // builds' BTF.
    std::vector<KeyAnchor> anchors;
    static constexpr uint32_t kMaxAnchors = 16;
    bool matches(uint32_t segment_length) const noexcept {
        return open_end ? segment_length >= length : segment_length == length;
    }
    // "offset/length[+]/weight" (+: open end; the weight in its shortest exact text): how dmtrain's
    // log and dmdetect --list-models write a key node.
    std::string text() const;
    bool operator==(const KeyNode&) const = default;
};
// One kernel build a model was trained on: its release (`uname -r`, from the dump's meta.json or
// its banner) and, when the dumps showed it, the whole `Linux version …` banner
// (graph/kernel_banner.hpp), which also tells builds of one release apart.
struct KernelBuild {
    std::string release, banner;
    bool operator==(const KernelBuild&) const = default;
};
struct Provenance {
    std::string dataset_manifest_sha256, kernel_build, date;
    uint64_t seed = 0;
    std::string training_config;   // the effective dmtrain configuration (INI text)
    // Format 3. The builds of the train and validation dumps (distinct, in first-seen order; empty
    // for older files), and the vote agreement on the validation dumps at training end: of
    // `validation_objects` candidate objects, `validation_agreeing` had key-node votes agreeing on
    // one base (detect/fit.hpp); 0 of 0 when not measured.
    std::vector<KernelBuild> kernel_builds;
    uint64_t validation_objects = 0, validation_agreeing = 0;
    // dmtrain --recalibrate (train/trainer.hpp) chose the threshold, vote window and base alignment
    // anew on a manifest's validation dumps: add_recalibration appends "[recalibrated]\nmanifest = M\n"
    // and `details` (key = value lines) to training_config; recalibrated_on lists those M, in order.
    void add_recalibration(const std::string& manifest, const std::string& details);
    std::vector<std::string> recalibrated_on() const;
    bool operator==(const Provenance&) const = default;
};

// Format 6. One object type's part of a joint model (Model::parts): its key nodes are the next
// `key_count` entries of Model::key_nodes (parts in order), and its detection settings are its own,
// as a single-type model's (Model::threshold, image_absent_threshold, vote_window, the provenance's
// validation agreement).
struct TypePart {
    std::string object_type;
    uint32_t key_count = 0;
    float threshold = 0, image_absent_threshold = 0;
    uint32_t vote_window = 0;
    uint64_t validation_objects = 0, validation_agreeing = 0;
    uint32_t base_alignment = 0;   // format 7 (Model::base_alignment)
    bool operator==(const TypePart&) const = default;
};

struct Model {
    ModelConfig config;
    Params<float> params;
    AdamConfig adam;
    AdamState adam_state;                 // empty moments when never trained
    std::vector<float> class_weights;     // K loss weights, or empty
    std::string object_type;              // e.g. "task_struct"
    std::vector<KeyNode> key_nodes;       // class c ≥ 1 is key_nodes[c − 1]; K − 1 entries
    float threshold = 0.5f;               // detection threshold
    // Format 4. Votes of key nodes whose bases lie within this many bytes of a candidate base count
    // for it (detect/detect.hpp, Window): tolerates fields shifted by another kernel build's layout.
    // 0 = exact bases only (formats 2 and 3).
    uint32_t vote_window = 0;
    // Format 5. The threshold on a dump that lacks the kernel image (lacks_kernel_image,
    // detect/detect.hpp): a capture cut below the image loses the image's data, every edge into it,
    // and the votes of key nodes that had them, so its objects score lower (task_struct: at most 8.07
    // against 13.63 on validation cuts). 0 = none: the threshold applies there too. Chosen on
    // validation dumps cut that way (dmtrain --recalibrate … --image-absent, train/trainer.hpp).
    float image_absent_threshold = 0;
    // Format 7. Every object of this type the labels held began at a multiple of this many bytes (a
    // power of two above the word size, at most 4096; 0 = not learned: any base): its slab cache's
    // alignment. A cache made with SLAB_HWCACHE_ALIGN (cred_jar, kernel/cred.c) or an explicit align
    // (task_struct, kernel/fork.c) starts every object on a cache line, whatever the struct's size; a
    // dead object whose segments moved by a word (a freed cred's rcu_head.next) votes a base between
    // two lines. Detection drops such bases (detect/detect.hpp Alignment). Learned from labels
    // (train/trainer.hpp Alignment, at most 64 bytes); a model trained without it reads 0.
    uint32_t base_alignment = 0;
    GraphParams graph;                    // graph-construction parameters it was trained with
    Provenance provenance;
    // Format 6. A joint model (issue 12: one pass for every type): several object types share the
    // whole network — embedding and classifier — its classes 1..K−1 being the key nodes of all of
    // them, part 0's first (paper §3.3's classifier over key nodes, with the key nodes of several
    // types); the detector runs it once for all its types (Detector). Empty for a model of one
    // type. In a joint model object_type is the parts' types joined by '+' (what messages name), and
    // threshold, image_absent_threshold, vote_window and provenance.validation_* are 0: each part has
    // its own.
    std::vector<TypePart> parts;
    bool joint() const noexcept { return !parts.empty(); }
    // The single-type models this model detects as, in parts order (a single-type model: itself):
    // part i's type, key nodes, thresholds, vote window and validation agreement with the shared
    // config (classes = its key nodes + 1), graph parameters and provenance; a joint model's parts
    // carry no weights (params, Adam state and class weights empty: the network is the joint
    // model's). `first_class`, when given, receives the joint class of each one's first key node
    // (1 for a single-type model): joint class c is that model's class c − first + 1.
    std::vector<Model> type_models(std::vector<uint32_t>* first_class = nullptr) const;
    // A type model's class of a node from its joint class: c − first + 1 for the type's key nodes
    // (first ≤ c < first + keys), else 0 (no key node, or another type's).
    static uint32_t type_class(uint32_t joint_class, uint32_t first, uint32_t keys) noexcept {
        return joint_class >= first && joint_class - first < keys ? joint_class - first + 1 : 0;
    }

    // A fresh model with initialised parameters and zeroed Adam moments.
    static Model create(const ModelConfig&, uint64_t seed);
    // Header: magic "DMMODEL\0", u32 format version, u32 0, u64 payload length, u64 FNV-1a-64
    // checksum of the payload; payload: cereal portable binary archive (little endian).
    std::vector<uint8_t> to_bytes() const;
    static Model from_bytes(std::span<const uint8_t>);   // throws ModelError, never crashes
    void save(const std::string& path) const;            // atomic (graph/file_io.hpp); ModelError(Io)
    // Throws ModelError. `checksum`, when given, receives the file's payload checksum (verified):
    // two reads of one path that give the same checksum read the same model.
    static Model load(const std::string& path, uint64_t* checksum = nullptr);
    // Frees Adam's moments (adam_state: twice the weights), which detection never reads; the model
    // can no longer resume training exactly. Detector::add_model and dmdetect's shipped list do it.
    void drop_optimiser_state() noexcept { adam_state = AdamState{}; }
    // Frees the network's weights too (params, Adam state, class weights): what is left describes
    // the model (type, key nodes, thresholds, graph parameters, provenance) for choosing among
    // models (dmdetect's shipped list, detect/fit.hpp pick_models). Such a model no longer runs or
    // passes validate(): load its file again for that.
    void drop_weights() noexcept {
        drop_optimiser_state();
        params = Params<float>{};
        class_weights = {};
    }
    // Shapes vs config, table sizes (BadShape/BadConfig), then meaning (BadValue): every weight,
    // moment, Adam and class weight and the threshold finite, the threshold > single_vote_bound() (a lone
    // vote must not make an object: attacker 13, thresholds 1e-45..1 gave the 127 false task_structs of
    // threshold 0 on the dev dump); key nodes of length 1..max_segment−1
    // ending within kMaxObjectBytes of the object's start, with a weight in (0, kMaxKeyWeight]; graph word size
    // 4 or 8; vote_window ≤ kMaxVoteWindow; image_absent_threshold 0 or held to the threshold's rules;
    // base_alignment 0 or a power of two in (graph word size, kMaxBaseAlignment]; a key node's anchors:
    // at most KeyNode::kMaxAnchors, each with member paths of 1..kMaxAnchorPath characters [A-Za-z0-9_.[]], deltas below
    // kMaxObjectBytes, an end exactly when the key node is not open-ended ("" = the struct's end).
    // The object type a C identifier of at most 256 characters (a kernel struct's name: it is
    // written into CSV and JSON output). A joint model: at most kMaxParts parts of distinct types, each
    // of ≥ 1 key node, together every key node; object_type their join; each part held to the rules
    // above (over its own key nodes); the joint model's own threshold, window and agreement 0; its
    // provenance's bytes × parts ≤ kMaxJointProvenance.
    void validate() const;
    // The highest score one key node's vote alone gives a base (a score is the sum of its voters'
    // weights plus a bonus per further vote, detect/detect.hpp): the largest key-node weight; 0 for a
    // model of one key node (its every object is one vote). A threshold at or below it reports every
    // base that node voted for, like a threshold of 0: validate() refuses it in a model file,
    // dmdetect warns when --threshold is at or below it.
    float single_vote_bound() const noexcept;
    // Key nodes with anchors (KeyNode::anchors, format 8): what dmdetect can place in another build's layout.
    size_t anchored_key_nodes() const noexcept;
    // validate()'s rules of meaning for detection (threshold, key nodes, vote window) on a
    // single-type model or a joint model's part (type_models()); BadValue.
    static void validate_detection(const Model&);
    static constexpr uint32_t kMaxObjectBytes = 1u << 20;   // far above any kernel struct
    static constexpr uint32_t kMaxVoteWindow = 1u << 16;
    static constexpr uint32_t kMaxAnchorPath = 512;   // task_struct's longest member path is under 100
    static constexpr uint32_t kMaxBaseAlignment = 4096;   // a page: no slab cache aligns objects more
    // Trained weights are label frequencies in (0, 1]; a base's score sums at most one per key node.
    static constexpr float kMaxKeyWeight = 1e6f;
    // 2: provenance.training_config, KeyNode.open_end; 3: provenance.kernel_builds and the
    // validation vote agreement; 4: vote_window; 5: image_absent_threshold; 6: parts; 7:
    // base_alignment (the model's and each part's; parts count 0 for a single-type model); 8: key-node
    // anchors (KeyNode::anchors). Files of format 2 to 8 are read; a model is written in the oldest
    // format that holds it (single type: 5, joint: 6, an alignment: 7, anchors: 8), so older builds
    // read what they can.
    static constexpr uint32_t kFormatVersion = 8;
    static constexpr uint32_t kMaxParts = 64;   // the detector keeps a bit per node for each
    static constexpr uint64_t kMaxJointProvenance = uint64_t{64} << 20;   // provenance bytes × parts
    static constexpr uint32_t kOldestFormatVersion = 2;
};

uint64_t fnv1a64(std::span<const uint8_t>) noexcept;
// An object type's name as model files and dmtrain take it: a C identifier (a kernel struct's name),
// 1..256 characters.
bool is_object_type_name(std::string_view) noexcept;

}  // namespace deepmem
