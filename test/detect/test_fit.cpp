// Does a model fit this dump? (detect/fit.hpp): vote agreement on hand-made bases and on synthetic
// dumps laid out as the model learned them or with part of the layout moved (high vs low
// agreement through the real Detector), build matching and model picking by banner, and the
// kernel/fit records of dmdetect's output.
#include "detect/fit.hpp"
#include "../graph/graph_fixtures.hpp"
#include "fit_fixtures.hpp"

#include <doctest/doctest.h>

#include <cstring>

using namespace deepmem;

namespace {

// A Debian banner of `release`; its version says PREEMPT_RT for an rt release, as Debian's do.
FoundBanner banner(const std::string& release, std::string version = "") {
    if (version.empty())
        version = release.find("-rt-") != std::string::npos ? "#1 SMP PREEMPT_RT Debian" : "#1 SMP PREEMPT_DYNAMIC Debian";
    auto b = KernelBanner::parse("Linux version " + release + " (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0) " +
                                 version + "\n");
    REQUIRE(b.has_value());
    return FoundBanner{*b, 0x2000100, 0xffffffff82000100ull};
}

// A dump of `count` objects (shifted or not) in the direct map, and its graph.
MemoryGraph objects_graph(int count, test::Layout layout, std::vector<uint64_t>* bases = nullptr) {
    const uint64_t pages = std::max<uint64_t>(64, (uint64_t(count) * test::kMovedObject + 0x2000) / 4096 + 1);
    test::Memory m(pages);
    m.map(test::K64, 0, pages * 4096);
    auto b = test::put_objects([&](uint64_t p, uint64_t v) { m.word(p, v); }, [&](uint64_t p, uint8_t v) { m.image[p] = v; },
                               0x1000, test::K64 + 0x1000, count, layout);
    if (bases) *bases = b;
    return m.build();
}

}  // namespace

TEST_CASE("fit: vote agreement over hand-made votes") {
    Model m = test::marker_model("thing", 1.5f);
    m.key_nodes = {{0, 8, 1.f}, {100, 8, 1.f}, {50, 8, 0.5f}, {20, 8, 0.1f}};   // R = 100
    const std::vector<std::pair<uint64_t, uint32_t>> votes = {   // (base, class), sorted
        {1000, 1}, {1000, 2}, {1064, 3},   // one object, the kept base holds 2.01 of 2.51: disagrees
        {5000, 1}, {5000, 2}, {5001, 4},   // 2.01 of 2.11: agrees
        {9000, 1}, {9064, 2},              // a tie split in two: the group reaches 1.5, disagrees
        {20000, 1},                        // alone below the threshold: no candidate object
        {30000, 1}, {30000, 3},            // alone above: agrees
    };
    const VoteAgreement a = vote_agreement(m, votes, 1.5f);
    CHECK(a.objects == 4);
    CHECK(a.agreeing == 2);
    CHECK(a.fraction() == doctest::Approx(0.5));
    CHECK(a.key_votes == std::vector<uint64_t>{4, 2, 1, 0});   // votes for the kept bases 1000, 5000, 9000, 30000
    CHECK(vote_agreement(m, votes, 100.f).objects == 0);
    CHECK(std::isnan(VoteAgreement{}.fraction()));
}

TEST_CASE("fit: agreement is high on the layout the model learned and collapses on a moved one") {
    std::vector<uint64_t> bases;
    const MemoryGraph same = objects_graph(24, test::Layout::Trained, &bases);
    Detector d;
    d.add_model(test::marker_model("thing"), "marker");
    DetectOptions opt;
    opt.measure_agreement = true;
    const auto found = d.detect(same, opt);
    REQUIRE(found.size() == bases.size());
    for (size_t i = 0; i < found.size(); ++i) CHECK(found[i].vaddr == bases[i]);
    REQUIRE(d.last_agreements().size() == 1);
    const VoteAgreement high = d.last_agreements()[0];
    CHECK(high.objects == 24);
    CHECK(high.agreeing == 24);
    const ModelFit fits = assess_fit(d.model(0), "marker", std::nullopt, high);
    CHECK(fits.fits);
    CHECK(fits.build == BuildMatch::Unknown);
    CHECK(fits.reason == "");
    CHECK(d.detect(same).size() == found.size());   // without measuring: same detections, no figure
    CHECK(d.last_agreements().empty());

    const MemoryGraph moved = objects_graph(24, test::Layout::Moved, &bases);
    CHECK(d.detect(moved, opt).empty());   // half the key nodes per base: below the threshold
    const VoteAgreement low = d.last_agreements()[0];
    CHECK(low.objects == 24);
    CHECK(low.agreeing == 0);
    const ModelFit misfit = assess_fit(d.model(0), "marker", std::nullopt, low);
    CHECK_FALSE(misfit.fits);
    CHECK(misfit.reason.find("agree on 0 of 24 candidate objects (0.0%, 99.0% on its validation dumps)") != std::string::npos);

    // With a lower threshold the moved objects are reported (at the lower of two equal bases) and
    // still flagged: this is the silent wrong answer the check exists for.
    opt.threshold = 1.5f;
    const auto wrong = d.detect(moved, opt);
    CHECK(wrong.size() == 24);
    CHECK(d.last_agreements()[0].agreeing == 0);
    CHECK_FALSE(assess_fit(d.model(0), "marker", std::nullopt, d.last_agreements()[0]).fits);

    // Too few candidate objects to judge: no verdict from agreement.
    CHECK(assess_fit(d.model(0), "marker", std::nullopt, VoteAgreement{4, 0, {}}).fits);

    // A low agreement that chance explains is no verdict (the 32-bit module model: 48% at validation,
    // 1 of 5 on a dump of its build, a 21% draw); the same share of many candidates is one.
    Model split = d.model(0);
    split.provenance.validation_objects = 100;
    split.provenance.validation_agreeing = 48;
    CHECK(agreement_by_chance(VoteAgreement{5, 1, {}}, 0.48) == doctest::Approx(0.52 * 0.52 * 0.52 * 0.52 * (0.52 + 5 * 0.48)));
    CHECK(assess_fit(split, "split", std::nullopt, VoteAgreement{5, 1, {}}).fits);
    CHECK_FALSE(assess_fit(split, "split", std::nullopt, VoteAgreement{50, 10, {}}).fits);   // P ≈ 1e-5
    CHECK_FALSE(assess_fit(split, "split", std::nullopt, VoteAgreement{251, 0, {}}).fits);
    // at 99% expected, one split object of five is already unlikely (P ≈ 1e-3), and every share
    // in between follows the binomial tail
    CHECK_FALSE(assess_fit(d.model(0), "marker", std::nullopt, VoteAgreement{5, 1, {}}).fits);
    CHECK(agreement_by_chance(VoteAgreement{5, 5, {}}, 0.5) == 1.0);
    CHECK(agreement_by_chance(VoteAgreement{0, 0, {}}, 0.5) == 1.0);
    CHECK(agreement_by_chance(VoteAgreement{100000, 40000, {}}, 0.5) < 1e-100);   // large counts stay finite
    CHECK(agreement_by_chance(VoteAgreement{10, 0, {}}, 1.0) == doctest::Approx(std::pow(0.01, 10)));   // capped at 0.99
}

