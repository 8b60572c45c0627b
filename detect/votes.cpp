// Votes → candidates → detections, ground truth and scoring (contract: detect/detect.hpp).
#include "detect/detect.hpp"

#include "graph/layers.hpp"
#include "graph/text_lines.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <set>
#include <unordered_map>

namespace deepmem {

std::vector<Candidate> vote(const MemoryGraph& graph, const Model& model, const Mat<float>& probs) {
    const uint32_t n = graph.node_count();
    const auto k = static_cast<Eigen::Index>(model.key_nodes.size() + 1);
    if (probs.rows() != Eigen::Index(n) || probs.cols() != k)
        throw ModelError(ModelError::Kind::BadBatch, 0,
                         "probabilities are " + std::to_string(probs.rows()) + "×" + std::to_string(probs.cols()) +
                             ", expected " + std::to_string(n) + "×" + std::to_string(k) + " (nodes × classes)");
    auto vaddr = graph.vaddr();
    auto length = graph.length();
    // (base, class) of every voting node; bases below the offset (impossible in kernel space) skipped.
    std::vector<std::pair<uint64_t, uint32_t>> votes;
    for (uint32_t i = 0; i < n; ++i) {
        Eigen::Index c = 0;
        probs.row(i).maxCoeff(&c);
        if (c == 0) continue;
        const KeyNode& key = model.key_nodes[size_t(c) - 1];
        if (length[i] != key.length || vaddr[i] < key.offset) continue;
        votes.emplace_back(vaddr[i] - key.offset, uint32_t(c));
    }
    std::sort(votes.begin(), votes.end());
    std::vector<Candidate> cands;
    for (size_t i = 0; i < votes.size();) {
        Candidate c{votes[i].first, 0.f, 0};
        for (; i < votes.size() && votes[i].first == c.vaddr; ++i) {
            c.score += model.key_nodes[votes[i].second - 1].weight;
            ++c.votes;
        }
        c.score += kVoteBonus * float(c.votes - 1);
        cands.push_back(c);
    }
    // Overlap rule: greedy in (score desc, vaddr asc); R = max key-node offset.
    uint64_t radius = 0;
    for (const auto& key : model.key_nodes) radius = std::max<uint64_t>(radius, key.offset);
    if (radius == 0 || cands.size() < 2) return cands;
    std::vector<uint32_t> order(cands.size());
    std::iota(order.begin(), order.end(), 0u);
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        return cands[a].score != cands[b].score ? cands[a].score > cands[b].score : cands[a].vaddr < cands[b].vaddr;
    });
    std::set<uint64_t> kept;
    std::vector<char> keep(cands.size(), 0);
    for (uint32_t idx : order) {
        uint64_t v = cands[idx].vaddr;
        auto it = kept.lower_bound(v > radius ? v - radius + 1 : 0);
        if (it != kept.end() && *it < v + radius && *it + radius > v) continue;   // a kept one within R
        kept.insert(v);
        keep[idx] = 1;
    }
    std::vector<Candidate> out;
    for (size_t i = 0; i < cands.size(); ++i)
        if (keep[i]) out.push_back(cands[i]);
    return out;
}

std::vector<Detection> select(const MemoryGraph& graph, const Model& model, std::span<const Candidate> candidates,
                              float threshold) {
    std::vector<Detection> out;
    auto vaddr = graph.vaddr();
    auto paddr = graph.paddr();
    for (const Candidate& c : candidates) {
        if (!(c.score >= threshold)) continue;
        Detection d{model.object_type, c.vaddr, std::nullopt, c.score, c.votes};
        if (auto node = graph.node_containing(c.vaddr)) d.paddr = paddr[*node] + (c.vaddr - vaddr[*node]);
        out.push_back(std::move(d));
    }
    return out;
}

// ---- ground truth ---------------------------------------------------------------------------
namespace {

// The string value of "key":"value" in one JSON object line (labels.jsonl never escapes these).
std::optional<std::string_view> json_field(std::string_view line, std::string_view key) {
    std::string pat = "\"" + std::string(key) + "\":\"";
    size_t p = line.find(pat);
    if (p == std::string_view::npos) return std::nullopt;
    p += pat.size();
    size_t e = line.find('"', p);
    if (e == std::string_view::npos) return std::nullopt;
    return line.substr(p, e - p);
}

uint64_t parse_hex_vaddr(std::string_view s, uint64_t offset) {
    if (s.starts_with("0x") || s.starts_with("0X")) s.remove_prefix(2);
    if (s.empty() || s.size() > 16) throw FormatError(offset, "bad address '" + std::string(s) + "' (expected hex)");
    uint64_t v = 0;
    for (char ch : s) {
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0) throw FormatError(offset, "bad address '" + std::string(s) + "' (expected hex)");
        v = v << 4 | uint64_t(d);
    }
    return v;
}

}  // namespace

