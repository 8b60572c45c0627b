// Training data on hand-made memory: node labels, key-node selection, classes; the config's checks,
// the manifest reader, SHA-256 and the kernel builds a model records.
#include "test/graph/graph_fixtures.hpp"
#include "train/trainer.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <fstream>
#include <map>
#include <tuple>

using namespace deepmem;
using namespace deepmem::test;

namespace {

// Four live 256-byte objects at 0, 256, 512, 768 and a freed one at 1024. Objects 0–2 have pointers
// at +0, +64, +128 (segments 8/56, 72/56, 136/120); object 3 at +0, +64, +160 (8/56, 72/88,
// 168/88); the freed one like objects 0–2, then a pointer at 1280; a 100-byte "tail" object at 1288
// whose only segment runs to the end of the page.
// `extra`: offsets of more pointer words.
LabeledDump objects_dump(std::initializer_list<uint64_t> extra = {}) {
    Memory m(1);
    m.map(K64, 0, 4096);
    m.fill(0, 4096, 0x5a);
    for (uint64_t base : {0, 256, 512, 1024})
        for (uint64_t off : {0, 64, 128}) m.word(base + off, K64 + 2048);
    for (uint64_t off : {0, 64, 160}) m.word(768 + off, K64 + 2048);
    m.word(1280, K64 + 2048);   // ends the freed object's last segment
    for (uint64_t at : extra) m.word(at, K64 + 2048);
    LabeledDump d{"synthetic", m.build(), {}, {}};
    for (uint64_t base : {0, 256, 512, 768}) d.truth.push_back({K64 + base, "obj", 256, false});
    d.truth.push_back({K64 + 1024, "obj", 256, true});
    d.truth.push_back({K64 + 3000, "other", 64, false});
    d.truth.push_back({K64 + 1288, "tail", 100, false});
    return d;
}

// `pages` 4 KiB pages at K64 of distinct non-zero bytes, with a pointer every 96 bytes (at 88, 184,
// …: segments of 88 bytes) to target(offset of the pointer).
MemoryGraph patterned_pages(uint64_t pages, const std::function<uint64_t(uint64_t)>& target) {
    Memory m(pages);
    m.map(K64, 0, pages * 4096);
    for (uint64_t a = 0; a < pages * 4096; ++a) m.image[a] = uint8_t(1 + a * 7 % 255);   // never 0
    for (uint64_t p = 88; p < pages * 4096; p += 96) m.word(p, target(p));
    return m.build();
}

// A copy of `clean` after one augmentation step drawing from a generator seeded with `seed`.
GraphBatch augmented(const GraphBatch& clean, uint64_t seed, const std::function<void(GraphBatch&, uint64_t&)>& step) {
    GraphBatch b = clean;
    uint64_t rng = seed;
    step(b, rng);
    return b;
}

}  // namespace

