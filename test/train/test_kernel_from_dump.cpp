// Types and symbols from a synthetic dump (train/kernel_from_dump.hpp): a hand-built BTF blob and
// kallsyms tables written here the way scripts/kallsyms.c lays them out (three layouts: 6.1
// upstream, 6.1 Debian / 6.2 with kallsyms_seqs_of_names before the token table, 6.4+ with the
// offsets after the token index), placed in the kernel image of x86-64 page tables; then what a
// corrupt, truncated or planted table does (refused with a reason, never followed).
#include "graph/layers.hpp"
#include "train/kernel_from_dump.hpp"

#include <doctest/doctest.h>

#include "btf_builder.hpp"
#include "test/graph/layer_images.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <map>

using namespace deepmem;
using deepmem::test::BtfBuilder;
using namespace deepmem::test_images;

namespace {

// 8 MiB of memory. PML4 0x1000 [511] → PDPT 0x2000 [510] → PD 0x3000: PD[0], PD[1] are 2 MiB pages
// at 0x200000 and 0x400000 (the kernel image, 0xffffffff80000000–0xffffffff803fffff); PML4[256] →
// PDPT 0x5000 [0]: a 1 GiB page at 0 (the direct map, 0xffff800000000000: sees everything).
constexpr uint64_t kImage = 0xffffffff80000000ull, kImagePhys = 0x200000, kDirect = 0xffff800000000000ull;
constexpr uint64_t kBtfAt = 0x50003;          // image offsets; BTF need not be aligned
constexpr uint64_t kInitTask = 0x80000, kBanner = 0x90000, kTables = 0x100000;
constexpr uint64_t kRodata = 0x50000, kRodataEnd = 0x280000, kEnd = 0x380000;   // __start_rodata, __end_rodata, _end
constexpr uint64_t kTaskPid = 0x10, kTaskComm = 0x40, kTaskLeader = 0x58, kTaskParent = 0x60;

Image page_tables() {
    Image m(0x800000);
    m.put64(0x1000 + 511 * 8, 0x2000 | P | RW);
    m.put64(0x2000 + 510 * 8, 0x3000 | P | RW);
    m.put64(0x3000, 0x200000 | P | RW | PS);
    m.put64(0x3000 + 8, 0x400000 | P | RW | PS);
    m.put64(0x1000 + 256 * 8, 0x5000 | P | RW);
    m.put64(0x5000, 0 | P | RW | PS);
    return m;
}

std::vector<uint8_t> kernel_btf() {
    BtfBuilder b;
    uint32_t i32 = b.int_type("int", 4, 32);
    b.int_type("long int", 8, 64);
    uint32_t ch = b.int_type("char", 1, 8);
    uint32_t vp = b.ptr(0);
    uint32_t list = b.struct_("list_head", 16, {{"next", vp, 0}, {"prev", vp, 64}});
    uint32_t comm = b.array(ch, i32, 16);
    b.struct_("task_struct", 0x100, {{"tasks", list, 0}, {"pid", i32, kTaskPid * 8}, {"tgid", i32, (kTaskPid + 4) * 8},
                                     {"comm", comm, kTaskComm * 8}, {"group_leader", vp, kTaskLeader * 8},
                                     {"real_parent", vp, kTaskParent * 8}});
    b.struct_("cred", 96, {{"usage", i32, 0}});
    b.struct_("mm_struct", 128, {{"pgd", vp, 0}});
    b.struct_("file", 232, {{"f_count", i32, 0}});
    return b.blob();
}

// ---- kallsyms tables, written as scripts/kallsyms.c writes them --------------------------------

struct Sym {
    uint64_t addr;
    char type;
    std::string name;
};

enum class Layout { Upstream61, Seqs62, After64 };

// 256 tokens: every printable character stands for itself; the other 161 codes are multi-character
// tokens (the compressor's substrings).
std::vector<std::string> tokens() {
    std::vector<std::string> t(256);
    const char* multi[] = {"sym_", "Tsym_", "init", "_task", "linux", "_banner", "per", "cpu"};
    unsigned k = 0;
    for (unsigned c = 0; c < 256; ++c) {
        if (c > 0x20 && c < 0x7f) t[c] = std::string(1, static_cast<char>(c));
        else if (k < std::size(multi)) t[c] = multi[k++];
        else t[c] = std::to_string(k++ % 100 + 100).substr(1);   // "00".."99"
    }
    return t;
}

std::vector<uint8_t> compress(const std::string& s, const std::vector<std::string>& tok) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i < s.size();) {
        unsigned best = static_cast<unsigned char>(s[i]);
        for (unsigned c = 0; c < 256; ++c)
            if (tok[c].size() > tok[best].size() && s.compare(i, tok[c].size(), tok[c]) == 0) best = c;
        out.push_back(static_cast<uint8_t>(best));
        i += tok[best].size();
    }
    return out;
}

