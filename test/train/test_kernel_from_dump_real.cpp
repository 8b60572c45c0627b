// Suite 'real-dumps': types and symbols recovered from the dump alone (train/kernel_from_dump.hpp)
// equal the kernel package's, on the dev dump ($DEEPMEM_DUMPS/dev, Debian 6.1) and on every build
// listed in $DEEPMEM_DUMPS/builds/READY (5.10, 6.1, 6.12, 6.1-rt when a sibling made them):
//   BTF      byte for byte the .BTF section of the dump's vmlinuz (a build whose vmlinuz this
//            branch cannot decompress is reported and compared by symbols only);
//   symbols  every core-kernel line of the guest's /proc/kallsyms (the file beside the dump), in
//            order, with address, type letter and name; module lines are not in the core tables;
//   labels   the labeler's walk with both from the dump equals its walk with the package's files
//            (same labels, same counts), where the package's BTF can be read.
// Figures (seconds per search) are printed, not asserted. Skipped (exit 77) without the dev dump.
#include "graph/layers.hpp"
#include "train/kernel_from_dump.hpp"
#include "train/labeler.hpp"

#include <doctest/doctest.h>

#include "test/real_dump.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace deepmem;
namespace fs = std::filesystem;

namespace {

// The dev dump needs its vmlinuz (the BTF reference); the builds are compared by symbols at least.
std::vector<fs::path> dump_dirs() {
    std::vector<fs::path> dirs = test::real_dump_dirs({"dump.elf", "kallsyms"});
    if (!fs::exists(dirs[0] / "vmlinuz")) test::real_dump_dir({"dump.elf", "kallsyms", "vmlinuz"});   // skips
    return dirs;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void check_dump(const fs::path& dir) {
    INFO("dump " << dir.string());
    auto phys = PhysicalLayer::open((dir / "dump.elf").string());
    const TranslationLayer tl = TranslationLayer::detect(*phys);

    auto t0 = std::chrono::steady_clock::now();
    std::string why;
    auto found = find_btf(tl, &why);
    const double t_btf = seconds_since(t0);
    INFO("find_btf: " << why);
    REQUIRE(found);
    std::string package = "not compared";
    std::optional<btf::Btf> package_btf;
    try {
        package_btf = btf::load_kernel_btf((dir / "vmlinuz").string());
        const bool same = std::ranges::equal(found->btf.bytes(), package_btf->bytes());
        CHECK(same);
        package = same ? "equal" : "DIFFERENT";
    } catch (const InputError& e) {
        package = std::string("not compared (") + e.what() + ")";
    }

    t0 = std::chrono::steady_clock::now();
    auto syms = find_kallsyms(tl, &why);
    const double t_syms = seconds_since(t0);
    INFO("find_kallsyms: " << why);
    REQUIRE(syms);
    CHECK(syms->in_own_rodata);   // (in the read-only data their own symbols name: no copy passed over)
    CHECK(syms->passed_over.empty());
    const Kallsyms file = Kallsyms::load((dir / "kallsyms").string());
    std::vector<KernelSymbol> core;
    for (const KernelSymbol& s : file.symbols())
        if (s.module.empty()) core.push_back(s);
    const auto& mem = syms->symbols.symbols();
    CHECK(mem.size() == core.size());
    uint64_t first_diff = 0;
    while (first_diff < std::min(mem.size(), core.size()) && mem[first_diff] == core[first_diff]) ++first_diff;
    if (first_diff < std::min(mem.size(), core.size())) {
        const KernelSymbol &a = mem[first_diff], &b = core[first_diff];
        FAIL_CHECK("symbol " << first_diff << ": dump " << hex(a.address) << " " << a.type << " " << a.name
                             << ", file " << hex(b.address) << " " << b.type << " " << b.name);
    }

    t0 = std::chrono::steady_clock::now();
    const KernelTypesAndSymbols both = kernel_types_and_symbols(tl);
    const double t_both = seconds_since(t0);
    CHECK(both.btf);
    CHECK(both.symbols);
    CHECK(both.notes.empty());
    if (package_btf && both.btf && both.symbols) {
        const TranslatedMemory mem(tl);
        const LabelSet from_dump = label_kernel_objects(mem, *both.btf, *both.symbols);
        const LabelSet from_package = label_kernel_objects(mem, *package_btf, file);
        CHECK(from_dump.labels.size() == from_package.labels.size());
        CHECK(from_dump.per_type() == from_package.per_type());
        CHECK(from_dump.counts.processes == from_package.counts.processes);
        CHECK(from_dump.counts.threads == from_package.counts.threads);
        CHECK(from_dump.counts.fds == from_package.counts.fds);
        bool same = from_dump.labels.size() == from_package.labels.size();
        for (size_t i = 0; same && i < from_dump.labels.size(); ++i)
            same = from_dump.labels[i].vaddr == from_package.labels[i].vaddr &&
                   from_dump.labels[i].type == from_package.labels[i].type &&
                   from_dump.labels[i].size == from_package.labels[i].size;
        CHECK(same);
    }
    std::printf("%s: BTF %llu bytes at %s in %.2f s (package: %s); %llu symbols at %s in %.2f s (%s, %s); "
                "both %.2f s\n",
                dir.filename().c_str(), static_cast<unsigned long long>(found->size), hex(found->vaddr).c_str(), t_btf,
                package.c_str(), static_cast<unsigned long long>(syms->tables.count), hex(syms->tables.num_syms).c_str(),
                t_syms, syms->tables.offsets > syms->tables.token_index ? "offsets after token_index" : "offsets before num_syms",
                syms->tables.absolute_percpu ? "absolute per-CPU" : "relative", t_both);
}

}  // namespace

TEST_CASE("types and symbols from each real dump equal the kernel package's") {
    for (const fs::path& dir : dump_dirs()) check_dump(dir);
}
