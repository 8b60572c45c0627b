// Snappy framing format over libsnappy (see snappy_frame.hpp).
#include "graph/snappy_frame.hpp"
#include "graph/layers.hpp"

#include <snappy.h>

#include <array>
#include <cstring>
#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace deepmem::snappy_frame {

namespace {

constexpr uint8_t kStreamId = 0xff, kCompressed = 0x00, kUncompressed = 0x01;
constexpr char kStreamMagic[6] = {'s', 'N', 'a', 'P', 'p', 'Y'};

uint32_t le32(const uint8_t* p) noexcept { uint32_t v; std::memcpy(&v, p, 4); return v; }

#if !defined(__SSE4_2__)
std::array<std::array<uint32_t, 256>, 8> make_tables() noexcept {
    std::array<std::array<uint32_t, 256>, 8> t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
        t[0][i] = c;
    }
    for (int s = 1; s < 8; ++s)
        for (uint32_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    return t;
}
#endif

}  // namespace

uint32_t crc32c(const uint8_t* p, uint64_t n) noexcept {
    uint64_t c = 0xffffffffu;
#if defined(__SSE4_2__)
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
    }
    uint32_t c32 = static_cast<uint32_t>(c);
    for (; n > 0; --n, ++p) c32 = _mm_crc32_u8(c32, *p);
    return ~c32;
#else
    static const auto t = make_tables();   // slicing-by-8
    uint32_t c32 = static_cast<uint32_t>(c);
    for (; n >= 8; n -= 8, p += 8) {
        uint32_t lo = le32(p) ^ c32, hi = le32(p + 4);
        c32 = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
              t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    }
    for (; n > 0; --n, ++p) c32 = (c32 >> 8) ^ t[0][(c32 ^ *p) & 0xff];
    return ~c32;
#endif
}

Index index(std::span<const uint8_t> s, uint64_t base, uint64_t out_bytes) {
    Index r;
    bool seen_id = false;
    uint64_t pos = 0;
    // The data chunk before `pos`, for the diagnosis of a chunk type that cannot follow it: a
    // length that is too short leaves the next header inside the chunk's own bytes.
    uint64_t prev_pos = 0, prev_len = 0;
    bool prev_data = false;
    auto after_cut_chunk = [&](const std::string& what) -> FormatError {
        if (prev_data && s[prev_pos] == kCompressed &&
            !snappy::IsValidCompressedBuffer(reinterpret_cast<const char*>(s.data() + prev_pos + 8), prev_len - 4))
            return FormatError(base + prev_pos + 1, "snappy compressed chunk at file offset " + hex(base + prev_pos) +
                                                        " is cut: its length " + std::to_string(prev_len) +
                                                        " ends inside its snappy block (which does not decode), where " +
                                                        what + " follows");
        return FormatError(base + pos, what);
    };
    while (r.out_bytes < out_bytes) {
        if (s.size() - pos < 4) break;   // cut: incomplete
        const uint8_t type = s[pos];
        const uint64_t len = s[pos + 1] | (uint64_t{s[pos + 2]} << 8) | (uint64_t{s[pos + 3]} << 16);
        const uint64_t payload = pos + 4;
        if (len > s.size() - payload) break;   // cut: incomplete
        if (type == kStreamId) {
            if (len != 6 || std::memcmp(s.data() + payload, kStreamMagic, 6) != 0)
                throw after_cut_chunk("bad snappy stream identifier (expected \\xff\\x06\\0\\0sNaPpY)");
            seen_id = true;
        } else if (type == kCompressed || type == kUncompressed) {
            if (!seen_id)
                throw FormatError(base + pos, "snappy data chunk before the stream identifier (expected sNaPpY first)");
            if (len < 4)
                throw FormatError(base + pos + 1, "snappy data chunk length " + std::to_string(len) +
                                                      " (expected at least 4, for its masked CRC-32C)");
            if (type == kCompressed && len > 4 + kMaxChunkBytes)
                throw FormatError(base + pos + 1, "snappy compressed chunk length " + std::to_string(len) +
                                                      " (at most 4 + 65536: a chunk holds at most 65536 bytes, and "
                                                      "encoders store one uncompressed when compressing does not shrink it)");
            Chunk c;
            c.offset = payload + 4;
            c.size = len - 4;
            c.masked_crc = le32(s.data() + payload);
            c.compressed = type == kCompressed;
            if (c.compressed) {
                size_t n = 0;
                if (!snappy::GetUncompressedLength(reinterpret_cast<const char*>(s.data() + c.offset), c.size, &n))
                    throw FormatError(base + c.offset, "snappy block's uncompressed-length varint unreadable "
                                                       "(corrupt compressed chunk)");
                c.out_size = n;
            } else {
                c.out_size = c.size;
            }
            if (c.out_size > kMaxChunkBytes) {
                if (c.compressed)
                    throw FormatError(base + c.offset, "snappy block's uncompressed length " + std::to_string(c.out_size) +
                                                           " (at most 65536 per chunk)");
                throw FormatError(base + pos + 1, "uncompressed snappy chunk length " + std::to_string(len) +
                                                      " (at most 4 + 65536)");
            }
            if (r.out_bytes + c.out_size > out_bytes)
                throw FormatError(base + pos, "snappy chunk of " + std::to_string(c.out_size) + " bytes at stream byte " +
                                                  std::to_string(pos) + " decodes past the " + std::to_string(out_bytes) +
                                                  " bytes of its range (end − start + 1)");
            r.out_bytes += c.out_size;
            r.chunks.push_back(c);
        } else if (type < 0x80) {
            throw after_cut_chunk("reserved unskippable snappy chunk type " + std::to_string(type));
        }
        prev_pos = pos;
        prev_len = len;
        prev_data = type == kCompressed || type == kUncompressed;
        pos = payload + len;
        r.stream_bytes = pos;
    }
    r.complete = r.out_bytes == out_bytes;
    return r;
}

const char* decode(std::span<const uint8_t> s, const Chunk& c, uint8_t* out) noexcept {
    const char* in = reinterpret_cast<const char*>(s.data() + c.offset);
    if (c.compressed) {
        if (!snappy::RawUncompress(in, c.size, reinterpret_cast<char*>(out))) return "corrupt snappy block";
    } else {
        std::memcpy(out, in, c.size);
    }
    if (mask_crc(crc32c(out, c.out_size)) != c.masked_crc) return "CRC-32C mismatch (corrupt data)";
    return nullptr;
}

void encode(std::span<const uint8_t> data, std::vector<uint8_t>& out) {
    auto header = [&](uint8_t type, uint64_t len) {
        out.push_back(type);
        out.push_back(static_cast<uint8_t>(len));
        out.push_back(static_cast<uint8_t>(len >> 8));
        out.push_back(static_cast<uint8_t>(len >> 16));
    };
    header(kStreamId, 6);
    out.insert(out.end(), kStreamMagic, kStreamMagic + 6);
    std::string block;
    for (uint64_t pos = 0; pos < data.size(); pos += kMaxChunkBytes) {
        const uint64_t n = std::min<uint64_t>(kMaxChunkBytes, data.size() - pos);
        const uint8_t* p = data.data() + pos;
        const uint32_t crc = mask_crc(crc32c(p, n));
        snappy::Compress(reinterpret_cast<const char*>(p), n, &block);
        const bool compress = block.size() < n;
        header(compress ? kCompressed : kUncompressed, 4 + (compress ? block.size() : n));
        for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(crc >> (8 * i)));
        if (compress) out.insert(out.end(), block.begin(), block.end());
        else out.insert(out.end(), p, p + n);
    }
}

}  // namespace deepmem::snappy_frame
