// dm-attack: an attacked copy of a dataset dump, for the robustness comparison of issue #6.
//
//   dm-attack dkom|tamper|noise|plant|smear --in DUMP_DIR --out OUT_DIR --seed S [--count N] [--fraction F]
//             [--types task_struct,…] [--mode random|plausible]
//   dm-attack hide --in DUMP_DIR --out OUT_DIR --seed S --weights MODEL [--graph DMG] [--count N] [--budget W]
//   dm-attack hide --from psscan|pslist --in DUMP_DIR --out OUT_DIR --seed S [--count N]
//
// DUMP_DIR is a tools/make-dataset dump directory (dump.elf, labels.jsonl; its kernel files when
// there, read by dump_dir_kernel_files: without them the BTF and symbols come from the dump,
// train/kernel_from_dump.hpp; dkom needs both, tamper the BTF, noise and plant neither).
// OUT_DIR (never DUMP_DIR nor inside it; absent or an empty directory, else refused) is built in a temporary
// directory beside it and renamed into place when the attack is done, so a refused or failed run
// leaves none (graph/file_io.hpp AtomicDirectory: a killed run's temporary is removed by a later run
// once an hour old; an existing empty OUT_DIR keeps its mode); the input files are checked first (regular files:
// a kernel file linked to /dev/zero or a FIFO is refused; hide's model against the dump's word
// size), before the dump is copied. It gets dump.elf (a modified copy: bytes are
// changed through the physical layer's runs, i.e. at the file offsets backing each physical
// address), labels.jsonl and labels.tsv (the unchanged truth, copied), kallsyms, vmlinuz, vmlinux and
// System.map when DUMP_DIR has them (symlinks to the originals' targets) and attack.json (the seed, the parameters
// and every change).
//
// Attacks
//   dkom    Hides --count processes (default 3; random thread-group leaders with PID > 1), as a
//           rootkit would while keeping the kernel consistent:
//             init_task.tasks: list_del_init() of the leader (neighbours relinked; the node points at
//               itself, so the kernel's own list_del at exit stays harmless);
//             pid hash: every hashed task->pid_links[type] of the leader and each of its threads is
//               removed from its struct pid's tasks[type] hlist (*pprev = next, next->pprev = pprev),
//               and left as an empty node whose pprev points at its own next (a later detach_pid's
//               hlist_del writes into the node itself). The struct pid stays in the namespace's idr,
//               as with a task being reaped: find_task_by_vpid()/pid_task() now return NULL, so /proc,
//               kill() and every pid lookup miss the task.
//           Threads stay on their signal->thread_head list (the process keeps running).
//           With --types module (or task_struct,module,…): hides --count modules (default 3, random)
//           by list_del_init(&mod->list) on the `modules` list (kernel/module/main.c), what lsmod
//           and /proc/modules walk. With file: hides --count open files held by fds alone (not
//           mapped): every fd table slot holding one set to NULL, its open_fds bit cleared, as lsof
//           and /proc/PID/fd read them. attack.json lists each under "hidden" with its "type".
//   tamper  Overwrites comm, pid, tgid, __state and flags of --count live task_structs (default 10,
//           random): --mode random (default) with random values (comm bytes ≥ 0x80, pid/tgid beyond
//           PID_MAX_LIMIT, __state and flags random 32-bit words), --mode plausible with values of
//           another live task (wrong but well-formed: scanners keep matching).
//   noise   For every live labeled object of --types (default task_struct), replaces round(F · n)
//           of its n non-pointer bytes, chosen at random, by different random bytes. A byte is a
//           pointer byte when its aligned word (the dump's 8 or 4 bytes) holds a kernel address (≥ the layer's kernel base).
//   plant   Writes --count (default 8) fake pointers into each live object of --types, at random
//           aligned non-pointer words, each to a random 8-aligned offset inside another live
//           task_struct; and floods fraction F (default 0.1) of the all-zero direct-map pages with
//           such pointers (every word).
//   smear   Acquisition smear (memory changing while it is copied): fraction F (default 0.05) of the
//           non-zero physical pages the kernel's direct map covers, chosen at random, are each
//           overwritten with the contents of another such page (its frame read after reuse). Page
//           tables (every table of the kernel half reached from the dump's root) are left alone:
//           the dump's own translation stays what it was. attack.json lists the smeared pages
//           ("pages": physical addresses), so objects with no byte on them are the intact ones.
//           ("from": the page each was copied from, in the same order). --pages PA[:FROM],…: these
//           pages instead (each a candidate), each copied from FROM when given, else from a random
//           candidate: a smear replayed (its "pages" and "from" joined), or aimed at a structure.
//   hide    The smallest edit that hides an object from deepmem (issue #13 item 3, white-box): for
//           --count (default 20) random live objects of the type of the model --weights (any of the
//           six), the greedy search of train/hide.hpp with that model (its threshold) over each
//           object's non-pointer words outside the fields the kernel needs (protected_fields), each
//           tried with 0, with its lowest bit flipped (1 byte), with a random value below the kernel
//           base and with the same word of 3 other random live objects of the type; at most --budget
//           (64) words per object, each on the original graph (what hiding it alone costs; every
//           object's edits are written). An object is searched at its graph address (a module in the
//           module area at its direct-map alias: "graph_vaddr"), where dmdetect reports it, over its
//           BTF size (its words up to the labels' size when smaller: x86's task_struct). An object the
//           model does not detect before any edit is skipped ("not detected before any edit" and its
//           score; a warning counts them: a model of another build?). The graph is --graph (a .dmg of
//           DUMP_DIR's dump.elf, e.g. DUMP_DIR/dump.dmg: 64 of its nodes' bytes are compared with the
//           dump's) or built from the dump. attack.json lists per object the edits (offset, old, new),
//           scores before and after, bytes changed, model runs and seconds, and what the classic
//           techniques would need for the same object: for a task, psscan's 1 byte comm[0] = 0 (its Comm check; verified with
//           check_task, psscan's own predicate, on the edited bytes, not written) and pslist's unlink
//           from the list it walks (init_task.tasks for a leader, signal->thread_head for a thread);
//           for a module, lsmod's unlink from `modules`: the two neighbours' link words, 2 pointers
//           (16 bytes, 8 on 32-bit) written (dkom does this and more). Words are the dump's (8 or 4
//           bytes); the model must have been trained on graphs of that word size.
//           --from psscan|pslist writes those cheapest edits instead, on the same tasks (the same
//           seed draws the same sample), for dmbaseline to verify; attack.json gives each task's
//           field, bytes written and bytes changed (bytes that differ from the original).
#include "detect/detect.hpp"
#include "detect/fit.hpp"
#include "graph/file_io.hpp"
#include "graph/layers.hpp"
#include "graph/text_lines.hpp"
#include "train/baselines.hpp"
#include "train/hide.hpp"
#include "train/kernel_from_dump.hpp"
#include "train/kernel_layout.hpp"
#include "train/labeler.hpp"

#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <chrono>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace deepmem;

