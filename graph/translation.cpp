// TranslationLayer: one x86 page-table walker; each paging scheme is a row of kSchemes below
// (levels top-down with their address shift, index width and whether a PS bit may end the walk
// there, plus entry size and address widths), in the manner of Volatility 3's layers/intel.py.
// translate() walks one address; kernel_runs() enumerates the kernel half; detect() picks the
// scheme and root from the ELF note, an override, or the page-directory search at the bottom.
#include "graph/layers.hpp"

#include "graph/parallel_errors.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>

namespace deepmem {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPresent = 1, kPageSize = 0x80;
constexpr uint64_t kAddr52 = 0x000ffffffffff000ull;   // bits 12..51: NX (63) and software bits dropped

struct Level {
    const char* name;
    uint8_t shift;      // log2 of the span one entry of this level covers
    uint8_t bits;       // index width
    bool large_ok;      // PS (bit 7) ends the walk here: 4 MiB / 2 MiB / 1 GiB pages
};

struct Scheme {
    PagingMode mode;
    uint8_t entry_size;
    uint8_t nlevels;
    std::array<Level, 5> levels;
    uint8_t vaddr_bits;       // 32, 48, 57
    bool sign_extend;         // canonical addresses copy bit vaddr_bits-1 upwards
    uint64_t addr_mask;       // next-table / 4 KiB page address bits of an entry
    uint64_t root_mask;       // CR3 bits naming the root table
    bool pse36;               // 4 MiB pages carry physical bits 32..39 in entry bits 13..20
    uint64_t kernel_base;     // default start of kernel space
    // DTB search (Linux): the top-level entry covering this address must be present, at least
    // `min_kernel_entries` kernel-half entries must be, and none may set `top_reserved` bits.
    uint64_t anchor_vaddr;
    uint32_t min_kernel_entries;
    uint64_t top_reserved;

