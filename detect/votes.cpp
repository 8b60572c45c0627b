// Votes → candidates → detections, ground truth and scoring (contract: detect/detect.hpp).
#include "detect/detect.hpp"

#include "graph/layers.hpp"
#include "graph/parallel_errors.hpp"
#include "graph/text_lines.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>
#include <omp.h>
#include <queue>
#include <set>
#include <functional>
#include <unordered_map>

namespace deepmem {

namespace {

// a + b, or 2^64 − 1 when that passes the end of the address space
uint64_t add_saturating(uint64_t a, uint64_t b) noexcept { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

// The graph keeps whole 4 KiB pages: any node starting in vaddr's page gives its physical page
// (a base often lies in a gap no node covers, e.g. a page-aligned module struct).
std::optional<uint64_t> physical_of(const MemoryGraph& graph, uint64_t vaddr) {
    if (auto node = graph.node_containing(vaddr)) return graph.paddr()[*node] + (vaddr - graph.vaddr()[*node]);
    const uint64_t page = vaddr & ~uint64_t{4095};
    auto [first, last] = graph.nodes_between(page, page + 4096);
    if (first == last) return std::nullopt;
    return (graph.paddr()[first] & ~uint64_t{4095}) + (vaddr - page);
}

// Truth objects of one type by vaddr and by paddr (see Evaluate in detect.hpp).
struct TruthIndex {
    std::unordered_map<uint64_t, size_t> by_vaddr, by_paddr;
    TruthIndex(std::span<const TruthObject> truth, const std::function<bool(const TruthObject&)>& wanted)
        : objects(truth) {
        for (size_t i = 0; i < truth.size(); ++i) {
            if (!wanted(truth[i])) continue;
            by_vaddr.emplace(truth[i].vaddr, i);
            if (truth[i].paddr) by_paddr.emplace(*truth[i].paddr, i);
            if (truth[i].freed && truth[i].size) freed.emplace_back(truth[i].vaddr, i);
        }
        std::sort(freed.begin(), freed.end());
    }
    std::vector<std::pair<uint64_t, size_t>> freed;   // (vaddr, index) of freed objects with a size, ascending
    std::span<const TruthObject> objects;
    std::optional<size_t> find(uint64_t vaddr, std::optional<uint64_t> paddr) const {
        if (auto it = by_vaddr.find(vaddr); it != by_vaddr.end()) return it->second;
        if (paddr)
            if (auto it = by_paddr.find(*paddr); it != by_paddr.end()) return it->second;
        return std::nullopt;
    }
    // The freed object whose bytes hold vaddr (its base excluded: that is find()'s).
    std::optional<size_t> freed_containing(uint64_t vaddr) const {
        auto it = std::upper_bound(freed.begin(), freed.end(), std::pair{vaddr, SIZE_MAX});
        if (it == freed.begin()) return std::nullopt;
        --it;
        const TruthObject& o = objects[it->second];
        if (vaddr > o.vaddr && vaddr - o.vaddr < o.size) return it->second;
        return std::nullopt;
    }
};

}  // namespace

bool carries(const MemoryGraph& graph, uint32_t node, const KeyNode& key) {
    auto vaddr = graph.vaddr();
    auto length = graph.length();
    if (key.matches(length[node])) return true;
    if (length[node] >= key.length) return false;
    // Split by planted pointers (Votes in detect.hpp): follow the parts one pointer word apart.
    const uint64_t word = graph.params().word_size, key_end = vaddr[node] + key.length;
    uint64_t end = vaddr[node] + length[node];
    for (uint32_t j = node + 1; j < vaddr.size() && end < key_end && vaddr[j] == end + word && !graph.params().long_gap(length[j]); ++j)
        end = vaddr[j] + length[j];   // (a long gap's node is no part: memory_graph.hpp)
    if (key.open_end) return end >= key_end;
    return end == key_end || end + word == key_end;
}

namespace {

// Per node, the bytes from its start to the end of its chain of split parts: follow nodes that
// start one pointer word past the previous part's end, never a long gap's node (carries()' walk, not
// bounded by a key's end). Saturates at 2^32 − 1, far past any key node's length. One backward pass, O(N).
std::vector<uint32_t> split_chain_extents(const MemoryGraph& graph) {
    auto vaddr = graph.vaddr();
    auto length = graph.length();
    const uint64_t word = graph.params().word_size;
    std::vector<uint32_t> extent(vaddr.size());
    for (size_t i = vaddr.size(); i-- > 0;) {
        const uint64_t end = vaddr[i] + length[i];
        const bool split = i + 1 < vaddr.size() && vaddr[i + 1] == end + word && !graph.params().long_gap(length[i + 1]);
        extent[i] = uint32_t(std::min<uint64_t>(UINT32_MAX, split ? vaddr[i + 1] - vaddr[i] + extent[i + 1] : length[i]));
    }
    return extent;
}

// Per key node, the nodes among [first, last) that carry it (carries()), ascending. One pass over the
// nodes with the key nodes sorted by length, so a node costs O(log K) plus its matches rather than K
// calls; `extent` is split_chain_extents(graph).
// carries() stops its walk at the first part end ≥ the key's end, so with L = the node's length
// and E = its chain's end relative to its start: a fixed key of length ℓ is carried iff ℓ = L,
// ℓ = E + word, or L < ℓ ≤ E with ℓ a part end (part_end: a binary search); an open-ended key
// iff ℓ ≤ E (E ≥ L).
std::vector<std::vector<uint32_t>> carriers_in(const MemoryGraph& graph, const Model& model,
                                               std::span<const uint32_t> extent, uint32_t first, uint32_t last) {
    auto vaddr = graph.vaddr();
    auto length = graph.length();
    const uint64_t word = graph.params().word_size;
    const size_t k = model.key_nodes.size();
    std::vector<std::pair<uint64_t, uint32_t>> fixed, open;   // (length, key index), ascending
    for (uint32_t c = 0; c < k; ++c) (model.key_nodes[c].open_end ? open : fixed).emplace_back(model.key_nodes[c].length, c);
    std::sort(fixed.begin(), fixed.end());
    std::sort(open.begin(), open.end());
    auto from = [](const auto& keys, uint64_t len) {
        return std::lower_bound(keys.begin(), keys.end(), std::pair{len, uint32_t(0)});
    };
    const uint32_t n = graph.node_count();
    // Whether a part of node i's chain ends ℓ bytes past its start (ℓ inside the chain): what carries()
    // walks to, found by binary search, since the chain is nodes i, i+1, … and each part takes at least
    // a word and a byte, the part holding byte ℓ − 1 is among the next ℓ / word nodes (never a walk per
    // node and key: on memory crafted into long chains that was nodes × keys × chain length).
    auto part_end = [&](uint32_t i, uint64_t l) {
        const uint64_t x = vaddr[i] + l;
        const auto end = vaddr.begin() + std::min<uint64_t>(n, uint64_t(i) + l / word + 2);
        const auto j = size_t(std::lower_bound(vaddr.begin() + i, end, x) - vaddr.begin()) - 1;   // ≥ i: vaddr[i] < x
        return vaddr[j] + length[j] == x;
    };
    std::vector<std::vector<uint32_t>> carriers(k);
    for (uint32_t i = first; i < last; ++i) {
        const uint64_t len = length[i], end = extent[i];
        for (auto it = open.begin(); it != open.end() && it->first <= end; ++it) carriers[it->second].push_back(i);
        for (auto it = from(fixed, len); it != fixed.end() && it->first <= end + word; ++it) {
            const uint64_t l = it->first;
            if (l == len || l == end || l == end + word || (l > len && l < end && part_end(i, l)))
                carriers[it->second].push_back(i);
        }
    }
    return carriers;
}

}  // namespace

std::vector<Candidate> vote(const MemoryGraph& graph, const Model& model, const Mat<float>& probs) {
    std::vector<uint32_t> all(graph.node_count());
    std::iota(all.begin(), all.end(), 0u);
    return vote(graph, model, all, probs);
}

// voting_rows' merge over the bases in [lo, hi) (hi absent: to the end of the address space; lo and
// hi are the addresses of nodes first and last, the range's own nodes [first, last)): keeps
// (keep[node] = 1) the nodes voting for a base there whose bound reaches `threshold`, and, with
// `carrying`, marks the own nodes that carry a key node. The merge starts at lo − reach and runs to
// hi + reach, so a base's window is whole; only bases in [lo, hi) are judged. The carriers are found
// here, among the nodes those bases' key nodes can lie at (never all of the graph's at once:
// task_struct's 60 key nodes had 5.9 M carriers, 22 MiB, on a 556 k-node graph). Work: the range's
// nodes plus those within the key offsets' spread and 2 · reach around them.
void mark_voting_rows(const MemoryGraph& graph, const Model& model, std::span<const uint32_t> extent,
                      float threshold, uint64_t reach, uint64_t align, uint32_t first, uint32_t last,
                      uint64_t lo, std::optional<uint64_t> hi, std::vector<char>& keep, std::vector<char>* carrying) {
    auto vaddr = graph.vaddr();
    const uint64_t from = lo > reach ? lo - reach : 0;
    // the last base merged (the end of the address space when hi + reach passes it)
    const uint64_t to = hi ? add_saturating(*hi - 1, reach) : UINT64_MAX;
    uint64_t min_offset = UINT64_MAX, max_offset = 0;
    for (const KeyNode& key : model.key_nodes)
        min_offset = std::min<uint64_t>(min_offset, key.offset), max_offset = std::max<uint64_t>(max_offset, key.offset);
    const auto node_from = uint32_t(std::lower_bound(vaddr.begin(), vaddr.end(), add_saturating(from, min_offset)) - vaddr.begin());
    const auto node_to = uint32_t(std::upper_bound(vaddr.begin(), vaddr.end(), add_saturating(to, max_offset)) - vaddr.begin());
    const std::vector<std::vector<uint32_t>> carriers =
        carriers_in(graph, model, extent, std::min(first, node_from), std::max(last, node_to));
    if (carrying)
        for (const auto& of_key : carriers)
            for (uint32_t i : of_key)
                if (i >= first && i < last) (*carrying)[i] = 1;   // own nodes: no other range writes them
    // Per key node, its cursor in the nodes that can carry it: the bases vaddr − offset it proposes
    // come in ascending order, so a K-way merge visits every (base, class) pair in vote()'s sort order.
    // Each cursor starts at its first base ≥ from (a binary search).
    std::vector<size_t> cursors(model.key_nodes.size());
    for (size_t c = 0; c < cursors.size(); ++c) {
        const uint64_t offset = model.key_nodes[c].offset;
        auto before = [&](uint32_t node) { return vaddr[node] < offset || vaddr[node] - offset < from; };
        cursors[c] = size_t(std::partition_point(carriers[c].begin(), carriers[c].end(), before) - carriers[c].begin());
    }
    auto node_at = [&](uint32_t c) -> const uint32_t* {   // class c's current carrier, or null when done
        return cursors[c - 1] < carriers[c - 1].size() ? &carriers[c - 1][cursors[c - 1]] : nullptr;
    };
    using Head = std::pair<uint64_t, uint32_t>;   // (base, class)
    std::priority_queue<Head, std::vector<Head>, std::greater<>> heap;
    auto advance = [&](uint32_t c) {
        const uint32_t* node = node_at(c);
        if (node && vaddr[*node] - model.key_nodes[c - 1].offset <= to)
            heap.emplace(vaddr[*node] - model.key_nodes[c - 1].offset, c);
    };
    for (uint32_t c = 1; c <= cursors.size(); ++c) advance(c);
    // Per voted base, in ascending order: the bound if every node proposing it voted for it, and its
    // nodes. With a vote window W a base's score can gather the classes voting in [b − 2W, b + 2W],
    // each once (see vote()), so a base is judged once the first base past b + 2W arrives, and only the
    // bases within 2W of those still to judge are held: memory O(bases in a window), not O(votes).
    // Held votes (node, class) are a vector whose judged-and-dropped head is cut off now and then.
    struct Group { uint64_t base; float bound; uint32_t count; };
    std::vector<Group> window;   // held bases, window[head, …); window[head, judged) are judged
    std::vector<std::pair<uint32_t, uint32_t>> members;   // their votes, members[vote_head, …)
    size_t head = 0, vote_head = 0, judged = 0;
    // Over the held bases: the classes voting and how many votes each has; `sum` is the distinct
    // classes' weights, `distinct` their count (Window scores a class once).
    std::vector<uint32_t> class_votes(model.key_nodes.size() + 1, 0);
    double sum = 0;
    uint64_t distinct = 0;
    auto hold = [&](uint32_t c) {
        if (class_votes[c]++ == 0) sum += model.key_nodes[c - 1].weight, ++distinct;
    };
    auto release = [&](uint32_t c) {
        if (--class_votes[c] == 0 && --distinct == 0) sum = 0;   // no drift past an empty window
        else if (class_votes[c] == 0) sum -= model.key_nodes[c - 1].weight;
    };
    size_t first_vote = 0;   // members index of window[judged]'s first vote
    auto judge = [&](const Group& g, size_t first) {
        if (g.base < lo || (hi && g.base >= *hi)) return;                 // another range's base
        if (reach == 0 && align > 1 && g.base % align != 0) return;   // Alignment: no candidate
        // The bound only has to be an upper one: the exact (double) sum is padded by what vote()'s
        // float sum over up to K classes can round up, K · 2^-24 of it, and the conversion's 2^-24.
        const float bound = reach ? float(sum * (1 + double(distinct + 1) * 0x1p-23)) + kVoteBonus * float(distinct)
                                  : g.bound + kVoteBonus * float(g.count - 1);
        if (bound >= threshold)
            for (size_t i = first; i < first + g.count; ++i)
                std::atomic_ref<char>(keep[members[i].first]).store(1, std::memory_order_relaxed);
    };
    // Judge every held base whose window closes before `next` (all of them at the end): the window
    // then holds exactly the bases within 2W of it, after dropping those below.
    auto judge_before = [&](std::optional<uint64_t> next) {
        // (differences, not sums: a base within 2W of 2^64 must not wrap; bases ascend)
        for (; judged < window.size() && (!next || *next - window[judged].base > reach); ++judged) {
            const uint64_t b = window[judged].base;
            for (; b - window[head].base > reach; ++head) {
                for (uint32_t i = 0; i < window[head].count; ++i) release(members[vote_head + i].second);
                vote_head += window[head].count;
            }
            judge(window[judged], first_vote);
            first_vote += window[judged].count;
        }
        if (head > 4096 && head * 2 > window.size()) {   // cut the dropped head off (amortised O(1))
            window.erase(window.begin(), window.begin() + ptrdiff_t(head));
            judged -= head, head = 0;
            members.erase(members.begin(), members.begin() + ptrdiff_t(vote_head));
            first_vote -= vote_head, vote_head = 0;
        }
    };
    while (!heap.empty()) {
        Group g{heap.top().first, 0.f, 0};
        while (!heap.empty() && heap.top().first == g.base) {
            const uint32_t c = heap.top().second;
            heap.pop();
            g.bound += model.key_nodes[c - 1].weight;
            members.emplace_back(*node_at(c), c);
            ++cursors[c - 1];
            ++g.count;
            advance(c);
        }
        judge_before(g.base);   // g's votes are past the windows judged here: held after
        for (size_t i = members.size() - g.count; i < members.size(); ++i) hold(members[i].second);
        window.push_back(g);
    }
    judge_before(std::nullopt);
}

std::vector<uint32_t> voting_rows(const MemoryGraph& graph, const Model& model, float threshold,
                                  std::vector<uint32_t>* all_carriers, bool aligned,
                                  InferenceNet::Clock::time_point deadline) {
    auto check_deadline = [&] {   // (as the network's own before it runs)
        if (InferenceNet::Clock::now() >= deadline) throw WorkLimitError::past_deadline(false);
    };
    check_deadline();
    const uint32_t n = graph.node_count();
    auto vaddr = graph.vaddr();
    bool positive = true;
    for (const KeyNode& key : model.key_nodes) positive = positive && key.weight > 0;
    if (!positive) threshold = -INFINITY;   // the bound below needs weights > 0
    const std::vector<uint32_t> extent = split_chain_extents(graph);
    std::vector<char> carries_one(all_carriers ? n : 0, 0);   // the rows at −∞, when asked for
    // The bases are cut into ranges of kRowRangeNodes nodes' addresses (the cut depends on the graph
    // alone, never on the thread count); each thread merges a range's bases and, around it, the 2W of
    // context a window needs, and judges only the range's own bases. A node voting for bases in two
    // ranges may be kept by both: the byte is written atomically.
    std::vector<char> keep(n, 0);
    const uint64_t reach = 2 * uint64_t(model.vote_window);
    const uint64_t align = aligned ? model.base_alignment : 0;
    constexpr uint32_t kRowRangeNodes = 4096;
    const int ranges = int(n / kRowRangeNodes) + 1;
    ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1)
    for (int r = 0; r < ranges; ++r)
        errors.run([&] {
            check_deadline();
            const auto first = uint32_t(uint64_t(n) * uint64_t(r) / uint64_t(ranges));
            const auto last = uint32_t(uint64_t(n) * uint64_t(r + 1) / uint64_t(ranges));
            const uint64_t lo = r == 0 ? 0 : vaddr[first];
            const std::optional<uint64_t> hi = r + 1 == ranges ? std::nullopt : std::optional(vaddr[last]);
            mark_voting_rows(graph, model, extent, threshold, reach, align, first, last, lo, hi, keep,
                             all_carriers ? &carries_one : nullptr);
        });
    errors.rethrow();
    if (all_carriers) {   // every node carrying some key node, ascending
        all_carriers->clear();
        for (uint32_t i = 0; i < n; ++i)
            if (carries_one[i]) all_carriers->push_back(i);
    }
    std::vector<uint32_t> rows;
    for (uint32_t i = 0; i < n; ++i)
        if (keep[i]) rows.push_back(i);
    return rows;
}

std::vector<Candidate> vote(const MemoryGraph& graph, const Model& model, std::span<const uint32_t> rows,
                            const Mat<float>& probs) {
    return apply_overlap_rule(model, voted_bases(graph, model, rows, probs));
}

std::vector<Candidate> vote(const MemoryGraph& graph, const Model& model, std::span<const uint32_t> rows,
                            std::span<const uint32_t> classes) {
    return apply_overlap_rule(model, voted_bases(graph, model, rows, classes));
}

std::vector<std::pair<uint64_t, uint32_t>> votes_of(const MemoryGraph& graph, const Model& model,
                                                    std::span<const uint32_t> rows, const Mat<float>& probs) {
    const auto k = static_cast<Eigen::Index>(model.key_nodes.size() + 1);
    if (probs.rows() != Eigen::Index(rows.size()) || probs.cols() != k)
        throw ModelError(ModelError::Kind::BadBatch, 0,
                         "probabilities are " + std::to_string(probs.rows()) + "×" + std::to_string(probs.cols()) +
                             ", expected " + std::to_string(rows.size()) + "×" + std::to_string(k) + " (rows × classes)");
    return votes_of(graph, model, rows, argmax_classes(probs));
}

std::vector<std::pair<uint64_t, uint32_t>> votes_of(const MemoryGraph& graph, const Model& model,
                                                    std::span<const uint32_t> rows, std::span<const uint32_t> classes) {
    const uint32_t n = graph.node_count();
    if (classes.size() != rows.size())
        throw ModelError(ModelError::Kind::BadBatch, 0,
                         std::to_string(classes.size()) + " classes for " + std::to_string(rows.size()) + " rows");
    auto vaddr = graph.vaddr();
    // bases below the offset (impossible in kernel space) skipped
    std::vector<std::pair<uint64_t, uint32_t>> votes;
    for (size_t r = 0; r < rows.size(); ++r) {
        const uint32_t i = rows[r], c = classes[r];
        if (i >= n) throw ModelError(ModelError::Kind::BadBatch, 0, "row " + std::to_string(i) + " ≥ " + std::to_string(n) + " nodes");
        if (c > model.key_nodes.size())
            throw ModelError(ModelError::Kind::BadBatch, 0,
                             "class " + std::to_string(c) + " of row " + std::to_string(i) + " > " +
                                 std::to_string(model.key_nodes.size()) + " key nodes");
        if (c == 0) continue;
        const KeyNode& key = model.key_nodes[size_t(c) - 1];
        if (!carries(graph, i, key) || vaddr[i] < key.offset) continue;
        votes.emplace_back(vaddr[i] - key.offset, c);
    }
    std::sort(votes.begin(), votes.end());
    return votes;
}

std::vector<Candidate> voted_bases(const MemoryGraph& graph, const Model& model, std::span<const uint32_t> rows,
                                   const Mat<float>& probs) {
    std::vector<Candidate> cands = bases_of(model, votes_of(graph, model, rows, probs));
    for (Candidate& c : cands) c.paddr = physical_of(graph, c.vaddr);
    return cands;
}

std::vector<Candidate> voted_bases(const MemoryGraph& graph, const Model& model, std::span<const uint32_t> rows,
                                   std::span<const uint32_t> classes) {
    std::vector<Candidate> cands = bases_of(model, votes_of(graph, model, rows, classes));
    for (Candidate& c : cands) c.paddr = physical_of(graph, c.vaddr);
    return cands;
}

float max_score(const Model& model) {
    float score = 0;   // in class order, as bases_of() sums a base voted for by every key node
    for (const KeyNode& k : model.key_nodes) score += k.weight;
    return model.key_nodes.empty() ? 0.f : score + kVoteBonus * float(model.key_nodes.size() - 1);
}

std::vector<Candidate> bases_of(const Model& model, std::span<const std::pair<uint64_t, uint32_t>> votes) {
    return bases_of(model, votes, model.vote_window, model.base_alignment);
}

std::vector<Candidate> bases_of(const Model& model, std::span<const std::pair<uint64_t, uint32_t>> votes,
                                uint32_t window, uint32_t alignment) {
    const uint64_t align = alignment > 1 ? alignment : 1;
    std::vector<Candidate> cands;
    for (size_t i = 0; i < votes.size();) {
        Candidate c{votes[i].first, 0.f, 0, std::nullopt, UINT32_MAX};
        for (; i < votes.size() && votes[i].first == c.vaddr; ++i) {
            const KeyNode& key = model.key_nodes[votes[i].second - 1];
            c.score += key.weight;
            c.lead_offset = std::min(c.lead_offset, key.offset);
            ++c.votes;
        }
        c.score += kVoteBonus * float(c.votes - 1);
        if (align == 1 || c.vaddr % align == 0) {
            cands.push_back(c);
        } else if (window > 0) {   // Alignment: the nearest multiple of A within W, scored below
            const uint64_t below = c.vaddr - c.vaddr % align, off = c.vaddr - below;
            const bool up = align - off < off && below <= UINT64_MAX - align;
            const uint64_t to = up ? below + align : below;
            if ((up ? align - off : off) <= window) cands.push_back(Candidate{to, 0.f, 0, std::nullopt, UINT32_MAX});
        }
    }
    if (window == 0) return cands;
    if (align > 1) {   // proposed bases among the voted ones: sorted, once, with the lead offset of their own votes
        std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
            return a.vaddr != b.vaddr ? a.vaddr < b.vaddr : a.lead_offset < b.lead_offset;
        });
        cands.erase(std::unique(cands.begin(), cands.end(),
                                [](const Candidate& a, const Candidate& b) { return a.vaddr == b.vaddr; }),
                    cands.end());
    }
    // See Window in detect.hpp: a sliding window [b − W, b + W] over the sorted votes, with a count
    // per class so that each class scores once. The score is summed in class order for every
    // candidate (K is small), so it does not depend on the order votes entered the window.
    std::vector<uint32_t> in_window(model.key_nodes.size() + 1, 0);
    size_t lo = 0, hi = 0;
    uint32_t classes = 0;
    for (Candidate& c : cands) {
        // [c − W, c + W] clipped to the address space (a base near 2^64 must not wrap the window)
        const uint64_t top = add_saturating(c.vaddr, window);
        const uint64_t bottom = c.vaddr < window ? 0 : c.vaddr - window;
        for (; hi < votes.size() && votes[hi].first <= top; ++hi) classes += in_window[votes[hi].second]++ == 0;
        for (; lo < hi && votes[lo].first < bottom; ++lo) classes -= --in_window[votes[lo].second] == 0;   // a vote within W of c stops lo
        float score = 0;
        for (size_t k = 1; k < in_window.size(); ++k)
            if (in_window[k]) score += model.key_nodes[k - 1].weight;
        c.score = score + kVoteBonus * float(classes - 1);
        c.votes = classes;
    }
    return cands;
}

