// Ground-truth labeler: which kernel objects live where in a dump (the DeepMem training labels).
//
// Contract (types in, labels out)
//   in   KernelMemory   virtual reads of the dumped kernel (a TranslationLayer, or a fake in tests)
//        btf::Btf       struct layouts of the dumped kernel build (field names only, no offsets here)
//        Kallsyms       the guest's /proc/kallsyms (runtime addresses, so KASLR is already applied)
//   out  LabelSet       one Label per object: task_struct, mm_struct, cred, file, dentry, module,
//                       sorted by vaddr, one label per (vaddr, type), each with how it was reached,
//                       plus the counts the guest view (/proc) reports, for the cross-check.
//                       Freed-but-intact task_structs, creds, files and mm_structs on the SLUB
//                       freelists of the task_struct, cred_jar, filp and mm_struct caches
//                       (CONFIG_SLAB_FREELIST_HARDENED pointers decoded) are labels with freed=true.
//   Walks are robust to a corrupt or smeared dump: visited sets stop loops, every list is bounded,
//   and an unreadable pointer becomes a warning (the object is skipped), not a crash. A circular
//   list whose walk along `next` breaks (a link that is no kernel address, unaligned, unreadable, a
//   loop, a node whose prev is not the node it was reached from, or a last node the head's prev
//   disagrees with: lib/list_debug.c's checks) is walked back from its head along `prev`, checked
//   the same way, up to the break, so one broken link loses only the entries between the two
//   breaks; the one warning says how far each direction got. On an intact list nothing changes
//   (no walk back). Each list node is walked once in all (max_list_total). Missing
//   symbols or BTF fields the walks cannot do without are InputErrors.
#pragma once

#include "train/btf.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace deepmem {

class TranslationLayer;

// ---- inputs -------------------------------------------------------------------------------

// One line of /proc/kallsyms: runtime address, type letter (T, t, D, A, …), name, module ("" for
// the core kernel).
struct KernelSymbol {
    uint64_t address = 0;
    char type = '?';
    std::string name;
    std::string module;
    bool operator==(const KernelSymbol&) const = default;
};

// Symbols of the running kernel in /proc/kallsyms format ("ffffffff81000000 T _text [module]"),
// or recovered from the dump's own kallsyms tables (train/kernel_from_dump.hpp).
class Kallsyms {
public:
    // Throws FormatError (byte offset of the bad line) or InputError (no symbols, or all addresses
    // zero, as when /proc/kallsyms is read without privilege).
    static Kallsyms parse(std::span<const uint8_t> text);
    static Kallsyms load(const std::string& path);
    // The same checks as parse, on symbols already split into fields.
    static Kallsyms from_symbols(std::vector<KernelSymbol> symbols);
    // This table completed from the build's System.map (same line format, no modules): a kernel
    // without CONFIG_KALLSYMS_ALL (Debian's 686-pae) lists only functions in /proc/kallsyms, and
    // the labeler needs data symbols (init_task, modules, runqueues …). Core symbols this table
    // lacks are added shifted by the KASLR offset, this table's _text minus the map's _text;
    // those below the map's _text (absolute 'A' symbols, x86-64's zero-based per-CPU variables)
    // are added unshifted. The result is in address order. InputError when either lacks _text.
    Kallsyms with_system_map(const Kallsyms& system_map) const;

    // Every symbol, in the order given (address order for /proc/kallsyms and the dump's tables).
    const std::vector<KernelSymbol>& symbols() const noexcept { return symbols_; }

    // Address of a core-kernel symbol (module symbols only when no core symbol has the name).
    std::optional<uint64_t> address(std::string_view name) const;
    uint64_t require(std::string_view name) const;   // throws InputError when absent
    uint64_t size() const noexcept { return count_; }

private:
    std::vector<KernelSymbol> symbols_;
    std::map<std::string, uint64_t, std::less<>> core_, module_;
    uint64_t count_ = 0;
};

// Virtual reads of the dumped kernel.
class KernelMemory {
public:
    virtual ~KernelMemory() = default;
    virtual bool read(uint64_t vaddr, std::span<uint8_t> out) const = 0;
    virtual std::optional<uint64_t> physical(uint64_t vaddr) const = 0;
    // Lowest kernel-space address: pointers below it are not followed.
    virtual uint64_t kernel_base() const = 0;

