// The classic process-finding techniques deepmem is measured against (issue #6), as Detections of
// type "task_struct" (score 1, votes 0) that detect's evaluate() scores like dmdetect's output.
//
// Contract
//   pslist   List traversal, as Volatility's linux.pslist: init_task, every task on init_task.tasks
//            and every thread of their thread groups (signal->thread_head). It is the labeler's own
//            walk (label_kernel_objects, freed tasks and idle tasks of other CPUs left out), so a
//            task unlinked from those lists (DKOM) is not found — by construction, as in Volatility.
//   psscan   Signature scan, as Volatility's linux.psscan: every 8-aligned address of every mapped
//            kernel page is a candidate (64 would do for slab objects, SLAB_HWCACHE_ALIGN, and
//            init_task, __aligned(L1_CACHE_BYTES); 8 costs < 1 s per 256 MiB and assumes nothing).
//            A candidate is a task when every check of check_task() passes, cheapest first:
//              Pid      0 ≤ pid, tgid ≤ PID_MAX_LIMIT (2^22); pid 0 ⇔ tgid 0 (idle tasks)
//              Comm     NUL within comm[], ≥ 1 printable ASCII byte before it, zeros after it
//                       (__set_task_comm pads with strscpy_pad; kernels before 5.14, whose
//                       task_struct has `state` rather than `__state`, copied with strlcpy and leave
//                       the old name's bytes after the NUL: not required there)
//              State    __state only TASK_* bits (< 0x10000); exit_state ∈ {0, EXIT_DEAD, EXIT_ZOMBIE, both}
//              Flags    no PF_* bit the kernel leaves unused: Linux 6.1's holes (kFlagHoles); before
//                       5.14 only 0x20000000 (5.10 sets PF_FREEZER_SKIP 0x40000000 in freezable
//                       sleeps and PF_SWAPWRITE 0x800000 in kswapd, holes of 6.1)
//              Pointer  real_cred, cred, signal, group_leader, real_parent, parent: 8-aligned kernel
//                       addresses; mm, active_mm, files, fs: NULL or 8-aligned kernel addresses
//              Stack    NULL (released after exit) or a page-aligned kernel address
//              Lists    thread_node.next->prev == &thread_node (every live task is on its group's
//                       thread list); for a leader (pid == tgid) also tasks.next->prev == &tasks
//                       (a list_del_init()'d node points at itself and passes); compared by
//                       physical address too, so the kernel-image alias of init_task passes
//              Leader   leader: group_leader == self; thread: group_leader->tgid == tgid
//            Each physical page is scanned once, at its lowest virtual address (the direct map, as
//            the memory graph does; TranslationLayer::distinct_runs), not once per alias: a page
//            the kernel image or crafted page tables map again costs nothing more.
//   All offsets come from BTF through KernelLayout (train/kernel_layout.hpp; __state, or state before
//   5.14, read as its low 32 bits); the value ranges are the kernel ABI's.
#pragma once

#include "detect/detect.hpp"
#include "train/btf.hpp"
#include "train/labeler.hpp"

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace deepmem {

class TranslationLayer;

// `warnings`, when given, gets the walk's (train/labeler.hpp LabelSet::warnings, the task lists
// only: LabelerOptions::tasks_only), one per list cut short: a link that is no kernel address or
// not pointer-aligned, a loop, an unreadable node or a step whose back link disagrees. The tasks found walking back from the head
// along `prev` are listed too, so only those between the two breaks are missing; the warning says
// how far each direction got (tester 11: pslist stopped at a broken list without a word; attacker
// 12: an unaligned link made a bogus task, and everything past one broken link was lost; attacker
// 13: a forged prev chain cost quadratic time, a next back to the head hid tasks silently).
std::vector<Detection> pslist(const KernelMemory& mem, const btf::Btf& btf, const Kallsyms& syms,
                              std::vector<std::string>* warnings = nullptr);

// PF_* bits Linux 6.1 does not define (include/linux/sched.h: 0x4000, 0x10000, 0x800000,
// 0x1000000, 0x2000000, 0x20000000, 0x40000000 are holes).
inline constexpr uint32_t kFlagHoles = 0x4000u | 0x10000u | 0x800000u | 0x1000000u | 0x2000000u | 0x20000000u | 0x40000000u;
inline constexpr uint32_t kFlagHolesBefore514 = 0x20000000u;
inline constexpr int64_t kPidMaxLimit = 4 * 1024 * 1024;

// Byte offsets of the task_struct fields the scanner reads (from BTF, or by hand in tests).
struct TaskSignature {
    uint64_t size = 0;   // BTF sizeof(struct task_struct)
    uint64_t state = 0, flags = 0, stack = 0, tasks = 0, mm = 0, active_mm = 0, exit_state = 0, pid = 0, tgid = 0,
             real_parent = 0, parent = 0, group_leader = 0, thread_node = 0, real_cred = 0, cred = 0, comm = 0,
             comm_len = 16, fs = 0, files = 0, signal = 0;
    uint64_t pointer_size = 8;   // bytes of a pointer and of each list_head link: 8 (x86-64), 4 (i386)
    uint64_t kernel_base = 0xffff800000000000ull;
    uint32_t flag_holes = kFlagHoles;   // PF_* bits no task of this kernel has (Flags check)
    bool comm_padded = true;            // zeros after comm's NUL (Comm check)
    // Throws InputError naming a missing struct or member. A task_struct with `state` (before
    // 5.14) gets kFlagHolesBefore514 and comm_padded false.
    static TaskSignature from_btf(const btf::Btf& btf);
};

enum class TaskCheck : uint8_t { Ok, Unreadable, Pid, Comm, State, Flags, Pointer, Stack, Lists, Leader };
const char* to_string(TaskCheck);

// Checks the task signature at `vaddr`. `local` (optional) holds the bytes from vaddr on, as far
// as they are contiguous; fields beyond it and the list neighbours are read through `mem`.
TaskCheck check_task(const TaskSignature& sig, const KernelMemory& mem, uint64_t vaddr,
                     std::span<const uint8_t> local = {});

struct PsscanOptions {
    uint64_t alignment = 8;
};
struct PsscanStats {
    uint64_t candidates = 0, matched = 0;
    uint64_t aliases = 0;   // kernel pages not scanned: their physical page was scanned at a lower vaddr
    // pages whose candidates were not read: no data backs them or the next page (a kdump's or AVML's
    // zero pages, a sparse file's holes; PhysicalLayer::has_data), so no candidate there has a comm
    uint64_t no_data_pages = 0;
    std::map<TaskCheck, uint64_t> rejected;   // by the first failing check
};
// Every physical page `tl` maps (TranslationLayer::distinct_runs) scanned with check_task; sorted by vaddr.
std::vector<Detection> psscan(const TranslationLayer& tl, const TaskSignature& sig, const PsscanOptions& = {},
                              PsscanStats* stats = nullptr);

}  // namespace deepmem
