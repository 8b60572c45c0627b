// dmlabel: ground-truth labels of a Linux memory dump (argument parsing and printing only; the
// walks are train/labeler.hpp).
//
//   dmlabel [--kernel VMLINUZ_OR_VMLINUX] [--kallsyms FILE] [--system-map FILE] DUMP -o LABELS.tsv
//           [--format auto|raw|elf|lime|kdump|avml] [--dtb ADDR] [--paging x86|pae|x64|la57]
//           [--view view.txt] [--quiet] [--per-process]
// Without --kernel / --kallsyms the BTF and the symbol table come from the dump itself
// (train/kernel_from_dump.hpp); a dump with neither and no file given is an error (labels need both).
// --system-map completes the symbols of a kernel built without CONFIG_KALLSYMS_ALL (Debian's
// 686-pae: the -dbg package's System.map), shifted by the KASLR offset.
// Writes LABELS.tsv (vaddr<TAB>type<TAB>size) and LABELS.jsonl beside it. With --view, the
// dump's process/thread/fd/module counts must equal the guest's; differences are printed and the
// exit status is 1 (the label files are still written, for inspection).
#include "graph/file_io.hpp"
#include "graph/layers.hpp"
#include "graph/text_lines.hpp"
#include "train/kernel_from_dump.hpp"
#include "train/labeler.hpp"

#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <unistd.h>
#include <vector>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

const char* kUsage =
    "usage: dmlabel [--kernel VMLINUZ_OR_VMLINUX] [--kallsyms FILE] [--system-map FILE] [--dump-dir DIR] DUMP -o LABELS.tsv\n"
    "               [--format auto|raw|elf|lime|kdump|avml] [--dtb ADDR] [--paging x86|pae|x64|la57]\n"
    "               [--view view.txt] [--quiet] [--per-process]\n";