struct Asm {
    std::vector<uint8_t> b;
    std::map<std::string, uint64_t> label;
    void align() {
        while (b.size() % 8) b.push_back(0);
    }
    void at(const std::string& l) {
        align();
        label[l] = b.size();
    }
    void u8(uint8_t v) { b.push_back(v); }
    void u16(uint16_t v) { u8(v & 0xff), u8(v >> 8); }
    void u32(uint32_t v) { for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i))); }
    void u64(uint64_t v) { for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i))); }
};

// The tables for `syms` (sorted by address; absolute per-CPU symbols first, below relative_base).
Asm kallsyms_tables(const std::vector<Sym>& syms, Layout layout, uint64_t relative_base) {
    const auto tok = tokens();
    Asm a;
    auto offsets = [&] {
        a.at("kallsyms_offsets");
        for (const Sym& s : syms)
            a.u32(static_cast<uint32_t>(s.addr < relative_base ? static_cast<int64_t>(s.addr)
                                                                 : static_cast<int64_t>(relative_base) - 1 -
                                                                       static_cast<int64_t>(s.addr)));
        a.at("kallsyms_relative_base");
        a.u64(relative_base);
    };
    auto seqs = [&] {
        std::vector<uint32_t> order(syms.size());
        for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) { return syms[x].name < syms[y].name; });
        a.at("kallsyms_seqs_of_names");
        for (uint32_t i : order) a.u8(static_cast<uint8_t>(i >> 16)), a.u8(static_cast<uint8_t>(i >> 8)), a.u8(static_cast<uint8_t>(i));
    };
    if (layout != Layout::After64) offsets();
    a.at("kallsyms_num_syms");
    a.u32(static_cast<uint32_t>(syms.size()));
    a.at("kallsyms_names");
    std::vector<uint32_t> markers;
    const uint64_t names = a.b.size();
    for (size_t i = 0; i < syms.size(); ++i) {
        if (i % 256 == 0) markers.push_back(static_cast<uint32_t>(a.b.size() - names));
        auto c = compress(std::string(1, syms[i].type) + syms[i].name, tok);
        if (c.size() <= 0x7f) {
            a.u8(static_cast<uint8_t>(c.size()));
        } else {
            a.u8(static_cast<uint8_t>((c.size() & 0x7f) | 0x80));
            a.u8(static_cast<uint8_t>(c.size() >> 7));
        }
        a.b.insert(a.b.end(), c.begin(), c.end());
    }
    a.at("kallsyms_markers");
    for (uint32_t m : markers) a.u32(m);
    if (layout == Layout::Seqs62) seqs();
    a.at("kallsyms_token_table");
    std::vector<uint16_t> index;
    const uint64_t table = a.b.size();
    for (const auto& t : tok) {
        index.push_back(static_cast<uint16_t>(a.b.size() - table));
        a.b.insert(a.b.end(), t.begin(), t.end());
        a.u8(0);
    }
    a.at("kallsyms_token_index");
    for (uint16_t i : index) a.u16(i);
    if (layout == Layout::After64) {
        offsets();
        seqs();
    }
    a.align();
    return a;
}

std::vector<Sym> symbols() {
    std::vector<Sym> s{{0, 'A', "fixed_percpu_data"}, {0x1000, 'A', "cpu_debug_store"}, {0x1040, 'A', "runqueues"}};
    s.push_back({kImage, 'T', "_text"});
    for (int i = 0; i < 700; ++i) {
        char n[32];
        std::snprintf(n, sizeof n, "sym_%04d", i);
        s.push_back({kImage + 0x1000 + 0x20 * static_cast<uint64_t>(i), i % 3 ? 't' : 'T', n});
    }
    s.push_back({kImage + kRodata, 'D', "__start_rodata"});
    s.push_back({kImage + kBtfAt, 'R', "__start_BTF"});
    s.push_back({kImage + kInitTask, 'D', "init_task"});
    s.push_back({kImage + kBanner, 'D', "linux_banner"});
    s.push_back({kImage + kBanner + 0x100, 'd', std::string(200, 'x')});   // a "big" symbol: 201 > 127 tokens
    s.push_back({kImage + kRodataEnd, 'D', "__end_rodata"});
    s.push_back({kImage + kTables + 0x200000, 'B', "__bss_stop"});
    s.push_back({kImage + kEnd, 'B', "_end"});
    return s;
}

