// File output and same-file checks (contract: graph/file_io.hpp).
#include "graph/file_io.hpp"
#include "graph/text_lines.hpp"   // format_bytes

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <mutex>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace deepmem {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

// Directory ("" = current) and file name of a path.
std::pair<std::string, std::string> split_path(const std::string& path) {
    const size_t slash = path.find_last_of('/');
    if (slash == std::string::npos) return {"", path};
    return {path.substr(0, slash + 1), path.substr(slash + 1)};
}

// The process umask without changing it (Linux ≥ 4.7 reports it in /proc/self/status); else the
// classic set-and-restore, which is racy only against another thread creating files meanwhile.
mode_t current_umask() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::strtoul(line.c_str() + 6, nullptr, 8)) & 0777;
    const mode_t m = ::umask(022);
    ::umask(m);
    return m;
}

// Temporaries are one level deep; a deeper tree is not ours (not judged stale, not removed).
constexpr int kMaxTreeDepth = 8;

// The newest modification time in the tree at `name` in directory `dirfd`: the entry itself and,
// for a directory, all below it (symlinks not followed, other filesystems not entered). A tree
// deeper than kMaxTreeDepth or one that cannot be read counts as modified `now`.
time_t newest_mtime_at(int dirfd, const char* name, dev_t dev, int depth, time_t now) {
    struct stat st {};
    if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return now;
    time_t newest = st.st_mtime;
    if (!S_ISDIR(st.st_mode)) return newest;
    if (st.st_dev != dev || depth >= kMaxTreeDepth) return now;
    const int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR* d = fd < 0 ? nullptr : ::fdopendir(fd);
    if (!d) {
        if (fd >= 0) ::close(fd);
        return now;
    }
    while (const dirent* e = ::readdir(d)) {
        const std::string_view n = e->d_name;
        if (n != "." && n != "..") newest = std::max(newest, newest_mtime_at(::dirfd(d), e->d_name, dev, depth + 1, now));
    }
    ::closedir(d);
    return newest;
}

// Removes the entry `name` of directory `dirfd` and, for a directory, all it holds: a symlink is
// removed, never followed (each directory is opened O_NOFOLLOW and read through its descriptor, so
// a directory swapped for a symlink meanwhile is not entered); other filesystems and trees deeper
// than kMaxTreeDepth are not entered. Best effort: what cannot be removed stays.
void remove_tree_at(int dirfd, const char* name, dev_t dev, int depth) {
    if (::unlinkat(dirfd, name, 0) == 0 || (errno != EISDIR && errno != EPERM)) return;
    if (depth >= kMaxTreeDepth) return;
    const int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st {};
    DIR* d = ::fstat(fd, &st) == 0 && st.st_dev == dev ? ::fdopendir(fd) : nullptr;
    if (!d) {
        ::close(fd);
        return;
    }
    std::vector<std::string> names;   // read whole before removing: readdir during unlinks is unspecified
    while (const dirent* e = ::readdir(d)) {
        const std::string_view n = e->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
    }
    for (const std::string& n : names) remove_tree_at(::dirfd(d), n.c_str(), dev, depth + 1);
    ::closedir(d);
    ::unlinkat(dirfd, name, AT_REMOVEDIR);
}

