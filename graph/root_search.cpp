// Finding the page-table root (the CR3 value) of a dump: TranslationLayer::detect() takes it from
// --dtb, the QEMU ELF note's CPU state, or the search; TranslationLayer::search() is the search
// for dumps without CPU state (raw, LiME), in the manner of Volatility 3's automagic/linux.py: a
// step apart from walking the tables (graph/translation.cpp), over the same scheme tables
// (graph/paging.hpp).
#include "graph/kernel_banner.hpp"
#include "graph/layers.hpp"
#include "graph/memory_budget.hpp"   // free_storage
#include "graph/paging.hpp"
#include "graph/parallel_errors.hpp"
#include "graph/text_lines.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <unordered_map>

namespace deepmem {

using namespace paging;

namespace {

// A page that passes the structural test as the top-level table of one scheme.
struct Candidate {
    PagingMode mode = PagingMode::X86_64_4Level;
    uint64_t dtb = 0;
    uint32_t kernel_entries = 0;   // present top-level entries in the kernel half
    uint32_t user_entries = 0;     // present top-level entries below it (0 for swapper_pg_dir)
    uint64_t child_entries = 0;    // present entries in the kernel half's second-level tables
    uint64_t absent_children = 0;  // entries whose table is not in the dump
    uint64_t absent_lo = ~uint64_t{0}, absent_hi = 0;   // their lowest / highest table address
    uint64_t kernel_half = 0;      // hash of the kernel half's entries and its tables' content: equal hashes map alike
    uint64_t user_half = 0;        // hash of the user half's entries: process PGDs differ, copies do not
    // Its kernel tables look less like tables than not (malformed ones and no sound one):
    // walked only when no other root maps a kernel, or when its group outnumbers the best's
    // (junk written into the kernel's tables must not make its own root unfindable: tester 9,
    // T9-3; tester 11).
    bool weak = false;
};

// What a root maps (one full enumeration, shared by candidates with the same kernel half).
struct Mapping {
    bool ok = false;               // enumerated within the work bound
    uint64_t distinct_pages = 0;   // present physical pages mapped: the ranking key
    uint64_t data_pages = 0;       // of them, pages of the dump's data (not a sparse file's holes)
    uint64_t direct_pages = 0;     // pages of the largest set sharing one vaddr − paddr offset
    uint64_t direct_end = 0;       // the physical end of that set's highest page
    uint64_t direct_offset = 0;    // that set's vaddr − paddr
    uint64_t text_pages = 0;       // pages mapped in the scheme's kernel-text window
    uint64_t anomalies = 0;        // looping entries + large pages with reserved bits
    uint64_t absent_tables = 0, absent_lo = ~uint64_t{0}, absent_hi = 0;
    std::vector<VirtualRun> runs;
};

// The physical memory `runs` map, anywhere and in the scheme's kernel-text window: whether a
// root maps its own table ("maps itself"), and whether in the image (x86-64 swapper_pg_dir is).
struct RootCover {
    PhysicalCover anywhere, image;
    RootCover(const Scheme& s, std::span<const VirtualRun> runs) {
        for (const VirtualRun& r : runs) {
            anywhere.add(r.paddr, r.paddr + r.size);
            const uint64_t lo = std::max(r.vaddr, s.anchor_vaddr), hi = std::min(r.vaddr + r.size, s.anchor_vaddr + s.text_window);
            if (lo < hi) image.add(r.paddr + (lo - r.vaddr), r.paddr + (hi - r.vaddr));
        }
        anywhere.finish();
        image.finish();
    }
};

struct Ranked {
    const Candidate* c;
    const Mapping* m;
    bool maps_itself = false;      // some kernel page maps the root table's own physical page
    bool in_image = false;         // mapped in the kernel-text window (x86-64 swapper_pg_dir is)
};

// x64, la57, pae, x86: the order schemes are tried in and win ties in.
int scheme_rank(PagingMode m) {
    switch (m) {
    case PagingMode::X86_64_4Level: return 0;
    case PagingMode::X86_64_5Level: return 1;
    case PagingMode::X86_PAE: return 2;
    case PagingMode::X86_32: return 3;
    }
    return 4;
}

// The order among plausible roots: true when a is the better root. What a root maps comes first,
// whatever the scheme; the rest only picks among roots that map alike (all process PGDs share
// the kernel half): fewest anomalies, maps itself, in the kernel image, fewest user entries
// (swapper_pg_dir has none), earlier scheme, lowest address.
bool better(const Ranked& a, const Ranked& b) {
    if (a.m->distinct_pages != b.m->distinct_pages) return a.m->distinct_pages > b.m->distinct_pages;
    if (a.m->anomalies != b.m->anomalies) return a.m->anomalies < b.m->anomalies;
    if (a.maps_itself != b.maps_itself) return a.maps_itself;
    if (a.in_image != b.in_image) return a.in_image;
    if (a.c->user_entries != b.c->user_entries) return a.c->user_entries < b.c->user_entries;
    if (a.c->mode != b.c->mode) return scheme_rank(a.c->mode) < scheme_rank(b.c->mode);
    return a.c->dtb < b.c->dtb;
}

// One 64-bit word into hash `h`: a multiply and a shift (the byte-wise FNV-1a before took 8
// dependent multiplies a word, two words an entry: most of the scan's time on pages of 512 present
// entries, attacker 102's look-alikes). A hash only sorts candidates into groups: a candidate joins
// a group only when its kernel half is the same as the group's first member's, entry for entry and
// table for table (same_kernel_half), since words can be chosen to give any hash (reviewer 106: an
// NX bit flipped in one entry and the next entry shifted to match hashed the same for every seed);
// ties in the groups' order go by address, never by hash. The seed, drawn once per process, keeps
// such collisions from being planned offline, which would only split groups.
uint64_t mix(uint64_t h, uint64_t v) {
    h = (h ^ v) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}
uint64_t hash_seed() {
    static const uint64_t seed = []() -> uint64_t {
        try {
            std::random_device r;
            return (uint64_t{r()} << 32) ^ r();
        } catch (const std::exception&) {   // no entropy source (a sandbox): any value is correct
            return uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) * 0x9e3779b97f4a7c15ull;
        }
    }();
    return seed;
}

// quick_check's rule for a present kernel-half entry pointing to the table at `next`, the `k`-th
// such before it: hashed by the table's content (true) or by its address (false) — the first
// kMaxChildren tables the dump holds data for.
constexpr size_t kMaxChildren = 32;   // bounds the cost of page-table look-alikes
bool by_content(const Scheme& s, const PhysicalLayer& phys, uint64_t next, size_t k) {
    return k < kMaxChildren && phys.find(next, s.table_bytes(1)) && phys.has_data(next, s.table_bytes(1));
}

// Cheap structural test of the page at `p` as the root of scheme `s`, or nullopt:
//  - the top-level entry covering the kernel-text anchor is present (x86-64: index 511, which maps
//    0xffffffff80000000; 32-bit/PAE: the entry of PAGE_OFFSET 0xc0000000) — rejects almost every page;
//  - every nonzero top-level entry is present, has no reserved bits (PS in PML4/PML5, PDPTE
//    reserved bits), does not point to the page itself, and the kernel half has at least 2
//    (x86-64) / 1 (32-bit, PAE) entries. Linux user halves are empty (swapper_pg_dir) or hold
//    real tables (process PGDs), so one malformed entry rejects the page;
//  - the kernel half's tables that are in the dump (the first 32) look like tables: a table is
//    sound when its nonzero entries are present and well-formed, at most 1 bad per 4 good, and
//    malformed otherwise; a root with malformed tables and no sound one is weak (walked only when
//    no other root maps a kernel: tester 9, T9-3, three junk words in one of the kernel's empty
//    tables rejected every root of the dump when the count was over all tables; tester 10, junk
//    in more empty tables than the kernel has sound ones made its roots weak), and one with no
//    good entry and no absent table is no root. Tables
//    absent from the dump are counted (absent_children): when no kernel table is present the page
//    is only evidence of a cut dump or of holes, for the diagnosis. An entry of those tables that
//    points to a table absent from the dump is neither good nor bad: a cut dump, holes, or entries
//    written to point past the end (the tester's attack 6, B2: four such PDPT entries made the
//    kernel's own PML4 fail this test) say nothing about whether the page is a root.
// What quick_check reads of one kernel-half table: its content hash and verdict. A thread's scan of
// one scheme keeps them by the table's physical address (ChildCache), since many roots share their
// kernel's tables (every process PGD) — and look-alike pages crafted to make the search walk the same
// tables over and over cost one table's read each (attacker 102: 360,000 pages of one repeated entry,
// 32 children each, took the search 103 s). The data do not change during the scan: the same hash and
// verdict as reading the table again. Cleared past kMaxCached tables (memory bounded; no reuse lost on
// real dumps, whose kernel tables number hundreds).
struct ChildRead {
    uint64_t hash = 0;
    TableVerdict verdict;
};
struct ChildCache {
    static constexpr size_t kMaxCached = 1 << 16;
    std::unordered_map<uint64_t, ChildRead> tables;
    const ChildRead& read(const Scheme& s, const PhysicalLayer& phys, uint64_t paddr) {
        if (auto it = tables.find(paddr); it != tables.end()) return it->second;
        if (tables.size() >= kMaxCached) tables.clear();
        const uint8_t* child = phys.find(paddr, s.table_bytes(1));
        ChildRead r;
        const Level& L1 = s.levels[1];
        uint64_t h = hash_seed();   // one multiply per nonzero entry (judge_table reads them all too)
        for (uint64_t j = 0; j < (uint64_t{1} << L1.bits); ++j)
            if (const uint64_t e = s.entry(child, j)) {
                h = (h ^ (e + j * 0x9e3779b97f4a7c15ull)) * 0x100000001b3ull;
                h ^= h >> 29;
            }
        r.hash = h;
        r.verdict = judge_table(s, phys, child, 1);
        return tables.emplace(paddr, r).first->second;
    }
};

std::optional<Candidate> quick_check(const Scheme& s, const PhysicalLayer& phys, uint64_t p, ChildCache& cache) {
    const uint8_t* t = phys.find(p, s.table_bytes(0));
    if (!t) return std::nullopt;
    const Level& L = s.levels[0];
    const uint64_t n = uint64_t{1} << L.bits;
    const uint64_t top_mask = (uint64_t{1} << s.vaddr_bits) - 1;
    const uint64_t anchor = (s.anchor_vaddr & top_mask) >> L.shift;
    const uint64_t kfirst = (s.kernel_base & top_mask) >> L.shift;
    if (!(s.entry(t, anchor) & kPresent)) return std::nullopt;
    Candidate c;
    c.mode = s.mode;
    c.dtb = p;
    c.kernel_half = c.user_half = hash_seed();
    std::array<uint64_t, kMaxChildren> children;
    size_t nchildren = 0;
    for (uint64_t i = 0; i < n; ++i) {
        uint64_t e = s.entry(t, i);
        if (e == 0) continue;
        if (!(e & kPresent) || (e & s.top_reserved)) return std::nullopt;
        const bool kernel = i >= kfirst;
        if (L.large_ok && (e & kPageSize)) {
            if (!s.large_base(e, L.shift)) return std::nullopt;   // may lie outside the dump (ioremap, PSE-36)
        } else {
            uint64_t next = e & s.addr_mask;
            if (next == p) return std::nullopt;
            if (!phys.find(next, s.table_bytes(1))) {   // cut off or in a hole: evidence, not a fault
                ++c.absent_children;
                c.absent_lo = std::min(c.absent_lo, next);
                c.absent_hi = std::max(c.absent_hi, next);
            } else if (kernel && by_content(s, phys, next, nchildren)) {
                children[nchildren++] = next;
                e &= ~s.addr_mask;   // hashed by the table's content below, not its address
            }
        }
        if (kernel) c.kernel_half = mix(mix(c.kernel_half, i), e);
        else c.user_half = mix(mix(c.user_half, i), e);
        (kernel ? c.kernel_entries : c.user_entries)++;
    }
    if (c.kernel_entries < s.min_kernel_entries) return std::nullopt;
    // The kernel half's tables by content: PAE kernels with page-table isolation give every process
    // its own copy of the kernel's page directory (SHARED_KERNEL_PMD is 0 with PTI,
    // arch/x86/include/asm/pgtable-3level_types.h), so grouping by the tables' addresses made each
    // process PDPT a group of one, and 4 copies of a decoy outnumbered them (tester 11). Copies
    // of one table map alike, wherever they lie.
    // Good entries of sound tables, and of malformed ones; tables by verdict.
    uint64_t good = 0, good_malformed = 0, sound = 0, malformed = 0;
    for (size_t k = 0; k < nchildren; ++k) {
        const ChildRead& r = cache.read(s, phys, children[k]);
        c.kernel_half = mix(c.kernel_half, r.hash);
        const TableVerdict v = r.verdict;
        if (v.malformed()) ++malformed, good_malformed += v.good;
        else if (v.good > 0) ++sound, good += v.good;
    }
    if (good == 0 && malformed == 0 && c.absent_children == 0) return std::nullopt;
    c.weak = sound == 0 && malformed > 0;
    c.child_entries = c.weak ? good_malformed : good;   // a weak root's good entries keep it a candidate
    return c;
}

// Whether the roots at `a` and `b` (both quick_check candidates of scheme `s`) have the same kernel
// half as quick_check hashes it: the same entries, those hashed by content pointing to tables of
// the same bytes (compared only when at different addresses).
bool same_kernel_half(const Scheme& s, const PhysicalLayer& phys, uint64_t a, uint64_t b) {
    if (a == b) return true;
    const uint8_t* ta = phys.find(a, s.table_bytes(0));
    const uint8_t* tb = phys.find(b, s.table_bytes(0));
    if (!ta || !tb) return false;
    const Level& L = s.levels[0];
    const uint64_t top_mask = (uint64_t{1} << s.vaddr_bits) - 1;
    const uint64_t kfirst = (s.kernel_base & top_mask) >> L.shift;
    const uint64_t from = kfirst * s.entry_size, bytes = s.table_bytes(0) - from;
    if (std::memcmp(ta + from, tb + from, bytes) == 0) return true;   // the same entries: the same tables (every process PGD)
    size_t k = 0;   // entries hashed by content so far (alike in both, while they agree)
    for (uint64_t i = kfirst; i < (uint64_t{1} << L.bits); ++i) {
        const uint64_t ea = s.entry(ta, i), eb = s.entry(tb, i);
        if (ea == 0 || eb == 0 || (L.large_ok && ((ea | eb) & kPageSize))) {
            if (ea != eb) return false;
            continue;
        }
        const uint64_t na = ea & s.addr_mask, nb = eb & s.addr_mask;
        const bool ca = by_content(s, phys, na, k), cb = by_content(s, phys, nb, k);
        if (ca != cb || (!ca && ea != eb) || (ca && (ea & ~s.addr_mask) != (eb & ~s.addr_mask))) return false;
        if (!ca) continue;
        ++k;
        if (na != nb && std::memcmp(phys.find(na, s.table_bytes(1)), phys.find(nb, s.table_bytes(1)), s.table_bytes(1)) != 0)
            return false;
    }
    return true;
}

// Whether candidate `c` joins the group whose first member is `first`: the same kernel half
// (same_kernel_half). `compared` counts the comparisons; the pages they read are released per
// 2,048 of them, as the scan releases its pages per 8 MiB (look-alikes: 1 M candidates).
bool joins(const PhysicalLayer& phys, const Candidate& first, const Candidate& c, uint64_t& compared) {
    if (&first == &c) return true;
    if (++compared % 2048 == 0) phys.release_all();
    return same_kernel_half(scheme_of(c.mode), phys, first.dtb, c.dtb);
}

// Pass 1 over every page of the dump's data (holes of a sparse file read as zeros: no root there)
// for every scheme in `modes`, in chunks of 8 MiB whose pages are dropped from the process once
// checked: the pass reads every page, and peak memory must stay far below the dump size.
std::vector<Candidate> scan(const PhysicalLayer& phys, const std::vector<PagingMode>& modes, const InterruptFn& interrupt) {
    constexpr uint64_t kChunk = uint64_t{8} << 20;   // the most of the dump resident at once
    hash_seed();   // (drawn here, not in the parallel region)
    std::vector<Candidate> cands;
    // each thread's tables read, per scheme (ChildCache), kept across chunks
    std::vector<std::vector<ChildCache>> caches(size_t(std::max(1, omp_get_max_threads())), std::vector<ChildCache>(modes.size()));
    uint64_t unreleased = 0;   // bytes checked since the last release
    for (const auto& r : phys.data_runs()) {
        const uint64_t first = (r.paddr + kPage - 1) & ~(kPage - 1), end = (r.paddr + r.size) & ~(kPage - 1);
        if (end <= first || first < r.paddr) continue;
        for (uint64_t c0 = first; c0 < end; c0 += std::min(kChunk, end - c0)) {
            if (interrupt) interrupt();
            const uint64_t c1 = c0 + std::min(kChunk, end - c0);
            const int64_t np = static_cast<int64_t>((c1 - c0) / kPage);
            ParallelErrors errors;
#pragma omp parallel if (np > 1024)
            {
                std::vector<Candidate> mine;
#pragma omp for schedule(static) nowait
                for (int64_t i = 0; i < np; ++i)
                    errors.run([&] {
                        const uint64_t p = c0 + static_cast<uint64_t>(i) * kPage;
                        std::vector<ChildCache>& mine_cache = caches[size_t(omp_get_thread_num()) % caches.size()];
                        for (size_t k = 0; k < modes.size(); ++k) {
                            const Scheme& s = scheme_of(modes[k]);
                            if (!s.sign_extend && p > 0xfffff000u) continue;   // CR3 of 32-bit schemes
                            if (auto c = quick_check(s, phys, p, mine_cache[k])) mine.push_back(*c);
                        }
                    });
#pragma omp critical
                errors.run([&] { cands.insert(cands.end(), mine.begin(), mine.end()); });
            }
            errors.rethrow();
            // The chunks and the tables their look-alikes pointed to (anywhere in the dump), once
            // per kChunk checked: per run, 65,600 one-page LiME ranges released the whole file
            // 65,600 times.
            if ((unreleased += c1 - c0) >= kChunk) {
                phys.release_all();
                unreleased = 0;
            }
        }
    }
    phys.release_all();
    std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
        return a.mode != b.mode ? a.mode < b.mode : a.dtb < b.dtb;
    });
    return cands;
}

