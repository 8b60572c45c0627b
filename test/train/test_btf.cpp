// BTF parser on hand-built blobs: types, struct members, bitfields, anonymous members, enums,
// and typed errors (never a crash) on truncated or inconsistent blobs.
#include "graph/layers.hpp"
#include "test/train/btf_builder.hpp"
#include "train/btf.hpp"

#include <doctest/doctest.h>

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

TEST_CASE("ELF section lookup and bzImage errors") {
    auto s = sample();
    // A minimal ELF64 with sections: null, .shstrtab, .BTF.
    std::vector<uint8_t> elf(64, 0);
    const char shstr[] = "\0.shstrtab\0.BTF\0";
    uint64_t shstr_off = elf.size();
    elf.insert(elf.end(), shstr, shstr + sizeof shstr);
    uint64_t btf_off = elf.size();
    elf.insert(elf.end(), s.blob.begin(), s.blob.end());
    while (elf.size() % 8) elf.push_back(0);
    uint64_t shoff = elf.size();
    elf.resize(shoff + 3 * 64, 0);
    auto put = [&](uint64_t off, uint64_t v, int n) { for (int i = 0; i < n; ++i) elf[off + i] = (v >> (8 * i)) & 0xff; };
    std::memcpy(elf.data(), "\x7f" "ELF", 4);
    elf[4] = 2;
    elf[5] = 1;
    put(0x28, shoff, 8);
    put(0x3a, 64, 2);
    put(0x3c, 3, 2);
    put(0x3e, 1, 2);
    put(shoff + 64 + 0, 1, 4);   // .shstrtab name
    put(shoff + 64 + 4, 3, 4);
    put(shoff + 64 + 0x18, shstr_off, 8);
    put(shoff + 64 + 0x20, sizeof shstr, 8);
    put(shoff + 128 + 0, 11, 4);   // .BTF name
    put(shoff + 128 + 4, 1, 4);
    put(shoff + 128 + 0x18, btf_off, 8);
    put(shoff + 128 + 0x20, s.blob.size(), 8);
    auto sec = elf_section(elf, ".BTF");
    REQUIRE(sec);
    CHECK(sec->size() == s.blob.size());
    CHECK(Btf::parse(*sec).find("node"));
    CHECK_FALSE(elf_section(elf, ".data"));
    put(shoff + 128 + 0x20, 1ull << 40, 8);   // section past the end
    CHECK_THROWS_AS(elf_section(elf, ".BTF"), FormatError);
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
