// Types and symbols from the dump alone: the kernel's BTF and its symbol table are both resident
// in the kernel image, so a dump needs no vmlinuz and no kallsyms file beside it (issue #10).
//
// Contract
//   Where      Only the kernel image mapping is searched (x86-64: virtual addresses
//              0xffffffff80000000–0xffffffffc0000000, the __START_KERNEL_map region, which holds
//              .text/.rodata at their KASLR-randomised address; 32-bit/PAE: every kernel page), read
//              through the translation layer. A blob planted in user or slab memory is never seen.
//   find_btf   The .BTF section (vmlinux.lds.h: __start_BTF, in RO_DATA, kept for
//              /sys/kernel/btf/vmlinux): a header with magic 0xeb9f, version 1, flags 0, hdr_len 24,
//              4-aligned type section, non-overlapping type/string sections of at most 64 MiB, then
//              the whole blob parsed by btf::Btf::parse and accepted only when it describes a Linux
//              kernel (struct task_struct with pid/tgid/comm/tasks, list_head of two pointers, cred,
//              mm_struct, file).
//   find_kallsyms  The compressed kallsyms tables of scripts/kallsyms.c / kernel/kallsyms.c:
//              kallsyms_token_table (256 NUL-terminated tokens) and kallsyms_token_index (256 u16
//              offsets into it) found by their shape; then, walking back, kallsyms_markers (u32
//              offset of every 256th name) right before the token table (5.x, 6.1, 6.4+) or before
//              kallsyms_seqs_of_names (3 bytes per symbol, a permutation: 6.2–6.3 and Debian's 6.1
//              updates), kallsyms_names (per symbol a length — one byte, or two for "big" symbols
//              since 6.1 — then token indices; the first expanded character is the type letter) and
//              kallsyms_num_syms; then kallsyms_offsets and kallsyms_relative_base either before
//              kallsyms_num_syms (up to 6.3) or after kallsyms_token_index (6.4 and later). Addresses:
//              relative_base + (u32)offset, or with CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86-64 SMP)
//              offset ≥ 0 absolute (per-CPU) and relative_base − 1 − offset otherwise. Accepted only
//              when every table is consistent (markers match the decoded names, addresses sorted,
//              relative_base in the kernel image) and linux_banner reads "Linux version "; of those,
//              the first lying in the read-only data its own symbols name is the kernel's
//              (DumpKallsyms::in_own_rodata: a copy mapped into the image window elsewhere is passed over).
//              Not handled: kallsyms_addresses (absolute tables, not built on x86), 6.15's
//              PC-relative offsets. Checked on real dumps: Debian 5.10, 6.1, 6.1-rt, 6.12.
//   Both return nullopt with `why` set to a one-line reason when nothing qualifies; corrupt,
//   truncated or inconsistent tables are rejected, never followed out of bounds or forever.
//
//   kernel_types_and_symbols  The inputs of the labeler, baselines and attacks: a kernel file
//              (vmlinux/vmlinuz/raw BTF) or kallsyms file given by the user wins over what the dump
//              holds. What could not be had is absent, with a note saying why. When both BTF and
//              symbols are present, init_task must be a task_struct whose comm starts with
//              "swapper" (else the symbols are dropped with a note: they are not this kernel's).
//              A System.map file completes the symbols (Kallsyms::with_system_map) for kernels
//              built without CONFIG_KALLSYMS_ALL, whose kallsyms hold no data symbols.
#pragma once

#include "graph/kernel_banner.hpp"
#include "graph/layers.hpp"
#include "train/btf.hpp"
#include "train/labeler.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace deepmem {

class TranslationLayer;

struct DumpBtf {
    btf::Btf btf;
    uint64_t vaddr = 0;   // where the header is
    uint64_t size = 0;    // bytes of the whole blob
};
// `interrupt` (graph/layers.hpp), when set, is called per MiB searched and before each candidate
// is read and parsed, and may throw to stop the search (dmdetect --time-limit: attacker 105's
// crafted BTF headers kept the reading of the objects found 10.3 s past a 9 s share).
std::optional<DumpBtf> find_btf(const TranslationLayer& tl, std::string* why = nullptr, const InterruptFn& interrupt = {});

