// The kernel's BTF and kallsyms tables found in the dump's kernel image; the formats and where
// each check comes from are in train/kernel_from_dump.hpp.
#include "train/kernel_from_dump.hpp"

#include "graph/layers.hpp"

#include <algorithm>
#include <filesystem>
#include <cstring>
#include <string.h>   // memmem (GNU)
#include <tuple>

namespace deepmem {

namespace {

// x86-64 __START_KERNEL_map and MODULES_VADDR (KERNEL_IMAGE_SIZE = 1 GiB with KASLR).
constexpr uint64_t kImageStart = 0xffffffff80000000ull, kImageEnd = 0xffffffffc0000000ull;
// The BTF search's bounds (attacker 107: 16 headers of 64 MiB blobs of valid types, each read and
// parsed whole before it was found to lack task_struct, took 83 s and 1.31 GB). Debian's vmlinux BTF:
// 3.4 MiB (5.10), 4.1 MiB (6.1), 4.7 MiB (6.12).
constexpr uint64_t kMaxBtf = 16ull << 20;          // bytes of one blob: no kernel's is larger
constexpr uint64_t kMaxBtfReadBytes = 256ull << 20;   // blob bytes read (for the names check) in all
constexpr uint64_t kMaxBtfParsedBytes = 32ull << 20;  // blob bytes parsed in all
constexpr unsigned kMaxBtfParses = 16;             // headers fully parsed before giving up
constexpr uint64_t kMaxNamesBytes = 64ull << 20;   // kallsyms_names: 1.2 MiB (6.1), 1.3 MiB (5.10), 2.2 MiB (6.12) in Debian's kernels
constexpr unsigned kMaxKallsymsCandidates = 64;    // kallsyms_token_index-like tables followed (a kernel has one)
constexpr uint64_t kMaxKallsyms = 1ull << 24;    // seqs_of_names stores indices in 3 bytes
constexpr uint64_t kMaxSymbolName = 1024;        // KSYM_NAME_LEN is 512 since 6.1 (128 before)

// Contiguous bytes of the kernel image mapping, by virtual address.
struct ImageSpan {
    uint64_t vaddr = 0;
    std::span<const uint8_t> bytes;
};

std::vector<ImageSpan> image_spans(const TranslationLayer& tl) {
    const PhysicalLayer& phys = tl.physical();
    const bool is64 = tl.word_size() == 8;
    std::vector<ImageSpan> out;
    for (const VirtualRun& r : tl.kernel_runs()) {
        uint64_t lo = r.vaddr, hi = r.vaddr + r.size;
        if (is64) {
            lo = std::max(lo, kImageStart);
            hi = std::min(hi, kImageEnd);
            if (lo >= hi) continue;
        }
        const uint64_t pa = r.paddr + (lo - r.vaddr), n = hi - lo;
        if (const uint8_t* b = phys.find(pa, n)) {
            out.push_back({lo, {b, n}});
            continue;
        }
        for (uint64_t p = 0; p < n; p += 4096) {   // the run straddles dump runs: page by page
            const uint64_t len = std::min<uint64_t>(4096, n - p);
            const uint8_t* b = phys.find(pa + p, len);
            if (!b) continue;
            if (!out.empty() && out.back().vaddr + out.back().bytes.size() == lo + p &&
                out.back().bytes.data() + out.back().bytes.size() == b)
                out.back().bytes = {out.back().bytes.data(), out.back().bytes.size() + len};
            else
                out.push_back({lo + p, {b, len}});
        }
    }
    return out;
}

// Drops what a forward scan of one span has passed from the process (PhysicalLayer::Releaser;
// reads behind it refault from the page cache): the image window is tens of MiB of file pages
// (54 MiB of the dev dump), which dmdetect's field reading otherwise kept beside its own data.
// The span's rest goes when the scan leaves it (its end, a break or a return). The search's
// `interrupt`, when set, is called as each MiB is released.
class ScanRelease {
public:
    ScanRelease(const PhysicalLayer& phys, std::span<const uint8_t> span, const InterruptFn& interrupt) noexcept
        : releaser_(phys), interrupt_(interrupt), done_(span.data()), end_(span.data() + span.size()) {}
    ~ScanRelease() {
        if (end_ > done_) releaser_.add(done_, static_cast<uint64_t>(end_ - done_));
    }
    ScanRelease(const ScanRelease&) = delete;
    ScanRelease& operator=(const ScanRelease&) = delete;
    void passed(const uint8_t* p) {   // every byte before p is scanned (may throw: the interrupt)
        if (p - done_ >= kStep) {
            releaser_.add(done_, static_cast<uint64_t>(p - done_));
            done_ = p;
            if (interrupt_) interrupt_();
        }
    }
private:
    static constexpr ptrdiff_t kStep = ptrdiff_t{1} << 20;
    PhysicalLayer::Releaser releaser_;
    const InterruptFn& interrupt_;
    const uint8_t* done_;
    const uint8_t* const end_;
};

uint64_t searched_bytes(const std::vector<ImageSpan>& spans) {
    uint64_t n = 0;
    for (const auto& s : spans) n += s.bytes.size();
    return n;
}

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1u << 19)) >> 20) + " MiB"; }

template <class T>
std::optional<T> read_le(const TranslationLayer& tl, uint64_t va) {
    T v;
    if (!tl.read_virtual(va, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), sizeof v))) return std::nullopt;
    return v;   // x86: little-endian
}

