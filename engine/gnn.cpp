// Training path of the GNN (engine.hpp): each step's forward beside its backward, activations and
// gradients in explicit buffers. Shapes: N nodes, D input width, H embedding width, T iterations,
// L σ depth, M targets, K classes, J classifier layers. One code path for float and double.
#include "engine/engine.hpp"
#include "engine/kernels.hpp"
#include "graph/parallel_errors.hpp"

#include <cmath>

namespace deepmem {

namespace {

using Index = Eigen::Index;

void check_params_layout(const ModelConfig& cfg, const std::vector<std::pair<uint32_t, uint32_t>>& shapes,
                         size_t count, auto shape_of) {
    if (count != shapes.size())
        throw ModelError(ModelError::Kind::BadShape, 0,
                         "expected " + std::to_string(shapes.size()) + " tensors, got " + std::to_string(count));
    const auto names = parameter_names(cfg);
    for (size_t i = 0; i < count; ++i) {
        auto [r, c] = shape_of(i);
        if (r != shapes[i].first || c != shapes[i].second)
            throw ModelError(ModelError::Kind::BadShape, 0,
                             names[i] + " is " + std::to_string(r) + "×" + std::to_string(c) + ", expected " +
                                 std::to_string(shapes[i].first) + "×" + std::to_string(shapes[i].second));
    }
}

// ---- products over node rows ---------------------------------------------------------------
// Row blocks of a fixed size over OpenMP threads, Eigen single-threaded inside each block: every
// row's result is computed the same way for any thread count, and no thread spins waiting for
// another (Eigen's own parallel GEMM busy-waits, which collapses on a loaded machine).
constexpr Index kRowBlock = 1024;

// out = a·w   (a: N×k, w: k×n, out: N×n)
template <class A, class W, class Out>
void matmul_rows(const A& a, const W& w, Out& out) {
    const Index n = a.rows(), blocks = (n + kRowBlock - 1) / kRowBlock;
    ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1)
    for (Index b = 0; b < blocks; ++b)
        errors.run([&] {
            const Index r0 = b * kRowBlock, r = std::min(kRowBlock, n - r0);
            out.middleRows(r0, r).noalias() = a.middleRows(r0, r) * w;
        });
    errors.rethrow();
}

// dw += aᵀ·d   (a: N×k, d: N×n, dw: k×n): per-block partial products summed in block order, so
// the reduction is deterministic and independent of the thread count.
template <class S>
void matmul_tn_accumulate(const Mat<S>& a, const Mat<S>& d, Mat<S>& dw, std::vector<Mat<S>>& partial) {
    const Index n = a.rows(), blocks = (n + kRowBlock - 1) / kRowBlock;
    if (Index(partial.size()) < blocks) partial.resize(size_t(blocks));
    ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1)
    for (Index b = 0; b < blocks; ++b)
        errors.run([&] {
            const Index r0 = b * kRowBlock, r = std::min(kRowBlock, n - r0);
            partial[size_t(b)].resize(a.cols(), d.cols());
            partial[size_t(b)].noalias() = a.middleRows(r0, r).transpose() * d.middleRows(r0, r);
        });
    errors.rethrow();
    for (Index b = 0; b < blocks; ++b) dw += partial[size_t(b)];
}

// ---- linear layer -------------------------------------------------------------------------
// forward: out = a(in·W + b)
template <class S>
void linear_forward(const Mat<S>& in, const Mat<S>& w, const Mat<S>& b, Activation act, Mat<S>& out) {
    matmul_rows(in, w, out);
    out.rowwise() += b.row(0);
    if (act == Activation::Relu) out = out.cwiseMax(S(0));
}
// backward: in the forward pass this was out = a(z), z = in·W + b; so with dout given:
//   dz = dout ∘ a'(z)   (ReLU: 1 where out > 0, which equals z > 0)
//   dW += inᵀ·dz, db += Σ_rows dz, din = dz·Wᵀ (when wanted)
// dout is overwritten by dz.
template <class S>
void linear_backward(const Mat<S>& in, const Mat<S>& w, const Mat<S>& out, Activation act, Mat<S>& dout,
                     Mat<S>& dw, Mat<S>& db, Mat<S>* din, std::vector<Mat<S>>& partial) {
    if (act == Activation::Relu) dout = (out.array() > S(0)).select(dout, S(0));
    matmul_tn_accumulate(in, dout, dw, partial);
    db.row(0) += dout.colwise().sum();
    if (din) matmul_rows(dout, w.transpose(), *din);
}

}  // namespace

