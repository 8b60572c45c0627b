// bench-layers: how long the physical + translation layers take on a dump (open, root detection,
// kernel-page enumeration) and what they found; with --synthetic, on an in-memory Linux-like
// x86-64 image whose direct map uses 4 KiB pages only (the worst case for enumeration).
//
//   bench-layers DUMP [--format auto|raw|elf|lime|kdump|avml] [--dtb 0x…] [--paging x86|pae|x64|la57]
//                [--search] [--formats]
//   bench-layers --synthetic MiB
//   bench-layers --alias-bomb MiB [--kind gib1|la57|spray] [--write FILE]
//   bench-layers --overlap-elf MiB
//   bench-layers --dense-kdump MiB [--kind nodes|pointers|pages] --write FILE
// --search ignores the ELF CPU notes and runs the page-directory search, then reports whether it
// translates every kernel page exactly as the note's CR3 does.
// --formats writes the dump as kdump (zlib flattened, lzo, snappy, zstd) and AVML into $TMPDIR and
// times opening each: MiB/s of uncompressed memory made readable (decompression, in parallel).
// --overlap-elf writes a crafted ELF core of that size whose thousands of PT_LOADs all cover the
// same bytes (issue #15) and times opening it (the overlap rules of PhysicalLayer::open).
// --alias-bomb builds page tables that
// map the same memory millions of times (test/graph/layer_images.hpp) and times the walk and the
// search on it, or writes it as a raw dump for timing the tools (/usr/bin/time -v dmgraph build …).
// --dense-kdump writes a zstd kdump of about that many MiB whose memory is as dense as the density
// bound of a compressed dump allows (graph/memory_graph.hpp; issue #15 T9-4), for timing the tools
// (/usr/bin/time dmdetect FILE --dtb 0x1000): --kind nodes, one pointer field per 16 words (32
// nodes and 32 pointer fields a page) up to 64 nodes per KiB of the file; pointers, four per 16
// words (32 nodes, 128 pointer fields) up to 128 pointer fields per KiB; each at 98 % of that bound
// with distinct targets, padded to the size with random pages (incompressible, no pointer field);
// pages, four per 16 words into one page over 24 times the file's size (the decoder's limit), the
// per-page bound alone: refused by the file's bound.
#include "graph/dump_writers.hpp"
#include "graph/layers.hpp"
#include "test/graph/dump_images.hpp"

#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <boost/program_options.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>

using namespace deepmem;
namespace po = boost::program_options;

