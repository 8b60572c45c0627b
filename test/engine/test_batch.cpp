// Mini-batch extraction: a batch's targets get exactly the full graph's outputs and gradients.
#include "engine/engine.hpp"
#include "random_graph.hpp"

#include <doctest/doctest.h>

using namespace deepmem;

namespace {
ModelConfig cfg3() {
    ModelConfig c;
    c.input_width = 8;
    c.embed_width = 6;
    c.iterations = 3;
    c.sigma = {{6, Activation::Relu}, {6, Activation::Relu}};
    c.classifier_hidden = {{5, Activation::Relu}};
    c.classes = 3;
    return c;
}
}  // namespace

TEST_CASE("batch outputs and gradients equal the whole graph's") {
    const auto g = test::random_graph(400, 8, 7, 1.2);
    const std::vector<uint32_t> targets{17, 3, 250, 399, 0}, labels{1, 0, 2, 1, 0};
    for (uint32_t T : {1u, 2u, 3u, 4u}) {
        ModelConfig c = cfg3();
        c.iterations = T;
        const auto p = test::random_params<double>(c, 3);
        Gnn<double> whole(c), part(c);
        const GraphBatch full = test::whole_graph_batch(g, targets, labels);
        const GraphBatch b = extract_batch(g.input(), targets, labels, T);
        CHECK(b.nodes() < full.nodes());
        CHECK(b.targets == std::vector<uint32_t>{0, 1, 2, 3, 4});
        for (size_t i = 0; i < targets.size(); ++i) CHECK(b.node_ids[i] == targets[i]);
        const double lw = whole.forward(p, full, {});
        const double lb = part.forward(p, b, {});
        CHECK(lb == doctest::Approx(lw).epsilon(1e-12));
        CHECK((whole.probabilities() - part.probabilities()).cwiseAbs().maxCoeff() < 1e-12);
        Params<double> gw, gb;
        whole.backward(p, full, gw);
        part.backward(p, b, gb);
        for (size_t i = 0; i < gw.tensors.size(); ++i)
            CHECK((gw.tensors[i] - gb.tensors[i]).cwiseAbs().maxCoeff() < 1e-12);
        if (T == 1) CHECK(b.nodes() == targets.size());
    }
}

TEST_CASE("shares of a batch (data-parallel ranks) add up to the whole batch's loss and gradients") {
    const auto g = test::random_graph(400, 8, 9, 1.2);
    const std::vector<uint32_t> targets{17, 3, 250, 399, 0, 42, 7}, labels{1, 0, 2, 1, 0, 0, 2};
    const std::vector<float> class_weights{0.3f, 1.f, 2.f};
    ModelConfig c = cfg3();
    c.keep_prob = 0.6f;
    const auto p = test::random_params<double>(c, 5);
    const GraphBatch whole = extract_batch(g.input(), targets, labels, c.iterations);
    Gnn<double> net(c);
    StepOptions opt;
    opt.dropout = true;
    opt.dropout_seed = 77;
    opt.class_weights = class_weights;
    const double loss = net.forward(p, whole, opt);
    Params<double> grad, sum = Params<double>::zeros(c), share_grad;
    net.backward(p, whole, grad);
    double total = 0;   // Σ w over the whole batch, as Gnn<double> sums it
    for (uint32_t y : labels) total += double(class_weights[y]);
    double share_loss = 0;
    for (uint32_t rank = 0; rank < 3; ++rank) {   // targets i ≡ rank (mod 3), cut from the whole batch
        std::vector<uint32_t> rows, t, l;
        for (uint32_t i = rank; i < targets.size(); i += 3) rows.push_back(i), t.push_back(whole.targets[i]), l.push_back(labels[i]);
        const GraphBatch share = extract_batch(whole.input(), t, l, c.iterations);
        StepOptions o = opt;
        o.dropout_rows = rows;
        o.weight_total = total;
        share_loss += net.forward(p, share, o);
        net.backward(p, share, share_grad);
        for (size_t i = 0; i < sum.tensors.size(); ++i) sum.tensors[i] += share_grad.tensors[i];
    }
    CHECK(share_loss == doctest::Approx(loss).epsilon(1e-12));
    for (size_t i = 0; i < grad.tensors.size(); ++i) CHECK((grad.tensors[i] - sum.tensors[i]).cwiseAbs().maxCoeff() < 1e-12);
    // Masks drawn for the share's own rows instead would differ: the rows matter.
    const GraphBatch first = extract_batch(whole.input(), std::vector<uint32_t>{whole.targets[3]}, std::vector<uint32_t>{labels[3]}, c.iterations);
    StepOptions at3 = opt, at0 = opt;
    const std::vector<uint32_t> row3{3};
    at3.dropout_rows = row3;
    CHECK(net.forward(p, first, at3) != net.forward(p, first, at0));
    StepOptions bad = at3;
    const std::vector<uint32_t> two{0, 1};
    bad.dropout_rows = two;
    CHECK_THROWS_AS(net.forward(p, first, bad), ModelError);
    bad = at3;
    bad.weight_total = -1;
    CHECK_THROWS_AS(net.forward(p, first, bad), ModelError);
}

