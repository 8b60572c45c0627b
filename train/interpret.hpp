// What a detected object says, read from the dump with the kernel's own types, and whether the
// kernel's own structures still reach it (issue #10 items 2 and 3): the answers of ps, lsof and
// lsmod, plus what was hidden from them.
//
// Contract
//   Layering  train/ may use detect/ (Detection, ObjectField); detect/ prints fields and knows
//             nothing of how they are read. Offsets come from train/kernel_layout.hpp only; the
//             kernel's own view is the labeler's walk (train/labeler.hpp, without dcache and freelists).
//   Fields    per type, JSON keys in this order (values read at the detection's vaddr):
//               task_struct  pid, tgid, ppid (real_parent's tgid), comm, uid, gid, euid (real_cred),
//                            state (ps letter R S D T t X Z P I), start_time (s since boot),
//                            kernel_thread (PF_KTHREAD), group_leader, exited (TASK_DEAD in
//                            __state with EXIT_ZOMBIE or EXIT_DEAD in exit_state: off the lists by
//                            right), freed (on the task_struct cache's freelist, as dmlabel's
//                            "freed" labels; null without kernel symbols; no excuse for being off
//                            the lists by itself), then the cross-view. An exited task whose
//                            real_cred and cred are NULL — exit_creds(), kernel/cred.c — has uid,
//                            gid, euid null with "real_cred released" in "bad", not misreads
//               file         path, flags (f_flags), pos (f_pos), inode (i_ino), refs (file_count():
//                            f_count, or 6.13's f_ref read as file_ref_read() does,
//                            KernelLayout::file_references), freed, then the cross-view
//               dentry       name, path (up to its filesystem's root), fs
//               cred         uid, gid, suid, sgid, euid, egid, fsuid, fsgid, usage, freed
//             refs and usage are the kernel's counts (cred.usage is 4 bytes, 8 since 6.8; a signed
//             count below 0 is null, "negative"). freed: true for a count of 0 on its cache's
//             freelist (cred_jar, filp: the object dmlabel labels "freed", put for the last time,
//             its bytes not yet reused), or when the kernel's symbols are missing and nothing can
//             corroborate it; false for a count above 0; null when the count was not read, and,
//             with the reason in "bad", for a count of 0 on an object the kernel's lists reach or
//             on no freelist (an RCU free still pending, or a written count: one word must not
//             make a live object read as freed).
//               mm_struct    exe (exe_file's path), mappings (map_count)
//               module       name, size (bytes, as /proc/modules), state (live coming going unformed),
//                            then the cross-view
//             Other types get no fields. A file path follows f_path.dentry up d_parent and across
//             mounts (vfsmount.mnt_root → mount.mnt_mountpoint, mnt_parent) to the root mount, as
//             d_path does; pipes, sockets and anonymous inodes read "pipe:[ino]", "socket:[ino]",
//             "anon_inode:NAME", other unlinked internal files "/NAME (deleted)" (memfd, shared
//             anonymous memory), as /proc shows them. At most 256 components and 64 mounts.
//   Bad       A value that is unreadable (page not in the dump), out of range (pid/tgid beyond
//             PID_MAX_LIMIT 4194304 or negative, uid (u32)−1, unknown state bits, a negative file
//             position), not printable (comm or a name that is not terminal text — text_lines.hpp:
//             control or bidi characters, invalid UTF-8 — or without its NUL), or whose chain loops or runs past the bounds is JSON null, and a
//             "bad" field lists "key: reason" for each. A BTF member missing for a key is
//             "key: not in this kernel's BTF". Nothing is made up.
//   Cross-view (needs the kernel's symbols; without them these keys are absent and a note says so)
//             task_struct  views: "tasks" (init_task.tasks, the thread lists of the processes on it
//                          and the CPUs' idle tasks: what ps walks), "threads" (the thread list of the
//                          task's group leader: signal->thread_head, else thread_group), "pid_hash"
//                          (init_pid_ns's IDR: the struct pid of the task's PID — its pid word, else
//                          its own thread_pid's number, the disagreement said — whose
//                          tasks[PIDTYPE_PID] chain starts at the task's pid_links[0], as pid_task()
//                          reads it). An idle task
//                          (PID 0) is in neither of the last two by design and is not checked there.
//                          "missing_from": the views that miss it; "hidden": true when "tasks"
//                          misses a task that is alive (not TASK_DEAD with exit_state), or the IDR,
//                          read as the kernel keeps it, does not map it (/proc and kill find tasks
//                          there); false when both reach it or the task has died; null when pid is
//                          bad, or when a list cut or broken in memory may have lost it (below).
//                          "tasks" holds what the kernel walks along next: a task on init_task.tasks'
//                          prev chain alone (the list closes at its head without it), and its threads,
//                          are in no view (train/labeler.hpp LabelSet::prev_only); an idle task of a
//                          PID other than 0 is not taken from the runqueues (said).
//                          The IDR is a witness unless the symbols' init_pid_ns is not the kernel's:
//                          its level not 0, its child_reaper not the listed PID 1, or, of up to 64
//                          listed tasks looked up, none or fewer than half mapped (4 or more answered),
//                          as many mapped to struct pids naming another namespace (numbers[0].ns) as to
//                          its own, or most naming another namespace through their own thread_pid — a
//                          moved init_pid_ns (attackers 110–113), no witness then, a kKernelDataDisagree
//                          note. A task whose struct pid names another namespace has no IDR witness; a
//                          listed task the IDR cannot say of where it reads unlike the kernel's keeps
//                          the list's verdict, said once (kIdrOddNote). When the trusted IDR maps 16 or
//                          more tasks (read as the kernel keeps it, each once) and fewer than half are
//                          on "tasks", neither is a witness: the tasks they disagree on are null, said
//                          once as a disagreement (a task list head that is not the kernel's).
//             module       view "modules" (the modules list, along next: a module on its prev chain
//                          alone is in no view); hidden when it misses the module.
//                          null when the list misses it while its own list node is on an intact
//                          ring (each next pointing back) through a node of the kernel image
//                          ([_text, _end)) other than the symbols' `modules` head: that head is not
//                          the list's (an edited symbol table, attacker 109/110, or the module moved
//                          onto another kernel list), said once in a kKernelDataDisagree note
//                          (train/kernel_from_dump.hpp) — unless that head reaches one of the modules
//                          interpret() was given. A ring of a rootkit's own stays HIDDEN.
//             file         views "fd_tables" (an fd of a task that "tasks" reaches), "mappings"
//                          (a VMA's vm_file or an mm's exe_file of such a task); hidden when both
//                          miss a file still referenced (refs > 0, or an f_count below 0:
//                          the kernel never frees it); null for a count of 0 on no freelist
//                          (freed above). interpret() reads the tasks first: a file the fd table
//                          or mappings of a task judged hidden hold is reached through it, not
//                          hidden, missing from none, and "held_by_hidden_task" names that task by
//                          its address as detected (detect.hpp kHeldByHiddenKey; not its PID, a word
//                          its owner may write); fields() alone cannot tell. null, too, for a file
//                          no listed task holds when the task list and the IDR disagree (task_struct).
//             Objects are compared by physical address (a detection names the direct-map alias,
//             a list may name the kernel-image one, e.g. init_task).
//   Bounds    Every list and chain is bounded and loop-checked; a corrupt or planted value ends
//             in "bad", never a crash or a hang.
#pragma once