struct Dump {
    Image mem = page_tables();
    std::unique_ptr<PhysicalLayer> phys;
    std::optional<TranslationLayer> tl;
    void put(uint64_t image_off, const std::vector<uint8_t>& bytes) {
        std::copy(bytes.begin(), bytes.end(), mem.bytes.begin() + static_cast<int64_t>(kImagePhys + image_off));
    }
    const TranslationLayer& layer() {
        phys = PhysicalLayer::from_bytes(mem.bytes, DumpFormat::Raw);
        tl.emplace(*phys, PagingMode::X86_64_4Level, 0x1000);
        return *tl;
    }
};

// A kernel image holding BTF, kallsyms tables (in `layout`), init_task and linux_banner.
Dump kernel_dump(Layout layout, bool with_btf = true, bool with_kallsyms = true) {
    Dump d;
    if (with_btf) d.put(kBtfAt, kernel_btf());
    std::vector<uint8_t> task(0x100, 0);
    std::memcpy(task.data() + kTaskComm, "swapper/0", 9);
    for (uint64_t self : {kTaskLeader, kTaskParent})   // (init/init_task.c: &init_task)
        for (int i = 0; i < 8; ++i) task[self + i] = static_cast<uint8_t>((kImage + kInitTask) >> (8 * i));
    d.put(kInitTask, task);
    const std::string banner = "Linux version 6.1.0-test (test@deepmem) #1 SMP\n";
    d.put(kBanner, std::vector<uint8_t>(banner.begin(), banner.end()));
    if (with_kallsyms) d.put(kTables, kallsyms_tables(symbols(), layout, kImage).b);
    return d;
}

}  // namespace

TEST_CASE("find_btf: the kernel image's BTF, byte for byte") {
    Dump d = kernel_dump(Layout::Upstream61);
    std::string why;
    auto b = find_btf(d.layer(), &why);
    REQUIRE_MESSAGE(b, why);
    CHECK(b->vaddr == kImage + kBtfAt);
    const auto blob = kernel_btf();
    CHECK(b->size == blob.size());
    CHECK(std::ranges::equal(b->btf.bytes(), blob));
    CHECK(b->btf.find("task_struct"));
}

TEST_CASE("find_kallsyms: every symbol, in order, from each table layout") {
    const auto expected = symbols();
    for (Layout layout : {Layout::Upstream61, Layout::Seqs62, Layout::After64}) {
        INFO("layout " << static_cast<int>(layout));
        Dump d = kernel_dump(layout);
        std::string why;
        auto k = find_kallsyms(d.layer(), &why);
        REQUIRE_MESSAGE(k, why);
        const Asm a = kallsyms_tables(expected, layout, kImage);
        CHECK(k->tables.num_syms == kImage + kTables + a.label.at("kallsyms_num_syms"));
        CHECK(k->tables.names == kImage + kTables + a.label.at("kallsyms_names"));
        CHECK(k->tables.markers == kImage + kTables + a.label.at("kallsyms_markers"));
        CHECK(k->tables.token_table == kImage + kTables + a.label.at("kallsyms_token_table"));
        CHECK(k->tables.offsets == kImage + kTables + a.label.at("kallsyms_offsets"));
        CHECK(k->tables.relative_base == kImage + kTables + a.label.at("kallsyms_relative_base"));
        CHECK(k->tables.absolute_percpu);
        const auto& got = k->symbols.symbols();
        REQUIRE(got.size() == expected.size());
        for (size_t i = 0; i < got.size(); ++i) {
            CHECK(got[i].address == expected[i].addr);
            CHECK(got[i].type == expected[i].type);
            CHECK(got[i].name == expected[i].name);
            CHECK(got[i].module.empty());
        }
        CHECK(k->symbols.address("init_task") == kImage + kInitTask);
    }
}

