// End to end through the `dmgraph` executable ($DMGRAPH, set by meson): a raw dump with real
// x86-64 page tables (layer_images.hpp) holding the paper's Figure 2 with two consecutive pointers,
// one of them through the kernel-image alias of the page. build → info / nodes / dot, and the
// one-line errors of bad input.
#include "graph/memory_graph.hpp"
#include "layer_images.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace deepmem;
namespace fs = std::filesystem;

namespace {

struct Run { int status; std::string out, err; };

Run dmgraph(const std::string& args, const fs::path& dir) {
    const char* exe = std::getenv("DMGRAPH");
    REQUIRE_MESSAGE(exe != nullptr, "set DMGRAPH to the dmgraph executable");
    std::string err_file = (dir / "stderr.txt").string();
    std::string cmd = std::string(exe) + " " + args + " 2>" + err_file;
    Run r{};
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::ifstream e(err_file);
    r.err.assign(std::istreambuf_iterator<char>(e), {});
    return r;
}

bool one_error_line(const std::string& err) {
    return err.rfind("dmgraph: error: ", 0) == 0 && err.find('\n') == err.size() - 1;
}

constexpr uint64_t V = 0xffff800000300000ull;       // direct map of physical 0x300000
constexpr uint64_t Alias = 0xffffffff80100000ull;   // the same page through the kernel-image mapping

}  // namespace

