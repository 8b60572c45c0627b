// Physical layers (raw, ELF core, LiME) and the page-table walker on hand-built images: page
// tables are written into a byte vector here, then read back through each format.
#include "graph/layers.hpp"
#include "test/graph/layer_images.hpp"

#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <cstring>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

using namespace deepmem;
using namespace deepmem::test_images;

namespace {

std::vector<VirtualRun> runs_of(const TranslationLayer& t) {
    auto r = t.kernel_runs();
    return {r.begin(), r.end()};
}

bool operator_eq(const std::vector<VirtualRun>& a, const std::vector<VirtualRun>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].vaddr != b[i].vaddr || a[i].paddr != b[i].paddr || a[i].size != b[i].size) return false;
    return true;
}

std::span<const uint8_t> mem_bytes_of(const PhysicalLayer& p) { return p.file_bytes(); }

template <class F>
uint64_t format_error_offset(F&& f) {
    try {
        f();
    } catch (const FormatError& e) {
        return e.offset();
    }
    FAIL("expected FormatError");
    return ~uint64_t{0};
}

}  // namespace

TEST_CASE("layers: hex and enum spellings") {
    CHECK(hex(0) == "0x0");
    CHECK(hex(0xffffffff80000000ull) == "0xffffffff80000000");
    CHECK(parse_dump_format("lime") == DumpFormat::Lime);
    CHECK(std::string(to_string(DumpFormat::Elf)) == "elf");
    CHECK_THROWS_AS(parse_dump_format("vmem"), InputError);
    CHECK(parse_paging_mode("la57") == PagingMode::X86_64_5Level);
    CHECK(std::string(to_string(PagingMode::X86_PAE)) == "pae");
    CHECK_THROWS_AS(parse_paging_mode("arm64"), InputError);
}

TEST_CASE("layers: parse_address reads decimal and 0x hex only") {
    CHECK(parse_address("0", "n") == 0);
    CHECK(parse_address("4096", "n") == 4096);
    CHECK(parse_address("0x1ad000", "n") == 0x1ad000);
    CHECK(parse_address("0x0", "n") == 0);
    CHECK(parse_address("0x00001aD000", "n") == 0x1ad000);   // leading zeros after 0x are hex's, not octal's
    CHECK(parse_address("0XFFFFFFFFFFFFFFFF", "n") == ~uint64_t{0});
    CHECK(parse_address("18446744073709551615", "n") == ~uint64_t{0});
    // C's spellings that would give another number than the analyst meant, and the rest of strtoull's leniency
    for (const char* bad : {"010", "00", "0x", "", " 5", "5 ", "+5", "-5", "0x-1", "0x+1", "1e3", "5k", "0b101",
                            "18446744073709551616", "0x10000000000000000"}) {
        INFO("'" << bad << "'");
        CHECK_THROWS_AS(parse_address(bad, "n"), InputError);
    }
    try {
        parse_address("010", "run.steps");
        FAIL("no error");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()).find("octal is not read") != std::string::npos);
    }
}

TEST_CASE("layers: raw image reads, holes and bounds") {
    Image mem(3 * 4096 + 100);
    for (size_t i = 0; i < mem.bytes.size(); ++i) mem.bytes[i] = static_cast<uint8_t>(i * 7);
    auto phys = PhysicalLayer::from_bytes(mem.bytes);
    CHECK(phys->format() == DumpFormat::Raw);
    REQUIRE(phys->runs().size() == 1);
    CHECK(phys->max_paddr() == mem.bytes.size());
    CHECK(phys->present_bytes() == mem.bytes.size());
    CHECK(phys->cpus().empty());
    CHECK(phys->find(4096, 4096) == mem.bytes.data() + 4096);
    CHECK(phys->find(3 * 4096, 4096) == nullptr);   // partial last page
    CHECK(phys->find(3 * 4096, 100) != nullptr);
    CHECK(phys->find(~uint64_t{0}, 2) == nullptr);
    std::vector<uint8_t> out(50);
    CHECK(phys->read(10, out));
    CHECK(out[0] == mem.bytes[10]);
    CHECK_FALSE(phys->read(mem.bytes.size() - 10, out));
    CHECK_FALSE(phys->read(~uint64_t{0} - 10, out));

    std::vector<uint8_t> empty;
    CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(empty); }) == 0);
    CHECK_THROWS_AS(PhysicalLayer::from_bytes(empty, DumpFormat::Lime), FormatError);
    CHECK_THROWS_AS(PhysicalLayer::from_bytes(empty, DumpFormat::Elf), FormatError);
}

TEST_CASE("layers: MappedFile and open() on a real file") {
    char path[] = "/tmp/dm-layers-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    Image mem = build_x64_4level();
    std::vector<uint8_t> lime = to_lime(mem.bytes, {0x100000});
    REQUIRE(write(fd, lime.data(), lime.size()) == static_cast<ssize_t>(lime.size()));
    close(fd);
    {
        auto phys = PhysicalLayer::open(path);
        CHECK(phys->format() == DumpFormat::Lime);
        CHECK(phys->present_bytes() == mem.bytes.size());
        auto raw = PhysicalLayer::open(path, DumpFormat::Raw);   // --format overrides sniffing
        CHECK(raw->present_bytes() == lime.size());
    }
    std::remove(path);
    CHECK_THROWS_AS(PhysicalLayer::open(path), InputError);

    // A sparse raw file: 4 MiB with data only in its first page and at 2 MiB. Holes read as zeros
    // (present) but data_runs() skips them where the filesystem reports holes.
    std::strcpy(path, "/tmp/dm-layers-XXXXXX");
    fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, 0x400000) == 0);
    uint8_t page[4096];
    std::memset(page, 0x5a, sizeof page);
    REQUIRE(pwrite(fd, page, sizeof page, 0) == 4096);
    REQUIRE(pwrite(fd, page, sizeof page, 0x200000) == 4096);
    close(fd);
    {
        auto phys = PhysicalLayer::open(path, DumpFormat::Raw);
        CHECK(phys->present_bytes() == 0x400000);
        uint64_t data = 0;
        for (const auto& r : phys->data_runs()) {
            data += r.size;
            CHECK(r.paddr == r.file_offset);
        }
        CHECK(data >= 0x2000);
        CHECK(data <= 0x400000);
        std::vector<uint8_t> z(16);
        REQUIRE(phys->read(0x100000, z));
        CHECK(z == std::vector<uint8_t>(16, 0));
        auto mem = PhysicalLayer::from_bytes(mem_bytes_of(*phys));
        CHECK(mem->data_runs().size() == mem->runs().size());
    }
    std::remove(path);
    CHECK_THROWS_AS(MappedFile("/tmp"), InputError);
}

