// The pruned inference run (InferenceNet::run over rows) against the whole-graph run, and the
// Detector: its refusals, its order, early stop, and equality with the unpruned path.
#include "detect/detect.hpp"
#include "graph/memory_budget.hpp"
#include "../engine/random_graph.hpp"
#include "../graph/graph_fixtures.hpp"
#include "../graph/layer_images.hpp"
#include "../graph/dump_images.hpp"
#include "../graph/dmg_bytes.hpp"
#include "fit_fixtures.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <fstream>
#include <random>
#include <numeric>
#include <optional>
#include <set>

#include <unistd.h>

using namespace deepmem;

namespace {

// max |pruned − full| over `rows`, after checking shapes.
float pruned_vs_full(const ModelConfig& c, const GraphInput& g, const std::vector<uint32_t>& rows, uint64_t seed) {
    InferenceNet net(c, test::random_params<float>(c, seed, 0.3));
    Mat<float> full, some;
    net.run(g, full);
    net.run(g, rows, some);
    REQUIRE(some.rows() == Eigen::Index(rows.size()));
    REQUIRE(some.cols() == Eigen::Index(c.classes));
    float d = 0;
    for (size_t i = 0; i < rows.size(); ++i) d = std::max(d, (some.row(Eigen::Index(i)) - full.row(rows[i])).cwiseAbs().maxCoeff());
    return d;
}

}  // namespace

TEST_CASE("detect: pruned inference equals the whole-graph run on its rows") {
    const auto g = test::random_graph(900, 64, 11, 2.0);
    std::mt19937_64 rng(3);
    std::vector<uint32_t> rows;
    for (int i = 0; i < 60; ++i) rows.push_back(uint32_t(rng() % 900));
    rows.push_back(rows.front());   // repeats allowed
    ModelConfig c;
    c.classes = 5;
    CHECK(pruned_vs_full(c, g.input(), rows, 1) < 1e-6f);
    InferenceNet net(c, Params<float>::init(c, 1));
    Mat<float> p;
    net.run(g.input(), rows, p);
    const auto& f = net.last_frontier();
    REQUIRE(f.size() == 3);
    CHECK(f[2] <= 61);   // distinct rows
    CHECK(f[0] < 900);   // pruned
    // reordered σ, a ReLU after every σ layer, T = 1 and T = 4
    ModelConfig r;
    r.embed_width = 32;
    r.sigma = {{8, Activation::Relu}, {32, Activation::Relu}};
    r.classifier_hidden = {};
    r.classes = 3;
    CHECK(pruned_vs_full(r, g.input(), rows, 2) < 1e-6f);
    ModelConfig relu;
    relu.sigma = {{64, Activation::Relu}, {64, Activation::Relu}, {64, Activation::Relu}};
    relu.iterations = 1;
    CHECK(pruned_vs_full(relu, g.input(), rows, 3) < 1e-6f);
    relu.iterations = 4;
    CHECK(pruned_vs_full(relu, g.input(), rows, 4) < 1e-6f);
    std::vector<uint32_t> all(900);
    std::iota(all.begin(), all.end(), 0u);
    CHECK(pruned_vs_full(c, g.input(), all, 5) < 1e-6f);
    CHECK(pruned_vs_full(c, g.input(), {}, 6) == 0.f);
    const std::vector<uint32_t> outside{900};
    CHECK_THROWS_AS(net.run(g.input(), outside, p), ModelError);
}

TEST_CASE("detect: Detector — same detections as the unpruned path, sorted by (type, vaddr), early stop") {
    const test::Memory mem = test::random_memory(5, 96, 8);
    MemoryGraph g = mem.build();
    // key nodes from lengths that occur, at offsets inside a 256-byte object
    const std::vector<uint32_t> common = test::common_lengths(g);
    REQUIRE(common.size() >= 4);
    Detector det;
    std::vector<Model> models{
        test::keyed_model("task_struct", {{0, common[0], 0.6f}, {64, common[1], 0.9f}, {128, common[2], 0.7f}}, 1),
        test::keyed_model("cred", {{0, common[1], 0.5f}, {32, common[3], 0.5f}}, 2)};
    for (auto& m : models) m.graph = g.params();
    models[0].threshold = 1.2f;   // two votes at least (Model::validate refuses one key node's, 0.9)
    models[1].threshold = 0.9f;
    for (const auto& m : models) det.add_model(m);
    CHECK(det.model(0).object_type == "cred");   // kept in type order

    const GraphInput input = graph_input(g);
    std::vector<Detection> expected;
    for (size_t i : {1, 0}) {   // cred, then task_struct
        const Model& m = models[i];
        InferenceNet net(m.config, m.params);
        Mat<float> probs;
        net.run(input, probs);
        for (auto& d : select(g, m, vote(g, m, probs), m.threshold)) expected.push_back(d);
    }
    REQUIRE(!expected.empty());
    CHECK(det.detect(g) == expected);
    CHECK(std::is_sorted(expected.begin(), expected.end(),
                         [](const Detection& a, const Detection& b) { return std::tie(a.type, a.vaddr) < std::tie(b.type, b.vaddr); }));
    REQUIRE(det.last_timings().size() == 2);
    CHECK(det.last_timings()[0].type == "cred");

    DetectOptions low;
    low.threshold = 0.f;
    const auto many = det.detect(g, low);
    CHECK(many.size() >= expected.size());
    std::vector<Detection> seen;
    const bool finished = det.scan(g, [&](const Detection& d) { seen.push_back(d); return seen.size() < 3; }, low);
    CHECK_FALSE(finished);
    CHECK(seen.size() == 3);
    CHECK(std::equal(seen.begin(), seen.end(), many.begin()));
}