std::optional<std::vector<uint8_t>> read_bytes(const TranslationLayer& tl, uint64_t va, uint64_t n) {
    std::vector<uint8_t> b(n);
    if (!tl.read_virtual(va, b)) return std::nullopt;
    return b;
}

uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// What a BTF must name to describe a Linux kernel (describes_linux, and names_linux before a parse).
constexpr const char* kTaskMembers[] = {"pid", "tgid", "comm", "tasks"};
constexpr const char* kOtherStructs[] = {"cred", "mm_struct", "file"};

// Empty when `b` describes a Linux kernel, else what it lacks.
std::string describes_linux(const btf::Btf& b) {
    auto task = b.find("task_struct");
    if (!task) return "no struct task_struct";
    for (const char* m : kTaskMembers)
        if (!b.member(*task, m)) return std::string("task_struct has no member ") + m;
    auto list = b.find("list_head");
    if (!list || b.size_of(*list) != 2 * b.pointer_size() || !b.member(*list, "next") || !b.member(*list, "prev"))
        return "no struct list_head {next, prev}";
    for (const char* s : kOtherStructs)
        if (!b.find(s)) return std::string("no struct ") + s;
    return {};
}

// What describes_linux needs by name, looked for in a BTF string section before it is parsed: "" when
// every name is there, else the first missing one.
std::string names_linux(std::span<const uint8_t> strings) {
    auto lacks = [&](const char* name) {
        std::string key = std::string(1, '\0') + name;
        key.push_back('\0');
        return !::memmem(strings.data(), strings.size(), key.data(), key.size());
    };
    std::vector<const char*> names{"task_struct", "list_head", "next", "prev"};
    names.insert(names.begin() + 1, std::begin(kTaskMembers), std::end(kTaskMembers));
    names.insert(names.end(), std::begin(kOtherStructs), std::end(kOtherStructs));
    for (const char* name : names)
        if (lacks(name)) return std::string("no name ") + name + " in its strings";
    return {};
}

}  // namespace

// ---- BTF ------------------------------------------------------------------------------------

namespace {

// BTF candidates tried one by one within the search's bounds (kMaxBtfParses, kMaxBtfParsedBytes,
// kMaxBtfReadBytes): the header checked, the blob read, its names checked, parsed, a kernel's.
struct BtfCandidates {
    const TranslationLayer& tl;
    const InterruptFn& interrupt;
    unsigned headers = 0, parsed = 0;
    uint64_t read_total = 0, parsed_bytes = 0;
    bool bounded = false;      // the bounds reached: no more candidates
    std::string last_reason;   // why the last header that looked right was not a kernel's BTF

    std::optional<DumpBtf> at(uint64_t va) {
        uint32_t h[6];
        if (!tl.read_virtual(va, std::span<uint8_t>(reinterpret_cast<uint8_t*>(h), sizeof h))) return std::nullopt;
        const uint64_t magic = h[0], hdr_len = h[1], type_off = h[2], type_len = h[3], str_off = h[4], str_len = h[5];
        const uint64_t type_end = type_off + type_len, str_end = str_off + str_len;
        if (magic != 0x0001eb9f || hdr_len != 24 || type_off % 4 || type_len < 12 || str_len < 2 ||   // 0xeb9f LE, version 1, flags 0
            !(type_end <= str_off || str_end <= type_off) || std::max(type_end, str_end) > kMaxBtf)
            return std::nullopt;
        ++headers;
        const uint64_t size = hdr_len + std::max(type_end, str_end);
        auto bound = [&] {
            bounded = true;
            last_reason = std::to_string(headers) + " BTF-like headers, none a kernel's before the search's bound (" +
                          std::to_string(kMaxBtfParses) + " parsed, " + mib(kMaxBtfParsedBytes) + " parsed or " +
                          mib(kMaxBtfReadBytes) + " read in all)";
            return std::nullopt;
        };
        if (read_total + size > kMaxBtfReadBytes) return bound();
        if (interrupt) interrupt();   // (up to kMaxBtf bytes read and parsed next)
        read_total += size;
        auto blob = read_bytes(tl, va, size);
        if (!blob) {
            last_reason = "BTF header at " + hex(va) + " but its " + std::to_string(size) + " bytes are not all in the dump";
            return std::nullopt;
        }
        // A kernel's names first, before the blob is parsed (its string section, NUL-delimited)
        if (std::string lack = names_linux(std::span<const uint8_t>(*blob).subspan(hdr_len + str_off, str_len)); !lack.empty()) {
            last_reason = "BTF at " + hex(va) + " is no kernel's: " + lack;
            return std::nullopt;
        }
        if (parsed >= kMaxBtfParses || parsed_bytes + size > kMaxBtfParsedBytes) return bound();
        ++parsed, parsed_bytes += size;
        try {
            btf::Btf b = btf::Btf::parse(*blob);
            if (std::string lack = describes_linux(b); !lack.empty()) {
                last_reason = "BTF at " + hex(va) + " is no kernel's: " + lack;
                return std::nullopt;
            }
            return DumpBtf{std::move(b), va, size};
        } catch (const std::exception& e) {   // FormatError, or InputError from size_of
            last_reason = "BTF at " + hex(va) + " rejected: " + e.what();
        }
        return std::nullopt;
    }
};

}  // namespace

