// The page-table root search (graph/root_search.cpp) and the alias bound of the walker
// (graph/translation.cpp) on hand-built images: one plausible root per scheme, stale and partial
// tables ranked by what they map, refusals that say what is missing, and page tables that alias
// the same memory millions of times.
#include "graph/layers.hpp"
#include "test/graph/layer_images.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

using namespace deepmem;
using namespace deepmem::test_images;

namespace {

uint64_t pages_of(std::span<const VirtualRun> runs) {
    uint64_t n = 0;
    for (const auto& r : runs) n += r.size / 4096;
    return n;
}

// Kernel mappings per physical page.
std::map<uint64_t, unsigned> aliases_of(const TranslationLayer& t) {
    std::map<uint64_t, unsigned> n;
    for (const auto& r : t.kernel_runs())
        for (uint64_t o = 0; o < r.size; o += 4096) ++n[r.paddr + o];
    return n;
}

std::string search_error(const PhysicalLayer& phys) {
    try {
        TranslationLayer::search(phys);
    } catch (const InputError& e) {
        return e.what();
    }
    FAIL("expected the search to refuse");
    return {};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// PAE, 8 MiB, two PDPTs as a Linux 686-pae guest leaves them (the field case in miniature):
//   real  PDPT 0x9000: [0] → user PD 0xb000 (one entry), [3] → PD 0xa000: 4 × 2 MiB pages with the
//         accessed bit, the lowmem direct map of all 8 MiB at 0xc0000000
//   stale PDPT `stale_at` (early boot; 0x1000 or, as in the field case where it lies at 158 MiB
//         above the ≈12 MiB it maps, high up): [0] and [3] → PD 0x2000 → PT 0x3000.. mapping
//         `stale_pages` 4 KiB pages from 0 at 0xc0000000 (the kernel image), no accessed bits
Image build_pae_two_roots(uint64_t stale_pages, uint64_t stale_at = 0x1000) {
    Image m(0x800000);
    constexpr uint64_t A = 0x20;
    m.put64(0x9000, 0xb000 | P);
    m.put64(0xb000, 0xc000 | P | RW | US | A);
    m.put64(0x9000 + 3 * 8, 0xa000 | P);
    for (uint64_t i = 0; i < 4; ++i) m.put64(0xa000 + 8 * i, (i << 21) | P | RW | PS | A);
    m.put64(stale_at, 0x2000 | P);
    m.put64(stale_at + 3 * 8, 0x2000 | P);
    for (uint64_t p = 0; p < stale_pages; ++p) {
        if (p % 512 == 0) m.put64(0x2000 + 8 * (p / 512), (0x3000 + 0x1000 * (p / 512)) | P | RW);
        m.put64(0x3000 + 0x1000 * (p / 512) + 8 * (p % 512), (p << 12) | P | RW);
    }
    return m;
}

}  // namespace

TEST_CASE("root search: each scheme's kernel root is found and is the only plausible one") {
    struct Case { const char* name; Image mem; PagingMode mode; };
    Case cases[] = {
        {"x64", build_x64_4level(), PagingMode::X86_64_4Level},
        {"la57", build_x64_5level(), PagingMode::X86_64_5Level},
        {"pae", build_pae(), PagingMode::X86_PAE},
        {"x86", build_x86_32(), PagingMode::X86_32},
    };
    for (auto& c : cases) {
        CAPTURE(c.name);
        auto phys = PhysicalLayer::from_bytes(c.mem.bytes);
        auto t = TranslationLayer::search(*phys);
        CHECK(t.mode() == c.mode);
        CHECK(t.dtb() == 0x1000);
        CHECK(t.warnings().empty());
        // Forced to another scheme, the same image has no plausible root.
        for (PagingMode other : {PagingMode::X86_64_4Level, PagingMode::X86_64_5Level, PagingMode::X86_PAE,
                                 PagingMode::X86_32}) {
            if (other == c.mode) continue;
            CAPTURE(to_string(other));
            CHECK_THROWS_AS(TranslationLayer::search(*phys, other), InputError);
        }
    }
}

TEST_CASE("root search: PAE picks the root that maps the most, not a stale boot-time table") {
    SUBCASE("stale table maps too little to be a kernel's") {
        Image mem = build_pae_two_roots(256);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        auto t = TranslationLayer::search(*phys);
        CHECK(t.mode() == PagingMode::X86_PAE);
        CHECK(t.dtb() == 0x9000);
        CHECK(pages_of(t.kernel_runs()) == 2048);
        // Through the detect() entry point (no notes) the same.
        CHECK(TranslationLayer::detect(*phys).dtb() == 0x9000);
    }
    SUBCASE("stale table plausible on its own, still ranked below the root that maps more") {
        // 1536 of 2048 pages: over the half-the-dump bar; lower address, no user entries.
        Image mem = build_pae_two_roots(1536);
        auto t = TranslationLayer::search(*PhysicalLayer::from_bytes(mem.bytes));
        CHECK(t.dtb() == 0x9000);
        // Without the real root the stale one is taken: it does map a kernel.
        mem.put64(0x9000 + 3 * 8, 0);
        mem.put64(0x9000, 0);
        auto s = TranslationLayer::search(*PhysicalLayer::from_bytes(mem.bytes));
        CHECK(s.dtb() == 0x1000);
        CHECK(pages_of(s.kernel_runs()) == 1536);
    }
    SUBCASE("only the stale table, far above what it maps (as in the field case): refused") {
        Image mem = build_pae_two_roots(256, 0x7ff000);
        mem.put64(0x9000 + 3 * 8, 0);
        mem.put64(0x9000, 0);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        std::string e = search_error(*phys);
        CHECK(contains(e, "no kernel page tables in this dump"));
        CHECK(contains(e, "0x7ff000 (pae) maps 256 pages"));
        CHECK(contains(e, "not its own table"));
        CHECK_THROWS_AS(TranslationLayer::detect(*phys), InputError);
    }
    SUBCASE("only the stale table, its direct map full of holes: refused") {
        // 1024 pages from 0 with all but every fourth cleared (the PDPT's page 1 kept): 257 pages
        // spread over the 4 MiB they span, where a kernel's direct map covers all of it.
        Image mem = build_pae_two_roots(1024);
        mem.put64(0x9000 + 3 * 8, 0);
        mem.put64(0x9000, 0);
        for (uint64_t p = 0; p < 1024; ++p)
            if (p % 4 != 0 && p != 1) mem.put64(0x3000 + 8 * p, 0);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        std::string e = search_error(*phys);
        CHECK(contains(e, "0x1000 (pae) maps 257 pages"));
        CHECK(contains(e, "a direct map of 257 pages where half of the present pages it spans (511) was expected"));
    }
}

// Issue #11 item 2: what a root maps is weighed against the memory it spans, not against the
// file's data, which filler appended after the RAM or a cut before the direct map's tables change.
TEST_CASE("root search: the kernel's root stays plausible after filler or a cut") {
    SUBCASE("PAE guest of 8 MiB with 24 MiB of filler appended (zeros, then a byte pattern)") {
        Image mem = build_pae_two_roots(256);
        mem.bytes.resize(0x2000000, 0);
        mem.pattern(0x1800000, 0x800000, 9);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        auto t = TranslationLayer::search(*phys);
        CHECK(t.mode() == PagingMode::X86_PAE);
        CHECK(t.dtb() == 0x9000);
        CHECK(pages_of(t.kernel_runs()) == 2048);
    }
    // x86-64, 8 MiB, cut before the direct map's tables: PML4 0x601000 (in the image):
    //   [256] → 0x7f000000 (the direct map's PDPT, past the end), [511] → PDPT 0x602000 [510]
    //   → PD 0x603000 [0] → 2 MiB page at 0x600000 (0xffffffff80000000), the kernel image
    //   holding the page tables and, at 0x700000, the banner.
    Image mem(0x800000);
    mem.put64(0x601000 + 256 * 8, 0x7f000000 | P | RW);
    mem.put64(0x601000 + 511 * 8, 0x602000 | P | RW);
    mem.put64(0x602000 + 510 * 8, 0x603000 | P | RW);
    mem.put64(0x603000, 0x600000 | P | RW | PS);
    mem.pattern(0x10000, 0x10000, 3);
    const std::string banner = "Linux version 6.1.0-47-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "
                               "12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2025-11-05)\n";
    SUBCASE("x86-64 cut before the direct map: the root that maps the kernel image and its banner") {
        std::copy(banner.begin(), banner.end(), mem.bytes.begin() + 0x700000);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        auto t = TranslationLayer::search(*phys);
        CHECK(t.mode() == PagingMode::X86_64_4Level);
        CHECK(t.dtb() == 0x601000);
        CHECK(pages_of(t.kernel_runs()) == 512);
    }
    SUBCASE("the same without a banner: nothing says it is a kernel, refused") {
        std::string e = search_error(*PhysicalLayer::from_bytes(mem.bytes));
        CHECK(contains(e, "no kernel page tables in this dump"));
        CHECK(contains(e, "0x601000"));
    }
}

TEST_CASE("root search: refusals diagnose what is missing") {
    SUBCASE("kernel page tables beyond the end: cut") {
        Image mem(0x100000);
        mem.put64(0x1000 + 273 * 8, 0x100000000ull | P | RW);
        mem.put64(0x1000 + 511 * 8, 0x100005000ull | P | RW);
        std::string e = search_error(*PhysicalLayer::from_bytes(mem.bytes));
        CHECK(contains(e, "no kernel page tables in this dump: it looks cut at 1 MiB"));
        CHECK(contains(e, "2 page tables at 0x100000000..0x100005000"));
        CHECK(contains(e, "0x1000, x64"));
    }
    SUBCASE("kernel page tables in a hole of an ELF core") {
        Image mem = build_x64_4level();
        // The direct map's and the kernel image's PDPTs fall in the hole [1 MiB, 2 MiB).
        mem.put64(0x1000 + 256 * 8, 0x180000 | P | RW);
        mem.put64(0x1000 + 511 * 8, 0x181000 | P | RW);
        auto elf = to_elf(mem.bytes, {{0, 0x100000}, {0x200000, mem.bytes.size() - 0x200000}}, {}, true);
        std::string e = search_error(*PhysicalLayer::from_bytes(elf));
        CHECK(contains(e, "it has holes where the page tables are: 2 page tables at 0x180000..0x181000"));
    }
    SUBCASE("a direct map without kernel text") {
        Image mem = build_x64_4level();
        mem.put64(0x3000, 0x40000000 | P | RW | PS);   // the 2 MiB text page now lies past the dump
        mem.put64(0x3000 + 8, 0);
        std::string e = search_error(*PhysicalLayer::from_bytes(mem.bytes));
        CHECK(contains(e, "no kernel text at 0xffffffff80000000"));
    }
    SUBCASE("nothing like a page directory") {
        Image mem(0x100000);
        mem.pattern(0, mem.bytes.size(), 7);
        std::string e = search_error(*PhysicalLayer::from_bytes(mem.bytes));
        CHECK(contains(e, "no page looks like a kernel page directory"));
        CHECK(contains(e, "1 MiB of data in 1 range up to 0x100000"));
    }
}

// Issue #11 (a 256 MiB Debian 6.1 guest cut at 160 MiB: every kernel table allocated above the cut,
// "no kernel page tables" on 3 of 4 validation dumps): the kernel's page directories share a kernel
// half whose tables all lie beyond the end; their group gives the root, the dump's pointers the
// direct map's base.
TEST_CASE("root search: a dump cut below every kernel table keeps its direct map, read at the base its pointers use") {
    constexpr uint64_t Direct = 0xffff888000000000ull;   // PML4[273]
    auto cut_dump = [](int directories, uint64_t direct_words, uint64_t text_words, uint64_t vmemmap_words = 0) {
        Image mem(0x400000);
        for (int d = 0; d < directories; ++d) {
            const uint64_t pgd = 0x1000 * (d + 1);
            mem.put64(pgd + 273 * 8, 0x100000000ull | P | RW);
            mem.put64(pgd + 511 * 8, 0x100005000ull | P | RW);
            mem.put64(pgd + 468 * 8, 0x100009000ull | P | RW);   // vmemmap's, 0xffffea0000000000
            if (d > 0) mem.put64(pgd, (0x10000 + 0x1000 * d) | P | RW | US);   // its own user half
        }
        for (uint64_t i = 0; i < direct_words; ++i) mem.put64(0x100000 + 8 * i, Direct + 0x200000 + 64 * i);
        for (uint64_t i = 0; i < text_words; ++i) mem.put64(0x180000 + 8 * i, 0xffffffff81000000ull + 64 * i);
        for (uint64_t i = 0; i < vmemmap_words; ++i) mem.put64(0x1c0000 + 8 * i, 0xffffea0000000000ull + 64 * i);
        return mem;
    };
    SUBCASE("two page directories, the pointers clear (the image's own pointers, however many, never make a base)") {
        Image mem = cut_dump(2, 1000, 3000, 400);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t = TranslationLayer::search(*phys);
        CHECK(t.dtb() == 0x1000);
        CHECK(t.mode() == PagingMode::X86_64_4Level);
        const auto st = t.walk_stats();
        CHECK(st.direct_fill_base == Direct);
        CHECK(st.direct_fill_pages == 1024);
        CHECK(t.translate(Direct + 0x100000) == 0x100000u);
        CHECK_FALSE(t.translate(0xffffffff81000000ull).has_value());
        const auto w = t.warnings();
        REQUIRE(!w.empty());
        CHECK(contains(w[0], "translation: no page-table root maps a kernel in this dump: the kernel's tables lie beyond "
                             "its end at 0x400000 (a cut dump); root 0x1000 (x64), shared by 2 page directories, is used, "
                             "and its direct map is read linearly at 0xffff888000000000"));
        // Words into the text's lost tables are pointer fields (absent_table_spans), not data.
        REQUIRE(t.absent_table_spans().size() == 3);
    }
    SUBCASE("fake page directories that leave the direct map's slot out steer neither the base nor the root (attacker 15, F1)") {
        Image mem = cut_dump(2, 1000, 3000, 400);
        for (int d = 0; d < 3; ++d) {   // a larger group: vmemmap's and the image's slots only, own user halves
            const uint64_t pgd = 0x20000 + 0x1000 * d;
            mem.put64(pgd + 468 * 8, 0x100009000ull | P | RW);
            mem.put64(pgd + 511 * 8, 0x100005000ull | P | RW);
            mem.put64(pgd, (0x30000 + 0x1000 * d) | P | RW | US);
        }
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t = TranslationLayer::search(*phys);
        CHECK(t.dtb() == 0x1000);
        CHECK(t.walk_stats().direct_fill_base == Direct);
        CHECK(t.translate(Direct + 0x100000) == 0x100000u);
    }
    SUBCASE("one page directory: a misread table, refused as cut") {
        Image mem = cut_dump(1, 1000, 100);
        CHECK(contains(search_error(*PhysicalLayer::from_bytes(mem.bytes)), "it looks cut at 4 MiB"));
    }
    SUBCASE("pointers that do not tell the direct map from vmemmap: refused as cut") {
        Image mem = cut_dump(2, 1000, 0, 600);
        CHECK(contains(search_error(*PhysicalLayer::from_bytes(mem.bytes)), "it looks cut at 4 MiB"));
    }
}

TEST_CASE("walker: at most 4 kernel mappings per physical page, whatever the tables claim") {
    SUBCASE("a Linux-like image keeps its aliases and warns about nothing") {
        Image mem = build_x64_4level();
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
        auto n = aliases_of(t);
        CHECK(n[0x10000] == 2);   // direct map + kernel image
        CHECK(t.walk_stats().aliases_skipped == 0);
        CHECK(t.walk_stats().distinct_pages == 1024);
        CHECK(t.warnings().empty());
    }
    SUBCASE("distinct_runs: each physical page once, at its lowest virtual address") {
        Image mem = build_x64_4level();
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
        std::map<uint64_t, uint64_t> lowest;   // paddr → lowest vaddr, from kernel_runs()
        for (const auto& r : t.kernel_runs())
            for (uint64_t o = 0; o < r.size; o += 4096)
                if (!lowest.count(r.paddr + o)) lowest[r.paddr + o] = r.vaddr + o;
        std::map<uint64_t, uint64_t> got;
        uint64_t prev = 0;
        for (const auto& r : t.distinct_runs()) {
            CHECK(r.vaddr >= prev);
            prev = r.vaddr + r.size;
            for (uint64_t o = 0; o < r.size; o += 4096) {
                CHECK(got.count(r.paddr + o) == 0);
                got[r.paddr + o] = r.vaddr + o;
            }
        }
        CHECK(got == lowest);
    }
    SUBCASE("the espfix area aliases by design: no warning, even when few pages are present (a cut dump)") {
        // PML4[slot] → PDPT 0x6000 [0] → PD 0x7000 [0..15] → PT 0x8000, all 512 entries → 0x100000,
        // as Linux's espfix_64.c clones one stack page; slot 510 is the espfix area.
        for (uint64_t slot : {510u, 509u}) {
            CAPTURE(slot);
            Image mem = build_x64_4level();
            mem.put64(0x1000 + slot * 8, 0x6000 | P | RW);
            mem.put64(0x6000, 0x7000 | P | RW);
            for (uint64_t i = 0; i < 16; ++i) mem.put64(0x7000 + 8 * i, 0x8000 | P | RW);
            for (uint64_t i = 0; i < 512; ++i) mem.put64(0x8000 + 8 * i, 0x100000 | P | RW);
            auto phys = PhysicalLayer::from_bytes(mem.bytes);
            TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
            const auto st = t.walk_stats();
            CHECK(st.aliases_skipped > st.distinct_pages / 8);   // the old rule fired on both
            if (slot == 510) {
                CHECK(st.aliases_espfix == st.aliases_skipped);
                CHECK(t.warnings().empty());
            } else {
                CHECK(st.aliases_espfix == 0);
                REQUIRE(t.warnings().size() == 1);
                CHECK(contains(t.warnings()[0], "more than 4 times outside the espfix area"));
            }
        }
    }
    SUBCASE("four clones of the direct map's entry skip the real one: said, weighed by the pages it spans") {
        // The tester's attack 6 (B1): PDPT entries written to map what the direct map maps, at lower
        // addresses, so the alias bound keeps them and skips the real mapping. On the real dump one
        // skipped page directory counted as one mapping against 65,000 distinct pages, and nothing
        // was said; now it weighs the 262,144 pages its entry spans.
        Image mem = build_x64_4level();
        uint64_t direct = 0;   // PDPT2[0]: the 1 GiB direct-map page
        std::memcpy(&direct, mem.bytes.data() + 0x5000, 8);
        for (uint64_t i = 1; i <= 4; ++i) mem.put64(0x5000 + 8 * i, direct);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
        const auto st = t.walk_stats();
        CHECK(st.alias_pages_skipped >= 262144);   // the skipped entry's 1 GiB, not one mapping
        REQUIRE(t.warnings().size() == 1);
        CHECK(contains(t.warnings()[0], "crafted or corrupt page tables?"));
        CHECK(contains(t.warnings()[0], "the lowest addresses kept"));
    }
    struct Case { const char* name; AliasBomb kind; PagingMode mode; uint64_t distinct; };
    for (Case c : {Case{"1 GiB pages", AliasBomb::Gib1, PagingMode::X86_64_4Level, 256},
                   Case{"5-level, shared tables", AliasBomb::La57, PagingMode::X86_64_5Level, 256},
                   Case{"sprayed page tables", AliasBomb::Spray, PagingMode::X86_64_4Level, 1}}) {
        CAPTURE(c.name);
        Image mem = build_alias_bomb(0x100000, c.kind);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t(*phys, c.mode, 0x1000);
        auto n = aliases_of(t);
        CHECK(n.size() == c.distinct);
        for (const auto& [pa, k] : n) CHECK(k == 4);
        CHECK(t.walk_stats().distinct_pages == c.distinct);
        CHECK(t.walk_stats().aliases_skipped > 0);
        REQUIRE(t.warnings().size() == 1);
        CHECK(contains(t.warnings()[0], "more than 4 times"));
        // The lowest virtual addresses are kept: the first four entries of the first kernel table.
        CHECK(t.kernel_runs().front().vaddr == (c.mode == PagingMode::X86_64_5Level ? 0xff00000000000000ull
                                                                                   : 0xffff800000000000ull));
        // The search over such an image ends, with a root or a reason.
        CHECK_THROWS_WITH_AS(TranslationLayer::search(*phys), doctest::Contains("no kernel page tables"), InputError);
    }
}

namespace {

// The tester's attack 6 in miniature: build_x64_4level with its direct map moved from PDPT
// 0x5000 [0] to [9] (0xffff800240000000) — as a page directory 0x6000 of two 2 MiB pages (the
// real dump's layout), or as the 1 GiB page — 256 words at 0x300000 pointing into it (a
// kernel's own pointers), and `clones` (at most 8) copies of the direct map's PDPT entry written
// into the free entries below it, [8] down to [1]. `anchor`: the kernel image's page 0x3ff000
// holds the direct map's base, as the kernel's page_offset_base does (paging::direct_map_anchor).
constexpr uint64_t kDirect = 0xffff800240000000ull;
constexpr uint64_t kGiB = uint64_t{1} << 30;
Image build_cloned_direct_map(unsigned clones, bool gib_page = false, bool anchor = true) {
    Image mem = build_x64_4level();
    uint64_t direct = 0x6000 | P | RW | 0x60;
    if (gib_page) std::memcpy(&direct, mem.bytes.data() + 0x5000, 8);
    mem.put64(0x6000, 0 | P | RW | PS);
    mem.put64(0x6008, 0x200000 | P | RW | PS);
    mem.put64(0x5000, 0);
    mem.put64(0x5000 + 9 * 8, direct);
    for (uint64_t i = 0; i < 256; ++i) mem.put64(0x300000 + 8 * i, kDirect + 0x10000 + 16 * i);
    for (unsigned k = 0; k < clones && k < 8; ++k) mem.put64(0x5000 + 8 * (8 - k), direct);
    if (anchor) mem.put64(0x3ff000 + 0x28, kDirect);
    return mem;
}

// An x86-64 image (root 0x1000) with the layers over it, kept together: the layers read its bytes.
struct Layered {
    Image mem;
    std::unique_ptr<PhysicalLayer> phys = PhysicalLayer::from_bytes(mem.bytes);
    TranslationLayer t{*phys, PagingMode::X86_64_4Level, 0x1000};
};

// Tester 8's spray (F1): build_cloned_direct_map and 600 pointers into each clone's region,
// written into free memory at 0x100000 — more than the 256 the real direct map gets.
Image build_sprayed_clones(unsigned clones, bool gib_page, bool anchor) {
    Image mem = build_cloned_direct_map(clones, gib_page, anchor);
    uint64_t at = 0x100000;
    for (unsigned k = 0; k < clones && k < 8; ++k)
        for (uint64_t i = 0; i < 600; ++i, at += 8) mem.put64(at, kDirect - (k + 1) * kGiB + 0x10000 + 16 * (i % 256));
    return mem;
}

std::vector<std::tuple<uint64_t, uint64_t, uint64_t>> runs_of(std::span<const VirtualRun> runs) {
    std::vector<std::tuple<uint64_t, uint64_t, uint64_t>> out;
    for (const auto& r : runs) out.emplace_back(r.vaddr, r.paddr, r.size);
    return out;
}

// Whether the real direct map's mapping of 0x10000 (kDirect + 0x10000) is among `t`'s kernel runs.
bool real_direct_map_kept(const TranslationLayer& t) {
    for (const auto& r : t.kernel_runs())
        if (kDirect + 0x10000 - r.vaddr < r.size) return true;
    return false;
}

}  // namespace

TEST_CASE("walker: crafted aliases of the direct map lose to the mapping the dump's pointers use (attack 6, B1)") {
    // A page directory cloned 1 to 8 times; the 1 GiB page from 2 clones on (a large page mapped
    // twice is how a kernel maps its image and vmemmap: the walk looks closer from three).
    struct Case { unsigned clones; bool gib_page; };
    for (Case c : {Case{1, false}, Case{3, false}, Case{4, false}, Case{8, false}, Case{2, true}, Case{4, true}})
      for (bool anchor : {true, false}) {
        const unsigned clones = c.clones;
        CAPTURE(clones);
        CAPTURE(c.gib_page);
        CAPTURE(anchor);
        const Image honest = build_cloned_direct_map(0, c.gib_page, anchor);
        auto honest_phys = PhysicalLayer::from_bytes(honest.bytes);
        TranslationLayer h(*honest_phys, PagingMode::X86_64_4Level, 0x1000);
        REQUIRE(h.warnings().empty());
        REQUIRE(h.translate(kDirect + 0x10000) == 0x10000u);
        Image mem = build_cloned_direct_map(clones, c.gib_page, anchor);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
        // The honest mappings exactly: the clones are nobody's target.
        CHECK(runs_of(t.kernel_runs()) == runs_of(h.kernel_runs()));
        CHECK(runs_of(t.mapped_kernel_runs()) == runs_of(h.mapped_kernel_runs()));
        CHECK(runs_of(t.distinct_runs()) == runs_of(h.distinct_runs()));
        const auto st = t.walk_stats();
        {   // said: the clones' 1 GiB each (the old rule, lowest addresses kept, skipped the real
            // one from 4 clones on and said nothing below)
            CHECK(st.aliases_by_evidence);
            CHECK(st.direct_map == (anchor ? kDirect : 0));
            REQUIRE(t.warnings().size() == 1);
            CHECK(contains(t.warnings()[0], "crafted or corrupt page tables?"));
            CHECK(contains(t.warnings()[0], anchor ? "the direct map at 0xffff800240000000 (the base the kernel image holds) kept first"
                                                   : "chosen by the dump's pointer counts alone (no direct-map base in the kernel image)"));
        }
        // The search finds the root too (with 3 clones the kernel text was the fifth mapping of
        // its pages, skipped, and the root refused: "no kernel text").
        auto s = TranslationLayer::search(*phys);
        CHECK(s.dtb() == 0x1000);
        CHECK(runs_of(s.kernel_runs()) == runs_of(h.kernel_runs()));
    }
    SUBCASE("with no pointer anywhere to tell them apart, the lowest addresses are kept, as before") {
        Image mem = build_cloned_direct_map(4, false, false);
        for (uint64_t i = 0; i < 256; ++i) mem.put64(0x300000 + 8 * i, 0);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
        CHECK_FALSE(t.walk_stats().aliases_by_evidence);
        CHECK_FALSE(real_direct_map_kept(t));   // the fifth mapping, skipped
        REQUIRE(t.warnings().size() == 1);
        CHECK(contains(t.warnings()[0], "the lowest addresses kept"));
    }
}

TEST_CASE("walker: pointers sprayed at clones of the direct map do not make them win (tester 8, F1)") {
    // Four clones below the direct map, each the target of 600 sprayed pointers against the real
    // one's 256: by pointer counts alone the clones are the four best aliases.
    for (bool gib_page : {false, true}) {
        CAPTURE(gib_page);
        const Layered honest{build_cloned_direct_map(0, gib_page)};
        const TranslationLayer& h = honest.t;
        SUBCASE("the kernel image holds the direct map's base: the honest mappings exactly, said") {
            const Layered l{build_sprayed_clones(4, gib_page, true)};
            const TranslationLayer& t = l.t;
            CHECK(runs_of(t.kernel_runs()) == runs_of(h.kernel_runs()));
            CHECK(runs_of(t.distinct_runs()) == runs_of(h.distinct_runs()));
            const auto st = t.walk_stats();
            CHECK(st.direct_map == kDirect);
            REQUIRE(t.warnings().size() == 1);
            CHECK(contains(t.warnings()[0], "the direct map at 0xffff800240000000 (the base the kernel image holds) kept first"));
            // The example names a sprayed clone with its pointers, beside the direct map's.
            CHECK(contains(t.warnings()[0], "(600 pointers into its region) beside 0xffff800240000000 ("));
        }
        SUBCASE("no base in the kernel image: pointer counts decide, and the warning says a forged alias may have won") {
            const Layered l{build_sprayed_clones(4, gib_page, false)};
            const TranslationLayer& t = l.t;
            CHECK(t.walk_stats().direct_map == 0);
            REQUIRE(t.warnings().size() == 1);
            CHECK(contains(t.warnings()[0], "which a forged dump can inflate: a forged alias may have won"));
            CHECK_FALSE(contains(t.warnings()[0], "kept first"));
        }
        SUBCASE("three sprayed clones: the real mapping is among the four best and is kept whatever the walk meets first") {
            const Layered l{build_sprayed_clones(3, gib_page, false)};
            const TranslationLayer& t = l.t;
            CHECK(t.translate(kDirect + 0x10000) == 0x10000u);
            CHECK(real_direct_map_kept(t));
        }
    }
}

TEST_CASE("walker: the direct map under a table the dump lacks is read linearly at the base the kernel image holds (attacker 12)") {
    // build_cloned_direct_map(0): the direct map at kDirect through PDPT 0x5000 [9] → PD 0x6000
    // (0–4 MiB), its base held by the kernel image. [9] pointed at a table past the dump's end (as
    // entries redirected past the file, or a dump cut below the kernel's late tables) hid every page.
    Image mem = build_cloned_direct_map(0);
    mem.put64(0x5000 + 9 * 8, 0x10000000 | P | RW);
    mem.put64(0x3000 + 511 * 8, 0x10001000 | P | RW);   // and the top 2 MiB (-errno values): not the direct map
    const Layered l{std::move(mem)};
    const TranslationLayer& t = l.t;
    const auto st = t.walk_stats();
    CHECK(st.absent_tables == 2);
    CHECK(st.direct_fill_base == kDirect);
    CHECK(st.direct_fill_pages == 1024);   // every present page, once
    CHECK(t.translate(kDirect + 0x10000) == 0x10000u);
    CHECK(t.translate(kDirect + 0x3ff000) == 0x3ff000u);
    CHECK_FALSE(t.translate(kDirect + 0x400000).has_value());   // past the dump: nothing
    CHECK_FALSE(t.translate(0xffffffffffe00000ull).has_value());
    REQUIRE(t.warnings().size() == 1);
    CHECK(contains(t.warnings()[0], "of the direct map under them, the dump's 1024 present pages (4 MiB) are read at "
                                    "0xffff800240000000 + their physical address"));
    // Without the base in the image there is no telling where the direct map was: nothing is added.
    Image bare = build_cloned_direct_map(0, false, false);
    bare.put64(0x5000 + 9 * 8, 0x10000000 | P | RW);
    const Layered b{std::move(bare)};
    CHECK(b.t.walk_stats().direct_fill_pages == 0);
    CHECK_FALSE(b.t.translate(kDirect + 0x10000).has_value());
}

TEST_CASE("walker: the direct-map base in the kernel image is weighed against the dump's pointers (tester 9, T9-1)") {
    for (bool gib_page : {false, true}) {
        CAPTURE(gib_page);
        const Layered honest{build_cloned_direct_map(0, gib_page)};
        const TranslationLayer& h = honest.t;
        SUBCASE("a clone's base beside the real one in the image (freed image pages hold any word): the pointers pick") {
            Image mem = build_cloned_direct_map(gib_page ? 2 : 4, gib_page, true);
            mem.put64(0x3ff000 + 0x30, kDirect - kGiB);
            const Layered l{std::move(mem)};
            const TranslationLayer& t = l.t;
            CHECK(runs_of(t.kernel_runs()) == runs_of(h.kernel_runs()));
            const auto st = t.walk_stats();
            CHECK(st.direct_map == kDirect);
            CHECK(st.direct_map_candidates == 2);
            REQUIRE(t.warnings().size() == 1);
            CHECK(contains(t.warnings()[0], "the direct map at 0xffff800240000000 (of 2 candidate bases the kernel image "
                                            "holds, the one the dump's pointers use most, which a forged dump can inflate) kept first"));
        }
        SUBCASE("the base forged to a clone above the direct map: overruled by the pointers, said") {
            // The clone maps the direct map's page directory (or 1 GiB page) 1 GiB higher; the
            // image's only base names it (both of the kernel's copies rewritten). Before: the
            // clone kept first, the real direct map below it dropped, the graph half empty.
            Image mem = build_cloned_direct_map(0, gib_page, false);
            uint64_t entry = 0;
            std::memcpy(&entry, mem.bytes.data() + 0x5000 + 9 * 8, 8);
            mem.put64(0x5000 + 10 * 8, entry);
            mem.put64(0x3ff000 + 0x28, kDirect + kGiB);
            const Layered l{std::move(mem)};
            const TranslationLayer& t = l.t;
            CHECK(t.translate(kDirect + 0x10000) == 0x10000u);
            CHECK(runs_of(t.distinct_runs()) == runs_of(h.distinct_runs()));
            CHECK(real_direct_map_kept(t));
            if (gib_page) {   // one alias of a large page is how kernels map their image: no contest, lowest kept
                CHECK(t.warnings().empty());
                return;
            }
            const auto st = t.walk_stats();
            CHECK(st.direct_map == 0);
            CHECK(st.direct_map_overruled == kDirect + kGiB);
            CHECK(st.overruled_other_pointers > 16 * st.overruled_own_pointers);
            REQUIRE(t.warnings().size() == 1);
            CHECK(contains(t.warnings()[0], "the direct-map base the kernel image holds, 0xffff800280000000, overruled"));
            CHECK(contains(t.warnings()[0], "a forged alias may have won"));
        }
        SUBCASE("the base forged to the first of two 1 GiB-page clones above: overruled (tester 10)") {
            // The clones share no table with the real direct map's page directory, so only the
            // addresses mapping physical 0 tell them apart: the real one gets the 256 pointers.
            Image mem = build_cloned_direct_map(0, gib_page, false);
            const uint64_t gib = 0 | P | RW | PS;
            mem.put64(0x5000 + 10 * 8, gib);
            mem.put64(0x5000 + 11 * 8, gib);
            mem.put64(0x3ff000 + 0x28, kDirect + kGiB);
            const Layered l{std::move(mem)};
            const TranslationLayer& t = l.t;
            CHECK(t.translate(kDirect + 0x10000) == 0x10000u);
            CHECK(real_direct_map_kept(t));
            // With the real direct map a 1 GiB page too, the page has three aliases: the choice
            // runs and overrules the base (else two aliases of a large page: no contest, lowest kept).
            CHECK(t.walk_stats().direct_map_overruled == (gib_page ? kDirect + kGiB : 0));
        }
        SUBCASE("a clone's base planted in the image and pointers sprayed at the clones: they win, and the warning says it may be so") {
            // Not covered: an attacker who forges both the base and more pointers than the
            // kernel's own (600 against 256 here) wins; what the analyst is told is that a forged
            // dump can inflate the choice.
            Image mem = build_sprayed_clones(gib_page ? 2 : 4, gib_page, true);
            mem.put64(0x3ff000 + 0x30, kDirect - kGiB);
            const Layered l{std::move(mem)};
            REQUIRE(l.t.warnings().size() == 1);
            CHECK(contains(l.t.warnings()[0], "which a forged dump can inflate"));
        }
    }
}

TEST_CASE("walker: copies of last-level tables below the direct map do not push it out (tester 8, F2)") {
    // The direct map's first 2 MiB through a page table 0x7000 (4 KiB pages, as Linux maps the
    // first megabytes), the next 2 MiB a large page; `copies` page directories below it (PDPT
    // [8] down), each pointing at its own copy of the page table: each low page mapped 1 + copies
    // times through distinct tables, which no table-level rule sees.
    auto build = [](unsigned copies) {
        Image mem = build_cloned_direct_map(0);
        mem.put64(0x6000, 0x7000 | P | RW);
        for (uint64_t i = 0; i < 512; ++i) mem.put64(0x7000 + 8 * i, (i * 0x1000) | P | RW);
        for (unsigned k = 0; k < copies; ++k) {
            const uint64_t pd = 0x20000 + 0x2000 * k, pt = pd + 0x1000;
            std::memcpy(mem.bytes.data() + pt, mem.bytes.data() + 0x7000, 0x1000);
            mem.put64(pd, pt | P | RW);
            mem.put64(0x5000 + 8 * (8 - k), pd | P | RW);
        }
        return mem;
    };
    const Image honest = build(0);
    auto honest_phys = PhysicalLayer::from_bytes(honest.bytes);
    TranslationLayer h(*honest_phys, PagingMode::X86_64_4Level, 0x1000);
    REQUIRE(h.warnings().empty());
    REQUIRE(h.translate(kDirect + 0x10000) == 0x10000u);
    for (unsigned copies : {3u, 4u, 6u}) {
        CAPTURE(copies);
        const Image mem = build(copies);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer t(*phys, PagingMode::X86_64_4Level, 0x1000);
        if (copies == 3) {   // 4 mappings per page (5 with the image's): not contested, all kept
            CHECK(t.translate(kDirect + 0x10000) == 0x10000u);
            continue;
        }
        // The old rule kept the four lowest (the copies) and said nothing.
        CHECK(runs_of(t.kernel_runs()) == runs_of(h.kernel_runs()));
        CHECK(runs_of(t.distinct_runs()) == runs_of(h.distinct_runs()));
        CHECK(t.walk_stats().direct_map == kDirect);
        REQUIRE(t.warnings().size() == 1);
        CHECK(contains(t.warnings()[0], "kept first"));
        CHECK(contains(t.warnings()[0], "crafted or corrupt page tables?"));
        auto s = TranslationLayer::search(*phys);
        CHECK(s.dtb() == 0x1000);
        CHECK(runs_of(s.kernel_runs()) == runs_of(h.kernel_runs()));
    }
}

TEST_CASE("root search: junk in a few empty kernel tables does not hide the kernel's root (tester 9, T9-3)") {
    // Empty kernel PDPTs (as Linux preallocates for vmalloc) given three non-present junk words
    // each, which the MMU ignores. Counted over all tables, one such table rejected the root.
    for (unsigned tables : {1u, 2u, 3u}) {
        CAPTURE(tables);
        Image mem = build_x64_4level();
        for (unsigned k = 0; k < tables; ++k) {
            const uint64_t pdpt = 0x7000 + 0x1000 * k;
            mem.put64(0x1000 + (300 + k) * 8, pdpt | P | RW);
            for (int i = 0; i < 3; ++i) mem.put64(pdpt + 8 * i, 0x4141414141414140ull);
        }
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        auto t = TranslationLayer::search(*phys);   // 3 tables: more malformed than sound, but the root has sound ones
        CHECK(t.dtb() == 0x1000);
        CHECK(t.mode() == PagingMode::X86_64_4Level);
        CHECK(t.translate(0xffff800000000000ull + 0x10000) == 0x10000u);
    }
}

TEST_CASE("root search: copies of a decoy count once, and a weak root that outnumbers a decoy is walked (tester 11)") {
    // build_x64_4level's root 0x1000 and three process PGDs sharing its kernel half, each with its
    // own user half (4 distinct members), mapping all 1024 pages. A decoy PML4 shares [511] (the
    // image) and maps the direct map through its own PDPT/PD: a 2 MiB page at 0 and a page table
    // for 2–4 MiB leaving out the page at 0x3ff000 (all but 1/256: the search's early stop).
    // 100 identical copies of it outnumbered the kernel's group and were walked first, and the
    // early stop hid the page.
    const uint64_t kDecoy = 0x120000, kPgds = 0x190000;
    Image mem = build_x64_4level();
    for (uint64_t k = 0; k < 3; ++k) {
        const uint64_t pgd = kPgds + 0x1000 * k;
        std::memcpy(mem.bytes.data() + pgd, mem.bytes.data() + 0x1000, 0x1000);
        mem.put64(pgd, (pgd + 0x10000) | P | RW);
    }
    mem.put64(0x110000, 0x111000 | P | RW);             // decoy PDPT [0] -> PD 0x111000
    mem.put64(0x111000, 0 | P | RW | PS);               // 0-2 MiB
    mem.put64(0x111000 + 8, 0x112000 | P | RW);         // 2-4 MiB through a page table ...
    for (uint64_t i = 0; i < 511; ++i) mem.put64(0x112000 + 8 * i, (0x200000 + (i << 12)) | P | RW);   // ... but 0x3ff000
    for (uint64_t k = 0; k < 100; ++k) {
        mem.put64(kDecoy + 0x1000 * k + 256 * 8, 0x110000 | P | RW);
        mem.put64(kDecoy + 0x1000 * k + 511 * 8, read_le(mem.bytes, 0x1000 + 511 * 8, 8));
    }
    mem.pattern(0x3ff000, 0x1000, 7);   // data the decoy would hide
    {
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        auto t = TranslationLayer::search(*phys);
        CHECK(t.dtb() == 0x1000);
        CHECK(t.translate(0xffff800000000000ull + 0x3ff000) == 0x3ff000u);
        CHECK(t.warnings().empty());
    }
    // The kernel's own tables given junk the MMU ignores (two non-present words beside each
    // one good entry: malformed, so its roots are weak), the decoy's own PDPT sound: the
    // kernel's group, of 4 distinct members against the decoy's 1, is still walked and wins.
    for (uint64_t table : {0x5000u, 0x2000u})
        for (int i = 100; i < 102; ++i) mem.put64(table + 8 * i, 0x4141414141414140ull);
    auto phys = PhysicalLayer::from_bytes(mem.bytes);
    auto t = TranslationLayer::search(*phys);
    CHECK(t.dtb() == 0x1000);
    CHECK(t.translate(0xffff800000000000ull + 0x3ff000) == 0x3ff000u);
    REQUIRE(!t.warnings().empty());
    CHECK(contains(t.warnings()[0], "root 0x1000 (x64) is used although its kernel tables are malformed"));
}

TEST_CASE("root search: a decoy whose kernel half hashes as the kernel's does not join its group (reviewer 106 H1)") {
    // The table hash's differential that holds for every seed: bit 63 (NX) of one entry flipped, the
    // next nonzero entry moved to cancel it (graph/root_search.cpp ChildCache). The kernel's PDPT2
    // 0x5000: [0] a 1 GiB page at 4 GiB (absent), [1] the direct map (1 GiB page at 0). The decoy PML4
    // at 0, below the kernel's 0x1000, is its copy with [256] → 0x6000: [0] with NX, [1] moved to
    // 16 GiB (absent): the direct map gone. Grouped by hash, the decoy was the group's first member,
    // every member was judged by what it maps (the image: plausible), and it won the tie by its lower
    // address: the dump read through the attacker's tables.
    constexpr uint64_t G = 0x9e3779b97f4a7c15ull, kDelta = (uint64_t{1} << 63) | (uint64_t{1} << 34);
    Image mem = build_x64_4level();
    mem.bytes.resize(0x4000000, 0);   // 64 MiB: what the kernel image's window maps is far from most of it
    mem.pattern(0x1000000, 0x3000000, 5);
    const uint64_t e0 = 0x100000000ull | P | RW | PS, e1 = 0 | P | RW | PS;
    mem.put64(0x5000, e0);
    mem.put64(0x5000 + 8, e1);
    mem.put64(0x6000, e0 ^ NX);
    mem.put64(0x6000 + 8, ((e1 + G) ^ kDelta) - G);
    CHECK(read_le(mem.bytes, 0x6000 + 8, 8) == 0x8000000400000083ull);   // present, a 1 GiB page, NX, at 16 GiB
    std::memcpy(mem.bytes.data(), mem.bytes.data() + 0x1000, 0x1000);
    mem.put64(256 * 8, 0x6000 | P | RW);
    mem.put64(0x4000 + 7 * 8, 0 | P);   // the decoy's page mapped in the image, as the kernel's root is: ties but for the address
    auto phys = PhysicalLayer::from_bytes(mem.bytes);
    auto t = TranslationLayer::search(*phys);
    CHECK(t.dtb() == 0x1000);
    CHECK(t.translate(0xffff800040000000ull + 0x3fff000) == 0x3fff000u);
}

TEST_CASE("root search: PAE processes with their own copies of the kernel's page directory group as one (tester 11)") {
    // 686-pae with page-table isolation: every process PDPT points at its own copy of the kernel
    // PD (SHARED_KERNEL_PMD 0). Five processes, each PDPT [0] → its own user PD, [3] → its own copy
    // of one kernel PD: 4 × 2 MiB pages, the direct map of all 8 MiB at 0xc0000000. Four decoy
    // PDPTs, each with its own user PD, share a decoy PD that maps 0–6 MiB as 2 MiB pages and
    // 6–8 MiB through a page table that leaves out the page at 0x7ff000 (all but 1/256 of the
    // pages: the search's early stop). Grouped by the kernel PDs' addresses, the processes were
    // five groups of one, the decoy a group of four, walked first, and it hid the page.
    constexpr uint64_t A = 0x20;
    Image mem(0x800000);
    auto kernel_pd = [&](uint64_t pd) {
        for (uint64_t i = 0; i < 4; ++i) mem.put64(pd + 8 * i, (i << 21) | P | RW | PS | A);
    };
    for (uint64_t k = 0; k < 5; ++k) {
        const uint64_t pdpt = 0x100000 + 0x1000 * k, user = 0x110000 + 0x1000 * k, kpd = 0x120000 + 0x1000 * k;
        mem.put64(pdpt, user | P);
        mem.put64(user, (0x130000 + 0x1000 * k) | P | RW | US | A);
        mem.put64(pdpt + 3 * 8, kpd | P);
        kernel_pd(kpd);
    }
    const uint64_t decoy_pd = 0x140000, decoy_pt = 0x141000;
    for (uint64_t i = 0; i < 3; ++i) mem.put64(decoy_pd + 8 * i, (i << 21) | P | RW | PS | A);
    mem.put64(decoy_pd + 3 * 8, decoy_pt | P | RW | A);
    for (uint64_t i = 0; i < 511; ++i) mem.put64(decoy_pt + 8 * i, (0x600000 + (i << 12)) | P | RW | A);
    for (uint64_t k = 0; k < 4; ++k) {
        const uint64_t pdpt = 0x150000 + 0x1000 * k, user = 0x160000 + 0x1000 * k;
        mem.put64(pdpt, user | P);
        mem.put64(user, (0x170000 + 0x1000 * k) | P | RW | US | A);
        mem.put64(pdpt + 3 * 8, decoy_pd | P);
    }
    mem.pattern(0x7ff000, 0x1000, 9);   // data the decoy would hide
    auto phys = PhysicalLayer::from_bytes(mem.bytes);
    auto t = TranslationLayer::search(*phys);
    CHECK(t.mode() == PagingMode::X86_PAE);
    CHECK(t.dtb() >= 0x100000);
    CHECK(t.dtb() < 0x105000);
    CHECK(t.translate(0xc0000000u + 0x7ff000) == 0x7ff000u);
}

TEST_CASE("root search: a root with only malformed tables is used as the fallback, and said to be (tester 10)") {
    // Each kernel table of build_x64_4level gets two non-present junk words beside its one good
    // entry (malformed: more than 1 bad per 4 good), and the PDPT under [511] an entry pointing at
    // a page directory past the dump's end. No other root maps a kernel, so this weak root is
    // walked; the table past the end is one of its junk entries, not evidence of a cut dump.
    Image mem = build_x64_4level();
    for (uint64_t table : {0x5000u, 0x2000u})
        for (int i = 100; i < 102; ++i) mem.put64(table + 8 * i, 0x4141414141414140ull);
    mem.put64(0x2000 + 7 * 8, 0x7f000000 | P | RW);
    auto phys = PhysicalLayer::from_bytes(mem.bytes);
    auto t = TranslationLayer::search(*phys);
    CHECK(t.dtb() == 0x1000);
    CHECK(t.translate(0xffff800000000000ull + 0x10000) == 0x10000u);
    const auto w = t.warnings();
    REQUIRE(w.size() == 2);
    CHECK(w[0] == "translation: root 0x1000 (x64) is used although its kernel tables are malformed (entries no kernel "
                  "writes): no root with sound tables was found to map as much; what it maps may be partly junk");
    CHECK(contains(w[1], "1 page-table page is not in the dump (paddr 0x7f000000), it lies beyond its end at 0x400000 "
                         "(entries of malformed tables: junk, not a cut)"));
    CHECK(!contains(w[1], "a cut dump"));
    // The same entry past the end under sound tables: a cut dump, as before.
    Image sound = build_x64_4level();
    sound.put64(0x2000 + 7 * 8, 0x7f000000 | P | RW);
    auto sound_phys = PhysicalLayer::from_bytes(sound.bytes);
    const auto ws = TranslationLayer::search(*sound_phys).warnings();
    REQUIRE(ws.size() == 1);
    CHECK(contains(ws[0], "(a cut dump?)"));
}

TEST_CASE("root search: entries pointing past the dump do not hide the kernel's root (attack 6, B2)") {
    // build_x64_4level's PDPT 0x5000 with `n` more entries pointing at page directories beyond
    // the dump's end (4 MiB): four of them made the root fail the structural test.
    const Image honest = build_x64_4level();
    auto honest_phys = PhysicalLayer::from_bytes(honest.bytes);
    const TranslationLayer h(*honest_phys, PagingMode::X86_64_4Level, 0x1000);
    for (unsigned n : {1u, 4u, 16u, 200u}) {
        CAPTURE(n);
        Image mem = honest;
        for (uint64_t i = 1; i <= n; ++i) mem.put64(0x5000 + 8 * i, (0x40000000 + 0x1000 * i) | P | RW | 0x60);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        auto t = TranslationLayer::search(*phys);
        CHECK(t.mode() == PagingMode::X86_64_4Level);
        CHECK(t.dtb() == 0x1000);
        CHECK(runs_of(t.kernel_runs()) == runs_of(h.kernel_runs()));
        CHECK(t.walk_stats().absent_tables == n);
        REQUIRE(t.warnings().size() == 1);
        CHECK(contains(t.warnings()[0], "not in the dump"));
        CHECK(contains(t.warnings()[0], "beyond its end"));
    }
}

// build_x64_4level grown to 16 MiB (its 1 GiB direct map covers it all) with a copy of its PML4 at
// `copy` holding the kernel image's entry [511] only: the start of the CPU-note attacks below.
Image with_pml4_copy(uint64_t copy) {
    Image mem = build_x64_4level();
    mem.bytes.resize(0x1000000, 0);
    mem.put64(copy + 511 * 8, read_le(mem.bytes, 0x1000 + 511 * 8, 8));
    return mem;
}

// An image as a QEMU ELF core with one CPU note, its physical layer and the root detect() chose.
struct NoteDump {
    std::vector<uint8_t> elf;
    std::unique_ptr<PhysicalLayer> phys;
    TranslationLayer t;
    NoteDump(const Image& mem, const CpuNote& cpu)
        : elf(to_elf(mem.bytes, {{0, mem.bytes.size()}}, {cpu}, true)), phys(PhysicalLayer::from_bytes(elf)),
          t(TranslationLayer::detect(*phys)) {}
};

TEST_CASE("detect: a CPU note whose CR3 maps no kernel gives way to the searched root (attack 6, B3)") {
    Image mem = build_x64_4level();
    // 0x2000: the kernel image's PDPT; 0x3000: its page directory (real tables, wrong level).
    for (uint64_t wrong : {0x2000u, 0x3000u}) {
        CAPTURE(wrong);
        CpuNote cpu{0x80050033, wrong, 0x3406f0, true};
        const NoteDump t_dump(mem, cpu);
        const TranslationLayer& t = t_dump.t;
        CHECK(t.dtb() == 0x1000);
        CHECK(t.mode() == PagingMode::X86_64_4Level);
        REQUIRE(!t.warnings().empty());
        const std::string w = t.warnings()[0];
        CHECK(contains(w, "the CPU note's CR3 " + hex(wrong) + " (x64) maps no kernel"));
        CHECK(contains(w, "using the searched root 0x1000 (x64)"));
        // --dtb still overrides everything: taken when it maps something, refused when not.
        if (wrong == 0x2000)
            CHECK(TranslationLayer::detect(*t_dump.phys, wrong, PagingMode::X86_64_4Level).dtb() == wrong);
        else
            CHECK_THROWS_WITH_AS(TranslationLayer::detect(*t_dump.phys, wrong, PagingMode::X86_64_4Level),
                                 doctest::Contains("--dtb: page-table root 0x3000"), InputError);
    }
    SUBCASE("the right note: used, nothing said") {
        CpuNote cpu{0x80050033, 0x1000, 0x3406f0, true};
        const NoteDump t_dump(mem, cpu);
        const TranslationLayer& t = t_dump.t;
        CHECK(t.dtb() == 0x1000);
        CHECK(t.warnings().empty());
    }
}

TEST_CASE("detect: a CPU note whose CR3 maps the kernel image but no direct map (attack 8, F4)") {
    // build_x64_4level grown to 16 MiB (its 1 GiB direct map covers it all) plus a PTI-style copy
    // of the PML4 at 0xf00000 holding entry 511 only (the direct map's 256 dropped), mapped in
    // the image (PT 0x4000 [7]) so that it maps itself, and the kernel banner in the image: the
    // copy maps a kernel by the banner clause alone, 518 pages of the 4096.
    const uint64_t copy = 0xf00000;
    Image mem = with_pml4_copy(copy);
    mem.put64(0x4000 + 7 * 8, copy | P);
    const std::string banner = "Linux version 6.1.0-47-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "
                               "12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2025-11-05)\n";
    std::copy(banner.begin(), banner.end(), mem.bytes.begin() + 0x380000);
    CpuNote cpu{0x80050033, copy, 0x3406f0, true};
    SUBCASE("the searched root maps more: taken, with a warning naming the note's CR3 and why") {
        const NoteDump t_dump(mem, cpu);
        const TranslationLayer& t = t_dump.t;
        CHECK(t.dtb() == 0x1000);
        const uint64_t found = t.walk_stats().distinct_pages;
        const uint64_t note = TranslationLayer(*t_dump.phys, PagingMode::X86_64_4Level, copy).walk_stats().distinct_pages;
        CHECK(note < found / 4);
        REQUIRE(!t.warnings().empty());
        const std::string w = t.warnings()[0];
        CHECK(contains(w, "the CPU note's CR3 " + hex(copy) + " (x64) maps only part of a kernel"));
        CHECK(contains(w, "maps the kernel image but no direct map"));
        CHECK(contains(w, "using the searched root 0x1000 (x64), which maps " + std::to_string(found) +
                              " present pages against the note's " + std::to_string(note)));
    }
    SUBCASE("no searched root maps more: the note's root, said") {
        for (uint64_t i = 0; i < 512; ++i) mem.put64(0x1000 + 8 * i, 0);   // the real PML4 gone
        const NoteDump t_dump(mem, cpu);
        const TranslationLayer& t = t_dump.t;
        CHECK(t.dtb() == copy);
        REQUIRE(!t.warnings().empty());
        CHECK(contains(t.warnings()[0], "maps only part of a kernel"));
        CAPTURE(t.warnings()[0]);
        CHECK(contains(t.warnings()[0], "memory outside the kernel image is missing from the graph"));
    }
    SUBCASE("the real PML4 as the note's CR3: used, nothing said") {
        cpu.cr3 = 0x1000;
        const NoteDump t_dump(mem, cpu);
        const TranslationLayer& t = t_dump.t;
        CHECK(t.dtb() == 0x1000);
        CHECK(t.warnings().empty());
    }
}

TEST_CASE("detect: a CPU note whose CR3 maps a direct map with a hole gives way to a root that maps more (tester 9, T9-2)") {
    // build_x64_4level grown to 16 MiB, and a copy of its tables at 0xf00000 whose direct map is
    // eight 2 MiB pages with the fourth (6–8 MiB) left out: the copy maps the kernel (its image
    // entry, itself, a direct map of 3584 of the 4096 pages), so it was taken without a word and
    // whatever lay in the hole was hidden.
    const uint64_t copy = 0xf00000;
    Image mem = with_pml4_copy(copy);
    mem.put64(copy + 256 * 8, (copy + 0x1000) | P | RW);
    mem.put64(copy + 0x1000, (copy + 0x2000) | P | RW);
    for (uint64_t i = 0; i < 8; ++i)
        if (i != 3) mem.put64(copy + 0x2000 + 8 * i, (i << 21) | P | RW | PS);
    CpuNote cpu{0x80050033, copy, 0x3406f0, true};
    SUBCASE("the searched root maps more: taken, with a warning naming the hole") {
        const NoteDump t_dump(mem, cpu);
        const TranslationLayer& t = t_dump.t;
        CHECK(t.dtb() == 0x1000);
        REQUIRE(!t.warnings().empty());
        CAPTURE(t.warnings()[0]);
        CHECK(contains(t.warnings()[0], "the CPU note's CR3 " + hex(copy) + " (x64) maps only part of a kernel"));
        CHECK(contains(t.warnings()[0], "its direct map leaves out 512 of the 4096 present pages below 0x1000000"));
        CHECK(contains(t.warnings()[0], "using the searched root 0x1000 (x64)"));
    }
    SUBCASE("no searched root maps more: the note's root, said") {
        for (uint64_t i = 0; i < 512; ++i) mem.put64(0x1000 + 8 * i, 0);   // the real PML4 gone
        const NoteDump t_dump(mem, cpu);
        const TranslationLayer& t = t_dump.t;
        CHECK(t.dtb() == copy);
        REQUIRE(!t.warnings().empty());
        CAPTURE(t.warnings()[0]);
        CHECK(contains(t.warnings()[0], "the present pages it leaves out are missing from the graph"));
    }
    SUBCASE("the copy whole: the note's root, nothing said") {
        mem.put64(copy + 0x2000 + 8 * 3, (uint64_t{3} << 21) | P | RW | PS);
        const NoteDump t_dump(mem, cpu);
        const TranslationLayer& t = t_dump.t;
        CHECK(t.dtb() == copy);
        CHECK(t.warnings().empty());
    }
}

TEST_CASE("detect: a CPU note whose CR3 moves the direct map off the base the kernel image holds gives way (tester 10)") {
    // build_x64_4level grown to 16 MiB, its image holding the direct map's base (as
    // page_offset_base does), and a copy of its PML4 at 0xf00000 whose direct map sits 512 GiB
    // higher (PML4 [257] instead of [256]): the copy maps every page, so page counts tie, but no
    // pointer of the dump reaches its direct map.
    const uint64_t copy = 0xf00000;
    Image mem = with_pml4_copy(copy);
    mem.put64(0x3ff000 + 0x28, 0xffff800000000000ull);
    mem.put64(copy + 257 * 8, read_le(mem.bytes, 0x1000 + 256 * 8, 8));
    for (uint64_t pgd : {0xf10000ull, 0xf20000ull}) {   // two process PGDs sharing the kernel's half
        std::memcpy(mem.bytes.data() + pgd, mem.bytes.data() + 0x1000, 0x1000);
        mem.put64(pgd, (pgd + 0x1000) | P | RW);   // each with its own user half (copies count once)
    }
    CpuNote cpu{0x80050033, copy, 0x3406f0, true};
    const NoteDump t_dump(mem, cpu);
    const TranslationLayer& t = t_dump.t;
    CHECK(t.dtb() == 0x1000);
    REQUIRE(!t.warnings().empty());
    CAPTURE(t.warnings()[0]);
    CHECK(contains(t.warnings()[0], "its direct map at 0xffff808000000000 is at no base the kernel image holds"));
    CHECK(contains(t.warnings()[0], "with its direct map whole and at the base the kernel image holds"));
    SUBCASE("the real PML4 as the note's CR3: used, nothing said") {
        cpu.cr3 = 0x1000;
        const NoteDump t2_dump(mem, cpu);
        const TranslationLayer& t2 = t2_dump.t;
        CHECK(t2.dtb() == 0x1000);
        CHECK(t2.warnings().empty());
    }
}

TEST_CASE("root search: pages only partly present are said in the refusal (attack 8, F5)") {
    // The first half of every page of build_x64_4level, one LiME range each: no whole page.
    const Image mem = build_x64_4level();
    std::vector<std::pair<uint64_t, uint64_t>> halves;
    for (uint64_t a = 0; a < mem.bytes.size(); a += 4096) halves.push_back({a, 2048});
    const auto lime = to_lime_ranges(mem.bytes, halves);
    const std::string e = search_error(*PhysicalLayer::from_bytes(lime));
    CAPTURE(e);
    CHECK(contains(e, "no page looks like a kernel page directory; the dump holds 0 bytes of data in 1024 ranges up to 0x3ff800; "));
    CHECK(contains(e, "2 MiB more lie in pages only partly present (ranges that do not cover whole 4 KiB pages), "
                      "which read as absent"));
}
