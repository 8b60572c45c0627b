// The labeler's walks on a synthetic kernel: hand-built BTF (offsets unlike any real build, so
// nothing can be hard-coded), a fake memory of kernel objects, and corruptions (loops, wild
// pointers, unreadable objects) that must become warnings, not hangs or crashes.
#include "graph/file_io.hpp"
#include "graph/layers.hpp"
#include "test/train/btf_builder.hpp"
#include "test/train/synthetic_kernel.hpp"
#include "train/baselines.hpp"
#include "train/labeler.hpp"
#include "train/kernel_layout.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

using namespace deepmem;
using deepmem::test::BtfBuilder;

using deepmem::test::FakeMemory;
using deepmem::test::World;
using deepmem::test::synthetic_btf;
using deepmem::test::kBase;
using deepmem::test::kSize;
using Off = deepmem::test::Off;

namespace {

std::set<uint64_t> of_type(const LabelSet& s, const std::string& type) {
    std::set<uint64_t> r;
    for (const auto& l : s.labels)
        if (l.type == type) r.insert(l.vaddr);
    return r;
}

}  // namespace

TEST_CASE("walks of a synthetic kernel find every object once") {
    World w;
    for (bool thread_head : {true, false}) {
        CAPTURE(thread_head);
        auto btf = synthetic_btf(thread_head);
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        // The one warning: the allocated task_struct in the slab that no list reaches.
        REQUIRE(s.warnings.size() == 1);
        CHECK(s.warnings[0].find("on no task list (PID 88, hidden)") != std::string::npos);
        CHECK(s.counts.processes == 3);
        CHECK(s.counts.threads == 5);
        CHECK(s.counts.fds == 5);   // 3 (PID 1) + 2 (PID 100, once for its 3 threads) + 0
        CHECK(s.counts.modules == 1);
        CHECK(s.counts.module_names == std::vector<std::string>{"ext4"});
        auto a = w.at;
        CHECK(of_type(s, "task_struct") == std::set<uint64_t>{a["init_task"], a["p1"], a["p2"], a["t1"], a["t2"],
                                                              a["p3"], a["idle1"], a["obj0"], a["obj3"]});
        CHECK(s.task_slab.walked);
        CHECK(s.task_slab.slabs == 1);
        CHECK(s.task_slab.free_objects == 3);
        CHECK(s.task_slab.freed_intact == 2);
        CHECK(s.task_slab.unreached == 1);
        CHECK(s.cred_slab.walked);
        CHECK(s.cred_slab.slabs == 1);
        CHECK(s.cred_slab.free_objects == 3);
        CHECK(s.cred_slab.freed_intact == 2);
        CHECK(s.cred_slab.unreached == 1);
        CHECK(s.file_slab.walked);
        CHECK(s.file_slab.slabs == 1);
        CHECK(s.file_slab.free_objects == 2);
        CHECK(s.file_slab.freed_intact == 1);
        CHECK(s.file_slab.unreached == 1);
        CHECK(s.mm_slab.walked);   // by mm_cachep: the cache is on no slab_caches list here
        CHECK(s.mm_slab.slabs == 1);
        CHECK(s.mm_slab.free_objects == 2);
        CHECK(s.mm_slab.freed_intact == 1);   // mobj0; mobj1 has no pgd
        CHECK(s.mm_slab.unreached == 1);      // mobj2: a pgd, in use (labeled live, found here only)
        for (const auto& l : s.labels)
            CHECK(l.freed == (l.vaddr == a["obj0"] || l.vaddr == a["obj3"] || l.vaddr == a["cobj0"] ||
                              l.vaddr == a["cobj3"] || l.vaddr == a["fobj0"] || l.vaddr == a["mobj0"]));
        CHECK(of_type(s, "mm_struct") == std::set<uint64_t>{a["m1"], a["m2"], a["mobj0"], a["mobj2"]});
        CHECK(of_type(s, "cred") ==
              std::set<uint64_t>{a["init_cred"], a["c1"], a["c2"], a["c3"], a["cobj0"], a["cobj3"]});
        CHECK(of_type(s, "file") == std::set<uint64_t>{a["fa"], a["fb"], a["fc"], a["fd"], a["fobj0"]});
        CHECK(of_type(s, "dentry") ==
              std::set<uint64_t>{a["console"], a["log"], a["socket"], a["cached"], a["cached2"]});
        CHECK(of_type(s, "module") == std::set<uint64_t>{a["ext4"], a["loading"]});
        CHECK(s.labels.size() == 9 + 4 + 6 + 5 + 5 + 2);
        // sorted, sizes from BTF, provenance and names
        for (size_t i = 1; i < s.labels.size(); ++i) CHECK(s.labels[i - 1].vaddr < s.labels[i].vaddr);
        for (const auto& l : s.labels) {
            CHECK(l.paddr == l.vaddr - kBase + 0x100000);
            if (l.type == "task_struct") CHECK(l.size == Off::task_size);
            if (l.type == "module") CHECK(l.size == 900);
            if (l.vaddr == a["t2"]) {
                CHECK(l.found_by == "thread group of PID 100");
                CHECK(l.name == "worker-b");
                CHECK(l.pid == 102);
            }
            if (l.vaddr == a["idle1"]) CHECK(l.found_by == "runqueues[1].idle");
            if (l.vaddr == a["mobj2"]) CHECK(l.found_by.find(", not reached from a task") != std::string::npos);
            if (l.vaddr == a["fc"]) CHECK(l.found_by == "fd 2 of PID 1");
            if (l.vaddr == a["log"]) CHECK(l.name == "log");
        }
        auto per = s.per_type();
        CHECK(per["task_struct"] == 7);
        CHECK(per["task_struct (freed)"] == 2);
        CHECK(per["cred"] == 4);
        CHECK(per["cred (freed)"] == 2);
        CHECK(per["mm_struct (freed)"] == 1);
        CHECK(per["file"] == 4);
    }
}

