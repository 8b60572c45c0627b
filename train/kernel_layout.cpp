// KernelLayout: every struct member by name, once (contract in train/kernel_layout.hpp).
#include "train/kernel_layout.hpp"

#include "graph/layers.hpp"

#include <algorithm>

namespace deepmem {

namespace {

// SLUB's structures (mm/slab.h struct slab since 5.17; before it, the same fields in struct page's
// SLUB union, include/linux/mm_types.h, and kmem_cache_cpu.page for .slab; slub_def.h kmem_cache,
// kmem_cache_cpu; kmem_cache_node in mm/slab.h), all or nothing.
std::optional<KernelLayout::Slub> find_slub(const KernelLayout& L, std::string& missing) {
    const btf::Btf& b = L.btf;
    auto kc = b.find("kmem_cache"), kcc = b.find("kmem_cache_cpu"), sl = b.find("slab"),
         kcn = b.find("kmem_cache_node"), page = b.find("page");
    const char* cpu_slab_member = "slab";
    if (!sl && page) sl = page, cpu_slab_member = "page";   // before 5.17 (Debian 11's 5.10)
    if (!kc || !kcc || !sl || !kcn || !page) {
        missing = "BTF lacks kmem_cache/kmem_cache_cpu/slab/kmem_cache_node/page";
        return std::nullopt;
    }
    auto f = [&](uint32_t t, const char* m) { return b.member(t, m); };
    auto list = f(*kc, "list"), name = f(*kc, "name"), cpu_slab = f(*kc, "cpu_slab"), offset = f(*kc, "offset"),
         size = f(*kc, "size"), node = f(*kc, "node");
    auto c_free = f(*kcc, "freelist"), c_slab = f(*kcc, cpu_slab_member);
    auto s_list = f(*sl, "slab_list"), s_free = f(*sl, "freelist"), s_objects = f(*sl, "objects");
    auto n_partial = f(*kcn, "partial");
    if (!list || !name || !cpu_slab || !offset || !size || !node || !c_free || !c_slab || !s_list || !s_free ||
        !s_objects || !n_partial) {
        missing = "BTF lacks a SLUB field (kmem_cache/kmem_cache_cpu/slab/kmem_cache_node)";
        return std::nullopt;
    }
    KernelLayout::Slub s{*list, *name, *cpu_slab, *offset, *size, *node, f(*kc, "random"), f(*kc, "red_left_pad"),
                         *c_free, *c_slab, f(*kcc, "partial"), *s_list, *s_free, *s_objects, f(*sl, "next"),
                         *n_partial, b.size_of(*page)};
    return s;
}

}  // namespace

KernelLayout::KernelLayout(const btf::Btf& b) : btf(b) {
    task_size = size("task_struct");
    mm_size = size("mm_struct");
    cred_size = size("cred");
    file_size = size("file");
    dentry_size = size("dentry");
    module_size = size("module");
    tasks = req("task_struct", "tasks");
    pid = req("task_struct", "pid");
    tgid = req("task_struct", "tgid");
    group_leader = req("task_struct", "group_leader");
    signal = req("task_struct", "signal");
    mm = req("task_struct", "mm");
    real_cred = req("task_struct", "real_cred");
    cred = req("task_struct", "cred");
    files = req("task_struct", "files");
    comm = req("task_struct", "comm");
    comm_len = member_size("task_struct", "comm");
    thread_node = opt("task_struct", "thread_node");
    children = opt("task_struct", "children");
    sibling = opt("task_struct", "sibling");
    thread_head = opt("signal_struct", "thread_head");
    thread_group = opt("task_struct", "thread_group");
    if (!(thread_node && thread_head) && !thread_group)
        throw InputError("BTF: neither signal_struct.thread_head/task_struct.thread_node nor "
                         "task_struct.thread_group: cannot enumerate threads");
    fdt = req("files_struct", "fdt");
    max_fds = req("fdtable", "max_fds");
    max_fds_size = member_size("fdtable", "max_fds");
    fd = req("fdtable", "fd");
    open_fds = req("fdtable", "open_fds");
    f_dentry = req("file", "f_path.dentry");
    f_cred = opt("file", "f_cred");
    exe_file = opt("mm_struct", "exe_file");
    mm_pgd = opt("mm_struct", "pgd");
    mm_users = opt("mm_struct", "mm_users");
    mm_count = opt("mm_struct", "mm_count");
    d_hash = opt("dentry", "d_hash");
    mm_mt_root = opt("mm_struct", "mm_mt.ma_root");
    vm_file = opt("vm_area_struct", "vm_file");
    vm_mm = opt("vm_area_struct", "vm_mm");
    mm_mmap = opt("mm_struct", "mmap");
    vm_next = opt("vm_area_struct", "vm_next");
    mr64_slot = opt("maple_range_64", "slot");
    ma64_slot = opt("maple_arange_64", "slot");
    if (mr64_slot) mr64_slots = array_length("maple_range_64", "slot");
    if (ma64_slot) ma64_slots = array_length("maple_arange_64", "slot");
    d_name_name = opt("dentry", "d_name.name");
    d_name_len = opt("dentry", "d_name.len");
    mod_list = req("module", "list");
    mod_name = req("module", "name");
    mod_name_len = member_size("module", "name");
    mod_state = opt("module", "state");
    if (mod_state) mod_state_size = member_size("module", "state");
    module_unformed = btf.enumerator("MODULE_STATE_UNFORMED");
    rq_idle = opt("rq", "idle");
    // Fields the baselines' signature and the attacks read (train/baselines.hpp, tools/dm-attack.cpp).
    state = opt("task_struct", "__state");
    if (!state) state = opt("task_struct", "state");
    flags = opt("task_struct", "flags");
    stack = opt("task_struct", "stack");
    active_mm = opt("task_struct", "active_mm");
    exit_state = opt("task_struct", "exit_state");
    real_parent = opt("task_struct", "real_parent");
    parent = opt("task_struct", "parent");
    fs = opt("task_struct", "fs");
    usage = opt("task_struct", "usage");
    pid_links = opt("task_struct", "pid_links");
    if (pid_links) pid_types = std::max<uint64_t>(array_length("task_struct", "pid_links"), 1);
    slub = find_slub(*this, slub_missing);

    start_time = opt("task_struct", "start_time");
    cred_uid = opt("cred", "uid");
    cred_gid = opt("cred", "gid");
    cred_suid = opt("cred", "suid");
    cred_sgid = opt("cred", "sgid");
    cred_euid = opt("cred", "euid");
    cred_egid = opt("cred", "egid");
    cred_fsuid = opt("cred", "fsuid");
    cred_fsgid = opt("cred", "fsgid");
    if ((cred_usage = opt("cred", "usage"))) cred_usage_size = member_size("cred", "usage");
    cred_user_ns = opt("cred", "user_ns");
    f_mnt = opt("file", "f_path.mnt");
    f_flags = opt("file", "f_flags");
    f_pos = opt("file", "f_pos");
    f_inode = opt("file", "f_inode");
    for (const char* count : {"f_count", "f_ref"})   // f_ref: file_ref_t (6.13+)
        if (!f_count && (f_count = opt("file", count))) {
            f_count_size = member_size("file", count);
            f_count_is_ref = std::string_view(count) == "f_ref";
        }
    i_ino = opt("inode", "i_ino");
    d_parent = opt("dentry", "d_parent");
    d_sb = opt("dentry", "d_sb");
    d_inode = opt("dentry", "d_inode");
    s_type = opt("super_block", "s_type");
    fs_type_name = opt("file_system_type", "name");
    mnt_root = opt("vfsmount", "mnt_root");
    mount_mnt = opt("mount", "mnt");
    mnt_parent = opt("mount", "mnt_parent");
    mnt_mountpoint = opt("mount", "mnt_mountpoint");
    map_count = opt("mm_struct", "map_count");
    mod_core_size = opt("module", "core_layout.size");
    mod_init_size = opt("module", "init_layout.size");
    if (!mod_core_size)
        if ((mod_mem = opt("module", "mem")) && (mod_mem_size = opt("module_memory", "size"))) {
            if ((mod_mem_count = array_length("module", "mem"))) mod_mem_stride = size("module_memory");
            else mod_mem.reset();
        }
    ns_idr_head = opt("pid_namespace", "idr.idr_rt.xa_head");
    ns_idr_base = opt("pid_namespace", "idr.idr_base");
    xa_shift = opt("xa_node", "shift");
    xa_parent = opt("xa_node", "parent");
    xa_offset = opt("xa_node", "offset");
    xa_count = opt("xa_node", "count");
    xa_array = opt("xa_node", "array");
    ns_idr_rt = opt("pid_namespace", "idr.idr_rt");
    xa_slots = opt("xa_node", "slots");
    if (xa_slots) xa_slot_count = array_length("xa_node", "slots");
    pid_tasks = opt("pid", "tasks");
    if (auto numbers = opt("pid", "numbers"), nr = opt("upid", "nr"); numbers && nr) pid_nr = *numbers + *nr;   // numbers[0].nr
    if (auto numbers = opt("pid", "numbers"), ns = opt("upid", "ns"); numbers && ns) pid_upid_ns = *numbers + *ns;   // numbers[0].ns
    ns_level = opt("pid_namespace", "level");
    ns_child_reaper = opt("pid_namespace", "child_reaper");
    thread_pid = opt("task_struct", "thread_pid");
}

uint64_t KernelLayout::need(const std::optional<uint64_t>& field, const char* what) {
    if (!field) throw InputError(std::string("BTF: ") + what + " missing");
    return *field;
}

uint32_t KernelLayout::id(const char* s) const {
    auto t = btf.find(s);
    if (!t) throw InputError(std::string("BTF: no struct ") + s);
    return *t;
}

uint64_t KernelLayout::size(const char* s) const { return btf.size_of(id(s)); }

std::optional<uint64_t> KernelLayout::opt(const char* s, const char* path) const {
    auto t = btf.find(s);
    if (!t) return std::nullopt;
    auto f = btf.member(*t, path);
    if (!f) return std::nullopt;
    if (f->bitfield_size != 0 || f->bit_offset % 8 != 0)
        throw InputError(std::string("BTF: ") + s + "." + path + " is a bitfield");
    return f->byte_offset();
}

uint64_t KernelLayout::req(const char* s, const char* path) const {
    auto o = opt(s, path);
    if (!o) throw InputError(std::string("BTF: struct ") + s + " has no member " + path);
    return *o;
}

uint64_t KernelLayout::array_length(const char* s, const char* path) const {
    auto f = btf.member(id(s), path);
    if (!f) throw InputError(std::string("BTF: struct ") + s + " has no member " + path);
    const btf::Type& t = btf.type(btf.resolve(f->type));
    return t.kind == btf::Kind::Array ? t.nelems : 0;
}

uint64_t KernelLayout::member_size(const char* s, const char* path) const {
    auto f = btf.member(id(s), path);
    if (!f) throw InputError(std::string("BTF: struct ") + s + " has no member " + path);
    return btf.size_of(f->type);
}

uint64_t KernelLayout::file_references(uint64_t raw) const noexcept {
    if (!f_count_is_ref) return raw;
    // A BTF's member size (the dump's own BTF may be planted): 1 to 7 bytes as they are, else 8.
    const unsigned bits = f_count_size && *f_count_size >= 1 && *f_count_size < 8 ? unsigned(*f_count_size) * 8 : 64;
    const uint64_t released = uint64_t(0xC) << (bits - 4);   // FILE_REF_RELEASED: 0xC000…
    if (bits < 64) raw &= (uint64_t(1) << bits) - 1;
    return raw >= released ? 0 : raw + 1;
}

std::optional<uint64_t> KernelLayout::object_size(std::string_view type) const noexcept {
    if (type == "task_struct") return task_size;
    if (type == "mm_struct") return mm_size;
    if (type == "cred") return cred_size;
    if (type == "file") return file_size;
    if (type == "dentry") return dentry_size;
    if (type == "module") return module_size;
    return std::nullopt;
}

}  // namespace deepmem
