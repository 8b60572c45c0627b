// Finite-difference check of every parameter tensor's gradient, in double precision, on random
// graphs with all four edge kinds; with and without (fixed) dropout masks; the default σ (linear
// layers, one ReLU after the last) and σ with ReLU between layers.
#include "engine/engine.hpp"
#include "random_graph.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

using namespace deepmem;

namespace {

// samples = 0: every entry of every tensor; else that many random entries per tensor.
void gradcheck(const ModelConfig& cfg, bool dropout, uint64_t seed, int samples = 0, double scale = 0.5) {
    const auto g = test::random_graph(14, 7, seed);
    // 6 of 14 nodes are targets: gradients must flow through non-target nodes too
    const GraphBatch b = test::whole_graph_batch(g, {0, 3, 5, 8, 11, 13}, {0, 1, 2, 1, 0, 2});
    Params<double> p = test::random_params<double>(cfg, seed + 1, scale);
    const std::vector<float> cw{1.0f, 2.0f, 0.5f};
    StepOptions opt{dropout, seed + 2, cw};
    Gnn<double> net(cfg);
    net.forward(p, b, opt);
    Params<double> grad;
    net.backward(p, b, grad);

    const auto names = parameter_names(cfg);
    const double eps = 1e-6;
    std::mt19937_64 rng(seed + 3);
    for (size_t i = 0; i < p.tensors.size(); ++i) {
        const Eigen::Index size = p.tensors[i].size();
        std::vector<Eigen::Index> entries;
        for (Eigen::Index e = 0; e < size; ++e) entries.push_back(e);
        if (samples > 0 && size > samples) {
            std::shuffle(entries.begin(), entries.end(), rng);
            entries.resize(size_t(samples));
        }
        Mat<double> numeric(1, Eigen::Index(entries.size())), analytic(1, Eigen::Index(entries.size()));
        for (size_t s = 0; s < entries.size(); ++s) {
            const Eigen::Index e = entries[s];
            double& w = p.tensors[i].data()[e];
            const double saved = w;
            w = saved + eps;
            const double lp = net.forward(p, b, opt);
            w = saved - eps;
            const double lm = net.forward(p, b, opt);
            w = saved;
            numeric(Eigen::Index(s)) = (lp - lm) / (2 * eps);
            analytic(Eigen::Index(s)) = grad.tensors[i].data()[e];
        }
        const double rel = (analytic - numeric).norm() / std::max(analytic.norm() + numeric.norm(), 1e-12);
        INFO(names[i] << " dropout=" << dropout << " |analytic|=" << analytic.norm() << " rel=" << rel);
        // every tensor must actually receive a gradient, except σ first layers at T = 1 (their input
        // is the sum over mu(0) = 0)
        const bool first_sigma = names[i].rfind("sigma_", 0) == 0 && names[i].ends_with(".0.W");
        if (!(cfg.iterations == 1 && first_sigma)) CHECK(grad.tensors[i].norm() > 1e-8);
        CHECK(rel < 1e-4);
        for (Eigen::Index e = 0; e < numeric.size(); ++e) {
            const double a = analytic.data()[e], n = numeric.data()[e];
            CHECK(std::abs(a - n) <= 1e-4 * std::max(std::abs(a) + std::abs(n), 1e-3));
        }
    }
}

ModelConfig small_config() {
    ModelConfig c;
    c.input_width = 6;   // < feature bytes (7): truncation path
    c.embed_width = 4;
    c.iterations = 3;
    c.sigma = {{5, Activation::Relu}, {3, Activation::None}, {4, Activation::Relu}};   // ReLU between layers
    c.classifier_hidden = {{5, Activation::Relu}, {4, Activation::None}};
    c.classes = 3;
    c.keep_prob = 0.7f;
    return c;
}

}  // namespace

TEST_CASE("gradients of every tensor match finite differences (no dropout)") {
    gradcheck(small_config(), false, 11);
}

TEST_CASE("gradients of every tensor match finite differences (fixed dropout masks)") {
    gradcheck(small_config(), true, 23);
}

TEST_CASE("gradient check of the default σ (three linear layers, one ReLU after the last)") {
    const ModelConfig d;
    REQUIRE(d.sigma.size() == 3);
    CHECK(d.sigma[0].activation == Activation::None);
    CHECK(d.sigma[1].activation == Activation::None);
    CHECK(d.sigma[2].activation == Activation::Relu);
    // the default's activation pattern at small widths: every entry (seeds where no 4-wide σ is
    // dead, i.e. ≤ 0 everywhere on the 14-node graph, which would leave its gradient 0)
    ModelConfig c = small_config();
    c.sigma = d.sigma;
    for (auto& l : c.sigma) l.width = c.embed_width;
    c.sigma[0].width = 5;
    gradcheck(c, false, 131);
    gradcheck(c, true, 137);
    // the default configuration itself (64 wide), 12 random entries per tensor
    ModelConfig full;
    full.classes = 3;
    gradcheck(full, true, 41, 12, 0.1);   // small weights: 64-wide sums stay off tanh saturation
}

TEST_CASE("gradient check with ReLU after every σ layer") {
    ModelConfig c = small_config();
    for (auto& l : c.sigma) l.activation = Activation::Relu;   // seeds with no dead σ, as above
    gradcheck(c, false, 943);
    gradcheck(c, true, 947);
}

TEST_CASE("gradient check with zero-padded input, T = 1 and T = 4") {
    ModelConfig c = small_config();
    c.input_width = 9;   // > feature bytes: zero padding
    c.iterations = 4;
    gradcheck(c, false, 5);
    c.iterations = 1;
    c.sigma = {{4, Activation::Relu}};
    gradcheck(c, true, 6);
}

TEST_CASE("dropout masks are a pure function of the seed") {
    const ModelConfig c = small_config();
    const auto g = test::random_graph(14, 7, 3);
    const GraphBatch b = test::whole_graph_batch(g, {1, 2, 3}, {0, 1, 2});
    const auto p = test::random_params<double>(c, 4);
    Gnn<double> net(c);
    const double l1 = net.forward(p, b, {true, 99, {}});
    const double l2 = net.forward(p, b, {true, 99, {}});
    const double l3 = net.forward(p, b, {true, 100, {}});
    const double l0 = net.forward(p, b, {false, 99, {}});
    CHECK(l1 == l2);
    CHECK(l1 != l3);
    CHECK(l1 != l0);
}
