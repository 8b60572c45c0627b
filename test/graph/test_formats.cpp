// Acquisition formats beyond raw/ELF/LiME on small synthetic dumps: kdump-compressed (zlib, lzo,
// snappy, zstd, none; plain and flattened) and AVML v2 written by graph/dump_writers.hpp and read
// back; truncated ELF / LiME / kdump / AVML (clipped with a warning, refused when strict); QEMU
// migration streams and archives refused by name; decompression bombs; the linear-time overlap
// rules of the physical layer (thousands of PT_LOADs over the same bytes).
#include "graph/decoded_image.hpp"
#include "graph/dump_writers.hpp"
#include "graph/layers.hpp"
#include "graph/text_lines.hpp"
#include "graph/memory_graph.hpp"
#include "graph/snappy_frame.hpp"
#include "test/graph/dump_images.hpp"
#include "test/graph/layer_images.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <unistd.h>

using namespace deepmem;
using namespace deepmem::test_images;

namespace {

// Same runs (paddr, size) and same bytes in each.
void check_same_memory(const PhysicalLayer& a, const PhysicalLayer& b) {
    REQUIRE(a.runs().size() == b.runs().size());
    for (size_t i = 0; i < a.runs().size(); ++i) {
        const PhysicalRun &x = a.runs()[i], &y = b.runs()[i];
        CHECK(x.paddr == y.paddr);
        REQUIRE(x.size == y.size);
        std::vector<uint8_t> u(x.size), v(y.size);
        REQUIRE(a.read(x.paddr, u));
        REQUIRE(b.read(y.paddr, v));
        CHECK(u == v);
    }
}

std::string input_error(const std::function<void()>& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    FAIL("expected InputError");
    return {};
}

// A 4-level x86-64 image (layer_images.hpp) with a page of a repeated non-zero byte, a page of
// random-looking bytes, and holes, as a QEMU-style ELF core with one long-mode CPU note.
struct Fixture {
    Image mem = build_x64_4level();
    std::vector<uint8_t> elf;
    std::unique_ptr<PhysicalLayer> phys;
    Fixture() {
        std::memset(mem.bytes.data() + 0x30000, 0x41, 0x1000);
        uint32_t x = 12345;
        for (uint64_t i = 0; i < 0x1000; ++i) mem.bytes[0x31000 + i] = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);
        elf = to_elf(mem.bytes, {{0, 0x9f000}, {0x100000, 0x300000}}, {{0x80000011, 0x1000, 0x20, true}}, true);
        phys = PhysicalLayer::from_bytes(elf);
    }
};

}  // namespace

TEST_CASE("formats: kdump in every compression, plain and flattened, gives back the ELF's memory and CPU state") {
    Fixture f;
    REQUIRE(f.phys->cpus().size() == 1);
    for (auto c : {KdumpCompression::Zlib, KdumpCompression::Lzo, KdumpCompression::Snappy, KdumpCompression::Zstd,
                   KdumpCompression::None}) {
        for (bool flat : {false, true}) {
            CAPTURE(int(c));
            CAPTURE(flat);
            auto k = kdump_of(*f.phys, c, flat);
            CHECK(k.size() < f.elf.size());   // zero pages share one stored page
            auto p = PhysicalLayer::from_bytes(k);
            CHECK(p->format() == DumpFormat::Kdump);
            CHECK(p->warnings().empty());
            check_same_memory(*f.phys, *p);
            REQUIRE(p->cpus().size() == 1);
            CHECK(p->cpus()[0].cr3 == 0x1000);
            CHECK(p->cpus()[0].long_mode);
            auto t = TranslationLayer::detect(*p);
            CHECK(t.dtb() == 0x1000);
            CHECK(t.kernel_runs().size() == TranslationLayer::detect(*f.phys).kernel_runs().size());
        }
    }
}

TEST_CASE("formats: a 32-bit guest's kdump uses the 32-bit header layout and keeps PAE") {
    Image mem = build_pae();
    auto elf = to_elf(mem.bytes, {{0, mem.bytes.size()}}, {{0x80000011, 0x1000, 0x20, false}}, false);
    auto phys = PhysicalLayer::from_bytes(elf);
    auto k = kdump_of(*phys, KdumpCompression::Zlib, false);
    CHECK(std::memcmp(k.data() + 12 + 4 * 65, "i686", 4) == 0);
    auto p = PhysicalLayer::from_bytes(k, DumpFormat::Kdump);
    check_same_memory(*phys, *p);
    REQUIRE(p->cpus().size() == 1);
    CHECK_FALSE(p->cpus()[0].long_mode);
    CHECK(TranslationLayer::detect(*p).mode() == PagingMode::X86_PAE);
}

TEST_CASE("formats: AVML v2 round trip, LiME v1 ranges among AVML ones, sniffing and --format override") {
    Fixture f;
    auto a = avml_of(*f.phys);
    REQUIRE(std::memcmp(a.data(), "AVML", 4) == 0);
    auto p = PhysicalLayer::from_bytes(a);
    CHECK(p->format() == DumpFormat::Avml);
    CHECK(p->warnings().empty());
    check_same_memory(*f.phys, *p);
    uint64_t data_bytes = 0;   // zero pages are holes of the decoded image: present, not scanned
    for (const auto& r : p->data_runs()) data_bytes += r.size;
    CHECK(data_bytes < p->present_bytes());
    CHECK(data_bytes >= 0x3000);
    // avml also reads LiME v1 ranges: append one for 0xa0000-0xa0fff.
    std::vector<uint8_t> raw(0x1000, 0x5a);
    auto lime = to_lime(std::vector<uint8_t>(0xa1000, 0x5a), {0xa0000});
    std::vector<uint8_t> mixed = a;
    mixed.insert(mixed.end(), lime.end() - (32 + 0x1000), lime.end());
    auto m = PhysicalLayer::from_bytes(mixed, DumpFormat::Avml);
    CHECK(m->present_bytes() == f.phys->present_bytes() + 0x1000);
    std::vector<uint8_t> back(0x1000);
    REQUIRE(m->read(0xa0000, back));
    CHECK(back == raw);
    // forced formats
    CHECK(PhysicalLayer::from_bytes(a, DumpFormat::Raw)->format() == DumpFormat::Raw);
    CHECK_THROWS_AS(PhysicalLayer::from_bytes(f.elf, DumpFormat::Avml), FormatError);
    CHECK_THROWS_AS(PhysicalLayer::from_bytes(f.elf, DumpFormat::Kdump), FormatError);
    CHECK(parse_dump_format("kdump") == DumpFormat::Kdump);
    CHECK(std::string(to_string(DumpFormat::Avml)) == "avml");
}

