// Suite 'real-dumps': the memory graph on the real QEMU dump in $DEEPMEM_DUMPS/dev (default
// /work/dumps):
//   1. dump.elf: 1 and 2 OpenMP threads give the same graph; its invariants hold; .dmg round trip;
//   2. dump.raw and dump.lime, when present: byte-identical graphs to the ELF core's (pointer-ness
//      by the page tables, not by the file); with the top 10 MiB of RAM cut off, every node the
//      remaining memory holds is unchanged but those next to a word pointing where page tables
//      lost with the cut mapped; the memory estimate covers what the build needed;
//   3. real kernel bytes (a slice of low memory plus a slice of the kernel image mapping, copied
//      into a raw image) agree with the word-by-word reference builder of graph_fixtures.hpp.
// Skipped (exit 77) when the dump directory has no DONE marker (written by tools/make-dataset when the dump and its labels passed) or no dump.elf.
#define DOCTEST_CONFIG_IMPLEMENT
#include "graph_fixtures.hpp"

#include <doctest/doctest.h>

#include "test/real_dump.hpp"
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <unistd.h>

using namespace deepmem;
using namespace deepmem::test;
namespace fs = std::filesystem;

namespace {

fs::path g_dev;

void check_invariants(const MemoryGraph& g) {
    const uint32_t n = g.node_count();
    uint64_t bad = 0;
    const GraphParams& p = g.params();
    for (uint32_t i = 0; i < n; ++i) {
        const uint32_t len = g.length()[i];
        bad += len == 0 || (p.long_gap(len) && (!p.long_gap_nodes || len != p.long_gap_length()));
        if (i + 1 < n) bad += g.vaddr()[i] + g.length()[i] > g.vaddr()[i + 1];
        bad += g.vaddr()[i] % g.params().word_size != 0;
    }
    CHECK(bad == 0);
    for (int k = 0; k < kEdgeKinds; ++k) {
        CsrView v = g.in(static_cast<EdgeKind>(k));
        REQUIRE(v.rows() == n);
        uint64_t unsorted = 0, from_sinks = 0;
        for (uint32_t i = 0; i < n; ++i) {
            auto r = v.row(i);
            for (size_t j = 1; j < r.size(); ++j) unsorted += r[j - 1] >= r[j];
            for (uint32_t src : r) from_sinks += p.long_gap(g.length()[src]);
        }
        CHECK(unsorted == 0);   // sorted, no duplicate edges
        CHECK(from_sinks == 0);   // a long gap's node feeds no node
    }
}

}  // namespace

TEST_CASE("graph real: dump.elf graph is thread-count independent, sane, and round-trips") {
    auto phys = PhysicalLayer::open((g_dev / "dump.elf").string());
    auto layer = TranslationLayer::detect(*phys);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    MemoryGraph one = MemoryGraph::build(layer);
    omp_set_num_threads(2);
    MemoryGraph two = MemoryGraph::build(layer);
    omp_set_num_threads(saved);
    MESSAGE("nodes " << one.node_count() << ", kernel pages " << one.info().kernel_pages << ", pointers "
                     << one.info().pointer_fields);
    CHECK(one.node_count() > 10000);
    CHECK(one.edge_count(EdgeKind::LeftPointer) > 10000);
    PlainGraph a = plain(one), b = plain(two);
    CHECK(a.vaddr == b.vaddr);
    CHECK(a.features == b.features);
    for (int k = 0; k < kEdgeKinds; ++k) CHECK(a.edges[k] == b.edges[k]);
    check_invariants(one);

    fs::path tmp = fs::temp_directory_path() / ("dmg-real-" + std::to_string(::getpid()) + ".dmg");
    one.save(tmp.string());
    MemoryGraph back = MemoryGraph::load(tmp.string());
    fs::remove(tmp);
    PlainGraph c = plain(back);
    CHECK(c.vaddr == a.vaddr);
    CHECK(c.paddr == a.paddr);
    for (int k = 0; k < kEdgeKinds; ++k) CHECK(c.edges[k] == a.edges[k]);
    CHECK(std::equal(back.absent().begin(), back.absent().end(), one.absent().begin(), one.absent().end()));
}

