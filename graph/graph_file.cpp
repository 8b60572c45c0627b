// The `.dmg` file: a memory graph as mmappable arrays.
//
// Layout (little-endian; every section starts on a 64-byte boundary, zero padding between):
//   [0, 512)   DmgHeader below: magic "DMGRAPH\0", version, header size, checksum, file size,
//              GraphParams, paging, counts, GraphBuildInfo numbers, and a table of 16 sections
//              {offset, size}: vaddr u64[N], paddr u64[N], length u32[N], features u8[N×F],
//              offsets u64[N+1] ×4 kinds (ln, rn, lp, rp), sources u32[E_k] ×4, dump path bytes,
//              kernel banner (empty when none was found; else u64 paddr, u64 vaddr in the kernel
//              image or 0 when found outside it, then the banner text without its '\n', which must
//              pass KernelBanner::parse), absent runs {vaddr u64, size u64}[A] (mapped kernel pages
//              the dump lacks: sorted, page-aligned, neither overlapping nor adjacent), warnings
//              (GraphBuildInfo::warnings: the lines joined by '\n', no trailing '\n'; empty when none).
//   Versions   8: the 16 sections above, GraphBuildInfo::absent_table_bytes,
//              kernel_image_bytes and stored_page_bytes (each of the last two plus one; 0 when
//              unknown) and GraphParams::long_gap_nodes in the header. 7: without stored_page_bytes
//              (zero: none, so the network work bound counts pages as before). 6: without long_gap_nodes (its byte zero: read as false, the graph has no
//              long gap's node). 5: without
//              kernel_image_bytes (its header bytes zero, read as unknown). 4: without either (zero, absent_table_bytes read as 0). 3: no warnings section. Older files read with the same header struct: a section a
//              version lacks sits in what its header kept zero (reserved) and reads as empty.
//              1: 13 sections (no banner, no absent runs). 2: 14 sections, the 14th the kernel
//              banner; pre-release builds of the absent runs also wrote version 2 with the absent
//              runs in that 14th slot, told apart by content (a banner's byte 16 is the 'L' of
//              "Linux", a run's is the low byte of a page-aligned vaddr, 0).
//   checksum   XXH64 construction (seed 0) over bytes [24, file size): everything after the
//              checksum field, header included.
// load() trusts nothing: sizes, alignment, overlap, checksum, then the contents the rest of the
// code relies on (vaddr ascending and non-overlapping, lengths positive, CSR offsets start at 0,
// never decrease and end at E_k, every source < N), all before any span is exposed.
#include "graph/file_io.hpp"
#include "graph/memory_graph.hpp"
#include "graph/paging.hpp"
#include "graph/text_lines.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <fcntl.h>
#include <sys/stat.h>
#include <type_traits>
#include <utility>
#include <unistd.h>

