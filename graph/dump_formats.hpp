// Internal to graph/: each acquisition format parses file bytes into the same thing — physical runs
// plus any CPU state the file carries. physical_layer.cpp sorts, validates and merges the runs.
// Every parser checks each header field against the file size with overflow-safe arithmetic and
// throws FormatError{offset, expected} on the first inconsistency.
//
// Truncated files (the tail of the capture missing): unless `strict`, a parser keeps the memory
// that is present, clipping the runs to it, and adds one warning saying what is missing.
// Compressed formats (kdump, AVML) decompress into a DecodedImage; their runs then index the image.
// A kdump page that does not decompress is left out of the runs (absent) with one warning, unless
// strict; bombs (DecodedImage budget) are refused either way.
#pragma once

#include "graph/decoded_image.hpp"
#include "graph/layers.hpp"

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace deepmem::detail {

struct ParsedDump {
    std::vector<PhysicalRun> runs;   // any order; physical_layer.cpp validates and merges
    std::vector<CpuState> cpus;
    std::vector<std::string> warnings;     // one line each, no tool prefix
    // {paddr, size} of memory the file holds but that does not decode (kdump pages, AVML chunks):
    // absent like the rest, but not cut off. Ascending, disjoint.
    std::vector<std::pair<uint64_t, uint64_t>> undecodable;
    std::shared_ptr<DecodedImage> image;   // set by compressed formats: runs' file_offset index it
    // Compressed formats: the file bytes their non-zero 4 KiB pages take, at most kCountedPageBytes
    // a page, each byte once (PhysicalLayer::stored_page_bytes). Unset for the
    // formats that store every page whole (raw, ELF, LiME).
    std::optional<uint64_t> stored_page_bytes;
    // What is wrong with the file itself, one line each, for memory it lacks or cannot decode
    // (what --strict refuses): when no memory at all is left, the error names these, not the
    // warnings' consequences and --strict, which the user may not have given.
    std::vector<std::string> faults;
    // One such warning: `fault` then `consequence` (with its own leading separator, e.g. "; they
    // read as absent") and " (--strict refuses)"; `fault` alone goes to faults.
    void lacks(std::string fault, const std::string& consequence) {
        warnings.push_back(fault + consequence + " (--strict refuses)");
        faults.push_back(std::move(fault));
    }
};

ParsedDump parse_raw(std::span<const uint8_t> file);
ParsedDump parse_elf_core(std::span<const uint8_t> file, bool strict);   // graph/elf_core.cpp
// `done_with(offset, len)`: file bytes the parser has walked past, called every few MiB, so that
// a walk over headers spread through an mmapped file (a LiME header before each of 65,600
// one-page ranges) drops what it read (MappedFile::release) instead of keeping the whole file
// resident; empty for in-memory images.
using DoneWith = std::function<void(uint64_t offset, uint64_t len)>;
ParsedDump parse_lime(std::span<const uint8_t> file, bool strict, const DoneWith& done_with = {});   // graph/lime.cpp
// `held`: of `file`'s bytes, those its file holds (a sparse file's holes left out: PhysicalLayer::
// held_bytes), what the decompression bomb budget (DecodedImage::kBombFactor) scales by — a file's
// apparent size is whatever its writer seeked to (reviewer 101 H1); at most file.size().
// `interrupt` (graph/layers.hpp): called per batch of pages or chunks decompressed.
ParsedDump parse_kdump(std::span<const uint8_t> file, bool strict, uint64_t held, const InterruptFn& interrupt = {});   // graph/kdump.cpp
ParsedDump parse_avml(std::span<const uint8_t> file, bool strict, uint64_t held, const InterruptFn& interrupt = {});    // graph/avml.cpp

// ELF notes (QEMU "QEMU" CPU-state notes give cr0/cr3/cr4) in `notes`, which sits at
// `file_offset` in the file (for error offsets): appended to d.cpus. graph/elf_core.cpp; the kdump
// sub-header carries the same notes.
void parse_elf_notes(std::span<const uint8_t> notes, uint64_t file_offset, bool long_mode, ParsedDump& d);
// The "CORE"-less note QEMU would write for `cpu`: a "QEMU" note (type 0) with a QEMUCPUState of
// 432 bytes (cs.flags L bit from long_mode, cr0, cr3, cr4), so that writers of other formats keep
// the CPU state parse_elf_notes() reads.
std::vector<uint8_t> qemu_cpu_note(const CpuState& cpu);

// Content sniffing for DumpFormat::Auto: ELF, LiME, AVML, kdump ("KDUMP   " or makedumpfile's
// flattened "makedumpfile" header) magic, else raw.
DumpFormat sniff_format(std::span<const uint8_t> file) noexcept;
// Files that are not memory dumps deepmem can read but would otherwise be taken for raw memory:
// QEMU migration streams (QEVM) and archives (gzip, xz, zstd, bzip2, lz4, zip, tar). Throws
// InputError naming the format and what to do; returns for anything else.
void refuse_unreadable(std::span<const uint8_t> file, const std::string& name);

// Little-endian field loads; callers have bounds-checked [off, off+N) against the file already.
inline uint16_t le16(const uint8_t* p) noexcept { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t le32(const uint8_t* p) noexcept { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline uint64_t le64(const uint8_t* p) noexcept { uint64_t v; std::memcpy(&v, p, 8); return v; }

// x86 MAXPHYADDR is at most 52 bits (Intel SDM vol. 3A §4.1.4, AMD APM vol. 2 §5.3.3): a header
// placing memory beyond 2^52 is corrupt (and page-rounding arithmetic near 2^64 would wrap), so
// every parser refuses it, strict or not, naming the range.
inline constexpr uint64_t kMaxPhysical = uint64_t{1} << 52;
// True when the physical range [start, start+len) ends at or below 2^52, without overflowing.
inline bool below_maxphyaddr(uint64_t start, uint64_t len) noexcept {
    return start <= kMaxPhysical && len <= kMaxPhysical - start;
}

// True when [off, off+len) lies inside a file of `size` bytes, without overflowing.
inline bool in_file(uint64_t off, uint64_t len, uint64_t size) noexcept {
    return off <= size && len <= size - off;
}

}  // namespace deepmem::detail