// The kernel's BTF at exactly `vaddr` (the symbols' __start_BTF), checked as find_btf checks a
// candidate; nullopt with `why`.
std::optional<DumpBtf> btf_at(const TranslationLayer& tl, uint64_t vaddr, std::string* why = nullptr);
// The start of the note kernel_types_and_symbols (and interpret_detections) add when the dump's own
// data disagree with each other (a BTF other than the one at __start_BTF, a banner other than the one
// at linux_banner): what an attacker who planted copies leaves (attacker 108).
inline constexpr std::string_view kKernelDataDisagree = "the dump's kernel data disagree: ";
// The start of the note kernel_types_and_symbols adds when the dump holds a second copy of the
// kernel's data that was passed over for the kernel's own (kallsyms tables outside the read-only
// data their symbols name): evidence of tampering, said; the kernel's own were used, so verdicts stand.
inline constexpr std::string_view kKernelDataPlanted = "kernel data planted in the dump, passed over: ";

// Virtual addresses of the kallsyms tables found (for reports and tests).
struct KallsymsTables {
    uint64_t num_syms = 0, names = 0, markers = 0, token_table = 0, token_index = 0, offsets = 0,
             relative_base = 0;
    uint64_t count = 0;          // symbols
    bool absolute_percpu = false;
};
struct DumpKallsyms {
    Kallsyms symbols;
    KallsymsTables tables;
    // The tables lie inside the kernel's read-only data as their own symbols place it:
    // [__start_rodata, __end_rodata) (include/asm-generic/vmlinux.lds.h RO_DATA, where the linker
    // puts scripts/kallsyms.c's output), within [_text, _end); a set lacking one of the four is not
    // inside. A copy elsewhere was planted or is stale (attacker 108: the kernel's tables copied
    // below its image, one offset moved). Only a first filter: a copy whose own symbols are edited to
    // cover it, or the kernel's own tables edited in place, pass it (attacker 109); what the symbols
    // lead to is checked where it is read (the modules list: train/interpret.hpp).
    bool in_own_rodata = true;
    // Table sets that decoded but lay outside their own read-only data, passed over for these
    // (kallsyms_num_syms of each, in search order); when none of them lay inside, the first is
    // taken with in_own_rodata false.
    std::vector<uint64_t> passed_over;
};
// Table sets are searched in address order; the first that decodes inside its own read-only data
// is taken (the search ends there), else the first that decoded anywhere.
// `interrupt`: as find_btf's, per MiB searched and before each kallsyms_token_index candidate is followed.
std::optional<DumpKallsyms> find_kallsyms(const TranslationLayer& tl, std::string* why = nullptr, const InterruptFn& interrupt = {});

struct KernelTypesAndSymbols {
    std::optional<btf::Btf> btf;
    std::optional<Kallsyms> symbols;
    std::vector<std::string> banners;   // of the user's kernel file (for the banner cross-check)
    std::string btf_source;             // "vmlinuz FILE" or "dump: .BTF at 0x… (N bytes)"; "" when absent
    std::string symbols_source;         // "FILE" or "dump: kallsyms tables at 0x… (N symbols)"
    std::vector<std::string> notes;     // one line per thing missing or dropped
    // The BTF / the symbols, or an InputError "<what> needs … : <the note>".
    const btf::Btf& require_btf(const std::string& what) const;
    const Kallsyms& require_symbols(const std::string& what) const;
};
// Throws what btf::load_kernel_image / Kallsyms::load throw for a user-given file that is bad, and
// what `interrupt` throws (passed to find_btf and find_kallsyms).
KernelTypesAndSymbols kernel_types_and_symbols(const TranslationLayer& tl,
                                               const std::optional<std::string>& kernel_file = {},
                                               const std::optional<std::string>& kallsyms_file = {},
                                               const std::optional<std::string>& system_map_file = {},
                                               const InterruptFn& interrupt = {});

// The kernel files of a tools/make-dataset dump directory, as it labelled the dump (the one place
// this rule is stated; make-dataset's labelling, dm-attack and the robustness report all go through
// it): `vmlinux` — the -dbg package's, for builds without BTF (Debian's 686 and 686-pae) — with
// `System.map` (its data symbols: those builds lack CONFIG_KALLSYMS_ALL) when `vmlinux` is there,
// else `vmlinuz` (its .BTF) alone; and `kallsyms`, the guest's. A file the directory lacks is
// nullopt; paths are DIR/name. InputError when DIR is not a directory or one of the names is a
// symbolic link whose target is gone.
struct KernelFiles {
    std::optional<std::string> kernel, kallsyms, system_map;
};
KernelFiles dump_dir_kernel_files(const std::string& dir);

// The banners of a kernel file (btf::KernelImage::banners: lines without their newline) that
// KernelBanner::parse accepts, in file order — what the file says its kernel is (dmtrain --anchor
// and the placement's --kernel check them against a model's builds and the dump's banner).
std::vector<KernelBanner> kernel_file_banners(const btf::KernelImage&);

}  // namespace deepmem
