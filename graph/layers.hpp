// Stage 1–2 of the pipeline: dump file → physical layer → translation layer.
//
// Contract
//   PhysicalLayer   "give me the bytes at physical address P" over an mmapped dump file. Every
//                   acquisition format (raw, QEMU ELF core, LiME, kdump-compressed, AVML) is parsed
//                   into the same thing: a sorted list of non-overlapping runs {paddr, offset, size}
//                   over one mapping — the file, or for compressed formats the memory decompressed
//                   once at open (graph/decoded_image.hpp). Memory outside the runs reads as absent
//                   (nullptr / false), never as zeros; the holes of a sparse file are inside its
//                   runs and read as zeros, as the dense file's bytes do (`cp` makes zero blocks
//                   holes: the copy is the same dump). No run can point past its mapping, so no read can leave it.
//   TranslationLayer "give me the physical address of kernel virtual address V". One page-table
//                   walker; each paging scheme (x86 32-bit, PAE, x86-64 4-level, 5-level) is a
//                   small table of levels. Page tables that loop or point outside the dump are
//                   guarded against; enumeration of the kernel half yields each virtual page once.
//   Neither layer knows which file format it sits on, and the graph builder only sees these two.
//
// Errors: parsers throw FormatError{offset, what was expected}. CLIs catch at main.
#pragma once

#include "graph/errors.hpp"
#include "graph/file_io.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deepmem {

// A long step's way to be stopped (dmdetect --time-limit: detect.hpp BuildOptions::interrupt): it
// calls this now and then — per chunk of its work, thousands of times on a large dump, from any of
// its threads at once — and the function may throw to stop it. The step rethrows that exception
// once its threads have stopped, having made nothing (PhysicalLayer::open's decompression of a
// kdump or AVML file, TranslationLayer::detect's root search, MemoryGraph::build).
using InterruptFn = std::function<void()>;

// "0x1a2b": the one spelling of addresses in messages and tool output.
std::string hex(uint64_t v);
// Parses a CLI number: decimal ("4096") or hex after 0x ("0x1ad000"). Throws InputError naming `what`
// on anything else: a sign, spaces, a value past 2^64 − 1, or a leading 0 ("010": octal in C, refused).
uint64_t parse_address(const std::string& s, const char* what);

// Small files (labels, manifests, detections), atomic writes, same-file checks: graph/file_io.hpp.

