// The model file: round trip, atomic save, and rejection of every kind of bad file.
#include "engine/engine.hpp"
#include "random_graph.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

using namespace deepmem;

namespace {

// What describes a model, beside its weights: the same in `a` and `b`.
void check_same_description(const Model& a, const Model& b) {
    CHECK(a.object_type == b.object_type);
    CHECK(a.key_nodes == b.key_nodes);
    CHECK(a.threshold == b.threshold);
    CHECK(a.graph == b.graph);
    CHECK(a.provenance == b.provenance);
}

Model sample_model() {
    ModelConfig c;
    c.embed_width = 16;
    c.sigma = {{16, Activation::Relu}, {16, Activation::Relu}};
    c.classifier_hidden = {{12, Activation::Relu}};
    c.classes = 4;
    Model m = Model::create(c, 77);
    m.adam_state.step = 12;
    m.adam_state.m = test::random_params<float>(c, 3);
    m.adam_state.v = test::random_params<float>(c, 4);
    m.adam.lr = 3e-4f;
    m.adam.clip_norm = 1.f;
    m.class_weights = {0.1f, 1.f, 2.f, 3.f};
    m.object_type = "task_struct";
    m.key_nodes = {{0, 16, 1.f}, {24, 8, 0.5f}, {1200, 64, 2.f}};
    m.threshold = 2.25f;   // above the heaviest key node's lone vote (2)
    m.graph.max_segment = 2048;
    m.provenance = {"ab12cd", "Linux 6.1.0-13-amd64 #1 SMP Debian 6.1.55-1", "2026-11-22T23:00:00Z", 77};
    m.provenance.kernel_builds = {{"6.1.0-13-amd64", "Linux version 6.1.0-13-amd64 (x@y) (gcc) #1 SMP Debian 6.1.55-1"},
                                  {"6.1.0-13-cloud-amd64", ""}};
    m.provenance.validation_objects = 120;
    m.provenance.validation_agreeing = 119;
    return m;
}

std::vector<uint8_t> rechecksum(std::vector<uint8_t> b) {
    const uint64_t h = fnv1a64({b.data() + 32, b.size() - 32});
    for (int i = 0; i < 8; ++i) b[24 + i] = uint8_t(h >> (8 * i));
    return b;
}

// `b` as an older format wrote it: the payload without its last `drop` bytes (the fields later formats
// appended), marked `version`, with its length and checksum fixed.
std::vector<uint8_t> as_format(std::vector<uint8_t> b, uint8_t version, size_t drop) {
    b.resize(b.size() - drop);
    b[8] = version;
    for (int k = 0; k < 8; ++k) b[16 + k] = uint8_t((b.size() - 32) >> (8 * k));
    return rechecksum(b);
}

ModelError::Kind kind_of(std::span<const uint8_t> bytes) {
    try {
        Model::from_bytes(bytes);
    } catch (const ModelError& e) {
        return e.kind;
    }
    FAIL("accepted a bad file");
    return ModelError::Kind::Io;
}

}  // namespace

