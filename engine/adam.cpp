// Adam with optional global-norm clipping and decoupled weight decay (engine.hpp).
#include "engine/engine.hpp"

#include <cmath>

namespace deepmem {

float adam_step(const ModelConfig& cfg, const AdamConfig& a, Params<float>& p, Params<float>& grad,
                AdamState& st) {
    if (grad.tensors.size() != p.tensors.size())
        throw ModelError(ModelError::Kind::BadShape, 0, "gradient layout ≠ parameter layout");
    if (st.m.tensors.size() != p.tensors.size()) {
        st.m = Params<float>::zeros(cfg);
        st.v = Params<float>::zeros(cfg);
        st.step = 0;
    }
    // Global L2 norm, accumulated in double in tensor order (deterministic).
    double sq = 0;
    for (const auto& g : grad.tensors) sq += g.template cast<double>().squaredNorm();
    const float norm = float(std::sqrt(sq));
    if (a.clip_norm > 0.f && norm > a.clip_norm)
        for (auto& g : grad.tensors) g *= a.clip_norm / norm;

    ++st.step;
    const double bc1 = 1.0 - std::pow(double(a.beta1), double(st.step));
    const double bc2 = 1.0 - std::pow(double(a.beta2), double(st.step));
    const float step_size = float(a.lr / bc1);
    const float inv_sqrt_bc2 = float(1.0 / std::sqrt(bc2));
    for (size_t i = 0; i < p.tensors.size(); ++i) {
        auto w = p.tensors[i].array();
        auto g = grad.tensors[i].array();
        auto m = st.m.tensors[i].array();
        auto v = st.v.tensors[i].array();
        m = a.beta1 * m + (1.f - a.beta1) * g;
        v = a.beta2 * v + (1.f - a.beta2) * g.square();
        // AdamW: decay is applied to the weights directly, not through the moments.
        if (a.weight_decay > 0.f && parameter_is_weight(cfg, i)) w *= 1.f - a.lr * a.weight_decay;
        w -= step_size * m / (v.sqrt() * inv_sqrt_bc2 + a.eps);
    }
    return norm;
}

}  // namespace deepmem
