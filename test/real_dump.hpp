// Shared by the 'real-dumps' suite: where the real QEMU dump lives, or a skip (exit 77, which meson
// counts as skipped; tools/run-tests fails a run where a dump was built but tests still skipped).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>

namespace deepmem::test {

// $DEEPMEM_DUMPS/$DEEPMEM_REAL_DUMP (default /work/dumps/dev; meson runs some tests again with
// DEEPMEM_REAL_DUMP=builds/5.10 and builds/6.12, dumps of other kernel builds that tools/run-tests
// makes) when tools/make-dataset finished it (DONE marker) and every file in `needed` exists;
// otherwise prints why and exits 77.
inline std::filesystem::path real_dump_dir(std::initializer_list<const char*> needed = {"dump.elf"}) {
    namespace fs = std::filesystem;
    const char* env = std::getenv("DEEPMEM_DUMPS");
    const char* sub = std::getenv("DEEPMEM_REAL_DUMP");
    fs::path dev = fs::path(env && *env ? env : "/work/dumps") / (sub && *sub ? sub : "dev");
    bool ok = fs::exists(dev / "DONE");
    for (const char* f : needed) ok = ok && fs::exists(dev / f);
    if (!ok) {
        std::printf("skipped: no real dump (%s/DONE or a needed file missing; set DEEPMEM_DUMPS)\n", dev.c_str());
        std::exit(77);
    }
    return dev;
}

}  // namespace deepmem::test
