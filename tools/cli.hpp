// The error policy every command-line tool shares: a usage error (Boost.Program_options) prints one
// line "NAME: error: … (see NAME --help)" and exits 2; any other error prints one line "NAME: error:
// …" and exits 1.
#pragma once

#include <boost/program_options/errors.hpp>

#include <cstdio>
#include <exception>

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

}  // namespace deepmem