TEST_CASE("formats: snappy framing: CRC and reserved chunks") {
    std::vector<uint8_t> data(100000);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * i >> 3);
    std::vector<uint8_t> s;
    snappy_frame::encode(data, s);
    auto idx = snappy_frame::index(s, 0, data.size());
    REQUIRE(idx.complete);
    CHECK(idx.stream_bytes == s.size());
    REQUIRE(idx.chunks.size() == 2);   // 65536 + 34464
    std::vector<uint8_t> out(65536);
    CHECK(snappy_frame::decode(s, idx.chunks[0], out.data()) == nullptr);
    CHECK(std::memcmp(out.data(), data.data(), 65536) == 0);
    auto bad = s;
    bad[idx.chunks[1].offset - 4] ^= 1;   // its CRC
    auto bad_idx = snappy_frame::index(bad, 0, data.size());
    CHECK(std::string(snappy_frame::decode(bad, bad_idx.chunks[1], out.data())).find("CRC") != std::string::npos);
    bad = s;
    bad[10] = 0x03;   // first data chunk's type → reserved unskippable
    CHECK_THROWS_AS(snappy_frame::index(bad, 0, data.size()), FormatError);
    // cut in the middle: not complete, the whole first chunk kept
    auto cut = snappy_frame::index(std::span<const uint8_t>(s).first(s.size() - 10), 0, data.size());
    CHECK_FALSE(cut.complete);
    CHECK(cut.chunks.size() == 1);
    CHECK(snappy_frame::crc32c(reinterpret_cast<const uint8_t*>("123456789"), 9) == 0xe3069283u);
}

TEST_CASE("formats: truncated ELF, LiME, kdump and AVML are clipped with one warning; --strict refuses") {
    Fixture f;
    SUBCASE("ELF minus its last 4 KiB") {
        std::vector<uint8_t> cut(f.elf.begin(), f.elf.end() - 4096);
        auto p = PhysicalLayer::from_bytes(cut);
        REQUIRE(p->warnings().size() == 1);
        CHECK(p->warnings()[0].find("truncated ELF") != std::string::npos);
        CHECK(p->present_bytes() == f.phys->present_bytes() - 4096);
        CHECK(p->find(0x3ff000, 1) == nullptr);
        CHECK(p->find(0x3fe000, 4096) != nullptr);
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(cut, DumpFormat::Auto, true), FormatError);
        CHECK(PhysicalLayer::from_bytes(f.elf, DumpFormat::Auto, true)->warnings().empty());
    }
    SUBCASE("LiME minus one byte, and a cut trailing header") {
        auto lime = to_lime(f.mem.bytes, {0x200000});
        std::vector<uint8_t> cut(lime.begin(), lime.end() - 1);
        auto p = PhysicalLayer::from_bytes(cut);
        REQUIRE(p->warnings().size() == 1);
        CHECK(p->present_bytes() == f.mem.bytes.size() - 1);
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(cut, DumpFormat::Auto, true), FormatError);
        std::vector<uint8_t> header_cut(lime.begin(), lime.begin() + 32 + 0x200000 + 20);
        auto q = PhysicalLayer::from_bytes(header_cut);
        CHECK(q->present_bytes() == 0x200000);
        CHECK(q->warnings().size() == 1);
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(header_cut, DumpFormat::Auto, true), FormatError);
    }
    SUBCASE("kdump plain and flattened cut in the page data") {
        for (bool flat : {false, true}) {
            auto k = kdump_of(*f.phys, KdumpCompression::Zlib, flat);
            std::vector<uint8_t> cut(k.begin(), k.end() - 3000);
            auto p = PhysicalLayer::from_bytes(cut);
            REQUIRE(p->warnings().size() >= 1);
            CHECK(p->warnings().back().find("truncated") != std::string::npos);
            CHECK(p->present_bytes() < f.phys->present_bytes());
            CHECK(p->present_bytes() > f.phys->present_bytes() / 2);
            CHECK(p->cpus().size() == 1);
            CHECK_THROWS_AS(PhysicalLayer::from_bytes(cut, DumpFormat::Auto, true), FormatError);
        }
    }
    SUBCASE("AVML cut inside a stream") {
        auto a = avml_of(*f.phys);
        std::vector<uint8_t> cut(a.begin(), a.end() - 100);
        auto p = PhysicalLayer::from_bytes(cut);
        REQUIRE(p->warnings().size() == 1);
        CHECK(p->present_bytes() < f.phys->present_bytes());
        CHECK(p->present_bytes() >= 0x9f000);   // the first range is whole
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(cut, DumpFormat::Auto, true), FormatError);
    }
    SUBCASE("nothing left: the error says why") {
        auto k = kdump_of(*f.phys, KdumpCompression::Zlib, false);
        std::vector<uint8_t> head(k.begin(), k.begin() + 5 * 4096);
        try {
            PhysicalLayer::from_bytes(head);
            FAIL("expected an error");
        } catch (const FormatError& e) {
            CHECK(std::string(e.what()).find("truncated") != std::string::npos);
        }
    }
}

TEST_CASE("formats: QEMU migration streams and archives are refused by name") {
    std::vector<uint8_t> qevm(4096, 0);
    std::memcpy(qevm.data(), "QEVM\0\0\0\3", 8);
    std::string m = input_error([&] { PhysicalLayer::from_bytes(qevm); });
    CHECK(m.find("QEMU migration stream") != std::string::npos);
    CHECK(m.find("virsh dump --memory-only --format elf") != std::string::npos);
    CHECK(m.find("dump-guest-memory") != std::string::npos);
    std::vector<uint8_t> gz(4096, 0);
    gz[0] = 0x1f;
    gz[1] = 0x8b;
    CHECK(input_error([&] { PhysicalLayer::from_bytes(gz); }).find("gzip") != std::string::npos);
    std::vector<uint8_t> zst = {0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0};
    CHECK(input_error([&] { PhysicalLayer::from_bytes(zst); }).find("zstd") != std::string::npos);
    std::vector<uint8_t> tar(1024, 0);
    std::memcpy(tar.data() + 257, "ustar", 5);
    CHECK(input_error([&] { PhysicalLayer::from_bytes(tar); }).find("tar") != std::string::npos);
    CHECK(PhysicalLayer::from_bytes(gz, DumpFormat::Raw)->present_bytes() == 4096);   // forced raw reads it
}