std::optional<DumpBtf> find_btf(const TranslationLayer& tl, std::string* why, const InterruptFn& interrupt) {
    const auto spans = image_spans(tl);
    BtfCandidates c{tl, interrupt};
    for (const ImageSpan& s : spans) {
        if (c.bounded) break;
        const uint8_t* const begin = s.bytes.data();
        const uint8_t* const end = begin + s.bytes.size();
        ScanRelease scanned(tl.physical(), s.bytes, interrupt);
        for (const uint8_t* p = begin; end - p >= 4 && !c.bounded; ++p) {
            p = static_cast<const uint8_t*>(std::memchr(p, 0x9f, static_cast<size_t>(end - p - 3)));
            if (!p) break;
            scanned.passed(p);
            if (p[1] != 0xeb || p[2] != 1 || p[3] != 0) continue;   // magic 0xeb9f LE, version 1, flags 0
            if (auto b = c.at(s.vaddr + static_cast<uint64_t>(p - begin))) return b;
        }
    }
    if (why) {
        *why = c.headers == 0 ? "no BTF header (magic 0xeb9f, version 1, hdr_len 24) in the kernel image (" +
                                    mib(searched_bytes(spans)) + " searched)"
                              : c.last_reason;
    }
    return std::nullopt;
}

std::optional<DumpBtf> btf_at(const TranslationLayer& tl, uint64_t vaddr, std::string* why) {
    static const InterruptFn none;
    BtfCandidates c{tl, none};
    auto b = c.at(vaddr);
    if (!b && why) *why = c.headers == 0 ? "no BTF header at " + hex(vaddr) : c.last_reason;
    return b;
}

// ---- kallsyms ---------------------------------------------------------------------------------

namespace {

struct Finder {
    const TranslationLayer& tl;
    uint64_t word;              // PTR size and ALGN of scripts/kallsyms.c output
    std::string reason;         // why the last promising candidate failed

    // kallsyms_token_index at `ti` (512 bytes in `idx`): the token table before it, or nullopt.
    std::optional<std::pair<uint64_t, std::vector<std::string>>> token_table(uint64_t ti, const uint16_t* idx) {
        // The table ends at ti minus up to ALGN−1 zero bytes; its last token ends with a NUL.
        const uint64_t span = 1024;
        if (ti < span) return std::nullopt;
        auto tail = read_bytes(tl, ti - span, span);
        if (!tail) return std::nullopt;
        for (uint64_t pad = 0; pad < word; ++pad) {
            const uint64_t end = span - pad;   // index into tail, one past the last token's NUL
            if ((*tail)[end - 1] != 0 || (*tail)[end - 2] == 0) continue;
            uint64_t s = end - 2;
            while (s > 0 && (*tail)[s - 1] != 0) --s;
            if (s == 0) continue;
            const uint64_t table = ti - pad - (end - s) - idx[255];
            if ((ti - span + s) < idx[255] || table % word) continue;
            const uint64_t size = idx[255] + (end - s);
            auto bytes = read_bytes(tl, table, size);
            if (!bytes) continue;
            std::vector<std::string> tokens(256);
            bool ok = true;
            for (unsigned i = 0; i < 256 && ok; ++i) {
                const uint64_t a = idx[i], b = i < 255 ? idx[i + 1] : size;   // [a, b) = token and its NUL
                for (uint64_t k = a; k + 1 < b && ok; ++k) ok = (*bytes)[k] >= 0x20 && (*bytes)[k] < 0x7f;
                ok = ok && (*bytes)[b - 1] == 0;
                if (ok) tokens[i].assign(reinterpret_cast<const char*>(bytes->data() + a), b - 1 - a);
            }
            if (ok) return std::pair{table, std::move(tokens)};
        }
        return std::nullopt;
    }

    // kallsyms_markers ending at `end`: u32 values strictly increasing from 0, starting aligned.
    std::optional<std::pair<uint64_t, std::vector<uint32_t>>> markers(uint64_t end) {
        std::vector<uint32_t> rev;
        uint64_t at = end;
        while (true) {
            if (at < 4 || rev.size() > kMaxKallsyms / 256) return std::nullopt;
            at -= 4;
            auto v = read_le<uint32_t>(tl, at);
            if (!v || (!rev.empty() && *v >= rev.back())) return std::nullopt;
            rev.push_back(*v);
            if (*v == 0) break;
        }
        if (at % word) return std::nullopt;
        std::reverse(rev.begin(), rev.end());
        return std::pair{at, std::move(rev)};
    }

