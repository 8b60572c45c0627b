// psscan's task signature (train/baselines.hpp) on hand-made bytes: a consistent task passes, and
// each constraint rejects the field it is about, with the check it names.
#include "train/baselines.hpp"
#include "graph/layers.hpp"
#include "test/graph/layer_images.hpp"
#include "test/graph/dump_images.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <vector>

using namespace deepmem;

namespace {

constexpr uint64_t kBase = 0xffff888000000000ull;

// KernelMemory over one buffer mapped at kBase, physical = virtual − kBase.
class BufferMemory final : public KernelMemory {
public:
    explicit BufferMemory(uint64_t size) : bytes(size) {}
    bool read(uint64_t va, std::span<uint8_t> out) const override {
        if (va < kBase || va - kBase + out.size() > bytes.size()) return false;
        std::memcpy(out.data(), bytes.data() + (va - kBase), out.size());
        return true;
    }
    std::optional<uint64_t> physical(uint64_t va) const override {
        if (va < kBase || va - kBase >= bytes.size()) return std::nullopt;
        return va - kBase;
    }
    uint64_t kernel_base() const override { return 0xffff800000000000ull; }
    void put64(uint64_t va, uint64_t v) { std::memcpy(bytes.data() + (va - kBase), &v, 8); }
    void put32(uint64_t va, uint32_t v) { std::memcpy(bytes.data() + (va - kBase), &v, 4); }
    void put(uint64_t va, const char* s, uint64_t n) { std::memcpy(bytes.data() + (va - kBase), s, n); }
    std::vector<uint8_t> bytes;
};

// A small made-up layout (offsets need not be the kernel's).
TaskSignature layout() {
    TaskSignature s;
    s.size = 0x200;
    s.state = 0x0;
    s.flags = 0x4;
    s.stack = 0x8;
    s.tasks = 0x10;
    s.mm = 0x20;
    s.active_mm = 0x28;
    s.exit_state = 0x30;
    s.pid = 0x34;
    s.tgid = 0x38;
    s.real_parent = 0x40;
    s.parent = 0x48;
    s.group_leader = 0x50;
    s.thread_node = 0x58;
    s.real_cred = 0x68;
    s.cred = 0x70;
    s.comm = 0x78;
    s.comm_len = 16;
    s.fs = 0x88;
    s.files = 0x90;
    s.signal = 0x98;
    return s;
}

const uint64_t kTask = kBase + 0x1000, kThread = kBase + 0x1400, kOther = kBase + 0x3000;

// A leader (PID 100) alone on a two-entry tasks list with a list head, and its thread 101.
BufferMemory world(const TaskSignature& s) {
    BufferMemory m(0x8000);
    auto task = [&](uint64_t t, uint32_t pid, uint32_t tgid, const char* comm) {
        m.put32(t + s.state, 1);
        m.put32(t + s.flags, 0x400100);
        m.put64(t + s.stack, kBase + 0x6000);
        m.put64(t + s.mm, kOther);
        m.put64(t + s.active_mm, kOther);
        m.put32(t + s.pid, pid);
        m.put32(t + s.tgid, tgid);
        m.put64(t + s.real_parent, kOther);
        m.put64(t + s.parent, kOther);
        m.put64(t + s.group_leader, kTask);
        m.put64(t + s.real_cred, kOther + 0x100);
        m.put64(t + s.cred, kOther + 0x100);
        m.put(t + s.comm, comm, std::strlen(comm));
        m.put64(t + s.fs, kOther + 0x200);
        m.put64(t + s.files, kOther + 0x300);
        m.put64(t + s.signal, kOther + 0x400);
    };
    task(kTask, 100, 100, "sshd");
    task(kThread, 101, 100, "sshd");
    // tasks: head (kOther + 0x500) <-> leader
    const uint64_t head = kOther + 0x500, lt = kTask + s.tasks;
    m.put64(head, lt), m.put64(head + 8, lt), m.put64(lt, head), m.put64(lt + 8, head);
    // thread list: signal's thread_head (kOther + 0x600) <-> leader <-> thread
    const uint64_t th = kOther + 0x600, ln = kTask + s.thread_node, tn = kThread + s.thread_node;
    m.put64(th, ln), m.put64(ln + 8, th), m.put64(ln, tn), m.put64(tn + 8, ln), m.put64(tn, th), m.put64(th + 8, tn);
    // the thread's stale copy of tasks (dup_task_struct): not checked for a non-leader
    m.put64(kThread + s.tasks, head), m.put64(kThread + s.tasks + 8, head);
    return m;
}

}  // namespace

TEST_CASE("a consistent leader and thread pass; other addresses do not") {
    const TaskSignature s = layout();
    BufferMemory m = world(s);
    CHECK(check_task(s, m, kTask) == TaskCheck::Ok);
    CHECK(check_task(s, m, kThread) == TaskCheck::Ok);
    CHECK(check_task(s, m, kTask + 8) != TaskCheck::Ok);
    CHECK(check_task(s, m, kBase) != TaskCheck::Ok);   // zeros: comm empty
    // the local span gives the same answer as reads through memory
    std::span<const uint8_t> local(m.bytes.data() + (kTask - kBase), 0x100);
    CHECK(check_task(s, m, kTask, local) == TaskCheck::Ok);
}