TEST_CASE("train: node labels, key nodes by frequency, classes; freed objects are not targets") {
    const LabeledDump d = objects_dump();
    const NodeLabels l = label_nodes(d, "obj");
    CHECK(l.objects == 4);
    auto at = [&](uint64_t off) { return *d.graph.node_containing(K64 + off); };
    CHECK(l.label[at(8)] == SegmentLabel{8, 56, false});
    CHECK(l.label[at(256 + 136)] == SegmentLabel{136, 120, false});
    CHECK(l.label[at(768 + 168)] == SegmentLabel{168, 88, false});
    CHECK(l.label[at(1024 + 72)].offset == NodeLabels::kIgnored);
    CHECK(l.label[at(2000)].offset == NodeLabels::kNoObject);
    // A segment running past its object's end: its length inside the object, open-ended.
    const NodeLabels tail = label_nodes(d, "tail");
    CHECK(tail.label[at(1288)] == SegmentLabel{0, 100, true});
    const KeyNode open = select_key_nodes({tail}, 20, 0.5).at(0);
    CHECK(open == KeyNode{0, 100, 1.f, true});
    CHECK(open.matches(100));
    CHECK(open.matches(2808));
    CHECK_FALSE(open.matches(99));
    CHECK_FALSE(KeyNode{0, 100, 1.f, false}.matches(2808));
    {   // A long gap's node (memory_graph.hpp) is open-ended, within the object and shorter than max_segment.
        Memory m(3);
        m.map(K64, 0, 3 * 4096);
        m.fill(0, 3 * 4096, 0x33);
        m.word(0, K64 + 8);
        m.word(8192, K64 + 8);   // the gap [8, 8192) is 8184 bytes
        LabeledDump g{"long gap", m.build(), {}, {}};
        g.truth.push_back({K64, "big", 8192, false});
        g.truth.push_back({K64, "small", 200, false});
        const uint32_t n = *g.graph.node_containing(K64 + 8);
        REQUIRE(g.graph.length()[n] == 4096);
        CHECK(label_nodes(g, "big").label[n] == SegmentLabel{8, 4095, true});
        CHECK(label_nodes(g, "small").label[n] == SegmentLabel{8, 192, true});
    }

    const auto keys = select_key_nodes({l}, 20, 0.5);
    REQUIRE(keys.size() == 3);   // 72/88 and 168/88 occur in 1 of 4 objects
    CHECK(keys[0] == KeyNode{8, 56, 1.f});
    CHECK(keys[1] == KeyNode{72, 56, 0.75f});
    CHECK(keys[2] == KeyNode{136, 120, 0.75f});
    CHECK(select_key_nodes({l}, 2, 0.5).size() == 2);
    CHECK(select_key_nodes({l}, 20, 0.2).size() == 5);
    CHECK_THROWS_AS(select_key_nodes({l}, 20, 1.0 + 1e-9), InputError);   // nothing that frequent

    // Per-build frequencies (issue #9): build "b" (2 objects) lays the type out differently from
    // build "a" (10 objects); over all 12 objects its labels occur in 1/6 and never qualify.
    {
        auto objects = [](uint64_t n, std::vector<SegmentLabel> per_object) {
            NodeLabels x;
            x.objects = n;
            for (uint64_t i = 0; i < n; ++i) x.label.insert(x.label.end(), per_object.begin(), per_object.end());
            x.label.push_back({NodeLabels::kNoObject, 0, false});
            return x;
        };
        const std::vector<NodeLabels> two = {objects(10, {{0, 8, false}, {8, 16, false}, {24, 8, false}}),
                                             objects(2, {{0, 8, false}, {40, 8, false}, {48, 8, false}})};
        const auto overall = select_key_nodes(two, 3, 0.5);
        REQUIRE(overall.size() == 3);
        CHECK(overall[2] == KeyNode{24, 8, 10.f / 12.f});
        const std::vector<std::string> builds = {"a", "b"};
        const auto per_build = select_key_nodes(two, 3, 0.5, builds);
        REQUIRE(per_build.size() == 3);   // a's 0/8, b's 40/8 (0/8 taken), a's 8/16
        CHECK(per_build[0] == KeyNode{0, 8, 1.f});
        CHECK(per_build[1] == KeyNode{8, 16, 1.f});
        CHECK(per_build[2] == KeyNode{40, 8, 1.f});
        CHECK(select_key_nodes(two, 20, 0.5, builds).size() == 5);
        // min_per_build: with 1 key (a's 0/8, shared by b) each build has one of its labels; 2
        // takes each build's next past the count, 3 the next again; a build short of labels
        // keeps what it has.
        const auto b3 = select_key_nodes(two, 1, 0.5, builds, 3);
        CHECK(b3.size() == 5);          // 0/8; a: 8/16, 24/8; b: 40/8, 48/8
        const auto b2 = select_key_nodes(two, 1, 0.5, builds, 2);
        CHECK(b2.size() == 3);          // 0/8; a: 8/16; b: 40/8
        CHECK(select_key_nodes(two, 1, 0.5, builds, 100).size() == 5);   // every qualifying label, no more
        const std::vector<std::string> one = {"a"};
        CHECK_THROWS(select_key_nodes(two, 3, 0.5, one));
    }

    const auto cls = node_classes(l, keys);
    CHECK(cls[at(512 + 8)] == 1);
    CHECK(cls[at(512 + 72)] == 2);
    CHECK(cls[at(768 + 72)] == 0);                 // 72/88: a label, not a key node
    CHECK(cls[at(1024 + 8)] == kIgnoredClass);     // freed
    CHECK(cls[at(2000)] == 0);

    // Freed off base (issue #13 item 4): a pointer at 136 of the freed object moves its last segment
    // to 144, as a freed cred's rcu_head.next moves its one key segment 8 bytes on.
    {
        // (and one at 96 splits the key segment at 72: its first part, 72/24, still votes the freed base)
        const LabeledDump shifted = objects_dump({1024 + 136, 1024 + 96});
        const NodeLabels f = label_nodes(shifted, "obj");
        auto node = [&](uint64_t off) { return *shifted.graph.node_containing(K64 + off); };
        CHECK(f.label[node(1024 + 144)].offset == NodeLabels::kIgnored);
        CHECK(f.freed[node(1024 + 144)] == SegmentLabel{144, 112, false});
        CHECK(f.freed[node(512 + 8)].offset == NodeLabels::kNoObject);
        CHECK(select_key_nodes({f}, 20, 0.5) == keys);   // freed objects never count
        const auto ignore = node_classes(f, keys);
        const auto negative = node_classes(f, keys, true);
        CHECK(ignore[node(1024 + 144)] == kIgnoredClass);
        CHECK(negative[node(1024 + 144)] == 0);             // would vote for base + 8: a negative
        CHECK(ignore[node(1024 + 8)] == kIgnoredClass);
        CHECK(negative[node(1024 + 8)] == kIgnoredClass);   // a key node at its own offset: still no target
        CHECK(f.freed[node(1024 + 72)] == SegmentLabel{72, 24, false});
        CHECK(negative[node(1024 + 72)] == kIgnoredClass);  // at a key node's offset, split: still no target
        CHECK(negative[node(1024 + 104)] == 0);             // 104/32: at no key node's offset
        for (size_t n = 0; n < ignore.size(); ++n)
            if (n != node(1024 + 144) && n != node(1024 + 104)) CHECK(ignore[n] == negative[n]);
    }

    LabeledDump none = objects_dump();
    CHECK_THROWS_AS(select_key_nodes({label_nodes(none, "absent")}, 20, 0.5), InputError);
    none.truth[0].size = 0;   // labels without sizes cannot be used
    CHECK_THROWS_AS(label_nodes(none, "obj"), InputError);
}

