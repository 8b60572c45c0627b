// Suite 'real-dumps': dmlabel on the real QEMU dump in $DEEPMEM_DUMPS/dev (default /work/dumps),
// checked two ways:
//   1. its counts equal the guest's own view (dmlabel --view exits 0);
//   2. its task_struct addresses equal an independent, deliberately simple walk written here:
//      init_task.tasks + each leader's task->thread_group ring (dmlabel walks
//      signal->thread_head instead), with raw offsets looked up in BTF; kernels from 6.7 on have
//      no thread_group, so there the ring is signal->thread_head through task->thread_node;
//   3. it has one task_struct per thread the guest saw plus one idle task per CPU (meta.json smp):
//      CPU 0's is init_task (on the list, pid 0, not in the guest's /proc), the others' are found
//      through runqueues[cpu].idle only.
// Also run on the other builds' dumps (DEEPMEM_REAL_DUMP=builds/5.10, builds/6.12, and the 32-bit
// i386 dump of Debian 12's 686-pae kernel: see meson.build).
// Skipped (exit 77) when the dump directory has no DONE marker (written by tools/make-dataset when the dump and its labels passed).
// argv[1] is the dmlabel executable (meson passes it).
#define DOCTEST_CONFIG_IMPLEMENT
#include "graph/layers.hpp"
#include "train/btf.hpp"
#include "train/labeler.hpp"

#include <doctest/doctest.h>

#include "test/real_dump.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <sys/wait.h>

using namespace deepmem;
namespace fs = std::filesystem;

namespace {

std::string g_dmlabel;
fs::path g_dev;

// The kernel file dmlabel reads: dev/vmlinux when make-dataset made one (a build without BTF, e.g.
// Debian's 686-pae: the -dbg vmlinux with BTF from its DWARF), else dev/vmlinuz (a copy or a
// symlink), else the path written in dev/vmlinuz.path.
std::string kernel_file() {
    for (const char* n : {"vmlinux", "vmlinuz"})
        if (fs::exists(g_dev / n)) return (g_dev / n).string();
    for (const auto& e : fs::directory_iterator(g_dev)) {
        std::string n = e.path().filename().string();
        if (n.rfind("vmlinuz", 0) == 0 && n.find(".path") == std::string::npos) return e.path().string();
    }
    std::ifstream p(g_dev / "vmlinuz.path");
    std::string line;
    if (std::getline(p, line) && fs::exists(line)) return line;
    return {};
}

std::string dump_file() {
    for (const char* n : {"dump.elf", "dump.raw", "dump.lime"})
        if (fs::exists(g_dev / n)) return (g_dev / n).string();
    return {};
}

std::string shell_quote(const std::string& s) {
    std::string o = "'";
    for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return o + "'";
}

int run(const std::string& cmd) {
    int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct Tmp {
    fs::path dir;
    Tmp() {
        char t[] = "/tmp/dmlabel-real-XXXXXX";
        REQUIRE(mkdtemp(t));
        dir = t;
    }
    ~Tmp() { fs::remove_all(dir); }
};

// The independent walk: task addresses via init_task.tasks and task->thread_group (before 6.7),
// else the list signal->thread_head of task->thread_node entries.
std::set<uint64_t> simple_task_walk(const TranslationLayer& tl, const btf::Btf& b, uint64_t init_task) {
    auto member = [&](const char* s, const char* m) -> std::optional<uint64_t> {
        auto t = b.find(s);
        REQUIRE(t);
        auto f = b.member(*t, m);
        if (!f) return std::nullopt;
        return f->bit_offset / 8;
    };
    auto off = [&](const char* s, const char* m) {
        auto o = member(s, m);
        REQUIRE_MESSAGE(o, s << "." << m << " in BTF");
        return *o;
    };
    const uint64_t tasks = off("task_struct", "tasks");
    const std::optional<uint64_t> thread_group = member("task_struct", "thread_group");
    const uint64_t thread_node = thread_group ? 0 : off("task_struct", "thread_node");
    const uint64_t signal = thread_group ? 0 : off("task_struct", "signal");
    const uint64_t thread_head = thread_group ? 0 : off("signal_struct", "thread_head");
    auto rd = [&](uint64_t va) {   // a pointer: 8 bytes, 4 on 32-bit kernels (little-endian)
        uint64_t v = 0;
        REQUIRE(tl.read_virtual(va, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), b.pointer_size())));
        return v;
    };
    std::set<uint64_t> out = {init_task};
    uint64_t node = rd(init_task + tasks);
    for (int guard = 0; node != init_task + tasks; ++guard) {
        REQUIRE(guard < 100000);
        uint64_t leader = node - tasks;
        out.insert(leader);
        if (thread_group) {   // a ring through every thread of the group, the leader included
            uint64_t t = rd(leader + *thread_group);
            for (int g2 = 0; t != leader + *thread_group; ++g2) {
                REQUIRE(g2 < 100000);
                out.insert(t - *thread_group);
                t = rd(t);
            }
        } else {              // a list headed in signal_struct
            const uint64_t head = rd(leader + signal) + thread_head;
            uint64_t t = rd(head);
            for (int g2 = 0; t != head; ++g2) {
                REQUIRE(g2 < 100000);
                out.insert(t - thread_node);
                t = rd(t);
            }
        }
        node = rd(node);
    }
    return out;
}

}  // namespace

