// Random small graphs with all four edge kinds, for the engine suites.
#pragma once

#include "engine/engine.hpp"

#include <random>

namespace deepmem::test {

struct OwnedGraph {
    std::array<Csr, kNeighbourKinds> in;
    std::vector<uint8_t> features;
    uint32_t feature_bytes = 0;
    GraphInput input() const {
        return {{in[0].view(), in[1].view(), in[2].view(), in[3].view()}, features, feature_bytes};
    }
};

// n nodes; ln/rn follow a chain (node i−1 → i with probability 0.8), lp/rp have ~`degree` random
// in-edges per node (repeats allowed: a pointer run can hit the same node twice).
inline OwnedGraph random_graph(uint32_t n, uint32_t feature_bytes, uint64_t seed, double degree = 1.5) {
    std::mt19937_64 rng(seed);
    OwnedGraph g;
    g.feature_bytes = feature_bytes;
    g.features.resize(size_t(n) * feature_bytes);
    for (auto& b : g.features) b = uint8_t(rng());
    std::uniform_real_distribution<double> u(0, 1);
    std::poisson_distribution<int> pois(degree);
    for (int k = 0; k < kNeighbourKinds; ++k) {
        Csr& c = g.in[k];
        c.offsets.assign(1, 0);
        for (uint32_t i = 0; i < n; ++i) {
            if (k == 0 && i > 0 && u(rng) < 0.8) c.sources.push_back(i - 1);
            if (k == 1 && i + 1 < n && u(rng) < 0.8) c.sources.push_back(i + 1);
            if (k >= 2)
                for (int e = pois(rng); e > 0; --e) c.sources.push_back(uint32_t(rng() % n));
            c.offsets.push_back(c.sources.size());
        }
    }
    return g;
}

// Batch over the whole graph with the given targets/labels (no extraction).
inline GraphBatch whole_graph_batch(const OwnedGraph& g, std::vector<uint32_t> targets, std::vector<uint32_t> labels) {
    GraphBatch b;
    b.feature_bytes = g.feature_bytes;
    b.features = g.features;
    b.in = g.in;
    b.targets = std::move(targets);
    b.labels = std::move(labels);
    for (uint32_t i = 0; i < g.in[0].rows(); ++i) b.node_ids.push_back(i);
    return b;
}

// Parameters with every entry random (biases too, so no ReLU sits exactly on its kink at t = 1).
template <class S> Params<S> random_params(const ModelConfig& cfg, uint64_t seed, double scale = 0.5) {
    Params<S> p = Params<S>::zeros(cfg);
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(-scale, scale);
    for (auto& t : p.tensors)
        for (Eigen::Index i = 0; i < t.size(); ++i) t.data()[i] = S(u(rng));
    return p;
}

}  // namespace deepmem::test