TEST_CASE("SLUB hardened freelist pointers decode (mm/slub.c freelist_ptr)") {
    // Encoded as the kernel does: next ^ random ^ swab(address of the free pointer).
    const uint64_t at = 0xffff888012345658ull, next = 0xffff888012345700ull, r = 0x8f2c5b91025c3a17ull;
    const uint64_t stored = next ^ r ^ 0x585634128088ffffull;   // swab(at), bytes reversed by hand
    CHECK(slub_freelist_next(stored, at, r, 8) == next);
    CHECK(slub_freelist_next(0 ^ r ^ 0x585634128088ffffull, at, r, 8) == 0);   // end of chain
    CHECK(slub_freelist_next(next, at, 0, 8) == next);   // no CONFIG_SLAB_FREELIST_HARDENED: plain pointer
    // 32-bit kernels swab a 4-byte unsigned long
    CHECK(slub_freelist_next(0xc1234500u ^ 0x11223344u ^ 0x785634c1u, 0xc1345678u, 0x11223344u, 4) == 0xc1234500u);
}

TEST_CASE("freed creds: cred_jar's freelists, corrupt chains end in warnings") {
    auto btf = synthetic_btf();
    auto freed_creds = [](const LabelSet& s) {
        std::set<uint64_t> r;
        for (const auto& l : s.labels)
            if (l.type == "cred" && l.freed) r.insert(l.vaddr);
        return r;
    };
    SUBCASE("a freelist that loops") {
        World w;
        const uint64_t where = w.at["cobj1"] + Off::cred_free_word;   // cobj1 → cobj0 again
        w.mem.put(where, w.at["cobj0"] ^ 0x5a5a00ff33cc1234ull ^ __builtin_bswap64(where));
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(freed_creds(s) == std::set<uint64_t>{w.at["cobj0"], w.at["cobj3"]});
        CHECK(std::any_of(s.warnings.begin(), s.warnings.end(),
                          [](const std::string& x) { return x.find("cred_jar freelist") != std::string::npos &&
                                                            x.find("loops") != std::string::npos; }));
    }
    SUBCASE("a freelist that leaves its slab") {
        World w;
        const uint64_t where = w.at["cobj0"] + Off::cred_free_word;
        w.mem.put(where, (w.at["cobj1"] + 8) ^ 0x5a5a00ff33cc1234ull ^ __builtin_bswap64(where));
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(freed_creds(s) == std::set<uint64_t>{w.at["cobj0"], w.at["cobj3"]});   // cobj1 was never used anyway
        CHECK(std::any_of(s.warnings.begin(), s.warnings.end(),
                          [](const std::string& x) { return x.find("leaves slab") != std::string::npos; }));
    }
    SUBCASE("a free slot still in use (usage 1) or without user_ns is not labeled") {
        World w;
        w.mem.put(w.at["cobj0"], 1, 4);
        w.mem.put(w.at["cobj3"] + Off::cred_user_ns, 0);
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(freed_creds(s).empty());
        CHECK(s.cred_slab.free_objects == 3);
        CHECK(s.cred_slab.freed_intact == 0);
    }
    SUBCASE("switched off (and freed files too)") {
        World w;
        LabelerOptions o;
        o.freed_creds = false;
        o.freed_files = false;
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms(), o);
        CHECK(freed_creds(s).empty());
        CHECK(!s.cred_slab.walked);
        CHECK(std::none_of(s.labels.begin(), s.labels.end(), [](const Label& l) { return l.type == "file" && l.freed; }));
        CHECK(!s.file_slab.walked);
    }
}

// The vaddrs of the freed files labeled.
static std::set<uint64_t> freed_files(const LabelSet& s) {
    std::set<uint64_t> out;
    for (const auto& l : s.labels)
        if (l.type == "file" && l.freed) out.insert(l.vaddr);
    return out;
}

TEST_CASE("freed files: filp's freelists; a slot with a reference, no inode or no mount is not labeled") {
    const auto btf = synthetic_btf();
    {
        World w;
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(freed_files(s) == std::set<uint64_t>{w.at["fobj0"]});
        CHECK(std::none_of(s.labels.begin(), s.labels.end(), [&](const Label& l) { return l.vaddr == w.at["fobj2"]; }));
    }
    for (uint64_t field : {Off::f_count, Off::f_inode, Off::f_path}) {
        CAPTURE(field);
        World w;
        w.mem.put(w.at["fobj0"] + field, field == Off::f_count ? 1 : 0);
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(freed_files(s).empty());
        CHECK(s.file_slab.free_objects == 2);
        CHECK(s.file_slab.freed_intact == 0);
    }
}

