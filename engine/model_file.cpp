// The model file (engine.hpp): fixed header + cereal portable-binary payload. The loader checks
// the header and checksum before parsing, and every length read from the payload against the
// bytes that remain before allocating, so no input can make it crash or allocate without bound.
#include "engine/engine.hpp"
#include "graph/file_io.hpp"

#include <cereal/archives/portable_binary.hpp>

#include <algorithm>
#include <cctype>
#include <string_view>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <istream>
#include <ostream>
#include <sstream>
#include <streambuf>

namespace deepmem {

namespace {

// The shortest text that reads back as `f` (std::to_string wrote −1e-45 as "-0.000000").
std::string shortest(float f) {
    char b[32];
    const auto r = std::to_chars(b, b + sizeof b, f);
    return std::string(b, r.ptr);
}

constexpr char kMagic[8] = {'D', 'M', 'M', 'O', 'D', 'E', 'L', '\0'};
constexpr size_t kHeaderBytes = 32;   // magic, u32 version, u32 flags, u64 payload bytes, u64 checksum
constexpr uint32_t kMaxString = 1u << 16;
constexpr uint32_t kMaxBuilds = 4096;

using Kind = ModelError::Kind;

// ---- writing ---------------------------------------------------------------------------------
struct Writer {
    cereal::PortableBinaryOutputArchive& ar;
    void u8(uint8_t v) { ar(v); }
    void u32(uint32_t v) { ar(v); }
    void u64(uint64_t v) { ar(v); }
    void f32(float v) { ar(v); }
    void str(const std::string& s) {
        u32(uint32_t(s.size()));
        for (char c : s) ar(static_cast<uint8_t>(c));
    }
    void layers(const std::vector<LayerSpec>& ls) {
        u32(uint32_t(ls.size()));
        for (const auto& l : ls) { u32(l.width); u8(uint8_t(l.activation)); }
    }
    void params(const Params<float>& p) {
        u32(uint32_t(p.tensors.size()));
        for (const auto& t : p.tensors) {
            u32(uint32_t(t.rows()));
            u32(uint32_t(t.cols()));
            for (Eigen::Index i = 0; i < t.size(); ++i) f32(t.data()[i]);
        }
    }
};

// ---- reading ---------------------------------------------------------------------------------
struct SpanBuf : std::streambuf {
    SpanBuf(const uint8_t* p, size_t n) {
        char* c = const_cast<char*>(reinterpret_cast<const char*>(p));
        setg(c, c, c + n);
    }
    uint64_t remaining() const { return uint64_t(egptr() - gptr()); }
    uint64_t consumed() const { return uint64_t(gptr() - eback()); }
};

struct Reader {
    SpanBuf& buf;
    cereal::PortableBinaryInputArchive& ar;
    uint64_t base;   // file offset of the payload start, for error messages