namespace deepmem {

static_assert(std::endian::native == std::endian::little, "the .dmg format is little-endian");

namespace {

constexpr char kMagic[8] = {'D', 'M', 'G', 'R', 'A', 'P', 'H', '\0'};
constexpr uint32_t kVersion = 8;   // the only place the format version is written
constexpr uint64_t kAlign = 64;
// The dump path section's bytes at most: Linux's PATH_MAX (include/uapi/linux/limits.h), the
// longest path open() takes.
constexpr uint64_t kMaxDumpPathBytes = 4096;
// Bytes of a .dmg outside its sections at most: the writer's padding is under kAlign a section
// (kSections of them and the end), an older version's file less; 64 KiB leaves room for both.
constexpr uint64_t kMaxUnsectioned = uint64_t{64} << 10;

enum Section : int {
    kVaddr, kPaddr, kLength, kFeatures,
    kOffsets0, kSources0 = kOffsets0 + kEdgeKinds, kDumpPath = kSources0 + kEdgeKinds,
    kKernelBanner,               // since version 2
    kAbsent,                     // since version 3
    kWarnings,                   // since version 4
    kSections
};
// Header slots a file of `version` fills; the rest must be zero.
int sections_in(uint32_t version) {
    return version == 1 ? kKernelBanner : version == 2 ? kAbsent : version == 3 ? kWarnings : kSections;
}
static_assert(sizeof(AbsentRun) == 16 && std::is_trivially_copyable_v<AbsentRun>);

// Whether the 14th section of a version-2 file holds absent runs (pre-release builds) rather than
// a kernel banner: a banner is 16 bytes of addresses then "Linux version …", absent runs are
// 16-byte records whose second record (if any) starts with a page-aligned vaddr.
bool prerelease_absent_runs(std::span<const uint8_t> sec) {
    return !sec.empty() && sec.size() % 16 == 0 && (sec.size() == 16 || sec[16] == 0);
}

struct SectionRef { uint64_t offset, size; };

struct DmgHeader {
    char magic[8];
    uint32_t version;
    uint32_t header_size;
    uint64_t checksum;
    uint64_t file_size;
    uint32_t word_size, feature_bytes, max_segment, neighbour_distance, pointer_target_back;
    uint8_t paging;
    uint8_t long_gap_nodes;   // since version 7: GraphParams::long_gap_nodes (0 or 1); zero before
    uint8_t pad[2];
    uint64_t node_count;
    uint64_t edge_count[kEdgeKinds];
    uint64_t dump_bytes, kernel_pages, pointer_fields, dtb;
    double build_seconds;
    SectionRef sections[kSections];
    uint64_t absent_table_bytes;   // since version 5 (GraphBuildInfo::absent_table_bytes); zero before
    uint64_t kernel_image_bytes;   // since version 6: GraphBuildInfo::kernel_image_bytes + 1, 0 when unknown (as before)
    uint64_t stored_page_bytes;    // since version 8: GraphBuildInfo::stored_page_bytes + 1, 0 when none (as before)
    uint8_t reserved[128 - 16 * (kSections - kKernelBanner - 1)];
};
static_assert(std::is_trivially_copyable_v<DmgHeader> && std::is_standard_layout_v<DmgHeader>);
static_assert(sizeof(DmgHeader) == 512);
static_assert(offsetof(DmgHeader, checksum) == 16 && offsetof(DmgHeader, file_size) == 24);
constexpr uint64_t kChecksumFrom = offsetof(DmgHeader, file_size);

// XXH64 construction, streaming.
class Checksum {
public:
    void update(const uint8_t* p, uint64_t n) {
        total_ += n;
        if (buffered_ + n < 32) {
            std::memcpy(buf_ + buffered_, p, n);
            buffered_ += n;
            return;
        }
        if (buffered_) {
            uint64_t take = 32 - buffered_;
            std::memcpy(buf_ + buffered_, p, take);
            stripe(buf_);
            p += take;
            n -= take;
            buffered_ = 0;
        }
        for (; n >= 32; p += 32, n -= 32) stripe(p);
        std::memcpy(buf_, p, n);
        buffered_ = n;
    }
    uint64_t digest() const {
        uint64_t h;
        if (total_ >= 32) {
            h = std::rotl(v_[0], 1) + std::rotl(v_[1], 7) + std::rotl(v_[2], 12) + std::rotl(v_[3], 18);
            for (uint64_t v : v_) h = (h ^ round(0, v)) * P1 + P4;
        } else {
            h = P5;
        }
        h += total_;
        const uint8_t* p = buf_;
        uint64_t n = buffered_;
        for (; n >= 8; p += 8, n -= 8) h = std::rotl(h ^ round(0, load<uint64_t>(p)), 27) * P1 + P4;
        if (n >= 4) {
            h = std::rotl(h ^ (uint64_t{load<uint32_t>(p)} * P1), 23) * P2 + P3;
            p += 4;
            n -= 4;
        }
        for (; n > 0; ++p, --n) h = std::rotl(h ^ (*p * P5), 11) * P1;
        h ^= h >> 33;
        h *= P2;
        h ^= h >> 29;
        h *= P3;
        h ^= h >> 32;
        return h;
    }

private:
    static constexpr uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full,
                              P3 = 0x165667B19E3779F9ull, P4 = 0x85EBCA77C2B2AE63ull,
                              P5 = 0x27D4EB2F165667C5ull;
    template <typename T> static T load(const uint8_t* p) { T v; std::memcpy(&v, p, sizeof v); return v; }
    static uint64_t round(uint64_t acc, uint64_t in) { return std::rotl(acc + in * P2, 31) * P1; }
    void stripe(const uint8_t* p) {
        for (int i = 0; i < 4; ++i) v_[i] = round(v_[i], load<uint64_t>(p + 8 * i));
    }
    uint64_t v_[4] = {P1 + P2, P2, 0, 0 - P1};
    uint8_t buf_[32] = {};
    uint64_t buffered_ = 0, total_ = 0;
};

uint64_t align_up(uint64_t v) { return (v + kAlign - 1) & ~(kAlign - 1); }

template <typename T> std::span<const uint8_t> as_bytes(std::span<const T> s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size_bytes()};
}

}  // namespace

