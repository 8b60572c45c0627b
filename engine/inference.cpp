// Inference fast path (engine.hpp): folded layers, v·W1 computed once and kept, σ_k(0) rows at
// t = 1, reordered aggregation, row blocks over OpenMP threads with per-thread scratch allocated
// once per run.
#include "engine/engine.hpp"
#include "engine/kernels.hpp"
#include "graph/memory_budget.hpp"   // free_storage
#include "graph/parallel_errors.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <string>

namespace deepmem {

namespace {

using Dense = InferenceNet::Dense;
using Index = Eigen::Index;
using RowsRef = Eigen::Ref<Mat<float>>;
using Map = Eigen::Map<Mat<float>>;

// Folds W_a, W_b with no activation between them: (x·W_a + b_a)·W_b + b_b = x·(W_a·W_b) + (b_a·W_b + b_b).
std::vector<Dense> fold(std::vector<Dense> layers) {
    std::vector<Dense> out;
    for (auto& l : layers) {
        if (!out.empty() && out.back().activation == Activation::None) {
            Dense& prev = out.back();
            // products in double: the folded matrix rounds once, not once per layer
            const Mat<double> lw = l.w.cast<double>();
            Mat<float> w = (prev.w.cast<double>() * lw).cast<float>();
            Mat<float> b = (prev.b.cast<double>() * lw + l.b.cast<double>()).cast<float>();
            prev = {std::move(w), std::move(b), l.activation};
        } else {
            out.push_back(std::move(l));
        }
    }
    return out;
}

template <class In>
void dense_forward(const Dense& d, const In& in, Map out) {
    out.noalias() = in * d.w;
    out.rowwise() += d.b.row(0);
    if (d.activation == Activation::Relu) out = out.cwiseMax(0.f);
}

struct Scratch {
    std::vector<float> x, s, a, b, beta;
};

constexpr Index kBlock = 512;

// node → its index in a list of distinct nodes, by open addressing in a table of 2–4× the list
// (a block's level, within its working set): a run's renumbering of in-edges without a table of
// the graph's size per thread (4 bytes a node: 2 MiB a thread on the dev dump, 16 MiB on a 4 M-node
// graph), and without a binary search per edge (cred on the dev dump: 12% slower).
class RowIndex {
public:
    explicit RowIndex(const std::vector<uint32_t>& nodes) {
        int bits = 4;
        while ((size_t{1} << bits) < 2 * nodes.size()) ++bits;
        shift_ = 64 - bits;
        mask_ = (size_t{1} << bits) - 1;
        keys_.assign(mask_ + 1, kEmpty);
        rows_.resize(mask_ + 1);
        for (size_t i = 0; i < nodes.size(); ++i) {
            size_t h = slot(nodes[i]);
            while (keys_[h] != kEmpty) h = (h + 1) & mask_;
            keys_[h] = nodes[i];
            rows_[h] = uint32_t(i);
        }
    }
    uint32_t operator[](uint32_t n) const {   // n must be in the list (a logic error otherwise)
        for (size_t h = slot(n);; h = (h + 1) & mask_) {
            if (keys_[h] == n) return rows_[h];
            if (keys_[h] == kEmpty) throw std::logic_error("RowIndex: node " + std::to_string(n) + " not in the level");
        }
    }
private:
    static constexpr uint32_t kEmpty = UINT32_MAX;   // no node id (MemoryGraph: fewer than 2^32 − 1 nodes)
    size_t slot(uint32_t n) const noexcept { return size_t((uint64_t(n) * 0x9e3779b97f4a7c15ull) >> shift_) & mask_; }
    int shift_ = 60;
    size_t mask_ = 15;
    std::vector<uint32_t> keys_, rows_;
};


// Per-thread scratch for blocks of kBlock rows, allocated once per run.
std::vector<Scratch> make_scratch(Index D, Index H, Index max_w) {
    // one set per thread of a region run from here: 1 inside another region (nested regions are serial)
    std::vector<Scratch> scratch(static_cast<size_t>(omp_in_parallel() ? 1 : omp_get_max_threads()));
    for (auto& s : scratch) {
        s.x.resize(size_t(kBlock * D));
        s.s.resize(size_t(kBlock * H));
        s.a.resize(size_t(kBlock * max_w));
        s.b.resize(size_t(kBlock * max_w));
        s.beta.resize(size_t(kBlock * H));
    }
    return scratch;
}

// beta = v·W1 for R nodes node(0..R−1) (W1 holds the 1/255 input scaling).
template <class NodeOf>
void input_product(const GraphInput& g, const Mat<float>& w1, Index R, NodeOf node, Scratch& sc, Map beta) {
    const Index D = w1.rows(), F = g.feature_bytes, copy = std::min(F, D);
    Map x(sc.x.data(), R, D);
    for (Index r = 0; r < R; ++r) {
        const uint8_t* f = g.features.data() + Index(node(r)) * F;
        for (Index c = 0; c < copy; ++c) x(r, c) = float(f[c]);
        for (Index c = copy; c < D; ++c) x(r, c) = 0.f;
    }
    beta.noalias() = x * w1;
}

// beta += Σ_k σ_k(Σ_{m ∈ in_k[n]} mu_m(t−1)) for rows r0..r0+R of the CSRs `in`, whose sources are
// rows of `prev`: mu(t−1) (H wide), or P = mu(t−1)·[W_ln|W_rn|W_lp|W_rp] when reordered.
void add_sigma(const std::array<std::vector<Dense>, kNeighbourKinds>& sigma, bool reorder,
               const std::array<CsrView, kNeighbourKinds>& in, Index r0, Index R, const Mat<float>& prev,
               Scratch& sc, Map beta) {
    const Index H = beta.cols(), w0 = sigma[0][0].w.cols();
    for (int k = 0; k < kNeighbourKinds; ++k) {
        const auto& layers = sigma[k];
        float* cur = sc.a.data();
        float* nxt = sc.b.data();
        if (reorder) {
            // z = A_k·P_k + b_k0, then the first layer's activation
            Map z(cur, R, w0);
            kernels::aggregate_rows<float>(in[k], r0, r0 + R, prev.data() + k * w0, prev.cols(), cur, w0, w0, false);
            z.rowwise() += layers[0].b.row(0);
            if (layers[0].activation == Activation::Relu) z = z.cwiseMax(0.f);
        } else {
            kernels::aggregate_rows<float>(in[k], r0, r0 + R, prev.data(), H, sc.s.data(), H, H, false);
            dense_forward(layers[0], Map(sc.s.data(), R, H), Map(cur, R, layers[0].w.cols()));
        }
        Index w = layers[0].w.cols();
        for (size_t l = 1; l < layers.size(); ++l) {
            dense_forward(layers[l], Map(cur, R, w), Map(nxt, R, layers[l].w.cols()));
            w = layers[l].w.cols();
            std::swap(cur, nxt);
        }
        beta += Map(cur, R, H);
    }
}

// probs rows out0..out0+R = softmax(ψ(mu rows r0..r0+R)).
void classify(const std::vector<Dense>& cls, const Mat<float>& mu, Index r0, Index R, Scratch& sc,
              Mat<float>& probs, Index out0) {
    const Index H = mu.cols(), K = probs.cols();
    float* cur = sc.a.data();
    float* nxt = sc.b.data();
    Map(cur, R, H) = mu.middleRows(r0, R);
    Index w = H;
    for (const Dense& d : cls) {
        dense_forward(d, Map(cur, R, w), Map(nxt, R, d.w.cols()));
        w = d.w.cols();
        std::swap(cur, nxt);
    }
    Map logits(cur, R, K);
    for (Index r = 0; r < R; ++r) {
        const float mx = logits.row(r).maxCoeff();
        auto e = (logits.row(r).array() - mx).exp();
        probs.row(out0 + r) = (e / e.sum()).matrix();
    }
}

// Flops of iteration t (engine.hpp, last_flops): `n` nodes computed with `nnz` in-edges; v·W1
// over `n_xw` nodes at t = 1; when reordered, P over the `n_prev` nodes of iteration t − 1.
void count_iteration(const ModelConfig& cfg, const std::array<std::vector<Dense>, kNeighbourKinds>& sigma,
                     bool reorder, Index t, double n_xw, double n_prev, double n, double nnz, double& flops,
                     double& model_flops) {
    const double D = cfg.input_width, H = cfg.embed_width, w0 = double(sigma[0][0].w.cols());
    if (t == 1) flops += 2.0 * n_xw * D * H;
    model_flops += 2.0 * n * D * H + nnz * H;
    for (int k = 0; k < kNeighbourKinds; ++k) {
        double in = H;
        for (const LayerSpec& l : cfg.sigma) {
            model_flops += 2.0 * n * in * l.width;
            in = l.width;
        }
    }
    if (t == 1) return;
    if (reorder) flops += 2.0 * n_prev * H * kNeighbourKinds * w0;
    flops += nnz * (reorder ? w0 : H);
    for (int k = 0; k < kNeighbourKinds; ++k)
        for (size_t l = reorder ? 1 : 0; l < sigma[k].size(); ++l)
            flops += 2.0 * n * double(sigma[k][l].w.rows()) * double(sigma[k][l].w.cols());
}

void count_classifier(const ModelConfig& cfg, const std::vector<Dense>& cls, double n, double& flops,
                      double& model_flops) {
    for (const Dense& d : cls) flops += 2.0 * n * double(d.w.rows()) * double(d.w.cols());
    double in = cfg.embed_width;
    for (const LayerSpec& l : cfg.classifier_hidden) {
        model_flops += 2.0 * n * in * l.width;
        in = l.width;
    }
    model_flops += 2.0 * n * in * cfg.classes;
}

Index widest(const ModelConfig& cfg, const std::array<std::vector<Dense>, kNeighbourKinds>& sigma,
             const std::vector<Dense>& cls) {
    Index w = std::max<Index>(cfg.embed_width, cfg.classes);
    for (const auto& s : sigma) for (const auto& d : s) w = std::max<Index>(w, d.w.cols());
    for (const auto& d : cls) w = std::max<Index>(w, d.w.cols());
    return w;
}

}  // namespace

InferenceNet::InferenceNet(const ModelConfig& cfg, const Params<float>& p) : cfg_(cfg) {
    cfg_.validate();
    const auto shapes = parameter_shapes(cfg_);
    if (p.tensors.size() != shapes.size()) throw ModelError(ModelError::Kind::BadShape, 0, "tensor count ≠ config");
    for (size_t i = 0; i < shapes.size(); ++i)
        if (p.tensors[i].rows() != shapes[i].first || p.tensors[i].cols() != shapes[i].second)
            throw ModelError(ModelError::Kind::BadShape, 0, parameter_names(cfg_)[i] + " shape ≠ config");
    const Index H = cfg_.embed_width;
    w1_ = p.w1() / 255.f;
    sigma_zero_ = Mat<float>::Zero(1, H);
    for (int k = 0; k < kNeighbourKinds; ++k) {
        std::vector<Dense> layers;
        for (size_t l = 0; l < cfg_.sigma.size(); ++l)
            layers.push_back({p.sigma_w(k, int(l)), p.sigma_b(k, int(l)), cfg_.sigma[l].activation});
        sigma_[k] = fold(std::move(layers));
        // σ_k(0): at t = 1 every aggregated sum is 0
        Mat<float> z = Mat<float>::Zero(1, H);
        for (const Dense& d : sigma_[k]) {
            Mat<float> o(1, d.w.cols());
            dense_forward(d, z, Map(o.data(), 1, o.cols()));
            z = std::move(o);
        }
        sigma_zero_ += z;
    }
    // A·(mu·W) costs nnz·w + N·H·w, (A·mu)·W costs nnz·H + N·H·w: reorder when the first layer narrows.
    const Index w0 = sigma_[0][0].w.cols();
    reorder_ = w0 < H;
    if (reorder_) {
        wcat_.resize(H, kNeighbourKinds * w0);
        for (int k = 0; k < kNeighbourKinds; ++k) wcat_.middleCols(k * w0, w0) = sigma_[k][0].w;
    }
    std::vector<Dense> layers;
    for (size_t j = 0; j <= cfg_.classifier_hidden.size(); ++j)
        layers.push_back({p.cls_w(int(j)), p.cls_b(int(j)),
                          j < cfg_.classifier_hidden.size() ? cfg_.classifier_hidden[j].activation : Activation::None});
    cls_ = fold(std::move(layers));
}

void InferenceNet::release() noexcept {
    for (Mat<float>* m : {&mu_, &mu_prev_, &xw_, &p_, &whole_}) m->resize(0, 0);
    free_storage(work_);   // (`v = {}` kept the capacity: 3.1 MB a model, across all six of dmdetect's)
    blocked_ = false;
}

void InferenceNet::run(const GraphInput& g, Mat<float>& probs) {
    g.validate();
    const Index N = g.nodes(), H = cfg_.embed_width, T = cfg_.iterations, K = cfg_.classes;
    const Index blocks = (N + kBlock - 1) / kBlock;
    ParallelErrors errors;
    mu_.resize(N, H);
    mu_prev_.resize(N, H);
    if (T > 1) xw_.resize(N, H);
    probs.resize(N, K);
    if (reorder_ && T > 1) p_.resize(N, wcat_.cols());
    std::vector<Scratch> scratch = make_scratch(cfg_.input_width, H, widest(cfg_, sigma_, cls_));
    uint64_t nnz = 0;
    for (const auto& a : g.in) nnz += a.sources.size();
    frontier_.assign(size_t(T), uint64_t(N));
    blocked_ = false;
    flops_ = 0;
    model_flops_ = 0;

    for (Index t = 1; t <= T; ++t) {
        if (Clock::now() >= deadline_) {   // engine.hpp, deadline: what ran is iterations 1 … t − 1
            std::fill(frontier_.begin() + (t - 1), frontier_.end(), 0);
            throw WorkLimitError::past_deadline(t > 1, whole_graph_bytes(g.nodes()));
        }
        std::swap(mu_, mu_prev_);   // mu_prev = mu(t−1)
        if (t > 1 && reorder_) {
            // P = mu(t−1)·[W_ln|W_rn|W_lp|W_rp]: the four first layers as one GEMM
#pragma omp parallel for schedule(dynamic, 1)
            for (Index bl = 0; bl < blocks; ++bl)
                errors.run([&] {
                    const Index r0 = bl * kBlock, R = std::min(kBlock, N - r0);
                    p_.middleRows(r0, R).noalias() = mu_prev_.middleRows(r0, R) * wcat_;
                });
            errors.rethrow();
        }
#pragma omp parallel for schedule(dynamic, 1)
        for (Index bl = 0; bl < blocks; ++bl)
            errors.run([&] {
                Scratch& sc = scratch[size_t(omp_get_thread_num())];
                const Index r0 = bl * kBlock, R = std::min(kBlock, N - r0);
                Map beta(sc.beta.data(), R, H);
                if (t == 1) {
                    // v·W1 once for all t; σ_k(0) is one constant row
                    input_product(g, w1_, R, [r0](Index r) { return r0 + r; }, sc, beta);
                    if (T > 1) xw_.middleRows(r0, R) = beta;
                    beta.rowwise() += sigma_zero_.row(0);
                } else {
                    beta = xw_.middleRows(r0, R);
                    add_sigma(sigma_, reorder_, g.in, r0, R, reorder_ ? p_ : mu_prev_, sc, beta);
                }
                mu_.middleRows(r0, R) = beta.array().tanh().matrix();
            });
        errors.rethrow();
        count_iteration(cfg_, sigma_, reorder_, t, double(N), double(N), double(N), double(nnz), flops_, model_flops_);
    }

    // ---- classifier ψ and softmax over every node
#pragma omp parallel for schedule(dynamic, 1)
    for (Index bl = 0; bl < blocks; ++bl)
        errors.run([&] {
            const Index r0 = bl * kBlock, R = std::min(kBlock, N - r0);
            classify(cls_, mu_, r0, R, scratch[size_t(omp_get_thread_num())], probs, r0);
        });
    errors.rethrow();
    count_classifier(cfg_, cls_, double(N), flops_, model_flops_);
}

// Levels for the distinct ascending rows `top`, from T down: T = top, t − 1 = the in-neighbours of
// level t (each level ascending), their union, and the working set of running them (engine.hpp,
// memory budget). O(edges of the frontier · log).
uint64_t InferenceNet::collect_levels(const GraphInput& g, std::span<const uint32_t> top, Work& w) const {
    const Index H = cfg_.embed_width, T = cfg_.iterations, K = cfg_.classes;
    if (w.seen.size() != (g.nodes() + 63) / 64) w.seen.assign((g.nodes() + 63) / 64, 0);
    w.levels.resize(size_t(T));
    w.levels[size_t(T - 1)].nodes.assign(top.begin(), top.end());
    uint64_t edges = 0, pair = 0;
    for (Index t = T; t >= 2; --t) {
        const std::vector<uint32_t>& above = w.levels[size_t(t - 1)].nodes;
        std::vector<uint32_t>& below = w.levels[size_t(t - 2)].nodes;
        below.clear();
        for (uint32_t n : above)
            for (const CsrView& a : g.in)
                for (uint32_t m : a.row(n)) {
                    ++edges;
                    uint64_t& bits = w.seen[m / 64];
                    if (!(bits >> (m % 64) & 1)) {
                        bits |= uint64_t{1} << (m % 64);
                        below.push_back(m);
                    }
                }
        for (uint32_t m : below) w.seen[m / 64] = 0;
        std::sort(below.begin(), below.end());
        pair = std::max<uint64_t>(pair, above.size() + below.size() * (reorder_ ? 1 + (wcat_.cols() + H - 1) / H : 1));
    }
    if (T == 1) pair = top.size();
    w.union_nodes.clear();
    w.level_nodes = 0;
    for (const Level& lv : w.levels) {
        w.merged.clear();
        std::set_union(w.union_nodes.begin(), w.union_nodes.end(), lv.nodes.begin(), lv.nodes.end(),
                       std::back_inserter(w.merged));
        std::swap(w.union_nodes, w.merged);
        w.level_nodes += lv.nodes.size();
    }
    // floats: v·W1 over the union, mu(t) beside mu(t − 1) (and P), the rows' outputs; 32-bit words:
    // level nodes and v·W1 rows, renumbered CSR sources, 64-bit offsets, the union and its merge copy
    return 4 * (uint64_t(w.union_nodes.size()) * uint64_t(H) + pair * uint64_t(H) + top.size() * uint64_t(K)) +
           4 * (2 * w.level_nodes + edges + 2 * w.level_nodes + 2 * uint64_t(w.union_nodes.size()));
}

namespace {

// The distinct rows ascending of `rows` (a copy only when `rows` is not that already).
std::span<const uint32_t> distinct_rows(std::span<const uint32_t> rows, std::vector<uint32_t>& own) {
    if (std::is_sorted(rows.begin(), rows.end()) && std::adjacent_find(rows.begin(), rows.end()) == rows.end())
        return rows;
    own.assign(rows.begin(), rows.end());
    std::sort(own.begin(), own.end());
    own.erase(std::unique(own.begin(), own.end()), own.end());
    return own;
}

// Index of `row` in `distinct` (ascending, holding it).
size_t index_of(std::span<const uint32_t> distinct, uint32_t row) {
    return size_t(std::lower_bound(distinct.begin(), distinct.end(), row) - distinct.begin());
}

}  // namespace

void InferenceNet::run(const GraphInput& g, std::span<const uint32_t> rows, Mat<float>& probs) {
    std::vector<uint32_t> own;
    const auto distinct = distinct_rows(rows, own);
    Mat<float> spread;
    Mat<float>& out = own.empty() ? probs : spread;   // written straight into `probs` when rows are distinct
    out.resize(Index(distinct.size()), cfg_.classes);
    run_distinct(g, rows, distinct, [&](Index i0, const Mat<float>& p) { out.middleRows(i0, p.rows()) = p; });
    if (own.empty()) return;
    probs.resize(Index(rows.size()), cfg_.classes);
    for (size_t i = 0; i < rows.size(); ++i) probs.row(Index(i)) = spread.row(Index(index_of(distinct, rows[i])));
}

void InferenceNet::run(const GraphInput& g, std::span<const uint32_t> rows, std::vector<uint32_t>& classes) {
    std::vector<uint32_t> own, spread;
    const auto distinct = distinct_rows(rows, own);
    std::vector<uint32_t>& out = own.empty() ? classes : spread;
    out.resize(distinct.size());
    run_distinct(g, rows, distinct, [&](Index i0, const Mat<float>& p) {
        const std::vector<uint32_t> block = argmax_classes(p);
        std::copy(block.begin(), block.end(), out.begin() + i0);
    });
    if (own.empty()) return;
    classes.resize(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) classes[i] = spread[index_of(distinct, rows[i])];
}

std::vector<uint32_t> argmax_classes(const Mat<float>& probs) {
    std::vector<uint32_t> classes(size_t(probs.rows()));
    for (Index r = 0; r < probs.rows(); ++r) {
        Index c = 0;
        probs.row(r).maxCoeff(&c);
        classes[size_t(r)] = uint32_t(c);
    }
    return classes;
}

void InferenceNet::run_distinct(const GraphInput& g, std::span<const uint32_t> rows,
                                std::span<const uint32_t> distinct, const RowSink& sink) {
    g.validate();
    const uint32_t N = g.nodes();
    const Index T = cfg_.iterations;
    for (uint32_t r : rows)
        if (r >= N)
            throw ModelError(ModelError::Kind::BadBatch, 0,
                             "row " + std::to_string(r) + " ≥ " + std::to_string(N) + " nodes");
    blocked_ = false;
    const int threads = std::max(1, omp_get_max_threads());
    work_.resize(size_t(threads));
    for (Work& w : work_) w.reset(size_t(T));
    size_t done = 0;   // distinct rows run so far
    // the counts of the blocks run (last_frontier: also after a refusal, what it did)
    auto finish = [&] {
        flops_ = model_flops_ = 0;
        blocks_ = 0;
        largest_block_ = 0;
        frontier_.assign(size_t(T), 0);
        for (const Work& w : work_) {
            flops_ += w.flops;
            model_flops_ += w.model_flops;
            blocks_ += w.blocks;
            largest_block_ = std::max(largest_block_, w.largest);
            for (size_t t = 0; t < size_t(T); ++t) frontier_[t] += w.frontier[t];
        }
    };
    finish();   // nothing done yet: a refusal before computing leaves zeros
    check_deadline(g, false);
    // A frontier covering most of the graph costs more pruned (gathers, renumbered CSRs) than whole,
    // when the whole-graph run fits the budget; only then are the levels of every row collected at
    // once (for the cred model's 458 k rows on the dev dump they alone were 15 MB of dmdetect's peak).
    if (!budget_ || (T > 1 && whole_graph_bytes(N) <= budget_)) {
        Work& w = work_[0];
        const uint64_t ws = collect_levels(g, distinct, w);
        uint64_t pruned = 0;
        for (Index t = 2; t <= T; ++t) pruned += w.levels[size_t(t - 1)].nodes.size();
        // the whole graph is cheaper, unless only the pruned single block is within the cap
        const bool block_within_cap_only =
            work_cap_ && uint64_t(T) * N > work_cap_ && w.level_nodes <= work_cap_ && (!budget_ || ws <= budget_);
        if (T > 1 && pruned * 5 > uint64_t(T - 1) * N * 4 && !block_within_cap_only) {
            check_cap(uint64_t(T) * N, g);
            run(g, whole_);
            blocks_ = 1;
            largest_block_ = whole_graph_bytes(N);
            Mat<float> picked(Index(distinct.size()), cfg_.classes);
            for (size_t i = 0; i < distinct.size(); ++i) picked.row(Index(i)) = whole_.row(distinct[i]);
            sink(0, picked);
            return;
        }
        if (!budget_ || ws <= budget_) {
            check_cap(w.level_nodes, g);
            try {
                if (!distinct.empty()) run_block(g, distinct, ws, budget_, sink, 0, w);   // parallel inside
            } catch (const WorkLimitError&) {   // the deadline part-way: what it computed
                finish();
                throw;
            }
            blocked_ = true;
            last_work_ = 0;
            finish();
            return;
        }
        w = Work{};   // sized for every row: give the capacity back before the blocks
        w.reset(size_t(T));
    }
    // Blocks of consecutive rows, each thread running whole blocks within its share of the budget
    // (no barrier inside a block: 250 blocks × 8 parallel regions each cost 18 s against 6 s on a
    // loaded 2-core machine). A thread's next block holds as many rows as its last one's bytes per
    // row let 7/8 of its share hold, the first 1024; run_block halves a block still over the share
    // (the step is kept when its rows ran over it together, sharing their frontier).
    const uint64_t share = std::max<uint64_t>(1, budget_ / uint64_t(threads));
    std::atomic<uint64_t> work_done{0};
    const uint64_t work_limit = limit_work(g, distinct, share);   // its sample blocks compute nothing
    for (Work& w : work_) {
        w.work_limit = work_limit;
        w.work_done = &work_done;
    }
    std::mutex next;   // hands out [done, done + step)
    ParallelErrors errors;
#pragma omp parallel num_threads(threads)
    {
        Work& w = work_[size_t(omp_get_thread_num())];
        errors.run([&] {
            for (size_t step = std::min<size_t>(distinct.size(), kFirstBlockRows);;) {
                size_t lo, hi;
                {
                    std::lock_guard<std::mutex> lock(next);
                    lo = done;
                    hi = done = std::min(distinct.size(), done + step);
                }
                if (lo >= hi || errors.failed()) break;
                const auto block = distinct.subspan(lo, hi - lo);
                const uint64_t ws = collect_levels(g, block, w);
                if (run_block(g, block, ws, share, sink, Index(lo), w)) continue;   // shared frontier: same step
                step = next_block_rows(ws, block.size(), share, distinct.size());
            }
        });
    }
    for (Work& w : work_) w.work_limit = 0, w.work_done = nullptr;
    if (errors.failed()) finish();   // a refusal part-way: what its blocks did
    errors.rethrow();
    blocked_ = true;
    last_work_ = 0;
    while (last_work_ + 1 < work_.size() && work_[last_work_].blocks == 0) ++last_work_;
    finish();
}

// Rows of a thread's next block: as many as the last block's working set per row lets 7/8 of
// the thread's share hold.
size_t InferenceNet::next_block_rows(uint64_t ws, size_t rows, uint64_t share, size_t total) {
    const double per_row = std::max(1.0, double(ws) / double(rows));
    return size_t(std::clamp(0.875 * double(share) / per_row, 1.0, double(total)));
}

// engine.hpp, work limit: the limit in node-iterations (0 = none) after checking the estimate —
// the blocks' work per row in work_samples_ blocks spread evenly over `distinct`, each as many rows
// as the first block's working set gives its successors — times the rows. Throws WorkLimitError.
uint64_t InferenceNet::limit_work(const GraphInput& g, std::span<const uint32_t> distinct, uint64_t share) {
    if (!(work_limit_ > 0 || work_cap_) || distinct.empty()) return 0;
    const double whole = double(cfg_.iterations) * double(g.nodes());
    const double relative = work_limit_ > 0 ? std::clamp(work_limit_ * whole, 1.0, 0x1p63) : 0x1p63;
    const double limit = work_cap_ ? std::min(relative, double(work_cap_)) : relative;
    if (work_samples_ == 0) return uint64_t(limit);
    Work& w = work_[0];
    const size_t first = std::min<size_t>(distinct.size(), kFirstBlockRows);
    const size_t step = next_block_rows(collect_levels(g, distinct.first(first), w), first, share, distinct.size());
    const size_t samples = std::min<size_t>(work_samples_, (distinct.size() + step - 1) / step);
    uint64_t rows = 0, work = 0;
    for (size_t s = 0; s < samples; ++s) {
        const size_t lo = distinct.size() / samples * s, n = std::min(step, distinct.size() - lo);
        collect_levels(g, distinct.subspan(lo, n), w);
        rows += n;
        work += w.level_nodes;
    }
    const double estimate = double(work) / double(rows) * double(distinct.size());
    // past the cap: refused whatever the memory — even where the whole graph at once would be within it
    // (a crafted graph's whole run costs far more a node-iteration, and the ceiling's memory: attacker
    // 75's 32 MiB raw file ran five models whole in 12 s and 1 GB, against 5 s refused)
    if (work_cap_ && estimate > double(work_cap_)) throw_capped(uint64_t(std::min(std::ceil(estimate), 0x1p63)), g);
    if (estimate > limit) throw WorkLimitError(work_limit_message(estimate / whole, false), whole_graph_bytes(g.nodes()));
    return uint64_t(limit);
}

void InferenceNet::check_cap(uint64_t work, const GraphInput& g) const {
    if (work_cap_ && work > work_cap_) throw_capped(work, g);
}

void InferenceNet::check_deadline(const GraphInput& g, bool started) const {
    if (Clock::now() >= deadline_) throw WorkLimitError::past_deadline(started, whole_graph_bytes(g.nodes()));
}

void InferenceNet::throw_capped(uint64_t work, const GraphInput& g) const {
    throw WorkLimitError("it would evaluate " + std::to_string(work) + " node-iterations, past the cap of " +
                             std::to_string(work_cap_),
                         whole_graph_bytes(g.nodes()), true, work);
}

std::string InferenceNet::work_limit_message(double times, bool reached) const {
    char text[160];
    if (reached)
        std::snprintf(text, sizeof text, "evaluated more than %g times the whole graph's node-iterations (the limit)",
                      work_limit_);
    else
        std::snprintf(text, sizeof text, "would evaluate about %.1f times the whole graph's node-iterations (limit %g)",
                      times, work_limit_);
    return std::string("its row blocks under the memory budget ") + text + ": their neighbourhoods share few nodes";
}

uint64_t InferenceNet::whole_graph_bytes(uint64_t nodes) const noexcept {
    const uint64_t H = cfg_.embed_width;
    return 4 * nodes * (3 * H + uint64_t(cfg_.classes) + (reorder_ ? uint64_t(wcat_.cols()) : 0));
}

void InferenceNet::Work::reset(size_t iterations) {
    frontier.assign(iterations, 0);
    blocks = 0;
    largest = 0;
    flops = model_flops = 0;
}

// The rows `top` (levels already collected in `w`, working set `ws`): run at once when within
// `budget` (0 = none) or a single row, else as two halves, each collecting its own levels — unless
// the first half's working set is over 7/8 of the whole's: the rows then share most of their
// frontier, and they run together, over the budget, instead of that frontier once per row
// (attacker 17: rows pointing at one hub whose frontier alone is over the budget ran as 12,055
// one-row blocks, 83× the unbounded time). Returns whether it ran rows over the budget. Gives the
// rows' probabilities to `sink` at out0… Parallel inside when called outside a parallel region;
// serial inside one (nested regions are inactive).
bool InferenceNet::run_block(const GraphInput& g, std::span<const uint32_t> top, uint64_t ws, uint64_t budget,
                             const RowSink& sink, Index out0, Work& w) const {
    bool over = budget && ws > budget;
    if (over && top.size() > 1) {
        const auto lo = top.first(top.size() / 2), hi = top.subspan(top.size() / 2);
        const uint64_t half = collect_levels(g, lo, w);
        if (half * 8 <= ws * 7) {
            const bool a = run_block(g, lo, half, budget, sink, out0, w);
            const bool b = run_block(g, hi, collect_levels(g, hi, w), budget, sink, out0 + Index(lo.size()), w);
            return a || b;
        }
        ws = collect_levels(g, top, w);
    }
    // engine.hpp, work limit and cap: the estimate can be short of the blocks' real work
    if (w.work_limit && w.work_done->fetch_add(w.level_nodes) + w.level_nodes > w.work_limit) {
        if (work_cap_ && w.work_limit >= work_cap_)
            throw WorkLimitError("its row blocks evaluated more than the cap of " + std::to_string(work_cap_) +
                                     " node-iterations (their estimate fell short)",
                                 whole_graph_bytes(g.nodes()), true, w.work_limit + 1);
        throw WorkLimitError(work_limit_message(0, true), whole_graph_bytes(g.nodes()));
    }
    check_deadline(g, true);
    ++w.blocks;
    w.largest = std::max(w.largest, ws);
    ParallelErrors errors;
    const Index H = cfg_.embed_width, T = cfg_.iterations;
    for (Level& lv : w.levels) {   // a subset of the union (both ascending): one merge walk
        lv.xw_row.resize(lv.nodes.size());
        size_t j = 0;
        for (size_t i = 0; i < lv.nodes.size(); ++i) {
            while (w.union_nodes[j] < lv.nodes[i]) ++j;
            lv.xw_row[i] = uint32_t(j);
        }
    }
    // in-edges of level t with sources renumbered as rows of level t − 1 (order kept: same sums)
    for (Index t = T; t >= 2; --t) {
        const RowIndex row_below(w.levels[size_t(t - 2)].nodes);
        Level& lv = w.levels[size_t(t - 1)];
        for (int k = 0; k < kNeighbourKinds; ++k) {
            Csr& c = lv.in[k];
            c.offsets.assign(1, 0);
            c.sources.clear();
            for (uint32_t n : lv.nodes) {
                for (uint32_t m : g.in[k].row(n)) c.sources.push_back(row_below[m]);
                c.offsets.push_back(c.sources.size());
            }
        }
    }

    // ---- v·W1 over the union, then the iterations level by level
    std::vector<Scratch> scratch = make_scratch(cfg_.input_width, H, widest(cfg_, sigma_, cls_));
    const Index U = Index(w.union_nodes.size());
    w.mu_prev.resize(0, 0);   // the last block's embeddings
    w.xw.resize(U, H);
#pragma omp parallel for schedule(dynamic, 1)
    for (Index bl = 0; bl < (U + kBlock - 1) / kBlock; ++bl)
        errors.run([&] {
            const Index r0 = bl * kBlock, R = std::min(kBlock, U - r0);
            input_product(g, w1_, R, [&](Index r) { return w.union_nodes[size_t(r0 + r)]; },
                          scratch[size_t(omp_get_thread_num())], Map(w.xw.data() + r0 * H, R, H));
        });
    errors.rethrow();
    for (Index t = 1; t <= T; ++t) {
        if (t > 1) check_deadline(g, true);   // (a block's levels 1 … t − 1 are counted in w.frontier)
        std::swap(w.mu, w.mu_prev);
        const Level& lv = w.levels[size_t(t - 1)];
        const Index n = Index(lv.nodes.size()), prev = w.mu_prev.rows();
        w.frontier[size_t(t - 1)] += uint64_t(n);
        const std::array<CsrView, kNeighbourKinds> in{lv.in[0].view(), lv.in[1].view(), lv.in[2].view(), lv.in[3].view()};
        if (t > 1 && reorder_) {
            w.p.resize(prev, wcat_.cols());
#pragma omp parallel for schedule(dynamic, 1)
            for (Index bl = 0; bl < (prev + kBlock - 1) / kBlock; ++bl)
                errors.run([&] {
                    const Index r0 = bl * kBlock, R = std::min(kBlock, prev - r0);
                    w.p.middleRows(r0, R).noalias() = w.mu_prev.middleRows(r0, R) * wcat_;
                });
            errors.rethrow();
            w.mu_prev.resize(0, 0);   // P holds all the neighbours need of mu(t − 1)
        }
        w.mu.resize(n, H);
#pragma omp parallel for schedule(dynamic, 1)
        for (Index bl = 0; bl < (n + kBlock - 1) / kBlock; ++bl)
            errors.run([&] {
                Scratch& sc = scratch[size_t(omp_get_thread_num())];
                const Index r0 = bl * kBlock, R = std::min(kBlock, n - r0);
                Map beta(sc.beta.data(), R, H);
                for (Index r = 0; r < R; ++r) beta.row(r) = w.xw.row(lv.xw_row[size_t(r0 + r)]);
                if (t == 1) beta.rowwise() += sigma_zero_.row(0);
                else add_sigma(sigma_, reorder_, in, r0, R, reorder_ ? w.p : w.mu_prev, sc, beta);
                w.mu.middleRows(r0, R) = beta.array().tanh().matrix();
            });
        errors.rethrow();
        uint64_t nnz = 0;
        for (const auto& a : lv.in) nnz += a.sources.size();
        count_iteration(cfg_, sigma_, reorder_, t, double(U), double(prev), double(n), double(nnz), w.flops,
                        w.model_flops);
    }

    // ---- classifier over the rows
    const Index M = Index(top.size());
    Mat<float> out(M, cfg_.classes);
#pragma omp parallel for schedule(dynamic, 1)
    for (Index bl = 0; bl < (M + kBlock - 1) / kBlock; ++bl)
        errors.run([&] {
            const Index r0 = bl * kBlock, R = std::min(kBlock, M - r0);
            classify(cls_, w.mu, r0, R, scratch[size_t(omp_get_thread_num())], out, r0);
        });
    errors.rethrow();
    count_classifier(cfg_, cls_, double(M), w.flops, w.model_flops);
    sink(out0, out);
    return over;
}

}  // namespace deepmem