// The direct map (largest set of pages sharing one vaddr − paddr offset) and the kernel-text
// pages of a root's present kernel runs, into `m`.
void measure(const Scheme& s, std::span<const VirtualRun> runs, Mapping& m) {
    std::map<uint64_t, std::pair<uint64_t, uint64_t>> by_offset;   // offset → (pages, physical end)
    for (const auto& r : runs) {
        auto& [pages, end] = by_offset[r.vaddr - r.paddr];
        pages += r.size / kPage;
        end = std::max(end, r.paddr + r.size);
        const uint64_t lo = std::max(r.vaddr, s.anchor_vaddr), hi = std::min(r.vaddr + r.size, s.anchor_vaddr + s.text_window);
        if (r.vaddr + r.size > r.vaddr && lo < hi) m.text_pages += (hi - lo) / kPage;
    }
    for (const auto& [off, set] : by_offset)
        if (set.first > m.direct_pages) {
            std::tie(m.direct_pages, m.direct_end) = set;
            m.direct_offset = off;
        }
}

// Present pages of the dump that the direct map of `m` (the runs at its offset) does not map:
// {below its own highest page, below `top`} (a kernel's direct map holds all of its RAM).
std::pair<uint64_t, uint64_t> unmapped_by_direct_map(const PhysicalLayer& phys, std::span<const VirtualRun> runs,
                                                     const Mapping& m, uint64_t top) {
    PhysicalCover cover;
    for (const auto& r : runs)
        if (r.vaddr - r.paddr == m.direct_offset) cover.add(r.paddr, r.paddr + r.size);
    cover.finish();
    auto unmapped = [&](uint64_t lo, uint64_t hi) {   // whole pages of [lo, hi) that `cover` misses
        lo = (lo + kPage - 1) & ~(kPage - 1);
        hi &= ~(kPage - 1);
        return hi <= lo ? 0 : (hi - lo - cover.bytes_in(lo, hi)) / kPage;
    };
    std::pair<uint64_t, uint64_t> n{0, 0};
    for (const auto& p : phys.runs()) {
        if (p.paddr + kPage - 1 < p.paddr) continue;   // a run at the top of the address space: no whole page
        n.first += unmapped(p.paddr, std::min(p.paddr + p.size, m.direct_end));
        n.second += unmapped(p.paddr, std::min(p.paddr + p.size, top));
    }
    return n;
}

