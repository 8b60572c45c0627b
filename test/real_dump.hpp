// Shared by the 'real-dumps' suite: where the real QEMU dump lives, or a skip (exit 77, which meson
// counts as skipped; tools/run-tests fails a run where a dump was built but tests still skipped).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

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

// The dev dump (real_dump_dir(needed)) and then every build listed in its sibling builds/READY
// whose directory holds every file in `needed`.
inline std::vector<std::filesystem::path> real_dump_dirs(std::initializer_list<const char*> needed) {
    namespace fs = std::filesystem;
    std::vector<fs::path> dirs{real_dump_dir(needed)};
    const fs::path builds = dirs[0].parent_path() / "builds";
    std::ifstream ready(builds / "READY");
    for (std::string name; std::getline(ready, name);) {
        bool ok = !name.empty();
        for (const char* f : needed) ok = ok && fs::exists(builds / name / f);
        if (ok) dirs.push_back(builds / name);
    }
    return dirs;
}

}  // namespace deepmem::test