namespace {

// CPU seconds (user + system, all threads) of this process so far: the figure that means
// something on a shared machine, where wall time depends on the other load.
double cpu_seconds() {
    struct rusage u {};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

uint64_t pages_of(std::span<const VirtualRun> runs) {
    uint64_t n = 0;
    for (const auto& r : runs) n += r.size / 4096;
    return n;
}

void put64(std::vector<uint8_t>& m, uint64_t at, uint64_t v) { std::memcpy(m.data() + at, &v, 8); }

// PML4 0x1000; kernel text PML4[511] → PDPT 0x2000 [510] → PD 0x3000, 32 × 2 MiB pages from
// 16 MiB; direct map PML4[273] (0xffff888000000000) → PDPT 0x4000 → PDs from 0x5000 → PTs from
// 1 MiB, one 4 KiB page per physical page.
std::vector<uint8_t> synthetic(uint64_t mib) {
    const uint64_t size = mib << 20, pages = size >> 12;
    const uint64_t pts = (pages + 511) / 512, pds = (pts + 511) / 512;
    if (mib < 64 || pds > 64) throw InputError("--synthetic needs 64..32768 MiB");
    std::vector<uint8_t> m(size, 0);
    put64(m, 0x1000 + 511 * 8, 0x2000 | 3);
    put64(m, 0x2000 + 510 * 8, 0x3000 | 3);
    for (uint64_t i = 0; i < 32; ++i) put64(m, 0x3000 + 8 * i, ((16 + 2 * i) << 20) | 0x83);
    put64(m, 0x1000 + 273 * 8, 0x4000 | 3);
    const uint64_t pt_base = 1 << 20;
    for (uint64_t d = 0; d < pds; ++d) put64(m, 0x4000 + 8 * d, (0x5000 + 0x1000 * d) | 3);
    for (uint64_t t = 0; t < pts; ++t) put64(m, 0x5000 + 8 * t, (pt_base + 0x1000 * t) | 3);   // PDs are contiguous
    for (uint64_t p = 0; p < pages; ++p) put64(m, pt_base + 8 * p, (p << 12) | 3 | (uint64_t{1} << 63));
    return m;
}

void report(const TranslationLayer& found, double detect_s) {
    TranslationLayer t(found.physical(), found.mode(), found.dtb(), found.kernel_base());   // uncached
    auto t0 = std::chrono::steady_clock::now();
    auto runs = t.kernel_runs();
    double enum_s = since(t0);
    auto st = t.walk_stats();
    std::printf("paging %s  dtb %s  kernel_base %s\n", to_string(t.mode()), hex(t.dtb()).c_str(),
                hex(t.kernel_base()).c_str());
    std::printf("detect %.3f s  kernel_runs %.3f s  runs %zu  pages %llu  tables %llu (absent %llu, loops %llu, reserved %llu)\n",
                detect_s, enum_s, runs.size(), static_cast<unsigned long long>(pages_of(runs)),
                static_cast<unsigned long long>(st.tables), static_cast<unsigned long long>(st.absent_tables),
                static_cast<unsigned long long>(st.loops), static_cast<unsigned long long>(st.reserved));
}

void write_file(const std::string& path, const std::function<void(const ByteSink&)>& write) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    write([&](uint64_t off, std::span<const uint8_t> b) {
        out.seekp(static_cast<std::streamoff>(off));
        out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    });
    if (!out) throw InputError("cannot write " + path);
}

// The memory of --dense-kdump: a 4-level image whose 2 GiB direct map (0xffff800000000000) holds
// `dense` pages from 4 MiB on, each word of a group of 16 a pointer when its index is below
// `per16`, then `random` random pages. With `distinct`, each pointer leads to the first node of a
// dense page of its own (pseudo-random: pointers into one page were 4 times cheaper to detect on,
// helper 66); else all into the first.
std::vector<uint8_t> dense_memory(uint64_t dense, uint64_t random, int per16, bool distinct) {
    auto m = test_images::build_x64_4level();
    m.put64(0x5000 + 8, (uint64_t{1} << 30) | test_images::P | test_images::RW | test_images::PS);
    const uint64_t size = 0x400000 + (dense + random) * 4096;
    if (size > uint64_t{2} << 30) throw InputError("--dense-kdump: more than the image's 2 GiB of memory");
    m.bytes.resize(size, 0);
    for (uint64_t a = 0x400000; a < 0x400000 + dense * 4096; a += 8) {
        const uint64_t page = distinct ? (a * 0x9e3779b97f4a7c15 >> 40) % dense : 0;
        const uint64_t target = 0x400000 + page * 4096 + 8 * static_cast<uint64_t>(per16);
        m.put64(a, (a / 8) % 16 < static_cast<uint64_t>(per16) ? 0xffff800000000000 + target : 0x4141414141414141 + (a / 8) % 16);
    }
    std::mt19937_64 rng(15);
    for (uint64_t a = 0x400000 + dense * 4096; a < size; a += 8) m.put64(a, rng());
    return std::move(m.bytes);
}

// The zstd kdump of that memory, in memory.
std::vector<uint8_t> kdump_of(const std::vector<uint8_t>& mem) {
    return test_images::kdump_of(*PhysicalLayer::from_bytes(mem, DumpFormat::Raw), KdumpCompression::Zstd, false);
}

void dense_kdump(uint64_t mib, const std::string& kind, const std::string& path) {
    const double target = double(mib << 20);
    const int per16 = kind == "nodes" ? 1 : 4;
    const double per_page = 32.0 * per16;   // pointer fields a dense page holds (and 32 nodes)
    // What a dense page takes in the file (compressed, with its descriptor), from 1,024 of them,
    // and a random one (4,096 bytes stored as they are, and its descriptor).
    const bool distinct = kind != "pages";   // the per-page bound alone needs pages that compress 24 times
    const double c = double(kdump_of(dense_memory(1024, 0, per16, distinct)).size() -
                            kdump_of(dense_memory(0, 0, per16, distinct)).size()) / 1024,
                 r = 4096 + 24;
    uint64_t dense = 0, random = 0;
    if (kind == "pages") {   // 23.5 times the file's size of memory (the decoder allows 24)
        const double pages = 23.5 * target / 4096 - 1024;
        dense = uint64_t((pages - target / r) / (1 - c / r));
    } else {   // 98 % of the file's bound: 64 nodes (nodes) or 128 pointer fields (pointers) per KiB
        dense = uint64_t(target / 1024 * (kind == "nodes" ? 64 / 32.0 : 128 / per_page) * 0.98);
    }
    random = target > dense * c ? uint64_t((target - dense * c) / r) : 0;
    std::vector<uint8_t> file = kdump_of(dense_memory(dense, random, per16, distinct));
    if (file.size() > target && random > 0) {   // the sample's pages compressed better: fewer random ones
        random -= std::min<uint64_t>(random, uint64_t((double(file.size()) - target) / r) + 1);
        file = kdump_of(dense_memory(dense, random, per16, distinct));
    }
    write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(file.data()), file.size()));
    std::printf("%s: %.1f MiB zstd kdump of %.0f MiB of memory: %llu dense pages (%llu pointer fields, %llu nodes at "
                "most), %llu random pages; the file's bound: %llu pointer fields, %llu nodes\n",
                path.c_str(), double(file.size()) / (1 << 20), double(0x400000 + (dense + random) * 4096) / (1 << 20),
                static_cast<unsigned long long>(dense), static_cast<unsigned long long>(dense * 32 * per16),
                static_cast<unsigned long long>(dense * 32), static_cast<unsigned long long>(random),
                static_cast<unsigned long long>(file.size() / 1024 * 128),
                static_cast<unsigned long long>(file.size() / 1024 * 64));
}

