// The smallest edit that hides an object from a model (issue #13 item 3): a white-box greedy search
// over content edits of an object's non-pointer words, each scored exactly by the model.
//
// Contract
//   protected_fields(L, type)  Byte ranges [begin, end) of one of the six object types (offsets from
//             BTF through KernelLayout, nothing hard-coded) the search never edits because the kernel
//             needs them to keep running the object; members a build lacks are skipped. Sorted, merged.
//             InputError for another type (has_protected_fields says which). Per type (the lists: hide.cpp):
//             task_struct  the list links (tasks, pid_links[], thread_node / thread_group, sibling,
//                          children, ptraced, ptrace_entry), the scheduler's run-queue entries
//                          (se.group_node, se.run_node, se.on_rq, se.load, se.vruntime: the CFS tree's
//                          key, rt.run_list, dl.rb_node, pushable_tasks, pushable_dl_tasks, wake_entry),
//                          the pointers to the task's resources (stack, mm, active_mm, real_parent,
//                          parent, group_leader, signal, sighand, cred, real_cred, fs, files, nsproxy,
//                          thread_pid, cpus_ptr) and the values the scheduler and exit paths act on
//                          (__state, flags, exit_state, on_rq, on_cpu, usage, pid, tgid, prio,
//                          static_prio, normal_prio, policy, nr_cpus_allowed, cpus_mask, stack_canary: a
//                          changed canary fails every frame on the task's stack; thread: the saved
//                          registers and FPU state). Editable: comm, times, counters.
//             mm_struct    the VMA tree or list (mm_mt; mmap, mm_rb before 6.1), pgd, the reference
//                          counts, locks and sequence counts, mmlist, the address-space layout the
//                          kernel maps by (mmap_base, task_size, start_brk, brk, def_flags), the
//                          accounting checked at exit (rss_stat, pgtables_bytes, map_count,
//                          locked_vm, pinned_vm), context (x86: LDT, TLB generation), flags, owner,
//                          exe_file, cpu_bitmap. Editable: hiwater_*, total_vm, data/exec/stack_vm,
//                          start_code … env_end (what /proc shows), saved_auxv.
//             cred         every member the kernel reads to decide access: usage, the eight ids,
//                          securebits, the five capability sets, jit_keyring, the keyrings, security,
//                          user, user_ns, ucounts, group_info. Editable: padding, non_rcu.
//             file         f_u, f_path, f_inode, f_op, f_lock, f_count / f_ref, f_flags, f_mode,
//                          f_iocb_flags, f_pos_lock, f_pos, f_owner, f_cred, f_version, f_security,
//                          private_data, f_ep, f_mapping, f_wb_err, f_sb_err. Editable: f_ra
//                          (read-ahead state), padding, and on 6.1 the second word of the union of
//                          f_llist, f_rcuhead and f_iocb_flags (used once the file is put).
//             dentry       every member but d_time (d_iname / d_shortname too: the name lookups compare).
//             module       state, list, mkobj, param_lock, the layout (core_layout, init_layout or
//                          mem[]), arch, refcnt, source_list, target_list, init, exit, and every table
//                          pointer with its count (syms, num_syms, kp, num_kp, …). Editable: name,
//                          taints, the flags (sig_ok, using_gplonly_symbols, …).
//   hide_candidates  Word offsets w (word_size W = the graph's: 8 under x86-64 paging, 4 under
//             32-bit and PAE; the object W-aligned) with w + W ≤ size, whose value is not a pointer
//             field (< kernel_base, so it is a kernel address of no mapping: the graph's structure
//             does not depend on it), that overlap no protected range. Ascending.
//   HideSearch  Over one memory graph and one model: a private copy of the graph's node features
//             that edits patch. An edit of a non-pointer word into a non-pointer value leaves every
//             segment, length and edge as it was (graph/memory_graph.hpp) and changes only the
//             features of the node holding the word when it lies in that node's first feature_bytes
//             bytes; elsewhere it changes nothing the model sees (features(): such words are no
//             candidates). score(b) = the exact vote score of base b (detect/detect.hpp: Votes,
//             Score, Window) from the model's pruned run (InferenceNet::run on rows) over the nodes
//             that can vote for b, and a smooth part: Σ over the key nodes k_c that can vote for b of
//             k_c.weight · P(class c) at its node (max over the nodes carrying it in the window).
//   hide()    Greedy: each step tries every remaining candidate word with each of its replacement
//             values (those equal to the current value or ≥ kernel_base, i.e. pointers, are skipped) and applies
//             the one edit of lowest (exact score, smooth part), lexicographically; each word at most
//             once. Stops when the exact score is below `threshold` (hidden) or after `max_words`
//             edits, or when no edit lowers the pair. The edits stay applied to the features (a
//             next object is searched on the edited graph) until revert(base, edits) writes the old
//             values back (each object then costs what hiding it alone costs: an edit to one object
//             also changes its graph neighbours' embeddings, e.g. the next module on `modules`).
//             bytes_changed counts bytes whose final
//             value differs from the original. A score below threshold at b means no detection at b
//             (select() keeps score ≥ threshold only); the Overlap rule can only remove more.
//   Not covered: edits that move pointers or change the graph's structure (planting, unlinking),
//             gradients (the search is by repeated exact scoring), and the model's other key-node
//             bases inside the object (a shifted detection inside an edited object is reported by
//             dm-attack hide's verification, not prevented here).
#pragma once