TEST_CASE("freed files on a 6.13+ kernel: f_ref counts from 0, a freed file's is dead (include/linux/file_ref.h)") {
    const auto btf = synthetic_btf(true, true);
    const KernelLayout L(btf);
    CHECK(L.f_count_is_ref);
    CHECK(L.file_references(0) == 1);                        // FILE_REF_ONEREF
    CHECK(L.file_references(0x7fffffffffffffffull) == 0x8000000000000000ull);   // FILE_REF_MAXREF
    CHECK(L.file_references(0xa000000000000000ull) == 0xa000000000000001ull);   // saturated: still referenced
    CHECK(L.file_references(0xc000000000000000ull) == 0);   // FILE_REF_RELEASED
    CHECK(L.file_references(0xe000000000000000ull) == 0);   // FILE_REF_DEAD
    CHECK(L.file_references(~0ull) == 0);                    // FILE_REF_NOREF
    CHECK(KernelLayout(synthetic_btf()).file_references(0) == 0);   // f_count: 0 is none
    {   // a planted BTF's sizes: 4 bytes (32-bit f_ref), and 0 (no shift past the word)
        KernelLayout odd(btf);
        odd.f_count_size = 4;
        CHECK(odd.file_references(0xe0000000u) == 0);
        CHECK(odd.file_references(1) == 2);
        odd.f_count_size = 0;
        CHECK(odd.file_references(0xe000000000000000ull) == 0);
    }
    World w;
    {   // fobj0's count 0: one reference under f_ref, so not freed
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(freed_files(s).empty());
        CHECK(std::none_of(s.warnings.begin(), s.warnings.end(),
                           [](const std::string& x) { return x.find("freed files not labeled") != std::string::npos; }));
    }
    w.mem.put(w.at["fobj0"] + Off::f_count, 0xe000000000000000ull);   // what file_ref_put leaves: dead
    LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
    CHECK(freed_files(s) == std::set<uint64_t>{w.at["fobj0"]});
}

TEST_CASE("corrupt lists end in warnings, not hangs") {
    auto btf = synthetic_btf();
    SUBCASE("thread list loops back without reaching its head") {
        World w;
        w.mem.put(w.at["t2"] + Off::thread_node, w.at["t1"] + Off::thread_node);
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(s.counts.threads == 5);   // p2, t1, t2 each seen once
        REQUIRE(!s.warnings.empty());
        CHECK(s.warnings[0].find("loop") != std::string::npos);
    }
    SUBCASE("tasks list with a wild pointer") {
        World w;
        w.mem.put(w.at["p1"] + Off::tasks, 0xdead000000000100ull);   // LIST_POISON1
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(s.counts.processes == 3);   // p1 forward; p3, p2 back along prev
        CHECK(s.warnings.size() >= 1);
        // pslist (train/baselines.hpp) walks the same way, and says so (tester 11: it was silent).
        std::vector<std::string> said;
        const auto listed = pslist(w.mem, btf, w.syms(), &said);
        CHECK(listed.size() == 6);   // init_task, 3 processes, 2 threads
        REQUIRE(said.size() == 1);
        CHECK(said[0] == "init_task.tasks: pointer 0xdead000000000100 after 1 entries is not a kernel address; "
                         "walked back along prev from the head: 2 entries, up to the forward walk");
    }
    SUBCASE("tasks list broken both ways at readable nodes: a view broken in memory, not cut") {
        World w;   // init_task → p1 → p2 → p3: p1.next and p3.prev point at p2, whose links name others
        w.mem.put(w.at["p2"] + Off::tasks, w.at["t1"] + Off::tasks);
        w.mem.put(w.at["p2"] + Off::tasks + 8, w.at["t2"] + Off::tasks);
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(s.counts.processes == 2);   // p2 lost between the two walks
        CHECK(s.views_cut.empty());
        REQUIRE(s.views_broken.count("tasks") == 1);
        CHECK(s.views_broken.at("tasks").starts_with("init_task.tasks: "));
    }
    SUBCASE("tasks list whole along next, its head's prev pointing elsewhere: not broken, nothing lost") {
        World w;   // init_task.tasks.prev → another list head (attacker 110 row 6, on modules)
        const uint64_t other = w.alloc("other_head", 16);
        w.mem.put(other, other);
        w.mem.put(other + 8, other);
        w.mem.put(w.at["init_task"] + Off::tasks + 8, other);
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(s.counts.processes == 3);
        CHECK(s.views_broken.empty());
        CHECK(s.views_cut.empty());
        CHECK(std::any_of(s.warnings.begin(), s.warnings.end(), [](const std::string& x) {
            return x.starts_with("init_task.tasks: next of entry 3") && x.ends_with("; nothing lost along next, which closes at the head");
        }));
    }
    SUBCASE("the last task on the prev chain alone (its predecessor's next the head): not listed, said") {
        World w;   // init_task → p1 → p2 → head; p3 between p2 and the head along prev only (attacker 112)
        w.mem.put(w.at["p2"] + Off::tasks, w.at["init_task"] + Off::tasks);
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(s.counts.processes == 3);   // labeled: the task is real
        CHECK(s.prev_only == std::vector<uint64_t>{w.at["p3"]});
        CHECK(s.views_broken.empty());
        CHECK(std::any_of(s.warnings.begin(), s.warnings.end(), [&](const std::string& x) {
            return x.find("; on the prev chain alone: 1 entries (" + hex(w.at["p3"]) + ")") != std::string::npos &&
                   x.ends_with(kHeadPrevOnly);
        }));
    }
    SUBCASE("a thread list whose head's next is itself: its leader and threads stay listed (attacker 113)") {
        World w;
        const uint64_t sig = *w.mem.word(w.at["p2"] + Off::signal, 8);
        w.mem.put(sig + Off::thread_head, sig + Off::thread_head);
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(s.prev_only.empty());
        for (const char* t : {"p2", "t1", "t2"})
            CHECK(std::any_of(s.labels.begin(), s.labels.end(), [&](const Label& l) { return l.vaddr == w.at[t]; }));
    }
    SUBCASE("tasks list into unmapped memory") {
        World w;
        w.mem.put(w.at["p2"] + Off::tasks, kBase + kSize + 0x1000);
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(s.counts.processes == 3);   // the unreadable node is not visited; p3 is found walking back
        REQUIRE(!s.warnings.empty());
        CHECK(s.warnings[0].find("unreadable after 2 entries; walked back along prev from the head: 1 entries") !=
              std::string::npos);
    }
    SUBCASE("bounded list length") {
        World w;
        LabelerOptions o;
        o.max_list = 2;
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms(), o);
        CHECK(s.counts.processes == 2);
        CHECK(!s.warnings.empty());
    }
    SUBCASE("huge max_fds is refused") {
        World w;
        w.mem.put(w.at["f1.fdt"] + Off::max_fds, 0xfffffff0u, 4);
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        CHECK(s.counts.fds == 2);
        CHECK(!s.warnings.empty());
    }
}

