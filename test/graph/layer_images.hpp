// Hand-built physical memory images with page tables for each paging scheme, and writers that
// wrap an image as a QEMU-style ELF core or a LiME file. Shared by test_layers.cpp and the fuzz
// seed generator; every layout is spelled out next to its builder.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace deepmem::test_images {

inline void put_le(std::vector<uint8_t>& b, uint64_t off, unsigned n, uint64_t v) {
    for (unsigned i = 0; i < n; ++i) b.at(off + i) = static_cast<uint8_t>(v >> (8 * i));
}
inline uint64_t read_le(const std::vector<uint8_t>& b, uint64_t off, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v |= uint64_t{b.at(off + i)} << (8 * i);
    return v;
}

struct Image {
    std::vector<uint8_t> bytes;
    explicit Image(uint64_t size) : bytes(size, 0) {}
    void put64(uint64_t paddr, uint64_t v) { put_le(bytes, paddr, 8, v); }
    void put32(uint64_t paddr, uint32_t v) { put_le(bytes, paddr, 4, v); }
    void pattern(uint64_t paddr, uint64_t len, uint8_t seed) {
        for (uint64_t i = 0; i < len; ++i) bytes.at(paddr + i) = static_cast<uint8_t>(seed + i * 13);
    }
};

constexpr uint64_t P = 0x1, RW = 0x2, US = 0x4, PS = 0x80, NX = uint64_t{1} << 63;

// x86-64 4-level, 4 MiB of memory:
//   PML4 0x1000: [256] → PDPT2 0x5000, [511] → PDPT 0x2000
//   PDPT2[0]: 1 GiB page at 0          → 0xffff800000000000 maps all 4 MiB (direct map)
//   PDPT[510] → PD 0x3000
//   PD[0]: 2 MiB page at 0x200000, NX   → 0xffffffff80000000
//   PD[1] → PT 0x4000: [0..3] → 0x10000.., [5] → 0x1000 (the PML4), [6] → 0x10000000 (absent)
inline Image build_x64_4level() {
    Image m(0x400000);
    m.put64(0x1000 + 256 * 8, 0x5000 | P | RW);
    m.put64(0x1000 + 511 * 8, 0x2000 | P | RW);
    m.put64(0x5000, 0 | P | RW | PS);
    m.put64(0x2000 + 510 * 8, 0x3000 | P | RW);
    m.put64(0x3000, 0x200000 | P | RW | PS | NX);
    m.put64(0x3000 + 8, 0x4000 | P | RW);
    for (int i = 0; i < 4; ++i) m.put64(0x4000 + 8 * i, (0x10000 + 0x1000 * i) | P | RW | NX);
    m.put64(0x4000 + 5 * 8, 0x1000 | P);
    m.put64(0x4000 + 6 * 8, 0x10000000 | P);
    m.pattern(0x10000, 0x4000, 1);
    m.pattern(0x200000, 0x2000, 2);
    return m;
}

// build_x64_4level grown to 16 MiB (the direct map's 1 GiB page covers it), with 2 MiB pages at
// 0x400000..0xbfffff in PD[2..5] of the kernel image's window: 10 MiB present there in all, as much
// as a kernel image needs to count as one (detect.hpp lacks_kernel_image). `banner` ("" for none) is
// written at physical `banner_at`: 0x400100 lies in the window (0xffffffff80400100), 0xe00100 only
// in the direct map.
inline Image build_x64_with_image(const std::string& banner = "", uint64_t banner_at = 0x400100) {
    Image m = build_x64_4level();
    m.bytes.resize(0x1000000, 0);
    for (uint64_t i = 0; i < 4; ++i) m.put64(0x3000 + (2 + i) * 8, (0x400000 + 0x200000 * i) | P | RW | PS | NX);
    std::copy(banner.begin(), banner.end(), m.bytes.begin() + long(banner_at));
    return m;
}

// x86-64 5-level, 4 MiB:
//   PML5 0x1000: [256] → PML4b 0x5000 → [0] PDPTb 0x6000 → [0] 1 GiB page at 0 (0xff00000000000000)
//                [511] → PML4 0x2000 → [511] PDPT 0x3000 → [510] PD 0x4000 → [0] 2 MiB at 0x200000
inline Image build_x64_5level() {
    Image m(0x400000);
    m.put64(0x1000 + 256 * 8, 0x5000 | P | RW);
    m.put64(0x1000 + 511 * 8, 0x2000 | P | RW);
    m.put64(0x5000, 0x6000 | P | RW);
    m.put64(0x6000, 0 | P | RW | PS);
    m.put64(0x2000 + 511 * 8, 0x3000 | P | RW);
    m.put64(0x3000 + 510 * 8, 0x4000 | P | RW);
    m.put64(0x4000, 0x200000 | P | RW | PS);
    m.pattern(0x200000, 0x1000, 3);
    return m;
}

