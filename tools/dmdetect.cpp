// dmdetect: kernel objects in a memory dump, from trained models. Argument parsing and printing
// only; the work is deepmem::Detector (detect/detect.hpp).
//
//   dmdetect --weights M.cereal [--weights M2.cereal …] DUMP [--threshold X] [--format table|json|csv]
//            [--output FILE] [--format-dump raw|elf|lime|kdump|avml|auto] [--strict] [--dtb ADDR]
//            [--threads N] [--quiet]
//
// DUMP is a raw/ELF/LiME/kdump/AVML dump (its graph is built once with the models' parameters) or a .dmg built
// by `dmgraph build` (told by its magic; refused when built with other parameters). Every model
// runs on the one graph; objects scoring at least the model's threshold (or --threshold) are
// written sorted by (type, vaddr) to stdout or atomically to --output. Progress goes to stderr for
// large inputs unless --quiet: a live percentage on a terminal, else one line per phase.
// Exit status: 0 success, 1 bad input (unreadable or malformed dump, model or graph, mismatched
// graph parameters), 2 usage error (unknown option, missing argument); the error is one line
// "dmdetect: error: …" on stderr.
#include "detect/detect.hpp"
#include "graph/layers.hpp"

#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

const char* kUsage =
    "usage: dmdetect --weights M.cereal [--weights M2.cereal ...] DUMP [options]\n"
    "  DUMP: raw/ELF/LiME/kdump/AVML memory dump, or a .dmg from `dmgraph build`\n"
    "exit status: 0 ok, 1 bad input, 2 usage error\n";

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
        "weights,w", po::value<std::vector<std::string>>(), "model file (repeatable, at least one)")(
        "threshold", po::value<float>(), "report scores at or above this for every model (default: each model's)")(
        "format", po::value<std::string>()->default_value("table"), "output: table|json|csv")(
        "output,o", po::value<std::string>(), "write here (atomically) instead of stdout")(
        "format-dump", po::value<std::string>()->default_value("auto"), "dump format: raw|elf|lime|kdump|avml|auto")(
        "strict", "refuse a truncated dump instead of analysing what is present")(
        "dtb", po::value<std::string>(), "page-table root (physical address)")(
        "threads", po::value<int>(), "OpenMP threads (default: OMP_NUM_THREADS or all cores)")(
        "quiet,q", "no progress on stderr");
    const auto parsed = parse_command_line(argc, argv, o, {{"dump", 1}}, kUsage);
    if (!parsed) return 0;
    const po::variables_map& vm = *parsed;
    if (!vm.count("weights")) throw po::error("at least one --weights model is required");
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
    if (vm.count("threads")) {
        const int t = vm["threads"].as<int>();
        if (t < 1) throw po::error("--threads must be at least 1");
        omp_set_num_threads(t);
    }
    DetectOptions detect;
    if (vm.count("threshold")) detect.threshold = vm["threshold"].as<float>();

    Detector detector;
    for (const auto& w : vm["weights"].as<std::vector<std::string>>()) detector.add_model(w);

    progress.tty = ::isatty(STDERR_FILENO) == 1;
    std::error_code ec;
    const auto size = std::filesystem::file_size(dump, ec);
    progress.enabled = !vm.count("quiet") && !ec && size > kLargeDump;
    progress.phase("memory graph of " + dump);
    build.progress = [&](uint64_t done, uint64_t total) { progress.percent("memory graph of " + dump, done, total); };
    MemoryGraph graph = detector.open_graph(dump, build);
    progress.end();

    progress.enabled = !vm.count("quiet") && graph.node_count() > kLargeGraph;
    detect.progress = [&](size_t i, size_t n, const std::string& type) {
        progress.phase("model " + std::to_string(i + 1) + "/" + std::to_string(n) + " (" + type + ")");
    };
    const std::vector<Detection> found = detector.detect(graph, detect);
    progress.end();

    const std::string text = format_detections(found, format);
    if (vm.count("output")) {
        write_file_atomically(vm["output"].as<std::string>(), text);
    } else if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
        throw InputError("cannot write to stdout");
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli_main("dmdetect", [&] { return run(argc, argv); }, [] { progress.end(); });
}