    // Decodes `count` names from `names` (the bytes from kallsyms_names up to the markers);
    // nullopt unless every 256th starts where its marker says and the stream ends in the padding.
    std::optional<std::vector<KernelSymbol>> decode(std::span<const uint8_t> names, uint64_t count,
                                                    const std::vector<uint32_t>& marks,
                                                    const std::vector<std::string>& tokens, bool first_block_only) {
        std::vector<KernelSymbol> out;
        if (!first_block_only) out.reserve(count);
        uint64_t pos = 0;
        const uint64_t n = first_block_only ? std::min<uint64_t>(count, 256) : count;
        for (uint64_t i = 0; i < n; ++i) {
            if (i % 256 == 0 && marks[i / 256] != pos) return std::nullopt;
            if (pos >= names.size()) return std::nullopt;
            uint64_t len = names[pos], step = 1;
            if (len & 0x80) {   // "big" symbol (6.1+): two-byte ULEB128 length
                if (pos + 1 >= names.size()) return std::nullopt;
                len = (len & 0x7f) | (uint64_t{names[pos + 1]} << 7);
                step = 2;
            }
            if (len == 0 || names.size() - pos - step < len) return std::nullopt;
            std::string s;
            for (uint64_t k = 0; k < len; ++k) {
                s += tokens[names[pos + step + k]];
                if (s.size() > kMaxSymbolName) return std::nullopt;
            }
            if (s.size() < 2) return std::nullopt;   // the type letter and at least one character
            if (!first_block_only) out.push_back({0, s[0], s.substr(1), {}});
            pos += step + len;
        }
        if (first_block_only) {
            if (count > 256 && marks[1] != pos) return std::nullopt;
            if (count <= 256 && names.size() - pos >= word) return std::nullopt;
            return out;
        }
        if (names.size() < pos || names.size() - pos >= word) return std::nullopt;   // only padding after
        return out;
    }

    // Addresses from kallsyms_offsets at `off` and kallsyms_relative_base at `rb`; nullopt unless
    // relative_base is a kernel-image address and the addresses are sorted (scripts/kallsyms sorts).
    std::optional<std::vector<uint64_t>> addresses(uint64_t off, uint64_t rb_at, uint64_t count, bool& abs_percpu) {
        uint64_t rb = 0;
        if (word == 8) {
            auto v = read_le<uint64_t>(tl, rb_at);
            if (!v || *v < kImageStart || *v >= kImageEnd) return std::nullopt;
            rb = *v;
        } else {
            auto v = read_le<uint32_t>(tl, rb_at);
            if (!v || *v < tl.kernel_base()) return std::nullopt;
            rb = *v;
        }
        auto raw = read_bytes(tl, off, 4 * count);
        if (!raw) return std::nullopt;
        std::vector<int32_t> o(count);
        std::memcpy(o.data(), raw->data(), 4 * count);
        abs_percpu = std::any_of(o.begin(), o.end(), [](int32_t v) { return v < 0; });
        std::vector<uint64_t> a(count);
        const uint64_t mask = word == 8 ? ~uint64_t{0} : 0xffffffffull;
        for (uint64_t i = 0; i < count; ++i) {
            if (!abs_percpu) a[i] = (rb + static_cast<uint32_t>(o[i])) & mask;
            else if (o[i] >= 0) a[i] = static_cast<uint64_t>(o[i]);
            else a[i] = (rb - 1 - static_cast<uint64_t>(static_cast<int64_t>(o[i]))) & mask;
            if (i > 0 && a[i] < a[i - 1]) return std::nullopt;
        }
        return a;
    }

    // kallsyms_markers followed by kallsyms_seqs_of_names (3-byte big-endian indices, a
    // permutation of 0..n−1) and then the token table at `table`: the layout of 6.2–6.3, also in
    // Debian's 6.1 updates. Markers start at some aligned P with markers[0] = 0, and
    // table = ALGN(ALGN(P + 4·⌈n/256⌉) + 3n), which gives n from P.
    std::vector<std::tuple<uint64_t, std::vector<uint32_t>, uint64_t>> markers_before_seqs(uint64_t table) {
        std::vector<std::tuple<uint64_t, std::vector<uint32_t>, uint64_t>> out;
        constexpr uint64_t kMaxSeqSyms = 1u << 21;
        const uint64_t window = 3 * kMaxSeqSyms + 4 * kMaxSeqSyms / 256 + 4 * word;
        // The readable stretch just before the table (probed page by page), read once.
        uint64_t lo = table;
        uint8_t probe[1];
        while (table - lo < window && lo >= 4096) {
            const uint64_t from = (lo - 1) / 4096 * 4096;
            if (!tl.read_virtual(from, probe)) break;
            lo = from;
        }
        std::vector<uint8_t> buf(table - lo);
        if (!tl.read_virtual(lo, buf)) return out;
        auto u32 = [&](uint64_t va) {
            uint32_t v;
            std::memcpy(&v, buf.data() + (va - lo), 4);
            return v;
        };
        for (uint64_t p = (table - 16) / word * word; p >= lo + word && p + 8 <= table; p -= word) {
            if (u32(p) != 0 || u32(p + 4) < 512 || u32(p + 4) > 256 * 257) continue;
            const uint64_t n0 = (table - p) * 256 / (3 * 256 + 4);
            for (uint64_t n = n0 > 8 ? n0 - 8 : 1; n <= n0 + 8; ++n) {
                const uint64_t m = (n + 255) / 256, seqs = round_up(p + 4 * m, word);
                if (m < 2 || round_up(seqs + 3 * n, word) != table) continue;
                // (checked in place: the markers (up to 8 k) and the seen bits (up to 2 M) made and zeroed
                // for every p and n before their first check cost 2.8 s per candidate, attacker 107)
                bool ok = true;
                for (uint64_t i = 1; i < m && ok; ++i) ok = u32(p + 4 * i) > u32(p + 4 * (i - 1));
                if (!ok) continue;
                std::vector<uint32_t> marks(m);
                for (uint64_t i = 0; i < m; ++i) marks[i] = u32(p + 4 * i);
                std::vector<bool> seen(n);
                for (uint64_t i = 0; i < n && ok; ++i) {
                    const uint8_t* b = buf.data() + (seqs - lo) + 3 * i;
                    const uint64_t v = uint64_t{b[0]} << 16 | uint64_t{b[1]} << 8 | b[2];
                    ok = v < n && !seen[v];
                    if (ok) seen[v] = true;
                }
                if (ok) out.emplace_back(p, std::move(marks), n);
            }
            if (!out.empty()) break;
        }
        return out;
    }