#include "detect/detect.hpp"
#include "graph/layers.hpp"
#include "train/btf.hpp"
#include "train/labeler.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace deepmem {

class ObjectInterpreter {
public:
    // `syms` may be null (fields without the cross-view). All three must outlive the interpreter.
    // Throws InputError when the BTF lacks what every kernel has (KernelLayout).
    ObjectInterpreter(const KernelMemory& mem, const btf::Btf& btf, const Kallsyms* syms);
    ~ObjectInterpreter();

    // The fields of the object of `type` at `vaddr` (empty for a type it does not know).
    std::vector<ObjectField> fields(const std::string& type, uint64_t vaddr);
    // Sets d.fields of every detection: task_struct, then the other kCrossViewTypes, then the rest.
    // The kernel's own view is walked once, on first need. Before each object it asks `stop` (empty:
    // never stops); once that says true it reads no further: the detections not reached keep no
    // fields. Returns how many it read (all of them when it did not stop).
    size_t interpret(std::span<Detection> detections, const std::function<bool()>& stop = {});
    // One line per thing the interpretation could not do (no symbols, a view not walked …).
    const std::vector<std::string>& notes() const noexcept;
    // Whether the dump lacks memory the kernel maps (a cut or partial capture). An object missing from
    // a view whose walk lost entries gets a null "hidden": at unreadable nodes on a dump that lacks
    // memory (train/labeler.hpp LabelSet::views_cut, "could not be read whole"), or at links that do
    // not point back, or unreadable ones on a dump that lacks none (LabelSet::views_broken, "broken in
    // memory": a smeared capture, corruption, tampering) — unless it, or a task's group leader, was taken
    // off its list (its node points at itself, holds list_del's poison, or its neighbours were joined
    // around it, on a page whose other words name that task), or is a task the PID IDR, read as the
    // kernel keeps it, does not map (a second witness), which stays hidden. A task that is a copy of
    // another of its PID, list links and all (a page a smeared capture copied), gets a null "hidden",
    // on any dump. Call before interpret().
    // `absent_pages`: the kernel pages the dump lacks all the same (too few to count as a cut; the
    // note says so rather than "lacks no memory", reviewer 88 M5).
    void set_memory_lacking(bool lacking, uint64_t absent_pages = 0) noexcept;
    // Why `syms` is null, for the note that no hidden object was looked for (default "none in the
    // dump, no --kallsyms"; interpret_detections gives the note that dropped the user's symbols).
    void set_no_symbols_why(std::string why);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Where dmdetect's objects come from and what to read them with.
struct InterpretInputs {
    DumpFormat format = DumpFormat::Auto;   // of the dump the graph was built from
    std::optional<std::string> kernel_file, kallsyms_file;   // dmlabel's --kernel / --kallsyms
    std::optional<std::string> system_map_file;              // dmlabel's --system-map (no CONFIG_KALLSYMS_ALL)
    // The dump to read in place of the one the graph records (GraphBuildInfo::dump_path, which must
    // still have the recorded size, dump_bytes): a .dmg's dump moved, copied or converted to another
    // format; `sample` tells whether it holds the same memory.
    std::optional<std::string> dump_file;
    // Segments of the graph (sample_segments, taken before the graph is freed): the dump opened
    // must hold them byte for byte, else it is not the graph's dump and nothing is read. Empty:
    // not checked.
    SegmentSample sample;
    // The dump lacks memory the kernel maps (dmdetect's MemoryLack: a cut or partial capture). Only
    // then may a list whose walk lost entries at an unreadable node excuse an object it misses from
    // being called hidden (ObjectInterpreter::set_memory_lacking).
    bool memory_lacking = false;
    uint64_t absent_pages = 0;   // GraphBuildInfo::absent_pages, for the note when not memory_lacking
    // When the reading stops (dmdetect --time-limit): checked before the dump is opened again, within
    // its decompression and page-table checks (their interrupt), after it, within the searches for the
    // kernel's types and symbols (per MiB and per candidate: kernel_from_dump.hpp), and before each object
    // (ObjectInterpreter::interpret); the objects not reached stay addresses only. max(): none.
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};
// What interpret_detections did: its notes, one line each, and whether InterpretInputs::deadline
// stopped it (then one of the notes starts with kObjectsTimedOutNote and says how many were read).
struct Interpreted {
    std::vector<std::string> notes;
    bool timed_out = false;
};
// Opens the dump a graph was built from (`info`, its GraphBuildInfo: path, page-table root and paging; the
// graph itself is not needed, so a caller may free it first), takes
// types and symbols from the user's files or else the dump (train/kernel_from_dump.hpp) and fills
// the fields of `detections`. With no BTF to be had, the dump gone (a .dmg whose dump moved or
// changed size) or another dump in its place (inputs.sample), the detections stay addresses only and
// a note says why. No detections: nothing is opened, no note. Throws only what a user-given kernel or
// kallsyms file that is bad throws.
Interpreted interpret_detections(const GraphBuildInfo& info, std::span<Detection> detections, const InterpretInputs& inputs);
// The note that starts with this says the time limit stopped the reading (InterpretInputs::deadline),
// how many objects were read and that the rest are addresses only.
inline constexpr std::string_view kObjectsTimedOutNote = "objects not read: the time limit ran out";
// The note that starts with this names the kernel's views (train/labeler.hpp LabelSet::views_cut)
// whose walks lost entries at memory the dump cannot read (ObjectInterpreter::set_memory_lacking).
inline constexpr std::string_view kViewsCutNote = "the kernel's lists were not read whole: ";
// The note that starts with this gives a kernel list read whole along next whose head's prev disagrees
// (train/labeler.hpp kHeadPrevOnly): its view stands, the edit or smear is said.
inline constexpr std::string_view kHeadPrevNote = "a kernel list's head does not close it along prev (an edit or a smeared capture?), "
                                                  "its view stands: ";
// The note that starts with this says where the PID IDR (or a struct pid it leads to) was read and is not as
// the kernel keeps it on the way to a listed task's PID (a smeared capture or an edit): such tasks have the
// task list alone as witness; the first one is named.
inline constexpr std::string_view kIdrOddNote = "the PID IDR is not as the kernel keeps it on the way to a listed task "
                                                "(a smeared capture or an edit?), which the task list alone judges: ";
// In the note said when no list could be walked at all (no kernel symbols, the walk failed).
inline constexpr std::string_view kNoCrossView = "hidden objects not looked for";

// The kernel's BTF for a graph's dump, before its objects are read (dmdetect places anchored key
// nodes with it, train/key_anchors.hpp): the user's kernel file (`inputs.kernel_file`; what
// btf::load_kernel_image throws; nullopt when its banner names another release than the dump's),
// else the dump's own .BTF (find_btf), opened as interpret_detections opens it, both stopped at
// inputs.deadline; nullopt with `why` (one line) when there is none to be had or the deadline passed.
std::optional<btf::Btf> graph_dump_btf(const GraphBuildInfo& info, const InterpretInputs& inputs, std::string& why);

// Takes back a detection's "hidden" verdict (null, and "hidden: <why>" added to "bad"): for objects
// of a model that does not fit the dump (detect/fit.hpp), whose bytes may be another object's
// (newcomer 18: the 6.1 file and module models on a 5.10 dump marked 32 files and a misread module
// hidden). No-op for a detection without a "hidden" field.
void withdraw_hidden(Detection& detection, const std::string& why);

// A pstree-like view of the detected tasks (their fields from interpret()): processes under their
// parent by ppid, sorted by PID, each "PID comm", threads counted after it, hidden ones marked
// "[HIDDEN: missing from …]"; exited tasks (state X, EXIT_DEAD: released, memory not yet reused;
// or freed: on the task_struct cache's freelist, marked "[freed]") are not processes and are listed
// apart, "(exited) PID comm", marked when still on the task list;
// tasks whose pid or comm is bad listed at the end. Ends with a line of counts (processes,
// threads, exited tasks, hidden tasks, unreadable).
std::string process_tree(std::span<const Detection> detections);

}  // namespace deepmem
