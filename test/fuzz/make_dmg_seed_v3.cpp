// One-off generator of test/fuzz/corpus/dmg/seed-v3-banner-absent (a version-3 .dmg with a kernel
// banner and two absent runs). Not built by meson; from the repository root after a build:
//   g++ -std=c++20 -fopenmp -I. test/fuzz/make_dmg_seed_v3.cpp build/graph/libdm_graph.a -lz -llzo2 -lsnappy -lzstd -o /tmp/mk && /tmp/mk OUT
#include "test/graph/graph_fixtures.hpp"
#include <cstring>
using namespace deepmem;
using namespace deepmem::test;
int main(int, char** argv) {
    const uint64_t K64 = 0xffff888000000000ull, kImage = 0xffffffff80000000ull;
    const std::string banner =
        "Linux version 6.1.0-47-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, "
        "GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2025-11-05)\n";
    Memory m(16);
    m.map(K64, 0, 16 * 4096);
    m.map(kImage, 8 * 4096, 8 * 4096);
    m.map(K64 + 32 * 4096, 40 * 4096, 2 * 4096);   // mapped, beyond the dump: absent
    m.map(K64 + 64 * 4096, 48 * 4096, 4096);       // a second absent run
    for (uint64_t off = 24; off < 4096; off += 32) m.word(3 * 4096 + off, K64 + 3 * 4096 + off - 24);
    for (uint64_t off = 40; off < 4096; off += 256) m.word(5 * 4096 + off, K64 + 32 * 4096 + off);
    std::memcpy(&m.image[9 * 4096 + 64], banner.data(), banner.size());
    MemoryGraph g = m.build();
    if (!g.info().kernel_banner || g.absent().size() != 2) return 1;
    g.set_dump_path("seed.raw");
    g.save(argv[1]);
    std::printf("%u nodes, %zu absent runs\n", g.node_count(), g.absent().size());
}
