// bench-graph DUMP: how fast and how big a memory-graph build is, phase by phase.
//
//   bench-graph DUMP [--format auto] [--dtb ADDR] [--paging x64] [--threads N] [--out G.dmg]
//
// Prints seconds per phase (layer open, translation/enumeration, canonical pages, scan, segment,
// edges, CSR), throughput (dump MiB/s over open→graph, scanned MiB/s over the scan phase, nodes/s)
// and the peak RSS from getrusage (which counts the dump's mapped, touched pages too; RssAnon at
// the end is the heap alone).
#include "graph/memory_graph.hpp"

#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <omp.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string proc_status(const char* key) {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key, 0) == 0) {
            auto p = line.find_first_not_of(" \t", std::string(key).size());
            return p == std::string::npos ? "" : line.substr(p);
        }
    return "?";
}

}  // namespace

int main(int argc, char** argv) {
    try {
        po::options_description o("bench-graph options");
        o.add_options()("help,h", "this help")("dump", po::value<std::string>()->required(), "dump file")(
            "format", po::value<std::string>()->default_value("auto"), "raw|elf|lime|auto")(
            "dtb", po::value<std::string>(), "page-table root")("paging", po::value<std::string>(), "x86|pae|x64|la57")(
            "threads", po::value<Whole<uint32_t>>(), "OpenMP threads (default: OMP_NUM_THREADS or all cores)")(
            "out", po::value<std::string>(), "also save the graph here and time it");
        po::positional_options_description pos;
        pos.add("dump", 1);
        po::variables_map vm;
        po::store(po::command_line_parser(argc, argv).options(o).positional(pos).run(), vm);
        if (vm.count("help")) {
            std::cout << "usage: bench-graph DUMP [options]\n" << o;
            return 0;
        }
        po::notify(vm);
        if (auto t = whole_option<uint32_t>(vm, "threads")) set_thread_count(*t, "--threads");
        std::optional<uint64_t> dtb;
        if (vm.count("dtb")) dtb = parse_address(vm["dtb"].as<std::string>(), "--dtb");
        std::optional<PagingMode> paging;
        if (vm.count("paging")) paging = parse_paging_mode(vm["paging"].as<std::string>());
        const std::string dump = vm["dump"].as<std::string>();

        auto t = Clock::now();
        auto phys = PhysicalLayer::open(dump, parse_dump_format(vm["format"].as<std::string>()));
        double t_open = since(t);
        t = Clock::now();
        auto layer = TranslationLayer::detect(*phys, dtb, paging);
        auto runs = layer.kernel_runs();
        double t_translate = since(t);
        t = Clock::now();
        MemoryGraph g = MemoryGraph::build(layer, {}, {});
        double t_build = since(t);
        double t_save = 0;
        if (vm.count("out")) {
            t = Clock::now();
            g.set_dump_path(dump);
            g.save(vm["out"].as<std::string>());
            t_save = since(t);
        }
        struct rusage ru {};
        getrusage(RUSAGE_SELF, &ru);

        const auto& ph = g.phases();
        const double mib = static_cast<double>(phys->file_bytes().size()) / (1 << 20);
        const double scanned = static_cast<double>(g.info().kernel_pages) * 4096 / (1 << 20);
        uint64_t edges = 0;
        for (int k = 0; k < kEdgeKinds; ++k) edges += g.edge_count(static_cast<EdgeKind>(k));
        const double total = t_open + t_translate + t_build;
        std::printf("dump                 %s (%.1f MiB, %s, %s, dtb %s)\n", dump.c_str(), mib,
                    to_string(phys->format()), to_string(layer.mode()), hex(layer.dtb()).c_str());
        std::printf("threads              %d\n", omp_get_max_threads());
        std::printf("kernel runs          %zu\n", runs.size());
        std::printf("kernel pages         %llu (%.1f MiB scanned after alias removal)\n",
                    static_cast<unsigned long long>(g.info().kernel_pages), scanned);
        std::printf("pointer fields       %llu\n", static_cast<unsigned long long>(g.info().pointer_fields));
        std::printf("nodes                %u\n", g.node_count());
        std::printf("edges                %llu (ln %llu, rn %llu, lp %llu, rp %llu)\n",
                    static_cast<unsigned long long>(edges),
                    static_cast<unsigned long long>(g.edge_count(EdgeKind::LeftNeighbour)),
                    static_cast<unsigned long long>(g.edge_count(EdgeKind::RightNeighbour)),
                    static_cast<unsigned long long>(g.edge_count(EdgeKind::LeftPointer)),
                    static_cast<unsigned long long>(g.edge_count(EdgeKind::RightPointer)));
        std::printf("phase open           %.3f s\n", t_open);
        std::printf("phase translation    %.3f s (page-table walk, kernel run enumeration)\n", t_translate);
        std::printf("phase pages          %.3f s (canonical pages, alias table)\n", ph.pages);
        std::printf("phase scan           %.3f s\n", ph.scan);
        std::printf("phase segment        %.3f s\n", ph.segment);
        std::printf("phase edges          %.3f s\n", ph.edges);
        std::printf("phase csr            %.3f s\n", ph.csr);
        std::printf("graph build          %.3f s (pages+scan+segment+edges+csr)\n", t_build);
        if (vm.count("out")) std::printf("save                 %.3f s\n", t_save);
        std::printf("total open→graph     %.3f s\n", total);
        std::printf("throughput           %.1f MiB/s of dump (open→graph), %.1f MiB/s scanned (scan phase)\n",
                    mib / total, ph.scan > 0 ? scanned / ph.scan : 0.0);
        std::printf("nodes/s              %.0f (graph build)\n", t_build > 0 ? g.node_count() / t_build : 0.0);
        std::printf("peak RSS             %.1f MiB (ru_maxrss; includes touched pages of the mmapped dump)\n",
                    static_cast<double>(ru.ru_maxrss) / 1024);
        std::printf("CPU time             %.3f s user, %.3f s system (whole process; the box may be shared)\n",
                    static_cast<double>(ru.ru_utime.tv_sec) + ru.ru_utime.tv_usec / 1e6,
                    static_cast<double>(ru.ru_stime.tv_sec) + ru.ru_stime.tv_usec / 1e6);
        std::printf("RssAnon / RssFile    %s / %s (at exit)\n", proc_status("RssAnon:").c_str(),
                    proc_status("RssFile:").c_str());
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-graph: error: %s\n", e.what());
        return 1;
    }
}
