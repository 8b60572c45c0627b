// Internal to graph/: where compressed dump formats (kdump, AVML) put the memory they decompress,
// so that the physical layer still sees runs {paddr, offset, size} over one mapping.
//
// An image of `size` bytes reads as zeros until written. Up to `anonymous_max` bytes it is
// anonymous memory; above, an unlinked sparse file in $TMPDIR (default /tmp), written with pwrite
// and mapped read-only at seal(), so decompressed pages live in the page cache, not in the
// process, can be dropped and refaulted (file_backed()), and vanish with the process. 4 KiB pages
// (of the image) that decompress to zeros are never stored: they stay holes that read as zeros,
// cost nothing, and are left out of data_extents().
//
// Decompression bombs: every stored byte is charged to a budget fixed by the parser (24× the
// input file's size: zlib pages of real memory shrink 2–5×, snappy never beyond ~21×, and zero
// pages are free); store() returns false once it is exceeded and the parser refuses the file.
// store() and mark() may be called from many threads on disjoint byte ranges.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace deepmem::detail {

class DecodedImage {
public:
    static constexpr uint64_t kAnonymousMax = uint64_t{64} << 20;
    static constexpr uint64_t kBombFactor = 24;   // stored bytes ≤ 24 × the input file's size

    // Throws InputError when no memory or temporary file of that size can be had.
    DecodedImage(uint64_t size, uint64_t budget, uint64_t anonymous_max = kAnonymousMax);
    ~DecodedImage();
    DecodedImage(const DecodedImage&) = delete;
    DecodedImage& operator=(const DecodedImage&) = delete;

    const uint8_t* data() const noexcept { return data_; }   // after seal()
    uint64_t size() const noexcept { return size_; }
    bool file_backed() const noexcept { return fd_ >= 0; }
    uint64_t stored_bytes() const noexcept { return stored_.load(std::memory_order_relaxed); }
    uint64_t budget() const noexcept { return budget_; }

    // Copies `len` bytes to [off, off+len), leaving out the image pages they fill with zeros.
    // The caller guarantees the range lies inside the image. Returns nullptr, FirstFailure::kBomb
    // when the budget is exceeded, or why the temporary file cannot be written.
    const char* store(uint64_t off, const uint8_t* src, uint64_t len) noexcept;
    // Makes the image readable (and read-only); after this only reads happen. Throws InputError.
    void seal();
    // [begin, end) byte ranges holding stored data, page-granular and sorted.
    std::vector<std::pair<uint64_t, uint64_t>> data_extents() const;
    // Whether 4 KiB page `page` of the image holds stored data (store() met a non-zero byte in it);
    // false past the end. After the stores (seal()).
    bool stored(uint64_t page) const noexcept { return page < written_.size() && written_[page]; }

private:
    uint8_t* data_ = nullptr;
    uint64_t size_ = 0, mapped_ = 0, budget_ = 0;
    int fd_ = -1;
    std::string dir_;
    std::atomic<uint64_t> stored_{0};
    std::vector<uint8_t> written_;   // per 4 KiB page of the image: 1 once something was stored there
};

bool all_zero(const uint8_t* p, uint64_t len) noexcept;

// The first failing item (lowest index) of a parallel decompression loop, so that the error
// reported does not depend on the thread count; no exception leaves the parallel region. Items
// after a recorded failure may be skipped. `what` must be a string literal; kBomb marks a store()
// over budget and is compared by address: it is one object (an inline variable), whereas equal string
// literals of different translation units need not share one (they do not under AddressSanitizer).
class FirstFailure {
public:
    static constexpr char kBomb[] = "decompression bomb";
    bool after_failure(uint64_t item) const noexcept { return first_.load(std::memory_order_relaxed) < item; }
    void record(uint64_t item, const char* what) noexcept;
    bool failed() const noexcept { return first_.load() != UINT64_MAX; }
    uint64_t item() const noexcept { return first_.load(); }
    const char* what() const noexcept { return what_; }
    bool bomb() const noexcept { return what_ == kBomb; }
    // The InputError refusing a `kind` file of `file_size` bytes past the budget.
    [[noreturn]] static void throw_bomb(const std::string& kind, uint64_t file_size);

private:
    std::atomic<uint64_t> first_{UINT64_MAX};
    std::atomic<bool> lock_{false};
    const char* what_ = nullptr;
};

}  // namespace deepmem::detail