namespace {
// Resident KiB of this process's mapping that contains `p` (/proc/self/smaps "Rss:"), or -1.
long resident_kib(const void* p) {
    std::ifstream in("/proc/self/smaps");
    const auto at = reinterpret_cast<uintptr_t>(p);
    bool inside = false;
    for (std::string line; std::getline(in, line);) {
        unsigned long lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find(':') > line.find(' ')) {
            inside = lo <= at && at < hi;
        } else if (inside && line.rfind("Rss:", 0) == 0) {
            return std::stol(line.substr(4));
        }
    }
    return -1;
}
// Writes a LiME file of `size` bytes of patterned memory, one range per 4 KiB page, to a new file
// made from the mkstemp template `path`; returns the memory.
Image write_one_page_lime(char* path, uint64_t size, uint8_t seed) {
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    Image mem(size);
    mem.pattern(0, size, seed);
    std::vector<uint64_t> splits;
    for (uint64_t a = 0x1000; a < size; a += 0x1000) splits.push_back(a);
    const std::vector<uint8_t> lime = to_lime(mem.bytes, splits);
    REQUIRE(write(fd, lime.data(), lime.size()) == static_cast<ssize_t>(lime.size()));
    close(fd);
    return mem;
}
}  // namespace

// Issue #11 item 7: a LiME file of many small ranges peaked at the file's size. Each range's bytes
// follow a 32-byte header, so they are not page-aligned in the file: release() must drop the pages
// a range touches, not only those wholly inside it (none, for a one-page range), and open() must
// not leave mapped what the header walk faulted in.
TEST_CASE("layers: a named pipe with no writer is refused at once, not waited on") {
    char dir[] = "/tmp/dm-layers-fifo-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    const std::string fifo = std::string(dir) + "/dump.raw";
    REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
    // Before: open(O_RDONLY) blocked until a writer came (dmgraph build FIFO hung).
    CHECK_THROWS_WITH_AS(PhysicalLayer::open(fifo), (fifo + " is not a regular file").c_str(), InputError);
    std::remove(fifo.c_str());
    rmdir(dir);
}

TEST_CASE("layers: one-page LiME ranges are dropped from the process after open() and release()") {
    char path[] = "/tmp/dm-layers-XXXXXX";
    const Image mem = write_one_page_lime(path, 0x400000, 11);
    {
        auto phys = PhysicalLayer::open(path);
        REQUIRE(phys->runs().size() == 1024);
        REQUIRE(phys->file_backed());
        const uint8_t* base = phys->file_bytes().data();
        CHECK(resident_kib(base) <= 64);   // the header walk faulted in nearly all 4 MiB
        uint64_t sum = 0;
        for (const PhysicalRun& r : phys->data_runs()) sum += base[r.file_offset] + base[r.file_offset + r.size - 1];
        CHECK(sum > 0);
        CHECK(resident_kib(base) >= 2048);   // read: resident again
        for (const PhysicalRun& r : phys->data_runs()) phys->release(base + r.file_offset, r.size);
        CHECK(resident_kib(base) <= 64);
        // Dropped pages read back the same.
        std::vector<uint8_t> page(4096);
        REQUIRE(phys->read(0x3ff000, page));
        CHECK(std::equal(page.begin(), page.end(), mem.bytes.begin() + 0x3ff000));
    }
    std::remove(path);
}

namespace {
// KiB of memory `work` adds to a process at its peak: run in a forked child whose peak (VmHWM)
// is reset first (clear_refs 5), minus its resident size then; -1 when that cannot be measured
// (no /proc) or the child fails (`work` returns false, or throws).
template <class F>
long peak_kib_added_by(F&& work) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    const pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        auto status_kib = [](const char* key) {
            std::ifstream in("/proc/self/status");
            for (std::string line; std::getline(in, line);)
                if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::strlen(key)));
            return -1L;
        };
        long added = -1;
        {
            std::ofstream("/proc/self/clear_refs") << "5";
            const long base = status_kib("VmRSS:");
            bool ok = false;
            try {
                ok = work();
            } catch (...) {
            }
            const long peak = status_kib("VmHWM:");
            if (ok && base >= 0 && peak >= 0) added = peak - base;
        }
        (void)!write(fds[1], &added, sizeof added);
        _exit(0);
    }
    close(fds[1]);
    long added = -1;
    if (read(fds[0], &added, sizeof added) != sizeof added) added = -1;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return added;
}
}  // namespace

// The tester's attack (issue #11, LiME): parsing 65,600 one-page LiME ranges walked their headers
// through the mapping and kept the whole file resident until open() released it: 275 MB peak
// against the ELF's 145 MB. The walk now drops what it has passed every 16 MiB.
TEST_CASE("layers: parsing a LiME file of one-page ranges does not keep the file resident") {
    char path[] = "/tmp/dm-layers-XXXXXX";
    write_one_page_lime(path, 0x8000000, 7);   // 128 MiB, 32,768 ranges
    const long added = peak_kib_added_by([&] {
        auto phys = PhysicalLayer::open(path);
        return phys->format() == DumpFormat::Lime && phys->runs().size() == 32768 && phys->present_bytes() == 0x8000000;
    });
    std::remove(path);
    REQUIRE(added >= 0);
    CHECK(added < 48 * 1024);   // was ≥ 128 MiB: every page of the file
}