// Read-only mmap of a whole file; the bytes stay valid as long as the object lives.
class MappedFile {
public:
    explicit MappedFile(const std::string& path);   // throws InputError
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    std::span<const uint8_t> bytes() const noexcept { return {data_, size_}; }
    const std::string& path() const noexcept { return path_; }
    // [offset, end) stretches holding data, from SEEK_DATA/SEEK_HOLE at open: a sparse file's
    // holes read as zeros without being stored. One stretch for a dense file.
    const std::vector<std::pair<uint64_t, uint64_t>>& data_extents() const noexcept { return extents_; }
    // Drops the mapped pages of file bytes [offset, offset+len), rounded outwards to 4 KiB pages
    // (a neighbour's partial page costs at most a refault): read-only and file-backed, they come
    // back from the page cache when read again. For parsers that walk headers spread through
    // the file, so that the walk does not keep the whole file resident.
    void release(uint64_t offset, uint64_t len) const noexcept;
private:
    std::vector<std::pair<uint64_t, uint64_t>> extents_;
    std::string path_;
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

enum class DumpFormat : uint8_t { Auto, Raw, Elf, Lime, Kdump, Avml };
const char* to_string(DumpFormat);
DumpFormat parse_dump_format(const std::string&);   // "auto|raw|elf|lime|kdump|avml"; throws InputError

// CPU state recovered from the dump itself (QEMU ELF "QEMU" notes), when present.
struct CpuState {
    uint64_t cr0 = 0, cr3 = 0, cr4 = 0;
    bool long_mode = false;   // EFER.LMA, when the note carries it; else inferred from the ELF class
};

// One contiguous stretch of physical memory present in the dump. `file_offset` indexes the
// layer's mapping (file_bytes()), or, from file_bytes().size() on, the pages the layer assembled
// from ranges split mid-page: read a run's bytes through PhysicalLayer::bytes_of().
struct PhysicalRun {
    uint64_t paddr = 0;
    uint64_t file_offset = 0;
    uint64_t size = 0;
};

namespace detail { class DecodedImage; }

class PhysicalLayer {
public:
    // Opens and parses a dump. Auto-detection looks at content (ELF, LiME, AVML, kdump "KDUMP   "
    // or flattened "makedumpfile" magic), else raw; QEMU migration streams (QEVM) and archives
    // (gzip, xz, zstd, …) are refused with an InputError saying what to do instead.
    //   kdump   makedumpfile's diskdump_mod.h / QEMU dump/dump.c: zlib, lzo, snappy, zstd pages,
    //           plain or flattened; CPU state from its QEMU notes. AVML v2: snappy-framed ranges
    //           (graph/snappy_frame.hpp), LiME v1 ranges among them. Both are decompressed at
    //           open (in parallel) into a DecodedImage; more than 24× the file size of non-zero
    //           memory is refused as a decompression bomb.
    // Truncated files (ELF, LiME, kdump, AVML whose tail is missing): the runs are clipped to the
    // bytes present and warnings() says what is missing; `strict` refuses them (FormatError).
    // kdump pages whose data does not decompress to exactly block_size bytes likewise read as
    // absent, with one warning (count, first pfns, the codec's error; an unknown compression flag
    // is such a page); `strict` refuses them. kdump descriptors of size 0, or pointing outside the
    // file while later pages' data is present (corrupt, not cut), read as absent with a warning
    // saying so. CPU notes (ELF PT_NOTE, kdump sub-header) that do not parse or lie past the end
    // are skipped with a warning naming them (the root is then searched for); `strict` refuses.
    // kdump block_size must be 4096 (the x86 page size). Pages split across ranges: assembled_pages().
    // A header range that wraps past 2^64 or ends beyond 2^52 (x86 MAXPHYADDR; LiME e_addr, ELF
    // p_paddr + p_memsz, AVML end, kdump max_mapnr_64) is a FormatError, strict or not.
    // Overlapping ranges: ranges placing the same file bytes at the same physical addresses merge;
    // two ranges sharing file bytes at different physical addresses are a FormatError; ranges at
    // one physical address from different file bytes must hold identical bytes (compared once
    // each, linear in the file size) else FormatError.
    // `interrupt` (InterruptFn above): called per batch of pages a kdump or AVML file decompresses.
    static std::unique_ptr<PhysicalLayer> open(const std::string& path,
                                               DumpFormat format = DumpFormat::Auto, bool strict = false,
                                               const InterruptFn& interrupt = {});
    // For tests and fuzzers: parse an in-memory image (the span must outlive the layer).
    static std::unique_ptr<PhysicalLayer> from_bytes(std::span<const uint8_t> bytes,
                                                     DumpFormat format = DumpFormat::Auto, bool strict = false);

    DumpFormat format() const noexcept { return format_; }
    // What the parser kept going past (a truncated file, excluded pages …), one line each, for
    // the CLI to print once; empty for a complete file.
    const std::vector<std::string>& warnings() const noexcept { return warnings_; }
    std::span<const PhysicalRun> runs() const noexcept { return runs_; }
    // The first byte of run `r` (of runs() or data_runs()); its r.size bytes follow.
    const uint8_t* bytes_of(const PhysicalRun& r) const noexcept { return at(r.file_offset); }
    // Pages whose bytes the file splits across ranges at non-contiguous offsets (a LiME range
    // per 2 KiB, an ELF PT_LOAD ending mid-page with other bytes before the next): at open they
    // are copied into an image of their own (anonymous up to 64 MiB, else an unlinked file in
    // $TMPDIR; at most the dump's size, as each needs two ranges of the file's bytes), so that
    // they read like any page. Their count; 0 for most dumps.
    uint64_t assembled_pages() const noexcept { return assembled_pages_; }
    // Memory the file holds that does not decode ({paddr, size}, ascending: kdump pages, AVML
    // chunks; empty for other formats): absent like memory the file lacks, but not cut off, so
    // that diagnoses can tell the two apart. undecodable_bytes() sums them; undecodable(paddr)
    // says whether that byte lies in them.
    std::span<const std::pair<uint64_t, uint64_t>> undecodable() const noexcept { return undecodable_; }
    uint64_t undecodable_bytes() const noexcept;
    bool undecodable(uint64_t paddr) const noexcept;
    // runs() minus the holes of a sparse dump file (e.g. a raw copy of a 4 GiB address space
    // holding 256 MiB of RAM) and a compressed one's pages of zeros (DecodedImage): those bytes read
    // as zeros and need no scanning. Equals runs() for dense files and from_bytes(). Sorted by
    // paddr, disjoint, as runs().
    std::span<const PhysicalRun> data_runs() const noexcept { return data_runs_; }
    // True when some byte of [paddr, paddr+len) is in runs() / in data_runs(). has_data() is false
    // for bytes that are absent or lie in a hole of a sparse file (they read as zeros: no need to
    // read, and so fault in, them).
    bool any_present(uint64_t paddr, uint64_t len) const noexcept;
    bool has_data(uint64_t paddr, uint64_t len) const noexcept;
    const std::vector<CpuState>& cpus() const noexcept { return cpus_; }   // empty if no notes
    uint64_t max_paddr() const noexcept;        // one past the highest present byte
    uint64_t present_bytes() const noexcept;    // sum of run sizes

