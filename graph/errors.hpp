// The two user-facing error types of every stage (a small header of its own, so that a stage that
// only reports errors does not include the physical layer), and the bound on thread counts that
// every stage and tool checks. CLIs catch the errors at main, print one line and exit non-zero
// (tools/cli.hpp).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace deepmem {

// A malformed input file: `offset` is the byte offset in the file where parsing failed, and
// what() starts "at file offset 0x…: ". A fault of the whole file (no byte of memory in it) has
// no offset: what() is the message alone and offset() is 0.
class FormatError : public std::runtime_error {
public:
    FormatError(uint64_t offset, const std::string& what);
    explicit FormatError(const std::string& whole_file) : std::runtime_error(whole_file), offset_(0) {}
    uint64_t offset() const noexcept { return offset_; }
private:
    uint64_t offset_;
};

// Any other user-facing failure (cannot open, no page-table root found, output over an input, …).
class InputError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The most OpenMP threads any stage or tool accepts (--threads, run.threads): each thread owns
// buffers, so an absurd count would allocate until std::bad_alloc instead of failing clearly.
inline constexpr int kMaxThreads = 1024;

}  // namespace deepmem