// PAE, 2 MiB:
//   PDPT 0x1000 (4 entries): [3] → PD 0x2000, [0] → user PD 0x6000
//   PD[0]: 2 MiB page at 0 (0xc0000000), PD[1] → PT 0x3000: [0] → 0x5000 (0xc0200000)
//   user: PD 0x6000 [0] → PT 0x8000 [1] → 0x7000 (vaddr 0x1000)
inline Image build_pae() {
    Image m(0x200000);
    m.put64(0x1000 + 3 * 8, 0x2000 | P);
    m.put64(0x1000, 0x6000 | P);
    m.put64(0x2000, 0 | P | RW | PS);
    m.put64(0x2000 + 8, 0x3000 | P | RW);
    m.put64(0x3000, 0x5000 | P | RW | NX);
    m.put64(0x6000, 0x8000 | P | RW | US);
    m.put64(0x8000 + 8, 0x7000 | P | RW | US);
    m.pattern(0x5000, 0x1000, 4);
    return m;
}

// 32-bit, 4 MiB:
//   PD 0x1000: [768] 4 MiB page at 0 (0xc0000000), [769] → PT 0x2000 [0] → 0x3000 (0xc0400000),
//              [770] 4 MiB page with PSE-36 bits 13..20 = 1 → physical 4 GiB (absent)
inline Image build_x86_32() {
    Image m(0x400000);
    m.put32(0x1000 + 768 * 4, 0 | P | RW | PS);
    m.put32(0x1000 + 769 * 4, 0x2000 | P | RW);
    m.put32(0x1000 + 770 * 4, (1u << 13) | P | RW | PS);
    m.put32(0x2000, 0x3000 | P | RW);
    m.pattern(0x3000, 0x1000, 5);
    return m;
}

// Alias bombs (issue #15): page tables crafted so that a small dump maps its few pages millions of
// times; the walk must stay bounded by the dump's distinct pages. `bytes` ≥ 1 MiB, a multiple of 4 KiB.
//   Gib1   x86-64 4-level: PML4 0x1000 [256..511] → PDPT 0x2000, all 512 entries 1 GiB pages at 0
//   La57   5-level: PML5 0x1000 [256..511] → PML4 0x2000 [0..511] → PDPT 0x3000, all 1 GiB pages at 0
//   Spray  4-level: PML4 0x1000 [256..511] → PDPT 0x2000 [0..511] → PD 0x3000, whose entries each
//          point to a distinct PT (from 0x4000, as many as fit, ≤ 512) whose 512 entries map page 0
enum class AliasBomb { Gib1, La57, Spray };
inline Image build_alias_bomb(uint64_t bytes, AliasBomb kind) {
    Image m(bytes);
    for (int i = 256; i < 512; ++i) m.put64(0x1000 + 8 * i, 0x2000 | P | RW);
    switch (kind) {
    case AliasBomb::Gib1:
        for (int i = 0; i < 512; ++i) m.put64(0x2000 + 8 * i, 0 | P | RW | PS);
        break;
    case AliasBomb::La57:
        for (int i = 0; i < 512; ++i) m.put64(0x2000 + 8 * i, 0x3000 | P | RW);
        for (int i = 0; i < 512; ++i) m.put64(0x3000 + 8 * i, 0 | P | RW | PS);
        break;
    case AliasBomb::Spray: {
        for (int i = 0; i < 512; ++i) m.put64(0x2000 + 8 * i, 0x3000 | P | RW);
        const uint64_t pts = std::min<uint64_t>(512, bytes / 0x1000 - 4);
        for (uint64_t t = 0; t < pts; ++t) {
            m.put64(0x3000 + 8 * t, (0x4000 + 0x1000 * t) | P | RW);
            for (int i = 0; i < 512; ++i) m.put64(0x4000 + 0x1000 * t + 8 * i, 0 | P | RW);
        }
        break;
    }
    }
    return m;
}

struct CpuNote {
    uint64_t cr0, cr3, cr4;
    bool cs_long;   // sets the L bit in the QEMUCPUState cs.flags
};

constexpr uint64_t kCoreNoteSize = 12 + 8 + 336;   // "CORE" NT_PRSTATUS, x86-64 elf_prstatus
constexpr uint64_t kQemuNoteSize = 12 + 8 + 440;   // "QEMU" QEMUCPUState with kernel_gs_base

