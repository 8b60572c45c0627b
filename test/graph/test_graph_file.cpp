// The .dmg file: bit-identical round trips, and rejection of every truncated, corrupted,
// wrong-version or crafted (valid checksum, bad contents) file with a FormatError.
#include "graph_fixtures.hpp"
#include "layer_images.hpp"
#include "dmg_bytes.hpp"
#include "dump_images.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <utility>
#include <unistd.h>

using namespace deepmem;
using namespace deepmem::test;

namespace {

// The header of `version` as its writer made it: before version 7 the long-gap byte was zero.
void set_version(std::vector<uint8_t>& f, uint32_t version) {
    put32(f, kVersionAt, version);
    if (version < 7) f[kLongGapAt] = 0;
}
uint64_t section_offset(const std::vector<uint8_t>& f, int i) { return get64(f, kSectionsAt + 16 * i); }
enum { kVaddr, kPaddr, kLength, kFeatures, kOffsets0, kSources0 = kOffsets0 + 4, kDumpPath = kSources0 + 4, kKernelBanner, kAbsent, kWarnings };

// The file `f` marked `version`, which lacks the header field at `field_at`: refused while that field
// is set, then loaded with it zeroed.
MemoryGraph as_older_version(std::vector<uint8_t> f, uint32_t version, uint64_t field_at) {
    set_version(f, version);
    reseal(f);
    CHECK_THROWS_WITH_AS(MemoryGraph::from_bytes(f), doctest::Contains("reserved header bytes are not zero"), FormatError);
    put64(f, field_at, 0);
    reseal(f);
    return MemoryGraph::from_bytes(f);
}

// Without long gaps' nodes, as every version before 7 wrote it (the tests below mark it older);
// version 7's own test builds both.
MemoryGraph sample_graph() {
    Memory m = random_memory(11, 40, 8);
    GraphParams p;
    p.long_gap_nodes = false;
    MemoryGraph g = m.build(p);
    g.set_dump_path("/dumps/sample.raw");
    return g;
}

}  // namespace

TEST_CASE("graph: .dmg round trip is bit-identical and views the same graph") {
    TempDir dir;
    MemoryGraph g = sample_graph();
    REQUIRE(g.node_count() > 50);
    g.save(dir / "a.dmg");
    MemoryGraph h = MemoryGraph::load(dir / "a.dmg");
    CHECK(h.params() == g.params());
    CHECK(h.info().dump_path == "/dumps/sample.raw");
    CHECK(h.info().kernel_pages == g.info().kernel_pages);
    CHECK(h.info().pointer_fields == g.info().pointer_fields);
    CHECK(h.info().paging == g.info().paging);
    CHECK(h.info().build_seconds == g.info().build_seconds);
    PlainGraph a = plain(g), b = plain(h);
    CHECK(a.vaddr == b.vaddr);
    CHECK(a.paddr == b.paddr);
    CHECK(a.length == b.length);
    CHECK(a.features == b.features);
    for (int k = 0; k < kEdgeKinds; ++k) {
        CHECK(a.edges[k] == b.edges[k]);
        auto ka = g.in(EdgeKind(k)), kb = h.in(EdgeKind(k));
        CHECK(std::equal(ka.offsets.begin(), ka.offsets.end(), kb.offsets.begin(), kb.offsets.end()));
    }
    h.save(dir / "b.dmg");
    auto fa = slurp(dir / "a.dmg"), fb = slurp(dir / "b.dmg");
    CHECK(fa == fb);
    CHECK(fa.size() % 64 == 0);
    MemoryGraph c = MemoryGraph::from_bytes(fa);
    CHECK(plain(c).edges[2] == a.edges[2]);
    // Sections are 64-byte aligned.
    for (int i = 0; i < 14; ++i) CHECK(section_offset(fa, i) % 64 == 0);
    // No temporary files left behind; saving over an existing file replaces it.
    g.save(dir / "a.dmg");
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path), {}) == 2);
}

