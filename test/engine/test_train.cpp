// Training end to end on tiny graphs: overfitting, determinism, Adam's options.
#include "engine/engine.hpp"
#include "random_graph.hpp"

#include <doctest/doctest.h>

using namespace deepmem;

namespace {

double accuracy(const Mat<float>& probs, const std::vector<uint32_t>& labels) {
    int right = 0;
    for (Eigen::Index i = 0; i < probs.rows(); ++i) {
        Eigen::Index arg;
        probs.row(i).maxCoeff(&arg);
        right += uint32_t(arg) == labels[size_t(i)];
    }
    return double(right) / double(probs.rows());
}

struct Run {
    Params<float> p;
    double acc = 0;
    int steps = 0;
};

// Labels depend on the neighbourhood (a node's class is its ln source's first byte mod 3), so the
// model must use the edges, not only the node's own bytes.
Run train(uint64_t seed, int max_steps) {
    ModelConfig c;
    c.input_width = 8;
    c.embed_width = 16;
    c.sigma = {{16, Activation::Relu}, {16, Activation::Relu}};
    c.classifier_hidden = {{16, Activation::Relu}};
    c.classes = 3;
    c.keep_prob = 0.9f;
    const auto g = test::random_graph(60, 8, 42);
    std::vector<uint32_t> targets, labels;
    for (uint32_t n = 0; n < 60; ++n) {
        auto src = g.in[0].view().row(n);
        if (src.empty()) continue;
        targets.push_back(n);
        labels.push_back(g.features[size_t(src[0]) * 8] % 3);
    }
    const GraphBatch b = extract_batch(g.input(), targets, labels, c.iterations);
    Run r;
    r.p = Params<float>::init(c, seed);
    AdamConfig adam;
    adam.lr = 3e-3f;
    adam.clip_norm = 5.f;
    adam.weight_decay = 1e-4f;
    AdamState st;
    Gnn<float> net(c);
    Params<float> grad;
    for (r.steps = 1; r.steps <= max_steps; ++r.steps) {
        net.forward(r.p, b, {true, seed * 1000 + uint64_t(r.steps), {}});
        net.backward(r.p, b, grad);
        adam_step(c, adam, r.p, grad, st);
        if (r.steps % 25 == 0) {
            net.forward(r.p, b, {});
            r.acc = accuracy(net.probabilities(), b.labels);
            if (r.acc == 1.0) break;
        }
    }
    return r;
}

}  // namespace

TEST_CASE("a tiny graph is overfit to 100% training accuracy") {
    const Run r = train(1, 3000);
    INFO("steps " << r.steps);
    CHECK(r.acc == 1.0);
}

TEST_CASE("training is deterministic for a seed and thread count") {
    const Run a = train(5, 100), b = train(5, 100), c = train(6, 100);
    bool same = true, differs = false;
    for (size_t i = 0; i < a.p.tensors.size(); ++i) {
        same = same && a.p.tensors[i] == b.p.tensors[i];
        differs = differs || a.p.tensors[i] != c.p.tensors[i];
    }
    CHECK(same);
    CHECK(differs);
}

TEST_CASE("Adam: first step moves every weight by lr against the gradient sign; clipping scales") {
    ModelConfig c;
    c.input_width = 4;
    c.embed_width = 4;
    c.sigma = {{4, Activation::Relu}};
    c.classifier_hidden = {};
    c.classes = 2;
    Params<float> p = test::random_params<float>(c, 1), g = test::random_params<float>(c, 2);
    const Params<float> p0 = p;
    AdamConfig a;
    a.lr = 0.01f;
    a.clip_norm = 1e-3f;
    AdamState st;
    const float norm = adam_step(c, a, p, g, st);
    CHECK(norm > 1e-3f);
    double sq = 0;
    for (const auto& t : g.tensors) sq += t.squaredNorm();
    CHECK(std::sqrt(sq) == doctest::Approx(1e-3).epsilon(1e-4));
    CHECK(st.step == 1);
    for (size_t i = 0; i < p.tensors.size(); ++i)
        for (Eigen::Index e = 0; e < p.tensors[i].size(); ++e) {
            const float gi = g.tensors[i].data()[e];
            const float d = p.tensors[i].data()[e] - p0.tensors[i].data()[e];
            // bias-corrected first step is lr·g/(|g| + eps') ≈ lr·sign(g)
            if (std::abs(gi) > 1e-6f) CHECK(d == doctest::Approx(-0.01f * (gi > 0 ? 1 : -1)).epsilon(0.02));
        }
}