    // Pointer to `len` contiguous bytes at `paddr`, or nullptr when any of them is absent or the
    // range straddles two runs. The hot path of the graph builder uses this per 4 KiB page.
    const uint8_t* find(uint64_t paddr, uint64_t len) const noexcept;
    // Copies bytes; false when any byte is absent.
    bool read(uint64_t paddr, std::span<uint8_t> out) const noexcept;

    // The mapping the runs index (but for assembled pages: bytes_of()): the dump file, or its
    // decompressed image (kdump, AVML).
    std::span<const uint8_t> file_bytes() const noexcept { return bytes_; }
    // Bytes of the dump as given (the file on disk, or from_bytes()' span): for kdump and AVML the
    // compressed size, not file_bytes()' decompressed one. What a graph records to tell later that
    // its dump is still the same file (GraphBuildInfo::dump_bytes).
    uint64_t dump_size() const noexcept { return dump_size_; }
    // The bytes of dump_size() its file holds: a sparse file's holes left out (graph/file_io.hpp
    // held_bytes); from_bytes: all. What the bounds on the analysis scale by (detect.hpp input_bytes):
    // a raw file's apparent size is whatever its writer seeked to (reviewer 98).
    uint64_t held_bytes() const noexcept { return held_bytes_; }
    // What a compressed dump (kdump, AVML) spends on the memory it holds, in bytes of the file, each
    // byte once: kdump, the union over its non-zero pages of the first kCountedPageBytes of each
    // page's data (its compressed bytes; data that descriptors share, or windows over one blob,
    // count once); AVML, per snappy chunk its compressed bytes, at most kCountedPageBytes per non-zero
    // 4 KiB block of the chunk's memory. nullopt for raw, ELF and LiME, which store every page
    // whole. A page of one pointer compresses to tens of bytes, real kernel pages to 630 bytes
    // (median, zlib level 1, 6.12) and more: content counts by the file it takes, so a small file of
    // cheap pages cannot claim the work of a real dump's content (detect.hpp counted_pages, issue 15,
    // attackers 77 and 80). At most dump_size().
    std::optional<uint64_t> stored_page_bytes() const noexcept { return stored_page_bytes_; }
    // The file bytes a page must take to count whole toward the network work bound (detect.hpp
    // counted_pages): a quarter of a 4 KiB page, the most real kernel pages compress to at the 95th
    // percentile (1,107 bytes, zlib level 1, the 6.12 dump) rounded down.
    static constexpr uint64_t kCountedPageBytes = 1024;
    // True when those bytes are a file mapping (open()'s read-only mmap, or a decompressed image
    // kept in a temporary file), not from_bytes() or anonymous memory: the graph builder may then
    // drop pages it is done with (MADV_DONTNEED refaults them from the page cache), which keeps
    // its peak RSS far below the dump size.
    bool file_backed() const noexcept;
    // Drops the 4 KiB pages that [bytes, bytes+size) touches — bytes inside file_bytes(), partial
    // pages at either end included — from this process (MADV_DONTNEED) when file_backed(); a
    // later read refaults them from the page cache.
    // No-op otherwise. Used by every full pass over the dump (root search, graph scan). Also
    // for bytes among the assembled pages (when their image is a file).
    void release(const uint8_t* bytes, uint64_t size) const noexcept;
    // release() of every byte the runs index.
    void release_all() const noexcept;
    // release() of ranges that arrive in ascending order, coalesced: a range starting within a
    // page of the previous one's end extends it (one-page LiME ranges, each after a 32-byte
    // header, cost one madvise per page: 131,064 calls and 4.6 s of system time for the 256 MiB
    // dev dump, tester 9), and the pending range is released once it spans kMaxPending bytes, at
    // a gap, or at flush()/destruction. At most kMaxPending bytes stay resident beyond a caller's.
    class Releaser {
    public:
        explicit Releaser(const PhysicalLayer& phys) noexcept : phys_(phys) {}
        ~Releaser() { flush(); }
        Releaser(const Releaser&) = delete;
        Releaser& operator=(const Releaser&) = delete;
        void add(const uint8_t* bytes, uint64_t size) noexcept;
        void flush() noexcept;
        static constexpr uint64_t kMaxPending = uint64_t{8} << 20;
    private:
        const PhysicalLayer& phys_;
        const uint8_t *lo_ = nullptr, *hi_ = nullptr;
    };

private:
    PhysicalLayer() = default;
    std::shared_ptr<MappedFile> file_;   // null for from_bytes
    std::shared_ptr<detail::DecodedImage> image_;   // compressed formats: what bytes_ views
    std::span<const uint8_t> bytes_;
    uint64_t dump_size_ = 0;
    std::optional<uint64_t> stored_page_bytes_;
    uint64_t held_bytes_ = 0;
    std::vector<std::string> warnings_;
    std::vector<std::pair<uint64_t, uint64_t>> undecodable_;
    DumpFormat format_ = DumpFormat::Raw;
    std::vector<PhysicalRun> runs_;      // sorted by paddr, non-overlapping
    std::vector<PhysicalRun> data_runs_; // runs_ ∩ the file's data extents
    std::vector<CpuState> cpus_;
    std::shared_ptr<detail::DecodedImage> assembled_;   // pages split across ranges (assembled_pages())
    uint64_t assembled_base_ = 0;                        // run offsets from here index assembled_
    uint64_t assembled_pages_ = 0;
    const uint8_t* at(uint64_t offset) const noexcept;   // a run offset → its byte
    friend struct PhysicalLayerParsers;
};

enum class PagingMode : uint8_t { X86_32, X86_PAE, X86_64_4Level, X86_64_5Level };
const char* to_string(PagingMode);
PagingMode parse_paging_mode(const std::string&);   // "x86|pae|x64|la57"; throws InputError

// One virtual→physical mapping run (page-granular, contiguous in both spaces).
struct VirtualRun {
    uint64_t vaddr = 0;
    uint64_t paddr = 0;
    uint64_t size = 0;
};

class TranslationLayer {
public:
    // `kernel_base`: lowest virtual address treated as kernel space; 0 picks the scheme's default
    // (x86-64: 0xffff800000000000, LA57: 0xff00000000000000, 32-bit/PAE: 0xc0000000).
    TranslationLayer(const PhysicalLayer& phys, PagingMode mode, uint64_t dtb, uint64_t kernel_base = 0);