#include "detect/detect.hpp"
#include "engine/engine.hpp"
#include "graph/memory_graph.hpp"
#include "train/kernel_layout.hpp"

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace deepmem {

struct ByteRange {
    uint64_t begin = 0, end = 0;   // [begin, end), bytes from the struct's start
    bool operator==(const ByteRange&) const = default;
};
std::vector<ByteRange> protected_fields(const KernelLayout& L, std::string_view type);
bool has_protected_fields(std::string_view type);   // one of the six types above

std::vector<uint64_t> hide_candidates(std::span<const uint8_t> object, uint64_t kernel_base,
                                      std::span<const ByteRange> protect, unsigned word_size = 8);

// Bytes of two words of word_size bytes that differ (what an edit of a word costs an attacker).
unsigned differing_bytes(uint64_t a, uint64_t b, unsigned word_size = 8);

struct WordCandidate {
    uint64_t offset = 0;                    // bytes from the object's start, word-aligned
    uint64_t value = 0;                     // the word as found in the dump
    std::vector<uint64_t> replacements;     // values to try (e.g. 0, the word of other live objects)
};
struct WordEdit {
    uint64_t offset = 0, old_value = 0, new_value = 0;
};
struct HideResult {
    float score_before = 0, score_after = 0;   // exact vote scores at the base
    bool hidden = false;                       // score_after < threshold
    std::vector<WordEdit> edits;               // in the order applied
    uint64_t bytes_changed = 0;                // bytes whose value differs from the original
    uint64_t evaluations = 0;                  // model runs
    double seconds = 0;
};

class HideSearch {
public:
    HideSearch(const MemoryGraph& graph, const Model& model);
    // Exact score of base `base` and the smooth part (see above).
    std::pair<float, float> score(uint64_t base);
    // Candidates whose word lies in some node's first feature_bytes bytes (others cannot change the score).
    std::vector<WordCandidate> in_features(uint64_t base, std::vector<WordCandidate> candidates) const;
    HideResult hide(uint64_t base, std::span<const WordCandidate> candidates, uint32_t max_words, float threshold,
                    uint64_t kernel_base);
    // Undoes hide()'s edits at `base` (the old values, in reverse order).
    void revert(uint64_t base, std::span<const WordEdit> edits);

private:
    // Writes `value`'s W low bytes (the graph's word size) into the features of the nodes holding
    // vaddr..vaddr+W−1 (those in a node's first feature_bytes).
    void patch(uint64_t vaddr, uint64_t value);
    const MemoryGraph& graph_;
    const Model& model_;
    InferenceNet net_;
    std::vector<uint8_t> features_;
    Mat<float> probs_;
};

}  // namespace deepmem
