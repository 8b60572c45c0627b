// The labeler on a synthetic 32-bit kernel (Debian's 686-pae build: 4-byte pointers and unsigned
// longs, 8-byte list_head, the lowmem direct map at PAGE_OFFSET, FLATMEM mem_map, 32-slot maple
// nodes). Memory not written holds 0xa5 bytes, so a walk that reads 8 bytes where the kernel
// stores 4 picks up garbage and loses the object. Offsets are hand-picked, not Linux's.
#include "test/train/btf_builder.hpp"
#include "test/train/synthetic_kernel.hpp"
#include "train/labeler.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace deepmem;
using deepmem::test::BtfBuilder;
using deepmem::test::FakeMemory;
using deepmem::test::kSize;

namespace {

constexpr uint64_t kBase32 = 0xc1000000;   // the fake memory; physical = virtual - kBase32 + 0x100000
constexpr uint64_t kKernelBase = 0xc0000000;

struct O {   // offsets of the synthetic 32-bit build
    static constexpr uint64_t task_size = 200, pid = 12, tgid = 16, tasks = 20, group_leader = 32, signal = 36,
                              mm = 40, real_cred = 44, cred = 48, files = 52, comm = 56, thread_node = 76;
    static constexpr uint64_t thread_head = 8, mm_root = 12, exe_file = 28, vm_mm = 8, vm_file = 40,
                              mr_slot = 128, ma_slot = 84, fdt = 4, max_fds = 0, fd = 4, open_fds = 8,
                              f_dentry = 16, d_hash = 8, d_name_name = 28, mod_state = 0, mod_list = 4,
                              mod_name = 12, rq_idle = 32;
    static constexpr uint64_t kc_cpu_slab = 0, kc_size = 12, kc_offset = 20, kc_name = 40, kc_list = 44,
                              kc_random = 60, kc_red = 64, kc_node = 80, kc_sizeof = 88, kcc_freelist = 0,
                              kcc_slab = 8, kcc_partial = 12, slab_list = 4, slab_freelist = 16, slab_counters = 20,
                              kcn_partial = 8, page_size = 32, free_word = 100;
};

// page_slub: a kernel before 5.17, whose SLUB fields live in struct page (no struct slab) and
// kmem_cache_cpu names its slab `page`.
btf::Btf btf32(bool page_slub = false) {
    BtfBuilder b;
    uint32_t i32 = b.int_type("int", 4, 32);
    uint32_t u32 = b.int_type("unsigned int", 4, 32, false);
    uint32_t ul = b.int_type("long unsigned int", 4, 32, false);
    b.int_type("long int", 4, 32);   // pointer size 4
    uint32_t ch = b.int_type("char", 1, 8);
    uint32_t u64 = b.int_type("long long unsigned int", 8, 64, false);
    uint32_t vp = b.ptr(0);
    uint32_t list = b.struct_("list_head", 8, {{"next", vp, 0}, {"prev", vp, 32}});
    b.struct_("task_struct", O::task_size,
              {{"pid", i32, O::pid * 8}, {"tgid", i32, O::tgid * 8}, {"tasks", list, O::tasks * 8},
               {"group_leader", vp, O::group_leader * 8}, {"signal", vp, O::signal * 8}, {"mm", vp, O::mm * 8},
               {"real_cred", vp, O::real_cred * 8}, {"cred", vp, O::cred * 8}, {"files", vp, O::files * 8},
               {"comm", b.array(ch, i32, 16), O::comm * 8}, {"thread_node", list, O::thread_node * 8}});
    b.struct_("signal_struct", 32, {{"thread_head", list, O::thread_head * 8}});
    uint32_t mt = b.struct_("maple_tree", 12, {{"ma_flags", u32, 0}, {"ma_root", vp, 32}});
    b.struct_("mm_struct", 64, {{"mm_mt", mt, (O::mm_root - 4) * 8}, {"exe_file", vp, O::exe_file * 8}});
    b.struct_("vm_area_struct", 64, {{"vm_mm", vp, O::vm_mm * 8}, {"vm_file", vp, O::vm_file * 8}});
    // maple_tree.h without CONFIG_64BIT: 32 range slots, 21 arange slots in a 256-byte node
    b.struct_("maple_range_64", 256, {{"parent", vp, 0}, {"pivot", b.array(ul, i32, 31), 32},
                                      {"slot", b.array(vp, i32, 32), O::mr_slot * 8}});
    b.struct_("maple_arange_64", 256, {{"parent", vp, 0}, {"pivot", b.array(ul, i32, 20), 32},
                                       {"slot", b.array(vp, i32, 21), O::ma_slot * 8},
                                       {"gap", b.array(ul, i32, 21), 168 * 8}});
    b.struct_("cred", 96, {{"usage", i32, 0}});
    b.struct_("files_struct", 32, {{"fdt", vp, O::fdt * 8}});
    b.struct_("fdtable", 20, {{"max_fds", u32, O::max_fds * 8}, {"fd", vp, O::fd * 8}, {"open_fds", vp, O::open_fds * 8}});
    uint32_t path = b.struct_("path", 8, {{"mnt", vp, 0}, {"dentry", vp, 32}});
    b.struct_("file", 100, {{"f_path", path, (O::f_dentry - 4) * 8}});
    uint32_t hl = b.struct_("", 8, {{"hash", u32, 0}, {"len", u32, 32}});
    uint32_t hu = b.union_("", 8, {{"", hl, 0}, {"hash_len", u64, 0}});
    uint32_t qstr = b.struct_("qstr", 12, {{"", hu, 0}, {"name", vp, 64}});
    uint32_t hbl = b.struct_("hlist_bl_node", 8, {{"next", vp, 0}, {"pprev", vp, 32}});
    b.struct_("dentry", 96, {{"d_hash", hbl, O::d_hash * 8}, {"d_name", qstr, (O::d_name_name - 8) * 8}});
    uint32_t st = b.enum_("module_state", 4, {{"MODULE_STATE_LIVE", 0}, {"MODULE_STATE_UNFORMED", 3}});
    b.struct_("module", 400, {{"state", st, O::mod_state * 8}, {"list", list, O::mod_list * 8},
                              {"name", b.array(ch, i32, 56), O::mod_name * 8}});
    b.struct_("rq", 64, {{"idle", vp, O::rq_idle * 8}});
    b.struct_("kmem_cache", O::kc_sizeof,
              {{"cpu_slab", vp, O::kc_cpu_slab * 8}, {"size", u32, O::kc_size * 8}, {"offset", u32, O::kc_offset * 8},
               {"name", vp, O::kc_name * 8}, {"list", list, O::kc_list * 8}, {"random", ul, O::kc_random * 8},
               {"red_left_pad", u32, O::kc_red * 8}, {"node", b.array(vp, i32, 2), O::kc_node * 8}});
    b.struct_("kmem_cache_cpu", 16, {{"freelist", vp, O::kcc_freelist * 8}, {"tid", ul, 32},
                                      {page_slub ? "page" : "slab", vp, O::kcc_slab * 8}, {"partial", vp, O::kcc_partial * 8}});
    uint32_t counters = b.struct_("", 4, {{"inuse", u32, 0, 16}, {"objects", u32, 16, 15}, {"frozen", u32, 31, 1}});
    uint32_t links = b.union_("", 8, {{"slab_list", list, 0}, {"next", vp, 0}});
    if (!page_slub)
        b.struct_("slab", O::page_size, {{"__page_flags", ul, 0}, {"", links, O::slab_list * 8},
                                         {"freelist", vp, O::slab_freelist * 8}, {"", counters, O::slab_counters * 8}});
    b.struct_("kmem_cache_node", 24, {{"partial", list, O::kcn_partial * 8}});
    if (page_slub) {   // the slab variant of struct page's union (include/linux/mm_types.h before 5.17)
        uint32_t slub = b.struct_("", O::page_size - 4, {{"", links, (O::slab_list - 4) * 8},
                                                         {"freelist", vp, (O::slab_freelist - 4) * 8},
                                                         {"", counters, (O::slab_counters - 4) * 8}});
        uint32_t variants = b.union_("", O::page_size - 4, {{"", slub, 0}, {"private", ul, 0}});
        b.struct_("page", O::page_size, {{"flags", ul, 0}, {"", variants, 32}});
    } else {
        b.struct_("page", O::page_size, {{"flags", ul, 0}});
    }
    return btf::Btf::parse(b.blob());
}

// A small 32-bit system: init_task → PID 1 init (fds 0, 1 and 7 in a 32-entry table) → PID 50
// daemon with thread 51; CPU 1's idle task; module "loop"; a task_struct slab with one freed task.
struct World32 {
    FakeMemory mem{kBase32, kKernelBase, 0xa5};
    std::string kallsyms;
    uint64_t next = kBase32 + 0x1000;
    std::map<std::string, uint64_t> at;

