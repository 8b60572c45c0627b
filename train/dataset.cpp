// Dataset side of training: manifest, graphs of labeled dumps, node labels, key nodes
// (contract: train/trainer.hpp).
#include "train/trainer.hpp"

#include "graph/layers.hpp"
#include "graph/text_lines.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>

namespace deepmem {

namespace fs = std::filesystem;

// ---- SHA-256 (FIPS 180-4), for the manifest's provenance hash -------------------------------
std::string sha256_hex(std::span<const uint8_t> data) {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    std::array<uint32_t, 8> h{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    auto rotr = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
    std::vector<uint8_t> msg(data.begin(), data.end());
    const uint64_t bits = uint64_t(data.size()) * 8;
    msg.push_back(0x80);
    while (msg.size() % 64 != 56) msg.push_back(0);
    for (int i = 7; i >= 0; --i) msg.push_back(uint8_t(bits >> (8 * i)));
    for (size_t blk = 0; blk < msg.size(); blk += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = uint32_t(msg[blk + 4 * i]) << 24 | uint32_t(msg[blk + 4 * i + 1]) << 16 |
                   uint32_t(msg[blk + 4 * i + 2]) << 8 | uint32_t(msg[blk + 4 * i + 3]);
        for (int i = 16; i < 64; ++i) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        auto [a, b, c, d, e, f, g, hh] = h;
        for (int i = 0; i < 64; ++i) {
            uint32_t t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        for (int i = 0; i < 8; ++i) h[size_t(i)] += std::array<uint32_t, 8>{a, b, c, d, e, f, g, hh}[size_t(i)];
    }
    static const char* hexd = "0123456789abcdef";
    std::string out;
    for (uint32_t v : h)
        for (int i = 7; i >= 0; --i) out += hexd[(v >> (4 * i)) & 15];
    return out;
}

// ---- manifest -------------------------------------------------------------------------------
namespace {


// tools/dataset_manifest.py's rule (bad_dump_name): a dump name is one directory name of the POSIX
// portable filename set, so no JSON escape can occur in it.
void check_dump_name(std::string_view name, size_t at, std::string_view where) {
    if (!name.empty() && name != "." && name != ".." &&
        name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == std::string_view::npos)
        return;
    throw FormatError(at, "bad dump name '" + terminal_text(name) + "' in \"" + std::string(where) +
                              "\": a dump name is letters, digits, '.', '_' and '-' (not . or ..)");
}

// The members of a JSON object, each name once (a second "train" or "kernel_release" would be
// read one way here and another way by Python's json: attacker 18).
void unique_members(const rapidjson::Value& object, const std::string& what) {
    std::set<std::string_view> names;
    for (const auto& m : object.GetObject())
        if (!names.emplace(m.name.GetString(), m.name.GetStringLength()).second)
            throw FormatError(0, what + " names \"" + terminal_text(std::string(m.name.GetString(), m.name.GetStringLength())) +
                                     "\" twice");
}

std::string string_member(const rapidjson::Value& object, const char* key, const std::string& what, bool required) {
    const auto it = object.FindMember(key);
    if (it == object.MemberEnd()) {
        if (required) throw FormatError(0, what + " has no \"" + key + "\"");
        return "";
    }
    if (!it->value.IsString()) throw FormatError(0, what + "'s \"" + key + "\" is not a string");
    return std::string(it->value.GetString(), it->value.GetStringLength());
}

// The dump names of the array `key` (train, validation, test).
std::vector<std::string> dump_names(const rapidjson::Value& doc, const char* key) {
    const auto it = doc.FindMember(key);
    if (it == doc.MemberEnd() || !it->value.IsArray())
        throw FormatError(0, std::string("manifest has no \"") + key + "\" array");
    std::vector<std::string> out;
    for (const auto& v : it->value.GetArray()) {
        if (!v.IsString()) throw FormatError(0, std::string("a dump name in \"") + key + "\" is not a string");
        out.emplace_back(v.GetString(), v.GetStringLength());
        check_dump_name(out.back(), 0, key);
    }
    return out;
}

}  // namespace

// Read with a JSON parser (rapidjson, cereal's own JSON dependency) and checked by shape: a
// reader that looked for substrings took the first "kernel_release" of a record even inside a
// nested object (attacker 18: a 6.12 dump trained on with 6.12 held out), the first of two
// "train" keys, and escaped names as other names.
Manifest Manifest::load(const std::string& path) {
    auto bytes = read_whole_file(path, "dataset manifest");
    rapidjson::Document doc;
    doc.Parse(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (doc.HasParseError())
        throw FormatError(doc.GetErrorOffset(), "'" + path + "' is not JSON: " + rapidjson::GetParseError_En(doc.GetParseError()));
    if (!doc.IsObject() || string_member(doc, "format", "the manifest", false) != "deepmem dataset manifest v1")
        throw FormatError(0, "'" + path + "' is not a deepmem dataset manifest (expected \"format\":\"deepmem dataset manifest v1\")");
    unique_members(doc, "the manifest");
    Manifest m;
    m.path = path;
    m.sha256 = sha256_hex(bytes);
    m.kernel = string_member(doc, "kernel_package", "the manifest", false) + " " +
               string_member(doc, "kernel_version", "the manifest", false);
    m.train = dump_names(doc, "train");
    m.validation = dump_names(doc, "validation");
    m.test = dump_names(doc, "test");
    // Each dump's record in "dumps" (make-dataset's meta.json): its name and kernel_release.
    if (const auto d = doc.FindMember("dumps"); d != doc.MemberEnd()) {
        if (!d->value.IsArray()) throw FormatError(0, "the manifest's \"dumps\" is not an array");
        for (const auto& rec : d->value.GetArray()) {
            if (!rec.IsObject()) throw FormatError(0, "a record in \"dumps\" is not an object");
            unique_members(rec, "a record in \"dumps\"");
            const std::string name = string_member(rec, "name", "a record in \"dumps\"", true);
            check_dump_name(name, 0, "dumps");
            const std::string build = string_member(rec, "kernel_release", "dump '" + name + "'", false);
            if (!m.build_of.emplace(name, build).second)
                throw FormatError(0, "dump '" + name + "' is listed twice in \"dumps\"");
            m.by_build[build].push_back(name);
        }
    }
    return m;
}

Manifest Manifest::holding_out(const std::string& holdout) const {
    std::vector<std::string> entries;
    for (size_t a = 0; a <= holdout.size();) {
        size_t b = std::min(holdout.find(',', a), holdout.size());
        if (b > a) entries.push_back(holdout.substr(a, b - a));
        a = b + 1;
    }
    if (entries.empty()) throw InputError("data.holdout_build is empty: name the build(s) to leave out (e.g. 6.12)");
    auto matches = [](const std::string& release, const std::string& e) {
        return release.size() >= e.size() && release.compare(0, e.size(), e) == 0 &&
               (release.size() == e.size() || std::string_view(".-+").find(release[e.size()]) != std::string_view::npos);
    };
    std::set<std::string> held;
    for (const auto& e : entries) {
        bool any = false;
        for (const auto& [build, dumps] : by_build)
            if (!build.empty() && matches(build, e)) held.insert(build), any = true;
        if (!any) {
            std::string known;
            for (const auto& [build, dumps] : by_build) known += (known.empty() ? "" : ", ") + (build.empty() ? "(unknown)" : build);
            throw InputError("data.holdout_build '" + e + "' matches no build of " + path + " (builds: " + known + ")");
        }
    }
    Manifest m = *this;
    auto keep = [&](const std::vector<std::string>& names) {
        std::vector<std::string> out;
        for (const auto& n : names)
            if (auto it = build_of.find(n); it == build_of.end() || !held.count(it->second)) out.push_back(n);
        return out;
    };
    m.train = keep(train);
    m.validation = keep(validation);
    m.test.clear();
    for (const auto& b : held) m.test.insert(m.test.end(), by_build.at(b).begin(), by_build.at(b).end());
    if (m.train.empty() || m.validation.empty())
        throw InputError("data.holdout_build '" + holdout + "' leaves no " + (m.train.empty() ? "train" : "validation") +
                         " dump in " + path);
    return m;
}

std::string Manifest::dump_dir(const std::string& name) const {
    return (fs::path(path).parent_path() / name).string();
}

namespace {

// See Aliases in the contract. The direct map is linear, so one (vaddr − paddr) offset, the most
// common among nodes, moves a physical address there.
void canonicalise_truth(LabeledDump& d) {
    const MemoryGraph& g = d.graph;
    std::map<uint64_t, uint64_t> deltas;
    for (uint32_t n = 0; n < g.node_count(); n += 97) ++deltas[g.vaddr()[n] - g.paddr()[n]];
    if (deltas.empty()) return;
    const uint64_t delta = std::max_element(deltas.begin(), deltas.end(), [](auto& a, auto& b) {
                               return a.second < b.second;
                           })->first;
    for (TruthObject& o : d.truth) {
        if (!o.paddr) continue;
        if (auto [a, b] = g.nodes_between(o.vaddr, o.vaddr + std::max<uint64_t>(o.size, 1)); a < b) continue;
        if (g.node_containing(o.vaddr)) continue;
        // The first node inside the object at the candidate address must be the same physical bytes.
        const uint64_t v = *o.paddr + delta;
        auto [a, b] = g.nodes_between(v, v + std::max<uint64_t>(o.size, 1));
        if (a < b && g.paddr()[a] - *o.paddr == g.vaddr()[a] - v) o.vaddr = v;
    }
}

}  // namespace

std::vector<LabeledDump> load_dumps(const Manifest& m, const std::vector<std::string>& names,
                                    const std::function<void(size_t, size_t)>& progress) {
    std::vector<LabeledDump> out;
    for (size_t i = 0; i < names.size(); ++i) {
        if (progress) progress(i, names.size());
        const std::string dir = m.dump_dir(names[i]);
        if (!fs::exists(fs::path(dir) / "DONE"))
            throw InputError("dump '" + dir + "' is incomplete (no DONE marker; rerun tools/make-dataset)");
        const bool elf = fs::exists(fs::path(dir) / "dump.elf") || !fs::exists(fs::path(dir) / "dump.raw");
        auto phys = PhysicalLayer::open(dir + (elf ? "/dump.elf" : "/dump.raw"));
        auto layer = TranslationLayer::detect(*phys);
        LabeledDump d{names[i], MemoryGraph::build(layer), read_truth(dir + "/labels.jsonl"), {}};
        if (fs::exists(fs::path(dir) / "meta.json")) {
            const auto meta = read_whole_file(dir + "/meta.json", "dump meta.json");
            const std::string_view doc(reinterpret_cast<const char*>(meta.data()), meta.size());
            d.kernel_release = json_string_field(doc, "kernel_release").value_or("");
        }
        canonicalise_truth(d);
        out.push_back(std::move(d));
    }
    if (progress) progress(names.size(), names.size());
    return out;
}

// ---- node labels and key nodes --------------------------------------------------------------
NodeLabels label_nodes(const LabeledDump& d, const std::string& type) {
    const MemoryGraph& g = d.graph;
    NodeLabels out;
    out.label.assign(g.node_count(), {NodeLabels::kNoObject, 0, false});
    out.freed.assign(g.node_count(), {NodeLabels::kNoObject, 0, false});
    auto vaddr = g.vaddr();
    auto length = g.length();
    for (const TruthObject& o : d.truth) {
        if (o.type != type) continue;
        if (o.size == 0)
            throw InputError("label of " + type + " at " + hex(o.vaddr) + " has no size (labels.jsonl from an old dmlabel?)");
        out.objects += !o.freed;
        auto [first, last] = g.nodes_between(o.vaddr, o.vaddr + o.size);
        for (uint32_t n = first; n < last; ++n) {
            const auto offset = uint32_t(vaddr[n] - o.vaddr);
            // A long gap's node (length ≥ max_segment, memory_graph.hpp) is open-ended: the gap's true
            // length is not known, and a key node is shorter than max_segment (model_file.cpp).
            const bool long_gap = g.params().long_gap(length[n]);
            const SegmentLabel label =
                offset + uint64_t(length[n]) > o.size || long_gap
                    ? SegmentLabel{offset, uint32_t(std::min<uint64_t>({o.size - offset, length[n], g.params().max_segment - 1})), true}
                    : SegmentLabel{offset, length[n], false};
            if (o.freed) {
                out.label[n] = {NodeLabels::kIgnored, 0, false};
                out.freed[n] = label;
            } else if (out.label[n].offset == NodeLabels::kNoObject) {
                out.label[n] = label;
            }
        }
    }
    return out;
}

std::vector<KeyNode> select_key_nodes(const std::vector<NodeLabels>& dumps, uint32_t max_keys, double min_frequency,
                                      std::span<const std::string> builds, uint32_t min_per_build) {
    if (!builds.empty() && builds.size() != dumps.size())
        throw std::logic_error("select_key_nodes: one build per dump");
    // Per group (one build, or all dumps as one group): objects and each label's count.
    std::map<std::string, std::pair<uint64_t, std::map<SegmentLabel, uint64_t>>> groups;
    uint64_t objects = 0;
    for (size_t d = 0; d < dumps.size(); ++d) {
        auto& [group_objects, count] = groups[builds.empty() ? std::string() : builds[d]];
        group_objects += dumps[d].objects;
        objects += dumps[d].objects;
        // A label occurs at most once per object (one node per offset), so counting nodes counts objects.
        for (const SegmentLabel& s : dumps[d].label)
            if (s.offset < NodeLabels::kIgnored) ++count[s];
    }
    if (objects == 0) throw InputError("no live objects of the type in the training dumps");
    const auto by_weight = [](const KeyNode& a, const KeyNode& b) {
        return a.weight != b.weight ? a.weight > b.weight : a.offset < b.offset;
    };
    // Each group's qualifying labels, most frequent first, and every label's highest frequency.
    std::vector<std::vector<KeyNode>> ranked;
    std::map<SegmentLabel, float> weight;
    for (const auto& [build, group] : groups) {
        if (group.first == 0) continue;
        std::vector<KeyNode> r;
        for (const auto& [label, c] : group.second) {
            const double f = double(c) / double(group.first);
            if (f < min_frequency) continue;
            r.push_back({label.offset, label.length, float(std::min(f, 1.0)), label.open_end});
            float& w = weight[label];
            w = std::max(w, r.back().weight);
        }
        std::stable_sort(r.begin(), r.end(), by_weight);
        ranked.push_back(std::move(r));
    }
    // Rounds over the groups (one group: simply its ranking), each taking its next label not yet taken.
    std::vector<KeyNode> all;
    std::set<SegmentLabel> taken;
    std::vector<size_t> next(ranked.size(), 0);
    for (bool more = true; more && all.size() < max_keys;) {
        more = false;
        for (size_t g = 0; g < ranked.size() && all.size() < max_keys; ++g) {
            while (next[g] < ranked[g].size()) {
                KeyNode k = ranked[g][next[g]++];
                const SegmentLabel l{k.offset, k.length, k.open_end};
                if (!taken.insert(l).second) continue;
                k.weight = weight[l];
                all.push_back(k);
                more = true;
                break;
            }
        }
    }
    // Each build short of min_per_build of its labels among the keys takes its next ones.
    for (size_t g = 0; g < ranked.size() && !builds.empty(); ++g) {
        uint64_t have = 0;
        for (const KeyNode& k : ranked[g]) have += taken.count({k.offset, k.length, k.open_end});
        while (have < min_per_build && next[g] < ranked[g].size()) {
            KeyNode k = ranked[g][next[g]++];
            const SegmentLabel l{k.offset, k.length, k.open_end};
            if (!taken.insert(l).second) continue;
            k.weight = weight[l];
            all.push_back(k);
            ++have;
        }
    }
    std::stable_sort(all.begin(), all.end(), by_weight);
    if (all.empty())
        throw InputError("no segment label reaches min_frequency " + std::to_string(min_frequency) + " over " +
                         std::to_string(objects) + " objects; lower [keys] min_frequency");
    return all;
}

std::vector<uint32_t> node_classes(const NodeLabels& labels, const std::vector<KeyNode>& keys, bool freed_off_base_negative) {
    std::map<SegmentLabel, uint32_t> cls;
    for (size_t i = 0; i < keys.size(); ++i) cls[{keys[i].offset, keys[i].length, keys[i].open_end}] = uint32_t(i + 1);
    std::set<uint32_t> key_offsets;   // a freed node at one votes for its own object's base (Freed)
    for (const KeyNode& k : keys) key_offsets.insert(k.offset);
    std::vector<uint32_t> out(labels.label.size(), 0);
    for (size_t n = 0; n < out.size(); ++n) {
        const SegmentLabel& l = labels.label[n];
        if (l.offset == NodeLabels::kIgnored)   // see Freed in the contract
            out[n] = freed_off_base_negative && n < labels.freed.size() && !key_offsets.count(labels.freed[n].offset) ? 0 : kIgnoredClass;
        else if (l.offset != NodeLabels::kNoObject) {
            auto it = cls.find(l);
            if (it != cls.end()) out[n] = it->second;
        }
    }
    return out;
}

}  // namespace deepmem