TEST_CASE("detect: set_key_nodes moves a model's key nodes (as placed in a dump's layout): votes follow, classes and weights stay") {
    const test::Memory mem = test::random_memory(5, 96, 8);
    MemoryGraph g = mem.build();
    const std::vector<uint32_t> common = test::common_lengths(g);
    REQUIRE(common.size() >= 3);
    Model m = test::keyed_model("task_struct", {{0, common[0], 0.6f}, {64, common[1], 0.9f}, {128, common[2], 0.7f}}, 1);
    m.graph = g.params();
    m.threshold = 1.2f;
    Model shifted = m;   // the same network with every key node 8 bytes later: every base 8 bytes lower
    for (KeyNode& k : shifted.key_nodes) k.offset += 8;
    Detector a, b;
    a.add_model(m);
    b.add_model(m);
    b.set_key_nodes(0, shifted.key_nodes);
    CHECK(b.model(0).key_nodes == shifted.key_nodes);
    CHECK(b.model(0).threshold == m.threshold);
    Detector c;
    c.add_model(shifted);
    const auto moved = b.detect(g), expected = c.detect(g), before = a.detect(g);
    REQUIRE(!before.empty());
    CHECK(moved == expected);
    CHECK(moved.size() == before.size());
    CHECK(moved.front().vaddr + 8 == before.front().vaddr);
    // as many key nodes, each valid for detection
    CHECK_THROWS_WITH_AS(b.set_key_nodes(0, {{0, 8, 1.f}}), "model task_struct: 1 key nodes given for its 3", InputError);
    std::vector<KeyNode> bad = shifted.key_nodes;
    bad[1].length = 0;
    CHECK_THROWS_AS(b.set_key_nodes(0, bad), ModelError);
    CHECK(b.model(0).key_nodes == shifted.key_nodes);   // unchanged by a refused call
}

// A graph whose pointers lead anywhere (no locality, as a crafted dump's) and a task_struct model of
// three key nodes at its commonest lengths, threshold 1.2: two key nodes at least, so fewer voting
// rows than carriers (agreement rows). For the work limit's and the network work bound's tests.
struct Unlocal {
    MemoryGraph g;
    Model m;
    std::vector<uint32_t> common;
};
Unlocal unlocal_task_model() {
    Unlocal u{test::random_memory(5, 96, 8).build(), {}, {}};
    u.common = test::common_lengths(u.g);
    u.m = test::keyed_model("task_struct", {{0, u.common[0], 0.6f}, {64, u.common[1], 0.9f}, {128, u.common[2], 0.7f}}, 1);
    u.m.graph = u.g.params();
    u.m.threshold = 1.2f;
    return u;
}

// Issue #15 item 1: past DetectOptions::work_limit a model is not run and says why; a fit check's
// agreement rows past it fall back to the voting rows (the same detections, the votes measured on
// them alone).
TEST_CASE("detect: the work limit — a model past it is not run, agreement rows past it fall back to the voting rows") {
    auto [g, m, common] = unlocal_task_model();
    Detector det;
    det.add_model(m, "ts.cereal");
    DetectOptions opt;
    opt.memory_budget = 16 << 10;   // blocks of a few rows
    opt.work_limit = 0;
    opt.whole_graph_ceiling = 0;    // past the limit, never the whole graph at once (below, it does)
    opt.network_work = 0;           // the relative limit alone (the bound: the next test)
    auto work = [&] {   // the last run's node-iterations, in whole-graph runs
        const auto& f = det.last_timings().at(0).frontier;
        return double(std::accumulate(f.begin(), f.end(), uint64_t{0})) / (double(m.config.iterations) * g.node_count());
    };
    const auto expected = det.detect(g, opt);
    const double voting = work();
    opt.measure_agreement = true;
    REQUIRE(det.detect(g, opt) == expected);
    const VoteAgreement agreed = det.last_agreements().at(0);
    const double agreement = work();
    CAPTURE(voting);
    CAPTURE(agreement);
    REQUIRE(agreement > 2 * voting);
    REQUIRE(voting > 0);
    REQUIRE(!expected.empty());
    CHECK(det.last_not_run().at(0).empty());
    CHECK(det.last_unmeasured().at(0).empty());

    opt.work_limit = std::sqrt(voting * agreement);
    CHECK(det.detect(g, opt) == expected);
    CHECK(det.last_not_run().at(0).empty());
    CHECK(det.last_unmeasured().at(0).find("would evaluate about") != std::string::npos);
    CHECK(det.last_timings().at(0).unmeasured);
    CHECK(det.last_agreements().at(0).objects <= agreed.objects);
    opt.measure_agreement = false;   // nothing to fall back from
    CHECK(det.detect(g, opt) == expected);
    CHECK(det.last_unmeasured().at(0).empty());

    opt.work_limit = voting / 4;
    for (bool measure : {false, true}) {
        opt.measure_agreement = measure;
        CHECK(det.detect(g, opt).empty());
        const std::string why = det.last_not_run().at(0);
        CHECK(why.find("times the whole graph's node-iterations") != std::string::npos);
        CHECK(why.find("within a memory budget of") != std::string::npos);
        CHECK(det.last_unmeasured().at(0).empty());
        CHECK(det.last_timings().at(0).not_run);
        CHECK_FALSE(det.last_best_scores().at(0).has_value());
        CHECK(det.last_agreements().size() == (measure ? 1u : 0u));
    }
    // a ceiling the whole-graph run fits: it runs at once instead, the same detections
    opt.whole_graph_ceiling.reset();
    CHECK(det.detect(g, opt) == expected);
    CHECK(det.last_not_run().at(0).empty());
    CHECK(det.last_ran_whole().at(0).find("; the whole graph ran at once instead, in ") != std::string::npos);
    CHECK(det.last_ran_whole().at(0).find("crafted") == std::string::npos);   // the budget was the caller's
    opt.memory_budget = 0;   // unbounded: the whole graph at once, never refused
    CHECK(det.detect(g, opt) == expected);
    CHECK(det.last_not_run().at(0).empty());
    CHECK(det.last_ran_whole().at(0).empty());
}

