// List traversal (pslist) and signature scan (psscan) of task_structs: the classic baselines of
// issue #6. Contract and the list of checks: train/baselines.hpp.
#include "train/baselines.hpp"
#include "train/kernel_layout.hpp"

#include "graph/layers.hpp"

#include <algorithm>
#include <cstring>

namespace deepmem {

std::vector<Detection> pslist(const KernelMemory& mem, const btf::Btf& btf, const Kallsyms& syms,
                              std::vector<std::string>* warnings) {
    LabelerOptions opt;
    opt.tasks_only = true;   // no freelists, dcache or slabs; every warning is about the task lists (dmbaseline puts them in its output)
    const LabelSet set = label_kernel_objects(mem, btf, syms, opt);
    if (warnings) warnings->insert(warnings->end(), set.warnings.begin(), set.warnings.end());
    std::vector<Detection> out;
    for (const Label& l : set.labels) {
        if (l.type != "task_struct" || l.freed) continue;
        // Volatility's pslist starts at init_task; the idle tasks of other CPUs are on no list.
        if (l.found_by.rfind("runqueues[", 0) == 0) continue;
        out.push_back({"task_struct", l.vaddr, l.paddr, 1.0f, 0});
    }
    return out;
}

TaskSignature TaskSignature::from_btf(const btf::Btf& btf) {
    const KernelLayout L(btf);
    TaskSignature s;
    s.size = L.task_size;
    s.state = KernelLayout::need(L.state, "task_struct.__state");
    s.flags = KernelLayout::need(L.flags, "task_struct.flags");
    s.stack = KernelLayout::need(L.stack, "task_struct.stack");
    s.tasks = L.tasks;
    s.mm = L.mm;
    s.active_mm = KernelLayout::need(L.active_mm, "task_struct.active_mm");
    s.exit_state = KernelLayout::need(L.exit_state, "task_struct.exit_state");
    s.pid = L.pid;
    s.tgid = L.tgid;
    s.real_parent = KernelLayout::need(L.real_parent, "task_struct.real_parent");
    s.parent = KernelLayout::need(L.parent, "task_struct.parent");
    s.group_leader = L.group_leader;
    s.thread_node = KernelLayout::need(L.thread_node, "task_struct.thread_node");
    s.real_cred = L.real_cred;
    s.cred = L.cred;
    s.comm = L.comm;
    s.comm_len = L.comm_len;
    s.fs = KernelLayout::need(L.fs, "task_struct.fs");
    s.files = L.files;
    s.signal = L.signal;
    s.pointer_size = btf.pointer_size();
    if (auto t = btf.find("task_struct"); t && !btf.member(*t, "__state")) {   // before 5.14 (Comm, Flags)
        s.flag_holes = kFlagHolesBefore514;
        s.comm_padded = false;
    }
    return s;
}

const char* to_string(TaskCheck c) {
    switch (c) {
        case TaskCheck::Ok: return "ok";
        case TaskCheck::Unreadable: return "unreadable";
        case TaskCheck::Pid: return "pid";
        case TaskCheck::Comm: return "comm";
        case TaskCheck::State: return "state";
        case TaskCheck::Flags: return "flags";
        case TaskCheck::Pointer: return "pointer";
        case TaskCheck::Stack: return "stack";
        case TaskCheck::Lists: return "lists";
        case TaskCheck::Leader: return "leader";
    }
    return "?";
}

namespace {

// Reads from `local` when the bytes are there, else through `mem`.
struct FieldReader {
    const KernelMemory& mem;
    uint64_t base;
    std::span<const uint8_t> local;
    bool bytes(uint64_t off, uint8_t* out, uint64_t n) const {
        if (off + n <= local.size()) {
            std::memcpy(out, local.data() + off, n);
            return true;
        }
        return mem.read(base + off, std::span<uint8_t>(out, n));
    }
    // A pointer of `size` bytes (8 or 4), little-endian.
    std::optional<uint64_t> ptr(uint64_t off, uint64_t size) const {
        uint64_t v = 0;
        if (!bytes(off, reinterpret_cast<uint8_t*>(&v), size)) return std::nullopt;
        return v;
    }
    std::optional<uint32_t> u32(uint64_t off) const {
        uint32_t v;
        if (!bytes(off, reinterpret_cast<uint8_t*>(&v), 4)) return std::nullopt;
        return v;
    }
};

}  // namespace

TaskCheck check_task(const TaskSignature& s, const KernelMemory& mem, uint64_t va, std::span<const uint8_t> local) {
    const FieldReader r{mem, va, local};
    auto pid = r.u32(s.pid), tgid = r.u32(s.tgid);
    if (!pid || !tgid) return TaskCheck::Unreadable;
    const int64_t p = static_cast<int32_t>(*pid), g = static_cast<int32_t>(*tgid);
    if (p < 0 || g < 0 || p > kPidMaxLimit || g > kPidMaxLimit || (p == 0) != (g == 0)) return TaskCheck::Pid;

    uint8_t comm[64] = {};
    const uint64_t clen = std::min<uint64_t>(s.comm_len, sizeof comm);
    if (!r.bytes(s.comm, comm, clen)) return TaskCheck::Unreadable;
    uint64_t n = 0;
    while (n < clen && comm[n] >= 0x20 && comm[n] < 0x7f) ++n;
    if (n == 0 || n == clen || comm[n] != 0) return TaskCheck::Comm;
    for (uint64_t i = n + 1; s.comm_padded && i < clen; ++i)
        if (comm[i] != 0) return TaskCheck::Comm;

    auto state = r.u32(s.state), exit_state = r.u32(s.exit_state), flags = r.u32(s.flags);
    if (!state || !exit_state || !flags) return TaskCheck::Unreadable;
    if (*state >= 0x10000u || (*exit_state & ~0x30u) != 0) return TaskCheck::State;
    if (*flags & s.flag_holes) return TaskCheck::Flags;

    const uint64_t W = s.pointer_size;
    const auto kernel_ptr = [&](uint64_t v) { return v >= s.kernel_base && v % W == 0; };
    for (uint64_t off : {s.real_cred, s.cred, s.signal, s.group_leader, s.real_parent, s.parent}) {
        auto v = r.ptr(off, W);
        if (!v) return TaskCheck::Unreadable;
        if (!kernel_ptr(*v)) return TaskCheck::Pointer;
    }
    for (uint64_t off : {s.mm, s.active_mm, s.files, s.fs}) {
        auto v = r.ptr(off, W);
        if (!v) return TaskCheck::Unreadable;
        if (*v != 0 && !kernel_ptr(*v)) return TaskCheck::Pointer;
    }
    auto stack = r.ptr(s.stack, W);
    if (!stack) return TaskCheck::Unreadable;
    if (*stack != 0 && (*stack < s.kernel_base || *stack % 4096)) return TaskCheck::Stack;

    auto tn = r.ptr(s.thread_node, W);
    if (!tn || !list_next_links_back(mem, va + s.thread_node, *tn, s.kernel_base, W)) return TaskCheck::Lists;
    const bool leader = p == g;
    if (leader) {
        auto tk = r.ptr(s.tasks, W);
        if (!tk || !list_next_links_back(mem, va + s.tasks, *tk, s.kernel_base, W)) return TaskCheck::Lists;
    }

    auto gl = r.ptr(s.group_leader, W);
    if (leader) {
        if (!mem.same_byte(*gl, va)) return TaskCheck::Leader;
    } else {
        uint32_t lt = 0;
        if (!mem.read(*gl + s.tgid, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&lt), 4)) || lt != *tgid)
            return TaskCheck::Leader;
    }
    return TaskCheck::Ok;
}

