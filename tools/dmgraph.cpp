// dmgraph: build, inspect and export memory graphs (.dmg). Argument parsing and printing only;
// the work is graph/memory_graph.hpp.
//
//   dmgraph build DUMP -o G.dmg [--format raw|elf|lime|kdump|avml|auto] [--strict] [--no-density-bound] [--dtb ADDR]
//                 [--paging x86|pae|x64|la57] [--feature-bytes 64] [--max-segment 4096] [--neighbour-distance 512]
//                 [--pointer-target-back 128]
//   dmgraph info G.dmg
//   dmgraph nodes G.dmg [--from VADDR] [--to VADDR]     TSV: vaddr paddr length ln rn lp rp kind
//   dmgraph dot G.dmg --around VADDR [--hops 2] [--max-nodes 400]
// Exit status: 0 ok, 1 bad input, 2 usage error; errors are one line "dmgraph: error: …" (tools/cli.hpp).
#include "graph/memory_budget.hpp"
#include "graph/memory_graph.hpp"
#include "graph/text_lines.hpp"
#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

const char* kUsage =
    "usage: dmgraph build DUMP -o G.dmg [--format raw|elf|lime|kdump|avml|auto] [--strict] [--no-density-bound]\n"
    "                     [--dtb ADDR]\n"
    "                     [--paging x86|pae|x64|la57] [--feature-bytes N] [--max-segment N]\n"
    "                     [--neighbour-distance N] [--pointer-target-back N] [--no-long-gap-nodes] [--quiet]\n"
    "       dmgraph info G.dmg\n"
    "       dmgraph nodes G.dmg [--from VADDR] [--to VADDR]\n"
    "       dmgraph dot G.dmg --around VADDR [--hops N] [--max-nodes N]\n"
    "exit status: 0 ok, 1 bad input, 2 usage error (unknown option, missing argument)\n";

uint32_t parse_u32(const std::string& s, const char* what) {
    uint64_t v = parse_address(s, what);
    if (v > UINT32_MAX) throw InputError(std::string(what) + " " + s + " is too large");
    return static_cast<uint32_t>(v);
}

po::variables_map parse(const std::vector<std::string>& args, po::options_description& opts,
                        const char* positional) {
    po::positional_options_description pos;
    pos.add(positional, 1);
    po::options_description all;
    all.add(opts).add_options()(positional, po::value<std::string>()->required(), positional);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(all).positional(pos).style(kCommandLineStyle).run(), vm);
    po::notify(vm);
    return vm;
}

std::string sources_vaddrs(const MemoryGraph& g, EdgeKind k, uint32_t n) {
    std::string s;
    for (uint32_t src : g.in(k).row(n)) {
        if (!s.empty()) s += ',';
        s += hex(g.vaddr()[src]);
    }
    return s;
}

