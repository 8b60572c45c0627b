// kdump and AVML files of a physical layer, in memory (graph/dump_writers.hpp), and where a page
// lies in such a kdump file: for the format tests that corrupt one page (test_formats.cpp,
// test_formats_real.cpp).
#pragma once

#include "graph/dump_writers.hpp"
#include "graph/layers.hpp"
#include "test/graph/layer_images.hpp"

#include <cstring>
#include <functional>
#include <stdexcept>
#include <vector>

namespace deepmem::test_images {

inline std::vector<uint8_t> write_to_vector(const std::function<void(const ByteSink&)>& write) {
    std::vector<uint8_t> out;
    write([&](uint64_t off, std::span<const uint8_t> b) {
        if (out.size() < off + b.size()) out.resize(off + b.size());
        std::memcpy(out.data() + off, b.data(), b.size());
    });
    return out;
}

inline std::vector<uint8_t> kdump_of(const PhysicalLayer& p, KdumpCompression c, bool flat) {
    return write_to_vector([&](const ByteSink& s) { write_kdump(p, c, flat, s); });
}
inline std::vector<uint8_t> avml_of(const PhysicalLayer& p) {
    return write_to_vector([&](const ByteSink& s) { write_avml(p, s); });
}

// The page descriptor {u64 offset, u32 size, u32 flags, u64 page_flags} of `pfn` in a plain
// 64-bit kdump file as write_kdump() makes it (one dumped page per set bit of the 2nd bitmap);
// std::logic_error when `pfn` is not dumped.
inline uint64_t kdump_desc_of(const std::vector<uint8_t>& k, uint64_t pfn) {
    const uint64_t bs = read_le(k, 428, 4), sub = read_le(k, 432, 4), bitmap = read_le(k, 436, 4);
    const uint64_t bm2 = (1 + sub + bitmap / 2) * bs;
    if (((k.at(bm2 + pfn / 8) >> (pfn % 8)) & 1) != 1) throw std::logic_error("pfn not in the kdump");
    uint64_t index = 0;
    for (uint64_t q = 0; q < pfn; ++q) index += (k[bm2 + q / 8] >> (q % 8)) & 1;
    return (1 + sub + bitmap) * bs + 24 * index;
}

}  // namespace deepmem::test_images
