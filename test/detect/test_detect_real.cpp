// Suite 'real-dumps': detection on $DEEPMEM_DUMPS/dev (and, as detect_real_i386, on the 32-bit dump
// with data/models/i386). (1) The pruned path (voting rows at the
// threshold, InferenceNet over rows) gives exactly the whole-graph path's detections, for a model
// with key nodes taken from the dump's own task_struct labels; (2) when trained models exist in
// $DEEPMEM_MODELS (data/models/*.cereal), dmdetect runs them all on dump.elf and dmeval scores the
// output, and each model must reach its accuracy floor on this held-out dump; (3) a raw copy of the
// dev dump cut 16 MiB short gets dmdetect's warnings that it lacks memory the kernel maps; (4) one
// cut to 96 MiB is analysed and its task_structs below the cut found. Exits 77 (skipped) without the
// dump; parts (2) to (4) are skipped without models.
#include "detect/detect.hpp"
#include "graph/layers.hpp"
#include "../real_dump.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

using namespace deepmem;
namespace fs = std::filesystem;

TEST_CASE("detect: pruned detection equals the whole-graph path on a real dump; trained models via dmdetect") {
    const fs::path dev = test::real_dump_dir({"dump.elf", "labels.jsonl"});
    const auto truth = read_truth((dev / "labels.jsonl").string());

    // An untrained model whose key nodes are the 12 most common (offset, length) segments of live
    // task_structs, weighted by frequency, so that voting rows and bounds look like a real model's.
    Detector probe;
    MemoryGraph g = [&] {
        ModelConfig c;
        Model m = Model::create(c, 1);
        m.object_type = "probe";
        for (auto& k : m.key_nodes) k = KeyNode{0, 8, 1.f};   // a valid placeholder (Model::validate)
        m.threshold = 2.f;                                     // above one key node's vote (Model::validate)
        probe.add_model(m);
        return probe.build_graph((dev / "dump.elf").string());
    }();
    std::map<std::pair<uint32_t, uint32_t>, uint32_t> count;
    uint32_t objects = 0;
    for (const auto& t : truth) {
        if (t.type != "task_struct" || t.freed || !t.size) continue;
        ++objects;
        auto [a, b] = g.nodes_between(t.vaddr, t.vaddr + t.size);
        for (uint32_t n = a; n < b; ++n) ++count[{uint32_t(g.vaddr()[n] - t.vaddr), g.length()[n]}];
    }
    REQUIRE(objects > 0);
    std::vector<std::pair<uint32_t, std::pair<uint32_t, uint32_t>>> keys;
    for (const auto& [k, n] : count) keys.push_back({n, k});
    std::sort(keys.rbegin(), keys.rend());
    keys.resize(std::min<size_t>(keys.size(), 12));
    ModelConfig c;
    c.classes = uint32_t(keys.size() + 1);
    Model m = Model::create(c, 2);
    m.object_type = "task_struct";
    m.graph = g.params();
    m.key_nodes.clear();
    float total = 0;
    for (const auto& [n, k] : keys) {
        m.key_nodes.push_back({k.first, k.second, float(n) / float(objects)});
        total += m.key_nodes.back().weight;
    }
    m.threshold = 0.5f * total;   // above one key node's vote (Model::validate); the checks below set their own
    // the untrained classifier says "not a key node" almost everywhere: favour the key classes
    for (uint32_t k = 1; k < c.classes; ++k) m.params.cls_b(int(c.classifier_hidden.size()))(0, k) += 2.f;

    const GraphInput input = graph_input(g);
    InferenceNet net(m.config, m.params);
    Mat<float> full, some;
    net.run(input, full);
    const auto rows = voting_rows(g, m, 0.25f * total);
    net.run(input, rows, some);
    CHECK(net.embedding().rows() < Eigen::Index(g.node_count()));   // the pruned path, not the fallback
    float diff = 0;
    for (size_t i = 0; i < rows.size(); ++i) diff = std::max(diff, (some.row(Eigen::Index(i)) - full.row(rows[i])).cwiseAbs().maxCoeff());
    CHECK(diff < 1e-5f);
    const auto candidates = vote(g, m, full);
    Detector det;
    det.add_model(m);
    for (float t : {0.1f * total, 0.25f * total, 0.5f * total}) {
        DetectOptions o;
        o.threshold = t;
        const auto expected = select(g, m, candidates, t);
        INFO("threshold " << t << ", " << expected.size() << " detections, rows " << voting_rows(g, m, t).size());
        CHECK(det.detect(g, o) == expected);
    }

    // ---- trained models, when the lead has put them in data/models
    const char* models_env = std::getenv("DEEPMEM_MODELS");
    const char* dmdetect = std::getenv("DMDETECT");
    const char* dmeval = std::getenv("DMEVAL");
    std::string weights;
    if (models_env && fs::is_directory(models_env))
        for (const auto& e : fs::directory_iterator(models_env))
            if (e.path().extension() == ".cereal") weights += " -w " + e.path().string();
    if (weights.empty() || !dmdetect || !dmeval) {
        MESSAGE("no trained models in $DEEPMEM_MODELS: dmdetect part skipped");
        return;
    }
    const fs::path out = fs::temp_directory_path() / ("dmdetect-real-" + std::to_string(::getpid()) + ".jsonl");
    const std::string cmd = std::string(dmdetect) + weights + " " + (dev / "dump.elf").string() +
                            " --quiet --format json -o " + out.string();
    CHECK(std::system(cmd.c_str()) == 0);
    const auto found = read_detections(out.string());
    CHECK(std::is_sorted(found.begin(), found.end(),
                         [](const Detection& a, const Detection& b) { return std::tie(a.type, a.vaddr) < std::tie(b.type, b.vaddr); }));
    const std::string eval = std::string(dmeval) + " " + out.string() + " " + (dev / "labels.jsonl").string();
    CHECK(std::system(eval.c_str()) == 0);
    fs::remove(out);
    // The dev dump's workload seed is outside the dataset's, so this is held-out data: every shipped
    // model must find its objects with at most max(1, 2%) misses and spurious detections, except
    // cred (one segment per object, freed creds unlabeled: see data/models/README.md).
    std::vector<std::string> types;
    for (const auto& e : fs::directory_iterator(models_env))
        if (e.path().extension() == ".cereal") types.push_back(e.path().stem().string());
    const auto scores = evaluate(found, truth, types);
    for (const std::string& type : types) {
        REQUIRE(scores.count(type));
        const TypeScore& s = scores.at(type);
        INFO(type << ": TP " << s.tp << " FP " << s.fp << " FN " << s.fn);
        const double objects = double(s.tp + s.fn);
        if (type == "cred") {
            CHECK(s.recall() >= 0.9);
            CHECK(s.precision() >= 0.6);   // 0.77 on the dev dump, 0.83 on the test split
        } else {
            CHECK(double(s.fn) <= std::max(1.0, 0.02 * objects));
            CHECK(double(s.fp) <= std::max(1.0, 0.02 * objects));
        }
    }
}