    uint64_t alloc(const std::string& name, uint64_t size, uint64_t align = 64) {
        next = (next + align - 1) / align * align;
        at[name] = next;
        next += size;
        return at[name];
    }
    void p(uint64_t va, uint64_t v) { mem.put(va, v, 4); }
    void link(uint64_t head, const std::vector<uint64_t>& nodes) {
        std::vector<uint64_t> all = {head};
        all.insert(all.end(), nodes.begin(), nodes.end());
        for (size_t i = 0; i < all.size(); ++i) {
            p(all[i], all[(i + 1) % all.size()]);
            p(all[i] + 4, all[(i + all.size() - 1) % all.size()]);
        }
    }
    uint64_t task_at(uint64_t t, int pid, int tgid, const std::string& comm) {
        p(t + O::pid, static_cast<uint32_t>(pid));
        p(t + O::tgid, static_cast<uint32_t>(tgid));
        mem.put_str(t + O::comm, comm);
        p(t + O::group_leader, t);
        for (uint64_t off : {O::mm, O::files}) p(t + off, 0);
        return t;
    }
    uint64_t task(const std::string& name, int pid, int tgid, const std::string& comm) {
        return task_at(alloc(name, O::task_size), pid, tgid, comm);
    }
    uint64_t dentry(const std::string& name) {
        uint64_t d = alloc(name, 96), s = alloc(name + ".name", 32);
        mem.put_str(s, name);
        p(d + O::d_name_name, s);
        return d;
    }
    uint64_t file(const std::string& name, uint64_t dentry) {
        uint64_t f = alloc(name, 100);
        p(f + O::f_dentry, dentry);
        return f;
    }
    void sym(const std::string& name, uint64_t a) {
        char line[128];
        std::snprintf(line, sizeof line, "%08llx D %s\n", static_cast<unsigned long long>(a), name.c_str());
        kallsyms += line;
    }
    Kallsyms syms() const {
        return Kallsyms::parse({reinterpret_cast<const uint8_t*>(kallsyms.data()), kallsyms.size()});
    }

