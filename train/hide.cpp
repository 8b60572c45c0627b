// White-box hiding search (contract: train/hide.hpp).
#include "train/hide.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace deepmem {

unsigned differing_bytes(uint64_t a, uint64_t b, unsigned word_size) {
    unsigned n = 0;
    for (unsigned k = 0; k < word_size; ++k) n += ((a >> (8 * k)) & 0xff) != ((b >> (8 * k)) & 0xff);
    return n;
}

std::vector<ByteRange> protected_task_fields(const KernelLayout& L) {
    // include/linux/sched.h names; a member this build lacks is skipped (kernel versions differ).
    static const char* const kFields[] = {
        "tasks", "pid_links", "thread_node", "thread_group", "sibling", "children", "ptraced", "ptrace_entry",
        "se.group_node", "se.run_node", "se.on_rq", "se.load", "se.vruntime", "rt.run_list", "dl.rb_node",
        "pushable_tasks", "pushable_dl_tasks", "wake_entry", "stack", "mm", "active_mm", "real_parent", "parent",
        "group_leader", "signal", "sighand", "cred", "real_cred", "fs", "files", "nsproxy", "thread_pid",
        "cpus_ptr", "__state", "state", "flags", "exit_state", "on_rq", "on_cpu", "usage", "pid", "tgid", "prio",
        "static_prio", "normal_prio", "policy", "nr_cpus_allowed", "cpus_mask", "stack_canary", "thread"};
    std::vector<ByteRange> r;
    for (const char* f : kFields) {
        const auto off = L.opt("task_struct", f);
        if (!off) continue;
        r.push_back({*off, *off + std::max<uint64_t>(1, L.member_size("task_struct", f))});
    }
    std::sort(r.begin(), r.end(), [](const ByteRange& a, const ByteRange& b) { return a.begin < b.begin; });
    std::vector<ByteRange> merged;
    for (const ByteRange& x : r) {
        if (!merged.empty() && x.begin <= merged.back().end) merged.back().end = std::max(merged.back().end, x.end);
        else merged.push_back(x);
    }
    return merged;
}

std::vector<uint64_t> hide_candidates(std::span<const uint8_t> object, uint64_t kernel_base,
                                      std::span<const ByteRange> protect, unsigned word_size) {
    std::vector<uint64_t> out;
    for (uint64_t w = 0; w + word_size <= object.size(); w += word_size) {
        uint64_t v = 0;
        std::memcpy(&v, object.data() + w, word_size);
        if (v >= kernel_base) continue;
        const bool hit = std::any_of(protect.begin(), protect.end(),
                                     [&](const ByteRange& p) { return w < p.end && p.begin < w + word_size; });
        if (!hit) out.push_back(w);
    }
    return out;
}

HideSearch::HideSearch(const MemoryGraph& graph, const Model& model)
    : graph_(graph), model_(model), net_(model.config, model.params),
      features_(graph.features().begin(), graph.features().end()) {}

void HideSearch::patch(uint64_t vaddr, uint64_t value) {
    const uint32_t fb = graph_.params().feature_bytes, W = graph_.params().word_size;
    uint8_t bytes[8];
    std::memcpy(bytes, &value, 8);   // little-endian: the word's W low bytes first
    for (uint32_t i = 0; i < W; ++i) {
        auto n = graph_.node_containing(vaddr + i);
        if (!n) continue;
        const uint64_t at = vaddr + i - graph_.vaddr()[*n];
        if (at < fb) features_[uint64_t(*n) * fb + at] = bytes[i];
    }
}

std::vector<WordCandidate> HideSearch::in_features(uint64_t base, std::vector<WordCandidate> candidates) const {
    const uint32_t fb = graph_.params().feature_bytes, W = graph_.params().word_size;
    std::erase_if(candidates, [&](const WordCandidate& c) {
        for (uint64_t i = 0; i < W; ++i) {
            auto n = graph_.node_containing(base + c.offset + i);
            if (n && base + c.offset + i - graph_.vaddr()[*n] < fb) return false;
        }
        return true;
    });
    return candidates;
}

std::pair<float, float> HideSearch::score(uint64_t base) {
    const uint64_t w = model_.vote_window, radius = overlap_radius(model_);
    auto [first, last] = graph_.nodes_between(base > w ? base - w : 0, base + radius + w + 1);
    std::vector<uint32_t> rows;
    for (uint32_t n = first; n < last; ++n) rows.push_back(n);
    if (rows.empty()) return {0.f, 0.f};
    GraphInput in = graph_input(graph_);
    in.features = features_;
    net_.run(in, rows, probs_);
    const auto votes = votes_of(graph_, model_, rows, probs_);
    float exact = 0;
    for (const Candidate& c : bases_of(model_, votes))
        if (c.vaddr == base) exact = c.score;
    // Smooth part: per key node, the best probability of its class at a node that can vote for base.
    std::vector<float> best(model_.key_nodes.size(), 0.f);
    auto vaddr = graph_.vaddr();
    for (size_t r = 0; r < rows.size(); ++r)
        for (size_t c = 0; c < model_.key_nodes.size(); ++c) {
            const KeyNode& k = model_.key_nodes[c];
            if (vaddr[rows[r]] < k.offset) continue;
            const uint64_t b = vaddr[rows[r]] - k.offset;
            if (b + w < base || b > base + w || !carries(graph_, rows[r], k)) continue;
            best[c] = std::max(best[c], probs_(Eigen::Index(r), Eigen::Index(c + 1)));
        }
    float smooth = 0;
    for (size_t c = 0; c < best.size(); ++c) smooth += model_.key_nodes[c].weight * best[c];
    return {exact, smooth};
}

HideResult HideSearch::hide(uint64_t base, std::span<const WordCandidate> candidates, uint32_t max_words,
                            float threshold, uint64_t kernel_base) {
    const auto t0 = std::chrono::steady_clock::now();
    HideResult res;
    auto cur = score(base);
    ++res.evaluations;
    res.score_before = cur.first;
    std::vector<uint64_t> value(candidates.size());
    for (size_t i = 0; i < candidates.size(); ++i) value[i] = candidates[i].value;
    std::vector<char> used(candidates.size(), 0);
    while (cur.first >= threshold && res.edits.size() < max_words) {
        std::pair<float, float> best = cur;
        size_t best_i = SIZE_MAX;
        uint64_t best_v = 0;
        for (size_t i = 0; i < candidates.size(); ++i) {
            if (used[i]) continue;
            const uint64_t at = base + candidates[i].offset;
            for (uint64_t v : candidates[i].replacements) {
                if (v == value[i] || v >= kernel_base) continue;   // a pointer would change the graph
                patch(at, v);
                const auto s = score(base);
                ++res.evaluations;
                patch(at, value[i]);
                if (s < best) best = s, best_i = i, best_v = v;
            }
        }
        if (best_i == SIZE_MAX) break;   // no edit lowers the score
        patch(base + candidates[best_i].offset, best_v);
        res.edits.push_back({candidates[best_i].offset, candidates[best_i].value, best_v});
        value[best_i] = best_v;
        used[best_i] = 1;
        cur = best;
    }
    res.score_after = cur.first;
    res.hidden = cur.first < threshold;
    for (const WordEdit& e : res.edits)
        res.bytes_changed += differing_bytes(e.old_value, e.new_value, graph_.params().word_size);
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return res;
}

}  // namespace deepmem
