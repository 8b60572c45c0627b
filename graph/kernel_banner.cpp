// The kernel banner in a dump (contract: graph/kernel_banner.hpp).
#include "graph/kernel_banner.hpp"


#include <algorithm>
#include <cstring>
#include <map>
#include <tuple>
#include <string.h>   // memmem (GNU)

namespace deepmem {

namespace {

constexpr std::string_view kPrefix = "Linux version ";
constexpr size_t kMaxRelease = 64;   // __NEW_UTS_LEN
constexpr uint64_t kImageBase64 = 0xffffffff80000000ull, kImageEnd64 = 0xffffffffc0000000ull;   // __START_KERNEL_map, + KERNEL_IMAGE_SIZE (1 GiB)
constexpr uint64_t kImageWindow32 = uint64_t{128} << 20;
constexpr uint64_t kChunk = uint64_t{4} << 20;   // bytes a scan reads before it drops them

bool release_char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' ||
           c == '+' || c == '~' || c == '-';
}

// " (" … ")" with balanced parentheses at `p`; its contents, p moved past it.
std::optional<std::string_view> parenthesised(std::string_view s, size_t& p) {
    if (s.compare(p, 2, " (") != 0) return std::nullopt;
    const size_t open = p + 2;
    int depth = 1;
    for (size_t q = open; q < s.size(); ++q) {
        if (s[q] == '(') ++depth;
        if (s[q] == ')' && --depth == 0) {
            p = q + 1;
            if (q == open) return std::nullopt;   // "()" names nothing
            return s.substr(open, q - open);
        }
    }
    return std::nullopt;
}

// [p, p+len) intersected with the present physical runs, in address order, each as (paddr, bytes).
// From the run holding p on (the runs are sorted and disjoint, layers.hpp): a scan of every run per
// call made the image window's search quadratic in the runs (attacker 93's 63 MiB kdump, 142 k
// one-page runs and as many kernel runs: dmgraph build 16.0 s → 8.0 s, 40 % of it here before).
template <class Fn> void for_each_present(const PhysicalLayer& phys, uint64_t p, uint64_t len, Fn&& fn) {
    const uint64_t end = p + len < p ? UINT64_MAX : p + len;
    const std::span<const PhysicalRun> runs = phys.data_runs();
    auto it = std::upper_bound(runs.begin(), runs.end(), p, [](uint64_t x, const PhysicalRun& r) { return x < r.paddr; });
    if (it != runs.begin()) --it;
    for (; it != runs.end() && it->paddr < end; ++it) {
        const PhysicalRun& r = *it;
        const uint64_t a = std::max(p, r.paddr), b = std::min(end, r.paddr + r.size);
        if (a >= b) continue;
        fn(a, phys.bytes_of(r) + (a - r.paddr), b - a);
    }
}

// Up to `n` (at most kMaxBannerBytes; 0: that many) present bytes from `paddr` on (physically
// contiguous, across adjacent runs).
std::string bytes_from(const PhysicalLayer& phys, uint64_t paddr, uint64_t n = 0) {
    std::string out;
    const uint64_t want = n == 0 ? kMaxBannerBytes : std::min<uint64_t>(n, kMaxBannerBytes);
    for_each_present(phys, paddr, want, [&](uint64_t a, const uint8_t* d, uint64_t n) {
        if (a == paddr + out.size()) out.append(reinterpret_cast<const char*>(d), n);
    });
    return out;
}

// Calls hit(paddr, line) for the occurrences of the prefix in [p, p+len) that can start a banner:
// `line` is the bytes to its first '\n', the newline included, when that lies within the chunk (0:
// not known, the line runs on past it). Skipped: an occurrence with another one before its line
// ends (a banner holds the prefix once), and one whose line is longer than kMaxBannerBytes. So the
// bytes parsed are at most the bytes searched: attacker 107's pages of lines nesting "Linux version
// 1 (" 27 times, a prefix every 17 bytes and each parse reading ~250 bytes, took 55 % of an 11 s
// graph build. Each kChunk of a file-backed layer is dropped from the process once searched
// (MADV_DONTNEED: a later read refaults it from the page cache), so peak RSS stays a chunk: the
// image window alone held 36 MiB of the dev dump beside its graph, dmdetect's peak. `interrupt` is
// called per chunk and per kInterruptEvery occurrences.
template <class Fn> void search(const PhysicalLayer& phys, uint64_t p, uint64_t len, const InterruptFn& interrupt, Fn&& hit) {
    constexpr uint64_t kInterruptEvery = 4096;
    uint64_t seen = 0;
    for_each_present(phys, p, len, [&](uint64_t a, const uint8_t* d, uint64_t n) {
        for (uint64_t at = 0; at < n; at += kChunk) {
            if (interrupt) interrupt();
            // overlap the next chunk by the prefix so no occurrence is cut between two
            const uint64_t span = std::min(n - at, kChunk + kPrefix.size() - 1);
            const uint8_t* from = d + at;
            const uint8_t* const end = from + std::min(n - at, kChunk + kMaxBannerBytes);   // (a line may run on)
            auto find = [&](const uint8_t* q) {
                return q + kPrefix.size() > from + span
                           ? nullptr
                           : static_cast<const uint8_t*>(::memmem(q, size_t(from + span - q), kPrefix.data(), kPrefix.size()));
            };
            const uint8_t* newline = nullptr;   // the first '\n' at or after the occurrence (end: none)
            for (const uint8_t* f = find(from); f && uint64_t(f - from) < kChunk;) {
                if (++seen % kInterruptEvery == 0 && interrupt) interrupt();
                const uint8_t* next = find(f + 1);
                if (!newline || newline < f) {
                    newline = static_cast<const uint8_t*>(std::memchr(f, '\n', size_t(end - f)));
                    if (!newline) newline = end;
                }
                const bool line_known = newline < end;
                if (!(next && next < newline) && !(line_known && uint64_t(newline - f) >= kMaxBannerBytes))
                    hit(a + at + uint64_t(f - from), line_known ? uint64_t(newline - f) + 1 : 0);
                f = next;
            }
            phys.release(from, std::min(n - at, kChunk));
        }
    });
}

// The physical byte ranges a search has covered (disjoint, merged), so that memory mapped at
// several virtual addresses is searched once (attacker 107: each crafted page three times).
class Covered {
public:
    // The parts of [a, b) not covered yet, in order; then [a, b) is covered.
    std::vector<std::pair<uint64_t, uint64_t>> add(uint64_t a, uint64_t b) {
        std::vector<std::pair<uint64_t, uint64_t>> fresh;
        auto it = ranges_.upper_bound(a);
        if (it != ranges_.begin() && std::prev(it)->second > a) --it;
        uint64_t at = a, lo = a, hi = b;
        for (; it != ranges_.end() && it->first < b;) {
            if (it->first > at) fresh.emplace_back(at, it->first);
            at = std::max(at, it->second);
            lo = std::min(lo, it->first), hi = std::max(hi, it->second);
            it = ranges_.erase(it);
        }
        if (at < b) fresh.emplace_back(at, b);
        ranges_.emplace(lo, hi);
        return fresh;
    }
private:
    std::map<uint64_t, uint64_t> ranges_;   // start → end
};

}  // namespace

