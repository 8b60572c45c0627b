// The kernel banner (graph/kernel_banner.hpp): its shape, the search that prefers the kernel
// image over copies elsewhere (decoys, truncated copies), the fallback physical scan, and the
// banner's trip through the .dmg file.
#include "graph_fixtures.hpp"
#include "layer_images.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <unistd.h>

using namespace deepmem;
using namespace deepmem::test;

namespace {

const std::string kDebian61 =
    "Linux version 6.1.0-47-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, "
    "GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2025-11-05)";
const std::string kDebianRt =
    "Linux version 6.1.0-57-rt-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, "
    "GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_RT Debian 6.1.180-1 (2026-01-10)";
const std::string kOld =   // before 5.8: "gcc version"
    "Linux version 4.19.0-27-amd64 (debian-kernel@lists.debian.org) (gcc version 8.3.0 (Debian 8.3.0-6)) "
    "#1 SMP Debian 4.19.316-1 (2024-06-25)";

// The banner of init/version.c in 6.1+, compiled before the build number is known: "# SMP …".
std::string placeholder(const std::string& banner) {
    std::string s = banner;
    s.erase(s.find(" #") + 2, 1);
    return s;
}

void put(Memory& m, uint64_t paddr, const std::string& s) { std::memcpy(&m.image[paddr], s.data(), s.size()); }

constexpr uint64_t kImage = 0xffffffff80000000ull;

}  // namespace

TEST_CASE("graph: kernel banner shape") {
    auto b = KernelBanner::parse(kDebian61 + "\n" + std::string("\0junk", 5));
    REQUIRE(b.has_value());
    CHECK(b->text == kDebian61);
    CHECK(b->release == "6.1.0-47-amd64");
    CHECK(b->builder == "debian-kernel@lists.debian.org");
    CHECK(b->compiler == "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40");
    CHECK(b->version == "#1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2025-11-05)");
    auto old = KernelBanner::parse(kOld + "\n");
    REQUIRE(old.has_value());
    CHECK(old->release == "4.19.0-27-amd64");
    CHECK(old->compiler == "gcc version 8.3.0 (Debian 8.3.0-6)");

    CHECK_FALSE(KernelBanner::parse(kDebian61));                                   // cut before its newline
    CHECK_FALSE(KernelBanner::parse(kDebian61.substr(0, 60)));                     // cut mid-way
    CHECK_FALSE(KernelBanner::parse("%s version %s (debian-kernel@lists.debian.org) (gcc) %s\n"));   // linux_proc_banner
    CHECK_FALSE(KernelBanner::parse("Linux version %s (x@y) (gcc) #1\n"));        // a format string
    CHECK_FALSE(KernelBanner::parse("Linux version 6.1.0 (x@y) (gcc #1 SMP\n"));  // unbalanced
    CHECK_FALSE(KernelBanner::parse("Linux version 6.1.0 (x@y) (gcc) 1 SMP\n"));  // no '#'
    CHECK_FALSE(KernelBanner::parse("Linux version 6.1.0 (x@y) #1 SMP\n"));       // no compiler
    CHECK_FALSE(KernelBanner::parse("Linux version 6.1.0 () (gcc) #1 SMP\n"));    // empty builder
    CHECK_FALSE(KernelBanner::parse("Linux version v6.1 (x@y) (gcc) #1 SMP\n"));  // release not a number
    CHECK_FALSE(KernelBanner::parse("Linux version 6.1.0 (x@y) (gcc\x01) #1 SMP\n"));
    CHECK_FALSE(KernelBanner::parse("Linux version " + std::string(65, '6') + " (x@y) (gcc) #1 SMP\n"));
    CHECK_FALSE(KernelBanner::parse("Linux version 6.1.0 (x@y) (" + std::string(600, 'g') + ") #1 SMP\n"));
    CHECK(KernelBanner::parse("Linux version 6.1.0 (x@y) (gcc) #1 SMP\n").has_value());
    CHECK(b->numbered());
    auto weak = KernelBanner::parse(placeholder(kDebian61) + "\n");
    REQUIRE(weak.has_value());
    CHECK(weak->version == "# SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2025-11-05)");
    CHECK_FALSE(weak->numbered());
}