TEST_CASE("fit: a run that reported nothing says why in scores (attacker 13 finding 5)") {
    std::vector<uint64_t> bases;
    const MemoryGraph moved = objects_graph(24, test::Layout::Moved, &bases);
    Detector d;
    d.add_model(test::marker_model("thing"), "marker");   // 4 key nodes of weight 1, threshold 3.5
    const Model& m = d.model(0);
    CHECK(max_score(m) == 4.f + 3 * kVoteBonus);
    CHECK(m.single_vote_bound() == 1.f);
    DetectOptions opt;
    opt.measure_agreement = true;
    // Each moved object's votes split two and two: its bases score 2.01, below 3.5.
    CHECK(d.detect(moved, opt).empty());
    REQUIRE(d.last_best_scores().size() == 1);
    REQUIRE(d.last_best_scores()[0].has_value());
    const float best = *d.last_best_scores()[0];
    CHECK(best == 2.f + kVoteBonus);
    const ModelFit split = assess_fit(m, "marker", std::nullopt, d.last_agreements()[0], ScoreReach{3.5f, best});
    // The candidate objects are counted as what they are: groups whose votes reach the threshold
    // only together (not "scored below the threshold").
    CHECK(split.reason.find("; 24 candidate objects had the threshold's worth of votes only split between nearby "
                            "bases; the highest score seen is 2.01, below the threshold 3.50 (bases the run skipped "
                            "may score more, still below it)") != std::string::npos);
    // Above the highest score the model can give (dmdetect --threshold 25 on the dev dump, the real
    // task_structs scoring 20.19): the threshold is named, the layout and the dump are not blamed.
    opt.threshold = 25.f;
    CHECK(d.detect(moved, opt).empty());
    CHECK_FALSE(d.last_best_scores()[0].has_value());   // no row can matter: no candidate
    const ModelFit above = assess_fit(m, "marker", std::nullopt, d.last_agreements()[0], ScoreReach{25.f, std::nullopt});
    CHECK(above.fits);
    CHECK(above.reason == "no candidate object; the threshold 25.00 is above the highest score the model can give "
                          "(4.03, all 4 key nodes voting)");
    // Reachable, no candidate object, a best score seen: the guess stays, the score is added.
    const ModelFit low = assess_fit(m, "marker", std::nullopt, VoteAgreement{}, ScoreReach{4.f, 1.f});
    CHECK(low.reason == "no candidate object: no base gathered the threshold's worth of key-node votes anywhere in the "
                        "dump (a struct layout the model does not know, or memory the dump lacks?); the highest score "
                        "seen is 1.00, below the threshold 4.00 (bases the run skipped may score more, still below it)");
    // A run that reported objects: nothing about scores.
    opt.threshold = 1.5f;
    CHECK(d.detect(moved, opt).size() == 24);
    CHECK(*d.last_best_scores()[0] == best);
    const ModelFit found = assess_fit(m, "marker", std::nullopt, d.last_agreements()[0], ScoreReach{1.5f, best});
    CHECK(found.reason.find("highest score") == std::string::npos);
    CHECK(found.reason.find("split between") == std::string::npos);
}

TEST_CASE("fit: a key node that never votes on the dump means its layout changed") {
    std::vector<uint64_t> bases;
    const MemoryGraph cut = objects_graph(24, test::Layout::Cut, &bases);
    Detector d;
    d.add_model(test::marker_model("thing", 2.5f), "marker");
    DetectOptions opt;
    opt.measure_agreement = true;
    const auto found = d.detect(cut, opt);
    CHECK(found.size() == 24);   // three of four key nodes still find every object
    const VoteAgreement a = d.last_agreements().at(0);
    CHECK(a.objects == 24);
    CHECK(a.agreeing == 24);     // no split ...
    // Element by element: GCC 12.2 at -O2 with AVX-512 (-march=native here) miscompiles a local
    // `const std::vector<uint64_t> v{24, 24, 24, 0}` into four 24s (its SLP vectoriser).
    REQUIRE(a.key_votes.size() == 4);
    CHECK(a.key_votes[0] == 24);
    CHECK(a.key_votes[1] == 24);
    CHECK(a.key_votes[2] == 24);
    CHECK(a.key_votes[3] == 0);
    const ModelFit f = assess_fit(d.model(0), "marker", std::nullopt, a);
    CHECK_FALSE(f.fits);         // ... but key node 4 is gone
    CHECK(f.missing == std::vector<std::string>{"392/120"});
    CHECK(f.reason == "key node 392/120 (25.0% of the key-node weight, in nearly every trained object) voted for at most "
                      "half as many of the 24 agreeing candidate objects: the struct layout differs");

    // On the layout it learned, every key node votes for every object.
    d.detect(objects_graph(24, test::Layout::Trained), opt);
    CHECK(d.last_agreements().at(0).key_votes == std::vector<uint64_t>{24, 24, 24, 24});
    CHECK(assess_fit(d.model(0), "marker", std::nullopt, d.last_agreements().at(0)).fits);
    // Key nodes rarely present in training objects are not expected on every object.
    Model rare = test::marker_model("thing", 2.5f);
    rare.key_nodes[3].weight = 0.6f;
    CHECK(assess_fit(rare, "rare", std::nullopt, a).fits);
    // A model that splits votes by design (validation agreement 11 of 23, as the 32-bit module
    // model): 12 candidate objects of which the 5 real ones agree, every key node voting for
    // those 5. Judged against all 12, every key node looked missing.
    Model split = test::marker_model("thing", 2.5f);
    split.provenance.validation_objects = 23;
    split.provenance.validation_agreeing = 11;
    CHECK(assess_fit(split, "split", std::nullopt, VoteAgreement{12, 5, {5, 5, 5, 5}}).fits);
    const ModelFit gone = assess_fit(split, "split", std::nullopt, VoteAgreement{12, 5, {5, 5, 5, 2}});
    CHECK_FALSE(gone.fits);
    CHECK(gone.missing == std::vector<std::string>{"392/120"});

    // A dump that lacks memory the kernel maps (a cut capture) silences key nodes whose edges lead
    // into it: on the model's own build that is said, not a misfit; on an unknown build (a cut that
    // took the kernel image and its banner) absence and a moved layout cannot be told apart: said,
    // not a misfit, and not checked (--require-fit fails).
    Model own = test::marker_model("thing", 2.5f);
    own.provenance.kernel_build = "linux-image-6.1.0-47-amd64-unsigned 6.1.170-3";
    const ModelFit lacking = assess_fit(own, "own", banner("6.1.0-47-amd64"), a, std::nullopt, MemoryLack::Pages);
    CHECK(lacking.fits);
    CHECK(lacking.missing == std::vector<std::string>{"392/120"});
    CHECK(lacking.reason == "key node 392/120 (25.0% of the key-node weight, in nearly every trained object) voted for at "
                        "most half as many of the 24 agreeing candidate objects: the memory their edges lead to is "
                        "missing from the dump (the model's own build)");
    CHECK_FALSE(assess_fit(own, "own", banner("6.1.0-47-amd64"), a, std::nullopt, MemoryLack::None).fits);
    CHECK(lacking.checked);
    const ModelFit unknown = assess_fit(own, "own", std::nullopt, a, std::nullopt, MemoryLack::Pages);
    CHECK(unknown.fits);
    CHECK_FALSE(unknown.checked);
    CHECK(unknown.reason.find("the memory their edges lead to is missing from the dump, or the struct layout differs (the "
                              "dump's build is unknown)") != std::string::npos);
    CHECK_FALSE(assess_fit(own, "own", std::nullopt, a, std::nullopt, MemoryLack::None).fits);   // not lacking: a misfit
    // Low agreement (1 of 11, the module model on a dump cut below vmalloc's tables) reads the same
    // when page tables are lost, whole address ranges with them; absent pages alone do not excuse it.
    const VoteAgreement low{11, 1, {1, 1, 1, 1}};
    const ModelFit cut_fit = assess_fit(own, "own", banner("6.1.0-47-amd64"), low, std::nullopt, MemoryLack::Tables);
    CHECK(cut_fit.fits);
    CHECK_FALSE(cut_fit.checked);   // --require-fit fails: one planted table entry would do the same
    CHECK(cut_fit.reason == "key-node votes agree on 1 of 11 candidate objects (9.1%, 99.0% on its validation dumps): the memory "
                            "their votes come from may be missing from the dump (the model's own build; not checked)");
    CHECK_FALSE(assess_fit(own, "own", banner("6.1.0-47-amd64"), low, std::nullopt, MemoryLack::Pages).fits);
    const ModelFit cut_unknown = assess_fit(own, "own", std::nullopt, low, std::nullopt, MemoryLack::Tables);
    CHECK(cut_unknown.fits);
    CHECK_FALSE(cut_unknown.checked);
}

