// Key nodes anchored at struct members (train/key_anchors.hpp, issue #9 item 5): layouts from
// hand-built BTF, readings chosen per build, key nodes placed in another build's layout.
#include "btf_builder.hpp"
#include "graph/errors.hpp"
#include "graph/file_io.hpp"
#include "train/key_anchors.hpp"
#include "train/trainer.hpp"

#include <doctest/doctest.h>

#include <filesystem>

#include <unistd.h>

using namespace deepmem;
using deepmem::test::BtfBuilder;
namespace fs = std::filesystem;

namespace {

// struct thing as three builds lay it out:
//   A: int a @0, int b @4, struct list_head link @8, long counter @24, union { long x; void *y; } @32,
//      void *owner @40 (48 bytes)
//   B: A with `long extra` after link: counter @32, the union @40, owner @48 (56 bytes)
//   E: B with `long more` after extra: counter @40, the union @48, owner @56 (64 bytes)
//   D: A without counter
// and, in every one, struct list_head pids[2] and an `unsigned flags:3` bitfield after owner.
btf::Btf thing(int extras, bool counter = true) {
    BtfBuilder b;
    const uint32_t i32 = b.int_type("int", 4, 32), i64 = b.int_type("long", 8, 64), u32 = b.int_type("unsigned int", 4, 32, false);
    const uint32_t lh_fwd = b.next_id();
    const uint32_t lh_ptr = b.ptr(lh_fwd + 1);
    const uint32_t lh = b.struct_("list_head", 16, {{"next", lh_ptr, 0}, {"prev", lh_ptr, 64}});
    REQUIRE(lh == lh_fwd + 1);
    const uint32_t vp = b.ptr(0);
    const uint32_t un = b.union_("", 8, {{"x", i64, 0}, {"y", vp, 0}});
    const uint32_t arr = b.array(lh, i32, 2);
    std::vector<test::BtfMember> ms = {{"a", i32, 0}, {"b", i32, 32}, {"link", lh, 64}};
    uint32_t at = 24;
    for (int e = 0; e < extras; ++e, at += 8) ms.push_back({e == 0 ? "extra" : "more", i64, at * 8});
    if (counter) ms.push_back({"counter", i64, at * 8}), at += 8;
    ms.push_back({"", un, at * 8}), at += 8;
    ms.push_back({"owner", vp, at * 8}), at += 8;
    ms.push_back({"pids", arr, at * 8}), at += 32;
    ms.push_back({"flags", u32, at * 8, 3}), at += 8;
    b.struct_("thing", at, ms);
    return btf::Btf::parse(b.blob());
}

StructLayout layout(int extras, bool counter = true) { return flat_members(thing(extras, counter), "thing"); }

const MemberLeaf& leaf(const StructLayout& s, const std::string& path) {
    for (const MemberLeaf& l : s.leaves)
        if (l.path == path) return l;
    FAIL("no leaf " << path);
    throw 0;
}

Model thing_model(std::vector<KeyNode> keys) {
    ModelConfig c;
    c.embed_width = 8;
    c.sigma = {{8, Activation::Relu}};
    c.classifier_hidden = {{8, Activation::Relu}};
    c.classes = uint32_t(keys.size() + 1);
    Model m = Model::create(c, 1);
    m.object_type = "thing";
    m.key_nodes = std::move(keys);
    m.threshold = 2.5f;
    return m;
}

}  // namespace

TEST_CASE("flat_members: leaves by dotted path, anonymous unions unnamed, struct arrays by element, bitfields by their bytes") {
    const StructLayout a = layout(0);
    CHECK(a.name == "thing");
    CHECK(a.size == 88);
    std::vector<std::string> paths;
    for (const MemberLeaf& l : a.leaves) paths.push_back(l.path);
    CHECK(paths == std::vector<std::string>{"a", "b", "link.next", "link.prev", "counter", "x", "y", "owner", "pids[0].next",
                                            "pids[0].prev", "pids[1].next", "pids[1].prev", "flags"});
    CHECK(leaf(a, "link.prev").offset == 16);
    CHECK(leaf(a, "link.prev").pointer);
    CHECK(!leaf(a, "counter").pointer);
    CHECK(leaf(a, "x").offset == 32);
    CHECK(leaf(a, "y").offset == 32);
    CHECK(leaf(a, "y").pointer);
    CHECK(leaf(a, "pids[1].prev").offset == 48 + 24);
    CHECK(leaf(a, "flags").offset == 80);
    CHECK(leaf(a, "flags").size == 1);
    CHECK(layout(1).size == 96);
    CHECK_THROWS_WITH_AS(flat_members(thing(0), "nothing"), "struct nothing is not in the kernel's BTF", InputError);
}