// The stale-temporary rule of AtomicFile and AtomicDirectory: a ".NAME.tmp-XXXXXX" in `dir` that is
// a regular file or a directory (not a symlink) of this user, on the directory's filesystem, in
// which nothing was modified for kStaleSeconds and that no live writer holds locked (each keeps an
// flock on its temporary until it is done; a kill releases it), was left by a writer of NAME killed
// before commit. It is removed with all it holds.
void remove_stale_temporaries(const std::string& dir, const std::string& name) {
    DIR* d = ::opendir(dir.empty() ? "." : dir.c_str());
    if (!d) return;
    struct stat parent {};
    if (::fstat(::dirfd(d), &parent) != 0) {
        ::closedir(d);
        return;
    }
    const std::string prefix = "." + name + AtomicFile::kTempInfix;
    const time_t now = ::time(nullptr);
    std::vector<std::string> stale;
    while (const dirent* e = ::readdir(d)) {
        const std::string_view n = e->d_name;
        if (n.size() != prefix.size() + 6 || !n.starts_with(prefix)) continue;
        struct stat st {};
        if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        if (!(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) || st.st_uid != ::geteuid() || st.st_dev != parent.st_dev)
            continue;
        if (now - newest_mtime_at(::dirfd(d), e->d_name, parent.st_dev, 0, now) >= AtomicFile::kStaleSeconds)
            stale.emplace_back(n);
    }
    for (const std::string& n : stale) {
        const int fd = ::openat(::dirfd(d), n.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) continue;
        const bool live = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
        if (!live) remove_tree_at(::dirfd(d), n.c_str(), parent.st_dev, 0);
        ::close(fd);   // releases our lock
    }
    ::closedir(d);
}

// fsync of a directory ("" = current): best effort, some filesystems refuse it.
void sync_directory(const std::string& dir) {
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}

}  // namespace

// The temporaries a signal removes (remove_temporaries_on_signals): a slot is free (0), being
// written (1: the handler skips it) or holds a live temporary's name (2). Claimed and freed with
// compare-and-swap, read by the handler without a lock (lock-free atomics: async-signal-safe).
namespace {
constexpr int kSignalSlots = 64;
struct SignalSlot {
    std::atomic<int> state{0};
    char name[PATH_MAX];
};
SignalSlot g_signal_slots[kSignalSlots];
static_assert(std::atomic<int>::is_always_lock_free);

int claim_signal_slot(const std::string& name) {
    if (name.size() >= PATH_MAX) return -1;
    for (int i = 0; i < kSignalSlots; ++i) {
        int expected = 0;
        if (!g_signal_slots[i].state.compare_exchange_strong(expected, 1)) continue;
        std::memcpy(g_signal_slots[i].name, name.c_str(), name.size() + 1);
        g_signal_slots[i].state.store(2);
        return i;
    }
    return -1;   // more than kSignalSlots live temporaries: the hour's rule for this one
}
void free_signal_slot(int& slot) {
    int expected = 2;   // (a slot the handler took stays taken: the process is dying of the signal)
    if (slot >= 0) g_signal_slots[slot].state.compare_exchange_strong(expected, 0);
    slot = -1;
}
// The signals whose handler removes the temporaries (remove_temporaries_on_signals): every one whose
// default action ends the process and that a user or a pipeline sends or provokes — Ctrl-C, Ctrl-\,
// kill, a closed terminal, a reader gone (`| head`), `ulimit -t`, `ulimit -f` (attacker 105).
constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGXCPU, SIGXFSZ};
// Blocks them for its lifetime (the windows between a temporary's creation and its slot, and
// between the rename and the slot's release, are then closed: a signal waits until after).
struct CleanupSignalsBlocked {
    sigset_t old{};
    CleanupSignalsBlocked() {
        sigset_t set;
        ::sigemptyset(&set);
        for (int sig : kCleanupSignals) ::sigaddset(&set, sig);
        ::pthread_sigmask(SIG_BLOCK, &set, &old);
    }
    ~CleanupSignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &old, nullptr); }
};
extern "C" void remove_temporaries_and_die(int sig) {
    const int saved = errno;
    for (SignalSlot& s : g_signal_slots) {
        int expected = 2;   // (taken: a second signal meanwhile skips it)
        if (s.state.compare_exchange_strong(expected, 1)) ::unlink(s.name);
    }
    errno = saved;
    ::signal(sig, SIG_DFL);
    ::raise(sig);   // delivered on return: the process dies of it as it would have
}
}  // namespace

