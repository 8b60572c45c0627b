// libFuzzer target: MemoryGraph::from_bytes on arbitrary bytes. Anything but a FormatError must be
// a graph whose every exposed span can be walked: rows in bounds, sources < N, vaddrs ascending.
#include "graph/memory_graph.hpp"

#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

void walk(std::span<const uint8_t> bytes) {
    using namespace deepmem;
    try {
        MemoryGraph g = MemoryGraph::from_bytes(bytes);
        const uint32_t n = g.node_count();
        require(g.paddr().size() == n && g.length().size() == n);
        require(g.features().size() == uint64_t{n} * g.params().feature_bytes);
        uint64_t sum = 0;
        for (uint8_t b : g.features()) sum += b;
        for (uint32_t i = 0; i < n; ++i) {
            require(g.length()[i] > 0);
            if (i + 1 < n) require(g.vaddr()[i] + g.length()[i] <= g.vaddr()[i + 1]);
            require(g.node_containing(g.vaddr()[i]) == i);
            sum += g.paddr()[i];
        }
        for (int k = 0; k < kEdgeKinds; ++k) {
            CsrView v = g.in(static_cast<EdgeKind>(k));
            require(v.rows() == n);
            for (uint32_t i = 0; i < n; ++i)
                for (uint32_t s : v.row(i)) require(s < n);
        }
        auto [a, b] = g.nodes_between(0, ~uint64_t{0});
        require(a == 0 && b == n);
        uint64_t absent_pages = 0;
        for (size_t i = 0; i < g.absent().size(); ++i) {
            require(g.absent()[i].size > 0 && g.absent()[i].size % 4096 == 0);
            if (i) require(g.absent()[i].vaddr > g.absent()[i - 1].vaddr);
            absent_pages += g.absent()[i].size / 4096;
        }
        require(absent_pages == g.info().absent_pages);
        (void)sum;
    } catch (const FormatError&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    walk({data, size});
    if (size >= 24) {   // the same bytes with a valid checksum: reach the content checks
        std::vector<uint8_t> copy(data, data + size);
        uint64_t sum = deepmem::dmg_checksum(copy);
        std::memcpy(copy.data() + 16, &sum, sizeof sum);
        walk(copy);
    }
    return 0;
}