TEST_CASE("flat_members: a crafted BTF of nested arrays of empty structs is refused, not walked 64^6 times") {
    BtfBuilder b;
    const uint32_t i32 = b.int_type("int", 4, 32);
    uint32_t inner = b.struct_("empty", 0, {});
    for (int level = 0; level < 6; ++level) {
        const uint32_t arr = b.array(inner, i32, 64);
        inner = b.struct_(level == 5 ? "thing" : "nest" + std::to_string(level), 0, {{"e", arr, 0}});
    }
    const btf::Btf btf = btf::Btf::parse(b.blob());
    CHECK_THROWS_WITH_AS(flat_members(btf, "thing"), doctest::Contains("2^20 visited"), FormatError);
}

TEST_CASE("a key node's reading in one layout, placed in another: fields moved, ends at the struct's end, members gone") {
    const StructLayout a = layout(0), b = layout(1), d = layout(0, false);
    const KeyNode counter{24, 8, 1.f};   // counter, up to the union
    const auto r = anchor_key_node(a, counter);
    REQUIRE(r);
    CHECK(*r == KeyAnchor{"counter", 0, std::string("x"), 0});
    const auto moved = place_key_node(b, counter, *r);
    REQUIRE(moved);
    CHECK(moved->offset == 32);
    CHECK(moved->length == 8);
    CHECK(moved->weight == 1.f);
    CHECK(!place_key_node(d, counter, *r));   // counter is gone
    // inside a member: the same bytes into it
    const KeyNode inside{12, 20, 1.f};   // link.next + 4 .. counter + 8 (= the union)
    CHECK(*anchor_key_node(a, inside) == KeyAnchor{"link.next", 4, std::string("x"), 0});
    CHECK(place_key_node(b, inside, *anchor_key_node(a, inside))->length == 28);
    // open-ended: no end, the length kept
    KeyNode open{40, 8, 1.f, true};
    CHECK(*anchor_key_node(a, open) == KeyAnchor{"owner", 0, std::nullopt, 0});
    CHECK(place_key_node(b, open, *anchor_key_node(a, open))->offset == 48);
    CHECK(place_key_node(b, open, *anchor_key_node(a, open))->length == 8);
    // up to the struct's end: "" there, and the other layout's end
    CHECK(!anchor_key_node(a, KeyNode{84, 4, 1.f}));   // padding after flags: no leaf
    const KeyNode to_end{80, 8, 1.f};
    CHECK(*anchor_key_node(a, to_end) == KeyAnchor{"flags", 0, std::string(""), 0});
    CHECK(place_key_node(b, to_end, *anchor_key_node(a, to_end))->offset == 88);
    CHECK(place_key_node(b, to_end, *anchor_key_node(a, to_end))->length == 8);
    CHECK(!anchor_key_node(a, KeyNode{88, 8, 1.f}));   // past the struct
    // a delta the member no longer holds
    CHECK(!place_key_node(b, counter, KeyAnchor{"counter", 8, std::string("x"), 0}));
}

TEST_CASE("choose_anchors: the readings of the layouts that cut the segment best, the most common first") {
    const StructLayout a = layout(0), b = layout(1), e = layout(2);
    // counter in A (a pointer before it, the union's pointer after it); in B the same bytes are
    // `extra`, after link.prev but before counter (no pointer): A's reading alone
    const std::vector<KeyNode> keys{{24, 8, 1.f}, {32, 8, 1.f}, {4, 4, 1.f}, {200, 8, 1.f}};
    const std::vector<StructLayout> ab{a, b};
    const auto r = choose_anchors(ab, keys, 8);
    REQUIRE(r.size() == 4);
    CHECK(r[0] == std::vector<KeyAnchor>{{"counter", 0, std::string("x"), 0}});
    // (32, 8): A reads the union to owner, B counter to the union: each has a pointer after it and
    // none before, so both are readings, A's first (the first layout's on a tie)
    CHECK(r[1] == std::vector<KeyAnchor>{{"x", 0, std::string("owner"), 0}, {"counter", 0, std::string("x"), 0}});
    // no pointer around it in either: both read b, one reading
    CHECK(r[2] == std::vector<KeyAnchor>{{"b", 0, std::string("link.next"), 0}});
    CHECK(r[3].empty());   // in no layout
    // three layouts, two of them alike: their reading first
    const std::vector<StructLayout> bba{b, b, a};
    CHECK(choose_anchors(bba, std::vector<KeyNode>{{32, 8, 1.f}}, 8)[0].front() == KeyAnchor{"counter", 0, std::string("x"), 0});
    (void)e;
}