int run(int argc, char** argv) {
    po::options_description o("options");
    o.add_options()("help,h", "this text")(
        "kernel", po::value<std::string>(), "vmlinuz (bzImage, xz) or vmlinux with .BTF, or raw BTF [the dump's own BTF]")(
        "kallsyms", po::value<std::string>(), kKallsymsHelp)(
        "system-map", po::value<std::string>(), kSystemMapHelp)(
        "dump-dir", po::value<std::string>(), kDumpDirHelp)(
        "output,o", po::value<std::string>()->required(), "LABELS.tsv (LABELS.jsonl is written beside it)")(
        "format", po::value<std::string>()->default_value("auto"), "dump format: auto|raw|elf|lime|kdump|avml")(
        "dtb", po::value<std::string>(), "page-table root (physical address)")(
        "paging", po::value<std::string>(), "x86|pae|x64|la57")(
        "view", po::value<std::string>(), "guest view file to cross-check counts against")(
        "quiet,q", "print nothing but errors and view differences")(
        "per-process", "print PID, threads, open fd numbers and comm of every process");
    const auto parsed = parse_command_line(argc, argv, o, {{"dump", 1}}, kUsage);
    if (!parsed) return 0;
    const po::variables_map& vm = *parsed;
    if (!vm.count("dump")) throw InputError("missing DUMP argument");

    const auto t0 = std::chrono::steady_clock::now();
    const std::string out = vm["output"].as<std::string>();
    const bool quiet = vm.count("quiet") > 0;
    {
        std::vector<std::string> inputs{vm["dump"].as<std::string>()};   // --kernel and --kallsyms are optional
        add_inputs(kernel_files_of(vm), inputs);
        if (vm.count("view")) inputs.push_back(vm["view"].as<std::string>());
        const std::string outputs[] = {out, jsonl_path_for(out)};
        refuse_output_over_inputs(outputs, inputs);
        refuse_fd_over_inputs(STDOUT_FILENO, "standard output", inputs);
    }

    std::optional<GuestView> view;
    if (vm.count("view")) view = GuestView::load(vm["view"].as<std::string>());
    auto phys = PhysicalLayer::open(vm["dump"].as<std::string>(), dump_format_option(vm, "format"));
    std::optional<uint64_t> dtb;
    if (vm.count("dtb")) dtb = dtb_option(vm);
    std::optional<PagingMode> paging;
    if (vm.count("paging")) paging = paging_option(vm);
    const auto tl = TranslationLayer::detect(*phys, dtb, paging);
    const TranslatedMemory mem(tl);
    const auto t_layers = std::chrono::steady_clock::now();
    const KernelFiles files = kernel_files_of(vm);
    const KernelTypesAndSymbols kernel = kernel_types_and_symbols(tl, files.kernel, files.kallsyms, files.system_map);
    const btf::Btf& btf = kernel.require_btf("labeling");
    const Kallsyms& syms = kernel.require_symbols("labeling");
    const auto t_kernel = std::chrono::steady_clock::now();

    // The banner in the dump must be the kernel file's: BTF offsets of another build would
    // produce plausible-looking garbage.
    std::string banner;
    if (!kernel.banners.empty()) {
        if (auto lb = syms.address("linux_banner")) {
            uint8_t c = 0;
            for (uint64_t i = 0; i < 1024 && mem.read(*lb + i, std::span<uint8_t>(&c, 1)) && c && c != '\n'; ++i)
                banner.push_back(static_cast<char>(c));
            if (std::find(kernel.banners.begin(), kernel.banners.end(), banner) == kernel.banners.end())
                throw InputError("the dump's kernel is not the --kernel file (linux_banner in the dump: '" + banner +
                                 "', kernel file: '" + kernel.banners.back() + "')");
        }
    }

    const LabelSet set = label_kernel_objects(mem, btf, syms);
    const auto t_walk = std::chrono::steady_clock::now();
    write_labels_tsv(out, set);
    const std::string jsonl = jsonl_path_for(out);
    write_labels_jsonl(jsonl, set);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    if (!quiet) {
        for (const auto& w : set.warnings) std::fprintf(stderr, "dmlabel: warning: %s\n", terminal_text(w).c_str());
        std::printf("%s\n", banner.empty() ? "(banner not checked)" : banner.c_str());
        std::printf("paging %s, dtb %s\n", to_string(tl.mode()), hex(tl.dtb()).c_str());
        std::printf("types from %s; symbols from %s\n", kernel.btf_source.c_str(), kernel.symbols_source.c_str());
        std::printf("processes %llu threads %llu fds %llu modules %llu\n",
                    static_cast<unsigned long long>(set.counts.processes),
                    static_cast<unsigned long long>(set.counts.threads),
                    static_cast<unsigned long long>(set.counts.fds),
                    static_cast<unsigned long long>(set.counts.modules));
        auto slab_line = [](const char* cache, const SlabStats& st, const char* unreached) {
            if (st.walked)
                std::printf("%s slab cache: %llu slabs reached, %llu free objects, %llu freed-but-intact, "
                            "%llu allocated but %s\n",
                            cache, static_cast<unsigned long long>(st.slabs),
                            static_cast<unsigned long long>(st.free_objects),
                            static_cast<unsigned long long>(st.freed_intact),
                            static_cast<unsigned long long>(st.unreached), unreached);
        };
        slab_line("task_struct", set.task_slab, "on no task list");
        slab_line("cred_jar", set.cred_slab, "reached from no task or open file");
        slab_line("filp", set.file_slab, "reached from no fd table or mapping");
        slab_line("mm_struct", set.mm_slab, "reached from no task");
        for (const auto& [type, n] : set.per_type())
            std::printf("%-12s %llu\n", type.c_str(), static_cast<unsigned long long>(n));
        using secs_d = std::chrono::duration<double>;
        std::printf("%llu labels -> %s, %s (%llu warnings) in %.2f s (dump layers %.2f s, types and symbols %.2f s, "
                    "walks %.3f s)\n",
                    static_cast<unsigned long long>(set.labels.size()), out.c_str(), jsonl.c_str(),
                    static_cast<unsigned long long>(set.warnings.size()), secs, secs_d(t_layers - t0).count(),
                    secs_d(t_kernel - t_layers).count(), secs_d(t_walk - t_kernel).count());
    }
    if (vm.count("per-process")) {
        for (const auto& p : set.counts.per_process) {
            std::string fds;
            for (uint64_t fd : p.fd_numbers) fds += (fds.empty() ? "" : ",") + std::to_string(fd);
            std::printf("%lld\t%llu\t%llu\t%s\t%s\n", static_cast<long long>(p.pid),
                        static_cast<unsigned long long>(p.threads), static_cast<unsigned long long>(p.fds),
                        fds.empty() ? "-" : fds.c_str(), terminal_text(p.comm).c_str());   // a dump's bytes
        }
    }
    if (view) {
        auto diff = compare_with_view(set.counts, *view);
        for (const auto& d : diff) std::printf("%s\n", terminal_text(d).c_str());
        if (!diff.empty()) {
            std::fprintf(stderr, "dmlabel: error: dump disagrees with the guest view (%zu differences)\n", diff.size());
            return 1;
        }
        if (!quiet) std::printf("view: counts agree with the guest\n");
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli_main("dmlabel", [&] { return run(argc, argv); });
}