uint64_t overlap_radius(const Model& model) {
    uint64_t radius = 0;
    for (const auto& key : model.key_nodes) radius = std::max<uint64_t>(radius, key.offset);
    return radius;
}

std::vector<Candidate> apply_overlap_rule(const Model& model, std::span<const Candidate> cands) {
    // Greedy in (score desc, vaddr asc); R = max key-node offset.
    const uint64_t radius = overlap_radius(model);
    if (radius == 0 || cands.size() < 2) return {cands.begin(), cands.end()};
    std::vector<uint32_t> order(cands.size());
    std::iota(order.begin(), order.end(), 0u);
    const bool lead = model.vote_window > 0;   // see Window in detect.hpp
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        if (cands[a].score != cands[b].score) return cands[a].score > cands[b].score;
        if (lead && cands[a].lead_offset != cands[b].lead_offset) return cands[a].lead_offset < cands[b].lead_offset;
        return cands[a].vaddr < cands[b].vaddr;
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
    (void)graph;
    std::vector<Detection> out;
    for (const Candidate& c : candidates) {
        if (!(c.score >= threshold)) continue;
        Detection d{model.object_type, c.vaddr, c.paddr, c.score, c.votes};
        out.push_back(std::move(d));
    }
    return out;
}

// ---- ground truth ---------------------------------------------------------------------------
namespace {

// The unsigned number of "key":123 in one JSON object line, if present.
std::optional<uint64_t> json_number(std::string_view line, std::string_view key, uint64_t offset) {
    std::string pat = "\"" + std::string(key) + "\":";
    size_t p = line.find(pat);
    if (p == std::string_view::npos) return std::nullopt;
    p += pat.size();
    uint64_t v = 0;
    size_t digits = 0;
    for (; p < line.size() && line[p] >= '0' && line[p] <= '9' && digits < 19; ++p, ++digits) v = v * 10 + uint64_t(line[p] - '0');
    if (digits == 0) throw FormatError(offset, "\"" + std::string(key) + "\" is not an unsigned number");
    return v;
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
            auto v = json_string_field(line, "vaddr"), ty = json_string_field(line, "type"), st = json_string_field(line, "state");
            if (!v || !ty) throw FormatError(offset, "label line without \"vaddr\" and \"type\"");
            t.vaddr = parse_hex_vaddr(*v, offset);
            t.type = std::string(*ty);
            t.size = json_number(line, "size", offset).value_or(0);
            if (auto pa = json_string_field(line, "paddr")) t.paddr = parse_hex_vaddr(*pa, offset);
            if (st && *st != "live" && *st != "freed")
                throw FormatError(offset, "label state '" + std::string(*st) + "' (expected live|freed)");
            t.freed = st && *st == "freed";
        } else {
            t.tsv = true;
            size_t tab = line.find('\t');
            if (tab == std::string_view::npos) throw FormatError(offset, "label line without a tab (expected vaddr<TAB>type)");
            t.vaddr = parse_hex_vaddr(line.substr(0, tab), offset);
            std::string_view rest = line.substr(tab + 1);
            size_t tab2 = rest.find('\t');
            t.type = std::string(rest.substr(0, tab2));
            if (t.type.empty()) throw FormatError(offset, "label line with an empty type");
            if (tab2 != std::string_view::npos) {
                std::string_view sz = rest.substr(tab2 + 1);
                sz = sz.substr(0, sz.find('\t'));
                auto [p, ec] = std::from_chars(sz.data(), sz.data() + sz.size(), t.size);
                if (ec != std::errc() || p != sz.data() + sz.size())
                    throw FormatError(offset, "label size '" + std::string(sz) + "' is not a number");
            }
        }
        out.push_back(std::move(t));
    }
    return out;
}

