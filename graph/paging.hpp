// The x86 paging schemes as data, shared by the walker (graph/translation.cpp) and the root
// search (graph/root_search.cpp); internal to graph/, not installed. Each scheme is a row of
// kSchemes: its levels top-down (address shift, index width, whether a PS bit may end the walk
// there), entry size and address widths, in the manner of Volatility 3's layers/intel.py; sources:
// Intel SDM vol. 3A §4.3 (32-bit), §4.4 (PAE), §4.5 (4- and 5-level); Linux
// arch/x86/include/asm/page_{32,64}_types.h and pgtable_{32,64}_types.h for the kernel layout.
#pragma once

#include "graph/layers.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

namespace deepmem::paging {

inline constexpr uint64_t kPage = 4096;
inline constexpr uint64_t kPresent = 1, kPageSize = 0x80;
inline constexpr uint64_t kAddr52 = 0x000ffffffffff000ull;   // bits 12..51: NX (63) and software bits dropped

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
    // Plausibility of a root (graph/root_search.cpp): the kernel text lies in [anchor_vaddr,
    // anchor_vaddr + text_window) (x86-64: the 1 GiB KASLR range of the kernel image below the
    // modules; 32-bit: 512 MiB, KERNEL_IMAGE_SIZE, inside the lowmem direct map), and the direct
    // map can cover at most `direct_map_limit` bytes (32-bit: 896 MiB of lowmem; 0 = all memory).
    uint64_t text_window;
    uint64_t direct_map_limit;

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
inline constexpr Scheme kSchemes[] = {
    {PM::X86_32, 4, 2,
     {{{"page directory", 22, 10, true}, {"page table", 12, 10, false}}},
     32, false, 0xfffff000u, 0xfffff000u, true, 0xc0000000u,
     0xc0000000u, 1, 0, 512ull << 20, 896ull << 20},
    {PM::X86_PAE, 8, 3,
     {{{"page directory pointer table", 30, 2, false}, {"page directory", 21, 9, true},
       {"page table", 12, 9, false}}},
     32, false, kAddr52, 0xffffffe0u, false, 0xc0000000u,
     0xc0000000u, 1, 0x1c6 | (uint64_t{1} << 63), 512ull << 20, 896ull << 20},   // PDPTE bits 1,2,6..8 and 63 are reserved; QEMU sets A (5)
    {PM::X86_64_4Level, 8, 4,
     {{{"PML4", 39, 9, false}, {"PDPT", 30, 9, true}, {"page directory", 21, 9, true},
       {"page table", 12, 9, false}}},
     48, true, kAddr52, kAddr52, false, 0xffff800000000000ull,
     0xffffffff80000000ull, 2, kPageSize, 1ull << 30, 0},
    {PM::X86_64_5Level, 8, 5,
     {{{"PML5", 48, 9, false}, {"PML4", 39, 9, false}, {"PDPT", 30, 9, true},
       {"page directory", 21, 9, true}, {"page table", 12, 9, false}}},
     57, true, kAddr52, kAddr52, false, 0xff00000000000000ull,
     0xffffffff80000000ull, 2, kPageSize, 1ull << 30, 0},
};

inline const Scheme& scheme_of(PagingMode m) { return kSchemes[static_cast<int>(m)]; }

// At most this many kernel virtual pages map one physical page; further aliases are skipped
// (counted in WalkStats::aliases_skipped). A Linux kernel maps a page at most about three times
// (direct map, kernel image or vmalloc/module area, cpu_entry_area); page tables crafted to map one
// page thousands of times would otherwise multiply all later work.
inline constexpr unsigned kMaxAliases = 4;

// The x86-64 espfix area, [0xffffff0000000000, 0xffffff8000000000) (PML4 slot 510 under 4- and
// 5-level paging; Linux Documentation/arch/x86/x86_64/mm.rst, arch/x86/kernel/espfix_64.c): by
// design it maps each CPU's few espfix stack pages thousands of times (Debian 6.1 under QEMU: one
// page, 2,172 mappings). Aliases skipped there are counted apart (WalkStats::aliases_espfix) and
// are no sign of crafted tables.
inline constexpr uint64_t kEspfixLo = 0xffffff0000000000ull, kEspfixHi = 0xffffff8000000000ull;
inline bool in_espfix(const Scheme& s, uint64_t va) { return s.sign_extend && va >= kEspfixLo && va < kEspfixHi; }

// Pointer evidence: how many aligned words of the dump's data (8 bytes; 4 for 32-bit schemes)
// hold a kernel virtual address in each granule of kernel space (x86-64: 1 GiB, one PDPT entry;
// LA57: 512 GiB; 32-bit and PAE: 2 MiB; at most 2^17 granules). A real mapping of kernel memory
// (the direct map, the kernel image, vmalloc) is the target of the kernel's own pointers, often
// hundreds of thousands of them; page-table entries crafted to alias memory at other addresses
// are the target of none. enumerate() uses it to choose among aliases (see translation.cpp).
struct PointerEvidence {
    uint64_t base = 0;              // kernel_base rounded down to a granule
    unsigned shift = 0;             // log2 of the granule size
    std::vector<uint64_t> prefix;   // prefix[i]: words pointing into granules below i
    // Words pointing into the granules [va, va + span) touches (a range inside one granule: its
    // granule's count).
    uint64_t score(uint64_t va, uint64_t span) const noexcept {
        if (prefix.size() < 2 || va + (span - 1) < base) return 0;
        const uint64_t n = prefix.size() - 1;
        const uint64_t lo = va < base ? 0 : std::min((va - base) >> shift, n - 1);
        const uint64_t hi = std::min((va + (span - 1) - base) >> shift, n - 1);
        return prefix[hi + 1] - prefix[lo];
    }
};
// One pass over the dump's data (chunks of 8 MiB, released once counted; parallel).
PointerEvidence pointer_evidence(const Scheme& s, const PhysicalLayer& phys, uint64_t kernel_base);

// The base of the x86-64 direct map (page_offset_base, arch/x86/kernel/head64.c; randomised in
// 1 GiB steps by arch/x86/mm/kaslr.c), as the kernel itself holds it: a 1 GiB-aligned word of the
// kernel image's own pages (the text window's mapping at its majority offset, which is linear)
// whose address the tables under `dtb` map to physical 0 and to `dtb` at base + dtb (the kernel
// reaches its page tables through its direct map). `candidates`: how many distinct words
// qualified (at most 65). The image's window also holds pages the kernel freed after boot (its
// init sections, the unused part of .bss..decrypted), whose reused contents may hold any word: a
// clone's base among them qualifies too (Debian 6.12 under QEMU: base − 1 GiB, in 3 of 4 dumps).
// So `base` is the candidate whose granule the dump's pointers (`ev`) use most, when it gets more
// than twice any other's (always so for the real base beside a clone's: 423,136 against 150);
// else 0. 32-bit and PAE: nothing (their direct map is the bottom of kernel space, which the
// lowest-address rule keeps anyway). Reads at most the text window's present pages (Debian 6.1:
// 52 MiB), released as read.
// The distinct 1 GiB-aligned kernel-half words below the image (at most 65) in the kernel image's
// own pages under `dtb` (the text window's mapping at its majority offset, which is linear): where
// the kernel keeps its direct map's base. Empty for 32-bit and PAE. Reads at most the text
// window's present pages, released as read.
std::vector<uint64_t> image_base_words(const Scheme& s, const PhysicalLayer& phys, uint64_t dtb, uint64_t kernel_base);
// The x86-64 direct map's base from the dump's pointers alone, for a dump whose kernel image and
// tables are lost (a cut below all of them: translation.cpp fill_direct_map, root_search.cpp step
// 5): of the 1 GiB-aligned addresses below the kernel image's window (the image and modules, whose
// granules the image's own pointers fill: 291,144 against the direct map's 556,704 on a Debian 6.1
// dump cut at 128 MiB) that `allowed` accepts, the one whose [base, base + the dump's end rounded
// to 1 GiB) the dump's words point into most (slab objects link each other through the direct
// map), when it gets at least twice the best such range that does not overlap it (vmemmap's struct
// page links, vmalloc). Shifts of the true base by whole GiB overlap it and score less: the kernel
// leaves the GiB below its direct map unused (KASLR places the regions apart, arch/x86/mm/kaslr.c).
// Words are counted, not distinct values: a spray of 1.48 M words at another granule wins
// (attacker 15, F2), which the warnings of its callers say ("the base the dump's pointers use
// most"). 4-level only (1 GiB evidence granules); 0 when the pointers do not tell. One pass over
// the dump's data (pointer_evidence).
uint64_t direct_base_by_pointers(const Scheme& s, const PhysicalLayer& phys, uint64_t kernel_base,
                                 const std::function<bool(uint64_t)>& allowed);
struct DirectMapAnchor {
    uint64_t base = 0;
    uint32_t candidates = 0;
};
DirectMapAnchor direct_map_anchor(const Scheme& s, const PhysicalLayer& phys, uint64_t dtb, uint64_t kernel_base,
                                  const PointerEvidence& ev);

// A page table's nonzero entries as the kernel writes them (Intel SDM vol. 3A §4.4–4.5): `good`
// ones are present (a large page's base without reserved bits); `bad` ones are not present, or
// a large page with reserved bits, which no kernel leaves in a table it uses (Linux clears
// entries it drops: pte_clear, pmd_clear). A present entry pointing at a table absent from the
// dump is neither (a cut dump, holes). Malformed: more than 1 bad per 4 good. The root search
// weighs candidate roots by it; the walker tells junk from a cut by it (translation.cpp).
struct TableVerdict {
    uint64_t good = 0, bad = 0;
    bool malformed() const noexcept { return bad * 4 > good; }
};
TableVerdict judge_table(const Scheme& s, const PhysicalLayer& phys, const uint8_t* table, unsigned level);

struct WalkResult {
    std::vector<VirtualRun> runs;   // present kernel pages, sorted by vaddr, at most kMaxAliases per page
    std::vector<VirtualRun> mapped; // with_mapped: every mapped kernel page, present or not, sorted by vaddr
    // with_mapped: the kernel ranges {vaddr, size} under present entries of sound tables whose table
    // is absent from the dump, in vaddr order, adjacent ones merged, at most kMaxAbsentListed.
    std::vector<std::pair<uint64_t, uint64_t>> absent_spans;
    std::vector<VirtualRun> filled;   // the direct map's fill (translation.cpp fill_direct_map), in vaddr order
    TranslationLayer::WalkStats stats;
    uint64_t absent_lo = ~uint64_t{0}, absent_hi = 0;   // lowest / highest absent table address seen
    // Distinct absent table pages, ascending (at most kMaxAbsentListed kept; stats.absent_table_pages
    // counts them all up to that bound, then says "at least").
    std::vector<uint64_t> absent_pages;
};

// Distinct absent table pages enumerate() tracks; beyond it the count is a lower bound.
inline constexpr size_t kMaxAbsentListed = size_t{1} << 16;

// Every mapped page at or above kernel_base whose backing is present (see translation.cpp for the
// work bound and the choice among aliases), and with `with_mapped` every mapped page whatever its
// backing (large pages whole; tables that are absent or skipped as aliases map nothing), plus
// the direct map's present pages under absent tables, mapped linearly (translation.cpp,
// fill_direct_map; WalkStats::direct_fill_pages). Reading
// fewer tables: budget = data pages / budget_divisor + 4096 tables, past which it throws
// InputError. `evidence`: where to keep the pointer evidence, computed only when aliases beyond
// the bound appear outside the espfix area, for reuse by later calls on the same dump and scheme
// (the root search); null: computed locally when needed.
WalkResult enumerate(const Scheme& s, const PhysicalLayer& phys, uint64_t dtb, uint64_t kernel_base,
                     uint64_t budget_divisor = 1, bool with_mapped = false,
                     std::optional<PointerEvidence>* evidence = nullptr);

// A union of physical address intervals [lo, hi): add() them, finish() once (sort and merge), then
// ask which addresses and how many bytes of a range it covers. The walk's direct-map fill (pages a
// run already maps), the root check (present pages a direct map leaves out) and the root search
// (whether a root maps its own table; the dump's data pages a root maps) share it.
class PhysicalCover {
public:
    void add(uint64_t lo, uint64_t hi) {
        if (lo < hi) iv_.emplace_back(lo, hi);
    }
    void finish() {
        std::sort(iv_.begin(), iv_.end());
        size_t k = 0;
        for (const auto& v : iv_) {
            if (k && v.first <= iv_[k - 1].second) iv_[k - 1].second = std::max(iv_[k - 1].second, v.second);
            else iv_[k++] = v;
        }
        iv_.resize(k);
    }
    bool covers(uint64_t p) const {
        auto it = std::upper_bound(iv_.begin(), iv_.end(), p,
                                   [](uint64_t x, const std::pair<uint64_t, uint64_t>& v) { return x < v.first; });
        return it != iv_.begin() && p < std::prev(it)->second;
    }
    // Bytes of [lo, hi) covered: O(log n + intervals met).
    uint64_t bytes_in(uint64_t lo, uint64_t hi) const {
        uint64_t n = 0;
        auto it = std::upper_bound(iv_.begin(), iv_.end(), lo,
                                   [](uint64_t x, const std::pair<uint64_t, uint64_t>& v) { return x < v.first; });
        if (it != iv_.begin()) --it;
        for (; it != iv_.end() && it->first < hi; ++it)
            if (it->second > lo) n += std::min(hi, it->second) - std::max(lo, it->first);
        return n;
    }
private:
    std::vector<std::pair<uint64_t, uint64_t>> iv_;   // after finish(): sorted, disjoint, not adjacent
};

}  // namespace deepmem::paging
