// kdump-compressed dumps (makedumpfile's diskdump_mod.h; QEMU include/sysemu/dump.h, dump/dump.c):
//
//   block 0          disk_dump_header: "KDUMP   ", u32 header_version, new_utsname (6 × 65 bytes),
//                    timestamp, then u32 status, block_size, sub_hdr_size (blocks), bitmap_blocks,
//                    max_mapnr, total_ram_blocks, device_blocks, written_blocks, current_cpu, nr_cpus
//                    — at byte 424.. in the 64-bit layout (timestamp 22 bytes), 412.. in the 32-bit one
//   block 1          kdump_sub_header (64-bit: u64 phys_base, u32 dump_level, u32 split, u64 start_pfn,
//                    end_pfn, offset_vmcoreinfo, size_vmcoreinfo, offset_note, size_note,
//                    offset_eraseinfo, size_eraseinfo, start_pfn_64, end_pfn_64, max_mapnr_64;
//                    32-bit: the same with u32 phys_base, start_pfn, end_pfn and size_* fields),
//                    then the ELF notes (QEMU: a "QEMU" CPU-state note per vCPU)
//   1+sub_hdr_size   bitmap_blocks blocks: 1st bitmap (pages the machine had), 2nd bitmap (pages
//                    dumped), one bit per pfn, LSB first
//   then             page_desc {u64 offset, u32 size, u32 flags, u64 page_flags} per set bit of the
//                    2nd bitmap, in pfn order, then the page data they point at: flags 0 = raw
//                    (size = block_size), 0x1 zlib, 0x2 lzo1x, 0x4 snappy, 0x20 zstd
// The flattened form (makedumpfile -F, QEMU's kdump-* formats) is a 4096-byte header
// "makedumpfile\0", i64 BE type 1, i64 BE version 1, then records {i64 BE offset, i64 BE size, bytes}
// writing the plain file out of order, ended by offset = size = -1; later records win.
// The header fields are little-endian (x86). block_size is the page size.
#include "graph/dump_formats.hpp"
#include "graph/dump_writers.hpp"
#include "graph/parallel_errors.hpp"
#include "graph/text_lines.hpp"

#include <lzo/lzo1x.h>
#include <omp.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <map>

namespace deepmem {
namespace detail {

namespace {

constexpr uint64_t kFlatHeaderSize = 4096;   // MAX_SIZE_MDF_HEADER
constexpr uint64_t kFlatRecord = 16;
constexpr uint64_t kDescSize = 24;
constexpr uint32_t kX86Page = 4096;
constexpr uint32_t kZlib = 0x1, kLzo = 0x2, kSnappy = 0x4, kIncomplete = 0x8, kZstd = 0x20;
constexpr uint32_t kKnownFlags = kZlib | kLzo | kSnappy | kZstd;   // page_desc.flags that say how a page is stored
constexpr uint64_t kMaxNotes = uint64_t{64} << 20;
constexpr uint64_t kUtsMachine = 12 + 4 * 65;   // new_utsname.machine
constexpr uint64_t kStoreBatchBytes = 256 << 10;   // decompressed pages handed to the image at once

struct HeaderLayout {
    bool is64;
    uint64_t status, block_size, sub_hdr_size, bitmap_blocks, max_mapnr, nr_cpus, size;
};
constexpr HeaderLayout kHeader64{true, 424, 428, 432, 436, 440, 460, 464};
constexpr HeaderLayout kHeader32{false, 412, 416, 420, 424, 428, 448, 452};

struct SubLayout {
    unsigned word;   // bytes of phys_base, start_pfn, end_pfn and the size_* fields
    uint64_t dump_level, split, start_pfn, end_pfn, offset_note, size_note, start_pfn_64, end_pfn_64,
        max_mapnr_64, size;
};
constexpr SubLayout kSub64{8, 8, 12, 16, 24, 48, 56, 80, 88, 96, 104};
constexpr SubLayout kSub32{4, 4, 8, 12, 16, 32, 40, 56, 64, 72, 80};

uint64_t be64(const uint8_t* p) noexcept {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
    return v;
}
uint64_t le_n(const uint8_t* p, unsigned n) noexcept { return n == 8 ? le64(p) : le32(p); }

// The plain kdump file as a sparse sequence of segments {plain offset, size, file offset}: the
// whole file for a plain dump, the resolved records of a flattened one.
class KdumpSource {
public:
    struct Segment { uint64_t offset, size, file_offset; };

    KdumpSource(std::span<const uint8_t> file, std::vector<Segment> segments)
        : file_(file), segs_(std::move(segments)) {}