// A broken init_task.tasks (attacker 12): an unaligned link is a break, not a task; the walk back
// along prev finds the tasks past the break; only those between two breaks are lost.
TEST_CASE("pslist: broken task lists are walked back along prev, each task once") {
    auto btf = synthetic_btf();
    auto vaddrs = [](const std::vector<Detection>& d) {
        std::vector<uint64_t> v;
        for (const auto& x : d) v.push_back(x.vaddr);
        return v;
    };
    World clean;
    std::vector<std::string> none;
    const std::vector<uint64_t> all = vaddrs(pslist(clean.mem, btf, clean.syms(), &none));
    CHECK(none.empty());
    REQUIRE(all.size() == 6);   // init_task, p1, p2 (+ t1, t2), p3; not idle1 (runqueues only)
    SUBCASE("an unaligned next is a break, not a task; the walk back finds the rest") {
        World w;
        const uint64_t p2 = w.at["p2"];
        w.mem.put(w.at["p1"] + Off::tasks, p2 + Off::tasks + 3);
        std::vector<std::string> said;
        const std::vector<uint64_t> got = vaddrs(pslist(w.mem, btf, w.syms(), &said));
        CHECK(got == all);   // sorted, each once, no task at p2 + 3
        REQUIRE(said.size() == 1);
        CHECK(said[0] == "init_task.tasks: pointer " + hex(p2 + Off::tasks + 3) +
                             " after 1 entries is not pointer-aligned; walked back along prev from the head: 2 "
                             "entries, up to the forward walk");
        // The labeler's ground truth: the same tasks, in list order for the per-process counts.
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms());
        REQUIRE(s.counts.per_process.size() == 3);
        CHECK(s.counts.per_process[0].pid == 1);
        CHECK(s.counts.per_process[1].pid == 100);
        CHECK(s.counts.per_process[2].pid == 2);
        CHECK(s.counts.threads == 5);
    }
    SUBCASE("an unaligned thread-list link: the thread group is walked back too") {
        World w;
        w.mem.put(w.at["p2"] + Off::thread_node, w.at["t1"] + Off::thread_node + 4);
        std::vector<std::string> said;
        CHECK(vaddrs(pslist(w.mem, btf, w.syms(), &said)) == all);
        REQUIRE(said.size() == 1);
        CHECK(said[0].rfind("thread group of PID 100: pointer ", 0) == 0);
        CHECK(said[0].find("not pointer-aligned; walked back along prev from the head: 2 entries, up to the forward walk") !=
              std::string::npos);
    }
    SUBCASE("two breaks: only the tasks between them are lost, the warning says how far each way got") {
        World w;
        const uint64_t p2 = w.at["p2"], p3 = w.at["p3"];
        w.mem.put(w.at["p1"] + Off::tasks, 0x4141414141414141ull);   // next of p1
        w.mem.put(p3 + Off::tasks + 8, p3 + 0x10000 + 5);           // prev of p3: kernel, unaligned
        std::vector<std::string> said;
        const std::vector<uint64_t> got = vaddrs(pslist(w.mem, btf, w.syms(), &said));
        CHECK(got == std::vector<uint64_t>{w.at["init_task"], w.at["p1"], p3});   // p2 and its threads lost
        CHECK(std::find(got.begin(), got.end(), p2) == got.end());
        REQUIRE(said.size() == 1);
        CHECK(said[0] == "init_task.tasks: pointer 0x4141414141414141 after 1 entries is not a kernel address; walked "
                         "back along prev from the head: 1 entries, then pointer " + hex(p3 + 0x10000 + 5) +
                             " after 1 entries is not pointer-aligned");
    }
    SUBCASE("a loop back to an earlier task: every task once") {
        World w;
        w.mem.put(w.at["p2"] + Off::tasks, w.at["p1"] + Off::tasks);
        std::vector<std::string> said;
        CHECK(vaddrs(pslist(w.mem, btf, w.syms(), &said)) == all);
        REQUIRE(said.size() == 1);
        CHECK(said[0].find("loop at " + hex(w.at["p1"] + Off::tasks) + " after 2 entries; walked back along prev from "
                           "the head: 1 entries, up to the forward walk") != std::string::npos);
    }
    SUBCASE("the head's next unreadable from the start: the whole list back along prev") {
        World w;
        w.mem.put(w.at["init_task"] + Off::tasks, 0);
        std::vector<std::string> said;
        CHECK(vaddrs(pslist(w.mem, btf, w.syms(), &said)) == all);
        REQUIRE(said.size() == 1);
        CHECK(said[0].find("walked back along prev from the head: 3 entries, back to the head") != std::string::npos);
    }
    // Each step is checked both ways, as CONFIG_DEBUG_LIST does (attacker 13).
    SUBCASE("a next that skips a task (unlinked one way only): the walk back finds it") {
        World w;
        const uint64_t p1 = w.at["p1"], p2 = w.at["p2"], p3 = w.at["p3"];
        w.mem.put(p1 + Off::tasks, p3 + Off::tasks);   // p3's prev still p2
        std::vector<std::string> said;
        CHECK(vaddrs(pslist(w.mem, btf, w.syms(), &said)) == all);
        REQUIRE(said.size() == 1);
        // (p2 is on the prev chain alone, which the kernel's walk along next skips: said, attacker 93)
        CHECK(said[0] == "init_task.tasks: next of entry 1 (" + hex(p1 + Off::tasks) + ") is " + hex(p3 + Off::tasks) +
                             ", whose prev is " + hex(p2 + Off::tasks) +
                             "; walked back along prev from the head: 2 entries, then the forward walk's last entry " +
                             hex(p1 + Off::tasks) + " reached from entry 2 (" + hex(p2 + Off::tasks) + "): its next " +
                             hex(p3 + Off::tasks) + " skips the entries between");
    }
    SUBCASE("a next straight back to the head, the head's prev elsewhere: the walk back finds the rest, on the prev chain alone") {
        World w;
        const uint64_t p1 = w.at["p1"], p3 = w.at["p3"];
        w.mem.put(p1 + Off::tasks, w.at["init_task"] + Off::tasks);
        std::vector<std::string> said;
        CHECK(vaddrs(pslist(w.mem, btf, w.syms(), &said)) == all);
        REQUIRE(said.size() == 1);
        CHECK(said[0] == "init_task.tasks: next of entry 1 (" + hex(p1 + Off::tasks) + ") is the head, whose prev is " +
                             hex(p3 + Off::tasks) + "; walked back along prev from the head: 2 entries, up to the forward walk; "
                             "on the prev chain alone: 2 entries (" + hex(p3) + ", …)" + std::string(kHeadPrevOnly));
    }
    SUBCASE("a forged prev chain (its nodes' next disagree) is not walked") {
        World w;
        const uint64_t head = w.at["init_task"] + Off::tasks;
        w.mem.put(head, 0x4141414141414141ull);
        const uint64_t fake = w.alloc("fake", 64 * 16);
        for (uint64_t i = 0; i < 64; ++i) w.mem.put(fake + 16 * i + 8, i + 1 < 64 ? fake + 16 * (i + 1) : head);
        w.mem.put(head + 8, fake);
        std::vector<std::string> said;
        CHECK(vaddrs(pslist(w.mem, btf, w.syms(), &said)) == std::vector<uint64_t>{w.at["init_task"]});
        REQUIRE(said.size() == 1);
        CHECK(said[0] == "init_task.tasks: pointer 0x4141414141414141 after 0 entries is not a kernel address; walked "
                         "back along prev from the head: 0 entries, then prev of the head is " + hex(fake) +
                             ", whose next is 0x0");
    }
    SUBCASE("prev into an earlier task than the forward walk's last: the loss is said") {
        World w;
        const uint64_t p1 = w.at["p1"], p3 = w.at["p3"];
        w.mem.put(w.at["p2"] + Off::tasks, 0x4141414141414141ull);   // forward: p1, p2
        w.mem.put(p3 + Off::tasks + 8, p1 + Off::tasks);             // back: p3, then p1
        std::vector<std::string> said;
        CHECK(vaddrs(pslist(w.mem, btf, w.syms(), &said)) == all);
        REQUIRE(said.size() == 1);
        CHECK(said[0] == "init_task.tasks: pointer 0x4141414141414141 after 2 entries is not a kernel address; walked "
                         "back along prev from the head: 1 entries, then entry 1 of the forward walk's 2, not its "
                         "last: the entries between the two walks, if any, are lost");
    }
    SUBCASE("a consistent forged list of overlapping 'tasks' is not listed") {
        World w;
        const uint64_t head = w.at["init_task"] + Off::tasks, p1 = w.at["p1"];
        const uint64_t fake = w.alloc("fake", 64 * 16);
        std::vector<uint64_t> nodes = {p1 + Off::tasks};   // p1, then 64 list_heads 16 bytes apart
        for (uint64_t i = 0; i < 64; ++i) nodes.push_back(fake + 16 * i);
        w.link(head, nodes);
        std::vector<std::string> said;
        CHECK(vaddrs(pslist(w.mem, btf, w.syms(), &said)) == std::vector<uint64_t>{w.at["init_task"], p1});
        REQUIRE(said.size() == 1);
        CHECK(said[0] == "init_task.tasks: 64 of 65 entries overlap another task_struct (" +
                             std::to_string(Off::task_size) + " bytes each; slab objects do not overlap): 64 whose "
                             "group_leader disagrees not listed");
    }
    // Attacker 14.
    SUBCASE("a fake entry planted inside a real task does not hide the real one") {
        World w;
        const uint64_t p1 = w.at["p1"], p2 = w.at["p2"], p3 = w.at["p3"];
        const uint64_t fake = p2 + 240;   // its list_head inside p2's bytes (past its fields the walk reads)
        w.link(w.at["init_task"] + Off::tasks, {p1 + Off::tasks, p2 + Off::tasks, fake, p3 + Off::tasks});
        std::vector<std::string> said;
        CHECK(vaddrs(pslist(w.mem, btf, w.syms(), &said)) == all);
        REQUIRE(said.size() == 1);
        CHECK(said[0].find(": 2 of 4 entries overlap another task_struct") != std::string::npos);
        CHECK(said[0].find("1 whose group_leader disagrees not listed, 1 kept (their group_leader agrees)") !=
              std::string::npos);
    }
    SUBCASE("a leader's signal borrowed from a hidden process does not list that process") {
        World w;
        const uint64_t p1 = w.at["p1"], p2 = w.at["p2"], p3 = w.at["p3"];
        w.link(w.at["init_task"] + Off::tasks, {p1 + Off::tasks, p3 + Off::tasks});   // p2 unlinked (DKOM)
        w.mem.put(p3 + Off::signal, *w.mem.word(p2 + Off::signal, 8));
        std::vector<std::string> said;
        const std::vector<uint64_t> got = vaddrs(pslist(w.mem, btf, w.syms(), &said));
        CHECK(got == std::vector<uint64_t>{w.at["init_task"], p1, p3});
        REQUIRE(said.size() == 2);
        CHECK(said[0].rfind("thread group of PID 2: entry ", 0) == 0);
        CHECK(said[0].find(" after 0 entries has group_leader " + hex(p2) +
                           "; walked back along prev from the head: 0 entries, then entry ") != std::string::npos);
        CHECK(said[1] == "thread group of PID 2: leader not on its thread list");
        // p2 still listed: its thread list, walked for it, is replayed for p3 and checked there.
        World v;
        v.mem.put(v.at["p3"] + Off::signal, *v.mem.word(v.at["p2"] + Off::signal, 8));
        std::vector<std::string> again;
        CHECK(vaddrs(pslist(v.mem, btf, v.syms(), &again)) == all);
        REQUIRE(again.size() == 2);
        CHECK(again[0] == "thread group of PID 2: leader not on its thread list");
        CHECK(again[1].rfind("thread group of PID 2: 3 entries of another thread group not listed (task ", 0) == 0);
        CHECK(again[1].find(" has group_leader " + hex(v.at["p2"]) + ")") != std::string::npos);
    }
    SUBCASE("a signal pointed at init_task.tasks: its nodes are not walked again as threads") {
        World w;
        w.mem.put(w.at["p3"] + Off::signal, w.at["init_task"] + Off::tasks - Off::thread_head);
        std::vector<std::string> said;
        CHECK(vaddrs(pslist(w.mem, btf, w.syms(), &said)) == all);
        REQUIRE(!said.empty());
        CHECK(said[0].find("is already on init_task.tasks") != std::string::npos);
    }
    SUBCASE("all walks together stop at max_list_total nodes") {
        World w;
        LabelerOptions o;
        o.tasks_only = true;
        o.max_list_total = 4;   // p1, p2, p3 and p1's thread; then nothing
        LabelSet s = label_kernel_objects(w.mem, btf, w.syms(), o);
        CHECK(s.counts.processes == 3);
        REQUIRE(s.warnings.size() == 3);   // the limit once; two thread groups without their leader
        CHECK(s.warnings[0] == "thread group of PID 100: the list walks' limit of 4 entries in all reached after 0 "
                               "entries, truncated; later list walks too");
        CHECK(s.warnings[1] == "thread group of PID 100: leader not on its thread list");
    }
}