TEST_CASE("kernel_types_and_symbols: from the dump, and the user's files win") {
    Dump d = kernel_dump(Layout::After64);
    const auto r = kernel_types_and_symbols(d.layer());
    CHECK(r.btf);
    CHECK(r.symbols);
    CHECK(r.notes.empty());
    CHECK(r.btf_source.rfind("dump: .BTF at ", 0) == 0);
    CHECK(r.symbols_source.rfind("dump: kallsyms tables at ", 0) == 0);
    CHECK(r.require_btf("test").member(*r.btf->find("task_struct"), "comm")->byte_offset() == kTaskComm);

    // A kallsyms file given by the user is used instead of the dump's tables.
    const std::string path = "test_kernel_from_dump.kallsyms";
    write_file_atomically(path, "ffffffff80080000 D init_task\nffffffff80090000 D linux_banner\n");
    const auto u = kernel_types_and_symbols(*d.tl, std::nullopt, path);
    CHECK(u.symbols_source == path);
    CHECK(u.symbols->size() == 2);
    std::remove(path.c_str());

    // init_task without comm "swapper": the recovered symbols are not this kernel's.
    Dump bad = kernel_dump(Layout::After64);
    bad.put(kInitTask + kTaskComm, {'b', 'a', 'd', 0});
    const auto b = kernel_types_and_symbols(bad.layer());
    CHECK(b.btf);
    CHECK_FALSE(b.symbols);
    REQUIRE(b.notes.size() == 1);
    CHECK(b.notes[0].find("swapper") != std::string::npos);
    CHECK_THROWS_AS(b.require_symbols("labeling"), InputError);

    // The same comm overwritten (noise, an attacker's byte) in a kernel whose init_task has
    // group_leader and real_parent itself and a task list linking to another task and back: the
    // symbols are still this kernel's, kept with a note (pid, not a pointer, may be noise too).
    auto le = [](uint64_t v) {
        std::vector<uint8_t> b(8);
        for (int i = 0; i < 8; ++i) b[size_t(i)] = uint8_t(v >> (8 * i));
        return b;
    };
    const uint64_t init_tasks = kImage + kInitTask, other_tasks = kImage + kInitTask + 0x100;   // tasks at offset 0
    auto linked = [&](Dump& d) {
        for (auto [at, v] : std::vector<std::pair<uint64_t, uint64_t>>{
                 {kInitTask, other_tasks}, {kInitTask + 8, other_tasks}, {kInitTask + 0x100, init_tasks},
                 {kInitTask + 0x108, init_tasks}, {kInitTask + kTaskLeader, init_tasks}, {kInitTask + kTaskParent, init_tasks}})
            d.put(at, le(v));
    };
    Dump noised = kernel_dump(Layout::After64);
    noised.put(kInitTask + kTaskComm, {'b', 'a', 'd', 0});
    linked(noised);
    noised.put(kInitTask + kTaskPid, {7, 0, 0, 0});
    const auto n = kernel_types_and_symbols(noised.layer());
    CHECK(n.symbols);
    REQUIRE(n.notes.size() == 1);
    CHECK(n.notes[0].find("symbols kept") != std::string::npos);
    // Each of the fields alone wrong: dropped. (Another boot's symbols name an address that is some
    // other object: a list node there links back, but its pid, leader and parent are not its own.)
    for (auto [at, v] : std::vector<std::pair<uint64_t, uint64_t>>{{kInitTask + 0x108, other_tasks},
                                                                    {kInitTask + kTaskLeader, other_tasks},
                                                                    {kInitTask + kTaskParent, other_tasks}}) {
        Dump wrong = kernel_dump(Layout::After64);
        wrong.put(kInitTask + kTaskComm, {'b', 'a', 'd', 0});
        linked(wrong);
        wrong.put(at, le(v));
        const auto w = kernel_types_and_symbols(wrong.layer());
        CHECK_FALSE(w.symbols);
        REQUIRE(w.notes.size() == 1);
        CHECK(w.notes[0].find("nor group_leader, real_parent and a task list pointing back") != std::string::npos);
    }
    // comm "swapper" but group_leader or real_parent not itself (attacker 110: init_task moved 104 bytes back,
    // "swapper" written at the moved comm, 450 tasks HIDDEN), or its task list empty or not linking back
    // (attacker 111 wrote the two pointers too): dropped. The kernel's, linked: kept; a neighbour not linking
    // back (a smeared capture's) is the lists' concern, not the symbols': kept.
    Dump own = kernel_dump(Layout::After64);
    linked(own);
    CHECK(kernel_types_and_symbols(own.layer()).symbols);
    own.put(kInitTask + 0x108, le(other_tasks));
    CHECK(kernel_types_and_symbols(own.layer()).symbols);
    for (auto [at, v, said] : std::vector<std::tuple<uint64_t, uint64_t, std::string>>{
             {kInitTask + kTaskLeader, other_tasks, "no group_leader pointing at itself"},
             {kInitTask + kTaskParent, other_tasks, "no real_parent pointing at itself"},
             {kInitTask, init_tasks, "no task list with other tasks on it"}}) {
        CAPTURE(said);
        Dump moved = kernel_dump(Layout::After64);
        linked(moved);
        moved.put(at, le(v));
        if (at == kInitTask) moved.put(kInitTask + 8, le(init_tasks));   // next and prev itself: empty
        const auto m = kernel_types_and_symbols(moved.layer());
        CHECK_FALSE(m.symbols);
        REQUIRE(m.notes.size() == 1);
        CHECK(m.notes[0].find("has comm 'swapper' but " + said) != std::string::npos);
    }
}