// The tester's attack B4 (issue #11): a sparse raw file of 15 TiB apparent size holding 256 MiB
// peaked at 3.9 GB in the page-table walk, one alias-count byte per page of apparent size. The
// counts are now dense over the file's data only; pages in its holes are counted as mapped.
TEST_CASE("layers: the walk of a sparse raw file takes memory by its data, not its apparent size") {
    char path[] = "/tmp/dm-layers-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    const uint64_t apparent = uint64_t{4} << 40;   // 4 TiB: 1 GiB of counts the old way
    if (ftruncate(fd, static_cast<off_t>(apparent)) != 0) {
        close(fd);
        std::remove(path);
        WARN_MESSAGE(false, "this filesystem cannot hold a 4 TiB sparse file; not tested");
        return;
    }
    const Image img = build_x64_4level();   // 4 MiB; its direct map is a 1 GiB page at 0
    REQUIRE(pwrite(fd, img.bytes.data(), img.bytes.size(), 0) == static_cast<ssize_t>(img.bytes.size()));
    close(fd);
    const long added = peak_kib_added_by([&] {
        auto phys = PhysicalLayer::open(path, DumpFormat::Raw);
        TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
        uint64_t pages = 0;
        for (const VirtualRun& r : t.kernel_runs()) pages += r.size / 4096;
        // The 1 GiB page's 262,144 pages (in the data or the holes: all present), the kernel
        // image's 2 MiB page and the PT's six pages (0x10000.., 0x1000, and 0x10000000, a hole
        // here where the 4 MiB image lacks it) alias them.
        const auto st = t.walk_stats();
        return st.distinct_pages == 262144 && pages == 262144 + 512 + 6 && st.aliases_skipped == 0;
    });
    std::remove(path);
    REQUIRE(added >= 0);
    CHECK(added < 128 * 1024);   // was ≥ 1 GiB
}

TEST_CASE("layers: ELF64 core with holes and QEMU CPU notes") {
    Image mem = build_x64_4level();
    CpuNote cpu{0x80050033, 0x1000 | 0x5, 0x3406f0, true};   // PCID bits in CR3 are masked
    // Segment 2 starts after a 1 MiB hole at [1 MiB, 2 MiB).
    auto elf = to_elf(mem.bytes, {{0, 0x100000}, {0x200000, mem.bytes.size() - 0x200000}}, {cpu, cpu}, true);
    auto phys = PhysicalLayer::from_bytes(elf);
    CHECK(phys->format() == DumpFormat::Elf);
    REQUIRE(phys->runs().size() == 2);
    CHECK(phys->present_bytes() == mem.bytes.size() - 0x100000);
    CHECK(phys->find(0x100000, 1) == nullptr);
    CHECK(phys->find(0x1ff000, 4096) == nullptr);
    REQUIRE(phys->find(0x200000, 4) != nullptr);
    CHECK(std::memcmp(phys->find(0x200000, 64), mem.bytes.data() + 0x200000, 64) == 0);
    std::vector<uint8_t> across(32);
    CHECK_FALSE(phys->read(0x100000 - 16, across));   // runs into the hole
    REQUIRE(phys->cpus().size() == 2);
    CHECK(phys->cpus()[0].cr3 == 0x1005);
    CHECK(phys->cpus()[0].cr4 == 0x3406f0);
    CHECK(phys->cpus()[0].long_mode);

    auto t = TranslationLayer::detect(*phys);
    CHECK(t.mode() == PagingMode::X86_64_4Level);
    CHECK(t.dtb() == 0x1000);
    // The 1 GiB direct-map page skips the hole.
    CHECK(t.translate(0xffff800000000000ull + 0x100000) == std::nullopt);
    CHECK(t.translate(0xffff800000000000ull + 0x200010) == 0x200010u);
}

TEST_CASE("layers: ELF32 core and LA57 / PAE / 32-bit selection from CR4") {
    SUBCASE("ELF32, CR4.PAE") {
        Image mem = build_pae();
        auto elf = to_elf(mem.bytes, {{0, mem.bytes.size()}}, {{0x80000011, 0x1000, 0x20, false}}, false);
        auto phys = PhysicalLayer::from_bytes(elf);
        REQUIRE(phys->cpus().size() == 1);
        CHECK_FALSE(phys->cpus()[0].long_mode);
        auto t = TranslationLayer::detect(*phys);
        CHECK(t.mode() == PagingMode::X86_PAE);
        CHECK(t.word_size() == 4);
    }
    SUBCASE("ELF32, no PAE") {
        Image mem = build_x86_32();
        auto elf = to_elf(mem.bytes, {{0, mem.bytes.size()}}, {{0x80000011, 0x1000, 0x10, false}}, false);
        auto t = TranslationLayer::detect(*PhysicalLayer::from_bytes(elf));
        CHECK(t.mode() == PagingMode::X86_32);
    }
    SUBCASE("ELF64, CR4.LA57") {
        Image mem = build_x64_5level();
        auto elf = to_elf(mem.bytes, {{0, mem.bytes.size()}}, {{0x80050033, 0x1000, 0x1000 | 0x20, true}}, true);
        auto phys = PhysicalLayer::from_bytes(elf);
        auto t = TranslationLayer::detect(*phys);
        CHECK(t.mode() == PagingMode::X86_64_5Level);
        CHECK(t.translate(0xffffffff80000123ull) == 0x200123u);
    }
    SUBCASE("a vCPU with paging off is ignored in favour of the search") {
        Image mem = build_x64_4level();
        auto elf = to_elf(mem.bytes, {{0, mem.bytes.size()}}, {{0x11, 0, 0, true}}, true);
        auto t = TranslationLayer::detect(*PhysicalLayer::from_bytes(elf));
        CHECK(t.dtb() == 0x1000);
    }
}

TEST_CASE("layers: x86-64 4-level with 2 MiB, 1 GiB and 4 KiB pages") {
    Image mem = build_x64_4level();
    auto phys = PhysicalLayer::from_bytes(mem.bytes);
    TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
    CHECK(t.kernel_base() == 0xffff800000000000ull);
    CHECK(t.word_size() == 8);
    auto runs = runs_of(t);
    std::vector<VirtualRun> expect = {
        {0xffff800000000000ull, 0, mem.bytes.size()},                 // 1 GiB page, present part
        {0xffffffff80000000ull, 0x200000, 0x200000},                  // 2 MiB page, NX set
        {0xffffffff80200000ull, 0x10000, 0x4000},                     // four 4 KiB pages, merged
        {0xffffffff80205000ull, 0x1000, 0x1000},                      // the PML4 itself
    };
    CHECK(operator_eq(runs, expect));
    CHECK(t.translate(0xffffffff80000000ull + 0x1234) == 0x201234u);
    CHECK(t.translate(0xffffffff80201008ull) == 0x11008u);
    CHECK(t.translate(0xffffffff80206000ull) == std::nullopt);   // PTE points past the dump
    CHECK(t.translate(0xffffffff80207000ull) == std::nullopt);   // not present
    CHECK(t.translate(0x0000800000000000ull) == std::nullopt);   // non-canonical
    CHECK(t.translate(0xffff7fffffffffffull) == std::nullopt);   // non-canonical
    CHECK(t.translate(0x1000) == std::nullopt);                  // user half empty
    std::vector<uint8_t> buf(0x2000);
    REQUIRE(t.read_virtual(0xffffffff80200800ull, buf));        // crosses two 4 KiB pages
    CHECK(std::memcmp(buf.data(), mem.bytes.data() + 0x10800, buf.size()) == 0);
    CHECK_FALSE(t.read_virtual(0xffffffff80205800ull, buf));    // runs into an unmapped page
    auto st = t.walk_stats();
    CHECK(st.tables == 5);
    CHECK(st.loops == 0);

    SUBCASE("custom kernel base trims below it") {
        TranslationLayer k(*phys, PagingMode::X86_64_4Level, 0x1000, 0xffffffff80201000ull);
        auto r = runs_of(k);
        REQUIRE(r.size() == 2);
        CHECK(r[0].vaddr == 0xffffffff80201000ull);
        CHECK(r[0].paddr == 0x11000);
        CHECK(r[0].size == 0x3000);
    }
}