// How whole a root's direct map is (the CPU note's check, TranslationLayer::detect): present pages
// it leaves out below its highest one (`below`) and up to the dump's top or the 32-bit lowmem
// limit (`gap`), and whether the kernel image holds its base as a word (paging::image_base_words:
// the kernel keeps it there, page_offset_base in arch/x86/kernel/head64.c; 32-bit and PAE: a
// fixed PAGE_OFFSET, always held).
struct DirectMapHealth {
    Mapping mapped;
    uint64_t top = 0, below = 0, gap = 0, spanned = 0;
    bool holed = false, base_held = true;
};
DirectMapHealth direct_map_health(const Scheme& s, const PhysicalLayer& phys, const TranslationLayer& t) {
    // A kernel's direct map holds all of its RAM: below its highest page, 30 Debian dumps (5.10,
    // 6.1, 6.12; amd64, rt, cloud, i386) left out no present page, and above it 96 (amd64:
    // QEMU's ROM ranges below 4 GiB) or 32 (i386). So any page left out below, or more than
    // kAboveGap + 1/1024 of the pages above, is a hole.
    constexpr uint64_t kAboveGap = 256;
    DirectMapHealth h;
    const auto runs = t.kernel_runs();
    measure(s, runs, h.mapped);
    h.top = s.direct_map_limit ? std::min(s.direct_map_limit, phys.max_paddr()) : phys.max_paddr();
    uint64_t upto_top = 0;
    std::tie(h.below, upto_top) = unmapped_by_direct_map(phys, runs, h.mapped, h.top);
    h.gap = std::max(h.below, upto_top);
    h.spanned = h.mapped.direct_pages + h.gap;
    h.holed = h.below > 0 || h.gap - h.below > kAboveGap + h.spanned / 1024;
    if (s.sign_extend && h.mapped.direct_pages > 0) {
        const auto words = image_base_words(s, phys, t.dtb(), s.kernel_base);
        h.base_held = std::find(words.begin(), words.end(), h.mapped.direct_offset) != words.end();
    }
    return h;
}

