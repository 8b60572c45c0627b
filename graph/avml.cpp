// AVML images (microsoft/avml src/image.rs): a sequence of ranges, each a 32-byte header
//   u32 magic, u32 version, u64 start, u64 end (inclusive), u64 padding (0)
// version 2, magic "AVML" (0x4c4d5641): the range's end − start + 1 bytes as a snappy framed stream
// (graph/snappy_frame.hpp), then the stream's length in bytes as u64 LE; version 1, LiME's magic
// 0x4C694D45: the bytes themselves. avml cuts ranges into blocks of at most 16 MiB and leaves out
// all-zero blocks, which therefore read as absent. Little-endian throughout. A snappy chunk that
// does not decode (corrupt block, CRC-32C mismatch) reads as absent with one warning, unless strict.
#include "graph/dump_formats.hpp"
#include "graph/dump_writers.hpp"
#include "graph/paging.hpp"
#include "graph/parallel_errors.hpp"
#include "graph/snappy_frame.hpp"

#include <omp.h>

#include <algorithm>
#include <atomic>

namespace deepmem {
namespace detail {

namespace {

constexpr uint32_t kAvmlMagic = 0x4c4d5641u, kLimeMagic = 0x4C694D45u;
constexpr uint64_t kHeaderSize = 32, kTrailerSize = 8;
constexpr uint64_t kMaxBlock = uint64_t{16} << 20;   // avml's MAX_BLOCK_SIZE
constexpr uint64_t kPiece = 65536;                    // raw (version 1) ranges are copied in pieces

struct Range {
    uint64_t paddr = 0, present = 0, image = 0;   // present: bytes kept (less than the range when cut)
    uint64_t data = 0;                            // file offset of the stream / the bytes
    bool compressed = false;
    snappy_frame::Index index;
};

}  // namespace

ParsedDump parse_avml(std::span<const uint8_t> file, bool strict, uint64_t held, const InterruptFn& interrupt) {
    const uint64_t size = file.size();
    if (size == 0) throw FormatError(0, "empty file (expected an AVML range header)");
    ParsedDump d;
    std::vector<Range> ranges;
    std::string cut;
    uint64_t pos = 0;
    while (pos < size) {
        if (size - pos < kHeaderSize) {
            if (pos == 0 || strict)
                throw FormatError(pos, "truncated AVML range header (expected 32 bytes, " + std::to_string(size - pos) +
                                           " left)");
            cut = "the last " + std::to_string(size - pos) + " bytes are a cut range header";
            break;
        }
        const uint8_t* h = file.data() + pos;
        const uint32_t magic = le32(h), version = le32(h + 4);
        if (!((magic == kAvmlMagic && version == 2) || (magic == kLimeMagic && version == 1)))
            throw FormatError(pos, "AVML range header magic " + hex(magic) + " version " + std::to_string(version) +
                                       " (expected \"AVML\" 0x4c4d5641 version 2, or LiME 0x4c694d45 version 1)");
        if (le64(h + 24) != 0)
            throw FormatError(pos + 24, "AVML range header padding " + hex(le64(h + 24)) + " (expected 0)");
        const uint64_t start = le64(h + 8), last = le64(h + 16);
        if (last < start) throw FormatError(pos + 16, "AVML range end " + hex(last) + " below its start " + hex(start));
        if (last >= kMaxPhysical)
            throw FormatError(pos + 16, "AVML range " + hex(start) + "-" + hex(last) +
                                            " ends beyond the 52-bit physical address space (x86 MAXPHYADDR): "
                                            "a corrupt range header");
        const uint64_t len = last - start + 1;
        Range r;
        r.paddr = start;
        r.data = pos + kHeaderSize;
        if (version == 1) {
            r.present = std::min(len, size - r.data);
            ranges.push_back(std::move(r));
            if (ranges.back().present < len) {
                if (strict)
                    throw FormatError(pos + 8, "AVML raw range " + hex(start) + "-" + hex(last) + " needs " + hex(len) +
                                                   " bytes but only " + hex(size - ranges.back().data) + " remain");
                cut = "raw range " + hex(start) + "-" + hex(last) + " has " + hex(ranges.back().present) + " of " +
                      hex(len) + " bytes";
                break;
            }
            pos = ranges.back().data + len;
            continue;
        }
        r.compressed = true;
        r.index = snappy_frame::index(file.subspan(r.data), r.data, len);
        r.present = r.index.out_bytes;
        const uint64_t trailer = r.data + r.index.stream_bytes;
        const bool complete = r.index.complete;
        ranges.push_back(std::move(r));
        if (!complete) {
            if (strict)
                throw FormatError(pos, "AVML range " + hex(start) + "-" + hex(last) + ": its snappy stream is cut after " +
                                           hex(ranges.back().present) + " of " + hex(len) + " bytes");
            cut = "range " + hex(start) + "-" + hex(last) + " has " + hex(ranges.back().present) + " of " + hex(len) +
                  " bytes";
            break;
        }
        if (size - trailer < kTrailerSize) {
            if (strict) throw FormatError(trailer, "AVML range " + hex(start) + "-" + hex(last) + ": its compressed-size trailer is cut");
            cut = "the length trailer of range " + hex(start) + "-" + hex(last) + " is cut";
            break;
        }
        if (le64(file.data() + trailer) != ranges.back().index.stream_bytes)
            throw FormatError(trailer, "AVML range " + hex(start) + "-" + hex(last) + ": compressed-size trailer " +
                                           std::to_string(le64(file.data() + trailer)) + " (expected the " +
                                           std::to_string(ranges.back().index.stream_bytes) +
                                           " bytes its snappy stream takes)");
        pos = trailer + kTrailerSize;
    }
    if (!cut.empty())
        d.lacks("truncated AVML file (" + hex(size) + " bytes): " + cut, "; what is missing reads as absent");

    // What the headers claim must fit the bomb bound before anything is allocated.
    uint64_t total = 0, claimed = 0;
    for (Range& r : ranges) {
        r.image = total;
        total += r.present;
        if (r.compressed) claimed += r.present;
    }
    held = std::min(held, size);
    const uint64_t budget = DecodedImage::kBombFactor * held;
    if (claimed > budget)
        throw InputError("refusing this AVML file: its snappy streams claim " + std::to_string(claimed) +
                         " bytes, more than " + std::to_string(DecodedImage::kBombFactor) + "× its " +
                         std::to_string(held) + " bytes (a decompression bomb or a corrupt file)");
    auto image = std::make_shared<DecodedImage>(total, budget + total - claimed);

    // Work items: one per snappy chunk, one per 64 KiB piece of a raw range.
    struct Item { uint32_t range; uint64_t chunk_or_offset; uint64_t out; };
    std::vector<Item> items;
    for (uint32_t i = 0; i < ranges.size(); ++i) {
        const Range& r = ranges[i];
        if (r.compressed) {
            uint64_t out = r.image;
            for (uint64_t c = 0; c < r.index.chunks.size(); ++c) {
                items.push_back({i, c, out});
                out += r.index.chunks[c].out_size;
            }
        } else {
            for (uint64_t off = 0; off < r.present; off += kPiece) items.push_back({i, off, r.image + off});
        }
    }
    // A snappy chunk that does not decode (corrupt block, CRC-32C mismatch) is left out: its bytes
    // read as absent, with one warning for all of them, unless strict. Store failures (the bomb
    // budget, the temporary file) refuse the file either way.
    FirstFailure failure;          // refusals
    FirstFailure first_corrupt;    // the lowest chunk that does not decode, for the warning
    std::vector<uint8_t> corrupt(items.size(), 0);   // disjoint writes
    // Per item: min(its file bytes, kCountedPageBytes × its non-zero 4 KiB blocks), for
    // ParsedDump::stored_page_bytes (a chunk's compressed bytes shared among the pages it holds).
    std::vector<uint64_t> stored(items.size(), 0);
    ParallelErrors errors;   // std::bad_alloc; format failures go through `failure`
#pragma omp parallel
    {
        std::vector<uint8_t> buf;
        errors.run([&] { buf.resize(snappy_frame::kMaxChunkBytes); });
#pragma omp for schedule(dynamic, 16)
        for (uint64_t k = 0; k < items.size(); ++k)
            errors.run([&] {
                if (failure.after_failure(k)) return;
                if (interrupt && k % 16 == 0) interrupt();
                const Item& it = items[k];
                const Range& r = ranges[it.range];
                const uint8_t* bytes = nullptr;
                uint64_t n = 0;
                if (r.compressed) {
                    const snappy_frame::Chunk& c = r.index.chunks[it.chunk_or_offset];
                    if (const char* what = snappy_frame::decode(file.subspan(r.data), c, buf.data())) {
                        if (strict) return failure.record(k, what);
                        corrupt[k] = 1;
                        return first_corrupt.record(k, what);
                    }
                    bytes = buf.data();
                    n = c.out_size;
                } else {
                    bytes = file.data() + r.data + it.chunk_or_offset;
                    n = std::min(kPiece, r.present - it.chunk_or_offset);
                }
                uint64_t nonzero = 0;
                for (uint64_t at = 0; at < n; at += paging::kPage)
                    nonzero += !all_zero(bytes + at, std::min<uint64_t>(paging::kPage, n - at));
                const uint64_t file_bytes = r.compressed ? r.index.chunks[it.chunk_or_offset].size : n;
                stored[k] = std::min(file_bytes, nonzero * PhysicalLayer::kCountedPageBytes);
                if (const char* what = image->store(it.out, bytes, n)) failure.record(k, what);
            });
    }
    errors.rethrow();
    auto item_offset = [&](const Item& it) {   // file offset of an item's bytes, for messages
        const Range& r = ranges[it.range];
        return r.data + (r.compressed ? r.index.chunks[it.chunk_or_offset].offset : it.chunk_or_offset);
    };
    auto item_size = [&](const Item& it) {
        const Range& r = ranges[it.range];
        return r.compressed ? r.index.chunks[it.chunk_or_offset].out_size : std::min(kPiece, r.present - it.chunk_or_offset);
    };
    if (failure.failed()) {
        if (failure.bomb()) FirstFailure::throw_bomb("AVML", held);
        const Item& it = items[failure.item()];
        const Range& r = ranges[it.range];
        const uint64_t paddr = r.paddr + (it.out - r.image);
        if (r.compressed)   // name the chunk: its header is 8 bytes (type, length, CRC) before its block
            throw FormatError(item_offset(it) - 8, "AVML snappy chunk at file offset " + hex(item_offset(it) - 8) +
                                                       " (physical " + hex(paddr) + "-" + hex(paddr + item_size(it) - 1) +
                                                       ", in the range at physical " + hex(r.paddr) + "): " + failure.what());
        throw FormatError(item_offset(it), "AVML range at physical " + hex(r.paddr) + ": " + failure.what());
    }
    if (first_corrupt.failed()) {
        uint64_t n = 0, bytes = 0;
        for (uint64_t k = 0; k < items.size(); ++k) {
            if (!corrupt[k]) continue;
            ++n;
            bytes += item_size(items[k]);
            const Item& c = items[k];
            d.undecodable.push_back({ranges[c.range].paddr + (c.out - ranges[c.range].image), item_size(c)});
        }
        std::sort(d.undecodable.begin(), d.undecodable.end());
        const Item& it = items[first_corrupt.item()];
        const uint64_t paddr = ranges[it.range].paddr + (it.out - ranges[it.range].image);
        d.lacks("AVML: " + std::to_string(n) + " snappy chunk" + (n == 1 ? " does" : "s do") + " not decode (" +
                    hex(bytes) + " bytes of memory; " + (n == 1 ? "at" : "first at") + " physical " + hex(paddr) +
                    ", file offset " + hex(item_offset(it)) + ": " + first_corrupt.what() + ")",
                "; they read as absent");
    }
    image->seal();
    d.stored_page_bytes = 0;
    for (uint64_t k = 0; k < items.size(); ++k) *d.stored_page_bytes += stored[k];   // corrupt ones: 0
    // Runs: each range's items, less the chunks that do not decode.
    for (uint64_t k = 0; k < items.size(); ++k) {
        if (corrupt[k]) continue;
        const Item& it = items[k];
        const uint64_t paddr = ranges[it.range].paddr + (it.out - ranges[it.range].image), n = item_size(it);
        if (n == 0) continue;
        PhysicalRun* last = d.runs.empty() ? nullptr : &d.runs.back();
        if (last && last->paddr + last->size == paddr && last->file_offset + last->size == it.out) last->size += n;
        else d.runs.push_back({paddr, it.out, n});
    }
    d.image = std::move(image);
    return d;
}

}  // namespace detail

WriteStats write_avml(const PhysicalLayer& phys, const ByteSink& sink) {
    using namespace detail;
    // Blocks of at most kMaxBlock within a run, split where a sparse file's holes begin and end: a
    // hole's block is encoded from zeros, never read (reading it faulted in the dump's apparent size).
    struct Block { uint64_t paddr, size; bool hole; };
    std::vector<Block> blocks;
    const auto data = phys.data_runs();
    size_t d = 0;
    for (const auto& r : phys.runs()) {
        for (uint64_t at = r.paddr, end = r.paddr + r.size; at < end;) {
            while (d < data.size() && data[d].paddr + data[d].size <= at) ++d;
            const bool hole = d == data.size() || data[d].paddr > at;
            const uint64_t stop = std::min({end, at + kMaxBlock, hole ? (d == data.size() ? end : data[d].paddr)
                                                                      : data[d].paddr + data[d].size});
            blocks.push_back({at, stop - at, hole});
            at = stop;
        }
    }
    const bool any_hole = std::any_of(blocks.begin(), blocks.end(), [](const Block& b) { return b.hole; });
    const std::vector<uint8_t> zeros(any_hole ? kMaxBlock : 0, 0);
    WriteStats st;
    uint64_t pos = 0;
    const uint64_t batch = 2 * static_cast<uint64_t>(omp_get_max_threads());
    std::vector<std::vector<uint8_t>> streams(batch);
    for (uint64_t b0 = 0; b0 < blocks.size(); b0 += batch) {
        const uint64_t n = std::min<uint64_t>(batch, blocks.size() - b0);
        ParallelErrors errors;   // only std::bad_alloc can get there
#pragma omp parallel for schedule(dynamic, 1)
        for (uint64_t i = 0; i < n; ++i)
            errors.run([&] {
                streams[i].clear();
                const Block& bl = blocks[b0 + i];
                snappy_frame::encode({bl.hole ? zeros.data() : phys.find(bl.paddr, bl.size), bl.size}, streams[i]);
            });
        errors.rethrow();
        {   // the batch's blocks: peak memory stays near a batch, not the dump's size
            PhysicalLayer::Releaser done(phys);
            for (uint64_t i = 0; i < n; ++i)
                if (const Block& bl = blocks[b0 + i]; !bl.hole)
                    if (const uint8_t* bytes = phys.find(bl.paddr, bl.size)) done.add(bytes, bl.size);
        }
        for (uint64_t i = 0; i < n; ++i) {
            const Block& bl = blocks[b0 + i];
            uint8_t h[kHeaderSize] = {};
            const uint32_t magic = kAvmlMagic, version = 2;
            const uint64_t last = bl.paddr + bl.size - 1, len = streams[i].size();
            std::memcpy(h, &magic, 4);
            std::memcpy(h + 4, &version, 4);
            std::memcpy(h + 8, &bl.paddr, 8);
            std::memcpy(h + 16, &last, 8);
            sink(pos, h);
            sink(pos + kHeaderSize, streams[i]);
            uint8_t t[kTrailerSize];
            std::memcpy(t, &len, 8);
            sink(pos + kHeaderSize + len, t);
            pos += kHeaderSize + len + kTrailerSize;
            st.pages += (bl.size + 4095) / 4096;
        }
    }
    st.bytes = pos;
    return st;
}

}  // namespace deepmem
