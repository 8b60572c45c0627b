// The white-box hiding search's candidate filter (train/hide.hpp) on the synthetic task_struct of
// test/train/synthetic_kernel.hpp: protected fields and pointer words are never candidates, every
// other aligned word of the object is.
#include "train/hide.hpp"

#include "test/train/synthetic_kernel.hpp"

#include <doctest/doctest.h>

#include <cstring>

using namespace deepmem;
using deepmem::test::Off;

TEST_CASE("protected task_struct fields come from the BTF, sorted and merged") {
    const btf::Btf btf = deepmem::test::synthetic_btf();
    const KernelLayout L(btf);
    const std::vector<ByteRange> p = protected_task_fields(L);
    REQUIRE(!p.empty());
    for (size_t i = 1; i < p.size(); ++i) CHECK(p[i - 1].end < p[i].begin);   // disjoint, not touching
    auto covered = [&](uint64_t at, uint64_t n) {
        for (const ByteRange& r : p)
            if (r.begin <= at && at + n <= r.end) return true;
        return false;
    };
    // Every member of the list the synthetic build has, at its synthetic (non-Linux) offset.
    CHECK(covered(Off::tasks, 16));
    CHECK(covered(Off::pid_links, 4 * 16));
    CHECK(covered(Off::thread_node, 16));
    CHECK(covered(Off::thread_group, 16));
    for (uint64_t f : {Off::stack, Off::mm, Off::group_leader, Off::signal, Off::real_cred, Off::cred, Off::files,
                       Off::real_parent})
        CHECK(covered(f, 8));
    CHECK(covered(Off::pid, 4));
    CHECK(covered(Off::tgid, 4));
    CHECK(covered(Off::state, 4));
    CHECK(covered(Off::flags, 4));
    CHECK(covered(Off::exit_state, 4));
    // Not protected: comm and start_time (what an attacker may rewrite while the task runs).
    CHECK(!covered(Off::comm, 1));
    CHECK(!covered(Off::start_time, 1));
}

TEST_CASE("hide_candidates: no protected byte, no pointer word, every other aligned word") {
    const btf::Btf btf = deepmem::test::synthetic_btf();
    const KernelLayout L(btf);
    const std::vector<ByteRange> p = protected_task_fields(L);
    const uint64_t kbase = 0xffff800000000000ull;
    std::vector<uint8_t> object(Off::task_size);
    for (size_t i = 0; i < object.size(); ++i) object[i] = static_cast<uint8_t>(i * 7 + 1);   // no word ≥ kbase
    const uint64_t pointer = 0xffff888001234560ull;
    std::memcpy(object.data() + Off::start_time, &pointer, 8);   // an unprotected word holding a pointer
    const std::vector<uint64_t> c = hide_candidates(object, kbase, p);
    REQUIRE(!c.empty());
    for (uint64_t w : c) {
        CAPTURE(w);
        CHECK(w % 8 == 0);
        CHECK(w + 8 <= object.size());
        for (const ByteRange& r : p) CHECK((w + 8 <= r.begin || w >= r.end));
        CHECK(w != Off::start_time);
    }
    // Completeness: each aligned word outside the protected ranges and not a pointer is a candidate.
    for (uint64_t w = 0; w + 8 <= object.size(); w += 8) {
        bool prot = false;
        for (const ByteRange& r : p) prot = prot || (w < r.end && r.begin < w + 8);
        uint64_t v;
        std::memcpy(&v, object.data() + w, 8);
        const bool expected = !prot && v < kbase;
        CAPTURE(w);
        CHECK(std::count(c.begin(), c.end(), w) == (expected ? 1 : 0));
    }
    CHECK(std::count(c.begin(), c.end(), Off::comm) == 1);   // comm's first word is editable
}

TEST_CASE("hide_candidates and differing_bytes on 4-byte words (32-bit and PAE dumps)") {
    const btf::Btf btf = deepmem::test::synthetic_btf();
    const KernelLayout L(btf);
    const std::vector<ByteRange> p = protected_task_fields(L);
    const uint64_t kbase = 0xc0000000u;   // PAGE_OFFSET of Debian's i386 kernels
    std::vector<uint8_t> object(Off::task_size);
    for (size_t i = 0; i < object.size(); ++i) object[i] = static_cast<uint8_t>(i * 7 + 1) & 0x7f;   // no word ≥ kbase
    const uint32_t pointer = 0xc1234560u;
    std::memcpy(object.data() + Off::start_time + 4, &pointer, 4);   // the second word of an unprotected field
    const std::vector<uint64_t> c = hide_candidates(object, kbase, p, 4);
    for (uint64_t w = 0; w + 4 <= object.size(); w += 4) {
        bool prot = false;
        for (const ByteRange& r : p) prot = prot || (w < r.end && r.begin < w + 4);
        uint32_t v;
        std::memcpy(&v, object.data() + w, 4);
        CAPTURE(w);
        CHECK(std::count(c.begin(), c.end(), w) == (!prot && v < kbase ? 1 : 0));
    }
    CHECK(std::count(c.begin(), c.end(), Off::start_time) == 1);       // its first word: a value
    CHECK(std::count(c.begin(), c.end(), Off::start_time + 4) == 0);   // its second: a pointer
    CHECK(differing_bytes(0x11223344u, 0x11003344u, 4) == 1);
    CHECK(differing_bytes(0xaa00000011223344ull, 0x11223344u, 4) == 0);   // bytes beyond the word do not count
    CHECK(differing_bytes(0xaa00000011223344ull, 0x11223344u) == 1);
}
