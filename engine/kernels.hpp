// Internal to engine/: the sparse kernels shared by the training path and the inference fast path.
#pragma once

#include "engine/engine.hpp"
#include "graph/parallel_errors.hpp"

#include <algorithm>
#include <cstdint>

namespace deepmem::kernels {

// out[n − first, 0:W) (=|+=) over rows first..last (serial); aggregate() does all rows in parallel.
// out[n, 0:W) (=|+=) Σ_{m ∈ a.row(n)} in[m, 0:W) — rows strided, sum order fixed by the CSR, so the
// result does not depend on the thread count. The backward of this step is the same call on the
// transposed CSR (transpose() of graph/csr.hpp): d in[m] += Σ_{n : m ∈ a.row(n)} d out[n].
template <class S>
inline void aggregate_rows(CsrView a, int64_t first, int64_t last, const S* in, int64_t in_stride, S* out,
                           int64_t out_stride, int64_t width, bool accumulate) {
    for (int64_t n = first; n < last; ++n) {
        S* o = out + (n - first) * out_stride;
        if (!accumulate)
            for (int64_t c = 0; c < width; ++c) o[c] = S(0);
        for (uint64_t e = a.offsets[n]; e < a.offsets[n + 1]; ++e) {
            const S* i = in + int64_t(a.sources[e]) * in_stride;
            for (int64_t c = 0; c < width; ++c) o[c] += i[c];
        }
    }
}
template <class S>
void aggregate(CsrView a, const S* in, int64_t in_stride, S* out, int64_t out_stride, int64_t width,
               bool accumulate) {
    const int64_t rows = a.rows();
    constexpr int64_t kBlock = 256;
    ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t b = 0; b < (rows + kBlock - 1) / kBlock; ++b)
        errors.run([&] {
            const int64_t first = b * kBlock, last = std::min(rows, first + kBlock);
            aggregate_rows(a, first, last, in, in_stride, out + first * out_stride, out_stride, width, accumulate);
        });
    errors.rethrow();
}

// Counter-based hash (splitmix64 finaliser): dropout masks are a pure function of their
// coordinates, hence identical for any thread count.
inline uint64_t mix64(uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
inline bool keep_unit(uint64_t seed, uint64_t layer, uint64_t row, uint64_t col, double keep) noexcept {
    uint64_t h = mix64(mix64(mix64(seed ^ (layer * 0x100000001b3ull)) ^ row) ^ col);
    return double(h >> 11) * 0x1.0p-53 < keep;
}

}  // namespace deepmem::kernels