    // Everything from a token index at `ti`.
    std::optional<DumpKallsyms> from_token_index(uint64_t ti, const uint16_t* idx) {
        auto tt = token_table(ti, idx);
        if (!tt) return std::nullopt;
        const auto& [table, tokens] = *tt;
        reason = "kallsyms_token_table at " + hex(table) + ": no kallsyms_markers before it";
        // {markers address, markers, symbol count when seqs_of_names told it (else 0)}
        std::vector<std::tuple<uint64_t, std::vector<uint32_t>, uint64_t>> candidates;
        for (uint64_t pad = 0; pad < word; pad += 4)
            if (auto mk = markers(table - pad)) candidates.emplace_back(mk->first, std::move(mk->second), 0);
        if (candidates.empty()) candidates = markers_before_seqs(table);
        for (auto& [marks_at, marks, seq_count] : candidates)
            if (auto k = from_markers(ti, table, tokens, marks_at, marks, seq_count)) return k;
        return std::nullopt;
    }

    // kallsyms_num_syms and kallsyms_names before the markers at `marks_at`, then the offsets.
    std::optional<DumpKallsyms> from_markers(uint64_t ti, uint64_t table, const std::vector<std::string>& tokens,
                                             uint64_t marks_at, const std::vector<uint32_t>& marks, uint64_t seq_count) {
        const uint64_t m = marks.size();
        // kallsyms_names ends before the markers (up to ALGN−1 bytes of padding); it holds at
        // least 2 bytes for each name after the last marker, at most 2 + 255 each.
        reason = "kallsyms_markers at " + hex(marks_at) + ": no kallsyms_num_syms/kallsyms_names before them";
        const uint64_t last = marks.back();
        const uint64_t window = 256 * 257 + 2 * word;
        // (the last marker is where its block's names start: at most 2 + 255 bytes a name before it,
        // and the stream is read whole below; attacker 108's marker 0xffffffff made 4 GiB zeroed per
        // candidate before a read that failed)
        if (last > (m - 1) * 256 * 257 || last > kMaxNamesBytes || marks_at < last + window + 2 * word) return std::nullopt;
        const uint64_t lo = (marks_at - last - window) / word * word;
        uint8_t probe[1];
        for (uint64_t page = lo / 4096 * 4096; page < marks_at; page += 4096)   // all there, before it is made
            if (!tl.read_virtual(std::max(page, lo), probe)) return std::nullopt;
        auto buf = read_bytes(tl, lo, marks_at - lo);
        if (!buf) return std::nullopt;
        const uint64_t num_syms_field = round_up(4, word);   // .long then ALGN
        for (uint64_t names = (marks_at - last - 2) / word * word; names >= lo + num_syms_field; names -= word) {
            uint32_t count = 0, pad = 0;
            std::memcpy(&count, buf->data() + (names - num_syms_field - lo), 4);
            if (num_syms_field > 4) std::memcpy(&pad, buf->data() + (names - num_syms_field - lo) + 4, 4);
            if (pad != 0 || count == 0 || count > kMaxKallsyms || (count + 255) / 256 != m) continue;
            if (seq_count && count != seq_count) continue;
            const std::span<const uint8_t> stream(buf->data() + (names - lo), marks_at - names);
            if (!decode(stream, count, marks, tokens, true)) continue;
            auto syms = decode(stream, count, marks, tokens, false);
            if (!syms) {
                reason = "kallsyms_names at " + hex(names) + " does not decode to " + std::to_string(count) + " names";
                return std::nullopt;
            }
            KallsymsTables t;
            t.num_syms = names - num_syms_field;
            t.names = names;
            t.markers = marks_at;
            t.token_table = table;
            t.token_index = ti;
            t.count = count;
            // Offsets and relative_base: before num_syms (≤ 6.1) or after the token index (6.4+).
            const uint64_t off_bytes = round_up(4ull * count, word);
            std::vector<std::pair<uint64_t, uint64_t>> layouts;   // {offsets, relative_base}
            if (t.num_syms >= word + off_bytes) layouts.push_back({t.num_syms - word - off_bytes, t.num_syms - word});
            layouts.push_back({ti + 512, ti + 512 + off_bytes});
            std::optional<std::vector<uint64_t>> addrs;
            for (const auto& [off, rb] : layouts) {
                addrs = addresses(off, rb, count, t.absolute_percpu);
                if (addrs) {
                    t.offsets = off;
                    t.relative_base = rb;
                    break;
                }
            }
            if (!addrs) {
                reason = "kallsyms at " + hex(t.num_syms) + ": no sorted kallsyms_offsets/relative_base beside the tables";
                return std::nullopt;
            }
            for (uint64_t i = 0; i < count; ++i) (*syms)[i].address = (*addrs)[i];
            Kallsyms k;
            try {
                k = Kallsyms::from_symbols(std::move(*syms));
            } catch (const InputError& e) {
                reason = std::string("kallsyms in the dump: ") + e.what();
                return std::nullopt;
            }
            // The symbols must be this kernel's: linux_banner is "Linux version …".
            auto banner = k.address("linux_banner");
            static constexpr char kBanner[] = "Linux version ";
            char text[sizeof kBanner - 1] = {};
            if (!banner) {
                reason = "kallsyms in the dump has no linux_banner (kernel without CONFIG_KALLSYMS_ALL?)";
                return std::nullopt;
            }
            if (!tl.read_virtual(*banner, std::span<uint8_t>(reinterpret_cast<uint8_t*>(text), sizeof text)) ||
                std::memcmp(text, kBanner, sizeof text) != 0) {
                reason = "kallsyms in the dump: linux_banner at " + hex(*banner) + " does not read 'Linux version '";
                return std::nullopt;
            }
            return DumpKallsyms{std::move(k), t, true, {}};
        }
        return std::nullopt;
    }
};

// Whether k's tables lie in the read-only data its own symbols name (DumpKallsyms::in_own_rodata).
bool in_own_rodata(const DumpKallsyms& k, uint64_t word) {
    const KallsymsTables& t = k.tables;
    const uint64_t lo = std::min(t.offsets, t.num_syms), hi = std::max(t.token_index + 512, t.relative_base + word);
    const auto text = k.symbols.address("_text"), end = k.symbols.address("_end");
    if (!text || !end || lo < *text || hi > *end) return false;
    const auto ro = k.symbols.address("__start_rodata"), ro_end = k.symbols.address("__end_rodata");
    return ro && ro_end && *ro <= lo && hi <= *ro_end;   // (both: every kernel's RO_DATA defines them, attacker 109)
}

}  // namespace

