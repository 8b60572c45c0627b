// File output and the safety of the evidence: the one atomic writer, the one small-file reader,
// and the same-file check every CLI makes before it writes (issue #15). One failure policy: every
// function here throws InputError naming the file and the system's reason.
//
// Atomic output
//   A file is written to a temporary ".NAME.tmp-XXXXXX" beside NAME (mkostemp: O_CREAT|O_EXCL,
//   created 0600, never opened through a symlink), then commit() sets its mode to 0666 & ~umask
//   (what open(2) would have given: a .dmg holds 64 bytes of every kernel segment, so the user's
//   umask decides who reads it), fsyncs it, renames it over NAME and fsyncs the directory. A reader
//   sees the old NAME or the new one, never a part. When commit() is not reached (an exception)
//   the temporary is removed, and so it is when the process is ended by SIGINT, SIGTERM, SIGHUP,
//   SIGQUIT, SIGPIPE, SIGXCPU or SIGXFSZ (Ctrl-C, a pipeline's `timeout`, `| head`, `ulimit`) once
//   remove_temporaries_on_signals() was called (every CLI does, tools/cli.hpp cli_main); after a
//   kill -9 it stays, and the next writer of NAME removes the
//   caller's own temporaries of NAME (files, and directories left by AtomicDirectory) in which
//   nothing was modified for an hour and that no live writer holds locked (each writer keeps an
//   flock on its temporary; a kill releases it). A NAME that is a symlink is replaced by the
//   file, not written through. A NAME that is a device or FIFO (-o /dev/null, a named pipe) is
//   written in place, not atomically: a rename would replace the node with a regular file. A NAME
//   that is a directory is refused.
//
//   Signals: the handler unlinks the live temporaries' names (async-signal-safe: a fixed table of
//   kSignalSlots names, the rest left to the hour's rule; the signals are blocked from a temporary's
//   creation to its entry in the table, and around the rename and its removal from it) and dies of
//   the signal as before (the default action, re-raised: exit status 128 + N to a shell). It
//   replaces any handler installed before (none in deepmem's tools; MPI_Init may install its own
//   after it). AtomicDirectory's temporaries are not removed on a signal (removing a tree is not
//   async-signal-safe): the hour's rule does.
//
// Atomic output directory
//   A directory of outputs (dm-attack's OUT_DIR) is built in a temporary ".NAME.tmp-XXXXXX" beside
//   NAME (mkdtemp: created 0700, same parent, so the rename stays on one filesystem), and commit()
//   sets its mode (0777 & ~umask, narrowed by an existing empty NAME's permission bits, e.g. 0700;
//   never set-id, sticky or another owner's), fsyncs it, renames it onto NAME and fsyncs the parent: NAME
//   appears whole or not at all (an existing NAME is replaced by a new inode: its ACLs and extended
//   attributes are not carried over). Without commit() (an exception, a refusal) the temporary is
//   removed with all it holds (symlinks inside are removed, not followed); after a kill -9 it
//   stays, and the next AtomicDirectory or AtomicFile of NAME removes it once nothing in it was
//   modified for an hour and no live writer holds its flock (the same rule as for files). NAME
//   must not exist or be an empty directory (rename(2) replaces only those): anything else, a
//   symlink included, is refused when the AtomicDirectory is made, before any work. The parent
//   must exist.
//
// Same file
//   Two paths name the same file when device and inode agree (through symlinks and hard links).
//   An output that is the same file as an input is refused before any work: `-o dump.elf` must not
//   destroy the evidence it reads.
#pragma once

#include "graph/errors.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deepmem {

class AtomicFile {
public:
    // Creates the temporary beside `path` (and removes stale ones of ours, see above).
    explicit AtomicFile(std::string path);
    ~AtomicFile();   // removes the temporary unless committed
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    int fd() const noexcept { return fd_; }                           // for mmap/ftruncate
    const std::string& path() const noexcept { return path_; }        // the target
    const std::string& temp_path() const noexcept { return temp_; }   // for messages
    void write(std::span<const uint8_t> bytes);                       // at the file position
    void write(std::string_view bytes);
    void write_at(uint64_t offset, std::span<const uint8_t> bytes);   // pwrite, position unchanged
    void commit();   // mode, fsync, rename over path(), fsync of the directory

