// libFuzzer target: avml dumps decompressed by the physical layer, and the layer invariants.
#include "test/fuzz/fuzz_physical.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    check_physical(data, size, deepmem::DumpFormat::Avml);
    return 0;
}