TEST_CASE("train: configuration checks name the key") {
    TrainConfig c;
    c.manifest = "m.json";
    c.object_type = "task_struct";
    c.output = "out.cereal";
    CHECK_NOTHROW(c.validate());
    auto fails_with = [](TrainConfig bad, const char* key) {
        try {
            bad.validate();
        } catch (const InputError& e) {
            return std::string(e.what()).find(key) != std::string::npos;
        }
        return false;
    };
    TrainConfig b = c;
    b.keep_prob = 0;
    CHECK(fails_with(b, "model.keep_prob"));
    b = c;
    b.hard_negative_fraction = 1.5f;
    CHECK(fails_with(b, "batch.hard_negative_fraction"));
    b = c;
    b.object_type.clear();
    CHECK(fails_with(b, "data.type"));
    b = c;
    b.steps = 0;
    CHECK(fails_with(b, "run.steps"));
    b = c;
    b.freed_off_base = "negatives";
    CHECK(fails_with(b, "data.freed_off_base"));
    b.freed_off_base = "negative";
    CHECK_NOTHROW(b.validate());
    CHECK(b.to_ini().find("freed_off_base = negative") != std::string::npos);   // a trajectory key
    CHECK(c.to_ini().find("freed_off_base") == std::string::npos);              // older models' text
    b = c;
    b.schedule = "linear";
    CHECK(fails_with(b, "optimiser.schedule"));
    // optimiser.schedule = cosine: lr at step 1, half at the middle, near 0 at the last; its horizon
    // (run.steps) is a trajectory key
    b.schedule = "cosine";
    b.steps = 1000;
    CHECK_NOTHROW(b.validate());
    CHECK(learning_rate_at(b, 1) == b.learning_rate);
    CHECK(learning_rate_at(b, 501) == doctest::Approx(b.learning_rate / 2));
    CHECK(learning_rate_at(b, 1000) < b.learning_rate * 1e-4f);
    CHECK(learning_rate_at(b, 1000) > 0);
    for (uint64_t s = 1; s < 1000; ++s) CHECK(learning_rate_at(b, s + 1) <= learning_rate_at(b, s));
    CHECK(learning_rate_at(c, 1000) == c.learning_rate);   // constant (the default)
    CHECK(b.to_ini().find("schedule = cosine\nschedule_steps = 1000") < b.to_ini().find("\nsteps = 1000"));
    b.schedule_steps = 999;   // a horizon before the run's end
    CHECK(fails_with(b, "optimiser.schedule_steps"));
    b.schedule_steps = 2000;  // stopped at half way
    CHECK_NOTHROW(b.validate());
    CHECK(learning_rate_at(b, 1001) == doctest::Approx(b.learning_rate / 2));
    b.schedule = "constant";  // a horizon without a schedule
    CHECK(fails_with(b, "optimiser.schedule_steps"));
    CHECK(c.to_ini().find("schedule") == std::string::npos);   // older models' text
    const std::string ini = c.to_ini();
    for (const char* key : {"[data]", "manifest = m.json", "type = task_struct", "[keys]", "[model]", "[optimiser]",
                            "[batch]", "[run]", "seed = 1", "output = out.cereal"})
        CHECK(ini.find(key) != std::string::npos);
    CHECK(ini.find("[votes]") == std::string::npos);   // the default keeps older models' text
}