TEST_CASE("plausible_list_pointer: kernel addresses that are multiples of the pointer size") {
    CHECK(plausible_list_pointer(0xffff888000001040ull, 0xffff800000000000ull, 8));
    CHECK(!plausible_list_pointer(0xffff888000001043ull, 0xffff800000000000ull, 8));
    CHECK(!plausible_list_pointer(0xffff888000001044ull, 0xffff800000000000ull, 8));
    CHECK(plausible_list_pointer(0xc1001044ull, 0xc0000000ull, 4));
    CHECK(!plausible_list_pointer(0xc1001046ull, 0xc0000000ull, 4));
    CHECK(!plausible_list_pointer(0x00007fff00001000ull, 0xffff800000000000ull, 8));   // user space
    CHECK(!plausible_list_pointer(0, 0, 8));
}

TEST_CASE("list_links_back: both neighbours name the node, by address or physical alias") {
    World w;
    const uint64_t head = w.alloc("head", 16), a = w.alloc("a", 16), b = w.alloc("b", 16);
    w.link(head, {a, b});
    CHECK(list_links_back(w.mem, a, 8));
    CHECK(list_next_links_back(w.mem, a, b, w.mem.kernel_base(), 8));
    w.mem.put(b + 8, head);   // b.prev skips a: a is half-linked (its next no longer links back)
    CHECK(!list_links_back(w.mem, a, 8));
    CHECK(!list_next_links_back(w.mem, a, b, w.mem.kernel_base(), 8));
    w.mem.put(b + 8, a);
    w.mem.put(head, b);       // head.next skips a: its prev no longer links back
    CHECK(!list_links_back(w.mem, a, 8));
    CHECK(list_next_links_back(w.mem, a, b, w.mem.kernel_base(), 8));
    w.mem.put(head, a);
    w.mem.put(a, b + 3);      // an unaligned next is no link
    CHECK(!list_links_back(w.mem, a, 8));
    w.mem.put(a, b);
    // A second name for the same page (the kernel image and the direct map): neighbours that link
    // back to a's alias still link back to a, on either side; another page's address does not.
    constexpr uint64_t kShift = 0x100000000ull;   // alias = address + kShift
    struct Aliased final : KernelMemory {
        const FakeMemory& m;
        explicit Aliased(const FakeMemory& f) : m(f) {}
        uint64_t base(uint64_t va) const { return va >= kBase + kShift ? va - kShift : va; }
        bool read(uint64_t va, std::span<uint8_t> out) const override { return m.read(base(va), out); }
        std::optional<uint64_t> physical(uint64_t va) const override { return m.physical(base(va)); }
        uint64_t kernel_base() const override { return m.kernel_base(); }
    } alias(w.mem);
    CHECK(list_links_back(alias, a, 8));
    w.mem.put(b + 8, a + kShift);      // b.prev names a by its alias
    CHECK(list_links_back(alias, a, 8));
    CHECK(list_next_links_back(alias, a, b, alias.kernel_base(), 8));
    w.mem.put(head, a + kShift);       // head.next too
    CHECK(list_links_back(alias, a, 8));
    w.mem.put(head, b);                         // head.next another node: a is half-linked again
    CHECK(!list_links_back(alias, a, 8));
}