// Issue #15 item 1: DetectOptions::network_work bounds each network's node-iterations per content
// page, whatever the memory: a voting run past it is not run, a fit check's agreement run past it
// falls back to the voting rows; within it, the same run.
TEST_CASE("detect: the network work bound — per content page, no memory lifts it") {
    auto [g, m, common] = unlocal_task_model();
    std::set<uint64_t> pages;
    for (uint64_t v : g.vaddr()) pages.insert(v >> 12);
    REQUIRE(content_pages(g) == pages.size());
    REQUIRE(pages.size() > 1);
    CHECK(network_work_cap(g, 0) == 0);
    CHECK(network_work_cap(g, 2.5) == uint64_t(2.5 * double(pages.size())));
    Detector det;
    det.add_model(m, "ts.cereal");
    DetectOptions opt;
    const auto expected = det.detect(g, opt);
    REQUIRE(!expected.empty());
    for (const std::optional<uint64_t> memory : {std::optional<uint64_t>{}, std::optional<uint64_t>{0}}) {
        opt.memory_budget = memory;   // the default budget (blocks), and none (one block)
        opt.network_work = 0;
        opt.measure_agreement = false;
        REQUIRE(det.detect(g, opt) == expected);
        const double voting = double(det.last_timings().at(0).work) / double(pages.size());
        opt.measure_agreement = true;
        REQUIRE(det.detect(g, opt) == expected);
        const double agreement = double(det.last_timings().at(0).work) / double(pages.size());
        CAPTURE(voting);
        CAPTURE(agreement);
        REQUIRE(agreement > 1.5 * voting);
        REQUIRE(voting > 1);
        CHECK_FALSE(det.last_timings().at(0).capped);
        opt.network_work = agreement + 0.5 / double(pages.size());   // the work it does (not rounded below): runs
        opt.measure_agreement = true;
        CHECK(det.detect(g, opt) == expected);
        CHECK(det.last_unmeasured().at(0).empty());
        opt.network_work = std::sqrt(voting * agreement);   // the voting rows' run fits, the agreement rows' not
        CHECK(det.detect(g, opt) == expected);
        CHECK(det.last_not_run().at(0).empty());
        CHECK(det.last_unmeasured().at(0).find("the network work bound of this dump") != std::string::npos);
        CHECK(det.last_timings().at(0).capped);
        CHECK(det.last_timings().at(0).unmeasured);
        opt.network_work = voting / 2;
        for (bool measure : {false, true}) {
            opt.measure_agreement = measure;
            CHECK(det.detect(g, opt).empty());
            const std::string why = det.last_not_run().at(0);
            CHECK(why.find("past the cap of") != std::string::npos);
            CHECK(why.find(std::to_string(pages.size()) + " pages holding segments") != std::string::npos);
            CHECK(det.last_ran_whole().at(0).empty());
            CHECK(det.last_timings().at(0).not_run);
            CHECK(det.last_timings().at(0).capped);
        }
    }
    for (double bad : {-1.0, std::nan(""), double(INFINITY)}) {
        opt.network_work = bad;
        CHECK_THROWS_AS(det.detect(g, opt), InputError);
    }
}

// Issue #15 item 1: DetectOptions::deadline — past it a model is not run, whatever its work, and
// says so (ModelTiming::timed_out, not capped); far off, the same detections.
TEST_CASE("detect: the deadline — past it every model is not run, said as the deadline's") {
    auto [g, m, common] = unlocal_task_model();
    Detector det;
    det.add_model(m, "ts.cereal");
    DetectOptions opt;
    const auto expected = det.detect(g, opt);
    REQUIRE(!expected.empty());
    for (bool measure : {false, true}) {
        CAPTURE(measure);
        opt.measure_agreement = measure;
        opt.deadline = InferenceNet::Clock::now() - std::chrono::seconds(1);
        CHECK(det.detect(g, opt).empty());
        CHECK(det.last_not_run().at(0) == "the deadline passed before its run");
        CHECK(det.last_timings().at(0).not_run);
        CHECK(det.last_timings().at(0).timed_out);
        CHECK_FALSE(det.last_timings().at(0).capped);
        CHECK(det.last_timings().at(0).work == 0);
        opt.deadline = InferenceNet::Clock::time_point::max();
        CHECK(det.detect(g, opt) == expected);
        CHECK(det.last_not_run().at(0).empty());
        CHECK_FALSE(det.last_timings().at(0).timed_out);
    }
    {   // the deadline moves earlier for each detection made (seconds_per_detection): two models alike,
        // the first's detections leave the second's run past it (attacker 105: the output past the limit)
        Model b = m;
        b.object_type = "z_type";
        Detector two;
        two.add_model(m, "ts.cereal");
        two.add_model(b, "z.cereal");
        opt.measure_agreement = false;
        opt.deadline = InferenceNet::Clock::now() + std::chrono::hours(1);
        opt.seconds_per_detection = 0;
        const auto both = two.detect(g, opt);
        CHECK(both.size() == 2 * expected.size());
        CHECK(two.last_not_run().at(1).empty());
        opt.seconds_per_detection = 7200.0 / double(expected.size());   // the first's detections: two hours
        CHECK(two.detect(g, opt) == expected);
        CHECK(two.last_not_run().at(0).empty());
        CHECK(two.last_not_run().at(1) == "the deadline passed before its run");
        CHECK(two.last_timings().at(1).timed_out);
        opt.deadline = InferenceNet::Clock::time_point::max();   // no deadline: nothing moves
        CHECK(two.detect(g, opt) == both);
        opt.seconds_per_detection = 0;
    }
    CHECK(default_time_limit(0) == kTimeLimitSeconds);
    CHECK(default_time_limit(kTimeLimitFileBytes) == kTimeLimitSeconds);
    CHECK(default_time_limit(kTimeLimitFileBytes + (uint64_t{3} << 20)) == kTimeLimitSeconds + 3 * kTimeLimitPerMiB);
}

