// dmdetect: kernel objects in a memory dump, from trained models. Argument parsing and printing
// only; the work is deepmem::Detector (detect/detect.hpp).
//
//   dmdetect --weights M.cereal [--weights M2.cereal …] DUMP… [--threshold X] [--format table|json|csv]
//            [--output FILE] [--format-dump raw|elf|lime|auto] [--dtb ADDR] [--threads N] [--quiet]
//
// DUMP is a raw/ELF/LiME dump (its graph is built once with the models' parameters) or a .dmg built
// by `dmgraph build` (told by its magic; refused when built with other parameters). Every model
// runs on the one graph; objects scoring at least the model's threshold (or --threshold) are
// written sorted by (type, vaddr) to stdout or atomically to --output. Progress goes to stderr for
// large inputs unless --quiet: a live percentage on a terminal, else one line per phase.
// Several dumps, or a directory (its files named *.elf, *.raw, *.lime, *.dmg or *.mem, by name):
// the models are loaded once and each dump's records follow in the order given, each naming its
// dump (detect.hpp, DumpRecords), written to stdout as each dump is done (or atomically to
// --output at the end). A dump that fails is one error line naming it; the others are still
// written and the exit status is 1. Under `mpirun -np N` rank r takes the dumps i ≡ r (mod N)
// (train/distributed.hpp) and rank 0 writes every record, in the same order as one process.
// Exit status: 0 success, 1 bad input (unreadable or malformed dump, model or graph, mismatched
// graph parameters), 2 usage error (unknown option, missing argument); the error is one line
// "dmdetect: error: …" on stderr.
#include "detect/detect.hpp"
#include "graph/layers.hpp"

#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

const char* kUsage =
    "usage: dmdetect --weights M.cereal [--weights M2.cereal ...] DUMP... [options]\n"
    "  DUMP: raw/ELF/LiME memory dump, or a .dmg from `dmgraph build`; several, or a directory of\n"
    "  them (*.elf *.raw *.lime *.dmg *.mem): each record names its dump; `mpirun -np N` shares them\n"
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

// The dumps of the command line: files as given, directories expanded to their dump files by
// name (see the header). `batch`: more than one dump, or a directory.
std::vector<std::string> dump_list(const std::vector<std::string>& args, bool& batch) {
    namespace fs = std::filesystem;
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
            if ((ext == ".elf" || ext == ".raw" || ext == ".lime" || ext == ".dmg" || ext == ".mem") &&
                fs::is_regular_file(it->path(), ec))
                found.push_back(it->path().string());
        }
        if (ec) throw InputError("cannot list directory '" + a + "': " + ec.message());
        if (found.empty()) throw InputError("no dumps (*.elf, *.raw, *.lime, *.dmg, *.mem) in directory '" + a + "'");
        std::sort(found.begin(), found.end());
        out.insert(out.end(), found.begin(), found.end());
    }
    return out;
}

int run(int argc, char** argv, Communicator& world) {
    po::options_description o("options");
    o.add_options()("help,h", "this text")(
        "weights,w", po::value<std::vector<std::string>>(), "model file (repeatable, at least one)")(
        "threshold", po::value<float>(), "report scores at or above this for every model (default: each model's)")(
        "format", po::value<std::string>()->default_value("table"), "output: table|json|csv")(
        "output,o", po::value<std::string>(), "write here (atomically) instead of stdout")(
        "format-dump", po::value<std::string>()->default_value("auto"), "dump format: raw|elf|lime|auto")(
        "dtb", po::value<std::string>(), "page-table root (physical address)")(
        "threads", po::value<int>(), "OpenMP threads (default: OMP_NUM_THREADS or all cores)")(
        "quiet,q", "no progress on stderr");
    const auto parsed = parse_command_line(argc, argv, o, {{"dump", -1}}, kUsage);
    if (!parsed) return 0;
    const po::variables_map& vm = *parsed;
    if (!vm.count("weights")) throw po::error("at least one --weights model is required");
    if (!vm.count("dump")) throw po::error("no DUMP given");
    bool batch = false;
    const std::vector<std::string> dumps = dump_list(vm["dump"].as<std::vector<std::string>>(), batch);
    const DetectionFormat format = parse_detection_format(vm["format"].as<std::string>());
    BuildOptions build;
    build.format = parse_dump_format(vm["format-dump"].as<std::string>());
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
    const bool show = !vm.count("quiet") && world.rank() == 0;
    auto records = [&](const std::string& dump) {   // one dump's text
        std::error_code ec;
        const auto size = std::filesystem::file_size(dump, ec);
        progress.enabled = show && !ec && size > kLargeDump;
        progress.phase("memory graph of " + dump);
        build.progress = [&](uint64_t done, uint64_t total) { progress.percent("memory graph of " + dump, done, total); };
        MemoryGraph graph = detector.open_graph(dump, build);
        progress.end();

        progress.enabled = show && graph.node_count() > kLargeGraph;
        detect.progress = [&](size_t i, size_t n, const std::string& type) {
            progress.phase("model " + std::to_string(i + 1) + "/" + std::to_string(n) + " (" + type + ")");
        };
        const std::vector<Detection> found = detector.detect(graph, detect);
        progress.end();
        return batch ? format_detections(found, format, DumpRecords{dump, false}) : format_detections(found, format);
    };

    std::string text;   // for --output
    auto emit = [&](const std::string& t) {
        if (world.rank() != 0) return;
        if (vm.count("output")) text += t;
        else if (std::fwrite(t.data(), 1, t.size(), stdout) != t.size() || std::fflush(stdout) != 0)
            throw InputError("cannot write to stdout");
    };
    if (batch && format == DetectionFormat::Csv) emit(format_detections({}, format, DumpRecords{"", true}));   // header
    bool failed = false;
    const size_t ranks = size_t(world.size());
    for (size_t round = 0; round < dumps.size(); round += ranks) {   // rank r: dump round + r
        std::string mine;   // "R" + records, or "E" + the error
        if (const size_t i = round + size_t(world.rank()); i < dumps.size()) {
            if (!batch) {
                mine = "R" + records(dumps[i]);   // one dump: its error is the tool's
            } else {
                try {
                    mine = "R" + records(dumps[i]);
                } catch (const std::exception& e) {
                    progress.end();
                    mine = "E" + std::string(e.what());
                }
            }
        }
        for (size_t j = round; j < std::min(dumps.size(), round + ranks); ++j) {   // in dump order
            const std::string got = broadcast_text(world, mine, int(j - round));
            if (got.front() == 'R') {
                emit(got.substr(1));
            } else {
                failed = true;
                if (world.rank() == 0) std::fprintf(stderr, "dmdetect: error: %s: %s\n", dumps[j].c_str(), got.c_str() + 1);
            }
        }
    }
    if (vm.count("output") && world.rank() == 0) write_file_atomically(vm["output"].as<std::string>(), text);
    return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli_main_ranks("dmdetect", argc, argv, [&](Communicator& world) { return run(argc, argv, world); },
                          [] { progress.end(); });
}