TEST_CASE("layers: large pages with reserved address bits are not mapped") {
    Image mem = build_x64_4level();
    // PD[2]: a 2 MiB page whose base has bit 13 set (reserved) → the CPU would fault.
    mem.put64(0x3000 + 2 * 8, 0x200000 | 0x2000 | 0x83);
    auto phys = PhysicalLayer::from_bytes(mem.bytes);
    TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
    CHECK(t.translate(0xffffffff80400000ull) == std::nullopt);
    CHECK(runs_of(t).size() == 4);
    CHECK(t.walk_stats().reserved == 1);
}

TEST_CASE("layers: x86-64 5-level") {
    Image mem = build_x64_5level();
    auto phys = PhysicalLayer::from_bytes(mem.bytes);
    TranslationLayer t(*phys, PagingMode::X86_64_5Level, 0x1000);
    CHECK(t.kernel_base() == 0xff00000000000000ull);
    std::vector<VirtualRun> expect = {
        {0xff00000000000000ull, 0, mem.bytes.size()},
        {0xffffffff80000000ull, 0x200000, 0x200000},
    };
    CHECK(operator_eq(runs_of(t), expect));
    CHECK(t.translate(0xff00000000001000ull) == 0x1000u);
    CHECK(t.translate(0xfeffffffffffffffull) == std::nullopt);   // non-canonical for 57 bits
    // The same image read with the 4-level table gives a different (wrong) view, not a crash.
    TranslationLayer four(*phys, PagingMode::X86_64_4Level, 0x1000);
    CHECK_FALSE(four.translate(0xff00000000001000ull).has_value());
}

TEST_CASE("layers: PAE with a 2 MiB page") {
    Image mem = build_pae();
    auto phys = PhysicalLayer::from_bytes(mem.bytes);
    TranslationLayer t(*phys, PagingMode::X86_PAE, 0x1000);
    CHECK(t.kernel_base() == 0xc0000000u);
    CHECK(t.word_size() == 4);
    std::vector<VirtualRun> expect = {
        {0xc0000000u, 0, 0x200000},
        {0xc0200000u, 0x5000, 0x1000},
    };
    CHECK(operator_eq(runs_of(t), expect));
    CHECK(t.translate(0xc0001234u) == 0x1234u);
    CHECK(t.translate(0x1000) == 0x7000u);   // user mapping through PDPT[0]
    CHECK(t.translate(0x1'0000'0000ull) == std::nullopt);   // beyond 32 bits
}

TEST_CASE("layers: 32-bit with a 4 MiB page and PSE-36") {
    Image mem = build_x86_32();
    auto phys = PhysicalLayer::from_bytes(mem.bytes);
    TranslationLayer t(*phys, PagingMode::X86_32, 0x1000);
    std::vector<VirtualRun> expect = {
        {0xc0000000u, 0, mem.bytes.size()},
        {0xc0400000u, 0x3000, 0x1000},
    };
    CHECK(operator_eq(runs_of(t), expect));
    CHECK(t.translate(0xc0012345u) == 0x12345u);
    CHECK(t.translate(0xc0400010u) == 0x3010u);
    CHECK(t.translate(0xc0800000u) == std::nullopt);   // PSE-36 page at 4 GiB: absent from dump
}

TEST_CASE("layers: raw, ELF and LiME copies give identical runs and bytes") {
    Image mem = build_x64_4level();
    auto raw = PhysicalLayer::from_bytes(mem.bytes);
    auto elf_bytes = to_elf(mem.bytes, {{0, 0x180000}, {0x180000, mem.bytes.size() - 0x180000}}, {}, true);
    auto elf32_bytes = to_elf(mem.bytes, {{0, 0x1000}, {0x1000, mem.bytes.size() - 0x1000}}, {}, false);
    auto lime_bytes = to_lime(mem.bytes, {0x3000, 0x200000});
    auto elf = PhysicalLayer::from_bytes(elf_bytes);
    auto elf32 = PhysicalLayer::from_bytes(elf32_bytes);
    auto lime = PhysicalLayer::from_bytes(lime_bytes);
    CHECK(lime->format() == DumpFormat::Lime);
    TranslationLayer a(*raw, PagingMode::X86_64_4Level, 0x1000);
    for (const PhysicalLayer* p : {elf.get(), elf32.get(), lime.get()}) {
        CHECK(p->present_bytes() == mem.bytes.size());
        TranslationLayer b(*p, PagingMode::X86_64_4Level, 0x1000);
        CHECK(operator_eq(runs_of(a), runs_of(b)));
        for (const auto& r : a.kernel_runs()) {
            std::vector<uint8_t> x(r.size), y(r.size);
            REQUIRE(a.read_virtual(r.vaddr, x));
            REQUIRE(b.read_virtual(r.vaddr, y));
            CHECK(x == y);
        }
        auto d = TranslationLayer::detect(*p);
        CHECK(d.dtb() == 0x1000);
    }
}