int cmd_build(const std::vector<std::string>& args) {
    po::options_description o("build options");
    o.add_options()("output,o", po::value<std::string>()->required(), "output .dmg")(
        "format", po::value<std::string>()->default_value("auto"), "raw|elf|lime|kdump|avml|auto")(
        "strict", "refuse a truncated dump, or one with compressed pages that do not decompress, instead of analysing what is present")(
        "no-density-bound", "build the graph of a kdump or AVML file denser in pointers than any real kernel (memory_graph.hpp)")(
        "dtb", po::value<std::string>(), "page-table root (physical address)")(
        "paging", po::value<std::string>(), "x86|pae|x64|la57")(
        "feature-bytes", po::value<std::string>(), "content bytes kept per node (64)")(
        "max-segment", po::value<std::string>(), "gaps this long or longer make no ordinary node, one long gap's node at most (4096)")(
        "neighbour-distance", po::value<std::string>(), "ln/rn only for gaps below this (512)")(
        "pointer-target-back", po::value<std::string>(), "pointer-to-pointer-field reach (128)")(
        "no-long-gap-nodes", "no node at the start of a gap of max-segment bytes or more (memory_graph.hpp: Long gaps)")(
        "quiet,q", "no progress on stderr");
    auto vm = parse(args, o, "dump");
    const std::string dump = vm["dump"].as<std::string>();
    refuse_output_over_inputs(std::vector{vm["output"].as<std::string>()}, std::vector{dump});
    GraphParams params;
    if (vm.count("feature-bytes")) params.feature_bytes = parse_u32(vm["feature-bytes"].as<std::string>(), "feature bytes");
    if (vm.count("max-segment")) params.max_segment = parse_u32(vm["max-segment"].as<std::string>(), "max segment");
    if (vm.count("neighbour-distance"))
        params.neighbour_distance = parse_u32(vm["neighbour-distance"].as<std::string>(), "neighbour distance");
    if (vm.count("pointer-target-back"))
        params.pointer_target_back = parse_u32(vm["pointer-target-back"].as<std::string>(), "pointer target back");
    params.long_gap_nodes = vm.count("no-long-gap-nodes") == 0;
    std::optional<uint64_t> dtb;
    if (vm.count("dtb")) dtb = dtb_option(vm);
    std::optional<PagingMode> paging;
    if (vm.count("paging")) paging = paging_option(vm);

    auto phys = PhysicalLayer::open(dump, dump_format_option(vm, "format"), vm.count("strict") > 0);
    print_warnings("dmgraph", phys->warnings());
    auto layer = TranslationLayer::detect(*phys, dtb, paging);
    print_warnings("dmgraph", layer.warnings());
    {
        const GraphEstimate e = MemoryGraph::estimate(layer, params);
        std::printf("estimate: %s; %s\n", describe(e).c_str(), describe(available_memory()).c_str());
        std::fflush(stdout);
    }
    const bool show = !vm.count("quiet") && phys->file_bytes().size() > (uint64_t{256} << 20);
    int last_decile = -1;
    ProgressFn progress = [&](uint64_t done, uint64_t total) {
        int decile = total ? static_cast<int>(done * 10 / total) : 10;
        if (decile == last_decile) return;
        last_decile = decile;
        std::fprintf(stderr, "dmgraph: scanning kernel pages %3d%% (%llu/%llu MiB)\n", decile * 10,
                     static_cast<unsigned long long>(done >> 20), static_cast<unsigned long long>(total >> 20));
    };
    MemoryGraph g = MemoryGraph::build(layer, params, show ? progress : ProgressFn{}, vm.count("no-density-bound") == 0);
    g.set_dump_path(dump);
    refuse_empty_graph(g);
    g.save(vm["output"].as<std::string>());
    uint64_t edges = 0;
    for (int k = 0; k < kEdgeKinds; ++k) edges += g.edge_count(static_cast<EdgeKind>(k));
    std::printf("%s: %u nodes, %llu edges, %llu kernel pages, %.2f s\n", vm["output"].as<std::string>().c_str(),
                g.node_count(), static_cast<unsigned long long>(edges),
                static_cast<unsigned long long>(g.info().kernel_pages), g.info().build_seconds);
    return 0;
}