void GraphInput::validate() const {
    auto bad = [](const std::string& s) { throw ModelError(ModelError::Kind::BadBatch, 0, s); };
    const uint64_t n = in[0].offsets.empty() ? 0 : in[0].offsets.size() - 1;
    if (n > UINT32_MAX - 1) bad("too many nodes");
    for (int k = 0; k < kNeighbourKinds; ++k) {
        const CsrView& a = in[k];
        if (a.offsets.size() != n + 1) bad("edge kinds disagree on the node count");
        if (a.offsets[0] != 0) bad("CSR offsets[0] ≠ 0");
        for (uint64_t r = 0; r < n; ++r)
            if (a.offsets[r + 1] < a.offsets[r]) bad("CSR offsets decrease at row " + std::to_string(r));
        if (a.offsets[n] != a.sources.size()) bad("CSR offsets end ≠ number of sources");
        for (uint32_t s : a.sources)
            if (s >= n) bad("edge source " + std::to_string(s) + " ≥ node count " + std::to_string(n));
    }
    if (n > 0 && feature_bytes == 0) bad("feature width 0");
    if (features.size() != n * uint64_t(feature_bytes)) bad("features size ≠ nodes × feature bytes");
}

template <class S> Gnn<S>::Gnn(const ModelConfig& cfg) : cfg_(cfg) {
    cfg_.validate();
    sigma_widths_.push_back(cfg_.embed_width);
    for (const auto& l : cfg_.sigma) sigma_widths_.push_back(l.width);
    cls_widths_.push_back(cfg_.embed_width);
    for (const auto& l : cfg_.classifier_hidden) cls_widths_.push_back(l.width);
    cls_widths_.push_back(cfg_.classes);
}

