// DecodedImage: anonymous memory or an unlinked sparse temporary file (see decoded_image.hpp).
#include "graph/decoded_image.hpp"
#include "graph/layers.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace deepmem::detail {

namespace {
constexpr uint64_t kPage = 4096;

// An unlinked file in $TMPDIR: O_TMPFILE where the filesystem has it, else mkstemp + unlink.
int unlinked_temp_file(std::string& dir) {
    const char* env = std::getenv("TMPDIR");
    dir = env && *env ? env : "/tmp";
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) return fd;
    std::string name = dir + "/deepmem-decoded.XXXXXX";
    fd = ::mkostemp(name.data(), O_CLOEXEC);
    if (fd >= 0) ::unlink(name.c_str());
    return fd;
}
}  // namespace

bool all_zero(const uint8_t* p, uint64_t len) noexcept {
    if (len == 0) return true;
    if (p[0] != 0) return false;
    return std::memcmp(p, p + 1, len - 1) == 0;
}

DecodedImage::DecodedImage(uint64_t size, uint64_t budget, uint64_t anonymous_max)
    : size_(size), budget_(budget), written_((size + kPage - 1) / kPage, 0) {
    mapped_ = size_ ? size_ : 1;
    if (size_ <= anonymous_max) {
        void* p = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            throw InputError("cannot allocate " + std::to_string(size_ >> 20) + " MiB for decompressed memory: " +
                             std::strerror(errno));
        data_ = static_cast<uint8_t*>(p);
        return;
    }
    fd_ = unlinked_temp_file(dir_);
    if (fd_ < 0)
        throw InputError("cannot create a temporary file in " + dir_ + " for decompressed memory: " +
                         std::strerror(errno) + " (set TMPDIR to a writable directory)");
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
        const int e = errno;
        ::close(fd_);
        throw InputError("cannot size a temporary file in " + dir_ + " to " + std::to_string(size_ >> 20) +
                         " MiB for decompressed memory: " + std::strerror(e));
    }
}

DecodedImage::~DecodedImage() {
    if (data_) ::munmap(data_, mapped_);
    if (fd_ >= 0) ::close(fd_);
}

const char* DecodedImage::store(uint64_t off, const uint8_t* src, uint64_t len) noexcept {
    // Runs of non-zero image pages, each copied (anonymous) or written (file) at once.
    uint64_t run_from = 0, run_len = 0;
    auto flush = [&]() -> const char* {
        if (run_len == 0) return nullptr;
        if (stored_.fetch_add(run_len, std::memory_order_relaxed) + run_len > budget_) return FirstFailure::kBomb;
        const uint8_t* from = src + (run_from - off);
        if (fd_ < 0) {
            std::memcpy(data_ + run_from, from, run_len);
        } else {
            for (uint64_t done = 0; done < run_len;) {
                const ssize_t w = ::pwrite(fd_, from + done, run_len - done, static_cast<off_t>(run_from + done));
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) return "cannot write decompressed memory to the temporary file (disk full? set TMPDIR)";
                done += static_cast<uint64_t>(w);
            }
        }
        for (uint64_t p = run_from / kPage; p <= (run_from + run_len - 1) / kPage; ++p)
            std::atomic_ref<uint8_t>(written_[p]).store(1, std::memory_order_relaxed);
        run_len = 0;
        return nullptr;
    };
    for (uint64_t at = off; at < off + len;) {
        const uint64_t step = std::min(off + len - at, kPage - at % kPage);
        if (all_zero(src + (at - off), step)) {
            if (const char* e = flush()) return e;
        } else {
            if (run_len == 0) run_from = at;
            run_len += step;
        }
        at += step;
    }
    return flush();
}

void DecodedImage::seal() {
    if (fd_ >= 0) {
        void* p = ::mmap(nullptr, mapped_, PROT_READ, MAP_SHARED, fd_, 0);
        if (p == MAP_FAILED)
            throw InputError("cannot map the temporary file of decompressed memory in " + dir_ + ": " +
                             std::strerror(errno));
        data_ = static_cast<uint8_t*>(p);
        return;
    }
    if (data_ && ::mprotect(data_, mapped_, PROT_READ) != 0)
        throw InputError("cannot make decompressed memory read-only: " + std::string(std::strerror(errno)));
}

std::vector<std::pair<uint64_t, uint64_t>> DecodedImage::data_extents() const {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    for (uint64_t p = 0; p < written_.size(); ++p) {
        if (!written_[p]) continue;
        const uint64_t b = p * kPage, e = std::min(size_, b + kPage);
        if (!out.empty() && out.back().second == b) out.back().second = e;
        else out.emplace_back(b, e);
    }
    return out;
}

void FirstFailure::record(uint64_t item, const char* what) noexcept {
    while (lock_.exchange(true, std::memory_order_acquire)) {
    }
    if (item < first_.load()) {
        first_.store(item);
        what_ = what;
    }
    lock_.store(false, std::memory_order_release);
}

void FirstFailure::throw_bomb(const std::string& kind, uint64_t file_size) {
    throw InputError("refusing this " + kind + " file: it decompresses to more than " +
                     std::to_string(DecodedImage::kBombFactor) + "× its " + std::to_string(file_size) +
                     " bytes of non-zero memory (a decompression bomb or a corrupt file)");
}

}  // namespace deepmem::detail
