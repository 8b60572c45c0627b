// The labeler's walks over a dumped Linux kernel, with every offset taken from BTF:
//   init_task.tasks (processes) → each thread group (signal->thread_head, else task->thread_group)
//   → task->mm, ->real_cred, ->cred, ->files → fdt → fd[] (open_fds) → file → f_path.dentry;
//   the `modules` list; the idle task of every CPU (runqueues[cpu].idle, not on any list);
//   the freelists of the task_struct, cred_jar, filp and mm_struct slab caches (freed-but-intact
//   task_structs, creds, files, mm_structs).
#include "train/labeler.hpp"
#include "train/kernel_layout.hpp"
#include "graph/text_lines.hpp"

#include "graph/layers.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <map>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>
#include <type_traits>

namespace deepmem {

bool TranslatedMemory::read(uint64_t vaddr, std::span<uint8_t> out) const { return t_->read_virtual(vaddr, out); }
std::optional<uint64_t> TranslatedMemory::physical(uint64_t vaddr) const { return t_->translate(vaddr); }
uint64_t TranslatedMemory::kernel_base() const { return t_->kernel_base(); }

std::optional<uint64_t> KernelMemory::word(uint64_t vaddr, uint64_t size) const {
    if (size == 0 || size > 8) return std::nullopt;
    uint8_t buf[8] = {};
    if (!read(vaddr, std::span<uint8_t>(buf, size))) return std::nullopt;
    uint64_t v = 0;
    std::memcpy(&v, buf, size);   // little-endian target
    return v;
}

std::optional<std::string> KernelMemory::cstring(uint64_t vaddr, uint64_t max) const {
    std::string s(max, '\0');
    if (!read(vaddr, std::span<uint8_t>(reinterpret_cast<uint8_t*>(s.data()), max))) {
        // The string may end before an unmapped page: read byte by byte.
        s.clear();
        for (uint64_t i = 0; i < max; ++i) {
            uint8_t c;
            if (!read(vaddr + i, std::span<uint8_t>(&c, 1))) return std::nullopt;
            if (c == 0) return s;
            s.push_back(static_cast<char>(c));
        }
        return std::nullopt;
    }
    auto z = s.find('\0');
    if (z == std::string::npos) return std::nullopt;
    s.resize(z);
    return s;
}

bool KernelMemory::same_byte(uint64_t a, uint64_t b) const {
    if (a == b) return true;
    auto pa = physical(a), pb = physical(b);
    return pa && pb && *pa == *pb;
}

bool list_next_links_back(const KernelMemory& mem, uint64_t node, uint64_t next, uint64_t kernel_base,
                          uint64_t pointer_size) {
    if (!plausible_list_pointer(next, kernel_base, pointer_size)) return false;
    auto back = mem.word(next + pointer_size, pointer_size);
    return back && mem.same_byte(*back, node);
}

bool list_links_back(const KernelMemory& mem, uint64_t node, uint64_t pointer_size) {
    auto next = mem.word(node, pointer_size), prev = mem.word(node + pointer_size, pointer_size);
    if (!next || !prev || !list_next_links_back(mem, node, *next, mem.kernel_base(), pointer_size) ||
        !plausible_list_pointer(*prev, mem.kernel_base(), pointer_size))
        return false;
    auto forward = mem.word(*prev, pointer_size);
    return forward && mem.same_byte(*forward, node);
}

FdTable read_fd_table(const KernelMemory& mem, const KernelLayout& L, uint64_t files, uint64_t pointer_size,
                      uint64_t max_fds_limit) {
    FdTable t;
    const uint64_t kbase = mem.kernel_base();
    const auto kernel_address = [&](const std::optional<uint64_t>& p) { return p && *p != 0 && *p >= kbase; };
    auto fdt = mem.word(files + L.fdt, pointer_size);
    if (!kernel_address(fdt)) {
        t.object = "files_struct " + hex(files), t.error = fdt ? "fdt " + hex(*fdt) + " is not a kernel address" : "fdt unreadable";
        t.unreadable = !fdt;
        return t;
    }
    t.fdt = *fdt;
    auto max = mem.word(*fdt + L.max_fds, L.max_fds_size);
    auto fd_array = mem.word(*fdt + L.fd, pointer_size), bitmap = mem.word(*fdt + L.open_fds, pointer_size);
    t.object = "fdtable " + hex(*fdt);
    if (!max || !kernel_address(fd_array) || !kernel_address(bitmap)) {
        t.unreadable = !max || !fd_array || !bitmap;
        t.error = t.unreadable ? "unreadable" : "fd or open_fds is not a kernel address";
        return t;
    }
    t.max_fds = *max;
    if (*max > max_fds_limit) {
        t.error = "max_fds " + std::to_string(*max) + " above the limit, skipped";
        return t;
    }
    if (*max && *fd_array > UINT64_MAX - (*max - 1) * pointer_size) {
        t.error = "fd array wraps around the address space";
        return t;
    }
    std::vector<uint64_t> bits((*max + 63) / 64);
    if (!mem.read(*bitmap, std::span<uint8_t>(reinterpret_cast<uint8_t*>(bits.data()), (*max + 7) / 8))) {
        t.error = "open_fds bitmap unreadable";
        t.unreadable = true;
        return t;
    }
    for (uint64_t w = 0; w < bits.size(); ++w)
        for (uint64_t b = bits[w]; b; b &= b - 1) {
            const uint64_t fd = w * 64 + uint64_t(std::countr_zero(b));
            if (fd >= *max) break;
            const uint64_t entry = *fd_array + fd * pointer_size;
            t.open.push_back({fd, entry, *bitmap + fd / 8, mem.word(entry, pointer_size)});
        }
    return t;
}

uint64_t slub_freelist_next(uint64_t stored, uint64_t at, uint64_t random, uint64_t pointer_size) {
    if (!random) return stored;
    const uint64_t swabbed =
        pointer_size == 8 ? __builtin_bswap64(at) : __builtin_bswap32(static_cast<uint32_t>(at));
    return stored ^ random ^ swabbed;
}

std::map<std::string, uint64_t> LabelSet::per_type() const {
    std::map<std::string, uint64_t> m;
    for (const Label& l : labels) ++m[l.freed ? l.type + " (freed)" : l.type];
    return m;
}

namespace {

class Walker {
public:
    Walker(const KernelMemory& m, const btf::Btf& b, const Kallsyms& s, const LabelerOptions& o)
        : mem_(m), btf_(b), syms_(s), opt_(o), L_(b), psize_(b.pointer_size()), kbase_(m.kernel_base()) {
        // x86 allocates task_structs of arch_task_struct_size bytes: BTF's sizeof counts the
        // largest FPU register state, the kernel only the CPU's (on qemu64: 6208 of 9792 bytes),
        // so slab neighbours sit closer than sizeof. The real size makes labels not overlap.
        if (auto a = syms_.address("arch_task_struct_size"))
            if (auto v = word(*a, 4); v && *v > L_.tasks && *v <= L_.task_size) L_.task_size = *v;
    }

    LabelSet run();
    LabelSet held(std::span<const uint64_t> tasks);   // label_task_objects
    LabelSet finish();

private:
    // Objects (node − link) on a list's prev chain alone (walk_list), with the threads of such leaders:
    // LabelSet::prev_only.
    std::unordered_set<uint64_t> prev_only_;
    std::optional<uint64_t> word(uint64_t va, uint64_t size) const { return mem_.word(va, size); }
    std::optional<uint64_t> ptr(uint64_t va) const { return word(va, psize_); }
    bool plausible(uint64_t p) const { return p != 0 && p >= kbase_; }
    // A link a list walk follows (labeler.hpp plausible_list_pointer).
    bool plausible_link(uint64_t p) const { return plausible_list_pointer(p, kbase_, psize_); }
    // Names in kernel objects (comm, module name, dentry and slab names) are NUL-terminated within
    // their buffer; an unreadable or unterminated one is "".
    std::string read_string(uint64_t va, uint64_t max) const { return mem_.cstring(va, max).value_or(""); }
    // warn(), and the view `view` was not read whole (LabelSet::views_cut): its first such warning kept
    void warn_cut(const char* view, std::string w) {
        out_.views_cut.try_emplace(view, w);
        warn(std::move(w));
    }
    // warn(), and the view `view` was read broken in memory (LabelSet::views_broken): what its walk
    // met is no part of what it walks (a smeared capture's page of something else, or an edit)
    void warn_broken(const char* view, std::string w) {
        out_.views_broken.try_emplace(view, w);
        warn(std::move(w));
    }
    void warn(std::string w) {
        if (out_.warnings.size() < 1000) out_.warnings.push_back(std::move(w));
        else if (out_.warnings.size() == 1000) out_.warnings.push_back("(further warnings suppressed)");
    }

