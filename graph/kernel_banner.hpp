// Which kernel a dump holds, from the dump alone: the `Linux version …` banner (issue #9 item 2).
//
// Contract
//   Banner   linux_banner in init/version.c, a C string in the kernel's rodata:
//              "Linux version " UTS_RELEASE " (" LINUX_COMPILE_BY "@" LINUX_COMPILE_HOST ") ("
//              LINUX_COMPILER ") " UTS_VERSION "\n"
//            e.g. "Linux version 6.1.0-47-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian
//            12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian
//            6.1.170-3 (2025-11-05)\n". Kernels before 5.8 spell the compiler "(gcc version 8.3.0
//            (Debian 8.3.0-6))"; the shape below accepts both.
//   Shape    KernelBanner::parse() accepts exactly: "Linux version ", a release of 1–64 characters
//            [0-9A-Za-z._+~-] starting with a digit (UTS_RELEASE, __NEW_UTS_LEN), " (" builder ")",
//            " (" compiler ")" (parentheses balanced, nesting allowed), " #" and the rest of
//            UTS_VERSION, then '\n'; printable ASCII only, at most kMaxBannerBytes in all. A copy
//            cut short (end of the dump, a hole) has no '\n' and is refused; so is the copy in the
//            printk ring buffer (stored without its newline) and the format string of
//            linux_proc_banner ("%s version %s …").
//   Search   find_kernel_banner() first scans the physical pages behind the kernel-image mapping
//            (x86-64: vaddr ≥ 0xffffffff80000000, __START_KERNEL_map; 32-bit/PAE, which have no
//            separate image mapping: the first 128 MiB of lowmem above the kernel base, where the
//            image is loaded) and takes, of the valid banners there, the lowest vaddr (rodata
//            precedes data and bss) among those with a build number ("#1 SMP …"): since 6.1 the image
//            also keeps the __weak placeholder of init/version.c, compiled before the build number
//            is known ("# SMP …"), besides the real linux_banner of init/version-timestamp.c; a
//            placeholder is taken only when there is nothing else. Only when no valid banner is
//            there — no usable translation, image pages absent — every present physical byte is
//            scanned and the valid banner seen most often wins (numbered ones first; ties: lowest
//            paddr), marked as not from the image: a copy anywhere in memory (a page-cache copy of
//            /proc/version, a string planted in a process) is weaker evidence than the image's.
//            Cost: one memmem pass over the image (tens of MiB), each physical byte once however many
//            times the image window maps it; the fallback reads the whole dump once, dropping each
//            chunk of a file-backed layer from the process after reading it. A prefix is parsed
//            only when its line (to the first '\n') holds no other and is at most kMaxBannerBytes,
//            and only that line is copied, so the bytes parsed are at most the bytes searched
//            (attacker 107: a prefix every 17 bytes on lines nesting 27 of them, each parse reading
//            ~250 bytes, cost 55 % of an 11 s build). `interrupt` (graph/layers.hpp) is called per
//            4 MiB and per 4,096 prefixes met, and may throw to stop the search (dmdetect --time-limit).
#pragma once

#include "graph/layers.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace deepmem {

inline constexpr uint64_t kMaxBannerBytes = 512;

struct KernelBanner {
    std::string text;       // the banner without its '\n'
    std::string release;    // UTS_RELEASE, what `uname -r` prints: "6.1.0-47-amd64"
    std::string builder;    // "debian-kernel@lists.debian.org"
    std::string compiler;   // "gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40"
    std::string version;    // UTS_VERSION, what `uname -v` prints: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (…)"
    // The version starts with a build number ("#1"), which the final link's banner has and the
    // __weak placeholder of 6.1+ kernels ("# SMP …") lacks.
    bool numbered() const noexcept { return version.size() > 1 && version[1] >= '0' && version[1] <= '9'; }
    // The banner at the start of `bytes` (which may run on past its '\n'), or nullopt when its
    // shape is not the one above.
    static std::optional<KernelBanner> parse(std::string_view bytes);
    bool operator==(const KernelBanner&) const = default;
};

// "6.1" of "6.1.0-47-amd64" (major.minor, the kernel version that decides struct layouts first);
// empty when the release does not start with "N.N".
std::string kernel_version_of(std::string_view release);
// The build flavour of a Debian-style release "<version>[-<abi>][-<flavour>]": the parts after the
// version and the ABI (a part starting with a digit, followed by more), "rt-amd64" of
// "6.1.0-57-rt-amd64", "amd64" of "6.12.11+deb12-amd64", "686-pae" of "6.1.0-50-686-pae", "686" of
// "6.1.0-0.deb11.50-686"; empty when there are none.
std::string kernel_flavour_of(std::string_view release);
// The flavour of a banner's kernel: kernel_flavour_of(release) when the release and UTS_VERSION
// agree on PREEMPT_RT, else empty (an edited banner names no flavour). include/generated/compile.h
// writes the word "PREEMPT_RT" into the version of a kernel built with CONFIG_PREEMPT_RT (Debian's
// rt builds read "#1 SMP PREEMPT_RT Debian …", the others "SMP" or "SMP PREEMPT_DYNAMIC"); the
// release says rt by a part "rt" or "rtN" ("6.1.0-57-rt-amd64", upstream's "6.1.33-rt11"). Either
// part alone is one edit away, so neither decides alone: a version edited to PREEMPT_RT must not
// move a generic dump to an rt model (helper 61), nor a release edited to "-rt-" (helper 60).
std::string kernel_flavour_of(const KernelBanner& banner);

struct FoundBanner {
    KernelBanner banner;
    uint64_t paddr = 0;
    std::optional<uint64_t> vaddr;   // in the kernel-image mapping; absent for a fallback find
    bool in_kernel_image() const noexcept { return vaddr.has_value(); }
};

// See Search above. `kernel_runs`: the kernel mappings (TranslationLayer::kernel_runs(), sorted by
// vaddr); `word_size` 8 (x86-64) or 4 (32-bit, PAE) chooses the image window. Never throws on
// dump contents (only what `interrupt` throws); nullopt when no banner of the right shape is present.
std::optional<FoundBanner> find_kernel_banner(const PhysicalLayer& phys, std::span<const VirtualRun> kernel_runs,
                                              unsigned word_size, const InterruptFn& interrupt = {});
// The first step of the search alone: a banner in the kernel-image window, or nullopt (no
// fallback scan of the whole dump). The root search (graph/root_search.cpp) asks it whether a
// candidate root maps a kernel image; cost: one memmem pass over the window's present pages.
std::optional<FoundBanner> find_kernel_banner_in_image(const PhysicalLayer& phys, std::span<const VirtualRun> kernel_runs,
                                                       unsigned word_size, const InterruptFn& interrupt = {});

}  // namespace deepmem
