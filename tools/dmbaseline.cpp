// dmbaseline: task_structs found the classic ways, for comparison with dmdetect (issue #6).
// Argument parsing and printing only; the work is train/baselines.hpp.
//
//   dmbaseline pslist|psscan DUMP [--kallsyms FILE] [--vmlinuz FILE] [--format table|json|csv]
//              [--output FILE] [--format-dump auto|raw|elf|lime] [--dtb ADDR] [--stats]
//
// Without --vmlinuz / --kallsyms the BTF and symbols come from the dump (train/kernel_from_dump.hpp);
// psscan needs the BTF only, pslist both.
//
// Output is dmdetect's (detect/detect.hpp, format_detections): type "task_struct", score 1, votes 0,
// so dmeval scores it unchanged. --stats prints psscan's candidates and rejections per check to stderr.
// A task list that pslist's walk found cut short is a warning on stderr and in the output, before the
// detections (detect/detect.hpp format_warnings: a {"record":"warning",…} line, or "# warning: …"),
// which dmeval skips; the exit status stays 0 (the best listing the bytes allow).
#include "detect/detect.hpp"
#include "graph/layers.hpp"
#include "train/baselines.hpp"
#include "train/kernel_from_dump.hpp"

#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <cstdio>
#include <unistd.h>
#include <iostream>
#include <string>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

const char* kUsage =
    "usage: dmbaseline pslist|psscan DUMP [--kallsyms FILE] [--vmlinuz FILE] [--system-map FILE] [--dump-dir DIR]\n"
    "                  [--format table|json|csv]\n"
    "                  [--output FILE] [--format-dump auto|raw|elf|lime] [--dtb ADDR] [--stats]\n"
    "pslist: a task list cut short (a broken link) is walked back from its head along prev; the warning\n"
    "goes to stderr and into the output before the detections ({\"record\":\"warning\",\"message\":...} in\n"
    "json, \"# warning: ...\" lines in table and csv; dmeval skips them); the exit status stays 0.\n";

int run(int argc, char** argv) {
    po::options_description o("options");
    o.add_options()("help,h", "this text")(
        "vmlinuz", po::value<std::string>(), "vmlinuz (bzImage) or vmlinux with .BTF, or raw BTF [the dump's own BTF]")(
        "kernel", po::value<std::string>(), "the same as --vmlinuz (dmlabel's name)")(
        "kallsyms", po::value<std::string>(), kKallsymsHelp)(
        "system-map", po::value<std::string>(), kSystemMapHelp)(
        "dump-dir", po::value<std::string>(), kDumpDirHelp)(
        "format", po::value<std::string>()->default_value("table"), "table|json|csv")(
        "output,o", po::value<std::string>(), "write here (atomically) instead of stdout")(
        "format-dump", po::value<std::string>()->default_value("auto"), "dump format: auto|raw|elf|lime")(
        "dtb", po::value<std::string>(), "page-table root (physical address)")(
        "stats", "psscan: candidates and rejections per check on stderr");
    const auto parsed = parse_command_line(argc, argv, o, {{"method", 1}, {"dump", 1}}, kUsage);
    if (!parsed) return 0;
    const po::variables_map& vm = *parsed;
    if (!vm.count("method") || !vm.count("dump")) throw po::error("missing METHOD or DUMP argument");
    const std::string method = vm["method"].as<std::string>();
    if (method != "pslist" && method != "psscan") throw po::error("METHOD must be pslist or psscan, not '" + method + "'");
    const DetectionFormat format = option_value(vm, "format", parse_detection_format);

    {
        std::vector<std::string> inputs{vm["dump"].as<std::string>()};
        add_inputs(kernel_files_of(vm, {"kernel", "vmlinuz"}), inputs);
        refuse_output_or_stdout_over_inputs(vm, inputs);
    }
    auto phys = PhysicalLayer::open(vm["dump"].as<std::string>(), dump_format_option(vm, "format-dump"));
    std::optional<uint64_t> dtb;
    if (vm.count("dtb")) dtb = dtb_option(vm);
    const TranslationLayer tl = TranslationLayer::detect(*phys, dtb);
    print_warnings("dmbaseline", tl.warnings());
    const KernelFiles files = kernel_files_of(vm, {"kernel", "vmlinuz"});   // --vmlinuz wins over --kernel
    const KernelTypesAndSymbols kernel = kernel_types_and_symbols(tl, files.kernel, files.kallsyms, files.system_map);
    const btf::Btf& btf = kernel.require_btf(method);
    const Kallsyms* syms = method == "pslist" ? &kernel.require_symbols(method) : nullptr;
    for (const auto& n : kernel.notes) std::fprintf(stderr, "dmbaseline: note: %s\n", n.c_str());

    std::vector<Detection> found;
    std::vector<std::string> walk;   // pslist's: also written into the output
    if (method == "pslist") {
        found = pslist(TranslatedMemory(tl), btf, *syms, &walk);
        print_warnings("dmbaseline: pslist", walk);
    } else {
        TaskSignature sig = TaskSignature::from_btf(btf);
        sig.kernel_base = tl.kernel_base();
        PsscanStats st;
        found = psscan(tl, sig, {}, &st);
        if (vm.count("stats")) {
            std::fprintf(stderr, "psscan: %llu candidates, %llu tasks, %llu alias pages skipped, %llu pages no data backs skipped; rejected by",
                         static_cast<unsigned long long>(st.candidates), static_cast<unsigned long long>(st.matched),
                         static_cast<unsigned long long>(st.aliases), static_cast<unsigned long long>(st.no_data_pages));
            for (const auto& [c, n] : st.rejected)
                std::fprintf(stderr, " %s %llu", to_string(c), static_cast<unsigned long long>(n));
            std::fprintf(stderr, "\n");
        }
    }
    const std::string text = format_warnings(walk, format) + format_detections(found, format);
    if (vm.count("output")) write_file_atomically(vm["output"].as<std::string>(), text);
    else std::fwrite(text.data(), 1, text.size(), stdout);   // checked by cli_main (finish_stdout)
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli_main("dmbaseline", [&] { return run(argc, argv); });
}