// Distinct pages of the dump's data (data_runs(): not a sparse file's holes, which read as
// zeros) that `runs` map.
uint64_t data_pages_mapped(const PhysicalLayer& phys, const std::vector<VirtualRun>& runs) {
    PhysicalCover cover;
    for (const VirtualRun& r : runs) cover.add(r.paddr, r.paddr + r.size);
    cover.finish();
    uint64_t bytes = 0;
    for (const PhysicalRun& d : phys.data_runs()) bytes += cover.bytes_in(d.paddr, d.paddr + d.size);
    return bytes / kPage;
}

// Full enumeration of one root under a tighter work bound: data pages / 128 + 4096 tables (a
// Linux kernel half needs about one last-level table per 2 MiB of 4 KiB-mapped memory; a misread
// root that takes data pages for tables needs one per page). `evidence`: the scheme's pointer
// evidence, shared by the roots of one search (paging::enumerate).
Mapping map_root(const Scheme& s, const PhysicalLayer& phys, uint64_t dtb, std::optional<PointerEvidence>* evidence) {
    constexpr uint64_t kSearchBudgetDivisor = 128;
    Mapping m;
    try {
        WalkResult w = enumerate(s, phys, dtb, s.kernel_base, kSearchBudgetDivisor, false, evidence);
        m.ok = true;
        m.distinct_pages = w.stats.distinct_pages;
        m.anomalies = w.stats.loops + w.stats.reserved;
        m.absent_tables = w.stats.absent_tables;
        m.absent_lo = w.absent_lo;
        m.absent_hi = w.absent_hi;
        measure(s, w.runs, m);
        m.data_pages = data_pages_mapped(phys, w.runs);
        m.runs = std::move(w.runs);
    } catch (const InputError&) {
        m.ok = false;   // exceeded the work bound: not a sane root
    }
    return m;
}

// Whole pages of the dump's data below physical address `below`.
uint64_t data_pages_of(const PhysicalLayer& phys, uint64_t below = ~uint64_t{0}) {
    uint64_t n = 0;
    for (const auto& r : phys.data_runs()) {
        const uint64_t first = (r.paddr + kPage - 1) & ~(kPage - 1);
        const uint64_t end = std::min(r.paddr + r.size, below) & ~(kPage - 1);
        if (end > first && first >= r.paddr) n += (end - first) / kPage;
    }
    return n;
}

// Pages a root's direct map must cover to be a kernel's: half of the present pages it spans —
// from physical 0 up to its highest page or the root table itself, whichever is higher (a
// kernel's direct map maps all of its RAM, its own page tables included), capped at the most a
// direct map of this scheme can hold (32-bit lowmem). Not a fraction of the file's data: filler
// appended past the RAM, or the RAM a cut took away, would change that.
uint64_t direct_map_needed(const Scheme& s, const PhysicalLayer& phys, const Mapping& m, uint64_t dtb) {
    uint64_t n = data_pages_of(phys, std::max(m.direct_end, dtb + kPage));
    if (s.direct_map_limit) n = std::min(n, s.direct_map_limit / kPage);
    return (n + 1) / 2;
}

// Plausible as a kernel's root (see search()): kernel text, the root table's own page mapped, and
// a direct map covering half the present pages it spans or the kernel's banner in the image
// window (`has_banner`, asked only when the direct map falls short).
template <class HasBanner>
bool maps_a_kernel(const Scheme& s, const PhysicalLayer& phys, const Mapping& m, uint64_t dtb, bool maps_itself,
                   HasBanner&& has_banner) {
    return m.text_pages > 0 && maps_itself && (m.direct_pages >= direct_map_needed(s, phys, m, dtb) || has_banner());
}

// Why a root that maps something is not a kernel's, for the messages: the first test it fails.
std::string why_not_a_kernel(const Scheme& s, const PhysicalLayer& phys, const Mapping& m, uint64_t dtb, bool maps_itself) {
    if (m.text_pages == 0) return "no kernel text at " + hex(s.anchor_vaddr);
    if (!maps_itself) return "not its own table (a kernel maps all its memory, its page tables included)";
    return "a direct map of " + std::to_string(m.direct_pages) + " pages where half of the present pages it spans (" +
           std::to_string(direct_map_needed(s, phys, m, dtb)) + ") was expected, and no kernel banner";
}

