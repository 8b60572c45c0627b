// White-box hiding search (contract: train/hide.hpp).
#include "train/hide.hpp"

#include "graph/errors.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace deepmem {

unsigned differing_bytes(uint64_t a, uint64_t b, unsigned word_size) {
    unsigned n = 0;
    for (unsigned k = 0; k < word_size; ++k) n += ((a >> (8 * k)) & 0xff) != ((b >> (8 * k)) & 0xff);
    return n;
}

namespace {

// The members of each type the kernel needs intact to keep running (names as in the headers of
// kernel_layout.hpp; a member a build lacks is skipped: versions differ).
const char* const kTaskFields[] = {   // include/linux/sched.h
    "tasks", "pid_links", "thread_node", "thread_group", "sibling", "children", "ptraced", "ptrace_entry",
    "se.group_node", "se.run_node", "se.on_rq", "se.load", "se.vruntime", "rt.run_list", "dl.rb_node",
    "pushable_tasks", "pushable_dl_tasks", "wake_entry", "stack", "mm", "active_mm", "real_parent", "parent",
    "group_leader", "signal", "sighand", "cred", "real_cred", "fs", "files", "nsproxy", "thread_pid",
    "cpus_ptr", "__state", "state", "flags", "exit_state", "on_rq", "on_cpu", "usage", "pid", "tgid", "prio",
    "static_prio", "normal_prio", "policy", "nr_cpus_allowed", "cpus_mask", "stack_canary", "thread"};
const char* const kMmFields[] = {   // include/linux/mm_types.h, arch/x86/include/asm/mmu.h (context)
    "mm_mt", "mmap", "mm_rb", "mmap_cache_seqnum", "get_unmapped_area", "mmap_base", "mmap_legacy_base",
    "task_size", "highest_vm_end", "pgd", "membarrier_state", "mm_users", "mm_count", "pcpu_cid",
    "pgtables_bytes", "map_count", "page_table_lock", "mmap_lock", "mmlist", "mm_lock_seq", "locked_vm",
    "pinned_vm", "def_flags", "write_protect_seq", "arg_lock", "start_brk", "brk", "rss_stat", "binfmt",
    "context", "flags", "ioctx_lock", "ioctx_table", "owner", "user_ns", "exe_file", "notifier_subscriptions",
    "tlb_flush_pending", "tlb_flush_batched", "uprobes_state", "async_put_work", "cpu_bitmap"};
const char* const kCredFields[] = {   // include/linux/cred.h: the reference count, who the task is, what it may do
    "usage", "uid", "gid", "suid", "sgid", "euid", "egid", "fsuid", "fsgid", "securebits", "cap_inheritable",
    "cap_permitted", "cap_effective", "cap_bset", "cap_ambient", "jit_keyring", "session_keyring",
    "process_keyring", "thread_keyring", "request_key_auth", "security", "user", "user_ns", "ucounts",
    "group_info"};
const char* const kFileFields[] = {   // include/linux/fs.h
    "f_u", "f_path", "f_inode", "f_op", "f_lock", "f_count", "f_ref", "f_flags", "f_mode", "f_iocb_flags",
    "f_pos_lock", "f_pos", "f_owner", "f_cred", "f_version", "f_security", "private_data", "f_ep",
    "f_mapping", "f_wb_err", "f_sb_err"};
const char* const kDentryFields[] = {   // include/linux/dcache.h (d_iname / d_shortname: the name compared)
    "d_flags", "d_seq", "d_hash", "d_parent", "d_name", "d_inode", "d_iname", "d_shortname", "d_lockref",
    "d_op", "d_sb", "d_fsdata", "d_lru", "d_wait", "d_child", "d_sib", "d_subdirs", "d_children", "d_u"};
const char* const kModuleFields[] = {   // include/linux/module.h: lists, locks, layout, and the counts of its tables
    "state", "list", "mkobj", "modinfo_attrs", "holders_dir", "syms", "crcs", "num_syms", "param_lock", "kp",
    "num_kp", "num_gpl_syms", "gpl_syms", "gpl_crcs", "num_exentries", "extable", "init", "core_layout",
    "init_layout", "mem", "arch", "num_bugs", "bug_list", "bug_table", "kallsyms", "core_kallsyms", "percpu",
    "percpu_size", "noinstr_text_size", "num_tracepoints", "tracepoints_ptrs", "num_srcu_structs",
    "srcu_struct_ptrs", "num_bpf_raw_events", "bpf_raw_events", "btf_data_size", "btf_data", "num_jump_entries",
    "jump_entries", "num_trace_bprintk_fmt", "num_trace_events", "num_trace_evals", "num_ftrace_callsites",
    "kprobes_text_size", "num_kprobe_blacklist", "num_static_call_sites", "source_list", "target_list", "exit",
    "refcnt", "num_ei_funcs"};

std::span<const char* const> field_list(std::string_view type) {
    if (type == "task_struct") return kTaskFields;
    if (type == "mm_struct") return kMmFields;
    if (type == "cred") return kCredFields;
    if (type == "file") return kFileFields;
    if (type == "dentry") return kDentryFields;
    if (type == "module") return kModuleFields;
    return {};
}

}  // namespace

bool has_protected_fields(std::string_view type) { return !field_list(type).empty(); }

std::vector<ByteRange> protected_fields(const KernelLayout& L, std::string_view type) {
    const std::span<const char* const> fields = field_list(type);
    if (fields.empty()) throw InputError("no protected fields known for object type '" + std::string(type) + "'");
    const std::string name(type);
    std::vector<ByteRange> r;
    for (const char* f : fields) {
        const auto off = L.opt(name.c_str(), f);
        if (!off) continue;
        r.push_back({*off, *off + std::max<uint64_t>(1, L.member_size(name.c_str(), f))});
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

void HideSearch::revert(uint64_t base, std::span<const WordEdit> edits) {
    for (auto e = edits.rbegin(); e != edits.rend(); ++e) patch(base + e->offset, e->old_value);
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