// A VoteAgreement of `objects` candidate objects, all agreeing, with these votes per key node, built
// one element at a time: GCC 12.2 at -O2 with AVX-512 miscompiles a braced {24, 24, 24, 0} here into
// four 24s (its SLP vectoriser, as noted above).
[[gnu::noinline]] VoteAgreement all_agreeing(uint64_t objects, std::initializer_list<uint64_t> per_key) {
    VoteAgreement a;
    a.objects = a.agreeing = objects;
    for (uint64_t v : per_key) a.key_votes.push_back(v);
    return a;
}

TEST_CASE("fit: a placed model's threshold keeps its share of the key-node weight that votes") {
    // The rule of Missing, per key node: weight ≥ kSureKeyWeight and fewer votes than half its share
    // of the agreeing candidate objects.
    const Model m = test::marker_model("thing", 2.5f);
    CHECK(missing_key_nodes(m, all_agreeing(24, {24, 24, 24, 0})) == std::vector<size_t>{3});
    CHECK(missing_key_nodes(m, all_agreeing(24, {24, 11, 24, 12})) == std::vector<size_t>{1});
    CHECK(missing_key_nodes(m, all_agreeing(4, {4, 4, 4, 0})).empty());   // under kMinAgreementObjects
    const std::optional<double> one = placed_threshold_scale(m, all_agreeing(24, {24, 24, 24, 0}), 2.5f);
    REQUIRE(one);
    CHECK(*one == doctest::Approx(0.75));
    const std::optional<double> two = placed_threshold_scale(m, all_agreeing(24, {0, 24, 24, 0}), 2.5f);
    REQUIRE(two);
    CHECK(*two == doctest::Approx(0.5));   // kMaxPlacedMissingShare: half may be silent, not more
    CHECK_FALSE(placed_threshold_scale(m, all_agreeing(24, {0, 0, 24, 0}), 2.5f));
    CHECK_FALSE(placed_threshold_scale(m, all_agreeing(24, {24, 24, 24, 24}), 2.5f));   // every key node votes
    CHECK_FALSE(placed_threshold_scale(m, VoteAgreement{}, 2.5f));                           // nothing measured
    Model rare = m;
    rare.key_nodes[3].weight = 0.6f;   // not expected on every object: never missing
    CHECK_FALSE(placed_threshold_scale(rare, all_agreeing(24, {24, 24, 24, 0}), 2.5f));
    Model weighted = m;
    weighted.key_nodes[0].weight = 0.3f;   // the weight's share, not the count's: 1 of 3.3
    const std::optional<double> w = placed_threshold_scale(weighted, all_agreeing(24, {24, 24, 24, 0}), 2.5f);
    REQUIRE(w);
    CHECK(*w == doctest::Approx(1 - 1 / 3.3));

    // The detector's threshold scaled, as dmdetect does after a placed run: key node 4 is silent on
    // the cut layout, so 2.5 becomes 1.875; the image-absent threshold scales with it.
    Detector d;
    Model cut_model = m;
    cut_model.image_absent_threshold = 2.f;
    d.add_model(cut_model, "marker");
    DetectOptions opt;
    opt.measure_agreement = true;
    const MemoryGraph cut = objects_graph(24, test::Layout::Cut);
    CHECK(d.detect(cut, opt).size() == 24);
    const std::optional<double> scale = placed_threshold_scale(d.model(0), d.last_agreements().at(0), d.last_thresholds().at(0));
    REQUIRE(scale);
    d.scale_threshold(0, *scale);
    CHECK(d.model(0).threshold == doctest::Approx(1.875f));
    CHECK(d.model(0).image_absent_threshold == doctest::Approx(1.5f));
    CHECK(d.detect(cut, opt).size() == 24);
    CHECK(d.last_thresholds().at(0) == doctest::Approx(1.875f));
    CHECK_THROWS_AS(d.scale_threshold(0, 0), InputError);
    CHECK_THROWS_AS(d.scale_threshold(0, 1.5), InputError);
    CHECK_THROWS_AS(d.scale_threshold(0, std::nan("")), InputError);
    CHECK(d.model(0).threshold == doctest::Approx(1.875f));   // unchanged by a refused factor
    d.scale_threshold(0, *scale);   // of the trained threshold, never compounding (reviewer 85: 13.63 → 10.90 → 7.63 in a batch)
    CHECK(d.model(0).threshold == doctest::Approx(1.875f));
    // A dump's placement and scaling undone for the next dump
    std::vector<KeyNode> moved = d.model(0).key_nodes;
    moved[3].offset += 8;
    d.set_key_nodes(0, moved);
    d.reset_to_trained();
    CHECK(d.model(0).key_nodes[3].offset == m.key_nodes[3].offset);
    CHECK(d.model(0).threshold == 2.5f);
    CHECK(d.model(0).image_absent_threshold == 2.f);
    // Never down to one key node's vote: the threshold the placed run used (the trained one, or the
    // one for dumps without the kernel image), 1.5 × 3/4 is above it, 1.5 × 1/2 is not
    CHECK(placed_threshold_scale(m, all_agreeing(24, {24, 24, 24, 0}), 1.5f));
    CHECK_FALSE(placed_threshold_scale(m, all_agreeing(24, {0, 24, 24, 0}), 1.5f));
    CHECK(placed_threshold_scale(m, all_agreeing(24, {0, 24, 24, 0}), 2.5f));
}

TEST_CASE("fit: a per-build-keys model votes on its voting rows, and on the agreement rows only when it finds nothing") {
    // fit.hpp Rows: no vote check judges such a model, so its network runs on the voting rows alone;
    // when it finds nothing, the agreement rows are run too, for the diagnosis of split votes.
    Model m = test::marker_model("thing");
    m.provenance.training_config = "[keys]\ncount = 60\nmin_frequency = 0.5\nfrequency = per_build\n";
    REQUIRE(keys_per_build(m));
    CHECK_FALSE(keys_per_build(test::marker_model("thing")));
    Detector d;
    d.add_model(m, "per-build");
    DetectOptions opt;
    opt.measure_agreement = true;
    const MemoryGraph same = objects_graph(24, test::Layout::Trained);
    CHECK(d.detect(same, opt).size() == 24);
    CHECK(d.last_timings().at(0).network_rows == voting_rows(same, m, m.threshold).size());
    CHECK(d.last_agreements().at(0).objects == 24);
    const MemoryGraph moved = objects_graph(24, test::Layout::Moved);
    CHECK(d.detect(moved, opt).empty());
    // the rerun runs the network on the agreement rows it has not run on (they hold the voting rows)
    CHECK(voting_rows(moved, m, m.threshold).size() > 0);
    CHECK(d.last_timings().at(0).network_rows == agreement_rows(moved, m, m.threshold).size());
    const ModelFit split = assess_fit(m, "per-build", std::nullopt, d.last_agreements().at(0),
                                      ScoreReach{m.threshold, d.last_best_scores().at(0)});
    CHECK(split.reason.find("24 candidate objects had the threshold's worth of votes only split between nearby bases") !=
          std::string::npos);
}

