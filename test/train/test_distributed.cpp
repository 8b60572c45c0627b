// --resume exact with planted-pointer augmentation (one process), and dmtrain under `mpirun -np 2` ($DMTRAIN, $MPIRUN and OpenMPI's run-as-root/oversubscribe settings
// set by meson; MPIRUN only when the build found MPI and mpirun, else the two-rank parts are left
// out): on a synthetic dataset written here (three
// ELF dumps with real x86-64 page tables, 256-byte objects with pointers at +0, +64, +128), 20
// steps on two ranks give the single process's weights up to float summation order, --resume on
// two ranks gives the uninterrupted two-rank run bit for bit, and an error on the ranks ends the
// job with a non-zero status instead of a hang. dmdetect ($DMDETECT) over several dumps: one
// process and two ranks write the same records, each naming its dump; a bad dump is one error line;
// an output over a dump is refused, a write error is exit status 1.
#include "detect/detect.hpp"
#include "engine/engine.hpp"
#include "graph/text_lines.hpp"
#include "../graph/layer_images.hpp"

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

using namespace deepmem;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kRegion = 0x300000, kRegionEnd = 0x400000, kDirectMap = 0xffff800000000000ull;

// A dataset dump: kRegion holds 256-byte slots, 40% of them "obj" objects (pointers at +0, +64,
// +128 to other objects, random bytes between), every third other one a "rec" object (pointers at
// +0 and +96), the others random bytes with 0–3 pointers at random aligned offsets. Writes dump.elf (CR3 in the QEMU note), labels.jsonl and DONE.
void write_dump(const fs::path& dir, uint64_t seed) {
    fs::create_directories(dir);
    auto img = test_images::build_x64_4level();
    std::mt19937_64 rng(seed);
    for (uint64_t a = kRegion; a < kRegionEnd; a += 8) img.put64(a, rng() & 0x00ff00ff00ff00ffull);
    std::vector<uint64_t> objects, slots;
    for (uint64_t a = kRegion; a < kRegionEnd; a += 256) (rng() % 10 < 4 ? objects : slots).push_back(a);
    auto target = [&] { return kDirectMap + objects[rng() % objects.size()] + 8 * (rng() % 4); };
    for (uint64_t o : objects)
        for (uint64_t off : {0, 64, 128}) img.put64(o + off, target());
    std::vector<uint64_t> records;   // a second type for joint models: every third other slot
    for (size_t i = 0; i < slots.size(); ++i) {
        if (i % 3 == 0) {
            records.push_back(slots[i]);
            for (uint64_t off : {0, 96}) img.put64(slots[i] + off, target());
            continue;
        }
        for (uint64_t k = rng() % 4; k > 0; --k) img.put64(slots[i] + 8 * (rng() % 32), target());
    }
    const std::string elf = [&] {
        auto b = test_images::to_elf(img.bytes, {{0, img.bytes.size()}}, {{0x80050033, 0x1000, 0x3406f0, true}}, true);
        return std::string(b.begin(), b.end());
    }();
    std::ofstream(dir / "dump.elf", std::ios::binary) << elf;
    std::ofstream labels(dir / "labels.jsonl");
    char line[200];
    for (const auto& [type, of_type] : {std::pair{"obj", &objects}, std::pair{"rec", &records}})
        for (uint64_t o : *of_type) {
            std::snprintf(line, sizeof line, "{\"vaddr\":\"0x%llx\",\"type\":\"%s\",\"size\":256,\"paddr\":\"0x%llx\",\"state\":\"live\"}\n",
                          (unsigned long long)(kDirectMap + o), type, (unsigned long long)o);
            labels << line;
        }
    std::ofstream(dir / "DONE") << "";
}

struct Dataset {
    fs::path dir, config;
    Dataset() : dir(fs::temp_directory_path() / ("dm-mpi-" + std::to_string(::getpid()))) {
        fs::remove_all(dir);
        write_dump(dir / "d-1", 11);
        write_dump(dir / "d-2", 12);
        write_dump(dir / "d-3", 13);
        std::ofstream(dir / "manifest.json")
            << "{\n  \"format\":\"deepmem dataset manifest v1\",\n  \"kernel_package\":\"synthetic\",\n"
               "  \"kernel_version\":\"0\",\n  \"train\":[\"d-1\",\"d-2\"],\n  \"validation\":[\"d-3\"],\n  \"test\":[]\n}\n";
        // Every path of the trainer a rank can change: dropout, content noise, mining (every 5 steps).
        config = dir / "obj.ini";
        std::ofstream(config) << "[data]\nmanifest = " << (dir / "manifest.json").string()
                              << "\ntype = obj\n[keys]\ncount = 8\nmin_frequency = 0.5\n"
                                 "[model]\nembed_width = 16\niterations = 2\nsigma_layers = 2\nclassifier_width = 16\n"
                                 "keep_prob = 0.8\n[optimiser]\nlearning_rate = 0.001\nclip_norm = 5\n"
                                 "[batch]\npositives = 31\nnegatives_per_positive = 3\nhard_negative_fraction = 0.3\n"
                                 "mined_fraction = 0.3\ncontent_noise = 0.2\n"
                                 "[run]\nsteps = 20\nvalidate_every = 1000\ncheckpoint_every = 5\nseed = 3\nthreads = 1\n";
    }
    ~Dataset() { fs::remove_all(dir); }
};

bool have_mpi() {
    const char* m = std::getenv("MPIRUN");
    return m && *m;
}