std::vector<TruthObject> parse_truth(std::span<const uint8_t> text) {
    std::vector<TruthObject> out;
    TextLines lines(text);
    while (auto tl = lines.next()) {
        std::string_view line = tl->text;
        const uint64_t offset = tl->at;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        if (line.empty() || line.front() == '#') continue;
        TruthObject t;
        if (line.front() == '{') {
            auto v = json_field(line, "vaddr"), ty = json_field(line, "type"), st = json_field(line, "state");
            if (!v || !ty) throw FormatError(offset, "label line without \"vaddr\" and \"type\"");
            t.vaddr = parse_hex_vaddr(*v, offset);
            t.type = std::string(*ty);
            if (st && *st != "live" && *st != "freed")
                throw FormatError(offset, "label state '" + std::string(*st) + "' (expected live|freed)");
            t.freed = st && *st == "freed";
        } else {
            size_t tab = line.find('\t');
            if (tab == std::string_view::npos) throw FormatError(offset, "label line without a tab (expected vaddr<TAB>type)");
            t.vaddr = parse_hex_vaddr(line.substr(0, tab), offset);
            std::string_view rest = line.substr(tab + 1);
            t.type = std::string(rest.substr(0, rest.find('\t')));
            if (t.type.empty()) throw FormatError(offset, "label line with an empty type");
        }
        out.push_back(std::move(t));
    }
    return out;
}

std::vector<TruthObject> read_truth(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw InputError("cannot read labels '" + path + "': " + std::strerror(errno));
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return parse_truth(bytes);
}

std::map<std::string, TypeScore> evaluate(std::span<const Detection> detections, std::span<const TruthObject> truth,
                                          std::span<const std::string> types) {
    std::map<std::string, TypeScore> out;
    auto wanted = [&](const std::string& t) {
        return types.empty() || std::find(types.begin(), types.end(), t) != types.end();
    };
    // (type, vaddr) → freed?
    std::map<std::pair<std::string, uint64_t>, bool> truth_at;
    for (const auto& t : truth) {
        if (!wanted(t.type)) continue;
        truth_at[{t.type, t.vaddr}] = t.freed;
        TypeScore& s = out[t.type];
        if (t.freed) ++s.freed_total;
    }
    std::set<std::pair<std::string, uint64_t>> found;
    for (const auto& d : detections) {
        TypeScore& s = out[d.type];
        if (!found.insert({d.type, d.vaddr}).second) continue;   // a duplicate detection counts once
        auto it = truth_at.find({d.type, d.vaddr});
        if (it == truth_at.end()) {
            ++s.fp;
            s.spurious.push_back(d.vaddr);
        } else if (it->second) {
            ++s.freed_found;
        } else {
            ++s.tp;
        }
    }
    for (const auto& [key, freed] : truth_at)
        if (!freed && !found.count(key)) {
            TypeScore& s = out[key.first];
            ++s.fn;
            s.missed.push_back(key.second);
        }
    for (auto& [type, s] : out) {
        std::sort(s.missed.begin(), s.missed.end());
        std::sort(s.spurious.begin(), s.spurious.end());
    }
    return out;
}

Calibration calibrate_threshold(const std::string& type, std::span<const CalibrationSet> sets) {
    // Every candidate as (score, is a live truth object of `type`); freed hits are neutral.
    std::vector<std::pair<float, int>> scored;   // second: 1 TP, 0 FP, −1 neutral
    uint64_t live = 0;
    for (const auto& set : sets) {
        std::unordered_map<uint64_t, bool> at;
        for (const auto& t : set.truth)
            if (t.type == type) {
                at[t.vaddr] = t.freed;
                live += !t.freed;
            }
        for (const auto& c : set.candidates) {
            auto it = at.find(c.vaddr);
            scored.emplace_back(c.score, it == at.end() ? 0 : it->second ? -1 : 1);
        }
    }
    std::sort(scored.begin(), scored.end(), [](auto& a, auto& b) { return a.first > b.first; });
    Calibration best;
    best.threshold = scored.empty() ? 1.f : std::nextafter(scored.front().first, INFINITY);
    best.score.fn = live;
    double best_f1 = -1;
    uint64_t tp = 0, fp = 0;
    // Accepting scored[0..i] (threshold just at or below scored[i], above scored[i+1]).
    for (size_t i = 0; i < scored.size(); ++i) {
        if (scored[i].second == 1) ++tp;
        if (scored[i].second == 0) ++fp;
        if (i + 1 < scored.size() && scored[i + 1].first == scored[i].first) continue;
        TypeScore s;
        s.tp = tp;
        s.fp = fp;
        s.fn = live - tp;
        if (live == 0) break;
        double f1 = s.f1();
        if (f1 > best_f1) {
            best_f1 = f1;
            float lo = i + 1 < scored.size() ? scored[i + 1].first : 0.f;
            best.threshold = 0.5f * (lo + scored[i].first);
            if (!(best.threshold > lo)) best.threshold = scored[i].first;
            best.score = s;
        }
    }
    return best;
}

}  // namespace deepmem
