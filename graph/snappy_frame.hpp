// Snappy's framing format (google/snappy framing_format.txt), the container AVML v2 writes each
// memory range in, over libsnappy (Debian libsnappy-dev) for the chunk payloads:
//   stream  = chunk*, each chunk = u8 type, u24 LE length, `length` payload bytes
//   0xff    stream identifier, payload "sNaPpY" (may repeat: concatenated streams)
//   0x00    compressed: u32 LE masked CRC-32C of the uncompressed bytes, then one snappy block
//   0x01    uncompressed: u32 LE masked CRC-32C, then the bytes
//   0x02–0x7f reserved unskippable (an error); 0x80–0xfe skippable (padding is 0xfe)
// A chunk holds at most 65536 uncompressed bytes; masked CRC = ((c >> 15) | (c << 17)) + 0xa282ead8.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace deepmem::snappy_frame {

constexpr uint64_t kMaxChunkBytes = 65536;

// One data chunk: payload at [offset, offset + size) of the indexed span, `out_size` bytes when decoded.
struct Chunk {
    uint64_t offset = 0, size = 0, out_size = 0;
    uint32_t masked_crc = 0;
    bool compressed = false;
};

// The data chunks of the framed stream that starts `stream` and decodes to `out_bytes` bytes, in
// order; the stream ends with the chunk that completes them (AVML writes a trailer after it).
// `base` is the stream's offset in its file: FormatError offsets are file offsets. Throws
// FormatError on a bad chunk header, a reserved unskippable type, a missing stream identifier,
// chunks decoding to more than `out_bytes`, or a declared uncompressed length over 65536
// (snappy's own length preamble is read here, so sizes are known before decoding). A stream cut
// short by the end of the span is not an error: `complete` is false and `chunks` holds the
// chunks wholly present.
struct Index {
    std::vector<Chunk> chunks;
    uint64_t stream_bytes = 0;   // bytes of the span the chunks (and skipped chunks) take
    uint64_t out_bytes = 0;      // what they decode to
    bool complete = false;
};
Index index(std::span<const uint8_t> stream, uint64_t base, uint64_t out_bytes);

// Decodes `c` (from the same span) into out[0, c.out_size) and checks its CRC. Returns nullptr,
// or what is wrong (corrupt snappy block, CRC mismatch). Thread-safe, throws nothing.
const char* decode(std::span<const uint8_t> stream, const Chunk& c, uint8_t* out) noexcept;

// Appends the framed stream of `data` to `out`: identifier, then compressed chunks of ≤ 64 KiB
// (stored uncompressed when that is not smaller), as AVML's FrameEncoder writes.
void encode(std::span<const uint8_t> data, std::vector<uint8_t>& out);

// CRC-32C (Castagnoli), SSE4.2 instruction when compiled for it.
uint32_t crc32c(const uint8_t* p, uint64_t n) noexcept;
inline uint32_t mask_crc(uint32_t c) noexcept { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

}  // namespace deepmem::snappy_frame
