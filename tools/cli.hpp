// The error policy every command-line tool shares: a usage error (Boost.Program_options) prints one
// line "NAME: error: … (see NAME --help)" and exits 2; any other error prints one line "NAME: error:
// …" and exits 1.
#pragma once

#include <boost/program_options.hpp>

#include <cstdio>
#include <exception>
#include <initializer_list>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace deepmem {

// `run` returns the exit status; `before_error` runs first when one is printed (e.g. to end a
// progress line).
template <class Run, class BeforeError = void (*)()>
int cli_main(const char* name, Run&& run, BeforeError before_error = [] {}) {
    try {
        return run();
    } catch (const boost::program_options::error& e) {
        before_error();
        std::fprintf(stderr, "%s: error: %s (see %s --help)\n", name, e.what(), name);
        return 2;
    } catch (const std::exception& e) {
        before_error();
        std::fprintf(stderr, "%s: error: %s\n", name, e.what());
        return 1;
    }
}

// What a tool read past (PhysicalLayer::warnings(): a truncated dump, excluded pages …), one
// line each: "NAME: warning: …".
inline void print_warnings(const char* name, const std::vector<std::string>& warnings) {
    for (const auto& w : warnings) std::fprintf(stderr, "%s: warning: %s\n", name, w.c_str());
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
    po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
    if (vm.count("help")) {
        std::cout << usage << visible;
        return std::nullopt;
    }
    po::notify(vm);
    return vm;
}

}  // namespace deepmem