    uint64_t offset() const { return base + buf.consumed(); }
    [[noreturn]] void fail(Kind k, const std::string& what) const { throw ModelError(k, offset(), what); }
    void need(uint64_t bytes, const char* what) const {
        if (bytes > buf.remaining())
            fail(Kind::Truncated, std::string(what) + " needs " + std::to_string(bytes) + " bytes, " +
                                      std::to_string(buf.remaining()) + " remain");
    }
    template <class T> T get(const char* what) {
        need(sizeof(T), what);
        T v{};
        ar(v);
        return v;
    }
    uint8_t u8(const char* w) { return get<uint8_t>(w); }
    uint32_t u32(const char* w) { return get<uint32_t>(w); }
    uint64_t u64(const char* w) { return get<uint64_t>(w); }
    float f32(const char* w) { return get<float>(w); }
    std::string str(const char* what) {
        const uint32_t n = u32(what);
        if (n > kMaxString) fail(Kind::BadShape, std::string(what) + ": string of " + std::to_string(n) + " bytes");
        need(n, what);
        std::string s(n, '\0');
        for (auto& c : s) c = static_cast<char>(u8(what));
        return s;
    }
    std::vector<LayerSpec> layers(const char* what) {
        const uint32_t n = u32(what);
        if (n > ModelConfig::kMaxLayers) fail(Kind::BadConfig, std::string(what) + ": " + std::to_string(n) + " layers");
        std::vector<LayerSpec> ls(n);
        for (auto& l : ls) {
            l.width = u32(what);
            const uint8_t a = u8(what);
            if (a > uint8_t(Activation::Relu)) fail(Kind::BadConfig, std::string(what) + ": unknown activation");
            l.activation = Activation(a);
        }
        return ls;
    }
    // Shapes come from the (already validated) config; the file must agree before anything is allocated.
    Params<float> params(const ModelConfig& cfg, const char* what) {
        const auto shapes = parameter_shapes(cfg);
        const auto names = parameter_names(cfg);
        uint64_t total = 0;
        for (auto [r, c] : shapes) total += uint64_t(r) * c;
        need(total * sizeof(float), what);
        const uint32_t n = u32(what);
        if (n != shapes.size())
            fail(Kind::BadShape, std::string(what) + ": " + std::to_string(n) + " tensors, config implies " +
                                     std::to_string(shapes.size()));
        Params<float> p;
        p.sigma_depth = uint32_t(cfg.sigma.size());
        p.classifier_depth = uint32_t(cfg.classifier_hidden.size() + 1);
        for (size_t i = 0; i < n; ++i) {
            const uint32_t r = u32(what), c = u32(what);
            if (r != shapes[i].first || c != shapes[i].second)
                fail(Kind::BadShape, std::string(what) + " " + names[i] + " is " + std::to_string(r) + "×" +
                                         std::to_string(c) + ", config implies " + std::to_string(shapes[i].first) +
                                         "×" + std::to_string(shapes[i].second));
            need(uint64_t(r) * c * sizeof(float), what);
            Mat<float> t(r, c);
            for (Eigen::Index e = 0; e < t.size(); ++e) {
                const float v = f32(what);
                if (!std::isfinite(v)) fail(Kind::BadValue, std::string(what) + " " + names[i] + ": non-finite value");
                t.data()[e] = v;
            }
            p.tensors.push_back(std::move(t));
        }
        return p;
    }
};

void check_shapes(const ModelConfig& cfg, const Params<float>& p, const char* what) {
    const auto shapes = parameter_shapes(cfg);
    if (p.tensors.size() != shapes.size())
        throw ModelError(Kind::BadShape, 0, std::string(what) + ": tensor count ≠ config");
    for (size_t i = 0; i < shapes.size(); ++i)
        if (p.tensors[i].rows() != shapes[i].first || p.tensors[i].cols() != shapes[i].second)
            throw ModelError(Kind::BadShape, 0, std::string(what) + " " + parameter_names(cfg)[i] + ": shape ≠ config");
}

void put_u32(uint8_t* p, uint32_t v) { for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i)); }
void put_u64(uint8_t* p, uint64_t v) { for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i)); }
uint32_t get_u32(const uint8_t* p) { uint32_t v = 0; for (int i = 0; i < 4; ++i) v |= uint32_t(p[i]) << (8 * i); return v; }
uint64_t get_u64(const uint8_t* p) { uint64_t v = 0; for (int i = 0; i < 8; ++i) v |= uint64_t(p[i]) << (8 * i); return v; }

}  // namespace

uint64_t fnv1a64(std::span<const uint8_t> bytes) noexcept {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
    return h;
}

Model Model::create(const ModelConfig& cfg, uint64_t seed) {
    Model m;
    m.config = cfg;
    m.params = Params<float>::init(cfg, seed);
    m.adam_state.m = Params<float>::zeros(cfg);
    m.adam_state.v = Params<float>::zeros(cfg);
    m.key_nodes.resize(cfg.classes - 1);
    m.provenance.seed = seed;
    return m;
}

namespace {
}  // namespace

