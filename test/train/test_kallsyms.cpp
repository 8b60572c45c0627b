// /proc/kallsyms parsing and the guest view file.
#include "graph/file_io.hpp"
#include "graph/layers.hpp"
#include "train/labeler.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace deepmem;

namespace {
std::span<const uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
}  // namespace

TEST_CASE("kallsyms: core symbols win over module symbols") {
    std::string text =
        "ffffffffa2000000 T _text\n"
        "ffffffffa3e0a940 D init_task\n"
        "ffffffffc0a01000 t init_task\t[fake_mod]\n"
        "ffffffffc0a02000 t only_in_module\t[ext4]\n"
        "0000000000032a40 A runqueues\r\n"
        "\n"
        "ffffffffa3e0a940 d init_task\n";   // a later duplicate does not replace the first
    auto k = Kallsyms::parse(bytes(text));
    CHECK(k.size() == 6);
    CHECK(k.address("init_task") == 0xffffffffa3e0a940ull);
    CHECK(k.address("only_in_module") == 0xffffffffc0a02000ull);
    CHECK(k.address("runqueues") == 0x32a40);
    CHECK(k.require("_text") == 0xffffffffa2000000ull);
    CHECK_FALSE(k.address("nope"));
    CHECK_THROWS_AS(k.require("nope"), InputError);
}

TEST_CASE("kallsyms completed from System.map: data symbols shifted by the KASLR offset") {
    // A 32-bit kernel without CONFIG_KALLSYMS_ALL, loaded 0x8000000 above its link address;
    // one module symbol.
    const std::string running =
        "c9000000 T _text\n"
        "c9001000 T start_kernel\n"
        "f8a01000 t loop_init\t[loop]\n";
    const std::string map =
        "00000000 A VDSO32_PRELINK\n"
        "00012340 D fixed_percpu_data\n"   // below _text: not shifted
        "c1000000 T _text\n"
        "c1001000 T start_kernel\n"
        "c1c694c0 D init_task\n"
        "c1d9513c d dentry_hashtable\n";
    auto k = Kallsyms::parse(bytes(running)).with_system_map(Kallsyms::parse(bytes(map)));
    CHECK(k.size() == 7);
    CHECK(k.address("init_task") == 0xc9c694c0u);
    CHECK(k.address("dentry_hashtable") == 0xc9d9513cu);
    CHECK(k.address("start_kernel") == 0xc9001000u);   // the running kernel's, not added twice
    CHECK(k.address("fixed_percpu_data") == 0x12340u);
    CHECK(k.address("VDSO32_PRELINK") == 0u);
    CHECK(k.address("loop_init") == 0xf8a01000u);
    for (size_t i = 1; i < k.symbols().size(); ++i) CHECK(k.symbols()[i - 1].address <= k.symbols()[i].address);
    // A map linked above the running address (negative shift) works modulo 2^64 too.
    auto down = Kallsyms::parse(bytes("c0800000 T _text\n")).with_system_map(Kallsyms::parse(bytes(map)));
    CHECK(down.address("init_task") == 0xc1c694c0u - 0x800000u);
    // Without _text on either side there is nothing to relocate by.
    CHECK_THROWS_AS(Kallsyms::parse(bytes("c9001000 T start_kernel\n")).with_system_map(Kallsyms::parse(bytes(map))),
                    InputError);
    CHECK_THROWS_AS(Kallsyms::parse(bytes(running)).with_system_map(Kallsyms::parse(bytes("c1c694c0 D init_task\n"))),
                    InputError);
}

TEST_CASE("kallsyms: malformed lines are FormatErrors at the line") {
    auto offset_of_error = [](const std::string& t) -> int64_t {
        try {
            Kallsyms::parse(bytes(t));
        } catch (const FormatError& e) {
            return static_cast<int64_t>(e.offset());
        }
        return -1;
    };
    std::string good = "ffffffff81000000 T _text\n";
    CHECK(offset_of_error(good + "zzzz T x\n") == static_cast<int64_t>(good.size()));
    CHECK(offset_of_error(good + "ffffffff81000000\n") == static_cast<int64_t>(good.size()));
    CHECK(offset_of_error(good + "ffffffff81000000 T\n") >= static_cast<int64_t>(good.size()));
    CHECK(offset_of_error(good + "1ffffffff81000000 T x\n") >= 0);   // 17 hex digits
    CHECK(offset_of_error(good + "ffffffff81000000 T x\tmodule\n") >= 0);
    CHECK(offset_of_error(good + "ffffffff81000000 T a b\n") >= 0);
    CHECK(offset_of_error(good + "ffffffff81000000 TT x\n") >= 0);
    CHECK(offset_of_error(good) == -1);
}

TEST_CASE("kallsyms: empty or unprivileged files are InputErrors") {
    CHECK_THROWS_AS(Kallsyms::parse(bytes("")), InputError);
    CHECK_THROWS_AS(Kallsyms::parse(bytes("\n\n")), InputError);
    CHECK_THROWS_AS(Kallsyms::parse(bytes("0000000000000000 T _text\n0000000000000000 D init_task\n")), InputError);
}

TEST_CASE("guest view: parse and compare") {
    std::string text =
        "# deepmem guest view v1\n"
        "processes 57\n"
        "threads 80   # comment\n"
        "fds 301\n"
        "module ext4\n"
        "module nf_tables\n"
        "future_key 12\n"
        "modules 2\n";
    auto v = GuestView::parse(bytes(text));
    CHECK(v.processes == 57);
    CHECK(v.threads == 80);
    CHECK(v.fds == 301);
    CHECK(v.modules == 2);
    REQUIRE(v.module_names.size() == 2);
    CHECK(v.module_names[1] == "nf_tables");

    LabelCounts d;
    d.processes = 57;
    d.threads = 80;
    d.fds = 301;
    d.modules = 2;
    d.module_names = {"nf_tables", "ext4"};
    CHECK(compare_with_view(d, v).empty());
    d.processes = 56;
    d.module_names = {"nf_tables", "xfs"};
    auto diff = compare_with_view(d, v);
    REQUIRE(diff.size() == 3);
    CHECK(diff[0] == "processes: dump 56, guest 57");
    CHECK(diff[1] == "module missing in dump: ext4");
    CHECK(diff[2] == "module missing in guest view: xfs");
}

TEST_CASE("guest view: errors") {
    CHECK_THROWS_AS(GuestView::parse(bytes("processes 1\n")), FormatError);   // no header
    std::string h = "# deepmem guest view v1\n";
    CHECK_THROWS_AS(GuestView::parse(bytes(h + "processes 1\nthreads 1\nfds 1\n")), FormatError);   // no modules
    CHECK_THROWS_AS(GuestView::parse(bytes(h + "processes x\nthreads 1\nfds 1\nmodules 0\n")), FormatError);
    CHECK_THROWS_AS(GuestView::parse(bytes(h + "processes 1\nthreads 1\nfds 1\nmodules 1\n")), FormatError);
    CHECK_THROWS_AS(GuestView::parse(bytes(h + "processes\n")), FormatError);
    CHECK_NOTHROW(GuestView::parse(bytes(h + "processes 1\nthreads 1\nfds 1\nmodules 0")));
}

TEST_CASE("jsonl path") {
    CHECK(jsonl_path_for("out/labels.tsv") == "out/labels.jsonl");
    CHECK(jsonl_path_for("labels") == "labels.jsonl");
    CHECK(jsonl_path_for("a.b/labels") == "a.b/labels.jsonl");
    CHECK(jsonl_path_for("dir/.hidden") == "dir/.hidden.jsonl");
}