TEST_CASE("layers: malformed ELF files are FormatErrors with offsets") {
    Image mem(0x4000);
    auto good = to_elf(mem.bytes, {{0, mem.bytes.size()}}, {{0x80000011, 0x1000, 0, true}}, true);
    REQUIRE_NOTHROW(PhysicalLayer::from_bytes(good));

    SUBCASE("truncated header") {
        std::vector<uint8_t> b(good.begin(), good.begin() + 40);
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b); }) == 0);
    }
    SUBCASE("program headers past EOF") {
        auto b = good;
        put_le(b, 32, 8, b.size() - 10);   // e_phoff
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b); }) == 32);
    }
    SUBCASE("e_phoff overflowing 2^64") {
        auto b = good;
        put_le(b, 32, 8, ~uint64_t{0} - 8);
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(b), FormatError);
    }
    SUBCASE("segment past EOF") {
        auto b = good;
        uint64_t ph1 = 64 + 56;   // second program header: the PT_LOAD
        put_le(b, ph1 + 32, 8, b.size());   // p_filesz
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b); }) == ph1);
    }
    SUBCASE("segment offset near 2^64") {
        auto b = good;
        put_le(b, 64 + 56 + 8, 8, ~uint64_t{0} - 100);
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(b), FormatError);
    }
    SUBCASE("truncated file cuts the segment: refused when strict, else clipped with a warning") {
        std::vector<uint8_t> b(good.begin(), good.end() - 1);
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b, DumpFormat::Auto, true); }) == 64 + 56);
        auto p = PhysicalLayer::from_bytes(b);
        CHECK(p->present_bytes() == mem.bytes.size() - 1);
        CHECK(p->warnings().size() == 1);
    }
    SUBCASE("note descriptor past its segment") {
        auto b = good;
        auto off = read_le(b, 64 + 8, 8);   // PT_NOTE's p_offset: the first (CORE) note
        put_le(b, off + 4, 4, 0x7fffffff);
        // Refused when strict; else skipped with a warning naming them, as a kdump file's notes
        // (tester 8, F6: kdump notes too big were refused, an ELF core's only warned).
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(b, DumpFormat::Auto, true), FormatError);
        auto p = PhysicalLayer::from_bytes(b);
        CHECK(p->cpus().empty());
        CHECK(p->present_bytes() == mem.bytes.size());
        REQUIRE(p->warnings().size() == 1);
        CHECK(p->warnings()[0].find("ELF core: the notes of program header 0 (PT_NOTE, p_offset " + hex(off)) == 0);
        CHECK(p->warnings()[0].find("n_descsz 2147483647 runs past its segment") != std::string::npos);
        CHECK(p->warnings()[0].find("they are skipped, so the page-table root is searched for") != std::string::npos);
    }
    SUBCASE("short QEMU note") {
        auto b = good;
        auto off = read_le(b, 64 + 8, 8) + kCoreNoteSize;   // the QEMU note follows the CORE note
        REQUIRE(read_le(b, off + 12, 4) == 0x554d4551);        // "QEMU"
        put_le(b, off + 4, 4, 100);   // descsz < 432, still inside the segment
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(b, DumpFormat::Auto, true), FormatError);
        auto p = PhysicalLayer::from_bytes(b);
        CHECK(p->cpus().empty());
        REQUIRE(p->warnings().size() == 1);
        CHECK(p->warnings()[0].find("QEMU CPU note n_descsz 100") != std::string::npos);
    }
    SUBCASE("not a core file / wrong machine / big endian") {
        auto b = good;
        put_le(b, 16, 2, 2);   // ET_EXEC
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b); }) == 16);
        b = good;
        put_le(b, 18, 2, 183);   // EM_AARCH64
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b); }) == 18);
        b = good;
        b[5] = 2;
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b); }) == 5);
    }
    SUBCASE("overlapping segments: identical copies merge, different ones are an error") {
        Image pat(0x4000);
        pat.pattern(0, 0x4000, 9);
        auto b = to_elf(pat.bytes, {{0, 0x2000}, {0x1000, 0x2000}, {0x1000, 0x800}}, {}, true);
        auto phys = PhysicalLayer::from_bytes(b);
        REQUIRE(phys->runs().size() == 2);   // [0,0x2000) + the tail [0x2000,0x3000) elsewhere in the file
        CHECK(phys->present_bytes() == 0x3000);
        CHECK(phys->find(0x1800, 0x1000) == nullptr);   // straddles the two runs
        std::vector<uint8_t> out(0x1000);
        REQUIRE(phys->read(0x1800, out));
        CHECK(std::memcmp(out.data(), pat.bytes.data() + 0x1800, 0x1000) == 0);
        uint64_t second = read_le(b, 64 + 56 + 8, 8);   // p_offset of the second PT_LOAD
        b[second + 0x10] ^= 1;
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b); }) == second);
    }
    SUBCASE("garbage forced as ELF, ELF magic with garbage after") {
        std::vector<uint8_t> g(200, 0xa5);
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(g, DumpFormat::Elf); }) == 0);
        g[0] = 0x7f; g[1] = 'E'; g[2] = 'L'; g[3] = 'F';
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(g), FormatError);
    }
}

TEST_CASE("layers: PN_XNUM program-header count from section 0") {
    Image mem(0x3000);
    auto b = to_elf(mem.bytes, {{0, 0x1000}, {0x2000, 0x1000}}, {}, true, /*xnum=*/true);
    auto phys = PhysicalLayer::from_bytes(b);
    CHECK(phys->runs().size() == 2);
    CHECK(phys->present_bytes() == 0x2000);
}

TEST_CASE("layers: malformed LiME files") {
    Image mem(0x3000);
    auto good = to_lime(mem.bytes, {0x1000});
    REQUIRE(PhysicalLayer::from_bytes(good)->runs().size() == 2);   // headers split the file
    SUBCASE("truncated header") {
        std::vector<uint8_t> b(good.begin(), good.begin() + 20);
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b); }) == 0);
    }
    SUBCASE("range past EOF: refused when strict, else clipped with a warning") {
        std::vector<uint8_t> b(good.begin(), good.end() - 1);
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b, DumpFormat::Auto, true); }) == 32 + 0x1000 + 8);
        auto p = PhysicalLayer::from_bytes(b);
        CHECK(p->present_bytes() == 0x3000 - 1);
        CHECK(p->warnings().size() == 1);
    }
    SUBCASE("end below start, whole 2^64, bad version, bad magic in the second header") {
        auto b = good;
        put_le(b, 16, 8, 0);
        put_le(b, 8, 8, 5);
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b); }) == 16);
        b = good;
        put_le(b, 8, 8, 0);
        put_le(b, 16, 8, ~uint64_t{0});
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(b), FormatError);
        b = good;
        put_le(b, 4, 4, 2);
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b); }) == 4);
        b = good;
        put_le(b, 32 + 0x1000, 4, 0x12345678);
        CHECK(format_error_offset([&] { PhysicalLayer::from_bytes(b); }) == 32 + 0x1000);
    }
    SUBCASE("a range beyond the 52-bit physical address space (fuzz_lime found it hanging the search)") {
        std::vector<uint8_t> b(33, 0);
        put_le(b, 0, 4, 0x4C694D45u);
        put_le(b, 4, 4, 1);
        put_le(b, 8, 8, 0xffffffffffffff00ull);
        put_le(b, 16, 8, 0xffffffffffffff00ull);
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(b), FormatError);
        put_le(b, 8, 8, uint64_t{1} << 52);
        put_le(b, 16, 8, uint64_t{1} << 52);
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(b), FormatError);
        put_le(b, 8, 8, (uint64_t{1} << 52) - 1);
        put_le(b, 16, 8, (uint64_t{1} << 52) - 1);
        CHECK(PhysicalLayer::from_bytes(b)->runs().size() == 1);
    }
    SUBCASE("overlapping ranges with different contents") {
        Image pat(0x3000);
        pat.pattern(0, 0x3000, 7);
        auto b = to_lime(pat.bytes, {0x1000});
        put_le(b, 32 + 0x1000 + 8, 8, 0x801);   // second range starts inside the first
        put_le(b, 32 + 0x1000 + 16, 8, 0x801 + 0x2000 - 1);
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(b), FormatError);
    }
}