namespace {

// The dump's physical memory below `cut`, as a sparse raw file at `raw`.
void write_cut_raw(const PhysicalLayer& phys, uint64_t cut, const fs::path& raw) {
    std::FILE* f = std::fopen(raw.c_str(), "wb");
    REQUIRE(f);
    for (const auto& r : phys.runs()) {
        if (r.paddr >= cut) continue;
        const uint64_t n = std::min(r.size, cut - r.paddr);
        REQUIRE(std::fseek(f, long(r.paddr), SEEK_SET) == 0);
        REQUIRE(std::fwrite(phys.bytes_of(r), 1, n, f) == n);
    }
    REQUIRE(std::fclose(f) == 0);
}

// The largest run (the guest's RAM; a ROM sits higher, below 4 GiB).
PhysicalRun ram_of(const PhysicalLayer& phys) {
    PhysicalRun ram{};
    for (const auto& r : phys.runs())
        if (r.size > ram.size) ram = r;
    return ram;
}

std::string slurp(const fs::path& file) {
    std::ifstream in(file);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The dev dump, the task_struct model in $DEEPMEM_MODELS and $DMDETECT; nullopt (said) otherwise.
struct DevTaskModel {
    fs::path dev, model;
    std::string dmdetect;
};
std::optional<DevTaskModel> dev_task_model() {
    const char* sub = std::getenv("DEEPMEM_REAL_DUMP");
    const char* models_env = std::getenv("DEEPMEM_MODELS");
    const char* dmdetect = std::getenv("DMDETECT");
    if ((sub && *sub) || !models_env || !dmdetect || !fs::exists(fs::path(models_env) / "task_struct.cereal")) {
        MESSAGE("the dev dump and its task_struct model only: skipped");
        return std::nullopt;
    }
    return DevTaskModel{test::real_dump_dir({"dump.elf"}), fs::path(models_env) / "task_struct.cereal", dmdetect};
}

// `dmdetect ARGS --quiet -o OUT 2> ERR`: its exit status (-1: killed), OUT's text ("" when not written) and stderr.
struct CliResult { int status; std::string out, err; };
CliResult run_dmdetect(const std::string& dmdetect, const std::string& args, const fs::path& out, const fs::path& err) {
    fs::remove(out);
    const std::string cmd = dmdetect + " " + args + " --quiet -o " + out.string() + " 2> " + err.string();
    const int status = std::system(cmd.c_str());
    return CliResult{WIFEXITED(status) ? WEXITSTATUS(status) : -1, fs::exists(out) ? slurp(out) : "", slurp(err)};
}

}  // namespace

TEST_CASE("detect: a raw copy cut 16 MiB short says the dump lacks memory the kernel maps (tester 11), and its tasks are found") {
    const auto setup = dev_task_model();
    if (!setup) return;
    const auto& [dev, model, dmdetect] = *setup;
    // The physical memory below (top of RAM − 16 MiB), as a sparse raw file: the top of RAM holds the
    // per-CPU areas and the tables of the vmalloc area and vmemmap.
    auto phys = PhysicalLayer::open((dev / "dump.elf").string());
    const PhysicalRun ram = ram_of(*phys);
    const uint64_t cut = ram.paddr + ram.size - (uint64_t{16} << 20);
    const fs::path dir = fs::temp_directory_path() / ("dmdetect-cut-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path raw = dir / "cut.raw", err = dir / "err.txt";
    write_cut_raw(*phys, cut, raw);
    const std::string cmd = dmdetect + " -w " + model.string() + " " +
                            raw.string() + " --format json -o " + (dir / "out.jsonl").string() + " 2> " + err.string();
    CHECK(std::system(cmd.c_str()) == 0);
    const std::string said = slurp(err);
    MESSAGE(said);
    CHECK(said.find("(a cut dump?)") != std::string::npos);   // the translation's warning
    // One warning names the memory the dump lacks; the shipped model (trained with absent pages,
    // issue 11) still finds the tasks and is not called a misfit for the key nodes the cut silenced.
    CHECK(said.find("of memory the kernel maps") != std::string::npos);
    CHECK(said.find("a cut or partial capture?") != std::string::npos);
    CHECK(said.find("does not fit") == std::string::npos);
    CHECK(said.find("found nothing") == std::string::npos);
    // Live task_structs wholly below the cut (read_truth's physical addresses), as the 96 MiB case counts.
    std::set<uint64_t> labelled, live_below;
    for (const TruthObject& t : read_truth((dev / "labels.jsonl").string())) {
        if (t.type != "task_struct") continue;
        labelled.insert(t.vaddr);
        if (!t.freed && t.paddr && *t.paddr + 8192 <= cut) live_below.insert(t.vaddr);
    }
    size_t found = 0, spurious = 0;   // of the live task_structs below the cut; not a task_struct at all
    for (const Detection& d : read_detections((dir / "out.jsonl").string())) {
        if (d.type != "task_struct") continue;
        found += live_below.count(d.vaddr);
        spurious += !labelled.count(d.vaddr);
    }
    const size_t below = live_below.size();
    CAPTURE(below);
    CAPTURE(found);
    CAPTURE(spurious);
    CHECK(below > 400);
    // The cut takes the page tables of the vmalloc area (stacks) and the per-CPU areas: a task_struct's
    // 20 key-node votes on the whole dev dump drop to 16 (13 to 16 over six dev dumps) against the
    // threshold's 13.62, so a few percent fall under it: 447 to 450 of 451 on five dev dumps, 427 on
    // the sixth (CI, stop 28). The warning above says a lower --threshold finds more.
    CHECK(double(found) >= 0.9 * double(below));
    CHECK(spurious == 0);
    fs::remove_all(dir);
}

// A .dmg outlives where its dump was (evidence copied to another machine, renamed): the fields are
// then not read, and a note says so and names --dump-file; --dump-file gives the dump's new place
// (newcomer 17) or the same memory in another format; a file whose bytes differ is an error.
TEST_CASE("detect: a .dmg whose dump moved reads its objects from --dump-file") {
    const auto setup = dev_task_model();
    if (!setup) return;
    const auto& [dev, model, dmdetect] = *setup;
    const fs::path dir = fs::temp_directory_path() / ("dmdetect-moved-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path link = dir / "moved.elf", dmg = dir / "g.dmg", out = dir / "out.jsonl", err = dir / "err.txt";
    fs::create_symlink(dev / "dump.elf", link);
    Detector d;
    d.add_model(model.string());
    d.build_graph(link.string()).save(dmg.string());
    fs::remove(link);
    auto run = [&](const std::string& extra, const std::string& format = " --format json") {
        return run_dmdetect(dmdetect, "-w " + model.string() + " " + dmg.string() + format + extra, out, err);
    };
    const CliResult gone = run("");
    CHECK(gone.status == 0);
    CHECK(gone.err.find("is not there or changed size (--dump-file names where it is now); addresses only") != std::string::npos);
    CHECK(gone.out.find("\"pid\":") == std::string::npos);
    // The tree is made of the fields: without them it is an error, not an empty tree.
    const CliResult tree = run(" --tree", "");
    CHECK(tree.status == 1);
    CHECK(tree.err.find("--tree needs the tasks' fields, which were not read") != std::string::npos);
    const CliResult read = run(" --dump-file " + (dev / "dump.elf").string());
    CHECK(read.status == 0);
    CHECK(read.err.find("objects not read") == std::string::npos);
    CHECK(read.out.find("\"pid\":1,") != std::string::npos);
    // The same memory in another format is the same dump; another file is not, whatever its size,
    // and naming it is an error (nothing written).
    const CliResult raw = run(" --dump-file " + (dev / "dump.raw").string());
    CHECK(raw.status == 0);
    CHECK(raw.out == read.out);
    const fs::path other = dir / "other.elf";   // the dump with one byte of one sampled segment changed
    fs::copy_file(dev / "dump.elf", other);
    const SegmentSample sample = sample_segments(MemoryGraph::load(dmg.string()));
    REQUIRE(sample.segments.size() == 64);
    {
        const auto phys = PhysicalLayer::open(other.string());
        const uint8_t* at = phys->find(sample.segments[10].first, 1);
        REQUIRE(at);
        std::fstream f(other, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(std::streamoff(at - phys->file_bytes().data()));
        f.put(char(sample.segments[10].second[0] ^ 0xff));
    }
    const CliResult wrong = run(" --dump-file " + other.string());
    CHECK(wrong.status == 1);
    CHECK(wrong.err.find("is not the dump " + dmg.string() + " was built from (1 of 64 sampled segments differ)") != std::string::npos);
    CHECK_FALSE(fs::exists(out));
    const CliResult missing = run(" --dump-file " + (dir / "absent.elf").string());
    CHECK(missing.status == 1);
    fs::remove_all(dir);
}

// --time-limit on a real dump (issue 15): a limit gone while the graph is built stops the build (one
// error line, exit 4, the dump's "stopped" record); on a .dmg, whose load is not stopped, it stops the
// network, and the output says so.
TEST_CASE("detect: --time-limit stops a real dump's graph build, and a .dmg's network") {
    const auto setup = dev_task_model();
    if (!setup) return;
    const auto& [dev, model, dmdetect] = *setup;
    const fs::path dir = fs::temp_directory_path() / ("dmdetect-limit-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path dmg = dir / "g.dmg", out = dir / "out.jsonl", err = dir / "err.txt";
    auto run = [&](const fs::path& input, const std::string& limit) {
        return run_dmdetect(dmdetect, "-w " + model.string() + " " + input.string() + " --format json --time-limit " + limit, out, err);
    };
    // The build of the 256 MiB dump's graph takes seconds: 0.05 s runs out in it (or in opening it).
    const CliResult built = run(dev / "dump.elf", "0.05");
    CHECK(built.status == 4);
    CHECK(built.out.rfind("{\"dump\":\"" + (dev / "dump.elf").string() + "\",\"record\":\"stopped\",\"message\":\"the time limit of "
                          "this dump, 0.05 s (--time-limit), ran out while its memory graph was being built ", 0) == 0);
    CHECK(built.err.rfind("dmdetect: error: the time limit of this dump, 0.05 s (--time-limit), ran out while its memory graph was "
                          "being built (its build's share, 0.045 s, stopped it ", 0) == 0);
    // Without the clock: the build's own calls to its interrupt (BuildOptions::interrupt), counted, then
    // thrown at the middle one, which lies in the build's passes (most calls are per chunk of them).
    Detector d;
    d.add_model(model.string());
    std::atomic<uint64_t> calls{0};
    BuildOptions counting;
    counting.interrupt = [&] { ++calls; };
    d.build_graph((dev / "dump.elf").string(), counting).save(dmg.string());
    const uint64_t total = calls.load();
    CAPTURE(total);
    CHECK(total > 1000);   // 65 k kernel pages: 5 passes of 64-page chunks
    struct Stopped : std::runtime_error { using std::runtime_error::runtime_error; };
    BuildOptions halfway;
    std::atomic<uint64_t> n{0};
    halfway.interrupt = [&] { if (++n == total / 2) throw Stopped("halfway"); };
    CHECK_THROWS_AS(d.build_graph((dev / "dump.elf").string(), halfway), Stopped);
    // Its network on the dev graph takes a second or more: 0.1 s runs out before it ends (or starts).
    const CliResult late = run(dmg, "0.1");
    CHECK(late.status == 4);
    CHECK(late.out.find("{\"record\":\"warning\",\"message\":\"the time limit of this dump, 0.1 s (--time-limit), ran out 0.09 s after "
                        "its start (the networks' share), the memory graph built in ") != std::string::npos);
    CHECK(late.out.find("1 model not run; --time-limit 0 runs them to the end") != std::string::npos);
    const bool said = late.err.find(") not run: the deadline passed before its run (--time-limit)") != std::string::npos ||
                      late.err.find(") not run: its run stopped at the deadline (--time-limit)") != std::string::npos;
    CHECK(said);
    fs::remove_all(dir);
}

// Issue 11: a raw copy cut to its first 96 MiB. The kernel allocates its early page tables at the top
// of RAM and its image lies at a random physical address (KASLR): the cut may keep the image and
// some tables, or keep neither (then the search's cut rule gives the root and the dump's pointers the
// direct map, root_search.cpp step 5). Either way the dump is analysed, not refused, and the task_structs
// below the cut are found: at the model's threshold while the image is there; without it their
// edges into the image are lost, and the model's threshold for dumps without the image applies
// (Model::image_absent_threshold, chosen on validation dumps cut at 160–64 MiB: dmtrain
// --recalibrate --image-absent; data/models/README.md).
TEST_CASE("detect: a raw copy cut to 96 MiB is analysed, and the task_structs below the cut are found") {
    const auto setup = dev_task_model();
    if (!setup) return;
    const auto& [dev, model, dmdetect] = *setup;
    auto phys = PhysicalLayer::open((dev / "dump.elf").string());
    const uint64_t cut = ram_of(*phys).paddr + (uint64_t{96} << 20);
    const fs::path dir = fs::temp_directory_path() / ("dmdetect-cut96-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path raw = dir / "cut.raw", err = dir / "err.txt", out = dir / "out.jsonl";
    write_cut_raw(*phys, cut, raw);
    const std::string base = dmdetect + " -w " + model.string() + " " +
                             raw.string() + " --addresses-only --format json -o " + out.string() + " 2> " + err.string();
    REQUIRE(std::system(base.c_str()) == 0);
    std::string said = slurp(err);
    MESSAGE(said);
    const bool image_lost = said.find("no page-table root maps a kernel in this dump") != std::string::npos;
    if (image_lost) {
        CHECK(said.find("its direct map is read linearly at") != std::string::npos);
        CHECK(said.find("the dump lacks the kernel image: model task_struct detects at") != std::string::npos);
    }
    // Live task_structs wholly below the cut, by their labels' physical addresses (read_truth, as dmeval).
    std::set<uint64_t> labelled, live_below;   // every task_struct's vaddr; the live ones below the cut
    for (const TruthObject& t : read_truth((dev / "labels.jsonl").string())) {
        if (t.type != "task_struct") continue;
        labelled.insert(t.vaddr);
        if (!t.freed && t.paddr && *t.paddr + 8192 <= cut) live_below.insert(t.vaddr);
    }
    const size_t below = live_below.size();
    size_t found = 0, spurious = 0;   // of the live task_structs below the cut; not a task_struct at all
    for (const Detection& d : read_detections(out.string())) {
        if (d.type != "task_struct") continue;
        found += live_below.count(d.vaddr);
        spurious += !labelled.count(d.vaddr);
    }
    MESSAGE("cut at " << cut << ": image lost " << image_lost << ", " << below << " live task_structs below the cut, "
                      << found << " of them found, " << spurious << " found that are no task_struct");
    CAPTURE(image_lost);
    CAPTURE(below);
    CAPTURE(found);
    CAPTURE(spurious);
    CHECK(below > 50);
    CHECK(double(found) >= 0.95 * double(below));
    CHECK(spurious == 0);
    fs::remove_all(dir);
}

TEST_CASE("detect: a placement and a scaled threshold are one dump's; the next dump of a batch gets the model as trained (reviewer 85)") {
    const auto setup = dev_task_model();
    if (!setup) return;
    const auto& [dev, model, dmdetect] = *setup;
    std::vector<fs::path> others = test::real_dump_dirs({"dump.elf"});
    others.erase(others.begin());   // the dev dump is first; the others are other versions (builds/READY)
    if (others.empty()) {
        MESSAGE("no dump of another build: skipped");
        return;
    }
    const fs::path dir = fs::temp_directory_path() / ("dmdetect-batch-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path out = dir / "out.jsonl";
    auto run = [&](const std::string& dumps, const std::string& options = "") {
        const std::string cmd = dmdetect + " -w " + model.string() + " " + dumps + options + " --addresses-only --quiet --format json -o " +
                                out.string() + " 2> " + (dir / "err.txt").string();
        CHECK(std::system(cmd.c_str()) == 0);
        return slurp(out);
    };
    // per dump: its detections, its fit record's threshold, and whether a warning said a threshold was scaled
    // (and its objects marked below_trained_threshold: true, and false)
    struct Seen { uint64_t objects = 0; std::string threshold; bool scaled = false; uint64_t below = 0, above = 0; };
    auto per_dump = [](const std::string& text) {
        std::map<std::string, Seen> seen;
        std::istringstream lines(text);
        for (std::string line; std::getline(lines, line);) {
            const size_t d = line.find("\"dump\":\"");
            const std::string dump = d == std::string::npos ? "" : line.substr(d + 8, line.find('"', d + 8) - d - 8);
            Seen& s = seen[dump];
            if (line.find("\"record\":\"fit\"") != std::string::npos) {
                const size_t t = line.find("\"threshold\":");
                s.threshold = line.substr(t + 12, line.find_first_of(",}", t) - t - 12);
            } else if (line.find("\"record\":\"warning\"") != std::string::npos) {
                s.scaled = s.scaled || line.find("scaled to") != std::string::npos;
            } else if (line.find("\"record\"") == std::string::npos) {
                ++s.objects;
                s.below += line.find("\"below_trained_threshold\":true") != std::string::npos;
                s.above += line.find("\"below_trained_threshold\":false") != std::string::npos;
            }
        }
        return seen;
    };
    const std::string own = (dev / "dump.elf").string();
    const Seen alone = per_dump(run(own))[""];
    std::string dumps;
    for (const fs::path& o : others) dumps += (o / "dump.elf").string() + " ";
    const auto batch = per_dump(run(dumps + own));
    for (const fs::path& o : others) {
        CAPTURE(o.string());
        const Seen& s = batch.at((o / "dump.elf").string());
        CHECK(s.scaled);
        CHECK(s.threshold != alone.threshold);
    }
    const Seen& last = batch.at(own);
    CHECK_FALSE(last.scaled);
    CHECK(last.threshold == alone.threshold);
    CHECK(last.objects == alone.objects);
    CHECK(last.below + last.above == 0);   // its model was not scaled: no mark
    // Every object of a scaled model says whether it needed the scaled threshold (reviewer 85 MED 3);
    // --no-placed-threshold (MED 6) and --threshold keep the trained or given one: no scaling, no mark
    // (LOW 9; -q above: the warning is in the output all the same).
    const auto kept = per_dump(run(dumps, " --no-placed-threshold"));
    const auto given = per_dump(run(dumps, " --threshold " + alone.threshold));
    for (const fs::path& o : others) {
        const std::string d = (o / "dump.elf").string();
        CAPTURE(d);
        const Seen &s = batch.at(d), &k = kept.at(d), &g = given.at(d);
        CHECK(s.below + s.above == s.objects);
        MESSAGE("scaled: " << s.objects << " objects (" << s.below << " below the trained threshold); trained: " << k.objects
                           << "; --threshold: " << g.objects);
        for (const Seen* x : {&k, &g}) {
            CHECK_FALSE(x->scaled);
            CHECK(x->below + x->above == 0);
            CHECK(x->threshold == alone.threshold);
            CHECK(x->objects <= s.objects);
        }
        CHECK(s.above == k.objects);   // those not marked: what the trained threshold finds (5.10: 137, 6.12: 248)
    }
    // The objects of a placed model whose fields read clean keep their hidden verdict (newcomer 87 MED 7:
    // every task of the 5.10 dump "not judged"): the cross-view reads the dump's own lists, whatever
    // the model; none of these untouched systems' tasks is hidden.
    for (const fs::path& o : others) {
        CAPTURE(o.string());
        const std::string cmd = dmdetect + " -w " + model.string() + " " + (o / "dump.elf").string() + " --quiet --format json -o " +
                                out.string() + " 2> " + (dir / "err.txt").string();
        CHECK(std::system(cmd.c_str()) == 0);
        std::istringstream lines(slurp(out));
        uint64_t objects = 0, judged = 0, hidden = 0;
        for (std::string line; std::getline(lines, line);) {
            if (line.find("\"record\"") != std::string::npos) continue;
            ++objects;
            judged += line.find("\"hidden\":false") != std::string::npos;
            hidden += line.find("\"hidden\":true") != std::string::npos;
        }
        MESSAGE("placed model: " << judged << " of " << objects << " objects judged, " << hidden << " hidden");
        CHECK(objects > 100);
        CHECK(judged >= objects * 9 / 10);
        CHECK(hidden == 0);
    }
    fs::remove_all(dir);
}

// A LiME file of `phys` without its bytes in [lo, hi) and from `top` up (LiME v1, graph/lime.cpp: per
// range a 32-byte header — magic 0x4C694D45, version 1, first and inclusive last address — then its bytes).
void write_lime_without(const PhysicalLayer& phys, uint64_t lo, uint64_t hi, uint64_t top, const fs::path& out) {
    std::ofstream o(out, std::ios::binary | std::ios::trunc);
    auto range = [&](const uint8_t* bytes, uint64_t start, uint64_t n) {
        if (n == 0) return;
        char h[32] = {};
        auto put = [&](size_t at, uint64_t v, int width) {
            for (int i = 0; i < width; ++i) h[at + size_t(i)] = char(uint8_t(v >> (8 * i)));
        };
        put(0, 0x4C694D45, 4), put(4, 1, 4), put(8, start, 8), put(16, start + n - 1, 8);
        o.write(h, sizeof h);
        o.write(reinterpret_cast<const char*>(bytes), std::streamsize(n));
    };
    for (const auto& r : phys.runs()) {
        if (r.paddr >= top) continue;
        const uint8_t* b = phys.bytes_of(r);
        const uint64_t end = std::min(r.paddr + r.size, top), a = std::clamp(lo, r.paddr, end), z = std::clamp(hi, r.paddr, end);
        range(b, r.paddr, a - r.paddr);
        range(b + (z - r.paddr), z, end - z);
    }
    o.close();
    REQUIRE(o.good());
}

// A capture lacking the pages of one multi-threaded process's task_struct (and the top 16 MiB of RAM,
// as the cut test above: a dump that lacks memory): the walk of init_task.tasks breaks there both ways
// and that process's thread group is never walked, so its threads (intact, detected) are on no list
// the walks read — and were called hidden, as on a 5.10 dump cut at 400 MiB (59 tasks and 200 files
// "HIDDEN" on an untouched system). Now their "hidden" is null, saying why, a warning names the lists
// not read whole, and the dump's verdict says none hidden and incomplete. (A dump that lacks no memory
// keeps the verdicts: test_interpret.)
TEST_CASE("detect: tasks missing from a list whose walk broke at memory the dump lacks are not called hidden") {
    const auto setup = dev_task_model();
    if (!setup) return;
    const auto& [dev, model, dmdetect] = *setup;
    // the leader with most threads (labels: "found_by":"thread group of PID N"), and its task_struct
    std::map<int64_t, int> threads_of;
    std::map<int64_t, std::pair<uint64_t, uint64_t>> leader_at;   // pid → (paddr, size) of init_task.tasks' labels
    {
        std::ifstream in(dev / "labels.jsonl");
        auto value = [](const std::string& line, const std::string& key) {
            const size_t at = line.find("\"" + key + "\":");
            if (at == std::string::npos) return std::string();
            size_t v = at + key.size() + 3;
            if (line[v] == '"') ++v;
            return line.substr(v, line.find_first_of("\",}", v) - v);
        };
        for (std::string line; std::getline(in, line);) {
            if (value(line, "type") != "task_struct" || value(line, "state") != "live") continue;
            const std::string by = value(line, "found_by");
            if (by.starts_with("thread group of PID ")) ++threads_of[std::stoll(by.substr(20))];
            else if (by == "init_task.tasks")
                leader_at[std::stoll(value(line, "pid"))] = {std::stoull(value(line, "paddr"), nullptr, 16),
                                                            std::stoull(value(line, "size"))};
        }
    }
    int64_t leader = -1;
    for (const auto& [pid, n] : threads_of)
        if (leader_at.count(pid) && (leader < 0 || n > threads_of[leader])) leader = pid;
    REQUIRE(leader > 0);
    const auto [paddr, size] = leader_at[leader];
    const uint64_t lo = paddr & ~uint64_t{4095}, hi = (paddr + size + 4095) & ~uint64_t{4095};
    const fs::path dir = fs::temp_directory_path() / ("dmdetect-listcut-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path lime = dir / "holed.lime", out = dir / "out.jsonl";
    {
        const auto phys = PhysicalLayer::open((dev / "dump.elf").string());
        const PhysicalRun ram = ram_of(*phys);
        const uint64_t top = ram.paddr + ram.size - (uint64_t{16} << 20);
        REQUIRE(hi <= top);
        write_lime_without(*phys, lo, hi, top, lime);
    }
    const std::string cmd = dmdetect + " -w " + model.string() + " " + lime.string() + " -q --format json -o " + out.string() +
                            " 2> " + (dir / "err.txt").string();
    REQUIRE(std::system(cmd.c_str()) == 0);
    const std::string text = slurp(out);
    uint64_t unjudged = 0, hidden = 0;   // the leader's threads: hidden null saying why; any task hidden
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        hidden += line.find("\"hidden\":true") != std::string::npos;
        unjudged += line.find("\"tgid\":" + std::to_string(leader) + ",") != std::string::npos &&
                    line.find("\"hidden\":null") != std::string::npos &&
                    line.find("hidden: not judged, the kernel's tasks could not be read whole (init_task.tasks: ") != std::string::npos;
    }
    const size_t v = text.find("{\"record\":\"verdict\"");
    REQUIRE(v != std::string::npos);
    const std::string verdict = text.substr(v, text.find('\n', v) - v);
    MESSAGE("PID " << leader << " (" << threads_of[leader] << " threads) without paddr " << lo << ".." << hi << ": " << unjudged
                   << " of its threads not judged; " << verdict);
    CHECK(unjudged >= 1);
    CHECK(hidden == 0);
    CHECK(verdict.find("\"hidden\":0,") != std::string::npos);
    CHECK(verdict.find("\"complete\":false") != std::string::npos);
    CHECK(text.find("the kernel's lists were not read whole: tasks (init_task.tasks: ") != std::string::npos);
    CHECK(text.find("of memory the kernel maps") != std::string::npos);   // the lack that lets the cut excuse them
    fs::remove_all(dir);
}