struct MemoryGraphIo {
    static std::array<std::span<const uint8_t>, kSections> sections(const MemoryGraph& g) {
        std::array<std::span<const uint8_t>, kSections> s;
        s[kVaddr] = as_bytes(g.vaddr_);
        s[kPaddr] = as_bytes(g.paddr_);
        s[kLength] = as_bytes(g.length_);
        s[kFeatures] = g.features_;
        for (int k = 0; k < kEdgeKinds; ++k) {
            s[kOffsets0 + k] = as_bytes(g.in_[k].offsets);
            s[kSources0 + k] = as_bytes(g.in_[k].sources);
        }
        s[kDumpPath] = {reinterpret_cast<const uint8_t*>(g.info_.dump_path.data()), g.info_.dump_path.size()};
        s[kAbsent] = as_bytes(g.absent_);
        return s;
    }

    static std::string banner_section(const std::optional<FoundBanner>& b) {
        if (!b) return {};
        std::string s(16, '\0');
        const uint64_t at[2] = {b->paddr, b->vaddr.value_or(0)};
        std::memcpy(s.data(), at, sizeof at);
        return s + b->banner.text;
    }

    static std::optional<FoundBanner> banner_from(std::span<const uint8_t> sec, uint64_t offset) {
        if (sec.empty()) return std::nullopt;
        if (sec.size() < 16 || sec.size() > 16 + kMaxBannerBytes)
            throw FormatError(offset, "kernel banner section of " + std::to_string(sec.size()) +
                                          " bytes, expected none or 16 + at most " + std::to_string(kMaxBannerBytes));
        uint64_t at[2];
        std::memcpy(at, sec.data(), sizeof at);
        const std::string text(reinterpret_cast<const char*>(sec.data()) + 16, sec.size() - 16);
        auto kb = KernelBanner::parse(text + "\n");
        if (!kb || kb->text != text) throw FormatError(offset + 16, "the kernel banner is not a `Linux version …` line");
        return FoundBanner{std::move(*kb), at[0], at[1] ? std::optional<uint64_t>(at[1]) : std::nullopt};
    }

    // The warnings section: lines as set_warnings() leaves them (terminal text, bounded, none empty),
    // so that printing a crafted file's warnings cannot drive the terminal.
    static std::vector<std::string> warnings_from(std::span<const uint8_t> sec, uint64_t offset) {
        std::vector<std::string> out;
        if (sec.empty()) return out;
        const std::string_view text(reinterpret_cast<const char*>(sec.data()), sec.size());
        for (size_t at = 0;;) {
            const size_t end = std::min(text.find('\n', at), text.size());
            const std::string_view line = text.substr(at, end - at);
            const std::string which = "warning " + std::to_string(out.size() + 1);
            if (out.size() == GraphBuildInfo::kMaxWarnings)
                throw FormatError(offset + at, "more than " + std::to_string(GraphBuildInfo::kMaxWarnings) + " warnings");
            if (line.empty()) throw FormatError(offset + at, which + " is empty");
            if (line.size() > GraphBuildInfo::kMaxWarningBytes)
                throw FormatError(offset + at, which + " is longer than " + std::to_string(GraphBuildInfo::kMaxWarningBytes) + " bytes");
            if (const size_t i = first_unsafe_terminal_byte(line); i != std::string_view::npos) {
                char byte[8];
                std::snprintf(byte, sizeof byte, "0x%02x", static_cast<unsigned char>(line[i]));
                throw FormatError(offset + at + i, which + " is not terminal text at byte " + byte +
                                                       " (a control or bidi character, or not UTF-8)");
            }
            out.emplace_back(line);
            if (end == text.size()) return out;
            at = end + 1;
        }
    }