TEST_CASE("batch keeps hop ≤ T−1 nodes and in-edges of hop ≤ T−2 nodes only") {
    // chain 0→1→2→3→4→5 over ln; target 5, T = 3: nodes 5, 4, 3; edges 4→5 and 3→4
    test::OwnedGraph g;
    g.feature_bytes = 2;
    g.features.assign(12, 1);
    for (int k = 0; k < kNeighbourKinds; ++k) g.in[k].offsets.assign(7, 0);
    g.in[0].sources = {0, 1, 2, 3, 4};
    g.in[0].offsets = {0, 0, 1, 2, 3, 4, 5};
    const std::vector<uint32_t> t{5};
    const GraphBatch b = extract_batch(g.input(), t, {}, 3);
    CHECK(b.node_ids == std::vector<uint32_t>{5, 4, 3});
    CHECK(b.in[0].offsets == std::vector<uint64_t>{0, 1, 2, 2});
    CHECK(b.in[0].sources == std::vector<uint32_t>{1, 2});
    CHECK(b.features.size() == 6);
}

TEST_CASE("bad targets are typed errors") {
    const auto g = test::random_graph(10, 4, 1);
    const std::vector<uint32_t> dup{1, 1}, out{10}, ok{1, 2}, one_label{0};
    CHECK_THROWS_AS(extract_batch(g.input(), dup, {}, 3), ModelError);
    CHECK_THROWS_AS(extract_batch(g.input(), out, {}, 3), ModelError);
    CHECK_THROWS_AS(extract_batch(g.input(), ok, one_label, 3), ModelError);
    CHECK_THROWS_AS(extract_batch(g.input(), ok, {}, 0), ModelError);
}

TEST_CASE("malformed batches are rejected by forward") {
    const ModelConfig c = cfg3();
    const auto g = test::random_graph(20, 8, 2);
    const auto p = test::random_params<float>(c, 1);
    Gnn<float> net(c);
    GraphBatch b = test::whole_graph_batch(g, {1, 2}, {0, 1});
    CHECK_NOTHROW(net.forward(p, b, {}));
    GraphBatch bad_label = b;
    bad_label.labels[1] = 3;
    CHECK_THROWS_AS(net.forward(p, bad_label, {}), ModelError);
    GraphBatch bad_edge = b;
    bad_edge.in[2].sources.push_back(20);
    bad_edge.in[2].offsets.back() += 1;
    CHECK_THROWS_AS(net.forward(p, bad_edge, {}), ModelError);
    GraphBatch no_targets = b;
    no_targets.targets.clear();
    no_targets.labels.clear();
    CHECK_THROWS_AS(net.forward(p, no_targets, {}), ModelError);
    Params<float> wrong = p;
    wrong.tensors[3].resize(2, 2);
    CHECK_THROWS_AS(net.forward(wrong, b, {}), ModelError);
    const std::vector<float> zero_w{0.f, 0.f, 1.f};
    CHECK_THROWS_AS(net.forward(p, b, {false, 0, zero_w}), ModelError);
}