    uint64_t table_bytes(unsigned level) const { return (uint64_t{1} << levels[level].bits) * entry_size; }
    uint64_t canonical(uint64_t va) const {
        if (sign_extend && (va >> (vaddr_bits - 1)) & 1) va |= ~((uint64_t{1} << vaddr_bits) - 1);
        return va;
    }
    bool is_canonical(uint64_t va) const {
        if (vaddr_bits == 64) return true;
        uint64_t low = va & ((uint64_t{1} << vaddr_bits) - 1);
        return (sign_extend ? canonical(low) : low) == va;
    }
    uint64_t entry(const uint8_t* table, uint64_t i) const {
        if (entry_size == 4) { uint32_t v; std::memcpy(&v, table + 4 * i, 4); return v; }
        uint64_t v; std::memcpy(&v, table + 8 * i, 8); return v;
    }
    // Physical base of a large page, or nullopt when reserved address bits are set (the CPU
    // would raise a reserved-bit page fault). Bit 12 is PAT for large pages.
    std::optional<uint64_t> large_base(uint64_t e, unsigned shift) const {
        uint64_t span = uint64_t{1} << shift;
        if (entry_size == 4) {   // 32-bit 4 MiB page: bits 22..31, PSE-36 bits 13..20 → 32..39, bit 21 reserved
            if (e & (uint64_t{1} << 21)) return std::nullopt;
            uint64_t base = e & 0xffc00000u;
            if (pse36) base |= ((e >> 13) & 0xff) << 32;
            return base;
        }
        uint64_t reserved = (span - 1) & ~uint64_t{0x1fff};   // bits 13..shift-1
        if (e & reserved) return std::nullopt;
        return e & addr_mask & ~(span - 1);
    }
};

using PM = PagingMode;
constexpr Scheme kSchemes[] = {
    {PM::X86_32, 4, 2,
     {{{"page directory", 22, 10, true}, {"page table", 12, 10, false}}},
     32, false, 0xfffff000u, 0xfffff000u, true, 0xc0000000u,
     0xc0000000u, 1, 0},
    {PM::X86_PAE, 8, 3,
     {{{"page directory pointer table", 30, 2, false}, {"page directory", 21, 9, true},
       {"page table", 12, 9, false}}},
     32, false, kAddr52, 0xffffffe0u, false, 0xc0000000u,
     0xc0000000u, 1, 0x1e6 | (uint64_t{1} << 63)},   // PDPTE bits 1,2,5..8 and 63 are reserved
    {PM::X86_64_4Level, 8, 4,
     {{{"PML4", 39, 9, false}, {"PDPT", 30, 9, true}, {"page directory", 21, 9, true},
       {"page table", 12, 9, false}}},
     48, true, kAddr52, kAddr52, false, 0xffff800000000000ull,
     0xffffffff80000000ull, 2, kPageSize},
    {PM::X86_64_5Level, 8, 5,
     {{{"PML5", 48, 9, false}, {"PML4", 39, 9, false}, {"PDPT", 30, 9, true},
       {"page directory", 21, 9, true}, {"page table", 12, 9, false}}},
     57, true, kAddr52, kAddr52, false, 0xff00000000000000ull,
     0xffffffff80000000ull, 2, kPageSize},
};

const Scheme& scheme_of(PagingMode m) { return kSchemes[static_cast<int>(m)]; }

// Appends a mapping, extending the previous run when contiguous in both spaces.
void append(std::vector<VirtualRun>& out, uint64_t va, uint64_t pa, uint64_t size) {
    if (!out.empty()) {
        VirtualRun& last = out.back();
        if (last.vaddr + last.size == va && last.paddr + last.size == pa) {
            last.size += size;
            return;
        }
    }
    out.push_back({va, pa, size});
}

// Emits the present, whole 4 KiB pages of the physical range [pa, pa+size) mapped at va.
void append_present(std::vector<VirtualRun>& out, const PhysicalLayer& phys, uint64_t va, uint64_t pa,
                    uint64_t size, uint64_t kernel_base) {
    auto runs = phys.runs();
    auto it = std::upper_bound(runs.begin(), runs.end(), pa,
                               [](uint64_t p, const PhysicalRun& r) { return p < r.paddr; });
    if (it != runs.begin()) --it;
    for (; it != runs.end() && it->paddr < pa + size; ++it) {
        uint64_t lo = std::max(it->paddr, pa), hi = std::min(it->paddr + it->size, pa + size);
        lo = (lo + kPage - 1) & ~(kPage - 1);
        hi &= ~(kPage - 1);
        uint64_t v = va + (lo - pa);
        if (v < kernel_base) {   // large page straddling the kernel boundary
            uint64_t skip = kernel_base - v;
            if (skip >= hi - lo || lo + skip < lo) continue;
            lo += skip;
            v = kernel_base;
        }
        if (lo < hi) append(out, v, lo, hi - lo);
    }
}

// Emits the mapping [va, va+size) → [pa, …) clipped to kernel_base, present in the dump or not.
void append_mapped(std::vector<VirtualRun>& out, uint64_t va, uint64_t pa, uint64_t size, uint64_t kernel_base) {
    if (va < kernel_base) {   // large page straddling the kernel boundary
        uint64_t skip = kernel_base - va;
        if (skip >= size) return;
        va += skip;
        pa += skip;
        size -= skip;
    }
    append(out, va, pa, size);
}

struct WalkResult {
    std::vector<VirtualRun> runs;     // present pages
    std::vector<VirtualRun> mapped;   // every mapped page (only when asked for)
    TranslationLayer::WalkStats stats;
};

// Enumerates every mapped page at or above kernel_base whose backing is present, and with
// `with_mapped` also every mapped page whatever its backing.
//
// Work bound: the walk down to the last-but-one level is serial and counts every table it reads;
// each last-level table becomes a job, also counted. In a tree every table is a distinct present
// page, so more than present_pages + 4096 table reads proves tables shared between entries (a DAG
// that could multiply work without bound); we throw InputError instead. Entries pointing to a
// table on their own walk path (self-reference, ancestor) are loops and are skipped, so the
// recursion depth never exceeds the number of levels. The jobs then run in parallel.
WalkResult enumerate(const Scheme& s, const PhysicalLayer& phys, uint64_t dtb, uint64_t kernel_base,
                     uint64_t budget_divisor = 1, bool with_mapped = false) {
    struct Job {
        uint64_t vaddr, paddr, span;
        bool table;   // paddr is a last-level table; else a large page [paddr, paddr+span)
    };
    WalkResult res;
    std::vector<Job> jobs;
    const uint64_t budget = phys.present_bytes() / kPage / budget_divisor + 4096;
    const unsigned last = s.nlevels - 1u;
    uint64_t path[5] = {};
    auto count_table = [&] {
        if (++res.stats.tables > budget)
            throw InputError("page tables under " + hex(dtb) + " reference more than " + std::to_string(budget) +
                             " tables (shared or looping tables, or not a page-table root)");
    };
    auto walk = [&](auto&& self, unsigned level, uint64_t table, uint64_t vbase) -> void {
        const uint8_t* t = phys.find(table, s.table_bytes(level));
        if (!t) { ++res.stats.absent_tables; return; }
        count_table();
        path[level] = table;
        const Level& L = s.levels[level];
        const uint64_t n = uint64_t{1} << L.bits, span = uint64_t{1} << L.shift;
        for (uint64_t i = 0; i < n; ++i) {
            uint64_t va = level == 0 ? s.canonical(i << L.shift) : vbase + i * span;
            if (va + (span - 1) < kernel_base) continue;
            uint64_t e = s.entry(t, i);
            if (!(e & kPresent)) continue;
            if (L.large_ok && (e & kPageSize)) {
                auto base = s.large_base(e, L.shift);
                if (!base) { ++res.stats.reserved; continue; }
                jobs.push_back({va, *base, span, false});
                continue;
            }
            uint64_t next = e & s.addr_mask;
            if (std::find(path, path + level + 1, next) != path + level + 1) { ++res.stats.loops; continue; }
            if (level + 1 == last) {
                count_table();
                jobs.push_back({va, next, span, true});
            } else {
                self(self, level + 1, next, va);
            }
        }
    };
    if (s.nlevels == 1) return res;
    walk(walk, 0, dtb & s.root_mask, 0);

    std::vector<std::vector<VirtualRun>> out(jobs.size()), mapped(with_mapped ? jobs.size() : 0);
    std::atomic<uint64_t> absent{0};
    const uint64_t pt_entries = uint64_t{1} << s.levels[last].bits;
    const uint64_t pt_bytes = s.table_bytes(last);
    ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 16) if (jobs.size() > 256)   // threads cost more on tiny dumps
    for (int64_t j = 0; j < static_cast<int64_t>(jobs.size()); ++j)
        errors.run([&] {
            const Job& job = jobs[j];
            auto& o = out[j];
            if (!job.table) {
                append_present(o, phys, job.vaddr, job.paddr, job.span, kernel_base);
                if (with_mapped) append_mapped(mapped[j], job.vaddr, job.paddr, job.span, kernel_base);
                return;
            }
            const uint8_t* t = phys.find(job.paddr, pt_bytes);
            if (!t) { absent.fetch_add(1, std::memory_order_relaxed); return; }
            for (uint64_t i = 0; i < pt_entries; ++i) {
                uint64_t va = job.vaddr + i * kPage;
                if (va < kernel_base) continue;
                uint64_t e = s.entry(t, i);
                if (!(e & kPresent)) continue;
                uint64_t pa = e & s.addr_mask;
                if (phys.find(pa, kPage)) append(o, va, pa, kPage);
                if (with_mapped) append(mapped[j], va, pa, kPage);
            }
        });
    errors.rethrow();
    res.stats.absent_tables += absent.load();
    auto concat = [](std::vector<std::vector<VirtualRun>>& parts, std::vector<VirtualRun>& to) {
        size_t total = 0;
        for (auto& o : parts) total += o.size();
        to.reserve(total);
        for (auto& o : parts) {
            for (auto& r : o) append(to, r.vaddr, r.paddr, r.size);
            std::vector<VirtualRun>().swap(o);
        }
    };
    concat(out, res.runs);
    concat(mapped, res.mapped);
    return res;
}

}  // namespace

