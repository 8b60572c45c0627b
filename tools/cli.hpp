// The error policy every command-line tool shares: a usage error (Boost.Program_options) prints one
// line "NAME: error: … (see NAME --help)" and exits 2; running out of memory (std::bad_alloc)
// prints "NAME: error: out of memory while <stage>: needs about N, limit M from <source>"
// (graph/memory_budget.hpp MemoryStage) and exits 1; any other error prints one line "NAME: error:
// …" and exits 1. Standard output is flushed and checked before a successful exit: output lost to a
// full disk or a closed pipe (`> /dev/full`) is an error, not exit 0.
#pragma once

#include "graph/errors.hpp"
#include "graph/file_io.hpp"   // refuse_output_over_inputs, refuse_fd_over_inputs
#include "graph/layers.hpp"   // parse_address: the one CLI number parser
#include "graph/memory_budget.hpp"   // out_of_memory_message
#include "train/distributed.hpp"
#include "train/kernel_from_dump.hpp"   // dump_dir_kernel_files

#include <boost/program_options.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <iostream>
#include <limits>
#include <memory>
#include <omp.h>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

namespace deepmem {

// The help of the options that name the kernel's symbol files, as dmlabel, dmdetect and dmbaseline
// say them (train/kernel_from_dump.hpp kernel_types_and_symbols reads the files).
inline constexpr const char* kKallsymsHelp = "the guest's /proc/kallsyms [the dump's own kallsyms tables]";
inline constexpr const char* kSystemMapHelp =
    "the build's System.map: data symbols a kernel without CONFIG_KALLSYMS_ALL leaves out of kallsyms";
inline constexpr const char* kDumpDirHelp =
    "a tools/make-dataset dump directory: its kernel files as make-dataset labelled the dump (vmlinux and "
    "System.map, else vmlinuz; kallsyms); --kernel, --kallsyms and --system-map given win";

// The kernel files a command line names: `kernel_key` (--kernel, or dmbaseline's --vmlinuz too),
// --kallsyms and --system-map, each taken from --dump-dir (dump_dir_kernel_files) when not given.
inline KernelFiles kernel_files_of(const boost::program_options::variables_map& vm,
                                   std::initializer_list<const char*> kernel_keys = {"kernel"}) {
    KernelFiles f;
    if (vm.count("dump-dir")) {
        const std::string dir = vm["dump-dir"].as<std::string>();
        f = dump_dir_kernel_files(dir);
        if (!f.kernel && !f.kallsyms) throw InputError("--dump-dir " + dir + " holds none of vmlinux, vmlinuz and kallsyms");
    }
    for (const char* k : kernel_keys)
        if (vm.count(k)) f.kernel = vm[k].as<std::string>();
    if (vm.count("kallsyms")) f.kallsyms = vm["kallsyms"].as<std::string>();
    if (vm.count("system-map")) f.system_map = vm["system-map"].as<std::string>();
    return f;
}
// Its files, for the check that no output overwrites an input.
inline void add_inputs(const KernelFiles& f, std::vector<std::string>& inputs) {
    for (const auto* file : {&f.kernel, &f.kallsyms, &f.system_map})
        if (*file) inputs.push_back(**file);
}

// Flushes std::cout and stdout; `status` unless something written to them was lost, else prints
// "NAME: error: cannot write standard output: …" and returns 1.
inline int finish_stdout(const char* name, int status) {
    errno = 0;
    const bool flushed = std::fflush(stdout) == 0;   // first: std::cout.flush() would flush stdout too
    const int e = errno;
    std::cout.flush();
    if (flushed && !std::ferror(stdout) && std::cout.good()) return status;
    std::fprintf(stderr, "%s: error: cannot write standard output: %s\n", name,
                 e ? std::strerror(e) : "write error");
    return 1;
}

// The one line for a std::bad_alloc that reached NAME's main; returns the exit status 1.
inline int report_out_of_memory(const char* name) {
    std::fprintf(stderr, "%s: error: %s\n", name, out_of_memory_message().c_str());
    return 1;
}

// `run` returns the exit status; `before_error` runs first when one is printed (e.g. to end a
// progress line).
template <class Run, class BeforeError = void (*)()>
int cli_main(const char* name, Run&& run, BeforeError before_error = [] {}) {
    remove_temporaries_on_signals();   // Ctrl-C or `timeout` leaves no -o temporary (graph/file_io.hpp)
    try {
        return finish_stdout(name, run());
    } catch (const boost::program_options::error& e) {
        before_error();
        std::fprintf(stderr, "%s: error: %s (see %s --help)\n", name, e.what(), name);
        return 2;
    } catch (const std::bad_alloc&) {
        before_error();
        return report_out_of_memory(name);
    } catch (const std::exception& e) {
        before_error();
        std::fprintf(stderr, "%s: error: %s\n", name, e.what());
        return 1;
    }
}

// cli_main for the tools that run under mpirun (dmtrain, dmdetect; they link distributed_dep):
// `run(world)` gets the MPI world (the single process without mpirun). An error that escapes
// `run` on one rank ends every rank, since the others may be waiting for it in a collective.
template <class Run, class BeforeError = void (*)()>
int cli_main_ranks(const char* name, int& argc, char**& argv, Run&& run, BeforeError before_error = [] {}) {
    std::unique_ptr<Communicator> world;
    bool returned = false;
    const int status = cli_main(name, [&] {
        world = mpi_world(argc, argv);
        const int s = run(*world);
        returned = true;
        return s;
    }, before_error);
    if (!returned && world && world->size() > 1) world->abort(status);
    return status;
}

// What a tool read past (PhysicalLayer::warnings(): a truncated dump, excluded pages …), one
// line each: "NAME: warning: …".
inline void print_warnings(const char* name, const std::vector<std::string>& warnings) {
    for (const auto& w : warnings) std::fprintf(stderr, "%s: warning: %s\n", name, w.c_str());
}

// Every tool's option syntax: Boost's default without guessing, so an option is spelled out in full
// (`--weight` is no `--weights`: an abbreviation that one day matches two options would change meaning).
inline constexpr int kCommandLineStyle =
    boost::program_options::command_line_style::default_style & ~boost::program_options::command_line_style::allow_guessing;

// An option's value through its parser (parse_detection_format, parse_dump_format, parse_paging_mode,
// parse_address …): a value the parser refuses (InputError) is a usage error (exit 2) naming the option.
template <class Parse>
auto option_value(const boost::program_options::variables_map& vm, const char* key, Parse&& parse) {
    const std::string& value = vm[key].as<std::string>();
    try {
        return parse(value);
    } catch (const InputError& e) {
        throw boost::program_options::error(std::string("--") + key + ": " + e.what());
    }
}

// The options several tools share, through option_value: a dump format (--format or --format-dump),
// --paging and --dtb.
inline auto dump_format_option(const boost::program_options::variables_map& vm, const char* key) {
    return option_value(vm, key, [](const std::string& v) { return parse_dump_format(v); });
}
inline auto paging_option(const boost::program_options::variables_map& vm) {
    return option_value(vm, "paging", [](const std::string& v) { return parse_paging_mode(v); });
}
inline uint64_t dtb_option(const boost::program_options::variables_map& vm) {
    return option_value(vm, "dtb", [](const std::string& v) { return parse_address(v, "value"); });
}

// Parses the command line: `visible` options (shown by --help, which must be one of them) plus the
// positional arguments, each (name, count; −1 = all the rest), stored as hidden string options.
// On --help prints `usage` and the options and returns nullopt (exit 0); throws
// boost::program_options::error on a bad command line.
inline std::optional<boost::program_options::variables_map> parse_command_line(
    int argc, char** argv, const boost::program_options::options_description& visible,
    std::initializer_list<std::pair<const char*, int>> positional, const char* usage) {
    namespace po = boost::program_options;
    po::options_description all;
    all.add(visible);
    po::positional_options_description pos;
    for (const auto& [name, count] : positional) {
        if (count == 1) all.add_options()(name, po::value<std::string>());
        else all.add_options()(name, po::value<std::vector<std::string>>());
        pos.add(name, count);
    }
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).style(kCommandLineStyle).run(), vm);
    if (vm.count("help")) {
        std::cout << usage << visible;
        return std::nullopt;
    }
    po::notify(vm);
    return vm;
}