TEST_CASE("formats: decompression bombs are refused with the reason") {
    // 4 MiB of one repeated non-zero byte: ~20 zlib bytes and a 24-byte descriptor per page, ~90×.
    std::vector<uint8_t> mem(4 << 20, 0x41);
    auto flat = PhysicalLayer::from_bytes(mem, DumpFormat::Raw);
    auto k = kdump_of(*flat, KdumpCompression::Zlib, false);
    REQUIRE(k.size() * 24 < mem.size());
    std::string m = input_error([&] { PhysicalLayer::from_bytes(k); });
    CHECK(m.find("decompression bomb") != std::string::npos);
    // The same size of memory that is mostly zero pages is fine: zero pages cost nothing.
    std::vector<uint8_t> sparse(4 << 20, 0);
    sparse[5000] = 1;
    auto s = kdump_of(*PhysicalLayer::from_bytes(sparse, DumpFormat::Raw), KdumpCompression::Zlib, false);
    CHECK(PhysicalLayer::from_bytes(s)->present_bytes() == sparse.size());
    // AVML: snappy chunks whose length preambles claim 64 KiB each from a few bytes.
    const uint64_t chunks = 2000, len = chunks * 65536, stream = 10 + 11 * chunks;
    std::vector<uint8_t> a(32 + stream + 8, 0);
    std::memcpy(a.data(), "AVML\2\0\0\0", 8);
    put_le(a, 16, 8, len - 1);
    const uint8_t id[] = {0xff, 6, 0, 0, 's', 'N', 'a', 'P', 'p', 'Y'};
    std::memcpy(a.data() + 32, id, sizeof id);
    for (uint64_t i = 0; i < chunks; ++i) {
        const uint8_t c[] = {0x00, 7, 0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x04};   // CRC, varint 65536, no body
        std::memcpy(a.data() + 42 + 11 * i, c, sizeof c);
    }
    put_le(a, 32 + stream, 8, stream);
    m = input_error([&] { PhysicalLayer::from_bytes(a); });
    CHECK(m.find("decompression bomb") != std::string::npos);
}

TEST_CASE("formats: kdump pages and AVML chunks that do not decompress read as absent with one warning; --strict refuses") {
    Fixture f;
    const uint64_t pfns[] = {0x10, 0x11, 0x30};   // two pages of the 0x10000 pattern, the 0x41 page
    const uint64_t K = 0xffff800000000000;          // direct map of the fixture
    for (auto c : {KdumpCompression::Zlib, KdumpCompression::Lzo, KdumpCompression::Snappy, KdumpCompression::Zstd}) {
        CAPTURE(int(c));
        auto k = kdump_of(*f.phys, c, false);
        // pfn 0x10: its data cut short; 0x11: bytes flipped; 0x30: claims one byte less than stored.
        for (int j = 0; j < 3; ++j) {
            const uint64_t d = kdump_desc_of(k, pfns[j]);
            const uint64_t off = read_le(k, d, 8), size = read_le(k, d + 8, 4);
            REQUIRE(read_le(k, d + 12, 4) != 0);   // stored compressed
            if (j == 0) put_le(k, d + 8, 4, size / 2);
            if (j == 1)
                for (uint64_t i = 0; i < size; ++i) k[off + i] ^= 0x5a;
            if (j == 2) put_le(k, d + 8, 4, size - 1);
        }
        auto p = PhysicalLayer::from_bytes(k);
        REQUIRE(p->warnings().size() == 1);
        const std::string& w = p->warnings()[0];
        CAPTURE(w);
        CHECK(w.find("kdump file: 3 pages do not decompress") != std::string::npos);
        CHECK(w.find(" bytes (pfns 0x10, 0x11, 0x30; pfn 0x10: ") != std::string::npos);   // three of three: not "first"
        CHECK(w.find("first") == std::string::npos);
        CHECK(w.find("read as absent") != std::string::npos);
        CHECK(p->present_bytes() == f.phys->present_bytes() - 3 * 4096);
        for (uint64_t pfn : pfns) CHECK(p->find(pfn * 4096, 1) == nullptr);
        // Everything else is there and the same.
        std::vector<uint8_t> a(4096), b(4096);
        for (uint64_t pa : {uint64_t{0x1000}, uint64_t{0x31000}, uint64_t{0x12000}}) {
            REQUIRE(p->read(pa, a));
            REQUIRE(f.phys->read(pa, b));
            CHECK(a == b);
        }
        // The graph records the page as absent (mapped by the direct map, not in the dump).
        auto t = TranslationLayer::detect(*p);
        MemoryGraph g = MemoryGraph::build(t);
        bool absent = false;
        for (const AbsentRun& r : g.absent()) absent |= r.vaddr <= K + 0x30000 && K + 0x30000 < r.vaddr + r.size;
        CHECK(absent);
        // It records the dump's own size (compressed), which the object reader compares with the
        // file on disk before reading fields; the decompressed image is larger.
        CHECK(p->dump_size() == k.size());
        CHECK(g.info().dump_bytes == k.size());
        CHECK(p->file_bytes().size() > k.size());
        // --strict refuses at the first page, naming it.
        try {
            PhysicalLayer::from_bytes(k, DumpFormat::Auto, true);
            FAIL("expected a FormatError");
        } catch (const FormatError& e) {
            CHECK(std::string(e.what()).find("page data of pfn 0x10") != std::string::npos);
        }
    }
    // AVML: a snappy chunk whose bytes are flipped (CRC-32C mismatch) reads as absent, 64 KiB.
    auto a = avml_of(*f.phys);
    REQUIRE((a.at(42) == 0x00 || a.at(42) == 0x01));   // the first data chunk, after the stream identifier
    a[42 + 4 + 4 + 10] ^= 0x5a;
    auto pa = PhysicalLayer::from_bytes(a);
    REQUIRE(pa->warnings().size() == 1);
    CAPTURE(pa->warnings()[0]);
    CHECK(pa->warnings()[0].find("AVML: 1 snappy chunk does not decode (0x10000 bytes") != std::string::npos);
    CHECK(pa->warnings()[0].find("bytes of memory; at physical 0x0,") != std::string::npos);   // one: not "first"
    CHECK(pa->present_bytes() == f.phys->present_bytes() - 0x10000);
    CHECK(pa->find(0, 1) == nullptr);
    CHECK(pa->find(0xffff, 1) == nullptr);
    CHECK(pa->find(0x10000, 0x1000) != nullptr);
    CHECK_THROWS_AS(PhysicalLayer::from_bytes(a, DumpFormat::Auto, true), FormatError);
    // A zlib stream with a bad header names the zlib error.
    auto k = kdump_of(*f.phys, KdumpCompression::Zlib, false);
    const uint64_t d = kdump_desc_of(k, 0x30);
    k[read_le(k, d, 8)] ^= 0xff;
    auto p = PhysicalLayer::from_bytes(k);
    REQUIRE(p->warnings().size() == 1);
    CHECK(p->warnings()[0].find("kdump file: 1 page does not decompress") != std::string::npos);
    CHECK(p->warnings()[0].find("pfn 0x30: zlib error Z_DATA_ERROR") != std::string::npos);
}

