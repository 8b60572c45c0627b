// BTF parser on hand-built blobs: types, struct members, bitfields, anonymous members, enums,
// and typed errors (never a crash) on truncated or inconsistent blobs.
#include "graph/layers.hpp"
#include "test/train/btf_builder.hpp"
#include "train/btf.hpp"

#include <doctest/doctest.h>

#include <lz4.h>
#include <lzma.h>
#include <zstd.h>

using namespace deepmem;
using namespace deepmem::btf;
using deepmem::test::BtfBuilder;

namespace {

struct Sample {
    std::vector<uint8_t> blob;
    uint32_t int_id, long_id, ptr_id, flags_id, node_id, list_id, arr_id, td_id, enum_id;
};

// struct list_head { struct list_head *next, *prev; };
// struct flags { unsigned int a:3; unsigned int b:5; int c; };
// struct node  { int id; union { long word; struct flags f; }; struct list_head link; char tag[12]; };
// typedef struct node node_t;  enum color { RED = -1, GREEN = 7 };
Sample sample() {
    BtfBuilder b;
    Sample s{};
    s.int_id = b.int_type("int", 4, 32);
    uint32_t uint_id = b.int_type("unsigned int", 4, 32, false);
    s.long_id = b.int_type("long int", 8, 64);
    uint32_t char_id = b.int_type("char", 1, 8);
    s.list_id = b.next_id() + 1;   // ptr first, then the struct it points to
    s.ptr_id = b.ptr(s.list_id);
    CHECK(b.struct_("list_head", 16, {{"next", s.ptr_id, 0}, {"prev", s.ptr_id, 64}}) == s.list_id);
    s.flags_id = b.struct_("flags", 8, {{"a", uint_id, 0, 3}, {"b", uint_id, 3, 5}, {"c", s.int_id, 32}});
    uint32_t anon = b.union_("", 8, {{"word", s.long_id, 0}, {"f", s.flags_id, 0}});
    s.arr_id = b.array(char_id, s.int_id, 12);
    s.node_id = b.struct_("node", 48, {{"id", s.int_id, 0}, {"", anon, 64}, {"link", s.list_id, 128},
                                       {"tag", s.arr_id, 256}});
    s.td_id = b.typedef_("node_t", b.const_(s.node_id));
    s.enum_id = b.enum_("color", 4, {{"RED", -1}, {"GREEN", 7}});
    s.blob = b.blob();
    return s;
}

}  // namespace

TEST_CASE("types, sizes and lookup by name") {
    auto s = sample();
    Btf b = Btf::parse(s.blob);
    CHECK(b.type_count() == s.enum_id + 1);
    CHECK(b.pointer_size() == 8);
    REQUIRE(b.find("node"));
    CHECK(*b.find("node") == s.node_id);
    CHECK(b.find("node_t", Kind::Typedef) == s.td_id);
    CHECK_FALSE(b.find("node", Kind::Typedef));
    CHECK_FALSE(b.find("node", Kind::Union));
    CHECK_FALSE(b.find("missing"));
    CHECK(b.type(s.int_id).kind == Kind::Int);
    CHECK(b.type(s.int_id).int_bits == 32);
    CHECK(b.type(s.int_id).int_encoding == 1);
    CHECK(b.size_of(s.node_id) == 48);
    CHECK(b.size_of(s.td_id) == 48);   // through typedef and const
    CHECK(b.resolve(s.td_id) == s.node_id);
    CHECK(b.size_of(s.arr_id) == 12);
    CHECK(b.size_of(s.ptr_id) == 8);
    CHECK_THROWS_AS(b.type(b.type_count()), InputError);
}