TEST_CASE("save/load round trip gives identical fields and bit-identical outputs") {
    const Model m = sample_model();
    const auto dir = std::filesystem::temp_directory_path() / ("dm-engine-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "m.dmm").string();
    m.save(path);
    CHECK(std::filesystem::directory_iterator(dir)->path().filename() == "m.dmm");   // no temp left over
    const Model l = Model::load(path);
    CHECK(l.config == m.config);
    CHECK(l.adam == m.adam);
    CHECK(l.adam_state.step == 12);
    for (size_t i = 0; i < m.params.tensors.size(); ++i) {
        CHECK(l.params.tensors[i] == m.params.tensors[i]);
        CHECK(l.adam_state.m.tensors[i] == m.adam_state.m.tensors[i]);
        CHECK(l.adam_state.v.tensors[i] == m.adam_state.v.tensors[i]);
    }
    CHECK(l.class_weights == m.class_weights);
    check_same_description(l, m);
    CHECK(l.to_bytes() == m.to_bytes());

    const auto g = test::random_graph(300, 64, 9);
    Mat<float> a, b;
    InferenceNet(m.config, m.params).run(g.input(), a);
    InferenceNet(l.config, l.params).run(g.input(), b);
    CHECK(std::memcmp(a.data(), b.data(), size_t(a.size()) * sizeof(float)) == 0);
    std::filesystem::remove_all(dir);
    CHECK_THROWS_AS(Model::load((dir / "missing.dmm").string()), ModelError);
    {   // the payload checksum a load reads: the header's, and another once a weight changes
        std::filesystem::create_directories(dir);
        const std::string path = (dir / "sum.dmm").string();
        m.save(path);
        const std::vector<uint8_t> bytes = m.to_bytes();
        uint64_t header = 0, sum = 0, again = 0;
        std::memcpy(&header, bytes.data() + 24, 8);
        CHECK(Model::load(path, &sum).object_type == m.object_type);
        CHECK(sum == header);
        Model w = m;
        w.params.tensors[0](0, 0) += 1.f;
        w.save(path);
        Model::load(path, &again);
        CHECK(again != sum);
        std::filesystem::remove_all(dir);
    }
    CHECK_THROWS_AS(m.save((dir / "no-such-dir" / "x.dmm").string()), ModelError);
}

TEST_CASE("a model without Adam moments round-trips") {
    Model m = sample_model();
    m.adam_state = {};
    const Model l = Model::from_bytes(m.to_bytes());
    CHECK(l.adam_state.m.tensors.empty());
    CHECK(l.params.tensors == m.params.tensors);
}

TEST_CASE("drop_weights keeps what describes the model and frees the network; such a model no longer validates") {
    const Model m = sample_model();
    Model h = m;
    h.drop_weights();
    CHECK(h.params.tensors.empty());
    CHECK(h.adam_state.m.tensors.empty());
    CHECK(h.class_weights.empty());
    check_same_description(h, m);
    CHECK(h.config == m.config);
    CHECK_THROWS_AS(h.validate(), ModelError);
}

TEST_CASE("every truncation, every corrupted byte, wrong magic and version are rejected") {
    const auto bytes = sample_model().to_bytes();
    for (size_t n = 0; n < bytes.size(); n += (n < 64 ? 1 : 97)) {
        const auto k = kind_of({bytes.data(), n});
        CHECK((k == ModelError::Kind::Truncated || k == ModelError::Kind::BadMagic));
    }
    for (size_t i = 32; i < bytes.size(); i += 13) {
        auto c = bytes;
        c[i] ^= 0x5a;
        CHECK(kind_of(c) == ModelError::Kind::BadChecksum);
    }
    auto magic = bytes;
    magic[0] = 'X';
    CHECK(kind_of(magic) == ModelError::Kind::BadMagic);
    auto version = bytes;
    version[8] = uint8_t(Model::kFormatVersion + 1);
    CHECK(kind_of(version) == ModelError::Kind::BadVersion);
    version[8] = 1;   // format 1 had no training config nor open-ended key nodes
    CHECK(kind_of(version) == ModelError::Kind::BadVersion);
    auto longer = bytes;
    longer.push_back(0);
    CHECK(kind_of(longer) == ModelError::Kind::BadShape);
}

TEST_CASE("wrong shapes and configs behind a valid checksum are rejected") {
    const Model m = sample_model();
    const auto bytes = m.to_bytes();
    // payload: [endianness tag][u32 input width][u32 embedding width][u32 T][u32 K]…
    auto set_u32 = [&](size_t payload_off, uint32_t v) {
        auto b = bytes;
        for (int i = 0; i < 4; ++i) b[32 + payload_off + i] = uint8_t(v >> (8 * i));
        return rechecksum(b);
    };
    CHECK(kind_of(set_u32(1, 65)) == ModelError::Kind::BadShape);        // input width ≠ W1 rows
    CHECK(kind_of(set_u32(5, 17)) == ModelError::Kind::BadConfig);       // H ≠ last σ width
    CHECK(kind_of(set_u32(5, 0)) == ModelError::Kind::BadConfig);
    CHECK(kind_of(set_u32(9, 0)) == ModelError::Kind::BadConfig);        // T = 0
    CHECK(kind_of(set_u32(13, 5)) == ModelError::Kind::BadShape);        // K ≠ classifier output
    CHECK(kind_of(set_u32(1, 0xffffffffu)) == ModelError::Kind::BadConfig);
    // a giant σ width must be refused before allocating anything
    CHECK(kind_of(set_u32(21, 4096)) != ModelError::Kind::Io);

    Model bad = m;
    bad.key_nodes.pop_back();
    CHECK_THROWS_AS(bad.to_bytes(), ModelError);
    bad = m;
    bad.params.tensors[2].resize(1, 3);
    CHECK_THROWS_AS(bad.to_bytes(), ModelError);
}

// What a payload mutation may be rejected as: the header and checksum are made valid first.
bool payload_kind(ModelError::Kind k) {
    using K = ModelError::Kind;
    return k == K::Truncated || k == K::BadShape || k == K::BadConfig || k == K::BadValue;
}

TEST_CASE("random mutations with a recomputed checksum: a payload error at an offset inside the file, or a model that round-trips") {
    const auto bytes = sample_model().to_bytes();
    std::mt19937_64 rng(1);
    std::map<ModelError::Kind, int> rejected;
    int accepted = 0;
    for (int i = 0; i < 3000; ++i) {
        auto b = bytes;
        for (int j = 0, n = 1 + int(rng() % 4); j < n; ++j) b[32 + rng() % (b.size() - 32)] = uint8_t(rng());
        if (rng() % 4 == 0) b.resize(32 + rng() % (b.size() - 32));
        for (int k = 0; k < 8; ++k) b[16 + k] = uint8_t((b.size() - 32) >> (8 * k));
        b = rechecksum(b);
        try {
            const Model m = Model::from_bytes(b);
            ++accepted;
            CHECK(m.to_bytes() == b);   // what was accepted is exactly what it says
        } catch (const ModelError& e) {
            INFO("mutation " << i << ": " << e.what());
            CHECK(payload_kind(e.kind));
            CHECK(e.offset <= b.size());
            ++rejected[e.kind];
        }
    }
    // Each kind of payload check is reached by some mutation (the weights are most of the bytes,
    // so many mutations only change a weight and are accepted).
    CHECK(accepted > 0);
    CHECK(rejected[ModelError::Kind::Truncated] > 0);
    CHECK(rejected[ModelError::Kind::BadShape] > 0);
    CHECK(rejected[ModelError::Kind::BadConfig] > 0);
    CHECK(rejected[ModelError::Kind::BadValue] > 0);
}

namespace {

// The model's bytes with `from` (a unique byte pattern of the payload) replaced by `to`, checksum fixed.
std::vector<uint8_t> patched(const std::vector<uint8_t>& bytes, const std::vector<uint8_t>& from,
                             const std::vector<uint8_t>& to) {
    const auto at = std::search(bytes.begin() + 32, bytes.end(), from.begin(), from.end());
    REQUIRE(at != bytes.end());
    REQUIRE(std::search(at + 1, bytes.end(), from.begin(), from.end()) == bytes.end());   // unique
    auto b = bytes;
    std::copy(to.begin(), to.end(), b.begin() + (at - bytes.begin()));
    return rechecksum(b);
}

std::vector<uint8_t> le(std::initializer_list<uint32_t> words) {
    std::vector<uint8_t> o;
    for (uint32_t w : words)
        for (int i = 0; i < 4; ++i) o.push_back(uint8_t(w >> (8 * i)));
    return o;
}
uint32_t bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

// The error of from_bytes, which must be a ModelError.
ModelError error_of(std::span<const uint8_t> bytes) {
    try {
        Model::from_bytes(bytes);
    } catch (const ModelError& e) {
        return e;
    }
    FAIL("accepted a bad file");
    return ModelError(ModelError::Kind::Io, 0, "");
}

}  // namespace

TEST_CASE("a checksum-valid model that means nothing is refused as BadValue, naming the value") {
    const Model m = sample_model();
    const auto bytes = m.to_bytes();
    const uint32_t nan = 0x7fc00000u, inf = 0x7f800000u;
    // key nodes: u32 count 3, then {u32 offset, u32 length, f32 weight, u8 open_end}
    const auto key1 = le({3, 0, 16, bits(1.f)});
    const auto key3 = le({1200, 64, bits(2.f)});
    // threshold, then graph parameters: word size, feature bytes, max segment, …
    const auto tail = le({bits(2.25f), 8, 64, 2048});
    struct Case { const char* what; std::vector<uint8_t> b; const char* message; };
    const Case cases[] = {
        {"NaN key-node weight", patched(bytes, key1, le({3, 0, 16, nan})), "key node 1 (offset 0, length 16): weight not positive and finite"},
        // tester 11: an edited model whose key node votes against the bases it is found at
        {"negative key-node weight", patched(bytes, key1, le({3, 0, 16, bits(-1.f)})), "key node 1 (offset 0, length 16): weight not positive"},
        {"zero key-node weight", patched(bytes, key3, le({1200, 64, bits(0.f)})), "key node 3 (offset 1200, length 64): weight not positive"},
        {"huge key-node weight", patched(bytes, key3, le({1200, 64, bits(3.4e38f)})), "key node 3 (offset 1200, length 64): weight 3"},
        {"key node past any object", patched(bytes, key3, le({Model::kMaxObjectBytes, 64, bits(2.f)})), "key node 3"},
        {"key node of length 0", patched(bytes, key3, le({1200, 0, bits(2.f)})), "length outside 1..2047"},
        {"key node as long as max_segment", patched(bytes, key3, le({1200, 2048, bits(2.f)})), "length outside 1..2047"},
        {"NaN threshold", patched(bytes, tail, le({nan, 8, 64, 2048})), "threshold not finite"},
        // attacker 12: a threshold of 0 or below accepts every base with one vote
        {"zero threshold", patched(bytes, tail, le({bits(0.f), 8, 64, 2048})), "threshold 0 not positive"},
        {"negative threshold", patched(bytes, tail, le({bits(-1.f), 8, 64, 2048})), "threshold -1 not positive"},
        // attacker 13: std::to_string wrote −1e-45 as "-0.000000"
        {"negative denormal threshold", patched(bytes, tail, le({bits(-1e-45f), 8, 64, 2048})), "threshold -1e-45 not positive"},
        // attacker 13: a positive threshold a lone vote reaches is threshold 0 again (1e-45 … 1 gave
        // the same 127 false task_structs); the bound is the heaviest key node's weight, 2
        {"denormal threshold", patched(bytes, tail, le({bits(1e-45f), 8, 64, 2048})),
         "threshold 1e-45 at or below one key node's vote (weight 2): every base that key node voted for would be reported"},
        {"threshold of the lightest key node", patched(bytes, tail, le({bits(0.5f), 8, 64, 2048})), "threshold 0.5 at or below"},
        {"threshold of the heaviest key node", patched(bytes, tail, le({bits(2.f), 8, 64, 2048})), "threshold 2 at or below"},
        {"word size 5", patched(bytes, tail, le({bits(2.25f), 5, 64, 2048})), "graph word size 5 (expected 4 or 8)"},
        {"infinite weight", patched(bytes, le({bits(m.params.tensors[0](0, 0))}), le({inf})), "weights W1: non-finite value"},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        const ModelError e = error_of(c.b);
        CHECK(e.kind == ModelError::Kind::BadValue);
        CHECK(std::string(e.what()).find(c.message) != std::string::npos);
    }
    // The same checks guard what is written.
    Model bad = m;
    bad.threshold = 1.f;
    CHECK_THROWS_WITH_AS(bad.to_bytes(), doctest::Contains("threshold 1 at or below one key node's vote (weight 2)"), ModelError);
    bad = m;
    bad.key_nodes[0].weight = NAN;
    CHECK_THROWS_WITH_AS(bad.to_bytes(), doctest::Contains("weight not positive and finite"), ModelError);
    bad = m;
    bad.graph.word_size = 0;
    CHECK_THROWS_WITH_AS(bad.to_bytes(), doctest::Contains("word size 0"), ModelError);
    bad = m;
    bad.adam_state.v.tensors[3](0, 0) = INFINITY;
    CHECK_THROWS_WITH_AS(bad.to_bytes(), doctest::Contains("Adam second moment"), ModelError);
}

TEST_CASE("the threshold bound: one key node's lone vote, 0 for a model of one key node") {
    Model m = sample_model();   // weights 1, 0.5, 2
    CHECK(m.single_vote_bound() == 2.f);
    m.threshold = std::nextafter(2.f, INFINITY);   // two votes at least: accepted
    CHECK(Model::from_bytes(m.to_bytes()).threshold == m.threshold);
    // One key node (the shipped cred model): every object is one vote, any positive threshold.
    Model one = sample_model();
    one.config.classes = 2;
    one = Model::create(one.config, 5);
    one.object_type = "cred";
    one.graph.max_segment = 2048;
    one.key_nodes = {{160, 16, 1.f}};
    CHECK(one.single_vote_bound() == 0.f);
    one.threshold = 1e-45f;
    CHECK(Model::from_bytes(one.to_bytes()).threshold == 1e-45f);
}

// Every model shipped in data/models (and its subfolders) still loads under the rules above.
TEST_CASE("every shipped model loads") {
    const char* dir = std::getenv("DEEPMEM_MODELS");
    if (!dir) {
        MESSAGE("DEEPMEM_MODELS not set: shipped models not checked");
        return;
    }
    size_t n = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
        if (e.path().extension() != ".cereal") continue;
        const std::string path = e.path().string();
        INFO(path);
        Model m;
        CHECK_NOTHROW(m = Model::load(path));
        CHECK(m.threshold > m.single_vote_bound());
        ++n;
    }
    CHECK(n >= 13);   // 6 amd64, 6 i386, 1 multi-build
}

