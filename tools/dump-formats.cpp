// dm-dump-formats: writes the raw and LiME copies of a QEMU dump-guest-memory ELF core, for the
// format tests (the same memory in each acquisition format deepmem reads).
//
//   dm-dump-formats DUMP.elf [--raw OUT.raw] [--lime OUT.lime]
//
// raw:  flat file, file offset = guest physical address, holes (and p_memsz beyond p_filesz) zero.
//       Written sparse: holes are never written, so they cost no disk.
// lime: one LiME v1 range header (magic 0x4C694D45, start, inclusive end) per run of contiguous
//       PT_LOAD physical memory, each followed by its bytes.
// Both ELF64 (qemu-system-x86_64) and ELF32 (qemu-system-i386) cores are read. Outputs are written
// atomically (graph/file_io.hpp: a temporary beside OUT, renamed into place); on any error (disk full
// included) the temporary is removed, one line names the problem, and the exit status is 1. An
// output that is the input (or the other output) is refused before anything is written.
// POSIX and graph/file_io only: it is built before anything else exists.
#include "graph/file_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string errno_text() { return std::strerror(errno); }

// One PT_LOAD: guest-physical [paddr, paddr + memsz), of which filesz bytes are at file offset.
struct LoadSegment {
    uint64_t paddr, offset, filesz, memsz;
};

struct File {
    int fd = -1;
    explicit File(int f) : fd(f) {}
    ~File() { if (fd >= 0) ::close(fd); }
    File(const File &) = delete;
    File &operator=(const File &) = delete;
};

void pread_all(int fd, void *buf, uint64_t n, uint64_t off, const std::string &what) {
    auto *p = static_cast<char *>(buf);
    while (n > 0) {
        ssize_t r = ::pread(fd, p, n, static_cast<off_t>(off));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) throw Error(what + ": read failed at offset " + std::to_string(off) + ": " + errno_text());
        if (r == 0) throw Error(what + ": truncated: expected data at offset " + std::to_string(off));
        p += r; n -= static_cast<uint64_t>(r); off += static_cast<uint64_t>(r);
    }
}

void pwrite_all(int fd, const void *buf, uint64_t n, uint64_t off, const std::string &what) {
    auto *p = static_cast<const char *>(buf);
    while (n > 0) {
        ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw Error(what + ": write failed at offset " + std::to_string(off) + ": " + errno_text() +
                               (errno == ENOSPC ? " (free disk space and rerun)" : ""));
        p += w; n -= static_cast<uint64_t>(w); off += static_cast<uint64_t>(w);
    }
}

template <class T> T get(const unsigned char *p) { T v; std::memcpy(&v, p, sizeof v); return v; }  // little-endian host

std::vector<LoadSegment> read_elf_loads(int fd, const std::string &path) {
    struct stat st{};
    if (::fstat(fd, &st) < 0) throw Error(path + ": " + errno_text());
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    unsigned char eh[64] = {};
    if (size < 52) throw Error(path + ": not an ELF core (file is " + std::to_string(size) + " bytes)");
    pread_all(fd, eh, std::min<uint64_t>(64, size), 0, path);
    if (std::memcmp(eh, "\x7f" "ELF", 4) != 0) throw Error(path + ": not an ELF file (bad magic at offset 0); expected a QEMU dump-guest-memory ELF core");
    if (eh[5] != 1) throw Error(path + ": big-endian ELF at offset 5; expected little-endian x86");
    const bool is64 = eh[4] == 2;
    if (!is64 && eh[4] != 1) throw Error(path + ": bad ELF class " + std::to_string(eh[4]) + " at offset 4");
    if (get<uint16_t>(eh + 16) != 4) throw Error(path + ": ELF type at offset 16 is not ET_CORE (4)");
    const uint64_t phoff = is64 ? get<uint64_t>(eh + 32) : get<uint32_t>(eh + 28);
    const uint16_t phentsize = get<uint16_t>(eh + (is64 ? 54 : 42));
    uint64_t phnum = get<uint16_t>(eh + (is64 ? 56 : 44));
    if (phentsize != (is64 ? 56 : 32)) throw Error(path + ": unexpected program header size " + std::to_string(phentsize));
    std::vector<unsigned char> first(phentsize);
    if (phnum == 0xffff) {  // PN_XNUM: real count in section header 0's sh_info
        const uint64_t shoff = is64 ? get<uint64_t>(eh + 40) : get<uint32_t>(eh + 32);
        unsigned char sh[64];
        pread_all(fd, sh, is64 ? 64 : 40, shoff, path);
        phnum = get<uint32_t>(sh + (is64 ? 44 : 28));
    }
    if (phoff + phnum * phentsize > size) throw Error(path + ": program headers at offset " + std::to_string(phoff) + " run past end of file");
    std::vector<unsigned char> ph(phnum * phentsize);
    pread_all(fd, ph.data(), ph.size(), phoff, path);
    std::vector<LoadSegment> loads;
    for (uint64_t i = 0; i < phnum; ++i) {
        const unsigned char *p = ph.data() + i * phentsize;
        if (get<uint32_t>(p) != 1) continue;  // PT_LOAD only
        LoadSegment s{};
        if (is64) {
            s.offset = get<uint64_t>(p + 8); s.paddr = get<uint64_t>(p + 24);
            s.filesz = get<uint64_t>(p + 32); s.memsz = get<uint64_t>(p + 40);
        } else {
            s.offset = get<uint32_t>(p + 4); s.paddr = get<uint32_t>(p + 12);
            s.filesz = get<uint32_t>(p + 16); s.memsz = get<uint32_t>(p + 20);
        }
        if (s.offset + s.filesz > size)
            throw Error(path + ": PT_LOAD " + std::to_string(i) + " data at offset " + std::to_string(s.offset) + " runs past end of file");
        if (s.memsz < s.filesz) s.memsz = s.filesz;
        if (s.memsz) loads.push_back(s);
    }
    if (loads.empty()) throw Error(path + ": ELF core has no PT_LOAD segments (was it written with dump-guest-memory?)");
    std::sort(loads.begin(), loads.end(), [](auto &a, auto &b) { return a.paddr < b.paddr; });
    for (size_t i = 1; i < loads.size(); ++i)
        if (loads[i].paddr < loads[i - 1].paddr + loads[i - 1].memsz)
            throw Error(path + ": PT_LOAD segments overlap at physical address " + std::to_string(loads[i].paddr));
    return loads;
}