    // Root: `dtb_override` when given (scheme from `mode_override`, else the note's CPU state,
    // else whichever scheme maps most kernel pages from it); else CR3 of the first ELF-note vCPU
    // with paging on (CR4.LA57 / long mode / CR4.PAE pick the scheme unless `mode_override`; with
    // KPTI the kernel copy of a user CR3 is preferred); else — or when that CR3 maps nothing, or
    // maps no kernel by the search's plausibility test (kernel text, its own table, a direct map
    // or the banner) and the search finds a root that does — the automatic page-directory search
    // (search() below), with a warning naming the note's CR3. A note CR3 that passes by the
    // banner alone (the kernel image without a direct map: a PTI-style copy of the PGD) gives way
    // to a searched root that maps more present pages, with a warning; when none does it is kept,
    // with a warning that memory outside the image is missing. Throws InputError with the reason
    // when none works (e.g. a DTB that maps nothing).
    // `interrupt` (InterruptFn above): called per 8 MiB of the search's pass over the dump and per
    // group of candidate roots it walks.
    static TranslationLayer detect(const PhysicalLayer& phys, std::optional<uint64_t> dtb_override = {},
                                   std::optional<PagingMode> mode_override = {}, const InterruptFn& interrupt = {});

    // The automatic page-directory search alone, ignoring CPU notes (see the heuristic in
    // graph/translation.cpp). Throws InputError when no candidate qualifies.
    static TranslationLayer search(const PhysicalLayer& phys, std::optional<PagingMode> mode_override = {},
                                   const InterruptFn& interrupt = {});

    PagingMode mode() const noexcept { return mode_; }
    uint64_t dtb() const noexcept { return dtb_; }
    uint64_t kernel_base() const noexcept { return kernel_base_; }
    unsigned word_size() const noexcept { return mode_ == PagingMode::X86_32 || mode_ == PagingMode::X86_PAE ? 4 : 8; }