bool is_object_type_name(std::string_view s) noexcept {
    if (s.empty() || s.size() > 256 || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

namespace {

// Part i of a joint model as a type model (Model::type_models) without its provenance but the
// validation agreement; `first` receives the joint class of its first key node.
Model part_model(const Model& j, size_t i, uint32_t* first = nullptr) {
    uint64_t from = 0;
    for (size_t k = 0; k < i; ++k) from += j.parts[k].key_count;
    const TypePart& t = j.parts[i];
    Model m;
    m.config = j.config;
    m.config.classes = t.key_count + 1;
    m.adam = j.adam;
    m.object_type = t.object_type;
    const uint64_t a = std::min<uint64_t>(from, j.key_nodes.size()), b = std::min<uint64_t>(from + t.key_count, j.key_nodes.size());
    m.key_nodes.assign(j.key_nodes.begin() + ptrdiff_t(a), j.key_nodes.begin() + ptrdiff_t(b));
    m.threshold = t.threshold;
    m.vote_window = t.vote_window;
    m.image_absent_threshold = t.image_absent_threshold;
    m.base_alignment = t.base_alignment;
    m.graph = j.graph;
    m.provenance.validation_objects = t.validation_objects;
    m.provenance.validation_agreeing = t.validation_agreeing;
    if (first) *first = uint32_t(from + 1);
    return m;
}
}  // namespace

void Model::validate() const {
    config.validate();
    check_shapes(config, params, "weights");
    const bool moments = !adam_state.m.tensors.empty() || !adam_state.v.tensors.empty();
    if (moments) {
        check_shapes(config, adam_state.m, "Adam first moment");
        check_shapes(config, adam_state.v, "Adam second moment");
    }
    if (!class_weights.empty() && class_weights.size() != config.classes)
        throw ModelError(Kind::BadShape, 0, "class weights: " + std::to_string(class_weights.size()) + " ≠ classes " +
                                                std::to_string(config.classes));
    for (float w : class_weights)
        if (!(w >= 0.f) || !std::isfinite(w)) throw ModelError(Kind::BadConfig, 0, "class weight negative or not finite");
    if (key_nodes.size() + 1 != config.classes)
        throw ModelError(Kind::BadShape, 0, "key-node table has " + std::to_string(key_nodes.size()) +
                                                " entries, classes − 1 = " + std::to_string(config.classes - 1));
    for (const std::string* s : {&object_type, &provenance.dataset_manifest_sha256, &provenance.kernel_build,
                                 &provenance.date, &provenance.training_config})
        if (s->size() > kMaxString) throw ModelError(Kind::BadConfig, 0, "string longer than 64 KiB");
    if (provenance.kernel_builds.size() > kMaxBuilds)
        throw ModelError(Kind::BadConfig, 0, std::to_string(provenance.kernel_builds.size()) + " kernel builds (at most " +
                                                 std::to_string(kMaxBuilds) + ")");
    for (const KernelBuild& b : provenance.kernel_builds)
        if (b.release.size() > kMaxString || b.banner.size() > kMaxString)
            throw ModelError(Kind::BadConfig, 0, "string longer than 64 KiB");

    // Meaning: what a checksum cannot vouch for.
    auto bad = [](const std::string& what) { throw ModelError(Kind::BadValue, 0, what); };
    const auto names = parameter_names(config);
    auto finite = [&](const Params<float>& p, const char* what) {
        for (size_t i = 0; i < p.tensors.size(); ++i)
            if (!p.tensors[i].allFinite()) bad(std::string(what) + " " + names[i] + ": non-finite value");
    };
    finite(params, "weights");
    if (moments) {
        finite(adam_state.m, "Adam first moment");
        finite(adam_state.v, "Adam second moment");
    }
    for (float f : {adam.lr, adam.beta1, adam.beta2, adam.eps, adam.weight_decay, adam.clip_norm})
        if (!std::isfinite(f)) bad("Adam configuration: non-finite value");
    if (graph.word_size != 4 && graph.word_size != 8)
        bad("graph word size " + std::to_string(graph.word_size) + " (expected 4 or 8)");
    if (!joint()) return validate_detection(*this);
    if (parts.size() > kMaxParts)
        throw ModelError(Kind::BadConfig, 0, std::to_string(parts.size()) + " object types (at most " + std::to_string(kMaxParts) + ")");
    std::string joined;
    uint64_t keys = 0;
    for (const TypePart& t : parts) {
        for (const TypePart& u : parts)
            if (&u != &t && u.object_type == t.object_type)
                throw ModelError(Kind::BadConfig, 0, "joint model: two parts for " + t.object_type);
        if (t.key_count == 0) throw ModelError(Kind::BadConfig, 0, "joint model part " + t.object_type + ": no key node");
        joined += (joined.empty() ? "" : "+") + t.object_type;
        keys += t.key_count;
    }
    if (joined != object_type)
        throw ModelError(Kind::BadConfig, 0, "joint model of " + object_type + ": its parts are " + joined);
    // Each of its type models carries the provenance (Model::type_models): bounded, so that no file
    // makes the detector hold many copies of a large one.
    uint64_t provenance_bytes = provenance.dataset_manifest_sha256.size() + provenance.kernel_build.size() +
                                provenance.date.size() + provenance.training_config.size();
    for (const KernelBuild& b : provenance.kernel_builds) provenance_bytes += b.release.size() + b.banner.size();
    if (provenance_bytes * parts.size() > kMaxJointProvenance)
        throw ModelError(Kind::BadConfig, 0, "joint model: its provenance (" + std::to_string(provenance_bytes) + " bytes) times its " +
                                                 std::to_string(parts.size()) + " types is over " +
                                                 std::to_string(kMaxJointProvenance >> 20) + " MiB");
    if (keys != key_nodes.size())
        throw ModelError(Kind::BadShape, 0, "joint model: its parts have " + std::to_string(keys) + " key nodes, the table " +
                                                std::to_string(key_nodes.size()));
    if (threshold != 0 || image_absent_threshold != 0 || vote_window != 0 || base_alignment != 0 ||
        provenance.validation_objects || provenance.validation_agreeing)
        bad("joint model: a threshold, vote window, base alignment or agreement of its own (each part has its own; expected 0)");
    for (size_t i = 0; i < parts.size(); ++i) {   // each part as its type model, without a copy of the provenance
        Model m = part_model(*this, i);           // (attacker 20: 256 copies of a 4 MB provenance took 1 GB)
        try {
            validate_detection(m);
        } catch (const ModelError& e) {
            throw e.naming(m.object_type);
        }
    }
}

void Model::validate_detection(const Model& m) {
    if (!is_object_type_name(m.object_type))
        throw ModelError(Kind::BadConfig, 0, "object type '" + m.object_type.substr(0, 64) +
                                                 "' is not a C identifier of at most 256 characters (a kernel struct's name)");
    const float threshold = m.threshold, image_absent_threshold = m.image_absent_threshold;
    const std::vector<KeyNode>& key_nodes = m.key_nodes;
    if (m.provenance.validation_agreeing > m.provenance.validation_objects)
        throw ModelError(Kind::BadConfig, 0, "validation agreement: " + std::to_string(m.provenance.validation_agreeing) +
                                                 " agreeing of " + std::to_string(m.provenance.validation_objects) + " objects");
    auto bad = [](const std::string& what) { throw ModelError(Kind::BadValue, 0, what); };
    if (!std::isfinite(threshold)) bad("threshold not finite");
    // Scores are sums of positive key-node weights: a threshold at or below 0 passes every base any
    // node voted for (attacker 12: threshold 0 or −1 gave 127 false task_structs on the dev dump).
    if (!(threshold > 0)) bad("threshold " + shortest(threshold) + " not positive");
    if (m.vote_window > kMaxVoteWindow)
        bad("vote window " + std::to_string(m.vote_window) + " bytes (at most " + std::to_string(kMaxVoteWindow) + ")");
    // Every base is word-aligned already: an alignment of a word or less filters nothing (0 says so).
    if (const uint32_t a = m.base_alignment; a != 0 && (a <= m.graph.word_size || a > kMaxBaseAlignment || (a & (a - 1)) != 0))
        bad("base alignment " + std::to_string(a) + " bytes (0, or a power of two above the " +
            std::to_string(m.graph.word_size) + "-byte word, at most " + std::to_string(kMaxBaseAlignment) + ")");
    for (size_t i = 0; i < key_nodes.size(); ++i) {
        const KeyNode& k = key_nodes[i];
        const std::string which = "key node " + std::to_string(i + 1) + " (offset " + std::to_string(k.offset) +
                                  ", length " + std::to_string(k.length) + ")";
        // A vote adds its key node's weight to a base (detect/votes.hpp): training gives each its
        // label's frequency, in (0, 1]; zero or negative weights (an edited model) would let a
        // node's vote take a base's score down, and the votes' bound needs them positive.
        if (!(k.weight > 0.f) || !std::isfinite(k.weight)) bad(which + ": weight not positive and finite");
        if (k.weight > kMaxKeyWeight)   // a base's score sums them: kept finite (tester 12: 3.4e38 gave "score":inf)
            bad(which + ": weight " + std::to_string(k.weight) + " above " + std::to_string(int(kMaxKeyWeight)));
        if (k.length == 0 || k.length >= m.graph.max_segment)   // no segment is max_segment long
            bad(which + ": length outside 1.." + std::to_string(m.graph.max_segment - 1) + " (graph max segment)");
        if (uint64_t(k.offset) + k.length > kMaxObjectBytes)
            bad(which + ": ends past " + std::to_string(kMaxObjectBytes) + " bytes, outside any object");
        if (k.anchors.size() > KeyNode::kMaxAnchors)
            bad(which + ": " + std::to_string(k.anchors.size()) + " anchors (at most " + std::to_string(KeyNode::kMaxAnchors) + ")");
        for (const KeyAnchor& a : k.anchors) {
            auto path = [](const std::string& p, bool end) {
                if (p.empty()) return end;   // "" ends at the struct's end; no member is nameless
                return p.size() <= kMaxAnchorPath && std::all_of(p.begin(), p.end(), [](char c) {
                           return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '[' || c == ']';
                       });
            };
            if (!path(a.start, false) || (a.end && !path(*a.end, true)))
                bad(which + ": anchor member path not 1.." + std::to_string(kMaxAnchorPath) + " characters of [A-Za-z0-9_.[]]");
            if (a.start_delta >= kMaxObjectBytes || a.end_delta >= kMaxObjectBytes)
                bad(which + ": anchor delta past " + std::to_string(kMaxObjectBytes) + " bytes");
            if (a.end.has_value() == k.open_end)
                bad(which + (k.open_end ? ": open-ended, yet its anchor has an end" : ": its anchor has no end"));
        }
    }
    // … and at or below one key node's weight, that node's lone votes pass (attacker 13: 1e-45 to 1
    // gave the same 127). Checked after the weights, which it reads.
    if (const float bound = m.single_vote_bound(); !(threshold > bound))
        bad("threshold " + shortest(threshold) + " at or below one key node's vote (weight " + shortest(bound) +
            "): every base that key node voted for would be reported");
    // The threshold for dumps without the kernel image: none (0), or one that passes the same rules.
    if (image_absent_threshold != 0.f) {
        const std::string t = "threshold for dumps without the kernel image " + shortest(image_absent_threshold);
        if (!std::isfinite(image_absent_threshold) || !(image_absent_threshold > 0)) bad(t + " not positive and finite");
        if (const float bound = m.single_vote_bound(); !(image_absent_threshold > bound))
            bad(t + " at or below one key node's vote (weight " + shortest(bound) + ")");
    }
}


std::vector<Model> Model::type_models(std::vector<uint32_t>* first_class) const {
    if (first_class) first_class->clear();
    if (!joint()) {
        if (first_class) first_class->push_back(1);
        return {*this};
    }
    std::vector<Model> out;
    for (size_t i = 0; i < parts.size(); ++i) {
        uint32_t first = 0;
        Model m = part_model(*this, i, &first);
        const uint64_t objects = m.provenance.validation_objects, agreeing = m.provenance.validation_agreeing;
        m.provenance = provenance;   // parts × provenance ≤ kMaxJointProvenance (validate)
        m.provenance.validation_objects = objects;
        m.provenance.validation_agreeing = agreeing;
        if (first_class) first_class->push_back(first);
        out.push_back(std::move(m));
    }
    return out;
}

size_t Model::anchored_key_nodes() const noexcept {
    return size_t(std::count_if(key_nodes.begin(), key_nodes.end(), [](const KeyNode& k) { return !k.anchors.empty(); }));
}

std::string KeyNode::text() const {
    return std::to_string(offset) + "/" + std::to_string(length) + (open_end ? "+/" : "/") + shortest(weight);
}

float Model::single_vote_bound() const noexcept {
    if (key_nodes.size() < 2) return 0.f;
    float bound = 0.f;
    for (const KeyNode& k : key_nodes) bound = std::max(bound, k.weight);
    return bound;
}

std::vector<uint8_t> Model::to_bytes() const {
    validate();
    bool aligned = base_alignment != 0;
    for (const TypePart& t : parts) aligned = aligned || t.base_alignment != 0;
    const uint32_t format = anchored_key_nodes() ? 8 : aligned ? 7 : joint() ? 6 : 5;   // older builds read 5, 6 and 7
    std::ostringstream os(std::ios::binary);
    {
        cereal::PortableBinaryOutputArchive ar(os);
        Writer w{ar};
        w.u32(config.input_width);
        w.u32(config.embed_width);
        w.u32(config.iterations);
        w.u32(config.classes);
        w.f32(config.keep_prob);
        w.layers(config.sigma);
        w.layers(config.classifier_hidden);
        for (float f : {adam.lr, adam.beta1, adam.beta2, adam.eps, adam.weight_decay, adam.clip_norm}) w.f32(f);
        w.params(params);
        w.u64(adam_state.step);
        const bool moments = !adam_state.m.tensors.empty();
        w.u8(moments);
        if (moments) { w.params(adam_state.m); w.params(adam_state.v); }
        w.u32(uint32_t(class_weights.size()));
        for (float f : class_weights) w.f32(f);
        w.str(object_type);
        w.u32(uint32_t(key_nodes.size()));
        for (const auto& k : key_nodes) { w.u32(k.offset); w.u32(k.length); w.f32(k.weight); w.u8(k.open_end); }
        w.f32(threshold);
        for (uint32_t v : {graph.word_size, graph.feature_bytes, graph.max_segment, graph.neighbour_distance,
                           graph.pointer_target_back})
            w.u32(v);
        w.str(provenance.dataset_manifest_sha256);
        w.str(provenance.kernel_build);
        w.str(provenance.date);
        w.u64(provenance.seed);
        w.str(provenance.training_config);
        w.u32(uint32_t(provenance.kernel_builds.size()));
        for (const KernelBuild& b : provenance.kernel_builds) { w.str(b.release); w.str(b.banner); }
        w.u64(provenance.validation_objects);
        w.u64(provenance.validation_agreeing);
        w.u32(vote_window);
        w.f32(image_absent_threshold);
        if (format >= 7) {
            w.u32(base_alignment);
            w.u32(uint32_t(parts.size()));
        }
        if (joint()) {
            if (format < 7) w.u32(uint32_t(parts.size()));   // format 7 wrote it above
            for (const TypePart& t : parts) {
                w.str(t.object_type);
                w.u32(t.key_count);
                w.f32(t.threshold);
                w.f32(t.image_absent_threshold);
                w.u32(t.vote_window);
                w.u64(t.validation_objects);
                w.u64(t.validation_agreeing);
                if (format >= 7) w.u32(t.base_alignment);
            }
        }
        if (format >= 8)
            for (const KeyNode& k : key_nodes) {
                w.u32(uint32_t(k.anchors.size()));
                for (const KeyAnchor& a : k.anchors) {
                    w.str(a.start);
                    w.u32(a.start_delta);
                    w.u8(a.end.has_value());
                    if (a.end) { w.str(*a.end); w.u32(a.end_delta); }
                }
            }
    }
    const std::string payload = os.str();
    std::vector<uint8_t> out(kHeaderBytes + payload.size());
    std::memcpy(out.data(), kMagic, 8);
    put_u32(out.data() + 8, format);
    put_u32(out.data() + 12, 0);
    put_u64(out.data() + 16, payload.size());
    std::memcpy(out.data() + kHeaderBytes, payload.data(), payload.size());
    put_u64(out.data() + 24, fnv1a64({out.data() + kHeaderBytes, payload.size()}));
    return out;
}

namespace {
constexpr std::string_view kRecalibrated = "\n[recalibrated]\nmanifest = ";
}

void Provenance::add_recalibration(const std::string& manifest, const std::string& details) {
    training_config += std::string(kRecalibrated) + manifest + "\n" + details + "\n";
}

std::vector<std::string> Provenance::recalibrated_on() const {
    std::vector<std::string> out;
    for (size_t at = training_config.find(kRecalibrated); at != std::string::npos; at = training_config.find(kRecalibrated, at)) {
        at += kRecalibrated.size();
        out.push_back(training_config.substr(at, training_config.find('\n', at) - at));
    }
    return out;
}

Model Model::from_bytes(std::span<const uint8_t> bytes) {
    if (bytes.size() < kHeaderBytes)
        throw ModelError(Kind::Truncated, bytes.size(), "header needs 32 bytes, file has " + std::to_string(bytes.size()));
    if (std::memcmp(bytes.data(), kMagic, 8) != 0) throw ModelError(Kind::BadMagic, 0, "not a deepmem model file");
    const uint32_t version = get_u32(bytes.data() + 8);
    if (version < kOldestFormatVersion || version > kFormatVersion)
        throw ModelError(Kind::BadVersion, 8, "format version " + std::to_string(version) + ", this build reads " +
                                                  std::to_string(kOldestFormatVersion) + " to " +
                                                  std::to_string(kFormatVersion));
    if (get_u32(bytes.data() + 12) != 0) throw ModelError(Kind::BadVersion, 12, "unknown flags");
    const uint64_t len = get_u64(bytes.data() + 16);
    if (len != bytes.size() - kHeaderBytes)
        throw ModelError(len > bytes.size() - kHeaderBytes ? Kind::Truncated : Kind::BadShape, 16,
                         "payload length " + std::to_string(len) + " ≠ " + std::to_string(bytes.size() - kHeaderBytes) +
                             " bytes after the header");
    const auto payload = bytes.subspan(kHeaderBytes);
    if (fnv1a64(payload) != get_u64(bytes.data() + 24))
        throw ModelError(Kind::BadChecksum, 24, "payload checksum mismatch (file corrupted)");

    SpanBuf buf(payload.data(), payload.size());
    std::istream is(&buf);
    Model m;
    try {
        if (payload.empty()) throw ModelError(Kind::Truncated, kHeaderBytes, "empty payload");
        cereal::PortableBinaryInputArchive ar(is);   // reads its 1-byte endianness tag
        Reader r{buf, ar, kHeaderBytes};
        ModelConfig& c = m.config;
        c.input_width = r.u32("input width");
        c.embed_width = r.u32("embedding width");
        c.iterations = r.u32("iterations");
        c.classes = r.u32("classes");
        c.keep_prob = r.f32("keep probability");
        c.sigma = r.layers("sigma layers");
        c.classifier_hidden = r.layers("classifier layers");
        c.validate();
        for (float* f : {&m.adam.lr, &m.adam.beta1, &m.adam.beta2, &m.adam.eps, &m.adam.weight_decay, &m.adam.clip_norm})
            *f = r.f32("Adam config");
        m.params = r.params(c, "weights");
        m.adam_state.step = r.u64("Adam step");
        const uint8_t moments = r.u8("Adam moments flag");
        if (moments > 1) r.fail(Kind::BadShape, "Adam moments flag not 0/1");
        if (moments) {
            m.adam_state.m = r.params(c, "Adam first moment");
            m.adam_state.v = r.params(c, "Adam second moment");
        }
        const uint32_t ncw = r.u32("class weights");
        if (ncw != 0 && ncw != c.classes) r.fail(Kind::BadShape, "class weights ≠ classes");
        r.need(uint64_t(ncw) * 4, "class weights");
        for (uint32_t i = 0; i < ncw; ++i) m.class_weights.push_back(r.f32("class weights"));
        m.object_type = r.str("object type");
        const uint32_t nk = r.u32("key nodes");
        if (uint64_t(nk) + 1 != c.classes) r.fail(Kind::BadShape, "key-node table size ≠ classes − 1");
        r.need(uint64_t(nk) * 13, "key nodes");
        for (uint32_t i = 0; i < nk; ++i) {
            KeyNode k;
            k.offset = r.u32("key node");
            k.length = r.u32("key node");
            k.weight = r.f32("key node");
            const uint8_t open = r.u8("key node");
            if (open > 1) r.fail(Kind::BadShape, "key node open_end flag " + std::to_string(open) + " (expected 0 or 1)");
            k.open_end = open;
            m.key_nodes.push_back(k);
        }
        m.threshold = r.f32("threshold");
        for (uint32_t* v : {&m.graph.word_size, &m.graph.feature_bytes, &m.graph.max_segment,
                            &m.graph.neighbour_distance, &m.graph.pointer_target_back})
            *v = r.u32("graph parameters");
        m.provenance.dataset_manifest_sha256 = r.str("dataset manifest hash");
        m.provenance.kernel_build = r.str("kernel build");
        m.provenance.date = r.str("date");
        m.provenance.seed = r.u64("seed");
        m.provenance.training_config = r.str("training configuration");
        if (version >= 3) {
            const uint32_t nb = r.u32("kernel builds");
            if (nb > kMaxBuilds) r.fail(Kind::BadShape, std::to_string(nb) + " kernel builds");
            r.need(uint64_t(nb) * 8, "kernel builds");
            for (uint32_t i = 0; i < nb; ++i) {
                KernelBuild b;
                b.release = r.str("kernel build release");
                b.banner = r.str("kernel build banner");
                m.provenance.kernel_builds.push_back(std::move(b));
            }
            m.provenance.validation_objects = r.u64("validation agreement");
            m.provenance.validation_agreeing = r.u64("validation agreement");
        }
        if (version >= 4) m.vote_window = r.u32("vote window");
        if (version >= 5) m.image_absent_threshold = r.f32("threshold for dumps without the kernel image");
        uint32_t np = 0;
        if (version >= 7) {
            m.base_alignment = r.u32("base alignment");
            np = r.u32("joint model parts");
            if (np > kMaxParts)
                r.fail(Kind::BadShape, std::to_string(np) + " joint model parts (0.." + std::to_string(kMaxParts) + ")");
        } else if (version == 6) {
            np = r.u32("joint model parts");
            if (np == 0 || np > kMaxParts)
                r.fail(Kind::BadShape, std::to_string(np) + " joint model parts (1.." + std::to_string(kMaxParts) + ")");
        }
        if (np > 0) {
            r.need(uint64_t(np) * (version >= 7 ? 40 : 36), "joint model parts");
            for (uint32_t i = 0; i < np; ++i) {
                TypePart t;
                t.object_type = r.str("joint model part type");
                t.key_count = r.u32("joint model part");
                t.threshold = r.f32("joint model part");
                t.image_absent_threshold = r.f32("joint model part");
                t.vote_window = r.u32("joint model part");
                t.validation_objects = r.u64("joint model part");
                t.validation_agreeing = r.u64("joint model part");
                if (version >= 7) t.base_alignment = r.u32("joint model part");
                m.parts.push_back(std::move(t));
            }
        }
        if (version >= 8)
            for (KeyNode& k : m.key_nodes) {
                const uint32_t n = r.u32("key-node anchors");
                if (n > KeyNode::kMaxAnchors)
                    r.fail(Kind::BadShape, std::to_string(n) + " anchors of a key node (at most " + std::to_string(KeyNode::kMaxAnchors) + ")");
                for (uint32_t j = 0; j < n; ++j) {
                    KeyAnchor a;
                    a.start = r.str("key-node anchor");
                    a.start_delta = r.u32("key-node anchor");
                    const uint8_t end = r.u8("key-node anchor");
                    if (end > 1) r.fail(Kind::BadShape, "key-node anchor end flag " + std::to_string(end) + " (expected 0 or 1)");
                    if (end) {
                        a.end = r.str("key-node anchor");
                        a.end_delta = r.u32("key-node anchor");
                    }
                    k.anchors.push_back(std::move(a));
                }
            }
        if (buf.remaining() != 0)
            r.fail(Kind::BadShape, std::to_string(buf.remaining()) + " unexpected bytes after the payload");
    } catch (const cereal::Exception& e) {
        throw ModelError(Kind::Truncated, kHeaderBytes + buf.consumed(), e.what());
    }
    m.validate();
    return m;
}

void Model::save(const std::string& path) const {
    const std::vector<uint8_t> bytes = to_bytes();
    try {
        write_file_atomically(path, {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    } catch (const InputError& e) {
        throw ModelError(Kind::Io, 0, e.what());
    }
}

Model Model::load(const std::string& path, uint64_t* checksum) {
    std::vector<uint8_t> bytes;
    try {
        bytes = read_whole_file(path, "model");   // a FIFO or device is refused, not read
    } catch (const InputError& e) {
        throw ModelError(Kind::Io, 0, e.what());
    }
    try {
        Model m = from_bytes(bytes);   // the header's 32 bytes are there once it parsed
        if (checksum) *checksum = get_u64(bytes.data() + 24);
        return m;
    } catch (const ModelError& e) {   // the file's name in the message (newcomer 18: "model bad magic: …", which file?)
        throw e.naming(path);
    }
}

}  // namespace deepmem
