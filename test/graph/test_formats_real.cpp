// Suite 'real-dumps': kdump (zlib flattened, as `dump-guest-memory -z` writes; lzo and snappy
// plain) and AVML copies of $DEEPMEM_DUMPS/dev/dump.elf, written by graph/dump_writers.hpp into
// $TMPDIR, give the ELF's pages, CPU state and memory graph. Skipped (exit 77) without the dump.
#define DOCTEST_CONFIG_IMPLEMENT
#include "graph/dump_writers.hpp"
#include "graph_fixtures.hpp"
#include "test/graph/dump_images.hpp"

#include <doctest/doctest.h>

#include "test/real_dump.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

using namespace deepmem;
using namespace deepmem::test;
namespace fs = std::filesystem;

namespace {

fs::path g_dev;

// Writes `write`'s output to a temporary file and returns its path (removed by the caller).
fs::path write_temp(const std::string& name, const std::function<WriteStats(const ByteSink&)>& write) {
    fs::path p = fs::temp_directory_path() / ("dm-formats-real-" + std::to_string(::getpid()) + "-" + name);
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    bool ok = true;
    write([&](uint64_t off, std::span<const uint8_t> b) {
        ok = ok && ::pwrite(fd, b.data(), b.size(), static_cast<off_t>(off)) == static_cast<ssize_t>(b.size());
    });
    ::close(fd);
    REQUIRE(ok);
    return p;
}

void check_same_graph(const PlainGraph& a, const PlainGraph& b) {
    CHECK(a.vaddr == b.vaddr);
    CHECK(a.paddr == b.paddr);
    CHECK(a.length == b.length);
    CHECK(a.features == b.features);
    for (int k = 0; k < kEdgeKinds; ++k) CHECK(a.edges[k] == b.edges[k]);
}

}  // namespace

TEST_CASE("formats real: kdump and AVML copies of dump.elf give the ELF's memory and graph") {
    auto elf = PhysicalLayer::open((g_dev / "dump.elf").string());
    auto layer = TranslationLayer::detect(*elf);
    const PlainGraph want = plain(MemoryGraph::build(layer));
    MESSAGE("ELF graph: " << want.vaddr.size() << " nodes");

    struct Case { const char* name; KdumpCompression c; bool flat; };
    for (const Case& k : {Case{"zlib-flat.kdump", KdumpCompression::Zlib, true},
                          Case{"lzo.kdump", KdumpCompression::Lzo, false},
                          Case{"snappy.kdump", KdumpCompression::Snappy, false}}) {
        const std::string name = k.name;
        CAPTURE(name);
        const fs::path p = write_temp(name, [&](const ByteSink& s) { return write_kdump(*elf, k.c, k.flat, s); });
        MESSAGE(name << ": " << fs::file_size(p) / (1 << 20) << " MiB");
        auto kd = PhysicalLayer::open(p.string());
        fs::remove(p);   // the layer keeps its decompressed image, not the file
        CHECK(kd->format() == DumpFormat::Kdump);
        CHECK(kd->warnings().empty());
        CHECK(kd->present_bytes() == elf->present_bytes());
        REQUIRE(kd->cpus().size() == elf->cpus().size());
        auto kl = TranslationLayer::detect(*kd);   // the root from its own notes
        CHECK(kl.dtb() == layer.dtb());
        check_same_graph(plain(MemoryGraph::build(kl)), want);
    }
    const fs::path a = write_temp("dump.avml", [&](const ByteSink& s) { return write_avml(*elf, s); });
    MESSAGE("avml: " << fs::file_size(a) / (1 << 20) << " MiB");
    auto av = PhysicalLayer::open(a.string());
    fs::remove(a);
    CHECK(av->format() == DumpFormat::Avml);
    CHECK(av->present_bytes() == elf->present_bytes());
    // AVML carries no CPU state: the root the ELF's notes give (as for the raw and LiME copies).
    auto al = TranslationLayer::detect(*av, layer.dtb(), layer.mode());
    check_same_graph(plain(MemoryGraph::build(al)), want);
}

TEST_CASE("formats real: a kdump page holding a direct-map page table that does not decompress is said, with what it maps") {
    // The attack's case: one corrupt page of a zlib kdump of dump.elf, the lowest-level table on
    // the walk of the direct map's middle (the page directory of 2 MiB pages, or the PDPT when
    // 1 GiB pages map it). Without it most of the graph was gone; the translation must say so, and
    // now reads the direct map under it linearly.
    auto elf = PhysicalLayer::open((g_dev / "dump.elf").string());
    auto layer = TranslationLayer::detect(*elf);
    CHECK(layer.warnings().empty());
    VirtualRun direct{};
    for (const VirtualRun& r : layer.kernel_runs())
        if (r.size > direct.size) direct = r;
    const uint64_t va = direct.vaddr + direct.size / 2;
    uint64_t table = layer.dtb(), victim = 0;
    for (unsigned shift : {39u, 30u, 21u}) {   // x86-64 4-level: PML4, PDPT, page directory
        uint64_t e = 0;
        REQUIRE(elf->read(table + 8 * ((va >> shift) & 511), {reinterpret_cast<uint8_t*>(&e), 8}));
        REQUIRE((e & 1) == 1);
        if (e & 0x80) break;   // a large page: the table holding it is the victim
        victim = table = e & 0x000ffffffffff000ull;
    }
    REQUIRE(victim != 0);
    const uint64_t victim_value = victim;
    CAPTURE(victim_value);
    auto k = test_images::kdump_of(*elf, KdumpCompression::Zlib, false);
    const uint64_t d = test_images::kdump_desc_of(k, victim / 4096);
    const uint64_t off = test_images::read_le(k, d, 8), size = test_images::read_le(k, d + 8, 4);
    for (uint64_t i = size / 2; i < size / 2 + 8; ++i) k[off + i] ^= 0xff;   // as the attack's mk.py 'flip'
    auto kd = PhysicalLayer::from_bytes(k);
    REQUIRE(kd->warnings().size() == 1);
    auto kl = TranslationLayer::detect(*kd);
    CHECK(kl.dtb() == layer.dtb());
    // The walk's warning, last; before it, when the victim is a 4 KiB page table (a boot that split
    // that part of the direct map), the CPU note's root is also said to leave present pages out of
    // its direct map (graph/root_search.cpp: no searched root maps more, the note's is kept).
    const auto w = kl.warnings();
    for (const std::string& line : w) MESSAGE(line);
    REQUIRE(!w.empty());
    REQUIRE(w.size() <= 2);
    CHECK(w.back().find("translation: 1 page-table page is not in the dump (paddr " + hex(victim) + ")") == 0);
    if (w.size() == 2)
        CHECK(w[0].find("maps only part of a kernel (its direct map leaves out ") != std::string::npos);
    CHECK(kl.walk_stats().absent_bytes >= uint64_t{1} << 21);
    uint64_t kept = 0, all = 0;
    for (const auto& r : kl.kernel_runs()) kept += r.size;
    for (const auto& r : layer.kernel_runs()) all += r.size;
    MESSAGE("kernel pages: " << all / 4096 << " → " << kept / 4096);
    // The direct map under the lost table is read linearly at the base the kernel image holds
    // (translation.cpp, fill_direct_map): the graph keeps that memory, and the warning says so.
    CHECK(kl.walk_stats().direct_fill_pages > 0);
    CHECK(w.back().find(" + their physical address, as the kernel maps its direct map") != std::string::npos);
    CHECK(kept >= all - all / 100);
}

int main(int argc, char** argv) {
    g_dev = real_dump_dir();
    doctest::Context ctx(argc, argv);
    return ctx.run();
}