TEST_CASE("members: nested paths, anonymous unions, bitfields") {
    auto s = sample();
    Btf b = Btf::parse(s.blob);
    auto link_prev = b.member(s.node_id, "link.prev");
    REQUIRE(link_prev);
    CHECK(link_prev->byte_offset() == 16 + 8);
    CHECK(link_prev->type == s.ptr_id);
    auto word = b.member(s.td_id, "word");   // inside the anonymous union, via the typedef
    REQUIRE(word);
    CHECK(word->byte_offset() == 8);
    auto bf = b.member(s.node_id, "f.b");
    REQUIRE(bf);
    CHECK(bf->bit_offset == 64 + 3);
    CHECK(bf->bitfield_size == 5);
    auto c = b.member(s.node_id, "f.c");
    REQUIRE(c);
    CHECK(c->bit_offset == 64 + 32);
    CHECK(c->bitfield_size == 0);
    CHECK(b.member(s.node_id, "tag")->byte_offset() == 32);
    CHECK_FALSE(b.member(s.node_id, "nope"));
    CHECK_FALSE(b.member(s.node_id, "link.nope"));
    CHECK_FALSE(b.member(s.node_id, "id.x"));   // int has no members
    CHECK_FALSE(b.member(s.node_id, ""));
    CHECK_FALSE(b.member(s.node_id, "link."));
}

TEST_CASE("enumerators") {
    auto s = sample();
    Btf b = Btf::parse(s.blob);
    CHECK(b.enumerator("RED") == -1);
    CHECK(b.enumerator("GREEN") == 7);
    CHECK_FALSE(b.enumerator("BLUE"));
    CHECK(b.type(s.enum_id).enumerators.size() == 2);
}

TEST_CASE("every truncation of a valid blob is a FormatError, never a crash") {
    auto s = sample();
    for (size_t n = 0; n < s.blob.size(); ++n) {
        std::vector<uint8_t> cut(s.blob.begin(), s.blob.begin() + n);
        // The header still claims the full lengths, so every cut must be caught.
        CHECK_THROWS_AS(Btf::parse(cut), FormatError);
    }
}

TEST_CASE("a name longer than 1024 bytes is refused (the kernel's check: KSYM_NAME_LEN), one of 1024 read") {
    for (size_t len : {size_t{1024}, size_t{1025}}) {
        CAPTURE(len);
        BtfBuilder b;
        b.int_type(std::string(len, 'x'), 4, 32);
        if (len == 1024) {
            const Btf parsed = Btf::parse(b.blob());
            CHECK(parsed.type(1).name == std::string(len, 'x'));
        } else {
            CHECK_THROWS_WITH_AS(Btf::parse(b.blob()), doctest::Contains("a name of at most 1024 bytes"), FormatError);
        }
    }
}

TEST_CASE("header errors carry the offending offset") {
    auto s = sample();
    auto bad = s.blob;
    bad[0] = 0x00;
    try {
        Btf::parse(bad);
        FAIL("accepted a bad magic");
    } catch (const FormatError& e) {
        CHECK(e.offset() == 0);
    }
    bad = s.blob;
    bad[2] = 2;   // version
    try {
        Btf::parse(bad);
        FAIL("accepted version 2");
    } catch (const FormatError& e) {
        CHECK(e.offset() == 2);
    }
    bad = s.blob;
    bad[0] = 0xEB;
    bad[1] = 0x9F;   // big-endian magic
    CHECK_THROWS_AS(Btf::parse(bad), FormatError);
    bad = s.blob;
    bad.back() = 'x';   // string section not NUL-terminated
    CHECK_THROWS_AS(Btf::parse(bad), FormatError);
}

TEST_CASE("inconsistent records are FormatErrors at the record") {
    SUBCASE("member type id out of range") {
        BtfBuilder b;
        uint32_t i = b.int_type("int", 4, 32);
        b.struct_("s", 4, {{"x", i + 10, 0}});
        try {
            Btf::parse(b.blob());
            FAIL("accepted a dangling member type");
        } catch (const FormatError& e) {
            CHECK(e.offset() == 24 + 16 + 12 + 4);   // header, int record, struct record, member.type
        }
    }
    SUBCASE("name offset outside the string section") {
        BtfBuilder b;
        b.int_type("int", 4, 32);
        auto blob = b.blob();
        blob[24] = 0xff;   // name_off of the first record
        CHECK_THROWS_AS(Btf::parse(blob), FormatError);
    }
    SUBCASE("unknown kind") {
        BtfBuilder b;
        b.record("x", 25, 0, false, 0);
        CHECK_THROWS_AS(Btf::parse(b.blob()), FormatError);
    }
    SUBCASE("int wider than its size") {
        BtfBuilder b;
        b.int_type("int", 2, 32);
        CHECK_THROWS_AS(Btf::parse(b.blob()), FormatError);
    }
    SUBCASE("vlen beyond the type section") {
        BtfBuilder b;
        b.record("s", 4, 1000, false, 8);
        CHECK_THROWS_AS(Btf::parse(b.blob()), FormatError);
    }
}