TEST_CASE("graph: an empty graph round-trips") {
    TempDir dir;
    Memory m(1);
    MemoryGraph g = m.build();
    g.save(dir / "e.dmg");
    MemoryGraph h = MemoryGraph::load(dir / "e.dmg");
    CHECK(h.node_count() == 0);
    CHECK(h.in(EdgeKind::LeftPointer).rows() == 0);
    CHECK(!h.node_containing(K64).has_value());
}

TEST_CASE("graph: every truncation and every single-byte corruption is a FormatError") {
    TempDir dir;
    Memory m = random_memory(12, 3, 8);
    MemoryGraph g = m.build();
    g.save(dir / "s.dmg");
    const auto f = slurp(dir / "s.dmg");
    REQUIRE(f.size() > 512);
    for (uint64_t n = 0; n < f.size(); ++n) {
        std::vector<uint8_t> t(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
        CHECK_THROWS_AS(MemoryGraph::from_bytes(t), FormatError);
    }
    std::vector<uint8_t> longer = f;
    longer.push_back(0);
    CHECK_THROWS_AS(MemoryGraph::from_bytes(longer), FormatError);
    for (uint64_t i = 0; i < f.size(); ++i) {
        std::vector<uint8_t> c = f;
        c[i] ^= 0x5a;
        CHECK_THROWS_AS(MemoryGraph::from_bytes(c), FormatError);
    }
    // The same from a file: load() maps it and applies the same checks.
    {
        std::vector<uint8_t> c(f.begin(), f.end() - 64);
        std::ofstream(dir / "t.dmg", std::ios::binary).write(reinterpret_cast<const char*>(c.data()),
                                                              static_cast<std::streamsize>(c.size()));
        CHECK_THROWS_AS(MemoryGraph::load(dir / "t.dmg"), FormatError);
    }
    CHECK_THROWS_AS(MemoryGraph::load(dir / "missing.dmg"), InputError);
}

TEST_CASE("graph: wrong version and crafted files with valid checksums are rejected") {
    MemoryGraph g = sample_graph();
    TempDir dir;
    g.save(dir / "g.dmg");
    const auto f = slurp(dir / "g.dmg");
    const uint64_t N = g.node_count();
    auto rejects = [](std::vector<uint8_t> c, const char* what) {
        reseal(c);
        INFO(std::string(what));
        bool threw = false;
        try {
            MemoryGraph::from_bytes(c);
        } catch (const FormatError& e) {
            threw = true;
            MESSAGE((std::string(what) + " -> " + e.what()));
        }
        CHECK(threw);
    };
    for (uint32_t v : {0u, 9u}) {
        auto c = f;
        put32(c, kVersionAt, v);
        reseal(c);
        CHECK_THROWS_WITH_AS(MemoryGraph::from_bytes(c), doctest::Contains(("version " + std::to_string(v)).c_str()), FormatError);
    }
    auto c = f;
    reseal(c);
    CHECK(MemoryGraph::from_bytes(c).node_count() == N);   // resealing alone changes nothing

    c = f; put64(c, section_offset(f, kSources0 + 2), 0); put32(c, section_offset(f, kSources0 + 2), uint32_t(N));
    rejects(c, "lp source == N");
    c = f; put64(c, section_offset(f, kOffsets0 + 3) + 8, ~uint64_t{0});
    rejects(c, "rp offsets decrease");
    c = f; put64(c, section_offset(f, kOffsets0 + 1), 1);
    rejects(c, "rn offsets[0] != 0");
    c = f; put64(c, kEdgeCountAt + 8 * 2, get64(f, kEdgeCountAt + 16) + 1);
    rejects(c, "lp edge count disagrees with its section");
    c = f; put64(c, kNodeCountAt, N + 1);
    rejects(c, "node count disagrees with sections");
    c = f; put64(c, kNodeCountAt, ~uint64_t{0} / 4);
    rejects(c, "huge node count");
    c = f; put64(c, kSectionsAt + 16 * kPaddr, section_offset(f, kPaddr) + 8);
    rejects(c, "misaligned section");
    c = f; put64(c, kSectionsAt + 16 * kLength, section_offset(f, kVaddr));
    rejects(c, "overlapping sections");
    c = f; put64(c, kSectionsAt + 16 * 12 + 8, ~uint64_t{0} - 100);
    rejects(c, "dump path section size overflows");
    {   // a dump path past PATH_MAX (attacker 99: 56 MiB, pasted into every note), and bytes outside
        // the sections (holes the checksum would read), each refused by name
        auto said = [](std::vector<uint8_t> c, const std::string& message) {
            reseal(c);
            CHECK_THROWS_WITH_AS(MemoryGraph::from_bytes(c), doctest::Contains(message.c_str()), FormatError);
        };
        c = f;
        const uint64_t shift = (4097 + 63) & ~uint64_t{63};
        for (int i = kDumpPath + 1; i <= kWarnings; ++i)   // the sections after it moved past its end
            put64(c, kSectionsAt + 16 * i, section_offset(f, i) + shift);
        c.resize(c.size() + shift, 0);
        put64(c, kSectionsAt + 16 * kDumpPath + 8, 4097);
        put64(c, kFileSizeAt, c.size());
        said(c, "dump path of 4097 bytes, expected at most 4096 (PATH_MAX)");
        c = f;
        c.resize(c.size() + (65 << 10), 0);
        put64(c, kFileSizeAt, c.size());
        said(c, " bytes of the file lie outside its sections (a .dmg pads each to 64 bytes: at most 65536)");
    }
    c = f; put64(c, section_offset(f, kVaddr) + 8, get64(f, section_offset(f, kVaddr)));
    rejects(c, "vaddrs not ascending");
    c = f; put32(c, section_offset(f, kLength), 0);
    rejects(c, "zero-length node");
    c = f; put32(c, 32, 3);
    rejects(c, "word size 3");
    c = f; put32(c, 36, 0);
    rejects(c, "feature bytes 0");
    c = f; c[52] = 9;
    rejects(c, "paging mode 9");
    c = f; c[416] = 1;   // past stored_page_bytes (version 8)
    rejects(c, "reserved byte");
    REQUIRE(g.absent().size() == 1);
    const uint64_t absent_at = section_offset(f, kAbsent);
    c = f; put64(c, absent_at, get64(f, absent_at) + 8);
    rejects(c, "absent run not page-aligned");
    c = f; put64(c, absent_at + 8, 0);
    rejects(c, "empty absent run");
    c = f; put64(c, absent_at, ~uint64_t{0} - 4095); put64(c, absent_at + 8, 8192);
    rejects(c, "absent run wraps");
    c = f; put64(c, kSectionsAt + 16 * kAbsent + 8, 8);
    rejects(c, "absent section not whole runs");
}

TEST_CASE("graph: .dmg versions 1 and 2 still load; absent runs and the banner round-trip in version 3") {
    MemoryGraph g = sample_graph();
    REQUIRE(g.absent().size() == 1);   // random_memory maps one page beyond its image
    TempDir dir;
    g.save(dir / "g.dmg");
    auto f = slurp(dir / "g.dmg");
    MemoryGraph back = MemoryGraph::from_bytes(f);
    REQUIRE(back.absent().size() == 1);
    CHECK(back.absent()[0] == g.absent()[0]);
    CHECK(back.info().absent_pages == g.info().absent_pages);
    REQUIRE(get64(f, kSectionsAt + 16 * kKernelBanner + 8) == 0);   // no banner in random memory
    auto same_graph = [&](const MemoryGraph& old) {
        CHECK(old.node_count() == g.node_count());
        for (int k = 0; k < kEdgeKinds; ++k) {
            const EdgeKind kind = static_cast<EdgeKind>(k);
            CHECK(old.edge_count(kind) == g.edge_count(kind));
        }
        CHECK(std::equal(old.vaddr().begin(), old.vaddr().end(), g.vaddr().begin(), g.vaddr().end()));
    };
    auto clear_slot = [](std::vector<uint8_t>& c, int i) {
        put64(c, kSectionsAt + 16 * i, 0);
        put64(c, kSectionsAt + 16 * i + 8, 0);
    };
    // As version 1 wrote it: neither a banner nor an absent-runs section (their header slots zero).
    auto v1 = f;
    set_version(v1, 1);
    clear_slot(v1, kKernelBanner);   // an empty section still has an offset in version 3
    clear_slot(v1, kAbsent);
    clear_slot(v1, kWarnings);
    reseal(v1);
    MemoryGraph old = MemoryGraph::from_bytes(v1);
    CHECK(old.absent().empty());
    CHECK(old.info().absent_pages == 0);
    CHECK_FALSE(old.info().kernel_banner.has_value());
    same_graph(old);
    // A version-1 file with something in a slot it did not have is corrupt; so is a version-2 one
    // with something in the absent runs' slot (version 3's).
    const std::pair<uint32_t, int> wrong_slots[] = {{1, kKernelBanner}, {1, kAbsent}, {2, kAbsent}};
    for (const auto& [version, slot] : wrong_slots) {
        auto bad = v1;
        set_version(bad, version);
        put64(bad, kSectionsAt + 16 * slot, section_offset(f, kAbsent));
        put64(bad, kSectionsAt + 16 * slot + 8, 16);
        reseal(bad);
        const uint32_t v = version;   // clang 14: no structured binding inside INFO's lambda
        const int sl = slot;
        INFO("version " << v << ", slot " << sl);
        CHECK_THROWS_AS(MemoryGraph::from_bytes(bad), FormatError);
    }
    // As pre-release builds wrote version 2: the absent runs in the 14th slot (the banner's).
    auto pre = f;
    set_version(pre, 2);
    put64(pre, kSectionsAt + 16 * kKernelBanner, section_offset(f, kAbsent));
    put64(pre, kSectionsAt + 16 * kKernelBanner + 8, get64(f, kSectionsAt + 16 * kAbsent + 8));
    clear_slot(pre, kAbsent);
    clear_slot(pre, kWarnings);
    reseal(pre);
    MemoryGraph pre_graph = MemoryGraph::from_bytes(pre);
    REQUIRE(pre_graph.absent().size() == 1);
    CHECK(pre_graph.absent()[0] == g.absent()[0]);
    CHECK_FALSE(pre_graph.info().kernel_banner.has_value());
    same_graph(pre_graph);
}

TEST_CASE("graph: the layers' warnings round-trip in version 4; version 3 files have none; crafted ones are refused") {
    MemoryGraph g = sample_graph();
    // set_warnings makes them what the loader accepts: what is not terminal text becomes '?', an
    // empty line a placeholder, long ones are cut on a UTF-8 boundary.
    const std::string long_line = std::string(GraphBuildInfo::kMaxWarningBytes - 1, 'x') + "\xe2\x80\xa6 tail";
    g.set_warnings({"8 page-table pages are not in the dump … (a cut dump?)", "", "bell\a and \x1b[31mred", long_line,
                    "c1 \xc2\x9b""31m, raw \x9b, rlo \xe2\x80\xae, cut \xe2\x80"});
    REQUIRE(g.info().warnings.size() == 5);
    CHECK(g.info().warnings[1] == "(empty warning)");
    CHECK(g.info().warnings[2] == "bell? and ?[31mred");
    CHECK(g.info().warnings[3] == std::string(GraphBuildInfo::kMaxWarningBytes - 1, 'x'));
    CHECK(g.info().warnings[4] == "c1 ?31m, raw ?, rlo ?, cut ??");
    // A line of 5000 continuation bytes is not cut to nothing: each becomes '?'.
    g.set_warnings({std::string(5000, '\x80')});
    CHECK(g.info().warnings == std::vector<std::string>{std::string(GraphBuildInfo::kMaxWarningBytes, '?')});
    // More than kMaxWarnings: the last line kept says how many were left out.
    std::vector<std::string> many;
    for (size_t i = 0; i < GraphBuildInfo::kMaxWarnings + 10; ++i) many.push_back("warning " + std::to_string(i));
    g.set_warnings(many);
    REQUIRE(g.info().warnings.size() == GraphBuildInfo::kMaxWarnings);
    CHECK(g.info().warnings[GraphBuildInfo::kMaxWarnings - 2] == many[GraphBuildInfo::kMaxWarnings - 2]);
    CHECK(g.info().warnings.back().find("and 11 more warnings, left out") != std::string::npos);
    g.set_warnings(std::vector<std::string>(many.begin(), many.begin() + GraphBuildInfo::kMaxWarnings));   // exactly at the limit: all kept
    CHECK(g.info().warnings.back() == many[GraphBuildInfo::kMaxWarnings - 1]);
    g.set_warnings({"8 page-table pages are not in the dump … (a cut dump?)", "", "bell\a and \x1b[31mred", long_line,
                    "c1 \xc2\x9b""31m, raw \x9b, rlo \xe2\x80\xae, cut \xe2\x80"});
    TempDir dir;
    g.save(dir / "w.dmg");
    auto f = slurp(dir / "w.dmg");
    CHECK(MemoryGraph::from_bytes(f).info().warnings == g.info().warnings);
    const uint64_t at = section_offset(f, kWarnings), size = get64(f, kSectionsAt + 16 * kWarnings + 8);
    REQUIRE(size > 0);
    // A version-3 file: the warnings slot is zero and reads as none.
    g.set_warnings({});
    g.save(dir / "v3.dmg");
    auto v3 = slurp(dir / "v3.dmg");
    set_version(v3, 3);
    put64(v3, kSectionsAt + 16 * kWarnings, 0);
    reseal(v3);
    CHECK(MemoryGraph::from_bytes(v3).info().warnings.empty());
    CHECK(MemoryGraph::from_bytes(v3).node_count() == g.node_count());
    auto rejects = [](std::vector<uint8_t> c, const char* message) {
        reseal(c);
        INFO(message);
        CHECK_THROWS_WITH_AS(MemoryGraph::from_bytes(c), doctest::Contains(message), FormatError);
    };
    auto c = f; c[at + 3] = 0x1b;
    rejects(c, "warning 1 is not terminal text at byte 0x1b");
    c = f; c[at + 3] = static_cast<char>(0x9b);   // raw C1 (CSI on an 8-bit terminal), not UTF-8
    rejects(c, "warning 1 is not terminal text at byte 0x9b");
    c = f; c[at + 2] = static_cast<char>(0xc2); c[at + 3] = static_cast<char>(0x9d);   // U+009D, OSC
    rejects(c, "warning 1 is not terminal text at byte 0xc2");
    c = f; c[at + 2] = static_cast<char>(0xe2); c[at + 3] = static_cast<char>(0x80); c[at + 4] = static_cast<char>(0xae);
    rejects(c, "warning 1 is not terminal text at byte 0xe2");   // U+202E, right-to-left override
    c = f; c[at] = '\n';
    rejects(c, "warning 1 is empty");
    c = f; c[at + size - 1] = '\n';   // a trailing newline: an empty last line
    rejects(c, "warning 6 is empty");
    c = f; put64(c, kSectionsAt + 16 * kWarnings, 0); put64(c, kSectionsAt + 16 * kWarnings + 8, 0);
    rejects(c, "section 15 starts at offset 0, inside the header (an empty slot?)");
    c = f; set_version(c, 3);
    rejects(c, "reserved header bytes are not zero");
}

// Version 5: the address space under page tables the dump lacks (GraphBuildInfo::absent_table_bytes),
// which dmdetect counts as memory the dump lacks; a version-4 file reads 0 and may not set it.
TEST_CASE("graph: absent_table_bytes round-trips in version 5; version 4 files read 0") {
    MemoryGraph g = sample_graph();
    CHECK(g.info().absent_table_bytes == 0);   // sample_graph's tables are all present
    TempDir dir;
    g.save(dir / "v5.dmg");
    auto f = slurp(dir / "v5.dmg");
    // The field sits right after the 16 section slots.
    constexpr uint64_t kAbsentTableBytesAt = kSectionsAt + 16 * 16;
    CHECK(get64(f, kAbsentTableBytesAt) == 0);
    put64(f, kAbsentTableBytesAt, uint64_t{5} << 40);
    reseal(f);
    CHECK(MemoryGraph::from_bytes(f).info().absent_table_bytes == uint64_t{5} << 40);
    const MemoryGraph v4 = as_older_version(f, 4, kAbsentTableBytesAt);
    CHECK(v4.info().absent_table_bytes == 0);
    CHECK(v4.node_count() == g.node_count());
}

// Version 8: what a compressed dump's non-zero pages take of its file
// (GraphBuildInfo::stored_page_bytes, PhysicalLayer::stored_page_bytes), by which the network work
// bound counts pages; stored plus one, 0 when none (raw, ELF, LiME, and every older file). At most the
// dump's size: a crafted header claiming more is refused.
TEST_CASE("graph: stored_page_bytes round-trips in version 8, none stays none, version 7 files read none") {
    MemoryGraph g = sample_graph();
    CHECK_FALSE(g.info().stored_page_bytes);
    TempDir dir;
    g.save(dir / "v8.dmg");
    auto f = slurp(dir / "v8.dmg");
    constexpr uint64_t kStoredAt = kStoredPageBytesAt;
    CHECK(get64(f, kStoredAt) == 0);
    put64(f, kDumpBytesAt, 5000);
    for (uint64_t bytes : {uint64_t{0}, uint64_t{4000}, uint64_t{5000}}) {
        put64(f, kStoredAt, bytes + 1);
        reseal(f);
        CHECK(MemoryGraph::from_bytes(f).info().stored_page_bytes == bytes);
    }
    auto c = f;
    put64(c, kStoredAt, 5002);   // 5001 bytes of a 5000-byte dump
    reseal(c);
    CHECK_THROWS_WITH_AS(MemoryGraph::from_bytes(c), doctest::Contains("exceed the dump's 5000"), FormatError);
    CHECK_FALSE(as_older_version(f, 7, kStoredAt).info().stored_page_bytes);
    // A graph of a kdump: what its layer says, written and read back
    Memory mem(40);
    mem.map(K64, 0, 40 * 4096);
    for (uint64_t p = 2; p < 30; ++p)
        for (uint64_t o = 0; o < 4096; o += 64) mem.word(p * 4096 + o, K64 + (p + 1) * 4096 + o);
    const std::vector<uint8_t> k = test_images::kdump_of(*mem.phys(), KdumpCompression::Zlib, false);
    const auto kphys = PhysicalLayer::from_bytes(k, DumpFormat::Kdump);
    REQUIRE(kphys->stored_page_bytes());
    const MemoryGraph kg = MemoryGraph::build(mem.runs, *kphys, g.params());
    REQUIRE(kg.info().stored_page_bytes == kphys->stored_page_bytes());
    kg.save(dir / "k.dmg");
    CHECK(get64(slurp(dir / "k.dmg"), kStoredAt) == *kphys->stored_page_bytes() + 1);
    CHECK(MemoryGraph::load(dir / "k.dmg").info().stored_page_bytes == kphys->stored_page_bytes());
}

// Version 6: the present bytes of the kernel image's window (GraphBuildInfo::kernel_image_bytes), by
// which a dump cut below the image is told (detect.hpp lacks_kernel_image); stored plus one, 0 when
// unknown (as in every older file).
TEST_CASE("graph: kernel_image_bytes round-trips in version 6, unknown stays unknown, version 5 files read unknown") {
    MemoryGraph g = sample_graph();
    CHECK_FALSE(g.info().kernel_image_bytes);   // built from runs, not page tables
    TempDir dir;
    g.save(dir / "v6.dmg");
    auto f = slurp(dir / "v6.dmg");
    constexpr uint64_t kImageAt = kSectionsAt + 16 * 16 + 8;   // after absent_table_bytes
    CHECK(get64(f, kImageAt) == 0);
    CHECK_FALSE(MemoryGraph::from_bytes(f).info().kernel_image_bytes);
    for (uint64_t bytes : {uint64_t{0}, uint64_t{54} << 20}) {
        put64(f, kImageAt, bytes + 1);
        reseal(f);
        CHECK(MemoryGraph::from_bytes(f).info().kernel_image_bytes == bytes);
    }
    auto c = f;
    put64(c, kImageAt, (uint64_t{1} << 30) + 2);   // more than the 1 GiB window holds
    reseal(c);
    CHECK_THROWS_WITH_AS(MemoryGraph::from_bytes(c), doctest::Contains("exceed its window"), FormatError);
    CHECK_FALSE(as_older_version(f, 5, kImageAt).info().kernel_image_bytes);
    // A banner found in the kernel image beside a header saying the image maps nothing (attacker 16).
    const std::string banner = "Linux version 6.1.0-47-amd64 (x@y) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld 2.40) "
                               "#1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2026-05-08)\n";
    auto img = test_images::build_x64_with_image(banner, 0x400100);
    auto phys = PhysicalLayer::from_bytes(img.bytes, DumpFormat::Raw);
    const MemoryGraph with_banner = MemoryGraph::build(TranslationLayer(*phys, PagingMode::X86_64_4Level, 0x1000));
    REQUIRE(with_banner.info().kernel_banner);
    REQUIRE(with_banner.info().kernel_image_bytes >= uint64_t{10} << 20);
    with_banner.save(dir / "banner.dmg");
    auto b = slurp(dir / "banner.dmg");
    put64(b, kImageAt, 1);   // "0 bytes"
    reseal(b);
    CHECK_THROWS_WITH_AS(MemoryGraph::from_bytes(b), doctest::Contains("the banner lies in the kernel image"), FormatError);
}

// Version 7: GraphParams::long_gap_nodes (memory_graph.hpp, Long gaps), one header byte after paging.
TEST_CASE("graph: long_gap_nodes round-trips in version 7; version 6 files read false; other values are refused") {
    TempDir dir;
    for (bool on : {true, false}) {
        GraphParams p;
        p.long_gap_nodes = on;
        const MemoryGraph g = random_memory(11, 40, 8).build(p);
        g.save(dir / "v7.dmg");
        const auto f = slurp(dir / "v7.dmg");
        CHECK(f[kLongGapAt] == on);
        const MemoryGraph back = MemoryGraph::from_bytes(f);
        CHECK(back.params() == g.params());
        CHECK(back.node_count() == g.node_count());
        auto c = f;
        c[kLongGapAt] = 2;
        reseal(c);
        CHECK_THROWS_WITH_AS(MemoryGraph::from_bytes(c), doctest::Contains("long-gap nodes flag 2, expected 0 or 1"), FormatError);
        c = f;
        put32(c, kVersionAt, 6);
        reseal(c);
        if (on) {
            CHECK_THROWS_WITH_AS(MemoryGraph::from_bytes(c), doctest::Contains("reserved header bytes are not zero"), FormatError);
        } else {
            CHECK_FALSE(MemoryGraph::from_bytes(c).params().long_gap_nodes);   // a version-6 graph has none
        }
    }
    // Crafted files (valid checksums) whose long gaps' nodes break what the header says (helper 70 F2).
    GraphParams p;
    const MemoryGraph g = random_memory(11, 40, 8).build(p);
    const auto len = g.length();
    const auto sink = std::find_if(len.begin(), len.end(), [](uint32_t l) { return l >= 4096; });
    REQUIRE(sink != len.end());
    const uint64_t n = uint64_t(sink - len.begin());
    g.save(dir / "g.dmg");
    const auto f = slurp(dir / "g.dmg");
    auto refused = [](std::vector<uint8_t> c, const char* what) {
        reseal(c);
        CHECK_THROWS_WITH_AS(MemoryGraph::from_bytes(c), doctest::Contains(what), FormatError);
    };
    auto c = f;
    c[kLongGapAt] = 0;   // "none", yet one is there
    refused(c, "not below max_segment (the header says no long gaps' nodes)");
    c = f;
    put32(c, section_offset(f, kLength) + 4 * n, 4097);
    refused(c, "expected below max_segment or a long gap's 4096");
    c = f;   // an ln edge from it: the first ln source rewritten
    REQUIRE(get64(f, kEdgeCountAt) > 0);
    put32(c, section_offset(f, kSources0), uint32_t(n));
    refused(c, "is a long gap's node, which feeds no node");
    c = f;   // parameters under which it would not be a sink
    put32(c, 44, 8192);   // neighbour_distance
    refused(c, "a long gap's node would stand between two nodes that are neighbours");
}

TEST_CASE("graph: save to an unwritable place is an InputError") {
    MemoryGraph g = sample_graph();
    CHECK_THROWS_AS(g.save("/nonexistent-dir/x.dmg"), InputError);
}