TEST_CASE("formats: thousands of PT_LOADs over the same bytes are resolved in linear time") {
    // One copy of 64 KiB of memory, 100000 program headers (5.6 MB) all pointing at it.
    Image mem(0x10000);
    mem.pattern(0, 0x10000, 3);
    auto base = to_elf(mem.bytes, {{0, 0x10000}}, {}, true);
    const uint64_t n = 100000, phsize = 56, phoff = base.size();
    std::vector<uint8_t> b = base;
    b.resize(phoff + n * phsize, 0);
    const uint64_t data_off = read_le(b, 64 + 8, 8);
    for (uint64_t i = 0; i < n; ++i) {
        const uint64_t at = phoff + i * phsize;
        put_le(b, at, 4, 1);
        put_le(b, at + 8, 8, data_off);
        put_le(b, at + 24, 8, 0);
        put_le(b, at + 32, 8, 0x10000);
        put_le(b, at + 40, 8, 0x10000);
    }
    put_le(b, 32, 8, phoff);
    put_le(b, 56, 2, 0xffff);   // PN_XNUM: the count in section header 0
    std::vector<uint8_t> sh(64, 0);
    put_le(sh, 44, 4, n);
    const uint64_t shoff = b.size();
    b.insert(b.end(), sh.begin(), sh.end());
    put_le(b, 40, 8, shoff);
    put_le(b, 58, 2, 64);
    put_le(b, 60, 2, 1);
    SUBCASE("same bytes at the same physical address: one run") {
        auto p = PhysicalLayer::from_bytes(b);
        REQUIRE(p->runs().size() == 1);
        CHECK(p->present_bytes() == 0x10000);
    }
    SUBCASE("same bytes at different physical addresses: refused") {
        for (uint64_t i = 0; i < n; ++i) put_le(b, phoff + i * phsize + 24, 8, i * 0x1000);
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(b), FormatError);
    }
}

// PhysicalLayer::stored_page_bytes: what a compressed file spends on its non-zero pages, at most
// kCountedPageBytes a page (the network work bound counts pages by it, detect.hpp counted_pages).
TEST_CASE("formats: stored page bytes — a kdump page's compressed size up to 1 KiB, shared data once, AVML chunks shared") {
    constexpr uint64_t KiB = PhysicalLayer::kCountedPageBytes;
    static_assert(KiB == 1024);
    // 64 pages: zeros but for two pages of random bytes (0x10, 0x11) and 16 pages of 0x41 (0x20–0x2f)
    std::vector<uint8_t> mem(64 * 4096, 0);
    uint32_t x = 777;
    for (uint64_t i = 0x10000; i < 0x12000; ++i) mem[i] = static_cast<uint8_t>((x = x * 1103515245 + 12345) >> 16);
    std::memset(mem.data() + 0x20000, 0x41, 16 * 4096);
    const auto raw = PhysicalLayer::from_bytes(mem, DumpFormat::Raw);
    CHECK_FALSE(raw->stored_page_bytes());   // raw, ELF, LiME store every page whole
    CHECK_FALSE(PhysicalLayer::from_bytes(to_elf(mem, {{0, mem.size()}}, {}, true))->stored_page_bytes());
    for (auto c : {KdumpCompression::Zlib, KdumpCompression::Zstd, KdumpCompression::None}) {
        CAPTURE(int(c));
        auto k = kdump_of(*raw, c, false);
        const auto p = PhysicalLayer::from_bytes(k);
        REQUIRE(p->stored_page_bytes());
        const uint64_t stored = *p->stored_page_bytes();
        // the random pages: 1 KiB each; the 0x41 pages a few bytes each compressed, 1 KiB stored whole
        uint64_t alike = 0;
        for (uint64_t pfn = 0x20; pfn < 0x30; ++pfn) alike += std::min<uint64_t>(KiB, read_le(k, kdump_desc_of(k, pfn) + 8, 4));
        CHECK(stored == 2 * KiB + alike);
        if (c == KdumpCompression::None) CHECK(alike == 16 * KiB);
        else CHECK(alike < 16 * 64);
        // pfn 0x11 pointed at pfn 0x10's data: one stored page, counted once
        const uint64_t d10 = kdump_desc_of(k, 0x10), d11 = kdump_desc_of(k, 0x11);
        auto k2 = k;
        for (int b = 0; b < 16; ++b) k2[d11 + b] = k2[d10 + b];   // offset, size, flags
        const auto shared = PhysicalLayer::from_bytes(k2);
        CHECK(shared->stored_page_bytes() == stored - KiB);
        std::vector<uint8_t> a(4096), b(4096);
        REQUIRE(shared->read(0x10000, a));
        REQUIRE(shared->read(0x11000, b));
        CHECK(a == b);
        // ... or at it 8 bytes on (attacker 80: uncompressed windows 8 bytes apart over one blob;
        // a zlib stream with a larger size likewise): the bytes both cover count once
        if (c == KdumpCompression::None) {
            put_le(k2, d11, 8, read_le(k, d10, 8) + 8);
            const auto shifted = PhysicalLayer::from_bytes(k2);
            REQUIRE(shifted->warnings().empty());
            CHECK(shifted->stored_page_bytes() == stored - KiB + 8);
        } else {   // pfn 0x21 given pfn 0x20's stream and 100 bytes more, which zlib never reads
            auto k3 = k;
            const uint64_t d20 = kdump_desc_of(k, 0x20), d21 = kdump_desc_of(k, 0x21);
            const uint64_t size20 = read_le(k, d20 + 8, 4), size21 = read_le(k, d21 + 8, 4);
            for (int b = 0; b < 16; ++b) k3[d21 + b] = k3[d20 + b];
            put_le(k3, d21 + 8, 4, size20 + 100);
            const auto longer = PhysicalLayer::from_bytes(k3);
            if (c == KdumpCompression::Zlib) REQUIRE(longer->warnings().empty());   // zlib stops at its stream's end
            if (longer->warnings().empty()) {   // (zstd refuses bytes past its frame: the page reads as absent)
                CHECK(*longer->stored_page_bytes() >= stored - size21);
                CHECK(*longer->stored_page_bytes() <= stored - size21 + 100);   // not size20 + 100 more
            }
        }
    }
    // AVML: a snappy chunk (64 KiB of memory) counts its compressed bytes, at most 1 KiB per non-zero
    // page in it: the random pages' chunk 2 KiB, the 0x41 pages' chunk what snappy makes of 64 KiB
    // alike (about 1/21), far below their 16 KiB.
    const auto a = PhysicalLayer::from_bytes(avml_of(*raw));
    REQUIRE(a->stored_page_bytes());
    CHECK(*a->stored_page_bytes() > 2 * KiB);
    CHECK(*a->stored_page_bytes() < 2 * KiB + 4 * KiB);
}