TEST_CASE("train: votes.windows — a comma list of byte counts, distinct, in order") {
    TrainConfig c;
    c.manifest = "m.json";
    c.object_type = "task_struct";
    c.output = "out.cereal";
    CHECK(c.vote_window_list() == std::vector<uint32_t>{0});
    c.vote_windows = "0, 32,64,32";
    CHECK(c.vote_window_list() == std::vector<uint32_t>{0, 32, 64});
    CHECK(c.to_ini().find("[votes]\nwindows = 0, 32,64,32") != std::string::npos);
    for (const char* bad : {"", "8,", "-8", "x", "1e3", "65537", "99999999999"}) {
        c.vote_windows = bad;
        INFO(bad);
        CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("votes.windows"), InputError);
    }
}

TEST_CASE("train: votes.alignment — learned from every labeled object's address, only from enough of them") {
    TrainConfig c;
    c.manifest = "m.json";
    c.object_type = "task_struct";
    c.output = "out.cereal";
    CHECK(c.to_ini().find("alignment") == std::string::npos);   // older models' text unchanged
    c.alignment = "learned";
    CHECK(c.to_ini().find("[votes]\nalignment = learned\n") != std::string::npos);
    c.alignment = "64";
    CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("votes.alignment"), InputError);

    std::vector<LabeledDump> dumps;
    dumps.push_back(LabeledDump{"a", objects_dump().graph, {}, {}});
    auto add = [&](uint64_t vaddr, const char* type, bool freed = false) {
        dumps.back().truth.push_back({vaddr, type, 176, freed});
    };
    const uint64_t slab = 0xffff888001230000;
    for (uint64_t i = 0; i < 15; ++i) add(slab + 192 * i, "cred");   // 64-aligned (192 = 3 · 64)
    uint64_t n = 0;
    CHECK(learned_alignment(dumps, "cred", 8, &n) == 0);   // 15 < kMinAlignmentObjects
    CHECK(n == 15);
    add(slab + 192 * 15, "cred", /*freed=*/true);          // freed objects count: they sit in the same slabs
    CHECK(learned_alignment(dumps, "cred", 8, &n) == 64);
    CHECK(n == 16);
    add(slab + 4096 + 8, "task_struct");   // other types do not count
    CHECK(learned_alignment(dumps, "cred", 8) == 64);
    add(slab + 0x2020, "cred");            // one object at 32 mod 64 halves it
    CHECK(learned_alignment(dumps, "cred", 8) == 32);
    add(slab + 0x3008, "cred");            // word-aligned only: no filter, stored as 0
    CHECK(learned_alignment(dumps, "cred", 8) == 0);
    CHECK(learned_alignment(dumps, "cred", 4) == 8);   // a 32-bit model: 8 is above its word
    // page-aligned objects, or 256-byte slots (file): no more than a cache line, a size's accident above it
    std::vector<LabeledDump> pages;
    pages.push_back(LabeledDump{"b", objects_dump().graph, {}, {}});
    for (uint64_t i = 0; i < 20; ++i) pages.back().truth.push_back({slab + (i << 16), "module", 1024, false});
    for (uint64_t i = 0; i < 20; ++i) pages.back().truth.push_back({slab + 256 * i, "file", 232, false});
    CHECK(learned_alignment(pages, "module", 8) == kMaxLearnedAlignment);
    CHECK(learned_alignment(pages, "file", 8) == 64);
}