TEST_CASE("fit: agreement rows add the competing voters that the voting rows leave out") {
    const MemoryGraph moved = objects_graph(8, test::Layout::Moved);
    const Model m = test::marker_model("thing");
    const auto rows = agreement_rows(moved, m, 3.5f);
    CHECK(rows.size() == 8 * 4);   // the four key-node segments of every object
    const auto v = voting_rows(moved, m, 3.5f);
    CHECK(std::includes(rows.begin(), rows.end(), v.begin(), v.end()));
    CHECK(agreement_rows(moved, m, 1e9f).empty());
    CHECK(std::is_sorted(rows.begin(), rows.end()));
    CHECK(std::adjacent_find(rows.begin(), rows.end()) == rows.end());
    const MemoryGraph same = objects_graph(8, test::Layout::Trained);
    const auto vs = voting_rows(same, m, 3.5f), a = agreement_rows(same, m, 3.5f);
    CHECK(std::includes(a.begin(), a.end(), vs.begin(), vs.end()));
}

TEST_CASE("fit: the sample of the address space the agreement is measured on") {
    const Model m = test::marker_model("thing");   // R = 392: margin 1176, chunk 64 KiB
    CHECK(agreement_sample(m, 100, 100).chunk == 0);   // within the budget: no sample
    const AgreementSample none = agreement_sample(m, 400, 100);
    CHECK(none.share == doctest::Approx(0.25));
    CHECK(none.margin == 3 * 392);
    CHECK(none.chunk == 65536);
    Model wide = m;
    wide.key_nodes.push_back({5000, 8, 1.f});   // R = 5000: margin 15000, chunk ≥ 8 margins
    CHECK(agreement_sample(wide, 400, 100).chunk == 131072);
    // kept regions are a fixed draw near the share; a row runs wherever a counted base may be near
    int kept = 0, runs_only = 0;
    for (uint64_t r = 0; r < 4000; ++r) {
        const uint64_t base = test::K64 + r * none.chunk;
        kept += none.counts(base);
        CHECK(none.counts(base) == none.counts(base + none.chunk - 1));
        if (none.counts(base)) CHECK((none.runs(base - none.margin) && none.runs(base + none.chunk - 1 + none.margin)));
        runs_only += none.runs(base - 1) && !none.counts(base - 1);
    }
    CHECK(kept > 850);
    CHECK(kept < 1150);
    CHECK(runs_only > 0);   // the margin before a kept region
}

TEST_CASE("fit: past the budget the agreement is measured on a sample, the detections unchanged") {
    // 2,000 objects over 1 MiB (16 regions of 64 KiB) and a model whose bases are aligned to 1 KiB: every
    // other object has an aligned base and is detected on the voting rows; the others' rows are
    // agreement rows only (any base), as on a crafted dump whose nodes carry key nodes at unaligned
    // bases. Then the same objects moved: their votes split, nothing is detected.
    Model m = test::marker_model("thing");
    m.base_alignment = 1024;
    Detector d;
    d.add_model(m, "marker");
    for (const test::Layout layout : {test::Layout::Trained, test::Layout::Moved}) {
        INFO("layout " << int(layout));
        std::vector<uint64_t> bases;
        const MemoryGraph g = objects_graph(2000, layout, &bases);
        DetectOptions opt;
        opt.measure_agreement = true;
        const std::vector<Detection> whole = d.detect(g, opt);
        const VoteAgreement all = d.last_agreements().at(0);
        const size_t all_rows = d.last_timings().at(0).network_rows;
        CHECK(all.share == 1);
        REQUIRE(all.objects >= 1900);
        CHECK(whole.size() == (layout == test::Layout::Trained ? 1000u : 0u));
        const size_t voting = voting_rows(g, m, m.threshold).size();
        const uint64_t extra = agreement_rows(g, m, m.threshold).size() - voting;
        opt.agreement_rows_budget = extra / 3;
        CHECK(d.detect(g, opt) == whole);   // the voting rows always run: the same detections, element by element
        const VoteAgreement part = d.last_agreements().at(0);
        const double sampled_work = double(d.last_timings().at(0).work);
        const std::optional<float> best = d.last_best_scores().at(0);
        const size_t part_rows = d.last_timings().at(0).network_rows;
        CHECK(d.detect(g) == whole);   // and without measuring
        const AgreementSample s = agreement_sample(m, extra, extra / 3);
        CHECK(part.share == doctest::Approx(s.share));
        CHECK(part.share < 1);
        CHECK(part_rows >= voting);
        CHECK(part_rows < voting + (all_rows - voting) / 2);   // Trained 4,000 + 795 of 4,000; Moved 500 + 1,606 of 7,500
        // counted: the objects whose kept base lies in a kept region, with the whole run's votes
        uint64_t expected = 0;
        for (uint64_t b : bases) expected += s.counts(b);
        CHECK(part.objects > 0);
        CHECK(part.objects < all.objects);
        CHECK(std::abs(double(part.objects) - double(expected)) <= 2);   // a kept base may sit a few bytes off the object's
        CHECK(part.fraction() == doctest::Approx(all.fraction()).epsilon(0.05));
        const ModelFit f = assess_fit(m, "marker", std::nullopt, part, ScoreReach{m.threshold, best});
        CHECK(f.fits == assess_fit(m, "marker", std::nullopt, all).fits);   // the sample's verdict is the whole run's
        CHECK(f.fits == (layout == test::Layout::Trained));
        if (!f.fits) CHECK(f.reason.find(" in the sampled ") != std::string::npos);
        // the report says it: JSON "sampled", the table's "in the sampled N% of the address space"
        const std::string json = format_fit_report(std::nullopt, std::vector<ModelFit>{f}, DetectionFormat::Json);
        CHECK(json.find("\"sampled\":0.") != std::string::npos);
        const std::string table = format_fit_report(std::nullopt, std::vector<ModelFit>{f}, DetectionFormat::Table);
        CHECK(table.find(" in the sampled ") != std::string::npos);
        CHECK(format_fit_report(std::nullopt, std::vector<ModelFit>{assess_fit(m, "marker", std::nullopt, all)},
                                DetectionFormat::Json)
                  .find("sampled") == std::string::npos);
        // the sampled run refused (DetectOptions::network_work between the voting rows' work and its):
        // the votes are the voting rows' alone, not called a sample (helper 76)
        const double pages = double(counted_pages(g));
        (void)d.detect(g, DetectOptions{});
        const double voting_work = double(d.last_timings().at(0).work);
        REQUIRE(sampled_work > voting_work + 2);
        opt.network_work = (voting_work + sampled_work) / 2 / pages;
        CHECK(d.detect(g, opt) == whole);
        CHECK(d.last_timings().at(0).capped);
        CHECK(d.last_unmeasured().at(0).find("network work bound") != std::string::npos);
        CHECK(d.last_agreements().at(0).share == 1);
        CHECK(d.last_agreements().at(0).objects <= part.objects + (layout == test::Layout::Trained ? 1000u : 0u));
    }
}

