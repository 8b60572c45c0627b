// dmdetect: kernel objects in a memory dump, from trained models. Argument parsing and printing
// only; the work is deepmem::Detector (detect/detect.hpp).
//
//   dmdetect [--weights M.cereal [--weights M2.cereal …]] DUMP… [--threshold X] [--format table|json|csv]
//            [--output FILE] [--format-dump raw|elf|lime|kdump|avml|auto] [--strict] [--no-density-bound] [--dtb ADDR]
//            [--threads N] [--network-memory SIZE] [--quiet] [--require-fit] [--kernel FILE] [--kallsyms FILE] [--tree]
//            [--dump-file FILE] [--addresses-only]
//   dmdetect --list-models [--weights M.cereal …] [--format table|json] [--output FILE]
//
// DUMP is a raw/ELF/LiME/kdump/AVML dump (its graph is built once with the models' parameters) or a .dmg built
// by `dmgraph build` (told by its magic; refused when built with other parameters). Without
// --weights the shipped models are used: every *.cereal in $DEEPMEM_MODELS, else in this checkout's
// data/models, else in the installed share/deepmem/models; of several models of one type, the one
// whose kernel builds match the dump's banner best (detect/fit.hpp, pick_models; a note on stderr
// names the one chosen, those set aside and why). Every model runs
// on the one graph; objects scoring at least the model's threshold (or --threshold) are written
// sorted by (type, vaddr) to stdout or atomically to --output, after the dump's kernel and each
// model's fit (table: "# " lines; json: {"record":…} lines; detect/fit.hpp). A model that does not
// fit the dump, or finds nothing, is also a warning line on stderr (for nothing found: the highest
// score seen, or the threshold above any score the model can give; detect/fit.hpp assess_fit). A
// --threshold at or below one key node's vote (Model::single_vote_bound) is one warning line per
// model: every base that key node voted for is reported. Each object carries its fields read from the dump
// with the kernel's types (pid, comm, path … and whether the kernel's own lists hide it:
// train/interpret.hpp); types and symbols from --kernel/--kallsyms (as dmlabel), else from the
// dump; with none, a note on stderr and addresses only. --tree prints the process tree instead of
// the object listing (without --weights it runs the shipped task_struct models only). Progress goes to stderr for large inputs unless
// --quiet: a live percentage on a terminal, else one line per phase.
// Exit status: 0 success, 1 bad input (unreadable or malformed dump, model or graph, mismatched
// graph parameters, no models), 2 usage error (unknown option, missing argument), 3 with
// --require-fit when a model does not fit the dump or its fit cannot be checked (no banner and
// too few candidate objects: detect/fit.hpp, Checked; the output is written all the same), 4 when a
// model was not run (its network past the work limit, detect.hpp DetectOptions::work_limit: a warning
// on stderr and in the output, the other models' detections written; 3 with --require-fit) or the
// time limit stopped one (--time-limit), or stopped the build of a dump's memory graph (no model run
// on it; its "stopped" record in the output: detect.hpp format_batch_error), 5 with
// --fail-on-hidden when a dump's verdict is HIDDEN (detect/fit.hpp dump_verdict; before 1, 3 and 4),
// 7 with it when none is and objects were not judged on kernel lists broken in memory (a smeared
// capture, or tampering), 6 when one is INCOMPLETE or not judged (7 and 6 after 1 and 3, before 4); an
// error is one line "dmdetect: error: …" on stderr.
//
// Several dumps, or a directory (its files named *.elf, *.raw, *.lime, *.kdump, *.avml, *.dmg or
// *.mem, sorted by name): the models are loaded once (shipped models: read once without their
// weights, picked per dump by its banner, the picked ones' weights read per dump) and each dump
// gets what one dump would (kernel and fit records, detections, warnings naming the dump), every
// record naming its dump (detect.hpp, name_dump_records), in the order given, written to stdout as
// each dump is done (to --output: streamed into its temporary, renamed at the end). A dump that
// fails is one line "dmdetect: error: DUMP: …" on stderr and an error record in its place in the
// output (detect.hpp format_batch_error), and the batch goes on; the output ends with a batch record
// (format_batch_summary: dumps, failed, stopped by the time limit, with hidden objects); at the end "dmdetect: error: N of M
// dumps failed" and exit status 1. An output that is one of the dumps is refused before any
// work; a write error ends the batch (status 1). Under `mpirun -np N` rank r takes the dumps i ≡ r
// (mod N) (train/distributed.hpp) and rank 0 writes every record, in the same order and bytes as
// one process.
#include "detect/detect.hpp"
#include "detect/fit.hpp"
#include "graph/file_io.hpp"
#include "graph/layers.hpp"
#include "graph/memory_budget.hpp"
#include "graph/paging.hpp"
#include "train/distributed.hpp"
#include "train/interpret.hpp"
#include "train/key_anchors.hpp"

#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

const char* kUsage =
    "usage: dmdetect [--weights M.cereal [--weights M2.cereal ...]] DUMP... [options]\n"
    "       dmdetect --list-models [--weights M.cereal ...] [--format table|json]\n"
    "  DUMP: raw/ELF/LiME/kdump/AVML memory dump, or a .dmg from `dmgraph build`; several, or a\n"
    "  directory of them: each record names its dump, `mpirun -np N` shares them out\n"
    "  without --weights: the shipped models ($DEEPMEM_MODELS, else data/models, else share/deepmem/models)\n"
    "exit status: 0 ok, 1 bad input, 2 usage error, 3 a model does not fit the dump, or its fit cannot be checked (--require-fit),\n"
    "4 a model was not run (its network past the work limit, --network-memory, or the work bound, --network-work), or the time limit (--time-limit) stopped a model, its fit check, its placement or the reading of the objects found; the others' detections are written (3 instead with --require-fit),\n"
    "or it stopped the build of a dump's memory graph (or, with --tree, the reading of its tasks): no model was run on it, or no tree made, its record says so (\"stopped\"),\n"
    "5 with --fail-on-hidden a dump's verdict is HIDDEN (before 1, 3 and 4), 7 with it objects not judged on kernel lists broken in memory\n"
    "(a smeared capture, or tampering), 6 with it a verdict INCOMPLETE or not judged (7 and 6 after 1 and 3, before 4)\n";

namespace fs = std::filesystem;

// Seconds for a message: "10 s", "4.14 s", "1e-09 s", "1082 s"
std::string format_seconds(double s) {
    char text[48];
    std::snprintf(text, sizeof text, s < 100 ? "%.3g s" : "%.0f s", s);
    return text;
}

// The time limit ran out while a dump's memory graph was being built (BuildOptions::interrupt): no
// model is run on the dump; or, with --tree, while the tasks were read: no tree (exit 4 both, its
// error line, its "stopped" record: format_batch_error).
struct BuildTimedOut : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The shipped models: every *.cereal of the first directory of $DEEPMEM_MODELS, this checkout's
// data/models and the installed share/deepmem/models that exists, sorted by name.
std::vector<std::string> shipped_models() {
    std::string dir;
    if (const char* env = std::getenv("DEEPMEM_MODELS"); env && *env) {
        dir = env;
        if (!fs::is_directory(dir)) throw InputError("DEEPMEM_MODELS=" + dir + " is not a directory");
    } else {
        for (const char* d : {DEEPMEM_SOURCE_MODELS, DEEPMEM_INSTALLED_MODELS})
            if (fs::is_directory(d)) {
                dir = d;
                break;
            }
        if (dir.empty())
            throw InputError(std::string("no --weights given and no shipped models in ") + DEEPMEM_SOURCE_MODELS +
                             " or " + DEEPMEM_INSTALLED_MODELS + " (set DEEPMEM_MODELS)");
    }
    // The folder's models and its subfolders' (e.g. multibuild/: models trained on several builds,
    // beside the ones of one build; pick_models chooses per dump).
    std::vector<std::string> files;
    auto list = [&files](const fs::path& folder, bool descend, auto&& self) -> void {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(folder, ec)) {
            if (e.path().extension() == ".cereal" && e.is_regular_file()) files.push_back(e.path().string());
            if (descend && e.is_directory()) self(e.path(), false, self);
        }
        if (ec) throw InputError("cannot list " + folder.string() + ": " + ec.message());
    };
    list(dir, true, list);
    if (files.empty()) throw InputError("no models (*.cereal) in " + dir + "; give --weights");
    // Folder by folder (fs::path compares element-wise): 6.1/ before 6.1-rt/ before 6.12/, as a
    // reader expects (byte order put 6.1-rt/ first). The order only breaks pick_models' last tie.
    std::sort(files.begin(), files.end(), [](const std::string& a, const std::string& b) { return fs::path(a) < fs::path(b); });
    return files;
}

