// dmdetect: kernel objects in a memory dump, from trained models. Argument parsing and printing
// only; the work is deepmem::Detector (detect/detect.hpp).
//
//   dmdetect [--weights M.cereal [--weights M2.cereal …]] DUMP [--threshold X] [--format table|json|csv]
//            [--output FILE] [--format-dump raw|elf|lime|kdump|avml|auto] [--strict] [--dtb ADDR]
//            [--threads N] [--quiet] [--require-fit]
//
// DUMP is a raw/ELF/LiME/kdump/AVML dump (its graph is built once with the models' parameters) or a .dmg built
// by `dmgraph build` (told by its magic; refused when built with other parameters). Without
// --weights the shipped models are used: every *.cereal in $DEEPMEM_MODELS, else in this checkout's
// data/models, else in the installed share/deepmem/models; of several models of one type, the one
// whose kernel builds match the dump's banner best (detect/fit.hpp, pick_models). Every model runs
// on the one graph; objects scoring at least the model's threshold (or --threshold) are written
// sorted by (type, vaddr) to stdout or atomically to --output, after the dump's kernel and each
// model's fit (table: "# " lines; json: {"record":…} lines; detect/fit.hpp). A model that does not
// fit the dump is also a warning line on stderr. Progress goes to stderr for large inputs unless
// --quiet: a live percentage on a terminal, else one line per phase.
// Exit status: 0 success, 1 bad input (unreadable or malformed dump, model or graph, mismatched
// graph parameters, no models), 2 usage error (unknown option, missing argument), 3 with
// --require-fit when a model does not fit the dump (the output is written all the same); an error
// is one line "dmdetect: error: …" on stderr.
#include "detect/detect.hpp"
#include "detect/fit.hpp"
#include "graph/layers.hpp"

#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

const char* kUsage =
    "usage: dmdetect [--weights M.cereal [--weights M2.cereal ...]] DUMP [options]\n"
    "  DUMP: raw/ELF/LiME/kdump/AVML memory dump, or a .dmg from `dmgraph build`\n"
    "  without --weights: the shipped models ($DEEPMEM_MODELS, else data/models, else share/deepmem/models)\n"
    "exit status: 0 ok, 1 bad input, 2 usage error, 3 a model does not fit the dump (--require-fit)\n";

namespace fs = std::filesystem;

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
    std::vector<std::string> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".cereal" && e.is_regular_file()) files.push_back(e.path().string());
    if (ec) throw InputError("cannot list " + dir + ": " + ec.message());
    if (files.empty()) throw InputError("no models (*.cereal) in " + dir + "; give --weights");
    std::sort(files.begin(), files.end());
    return files;
}