namespace {

// The paper's reading of the parameter list, independent of parameter_is_weight(): matrices
// ("W1", "….W") are weights, "….b" are biases.
bool named_weight(const std::string& name) { return name == "W1" || name.ends_with(".W"); }

}  // namespace

TEST_CASE("Adam with weight decay equals a double-precision AdamW reference over several steps") {
    ModelConfig c;
    c.input_width = 5;
    c.embed_width = 4;
    c.sigma = {{4, Activation::Relu}};
    c.classifier_hidden = {{3, Activation::Relu}};
    c.classes = 2;
    AdamConfig a;
    a.lr = 0.01f;
    a.weight_decay = 0.5f;   // large, so a decay mistake moves a weight by ≥ 0.5 % per step
    Params<float> p = test::random_params<float>(c, 1);
    const auto names = parameter_names(c);
    // Reference state in double: w, m, v per tensor element.
    struct Ref { std::vector<double> w, m, v; bool weight; };
    std::vector<Ref> ref;
    for (size_t i = 0; i < p.tensors.size(); ++i) {
        Ref r{{}, {}, {}, named_weight(names[i])};
        for (Eigen::Index e = 0; e < p.tensors[i].size(); ++e) r.w.push_back(p.tensors[i].data()[e]);
        r.m.assign(r.w.size(), 0.0);
        r.v.assign(r.w.size(), 0.0);
        ref.push_back(std::move(r));
    }
    AdamState st;
    const double b1 = a.beta1, b2 = a.beta2, lr = a.lr, wd = a.weight_decay, eps = a.eps;
    for (int t = 1; t <= 6; ++t) {
        Params<float> g = test::random_params<float>(c, 100 + uint64_t(t));
        for (size_t i = 0; i < ref.size(); ++i)
            for (size_t e = 0; e < ref[i].w.size(); ++e) {
                const double gi = g.tensors[i].data()[e];
                Ref& r = ref[i];
                r.m[e] = b1 * r.m[e] + (1 - b1) * gi;
                r.v[e] = b2 * r.v[e] + (1 - b2) * gi * gi;
                if (r.weight) r.w[e] *= 1 - lr * wd;   // decoupled decay (Loshchilov & Hutter), weights only
                const double mhat = r.m[e] / (1 - std::pow(b1, t)), vhat = r.v[e] / (1 - std::pow(b2, t));
                r.w[e] -= lr * mhat / (std::sqrt(vhat) + eps);
            }
        adam_step(c, a, p, g, st);
        CHECK(st.step == uint64_t(t));
        for (size_t i = 0; i < ref.size(); ++i)
            for (size_t e = 0; e < ref[i].w.size(); ++e) {
                const double got = p.tensors[i].data()[e], want = ref[i].w[e];
                INFO("step " << t << ", " << names[i] << "[" << e << "]");
                CHECK(std::abs(got - want) <= 2e-6 + 1e-5 * std::abs(want));
            }
    }
}

TEST_CASE("Adam's weight decay shrinks exactly the weights, by lr·decay, and never the biases") {
    ModelConfig c;
    c.input_width = 3;
    c.embed_width = 4;
    c.sigma = {{4, Activation::None}, {4, Activation::Relu}};
    c.classifier_hidden = {{2, Activation::Relu}};
    c.classes = 3;
    AdamConfig a;
    a.lr = 0.1f;
    a.weight_decay = 0.25f;
    Params<float> p = test::random_params<float>(c, 5);
    const Params<float> p0 = p;
    Params<float> zero = Params<float>::zeros(c);   // zero gradient: only the decay moves anything
    AdamState st;
    adam_step(c, a, p, zero, st);
    const auto names = parameter_names(c);
    int weights = 0, biases = 0;
    for (size_t i = 0; i < p.tensors.size(); ++i) {
        INFO(names[i]);
        CHECK(parameter_is_weight(c, i) == named_weight(names[i]));
        CHECK(p0.tensors[i].cwiseAbs().maxCoeff() > 0.f);   // the check below sees a change
        if (named_weight(names[i])) {
            ++weights;
            // toward zero: w · (1 − 0.1·0.25), not away from it
            CHECK((p.tensors[i] - p0.tensors[i] * 0.975f).cwiseAbs().maxCoeff() <= 1e-6f);
        } else {
            ++biases;
            CHECK(p.tensors[i] == p0.tensors[i]);
        }
    }
    CHECK(weights == 1 + 4 * 2 + 2);   // W1, 4 kinds × 2 σ layers, 2 classifier layers
    CHECK(biases == 4 * 2 + 2);
}
