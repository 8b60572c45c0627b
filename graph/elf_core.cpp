// ELF core files as written by QEMU's dump-guest-memory (x86 guests; ELF32 and ELF64):
//   PT_LOAD  one per guest RAM block; physical address in p_paddr, bytes at p_offset, p_filesz of
//            them present (a p_memsz tail beyond p_filesz is absent, e.g. a filtered dump).
//   PT_NOTE  per vCPU a "CORE" NT_PRSTATUS note (general registers, no control registers) and a
//            "QEMU" note (type 0) carrying QEMUCPUState — see qemu target/i386/arch_dump.c:
//              u32 version, u32 size; u64 rax..r15, rip, rflags (18 words);
//              QEMUCPUSegment{u32 selector, limit, flags, pad; u64 base} cs,ds,es,fs,gs,ss,ldt,tr,gdt,idt;
//              u64 cr[5]; [u64 kernel_gs_base, optional, signalled by `size`]
//            so cr[0] is at byte 392, cr[3] at 416, cr[4] at 424, and cs.flags at 160.
//   More than 0xfffe program headers: e_phnum = PN_XNUM and the count is in section 0's sh_info
//   (QEMU does this for guests with many RAM blocks).
// Refusals name the field as the gABI does (e_phnum, e_shoff, p_paddr, p_memsz, n_namesz …) and its
// value; a PT_LOAD whose p_paddr + p_memsz wraps or passes 2^52 is refused even when not strict.
// QEMU writes ELF64/EM_X86_64 when the first vCPU is in long mode (EFER.LMA) and ELF32/EM_386
// otherwise (ELF64/EM_386 when a 32-bit guest has RAM above 4 GiB); long_mode follows e_machine.
#include "graph/dump_formats.hpp"
#include "graph/text_lines.hpp"

#include <cstring>

