// bench-detect DUMP --weights M.cereal [--weights M2.cereal …]: how long detection takes after the
// graph, and where the time goes.
//
// Prints the graph build (or .dmg load) time, the detection time for the first model alone and for
// all models (each the best of --repeat runs), per model the voting rows, the nodes computed per GNN
// iteration (the pruned frontier), forward and vote seconds, the whole-graph forward of the first
// model for comparison (the largest probability difference on its rows of any key-node length, and
// whether its detections equal the pruned ones), all models within the memory budget of
// inference_budget() (detect.hpp) and unbounded, alternating (medians of --repeat, each run's peak
// RSS, graph included, and its ratio to the graph's bytes, MemoryGraph::array_bytes: issue 12's
// target is ≤ 1.5), and the process's peak RSS.
// With --joint J.cereal (a joint model, engine.hpp Model::parts: one network for several types,
// issue 12 item 1): the first model alone, every --weights model and the joint model, alternating
// (medians of --repeat, default budget, peak RSS of each run), and the ratios of the per-type and the
// joint paths to the first model's time (issue 12's target: the joint path ≤ 1.3× one type).
// Threads: --threads or OMP_NUM_THREADS.
#include "detect/detect.hpp"
#include "graph/layers.hpp"
#include "graph/memory_budget.hpp"

#include "tools/cli.hpp"

#include <boost/program_options.hpp>

#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double peak_rss_mib() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_maxrss) / 1024.0;   // KiB on Linux
}