TEST_CASE("label_task_objects: what given tasks hold, each fd table read once, all tables within one bound") {
    World w;
    const auto btf = synthetic_btf();
    const Kallsyms syms = w.syms();
    // p1 holds fa, fb, fc (fds 0-2); p2 fa and fd: their holders, the first of the tasks given
    const LabelSet held = label_task_objects(w.mem, btf, syms, std::vector<uint64_t>{w.at["p1"], w.at["p2"]});
    std::map<uint64_t, uint64_t> files;
    for (const Label& l : held.labels)
        if (l.type == "file") files[l.vaddr] = l.holder;
    CHECK(files == std::map<uint64_t, uint64_t>{{w.at["fa"], w.at["p1"]}, {w.at["fb"], w.at["p1"]}, {w.at["fc"], w.at["p1"]},
                                                {w.at["fd"], w.at["p2"]}});
    // Forged files_structs naming one table (attacker 89: one 2^20-slot table behind each hidden
    // task's own files_struct): the table is read once; past max_list_total no table is read.
    std::vector<uint64_t> tasks;
    const uint64_t fdt = w.mem.word(w.at["f1"] + Off::fdt, 8).value();
    for (int i = 0; i < 40; ++i) {
        const uint64_t t = w.alloc("forged" + std::to_string(i), 0x600), f = w.alloc("forged_files" + std::to_string(i), 64);
        w.mem.put(t + Off::pid, 500 + i, 4);
        w.mem.put(t + Off::files, f);
        w.mem.put(f + Off::fdt, fdt);
        tasks.push_back(t);
    }
    LabelerOptions tight;
    tight.max_list_total = 6;   // the shared table: 3 open slots and its one bitmap word
    const LabelSet forged = label_task_objects(w.mem, btf, syms, tasks, tight);
    std::set<uint64_t> got;
    for (const Label& l : forged.labels)
        if (l.type == "file") got.insert(l.vaddr);
    CHECK(got == std::set<uint64_t>{w.at["fa"], w.at["fb"], w.at["fc"]});
    CHECK(std::none_of(forged.warnings.begin(), forged.warnings.end(),
                       [](const std::string& x) { return x.starts_with("fd tables: the limit"); }));
    const uint64_t other = w.files("other", {{0, w.at["fd"]}});   // a second table past the bound
    w.mem.put(tasks.back() + Off::files, other);
    const LabelSet capped = label_task_objects(w.mem, btf, syms, tasks, tight);   // 5 read, 2 more past 6
    CHECK(std::any_of(capped.warnings.begin(), capped.warnings.end(),
                      [](const std::string& x) { return x.starts_with("fd tables: the limit of 6 open slots in all reached"); }));
    CHECK(capped.views_broken.count("files") == 1);   // its files not judged, not hidden (reviewer 92)
    for (const Label& l : capped.labels) CHECK(l.vaddr != w.at["fd"]);
}