// Runs the executable in $TOOL with ARGS (under `mpirun -np N` when np > 0), stdout and stderr to
// DIR/out.txt (unless ARGS redirects it) and DIR/err.txt; returns the exit status.
int run(const char* tool, int np, const std::string& args, const fs::path& dir) {
    const char* exe = std::getenv(tool);
    REQUIRE_MESSAGE(exe != nullptr, "set " << tool << " to the executable");
    REQUIRE_MESSAGE((np == 0 || have_mpi()), "set MPIRUN to OpenMPI's mpirun");
    // Under mpirun, no leak check in the ranks (ASan builds): OpenMPI's dlopen'ed MCA components keep
    // allocations past MPI_Finalize and are unloaded before LeakSanitizer runs, so no suppression can
    // name them. The plain (np = 0) runs keep the check for deepmem's own code.
    std::string cmd = np > 0 ? "ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:detect_leaks=0\" " + std::string(std::getenv("MPIRUN")) +
                                   " -np " + std::to_string(np) + " "
                             : "";
    cmd += std::string(exe) + " " + args + (args.find(" >") == std::string::npos ? " >" + (dir / "out.txt").string() : "") +
           " 2>" + (dir / "err.txt").string();
    const int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int dmtrain(const Dataset& d, int np, const std::string& args) {
    return run("DMTRAIN", np, d.config.string() + " -q " + args, d.dir);
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p);
    return {std::istreambuf_iterator<char>(f), {}};
}

// The (step, F1) of each "validation at step N: … (TP a FP b FN c)" line of a dmtrain log, F1 from the
// counts (the printed F1 has 4 digits).
std::vector<std::pair<uint64_t, double>> logged_validations(const std::string& log) {
    std::vector<std::pair<uint64_t, double>> seen;
    for (size_t at = log.find("validation at step "); at != std::string::npos; at = log.find("validation at step ", at + 1)) {
        const size_t counts = log.find("(TP ", at);
        REQUIRE(counts != std::string::npos);
        unsigned long tp = 0, fp = 0, fn = 0;
        REQUIRE(std::sscanf(log.c_str() + counts, "(TP %lu FP %lu FN %lu)", &tp, &fp, &fn) == 3);
        seen.emplace_back(std::stoull(log.substr(at + 19)), tp + fp + fn ? 2.0 * double(tp) / double(2 * tp + fp + fn) : 0.0);
    }
    return seen;
}

// max |a − b| / max(1, |a|) over every parameter.
double max_relative_difference(const Model& a, const Model& b) {
    REQUIRE(a.params.tensors.size() == b.params.tensors.size());
    double worst = 0;
    for (size_t i = 0; i < a.params.tensors.size(); ++i) {
        const auto& x = a.params.tensors[i];
        const auto& y = b.params.tensors[i];
        REQUIRE(x.rows() == y.rows());
        REQUIRE(x.cols() == y.cols());
        for (Eigen::Index e = 0; e < x.size(); ++e)
            worst = std::max(worst, std::abs(double(x.data()[e]) - double(y.data()[e])) / std::max(1.0, std::abs(double(x.data()[e]))));
    }
    return worst;
}

}  // namespace

TEST_CASE("train: --resume is exact with planted-pointer and absent-page augmentation (batch.plant_rate, absent_rate, one process)") {
    const Dataset d;
    const std::string plain = (d.dir / "plain.cereal").string(), full = (d.dir / "full.cereal").string(),
                      split = (d.dir / "split.cereal").string(), plant = " --batch.plant_rate 0.05 --batch.absent_rate 0.3";
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + plain + " --run.steps 10") == 0, slurp(d.dir / "err.txt"));
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + full + " --run.steps 10" + plant) == 0, slurp(d.dir / "err.txt"));
    // "killed" after the step-5 checkpoint, then resumed to 10
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + split + " --run.steps 5" + plant) == 0, slurp(d.dir / "err.txt"));
    REQUIRE_MESSAGE(run("DMTRAIN", 0, d.config.string() + " --run.output " + split + " --run.steps 10 --resume" + plant, d.dir) == 0,
                    slurp(d.dir / "err.txt"));   // (not -q: the log is read below)
    // the log's loss average is this run's (not in the checkpoint): the resumed run says where it starts
    CHECK(slurp(d.dir / "err.txt").find("step 6/10  loss ") != std::string::npos);
    CHECK(slurp(d.dir / "err.txt").find("(loss averaged from step 6, the resume)") != std::string::npos);
    const Model f = Model::load(full), r = Model::load(split), p = Model::load(plain);
    CHECK(r.adam_state.step == 10);
    CHECK(max_relative_difference(f, r) == 0);
    for (size_t i = 0; i < r.adam_state.m.tensors.size(); ++i) {
        CHECK(r.adam_state.m.tensors[i] == f.adam_state.m.tensors[i]);
        CHECK(r.adam_state.v.tensors[i] == f.adam_state.v.tensors[i]);
    }
    CHECK(max_relative_difference(f, p) > 0);   // the augmentation changed the trajectory
    CHECK(f.provenance.training_config.find("plant_rate = 0.05") != std::string::npos);
    CHECK(f.provenance.training_config.find("absent_rate = 0.3") != std::string::npos);
    CHECK(p.provenance.training_config.find("plant_rate") == std::string::npos);   // older models' text
    CHECK(p.provenance.training_config.find("absent_rate") == std::string::npos);
    // run.optimiser_state = false: the same weights without Adam's moments (the shipped models'
    // form, a third of the size); the checkpoint keeps them
    const std::string lean = (d.dir / "lean.cereal").string();
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + lean + " --run.steps 10 --run.optimiser_state false" + plant) == 0,
                    slurp(d.dir / "err.txt"));
    const Model l = Model::load(lean), lc = Model::load(lean + ".ckpt");
    CHECK(max_relative_difference(f, l) == 0);
    CHECK(l.adam_state.m.tensors.empty());
    CHECK(l.adam_state.v.tensors.empty());
    CHECK(lc.adam_state.m.tensors.size() == f.adam_state.m.tensors.size());
    CHECK(2 * fs::file_size(lean) < fs::file_size(full));
    CHECK(l.provenance.training_config.find("optimiser_state = false") != std::string::npos);
    CHECK(f.provenance.training_config.find("optimiser_state") == std::string::npos);   // older models' text
    // a changed rate is another trajectory: refused on --resume, before the dumps load (the log's
    // "loading …" line; minutes on a real dataset)
    auto resume_log = [&](const std::string& args) {
        CHECK(run("DMTRAIN", 0, d.config.string() + " --run.output " + split + " --resume " + args, d.dir) != 0);
        return slurp(d.dir / "err.txt");
    };
    std::string refused = resume_log("--run.steps 12 --batch.plant_rate 0.1 --batch.absent_rate 0.3");
    CHECK_MESSAGE(refused.find("(batch.plant_rate: was 0.05, now 0.1)") != std::string::npos, refused);
    CHECK(refused.find("loading ") == std::string::npos);
    CHECK(dmtrain(d, 0, "--run.output " + split + " --run.steps 12 --resume --batch.plant_rate 0.05") != 0);
    // a run.steps before the checkpoint's step is refused (the output would be the checkpoint's step 10)
    const std::string output_before = slurp(split), ckpt_before = slurp(split + ".ckpt");
    refused = resume_log("--run.steps 7" + plant);
    CHECK(refused.find("is at step 10, past run.steps 7") != std::string::npos);
    CHECK(refused.find("loading ") == std::string::npos);
    // a checkpoint of other key nodes (a dataset re-made at the manifest's path: here one key node
    // moved): refused after the dumps load, naming what differs; the checkpoint kept
    Model moved = Model::load(split + ".ckpt");
    moved.key_nodes.front().offset += 8;
    moved.save(split + ".ckpt");
    const std::string moved_bytes = slurp(split + ".ckpt");
    refused = resume_log("--run.steps 12" + plant);
    CHECK(refused.find("does not continue this run: other key nodes than the dataset's") != std::string::npos);
    CHECK(slurp(split + ".ckpt") == moved_bytes);
    std::ofstream(split + ".ckpt", std::ios::binary) << ckpt_before;
    CHECK(slurp(split) == output_before);
    CHECK(slurp(split + ".ckpt") == ckpt_before);
    CHECK(dmtrain(d, 0, "--run.output " + split + " --run.steps 10 --resume" + plant) == 0);   // at its step: allowed
    CHECK(max_relative_difference(f, Model::load(split)) == 0);
}