TEST_CASE("detect: the network work bound — which refusal it was, for every type of a joint model") {
    auto [g, m, common] = unlocal_task_model();
    Detector det;
    det.add_model(m, "ts.cereal");
    DetectOptions opt;
    opt.memory_budget = 16 << 10;
    opt.whole_graph_ceiling = 0;
    opt.work_limit = 0;
    opt.network_work = 0;
    const double pages = double(counted_pages(g)), TN = double(m.config.iterations) * g.node_count();
    (void)det.detect(g, opt);
    const double voting = double(det.last_timings().at(0).work);
    opt.measure_agreement = true;
    (void)det.detect(g, opt);
    const double agreement = double(det.last_timings().at(0).work);
    REQUIRE(agreement > 2 * voting);
    // the agreement run past the bound, then the voting run past the relative limit: not run, and
    // not for the bound (reviewer 78: the first refusal's flag was kept)
    opt.network_work = std::sqrt(voting * agreement) / pages;
    opt.work_limit = voting / TN / 4;
    CHECK(det.detect(g, opt).empty());
    CHECK(det.last_not_run().at(0).find("times the whole graph") != std::string::npos);
    CHECK_FALSE(det.last_timings().at(0).capped);
    CHECK(det.last_timings().at(0).not_run);
    // and the other way round: the relative limit's agreement refusal, the bound's voting one
    opt.work_limit = std::sqrt(voting * agreement) / TN;
    opt.network_work = voting / 2 / pages;
    CHECK(det.detect(g, opt).empty());
    CHECK(det.last_not_run().at(0).find("the network work bound of this dump") != std::string::npos);
    CHECK(det.last_timings().at(0).capped);

    // a joint model: each of its types says the bound stopped it
    Model joint = test::keyed_model("", {{0, common[0], 0.6f}, {64, common[1], 0.9f}, {128, common[2], 0.7f},
                                   {0, common[1], 0.5f}, {32, common[3], 0.5f}},
                              5, g.params());
    joint.object_type = "task_struct+cred";
    joint.threshold = 0;
    joint.parts = {{"task_struct", 3, 1.2f}, {"cred", 2, 0.9f}};
    joint.validate();
    Detector both;
    both.add_model(joint, "joint.cereal");
    DetectOptions tiny;
    tiny.network_work = 1e-6;   // a cap of 1
    (void)both.detect(g, tiny);
    REQUIRE(both.model_count() == 2);
    for (size_t i = 0; i < 2; ++i) {
        CAPTURE(i);
        CHECK(both.last_timings().at(i).not_run);
        CHECK(both.last_timings().at(i).capped);
        CHECK(both.last_not_run().at(i).find("the network work bound") != std::string::npos);
    }
}

// DetectOptions::scan_work_factor: all networks of a scan together at most 4 times one network's part
// of the bound; a network that would pass what the runs before it left is refused, and says so.
TEST_CASE("detect: the network work bound for all models together — of six alike, the sixth is refused") {
    auto [g, m, common] = unlocal_task_model();
    Detector det;
    const std::vector<std::string> types = {"a_type", "b_type", "c_type", "d_type", "e_type", "f_type"};
    for (const std::string& type : types) {
        Model copy = m;
        copy.object_type = type;
        det.add_model(copy, type + ".cereal");
    }
    DetectOptions opt;
    opt.memory_budget = 16 << 10;
    opt.whole_graph_ceiling = 0;
    opt.work_limit = 0;
    opt.network_work = 0;
    const auto expected = det.detect(g, opt);
    REQUIRE(!expected.empty());
    const uint64_t each = det.last_timings().at(0).work;
    for (size_t i = 0; i < types.size(); ++i) REQUIRE(det.last_timings().at(i).work == each);
    const double pages = double(counted_pages(g));
    CHECK(det.last_counted_pages() == counted_pages(g));
    // each within its own part (its estimate before it runs is about a sixth above what it does);
    // together 4 × 1.5 = 6 of them: five run, the sixth finds one left, short of its estimate
    REQUIRE(DetectOptions::kScanWorkFactor == 4);
    opt.network_work = 1.5 * double(each) / pages;
    const auto found = det.detect(g, opt);
    for (size_t i = 0; i < types.size(); ++i) {
        CAPTURE(i);
        const std::string why = det.last_not_run().at(i);
        CAPTURE(why);
        CHECK(det.last_timings().at(i).capped == (i == 5));
        CHECK(det.last_timings().at(i).not_run == (i == 5));
        if (i < 5) continue;
        CHECK(why.find(" done before it in this scan): the network work bound of this dump for all models together, ") !=
              std::string::npos);
        CHECK(why.find("real kernels' graphs at most 1131: a crafted dump?; --network-work ") != std::string::npos);
    }
    {   // the value the refusal names runs every model (newcomer 82: the warning said neither value nor cost)
        const std::string why = det.last_not_run().at(5);
        const size_t at = why.find("; --network-work ");
        REQUIRE(at != std::string::npos);
        DetectOptions lifted = opt;
        lifted.network_work = std::stod(why.substr(at + 17));
        CHECK(lifted.network_work > opt.network_work);
        CHECK(det.detect(g, lifted) == expected);
        for (size_t i = 0; i < types.size(); ++i) CHECK(det.last_not_run().at(i).empty());
    }
    std::vector<Detection> first_five;
    for (const Detection& d : expected)
        if (d.type != "f_type") first_five.push_back(d);
    REQUIRE(first_five.size() < expected.size());
    CHECK(found == first_five);
    opt.scan_work_factor = 7;   // room for all six
    CHECK(det.detect(g, opt) == expected);
    for (size_t i = 0; i < types.size(); ++i) CHECK(det.last_not_run().at(i).empty());
    opt.scan_work_factor = 0;   // none
    CHECK(det.detect(g, opt) == expected);
    for (size_t i = 0; i < types.size(); ++i) CHECK(det.last_not_run().at(i).empty());
    opt.scan_work_factor = 4;
    opt.network_work = 1e308;   // saturates: no overflow to infinity
    CHECK(det.detect(g, opt) == expected);
    for (size_t i = 0; i < types.size(); ++i) CHECK(det.last_not_run().at(i) == "");
    opt.scan_work_factor = -1;
    CHECK_THROWS_AS(det.detect(g, opt), InputError);
}