TEST_CASE("formats: a sparse raw file converts to kdump and AVML with its holes as zeros, page for page") {
    // tester 11: converting a sparse raw (4 GiB apparent, 256 MiB RAM) faulted in its apparent
    // size; the writers now never read a hole (graph/dump_writers.hpp). Same memory either way.
    const std::string path = (std::filesystem::temp_directory_path() / ("dm-sparse-" + std::to_string(::getpid()) + ".raw")).string();
    {
        std::FILE* f = std::fopen(path.c_str(), "wb");
        REQUIRE(f);
        std::vector<uint8_t> page(4096);
        for (uint64_t p : {0ull, 1ull, 2ull, 5000ull, 5001ull, 16383ull}) {   // 64 MiB apparent, 6 pages of data
            std::fill(page.begin(), page.end(), uint8_t(p * 7 + 1));
            std::fseek(f, long(p * 4096), SEEK_SET);
            std::fwrite(page.data(), 1, page.size(), f);
        }
        std::fclose(f);
    }
    auto raw = PhysicalLayer::open(path, DumpFormat::Raw);
    std::filesystem::remove(path);
    REQUIRE(raw->present_bytes() == uint64_t{64} << 20);
    uint64_t data_bytes = 0;
    for (const auto& r : raw->data_runs()) data_bytes += r.size;
    if (data_bytes == raw->present_bytes()) MESSAGE("the temporary file system reports no holes: only the round trip is checked");
    for (const auto& bytes : {kdump_of(*raw, KdumpCompression::Zlib, false), avml_of(*raw)}) {
        auto back = PhysicalLayer::from_bytes(bytes);
        CHECK(back->warnings().empty());
        check_same_memory(*raw, *back);
    }
}

TEST_CASE("formats: decoded images in a temporary file are file-backed, sparse and read-only after seal") {
    detail::DecodedImage img(8 << 20, 1 << 20, /*anonymous_max=*/0);
    CHECK(img.file_backed());
    std::vector<uint8_t> page(4096, 7), zero(4096, 0);
    CHECK(img.store(4096, page.data(), page.size()) == nullptr);
    CHECK(img.store(8192, zero.data(), zero.size()) == nullptr);   // zeros: nothing stored
    CHECK(img.stored_bytes() == 4096);
    img.seal();
    auto ext = img.data_extents();
    REQUIRE(ext.size() == 1);
    CHECK(ext[0] == std::pair<uint64_t, uint64_t>{4096, 8192});
    CHECK(img.data()[4096] == 7);
    detail::DecodedImage small(1 << 20, 4096);
    CHECK_FALSE(small.file_backed());
    CHECK(small.store(0, page.data(), 4096) == nullptr);
    CHECK(small.store(4096, page.data(), 4096) == detail::FirstFailure::kBomb);   // over budget
    // A store spanning pages leaves its zero pages out.
    std::vector<uint8_t> mixed(3 * 4096, 0);
    mixed[10] = 1;
    mixed[2 * 4096 + 5] = 1;
    detail::DecodedImage m(1 << 20, 1 << 20);
    CHECK(m.store(4096, mixed.data(), mixed.size()) == nullptr);
    CHECK(m.stored_bytes() == 2 * 4096);
    m.seal();
    CHECK(m.data_extents().size() == 2);
    CHECK(m.data()[4096 + 10] == 1);
    CHECK(m.data()[3 * 4096 + 5] == 1);
}

namespace {

// The FormatError a parse throws: {offset, message} (callers copy them to plain locals, not a
// structured binding, which clang 14 cannot capture in CAPTURE).
std::pair<uint64_t, std::string> format_error(const std::function<void()>& f) {
    try {
        f();
    } catch (const FormatError& e) {
        return {e.offset(), e.what()};
    }
    FAIL("expected FormatError");
    return {};
}

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }
bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("formats: a range ending beyond 2^52 or wrapping is refused even when not strict, naming it") {
    Fixture f;
    for (bool strict : {false, true}) {
        CAPTURE(strict);
        // LiME: one range at 0 whose e_addr lies near 2^64 (today's clipping would keep the bytes present).
        auto lime = to_lime(f.mem.bytes, {});
        for (uint64_t e : {uint64_t{0xfffffffffffff000}, uint64_t{1} << 52}) {
            put_le(lime, 16, 8, e);
            const auto err1 = format_error([&] { PhysicalLayer::from_bytes(lime, DumpFormat::Auto, strict); });
            const uint64_t at = err1.first;
            const std::string m = err1.second;
            CAPTURE(m);
            CHECK(at == 16);
            CHECK(has(m, ("e_addr " + hex(e)).c_str()));
            CHECK(has(m, "52-bit"));
        }
        put_le(lime, 16, 8, (uint64_t{1} << 52) - 1);   // the last byte below 2^52: only cut
        if (!strict) CHECK(PhysicalLayer::from_bytes(lime)->warnings().size() == 1);
        // ELF: the PT_LOAD at physical 0x100000 with p_memsz wrapping 2^64, then ending past 2^52.
        auto elf = f.elf;
        const uint64_t phoff = read_le(elf, 32, 8), ph = phoff + 2 * 56;   // PT_NOTE, PT_LOAD 0, PT_LOAD 1
        REQUIRE(read_le(elf, ph, 4) == 1);
        REQUIRE(read_le(elf, ph + 24, 8) == 0x100000);
        for (uint64_t memsz : {uint64_t{0xffffffffffff0000}, (uint64_t{1} << 52) - 0x100000 + 1}) {
            put_le(elf, ph + 40, 8, memsz);
            const auto err2 = format_error([&] { PhysicalLayer::from_bytes(elf, DumpFormat::Auto, strict); });
            const uint64_t at = err2.first;
            const std::string m = err2.second;
            CAPTURE(m);
            CHECK(at == ph);
            CHECK(has(m, ("p_paddr 0x100000 + p_memsz " + hex(memsz)).c_str()));
        }
        put_le(elf, ph + 40, 8, (uint64_t{1} << 52) - 0x100000);   // ends exactly at 2^52: a filtered tail
        CHECK(PhysicalLayer::from_bytes(elf, DumpFormat::Auto, strict)->present_bytes() == f.phys->present_bytes());
    }
}