Model load_model(const std::string& path, uint64_t* checksum = nullptr) {
    try {
        Model m = Model::load(path, checksum);
        m.drop_optimiser_state();   // detection never reads it
        return m;
    } catch (const ModelError& e) {
        throw InputError(e.what());   // Model::load names the file
    }
}

// A picked shipped model with its weights: its file read again (the shipped list holds every model
// without weights, Model::drop_weights: 40 models' weights beside the graph were ≈ 8 MiB of
// dmdetect's peak, issue #12 item 2), refused unless it holds the file's payload read first
// (`checksum`: weights edited in place were read silently, helper 65).
Model load_picked(const std::string& path, uint64_t checksum) {
    uint64_t now = 0;
    Model m = load_model(path, &now);
    if (now != checksum)
        throw InputError(path + " changed while dmdetect ran: it no longer holds the model picked for the dump");
    return m;
}

constexpr uint64_t kLargeDump = uint64_t{256} << 20;   // progress only for work that takes a while
constexpr uint32_t kLargeGraph = 200000;

// Progress on stderr: a rewritten line on a terminal, else one line per phase.
struct Progress {
    bool enabled = false, tty = false, open = false;
    void phase(const std::string& what) {
        if (!enabled) return;
        if (tty) {
            std::fprintf(stderr, "\r\033[Kdmdetect: %s", what.c_str());
            open = true;
        } else {
            std::fprintf(stderr, "dmdetect: %s\n", what.c_str());
        }
    }
    void percent(const std::string& what, uint64_t done, uint64_t total) {
        if (enabled && tty && total) {
            std::fprintf(stderr, "\r\033[Kdmdetect: %s %3d%%", what.c_str(), int(done * 100 / total));
            open = true;
        }
    }
    void end() {
        if (open) std::fputc('\n', stderr);
        open = false;
    }
};

Progress progress;   // global so that main() can end a live line before the error line

// The dumps of the command line: files as given, directories expanded to their dump files by
// name (see the header). `batch`: more than one dump, or a directory.
std::vector<std::string> dump_list(const std::vector<std::string>& args, bool& batch) {
    static const char* const kDumpNames[] = {".elf", ".raw", ".lime", ".kdump", ".avml", ".dmg", ".mem"};
    std::vector<std::string> out;
    batch = args.size() > 1;
    for (const std::string& a : args) {
        std::error_code ec;
        if (!fs::is_directory(a, ec)) {
            out.push_back(a);
            continue;
        }
        batch = true;
        std::vector<std::string> found;
        for (fs::directory_iterator it(a, ec), end; !ec && it != end; it.increment(ec)) {
            const std::string ext = it->path().extension().string();
            // a regular file, or a link that does not lead to one (dangling, to a directory …): it fails
            // in its place with an error record rather than vanish from the batch (newcomer 90)
            std::error_code type_ec;   // (the entry's own errors are its failure later, not the listing's)
            if (std::find(std::begin(kDumpNames), std::end(kDumpNames), ext) != std::end(kDumpNames) &&
                (it->is_regular_file(type_ec) || it->is_symlink(type_ec)))
                found.push_back(it->path().string());
        }
        if (ec) throw InputError("cannot list directory '" + a + "': " + ec.message());
        if (found.empty()) throw InputError("no dumps (*.elf *.raw *.lime *.kdump *.avml *.dmg *.mem) in directory '" + a + "'");
        std::sort(found.begin(), found.end());
        out.insert(out.end(), found.begin(), found.end());
    }
    return out;
}

