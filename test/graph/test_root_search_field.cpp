// The root search on the field cases of issue #11 ($DEEPMEM_FIELD_CASES, meson passes
// <source>/../shared/field-cases; README.md there says how each file was made):
//   pae-two-roots.raw.zst      a Debian 686-pae guest's page tables with a stale early-boot PDPT
//                              (0x9e97000, maps ≈3,000 pages) besides the kernel's root 0x1cd4000
//                              (named by the ELF note of the same dump, maps all 65,506 lowmem pages)
//   5g-guest-first16m.raw.zst  the first 16 MiB of a 5 GiB guest whose kernel lies above 4 GiB:
//                              no kernel page tables, so a refusal that says the dump looks cut
// Skipped (exit 77) when the folder or the zstd program is missing.
#define DOCTEST_CONFIG_IMPLEMENT
#include "graph/layers.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

using namespace deepmem;
namespace fs = std::filesystem;

namespace {

fs::path g_cases, g_tmp;

// `name`.zst decompressed (sparse) into the scratch directory.
std::string unpacked(const std::string& name) {
    const fs::path out = g_tmp / name;
    const std::string cmd = "zstd -d -q -f '" + (g_cases / (name + ".zst")).string() + "' -o '" + out.string() + "'";
    REQUIRE(std::system(cmd.c_str()) == 0);
    return out.string();
}

}  // namespace

TEST_CASE("field case: PAE guest with a stale boot-time PDPT") {
    auto phys = PhysicalLayer::open(unpacked("pae-two-roots.raw"));
    auto t = TranslationLayer::detect(*phys);
    CHECK(t.mode() == PagingMode::X86_PAE);
    CHECK(t.dtb() == 0x1cd4000);
    uint64_t pages = 0;
    for (const auto& r : t.kernel_runs()) pages += r.size / 4096;
    CHECK(pages > 60000);   // the lowmem direct map of a 256 MiB guest, not the stale table's few thousand
    CHECK(t.warnings().empty());
}

TEST_CASE("field case: the first 16 MiB of a 5 GiB guest are refused as cut") {
    auto phys = PhysicalLayer::open(unpacked("5g-guest-first16m.raw"));
    CHECK_THROWS_WITH_AS(TranslationLayer::detect(*phys),
                         doctest::Contains("no kernel page tables in this dump: it looks cut at 16 MiB"), InputError);
}

int main(int argc, char** argv) {
    const char* env = std::getenv("DEEPMEM_FIELD_CASES");
    g_cases = env && *env ? env : "../shared/field-cases";
    if (!fs::exists(g_cases / "pae-two-roots.raw.zst") || !fs::exists(g_cases / "5g-guest-first16m.raw.zst")) {
        std::printf("skipped: no field cases in %s (set DEEPMEM_FIELD_CASES)\n", g_cases.c_str());
        return 77;
    }
    if (std::system("zstd --version > /dev/null 2>&1") != 0) {
        std::printf("skipped: no zstd program (apt-get install zstd)\n");
        return 77;
    }
    char dir[] = "/tmp/dm-field-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    g_tmp = dir;
    doctest::Context ctx(argc, argv);
    const int rc = ctx.run();
    std::error_code ec;
    fs::remove_all(g_tmp, ec);
    return rc;
}