namespace {

// The graph's arrays as one byte string (nodes, features, the four CSRs, absent runs): what must
// be identical whatever format the dump came in. Provenance (path, file size, time) is left out.
std::string graph_bytes(const MemoryGraph& g, bool with_absent = true) {
    std::string s;
    auto add = [&](auto span) { s.append(reinterpret_cast<const char*>(span.data()), span.size_bytes()); };
    add(g.vaddr());
    add(g.paddr());
    add(g.length());
    add(g.features());
    for (int k = 0; k < kEdgeKinds; ++k) {
        add(g.in(static_cast<EdgeKind>(k)).offsets);
        add(g.in(static_cast<EdgeKind>(k)).sources);
    }
    if (with_absent) add(g.absent());
    return s;
}

// Kernel pages (4 KiB vaddrs) of a list of absent runs.
std::set<uint64_t> absent_pages(const MemoryGraph& g) {
    std::set<uint64_t> out;
    for (const AbsentRun& r : g.absent())
        for (uint64_t o = 0; o < r.size; o += 4096) out.insert(r.vaddr + o);
    return out;
}

uint64_t total_edges(const MemoryGraph& g) {
    uint64_t e = 0;
    for (int k = 0; k < kEdgeKinds; ++k) e += g.edge_count(static_cast<EdgeKind>(k));
    return e;
}

}  // namespace

TEST_CASE("graph real: long gaps' nodes add nodes and change no other node's rows") {
    auto phys = PhysicalLayer::open((g_dev / "dump.elf").string());
    auto layer = TranslationLayer::detect(*phys);
    GraphParams off;
    off.long_gap_nodes = false;
    const MemoryGraph with = MemoryGraph::build(layer), without = MemoryGraph::build(layer, off);
    check_invariants(with);
    check_invariants(without);
    // Each node of `without` is in `with` at the same vaddr; map indices, compare every row.
    std::vector<uint32_t> to_without(with.node_count(), UINT32_MAX);
    uint32_t j = 0, sinks = 0;
    for (uint32_t i = 0; i < with.node_count(); ++i) {
        if (with.params().long_gap(with.length()[i])) { ++sinks; continue; }
        REQUIRE(j < without.node_count());
        REQUIRE(with.vaddr()[i] == without.vaddr()[j]);
        CHECK(with.length()[i] == without.length()[j]);
        to_without[i] = j++;
    }
    CHECK(j == without.node_count());
    MESSAGE(sinks << " long gaps' nodes beside " << j << " others");
    CHECK(sinks > 100);   // a 256 MiB guest has hundreds (slab pages' last objects among them)
    CHECK(sinks < j / 50);
    uint64_t differ = 0;
    for (int k = 0; k < kEdgeKinds; ++k)
        for (uint32_t i = 0; i < with.node_count(); ++i) {
            if (to_without[i] == UINT32_MAX) continue;
            std::vector<uint32_t> mapped;
            for (uint32_t src : with.in(static_cast<EdgeKind>(k)).row(i)) mapped.push_back(to_without[src]);
            auto r = without.in(static_cast<EdgeKind>(k)).row(to_without[i]);
            differ += !std::equal(mapped.begin(), mapped.end(), r.begin(), r.end());
        }
    CHECK(differ == 0);
}