TEST_CASE("fit: a per-build-keys model that finds nothing is diagnosed on the sample past the budget") {
    // fit.hpp Rows and Sample on the found-nothing path (helper 76): the rerun's agreement rows are
    // sampled like a single model's; refused, the sample is dropped with them
    Model m = test::marker_model("thing");
    m.provenance.training_config = "[keys]\ncount = 60\nmin_frequency = 0.5\nfrequency = per_build\n";
    m.base_alignment = 1024;   // as above: most carriers are agreement rows only
    REQUIRE(keys_per_build(m));
    Detector d;
    d.add_model(m, "per-build");
    const MemoryGraph moved = objects_graph(2000, test::Layout::Moved);
    DetectOptions opt;
    opt.measure_agreement = true;
    REQUIRE(d.detect(moved, opt).empty());
    const VoteAgreement all = d.last_agreements().at(0);
    const size_t all_rows = d.last_timings().at(0).network_rows;
    const size_t voting = voting_rows(moved, m, m.threshold).size();
    const uint64_t extra = agreement_rows(moved, m, m.threshold).size() - voting;
    REQUIRE(all_rows == voting + extra);
    CHECK(all.share == 1);
    REQUIRE(all.objects >= 1900);
    opt.agreement_rows_budget = extra / 3;
    CHECK(d.detect(moved, opt).empty());
    const VoteAgreement part = d.last_agreements().at(0);
    CHECK(part.share == doctest::Approx(agreement_sample(m, extra, extra / 3).share));
    CHECK(part.share < 1);
    CHECK(d.last_timings().at(0).network_rows < voting + extra / 2);
    CHECK(part.objects > 0);
    CHECK(part.objects < all.objects);
    CHECK(part.fraction() == doctest::Approx(all.fraction()).epsilon(0.05));
    const double sampled_work = double(d.last_timings().at(0).work);
    // the rerun past the network work bound: the voting rows' votes alone, unsampled
    (void)d.detect(moved, DetectOptions{});
    const double voting_work = double(d.last_timings().at(0).work);
    REQUIRE(sampled_work > voting_work + 2);
    const double pages = double(counted_pages(moved));
    opt.network_work = (voting_work + sampled_work) / 2 / pages;
    CHECK(d.detect(moved, opt).empty());
    CHECK(d.last_timings().at(0).capped);
    CHECK(d.last_unmeasured().at(0).find("network work bound") != std::string::npos);
    CHECK(d.last_agreements().at(0).share == 1);
    CHECK(d.last_timings().at(0).network_rows == voting);
    // the voting run's work counts against the rerun's: a bound the rerun alone is within refuses it
    // (reviewer 78: nothing charged passed every test)
    REQUIRE(sampled_work - voting_work < sampled_work - voting_work / 2);
    opt.network_work = (sampled_work - voting_work / 2) / pages;
    CHECK(d.detect(moved, opt).empty());
    CHECK(d.last_timings().at(0).capped);
    CHECK(d.last_unmeasured().at(0).find(" done before it)") != std::string::npos);
    opt.network_work = (sampled_work + 0.5) / pages;   // the whole of it: measured as before
    CHECK(d.detect(moved, opt).empty());
    CHECK(d.last_unmeasured().at(0).empty());
    CHECK(d.last_agreements().at(0).share == doctest::Approx(part.share));
}

TEST_CASE("fit: the model's builds against the dump's banner") {
    Model m = test::marker_model("task_struct");
    m.provenance.kernel_build = "linux-image-6.1.0-47-amd64-unsigned 6.1.170-3";   // format 2
    REQUIRE(model_builds(m).size() == 1);
    CHECK(model_builds(m)[0].release == "6.1.0-47-amd64");
    CHECK(match_build(m, banner("6.1.0-47-amd64")) == BuildMatch::SameBuild);
    CHECK(match_build(m, banner("6.1.0-57-rt-amd64", "#1 SMP PREEMPT_RT Debian")) == BuildMatch::SameVersion);
    CHECK(match_build(m, banner("6.1.0-47-cloud-amd64")) == BuildMatch::SameVersion);
    CHECK(match_build(m, banner("6.12.11+deb13-amd64")) == BuildMatch::OtherVersion);
    CHECK(match_build(m, banner("5.10.0-46-amd64")) == BuildMatch::OtherVersion);
    CHECK(match_build(m, std::nullopt) == BuildMatch::Unknown);
    m.provenance.kernel_build = "Linux 6.1 somewhere";
    CHECK(model_builds(m).empty());
    CHECK(match_build(m, banner("6.1.0-47-amd64")) == BuildMatch::Unknown);

    // Format 3: banners tell two builds of one release apart.
    const FoundBanner b61 = banner("6.1.0-47-amd64");
    m.provenance.kernel_builds = {{"6.1.0-47-amd64", b61.banner.text + " (other date)"}, {"5.10.0-46-amd64", ""}};
    CHECK(match_build(m, b61) == BuildMatch::SameVersion);
    m.provenance.kernel_builds.push_back({"6.1.0-47-amd64", b61.banner.text});
    CHECK(match_build(m, b61) == BuildMatch::SameBuild);
    CHECK(match_build(m, banner("5.10.0-46-amd64")) == BuildMatch::SameBuild);

    const ModelFit other = assess_fit(m, "m.cereal", banner("6.12.11+deb13-amd64"), VoteAgreement{50, 50, {}});
    CHECK_FALSE(other.fits);
    CHECK(other.reason == "the dump's kernel 6.12.11+deb13-amd64 is another version than the model was trained on "
                          "(6.1.0-47-amd64, 5.10.0-46-amd64)");
    const ModelFit rt = assess_fit(m, "m.cereal", banner("6.1.0-57-rt-amd64"), VoteAgreement{50, 50, {}});
    CHECK(rt.fits);   // another build of a trained version: said, judged by agreement
    CHECK(rt.build == BuildMatch::SameVersion);
    CHECK(rt.reason.find("another build") != std::string::npos);
    CHECK_FALSE(assess_fit(m, "m.cereal", banner("6.1.0-57-rt-amd64"), VoteAgreement{50, 3, {}}).fits);
}

TEST_CASE("fit: a model of per-build key nodes is judged by build alone") {
    Model m = test::marker_model("task_struct");
    m.provenance.kernel_builds = {{"5.10.0-46-amd64", ""}, {"6.1.0-47-amd64", ""}};
    m.provenance.validation_objects = 100;
    m.provenance.validation_agreeing = 90;
    const VoteAgreement none{50, 0, std::vector<uint64_t>(m.key_nodes.size(), 0)};   // no key node agrees
    CHECK_FALSE(assess_fit(m, "m.cereal", banner("5.10.0-46-amd64"), none).fits);   // the vote checks apply
    m.provenance.training_config = "[keys]\ncount = 60\nmin_frequency = 0.5\nfrequency = per_build\n";
    const ModelFit same = assess_fit(m, "m.cereal", banner("5.10.0-46-amd64"), none);
    CHECK(same.fits);
    CHECK(same.reason.empty());
    // The fit line shows its 0% agreement as not judged (newcomer 18 read "yes … 0 of 50" as a pass).
    CHECK(same.not_judged == "key nodes chosen per build");
    CHECK(format_fit_report(banner("5.10.0-46-amd64"), std::span(&same, 1), DetectionFormat::Table)
              .find(": yes by build, same-build, votes not judged (key nodes chosen per build): 0 of 50 candidate objects agree (0.0%") != std::string::npos);
    // and the JSON record says it too (newcomer 21: "fits":true,"checked":true beside 0 of 150 agreeing)
    CHECK(format_fit_report(banner("5.10.0-46-amd64"), std::span(&same, 1), DetectionFormat::Json)
              .find("\"checked\":true,\"not_judged\":\"key nodes chosen per build\"") != std::string::npos);
    const ModelFit version = assess_fit(m, "m.cereal", banner("6.1.0-57-rt-amd64"), none);
    CHECK(version.fits);
    CHECK(version.reason.find("layouts of 2 builds") != std::string::npos);
    CHECK(version.reason.find("judged by build (and by its objects' fields when they are read)") != std::string::npos);
    CHECK_FALSE(assess_fit(m, "m.cereal", banner("6.12.11+deb13-amd64"), none).fits);
}

