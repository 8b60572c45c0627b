// dmeval: detections against ground truth, per object type. Argument parsing and printing only;
// the work is evaluate() (detect/detect.hpp).
//
//   dmeval DETECTIONS LABELS [--types t1,t2] [--format table|json] [--list]
//
// DETECTIONS: dmdetect's JSON Lines or CSV output (told apart by content). LABELS: labels.jsonl or
// labels.tsv (dmlabel). Per type: TP, FP, FN, precision, recall, F1 (detect.hpp, "Evaluate"); freed
// labels apart ("freed: found X of Y"); the missed labels and spurious detections by address, the
// first 10 per type unless --list. --format json: one JSON object per type per line.
// Types scored: --types; else, for JSON detections, the types dmdetect ran (its fit records; a note
// names the labeled types left out); else every type in the detections or the labels.
// Exit status: 0 success, 1 bad input, 2 usage error; errors are one line "dmeval: error: …".
#include "graph/file_io.hpp"
#include "detect/detect.hpp"
#include "graph/layers.hpp"
#include "graph/text_lines.hpp"

#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <unistd.h>
#include <vector>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

constexpr size_t kListed = 10;

const char* kUsage = "usage: dmeval DETECTIONS LABELS [options]\n  DETECTIONS: dmdetect --format json|csv output\n"
                     "  LABELS: labels.jsonl or labels.tsv\nexit status: 0 ok, 1 bad input, 2 usage error\n";

std::string addresses(const std::vector<uint64_t>& v, size_t limit, bool json) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < limit; ++i) s += (i ? json ? "," : " " : "") + (json ? "\"" + hex(v[i]) + "\"" : hex(v[i]));
    if (!json && v.size() > limit) s += " … and " + std::to_string(v.size() - limit) + " more (--list)";
    return s;
}

// "0.1234"; a measure that is undefined (no detection for precision, no object for recall) is JSON's
// null and the table's "n/a", never 1.0 (newcomer 19: precision 1.0000 beside 0 detections).
std::string number(double v, bool defined, bool json) {
    if (!defined) return json ? "null" : "n/a";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", v);
    return buf;
}