TEST_CASE("no BTF or kallsyms in the image: nullopt with a reason; outside the image: ignored") {
    Dump d = kernel_dump(Layout::Upstream61, false, false);
    // A valid BTF and valid tables planted in memory only the direct map sees (physical 0x700000).
    const auto blob = kernel_btf();
    std::copy(blob.begin(), blob.end(), d.mem.bytes.begin() + 0x700000);
    const auto tables = kallsyms_tables(symbols(), Layout::Upstream61, kImage).b;
    std::copy(tables.begin(), tables.end(), d.mem.bytes.begin() + 0x600000);
    const TranslationLayer& tl = d.layer();
    CHECK(tl.translate(kDirect + 0x700000) == 0x700000u);
    std::string why;
    CHECK_FALSE(find_btf(tl, &why));
    CHECK(why.find("no BTF header") != std::string::npos);
    CHECK_FALSE(find_kallsyms(tl, &why));
    CHECK(why.find("kallsyms_token") != std::string::npos);
    const auto r = kernel_types_and_symbols(tl);
    CHECK_FALSE(r.btf);
    CHECK_FALSE(r.symbols);
    CHECK(r.notes.size() == 2);
    CHECK_THROWS_WITH_AS(r.require_btf("labeling"), doctest::Contains("no types"), InputError);
}

TEST_CASE("corrupt tables are refused with a reason") {
    const Asm a = kallsyms_tables(symbols(), Layout::Upstream61, kImage);
    auto with = [&](auto&& corrupt) {
        Dump d = kernel_dump(Layout::Upstream61);
        corrupt(d);
        std::string why;
        auto k = find_kallsyms(d.layer(), &why);
        return std::pair{k.has_value(), why};
    };
    SUBCASE("a marker that disagrees with the names") {
        auto [found, why] = with([&](Dump& d) { d.put(kTables + a.label.at("kallsyms_markers") + 4, {1, 0, 0, 0}); });
        CHECK_FALSE(found);
        CHECK(!why.empty());
    }
    SUBCASE("a name running past the stream") {
        auto [found, why] = with([&](Dump& d) { d.put(kTables + a.label.at("kallsyms_names"), {0x7f}); });
        CHECK_FALSE(found);
        CHECK(!why.empty());
    }
    SUBCASE("a last marker past what its names can hold (attacker 108: 0xffffffff, 4 GiB made per candidate)") {
        const uint64_t m = (symbols().size() + 255) / 256;
        auto [found, why] = with([&](Dump& d) { d.put(kTables + a.label.at("kallsyms_markers") + 4 * (m - 1), {0xff, 0xff, 0xff, 0xff}); });
        CHECK_FALSE(found);
        CHECK(why.find("no kallsyms_num_syms/kallsyms_names before them") != std::string::npos);
    }
    SUBCASE("offsets out of order") {
        auto [found, why] = with([&](Dump& d) { d.put(kTables + a.label.at("kallsyms_offsets") + 4 * 100, {0, 0, 0, 0x80}); });
        CHECK_FALSE(found);
        CHECK(why.find("offsets") != std::string::npos);
    }
    SUBCASE("linux_banner not a banner") {
        auto [found, why] = with([&](Dump& d) { d.put(kBanner, {'X'}); });
        CHECK_FALSE(found);
        CHECK(why.find("linux_banner") != std::string::npos);
    }
    SUBCASE("a BTF whose type section runs past the blob") {
        Dump d = kernel_dump(Layout::Upstream61);
        auto blob = kernel_btf();
        blob[24 + 7] = 0x1f;   // the first type's kind becomes 31: Btf::parse refuses it
        d.put(kBtfAt, blob);
        std::string why;
        CHECK_FALSE(find_btf(d.layer(), &why));
        CHECK(why.find("rejected") != std::string::npos);
    }
    SUBCASE("a BTF that describes no kernel") {
        Dump d = kernel_dump(Layout::Upstream61, false);
        BtfBuilder b;
        b.int_type("int", 4, 32);
        d.put(kBtfAt, b.blob());
        std::string why;
        CHECK_FALSE(find_btf(d.layer(), &why));
        CHECK(why.find("no kernel's") != std::string::npos);
    }
}