// Fields: read with the dump's own types, objects off their base have bad values (the 6.12 mm_struct
// model on 6.12.90, per-build key nodes, "fits" by build: every mm_struct "exe: f_path.dentry unreadable").
TEST_CASE("fit: detections whose fields read bad values mean objects off their base") {
    Model m = test::marker_model("mm_struct");
    m.provenance.kernel_builds = {{"6.12.118+deb13-amd64", ""}};
    m.provenance.training_config = "[keys]\ncount = 60\nmin_frequency = 0.5\nfrequency = per_build\n";
    auto detections = [](size_t n, size_t bad, const std::string& reason) {
        std::vector<Detection> out;
        for (size_t i = 0; i < n; ++i) {
            Detection d{"mm_struct", 0x1000 * (i + 1), std::nullopt, 10.f, 10, {{"mappings", "7", "7"}}};
            if (i < bad) {   // each "key: why" of the reason a null field, as the interpreter writes them
                for (size_t at = 0; at < reason.size();) {
                    const size_t end = std::min(reason.find(',', at), reason.size());
                    const std::string entry = reason.substr(at, end - at);
                    d.fields.push_back({entry.substr(0, entry.find(':')), "null", "", !entry.ends_with("not in this kernel's BTF")});
                    at = end + 1;
                }
                d.fields.push_back({"bad", "[]", reason});
            }
            out.push_back(d);
        }
        out.push_back({"cred", 0x900000, std::nullopt, 1.f, 1, {{"uid", "null", "", true}, {"bad", "[]", "uid: out of range"}}});   // another type's
        out.push_back({"mm_struct", 0x800000, std::nullopt, 1.f, 1, {}});   // not read (--addresses-only)
        return out;
    };
    const VoteAgreement none{24, 0, {}};
    ModelFit off = assess_fit(m, "m.cereal", banner("6.12.90+deb13-amd64"), none);
    REQUIRE(off.fits);   // by build alone
    judge_fields(off, detections(24, 24, "exe: f_path.dentry unreadable"));
    CHECK_FALSE(off.fits);
    CHECK(off.misfit_by_fields);
    CHECK_FALSE(off.checked);
    CHECK(off.fields_read == 24);
    CHECK(off.fields_bad == 24);
    CHECK(off.reason.find("; 24 of the 24 detections read with the dump's own types have a bad field (exe: f_path.dentry "
                          "unreadable): objects reported off their base, not objects of the type, or an edited object that many of them point to") != std::string::npos);
    CHECK(format_fit_report(banner("6.12.90+deb13-amd64"), std::span(&off, 1), DetectionFormat::Json)
              .find(",\"fields_read\":24,\"fields_bad\":24}") != std::string::npos);
    const std::string table = format_fit_report(banner("6.12.90+deb13-amd64"), std::span(&off, 1), DetectionFormat::Table);
    CHECK_MESSAGE(table.find("# fit mm_struct: NO, same-version, votes not judged (key nodes chosen per build): 0 of 24 candidate "
                             "objects agree (0.0%, validation 99.0%), a bad field in 24 of 24 read: ") != std::string::npos, table);
    // at most half bad (exiting tasks read bad values too): no change
    ModelFit half = assess_fit(m, "m.cereal", banner("6.12.90+deb13-amd64"), none);
    judge_fields(half, detections(24, 12, "exe: f_path.dentry unreadable"));
    CHECK(half.fits);
    CHECK(half.fields_bad == 12);
    CHECK(half.reason.find("bad field") == std::string::npos);
    // members the kernel's BTF lacks are the build's, not misreadings (both forms of the reason)
    ModelFit btf = assess_fit(m, "m.cereal", banner("6.12.90+deb13-amd64"), none);
    judge_fields(btf, detections(24, 24, "exe: not in this kernel's BTF,name: dentry.d_name not in this kernel's BTF"));
    CHECK(btf.fits);
    CHECK(btf.fields_bad == 0);
    ModelFit mixed = assess_fit(m, "m.cereal", banner("6.12.90+deb13-amd64"), none);
    judge_fields(mixed, detections(24, 24, "exe: not in this kernel's BTF,mappings: out of range"));
    CHECK_FALSE(mixed.fits);
    CHECK(mixed.reason.find("have a bad field (mappings: out of range)") != std::string::npos);
    // read through one detected object (a parent task the model found: helper 61), misreads count
    // once; through an object no model found (off-base mm_structs all reading &init_user_ns as their
    // exe_file, the 6.12.90 case), once per detection
    auto through = [&](size_t n, uint64_t shared, bool found) {
        std::vector<Detection> out;
        for (size_t i = 0; i < n; ++i)
            out.push_back({"mm_struct", 0x1000 * (i + 1), std::nullopt, 10.f, 10,
                           {{"exe", "null", "", true, shared}, {"bad", "[]", "exe: f_path.dentry unreadable"}}});
        if (found) out.push_back({"file", shared, std::nullopt, 3.f, 3, {{"path", "\"/bin/x\"", "/bin/x"}}});
        return out;
    };
    ModelFit once = assess_fit(m, "m.cereal", banner("6.12.90+deb13-amd64"), none);
    judge_fields(once, through(24, 0xabc000, true));
    CHECK(once.fits);
    CHECK(once.fields_read == 24);
    CHECK(once.fields_bad == 1);
    ModelFit each = assess_fit(m, "m.cereal", banner("6.12.90+deb13-amd64"), none);
    judge_fields(each, through(24, 0xabc000, false));
    CHECK_FALSE(each.fits);
    CHECK(each.fields_bad == 24);
    ModelFit suffix = assess_fit(m, "m.cereal", banner("6.12.90+deb13-amd64"), none);   // the example by key, whole
    judge_fields(suffix, detections(24, 24, "euid: not in this kernel's BTF,uid: out of range"));
    CHECK(suffix.reason.find("have a bad field (uid: out of range)") != std::string::npos);
    // fewer than kMinAgreementObjects read: not judged
    ModelFit few = assess_fit(m, "m.cereal", banner("6.12.90+deb13-amd64"), none);
    judge_fields(few, detections(kMinAgreementObjects - 1, kMinAgreementObjects - 1, "exe: f_path.dentry unreadable"));
    CHECK(few.fits);
    // a dump lacking memory the kernel maps: said, not a misfit, not checked
    ModelFit lacking = assess_fit(m, "m.cereal", banner("6.12.90+deb13-amd64"), none, std::nullopt, MemoryLack::Pages);
    judge_fields(lacking, detections(24, 24, "exe: f_path.dentry unreadable"), MemoryLack::Pages);
    CHECK(lacking.fits);
    CHECK_FALSE(lacking.misfit_by_fields);
    CHECK_FALSE(lacking.checked);
    CHECK(lacking.reason.find("the memory the dump lacks, or objects reported off their base (not checked)") != std::string::npos);
    // Where the votes judged (the model's own build, or key nodes not per build), the count is
    // reported, not a verdict: one edited parent's tgid spoils every child's ppid (helper 60: 404 of
    // 487 tasks, the same-build model with 487 of 487 votes agreeing)
    ModelFit own = assess_fit(m, "m.cereal", banner("6.12.118+deb13-amd64"), none);
    REQUIRE(own.checked);
    judge_fields(own, detections(24, 24, "ppid: -1 out of range"));
    CHECK(own.fits);
    CHECK(own.checked);
    CHECK(own.fields_bad == 24);
    CHECK(own.reason.find("24 of the 24 detections read with the dump's own types have a bad field (ppid: -1 out of range): "
                          "values read through other objects, or edited ones; the key-node votes judge this model's fit") !=
          std::string::npos);
    Model voted = m;
    voted.provenance.training_config.clear();   // key nodes by overall frequency: the vote checks apply
    ModelFit judged = assess_fit(voted, "m.cereal", banner("6.12.90+deb13-amd64"), VoteAgreement{24, 24, {}});
    judge_fields(judged, detections(24, 24, "ppid: -1 out of range"));
    CHECK(judged.fits);
    CHECK_FALSE(judged.misfit_by_fields);
    ModelFit other = assess_fit(voted, "m.cereal", banner("5.10.0-46-amd64"), VoteAgreement{24, 24, {}});   // a misfit by build
    judge_fields(other, detections(24, 24, "ppid: -1 out of range"));
    CHECK_FALSE(other.fits);
    CHECK_FALSE(other.misfit_by_fields);
    CHECK(other.reason.ends_with("; 24 of the 24 detections read with the dump's own types have a bad field (ppid: -1 out of range)"));
    // nothing read: the record as before
    ModelFit unread = assess_fit(m, "m.cereal", banner("6.12.90+deb13-amd64"), none);
    judge_fields(unread, {});
    CHECK(format_fit_report(banner("6.12.90+deb13-amd64"), std::span(&unread, 1), DetectionFormat::Json).find("fields_read") ==
          std::string::npos);
}

