// Votes, candidates and detections on a hand-built memory graph with crafted probabilities; the
// row-restricted votes; evaluation, threshold calibration, and the text readers' errors.
#include "detect/detect.hpp"
#include "detect/fit.hpp"
#include "../graph/graph_fixtures.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>

using namespace deepmem;
using namespace deepmem::test;

namespace {

std::span<const uint8_t> bytes(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// One page at K64; pointer words at these offsets make nodes
//   n0 [0,24) 24  n1 [32,56) 24  n2 [64,96) 32  n3 [104,200) 96  n4 [208,296) 88
//   n5 [304,328) 24  n6 [336,360) 24  n7 [368,416) 48  n8 [424,4088) 3664
MemoryGraph nine_nodes() {
    Memory m(1);
    m.map(K64, 0, 4096);
    for (uint64_t p : {24, 56, 96, 200, 296, 328, 360, 416, 4088}) m.word(p, K64 + 8);
    return m.build();
}

// Key nodes (0,24,.5) (32,24,.8) (64,32,1): R = 64.
Model three_keys() {
    ModelConfig c;
    c.classes = 4;
    Model m = Model::create(c, 1);
    m.object_type = "task_struct";
    m.key_nodes = {{0, 24, 0.5f}, {32, 24, 0.8f}, {64, 32, 1.f}};
    m.threshold = 1.4f;
    return m;
}

// One-hot rows: node i's most probable class is cls[i].
Mat<float> probs_for(const std::vector<int>& cls) {
    Mat<float> p = Mat<float>::Constant(Eigen::Index(cls.size()), 4, 0.1f);
    for (size_t i = 0; i < cls.size(); ++i) p(Eigen::Index(i), cls[i]) = 0.7f;
    return p;
}

}  // namespace

TEST_CASE("detect: votes — length check, offsets, weights, bonus, overlap rule") {
    MemoryGraph g = nine_nodes();
    REQUIRE(g.node_count() == 9);
    REQUIRE(std::vector<uint32_t>(g.length().begin(), g.length().end()) ==
            std::vector<uint32_t>{24, 24, 32, 96, 88, 24, 24, 48, 3664});
    const Model m = three_keys();

    SUBCASE("three key nodes agree; wrong lengths do not vote; equal scores keep the lower address") {
        // n3 says class 1 (length 96 ≠ 24), n7 class 3 (48 ≠ 32), n8 class 2: no votes.
        // n5 → base 304, n6 as class 1 → base 336: 32 apart (< R), equal scores: 304 stays.
        auto c = vote(g, m, probs_for({1, 2, 3, 1, 0, 1, 1, 3, 2}));
        REQUIRE(c.size() == 2);
        CHECK(c[0].vaddr == K64);
        CHECK(c[0].votes == 3);
        CHECK(c[0].score == doctest::Approx(0.5 + 0.8 + 1.0 + 2 * kVoteBonus));
        CHECK(c[1].vaddr == K64 + 304);
        CHECK(c[1].votes == 1);
        CHECK(c[1].score == doctest::Approx(0.5));
    }
    SUBCASE("a weaker candidate within R of a stronger one is dropped; select thresholds and finds paddr") {
        // n1 as class 1 → base 32 (0.5), 32 from base 0 (n0 + n2: 1.5 + bonus): dropped.
        // n5, n6 as classes 1, 2 → base 304 with 1.3 + bonus.
        auto c = vote(g, m, probs_for({1, 1, 3, 0, 0, 1, 2, 0, 0}));
        REQUIRE(c.size() == 2);
        CHECK(c[0].vaddr == K64);
        CHECK(c[0].score == doctest::Approx(1.5 + kVoteBonus));
        CHECK(c[1].vaddr == K64 + 304);
        CHECK(c[1].score == doctest::Approx(1.3 + kVoteBonus));
        CHECK(c[1].votes == 2);
        auto d = select(g, m, c, 1.4f);
        REQUIRE(d.size() == 1);
        CHECK(d[0] == Detection{"task_struct", K64, 0, c[0].score, 2});
        CHECK(select(g, m, c, 1.0f).size() == 2);
        CHECK(select(g, m, c, 2.0f).empty());
    }
    SUBCASE("each row's class votes as its probabilities do (what dmdetect keeps of a row)") {
        const std::vector<uint32_t> rows{0, 1, 2, 3, 4, 5, 6, 7, 8};
        for (const auto& cls : {std::vector<int>{1, 2, 3, 1, 0, 1, 1, 3, 2}, std::vector<int>{1, 1, 3, 0, 0, 1, 2, 0, 0}}) {
            const Mat<float> p = probs_for(cls);
            const std::vector<uint32_t> classes(cls.begin(), cls.end());
            const auto a = vote(g, m, rows, classes), b = vote(g, m, p);
            REQUIRE(a.size() == b.size());
            for (size_t i = 0; i < a.size(); ++i) {
                CHECK(a[i].vaddr == b[i].vaddr);
                CHECK(a[i].score == b[i].score);
                CHECK(a[i].votes == b[i].votes);
            }
        }
        CHECK_THROWS_AS(vote(g, m, rows, std::vector<uint32_t>(8, 0)), ModelError);    // a class per row
        CHECK_THROWS_AS(vote(g, m, rows, std::vector<uint32_t>(9, 4)), ModelError);    // 3 key nodes: K = 4
    }
    SUBCASE("shape mismatch is a typed error") {
        CHECK_THROWS_AS(vote(g, m, Mat<float>::Zero(9, 3)), ModelError);
        CHECK_THROWS_AS(vote(g, m, Mat<float>::Zero(8, 4)), ModelError);
        const std::vector<uint32_t> rows{0, 9};
        CHECK_THROWS_AS(vote(g, m, rows, Mat<float>::Zero(2, 4)), ModelError);
    }
}

TEST_CASE("detect: voting rows — key-node lengths, the score bound, and the same detections") {
    MemoryGraph g = nine_nodes();
    const Model m = three_keys();
    using V = std::vector<uint32_t>;
    CHECK(voting_rows(g, m) == V{0, 1, 2, 5, 6});
    // bounds: base 0 has all three (2.32), base 304 has k1 and k2 (1.31), the others one key (≤ 0.5)
    CHECK(voting_rows(g, m, 2.0f) == V{0, 1, 2});
    CHECK(voting_rows(g, m, 1.0f) == V{0, 1, 2, 5, 6});
    CHECK(voting_rows(g, m, 2.5f).empty());
    for (const auto& cls : {std::vector<int>{1, 2, 3, 1, 0, 1, 1, 3, 2}, std::vector<int>{1, 1, 3, 0, 0, 1, 2, 0, 0},
                            std::vector<int>{0, 1, 0, 0, 0, 1, 2, 0, 0}}) {
        const Mat<float> all = probs_for(cls);
        for (float t : {0.4f, 1.0f, 1.4f, 2.0f, 2.5f}) {
            const V rows = voting_rows(g, m, t);
            Mat<float> some(Eigen::Index(rows.size()), 4);
            for (size_t i = 0; i < rows.size(); ++i) some.row(Eigen::Index(i)) = all.row(rows[i]);
            INFO("threshold " << t);
            CHECK(select(g, m, vote(g, m, rows, some), t) == select(g, m, vote(g, m, all), t));
        }
    }
}

TEST_CASE("detect: voting rows with an open-ended key node (any length at least its own)") {
    MemoryGraph g = nine_nodes();
    Model m = three_keys();
    m.key_nodes[2] = {64, 24, 1.f, true};   // n2 (32), n3 (96), n4 (88), n7 (48), n8 match it too
    using V = std::vector<uint32_t>;
    CHECK(voting_rows(g, m) == V{0, 1, 2, 3, 4, 5, 6, 7, 8});
    // base 0: n0, n1, n2 (2.32); base 304 now also has n7 at 368 (2.32); every other base ≤ 1
    CHECK(voting_rows(g, m, 2.0f) == V{0, 1, 2, 5, 6, 7});
    const Mat<float> all = probs_for({1, 2, 3, 3, 0, 1, 2, 3, 3});
    for (float t : {0.9f, 1.4f, 2.0f, 2.4f}) {
        const V rows = voting_rows(g, m, t);
        Mat<float> some(Eigen::Index(rows.size()), 4);
        for (size_t i = 0; i < rows.size(); ++i) some.row(Eigen::Index(i)) = all.row(rows[i]);
        INFO("threshold " << t);
        CHECK(select(g, m, vote(g, m, rows, some), t) == select(g, m, vote(g, m, all), t));
    }
    CHECK(select(g, m, vote(g, m, all), 2.0f).size() == 2);
}

TEST_CASE("detect: evaluate — TP, FP, FN, freed apart, duplicates once, types") {
    const std::vector<Detection> d{{"task_struct", 0x100, {}, 2, 3}, {"task_struct", 0x100, {}, 2, 3},
                                   {"task_struct", 0x200, {}, 2, 3}, {"task_struct", 0x300, {}, 2, 3},
                                   {"cred", 0x500, {}, 1, 1}};
    const std::vector<TruthObject> t{{0x100, "task_struct"}, {0x200, "task_struct", 0, true},
                                     {0x400, "task_struct"}, {0x500, "file"}, {0x600, "cred"}};
    auto s = evaluate(d, t);
    const TypeScore& ts = s.at("task_struct");
    CHECK(ts.tp == 1);
    CHECK(ts.fp == 1);
    CHECK(ts.fn == 1);
    CHECK(ts.freed_found == 1);
    CHECK(ts.freed_total == 1);
    CHECK(ts.missed == std::vector<uint64_t>{0x400});
    CHECK(ts.spurious == std::vector<uint64_t>{0x300});
    CHECK(ts.precision() == doctest::Approx(0.5));
    CHECK(ts.recall() == doctest::Approx(0.5));
    CHECK(s.at("cred").fp == 1);   // a cred where a file is: wrong type counts as FP and FN
    CHECK(s.at("cred").fn == 1);
    CHECK(s.at("file").fn == 1);
    CHECK(s.at("file").precision() == 1.0);
    const std::vector<std::string> only{"file"};
    auto f = evaluate({}, t, only);
    CHECK(f.size() == 1);
    CHECK(f.at("file").fn == 1);
    CHECK(f.at("file").f1() == 0.0);
}

TEST_CASE("detect: evaluate — freed creds apart at their base; inside their bytes a false positive, counted") {
    // Two freed creds of 176 bytes (cred_jar stride 192) and one live one. A detection at a freed
    // base is freed_found; one 8 bytes in (rcu_head.next shifted the key-node segment) is an FP
    // and freed_inside; one at the first byte past a freed cred, or in a freed task_struct, is an FP.
    const std::vector<TruthObject> t{{0x1000, "cred", 176, true}, {0x10c0, "cred", 176, true},
                                     {0x1180, "cred", 176, false}, {0x3000, "task_struct", 6208, true}};
    const std::vector<Detection> d{{"cred", 0x1000, {}, 1, 1}, {"cred", 0x10c8, {}, 1, 1},
                                   {"cred", 0x1180, {}, 1, 1}, {"cred", 0x10b0, {}, 1, 1},
                                   {"cred", 0x3008, {}, 1, 1}};
    const TypeScore s = evaluate(d, t).at("cred");
    CHECK(s.tp == 1);
    CHECK(s.freed_found == 1);
    CHECK(s.freed_total == 2);
    CHECK(s.freed_inside == 1);
    CHECK(s.fp == 3);
    CHECK(s.spurious == std::vector<uint64_t>{0x10b0, 0x10c8, 0x3008});
    CHECK(s.fn == 0);
    // A freed label without a size (labels.tsv never has freed ones; an old labels.jsonl) matches
    // at its base only.
    const std::vector<TruthObject> sizeless{{0x1000, "cred", 0, true}};
    const std::vector<Detection> in{{"cred", 0x1008, {}, 1, 1}};
    CHECK(evaluate(in, sizeless).at("cred").fp == 1);
    // Calibration: a candidate at a freed base is neutral; inside a freed object, a false positive
    // (the threshold that keeps the live cred must accept both shifted ones above it).
    const std::vector<Candidate> c{{0x1180, 1.0f, 1}, {0x10c8, 3.0f, 1}, {0x1008, 2.0f, 1}, {0x10c0, 4.0f, 1}};
    const CalibrationSet set{c, t};
    const Calibration cal = calibrate_threshold("cred", std::span(&set, 1), 0.f);
    CHECK(cal.score.tp == 1);
    CHECK(cal.score.fp == 2);
    CHECK(cal.threshold < 1.0f);
}

TEST_CASE("detect: calibrate_threshold — the F1 optimum and the margin midpoint") {
    // scores 3.0 TP, 2.5 TP, 2.0 FP, 1.5 TP, 1.0 FP; 4 live objects (one never a candidate), one
    // freed object scored 2.2 (neutral). Accepting the top 4: P = R = 0.75, the best F1.
    const std::vector<Candidate> c{{0x1000, 3.0f, 3}, {0x2000, 2.5f, 3}, {0x3000, 2.0f, 2},
                                   {0x4000, 1.5f, 2}, {0x5000, 1.0f, 1}, {0x6000, 2.2f, 2}};
    const std::vector<TruthObject> t{{0x1000, "cred"}, {0x2000, "cred"}, {0x4000, "cred"}, {0x9000, "cred"},
                                     {0x6000, "cred", 0, true}, {0x3000, "file"}};
    const CalibrationSet set{c, t};
    Calibration cal = calibrate_threshold("cred", std::span(&set, 1), 0.f);
    CHECK(cal.threshold == doctest::Approx(1.25));
    CHECK(cal.score.tp == 3);
    CHECK(cal.score.fp == 1);
    CHECK(cal.score.fn == 1);
    // no live object: a threshold above every candidate
    Calibration none = calibrate_threshold("module", std::span(&set, 1), 0.f);
    CHECK(none.threshold > 3.0f);
    // Above a floor (a model's single_vote_bound: Model::validate refuses a threshold at or below
    // it): the F1 optimum at 1.25 is out of reach (it accepts 1.5); the best above 1.6 accepts the
    // top two (TP 2, FP 0; the next, 2.0, is a false positive), between 2.5 and 2.2.
    Calibration floored = calibrate_threshold("cred", std::span(&set, 1), 1.6f);
    CHECK(floored.threshold == doctest::Approx(2.35));
    CHECK(floored.score.tp == 2);
    CHECK(floored.score.fp == 0);
    // A floor above the highest rejected score (2.2): the midpoint is taken from the floor.
    CHECK(calibrate_threshold("cred", std::span(&set, 1), 2.4f).threshold == doctest::Approx(2.45));
    // Every candidate at or below the floor: the lowest threshold above it, nothing accepted.
    Calibration above = calibrate_threshold("cred", std::span(&set, 1), 3.0f);
    CHECK(above.threshold == std::nextafter(3.0f, INFINITY));
    CHECK(above.score.tp == 0);
    CHECK(above.score.fn == 4);
}

TEST_CASE("detect: parse_truth — both formats, errors at the offending line") {
    auto t = parse_truth(bytes("0xffff888000001000\ttask_struct\t9856\n"
                               "{\"vaddr\":\"0xffff888000002000\",\"type\":\"cred\",\"state\":\"freed\"}\n"));
    REQUIRE(t.size() == 2);
    CHECK(t[0].vaddr == 0xffff888000001000ull);
    CHECK(t[0].type == "task_struct");
    CHECK(t[1].freed);
    const std::string good = "0x10\tfile\n";
    for (const std::string bad : {"{\"vaddr\":\"0xzz\",\"type\":\"x\"}\n", "{\"type\":\"x\"}\n", "0x10 file\n",
                                  "{\"vaddr\":\"0x10\",\"type\":\"x\",\"state\":\"gone\"}\n"}) {
        INFO(bad);
        try {
            parse_truth(bytes(good + bad));
            FAIL("no FormatError");
        } catch (const FormatError& e) {
            CHECK(e.offset() == good.size());
        }
    }
}

TEST_CASE("detect: detections as JSON Lines and CSV round-trip; reader errors carry offsets") {
    const std::vector<Detection> d{{"cred", 0xffff888000001000ull, 0x1000, 1.25f, 2},
                                   {"task_struct", 0xffff888000002000ull, std::nullopt, 12.5f, 14}};
    const std::string json = format_detections(d, DetectionFormat::Json);
    CHECK(json.substr(0, json.find('\n')) ==
          "{\"type\":\"cred\",\"vaddr\":\"0xffff888000001000\",\"paddr\":\"0x1000\",\"score\":1.250,\"votes\":2}");
    CHECK(json.find("\"paddr\":null") != std::string::npos);
    CHECK(parse_detections(bytes(json)) == d);
    const std::string csv = format_detections(d, DetectionFormat::Csv);
    CHECK(csv.rfind("type,vaddr,paddr,score,votes\ncred,0xffff888000001000,0x1000,1.250,2\n", 0) == 0);
    CHECK(parse_detections(bytes(csv)) == d);
    const std::string table = format_detections(d, DetectionFormat::Table);
    CHECK(table.find("# cred: 1\n# task_struct: 1\n# total: 2\n") != std::string::npos);
    CHECK(parse_detections(bytes("")).empty());
    CHECK(parse_detection_format("csv") == DetectionFormat::Csv);
    CHECK_THROWS_AS(parse_detection_format("xml"), InputError);

    const std::string line1 = json.substr(0, json.find('\n') + 1);
    const std::string header = "type,vaddr,paddr,score,votes\n";
    const std::pair<std::string, uint64_t> bad[] = {
        {"type\tvaddr\n", 0},                                                       // neither format
        {line1 + "{\"type\":\"cred\",\"vaddr\":\"0x10\",\"score\":1}\n", line1.size()},   // no votes
        {line1 + "{\"type\":\"cred\",\"vaddr\":\"16\",\"score\":1,\"votes\":1}\n", line1.size()},   // not hex
        {line1 + "{\"type\":\"cred\",\"vaddr\":\"0x10\",\"score\":x,\"votes\":1}\n", line1.size()},
        {header + "cred,0x10,,1.0\n", header.size()},                                // 4 fields
        {header + "cred,0x10,,1.0,-1\n", header.size()},                             // negative votes
        {header + "cred,0x10,0xq,1.0,1\n", header.size()}};
    for (const auto& entry : bad) {   // no structured binding: INFO captures it in a lambda (clang)
        const std::string& text = entry.first;
        const uint64_t offset = entry.second;
        INFO(text);
        try {
            parse_detections(bytes(text));
            FAIL("no FormatError");
        } catch (const FormatError& e) {
            CHECK(e.offset() == offset);
        }
    }
    CHECK_THROWS_AS(read_detections("/nonexistent/detections.jsonl"), InputError);
}

TEST_CASE("detect: warnings in the output (dmbaseline pslist's cut lists) are skipped when read back") {
    const std::vector<Detection> d{{"task_struct", 0xffff888000001000ull, 0x1000, 1.0f, 0},
                                   {"task_struct", 0xffff888000002000ull, std::nullopt, 1.0f, 0}};
    const std::vector<std::string> w{"init_task.tasks: pointer 0xffff888000002043 after 1 entries is not pointer-aligned",
                                     "a \"quoted\" one,\nover two lines"};
    CHECK(format_warnings({}, DetectionFormat::Json).empty());
    const std::string json = format_warnings(w, DetectionFormat::Json);
    CHECK(json.rfind("{\"record\":\"warning\",\"message\":\"init_task.tasks: pointer 0xffff888000002043", 0) == 0);
    CHECK(std::count(json.begin(), json.end(), '\n') == 2);   // the line break is escaped: one record per warning
    CHECK(parse_detections(bytes(json + format_detections(d, DetectionFormat::Json))) == d);
    CHECK(parse_detections(bytes(json)).empty());
    const std::string csv = format_warnings(w, DetectionFormat::Csv);
    CHECK(csv.rfind("# warning: init_task.tasks:", 0) == 0);
    CHECK(csv.find("# warning: a \"quoted\" one, over two lines\n") != std::string::npos);
    CHECK(parse_detections(bytes(csv + format_detections(d, DetectionFormat::Csv))) == d);
    CHECK(format_warnings(w, DetectionFormat::Table) == csv);
    // named records of one dump (dmdetect over several dumps) keep the warnings readable
    for (DetectionFormat f : {DetectionFormat::Json, DetectionFormat::Csv}) {
        const std::string text = format_warnings(w, f) + format_detections(d, f);
        CHECK(parse_detections(bytes(name_dump_records(text, f, {"a.elf"}))) == d);
    }
    // a warning line among CSV rows is skipped too, as any line that starts with "# " (the fit, verdict
    // and batch lines: is_comment_line); a row is never one (its first field quoted when it starts
    // with '#'), and another line is an error
    const std::string rows = format_detections(d, DetectionFormat::Csv);
    CHECK(parse_detections(bytes(rows + csv)) == d);
    CHECK(parse_detections(bytes(rows + "# note\n")) == d);
    CHECK_THROWS_AS(parse_detections(bytes(rows + "#note\n")), FormatError);
}

TEST_CASE("detect: vote window — shifted key nodes count once for one object, the earliest key's base wins") {
    Model m = three_keys();   // (0,24,.5) (32,24,.8) (64,32,1): R = 64
    using Votes = std::vector<std::pair<uint64_t, uint32_t>>;
    const uint64_t b = K64 + 4096;
    SUBCASE("exact bases (window 0): the shifted key node is a separate, dropped candidate") {
        const Votes v{{b, 1}, {b, 2}, {b + 8, 3}};
        const auto c = apply_overlap_rule(m, bases_of(m, v));
        REQUIRE(c.size() == 1);
        CHECK(c[0].vaddr == b);
        CHECK(c[0].score == doctest::Approx(1.3 + kVoteBonus));
        CHECK(c[0].votes == 2);
    }
    SUBCASE("window 8: every base within 8 bytes scores the three classes") {
        m.vote_window = 8;
        const Votes v{{b, 1}, {b, 2}, {b + 8, 3}};
        const auto all = bases_of(m, v);
        REQUIRE(all.size() == 2);
        CHECK(all[0].score == doctest::Approx(2.3 + 2 * kVoteBonus));
        CHECK(all[1].score == doctest::Approx(2.3 + 2 * kVoteBonus));
        CHECK(all[0].lead_offset == 0);
        CHECK(all[1].lead_offset == 64);
        const auto c = apply_overlap_rule(m, all);
        REQUIRE(c.size() == 1);
        CHECK(c[0].vaddr == b);
        CHECK(c[0].votes == 3);
        // 16 bytes apart is outside the window: back to the exact scores
        const auto far = apply_overlap_rule(m, bases_of(m, Votes{{b, 1}, {b, 2}, {b + 16, 3}}));
        REQUIRE(far.size() == 1);
        CHECK(far[0].score == doctest::Approx(1.3 + kVoteBonus));
        // bases_of with an explicit window 0 ignores the model's
        CHECK(bases_of(m, v, 0, 0)[0].score == doctest::Approx(1.3 + kVoteBonus));
    }
    SUBCASE("of equal window scores the base voted by the key node nearest the object's start wins, not the lower address") {
        m.vote_window = 8;
        const auto c = apply_overlap_rule(m, bases_of(m, Votes{{b, 2}, {b, 3}, {b + 8, 1}}));
        REQUIRE(c.size() == 1);
        CHECK(c[0].vaddr == b + 8);
        CHECK(c[0].lead_offset == 0);
    }
    SUBCASE("a class voting twice within the window counts once") {
        m.vote_window = 8;
        const auto c = bases_of(m, Votes{{b, 1}, {b + 8, 1}});
        REQUIRE(c.size() == 2);
        CHECK(c[0].score == doctest::Approx(0.5));
        CHECK(c[0].votes == 1);
    }
}

TEST_CASE("detect: voting rows under a vote window give the same detections as every node") {
    MemoryGraph g = nine_nodes();
    Model m = three_keys();
    using V = std::vector<uint32_t>;
    for (uint32_t w : {8u, 32u, 300u}) {
        m.vote_window = w;
        for (const auto& cls : {std::vector<int>{1, 2, 3, 1, 0, 1, 1, 3, 2}, std::vector<int>{1, 1, 3, 0, 0, 1, 2, 0, 0},
                                std::vector<int>{0, 1, 0, 0, 0, 1, 2, 0, 0}, std::vector<int>{2, 1, 1, 0, 0, 3, 2, 0, 0}}) {
            const Mat<float> all = probs_for(cls);
            for (float t : {0.4f, 1.0f, 1.4f, 2.0f, 2.5f, 3.0f}) {
                V carriers{99};
                const V rows = voting_rows(g, m, t, &carriers);
                CHECK(carriers == voting_rows(g, m));   // the rows at −∞, from the same pass
                Mat<float> some(Eigen::Index(rows.size()), 4);
                for (size_t i = 0; i < rows.size(); ++i) some.row(Eigen::Index(i)) = all.row(rows[i]);
                INFO("window " << w << " threshold " << t);
                CHECK(select(g, m, vote(g, m, rows, some), t) == select(g, m, vote(g, m, all), t));
            }
        }
    }
    // the window widens the bound: base 304 (k1 + k2) and base 0 (all three) are 304 bytes apart
    m.vote_window = 0;
    CHECK(voting_rows(g, m, 2.0f) == V{0, 1, 2});
    m.vote_window = 160;
    CHECK(voting_rows(g, m, 2.0f) == V{0, 1, 2, 5, 6});
    // ... but a class counts once, as Window scores it: k1 votes 0, 32, 304, 336 and k2 0, 272, 304,
    // all within one window, and no base can score more than 0.5 + 0.8 + 1 (+ bonus): at 2.5 nothing
    // votes (summing every vote, 5.4, kept all nine nodes' votes)
    CHECK(voting_rows(g, m, 2.32f) == V{0, 1, 2, 5, 6});
    CHECK(voting_rows(g, m, 2.5f).empty());
}

TEST_CASE("detect: voting rows on a graph of many base ranges equal the bound computed vote by vote") {
    // ~110 k nodes (segments of 8–64 bytes between pointer words, from a fixed generator): voting_rows
    // cuts the bases into ranges of 4 Ki nodes, each merged with its window's context. The reference
    // here lists every vote (each key node's carriers: a one-key model's rows at −∞) and applies the
    // bound of detect.hpp base by base: W = 0, the base's own votes; W > 0, the classes voting within
    // 2W, each once; under an alignment at W = 0, unaligned bases keep nothing.
    const uint64_t pages = 1200;
    Memory mem(pages);
    mem.map(K64, 0, pages * 4096);
    uint64_t state = 12345;
    auto next = [&] { state = state * 6364136223846793005ull + 1442695040888963407ull; return state >> 33; };
    for (uint64_t at = 0; at + 8 <= pages * 4096; at += 16 + 8 * (next() % 8)) mem.word(at, K64 + 8 * (next() % 4096));
    const MemoryGraph g = mem.build();
    REQUIRE(g.node_count() > 24 * 4096);
    Model m = three_keys();
    struct Vote { uint64_t base; uint32_t cls, node; };
    std::vector<Vote> votes;
    for (uint32_t c = 1; c <= 3; ++c) {
        Model one = m;
        one.key_nodes = {m.key_nodes[c - 1]};
        for (uint32_t node : voting_rows(g, one)) votes.push_back({g.vaddr()[node] - one.key_nodes[0].offset, c, node});
    }
    std::sort(votes.begin(), votes.end(), [](const Vote& x, const Vote& y) { return x.base < y.base; });
    auto reference = [&](uint32_t window, uint32_t align, float t) {
        std::vector<char> keep(g.node_count(), 0);
        const uint64_t reach = 2 * uint64_t(window);
        for (size_t i = 0, j; i < votes.size(); i = j) {
            const uint64_t b = votes[i].base;
            float own = 0;
            for (j = i; j < votes.size() && votes[j].base == b; ++j) own += m.key_nodes[votes[j].cls - 1].weight;
            float bound = own + kVoteBonus * float(j - i - 1);
            if (reach) {
                bool seen[4] = {};
                auto at = [&](uint64_t x) {
                    return std::lower_bound(votes.begin(), votes.end(), x, [](const Vote& v, uint64_t y) { return v.base < y; });
                };
                for (auto v = at(b - reach); v != at(b + reach + 1); ++v) seen[v->cls] = true;
                double sum = 0;
                int distinct = 0;
                for (uint32_t c = 1; c <= 3; ++c)
                    if (seen[c]) sum += m.key_nodes[c - 1].weight, ++distinct;
                bound = float(sum) + kVoteBonus * float(distinct);
            } else if (align > 1 && b % align != 0) {
                continue;
            }
            if (bound >= t)
                for (size_t k = i; k < j; ++k) keep[votes[k].node] = 1;
        }
        std::vector<uint32_t> rows;
        for (uint32_t n = 0; n < g.node_count(); ++n)
            if (keep[n]) rows.push_back(n);
        return rows;
    };
    std::vector<int> cls(g.node_count());
    for (int& c : cls) c = int(next() % 4);
    const Mat<float> all = probs_for(cls);
    using V = std::vector<uint32_t>;
    for (uint32_t w : {0u, 8u, 64u}) {
        m.vote_window = w;
        for (uint32_t align : {0u, 16u}) {
            m.base_alignment = w == 0 ? align : 0;
            for (float t : {1.0f, 1.4f, 1.9f, 2.31f}) {
                INFO("window " << w << " alignment " << m.base_alignment << " threshold " << t);
                const V rows = voting_rows(g, m, t);
                CHECK(rows == reference(w, m.base_alignment, t));
                CHECK(!rows.empty());
                Mat<float> some(Eigen::Index(rows.size()), 4);
                for (size_t i = 0; i < rows.size(); ++i) some.row(Eigen::Index(i)) = all.row(rows[i]);
                CHECK(select(g, m, vote(g, m, rows, some), t) == select(g, m, vote(g, m, all), t));
            }
        }
    }
}

TEST_CASE("detect: voting rows near the top of the address space and under large weights (helper 64)") {
    SUBCASE("a base within 2W of 2^64: the window's arithmetic does not wrap") {
        // (it read past the held bases and crashed, before this change as well)
        Memory mem(1);
        const uint64_t top = 0xffffffffffff0000ull;   // the page 64 KiB below 2^64
        mem.map(top, 0, 4096);
        for (uint64_t p : {24, 56, 96}) mem.word(p, top + 8);
        const MemoryGraph g = mem.build();
        Model m = three_keys();
        m.key_nodes = {{0, 24, 1.f}};
        m.threshold = 0.5f;
        using V = std::vector<uint32_t>;
        for (uint32_t w : {0u, 8u, 40000u, 65535u}) {
            m.vote_window = w;
            INFO("window " << w);
            CHECK(voting_rows(g, m, 0.5f) == V{0, 1});
        }
    }
    SUBCASE("the window's bound stays above vote()'s float score with 60 large weights") {
        // Weights up to 1e6 (a model file may hold them): the float sum vote() scores a window with
        // rounds up by more than a fixed 1e-6 of it; the bound is padded by K · 2^-23.
        const float w[] = {546377.125f, 633557.812f, 960315.875f, 691674.375f, 423549.875f, 965677.25f, 324564.75f,
                           401460.75f,  783126.75f,  900611.75f,  846503.75f,  975841.5f,   170457.5f,  786237.5f,
                           895163.5f,   598831.5f,   807789.5f,   525501.5f,   676919.5f,   559385.5f,  611443.5f,
                           558055.5f,   997403.5f,   777263.5f,   860729,      892487,      862003,     873995,
                           636703,      282007,      225407,      947663,      661255,      903443,     543899,
                           330795,      770443,      994591,      725483,      554359,      550547,     385271,
                           889971,      610239,      812591,      350051,      633247,      353535,     856911,
                           909666,      553654,      539606,      608846,      743230,      682558,     996558,
                           910470,      916134,      229438,      995710};
        Memory mem(1);
        mem.map(K64, 0, 4096);
        for (int i = 0; i < 60; ++i) mem.word(uint64_t(24 * i + 16), K64 + 8);   // 60 nodes of 16 bytes at 24 i
        const MemoryGraph g = mem.build();
        ModelConfig c;
        c.classes = 61;
        Model m = Model::create(c, 1);
        m.object_type = "thing";
        m.key_nodes.clear();
        for (int i = 0; i < 60; ++i) m.key_nodes.push_back({uint32_t(24 * i), 16, w[i]});
        m.vote_window = 8;
        Mat<float> all = Mat<float>::Constant(Eigen::Index(g.node_count()), 61, 0.f);
        for (uint32_t i = 0; i < g.node_count(); ++i)
            all(Eigen::Index(i), g.vaddr()[i] < K64 + 1440 && g.length()[i] == 16 ? Eigen::Index((g.vaddr()[i] - K64) / 24 + 1) : 0) = 1.f;
        const auto scored = vote(g, m, all);
        REQUIRE(!scored.empty());
        const float t = scored[0].score;   // the threshold at the object's own score
        m.threshold = t;
        REQUIRE_NOTHROW(Model::validate_detection(m));
        const auto rows = voting_rows(g, m, t);
        CHECK(rows.size() == 60);
        Mat<float> some(Eigen::Index(rows.size()), 61);
        for (size_t i = 0; i < rows.size(); ++i) some.row(Eigen::Index(i)) = all.row(rows[i]);
        CHECK(select(g, m, vote(g, m, all), t).size() == 1);
        CHECK(select(g, m, vote(g, m, rows, some), t) == select(g, m, vote(g, m, all), t));
    }
}

TEST_CASE("detect: a key node split by pointers planted inside it still votes (issue #13)") {
    // Key nodes (0,24) (32,24) (64,32) over nodes made by pointer words at the given offsets (the
    // clean layout of nine_nodes(): 24, 56, 96, …); `extra` are the planted ones.
    auto graph_with = [](const std::vector<uint64_t>& extra) {
        Memory m(1);
        m.map(K64, 0, 4096);
        for (uint64_t p : {24, 56, 96, 200, 296, 328, 360, 416, 4088}) m.word(p, K64 + 8);
        for (uint64_t p : extra) m.word(p, K64 + 8);
        return m.build();
    };
    const Model m = three_keys();
    const KeyNode& k3 = m.key_nodes[2];   // (64, 32)
    auto node_at = [](const MemoryGraph& g, uint64_t off) {
        auto n = g.node_containing(K64 + off);
        REQUIRE(n);
        REQUIRE(g.vaddr()[*n] == K64 + off);
        return *n;
    };
    SUBCASE("split in the middle, twice, or at its last word: the first part carries it") {
        for (const auto& [planted, len] : {std::pair{std::vector<uint64_t>{80}, 16u}, std::pair{std::vector<uint64_t>{72, 88}, 8u},
                                    std::pair{std::vector<uint64_t>{88}, 24u}}) {
            const MemoryGraph g = graph_with(planted);
            const uint32_t n = node_at(g, 64);
            const uint32_t length = len;   // (no structured binding in INFO: clang 14)
            INFO("first part of length " << length);
            CHECK(g.length()[n] == length);
            CHECK(carries(g, n, k3));
            // and it votes: n0, n1 and the split n2 agree on base 0
            std::vector<int> cls(g.node_count(), 0);
            cls[node_at(g, 0)] = 1;
            cls[node_at(g, 32)] = 2;
            cls[n] = 3;
            auto c = vote(g, m, probs_for(cls));
            REQUIRE(!c.empty());
            CHECK(c[0].vaddr == K64);
            CHECK(c[0].votes == 3);
            // voting_rows keeps it at the full score's threshold
            const auto rows = voting_rows(g, m, 2.3f);
            CHECK(std::find(rows.begin(), rows.end(), n) != rows.end());
            // and so do the rows dmdetect runs when it measures vote agreement (detect/fit.hpp Rows):
            // they held only length matches, so dmdetect lost split objects the trainer's validation found
            const auto wide = agreement_rows(g, m, 2.3f);
            CHECK(std::find(wide.begin(), wide.end(), n) != wide.end());
            CHECK(std::includes(wide.begin(), wide.end(), rows.begin(), rows.end()));
        }
    }
    SUBCASE("a shorter node whose parts do not end where the key node ends does not carry it") {
        // two adjacent pointers at 80 and 88: [64,80) then [96…) is not one word later
        const MemoryGraph g = graph_with({80, 88});
        CHECK_FALSE(carries(g, node_at(g, 64), k3));
        // the clean 24-byte n1 carries (32,24) by length; a 16-byte part of it followed by a gap that
        // is not a single word does not
        const MemoryGraph h = graph_with({});
        CHECK(carries(h, node_at(h, 32), m.key_nodes[1]));
        CHECK_FALSE(carries(h, node_at(h, 0), k3));   // 24 < 32, but its parts end at 56 + …, not 32
    }
    SUBCASE("a long gap's node is no part of a chain: the node before it carries only what it did without it") {
        Memory mem(2);
        mem.map(K64, 0, 8192);
        mem.word(24, K64 + 8);     // [0,24) | p | a long gap from 32 to the pointer at 4232
        mem.word(4232, K64 + 8);
        const KeyNode open{0, 100, 1.f, true};
        Model om = three_keys();
        om.key_nodes = {{0, 16, 1.f}, {8, 16, 1.f}, open};
        om.threshold = 0.5f;
        for (bool long_gaps : {true, false}) {
            GraphParams p;
            p.long_gap_nodes = long_gaps;
            const MemoryGraph g = mem.build(p);
            CAPTURE(long_gaps);
            CHECK_FALSE(carries(g, node_at(g, 0), open));   // 24 bytes, then one word, then the sink
            const auto rows = voting_rows(g, om, -std::numeric_limits<float>::infinity());
            CHECK(std::find(rows.begin(), rows.end(), node_at(g, 0)) == rows.end());
            if (long_gaps) {
                CHECK(carries(g, node_at(g, 32), open));    // the sink itself: 4096 ≥ 100
                CHECK(std::find(rows.begin(), rows.end(), node_at(g, 32)) != rows.end());
            }
        }
    }
    SUBCASE("the first word planted: the key node starts a word later and is not carried") {
        const MemoryGraph g = graph_with({64});
        CHECK(!g.node_containing(K64 + 64));
        CHECK_FALSE(carries(g, node_at(g, 72), k3));
    }
}

TEST_CASE("detect: voting rows at −∞ are exactly the nodes that carry some key node (split chains included)") {
    // voting_rows decides carrying from each node's chain end (one backward pass) instead of
    // carries()' walk; on pages dense with pointer words, every node carrying a key must be kept
    // and no other. Keys: fixed and open-ended, lengths 8..96, some ending inside long chains.
    uint64_t state = 0x9e3779b97f4a7c15ull;
    auto next = [&] { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state; };
    for (int trial = 0; trial < 20; ++trial) {
        Memory mem(1);
        mem.map(K64, 0, 4096);
        for (uint64_t off = 0; off < 4096; off += 8)
            if (next() % 3 == 0) mem.word(off, K64 + 8);   // a pointer word on a third of the words
        const MemoryGraph g = mem.build();
        ModelConfig c;
        c.classes = 9;
        Model m = Model::create(c, 1);
        m.object_type = "t";
        for (uint32_t k = 0; k < 8; ++k)
            m.key_nodes.push_back({uint32_t(8 * k), uint32_t(8 * (1 + next() % 12)), 1.f, k % 3 == 0});
        std::vector<uint32_t> expected;
        for (uint32_t i = 0; i < g.node_count(); ++i)
            for (const KeyNode& key : m.key_nodes)
                if (carries(g, i, key) && g.vaddr()[i] >= key.offset) { expected.push_back(i); break; }
        const int t = trial;   // (no capture of a loop variable in INFO: clang 14)
        INFO("trial " << t << ", " << g.node_count() << " nodes");
        CHECK(voting_rows(g, m) == expected);
    }
}

TEST_CASE("detect: base alignment — unaligned bases are no object; under a window they move to the nearest aligned base") {
    Model m = three_keys();   // (0,24,.5) (32,24,.8) (64,32,1): R = 64
    using Votes = std::vector<std::pair<uint64_t, uint32_t>>;
    const uint64_t b = K64 + 4096;
    m.base_alignment = 64;
    SUBCASE("window 0: a base 8 bytes past an aligned one is dropped, the aligned one kept") {
        const auto c = bases_of(m, Votes{{b, 1}, {b, 2}, {b + 8, 3}, {b + 200, 3}});
        REQUIRE(c.size() == 1);
        CHECK(c[0].vaddr == b);
        CHECK(c[0].score == doctest::Approx(1.3 + kVoteBonus));
        // without the alignment (what the fit check counts) the shifted bases stay
        CHECK(bases_of(m, Votes{{b, 1}, {b, 2}, {b + 8, 3}, {b + 200, 3}}, 0, 0).size() == 3);
    }
    SUBCASE("window 8: a vote at b + 8 scores b, one candidate; one 32 bytes from every aligned base makes none") {
        m.vote_window = 8;
        const auto c = bases_of(m, Votes{{b, 1}, {b, 2}, {b + 8, 3}, {b + 224, 1}});
        REQUIRE(c.size() == 1);
        CHECK(c[0].vaddr == b);
        CHECK(c[0].votes == 3);
        CHECK(c[0].score == doctest::Approx(2.3 + 2 * kVoteBonus));
        CHECK(c[0].lead_offset == 0);
        // every vote shifted (another build): the aligned base is proposed and scored by all three
        const auto s = bases_of(m, Votes{{b + 8, 1}, {b + 8, 2}, {b + 8, 3}});
        REQUIRE(s.size() == 1);
        CHECK(s[0].vaddr == b);
        CHECK(s[0].votes == 3);
        CHECK(s[0].lead_offset == UINT32_MAX);   // no vote at exactly b
        // near the top of the address space the window is clipped, not wrapped (helper 63: a base
        // rounded up to …ffe0 under W = 32 scored 4.29e7 from 0 votes)
        m.vote_window = 32;
        m.base_alignment = 32;
        const auto top = bases_of(m, Votes{{0xffffffffffffffd8ull, 1}});
        REQUIRE(top.size() == 1);
        CHECK(top[0].vaddr == 0xffffffffffffffe0ull);
        CHECK(top[0].votes == 1);
        CHECK(top[0].score == doctest::Approx(0.5));
        m.base_alignment = 0;
        const auto top0 = bases_of(m, Votes{{0xfffffffffffffff0ull, 1}, {0xfffffffffffffff8ull, 2}});
        REQUIRE(top0.size() == 2);
        CHECK(top0[1].votes == 2);
        CHECK(top0[1].score == doctest::Approx(1.3 + kVoteBonus));
        m.vote_window = 8;
        m.base_alignment = 64;
        // a tie between two aligned bases goes to the lower one
        m.base_alignment = 16;
        const auto t = bases_of(m, Votes{{b + 8, 1}});
        REQUIRE(t.size() == 1);
        CHECK(t[0].vaddr == b);
    }
}

TEST_CASE("detect: voting rows under a base alignment give the same detections as every node, and drop unaligned voters") {
    MemoryGraph g = nine_nodes();   // base K64 (key nodes of n0, n1, n2) is page-aligned, base K64 + 304 (n5, n6) 16-aligned
    Model m = three_keys();
    using V = std::vector<uint32_t>;
    m.base_alignment = 64;
    CHECK(voting_rows(g, m) == V{0, 1, 2});
    CHECK(voting_rows(g, m, -INFINITY, nullptr, /*aligned=*/false) == V{0, 1, 2, 5, 6});
    m.base_alignment = 16;
    CHECK(voting_rows(g, m) == V{0, 1, 2, 5, 6});
    for (uint32_t a : {16u, 32u, 64u, 4096u})
        for (uint32_t w : {0u, 8u, 32u, 300u}) {
            m.base_alignment = a;
            m.vote_window = w;
            for (const auto& cls : {std::vector<int>{1, 2, 3, 1, 0, 1, 1, 3, 2}, std::vector<int>{1, 1, 3, 0, 0, 1, 2, 0, 0},
                                    std::vector<int>{0, 1, 0, 0, 0, 1, 2, 0, 0}, std::vector<int>{2, 1, 1, 0, 0, 3, 2, 0, 0}}) {
                const Mat<float> all = probs_for(cls);
                for (float t : {0.4f, 1.0f, 1.4f, 2.0f, 2.5f, 3.0f}) {
                    const V rows = voting_rows(g, m, t);
                    Mat<float> some(Eigen::Index(rows.size()), 4);
                    for (size_t i = 0; i < rows.size(); ++i) some.row(Eigen::Index(i)) = all.row(rows[i]);
                    INFO("alignment " << a << " window " << w << " threshold " << t);
                    const auto want = select(g, m, vote(g, m, all), t);
                    CHECK(select(g, m, vote(g, m, rows, some), t) == want);
                    for (const Detection& d : want) CHECK(d.vaddr % a == 0);
                }
            }
        }
}
