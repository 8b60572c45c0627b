// dmtrain: train one object type's model from a dataset (argument parsing and printing only; the
// loop is train/trainer.hpp).
//
//   dmtrain CONFIG.ini [--resume] [--SECTION.KEY VALUE …]
//   dmtrain CONFIG.ini --recalibrate MODEL | --anchor MODEL [--kernel FILE …] [--run.output OUT …]
// Every key of the INI file can be given on the command line as --section.key, which overrides
// the file. Unknown keys (in the file or on the command line) are an error.
//
//   mpirun -np N dmtrain CONFIG.ini …
// runs data-parallel over N ranks (train/distributed.hpp, Ranks in train/trainer.hpp): rank 0 logs
// and writes; an error on any rank ends them all.
#include "graph/layers.hpp"
#include "train/distributed.hpp"
#include "train/trainer.hpp"

#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>

#include <unistd.h>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

std::string host_name() {
    char b[256] = {};
    return ::gethostname(b, sizeof b - 1) == 0 ? b : "?";
}

const char* kUsage = "usage: dmtrain CONFIG.ini [--resume] [--section.key VALUE …]\n";

po::options_description config_options(TrainConfig& c) {
    po::options_description o("configuration (INI sections and keys; also accepted as --section.key)");
    o.add_options()
        ("data.manifest", po::value(&c.manifest), "dataset manifest.json (tools/make-dataset)")
        ("data.type", po::value(&c.object_type),
         "object type: task_struct, mm_struct, cred, file, dentry, module; a comma list trains one joint model of them "
         "(one network, model format 6)")
        ("data.max_train_dumps", whole_value(&c.max_train_dumps), "use the first N train dumps (0 = all)")
        ("data.max_validation_dumps", whole_value(&c.max_validation_dumps), "use the first N validation dumps (0 = all)")
        ("data.split_by", po::value(&c.split_by)->default_value(c.split_by), "dump: the manifest's splits; build: leave data.holdout_build out of training")
        ("data.holdout_build", po::value(&c.holdout_build), "build(s) left out with split_by = build: kernel releases or prefixes, comma list (6.12, 5.10.0-46-amd64)")
        ("data.freed_off_base", po::value(&c.freed_off_base)->default_value(c.freed_off_base), "ignore: nodes in freed objects are no targets; negative: those carrying no key node at their own offset are class 0 (train/trainer.hpp Freed)")
        ("keys.count", whole_value(&c.key_nodes), "most frequent segment labels kept as key nodes")
        ("keys.min_frequency", po::value(&c.min_frequency)->default_value(c.min_frequency), "fraction of objects a key node must occur in")
        ("keys.frequency", po::value(&c.key_frequency)->default_value(c.key_frequency), "overall: over all training objects; per_build: over each kernel build's objects, keys taken in rounds over the builds")
        ("keys.min_per_build", whole_value(&c.min_per_build), "per_build: more keys, past keys.count, until each build has this many of its labels among them (0 = off)")
        ("model.embed_width", whole_value(&c.embed_width), "embedding width H")
        ("model.iterations", whole_value(&c.iterations), "GNN iterations T")
        ("model.sigma_layers", whole_value(&c.sigma_layers), "linear layers per σ (ReLU after the last)")
        ("model.classifier_width", whole_value(&c.classifier_width), "classifier hidden width")
        ("model.keep_prob", po::value(&c.keep_prob)->default_value(c.keep_prob), "dropout keep probability")
        ("optimiser.learning_rate", po::value(&c.learning_rate)->default_value(c.learning_rate), "Adam learning rate")
        ("optimiser.weight_decay", po::value(&c.weight_decay)->default_value(c.weight_decay), "decoupled weight decay (0 = off)")
        ("optimiser.clip_norm", po::value(&c.clip_norm)->default_value(c.clip_norm), "gradient norm clip (0 = off)")
        ("optimiser.schedule", po::value(&c.schedule)->default_value(c.schedule), "learning rate over the steps: constant, or cosine (from learning_rate down to near 0 at the horizon)")
        ("optimiser.schedule_steps", whole_value(&c.schedule_steps), "the cosine schedule's horizon in steps (0 = run.steps; set it to stop a run early and --resume it)")
        ("batch.positives", whole_value(&c.positives), "key-node targets per step")
        ("batch.negatives_per_positive", po::value(&c.negatives_per_positive)->default_value(c.negatives_per_positive), "class-0 targets per key-node target")
        ("batch.hard_negative_fraction", po::value(&c.hard_negative_fraction)->default_value(c.hard_negative_fraction), "negatives drawn among key-length nodes")
        ("batch.none_weight", po::value(&c.none_weight)->default_value(c.none_weight), "loss weight of class 0")
        ("batch.mined_fraction", po::value(&c.mined_fraction)->default_value(c.mined_fraction), "negatives drawn among nodes the last checkpoint's model lets vote (0 = off)")
        ("batch.content_noise", po::value(&c.content_noise)->default_value(c.content_noise), "up to this fraction of content bytes randomised per step (0 = off)")
        ("batch.plant_rate", po::value(&c.plant_rate)->default_value(c.plant_rate), "up to this fraction of a batch's words turned into planted pointers per step (0 = off; train/trainer.hpp Planting)")
        ("batch.absent_rate", po::value(&c.absent_rate)->default_value(c.absent_rate), "up to this fraction of a batch's pages made absent per step, as in a cut or partial dump (0 = off; train/trainer.hpp Absence)")
        ("run.steps", whole_value(&c.steps), "training steps")
        ("run.validate_every", whole_value(&c.validate_every), "steps between validations")
        ("run.checkpoint_every", whole_value(&c.checkpoint_every), "steps between checkpoints")
        ("run.seed", whole_value(&c.seed), "seed of initialisation, sampling and dropout")
        ("run.threads", po::value(&c.threads)->default_value(c.threads), "OpenMP threads (0 = all)")
        ("run.output", po::value(&c.output), "model file to write (checkpoint: OUTPUT.ckpt)")
        ("run.keep", po::value(&c.keep)->default_value(c.keep), "last: the last step's model; best: the model of the highest validation F1 among the validations and the last step (snapshot: OUTPUT.best)")
        ("run.optimiser_state", po::value(&c.optimiser_state)->default_value(c.optimiser_state),
         "keep Adam's moments in run.output (false: a third of the size, as shipped; the checkpoint keeps them)")
        ("votes.windows", po::value(&c.vote_windows)->default_value(c.vote_windows), "vote windows in bytes to choose from on validation, comma list (0 = exact bases; e.g. 0,32,64,128 tolerates fields shifted by another build)")
        ("votes.alignment", po::value(&c.alignment)->default_value(c.alignment), "none, or learned: objects of the type start at the largest power of two, at most 64, dividing every labeled base (its slab cache's alignment; train/trainer.hpp Alignment), bases between are dropped");
    return o;
}

