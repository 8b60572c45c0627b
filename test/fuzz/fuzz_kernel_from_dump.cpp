// libFuzzer target: find_btf, find_kallsyms and kernel_types_and_symbols (train/kernel_from_dump.hpp)
// over an input that is the kernel image: its bytes (at most 2 MiB) are what x86-64 page tables map
// at 0xffffffff80000000, and nothing else is mapped. Any input must end in found
// tables or nullopt with a reason: no crash, no read outside the layers, no endless loop.
// Seeds (corpus/kernel_from_dump/): a kernel BTF blob, and kallsyms tables in the 6.2 layout
// (kallsyms_seqs_of_names before the token table), both written by test_kernel_from_dump.cpp's builders.
#include "graph/layers.hpp"
#include "train/kernel_from_dump.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

using namespace deepmem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // PML4 0x1000 [511] → PDPT 0x2000 [510] → PD 0x3000 [0] → PT 0x4000: one 4 KiB page per 4 KiB of
    // input (at most 512), at physical 0x10000 on, so the search costs what the input is long.
    const uint64_t pages = std::min<uint64_t>((size + 4095) / 4096, 512);
    std::vector<uint8_t> mem(0x10000 + pages * 4096);
    auto put64 = [&](uint64_t at, uint64_t v) { std::memcpy(mem.data() + at, &v, 8); };
    put64(0x1000 + 511 * 8, 0x2000 | 3);
    put64(0x2000 + 510 * 8, 0x3000 | 3);
    put64(0x3000, 0x4000 | 3);
    for (uint64_t i = 0; i < pages; ++i) put64(0x4000 + 8 * i, (0x10000 + 4096 * i) | 3);
    std::memcpy(mem.data() + 0x10000, data, std::min<size_t>(size, pages * 4096));
    try {
        auto phys = PhysicalLayer::from_bytes(mem, DumpFormat::Raw);
        const TranslationLayer tl(*phys, PagingMode::X86_64_4Level, 0x1000);
        std::string why;
        if (auto b = find_btf(tl, &why)) (void)b->btf.find("task_struct");
        if (auto k = find_kallsyms(tl, &why)) (void)k->symbols.address("init_task");
        auto r = kernel_types_and_symbols(tl);
        (void)r.notes.size();
    } catch (const FormatError&) {
    } catch (const InputError&) {
    }
    return 0;
}