void remove_temporaries_on_signals() {
    static std::once_flag once;
    std::call_once(once, [] {
        for (int sig : kCleanupSignals) {
            struct sigaction old {};
            // ignored (nohup's, a shell's) or handled by the program that links the library: its own
            // (a handler of its own may let the run go on, its temporaries still being written; reviewer 106 L4)
            if (::sigaction(sig, nullptr, &old) != 0 || old.sa_handler != SIG_DFL) continue;
            struct sigaction sa {};
            sa.sa_handler = remove_temporaries_and_die;
            ::sigemptyset(&sa.sa_mask);
            for (int other : kCleanupSignals) ::sigaddset(&sa.sa_mask, other);   // one handler at a time
            ::sigaction(sig, &sa, nullptr);
        }
    });
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
    const auto [dir, name] = split_path(path_);
    if (name.empty() || name == "." || name == "..") throw InputError("cannot write " + path_ + ": not a file name");
    struct stat st {};
    const bool exists = ::lstat(path_.c_str(), &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) throw InputError("cannot write " + path_ + ": it is a directory");
    if (exists && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode))) {
        // A device or FIFO (-o /dev/null, a named pipe): written in place. A rename over it would
        // replace the node with a regular file (/dev/null for everyone after `-o /dev/null`).
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd_ < 0) throw InputError("cannot open " + path_ + ": " + errno_text(errno));
        temp_ = path_;
        in_place_ = true;
        return;
    }
    remove_stale_temporaries(dir, name);
    temp_ = dir + "." + name + kTempInfix + "XXXXXX";
    const CleanupSignalsBlocked blocked;   // (until its name is in the handler's table)
    fd_ = ::mkostemp(temp_.data(), O_CLOEXEC);   // O_CREAT|O_EXCL, 0600: never follows a symlink
    if (fd_ < 0) throw InputError("cannot create a temporary file beside " + path_ + ": " + errno_text(errno));
    ::flock(fd_, LOCK_EX | LOCK_NB);   // "a live writer's": best effort (a filesystem without locks has the hour)
    slot_ = claim_signal_slot(temp_);
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !in_place_) ::unlink(temp_.c_str());
    free_signal_slot(slot_);
}

void AtomicFile::fail(const std::string& what) const {
    if (in_place_) throw InputError(what + " " + path_ + ": " + errno_text(errno));
    throw InputError(what + " " + temp_ + " (for " + path_ + "): " + errno_text(errno));
}

void AtomicFile::write(std::span<const uint8_t> bytes) {
    const uint8_t* p = bytes.data();
    for (uint64_t n = bytes.size(); n > 0;) {
        const ssize_t w = ::write(fd_, p, std::min<uint64_t>(n, 1u << 30));
        if (w < 0 && errno == EINTR) continue;
        if (w == 0) errno = ENOSPC;
        if (w <= 0) fail("cannot write");
        p += w;
        n -= static_cast<uint64_t>(w);
    }
}