    // Records a live label; false when (vaddr, type) was already labeled.
    bool add(uint64_t va, const char* type, uint64_t size, std::string found_by, std::string name = {},
             int64_t pid = -1) {
        if (!seen_[type].insert(va).second) return false;
        record(va, type, size, std::move(found_by), std::move(name), pid, false);
        return true;
    }
    // Appends a label. Freed ones (SLUB freelists) stay out of seen_: the walks do not revisit them.
    void record(uint64_t va, const char* type, uint64_t size, std::string found_by, std::string name, int64_t pid,
                bool freed) {
        Label l;
        l.vaddr = va;
        l.paddr = mem_.physical(va);
        l.type = type;
        l.size = size;
        l.found_by = std::move(found_by);
        l.name = std::move(name);
        l.pid = pid;
        l.holder = holder_;
        l.freed = freed;
        out_.labels.push_back(std::move(l));
    }

    // Visits each entry of the circular list_head list at `head` (the head itself excluded),
    // calling f(entry) with entry = node - link, in list order. Each step is checked as
    // CONFIG_DEBUG_LIST does (lib/list_debug.c): the node reached along `next` must point back
    // along `prev` to the node it was reached from, and the walk must end at a head whose prev is
    // its last node. A walk along `next` that breaks (a link that is no plausible_list_pointer, a
    // loop, an unreadable node, a step whose back link disagrees, a node an earlier walk took) is
    // followed by a walk from the head back along `prev`, checked the same way, until it reaches
    // the forward walk's last node (nothing lost), an earlier forward node (the entries between
    // the two walks are lost) or breaks too; one warning says how far each direction got. A node
    // is walked once per Walker (a list walked again with the same link offset gives the same
    // entries, without warnings; with another, its nodes are another walk's: a break): all
    // walks together visit at most max_list_total nodes, so forged
    // lists cost linear time and bounded memory (attacker 13: a fake prev chain of K nodes cost
    // K² steps through the thread-group walks of its fake tasks). One walk stops after max_list
    // entries (no walk back: the list is long, not broken).
    // `accept(entry)`, when given, returns why an entry does not belong to this list ("" when it
    // does): such a node is a break, not claimed (a forged head into another list's nodes must not
    // take them from that list's own walk). `view`, when given, names the view the list feeds
    // (LabelSet::views_cut): entries lost where both directions ended at an unreadable node cut it.
    // `next_alone`: the kernel's views walk this list along next alone (init_task.tasks:
    // for_each_process; modules: lsmod), so what is on its prev chain alone is in LabelSet::prev_only.
    // Not a thread list: its leader is on init_task.tasks whatever the list holds, and 6.1's
    // /proc/PID/task walks thread_group, not signal->thread_head (attacker 113: thread_head.next
    // pointed at itself put a leader on init_task.tasks, and its threads, on the prev chain alone).
    using Accept = std::function<std::string(uint64_t entry)>;
    template <class F>
    uint64_t walk_list(uint64_t head, uint64_t link, const std::string& what, F&& f, const Accept& accept = {},
                       const char* view = nullptr, bool next_alone = false) {
        if (auto done = walked_.find({head, link}); done != walked_.end()) {   // the same list again: same entries
            for (uint64_t node : done->second) f(node - link);
            return done->second.size();
        }
        const uint32_t id = static_cast<uint32_t>(walk_names_.size());
        walk_names_.push_back(what);
        std::vector<uint64_t> forward, back;
        const ListEnd end = follow_list(head, 0, 2 * id, nullptr, opt_.max_list, forward, link, accept);
        if (end.kind == ListEnd::TooLong && !(total_limit_said_ && claimed_.size() >= opt_.max_list_total)) {
            total_limit_said_ = claimed_.size() >= opt_.max_list_total;
            warn(what + ": " + end.why + ", truncated" + (total_limit_said_ ? "; later list walks too" : ""));
        }
        if (end.kind == ListEnd::Broken) {
            const ListEnd b =
                follow_list(head, psize_, 2 * id + 1, &forward, opt_.max_list - forward.size(), back, link, accept);
            std::string w = what + ": " + end.why + "; walked back along prev from the head: " +
                            std::to_string(back.size()) + " entries";
            if (b.kind == ListEnd::Met) w += ", up to the forward walk";
            else if (b.kind == ListEnd::Head) w += ", back to the head";
            else w += ", then " + b.why;
            // entries lost between two nodes that could not be read: the view misses them for want of
            // memory (a walk ending at a link that does not point back is a broken list, not a cut).
            // None when the forward walk came round to the head and only the head's prev disagreed:
            // what the kernel walks (along next) was read whole (attacker 110 row 6: `modules.prev`
            // pointed at another list head, 8 bytes, made a module moved to a ring of its own "not judged")
            const bool lost = !end.closed && b.kind != ListEnd::Met && b.kind != ListEnd::Head;
            // A list closed along next has all it holds on the forward walk: what the back walk passed
            // before meeting it is on the prev chain alone, which the kernel's walk skips — labeled (the
            // objects are real), but in LabelSet::prev_only, off the views (attacker 112: one write, the
            // last entry's predecessor's next set to the head, hid a task from for_each_process and a
            // module from lsmod, and both read listed)
            if (end.closed && !back.empty() && next_alone) {
                w += "; on the prev chain alone: " + std::to_string(back.size()) + " entries (" + hex(back.front() - link) +
                     (back.size() > 1 ? ", …" : "") + ")";
                for (uint64_t node : back) prev_only_.insert(node - link);
            }
            if (end.closed) w += kHeadPrevOnly;
            if (view && lost && end.unreadable && b.unreadable) warn_cut(view, w);
            else {
                if (view && lost) out_.views_broken.try_emplace(view, w);
                warn(w);
            }
        }
        std::vector<uint64_t>& nodes = walked_[{head, link}];
        nodes = std::move(forward);
        nodes.insert(nodes.end(), back.rbegin(), back.rend());
        for (uint64_t node : nodes) f(node - link);
        return nodes.size();
    }
    // How one direction of walk_list ended: at the head, at the forward walk's last node (the
    // back walk), after a limit, or broken (`why`, e.g. "pointer 0x… after 3 entries is not a
    // kernel address").
    struct ListEnd {
        enum Kind { Head, Met, TooLong, Broken } kind = Head;
        std::string why;
        bool unreadable = false;   // Broken at a node (or the head's link) that could not be read
        bool closed = false;       // Broken only at the head's prev: the forward walk came round to the head
    };
    // Follows the link at byte `dir` of each list_head (0 next, pointer size prev) from `head`'s,
    // appending the nodes to `nodes` and claiming each for walk direction `owner` (claimed_). The
    // back walk passes the forward walk's nodes as `forward`.
    ListEnd follow_list(uint64_t head, uint64_t dir, uint32_t owner, const std::vector<uint64_t>* forward,
                        uint64_t limit, std::vector<uint64_t>& nodes, uint64_t link_offset, const Accept& accept) {
        const char* link = dir ? "prev" : "next";
        const char* other_link = dir ? "next" : "prev";
        const uint64_t other_dir = dir ? 0 : psize_;
        auto first = ptr(head + dir);
        if (!first) return {ListEnd::Broken, std::string("list head ") + hex(head) + " " + link + " unreadable", true};
        uint64_t from = head, cur = *first;
        auto from_name = [&] {
            return nodes.empty() ? std::string("the head") : "entry " + std::to_string(nodes.size()) + " (" + hex(from) + ")";
        };
        while (cur != head) {
            const std::string after = " after " + std::to_string(nodes.size()) + " entries";
            if (!plausible(cur)) return {ListEnd::Broken, "pointer " + hex(cur) + after + " is not a kernel address"};
            if (!plausible_link(cur))
                return {ListEnd::Broken, "pointer " + hex(cur) + after + " is not pointer-aligned"};
            if (auto c = claimed_.find(cur); c != claimed_.end()) {
                if (forward && c->second + 1 == owner) {   // a node of this list's forward walk
                    // not met where the forward walk's last node links on past the node this walk came
                    // from to one this walk passed: the nodes between are on the prev chain alone, which
                    // the kernel's walk along next skips (attacker 93: a hidden task put back that way)
                    if (cur == forward->back()) {
                        auto on = ptr(cur + other_dir);
                        if (!on || *on == from || std::find(nodes.begin(), nodes.end(), *on) == nodes.end()) return {ListEnd::Met, {}};
                        return {ListEnd::Broken, "the forward walk's last entry " + hex(cur) + " reached from " + from_name() +
                                                     ": its " + other_link + " " + hex(*on) + " skips the entries between"};
                    }
                    const auto i = std::find(forward->begin(), forward->end(), cur) - forward->begin();
                    return {ListEnd::Broken, "entry " + std::to_string(i + 1) + " of the forward walk's " +
                                                 std::to_string(forward->size()) +
                                                 ", not its last: the entries between the two walks, if any, are lost"};
                }
                if (c->second == owner) return {ListEnd::Broken, "loop at " + hex(cur) + after};
                return {ListEnd::Broken, "node " + hex(cur) + after + " is already on " + walk_names_[c->second / 2]};
            }
            if (nodes.size() >= limit) return {ListEnd::TooLong, "longer than " + std::to_string(opt_.max_list) + " entries"};
            if (claimed_.size() >= opt_.max_list_total)
                return {ListEnd::TooLong, "the list walks' limit of " + std::to_string(opt_.max_list_total) +
                                              " entries in all reached" + after};
            auto nx = ptr(cur + dir);   // an entry whose node is not in the dump is not visited
            auto back_link = ptr(cur + other_dir);
            if (!nx || !back_link) return {ListEnd::Broken, "node " + hex(cur) + " unreadable" + after, true};
            if (*back_link != from)
                return {ListEnd::Broken, std::string(link) + " of " + from_name() + " is " + hex(cur) + ", whose " +
                                             other_link + " is " + hex(*back_link)};
            if (accept)
                if (std::string why = accept(cur - link_offset); !why.empty())
                    return {ListEnd::Broken, "entry " + hex(cur - link_offset) + after + " " + why};
            claimed_.emplace(cur, owner);
            nodes.push_back(cur);
            from = cur;
            cur = *nx;
        }
        // The head closes the list: its other link must be the last node (the back walk reaches the
        // head only when the forward walk broke at the head's next, so it is not checked).
        if (!dir) {
            auto head_back = ptr(head + other_dir);
            if (!head_back || *head_back != from)
                return {ListEnd::Broken, "next of " + from_name() + " is the head, whose prev is " +
                                             (head_back ? hex(*head_back) : std::string("unreadable")), false, true};
        }
        return {ListEnd::Head, {}};
    }