TEST_CASE("layers: page-table loops and sharing are bounded") {
    SUBCASE("a PML4 whose kernel half points to itself maps nothing: typed error") {
        Image mem(0x10000);
        for (int i = 256; i < 512; ++i) mem.put64(0x1000 + 8 * i, 0x1000 | 0x3);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
        CHECK(t.kernel_runs().empty());
        CHECK(t.walk_stats().loops == 256);
        CHECK(t.translate(0xffff800000000000ull) == std::nullopt);
        CHECK_THROWS_AS(TranslationLayer::detect(*phys, 0x1000, PagingMode::X86_64_4Level), InputError);
    }
    SUBCASE("a loop to an ancestor next to real mappings is skipped") {
        Image mem = build_x64_4level();
        mem.put64(0x3000 + 5 * 8, 0x1000 | 0x3);   // PD[5] → PML4 (ancestor)
        mem.put64(0x4000 + 8 * 8, 0x4000 | 0x3);   // PT[8] → itself: a legal leaf (maps the PT page)
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
        CHECK(t.walk_stats().loops == 1);
        CHECK(runs_of(t).size() == 5);
        CHECK(t.translate(0xffffffff80a00000ull) == std::nullopt);
        CHECK(t.translate(0xffffffff80208000ull) == 0x4000u);
    }
    SUBCASE("shared tables multiplying work are walked at most 4 times each") {
        Image mem(0x10000);
        for (int i = 256; i < 512; ++i) mem.put64(0x1000 + 8 * i, 0x2000 | 0x3);
        for (int i = 0; i < 512; ++i) mem.put64(0x2000 + 8 * i, 0x3000 | 0x3);
        for (int i = 0; i < 512; ++i) mem.put64(0x3000 + 8 * i, 0x4000 | 0x3);
        for (int i = 0; i < 512; ++i) mem.put64(0x4000 + 8 * i, 0x5000 | 0x3);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
        // 256 × 512³ claimed mappings of page 0x5000: the four lowest are kept.
        auto r = t.kernel_runs();
        REQUIRE(r.size() == 4);
        for (uint64_t i = 0; i < 4; ++i) {
            CHECK(r[i].vaddr == 0xffff800000000000ull + i * 4096);
            CHECK(r[i].paddr == 0x5000);
            CHECK(r[i].size == 4096);
        }
        CHECK(t.walk_stats().tables <= 16);
        CHECK(t.walk_stats().aliases_skipped > 0);
        CHECK(t.translate(0xffff800000000000ull) == 0x5000u);   // single walks still work
    }
}

TEST_CASE("layers: bad roots are InputErrors") {
    Image mem(0x10000);
    auto phys = PhysicalLayer::from_bytes(mem.bytes);
    CHECK_THROWS_AS(TranslationLayer(*phys, PagingMode::X86_64_4Level, 0x20000), InputError);   // not in dump
    CHECK_THROWS_AS(TranslationLayer(*phys, PagingMode::X86_32, 0x1'0000'1000ull), InputError);   // > 32 bits
    CHECK_THROWS_AS(TranslationLayer::detect(*phys, 0x1000), InputError);   // maps nothing
    CHECK_THROWS_AS(TranslationLayer::detect(*phys), InputError);           // nothing to find
    std::vector<uint8_t> garbage(0x40000);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (auto& b : garbage) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; b = static_cast<uint8_t>(x); }
    auto g = PhysicalLayer::from_bytes(garbage, DumpFormat::Raw);
    CHECK_THROWS_AS(TranslationLayer::detect(*g), InputError);
}

TEST_CASE("layers: DTB search finds the root in hand-built raw images") {
    SUBCASE("x86-64 4-level, swapper preferred over a process PGD") {
        Image mem = build_x64_4level();
        // A process PGD at 0x8000 sharing the kernel half, with one user entry.
        std::memcpy(mem.bytes.data() + 0x8000 + 2048, mem.bytes.data() + 0x1000 + 2048, 2048);
        mem.put64(0x8000, 0x9000 | 0x67);
        mem.put64(0x9000, 0xa000 | 0x67);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        auto t = TranslationLayer::detect(*phys);
        CHECK(t.mode() == PagingMode::X86_64_4Level);
        CHECK(t.dtb() == 0x1000);
        // A stale copy of swapper at a lower address (say, a freed PGD) is not mapped by the
        // kernel-image mapping (0xffffffff80000000..), swapper is (PT[5] maps 0x1000).
        std::memcpy(mem.bytes.data(), mem.bytes.data() + 0x1000, 4096);
        auto phys0 = PhysicalLayer::from_bytes(mem.bytes);
        CHECK(TranslationLayer::detect(*phys0).dtb() == 0x1000);
        // A PGD is as good as swapper for kernel addresses.
        TranslationLayer p(*phys, PagingMode::X86_64_4Level, 0x8000);
        CHECK(operator_eq(runs_of(t), runs_of(p)));
    }
    SUBCASE("x86-64 5-level") {
        Image mem = build_x64_5level();
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        auto t = TranslationLayer::detect(*phys, {}, PagingMode::X86_64_5Level);
        CHECK(t.dtb() == 0x1000);
        // Without --paging the 4-level reading of the PML5 also "works" but maps fewer pages.
        auto a = TranslationLayer::detect(*phys);
        CHECK(a.mode() == PagingMode::X86_64_5Level);
        CHECK(a.dtb() == 0x1000);
    }
    SUBCASE("PAE") {
        Image mem = build_pae();
        auto t = TranslationLayer::detect(*PhysicalLayer::from_bytes(mem.bytes));
        CHECK(t.mode() == PagingMode::X86_PAE);
        CHECK(t.dtb() == 0x1000);
    }
    SUBCASE("32-bit") {
        Image mem = build_x86_32();
        auto t = TranslationLayer::detect(*PhysicalLayer::from_bytes(mem.bytes));
        CHECK(t.mode() == PagingMode::X86_32);
        CHECK(t.dtb() == 0x1000);
    }
    SUBCASE("--dtb without --paging picks the scheme that maps most") {
        Image mem = build_pae();
        auto t = TranslationLayer::detect(*PhysicalLayer::from_bytes(mem.bytes), 0x1000);
        CHECK(t.mode() == PagingMode::X86_PAE);
    }
}