namespace {
// A scratch dataset directory; write(text) replaces its manifest.json and returns the path.
struct ManifestDir {
    std::filesystem::path dir;
    explicit ManifestDir(const char* tag)
        : dir(std::filesystem::temp_directory_path() / (std::string(tag) + std::to_string(::getpid()))) {
        std::filesystem::create_directories(dir);
    }
    ~ManifestDir() { std::filesystem::remove_all(dir); }
    std::string write(const std::string& text) const {
        std::ofstream(dir / "manifest.json") << text;
        return (dir / "manifest.json").string();
    }
};
}  // namespace

TEST_CASE("train: manifest reader") {
    const ManifestDir md("dm-manifest-");
    const auto& dir = md.dir;
    auto write = [&](const std::string& text) { return md.write(text); };
    const Manifest m = Manifest::load(write(
        "{\n  \"format\":\"deepmem dataset manifest v1\",\n  \"kernel_package\":\"linux-image-x\",\n"
        "  \"kernel_version\":\"6.1\",\n  \"train\":[\"d-1\",\"d-2\"],\n  \"validation\":[\"d-3\"],\n  \"test\":[]\n}\n"));
    CHECK(m.train == std::vector<std::string>{"d-1", "d-2"});
    CHECK(m.validation == std::vector<std::string>{"d-3"});
    CHECK(m.test.empty());
    CHECK(m.kernel == "linux-image-x 6.1");
    CHECK(m.sha256.size() == 64);
    CHECK(m.dump_dir("d-1") == (dir / "d-1").string());
    CHECK_THROWS_AS(Manifest::load(write("{\"train\":[]}")), FormatError);   // not a manifest
    CHECK_THROWS_AS(Manifest::load(write("{\"format\":\"deepmem dataset manifest v1\",\"train\":[\"../x\"],"
                                         "\"validation\":[],\"test\":[]}")),
                    FormatError);   // a name that leaves the dataset
    // Names outside the portable filename set (what tools/dataset_manifest.py refuses to write):
    // an escaped quote, a backslash, é as JSON's \u00e9 or as UTF-8.
    for (const char* name : {"d\\\"x", "d\\\\x", "d\\u00e9", "d\xc3\xa9", "..", ""}) {
        CAPTURE(name);
        const std::string doc = std::string("{\"format\":\"deepmem dataset manifest v1\",\"train\":[\"") + name +
                                "\"],\"validation\":[],\"test\":[]}";
        CHECK_THROWS_WITH_AS(Manifest::load(write(doc)), doctest::Contains("a dump name is letters"), FormatError);
    }
    CHECK_THROWS_AS(Manifest::load((dir / "absent.json").string()), InputError);
}

