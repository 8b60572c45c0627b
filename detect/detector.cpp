// Detector: models + dump → objects (contract: detect/detect.hpp, "Detector").
#include "detect/detect.hpp"
#include "graph/paging.hpp"   // paging::kPage
#include "detect/fit.hpp"

#include "graph/layers.hpp"
#include "graph/memory_budget.hpp"
#include "graph/parallel_errors.hpp"

#include <cmath>
#include <limits>
#include <algorithm>
#include <iterator>
#include <bit>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace deepmem {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
// a × b, at most 2^64 − 1
uint64_t mul_saturating(uint64_t a, uint64_t b) { return b != 0 && a > ~uint64_t{0} / b ? ~uint64_t{0} : a * b; }
// `bytes` in pieces of `piece` bytes, the last one part-filled
uint64_t pieces(uint64_t bytes, uint64_t piece) { return bytes / piece + (bytes % piece != 0); }

// "max_segment 4096 vs 2048" for the first parameter where a and b differ, else empty.
std::string first_difference(const GraphParams& a, const GraphParams& b) {
    const std::pair<const char*, uint32_t GraphParams::*> fields[] = {
        {"word_size", &GraphParams::word_size},
        {"feature_bytes", &GraphParams::feature_bytes},
        {"max_segment", &GraphParams::max_segment},
        {"neighbour_distance", &GraphParams::neighbour_distance},
        {"pointer_target_back", &GraphParams::pointer_target_back}};
    for (const auto& [name, field] : fields)
        if (a.*field != b.*field)
            return std::string(name) + " " + std::to_string(a.*field) + " vs " + std::to_string(b.*field);
    return {};
}

std::string describe(const Model& m, const std::string& source) {
    return m.object_type + (source.empty() ? "" : " (" + source + ")");
}

}  // namespace

bool lacks_kernel_image(const MemoryGraph& graph) {
    const GraphBuildInfo& i = graph.info();
    if (!i.kernel_image_bytes) return false;   // unknown: 32-bit, PAE, a .dmg before version 6
    if (*i.kernel_image_bytes < kMinKernelImageBytes) return true;
    return i.kernel_banner && !i.kernel_banner->in_kernel_image();   // the window holds something else
}

float detection_threshold(const Model& model, const MemoryGraph& graph, std::optional<float> override) {
    if (override) return *override;
    return model.image_absent_threshold > 0 && lacks_kernel_image(graph) ? model.image_absent_threshold : model.threshold;
}

uint64_t inference_budget(const MemoryGraph& g) {
    const uint64_t bytes = g.array_bytes();
    const auto avail = available_memory();
    // at least 1 MiB: a budget of bytes runs every row alone (DEEPMEM_MEMORY_LIMIT=1: 457 k blocks,
    // past 2 minutes, attacker 17)
    return std::max<uint64_t>(uint64_t{1} << 20, std::min(bytes / 16, avail ? avail->bytes / 2 : bytes));
}

uint64_t whole_graph_ceiling(const MemoryGraph& g) {
    const auto avail = available_memory();
    return whole_graph_ceiling(g, avail ? std::optional<uint64_t>(avail->bytes) : std::nullopt);
}

uint64_t input_bytes(const MemoryGraph& g) {
    const uint64_t dump = g.info().dump_bytes, dmg = g.graph_file_bytes();
    if (dmg == 0) return g.dump_held_bytes() != 0 ? std::min(dump, g.dump_held_bytes()) : dump;
    const uint64_t most = mul_saturating(dmg, kDumpBytesPerDmgByte);
    return dump == 0 ? most : std::min(dump, most);
}

uint64_t whole_graph_ceiling(const MemoryGraph& g, std::optional<uint64_t> available) {
    const uint64_t dump = input_bytes(g);
    const uint64_t scaled = mul_saturating(dump, 16);
    // the whole process's: the graph and the rest of dmdetect beside the network (attacker 75: a
    // 44.6 MiB raw file ran its network whole in 1005 MiB, 1.26 GiB in all)
    const uint64_t beside = g.array_bytes() + DetectOptions::kBesideNetwork;
    const uint64_t total = std::max(DetectOptions::kWholeGraphCeiling, scaled);
    const uint64_t ceiling = total > beside ? total - beside : 0;
    return available ? std::min(ceiling, *available / 2) : ceiling;
}