std::optional<DumpKallsyms> find_kallsyms(const TranslationLayer& tl, std::string* why, const InterruptFn& interrupt) {
    const auto spans = image_spans(tl);
    Finder f{tl, tl.word_size(), {}};
    uint64_t indices = 0;
    std::optional<DumpKallsyms> elsewhere;   // the first that decoded outside its own read-only data
    std::vector<uint64_t> passed_over;
    // Once a set decoded outside, the read-only data its symbols name is where the kernel's own lie when it
    // is a copy of them: candidates there are followed past the bound (up to the bound again), the rest no
    // more (attacker 109: 64 copies below the image, one per 2 MiB, kept the kernel's own, the 65th, from
    // being followed, and every verdict was withdrawn).
    uint64_t named = 0;   // candidates followed in that read-only data
    // (its [_text, _end) when it names no read-only data: attacker 112 renamed __start_rodata in each copy)
    auto in_named_rodata = [&](uint64_t va) {
        if (!elsewhere) return false;
        for (const auto& [from, to] : {std::pair{"__start_rodata", "__end_rodata"}, std::pair{"_text", "_end"}}) {
            const auto lo = elsewhere->symbols.address(from), hi = elsewhere->symbols.address(to);
            if (lo && hi && *lo < *hi) return *lo <= va && va < *hi;
        }
        return false;
    };
    for (const ImageSpan& s : spans) {
        if ((indices > kMaxKallsymsCandidates && !elsewhere) || named > kMaxKallsymsCandidates) break;   // (the bounds, below)
        const uint8_t* b = s.bytes.data();
        const uint64_t n = s.bytes.size();
        ScanRelease scanned(tl.physical(), s.bytes, interrupt);
        for (uint64_t o = (8 - s.vaddr % 8) % 8; o + 512 <= n; o += 8) {
            scanned.passed(b + o);
            // kallsyms_token_index: 256 u16, the first 0, each next one 2..256 bytes further.
            uint16_t idx[256];
            std::memcpy(idx, b + o, 4);
            if (idx[0] != 0 || idx[1] < 2 || idx[1] > 256) continue;
            std::memcpy(idx, b + o, 512);
            unsigned i = 1;
            while (i < 256 && idx[i] >= idx[i - 1] + 2 && idx[i] <= idx[i - 1] + 256) ++i;
            if (i < 256) continue;
            if (indices >= kMaxKallsymsCandidates && elsewhere) {   // past the bound: the named read-only data alone
                if (!in_named_rodata(s.vaddr + o)) continue;
                if (++named > kMaxKallsymsCandidates) break;
            } else if (++indices > kMaxKallsymsCandidates) {
                f.reason = "more than " + std::to_string(kMaxKallsymsCandidates) +
                           " kallsyms_token_index-like tables, none followed to a kernel's kallsyms";
                break;
            }
            if (interrupt) interrupt();
            if (auto k = f.from_token_index(s.vaddr + o, idx)) {
                if (in_own_rodata(*k, f.word)) {
                    k->passed_over = std::move(passed_over);
                    return k;
                }
                passed_over.push_back(k->tables.num_syms);
                if (!elsewhere) elsewhere = std::move(k);
            }
        }
    }
    if (elsewhere) {
        elsewhere->in_own_rodata = false;
        elsewhere->passed_over.assign(passed_over.begin() + 1, passed_over.end());
        return elsewhere;
    }
    if (why) {
        *why = indices == 0 || f.reason.empty()
                   ? "no kallsyms_token_table/kallsyms_token_index in the kernel image (" + mib(searched_bytes(spans)) +
                         " searched)"
                   : f.reason;
    }
    return std::nullopt;
}