// run.keep = best (train/trainer.hpp Keep): the output is the validated model of the highest F1, the
// earliest of equal F1; the checkpoint stays the last step's; --resume keeps the best of before.
TEST_CASE("train: run.keep = best writes the model of the best validation F1, and --resume keeps it") {
    const Dataset d;
    const std::string full = (d.dir / "best.cereal").string(), split = (d.dir / "split.cereal").string(),
                      keep = " --run.keep best --run.validate_every 30 --batch.mined_fraction 0 --optimiser.learning_rate 0.01";
    REQUIRE_MESSAGE(run("DMTRAIN", 0, d.config.string() + " --run.output " + full + " --run.steps 300" + keep, d.dir) == 0,
                    slurp(d.dir / "err.txt"));
    const std::string log = slurp(d.dir / "err.txt");
    // The validations the run logged (steps 30, 60, …, 300), and the earliest of the highest F1.
    const std::vector<std::pair<uint64_t, double>> seen = logged_validations(log);
    REQUIRE(seen.size() == 10);
    CHECK(seen.back().first == 300);
    // the model learns over these steps: the choice is among different scores
    CHECK(std::any_of(seen.begin(), seen.end(), [&](const auto& v) { return v.second != seen.front().second; }));
    const auto chosen = *std::max_element(seen.begin(), seen.end(), [](const auto& a, const auto& b) { return a.second < b.second; });   // the earliest of the highest
    const Model out = Model::load(full), snapshot = Model::load(full + ".best"), last = Model::load(full + ".ckpt");
    REQUIRE(chosen.first < 270);   // on this data: so the kept-earlier path and the resume below are exercised
    CHECK(out.adam_state.step == chosen.first);
    CHECK(max_relative_difference(out, snapshot) == 0);
    CHECK(last.adam_state.step == 300);
    CHECK((chosen.first == 300) == (log.find("keeping the model of step") == std::string::npos));
    CHECK(out.provenance.training_config.find("keep = best") != std::string::npos);
    CHECK(out.provenance.training_config.find("steps = 300") != std::string::npos);
    // "killed" after a validation step (after the best one, on this data), resumed: the same choice
    // among the same validations, the snapshot of before the resume included
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + split + " --run.steps 270" + keep) == 0, slurp(d.dir / "err.txt"));
    CHECK(Model::load(split + ".ckpt").adam_state.step == 270);
    REQUIRE_MESSAGE(run("DMTRAIN", 0, d.config.string() + " --run.output " + split + " --run.steps 300 --resume" + keep, d.dir) == 0,
                    slurp(d.dir / "err.txt"));
    CHECK(slurp(d.dir / "err.txt").find("best so far: the model of step " + std::to_string(chosen.first)) != std::string::npos);
    const Model resumed = Model::load(split);
    CHECK(resumed.adam_state.step == out.adam_state.step);
    CHECK(max_relative_difference(out, resumed) == 0);
    // resumed at the checkpoint's own step (run.steps = its step, after a keep = last stretch that left
    // the snapshot of before): that step is validated too, as an uninterrupted run validates its last
    const std::string at = (d.dir / "at.cereal").string(), whole = (d.dir / "whole.cereal").string();
    REQUIRE(dmtrain(d, 0, "--run.output " + whole + " --run.steps 285" + keep) == 0);
    REQUIRE(dmtrain(d, 0, "--run.output " + at + " --run.steps 270" + keep) == 0);
    REQUIRE(dmtrain(d, 0, "--run.output " + at + " --run.steps 285 --resume --run.keep last --run.validate_every 30 --batch.mined_fraction 0 "
                         "--optimiser.learning_rate 0.01") == 0);
    REQUIRE(run("DMTRAIN", 0, d.config.string() + " --run.output " + at + " --run.steps 285 --resume" + keep, d.dir) == 0);
    CHECK(slurp(d.dir / "err.txt").find("validation at step 285: ") != std::string::npos);
    CHECK(max_relative_difference(Model::load(whole), Model::load(at)) == 0);
    CHECK(Model::load(whole).adam_state.step == Model::load(at).adam_state.step);
    // run.keep = last (the default): the last step's model, the trajectory unchanged by the choice
    const std::string plain = (d.dir / "last.cereal").string();
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + plain + " --run.steps 300 --run.validate_every 30 --batch.mined_fraction 0 --optimiser.learning_rate 0.01") == 0,
                    slurp(d.dir / "err.txt"));
    const Model l = Model::load(plain);
    CHECK(l.adam_state.step == 300);
    CHECK(max_relative_difference(l, last) == 0);
    CHECK(l.provenance.training_config.find("keep =") == std::string::npos);   // older models' text
    CHECK(dmtrain(d, 0, "--run.output " + plain + " --run.steps 300 --run.keep worst") != 0);
    // a directory where the snapshot goes: refused before any training
    fs::create_directories(d.dir / "dir.cereal.best");
    CHECK(dmtrain(d, 0, "--run.output " + (d.dir / "dir.cereal").string() + " --run.steps 300" + keep) != 0);
    CHECK(slurp(d.dir / "err.txt").find("run.keep = best: the best model's snapshot '" + (d.dir / "dir.cereal.best").string() +
                                        "' is a directory") != std::string::npos);
    CHECK(!fs::exists(d.dir / "dir.cereal.ckpt"));
    fs::create_directories(d.dir / "cdir.cereal.ckpt");   // the checkpoint's place, with either keep
    CHECK(dmtrain(d, 0, "--run.output " + (d.dir / "cdir.cereal").string() + " --run.steps 300") != 0);
    CHECK(slurp(d.dir / "err.txt").find("the checkpoint '" + (d.dir / "cdir.cereal.ckpt").string() + "' is a directory") !=
          std::string::npos);
    // resumed with keep = best after a run without it: no snapshot of before, said
    REQUIRE(dmtrain(d, 0, "--run.output " + plain + " --run.steps 270 --run.validate_every 30 --batch.mined_fraction 0 --optimiser.learning_rate 0.01") == 0);
    REQUIRE(run("DMTRAIN", 0, d.config.string() + " --run.output " + plain + " --run.steps 300 --resume" + keep, d.dir) == 0);
    CHECK(slurp(d.dir / "err.txt").find("warning: no " + plain + ".best: the best is chosen among the validations from step 271 on") !=
          std::string::npos);
}