const char* to_string(PagingMode m) {
    switch (m) {
    case PagingMode::X86_32: return "x86";
    case PagingMode::X86_PAE: return "pae";
    case PagingMode::X86_64_4Level: return "x64";
    case PagingMode::X86_64_5Level: return "la57";
    }
    return "?";
}

PagingMode parse_paging_mode(const std::string& s) {
    if (s == "x86") return PagingMode::X86_32;
    if (s == "pae") return PagingMode::X86_PAE;
    if (s == "x64") return PagingMode::X86_64_4Level;
    if (s == "la57") return PagingMode::X86_64_5Level;
    throw InputError("unknown paging mode '" + s + "' (expected x86|pae|x64|la57)");
}

TranslationLayer::TranslationLayer(const PhysicalLayer& phys, PagingMode mode, uint64_t dtb, uint64_t kernel_base)
    : phys_(&phys), mode_(mode), dtb_(dtb & scheme_of(mode).root_mask),
      kernel_base_(kernel_base ? kernel_base : scheme_of(mode).kernel_base) {
    const Scheme& s = scheme_of(mode);
    if (dtb & ~s.root_mask & ~uint64_t{0xfff})   // low bits are PCID/cache flags; high bits are not
        throw InputError("page-table root " + hex(dtb) + " has bits outside the " + to_string(mode) +
                         " CR3 address field");
    if (!phys.find(dtb_, s.table_bytes(0)))
        throw InputError("page-table root " + hex(dtb_) + " (" + s.levels[0].name + ") is not in the dump");
}