std::vector<TruthObject> read_truth(const std::string& path) {
    std::vector<TruthObject> truth = parse_truth(read_whole_file(path, "labels"));
    // Nothing to score against is an error, not recall 1.0 (a truncated or wrong file).
    if (truth.empty()) throw InputError("labels '" + path + "' hold no labels");
    return truth;
}

std::map<std::string, TypeScore> evaluate(std::span<const Detection> detections, std::span<const TruthObject> truth,
                                          std::span<const std::string> types) {
    std::map<std::string, TypeScore> out;
    auto wanted = [&](const std::string& t) {
        return types.empty() || std::find(types.begin(), types.end(), t) != types.end();
    };
    std::map<std::string, TruthIndex> index;   // per type
    for (const auto& t : truth) {
        if (!wanted(t.type)) continue;
        out[t.type].freed_total += t.freed;
        if (!index.count(t.type))
            index.emplace(t.type, TruthIndex(truth, [&](const TruthObject& o) { return o.type == t.type; }));
    }
    std::vector<char> matched(truth.size(), 0);
    std::set<std::pair<std::string, uint64_t>> seen;
    for (const auto& d : detections) {
        if (!types.empty() && !wanted(d.type)) continue;
        TypeScore& s = out[d.type];
        if (!seen.insert({d.type, d.vaddr}).second) continue;   // a duplicate detection counts once
        auto idx = index.count(d.type) ? index.at(d.type).find(d.vaddr, d.paddr) : std::nullopt;
        if (!idx || matched[*idx]) {   // nothing there, or its object already claimed by an alias
            ++s.fp;
            // A freed object's bytes voted at another base: a wrong answer (its fields read shifted),
            // so a false positive, counted also apart to say where the false positives come from.
            if (!idx && index.count(d.type) && index.at(d.type).freed_containing(d.vaddr)) ++s.freed_inside;
            s.spurious.push_back(d.vaddr);
            continue;
        }
        matched[*idx] = 1;
        if (truth[*idx].freed) ++s.freed_found;
        else ++s.tp;
    }
    for (size_t i = 0; i < truth.size(); ++i)
        if (wanted(truth[i].type) && !truth[i].freed && !matched[i]) {
            TypeScore& s = out[truth[i].type];
            ++s.fn;
            s.missed.push_back(truth[i].vaddr);
        }
    for (auto& [type, s] : out) {
        std::sort(s.missed.begin(), s.missed.end());
        std::sort(s.spurious.begin(), s.spurious.end());
    }
    return out;
}