int run(int argc, char** argv, Communicator& world) {
    TrainConfig cfg;
    po::options_description keys = config_options(cfg);
    po::options_description cli("options");
    cli.add_options()("help,h", "this text")("resume", "continue from OUTPUT.ckpt")("quiet,q", "only the final line")(
        "recalibrate", po::value<std::string>(),
        "MODEL: no training; choose MODEL's vote window (votes.windows) and threshold on the manifest's validation dumps, write run.output")(
        "image-absent",
        "with --recalibrate: choose instead MODEL's threshold for dumps without the kernel image, on validation dumps cut below it (tools/make-cut-set)")(
        "anchor", po::value<std::string>(),
        "MODEL: no training; name its key nodes by the struct members they lie in (model format 8), from the --kernel files or "
        "the manifest's dumps' kernels, so dmdetect can place them on other builds by the dump's BTF; write run.output")(
        "kernel", po::value<std::vector<std::string>>(), "with --anchor: a kernel file (vmlinuz, vmlinux, raw BTF) of a build MODEL was trained on (repeatable)");
    po::options_description all;
    all.add(cli).add(keys).add_options()("config", po::value<std::string>(), "INI file");
    po::positional_options_description pos;
    pos.add("config", 1);
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).style(kCommandLineStyle).run(), vm);
    if (vm.count("help")) {
        if (world.rank() != 0) return 0;
        std::cout << kUsage << cli << keys;
        return 0;
    }
    if (!vm.count("config")) throw po::error("missing CONFIG.ini");
    const std::string path = vm["config"].as<std::string>();
    // Whole-number keys (whole_value in tools/cli.hpp) refuse "-5", which Boost would wrap.
    std::ifstream in(path);
    if (!in) throw InputError("cannot read config '" + path + "'");
    // Stored after the command line, so command-line values win; unknown keys throw.
    po::store(po::parse_config_file(in, keys, false), vm);
    po::notify(vm);
    const std::string outputs[] = {cfg.output, cfg.output + ".ckpt"}, inputs[] = {path};
    refuse_output_over_inputs(outputs, inputs);
    const bool quiet = vm.count("quiet") > 0;
    auto log = [&](const std::string& line) {
        if (!quiet) std::fprintf(stderr, "dmtrain: %s\n", line.c_str());
    };
    if (vm.count("recalibrate") && vm.count("resume")) throw po::error("--recalibrate and --resume exclude each other");
    if (vm.count("image-absent") && !vm.count("recalibrate")) throw po::error("--image-absent needs --recalibrate MODEL");
    if (vm.count("recalibrate") && world.size() > 1) throw po::error("--recalibrate runs in one process, not under mpirun -np > 1");
    if (vm.count("anchor") && (vm.count("recalibrate") || vm.count("resume") || world.size() > 1))
        throw po::error("--anchor runs alone: without --recalibrate or --resume, in one process");
    if (vm.count("kernel") && !vm.count("anchor")) throw po::error("--kernel needs --anchor MODEL");
    if (vm.count("anchor")) {
        MemoryStage stage("anchoring " + vm["anchor"].as<std::string>());
        const std::vector<std::string> kernels = vm.count("kernel") ? vm["kernel"].as<std::vector<std::string>>() : std::vector<std::string>{};
        const TrainResult r = anchor(cfg, vm["anchor"].as<std::string>(), kernels, log);
        std::printf("%s: %s model, %zu of %zu key node%s anchored\n", cfg.output.c_str(), r.model.object_type.c_str(),
                    r.model.anchored_key_nodes(),
                    r.model.key_nodes.size(), r.model.key_nodes.size() == 1 ? "" : "s");
        return 0;
    }
    if (!quiet && world.size() > 1)
        std::fprintf(stderr, "dmtrain: rank %d of %d on %s\n", world.rank(), world.size(), host_name().c_str());
    MemoryStage stage(vm.count("recalibrate") ? "recalibrating " + vm["recalibrate"].as<std::string>()
                                              : "training the " + cfg.object_type + " model");
    TrainResult r = !vm.count("recalibrate")   ? train(cfg, vm.count("resume") > 0, log, world)
                    : vm.count("image-absent") ? recalibrate_image_absent(cfg, vm["recalibrate"].as<std::string>(), log)
                                               : recalibrate(cfg, vm["recalibrate"].as<std::string>(), log);
    if (world.rank() != 0) return 0;
    for (const TypeValidation& v : r.types) {   // one line per type (a joint model: several)
        const auto& s = v.validation.score;
        const std::string what = r.model.joint() ? "joint model of " + std::to_string(r.types.size()) + " types, " + v.type
                                                 : v.type + " model";
        std::printf("%s: %s, %llu steps in %.0f s; validation precision %.4f recall %.4f F1 %.4f at threshold %.4f, "
                    "vote agreement %llu of %llu candidate objects\n",
                    cfg.output.c_str(), what.c_str(), (unsigned long long)r.steps_run, r.seconds, s.precision(),
                    s.recall(), s.f1(), v.validation.threshold, (unsigned long long)v.agreement.agreeing,
                    (unsigned long long)v.agreement.objects);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli_main_ranks("dmtrain", argc, argv, [&](Communicator& world) { return run(argc, argv, world); });
}