// optimiser.schedule = cosine: --resume exact with the horizon kept (optimiser.schedule_steps); a resume
// that would change the horizon is refused.
TEST_CASE("train: --resume is exact under optimiser.schedule = cosine, and keeps its horizon") {
    const Dataset d;
    const std::string full = (d.dir / "cos.cereal").string(), split = (d.dir / "split.cereal").string(),
                      plain = (d.dir / "plain.cereal").string(), cosine = " --optimiser.schedule cosine";
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + full + " --run.steps 10" + cosine) == 0, slurp(d.dir / "err.txt"));
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + plain + " --run.steps 10") == 0, slurp(d.dir / "err.txt"));
    const Model f = Model::load(full), p = Model::load(plain);
    CHECK(max_relative_difference(f, p) > 0);   // the schedule changed the trajectory
    CHECK(f.provenance.training_config.find("schedule = cosine\nschedule_steps = 10") != std::string::npos);
    CHECK(p.provenance.training_config.find("schedule") == std::string::npos);   // older models' text
    // stopped at 5 with the horizon of 10, resumed to 10: the uninterrupted run, bit for bit
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + split + " --run.steps 5 --optimiser.schedule_steps 10" + cosine) == 0,
                    slurp(d.dir / "err.txt"));
    CHECK(dmtrain(d, 0, "--run.output " + split + " --run.steps 10 --resume" + cosine) == 0);   // horizon 10 again
    CHECK(max_relative_difference(f, Model::load(split)) == 0);
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + split + " --run.steps 5 --optimiser.schedule_steps 10" + cosine) == 0,
                    slurp(d.dir / "err.txt"));
    CHECK(dmtrain(d, 0, "--run.output " + split + " --run.steps 12 --resume" + cosine) != 0);   // horizon 12: refused
    CHECK(slurp(d.dir / "err.txt").find("(optimiser.schedule_steps: was 10, now 12)") != std::string::npos);
    CHECK(dmtrain(d, 0, "--run.output " + split + " --run.steps 10 --resume") != 0);   // cosine → constant
    CHECK(slurp(d.dir / "err.txt").find("(optimiser.schedule: was cosine, now the default)") != std::string::npos);
}