TEST_CASE("place_model: a reading that puts a key node where it was trained keeps it; else the first that places moves it") {
    const StructLayout a = layout(0), b = layout(1), e = layout(2), d = layout(0, false);
    Model m = thing_model({{24, 8, 1.f}, {32, 8, 1.f}, {0, 4, 0.5f}, {40, 8, 1.f, true}});
    const std::vector<StructLayout> ab{a, b};
    CHECK(anchor_model(m, ab) == 4);
    CHECK(m.key_nodes[1].anchors.size() == 2);
    const Model anchored = m;
    // B: key 1's second reading (counter) puts it at 32/8, where it was trained: it stays; key 0
    // (A's counter) moves to B's counter
    Model onb = anchored;
    Placement p = place_model(onb, b);
    CHECK(p.anchored == 4);
    CHECK(p.moved == 2);   // key 0 to 32/8, key 3 (owner, open-ended) to 48
    CHECK(p.unplaced == 0);
    CHECK(onb.key_nodes[0].offset == 32);
    CHECK(onb.key_nodes[1].offset == 32);
    CHECK(onb.key_nodes[2].offset == 0);
    CHECK(onb.key_nodes[3].offset == 48);
    CHECK(onb.key_nodes[3].length == 8);
    CHECK(onb.key_nodes[0].anchors == anchored.key_nodes[0].anchors);   // anchors kept
    CHECK(onb.threshold == anchored.threshold);
    // E (fields moved again): no reading puts key 1 where trained; its first (the union to owner) moves it
    Model one = anchored;
    p = place_model(one, e);
    CHECK(one.key_nodes[1].offset == 48);
    CHECK(one.key_nodes[1].length == 8);
    CHECK(one.key_nodes[0].offset == 40);
    // A: nothing moves
    Model ona = anchored;
    CHECK(place_model(ona, a).moved == 0);
    CHECK(ona.key_nodes == anchored.key_nodes);
    // D (no counter): key 0 cannot be placed and keeps its range; key 1's first reading still places
    Model ond = anchored;
    p = place_model(ond, d);
    CHECK(p.unplaced == 1);
    CHECK(ond.key_nodes[0].offset == 24);
    CHECK(p.text() == "2 of 4 anchored key nodes moved, 1 not placed (kept where trained)");
    // a model without anchors: nothing to do
    Model plain = thing_model({{24, 8, 1.f}});
    CHECK(place_model(plain, b).anchored == 0);
    // another struct's layout, a joint model: refused
    StructLayout other = b;
    other.name = "other";
    CHECK_THROWS_AS(place_model(plain, other), InputError);
    const std::vector<StructLayout> wrong{other};
    CHECK_THROWS_AS(anchor_model(plain, wrong), InputError);
}

TEST_CASE("dmtrain --anchor (anchor()): a model's key nodes anchored from kernel files of its builds, all else kept") {
    const fs::path dir = fs::temp_directory_path() / ("deepmem_anchor_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::vector<uint8_t> blob = [] {   // layout A's BTF as a raw file (no banner)
        const btf::Btf b = thing(0);
        return std::vector<uint8_t>(b.bytes().begin(), b.bytes().end());
    }();
    const std::string raw = (dir / "a.btf").string();
    write_file_atomically(raw, {reinterpret_cast<const char*>(blob.data()), blob.size()});
    Model m = thing_model({{24, 8, 1.f}, {32, 8, 1.f}});
    const std::string in = (dir / "m.cereal").string(), out = (dir / "out.cereal").string();
    m.save(in);
    TrainConfig cfg;
    cfg.output = out;
    cfg.optimiser_state = true;
    std::vector<std::string> logged;
    auto log = [&](const std::string& l) { logged.push_back(l); };
    const TrainResult r = anchor(cfg, in, {raw}, log);
    const Model a = Model::load(out);
    CHECK(a.key_nodes[0].anchors == std::vector<KeyAnchor>{{"counter", 0, std::string("x"), 0}});
    CHECK(a.key_nodes[1].anchors.size() == 1);
    CHECK(r.model.key_nodes == a.key_nodes);
    CHECK(a.provenance.training_config.find("[anchored]\nfrom = " + raw) != std::string::npos);
    Model same = a;   // all else as read
    for (KeyNode& k : same.key_nodes) k.anchors.clear();
    same.provenance.training_config = m.provenance.training_config;
    CHECK(same.to_bytes() == m.to_bytes());
    REQUIRE(!logged.empty());
    CHECK(logged.back() == "key-node anchors: 2 of 2 key nodes anchored at members of thing in 1 build layout");
    // a model that records its builds takes kernel files of those builds only (raw BTF names none)
    m.provenance.kernel_builds = {{"6.1.0-47-amd64", ""}};
    m.save(in);
    CHECK_THROWS_WITH_AS(anchor(cfg, in, {raw}, log), doctest::Contains("no kernel banner (raw BTF?), not one of the builds model"), InputError);
    // the output may not be the model read, and must be named
    TrainConfig over = cfg;
    over.output = in;
    m.provenance.kernel_builds.clear();
    m.save(in);
    CHECK_THROWS_AS(anchor(over, in, {raw}, log), InputError);
    CHECK(Model::load(in).key_nodes[0].anchors.empty());   // untouched
    over.output.clear();
    CHECK_THROWS_WITH_AS(anchor(over, in, {raw}, log), "--anchor: run.output names no file to write", InputError);
    // a struct the kernel file lacks
    Model other = thing_model({{0, 8, 1.f}});
    other.object_type = "nothing";
    other.save(in);
    CHECK_THROWS_WITH_AS(anchor(cfg, in, {raw}, log), "struct nothing is not in the kernel's BTF", InputError);
    fs::remove_all(dir);
}