std::vector<Detection> psscan(const TranslationLayer& tl, const TaskSignature& sig, const PsscanOptions& opt,
                              PsscanStats* stats) {
    if (opt.alignment == 0 || opt.alignment % 8) throw InputError("psscan: alignment must be a multiple of 8");
    const TranslatedMemory mem(tl);
    const PhysicalLayer& phys = tl.physical();
    PsscanStats st;
    std::vector<Detection> out;
    const std::vector<VirtualRun> runs = tl.distinct_runs();
    for (const VirtualRun& run : tl.kernel_runs()) st.aliases += run.size / 4096;
    for (const VirtualRun& run : runs) {
        st.aliases -= run.size / 4096;
        // Contiguous bytes of the whole run when its physical range is one dump run, else per page.
        const uint8_t* whole = phys.find(run.paddr, run.size);
        for (uint64_t page = 0; page < run.size; page += 4096) {
            const uint8_t* bytes = whole ? whole + page : phys.find(run.paddr + page, 4096);
            const uint64_t avail = whole ? run.size - page : 4096;
            if (!bytes) continue;
            // A candidate starting in a page no data backs, the run's next page none either, has zeros
            // for its first 4 KiB and more, `comm` among them when it lies there (3 KiB in on the builds
            // here: Comm fails): not read, so a kdump's zero pages or a sparse file's holes cost no page
            // faults (attacker 94: a 60 MiB kdump of 4.75 GiB of zero pages, 20 s and 4.5 GB resident).
            if (sig.comm < 4096 && page + 2 * 4096 <= run.size && !phys.has_data(run.paddr + page, 2 * 4096)) {
                ++st.no_data_pages;
                continue;
            }
            for (uint64_t o = 0; o < 4096; o += opt.alignment) {
                ++st.candidates;
                const uint64_t va = run.vaddr + page + o;
                const TaskCheck c = check_task(sig, mem, va, std::span<const uint8_t>(bytes + o, avail - o));
                if (c != TaskCheck::Ok) {
                    ++st.rejected[c];
                    continue;
                }
                out.push_back({"task_struct", va, run.paddr + page + o, 1.0f, 0});
            }
        }
    }
    st.matched = out.size();
    if (stats) *stats = st;
    return out;
}

}  // namespace deepmem