// A QEMU dump-guest-memory style core: ELF header, program headers (PT_NOTE first when there are
// CPUs, then one PT_LOAD per segment), notes (all CORE notes, then all QEMU notes, as QEMU writes
// them), segment data in order; with `xnum`, e_phnum = PN_XNUM and a section header 0 carrying
// the count follows the program headers.
inline std::vector<uint8_t> to_elf(const std::vector<uint8_t>& mem, std::vector<std::pair<uint64_t, uint64_t>> segs,
                                   std::vector<CpuNote> cpus, bool is64, bool xnum = false) {
    const uint64_t ehsize = is64 ? 64 : 52, phsize = is64 ? 56 : 32, shsize = is64 ? 64 : 40;
    const uint64_t nph = segs.size() + (cpus.empty() ? 0 : 1);
    const uint64_t phoff = ehsize;
    const uint64_t shoff = phoff + nph * phsize;
    const uint64_t note_off = shoff + (xnum ? shsize : 0);
    const uint64_t note_len = cpus.size() * (kCoreNoteSize + kQemuNoteSize);
    uint64_t data = note_off + note_len;
    uint64_t total = data;
    for (auto& s : segs) total += s.second;
    std::vector<uint8_t> b(total, 0);
    std::memcpy(b.data(), "\x7f" "ELF", 4);
    b[4] = is64 ? 2 : 1;
    b[5] = 1;
    b[6] = 1;
    put_le(b, 16, 2, 4);                   // ET_CORE
    put_le(b, 18, 2, is64 ? 62 : 3);       // EM_X86_64 / EM_386
    put_le(b, 20, 4, 1);
    if (is64) {
        put_le(b, 32, 8, phoff);
        put_le(b, 40, 8, xnum ? shoff : 0);
        put_le(b, 52, 2, ehsize);
        put_le(b, 54, 2, phsize);
        put_le(b, 56, 2, xnum ? 0xffff : nph);
        put_le(b, 58, 2, shsize);
        put_le(b, 60, 2, xnum ? 1 : 0);
    } else {
        put_le(b, 28, 4, phoff);
        put_le(b, 32, 4, xnum ? shoff : 0);
        put_le(b, 40, 2, ehsize);
        put_le(b, 42, 2, phsize);
        put_le(b, 44, 2, xnum ? 0xffff : nph);
        put_le(b, 46, 2, shsize);
        put_le(b, 48, 2, xnum ? 1 : 0);
    }
    if (xnum) put_le(b, shoff + (is64 ? 44 : 28), 4, nph);
    auto phdr = [&](uint64_t i, uint32_t type, uint64_t off, uint64_t paddr, uint64_t size) {
        uint64_t at = phoff + i * phsize;
        put_le(b, at, 4, type);
        if (is64) {
            put_le(b, at + 8, 8, off);
            put_le(b, at + 24, 8, paddr);
            put_le(b, at + 32, 8, size);
            put_le(b, at + 40, 8, size);
        } else {
            put_le(b, at + 4, 4, off);
            put_le(b, at + 12, 4, paddr);
            put_le(b, at + 16, 4, size);
            put_le(b, at + 20, 4, size);
        }
    };
    uint64_t i = 0;
    if (!cpus.empty()) phdr(i++, 4, note_off, 0, note_len);
    for (auto& s : segs) {
        phdr(i++, 1, data, s.first, s.second);
        std::memcpy(b.data() + data, mem.data() + s.first, s.second);
        data += s.second;
    }
    uint64_t n = note_off;
    auto note = [&](const char* name, uint32_t type, uint64_t descsz) {
        put_le(b, n, 4, 5);
        put_le(b, n + 4, 4, descsz);
        put_le(b, n + 8, 4, type);
        std::memcpy(b.data() + n + 12, name, 4);
        n += 12 + 8;
        uint64_t desc = n;
        n += descsz;
        return desc;
    };
    for (size_t c = 0; c < cpus.size(); ++c) note("CORE", 1, 336);
    for (const auto& c : cpus) {
        uint64_t d = note("QEMU", 0, 440);
        put_le(b, d, 4, 1);
        put_le(b, d + 4, 4, 440);
        put_le(b, d + 160, 4, c.cs_long ? (1u << 21) : 0);
        put_le(b, d + 392, 8, c.cr0);
        put_le(b, d + 416, 8, c.cr3);
        put_le(b, d + 424, 8, c.cr4);
    }
    return b;
}

// LiME file of `mem`, split into ranges at the given ascending addresses.
inline std::vector<uint8_t> to_lime(const std::vector<uint8_t>& mem, std::vector<uint64_t> splits) {
    std::vector<uint8_t> b;
    splits.insert(splits.begin(), 0);
    splits.push_back(mem.size());
    for (size_t i = 0; i + 1 < splits.size(); ++i) {
        uint64_t s = splits[i], e = splits[i + 1];
        size_t h = b.size();
        b.resize(h + 32 + (e - s), 0);
        put_le(b, h, 4, 0x4C694D45);
        put_le(b, h + 4, 4, 1);
        put_le(b, h + 8, 8, s);
        put_le(b, h + 16, 8, e - 1);
        std::memcpy(b.data() + h + 32, mem.data() + s, e - s);
    }
    return b;
}

// LiME file holding only the given {start, size} ranges of `mem` (ascending), one header each.
inline std::vector<uint8_t> to_lime_ranges(const std::vector<uint8_t>& mem,
                                           const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
    std::vector<uint8_t> b;
    for (auto [s, n] : ranges) {
        size_t h = b.size();
        b.resize(h + 32 + n, 0);
        put_le(b, h, 4, 0x4C694D45);
        put_le(b, h + 4, 4, 1);
        put_le(b, h + 8, 8, s);
        put_le(b, h + 16, 8, s + n - 1);
        std::memcpy(b.data() + h + 32, mem.data() + s, n);
    }
    return b;
}

}  // namespace deepmem::test_images
