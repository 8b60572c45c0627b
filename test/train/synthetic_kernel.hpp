// A synthetic running kernel for the labeler and interpretation tests (test/train/test_labeler.cpp,
// test_interpret.cpp): hand-built BTF with offsets unlike any real build (so nothing can be
// hard-coded) and a fake memory holding a small system's objects.
#pragma once

#include "graph/layers.hpp"
#include "test/train/btf_builder.hpp"
#include "train/labeler.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace deepmem::test {

constexpr uint64_t kBase = 0xffff888000000000ull;   // where the fake memory lives
constexpr uint64_t kSize = 1 << 20;

// One contiguous region of kernel memory of kSize bytes at `base` (kBase by default; 32-bit
// tests put it in the 0xc0000000 direct map); physical = virtual - base + 0x100000. Bytes never
// written hold `fill`.
class FakeMemory final : public KernelMemory {
public:
    explicit FakeMemory(uint64_t base = kBase, uint64_t kernel_base = 0xffff800000000000ull, uint8_t fill = 0)
        : bytes_(kSize, fill), base_(base), kernel_base_(kernel_base) {}
    bool read(uint64_t va, std::span<uint8_t> out) const override {
        if (va < base_ || va - base_ > kSize || kSize - (va - base_) < out.size()) return false;
        std::copy_n(bytes_.begin() + static_cast<long>(va - base_), out.size(), out.begin());
        return true;
    }
    std::optional<uint64_t> physical(uint64_t va) const override {
        if (va < base_ || va - base_ >= kSize) return std::nullopt;
        return va - base_ + 0x100000;
    }
    uint64_t kernel_base() const override { return kernel_base_; }
    void put(uint64_t va, uint64_t v, unsigned n = 8) {
        REQUIRE(va >= base_);
        REQUIRE(va - base_ + n <= kSize);
        for (unsigned i = 0; i < n; ++i) bytes_[va - base_ + i] = (v >> (8 * i)) & 0xff;
    }
    void put_str(uint64_t va, const std::string& s) {
        for (size_t i = 0; i < s.size(); ++i) put(va + i, static_cast<uint8_t>(s[i]), 1);
        put(va + s.size(), 0, 1);
    }
private:
    std::vector<uint8_t> bytes_;
    uint64_t base_, kernel_base_;
};

// Offsets of the synthetic build (deliberately not Linux's).
struct Off {
    static constexpr uint64_t task_size = 320, tasks = 40, pid = 24, tgid = 28, group_leader = 64,
                              signal = 200, mm = 72, real_cred = 96, cred = 104, files = 112, comm = 120,
                              thread_node = 144, thread_group = 160, fdt = 8, max_fds = 4, fd = 16, open_fds = 32,
                              f_path = 48, d_name = 16, mod_list = 16, mod_state = 4, mod_name = 40, thread_head = 24,
                              rq_idle = 56, stack = 8, d_hash = 40, children = 272, sibling = 288,
                              thread_pid = 304;
    // What the interpretation reads (train/interpret.hpp)
    static constexpr uint64_t state = 0, flags = 4, exit_state = 16, real_parent = 176, start_time = 184,
                              pid_links = 208, cred_uid = 4, cred_gid = 8, cred_euid = 20, cred_fsgid = 32, cred_user_ns = 56,
                              f_flags = 8, f_pos = 16, f_inode = 24, f_count = 32, i_ino = 40, d_parent = 64,
                              d_sb = 72, s_type = 8, mnt_root = 0, mount_parent = 16, mount_mountpoint = 24,
                              mount_mnt = 32, map_count = 8, exe_file = 16, core_layout = 104, init_layout = 160,
                              idr_head = 8, idr_base = 16, xa_slots = 40, pid_tasks = 8, pid_numbers = 48,
                              upid_ns = 56, ns_child_reaper = 32, ns_level = 40;
    // SLUB (again not Linux's offsets)
    static constexpr uint64_t kc_cpu_slab = 8, kc_offset = 16, kc_size = 20, kc_name = 32, kc_list = 48,
                              kc_random = 64, kc_red = 72, kc_node = 80, kc_sizeof = 128, kcc_freelist = 8,
                              kcc_slab = 0, kcc_partial = 16, slab_list = 16, slab_freelist = 0,
                              slab_counters = 40, kcn_partial = 24, page_size = 80, free_word = 160,
                              cred_free_word = 40, cred_stride = 96, file_free_word = 128, file_stride = 256,
                              mm_pgd = 24, mm_users = 32, mm_count = 36, mm_free_word = 64, mm_stride = 128;
};