std::optional<KernelBanner> KernelBanner::parse(std::string_view s) {
    if (!s.starts_with(kPrefix)) return std::nullopt;
    const size_t nl = s.find('\n');
    if (nl == std::string_view::npos || nl > kMaxBannerBytes) return std::nullopt;
    s = s.substr(0, nl);
    for (char c : s)
        if (c < 0x20 || c > 0x7e) return std::nullopt;
    KernelBanner b;
    size_t p = kPrefix.size();
    while (p < s.size() && release_char(s[p])) ++p;
    const std::string_view release = s.substr(kPrefix.size(), p - kPrefix.size());
    if (release.empty() || release.size() > kMaxRelease || release[0] < '0' || release[0] > '9') return std::nullopt;
    const auto builder = parenthesised(s, p);
    if (!builder) return std::nullopt;
    const auto compiler = parenthesised(s, p);
    if (!compiler) return std::nullopt;
    if (s.compare(p, 2, " #") != 0) return std::nullopt;
    b.text = s;
    b.release = release;
    b.builder = *builder;
    b.compiler = *compiler;
    b.version = s.substr(p + 1);
    return b;
}

std::string kernel_version_of(std::string_view release) {
    size_t p = 0;
    auto number = [&] {
        const size_t from = p;
        while (p < release.size() && release[p] >= '0' && release[p] <= '9') ++p;
        return p > from;
    };
    if (!number() || p >= release.size() || release[p] != '.') return {};
    ++p;
    if (!number()) return {};
    return std::string(release.substr(0, p));
}