TEST_CASE("graph real: raw, ELF and LiME copies of the dump give the same graph") {
    auto phys = PhysicalLayer::open((g_dev / "dump.elf").string());
    auto layer = TranslationLayer::detect(*phys);
    MemoryGraph elf = MemoryGraph::build(layer);
    const std::string want = graph_bytes(elf);
    GraphEstimate e = MemoryGraph::estimate(layer);
    MESSAGE("ELF: " << elf.node_count() << " nodes, " << total_edges(elf) << " edges, " << elf.info().kernel_pages
                    << " kernel pages, " << elf.info().pointer_fields << " pointer fields, " << elf.info().absent_pages
                    << " absent pages; estimate " << e.pages << " pages, " << e.nodes << " nodes, " << e.edges
                    << " edges, " << e.bytes << " bytes");
    CHECK(elf.info().absent_pages > 0);   // MMIO and ROM mappings at least
    CHECK(e.pages >= elf.info().kernel_pages);
    CHECK(e.pointers >= elf.info().pointer_fields);
    CHECK(e.nodes >= elf.node_count());
    CHECK(e.edges >= total_edges(elf));
    int compared = 0;
    for (const char* name : {"dump.raw", "dump.lime"}) {
        if (!fs::exists(g_dev / name)) continue;
        const std::string format_name = name;
        INFO(format_name);
        auto other = PhysicalLayer::open((g_dev / name).string());
        auto other_layer = TranslationLayer::detect(*other, layer.dtb(), layer.mode());
        MemoryGraph g = MemoryGraph::build(other_layer);
        MESSAGE(format_name << ": " << g.node_count() << " nodes, " << total_edges(g) << " edges");
        CHECK(g.node_count() == elf.node_count());
        CHECK(total_edges(g) == total_edges(elf));
        CHECK(g.info().pointer_fields == elf.info().pointer_fields);
        if (format_name == "dump.raw") {
            // A raw file cannot leave memory out: where the ELF core has no range (the VGA window,
            // ROM gaps) it holds zeros, or holes that read as zeros (a sparse file is the same
            // dump as its dense copy). Those pages are held in raw, absent in the ELF, and they
            // change nothing else: same nodes, features and edges.
            CHECK(graph_bytes(g, false) == graph_bytes(elf, false));
            const auto raw_absent = absent_pages(g), elf_absent = absent_pages(elf);
            CHECK(std::includes(elf_absent.begin(), elf_absent.end(), raw_absent.begin(), raw_absent.end()));
            uint64_t held_zero = 0;
            for (uint64_t v : elf_absent) {
                if (raw_absent.count(v)) continue;
                const auto pa = other_layer.translate(v);
                REQUIRE(pa);
                const uint8_t* d = other->find(*pa, 4096);
                REQUIRE(d);
                CHECK(std::all_of(d, d + 4096, [](uint8_t b) { return b == 0; }));
                CHECK(!phys->find(*pa, 4096));
                ++held_zero;
            }
            CHECK(held_zero == elf_absent.size() - raw_absent.size());
            CHECK(g.info().kernel_pages >= elf.info().kernel_pages);   // the zero pages, at most once per physical page
            MESSAGE("raw holds " << held_zero << " zero pages the ELF lacks");
        } else {
            CHECK(g.info().kernel_pages == elf.info().kernel_pages);
            CHECK(graph_bytes(g) == want);
        }
        ++compared;
    }
    if (compared == 0) MESSAGE("no dump.raw or dump.lime beside dump.elf: nothing compared");
}