TEST_CASE("each constraint rejects its field") {
    const TaskSignature s = layout();
    SUBCASE("pid beyond PID_MAX_LIMIT") {
        BufferMemory m = world(s);
        m.put32(kTask + s.pid, kPidMaxLimit + 1);
        CHECK(check_task(s, m, kTask) == TaskCheck::Pid);
    }
    SUBCASE("negative tgid") {
        BufferMemory m = world(s);
        m.put32(kThread + s.tgid, 0xffffffffu);
        CHECK(check_task(s, m, kThread) == TaskCheck::Pid);
    }
    SUBCASE("pid 0 with a tgid") {
        BufferMemory m = world(s);
        m.put32(kTask + s.pid, 0);
        CHECK(check_task(s, m, kTask) == TaskCheck::Pid);
    }
    SUBCASE("comm unprintable, unterminated, or with bytes after the NUL") {
        BufferMemory m = world(s);
        m.put(kTask + s.comm, "\x90", 1);
        CHECK(check_task(s, m, kTask) == TaskCheck::Comm);
        m.put(kTask + s.comm, "abcdefghijklmnop", 16);
        CHECK(check_task(s, m, kTask) == TaskCheck::Comm);
        m.put(kTask + s.comm, "sshd\0x", 6);
        CHECK(check_task(s, m, kTask) == TaskCheck::Comm);
        // before 5.14 (strlcpy: the old name's tail stays after the NUL) that is a task
        TaskSignature old = s;
        old.comm_padded = false;
        CHECK(check_task(old, m, kTask) == TaskCheck::Ok);
    }
    SUBCASE("state and exit_state") {
        BufferMemory m = world(s);
        m.put32(kTask + s.state, 0x10000);
        CHECK(check_task(s, m, kTask) == TaskCheck::State);
        m.put32(kTask + s.state, 0);
        m.put32(kTask + s.exit_state, 0x40);
        CHECK(check_task(s, m, kTask) == TaskCheck::State);
        m.put32(kTask + s.exit_state, 0x20);   // a zombie passes
        CHECK(check_task(s, m, kTask) == TaskCheck::Ok);
    }
    SUBCASE("an undefined PF_ bit") {
        BufferMemory m = world(s);
        m.put32(kTask + s.flags, 0x4000);
        CHECK(check_task(s, m, kTask) == TaskCheck::Flags);
        // 5.10 sets PF_FREEZER_SKIP (a hole of 6.1); 0x20000000 is a hole there too
        TaskSignature old = s;
        old.flag_holes = kFlagHolesBefore514;
        m.put32(kTask + s.flags, 0x40000000);
        CHECK(check_task(s, m, kTask) == TaskCheck::Flags);
        CHECK(check_task(old, m, kTask) == TaskCheck::Ok);
        m.put32(kTask + s.flags, 0x20000000);
        CHECK(check_task(old, m, kTask) == TaskCheck::Flags);
    }
    SUBCASE("pointers: required ones non-NULL, all kernel and aligned") {
        BufferMemory m = world(s);
        m.put64(kTask + s.cred, 0);
        CHECK(check_task(s, m, kTask) == TaskCheck::Pointer);
        m.put64(kTask + s.cred, kOther + 0x100);
        m.put64(kTask + s.mm, 0);   // a kernel thread has no mm
        CHECK(check_task(s, m, kTask) == TaskCheck::Ok);
        m.put64(kTask + s.files, kOther + 0x301);
        CHECK(check_task(s, m, kTask) == TaskCheck::Pointer);
        m.put64(kTask + s.files, 0x00007f0000001000ull);
        CHECK(check_task(s, m, kTask) == TaskCheck::Pointer);
    }
    SUBCASE("stack NULL or page-aligned") {
        BufferMemory m = world(s);
        m.put64(kTask + s.stack, 0);
        CHECK(check_task(s, m, kTask) == TaskCheck::Ok);
        m.put64(kTask + s.stack, kBase + 0x6010);
        CHECK(check_task(s, m, kTask) == TaskCheck::Stack);
    }
    SUBCASE("lists: next->prev must come back") {
        BufferMemory m = world(s);
        m.put64(kOther + 0x500 + 8, kOther);   // tasks head's prev no longer the leader
        CHECK(check_task(s, m, kTask) == TaskCheck::Lists);
        CHECK(check_task(s, m, kThread) == TaskCheck::Ok);   // a thread's tasks is not checked
        m.put64(kOther + 0x600 + 8, kOther);   // thread_head.prev no longer the thread
        CHECK(check_task(s, m, kThread) == TaskCheck::Lists);
    }
    SUBCASE("a list_del_init()'d leader (DKOM) still passes") {
        BufferMemory m = world(s);
        const uint64_t lt = kTask + s.tasks;
        m.put64(lt, lt), m.put64(lt + 8, lt);
        CHECK(check_task(s, m, kTask) == TaskCheck::Ok);
    }
    SUBCASE("group leader") {
        BufferMemory m = world(s);
        m.put64(kTask + s.group_leader, kOther);
        CHECK(check_task(s, m, kTask) == TaskCheck::Leader);
        BufferMemory m2 = world(s);
        m2.put32(kThread + s.tgid, 7);   // the leader's tgid is 100
        CHECK(check_task(s, m2, kThread) == TaskCheck::Leader);
    }
}