void bench_formats(const PhysicalLayer& phys) {
    const std::string base = (std::filesystem::temp_directory_path() / ("bench-layers-" + std::to_string(::getpid()))).string();
    const double mib = static_cast<double>(phys.present_bytes()) / (1 << 20);
    struct Row { const char* name; std::function<void(const ByteSink&)> write; };
    const Row rows[] = {
        {"kdump zlib flattened", [&](const ByteSink& s) { write_kdump(phys, KdumpCompression::Zlib, true, s); }},
        {"kdump lzo", [&](const ByteSink& s) { write_kdump(phys, KdumpCompression::Lzo, false, s); }},
        {"kdump snappy", [&](const ByteSink& s) { write_kdump(phys, KdumpCompression::Snappy, false, s); }},
        {"kdump zstd", [&](const ByteSink& s) { write_kdump(phys, KdumpCompression::Zstd, false, s); }},
        {"avml", [&](const ByteSink& s) { write_avml(phys, s); }},
    };
    std::printf("formats: %.0f MiB of memory, %d threads (open = parse + decompress)\n", mib, omp_get_max_threads());
    for (const Row& r : rows) {
        const std::string path = base + ".dump";
        auto t0 = std::chrono::steady_clock::now();
        write_file(path, r.write);
        const double write_s = since(t0);
        const double file_mib = static_cast<double>(std::filesystem::file_size(path)) / (1 << 20);
        t0 = std::chrono::steady_clock::now();
        const double cpu0 = cpu_seconds();
        auto p = PhysicalLayer::open(path);
        const double open_s = since(t0), open_cpu = cpu_seconds() - cpu0;
        std::filesystem::remove(path);
        std::printf("  %-22s file %7.1f MiB  write %6.2f s  open %6.3f s wall (%5.0f MiB/s), %6.3f s CPU "
                    "(%5.0f MiB/s per core)  present %s\n",
                    r.name, file_mib, write_s, open_s, mib / open_s, open_cpu, mib / open_cpu,
                    p->present_bytes() == phys.present_bytes() ? "same" : "DIFFERS");
    }
}

// An ELF64 core of `mib` MiB: 64 KiB of memory and as many PT_LOADs (PN_XNUM) as fit, every one
// placing those bytes at physical 0 — or, with `spread`, each at its own address (refused).
std::vector<uint8_t> overlap_elf(uint64_t mib, bool spread) {
    const uint64_t data = 0x10000, phoff = 64 + data, n = ((mib << 20) - phoff - 64) / 56;
    std::vector<uint8_t> b(phoff + n * 56 + 64, 0);
    auto put = [&](uint64_t at, uint64_t v, unsigned bytes) { std::memcpy(b.data() + at, &v, bytes); };
    std::memcpy(b.data(), "\x7f" "ELF\x02\x01\x01", 7);
    put(16, 4, 2); put(18, 62, 2); put(20, 1, 4); put(32, phoff, 8); put(40, phoff + n * 56, 8);
    put(52, 64, 2); put(54, 56, 2); put(56, 0xffff, 2); put(58, 64, 2); put(60, 1, 2);
    put(phoff + n * 56 + 44, n, 4);
    for (uint64_t i = 0; i < data; ++i) b[64 + i] = static_cast<uint8_t>(i * 7);
    for (uint64_t i = 0; i < n; ++i) {
        const uint64_t at = phoff + i * 56;
        put(at, 1, 4); put(at + 8, 64, 8); put(at + 24, spread ? i << 16 : 0, 8); put(at + 32, data, 8); put(at + 40, data, 8);
    }
    return b;
}

}  // namespace