TEST_CASE("detect: counted pages — a compressed file's pages count by the file bytes they take, 1 KiB a page") {
    // 160 pages alike (a pointer every 64 bytes to the next page): a kdump holds them in a few pages
    test::Memory mem(200);
    mem.map(test::K64, 0, 200 * 4096);
    for (uint64_t p = 8; p < 168; ++p)
        for (uint64_t o = 0; o < 4096; o += 64) mem.word(p * 4096 + o, test::K64 + (p + 1) * 4096);
    const MemoryGraph raw = mem.build();
    REQUIRE(content_pages(raw) >= 160);
    CHECK(counted_pages(raw) == content_pages(raw));   // a raw file holds every page it maps
    const std::vector<uint8_t> k = test_images::kdump_of(*mem.phys(), KdumpCompression::Zlib, false);
    const auto kphys = PhysicalLayer::from_bytes(k, DumpFormat::Kdump);
    const MemoryGraph g = MemoryGraph::build(mem.runs, *kphys, raw.params());
    REQUIRE(g.info().dump_bytes == k.size());
    REQUIRE(content_pages(g) == content_pages(raw));
    const uint64_t file_pages = (k.size() + 4095) / 4096;
    REQUIRE(content_pages(g) > kContentPagesPerFilePage * file_pages);
    // each page compresses to tens of bytes: what they take of the file counts, not the file's size
    REQUIRE(g.info().stored_page_bytes == kphys->stored_page_bytes());
    const uint64_t stored = g.info().stored_page_bytes.value();
    CHECK(stored < 160 * 256);
    CHECK(counted_pages(g) == (stored + 1023) / 1024);
    CHECK(counted_pages(g) < kContentPagesPerFilePage * file_pages);
    // A .dmg from before stored_page_bytes (version 7, none recorded): the file's size bounds them.
    test::TempDir dir;
    g.save(dir / "g.dmg");
    auto f = test::slurp(dir / "g.dmg");
    test::put32(f, test::kVersionAt, 7);
    test::put64(f, test::kStoredPageBytesAt, 0);   // none
    test::reseal(f);
    const MemoryGraph v7 = MemoryGraph::from_bytes(f);
    REQUIRE_FALSE(v7.info().stored_page_bytes);
    CHECK(counted_pages(v7) == kContentPagesPerFilePage * file_pages);
    CHECK(network_work_cap(g, 2) == 2 * counted_pages(g));
    CHECK(network_work_cap(g, 1e300) == uint64_t{1} << 63);   // saturating
    CHECK(network_work_cap(g, 1e-300) == 1);                  // at least 1: 0 would mean no cap
    CHECK(network_work_cap(g, 0) == 0);
    CHECK_THROWS_AS(network_work_cap(g, std::nan("")), InputError);
    CHECK_THROWS_AS(network_work_cap(g, -1), InputError);
}

TEST_CASE("detect: a sparse raw file's apparent size buys no more memory than the bytes it holds") {
    // reviewer 98 M3: a raw file's size is whatever its writer seeked to; a 4 MiB image padded with a
    // 63.9 GiB hole claimed a whole-graph ceiling of 16 × 64 GiB. The bounds scale by what it holds.
    auto img = test_images::build_x64_4level();
    for (uint64_t p = 0x300000; p < 0x380000; p += 8) img.put64(p, p % 64 ? 0x1111 * p : 0xffff800000000000ull + p + 24);
    test::TempDir dir;
    const std::string raw = dir / "padded.raw";
    std::ofstream(raw, std::ios::binary).write(reinterpret_cast<const char*>(img.bytes.data()), std::streamsize(img.bytes.size()));
    const uint64_t apparent = uint64_t{64} << 30;
    REQUIRE(::truncate(raw.c_str(), off_t(apparent)) == 0);
    auto phys = PhysicalLayer::open(raw, DumpFormat::Raw);
    CHECK(phys->dump_size() == apparent);
    CHECK(phys->held_bytes() == held_bytes(raw));
    if (held_bytes(raw) == apparent) {
        MESSAGE("this filesystem reports no holes: the padded file is dense here");
        return;
    }
    CHECK(phys->held_bytes() < apparent / 2);   // (a filesystem may count data in units larger than the image's)
    const MemoryGraph g = MemoryGraph::build(TranslationLayer(*phys, PagingMode::X86_64_4Level, 0x1000));
    REQUIRE(g.node_count() > 0);
    CHECK(g.info().dump_bytes == apparent);   // recorded as it is: what tells the same file later
    CHECK(g.dump_held_bytes() == phys->held_bytes());
    CHECK(input_bytes(g) == phys->held_bytes());
    CHECK(whole_graph_ceiling(g, std::nullopt) == DetectOptions::kWholeGraphCeiling - g.array_bytes() - DetectOptions::kBesideNetwork);
    // ... and a .dmg of it, its own bytes (MemoryGraph::load: no held bytes of the dump)
    g.save(dir / "g.dmg");
    const MemoryGraph loaded = MemoryGraph::load(dir / "g.dmg");
    CHECK(loaded.dump_held_bytes() == 0);
    CHECK(input_bytes(loaded) == std::min(apparent, kDumpBytesPerDmgByte * loaded.graph_file_bytes()));
}