// f_ref: the file's count is 6.13's file_ref_t f_ref (include/linux/file_ref.h) in place of f_count;
// long_usage: cred.usage is 6.8's atomic_long_t (8 bytes) in place of atomic_t.
inline btf::Btf synthetic_btf(bool with_thread_head = true, bool f_ref = false, bool long_usage = false) {
    BtfBuilder b;
    uint32_t i32 = b.int_type("int", 4, 32);
    uint32_t u32 = b.int_type("unsigned int", 4, 32, false);
    uint32_t l = b.int_type("long int", 8, 64);
    uint32_t ch = b.int_type("char", 1, 8);
    uint32_t vp = b.ptr(0);
    uint32_t list = b.struct_("list_head", 16, {{"next", vp, 0}, {"prev", vp, 64}});
    uint32_t comm = b.array(ch, i32, 16);
    std::vector<deepmem::test::BtfMember> task = {
        {"pid", i32, Off::pid * 8},       {"tgid", i32, Off::tgid * 8},   {"tasks", list, Off::tasks * 8},
        {"group_leader", vp, Off::group_leader * 8}, {"mm", vp, Off::mm * 8},
        {"real_cred", vp, Off::real_cred * 8}, {"cred", vp, Off::cred * 8}, {"files", vp, Off::files * 8},
        {"comm", comm, Off::comm * 8},    {"thread_group", list, Off::thread_group * 8},
        {"signal", vp, Off::signal * 8}, {"stack", vp, Off::stack * 8},
        {"__state", u32, Off::state * 8}, {"flags", u32, Off::flags * 8}, {"exit_state", i32, Off::exit_state * 8},
        {"real_parent", vp, Off::real_parent * 8}, {"start_time", l, Off::start_time * 8},
        {"children", list, Off::children * 8}, {"sibling", list, Off::sibling * 8}, {"thread_pid", vp, Off::thread_pid * 8}};
    uint32_t hnode = b.struct_("hlist_node", 16, {{"next", vp, 0}, {"pprev", vp, 64}});
    task.push_back({"pid_links", b.array(hnode, i32, 4), Off::pid_links * 8});
    if (with_thread_head) task.push_back({"thread_node", list, Off::thread_node * 8});
    b.struct_("task_struct", Off::task_size, task);
    b.struct_("signal_struct", 64, {{"thread_head", list, Off::thread_head * 8}});
    b.struct_("mm_struct", 128, {{"mmap_base", l, 0}, {"map_count", i32, Off::map_count * 8},
                                 {"exe_file", vp, Off::exe_file * 8}, {"pgd", vp, Off::mm_pgd * 8},
                                 {"mm_users", i32, Off::mm_users * 8}, {"mm_count", i32, Off::mm_count * 8}});
    b.struct_("cred", 96, {{"usage", long_usage ? l : i32, 0}, {"uid", u32, Off::cred_uid * 8}, {"gid", u32, Off::cred_gid * 8},
                           {"euid", u32, Off::cred_euid * 8}, {"fsgid", u32, Off::cred_fsgid * 8},
                           {"user_ns", vp, Off::cred_user_ns * 8}});
    b.struct_("files_struct", 64, {{"fdt", vp, Off::fdt * 8}});
    b.struct_("fdtable", 56, {{"max_fds", u32, Off::max_fds * 8}, {"fd", vp, Off::fd * 8}, {"open_fds", vp, Off::open_fds * 8}});
    uint32_t path = b.struct_("path", 16, {{"mnt", vp, 0}, {"dentry", vp, 64}});
    b.struct_("file", 232, {{"f_path", path, Off::f_path * 8}, {"f_flags", u32, Off::f_flags * 8},
                            {"f_pos", l, Off::f_pos * 8}, {"f_inode", vp, Off::f_inode * 8},
                            {f_ref ? "f_ref" : "f_count", l, Off::f_count * 8}});
    b.struct_("inode", 64, {{"i_ino", l, Off::i_ino * 8}});
    b.struct_("super_block", 64, {{"s_type", vp, Off::s_type * 8}});
    b.struct_("file_system_type", 16, {{"name", vp, 0}});
    uint32_t vfsmount = b.struct_("vfsmount", 24, {{"mnt_root", vp, Off::mnt_root * 8}, {"mnt_sb", vp, 64}});
    b.struct_("mount", 128, {{"mnt_parent", vp, Off::mount_parent * 8}, {"mnt_mountpoint", vp, Off::mount_mountpoint * 8},
                             {"mnt", vfsmount, Off::mount_mnt * 8}});
    uint32_t xa = b.struct_("xarray", 16, {{"xa_flags", u32, 32}, {"xa_head", vp, 64}});
    uint32_t idr = b.struct_("idr", 24, {{"idr_rt", xa, 0}, {"idr_base", u32, 128}, {"idr_next", u32, 160}});
    b.struct_("pid_namespace", 64, {{"idr", idr, 0}, {"child_reaper", vp, Off::ns_child_reaper * 8}, {"level", u32, Off::ns_level * 8}});
    uint32_t u8 = b.int_type("unsigned char", 1, 8, false);
    b.struct_("xa_node", Off::xa_slots + 64 * 8, {{"shift", u8, 0}, {"offset", u8, 8}, {"count", u8, 16}, {"parent", vp, 64}, {"array", vp, 128},
                                                 {"slots", b.array(vp, i32, 64), Off::xa_slots * 8}});
    uint32_t upid = b.struct_("upid", 16, {{"nr", i32, 0}, {"ns", vp, 64}});
    b.struct_("pid", 64, {{"tasks", b.array(vp, i32, 4), Off::pid_tasks * 8},
                          {"numbers", b.array(upid, i32, 1), Off::pid_numbers * 8}});
    uint32_t hl = b.struct_("", 8, {{"hash", u32, 0}, {"len", u32, 32}});
    uint32_t hu = b.union_("", 8, {{"", hl, 0}, {"hash_len", l, 0}});
    uint32_t qstr = b.struct_("qstr", 16, {{"", hu, 0}, {"name", vp, 64}});
    uint32_t hbl = b.struct_("hlist_bl_node", 16, {{"next", vp, 0}, {"pprev", vp, 64}});
    b.struct_("dentry", 192, {{"d_name", qstr, Off::d_name * 8}, {"d_hash", hbl, Off::d_hash * 8},
                              {"d_parent", vp, Off::d_parent * 8}, {"d_sb", vp, Off::d_sb * 8}});
    uint32_t st = b.enum_("module_state", 4, {{"MODULE_STATE_LIVE", 0}, {"MODULE_STATE_COMING", 1},
                                               {"MODULE_STATE_GOING", 2}, {"MODULE_STATE_UNFORMED", 3}});
    uint32_t mname = b.array(ch, i32, 56);
    uint32_t layout = b.struct_("module_layout", 56, {{"base", vp, 0}, {"size", u32, 64}});
    b.struct_("module", 900, {{"state", st, Off::mod_state * 8}, {"list", list, Off::mod_list * 8},
                              {"name", mname, Off::mod_name * 8}, {"core_layout", layout, Off::core_layout * 8},
                              {"init_layout", layout, Off::init_layout * 8}});
    b.struct_("rq", 128, {{"idle", vp, Off::rq_idle * 8}});
    uint32_t nodes = b.array(vp, i32, 4);
    b.struct_("kmem_cache", Off::kc_sizeof,
              {{"cpu_slab", vp, Off::kc_cpu_slab * 8}, {"offset", u32, Off::kc_offset * 8}, {"size", u32, Off::kc_size * 8},
               {"name", vp, Off::kc_name * 8}, {"list", list, Off::kc_list * 8}, {"random", l, Off::kc_random * 8},
               {"red_left_pad", u32, Off::kc_red * 8}, {"node", nodes, Off::kc_node * 8}});
    b.struct_("kmem_cache_cpu", 32, {{"freelist", vp, Off::kcc_freelist * 8}, {"slab", vp, Off::kcc_slab * 8},
                                      {"partial", vp, Off::kcc_partial * 8}});
    uint32_t counters = b.struct_("", 4, {{"inuse", u32, 0, 16}, {"objects", u32, 16, 15}, {"frozen", u32, 31, 1}});
    uint32_t links = b.union_("", 16, {{"slab_list", list, 0}, {"next", vp, 0}});
    b.struct_("slab", Off::page_size, {{"freelist", vp, Off::slab_freelist * 8}, {"", links, Off::slab_list * 8},
                                       {"", counters, Off::slab_counters * 8}});
    b.struct_("kmem_cache_node", 64, {{"partial", list, Off::kcn_partial * 8}});
    b.struct_("page", Off::page_size, {{"flags", l, 0}});
    return btf::Btf::parse(b.blob());
}