// Issue #12 item 1: data.type = a list trains one joint model; --resume is exact for it too; dmdetect
// runs it (both types' fit records, one network).
TEST_CASE("train: a joint model of two types (data.type = obj,rec), --resume exact, detected in one pass") {
    const Dataset d;
    const std::string full = (d.dir / "joint.cereal").string(), split = (d.dir / "split.cereal").string(),
                      both = " --data.type obj,rec";
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + full + " --run.steps 10" + both) == 0, slurp(d.dir / "err.txt"));
    const std::string printed = slurp(d.dir / "out.txt");
    CHECK(printed.find(full + ": joint model of 2 types, obj, 10 steps") != std::string::npos);
    CHECK(printed.find(full + ": joint model of 2 types, rec, 10 steps") != std::string::npos);
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + split + " --run.steps 5" + both) == 0, slurp(d.dir / "err.txt"));
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + split + " --run.steps 10 --resume" + both) == 0, slurp(d.dir / "err.txt"));
    const Model f = Model::load(full), r = Model::load(split);
    CHECK(max_relative_difference(f, r) == 0);
    REQUIRE(f.joint());
    CHECK(f.object_type == "obj+rec");
    REQUIRE(f.parts.size() == 2);
    CHECK(f.parts[0].object_type == "obj");
    CHECK(f.parts[1].object_type == "rec");
    CHECK(f.parts[0].key_count + f.parts[1].key_count == f.key_nodes.size());
    CHECK(f.config.classes == f.key_nodes.size() + 1);
    CHECK(f.parts[1].validation_objects > 0);   // each type calibrated and its agreement measured
    // a single-type checkpoint does not resume as the joint run, nor the joint one as a single type
    CHECK(dmtrain(d, 0, "--run.output " + split + " --run.steps 12 --resume") != 0);
    CHECK(dmtrain(d, 0, "--run.output " + split + " --run.steps 12 --resume --data.type rec,obj") != 0);
    CHECK(dmtrain(d, 0, "--run.output " + split + " --run.steps 12 --data.type obj,,rec") != 0);
    CHECK(slurp(d.dir / "err.txt").find("data.type") != std::string::npos);
    CHECK(dmtrain(d, 0, "--run.output " + split + " --run.steps 12 --data.type obj,task_struct") != 0);
    CHECK(slurp(d.dir / "err.txt").find("config key data.type: task_struct: no live objects of the type in the training "
                                        "dumps (labeled types: obj, rec)") != std::string::npos);

    // run.keep = best for a joint model: the step of the best mean F1 over its types (each
    // validation logs one line per type), the earliest of equal ones; the checkpoint the last step's
    const std::string best = (d.dir / "joint-best.cereal").string();
    REQUIRE_MESSAGE(run("DMTRAIN", 0, d.config.string() + " --run.output " + best + " --run.steps 400 --run.keep best --run.validate_every 40 "
                                      "--batch.mined_fraction 0 --optimiser.learning_rate 0.01" + both, d.dir) == 0,
                    slurp(d.dir / "err.txt"));
    const std::vector<std::pair<uint64_t, double>> lines = logged_validations(slurp(d.dir / "err.txt"));
    REQUIRE(lines.size() == 20);   // steps 40, 80, …, 400, two types each
    std::vector<std::pair<uint64_t, double>> mean;
    for (size_t i = 0; i + 1 < lines.size(); i += 2) {
        REQUIRE(lines[i].first == lines[i + 1].first);
        mean.emplace_back(lines[i].first, (lines[i].second + lines[i + 1].second) / 2);
    }
    double top = 0;
    for (const auto& [step, f1] : mean) top = std::max(top, f1);
    const uint64_t chosen = std::find_if(mean.begin(), mean.end(), [&](const auto& v) { return v.second >= top - 1e-9; })->first;
    CHECK(std::any_of(mean.begin(), mean.end(), [&](const auto& v) { return v.second < top - 1e-9; }));   // a choice among different scores
    const Model kept = Model::load(best);
    std::string means;
    for (const auto& [step, f1] : mean) means += " " + std::to_string(step) + ":" + std::to_string(f1);
    MESSAGE("joint keep = best: kept step " << kept.adam_state.step << " of 400, mean validation F1 by step" << means);
    REQUIRE(chosen < 400);   // on this data: the kept-earlier path (the model swapped, then calibrated)
    CHECK(kept.adam_state.step == chosen);
    CHECK(kept.joint());
    CHECK(max_relative_difference(kept, Model::load(best + ".best")) == 0);
    CHECK(Model::load(best + ".ckpt").adam_state.step == 400);
    CHECK(kept.parts[0].validation_objects > 0);   // the kept model calibrated (rec is not learned in these steps)

    const std::string dump = (d.dir / "d-3" / "dump.elf").string();
    REQUIRE_MESSAGE(run("DMDETECT", 0, "-w " + full + " -q --threads 1 --addresses-only --format json " + dump, d.dir) == 0,
                    slurp(d.dir / "err.txt"));
    const std::string out = slurp(d.dir / "out.txt");
    std::vector<std::string> types;
    parse_detections({reinterpret_cast<const uint8_t*>(out.data()), out.size()}, &types);
    CHECK(types == std::vector<std::string>{"obj", "rec"});
}