uint64_t content_pages(const MemoryGraph& g) {
    uint64_t pages = 0, last = ~uint64_t{0};
    for (uint64_t v : g.vaddr())   // ascending
        if (v / paging::kPage != last) ++pages, last = v / paging::kPage;
    return pages;
}

namespace {

// counted_pages() of a graph with `content` content pages
uint64_t counted_of(const MemoryGraph& g, uint64_t content) {
    const GraphBuildInfo& info = g.info();
    uint64_t counted = content;
    if (const uint64_t file = input_bytes(g); file != 0) {   // else unknown
        const uint64_t file_pages = pieces(file, paging::kPage);   // ≤ 2^52: no overflow below
        counted = std::min(counted, file_pages * kContentPagesPerFilePage);
    }
    if (const uint64_t dmg = g.graph_file_bytes(); dmg != 0)   // one a 4 KiB page of a .dmg
        counted = std::min(counted, pieces(dmg, paging::kPage));
    if (const auto stored = info.stored_page_bytes)   // ≤ 2^64 - 2 (a .dmg stores it plus one)
        counted = std::min(counted, pieces(*stored, PhysicalLayer::kCountedPageBytes));
    return counted;
}

// network_work_cap() for `counted` counted pages
uint64_t cap_of(uint64_t counted, double per_page) {
    if (!(std::isfinite(per_page) && per_page >= 0))
        throw InputError("network work bound " + std::to_string(per_page) +
                         " (expected a finite count ≥ 0 of node-iterations per content page; 0 = none)");
    if (per_page == 0) return 0;
    const double cap = per_page * double(counted);
    return cap >= 0x1p63 ? uint64_t{1} << 63 : std::max<uint64_t>(1, uint64_t(cap));
}

}  // namespace

uint64_t counted_pages(const MemoryGraph& g) { return counted_of(g, content_pages(g)); }

uint64_t network_work_cap(const MemoryGraph& g, double per_page) { return cap_of(counted_pages(g), per_page); }

InferenceNet::Clock::time_point earlier_by(InferenceNet::Clock::time_point deadline, double seconds) {
    if (deadline == InferenceNet::Clock::time_point::max() || !(seconds > 0)) return deadline;
    return deadline - std::chrono::duration_cast<InferenceNet::Clock::duration>(std::chrono::duration<double>(std::min(seconds, 1e9)));
}

double default_time_limit(uint64_t file_bytes) {
    if (file_bytes <= kTimeLimitFileBytes) return kTimeLimitSeconds;
    return kTimeLimitSeconds + kTimeLimitPerMiB * double(file_bytes - kTimeLimitFileBytes) / double(uint64_t{1} << 20);
}

void Detector::add_model(const std::string& path) { add_model(Model::load(path), path); }   // load's errors name the file

void Detector::add_model(Model model, std::string source) {
    try {
        model.validate();
    } catch (const ModelError& e) {   // and so do validate()'s, when there is a source to name
        if (source.empty()) throw;
        throw e.naming(source);
    }
    model.drop_optimiser_state();
    std::vector<uint32_t> first;
    std::vector<Model> types = model.joint() ? model.type_models(&first) : std::vector<Model>{};
    if (!model.joint()) first = {1};
    for (size_t t = 0; t < first.size(); ++t) {
        const Model& m = model.joint() ? types[t] : model;
        for (const Entry& e : entries_) {
            if (e.model.object_type == m.object_type)
                throw InputError("two models for " + m.object_type + ": " + describe(e.model, e.source) + " and " +
                                 describe(m, source));
            if (std::string d = first_difference(e.model.graph, m.graph); !d.empty())
                throw InputError("models " + describe(e.model, e.source) + " and " + describe(m, source) +
                                 " were trained on different memory graphs: " + d);
        }
    }
    networks_.emplace_back(model.config, model.params);
    const bool joint = model.joint();
    if (!joint) types.push_back(std::move(model));   // the network keeps its weights (InferenceNet's copy)
    for (size_t t = 0; t < types.size(); ++t) {
        auto at = std::find_if(entries_.begin(), entries_.end(),
                               [&](const Entry& e) { return e.model.object_type > types[t].object_type; });
        const auto e = entries_.insert(at, Entry{std::move(types[t]), source, networks_.size() - 1, first[t], joint});
        e->trained_keys = e->model.key_nodes;
        e->trained_threshold = e->model.threshold;
        e->trained_image_absent = e->model.image_absent_threshold;
    }
}

