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

}  // namespace deepmem
