// The one place for kernel-structure knowledge: sizes and member offsets of the structures the
// labeler walks, the baselines scan and the attacks rewrite, looked up by name in the dumped
// kernel's BTF once (issue #10 item 4; the BTF itself: train/btf.hpp, from a file or from the
// dump: train/kernel_from_dump.hpp).
//
// Contract
//   KernelLayout(btf)  Byte offsets (bytes from the start of the struct, nested members resolved,
//                      anonymous unions descended) and sizes in bytes. Plain values are members every
//                      supported kernel has (5.10–6.12); a BTF without one is an InputError naming
//                      struct and member. std::optional values came or went between versions, or
//                      only some users need them; need() makes a missing one that InputError where
//                      it is needed. A plain member that is a bitfield is an InputError too.
//   Names are the kernel's: include/linux/sched.h (task_struct), sched/signal.h (signal_struct),
//   mm_types.h (mm_struct, vm_area_struct), maple_tree.h, cred.h, fs.h (file), fdtable.h, dcache.h,
//   module.h, kernel/sched/sched.h (rq), slub_def.h and mm/slab.h (SLUB).
//   The layout keeps a reference to `btf`, which must outlive it.
#pragma once

#include "train/btf.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace deepmem {

struct KernelLayout {
    explicit KernelLayout(const btf::Btf& btf);

    const btf::Btf& btf;

    // sizeof (BTF). task_size is the largest task_struct; x86 allocates arch_task_struct_size.
    uint64_t task_size, mm_size, cred_size, file_size, dentry_size, module_size;
    // The size above of one of the six labeled types by its name; nullopt for another name.
    std::optional<uint64_t> object_size(std::string_view type) const noexcept;

    // task_struct
    uint64_t tasks, pid, tgid, group_leader, signal, mm, real_cred, cred, files, comm, comm_len;
    std::optional<uint64_t> thread_node;    // on signal->thread_head (3.14+)
    std::optional<uint64_t> thread_group;   // the older ring of threads (gone in 6.7)
    std::optional<uint64_t> children, sibling;   // list_heads: the task's children, its place among its parent's
    std::optional<uint64_t> state;          // __state (5.14+, u32), else state (long): read 4 bytes
    std::optional<uint64_t> flags, stack, active_mm, exit_state, real_parent, parent, fs, usage;
    std::optional<uint64_t> pid_links;      // hlist_node pid_links[pid_types]
    uint64_t pid_types = 0;
    // signal_struct
    std::optional<uint64_t> thread_head;
    // files_struct, fdtable
    uint64_t fdt, max_fds, max_fds_size, fd, open_fds;
    // file, dentry
    uint64_t f_dentry;   // f_path.dentry
    std::optional<uint64_t> f_cred, d_hash, d_name_name, d_name_len;
    // mm_struct, VMAs in the maple tree (6.1+). Slot counts per node type (maple_tree.h: 16 and
    // 10 on 64-bit kernels, 32 and 21 on 32-bit ones, where a 256-byte node holds 4-byte slots).
    // Before 6.1 (5.10), a list: mm->mmap, vm_area_struct.vm_next (mm_types.h).
    std::optional<uint64_t> exe_file, mm_mt_root, vm_file, vm_mm, mr64_slot, ma64_slot, mm_mmap, vm_next;
    // mm_struct.pgd and its reference counts (atomic_t, 4 bytes), for telling a freed mm_struct on
    // its cache's freelists from a never-used slot.
    std::optional<uint64_t> mm_pgd, mm_users, mm_count;
    uint64_t mr64_slots = 0, ma64_slots = 0;
    // module
    uint64_t mod_list, mod_name, mod_name_len;
    std::optional<uint64_t> mod_state, mod_state_size;
    std::optional<int64_t> module_unformed;   // enum module_state MODULE_STATE_UNFORMED
    // rq (runqueues)
    std::optional<uint64_t> rq_idle;

