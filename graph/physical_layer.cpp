// PhysicalLayer: mmap the dump, let the format parser (raw / ELF core / LiME) describe where each
// physical byte lives in the file, then answer "bytes at physical address P" by binary search over
// the sorted runs. All bounds checking happens here, once: after open() no run can leave the file.
#include "graph/dump_formats.hpp"
#include "graph/file_io.hpp"
#include "graph/layers.hpp"
#include "graph/text_lines.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

namespace deepmem {

uint64_t parse_address(const std::string& s, const char* what) {
    // Decimal, or hex after 0x/0X; nothing else. std::stoull's base 0 would read "010" as octal 8
    // (a silently wrong step count or address) and skip leading spaces and a '+'.
    const bool is_hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const char* first = s.data() + (is_hex ? 2 : 0);
    const char* last = s.data() + s.size();
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(first, last, v, is_hex ? 16 : 10);
    if (first == last || *first == '-' || *first == '+' || ec != std::errc{} || end != last)
        throw InputError(std::string("bad ") + what + " '" + s + "' (expected a number such as 0x1ad000)");
    if (!is_hex && s.size() > 1 && s[0] == '0')
        throw InputError(std::string("bad ") + what + " '" + s + "' (a leading 0: octal is not read; write the number without it, or 0x… for hex)");
    return v;
}

std::string hex(uint64_t v) {
    char buf[19];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

FormatError::FormatError(uint64_t offset, const std::string& what)
    : std::runtime_error("at file offset " + hex(offset) + ": " + what), offset_(offset) {}

MappedFile::MappedFile(const std::string& path) : path_(path) {
    // O_NONBLOCK: a named pipe with no writer would block open() for ever; it is refused below
    // (only regular files are mapped), and on a regular file the flag changes nothing.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) throw InputError("cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        throw InputError("cannot stat " + path + ": " + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw InputError(path + " is not a regular file");
    }
    size_ = static_cast<uint64_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            std::string why = std::strerror(e);
            if (e == ENOMEM) {   // say what was asked against what the limit allows
                why += " (the mapping needs " + format_bytes(size_) + " of address space";
                struct rlimit as {};
                if (::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY)
                    why += "; RLIMIT_AS (ulimit -v) is " + format_bytes(as.rlim_cur) + " for the whole process";
                why += ")";
            }
            throw InputError("cannot mmap " + path + ": " + why);
        }
        data_ = static_cast<const uint8_t*>(p);
    }
    extents_ = deepmem::data_extents(fd, size_);
    ::close(fd);   // the mapping keeps the file alive
}

// madvise(MADV_DONTNEED) of [p, p+len) rounded outwards to pages, clipped to the mapping [base,
// base+size) rounded up to its last page. Only for read-only file-backed mappings, whose pages
// come back from the page cache.
static void drop_pages(const uint8_t* base, uint64_t size, const uint8_t* p, uint64_t len) noexcept {
    constexpr uintptr_t kPage = 4096;
    if (len == 0) return;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(base) + size + kPage - 1) & ~(kPage - 1);
    uintptr_t a = reinterpret_cast<uintptr_t>(p), b = a + len;
    a &= ~(kPage - 1);
    b = std::min(end, (b + kPage - 1) & ~(kPage - 1));
    if (b > a) ::madvise(reinterpret_cast<void*>(a), b - a, MADV_DONTNEED);
}