namespace {

const char* kUsage =
    "usage: dm-attack dkom|tamper|noise|plant|smear --in DUMP_DIR --out OUT_DIR --seed S [--count N] [--fraction F]\n"
    "                 [--types task_struct,…] [--mode random|plausible] [--pages PA[:FROM],…]\n"
    "       dm-attack hide --in DUMP_DIR --out OUT_DIR --seed S --weights MODEL [--graph DMG] [--count N] [--budget W]\n"
    "       dm-attack hide --from psscan|pslist --in DUMP_DIR --out OUT_DIR --seed S [--count N]\n"
    "OUT_DIR must not exist or be empty; it appears only when the attack succeeds.\n";

// The output dump (an AtomicFile's temporary, renamed into place only when the attack is done),
// mapped shared and writable: reads through the layers see earlier writes.
class WritableDump {
public:
    WritableDump(int fd, const std::string& name) : name_(name) {
        struct stat sb {};
        if (::fstat(fd, &sb) != 0 || sb.st_size <= 0) throw InputError("cannot map " + name + ": empty or unreadable");
        size_ = static_cast<uint64_t>(sb.st_size);
        void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) throw InputError("cannot map " + name + ": " + std::strerror(errno));
        data_ = static_cast<uint8_t*>(p);
        phys_ = PhysicalLayer::from_bytes(std::span<const uint8_t>(data_, size_));
        tl_.emplace(TranslationLayer::detect(*phys_));
        mem_.emplace(*tl_);
    }
    ~WritableDump() { ::munmap(data_, size_); }
    WritableDump(const WritableDump&) = delete;
    WritableDump& operator=(const WritableDump&) = delete;
    // Every write on disk (before the file is committed).
    void sync() const {
        if (::msync(data_, size_, MS_SYNC) != 0) throw InputError("cannot write " + name_ + ": " + std::strerror(errno));
    }
    const TranslationLayer& tl() const { return *tl_; }
    const KernelMemory& mem() const { return *mem_; }
    uint8_t* at_physical(uint64_t paddr) {
        for (const PhysicalRun& r : phys_->runs())
            if (paddr >= r.paddr && paddr < r.paddr + r.size)   // not a page assembled from split ranges: a copy
                return r.file_offset < size_ ? data_ + r.file_offset + (paddr - r.paddr) : nullptr;
        return nullptr;
    }
    // Writes through translation, byte by byte across pages; false when a byte is unmapped.
    bool write(uint64_t va, const void* src, uint64_t n) {
        const uint8_t* s = static_cast<const uint8_t*>(src);
        for (uint64_t i = 0; i < n; ++i) {
            auto pa = tl_->translate(va + i);
            uint8_t* d = pa ? at_physical(*pa) : nullptr;
            if (!d) return false;
            *d = s[i];
        }
        return true;
    }
    // A kernel pointer (TranslationLayer::word_size() bytes, little-endian) at va.
    bool write_ptr(uint64_t va, uint64_t v) { return write(va, &v, tl_->word_size()); }
    std::optional<uint64_t> read_ptr(uint64_t va) const { return mem_->word(va, tl_->word_size()); }
    std::optional<uint32_t> read32(uint64_t va) const {
        uint32_t v;
        if (!mem_->read(va, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4))) return std::nullopt;
        return v;
    }

private:
    std::string name_;
    uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
    std::unique_ptr<PhysicalLayer> phys_;
    std::optional<TranslationLayer> tl_;
    std::optional<TranslatedMemory> mem_;
};

// The task_struct/signal_struct fields the attacks rewrite, from the one kernel layout.
struct Offsets {
    uint64_t tasks, pid, tgid, comm, comm_len, state, flags, signal, thread_node, pid_links, pid_types, thread_head;
    explicit Offsets(const KernelLayout& L)
        : tasks(L.tasks), pid(L.pid), tgid(L.tgid), comm(L.comm), comm_len(L.comm_len),
          state(KernelLayout::need(L.state, "task_struct.__state")), flags(KernelLayout::need(L.flags, "task_struct.flags")),
          signal(L.signal), thread_node(KernelLayout::need(L.thread_node, "task_struct.thread_node")),
          pid_links(KernelLayout::need(L.pid_links, "task_struct.pid_links")), pid_types(L.pid_types),
          thread_head(KernelLayout::need(L.thread_head, "signal_struct.thread_head")) {}
};

std::string comm_of(const KernelMemory& mem, uint64_t t, const Offsets& o) {
    std::string s(o.comm_len, '\0');
    if (!mem.read(t + o.comm, std::span<uint8_t>(reinterpret_cast<uint8_t*>(s.data()), s.size()))) return {};
    s.resize(std::strlen(s.c_str()));
    return s;
}

// list_del_init(node) (include/linux/list.h): the neighbours relinked, the node pointing at itself
// (so the kernel's own later list_del stays harmless). `what` names the node in the error when its
// links are unreadable.
void list_del_init(WritableDump& dump, uint64_t node, const std::string& what) {
    const uint64_t W = dump.tl().word_size();
    auto next = dump.read_ptr(node), prev = dump.read_ptr(node + W);
    if (!next || !prev) throw InputError(what + ": list links unreadable");
    // Its neighbours must link back (a node half-linked in a corrupt dump is not hidden by this).
    if (!list_links_back(dump.mem(), node, W))
        throw InputError(what + ": its list neighbours do not link back to it (a corrupt list?)");
    if (!dump.write_ptr(*prev, *next) || !dump.write_ptr(*next + W, *prev) || !dump.write_ptr(node, node) ||
        !dump.write_ptr(node + W, node))
        throw InputError(what + ": list links unwritable");
}

// `count` of `candidates` drawn at random (all when fewer, with a warning naming `what` and
// `why`), ascending.
std::vector<uint64_t> draw(std::vector<uint64_t> candidates, uint64_t count, std::mt19937_64& rng, const char* what,
                           const std::string& why) {
    std::shuffle(candidates.begin(), candidates.end(), rng);
    if (candidates.size() > count) candidates.resize(count);
    if (candidates.size() < count)   // say so, do what the bytes allow
        std::fprintf(stderr, "dm-attack: warning: dkom hides %zu of the %llu %s asked: %s\n", candidates.size(),
                     static_cast<unsigned long long>(count), what, why.c_str());
    std::sort(candidates.begin(), candidates.end());
    return candidates;
}

// The physical pages of the page tables that map the kernel half (x86-64 4- or 5-level paging from
// the dump's root): smear leaves them alone.
std::set<uint64_t> kernel_table_pages(WritableDump& dump) {
    const PagingMode mode = dump.tl().mode();
    if (mode != PagingMode::X86_64_4Level && mode != PagingMode::X86_64_5Level)
        throw InputError("smear: only x86-64 dumps (4- or 5-level paging)");
    constexpr uint64_t kPresent = 1, kLarge = 0x80, kAddr = 0x000ffffffffff000ull;
    std::set<uint64_t> tables;
    std::vector<std::pair<uint64_t, int>> todo{{dump.tl().dtb() & kAddr, mode == PagingMode::X86_64_5Level ? 5 : 4}};
    while (!todo.empty()) {
        auto [table, level] = todo.back();
        todo.pop_back();
        const uint8_t* page = dump.at_physical(table);
        if (!page || !tables.insert(table).second) continue;
        const bool top = tables.size() == 1;
        for (int i = top ? 256 : 0; i < 512; ++i) {   // the kernel half of the root
            uint64_t e;
            std::memcpy(&e, page + 8 * i, 8);
            if (!(e & kPresent) || level == 1 || (level <= 3 && (e & kLarge))) continue;
            todo.emplace_back(e & kAddr, level - 1);
        }
    }
    return tables;
}