    // renamed: the task_struct cache is named otherwise, found through task_struct_cachep (when
    // cachep) only.
    explicit World32(bool renamed = false, bool cachep = true) {
        uint64_t init = task("init_task", 0, 0, "swapper/0"), p1 = task("p1", 1, 1, "init"),
                 p50 = task("p50", 50, 50, "daemon"), t51 = task("t51", 51, 50, "daemon-w"),
                 idle1 = task("idle1", 0, 0, "swapper/1");
        p(t51 + O::group_leader, p50);
        link(init + O::tasks, {p1 + O::tasks, p50 + O::tasks});
        for (auto& group : std::vector<std::vector<uint64_t>>{{init}, {p1}, {p50, t51}, {idle1}}) {
            uint64_t sig = alloc("sig" + std::to_string(group[0]), 32);
            std::vector<uint64_t> nodes;
            for (uint64_t t : group) {
                p(t + O::signal, sig);
                nodes.push_back(t + O::thread_node);
            }
            link(sig + O::thread_head, nodes);
        }
        uint64_t c0 = alloc("c0", 96), c1 = alloc("c1", 96);
        for (uint64_t t : {init, idle1}) p(t + O::real_cred, c0), p(t + O::cred, c0);
        for (uint64_t t : {p1, p50, t51}) p(t + O::real_cred, c1), p(t + O::cred, c1);

        // PID 1: a 32-entry fd table (one unsigned long of open_fds, the last 4 bytes of memory)
        uint64_t console = dentry("console"), lib = dentry("libc.so.6");
        uint64_t f0 = file("f0", console), f1 = file("f1", console), f7 = file("f7", console);
        uint64_t files = alloc("files1", 32), fdt = alloc("fdt1", 20), fds = alloc("fd1", 32 * 4);
        p(files + O::fdt, fdt);
        p(fdt + O::max_fds, 32);
        p(fdt + O::fd, fds);
        const uint64_t bitmap = kBase32 + kSize - 4;
        at["bitmap"] = bitmap;
        p(fdt + O::open_fds, bitmap);
        p(bitmap, (1u << 0) | (1u << 1) | (1u << 7));
        for (unsigned fd = 0; fd < 32; ++fd) p(fds + 4 * fd, fd == 0 ? f0 : fd == 1 ? f1 : fd == 7 ? f7 : 0);
        p(p1 + O::files, files);
        // PID 50 (and its thread) share an empty table
        uint64_t files50 = alloc("files50", 32), fdt50 = alloc("fdt50", 20), fds50 = alloc("fd50", 32 * 4),
                 bits50 = alloc("bits50", 4);
        p(files50 + O::fdt, fdt50);
        p(fdt50 + O::max_fds, 32);
        p(fdt50 + O::fd, fds50);
        p(fdt50 + O::open_fds, bits50);
        p(bits50, 0);
        for (uint64_t t : {p50, t51}) p(t + O::files, files50);

        // PID 1's mm: a maple tree whose root is a range_64 node; its slot 20 (past the 16 slots
        // of a 64-bit node) is a leaf whose slot 25 is a VMA mapping libc.so.6.
        uint64_t mm = alloc("mm1", 64), root = alloc("maple_root", 256, 256), leaf = alloc("maple_leaf", 256, 256),
                 vma = alloc("vma", 64), flib = file("flib", lib);
        for (uint64_t i = 0; i < 32; ++i) p(root + O::mr_slot + 4 * i, i == 20 ? leaf | (1 << 3) : 0);
        for (uint64_t i = 0; i < 32; ++i) p(leaf + O::mr_slot + 4 * i, i == 25 ? vma : 0);
        p(mm + O::mm_root, root | (2 << 3) | 2);
        p(mm + O::exe_file, 0);
        p(vma + O::vm_mm, mm);
        p(vma + O::vm_file, flib);
        p(p1 + O::mm, mm);

        uint64_t modules = alloc("modules", 8), loop = alloc("loop", 400);
        mem.put_str(loop + O::mod_name, "loop");
        p(loop + O::mod_state, 0);
        link(modules, {loop + O::mod_list});

        // dcache: 4 buckets (d_hash_shift 30), bucket 1 holds console (lock bit set)
        uint64_t table = alloc("dcache_table", 16), table_var = alloc("dentry_hashtable", 4),
                 shift_var = alloc("d_hash_shift", 4);
        p(table_var, table);
        p(shift_var, 30);
        for (uint64_t b = 0; b < 4; ++b) p(table + 4 * b, b == 1 ? (console + O::d_hash) | 1 : 0);
        p(console + O::d_hash, 0);

        uint64_t pcpu0 = alloc("pcpu0", 2048), pcpu1 = alloc("pcpu1", 2048), offsets = alloc("__per_cpu_offset", 8),
                 nr = alloc("nr_cpu_ids", 4);
        const uint64_t runqueues = 0x100, cpu_slab = 0x300;
        p(offsets, pcpu0);
        p(offsets + 4, pcpu1);
        p(nr, 2);
        p(pcpu0 + runqueues + O::rq_idle, init);
        p(pcpu1 + runqueues + O::rq_idle, idle1);

        // The task_struct cache: one 4-object slab, CPU 0's active slab, every object free.
        // Slab freelist obj0 → obj2 → obj1: obj0 a freed task (intact), obj2 and obj1 never used
        // (0xa5 garbage); CPU 0's lockless freelist: obj3, a freed task. Freelist words are
        // hardened with a 4-byte swab. mem_map is FLATMEM's struct page array; the labeler must
        // find PAGE_OFFSET (here kBase32 - 0x100000, not 0xc0000000) from init_task's address.
        const uint64_t R = 0x9e3779b9;
        uint64_t objs = alloc("objs", 4 * O::task_size, 4096);
        const uint64_t pfn = (objs - kBase32 + 0x100000) / 4096;
        uint64_t mem_map = alloc("mem_map_array", (pfn + 1) * O::page_size, 64);
        uint64_t mem_map_var = alloc("mem_map", 4);
        p(mem_map_var, mem_map);
        const uint64_t slab = mem_map + pfn * O::page_size;
        for (int i = 0; i < 4; ++i) at["obj" + std::to_string(i)] = objs + i * O::task_size;
        task_at(at["obj0"], 77, 77, "gone");
        task_at(at["obj3"], 78, 78, "gone-too");
        auto enc = [&](uint64_t obj, uint64_t nxt) {
            const uint64_t where = obj + O::free_word;
            p(where, (nxt ^ R ^ __builtin_bswap32(static_cast<uint32_t>(where))) & 0xffffffffu);
        };
        enc(at["obj0"], at["obj2"]);
        enc(at["obj2"], at["obj1"]);
        enc(at["obj1"], 0);
        enc(at["obj3"], 0);
        p(slab + O::slab_freelist, at["obj0"]);
        p(slab + O::slab_counters, (4u << 16) | 1u | (1u << 31));
        uint64_t caches = alloc("slab_caches", 8), tcache = alloc("task_cache", O::kc_sizeof),
                 tname = alloc("tname", 16), kcn = alloc("kcn", 24), nr_nodes = alloc("nr_node_ids", 4);
        mem.put_str(tname, renamed ? "task_struct_v2" : "task_struct");
        if (renamed && cachep) {
            const uint64_t var = alloc("task_struct_cachep", 4);
            p(var, tcache);
            sym("task_struct_cachep", var);
        }
        p(tcache + O::kc_name, tname);
        link(caches, {tcache + O::kc_list});
        p(tcache + O::kc_offset, O::free_word);
        p(tcache + O::kc_size, O::task_size);
        p(tcache + O::kc_random, R);
        p(tcache + O::kc_red, 0);
        p(tcache + O::kc_cpu_slab, cpu_slab);
        link(kcn + O::kcn_partial, {});
        p(tcache + O::kc_node, kcn);
        p(nr_nodes, 1);
        p(pcpu0 + cpu_slab + O::kcc_slab, slab);
        p(pcpu0 + cpu_slab + O::kcc_freelist, at["obj3"]);
        p(pcpu0 + cpu_slab + O::kcc_partial, 0);
        p(pcpu1 + cpu_slab + O::kcc_slab, 0);
        p(pcpu1 + cpu_slab + O::kcc_freelist, 0);
        p(pcpu1 + cpu_slab + O::kcc_partial, 0);

        sym("init_task", init);
        sym("modules", modules);
        sym("dentry_hashtable", table_var);
        sym("d_hash_shift", shift_var);
        sym("__per_cpu_offset", offsets);
        sym("nr_cpu_ids", nr);
        sym("runqueues", runqueues);
        sym("slab_caches", caches);
        sym("mem_map", mem_map_var);
        sym("nr_node_ids", nr_nodes);
    }
};

std::set<uint64_t> of_type(const LabelSet& s, const std::string& type, bool freed = false) {
    std::set<uint64_t> r;
    for (const auto& l : s.labels)
        if (l.type == type && l.freed == freed) r.insert(l.vaddr);
    return r;
}

}  // namespace

