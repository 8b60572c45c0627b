// dm-dump-formats: the same memory in other acquisition formats, from any dump deepmem reads
// (raw, ELF, LiME, kdump, AVML; graph/layers.hpp), for tools/make-dataset and the format tests.
//
//   dm-dump-formats DUMP [--format auto|raw|elf|lime|kdump|avml] [--raw OUT] [--lime OUT]
//                   [--kdump OUT [--kdump-compression zlib|lzo|snappy|zstd|none] [--flattened]]
//                   [--avml OUT]
//
// raw:   flat file, file offset = physical address, absent memory left as holes (sparse, zeros).
// lime:  one LiME v1 range (header magic 0x4C694D45, start, inclusive end) per run of present memory;
//        the holes of a sparse input stay holes (zeros) in the output, as in raw.
// kdump: kdump-compressed as QEMU's dump-guest-memory writes it (graph/dump_writers.hpp), with the
//        dump's CPU state as QEMU notes; --flattened for makedumpfile's flattened form.
// avml:  AVML v2, snappy-framed blocks of at most 16 MiB (all-zero blocks kept).
// Outputs are written to a temporary file beside OUT and renamed into place; on any error (disk
// full included) the temporary is removed, one line names the problem, and the exit status is 1.
#include "graph/dump_writers.hpp"
#include "graph/file_io.hpp"
#include "graph/layers.hpp"
#include "tools/cli.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

const char* kUsage =
    "usage: dm-dump-formats DUMP [--format auto|raw|elf|lime|kdump|avml] [--raw OUT] [--lime OUT]\n"
    "                       [--kdump OUT [--kdump-compression zlib|lzo|snappy|zstd|none] [--flattened]]\n"
    "                       [--avml OUT]\n";

std::string errno_text() { return std::strerror(errno); }

ByteSink sink(AtomicFile& o) {
    return [&o](uint64_t off, std::span<const uint8_t> b) { o.write_at(off, b); };
}

// The bytes of run `r` (of phys.runs()) to `o` at `at`: only its parts that hold data, in chunks
// released as written, so that the holes of a sparse input (a raw copy of a 4 GiB address space
// holding 256 MiB of RAM) stay holes in the output and are never read (tester 9: a raw file's
// LiME copy took 4.2 GB of memory and 4 GiB of disk).
void copy_data(AtomicFile& o, const PhysicalLayer& phys, const PhysicalRun& r, uint64_t at) {
    constexpr uint64_t kChunk = uint64_t{64} << 20;
    for (const auto& d : phys.data_runs()) {
        const uint64_t lo = std::max(d.paddr, r.paddr), hi = std::min(d.paddr + d.size, r.paddr + r.size);
        for (uint64_t c = lo; c < hi; c += std::min(kChunk, hi - c)) {
            const uint64_t n = std::min(kChunk, hi - c);
            const uint8_t* bytes = phys.find(c, n);
            if (!bytes) throw InputError("cannot read " + std::to_string(n) + " bytes at " + hex(c));
            o.write_at(at + (c - r.paddr), {bytes, n});
            phys.release(bytes, n);
        }
    }
}

void write_raw(const PhysicalLayer& phys, const std::string& out) {
    AtomicFile o(out);
    for (const auto& r : phys.runs()) copy_data(o, phys, r, r.paddr);
    if (::ftruncate(o.fd(), static_cast<off_t>(phys.max_paddr())) < 0)
        throw InputError(o.temp_path() + ": ftruncate to " + std::to_string(phys.max_paddr()) + " failed: " + errno_text());
    o.commit();
}

void write_lime(const PhysicalLayer& phys, const std::string& out) {
    AtomicFile o(out);
    uint64_t pos = 0;
    for (const auto& r : phys.runs()) {
        uint8_t h[32] = {};
        const uint32_t magic = 0x4C694D45, version = 1;
        const uint64_t last = r.paddr + r.size - 1;   // LiME's end address is inclusive
        std::memcpy(h, &magic, 4);
        std::memcpy(h + 4, &version, 4);
        std::memcpy(h + 8, &r.paddr, 8);
        std::memcpy(h + 16, &last, 8);
        o.write_at(pos, {reinterpret_cast<const uint8_t*>(&h), sizeof h});
        copy_data(o, phys, r, pos + sizeof h);
        pos += sizeof h + r.size;
    }
    if (::ftruncate(o.fd(), static_cast<off_t>(pos)) < 0)   // a hole at the end
        throw InputError(o.temp_path() + ": ftruncate to " + std::to_string(pos) + " failed: " + errno_text());
    o.commit();
}

int run(int argc, char** argv) {
    po::options_description opts("options");
    opts.add_options()("help,h", "this text")(
        "format", po::value<std::string>()->default_value("auto"), "input format: auto|raw|elf|lime|kdump|avml")(
        "raw", po::value<std::string>(), "write a sparse raw copy")(
        "lime", po::value<std::string>(), "write a LiME copy")(
        "kdump", po::value<std::string>(), "write a kdump-compressed copy")(
        "kdump-compression", po::value<std::string>()->default_value("zlib"), "zlib|lzo|snappy|zstd|none")(
        "flattened", "kdump in makedumpfile's flattened form")(
        "avml", po::value<std::string>(), "write an AVML v2 copy");
    const auto parsed = parse_command_line(argc, argv, opts, {{"dump", 1}}, kUsage);
    if (!parsed) return 0;
    const po::variables_map& vm = *parsed;
    if (!vm.count("dump")) throw po::error("no DUMP given");
    if (!vm.count("raw") && !vm.count("lime") && !vm.count("kdump") && !vm.count("avml"))
        throw po::error("give at least one output (--raw, --lime, --kdump or --avml)");
    {
        std::vector<std::string> outs;
        for (const char* k : {"raw", "lime", "kdump", "avml"})
            if (vm.count(k)) outs.push_back(vm[k].as<std::string>());
        const std::string inputs[] = {vm["dump"].as<std::string>()};
        refuse_output_over_inputs(outs, inputs);
        for (size_t i = 0; i < outs.size(); ++i)
            for (size_t j = i + 1; j < outs.size(); ++j)
                if (outs[i] == outs[j] || same_file(outs[i], outs[j]))
                    throw InputError("two outputs name the same file '" + outs[i] + "'");
    }
    const KdumpCompression compression = parse_kdump_compression(vm["kdump-compression"].as<std::string>());
    auto phys = PhysicalLayer::open(vm["dump"].as<std::string>(), parse_dump_format(vm["format"].as<std::string>()),
                                    /*strict=*/true);   // a copy of a cut dump would hide the cut
    if (vm.count("raw")) write_raw(*phys, vm["raw"].as<std::string>());
    if (vm.count("lime")) write_lime(*phys, vm["lime"].as<std::string>());
    auto report = [](const std::string& out, const WriteStats& st) {
        if (st.partial_pages)
            std::fprintf(stderr, "dm-dump-formats: warning: %s: %llu pages only partly present in the input were left out\n",
                         out.c_str(), static_cast<unsigned long long>(st.partial_pages));
    };
    if (vm.count("kdump")) {
        const std::string out = vm["kdump"].as<std::string>();
        AtomicFile o(out);
        report(out, write_kdump(*phys, compression, vm.count("flattened") > 0, sink(o)));
        o.commit();
    }
    if (vm.count("avml")) {
        const std::string out = vm["avml"].as<std::string>();
        AtomicFile o(out);
        report(out, write_avml(*phys, sink(o)));
        o.commit();
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli_main("dm-dump-formats", [&] { return run(argc, argv); });
}