TEST_CASE("formats: refusals name the field the format's spec names, and its value") {
    Fixture f;
    SUBCASE("kdump disk_dump_header block_size, sub_hdr_size, bitmap_blocks; page_desc size and flags") {
        const auto good = kdump_of(*f.phys, KdumpCompression::Zlib, false);
        auto k = good;
        put_le(k, 436, 4, 1);   // bitmap_blocks
        const auto err3 = format_error([&] { PhysicalLayer::from_bytes(k); });
        CHECK(err3.first == 436);
        CHECK(has(err3.second, "bitmap_blocks 1"));
        k = good;
        put_le(k, 432, 4, 0);   // sub_hdr_size
        CHECK(has(format_error([&] { PhysicalLayer::from_bytes(k); }).second, "sub_hdr_size 0"));
        k = good;
        put_le(k, 428, 4, 1000);   // block_size
        CHECK(has(format_error([&] { PhysicalLayer::from_bytes(k); }).second, "block_size 1000"));
        k = good;
        const uint64_t d = kdump_desc_of(k, 0x30);
        put_le(k, d + 8, 4, 5000);
        const auto err4 = format_error([&] { PhysicalLayer::from_bytes(k); });
        const uint64_t dat = err4.first;
        const std::string dm = err4.second;
        CHECK(dat == d + 8);
        CHECK(has(dm, "page_desc of pfn 0x30: size 5000"));
        k = good;
        put_le(k, d + 12, 4, 0x3);
        CHECK(has(format_error([&] { PhysicalLayer::from_bytes(k); }).second, "page_desc of pfn 0x30: flags 0x3"));
    }
    SUBCASE("ELF e_phnum = PN_XNUM without a section header table names e_shoff") {
        auto elf = to_elf(f.mem.bytes, {{0, 0x9f000}}, {}, true, true);
        REQUIRE(PhysicalLayer::from_bytes(elf)->present_bytes() == 0x9f000);
        put_le(elf, 40, 8, 0);   // e_shoff
        const auto err5 = format_error([&] { PhysicalLayer::from_bytes(elf); });
        const uint64_t at = err5.first;
        const std::string m = err5.second;
        CAPTURE(m);
        CHECK(at == 40);
        CHECK(has(m, "e_phnum is PN_XNUM"));
        CHECK(has(m, "e_shoff is 0"));
        elf = to_elf(f.mem.bytes, {{0, 0x9f000}}, {}, true, true);
        put_le(elf, 58, 2, 10);   // e_shentsize
        CHECK(has(format_error([&] { PhysicalLayer::from_bytes(elf); }).second, "e_shentsize 10"));
        elf = to_elf(f.mem.bytes, {{0, 0x9f000}}, {}, true);
        put_le(elf, 54, 2, 20);   // e_phentsize
        CHECK(has(format_error([&] { PhysicalLayer::from_bytes(elf); }).second, "e_phentsize 20"));
    }
    SUBCASE("AVML: an uncompressed snappy chunk's length, the compressed-size trailer") {
        const uint64_t len = 70000, range = 0x20000;   // 4 + 69996 bytes: more than 65536 in one chunk
        std::vector<uint8_t> a(32 + 10 + 4 + len + 8, 0);
        std::memcpy(a.data(), "AVML\2\0\0\0", 8);
        put_le(a, 16, 8, range - 1);
        const uint8_t id[] = {0xff, 6, 0, 0, 's', 'N', 'a', 'P', 'p', 'Y'};
        std::memcpy(a.data() + 32, id, sizeof id);
        a[42] = 0x01;   // uncompressed chunk
        put_le(a, 43, 3, len);
        const auto err6 = format_error([&] { PhysicalLayer::from_bytes(a); });
        const uint64_t at = err6.first;
        const std::string m = err6.second;
        CAPTURE(m);
        CHECK(at == 43);
        CHECK(has(m, "uncompressed snappy chunk length 70000"));
        // The first range's trailer: the u64 right after its stream that equals the stream's length.
        auto good = avml_of(*f.phys);
        REQUIRE(PhysicalLayer::from_bytes(good)->warnings().empty());
        uint64_t pos = 33;
        while (pos + 8 <= good.size() && read_le(good, pos, 8) != pos - 32) ++pos;
        REQUIRE(pos + 8 <= good.size());
        good[pos] ^= 1;
        CHECK(has(format_error([&] { PhysicalLayer::from_bytes(good); }).second, "compressed-size trailer"));
    }
}

// The tester's B5 (issue #11): errors say what is wrong with the file itself — not "--strict
// refuses" when --strict was not given, not a page descriptor for a header field — and lists
// shown whole are not called "first".
TEST_CASE("formats: errors name what is wrong with the file, by the header field's name") {
    Fixture f;
    const auto good = kdump_of(*f.phys, KdumpCompression::Zlib, false);
    SUBCASE("a sub_hdr_size under the notes cap that puts the bitmaps past the end: no memory, and why") {
        auto k = good;
        put_le(k, 432, 4, 9000);   // sub_hdr_size: 9000 blocks, 35 MiB (under 64 MiB of notes)
        const std::string m = format_error([&] { PhysicalLayer::from_bytes(k); }).second;
        CHECK(m == "no physical memory in the kdump file (expected at least one non-empty range); "
                   "truncated kdump file (" + hex(k.size()) + " bytes): no dumped page can be listed (the file ends at " +
                   hex(k.size()) + ", before the page bitmaps at offset 0x2329000 that disk_dump_header sub_hdr_size "
                   "9000 (blocks of 4096 bytes) places)");
        CHECK(!has(m, "strict"));
    }
    SUBCASE("an odd bitmap_blocks is refused as that header field, not through a page descriptor") {
        auto k = good;
        put_le(k, 436, 4, 3);   // bitmap_blocks: the fixture's 2, plus one
        const auto e = format_error([&] { PhysicalLayer::from_bytes(k); });
        CHECK(e.first == 436);
        const std::string m = e.second;
        CHECK(m == "at file offset 0x1b4: kdump disk_dump_header bitmap_blocks 3 (expected an even number: the two "
                   "page bitmaps are of one length, in whole blocks)");
    }
    SUBCASE("a list of three is said whole; past three, the first three and an ellipsis") {
        CHECK(sample_list("pfn", "pfns", {"0x10"}, 1) == "pfn 0x10");
        CHECK(sample_list("pfn", "pfns", {"0x10", "0x11", "0x30"}, 3) == "pfns 0x10, 0x11, 0x30");
        CHECK(sample_list("pfn", "pfns", {"0x10", "0x11", "0x30"}, 5) == "first pfns 0x10, 0x11, 0x30, …");
        CHECK(sample_list("paddr", "paddrs", {"0x3000"}, 2) == "first paddrs 0x3000, …");
    }
}