std::optional<uint64_t> TranslationLayer::translate(uint64_t vaddr) const noexcept {
    const Scheme& s = scheme_of(mode_);
    if (!s.is_canonical(vaddr)) return std::nullopt;
    uint64_t table = dtb_;
    uint64_t path[5];
    for (unsigned level = 0; level < s.nlevels; ++level) {
        const Level& L = s.levels[level];
        const uint8_t* t = phys_->find(table, s.table_bytes(level));
        if (!t) return std::nullopt;
        path[level] = table;
        uint64_t e = s.entry(t, (vaddr >> L.shift) & ((uint64_t{1} << L.bits) - 1));
        if (!(e & kPresent)) return std::nullopt;
        uint64_t pa;
        if (L.large_ok && (e & kPageSize)) {
            auto base = s.large_base(e, L.shift);
            if (!base) return std::nullopt;
            pa = *base + (vaddr & ((uint64_t{1} << L.shift) - 1));
        } else if (level + 1 == s.nlevels) {
            pa = (e & s.addr_mask) + (vaddr & (kPage - 1));
        } else {
            table = e & s.addr_mask;
            if (std::find(path, path + level + 1, table) != path + level + 1) return std::nullopt;
            continue;
        }
        if (!phys_->find(pa & ~(kPage - 1), kPage)) return std::nullopt;
        return pa;
    }
    return std::nullopt;
}

bool TranslationLayer::read_virtual(uint64_t vaddr, std::span<uint8_t> out) const noexcept {
    uint64_t done = 0;
    while (done < out.size()) {
        uint64_t va = vaddr + done;
        if (va < vaddr) return false;
        auto pa = translate(va);
        if (!pa) return false;
        uint64_t n = std::min<uint64_t>(kPage - (va & (kPage - 1)), out.size() - done);
        if (!phys_->read(*pa, out.subspan(done, n))) return false;
        done += n;
    }
    return true;
}

std::span<const VirtualRun> TranslationLayer::kernel_runs() const {
    if (!kernel_runs_done_) {
        WalkResult r = enumerate(scheme_of(mode_), *phys_, dtb_, kernel_base_, 1, true);
        kernel_runs_ = std::move(r.runs);
        mapped_runs_ = std::move(r.mapped);
        stats_ = r.stats;
        kernel_runs_done_ = true;
    }
    return kernel_runs_;
}

std::span<const VirtualRun> TranslationLayer::mapped_kernel_runs() const {
    kernel_runs();
    return mapped_runs_;
}

TranslationLayer::WalkStats TranslationLayer::walk_stats() const {
    kernel_runs();
    return stats_;
}

// ---------------------------------------------------------------------------------------------
// Finding the root.