template <class S> S Gnn<S>::forward(const Params<S>& p, const GraphBatch& b, const StepOptions& opt) {
    const Index N = b.nodes(), D = cfg_.input_width, H = cfg_.embed_width, T = cfg_.iterations;
    const Index L = Index(cfg_.sigma.size()), M = Index(b.targets.size()), K = cfg_.classes;
    const Index J = Index(cls_widths_.size()) - 1;
    check_params_layout(cfg_, parameter_shapes(cfg_), p.tensors.size(),
                        [&](size_t i) { return std::pair<uint32_t, uint32_t>(p.tensors[i].rows(), p.tensors[i].cols()); });
    b.input().validate();
    if (M == 0) throw ModelError(ModelError::Kind::BadBatch, 0, "batch has no targets");
    if (b.labels.size() != b.targets.size()) throw ModelError(ModelError::Kind::BadBatch, 0, "labels ≠ targets");
    for (Index i = 0; i < M; ++i) {
        if (b.targets[i] >= N) throw ModelError(ModelError::Kind::BadBatch, 0, "target row ≥ batch nodes");
        if (b.labels[i] >= K) throw ModelError(ModelError::Kind::BadBatch, 0, "label ≥ classes");
    }
    if (!opt.class_weights.empty() && Index(opt.class_weights.size()) != K)
        throw ModelError(ModelError::Kind::BadBatch, 0, "class weights ≠ classes");
    if (!opt.dropout_rows.empty() && Index(opt.dropout_rows.size()) != M)
        throw ModelError(ModelError::Kind::BadBatch, 0, "dropout rows ≠ targets");
    for (int k = 0; k < kNeighbourKinds; ++k) deepmem::transpose(b.in[k].view(), out_[k]);
    dropout_ = opt.dropout && cfg_.keep_prob < 1.f;
    flops_ = 0;

    // ---- input: x = bytes / 255, truncated or zero-padded to D; xw = x·W1
    x_.resize(N, D);
    const Index F = b.feature_bytes, copy = std::min(F, D);
    ParallelErrors errors;
#pragma omp parallel for schedule(static)
    for (Index n = 0; n < N; ++n)
        errors.run([&] {
            for (Index c = 0; c < copy; ++c) x_(n, c) = S(b.features[size_t(n * F + c)]) / S(255);
            for (Index c = copy; c < D; ++c) x_(n, c) = S(0);
        });
    errors.rethrow();
    xw_.resize(N, H);
    matmul_rows(x_, p.w1(), xw_);
    flops_ += 2.0 * N * D * H;

    // ---- embedding: mu(t) = tanh(xw + Σ_k σ_k(A_k·mu(t−1)))
    mu_.resize(T + 1);
    mu_[0].setZero(N, H);
    sig_.resize(size_t(T * kNeighbourKinds * (L + 1)));
    for (Index t = 1; t <= T; ++t) {
        Mat<S>& m = mu_[t];
        m = xw_;
        for (int k = 0; k < kNeighbourKinds; ++k) {
            Mat<S>* s = &sig_[size_t(((t - 1) * kNeighbourKinds + k) * (L + 1))];
            s[0].resize(N, H);
            kernels::aggregate<S>(b.in[k].view(), mu_[t - 1].data(), H, s[0].data(), H, H, false);
            flops_ += double(b.in[k].sources.size()) * H;
            for (Index l = 0; l < L; ++l) {
                s[l + 1].resize(N, sigma_widths_[l + 1]);
                linear_forward<S>(s[l], p.sigma_w(k, int(l)), p.sigma_b(k, int(l)), cfg_.sigma[l].activation, s[l + 1]);
                flops_ += 2.0 * N * sigma_widths_[l] * sigma_widths_[l + 1];
            }
            m += s[L];
        }
        m = m.array().tanh().matrix();
    }

    // ---- classifier: layer j input = drop(out_{j−1}) (out_{−1} = mu(T) of the targets)
    cls_in_.resize(J);
    cls_out_.resize(J);
    cls_mask_.resize(dropout_ ? J : 0);
    const double keep = cfg_.keep_prob;
    for (Index j = 0; j < J; ++j) {
        const Index in_w = cls_widths_[j];
        Mat<S>& in = cls_in_[j];
        in.resize(M, in_w);
        if (j == 0)
            for (Index i = 0; i < M; ++i) in.row(i) = mu_[T].row(b.targets[i]);
        else
            in = cls_out_[j - 1];
        if (dropout_) {
            Mat<S>& mask = cls_mask_[j];
            mask.resize(M, in_w);
            for (Index i = 0; i < M; ++i) {
                const uint64_t row = opt.dropout_rows.empty() ? uint64_t(i) : opt.dropout_rows[size_t(i)];
                for (Index c = 0; c < in_w; ++c)
                    mask(i, c) = kernels::keep_unit(opt.dropout_seed, uint64_t(j), row, uint64_t(c), keep)
                                     ? S(1) / S(cfg_.keep_prob) : S(0);
            }
            in.array() *= mask.array();
        }
        const Activation act = j + 1 < J ? cfg_.classifier_hidden[j].activation : Activation::None;
        cls_out_[j].resize(M, cls_widths_[j + 1]);
        linear_forward<S>(in, p.cls_w(int(j)), p.cls_b(int(j)), act, cls_out_[j]);
        flops_ += 2.0 * M * in_w * cls_widths_[j + 1];
    }

    // ---- softmax cross-entropy: loss = Σ_i w_i·(−log p_i,y_i), w_i = cw[y_i] / Σ cw[y]
    const Mat<S>& logits = cls_out_[J - 1];
    probs_.resize(M, K);
    target_w_.assign(size_t(M), S(0));
    S wsum = 0;
    for (Index i = 0; i < M; ++i) {
        S w = opt.class_weights.empty() ? S(1) : S(opt.class_weights[b.labels[i]]);
        if (!(w >= S(0)) || !std::isfinite(double(w)))
            throw ModelError(ModelError::Kind::BadBatch, 0, "class weight negative or not finite");
        target_w_[i] = w;
        wsum += w;
    }
    if (opt.weight_total != 0) {
        if (!(opt.weight_total > 0) || !std::isfinite(opt.weight_total))
            throw ModelError(ModelError::Kind::BadBatch, 0, "weight total negative or not finite");
        wsum = S(opt.weight_total);
    }
    if (!(wsum > S(0))) throw ModelError(ModelError::Kind::BadBatch, 0, "class weights sum to 0 over the targets");
    S loss = 0;
    for (Index i = 0; i < M; ++i) {
        const S mx = logits.row(i).maxCoeff();
        probs_.row(i) = (logits.row(i).array() - mx).exp().matrix();
        const S z = probs_.row(i).sum();
        probs_.row(i) /= z;
        target_w_[i] /= wsum;
        // −log p_y = log z − (logit_y − mx), stable for tiny p_y
        loss += target_w_[i] * (std::log(z) - (logits(i, b.labels[i]) - mx));
    }
    return loss;
}

