// A .dmg's bytes in tests (graph/graph_file.cpp's layout): a scratch directory to save into, the
// file read back, little-endian header fields read and written, and the checksum made valid again
// after an edit (a crafted file has a valid checksum).
#pragma once

#include "graph/memory_graph.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>
#include <stdlib.h>

namespace deepmem::test {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string t = (std::filesystem::temp_directory_path() / "dmg-test-XXXXXX").string();
        REQUIRE(::mkdtemp(t.data()) != nullptr);
        path = t;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string operator/(const char* name) const { return (path / name).string(); }
};

inline std::vector<uint8_t> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

inline void put64(std::vector<uint8_t>& f, uint64_t at, uint64_t v) { std::memcpy(&f[at], &v, 8); }
inline void put32(std::vector<uint8_t>& f, uint64_t at, uint32_t v) { std::memcpy(&f[at], &v, 4); }
inline uint64_t get64(const std::vector<uint8_t>& f, uint64_t at) { uint64_t v; std::memcpy(&v, &f[at], 8); return v; }
inline void reseal(std::vector<uint8_t>& f) { put64(f, 16, dmg_checksum(f)); }

// Header offsets (graph/graph_file.cpp DmgHeader).
constexpr uint64_t kVersionAt = 8, kFileSizeAt = 24, kLongGapAt = 53, kNodeCountAt = 56, kEdgeCountAt = 64, kDumpBytesAt = 96,
                   kSectionsAt = 136;
constexpr uint64_t kStoredPageBytesAt = kSectionsAt + 16 * 16 + 16;   // after absent_table_bytes, kernel_image_bytes

}  // namespace deepmem::test
