// libFuzzer target: the page-table walker and the DTB search over arbitrary physical memory.
// Input: byte 0 picks the scheme (low 2 bits), bytes 1..8 the root (little-endian), the rest is
// a raw physical image. Checks: kernel_runs() sorted, disjoint, in kernel space, backed by present
// pages, and agreeing with translate(); detect() either finds a root or throws InputError.
#include "fuzz_physical.hpp"

#include <cstdlib>
#include <cstring>

using namespace deepmem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto in = paging_input(data, size);
    if (!in) return 0;
    const PagingMode mode = in->mode;
    const uint64_t dtb = in->dtb;
    const auto& phys = in->phys;
    try {
        TranslationLayer t(*phys, mode, dtb);
        uint64_t prev_end = 0;
        bool first = true;
        for (const auto& r : t.kernel_runs()) {
            if (r.size == 0 || r.size % 4096 || r.vaddr < t.kernel_base()) std::abort();
            if (!first && r.vaddr < prev_end) std::abort();
            if (!phys->find(r.paddr, r.size)) std::abort();
            for (uint64_t off : {uint64_t{0}, r.size - 4096})
                if (t.translate(r.vaddr + off) != r.paddr + off) std::abort();
            prev_end = r.vaddr + r.size;
            first = false;
        }
        uint8_t buf[64];
        (void)t.read_virtual(t.kernel_base() + (dtb & 0xfffff), buf);
    } catch (const InputError&) {
    }
    try {
        auto t = TranslationLayer::detect(*phys);
        if (t.kernel_runs().empty()) std::abort();   // detect() never returns a root mapping nothing
    } catch (const InputError&) {
    }
    return 0;
}