template <class S> void Gnn<S>::backward(const Params<S>& p, const GraphBatch& b, Params<S>& grad) {
    const Index N = b.nodes(), H = cfg_.embed_width, T = cfg_.iterations;
    const Index L = Index(cfg_.sigma.size()), M = Index(b.targets.size());
    const Index J = Index(cls_widths_.size()) - 1;
    if (Index(mu_.size()) != T + 1 || mu_[T].rows() != N || probs_.rows() != M)
        throw ModelError(ModelError::Kind::BadBatch, 0, "backward() without a matching forward()");
    if (grad.tensors.size() != p.tensors.size()) grad = Params<S>::zeros(cfg_);
    grad.set_zero();

    // ---- loss: in the forward pass this was loss = Σ_i w_i·(log Σ_c e^{z_ic} − z_i,y_i);
    // so d loss / d z_ic = w_i·(p_ic − [c = y_i]).
    Mat<S>& dz = dc_a_;
    dz = probs_;
    for (Index i = 0; i < M; ++i) {
        dz(i, b.labels[i]) -= S(1);
        dz.row(i) *= target_w_[i];
    }

    // ---- classifier, j = J−1..0: forward was out_j = a_j(in_j·C_j + c_j), in_j = out_{j−1} ∘ mask_j
    for (Index j = J - 1; j >= 0; --j) {
        const Activation act = j + 1 < J ? cfg_.classifier_hidden[j].activation : Activation::None;
        Mat<S>& din = dc_b_;
        din.resize(M, cls_widths_[j]);
        linear_backward<S>(cls_in_[j], p.cls_w(int(j)), cls_out_[j], act, dz, grad.cls_w(int(j)), grad.cls_b(int(j)), &din,
                           partial_);
        if (dropout_) din.array() *= cls_mask_[j].array();   // in_j = out_{j−1} ∘ mask_j
        std::swap(dc_a_, dc_b_);                              // dz now holds d out_{j−1}
    }
    // forward was in_0 = rows targets of mu(T); so d mu(T) is d in_0 scattered to those rows.
    dmu_.setZero(N, H);
    for (Index i = 0; i < M; ++i) dmu_.row(b.targets[i]) += dc_a_.row(i);

    // ---- embedding, t = T..1: forward was mu(t) = tanh(pre), pre = xw + Σ_k σ_k(A_k·mu(t−1))
    gsum_.setZero(N, H);
    for (Index t = T; t >= 1; --t) {
        // d pre = d mu(t) ∘ (1 − mu(t)²)
        g_ = (dmu_.array() * (S(1) - mu_[t].array().square())).matrix();
        gsum_ += g_;
        if (t > 1) dmu_prev_.setZero(N, H);
        for (int k = 0; k < kNeighbourKinds; ++k) {
            const Mat<S>* s = &sig_[size_t(((t - 1) * kNeighbourKinds + k) * (L + 1))];
            da_ = g_;   // d σ_k output: pre = … + σ_k(…) so it is d pre
            for (Index l = L - 1; l >= 0; --l) {
                // mu(0) = 0 is constant: at t = 1 nothing below the first layer's weights needs a gradient
                const bool want_din = l > 0 || t > 1;
                db_.resize(N, sigma_widths_[l]);
                linear_backward<S>(s[l], p.sigma_w(k, int(l)), s[l + 1], cfg_.sigma[l].activation, da_,
                                   grad.sigma_w(k, int(l)), grad.sigma_b(k, int(l)), want_din ? &db_ : nullptr, partial_);
                if (want_din) std::swap(da_, db_);
            }
            // forward was s0 = A_k·mu(t−1), i.e. s0[n] = Σ_{m∈in_k[n]} mu[m];
            // so d mu(t−1)[m] += Σ_{n : m∈in_k[n]} d s0[n], a gather over the transposed CSR.
            if (t > 1) kernels::aggregate<S>(out_[k].view(), da_.data(), H, dmu_prev_.data(), H, H, true);
        }
        if (t > 1) std::swap(dmu_, dmu_prev_);
    }
    // forward was xw = x·W1 (used at every t); so dW1 = xᵀ·Σ_t d pre(t).
    matmul_tn_accumulate(x_, gsum_, grad.w1(), partial_);
}

template class Gnn<float>;
template class Gnn<double>;

}  // namespace deepmem