namespace {

// Every candidate as (score, is a live truth object of `type`), by descending score; freed hits at
// a freed object's base are neutral; inside one at another base they are false positives
// (evaluate()). `live` counts the live truth objects.
std::vector<std::pair<float, int>> scored_candidates(const std::string& type, std::span<const CalibrationSet> sets,
                                                     uint64_t& live) {
    std::vector<std::pair<float, int>> scored;   // second: 1 TP, 0 FP, −1 neutral
    live = 0;
    for (const auto& set : sets) {
        TruthIndex index(set.truth, [&](const TruthObject& o) { return o.type == type; });
        for (const auto& t : set.truth) live += t.type == type && !t.freed;
        for (const auto& c : set.candidates) {
            auto idx = index.find(c.vaddr, c.paddr);
            scored.emplace_back(c.score, !idx ? 0 : set.truth[*idx].freed ? -1 : 1);
        }
    }
    std::sort(scored.begin(), scored.end(), [](auto& a, auto& b) { return a.first > b.first; });
    return scored;
}

}  // namespace

TypeScore score_at_threshold(const std::string& type, std::span<const CalibrationSet> sets, float threshold) {
    uint64_t live = 0;
    TypeScore s;
    for (const auto& [score, kind] : scored_candidates(type, sets, live)) {
        if (!(score >= threshold)) break;
        s.tp += kind == 1;
        s.fp += kind == 0;
    }
    s.fn = live - s.tp;
    return s;
}

Calibration calibrate_threshold(const std::string& type, std::span<const CalibrationSet> sets, float floor) {
    uint64_t live = 0;
    const std::vector<std::pair<float, int>> scored = scored_candidates(type, sets, live);
    Calibration best;
    const float above_floor = std::nextafter(std::max(floor, 0.f), INFINITY);
    best.threshold = std::max(scored.empty() ? 1.f : std::nextafter(scored.front().first, INFINITY), above_floor);
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
        if (live == 0 || !(scored[i].first > floor)) break;   // accepting scored[i] needs a threshold ≤ floor
        double f1 = s.f1();
        if (f1 > best_f1) {
            best_f1 = f1;
            float lo = std::max(i + 1 < scored.size() ? scored[i + 1].first : 0.f, floor);
            best.threshold = 0.5f * (lo + scored[i].first);
            if (!(best.threshold > lo)) best.threshold = scored[i].first;
            best.score = s;
        }
    }
    return best;
}

}  // namespace deepmem