// The evidence rule of every tool with --output (issue #15 item 2): the --output file when given, else
// standard output, must not be one of `inputs` (graph/file_io.hpp); throws InputError naming it.
inline void refuse_output_or_stdout_over_inputs(const boost::program_options::variables_map& vm,
                                                std::span<const std::string> inputs) {
    if (vm.count("output")) refuse_output_over_inputs(std::vector{vm["output"].as<std::string>()}, inputs);
    else refuse_fd_over_inputs(STDOUT_FILENO, "standard output", inputs);
}

// The object types an option names as a comma list (dmdetect and dmeval --types): its non-empty items,
// each once, in order; a usage error when it names none.
inline std::vector<std::string> type_list_option(const boost::program_options::variables_map& vm, const char* key) {
    std::vector<std::string> out;
    if (!vm.count(key)) return out;
    const std::string list = vm[key].as<std::string>();
    for (size_t p = 0; p <= list.size();) {
        const size_t c = std::min(list.find(',', p), list.size());
        if (std::string t = list.substr(p, c - p); !t.empty() && std::find(out.begin(), out.end(), t) == out.end())
            out.push_back(std::move(t));
        p = c + 1;
    }
    if (out.empty()) throw boost::program_options::error(std::string("--") + key + " names no type");
    return out;
}