void MappedFile::release(uint64_t offset, uint64_t len) const noexcept {
    if (!data_ || offset >= size_) return;
    drop_pages(data_, size_, data_ + offset, std::min(len, size_ - offset));
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

const char* to_string(DumpFormat f) {
    switch (f) {
    case DumpFormat::Auto: return "auto";
    case DumpFormat::Raw: return "raw";
    case DumpFormat::Elf: return "elf";
    case DumpFormat::Lime: return "lime";
    case DumpFormat::Kdump: return "kdump";
    case DumpFormat::Avml: return "avml";
    }
    return "?";
}

DumpFormat parse_dump_format(const std::string& s) {
    if (s == "auto") return DumpFormat::Auto;
    if (s == "raw") return DumpFormat::Raw;
    if (s == "elf") return DumpFormat::Elf;
    if (s == "lime") return DumpFormat::Lime;
    if (s == "kdump") return DumpFormat::Kdump;
    if (s == "avml") return DumpFormat::Avml;
    throw InputError("unknown dump format '" + s + "' (expected auto|raw|elf|lime|kdump|avml)");
}

namespace detail {

ParsedDump parse_raw(std::span<const uint8_t> file) {
    if (file.empty()) throw FormatError(0, "empty dump file (expected at least one byte of memory)");
    ParsedDump d;
    d.runs.push_back({0, 0, file.size()});
    return d;
}

static bool starts_with(std::span<const uint8_t> file, std::string_view magic, uint64_t at = 0) noexcept {
    return file.size() >= at + magic.size() && std::memcmp(file.data() + at, magic.data(), magic.size()) == 0;
}

DumpFormat sniff_format(std::span<const uint8_t> file) noexcept {
    if (starts_with(file, "\x7f" "ELF")) return DumpFormat::Elf;
    if (file.size() >= 4 && le32(file.data()) == 0x4C694D45u) return DumpFormat::Lime;
    if (starts_with(file, "AVML")) return DumpFormat::Avml;
    if (starts_with(file, "KDUMP   ") || starts_with(file, std::string_view("makedumpfile\0", 13)))
        return DumpFormat::Kdump;
    return DumpFormat::Raw;
}

void refuse_unreadable(std::span<const uint8_t> file, const std::string& name) {
    if (starts_with(file, "QEVM"))
        throw InputError(name + " is a QEMU migration stream (QEVM magic, what a plain `virsh dump` or `migrate` "
                                "writes), not a memory dump: write one with `virsh dump --memory-only --format elf "
                                "DOMAIN FILE` or QMP `dump-guest-memory` (HMP `dump-guest-memory FILE`)");
    if (starts_with(file, "DISKDUMP"))
        throw InputError(name + " is an old diskdump file (DISKDUMP magic), which is not supported: convert it "
                                "with makedumpfile to kdump-compressed or ELF");
    struct Archive { std::string_view magic; uint64_t at; const char* what; const char* how; };
    static constexpr Archive kArchives[] = {
        {"\x1f\x8b", 0, "a gzip file", "gunzip -k"},
        {std::string_view("\xfd" "7zXZ\0", 6), 0, "an xz file", "unxz -k"},
        {"\x28\xb5\x2f\xfd", 0, "a zstd file", "unzstd"},
        {"BZh", 0, "a bzip2 file", "bunzip2 -k"},
        {"\x04\x22\x4d\x18", 0, "an lz4 file", "unlz4"},
        {"PK\x03\x04", 0, "a zip archive", "unzip"},
        {"ustar", 257, "a tar archive", "tar -xf"},
    };
    for (const Archive& a : kArchives)
        if (starts_with(file, a.magic, a.at))
            throw InputError(name + " is " + a.what + ", not a memory dump: unpack it first (" + a.how + " " + name +
                             ") and give the dump inside (raw, ELF, LiME, kdump or AVML), or force --format raw");
}

}  // namespace detail

// What a file of that format is called in messages ("kdump file", not "kdump dump").
static const char* format_noun(DumpFormat f) {
    switch (f) {
    case DumpFormat::Raw: return "raw dump";
    case DumpFormat::Elf: return "ELF core";
    case DumpFormat::Lime: return "LiME file";
    case DumpFormat::Kdump: return "kdump file";
    case DumpFormat::Avml: return "AVML file";
    case DumpFormat::Auto: break;
    }
    return "dump";
}

struct PhysicalLayerParsers {
    static std::unique_ptr<PhysicalLayer> parse(std::span<const uint8_t> bytes, DumpFormat format,
                                                std::shared_ptr<MappedFile> file, bool strict,
                                                const InterruptFn& interrupt) {
        if (format == DumpFormat::Auto) {
            detail::refuse_unreadable(bytes, file ? file->path() : std::string("the input"));
            format = detail::sniff_format(bytes);
        }
        // the bytes the file holds (a sparse file's holes left out): what the bounds scale by
        const uint64_t held = file ? std::min<uint64_t>(held_bytes(file->data_extents()), bytes.size()) : bytes.size();
        detail::ParsedDump d;
        switch (format) {
        case DumpFormat::Raw: d = detail::parse_raw(bytes); break;
        case DumpFormat::Elf: d = detail::parse_elf_core(bytes, strict); break;
        case DumpFormat::Lime:
            d = detail::parse_lime(bytes, strict, [&](uint64_t off, uint64_t len) {
                if (file) file->release(off, len);
            });
            break;
        case DumpFormat::Kdump: d = detail::parse_kdump(bytes, strict, held, interrupt); break;
        case DumpFormat::Avml: d = detail::parse_avml(bytes, strict, held, interrupt); break;
        case DumpFormat::Auto: break;
        }
        std::unique_ptr<PhysicalLayer> layer(new PhysicalLayer());
        layer->format_ = format;
        layer->dump_size_ = bytes.size();
        layer->held_bytes_ = held;
        // at most the file: each byte counts once (the parsers count the union of what pages take);
        // the .dmg loader relies on it (GraphBuildInfo::stored_page_bytes ≤ dump_bytes)
        if (d.stored_page_bytes) layer->stored_page_bytes_ = std::min<uint64_t>(*d.stored_page_bytes, bytes.size());
        layer->cpus_ = std::move(d.cpus);
        layer->warnings_ = std::move(d.warnings);
        layer->undecodable_ = std::move(d.undecodable);
        if (d.image) {   // compressed: the runs index the decompressed image, not the file
            layer->image_ = std::move(d.image);
            layer->bytes_ = {layer->image_->data(), layer->image_->size()};
            layer->runs_ = normalise(std::move(d.runs), layer->bytes_);
            layer->data_runs_ = data_only(layer->runs_, layer->image_->data_extents());
        } else {
            layer->file_ = std::move(file);
            layer->bytes_ = bytes;
            layer->runs_ = normalise(std::move(d.runs), bytes);
            layer->data_runs_ = layer->file_ ? data_only(layer->runs_, layer->file_->data_extents()) : layer->runs_;
        }
        layer->assembled_base_ = layer->bytes_.size();
        assemble_split_pages(*layer);
        if (layer->runs_.empty()) {
            std::string why;   // what is wrong with the file, else what the parser kept going past
            for (const auto& w : d.faults.empty() ? layer->warnings_ : d.faults) why += "; " + w;
            // About the whole file, not one offset (tester 10: "at file offset 0x0" for a kdump
            // whose descriptors all have size 0 pointed at nothing wrong).
            throw FormatError(std::string("no physical memory in the ") + format_noun(format) +
                                     " (expected at least one non-empty range)" + why);
        }
        return layer;
    }

    // 4 KiB pages whose bytes are all present but come from two or more runs at non-contiguous
    // offsets (a LiME range per 2 KiB, PT_LOADs split mid-page with other bytes between the
    // parts): no pointer into the mapping can serve them, so find() — and with it the root search,
    // the walker and the graph — read them as absent (the tester's attack 8, F5). They are
    // copied, in physical order, into an image of their own (DecodedImage: anonymous up to 64 MiB,
    // else an unlinked file in $TMPDIR, so bounded by the dump's size and releasable like the
    // file), and their runs replaced by runs over it. A page needs at least two runs, so there
    // are fewer such pages than runs; finding them is one pass over the runs.
    static void assemble_split_pages(PhysicalLayer& layer) {
        constexpr uint64_t kPage = 4096;
        const std::vector<PhysicalRun>& runs = layer.runs_;
        std::vector<uint64_t> split;   // ascending page addresses
        for (size_t i = 0; i < runs.size();) {
            size_t j = i + 1;   // [i, j): runs contiguous in physical space
            while (j < runs.size() && runs[j].paddr == runs[j - 1].paddr + runs[j - 1].size) ++j;
            const uint64_t lo = runs[i].paddr, hi = runs[j - 1].paddr + runs[j - 1].size;
            for (size_t k = i + 1; k < j; ++k) {
                const uint64_t page = runs[k].paddr & ~(kPage - 1);
                if (runs[k].paddr == page || page < lo || hi - page < kPage) continue;
                if (split.empty() || split.back() != page) split.push_back(page);
            }
            i = j;
        }
        if (split.empty()) return;
        const uint64_t bytes = split.size() * kPage;
        auto image = std::make_shared<detail::DecodedImage>(bytes, bytes);
        constexpr uint64_t kBatchPages = 64, kReleaseBytes = uint64_t{16} << 20;
        std::vector<uint8_t> batch(kBatchPages * kPage);
        uint64_t unreleased = 0;
        for (uint64_t k0 = 0; k0 < split.size(); k0 += kBatchPages) {
            const uint64_t n = std::min<uint64_t>(kBatchPages, split.size() - k0);
            for (uint64_t k = 0; k < n; ++k)
                if (!layer.read(split[k0 + k], std::span<uint8_t>(batch.data() + k * kPage, kPage)))
                    throw std::logic_error("a split page is not present");   // found present above
            if (const char* why = image->store(k0 * kPage, batch.data(), n * kPage))
                throw InputError(std::string("cannot keep ") + std::to_string(split.size()) +
                                 " pages split across ranges of the dump: " + why);
            if ((unreleased += n * kPage) >= kReleaseBytes) {
                layer.release_all();
                unreleased = 0;
            }
        }
        image->seal();
        // The runs without the split pages, merged in physical order with one run per split page
        // (consecutive split pages are consecutive in the image: one run).
        const uint64_t base = layer.bytes_.size();
        std::vector<PhysicalRun> out;
        out.reserve(runs.size() + split.size());
        auto push = [&](const PhysicalRun& r) {
            if (!out.empty()) {
                PhysicalRun& last = out.back();
                const bool same_mapping = (last.file_offset >= base) == (r.file_offset >= base);
                if (same_mapping && last.paddr + last.size == r.paddr && last.file_offset + last.size == r.file_offset) {
                    last.size += r.size;
                    return;
                }
            }
            out.push_back(r);
        };
        size_t s = 0;
        for (const PhysicalRun& r : runs) {
            uint64_t a = r.paddr;
            const uint64_t end = r.paddr + r.size;
            while (s < split.size() && split[s] + kPage <= a) ++s;
            while (a < end) {
                if (s < split.size() && split[s] < end) {
                    const uint64_t page = split[s];
                    if (page > a) push({a, r.file_offset + (a - r.paddr), page - a});
                    if (page >= a) push({page, base + s * kPage, kPage});   // once, at its first run
                    a = std::min(end, page + kPage);
                    if (page + kPage <= end) ++s;
                } else {
                    push({a, r.file_offset + (a - r.paddr), end - a});
                    a = end;
                }
            }
        }
        // data_runs(): the old ones minus the split pages, plus the image's stored (non-zero) pages.
        std::vector<PhysicalRun> data;
        data.reserve(layer.data_runs_.size());
        s = 0;
        for (const PhysicalRun& r : layer.data_runs_) {
            uint64_t a = r.paddr;
            const uint64_t end = r.paddr + r.size;
            while (s < split.size() && split[s] + kPage <= a) ++s;
            for (size_t t = s; a < end; ++t) {
                const uint64_t cut = t < split.size() && split[t] < end ? std::max(a, split[t]) : end;
                if (cut > a) data.push_back({a, r.file_offset + (a - r.paddr), cut - a});
                a = t < split.size() && split[t] < end ? std::min(end, split[t] + kPage) : end;
            }
        }
        std::vector<PhysicalRun> image_runs;
        for (const PhysicalRun& r : out)
            if (r.file_offset >= base) image_runs.push_back({r.paddr, r.file_offset - base, r.size});
        for (PhysicalRun r : data_only(image_runs, image->data_extents())) {
            r.file_offset += base;
            data.push_back(r);
        }
        std::sort(data.begin(), data.end(), [](const PhysicalRun& a, const PhysicalRun& b) { return a.paddr < b.paddr; });
        layer.runs_ = std::move(out);
        layer.data_runs_ = std::move(data);
        layer.assembled_ = std::move(image);
        layer.assembled_pages_ = split.size();
    }

    // Intersects runs (sorted by paddr) with the file's data extents (sorted by offset).
    static std::vector<PhysicalRun> data_only(const std::vector<PhysicalRun>& runs,
                                              const std::vector<std::pair<uint64_t, uint64_t>>& extents) {
        std::vector<PhysicalRun> out;
        for (const auto& r : runs) {
            auto it = std::upper_bound(extents.begin(), extents.end(), r.file_offset,
                                       [](uint64_t off, const auto& e) { return off < e.first; });
            if (it != extents.begin()) --it;
            for (; it != extents.end() && it->first < r.file_offset + r.size; ++it) {
                uint64_t lo = std::max(it->first, r.file_offset), hi = std::min(it->second, r.file_offset + r.size);
                if (lo < hi) out.push_back({r.paddr + (lo - r.file_offset), lo, hi - lo});
            }
        }
        return out;
    }

    // Drops empty runs, re-checks every run against the file, and resolves overlaps in linear
    // time (after sorting), by three rules:
    //  1. Runs that place the same file bytes at the same physical addresses (one delta
    //     paddr − offset; QEMU's `dump-guest-memory -p` points every PT_LOAD of a physical page at
    //     the one copy of it) are merged without comparing anything.
    //  2. After that no two runs may share file bytes: no writer puts one byte at two physical
    //     addresses, and a crafted file doing it thousands of times would make rule 3 quadratic.
    //  3. Runs overlapping in physical space from different file bytes (a page written once per
    //     virtual mapping) must hold identical bytes; differing copies are a FormatError. With
    //     rule 2 each file byte is compared at most once.
    // Finally runs contiguous both in physical space and in the file are merged.
    static std::vector<PhysicalRun> normalise(std::vector<PhysicalRun> runs, std::span<const uint8_t> file) {
        const uint64_t file_size = file.size();
        std::erase_if(runs, [](const PhysicalRun& r) { return r.size == 0; });
        for (const auto& r : runs) {
            if (!detail::in_file(r.file_offset, r.size, file_size))
                throw FormatError(r.file_offset, "memory range of " + hex(r.size) +
                                                     " bytes runs past end of file (" + hex(file_size) + ")");
            // Parsers refuse header ranges beyond MAXPHYADDR; this catches what they derive.
            if (!detail::below_maxphyaddr(r.paddr, r.size))
                throw FormatError(r.file_offset, "physical range at " + hex(r.paddr) + " of " + hex(r.size) +
                                                     " bytes ends beyond the 52-bit physical address space");
        }
        // Rule 1: union of the runs of one delta.
        auto delta = [](const PhysicalRun& r) { return r.paddr - r.file_offset; };
        std::sort(runs.begin(), runs.end(), [&](const PhysicalRun& a, const PhysicalRun& b) {
            return delta(a) != delta(b) ? delta(a) < delta(b) : a.file_offset < b.file_offset;
        });
        std::vector<PhysicalRun> merged;
        merged.reserve(runs.size());
        for (const PhysicalRun& r : runs) {
            if (!merged.empty() && delta(merged.back()) == delta(r) &&
                r.file_offset <= merged.back().file_offset + merged.back().size) {
                PhysicalRun& last = merged.back();
                const uint64_t end = std::max(last.file_offset + last.size, r.file_offset + r.size);
                last.size = end - last.file_offset;
                continue;
            }
            merged.push_back(r);
        }
        // Rule 2: no file byte in two runs.
        std::sort(merged.begin(), merged.end(),
                  [](const PhysicalRun& a, const PhysicalRun& b) { return a.file_offset < b.file_offset; });
        for (size_t i = 1; i < merged.size(); ++i)
            if (merged[i].file_offset < merged[i - 1].file_offset + merged[i - 1].size)
                throw FormatError(merged[i].file_offset,
                                  "the bytes at file offset " + hex(merged[i].file_offset) + " are given two physical "
                                  "addresses (" + hex(merged[i - 1].paddr + (merged[i].file_offset - merged[i - 1].file_offset)) +
                                  " and " + hex(merged[i].paddr) + "): overlapping ranges of one file are refused");
        // Rule 3 and the final merge, in physical order.
        std::sort(merged.begin(), merged.end(), [](const PhysicalRun& a, const PhysicalRun& b) {
            return a.paddr != b.paddr ? a.paddr < b.paddr : a.file_offset < b.file_offset;
        });
        std::vector<PhysicalRun> out;
        out.reserve(merged.size());
        for (PhysicalRun r : merged) {
            if (!out.empty()) {
                PhysicalRun& last = out.back();
                uint64_t end = last.paddr + last.size;
                if (r.paddr < end) {
                    uint64_t overlap = std::min(end, r.paddr + r.size) - r.paddr;
                    const uint8_t* a = file.data() + last.file_offset + (r.paddr - last.paddr);
                    const uint8_t* b = file.data() + r.file_offset;
                    if (std::memcmp(a, b, overlap) != 0)
                        throw FormatError(r.file_offset, "physical range at " + hex(r.paddr) +
                                                             " overlaps the range ending at " + hex(end) +
                                                             " with different contents");
                    if (overlap == r.size) continue;
                    r.paddr += overlap;
                    r.file_offset += overlap;
                    r.size -= overlap;
                }
                if (r.paddr == end && r.file_offset == last.file_offset + last.size) {
                    last.size += r.size;
                    continue;
                }
            }
            out.push_back(r);
        }
        return out;
    }
};

std::unique_ptr<PhysicalLayer> PhysicalLayer::open(const std::string& path, DumpFormat format, bool strict,
                                                   const InterruptFn& interrupt) {
    auto file = std::make_shared<MappedFile>(path);
    auto bytes = file->bytes();
    auto layer = PhysicalLayerParsers::parse(bytes, format, std::move(file), strict, interrupt);
    // The parser's walk over headers spread through the file (a LiME header before each of
    // thousands of ranges, with the kernel's fault-around) maps nearly every page: drop them, so
    // that the peak is not the file size before the first pass has begun (issue #11 item 7).
    layer->release_all();
    return layer;
}

std::unique_ptr<PhysicalLayer> PhysicalLayer::from_bytes(std::span<const uint8_t> bytes, DumpFormat format,
                                                         bool strict) {
    return PhysicalLayerParsers::parse(bytes, format, nullptr, strict, {});
}

bool PhysicalLayer::file_backed() const noexcept {
    return image_ ? image_->file_backed() : file_ != nullptr;
}

uint64_t PhysicalLayer::max_paddr() const noexcept {
    return runs_.empty() ? 0 : runs_.back().paddr + runs_.back().size;
}

uint64_t PhysicalLayer::present_bytes() const noexcept {
    uint64_t n = 0;
    for (const auto& r : runs_) n += r.size;
    return n;
}

// Whether some byte of [paddr, paddr+len) lies in one of the sorted, disjoint `runs`.
static bool overlaps(std::span<const PhysicalRun> runs, uint64_t paddr, uint64_t len) noexcept {
    auto it = std::upper_bound(runs.begin(), runs.end(), paddr,
                               [](uint64_t p, const PhysicalRun& r) { return p < r.paddr; });
    if (it != runs.begin() && paddr - std::prev(it)->paddr < std::prev(it)->size) return true;
    return it != runs.end() && it->paddr - paddr < len;
}

bool PhysicalLayer::any_present(uint64_t paddr, uint64_t len) const noexcept { return overlaps(runs_, paddr, len); }
bool PhysicalLayer::has_data(uint64_t paddr, uint64_t len) const noexcept { return overlaps(data_runs_, paddr, len); }

uint64_t PhysicalLayer::undecodable_bytes() const noexcept {
    uint64_t n = 0;
    for (const auto& u : undecodable_) n += u.second;
    return n;
}

bool PhysicalLayer::undecodable(uint64_t paddr) const noexcept {
    auto it = std::upper_bound(undecodable_.begin(), undecodable_.end(), paddr,
                               [](uint64_t p, const std::pair<uint64_t, uint64_t>& u) { return p < u.first; });
    return it != undecodable_.begin() && paddr - std::prev(it)->first < std::prev(it)->second;
}

// drop_pages() of [p, p+len) ∩ the mapping [base, base+size).
static void drop_within(const uint8_t* base, uint64_t size, const uint8_t* p, uint64_t len) noexcept {
    const uintptr_t b = reinterpret_cast<uintptr_t>(base), a = reinterpret_cast<uintptr_t>(p);
    const uintptr_t lo = std::max(a, b), hi = std::min(a + len, b + size);
    if (hi > lo) drop_pages(base, size, base + (lo - b), hi - lo);
}

void PhysicalLayer::release(const uint8_t* bytes, uint64_t size) const noexcept {
    // Rounded outwards (drop_pages): rounded inwards, a range whose bytes are not page-aligned in
    // the file (each LiME range follows a 32-byte header) kept its two end pages, and a 4 KiB
    // range every page: 65,600 one-page ranges of the 256 MiB dev dump peaked at 356 MB RSS
    // against the ELF's 147 MB. Each mapping is dropped only when file-backed: anonymous pages
    // would come back as zeros.
    if (file_backed()) drop_within(bytes_.data(), bytes_.size(), bytes, size);
    if (assembled_ && assembled_->file_backed()) drop_within(assembled_->data(), assembled_->size(), bytes, size);
}

void PhysicalLayer::Releaser::add(const uint8_t* bytes, uint64_t size) noexcept {
    constexpr uintptr_t kGap = 4096;
    const uintptr_t b = reinterpret_cast<uintptr_t>(bytes), h = reinterpret_cast<uintptr_t>(hi_);
    if (lo_ && b >= h && b - h <= kGap && (b + size) - reinterpret_cast<uintptr_t>(lo_) <= kMaxPending) {
        hi_ = bytes + size;
        return;
    }
    flush();
    lo_ = bytes;
    hi_ = bytes + size;
}

void PhysicalLayer::Releaser::flush() noexcept {
    if (lo_) phys_.release(lo_, static_cast<uint64_t>(hi_ - lo_));
    lo_ = hi_ = nullptr;
}

void PhysicalLayer::release_all() const noexcept {
    release(bytes_.data(), bytes_.size());
    if (assembled_) release(assembled_->data(), assembled_->size());
}

const uint8_t* PhysicalLayer::at(uint64_t offset) const noexcept {
    return offset < assembled_base_ || !assembled_ ? bytes_.data() + offset
                                                   : assembled_->data() + (offset - assembled_base_);
}

// Index of the run containing paddr, or runs_.size().
static size_t run_index(std::span<const PhysicalRun> runs, uint64_t paddr) noexcept {
    auto it = std::upper_bound(runs.begin(), runs.end(), paddr,
                               [](uint64_t p, const PhysicalRun& r) { return p < r.paddr; });
    if (it == runs.begin()) return runs.size();
    --it;
    if (paddr - it->paddr >= it->size) return runs.size();
    return static_cast<size_t>(it - runs.begin());
}

const uint8_t* PhysicalLayer::find(uint64_t paddr, uint64_t len) const noexcept {
    size_t i = run_index(runs_, paddr);
    if (i == runs_.size()) return nullptr;
    const PhysicalRun& r = runs_[i];
    uint64_t off = paddr - r.paddr;
    if (len > r.size - off) return nullptr;
    return at(r.file_offset + off);
}

bool PhysicalLayer::read(uint64_t paddr, std::span<uint8_t> out) const noexcept {
    uint64_t done = 0;
    while (done < out.size()) {
        uint64_t p = paddr + done;
        if (p < paddr) return false;   // wrapped past 2^64
        size_t i = run_index(runs_, p);
        if (i == runs_.size()) return false;
        const PhysicalRun& r = runs_[i];
        uint64_t off = p - r.paddr;
        uint64_t n = std::min<uint64_t>(r.size - off, out.size() - done);
        std::memcpy(out.data() + done, at(r.file_offset + off), n);
        done += n;
    }
    return true;
}

}  // namespace deepmem