int run(int argc, char** argv, Communicator& world) {
    po::options_description o("options");
    o.add_options()("help,h", "this text")(
        "weights,w", po::value<std::vector<std::string>>(), "model file (repeatable; default: the shipped models)")(
        "threshold", po::value<float>(), "report scores at or above this for every model (default: each model's)")(
        "no-placed-threshold",
        "keep a placed model's trained threshold where some of its placed key nodes vote for nothing in the dump (by "
        "default it is scaled to the share of the key-node weight that votes, and objects found only below it are "
        "marked below_trained_threshold)")(
        "format", po::value<std::string>()->default_value("table"), "output: table|json|csv")(
        "output,o", po::value<std::string>(), "write here (atomically) instead of stdout")(
        "format-dump", po::value<std::string>()->default_value("auto"), "dump format: raw|elf|lime|kdump|avml|auto")(
        "strict", "refuse a truncated dump, or one with compressed pages that do not decompress, instead of analysing what is present")(
        "no-density-bound", "build the graph of a kdump or AVML file denser in pointers than any real kernel (memory_graph.hpp)")(
        "dtb", po::value<std::string>(), "page-table root (physical address)")(
        "paging", po::value<std::string>(), "with --dtb: its paging mode, x86|pae|x64|la57 (as dmgraph)")(
        "threads", po::value<Whole<uint32_t>>(), "OpenMP threads (default: OMP_NUM_THREADS or all cores)")(
        "network-memory", po::value<std::string>(),
        "memory each model's network may work in, e.g. 512M or 2G; 0 = no limit (default: 1/16 of the graph, at most "
        "half the available memory); within it a network runs in row blocks, and past 4 times the whole graph's work "
        "the whole graph at once if that fits 16 times the dump's file (at least 1 GiB; a .dmg's: at most 256 times the "
        ".dmg), else not at all (exit 4)")(
        "network-work", po::value<Whole<uint32_t>>(),
        ("the GNN work each model may do, in node-iterations per 4 KiB page of the dump holding segments (at most "
         "one such page per " + std::to_string(PhysicalLayer::kCountedPageBytes / 1024) +
         " KiB of its file, or for kdump and AVML per KiB its pages take compressed), all models together " +
         std::to_string(uint32_t(DetectOptions::kScanWorkFactor)) + " times it; 0 = no bound (default " +
         std::to_string(uint32_t(DetectOptions::kNetworkWork)) + "; real kernels need at most " +
         std::to_string(kRealKernelNetworkWork) + " a model, " + std::to_string(kRealKernelScanWork) + " together" +
         "). Past it a model is not run (exit 4): a guard against dumps crafted to stall the analysis. More "
         "--network-memory lets a network repeat less work in row blocks, so it may then run within the bound, "
         "in more memory").c_str())(
        "time-limit", po::value<std::string>()->default_value("0"),
        ("seconds each dump may take, from its start (0, the default: none; auto: " + format_seconds(kTimeLimitSeconds) +
         " for a file of up to " + std::to_string(kTimeLimitFileBytes >> 20) + " MiB, " + format_seconds(kTimeLimitPerMiB) +
         " more for each MiB past it): the build of the memory graph, the networks and the search for their rows stop at " +
         std::to_string(std::lround(kTimeLimitNetworks * 100)) + "% of it; a build stopped leaves the dump unanalysed, and "
         "the models the networks had not finished are not run (exit 4 both; models run in type-name order, task_struct "
         "last: --types task_struct runs it alone); that share is kept 5 us earlier for each object found (the output's time), "
         "and the reading of the objects found stops there too, those not reached left addresses only (exit 4); the load of a "
         ".dmg and the output are not stopped. For pipelines that must bound what a dump crafted to stall the "
         "analysis costs: what it stops depends on the machine and its load, and a real compressed dump on a busy machine "
         "can meet it").c_str())(
        "quiet,q", "no progress, and no notes on which models and thresholds were used, on stderr")(
        "require-fit", "exit 3 when a model does not fit the dump's kernel, or its fit cannot be checked (detect/fit.hpp)")(
        "fail-on-hidden", "exit 5 when a dump's verdict is HIDDEN (an object the kernel's own lists miss), before 1, 3 and 4; "
        "else 7 when objects were not judged on kernel lists broken in memory (a smeared capture, or tampering), else 6 when a "
        "verdict is INCOMPLETE or not judged (some objects were not judged); 7 and 6 after 1 and 3, before 4")(
        "kernel", po::value<std::string>(), "vmlinuz/vmlinux with .BTF, or raw BTF, to read objects with [the dump's own BTF]")(
        "kallsyms", po::value<std::string>(), kKallsymsHelp)(
        "system-map", po::value<std::string>(), kSystemMapHelp)(
        "tree", "print the detected processes as a tree (hidden ones marked) instead of the objects")(
        "types", po::value<std::string>(),
        "detect only these object types (comma list, e.g. task_struct,file); a joint model runs for those alone")(
        "dump-file", po::value<std::string>(), "with a .dmg DUMP: read the objects from this copy of its dump (moved or converted since; its bytes are checked)")(
        "addresses-only", "do not read the objects' fields")(
        "list-models", "print what each model holds (the shipped ones, or --weights: type, builds, word size, thresholds, "
                       "vote window, key nodes) and exit; no DUMP");
    const auto parsed = parse_command_line(argc, argv, o, {{"dump", -1}}, kUsage);
    if (!parsed) return 0;
    const po::variables_map& vm = *parsed;
    if (vm.count("list-models")) {
        if (vm.count("dump")) throw po::error("--list-models reads model files only: no DUMP");
        const std::vector<std::string> paths =
            vm.count("weights") ? vm["weights"].as<std::vector<std::string>>() : shipped_models();
        if (paths.empty()) throw InputError("no shipped models; give --weights");
        std::vector<Model> models;
        for (const std::string& p : paths) models.push_back(load_model(p));
        const std::string text = format_model_list(models, paths, option_value(vm, "format", parse_detection_format),
                                                   !vm.count("weights"));
        refuse_output_or_stdout_over_inputs(vm, paths);
        if (vm.count("output")) write_file_atomically(vm["output"].as<std::string>(), text);
        else std::fwrite(text.data(), 1, text.size(), stdout);   // errors: finish_stdout (tools/cli.hpp)
        return 0;
    }
    if (!vm.count("dump")) throw po::error("no DUMP given");
    bool batch = false;
    const std::vector<std::string> dumps = dump_list(vm["dump"].as<std::vector<std::string>>(), batch);
    const DetectionFormat format = option_value(vm, "format", parse_detection_format);
    BuildOptions build;
    build.format = dump_format_option(vm, "format-dump");
    build.strict = vm.count("strict") > 0;
    build.density_bound = vm.count("no-density-bound") == 0;
    if (vm.count("dtb")) build.dtb = dtb_option(vm);
    if (vm.count("paging")) build.paging = paging_option(vm);   // (newcomer 90: the root search's advice names it)
    if (auto t = whole_option<uint32_t>(vm, "threads")) set_thread_count(*t, "--threads");
    std::vector<std::string> inputs = dumps;
    if (vm.count("weights"))
        for (const auto& w : vm["weights"].as<std::vector<std::string>>()) inputs.push_back(w);
    for (const char* key : {"kernel", "kallsyms", "system-map"})
        if (vm.count(key)) inputs.push_back(vm[key].as<std::string>());
    if (vm.count("tree") && vm.count("addresses-only")) throw po::error("--tree needs the fields --addresses-only leaves out");
    if (vm.count("tree") && format != DetectionFormat::Table) throw po::error("--tree prints text: no --format json|csv");
    if (vm.count("dump-file")) {
        if (vm.count("addresses-only")) throw po::error("--dump-file is read for the fields --addresses-only leaves out");
        if (dumps.size() != 1 || !MemoryGraph::is_graph_file(dumps.front()))
            throw po::error("--dump-file goes with one .dmg DUMP (dmgraph build's output): the dump it was built from, moved since");
        inputs.push_back(vm["dump-file"].as<std::string>());
    }
    refuse_output_or_stdout_over_inputs(vm, inputs);
    const std::vector<std::string> only = type_list_option(vm, "types");
    if (vm.count("tree") && !only.empty() && only != std::vector<std::string>{"task_struct"})
        throw po::error("--tree shows tasks: --types task_struct, or no --types");
    DetectOptions detect;
    if (vm.count("threshold")) detect.threshold = vm["threshold"].as<float>();
    detect.measure_agreement = true;
    if (vm.count("network-memory")) try {
            detect.memory_budget = parse_size(vm["network-memory"].as<std::string>(), "--network-memory");
        } catch (const InputError& e) {
            throw po::error(e.what());
        }
    if (vm.count("network-work")) detect.network_work = vm["network-work"].as<Whole<uint32_t>>().value;
    // --time-limit: seconds (0, the default: none) or, none here, auto (default_time_limit of each dump's file)
    std::optional<double> time_limit;
    if (const std::string t = vm["time-limit"].as<std::string>(); t != "auto") {
        double v = 0;
        const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec != std::errc{} || end != t.data() + t.size() || !(v >= 0 && v < 1e9))
            throw po::error("--time-limit " + t + ": expected auto or a number of seconds, 0 (none) to under 1e9");
        time_limit = v;
    }

    // Explicit models, or every shipped one: the graph is built with the first one's parameters
    // and the models that fit its kernel banner best are picked after.
    Detector detector;
    std::vector<Model> shipped;
    std::vector<std::string> shipped_paths;
    std::vector<uint64_t> shipped_checksums;   // each file's payload checksum when read (load_picked)
    GraphParams shipped_params;                // the graph parameters most of them share
    if (vm.count("weights")) {
        for (const auto& w : vm["weights"].as<std::vector<std::string>>()) detector.add_model(w);
        if (!only.empty()) detector.keep_types(only);
    } else {
        for (const auto& p : shipped_models()) {
            uint64_t checksum = 0;
            Model m = load_model(p, &checksum);
            if (m.joint()) {   // picked per type among single-type models (pick_models): a joint one is given with -w
                if (!vm.count("quiet") && world.rank() == 0)
                    std::fprintf(stderr, "dmdetect: note: joint model %s (%s) not used without --weights\n",
                                 terminal_text(p).c_str(), m.object_type.c_str());
                continue;
            }
            // --tree shows tasks only: the other types' models would run for nothing (newcomer 17:
            // 29.6 s with all six against 3.6 s with the task_struct model alone).
            if (vm.count("tree") && m.object_type != "task_struct") continue;
            if (!only.empty() && std::find(only.begin(), only.end(), m.object_type) == only.end()) continue;
            m.drop_weights();   // the picked ones are read again (load_picked)
            shipped.push_back(std::move(m));
            shipped_paths.push_back(p);
            shipped_checksums.push_back(checksum);
        }
        // The graph parameters most shipped models share (the word size is the dump's): one model
        // with others in the folder would otherwise build every dump's graph with them.
        std::vector<std::pair<GraphParams, size_t>> counts;
        for (const Model& m : shipped) {
            GraphParams g = m.graph;
            g.word_size = 8;
            auto at = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == g; });
            if (at == counts.end()) counts.push_back({g, 1});
            else ++at->second;
        }
        if (!counts.empty())
            shipped_params = std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
                                 return a.second < b.second;
                             })->first;
        if (shipped.empty())
            throw InputError(vm.count("tree")   ? "--tree: no shipped task_struct model; give --weights"
                             : !only.empty()    ? "--types " + vm["types"].as<std::string>() + ": no shipped model of these types"
                                                : "no shipped single-type model (a joint model is given with --weights)");
    }

    // A --threshold at or below one key node's vote (Model::single_vote_bound, which a model file may
    // not have) is allowed, to list every candidate, but said once per model (attacker 13: 0 and 1e-45
    // gave 127 false task_structs on the dev dump, silently).
    std::set<std::string> warned;
    auto warn_low_threshold = [&](const Model& m, const std::string& source) {
        const float bound = m.single_vote_bound();
        if (!detect.threshold || *detect.threshold > bound || !(*detect.threshold >= 0) || !warned.insert(source + '\n' + m.object_type).second ||
            world.rank() != 0)
            return;   // (a negative or NaN one is the Detector's error)
        std::fprintf(stderr,
                     "dmdetect: warning: --threshold %g is at or below one key node's vote for model %s (%s: weight %g): "
                     "every base that key node voted for is reported\n",
                     double(*detect.threshold), m.object_type.c_str(), source.c_str(), double(bound));
    };

    progress.tty = ::isatty(STDERR_FILENO) == 1;
    const bool show = !vm.count("quiet") && world.rank() == 0;
    // One dump: what dmdetect writes for it (named in a batch); `fits` false when a model does not fit.
    // `judged`: the dump's verdict on hiding: 'H' HIDDEN, 'S' objects not judged on lists broken in memory (a
    // smeared capture, or tampering), 'I' incomplete (INCOMPLETE or not judged), '-' complete and clean
    auto analyse = [&](const std::string& dump, bool& fits_all, bool& complete, char& judged) {
        const auto started = InferenceNet::Clock::now();   // --time-limit counts from here
        const std::string who = batch ? dump + ": " : "";   // warnings name the dump in a batch
        // The dump's warnings, on stderr and in the output too (format_warnings): its
        // layers' and page tables' (a truncated file, tables past its end …), the memory it lacks
        // (reviewer 83: those of the graph build only on stderr)
        std::vector<std::string> dump_warnings;
        build.warn = [&who, &dump_warnings](const std::string& w) {
            progress.end();
            dump_warnings.push_back(w);
            print_warnings("dmdetect", {who + w});
        };
        std::error_code ec;
        const auto size = fs::file_size(dump, ec);
        const uint64_t held = ec ? 0 : std::min<uint64_t>(size, held_bytes(dump));   // a sparse file's holes left out
        // --time-limit: the graph build — its steps stop at `deadline` (BuildOptions::interrupt:
        // BuildTimedOut, the dump's "stopped" record; a .dmg's load is not stopped) — and the networks
        // after it (detect.deadline) get kTimeLimitNetworks of it; a build that ends later leaves no
        // network any time. auto: by the bytes the file holds (a .dmg's own, not the dump size its
        // header claims: reviewer 96).
        const double limit = time_limit.value_or(default_time_limit(held));
        const auto deadline = limit > 0 && limit < 1e9   // (auto: a file of 500 TB)
                                  ? started + std::chrono::duration_cast<InferenceNet::Clock::duration>(
                                                  std::chrono::duration<double>(limit * kTimeLimitNetworks))
                                  : InferenceNet::Clock::time_point::max();
        const std::string limit_text = format_seconds(limit) + " (" + (time_limit ? "--time-limit" : "--time-limit auto") + ")";
        // (by value: `build` outlives this dump)
        build.interrupt = [deadline, started, limit, limit_text] {
            if (const auto now = InferenceNet::Clock::now(); now >= deadline)
                throw BuildTimedOut("the time limit of this dump, " + limit_text + ", ran out while its memory graph was being built "
                                    "(its build's share, " + format_seconds(limit * kTimeLimitNetworks) + ", stopped it " +
                                    format_seconds(std::chrono::duration<double>(now - started).count()) +
                                    " after its start): no model was run; --time-limit 0 runs it to the end (a dump crafted to "
                                    "stall the analysis, a dense one, or a busy machine?)");
        };
        progress.enabled = show && held > kLargeDump;
        progress.phase("memory graph of " + dump);
        build.progress = [&](uint64_t done, uint64_t total) { progress.percent("memory graph of " + dump, done, total); };
        build.estimate = [&](const GraphEstimate& e) {   // large dumps only, as the progress
            if (!progress.enabled) return;
            progress.end();
            std::fprintf(stderr, "dmdetect: %smemory graph: %s; %s\n", who.c_str(), describe(e).c_str(),
                         describe(available_memory()).c_str());
        };
        std::optional<MemoryStage> stage;
        stage.emplace("reading the memory graph of " + dump);
        // Shipped models: the graph is built with the parameters most of them share, and checked
        // once they are picked (a dump's built again when the picked ones' differ: helper 65).
        MemoryGraph graph = shipped.empty() ? detector.open_graph(dump, build) : Detector::open_graph(dump, shipped_params, build);
        progress.end();
        const bool image_lacking = lacks_kernel_image(graph);
        Detector picked;   // the shipped models that fit this dump's banner best, with their weights (per dump in a batch)
        Detector& used = shipped.empty() ? detector : picked;
        used.reset_to_trained();   // the models as given: a placement or scaling is one dump's (reviewer 85)
        if (!shipped.empty()) {
            std::vector<std::string> notes;   // which model of a type was chosen over which, and why
            const std::vector<size_t> chosen = pick_models(shipped, graph.info().kernel_banner, &notes, shipped_paths,
                                                           graph.params().word_size, image_lacking);
            for (size_t i : chosen) picked.add_model(load_picked(shipped_paths[i], shipped_checksums[i]), shipped_paths[i]);
            if (!vm.count("quiet"))   // which model was picked is not news to a script (newcomer 18: -q still printed it)
                for (const auto& n : notes) std::fprintf(stderr, "dmdetect: note: %s%s\n", who.c_str(), n.c_str());
            if (picked.model_count() == 0)
                throw InputError(who + "no shipped model is for this dump's " + word_size_text(graph.params().word_size) +
                                 "; give --weights");
            // (the word sizes agree: the models were picked by the graph's)
            if (picked.graph_params() != graph.params() && !MemoryGraph::is_graph_file(dump)) {
                graph = MemoryGraph();
                graph = Detector::open_graph(dump, picked.graph_params(), build);
                progress.end();
            }
            picked.check_graph(graph);
        }
        stage.emplace("detecting objects in the memory graph of " + dump + " (" +
                      std::to_string(graph.node_count()) + " nodes)");
        // --time-limit: the networks' deadline, at kTimeLimitNetworks of it (the rest for what follows
        // them: votes, the objects read, the output).
        const double built_seconds = std::chrono::duration<double>(InferenceNet::Clock::now() - started).count();
        detect.deadline = deadline;
        detect.seconds_per_detection = kOutputSecondsPerObject;   // (none without a limit: deadline max)
        const GraphBuildInfo info = graph.info();   // a copy: the graph is freed before the objects are read
        const bool long_gap_nodes = graph.params().long_gap_nodes;
        const std::optional<FoundBanner>& banner = info.kernel_banner;
        // The .dmg's segments the dump read next must hold (interpret_detections); --dump-file's
        // copy is checked now, before the models run: a file that is not the graph's dump is an
        // error, not a note, since the user named it (newcomer 18, attacker 18).
        InterpretInputs in;
        if (!vm.count("addresses-only")) in.sample = sample_segments(graph);
        if (vm.count("dump-file")) {
            const std::string file = vm["dump-file"].as<std::string>();
            if (in.sample.segments.empty())
                throw InputError("--dump-file " + file + ": the graph has no segment to compare it with");
            std::unique_ptr<PhysicalLayer> phys;
            try {
                phys = PhysicalLayer::open(file, build.format);
            } catch (const std::exception& e) {
                throw InputError("--dump-file " + file + ": " + e.what());
            }
            if (const size_t bad = sample_mismatches(*phys, in.sample))
                throw InputError("--dump-file " + file + " is not the dump " + dump + " was built from (" + std::to_string(bad) +
                                 " of " + std::to_string(in.sample.segments.size()) + " sampled segments differ)");
            in.dump_file = file;
            if (!vm.count("quiet"))
                std::fprintf(stderr, "dmdetect: note: %sobjects read from %s: %zu sampled segments of the graph match it (a "
                                     "check against another dump, not against edits: compare its hash with the acquisition's)\n",
                             who.c_str(), terminal_text(file).c_str(), in.sample.segments.size());
        }

        for (size_t i = 0; i < used.model_count(); ++i) warn_low_threshold(used.model(i), used.source(i));
        if (vm.count("tree")) {   // newcomer 18: `-w cred.cereal --tree` printed "processes: 0"
            bool tasks = false;
            for (size_t i = 0; i < used.model_count(); ++i) tasks = tasks || used.model(i).object_type == "task_struct";
            if (!tasks) throw InputError("--tree shows tasks: no task_struct model among the models used");
        }
        progress.enabled = show && graph.node_count() > kLargeGraph;
        // (past the deadline: said not run, newcomer 104; one the deadline, moved earlier for the objects the
        // models before found, reaches before its run says so only in its warning)
        detect.progress = [&](size_t i, size_t n, const std::string& type) {
            progress.phase(who + "model " + std::to_string(i + 1) + "/" + std::to_string(n) + " (" + type + ")" +
                           (InferenceNet::Clock::now() >= detect.deadline ? ": not run, the time limit ran out" : ""));
        };
        std::vector<Detection> found = used.detect(graph, detect);
        progress.end();
        // A model with key nodes anchored at struct members (model format 8) that does not fit this
        // dump as trained, or finds nothing — another build moved its fields — is placed in the dump's layout by the
        // kernel's own BTF, or --kernel's (train/key_anchors.hpp), and the models run again: a moved
        // field then still votes for its object's base. One that fits as trained is never moved, so
        // a dump whose BTF or banner was edited cannot move the votes of a model that works without
        // them (attacker 68: both edited, every task reported 8 bytes off); where placement is used,
        // the model did not fit without it.
        // Memory the kernel maps that the dump lacks (a cut or partial capture, MMIO): objects beside it
        // lose their neighbours' votes, which the fit check then does not read as a moved layout
        // (detect/fit.hpp). Page tables the dump lacks count too (a cut below the kernel's tables:
        // absent_pages then counts only what the surviving tables map, 15 MiB where 128 MiB were cut).
        const bool lacks_pages = info.absent_pages * 64 >= info.kernel_pages && info.absent_pages >= 256;
        const MemoryLack lack = info.absent_table_bytes > 0 ? MemoryLack::Tables
                                : lacks_pages               ? MemoryLack::Pages
                                                            : MemoryLack::None;
        std::vector<std::string> placed(used.model_count());
        std::vector<std::string> scaled_thresholds;   // warnings, said with the others below
        std::vector<std::optional<float>> trained_at(used.model_count());   // a scaled model's threshold before
        std::vector<std::string> note_warnings;          // notes said in the output too (warnings there): objects not read, lists not read whole
        std::vector<std::string> verdict_why;         // why the dump's verdict on hiding is incomplete (dump_verdict)
        std::vector<char> moved(used.model_count(), 0);   // key nodes placed in this dump's layout (and moved)
        size_t unplaced_for_time = 0;   // models not placed in it, or placed and given back, for the time limit
        if (vm.count("tree") && shipped.size())   // (the types no model ran for: dump_verdict)
            verdict_why.push_back("--tree runs the shipped task_struct models alone");
        // A scaled model's fit is judged on the placed run's votes, at the threshold it was calibrated
        // at: the scaled run's candidate objects include bases its lower threshold lets half-voted
        // groups reach (reviewer 85: 6.12's agreement read 146 of 263 for 146 of 146)
        std::vector<std::optional<VoteAgreement>> placed_agreements(used.model_count());
        {
            std::vector<size_t> todo;
            for (size_t i = 0; i < used.model_count(); ++i) {
                const Model& m = used.model(i);
                if (m.anchored_key_nodes() == 0 || !used.last_not_run().at(i).empty())
                    continue;
                const ScoreReach reach{used.last_thresholds().at(i), used.last_best_scores().at(i)};
                const bool none = std::none_of(found.begin(), found.end(), [&](const Detection& d) { return d.type == m.object_type; });
                if (none || !assess_fit(m, used.source(i), banner, used.last_agreements().at(i), reach, lack).fits) todo.push_back(i);
            }
            // Placing runs every model again: past the deadline they would all stop, the detections
            // made losing to "not run" (--time-limit)
            const std::string unplaced = "it does not fit as trained, or found nothing, and its key nodes were not placed in this "
                                         "dump's layout: the time limit ran out (--time-limit)";
            if (!todo.empty() && InferenceNet::Clock::now() >= detect.deadline) {
                for (size_t i : todo) placed[i] = unplaced;
                unplaced_for_time += todo.size();
                todo.clear();
            }
            // ... and a re-run the time limit stops gives back this run, its detections kept (reviewer 96;
            // every model of this run ran: a model stopped here leaves no time, and `todo` empty)
            std::optional<Detector> first;
            std::vector<Detection> found_first;
            if (!todo.empty() && detect.deadline != InferenceNet::Clock::time_point::max()) first = used, found_first = found;
            std::vector<size_t> moved_models;
            auto given_back = [&] {   // whether a re-run was stopped, and this run given back
                if (!first || std::none_of(used.last_timings().begin(), used.last_timings().end(),
                                           [](const ModelTiming& t) { return t.timed_out; }))
                    return false;
                used = std::move(*first);
                found = std::move(found_first);
                first.reset();
                for (size_t i : moved_models) {
                    placed[i] = "it does not fit as trained, or found nothing: its key nodes were placed in this dump's layout, "
                                "but the run with them stopped at the time limit, and the run as trained is kept (--time-limit)";
                    moved[i] = 0, trained_at[i].reset(), placed_agreements[i].reset();
                    if (!vm.count("quiet"))
                        std::fprintf(stderr, "dmdetect: note: %smodel %s (%s): %s\n", who.c_str(), used.model(i).object_type.c_str(),
                                     terminal_text(used.source(i)).c_str(), placed[i].c_str());
                }
                scaled_thresholds.clear();
                unplaced_for_time += moved_models.size();
                return true;
            };
            std::optional<btf::Btf> btf;
            std::string why;
            if (!todo.empty()) {
                stage.emplace("reading the kernel's types from " + dump);
                InterpretInputs from = in;
                from.format = build.format;
                from.deadline = detect.deadline;   // (the placement's runs stop there too)
                if (vm.count("kernel")) from.kernel_file = vm["kernel"].as<std::string>();
                try {
                    btf = graph_dump_btf(info, from, why);
                } catch (const std::exception& e) {
                    why = e.what();
                }
                if (!btf && InferenceNet::Clock::now() >= detect.deadline) {   // (its search stopped: as above)
                    for (size_t i : todo) placed[i] = unplaced;
                    unplaced_for_time += todo.size();
                    todo.clear();
                }
            }
            for (size_t i : todo) {
                Model m = used.model(i);
                const std::string build_text = std::string(to_string(match_build(m, banner)));
                try {   // a crafted BTF (a struct containing itself …) is this model's failure, not the run's
                    if (!btf) throw InputError("no BTF: " + why);
                    const Placement p = place_model(m, flat_members(*btf, m.object_type));
                    if (p.moved) used.set_key_nodes(i, std::move(m.key_nodes)), moved_models.push_back(i), moved[i] = 1;
                    placed[i] = "it does not fit as trained, or found nothing: key nodes placed in this dump's layout by the kernel's BTF (" +
                                build_text + (vm.count("kernel") ? ", --kernel" : ", from the dump") + "): " + p.text();
                } catch (const std::exception& e) {
                    placed[i] = std::string("it does not fit as trained, or found nothing, and its key nodes were not placed in this dump's layout: ") +
                                e.what();
                }
                if (!vm.count("quiet"))
                    std::fprintf(stderr, "dmdetect: note: %smodel %s (%s): %s\n", who.c_str(), used.model(i).object_type.c_str(),
                                 terminal_text(used.source(i)).c_str(), placed[i].c_str());
            }
            if (!moved_models.empty()) {
                stage.emplace("detecting objects in the memory graph of " + dump + " with placed key nodes");
                found = used.detect(graph, detect);
                progress.end();
                const bool stopped = given_back();
                // Placed key nodes still silent on this dump add nothing to any score here: the
                // threshold keeps its share of the weight that can vote (detect/fit.hpp Placed
                // threshold), unless the user chose it (--threshold).
                bool scaled = false;
                for (size_t i : moved_models) {   // (reset_to_trained above: the model's trained thresholds)
                    if (stopped) break;   // given back: nothing placed to scale
                    const std::optional<double> scale =
                        vm.count("threshold") || vm.count("no-placed-threshold") || !used.last_not_run().at(i).empty()
                            ? std::nullopt
                            : placed_threshold_scale(used.model(i), used.last_agreements().at(i), used.last_thresholds().at(i));
                    if (!scale) continue;
                    const float before = used.last_thresholds().at(i);
                    used.scale_threshold(i, *scale);
                    scaled = true;
                    char share[16];
                    std::snprintf(share, sizeof share, "%.0f%%", 100 * (1 - *scale));
                    const std::string scaled_to = "threshold " + score_text(before) + " scaled to " + score_text(float(before * *scale));
                    const std::string text = scaled_to + ", the share of the key-node weight that votes here: key nodes of " + share +
                                             " of it, placed or kept, vote for at most half its candidate objects; its objects scoring under " +
                                             score_text(before) + " are marked below_trained_threshold (--no-placed-threshold keeps " +
                                             score_text(before) + ")";
                    placed[i] += "; its " + scaled_to + " (warning), its votes judged at " + score_text(before);
                    placed_agreements[i] = used.last_agreements().at(i);
                    trained_at[i] = before;
                    // in the output too, whatever the format and -q: a script's detections are made at it
                    scaled_thresholds.push_back("model " + used.model(i).object_type + " (" + used.source(i) + "), placed in this dump's layout: " + text);
                }
                if (scaled) {
                    stage.emplace("detecting objects in the memory graph of " + dump + " at the placed models' thresholds");
                    found = used.detect(graph, detect);
                    progress.end();
                    given_back();
                }
            }
        }
        // Done with the graph: free it (a built graph's arrays, a .dmg's mapped pages) so that it and the
        // dump pages and kernel types read next never count at once (issue #12 item 2: 229 → 196 MB peak on the dev dump).
        graph = MemoryGraph();
        bool objects_timed_out = false;   // the time limit stopped the reading of the objects (Interpreted::timed_out)
        if (!vm.count("addresses-only")) {
            in.format = build.format;
            in.memory_lacking = lack != MemoryLack::None;
            in.absent_pages = info.absent_pages;
            for (auto [key, file] : {std::pair{"kernel", &in.kernel_file}, std::pair{"kallsyms", &in.kallsyms_file},
                                     std::pair{"system-map", &in.system_map_file}})
                if (vm.count(key)) *file = vm[key].as<std::string>();
            // the networks' deadline, less the output's time
            in.deadline = earlier_by(detect.deadline, double(found.size()) * kOutputSecondsPerObject);
            stage.emplace("reading the objects found in " + dump);
            progress.phase("reading the objects" + (batch ? " of " + dump : std::string()));   // (newcomer 87: a batch line without its dump)
            const Interpreted read = interpret_detections(info, found, in);
            const std::vector<std::string>& notes = read.notes;
            objects_timed_out = read.timed_out;
            progress.end();
            // --tree is made of the fields: without them it would print an empty tree (newcomer 18:
            // "processes: 0" and exit 0 for 487 detected tasks). The time limit's stop is the dump's
            // "stopped" record, exit 4 (reviewer 106 M1: an error, exit 1).
            const bool unread = std::any_of(found.begin(), found.end(), [](const Detection& d) {
                return d.type == "task_struct" && d.fields.empty();
            });
            if (vm.count("tree") && unread && objects_timed_out)
                throw BuildTimedOut("the time limit of this dump, " + limit_text + ", ran out while the objects found were read, "
                                    "before every task's fields, which --tree needs (" +
                                    format_seconds(std::chrono::duration<double>(InferenceNet::Clock::now() - started).count()) +
                                    " after its start); --time-limit 0 runs it to the end");
            if (vm.count("tree") && unread)
                throw InputError(who + "--tree needs the tasks' fields, which were not read: " +
                                 (notes.empty() ? std::string("no reason given") : notes.front()));
            for (const auto& n : notes) {
                std::fprintf(stderr, "dmdetect: note: %s%s\n", who.c_str(), n.c_str());
                // objects left unread (no BTF, a dump that moved …): a warning in the output too, a file of
                // bare addresses said nowhere why (newcomer 84 M4: the i386 dump's 13,391 rows)
                if (n.starts_with("objects not read")) note_warnings.push_back(n);
                if (n.starts_with(kKernelDataDisagree) || n.starts_with(kKernelDataPlanted))
                    note_warnings.push_back(n);   // planted copies? (attacker 108)
                if (n.find(kNoCrossView) != std::string::npos) verdict_why.push_back(n);
                // a kernel list broken at memory the dump lacks, or, where it lacks none, broken in memory
                if (n.starts_with(kViewsCutNote) || n.starts_with(kHeadPrevNote) || n.starts_with(kIdrOddNote))
                    note_warnings.push_back(n);
            }
        }
        // Models whose network needed more work a page than the default bound allows (refused by it,
        // or run because it was lifted or raised): what real kernels' graphs never need (detect.hpp
        // kRealKernelNetworkWork), so a dump crafted to stall the analysis — said even when the bound
        // let them run (newcomer 79: --network-work 0 gave a clean-looking empty report), and then
        // no advice to lower the threshold on it.
        const uint64_t counted = used.last_counted_pages();   // the pages the network work bound counted
        std::vector<double> work_per_page(used.model_count());
        double scan_per_page = 0;   // all models together (DetectOptions::scan_work_factor)
        bool model_heavy = false;   // one model refused by the bound, or past the default's part
        for (size_t i = 0; i < used.model_count(); ++i) {
            const ModelTiming& t = used.last_timings().at(i);
            work_per_page[i] = double(t.work) / double(std::max<uint64_t>(1, counted));
            scan_per_page += work_per_page[i];
            model_heavy = model_heavy || t.capped || work_per_page[i] > DetectOptions::kNetworkWork;
        }
        const double default_scan = DetectOptions::kNetworkWork * DetectOptions::kScanWorkFactor;
        const bool heavy = model_heavy || scan_per_page > default_scan;
        // What needed `per_page` past the default bound, one model's or (`together`) all models', run
        // because --network-work lifted or raised it.
        auto past_default = [&](const std::string& what, double per_page, bool together) {
            const double bound = together ? default_scan : DetectOptions::kNetworkWork;
            const uint32_t real = together ? kRealKernelScanWork : kRealKernelNetworkWork;
            char text[32];
            std::snprintf(text, sizeof text, "%.0f", std::ceil(per_page));
            // (done, not the estimate the bound is checked against before a run, which can be higher:
            // newcomer 84 ran --network-work with a forced run's "needed 723" and was refused at 772)
            return what + " needed " + text + " node-iterations per counted page of this dump (" + std::to_string(counted) +
                   " pages; the bound is checked before the run against an estimate, which can be higher), past the default network work bound" + (together ? " for all models together" : "") +
                   " of " + std::to_string(uint32_t(bound)) + ", which --network-work " +
                   std::to_string(uint64_t(detect.network_work)) + (detect.network_work == 0 ? " lifted" : " raised") +
                   "; real kernels' graphs need at most " + std::to_string(real) + ": a dump crafted to stall the analysis?";
        };
        // Warnings on stderr and in the output too (format_warnings), in every format (a CSV's before
        // its header, "# warning: " lines): the dump's (dump_warnings above: its layers', the memory it
        // lacks), then the models' (a run incomplete or forced) (newcomer 82: the dump's were no JSON
        // record; newcomer 84: a CSV of a cut dump said nothing of the cut)
        std::vector<std::string> warnings;
        auto say = [&](std::vector<std::string>& into, std::string line) {
            into.push_back(std::move(line));
            std::fprintf(stderr, "dmdetect: warning: %s%s\n", who.c_str(), into.back().c_str());
        };
        auto warn = [&](std::string line) { say(warnings, std::move(line)); };
        for (std::string& line : scaled_thresholds) warn(std::move(line));
        for (std::string& line : note_warnings) warnings.push_back(std::move(line));   // (a note on stderr, above)
        // the memory the dump lacks (`lack`): what the surviving page tables map; with tables lost, more
        // (newcomer 87: "lacks 2.3 MiB" of a file cut 212 MiB short)
        const std::string lacking = (info.absent_table_bytes ? "at least " : "") + format_bytes(info.absent_pages * 4096) +
                                    " of the memory the kernel maps" +
                                    (info.absent_table_bytes ? ", and the page tables of up to " + format_bytes(info.absent_table_bytes) +
                                                                   " of kernel address space"
                                                             : "");
        // The memory the dump lacks (`lack` above), said once, whatever the models found (tester 11: a
        // raw dump cut 16 MiB short, 0 of 451 task_structs at the model's threshold, 451 at 3/4 of
        // it; models trained with [batch] absent_rate find them). In the output too (newcomer 82).
        if (lack != MemoryLack::None)
            say(dump_warnings, "the dump lacks " + format_bytes(info.absent_pages * 4096) + " of memory the kernel maps (" +
                 std::to_string(info.absent_pages) + " pages" +
                 (info.absent_table_bytes ? ", and the page tables of up to " + format_bytes(info.absent_table_bytes) +
                                                " of kernel address space"
                                          : "") +
                 ": a cut or partial capture?); objects beside it score lower" +
                 (heavy ? "" : ": a lower --threshold may find more, at a cost in precision"));
        // The image's window maps (next to) nothing present although the banner lies in memory: the
        // image is in the dump and its page tables do not map it (attacker 16: one bit of the image's
        // PDPT entry cleared on an intact dump read as a cut).
        if (image_lacking && banner && !banner->in_kernel_image())
            say(dump_warnings, "the kernel image's window maps " + format_bytes(info.kernel_image_bytes.value_or(0)) +
                 " of present memory, yet its banner lies in the dump at paddr " + hex(banner->paddr) +
                 ": the image is there but its page tables do not map it (edited page tables?); the models detect "
                 "as on a dump without the image");
        // A .dmg before version 6 does not say whether the image is there: a cut dump's graph then
        // gets the models' full thresholds (attacker 16: 0 of 140 task_structs, silently).
        if (!info.kernel_image_bytes && paging::scheme_of(info.paging).sign_extend && info.absent_table_bytes > 0)
            std::fprintf(stderr,
                         "dmdetect: note: %sthis .dmg does not record whether the dump holds the kernel image (made before "
                         "version 6): rebuild it from the dump (dmgraph build) for the models' thresholds of dumps without "
                         "it\n",
                         who.c_str());
        // A graph without long gaps' nodes (memory_graph.hpp) has no node for an object whose last
        // segment runs into memory without pointers (a slab page's last cred): those cannot vote.
        if (!long_gap_nodes)
            std::fprintf(stderr,
                         "dmdetect: note: %sthis .dmg has no long gaps' nodes (made before version 7, or with "
                         "--no-long-gap-nodes): objects whose last segment runs into memory without pointers (a slab "
                         "page's last cred) cannot vote; rebuild it from the dump (dmgraph build) to find them\n",
                         who.c_str());
        // A model with a threshold for dumps without the kernel image used it (detect.hpp,
        // detection_threshold): said once per such model.
        for (size_t i = 0; i < used.model_count(); ++i)
            if (const Model& m = used.model(i);
                !vm.count("quiet") && !detect.threshold && m.image_absent_threshold > 0 && used.last_thresholds().at(i) != m.threshold)
                std::fprintf(stderr,
                             "dmdetect: note: %sthe dump lacks the kernel image: model %s detects at %s, its threshold "
                             "for such dumps (%s otherwise)\n",
                             who.c_str(), m.object_type.c_str(), score_text(used.last_thresholds().at(i)).c_str(),
                             score_text(m.threshold).c_str());
        std::vector<ModelFit> fits;
        fits_all = true;
        complete = !objects_timed_out;   // (exit 4, as for a model the limit stopped)
        for (size_t i = 0; i < used.model_count(); ++i) {
            // Found nothing even where candidates were voted for (attacker 12: --threshold 20.5 left 1
            // candidate object, reported none, and no word was said): the reason says why in scores.
            const ScoreReach reach{used.last_thresholds().at(i), used.last_best_scores().at(i)};
            fits.push_back(assess_fit(used.model(i), used.source(i), banner,
                                      placed_agreements[i].value_or(used.last_agreements().at(i)), reach, lack));
            judge_fields(fits.back(), found, lack);   // the objects' fields, read above (none with --addresses-only)
            // Past the network's work limit (detect.hpp DetectOptions::work_limit): not run, so neither
            // found nothing nor checked; or its fit check saw the voting rows' votes only.
            ModelFit& f = fits.back();
            if (!placed[i].empty()) add_reason(f, placed[i]);
            f.trained_threshold = trained_at[i];
            // the option that lifts the refusal: the work bound's, or the memory budget's
            const char* lift = used.last_timings().at(i).timed_out ? " (--time-limit)"
                               : used.last_timings().at(i).capped  ? " (--network-work)"
                                                                   : " (--network-memory)";
            if (const std::string& not_run = used.last_not_run().at(i); !not_run.empty()) {   // exit status 4 (3 with --require-fit)
                f.checked = false;
                f.not_run = not_run + lift;
                f.reason = "not run";
                fits_all = false;
                complete = false;
                warn("model " + f.type + " (" + f.source + ") not run: " + f.not_run);
                continue;
            }
            if (!used.last_timings().at(i).capped && work_per_page[i] > DetectOptions::kNetworkWork)
                warn(past_default("model " + f.type + " (" + f.source + ")", work_per_page[i], false));
            if (const std::string& whole = used.last_ran_whole().at(i); !whole.empty()) {
                add_reason(f, whole);
                std::fprintf(stderr, "dmdetect: warning: %smodel %s (%s): %s\n", who.c_str(), f.type.c_str(),
                             f.source.c_str(), whole.c_str());
            }
            if (const std::string& unmeasured = used.last_unmeasured().at(i); !unmeasured.empty()) {
                add_reason(f, "its votes were measured on its voting rows only, the agreement rows not run: " + unmeasured + lift);
                // the work bound's (real kernels' graphs never reach it): said as a warning, in the output
                // too (newcomer 82: a run past the bound for all models together exited 0 with no record)
                if (used.last_timings().at(i).capped || used.last_timings().at(i).timed_out)
                    warn("model " + f.type + " (" + f.source + "): its fit check's agreement rows not run, "
                         "its votes measured on its voting rows only: " + unmeasured + lift);
            }
            f.found = uint64_t(std::count_if(found.begin(), found.end(), [&](const Detection& d) { return d.type == f.type; }));
            const bool none = *f.found == 0;
            if (f.fits && !f.checked && vm.count("require-fit")) {
                fits_all = false;
                // (helper 69: a per-build model with 193 of 193 agreeing was blamed on missing key nodes)
                const std::string why =
                    "build " + std::string(to_string(f.build)) +
                    (f.agreement.objects < kMinAgreementObjects
                         ? ", " + std::to_string(f.agreement.objects) + " candidate object" +
                               (f.agreement.objects == 1 ? "" : "s") + ", " + std::to_string(kMinAgreementObjects) +
                               " needed to measure the votes"
                     : !f.not_judged.empty() ? ": its votes are not judged: " + f.not_judged + " (they cannot show a moved layout)"
                                             : ": the key nodes it misses may be the memory the dump lacks or a moved layout");
                std::fprintf(stderr, "dmdetect: warning: %smodel %s (%s): its fit to this dump cannot be checked (%s): "
                             "--require-fit fails\n", who.c_str(), f.type.c_str(), f.source.c_str(), why.c_str());
            }
            if (f.fits && !none) continue;
            // found nothing where memory is missing: said in its reason (newcomer 84: a cut
            // dump's module model, "yes" and 0 found, its reason only hedged guesses)
            if (f.fits && lack != MemoryLack::None)
                add_reason(f, "the dump lacks " + lacking + ": its objects may lie there");
            fits_all = fits_all && f.fits;
            std::fprintf(stderr, "dmdetect: warning: %smodel %s (%s) %s: %s\n", who.c_str(), f.type.c_str(),
                         f.source.c_str(), f.fits ? "found nothing in this dump" : "does not fit this dump", f.reason.c_str());
        }
        // Several models refused by the work bound: the one value that runs them all (newcomer 84 M2:
        // three warnings, three values, and none said which runs all of them), each model's need and
        // the scan's (all models together, scan_work_factor times it) — an estimate, as each one is.
        {
            uint64_t refused = 0;
            double per_page = 0, together = scan_per_page;   // (work_per_page above: what each did)
            for (size_t i = 0; i < used.model_count(); ++i) {
                const ModelTiming& t = used.last_timings().at(i);
                if (!t.capped || used.last_not_run().at(i).empty()) continue;
                ++refused;
                const double need = std::max(double(t.needed) / double(std::max<uint64_t>(1, counted)), work_per_page[i]);
                per_page = std::max(per_page, need);
                together += need - work_per_page[i];
            }
            if (refused >= 2 && detect.network_work > 0) {
                // (scan_work_factor 0: no bound for all models together)
                const double all = std::ceil(detect.scan_work_factor > 0 ? std::max(per_page, together / detect.scan_work_factor) : per_page);
                char text[512];
                std::snprintf(text, sizeof text, "%llu models not run by the network work bound: --network-work %.0f runs them "
                              "all (an estimate: the networks did %.0f node-iterations a counted page, the refused ones "
                              "need about %.0f more, %.1f times the network work of this run)",
                              (unsigned long long)refused, all, scan_per_page, std::max(0.0, together - scan_per_page),
                              together / std::max(scan_per_page, 1.0));
                warn(text);
            }
        }
        // The time limit ran out: what it stopped, and what runs them to the end
        {
            size_t stopped = 0, cut = 0;
            for (size_t i = 0; i < used.model_count(); ++i)
                if (used.last_timings().at(i).timed_out) ++(used.last_not_run().at(i).empty() ? cut : stopped);
            if (stopped + cut + unplaced_for_time > 0) {
                complete = false;   // exit 4: a model, its fit check or its placement stopped (not run: already)
                auto count = [](size_t n, const char* what) {
                    return n == 0 ? std::string() : ", " + std::to_string(n) + " " + what + (n == 1 ? "" : "s");
                };
                std::string text = "the time limit of this dump, " + limit_text + ", ran out " +
                                   format_seconds(limit * kTimeLimitNetworks) + " after its start (the networks' share" +
                                   (found.empty() ? std::string()
                                                  : ", less " + format_seconds(double(found.size()) * kOutputSecondsPerObject) +
                                                        " kept for writing the " + std::to_string(found.size()) + " objects found") +
                                   "), the memory graph built in " +
                                   format_seconds(built_seconds) + count(stopped, "model") + (stopped ? " not run" : "") +
                                   count(cut, "fit check") + (cut ? " measured on the voting rows only" : "") +
                                   count(unplaced_for_time, "model") + (unplaced_for_time ? " not placed in the dump's layout" : "") +
                                   "; --time-limit 0 runs them to the end, --types task_struct,module,file runs the models the verdict on "
                                   "hiding is made of alone (models run in type-name order: task_struct last) (a dump crafted to stall "
                                   "the analysis, a dense one, or a busy machine?)";
                warn(text);
            }
        }
        // ... and all of them together past the default bound for a scan, each within its own part
        if (!model_heavy && scan_per_page > default_scan)
            warn(past_default("the models together", scan_per_page, true));
        // A model that does not fit may have read another object's bytes: its objects' "hidden" is
        // not a verdict (newcomer 18: 32 files and a module marked hidden on a clean 5.10 dump).
        // After a misfit of the fields check alone (detect/fit.hpp Fields), an object whose fields read
        // clean keeps its verdict: one edited parent's tgid must not unjudge a hidden task (helper 60).
        // So does one of a model whose key nodes the dump's own BTF placed (a build it was not trained
        // on): its fields, read at its base with that BTF, say whether the base is an object's, and the
        // cross-view does not depend on the model (newcomer 87 MED 7: every 5.10 task "not judged").
        std::set<std::string> withdrawn_tasks;   // hex vaddrs of tasks whose verdict was withdrawn
        for (size_t i = 0; i < fits.size(); ++i) {
            const ModelFit& f = fits[i];
            // A model of another build whose fields check is its fit's only evidence (per-build key
            // nodes), cut short by the time limit's stop of the reading: its verdicts are not judged
            // either (reviewer 106 M2: a full reading could have found it a misfit and withdrawn them)
            const bool cut_short = f.fits && objects_timed_out && f.per_build && f.build != BuildMatch::SameBuild &&
                                   f.fields_read < kMinAgreementObjects &&
                                   std::any_of(found.begin(), found.end(), [&](const Detection& d) { return d.type == f.type && d.fields.empty(); });
            if (cut_short)
                for (Detection& d : found)
                    if (d.type == f.type) {
                        if (d.type == "task_struct" && field_of(d, "hidden")) withdrawn_tasks.insert(hex(d.vaddr));
                        withdraw_hidden(d, "not judged, the time limit stopped the reading before this model's fields were checked");
                    }
            if (f.fits) continue;
            const bool by_fields = f.misfit_by_fields || (i < moved.size() && moved[i]);
            for (Detection& d : found)
                if (d.type == f.type && (!by_fields || d.fields.empty() || std::any_of(d.fields.begin(), d.fields.end(), [](const ObjectField& x) {
                                             return x.misread;
                                         }))) {
                    if (d.type == "task_struct" && field_of(d, "hidden")) withdrawn_tasks.insert(hex(d.vaddr));
                    withdraw_hidden(d, "not judged, the model does not fit this dump");
                }
        }
        // ... and the files such a task held, reached through it (attacker 89: a withdrawn hidden task left
        // its files "not hidden, held by a hidden task")
        if (!withdrawn_tasks.empty())
            for (Detection& d : found)
                if (const ObjectField* h = field_of(d, kHeldByHiddenKey); h && withdrawn_tasks.count(h->text))
                    withdraw_hidden(d, "not judged, held by task " + h->text + ", whose model does not fit this dump");
        // a CSV's warning lines name no dump (name_dump_records): in a batch, their text does
        auto said = [&](const std::vector<std::string>& lines) {
            if (!batch || format != DetectionFormat::Csv) return lines;
            std::vector<std::string> named;
            for (const std::string& l : lines) named.push_back(who + l);
            return named;
        };
        // last, after every reader of the fields (--tree and the fit check tell unread objects by their empty fields)
        for (size_t i = 0; i < used.model_count(); ++i)
            if (trained_at[i]) mark_below_trained(found, used.model(i).object_type, *trained_at[i]);
        // a file cut short says how much it lost, which the page tables that survive may not (newcomer
        // 90: "lacks at least 2.3 MiB" for a file 212 MiB short): its truncation warning, up to what follows
        for (const std::string& w : dump_warnings)
            if (lack != MemoryLack::None && w.starts_with("truncated ")) {   // (a file short of a BIOS ROM lacks nothing the kernel maps)
                const size_t end = std::min({w.find(" and read as absent"), w.find(" read as absent"), w.find("; they read")});
                verdict_why.push_back(w.substr(0, end));
            }
        const DumpVerdict verdict = dump_verdict(found, fits, lack != MemoryLack::None ? lacking : "", verdict_why, only);
        judged = verdict.hidden_total() ? 'H' : verdict.broken ? 'S' : verdict.judged && verdict.incomplete.empty() ? '-' : 'I';
        std::string verdict_text = format_dump_verdict(verdict, format);
        if (batch && format == DetectionFormat::Csv)   // (as `said`; one line whatever the dump's name)
            verdict_text.insert(kVerdictLine.size(), one_line(who));
        const std::string text =
            format_fit_report(banner, fits, format,
                              info.kernel_image_bytes ? std::optional<bool>(image_lacking) : std::nullopt) +
            (format == DetectionFormat::Csv ? "" : verdict_text) +
            format_warnings(said(dump_warnings), format) + format_warnings(said(warnings), format) +
            (format == DetectionFormat::Csv ? verdict_text : "") +   // a CSV's warnings first, as before; the verdict last before its header
            (vm.count("tree") ? process_tree(found) : format_detections(found, format));
        return batch ? name_dump_records(text, format, DumpRecords{dump}) : text;
    };

    // Rank 0 writes: to --output's temporary (renamed at the end), or stdout, checked after each dump.
    std::optional<AtomicFile> file;
    if (vm.count("output") && world.rank() == 0) file.emplace(vm["output"].as<std::string>());
    auto emit = [&](const std::string& t) {
        if (world.rank() != 0) return;
        if (file) return file->write(t);
        errno = 0;
        if (std::fwrite(t.data(), 1, t.size(), stdout) != t.size() || std::fflush(stdout) != 0)
            throw InputError(std::string("cannot write standard output: ") + (errno ? std::strerror(errno) : "write error"));
    };
    // Batch CSV: a dump's header line (its field columns depend on the types found and on whether its
    // kernel types were read) is written when it differs from the one before.
    std::string csv_header;
    auto without_repeated_header = [&](std::string records) {
        if (!batch || format != DetectionFormat::Csv) return records;
        size_t at = 0;   // the header: after the dump's "# warning: " and "# verdict: " lines
        while (is_comment_line(std::string_view(records).substr(at)) && records.find('\n', at) != std::string::npos)
            at = records.find('\n', at) + 1;
        const size_t nl = records.find('\n', at);
        const std::string head = records.substr(at, nl == std::string::npos ? std::string::npos : nl + 1 - at);
        if (!head.starts_with("dump,")) return records;
        if (head == csv_header) records.erase(at, head.size());
        else csv_header = head;
        return records;
    };
    // Each round, rank r analyses dump round + r; the results go to rank 0 in dump order, as
    // 'R' + records (all models fit and ran), 'M' + records (a model does not fit), 'N' (a model was
    // not run), 'B' (both), each then its verdict ('H' HIDDEN, 'I' incomplete, '-' clean), or 'E' + the error,
    // or 'T' + why the time limit stopped its graph build (BuildTimedOut).
    size_t failed = 0, hidden_dumps = 0, incomplete_dumps = 0, broken_dumps = 0;
    size_t timed_out = 0;   // dumps whose graph build the time limit stopped
    bool all_fit = true, all_ran = true;
    const size_t ranks = size_t(world.size());
    for (size_t round = 0; round < dumps.size(); round += ranks) {
        std::string mine;
        if (const size_t i = round + size_t(world.rank()); i < dumps.size()) {
            bool fits = true, complete = true;
            char judged = '-';
            try {
                mine = analyse(dumps[i], fits, complete, judged);
            } catch (const BuildTimedOut& e) {   // not analysed: its "stopped" record, exit 4, not 1
                progress.end();
                mine = "T" + std::string(e.what());
            } catch (const std::exception& e) {
                if (!batch) throw;   // one dump: its error is the tool's
                progress.end();
                mine = "E" + std::string(e.what());
                fits = true;
            }
            if (mine.empty() || (mine.front() != 'E' && mine.front() != 'T'))
                mine.insert(0, std::string(fits ? (complete ? "R" : "N") : (complete ? "M" : "B")) + judged);
        }
        for (size_t j = round; j < std::min(dumps.size(), round + ranks); ++j) {   // in dump order
            const std::string got = broadcast_text(world, mine, int(j - round));
            if (got.front() == 'T') {   // the time limit stopped its graph build: its record, in a batch or alone
                ++timed_out;
                if (world.rank() == 0)
                    std::fprintf(stderr, "dmdetect: error: %s%s%s\n", batch ? dumps[j].c_str() : "", batch ? ": " : "", got.c_str() + 1);
                emit(format_batch_error(dumps[j], std::string_view(got).substr(1), format, /*stopped=*/true));
                continue;
            }
            if (got.front() == 'E') {
                ++failed;
                if (world.rank() == 0) std::fprintf(stderr, "dmdetect: error: %s: %s\n", dumps[j].c_str(), got.c_str() + 1);
                emit(format_batch_error(dumps[j], std::string_view(got).substr(1), format));   // (a batch: one dump's error is the tool's)
                continue;
            }
            all_fit = all_fit && (got.front() == 'R' || got.front() == 'N');
            all_ran = all_ran && (got.front() == 'R' || got.front() == 'M');
            hidden_dumps += got[1] == 'H';
            incomplete_dumps += got[1] == 'I' || got[1] == 'S';
            broken_dumps += got[1] == 'S';
            emit(without_repeated_header(got.substr(2)));
        }
    }
    if (batch) emit(format_batch_summary(dumps.size(), failed, timed_out, hidden_dumps, incomplete_dumps, format));
    if (file) file->commit();
    if (failed && world.rank() == 0) std::fprintf(stderr, "dmdetect: error: %zu of %zu dumps failed\n", failed, dumps.size());
    // --fail-on-hidden: a HIDDEN verdict first, even beside a failed dump of the batch (attacker 89: a
    // gate on 5 missed two hidden dumps), and a verdict not reached on every object (6) after 3
    const bool gate = vm.count("fail-on-hidden") > 0;
    if (gate && hidden_dumps) return 5;
    if (failed) return 1;
    if (vm.count("require-fit") && (!all_fit || timed_out)) return 3;   // (a stopped dump's fit was not checked)
    if (gate && broken_dumps) return 7;
    if (gate && (incomplete_dumps || timed_out)) return 6;
    return !all_ran || timed_out ? 4 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    share_one_heap_arena();
    return cli_main_ranks("dmdetect", argc, argv, [&](Communicator& world) { return run(argc, argv, world); },
                          [] { progress.end(); });
}
