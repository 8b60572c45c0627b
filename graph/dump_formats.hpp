// Internal to graph/: each acquisition format parses file bytes into the same thing — physical runs
// plus any CPU state the file carries. physical_layer.cpp sorts, validates and merges the runs.
// Every parser checks each header field against the file size with overflow-safe arithmetic and
// throws FormatError{offset, expected} on the first inconsistency.
#pragma once

#include "graph/layers.hpp"

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace deepmem::detail {

struct ParsedDump {
    std::vector<PhysicalRun> runs;   // any order; physical_layer.cpp validates and merges
    std::vector<CpuState> cpus;
};

ParsedDump parse_raw(std::span<const uint8_t> file);
ParsedDump parse_elf_core(std::span<const uint8_t> file);   // graph/elf_core.cpp
ParsedDump parse_lime(std::span<const uint8_t> file);       // graph/lime.cpp

// Content sniffing for DumpFormat::Auto (ELF magic, LiME magic, else raw).
DumpFormat sniff_format(std::span<const uint8_t> file) noexcept;

// Little-endian field loads; callers have bounds-checked [off, off+N) against the file already.
inline uint16_t le16(const uint8_t* p) noexcept { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t le32(const uint8_t* p) noexcept { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline uint64_t le64(const uint8_t* p) noexcept { uint64_t v; std::memcpy(&v, p, 8); return v; }

// True when [off, off+len) lies inside a file of `size` bytes, without overflowing.
inline bool in_file(uint64_t off, uint64_t len, uint64_t size) noexcept {
    return off <= size && len <= size - off;
}

}  // namespace deepmem::detail