// VmHWM of /proc/self/status in MiB after `reset` restarted it at the current RSS (clear_refs 5,
// Linux ≥ 4.0); nullopt where either is unavailable.
bool reset_peak_rss() {
    std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    const bool ok = std::fputs("5", f) >= 0;
    return std::fclose(f) == 0 && ok;
}
std::optional<double> window_peak_rss_mib() {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return std::nullopt;
    char line[256];
    std::optional<double> kib;
    while (std::fgets(line, sizeof line, f))
        if (unsigned long v = 0; std::sscanf(line, "VmHWM: %lu kB", &v) == 1) kib = double(v);
    std::fclose(f);
    if (!kib) return std::nullopt;
    return *kib / 1024.0;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Best of `repeat` detect() runs; the timings of that run.
double best_detect(Detector& d, const MemoryGraph& g, const DetectOptions& opt, unsigned repeat,
                   std::vector<ModelTiming>& timings, size_t& found) {
    double best = 1e300;
    for (unsigned r = 0; r < repeat; ++r) {
        auto t0 = Clock::now();
        found = d.detect(g, opt).size();
        double s = since(t0);
        if (s < best) {
            best = s;
            timings = d.last_timings();
        }
    }
    return best;
}

// `pages`: counted_pages() of the graph, for each network's work per page (DetectOptions::network_work)
void print_timings(const std::vector<ModelTiming>& timings, uint64_t pages) {
    for (const ModelTiming& t : timings) {
        std::string frontier;
        for (uint64_t n : t.frontier) frontier += (frontier.empty() ? "" : "/") + std::to_string(n);
        const char* limit = t.capped ? "work bound" : "work limit";
        std::printf("  %-12s rows %8llu (%.3f s)  network rows %8llu  mu(t) nodes %-26s forward %.3f s  vote %.3f s  blocks %zu "
                    "(largest %.1f MiB)  work %.1f/page%s%s\n",
                    t.type.c_str(), static_cast<unsigned long long>(t.rows), t.rows_seconds,
                    static_cast<unsigned long long>(t.network_rows), frontier.c_str(), t.forward, t.vote, t.blocks,
                    double(t.block_bytes) / (1 << 20), pages ? double(t.work) / double(pages) : 0.0,
                    t.not_run ? "  NOT RUN: " : t.unmeasured ? "  agreement rows not run: " : "",
                    t.not_run || t.unmeasured ? limit : "");
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        po::options_description o("usage: bench-detect DUMP --weights M.cereal [--weights M2.cereal …]");
        o.add_options()("help,h", "this text")("weights,w", po::value<std::vector<std::string>>()->required(),
                                               "model file (repeatable)")(
            "threads", po::value<Whole<uint32_t>>(), "OpenMP threads (default OMP_NUM_THREADS)")(
            "repeat", po::value<unsigned>()->default_value(3), "detection runs; the best is reported")(
            "threshold", po::value<float>(), "override every model's threshold (pruning depends on it)")(
            "work-limit", po::value<double>(), "a network run in blocks may do this many times the whole graph's work "
                                               "(detect.hpp DetectOptions::work_limit; 0 = none)")(
            "budget-divisors", po::value<std::string>(),
            "also run all types within the graph's bytes / D for each D of this comma list (e.g. 2,8), "
            "alternating with the default budget and unbounded")(
            "agreement-budgets", po::value<std::string>(),
            "also run the fit check with each of these agreement-row budgets (comma list of row counts; "
            "detect.hpp DetectOptions::agreement_rows_budget, detect/fit.hpp Sample)")(
            "network-work", po::value<double>(),
            "node-iterations each network may do per content page (detect.hpp DetectOptions::network_work; 0 = none)")(
            "joint", po::value<std::string>(),
            "a joint model (several types, one network): timed beside the first model alone and every --weights model")(
            "dump", po::value<std::string>()->required(), "raw/ELF/LiME dump or .dmg");
        po::positional_options_description pos;
        pos.add("dump", 1);
        po::variables_map vm;
        po::store(po::command_line_parser(argc, argv).options(o).positional(pos).run(), vm);
        if (vm.count("help")) {
            std::cout << o;
            return 0;
        }
        po::notify(vm);
        if (auto t = whole_option<uint32_t>(vm, "threads")) set_thread_count(*t, "--threads");
        const unsigned repeat = std::max(1u, vm["repeat"].as<unsigned>());
        const auto weights = vm["weights"].as<std::vector<std::string>>();
        const std::string dump = vm["dump"].as<std::string>();
        DetectOptions opt;
        if (vm.count("threshold")) opt.threshold = vm["threshold"].as<float>();
        if (vm.count("work-limit")) {
            opt.work_limit = vm["work-limit"].as<double>();
            if (!(opt.work_limit >= 0 && std::isfinite(opt.work_limit))) throw po::error("--work-limit: a finite number ≥ 0");
        }
        if (vm.count("network-work")) opt.network_work = vm["network-work"].as<double>();   // detect() checks it

        Detector all;
        for (const auto& w : weights) all.add_model(w);
        Detector first;
        first.add_model(weights.front());
        std::printf("dump            %s\nthreads         %d\nmodels          %zu (%zu types)\n", dump.c_str(), omp_get_max_threads(),
                    weights.size(), all.model_count());

        auto t0 = Clock::now();
        MemoryGraph g = all.open_graph(dump);
        const double graph_mib = double(g.array_bytes()) / double(1 << 20);
        const double graph_seconds = since(t0);
        const uint64_t pages = counted_pages(g);   // what the network work bound counts
        std::printf("graph           %.3f s (%u nodes, %.1f MiB, %llu content pages, %llu counted)\n", graph_seconds,
                    g.node_count(), graph_mib, static_cast<unsigned long long>(content_pages(g)),
                    static_cast<unsigned long long>(pages));

        std::vector<ModelTiming> timings;
        size_t found = 0;
        double one = best_detect(first, g, opt, repeat, timings, found);
        std::printf("detect 1 model  %.3f s (%s, %zu objects)\n", one, first.model(0).object_type.c_str(), found);
        print_timings(timings, pages);
        double every = best_detect(all, g, opt, repeat, timings, found);
        std::printf("detect %zu types  %.3f s (%zu objects)\n", all.model_count(), every, found);
        print_timings(timings, pages);

        // All types within the memory budget (the default, inference_budget()), the same with the fit
        // check's vote agreement measured (what dmdetect runs: detect/fit.hpp Rows), within graph bytes / D
        // for each --budget-divisors D, and unbounded, alternating, medians of --repeat; peak RSS of each
        // run over the RSS before it (graph included).
        {
            struct Row { std::string name; uint64_t budget; bool fit_check; std::optional<uint64_t> agreement_rows = {}; };
            std::vector<Row> budgets{{"budget " + format_bytes(inference_budget(g)), inference_budget(g), false},
                                     {"budget " + format_bytes(inference_budget(g)) + ", fit check", inference_budget(g), true}};
            // a comma list option's items, empty ones kept (each list below refuses them)
            auto items = [&](const char* key) {
                std::vector<std::string> out;
                std::stringstream list(vm[key].as<std::string>());
                for (std::string d; std::getline(list, d, ',');) out.push_back(d);
                return out;
            };
            if (vm.count("agreement-budgets")) {
                for (const std::string& d : items("agreement-budgets")) {
                    if (d.empty() || d.size() > 10 || d.find_first_not_of("0123456789") != std::string::npos)
                        throw po::error("--agreement-budgets: '" + d + "' is not a whole number of rows");
                    budgets.push_back({"budget " + format_bytes(inference_budget(g)) + ", fit check, agreement rows " + d,
                                       inference_budget(g), true, std::stoull(d)});
                }
            }
            if (vm.count("budget-divisors")) {
                for (const std::string& d : items("budget-divisors")) {
                    if (d.empty() || d.size() > 6 || d.find_first_not_of("0123456789") != std::string::npos ||
                        std::stoul(d) == 0)
                        throw po::error("--budget-divisors: '" + d + "' is not a whole number from 1 to 999999");
                    const uint64_t div = std::stoul(d);
                    const uint64_t b = std::max<uint64_t>(1, g.array_bytes() / div);
                    budgets.push_back({"budget 1/" + d + " " + format_bytes(b), b, false});
                }
            }
            budgets.push_back({"unbounded", 0, false});
            const size_t B = budgets.size();
            std::vector<std::vector<double>> secs(B), peaks(B);
            std::vector<std::vector<ModelTiming>> last(B);
            std::vector<size_t> objects(B);
            const bool windows = reset_peak_rss();
            for (unsigned r = 0; r < repeat; ++r)
                for (size_t i = 0; i < B; ++i) {
                    DetectOptions o = opt;
                    o.memory_budget = budgets[i].budget;
                    o.measure_agreement = budgets[i].fit_check;
                    if (budgets[i].agreement_rows) o.agreement_rows_budget = *budgets[i].agreement_rows;
                    reset_peak_rss();
                    t0 = Clock::now();
                    objects[i] = all.detect(g, o).size();
                    secs[i].push_back(since(t0));
                    last[i] = all.last_timings();
                    if (auto p = window_peak_rss_mib()) peaks[i].push_back(*p);
                }
            for (size_t i = 0; i < B; ++i) {
                std::printf("detect %zu types, %s  median %.3f s (%zu objects)", all.model_count(), budgets[i].name.c_str(),
                            median(secs[i]), objects[i]);
                if (windows && !peaks[i].empty())
                    std::printf("  peak RSS %.0f MiB (%.2f× the graph)", median(peaks[i]), median(peaks[i]) / graph_mib);
                std::printf("\n");
                print_timings(last[i], pages);
            }
            std::printf("bounded/unbounded time %.2f\n", median(secs[0]) / median(secs[B - 1]));
        }

        if (vm.count("joint")) {   // one type, every type apart, every type in one network: alternating
            Detector joint;
            joint.add_model(vm["joint"].as<std::string>());
            if (joint.model_count() < 2 || !joint.is_joint_part(0))
                throw po::error("--joint " + vm["joint"].as<std::string>() + " is not a joint model (several types, one network)");
            for (size_t i = 0; i < std::max(joint.model_count(), all.model_count()); ++i)
                if (i >= joint.model_count() || i >= all.model_count() || joint.model(i).object_type != all.model(i).object_type) {
                    std::printf("note            the joint model's types differ from the --weights models': ratios compare "
                                "different work\n");
                    break;
                }
            const std::pair<const char*, Detector*> paths[] = {{"first model", &first}, {"--weights models", &all}, {"joint model", &joint}};
            std::vector<std::vector<double>> secs(3), peaks(3);
            std::vector<size_t> objects(3);
            std::vector<std::vector<ModelTiming>> last(3);
            for (unsigned r = 0; r < repeat; ++r)
                for (size_t i = 0; i < 3; ++i) {
                    reset_peak_rss();
                    t0 = Clock::now();
                    objects[i] = paths[i].second->detect(g, opt).size();
                    secs[i].push_back(since(t0));
                    last[i] = paths[i].second->last_timings();
                    if (auto p = window_peak_rss_mib()) peaks[i].push_back(*p);
                }
            for (size_t i = 0; i < 3; ++i) {
                std::printf("%-16s (%zu type%s)  median %.3f s (%zu objects)", paths[i].first, paths[i].second->model_count(),
                            paths[i].second->model_count() == 1 ? "" : "s",
                            median(secs[i]), objects[i]);
                if (!peaks[i].empty())
                    std::printf("  peak RSS %.0f MiB (%.2f× the graph)", median(peaks[i]), median(peaks[i]) / graph_mib);
                std::printf("\n");
                print_timings(last[i], pages);
            }
            std::printf("--weights/first %.2f  joint/first %.2f  joint/--weights %.2f  (a joint model's network runs once: its "
                        "rows' time and forward are its first type's)\n",
                        median(secs[1]) / median(secs[0]), median(secs[2]) / median(secs[0]), median(secs[2]) / median(secs[1]));
        }

        // The same first model over every node (no pruning), and how far the pruned run is from it.
        const Model& m = first.model(0);
        if (first.is_joint_part(0)) {   // its network is not this model's
            std::printf("full forward    (not measured: the first model is joint)\npeak RSS        %.0f MiB\n", peak_rss_mib());
            return 0;
        }
        InferenceNet net(m.config, m.params);
        const GraphInput input = graph_input(g);
        Mat<float> full, pruned;
        double best_full = 1e300;
        for (unsigned r = 0; r < repeat; ++r) {
            t0 = Clock::now();
            net.run(input, full);
            best_full = std::min(best_full, since(t0));
        }
        const auto rows = voting_rows(g, m);
        net.run(input, rows, pruned);
        float diff = 0;
        for (size_t i = 0; i < rows.size(); ++i)
            diff = std::max(diff, (full.row(Eigen::Index(rows[i])) - pruned.row(Eigen::Index(i))).cwiseAbs().maxCoeff());
        const float threshold = opt.threshold.value_or(m.threshold);
        const bool same = select(g, m, vote(g, m, full), threshold) == first.detect(g, opt);
        std::printf("full forward    %.3f s (%s over all %u nodes; pruned/full max |Δp| %.2g on %zu rows; "
                    "detections %s)\n", best_full, m.object_type.c_str(), g.node_count(), double(diff), rows.size(),
                    !first.last_not_run().at(0).empty() ? "not compared: the pruned run is past the work limit"
                    : same                                ? "identical"
                                                          : "DIFFER");
        std::printf("peak RSS        %.0f MiB\n", peak_rss_mib());
        return 0;
    } catch (const po::error& e) {
        std::fprintf(stderr, "bench-detect: error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-detect: error: %s\n", e.what());
        return 1;
    }
}
