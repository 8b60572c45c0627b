// Training on the real dev dump (suite 'real-dumps'): a run interrupted at a checkpoint and resumed
// is bit-identical to an uninterrupted one; a changed configuration is refused on --resume; dmtrain
// rejects unknown keys. argv[1] = the dmtrain executable.
#define DOCTEST_CONFIG_IMPLEMENT
#include "test/real_dump.hpp"
#include "train/trainer.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace deepmem;
namespace fs = std::filesystem;

namespace {

const char* g_dmtrain = nullptr;
fs::path g_dev, g_dir;

// A one-dump dataset (dev as both train and validation split) in a temp dir; mining on.
TrainConfig tiny_config(const std::string& output) {
    TrainConfig c;
    c.manifest = (g_dir / "manifest.json").string();
    c.object_type = "task_struct";
    c.positives = 32;
    c.steps = 12;
    c.checkpoint_every = 6;
    c.validate_every = 100;
    c.seed = 7;
    c.mined_fraction = 0.25f;   // hard-negative mining at the checkpoint must not break exact resume
    c.content_noise = 0.2f;     // nor must content-noise augmentation
    c.output = (g_dir / output).string();
    return c;
}

bool same_state(const Model& a, const Model& b) {
    bool same = a.adam_state.step == b.adam_state.step && a.key_nodes == b.key_nodes && a.threshold == b.threshold;
    for (size_t i = 0; same && i < a.params.tensors.size(); ++i)
        same = a.params.tensors[i] == b.params.tensors[i] && a.adam_state.m.tensors[i] == b.adam_state.m.tensors[i] &&
               a.adam_state.v.tensors[i] == b.adam_state.v.tensors[i];
    return same;
}

}  // namespace

TEST_CASE("train real: resume from a checkpoint is bit-identical; a changed config is refused") {
    auto quiet = [](const std::string&) {};
    const TrainResult full = train(tiny_config("full.cereal"), false, quiet);
    CHECK(full.steps_run == 12);

    TrainConfig half = tiny_config("split.cereal");
    half.steps = 6;   // "killed" right after the step-6 checkpoint
    train(half, false, quiet);
    const TrainResult resumed = train(tiny_config("split.cereal"), true, quiet);
    CHECK(resumed.steps_run == 6);
    CHECK(same_state(full.model, resumed.model));
    CHECK(same_state(full.model, Model::load((g_dir / "split.cereal").string())));

    TrainConfig changed = tiny_config("split.cereal");
    changed.learning_rate *= 2;
    CHECK_THROWS_AS(train(changed, true, quiet), InputError);
}

TEST_CASE("train real: dmtrain rejects unknown keys and bad values with one line") {
    const fs::path ini = g_dir / "bad.ini";
    auto run = [&](const std::string& text, const std::string& extra = "") {
        std::ofstream(ini) << text;
        std::string cmd = std::string(g_dmtrain) + " " + ini.string() + " " + extra + " > " + (g_dir / "out").string() + " 2>&1";
        int rc = std::system(cmd.c_str());
        std::ifstream in(g_dir / "out");
        std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        return std::pair{WEXITSTATUS(rc), all};
    };
    const std::string good = "[data]\nmanifest = " + (g_dir / "manifest.json").string() +
                             "\ntype = task_struct\n[run]\noutput = " + (g_dir / "cli.cereal").string() + "\n";
    auto [rc1, out1] = run(good + "[model]\nwidth = 3\n");
    CHECK(rc1 == 2);
    CHECK(out1.find("model.width") != std::string::npos);
    auto [rc2, out2] = run(good, "--model.keep_prob 0");
    CHECK(rc2 == 1);
    CHECK(out2.find("model.keep_prob") != std::string::npos);
    auto [rc3, out3] = run(good, "--run.steps abc");
    CHECK(rc3 == 2);
    auto [rc4, out4] = run(good, "--resume");   // no checkpoint yet
    CHECK(rc4 == 1);
    CHECK(out4.find("cli.cereal.ckpt") != std::string::npos);
}

int main(int argc, char** argv) {
    g_dev = deepmem::test::real_dump_dir({"dump.elf", "labels.jsonl"});
    if (argc < 2) {
        std::fprintf(stderr, "usage: test_train_real DMTRAIN\n");
        return 2;
    }
    g_dmtrain = argv[1];
    g_dir = fs::temp_directory_path() / ("dm-train-real-" + std::to_string(::getpid()));
    fs::create_directories(g_dir);
    fs::create_symlink(fs::absolute(g_dev), g_dir / "dev");
    std::ofstream(g_dir / "manifest.json") << "{\"format\":\"deepmem dataset manifest v1\",\"train\":[\"dev\"],"
                                              "\"validation\":[\"dev\"],\"test\":[]}\n";
    doctest::Context ctx(argc - 1, argv + 1);
    int rc = ctx.run();
    fs::remove_all(g_dir);
    return rc;
}