    static void save(const MemoryGraph& g, const std::string& path) {
        DmgHeader h{};
        std::memcpy(h.magic, kMagic, sizeof kMagic);
        h.version = kVersion;
        h.header_size = sizeof(DmgHeader);
        h.word_size = g.params_.word_size;
        h.feature_bytes = g.params_.feature_bytes;
        h.max_segment = g.params_.max_segment;
        h.neighbour_distance = g.params_.neighbour_distance;
        h.pointer_target_back = g.params_.pointer_target_back;
        h.long_gap_nodes = g.params_.long_gap_nodes;
        h.paging = static_cast<uint8_t>(g.info_.paging);
        h.node_count = g.node_count();
        for (int k = 0; k < kEdgeKinds; ++k) h.edge_count[k] = g.in_[k].sources.size();
        h.dump_bytes = g.info_.dump_bytes;
        h.kernel_pages = g.info_.kernel_pages;
        h.pointer_fields = g.info_.pointer_fields;
        h.dtb = g.info_.dtb;
        h.build_seconds = g.info_.build_seconds;
        h.absent_table_bytes = g.info_.absent_table_bytes;
        h.kernel_image_bytes = g.info_.kernel_image_bytes ? *g.info_.kernel_image_bytes + 1 : 0;
        h.stored_page_bytes = g.info_.stored_page_bytes ? *g.info_.stored_page_bytes + 1 : 0;
        auto secs = sections(g);
        const std::string banner = banner_section(g.info_.kernel_banner);
        secs[kKernelBanner] = {reinterpret_cast<const uint8_t*>(banner.data()), banner.size()};
        std::string warnings;
        for (const std::string& w : g.info_.warnings) warnings += (warnings.empty() ? "" : "\n") + w;
        secs[kWarnings] = {reinterpret_cast<const uint8_t*>(warnings.data()), warnings.size()};
        // A graph with no nodes still has one offset per kind (offsets[0] == 0).
        static const uint64_t zero_offset = 0;
        for (int k = 0; k < kEdgeKinds; ++k)
            if (secs[kOffsets0 + k].empty())
                secs[kOffsets0 + k] = {reinterpret_cast<const uint8_t*>(&zero_offset), sizeof zero_offset};
        uint64_t off = sizeof(DmgHeader);
        for (int i = 0; i < kSections; ++i) {
            off = align_up(off);
            h.sections[i] = {off, secs[i].size()};
            off += secs[i].size();
        }
        h.file_size = align_up(off);

        AtomicFile out(path);
        Checksum sum;
        static const uint8_t pad[kAlign] = {};
        auto emit = [&](const uint8_t* p, uint64_t n, uint64_t at) {
            out.write({p, n});
            if (at + n > kChecksumFrom) {
                uint64_t skip = at >= kChecksumFrom ? 0 : kChecksumFrom - at;
                sum.update(p + skip, n - skip);
            }
        };
        emit(reinterpret_cast<const uint8_t*>(&h), sizeof h, 0);
        uint64_t at = sizeof h;
        for (int i = 0; i < kSections; ++i) {
            emit(pad, h.sections[i].offset - at, at);
            at = h.sections[i].offset;
            if (!secs[i].empty()) emit(secs[i].data(), secs[i].size(), at);
            at += secs[i].size();
        }
        emit(pad, h.file_size - at, at);
        uint64_t checksum = sum.digest();
        out.write_at(offsetof(DmgHeader, checksum), {reinterpret_cast<const uint8_t*>(&checksum), sizeof checksum});
        out.commit();
    }