TEST_CASE("layers: note CR3 edge cases — KPTI user copy, corrupt CR3, search() ignores notes") {
    Image mem = build_x64_4level();
    // Kernel PGD at 0x8000 (8 KiB aligned, as with KPTI) and its user copy at 0x9000 whose kernel
    // half only keeps the entry-text mapping (PML4[511]).
    std::memcpy(mem.bytes.data() + 0x8000, mem.bytes.data() + 0x1000, 4096);
    mem.put64(0x9000 + 511 * 8, read_le(mem.bytes, 0x1000 + 511 * 8, 8));
    SUBCASE("user CR3 → kernel PGD") {
        auto elf = to_elf(mem.bytes, {{0, mem.bytes.size()}}, {{0x80050033, 0x9000, 0x6f0, true}}, true);
        auto t = TranslationLayer::detect(*PhysicalLayer::from_bytes(elf));
        CHECK(t.dtb() == 0x8000);
    }
    SUBCASE("CR3 pointing at zeros falls back to the search") {
        auto elf = to_elf(mem.bytes, {{0, mem.bytes.size()}}, {{0x80050033, 0x300000, 0x6f0, true}}, true);
        auto phys = PhysicalLayer::from_bytes(elf);
        auto t = TranslationLayer::detect(*phys);
        CHECK(t.dtb() == 0x1000);
        // The note's root was set aside: said once, with the note's error and the root used.
        REQUIRE(t.warnings().size() == 1);
        CHECK(t.warnings()[0].find("CR3 from the ELF note: page-table root 0x300000") != std::string::npos);
        CHECK(t.warnings()[0].find("search found instead, 0x1000 (x64)") != std::string::npos);
        CHECK(TranslationLayer::search(*phys).dtb() == 0x1000);
        CHECK(TranslationLayer::search(*phys).warnings().empty());
        // --dtb wins over the note.
        CHECK(TranslationLayer::detect(*phys, 0x8000).dtb() == 0x8000);
    }
    SUBCASE("note CR3 and search agree page for page") {
        auto elf = to_elf(mem.bytes, {{0, mem.bytes.size()}}, {{0x80050033, 0x8000, 0x6f0, true}}, true);
        auto phys = PhysicalLayer::from_bytes(elf);
        auto a = TranslationLayer::detect(*phys);
        auto b = TranslationLayer::search(*phys);
        CHECK(a.dtb() == 0x8000);
        CHECK(b.dtb() == 0x1000);   // lowest address among identical roots
        CHECK(operator_eq(runs_of(a), runs_of(b)));
    }
}

TEST_CASE("layers: page-table pages absent from the dump are counted and said, whatever the thread count") {
    // build_x64_4level without the page directory at 0x3000 (PDPT[510] → PD, the kernel image's
    // 1 GiB) and, beyond the dump's end, the PDPT of a second PML4 entry: what a corrupt kdump
    // page or a cut dump does to the direct map's tables.
    Image mem = build_x64_4level();
    mem.put64(0x1000 + 300 * 8, 0x7000000 | P | RW);   // PML4[300] → PDPT at 112 MiB, past the 4 MiB end
    auto lime = to_lime_ranges(mem.bytes, {{0, 0x3000}, {0x4000, mem.bytes.size() - 0x4000}});
    auto phys = PhysicalLayer::from_bytes(lime);
    std::vector<std::string> seen;
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        omp_set_num_threads(threads);
        TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
        const auto st = t.walk_stats();
        CHECK(st.absent_tables == 2);
        CHECK(st.absent_table_pages == 2);
        CHECK(st.absent_bytes == (uint64_t{1} << 30) + (uint64_t{1} << 39));   // one PDPT entry + one PML4 entry
        CHECK(!st.absent_pages_capped);
        const auto sample = t.absent_table_sample();
        REQUIRE(sample.size() == 2);
        CHECK(sample[0] == 0x3000);
        CHECK(sample[1] == 0x7000000);
        const auto w = t.warnings();
        REQUIRE(w.size() == 1);
        CAPTURE(w[0]);
        CHECK(w[0].find("translation: 2 page-table pages are not in the dump (paddrs 0x3000, 0x7000000)") == 0);
        CHECK(w[0].find("up to 513 GiB of kernel address space they map cannot be read") != std::string::npos);
        // The kernel image's 2 MiB page under the lost directory is gone; the direct map stays.
        CHECK(!t.translate(0xffffffff80000000ull));
        CHECK(t.translate(0xffff800000003000ull) == std::nullopt);   // the lost page itself
        CHECK(t.translate(0xffff800000010000ull) == 0x10000u);
        seen.push_back(w[0]);
    }
    omp_set_num_threads(omp_get_num_procs());
    CHECK(seen[0] == seen[1]);
    SUBCASE("one table page beyond the end: said as a cut") {
        Image m2 = build_x64_4level();
        m2.put64(0x1000 + 300 * 8, 0x7000000 | P | RW);
        auto p2 = PhysicalLayer::from_bytes(m2.bytes);
        TranslationLayer t(*p2, PagingMode::X86_64_4Level, 0x1000);
        REQUIRE(t.warnings().size() == 1);
        CAPTURE(t.warnings()[0]);
        CHECK(t.warnings()[0].find("1 page-table page is not in the dump (paddr 0x7000000), it lies beyond its end at 0x400000") !=
              std::string::npos);
        CHECK(t.warnings()[0].find("up to 512 GiB") != std::string::npos);
    }
    SUBCASE("a complete image says nothing") {
        Image m3 = build_x64_4level();
        auto p3 = PhysicalLayer::from_bytes(m3.bytes);
        CHECK(TranslationLayer(*p3, PagingMode::X86_64_4Level, 0x1000).warnings().empty());
    }
}