TEST_CASE("32-bit kernel: 4-byte pointers, 32-bit list_head, 32-slot maple nodes, FLATMEM slabs") {
    World32 w;
    const btf::Btf btf = btf32();
    REQUIRE(btf.pointer_size() == 4);
    LabelerOptions no_creds;   // this kernel has no cred_jar: its creds are plain objects here
    no_creds.freed_creds = false;
    no_creds.freed_files = false;   // nor a filp cache
    no_creds.freed_mms = false;    // nor an mm_struct cache
    LabelSet s = label_kernel_objects(w.mem, btf, w.syms(), no_creds);
    for (const auto& warning : s.warnings) MESSAGE(warning);
    CHECK(s.warnings.empty());
    CHECK(s.counts.processes == 2);
    CHECK(s.counts.threads == 3);
    CHECK(s.counts.fds == 3);   // fds 0, 1, 7 of PID 1 (bitmap: the last 4 bytes of memory)
    CHECK(s.counts.modules == 1);
    REQUIRE(s.counts.per_process.size() == 2);
    CHECK(s.counts.per_process[0].fd_numbers == std::vector<uint64_t>{0, 1, 7});
    auto a = w.at;
    CHECK(of_type(s, "task_struct") == std::set<uint64_t>{a["init_task"], a["p1"], a["p50"], a["t51"], a["idle1"]});
    CHECK(of_type(s, "task_struct", true) == std::set<uint64_t>{a["obj0"], a["obj3"]});
    CHECK(s.task_slab.walked);
    CHECK(s.task_slab.free_objects == 4);
    CHECK(s.task_slab.freed_intact == 2);
    CHECK(of_type(s, "cred") == std::set<uint64_t>{a["c0"], a["c1"]});
    CHECK(of_type(s, "mm_struct") == std::set<uint64_t>{a["mm1"]});
    // flib is reachable only through maple leaf slot 25 under root slot 20
    CHECK(of_type(s, "file") == std::set<uint64_t>{a["f0"], a["f1"], a["f7"], a["flib"]});
    CHECK(of_type(s, "dentry") == std::set<uint64_t>{a["console"], a["libc.so.6"]});
    CHECK(of_type(s, "module") == std::set<uint64_t>{a["loop"]});
    for (const auto& l : s.labels) {
        CHECK(l.vaddr >= kKernelBase);
        CHECK(l.vaddr < (uint64_t{1} << 32));
        CHECK(l.paddr == l.vaddr - kBase32 + 0x100000);
        if (l.type == "task_struct") CHECK(l.size == O::task_size);
    }
}