std::string kernel_flavour_of(std::string_view release) {
    // "<version>[-<abi>][-<flavour>]": the version never counts; the ABI is the part after it when it
    // starts with a digit and more follows ("47", "0.deb11.50"); the flavour is the rest, which may
    // start with a digit itself (Debian's i386 "686", "686-pae").
    const size_t v = release.find('-');
    if (v == std::string_view::npos) return {};
    std::string_view rest = release.substr(v + 1);
    const size_t a = rest.find('-');
    if (!rest.empty() && rest[0] >= '0' && rest[0] <= '9') {
        if (a == std::string_view::npos) return {};   // an ABI alone
        rest = rest.substr(a + 1);
    }
    return std::string(rest);
}

std::string kernel_flavour_of(const KernelBanner& banner) {
    std::string flavour = kernel_flavour_of(banner.release);
    bool named_rt = false;   // a part "rt" or "rt" and digits
    for (size_t at = 0; at <= flavour.size();) {
        const size_t end = std::min(flavour.find('-', at), flavour.size());
        const std::string_view part = std::string_view(flavour).substr(at, end - at);
        named_rt = named_rt || (part.starts_with("rt") &&
                                part.find_first_not_of("0123456789", 2) == std::string_view::npos);
        at = end + 1;
    }
    bool built_rt = false;   // the word PREEMPT_RT
    const std::string_view v = banner.version, word = "PREEMPT_RT";
    for (size_t p = v.find(word); p != std::string_view::npos && !built_rt; p = v.find(word, p + 1))
        built_rt = (p == 0 || v[p - 1] == ' ') && (p + word.size() == v.size() || v[p + word.size()] == ' ');
    return named_rt == built_rt ? flavour : std::string();
}

std::optional<FoundBanner> find_kernel_banner_in_image(const PhysicalLayer& phys, std::span<const VirtualRun> kernel_runs,
                                                       unsigned word_size, const InterruptFn& interrupt) {
    uint64_t lo = kImageBase64, hi = kImageEnd64;
    if (word_size == 4) {
        lo = kernel_runs.empty() ? 0 : kernel_runs.front().vaddr;
        hi = lo + kImageWindow32;
    }
    // Better: numbered, then lower vaddr (image) or more copies and lower paddr (fallback).
    std::optional<FoundBanner> best;
    Covered covered;   // (a physical byte's first mapping is its lowest vaddr: the one that would win)
    for (const VirtualRun& r : kernel_runs) {
        const uint64_t a = std::max(lo, r.vaddr), b = std::min(hi, r.vaddr + r.size);
        if (a >= b) continue;
        const uint64_t pa = r.paddr + (a - r.vaddr), pb = r.paddr + (b - r.vaddr);
        for (auto [fa, fb] : covered.add(pa, pb)) {
            // from a prefix's length before the part, within the run: one straddling its start is found
            const uint64_t from = std::max(pa, fa - std::min<uint64_t>(fa, kPrefix.size() - 1));
            search(phys, from, fb - from, interrupt, [&](uint64_t paddr, uint64_t line) {
                auto kb = KernelBanner::parse(bytes_from(phys, paddr, line));
                if (!kb || (best && best->banner.numbered() >= kb->numbered())) return;   // hits ascend by vaddr
                best = FoundBanner{std::move(*kb), paddr, r.vaddr + (paddr - r.paddr)};
            });
        }
    }
    return best;
}

std::optional<FoundBanner> find_kernel_banner(const PhysicalLayer& phys, std::span<const VirtualRun> kernel_runs,
                                              unsigned word_size, const InterruptFn& interrupt) {
    std::optional<FoundBanner> best = find_kernel_banner_in_image(phys, kernel_runs, word_size, interrupt);
    if (best) return best;

    struct Seen { uint64_t count = 0; FoundBanner first; };
    std::map<std::string, Seen> seen;   // by text
    for (const PhysicalRun& r : phys.data_runs())
        search(phys, r.paddr, r.size, interrupt, [&](uint64_t paddr, uint64_t line) {
            auto kb = KernelBanner::parse(bytes_from(phys, paddr, line));
            if (!kb) return;
            auto it = seen.try_emplace(kb->text, Seen{0, FoundBanner{*kb, paddr, std::nullopt}}).first;
            ++it->second.count;
        });
    const Seen* top = nullptr;
    for (const auto& [text, s] : seen) {
        auto key = [](const Seen& x) { return std::tuple(x.first.banner.numbered(), x.count, ~x.first.paddr); };
        if (!top || key(s) > key(*top)) top = &s;
    }
    if (top) best = top->first;
    return best;
}

}  // namespace deepmem