TEST_CASE("graph: kernel version and flavour of a release") {
    CHECK(kernel_version_of("6.1.0-47-amd64") == "6.1");
    CHECK(kernel_version_of("6.12.11+deb12-amd64") == "6.12");
    CHECK(kernel_version_of("5.10.0-46-amd64") == "5.10");
    CHECK(kernel_version_of("6-amd64") == "");
    CHECK(kernel_version_of("") == "");
    CHECK(kernel_flavour_of("6.1.0-47-amd64") == "amd64");
    CHECK(kernel_flavour_of("6.1.0-57-rt-amd64") == "rt-amd64");
    CHECK(kernel_flavour_of("6.1.0-47-cloud-amd64") == "cloud-amd64");
    CHECK(kernel_flavour_of("6.12.11+deb12-amd64") == "amd64");
    CHECK(kernel_flavour_of("6.1.0") == "");
    CHECK(kernel_flavour_of("6.1.0-47") == "");   // an ABI alone
    // Debian's i386 flavours start with a digit: the part after the ABI is the flavour all the same.
    CHECK(kernel_flavour_of("6.1.0-50-686-pae") == "686-pae");
    CHECK(kernel_flavour_of("6.1.0-50-686") == "686");
    CHECK(kernel_flavour_of("6.1.0-0.deb11.50-686-pae") == "686-pae");
    CHECK(kernel_flavour_of("6.1.0-57-rt-686-pae") == "rt-686-pae");
    // the banner's flavour: the release's and UTS_VERSION's PREEMPT_RT must agree
    auto flavour = [](const std::string& release, const std::string& version) {
        auto b = KernelBanner::parse("Linux version " + release + " (b@h) (gcc 12) " + version + "\n");
        REQUIRE(b.has_value());
        return kernel_flavour_of(*b);
    };
    CHECK(flavour("6.1.0-57-rt-amd64", "#1 SMP PREEMPT_RT Debian 6.1.192-3") == "rt-amd64");
    CHECK(flavour("6.1.0-57-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3") == "amd64");
    CHECK(flavour("5.10.0-46-amd64", "#1 SMP Debian 5.10.262-1") == "amd64");
    CHECK(flavour("6.1.33-rt11", "#1 SMP PREEMPT_RT") == "rt11");                          // upstream's rt release
    CHECK(flavour("6.1.0-57-rt-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3") == "");  // edited release
    CHECK(flavour("6.1.0-57-amd64", "#1 SMP PREEMPT_RT DYNA Debian 6.1.192-3") == "");     // edited version
    CHECK(flavour("6.1.0-57-cloud-amd64", "#1 SMP PREEMPT_RTX") == "cloud-amd64");         // not the word
    CHECK(flavour("6.1.0-57-rtx-amd64", "#1 SMP") == "rtx-amd64");                          // not an rt part
}

TEST_CASE("graph: the banner in the kernel image wins over decoys and truncated copies") {
    // 16 pages: direct map of all of them, the kernel image at 0xffffffff80000000 → pages 8..15.
    Memory m(16);
    m.map(K64, 0, 16 * 4096);
    m.map(kImage, 8 * 4096, 8 * 4096);
    put(m, 1 * 4096 + 100, kDebianRt + "\n");          // decoy, twice, outside the image (a process's copy)
    put(m, 2 * 4096 + 100, kDebianRt + "\n");
    put(m, 8 * 4096 + 10, kDebian61.substr(0, 50));    // malformed copy at the image's lowest address
    put(m, 8 * 4096 + 200, placeholder(kDebian61) + "\n");   // 6.1+'s __weak placeholder: no build number
    put(m, 9 * 4096 + 4000, kDebian61 + "\n");         // the real one, across a page boundary
    put(m, 11 * 4096, kDebian61);                      // the printk copy: no newline
    auto phys = m.phys();
    auto found = find_kernel_banner(*phys, m.runs, 8);
    REQUIRE(found.has_value());
    CHECK(found->banner.text == kDebian61);
    CHECK(found->paddr == 9 * 4096 + 4000);
    CHECK(found->vaddr == kImage + 1 * 4096 + 4000);
    CHECK(found->in_kernel_image());

    SUBCASE("without the image mapping, the copy seen most often, marked as outside the image") {
        m.runs = {{K64, 0, 16 * 4096}};
        auto p = m.phys();
        auto f = find_kernel_banner(*p, m.runs, 8);
        REQUIRE(f.has_value());
        CHECK(f->banner.release == "6.1.0-57-rt-amd64");
        CHECK(f->paddr == 1 * 4096 + 100);
        CHECK_FALSE(f->in_kernel_image());
    }
    SUBCASE("a placeholder alone is still a banner") {
        Memory p(4);
        p.map(K64, 0, 4 * 4096);
        p.map(kImage, 0, 4 * 4096);
        put(p, 4096, placeholder(kDebian61) + "\n");
        auto ph = p.phys();
        auto f = find_kernel_banner(*ph, p.runs, 8);
        REQUIRE(f.has_value());
        CHECK_FALSE(f->banner.numbered());
    }
    SUBCASE("no translation at all: still found physically") {
        auto f = find_kernel_banner(*phys, {}, 8);
        REQUIRE(f.has_value());
        CHECK(f->banner.release == "6.1.0-57-rt-amd64");
    }
}