TEST_CASE("loops in type chains are reported, not followed") {
    BtfBuilder b;
    uint32_t a = b.typedef_("a", 2);
    uint32_t c = b.typedef_("b", 1);
    uint32_t arr = b.array(3, 1, 2);   // array of itself
    Btf btf = Btf::parse(b.blob());
    CHECK(a == 1);
    CHECK(c == 2);
    CHECK_THROWS_AS(btf.resolve(a), FormatError);
    CHECK_THROWS_AS(btf.size_of(a), FormatError);
    CHECK_THROWS_AS(btf.size_of(arr), FormatError);
    CHECK_THROWS_AS(btf.member(a, "x"), FormatError);
}

TEST_CASE("array size overflow is an error") {
    BtfBuilder b;
    uint32_t l = b.int_type("long int", 8, 64);
    uint32_t a1 = b.array(l, l, 0xffffffffu);
    uint32_t a2 = b.array(a1, l, 0xffffffffu);
    Btf btf = Btf::parse(b.blob());
    CHECK(btf.size_of(a1) == 8ull * 0xffffffffu);
    CHECK_THROWS_AS(btf.size_of(a2), FormatError);
}

namespace {
// A minimal little-endian ELF (32- or 64-bit) with sections: null, .shstrtab, .BTF = `payload`.
struct TinyElf {
    std::vector<uint8_t> bytes;
    uint64_t shoff = 0, ent = 0, f_size = 0;
    TinyElf(bool is64, const std::vector<uint8_t>& payload) {
        const uint64_t ehdr = is64 ? 64 : 52;
        ent = is64 ? 64 : 40;
        const uint64_t f_off = is64 ? 0x18 : 0x10;
        f_size = is64 ? 0x20 : 0x14;
        const unsigned w = is64 ? 8 : 4;
        bytes.assign(ehdr, 0);
        const char shstr[] = "\0.shstrtab\0.BTF\0";
        uint64_t shstr_off = bytes.size();
        bytes.insert(bytes.end(), shstr, shstr + sizeof shstr);
        uint64_t btf_off = bytes.size();
        bytes.insert(bytes.end(), payload.begin(), payload.end());
        while (bytes.size() % 8) bytes.push_back(0);
        shoff = bytes.size();
        bytes.resize(shoff + 3 * ent, 0);
        std::memcpy(bytes.data(), "\x7f" "ELF", 4);
        bytes[4] = is64 ? 2 : 1;
        bytes[5] = 1;
        const uint64_t e = is64 ? 0x3a : 0x2e;
        put(is64 ? 0x28 : 0x20, shoff, w);
        put(e, ent, 2);
        put(e + 2, 3, 2);
        put(e + 4, 1, 2);
        put(shoff + ent + 0, 1, 4);   // .shstrtab
        put(shoff + ent + 4, 3, 4);
        put(shoff + ent + f_off, shstr_off, w);
        put(shoff + ent + f_size, sizeof shstr, w);
        put(shoff + 2 * ent + 0, 11, 4);   // .BTF
        put(shoff + 2 * ent + 4, 1, 4);
        put(shoff + 2 * ent + f_off, btf_off, w);
        put(shoff + 2 * ent + f_size, payload.size(), w);
    }
    void put(uint64_t off, uint64_t v, unsigned n) {
        for (unsigned i = 0; i < n; ++i) bytes[off + i] = (v >> (8 * i)) & 0xff;
    }
};
}  // namespace

