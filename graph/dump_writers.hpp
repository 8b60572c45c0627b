// Writers of the compressed acquisition formats the physical layer reads, from any readable dump:
// the same memory in kdump-compressed or AVML form, for dm-dump-formats, tools/make-dataset and
// the format tests. The layouts are described once, at their readers (graph/kdump.cpp,
// graph/avml.cpp); these functions sit beside them.
//
// Both write every 4 KiB page that is wholly present in `phys` (pages only partly present are
// skipped and counted), so a reader gives back the same pages and, with the same page-table root,
// the same memory graph. Bytes go to `sink(offset, bytes)`; a kdump in plain form is written out
// of order (headers, bitmaps, then descriptors and data in batches), the flattened form and AVML
// strictly in order (offsets increase). Pages are compressed in parallel (OpenMP).
// Memory: the holes of a sparse input file (PhysicalLayer::data_runs) are written as zeros without
// being read, and each batch's pages are released once written, so the peak stays near one batch
// (16 MiB of pages for kdump, 2 × threads × 16 MiB blocks for AVML), not the input's apparent
// size (tester 11: a sparse 4 GiB raw of 256 MiB RAM faulted in 4 GiB).
#pragma once

#include "graph/layers.hpp"

#include <cstdint>
#include <functional>
#include <span>

namespace deepmem {

using ByteSink = std::function<void(uint64_t offset, std::span<const uint8_t> bytes)>;

enum class KdumpCompression : uint8_t { None, Zlib, Lzo, Snappy, Zstd };
KdumpCompression parse_kdump_compression(const std::string&);   // "none|zlib|lzo|snappy|zstd"; InputError

struct WriteStats {
    uint64_t pages = 0;           // pages written
    uint64_t partial_pages = 0;   // pages partly present in the input, left out
    uint64_t bytes = 0;           // file size written
};

// kdump-compressed, header version 6, as QEMU's dump-guest-memory writes it: 64-bit header
// layout, or 32-bit when the dump's first CPU note is not in long mode; the CPU state of
// phys.cpus() as QEMU notes; all-zero pages share one stored zero page; a page whose compressed
// form is not smaller is stored raw. `flattened`: makedumpfile's flattened form (what
// `dump-guest-memory -z` writes into a pipe or a file).
WriteStats write_kdump(const PhysicalLayer& phys, KdumpCompression compression, bool flattened, const ByteSink& sink);

// AVML v2: per range of present memory, blocks of at most 16 MiB (AVML's MAX_BLOCK_SIZE), each a
// 32-byte header (magic "AVML", version 2, first and last address), the block as a snappy framed
// stream, and the stream's length as u64. Unlike avml itself, all-zero blocks are kept, so no
// page present in the input goes missing.
WriteStats write_avml(const PhysicalLayer& phys, const ByteSink& sink);

}  // namespace deepmem