namespace {

struct Candidate {
    uint64_t dtb = 0;
    uint32_t kernel_entries = 0;   // present top-level entries in the kernel half
    uint32_t user_entries = 0;     // present top-level entries below it (0 for swapper_pg_dir)
    uint64_t child_entries = 0;    // present entries in the kernel half's second-level tables
    uint64_t mapped_pages = 0;     // present kernel 4 KiB pages (full enumeration)
    bool maps_itself = false;      // some kernel page maps the root table's own physical page
    uint64_t anomalies = 0;        // looping entries + large pages with reserved bits (0 when read right)
    bool in_image = false;         // x86-64: mapped by the kernel-image mapping (swapper_pg_dir is)
};

// The cross-candidate order of step 3/4 below: true when a is the better root.
bool better(const Candidate& a, const Candidate& b) {
    if (a.maps_itself != b.maps_itself) return a.maps_itself;
    if (a.anomalies != b.anomalies) return a.anomalies < b.anomalies;
    if (a.in_image != b.in_image) return a.in_image;
    if (a.mapped_pages != b.mapped_pages) return a.mapped_pages > b.mapped_pages;
    if (a.user_entries != b.user_entries) return a.user_entries < b.user_entries;
    return a.dtb < b.dtb;
}

// Cheap structural test of the page at `p` as a root of scheme `s` (see the heuristic below).
std::optional<Candidate> quick_check(const Scheme& s, const PhysicalLayer& phys, uint64_t p) {
    const uint8_t* t = phys.find(p, s.table_bytes(0));
    if (!t) return std::nullopt;
    const Level& L = s.levels[0];
    const uint64_t n = uint64_t{1} << L.bits;
    const uint64_t top_mask = (uint64_t{1} << s.vaddr_bits) - 1;
    const uint64_t anchor = (s.anchor_vaddr & top_mask) >> L.shift;
    const uint64_t kfirst = (s.kernel_base & top_mask) >> L.shift;
    if (!(s.entry(t, anchor) & kPresent)) return std::nullopt;   // fast reject for almost every page
    Candidate c;
    c.dtb = p;
    constexpr size_t kMaxChildren = 32;   // bounds the cost of page-table look-alikes
    std::array<uint64_t, kMaxChildren> children;
    size_t nchildren = 0;
    for (uint64_t i = 0; i < n; ++i) {
        uint64_t e = s.entry(t, i);
        if (e == 0) continue;
        if (!(e & kPresent) || (e & s.top_reserved)) return std::nullopt;
        if (L.large_ok && (e & kPageSize)) {
            auto base = s.large_base(e, L.shift);
            if (!base) return std::nullopt;   // may lie outside the dump (ioremap, PSE-36)
        } else {
            uint64_t next = e & s.addr_mask;
            if (next == p || !phys.find(next, s.table_bytes(1))) return std::nullopt;
            if (i >= kfirst && nchildren < kMaxChildren) children[nchildren++] = next;
        }
        (i >= kfirst ? c.kernel_entries : c.user_entries)++;
    }
    if (c.kernel_entries < s.min_kernel_entries) return std::nullopt;
    // Second level: the kernel half's tables must look like tables too — nonzero entries present,
    // large pages without reserved bits, next tables (when not leaves) inside the dump.
    const Level& L1 = s.levels[1];
    const bool leaf1 = s.nlevels == 2;
    uint64_t good = 0, bad = 0;
    for (size_t k = 0; k < nchildren; ++k) {
        const uint8_t* ct = phys.find(children[k], s.table_bytes(1));
        for (uint64_t i = 0; i < (uint64_t{1} << L1.bits); ++i) {
            uint64_t e = s.entry(ct, i);
            if (e == 0) continue;
            bool ok = (e & kPresent) != 0;
            if (ok && L1.large_ok && (e & kPageSize)) ok = s.large_base(e, L1.shift).has_value();
            else if (ok && !leaf1) ok = phys.find(e & s.addr_mask, s.table_bytes(2)) != nullptr;
            (ok ? good : bad)++;
        }
    }
    if (good == 0 || bad * 4 > good) return std::nullopt;
    c.child_entries = good;
    return c;
}

// Heuristic page-directory search (no ELF note, no --dtb), for Linux guests.
//
// 1. Every page-aligned physical page P present in the dump is a candidate root for scheme s.
//    Fast reject unless the top-level entry covering the kernel anchor is present (x86-64: index
//    511, which maps the kernel image at 0xffffffff80000000; 32-bit/PAE: the entry for
//    PAGE_OFFSET 0xc0000000, i.e. the start of the lowmem direct map).
// 2. Structure (quick_check): every nonzero top-level entry is present, has no reserved bits
//    (PS in PML4/PML5, PDPTE reserved bits) and points to a table inside the dump; the kernel half
//    has at least 2 (x86-64) / 1 (32-bit, PAE) present entries; the tables those point to look
//    like page tables (nonzero entries present and well-formed, at most 1 bad per 4 good; the
//    first 32 such tables are checked).
//    Linux user halves are either empty (swapper_pg_dir) or hold real tables (process PGDs),
//    so a single malformed entry rejects the page.
// 3. The 8 survivors ranked best by (mapped by the kernel image, fewest user entries, most kernel
//    entries, most second-level entries, lowest address) — swapper_pg_dir lives in the kernel
//    image (mapped at 0xffffffff80000000 as well as in the direct map; checked for the first 256
//    candidates by fewest user entries); a full last-level table read as a root has hundreds of
//    "user" entries, swapper_pg_dir none, process PGDs a few — are fully enumerated, under a tighter
//    work bound of present pages / 128 + 4096 tables (a Linux kernel half needs about one
//    last-level table per 2 MiB of 4 KiB-mapped memory; a misread root that takes data pages for
//    tables needs one per page); a candidate exceeding it is dropped. Final order (`better`):
//    maps itself (the direct map of a correct root maps the root's own page), then fewest
//    anomalies (looping entries, large pages with reserved bits: a real kernel has none, a root
//    read with the wrong scheme has many, e.g. 2 MiB PMD entries misread as 1 GiB pages), then
//    mapped by the kernel image, then most present kernel pages, fewest user entries, lowest address. All process PGDs share the
//    kernel half, so any winner translates kernel addresses alike; the tie-breaks prefer
//    swapper_pg_dir and make the choice deterministic.
// 4. Across schemes (no --paging): x64 and la57, then — unless a 64-bit candidate maps itself —
//    pae and x86 each propose their best candidate; the same order picks among them, ties going
//    to the earlier scheme.
constexpr uint64_t kSearchBudgetDivisor = 128;

std::optional<Candidate> search_scheme(const Scheme& s, const PhysicalLayer& phys) {
    std::vector<uint64_t> pages;   // holes of a sparse file are zeros: no root there
    for (const auto& r : phys.data_runs()) {
        uint64_t first = (r.paddr + kPage - 1) & ~(kPage - 1);
        for (uint64_t p = first; p + kPage <= r.paddr + r.size && p >= first; p += kPage) {
            if (s.mode != PagingMode::X86_64_4Level && s.mode != PagingMode::X86_64_5Level && p > 0xfffff000u) break;
            pages.push_back(p);
        }
    }
    // One parallel pass; candidates are few and fully sorted below, so thread order is irrelevant.
    std::vector<Candidate> cands;
    const int64_t np = static_cast<int64_t>(pages.size());
    ParallelErrors errors;
#pragma omp parallel if (np > 16384)
    {
        std::vector<Candidate> mine;
#pragma omp for schedule(static) nowait
        for (int64_t i = 0; i < np; ++i)
            errors.run([&] {
                if (auto c = quick_check(s, phys, pages[i])) mine.push_back(*c);
            });
#pragma omp critical
        errors.run([&] { cands.insert(cands.end(), mine.begin(), mine.end()); });
    }
    errors.rethrow();
    // x86-64 Linux keeps swapper_pg_dir (init_top_pgt) in the kernel image, which is mapped at
    // [0xffffffff80000000, +1 GiB) besides the direct map; process PGDs and stale copies of one
    // in freed pages are only in the direct map. That subtree is small, so check the first
    // kMaxImageChecks candidates (fewest user entries first) before cutting to 8.
    constexpr size_t kMaxImageChecks = 256;
    std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
        if (a.user_entries != b.user_entries) return a.user_entries < b.user_entries;
        return a.dtb < b.dtb;
    });
    if (s.sign_extend) {
        const int64_t nc = static_cast<int64_t>(std::min(cands.size(), kMaxImageChecks));
#pragma omp parallel for schedule(dynamic, 4) if (nc > 8)
        for (int64_t i = 0; i < nc; ++i)
            errors.run([&] {
                Candidate& c = cands[i];
                try {
                    WalkResult w = enumerate(s, phys, c.dtb, s.anchor_vaddr, kSearchBudgetDivisor);
                    for (const auto& r : w.runs)
                        if (r.vaddr - s.anchor_vaddr < (uint64_t{1} << 30) && c.dtb >= r.paddr && c.dtb - r.paddr < r.size)
                            c.in_image = true;
                } catch (const InputError&) {
                }
            });
        errors.rethrow();
    }
    std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
        if (a.in_image != b.in_image) return a.in_image;
        if (a.user_entries != b.user_entries) return a.user_entries < b.user_entries;
        if (a.kernel_entries != b.kernel_entries) return a.kernel_entries > b.kernel_entries;
        if (a.child_entries != b.child_entries) return a.child_entries > b.child_entries;
        return a.dtb < b.dtb;
    });
    if (cands.size() > 8) cands.resize(8);
    std::vector<Candidate> scored;
    for (Candidate c : cands) {
        try {
            WalkResult w = enumerate(s, phys, c.dtb, s.kernel_base, kSearchBudgetDivisor);
            c.anomalies = w.stats.loops + w.stats.reserved;
            for (const auto& r : w.runs) {
                c.mapped_pages += r.size / kPage;
                if (c.dtb >= r.paddr && c.dtb - r.paddr < r.size) c.maps_itself = true;
            }
        } catch (const InputError&) {
            continue;   // exceeded the work bound: not a sane root
        }
        if (c.mapped_pages) scored.push_back(c);
    }
    if (scored.empty()) return std::nullopt;
    return *std::min_element(scored.begin(), scored.end(), better);
}