    // [off, off+len) as one pointer into the file, or nullptr when not contiguous / not present.
    const uint8_t* view(uint64_t off, uint64_t len) const noexcept {
        const Segment* s = find(off);
        if (!s || len > s->offset + s->size - off) return nullptr;
        return file_.data() + s->file_offset + (off - s->offset);
    }
    // Copies the present prefix of [off, off+len) into out; returns its length.
    uint64_t copy(uint64_t off, uint8_t* out, uint64_t len) const noexcept {
        uint64_t done = 0;
        const Segment* s = find(off);
        while (s && done < len) {
            const uint64_t at = off + done;
            const uint64_t n = std::min(len - done, s->offset + s->size - at);
            std::memcpy(out + done, file_.data() + s->file_offset + (at - s->offset), n);
            done += n;
            if (done == len) break;
            ++s;
            if (s == segs_.data() + segs_.size() || s->offset != off + done) break;
        }
        return done;
    }
    // One past the last plain byte present (the plain file's size when nothing is cut).
    uint64_t end() const noexcept { return segs_.empty() ? 0 : segs_.back().offset + segs_.back().size; }
    bool present(uint64_t off, uint64_t len) const noexcept {
        if (view(off, len)) return true;
        const Segment* s = find(off);
        uint64_t at = off, end = off + len;
        if (end < off) return false;
        while (s && at < end) {
            at = s->offset + s->size;
            ++s;
            if (at >= end) return true;
            if (s == segs_.data() + segs_.size() || s->offset != at) return false;
        }
        return at >= end;
    }
    // For error messages: the file offset holding plain offset `off`, else the file size.
    uint64_t file_offset(uint64_t off) const noexcept {
        const Segment* s = find(off);
        return s ? s->file_offset + (off - s->offset) : file_.size();
    }

private:
    const Segment* find(uint64_t off) const noexcept {
        auto it = std::upper_bound(segs_.begin(), segs_.end(), off,
                                   [](uint64_t o, const Segment& s) { return o < s.offset; });
        if (it == segs_.begin()) return nullptr;
        --it;
        if (off - it->offset >= it->size) return nullptr;
        return &*it;
    }
    std::span<const uint8_t> file_;
    std::vector<Segment> segs_;
};

// makedumpfile's flattened form → segments of the plain file. Later records overwrite earlier
// ones: records are taken newest first and keep only the bytes no newer record covered, so the
// work is O(n log n) in the number of records whatever they overlap.
// A cut file (strict: FormatError) sets `cut` to what is missing, for parse_kdump's one warning.
KdumpSource flattened_source(std::span<const uint8_t> file, bool strict, std::string& flat_cut) {
    const uint64_t size = file.size();
    if (size < kFlatHeaderSize)
        throw FormatError(0, "truncated makedumpfile flattened header (" + std::to_string(size) + " of 4096 bytes)");
    if (be64(file.data() + 16) != 1)
        throw FormatError(16, "makedumpfile_header type " + std::to_string(be64(file.data() + 16)) +
                                  " (expected 1, TYPE_FLAT_HEADER)");
    if (be64(file.data() + 24) != 1)
        throw FormatError(24, "makedumpfile_header version " + std::to_string(be64(file.data() + 24)) +
                                  " (expected 1, VERSION_FLAT_HEADER)");
    struct Record { uint64_t offset, size, file_offset; };
    std::vector<Record> records;
    bool ended = false;
    uint64_t pos = kFlatHeaderSize;
    std::string cut;
    while (pos < size) {
        if (size - pos < kFlatRecord) {
            cut = "a record header is cut at file offset " + hex(pos);
            break;
        }
        const uint64_t off = be64(file.data() + pos), n = be64(file.data() + pos + 8);
        if (off == ~uint64_t{0} && n == ~uint64_t{0}) {
            ended = true;
            break;
        }
        if (off >> 62)
            throw FormatError(pos, "makedumpfile_data_header offset " + hex(off) +
                                       " (expected a non-negative 62-bit value, or -1 with buf_size -1 at the end)");
        if (n >> 62)
            throw FormatError(pos + 8, "makedumpfile_data_header buf_size " + hex(n) +
                                           " (expected a non-negative 62-bit value, or -1 with offset -1 at the end)");
        const uint64_t data = pos + kFlatRecord;
        if (n > size - data) {
            cut = "the record for plain offset " + hex(off) + " has " + hex(size - data) + " of its " + hex(n) + " bytes";
            records.push_back({off, size - data, data});
            break;
        }
        records.push_back({off, n, data});
        pos = data + n;
    }
    if (!ended && cut.empty()) cut = "the file ends without the end-of-records marker";
    if (!ended) {
        if (strict) throw FormatError(size, "truncated flattened kdump file: " + cut);
        flat_cut = cut;
    }
    std::map<uint64_t, uint64_t> covered;   // start → end, disjoint
    std::vector<KdumpSource::Segment> segs;
    for (auto r = records.rbegin(); r != records.rend(); ++r) {
        if (r->size == 0) continue;
        uint64_t a = r->offset, b = r->offset + r->size;
        auto it = covered.upper_bound(a);
        if (it != covered.begin() && std::prev(it)->second >= a) --it;
        uint64_t at = a;
        uint64_t lo = a, hi = b;
        while (it != covered.end() && it->first <= b) {
            if (it->first > at) segs.push_back({at, it->first - at, r->file_offset + (at - a)});
            at = std::max(at, it->second);
            lo = std::min(lo, it->first);
            hi = std::max(hi, it->second);
            it = covered.erase(it);
        }
        if (at < b) segs.push_back({at, b - at, r->file_offset + (at - a)});
        covered.emplace(lo, hi);
    }
    std::sort(segs.begin(), segs.end(), [](const auto& x, const auto& y) { return x.offset < y.offset; });
    return KdumpSource(file, std::move(segs));
}

// What is wrong with the disk_dump_header fields block_size, sub_hdr_size and bitmap_blocks in
// layout L (naming the field and its value, as diskdump_mod.h names them; `at` its offset), or ""
// when plausible.
std::string implausible(const uint8_t* h, const HeaderLayout& L, uint64_t& at) {
    const uint32_t bs = le32(h + L.block_size), sub = le32(h + L.sub_hdr_size), bitmap = le32(h + L.bitmap_blocks);
    if (bs != kX86Page) {   // makedumpfile and QEMU write the page size (tester 8: 512 read as "no physical memory")
        at = L.block_size;
        return "block_size " + std::to_string(bs) + " (expected 4096, the x86 page size, which makedumpfile and "
                                                    "QEMU write)";
    }
    if (sub < 1) {
        at = L.sub_hdr_size;
        return "sub_hdr_size " + std::to_string(sub) + " (expected at least 1 block for kdump_sub_header)";
    }
    if (bitmap < 2) {
        at = L.bitmap_blocks;
        return "bitmap_blocks " + std::to_string(bitmap) + " (expected at least 2, for the two bitmaps)";
    }
    if (bitmap % 2 != 0) {   // else the 2nd bitmap and the page descriptors are read a block off
        at = L.bitmap_blocks;
        return "bitmap_blocks " + std::to_string(bitmap) +
               " (expected an even number: the two page bitmaps are of one length, in whole blocks)";
    }
    return {};
}

struct Page {
    uint64_t pfn, data, desc;   // page frame, plain offset of its data, plain offset of its descriptor
    uint32_t size, flags;
};

// Per-thread decompressors.
struct Decompressor {
    z_stream zs{};
    bool zs_ready = false;
    ZSTD_DCtx* zstd = nullptr;
    ~Decompressor() {
        if (zs_ready) inflateEnd(&zs);
        if (zstd) ZSTD_freeDCtx(zstd);
    }
    // Decodes one page of `bs` bytes; returns what is wrong, or nullptr.
    const char* page(const uint8_t* in, uint32_t size, uint32_t flags, uint8_t* out, uint64_t bs) noexcept {
        switch (flags) {
        case 0:
            std::memcpy(out, in, bs);
            return nullptr;
        case kZlib: {
            if (!zs_ready) {
                if (inflateInit(&zs) != Z_OK) return "zlib cannot start";
                zs_ready = true;
            } else if (inflateReset(&zs) != Z_OK) {
                return "zlib cannot reset";
            }
            zs.next_in = const_cast<Bytef*>(in);
            zs.avail_in = size;
            zs.next_out = out;
            zs.avail_out = static_cast<uInt>(bs);
            const int r = inflate(&zs, Z_FINISH);
            if (r == Z_STREAM_END && zs.total_out == bs) return nullptr;
            if (r == Z_DATA_ERROR) return "zlib error Z_DATA_ERROR (not a zlib stream, or a bad check value)";
            if (r == Z_STREAM_END) return "zlib stream ends before block_size bytes";
            if (zs.avail_out == 0) return "zlib stream holds more than block_size bytes";
            return "zlib stream cut before its end";
        }
        case kLzo: {
            lzo_uint n = bs;
            const int r = lzo1x_decompress_safe(in, size, out, &n, nullptr);
            if (r == LZO_E_OUTPUT_OVERRUN) return "lzo1x data holds more than block_size bytes";
            if (r != LZO_E_OK) return "lzo1x error (corrupt or cut data)";
            if (n != bs) return "lzo1x data ends before block_size bytes";
            return nullptr;
        }
        case kSnappy: {
            size_t n = 0;
            const char* c = reinterpret_cast<const char*>(in);
            if (!snappy::GetUncompressedLength(c, size, &n)) return "snappy length preamble unreadable";
            if (n != bs) return "snappy length preamble is not block_size";
            if (!snappy::RawUncompress(c, size, reinterpret_cast<char*>(out))) return "snappy error (corrupt data)";
            return nullptr;
        }
        case kZstd: {
            if (!zstd && !(zstd = ZSTD_createDCtx())) return "zstd cannot start";
            const size_t r = ZSTD_decompressDCtx(zstd, out, bs, in, size);
            if (ZSTD_isError(r)) return "zstd error (corrupt data, or more than block_size bytes)";
            if (r != bs) return "zstd frame ends before block_size bytes";
            return nullptr;
        }
        }
        return "unknown compression flags (expected 0, or zlib 0x1, lzo 0x2, snappy 0x4 or zstd 0x20)";
    }
};

}  // namespace

ParsedDump parse_kdump(std::span<const uint8_t> file, bool strict, uint64_t held, const InterruptFn& interrupt) {
    held = std::min<uint64_t>(held, file.size());
    ParsedDump d;
    const bool flat = file.size() >= 13 && std::memcmp(file.data(), "makedumpfile\0", 13) == 0;
    std::string flat_cut;   // a cut flattened file: said in the one truncation warning below
    KdumpSource src = flat ? flattened_source(file, strict, flat_cut)
                           : KdumpSource(file, {{0, file.size(), 0}});
    const char* kind = flat ? "flattened kdump" : "kdump";

    uint8_t h[464] = {};
    if (src.copy(0, h, sizeof h) < kHeader32.size)
        throw FormatError(src.file_offset(0), std::string("truncated ") + kind + " header (expected 464 bytes)");
    if (std::memcmp(h, "KDUMP   ", 8) != 0)
        throw FormatError(src.file_offset(0), std::string(kind) + " without the \"KDUMP   \" signature at its start");
    const uint32_t version = le32(h + 8);
    const bool machine32 = std::memcmp(h + kUtsMachine, "i386", 4) == 0 || std::memcmp(h + kUtsMachine, "i486", 4) == 0 ||
                           std::memcmp(h + kUtsMachine, "i586", 4) == 0 || std::memcmp(h + kUtsMachine, "i686", 4) == 0;
    const HeaderLayout* L = nullptr;
    uint64_t at64 = 0, at32 = 0;
    const std::string why64 = implausible(h, kHeader64, at64), why32 = implausible(h, kHeader32, at32);
    if (machine32 && why32.empty()) L = &kHeader32;
    else if (why64.empty()) L = &kHeader64;
    else if (why32.empty()) L = &kHeader32;
    else   // named in the layout the machine field asks for
        throw FormatError(src.file_offset(machine32 ? at32 : at64),
                          std::string(kind) + " disk_dump_header " + (machine32 ? why32 : why64));
    const SubLayout& S = L->is64 ? kSub64 : kSub32;
    const uint64_t bs = le32(h + L->block_size);
    const uint64_t sub_blocks = le32(h + L->sub_hdr_size), bitmap_blocks = le32(h + L->bitmap_blocks);
    const uint32_t status = le32(h + L->status);
    uint64_t max_mapnr = le32(h + L->max_mapnr);
    uint64_t missing_pages = 0;   // dumped pages without data in the file
    std::string cut_note;

    // Sub-header: 64-bit max_mapnr, split range, dump level, notes.
    uint8_t sub[104] = {};
    const bool have_sub = src.copy(bs, sub, S.size) == S.size;
    uint64_t pfn_lo = 0, pfn_hi = UINT64_MAX;
    uint32_t dump_level = 0;
    if (!have_sub) {
        if (strict) throw FormatError(src.file_offset(bs), std::string(kind) + " sub-header missing (file cut)");
        cut_note = "the sub-header is missing";
    } else {
        dump_level = le32(sub + S.dump_level);
        if (version >= 6 && le64(sub + S.max_mapnr_64) != 0) max_mapnr = le64(sub + S.max_mapnr_64);
        if (max_mapnr > kMaxPhysical / bs)
            throw FormatError(src.file_offset(bs + S.max_mapnr_64),
                              "kdump_sub_header max_mapnr_64 " + hex(max_mapnr) + " of " + std::to_string(bs) +
                                  "-byte pages ends beyond the 52-bit physical address space (x86 MAXPHYADDR)");
        if (version >= 2 && le32(sub + S.split) != 0) {
            pfn_lo = version >= 6 ? le64(sub + S.start_pfn_64) : le_n(sub + S.start_pfn, S.word);
            pfn_hi = version >= 6 ? le64(sub + S.end_pfn_64) : le_n(sub + S.end_pfn, S.word);
            d.warnings.push_back("this kdump file is one part of a split dump (pfn " + hex(pfn_lo) + "-" + hex(pfn_hi) +
                                 "); memory of the other parts reads as absent");
        }
        const uint64_t note_off = le64(sub + S.offset_note), note_size = le_n(sub + S.size_note, S.word);
        if (version >= 4 && note_size > 0) {
            if (note_size > kMaxNotes)
                throw FormatError(src.file_offset(bs + S.size_note), "kdump_sub_header size_note " +
                                                                          std::to_string(note_size) + " (at most 64 MiB of ELF notes)");
            std::vector<uint8_t> notes(note_size);
            const std::string field = "kdump_sub_header offset_note " + hex(note_off) + ", size_note " +
                                      std::to_string(note_size);
            // In the sub-header's blocks, where makedumpfile and QEMU put them: missing there is a cut
            // file; elsewhere past the end, a corrupt field. Notes too big for their bytes, or that
            // do not parse, are skipped with a warning naming them (like an ELF core's), strict or not
            // said as such: the CPU state is lost, not memory.
            const uint64_t sub_end = (1 + sub_blocks) * bs;
            const bool in_sub = note_off >= bs && note_off <= sub_end && note_size <= sub_end - note_off;
            if (src.copy(note_off, notes.data(), note_size) == note_size) {
                const size_t cpus = d.cpus.size();
                try {
                    parse_elf_notes(notes, src.file_offset(note_off), L->is64, d);
                } catch (const FormatError& e) {
                    if (strict) throw;
                    d.cpus.resize(cpus);
                    d.warnings.push_back(std::string(kind) + " file: the CPU notes (" + field + ") do not parse (" +
                                         e.what() + "); they are skipped, so the page-table root is searched for");
                }
            } else if (in_sub || note_off < src.end()) {
                if (strict) throw FormatError(src.file_offset(note_off), std::string(kind) + " notes missing (file cut)");
                d.warnings.push_back("truncated " + std::string(kind) + " file: the CPU notes (" + field + ") are cut, "
                                     "so the page-table root is searched for");
            } else {
                if (strict)
                    throw FormatError(src.file_offset(bs + S.offset_note), field + " lies past the end of the file (" +
                                                                               hex(src.end()) + " bytes)");
                d.warnings.push_back(std::string(kind) + " file: the CPU notes (" + field + ") lie past the end of "
                                     "the file (" + hex(src.end()) + " bytes), a corrupt sub-header; they are skipped, "
                                     "so the page-table root is searched for");
            }
        }
    }
    if (status & kIncomplete)
        d.warnings.push_back("makedumpfile marked this kdump file incomplete (it ran out of space); pages it did "
                             "not write read as absent");

    // Bitmaps: bits beyond max_mapnr, beyond the split range, or not in the file are not pages.
    const uint64_t bitmap_off = (1 + sub_blocks) * bs;
    // A header field that puts the bitmaps past the end of the file is a cut file only when the
    // field is plausible: makedumpfile and QEMU size the sub-header to the kdump_sub_header and its
    // notes (at most kMaxNotes here), and the bitmaps to two of one bit per pfn below max_mapnr,
    // in whole blocks (dump/dump.c: DIV_ROUND_UP(DIV_ROUND_UP(max_mapnr, 8), block_size) × 2).
    if (bitmap_off > src.end() && sub_blocks * bs > kMaxNotes + 2 * bs)
        throw FormatError(src.file_offset(L->sub_hdr_size),
                          std::string(kind) + " disk_dump_header sub_hdr_size " + std::to_string(sub_blocks) + " (blocks of " +
                              std::to_string(bs) + " bytes) puts the page bitmaps at offset " + hex(bitmap_off) +
                              ", beyond the file's " + hex(src.end()) +
                              " bytes: a corrupt header (a sub-header holds at most 64 MiB of notes)");
    const uint64_t bitmap_need = 2 * ((max_mapnr + 8 * bs - 1) / (8 * bs));
    if (bitmap_off + bitmap_blocks * bs > src.end() && bitmap_blocks > bitmap_need + 2)
        throw FormatError(src.file_offset(L->bitmap_blocks),
                          std::string(kind) + " disk_dump_header bitmap_blocks " + std::to_string(bitmap_blocks) +
                              " (blocks of " + std::to_string(bs) + " bytes) would end the page bitmaps at offset " +
                              hex(bitmap_off + bitmap_blocks * bs) + ", beyond the file's " + hex(src.end()) +
                              " bytes, where max_mapnr " + hex(max_mapnr) + " needs " + std::to_string(bitmap_need) +
                              " blocks: a corrupt header");
    const uint64_t half = bitmap_blocks / 2 * bs;
    const uint64_t want = std::min<uint64_t>(half, file.size());   // a bitmap longer than the file cannot be there
    const uint64_t max_pfn = std::min<uint64_t>({max_mapnr, kMaxPhysical / bs, pfn_hi});
    std::vector<uint8_t> bm1(want, 0), bm2(want, 0);
    const uint64_t got1 = src.copy(bitmap_off, bm1.data(), want), got2 = src.copy(bitmap_off + half, bm2.data(), want);
    const uint64_t nbits = std::min<uint64_t>(std::min(got1, got2) * 8, max_pfn);
    if (std::min(got1, got2) * 8 < std::min<uint64_t>(half * 8, max_pfn)) {
        if (strict) throw FormatError(src.file_offset(bitmap_off), std::string(kind) + " page bitmap cut at pfn " + hex(nbits));
        if (cut_note.empty())
            cut_note = bitmap_off < src.end() ? "the page bitmap ends at pfn " + hex(nbits)
                                              : "the file ends at " + hex(src.end()) + ", before the page bitmaps at offset " +
                                                    hex(bitmap_off) + " that disk_dump_header sub_hdr_size " +
                                                    std::to_string(sub_blocks) + " (blocks of " + std::to_string(bs) +
                                                    " bytes) places";
    }

    // Dumped pages and their descriptors, in pfn order.
    std::vector<uint64_t> pfns;
    uint64_t excluded = 0;
    for (uint64_t w = pfn_lo / 8; w * 8 < nbits; ++w) {
        if ((bm1[w] | bm2[w]) == 0) continue;
        for (unsigned b = 0; b < 8; ++b) {
            const uint64_t pfn = w * 8 + b;
            if (pfn < pfn_lo || pfn >= nbits) continue;
            const bool dumped = (bm2[w] >> b) & 1, exists = (bm1[w] >> b) & 1;
            if (dumped) pfns.push_back(pfn);
            else excluded += exists;
            if (pfns.size() * kDescSize > file.size() + kDescSize) break;   // descriptors beyond the file: missing
        }
        if (pfns.size() * kDescSize > file.size() + kDescSize) break;
    }
    if (excluded > 0)
        d.warnings.push_back(std::to_string(excluded) + " pages the machine had were left out of this kdump file "
                             "(makedumpfile dump level " + std::to_string(dump_level) +
                             ": zero, cache, user or free pages); they read as absent");
    const uint64_t desc_off = (1 + sub_blocks + bitmap_blocks) * bs;
    std::vector<uint8_t> descs(pfns.size() * kDescSize);
    const uint64_t ndesc = src.copy(desc_off, descs.data(), descs.size()) / kDescSize;
    std::vector<Page> pages;
    pages.reserve(ndesc);
    // Descriptors of size 0 (makedumpfile leaves those of pages it never wrote zeroed), and those
    // whose data lies outside the file: a cut file when the later pages' data is missing too (the
    // data follows the descriptors in pfn order; later pages present point at earlier bytes, the
    // one shared zero page), else corrupt descriptors (tester 8: both were called a cut file).
    uint64_t unwritten = 0, outside = 0, present_after = 0, present_end = 0;
    std::vector<std::string> unwritten_first;
    // Pages listed as dumped that cannot be decoded (size-0 descriptors, then pages that do not
    // decompress): d.undecodable, absent but not cut off.
    std::vector<uint64_t> undecodable_pfns;
    const Page* first_outside = nullptr;
    Page outside_page{};
    for (uint64_t i = 0; i < pfns.size(); ++i) {
        if (i >= ndesc) {
            missing_pages += pfns.size() - i;
            if (cut_note.empty()) cut_note = "the page descriptors end at pfn " + hex(pfns[i]);
            break;
        }
        const uint8_t* pd = descs.data() + i * kDescSize;
        Page p{pfns[i], le64(pd), desc_off + i * kDescSize, le32(pd + 8), le32(pd + 12)};
        if (p.size == 0) {
            if (++unwritten <= 3) unwritten_first.push_back(hex(p.pfn));
            undecodable_pfns.push_back(p.pfn);
            continue;
        }
        const uint32_t comp = p.flags & kKnownFlags;
        const std::string desc = "page_desc of pfn " + hex(p.pfn) + ": ";
        if (p.size > bs)
            throw FormatError(src.file_offset(p.desc + 8), desc + "size " + std::to_string(p.size) +
                                                               " (expected at most block_size " + std::to_string(bs) + ")");
        if (std::popcount(comp) > 1)
            throw FormatError(src.file_offset(p.desc + 12), desc + "flags " + hex(p.flags) +
                                                                " (expected at most one compression bit)");
        // Bits no compression defines (tester 8: 0x80 was refused as "size 208 of an uncompressed
        // page"): the page cannot be decoded, and reads as absent like a corrupt one (below).
        if (p.flags == comp && comp == 0 && p.size != bs)
            throw FormatError(src.file_offset(p.desc + 8), desc + "size " + std::to_string(p.size) +
                                                               " of an uncompressed page (expected block_size " +
                                                               std::to_string(bs) + ")");
        if (!src.present(p.data, p.size)) {
            if (outside++ == 0) first_outside = &(outside_page = p);
            continue;
        }
        if (outside == 0) present_end = std::max(present_end, p.data + p.size);
        else if (p.data >= present_end) ++present_after;
        pages.push_back(p);
    }
    const bool corrupt_offsets = outside > 0 && present_after > 0;
    if (outside > 0 && !corrupt_offsets) {
        missing_pages += outside;
        if (cut_note.empty()) cut_note = "the data of pfn " + hex(first_outside->pfn) + " onward is missing";
    }
    if (corrupt_offsets) {
        const Page& p = *first_outside;
        const std::string fault = std::string(kind) + " file: " + std::to_string(outside) + " of " +
                                  std::to_string(pfns.size()) + " page descriptors point outside the file (" +
                                  hex(src.end()) + " bytes; pfn " + hex(p.pfn) + ": offset " + hex(p.data) + ", size " +
                                  std::to_string(p.size) + ") while the data of later pages is present: corrupt "
                                  "descriptors, not a cut file";
        if (strict) throw FormatError(src.file_offset(p.desc), fault);
        d.lacks(fault, "; those pages read as absent");
    }
    if (unwritten > 0) {
        const std::string fault = std::string(kind) + " file: " + std::to_string(unwritten) + " of " +
                                  std::to_string(pfns.size()) + " page descriptors have size 0 (" +
                                  sample_list("pfn", "pfns", unwritten_first, unwritten) +
                                  "): pages makedumpfile never wrote, or corrupt descriptors";
        if (strict) throw FormatError(file.size(), fault);
        d.lacks(fault, "; they read as absent");
    }
    if (!flat_cut.empty()) cut_note = flat_cut + (cut_note.empty() ? "" : "; " + cut_note);
    if (missing_pages > 0 || !cut_note.empty()) {
        const std::string what = pfns.empty() ? std::string("no dumped page can be listed")
                                              : std::to_string(missing_pages) + " of " + std::to_string(pfns.size()) +
                                                    " dumped pages have no data in the file";
        if (strict) throw FormatError(file.size(), std::string("truncated ") + kind + " file: " + what + " (" + cut_note + ")");
        d.lacks(std::string("truncated ") + kind + " file (" + hex(file.size()) + " bytes): " + what +
                    (cut_note.empty() ? "" : " (" + cut_note + ")"),
                pfns.empty() ? "" : "; they read as absent");
    }

    // Decompress every page, in parallel, into the image: page i at i × block_size. A page whose
    // data does not decompress to exactly block_size bytes is left out (absent, like a page the
    // bitmap leaves out) with one warning for all of them, unless strict; a store() failure (the
    // bomb budget, the temporary file) refuses the file either way. Pages go to the image in
    // batches of consecutive pages (one store(), so one pwrite per run of non-zero pages when the
    // image is file-backed, instead of one per page).
    auto image = std::make_shared<DecodedImage>(pages.size() * bs, DecodedImage::kBombFactor * held);
    FirstFailure failure;             // refusals
    FirstFailure first_corrupt;       // the lowest corrupt page, for the warning (never skips pages)
    std::vector<uint8_t> corrupt(pages.size(), 0);   // 1 = does not decompress; disjoint writes
    const uint64_t batch = std::max<uint64_t>(1, kStoreBatchBytes / bs);
    const uint64_t batches = (pages.size() + batch - 1) / batch;
    if (lzo_init() != LZO_E_OK) throw InputError("liblzo2 cannot start (lzo_init)");
    ParallelErrors errors;   // std::bad_alloc; format failures go through `failure`
#pragma omp parallel
    {
        Decompressor dec;   // no allocation until its first page
        std::vector<uint8_t> out, scratch;
        errors.run([&] {
            out.resize(batch * bs);
            scratch.resize(bs);
        });
#pragma omp for schedule(dynamic, 1)
        for (uint64_t b = 0; b < batches; ++b)
            errors.run([&] {
                if (interrupt) interrupt();
                const uint64_t lo = b * batch, hi = std::min<uint64_t>(pages.size(), lo + batch);
                if (failure.after_failure(lo)) return;
                for (uint64_t i = lo; i < hi; ++i) {
                    const Page& p = pages[i];
                    uint8_t* o = out.data() + (i - lo) * bs;
                    const uint8_t* in = src.view(p.data, p.size);
                    if (!in) {
                        src.copy(p.data, scratch.data(), p.size);
                        in = scratch.data();
                    }
                    if (const char* what = dec.page(in, p.size, p.flags, o, bs)) {
                        if (strict) return failure.record(i, what);
                        corrupt[i] = 1;
                        first_corrupt.record(i, what);
                        std::memset(o, 0, bs);   // zeros are not stored: its image slot stays a hole
                    }
                }
                if (const char* what = image->store(lo * bs, out.data(), (hi - lo) * bs)) failure.record(lo, what);
            });
    }
    errors.rethrow();
    if (failure.failed()) {
        if (failure.bomb()) FirstFailure::throw_bomb(kind, held);
        const Page& p = pages[failure.item()];
        throw FormatError(src.file_offset(p.data), "page data of pfn " + hex(p.pfn) + ": " + failure.what());
    }
    if (first_corrupt.failed()) {
        uint64_t n = 0;
        std::vector<std::string> first;
        for (uint64_t i = 0; i < pages.size(); ++i) {
            if (!corrupt[i]) continue;
            if (++n <= 3) first.push_back(hex(pages[i].pfn));
            undecodable_pfns.push_back(pages[i].pfn);
        }
        d.lacks(std::string(kind) + " file: " + std::to_string(n) + (n == 1 ? " page does" : " pages do") +
                    " not decompress to block_size " + std::to_string(bs) + " bytes (" + sample_list("pfn", "pfns", first, n) +
                    "; pfn " + hex(pages[first_corrupt.item()].pfn) +
                    ((pages[first_corrupt.item()].flags & ~kKnownFlags) ? ", flags " + hex(pages[first_corrupt.item()].flags) : "") +
                    ": " + first_corrupt.what() + ")",
                "; they read as absent");
    }
    // Size-0 pages count too (tester 9: 1000 at the end of the file made the translation call the
    // dump cut at the first of them): one ascending list of ranges (each pfn is one or the other).
    std::sort(undecodable_pfns.begin(), undecodable_pfns.end());
    for (uint64_t pfn : undecodable_pfns) {
        auto& u = d.undecodable;
        if (!u.empty() && u.back().first + u.back().second == pfn * bs) u.back().second += bs;
        else u.push_back({pfn * bs, bs});
    }
    image->seal();
    // What the file spends on its non-zero pages (ParsedDump::stored_page_bytes): the union of their
    // data's first kCountedPageBytes, each byte of the file once — data that descriptors share
    // (makedumpfile's one zero page; a crafted file's one pattern), windows 8 bytes apart over one
    // blob, or one zlib stream given several sizes (attacker 80: each counted 1 KiB, 65,341 pages
    // from a 64 MiB file).
    {
        std::vector<std::pair<uint64_t, uint64_t>> stored;   // [begin, end) in plain offsets
        for (uint64_t i = 0; i < pages.size(); ++i)
            if (image->stored(i))   // page i at i × block_size (= 4 KiB): non-zero, decoded
                stored.push_back({pages[i].data, pages[i].data + std::min<uint64_t>(pages[i].size, PhysicalLayer::kCountedPageBytes)});
        if (!std::is_sorted(stored.begin(), stored.end())) std::sort(stored.begin(), stored.end());   // data follow pfns, mostly
        uint64_t total = 0, reached = 0;
        for (const auto& [begin, end] : stored) {
            if (end > std::max(begin, reached)) total += end - std::max(begin, reached);
            reached = std::max(reached, end);
        }
        d.stored_page_bytes = total;
    }
    for (uint64_t i = 0; i < pages.size(); ++i) {
        if (corrupt[i]) continue;
        if (!d.runs.empty() && d.runs.back().paddr + d.runs.back().size == pages[i].pfn * bs &&
            d.runs.back().file_offset + d.runs.back().size == i * bs)
            d.runs.back().size += bs;
        else
            d.runs.push_back({pages[i].pfn * bs, i * bs, bs});
    }
    d.image = std::move(image);
    return d;
}

}  // namespace detail

// ---- writer (graph/dump_writers.hpp) ------------------------------------------------------------

KdumpCompression parse_kdump_compression(const std::string& s) {
    if (s == "none") return KdumpCompression::None;
    if (s == "zlib") return KdumpCompression::Zlib;
    if (s == "lzo") return KdumpCompression::Lzo;
    if (s == "snappy") return KdumpCompression::Snappy;
    if (s == "zstd") return KdumpCompression::Zstd;
    throw InputError("unknown kdump compression '" + s + "' (expected none|zlib|lzo|snappy|zstd)");
}

namespace {

constexpr uint64_t kPage = 4096;

// Page frames wholly present in `phys` (across run boundaries too), ascending; counts the others touched.
std::vector<uint64_t> present_pages(const PhysicalLayer& phys, uint64_t& partial) {
    std::vector<uint64_t> pfns;
    std::vector<uint8_t> buf(kPage);
    uint64_t last_checked = UINT64_MAX;
    for (const auto& r : phys.runs()) {
        const uint64_t first = r.paddr / kPage, end = (r.paddr + r.size + kPage - 1) / kPage;
        for (uint64_t pfn = first; pfn < end; ++pfn) {
            if (!pfns.empty() && pfns.back() >= pfn) continue;   // already taken via the previous run
            const bool inside = pfn * kPage >= r.paddr && (pfn + 1) * kPage <= r.paddr + r.size;
            if (inside || phys.read(pfn * kPage, buf)) pfns.push_back(pfn);
            else if (last_checked != pfn) ++partial;
            last_checked = pfn;
        }
    }
    return pfns;
}

void put_le(std::vector<uint8_t>& b, uint64_t off, unsigned n, uint64_t v) {
    for (unsigned i = 0; i < n; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_be64(uint8_t* p, uint64_t v) {
    for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

}  // namespace

WriteStats write_kdump(const PhysicalLayer& phys, KdumpCompression compression, bool flattened, const ByteSink& sink) {
    using namespace detail;
    WriteStats st;
    const std::vector<uint64_t> pfns = present_pages(phys, st.partial_pages);
    const bool is64 = phys.cpus().empty() || phys.cpus()[0].long_mode;
    const HeaderLayout& L = is64 ? kHeader64 : kHeader32;
    const SubLayout& S = is64 ? kSub64 : kSub32;
    std::vector<uint8_t> notes;
    for (const CpuState& c : phys.cpus()) {
        auto n = qemu_cpu_note(c);
        notes.insert(notes.end(), n.begin(), n.end());
    }
    const uint64_t bs = kPage;
    const uint64_t max_mapnr = pfns.empty() ? 0 : pfns.back() + 1;
    const uint64_t bitmap_len = std::max<uint64_t>(bs, ((max_mapnr + 7) / 8 + bs - 1) / bs * bs);
    const uint64_t bitmap_blocks = 2 * bitmap_len / bs, sub_blocks = (S.size + notes.size() + bs - 1) / bs;
    const uint32_t flag = compression == KdumpCompression::Zlib     ? kZlib
                          : compression == KdumpCompression::Lzo    ? kLzo
                          : compression == KdumpCompression::Snappy ? kSnappy
                          : compression == KdumpCompression::Zstd   ? kZstd
                                                                     : 0;
    uint64_t flat_pos = 0, end = 0;
    auto put = [&](uint64_t off, std::span<const uint8_t> bytes) {
        end = std::max(end, off + bytes.size());
        if (!flattened) return sink(off, bytes);
        uint8_t rec[kFlatRecord];
        put_be64(rec, off);
        put_be64(rec + 8, bytes.size());
        sink(flat_pos, rec);
        sink(flat_pos + kFlatRecord, bytes);
        flat_pos += kFlatRecord + bytes.size();
    };
    if (flattened) {
        std::vector<uint8_t> mh(kFlatHeaderSize, 0);
        std::memcpy(mh.data(), "makedumpfile", 12);
        put_be64(mh.data() + 16, 1);
        put_be64(mh.data() + 24, 1);
        sink(0, mh);
        flat_pos = kFlatHeaderSize;
    }
    std::vector<uint8_t> hd(L.size, 0);
    std::memcpy(hd.data(), "KDUMP   ", 8);
    put_le(hd, 8, 4, 6);
    std::memcpy(hd.data() + 12, "Linux", 5);
    std::memcpy(hd.data() + kUtsMachine, is64 ? "x86_64" : "i686", is64 ? 6 : 4);
    put_le(hd, L.status, 4, flag);
    put_le(hd, L.block_size, 4, bs);
    put_le(hd, L.sub_hdr_size, 4, sub_blocks);
    put_le(hd, L.bitmap_blocks, 4, bitmap_blocks);
    put_le(hd, L.max_mapnr, 4, std::min<uint64_t>(max_mapnr, UINT32_MAX));
    put_le(hd, L.nr_cpus, 4, phys.cpus().size());
    put(0, hd);
    std::vector<uint8_t> sub(S.size, 0);
    put_le(sub, S.dump_level, 4, 1);
    put_le(sub, S.offset_note, 8, bs + S.size);
    put_le(sub, S.size_note, S.word, notes.size());
    put_le(sub, S.max_mapnr_64, 8, max_mapnr);
    put(bs, sub);
    if (!notes.empty()) put(bs + S.size, notes);
    std::vector<uint8_t> bitmap(bitmap_len, 0);
    for (uint64_t pfn : pfns) bitmap[pfn / 8] |= uint8_t(1u << (pfn % 8));
    const uint64_t bitmap_off = (1 + sub_blocks) * bs;
    put(bitmap_off, bitmap);
    put(bitmap_off + bitmap_len, bitmap);
    const uint64_t desc_off = (1 + sub_blocks + bitmap_blocks) * bs;
    uint64_t data_off = desc_off + kDescSize * pfns.size();
    const uint64_t zero_off = data_off;   // the one stored zero page, raw, as QEMU does
    put(data_off, std::vector<uint8_t>(bs, 0));
    data_off += bs;

    // Batches of pages compressed in parallel into preallocated buffers, written in order.
    constexpr uint64_t kBatch = 4096;
    const uint64_t bound = std::max<uint64_t>({compressBound(bs), bs + bs / 16 + 64 + 3,
                                               snappy::MaxCompressedLength(bs), ZSTD_compressBound(bs)});
    std::vector<uint8_t> comp(kBatch * bound), descs(kBatch * kDescSize), data;
    std::vector<uint64_t> comp_size(kBatch);
    std::vector<uint32_t> comp_flag(kBatch);
    data.reserve(kBatch * bs);
    const int threads = omp_get_max_threads();
    std::vector<std::vector<uint8_t>> page_buf(threads, std::vector<uint8_t>(bs)),
        lzo_mem(threads, std::vector<uint8_t>(compression == KdumpCompression::Lzo ? LZO1X_1_MEM_COMPRESS : 0));
    if (compression == KdumpCompression::Lzo && lzo_init() != LZO_E_OK) throw InputError("liblzo2 cannot start (lzo_init)");
    std::vector<ZSTD_CCtx*> zstd(threads, nullptr);
    for (auto& z : zstd)
        if (compression == KdumpCompression::Zstd && !(z = ZSTD_createCCtx())) throw InputError("zstd cannot start");
    for (uint64_t b0 = 0; b0 < pfns.size(); b0 += kBatch) {
        const uint64_t n = std::min<uint64_t>(kBatch, pfns.size() - b0);
        ParallelErrors errors;   // nothing in the body allocates; kept for the rule (graph/parallel_errors.hpp)
#pragma omp parallel for schedule(dynamic, 64) num_threads(threads)
        for (uint64_t i = 0; i < n; ++i)
            errors.run([&] {
                const int t = omp_get_thread_num();
                const uint64_t paddr = pfns[b0 + i] * bs;
                if (!phys.has_data(paddr, bs)) {   // a hole of a sparse file reads as zeros: not touched
                    comp_size[i] = 0;
                    return;
                }
                const uint8_t* page = phys.find(paddr, bs);
                if (!page) {
                    phys.read(paddr, page_buf[t]);   // present across two runs (checked by present_pages)
                    page = page_buf[t].data();
                }
                uint8_t* out = comp.data() + i * bound;
                if (all_zero(page, bs)) {
                    comp_size[i] = 0;   // → the shared zero page
                    return;
                }
                uint64_t size = bound;
                bool ok = false;
                switch (compression) {
                case KdumpCompression::Zlib: {
                    uLongf z = bound;
                    ok = compress2(out, &z, page, bs, Z_BEST_SPEED) == Z_OK;
                    size = z;
                    break;
                }
                case KdumpCompression::Lzo: {
                    lzo_uint z = bound;
                    ok = lzo1x_1_compress(page, bs, out, &z, lzo_mem[t].data()) == LZO_E_OK;
                    size = z;
                    break;
                }
                case KdumpCompression::Snappy: {
                    size_t z = bound;
                    snappy::RawCompress(reinterpret_cast<const char*>(page), bs, reinterpret_cast<char*>(out), &z);
                    ok = true;
                    size = z;
                    break;
                }
                case KdumpCompression::Zstd: {
                    const size_t z = ZSTD_compressCCtx(zstd[t], out, bound, page, bs, 1);
                    ok = !ZSTD_isError(z);
                    size = z;
                    break;
                }
                case KdumpCompression::None: break;
                }
                if (ok && size < bs) {
                    comp_size[i] = size;
                    comp_flag[i] = flag;
                } else {
                    std::memcpy(out, page, bs);
                    comp_size[i] = bs;
                    comp_flag[i] = 0;
                }
            });
        errors.rethrow();
        {   // the batch's pages: peak memory stays near a batch, not the dump's size
            PhysicalLayer::Releaser done(phys);
            for (uint64_t i = 0; i < n; ++i)
                if (const uint8_t* page = phys.find(pfns[b0 + i] * bs, bs)) done.add(page, bs);
        }
        data.clear();
        for (uint64_t i = 0; i < n; ++i) {
            uint8_t* pd = descs.data() + i * kDescSize;
            std::memset(pd, 0, kDescSize);
            const bool zero = comp_size[i] == 0;
            const uint64_t off = zero ? zero_off : data_off + data.size();
            const uint32_t size = zero ? bs : static_cast<uint32_t>(comp_size[i]), fl = zero ? 0 : comp_flag[i];
            std::memcpy(pd, &off, 8);
            std::memcpy(pd + 8, &size, 4);
            std::memcpy(pd + 12, &fl, 4);
            if (!zero) data.insert(data.end(), comp.data() + i * bound, comp.data() + i * bound + comp_size[i]);
        }
        put(desc_off + b0 * kDescSize, std::span<const uint8_t>(descs.data(), n * kDescSize));
        if (!data.empty()) put(data_off, data);
        data_off += data.size();
    }
    for (auto z : zstd)
        if (z) ZSTD_freeCCtx(z);
    if (flattened) {
        uint8_t endrec[kFlatRecord];
        std::memset(endrec, 0xff, sizeof endrec);
        sink(flat_pos, endrec);
        flat_pos += kFlatRecord;
    }
    st.pages = pfns.size();
    st.bytes = flattened ? flat_pos : end;
    return st;
}

}  // namespace deepmem
