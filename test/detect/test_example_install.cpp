// tools/example/list-tasks.cpp built the way another tool would embed deepmem: `meson install
// --destdir` of this build into a temporary directory, then `c++ … $(pkg-config --cflags --libs
// deepmem)` against that installation only (its deepmem.pc relocated to the destdir), run on a
// synthetic .dmg with a model made here. $DEEPMEM_BUILD (build dir) and $EXAMPLE (source) come
// from meson.
#include "detect/detect.hpp"
#include "../graph/graph_fixtures.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace deepmem;
namespace fs = std::filesystem;

TEST_CASE("detect: the example builds through pkg-config against an installed libdeepmem and runs") {
    const char* build = std::getenv("DEEPMEM_BUILD");
    const char* example = std::getenv("EXAMPLE");
    REQUIRE_MESSAGE((build && example), "set DEEPMEM_BUILD and EXAMPLE");
    const fs::path dir = fs::temp_directory_path() / ("deepmem-example-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "pc");

    // input: 24-byte segments between pointers; a model that calls each of them key node 1 (offset 0)
    test::Memory mem(2);
    mem.map(test::K64, 0, 8192);
    for (uint64_t off = 24; off < 8192; off += 32) mem.word(off, test::K64 + off - 24);
    mem.build().save((dir / "g.dmg").string());
    ModelConfig c;
    c.classes = 2;
    Model m = Model::create(c, 3);
    m.object_type = "task_struct";
    m.key_nodes = {{0, 24, 0.5f}};
    m.threshold = 0.25f;   // one key node: every object is its one vote (a model of two
                           // refuses a threshold one vote reaches, Model::validate)
    m.params.cls_b(int(c.classifier_hidden.size()))(0, 1) = 100.f;   // every node says key node 1
    m.save((dir / "task_struct.cereal").string());

    const std::string d = dir.string();
    const std::string script =
        "set -e; cd '" + d + "'\n"
        "meson install -C '" + std::string(build) + "' --destdir '" + d + "/root' --no-rebuild --quiet >install.log 2>&1\n"
        "pc=$(find root -name deepmem.pc | head -n 1); test -n \"$pc\"\n"
        "prefix=$(sed -n 's/^prefix=//p' \"$pc\")\n"
        "sed \"s|^prefix=.*|prefix=" + d + "/root$prefix|\" \"$pc\" > pc/deepmem.pc\n"
        "export PKG_CONFIG_PATH='" + d + "/pc'\n"
        "c++ -std=c++20 -O1 '" + std::string(example) + "' $(pkg-config --cflags --libs deepmem) -o list-tasks 2>compile.log\n"
        "./list-tasks task_struct.cereal g.dmg > out.txt\n"
        "./list-tasks task_struct.cereal g.dmg --max 1 > one.txt\n";
    const int status = std::system(("sh -c \"$(cat <<'EOS'\n" + script + "EOS\n)\" 2>" + d + "/script.log").c_str());
    auto slurp = [](const fs::path& p) {
        std::ifstream f(p);
        return std::string(std::istreambuf_iterator<char>(f), {});
    };
    INFO("script log: " << slurp(dir / "script.log") << "\ninstall: " << slurp(dir / "install.log")
                        << "\ncompile: " << slurp(dir / "compile.log"));
    REQUIRE(status == 0);
    // the example must have used the installed headers, not the source tree
    CHECK(fs::exists(dir / "root"));
    const std::string out = slurp(dir / "out.txt"), one = slurp(dir / "one.txt");
    CHECK(out.rfind("task_struct 0xffff888000", 0) == 0);
    CHECK(out.find(" objects in ") != std::string::npos);
    CHECK(one.find("1 objects in ") != std::string::npos);
    if (!std::getenv("KEEP")) fs::remove_all(dir);
}