    static MemoryGraph view(std::span<const uint8_t> file, std::shared_ptr<const void> storage) {
        if (file.size() < sizeof(DmgHeader))
            throw FormatError(file.size(), "truncated .dmg: " + std::to_string(file.size()) +
                                               " bytes, expected a 512-byte header at least");
        DmgHeader h;
        std::memcpy(&h, file.data(), sizeof h);
        if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0)
            throw FormatError(0, "not a .dmg memory graph (expected magic \"DMGRAPH\")");
        if (h.version < 1 || h.version > kVersion)
            throw FormatError(offsetof(DmgHeader, version), ".dmg version " + std::to_string(h.version) +
                                                                  ", expected 1 to " + std::to_string(kVersion) +
                                                                  (h.version > kVersion ? " (made by a newer deepmem)" : ""));
        const int nsections = sections_in(h.version);
        for (int i = nsections; i < kSections; ++i)   // an older version's reserved bytes
            if (h.sections[i].offset || h.sections[i].size)
                throw FormatError(offsetof(DmgHeader, sections) + sizeof(SectionRef) * i,
                                  "reserved header bytes are not zero");
        if (h.header_size != sizeof(DmgHeader))
            throw FormatError(offsetof(DmgHeader, header_size), "header size " + std::to_string(h.header_size) +
                                                                      ", expected 512");
        if (h.file_size != file.size())
            throw FormatError(offsetof(DmgHeader, file_size),
                              "file is " + std::to_string(file.size()) + " bytes, header says " +
                                  std::to_string(h.file_size) + " (truncated or appended to)");
        // The writer pads each section and the file's end to kAlign bytes: more than kMaxUnsectioned
        // bytes outside the sections (gaps, a tail) are refused before the checksum reads them
        // (attacker 99: 32 GiB of sparse holes read for the checksum, 17 GB resident).
        uint64_t end = sizeof(DmgHeader), outside = 0;
        for (int i = 0; i < nsections; ++i) {
            const SectionRef& r = h.sections[i];
            if (r.offset > end && r.offset <= file.size()) outside += r.offset - end;
            if (r.offset <= file.size() && r.size <= file.size() - r.offset) end = std::max(end, r.offset + r.size);
        }
        outside += file.size() - end;
        if (outside > kMaxUnsectioned)
            throw FormatError(end, std::to_string(outside) + " bytes of the file lie outside its sections (a .dmg pads each to " +
                                       std::to_string(kAlign) + " bytes: at most " + std::to_string(kMaxUnsectioned) + ")");
        Checksum sum;
        sum.update(file.data() + kChecksumFrom, file.size() - kChecksumFrom);
        if (sum.digest() != h.checksum)
            throw FormatError(offsetof(DmgHeader, checksum), "checksum mismatch (corrupt .dmg)");

        // Checksummed from here on, but still never trusted: a crafted file has a valid checksum.
        for (uint8_t b : h.reserved)
            if (b) throw FormatError(offsetof(DmgHeader, reserved), "reserved header bytes are not zero");
        if (h.version < 5 && h.absent_table_bytes)
            throw FormatError(offsetof(DmgHeader, absent_table_bytes), "reserved header bytes are not zero");
        if (h.version < 6 && h.kernel_image_bytes)
            throw FormatError(offsetof(DmgHeader, kernel_image_bytes), "reserved header bytes are not zero");
        if (h.version < 8 && h.stored_page_bytes)
            throw FormatError(offsetof(DmgHeader, stored_page_bytes), "reserved header bytes are not zero");
        if (h.stored_page_bytes && h.stored_page_bytes - 1 > h.dump_bytes)   // PhysicalLayer::stored_page_bytes ≤ the file
            throw FormatError(offsetof(DmgHeader, stored_page_bytes),
                              "stored page bytes " + std::to_string(h.stored_page_bytes - 1) + " exceed the dump's " +
                                  std::to_string(h.dump_bytes));
        for (uint8_t b : h.pad)
            if (b) throw FormatError(offsetof(DmgHeader, pad), "reserved header bytes are not zero");
        if (h.long_gap_nodes > 1 || (h.version < 7 && h.long_gap_nodes))
            throw FormatError(offsetof(DmgHeader, long_gap_nodes),
                              h.version < 7 ? "reserved header bytes are not zero"
                                            : "long-gap nodes flag " + std::to_string(h.long_gap_nodes) + ", expected 0 or 1");
        GraphParams p{h.word_size, h.feature_bytes, h.max_segment, h.neighbour_distance, h.pointer_target_back,
                      h.long_gap_nodes == 1};
        if (p.word_size != 4 && p.word_size != 8)
            throw FormatError(offsetof(DmgHeader, word_size), "word size " + std::to_string(p.word_size) +
                                                                    ", expected 4 or 8");
        if (p.feature_bytes == 0 || p.feature_bytes > 4096)
            throw FormatError(offsetof(DmgHeader, feature_bytes), "feature bytes " +
                                                                        std::to_string(p.feature_bytes) +
                                                                        ", expected 1..4096");
        if (p.max_segment == 0) throw FormatError(offsetof(DmgHeader, max_segment), "max segment is 0");
        if (std::string why = p.long_gap_conflict(); !why.empty()) throw FormatError(offsetof(DmgHeader, long_gap_nodes), why);
        if (h.paging > static_cast<uint8_t>(PagingMode::X86_64_5Level))
            throw FormatError(offsetof(DmgHeader, paging), "unknown paging mode " + std::to_string(h.paging));
        const uint64_t N = h.node_count;
        if (N >= UINT32_MAX) throw FormatError(offsetof(DmgHeader, node_count), "node count too large");