TEST_CASE("fit: one model per type, the one whose builds match the dump best") {
    std::vector<Model> models;
    for (const char* r : {"5.10.0-46-amd64", "6.1.0-47-amd64", "6.12.11+deb13-amd64"}) {
        models.push_back(test::marker_model("task_struct"));
        models.back().provenance.kernel_builds = {{r, ""}};
    }
    models.push_back(test::marker_model("cred"));   // no builds
    CHECK(pick_models(models, banner("6.1.0-47-amd64")) == std::vector<size_t>{1, 3});
    CHECK(pick_models(models, banner("6.12.9+deb13-cloud-amd64")) == std::vector<size_t>{2, 3});
    CHECK(pick_models(models, banner("4.19.0-27-amd64")) == std::vector<size_t>{0, 3});   // nothing better: the first
    CHECK(pick_models(models, std::nullopt) == std::vector<size_t>{0, 3});
    // A model of several builds beside them (data/models/multibuild): on a build both were trained
    // on, the one made for that build; on another build of the version, the one that saw more builds
    // of the dump's flavour, then fewer of other flavours; elsewhere the one that saw more builds.
    models.push_back(test::marker_model("task_struct"));
    models.back().provenance.kernel_builds = {{"5.10.0-46-amd64", ""}, {"6.1.0-47-amd64", ""}, {"6.1.0-57-rt-amd64", ""}};
    CHECK(pick_models(models, banner("6.1.0-47-amd64")) == std::vector<size_t>{1, 3});
    CHECK(pick_models(models, banner("6.1.0-57-rt-amd64")) == std::vector<size_t>{3, 4});
    CHECK(pick_models(models, banner("6.1.0-60-amd64")) == std::vector<size_t>{1, 3});      // 1 generic 6.1 build each; 4 saw rt too
    CHECK(pick_models(models, banner("6.1.0-60-rt-amd64")) == std::vector<size_t>{3, 4});   // 4 saw the flavour
    models[4].provenance.kernel_builds.push_back({"6.1.0-57-amd64", ""});   // now 2 generic 6.1 builds: more of the flavour
    CHECK(pick_models(models, banner("6.1.0-60-amd64")) == std::vector<size_t>{3, 4});
    models[4].provenance.kernel_builds.pop_back();
    // One part of the banner edited to say rt (helper 61: PREEMPT_DYNAMIC → "PREEMPT_RT DYNA" moved a
    // generic dump to the rt model), or the release alone (helper 60): no flavour preferred, so more
    // builds decide, as for a build of no known flavour.
    CHECK(pick_models(models, banner("6.1.0-60-amd64")) == std::vector<size_t>{1, 3});
    CHECK(pick_models(models, banner("6.1.0-60-amd64", "#1 SMP PREEMPT_RT DYNA Debian")) == std::vector<size_t>{3, 4});
    CHECK(pick_models(models, banner("6.1.0-60-rt-amd64", "#1 SMP PREEMPT_DYNAMIC Debian")) == std::vector<size_t>{3, 4});
    std::vector<std::string> said;
    pick_models(models, banner("6.1.0-60-rt-amd64", "#1 SMP PREEMPT_DYNAMIC Debian"), &said);
    REQUIRE_FALSE(said.empty());
    CHECK(said.front() == "the banner's release 6.1.0-60-rt-amd64 and its version \"#1 SMP PREEMPT_DYNAMIC Debian\" disagree on "
                          "PREEMPT_RT (an edited banner?): no model is preferred for a flavour");
    CHECK(pick_models(models, banner("6.12.9+deb13-cloud-amd64")) == std::vector<size_t>{2, 3});
    CHECK(pick_models(models, banner("4.19.0-27-amd64")) == std::vector<size_t>{3, 4});     // other version: more builds
    // A 32-bit model (issue #14): picked for a dump of 4-byte words whatever the builds, never for
    // one of 8-byte words; a type with models of the other width only is left out, with a note.
    models.push_back(test::marker_model("task_struct"));
    models.back().graph.word_size = 4;
    models.back().provenance.kernel_builds = {{"6.1.0-57-686-pae", ""}};
    CHECK(pick_models(models, banner("6.1.0-57-rt-amd64"), nullptr, {}, 8) == std::vector<size_t>{3, 4});
    CHECK(pick_models(models, banner("6.1.0-47-amd64"), nullptr, {}, 8) == std::vector<size_t>{1, 3});
    std::vector<std::string> notes;
    CHECK(pick_models(models, banner("6.1.0-47-amd64"), &notes, {}, 4) == std::vector<size_t>{5});
    REQUIRE(notes.size() == 1);
    CHECK(notes[0] == "cred: no model for this dump's 4-byte words (32-bit or PAE paging); its models are for 8-byte words");
    CHECK(pick_models(models, banner("6.1.0-57-686-pae"), nullptr, {}, 4) == std::vector<size_t>{5});
}

// Issue #11: a dump without the kernel image lost its banner with it; a model with a threshold for
// such dumps is picked over one of more builds, never over a better build match.
TEST_CASE("fit: on a dump lacking the kernel image, the model with a threshold for such dumps is picked") {
    std::vector<Model> models;
    models.push_back(test::marker_model("task_struct"));
    models.back().provenance.kernel_builds = {{"6.1.0-47-amd64", ""}};
    models.back().image_absent_threshold = models.back().threshold / 2;
    models.push_back(test::marker_model("task_struct"));
    models.back().provenance.kernel_builds = {{"5.10.0-46-amd64", ""}, {"6.1.0-47-amd64", ""}, {"6.12.11+deb13-amd64", ""}};
    CHECK(pick_models(models, std::nullopt) == std::vector<size_t>{1});   // more builds
    std::vector<std::string> notes;
    CHECK(pick_models(models, std::nullopt, &notes, std::vector<std::string>{"a.cereal", "b.cereal"}, 8, true) ==
          std::vector<size_t>{0});
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].find("the dump lacks the kernel image, and only the chosen model has a threshold for such dumps") !=
          std::string::npos);
    CHECK(pick_models(models, banner("6.12.9+deb13-amd64"), nullptr, {}, 8, true) == std::vector<size_t>{1});   // build first
    models.back().image_absent_threshold = models.back().threshold / 2;   // both have one: more builds again
    CHECK(pick_models(models, std::nullopt, nullptr, {}, 8, true) == std::vector<size_t>{1});
}