TEST_CASE("ELF section lookup and bzImage errors") {
    auto s = sample();
    for (bool is64 : {true, false}) {
        CAPTURE(is64);
        TinyElf elf(is64, s.blob);
        auto sec = elf_section(elf.bytes, ".BTF");
        REQUIRE(sec);
        CHECK(sec->size() == s.blob.size());
        CHECK(Btf::parse(*sec).find("node"));
        CHECK_FALSE(elf_section(elf.bytes, ".data"));
        elf.put(elf.shoff + 2 * elf.ent + elf.f_size, 0xfffffff0u, 4);   // section past the end
        CHECK_THROWS_AS(elf_section(elf.bytes, ".BTF"), FormatError);
        for (size_t n = 0; n < elf.bytes.size(); n += 7) {   // truncations: errors, never reads past the end
            std::vector<uint8_t> cut(elf.bytes.begin(), elf.bytes.begin() + static_cast<long>(n));
            try {
                (void)elf_section(cut, ".BTF");
            } catch (const FormatError&) {
            }
        }
    }
    CHECK_THROWS_AS(elf_section(std::vector<uint8_t>(10, 0), ".BTF"), FormatError);

    // A bzImage header whose payload is gzip: a clear InputError, not a crash.
    std::vector<uint8_t> bz(0x1000, 0);
    bz[0x1f1] = 1;
    std::memcpy(bz.data() + 0x202, "HdrS", 4);
    bz[0x206] = 0x0f;
    bz[0x207] = 0x02;
    uint64_t pm = 2 * 512;
    bz[0x248] = 0x10;   // payload_offset 0x10
    bz[0x24c] = 0x20;   // payload_length 0x20
    bz[pm + 0x10] = 0x1f;
    bz[pm + 0x11] = 0x8b;
    CHECK_THROWS_AS(decompress_bzimage(bz), InputError);
    bz[0x24d] = 0x10;   // length past the file
    CHECK_THROWS_AS(decompress_bzimage(bz), FormatError);
    CHECK_THROWS_AS(decompress_bzimage(std::vector<uint8_t>(100, 0)), InputError);
    // A truncated xz stream is a FormatError.
    std::vector<uint8_t> xz = {0xFD, '7', 'z', 'X', 'Z', 0x00, 0x00, 0x04, 0xE6, 0xD6};
    CHECK_THROWS_AS(decompress_bzimage(xz), FormatError);
}

TEST_CASE("linux banners") {
    std::string img = std::string("xx Linux version %s (%s)\n") + '\0' + "Linux version 6.1.0-test (me@host) # SMP\n" +
                      '\0' + "Linux version 6.1.0-test (me@host) #1 SMP\nrest";
    std::vector<uint8_t> v(img.begin(), img.end());
    auto b = find_linux_banners(v);
    REQUIRE(b.size() == 2);
    CHECK(b[0] == "Linux version 6.1.0-test (me@host) # SMP");
    CHECK(b[1] == "Linux version 6.1.0-test (me@host) #1 SMP");
    CHECK(find_linux_banners(std::vector<uint8_t>(5, 'x')).empty());
}

namespace {
// A bzImage (boot protocol 2.15 header) whose payload is `payload`.
std::vector<uint8_t> bzimage(const std::vector<uint8_t>& payload) {
    std::vector<uint8_t> bz(3 * 512 + 0x40, 0);
    bz[0x1f1] = 2;   // setup_sects: protected-mode code at 3 * 512
    std::memcpy(bz.data() + 0x202, "HdrS", 4);
    bz[0x206] = 0x0f;
    bz[0x207] = 0x02;
    const uint32_t off = 0x40, len = static_cast<uint32_t>(payload.size());
    std::memcpy(bz.data() + 0x248, &off, 4);
    std::memcpy(bz.data() + 0x24c, &len, 4);
    bz.insert(bz.end(), payload.begin(), payload.end());
    return bz;
}
std::vector<uint8_t> some_kernel() {   // compressible, but not trivially
    std::vector<uint8_t> v(300000);
    uint32_t x = 12345;
    for (size_t i = 0; i < v.size(); ++i) {
        x = x * 1103515245u + 12345u;
        v[i] = (i % 64 < 40) ? static_cast<uint8_t>(i / 64) : static_cast<uint8_t>(x >> 24);
    }
    return v;
}
// A damaged payload decodes to an error or to other bytes than `kernel`, never silently to the same.
bool corruption_detected(const std::vector<uint8_t>& payload, const std::vector<uint8_t>& kernel) {
    try {
        return decompress_bzimage(bzimage(payload)) != kernel;
    } catch (const FormatError&) {
        return true;
    }
}
void append_le32(std::vector<uint8_t>& v, uint32_t x) {
    for (int i = 0; i < 4; ++i) v.push_back((x >> (8 * i)) & 0xff);
}
}  // namespace