    // A little-endian word of `size` bytes (1..8) at vaddr; nullopt when unreadable or size is out of range.
    std::optional<uint64_t> word(uint64_t vaddr, uint64_t size) const;
    // A NUL-terminated string of at most `max` bytes (NUL included); nullopt when unreadable or unterminated.
    std::optional<std::string> cstring(uint64_t vaddr, uint64_t max) const;
    // Whether two kernel addresses name the same byte: equal, or aliases mapped to one physical
    // address (the kernel image and the direct map name one page twice).
    bool same_byte(uint64_t a, uint64_t b) const;
};

// A pointer a list walk may follow: a kernel address (at least `kernel_base`, not 0) that is a
// multiple of the pointer size (4 or 8). list_head and hlist nodes are pointer-aligned members in
// every kernel struct (include/linux/types.h), so an unaligned link is a corrupt or forged list,
// never a node (attacker 12: an unaligned tasks.next made a bogus task). The one rule for every walk
// of the labeler and pslist/psscan's list checks (train/baselines.hpp).
constexpr bool plausible_list_pointer(uint64_t p, uint64_t kernel_base, uint64_t pointer_size) {
    return p != 0 && p >= kernel_base && pointer_size != 0 && p % pointer_size == 0;
}

// Whether the list_head at `node` is linked both ways, lib/list_debug.c's __list_del_entry_valid:
// its next and prev are plausible links (above) and next->prev and prev->next name `node` — or
// another virtual alias of node's page (the kernel image and the direct map name one page twice).
// A node half-linked in a corrupt or forged dump fails. The one rule for psscan's list checks
// (train/baselines.cpp), the init_task self-check (train/kernel_from_dump.cpp) and dm-attack's
// list edits. (The labeler's own walks check each step exactly instead: a node's back link must be
// the very address the walk came from, so a list reached through an alias is walked under one name.)
bool list_links_back(const KernelMemory& mem, uint64_t node, uint64_t pointer_size);
// Its `next` half alone, with next already read: next is a plausible link above `kernel_base` and
// next->prev names `node` (or an alias of it).
bool list_next_links_back(const KernelMemory& mem, uint64_t node, uint64_t next, uint64_t kernel_base,
                          uint64_t pointer_size);

struct KernelLayout;

// A task's fd table as /proc/PID/fd reads it (include/linux/fdtable.h, fs/file.c):
// files_struct.fdt → fdtable {max_fds, fd: struct file *[max_fds], open_fds: bitmap of max_fds
// bits}. The bitmap is unsigned longs (4 bytes on a 32-bit kernel, whose initial table's
// open_fds_init is one such word) read as little-endian bytes, so fd's bit is bit fd % 8 of byte
// fd / 8 whatever the word size; only the (max_fds + 7) / 8 bytes that hold the bits are read.
struct FdSlot {
    uint64_t fd = 0;
    uint64_t entry = 0;                // vaddr of fd[fd]
    uint64_t bitmap_byte = 0;          // vaddr of the open_fds byte holding fd's bit
    std::optional<uint64_t> file;      // fd[fd]; nullopt when unreadable, 0 when reserved by
                                       // get_unused_fd and not yet installed (/proc skips it)
};
struct FdTable {
    uint64_t fdt = 0, max_fds = 0;
    std::vector<FdSlot> open;          // every fd whose open_fds bit is set, ascending
    // Empty when read; else why not: `object` names it ("files_struct 0x…", "fdtable 0x…") and
    // `error` says what ("fdt unreadable", "max_fds N above the limit, skipped", "fd array wraps
    // around the address space"); `open` is then empty.
    std::string object, error;
    // The error is a read that failed (memory the dump lacks, or does not map), not a value no table
    // holds (a NULL or user-space fdt, a max_fds past the limit): only such a table cuts the files view
    // (LabelSet::views_cut; reviewer 88 M3).
    bool unreadable = false;
};
// The fd table of files_struct `files`: fdt, fd and open_fds must be kernel addresses (≥
// mem.kernel_base()), max_fds at most `max_fds_limit` (a forged table's 2^32 bits is refused, not
// read), fd[max_fds − 1] below 2^64. Never throws on dump bytes.
FdTable read_fd_table(const KernelMemory& mem, const KernelLayout& L, uint64_t files, uint64_t pointer_size,
                      uint64_t max_fds_limit);

// KernelMemory over a translation layer (which must outlive it).
class TranslatedMemory final : public KernelMemory {
public:
    explicit TranslatedMemory(const TranslationLayer& t) : t_(&t) {}
    bool read(uint64_t vaddr, std::span<uint8_t> out) const override;
    std::optional<uint64_t> physical(uint64_t vaddr) const override;
    uint64_t kernel_base() const override;
private:
    const TranslationLayer* t_;
};

