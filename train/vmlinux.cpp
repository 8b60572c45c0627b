// Kernel image → BTF: bzImage payload decompression, the vmlinux ELF section table, and the
// "Linux version" banner. Payloads: xz via liblzma (Debian's amd64 and rt kernels are built with
// CONFIG_KERNEL_XZ; liblzma is the reference decoder incl. the x86 BCJ filter the kernel uses) and
// lz4 via liblz4 (Debian's cloud kernels use CONFIG_KERNEL_LZ4, the "legacy" lz4 frame) and zstd
// via libzstd (Debian's 6.12 kernels, bookworm-backports and trixie, use CONFIG_KERNEL_ZSTD).
#include "train/btf.hpp"

#include "graph/layers.hpp"

#include <lz4.h>
#include <lzma.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace deepmem::btf {

namespace {

constexpr uint8_t kXzMagic[6] = {0xFD, '7', 'z', 'X', 'Z', 0x00};
constexpr uint64_t kMaxVmlinux = 1ull << 30;   // a decompressed kernel larger than 1 GiB is not one

template <class T>
T rd(std::span<const uint8_t> b, uint64_t off) {
    if (off > b.size() || b.size() - off < sizeof(T)) throw FormatError(off, "field inside the file");
    T v;
    std::memcpy(&v, b.data() + off, sizeof(T));
    return v;
}

const char* compression_name(std::span<const uint8_t> p) {
    auto starts = [&](std::initializer_list<uint8_t> m) {
        return p.size() >= m.size() && std::equal(m.begin(), m.end(), p.begin());
    };
    if (starts({0x1F, 0x8B})) return "gzip";
    if (starts({0x28, 0xB5, 0x2F, 0xFD})) return "zstd";
    if (starts({0x42, 0x5A, 0x68})) return "bzip2";
    if (starts({0x5D, 0x00, 0x00})) return "lzma";
    if (starts({0x02, 0x21, 0x4C, 0x18})) return "lz4";
    if (starts({0x89, 0x4C, 0x5A, 0x4F})) return "lzo";
    return nullptr;
}

// Decodes exactly one xz stream from the start of `in` (the bzImage appends 4 size bytes after it).
std::vector<uint8_t> xz_decode(std::span<const uint8_t> in, uint64_t where) {
    lzma_stream s = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&s, kMaxVmlinux * 2, 0) != LZMA_OK) throw InputError("liblzma: cannot initialise decoder");
    std::vector<uint8_t> out(std::min<uint64_t>(in.size() * 4 + 4096, kMaxVmlinux));
    s.next_in = in.data();
    s.avail_in = in.size();
    s.next_out = out.data();
    s.avail_out = out.size();
    lzma_ret r;
    while (true) {
        r = lzma_code(&s, LZMA_FINISH);
        if (r == LZMA_STREAM_END) break;
        if (r == LZMA_OK || r == LZMA_BUF_ERROR) {
            if (s.avail_out == 0) {
                if (out.size() >= kMaxVmlinux) {
                    lzma_end(&s);
                    throw FormatError(where, "a kernel payload decompressing to at most 1 GiB");
                }
                uint64_t used = out.size();
                out.resize(std::min<uint64_t>(used * 2, kMaxVmlinux));
                s.next_out = out.data() + used;
                s.avail_out = out.size() - used;
                continue;
            }
            if (r == LZMA_OK) continue;
        }
        uint64_t at = where + (in.size() - s.avail_in);
        lzma_end(&s);
        throw FormatError(at, "a valid xz stream (liblzma error " + std::to_string(static_cast<int>(r)) + ")");
    }
    out.resize(s.total_out);
    lzma_end(&s);
    return out;
}

// The lz4 "legacy" frame the kernel's build writes (lz4 -l): magic 0x184C2102, then blocks of
// {u32 compressed size, data}, each decompressing to at most 8 MiB; the bzImage payload then ends
// with the 4-byte uncompressed size (scripts/Makefile.lib size_append), checked here.
std::vector<uint8_t> lz4_legacy_decode(std::span<const uint8_t> in, uint64_t where) {
    constexpr uint32_t kMagic = 0x184C2102;
    constexpr uint64_t kChunk = 8u << 20;
    if (in.size() < 4 || rd<uint32_t>(in, 0) != kMagic) throw FormatError(where, "lz4 legacy magic 0x184c2102");
    std::vector<uint8_t> out;
    uint64_t pos = 4, blocks = 0;
    while (in.size() - pos >= 4) {
        const uint32_t cs = rd<uint32_t>(in, pos);
        if (cs == kMagic) {   // concatenated frames
            pos += 4;
            continue;
        }
        if (in.size() - pos == 4 && blocks > 0) {   // the appended uncompressed size
            if (cs != static_cast<uint32_t>(out.size()))
                throw FormatError(where + pos, "appended size " + std::to_string(out.size()) + " of the lz4 payload");
            return out;
        }
        if (cs == 0 || cs > static_cast<uint32_t>(LZ4_compressBound(static_cast<int>(kChunk))) || in.size() - pos - 4 < cs)
            throw FormatError(where + pos, "an lz4 block size inside the payload");
        if (out.size() + kChunk > kMaxVmlinux) throw FormatError(where + pos, "a kernel payload decompressing to at most 1 GiB");
        const uint64_t used = out.size();
        out.resize(used + kChunk);
        const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + pos + 4),
                                          reinterpret_cast<char*>(out.data() + used), static_cast<int>(cs),
                                          static_cast<int>(kChunk));
        if (n < 0) throw FormatError(where + pos, "a valid lz4 block");
        out.resize(used + static_cast<uint64_t>(n));
        pos += 4 + cs;
        ++blocks;
    }
    if (pos != in.size()) throw FormatError(where + pos, "an lz4 block header (truncated payload)");
    return out;
}