TEST_CASE("bzImage payloads: xz, lz4 legacy and zstd round trips, truncations are errors") {
    const auto kernel = some_kernel();
    SUBCASE("xz") {
        std::vector<uint8_t> xz(kernel.size() + 4096);
        size_t n = 0;
        REQUIRE(lzma_easy_buffer_encode(1, LZMA_CHECK_CRC32, nullptr, kernel.data(), kernel.size(), xz.data(), &n,
                                        xz.size()) == LZMA_OK);
        xz.resize(n);
        append_le32(xz, static_cast<uint32_t>(kernel.size()));   // size_append, ignored for xz
        CHECK(decompress_bzimage(bzimage(xz)) == kernel);
        std::vector<uint8_t> cut(xz.begin(), xz.begin() + static_cast<long>(xz.size() / 2));
        CHECK_THROWS_AS(decompress_bzimage(bzimage(cut)), FormatError);
    }
    SUBCASE("zstd (6.12 kernels)") {
        std::vector<uint8_t> zs(ZSTD_compressBound(kernel.size()));
        const size_t n = ZSTD_compress(zs.data(), zs.size(), kernel.data(), kernel.size(), 19);
        REQUIRE(!ZSTD_isError(n));
        zs.resize(n);
        append_le32(zs, static_cast<uint32_t>(kernel.size()));   // size_append after the frame
        CHECK(decompress_bzimage(bzimage(zs)) == kernel);
        for (size_t cut_at : {size_t{4}, size_t{20}, n / 2, n - 1}) {
            std::vector<uint8_t> cut(zs.begin(), zs.begin() + static_cast<long>(cut_at));
            CHECK_THROWS_AS(decompress_bzimage(bzimage(cut)), FormatError);
        }
        auto corrupt = zs;
        corrupt[n / 2] ^= 0xff;   // a checksum or format error, or different bytes, never a crash
        CHECK(corruption_detected(corrupt, kernel));
    }
    SUBCASE("lz4 legacy, two blocks") {
        std::vector<uint8_t> lz;
        append_le32(lz, 0x184C2102);
        for (size_t start : {size_t{0}, size_t{200000}}) {
            size_t len = std::min<size_t>(200000, kernel.size() - start);
            std::vector<char> block(LZ4_compressBound(static_cast<int>(len)));
            int n = LZ4_compress_default(reinterpret_cast<const char*>(kernel.data() + start), block.data(),
                                         static_cast<int>(len), static_cast<int>(block.size()));
            REQUIRE(n > 0);
            append_le32(lz, static_cast<uint32_t>(n));
            lz.insert(lz.end(), block.begin(), block.begin() + n);
        }
        auto with_size = lz;
        append_le32(with_size, static_cast<uint32_t>(kernel.size()));
        CHECK(decompress_bzimage(bzimage(with_size)) == kernel);
        CHECK(decompress_bzimage(bzimage(lz)) == kernel);   // no appended size
        auto wrong = lz;
        append_le32(wrong, static_cast<uint32_t>(kernel.size() + 1));
        CHECK_THROWS_AS(decompress_bzimage(bzimage(wrong)), FormatError);
        for (size_t n = 0; n + 4 < lz.size(); n += 997) {
            std::vector<uint8_t> cut(lz.begin(), lz.begin() + static_cast<long>(n));
            CHECK_THROWS_AS(decompress_bzimage(bzimage(cut)), FormatError);
        }
        auto corrupt = with_size;
        corrupt[100] ^= 0xff;   // inside the first block: an lz4 error or different bytes, never a crash
        CHECK(corruption_detected(corrupt, kernel));
    }
}