    static constexpr const char* kTempInfix = ".tmp-";          // ".NAME.tmp-XXXXXX"
    static constexpr int64_t kStaleSeconds = 3600;

private:
    [[noreturn]] void fail(const std::string& what) const;   // errno → InputError
    std::string path_, temp_;
    int fd_ = -1;
    bool committed_ = false;
    bool in_place_ = false;   // a device or FIFO: temp_ == path_, no rename
    int slot_ = -1;           // its name in the signal handler's table (remove_temporaries_on_signals), or -1
};

class AtomicDirectory {
public:
    // Refuses a `path` that exists and is not an empty directory; removes stale temporaries of ours
    // (see above); creates the temporary.
    explicit AtomicDirectory(std::string path);
    ~AtomicDirectory();   // removes the temporary and its contents unless committed
    AtomicDirectory(const AtomicDirectory&) = delete;
    AtomicDirectory& operator=(const AtomicDirectory&) = delete;

    const std::string& path() const noexcept { return path_; }        // the target
    const std::string& temp_path() const noexcept { return temp_; }   // where the outputs go until commit()
    void commit();   // mode, fsync, rename onto path(), fsync of the parent

private:
    std::string path_, temp_;
    int lock_fd_ = -1;   // the temporary, flock'ed: a live writer's is never taken for stale
    bool committed_ = false;
};

// Installs the handler of the signals above that removes the live AtomicFiles'
// temporaries, then dies of the signal (above). A signal the process ignores stays ignored (nohup),
// and one it handles already stays its own (a program linking the library that installed a
// handler first: its temporaries are then removed by their destructors or, left by a kill, as stale
// ones). The handler it installs is found by a later sigaction (OpenMPI's MPI_Init installs its own
// for SIGSEGV, SIGBUS, SIGFPE and SIGILL only, none of these). Once per process; more calls do nothing.
void remove_temporaries_on_signals();

// InputError "WHAT PATH: …" unless `path` (symlinks followed) is a regular file this process may
// read: a kernel file linked to /dev/zero would be read without end, a FIFO would block.
void require_regular_file(const std::string& path, const char* what);

// `bytes` to `path` through an AtomicFile.
void write_file_atomically(const std::string& path, std::string_view bytes);

// Small files (labels, manifests, detections, models): the whole file, or InputError naming `what`
// and `path` — also for one that is not a regular file (a FIFO would block, a device never end) or
// holds more than `max_bytes` (a sparse file of 1 TiB was read until memory ran out: helper 66).
std::vector<uint8_t> read_whole_file(const std::string& path, const char* what, uint64_t max_bytes = uint64_t{1} << 30);

// [offset, end) stretches of the open file `fd` of `size` bytes that hold data (SEEK_DATA/SEEK_HOLE):
// a sparse file's holes read as zeros without being stored. One stretch for a dense file, and where
// the filesystem cannot tell (no SEEK_DATA).
std::vector<std::pair<uint64_t, uint64_t>> data_extents(int fd, uint64_t size);
// The bytes `extents` (data_extents) cover.
uint64_t held_bytes(std::span<const std::pair<uint64_t, uint64_t>> extents);
// The bytes `path` holds: the sum of its data_extents (a .dmg or raw dump padded with holes holds
// less than its size; a filesystem that compresses counts what it reads back, not what it stores); UINT64_MAX, not an error, when it cannot be opened (a query, not a read).
uint64_t held_bytes(const std::string& path);

// Device and inode of `a` and `b` (symlinks followed) agree; false when either does not exist.
bool same_file(const std::string& a, const std::string& b);

// InputError "refusing to write OUTPUT: it is the same file as the input INPUT" when an existing
// output is one of the inputs. Outputs that do not exist yet, and empty names, pass.
void refuse_output_over_inputs(std::span<const std::string> outputs, std::span<const std::string> inputs);
// The same for an open descriptor (standard output redirected onto an input: `>> dump.elf`);
// `name` names it in the message. A descriptor that is not a regular file passes.
void refuse_fd_over_inputs(int fd, const char* name, std::span<const std::string> inputs);

// dmlabel writes labels.tsv and labels.jsonl side by side: "x/labels.tsv" → "x/labels.jsonl" (any
// extension replaced; appended when none).
std::string jsonl_path_for(const std::string& tsv_path);

}  // namespace deepmem