TEST_CASE("read_fd_table: open slots from the open_fds bitmap, forged tables refused with a reason") {
    World w;
    const auto btf = synthetic_btf();
    const KernelLayout L(btf);
    const uint64_t f1 = w.alloc("file1", 64), f9 = w.alloc("file9", 64);
    const uint64_t files = w.files("files", {{1, f1}, {9, f9}}, 1ull << 5);   // fd 5: bit set, slot 0
    const FdTable t = read_fd_table(w.mem, L, files, 8, 1u << 20);
    REQUIRE(t.error.empty());
    CHECK(t.max_fds == 64);
    REQUIRE(t.open.size() == 3);
    CHECK(t.open[0].fd == 1);
    CHECK(t.open[0].file == f1);
    CHECK(t.open[0].entry == w.at["files.fd"] + 8);
    CHECK(t.open[0].bitmap_byte == w.at["files.bits"]);
    CHECK(t.open[1].fd == 5);
    CHECK(t.open[1].file == uint64_t{0});
    CHECK(t.open[2].fd == 9);
    CHECK(t.open[2].bitmap_byte == w.at["files.bits"] + 1);
    const FdTable small = read_fd_table(w.mem, L, files, 8, 63);
    CHECK(small.open.empty());
    CHECK(small.object == "fdtable " + hex(t.fdt));
    CHECK(small.error == "max_fds 64 above the limit, skipped");
    CHECK(!small.unreadable);   // a value, not memory the dump lacks: no cut of the files view (reviewer 88 M3)
    CHECK(!t.unreadable);
    w.mem.put(t.fdt + test::Off::fd, 0xfffffffffffffff8ull);   // fd[63] past 2^64
    const FdTable wraps = read_fd_table(w.mem, L, files, 8, 1u << 20);
    CHECK(wraps.error == "fd array wraps around the address space");
    CHECK(!wraps.unreadable);
    w.mem.put(files + test::Off::fdt, 0);
    const FdTable none = read_fd_table(w.mem, L, files, 8, 1u << 20);
    CHECK(none.object == "files_struct " + hex(files));
    CHECK(none.error == "fdt 0x0 is not a kernel address");
    CHECK(!none.unreadable);
    w.mem.put(files + test::Off::fdt, 0xffff888077700000ull);   // a kernel address the dump does not hold
    const FdTable lost = read_fd_table(w.mem, L, files, 8, 1u << 20);
    CHECK(lost.error == "unreadable");
    CHECK(lost.unreadable);
}