TEST_CASE("graph real: cutting the top 10 MiB of RAM leaves the graph of the memory that remains") {
    // A sparse raw copy of every run below (top of RAM − 10 MiB). Per-CPU areas and early
    // allocations live up there; pointers into them stay pointers while the page tables mapping
    // them lie below the cut (absent pages are still mapped).
    auto phys = PhysicalLayer::open((g_dev / "dump.elf").string());
    auto layer = TranslationLayer::detect(*phys);
    MemoryGraph full = MemoryGraph::build(layer);
    // The top of RAM: the end of the biggest run (an ELF core also holds small ROM and flash
    // ranges up to 4 GiB, e.g. the BIOS at 0xfffc0000).
    uint64_t top = 0, biggest = 0;
    for (const auto& r : phys->runs())
        if (r.size > biggest) {
            biggest = r.size;
            top = r.paddr + r.size;
        }
    const uint64_t cut = top - (uint64_t{10} << 20);
    fs::path raw = fs::temp_directory_path() / ("graph-cut-" + std::to_string(::getpid()) + ".raw");
    {
        std::FILE* f = std::fopen(raw.c_str(), "wb");
        REQUIRE(f);
        for (const auto& r : phys->runs()) {
            if (r.paddr >= cut) continue;
            uint64_t n = std::min(r.size, cut - r.paddr);
            REQUIRE(std::fseek(f, static_cast<long>(r.paddr), SEEK_SET) == 0);
            REQUIRE(std::fwrite(phys->file_bytes().data() + r.file_offset, 1, n, f) == n);
        }
        REQUIRE(std::fclose(f) == 0);
    }
    auto cut_phys = PhysicalLayer::open(raw.string(), DumpFormat::Raw);
    fs::remove(raw);
    auto cut_layer = TranslationLayer::detect(*cut_phys, layer.dtb(), layer.mode());
    MemoryGraph part = MemoryGraph::build(cut_layer);
    // Nodes of the full graph whose every page (up to the one after their last byte, where a
    // segment cut at a mapping edge would have gone on) lies below the cut must be in the cut
    // graph unchanged: same vaddr, length and bytes. A node's pages are virtually, not physically,
    // contiguous (kernel image, vmalloc), so each is translated. (Nodes mapped through page tables
    // that lived above the cut are gone with them; they are counted, not required.)
    auto below_cut = [&](uint64_t vaddr, uint64_t length) {
        for (uint64_t page = vaddr & ~uint64_t{4095}; page <= vaddr + length; page += 4096) {
            const auto pa = layer.translate(page);
            if (!pa || *pa + 4096 > cut) return false;
        }
        return true;
    };
    // Except the nodes next to or holding a word whose pointer-ness the cut changes. The kernel
    // allocates page tables top-down at boot, so some of those that map kernel memory lie above the
    // cut — on the dev dump the PUD/PMD of the vmemmap (the struct page array, itself in the top
    // 10 MiB) and of the cpu_entry_area. A word pointing under such a lost table is a pointer field
    // (TranslationLayer::absent_table_spans), as it was; but one pointing into a hole those tables
    // did not map (unmapped in the full dump) becomes one, and its node legitimately splits.
    // A word under a table the dump lacks is a pointer field too (TranslationLayer::pointer_field_value).
    const uint32_t W = full.params().word_size;
    auto pointerness_changed = [&](uint64_t at) {
        uint64_t value = 0;
        if (!layer.read_virtual(at, {reinterpret_cast<uint8_t*>(&value), W})) return false;
        return layer.pointer_field_value(value) != cut_layer.pointer_field_value(value);
    };
    uint64_t below = 0, same = 0, mapped_gone = 0, next_to_changed = 0;
    const uint32_t F = full.params().feature_bytes;
    for (uint32_t n = 0; n < full.node_count(); ++n) {
        const uint64_t vaddr = full.vaddr()[n], length = full.length()[n];
        if (!below_cut(vaddr, length)) continue;
        // Bounds, and words inside: a word that pointed under no table in the full dump (an unmapped
        // hole of vmalloc or vmemmap) may point under a table the cut lost, and then splits its node.
        bool changed = pointerness_changed(vaddr - W) || pointerness_changed(vaddr + length);
        for (uint64_t at = vaddr; !changed && at < vaddr + length; at += W) changed = pointerness_changed(at);
        if (changed) {
            ++next_to_changed;
            continue;
        }
        ++below;
        auto m = part.node_containing(vaddr);
        if (!m) {
            mapped_gone += !cut_layer.translate(vaddr).has_value();
            continue;
        }
        same += part.vaddr()[*m] == vaddr && part.length()[*m] == length &&
                std::memcmp(&part.features()[uint64_t{*m} * F], &full.features()[uint64_t{n} * F], F) == 0;
    }
    MESSAGE("cut at " << hex(cut) << ": " << below << " nodes below it, " << same << " unchanged, " << mapped_gone
                      << " no longer mapped; " << next_to_changed
                      << " next to or holding a word whose pointer-ness the cut changed (left out); absent pages "
                      << full.info().absent_pages << " → " << part.info().absent_pages);
    CHECK(below > 100000);
    CHECK(part.info().absent_pages > full.info().absent_pages);
    CHECK(same + mapped_gone == below);
}