int main(int argc, char** argv) try {
    po::options_description opts("bench-layers options");
    opts.add_options()
        ("help,h", "this text")
        ("dump", po::value<std::string>(), "dump file")
        ("format", po::value<std::string>()->default_value("auto"), "auto|raw|elf|lime|kdump|avml")
        ("dtb", po::value<std::string>(), "page-table root (hex)")
        ("paging", po::value<std::string>(), "x86|pae|x64|la57")
        ("search", "ignore CPU notes: search for the root and compare with the note's CR3")
        ("synthetic", po::value<uint64_t>(), "benchmark an in-memory image of this many MiB")
        ("alias-bomb", po::value<uint64_t>(), "an aliasing page-table image of this many MiB (1..1024)")
        ("kind", po::value<std::string>(), "alias bomb: gib1|la57|spray [gib1]; dense kdump: nodes|pointers|pages [nodes]")
        ("write", po::value<std::string>(), "write the alias bomb as a raw dump (the dense kdump: required) to FILE and stop")
        ("dense-kdump", po::value<uint64_t>(), "a zstd kdump of about this many MiB at the density bound (1..80)")
        ("formats", "also time reading kdump and AVML copies of the dump")
        ("overlap-elf", po::value<uint64_t>(), "time opening a crafted ELF of this many MiB of overlapping PT_LOADs");
    po::positional_options_description pos;
    pos.add("dump", 1);
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
    po::notify(vm);
    if (vm.count("overlap-elf")) {
        for (bool spread : {false, true}) {
            auto b = overlap_elf(vm["overlap-elf"].as<uint64_t>(), spread);
            auto t0 = std::chrono::steady_clock::now();
            std::string result;
            try {
                result = std::to_string(PhysicalLayer::from_bytes(b)->runs().size()) + " run(s)";
            } catch (const FormatError& e) {
                result = std::string("refused: ") + e.what();
            }
            std::printf("overlap ELF %zu MiB, %s: open %.3f s, %s\n", b.size() >> 20,
                        spread ? "same bytes at many addresses" : "same bytes at one address", since(t0), result.c_str());
        }
        return 0;
    }
    if (vm.count("dense-kdump")) {
        const uint64_t mib = vm["dense-kdump"].as<uint64_t>();
        const std::string kind = vm.count("kind") ? vm["kind"].as<std::string>() : "nodes";
        if (mib < 1 || mib > 80) throw InputError("--dense-kdump needs 1..80 MiB");
        if (kind != "nodes" && kind != "pointers" && kind != "pages") throw InputError("--kind must be nodes, pointers or pages");
        if (!vm.count("write")) throw InputError("--dense-kdump needs --write FILE");
        dense_kdump(mib, kind, vm["write"].as<std::string>());
        return 0;
    }
    if (vm.count("help") || (!vm.count("dump") && !vm.count("synthetic") && !vm.count("alias-bomb"))) {
        std::cout << "usage: bench-layers DUMP [options] | --synthetic MiB | --alias-bomb MiB | --overlap-elf MiB"
                     " | --dense-kdump MiB --write FILE\n" << opts;
        return vm.count("help") ? 0 : 2;
    }
    std::optional<PagingMode> mode;
    if (vm.count("paging")) mode = parse_paging_mode(vm["paging"].as<std::string>());
    std::optional<uint64_t> dtb;
    if (vm.count("dtb")) dtb = parse_address(vm["dtb"].as<std::string>(), "--dtb");

    if (vm.count("synthetic")) {
        auto t0 = std::chrono::steady_clock::now();
        auto mem = synthetic(vm["synthetic"].as<uint64_t>());
        std::printf("built %llu MiB image in %.3f s\n", static_cast<unsigned long long>(mem.size() >> 20), since(t0));
        auto phys = PhysicalLayer::from_bytes(mem, DumpFormat::Raw);
        t0 = std::chrono::steady_clock::now();
        auto t = TranslationLayer::detect(*phys, dtb, mode);
        report(t, since(t0));
        return 0;
    }

    if (vm.count("alias-bomb")) {
        using test_images::AliasBomb;
        const uint64_t mib = vm["alias-bomb"].as<uint64_t>();
        const std::string kind = vm.count("kind") ? vm["kind"].as<std::string>() : "gib1";
        if (mib < 1 || mib > 1024) throw InputError("--alias-bomb needs 1..1024 MiB");
        if (kind != "gib1" && kind != "la57" && kind != "spray") throw InputError("--kind must be gib1, la57 or spray");
        const AliasBomb k = kind == "gib1" ? AliasBomb::Gib1 : kind == "la57" ? AliasBomb::La57 : AliasBomb::Spray;
        auto mem = test_images::build_alias_bomb(mib << 20, k);
        if (vm.count("write")) {
            write_file_atomically(vm["write"].as<std::string>(),
                                  std::string_view(reinterpret_cast<const char*>(mem.bytes.data()), mem.bytes.size()));
            return 0;
        }
        auto phys = PhysicalLayer::from_bytes(mem.bytes, DumpFormat::Raw);
        const PagingMode m = k == AliasBomb::La57 ? PagingMode::X86_64_5Level : PagingMode::X86_64_4Level;
        auto t0 = std::chrono::steady_clock::now();
        TranslationLayer t(*phys, m, 0x1000);
        auto runs = t.kernel_runs();
        auto st = t.walk_stats();
        std::printf("walk %.3f s  pages %llu  distinct %llu  skipped aliases %llu  tables %llu\n", since(t0),
                    static_cast<unsigned long long>(pages_of(runs)), static_cast<unsigned long long>(st.distinct_pages),
                    static_cast<unsigned long long>(st.aliases_skipped), static_cast<unsigned long long>(st.tables));
        t0 = std::chrono::steady_clock::now();
        try {
            auto s = TranslationLayer::search(*phys);
            std::printf("search %.3f s  root %s (%s)\n", since(t0), hex(s.dtb()).c_str(), to_string(s.mode()));
        } catch (const InputError& e) {
            std::printf("search %.3f s  refused: %s\n", since(t0), e.what());
        }
        return 0;
    }

    auto t0 = std::chrono::steady_clock::now();
    auto phys = PhysicalLayer::open(vm["dump"].as<std::string>(), parse_dump_format(vm["format"].as<std::string>()));
    std::printf("format %s  runs %zu  present %llu MiB  max_paddr %s  cpus %zu  open %.3f s\n",
                to_string(phys->format()), phys->runs().size(),
                static_cast<unsigned long long>(phys->present_bytes() >> 20), hex(phys->max_paddr()).c_str(),
                phys->cpus().size(), since(t0));
    for (const auto& c : phys->cpus())
        std::printf("  cpu cr0 %s cr3 %s cr4 %s long_mode %d\n", hex(c.cr0).c_str(), hex(c.cr3).c_str(),
                    hex(c.cr4).c_str(), c.long_mode);
    if (vm.count("formats")) bench_formats(*phys);
    t0 = std::chrono::steady_clock::now();
    auto t = TranslationLayer::detect(*phys, dtb, mode);
    report(t, since(t0));
    if (vm.count("search")) {
        // The search alone must translate every kernel page exactly as the note's root does.
        t0 = std::chrono::steady_clock::now();
        auto s = TranslationLayer::search(*phys, mode);
        std::printf("search (notes ignored):\n");
        report(s, since(t0));
        uint64_t same = 0, differ = 0, missing = 0;
        for (const auto& r : t.kernel_runs())
            for (uint64_t off = 0; off < r.size; off += 4096) {
                auto pa = s.translate(r.vaddr + off);
                if (!pa) ++missing;
                else if (*pa == r.paddr + off) ++same;
                else ++differ;
            }
        std::printf("agreement with %s: %llu pages same, %llu differ, %llu unmapped by the search\n",
                    hex(t.dtb()).c_str(), static_cast<unsigned long long>(same),
                    static_cast<unsigned long long>(differ), static_cast<unsigned long long>(missing));
        if (differ || missing) return 3;
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "bench-layers: %s\n", e.what());
    return 1;
}