// The direct map [base, base + span): x86-64, page_offset_base's value (arch/x86/kernel/head64.c)
// and its 64 TiB ceiling, here 1 TiB; 32-bit and PAE, PAGE_OFFSET (the kernel's lowest address,
// 0xc0000000 under Debian's 3G/1G split) and lowmem's 896 MiB (arch/x86/include/asm/page_32_types.h).
// nullopt when x86-64 symbols lack page_offset_base.
std::optional<std::pair<uint64_t, uint64_t>> direct_map(const WritableDump& dump, const KernelTypesAndSymbols& kernel) {
    if (dump.tl().word_size() == 4) return std::pair{dump.tl().kernel_base(), uint64_t{896} << 20};
    auto pob = kernel.symbols ? kernel.symbols->address("page_offset_base") : std::nullopt;
    auto base = pob ? dump.read_ptr(*pob) : std::nullopt;
    if (!base) return std::nullopt;
    return std::pair{*base, uint64_t{1} << 40};
}

int run(int argc, char** argv) {
    po::options_description o("options");
    o.add_options()("help,h", "this text")("in", po::value<std::string>()->required(), "dataset dump directory")(
        "out", po::value<std::string>()->required(), "output directory (created; refused when it exists and is not empty)")(
        "seed", po::value<Whole<uint64_t>>()->required(), "random seed (recorded in attack.json)")(
        "count", po::value<Whole<uint64_t>>(), "dkom: processes (3); tamper: tasks (10); plant: pointers per object (8); hide: tasks (20)")(
        "weights", po::value<std::string>(), "hide: the model to hide from (its threshold)")(
        "graph", po::value<std::string>(), "hide: the memory graph (.dmg) of DUMP_DIR's dump (else built)")(
        "from", po::value<std::string>()->default_value("deepmem"), "hide: deepmem (the search), psscan or pslist (their cheapest edit)")(
        "budget", po::value<Whole<uint64_t>>()->default_value(Whole<uint64_t>{64}, "64"), "hide: words edited at most per task")(
        "fraction", po::value<double>(), "noise: fraction of non-pointer bytes; plant: fraction of zero pages flooded (0.1); smear: fraction of pages (0.05)")(
        "types", po::value<std::string>()->default_value("task_struct"), "noise/plant: object types, comma-separated; dkom: task_struct, module, file")(
        "mode", po::value<std::string>()->default_value("random"), "tamper: random|plausible")(
        "pages", po::value<std::string>(), "smear: these physical pages (0x…[:0xFROM], comma-separated), not a random fraction");
    const auto parsed = parse_command_line(argc, argv, o, {{"attack", 1}}, kUsage);
    if (!parsed) return 0;
    const po::variables_map& vm = *parsed;
    if (!vm.count("attack")) throw InputError("missing ATTACK argument");
    const std::string attack = vm["attack"].as<std::string>();
    if (attack != "dkom" && attack != "tamper" && attack != "noise" && attack != "plant" && attack != "smear" &&
        attack != "hide")
        throw po::error("ATTACK must be dkom, tamper, noise, plant, smear or hide, not '" + attack + "'");
    if (vm.count("pages") && attack != "smear") throw po::error("--pages is for smear only");
    const std::string from = vm["from"].as<std::string>();
    if (from != "deepmem" && from != "psscan" && from != "pslist") throw po::error("--from must be deepmem, psscan or pslist");
    if (attack == "hide" && from == "deepmem" && !vm.count("weights")) throw InputError("hide needs --weights MODEL");
    const fs::path in = vm["in"].as<std::string>(), out = vm["out"].as<std::string>();
    if (in.empty()) throw InputError("--in is empty: name the dump directory");
    if (out.empty()) throw InputError("--out is empty: name the output directory");
    const uint64_t seed = vm["seed"].as<Whole<uint64_t>>().value;
    const std::string mode = vm["mode"].as<std::string>();
    if (mode != "random" && mode != "plausible") throw po::error("--mode must be random or plausible");
    std::set<std::string> types;
    {
        std::string t = vm["types"].as<std::string>();
        for (size_t p = 0; p <= t.size();) {
            size_t c = t.find(',', p);
            if (c == std::string::npos) c = t.size();
            if (c > p) types.insert(t.substr(p, c - p));
            p = c + 1;
        }
    }
    if (types.empty()) throw InputError("--types names no object type ('" + vm["types"].as<std::string>() + "')");
    if (attack == "dkom")
        for (const std::string& t : types)
            if (t != "task_struct" && t != "module" && t != "file") throw InputError("dkom hides task_struct, module and file objects, not " + t);
    double fraction = vm.count("fraction") ? vm["fraction"].as<double>() : (attack == "plant" ? 0.1 : 0.05);
    if (!(fraction >= 0 && fraction <= 1)) throw po::error("--fraction must be in [0, 1]");

    for (const char* f : {"dump.elf", "labels.jsonl"})
        if (!fs::exists(in / f)) throw InputError((in / f).string() + " missing");
    // The source dump directory is evidence: never written, not even through a hard link or a
    // symlinked OUT_DIR.
    if (same_file(in.string(), out.string()))
        throw InputError("refusing to write into " + out.string() + ": it is the input directory " + in.string());
    for (fs::path up = fs::absolute(out).lexically_normal(); up.has_relative_path(); up = up.parent_path())
        if (fs::exists(up) && same_file(in.string(), up.string()))
            throw InputError("refusing to write into " + out.string() + ": it lies inside the input directory " + in.string());
    const std::string inputs[] = {(in / "dump.elf").string(), (in / "labels.jsonl").string(),
                                  (in / "labels.tsv").string(), (in / "kallsyms").string(), (in / "vmlinuz").string(),
                                  (in / "vmlinux").string(), (in / "System.map").string()};
    const std::string outputs[] = {(out / "dump.elf").string(), (out / "labels.jsonl").string(),
                                   (out / "labels.tsv").string(), (out / "attack.json").string()};
    refuse_output_over_inputs(outputs, inputs);
    // The cheap checks before the expensive work (the copy of the dump, its translation, the BTF):
    // the input files are regular files (a kernel file linked to /dev/zero or a FIFO is refused,
    // not read without end), and hide's model was trained on the dump's word size.
    const char* kernel_file_names[] = {"vmlinuz", "kallsyms", "vmlinux", "System.map"};
    for (const char* f : {"dump.elf", "labels.jsonl", "labels.tsv"})
        if (fs::exists(fs::symlink_status(in / f))) require_regular_file((in / f).string(), "input");
    for (const char* f : kernel_file_names)
        if (fs::exists(fs::symlink_status(in / f))) require_regular_file((in / f).string(), "kernel file");
    const KernelFiles files = dump_dir_kernel_files(in.string());
    const std::vector<TruthObject> truth = read_truth((in / "labels.jsonl").string());   // a bad line: refused here
    Detector det;   // hide's model, loaded and checked against the dump before anything is copied
    if (attack == "hide" && from == "deepmem") {
        const std::string weights = vm["weights"].as<std::string>();
        det.add_model(weights);
        const Model& model = det.model(0);
        if (det.model_count() > 1 || det.is_joint_part(0))   // its search runs the model's own network
            throw InputError("hide: " + weights + " is a joint model (several types, one network): give a single-type model");
        if (!has_protected_fields(model.object_type))
            throw InputError("hide: " + weights + " is a " + model.object_type + " model; hide knows task_struct, mm_struct, cred, file, dentry and module");
        const auto phys = PhysicalLayer::open((in / "dump.elf").string());
        const uint64_t dump_word = TranslationLayer::detect(*phys).word_size();
        if (model.graph.word_size != dump_word)
            throw InputError("hide: " + weights + " was trained on " + word_size_text(model.graph.word_size) + "; this dump has " +
                             word_size_text(uint32_t(dump_word)));
    }
    // Every output goes into a fresh directory beside OUT_DIR, renamed onto it when the attack is
    // done (graph/file_io.hpp AtomicDirectory): a refused or failed run leaves no OUT_DIR. An
    // existing OUT_DIR that is not empty is refused here.
    std::string out_name = out.string();
    while (out_name.size() > 1 && out_name.back() == '/') out_name.pop_back();   // "x/out/": the parent is x
    const fs::path parent = fs::absolute(out_name).parent_path();
    if (!parent.empty()) fs::create_directories(parent);
    AtomicDirectory staging(out.string());
    const fs::path work = staging.temp_path();
    for (const char* f : {"labels.jsonl", "labels.tsv"}) {
        if (!fs::exists(in / f)) continue;
        const auto bytes = read_whole_file((in / f).string(), "labels");
        write_file_atomically((work / f).string(), {reinterpret_cast<const char*>(bytes.data()), bytes.size()});
    }
    // The kernel files, linked beside the output (OUT_DIR is a dump directory too), and read as
    // make-dataset labelled the dump (train/kernel_from_dump.hpp, dump_dir_kernel_files).
    for (const char* f : kernel_file_names)
        if (fs::exists(in / f)) fs::create_symlink(fs::canonical(in / f), work / f);
    AtomicFile dump_out((work / "dump.elf").string());
    dump_out.write(MappedFile((in / "dump.elf").string()).bytes());

    WritableDump dump(dump_out.fd(), dump_out.path());
    const KernelMemory& mem = dump.mem();
    const uint64_t kbase = dump.tl().kernel_base();
    const uint64_t W = dump.tl().word_size();   // list_head / hlist_node links are pointers of W bytes
    const KernelTypesAndSymbols kernel = kernel_types_and_symbols(dump.tl(), files.kernel, files.kallsyms, files.system_map);
    for (const auto& n : kernel.notes) std::fprintf(stderr, "dm-attack: note: %s\n", n.c_str());
    std::mt19937_64 rng(seed);
    // A 4-byte field of an object the labels name: a label the dump does not hold is bad input.
    auto need32 = [&](uint64_t va) -> uint32_t {
        const auto v = dump.read32(va);
        if (!v) throw InputError("labels.jsonl names an object whose bytes at " + hex(va) + " the dump does not hold");
        return *v;
    };

    std::vector<uint64_t> live_tasks;
    for (const TruthObject& t : truth)
        if (t.type == "task_struct" && !t.freed) live_tasks.push_back(t.vaddr);

    std::string changes;   // JSON array body
    auto add_change = [&](const std::string& obj) { changes += (changes.empty() ? "\n  " : ",\n  ") + obj; };
    std::string params;

    // dkom's kinds share the count (objects per kind).
    const uint64_t dkom_count = vm.count("count") ? vm["count"].as<Whole<uint64_t>>().value : 3;
    if (attack == "dkom") {
        std::string tl;
        for (const auto& t : types) tl += std::string(tl.empty() ? "" : ",") + "\"" + t + "\"";
        params = "\"count\":" + std::to_string(dkom_count) + ",\"types\":[" + tl + "]";
    }
    if (attack == "dkom" && types.count("module")) {
        // Modules: list_del_init(&mod->list) on the `modules` list (kernel/module/main.c), what
        // rootkits do to leave lsmod and /proc/modules; nothing else refers to the list node.
        const btf::Btf& btf = kernel.require_btf("dkom");
        const Kallsyms& syms = kernel.require_symbols("dkom");
        const KernelLayout L(btf);
        const uint64_t head = syms.require("modules");
        std::vector<uint64_t> mods;
        std::set<uint64_t> seen;   // a list that loops short of its head ends at the repeat
        for (auto cur = dump.read_ptr(head); cur && *cur != head && plausible_list_pointer(*cur, kbase, W) &&
                                             seen.insert(*cur).second && mods.size() < (1u << 16);
             cur = dump.read_ptr(*cur))
            mods.push_back(*cur - L.mod_list);
        for (uint64_t m : draw(std::move(mods), dkom_count, rng, "modules", "the modules list holds no more")) {
            list_del_init(dump, m + L.mod_list, "module " + hex(m));
            std::string name(L.mod_name_len, '\0');
            if (!mem.read(m + L.mod_name, std::span<uint8_t>(reinterpret_cast<uint8_t*>(name.data()), name.size()))) name.clear();
            name.resize(std::strlen(name.c_str()));
            add_change("{\"module\":\"" + hex(m) + "\",\"name\":" + json_string(name) + ",\"hidden\":[{\"type\":\"module\",\"vaddr\":\"" +
                       hex(m) + "\"}]}");
        }
    }
    if (attack == "dkom" && types.count("file")) {
        // Open files: every fd table slot that holds the file (files_struct.fdt → fdtable.fd[i],
        // include/linux/fdtable.h) set to NULL and its open_fds bit cleared, in every task's table:
        // what lsof and /proc/PID/fd (and the labeler's fd walk) read. A file also mapped (vm_file,
        // exe_file) stays reachable there; only files held by fds alone are chosen.
        const btf::Btf& btf = kernel.require_btf("dkom");
        const Kallsyms& syms = kernel.require_symbols("dkom");
        const KernelLayout L(btf);
        std::map<uint64_t, std::vector<FdSlot>> slots;   // file → the fd table slots holding it
        // Bounded on forged tables (attacker 22): each fdtable once (threads and forged files_structs
        // may share one), read by the labeler's read_fd_table (max_fds within its limit), at most
        // 2^22 open slots over all tables.
        constexpr uint64_t kMaxSlots = 1u << 22;
        uint64_t open_slots = 0;
        std::set<uint64_t> tables;
        for (const Detection& d : pslist(mem, btf, syms)) {
            auto files = dump.read_ptr(d.vaddr + L.files);
            if (!files || !*files || !plausible_list_pointer(*files, kbase, W)) continue;
            auto fdt = dump.read_ptr(*files + L.fdt);
            if (!fdt || !tables.insert(*fdt).second) continue;
            for (const FdSlot& sl : read_fd_table(mem, L, *files, W, LabelerOptions{}.max_fds).open) {
                if (!sl.file || !*sl.file) continue;
                if (++open_slots > kMaxSlots)
                    throw InputError("dkom: more than " + std::to_string(kMaxSlots) + " open fd slots over the fd tables (forged tables?)");
                slots[*sl.file].push_back(sl);
            }
        }
        // Files the labeler reaches with every fd slot read as NULL (a VMA's vm_file, an mm's
        // exe_file): mapped, so not hidden by this edit; left out.
        class NoFds final : public KernelMemory {
        public:
            NoFds(const KernelMemory& base, std::set<uint64_t> slots, uint64_t w) : base_(base), slots_(std::move(slots)), w_(w) {}
            bool read(uint64_t va, std::span<uint8_t> out) const override {
                if (!base_.read(va, out)) return false;
                for (auto it = slots_.lower_bound(va >= w_ ? va - w_ + 1 : 0); it != slots_.end() && *it < va + out.size(); ++it)
                    for (uint64_t i = 0; i < w_; ++i)
                        if (*it + i >= va && *it + i < va + out.size()) out[*it + i - va] = 0;
                return true;
            }
            std::optional<uint64_t> physical(uint64_t va) const override { return base_.physical(va); }
            uint64_t kernel_base() const override { return base_.kernel_base(); }
        private:
            const KernelMemory& base_;
            std::set<uint64_t> slots_;
            uint64_t w_;
        };
        std::set<uint64_t> all_slots, mapped;
        for (const auto& [f, list] : slots)
            for (const FdSlot& sl : list) all_slots.insert(sl.entry);
        for (const Label& l : label_kernel_objects(NoFds(mem, all_slots, W), btf, syms, LabelerOptions::reached_only()).labels)
            if (l.type == "file") mapped.insert(l.vaddr);
        std::vector<uint64_t> files;
        for (const TruthObject& t : truth)
            if (t.type == "file" && !t.freed && slots.count(t.vaddr) && !mapped.count(t.vaddr)) files.push_back(t.vaddr);
        for (uint64_t f : draw(std::move(files), dkom_count, rng, "files", "no more open files held by fds alone")) {
            for (const FdSlot& sl : slots[f]) {
                uint8_t byte = 0;
                if (!mem.read(sl.bitmap_byte, std::span<uint8_t>(&byte, 1)) || !dump.write_ptr(sl.entry, 0))
                    throw InputError("dkom: file " + hex(f) + ": fd slot " + hex(sl.entry) + " or its open_fds bit unwritable");
                byte = uint8_t(byte & ~(1u << sl.fd % 8));
                if (!dump.write(sl.bitmap_byte, &byte, 1))
                    throw InputError("dkom: file " + hex(f) + ": open_fds byte " + hex(sl.bitmap_byte) + " unwritable");
            }
            add_change("{\"file\":\"" + hex(f) + "\",\"fd_slots\":" + std::to_string(slots[f].size()) +
                       ",\"hidden\":[{\"type\":\"file\",\"vaddr\":\"" + hex(f) + "\"}]}");
        }
    }
    if (attack == "dkom" && types.count("task_struct")) {
        const btf::Btf& btf = kernel.require_btf("dkom");
        const Kallsyms& syms = kernel.require_symbols("dkom");
        const Offsets off{KernelLayout(btf)};
        const uint64_t init_task = syms.require("init_task");
        std::vector<uint64_t> leaders;
        for (const Detection& d : pslist(mem, btf, syms)) {
            auto pid = dump.read32(d.vaddr + off.pid), tgid = dump.read32(d.vaddr + off.tgid);
            if (pid && tgid && *pid == *tgid && *pid > 1 && d.vaddr != init_task) leaders.push_back(d.vaddr);
        }
        const size_t listed = leaders.size();
        leaders = draw(std::move(leaders), dkom_count, rng, "processes",
                       "only " + std::to_string(listed) + " besides init are on init_task.tasks as read (a broken or short task list?)");
        // One struct pid's hlist: removes `node` (a task's pid_links[k]) the way hlist_del does.
        auto unhash = [&](uint64_t node) {
            auto next = dump.read_ptr(node), pprev = dump.read_ptr(node + W);
            if (!next || !pprev || *pprev == 0) return false;
            dump.write_ptr(*pprev, *next);
            if (*next) dump.write_ptr(*next + W, *pprev);
            dump.write_ptr(node, 0);
            dump.write_ptr(node + W, node);
            return true;
        };
        for (uint64_t l : leaders) {
            const uint32_t pid = need32(l + off.pid);
            const std::string comm = comm_of(mem, l, off);
            // Threads first, from the signal's thread list (before anything is changed).
            std::vector<uint64_t> group{l};
            if (auto sig = dump.read_ptr(l + off.signal)) {
                const uint64_t head = *sig + off.thread_head;
                auto cur = dump.read_ptr(head);
                std::set<uint64_t> seen;   // a list that loops short of its head ends at the repeat
                while (cur && *cur != head && plausible_list_pointer(*cur, kbase, W) && seen.insert(*cur).second) {
                    const uint64_t t = *cur - off.thread_node;
                    if (t != l) group.push_back(t);
                    cur = dump.read_ptr(*cur);
                }
                if (cur && *cur != head)
                    std::fprintf(stderr, "dm-attack: warning: the thread list of task %s does not return to its head "
                                         "(corrupt or looping at %s): %zu threads taken\n",
                                 hex(l).c_str(), hex(*cur).c_str(), group.size() - 1);
            }
            // init_task.tasks: list_del_init(&leader->tasks).
            list_del_init(dump, l + off.tasks, "task " + hex(l) + ": tasks");
            std::string tasks;
            for (uint64_t t : group) {
                uint64_t unhashed = 0;
                for (uint64_t k = 0; k < off.pid_types; ++k) unhashed += unhash(t + off.pid_links + k * 2 * W);
                tasks += std::string(tasks.empty() ? "" : ",") + "{\"type\":\"task_struct\",\"vaddr\":\"" + hex(t) + "\",\"pid\":" +
                         std::to_string(need32(t + off.pid)) + ",\"pid_links_unhashed\":" + std::to_string(unhashed) + "}";
            }
            add_change("{\"leader\":\"" + hex(l) + "\",\"pid\":" + std::to_string(pid) + ",\"comm\":" + json_string(comm) +
                       ",\"hidden\":[" + tasks + "]}");
        }
    } else if (attack == "dkom") {
        // modules and files alone: done above
    } else if (attack == "hide") {
        const btf::Btf& btf = kernel.require_btf("hide");
        const KernelLayout L(btf);
        const uint64_t count = vm.count("count") ? vm["count"].as<Whole<uint64_t>>().value : 20;
        const uint64_t budget = vm["budget"].as<Whole<uint64_t>>().value;
        // The searched type: the model's (any of the six); psscan and pslist hide tasks.
        const std::string type = from == "deepmem" ? det.model(0).object_type : std::string("task_struct");
        const std::vector<ByteRange> protect = protected_fields(L, type);   // InputError for a type it does not know
        std::vector<const TruthObject*> live;
        for (const TruthObject& t : truth)
            if (t.type == type && !t.freed) live.push_back(&t);
        std::vector<const TruthObject*> chosen = live;
        std::shuffle(chosen.begin(), chosen.end(), rng);
        if (chosen.size() > count) chosen.resize(count);
        std::sort(chosen.begin(), chosen.end(), [](const TruthObject* x, const TruthObject* y) { return x->vaddr < y->vaddr; });
        params = "\"count\":" + std::to_string(count) + ",\"from\":\"" + from + "\",\"type\":\"" + type + "\"";
        // The list a classic walk reads for this type, and the object's node on it: pslist's
        // (init_task.tasks for a leader, signal->thread_head for a thread) and lsmod's (`modules`,
        // module.list, kernel/module/main.c). Unlinking writes the two neighbours' link words.
        std::optional<Offsets> task_off;
        if (type == "task_struct") task_off.emplace(L);
        auto list_node = [&](uint64_t v) -> std::optional<uint64_t> {
            if (task_off) {
                const auto pid = dump.read32(v + task_off->pid), tgid = dump.read32(v + task_off->tgid);
                if (!pid || !tgid) return std::nullopt;
                return v + (*pid == *tgid ? task_off->tasks : task_off->thread_node);
            }
            if (type == "module") return v + L.mod_list;
            return std::nullopt;
        };
        if (from != "deepmem") {
            const Offsets& off = *task_off;
            // The classic techniques' cheapest edits, written, for dmbaseline to verify.
            for (const TruthObject* o : chosen) {
                const uint64_t t = o->vaddr;
                const auto pid_read = dump.read32(t + off.pid), tgid_read = dump.read32(t + off.tgid);
                if (!pid_read || !tgid_read) {   // a label outside the dump's memory
                    add_change("{\"vaddr\":\"" + hex(t) + "\",\"skipped\":\"unreadable\"}");
                    continue;
                }
                const uint32_t pid = *pid_read, tgid = *tgid_read;
                const std::string comm = comm_of(mem, t, off);
                std::string what;
                uint64_t written = 0, changed = 0;
                if (from == "psscan") {   // comm[0] = 0: psscan's Comm check fails (1 byte)
                    const uint8_t zero = 0;
                    if (comm.empty() || !dump.write(t + off.comm, &zero, 1)) continue;
                    what = "comm[0]", written = changed = 1;
                } else {   // pslist: off the list it walks (init_task.tasks for a leader, the thread list else)
                    const uint64_t node = *list_node(t);
                    const auto next = dump.read_ptr(node), prev = dump.read_ptr(node + W);
                    if (!next || !prev || !list_links_back(mem, node, W) || !dump.write_ptr(*prev, *next) ||
                        !dump.write_ptr(*next + W, *prev))
                        continue;
                    what = pid == tgid ? "tasks" : "thread_node";
                    written = 2 * W, changed = differing_bytes(node, *next, unsigned(W)) + differing_bytes(node, *prev, unsigned(W));
                }
                add_change("{\"vaddr\":\"" + hex(t) + "\",\"pid\":" + std::to_string(pid) + ",\"comm\":" + json_string(comm) +
                           ",\"leader\":" + (pid == tgid ? "true" : "false") + ",\"field\":\"" + what +
                           "\",\"bytes_written\":" + std::to_string(written) + ",\"bytes_changed\":" + std::to_string(changed) + "}");
            }
        } else {
        const std::string weights = vm["weights"].as<std::string>();
        const Model& model = det.model(0);   // loaded and checked against the dump's word size above
        const auto tg0 = std::chrono::steady_clock::now();
        if (vm.count("graph") && !MemoryGraph::is_graph_file(vm["graph"].as<std::string>()))
            throw InputError("--graph " + vm["graph"].as<std::string>() + " is no .dmg (dmgraph build DUMP_DIR/dump.elf -o G.dmg)");
        const MemoryGraph graph = vm.count("graph") ? det.open_graph(vm["graph"].as<std::string>())
                                                    : det.build_graph((in / "dump.elf").string());
        if (vm.count("graph")) {
            // The graph must be this dump's (its edits are written at the labels' addresses): the
            // feature bytes of 64 nodes spread over it, read back from the dump, agree.
            const auto va = graph.vaddr();
            const auto len = graph.length();
            const auto feats = graph.features();
            const uint64_t fb = graph.params().feature_bytes;
            uint64_t checked = 0, differ = 0;
            for (uint64_t k = 0; k < 64 && !va.empty(); ++k) {
                const uint64_t i = va.size() * k / 64;
                const uint64_t n = std::min<uint64_t>({fb, len[i], 4096 - va[i] % 4096});
                std::vector<uint8_t> b(n);
                ++checked;
                if (!mem.read(va[i], b) || !std::equal(b.begin(), b.end(), feats.begin() + i * fb)) ++differ;
            }
            if (differ * 4 > checked)
                throw InputError("--graph " + vm["graph"].as<std::string>() + " is not the graph of " + (in / "dump.elf").string() +
                                 ": " + std::to_string(differ) + " of " + std::to_string(checked) + " nodes sampled differ from the dump's bytes");
        }
        const double graph_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - tg0).count();
        params += ",\"budget_words\":" + std::to_string(budget) + ",\"weights\":" +
                 json_string(weights) + ",\"threshold\":" + std::to_string(model.threshold) + ",\"graph_seconds\":" +
                 std::to_string(graph_seconds);
        HideSearch search(graph, model);
        uint64_t undetected = 0;
        std::optional<TaskSignature> sig;   // psscan's, for a task's classic figure
        if (task_off) {
            sig = TaskSignature::from_btf(btf);
            sig->kernel_base = kbase;
        }
        // The object's base in the graph: the graph scans a physical page once, at its lowest kernel
        // vaddr (graph/memory_graph.hpp, Aliases), so a module in the module area is searched at its
        // direct-map alias, where dmdetect reports it.
        auto graph_base = [&](const TruthObject& o) -> uint64_t {
            if (!o.paddr || graph.node_containing(o.vaddr)) return o.vaddr;
            const auto pa = graph.paddr(), va = graph.vaddr();
            for (size_t n = 0; n < pa.size(); ++n)
                if (pa[n] >> 12 == *o.paddr >> 12) return va[n] - pa[n] + *o.paddr;
            return o.vaddr;
        };
        for (const TruthObject* o : chosen) {
            const uint64_t t = o->vaddr, g = graph_base(*o);
            std::vector<uint8_t> bytes(*L.object_size(type));   // the BTF's size, not the labels file's
            if (t % W != 0 || !mem.read(t, bytes)) {
                add_change("{\"vaddr\":\"" + hex(t) + "\",\"skipped\":\"unreadable or unaligned\"}");
                continue;
            }
            // Replacement values: 0, the word with its lowest bit flipped (1 byte), a random value below
            // the kernel base, and the same word of 3 other random live objects of the type (plausible values).
            std::vector<uint64_t> others;   // up to 3, in at most 64 draws (a labels file may list one address twice)
            for (int draw = 0; draw < 64 && others.size() < 3 && live.size() > 1; ++draw)
                if (const uint64_t x = live[rng() % live.size()]->vaddr; x != t) others.push_back(x);
            std::vector<WordCandidate> cands;
            // Words up to the labels' size when it is smaller (x86 allocates a task_struct of
            // arch_task_struct_size, less than BTF's sizeof: the rest is the next object's).
            const uint64_t extent = o->size > 0 && o->size < bytes.size() ? o->size : bytes.size();
            for (uint64_t w : hide_candidates(std::span<const uint8_t>(bytes).first(extent), kbase, protect, unsigned(W))) {
                WordCandidate c;
                c.offset = w;
                std::memcpy(&c.value, bytes.data() + w, W);
                c.replacements.push_back(0);
                c.replacements.push_back(c.value ^ 1);
                c.replacements.push_back(rng() % kbase);
                for (uint64_t x : others)
                    if (auto v = dump.read_ptr(x + w)) c.replacements.push_back(*v);
                cands.push_back(std::move(c));
            }
            const size_t outside = cands.size();
            std::string who;   // a task's pid, comm and role, a module's name (before the edits: neither is protected)
            if (task_off) {
                const uint32_t pid = dump.read32(t + task_off->pid).value_or(0), tgid = dump.read32(t + task_off->tgid).value_or(0);
                who = ",\"pid\":" + std::to_string(pid) + ",\"comm\":" + json_string(comm_of(mem, t, *task_off)) +
                      ",\"leader\":" + (pid == tgid ? "true" : "false");
            } else if (type == "module") {
                std::string name(L.mod_name_len, '\0');
                if (!mem.read(t + L.mod_name, std::span<uint8_t>(reinterpret_cast<uint8_t*>(name.data()), name.size()))) name.clear();
                name.resize(std::strlen(name.c_str()));
                who = ",\"name\":" + json_string(name);
            }
            cands = search.in_features(g, std::move(cands));
            std::string searched;
            for (const WordCandidate& c : cands) searched += (searched.empty() ? "" : ",") + std::to_string(c.offset);
            const HideResult r = search.hide(g, cands, static_cast<uint32_t>(std::min<uint64_t>(budget, UINT32_MAX)),
                                             model.threshold, kbase);
            search.revert(g, r.edits);   // the next object is searched on the original graph
            // An object the model does not detect before any edit is no hiding (a model of another
            // build, a label the model misses): said apart, not counted hidden (hide() made no edit).
            if (r.score_before < model.threshold) {
                char fig[96];
                std::snprintf(fig, sizeof fig, "%.4f below the threshold %.4f", r.score_before, model.threshold);
                add_change("{\"vaddr\":\"" + hex(t) + "\"" + who + ",\"skipped\":\"not detected before any edit: score " + fig + "\"}");
                ++undetected;
                continue;
            }
            std::string edits;
            for (const WordEdit& e : r.edits) {
                dump.write_ptr(t + e.offset, e.new_value);
                edits += std::string(edits.empty() ? "" : ",") + "{\"offset\":" + std::to_string(e.offset) + ",\"old\":\"" +
                         hex(e.old_value) + "\",\"new\":\"" + hex(e.new_value) + "\"}";
            }
            // The classic techniques on the same object. psscan (tasks): it misses a task once
            // comm[0] is 0 (1 byte; check_task, its own predicate, on the bytes before the edits).
            std::string classic;
            if (task_off) {
                const TaskCheck before = check_task(*sig, mem, t, bytes);
                std::vector<uint8_t> local = bytes;
                local[task_off->comm] = 0;
                const TaskCheck psscan_after = check_task(*sig, mem, t, local);
                classic = std::string(",\"psscan_before\":\"") + to_string(before) + "\",\"psscan_after_comm0\":\"" + to_string(psscan_after) +
                          "\",\"psscan_bytes\":" + (before == TaskCheck::Ok && psscan_after != TaskCheck::Ok ? "1" : "null");
            }
            // The list walk (pslist, lsmod) misses the object once it is off the list: prev->next =
            // next and next->prev = prev (2 words written); the bytes that differ are those of the
            // old value (the object's own node) against the new one.
            const std::string list_name = task_off ? "pslist" : "lsmod";
            if (const auto node = list_node(t)) {
                const auto next = dump.read_ptr(*node), prev = dump.read_ptr(*node + W);
                const std::string differ =
                    next && prev ? std::to_string(differing_bytes(*node, *next, unsigned(W)) + differing_bytes(*node, *prev, unsigned(W)))
                                 : std::string("null");
                classic += ",\"" + list_name + "_bytes_written\":" + std::to_string(2 * W) + ",\"" + list_name +
                           "_bytes_changed\":" + differ;
            }
            char fig[160];
            std::snprintf(fig, sizeof fig, "\"score_before\":%.4f,\"score_after\":%.4f,\"seconds\":%.2f", r.score_before,
                          r.score_after, r.seconds);
            add_change("{\"vaddr\":\"" + hex(t) + "\"" + (g != t ? ",\"graph_vaddr\":\"" + hex(g) + "\"" : std::string()) + who + "," + fig + ",\"hidden\":" + (r.hidden ? "true" : "false") +
                       ",\"bytes_changed\":" + std::to_string(r.bytes_changed) + ",\"words\":" + std::to_string(r.edits.size()) +
                       ",\"candidates\":" + std::to_string(outside) + ",\"candidates_in_features\":" + std::to_string(cands.size()) +
                       ",\"model_runs\":" + std::to_string(r.evaluations) + classic + ",\"searched\":[" + searched + "],\"edits\":[" + edits + "]}");
            std::fprintf(stderr, "dm-attack: hide %s %s: %s after %zu words (%s, score %.3f -> %.3f, %.1f s)\n", type.c_str(),
                         hex(t).c_str(), r.hidden ? "hidden" : "not hidden", r.edits.size(),
                         (std::to_string(r.bytes_changed) + " bytes").c_str(), r.score_before, r.score_after, r.seconds);
        }
        if (undetected)
            std::fprintf(stderr, "dm-attack: warning: %llu of %zu %s objects were not detected before any edit (skipped): is %s a model of this build?\n",
                         static_cast<unsigned long long>(undetected), chosen.size(), type.c_str(), weights.c_str());
        }
    } else if (attack == "tamper") {
        const Offsets off{KernelLayout(kernel.require_btf("tamper"))};
        const uint64_t count = vm.count("count") ? vm["count"].as<Whole<uint64_t>>().value : 10;
        params = "\"count\":" + std::to_string(count) + ",\"mode\":\"" + mode + "\"";
        std::vector<uint64_t> chosen = live_tasks;
        std::shuffle(chosen.begin(), chosen.end(), rng);
        if (chosen.size() > count) chosen.resize(count);
        std::sort(chosen.begin(), chosen.end());
        for (uint64_t t : chosen) {
            std::vector<uint8_t> comm(off.comm_len);
            uint32_t pid, tgid, state, flags;
            if (mode == "random") {
                for (auto& c : comm) c = static_cast<uint8_t>(0x80 | rng());
                pid = static_cast<uint32_t>(kPidMaxLimit + 1 + rng() % 0x7fc00000u);
                tgid = static_cast<uint32_t>(kPidMaxLimit + 1 + rng() % 0x7fc00000u);
                state = static_cast<uint32_t>(rng());
                flags = static_cast<uint32_t>(rng());
            } else {
                const uint64_t other = live_tasks[rng() % live_tasks.size()];
                std::string name = comm_of(mem, other, off);
                std::copy(name.begin(), name.end(), comm.begin());
                pid = need32(other + off.pid) + 1;
                tgid = pid;
                state = need32(other + off.state);
                flags = need32(other + off.flags);
            }
            const std::string old = comm_of(mem, t, off);
            const uint32_t old_pid = need32(t + off.pid);
            dump.write(t + off.comm, comm.data(), comm.size());
            dump.write(t + off.pid, &pid, 4);
            dump.write(t + off.tgid, &tgid, 4);
            dump.write(t + off.state, &state, 4);
            dump.write(t + off.flags, &flags, 4);
            add_change("{\"vaddr\":\"" + hex(t) + "\",\"old_pid\":" + std::to_string(old_pid) + ",\"old_comm\":" +
                       json_string(old) + ",\"pid\":" + std::to_string(pid) + ",\"tgid\":" + std::to_string(tgid) +
                       ",\"state\":" + std::to_string(state) + ",\"flags\":" + std::to_string(flags) +
                       ",\"fields\":[\"comm\",\"pid\",\"tgid\",\"__state\",\"flags\"]}");
        }
    } else if (attack == "smear") {
        params = "\"fraction\":" + std::to_string(fraction);
        const std::set<uint64_t> tables = kernel_table_pages(dump);
        // Candidate pages: present, non-zero, under the direct map (the lowest kernel run start is
        // page_offset_base), not a page table; each once, by its physical address.
        const auto dm = direct_map(dump, kernel);
        if (!dm) throw InputError("smear: page_offset_base unknown (no kallsyms in the dump or DUMP_DIR)");
        std::set<uint64_t> seen;
        std::vector<uint64_t> pages;
        for (const VirtualRun& r : dump.tl().kernel_runs()) {
            if (r.vaddr < dm->first || r.vaddr >= dm->first + dm->second) continue;
            for (uint64_t p = 0; p + 4096 <= r.size; p += 4096) {
                const uint64_t pa = r.paddr + p;
                const uint8_t* page = dump.at_physical(pa);
                if (!page || tables.count(pa) || !seen.insert(pa).second) continue;
                if (std::all_of(page, page + 4096, [](uint8_t c) { return c == 0; })) continue;
                pages.push_back(pa);
            }
        }
        if (pages.size() < 2) throw InputError("smear: fewer than 2 non-zero direct-map pages");
        std::map<uint64_t, std::optional<uint64_t>> chosen;   // page → the page copied over it, when given
        if (vm.count("pages")) {
            const std::set<uint64_t> candidates(pages.begin(), pages.end());
            auto candidate = [&](const std::string& text) {
                const uint64_t pa = parse_address(text, "--pages");
                if (!candidates.count(pa))
                    throw InputError("--pages: " + hex(pa) + " is no candidate (a present, non-zero direct-map page, not a page table)");
                return pa;
            };
            std::stringstream list(vm["pages"].as<std::string>());
            for (std::string item; std::getline(list, item, ',');) {
                const size_t colon = item.find(':');
                const uint64_t pa = candidate(item.substr(0, colon));
                const auto from = colon == std::string::npos ? std::nullopt : std::optional<uint64_t>(candidate(item.substr(colon + 1)));
                if (from == pa) throw InputError("--pages: " + hex(pa) + " copied over itself");
                chosen[pa] = from;
            }
            if (chosen.empty()) throw InputError("--pages is empty");
            params = "\"pages\":" + std::to_string(chosen.size());
        } else {
            std::vector<uint64_t> order = pages;
            std::shuffle(order.begin(), order.end(), rng);
            order.resize(static_cast<size_t>(std::llround(fraction * double(pages.size()))));
            for (uint64_t pa : order) chosen[pa];
        }
        std::string list, from_list;
        for (const auto& [pa, given] : chosen) {
            uint64_t from = given.value_or(pa);
            while (from == pa) from = pages[rng() % pages.size()];
            std::memmove(dump.at_physical(pa), dump.at_physical(from), 4096);
            list += (list.empty() ? "\"" : ",\"") + hex(pa) + "\"";
            from_list += (from_list.empty() ? "\"" : ",\"") + hex(from) + "\"";
        }
        add_change("{\"candidate_pages\":" + std::to_string(pages.size()) + ",\"page_tables_kept\":" +
                   std::to_string(tables.size()) + ",\"smeared\":" + std::to_string(chosen.size()) + ",\"pages\":[" + list +
                   "],\"from\":[" + from_list + "]}");
    } else {
        const bool noise = attack == "noise";
        const uint64_t per_object = vm.count("count") ? vm["count"].as<Whole<uint64_t>>().value : 8;
        std::string tl;
        for (const auto& t : types) tl += std::string(tl.empty() ? "" : ",") + "\"" + t + "\"";
        params = "\"fraction\":" + std::to_string(fraction) + ",\"types\":[" + tl + "]" +
                 (noise ? "" : ",\"pointers_per_object\":" + std::to_string(per_object));
        uint64_t objects = 0, bytes_total = 0, bytes_changed = 0, planted = 0;
        for (const TruthObject& t : truth) {
            if (t.freed || !types.count(t.type) || t.size == 0) continue;
            std::vector<uint8_t> buf(t.size);
            if (!mem.read(t.vaddr, buf)) continue;
            ++objects;
            // Candidate bytes (noise) or words (plant) outside pointer words.
            std::vector<uint64_t> cand;
            for (uint64_t w = 0; w < t.size; w += W) {
                const uint64_t at = t.vaddr + w;
                uint64_t v = 0;
                const uint64_t n = std::min<uint64_t>(W, t.size - w);
                std::memcpy(&v, buf.data() + w, n);
                if (at % W == 0 && n == W && v >= kbase) continue;   // a pointer word
                if (noise) for (uint64_t b = 0; b < n; ++b) cand.push_back(w + b);
                else if (n == W && at % W == 0) cand.push_back(w);
            }
            if (noise) {
                const uint64_t k = static_cast<uint64_t>(std::llround(fraction * double(cand.size())));
                std::shuffle(cand.begin(), cand.end(), rng);
                for (uint64_t i = 0; i < k; ++i) {
                    uint8_t b = buf[cand[i]] ^ static_cast<uint8_t>(1 + rng() % 255);
                    dump.write(t.vaddr + cand[i], &b, 1);
                }
                bytes_total += cand.size();
                bytes_changed += k;
            } else {
                std::shuffle(cand.begin(), cand.end(), rng);
                for (uint64_t i = 0; i < per_object && i < cand.size() && live_tasks.size() > 1; ++i) {
                    uint64_t target;
                    do target = live_tasks[rng() % live_tasks.size()];
                    while (target == t.vaddr);
                    const uint64_t p = target + (rng() % (t.size / W)) * W;
                    dump.write_ptr(t.vaddr + cand[i], p);
                    ++planted;
                }
            }
        }
        if (noise) {
            add_change("{\"objects\":" + std::to_string(objects) + ",\"non_pointer_bytes\":" + std::to_string(bytes_total) +
                       ",\"bytes_mutated\":" + std::to_string(bytes_changed) + "}");
        } else {
            // Flood: all-zero pages of the direct map.
            uint64_t zero_pages = 0, flooded = 0;
            const auto dm = direct_map(dump, kernel);
            std::vector<uint8_t> page(4096);
            for (const VirtualRun& r : dump.tl().kernel_runs()) {
                if (!dm || r.vaddr < dm->first || r.vaddr >= dm->first + dm->second) continue;
                for (uint64_t p = 0; p < r.size; p += 4096) {
                    if (!mem.read(r.vaddr + p, page)) continue;
                    if (std::any_of(page.begin(), page.end(), [](uint8_t c) { return c != 0; })) continue;
                    ++zero_pages;
                    if (std::uniform_real_distribution<double>(0, 1)(rng) >= fraction || live_tasks.empty()) continue;
                    ++flooded;
                    for (uint64_t w = 0; w < 4096; w += W) {
                        const uint64_t v = live_tasks[rng() % live_tasks.size()] + (rng() % 64) * W;
                        std::memcpy(page.data() + w, &v, W);
                    }
                    dump.write(r.vaddr + p, page.data(), page.size());
                }
            }
            add_change("{\"objects\":" + std::to_string(objects) + ",\"pointers_planted\":" + std::to_string(planted) +
                       ",\"zero_pages\":" + std::to_string(zero_pages) + ",\"pages_flooded\":" + std::to_string(flooded) + "}");
        }
    }

    const std::string json = "{\"attack\":\"" + attack + "\",\"seed\":" + std::to_string(seed) + ",\"source\":" +
                             json_string(fs::absolute(in).string()) + "," + params + ",\"changes\":[" + changes + "\n]}\n";
    dump.sync();
    dump_out.commit();
    write_file_atomically((work / "attack.json").string(), json);
    staging.commit();
    std::printf("%s", json.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli_main("dm-attack", [&] { return run(argc, argv); });
}