int run(int argc, char** argv) {
    po::options_description o("options");
    o.add_options()("help,h", "this text")("types", po::value<std::string>(), "only these types, comma-separated")(
        "format", po::value<std::string>()->default_value("table"), "table|json")(
        "list", "list every missed and spurious address (default: the first 10 per type)");
    const auto parsed = parse_command_line(argc, argv, o, {{"detections", 1}, {"labels", 1}}, kUsage);
    if (!parsed) return 0;
    const po::variables_map& vm = *parsed;
    if (!vm.count("detections") || !vm.count("labels")) throw po::error("DETECTIONS and LABELS are required");
    const std::string fmt = vm["format"].as<std::string>();
    if (fmt != "table" && fmt != "json") throw po::error("--format must be table or json");
    std::vector<std::string> types = type_list_option(vm, "types");
    const std::string inputs[] = {vm["detections"].as<std::string>(), vm["labels"].as<std::string>()};
    refuse_fd_over_inputs(STDOUT_FILENO, "standard output", inputs);
    std::vector<std::string> run_types;
    std::vector<Detection> detections = read_detections(vm["detections"].as<std::string>(), &run_types);
    const std::vector<TruthObject> truth = read_truth(vm["labels"].as<std::string>());
    // labels.tsv holds live objects by virtual address only (newcomer 71: modules 0 TP / 5 FP, 14
    // false task_structs on a dump the JSONL scores right): say so, and name the JSONL beside it.
    if (std::any_of(truth.begin(), truth.end(), [](const TruthObject& t) { return t.tsv; })) {
        const std::string jsonl = jsonl_path_for(vm["labels"].as<std::string>());
        std::error_code ec;
        const bool beside = jsonl != vm["labels"].as<std::string>() && std::filesystem::is_regular_file(jsonl, ec);
        std::fprintf(stderr,
                     "dmeval: warning: labels.tsv gives no physical address and no freed object: a "
                     "detection at another virtual address of a labeled object (a module, init_task) or at a freed "
                     "one counts as a false positive; score against the labels.jsonl dmlabel writes%s\n",
                     beside ? (" beside it: " + terminal_text(jsonl)).c_str() : "");
    }
    // Without --types, JSON detections say which types dmdetect ran (its fit records): labels of
    // other types are not scored as missed. CSV does not say: every labeled type is scored. Types
    // detected are scored whatever the fit records say (attacker 18: a record naming an odd type
    // dropped all 491 task_struct detections from the score).
    if (types.empty() && !run_types.empty()) {
        types = run_types;
        std::set<std::string> scored(types.begin(), types.end()), skipped;
        for (const Detection& d : detections)
            if (scored.insert(d.type).second) types.push_back(d.type);
        for (const TruthObject& t : truth)
            if (!scored.count(t.type)) skipped.insert(t.type);
        if (!skipped.empty()) {
            auto list = [](const auto& names) {   // at most 8 names of at most 64 bytes each
                std::string l;
                size_t n = 0;
                for (const std::string& name : names) {
                    if (n++ == 8) return l + " and " + std::to_string(names.size() - 8) + " more";
                    l += (l.empty() ? "" : ", ") + terminal_text(name.size() > 64 ? name.substr(0, 64) + "…" : name);
                }
                return l;
            };
            std::fprintf(stderr, "dmeval: note: the detections come from models of %s only; labels of %s not scored (--types to choose)\n",
                         list(run_types).c_str(), list(skipped).c_str());
        }
    }
    if (!types.empty()) {   // a set: fit records may name 50 k types
        const std::set<std::string> wanted(types.begin(), types.end());
        std::erase_if(detections, [&](const Detection& d) { return !wanted.count(d.type); });
    }
    const auto scores = evaluate(detections, truth, types);
    const size_t limit = vm.count("list") ? SIZE_MAX : kListed;

    std::string out;
    if (fmt == "json") {
        for (const auto& [type, s] : scores)
            out += "{\"type\":\"" + type + "\",\"tp\":" + std::to_string(s.tp) + ",\"fp\":" + std::to_string(s.fp) +
                   ",\"fn\":" + std::to_string(s.fn) + ",\"precision\":" + number(s.precision(), s.has_precision(), true) +
                   ",\"recall\":" + number(s.recall(), s.has_recall(), true) + ",\"f1\":" + number(s.f1(), s.has_f1(), true) +
                   ",\"freed_found\":" + std::to_string(s.freed_found) + ",\"freed_total\":" + std::to_string(s.freed_total) +
                   ",\"freed_inside\":" + std::to_string(s.freed_inside) +
                   ",\"missed_count\":" + std::to_string(s.missed.size()) + ",\"missed\":[" + addresses(s.missed, limit, true) +
                   "],\"spurious_count\":" + std::to_string(s.spurious.size()) + ",\"spurious\":[" +
                   addresses(s.spurious, limit, true) + "]}\n";
    } else {
        char buf[256];
        std::snprintf(buf, sizeof buf, "%-14s %7s %7s %7s %9s %7s %7s\n", "type", "TP", "FP", "FN", "precision",
                      "recall", "F1");
        out += buf;
        for (const auto& [type, s] : scores) {
            std::snprintf(buf, sizeof buf, "%-14s %7llu %7llu %7llu %9s %7s %7s\n", type.c_str(),
                          static_cast<unsigned long long>(s.tp), static_cast<unsigned long long>(s.fp),
                          static_cast<unsigned long long>(s.fn), number(s.precision(), s.has_precision(), false).c_str(),
                          number(s.recall(), s.has_recall(), false).c_str(), number(s.f1(), s.has_f1(), false).c_str());
            out += buf;
        }
        for (const auto& [type, s] : scores) {
            if (s.freed_total || s.freed_found)   // neither TP nor FP (detect.hpp, "Evaluate")
                out += type + " freed: found " + std::to_string(s.freed_found) + " of " + std::to_string(s.freed_total) +
                       (s.freed_inside ? ", and " + std::to_string(s.freed_inside) + " false positives inside freed objects, off their base"
                                       : std::string()) +
                       "\n";
            if (!s.missed.empty())
                out += type + " missed (" + std::to_string(s.missed.size()) + "): " + addresses(s.missed, limit, false) + "\n";
            if (!s.spurious.empty())
                out += type + " spurious (" + std::to_string(s.spurious.size()) + "): " + addresses(s.spurious, limit, false) + "\n";
        }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);   // checked by cli_main (finish_stdout)
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return cli_main("dmeval", [&] { return run(argc, argv); });
}
