// dm-attack hide (train/hide.hpp) on the real dev dump ($DEEPMEM_DUMPS/dev) with the shipped
// task_struct model, on 2 tasks: its claims hold on the written dump —
//   * every byte that differs from the original lies in a searched task and the count per task is
//     attack.json's bytes_changed (so the figure reported is the bytes an attacker writes);
//   * no byte of a protected field (train/hide.hpp) and no pointer word changed;
//   * the real pipeline (graph built from the edited dump, the model's pruned detection) does not
//     detect a task reported hidden, and still detects every other live task it detected before.
#include "detect/detect.hpp"
#include "graph/file_io.hpp"
#include "graph/layers.hpp"
#include "train/btf.hpp"
#include "train/hide.hpp"
#include "train/kernel_layout.hpp"
#include "train/labeler.hpp"

#include "test/real_dump.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>
#include <string>

using namespace deepmem;
namespace fs = std::filesystem;

namespace {

struct Hidden {
    uint64_t vaddr = 0, bytes = 0;
    bool hidden = false;
};

std::vector<Hidden> results(const fs::path& attack_json) {
    const auto bytes = read_whole_file(attack_json.string(), "attack.json");
    const std::string s(bytes.begin(), bytes.end());
    std::vector<Hidden> v;
    const std::regex re("\"vaddr\":\"(0x[0-9a-f]+)\"[^\\n]*?\"hidden\":(true|false),\"bytes_changed\":([0-9]+)");
    for (auto it = std::sregex_iterator(s.begin(), s.end(), re); it != std::sregex_iterator(); ++it)
        v.push_back({std::stoull((*it)[1].str(), nullptr, 16), std::stoull((*it)[3].str()), (*it)[2].str() == "true"});
    return v;
}

struct Opened {
    std::unique_ptr<PhysicalLayer> phys;
    std::optional<TranslationLayer> tl;
    explicit Opened(const fs::path& dump) : phys(PhysicalLayer::open(dump.string())) { tl.emplace(TranslationLayer::detect(*phys)); }
};

}  // namespace

TEST_CASE("hide: the tasks reported hidden are not detected on the edited dump, bytes counted are bytes changed") {
    const fs::path dev = test::real_dump_dir({"dump.elf", "labels.jsonl", "kallsyms", "vmlinuz"});
    const char* tool = std::getenv("DM_ATTACK");
    const char* models = std::getenv("DEEPMEM_MODELS");
    REQUIRE(tool);
    REQUIRE(models);
    const std::string weights = (fs::path(models) / "task_struct.cereal").string();
    char tmpl[] = "/tmp/deepmem-hide-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const fs::path out = fs::path(tmpl) / "out";
    const std::string graph = fs::exists(dev / "dump.dmg") ? " --graph " + (dev / "dump.dmg").string() : "";
    const std::string cmd = std::string(tool) + " hide --count 2 --seed 7 --weights " + weights + graph + " --in " +
                            dev.string() + " --out " + out.string() + " > /dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    const std::vector<Hidden> res = results(out / "attack.json");
    REQUIRE(res.size() == 2);

    // Bytes: every differing byte of the file lies in a searched task; per task, as many as reported.
    const auto btf = btf::load_kernel_btf((dev / "vmlinuz").string());
    const KernelLayout L(btf);
    const std::vector<ByteRange> protect = protected_task_fields(L);
    Opened a(dev / "dump.elf"), b(out / "dump.elf");
    const TranslatedMemory ma(*a.tl), mb(*b.tl);
    const uint64_t kbase = a.tl->kernel_base();
    uint64_t in_tasks = 0;
    for (const Hidden& h : res) {
        std::vector<uint8_t> x(L.task_size), y(L.task_size);
        REQUIRE(ma.read(h.vaddr, x));
        REQUIRE(mb.read(h.vaddr, y));
        uint64_t diff = 0;
        for (uint64_t i = 0; i < x.size(); ++i) {
            if (x[i] == y[i]) continue;
            ++diff;
            CAPTURE(i);
            for (const ByteRange& r : protect) CHECK((i < r.begin || i >= r.end));
            uint64_t before = 0, after = 0;
            std::memcpy(&before, x.data() + (i & ~uint64_t{7}), 8);
            std::memcpy(&after, y.data() + (i & ~uint64_t{7}), 8);
            CHECK(before < kbase);
            CHECK(after < kbase);
        }
        CHECK(diff == h.bytes);
        in_tasks += diff;
    }
    const MappedFile fa((dev / "dump.elf").string()), fb((out / "dump.elf").string());
    REQUIRE(fa.bytes().size() == fb.bytes().size());
    uint64_t file_diff = 0;
    for (uint64_t i = 0; i < fa.bytes().size(); ++i) file_diff += fa.bytes()[i] != fb.bytes()[i];
    CHECK(file_diff == in_tasks);

    // The real pipeline on both dumps.
    Detector det;
    det.add_model(weights);
    std::set<uint64_t> before, after;
    for (const Detection& d : det.detect(det.build_graph((dev / "dump.elf").string()))) before.insert(d.vaddr);
    for (const Detection& d : det.detect(det.build_graph((out / "dump.elf").string()))) after.insert(d.vaddr);
    std::set<uint64_t> searched;
    for (const Hidden& h : res) {
        searched.insert(h.vaddr);
        CAPTURE(h.vaddr);
        if (h.hidden) CHECK(after.count(h.vaddr) == 0);
        else CHECK(after.count(h.vaddr) == before.count(h.vaddr));
    }
    for (const TruthObject& t : read_truth((dev / "labels.jsonl").string())) {
        if (t.type != "task_struct" || t.freed || searched.count(t.vaddr)) continue;
        CAPTURE(t.vaddr);
        CHECK(after.count(t.vaddr) == before.count(t.vaddr));
    }
    fs::remove_all(tmpl);
}