    // Drops the tasks of `tasks` whose task_struct bytes overlap another's (or init_task's) and whose
    // group_leader is not `leader_of(t)`, with one warning: slab objects do not overlap, so such a list
    // was forged (attacker 13: a consistent fake list of 2^20 list_heads 16 bytes apart listed 2^20
    // "tasks"). An overlapping entry that is its own group leader (threads: points to the leader) is
    // kept and counted in the warning: a fake entry planted inside a real task must not hide the
    // real one (attacker 14).
    template <class LeaderOf>
    void drop_overlapping(std::vector<uint64_t>& tasks, uint64_t init_task, const std::string& what, LeaderOf&& leader_of) {
        std::vector<uint64_t> sorted = tasks;
        sorted.push_back(init_task);
        std::sort(sorted.begin(), sorted.end());
        std::unordered_set<uint64_t> overlapping;
        for (size_t i = 1; i < sorted.size(); ++i)
            if (sorted[i] - sorted[i - 1] < L_.task_size) overlapping.insert({sorted[i - 1], sorted[i]});
        overlapping.erase(init_task);   // the symbol's task is real
        if (overlapping.empty()) return;
        const size_t before = tasks.size();
        std::erase_if(tasks, [&](uint64_t t) {
            if (!overlapping.count(t)) return false;
            auto gl = ptr(t + L_.group_leader);
            return !gl || *gl != leader_of(t);
        });
        const size_t dropped = before - tasks.size(), kept = overlapping.size() - dropped;
        warn(what + ": " + std::to_string(overlapping.size()) + " of " + std::to_string(before) +
             " entries overlap another task_struct (" + std::to_string(L_.task_size) +
             " bytes each; slab objects do not overlap): " + std::to_string(dropped) +
             " whose group_leader disagrees not listed" +
             (kept ? ", " + std::to_string(kept) + " kept (their group_leader agrees)" : std::string()));
    }

    int64_t task_pid(uint64_t t) const {
        auto v = word(t + L_.pid, 4);
        return v ? static_cast<int32_t>(*v) : -1;
    }
    std::string task_comm(uint64_t t) const { return read_string(t + L_.comm, L_.comm_len); }

    bool add_task(uint64_t t, std::string found_by) {
        return add(t, "task_struct", L_.task_size, std::move(found_by), task_comm(t), task_pid(t));
    }
    // Objects hanging off one task: mm, creds, open files.
    void task_objects(uint64_t t, int64_t pid);
    // Open fds of a files_struct (memoised per files_struct); labels files and dentries.
    uint64_t open_files(uint64_t files, int64_t pid);
    uint64_t threads_of(uint64_t leader, int64_t pid);
    void modules();
    void file_objects(uint64_t file, const std::string& by);
    void dcache();
    void vma_files(uint64_t mm, const std::string& of);
    void idle_tasks(uint64_t init_task);
    template <class F>
    bool slab_slots(uint64_t init_task, const std::string& cache_name, const std::string& cache_var,
                    const std::string& what, SlabStats& stats,
                    F&& slot);
    template <class Intact, class Held = std::nullptr_t>
    void freed_objects(uint64_t init_task, const char* type, uint64_t size, const std::string& cache_name,
                       const std::string& cache_var, const std::string& what, SlabStats& stats,
                       const std::string& live_by, Intact&& intact, Held&& held = nullptr);
    void freed_tasks(uint64_t init_task);
    void freed_creds(uint64_t init_task);
    void freed_files(uint64_t init_task);
    void freed_mms(uint64_t init_task);
    std::optional<uint64_t> bits(uint64_t va, const btf::Field& f) const {
        // only the bytes the field spans (a 32-bit kernel's counters word may end its object)
        const uint64_t span = f.bitfield_size ? (f.bit_offset % 8 + f.bitfield_size + 7) / 8 : 8;
        auto w = word(va + f.bit_offset / 8, std::min<uint64_t>(span, 8));
        if (!w) return std::nullopt;
        uint64_t v = *w >> (f.bit_offset % 8);
        return f.bitfield_size && f.bitfield_size < 64 ? v & ((1ull << f.bitfield_size) - 1) : v;
    }