TEST_CASE("detect: a .dmg whose header claims a bigger dump buys no more work or memory than its own bytes") {
    // attacker 94: a 51 MiB .dmg whose header claimed a 4 EiB dump ran its networks 23.6 s, exit 0
    // (the work bound and the whole-graph ceiling scaled by the claim). Here one pointer a page: a
    // sparse graph, under 1 KiB of .dmg a content page (real kernels' .dmg: 8.5-10.5 KiB).
    test::Memory mem(2048);
    mem.map(test::K64, 0, 2048 * 4096);
    for (uint64_t p = 0; p + 1 < 2048; ++p) mem.word(p * 4096 + 8 * (p % 500), test::K64 + (p + 1) * 4096);
    const MemoryGraph built = mem.build();
    REQUIRE(built.graph_file_bytes() == 0);
    CHECK(input_bytes(built) == built.info().dump_bytes);
    test::TempDir dir;
    built.save(dir / "g.dmg");
    auto f = test::slurp(dir / "g.dmg");
    const MemoryGraph honest = MemoryGraph::from_bytes(f);
    CHECK(honest.graph_file_bytes() == f.size());
    CHECK(input_bytes(honest) == std::min<uint64_t>(kDumpBytesPerDmgByte * f.size(), built.info().dump_bytes));
    CHECK(whole_graph_ceiling(honest, std::nullopt) == whole_graph_ceiling(built, std::nullopt));
    const uint64_t dmg_pages = (f.size() + 4095) / 4096;   // one counted a 4 KiB page of the .dmg
    REQUIRE(content_pages(honest) > dmg_pages);
    CHECK(counted_pages(honest) == dmg_pages);
    CHECK(counted_pages(built) == content_pages(built));   // a raw file holds a page a page
    for (uint64_t claim : {uint64_t{1} << 62, ~uint64_t{0}}) {
        CAPTURE(claim);
        test::put64(f, test::kDumpBytesAt, claim);
        test::reseal(f);
        const MemoryGraph forged = MemoryGraph::from_bytes(f);
        REQUIRE(forged.info().dump_bytes == claim);   // said as it is (dmgraph info), not believed
        CHECK(input_bytes(forged) == kDumpBytesPerDmgByte * f.size());
        CHECK(counted_pages(forged) == counted_pages(honest));
        CHECK(whole_graph_ceiling(forged, std::nullopt) == whole_graph_ceiling(honest, std::nullopt));
        CHECK(whole_graph_ceiling(forged, std::nullopt) ==
              DetectOptions::kWholeGraphCeiling - forged.array_bytes() - DetectOptions::kBesideNetwork);
    }
    test::put64(f, test::kDumpBytesAt, 0);   // unknown (a graph built from bytes, then saved)
    test::reseal(f);
    CHECK(input_bytes(MemoryGraph::from_bytes(f)) == kDumpBytesPerDmgByte * f.size());
    {   // 64 MiB of holes after the sections: refused before the checksum reads them (attacker 99:
        // 32 GiB of holes, 17 GB resident), so a .dmg's bytes are its sections'
        const uint64_t held = f.size();
        test::put64(f, test::kFileSizeAt, held + (uint64_t{64} << 20));
        const std::string path = dir / "sparse.dmg";
        {
            std::ofstream out(path, std::ios::binary);
            out.write(reinterpret_cast<const char*>(f.data()), std::streamsize(held));
        }
        std::filesystem::resize_file(path, held + (uint64_t{64} << 20));
        std::string why;
        try {
            MemoryGraph::load(path);
        } catch (const FormatError& e) {
            why = e.what();
        }
        const size_t at = why.find(" bytes of the file lie outside its sections");
        REQUIRE(at != std::string::npos);
        const size_t from = why.rfind(' ', at - 1) + 1;   // the count: the holes and the writer's padding
        const uint64_t outside = std::stoull(why.substr(from, at - from));
        CHECK(outside >= (uint64_t{64} << 20));
        CHECK(outside < (uint64_t{64} << 20) + 64 * 64);
    }
}

TEST_CASE("detect: the whole-graph ceiling leaves room for the graph and the rest of the process") {
    // issue 15: 1 GiB for the process on inputs up to 64 MiB (attacker 75: a network run whole in
    // 1,005 MiB beside a 183 MiB graph peaked at 1.26 GiB)
    const MemoryGraph g = test::Memory(16).build();
    const uint64_t expected = DetectOptions::kWholeGraphCeiling - g.array_bytes() - DetectOptions::kBesideNetwork;
    CHECK(whole_graph_ceiling(g, std::nullopt) == expected);
    CHECK(whole_graph_ceiling(g, uint64_t{64} << 30) == expected);
    CHECK(whole_graph_ceiling(g, uint64_t{1} << 30) == uint64_t{1} << 29);   // half the available memory
    CHECK(whole_graph_ceiling(g) <= expected);   // this machine's available memory
}