TEST_CASE("graph real: real kernel bytes agree with the reference builder") {
    auto phys = PhysicalLayer::open((g_dev / "dump.elf").string());
    auto layer = TranslationLayer::detect(*phys);
    // A slice of kernel runs: the 2000-page window of the direct map holding the most nodes of
    // the full graph (slab-heavy memory), plus 1000 pages of the kernel image mapping around
    // init_task (its data section) when kallsyms is there.
    MemoryGraph full = MemoryGraph::build(layer);
    const uint64_t window = 2000 * 4096;
    uint64_t best = 0, best_count = 0;
    for (uint32_t i = 0, j = 0; i < full.node_count(); ++i) {
        while (full.vaddr()[i] - full.vaddr()[j] >= window) ++j;
        if (i - j + 1 > best_count) { best_count = i - j + 1; best = full.vaddr()[j]; }
    }
    uint64_t image_from = ~uint64_t{0};
    {
        std::FILE* f = std::fopen((g_dev / "kallsyms").c_str(), "r");
        char name[256], type;
        unsigned long long addr;
        while (f && std::fscanf(f, "%llx %c %255s%*[^\n]", &addr, &type, name) == 3)
            if (std::string(name) == "init_task") image_from = (addr & ~0xfffull) - 500 * 4096;
        if (f) std::fclose(f);
    }
    std::vector<VirtualRun> pick;
    auto take = [&](uint64_t from, uint64_t to) {
        for (const auto& r : layer.kernel_runs()) {
            uint64_t a = std::max(r.vaddr, from), b = std::min(r.vaddr + r.size, to);
            if (a < b) pick.push_back({a, r.paddr + (a - r.vaddr), b - a});
        }
    };
    best &= ~uint64_t{4095};
    take(best, best + window);
    if (image_from != ~uint64_t{0}) take(image_from, image_from + 1000 * 4096);
    // Copy their physical pages into a compact raw image; equal paddrs share one image page, so
    // aliases stay aliases.
    std::map<uint64_t, uint64_t> image_page;
    for (const auto& r : pick)
        for (uint64_t o = 0; o < r.size; o += 4096) image_page.emplace(r.paddr + o, image_page.size());
    Memory m(image_page.size());
    for (auto& [paddr, idx] : image_page) REQUIRE(phys->read(paddr, {&m.image[idx * 4096], 4096}));
    for (const auto& r : pick)
        for (uint64_t o = 0; o < r.size; o += 4096) m.map(r.vaddr + o, image_page[r.paddr + o] * 4096, 4096);
    MemoryGraph g = m.build();
    MESSAGE("densest window " << hex(best) << ", init_task window " << hex(image_from) << ", slice: " << image_page.size() << " pages, " << g.node_count() << " nodes, "
                      << g.info().pointer_fields << " pointers");
    CHECK(g.node_count() > 1000);
    PlainGraph want = reference_graph(m, g.params()), got = plain(g);
    CHECK(got.kernel_pages == want.kernel_pages);
    CHECK(got.pointer_fields == want.pointer_fields);
    CHECK(got.vaddr == want.vaddr);
    CHECK(got.length == want.length);
    CHECK(got.features == want.features);
    for (int k = 0; k < kEdgeKinds; ++k) CHECK(got.edges[k] == want.edges[k]);
}

int main(int argc, char** argv) {
    g_dev = deepmem::test::real_dump_dir({"dump.elf"});
    doctest::Context ctx;
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
