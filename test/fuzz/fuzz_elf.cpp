// libFuzzer target: ELF core parsing (program headers, PN_XNUM, notes) and the layer invariants.
#include "test/fuzz/fuzz_physical.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    check_physical(data, size, deepmem::DumpFormat::Elf);
    return 0;
}