TEST_CASE("kernel_types_and_symbols: the BTF at the symbols' __start_BTF wins over a copy before it; another one taken is said") {
    auto disagree = [](const KernelTypesAndSymbols& r) {
        return std::any_of(r.notes.begin(), r.notes.end(), [](const std::string& n) { return n.starts_with(kKernelDataDisagree); });
    };
    Dump d = kernel_dump(Layout::Upstream61);
    d.put(0x1000, kernel_btf());   // a copy mapped below the kernel's (attacker 108's, with offsets changed)
    const auto r = kernel_types_and_symbols(d.layer());
    REQUIRE(r.btf);
    CHECK(r.btf_source.find(hex(kImage + kBtfAt)) != std::string::npos);
    CHECK_FALSE(disagree(r));
    Dump e = kernel_dump(Layout::Upstream61);
    e.put(0x1000, kernel_btf());
    e.put(kBtfAt, {0, 0, 0, 0});   // the kernel's own damaged: the copy is taken, and that is said
    const auto w = kernel_types_and_symbols(e.layer());
    REQUIRE(w.btf);
    CHECK(w.btf_source.find(hex(kImage + 0x1000)) != std::string::npos);
    CHECK(disagree(w));
}

TEST_CASE("kallsyms: a copy outside the read-only data its symbols name is passed over for the kernel's own, and said; "
          "taken only when the kernel's own is gone, as a disagreement (attacker 108 M5)") {
    auto with = [](const KernelTypesAndSymbols& r, std::string_view prefix) {
        return std::count_if(r.notes.begin(), r.notes.end(), [&](const std::string& n) { return n.starts_with(prefix); });
    };
    // The kernel's tables copied below its read-only data (image offset 0x10000, inside _text … _end), with
    // init_task moved by 8 bytes: the search meets the copy first.
    auto copy_syms = symbols();
    for (Sym& s : copy_syms)
        if (s.name == "init_task") s.addr += 8;
    const Asm copy = kallsyms_tables(copy_syms, Layout::Upstream61, kImage);
    const uint64_t copy_at = 0x10000, copy_num_syms = kImage + copy_at + copy.label.at("kallsyms_num_syms");
    const Asm own = kallsyms_tables(symbols(), Layout::Upstream61, kImage);
    REQUIRE(kRodata <= kTables);
    REQUIRE(kTables + own.b.size() <= kRodataEnd);
    REQUIRE(copy_at + copy.b.size() <= kRodata);
    std::string why;
    SUBCASE("the kernel's own alone: inside, nothing passed over, nothing said") {
        Dump d = kernel_dump(Layout::Upstream61);
        auto k = find_kallsyms(d.layer(), &why);
        REQUIRE_MESSAGE(k, why);
        CHECK(k->in_own_rodata);
        CHECK(k->passed_over.empty());
        const auto r = kernel_types_and_symbols(d.layer());
        CHECK(with(r, kKernelDataPlanted) == 0);
        CHECK(with(r, kKernelDataDisagree) == 0);
    }
    SUBCASE("the copy first: passed over, the kernel's own taken, the copy said as planted, no disagreement") {
        Dump d = kernel_dump(Layout::Upstream61);
        d.put(copy_at, copy.b);
        auto k = find_kallsyms(d.layer(), &why);
        REQUIRE_MESSAGE(k, why);
        CHECK(k->in_own_rodata);
        CHECK(k->tables.num_syms == kImage + kTables + own.label.at("kallsyms_num_syms"));
        CHECK(k->passed_over == std::vector<uint64_t>{copy_num_syms});
        CHECK(k->symbols.address("init_task") == kImage + kInitTask);
        const auto r = kernel_types_and_symbols(d.layer());
        REQUIRE(r.symbols);
        CHECK(r.symbols->address("init_task") == kImage + kInitTask);
        REQUIRE(with(r, kKernelDataPlanted) == 1);
        CHECK(with(r, kKernelDataDisagree) == 0);
        const auto note = *std::find_if(r.notes.begin(), r.notes.end(), [](const std::string& n) { return n.starts_with(kKernelDataPlanted); });
        CHECK(note.find(hex(copy_num_syms)) != std::string::npos);
    }
    SUBCASE("the kernel's own gone (its token index zeroed): the copy taken, said as a disagreement") {
        Dump d = kernel_dump(Layout::Upstream61);
        d.put(copy_at, copy.b);
        d.put(kTables + own.label.at("kallsyms_token_index"), std::vector<uint8_t>(512, 0));
        auto k = find_kallsyms(d.layer(), &why);
        REQUIRE_MESSAGE(k, why);
        CHECK_FALSE(k->in_own_rodata);
        CHECK(k->tables.num_syms == copy_num_syms);
        CHECK(k->passed_over.empty());
        const auto r = kernel_types_and_symbols(d.layer());
        CHECK(with(r, kKernelDataDisagree) == 1);
        CHECK(with(r, kKernelDataPlanted) == 0);
    }
    SUBCASE("the copy, then 64 token-index look-alikes: the bound reached, the kernel's own still followed inside the "
            "read-only data the copy names (attacker 109: 64 copies)") {
        std::vector<uint8_t> index(512);   // shaped as kallsyms_token_index (0, 2, 4, …), no token table before it
        for (unsigned i = 0; i < 256; ++i) index[2 * i] = uint8_t(2 * i), index[2 * i + 1] = uint8_t((2 * i) >> 8);
        Dump d = kernel_dump(Layout::Upstream61);
        d.put(copy_at, copy.b);
        REQUIRE(copy_at + copy.b.size() <= 0x12000);
        for (unsigned k = 0; k < 64; ++k) d.put(0x12000 + 0x400 * k, index);
        auto k = find_kallsyms(d.layer(), &why);
        REQUIRE_MESSAGE(k, why);
        CHECK(k->in_own_rodata);
        CHECK(k->passed_over == std::vector<uint64_t>{copy_num_syms});
        CHECK(k->symbols.address("init_task") == kImage + kInitTask);
        // the copy's __start_rodata renamed (attacker 112, one byte a copy): its [_text, _end) instead
        auto renamed = copy_syms;
        std::erase_if(renamed, [](const Sym& s) { return s.name == "__start_rodata"; });
        const Asm bare = kallsyms_tables(renamed, Layout::Upstream61, kImage);
        REQUIRE(copy_at + bare.b.size() <= 0x12000);
        Dump d2 = kernel_dump(Layout::Upstream61);
        d2.put(copy_at, bare.b);
        for (unsigned i = 0; i < 64; ++i) d2.put(0x12000 + 0x400 * i, index);
        auto k2 = find_kallsyms(d2.layer(), &why);
        REQUIRE_MESSAGE(k2, why);
        CHECK(k2->in_own_rodata);
        CHECK(k2->symbols.address("init_task") == kImage + kInitTask);
    }
    SUBCASE("a set whose symbols lack _text, _end, __start_rodata or __end_rodata is never inside (attacker 109: one "
            "byte of a name changed)") {
        for (const char* missing : {"_text", "_end", "__start_rodata", "__end_rodata"}) {
            CAPTURE(missing);
            auto bare = symbols();
            std::erase_if(bare, [&](const Sym& s) { return s.name == missing; });
            Dump d = kernel_dump(Layout::Upstream61, true, false);
            d.put(kTables, kallsyms_tables(bare, Layout::Upstream61, kImage).b);
            auto k = find_kallsyms(d.layer(), &why);
            REQUIRE_MESSAGE(k, why);
            CHECK_FALSE(k->in_own_rodata);
        }
    }
}