// The guest's own view file ("# deepmem guest view v1": processes/threads/fds/module/modules).
struct GuestView {
    uint64_t processes = 0, threads = 0, fds = 0, modules = 0;
    std::vector<std::string> module_names;
    static GuestView parse(std::span<const uint8_t> text);   // throws FormatError
    static GuestView load(const std::string& path);
};

// ---- outputs ------------------------------------------------------------------------------

struct Label {
    uint64_t vaddr = 0;
    std::optional<uint64_t> paddr;   // absent when the first byte's page is not in the dump
    std::string type;                // the kernel's struct name: "task_struct", "cred", …
    uint64_t size = 0;               // BTF struct size
    std::string found_by;            // e.g. "init_task.tasks", "fd 3 of PID 812"
    std::string name;                // comm of a task, name of a module/dentry; may be empty
    int64_t pid = -1;                // task_struct only
    uint64_t holder = 0;             // label_task_objects: the vaddr of the first given task holding it
    bool freed = false;              // on a SLUB freelist, contents still those of its type
};

// What the guest's /proc shows, computed from the dump (see GuestView).
struct LabelCounts {
    uint64_t processes = 0;   // thread-group leaders on init_task.tasks, init_task excluded
    uint64_t threads = 0;     // tasks in those thread groups
    uint64_t fds = 0;         // open fds, once per thread group (the leader's files_struct)
    uint64_t modules = 0;     // entries of the `modules` list that /proc/modules shows
    std::vector<std::string> module_names;
    struct Process {
        int64_t pid = -1;
        std::string comm;
        uint64_t threads = 0, fds = 0;
        std::vector<uint64_t> fd_numbers;   // the leader's open fds, ascending
    };
    std::vector<Process> per_process;   // in init_task.tasks order, for diagnosing a mismatch
};

// What a slab cache (task_struct, cred_jar, filp, mm_struct) holds, as far as its lists reach.
// SLUB keeps no list of full slabs (without slub_debug), so only the per-CPU and partial slabs are
// seen; full slabs hold no free object, so every freed object is among them.
struct SlabStats {
    bool walked = false;          // false when symbols/fields for the walk are missing
    uint64_t slabs = 0;           // distinct slabs reached (per-CPU, per-CPU partial, node partial)
    uint64_t free_objects = 0;    // objects on their freelists
    uint64_t freed_intact = 0;    // of those, still looking like their type (labeled freed)
    uint64_t unreached = 0;       // allocated in those slabs but reached by no walk (tasks: no task
                                  // list; creds: no task or open file, e.g. a socket's peer cred)
};

// Ends a warning of a list walked whole along next (the way the kernel walks it) whose head's prev
// names no last entry of it: nothing lost, but the list was edited or read at two moments (a smeared
// capture); the view is neither cut nor broken (attacker 110: one write to modules.prev made a hidden
// module "not judged").
inline constexpr std::string_view kHeadPrevOnly = "; nothing lost along next, which closes at the head";

struct LabelSet {
    std::vector<Label> labels;           // sorted by (vaddr, type), unique
    LabelCounts counts;
    SlabStats task_slab;
    SlabStats cred_slab;
    SlabStats file_slab;   // filp
    SlabStats mm_slab;     // mm_struct
    std::vector<std::string> warnings;   // unreadable pointers, truncated lists, …
    // Views the walks could not read whole, each with its first warning: "tasks" (init_task.tasks
    // or a thread group whose walk lost entries between unreadable nodes, both directions ending at
    // one: memory the dump lacks, or links into memory it does not map), "modules" (the modules list,
    // likewise), "files" (a task's files, fd table or fd slot unreadable). An object such a view misses is not thereby hidden
    // (train/interpret.hpp); a DKOM unlink leaves a list whole.
    std::map<std::string, std::string> views_cut;
    // Views whose walks lost entries at links that do not point back (a direction ending at a readable
    // node; the other may end at an unreadable one): a list broken in memory (a smeared capture,
    // corruption or tampering); and "files" when the fd tables passed max_list_total open slots in
    // all, or a files_struct names another's fdtable, or a table or fd slot holds what no table holds
    // (a word no kernel address), or a walk of an mm's VMAs met what its tree or list does not hold (a
    // node of no maple type, a VMA of another mm) — a smeared page of something else, or an edit; an
    // unreadable one cuts the view instead. Each with its first warning. An object such a view misses is not thereby hidden either
    // (train/interpret.hpp).
    std::map<std::string, std::string> views_broken;
    // What the walks met that only an edit of the kernel's data or symbols makes (a runqueue's idle task
    // of a PID other than 0), each said once; what it named is not taken into a view.
    std::vector<std::string> edits;
    // Labeled objects (task_struct, module) on their list's prev chain alone, with the threads of such
    // processes, sorted: the list closes at its head along next without them, so the kernel's walk
    // (for_each_process, lsmod) skips them — labeled, but on no view (train/interpret.hpp).
    std::vector<uint64_t> prev_only;
    // Labels per type; freed objects under "<type> (freed)".
    std::map<std::string, uint64_t> per_type() const;
};