TEST_CASE("layers: a dump that cannot be mapped under ulimit -v says what it needs against the limit") {
    const std::string path = "/tmp/dm-layers-big-" + std::to_string(::getpid()) + ".raw";
    {
        std::ofstream(path, std::ios::binary).put('\1');
    }
    REQUIRE(::truncate(path.c_str(), off_t{4} << 30) == 0);   // 4 GiB, sparse
    struct rlimit saved {};
    REQUIRE(::getrlimit(RLIMIT_AS, &saved) == 0);
    struct rlimit tight = saved;
    tight.rlim_cur = uint64_t{2} << 30;   // below the mapping alone
    if (saved.rlim_max != RLIM_INFINITY && tight.rlim_cur > saved.rlim_max) tight.rlim_cur = saved.rlim_max;
    REQUIRE(::setrlimit(RLIMIT_AS, &tight) == 0);
    std::string m;
    try {
        MappedFile f(path);
    } catch (const InputError& e) {
        m = e.what();
    }
    ::setrlimit(RLIMIT_AS, &saved);
    std::remove(path.c_str());
    CAPTURE(m);
    CHECK(m.find("cannot mmap " + path + ": ") == 0);
    CHECK(m.find("the mapping needs 4 GiB of address space; RLIMIT_AS (ulimit -v) is 2 GiB for the whole process") !=
          std::string::npos);
}

TEST_CASE("layers: pages split across ranges at non-contiguous offsets read like any page (attack 8, F5)") {
    const Image mem = build_x64_4level();
    auto whole = PhysicalLayer::from_bytes(mem.bytes);
    const TranslationLayer reference(*whole, PagingMode::X86_64_4Level, 0x1000);
    auto same_kernel = [&](const TranslationLayer& t) { return operator_eq(runs_of(t), runs_of(reference)); };
    auto reads_back = [&](const PhysicalLayer& p) {
        for (uint64_t a = 0; a < mem.bytes.size(); a += 4096) {
            const uint8_t* q = p.find(a, 4096);
            if (!q || std::memcmp(q, mem.bytes.data() + a, 4096) != 0) return false;
        }
        return true;
    };
    SUBCASE("LiME, one range per 2 KiB half page (lime.py half): every page, the root search") {
        std::vector<std::pair<uint64_t, uint64_t>> halves;
        for (uint64_t a = 0; a < mem.bytes.size(); a += 2048) halves.push_back({a, 2048});
        auto lime = to_lime_ranges(mem.bytes, halves);
        auto phys = PhysicalLayer::from_bytes(lime);
        CHECK(phys->assembled_pages() == mem.bytes.size() / 4096);
        CHECK(phys->present_bytes() == mem.bytes.size());
        CHECK(reads_back(*phys));
        CHECK(phys->runs().size() == 1);   // consecutive assembled pages: one run
        // Only the non-zero pages are data (zero pages read as zeros without being stored).
        uint64_t data = 0;
        for (const auto& r : phys->data_runs()) data += r.size;
        CHECK(data > 0);
        CHECK(data < mem.bytes.size());
        auto t = TranslationLayer::search(*phys);
        CHECK(t.dtb() == 0x1000);
        CHECK(same_kernel(t));
    }
    SUBCASE("ELF core, PT_LOADs split mid-page at the PML4 with the parts apart in the file (elfsplit.py)") {
        // The second half first: the PML4's two halves lie at non-contiguous file offsets.
        auto elf = to_elf(mem.bytes, {{0x1800, mem.bytes.size() - 0x1800}, {0, 0x1800}}, {{0x80050033, 0x1000, 0x3406f0, true}}, true);
        auto phys = PhysicalLayer::from_bytes(elf);
        CHECK(phys->assembled_pages() == 1);
        CHECK(reads_back(*phys));
        auto t = TranslationLayer::detect(*phys);
        CHECK(t.dtb() == 0x1000);   // the note's root, no longer "not in the dump"
        CHECK(t.warnings().empty());
        CHECK(same_kernel(t));
    }
    SUBCASE("only the page-table pages split (lime.py splitpt), and a page whose halves come in reverse order") {
        std::vector<std::pair<uint64_t, uint64_t>> ranges;
        uint64_t at = 0;
        for (uint64_t page : {0x1000u, 0x2000u, 0x3000u, 0x4000u, 0x5000u}) {
            if (page > at) ranges.push_back({at, page - at});
            ranges.push_back({page, 2048});
            ranges.push_back({page + 2048, 2048});
            at = page + 4096;
        }
        ranges.push_back({at, mem.bytes.size() - at});
        std::swap(ranges[1], ranges[2]);   // the PML4's second half before its first
        const auto lime = to_lime_ranges(mem.bytes, ranges);   // outlives the layer
        auto phys = PhysicalLayer::from_bytes(lime);
        CHECK(phys->assembled_pages() == 5);
        CHECK(reads_back(*phys));
        auto t = TranslationLayer::search(*phys);
        CHECK(t.dtb() == 0x1000);
        CHECK(same_kernel(t));
    }
    SUBCASE("a page half present stays absent; one-byte ranges assemble only the whole pages") {
        std::vector<std::pair<uint64_t, uint64_t>> ranges;
        for (uint64_t a = 0; a < 0x2000; ++a) ranges.push_back({a, 1});   // pages 0 and 1, byte by byte
        ranges.push_back({0x2000, 2048});                                 // half of page 2
        ranges.push_back({0x3000, 4096});                                 // page 3, whole
        const auto lime = to_lime_ranges(mem.bytes, ranges);
        auto phys = PhysicalLayer::from_bytes(lime);
        CHECK(phys->assembled_pages() == 2);
        CHECK(phys->find(0x0, 4096) != nullptr);
        CHECK(std::memcmp(phys->find(0x1000, 4096), mem.bytes.data() + 0x1000, 4096) == 0);
        CHECK(phys->find(0x2000, 4096) == nullptr);
        CHECK(phys->find(0x2000, 2048) != nullptr);
        CHECK(std::memcmp(phys->find(0x3000, 4096), mem.bytes.data() + 0x3000, 4096) == 0);
        CHECK(phys->present_bytes() == 0x2000 + 2048 + 4096);
    }
}