TEST_CASE("the searches are bounded: BTF blobs parsed, kallsyms_token_index candidates followed (attacker 107)") {
    // A BTF that names everything describes_linux looks for, as ints: it passes the names check, is parsed,
    // and is no kernel's.
    BtfBuilder decoy;
    for (const char* name : {"task_struct", "pid", "tgid", "comm", "tasks", "list_head", "next", "prev", "cred", "mm_struct", "file"})
        decoy.int_type(name, 4, 32);
    const std::vector<uint8_t> blob = decoy.blob();
    // 512 bytes shaped as kallsyms_token_index (0, 2, 4, …) with no token table before it
    std::vector<uint8_t> index(512);
    for (unsigned i = 0; i < 256; ++i) index[2 * i] = uint8_t(2 * i), index[2 * i + 1] = uint8_t((2 * i) >> 8);
    std::string why;
    // `bound` decoys (`bytes`, every `step` bytes from image offset `at`) before the kernel's own: with one
    // fewer the kernel's is found; with `bound` the search ends at its bound and `said` says so
    auto bounded = [&](unsigned bound, const std::vector<uint8_t>& bytes, uint64_t at, uint64_t step, auto&& search,
                       const std::string& said) {
        for (unsigned n : {bound - 1, bound}) {
            Dump d = kernel_dump(Layout::Upstream61);
            for (unsigned k = 0; k < n; ++k) d.put(at + step * k, bytes);
            CAPTURE(n);
            CHECK(search(d.layer()) == (n < bound));
            if (n == bound) CHECK(why.find(said) != std::string::npos);
        }
    };
    SUBCASE("15 decoy BTFs before the kernel's: all parsed, the kernel's (the 16th) found; 16: the bound, none") {
        bounded(16, blob, 0x1000, 0x1000, [&](const TranslationLayer& tl) { return find_btf(tl, &why).has_value(); },
                "none a kernel's before the search's bound (16 parsed");
    }
    SUBCASE("blobs without a kernel's names are not parsed and do not count as parsed: 20 before the kernel's") {
        Dump d = kernel_dump(Layout::Upstream61);
        BtfBuilder b;
        b.int_type("task_struct", 4, 32);
        for (unsigned k = 0; k < 20; ++k) d.put(0x1000 + 0x1000 * k, b.blob());
        CHECK(find_btf(d.layer(), &why));
    }
    SUBCASE("a blob without a kernel's names is not parsed: said so") {
        Dump d = kernel_dump(Layout::Upstream61, false);
        BtfBuilder b;
        b.int_type("task_struct", 4, 32);
        d.put(kBtfAt, b.blob());
        CHECK_FALSE(find_btf(d.layer(), &why));
        CHECK(why.find("no name pid in its strings") != std::string::npos);
    }
    SUBCASE("63 token-index look-alikes before the tables: the kernel's (the 64th) found; 64: the bound, none") {
        bounded(64, index, 0x12000, 0x400, [&](const TranslationLayer& tl) { return find_kallsyms(tl, &why).has_value(); },
                "more than 64 kallsyms_token_index-like tables");
    }
}