TEST_CASE("Model::save honours the umask and replaces a symlink instead of writing through it") {
    const auto dir = std::filesystem::temp_directory_path() / ("dm-engine-save-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const Model m = sample_model();
    const mode_t old = ::umask(027);
    m.save((dir / "a.dmm").string());
    ::umask(old);
    CHECK((std::filesystem::status(dir / "a.dmm").permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write | std::filesystem::perms::group_read));
    std::ofstream(dir / "victim") << "keep";
    std::filesystem::create_symlink(dir / "victim", dir / "b.dmm");
    m.save((dir / "b.dmm").string());
    CHECK(!std::filesystem::is_symlink(dir / "b.dmm"));
    std::ifstream v(dir / "victim");
    CHECK(std::string(std::istreambuf_iterator<char>(v), {}) == "keep");
    CHECK(Model::load((dir / "b.dmm").string()).to_bytes() == m.to_bytes());
    std::filesystem::remove_all(dir);
}

TEST_CASE("format 2 files (no kernel builds, no validation agreement) are still read") {
    Model m = sample_model();
    m.provenance.kernel_builds.clear();
    m.provenance.validation_objects = m.provenance.validation_agreeing = 0;
    auto b = m.to_bytes();
    // format 3 appends u32 build count + u64 objects + u64 agreeing to the payload of format 2,
    // format 4 a u32 vote window, format 5 an f32 threshold
    const Model l = Model::from_bytes(as_format(b, 2, 28));
    CHECK(l.provenance == m.provenance);
    CHECK(l.key_nodes == m.key_nodes);
    CHECK(l.params.tensors == m.params.tensors);
}

TEST_CASE("format 3 provenance that cannot be right is rejected") {
    Model m = sample_model();
    m.provenance.validation_agreeing = 121;   // more agreeing than measured
    CHECK_THROWS_AS(m.to_bytes(), ModelError);
    m = sample_model();
    m.provenance.kernel_builds.clear();
    m.provenance.validation_objects = m.provenance.validation_agreeing = 0;
    auto b = m.to_bytes();
    // the build count (28 bytes before the end) claims more builds than the payload holds
    const size_t at = b.size() - 28;
    b[at] = 0xff;
    b[at + 1] = 0x0f;
    CHECK(kind_of(rechecksum(b)) == ModelError::Kind::Truncated);
    b[at + 2] = 0x01;   // past the limit
    CHECK(kind_of(rechecksum(b)) == ModelError::Kind::BadShape);
    b = m.to_bytes();
    b[b.size() - 9] = 1;   // agreeing ≫ objects
    CHECK(kind_of(rechecksum(b)) == ModelError::Kind::BadConfig);
}

TEST_CASE("format 4: the vote window round-trips, format 3 files read as window 0, a huge window is refused") {
    Model m = sample_model();
    m.vote_window = 64;
    auto b = m.to_bytes();
    CHECK(Model::from_bytes(b).vote_window == 64);
    // the same payload without its last u32 and f32 (formats 4 and 5), marked format 3
    const Model l = Model::from_bytes(as_format(b, 3, 8));
    CHECK(l.vote_window == 0);
    CHECK(l.provenance == m.provenance);
    // a window past kMaxVoteWindow
    b[b.size() - 6] = 0x10;
    CHECK(kind_of(rechecksum(b)) == ModelError::Kind::BadValue);
    m.vote_window = Model::kMaxVoteWindow + 1;
    CHECK_THROWS_AS(m.to_bytes(), ModelError);
}

TEST_CASE("format 5: the threshold for dumps without the kernel image round-trips, format 4 files read 0, bad ones are refused") {
    Model m = sample_model();
    CHECK(Model::from_bytes(m.to_bytes()).image_absent_threshold == 0.f);
    m.image_absent_threshold = m.threshold / 2 + m.single_vote_bound() / 2;
    auto b = m.to_bytes();
    CHECK(b[8] == 5);
    CHECK(Model::from_bytes(b).image_absent_threshold == m.image_absent_threshold);
    // the same payload without its last f32, marked format 4
    const Model l = Model::from_bytes(as_format(b, 4, 4));
    CHECK(l.image_absent_threshold == 0.f);
    CHECK(l.vote_window == m.vote_window);
    // in a file: NaN, negative, and at or below one key node's vote (BadValue, named)
    for (float bad : {std::nanf(""), -1.f, m.single_vote_bound(), INFINITY}) {
        auto e = b;
        std::memcpy(e.data() + e.size() - 4, &bad, 4);
        CHECK(kind_of(rechecksum(e)) == ModelError::Kind::BadValue);
        m.image_absent_threshold = bad;
        CHECK_THROWS_WITH_AS(m.to_bytes(), doctest::Contains("threshold for dumps without the kernel image"), ModelError);
    }
}

// Issue #12 item 1: a joint model (several types, one network).
namespace {
Model joint_model() {
    Model m = sample_model();   // 3 key nodes: task_struct's first two, cred's the third
    m.object_type = "task_struct+cred";
    m.threshold = 0;
    m.provenance.validation_objects = m.provenance.validation_agreeing = 0;
    m.parts = {{"task_struct", 2, 1.25f, 1.1f, 32, 50, 49}, {"cred", 1, 0.5f, 0, 0, 10, 10}};
    return m;
}
}  // namespace

TEST_CASE("format 6: a joint model round-trips, splits into its type models, and its parts are held to the rules") {
    const Model j = joint_model();
    const auto b = j.to_bytes();
    CHECK(b[8] == 6);
    CHECK(sample_model().to_bytes()[8] == 5);   // a single-type model stays readable by older builds
    const Model l = Model::from_bytes(b);
    CHECK(l.parts == j.parts);
    CHECK(l.key_nodes == j.key_nodes);
    std::vector<uint32_t> first;
    const std::vector<Model> t = l.type_models(&first);
    REQUIRE(t.size() == 2);
    CHECK(first == std::vector<uint32_t>{1, 3});
    CHECK(t[0].object_type == "task_struct");
    CHECK(t[0].key_nodes == std::vector<KeyNode>(j.key_nodes.begin(), j.key_nodes.begin() + 2));
    CHECK(t[0].config.classes == 3);
    CHECK(t[0].threshold == 1.25f);
    CHECK(t[0].image_absent_threshold == 1.1f);
    CHECK(t[0].vote_window == 32);
    CHECK(t[0].provenance.validation_agreeing == 49);
    CHECK(t[0].params.tensors.empty());   // the network is the joint model's
    CHECK(t[1].key_nodes == std::vector<KeyNode>{j.key_nodes[2]});
    CHECK(t[1].single_vote_bound() == 0.f);   // one key node: every object is one vote
    CHECK(Model::type_class(3, first[1], 1) == 1);
    CHECK(Model::type_class(2, first[1], 1) == 0);   // task_struct's key node: no cred key node
    CHECK(Model::type_class(2, first[0], 2) == 2);
    CHECK(Model::type_class(0, first[0], 2) == 0);
    // a single-type model is its own type model
    CHECK(sample_model().type_models(&first).front().to_bytes() == sample_model().to_bytes());
    CHECK(first == std::vector<uint32_t>{1});

    auto refused = [](Model m, const char* what) {
        CHECK_THROWS_WITH_AS(m.validate(), doctest::Contains(what), ModelError);
    };
    Model m = joint_model();
    m.parts[1].key_count = 2;
    refused(m, "its parts have 4 key nodes, the table 3");
    m = joint_model();
    m.parts[1].object_type = "task_struct";
    refused(m, "two parts for task_struct");
    m = joint_model();
    m.object_type = "task_struct+file";
    refused(m, "joint model of task_struct+file: its parts are task_struct+cred");
    m = joint_model();
    m.parts[0].key_count = 0;
    m.parts[1].key_count = 3;
    refused(m, "part task_struct: no key node");
    m = joint_model();
    m.threshold = 2.25f;
    refused(m, "a threshold, vote window, base alignment or agreement of its own");
    m = joint_model();
    m.parts[0].threshold = 1.f;   // task_struct's heaviest key node alone (weight 1)
    refused(m, "task_struct: threshold 1 at or below one key node's vote");
    m = joint_model();
    m.parts[1].threshold = std::nanf("");
    refused(m, "cred: threshold not finite");
    m = joint_model();
    m.parts[0].validation_agreeing = 51;
    refused(m, "task_struct: validation agreement");
    // in a file: a parts count of 0 or past the bound
    for (uint32_t n : {0u, Model::kMaxParts + 1}) {
        auto e = b;
        const size_t at = e.size() - (4 + 2 * (4 + 4 + 4 + 4 + 4 + 8 + 8) + 11 + 4);   // the u32 before the parts
        e[at] = uint8_t(n);
        e[at + 1] = uint8_t(n >> 8);
        CHECK(kind_of(rechecksum(e)) == ModelError::Kind::BadShape);
    }
}

TEST_CASE("format 7: the base alignment (a model's, a joint model's parts') round-trips; without one the file stays 5 or 6; bad ones are refused") {
    Model m = sample_model();
    m.base_alignment = 64;
    auto b = m.to_bytes();
    CHECK(b[8] == 7);
    const Model l = Model::from_bytes(b);
    CHECK(l.base_alignment == 64);
    CHECK(l.parts.empty());
    CHECK(l.to_bytes() == b);
    // the same payload without the alignment and the parts count, marked format 5: alignment 0
    CHECK(Model::from_bytes(as_format(b, 5, 8)).base_alignment == 0);
    Model j = joint_model();
    CHECK(j.to_bytes()[8] == 6);
    j.parts[1].base_alignment = 64;
    const auto jb = j.to_bytes();
    CHECK(jb[8] == 7);
    const Model jl = Model::from_bytes(jb);
    CHECK(jl.parts == j.parts);
    CHECK(jl.type_models()[1].base_alignment == 64);
    CHECK(jl.type_models()[0].base_alignment == 0);
    // not a power of two, 1, the word size or less (filters nothing), past a page: refused in memory
    // and in a file (the u32 after the f32)
    REQUIRE(sample_model().graph.word_size == 8);
    for (uint32_t bad : {1u, 4u, 8u, 48u, 8192u}) {
        Model x = sample_model();
        x.base_alignment = bad;
        CHECK_THROWS_WITH_AS(x.to_bytes(), doctest::Contains("base alignment"), ModelError);
        auto e = b;
        std::memcpy(e.data() + e.size() - 8, &bad, 4);   // little endian here, as the archive
        CHECK(kind_of(rechecksum(e)) == ModelError::Kind::BadValue);
    }
    Model x = joint_model();
    x.base_alignment = 64;   // a joint model's own: each part has its own
    CHECK_THROWS_WITH_AS(x.validate(), doctest::Contains("base alignment"), ModelError);
    x = joint_model();
    x.parts[0].base_alignment = 3;
    CHECK_THROWS_WITH_AS(x.validate(), doctest::Contains("task_struct: base alignment 3"), ModelError);
}

TEST_CASE("format 8: key-node anchors round-trip; without them the file stays as before; bad ones are refused") {
    Model m = sample_model();
    REQUIRE(m.key_nodes.size() == 3);
    REQUIRE(!m.key_nodes[1].open_end);
    const auto plain = m.to_bytes();
    CHECK(plain[8] == 5);
    m.key_nodes[0].anchors = {{"se.run_node.rb_left", 0, std::string("tasks.next"), 0}, {"pushable_tasks.prio", 4, std::string(""), 0}};
    m.key_nodes[2].anchors = {{"comm[1]", 3, std::string("pid_links[2].next"), 8}};
    const auto b = m.to_bytes();
    CHECK(b[8] == 8);
    const Model l = Model::from_bytes(b);
    CHECK(l.key_nodes == m.key_nodes);
    CHECK(l.key_nodes[1].anchors.empty());
    CHECK(l.key_nodes[0].anchors[1].end == std::string(""));   // the struct's end
    CHECK(l.to_bytes() == b);
    // a format-7 payload (alignment, parts count) marked 8 reads the anchor counts after it: none
    Model a = sample_model();
    a.base_alignment = 64;
    const auto ab = a.to_bytes();
    CHECK(ab[8] == 7);
    a.key_nodes[1].anchors = {{"f_flags", 0, std::string("f_cred"), 0}};
    CHECK(Model::from_bytes(a.to_bytes()).base_alignment == 64);
    CHECK(Model::from_bytes(a.to_bytes()).key_nodes[1].anchors == a.key_nodes[1].anchors);
    struct Case { const char* what; std::vector<KeyAnchor> anchors; bool open_end; const char* message; };
    const Case cases[] = {
        {"no member", {{"", 0, std::string("x"), 0}}, false, "key node 2 (offset 24, length 8): anchor member path"},
        {"a path with a space", {{"se run", 0, std::string("x"), 0}}, false, "anchor member path not 1..512 characters"},
        {"a path with a newline", {{"a", 0, std::string("b\nc"), 0}}, false, "anchor member path"},
        {"a path too long", {{std::string(513, 'a'), 0, std::string("b"), 0}}, false, "anchor member path"},
        {"a delta past any object", {{"a", Model::kMaxObjectBytes, std::string("b"), 0}}, false, "anchor delta past 1048576 bytes"},
        {"no end for a fixed-length key node", {{"a", 0, std::nullopt, 0}}, false, "its anchor has no end"},
        {"an end for an open-ended one", {{"a", 0, std::string("b"), 0}}, true, "open-ended, yet its anchor has an end"},
        {"too many readings", std::vector<KeyAnchor>(KeyNode::kMaxAnchors + 1, KeyAnchor{"a", 0, std::string("b"), 0}), false, "17 anchors (at most 16)"},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        Model x = sample_model();
        x.key_nodes[1].anchors = c.anchors;
        x.key_nodes[1].open_end = c.open_end;
        CHECK_THROWS_WITH_AS(x.validate(), doctest::Contains(c.message), ModelError);
    }
    // in a file: the anchor count of key node 1 set past the bound, the checksum recomputed
    auto e = b;
    const std::string needle = "se.run_node.rb_left";
    const auto at = std::search(e.begin() + 32, e.end(), needle.begin(), needle.end());
    REQUIRE(at != e.end());
    const uint32_t many = 99;
    std::memcpy(&*(at - 8), &many, 4);   // the count precedes the first reading's u32 length
    CHECK(kind_of(rechecksum(e)) == ModelError::Kind::BadShape);
}

TEST_CASE("provenance: recalibrations are appended to the configuration text and read back in order") {
    Provenance p;
    p.training_config = "[data]\ntype = cred\n";
    CHECK(p.recalibrated_on().empty());
    p.add_recalibration("/d/a.json", "manifest_sha256 = 01\nwindows = 0");
    p.add_recalibration("/d/b.json", "manifest_sha256 = 02\nwindows = 0\nalignment = learned");
    CHECK(p.training_config ==
          "[data]\ntype = cred\n\n[recalibrated]\nmanifest = /d/a.json\nmanifest_sha256 = 01\nwindows = 0\n"
          "\n[recalibrated]\nmanifest = /d/b.json\nmanifest_sha256 = 02\nwindows = 0\nalignment = learned\n");
    CHECK(p.recalibrated_on() == std::vector<std::string>{"/d/a.json", "/d/b.json"});
    Model m = sample_model();
    m.provenance.add_recalibration("/d/c.json", "windows = 0");
    CHECK(Model::from_bytes(m.to_bytes()).provenance.recalibrated_on() == std::vector<std::string>{"/d/c.json"});
}
