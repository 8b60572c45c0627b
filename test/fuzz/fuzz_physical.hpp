// Shared by fuzz_elf.cpp, fuzz_lime.cpp, fuzz_kdump.cpp and fuzz_avml.cpp: parse an input as one dump format and check the
// physical layer's invariants; a violated invariant aborts, which libFuzzer reports as a crash.
#pragma once

#include "graph/layers.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

inline void check_physical(const uint8_t* data, size_t size, deepmem::DumpFormat format) {
    using namespace deepmem;
    std::unique_ptr<PhysicalLayer> phys;
    try {
        phys = PhysicalLayer::from_bytes({data, size}, format);
    } catch (const FormatError& e) {
        if (e.offset() > size) std::abort();   // an error must point into the file
        return;
    } catch (const InputError&) {              // refused: decompression bomb, QEVM, archive
        return;
    }
    // The runs index the file, or for compressed formats (kdump, AVML) the decompressed image;
    // from its size on, the pages assembled from ranges split mid-page.
    const uint8_t* base = phys->file_bytes().data();
    const uint64_t base_size = phys->file_bytes().size(), assembled = phys->assembled_pages() * 4096;
    if ((format == deepmem::DumpFormat::Kdump || format == deepmem::DumpFormat::Avml) == (base == data)) std::abort();
    uint64_t prev_end = 0, total = 0, contiguous_from = 0;
    for (const auto& r : phys->runs()) {
        if (r.size == 0 || r.paddr < prev_end) std::abort();   // sorted, disjoint
        const bool in_base = r.file_offset < base_size && r.size <= base_size - r.file_offset;
        const uint64_t a = r.file_offset - base_size;
        const bool in_assembled = r.file_offset >= base_size && a <= assembled && r.size <= assembled - a;
        if (!in_base && !in_assembled) std::abort();   // inside one mapping
        if (phys->find(r.paddr, r.size) != phys->bytes_of(r)) std::abort();
        // Every whole 4 KiB page of physically contiguous runs reads as one piece.
        if (r.paddr != prev_end || prev_end == 0) contiguous_from = r.paddr;
        const uint64_t first = std::max((contiguous_from + 4095) & ~uint64_t{4095}, r.paddr & ~uint64_t{4095});
        for (uint64_t pg = first; pg + 4096 <= r.paddr + r.size; pg += 4096)
            if (!phys->find(pg, 4096)) std::abort();
        prev_end = r.paddr + r.size;
        total += r.size;
        uint8_t b[16];
        if (!phys->read(r.paddr, {b, r.size < 16 ? r.size : 16})) std::abort();
    }
    if (total != phys->present_bytes() || prev_end != phys->max_paddr()) std::abort();
    if (phys->find(phys->max_paddr(), 1)) std::abort();   // past the end is absent
    // The translation layer on top must cope with whatever the CPU notes claim.
    try {
        auto t = TranslationLayer::detect(*phys);
        (void)t.kernel_runs();
    } catch (const InputError&) {
    }
}

// Byte 0 picks the scheme (low 2 bits), bytes 1..8 the root (little-endian), the rest is a dump
// in `format` (a raw physical image unless said); nullopt for inputs shorter than 10 bytes. The
// dump's FormatError or InputError propagates.
struct PagingInput {
    deepmem::PagingMode mode;
    uint64_t dtb;
    std::unique_ptr<deepmem::PhysicalLayer> phys;
};
inline std::optional<PagingInput> paging_input(const uint8_t* data, size_t size,
                                               deepmem::DumpFormat format = deepmem::DumpFormat::Raw) {
    using namespace deepmem;
    if (size < 10) return std::nullopt;
    PagingInput in{static_cast<PagingMode>(data[0] & 3), 0, nullptr};
    std::memcpy(&in.dtb, data + 1, 8);
    in.phys = PhysicalLayer::from_bytes({data + 9, size - 9}, format);
    return in;
}