// Issue #12 item 1: a joint model (several types, one network) runs once for all its types, and
// each type's detections are those of its type model from the whole-graph run's joint classes.
TEST_CASE("detect: a joint model — one network run for its types, each type's votes from its own classes") {
    const test::Memory mem = test::random_memory(7, 96, 8);
    MemoryGraph g = mem.build();
    const std::vector<uint32_t> common = test::common_lengths(g);
    REQUIRE(common.size() >= 4);
    Model joint = test::keyed_model("", {{0, common[0], 0.6f}, {64, common[1], 0.9f}, {128, common[2], 0.7f},   // task_struct
                                   {0, common[1], 0.5f}, {32, common[3], 0.5f},                          // cred
                                   {0, common[2], 0.8f}, {16, common[0], 0.4f}},                         // file
                              5, g.params());
    {   // output biases that spread the nodes over the classes (a random layer puts nearly all in one):
        // each class's mean log-probability over the nodes taken off its logit
        InferenceNet spread(joint.config, joint.params);
        Mat<float> p;
        spread.run(graph_input(g), p);
        const Mat<float> mean = p.array().max(1e-30f).log().matrix().colwise().mean();
        joint.params.cls_b(int(joint.params.classifier_depth) - 1) -= mean;
    }
    joint.object_type = "task_struct+cred+file";
    joint.threshold = 0;
    joint.parts = {{"task_struct", 3, 1.2f}, {"cred", 2, 0.9f}, {"file", 2, 0.85f}};
    joint.parts[2].vote_window = 16;
    joint.validate();
    Detector det;
    det.add_model(joint, "joint.cereal");
    REQUIRE(det.model_count() == 3);
    CHECK(det.model(0).object_type == "cred");   // type order
    CHECK(det.model(0).key_nodes == std::vector<KeyNode>(joint.key_nodes.begin() + 3, joint.key_nodes.begin() + 5));
    CHECK(det.model(1).vote_window == 16);
    CHECK(det.source(2) == "joint.cereal");

    // the reference: every node's joint class from the whole-graph run, each type's own class of it
    InferenceNet net(joint.config, joint.params);
    Mat<float> probs;
    net.run(graph_input(g), probs);
    const std::vector<uint32_t> joint_classes = argmax_classes(probs);
    std::vector<uint32_t> all(g.node_count());
    std::iota(all.begin(), all.end(), 0u);
    std::vector<uint32_t> first;
    std::vector<Model> types = joint.type_models(&first);
    CHECK(first == std::vector<uint32_t>{1, 4, 6});
    auto expected_at = [&](std::optional<float> threshold) {
        std::map<std::string, std::vector<Detection>> by_type;
        for (size_t t = 0; t < types.size(); ++t) {
            std::vector<uint32_t> own(all.size());
            for (size_t n = 0; n < all.size(); ++n)
                own[n] = Model::type_class(joint_classes[n], first[t], uint32_t(types[t].key_nodes.size()));
            by_type[types[t].object_type] =
                select(g, types[t], vote(g, types[t], all, own), threshold.value_or(types[t].threshold));
        }
        std::vector<Detection> out;
        for (auto& [type, found] : by_type) out.insert(out.end(), found.begin(), found.end());
        return out;
    };
    const std::vector<Detection> expected = expected_at({});
    std::set<std::string> found_types;
    for (const Detection& d : expected) found_types.insert(d.type);
    REQUIRE(found_types.size() >= 2);   // the test sees the classes of more than one type
    CHECK(det.detect(g) == expected);
    DetectOptions low;
    low.threshold = 0.f;
    CHECK(det.detect(g, low) == expected_at(0.f));
    // one run: the first type (cred) ran the network over its types' rows, the others reused it
    REQUIRE(det.last_timings().size() == 3);
    CHECK(det.last_timings()[0].network_rows >= det.last_timings()[0].rows);
    CHECK(det.last_timings()[0].network_rows > 0);
    CHECK(det.last_timings()[1].network_rows == 0);
    CHECK(det.last_timings()[2].network_rows == 0);
    CHECK(det.last_timings()[2].rows > 0);

    // a single-type model whose type sorts between the joint model's (cred < dentry < file): each
    // network's types keep their own rows (a shared union was cleared by the dentry run: no file found)
    Model dentry = test::keyed_model("dentry", {{0, common[2], 0.5f}, {16, common[1], 0.5f}}, 3, g.params());
    dentry.threshold = 0.9f;
    Detector alone, mixed;
    alone.add_model(dentry);
    mixed.add_model(joint, "joint.cereal");
    mixed.add_model(dentry);
    std::vector<Detection> joint_part, dentry_part;
    for (const Detection& d : mixed.detect(g)) (d.type == "dentry" ? dentry_part : joint_part).push_back(d);
    CHECK(joint_part == expected);
    CHECK(dentry_part == alone.detect(g));

    // keep_types (dmdetect --types): the joint network runs for the kept types alone, their detections unchanged
    Detector some;
    some.add_model(joint, "joint.cereal");
    const std::vector<std::string> keep{"file", "cred"};
    some.keep_types(keep);
    REQUIRE(some.model_count() == 2);
    std::vector<Detection> kept;
    for (const Detection& d : expected)
        if (d.type != "task_struct") kept.push_back(d);
    CHECK(some.detect(g) == kept);
    det.detect(g);   // the whole joint model at the same thresholds: its network ran over more rows
    CHECK(some.last_timings()[0].network_rows > 0);
    CHECK(some.last_timings()[0].network_rows < det.last_timings()[0].network_rows);
    some.keep_types(std::vector<std::string>{"file"});   // one type of a joint model left: its classes still mapped
    std::vector<Detection> files;
    for (const Detection& d : expected)
        if (d.type == "file") files.push_back(d);
    CHECK(some.detect(g) == files);
    CHECK_THROWS_WITH_AS(some.keep_types(std::vector<std::string>{"module"}),
                         doctest::Contains("no model detects module (the models detect: file)"), InputError);

    // a type of the joint model given again, by a single-type model, is refused naming both
    Model cred = test::keyed_model("cred", {{0, common[1], 0.5f}, {32, common[3], 0.5f}}, 2, g.params());
    cred.threshold = 0.9f;
    try {
        det.add_model(cred, "cred.cereal");
        FAIL("a second cred model was accepted");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()).find("two models for cred: cred (joint.cereal) and cred (cred.cereal)") != std::string::npos);
    }
}