    const KernelMemory& mem_;
    const btf::Btf& btf_;
    const Kallsyms& syms_;
    LabelerOptions opt_;
    KernelLayout L_;
    uint64_t psize_, kbase_;
    LabelSet out_;
    std::unordered_map<std::string, std::unordered_set<uint64_t>> seen_;
    std::unordered_map<uint64_t, uint32_t> claimed_;   // list node → 2 × walk + direction (walk_list)
    std::vector<std::string> walk_names_;              // walk → what it walked, for warnings
    // (list head, link offset) → its nodes, in list order: the same head walked for another entry
    // type is another walk (attacker 14: a task's signal pointed at init_task.tasks)
    std::map<std::pair<uint64_t, uint64_t>, std::vector<uint64_t>> walked_;
    bool total_limit_said_ = false;                    // max_list_total reached and warned about
    std::unordered_set<uint64_t> vma_walked_;          // mms whose VMAs were walked (vma_files)
    uint64_t vma_visits_ = 0;                          // VMA-walk steps of all mms, ≤ max_list_total
    bool vma_limit_said_ = false;
    std::unordered_map<uint64_t, uint64_t> fd_count_;   // files_struct → open fds
    std::unordered_map<uint64_t, std::vector<uint64_t>> fd_numbers_;   // fdtable → open fd numbers
    std::unordered_map<uint64_t, uint64_t> fdt_count_, files_fdt_;      // fdtable → open fds; files_struct → its fdtable
    uint64_t fd_slots_ = 0;                            // open slots (and bitmap words) of all tables read, ≤ max_list_total
    uint64_t fd_numbers_copied_ = 0;                   // fd numbers copied into LabelCounts::per_process
    bool fd_limit_said_ = false;
    std::vector<std::pair<uint64_t, int64_t>> all_tasks_;
    uint64_t holder_ = 0;                              // held(): the task being walked
};

// A file, the credentials it was opened with and its dentry.
void Walker::file_objects(uint64_t file, const std::string& by) {
    add(file, "file", L_.file_size, by);
    if (L_.f_cred)
        if (auto c = ptr(file + *L_.f_cred); c && plausible(*c)) add(*c, "cred", L_.cred_size, "f_cred of " + by);
    auto d = ptr(file + L_.f_dentry);
    if (!d || !plausible(*d)) {
        warn(by + ": f_path.dentry unreadable");
        return;
    }
    std::string name;
    if (L_.d_name_name)
        if (auto np = ptr(*d + *L_.d_name_name); np && plausible(*np)) name = read_string(*np, 256);
    add(*d, "dentry", L_.dentry_size, "f_path.dentry of " + by, std::move(name));
}

// Every hashed dentry: the dcache holds far more dentries than open files reach (each cached path
// component), and a detector finds them all. dentry_hashtable has 2^(32 − d_hash_shift) hlist_bl
// buckets (bit 0 of a head is its lock); chains link dentries through d_hash.
void Walker::dcache() {
    auto table_sym = syms_.address("dentry_hashtable"), shift_sym = syms_.address("d_hash_shift");
    if (!table_sym || !shift_sym || !L_.d_hash) {
        warn("dcache not walked: dentry_hashtable, d_hash_shift or dentry.d_hash missing");
        return;
    }
    auto table = ptr(*table_sym);
    auto shift = word(*shift_sym, 4);
    if (!table || !plausible(*table) || !shift || *shift < 6 || *shift > 31) {
        warn("dcache not walked: dentry_hashtable/d_hash_shift unreadable or implausible");
        return;
    }
    const uint64_t buckets = uint64_t{1} << (32 - *shift);
    std::unordered_set<uint64_t> visited;
    for (uint64_t b = 0; b < buckets; ++b) {
        auto head = ptr(*table + b * psize_);
        if (!head) {
            warn("dcache bucket " + std::to_string(b) + " unreadable");
            continue;
        }
        uint64_t node = *head & ~uint64_t{1};
        for (uint64_t n = 0; node && n < opt_.max_list; ++n) {
            if (!plausible_link(node) || !visited.insert(node).second) break;
            add(node - *L_.d_hash, "dentry", L_.dentry_size, "dcache hash bucket " + std::to_string(b));
            auto next = ptr(node);
            if (!next) break;
            node = *next;
        }
    }
}

// The files mapped by an mm's VMAs (executables, libraries, mmap'ed files, shared anonymous
// memory's "/dev/zero": open without an fd). Before 6.1 the VMAs are a list (mm->mmap, vm_next;
// 5.10 had none labeled: its shared mappings' files were unlabeled detections and "hidden").
// Linux 6.1 keeps VMAs in a maple tree (mm->mm_mt): a node entry is a node pointer with its type
// in bits 3–6 (0 dense, 1 leaf_64, 2 range_64, 3 arange_64) and its address in the bits above 8;
// leaves' slots are vm_area_struct pointers. Every VMA must name this mm in vm_mm, so a stale slot
// cannot smuggle in a foreign object.
void Walker::vma_files(uint64_t mm, const std::string& of) {
    if (!L_.vm_file || !L_.vm_mm) return;
    if (!vma_walked_.insert(mm).second) return;   // the threads of a process share its mm: walked once
    // One mm's walk takes at most kMaxMmWalk steps (tree nodes and VMAs: a real mm has at most
    // vm.max_map_count VMAs, DEFAULT_MAX_MAP_COUNT 65530 in include/linux/mm.h, in fewer nodes), and
    // all mms' walks together at most max_list_total (forged trees or lists cost linear time; one
    // forged mm cannot spend the others' share: helper 61).
    constexpr uint64_t kMaxMmWalk = 2 * 65536;
    uint64_t steps = 0;
    auto budget = [&] {
        if (steps >= kMaxMmWalk) {
            if (steps++ == kMaxMmWalk) warn("mm" + of + ": its VMA walk passed " + std::to_string(kMaxMmWalk) +
                                            " steps (a real mm has at most 65530 VMAs); the rest is not labeled");
            return false;
        }
        if (vma_visits_ < opt_.max_list_total) return ++steps, ++vma_visits_, true;
        if (!vma_limit_said_) warn("VMA walks: the limit of " + std::to_string(opt_.max_list_total) +
                                   " steps in all reached at mm" + of + "; later mms' mapped files are not labeled");
        vma_limit_said_ = true;
        return false;
    };
    // What no tree or list of this mm holds — a node or VMA that is no kernel address, a tree node of
    // no known type or met twice, a VMA of another mm — is memory broken (a smeared capture's page of
    // something else, or an edit), and what the walk cannot read cuts it: either way the files only
    // the lost VMAs map are not judged hidden (views_broken / views_cut "files", as for the fd tables;
    // a 0.2 % smear of the dev dump, seed 3: a file of a VMA under a smeared tree node read "HIDDEN").
    bool said = false;
    auto lost = [&](bool unreadable, const std::string& why) {
        if (said) return;
        said = true;
        const std::string w = "mm" + of + ": " + why + "; the files mapped there are not labeled";
        if (unreadable) warn_cut("files", w);
        else warn_broken("files", w);
    };
    auto mapped = [&](uint64_t vma) {   // a VMA of this mm: its file
        auto owner = ptr(vma + *L_.vm_mm);
        if (!owner || *owner != mm) {
            lost(!owner, "VMA " + hex(vma) + (owner ? " is of mm " + hex(*owner) : std::string(": vm_mm unreadable")));
            return false;
        }
        if (auto f = ptr(vma + *L_.vm_file); f && *f && plausible(*f)) file_objects(*f, "vm_file of a VMA of mm" + of);
        return true;
    };
    // An mm that maps anything (map_count, include/linux/mm_types.h) has a VMA list, or a node at its
    // maple tree's root (a VMA spans a range; a lone root entry is index 0 alone): else its own page
    // was overwritten (a 0.05 % smear of the dev dump, seed 5: a process's mm_struct page smeared, its
    // mapped files "HIDDEN").
    auto empty = [&](uint64_t head) {
        if (head != 0) return false;
        if (auto n = L_.map_count ? word(mm + *L_.map_count, 4) : std::nullopt; n && static_cast<int32_t>(*n) > 0)
            lost(false, "no VMAs, though map_count is " + std::to_string(static_cast<int32_t>(*n)));
        return true;
    };
    if (!L_.mm_mt_root && L_.mm_mmap && L_.vm_next) {   // the list, bounded, each VMA once, ended by a foreign one
        std::unordered_set<uint64_t> visited;
        auto vma = ptr(mm + *L_.mm_mmap);
        if (vma && empty(*vma)) return;
        for (uint64_t n = 0; vma && *vma && n < opt_.max_list && budget(); ++n) {
            if (!plausible(*vma)) {
                lost(false, "vm_next " + hex(*vma) + " is no kernel address");
                break;
            }
            if (!visited.insert(*vma).second) {
                lost(false, "the VMA list loops at " + hex(*vma));
                break;
            }
            if (!mapped(*vma)) break;
            vma = ptr(*vma + *L_.vm_next);
        }
        if (!vma) lost(true, "a vm_next unreadable");
        return;
    }
    if (!L_.mm_mt_root || !L_.mr64_slot || !L_.ma64_slot) return;
    auto root = ptr(mm + *L_.mm_mt_root);
    if (!root) return lost(true, "mm_mt unreadable");
    if (empty(*root)) return;
    // The root entry of a tree with nodes is tagged internal (low bits 10); child entries are not.
    if (!xa_is_node(*root)) return lost(false, "maple tree root " + hex(*root) + " is no node");
    std::vector<std::pair<uint64_t, int>> stack{{*root, 0}};
    std::unordered_set<uint64_t> visited;
    uint64_t vmas = 0;
    while (!stack.empty() && budget()) {   // a node or a VMA: one visit each
        auto [entry, depth] = stack.back();
        stack.pop_back();
        const uint64_t node = entry & ~uint64_t{0xff}, type = (entry >> 3) & 0xf;
        // (include/linux/maple_tree.h: an enode is the node | its maple_type << 3; mm_mt's are
        // maple_leaf_64 1, maple_range_64 2, maple_arange_64 3)
        if (depth > 16 || !plausible(node) || type == 0 || type > 3) {
            lost(false, "maple tree entry " + hex(entry) + " is no node (depth " + std::to_string(depth) + ")");
            continue;
        }
        if (!visited.insert(node).second) {
            lost(false, "maple node " + hex(node) + " met twice");
            continue;
        }
        const uint64_t slots = type == 3 ? *L_.ma64_slot : *L_.mr64_slot,
                       count = type == 3 ? L_.ma64_slots : L_.mr64_slots;
        for (uint64_t i = 0; i < count; ++i) {
            auto slot = ptr(node + slots + i * psize_);
            if (!slot) lost(true, "maple node " + hex(node) + ": slot " + std::to_string(i) + " unreadable");
            if (!slot || !*slot) continue;
            if (type != 1) {
                stack.push_back({*slot, depth + 1});
                continue;
            }
            if (*slot < 4096) continue;   // an internal entry (XA_ZERO_ENTRY: dup_mmap's marker), no VMA
            if (!plausible(*slot)) lost(false, "maple leaf " + hex(node) + ": slot " + std::to_string(i) + " " + hex(*slot) + " is no kernel address");
            if (!plausible(*slot) || ++vmas > opt_.max_list || !budget()) continue;
            mapped(*slot);
        }
    }
}

void Walker::task_objects(uint64_t t, int64_t pid) {
    const std::string of = " of PID " + std::to_string(pid);
    if (auto mm = ptr(t + L_.mm); mm && *mm) {
        if (plausible(*mm)) {
            add(*mm, "mm_struct", L_.mm_size, "mm" + of);
            if (L_.exe_file)
                if (auto f = ptr(*mm + *L_.exe_file); f && plausible(*f)) file_objects(*f, "exe_file of mm" + of);
            vma_files(*mm, of);
        }
        else warn("task " + hex(t) + of + ": mm " + hex(*mm) + " is not a kernel address");
    } else if (!mm) {
        warn("task " + hex(t) + of + ": mm unreadable");
    }
    for (auto [off, what] : {std::pair{L_.real_cred, "real_cred"}, std::pair{L_.cred, "cred"}}) {
        auto c = ptr(t + off);
        if (!c) warn("task " + hex(t) + of + ": " + what + " unreadable");
        else if (!plausible(*c)) warn("task " + hex(t) + of + ": " + what + " " + hex(*c) + " is not a kernel address");
        else add(*c, "cred", L_.cred_size, std::string(what) + of);
    }
    if (auto f = ptr(t + L_.files); f && *f) {
        if (plausible(*f)) open_files(*f, pid);
        else warn("task " + hex(t) + of + ": files " + hex(*f) + " is not a kernel address");
    } else if (!f) {
        warn_cut("files", "task " + hex(t) + of + ": files unreadable");
    }
}

uint64_t Walker::open_files(uint64_t files, int64_t pid) {
    if (auto it = fd_count_.find(files); it != fd_count_.end()) return it->second;
    fd_count_[files] = 0;
    const std::string of = " of PID " + std::to_string(pid);
    // One fd table is read once, whichever files_structs name it, and all tables' open slots together
    // are at most max_list_total (attacker 89: hidden tasks each with a files_struct of its own naming
    // one forged table of 2^20 open slots cost 0.6 s and 8 MiB a task).
    // Each files_struct has a table of its own (include/linux/fdtable.h: fdt is &fdtab, or one
    // expand_fdtable allocated; threads share the files_struct, not the table): another's table named
    // is a page of something else (a smeared capture: a copied files_struct page read "HIDDEN: 50
    // file", reviewer 100) or an edit, and this task's own files go unread: the view is broken.
    if (auto fdt = ptr(files + L_.fdt); fdt && *fdt)
        if (auto it = fdt_count_.find(*fdt); it != fdt_count_.end()) {
            warn_broken("files", "files_struct " + hex(files) + of + " names fdtable " + hex(*fdt) + ", which another files_struct names");
            files_fdt_[files] = *fdt;
            return fd_count_[files] = it->second;
        }
    // Past the bound the files view is not read whole: files no table reached are not judged
    // (reviewer 92: four processes of 2^20 open fds would have made every later table's files hidden)
    auto over = [&] {
        const std::string w = "fd tables: the limit of " + std::to_string(opt_.max_list_total) +
                              " open slots in all reached at files_struct " + hex(files) + of + "; later tables' files are not labeled";
        out_.views_broken.try_emplace("files", w);
        if (!fd_limit_said_) warn(w);
        fd_limit_said_ = true;
        return uint64_t{0};
    };
    if (fd_slots_ >= opt_.max_list_total) return over();
    const FdTable table = read_fd_table(mem_, L_, files, psize_, opt_.max_fds);
    if (table.error.empty() && fd_slots_ + table.open.size() + table.max_fds / 64 > opt_.max_list_total) return over();
    if (!table.error.empty()) {   // its files unread: unreadable cuts the view, anything else breaks it
        if (table.unreadable) warn_cut("files", table.object + of + ": " + table.error);
        else warn_broken("files", table.object + of + ": " + table.error);
        return 0;
    }
    fd_slots_ += table.open.size() + table.max_fds / 64;   // the slots, and the bitmap's words read
    files_fdt_[files] = table.fdt;
    uint64_t n = 0;
    for (const FdSlot& slot : table.open) {
        if (!slot.file) {
            warn_cut("files", "fd " + std::to_string(slot.fd) + of + ": fd[] slot unreadable");
            continue;
        }
        if (*slot.file == 0) continue;   // reserved by get_unused_fd, not yet installed: /proc skips it
        if (!plausible(*slot.file)) {
            warn_broken("files", "fd " + std::to_string(slot.fd) + of + ": file " + hex(*slot.file) + " is not a kernel address");
            continue;
        }
        ++n;
        fd_numbers_[table.fdt].push_back(slot.fd);
        file_objects(*slot.file, "fd " + std::to_string(slot.fd) + of);
    }
    fd_count_[files] = n;
    fdt_count_[table.fdt] = n;
    return n;
}

uint64_t Walker::threads_of(uint64_t leader, int64_t pid) {
    std::vector<uint64_t> group;
    const std::string what = "thread group of PID " + std::to_string(pid);
    // A thread whose group_leader is another task is not this group's (attacker 14: a leader's
    // signal pointed at another process's thread list, or at another list's head, took its nodes).
    // group_leader, not tgid: tampering with pid/tgid (dm-attack tamper) must not unlist a thread.
    const Accept same_group = [&](uint64_t t) -> std::string {
        auto gl = ptr(t + L_.group_leader);
        if (!gl) return "has no readable group_leader";
        if (*gl != leader) return "has group_leader " + hex(*gl);
        return {};
    };
    bool walked = false;
    if (L_.thread_head && L_.thread_node) {
        if (auto sig = ptr(leader + L_.signal); sig && plausible(*sig)) {
            walk_list(*sig + *L_.thread_head, *L_.thread_node, what, [&](uint64_t t) { group.push_back(t); }, same_group, "tasks");
            walked = true;
        } else {
            warn("task " + hex(leader) + " (PID " + std::to_string(pid) + "): signal unreadable");
        }
    }
    if (!walked && L_.thread_group) {
        group.push_back(leader);
        walk_list(leader + *L_.thread_group, *L_.thread_group, what, [&](uint64_t t) { group.push_back(t); }, same_group, "tasks");
    }
    if (std::find(group.begin(), group.end(), leader) == group.end()) {
        warn(what + ": leader not on its thread list");
        group.push_back(leader);
    }
    // A thread of another thread group is not this group's: listing it would make a task hidden
    // from init_task.tasks look listed (attacker 14: one leader's signal pointed at a hidden
    // process's signal_struct), and a forged thread list of fake entries would each be a task.
    // (A list walked before for another group is replayed, not walked: its entries are checked here.)
    size_t foreign = 0;
    std::string first_foreign;
    std::erase_if(group, [&](uint64_t t) {
        if (t == leader) return false;
        std::string why = same_group(t);
        if (why.empty()) return false;
        if (!foreign++) first_foreign = hex(t) + " " + why;
        return true;
    });
    if (foreign)
        warn(what + ": " + std::to_string(foreign) + " entr" + (foreign > 1 ? "ies" : "y") +
             " of another thread group not listed (task " + first_foreign + ")");
    drop_overlapping(group, leader, what, [leader](uint64_t) { return leader; });
    if (prev_only_.count(leader)) prev_only_.insert(group.begin(), group.end());   // for_each_thread misses them too
    out_.counts.threads += group.size();
    for (uint64_t t : group) {
        if (t == leader) continue;
        add_task(t, what);
        all_tasks_.push_back({t, task_pid(t)});
        if (auto tg = word(t + L_.tgid, 4); tg && static_cast<int32_t>(*tg) != pid)   // tampered?
            warn("task " + hex(t) + " in " + what + " has tgid " + std::to_string(static_cast<int32_t>(*tg)));
    }
    return group.size();
}

void Walker::modules() {
    auto head = syms_.address("modules");
    if (!head) throw InputError("kallsyms: symbol 'modules' not found (needs CONFIG_KALLSYMS_ALL)");
    walk_list(*head, L_.mod_list, "modules", [&](uint64_t m) {
        std::string name = read_string(m + L_.mod_name, L_.mod_name_len);
        add(m, "module", L_.module_size, "modules list", name);
        // /proc/modules hides modules still being loaded (MODULE_STATE_UNFORMED).
        if (L_.mod_state && L_.module_unformed) {
            auto st = word(m + *L_.mod_state, *L_.mod_state_size);
            if (st && static_cast<int64_t>(static_cast<int32_t>(*st)) == *L_.module_unformed) return;
        }
        ++out_.counts.modules;
        out_.counts.module_names.push_back(std::move(name));
    }, {}, "modules", true);
}

void Walker::idle_tasks(uint64_t init_task) {
    auto offsets = syms_.address("__per_cpu_offset"), rq = syms_.address("runqueues"),
         nr = syms_.address("nr_cpu_ids");
    if (!offsets || !rq || !nr || !L_.rq_idle) {
        warn("idle tasks of secondary CPUs not labeled: needs __per_cpu_offset, runqueues, nr_cpu_ids and rq.idle");
        return;
    }
    auto ncpu = word(*nr, 4);
    if (!ncpu || *ncpu == 0 || *ncpu > 8192) {
        warn("idle tasks not labeled: nr_cpu_ids unreadable or implausible");
        return;
    }
    for (uint64_t cpu = 0; cpu < *ncpu; ++cpu) {
        auto off = ptr(*offsets + cpu * psize_);
        if (!off) continue;
        auto idle = ptr(*rq + *off + *L_.rq_idle);
        if (!idle || !plausible(*idle)) {
            warn("runqueues[" + std::to_string(cpu) + "].idle unreadable");
            continue;
        }
        if (*idle == init_task) continue;
        // An idle task has PID 0 (fork_idle: init_struct_pid, kernel/fork.c); a task of another PID named
        // here is a listed task only by an edit (the symbols runqueues, __per_cpu_offset or nr_cpu_ids moved
        // onto words that name a hidden task): not listed, said
        if (const int64_t pid = task_pid(*idle); pid != 0) {
            std::string w = "runqueues[" + std::to_string(cpu) + "].idle names the task at " + hex(*idle) + " of PID " +
                            std::to_string(pid) + ", no idle task (PID 0): not taken as listed";
            if (out_.edits.size() < 8) out_.edits.push_back(w);   // (nr_cpu_ids may be 8192: a few said)
            warn(std::move(w));
            continue;
        }
        if (add_task(*idle, "runqueues[" + std::to_string(cpu) + "].idle"))
            all_tasks_.push_back({*idle, task_pid(*idle)});
    }
}

// SLUB (mm/slub.c, 6.x): a slab's free objects form a chain through the word at
// kmem_cache.offset inside each object; with CONFIG_SLAB_FREELIST_HARDENED that word holds
// next ^ kmem_cache.random ^ swab(address of the word) (freelist_ptr()). Chain heads: slab->freelist,
// and for each CPU's active slab kmem_cache_cpu->freelist. Slabs are reached through
// kmem_cache_cpu->slab, ->partial (chained by slab->next) and kmem_cache_node->partial
// (slab->slab_list); full slabs are on no list, and hold no free object. Before 5.17 the slab is
// its first struct page (the same fields, kmem_cache_cpu->page: KernelLayout::Slub). Object i of a slab starts
// at page_address(slab) + red_left_pad + i * size, where page_address comes from the slab's index
// in the array of struct page: x86-64 (SPARSEMEM_VMEMMAP) at vmemmap_base, mapped from
// page_offset_base; 32-bit FLATMEM (arch/x86/include/asm/page_32.h, Debian's 686 and 686-pae) at
// mem_map, mapped from PAGE_OFFSET, which is init_task's virtual minus physical address (the kernel
// image lies in the lowmem direct map; slabs are lowmem too, never highmem).
// Calls slot(object, slab, free) for every object of every slab reached; false (with a warning
// "freed WHAT not labeled: …") when the cache or the walk's symbols and fields are missing.
template <class F>
bool Walker::slab_slots(uint64_t init_task, const std::string& cache_name, const std::string& cache_var,
                        const std::string& what, SlabStats& stats,
                        F&& slot) {
    auto fail = [&](const std::string& why) {
        warn("freed " + what + " not labeled: " + why);
        return false;
    };
    auto caches = syms_.address("slab_caches"), pob = syms_.address("page_offset_base"),
         vmb = syms_.address("vmemmap_base"), mem_map = syms_.address("mem_map"),
         offsets = syms_.address("__per_cpu_offset"), nr = syms_.address("nr_cpu_ids");
    std::optional<uint64_t> page_offset, vmemmap;
    if (pob && vmb) {
        page_offset = ptr(*pob);
        vmemmap = ptr(*vmb);
    } else if (psize_ == 4 && mem_map) {
        vmemmap = ptr(*mem_map);
        if (auto pa = mem_.physical(init_task); pa && *pa <= init_task) page_offset = init_task - *pa;
    }
    if (!caches || !((pob && vmb) || (psize_ == 4 && mem_map)) || !offsets || !nr)
        return fail("needs slab_caches, page_offset_base and vmemmap_base (mem_map on 32-bit), __per_cpu_offset, "
                    "nr_cpu_ids in kallsyms");
    if (!L_.slub) return fail(L_.slub_missing);
    const KernelLayout::Slub& S = *L_.slub;
    const btf::Field *list = &S.list, *name = &S.name, *cpu_slab = &S.cpu_slab, *offset = &S.offset, *size = &S.size,
                     *node = &S.node, *c_free = &S.c_freelist, *c_slab = &S.c_slab, *s_list = &S.s_slab_list,
                     *s_free = &S.s_freelist, *s_objects = &S.s_objects, *n_partial = &S.n_partial;
    const auto &random = S.random, &red = S.red_left_pad, &c_partial = S.c_partial, &s_next = S.s_next;
    const uint64_t page_size = S.page_size;

    // The cache: the kernel's pointer to it (cache_var, kallsyms), else the one of that name on
    // slab_caches. The pointer finds it whatever its name (6.12's kernel/cred.c makes cred_jar with
    // KMEM_CACHE(cred, …): named "cred") and when it is merged into another cache of the same size
    // and flags (its slots then also hold other types' objects, which `slot` tells apart).
    uint64_t cache = 0;
    if (auto v = syms_.address(cache_var))
        if (auto c = ptr(*v); c && plausible(*c)) cache = *c;
    if (!cache)
        walk_list(*caches, list->byte_offset(), "slab_caches", [&](uint64_t c) {
            if (cache) return;
            if (auto np = ptr(c + name->byte_offset()); np && plausible(*np) && read_string(*np, 32) == cache_name)
                cache = c;
        });
    if (!cache) return fail("no slab cache named " + cache_name + " and no readable " + cache_var);
    auto obj_off = word(cache + offset->byte_offset(), 4), obj_size = word(cache + size->byte_offset(), 4);
    auto rnd = random ? word(cache + random->byte_offset(), psize_) : std::optional<uint64_t>(0);
    auto redpad = red ? word(cache + red->byte_offset(), 4) : std::optional<uint64_t>(0);
    auto ncpu = word(*nr, 4), pcpu = ptr(cache + cpu_slab->byte_offset());
    if (!obj_off || !obj_size || !rnd || !redpad || !page_offset || !vmemmap || !ncpu || !pcpu || *obj_size == 0 ||
        *obj_off + psize_ > *obj_size || *ncpu == 0 || *ncpu > 8192)
        return fail(cache_name + " kmem_cache or memory-layout variables unreadable or implausible");
    stats.walked = true;

    // Slabs to visit, each with the freelist heads that apply to it.
    std::map<uint64_t, std::vector<std::pair<uint64_t, std::string>>> slabs;
    auto add_slab = [&](uint64_t slab, const std::string& where) {
        if (!plausible(slab)) return;
        auto& heads = slabs[slab];
        if (auto h = ptr(slab + s_free->byte_offset()); h && *h) heads.push_back({*h, where});
    };
    // kmem_cache is allocated only up to node[nr_node_ids]: entries past it belong to other objects.
    uint64_t nodes = btf_.size_of(node->type) / psize_;
    if (auto nn = syms_.address("nr_node_ids")) {
        if (auto v = word(*nn, 4); v && *v >= 1 && *v <= nodes) nodes = *v;
    } else if (nodes > 1) {
        warn("kallsyms has no nr_node_ids: only node 0 of the " + cache_name + " cache is walked");
        nodes = 1;
    }
    for (uint64_t i = 0; i < nodes; ++i) {
        auto n = ptr(cache + node->byte_offset() + i * psize_);
        if (!n || !plausible(*n)) continue;
        walk_list(*n + n_partial->byte_offset(), s_list->byte_offset(),
                  cache_name + " cache node " + std::to_string(i) + " partial",
                  [&](uint64_t slab) { add_slab(slab, "node " + std::to_string(i) + " partial slab"); });
    }
    for (uint64_t cpu = 0; cpu < *ncpu; ++cpu) {
        auto off = ptr(*offsets + cpu * psize_);
        if (!off) continue;
        const uint64_t c = *pcpu + *off;
        const std::string where = "cpu " + std::to_string(cpu);
        if (auto slab = ptr(c + c_slab->byte_offset()); slab && plausible(*slab)) {
            add_slab(*slab, where + " slab");
            if (auto h = ptr(c + c_free->byte_offset()); h && *h) slabs[*slab].push_back({*h, where + " freelist"});
        }
        if (c_partial && s_next) {
            auto p = ptr(c + c_partial->byte_offset());
            for (uint64_t k = 0; p && plausible_link(*p) && k < 4096; ++k) {
                add_slab(*p, where + " partial slab");
                p = ptr(*p + s_next->byte_offset());
            }
        }
    }

    const uint64_t stride = *obj_size;
    for (const auto& [slab, heads] : slabs) {
        if (slab < *vmemmap || (slab - *vmemmap) % page_size != 0) {
            warn(cache_name + " slab " + hex(slab) + " is not an entry of the struct page array");
            continue;
        }
        const uint64_t base = *page_offset + (slab - *vmemmap) / page_size * 4096 + *redpad;
        auto objects = bits(slab, *s_objects);
        if (!objects || *objects == 0) continue;
        ++stats.slabs;
        std::unordered_set<uint64_t> free;
        for (const auto& [head, where] : heads) {
            uint64_t cur = head;
            for (uint64_t k = 0; cur != 0; ++k) {
                if (cur < base || (cur - base) % stride != 0 || (cur - base) / stride >= *objects) {
                    warn(cache_name + " freelist (" + where + ") leaves slab " + hex(slab) + " at " + hex(cur));
                    break;
                }
                if (!free.insert(cur).second || k > *objects) {
                    warn(cache_name + " freelist (" + where + ") loops at " + hex(cur));
                    break;
                }
                auto raw = ptr(cur + *obj_off);
                if (!raw) break;
                cur = slub_freelist_next(*raw, cur + *obj_off, *rnd, psize_);
            }
        }
        for (uint64_t i = 0; i < *objects; ++i) {
            const uint64_t obj = base + i * stride;
            const bool is_free = free.count(obj) != 0;
            stats.free_objects += is_free;
            slot(obj, slab, is_free);
        }
    }
    return true;
}

// Freed task_structs: free slots of the task_struct cache that still look like a task.
void Walker::freed_tasks(uint64_t init_task) {
    const auto& usage = L_.usage;   // refcount_t; optional
    auto& live = seen_["task_struct"];
    slab_slots(init_task, "task_struct", "task_struct_cachep", "task_structs", out_.task_slab, [&](uint64_t obj, uint64_t slab, bool free) {
        if (!free) {
            if (!live.count(obj)) {
                ++out_.task_slab.unreached;
                warn("task_struct " + hex(obj) + " allocated in its slab but on no task list (PID " +
                     std::to_string(task_pid(obj)) + ", " + task_comm(obj) + ")");
            }
            return;
        }
        if (live.count(obj)) {
            warn("task_struct " + hex(obj) + " is on a task list and on a freelist");
            return;
        }
        // Intact: still carries a task's identity (a PID, a printable name) and, when BTF has
        // it, a reference count that dropped to zero (a never-used slot is all zeros; the
        // stack pointer is no test: release_task_stack() clears it before the free).
        const std::string comm = task_comm(obj);
        const int64_t pid = task_pid(obj);
        bool printable = !comm.empty() &&
                         std::all_of(comm.begin(), comm.end(), [](char ch) { return ch >= 0x20 && ch < 0x7f; });
        if (!printable || pid <= 0) return;
        if (usage) {
            auto u = word(obj + *usage, 4);
            if (!u || *u != 0) return;
        }
        ++out_.task_slab.freed_intact;
        record(obj, "task_struct", L_.task_size, "freelist of task_struct slab " + hex(slab), comm, pid, true);
    });
}

// Labels the free slots of a slab cache (slab_slots) that still hold a `type` (`intact`) as freed,
// and counts the allocated ones no walk reached (stats.unreached), not warned: objects are also
// held by what the walks do not follow. With `held` (a predicate, not nullptr), such an allocated
// slot that holds a `type` in use is labeled live ("allocated in <cache> slab …, not reached from
// <live_by>"). A slot both live and free is a warning (`live_by`: what reached it). Freed labels
// stay out of seen_.
template <class Intact, class Held>
void Walker::freed_objects(uint64_t init_task, const char* type, uint64_t size, const std::string& cache_name,
                           const std::string& cache_var, const std::string& what, SlabStats& stats,
                           const std::string& live_by, Intact&& intact, Held&& held) {
    auto& live = seen_[type];
    std::vector<std::pair<uint64_t, uint64_t>> held_slots;   // (object, slab), labeled after the walk
    slab_slots(init_task, cache_name, cache_var, what, stats, [&](uint64_t obj, uint64_t slab, bool free) {
        if (!free) {
            if (live.count(obj)) return;
            ++stats.unreached;
            if constexpr (!std::is_same_v<std::decay_t<Held>, std::nullptr_t>)
                if (held(obj)) held_slots.push_back({obj, slab});
            return;
        }
        if (live.count(obj)) {
            warn(std::string(type) + " " + hex(obj) + " is reached from " + live_by + " and on a freelist");
            return;
        }
        if (!intact(obj)) return;
        ++stats.freed_intact;
        record(obj, type, size, "freelist of " + cache_name + " slab " + hex(slab), {}, -1, true);
    });
    for (const auto& [obj, slab] : held_slots)
        record(obj, type, size, "allocated in " + cache_name + " slab " + hex(slab) + ", not reached from " + live_by, {}, -1, false);
}

// Freed creds: free slots of cred_jar (kernel/cred.c) that still hold a cred. put_cred_rcu()
// drops the references and frees the object without clearing it, so a freed cred keeps its ids
// and its user_ns pointer, usage 0; SLUB overwrites one word (kmem_cache.offset) with the
// freelist pointer. A never-used slot has no user_ns. Creds no task or file reaches are also held
// by sockets (sk_peer_cred), keys, pending RCU frees, ….
void Walker::freed_creds(uint64_t init_task) {
    if (!L_.cred_user_ns) {
        warn("freed creds not labeled: BTF lacks cred.user_ns");
        return;
    }
    freed_objects(init_task, "cred", L_.cred_size, "cred_jar", "cred_jar", "creds", out_.cred_slab, "a task or file",
                  [&](uint64_t obj) {
                      auto ns = ptr(obj + *L_.cred_user_ns);
                      if (!ns || !plausible(*ns)) return false;
                      if (!L_.cred_usage) return true;
                      auto u = word(obj + *L_.cred_usage, *L_.cred_usage_size);
                      return u && *u == 0;
                  });
}

// Freed files: free slots of filp (fs/file_table.c) that still hold a file. __fput() drops the
// dentry and mount references and file_free() returns the object to filp without clearing it, so
// a freed file keeps its f_path and f_inode pointers and no reference (f_count 0; f_ref dead,
// KernelLayout::file_references); SLUB overwrites one word with
// the freelist pointer. A never-used slot has no inode. (A cache merged with another's slots: the
// three checks tell files apart.) Files no fd table or mapping reaches are also held by sockets
// and pipes in flight, the kernel's own users, ….
void Walker::freed_files(uint64_t init_task) {
    if (!L_.f_inode || !L_.f_mnt || !L_.f_count) {
        warn("freed files not labeled: BTF lacks file.f_inode, file.f_path.mnt or file.f_count (f_ref)");
        return;
    }
    freed_objects(init_task, "file", L_.file_size, "filp", "filp_cachep", "files", out_.file_slab,
                  "an fd table or a mapping", [&](uint64_t obj) {
                      auto inode = ptr(obj + *L_.f_inode), mnt = ptr(obj + *L_.f_mnt);
                      if (!inode || !plausible(*inode) || !mnt || !plausible(*mnt)) return false;
                      auto count = word(obj + *L_.f_count, *L_.f_count_size);
                      return count && L_.file_references(*count) == 0;
                  });
}

// Freed mm_structs: free slots of the mm_struct cache (kernel/fork.c mm_cachep) that still hold
// one. __mmdrop() frees the page tables (mm_free_pgd leaves the pointer) and returns the object
// without clearing it once mm_count drops to 0 (mm_users is 0 before), so a freed mm_struct keeps
// its pgd pointer (page-aligned; 32-byte under PAE) and both counts 0; SLUB overwrites one word
// with the freelist pointer. A never-used slot has no pgd. Allocated mm_structs no task reaches
// (x86's poking_mm, arch/x86/mm/init.c; one held by an exec in progress, a task leaving the
// lists, …) are mm_structs in use, labeled live when they look it (a pgd, mm_count ≥ 1): found
// only here.
void Walker::freed_mms(uint64_t init_task) {
    if (!L_.mm_pgd || !L_.mm_users || !L_.mm_count) {
        warn("freed mm_structs not labeled: BTF lacks mm_struct.pgd, mm_users or mm_count");
        return;
    }
    // A pgd is a page-table page (x86-64, non-PAE i386), or 32 bytes of pgd_cache under PAE.
    const uint64_t pgd_align = psize_ == 8 ? 4096 : 32;
    auto has_pgd = [&](uint64_t obj) {
        auto pgd = ptr(obj + *L_.mm_pgd);
        return pgd && plausible(*pgd) && *pgd % pgd_align == 0;
    };
    freed_objects(init_task, "mm_struct", L_.mm_size, "mm_struct", "mm_cachep", "mm_structs", out_.mm_slab, "a task",
                  [&](uint64_t obj) {
                      if (!has_pgd(obj)) return false;
                      auto users = word(obj + *L_.mm_users, 4), count = word(obj + *L_.mm_count, 4);
                      return users && count && *users == 0 && *count == 0;
                  },
                  [&](uint64_t obj) {
                      auto count = word(obj + *L_.mm_count, 4);
                      return has_pgd(obj) && count && *count >= 1 && *count < (1u << 31);
                  });
}

LabelSet Walker::run() {
    const uint64_t init_task = syms_.require("init_task");
    if (!plausible(init_task)) throw InputError("kallsyms: init_task " + hex(init_task) + " is not a kernel address");
    {
        uint8_t probe[8];
        if (!mem_.read(init_task, std::span<uint8_t>(probe, 8)))
            throw InputError("init_task at " + hex(init_task) + " is not readable in the dump (wrong kallsyms or DTB?)");
    }
    add_task(init_task, "init_task symbol");
    all_tasks_.push_back({init_task, task_pid(init_task)});

    std::vector<uint64_t> leaders;
    walk_list(init_task + L_.tasks, L_.tasks, "init_task.tasks", [&](uint64_t t) { leaders.push_back(t); }, {}, "tasks", true);
    drop_overlapping(leaders, init_task, "init_task.tasks", [](uint64_t t) { return t; });
    for (uint64_t t : leaders) {
        const int64_t pid = task_pid(t);
        add_task(t, "init_task.tasks");
        all_tasks_.push_back({t, pid});
        if (auto gl = ptr(t + L_.group_leader); gl && *gl != t)
            warn("task " + hex(t) + " (PID " + std::to_string(pid) + ") on init_task.tasks is not its group leader");
        ++out_.counts.processes;
        out_.counts.per_process.push_back({pid, task_comm(t), threads_of(t, pid), 0, {}});
    }
    if (opt_.tasks_only) return finish();
    idle_tasks(init_task);
    for (auto [t, pid] : all_tasks_) task_objects(t, pid);
    // /proc/PID/fd lists the leader's table: count each thread group once, through its leader.
    for (size_t i = 0; i < leaders.size(); ++i) {
        auto f = ptr(leaders[i] + L_.files);
        if (!f || !*f || !plausible(*f)) continue;
        auto& proc = out_.counts.per_process[i];
        proc.fds = open_files(*f, proc.pid);
        // (one table's numbers, copied per process while all copies stay within max_list_total)
        if (auto t = files_fdt_.find(*f); t != files_fdt_.end())
            if (const auto& numbers = fd_numbers_[t->second]; fd_numbers_copied_ + numbers.size() <= opt_.max_list_total) {
                proc.fd_numbers = numbers;
                fd_numbers_copied_ += numbers.size();
            }
        out_.counts.fds += proc.fds;
    }
    modules();
    if (opt_.dcache) dcache();
    if (opt_.freed_tasks) freed_tasks(init_task);
    if (opt_.freed_creds) freed_creds(init_task);
    if (opt_.freed_files) freed_files(init_task);
    if (opt_.freed_mms) freed_mms(init_task);
    return finish();
}

// The labels sorted by (vaddr, type), with a warning for each address labeled twice.
LabelSet Walker::held(std::span<const uint64_t> tasks) {
    for (uint64_t t : tasks) {
        if (!plausible(t)) continue;
        holder_ = t;
        task_objects(t, task_pid(t));
    }
    holder_ = 0;
    return finish();
}

LabelSet Walker::finish() {
    out_.prev_only.assign(prev_only_.begin(), prev_only_.end());
    std::sort(out_.prev_only.begin(), out_.prev_only.end());
    std::sort(out_.labels.begin(), out_.labels.end(), [](const Label& a, const Label& b) {
        return a.vaddr != b.vaddr ? a.vaddr < b.vaddr : a.type < b.type;
    });
    // Two types at one address would be a wrong pointer somewhere: keep both, but say so.
    for (size_t i = 1; i < out_.labels.size(); ++i)
        if (out_.labels[i].vaddr == out_.labels[i - 1].vaddr)
            warn("address " + hex(out_.labels[i].vaddr) + " labeled both " + out_.labels[i - 1].type + " and " +
                 out_.labels[i].type);
    return std::move(out_);
}

// ---- output ---------------------------------------------------------------------------------


}  // namespace

LabelSet label_kernel_objects(const KernelMemory& mem, const btf::Btf& btf, const Kallsyms& syms,
                              const LabelerOptions& opt) {
    return Walker(mem, btf, syms, opt).run();
}

LabelSet label_task_objects(const KernelMemory& mem, const btf::Btf& btf, const Kallsyms& syms,
                            std::span<const uint64_t> tasks, const LabelerOptions& opt) {
    return Walker(mem, btf, syms, opt).held(tasks);
}

void write_labels_tsv(const std::string& path, const LabelSet& set) {
    std::string s;
    s.reserve(set.labels.size() * 40);
    for (const Label& l : set.labels)
        if (!l.freed) s += hex(l.vaddr) + '\t' + l.type + '\t' + std::to_string(l.size) + '\n';
    write_file_atomically(path, s);
}

void write_labels_jsonl(const std::string& path, const LabelSet& set) {
    std::string s;
    s.reserve(set.labels.size() * 120);
    for (const Label& l : set.labels) {
        s += "{\"vaddr\":\"" + hex(l.vaddr) + "\",\"paddr\":" + (l.paddr ? "\"" + hex(*l.paddr) + "\"" : "null") +
             ",\"type\":" + json_string(l.type) + ",\"size\":" + std::to_string(l.size) +
             ",\"state\":\"" + (l.freed ? "freed" : "live") + "\",\"found_by\":" + json_string(l.found_by);
        if (l.pid >= 0) s += ",\"pid\":" + std::to_string(l.pid);
        if (!l.name.empty()) s += ",\"name\":" + json_string(l.name);
        s += "}\n";
    }
    write_file_atomically(path, s);
}


// ---- guest view -------------------------------------------------------------------------------

GuestView GuestView::parse(std::span<const uint8_t> text) {
    std::string_view all(reinterpret_cast<const char*>(text.data()), text.size());
    static const std::string_view header = "# deepmem guest view v1";
    if (all.substr(0, header.size()) != header) throw FormatError(0, "'# deepmem guest view v1' header");
    GuestView v;
    bool have[4] = {};
    TextLines lines(text);
    while (auto l = lines.next()) {
        std::string_view line = l->text;
        const uint64_t at = l->at;
        if (auto h = line.find('#'); h != std::string_view::npos) line = line.substr(0, h);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.remove_suffix(1);
        if (line.empty()) continue;
        auto sp = line.find(' ');
        if (sp == std::string_view::npos) throw FormatError(at, "'KEY VALUE' line");
        std::string_view key = line.substr(0, sp), val = line.substr(sp + 1);
        while (!val.empty() && val.front() == ' ') val.remove_prefix(1);
        if (key == "module") {
            if (val.empty()) throw FormatError(at, "module name");
            v.module_names.emplace_back(val);
            continue;
        }
        static const char* keys[] = {"processes", "threads", "fds", "modules"};
        uint64_t* dst[] = {&v.processes, &v.threads, &v.fds, &v.modules};
        int k = -1;
        for (int i = 0; i < 4; ++i)
            if (key == keys[i]) k = i;
        if (k < 0) continue;   // a later view version may add keys; v1 readers ignore them
        uint64_t n = 0;
        if (val.empty() || val.size() > 18) throw FormatError(at + sp + 1, "a decimal count");
        for (char c : val) {
            if (c < '0' || c > '9') throw FormatError(at + sp + 1, "a decimal count");
            n = n * 10 + static_cast<uint64_t>(c - '0');
        }
        *dst[k] = n;
        have[k] = true;
    }
    for (int i = 0; i < 4; ++i)
        if (!have[i]) throw FormatError(text.size(), std::string("a '") + (i == 0 ? "processes" : i == 1 ? "threads" : i == 2 ? "fds" : "modules") + "' line");
    if (v.module_names.size() != v.modules)
        throw FormatError(text.size(), "as many 'module' lines as 'modules' says (" + std::to_string(v.modules) +
                                           "), found " + std::to_string(v.module_names.size()));
    return v;
}

GuestView GuestView::load(const std::string& path) {
    MappedFile f(path);
    return parse(f.bytes());
}

std::vector<std::string> compare_with_view(const LabelCounts& d, const GuestView& g) {
    std::vector<std::string> diff;
    auto cmp = [&](const char* what, uint64_t a, uint64_t b) {
        if (a != b) diff.push_back(std::string(what) + ": dump " + std::to_string(a) + ", guest " + std::to_string(b));
    };
    cmp("processes", d.processes, g.processes);
    cmp("threads", d.threads, g.threads);
    cmp("fds", d.fds, g.fds);
    cmp("modules", d.modules, g.modules);
    std::multiset<std::string> dm(d.module_names.begin(), d.module_names.end()),
        gm(g.module_names.begin(), g.module_names.end());
    for (const auto& m : gm)
        if (dm.count(m) < gm.count(m) && diff.end() == std::find(diff.begin(), diff.end(), "module missing in dump: " + m))
            diff.push_back("module missing in dump: " + m);
    for (const auto& m : dm)
        if (gm.count(m) < dm.count(m) && diff.end() == std::find(diff.begin(), diff.end(), "module missing in guest view: " + m))
            diff.push_back("module missing in guest view: " + m);
    return diff;
}

}  // namespace deepmem