int cmd_info(const std::vector<std::string>& args) {
    po::options_description o("info options");
    auto vm = parse(args, o, "graph");
    refuse_fd_over_inputs(STDOUT_FILENO, "standard output", std::vector{vm["graph"].as<std::string>()});
    MemoryGraph g = MemoryGraph::load(vm["graph"].as<std::string>());
    const auto& i = g.info();
    const auto& p = g.params();
    std::printf("nodes               %u\n", g.node_count());
    if (p.long_gap_nodes) {   // memory_graph.hpp, Long gaps: length max_segment, "at least that long"
        const auto len = g.length();
        std::printf("long gaps' nodes    %zu (length %u: a gap at least that long after a pointer; they feed no node)\n",
                    static_cast<size_t>(std::count_if(len.begin(), len.end(), [&](uint32_t l) { return p.long_gap(l); })),
                    p.long_gap_length());
    }
    for (int k = 0; k < kEdgeKinds; ++k)
        std::printf("edges %-13s %llu\n", to_string(static_cast<EdgeKind>(k)),
                    static_cast<unsigned long long>(g.edge_count(static_cast<EdgeKind>(k))));
    std::printf("kernel pages        %llu\n", static_cast<unsigned long long>(i.kernel_pages));
    std::printf("absent pages        %llu (mapped, not in the dump)\n", static_cast<unsigned long long>(i.absent_pages));
    if (i.absent_table_bytes)
        std::printf("absent tables       up to %s of kernel address space under page tables not in the dump\n",
                    format_bytes(i.absent_table_bytes).c_str());
    if (i.kernel_image_bytes)
        std::printf("kernel image        %s present in its window%s\n", format_bytes(*i.kernel_image_bytes).c_str(),
                    *i.kernel_image_bytes ? "" : " (the dump lacks it)");
    std::printf("pointer fields      %llu\n", static_cast<unsigned long long>(i.pointer_fields));
    // The dump path is the builder's file name, read back from a file: shown as terminal text.
    std::printf("dump                %s (%llu bytes)\n", i.dump_path.empty() ? "-" : terminal_text(i.dump_path).c_str(),
                static_cast<unsigned long long>(i.dump_bytes));
    if (i.stored_page_bytes)   // kdump, AVML: what the network work bound counts pages by (detect.hpp counted_pages)
        std::printf("stored page bytes   %llu (bytes its non-zero pages take of the compressed file, at most %llu a page: "
                    "dmdetect's network work bound counts one page per %llu)\n",
                    static_cast<unsigned long long>(*i.stored_page_bytes),
                    static_cast<unsigned long long>(PhysicalLayer::kCountedPageBytes),
                    static_cast<unsigned long long>(PhysicalLayer::kCountedPageBytes));
    std::printf("paging              %s\n", to_string(i.paging));
    std::printf("dtb                 %s\n", hex(i.dtb).c_str());
    std::printf("build seconds       %.3f\n", i.build_seconds);
    if (const auto& b = i.kernel_banner) {
        std::printf("kernel              %s (banner %s %s)\n", b->banner.release.c_str(),
                    b->in_kernel_image() ? "in the kernel image at" : "outside the kernel image, at paddr",
                    hex(b->vaddr.value_or(b->paddr)).c_str());
        std::printf("kernel banner       %s\n", b->banner.text.c_str());
    } else {
        std::printf("kernel              unknown (no `Linux version` banner in the dump)\n");
    }
    std::printf("warnings            %zu%s\n", i.warnings.size(), i.warnings.empty() ? "" : " (the layers', when the graph was built):");
    for (const std::string& w : i.warnings) std::printf("  %s\n", w.c_str());
    std::printf("params              word_size=%u feature_bytes=%u max_segment=%u neighbour_distance=%u "
                "pointer_target_back=%u long_gap_nodes=%s\n",
                p.word_size, p.feature_bytes, p.max_segment, p.neighbour_distance, p.pointer_target_back,
                p.long_gap_nodes ? "yes" : "no");
    // In-degree histograms, power-of-two buckets: 0, 1, 2-3, 4-7, …
    for (int k = 0; k < kEdgeKinds; ++k) {
        std::vector<uint64_t> buckets(34, 0);
        CsrView v = g.in(static_cast<EdgeKind>(k));
        for (uint32_t n = 0; n < g.node_count(); ++n) {
            uint64_t d = v.offsets[n + 1] - v.offsets[n];
            buckets[d == 0 ? 0 : 1 + static_cast<size_t>(std::bit_width(d) - 1)]++;
        }
        std::printf("in-degree %-9s", to_string(static_cast<EdgeKind>(k)));
        for (size_t b = 0; b < buckets.size(); ++b) {
            if (!buckets[b]) continue;
            uint64_t lo = b == 0 ? 0 : uint64_t{1} << (b - 1), hi = b == 0 ? 0 : (uint64_t{1} << b) - 1;
            if (lo == hi) std::printf(" %llu:%llu", static_cast<unsigned long long>(lo),
                                      static_cast<unsigned long long>(buckets[b]));
            else std::printf(" %llu-%llu:%llu", static_cast<unsigned long long>(lo),
                             static_cast<unsigned long long>(hi), static_cast<unsigned long long>(buckets[b]));
        }
        std::printf("\n");
    }
    return 0;
}