struct LabelerOptions {
    uint64_t max_list = 1u << 20;         // longest list walked before it is declared corrupt
    uint64_t max_list_total = 1u << 22;   // list nodes all walks together visit (each once): bounds
                                          // time and memory on forged lists (about 50 B per node);
                                          // the VMA walks (each mm once) have a budget of their own
    uint64_t max_fds = 1u << 20;    // fd tables larger than this are treated as corrupt
    bool freed_tasks = true;        // also walk the task_struct slab cache's freelists
    bool freed_creds = true;        // also walk cred_jar's freelists
    bool freed_files = true;        // also walk filp's freelists
    bool freed_mms = true;          // also walk the mm_struct cache's freelists
    bool dcache = true;             // also label every hashed dentry (dentry_hashtable)
    bool tasks_only = false;        // pslist: init_task, init_task.tasks and the thread groups only
                                    // (no idle tasks, task objects, modules, dcache, slab caches)
    // The live objects the kernel's lists and tables reach, no dcache and no freelist: what the
    // interpreter's views and dm-attack's mapped files need (a freelist walk added here is off there).
    static LabelerOptions reached_only() {
        LabelerOptions o;
        o.dcache = o.freed_tasks = o.freed_creds = o.freed_files = o.freed_mms = false;
        return o;
    }
};

// The next free object after the one whose free pointer is the word at `at`, read as `stored`
// (mm/slub.c freelist_ptr): with CONFIG_SLAB_FREELIST_HARDENED (random != 0) the word holds
// next ^ random ^ swab(at), swab of an unsigned long (pointer_size 8 or 4 bytes); else next itself.
// 0 ends the chain.
uint64_t slub_freelist_next(uint64_t stored, uint64_t at, uint64_t random, uint64_t pointer_size);

// Walks the dumped kernel. Throws InputError when a required symbol/struct/field is missing.
LabelSet label_kernel_objects(const KernelMemory& mem, const btf::Btf& btf, const Kallsyms& syms,
                              const LabelerOptions& opt = {});

// The objects the tasks at `tasks` (task_struct vaddrs) hold, walked as for a task the lists reach:
// its mm (and the files its VMAs map, its exe_file), real_cred and cred, and the files its fd table
// holds. For tasks no list reaches (a DKOM-hidden task found by scanning, train/interpret.hpp):
// what they hold is reached through them. Each label's `holder` is the first of `tasks` that holds
// it (its address, not its PID: a word the task's owner may write). Bounded as label_kernel_objects
// (opt.max_list_total: list and VMA walks, and all fd tables' open slots, each table read once
// whichever files_structs name it; opt.max_fds); never throws on dump bytes (an unreadable table is
// a warning).
LabelSet label_task_objects(const KernelMemory& mem, const btf::Btf& btf, const Kallsyms& syms,
                            std::span<const uint64_t> tasks, const LabelerOptions& opt = {});

// Differences between the dump's counts and the guest's view, one line each
// ("processes: dump 57, guest 58", "module missing in dump: nf_tables"); empty when they agree.
std::vector<std::string> compare_with_view(const LabelCounts& dump, const GuestView& guest);

// Writes LABELS.tsv (vaddr<TAB>type<TAB>size, hex vaddr; live objects only) and the JSON Lines
// file (every label, freed ones with "state":"freed"), each atomically (temporary file in the
// same directory, then rename). Throws InputError.
void write_labels_tsv(const std::string& path, const LabelSet& labels);
void write_labels_jsonl(const std::string& path, const LabelSet& labels);
// (Its JSONL's path: jsonl_path_for, graph/file_io.hpp.)

}  // namespace deepmem