// Where the page tables a root needs went: past the end of the dump (cut) or into its holes.
std::string missing_tables(const PhysicalLayer& phys, uint64_t count, uint64_t lo, uint64_t hi) {
    const std::string n = std::to_string(count) + (count == 1 ? " page table" : " page tables");
    const std::string at = lo == hi ? " at " + hex(lo) : " at " + hex(lo) + ".." + hex(hi);
    if (hi >= phys.max_paddr())
        return "it looks cut at " + format_bytes(phys.max_paddr()) + ": " + n + at + " lie beyond the dump's end";
    return "it has holes where the page tables are: " + n + at + " are absent from the dump";
}

// The one-line refusal when no root is plausible: what is missing, from the best evidence found.
std::string diagnosis(const PhysicalLayer& phys, uint64_t data_pages, const std::vector<Candidate>& cands,
                      const Ranked* best_implausible) {
    std::string msg = "no kernel page tables in this dump: ";
    const std::string holds = "the dump holds " + format_bytes(data_pages * kPage) + " of data in " +
                              std::to_string(phys.runs().size()) + (phys.runs().size() == 1 ? " range" : " ranges") +
                              " up to " + hex(phys.max_paddr());
    // Entries of a misread root point anywhere up to 2^52; a guest's RAM ends far below 2^46.
    constexpr uint64_t kSanePhysical = uint64_t{1} << 46;
    // A page directory whose kernel tables are all absent: the tables were cut off or fell in holes.
    const Candidate* cut = nullptr;
    for (const Candidate& c : cands)
        if (c.child_entries == 0 && !c.weak && c.absent_children > 0 && c.absent_hi < kSanePhysical &&
            (!cut || c.absent_children > cut->absent_children))
            cut = &c;
    if (cut) {
        msg += missing_tables(phys, cut->absent_children, cut->absent_lo, cut->absent_hi) +
               " (under the page directory at " + hex(cut->dtb) + ", " + to_string(cut->mode) + ")";
    } else if (best_implausible && best_implausible->m->absent_tables > 0 &&
               best_implausible->m->absent_hi < kSanePhysical) {
        const Mapping& m = *best_implausible->m;
        msg += missing_tables(phys, m.absent_tables, m.absent_lo, m.absent_hi) + " (under the best candidate root " +
               hex(best_implausible->c->dtb) + ", " + to_string(best_implausible->c->mode) + ", which maps only " +
               std::to_string(m.distinct_pages) + " pages)";
    } else if (best_implausible) {
        const Ranked& b = *best_implausible;
        const Scheme& s = scheme_of(b.c->mode);
        msg += "no root maps a kernel; the best candidate " + hex(b.c->dtb) + " (" + to_string(b.c->mode) + ") maps " +
               std::to_string(b.m->distinct_pages) + " pages, " + why_not_a_kernel(s, phys, *b.m, b.c->dtb, b.maps_itself);
        msg += " — a stale or partial table; " + holds + ", is memory missing?";
    } else {
        msg += "no page looks like a kernel page directory; " + holds;
        // Bytes of pages only partly present (ranges that end mid-page, with no range for the
        // rest): absent like a hole, and said, so that "0 bytes of data" is not all the user reads.
        uint64_t whole = 0;
        for (const auto& r : phys.runs()) {
            const uint64_t first = (r.paddr + kPage - 1) & ~(kPage - 1), end = (r.paddr + r.size) & ~(kPage - 1);
            if (end > first && first >= r.paddr) whole += end - first;
        }
        if (const uint64_t partial = phys.present_bytes() - whole; partial > 0)
            msg += "; " + format_bytes(partial) + " more lie in pages only partly present (ranges that do not cover "
                   "whole 4 KiB pages), which read as absent";
        if (const uint64_t lost = phys.undecodable_bytes(); lost > 0)
            msg += "; " + std::to_string(lost / kPage) + " more pages (" + format_bytes(lost) +
                   ") the dump lists cannot be decoded (corrupt or never written): the page tables may be among them";
        else
            msg += ": it may be cut before the page tables, or not an x86 Linux memory image";
    }
    return msg + " (give --dtb and --paging if the root is known)";
}

// Present physical pages the kernel half maps under (mode, dtb), each once whatever its aliases
// (WalkStats::distinct_pages: aliases skipped by the walk's choice must not make a wrong scheme,
// which reads the same tables as other levels and maps their pages many times, look better;
// tester 8, F1), or 0 when the walk fails.
uint64_t mapped_pages(const PhysicalLayer& phys, PagingMode mode, uint64_t dtb) {
    try {
        TranslationLayer t(phys, mode, dtb);
        return t.walk_stats().distinct_pages;
    } catch (const InputError&) {
        return 0;
    }
}

PagingMode mode_from_cpu(const CpuState& c) {
    constexpr uint64_t kCr4Pae = 1u << 5, kCr4La57 = 1u << 12;
    if (c.long_mode) return (c.cr4 & kCr4La57) ? PagingMode::X86_64_5Level : PagingMode::X86_64_4Level;
    return (c.cr4 & kCr4Pae) ? PagingMode::X86_PAE : PagingMode::X86_32;
}

TranslationLayer checked(const PhysicalLayer& phys, PagingMode mode, uint64_t dtb, const std::string& source) {
    TranslationLayer t(phys, mode, dtb);   // throws when the root is not in the dump
    if (t.kernel_runs().empty()) {
        auto st = t.walk_stats();
        throw InputError(source + " page-table root " + hex(t.dtb()) + " (" + to_string(mode) +
                         ") maps no present kernel page (" + std::to_string(st.tables) + " tables read, " +
                         std::to_string(st.absent_tables) + " absent, " + std::to_string(st.loops) +
                         " looping entries skipped, " + std::to_string(st.reserved) + " with reserved bits)");
    }
    return t;
}