// Before 5.17 (Debian 11's 5.10) SLUB keeps its fields in struct page; a cache is found through the
// kernel's pointer to it whatever its name (6.12's cred_jar is named "cred").
TEST_CASE("32-bit kernel: freed tasks of a pre-5.17 SLUB (struct page), the cache found by its variable") {
    LabelerOptions no_creds;
    no_creds.freed_creds = false;
    no_creds.freed_files = false;   // nor a filp cache
    no_creds.freed_mms = false;    // nor an mm_struct cache
    for (bool renamed : {false, true}) {
        CAPTURE(renamed);
        World32 w(renamed);
        const btf::Btf old = btf32(true);
        REQUIRE(!old.find("slab"));
        LabelSet s = label_kernel_objects(w.mem, old, w.syms(), no_creds);
        for (const auto& warning : s.warnings) MESSAGE(warning);
        CHECK(s.warnings.empty());
        CHECK(s.task_slab.walked);
        CHECK(of_type(s, "task_struct", true) == std::set<uint64_t>{w.at["obj0"], w.at["obj3"]});
        // the name alone no longer finds the renamed cache
        if (renamed) {
            World32 nameless(true, false);
            LabelSet n = label_kernel_objects(nameless.mem, old, nameless.syms(), no_creds);
            CHECK(!n.task_slab.walked);
            REQUIRE(n.warnings.size() == 1);
            CHECK(n.warnings[0].find("no slab cache named task_struct and no readable task_struct_cachep") != std::string::npos);
        }
    }
}

TEST_CASE("32-bit kernel: without mem_map the freed tasks are skipped with a warning") {
    World32 w;
    const Kallsyms all = w.syms();
    std::string text;
    for (const auto& sym : all.symbols())
        if (sym.name != "mem_map") {
            char line[128];
            std::snprintf(line, sizeof line, "%08llx D %s\n", static_cast<unsigned long long>(sym.address),
                          sym.name.c_str());
            text += line;
        }
    const Kallsyms syms = Kallsyms::parse({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
    LabelerOptions no_creds;
    no_creds.freed_creds = false;
    no_creds.freed_files = false;   // nor a filp cache
    no_creds.freed_mms = false;    // nor an mm_struct cache
    LabelSet s = label_kernel_objects(w.mem, btf32(), syms, no_creds);
    CHECK(!s.task_slab.walked);
    REQUIRE(s.warnings.size() == 1);
    CHECK(s.warnings[0].find("freed task_structs not labeled") != std::string::npos);
    CHECK(s.counts.threads == 3);
    CHECK(of_type(s, "task_struct", true).empty());
}