void AtomicFile::write(std::string_view bytes) {
    write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

void AtomicFile::write_at(uint64_t offset, std::span<const uint8_t> bytes) {
    const uint8_t* p = bytes.data();
    for (uint64_t n = bytes.size(); n > 0;) {
        const ssize_t w = ::pwrite(fd_, p, std::min<uint64_t>(n, 1u << 30), static_cast<off_t>(offset));
        if (w < 0 && errno == EINTR) continue;
        if (w == 0) errno = ENOSPC;
        if (w <= 0) fail("cannot write");
        p += w;
        offset += static_cast<uint64_t>(w);
        n -= static_cast<uint64_t>(w);
    }
}

void AtomicFile::commit() {
    if (committed_) return;
    if (in_place_) {
        const int fd = fd_;
        fd_ = -1;
        committed_ = true;
        if (::close(fd) != 0) fail("cannot close");
        return;
    }
    if (::fchmod(fd_, 0666 & ~current_umask()) != 0) fail("cannot set the mode of");
    if (::fsync(fd_) != 0) fail("cannot sync");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("cannot close");
    {
        const CleanupSignalsBlocked blocked;   // (a signal before the rename removes the temporary, after it finds no slot)
        if (::rename(temp_.c_str(), path_.c_str()) != 0) fail("cannot rename onto " + path_ + ":");
        committed_ = true;
        free_signal_slot(slot_);
    }
    sync_directory(split_path(path_).first);   // the rename itself is durable once its directory is synced
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
    AtomicFile f(path);
    f.write(bytes);
    f.commit();
}

AtomicDirectory::AtomicDirectory(std::string path) : path_(std::move(path)) {
    while (path_.size() > 1 && path_.back() == '/') path_.pop_back();   // "out/" names "out"
    const auto [dir, name] = split_path(path_);
    if (name.empty() || name == "." || name == ".." || path_ == "/")
        throw InputError("cannot write directory " + path_ + ": not a directory name");
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            throw InputError("refusing to write directory " + path_ + ": it exists and is not a directory");
        DIR* d = ::opendir(path_.c_str());
        if (!d) throw InputError("cannot read directory " + path_ + ": " + errno_text(errno));
        bool empty = true;
        while (const dirent* e = ::readdir(d)) {
            const std::string_view n = e->d_name;
            if (n != "." && n != "..") empty = false;
        }
        ::closedir(d);
        if (!empty)
            throw InputError("refusing to write directory " + path_ + ": it exists and is not empty (remove it, "
                             "or name a new one)");
    } else if (errno != ENOENT) {
        throw InputError("cannot write directory " + path_ + ": " + errno_text(errno));
    }
    remove_stale_temporaries(dir, name);
    temp_ = dir + "." + name + AtomicFile::kTempInfix + "XXXXXX";
    if (!::mkdtemp(temp_.data()))
        throw InputError("cannot create a temporary directory beside " + path_ + ": " + errno_text(errno));
    lock_fd_ = ::open(temp_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (lock_fd_ >= 0) ::flock(lock_fd_, LOCK_EX | LOCK_NB);   // held until destroyed: see remove_stale_temporaries
}

AtomicDirectory::~AtomicDirectory() {
    struct stat st {};
    if (!committed_ && ::lstat(temp_.c_str(), &st) == 0) remove_tree_at(AT_FDCWD, temp_.c_str(), st.st_dev, 0);
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

void AtomicDirectory::commit() {
    if (committed_) return;
    auto fail = [&](const std::string& what) {
        throw InputError(what + " " + temp_ + " (for " + path_ + "): " + errno_text(errno));
    };
    // An empty directory the user made keeps its restrictions (0700 for a dump's secrets): the mode is
    // what mkdir(2) would give, narrowed by the existing one's permission bits, never widened (no
    // set-id, sticky or write bits the umask takes away) and never handed to another owner
    // (attacker 14: an empty 2777 directory another user made got root's output, theirs to replace).
    mode_t mode = 0777 & ~current_umask();
    struct stat target {};
    if (::lstat(path_.c_str(), &target) == 0 && S_ISDIR(target.st_mode)) mode &= target.st_mode & 0777;
    if (::chmod(temp_.c_str(), mode) != 0) fail("cannot set the mode of");
    sync_directory(temp_);   // its entries
    if (::rename(temp_.c_str(), path_.c_str()) != 0) fail("cannot rename onto " + path_ + ":");
    committed_ = true;
    sync_directory(split_path(path_).first);
}

namespace {

// InputError "WHAT PATH: not a regular file (a FIFO)" unless `st` is a regular file's.
void refuse_irregular(const struct stat& st, const std::string& path, const char* what) {
    if (!S_ISREG(st.st_mode))
        throw InputError(std::string(what) + " " + path + ": not a regular file (" +
                         (S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                           : S_ISDIR(st.st_mode)                        ? "a directory"
                                                                                                        : "a special file") +
                         ")");
}

}  // namespace

void require_regular_file(const std::string& path, const char* what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw InputError(std::string(what) + " " + path + ": " + errno_text(errno));
    refuse_irregular(st, path, what);
    if (::access(path.c_str(), R_OK) != 0) throw InputError(std::string(what) + " " + path + ": " + errno_text(errno));
}

std::vector<uint8_t> read_whole_file(const std::string& path, const char* what, uint64_t max_bytes) {
    // Opened without blocking and checked on the descriptor: a FIFO swapped in for the file would
    // block the open, and a device would be read without end.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw InputError(std::string("cannot read ") + what + " '" + path + "': " + std::strerror(errno));
    std::vector<uint8_t> bytes;
    try {
        struct stat st {};
        if (::fstat(fd, &st) != 0) throw InputError(std::string("cannot read ") + what + " '" + path + "': " + std::strerror(errno));
        refuse_irregular(st, path, what);
        if (static_cast<uint64_t>(st.st_size) > max_bytes)
            throw InputError(std::string(what) + " " + path + ": " + std::to_string(st.st_size) + " bytes, more than the " +
                             format_bytes(max_bytes) + " such a file is read up to");
        bytes.reserve(static_cast<size_t>(st.st_size));
        uint8_t chunk[1 << 16];
        for (;;) {
            const ssize_t r = ::read(fd, chunk, sizeof chunk);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) throw InputError(std::string("cannot read ") + what + " '" + path + "': " + std::strerror(errno));
            if (r == 0) break;
            if (bytes.size() + static_cast<uint64_t>(r) > max_bytes)   // grown since fstat
                throw InputError(std::string(what) + " " + path + ": more than the " + format_bytes(max_bytes) +
                                 " such a file is read up to");
            bytes.insert(bytes.end(), chunk, chunk + r);
        }
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    return bytes;
}

namespace {

bool same_inode(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

}  // namespace

std::vector<std::pair<uint64_t, uint64_t>> data_extents(int fd, uint64_t size) {
    std::vector<std::pair<uint64_t, uint64_t>> extents;
    for (off_t pos = 0; size > 0 && static_cast<uint64_t>(pos) < size;) {
        off_t data = ::lseek(fd, pos, SEEK_DATA);
        if (data < 0) {
            if (errno != ENXIO) extents.emplace_back(static_cast<uint64_t>(pos), size);   // unsupported: the rest is data
            break;
        }
        off_t hole = ::lseek(fd, data, SEEK_HOLE);
        if (hole < 0 || hole <= data) hole = static_cast<off_t>(size);
        extents.emplace_back(static_cast<uint64_t>(data), static_cast<uint64_t>(hole));
        pos = hole;
    }
    return extents;
}

uint64_t held_bytes(std::span<const std::pair<uint64_t, uint64_t>> extents) {
    uint64_t held = 0;
    for (const auto& [begin, end] : extents) held += end - begin;
    return held;
}

uint64_t held_bytes(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return UINT64_MAX;
    struct stat st {};
    uint64_t held = UINT64_MAX;
    if (::fstat(fd, &st) == 0) held = held_bytes(data_extents(fd, static_cast<uint64_t>(st.st_size)));
    ::close(fd);
    return held;
}

bool same_file(const std::string& a, const std::string& b) {
    struct stat sa {}, sb {};
    if (a.empty() || b.empty() || ::stat(a.c_str(), &sa) != 0 || ::stat(b.c_str(), &sb) != 0) return false;
    return same_inode(sa, sb);
}

void refuse_output_over_inputs(std::span<const std::string> outputs, std::span<const std::string> inputs) {
    for (const std::string& out : outputs)
        for (const std::string& in : inputs)
            if (same_file(out, in))
                throw InputError("refusing to write " + out + ": it is the same file as the input " + in);
}

void refuse_fd_over_inputs(int fd, const char* name, std::span<const std::string> inputs) {
    struct stat so {};
    if (::fstat(fd, &so) != 0 || !S_ISREG(so.st_mode)) return;
    for (const std::string& in : inputs) {
        struct stat si {};
        if (!in.empty() && ::stat(in.c_str(), &si) == 0 && same_inode(so, si))
            throw InputError(std::string("refusing to write ") + name + ": it is the same file as the input " + in);
    }
}

std::string jsonl_path_for(const std::string& tsv) {
    auto slash = tsv.find_last_of('/');
    auto dot = tsv.find_last_of('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash) || dot == slash + 1)
        return tsv + ".jsonl";
    return tsv.substr(0, dot) + ".jsonl";
}

}  // namespace deepmem