TEST_CASE("train: manifest builds and leave-one-build-out") {
    const ManifestDir md("dm-manifest-b-");
    auto write = [&](const std::string& text) { return md.write(text); };
    // The shape make-dataset writes: splits, then one flat record per dump with nested objects.
    auto rec = [](const char* name, const char* release) {
        return std::string("    {\"name\":\"") + name + "\",\"seed\":1,\"kernel_package\":\"linux-image-" + release +
               "\",\"kernel_release\":\"" + release + "\",\"workload\":{\"procs\":3,\"modules\":\"a,b\"},\"seconds\":{\"boot\":1}}";
    };
    const std::string doc = std::string("{\n  \"format\":\"deepmem dataset manifest v1\",\n") +
        "  \"train\":[\"d0\",\"d1\",\"d2\",\"d4\"],\n  \"validation\":[\"d3\",\"d5\"],\n  \"test\":[\"d6\"],\n"
        "  \"builds\":{\"6.1.0-57-amd64\":{\"dumps\":[\"d0\"]}},\n  \"dumps\":[\n" +
        rec("d0", "6.1.0-57-amd64") + ",\n" + rec("d1", "6.12.118+deb13-amd64") + ",\n" + rec("d2", "5.10.0-46-amd64") + ",\n" +
        rec("d3", "6.1.0-57-amd64") + ",\n" + rec("d4", "6.1.0-57-rt-amd64") + ",\n" + rec("d5", "6.12.118+deb13-amd64") + ",\n" +
        rec("d6", "5.10.0-46-amd64") + "\n  ]\n}\n";
    const Manifest m = Manifest::load(write(doc));
    CHECK(m.build_of.size() == 7);
    CHECK(m.build_of.at("d4") == "6.1.0-57-rt-amd64");
    CHECK(m.by_build.at("6.12.118+deb13-amd64") == std::vector<std::string>{"d1", "d5"});
    CHECK(m.by_build.size() == 4);

    const Manifest v = m.holding_out("6.12");   // a version never seen
    CHECK(v.train == std::vector<std::string>{"d0", "d2", "d4"});
    CHECK(v.validation == std::vector<std::string>{"d3"});
    CHECK(v.test == std::vector<std::string>{"d1", "d5"});
    const Manifest rt = m.holding_out("6.1.0-57-rt-amd64");   // one build of a seen version
    CHECK(rt.train == std::vector<std::string>{"d0", "d1", "d2"});
    CHECK(rt.test == std::vector<std::string>{"d4"});
    const Manifest two = m.holding_out("5.10,6.1.0-57-rt-amd64");
    CHECK(two.test == std::vector<std::string>{"d2", "d6", "d4"});
    // "6.1" takes both 6.1 builds and no 6.12 one (a prefix ends at '.', '-' or '+').
    const Manifest v61 = m.holding_out("6.1");
    CHECK(v61.test == std::vector<std::string>{"d0", "d3", "d4"});
    CHECK(v61.train == std::vector<std::string>{"d1", "d2"});
    CHECK(v61.validation == std::vector<std::string>{"d5"});
    CHECK_THROWS_AS(m.holding_out("6.1,6.12"), InputError);   // no validation dump left
    CHECK_THROWS_AS(m.holding_out("4.19"), InputError);       // matches no build
    CHECK_THROWS_AS(m.holding_out("6.1.0-5"), InputError);    // not a prefix at a separator
    CHECK_THROWS_AS(m.holding_out(","), InputError);
    // A dump listed twice in "dumps" is an error; a manifest without records has no builds.
    CHECK_THROWS_AS(Manifest::load(write(doc.substr(0, doc.rfind("\n  ]")) + ",\n" + rec("d6", "x") + "\n  ]\n}\n")), FormatError);
    CHECK(Manifest::load(write("{\"format\":\"deepmem dataset manifest v1\",\"train\":[],\"validation\":[],\"test\":[]}"))
              .by_build.empty());
    // Read as JSON (attacker 18): a nested "kernel_release" before the record's own is not its
    // build; a key given twice, at the top or in a record, and text that is not JSON are errors.
    const std::string nested = std::string("{\"format\":\"deepmem dataset manifest v1\",\"train\":[\"d0\"],\"validation\":[],"
                                           "\"test\":[],\"dumps\":[{\"name\":\"d0\",\"note\":{\"kernel_release\":\"6.1.0-57-amd64\"},"
                                           "\"kernel_release\":\"6.12.118+deb13-amd64\"}]}");
    CHECK(Manifest::load(write(nested)).build_of.at("d0") == "6.12.118+deb13-amd64");
    CHECK_THROWS_WITH_AS(Manifest::load(write("{\"format\":\"deepmem dataset manifest v1\",\"train\":[\"d1\"],\"train\":[\"d0\"],"
                                              "\"validation\":[],\"test\":[]}")),
                         doctest::Contains("names \"train\" twice"), FormatError);
    CHECK_THROWS_AS(Manifest::load(write("{\"format\":\"deepmem dataset manifest v1\",\"train\":[],\"validation\":[],\"test\":[],"
                                         "\"dumps\":[{\"name\":\"d0\",\"name\":\"d1\"}]}")),
                    FormatError);
    CHECK_THROWS_AS(Manifest::load(write("{\"format\":\"deepmem dataset manifest v1\",\"train\":[d0],\"validation\":[],\"test\":[]}")),
                    FormatError);
    CHECK_THROWS_AS(Manifest::load(write("{\"format\":\"deepmem dataset manifest v1\",\"train\":[\"d0\"")), FormatError);
}