constexpr uint64_t kChunk = 8u << 20;

// Copies filesz bytes of each segment; the zero tail up to memsz is written by the caller's layout.
void copy_bytes(int in, uint64_t off, uint64_t n, int out, uint64_t out_off, std::vector<char> &buf,
                const std::string &in_name, const std::string &out_name) {
    while (n > 0) {
        uint64_t c = std::min<uint64_t>(n, buf.size());
        pread_all(in, buf.data(), c, off, in_name);
        pwrite_all(out, buf.data(), c, out_off, out_name);
        n -= c; off += c; out_off += c;
    }
}

void write_raw(int in, const std::string &in_name, const std::vector<LoadSegment> &loads, const std::string &out) {
    deepmem::AtomicFile o(out);
    std::vector<char> buf(kChunk);
    for (const auto &s : loads) copy_bytes(in, s.offset, s.filesz, o.fd(), s.paddr, buf, in_name, o.temp_path());
    const uint64_t end = loads.back().paddr + loads.back().memsz;
    if (::ftruncate(o.fd(), static_cast<off_t>(end)) < 0) throw Error(o.temp_path() + ": ftruncate to " + std::to_string(end) + " failed: " + errno_text());
    o.commit();
}

void write_lime(int in, const std::string &in_name, const std::vector<LoadSegment> &loads, const std::string &out) {
    // Merge physically contiguous segments into one LiME range.
    struct Range { uint64_t start, end; std::vector<LoadSegment> parts; };
    std::vector<Range> ranges;
    for (const auto &s : loads) {
        if (!ranges.empty() && ranges.back().end == s.paddr) { ranges.back().end += s.memsz; ranges.back().parts.push_back(s); }
        else ranges.push_back({s.paddr, s.paddr + s.memsz, {s}});
    }
    deepmem::AtomicFile o(out);
    std::vector<char> buf(kChunk);
    uint64_t pos = 0;
    for (const auto &r : ranges) {
        unsigned char h[32] = {};
        const uint32_t magic = 0x4C694D45, version = 1;
        const uint64_t last = r.end - 1;  // LiME's end address is inclusive
        std::memcpy(h, &magic, 4); std::memcpy(h + 4, &version, 4);
        std::memcpy(h + 8, &r.start, 8); std::memcpy(h + 16, &last, 8);
        pwrite_all(o.fd(), h, sizeof h, pos, o.temp_path());
        pos += sizeof h;
        for (const auto &s : r.parts) {
            copy_bytes(in, s.offset, s.filesz, o.fd(), pos, buf, in_name, o.temp_path());
            if (s.memsz > s.filesz) {   // zero tail: write real zeros so the range is dense
                std::vector<char> zero(std::min<uint64_t>(s.memsz - s.filesz, kChunk), 0);
                for (uint64_t z = 0; z < s.memsz - s.filesz; z += zero.size())
                    pwrite_all(o.fd(), zero.data(), std::min<uint64_t>(zero.size(), s.memsz - s.filesz - z), pos + s.filesz + z, o.temp_path());
            }
            pos += s.memsz;
        }
    }
    o.commit();
}

}  // namespace

int main(int argc, char **argv) {
    try {
        std::string in_path, raw, lime;
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            if ((a == "--raw" || a == "--lime") && i + 1 < argc) (a == "--raw" ? raw : lime) = argv[++i];
            else if (a == "-h" || a == "--help") {
                std::puts("usage: dm-dump-formats DUMP.elf [--raw OUT.raw] [--lime OUT.lime]");
                return 0;
            } else if (!a.empty() && a[0] != '-' && in_path.empty()) in_path = a;
            else throw Error("unexpected argument '" + a + "'; usage: dm-dump-formats DUMP.elf [--raw OUT.raw] [--lime OUT.lime]");
        }
        if (in_path.empty() || (raw.empty() && lime.empty()))
            throw Error("usage: dm-dump-formats DUMP.elf [--raw OUT.raw] [--lime OUT.lime] (give an ELF and at least one output)");
        const std::string inputs[] = {in_path};
        const std::string outputs[] = {raw, lime};
        deepmem::refuse_output_over_inputs(outputs, inputs);
        if (!raw.empty() && (raw == lime || deepmem::same_file(raw, lime)))
            throw Error("--raw and --lime name the same file " + raw);
        File in(::open(in_path.c_str(), O_RDONLY | O_CLOEXEC));
        if (in.fd < 0) throw Error(in_path + ": cannot open: " + errno_text());
        const auto loads = read_elf_loads(in.fd, in_path);
        if (!raw.empty()) write_raw(in.fd, in_path, loads, raw);
        if (!lime.empty()) write_lime(in.fd, in_path, loads, lime);
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "dm-dump-formats: %s\n", e.what());
        return 1;
    }
}