TEST_CASE("train: votes.alignment = learned — from the train labels, by --recalibrate from the validation labels, per part; --resume may change it") {
    const Dataset d;   // every object sits on a 256-byte slot of kRegion: learned as a cache line, 64
    const std::string plain = (d.dir / "plain.cereal").string(), aligned = (d.dir / "aligned.cereal").string();
    const std::string fast = " --batch.mined_fraction 0 --optimiser.learning_rate 0.01";   // detects after 150 steps
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + plain + " --run.steps 5" + fast) == 0, slurp(d.dir / "err.txt"));
    CHECK(Model::load(plain).base_alignment == 0);
    // the checkpoint of a run without it resumes with it: not part of the trajectory
    REQUIRE_MESSAGE(run("DMTRAIN", 0, d.config.string() + " --run.output " + plain + " --run.steps 150 --resume --votes.alignment learned" + fast, d.dir) == 0,
                    slurp(d.dir / "err.txt"));
    CHECK(slurp(d.dir / "err.txt").find("obj: base alignment 64 bytes (learned from ") != std::string::npos);
    CHECK(slurp(d.dir / "err.txt").find("warning: obj: base alignment learned from one kernel build") != std::string::npos);
    const Model resumed = Model::load(plain);
    CHECK(resumed.base_alignment == 64);
    CHECK(resumed.provenance.training_config.find("[votes]\nalignment = learned\n") != std::string::npos);
    // --recalibrate learns it from the validation dump's labels; a joint model per part
    const std::string joint = (d.dir / "joint.cereal").string(), joint_aligned = (d.dir / "joint-aligned.cereal").string();
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + joint + " --run.steps 5 --data.type obj,rec") == 0, slurp(d.dir / "err.txt"));
    REQUIRE_MESSAGE(run("DMTRAIN", 0, d.config.string() + " --data.type obj,rec --votes.alignment learned --recalibrate " + joint + " --run.output " + joint_aligned, d.dir) == 0,
                    slurp(d.dir / "err.txt"));
    const Model j = Model::load(joint_aligned);
    REQUIRE(j.parts.size() == 2);
    CHECK(j.parts[0].base_alignment == 64);
    CHECK(j.parts[1].base_alignment == 64);
    CHECK(j.base_alignment == 0);
    CHECK(slurp(d.dir / "err.txt").find("rec: base alignment 64 bytes (learned from ") != std::string::npos);
    CHECK(j.provenance.training_config.find("[recalibrated]") != std::string::npos);
    // votes.alignment = none drops an alignment a model had: on --recalibrate and on --resume
    const std::string dropped = (d.dir / "joint-dropped.cereal").string();
    REQUIRE_MESSAGE(run("DMTRAIN", 0, d.config.string() + " --data.type obj,rec --recalibrate " + joint_aligned + " --run.output " + dropped, d.dir) == 0,
                    slurp(d.dir / "err.txt"));
    CHECK(Model::load(dropped).parts[0].base_alignment == 0);
    CHECK(slurp(d.dir / "err.txt").find("obj: base alignment 64 bytes dropped (votes.alignment = none)") != std::string::npos);
    // a bad value is refused before any work, naming the key
    CHECK(dmtrain(d, 0, "--run.output " + aligned + " --votes.alignment 64") != 0);
    CHECK(slurp(d.dir / "err.txt").find("votes.alignment") != std::string::npos);
    CHECK(!fs::exists(aligned));
    // detection with the aligned model reports only bases on the line
    const std::string dump = (d.dir / "d-3" / "dump.elf").string();
    REQUIRE_MESSAGE(run("DMDETECT", 0, "-w " + plain + " -q --threads 1 --addresses-only --format json " + dump, d.dir) == 0,
                    slurp(d.dir / "err.txt"));
    const std::string out = slurp(d.dir / "out.txt");
    const std::vector<Detection> found = parse_detections({reinterpret_cast<const uint8_t*>(out.data()), out.size()});
    CHECK(!found.empty());
    for (const Detection& x : found) CHECK(x.vaddr % 64 == 0);
    const std::string resumed_none = (d.dir / "none.cereal").string();
    fs::copy_file(plain + ".ckpt", resumed_none + ".ckpt");
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + resumed_none + " --run.steps 155 --resume" + fast) == 0, slurp(d.dir / "err.txt"));
    CHECK(Model::load(resumed_none).base_alignment == 0);
}