    // vaddr → paddr, or nullopt when unmapped or the backing page is absent from the dump.
    std::optional<uint64_t> translate(uint64_t vaddr) const noexcept;
    // Under a table the dump lacks, translate() gives the direct map's linear fill
    // (WalkStats::direct_fill_pages) once kernel_runs() has run (the fill is found by that walk).
    // Reads through translation, page by page; false when any byte is unmapped/absent.
    bool read_virtual(uint64_t vaddr, std::span<uint8_t> out) const noexcept;

    // Every mapped kernel-space page whose backing is present in the dump, as maximal runs sorted
    // by vaddr. Large pages are expanded to their present 4 KiB parts. Computed once, cached (the
    // first call is not thread-safe: make it before sharing the layer across threads). Throws
    // InputError when the tables exceed the work bound described at walk_stats().
    std::span<const VirtualRun> kernel_runs() const;
    // Every kernel-space page the page tables map, whether or not its backing page is in the
    // dump (per-CPU areas cut off a raw dump, MMIO, memory a capture skipped), as maximal runs
    // sorted by vaddr; large pages stay whole. What makes a word a pointer in the memory graph, so
    // that raw, ELF and LiME copies of one dump agree. Computed by the same walk as kernel_runs().
    std::span<const VirtualRun> mapped_kernel_runs() const;
    // Kernel address ranges {vaddr, size} under present entries of sound tables whose table the
    // dump lacks (WalkStats::absent_tables; a dump cut below the tables the kernel allocated at the
    // top of RAM loses those of vmalloc, vmemmap and the direct map), ascending, disjoint, at most
    // 65,536. The kernel may map any page in them: a word pointing there is a pointer field of the
    // memory graph whose target the dump lacks, as under a present table, so that cutting the
    // tables does not turn stack, struct page and per-CPU pointers into data (issue #11 item 4).
    // Not mapped memory the dump lacks (they may map far less than they span). Same walk as kernel_runs().
    std::span<const std::pair<uint64_t, uint64_t>> absent_table_spans() const;
    // True when a word holding `value` is a pointer field of the memory graph: `value` lies in
    // mapped_kernel_runs() or absent_table_spans() (two binary searches). What the graph builder's
    // own per-word test (graph/memory_graph.cpp, MappedPages) answers, for one word at a time.
    bool pointer_field_value(uint64_t value) const;
    // kernel_runs() with each physical page once, at its lowest virtual address (the direct map
    // for most pages), sorted by vaddr: what a scan over kernel memory reads so that it reads each
    // page of the dump once, not once per alias. Computed on each call.
    std::vector<VirtualRun> distinct_runs() const;