// A small running system:
//   init_task (swapper/0) → PID 1 init → PID 100 worker (+ threads 101, 102) → PID 2 kthreadd
//   modules: ext4 (live), loading (unformed); CPU 1's idle task swapper/1 on runqueues only.
struct World {
    FakeMemory mem;
    std::string kallsyms;
    uint64_t next = kBase + 0x1000;
    std::map<std::string, uint64_t> at;   // object name → address

    uint64_t alloc(const std::string& name, uint64_t size) {
        uint64_t a = next;
        next += (size + 63) / 64 * 64;
        at[name] = a;
        return a;
    }
    // Links nodes (list_head addresses) into a circular list with `head`.
    void link(uint64_t head, const std::vector<uint64_t>& nodes) {
        std::vector<uint64_t> all = {head};
        all.insert(all.end(), nodes.begin(), nodes.end());
        for (size_t i = 0; i < all.size(); ++i) {
            mem.put(all[i], all[(i + 1) % all.size()]);
            mem.put(all[i] + 8, all[(i + all.size() - 1) % all.size()]);
        }
    }
    uint64_t task(const std::string& name, int pid, int tgid, const std::string& comm) {
        return task_at(alloc(name, Off::task_size), pid, tgid, comm);
    }
    uint64_t task_at(uint64_t t, int pid, int tgid, const std::string& comm) {
        mem.put(t + Off::stack, kBase + 0xf0000 + static_cast<uint64_t>(pid) * 0x4000);
        mem.put(t + Off::pid, static_cast<uint32_t>(pid), 4);
        mem.put(t + Off::tgid, static_cast<uint32_t>(tgid), 4);
        mem.put_str(t + Off::comm, comm);
        mem.put(t + Off::group_leader, t);
        for (uint64_t head : {Off::children, Off::sibling}) {   // empty lists (INIT_LIST_HEAD)
            mem.put(t + head, t + head);
            mem.put(t + head + 8, t + head);
        }
        return t;
    }
    uint64_t files(const std::string& name, const std::vector<std::pair<unsigned, uint64_t>>& fds,
                   uint64_t extra_bits = 0) {
        uint64_t f = alloc(name, 64), fdt = alloc(name + ".fdt", 56), arr = alloc(name + ".fd", 64 * 8),
                 bits = alloc(name + ".bits", 8);
        mem.put(f + Off::fdt, fdt);
        mem.put(fdt + Off::max_fds, 64, 4);
        mem.put(fdt + Off::fd, arr);
        mem.put(fdt + Off::open_fds, bits);
        uint64_t b = extra_bits;
        for (auto [fd, file] : fds) {
            mem.put(arr + 8 * fd, file);
            if (file) b |= 1ull << fd;
        }
        mem.put(bits, b);
        return f;
    }
    uint64_t file(const std::string& name, uint64_t dentry) {
        uint64_t f = alloc(name, 232);
        mem.put(f + Off::f_path + 8, dentry);
        return f;
    }
    uint64_t dentry(const std::string& name) {
        uint64_t d = alloc(name, 192), s = alloc(name + ".name", 32);
        mem.put_str(s, name);
        mem.put(d + Off::d_name + 8, s);
        return d;
    }
    void sym(const std::string& name, uint64_t a) {
        char line[128];
        std::snprintf(line, sizeof line, "%016llx D %s\n", static_cast<unsigned long long>(a), name.c_str());
        kallsyms += line;
    }