TEST_CASE("graph: the image window's memory is searched once however often it is mapped; junk lines do not hide the banner") {
    // attacker 107: lines nesting the prefix (a prefix every 17 bytes), or one prefix a line
    const std::string nested = [] {
        std::string l;
        for (int i = 0; i < 27; ++i) l += "Linux version 1 (";
        l += "x";
        for (int i = 0; i < 27; ++i) l += ")";
        return l + " #1\n";
    }();
    auto junk = [&](Memory& m, uint64_t page, const std::string& line) {
        for (uint64_t at = 0; at + line.size() <= 4096; at += line.size()) put(m, page * 4096 + at, line);
    };
    SUBCASE("a junk page mapped 2,000 times before the banner: the image's banner found") {
        Memory m(4);
        junk(m, 1, nested);
        put(m, 2 * 4096 + 8, kDebian61 + "\n");
        for (uint64_t i = 0; i < 2000; ++i) m.map(kImage + i * 4096, 4096, 4096);
        m.map(kImage + 2000 * 4096, 2 * 4096, 4096);
        auto phys = m.phys();
        unsigned calls = 0;   // the interrupt: once per chunk searched, so once per physical stretch here
        auto f = find_kernel_banner(*phys, m.runs, 8, [&] { ++calls; });
        REQUIRE(f.has_value());
        CHECK(f->in_kernel_image());
        CHECK(f->vaddr == kImage + 2000 * 4096 + 8);
        CHECK(calls <= 3);   // (each mapping searched: 2,001)
    }
    for (const std::string& line : {nested, std::string("Linux version 1\n")}) {
        CAPTURE(line.size());
        // 1,100 pages of junk before the banner: 263,000–281,600 prefixes
        constexpr uint64_t kPages = 1100;
        Memory m(kPages + 1);
        for (uint64_t p = 0; p < kPages; ++p) junk(m, p, line);
        m.map(kImage, 0, (kPages + 1) * 4096);
        put(m, kPages * 4096 + 8, kDebian61 + "\n");
        auto phys = m.phys();
        unsigned calls = 0;
        auto f = find_kernel_banner(*phys, m.runs, 8, [&] { ++calls; });
        REQUIRE(f.has_value());
        CHECK(f->vaddr == kImage + kPages * 4096 + 8);
        CHECK(calls >= kPages * (4096 / line.size()) / 4096);   // the interrupt: per 4,096 prefixes met (and per 4 MiB)
        struct Stop {};
        CHECK_THROWS_AS(find_kernel_banner(*phys, m.runs, 8, [] { throw Stop{}; }), Stop);
    }
}

TEST_CASE("graph: a banner truncated by the end of the dump is not a banner") {
    Memory m(4);
    m.map(K64, 0, 4 * 4096);
    m.map(kImage, 0, 4 * 4096);
    const std::string cut = kDebian61.substr(0, 90);
    put(m, 4 * 4096 - cut.size(), cut);
    auto phys = m.phys();
    CHECK_FALSE(find_kernel_banner(*phys, m.runs, 8).has_value());
    put(m, 4096, "Linux version 9.9.9 (attacker) (fake) no hash\n");   // wrong shape
    auto phys2 = m.phys();
    CHECK_FALSE(find_kernel_banner(*phys2, m.runs, 8).has_value());
}