    // What the kernel_runs() walk saw and skipped, for diagnostics ("maps nothing because …").
    //   tables          page tables read (the work bound: at most data 4 KiB pages + 4096 of
    //                   them, else kernel_runs() throws InputError — only shared/looping tables can
    //                   exceed it, since in a tree every table is a distinct present page)
    //   absent_tables   entries pointing to a table that is not in the dump (not in any run: cut
    //                   off, a page that does not decompress, a hole of an ELF/LiME/kdump capture)
    //   absent_table_pages  distinct such tables (a lower bound when absent_pages_capped: more than
    //                   65,536 of them)
    //   absent_bytes    kernel virtual address space those entries would map (entries × the span
    //                   one entry of their level covers: 1 GiB for a PUD entry, 2 MiB for a PMD's)
    //   loops           entries pointing back to a table on their own walk path (skipped)
    //   reserved        large-page entries with reserved address bits set (skipped, as the CPU would fault)
    //   aliases_skipped mappings skipped because their physical page already had 4 kernel mappings
    //                   (entries whose table or large page was reached 4 times, and 4 KiB pages),
    //                   or, when a choice among aliases ran (alias_choice), because they rank
    //                   below the kMaxAliases best (the direct map's first, then by the dump's
    //                   pointers), get a negligible share of pointers, or lie below the direct map
    //                   that maps the same: work stays bounded by the dump's distinct pages, and
    //                   crafted aliases cannot push the kernel's own mappings out; see warnings()
    //                   and graph/translation.cpp
    //   distinct_pages  present physical pages that kernel_runs() maps (each once or more)
    struct WalkStats {
        uint64_t tables = 0, absent_tables = 0, loops = 0, reserved = 0, aliases_skipped = 0, distinct_pages = 0;
        uint64_t absent_table_pages = 0, absent_bytes = 0;
        // Of absent_tables, the entries found in malformed tables (paging::TableVerdict): junk
        // pointing anywhere, where absent tables under sound ones say the dump was cut.
        uint64_t absent_tables_malformed = 0;
        uint64_t aliases_espfix = 0;   // of aliases_skipped, those in the x86-64 espfix area (by design)
        // The 4 KiB pages those skipped mappings span (a skipped table entry: its whole span), and
        // of them the espfix area's; what the crafted-tables warning weighs.
        uint64_t alias_pages_skipped = 0, alias_pages_espfix = 0;
        bool absent_pages_capped = false;
        // Aliases were chosen by the direct map's base or the dump's pointers
        // (paging::PointerEvidence), not by lowest address: set when the choice ran and either
        // said something.
        bool aliases_by_evidence = false;
        // The choice among aliases (set when it ran): the direct map's base it anchored on
        // (paging::direct_map_anchor; 0 when none was found, several tied, or the pointers
        // overruled it; `direct_map_candidates` says how many words qualified), and
        // the skipped alias the dump's pointers used most, with its pointer count (its granule's,
        // PointerEvidence) beside that of the best alias kept for the same table or page.
        uint64_t direct_map = 0;
        uint32_t direct_map_candidates = 0;
        // A base the kernel image held that the dump's pointers contradicted (its granule got
        // fewer than 1/16 of the pointers of another 1 GiB-aligned address the tables map to
        // physical 0: a forged page_offset_base), with both counts; pointer counts chose instead.
        uint64_t direct_map_overruled = 0, overruled_own_pointers = 0, overruled_other_pointers = 0;
        bool alias_choice = false;
        uint64_t skipped_va = 0, skipped_pointers = 0, kept_va = 0, kept_pointers = 0;
        // Present pages whose direct-map address lies under an absent table (of a sound table: a
        // cut dump loses the tables the kernel allocated at the top of RAM, a kdump page may not
        // decode, or entries were pointed past the file), mapped at direct_fill_base + paddr: the
        // kernel maps its lowmem linearly at one base (page_offset_base, which the kernel image
        // holds, on x86-64; PAGE_OFFSET on 32-bit and PAE). 0 when none.
        uint64_t direct_fill_pages = 0, direct_fill_base = 0;
    };
    WalkStats walk_stats() const;   // enumerates first if needed
    // The lowest absent table pages (at most 3), ascending; enumerates first if needed.
    std::span<const uint64_t> absent_table_sample() const;
    // What the user should know about this translation, one line each, no tool prefix, in a fixed
    // order (enumerates first if needed; the same lines whatever the thread count):
    //  - how the root was chosen when the dump's own root was set aside (detect(): a CR3 from the
    //    ELF note that maps nothing, replaced by the search's);
    //  - page-table pages absent from the dump: how many, the first physical addresses, how much
    //    kernel address space they would map ("translation: 3 page-table pages are not in the
    //    dump …"): memory the graph silently lacks otherwise;
    //  - every choice among aliases (graph/translation.cpp, enumerate: aliases beyond the bound
    //    outside the espfix area, which aliases by design, or tables reached from several
    //    addresses): what decided it — the direct map's base found in the kernel image, or pointer
    //    counts alone, "which a forged dump can inflate: a forged alias may have won" — and an
    //    alias skipped with its pointers beside the one kept: crafted or corrupt tables. A cut
    //    dump's espfix pages do not make it fire;
    //  - the direct map's present pages mapped linearly under absent tables (direct_fill_pages).
    // Empty for a complete, honest dump. dmgraph prints them; dmdetect through BuildOptions::warn.
    std::vector<std::string> warnings() const;

    const PhysicalLayer& physical() const noexcept { return *phys_; }

private:
    std::optional<uint64_t> filled(uint64_t vaddr) const noexcept;   // the fill's paddr of vaddr
    const PhysicalLayer* phys_;
    PagingMode mode_;
    uint64_t dtb_;
    uint64_t kernel_base_;
    mutable std::vector<VirtualRun> kernel_runs_;
    mutable std::vector<VirtualRun> mapped_runs_, fill_runs_;
    mutable std::vector<std::pair<uint64_t, uint64_t>> absent_spans_;
    mutable bool kernel_runs_done_ = false;
    mutable WalkStats stats_{};
    mutable std::vector<uint64_t> absent_sample_;
    std::vector<std::string> root_notes_;   // detect(): how the root was chosen, when the user should know
};

}  // namespace deepmem