        uint64_t expect[kSections] = {};
        expect[kVaddr] = N * 8;
        expect[kPaddr] = N * 8;
        expect[kLength] = N * 4;
        expect[kFeatures] = N * p.feature_bytes;
        for (int k = 0; k < kEdgeKinds; ++k) {
            if (h.edge_count[k] > file.size() / 4)
                throw FormatError(offsetof(DmgHeader, edge_count) + 8 * k, "edge count exceeds the file");
            expect[kOffsets0 + k] = (N + 1) * 8;
            expect[kSources0 + k] = h.edge_count[k] * 4;
        }
        uint64_t prev_end = sizeof(DmgHeader);
        std::span<const uint8_t> sec[kSections];
        for (int i = 0; i < nsections; ++i) {
            const uint64_t at = offsetof(DmgHeader, sections) + sizeof(SectionRef) * i;
            const SectionRef s = h.sections[i];
            if (s.offset % kAlign != 0)
                throw FormatError(at, "section " + std::to_string(i) + " is not 64-byte aligned");
            if (s.offset < sizeof(DmgHeader))   // {0, 0}: a writer that left this section's slot empty
                throw FormatError(at, "section " + std::to_string(i) + " starts at offset " + std::to_string(s.offset) +
                                          ", inside the header (an empty slot?)");
            if (s.offset < prev_end)
                throw FormatError(at, "section " + std::to_string(i) + " overlaps the previous one");
            if (s.offset > file.size() || s.size > file.size() - s.offset)
                throw FormatError(at, "section " + std::to_string(i) + " extends past the end of the file");
            if (i == kAbsent && s.size % sizeof(AbsentRun) != 0)
                throw FormatError(at, "absent-runs section is " + std::to_string(s.size) +
                                          " bytes, not a multiple of 16");
            if (i == kDumpPath && s.size > kMaxDumpPathBytes)   // (attacker 99: 56 MiB, pasted into every note)
                throw FormatError(at, "dump path of " + std::to_string(s.size) + " bytes, expected at most " +
                                          std::to_string(kMaxDumpPathBytes) + " (PATH_MAX)");
            if (i != kDumpPath && i != kKernelBanner && i != kAbsent && i != kWarnings && s.size != expect[i])
                throw FormatError(at, "section " + std::to_string(i) + " is " + std::to_string(s.size) +
                                          " bytes, expected " + std::to_string(expect[i]));
            prev_end = s.offset + s.size;
            sec[i] = file.subspan(s.offset, s.size);
        }

        uint64_t absent_offset = h.sections[kAbsent].offset;
        if (h.version == 2 && prerelease_absent_runs(sec[kKernelBanner])) {
            absent_offset = h.sections[kKernelBanner].offset;
            sec[kAbsent] = std::exchange(sec[kKernelBanner], {});
        }