TEST_CASE("formats: hostile headers and chunks (the tester's attack 5) get one line naming the field or chunk") {
    Fixture f;
    SUBCASE("kdump: a huge sub_hdr_size or bitmap_blocks is a corrupt field, not a cut file") {
        const auto good = kdump_of(*f.phys, KdumpCompression::Zlib, false);
        auto k = good;
        put_le(k, 432, 4, 0x100000);   // sub_hdr_size
        const auto e1 = format_error([&] { PhysicalLayer::from_bytes(k); });
        CAPTURE(e1.second);
        CHECK(e1.first == 432);
        CHECK(has(e1.second, "sub_hdr_size 1048576 (blocks of 4096 bytes) puts the page bitmaps at offset 0x100001000, beyond the file's"));
        k = good;
        put_le(k, 436, 4, 0x100000);   // bitmap_blocks
        const auto e2 = format_error([&] { PhysicalLayer::from_bytes(k); });
        CAPTURE(e2.second);
        CHECK(e2.first == 436);
        CHECK(has(e2.second, "bitmap_blocks 1048576"));
        CHECK(has(e2.second, "max_mapnr 0x400 needs 2 blocks"));
        // A file genuinely cut before its bitmaps keeps saying so.
        std::vector<uint8_t> head(good.begin(), good.begin() + 4096 + 200);
        CHECK(has(format_error([&] { PhysicalLayer::from_bytes(head); }).second, "truncated"));
    }
    SUBCASE("kdump: a cut flattened file gives one warning, with the record that is cut") {
        auto k = kdump_of(*f.phys, KdumpCompression::Zlib, true);
        std::vector<uint8_t> cut(k.begin(), k.end() - 3000);
        auto p = PhysicalLayer::from_bytes(cut);
        REQUIRE(p->warnings().size() == 1);
        CAPTURE(p->warnings()[0]);
        CHECK(has(p->warnings()[0], "truncated flattened kdump file ("));
        CHECK(has(p->warnings()[0], "dumped pages have no data in the file (the record for plain offset"));
    }
    SUBCASE("AVML: a compressed chunk longer than 4 + 65536 is refused at that chunk") {
        auto a = avml_of(*f.phys);
        REQUIRE(a.at(42) == 0x00);   // the first data chunk, compressed (zero pages)
        put_le(a, 43, 3, 70000);
        const auto e = format_error([&] { PhysicalLayer::from_bytes(a); });
        CAPTURE(e.second);
        CHECK(e.first == 43);
        CHECK(has(e.second, "snappy compressed chunk length 70000 (at most 4 + 65536"));
    }
    SUBCASE("AVML: a compressed chunk whose length is too short is said to be cut") {
        auto a = avml_of(*f.phys);
        REQUIRE(a.at(42) == 0x00);
        const uint64_t len = read_le(a, 43, 3);
        REQUIRE(len > 20);
        put_le(a, 43, 3, len - 10);
        a[42 + 4 + len - 10] = 0x05;   // where the next header now starts: a reserved type
        const auto e = format_error([&] { PhysicalLayer::from_bytes(a); });
        CAPTURE(e.second);
        CHECK(e.first == 43);
        CHECK(has(e.second, "snappy compressed chunk at file offset 0x2a is cut"));
        CHECK(has(e.second, "reserved unskippable snappy chunk type 5 follows"));
    }
    SUBCASE("AVML --strict names the chunk that does not decode") {
        auto a = avml_of(*f.phys);
        a[42 + 4 + 4 + 10] ^= 0x5a;
        const auto e = format_error([&] { PhysicalLayer::from_bytes(a, DumpFormat::Auto, true); });
        CAPTURE(e.second);
        CHECK(e.first == 42);
        CHECK(has(e.second, "AVML snappy chunk at file offset 0x2a (physical 0x0-0xffff, in the range at physical 0x0)"));
    }
    SUBCASE("LiME: e_addr = 0 is named, not the next header's magic") {
        auto lime = to_lime(f.mem.bytes, {0x200000});
        put_le(lime, 16, 8, 0);   // e_addr of the first range
        const auto e = format_error([&] { PhysicalLayer::from_bytes(lime); });
        CAPTURE(e.second);
        CHECK(e.first == 16);
        CHECK(has(e.second, "LiME range header e_addr 0x0 (s_addr 0x0)"));
        CHECK(has(e.second, "a corrupt e_addr"));
    }
    SUBCASE("kdump: every page corrupt is said as pages that do not decompress, not a cut") {
        auto k = kdump_of(*f.phys, KdumpCompression::Zlib, false);
        std::set<uint64_t> flipped;   // zero pages share one stored page: flip each stored page once
        for (uint64_t pfn = 0; pfn < 0x400; ++pfn) {
            uint64_t d = 0;
            try {
                d = kdump_desc_of(k, pfn);
            } catch (const std::logic_error&) {
                continue;
            }
            if (read_le(k, d + 12, 4) == 0) continue;   // stored uncompressed
            if (flipped.insert(read_le(k, d, 8)).second) k[read_le(k, d, 8)] ^= 0xff;
        }
        auto p = PhysicalLayer::from_bytes(k);
        REQUIRE(p->warnings().size() == 1);
        CHECK(p->undecodable_bytes() > 0);
        CHECK(p->undecodable(0x1000));
        std::string m;
        try {
            TranslationLayer::detect(*p);
        } catch (const InputError& err) {
            m = err.what();
        }
        CAPTURE(m);
        CHECK(has(m, "page-table root 0x1000 (x64) is not in the dump (its page in the dump cannot be decoded)"));
        CHECK(has(m, "the dump lists cannot be decoded (corrupt or never written): the page tables may be among them"));
        CHECK(!has(m, "cut before the page tables"));
    }
}