// A whole-number option value: decimal or 0x hex (parse_address). Boost's own parser reads "-5" as
// 2^64 − 5 for an unsigned option; this one refuses a sign, spaces and values past T, naming the
// option (command line or INI key): "the argument ('-5') for option 'run.steps' is not a whole
// number in 0..18446744073709551615".
template <class T> struct Whole { T value{}; };

template <class T>
void validate(boost::any& v, const std::vector<std::string>& tokens, Whole<T>*, int) {
    namespace po = boost::program_options;
    struct NotWhole : po::validation_error {
        NotWhole(const std::string& token, const std::string& why = "")
            : po::validation_error(po::validation_error::invalid_option_value) {
            m_error_template = "the argument ('%value%') for option '%canonical_option%' is not a whole number in 0.." +
                               std::to_string(std::numeric_limits<T>::max()) + why;
            set_substitute("value", token);
        }
    };
    po::validators::check_first_occurrence(v);
    const std::string& s = po::validators::get_single_string(tokens);
    uint64_t n = 0;
    try {
        n = parse_address(s, "number");
    } catch (const InputError& e) {   // its reason in brackets, e.g. "(a leading 0: octal is not read; …)"
        const std::string what = e.what();
        const size_t why = what.rfind(" (");
        // parse_address's example is an address's (attacker 74: "--run.steps -5 … such as 0x1ad000")
        const bool generic = what.find("(expected a number such as") != std::string::npos;
        throw NotWhole(s, generic ? " (decimal digits, or hex after 0x; no sign)" : why == std::string::npos ? "" : what.substr(why));
    }
    if (n > std::numeric_limits<T>::max()) throw NotWhole(s);
    v = Whole<T>{static_cast<T>(n)};
}

// A Whole<T> option stored into *target on notify(), its current value shown as the default.
template <class T> boost::program_options::typed_value<Whole<T>>* whole_value(T* target) {
    return boost::program_options::value<Whole<T>>()
        ->default_value(Whole<T>{*target}, std::to_string(*target))
        ->notifier([target](const Whole<T>& w) { *target = w.value; });
}
// The value of an optional Whole<T> option without a default.
template <class T> std::optional<T> whole_option(const boost::program_options::variables_map& vm, const char* name) {
    if (!vm.count(name)) return std::nullopt;
    return vm[name].as<Whole<T>>().value;
}

// --threads N: 1..kMaxThreads (each OpenMP thread gets its own buffers: an absurd count would
// allocate until std::bad_alloc). Throws InputError naming `option`.
inline void set_thread_count(uint64_t n, const char* option) {
    if (n < 1 || n > uint64_t(kMaxThreads))
        throw InputError(std::string(option) + " " + std::to_string(n) + " (expected 1.." + std::to_string(kMaxThreads) + ")");
    omp_set_num_threads(static_cast<int>(n));
}

}  // namespace deepmem