// Decodes the first zstd frame of `in` (the kernel's scripts/Makefile.lib `zstd22`: one frame, level
// 22, window up to 2^27, followed by the 4-byte size_append). A frame that ends early is an error.
std::vector<uint8_t> zstd_decode(std::span<const uint8_t> in, uint64_t where) {
    struct Free {
        void operator()(ZSTD_DStream* s) const { ZSTD_freeDStream(s); }
    };
    std::unique_ptr<ZSTD_DStream, Free> s(ZSTD_createDStream());
    if (!s) throw InputError("libzstd: cannot create a decoder");
    ZSTD_DCtx_setParameter(s.get(), ZSTD_d_windowLogMax, 30);   // the window is bounded like the output
    std::vector<uint8_t> out(std::min<uint64_t>(in.size() * 4 + 4096, kMaxVmlinux));
    ZSTD_inBuffer ib{in.data(), in.size(), 0};
    ZSTD_outBuffer ob{out.data(), out.size(), 0};
    while (true) {
        const size_t r = ZSTD_decompressStream(s.get(), &ob, &ib);
        if (ZSTD_isError(r))
            throw FormatError(where + ib.pos, std::string("a valid zstd frame (libzstd: ") + ZSTD_getErrorName(r) + ")");
        if (r == 0) break;   // the frame is complete
        if (ob.pos == ob.size) {
            if (out.size() >= kMaxVmlinux) throw FormatError(where + ib.pos, "a kernel payload decompressing to at most 1 GiB");
            out.resize(std::min<uint64_t>(out.size() * 2, kMaxVmlinux));
            ob.dst = out.data();
            ob.size = out.size();
        } else if (ib.pos == ib.size) {
            throw FormatError(where + ib.pos, "the rest of the zstd frame (truncated payload)");
        }
    }
    out.resize(ob.pos);
    return out;
}

}  // namespace

std::vector<uint8_t> decompress_bzimage(std::span<const uint8_t> image) {
    // Boot protocol header (Documentation/x86/boot.rst): "HdrS" at 0x202, version at 0x206,
    // setup_sects at 0x1f1, payload_offset/payload_length at 0x248 (protocol ≥ 2.08), relative to
    // the protected-mode code that starts after (setup_sects + 1) * 512 bytes.
    if (image.size() >= 0x250 && std::memcmp(image.data() + 0x202, "HdrS", 4) == 0 &&
        rd<uint16_t>(image, 0x206) >= 0x208) {
        uint64_t setup_sects = image[0x1f1] ? image[0x1f1] : 4;
        uint64_t pm = (setup_sects + 1) * 512;
        uint64_t off = pm + rd<uint32_t>(image, 0x248), len = rd<uint32_t>(image, 0x24c);
        if (off > image.size() || image.size() - off < len)
            throw FormatError(0x248, "bzImage payload inside the file");
        auto payload = image.subspan(off, len);
        if (payload.size() >= 6 && std::memcmp(payload.data(), kXzMagic, 6) == 0) return xz_decode(payload, off);
        if (payload.size() >= 4 && rd<uint32_t>(payload, 0) == 0x184C2102) return lz4_legacy_decode(payload, off);
        if (payload.size() >= 4 && rd<uint32_t>(payload, 0) == 0xFD2FB528) return zstd_decode(payload, off);
        if (const char* c = compression_name(payload))
            throw InputError(std::string("bzImage payload is ") + c +
                             "-compressed; only xz, lz4 and zstd are supported (pass an uncompressed vmlinux instead)");
        throw FormatError(off, "a known compression magic at the bzImage payload");
    }
    // Not a bzImage header we understand: the first xz stream anywhere in the file.
    auto it = std::search(image.begin(), image.end(), std::begin(kXzMagic), std::end(kXzMagic));
    if (it == image.end()) throw InputError("no bzImage header and no xz stream in the kernel file");
    uint64_t off = static_cast<uint64_t>(it - image.begin());
    return xz_decode(image.subspan(off), off);
}