// Issue #11: on a dump cut below the kernel image (its window maps no present page) a model detects
// at its threshold for such dumps, where it has one; --threshold still overrides.
TEST_CASE("detect: the threshold for dumps without the kernel image applies where the image is lacking") {
    namespace ti = test_images;
    auto img = ti::build_x64_with_image();
    std::mt19937_64 rng(7);
    for (uint64_t a = 0x300000; a < 0x380000; a += 8)   // data and direct-map pointers for some nodes
        img.put64(a, rng() % 3 ? rng() : 0xffff800000300000ull + (rng() % 0x80000 & ~uint64_t{7}));
    auto graph_of = [](const std::vector<uint8_t>& bytes) {
        auto phys = PhysicalLayer::from_bytes(bytes, DumpFormat::Raw);
        TranslationLayer layer(*phys, PagingMode::X86_64_4Level, 0x1000);
        return MemoryGraph::build(layer);
    };
    const MemoryGraph with = graph_of(img.bytes);
    img.put64(0x1000 + 511 * 8, 0);   // the kernel image's PML4 entry: its window maps nothing
    const MemoryGraph without = graph_of(img.bytes);
    CHECK_FALSE(lacks_kernel_image(with));
    CHECK(lacks_kernel_image(without));
    CHECK_FALSE(lacks_kernel_image(test::random_memory(5, 8, 8).build()));   // built from runs: unknown
    REQUIRE(without.node_count() > 100);
    // Too little for an image (attacker 16: one planted 2 MiB page hid every task_struct of a cut
    // dump), or a banner that lies outside the window: lacking.
    CHECK(lacks_kernel_image(graph_of(ti::build_x64_4level().bytes)));   // 2 MiB + 20 KiB
    const std::string banner = "Linux version 6.1.0-47-amd64 (x@y) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld 2.40) "
                               "#1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (2026-05-08)\n";
    const MemoryGraph in = graph_of(ti::build_x64_with_image(banner, 0x400100).bytes);
    REQUIRE(in.info().kernel_banner);
    CHECK(in.info().kernel_banner->in_kernel_image());
    CHECK_FALSE(lacks_kernel_image(in));
    const MemoryGraph out = graph_of(ti::build_x64_with_image(banner, 0xe00100).bytes);
    REQUIRE(out.info().kernel_banner);
    CHECK_FALSE(out.info().kernel_banner->in_kernel_image());
    CHECK(lacks_kernel_image(out));

    const std::vector<uint32_t> common = test::common_lengths(without);
    REQUIRE(common.size() >= 2);
    Model m = test::keyed_model("task_struct", {{0, common[0], 0.6f}, {64, common[1], 0.9f}}, 3, without.params());
    m.threshold = 1.4f;
    CHECK(detection_threshold(m, without) == 1.4f);   // none of its own
    m.image_absent_threshold = 1.0f;
    CHECK(detection_threshold(m, with) == 1.4f);
    CHECK(detection_threshold(m, without) == 1.0f);
    CHECK(detection_threshold(m, without, 2.5f) == 2.5f);
    Detector det;
    det.add_model(m);
    DetectOptions at;
    at.threshold = 1.0f;
    CHECK(det.detect(without) == det.detect(without, at));
    REQUIRE(det.last_thresholds() == std::vector<float>{1.0f});
    det.detect(without);
    CHECK(det.last_thresholds() == std::vector<float>{1.0f});
    det.detect(with);
    CHECK(det.last_thresholds() == std::vector<float>{1.4f});
}

TEST_CASE("detect: Detector refuses mismatched graph parameters, duplicate types, and works without dumps") {
    GraphParams p32;
    p32.feature_bytes = 32;
    Detector det;
    det.add_model(test::keyed_model("task_struct", {{0, 24, 1.f}}, 1), "ts.cereal");
    try {
        det.add_model(test::keyed_model("cred", {{0, 24, 1.f}}, 2, p32), "cred.cereal");
        FAIL("no InputError");
    } catch (const InputError& e) {
        const std::string w = e.what();
        CHECK(w.find("task_struct (ts.cereal)") != std::string::npos);
        CHECK(w.find("cred (cred.cereal)") != std::string::npos);
        CHECK(w.find("feature_bytes 64 vs 32") != std::string::npos);
    }
    CHECK_THROWS_AS(det.add_model(test::keyed_model("task_struct", {{0, 24, 1.f}}, 3)), InputError);
    CHECK(det.model_count() == 1);

    test::Memory mem(1);
    mem.map(test::K64, 0, 4096);
    mem.word(64, test::K64);
    MemoryGraph g32 = mem.build(p32);
    try {
        det.detect(g32);
        FAIL("no InputError");
    } catch (const InputError& e) {
        CHECK(std::string(e.what()).find("feature_bytes 32 (graph) vs 64 (model)") != std::string::npos);
    }
    MemoryGraph g = mem.build();
    CHECK_NOTHROW(det.detect(g));
    CHECK_THROWS_AS(Detector().graph_params(), InputError);
    CHECK_THROWS_AS(det.build_graph("/nonexistent/dump.elf"), InputError);
    CHECK_THROWS_AS(det.add_model("/nonexistent/model.cereal"), ModelError);
}

// Issue #11 item 2: a graph of no node (page tables over pages without pointers) is refused with
// the reason, whether built from a dump or loaded from a .dmg, never scanned into 0 detections.
TEST_CASE("detect: Detector refuses a memory graph of no node") {
    Detector det;
    det.add_model(test::keyed_model("task_struct", {{0, 24, 1.f}}, 1), "ts.cereal");
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("dm-empty-graph-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const std::string raw = (dir / "plain.raw").string(), dmg = (dir / "empty.dmg").string();
    {
        auto plain = test_images::build_x64_4level();
        std::ofstream f(raw, std::ios::binary);
        f.write(reinterpret_cast<const char*>(plain.bytes.data()), static_cast<std::streamsize>(plain.bytes.size()));
    }
    BuildOptions opt;
    opt.dtb = 0x1000;
    CHECK_THROWS_WITH_AS(det.build_graph(raw, opt), doctest::Contains("the memory graph has no node"), InputError);
    CHECK_THROWS_WITH_AS(det.open_graph(raw, opt), doctest::Contains("the memory graph has no node"), InputError);
    test::Memory mem(1);
    mem.map(test::K64, 0, 4096);
    MemoryGraph empty = mem.build();
    REQUIRE(empty.node_count() == 0);
    empty.save(dmg);
    CHECK_THROWS_WITH_AS(det.open_graph(dmg), doctest::Contains("the memory graph has no node"), InputError);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}