// ---- both, with the user's files first ----------------------------------------------------------

KernelTypesAndSymbols kernel_types_and_symbols(const TranslationLayer& tl, const std::optional<std::string>& kernel_file,
                                               const std::optional<std::string>& kallsyms_file,
                                               const std::optional<std::string>& system_map_file,
                                               const InterruptFn& interrupt) {
    KernelTypesAndSymbols r;
    if (kallsyms_file) {
        r.symbols = Kallsyms::load(*kallsyms_file);
        r.symbols_source = *kallsyms_file;
    } else {
        std::string why;
        if (auto k = find_kallsyms(tl, &why, interrupt)) {
            r.symbols_source = "dump: kallsyms tables at " + hex(k->tables.num_syms) + " (" +
                               std::to_string(k->tables.count) + " symbols)";
            std::string others;   // (the first three: attacker 109's 63 copies made a line of 1.2 kB)
            for (size_t i = 0; i < std::min<size_t>(k->passed_over.size(), 3); ++i) others += (i ? ", " : "") + hex(k->passed_over[i]);
            if (k->passed_over.size() > 3) others += " and " + std::to_string(k->passed_over.size() - 3) + " more";
            if (!k->in_own_rodata)
                r.notes.push_back(std::string(kKernelDataDisagree) + "the symbols were taken from kallsyms tables at " +
                                  hex(k->tables.num_syms) + ", outside the kernel's read-only data their own symbols name "
                                  "(__start_rodata … __end_rodata, within _text … _end)" +
                                  (others.empty() ? "" : "; so were those at " + others) +
                                  ": planted or damaged? --kallsyms gives the kernel's own");
            else if (!others.empty())
                r.notes.push_back(std::string(kKernelDataPlanted) + "kallsyms tables at " + others +
                                  " decode, outside the kernel's read-only data their own symbols name; the kernel's own, at " +
                                  hex(k->tables.num_syms) + ", were used");
            r.symbols = std::move(k->symbols);
        } else {
            r.notes.push_back("no symbols: " + why + "; pass the guest's /proc/kallsyms (--kallsyms) or System.map (--system-map)");
        }
    }
    if (kernel_file) {
        btf::KernelImage img = btf::load_kernel_image(*kernel_file);
        // The types must be of this dump's architecture: an x86-64 kernel's 8-byte pointers read
        // an i386 dump's task_structs as zeros and garbage, and the other way round (tester 11).
        if (img.btf.pointer_size() != tl.word_size())
            throw InputError(*kernel_file + ": its types have " + std::to_string(img.btf.pointer_size()) +
                             "-byte pointers, this dump's kernel " + std::to_string(tl.word_size()) +
                             "-byte ones (" + to_string(tl.mode()) + " paging): the kernel of another architecture");
        r.btf = std::move(img.btf);
        r.banners = std::move(img.banners);
        r.btf_source = *kernel_file;
    } else {
        // The one at the symbols' __start_BTF (vmlinux.lds.h) first, when they name it: the search takes
        // the first blob that is a kernel's, and attacker 108's copy of the kernel's own with two
        // offsets swapped, mapped below the kernel, was taken silently (315 tasks false HIDDEN).
        std::string why, at_symbol;
        const std::optional<uint64_t> start = r.symbols ? r.symbols->address("__start_BTF") : std::nullopt;
        std::optional<DumpBtf> b = start ? btf_at(tl, *start, &at_symbol) : std::nullopt;
        if (!b) b = find_btf(tl, &why, interrupt);
        if (b) {
            r.btf_source = "dump: .BTF at " + hex(b->vaddr) + " (" + std::to_string(b->size) + " bytes)";
            if (start && b->vaddr != *start)
                r.notes.push_back(std::string(kKernelDataDisagree) + "the types were taken from the BTF at " + hex(b->vaddr) +
                                  ", not from the one at the symbols' __start_BTF, " + hex(*start) + " (" + at_symbol +
                                  "): planted or damaged? --kernel gives the kernel's own");
            r.btf = std::move(b->btf);
        } else {
            r.notes.push_back("no types: " + why + "; pass the kernel file (--kernel: vmlinux, vmlinuz or BTF)");
        }
    }
    if (system_map_file && r.symbols) {
        const uint64_t before = r.symbols->size();
        r.symbols = r.symbols->with_system_map(Kallsyms::load(*system_map_file));
        r.symbols_source += " + " + std::to_string(r.symbols->size() - before) + " symbols of " + *system_map_file;
    }
    // The symbols must name this kernel's init_task (comm "swapper" or "swapper/0", sched_init →
    // init_idle; or, its comm overwritten, its own fields: init/init_task.c): symbols recovered
    // from memory, and files the user gave (another boot's kallsyms, whose KASLR offset differs, or
    // a wrong System.map: tester 11).
    if (r.btf && r.symbols) {
        std::string problem;
        auto task = r.btf->find("task_struct");
        auto comm = task ? r.btf->member(*task, "comm") : std::nullopt;
        auto init = r.symbols->address("init_task");
        char name[16] = {};
        // What of init_task's own fields is not as init/init_task.c makes them, "" when all are:
        // group_leader and real_parent itself, and a task list that is not empty (a running kernel's
        // never is) and, when `strict`, links both ways. Not strict: what cannot be read is not held
        // against it (a cut dump), nor neighbours that do not link back (a smeared capture's, whose
        // lists are judged broken later, not the symbols); used for a "swapper" comm (attacker 110
        // moved init_task onto an empty list inside it and wrote "swapper" there; attacker 111 wrote
        // the two pointers too). Strict: for a comm that is not "swapper" (noise or an attacker's byte:
        // the fields must then show it is init_task; a wrong address passes them only by chance, any
        // list node the last check alone: attacker 22).
        auto own_fields_not = [&](bool strict) -> std::string {
            const uint64_t W = tl.word_size();
            const TranslatedMemory mem(tl);
            auto member = [&](const char* name) { return task ? r.btf->member(*task, name) : std::nullopt; };
            for (const char* self : {"group_leader", "real_parent"}) {
                auto m = member(self);
                if (!m) {
                    if (strict) return std::string(self) + " pointing at itself";
                    continue;
                }
                auto v = mem.word(*init + m->byte_offset(), W);
                if (v ? *v != *init : strict) return std::string(self) + " pointing at itself";
            }
            auto tasks = member("tasks");
            if (!tasks) return strict ? "task list" : "";
            const uint64_t node = *init + tasks->byte_offset();
            const auto next = mem.word(node, W), prev = mem.word(node + W, W);
            if (!next || !prev) return strict ? "task list" : "";
            if (*next == node && *prev == node) return "task list with other tasks on it (it is empty)";
            if (strict && (*next == node || !list_links_back(mem, node, W))) return "task list linking back";
            return {};
        };
        // (newcomer 90: "another boot's?" for a right kallsyms whose init_task lay past a cut, or which
        // lacked data symbols)
        std::string hint = kallsyms_file ? " (another boot's or another kernel's?)" : "";
        if (!init) {
            problem = "no init_task symbol";
            if (!system_map_file) hint = " (a kallsyms without data symbols, no CONFIG_KALLSYMS_ALL? add --system-map)";
        } else if (!comm) {
            problem = "task_struct has no comm";
        } else if (!tl.read_virtual(*init + comm->byte_offset(), std::span<uint8_t>(reinterpret_cast<uint8_t*>(name), sizeof name))) {
            problem = "init_task at " + hex(*init) + " cannot be read";
            hint = " (the dump lacks the kernel image, or another boot's symbols?)";
        } else if (std::strncmp(name, "swapper", 7) != 0) {
            if (own_fields_not(true).empty())
                r.notes.push_back("init_task at " + hex(*init) + " has no comm 'swapper' (its bytes changed?), but its "
                                  "group_leader and real_parent are itself and its task list links back: symbols kept");
            else
                problem = "init_task at " + hex(*init) + " has no comm 'swapper', nor group_leader, real_parent "
                          "and a task list pointing back at it";
        } else if (std::string self = own_fields_not(false); !self.empty()) {
            // (a "swapper" comm alone is 8 bytes anyone can write: attacker 110 moved init_task 104 bytes
            // back onto an empty list inside it, wrote "swapper" there, and 450 tasks were HIDDEN)
            problem = "init_task at " + hex(*init) + " has comm 'swapper' but no " + self;
        }
        if (!problem.empty()) {
            r.notes.push_back("symbols from " + (kallsyms_file ? r.symbols_source : std::string("the dump")) +
                              " dropped: " + problem + hint);
            r.symbols.reset();
            r.symbols_source.clear();
        }
    }
    return r;
}

