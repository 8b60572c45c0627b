// libFuzzer target: the whole graph stage on a fuzzed dump — page-table walk, mapped and present
// kernel pages, pointer scan, segments, edges — under the memory estimate (capped at 1 GiB here).
// Input: byte 0 picks the scheme (low 2 bits) and the format (bit 2: a kdump file, else a raw
// physical image), bytes 1..8 the root (little-endian), the rest the dump (seeds in corpus/graph:
// 64–128 KiB images whose page tables map them and whose pages hold pointers, so mutations reach
// the scan and edge code; x64-kdump: one of them in a kdump, with zero pages the tables map, which
// the builder reads as MemoryGraphBuilder::kZeroPage). Anything but an InputError must be a graph
// that keeps the memory_graph.hpp contract: nodes ascending and disjoint, lengths in (0,
// max_segment) or a long gap's node's, no node inside an absent run, absent runs ascending with
// gaps, CSR rows sorted without duplicates, sources < N and never a long gap's node. A kdump whose
// pages are all present (up to 64 MiB) must give the graph of its raw image, byte for byte.
#include "fuzz_physical.hpp"
#include "graph/memory_graph.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

using namespace deepmem;

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    ::setenv("DEEPMEM_MEMORY_LIMIT", "1G", 1);   // the bound a crafted dump must respect
    return 0;
}

// The raw image of `phys` when its runs cover [0, max_paddr) without a hole, up to 64 MiB.
std::optional<std::vector<uint8_t>> raw_image(const PhysicalLayer& phys) {
    if (phys.max_paddr() > (uint64_t{64} << 20) || phys.present_bytes() != phys.max_paddr()) return std::nullopt;
    std::vector<uint8_t> raw(phys.max_paddr());
    for (const PhysicalRun& r : phys.runs()) require(phys.read(r.paddr, {raw.data() + r.paddr, r.size}));
    return raw;
}

// The same graph, array for array.
void require_same(const MemoryGraph& a, const MemoryGraph& b) {
    auto same = [](auto x, auto y) { return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin()); };
    require(same(a.vaddr(), b.vaddr()) && same(a.paddr(), b.paddr()) && same(a.length(), b.length()) &&
            same(a.features(), b.features()));
    require(a.absent().size() == b.absent().size());
    for (size_t i = 0; i < a.absent().size(); ++i)
        require(a.absent()[i].vaddr == b.absent()[i].vaddr && a.absent()[i].size == b.absent()[i].size);
    for (int k = 0; k < kEdgeKinds; ++k)
        for (uint32_t i = 0; i < a.node_count(); ++i)
            require(same(a.in(static_cast<EdgeKind>(k)).row(i), b.in(static_cast<EdgeKind>(k)).row(i)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const bool kdump = size > 0 && (data[0] & 4);
    std::optional<PagingInput> in;
    try {
        in = paging_input(data, size, kdump ? DumpFormat::Kdump : DumpFormat::Raw);
    } catch (const FormatError&) {   // (the kdump target checks these)
        return 0;
    } catch (const InputError&) {
        return 0;
    }
    if (!in) return 0;
    try {
        TranslationLayer layer(*in->phys, in->mode, in->dtb);
        MemoryGraph g = MemoryGraph::build(layer);
        if (kdump)
            if (auto raw = raw_image(*in->phys)) {
                auto raw_phys = PhysicalLayer::from_bytes(*raw, DumpFormat::Raw);
                require_same(g, MemoryGraph::build(TranslationLayer(*raw_phys, in->mode, in->dtb)));
            }
        const uint32_t n = g.node_count();
        require(g.params().word_size == layer.word_size());
        require(g.info().pointer_fields <= g.info().kernel_pages * (4096 / layer.word_size()));
        for (uint32_t i = 0; i < n; ++i) {
            require(g.length()[i] > 0 &&
                    (!g.params().long_gap(g.length()[i]) || g.length()[i] == g.params().long_gap_length()));
            if (i + 1 < n) require(g.vaddr()[i] + g.length()[i] <= g.vaddr()[i + 1]);
        }
        uint64_t absent_pages = 0;
        for (size_t i = 0; i < g.absent().size(); ++i) {
            const AbsentRun& a = g.absent()[i];
            require(a.size > 0 && a.size % 4096 == 0 && a.vaddr % 4096 == 0);
            if (i > 0) require(a.vaddr > g.absent()[i - 1].vaddr + g.absent()[i - 1].size);
            auto [first, last] = g.nodes_between(a.vaddr, a.vaddr + a.size);
            require(first == last || a.vaddr + a.size < a.vaddr);
            require(!g.node_containing(a.vaddr));
            absent_pages += a.size / 4096;
        }
        require(absent_pages == g.info().absent_pages);
        for (int k = 0; k < kEdgeKinds; ++k) {
            CsrView v = g.in(static_cast<EdgeKind>(k));
            require(v.rows() == n);
            for (uint32_t i = 0; i < n; ++i) {
                auto row = v.row(i);
                for (size_t j = 0; j < row.size(); ++j) {
                    require(row[j] < n);
                    require(!g.params().long_gap(g.length()[row[j]]));   // a sink feeds no node
                    if (j) require(row[j - 1] < row[j]);
                }
            }
        }
        if (n > 0) (void)neighbourhood(g, n / 2, 3, 50);
    } catch (const InputError&) {
    }
    return 0;
}