TEST_CASE("missing symbols and fields are InputErrors") {
    World w;
    auto btf = synthetic_btf();
    auto no_init = Kallsyms::parse(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("ffffffff81000000 T _text\n"), 25));
    CHECK_THROWS_AS(label_kernel_objects(w.mem, btf, no_init), InputError);
    BtfBuilder b;
    b.int_type("int", 4, 32);
    b.struct_("task_struct", 8, {});
    auto thin = btf::Btf::parse(b.blob());
    CHECK_THROWS_AS(label_kernel_objects(w.mem, thin, w.syms()), InputError);
    // init_task outside the dump
    std::string k = "ffff999000000000 D init_task\n";
    auto far = Kallsyms::parse({reinterpret_cast<const uint8_t*>(k.data()), k.size()});
    CHECK_THROWS_AS(label_kernel_objects(w.mem, btf, far), InputError);
}

TEST_CASE("label files are written atomically in both formats") {
    World w;
    LabelSet s = label_kernel_objects(w.mem, synthetic_btf(), w.syms());
    char dir[] = "/tmp/dmlabel-test-XXXXXX";
    REQUIRE(mkdtemp(dir));
    std::string tsv = std::string(dir) + "/labels.tsv";
    write_labels_tsv(tsv, s);
    write_labels_jsonl(jsonl_path_for(tsv), s);
    std::ifstream in(tsv);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line)) lines.push_back(line);
    REQUIRE(lines.size() == s.labels.size() - 6);   // freed objects (2 tasks, 2 creds, 1 file, 1 mm_struct) are in the JSONL only
    char expect[128];
    std::snprintf(expect, sizeof expect, "0x%llx\ttask_struct\t%llu",
                  static_cast<unsigned long long>(w.at["init_task"]), static_cast<unsigned long long>(Off::task_size));
    CHECK(std::find(lines.begin(), lines.end(), std::string(expect)) != lines.end());
    std::ifstream js(std::string(dir) + "/labels.jsonl");
    std::stringstream all;
    all << js.rdbuf();
    CHECK(all.str().find("\"found_by\":\"fd 2 of PID 1\"") != std::string::npos);
    CHECK(all.str().find("\"name\":\"swapper/1\"") != std::string::npos);
    CHECK(all.str().find("\"state\":\"freed\"") != std::string::npos);
    CHECK(all.str().find("\"type\":\"cred\",\"size\":96,\"state\":\"freed\",\"found_by\":\"freelist of cred_jar slab") !=
          std::string::npos);
    CHECK(all.str().find("\"type\":\"file\",\"size\":232,\"state\":\"freed\",\"found_by\":\"freelist of filp slab") !=
          std::string::npos);
    CHECK_THROWS_AS(write_labels_tsv(std::string(dir) + "/no/such/dir/x.tsv", s), InputError);
    std::remove(tsv.c_str());
    std::remove((std::string(dir) + "/labels.jsonl").c_str());
    rmdir(dir);
}
