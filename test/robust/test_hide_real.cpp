// dm-attack hide (train/hide.hpp) on the real dev dump ($DEEPMEM_DUMPS/dev) with the shipped
// task_struct, mm_struct and module models, on 2 objects of each: its claims hold on the written dump —
//   * every byte that differs from the original lies in a searched object and the count per object
//     is attack.json's bytes_changed (so the figure reported is the bytes an attacker writes);
//   * no byte of a protected field (train/hide.hpp) and no pointer word changed;
//   * the real pipeline (graph built from the edited dump, the model's pruned detection) does not
//     detect an object reported hidden (at its graph address: a module's direct-map alias), and
//     still detects every other live object of the type it detected before.
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
    uint64_t vaddr = 0, graph_vaddr = 0, bytes = 0;
    bool hidden = false;
};

std::vector<Hidden> results(const fs::path& attack_json) {
    const auto bytes = read_whole_file(attack_json.string(), "attack.json");
    const std::string s(bytes.begin(), bytes.end());
    std::vector<Hidden> v;
    const std::regex re("\"vaddr\":\"(0x[0-9a-f]+)\"(,\"graph_vaddr\":\"(0x[0-9a-f]+)\")?[^\\n]*?\"hidden\":(true|false),\"bytes_changed\":([0-9]+)");
    for (auto it = std::sregex_iterator(s.begin(), s.end(), re); it != std::sregex_iterator(); ++it) {
        const uint64_t va = std::stoull((*it)[1].str(), nullptr, 16);
        const uint64_t ga = (*it)[3].matched ? std::stoull((*it)[3].str(), nullptr, 16) : va;
        v.push_back({va, ga, std::stoull((*it)[5].str()), (*it)[4].str() == "true"});
    }
    return v;
}

struct Opened {
    std::unique_ptr<PhysicalLayer> phys;
    std::optional<TranslationLayer> tl;
    explicit Opened(const fs::path& dump) : phys(PhysicalLayer::open(dump.string())) { tl.emplace(TranslationLayer::detect(*phys)); }
};

void check_hide(const fs::path& dev, const std::string& type) {
    const char* tool = std::getenv("DM_ATTACK");
    const char* models = std::getenv("DEEPMEM_MODELS");
    REQUIRE(tool);
    REQUIRE(models);
    const std::string weights = (fs::path(models) / (type + ".cereal")).string();
    char tmpl[] = "/tmp/deepmem-hide-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const fs::path out = fs::path(tmpl) / "out";
    const std::string graph = fs::exists(dev / "dump.dmg") ? " --graph " + (dev / "dump.dmg").string() : "";
    const std::string cmd = std::string(tool) + " hide --count 2 --seed 7 --weights " + weights + graph + " --in " +
                            dev.string() + " --out " + out.string() + " > /dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    const std::vector<Hidden> res = results(out / "attack.json");
    REQUIRE(res.size() == 2);

    // Bytes: every differing byte of the file lies in a searched object; per object, as many as reported.
    const auto btf = btf::load_kernel_btf((dev / "vmlinuz").string());
    const KernelLayout L(btf);
    const std::vector<ByteRange> protect = protected_fields(L, type);
    const uint64_t size = *L.object_size(type);
    Opened a(dev / "dump.elf"), b(out / "dump.elf");
    const TranslatedMemory ma(*a.tl), mb(*b.tl);
    const uint64_t kbase = a.tl->kernel_base();
    uint64_t in_objects = 0;
    for (const Hidden& h : res) {
        std::vector<uint8_t> x(size), y(size);
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
        in_objects += diff;
    }
    const MappedFile fa((dev / "dump.elf").string()), fb((out / "dump.elf").string());
    REQUIRE(fa.bytes().size() == fb.bytes().size());
    uint64_t file_diff = 0;
    for (uint64_t i = 0; i < fa.bytes().size(); ++i) file_diff += fa.bytes()[i] != fb.bytes()[i];
    CHECK(file_diff == in_objects);

    // The real pipeline on both dumps, at the graph's addresses.
    Detector det;
    det.add_model(weights);
    std::set<uint64_t> before, after;
    for (const Detection& d : det.detect(det.build_graph((dev / "dump.elf").string()))) before.insert(d.vaddr);
    for (const Detection& d : det.detect(det.build_graph((out / "dump.elf").string()))) after.insert(d.vaddr);
    std::set<uint64_t> searched;
    for (const Hidden& h : res) {
        searched.insert(h.vaddr);
        CAPTURE(h.vaddr);
        CHECK(before.count(h.graph_vaddr) == 1);   // the search's address is where dmdetect reports it
        if (h.hidden) CHECK(after.count(h.graph_vaddr) == 0);
        else CHECK(after.count(h.graph_vaddr) == 1);
    }
    for (const TruthObject& t : read_truth((dev / "labels.jsonl").string())) {
        if (t.type != type || t.freed || searched.count(t.vaddr)) continue;
        CAPTURE(t.vaddr);
        CHECK(after.count(t.vaddr) == before.count(t.vaddr));
    }
    fs::remove_all(tmpl);
}

}  // namespace

TEST_CASE("hide: the objects reported hidden are not detected on the edited dump, bytes counted are bytes changed") {
    const fs::path dev = test::real_dump_dir({"dump.elf", "labels.jsonl", "kallsyms", "vmlinuz"});
    for (const char* type : {"task_struct", "mm_struct", "module"}) {
        CAPTURE(type);
        check_hide(dev, type);
    }
}

// A model that detects none of the sampled objects before any edit (5.10's mm_struct on this 6.1 dump)
// hides nothing: each is skipped with its score, none is counted hidden (attacker 74).
TEST_CASE("hide: objects the model does not detect before any edit are skipped, not hidden") {
    const fs::path dev = test::real_dump_dir({"dump.elf", "labels.jsonl", "kallsyms", "vmlinuz"});
    const char* tool = std::getenv("DM_ATTACK");
    const char* models = std::getenv("DEEPMEM_MODELS");
    REQUIRE(tool);
    REQUIRE(models);
    char tmpl[] = "/tmp/deepmem-hide-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    const fs::path out = fs::path(tmpl) / "out";
    const std::string graph = fs::exists(dev / "dump.dmg") ? " --graph " + (dev / "dump.dmg").string() : "";
    const std::string cmd = std::string(tool) + " hide --count 3 --seed 7 --budget 4 --weights " +
                            (fs::path(models) / "5.10" / "mm_struct.cereal").string() + graph + " --in " + dev.string() +
                            " --out " + out.string() + " > /dev/null 2> " + (fs::path(tmpl) / "err").string();
    REQUIRE(std::system(cmd.c_str()) == 0);
    const auto bytes = read_whole_file((out / "attack.json").string(), "attack.json");
    const std::string s(bytes.begin(), bytes.end());
    size_t skipped = 0;
    for (size_t p = 0; (p = s.find("\"skipped\":\"not detected before any edit", p)) != std::string::npos; ++p) ++skipped;
    CHECK(skipped == 3);
    CHECK(s.find("\"hidden\":true") == std::string::npos);
    const auto err = read_whole_file((fs::path(tmpl) / "err").string(), "stderr");
    CHECK(std::string(err.begin(), err.end()).find("3 of 3 mm_struct objects were not detected before any edit") != std::string::npos);
    fs::remove_all(tmpl);
}