TEST_CASE("graph: dmgraph build, info, nodes and dot on a raw dump with page tables") {
    fs::path dir = fs::temp_directory_path() / ("dmgraph-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    // p→A | A [0,32) | p→C | B [40,72) | p→D (via the alias) | C [80,120) | p→A p→B | D [136,1000) | p→A
    // | S [1008, …): no pointer follows, a long gap's node (memory_graph.hpp).
    // Memory is contiguous around the page, so the outer pointers are what bound A and D.
    auto img = test_images::build_x64_4level();
    const uint64_t P0 = 0x300000;
    for (uint64_t i = 0; i < 4096; ++i) img.bytes[P0 + i] = i < 136 ? 0x11 : 0x44;
    img.put64(P0 + 32, V + 88);
    img.put64(P0 + 72, Alias + 200);
    img.put64(P0 + 120, V + 4);
    img.put64(P0 + 128, V + 48);
    img.put64(P0 - 8, V + 4);
    img.put64(P0 + 1000, V + 8);
    {
        std::ofstream f(dir / "dump.raw", std::ios::binary);
        f.write(reinterpret_cast<const char*>(img.bytes.data()), static_cast<std::streamsize>(img.bytes.size()));
    }
    const std::string dump = (dir / "dump.raw").string(), out = (dir / "g.dmg").string();

    Run b = dmgraph("build " + dump + " -o " + out + " --dtb 0x1000 --paging x64 --format raw", dir);
    CHECK(b.status == 0);
    CHECK(b.err == "");
    MemoryGraph g = MemoryGraph::load(out);
    CHECK(g.info().dump_path == dump);   // absolute already
    // A relative path is recorded absolute: the .dmg is used from other directories.
    const std::string rel = "cd '" + dir.string() + "' && " + std::getenv("DMGRAPH") +
                            " build dump.raw -o rel.dmg --dtb 0x1000 --paging x64 --format raw";
    CHECK(std::system(rel.c_str()) == 0);
    CHECK(MemoryGraph::load((dir / "rel.dmg").string()).info().dump_path == fs::absolute(dir / "dump.raw").lexically_normal().string());
    CHECK(g.info().dtb == 0x1000);
    CHECK(g.info().paging == PagingMode::X86_64_4Level);
    CHECK(g.node_count() == 5);   // patterned and zero pages hold no pointers: no other nodes
    CHECK(g.params().long_gap_nodes);

    Run n = dmgraph("nodes " + out + " --from 0xffff800000300000 --to 0xffff800000301000", dir);
    CHECK(n.status == 0);
    CHECK(n.out ==
          "vaddr\tpaddr\tlength\tln\trn\tlp\trp\tkind\n"
          "0xffff800000300000\t0x300000\t32\t\t0xffff800000300028\t0xffff800000300000\t0xffff800000300050\tsegment\n"
          "0xffff800000300028\t0x300028\t32\t0xffff800000300000\t0xffff800000300050\t0xffff800000300050\t0xffff800000300088\tsegment\n"
          "0xffff800000300050\t0x300050\t40\t0xffff800000300028\t0xffff800000300088\t0xffff800000300088\t"
          "0xffff800000300000,0xffff800000300028\tsegment\n"
          "0xffff800000300088\t0x300088\t864\t0xffff800000300050\t\t0xffff800000300000,0xffff800000300028\t"
          "0xffff800000300000\tsegment\n"
          "0xffff8000003003f0\t0x3003f0\t4096\t0xffff800000300088\t\t0xffff800000300000\t\tlong_gap\n");   // S: edges in, none out

    Run i = dmgraph("info " + out, dir);
    CHECK(i.status == 0);
    CHECK(i.out.find("nodes               5\n") != std::string::npos);
    CHECK(i.out.find("edges lp            6\n") != std::string::npos);
    CHECK(i.out.find("pointer fields      6\n") != std::string::npos);
    CHECK(i.out.find("paging              x64\n") != std::string::npos);
    CHECK(i.out.find("dtb                 0x1000\n") != std::string::npos);
    CHECK(i.out.find("max_segment=4096") != std::string::npos);
    CHECK(i.out.find("long_gap_nodes=yes") != std::string::npos);
    CHECK(i.out.find("long gaps' nodes    1 (length 4096") != std::string::npos);
    {   // --no-long-gap-nodes: the graph without S, the other nodes' rows unchanged
        const std::string without = (dir / "without.dmg").string();
        REQUIRE(dmgraph("build " + dump + " -o " + without + " --dtb 0x1000 --paging x64 --format raw --no-long-gap-nodes", dir).status == 0);
        CHECK(MemoryGraph::load(without).node_count() == 4);
        Run wn = dmgraph("nodes " + without + " --from 0xffff800000300000 --to 0xffff800000301000", dir);
        CHECK(wn.out == n.out.substr(0, n.out.rfind("0xffff8000003003f0")));
        const std::string wi = dmgraph("info " + without, dir).out;
        CHECK(wi.find("long_gap_nodes=no") != std::string::npos);
        CHECK(wi.find("long gaps' nodes") == std::string::npos);
    }
    {   // the dump path is read back from the file: shown as terminal text (attacker 13 #8)
        const fs::path odd = dir / "d\x1b[31mred\xc2\x9b.raw";
        fs::create_symlink(dump, odd);
        const std::string odd_out = (dir / "odd.dmg").string();
        REQUIRE(dmgraph("build '" + odd.string() + "' -o " + odd_out + " --dtb 0x1000 --paging x64 --format raw", dir).status == 0);
        Run oi = dmgraph("info " + odd_out, dir);
        CHECK(oi.status == 0);
        CHECK(oi.out.find("d?[31mred?.raw (") != std::string::npos);
        CHECK(oi.out.find('\x1b') == std::string::npos);
    }

    Run d = dmgraph("dot " + out + " --around 0xffff800000300050 --hops 1", dir);
    CHECK(d.status == 0);
    CHECK(d.out.rfind("digraph", 0) == 0);
    CHECK(d.out.find("n3 -> n2 [label=\"lp\"]") != std::string::npos);   // D lp→ C
    CHECK(d.out.find("n0 -> n2 [label=\"rp\"]") != std::string::npos);   // A rp→ C

    // Errors: one line on stderr, exit status 1 for bad input, 2 for a usage error.
    Run e1 = dmgraph("dot " + out + " --around 0xffff800000300078", dir);   // a pointer field
    CHECK(e1.status == 1);
    CHECK(one_error_line(e1.err));
    {
        std::string bytes;
        {
            std::ifstream f(out, std::ios::binary);
            bytes.assign(std::istreambuf_iterator<char>(f), {});
        }
        bytes[bytes.size() / 2] ^= 1;
        std::ofstream(dir / "bad.dmg", std::ios::binary) << bytes;
    }
    Run e2 = dmgraph("info " + (dir / "bad.dmg").string(), dir);
    CHECK(e2.status == 1);
    CHECK(one_error_line(e2.err));
    CHECK(e2.err.find("checksum") != std::string::npos);
    Run e3 = dmgraph("build " + dump, dir);   // no -o: a usage error
    CHECK(e3.status == 2);
    CHECK(one_error_line(e3.err));
    Run e4 = dmgraph("frobnicate", dir);   // an unknown command is a usage error
    CHECK(e4.status == 2);
    CHECK(one_error_line(e4.err));
    Run e5 = dmgraph("nodes " + out + " --from zz", dir);
    CHECK(e5.status == 1);
    CHECK(one_error_line(e5.err));
    Run help = dmgraph("build --help", dir);
    CHECK(help.status == 0);
    CHECK(help.out.rfind("usage: dmgraph build DUMP", 0) == 0);
    Run e6 = dmgraph("info " + out + " --bogus", dir);
    CHECK(e6.status == 2);
    CHECK(one_error_line(e6.err));
    CHECK(e6.err.find("(see dmgraph --help)") != std::string::npos);

    // A LiME copy missing its last byte: analysed with one warning line; --strict refuses it.
    {
        auto lime = test_images::to_lime(img.bytes, {});
        std::ofstream f(dir / "cut.lime", std::ios::binary);
        f.write(reinterpret_cast<const char*>(lime.data()), static_cast<std::streamsize>(lime.size() - 1));
    }
    const std::string cut = (dir / "cut.lime").string();
    Run w = dmgraph("build " + cut + " -o " + out + " --dtb 0x1000 --paging x64", dir);
    CHECK(w.status == 0);
    CHECK(w.err.rfind("dmgraph: warning: truncated LiME file", 0) == 0);
    CHECK(w.err.find('\n') == w.err.size() - 1);
    CHECK(MemoryGraph::load(out).node_count() == 5);   // A, B, C, D and S
    Run s = dmgraph("build " + cut + " -o " + out + " --dtb 0x1000 --paging x64 --strict", dir);
    CHECK(s.status == 1);
    CHECK(one_error_line(s.err));
    // A LiME range header whose e_addr lies near 2^64 (the file holds far less): a corrupt header,
    // refused with one line naming the range even without --strict.
    {
        auto lime = test_images::to_lime(img.bytes, {});
        test_images::put_le(lime, 16, 8, 0xfffffffffffff000ull);
        std::ofstream f(dir / "huge.lime", std::ios::binary);
        f.write(reinterpret_cast<const char*>(lime.data()), static_cast<std::streamsize>(lime.size()));
    }
    Run h = dmgraph("build " + (dir / "huge.lime").string() + " -o " + out + " --dtb 0x1000 --paging x64", dir);
    CHECK(h.status == 1);
    CHECK(one_error_line(h.err));
    CHECK(h.err.find("e_addr 0xfffffffffffff000") != std::string::npos);
    // Page tables over pages without a pointer (issue #11 item 2): no graph of 0 nodes with exit 0,
    // one line that says why, and no output file.
    {
        auto plain = test_images::build_x64_4level();
        std::ofstream f(dir / "plain.raw", std::ios::binary);
        f.write(reinterpret_cast<const char*>(plain.bytes.data()), static_cast<std::streamsize>(plain.bytes.size()));
    }
    const std::string empty_out = (dir / "empty.dmg").string();
    Run z = dmgraph("build " + (dir / "plain.raw").string() + " -o " + empty_out + " --dtb 0x1000 --paging x64", dir);
    CHECK(z.status == 1);
    CHECK(one_error_line(z.err));
    CHECK(z.err.find("the memory graph has no node: ") != std::string::npos);
    CHECK(z.err.find("under the page-table root 0x1000 (x64)") != std::string::npos);
    CHECK(!fs::exists(empty_out));
    // A QEMU migration stream is refused by name.
    std::ofstream(dir / "vm.sav", std::ios::binary) << std::string("QEVM\0\0\0\3", 8) << std::string(4096, 'x');
    Run q = dmgraph("build " + (dir / "vm.sav").string() + " -o " + out, dir);
    CHECK(q.status == 1);
    CHECK(one_error_line(q.err));
    CHECK(q.err.find("QEMU migration stream") != std::string::npos);
    if (!getenv("KEEP")) fs::remove_all(dir);
}
