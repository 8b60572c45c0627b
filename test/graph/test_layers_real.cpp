// Suite 'real-dumps': the layers on the real QEMU dump in $DEEPMEM_DUMPS/dev (default /work/dumps):
//   1. dump.elf: the root from the vCPU note (CR3) and the note-less page-directory search
//      translate every kernel page identically, and the search finds init_top_pgt (kallsyms);
//   2. dump.raw / dump.lime, when present (tools/dm-dump-formats): same present bytes, the search
//      on them finds a root with the same kernel_runs as the ELF note's, and the bytes of every
//      kernel run read back identically through each format.
// Skipped (exit 77) when the dump directory has no DONE marker (written by tools/make-dataset when the dump and its labels passed) or no dump.elf.
#define DOCTEST_CONFIG_IMPLEMENT
#include "graph/layers.hpp"

#include <doctest/doctest.h>

#include "test/real_dump.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

using namespace deepmem;
namespace fs = std::filesystem;

namespace {

fs::path g_dev;

uint64_t pages_of(std::span<const VirtualRun> runs) {
    uint64_t n = 0;
    for (const auto& r : runs) n += r.size / 4096;
    return n;
}

bool same_runs(std::span<const VirtualRun> a, std::span<const VirtualRun> b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].vaddr != b[i].vaddr || a[i].paddr != b[i].paddr || a[i].size != b[i].size) return false;
    return true;
}

}  // namespace

TEST_CASE("layers real: note CR3 and search agree on dump.elf") {
    auto phys = PhysicalLayer::open((g_dev / "dump.elf").string());
    CHECK(phys->format() == DumpFormat::Elf);
    REQUIRE_FALSE(phys->cpus().empty());
    auto note = TranslationLayer::detect(*phys);
    auto found = TranslationLayer::search(*phys);
    MESSAGE("note: ", std::string(to_string(note.mode())), " dtb ", hex(note.dtb()), " (cr3 ", hex(phys->cpus()[0].cr3),
            "), search: ", std::string(to_string(found.mode())), " dtb ", hex(found.dtb()), ", kernel pages ",
            pages_of(note.kernel_runs()));
    CHECK(note.mode() == found.mode());
    CHECK(pages_of(note.kernel_runs()) > phys->present_bytes() / 4096 / 2);   // the direct map at least
    uint64_t same = 0, differ = 0;
    for (const auto& r : note.kernel_runs())
        for (uint64_t off = 0; off < r.size; off += 4096)
            (found.translate(r.vaddr + off) == r.paddr + off ? same : differ)++;
    CHECK(differ == 0);
    CHECK(same_runs(note.kernel_runs(), found.kernel_runs()));
    // With kallsyms next to the dump, the search must have found init_top_pgt itself.
    if (std::ifstream ks{g_dev / "kallsyms"}) {
        std::string line;
        while (std::getline(ks, line))
            if (line.size() > 19 && line.compare(17, 2, "D ") == 0 && line.substr(19) == "init_top_pgt") {
                uint64_t va = std::stoull(line.substr(0, 16), nullptr, 16);
                CHECK(note.translate(va) == found.dtb());
            }
    }
    auto st = note.walk_stats();
    CHECK(st.loops == 0);
    CHECK(st.reserved == 0);
}

TEST_CASE("layers real: raw and LiME copies match the ELF core") {
    auto elf = PhysicalLayer::open((g_dev / "dump.elf").string());
    auto note = TranslationLayer::detect(*elf);
    for (std::string name : {"dump.raw", "dump.lime"}) {
        fs::path p = g_dev / name;
        if (!fs::exists(p)) {
            MESSAGE(name, " absent: not compared");
            continue;
        }
        CAPTURE(name);
        auto phys = PhysicalLayer::open(p.string());
        CHECK(phys->cpus().empty());
        CHECK(phys->present_bytes() >= elf->present_bytes());   // raw: holes become zeros
        auto t = TranslationLayer::detect(*phys);
        CHECK(t.mode() == note.mode());
        std::vector<uint8_t> a, b;
        uint64_t compared = 0;
        for (const auto& r : note.kernel_runs()) {
            a.resize(r.size);
            b.resize(r.size);
            REQUIRE(note.read_virtual(r.vaddr, a));
            REQUIRE(t.read_virtual(r.vaddr, b));
            CHECK(a == b);
            compared += r.size;
        }
        // A raw copy makes holes present (zeros), so it may map more; never fewer.
        CHECK(pages_of(t.kernel_runs()) >= pages_of(note.kernel_runs()));
        if (phys->format() == DumpFormat::Lime) CHECK(same_runs(t.kernel_runs(), note.kernel_runs()));
        MESSAGE(name, ": ", compared >> 20, " MiB of kernel mappings identical");
    }
}

int main(int argc, char** argv) {
    g_dev = deepmem::test::real_dump_dir({"dump.elf"});
    doctest::Context ctx;
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