// Present kernel pages under (mode, dtb), or 0 when the walk fails.
uint64_t mapped_pages(const PhysicalLayer& phys, PagingMode mode, uint64_t dtb, TranslationLayer::WalkStats* st = nullptr) {
    try {
        TranslationLayer t(phys, mode, dtb);
        uint64_t n = 0;
        for (const auto& r : t.kernel_runs()) n += r.size / kPage;
        if (st) *st = t.walk_stats();
        return n;
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

}  // namespace

TranslationLayer TranslationLayer::detect(const PhysicalLayer& phys, std::optional<uint64_t> dtb_override,
                                          std::optional<PagingMode> mode_override) {
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
        try {
            return checked(phys, m, cr3, "CR3 from the ELF note:");
        } catch (const InputError& note_error) {
            // A corrupt or pre-paging note: the search may still find the kernel's root.
            try {
                return search(phys, mode_override);
            } catch (const InputError& search_error) {
                throw InputError(std::string(note_error.what()) + "; and " + search_error.what());
            }
        }
    }

    return search(phys, mode_override);
}

TranslationLayer TranslationLayer::search(const PhysicalLayer& phys, std::optional<PagingMode> mode_override) {
    std::vector<PagingMode> modes;
    if (mode_override) modes = {*mode_override};
    else modes = {PM::X86_64_4Level, PM::X86_64_5Level, PM::X86_PAE, PM::X86_32};
    // Best root per scheme, then across schemes by the same order (heuristic step 4 above).
    std::optional<std::pair<PagingMode, Candidate>> best;
    for (PagingMode m : modes) {
        // 32-bit schemes only when no 64-bit root mapped itself (they cost a scan each).
        if ((m == PM::X86_PAE || m == PM::X86_32) && best && best->second.maps_itself) break;
        auto c = search_scheme(scheme_of(m), phys);
        if (!c) continue;
        if (!best || better(*c, best->second)) best = {m, *c};
    }
    if (!best)
        throw InputError("no page-table root found: no page in the dump looks like a Linux kernel page "
                         "directory (give --dtb and --paging)");
    return checked(phys, best->first, best->second.dtb, "searched:");
}

}  // namespace deepmem