// The tester's attack 8, F6: each fault of a kdump file is said as what it is — a corrupt field
// or descriptor, not a cut file or "no physical memory" — and formats are named as files.
TEST_CASE("formats: kdump faults are worded as what they are (tester 8, F6)") {
    Fixture f;
    const auto good = kdump_of(*f.phys, KdumpCompression::Zlib, false);
    const uint64_t pages = PhysicalLayer::from_bytes(good)->present_bytes() / 4096;
    SUBCASE("block_size 512 (kcorrupt.py bs512): that header field, not \"no physical memory\"") {
        auto k = good;
        put_le(k, 428, 4, 512);
        const auto e = format_error([&] { PhysicalLayer::from_bytes(k); });
        CAPTURE(e.second);
        CHECK(e.first == 428);
        CHECK(has(e.second, "kdump disk_dump_header block_size 512 (expected 4096, the x86 page size"));
        CHECK(!has(e.second, "no physical memory"));
    }
    SUBCASE("an unknown compression flag (kcorrupt.py flags): that page does not decompress, not a size error") {
        auto k = good;
        put_le(k, kdump_desc_of(k, 0x30) + 12, 4, 0x80);
        auto p = PhysicalLayer::from_bytes(k);
        REQUIRE(p->warnings().size() == 1);
        const std::string w = p->warnings()[0];
        CAPTURE(w);
        CHECK(has(w, "kdump file: 1 page does not decompress"));
        CHECK(has(w, "pfn 0x30, flags 0x80: unknown compression flags"));
        CHECK(!has(w, "uncompressed page"));
        CHECK(p->find(0x30000, 4096) == nullptr);
        CHECK(p->find(0x31000, 4096) != nullptr);
        CHECK(has(format_error([&] { PhysicalLayer::from_bytes(k, DumpFormat::Auto, true); }).second,
                  "page data of pfn 0x30: unknown compression flags"));
    }
    SUBCASE("descriptors of size 0 (kcorrupt.py size0): said as such, not a truncated file") {
        auto k = good;
        put_le(k, kdump_desc_of(k, 0x30) + 8, 4, 0);
        put_le(k, kdump_desc_of(k, 0x31) + 8, 4, 0);
        auto p = PhysicalLayer::from_bytes(k);
        REQUIRE(p->warnings().size() == 1);
        CHECK(p->warnings()[0] == "kdump file: 2 of " + std::to_string(pages) + " page descriptors have size 0 (pfns "
                                  "0x30, 0x31): pages makedumpfile never wrote, or corrupt descriptors; they read as "
                                  "absent (--strict refuses)");
        CHECK(p->present_bytes() == (pages - 2) * 4096);
        // Listed but not decodable, not cut off (tester 9: 1000 such pages at the end of the
        // file had the translation call the dump cut at the first of them).
        CHECK(p->undecodable(0x30000));
        CHECK(p->undecodable(0x31fff));
        CHECK(!p->undecodable(0x32000));
        CHECK(p->undecodable_bytes() == 2 * 4096);
        // All of them size 0: refused as a whole file, at no offset (tester 10: "at file offset
        // 0x0" pointed at the header, which is sound).
        const uint64_t descriptors = (1 + read_le(k, 432, 4) + read_le(k, 436, 4)) * read_le(k, 428, 4);   // as kdump_desc_of
        for (uint64_t i = 0; i < pages; ++i) put_le(k, descriptors + 24 * i + 8, 4, 0);
        const std::string m = format_error([&] { PhysicalLayer::from_bytes(k); }).second;
        CHECK(m.starts_with("no physical memory in the kdump file (expected at least one non-empty range); kdump file: " +
                            std::to_string(pages) + " of " + std::to_string(pages) + " page descriptors have size 0"));
    }
    SUBCASE("descriptors pointing outside the file (kcorrupt.py offneg, offhuge): corrupt, not a cut file") {
        for (uint64_t off : {~uint64_t{0}, uint64_t{1} << 62}) {
            CAPTURE(off);
            auto k = good;
            put_le(k, kdump_desc_of(k, 0x30), 8, off);
            auto p = PhysicalLayer::from_bytes(k);
            REQUIRE(p->warnings().size() == 1);
            const std::string w = p->warnings()[0];
            CAPTURE(w);
            CHECK(w.starts_with("kdump file: 1 of " + std::to_string(pages) + " page descriptors point outside the file"));
            CHECK(has(w, "pfn 0x30: offset " + hex(off)));
            CHECK(has(w, "corrupt descriptors, not a cut file; those pages read as absent (--strict refuses)"));
            CHECK(!has(w, "truncated"));
            CHECK(p->find(0x30000, 4096) == nullptr);
            CHECK(p->find(0x31000, 4096) != nullptr);
            CHECK(has(format_error([&] { PhysicalLayer::from_bytes(k, DumpFormat::Auto, true); }).second,
                      "corrupt descriptors"));
        }
        // A file really cut in its page data is still called truncated.
        std::vector<uint8_t> cut(good.begin(), good.end() - 3000);
        auto p = PhysicalLayer::from_bytes(cut);
        REQUIRE(p->warnings().size() == 1);
        CHECK(p->warnings()[0].starts_with("truncated kdump file (" + hex(cut.size()) + " bytes): "));
    }
    SUBCASE("notes too big to parse (note-huge) and notes past the end (vmci-huge): both skipped with a warning") {
        const uint64_t note_off = read_le(good, 4096 + 48, 8);
        auto k = good;
        put_le(k, 4096 + 56, 8, 4200);   // size_note: the notes run into the bitmaps
        auto p = PhysicalLayer::from_bytes(k);
        CHECK(p->cpus().empty());
        CHECK(p->present_bytes() == pages * 4096);
        REQUIRE(p->warnings().size() == 1);
        CAPTURE(p->warnings()[0]);
        CHECK(p->warnings()[0].starts_with("kdump file: the CPU notes (kdump_sub_header offset_note " + hex(note_off) +
                                           ", size_note 4200) do not parse ("));
        CHECK(has(p->warnings()[0], "they are skipped, so the page-table root is searched for"));
        CHECK_THROWS_AS(PhysicalLayer::from_bytes(k, DumpFormat::Auto, true), FormatError);
        k = good;
        put_le(k, 4096 + 48, 8, uint64_t{1} << 62);   // offset_note
        p = PhysicalLayer::from_bytes(k);
        CHECK(p->cpus().empty());
        REQUIRE(p->warnings().size() == 1);
        CAPTURE(p->warnings()[0]);
        CHECK(p->warnings()[0].starts_with("kdump file: the CPU notes (kdump_sub_header offset_note 0x4000000000000000"));
        CHECK(has(p->warnings()[0], "lie past the end of the file"));
        CHECK(!has(p->warnings()[0], "truncated"));
        // The good file's notes parse: one CPU.
        CHECK(PhysicalLayer::from_bytes(good)->cpus().size() == 1);
    }
    SUBCASE("formats are named as files: \"ELF core\", \"kdump file\", never \"elf dump\"") {
        auto elf = to_elf(f.mem.bytes, {}, {{0x80000011, 0x1000, 0x20, true}}, true);
        const std::string m = format_error([&] { PhysicalLayer::from_bytes(elf); }).second;
        CHECK(has(m, "no physical memory in the ELF core (expected at least one non-empty range)"));
        CHECK(!has(m, "elf dump"));
    }
}
