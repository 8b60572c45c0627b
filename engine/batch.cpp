// Mini-batch extraction: the sub-graph a set of targets' mu(T) depends on (engine.hpp).
#include "engine/engine.hpp"

#include <unordered_map>

namespace deepmem {

GraphBatch extract_batch(const GraphInput& g, std::span<const uint32_t> targets,
                         std::span<const uint32_t> labels, uint32_t iterations) {
    auto bad = [](const std::string& s) { throw ModelError(ModelError::Kind::BadBatch, 0, s); };
    const uint32_t N = g.nodes();
    if (iterations == 0) bad("iterations T = 0");
    if (!labels.empty() && labels.size() != targets.size()) bad("labels ≠ targets");
    if (g.features.size() != uint64_t(N) * g.feature_bytes) bad("features size ≠ nodes × feature bytes");
    for (int k = 0; k < kNeighbourKinds; ++k)
        if (g.in[k].offsets.size() != size_t(N) + 1) bad("edge kinds disagree on the node count");

    GraphBatch b;
    b.feature_bytes = g.feature_bytes;
    b.targets.resize(targets.size());
    b.labels.assign(labels.begin(), labels.end());
    std::unordered_map<uint32_t, uint32_t> local;   // graph node → batch row
    local.reserve(targets.size() * 8);
    for (size_t i = 0; i < targets.size(); ++i) {
        if (targets[i] >= N) bad("target " + std::to_string(targets[i]) + " ≥ node count " + std::to_string(N));
        if (!local.emplace(targets[i], uint32_t(i)).second) bad("duplicate target " + std::to_string(targets[i]));
        b.node_ids.push_back(targets[i]);
        b.targets[i] = uint32_t(i);
    }
    // BFS over incoming edges. mu(1) ignores neighbours (mu(0) = 0), so nodes at hop T−1 are
    // needed without their in-edges and nothing beyond them is needed at all.
    size_t level_begin = 0, with_edges_end = 0;
    for (uint32_t hop = 0; hop + 1 < iterations; ++hop) {
        const size_t level_end = b.node_ids.size();
        for (size_t r = level_begin; r < level_end; ++r) {
            const uint32_t n = b.node_ids[r];
            for (int k = 0; k < kNeighbourKinds; ++k) {
                const CsrView& a = g.in[k];
                if (a.offsets[n + 1] < a.offsets[n] || a.offsets[n + 1] > a.sources.size())
                    bad("CSR row " + std::to_string(n) + " out of range");
                for (uint32_t m : a.row(n)) {
                    if (m >= N) bad("edge source " + std::to_string(m) + " ≥ node count");
                    if (local.emplace(m, uint32_t(b.node_ids.size())).second) b.node_ids.push_back(m);
                }
            }
        }
        level_begin = level_end;
        with_edges_end = level_end;
    }
    const uint32_t n_local = uint32_t(b.node_ids.size());
    for (int k = 0; k < kNeighbourKinds; ++k) {
        Csr& c = b.in[k];
        c.offsets.assign(size_t(n_local) + 1, 0);
        for (uint32_t r = 0; r < n_local; ++r) {
            if (r < with_edges_end)
                for (uint32_t m : g.in[k].row(b.node_ids[r])) c.sources.push_back(local.at(m));
            c.offsets[r + 1] = c.sources.size();
        }
    }
    b.features.resize(size_t(n_local) * g.feature_bytes);
    for (uint32_t r = 0; r < n_local; ++r)
        std::copy_n(g.features.begin() + ptrdiff_t(uint64_t(b.node_ids[r]) * g.feature_bytes), g.feature_bytes,
                    b.features.begin() + ptrdiff_t(uint64_t(r) * g.feature_bytes));
    return b;
}

}  // namespace deepmem
