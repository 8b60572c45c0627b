// The white-box hiding search's candidate filter (train/hide.hpp) on the synthetic task_struct of
// test/train/synthetic_kernel.hpp: protected fields and pointer words are never candidates, every
// other aligned word of the object is.
#include "train/hide.hpp"

#include "graph/errors.hpp"

#include "test/train/synthetic_kernel.hpp"

#include <doctest/doctest.h>

#include <cstring>

using namespace deepmem;
using deepmem::test::Off;

TEST_CASE("protected task_struct fields come from the BTF, sorted and merged") {
    const btf::Btf btf = deepmem::test::synthetic_btf();
    const KernelLayout L(btf);
    const std::vector<ByteRange> p = protected_fields(L, "task_struct");
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

// The other five types: each member of the synthetic BTF the list names is covered, over its BTF
// size; what the lists leave editable is not; a type with no list is an InputError.
TEST_CASE("protected fields of mm_struct, cred, file, dentry and module come from the BTF") {
    const btf::Btf btf = deepmem::test::synthetic_btf();
    const KernelLayout L(btf);
    auto covered = [](const std::vector<ByteRange>& p, uint64_t at, uint64_t n) {
        for (const ByteRange& r : p)
            if (r.begin <= at && at + n <= r.end) return true;
        return false;
    };
    auto touched = [](const std::vector<ByteRange>& p, uint64_t at, uint64_t n) {
        for (const ByteRange& r : p)
            if (at < r.end && r.begin < at + n) return true;
        return false;
    };
    const auto mm = protected_fields(L, "mm_struct");
    CHECK(covered(mm, 0, 8));   // mmap_base
    CHECK(covered(mm, Off::map_count, 4));
    CHECK(covered(mm, Off::exe_file, 8));
    CHECK(covered(mm, Off::mm_pgd, 8));
    CHECK(!touched(mm, Off::mm_count + 4, 128 - Off::mm_count - 4));   // nothing past the last member
    const auto cred = protected_fields(L, "cred");
    for (uint64_t f : {uint64_t{0}, Off::cred_uid, Off::cred_gid, Off::cred_euid, Off::cred_fsgid}) CHECK(covered(cred, f, 4));
    CHECK(covered(cred, Off::cred_user_ns, 8));
    CHECK(!touched(cred, 64, 32));
    const auto file = protected_fields(L, "file");
    CHECK(covered(file, Off::f_path, 16));   // the whole struct path, by its BTF size
    CHECK(covered(file, Off::f_flags, 4));
    CHECK(covered(file, Off::f_pos, 8));
    CHECK(covered(file, Off::f_inode, 8));
    CHECK(covered(file, Off::f_count, 8));
    CHECK(covered(protected_fields(KernelLayout(deepmem::test::synthetic_btf(true, true)), "file"), Off::f_count, 8));   // f_ref
    CHECK(!touched(file, 0, Off::f_flags));
    const auto dentry = protected_fields(L, "dentry");
    CHECK(covered(dentry, Off::d_name, 16));
    CHECK(covered(dentry, Off::d_hash, 16));
    CHECK(covered(dentry, Off::d_parent, 8));
    CHECK(covered(dentry, Off::d_sb, 8));
    const auto module = protected_fields(L, "module");
    CHECK(covered(module, Off::mod_state, 4));
    CHECK(covered(module, Off::mod_list, 16));
    CHECK(covered(module, Off::core_layout, 56));
    CHECK(covered(module, Off::init_layout, 56));
    CHECK(!touched(module, Off::mod_name, 56));   // a module's name is editable, like a task's comm
    CHECK(has_protected_fields("dentry"));
    CHECK(!has_protected_fields("inode"));
    CHECK_THROWS_WITH_AS(protected_fields(L, "inode"), "no protected fields known for object type 'inode'", InputError);
}

TEST_CASE("hide_candidates: no protected byte, no pointer word, every other aligned word") {
    const btf::Btf btf = deepmem::test::synthetic_btf();
    const KernelLayout L(btf);
    const std::vector<ByteRange> p = protected_fields(L, "task_struct");
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
    const std::vector<ByteRange> p = protected_fields(L, "task_struct");
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