    World() {
        uint64_t init = task("init_task", 0, 0, "swapper/0");
        uint64_t p1 = task("p1", 1, 1, "init");
        uint64_t p2 = task("p2", 100, 100, "worker");
        uint64_t t1 = task("t1", 101, 100, "worker-a");
        uint64_t t2 = task("t2", 102, 100, "worker-b");
        uint64_t p3 = task("p3", 2, 2, "kthreadd");
        uint64_t idle1 = task("idle1", 0, 0, "swapper/1");
        mem.put(t1 + Off::group_leader, p2);
        mem.put(t2 + Off::group_leader, p2);
        link(init + Off::tasks, {p1 + Off::tasks, p2 + Off::tasks, p3 + Off::tasks});
        // thread lists: one signal_struct per group, thread_head lists and thread_group rings
        for (auto [leader, members] : std::vector<std::pair<uint64_t, std::vector<uint64_t>>>{
                 {init, {init}}, {p1, {p1}}, {p2, {p2, t1, t2}}, {p3, {p3}}, {idle1, {idle1}}}) {
            uint64_t sig = alloc("sig" + std::to_string(leader), 64);
            std::vector<uint64_t> nodes, ring;
            for (uint64_t t : members) {
                mem.put(t + Off::signal, sig);
                nodes.push_back(t + Off::thread_node);
                ring.push_back(t + Off::thread_group);
            }
            link(sig + Off::thread_head, nodes);
            std::vector<uint64_t> rest(ring.begin() + 1, ring.end());
            link(ring[0], rest);
        }
        uint64_t c0 = alloc("init_cred", 96), c1 = alloc("c1", 96), c2 = alloc("c2", 96), c3 = alloc("c3", 96);
        for (uint64_t t : {init, p3, idle1}) {
            mem.put(t + Off::real_cred, c0);
            mem.put(t + Off::cred, c0);
        }
        mem.put(p1 + Off::real_cred, c1);
        mem.put(p1 + Off::cred, c1);
        for (uint64_t t : {p2, t1, t2}) {
            mem.put(t + Off::real_cred, c2);
            mem.put(t + Off::cred, c2);
        }
        mem.put(t2 + Off::cred, c3);   // overridden creds
        uint64_t m1 = alloc("m1", 128), m2 = alloc("m2", 128);
        mem.put(p1 + Off::mm, m1);
        for (uint64_t t : {p2, t1, t2}) mem.put(t + Off::mm, m2);

        uint64_t da = dentry("console"), db = dentry("log"), dc = dentry("socket");
        // The dcache: 4 buckets (d_hash_shift 30); bucket 0 (lock bit set) chains log → cached,
        // bucket 2 holds cached2; only the hash reaches the two cached dentries.
        uint64_t cached = dentry("cached"), cached2 = dentry("cached2");
        uint64_t table = alloc("dentry_hashtable.table", 32), table_var = alloc("dentry_hashtable", 8),
                 shift_var = alloc("d_hash_shift", 8);
        mem.put(table_var, table);
        mem.put(shift_var, 30, 4);
        mem.put(table, (db + Off::d_hash) | 1);
        mem.put(db + Off::d_hash, cached + Off::d_hash);
        mem.put(table + 16, cached2 + Off::d_hash);
        sym("dentry_hashtable", table_var);
        sym("d_hash_shift", shift_var);
        uint64_t fa = file("fa", da), fb = file("fb", da), fc = file("fc", db), fd = file("fd", dc),
                 stale = file("stale", dc);
        uint64_t init_files = files("init_files", {});
        // fd 3 reserved (bit set, no file); fd 5 stale pointer with its bit clear: neither counts.
        uint64_t f1 = files("f1", {{0, fa}, {1, fb}, {2, fc}, {5, stale}}, 1ull << 3);
        mem.put(at["f1.bits"], (1ull << 0) | (1ull << 1) | (1ull << 2) | (1ull << 3), 8);
        uint64_t f2 = files("f2", {{0, fa}, {1, fd}});   // fa shared with PID 1 (inherited)
        for (uint64_t t : {init, p3, idle1}) mem.put(t + Off::files, init_files);
        mem.put(p1 + Off::files, f1);
        for (uint64_t t : {p2, t1, t2}) mem.put(t + Off::files, f2);

        uint64_t modules = alloc("modules", 16), ext4 = alloc("ext4", 900), loading = alloc("loading", 900);
        mem.put_str(ext4 + Off::mod_name, "ext4");
        mem.put_str(loading + Off::mod_name, "loading");
        mem.put(loading + Off::mod_state, 3, 4);
        link(modules, {ext4 + Off::mod_list, loading + Off::mod_list});

        // per-CPU: runqueues is an offset, __per_cpu_offset[cpu] the base of each CPU's area
        uint64_t pcpu0 = alloc("pcpu0", 4096), pcpu1 = alloc("pcpu1", 4096);
        uint64_t offsets = alloc("__per_cpu_offset", 16), nr = alloc("nr_cpu_ids", 8);
        const uint64_t runqueues = 0x200;
        mem.put(offsets, pcpu0);
        mem.put(offsets + 8, pcpu1);
        mem.put(nr, 2, 4);
        mem.put(pcpu0 + runqueues + Off::rq_idle, init);
        mem.put(pcpu1 + runqueues + Off::rq_idle, idle1);

        // The task_struct slab cache: one slab of 4 objects at vmemmap index 3, the active slab
        // of CPU 1. obj0 freed (intact), obj1 free and never used, obj2 allocated but on no
        // list (a hidden task), obj3 freed (intact) on CPU 1's lockless freelist.
        const uint64_t R = 0x0123456789abcdefull;
        uint64_t vmemmap = alloc("vmemmap", 8 * Off::page_size);
        uint64_t slab = vmemmap + 3 * Off::page_size;
        uint64_t objs = next = (next + 4095) / 4096 * 4096;
        next += 4 * Off::task_size + 64;
        // cred_jar: one slab of 4 creds at vmemmap index 5, CPU 0's active slab. cobj0 freed
        // (intact: usage 0, a user_ns) on the slab's freelist before cobj1 (free, never used),
        // cobj2 allocated but reached from no task or file, cobj3 freed on CPU 0's lockless freelist.
        uint64_t cobjs = next = objs + 2 * 4096;
        next += 4 * Off::cred_stride + 64;
        const uint64_t page_offset = objs - 3 * 4096;
        uint64_t pob = alloc("page_offset_base", 8), vmb = alloc("vmemmap_base", 8);
        mem.put(pob, page_offset);
        mem.put(vmb, vmemmap);
        for (int i = 0; i < 4; ++i) at["obj" + std::to_string(i)] = objs + i * Off::task_size;
        task_at(at["obj0"], 77, 77, "oldproc");
        task_at(at["obj2"], 88, 88, "hidden");
        task_at(at["obj3"], 99, 99, "oldthread");
        auto enc = [&](uint64_t obj, uint64_t nxt) {   // hardened freelist word of obj
            uint64_t where = obj + Off::free_word;
            mem.put(where, nxt ^ R ^ __builtin_bswap64(where));
        };
        enc(at["obj0"], at["obj1"]);
        enc(at["obj1"], 0);
        enc(at["obj3"], 0);
        mem.put(slab + Off::slab_freelist, at["obj0"]);
        mem.put(slab + Off::slab_counters, (4u << 16) | 1u | (1u << 31), 4);   // objects 4, inuse 1, frozen
        const uint64_t CR = 0x5a5a00ff33cc1234ull, cslab = vmemmap + 5 * Off::page_size;
        for (int i = 0; i < 4; ++i) at["cobj" + std::to_string(i)] = cobjs + i * Off::cred_stride;
        auto cenc = [&](uint64_t obj, uint64_t nxt) {
            uint64_t where = obj + Off::cred_free_word;
            mem.put(where, nxt ^ CR ^ __builtin_bswap64(where));
        };
        for (const char* c : {"cobj0", "cobj2", "cobj3"}) {
            mem.put(at[c] + Off::cred_uid, 1000, 4);
            mem.put(at[c] + Off::cred_user_ns, at["init_task"]);   // any kernel address
        }
        mem.put(at["cobj2"], 1, 4);   // usage
        cenc(at["cobj0"], at["cobj1"]);
        cenc(at["cobj1"], 0);
        cenc(at["cobj3"], 0);
        mem.put(cslab + Off::slab_freelist, at["cobj0"]);
        mem.put(cslab + Off::slab_counters, (4u << 16) | 1u | (1u << 31), 4);
        // filp: one slab of 3 files at vmemmap index 6, on node 0's partial list. fobj0 freed
        // (intact: f_count 0, an inode and a mount) on the slab's freelist before fobj1 (free, never
        // used); fobj2 allocated and reached from no fd table.
        // A slab of 3 objects <p>0..2 of `stride` bytes at `objs`: <p>0 then <p>1 on its freelist (the
        // hardened word at `free_word`, key `random`), 1 in use; and its cache (offset, size, random,
        // an empty kmem_cache_cpu on every CPU, the slab on node 0's partial list).
        auto three_object_slab = [&](const std::string& p, uint64_t slab, uint64_t objs_at, uint64_t stride,
                                     uint64_t free_word, uint64_t random) {
            for (int i = 0; i < 3; ++i) at[p + std::to_string(i)] = objs_at + i * stride;
            auto enc = [&](uint64_t obj, uint64_t nxt) {
                uint64_t where = obj + free_word;
                mem.put(where, nxt ^ random ^ __builtin_bswap64(where));
            };
            enc(at[p + "0"], at[p + "1"]);
            enc(at[p + "1"], 0);
            mem.put(slab + Off::slab_freelist, at[p + "0"]);
            mem.put(slab + Off::slab_counters, (3u << 16) | 1u, 4);
        };
        auto partial_cache = [&](uint64_t cache, uint64_t kcn, uint64_t slab, uint64_t stride, uint64_t free_word,
                                 uint64_t random) {
            mem.put(cache + Off::kc_offset, free_word, 4);
            mem.put(cache + Off::kc_size, stride, 4);
            mem.put(cache + Off::kc_random, random);
            mem.put(cache + Off::kc_cpu_slab, 0x600);   // an empty kmem_cache_cpu on every CPU
            link(kcn + Off::kcn_partial, {slab + Off::slab_list});
            mem.put(cache + Off::kc_node, kcn);
        };
        const uint64_t FR = 0x7777000011112222ull, fslab = vmemmap + 6 * Off::page_size;
        const uint64_t fobjs = objs + 3 * 4096;
        next = fobjs + 3 * Off::file_stride + 64;
        three_object_slab("fobj", fslab, fobjs, Off::file_stride, Off::file_free_word, FR);
        for (const char* f : {"fobj0", "fobj2"}) {
            mem.put(at[f] + Off::f_path, at["init_task"]);    // f_path.mnt: any kernel address
            mem.put(at[f] + Off::f_inode, at["init_task"]);
        }
        mem.put(at["fobj2"] + Off::f_count, 1);
        // mm_struct: one slab of 3 at vmemmap index 7, on node 0's partial list. mobj0 freed (intact:
        // a pgd, mm_users and mm_count 0) on the slab's freelist before mobj1 (free, never used);
        // mobj2 allocated (counts 1) and reached from no task. Found by the kernel's mm_cachep.
        const uint64_t MR = 0x1357924680aceb0full, mslab = vmemmap + 7 * Off::page_size;
        const uint64_t mobjs = objs + 4 * 4096;
        next = mobjs + 3 * Off::mm_stride + 64;
        three_object_slab("mobj", mslab, mobjs, Off::mm_stride, Off::mm_free_word, MR);
        for (const char* m : {"mobj0", "mobj2"}) mem.put(at[m] + Off::mm_pgd, at["init_task"]);   // any kernel address
        mem.put(at["mobj2"] + Off::mm_users, 1, 4);
        mem.put(at["mobj2"] + Off::mm_count, 1, 4);
        uint64_t mcache = alloc("mm_cache", Off::kc_sizeof), mm_cachep = alloc("mm_cachep", 8);
        partial_cache(mcache, alloc("mkcn", 64), mslab, Off::mm_stride, Off::mm_free_word, MR);
        mem.put(mm_cachep, mcache);
        sym("mm_cachep", mm_cachep);
        uint64_t caches = alloc("slab_caches", 16), other = alloc("cred_jar", Off::kc_sizeof),
                 tcache = alloc("task_cache", Off::kc_sizeof), oname = alloc("oname", 16), tname = alloc("tname", 16),
                 fcache = alloc("filp_cache", Off::kc_sizeof), fname = alloc("fname", 16), fkcn = alloc("fkcn", 64);
        mem.put_str(fname, "filp");
        mem.put(fcache + Off::kc_name, fname);
        partial_cache(fcache, fkcn, fslab, Off::file_stride, Off::file_free_word, FR);
        mem.put_str(oname, "cred_jar");
        mem.put_str(tname, "task_struct");
        mem.put(other + Off::kc_name, oname);
        mem.put(tcache + Off::kc_name, tname);
        mem.put(other + Off::kc_offset, Off::cred_free_word, 4);
        mem.put(other + Off::kc_size, Off::cred_stride, 4);
        mem.put(other + Off::kc_random, CR);
        link(caches, {other + Off::kc_list, tcache + Off::kc_list, fcache + Off::kc_list});
        mem.put(tcache + Off::kc_offset, Off::free_word, 4);
        mem.put(tcache + Off::kc_size, Off::task_size, 4);
        mem.put(tcache + Off::kc_random, R);
        uint64_t kcn = alloc("kcn", 64);
        link(kcn + Off::kcn_partial, {});
        mem.put(tcache + Off::kc_node, kcn);
        const uint64_t cpu_slab = 0x400;   // a per-CPU offset, like runqueues
        mem.put(tcache + Off::kc_cpu_slab, cpu_slab);
        mem.put(pcpu1 + cpu_slab + Off::kcc_slab, slab);
        mem.put(pcpu1 + cpu_slab + Off::kcc_freelist, at["obj3"]);
        uint64_t ckcn = alloc("ckcn", 64);
        link(ckcn + Off::kcn_partial, {});
        mem.put(other + Off::kc_node, ckcn);
        const uint64_t cred_cpu_slab = 0x500;
        mem.put(other + Off::kc_cpu_slab, cred_cpu_slab);
        mem.put(pcpu0 + cred_cpu_slab + Off::kcc_slab, cslab);
        mem.put(pcpu0 + cred_cpu_slab + Off::kcc_freelist, at["cobj3"]);
        uint64_t nr_nodes = alloc("nr_node_ids", 8);
        mem.put(nr_nodes, 1, 4);
        mem.put(tcache + Off::kc_node + 8, 0x4141414141414141ull);   // past nr_node_ids: not a node
        sym("nr_node_ids", nr_nodes);
        sym("slab_caches", caches);
        sym("page_offset_base", pob);
        sym("vmemmap_base", vmb);

        sym("init_task", init);
        sym("modules", modules);
        sym("__per_cpu_offset", offsets);
        sym("nr_cpu_ids", nr);
        sym("runqueues", runqueues);
    }
    Kallsyms syms() const {
        return Kallsyms::parse({reinterpret_cast<const uint8_t*>(kallsyms.data()), kallsyms.size()});
    }
};

}  // namespace deepmem::test