TEST_CASE("graph: 32-bit: the image window is the start of lowmem") {
    Memory m(64, 4);
    m.map(K32, 0, 64 * 4096);
    put(m, 40 * 4096, kDebian61 + "\n");
    auto phys = m.phys();
    auto f = find_kernel_banner(*phys, m.runs, 4);
    REQUIRE(f.has_value());
    CHECK(f->vaddr == K32 + 40 * 4096);
}

TEST_CASE("graph: the banner is part of the graph and of its .dmg file") {
    Memory m(16);
    m.map(K64, 0, 16 * 4096);
    m.map(kImage, 8 * 4096, 8 * 4096);
    for (uint64_t off = 24; off < 4096; off += 32) m.word(3 * 4096 + off, K64 + 3 * 4096 + off - 24);
    put(m, 9 * 4096 + 64, kDebian61 + "\n");
    GraphParams no_long_gaps;   // as the version 2 written below had none (graph_file.cpp)
    no_long_gaps.long_gap_nodes = false;
    MemoryGraph g = m.build(no_long_gaps);
    REQUIRE(g.info().kernel_banner.has_value());
    CHECK(g.info().kernel_banner->banner.release == "6.1.0-47-amd64");
    const std::string path = (std::filesystem::temp_directory_path() / ("banner-" + std::to_string(::getpid()) + ".dmg")).string();
    g.save(path);
    MemoryGraph h = MemoryGraph::load(path);
    REQUIRE(h.info().kernel_banner.has_value());
    CHECK(h.info().kernel_banner->banner == g.info().kernel_banner->banner);
    CHECK(h.info().kernel_banner->vaddr == kImage + 4096 + 64);
    CHECK(h.info().kernel_banner->paddr == 9 * 4096 + 64);
    {   // a crafted file (valid checksum) whose banner is not a banner; section 13 (graph_file.cpp)
        std::vector<uint8_t> f;
        {
            std::ifstream in(path, std::ios::binary);
            f.assign(std::istreambuf_iterator<char>(in), {});
        }
        uint64_t at = 0;
        std::memcpy(&at, &f[136 + 16 * 13], 8);
        REQUIRE(std::memcmp(&f[at + 16], "Linux version ", 14) == 0);
        f[at + 16 + 20] = 0x01;
        uint64_t sum = dmg_checksum(f);
        std::memcpy(&f[16], &sum, 8);
        CHECK_THROWS_WITH_AS(MemoryGraph::from_bytes(f), doctest::Contains("kernel banner"), FormatError);
    }
    {   // as version 2 wrote it: the banner in section 13, no absent-runs section 14 nor warnings 15 (graph_file.cpp)
        std::vector<uint8_t> f;
        {
            std::ifstream in(path, std::ios::binary);
            f.assign(std::istreambuf_iterator<char>(in), {});
        }
        const uint32_t v2 = 2;
        std::memcpy(&f[8], &v2, 4);
        std::memset(&f[136 + 16 * 14], 0, 32);
        uint64_t sum = dmg_checksum(f);
        std::memcpy(&f[16], &sum, 8);
        MemoryGraph old = MemoryGraph::from_bytes(f);
        REQUIRE(old.info().kernel_banner.has_value());
        CHECK(old.info().kernel_banner->banner == g.info().kernel_banner->banner);
        CHECK(old.absent().empty());
        CHECK(old.node_count() == g.node_count());
    }

    std::filesystem::remove(path);
    Memory none(4);
    none.map(K64, 0, 4 * 4096);
    CHECK_FALSE(none.build().info().kernel_banner.has_value());
}

TEST_CASE("graph: build() from a translation layer records the banner too") {
    // layer_images.hpp: 0xffffffff80000000 maps physical 0x200000 with a 2 MiB page.
    auto img = test_images::build_x64_4level();
    std::memcpy(&img.bytes[0x201000], (kDebian61 + "\n").data(), kDebian61.size() + 1);
    auto phys = PhysicalLayer::from_bytes(img.bytes, DumpFormat::Raw);
    auto layer = TranslationLayer::detect(*phys, 0x1000, PagingMode::X86_64_4Level);
    MemoryGraph g = MemoryGraph::build(layer);
    REQUIRE(g.info().kernel_banner.has_value());
    CHECK(g.info().kernel_banner->banner.text == kDebian61);
    CHECK(g.info().kernel_banner->vaddr == kImage + 0x1000);
}