        MemoryGraph g;
        g.params_ = p;
        g.info_.dump_path.assign(reinterpret_cast<const char*>(sec[kDumpPath].data()), sec[kDumpPath].size());
        g.info_.dump_bytes = h.dump_bytes;
        g.graph_file_bytes_ = file.size();
        g.info_.kernel_pages = h.kernel_pages;
        g.info_.pointer_fields = h.pointer_fields;
        g.info_.dtb = h.dtb;
        g.info_.paging = static_cast<PagingMode>(h.paging);
        g.info_.build_seconds = h.build_seconds;
        g.info_.absent_table_bytes = h.absent_table_bytes;
        if (h.stored_page_bytes) g.info_.stored_page_bytes = h.stored_page_bytes - 1;
        if (h.kernel_image_bytes) {   // (zero before version 6: checked above)
            const paging::Scheme& s = paging::scheme_of(g.info_.paging);
            if (!s.sign_extend)
                throw FormatError(offsetof(DmgHeader, kernel_image_bytes), "a kernel image window in a 32-bit or PAE graph");
            if (h.kernel_image_bytes - 1 > s.text_window)
                throw FormatError(offsetof(DmgHeader, kernel_image_bytes),
                                  "kernel image bytes " + std::to_string(h.kernel_image_bytes - 1) + " exceed its window");
            g.info_.kernel_image_bytes = h.kernel_image_bytes - 1;
        }
        g.info_.kernel_banner = banner_from(sec[kKernelBanner], h.sections[kKernelBanner].offset);
        if (g.info_.kernel_image_bytes == uint64_t{0} && g.info_.kernel_banner && g.info_.kernel_banner->in_kernel_image())
            throw FormatError(offsetof(DmgHeader, kernel_image_bytes),
                              "the banner lies in the kernel image, which the header says maps no present byte");
        g.info_.warnings = warnings_from(sec[kWarnings], h.sections[kWarnings].offset);
        auto u64 = [](std::span<const uint8_t> s) {
            return std::span<const uint64_t>(reinterpret_cast<const uint64_t*>(s.data()), s.size() / 8);
        };
        auto u32 = [](std::span<const uint8_t> s) {
            return std::span<const uint32_t>(reinterpret_cast<const uint32_t*>(s.data()), s.size() / 4);
        };
        auto vaddr = u64(sec[kVaddr]);
        auto length = u32(sec[kLength]);
        for (uint64_t n = 0; n < N; ++n) {
            const uint64_t at = h.sections[kLength].offset + 4 * n;
            if (length[n] == 0) throw FormatError(at, "node " + std::to_string(n) + " has length 0");
            if (vaddr[n] + length[n] < vaddr[n])
                throw FormatError(at, "node " + std::to_string(n) + " wraps the address space");
            if (n + 1 < N && vaddr[n] + length[n] > vaddr[n + 1])
                throw FormatError(h.sections[kVaddr].offset + 8 * (n + 1),
                                  "node " + std::to_string(n + 1) + " is not after node " + std::to_string(n) +
                                      " (vaddrs must ascend without overlap)");
            if (p.long_gap(length[n]) && (!p.long_gap_nodes || length[n] != p.long_gap_length()))
                throw FormatError(at, "node " + std::to_string(n) + " has length " + std::to_string(length[n]) +
                                          (p.long_gap_nodes ? ", expected below max_segment or a long gap's " +
                                                                  std::to_string(p.long_gap_length())
                                                            : ", not below max_segment (the header says no long gaps' nodes)"));
        }
        for (int k = 0; k < kEdgeKinds; ++k) {
            auto offsets = u64(sec[kOffsets0 + k]);
            auto sources = u32(sec[kSources0 + k]);
            const uint64_t base = h.sections[kOffsets0 + k].offset;
            const char* kind = to_string(static_cast<EdgeKind>(k));
            if (offsets[0] != 0) throw FormatError(base, std::string(kind) + " CSR offsets do not start at 0");
            for (uint64_t n = 0; n < N; ++n)
                if (offsets[n + 1] < offsets[n])
                    throw FormatError(base + 8 * (n + 1), std::string(kind) + " CSR offsets decrease at row " +
                                                              std::to_string(n));
            if (offsets[N] != h.edge_count[k])
                throw FormatError(base + 8 * N, std::string(kind) + " CSR offsets end at " +
                                                    std::to_string(offsets[N]) + ", expected " +
                                                    std::to_string(h.edge_count[k]) + " edges");
            for (uint64_t e = 0; e < sources.size(); ++e) {
                if (sources[e] >= N)
                    throw FormatError(h.sections[kSources0 + k].offset + 4 * e,
                                      std::string(kind) + " edge source " + std::to_string(sources[e]) +
                                          " is not a node (" + std::to_string(N) + " nodes)");
                if (p.long_gap(length[sources[e]]))   // a sink (memory_graph.hpp, Long gaps)
                    throw FormatError(h.sections[kSources0 + k].offset + 4 * e,
                                      std::string(kind) + " edge source " + std::to_string(sources[e]) +
                                          " is a long gap's node, which feeds no node");
            }
            g.in_[k] = {offsets, sources};
        }
        std::span<const AbsentRun> absent(reinterpret_cast<const AbsentRun*>(sec[kAbsent].data()),
                                          sec[kAbsent].size() / sizeof(AbsentRun));
        for (uint64_t i = 0; i < absent.size(); ++i) {
            const AbsentRun& a = absent[i];
            const uint64_t at = absent_offset + sizeof(AbsentRun) * i;
            if ((a.vaddr | a.size) % 4096 != 0 || a.size == 0)
                throw FormatError(at, "absent run " + std::to_string(i) + " is not a positive number of whole pages");
            if (a.vaddr + a.size < a.vaddr && a.vaddr + a.size != 0)
                throw FormatError(at, "absent run " + std::to_string(i) + " wraps the address space");
            if (i > 0 && (absent[i - 1].vaddr + absent[i - 1].size == 0 ||
                          a.vaddr <= absent[i - 1].vaddr + absent[i - 1].size))
                throw FormatError(at, "absent run " + std::to_string(i) +
                                          " is not after the previous one (runs must ascend with gaps)");
            g.info_.absent_pages += a.size / 4096;
        }
        g.absent_ = absent;
        g.vaddr_ = vaddr;
        g.paddr_ = u64(sec[kPaddr]);
        g.length_ = length;
        g.features_ = sec[kFeatures];
        g.storage_ = std::move(storage);
        return g;
    }
};

