// LiME (Linux Memory Extractor) format: a sequence of ranges, each a 32-byte header
//   u32 magic 0x4C694D45 ("EMiL" on disk), u32 version (1), u64 s_addr, u64 e_addr (inclusive),
//   u8 reserved[8]
// followed by e_addr − s_addr + 1 bytes of memory, until end of file. A file cut inside a range
// keeps the bytes present (and a cut trailing header is ignored) with a warning, unless strict; a
// range ending beyond 2^52 (dump_formats.hpp kMaxPhysical) is refused, strict or not.
#include "graph/dump_formats.hpp"
#include "graph/text_lines.hpp"

namespace deepmem::detail {

namespace {
constexpr uint32_t kLimeMagic = 0x4C694D45u;
constexpr uint64_t kHeaderSize = 32;
constexpr uint64_t kDoneWithStep = uint64_t{16} << 20;   // bytes walked between done_with() calls
}  // namespace

ParsedDump parse_lime(std::span<const uint8_t> file, bool strict, const DoneWith& done_with) {
    const uint64_t size = file.size();
    if (size == 0) throw FormatError(0, "empty file (expected a LiME range header)");
    ParsedDump d;
    uint64_t off = 0;
    uint64_t prev = 0, prev_s = 0, prev_e = 0;   // the previous range header, for a corrupt e_addr
    bool have_prev = false;
    uint64_t done = 0;   // file bytes handed to done_with()
    while (off < size) {
        if (done_with && off - done >= kDoneWithStep) {
            done_with(done, off - done);
            done = off;
        }
        if (!in_file(off, kHeaderSize, size)) {
            if (strict || off == 0)
                throw FormatError(off, "truncated LiME range header (expected 32 bytes, " +
                                           std::to_string(size - off) + " left)");
            d.lacks("truncated LiME file: the last " + std::to_string(size - off) + " bytes are a cut range header",
                    " and are ignored");
            break;
        }
        const uint8_t* h = file.data() + off;
        if (le32(h) != kLimeMagic) {
            // LiME writes whole pages (System RAM ranges of /proc/iomem): when the previous range
            // is not, its e_addr is the corrupt field, not this header's magic.
            if (have_prev && (prev_s % 4096 != 0 || (prev_e + 1) % 4096 != 0))
                throw FormatError(prev + 16, "LiME range header e_addr " + hex(prev_e) + " (s_addr " + hex(prev_s) +
                                                 "): a range of " + hex(prev_e - prev_s + 1) +
                                                 " bytes, not whole pages, after which no range header follows (magic " +
                                                 hex(le32(h)) + " at file offset " + hex(off) + "): a corrupt e_addr");
            throw FormatError(off, "LiME range header magic " + hex(le32(h)) + " (expected 0x4c694d45)");
        }
        if (le32(h + 4) != 1)
            throw FormatError(off + 4, "LiME range header version " + std::to_string(le32(h + 4)) +
                                           " (expected 1)");
        uint64_t s_addr = le64(h + 8), e_addr = le64(h + 16);
        if (e_addr < s_addr)
            throw FormatError(off + 16, "LiME range header e_addr " + hex(e_addr) + " below its s_addr " + hex(s_addr));
        if (e_addr >= kMaxPhysical)
            throw FormatError(off + 16, "LiME range header s_addr " + hex(s_addr) + " e_addr " + hex(e_addr) +
                                            ": the range ends beyond the 52-bit physical address space (x86 MAXPHYADDR): "
                                            "a corrupt range header");
        uint64_t len = e_addr - s_addr + 1;
        uint64_t data = off + kHeaderSize;
        if (!in_file(data, len, size)) {
            if (strict)
                throw FormatError(off + 8, "LiME range " + hex(s_addr) + "-" + hex(e_addr) + " needs " +
                                               hex(len) + " bytes but only " + hex(size - data) + " remain");
            d.runs.push_back({s_addr, data, size - data});
            d.lacks("truncated LiME file: range " + hex(s_addr) + "-" + hex(e_addr) + " has " + hex(size - data) +
                        " of its " + hex(len) + " bytes; the missing " + hex(len - (size - data)) + " bytes (" +
                        format_bytes(len - (size - data)) + ") from physical " + hex(s_addr + (size - data)),
                    " read as absent");
            break;
        }
        d.runs.push_back({s_addr, data, len});
        prev = off;
        prev_s = s_addr;
        prev_e = e_addr;
        have_prev = true;
        off = data + len;
    }
    return d;
}

}  // namespace deepmem::detail
