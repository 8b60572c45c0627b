// LiME (Linux Memory Extractor) format: a sequence of ranges, each a 32-byte header
//   u32 magic 0x4C694D45 ("EMiL" on disk), u32 version (1), u64 s_addr, u64 e_addr (inclusive),
//   u8 reserved[8]
// followed by e_addr − s_addr + 1 bytes of memory, until end of file.
#include "graph/dump_formats.hpp"

namespace deepmem::detail {

namespace {
constexpr uint32_t kLimeMagic = 0x4C694D45u;
constexpr uint64_t kHeaderSize = 32;
}  // namespace

ParsedDump parse_lime(std::span<const uint8_t> file) {
    const uint64_t size = file.size();
    if (size == 0) throw FormatError(0, "empty file (expected a LiME range header)");
    ParsedDump d;
    uint64_t off = 0;
    while (off < size) {
        if (!in_file(off, kHeaderSize, size))
            throw FormatError(off, "truncated LiME range header (expected 32 bytes, " +
                                       std::to_string(size - off) + " left)");
        const uint8_t* h = file.data() + off;
        if (le32(h) != kLimeMagic)
            throw FormatError(off, "bad LiME magic " + hex(le32(h)) + " (expected 0x4c694d45)");
        if (le32(h + 4) != 1)
            throw FormatError(off + 4, "unsupported LiME version " + std::to_string(le32(h + 4)) +
                                           " (expected 1)");
        uint64_t s_addr = le64(h + 8), e_addr = le64(h + 16);
        if (e_addr < s_addr)
            throw FormatError(off + 16, "LiME range end " + hex(e_addr) + " below its start " + hex(s_addr));
        if (e_addr - s_addr == UINT64_MAX)
            throw FormatError(off + 16, "LiME range covers all of 2^64 bytes");
        uint64_t len = e_addr - s_addr + 1;
        uint64_t data = off + kHeaderSize;
        if (!in_file(data, len, size))
            throw FormatError(off + 8, "LiME range " + hex(s_addr) + "-" + hex(e_addr) + " needs " +
                                           hex(len) + " bytes but only " + hex(size - data) + " remain");
        d.runs.push_back({s_addr, data, len});
        off = data + len;
    }
    return d;
}

}  // namespace deepmem::detail