std::optional<std::span<const uint8_t>> elf_section(std::span<const uint8_t> elf, std::string_view name) {
    if (elf.size() < 52 || std::memcmp(elf.data(), "\x7f" "ELF", 4) != 0) throw FormatError(0, "ELF magic");
    if (elf[4] != 1 && elf[4] != 2) throw FormatError(4, "ELF class 1 (32-bit) or 2 (64-bit)");
    if (elf[5] != 1) throw FormatError(5, "a little-endian ELF");
    // ELF32 and ELF64 differ only in where the header fields sit and how wide they are.
    const bool is64 = elf[4] == 2;
    if (is64 && elf.size() < 64) throw FormatError(0, "a 64-byte ELF64 header");
    auto word = [&](uint64_t off) -> uint64_t { return is64 ? rd<uint64_t>(elf, off) : rd<uint32_t>(elf, off); };
    const uint64_t shoff = word(is64 ? 0x28 : 0x20);
    const uint64_t e = is64 ? 0x3a : 0x2e;   // e_shentsize, then e_shnum, e_shstrndx
    const uint64_t shentsize = rd<uint16_t>(elf, e), shnum = rd<uint16_t>(elf, e + 2), shstrndx = rd<uint16_t>(elf, e + 4);
    const uint64_t min_ent = is64 ? 64 : 40, f_off = is64 ? 0x18 : 0x10, f_size = is64 ? 0x20 : 0x14;
    if (shnum == 0) return std::nullopt;
    if (shentsize < min_ent) throw FormatError(e, "section header entries of at least " + std::to_string(min_ent) + " bytes");
    if (shoff > elf.size() || (elf.size() - shoff) / shentsize < shnum)
        throw FormatError(is64 ? 0x28 : 0x20, "section header table inside the file");
    if (shstrndx >= shnum) throw FormatError(e + 4, "section name table index below e_shnum");
    auto sh = [&](uint64_t i) { return shoff + i * shentsize; };
    auto bytes_of = [&](uint64_t i) -> std::span<const uint8_t> {
        uint64_t h = sh(i);
        uint32_t type = rd<uint32_t>(elf, h + 4);
        uint64_t off = word(h + f_off), size = word(h + f_size);
        if (type == 8 /* SHT_NOBITS */) return {};
        if (off > elf.size() || elf.size() - off < size) throw FormatError(h + f_off, "section contents inside the file");
        return elf.subspan(off, size);
    };
    auto names = bytes_of(shstrndx);
    for (uint64_t i = 0; i < shnum; ++i) {
        uint64_t no = rd<uint32_t>(elf, sh(i));
        if (no >= names.size()) throw FormatError(sh(i), "section name inside the name table");
        auto rest = names.subspan(no);
        auto nul = std::find(rest.begin(), rest.end(), uint8_t{0});
        if (nul == rest.end()) throw FormatError(sh(i), "NUL-terminated section name");
        std::string_view n(reinterpret_cast<const char*>(rest.data()), static_cast<size_t>(nul - rest.begin()));
        if (n == name) return bytes_of(i);
    }
    return std::nullopt;
}

std::vector<std::string> find_linux_banners(std::span<const uint8_t> image) {
    static const std::string_view needle = "Linux version ";
    std::vector<std::string> out;
    for (auto it = image.begin();; ++it) {
        it = std::search(it, image.end(), needle.begin(), needle.end());
        if (it == image.end()) return out;
        auto end = std::find(it, std::min(image.end(), it + 1024), uint8_t{'\n'});
        std::string line(it, end);
        // The banner is "Linux version <release> (<builder>) …"; skip printf formats and prose.
        if (line.find('%') == std::string::npos && line.find(" (") != std::string::npos &&
            line.find('\0') == std::string::npos)
            out.push_back(std::move(line));
    }
}

KernelImage load_kernel_image(const std::string& path) {
    MappedFile f(path);
    auto bytes = f.bytes();
    std::vector<uint8_t> decompressed;
    std::span<const uint8_t> vmlinux = bytes;
    if (bytes.size() >= 4 && rd<uint16_t>(bytes, 0) == 0xEB9F) {
        return KernelImage{Btf::parse(bytes), {}};
    }
    if (bytes.size() < 4 || std::memcmp(bytes.data(), "\x7f" "ELF", 4) != 0) {
        decompressed = decompress_bzimage(bytes);
        vmlinux = decompressed;
    }
    auto sec = elf_section(vmlinux, ".BTF");
    if (!sec) throw InputError(path + ": kernel has no .BTF section (built without CONFIG_DEBUG_INFO_BTF)");
    auto banners = find_linux_banners(vmlinux);
    try {
        return KernelImage{Btf::parse(*sec), std::move(banners)};
    } catch (const FormatError& e) {
        // Report the offset in the ELF file, which a reader can find with a hex viewer.
        uint64_t base = static_cast<uint64_t>(sec->data() - vmlinux.data());
        throw FormatError(base + e.offset(), std::string(".BTF section: ") + e.what());
    }
}

Btf load_kernel_btf(const std::string& path) { return load_kernel_image(path).btf; }

}  // namespace deepmem::btf
