// Inference fast path (engine.hpp): folded layers, v·W1 computed once and kept, σ_k(0) rows at
// t = 1, reordered aggregation, row blocks over OpenMP threads with per-thread scratch allocated
// once per run.
#include "engine/engine.hpp"
#include "engine/kernels.hpp"

#include <omp.h>

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

void InferenceNet::run(const GraphInput& g, Mat<float>& probs) {
    g.validate();
    const Index N = g.nodes(), D = cfg_.input_width, H = cfg_.embed_width, T = cfg_.iterations, K = cfg_.classes;
    const Index F = g.feature_bytes, copy = std::min(F, D);
    const Index w0 = sigma_[0][0].w.cols();
    constexpr Index kBlock = 512;
    const Index blocks = (N + kBlock - 1) / kBlock;
    Index max_w = std::max<Index>(H, K);
    for (const auto& s : sigma_) for (const auto& d : s) max_w = std::max<Index>(max_w, d.w.cols());
    for (const auto& d : cls_) max_w = std::max<Index>(max_w, d.w.cols());

    mu_.resize(N, H);
    mu_prev_.resize(N, H);
    if (T > 1) xw_.resize(N, H);
    probs.resize(N, K);
    if (reorder_ && T > 1) p_.resize(N, kNeighbourKinds * w0);
    std::vector<Scratch> scratch(static_cast<size_t>(omp_get_max_threads()));
    for (auto& s : scratch) {
        s.x.resize(size_t(kBlock * D));
        s.s.resize(size_t(kBlock * H));
        s.a.resize(size_t(kBlock * max_w));
        s.b.resize(size_t(kBlock * max_w));
        s.beta.resize(size_t(kBlock * H));
    }
    uint64_t nnz = 0;
    for (const auto& a : g.in) nnz += a.sources.size();
    flops_ = 0;
    model_flops_ = 0;

    for (Index t = 1; t <= T; ++t) {
        std::swap(mu_, mu_prev_);   // mu_prev = mu(t−1)
        if (t > 1 && reorder_) {
            // P = mu(t−1)·[W_ln|W_rn|W_lp|W_rp]: the four first layers as one GEMM
#pragma omp parallel for schedule(dynamic, 1)
            for (Index bl = 0; bl < blocks; ++bl) {
                const Index r0 = bl * kBlock, R = std::min(kBlock, N - r0);
                p_.middleRows(r0, R).noalias() = mu_prev_.middleRows(r0, R) * wcat_;
            }
            flops_ += 2.0 * N * H * wcat_.cols();
        }
#pragma omp parallel for schedule(dynamic, 1)
        for (Index bl = 0; bl < blocks; ++bl) {
            Scratch& sc = scratch[size_t(omp_get_thread_num())];
            const Index r0 = bl * kBlock, R = std::min(kBlock, N - r0);
            Map x(sc.x.data(), R, D), beta(sc.beta.data(), R, H);
            if (t == 1) {
                // v·W1 once for all t (W1 holds the 1/255 input scaling); σ_k(0) is one constant row
                for (Index r = 0; r < R; ++r) {
                    const uint8_t* f = g.features.data() + (r0 + r) * F;
                    for (Index c = 0; c < copy; ++c) x(r, c) = float(f[c]);
                    for (Index c = copy; c < D; ++c) x(r, c) = 0.f;
                }
                beta.noalias() = x * w1_;
                if (T > 1) xw_.middleRows(r0, R) = beta;
                beta.rowwise() += sigma_zero_.row(0);
            } else {
                beta = xw_.middleRows(r0, R);
                for (int k = 0; k < kNeighbourKinds; ++k) {
                    const auto& layers = sigma_[k];
                    float* cur = sc.a.data();
                    float* nxt = sc.b.data();
                    size_t l = 0;
                    if (reorder_) {
                        // z = A_k·P_k + b_k0, then the first layer's activation
                        Map z(cur, R, w0);
                        kernels::aggregate_rows<float>(g.in[k], r0, r0 + R, p_.data() + k * w0, p_.cols(), cur, w0, w0, false);
                        z.rowwise() += layers[0].b.row(0);
                        if (layers[0].activation == Activation::Relu) z = z.cwiseMax(0.f);
                        l = 1;
                    } else {
                        kernels::aggregate_rows<float>(g.in[k], r0, r0 + R, mu_prev_.data(), H, sc.s.data(), H, H, false);
                        dense_forward(layers[0], Map(sc.s.data(), R, H), Map(cur, R, layers[0].w.cols()));
                        l = 1;
                    }
                    Index w = layers[0].w.cols();
                    for (; l < layers.size(); ++l) {
                        dense_forward(layers[l], Map(cur, R, w), Map(nxt, R, layers[l].w.cols()));
                        w = layers[l].w.cols();
                        std::swap(cur, nxt);
                    }
                    beta += Map(cur, R, H);
                }
            }
            mu_.middleRows(r0, R) = beta.array().tanh().matrix();
        }
        if (t == 1) flops_ += 2.0 * N * D * H;
        model_flops_ += 2.0 * N * D * H + double(nnz) * H;
        for (int k = 0; k < kNeighbourKinds; ++k) {
            Index in = H;
            for (const LayerSpec& l : cfg_.sigma) {
                model_flops_ += 2.0 * N * in * l.width;
                in = l.width;
            }
        }
        if (t > 1) {
            flops_ += double(nnz) * (reorder_ ? w0 : H);
            for (int k = 0; k < kNeighbourKinds; ++k)
                for (size_t l = reorder_ ? 1 : 0; l < sigma_[k].size(); ++l)
                    flops_ += 2.0 * N * sigma_[k][l].w.rows() * sigma_[k][l].w.cols();
        }
    }

    // ---- classifier ψ and softmax over every node
#pragma omp parallel for schedule(dynamic, 1)
    for (Index bl = 0; bl < blocks; ++bl) {
        Scratch& sc = scratch[size_t(omp_get_thread_num())];
        const Index r0 = bl * kBlock, R = std::min(kBlock, N - r0);
        float* cur = sc.a.data();
        float* nxt = sc.b.data();
        Map(cur, R, H) = mu_.middleRows(r0, R);
        Index w = H;
        for (const Dense& d : cls_) {
            dense_forward(d, Map(cur, R, w), Map(nxt, R, d.w.cols()));
            w = d.w.cols();
            std::swap(cur, nxt);
        }
        Map logits(cur, R, K);
        for (Index r = 0; r < R; ++r) {
            const float mx = logits.row(r).maxCoeff();
            auto e = (logits.row(r).array() - mx).exp();
            probs.row(r0 + r) = (e / e.sum()).matrix();
        }
    }
    for (const Dense& d : cls_) flops_ += 2.0 * N * d.w.rows() * d.w.cols();
    Index in = H;
    for (const LayerSpec& l : cfg_.classifier_hidden) {
        model_flops_ += 2.0 * N * in * l.width;
        in = l.width;
    }
    model_flops_ += 2.0 * N * in * K;
}

}  // namespace deepmem