TEST_CASE("train-mpi: two ranks train the single process's weights; --resume on two ranks is exact") {
    if (!have_mpi()) {
        MESSAGE("built without MPI (or no mpirun): nothing to compare");
        return;
    }
    const Dataset d;
    const std::string one = (d.dir / "one.cereal").string(), two = (d.dir / "two.cereal").string(),
                      resumed = (d.dir / "resumed.cereal").string();
    // The plain run: no mpirun, no MPI initialised.
    REQUIRE_MESSAGE(dmtrain(d, 0, "--run.output " + one) == 0, slurp(d.dir / "err.txt"));
    REQUIRE_MESSAGE(dmtrain(d, 2, "--run.output " + two) == 0, slurp(d.dir / "err.txt"));
    const std::string out = slurp(d.dir / "out.txt");
    CHECK(out.find(two + ": obj model, 20 steps") == 0);   // one line, from rank 0
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
    const Model m1 = Model::load(one), m2 = Model::load(two);
    CHECK(m2.adam_state.step == 20);
    CHECK(m1.key_nodes == m2.key_nodes);
    const Model init = Model::create(m1.config, 3);
    CHECK(max_relative_difference(m1, init) > 1e-3);   // it did train
    const double diff = max_relative_difference(m1, m2);
    MESSAGE("np=1 vs np=2 after 20 steps: max relative parameter difference " << diff);
    CHECK(diff <= 1e-5);
    CHECK(m1.threshold == doctest::Approx(m2.threshold).epsilon(1e-3));

    // 10 steps, then --resume to 20, both on two ranks.
    REQUIRE_MESSAGE(dmtrain(d, 2, "--run.output " + resumed + " --run.steps 10") == 0, slurp(d.dir / "err.txt"));
    CHECK(Model::load(resumed + ".ckpt").adam_state.step == 10);
    REQUIRE_MESSAGE(dmtrain(d, 2, "--run.output " + resumed + " --resume") == 0, slurp(d.dir / "err.txt"));
    const Model r = Model::load(resumed);
    CHECK(r.adam_state.step == 20);
    CHECK(max_relative_difference(m2, r) == 0);
    for (size_t i = 0; i < r.adam_state.m.tensors.size(); ++i) {
        CHECK(r.adam_state.m.tensors[i] == m2.adam_state.m.tensors[i]);
        CHECK(r.adam_state.v.tensors[i] == m2.adam_state.v.tensors[i]);
    }

    // run.keep = best on two ranks: rank 0 validates and keeps; the output is the step of the best F1
    // its log shows (the earliest of equal ones), the checkpoint the last step's.
    const std::string best = (d.dir / "best.cereal").string();
    REQUIRE_MESSAGE(run("DMTRAIN", 2, d.config.string() + " --run.output " + best + " --run.keep best --run.validate_every 5", d.dir) == 0,
                    slurp(d.dir / "err.txt"));
    const std::vector<std::pair<uint64_t, double>> seen = logged_validations(slurp(d.dir / "err.txt"));
    REQUIRE(seen.size() == 4);   // steps 5, 10, 15, 20, logged once (by rank 0)
    const auto chosen = *std::max_element(seen.begin(), seen.end(), [](const auto& a, const auto& b) { return a.second < b.second; });   // the earliest of the highest
    CHECK(Model::load(best).adam_state.step == chosen.first);
    CHECK(max_relative_difference(Model::load(best), Model::load(best + ".best")) == 0);
    CHECK(Model::load(best + ".ckpt").adam_state.step == 20);

    // An error on the ranks (no checkpoint to resume from) ends the job, non-zero, with the error line.
    CHECK(dmtrain(d, 2, "--run.output " + (d.dir / "absent.cereal").string() + " --resume") != 0);
    CHECK(slurp(d.dir / "err.txt").find("dmtrain: error: ") != std::string::npos);
    CHECK_FALSE(fs::exists(d.dir / "absent.cereal"));
}