TEST_CASE("dmlabel agrees with the guest view and with an independent task walk") {
    const std::string kernel = kernel_file(), dump = dump_file();
    REQUIRE_MESSAGE(!kernel.empty(), "no vmlinuz in " << g_dev);
    REQUIRE_MESSAGE(!dump.empty(), "no dump.elf in " << g_dev);
    // A kernel without CONFIG_KALLSYMS_ALL (686-pae) has no init_task in kallsyms: its -dbg System.map
    // (make-dataset links it as System.map) completes the symbols.
    auto syms = Kallsyms::load((g_dev / "kallsyms").string());
    const bool need_map = !syms.address("init_task");
    if (need_map) {
        REQUIRE_MESSAGE(fs::exists(g_dev / "System.map"), "kallsyms without init_task and no System.map in " << g_dev);
        syms = syms.with_system_map(Kallsyms::load((g_dev / "System.map").string()));
    }
    Tmp tmp;
    const std::string tsv = (tmp.dir / "labels.tsv").string();
    const std::string cmd = shell_quote(g_dmlabel) + " --kernel " + shell_quote(kernel) + " --kallsyms " +
                            shell_quote((g_dev / "kallsyms").string()) +
                            (need_map ? " --system-map " + shell_quote((g_dev / "System.map").string()) : "") +
                            " --view " +
                            shell_quote((g_dev / "view.txt").string()) + " " + shell_quote(dump) + " -o " +
                            shell_quote(tsv);
    MESSAGE(cmd);
    CHECK(run(cmd) == 0);

    std::set<uint64_t> dm_tasks, runqueue_tasks, freed_tasks, freed_creds, live_creds, freed_files, live_files, freed_mms,
        live_mms, held_mms;
    std::map<std::string, uint64_t> per_type;
    uint64_t mapped_files = 0;   // files reached only through a VMA (shared anonymous memory's /dev/zero, mmap'ed files)
    {
        std::ifstream in(tsv);
        std::string va, type, size;
        uint64_t prev = 0;
        while (in >> va >> type >> size) {
            uint64_t a = std::stoull(va, nullptr, 16);
            CHECK(a >= prev);
            prev = a;
            ++per_type[type];
            if (type == "task_struct") dm_tasks.insert(a);
            if (type == "cred") live_creds.insert(a);
            if (type == "file") live_files.insert(a);
            if (type == "mm_struct") live_mms.insert(a);
        }
        std::ifstream js(tmp.dir / "labels.jsonl");
        std::string line;
        while (std::getline(js, line)) {
            auto p = line.find("\"vaddr\":\"");
            REQUIRE(p != std::string::npos);
            const uint64_t a = std::stoull(line.substr(p + 9), nullptr, 16);
            if (line.find("\"state\":\"freed\"") != std::string::npos) {
                const bool task = line.find("\"type\":\"task_struct\"") != std::string::npos,
                           cred = line.find("\"type\":\"cred\"") != std::string::npos,
                           file = line.find("\"type\":\"file\"") != std::string::npos,
                           mm = line.find("\"type\":\"mm_struct\"") != std::string::npos;
                CHECK((task || cred || file || mm));
                (task ? freed_tasks : cred ? freed_creds : file ? freed_files : freed_mms).insert(a);
                CHECK(line.find("\"paddr\":null") == std::string::npos);
            }
            if (line.find("\"found_by\":\"runqueues[") != std::string::npos) runqueue_tasks.insert(a);
            mapped_files += line.find("\"found_by\":\"vm_file of a VMA") != std::string::npos;
            if (line.find("\"found_by\":\"allocated in ") != std::string::npos) {   // an mm_struct no task reaches
                CHECK(line.find("\"type\":\"mm_struct\"") != std::string::npos);
                held_mms.insert(a);
            }
        }
    }
    // Every build's VMAs are walked: the maple tree (6.1+) or the mm->mmap list (5.10, where none was
    // and its mapped files were unlabeled detections, "hidden" to dmdetect)
    MESSAGE(mapped_files << " files reached through a VMA first");
    CHECK(mapped_files > 0);
    for (const char* t : {"task_struct", "mm_struct", "cred", "file", "dentry", "module"}) {
        CAPTURE(t);
        CHECK(per_type[t] > 0);
    }

    auto phys = PhysicalLayer::open(dump);
    auto tl = TranslationLayer::detect(*phys);
    auto b = btf::load_kernel_btf(kernel);
    std::set<uint64_t> simple = simple_task_walk(tl, b, syms.require("init_task"));
    std::set<uint64_t> dm_listed;
    for (uint64_t t : dm_tasks)
        if (!runqueue_tasks.count(t)) dm_listed.insert(t);
    CHECK(simple.size() > 10);
    CHECK(dm_listed == simple);
    // Freed task_structs (JSONL only) are on no task list.
    for (uint64_t t : freed_tasks) {
        CHECK(!simple.count(t));
        CHECK(!dm_tasks.count(t));
    }
    MESSAGE(freed_tasks.size() << " freed task_structs");
    // Freed creds and files (JSONL only), checked from the other side: the labeler goes cache → slab
    // lists → freelists; here each object goes to its struct page (vmemmap_base + pfn · sizeof(struct
    // page)), whose slab_cache (struct slab's, or before 5.17 struct page's own) must be the cache the
    // kernel's variable points to (cred_jar, which 6.12 names "cred"; filp_cachep), else the one of
    // that name, with the object at a multiple of the cache's size in its page, its count 0 (cred
    // usage, file f_count), and no walk reaching it.
    if (auto vmb = syms.address("vmemmap_base"); vmb && !(freed_creds.empty() && freed_files.empty())) {
        auto member = [&](const char* st, const char* m) {
            auto t = b.find(st);
            REQUIRE(t);
            auto f = b.member(*t, m);
            REQUIRE_MESSAGE(f, st << "." << m << " in BTF");
            return f->bit_offset / 8;
        };
        auto rd = [&](uint64_t va, uint64_t n) {
            uint64_t v = 0;
            REQUIRE(tl.read_virtual(va, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), n)));
            return v;
        };
        const uint64_t vmemmap = rd(*vmb, 8), page_size = b.size_of(*b.find("page"));
        const uint64_t slab_cache = member(b.find("slab") ? "slab" : "page", "slab_cache"), kc_name = member("kmem_cache", "name"),
                       kc_size = member("kmem_cache", "size");
        auto check_freed = [&](const std::set<uint64_t>& freed, const std::set<uint64_t>& live, const char* var,
                               const char* name, uint64_t count_at, uint64_t count_bytes) {
            for (uint64_t c : freed) {
                CAPTURE(c);
                CHECK(!live.count(c));
                auto pa = tl.translate(c);
                REQUIRE(pa);
                const uint64_t cache = rd(vmemmap + (*pa >> 12) * page_size + slab_cache, 8);
                if (auto v = syms.address(var)) {
                    CHECK(cache == rd(*v, 8));
                } else {
                    char text[16] = {};
                    REQUIRE(tl.read_virtual(rd(cache + kc_name, 8), std::span<uint8_t>(reinterpret_cast<uint8_t*>(text), 15)));
                    CHECK(std::string(text) == name);
                }
                CHECK((c & 4095) % rd(cache + kc_size, 4) == 0);
                CHECK(rd(c + count_at, count_bytes) == 0);
            }
        };
        check_freed(freed_creds, live_creds, "cred_jar", "cred_jar", member("cred", "usage"), 4);
        check_freed(freed_files, live_files, "filp_cachep", "filp", member("file", "f_count"), b.pointer_size());   // atomic_long_t
    }
    MESSAGE(freed_creds.size() << " freed creds, " << freed_files.size() << " freed files");
    // Freed mm_structs (JSONL only) and the allocated ones no task reaches, read here from BTF offsets:
    // no task's mm is a freed one; a freed one has mm_users and mm_count 0 and a pgd; one in use has
    // mm_count ≥ 1 (the cache's slabs are of several pages: no per-page stride check as above).
    {
        auto off = [&](const char* m) {
            auto t = b.find("mm_struct");
            REQUIRE(t);
            auto f = b.member(*t, m);
            REQUIRE_MESSAGE(f, "mm_struct." << m << " in BTF");
            return f->bit_offset / 8;
        };
        auto rd = [&](uint64_t va, uint64_t n) {
            uint64_t v = 0;
            REQUIRE(tl.read_virtual(va, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), n)));
            return v;
        };
        const uint64_t users = off("mm_users"), count = off("mm_count"), pgd = off("pgd"), W = b.pointer_size();
        std::set<uint64_t> task_mms;   // every task's mm, read here
        for (uint64_t t : simple)
            if (uint64_t m = rd(t + b.member(*b.find("task_struct"), "mm")->bit_offset / 8, W)) task_mms.insert(m);
        for (uint64_t m : freed_mms) {
            CAPTURE(m);
            CHECK(!live_mms.count(m));
            CHECK(!task_mms.count(m));
            CHECK(rd(m + users, 4) == 0);
            CHECK(rd(m + count, 4) == 0);
            CHECK(rd(m + pgd, W) != 0);
        }
        for (uint64_t m : held_mms) {
            CAPTURE(m);
            CHECK(!task_mms.count(m));
            CHECK(rd(m + count, 4) >= 1);
        }
        for (uint64_t m : task_mms) CHECK(live_mms.count(m));
        MESSAGE(freed_mms.size() << " freed mm_structs, " << held_mms.size() << " in use that no task reaches");
    }
    // Every idle task found on a runqueue is one the list walk cannot reach.
    for (uint64_t t : runqueue_tasks) CHECK(!simple.count(t));
    // One task per thread the guest saw, plus each CPU's idle task.
    {
        const GuestView v = GuestView::load((g_dev / "view.txt").string());
        CHECK(dm_tasks.size() == v.threads + 1 + runqueue_tasks.size());   // + init_task
        std::ifstream meta(g_dev / "meta.json");
        std::string text((std::istreambuf_iterator<char>(meta)), std::istreambuf_iterator<char>());
        const auto p = text.find("\"smp\":");
        REQUIRE_MESSAGE(p != std::string::npos, "meta.json records the guest's CPUs");
        const uint64_t cpus = std::stoull(text.substr(p + 6));
        CHECK(runqueue_tasks.size() + 1 == cpus);
        MESSAGE(dm_tasks.size() << " tasks: " << v.threads << " threads in the guest view + " << cpus << " idle (" << cpus
                                << " CPUs)");
    }

    // A view that disagrees makes dmlabel fail and name the difference.
    {
        GuestView v = GuestView::load((g_dev / "view.txt").string());
        std::ofstream bad(tmp.dir / "bad-view.txt");
        bad << "# deepmem guest view v1\nprocesses " << v.processes + 1 << "\nthreads " << v.threads << "\nfds "
            << v.fds << "\n";
        for (const auto& m : v.module_names) bad << "module " << m << "\n";
        bad << "modules " << v.modules << "\n";
        bad.close();
        const std::string out = (tmp.dir / "diff.txt").string();
        std::string cmd2 = cmd;
        cmd2.replace(cmd2.find(shell_quote((g_dev / "view.txt").string())), shell_quote((g_dev / "view.txt").string()).size(),
                     shell_quote((tmp.dir / "bad-view.txt").string()));
        CHECK(run(cmd2 + " -q > " + shell_quote(out) + " 2>&1") == 1);
        std::ifstream d(out);
        std::stringstream all;
        all << d.rdbuf();
        CHECK(all.str().find("processes: dump " + std::to_string(v.processes) + ", guest " +
                             std::to_string(v.processes + 1)) != std::string::npos);
    }

    // Counts through the library match the guest view too (same code as the CLI, no process).
    auto set = label_kernel_objects(TranslatedMemory(tl), b, syms);
    CHECK(compare_with_view(set.counts, GuestView::load((g_dev / "view.txt").string())).empty());
}

int main(int argc, char** argv) {
    g_dev = deepmem::test::real_dump_dir({});
    if (argc < 2) {
        std::fprintf(stderr, "usage: test_label_real DMLABEL [doctest options]\n");
        return 2;
    }
    g_dmlabel = argv[1];
    doctest::Context ctx;
    ctx.applyCommandLine(argc - 1, argv + 1);
    return ctx.run();
}
