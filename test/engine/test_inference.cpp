// The inference fast path (float) equals the training-path forward (no dropout, double) to 1e-5.
#include "engine/engine.hpp"
#include "random_graph.hpp"

#include <doctest/doctest.h>

using namespace deepmem;

namespace {

void compare(const ModelConfig& c, uint64_t seed, size_t expect_sigma_layers, size_t expect_cls_layers, bool expect_reorder) {
    const auto g = test::random_graph(700, 64, seed, 2.0);
    const auto p = test::random_params<float>(c, seed + 1, 0.3);
    InferenceNet fast(c, p);
    CHECK(fast.folded_sigma_layers() == expect_sigma_layers);
    CHECK(fast.folded_classifier_layers() == expect_cls_layers);
    CHECK(fast.reordered() == expect_reorder);
    Mat<float> probs;
    fast.run(g.input(), probs);

    std::vector<uint32_t> all(700), labels(700, 0);
    for (uint32_t i = 0; i < 700; ++i) all[i] = i;
    // reference: the training path in double (the float one has rounding errors of its own)
    Gnn<double> slow(c);
    slow.forward(p.cast<double>(), test::whole_graph_batch(g, all, labels), {});
    const double dp = (probs.cast<double>() - slow.probabilities()).cwiseAbs().maxCoeff();
    const double dm = (fast.embedding().cast<double>() - slow.embedding(c.iterations)).cwiseAbs().maxCoeff();
    INFO("max |Δprob| " << dp << ", max |Δmu| " << dm);
    CHECK(dp < 1e-5);
    CHECK(dm < 1e-5);
    CHECK(fast.last_flops() > 0);
}

}  // namespace

TEST_CASE("default architecture: the three linear σ layers fold into one 64×64 matrix") {
    ModelConfig c;
    c.classes = 5;
    compare(c, 7, 1, 2, false);
    // executed flops: v·W1 once, one 64×64 σ GEMM per kind at t = 2..T, no σ work at t = 1
    const auto g = test::random_graph(300, 64, 9);
    InferenceNet fast(c, Params<float>::init(c, 2));
    Mat<float> probs;
    fast.run(g.input(), probs);
    double nnz = 0;
    for (const auto& a : g.in) nnz += double(a.sources.size());
    const double N = 300, H = 64, T = c.iterations, cls = 2 * N * H * 64 + 2 * N * 64 * 5;
    CHECK(fast.last_flops() == doctest::Approx(2 * N * 64 * H + (T - 1) * (nnz * H + 4 * 2 * N * H * H) + cls));
    CHECK(fast.last_model_flops() == doctest::Approx(T * (2 * N * 64 * H + nnz * H + 4 * 3 * 2 * N * H * H) + cls));
}

TEST_CASE("ReLU after every σ layer: nothing to fold") {
    ModelConfig c;
    c.sigma = {{64, Activation::Relu}, {64, Activation::Relu}, {64, Activation::Relu}};
    c.classes = 5;
    compare(c, 1, 3, 2, false);
    c.iterations = 1;   // T = 1: only the σ_k(0) rows
    compare(c, 8, 3, 2, false);
}

TEST_CASE("linear layers without an activation between them are folded") {
    ModelConfig c;
    c.embed_width = 32;
    c.input_width = 48;
    c.sigma = {{32, Activation::None}, {32, Activation::None}, {32, Activation::Relu}};
    c.classifier_hidden = {{24, Activation::None}, {16, Activation::Relu}};
    c.classes = 4;
    compare(c, 2, 1, 2, false);
}

TEST_CASE("narrow first σ layer: aggregation moved after the product") {
    ModelConfig c;
    c.embed_width = 32;
    c.sigma = {{8, Activation::Relu}, {32, Activation::Relu}};
    c.classifier_hidden = {};
    c.classes = 3;
    compare(c, 3, 2, 1, true);
    c.sigma = {{32, Activation::None}, {8, Activation::None}, {32, Activation::Relu}};   // folds to 32×32 first
    compare(c, 4, 1, 1, false);
    c.sigma = {{16, Activation::None}, {32, Activation::None}};   // folds into one linear layer
    c.iterations = 4;
    compare(c, 5, 1, 1, false);
    c.sigma = {{8, Activation::Relu}, {16, Activation::None}, {32, Activation::Relu}};   // reorder, then a fold
    c.iterations = 2;
    compare(c, 6, 2, 1, true);
}

TEST_CASE("malformed graphs are typed errors") {
    ModelConfig c;
    auto g = test::random_graph(50, 64, 1);
    InferenceNet net(c, Params<float>::init(c, 1));
    Mat<float> probs;
    g.in[3].sources.push_back(99);
    g.in[3].offsets.back() += 1;
    CHECK_THROWS_AS(net.run(g.input(), probs), ModelError);
    auto h = test::random_graph(50, 64, 1);
    h.features.pop_back();
    CHECK_THROWS_AS(net.run(h.input(), probs), ModelError);
    Params<float> wrong = Params<float>::init(c, 1);
    wrong.tensors.pop_back();
    CHECK_THROWS_AS(InferenceNet(c, wrong), ModelError);
}