Model load_model(const std::string& path) {
    try {
        return Model::load(path);
    } catch (const ModelError& e) {
        throw InputError(path + ": " + e.what());
    }
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

int run(int argc, char** argv) {
    po::options_description o("options");
    o.add_options()("help,h", "this text")(
        "weights,w", po::value<std::vector<std::string>>(), "model file (repeatable; default: the shipped models)")(
        "threshold", po::value<float>(), "report scores at or above this for every model (default: each model's)")(
        "format", po::value<std::string>()->default_value("table"), "output: table|json|csv")(
        "output,o", po::value<std::string>(), "write here (atomically) instead of stdout")(
        "format-dump", po::value<std::string>()->default_value("auto"), "dump format: raw|elf|lime|kdump|avml|auto")(
        "strict", "refuse a truncated dump instead of analysing what is present")(
        "dtb", po::value<std::string>(), "page-table root (physical address)")(
        "threads", po::value<Whole<uint32_t>>(), "OpenMP threads (default: OMP_NUM_THREADS or all cores)")(
        "quiet,q", "no progress on stderr")(
        "require-fit", "exit 3 when a model does not fit the dump's kernel (detect/fit.hpp)");
    const auto parsed = parse_command_line(argc, argv, o, {{"dump", 1}}, kUsage);
    if (!parsed) return 0;
    const po::variables_map& vm = *parsed;
    if (!vm.count("dump")) throw po::error("no DUMP given");
    const std::string dump = vm["dump"].as<std::string>();
    const DetectionFormat format = parse_detection_format(vm["format"].as<std::string>());
    BuildOptions build;
    build.format = parse_dump_format(vm["format-dump"].as<std::string>());
    build.strict = vm.count("strict") > 0;
    build.warn = [](const std::string& w) {
        progress.end();
        print_warnings("dmdetect", {w});
    };
    if (vm.count("dtb")) build.dtb = parse_address(vm["dtb"].as<std::string>(), "dtb");
    if (auto t = whole_option<uint32_t>(vm, "threads")) set_thread_count(*t, "--threads");
    std::vector<std::string> inputs{dump};
    if (vm.count("weights"))
        for (const auto& w : vm["weights"].as<std::vector<std::string>>()) inputs.push_back(w);
    if (vm.count("output")) refuse_output_over_inputs(std::vector{vm["output"].as<std::string>()}, inputs);
    else refuse_fd_over_inputs(STDOUT_FILENO, "standard output", inputs);
    DetectOptions detect;
    if (vm.count("threshold")) detect.threshold = vm["threshold"].as<float>();
    detect.measure_agreement = true;

    // Explicit models, or every shipped one: the graph is built with the first one's parameters
    // and the models that fit its kernel banner best are picked after.
    Detector detector;
    std::vector<Model> shipped;
    std::vector<std::string> shipped_paths;
    if (vm.count("weights")) {
        for (const auto& w : vm["weights"].as<std::vector<std::string>>()) detector.add_model(w);
    } else {
        shipped_paths = shipped_models();
        for (const auto& p : shipped_paths) shipped.push_back(load_model(p));
        detector.add_model(shipped.front(), shipped_paths.front());
    }

    progress.tty = ::isatty(STDERR_FILENO) == 1;
    std::error_code ec;
    const auto size = std::filesystem::file_size(dump, ec);
    progress.enabled = !vm.count("quiet") && !ec && size > kLargeDump;
    progress.phase("memory graph of " + dump);
    build.progress = [&](uint64_t done, uint64_t total) { progress.percent("memory graph of " + dump, done, total); };
    MemoryGraph graph = detector.open_graph(dump, build);
    progress.end();
    const std::optional<FoundBanner>& banner = graph.info().kernel_banner;
    if (!shipped.empty()) {
        detector = Detector();
        for (size_t i : pick_models(shipped, banner)) detector.add_model(std::move(shipped[i]), shipped_paths[i]);
        detector.check_graph(graph);
    }

    progress.enabled = !vm.count("quiet") && graph.node_count() > kLargeGraph;
    detect.progress = [&](size_t i, size_t n, const std::string& type) {
        progress.phase("model " + std::to_string(i + 1) + "/" + std::to_string(n) + " (" + type + ")");
    };
    const std::vector<Detection> found = detector.detect(graph, detect);
    progress.end();
    std::vector<ModelFit> fits;
    bool all_fit = true;
    for (size_t i = 0; i < detector.model_count(); ++i) {
        fits.push_back(assess_fit(detector.model(i), detector.source(i), banner, detector.last_agreements().at(i)));
        if (fits.back().fits) continue;
        all_fit = false;
        std::fprintf(stderr, "dmdetect: warning: model %s (%s) does not fit this dump: %s\n", fits.back().type.c_str(),
                     fits.back().source.c_str(), fits.back().reason.c_str());
    }

    const std::string text = format_fit_report(banner, fits, format) + format_detections(found, format);
    if (vm.count("output")) {
        write_file_atomically(vm["output"].as<std::string>(), text);
    } else {
        std::fwrite(text.data(), 1, text.size(), stdout);   // checked by cli_main (finish_stdout)
    }
    return vm.count("require-fit") && !all_fit ? 3 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli_main("dmdetect", [&] { return run(argc, argv); }, [] { progress.end(); });
}