void Detector::set_key_nodes(size_t i, std::vector<KeyNode> keys) {
    Model& m = entries_.at(i).model;
    if (keys.size() != m.key_nodes.size())
        throw InputError("model " + m.object_type + ": " + std::to_string(keys.size()) + " key nodes given for its " +
                         std::to_string(m.key_nodes.size()));
    Model copy = m;   // (its weights too: under a MiB)
    copy.key_nodes = std::move(keys);
    Model::validate_detection(copy);
    m.key_nodes = std::move(copy.key_nodes);
}

void Detector::scale_threshold(size_t i, double factor) {
    Model& m = entries_.at(i).model;
    if (!(factor > 0 && factor <= 1))
        throw InputError("model " + m.object_type + ": threshold factor " + std::to_string(factor) + " is not in (0, 1]");
    m.threshold = float(entries_[i].trained_threshold * factor);
    m.image_absent_threshold = float(entries_[i].trained_image_absent * factor);
}

void Detector::reset_to_trained() {
    for (Entry& e : entries_) {
        e.model.key_nodes = e.trained_keys;
        e.model.threshold = e.trained_threshold;
        e.model.image_absent_threshold = e.trained_image_absent;
    }
}

void Detector::keep_types(std::span<const std::string> types) {
    for (const std::string& t : types)
        if (std::none_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.model.object_type == t; })) {
            std::string have;
            for (const Entry& e : entries_) have += (have.empty() ? "" : ", ") + e.model.object_type;
            throw InputError("no model detects " + t + " (the models detect: " + (have.empty() ? "nothing" : have) + ")");
        }
    std::erase_if(entries_, [&](const Entry& e) { return std::find(types.begin(), types.end(), e.model.object_type) == types.end(); });
}

const GraphParams& Detector::graph_params() const {
    if (entries_.empty()) throw InputError("no model added to the detector");
    return entries_.front().model.graph;
}

namespace {

MemoryGraph build_graph_with(const std::string& dump_path, const GraphParams& params, const BuildOptions& opt) {
    auto phys = PhysicalLayer::open(dump_path, opt.format, opt.strict, opt.interrupt);
    if (opt.warn)
        for (const auto& w : phys->warnings()) opt.warn(w);
    if (opt.interrupt) opt.interrupt();
    auto layer = TranslationLayer::detect(*phys, opt.dtb, opt.paging, opt.interrupt);
    if (opt.warn)
        for (const auto& w : layer.warnings()) opt.warn(w);
    if (opt.interrupt) opt.interrupt();
    if (opt.estimate) opt.estimate(MemoryGraph::estimate(layer, params));
    MemoryGraph g = MemoryGraph::build(layer, params, opt.progress, opt.density_bound, opt.interrupt);
    g.set_dump_path(dump_path);
    refuse_empty_graph(g);
    return g;
}

}  // namespace

MemoryGraph Detector::build_graph(const std::string& dump_path, const BuildOptions& opt) const {
    return build_graph_with(dump_path, graph_params(), opt);
}