// The tester's B5: with two models of one type, dmdetect said nothing of the one it set aside.
TEST_CASE("fit: pick_models says which model of a type it chose, which it set aside, and why") {
    std::vector<Model> models;
    for (const char* r : {"5.10.0-46-amd64", "6.1.0-47-amd64"}) {
        models.push_back(test::marker_model("task_struct"));
        models.back().provenance.kernel_builds = {{r, ""}};
    }
    models.push_back(test::marker_model("cred"));   // alone of its type: no note
    models.push_back(test::marker_model("task_struct"));
    models.back().provenance.kernel_builds = {{"5.10.0-46-amd64", ""}, {"6.1.0-47-amd64", ""}, {"6.1.0-57-rt-amd64", ""}};
    const std::vector<std::string> paths = {"a.cereal", "b.cereal", "cred.cereal", "multibuild/task_struct.cereal"};
    // The one note (task_struct's) of picking for `dump`, after checking the models picked.
    auto note = [&](const std::optional<FoundBanner>& dump, const std::vector<size_t>& picked) {
        std::vector<std::string> notes;
        CHECK(pick_models(models, dump, &notes, paths) == picked);
        REQUIRE(notes.size() == 1);
        return notes[0];
    };
    CHECK(note(banner("6.1.0-47-amd64"), {1, 2}) ==
          "task_struct: chose b.cereal (same-build, 1 build); set aside multibuild/task_struct.cereal (same-build, 3 builds): "
          "both were trained on the dump's build; the chosen model was made for fewer builds (1 against 3); set aside "
          "a.cereal (other-version, 1 build): the chosen model's builds match the dump's kernel 6.1.0-47-amd64 better");
    CHECK(note(banner("6.1.0-60-amd64"), {1, 2}) ==
          "task_struct: chose b.cereal (same-version, 1 build); set aside multibuild/task_struct.cereal (same-version, 3 "
          "builds): neither was trained on the dump's build; both saw 1 of its version and flavour amd64, the chosen model "
          "fewer of other flavours (0 against 1: a model made for this flavour); set aside a.cereal (other-version, 1 "
          "build): the chosen model's builds match the dump's kernel 6.1.0-60-amd64 better");
    CHECK(note(banner("6.1.0-60-rt-amd64"), {2, 3}).find("set aside b.cereal (same-version, 1 build): neither was trained on the "
                                                         "dump's build; the chosen model saw more builds of its version and "
                                                         "flavour rt-amd64 (1 against 0)") != std::string::npos);
    CHECK(note(std::nullopt, {2, 3}) ==
          "task_struct: chose multibuild/task_struct.cereal (unknown, 3 builds); set aside a.cereal (unknown, 1 build), "
          "b.cereal (unknown, 1 build): the dump has no kernel banner to match them against; the chosen model was trained "
          "on more builds (3 against 1), so it saw more layouts");   // one reason, said once (newcomer 82)
    models.erase(models.begin() + 3);
    CHECK(note(banner("4.19.0-27-amd64"), {0, 2}) ==
          "task_struct: chose a.cereal (other-version, 1 build); set aside b.cereal (other-version, 1 build): they match "
          "the dump alike; the chosen model comes first in path order");
}

TEST_CASE("fit: kernel and fit records in the output, skipped when detections are read back") {
    FoundBanner b = banner("6.1.0-47-amd64", "#1 SMP \"quoted\" \\ build");
    Model m = test::marker_model("task_struct");
    m.provenance.kernel_builds = {{"5.10.0-46-amd64", ""}};
    const std::vector<ModelFit> fits = {assess_fit(m, "models/task_struct.cereal", b, VoteAgreement{10, 1, {}})};
    const std::vector<Detection> det = {{"task_struct", 0xffff888001000000ull, 0x1000000, 4.f, 4}};
    const std::string json = format_fit_report(b, fits, DetectionFormat::Json) + format_detections(det, DetectionFormat::Json);
    CHECK(json.rfind("{\"record\":\"kernel\",\"release\":\"6.1.0-47-amd64\",\"banner\":\"Linux version", 0) == 0);
    CHECK(json.find("#1 SMP \\\"quoted\\\" \\\\ build\",\"found\":\"kernel image\",\"vaddr\":\"0xffffffff82000100\"") != std::string::npos);
    CHECK(json.find("{\"record\":\"fit\",\"type\":\"task_struct\",\"model\":\"models/task_struct.cereal\",\"fits\":false,"
                    "\"verdict\":\"no\",\"build\":\"other-version\",\"agreement\":0.1000,\"objects\":10,\"agreeing\":1,"
                    "\"validation_agreement\":0.9900,\"missing_key_nodes\":[],\"reason\":\"the dump's kernel") !=
          std::string::npos);
    CHECK(parse_detections({reinterpret_cast<const uint8_t*>(json.data()), json.size()}) == det);
    // Neither refuted nor checked (no banner, no candidate object): "fits" null, as the table's
    // "unknown" (newcomer 82: "fits":true beside "checked":false on a crafted dump)
    const std::vector<ModelFit> unchecked = {assess_fit(m, "models/task_struct.cereal", std::nullopt, VoteAgreement{0, 0, {}})};
    CHECK(unchecked[0].fits);
    CHECK_FALSE(unchecked[0].checked);
    CHECK(format_fit_report(std::nullopt, unchecked, DetectionFormat::Json).find("\"fits\":null,\"verdict\":\"unknown\",") != std::string::npos);
    CHECK(format_fit_report(std::nullopt, unchecked, DetectionFormat::Table).find("# fit task_struct: unknown, unknown, votes agree on no candidate object") != std::string::npos);

    const std::string none = format_fit_report(std::nullopt, {}, DetectionFormat::Json);
    CHECK(none == "{\"record\":\"kernel\",\"release\":null,\"banner\":null}\n");
    // Whether the dump lacks the kernel image, and the threshold each model used (attacker 16: only
    // stderr said so, and a pipeline keeping the JSON could not tell).
    const ModelFit reached = assess_fit(m, "m.cereal", b, VoteAgreement{10, 1, {}}, ScoreReach{4.535f, 9.f});
    const std::string lacking = format_fit_report(std::nullopt, std::span(&reached, 1), DetectionFormat::Json, true);
    CHECK(lacking.rfind("{\"record\":\"kernel\",\"release\":null,\"banner\":null,\"kernel_image\":\"lacking\"}\n", 0) == 0);
    CHECK(lacking.find(",\"checked\":false,\"not_judged\":null,\"threshold\":4.53}\n") != std::string::npos);   // score_text: two decimals
    CHECK(format_fit_report(b, {}, DetectionFormat::Json, false).find(",\"kernel_image\":\"present\"}") != std::string::npos);
    CHECK(format_fit_report(b, std::span(&reached, 1), DetectionFormat::Table, true)
              .find("# kernel image: lacking (models detect at their thresholds for such dumps)\n# fit task_struct: NO") !=
          std::string::npos);
    CHECK(format_fit_report(b, std::span(&reached, 1), DetectionFormat::Table).find(", threshold 4.53") != std::string::npos);
    const std::string table = format_fit_report(b, fits, DetectionFormat::Table);
    CHECK(table.rfind("# kernel: 6.1.0-47-amd64 (banner in the kernel image at 0xffffffff82000100)\n# banner: Linux version", 0) == 0);
    CHECK(table.find("# fit task_struct: NO, other-version, votes agree on 1 of 10 candidate objects (10.0%), validation 99.0%: ") !=
          std::string::npos);
    CHECK(format_fit_report(b, fits, DetectionFormat::Csv) == table);   // comment lines before a CSV's header (newcomer 90)
    // Under kMinAgreementObjects candidate objects the agreement is shown, not judged (newcomer 17:
    // "yes" at 1 of 2 read as a pass at 50%).
    const ModelFit few = assess_fit(m, "m.cereal", b, VoteAgreement{2, 1, {}});
    CHECK(format_fit_report(b, std::span(&few, 1), DetectionFormat::Table)
              .find("votes not judged (fewer than 5 candidate objects): 1 of 2 candidate objects agree (50.0%") != std::string::npos);
    // A same-build model with no candidate object measured: "unknown", not "yes" (the tester's
    // attack 8: a dump whose direct map was hidden read as a good fit with 0 objects).
    Model same = test::marker_model("task_struct");
    same.provenance.kernel_builds = {{"6.1.0-47-amd64", ""}};
    const ModelFit unmeasured = assess_fit(same, "m.cereal", b, VoteAgreement{});
    REQUIRE(unmeasured.fits);
    CHECK(unmeasured.reason.find("no candidate object: no base gathered") == 0);   // tester 11: never silent
    CHECK(format_fit_report(b, std::span(&unmeasured, 1), DetectionFormat::Table)
              .find("# fit task_struct: unknown, same-build, votes agree on no candidate object") != std::string::npos);
}