// Search step 5 (see search() below): the direct map's base, from the dump's pointers alone
// (paging::direct_base_by_pointers over the whole kernel half: fake page directories cannot steer it
// by leaving the true slot out, attacker 15 F1), then the group of x86-64 4-level candidates with
// sound tables, of most distinct members (user halves) and at least kMinCutMembers, whose PML4
// entry for that base is present and points past the dump's end, as do all its absent tables: its
// first member, that count and the base. (Some kernel tables may remain: Debian 6.1's page
// directories keep the vmalloc area's empty PDPTs, allocated low.)
struct CutRoot {
    const Candidate* root = nullptr;
    size_t members = 0;
    uint64_t base = 0;
};
std::optional<CutRoot> cut_kernel_root(const PhysicalLayer& phys, const std::vector<Candidate>& cands) {
    constexpr size_t kMinCutMembers = 2;
    constexpr uint64_t kSanePhysical = uint64_t{1} << 46;
    const Scheme& s = scheme_of(PagingMode::X86_64_4Level);
    const uint64_t end = phys.max_paddr();
    // Candidates first (cheap); the pointers' pass only when a group could qualify.
    std::map<uint64_t, std::pair<const Candidate*, std::set<uint64_t>>> groups;   // kernel half → (first, user halves)
    uint64_t compared = 0;   // (joins)
    for (const Candidate& c : cands)
        if (c.mode == PagingMode::X86_64_4Level && !c.weak && c.absent_children > 0 && c.absent_lo >= end &&
            c.absent_hi < kSanePhysical) {
            auto& g = groups[c.kernel_half];
            if (!g.first) g.first = &c;
            else if (!joins(phys, *g.first, c, compared)) continue;   // a collision: not of this group
            g.second.insert(c.user_half);
        }
    if (std::none_of(groups.begin(), groups.end(), [](const auto& g) { return g.second.second.size() >= kMinCutMembers; }))
        return std::nullopt;
    const uint64_t base = direct_base_by_pointers(s, phys, s.kernel_base, [](uint64_t) { return true; });
    if (!base) return std::nullopt;
    const uint64_t slot = (base >> s.levels[0].shift) & ((uint64_t{1} << s.levels[0].bits) - 1);
    std::optional<CutRoot> best;
    for (const auto& [half, g] : groups) {
        if (g.second.size() < kMinCutMembers) continue;
        if (best && (g.second.size() < best->members || (g.second.size() == best->members && g.first->dtb > best->root->dtb)))
            continue;   // (a tie: the lower address, not the hash's order)
        const uint8_t* table = phys.find(g.first->dtb, s.table_bytes(0));
        const uint64_t e = table ? s.entry(table, slot) : 0;
        if ((e & kPresent) && (e & s.addr_mask) >= end) best = CutRoot{g.first, g.second.size(), base};
    }
    return best;
}

}  // namespace

TranslationLayer TranslationLayer::detect(const PhysicalLayer& phys, std::optional<uint64_t> dtb_override,
                                          std::optional<PagingMode> mode_override, const InterruptFn& interrupt) {
    using PM = PagingMode;
    constexpr uint64_t kCr0Pg = 1u << 31;
    const CpuState* cpu = nullptr;
    for (const auto& c : phys.cpus())
        if (c.cr0 & kCr0Pg) { cpu = &c; break; }

    if (dtb_override) {
        if (mode_override) return checked(phys, *mode_override, *dtb_override, "--dtb:");
        if (cpu) return checked(phys, mode_from_cpu(*cpu), *dtb_override, "--dtb:");
        // No scheme known: the one under which this root maps the most kernel pages.
        PagingMode best = PagingMode::X86_64_4Level;
        uint64_t best_n = 0;
        for (PagingMode m : {PM::X86_64_4Level, PM::X86_64_5Level, PM::X86_PAE, PM::X86_32}) {
            uint64_t n = mapped_pages(phys, m, *dtb_override);
            if (n > best_n) { best = m; best_n = n; }
        }
        return checked(phys, best, *dtb_override, "--dtb:");
    }

    if (cpu) {
        PagingMode m = mode_override.value_or(mode_from_cpu(*cpu));
        uint64_t cr3 = cpu->cr3 & scheme_of(m).root_mask;
        // Kernel page-table isolation: a vCPU stopped in user mode runs on the user copy of its
        // PGD (kernel PGD | 0x1000), whose kernel half maps only the entry trampolines.
        if ((m == PM::X86_64_4Level || m == PM::X86_64_5Level) && (cr3 & 0x1000) &&
            mapped_pages(phys, m, cr3 & ~uint64_t{0x1000}) > mapped_pages(phys, m, cr3))
            cr3 &= ~uint64_t{0x1000};
        std::optional<TranslationLayer> note;
        try {
            note = checked(phys, m, cr3, "CR3 from the ELF note:");
        } catch (const InputError& note_error) {
            // A corrupt or pre-paging note: the search may still find the kernel's root. The user
            // is told: the dump's own root was set aside, and a corrupt note may mean more is wrong.
            std::optional<TranslationLayer> found;
            try {
                found = search(phys, mode_override, interrupt);
            } catch (const InputError& search_error) {
                throw InputError(std::string(note_error.what()) + "; and " + search_error.what());
            }
            found->root_notes_.push_back("translation: " + std::string(note_error.what()) +
                                         "; using the root the page-directory search found instead, " +
                                         hex(found->dtb()) + " (" + to_string(found->mode()) + ")");
            return std::move(*found);
        }
        // A note's root that maps pages but no kernel (the tester's attack 6, B3: the note's CR3
        // pointed at a PDPT of the real tables, and the graph had no node): the search's root,
        // when it finds one, with a warning naming the note's value; else the note's, as before.
        const Scheme& s = scheme_of(m);
        const DirectMapHealth health = direct_map_health(s, phys, *note);
        const Mapping& mapped = health.mapped;
        const bool maps_itself = RootCover(s, note->kernel_runs()).anywhere.covers(note->dtb());
        auto has_banner = [&] { return find_kernel_banner_in_image(phys, note->kernel_runs(), s.sign_extend ? 8 : 4, interrupt).has_value(); };
        const bool kernel = maps_a_kernel(s, phys, mapped, note->dtb(), maps_itself, has_banner);
        // A root that maps the kernel image (its banner) but no direct map (the tester's attack 8,
        // F4: a PTI-style copy of the PGD without the direct map's slot as the note's CR3 gave a
        // graph of the image alone and no task_struct, silently): accepted only when no searched
        // root maps more, and then with a warning. Likewise a direct map with present pages left
        // out (tester 9, T9-2: the note's CR3 pointed at a copy of the tables with one 2 MiB
        // direct-map entry cleared, and 61 task_structs were hidden without a word; tester 10: the
        // copy's direct map stopped at 128 MiB of 256, or 12 MiB short, or left out 127 single
        // pages), and a direct map at a base no word of the kernel image holds (tester 10: the
        // copy's whole direct map moved up 1 GiB, so that no pointer of the dump reached it): the
        // search (one pass over the dump) looks for a root that maps more, or as much with its
        // direct map whole and at the image's base.
        const uint64_t direct_needed = direct_map_needed(s, phys, mapped, note->dtb());
        const bool holed = health.holed, moved = !health.base_held;
        const uint64_t gap = health.gap, spanned = health.spanned, top = health.top;
        if (kernel && mapped.direct_pages >= direct_needed && !holed && !moved) return std::move(*note);
        const bool image_only = kernel && mapped.direct_pages < direct_needed;
        const std::string why = !kernel ? why_not_a_kernel(s, phys, mapped, note->dtb(), maps_itself)
                                : image_only
                                    ? "it maps the kernel image but no direct map: its largest linear mapping holds " +
                                          std::to_string(mapped.direct_pages) + " pages where half of the present "
                                          "pages it spans (" + std::to_string(direct_needed) + ") were expected"
                                : holed ? "its direct map leaves out " + std::to_string(gap) + " of the " +
                                              std::to_string(spanned) + " present pages below " + hex(top)
                                        : "its direct map at " + hex(mapped.direct_offset) +
                                              " is at no base the kernel image holds";
        // What the graph lacks when the note's root is kept: a root that maps the kernel maps
        // either the image alone or a direct map with holes.
        const std::string lost = !kernel ? ""
                                 : mapped.direct_pages < direct_needed
                                     ? ": memory outside the kernel image is missing from the graph"
                                 : holed ? ": the present pages it leaves out are missing from the graph"
                                         : ": the dump's pointers may not reach its direct map";
        const std::string note_root = "the CPU note's CR3 " + hex(cpu->cr3) + " (" + to_string(m) + ")";
        std::optional<TranslationLayer> found;
        try {
            found = search(phys, mode_override, interrupt);
        } catch (const InputError& search_error) {
            note->root_notes_.push_back("translation: " + note_root + (kernel ? " maps only part of a kernel (" : " maps no kernel (") +
                                        why + "), and the page-directory search found none (" + search_error.what() +
                                        "); using the note's root" + lost);
            return std::move(*note);
        }
        // A searched root that maps no more present pages than the note's (the search's ranking
        // key, WalkStats::distinct_pages) shares its kernel half (another PGD of the same kernel):
        // the note is right and the dump lacks tables (a page that did not decompress, a cut),
        // which the note's walk warnings say. A note root that maps the image alone, or a direct
        // map with holes, is kept then too, but said: the graph lacks that memory.
        // A searched root that maps as many is taken when its direct map is whole and at the
        // image's base where the note's is not (tester 10: the holes mapped again elsewhere, or
        // the whole direct map moved, tie on pages). A base the image does not hold and nothing
        // better found: the note's root, silently (a kernel without page_offset_base).
        const uint64_t note_pages = note->walk_stats().distinct_pages, found_pages = found->walk_stats().distinct_pages;
        bool take_found = found_pages > note_pages;
        if (!take_found && found_pages == note_pages && kernel && !image_only) {
            const DirectMapHealth fh = direct_map_health(scheme_of(found->mode()), phys, *found);
            take_found = !fh.holed && fh.base_held && (holed || moved);
        }
        if (!take_found) {
            if (kernel && (holed || image_only))
                note->root_notes_.push_back("translation: " + note_root + " maps only part of a kernel (" + why +
                                            "), and no searched root maps more; using the note's root" + lost);
            return std::move(*note);
        }
        found->root_notes_.push_back("translation: " + note_root + (kernel ? " maps only part of a kernel (" : " maps no kernel (") +
                                     why + "); using the searched root " + hex(found->dtb()) + " (" +
                                     to_string(found->mode()) + "), which maps " + std::to_string(found_pages) +
                                     " present pages against the note's " + std::to_string(note_pages) +
                                     (found_pages == note_pages ? ", with its direct map whole and at the base the kernel image holds" : ""));
        return std::move(*found);
    }

    return search(phys, mode_override, interrupt);
}