TEST_CASE("the searches call their interrupt before each candidate and per MiB, and stop where it throws") {
    struct Stop {};
    Dump d = kernel_dump(Layout::Upstream61);
    const TranslationLayer& tl = d.layer();
    unsigned calls = 0;
    const InterruptFn count = [&] { ++calls; };
    std::string why;
    REQUIRE(find_btf(tl, &why, count));   // found: the candidate's call, and one per MiB before it
    CHECK(calls == 1 + kBtfAt / (1u << 20));
    calls = 0;
    REQUIRE(find_kallsyms(tl, &why, count));
    CHECK(calls >= 1 + kTables / (1u << 20));
    // a throw stops each search, and kernel_types_and_symbols passes it on
    const InterruptFn stop = [] { throw Stop{}; };
    CHECK_THROWS_AS(find_btf(tl, &why, stop), Stop);
    CHECK_THROWS_AS(find_kallsyms(tl, &why, stop), Stop);
    CHECK_THROWS_AS(kernel_types_and_symbols(tl, {}, {}, {}, stop), Stop);
    unsigned left = 1;   // the BTF's candidate passes, the kallsyms search is stopped
    const InterruptFn once = [&] {
        if (left-- == 0) throw Stop{};
    };
    Dump near = kernel_dump(Layout::Upstream61);
    CHECK_THROWS_AS(kernel_types_and_symbols(near.layer(), {}, {}, {}, once), Stop);
}

TEST_CASE("dump_dir_kernel_files: vmlinux with System.map when there, else vmlinuz alone") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("dm-dump-dir-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    auto touch = [&](const char* name) { std::fclose(std::fopen((dir / name).string().c_str(), "w")); };
    const KernelFiles none = dump_dir_kernel_files(dir.string());   // dm-attack then reads the dump's own
    CHECK((!none.kernel && !none.kallsyms && !none.system_map));
    CHECK_THROWS_WITH_AS(dump_dir_kernel_files((dir / "nothing").string()), doctest::Contains("not a directory"), InputError);
    fs::create_symlink(dir / "gone", dir / "vmlinuz");
    CHECK_THROWS_WITH_AS(dump_dir_kernel_files(dir.string()), doctest::Contains("vmlinuz: a symbolic link to a file that does not exist"),
                         InputError);
    fs::remove(dir / "vmlinuz");
    touch("vmlinuz");
    touch("kallsyms");
    touch("System.map");   // an image's stub System.map: not read beside vmlinuz
    KernelFiles f = dump_dir_kernel_files(dir.string());
    CHECK(f.kernel == (dir / "vmlinuz").string());
    CHECK(f.kallsyms == (dir / "kallsyms").string());
    CHECK(f.system_map == std::nullopt);
    touch("vmlinux");   // a build without BTF: the -dbg's vmlinux and System.map
    f = dump_dir_kernel_files(dir.string());
    CHECK(f.kernel == (dir / "vmlinux").string());
    CHECK(f.system_map == (dir / "System.map").string());
    fs::remove_all(dir);
}