TEST_CASE("detect-mpi: dmdetect over several dumps, one process and two ranks, same records") {
    const Dataset d;
    const fs::path dumps = d.dir / "dumps";
    fs::create_directories(dumps);
    for (const char* n : {"d-1", "d-2", "d-3"}) fs::copy_file(d.dir / n / "dump.elf", dumps / (std::string(n) + ".elf"));
    std::ofstream(dumps / "notes.txt") << "not a dump";   // not a dump name: skipped
    // Every node says key node 1 (offset 0, length 56): each 56-byte segment is an object.
    ModelConfig c;
    Model m = Model::create(c, 7);
    m.object_type = "obj";
    m.key_nodes = {{0, 56, 1.f}};
    m.threshold = 0.5f;   // one vote of weight 1 reaches it
    m.params.cls_b(int(c.classifier_hidden.size()))(0, 1) = 100.f;
    const std::string model = (d.dir / "obj.cereal").string();
    m.save(model);
    // (--addresses-only: these synthetic dumps hold no kernel types; reading objects is test_interpret's)
    const std::string w = "-w " + model + " -q --threads 1 --addresses-only ";

    std::string each;   // the dumps one by one (kernel and fit records, detections), each record naming its dump
    std::vector<Detection> each_found;
    for (const char* n : {"d-1", "d-2", "d-3"}) {
        const std::string dump = (dumps / (std::string(n) + ".elf")).string();
        REQUIRE(run("DMDETECT", 0, w + dump + " --format json", d.dir) == 0);
        const std::string out = slurp(d.dir / "out.txt");
        const std::vector<Detection> found = parse_detections({reinterpret_cast<const uint8_t*>(out.data()), out.size()});
        CHECK(found.size() > 100);
        CHECK(out.rfind("{\"record\":\"kernel\"", 0) == 0);
        each += name_dump_records(out, DetectionFormat::Json, DumpRecords{dump});
        each_found.insert(each_found.end(), found.begin(), found.end());
    }
    REQUIRE(run("DMDETECT", 0, w + dumps.string() + " --format json", d.dir) == 0);
    const std::string one = slurp(d.dir / "out.txt");
    CHECK(one == each + "{\"record\":\"batch\",\"dumps\":3,\"failed\":0,\"stopped\":0,\"hidden\":0,\"incomplete\":3}\n");   // the batch's last record (no object type of the fixtures has a hidden verdict)
    CHECK(one.find("{\"dump\":\"" + (dumps / "d-2.elf").string() + "\",\"type\":\"obj\"") != std::string::npos);
    CHECK(one.find("{\"dump\":\"" + (dumps / "d-3.elf").string() + "\",\"record\":\"fit\"") != std::string::npos);
    // Records of several dumps are not read as one dump's; one dump's (named) are.
    CHECK_THROWS_AS(parse_detections({reinterpret_cast<const uint8_t*>(one.data()), one.size()}), FormatError);
    const std::string first = one.substr(0, one.find("{\"dump\":\"" + (dumps / "d-2.elf").string()));
    const std::vector<Detection> first_found = parse_detections({reinterpret_cast<const uint8_t*>(first.data()), first.size()});
    CHECK(!first_found.empty());
    CHECK(std::equal(first_found.begin(), first_found.end(), each_found.begin()));

    // An output that is one of the dumps is refused before any work; a write error is status 1.
    const std::string before = slurp(dumps / "d-2.elf");
    CHECK(run("DMDETECT", 0, w + dumps.string() + " --format json -o " + (dumps / "d-2.elf").string(), d.dir) == 1);
    CHECK(slurp(d.dir / "err.txt").find("dmdetect: error: refusing to write") == 0);
    CHECK(slurp(dumps / "d-2.elf") == before);
    CHECK(run("DMDETECT", 0, w + dumps.string() + " --format json >/dev/full", d.dir) == 1);
    CHECK(slurp(d.dir / "err.txt").find("dmdetect: error: cannot write standard output") != std::string::npos);
    const std::vector<int> ranks = have_mpi() ? std::vector<int>{0, 2} : std::vector<int>{0};
    // (Under mpirun the ranks' stdout is a pipe to mpirun, which drops what it cannot write: the
    // ranks never see the error. The README says to use -o there.)

    // Two ranks (dumps 1 and 3 on rank 0, dump 2 on rank 1): rank 0 writes the same records.
    if (have_mpi()) {
        REQUIRE_MESSAGE(run("DMDETECT", 2, w + dumps.string() + " --format json", d.dir) == 0, slurp(d.dir / "err.txt"));
        CHECK(slurp(d.dir / "out.txt") == one);
        const fs::path out = d.dir / "found.jsonl";
        REQUIRE(run("DMDETECT", 2, w + dumps.string() + " --format json -o " + out.string(), d.dir) == 0);
        CHECK(slurp(out) == one);
        CHECK(slurp(d.dir / "out.txt").empty());
    }

    // CSV: one header with the dump column; a table per dump.
    REQUIRE(run("DMDETECT", ranks.back(), w + dumps.string() + " --format csv", d.dir) == 0);
    const std::string csv = slurp(d.dir / "out.txt");
    // the dumps' warnings, each naming its dump (the memory the synthetic dumps lack), then one header
    std::string rows;
    for (size_t at = 0; at < csv.size();) {
        const size_t end = csv.find('\n', at) + 1;
        const std::string line = csv.substr(at, end - at);
        if (line.starts_with("# warning: ")) CHECK(line.starts_with("# warning: " + dumps.string() + "/d-"));
        else if (line.starts_with("# verdict: ")) CHECK(line.starts_with("# verdict: " + dumps.string() + "/d-"));   // one per dump
        else if (line.starts_with("# batch: ")) CHECK(line == "# batch: 3 dumps, 0 failed, 0 stopped by the time limit, 0 with hidden objects, 3 not judged whole\n");
        else if (line.starts_with("# dump: ")) CHECK(line.starts_with("# dump: " + dumps.string() + "/d-"));   // each dump's first line
        else if (!line.starts_with("# kernel") && !line.starts_with("# fit ")) rows += line;   // (and its kernel and fit lines)
        at = end;
    }
    CHECK(rows.rfind("dump,type,vaddr,paddr,score,votes\n", 0) == 0);
    CHECK(std::count(rows.begin(), rows.end(), '\n') == std::ptrdiff_t(each_found.size() + 1));
    REQUIRE(run("DMDETECT", 0, w + (dumps / "d-1.elf").string() + " " + (dumps / "d-3.elf").string(), d.dir) == 0);
    const std::string table = slurp(d.dir / "out.txt");
    CHECK(table.rfind("# dump: " + (dumps / "d-1.elf").string() + "\n# kernel: ", 0) == 0);   // then its kernel and fit lines
    CHECK(table.find("\n# dump: " + (dumps / "d-3.elf").string() + "\n# kernel: ") != std::string::npos);

    // A bad dump among good ones: one error line naming it, an error record in its place in the
    // output (newcomer 87: no trace of it there), the others' records, a count of the failed dumps at
    // the end, exit status 1.
    std::ofstream(dumps / "d-0.raw") << "short";
    const std::string error_record = "{\"dump\":" + json_string((dumps / "d-0.raw").string()) + ",\"record\":\"error\",\"message\":";
    for (int np : ranks) {
        CHECK(run("DMDETECT", np, w + dumps.string() + " --format json", d.dir) == 1);
        const std::string err = slurp(d.dir / "err.txt");
        CHECK(err.find("dmdetect: error: " + (dumps / "d-0.raw").string() + ": ") != std::string::npos);
        CHECK(err.find("\ndmdetect: error: 1 of 4 dumps failed\n") != std::string::npos);
        size_t ours = 0;   // mpirun adds its own note on a non-zero exit; the fixtures' warnings say what they lack
        for (size_t at = 0; (at = err.find("dmdetect: error: ", at)) != std::string::npos; ++at) ++ours;
        CHECK_MESSAGE(ours == 2, err);
        const std::string out = slurp(d.dir / "out.txt");
        CHECK(out.rfind(error_record, 0) == 0);
        CHECK(out.substr(out.find('\n') + 1) == each + "{\"record\":\"batch\",\"dumps\":4,\"failed\":1,\"stopped\":0,\"hidden\":0,\"incomplete\":3}\n");
    }
    REQUIRE(run("DMDETECT", 0, w + dumps.string() + " --format csv", d.dir) == 1);
    const std::string bad_csv = slurp(d.dir / "out.txt");
    CHECK(bad_csv.rfind("# error: " + (dumps / "d-0.raw").string() + ": ", 0) == 0);
    CHECK(bad_csv.find("\n# dump: " + (dumps / "d-1.elf").string() + "\n# kernel: ") != std::string::npos);   // fit lines in a CSV too
    CHECK(bad_csv.ends_with("\n# batch: 4 dumps, 1 failed, 0 stopped by the time limit, 0 with hidden objects, 3 not judged whole\n"));
    fs::create_directories(d.dir / "empty");
    CHECK(run("DMDETECT", 0, w + (d.dir / "empty").string() + " --format json", d.dir) == 1);
    CHECK(slurp(d.dir / "err.txt").find("no dumps") != std::string::npos);
}