TEST_CASE("train: SHA-256 test vectors") {
    auto h = [](std::string_view s) {
        return sha256_hex({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
    };
    CHECK(h("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(h("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(h("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST_CASE("train: the kernel builds of dumps, from their banners, else their meta.json release") {
    const std::string banner = "Linux version 6.1.0-47-amd64 (debian-kernel@lists.debian.org) (gcc-12) #1 SMP Debian 6.1.170-3";
    auto dump_with = [&](const std::string& text, const std::string& release) {
        Memory m(4);
        m.map(K64, 0, 4 * 4096);
        m.map(0xffffffff80000000ull, 4096, 3 * 4096);
        std::memcpy(&m.image[4096 + 8], text.data(), text.size());
        return LabeledDump{"d", m.build(), {}, release};
    };
    std::vector<LabeledDump> dumps;
    dumps.push_back(dump_with(banner + "\n", "6.1.0-47-amd64"));
    dumps.push_back(dump_with(banner + "\n", ""));             // the same build again
    dumps.push_back(dump_with("", "6.1.0-57-rt-amd64"));        // no banner: meta.json's release
    dumps.push_back(dump_with("", ""));                         // neither: skipped
    const auto builds = kernel_builds_of(dumps);
    REQUIRE(builds.size() == 2);
    CHECK(builds[0] == KernelBuild{"6.1.0-47-amd64", banner});
    CHECK(builds[1] == KernelBuild{"6.1.0-57-rt-amd64", ""});
}

TEST_CASE("train: planted-pointer augmentation — a pure function of its draws, graph surgery as documented") {
    // Every word of a 4 KiB page filled with distinct bytes, pointers every 96 bytes: segments of 88.
    const MemoryGraph g = patterned_pages(1, [](uint64_t p) { return K64 + 8 * (p % 7) + 96; });
    REQUIRE(g.node_count() > 30);
    const std::vector<uint32_t> targets{3, 10, 17, 24}, labels{1, 2, 0, 1};
    const GraphBatch clean = extract_batch(graph_input(g), targets, labels, 3);
    auto planted = [&](uint64_t seed, double rate) {
        return augmented(clean, seed, [&](GraphBatch& b, uint64_t& rng) { plant_pointers(b, g.length(), 8, rate, rng); });
    };
    auto same = [](const GraphBatch& a, const GraphBatch& b) {
        bool s = a.features == b.features && a.labels == b.labels && a.targets == b.targets && a.node_ids == b.node_ids;
        for (int k = 0; k < kNeighbourKinds; ++k)
            s = s && a.in[size_t(k)].offsets == b.in[size_t(k)].offsets && a.in[size_t(k)].sources == b.in[size_t(k)].sources;
        return s;
    };
    // The same draws give the same batch (sample_batch seeds them by (seed, step): --resume is exact).
    CHECK(same(planted(7, 0.5), planted(7, 0.5)));
    CHECK_FALSE(same(planted(7, 0.5), planted(8, 0.5)));
    CHECK_FALSE(same(planted(7, 0.5), clean));
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        const GraphBatch b = planted(seed, 1.0);
        CAPTURE(seed);
        const uint32_t n = b.nodes();
        REQUIRE(n >= clean.nodes());
        CHECK(b.features.size() == size_t(n) * b.feature_bytes);
        CHECK(b.node_ids.size() == n);
        CHECK(b.targets == clean.targets);
        for (size_t i = 0; i < labels.size(); ++i) CHECK((b.labels[i] == labels[i] || b.labels[i] == 0));
        for (int k = 0; k < kNeighbourKinds; ++k) {
            const Csr& c = b.in[size_t(k)];
            REQUIRE(c.rows() == n);
            for (uint32_t r = 0; r < n; ++r) {
                auto row = c.view().row(r);
                CHECK(std::adjacent_find(row.begin(), row.end(), std::greater_equal<>()) == row.end());   // sorted, distinct
                for (uint32_t s : row) CHECK(s < n);
            }
        }
        // Every new node (a segment's part after a planted word) has ln from the part before it,
        // one lp (the planted pointer's target), and that first part has rn from it.
        for (uint32_t r = clean.nodes(); r < n; ++r) {
            auto left = b.in[0].view().row(r);
            REQUIRE(left.size() == 1);
            CHECK(b.node_ids[r] == b.node_ids[left[0]]);
            CHECK(b.in[2].view().row(r).size() == 1);
            auto first_rn = b.in[1].view().row(left[0]);
            CHECK(std::vector<uint32_t>(first_rn.begin(), first_rn.end()) == std::vector<uint32_t>{r});
            // the first part's window is zero from the planted word on, and the new node's starts
            // with bytes the first part held after it
            const uint8_t* tail = b.features.data() + size_t(r) * b.feature_bytes;
            const uint8_t* head = clean.features.data() + size_t(left[0]) * b.feature_bytes;
            const uint8_t* cut = b.features.data() + size_t(left[0]) * b.feature_bytes;
            uint32_t at = 0;
            while (at < b.feature_bytes && cut[at] == head[at] && head[at] != 0) ++at;
            CHECK(at % 8 == 0);
            for (uint32_t i = at; i < b.feature_bytes; ++i) CHECK(cut[i] == 0);
            if (at + 8 < b.feature_bytes) CHECK(tail[0] == head[at + 8]);
        }
    }
    // Some steps split no node at all, some split several: the rate is drawn per step.
    size_t none = 0, several = 0;
    for (uint64_t seed = 1; seed <= 40; ++seed) {
        const uint32_t added = planted(seed, 0.05).nodes() - clean.nodes();
        none += added == 0, several += added >= 2;
    }
    CHECK(none > 0);
    CHECK(several > 0);
}

TEST_CASE("train: absent-page augmentation — whole pages lose their edges, targets never, a pure function of its draws") {
    // Four pages of 88-byte segments with pointers into each other page: edges cross pages.
    const MemoryGraph g = patterned_pages(4, [](uint64_t p) { return K64 + (p + 4096 + 96 * (p % 5)) % (4 * 4096) / 96 * 96; });
    REQUIRE(g.node_count() > 150);
    const std::vector<uint32_t> targets{3, 10, 50, 90}, labels{1, 2, 0, 1};
    const GraphBatch clean = extract_batch(graph_input(g), targets, labels, 3);
    auto dropped = [&](uint64_t seed, double rate) {
        return augmented(clean, seed, [&](GraphBatch& b, uint64_t& rng) { drop_absent_pages(b, g.vaddr(), rate, rng); });
    };
    auto edges = [](const GraphBatch& b) {
        std::vector<std::tuple<int, uint32_t, uint32_t>> e;
        for (int k = 0; k < kNeighbourKinds; ++k)
            for (uint32_t r = 0; r < b.nodes(); ++r)
                for (uint32_t s : b.in[size_t(k)].view().row(r)) e.emplace_back(k, r, s);
        return e;
    };
    const auto all = edges(clean);
    CHECK(edges(dropped(7, 0.8)) == edges(dropped(7, 0.8)));   // (seed, step) → the same batch: --resume exact
    CHECK(edges(dropped(7, 0.0)) == all);
    size_t some = 0;
    for (uint64_t seed = 1; seed <= 30; ++seed) {
        const GraphBatch b = dropped(seed, 1.0);
        CAPTURE(seed);
        CHECK(b.features == clean.features);
        CHECK(b.node_ids == clean.node_ids);
        CHECK(b.labels == clean.labels);
        const auto kept = edges(b);
        CHECK(std::includes(all.begin(), all.end(), kept.begin(), kept.end()));
        some += kept.size() < all.size();
        // A page is absent whole: the edges out of a page's non-target nodes are all kept or all gone;
        // targets keep theirs.
        const size_t M = clean.targets.size();
        std::map<uint64_t, std::pair<size_t, size_t>> by_page;   // page → (edges in clean, edges kept)
        for (const auto& e : all)
            if (std::get<2>(e) >= M) ++by_page[g.vaddr()[clean.node_ids[std::get<2>(e)]] >> 12].first;
        for (const auto& e : kept)
            if (std::get<2>(e) >= M) ++by_page[g.vaddr()[clean.node_ids[std::get<2>(e)]] >> 12].second;
        for (const auto& p : by_page) CHECK((p.second.second == 0 || p.second.second == p.second.first));
        for (const auto& e : all)
            if (std::get<2>(e) < M) CHECK(std::binary_search(kept.begin(), kept.end(), e));
    }
    CHECK(some > 0);
}
