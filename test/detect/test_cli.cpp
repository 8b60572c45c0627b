// dmdetect and dmeval end to end through the executables ($DMDETECT, $DMEVAL, set by meson): a
// raw dump with real x86-64 page tables (test/graph/layer_images.hpp), a model made here, output in
// the three formats, and the one-line errors of bad input.
#include "detect/detect.hpp"
#include "../graph/graph_fixtures.hpp"
#include "../graph/layer_images.hpp"
#include "fit_fixtures.hpp"
#include "../engine/random_graph.hpp"

#include <doctest/doctest.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <tuple>
#include <vector>
#include <unistd.h>

using namespace deepmem;
namespace fs = std::filesystem;

namespace {

struct Run { int status; std::string out, err; };

// `vars`: "NAME=value " assignments for the command's environment.
Run run(const char* env, const std::string& args, const fs::path& dir, const std::string& vars = "") {
    const char* exe = std::getenv(env);
    REQUIRE_MESSAGE(exe != nullptr, "set " << std::string(env) << " to the executable");
    const std::string err_file = (dir / "stderr.txt").string();
    const std::string cmd = vars + std::string(exe) + " " + args + " 2>" + err_file;
    Run r{};
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
    const int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::ifstream e(err_file);
    r.err.assign(std::istreambuf_iterator<char>(e), {});
    return r;
}

bool one_error_line(const std::string& err, const std::string& tool) {
    return err.rfind(tool + ": error: ", 0) == 0 && err.find('\n') == err.size() - 1;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// stderr without dmdetect's "note:" lines (e.g. the one saying a synthetic dump has no BTF).
std::string without_notes(const std::string& err) {
    std::string out;
    for (size_t p = 0; p < err.size();) {
        size_t e = err.find('\n', p);
        e = e == std::string::npos ? err.size() : e + 1;
        if (err.compare(p, 16, "dmdetect: note: ") != 0) out += err.substr(p, e - p);
        p = e;
    }
    return out;
}

}  // namespace

TEST_CASE("detect: dmdetect and dmeval on a raw dump with page tables; one-line errors") {
    const fs::path dir = fs::temp_directory_path() / ("dmdetect-cli-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    // A page of 24-byte segments between pointers at 0x300000 (direct map 0xffff800000300000).
    auto img = test_images::build_x64_4level();
    const uint64_t P0 = 0x300000, V = 0xffff800000300000ull;
    for (uint64_t off = 24; off < 4096; off += 32) img.put64(P0 + off, V + off - 24);
    write(dir / "dump.raw", std::string(img.bytes.begin(), img.bytes.end()));
    ModelConfig c;
    c.classes = 2;
    Model m = Model::create(c, 7);
    m.object_type = "cred";
    m.key_nodes = {{0, 24, 0.5f}};
    m.threshold = 0.25f;   // one key node: every object is its one vote (a model of two
                           // refuses a threshold one vote reaches, Model::validate)
    m.params.cls_b(int(c.classifier_hidden.size()))(0, 1) = 100.f;   // every node says key node 1 (offset 0)
    m.save((dir / "cred.cereal").string());
    const std::string dump = (dir / "dump.raw").string(), model = (dir / "cred.cereal").string();
    const std::string base = "-w " + model + " " + dump + " --dtb 0x1000 --format-dump raw";

    Run json = run("DMDETECT", base + " --format json --threads 1", dir);
    CHECK(json.status == 0);
    // A synthetic dump has no BTF: one note, addresses only.
    CHECK(json.err.rfind("dmdetect: note: objects not read, addresses only: no types: ", 0) == 0);
    CHECK(std::count(json.err.begin(), json.err.end(), '\n') == 2);   // and the memory it lacks
    CHECK(json.err.find("dmdetect: warning: the dump lacks ") != std::string::npos);
    // ... both in the output, records (newcomer 82, 84: only on stderr)
    CHECK(json.out.find("{\"record\":\"warning\",\"message\":\"the dump lacks ") != std::string::npos);
    CHECK(json.out.find("{\"record\":\"warning\",\"message\":\"objects not read, addresses only: no types: ") != std::string::npos);
    const auto found = parse_detections(bytes(json.out));
    REQUIRE(found.size() == 127);   // one per 24-byte segment (the first one runs on into the page before)
    CHECK(found.front() == Detection{"cred", V + 32, P0 + 32, 0.5f, 1});
    Run csv = run("DMDETECT", base + " --format csv -o " + (dir / "d.csv").string(), dir);
    CHECK(csv.status == 0);
    CHECK(csv.out == "");
    CHECK(parse_detections(bytes(slurp(dir / "d.csv"))) == found);
    {   // the memory it lacks, before the header (newcomer 84: a CSV of a cut dump said nothing of it)
        const std::string c = slurp(dir / "d.csv");
        CHECK(c.rfind("# kernel: ", 0) == 0);   // the kernel and fit lines first (newcomer 90)
        CHECK(c.find("\n# fit ") != std::string::npos);
        CHECK(c.find("\n# warning: the dump lacks ") != std::string::npos);
        CHECK(c.find("\ntype,vaddr,paddr,score,votes\n") != std::string::npos);
    }
    Run table = run("DMDETECT", base + " --threshold 1e9", dir);
    CHECK(table.status == 0);
    CHECK(table.out.find("# total: 0\n") != std::string::npos);
    {   // --time-limit (issue 15): a limit gone while the graph is built stops the build: one error line,
        // exit 4 (3 with --require-fit, 6 with --fail-on-hidden), the dump's "stopped" record in the output
        const std::string out = (dir / "stopped.jsonl").string();
        write(out, "what the user had\n");
        const Run stopped = run("DMDETECT", base + " --format json --time-limit 1e-9 -o " + out, dir);
        CHECK(stopped.status == 4);
        CHECK(stopped.out.empty());
        const std::string record = slurp(out);
        const std::string why = "the time limit of this dump, 1e-09 s (--time-limit), ran out while its memory graph was being "
                                "built (its build's share, 9e-10 s, stopped it ";
        CHECK(record.rfind("{\"dump\":\"" + dump + "\",\"record\":\"stopped\",\"message\":\"" + why, 0) == 0);
        CHECK(std::count(record.begin(), record.end(), '\n') == 1);
        CHECK(stopped.err.rfind("dmdetect: error: " + why, 0) == 0);
        CHECK(std::count(stopped.err.begin(), stopped.err.end(), '\n') == 1);
        CHECK(stopped.err.find(" after its start): no model was run; --time-limit 0 runs it to the end") != std::string::npos);
        const Run to_stdout = run("DMDETECT", base + " --format json --time-limit 1e-9", dir);
        CHECK(to_stdout.status == 4);
        CHECK(to_stdout.out.rfind(record.substr(0, record.find("stopped it ")), 0) == 0);   // (the seconds differ)
        CHECK(std::count(to_stdout.out.begin(), to_stdout.out.end(), '\n') == 1);
        CHECK(run("DMDETECT", base + " --time-limit 1e-9 --fail-on-hidden", dir).status == 6);
        CHECK(run("DMDETECT", base + " --time-limit 1e-9 --require-fit", dir).status == 3);
        const Run csv = run("DMDETECT", base + " --format csv --time-limit 1e-9", dir);
        CHECK(csv.out.rfind("# stopped: " + dump + ": the time limit of this dump, ", 0) == 0);
        // ... in a batch, each such dump's record, counted stopped, not failed: exit 4, not 1
        const Run two = run("DMDETECT", base + " " + dump + " --format json --time-limit 1e-9", dir);
        CHECK(two.status == 4);
        CHECK(two.out.find("\"record\":\"stopped\",\"message\":\"" + why) != std::string::npos);
        CHECK(two.out.find("{\"record\":\"batch\",\"dumps\":2,\"failed\":0,\"stopped\":2,\"hidden\":0,\"incomplete\":0}") !=
              std::string::npos);
    }
    {   // ... a limit gone before the networks start (a .dmg's load is not stopped) leaves the model not run, exit 4,
        // said per model and once with the limit, in the output too; 0 is none; anything else a usage error
        const std::string graph = (dir / "limit.dmg").string();
        REQUIRE(run("DMGRAPH", "build " + dump + " -o " + graph + " --dtb 0x1000 --format raw", dir).status == 0);
        const Run late = run("DMDETECT", "-w " + model + " " + graph + " --format json --time-limit 1e-9", dir);
        CHECK(late.status == 4);
        CHECK(parse_detections(bytes(late.out)).empty());
        CHECK(late.err.find("dmdetect: warning: model cred (" + model + ") not run: the deadline passed before its run (--time-limit)") !=
              std::string::npos);
        CHECK(late.out.find("{\"record\":\"warning\",\"message\":\"the time limit of this dump, 1e-09 s (--time-limit), ran out 9e-10 s "
                            "after its start (the networks' share), the memory graph built in ") != std::string::npos);
        CHECK(late.out.find(" s, 1 model not run; --time-limit 0 runs them to the end") != std::string::npos);
        const Run none = run("DMDETECT", base + " --format json --time-limit 0", dir);
        CHECK(none.status == 0);
        CHECK(parse_detections(bytes(none.out)) == found);
        for (const char* bad : {"-1", "x", "1s", "nan", "inf", "", "1e9"}) {
            CAPTURE(bad);
            const Run r = run("DMDETECT", base + " --time-limit '" + bad + "'", dir);
            CHECK(r.status == 2);
        }
    }

    // dmeval over the JSON output against labels: one live cred label at the first detection (or a
    // made-up address), one freed label
    write(dir / "d.jsonl", json.out);
    const uint64_t live = found.empty() ? V : found.front().vaddr;
    write(dir / "labels.jsonl", "{\"vaddr\":\"" + hex(live) + "\",\"type\":\"cred\",\"state\":\"live\"}\n"
                                "{\"vaddr\":\"0x10\",\"type\":\"cred\",\"state\":\"freed\"}\n");
    Run ev = run("DMEVAL", (dir / "d.jsonl").string() + " " + (dir / "labels.jsonl").string(), dir);
    CHECK(ev.status == 0);
    CHECK(ev.out.find("cred freed: found 0 of 1\n") != std::string::npos);
    Run evj = run("DMEVAL", (dir / "d.csv").string() + " " + (dir / "labels.jsonl").string() + " --format json --list", dir);
    CHECK(evj.status == 0);
    CHECK(evj.out.rfind("{\"type\":\"cred\",\"tp\":" + std::string(found.empty() ? "0" : "1"), 0) == 0);
    // A labeled type the run had no model of: JSON's fit records say which types ran, so it is not
    // scored as missed (a note says so); CSV cannot say, so it is.
    write(dir / "labels2.jsonl", slurp(dir / "labels.jsonl") + "{\"vaddr\":\"0x20\",\"type\":\"task_struct\",\"state\":\"live\"}\n");
    Run ev2 = run("DMEVAL", (dir / "d.jsonl").string() + " " + (dir / "labels2.jsonl").string(), dir);
    CHECK(ev2.status == 0);
    CHECK(ev2.out == ev.out);
    CHECK(ev2.err == "dmeval: note: the detections come from models of cred only; labels of task_struct not scored (--types to choose)\n");
    // labels.tsv holds live objects by virtual address only: said, naming the JSONL beside it (newcomer 71)
    write(dir / "labels.tsv", "0x10\tcred\t176\n");
    Run evt = run("DMEVAL", (dir / "d.jsonl").string() + " " + (dir / "labels.tsv").string(), dir);
    CHECK(evt.status == 0);
    CHECK(evt.err.find("dmeval: warning: labels.tsv gives no physical address and no freed object") != std::string::npos);
    CHECK(evt.err.find("beside it: " + (dir / "labels.jsonl").string() + "\n") != std::string::npos);
    CHECK(ev.err.find("labels.tsv") == std::string::npos);
    // A fit record naming another type does not drop the detections from the score (attacker 18).
    std::string odd = slurp(dir / "d.jsonl");
    REQUIRE(odd.find("\"record\":\"fit\",\"type\":\"cred\"") != std::string::npos);
    odd.replace(odd.find("\"record\":\"fit\",\"type\":\"cred\""), 28, "\"record\":\"fit\",\"type\":\"c\\u0072ed\"");
    write(dir / "odd.jsonl", odd);
    Run ev4 = run("DMEVAL", (dir / "odd.jsonl").string() + " " + (dir / "labels.jsonl").string(), dir);
    CHECK(ev4.status == 0);
    CHECK(ev4.out == ev.out);
    Run ev3 = run("DMEVAL", (dir / "d.csv").string() + " " + (dir / "labels2.jsonl").string(), dir);
    CHECK(ev3.out.find("\ntask_struct          0       0       1       n/a  0.0000  0.0000\n") != std::string::npos);
    Run ev3j = run("DMEVAL", (dir / "d.csv").string() + " " + (dir / "labels2.jsonl").string() + " --format json", dir);
    CHECK(ev3j.out.find("{\"type\":\"task_struct\",\"tp\":0,\"fp\":0,\"fn\":1,\"precision\":null,\"recall\":0.0000,") !=
          std::string::npos);
    // nothing found and nothing live to find (a freed task only): F1 is n/a too, not 1.0 (attacker 22)
    write(dir / "labels3.jsonl", slurp(dir / "labels.jsonl") + "{\"vaddr\":\"0x20\",\"type\":\"task_struct\",\"state\":\"freed\"}\n");
    Run ev5 = run("DMEVAL", (dir / "d.csv").string() + " " + (dir / "labels3.jsonl").string() + " --types task_struct", dir);
    CHECK(ev5.out.find("\ntask_struct          0       0       0       n/a     n/a     n/a\n") != std::string::npos);
    Run ev5j = run("DMEVAL", (dir / "d.csv").string() + " " + (dir / "labels3.jsonl").string() + " --types task_struct --format json", dir);
    CHECK(ev5j.out.find("\"precision\":null,\"recall\":null,\"f1\":null") != std::string::npos);
    // dmbaseline pslist's warnings in its output (a task list cut short) change nothing for dmeval
    const std::vector<std::string> cut{"init_task.tasks: loop at 0xffff800000300020 after 3 entries"};
    write(dir / "w.jsonl", format_warnings(cut, DetectionFormat::Json) + json.out);
    write(dir / "w.csv", format_warnings(cut, DetectionFormat::Csv) + slurp(dir / "d.csv"));
    for (const char* f : {"w.jsonl", "w.csv"}) {
        INFO(f);
        Run ew = run("DMEVAL", (dir / f).string() + " " + (dir / "labels.jsonl").string(), dir);
        CHECK(ew.status == 0);
        CHECK(ew.out == ev.out);
    }

    // ---- bad input: one line, exit 1 (2 for usage errors)
    Run e1 = run("DMDETECT", "-w " + model + " " + (dir / "missing.elf").string(), dir);
    CHECK(e1.status == 1);
    CHECK(one_error_line(e1.err, "dmdetect"));
    {   // a QEMU ELF core cut short: its program headers point past the end of the file (the last
        // 512 KiB are lost; the pointer page at 3 MiB stays, or there would be no graph to analyse)
        auto elf = test_images::to_elf(img.bytes, {{0, img.bytes.size()}}, {}, true);
        elf.resize(elf.size() - 0x80000);
        write(dir / "short.elf", std::string(elf.begin(), elf.end()));
    }
    // analysed with what is present and one warning naming what is missing; --strict refuses it
    Run e2 = run("DMDETECT", "-w " + model + " " + (dir / "short.elf").string() + " --strict", dir);
    CHECK(e2.status == 1);
    CHECK(one_error_line(e2.err, "dmdetect"));
    Run e2w = run("DMDETECT", "-w " + model + " " + (dir / "short.elf").string(), dir);
    INFO("truncated ELF without --strict: " << e2w.err);
    CHECK(e2w.status == 0);
    CHECK(e2w.err.rfind("dmdetect: warning: ", 0) == 0);
    {   // ... in the output too, the stderr line's text (reviewer 83: a layer's warnings on stderr only)
        const std::string first = e2w.err.substr(19, e2w.err.find('\n') - 19);
        CHECK(e2w.out.find("# warning: " + first + "\n") != std::string::npos);
        const Run csv = run("DMDETECT", "-w " + model + " " + (dir / "short.elf").string() + " --format csv", dir);
        CHECK(csv.out.find("\n# warning: " + first + "\n") < csv.out.find("\ntype,"));   // a CSV's before its header
        const Run json = run("DMDETECT", "-w " + model + " " + (dir / "short.elf").string() + " --format json", dir);
        CHECK(json.out.find("{\"record\":\"warning\",\"message\":\"truncated ELF core ") != std::string::npos);
        CHECK(parse_detections(bytes(csv.out)) == parse_detections(bytes(json.out)));
    }
    {
        std::string bad = slurp(model);
        bad[bad.size() / 2] ^= 0x40;
        write(dir / "bad.cereal", bad);
    }
    Run e3 = run("DMDETECT", "-w " + (dir / "bad.cereal").string() + " " + dump, dir);
    CHECK(e3.status == 1);
    CHECK(one_error_line(e3.err, "dmdetect"));
    Run e4 = run("DMDETECT", base + " --frobnicate", dir);
    CHECK(e4.status == 2);
    CHECK(one_error_line(e4.err, "dmdetect"));
    // --dump-file names where a .dmg's dump went: with a dump (no .dmg) it is a usage error.
    Run e4b = run("DMDETECT", base + " --dump-file " + dump, dir);
    CHECK(e4b.status == 2);
    CHECK(one_error_line(e4b.err, "dmdetect"));
    CHECK(e4b.err.find("--dump-file goes with one .dmg DUMP") != std::string::npos);
    fs::create_directories(dir / "no-models");
    Run e5 = run("DMDETECT", dump, dir, "DEEPMEM_MODELS=" + (dir / "no-models").string() + " ");   // no model
    CHECK(e5.status == 1);
    CHECK(one_error_line(e5.err, "dmdetect"));
    CHECK(e5.err.find("no models (*.cereal) in") != std::string::npos);
    Run e9 = run("DMDETECT", dump, dir, "DEEPMEM_MODELS=" + (dir / "missing").string() + " ");
    CHECK(e9.status == 1);
    CHECK(one_error_line(e9.err, "dmdetect"));
    {   // a .dmg built with other parameters than the model's
        test::Memory mem(1);
        mem.map(test::K64, 0, 4096);
        mem.word(64, test::K64);
        GraphParams p;
        p.max_segment = 2048;
        mem.build(p).save((dir / "other.dmg").string());
        std::string dmg = slurp(dir / "other.dmg");
        write(dir / "cut.dmg", dmg.substr(0, dmg.size() - 100));
        GraphParams no_long_gaps;
        no_long_gaps.long_gap_nodes = false;
        mem.build(no_long_gaps).save((dir / "no-long-gaps.dmg").string());
        mem.build().save((dir / "long-gaps.dmg").string());
    }
    {   // a graph without long gaps' nodes (an older .dmg) runs, and says what it cannot find
        const std::string note = "dmdetect: note: this .dmg has no long gaps' nodes";
        Run without = run("DMDETECT", "-w " + model + " " + (dir / "no-long-gaps.dmg").string(), dir);
        CHECK(without.status == 0);
        CHECK(without.err.find(note) != std::string::npos);
        Run with = run("DMDETECT", "-w " + model + " " + (dir / "long-gaps.dmg").string(), dir);
        CHECK(with.status == 0);
        CHECK(with.err.find(note) == std::string::npos);
    }
    Run e6 = run("DMDETECT", "-w " + model + " " + (dir / "other.dmg").string(), dir);
    CHECK(e6.status == 1);
    CHECK(one_error_line(e6.err, "dmdetect"));
    CHECK(e6.err.find("max_segment 2048 (graph) vs 4096 (model)") != std::string::npos);
    Run e7 = run("DMDETECT", "-w " + model + " " + (dir / "cut.dmg").string(), dir);
    CHECK(e7.status == 1);
    CHECK(one_error_line(e7.err, "dmdetect"));
    Run e8 = run("DMDETECT", base + " --format xml", dir);
    CHECK(e8.status == 2);   // a bad option value is a usage error, naming the option
    CHECK(one_error_line(e8.err, "dmdetect"));
    CHECK(e8.err.find("--format: unknown output format 'xml'") != std::string::npos);
    Run e8b = run("DMDETECT", "--weight " + model + " " + dump + " --dtb 0x1000 --format-dump raw", dir);   // no abbreviations
    CHECK(e8b.status == 2);
    CHECK(e8b.err.find("unrecognised option '--weight'") != std::string::npos);

    Run v1 = run("DMEVAL", (dir / "missing.jsonl").string() + " " + (dir / "labels.jsonl").string(), dir);
    CHECK(v1.status == 1);
    CHECK(one_error_line(v1.err, "dmeval"));
    write(dir / "bad.jsonl", json.out + "{\"type\":\"cred\",\"vaddr\":\"0xq\",\"score\":1,\"votes\":1}\n");
    Run v2 = run("DMEVAL", (dir / "bad.jsonl").string() + " " + (dir / "labels.jsonl").string(), dir);
    CHECK(v2.status == 1);
    CHECK(one_error_line(v2.err, "dmeval"));
    CHECK(v2.err.find("at file offset " + hex(json.out.size())) != std::string::npos);
    Run v3 = run("DMEVAL", (dir / "d.jsonl").string() + " " + (dir / "labels.jsonl").string() + " --bogus", dir);
    CHECK(v3.status == 2);
    CHECK(one_error_line(v3.err, "dmeval"));
    Run v4 = run("DMEVAL", (dir / "d.jsonl").string(), dir);
    CHECK(v4.status == 2);
    CHECK(one_error_line(v4.err, "dmeval"));
    if (!std::getenv("KEEP")) fs::remove_all(dir);
}

TEST_CASE("evidence: every CLI refuses to write over an input, reports lost output, rejects meaningless numbers") {
    const fs::path dir = fs::temp_directory_path() / ("dm-evidence-cli-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    auto img = test_images::build_x64_4level();
    const uint64_t P0 = 0x300000, V = 0xffff800000300000ull;
    for (uint64_t off = 24; off < 4096; off += 32) img.put64(P0 + off, V + off - 24);
    const std::string image(img.bytes.begin(), img.bytes.end());
    write(dir / "dump.raw", image);
    ModelConfig c;
    c.classes = 2;
    Model m = Model::create(c, 7);
    m.object_type = "cred";
    m.key_nodes = {{0, 24, 0.5f}};
    m.threshold = 0.25f;   // one vote of weight 0.5 reaches it
    m.save((dir / "cred.cereal").string());
    const std::string dump = (dir / "dump.raw").string(), model = (dir / "cred.cereal").string();
    const std::string link = (dir / "link.raw").string(), hard = (dir / "hard.raw").string();
    fs::create_symlink(dump, link);
    fs::create_hard_link(dump, hard);
    const std::string model_bytes = slurp(model);
    auto evidence_intact = [&] { return slurp(dump) == image && slurp(model) == model_bytes; };
    auto refused = [&](const Run& r, const char* tool) {
        return r.status == 1 && one_error_line(r.err, tool) && r.err.find("same file as the input") != std::string::npos;
    };
    const std::string base = "-w " + model + " " + dump + " --dtb 0x1000 --format-dump raw";

    // ---- output = input, directly, through a symlink, a hard link, or a redirected stdout
    for (const std::string& out : {dump, link, hard, model}) {
        INFO("dmdetect -o " << out);
        CHECK(refused(run("DMDETECT", base + " -o " + out, dir), "dmdetect"));
    }
    CHECK(refused(run("DMDETECT", base + " >> " + hard, dir), "dmdetect"));
    CHECK(refused(run("DMGRAPH", "build " + dump + " -o " + link + " --dtb 0x1000 --format raw", dir), "dmgraph"));
    CHECK(run("DMGRAPH", "build " + dump + " -o " + (dir / "g.dmg").string() + " --dtb 0x1000 --format raw", dir).status == 0);
    const std::string graph = (dir / "g.dmg").string(), graph_bytes = slurp(graph);
    CHECK(refused(run("DMGRAPH", "info " + graph + " >> " + graph, dir), "dmgraph"));
    CHECK(slurp(graph) == graph_bytes);
    write(dir / "kallsyms", "ffffffff81000000 T _stext\n");
    write(dir / "vmlinuz", "not a kernel");
    const std::string ks = (dir / "kallsyms").string(), vm = (dir / "vmlinuz").string();
    CHECK(refused(run("DMBASELINE", "psscan " + dump + " --kallsyms " + ks + " --vmlinuz " + vm + " -o " + hard, dir), "dmbaseline"));
    CHECK(refused(run("DMBASELINE", "pslist " + dump + " --kallsyms " + ks + " --vmlinuz " + vm + " -o " + ks, dir), "dmbaseline"));
    CHECK(refused(run("DMLABEL", "--kernel " + vm + " --kallsyms " + ks + " " + dump + " -o " + link, dir), "dmlabel"));
    CHECK(refused(run("DMLABEL", dump + " -o " + link, dir), "dmlabel"));   // types and symbols from the dump: both optional
    fs::create_hard_link(dump, dir / "labels.jsonl");   // the .jsonl written beside labels.tsv
    CHECK(refused(run("DMLABEL", "--kernel " + vm + " --kallsyms " + ks + " " + dump + " -o " + (dir / "labels.tsv").string(), dir), "dmlabel"));
    {
        auto elf = test_images::to_elf(img.bytes, {{0, img.bytes.size()}}, {}, true);
        write(dir / "dump.elf", std::string(elf.begin(), elf.end()));
        const std::string e = (dir / "dump.elf").string(), before = slurp(e);
        Run r = run("DM_DUMP_FORMATS", e + " --raw " + (dir / "x.raw").string() + " --lime " + e, dir);
        CHECK(r.status == 1);
        CHECK(r.err.find("same file as the input") != std::string::npos);
        CHECK(slurp(e) == before);
        CHECK(!fs::exists(dir / "x.raw"));   // refused before anything is written
        const mode_t old = ::umask(027);
        Run ok = run("DM_DUMP_FORMATS", e + " --raw " + (dir / "x.raw").string(), dir);
        ::umask(old);
        CHECK(ok.status == 0);
        CHECK((fs::status(dir / "x.raw").permissions() & fs::perms::all) ==
              (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
    }
    {   // dm-attack: OUT_DIR = DUMP_DIR (also through a symlink), or an output hard-linked to an input
        const fs::path in = dir / "ds";
        fs::create_directories(in);
        for (const char* f : {"dump.elf", "labels.jsonl", "kallsyms", "vmlinuz"}) write(in / f, std::string("original ") + f);
        fs::create_directory_symlink(in, dir / "ds-link");
        for (const fs::path& out : {in, dir / "ds-link"}) {
            Run r = run("DM_ATTACK", "noise --in " + in.string() + " --out " + out.string() + " --seed 1", dir);
            CHECK(r.status == 1);
            CHECK(r.err.find("it is the input directory") != std::string::npos);
        }
        fs::create_directories(dir / "out");
        fs::create_hard_link(in / "labels.jsonl", dir / "out" / "labels.jsonl");
        CHECK(refused(run("DM_ATTACK", "noise --in " + in.string() + " --out " + (dir / "out").string() + " --seed 1", dir), "dm-attack"));
        for (const char* f : {"dump.elf", "labels.jsonl", "kallsyms", "vmlinuz"}) CHECK(slurp(in / f) == std::string("original ") + f);
        CHECK(fs::is_regular_file(fs::symlink_status(in / "kallsyms")));
        Run neg = run("DM_ATTACK", "noise --in " + in.string() + " --out " + (dir / "o2").string() + " --seed 1 --count -3", dir);
        CHECK(neg.status == 2);
        CHECK(neg.err.find("'-3'") != std::string::npos);
        for (const char* inside : {"sub", "sub/deeper"}) {   // nor inside it (attacker 74)
            Run r = run("DM_ATTACK", "noise --in " + in.string() + " --out " + (in / inside).string() + " --seed 1", dir);
            CHECK(r.status == 1);
            CHECK(r.err.find("it lies inside the input directory") != std::string::npos);
            CHECK(!fs::exists(in / "sub"));
        }
        for (const char* bad : {"hid", "noise --mode bogus", "noise --fraction nan", "hide --from bogus"}) {   // usage errors
            CAPTURE(bad);
            Run r = run("DM_ATTACK", std::string(bad) + " --in " + in.string() + " --out " + (dir / "o9").string() + " --seed 1", dir);
            CHECK(r.status == 2);
            CHECK(one_error_line(r.err, "dm-attack"));
        }
        CHECK(run("DMBASELINE", "pscan " + dump, dir).status == 2);

        // A refused run leaves no OUT_DIR, and no temporary directory beside it (attacker 12: labels,
        // kallsyms and a vmlinux link to /dev/zero were left, without dump.elf).
        auto beside = [&](const std::string& name) {   // entries of `dir` named NAME or .NAME.tmp-…
            int n = 0;
            for (const auto& e : fs::directory_iterator(dir)) {
                const std::string f = e.path().filename().string();
                n += f == name || f.rfind("." + name + ".tmp-", 0) == 0;
            }
            return n;
        };
        const fs::path ds = dir / "ds-labels";   // labels that parse, a dump that does not
        fs::create_directories(ds);
        write(ds / "dump.elf", "not a dump");
        write(ds / "labels.jsonl", "{\"vaddr\":\"0xffff888000001000\",\"type\":\"task_struct\",\"state\":\"live\"}\n");
        Run notadump = run("DM_ATTACK", "noise --in " + ds.string() + " --out " + (dir / "o3").string() + " --seed 1", dir);
        CHECK(notadump.err.find("labels") == std::string::npos);   // refused for the dump, once o3's temporary existed
        CHECK(notadump.status == 1);   // refused after the output directory was started: it is removed
        CHECK(one_error_line(notadump.err, "dm-attack"));
        CHECK(beside("o3") == 0);
        for (const char* kind : {"/dev/zero", "fifo"}) {
            INFO("vmlinux: " << kind);
            const fs::path bad = dir / ("ds-" + std::string(kind[0] == '/' ? "zero" : "fifo"));
            fs::create_directories(bad);
            for (const char* f : {"dump.elf", "labels.jsonl", "kallsyms"}) fs::copy_file(in / f, bad / f);
            if (kind[0] == '/') fs::create_symlink(kind, bad / "vmlinux");
            else REQUIRE(::mkfifo((bad / "vmlinux").c_str(), 0600) == 0);
            Run r = run("DM_ATTACK", "dkom --in " + bad.string() + " --out " + (dir / "o4").string() + " --seed 1", dir);
            CHECK(r.status == 1);
            CHECK(one_error_line(r.err, "dm-attack"));
            CHECK(r.err.find("not a regular file") != std::string::npos);
            CHECK(beside("o4") == 0);
        }
        fs::create_directories(dir / "o5");
        write(dir / "o5" / "keep", "mine");
        Run full = run("DM_ATTACK", "noise --in " + ds.string() + " --out " + (dir / "o5").string() + " --seed 1", dir);
        CHECK(full.status == 1);
        CHECK(full.err.find("exists and is not empty") != std::string::npos);
        CHECK(slurp(dir / "o5" / "keep") == "mine");
        CHECK(std::distance(fs::directory_iterator(dir / "o5"), fs::directory_iterator()) == 1);
        CHECK(beside("o5") == 1);
        Run empty = run("DM_ATTACK", "noise --in " + ds.string() + " --out '' --seed 1", dir);   // attacker 13 #9
        CHECK(empty.status == 1);
        CHECK(one_error_line(empty.err, "dm-attack"));
        CHECK(empty.err.find("--out is empty") != std::string::npos);
    }
    CHECK(evidence_intact());

    // ---- output lost to a full disk is an error, not exit 0
    // (plain members, not structured bindings: clang < 16 cannot name a binding inside doctest's INFO lambda)
    for (const auto& call : std::vector<std::pair<std::string, std::string>>{
             {"DMDETECT", base},   // the table: never empty
             {"DMGRAPH", "nodes " + graph},
             {"DMGRAPH", "dot " + graph + " --around 0xffff800000300020"}}) {
        const std::string& tool = call.first;
        const std::string& args = call.second;
        Run r = run(tool.c_str(), args + " > /dev/full", dir);
        INFO(tool << " " << args);
        CHECK(r.status == 1);
        CHECK(r.err.find("cannot write standard output") != std::string::npos);
    }
    Run det = run("DMDETECT", base + " --format json", dir);
    REQUIRE(det.status == 0);
    write(dir / "d.jsonl", det.out);
    write(dir / "truth.jsonl", "{\"vaddr\":\"" + hex(V + 32) + "\",\"type\":\"cred\",\"state\":\"live\"}\n");
    Run full = run("DMEVAL", (dir / "d.jsonl").string() + " " + (dir / "truth.jsonl").string() + " > /dev/full", dir);
    CHECK(full.status == 1);
    CHECK(one_error_line(full.err, "dmeval"));
    CHECK(full.err.find("cannot write standard output: No space left on device") != std::string::npos);

    // ---- numbers that would silently mean something else
    write(dir / "empty.jsonl", "");
    Run empty = run("DMEVAL", (dir / "d.jsonl").string() + " " + (dir / "empty.jsonl").string(), dir);
    CHECK(empty.status == 1);
    CHECK(empty.err.find("hold no labels") != std::string::npos);
    for (const char* t : {"nan", "-1", "inf"}) {
        Run r = run("DMDETECT", base + " --threshold " + t, dir);
        INFO("--threshold " << t);
        CHECK(r.status != 0);
        CHECK(one_error_line(r.err, "dmdetect"));
        CHECK(r.out.empty());
    }
    for (const char* t : {"0", "100000", "-1", "99999999999999999999"}) {
        Run r = run("DMDETECT", base + " --threads " + t, dir);
        INFO("--threads " << t);
        CHECK(r.status != 0);
        CHECK(one_error_line(r.err, "dmdetect"));
        CHECK(r.err.find("threads") != std::string::npos);
    }
    Run hops = run("DMGRAPH", "dot " + graph + " --around 0xffff800000300020 --hops -1", dir);
    CHECK(hops.status != 0);
    CHECK(hops.err.find("'-1'") != std::string::npos);

    // ---- dmtrain: key ranges and the output, checked before any dataset is read
    write(dir / "t.ini", "[data]\nmanifest = " + (dir / "missing-manifest.json").string() +
                             "\ntype = cred\n[run]\noutput = " + (dir / "m.cereal").string() + "\n");
    const std::string ini = (dir / "t.ini").string();
    for (const auto& row : std::vector<std::tuple<std::string, std::string, int>>{
             {"--run.steps -5", "run.steps", 2},
             {"--run.steps 010", "run.steps", 2},   // octal 8 in C: refused, not read as 8 or 10
             {"--run.steps +5", "run.steps", 2},
             {"--run.checkpoint_every -1", "run.checkpoint_every", 2},
             {"--run.steps 2000000000", "run.steps", 1},
             {"--keys.count 99999999999999999999", "keys.count", 2},
             {"--run.threads 100000", "run.threads", 1}}) {
        const auto& [args_, key, status] = row;
        const std::string& args = args_;
        Run r = run("DMTRAIN", ini + " " + args, dir);
        INFO("dmtrain " << args << ": " << r.err);
        CHECK(r.status == status);
        CHECK(one_error_line(r.err, "dmtrain"));
        CHECK(r.err.find(key) != std::string::npos);
    }
    write(dir / "neg.ini", slurp(dir / "t.ini") + "steps = -5\n");
    Run octal = run("DMTRAIN", ini + " --run.steps 010", dir);   // the reason, not only "not a whole number"
    CHECK(octal.err.find("octal is not read") != std::string::npos);
    Run minus = run("DMTRAIN", ini + " --run.steps -5", dir);   // a count's hint, not an address's (attacker 74)
    CHECK(minus.err.find("(decimal digits, or hex after 0x; no sign)") != std::string::npos);
    CHECK(minus.err.find("0x1ad000") == std::string::npos);
    Run neg = run("DMTRAIN", (dir / "neg.ini").string(), dir);
    CHECK(neg.status == 2);
    CHECK(neg.err.find("run.steps") != std::string::npos);
    Run unwritable = run("DMTRAIN", ini + " --run.output " + (dir / "no-such-dir" / "m.cereal").string(), dir);
    CHECK(unwritable.status == 1);
    CHECK(unwritable.err.find("cannot create a temporary file beside") != std::string::npos);   // not the manifest
    CHECK(refused(run("DMTRAIN", ini + " --run.output " + ini, dir), "dmtrain"));
    if (!std::getenv("KEEP")) fs::remove_all(dir);
}

TEST_CASE("detect: dmdetect without --weights picks the shipped model of the dump's build; --require-fit") {
    const fs::path dir = fs::temp_directory_path() / ("dmdetect-fit-" + std::to_string(::getpid()));
    fs::create_directories(dir / "models");
    // 24 objects at 0x300000 (direct map 0xffff800000300000) and a 6.1 banner in the kernel image
    // (0xffffffff80000000 maps physical 0x200000; layer_images.hpp); the same with the layout moved.
    const std::string banner = "Linux version 6.1.0-47-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) "
                               "12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2025-11-05)\n";
    const uint64_t P0 = 0x300000, V = 0xffff800000300000ull;
    for (bool shifted : {false, true}) {
        auto img = test_images::build_x64_4level();
        test::put_objects([&](uint64_t p, uint64_t v) { img.put64(p, v); }, [&](uint64_t p, uint8_t v) { img.bytes[p] = v; },
                          P0, V, 24, shifted ? test::Layout::Moved : test::Layout::Trained);
        if (!shifted) write(dir / "nobanner.raw", std::string(img.bytes.begin(), img.bytes.end()));
        std::memcpy(&img.bytes[0x201000], banner.data(), banner.size());
        write(dir / (shifted ? "moved.raw" : "dump.raw"), std::string(img.bytes.begin(), img.bytes.end()));
    }
    Model old = test::marker_model("task_struct", 1e9f), fitting = test::marker_model("task_struct");
    old.provenance.kernel_builds = {{"5.10.0-46-amd64", ""}};
    fitting.provenance.kernel_builds = {{"6.1.0-47-amd64", ""}};
    old.save((dir / "models" / "a-5.10.cereal").string());
    fitting.save((dir / "models" / "b-6.1.cereal").string());
    const std::string env = "DEEPMEM_MODELS=" + (dir / "models").string() + " ";
    const std::string opts = " --dtb 0x1000 --format-dump raw --threads 1";
    const std::string dump = (dir / "dump.raw").string(), moved = (dir / "moved.raw").string();

    // The fixture maps 1 GiB of which the dump holds a few pages: one warning says what it lacks,
    // whatever the models found.
    const std::string lacks = "dmdetect: warning: the dump lacks 1020 MiB of memory the kernel maps (261121 pages: a cut "
                              "or partial capture?); objects beside it score lower: a lower --threshold may find more, "
                              "at a cost in precision\n";
    Run j = run("DMDETECT", dump + opts + " --format json", dir, env);
    CHECK(j.status == 0);
    CHECK(without_notes(j.err) == lacks);
    // Which model of the type was chosen, which set aside, and why (the tester's B5).
    CHECK(j.err.find("dmdetect: note: task_struct: chose " + (dir / "models" / "b-6.1.cereal").string() +
                     " (same-build, 1 build); set aside " + (dir / "models" / "a-5.10.cereal").string() +
                     " (other-version, 1 build): the chosen model's builds match the dump's kernel 6.1.0-47-amd64 "
                     "better\n") != std::string::npos);
    CHECK(parse_detections(bytes(j.out)).size() == 24);
    CHECK(j.out.rfind("{\"record\":\"kernel\",\"release\":\"6.1.0-47-amd64\",", 0) == 0);
    // -q: the same output, no note on the choice (newcomer 18); the warning stays
    Run q = run("DMDETECT", dump + opts + " --format json -q", dir, env);
    CHECK(q.out == j.out);
    CHECK(q.err.find("dmdetect: note: task_struct: chose") == std::string::npos);
    CHECK(without_notes(q.err) == lacks);
    CHECK(j.out.find("\"model\":\"" + (dir / "models" / "b-6.1.cereal").string() + "\",\"fits\":true,\"verdict\":\"yes\",\"build\":\"same-build\","
                     "\"agreement\":1.0000,\"objects\":24,\"agreeing\":24") != std::string::npos);
    CHECK(j.out.find(",\"found\":24}") != std::string::npos);   // the model's detections, in its fit record
    // A model with other graph parameters first in the folder, set aside for this dump: the graph
    // is built with the parameters most models share, the same output (helper 65: the first
    // model's built every dump's graph, and the picked model refused it).
    {
        Model stray = test::marker_model("task_struct");
        stray.graph.feature_bytes = 32;
        stray.provenance.kernel_builds = {{"5.10.0-46-amd64", ""}};
        stray.save((dir / "models" / "0-stray.cereal").string());
        Run s2 = run("DMDETECT", dump + opts + " --format json -q", dir, env);
        CHECK(s2.status == 0);
        CHECK(s2.out == j.out);
        fs::remove(dir / "models" / "0-stray.cereal");
    }
    // A model file that is a FIFO: one error line, no hang (helper 65).
    REQUIRE(::mkfifo((dir / "fifo.cereal").c_str(), 0600) == 0);
    Run ff = run("DMDETECT", "-w " + (dir / "fifo.cereal").string() + " " + dump + opts, dir, "timeout 60 ");
    CHECK(ff.status == 1);
    CHECK(ff.err.find("not a regular file (a FIFO)") != std::string::npos);
    Run t = run("DMDETECT", dump + opts + " --require-fit", dir, env);
    CHECK(t.status == 0);
    CHECK(t.out.rfind("# kernel: 6.1.0-47-amd64 (banner in the kernel image at 0xffffffff80001000)\n", 0) == 0);
    CHECK(t.out.find("# fit task_struct: yes, same-build, votes agree on 24 of 24 candidate objects (100.0%), validation 99.0%, threshold 3.50, 24 found\n") !=
          std::string::npos);
    CHECK(t.out.find("# task_struct: 24\n") != std::string::npos);

    // A model of another version: a warning, exit 3 only with --require-fit, output written anyway.
    const std::string a = (dir / "models" / "a-5.10.cereal").string();
    Run o = run("DMDETECT", "-w " + a + " " + dump + opts + " --require-fit -o " + (dir / "o.txt").string(), dir);
    CHECK(o.status == 3);
    CHECK(without_notes(o.err) == lacks + "dmdetect: warning: model task_struct (" + a + ") does not fit this dump: the dump's kernel "
                   "6.1.0-47-amd64 is another version than the model was trained on (5.10.0-46-amd64); no candidate object; "
                   "the threshold 1e+09 is above the highest score the model can give (4.03, all 4 key nodes voting)\n");
    CHECK(slurp(dir / "o.txt").find("# fit task_struct: NO, other-version") != std::string::npos);
    CHECK(run("DMDETECT", "-w " + a + " " + dump + opts, dir).status == 0);

    // The trained build's model on a dump whose layout moved: its votes split, it does not fit; at
    // a lower threshold it reports every object at a wrong base, and still says so.
    const std::string b = (dir / "models" / "b-6.1.cereal").string();
    Run m = run("DMDETECT", "-w " + b + " " + moved + opts + " --format json --threshold 1.5 --require-fit", dir);
    CHECK(m.status == 3);
    CHECK(parse_detections(bytes(m.out)).size() == 24);
    CHECK(m.out.find("\"fits\":false,\"verdict\":\"no\",\"build\":\"same-build\",\"agreement\":0.0000,\"objects\":24,\"agreeing\":0") !=
          std::string::npos);
    CHECK(m.err.find("key-node votes agree on 0 of 24 candidate objects (0.0%, 99.0% on its validation dumps)") !=
          std::string::npos);
    // Candidate objects there, none reported (attacker 12: --threshold 20.5 left one candidate object,
    // reported none, and said nothing): the warning counts them as what they are, and gives the
    // highest score seen (attacker 13: the user's threshold just above every score).
    Run split = run("DMDETECT", "-w " + b + " " + moved + opts + " --threshold 2.5", dir);
    CHECK(split.out.find("# total: 0\n") != std::string::npos);
    CHECK(split.err.find("the struct layout differs; 24 candidate objects had the threshold's worth of votes only split "
                         "between nearby bases; the highest score seen is 2.01, below the threshold 2.50 (bases the run "
                         "skipped may score more, still below it)\n") != std::string::npos);
    // Nothing found (tester 11: a model that finds no object said nothing): a warning, not a misfit;
    // a threshold no base can reach is named as the cause (attacker 13: --threshold 25 on the dev dump
    // blamed the layout or the dump).
    Run z = run("DMDETECT", "-w " + b + " " + dump + opts + " --threshold 1e6 --require-fit", dir);
    CHECK(z.status == 0);
    CHECK(without_notes(z.err) == lacks + "dmdetect: warning: model task_struct (" + b + ") found nothing in this dump: no candidate "
                   "object; the threshold 1e+06 is above the highest score the model can give (4.03, all 4 key nodes "
                   "voting); the dump lacks 1020 MiB of the memory the kernel maps: its objects may lie there\n");
    // A --threshold a lone key node's vote reaches (attacker 13: 1e-45 and 0 gave 127 false task_structs
    // on the dev dump, silently): allowed, with one warning line; above it, none.
    Run lone = run("DMDETECT", "-w " + b + " " + dump + opts + " --threshold 0.001 --format json", dir);
    CHECK(lone.status == 0);
    CHECK(without_notes(lone.err) == "dmdetect: warning: --threshold 0.001 is at or below one key node's vote for model "
                   "task_struct (" + b + ": weight 1): every base that key node voted for is reported\n" + lacks);
    CHECK(parse_detections(bytes(lone.out)).size() == 24);
    Run two = run("DMDETECT", "-w " + b + " " + dump + opts + " --threshold 1.5", dir);
    CHECK(two.status == 0);
    CHECK(without_notes(two.err) == lacks);
    CHECK(z.out.find("# fit task_struct: unknown, same-build, votes agree on no candidate object") != std::string::npos);
    // No banner and nothing found (attacker 14 #11: a cut 6.12 dump's banner lost, the 6.1 model found
    // nothing, --require-fit exited 0): the fit is unknown, not vouched for by the build: exit 3, and why.
    const std::string nobanner = (dir / "nobanner.raw").string();
    Run u = run("DMDETECT", "-w " + b + " " + nobanner + opts + " --threshold 1e6 --require-fit", dir);
    CHECK(u.status == 3);
    CHECK(u.err.find("dmdetect: warning: model task_struct (" + b + "): its fit to this dump cannot be checked (build "
                     "unknown, 0 candidate objects, 5 needed to measure the votes): --require-fit fails\n") != std::string::npos);
    CHECK(u.out.find("# fit task_struct: unknown, unknown, votes agree on no candidate object") != std::string::npos);
    CHECK(run("DMDETECT", "-w " + b + " " + nobanner + opts + " --threshold 1e6", dir).status == 0);
    // Without a banner, votes measured on 24 candidate objects check the fit.
    CHECK(run("DMDETECT", "-w " + b + " " + nobanner + opts + " --require-fit", dir).status == 0);
    if (!std::getenv("KEEP")) fs::remove_all(dir);
}

// What a model file holds, without a dump (newcomer 20: no command said a model's types,
// thresholds and key nodes): every model of the shipped folder, or the --weights ones, a joint
// model's types one entry each.
// Issue #15 item 1: a network whose row blocks would repeat the graph past the work limit
// (DetectOptions::work_limit) is not run, or its fit check's agreement rows are not, and dmdetect
// says so on stderr and in the fit record; --network-memory gives the memory to run it whole.
TEST_CASE("detect: dmdetect past the work limit — said, not silent; --network-memory runs the whole graph") {
    const fs::path dir = fs::temp_directory_path() / ("dmdetect-work-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const MemoryGraph g = test::random_memory(5, 96, 8).build();   // pointers anywhere: no locality
    g.save((dir / "g.dmg").string());
    const std::vector<uint32_t> common = test::common_lengths(g);
    Model m = test::keyed_model("task_struct", {{0, common[0], 0.6f}, {64, common[1], 0.9f}, {128, common[2], 0.7f}}, 1, g.params());
    m.threshold = 1.2f;
    m.save((dir / "ts.cereal").string());
    const std::string base = "-w " + (dir / "ts.cereal").string() + " " + (dir / "g.dmg").string() + " -q --format json";

    const Run whole = run("DMDETECT", base + " --network-memory 0", dir);
    REQUIRE(whole.status == 0);
    CHECK(whole.err.find("not run") == std::string::npos);
    const auto found = parse_detections(bytes(whole.out));
    REQUIRE(!found.empty());
    // blocks of a few rows past the limit: the whole graph runs at once instead, within 1 GiB and half
    // the available memory
    const Run whole_instead = run("DMDETECT", base + " --network-memory 16K", dir);
    CHECK(whole_instead.status == 0);
    CHECK(parse_detections(bytes(whole_instead.out)) == found);
    CHECK(whole_instead.err.find("dmdetect: warning: model task_struct (" + (dir / "ts.cereal").string() +
                                 "): its row blocks under the memory budget would evaluate about ") != std::string::npos);
    CHECK(whole_instead.err.find("; the whole graph ran at once instead, in ") != std::string::npos);
    CHECK(whole_instead.err.find("crafted") == std::string::npos);   // the budget was the user's
    // less memory than the whole run takes: the agreement rows past the limit, the voting rows within it
    const std::string small = "DEEPMEM_MEMORY_LIMIT=2M ";
    const Run some = run("DMDETECT", base + " --network-memory 16K", dir, small);
    CHECK(some.status == 0);
    CHECK(parse_detections(bytes(some.out)) == found);
    CHECK(some.err.find("its votes were measured on its voting rows only, the agreement rows not run: its row blocks under "
                        "the memory budget would evaluate about ") != std::string::npos);
    CHECK(some.out.find("the agreement rows not run") != std::string::npos);   // the fit record's reason
    CHECK(some.out.find("\"not_run\"") == std::string::npos);   // only for a model not run
    // every carrier votes (a threshold one key node reaches): not run at all, exit 4 (3 with --require-fit)
    const Run none = run("DMDETECT", base + " --network-memory 16K --threshold 0.5", dir, small);
    CHECK(none.status == 4);
    CHECK(parse_detections(bytes(none.out)).empty());
    CHECK(none.err.find("dmdetect: warning: model task_struct (" + (dir / "ts.cereal").string() +
                        ") not run: its row blocks under the memory budget ") != std::string::npos);
    CHECK(none.err.find("the whole graph runs at once (--network-memory)") != std::string::npos);
    CHECK(none.out.find("\"reason\":\"not run\"") != std::string::npos);
    CHECK(none.out.find("\"fits\":null") != std::string::npos);   // neither fits nor misfits
    CHECK(none.out.find("\"fits\":true") == std::string::npos);
    CHECK(none.out.find("\"not_run\":\"its row blocks under the memory budget ") != std::string::npos);
    CHECK(none.out.find("\"not_judged\":null") != std::string::npos);   // no votes to judge
    CHECK(none.out.find("{\"record\":\"warning\",\"message\":\"model task_struct (") != std::string::npos);
    CHECK(run("DMDETECT", base + " --network-memory 16K --threshold 0.5 --require-fit", dir, small).status == 3);
    for (const char* format : {"table", "csv"}) {   // said in the output whatever its format
        const Run f = run("DMDETECT", "-w " + (dir / "ts.cereal").string() + " " + (dir / "g.dmg").string() +
                                          " -q --network-memory 16K --threshold 0.5 --format " + format, dir, small);
        CHECK(f.status == 4);
        CHECK(f.out.find("# warning: model task_struct (") != std::string::npos);
        if (std::string(format) == "table") CHECK(f.out.find("# fit task_struct: NOT RUN, ") != std::string::npos);
    }
    const Run all = run("DMDETECT", base + " --network-memory 0 --threshold 0.5", dir, small);
    CHECK(all.status == 0);
    CHECK(parse_detections(bytes(all.out)).size() > found.size());
    CHECK(all.err.find("not run") == std::string::npos);
    const Run bad = run("DMDETECT", base + " --network-memory 12X", dir);
    CHECK(bad.status == 2);
    CHECK(bad.err.find("--network-memory '12X' has an unknown unit") != std::string::npos);
    // the network work bound (DetectOptions::network_work): no memory lifts it, its own option does
    const Run bound = run("DMDETECT", base + " --network-memory 0 --network-work 1", dir);
    CHECK(bound.status == 4);
    CHECK(parse_detections(bytes(bound.out)).empty());
    CHECK(bound.err.find("the network work bound of this dump, 1 per counted page (its ") != std::string::npos);
    CHECK(bound.err.find("(--network-work)") != std::string::npos);
    CHECK(bound.err.find("(--network-memory)") == std::string::npos);
    CHECK(bound.out.find("\"not_run\":\"it would evaluate ") != std::string::npos);
    const Run unbounded = run("DMDETECT", base + " --network-memory 0 --network-work 0", dir);
    CHECK(unbounded.status == 0);
    CHECK(parse_detections(bytes(unbounded.out)) == found);
    CHECK(unbounded.err.find(" needed ") == std::string::npos);   // within the default bound: nothing to say
    CHECK(run("DMDETECT", base + " --network-work -1", dir).status == 2);
    CHECK(run("DMDETECT", base + " --network-work 1.5", dir).status == 2);
    // Two models refused: one line names the value that runs both (newcomer 84 M2), and it does
    Model other = m;
    other.object_type = "cred";
    other.save((dir / "cred.cereal").string());
    const std::string both = "-w " + (dir / "ts.cereal").string() + " -w " + (dir / "cred.cereal").string() + " " +
                             (dir / "g.dmg").string() + " -q --format json --network-memory 0";
    const Run two = run("DMDETECT", both + " --network-work 1", dir);
    CHECK(two.status == 4);
    const std::string line = "2 models not run by the network work bound: --network-work ";
    const size_t at = two.err.find(line);
    REQUIRE(at != std::string::npos);
    CHECK(two.out.find(line) != std::string::npos);   // a warning record too
    const std::string lift = two.err.substr(at + line.size(), two.err.find(' ', at + line.size()) - at - line.size());
    CAPTURE(lift);
    const Run lifted = run("DMDETECT", both + " --network-work " + lift, dir);
    CHECK(lifted.status == 0);
    CHECK(lifted.err.find(") not run: ") == std::string::npos);   // (their fit checks' agreement rows may still be refused)
    CHECK(run("DMDETECT", base + " --network-memory 0 --network-work 1", dir).err.find(line.substr(2)) == std::string::npos);   // one model: its own line says it
    fs::remove_all(dir);
}

// A run the network work bound would refuse, forced by --network-work 0 or a higher bound, says that
// the dump needed more than real kernels' graphs, in the output too (newcomer 79: a forced run of a
// crafted dump read as a clean, empty report); refused by the default bound, only the refusal is said.
TEST_CASE("detect: dmdetect past the default network work bound by --network-work says the dump needed it") {
    const fs::path dir = fs::temp_directory_path() / ("dmdetect-heavy-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    // every other word a pointer to another page's word: 256 segments of 8 bytes a page
    test::Memory mem(24);
    mem.map(test::K64, 0, 24 * 4096);
    for (uint64_t p = 0; p < 24; ++p)
        for (uint64_t o = 0; o < 4096; o += 16) {
            mem.word(p * 4096 + o, test::K64 + ((p * 7 + 3) % 24) * 4096 + ((o * 5) % 4096 & ~uint64_t{15}));
            mem.word(p * 4096 + o + 8, 0x1111111111111111 * (1 + (o / 16) % 7));
        }
    const MemoryGraph g = mem.build();
    g.save((dir / "g.dmg").string());
    Model m = test::keyed_model("task_struct", {{8, 8, 0.6f}, {24, 8, 0.9f}, {40, 8, 0.7f}}, 1, g.params());
    m.threshold = 1.2f;
    m.save((dir / "ts.cereal").string());
    const double whole_per_page = double(m.config.iterations) * g.node_count() / double(counted_pages(g));
    REQUIRE(whole_per_page > DetectOptions::kNetworkWork);
    const std::string base = "-w " + (dir / "ts.cereal").string() + " " + (dir / "g.dmg").string() + " -q --format json";
    const Run bounded = run("DMDETECT", base, dir);
    CHECK(bounded.status == 4);
    CHECK(bounded.err.find("not run: it would evaluate ") != std::string::npos);
    CHECK(bounded.err.find(" needed ") == std::string::npos);
    for (const char* work : {"0", "100000"}) {
        const Run r = run("DMDETECT", base + " --network-work " + work, dir);
        CAPTURE(r.err);
        CHECK(r.status == 0);
        CHECK(r.err.find("dmdetect: warning: model task_struct (" + (dir / "ts.cereal").string() + ") needed ") != std::string::npos);
        CHECK(r.err.find(" node-iterations per counted page of this dump (" + std::to_string(counted_pages(g)) +
                         " pages; the bound is checked before the run against an estimate, which can be higher), past the default network work bound of 512, which --network-work " + work +
                         (std::string(work) == "0" ? " lifted" : " raised")) != std::string::npos);
        CHECK(r.out.find("{\"record\":\"warning\",\"message\":\"model task_struct (") != std::string::npos);
    }
    fs::remove_all(dir);
}

TEST_CASE("detect: dmdetect --list-models says each model's type, builds, thresholds and key nodes") {
    const fs::path dir = fs::temp_directory_path() / ("dmdetect-list-" + std::to_string(::getpid()));
    fs::create_directories(dir / "models");
    Model task = test::marker_model("task_struct", 3.25f);
    task.provenance.kernel_builds = {{"6.1.0-47-amd64", ""}, {"5.10.0-46-amd64", ""}};
    task.image_absent_threshold = 2.5f;
    task.vote_window = 64;
    task.base_alignment = 64;
    task.provenance.training_config += "\n[recalibrated]\nmanifest = /d/val.json\nmanifest_sha256 = 00\nwindows = 64\n";
    task.key_nodes[3].open_end = true;
    task.key_nodes[2].weight = 0.75f;
    task.save((dir / "models" / "task.cereal").string());
    Model joint = test::marker_model("task_struct+cred", 0);   // 4 key nodes: 3 of task_struct, 1 of cred
    joint.provenance.validation_objects = joint.provenance.validation_agreeing = 0;
    joint.parts = {{"task_struct", 3, 2.5f}, {"cred", 1, 0.5f, 0, 16, 7, 6, 32}};   // format 7 (a part's base alignment)
    joint.save((dir / "joint.cereal").string());
    const std::string env = "DEEPMEM_MODELS=" + (dir / "models").string() + " ";

    Run t = run("DMDETECT", "--list-models", dir, env);
    CHECK(t.status == 0);
    CHECK(t.err.empty());
    CHECK(t.out == "task_struct: " + (dir / "models" / "task.cereal").string() +
                       "\n  8-byte words (x86-64 paging); builds: 6.1.0-47-amd64, 5.10.0-46-amd64"
                       "\n  threshold 3.25, 2.5 on dumps without the kernel image; vote window 64 bytes; bases aligned to 64 bytes; validation vote "
                       "agreement 99 of 100; trained (no date); recalibrated on /d/val.json"
                       "\n  4 key nodes (offset/length[+ = open end]/weight): 8/120/1 136/120/1 264/120/0.75 392/120+/1"
                       "\n  dmdetect DUMP picks it for (among the builds the models record): 5.10.0-46-amd64, 6.1.0-47-amd64; dumps without a kernel banner\n");
    // Which model dmdetect DUMP picks for which build (newcomer 21: the listing did not say): a model
    // made for 6.1.0-47 alone takes that build (fewer builds, pick_models); a joint one is never
    // picked; the folders listed element-wise (6.1/ before 6.1-rt/, byte order had it after).
    Model one = test::marker_model("task_struct", 3.25f);
    one.provenance.kernel_builds = {{"6.1.0-47-amd64", ""}};
    fs::create_directories(dir / "models" / "6.1-rt");
    fs::create_directories(dir / "models" / "6.1");
    one.save((dir / "models" / "6.1" / "task.cereal").string());
    joint.save((dir / "models" / "6.1-rt" / "joint.cereal").string());
    Run picks = run("DMDETECT", "--list-models --format json", dir, env);
    CHECK(picks.status == 0);
    CHECK(picks.out.find("\"model\":\"" + (dir / "models" / "6.1" / "task.cereal").string() + "\"") <
          picks.out.find("\"model\":\"" + (dir / "models" / "6.1-rt" / "joint.cereal").string() + "\""));
    CHECK(picks.out.find("\"picked_for\":[\"6.1.0-47-amd64\"],\"picked_without_banner\":false}\n") != std::string::npos);
    CHECK(picks.out.find("\"picked_for\":[\"5.10.0-46-amd64\"],\"picked_without_banner\":true}\n") != std::string::npos);
    CHECK(picks.out.find("\"joint\":true,") != std::string::npos);
    CHECK(picks.out.find("\"picked_for\":[],\"picked_without_banner\":false}\n") != std::string::npos);
    Run pickt = run("DMDETECT", "--list-models", dir, env);
    CHECK(pickt.out.find("\n  dmdetect DUMP picks it for (among the builds the models record): no dump (a joint model is given with --weights)\n") != std::string::npos);
    // with --weights nothing is picked: no such line
    CHECK(run("DMDETECT", "--list-models -w " + (dir / "joint.cereal").string(), dir).out.find("picks it") == std::string::npos);
    const std::string j = (dir / "joint.cereal").string();
    Run js = run("DMDETECT", "--list-models --format json -w " + j, dir);
    CHECK(js.status == 0);
    CHECK(js.out == "{\"record\":\"model\",\"type\":\"task_struct\",\"model\":\"" + j + "\",\"joint\":true,\"word_size\":8,"
                    "\"builds\":[],\"threshold\":2.5,\"image_absent_threshold\":null,\"vote_window\":0,\"base_alignment\":0,\"anchored_key_nodes\":0,\"validation_objects\":0,"
                    "\"validation_agreeing\":0,\"key_nodes\":[\"8/120/1\",\"136/120/1\",\"264/120/1\"],\"trained\":\"\",\"recalibrated_on\":[]}\n"
                    "{\"record\":\"model\",\"type\":\"cred\",\"model\":\"" + j + "\",\"joint\":true,\"word_size\":8,"
                    "\"builds\":[],\"threshold\":0.5,\"image_absent_threshold\":null,\"vote_window\":16,\"base_alignment\":32,\"anchored_key_nodes\":0,\"validation_objects\":7,"
                    "\"validation_agreeing\":6,\"key_nodes\":[\"392/120/1\"],\"trained\":\"\",\"recalibrated_on\":[]}\n");
    // to a file, atomically; the listing never takes a dump or csv, nor writes over a model
    CHECK(run("DMDETECT", "--list-models -w " + j + " -o " + (dir / "l.txt").string(), dir).status == 0);
    CHECK(slurp(dir / "l.txt").rfind("task_struct: " + j + " (joint model of 2 types)\n", 0) == 0);
    for (const std::string& bad : std::vector<std::string>{"--list-models --format csv", "--list-models x.raw", "--list-models -w " + j + " -o " + j}) {
        Run b = run("DMDETECT", bad, dir, env);
        CHECK_MESSAGE(b.status != 0, bad);
        CHECK_MESSAGE(one_error_line(b.err, "dmdetect"), bad);
    }
    Run missing = run("DMDETECT", "--list-models -w " + (dir / "none.cereal").string(), dir);
    CHECK(missing.status == 1);
    CHECK(one_error_line(missing.err, "dmdetect"));
    fs::remove_all(dir);
}