uint64_t dmg_checksum(std::span<const uint8_t> file) noexcept {
    Checksum sum;
    if (file.size() > kChecksumFrom) sum.update(file.data() + kChecksumFrom, file.size() - kChecksumFrom);
    return sum.digest();
}

void MemoryGraph::save(const std::string& path) const { MemoryGraphIo::save(*this, path); }

bool MemoryGraph::is_graph_file(const std::string& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return false;   // a FIFO would block the read
    char magic[sizeof kMagic] = {};
    std::ifstream(path, std::ios::binary).read(magic, sizeof magic);
    return std::memcmp(magic, kMagic, sizeof kMagic) == 0;
}

MemoryGraph MemoryGraph::load(const std::string& path) {
    auto file = std::make_shared<MappedFile>(path);
    auto bytes = file->bytes();
    const uint64_t held = held_bytes(file->data_extents());   // a sparse file's holes hold nothing (graph_file_bytes)
    MemoryGraph g = MemoryGraphIo::view(bytes, std::move(file));
    g.graph_file_bytes_ = std::min(held, g.graph_file_bytes_);
    return g;
}

MemoryGraph MemoryGraph::from_bytes(std::span<const uint8_t> bytes) {
    // 8-byte-aligned copy, so the u64/u32 views are aligned whatever the caller's buffer was.
    auto buf = std::make_shared<std::vector<uint64_t>>((bytes.size() + 7) / 8);
    if (!bytes.empty()) std::memcpy(buf->data(), bytes.data(), bytes.size());
    std::span<const uint8_t> view(reinterpret_cast<const uint8_t*>(buf->data()), bytes.size());
    return MemoryGraphIo::view(view, std::move(buf));
}

}  // namespace deepmem