    // What the interpretation reads (train/interpret.hpp), all optional: a value whose member is
    // missing is reported as such, never guessed.
    std::optional<uint64_t> start_time;                       // task_struct, u64 ns since boot
    std::optional<uint64_t> cred_uid, cred_gid, cred_suid, cred_sgid, cred_euid, cred_egid,
        cred_fsuid, cred_fsgid;                               // cred, kuid_t/kgid_t (u32)
    // cred.usage (atomic_t, 4 bytes; atomic_long_t since 6.8, cred_usage_size 8) and cred.user_ns,
    // for telling a freed cred on cred_jar's freelists from a never-used slot.
    std::optional<uint64_t> cred_usage, cred_usage_size, cred_user_ns;
    std::optional<uint64_t> f_mnt, f_flags, f_pos, f_inode;   // file (f_path.mnt, u32, loff_t, pointer)
    std::optional<uint64_t> f_count, f_count_size;            // file.f_count (atomic_long_t), or f_ref
    bool f_count_is_ref = false;   // f_ref (include/linux/file_ref.h): 0 is one reference, not none
    // The file's references from the f_count_size-byte word read at f_count, as the kernel's
    // file_count() gives them: f_count as it is; f_ref (6.13+, include/linux/file_ref.h
    // file_ref_read()) the word + 1 below FILE_REF_RELEASED (the top three bits 110: released,
    // 111: dead or no reference — a freed file), else 0. 0: no reference, the file is freed or
    // being freed (__fput).
    uint64_t file_references(uint64_t raw) const noexcept;
    std::optional<uint64_t> i_ino;                            // inode (unsigned long)
    std::optional<uint64_t> d_parent, d_sb, d_inode;          // dentry
    std::optional<uint64_t> s_type, fs_type_name;             // super_block.s_type, file_system_type.name
    std::optional<uint64_t> mnt_root, mount_mnt, mnt_parent, mnt_mountpoint;   // vfsmount, fs/mount.h mount
    std::optional<uint64_t> map_count;                        // mm_struct (int)
    // module size: core_layout.size + init_layout.size (up to 6.3), else Σ mem[i].size (6.4+:
    // struct module_memory mem[MOD_MEM_NUM_TYPES], stride mod_mem_stride, mod_mem_count entries).
    std::optional<uint64_t> mod_core_size, mod_init_size, mod_mem, mod_mem_size;
    uint64_t mod_mem_stride = 0, mod_mem_count = 0;
    // PID IDR: pid_namespace.idr (.idr_rt.xa_head, .idr_base), xa_node.shift (u8) and .slots[],
    // struct pid.tasks[] (hlist_head per pid type) and .numbers[0].nr (upid).
    std::optional<uint64_t> ns_idr_head, ns_idr_base, xa_shift, xa_slots, pid_tasks, pid_nr;
    // What makes a pid_namespace init_pid_ns (include/linux/pid_namespace.h): .level (unsigned int, 0
    // for it), .child_reaper (its PID 1: copy_process sets it, kernel/fork.c), and the namespace each of
    // its struct pids names at its level, numbers[0].ns (struct upid, include/linux/pid.h).
    std::optional<uint64_t> ns_level, ns_child_reaper, pid_upid_ns;
    std::optional<uint64_t> thread_pid;   // task_struct.thread_pid (struct pid *, 4.19+): the task's own PID
    std::optional<uint64_t> xa_parent;   // xa_node.parent: the node above (NULL at the root)
    // xa_node.offset (u8: its slot in the parent), .count (u8: slots in use) and .array (the xarray
    // it belongs to), and where pid_namespace.idr.idr_rt (that xarray) lies: a node of another xarray
    // is not the IDR's, nor is a freed one (include/linux/xarray.h, 4.20+; the IDR's nodes are
    // lib/radix-tree.c's: radix_tree_node_alloc sets offset, parent and array, a root's offset 0 and
    // parent NULL; delete_node frees a node whose count fell to 0).
    std::optional<uint64_t> xa_offset, xa_count, xa_array, ns_idr_rt;
    uint64_t xa_slot_count = 0;

    // SLUB, for the task_struct and cred_jar caches' freelists; nullopt (with slub_missing saying why) when the
    // BTF lacks a member (e.g. SLAB kernels, or 5.x before struct slab).
    struct Slub {
        btf::Field list, name, cpu_slab, offset, size, node;   // kmem_cache
        std::optional<btf::Field> random, red_left_pad;         // kmem_cache, hardened/debug only
        btf::Field c_freelist, c_slab;                          // kmem_cache_cpu
        std::optional<btf::Field> c_partial;                    // CONFIG_SLUB_CPU_PARTIAL
        btf::Field s_slab_list, s_freelist, s_objects;          // slab (s_objects is a bitfield)
        std::optional<btf::Field> s_next;                       // slab, CPU partial chain
        btf::Field n_partial;                                   // kmem_cache_node
        uint64_t page_size = 0;                                 // sizeof(struct page): vmemmap stride
    };
    std::optional<Slub> slub;
    std::string slub_missing;

    // `field`, or InputError "BTF: <what> missing" (what is "struct.member").
    static uint64_t need(const std::optional<uint64_t>& field, const char* what);

    // Lookups by name, for members not listed above.
    uint32_t id(const char* struct_name) const;                            // InputError when absent
    uint64_t size(const char* struct_name) const;
    std::optional<uint64_t> opt(const char* struct_name, const char* path) const;   // InputError on a bitfield
    uint64_t req(const char* struct_name, const char* path) const;
    uint64_t member_size(const char* struct_name, const char* path) const;
    uint64_t array_length(const char* struct_name, const char* path) const;   // elements; 0 when no array
};

// The kernel's encodings of entries in its trees, the same on every supported build:
// xa_is_node (include/linux/xarray.h), an internal entry (low bits 10) above 4096: a node of an
// xarray or radix tree (an IDR's), and of a maple tree (include/linux/maple_tree.h: mas_root's test).
inline bool xa_is_node(uint64_t entry) { return (entry & 3) == 2 && entry > 4096; }

}  // namespace deepmem