TEST_CASE("psscan scans each physical page once, however many times the page tables map it") {
    using namespace deepmem::test_images;
    SUBCASE("kernel image alias of a Linux-like image") {
        Image mem = build_x64_4level();
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer tl(*phys, PagingMode::X86_64_4Level, 0x1000);
        PsscanStats st;
        psscan(tl, layout(), {}, &st);
        const uint64_t distinct = tl.walk_stats().distinct_pages;
        uint64_t mapped = 0;
        for (const auto& r : tl.kernel_runs()) mapped += r.size / 4096;
        CHECK(st.candidates == distinct * 4096 / 8);
        CHECK(st.aliases == mapped - distinct);
        CHECK(st.aliases > 0);
    }
    SUBCASE("1 GiB pages all mapping the same 1 MiB") {
        Image mem = build_alias_bomb(0x100000, AliasBomb::Gib1);
        auto phys = PhysicalLayer::from_bytes(mem.bytes);
        TranslationLayer tl(*phys, PagingMode::X86_64_4Level, 0x1000);
        PsscanStats st;
        psscan(tl, layout(), {}, &st);
        CHECK(st.candidates == 256 * 4096 / 8);
        CHECK(st.aliases == 3 * 256);
    }
}

TEST_CASE("psscan does not read candidates in pages no data backs (a kdump's zero pages), and counts them") {
    // attacker 94: a 60 MiB kdump of 4.75 GiB of zero pages took 20 s and 4.5 GB resident
    using namespace deepmem::test_images;
    Image mem = build_x64_4level();
    {   // world()'s leader and thread at physical 1 MiB, zero pages before and after them; the
        // words that point into the world moved to the image's direct map
        constexpr uint64_t at = 0x100000, direct = 0xffff800000000000ull;
        const BufferMemory w = world(layout());
        for (uint64_t o = 0; o + 8 <= w.bytes.size(); o += 8) {
            uint64_t v;
            std::memcpy(&v, &w.bytes[o], 8);
            if (v >= kBase && v - kBase < w.bytes.size()) v = v - kBase + direct + at;
            std::memcpy(&mem.bytes[at + o], &v, 8);
        }
    }
    auto raw = PhysicalLayer::from_bytes(mem.bytes);
    const std::vector<uint8_t> k = kdump_of(*raw, KdumpCompression::Zlib, false);
    auto kd = PhysicalLayer::from_bytes(k, DumpFormat::Kdump);
    TranslationLayer tr(*raw, PagingMode::X86_64_4Level, 0x1000), tk(*kd, PagingMode::X86_64_4Level, 0x1000);
    REQUIRE(tr.distinct_runs().size() == tk.distinct_runs().size());
    // what may be skipped: a page the raw image holds only zeros in, the same run's next page too
    auto zero = [&](uint64_t paddr) {
        return std::all_of(mem.bytes.begin() + long(paddr), mem.bytes.begin() + long(paddr + 4096), [](uint8_t b) { return b == 0; });
    };
    uint64_t expected = 0, pages = 0;
    for (const VirtualRun& run : tr.distinct_runs())
        for (uint64_t page = 0; page < run.size; page += 4096, ++pages)
            if (page + 2 * 4096 <= run.size && run.paddr + page + 2 * 4096 <= mem.bytes.size() &&
                zero(run.paddr + page) && zero(run.paddr + page + 4096))
                ++expected;
    REQUIRE(expected > 0);
    REQUIRE(expected < pages);   // the page tables and the patterns have data, and pages just before them
    PsscanStats sr, sk;
    const auto found_raw = psscan(tr, layout(), {}, &sr);
    const auto found_kdump = psscan(tk, layout(), {}, &sk);
    REQUIRE(found_raw.size() == 2);   // the leader and its thread
    CHECK(found_kdump == found_raw);
    CHECK(sr.no_data_pages == 0);   // a raw file's zero pages are data
    CHECK(sk.no_data_pages == expected);
    CHECK(sk.candidates + expected * 4096 / 8 == sr.candidates);
    SUBCASE("a comm past the first 4 KiB: every page read") {
        TaskSignature far = layout();
        far.comm = 4096 + 0x78;
        PsscanStats sf;
        psscan(tk, far, {}, &sf);
        CHECK(sf.no_data_pages == 0);
        CHECK(sf.candidates == sr.candidates);
    }
}
