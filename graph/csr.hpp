// Compressed sparse rows over incoming edges: the one adjacency shape shared by the memory graph
// (graph/) and the GNN engine (engine/). Row n's sources are sources[offsets[n] .. offsets[n+1]).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace deepmem {

struct CsrView {
    std::span<const uint64_t> offsets;   // rows + 1 entries, offsets[0] == 0
    std::span<const uint32_t> sources;   // offsets.back() entries
    uint32_t rows() const noexcept { return offsets.empty() ? 0 : static_cast<uint32_t>(offsets.size() - 1); }
    std::span<const uint32_t> row(uint32_t n) const noexcept {
        return sources.subspan(offsets[n], offsets[n + 1] - offsets[n]);
    }
};

// Owning CSR, e.g. a mini-batch sub-graph; view() borrows it.
struct Csr {
    std::vector<uint64_t> offsets{0};
    std::vector<uint32_t> sources;
    uint32_t rows() const noexcept { return static_cast<uint32_t>(offsets.size() - 1); }
    CsrView view() const noexcept { return {offsets, sources}; }
};

// Outgoing-edge CSR of `a` (row m lists the n with m ∈ a.row(n), ascending): the edges reversed,
// for walking a graph forwards or for a backward pass. Counting sort, O(rows + edges); `out`'s
// storage is reused.
inline void transpose(CsrView a, Csr& out) {
    const uint32_t n = a.rows();
    out.offsets.assign(size_t(n) + 1, 0);
    out.sources.resize(a.sources.size());
    for (uint32_t s : a.sources) ++out.offsets[size_t(s) + 1];
    for (uint32_t i = 0; i < n; ++i) out.offsets[i + 1] += out.offsets[i];
    std::vector<uint64_t> cursor(out.offsets.begin(), out.offsets.end() - 1);
    for (uint32_t r = 0; r < n; ++r)
        for (uint64_t e = a.offsets[r]; e < a.offsets[r + 1]; ++e) out.sources[cursor[a.sources[e]]++] = r;
}

}  // namespace deepmem