// The page-directory search, for Linux guests (no ELF note, no --dtb).
//
// 1. Structure: every page of the dump's data is checked as a root of every scheme (x64, la57,
//    pae, x86; the 32-bit ones below 4 GiB) by quick_check above, in one chunked pass.
// 2. Survivors are grouped by their kernel half (equal top-level kernel entries map the kernel
//    alike: swapper_pg_dir and every process PGD share it). Groups are pre-ranked (most members
//    with distinct user halves, strong before weak, then most kernel entries and second-level
//    entries) and the first 64 are fully enumerated; weak ones only while no root maps a kernel
//    or when they have more distinct members than the best root's group.
// 3. Plausible: a root maps a kernel — some page in the scheme's kernel-text window (x86-64
//    [0xffffffff80000000, +1 GiB), 32-bit [0xc0000000, +512 MiB)), its own table's page (a
//    kernel maps all its memory: swapper_pg_dir through the image, process PGDs through the
//    direct map; junk that maps page 0 a thousand times does not), AND either a direct map (the
//    largest set of pages sharing one vaddr − paddr offset) covering at least half of the present
//    pages below its highest page or the root table, whichever is higher (32-bit: of at most 896
//    MiB of lowmem), or the kernel's `Linux version` banner in the image window. What a root
//    maps is measured against the memory it spans, never against the file's data: filler
//    appended after the RAM, or a cut that took the direct map's tables, leaves the kernel's
//    root plausible (issue #11 item 2). A root that maps too little of what it spans is a stale
//    boot-time table (the early PAE PDPT at 158 MiB maps the first ~12 MiB), a copy, or junk.
// 4. Ranked uniformly across schemes by the distinct physical pages mapped (`better`), then the
//    tie-breaks among roots that map alike. No plausible root: InputError with a diagnosis of
//    what is missing (tables beyond the end — cut — or in holes, a root that maps too little, or
//    nothing like a page directory), never a root that maps no kernel.
// 5. Except a dump cut below every table of the kernel (the kernel allocates its early page
//    tables at the top of RAM: a 256 MiB Debian 6.1 guest cut at 160 MiB keeps its page
//    directories, but the tables under their kernel halves all lie beyond the end): the group of
//    cut_kernel_root (the base the dump's pointers use most, then the largest group of page
//    directories whose entry for it points past the end) gives the root when the direct map read
//    linearly under its absent tables (translation.cpp, fill_direct_map) is at that base and covers
//    at least half of the dump's data pages; a note says so. A misread table is one member, never a group.
TranslationLayer TranslationLayer::search(const PhysicalLayer& phys, std::optional<PagingMode> mode_override,
                                          const InterruptFn& interrupt) {
    using PM = PagingMode;
    std::vector<PagingMode> modes;
    if (mode_override) modes = {*mode_override};
    else modes = {PM::X86_64_4Level, PM::X86_64_5Level, PM::X86_PAE, PM::X86_32};
    const std::vector<Candidate> cands = scan(phys, modes, interrupt);
    const uint64_t data_pages = data_pages_of(phys);

    // Groups: (scheme, kernel half) → candidates; the group's structural score is its best member's.
    struct Group {
        std::vector<const Candidate*> members;
        uint64_t distinct = 0;   // members with distinct user halves
        uint64_t kernel_entries = 0, child_entries = 0;
        bool weak = false;
        Mapping mapping;
    };
    // (scheme, kernel half's hash, 0) → its group; a candidate whose kernel half hashes alike but is
    // not the same as the group's first member's (same_kernel_half: a crafted collision) is a group of
    // its own, keyed by its address + 1
    std::map<std::tuple<PagingMode, uint64_t, uint64_t>, Group> groups;
    std::set<std::pair<const Group*, uint64_t>> user_halves;
    uint64_t compared = 0;   // (joins)
    // by address, then scheme: a page that is a candidate of several schemes is read once for all of
    // them (each group's members stay in address order: its first member is its lowest)
    std::vector<const Candidate*> by_address;
    by_address.reserve(cands.size());
    for (const Candidate& c : cands) by_address.push_back(&c);
    std::stable_sort(by_address.begin(), by_address.end(), [](const Candidate* a, const Candidate* b) { return a->dtb < b->dtb; });
    for (const Candidate* cp : by_address) {
        const Candidate& c = *cp;
        if (c.child_entries == 0) continue;   // kernel tables all absent: evidence for the diagnosis only
        Group* by_hash = &groups[{c.mode, c.kernel_half, 0}];
        if (!by_hash->members.empty() && !joins(phys, *by_hash->members.front(), c, compared))
            by_hash = &groups[{c.mode, c.kernel_half, c.dtb + 1}];
        Group& g = *by_hash;
        g.weak = c.weak;   // alike for the whole group: its members share their kernel tables
        g.members.push_back(&c);
        g.distinct += user_halves.insert({&g, c.user_half}).second;
        g.kernel_entries = std::max<uint64_t>(g.kernel_entries, c.kernel_entries);
        g.child_entries = std::max(g.child_entries, c.child_entries);
    }
    std::vector<Group*> order;
    for (auto& [key, g] : groups) order.push_back(&g);
    // Pre-rank: the groups of most distinct members first (every process PGD shares the kernel's
    // half with its own user half, 135 on Debian 6.1 under QEMU; a decoy written into free pages
    // is one, however often it is copied: tester 10, 27 decoys filled the first kMaxGroups by
    // entry count; tester 11, 100 copies of one decoy outnumbered the kernel's group and won);
    // then strong before weak; then by structure.
    std::stable_sort(order.begin(), order.end(), [](const Group* a, const Group* b) {
        if (a->distinct != b->distinct) return a->distinct > b->distinct;
        if (a->weak != b->weak) return b->weak;
        if (a->kernel_entries != b->kernel_entries) return a->kernel_entries > b->kernel_entries;
        if (a->child_entries != b->child_entries) return a->child_entries > b->child_entries;
        const Candidate &x = *a->members.front(), &y = *b->members.front();   // (not the map's order: the hash's)
        return std::pair(x.mode, x.dtb) < std::pair(y.mode, y.dtb);
    });
    constexpr size_t kMaxGroups = 64;
    if (order.size() > kMaxGroups) order.resize(kMaxGroups);

    std::optional<Ranked> best, best_implausible;
    std::map<PagingMode, std::optional<PointerEvidence>> evidence;   // per scheme, computed when a root aliases
    uint64_t best_distinct = 0;   // distinct members of the group that gave `best`
    std::optional<Ranked> best_strong;   // the best plausible root with sound tables, for the warning
    for (Group* g : order) {
        // Weak roots only when no other maps a kernel, or when they outnumber the best's group
        // in distinct members (the kernel's own tables given junk the MMU ignores, beside a decoy
        // with sound tables: tester 11).
        if (g->weak && best && g->distinct <= best_distinct) continue;
        // A plausible root that maps all but 1/256 of the dump's data pages cannot be beaten by
        // more than that (the ranking key is present pages mapped): the rest are not walked
        // (tester 10: 27 to 31 decoys of one page each, each walked, took 16–35 s). Data pages,
        // not pages that are holes of a sparse file: a decoy mapping the holes of a sparse raw
        // stopped the search while leaving half of the RAM out (tester 11).
        if (best && best->m->data_pages + data_pages / 256 >= data_pages) break;
        if (interrupt) interrupt();
        const Candidate& rep = *g->members.front();
        const Scheme& s = scheme_of(rep.mode);
        g->mapping = map_root(s, phys, rep.dtb, &evidence[rep.mode]);
        // A misread root may read thousands of data pages as tables: drop them before the next.
        phys.release_all();
        const Mapping& m = g->mapping;
        if (!m.ok || m.distinct_pages == 0) continue;
        // The kernel's banner in the image window, looked for once per group and only when a
        // member's direct map falls short.
        std::optional<bool> banner;
        auto has_banner = [&] {
            if (!banner) banner = find_kernel_banner_in_image(phys, m.runs, s.sign_extend ? 8 : 4, interrupt).has_value();
            return *banner;
        };
        // Which members' own page the kernel maps, anywhere and in the kernel-text window.
        const RootCover cover(s, m.runs);
        for (const Candidate* c : g->members) {
            Ranked r{c, &m, cover.anywhere.covers(c->dtb), cover.image.covers(c->dtb)};
            const bool plausible = maps_a_kernel(s, phys, m, c->dtb, r.maps_itself, has_banner);
            auto& slot = plausible ? best : best_implausible;
            if (!slot || better(r, *slot)) {
                slot = r;
                if (plausible) best_distinct = g->distinct;
            }
            if (plausible && !g->weak && (!best_strong || better(r, *best_strong))) best_strong = r;
        }
        free_storage(g->mapping.runs);
        if (banner) phys.release_all();
    }
    if (!best) {
        if (auto cut = cut_kernel_root(phys, cands)) {
            TranslationLayer t(phys, cut->root->mode, cut->root->dtb);
            const uint64_t filled = t.kernel_runs().empty() ? 0 : t.walk_stats().direct_fill_pages;
            if (filled > 0 && filled * 2 >= data_pages && t.walk_stats().direct_fill_base == cut->base) {
                t.root_notes_.push_back(
                    "translation: no page-table root maps a kernel in this dump: the kernel's tables lie beyond its "
                    "end at " + hex(phys.max_paddr()) + " (a cut dump); root " + hex(t.dtb()) + " (" +
                    to_string(t.mode()) + "), shared by " + std::to_string(cut->members) +
                    " page directories, is used, and its direct map is read linearly at " +
                    hex(t.walk_stats().direct_fill_base) + ", the base the dump's pointers use most: the kernel "
                    "image, vmalloc (stacks) and vmemmap cannot be read, and objects that point there score lower: a lower "
                    "--threshold may find more");
                return t;
            }
        }
        throw InputError(diagnosis(phys, data_pages, cands, best_implausible ? &*best_implausible : nullptr));
    }
    TranslationLayer t = checked(phys, best->c->mode, best->c->dtb, "searched:");
    if (best->c->weak)   // the fallback: say so
        t.root_notes_.push_back(
            "translation: root " + hex(t.dtb()) + " (" + to_string(t.mode()) +
            ") is used although its kernel tables are malformed (entries no kernel writes): " +
            (best_strong ? "the best root with sound tables, " + hex(best_strong->c->dtb) + ", maps fewer pages (" +
                               std::to_string(best_strong->m->distinct_pages) + " against " +
                               std::to_string(best->m->distinct_pages) + ")"
                         : std::string("no root with sound tables was found to map as much")) +
            "; what it maps may be partly junk");
    return t;
}

}  // namespace deepmem