const btf::Btf& KernelTypesAndSymbols::require_btf(const std::string& what) const {
    if (btf) return *btf;
    for (const std::string& n : notes)
        if (n.rfind("no types", 0) == 0) throw InputError(what + " needs the kernel's struct layouts; " + n);
    throw InputError(what + " needs the kernel's struct layouts (BTF)");
}

const Kallsyms& KernelTypesAndSymbols::require_symbols(const std::string& what) const {
    if (symbols) return *symbols;
    for (const std::string& n : notes)
        if (n.find("symbols") != std::string::npos) throw InputError(what + " needs the kernel's symbols; " + n);
    throw InputError(what + " needs the kernel's symbols (kallsyms)");
}

KernelFiles dump_dir_kernel_files(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw InputError("dump directory " + dir + ": not a directory");
    auto in_dir = [&](const char* name) {
        const fs::path f = fs::path(dir) / name;
        std::error_code e;
        if (fs::exists(f, e)) return std::optional<std::string>(f.string());
        if (fs::is_symlink(fs::symlink_status(f, e)))   // a link whose target is gone: not "absent"
            throw InputError(f.string() + ": a symbolic link to a file that does not exist");
        return std::optional<std::string>();
    };
    KernelFiles f;
    f.kallsyms = in_dir("kallsyms");
    if ((f.kernel = in_dir("vmlinux"))) f.system_map = in_dir("System.map");
    else f.kernel = in_dir("vmlinuz");
    return f;
}

std::vector<KernelBanner> kernel_file_banners(const btf::KernelImage& image) {
    std::vector<KernelBanner> out;
    for (const std::string& text : image.banners)
        if (auto b = KernelBanner::parse(text + "\n")) out.push_back(std::move(*b));
    return out;
}

}  // namespace deepmem