namespace deepmem::detail {

namespace {

constexpr uint16_t kEtCore = 4;
constexpr uint16_t kEm386 = 3, kEmX86_64 = 62;
constexpr uint32_t kPtLoad = 1, kPtNote = 4;
constexpr uint32_t kPnXnum = 0xffff;
constexpr uint32_t kNtPrstatus = 1;

// Offsets inside QEMUCPUState.
constexpr uint64_t kQemuCsFlags = 160, kQemuCr0 = 392, kQemuCr3 = 416, kQemuCr4 = 424, kQemuCrEnd = 432;
constexpr uint32_t kDescL = 1u << 21;   // 64-bit code segment

struct ElfLayout {
    bool is64;
    uint64_t ehdr_size, phdr_min, shdr_min;
};

uint64_t align4(uint64_t v) { return (v + 3) & ~uint64_t{3}; }

}  // namespace

void parse_elf_notes(std::span<const uint8_t> notes, uint64_t file_offset, bool long_mode, ParsedDump& d) {
    const uint8_t* base = notes.data();
    const uint64_t end = notes.size();
    uint64_t pos = 0;
    while (pos < end) {
        if (end - pos < 12) throw FormatError(file_offset + pos, "truncated ELF note header (expected 12 bytes)");
        uint64_t namesz = le32(base + pos), descsz = le32(base + pos + 4);
        uint32_t type = le32(base + pos + 8);
        uint64_t name_off = pos + 12;
        if (align4(namesz) > end - name_off)
            throw FormatError(file_offset + pos, "ELF note n_namesz " + std::to_string(namesz) +
                                                     " runs past its segment");
        uint64_t desc_off = name_off + align4(namesz);
        if (align4(descsz) > end - desc_off) {
            if (descsz > end - desc_off)   // tolerate a missing final pad, not missing bytes
                throw FormatError(file_offset + pos + 4, "ELF note n_descsz " + std::to_string(descsz) +
                                                             " runs past its segment");
        }
        // Names include their NUL: "QEMU\0" has namesz 5.
        auto name_is = [&](const char* s) {
            uint64_t n = std::strlen(s);
            return (namesz == n + 1 && base[name_off + n] == 0 && std::memcmp(base + name_off, s, n) == 0) ||
                   (namesz == n && std::memcmp(base + name_off, s, n) == 0);
        };
        const uint8_t* desc = base + desc_off;
        if (name_is("QEMU") && type == 0) {
            if (descsz < kQemuCrEnd)
                throw FormatError(file_offset + pos + 4, "QEMU CPU note n_descsz " + std::to_string(descsz) +
                                               " (expected at least 432 for QEMUCPUState up to cr[4])");
            uint32_t state_size = le32(desc + 4);
            if (state_size < kQemuCrEnd || state_size > descsz)
                throw FormatError(file_offset + desc_off + 4, "QEMUCPUState size field " + std::to_string(state_size) +
                                                    " (expected 432.." + std::to_string(descsz) + ")");
            CpuState c;
            c.cr0 = le64(desc + kQemuCr0);
            c.cr3 = le64(desc + kQemuCr3);
            c.cr4 = le64(desc + kQemuCr4);
            c.long_mode = long_mode || (le32(desc + kQemuCsFlags) & kDescL) != 0;
            d.cpus.push_back(c);
        } else if (name_is("CORE") && type == kNtPrstatus) {
            // General registers only; nothing here is needed to translate addresses. Its bounds
            // were checked above like every other note.
        }
        pos = desc_off + align4(descsz);
        if (pos > end) pos = end;
    }
}

std::vector<uint8_t> qemu_cpu_note(const CpuState& cpu) {
    std::vector<uint8_t> n(12 + 8 + kQemuCrEnd, 0);
    auto put = [&](uint64_t off, uint64_t v, unsigned bytes) { std::memcpy(n.data() + off, &v, bytes); };
    put(0, 5, 4);                 // namesz "QEMU\0"
    put(4, kQemuCrEnd, 4);        // descsz
    put(8, 0, 4);                 // type 0
    std::memcpy(n.data() + 12, "QEMU", 4);
    uint8_t* desc = n.data() + 20;
    const uint64_t d = desc - n.data();
    put(d, 1, 4);                 // version
    put(d + 4, kQemuCrEnd, 4);    // size
    put(d + kQemuCsFlags, cpu.long_mode ? kDescL : 0, 4);
    put(d + kQemuCr0, cpu.cr0, 8);
    put(d + kQemuCr3, cpu.cr3, 8);
    put(d + kQemuCr4, cpu.cr4, 8);
    return n;
}

ParsedDump parse_elf_core(std::span<const uint8_t> file, bool strict) {
    const uint8_t* b = file.data();
    const uint64_t size = file.size();
    if (size < 16 || std::memcmp(b, "\x7f" "ELF", 4) != 0)
        throw FormatError(0, "not an ELF file (expected \\x7fELF and a 16-byte e_ident)");
    ElfLayout L{};
    if (b[4] == 1) L = {false, 52, 32, 40};
    else if (b[4] == 2) L = {true, 64, 56, 64};
    else throw FormatError(4, "e_ident[EI_CLASS] " + std::to_string(b[4]) + " (expected ELFCLASS32 1 or ELFCLASS64 2)");
    if (b[5] != 1) throw FormatError(5, "e_ident[EI_DATA] " + std::to_string(b[5]) + " (expected ELFDATA2LSB 1 for x86)");
    if (size < L.ehdr_size)
        throw FormatError(0, "truncated ELF header (" + std::to_string(size) + " of " +
                                 std::to_string(L.ehdr_size) + " bytes)");
    uint16_t e_type = le16(b + 16), e_machine = le16(b + 18);
    if (e_type != kEtCore)
        throw FormatError(16, "e_type " + std::to_string(e_type) + ": not a core file (expected ET_CORE 4)");
    if (e_machine != kEm386 && e_machine != kEmX86_64)
        throw FormatError(18, "e_machine " + std::to_string(e_machine) + " (expected EM_386 3 or EM_X86_64 62)");

    uint64_t phoff, shoff;
    uint32_t phentsize, phnum, shentsize;   // e_shnum is not needed: PN_XNUM needs only section 0
    if (L.is64) {
        phoff = le64(b + 32); shoff = le64(b + 40);
        phentsize = le16(b + 54); phnum = le16(b + 56); shentsize = le16(b + 58);
    } else {
        phoff = le32(b + 28); shoff = le32(b + 32);
        phentsize = le16(b + 42); phnum = le16(b + 44); shentsize = le16(b + 46);
    }
    // Field offsets in the ELF header (gABI "ELF Header"), for error offsets.
    const uint64_t phoff_at = L.is64 ? 32 : 28, shoff_at = L.is64 ? 40 : 32, phentsize_at = L.is64 ? 54 : 42;
    const uint64_t phnum_at = phentsize_at + 2, shentsize_at = phentsize_at + 4;
    uint64_t phnum_from = phnum_at;   // where the program header count was read
    if (phnum == kPnXnum) {   // the real count lives in section header 0's sh_info
        if (shoff == 0)
            throw FormatError(shoff_at, "e_phnum is PN_XNUM (0xffff) but e_shoff is 0: no section header 0 "
                                        "holds the program header count in sh_info");
        if (shentsize < L.shdr_min)
            throw FormatError(shentsize_at, "e_shentsize " + std::to_string(shentsize) + " (expected at least " +
                                                std::to_string(L.shdr_min) + " when e_phnum is PN_XNUM)");
        if (!in_file(shoff, L.shdr_min, size))
            throw FormatError(shoff_at, "e_shoff " + hex(shoff) + ": section header 0 (" +
                                            std::to_string(L.shdr_min) + " bytes) lies past end of file (" +
                                            hex(size) + " bytes)");
        phnum_from = shoff + (L.is64 ? 44 : 28);
        phnum = le32(b + phnum_from);
    }
    if (phnum == 0)
        throw FormatError(phnum_from, std::string(phnum_from == phnum_at ? "e_phnum" : "section header 0's sh_info") +
                                          " is 0: the core has no program headers (expected PT_LOAD)");
    if (phentsize < L.phdr_min)
        throw FormatError(phentsize_at, "e_phentsize " + std::to_string(phentsize) + " (expected at least " +
                                            std::to_string(L.phdr_min) + ")");
    uint64_t table = uint64_t{phnum} * phentsize;   // < 2^48, cannot overflow
    if (!in_file(phoff, table, size))
        throw FormatError(phoff_at, "e_phoff " + hex(phoff) + ": " + std::to_string(phnum) + " program headers of " +
                                        std::to_string(phentsize) + " bytes (e_phnum × e_phentsize) run past end of file (" +
                                        hex(size) + " bytes)");

    ParsedDump d;
    const bool long_mode = e_machine == kEmX86_64;
    uint64_t cut_bytes = 0, cut_from = UINT64_MAX, cut_segments = 0;   // truncated file, when !strict
    bool notes_cut = false;
    for (uint64_t i = 0; i < phnum; ++i) {
        uint64_t at = phoff + i * phentsize;
        const uint8_t* p = b + at;
        uint32_t type = le32(p);
        uint64_t offset, paddr, filesz, memsz;
        if (L.is64) {
            offset = le64(p + 8); paddr = le64(p + 24); filesz = le64(p + 32); memsz = le64(p + 40);
        } else {
            offset = le32(p + 4); paddr = le32(p + 12); filesz = le32(p + 16); memsz = le32(p + 20);
        }
        if (type != kPtLoad && type != kPtNote) continue;
        if (type == kPtLoad && filesz > memsz)
            throw FormatError(at, "PT_LOAD " + std::to_string(i) + " has p_filesz " + hex(filesz) +
                                      " > p_memsz " + hex(memsz));
        // The whole p_memsz range, not only the bytes present: a corrupt end is refused even when
        // the file is cut (p_filesz ≤ p_memsz, so this covers p_paddr + p_filesz too).
        if (type == kPtLoad && !below_maxphyaddr(paddr, memsz))
            throw FormatError(at, "PT_LOAD " + std::to_string(i) + " physical range p_paddr " + hex(paddr) +
                                      " + p_memsz " + hex(memsz) + (paddr + memsz < paddr ? " wraps around 2^64" :
                                      " ends beyond the 52-bit physical address space (x86 MAXPHYADDR)") +
                                      ": a corrupt program header");
        const bool cut = !in_file(offset, filesz, size);
        if (cut) {
            if (strict || offset + filesz < offset)
                throw FormatError(at, "program header " + std::to_string(i) + ": p_offset " + hex(offset) + " + p_filesz " +
                                          hex(filesz) + (offset + filesz < offset ? " wraps around 2^64" :
                                          " runs past end of file (" + hex(size) + " bytes)"));
            // A truncated file: keep what is present of this segment (nothing when it starts past the end).
            const uint64_t present = offset < size ? size - offset : 0;
            if (type == kPtLoad) {
                cut_from = std::min(cut_from, paddr + present);
                cut_bytes += filesz - present;
                ++cut_segments;
            } else {
                notes_cut = true;
            }
            filesz = present;
        }
        if (type == kPtNote) {
            if (cut) continue;   // CPU state lost with the cut; the root search takes over
            // Notes that do not parse (a size field past their segment …) lose the CPU state, not
            // memory: skipped with a warning naming them, as a kdump file's are; strict refuses.
            // Only the program headers themselves being inconsistent refuses the file.
            const size_t cpus = d.cpus.size();
            try {
                parse_elf_notes(file.subspan(offset, filesz), offset, long_mode, d);
            } catch (const FormatError& e) {
                if (strict) throw;
                d.cpus.resize(cpus);
                d.warnings.push_back("ELF core: the notes of program header " + std::to_string(i) + " (PT_NOTE, p_offset " +
                                     hex(offset) + ", p_filesz " + hex(filesz) + ") do not parse (" + e.what() +
                                     "); they are skipped, so the page-table root is searched for");
            }
            continue;
        }
        d.runs.push_back({paddr, offset, filesz});
    }
    if (cut_bytes > 0)
        d.lacks("truncated ELF core (" + hex(size) + " bytes): " + hex(cut_bytes) + " bytes (" + format_bytes(cut_bytes) + ") of " +
                    std::to_string(cut_segments) + " PT_LOAD segment(s), from physical " + hex(cut_from) +
                    ", lie past the end of the file",
                " and read as absent");
    if (notes_cut)
        d.warnings.push_back("truncated ELF core: the CPU notes are cut, so the page-table root is searched for");
    return d;
}

}  // namespace deepmem::detail