MemoryGraph Detector::open_graph(const std::string& path, const GraphParams& params, const BuildOptions& opt) {
    // Only regular files are read (a named pipe with no writer would block).
    if (std::error_code ec; std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
        throw InputError(path + " is not a regular file");
    if (!MemoryGraph::is_graph_file(path)) return build_graph_with(path, params, opt);
    MemoryGraph g = MemoryGraph::load(path);
    // What the layers said when the graph was built (a .dmg of version 4 keeps it).
    if (opt.warn)
        for (const auto& w : g.info().warnings) opt.warn(w);
    refuse_empty_graph(g);
    return g;
}

MemoryGraph Detector::open_graph(const std::string& path, const BuildOptions& opt) const {
    MemoryGraph g = open_graph(path, graph_params(), opt);
    if (MemoryGraph::is_graph_file(path)) check_graph(g);   // a dump's was built with them
    return g;
}

void Detector::check_graph(const MemoryGraph& graph) const {
    for (const Entry& e : entries_)
        if (std::string d = first_difference(graph.params(), e.model.graph); !d.empty())
            throw InputError("the memory graph was built with other parameters than model " +
                             describe(e.model, e.source) + ": " + d.replace(d.find(" vs "), 4, " (graph) vs ") +
                             " (model)");
}

bool Detector::scan(const MemoryGraph& graph, const std::function<bool(const Detection&)>& on_detection,
                    const DetectOptions& opt) {
    if (opt.threshold && !(std::isfinite(*opt.threshold) && *opt.threshold >= 0))
        throw InputError("detection threshold " + std::to_string(*opt.threshold) +
                         " (expected a finite score ≥ 0: scores are sums of voting weights)");
    check_graph(graph);
    const GraphInput input = graph_input(graph);
    const uint64_t budget = opt.memory_budget.value_or(inference_budget(graph));
    timings_.clear();
    agreements_.clear();
    best_scores_.clear();
    thresholds_.clear();
    not_run_.assign(entries_.size(), {});
    unmeasured_.assign(entries_.size(), {});
    ran_whole_.assign(entries_.size(), {});
    const uint64_t ceiling = opt.whole_graph_ceiling.value_or(whole_graph_ceiling(graph));
    // why the blocks gave way: locality is suspect only under the default budget (helper 67: a budget
    // of 1 byte on a real dump was blamed on "a crafted dump?")
    const std::string cause = opt.memory_budget ? "" : ", as where pointers lack locality (a crafted dump?)";
    for (const Entry& e : entries_) thresholds_.push_back(detection_threshold(e.model, graph, opt.threshold));
    // Each entry's rows and their classes (its own: a joint class of another type is its class 0),
    // made when its network has run. A joint network keeps its rows' union and their joint classes, and
    // each type's rows as a bit per node (N/8 bytes a type, at most Model::kMaxParts), until the type votes.
    std::vector<std::vector<uint32_t>> rows(entries_.size()), classes(entries_.size());
    std::vector<std::vector<uint64_t>> own(entries_.size());
    // fit.hpp Sample: the sample each model's agreement was measured on
    std::vector<AgreementSample> samples(entries_.size());
    // The agreement rows `all` (ascending, ⊇ `voting`) to run: `voting` and, when the others pass the
    // budget, those of them near the sample (set in `sample`).
    auto sample_rows = [&](const Model& model, std::vector<uint32_t> all, std::span<const uint32_t> voting,
                           AgreementSample& sample) {
        sample = agreement_sample(model, all.size() - voting.size(), opt.agreement_rows_budget);
        if (sample.chunk == 0) return all;
        auto vaddr = graph.vaddr();
        std::vector<uint32_t> out;
        for (size_t a = 0, v = 0; a < all.size(); ++a) {
            while (v < voting.size() && voting[v] < all[a]) ++v;
            if ((v < voting.size() && voting[v] == all[a]) || sample.runs(vaddr[all[a]])) out.push_back(all[a]);
        }
        return out;
    };
    // per joint network: the union of its types' rows (ascending) and their joint classes, kept until its
    // last type has voted (another network's types may vote in between: types vote in name order)
    std::vector<std::vector<uint32_t>> union_rows(networks_.size()), joint_classes(networks_.size());
    std::vector<size_t> to_vote(networks_.size(), 0);
    for (const Entry& e : entries_) ++to_vote[e.network];
    std::vector<char> ran(networks_.size(), 0);
    // DetectOptions::network_work: what each network's runs may still do (0 = no cap)
    // (the graph's pages counted once: each count is a pass over its nodes)
    const uint64_t content = content_pages(graph), counted = counted_of(graph, content);
    const uint64_t cap = cap_of(counted, opt.network_work);
    std::vector<uint64_t> work_left(networks_.size(), cap);
    // ... and what all of them together may still do (DetectOptions::scan_work_factor)
    if (!(std::isfinite(opt.scan_work_factor) && opt.scan_work_factor >= 0))
        throw InputError("scan work factor " + std::to_string(opt.scan_work_factor) + " (expected a finite number ≥ 0)");
    const double scan_per_page = std::min(opt.network_work * opt.scan_work_factor, std::numeric_limits<double>::max());
    const uint64_t scan_cap = cap_of(counted, scan_per_page);
    uint64_t scan_left = scan_cap;
    counted_ = counted;
    // why a type's last refusal was: the work limit (kMemory, --network-memory lifts it), the work bound
    // (kBound: ModelTiming::capped) or the deadline (kTime: ModelTiming::timed_out)
    enum Refusal : char { kMemory, kBound, kTime };
    std::vector<Refusal> refusal(entries_.size(), kMemory);
    // why a run was refused: past its network's part of the bound (`left` of `cap`), or past what
    // the networks before it left of the scan's (`scan`: `left` of `scan_cap`)
    auto capped_why = [&](const WorkLimitError& e, uint64_t left, bool scan) {
        auto number = [](const char* format, double v) {
            char text[64];
            std::snprintf(text, sizeof text, format, v);
            return std::string(text);
        };
        const uint64_t of = scan ? scan_cap : cap;
        const std::string pages =
            " per counted page (its " + std::to_string(content) + " pages holding segments" +
            (counted < content ? ", counted as " + std::to_string(counted) + ": at most one per " +
                                     std::to_string(PhysicalLayer::kCountedPageBytes) +
                                     " bytes of its file, or of what a compressed file's pages take)"
                               : ")");
        const double per_page = std::ceil(double(e.work + (of - left)) / double(std::max<uint64_t>(1, counted)));
        const std::string needs = number("%.0f", per_page);
        // what lifts it (newcomer 82: the warning said neither the value nor the cost): the network
        // work bound that covers this need, the all-models part being scan_work_factor times it
        const double lift = std::ceil(scan ? per_page / std::max(opt.scan_work_factor, 1.0) : per_page);
        const std::string run_anyway = "; --network-work " + number("%.0f", lift) + " (0: no bound) runs it, at about " +
                                       number("%.1f", double(e.work) / double(std::max<uint64_t>(1, left))) +
                                       " times the work this bound left it";
        if (scan)
            return std::string(e.what()) + " (" + std::to_string(of - left) + " done before it in this scan)" +
                   ": the network work bound of this dump for all models together, " +
                   number("%g", scan_per_page) + pages + "; they need about " + needs +
                   " per counted page, real kernels' graphs at most " + std::to_string(uint32_t(kRealKernelScanWork)) +
                   ": a crafted dump?" + run_anyway;
        return std::string(e.what()) + (left < of ? " (" + std::to_string(of - left) + " done before it)" : "") +
               ": the network work bound of this dump, " + number("%g", opt.network_work) + pages + "; it needs about " +
               needs + " per counted page, real kernels' graphs at most " + std::to_string(uint32_t(kRealKernelNetworkWork)) +
               ": a crafted dump?" + run_anyway;
    };
    // Runs a network on rows `on`; "" or, past the work limit, the work bound or the deadline
    // (`refused_by`: which), why it gave nothing. `whole`: why it ran the whole graph at once instead,
    // within the ceiling. Every attempt's work, refused or not, is charged to the network's bound
    // (ModelTiming::work).
    // opt.deadline, earlier by opt.seconds_per_detection for each detection made so far
    uint64_t made = 0;
    auto deadline = [&] { return earlier_by(opt.deadline, double(made) * opt.seconds_per_detection); };
    auto run_network = [&](size_t network, std::span<const uint32_t> on, std::vector<uint32_t>& out,
                           ModelTiming& timing, std::string& whole, Refusal& refused_by) -> std::string {
        InferenceNet& net = networks_[network];
        net.set_memory_budget(budget);
        net.set_work_limit(opt.work_limit);
        net.set_deadline(deadline());
        std::string refused;
        refused_by = kMemory;
        auto charge = [&] {
            uint64_t done = 0;
            for (uint64_t n : net.last_frontier()) done += n;
            timing.work += done;
            work_left[network] -= std::min(work_left[network], done);
            scan_left -= std::min(scan_left, done);
        };
        auto refuse_capped = [&](const WorkLimitError& e, uint64_t left, bool scan) {   // no memory budget lets it run
            if (e.timed_out) {
                refused = e.what();
                refused_by = kTime;
            } else {
                refused = capped_why(e, left, scan);
                timing.needed = timing.work + e.work;
                refused_by = kBound;
            }
            whole.clear();
            out.clear();
        };
        auto attempt = [&] {   // within what the network has left of the bound
            const bool scan = scan_cap && scan_left < work_left[network];   // the scan's bound binds first (0: none)
            const uint64_t left = scan ? scan_left : work_left[network];
            net.set_work_cap(cap ? std::max<uint64_t>(1, left) : 0);
            try {
                net.run(input, on, out);
            } catch (const WorkLimitError& e) {
                charge();
                if (!e.capped && !e.timed_out) throw;
                refuse_capped(e, left, scan);
                return false;
            }
            charge();
            return true;
        };
        try {
            attempt();
        } catch (const WorkLimitError& e) {   // the relative work limit's
            const std::string why = e.what() + cause;
            if (e.whole_bytes <= ceiling) {   // at most T·N node-iterations
                net.release();
                net.set_memory_budget(e.whole_bytes);   // the rows' frontier in one block, or the whole graph
                net.set_work_limit(0);
                if (attempt()) whole = why + "; the whole graph ran at once instead, in " + format_bytes(e.whole_bytes);
            } else {
                refused = why + "; within a memory budget of " + format_bytes(e.whole_bytes) + " (" +
                          format_bytes(budget) + " now, " + format_bytes(ceiling) +
                          " at most past the limit) the whole graph runs at once";
                out.clear();
            }
        }
        if (refused.empty()) {   // else the counts are another run's
            timing.network_rows = on.size();
            timing.frontier = net.last_frontier();
            timing.blocks = net.last_blocks();
            timing.block_bytes = net.last_block_bytes();
        }
        net.release();   // the next network's run starts from nothing: peak memory = the largest one's
        return_free_heap();
        return refused;
    };
    for (size_t i = 0; i < entries_.size(); ++i) {
        Entry& e = entries_[i];
        if (opt.progress) opt.progress(i, entries_.size(), e.model.object_type);
        ModelTiming timing{e.model.object_type, 0, 0, {}, 0, 0, 0, 0, 0};
        auto t0 = Clock::now();
        if (!ran[e.network]) {
            ran[e.network] = 1;
            std::vector<size_t> members;
            for (size_t j = i; j < entries_.size(); ++j)
                if (entries_[j].network == e.network) members.push_back(j);
            const bool single = !e.joint_part;   // else its classes are mapped, even for one type kept (keep_types)
            std::vector<uint32_t>& all = union_rows[e.network];
            // fit.hpp Rows: the agreement rows when measuring (a single per-build-keys model: its voting
            // rows, and the others only if it finds nothing, below). Past the work limit, the voting rows:
            // the same detections, the votes measured on them alone (unmeasured_); past it again, nothing
            // (not_run_).
            std::string refused;
            for (const bool measure : {opt.measure_agreement, false}) {
                const bool agreement = measure && !(single && keys_per_build(e.model));   // every member's
                auto rows_of = [&](size_t j) {
                    return agreement ? agreement_rows(graph, entries_[j].model, thresholds_[j], deadline())
                                     : voting_rows(graph, entries_[j].model, thresholds_[j], nullptr, true, deadline());
                };
                std::vector<uint64_t> any;   // a joint network's: the union of its types' rows, a bit per node
                all.clear();
                try {   // (past the deadline: not run, as its network would be)
                    if (single) {
                        rows[i] = rows_of(i);
                        if (agreement && rows[i].size() > opt.agreement_rows_budget)   // fit.hpp Sample
                            rows[i] = sample_rows(e.model, std::move(rows[i]),
                                                  voting_rows(graph, e.model, thresholds_[i], nullptr, true, deadline()), samples[i]);
                    } else {   // the types' rows at once, each thread one type's row list at a time (attacker 20:
                               // 256 types' lists held 1.2 GB), each kept as a bit per node
                        ParallelErrors errors;
#pragma omp parallel for schedule(dynamic, 1)
                        for (size_t m = 0; m < members.size(); ++m)
                            errors.run([&] {
                                const size_t j = members[m];
                                const std::vector<uint32_t> r = rows_of(j);
                                own[j].assign((graph.node_count() + 63) / 64, 0);
                                for (uint32_t n : r) own[j][n / 64] |= uint64_t{1} << (n % 64);
                            });
                        errors.rethrow();
                        any.assign((graph.node_count() + 63) / 64, 0);
                        for (size_t j : members)
                            for (size_t w = 0; w < any.size(); ++w) any[w] |= own[j][w];
                    }
                } catch (const WorkLimitError& x) {
                    if (!x.timed_out) throw;
                    refused = x.what();
                    for (size_t j : members) refusal[j] = kTime;
                    timing.rows_seconds += since(t0);
                    break;
                }
                for (size_t w = 0; w < any.size(); ++w)
                    for (uint64_t bits = any[w]; bits; bits &= bits - 1)
                        all.push_back(uint32_t(w * 64 + uint64_t(std::countr_zero(bits))));
                timing.rows_seconds += since(t0);
                t0 = Clock::now();
                std::string whole;
                Refusal refused_by = kMemory;
                refused = run_network(e.network, single ? rows[i] : all, single ? classes[i] : joint_classes[e.network],
                                      timing, whole, refused_by);
                if (!whole.empty())
                    for (size_t j : members) ran_whole_[j] = whole;
                if (!refused.empty())   // the last refusal's kind: the unmeasured one's, or the not-run one's
                    for (size_t j : members) refusal[j] = refused_by;
                timing.forward += since(t0);
                t0 = Clock::now();
                if (refused.empty() || !agreement || refused_by == kTime) break;   // (past the deadline: no retry)
                samples[i] = {};
                for (size_t j : members) unmeasured_[j] = refused;
            }
            if (!refused.empty()) {   // none of the network's types votes
                for (size_t j : members) not_run_[j] = refused, unmeasured_[j].clear();
                if (single) rows[i].clear();
                else all.clear();
                for (size_t j : members) own[j] = {};
            }
        }
        if (!not_run_[i].empty()) {
            if (--to_vote[e.network] == 0) union_rows[e.network] = {}, joint_classes[e.network] = {};
            rows[i] = {};
            classes[i] = {};
            best_scores_.push_back(std::nullopt);
            if (opt.measure_agreement) agreements_.push_back(VoteAgreement{});
            timing.not_run = true;
            timing.capped = refusal[i] == kBound;
            timing.timed_out = refusal[i] == kTime;
            timings_.push_back(std::move(timing));
            continue;
        }
        if (!own[i].empty()) {   // a joint network's type: its rows and own classes from the union's
            const uint32_t first = e.first_class, keys = uint32_t(e.model.key_nodes.size());
            const std::vector<uint32_t>& all = union_rows[e.network];
            const std::vector<uint32_t>& joint = joint_classes[e.network];
            for (size_t at = 0; at < all.size(); ++at)
                if (own[i][all[at] / 64] >> (all[at] % 64) & 1) {
                    rows[i].push_back(all[at]);
                    classes[i].push_back(Model::type_class(joint[at], first, keys));
                }
            own[i] = {};
        }
        if (--to_vote[e.network] == 0) {   // the network's last type: its union is done with
            union_rows[e.network] = {};
            joint_classes[e.network] = {};
        }
        t0 = Clock::now();
        timing.rows = rows[i].size();
        std::vector<Candidate> candidates = vote(graph, e.model, rows[i], classes[i]);
        const auto found = select(graph, e.model, candidates, thresholds_[i]);
        if (opt.measure_agreement && found.empty() && !e.joint_part && keys_per_build(e.model)) {
            // fit.hpp Rows: found nothing on its voting rows; the diagnosis needs every competing base
            // (past the budget: Sample). The agreement rows hold the voting rows (both ascending), whose
            // classes are known: the network runs on the others only (on a crafted dump whose every
            // node voted it ran twice over all 2 M nodes, 24 s each: helper 66).
            const size_t voting = timing.network_rows;
            const auto t1 = Clock::now();
            std::vector<uint32_t> agreeing;
            Refusal refused_by = kMemory;
            try {
                agreeing = sample_rows(e.model, agreement_rows(graph, e.model, thresholds_[i], deadline()), rows[i], samples[i]);
            } catch (const WorkLimitError& x) {   // the deadline: no agreement rows, as past the bound
                if (!x.timed_out) throw;
                unmeasured_[i] = x.what();
                refused_by = kTime;
            }
            std::vector<uint32_t> fresh, fresh_classes;
            std::set_difference(agreeing.begin(), agreeing.end(), rows[i].begin(), rows[i].end(), std::back_inserter(fresh));
            std::string whole;
            timing.network_rows = 0;   // run_network sets it when the network runs
            if (!fresh.empty()) unmeasured_[i] = run_network(e.network, fresh, fresh_classes, timing, whole, refused_by);
            if (!unmeasured_[i].empty()) refusal[i] = refused_by;
            if (!whole.empty()) ran_whole_[i] = whole;
            if (!unmeasured_[i].empty()) {   // the voting rows' votes are all there is
                fresh.clear();
                fresh_classes.clear();
                samples[i] = {};
            }
            std::vector<uint32_t> merged_rows, merged_classes;   // rows[i] ∪ fresh, ascending
            merged_rows.reserve(rows[i].size() + fresh.size());
            merged_classes.reserve(rows[i].size() + fresh.size());
            for (size_t v = 0, f = 0; v < rows[i].size() || f < fresh.size();) {
                const bool take_fresh = v == rows[i].size() || (f < fresh.size() && fresh[f] < rows[i][v]);
                merged_rows.push_back(take_fresh ? fresh[f] : rows[i][v]);
                merged_classes.push_back(take_fresh ? fresh_classes[f++] : classes[i][v++]);
            }
            rows[i] = std::move(merged_rows);
            classes[i] = std::move(merged_classes);
            timing.network_rows += voting;   // both runs
            timing.forward += since(t1);
            timing.rows = rows[i].size();   // the rows that voted
            candidates = vote(graph, e.model, rows[i], classes[i]);
        }
        std::optional<float> best;
        for (const Candidate& c : candidates) best = std::max(best.value_or(c.score), c.score);
        best_scores_.push_back(best);
        if (opt.measure_agreement)
            agreements_.push_back(
                vote_agreement(e.model, votes_of(graph, e.model, rows[i], classes[i]), thresholds_[i], samples[i]));
        rows[i] = {};
        classes[i] = {};
        timing.vote = since(t0);
        timing.unmeasured = !unmeasured_[i].empty();
        timing.capped = timing.unmeasured && refusal[i] == kBound;
        timing.timed_out = timing.unmeasured && refusal[i] == kTime;
        timings_.push_back(std::move(timing));
        made += found.size();
        for (const Detection& d : found)   // select() keeps the candidates' vaddr order
            if (!on_detection(d)) return false;
    }
    return true;
}

std::vector<Detection> Detector::detect(const MemoryGraph& graph, const DetectOptions& opt) {
    std::vector<Detection> out;
    scan(graph, [&](const Detection& d) { out.push_back(d); return true; }, opt);
    return out;
}

}  // namespace deepmem