int cmd_nodes(const std::vector<std::string>& args) {
    po::options_description o("nodes options");
    o.add_options()("from", po::value<std::string>(), "first vaddr (inclusive)")(
        "to", po::value<std::string>(), "last vaddr (exclusive)");
    auto vm = parse(args, o, "graph");
    refuse_fd_over_inputs(STDOUT_FILENO, "standard output", std::vector{vm["graph"].as<std::string>()});
    MemoryGraph g = MemoryGraph::load(vm["graph"].as<std::string>());
    uint64_t from = vm.count("from") ? parse_address(vm["from"].as<std::string>(), "--from") : 0;
    uint64_t to = vm.count("to") ? parse_address(vm["to"].as<std::string>(), "--to") : ~uint64_t{0};
    auto [first, last] = g.nodes_between(from, to);
    // kind: "segment", or "long_gap" — a long gap's node (memory_graph.hpp, Long gaps): its length is
    // the least the gap runs, and it feeds no node.
    const GraphParams& p = g.params();
    std::string out = "vaddr\tpaddr\tlength\tln\trn\tlp\trp\tkind\n";
    for (uint32_t n = first; n < last; ++n) {
        out += hex(g.vaddr()[n]);
        out += '\t';
        out += hex(g.paddr()[n]);
        out += '\t';
        out += std::to_string(g.length()[n]);
        for (int k = 0; k < kEdgeKinds; ++k) {
            out += '\t';
            out += sources_vaddrs(g, static_cast<EdgeKind>(k), n);
        }
        out += p.long_gap(g.length()[n]) ? "\tlong_gap\n" : "\tsegment\n";
        if (out.size() > (1u << 20)) {
            std::fwrite(out.data(), 1, out.size(), stdout);
            out.clear();
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

int cmd_dot(const std::vector<std::string>& args) {
    po::options_description o("dot options");
    o.add_options()("around", po::value<std::string>()->required(), "a vaddr inside the centre node")(
        "hops", po::value<Whole<unsigned>>()->default_value({2}, "2"), "neighbourhood radius, edges of any kind and direction")(
        "max-nodes", po::value<Whole<unsigned>>()->default_value({400}, "400"), "stop growing the neighbourhood here");
    auto vm = parse(args, o, "graph");
    refuse_fd_over_inputs(STDOUT_FILENO, "standard output", std::vector{vm["graph"].as<std::string>()});
    MemoryGraph g = MemoryGraph::load(vm["graph"].as<std::string>());
    uint64_t around = parse_address(vm["around"].as<std::string>(), "--around");
    auto centre = g.node_containing(around);
    if (!centre) throw InputError("no node contains " + hex(around));
    const unsigned hops = vm["hops"].as<Whole<unsigned>>().value, max_nodes = std::max(1u, vm["max-nodes"].as<Whole<unsigned>>().value);
    const Neighbourhood around_centre = neighbourhood(g, *centre, hops, max_nodes);
    const std::vector<uint32_t>& picked = around_centre.nodes;
    auto is_picked = [&](uint32_t n) { return std::binary_search(picked.begin(), picked.end(), n); };
    std::printf("digraph memory_graph {\n  node [shape=box, fontname=\"monospace\"];\n");
    if (around_centre.truncated) std::printf("  // truncated at %u nodes (--max-nodes)\n", max_nodes);
    for (uint32_t n : picked)
        std::printf("  n%u [label=\"%s\\nlen %u%s\"%s];\n", n, hex(g.vaddr()[n]).c_str(), g.length()[n],
                    g.params().long_gap(g.length()[n]) ? "+ (long gap)" : "", n == *centre ? ", style=bold, color=red" : "");
    for (int k = 0; k < kEdgeKinds; ++k) {
        CsrView v = g.in(static_cast<EdgeKind>(k));
        for (uint32_t n : picked)
            for (uint32_t s : v.row(n))
                if (is_picked(s))
                    std::printf("  n%u -> n%u [label=\"%s\"];\n", s, n, to_string(static_cast<EdgeKind>(k)));
    }
    std::printf("}\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) {
        std::fputs(kUsage, stderr);
        return 2;
    }
    if (std::find_if(args.begin(), args.end(), [](const std::string& a) { return a == "--help" || a == "-h"; }) !=
        args.end()) {   // dmgraph --help, dmgraph build --help, …
        std::fputs(kUsage, stdout);
        return finish_stdout("dmgraph", 0);
    }
    return cli_main("dmgraph", [&] {
        const std::string cmd = args[0];
        args.erase(args.begin());
        if (cmd == "build") return cmd_build(args);
        if (cmd == "info") return cmd_info(args);
        if (cmd == "nodes") return cmd_nodes(args);
        if (cmd == "dot") return cmd_dot(args);
        throw po::error("unknown command '" + cmd + "' (expected build, info, nodes or dot)");   // a usage error: exit 2
    });
}
