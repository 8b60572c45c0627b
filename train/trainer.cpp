// The training loop, validation and checkpoints (contract: train/trainer.hpp).
#include "train/trainer.hpp"

#include "detect/fit.hpp"
#include "graph/file_io.hpp"
#include "graph/layers.hpp"
#include "graph/memory_budget.hpp"
#include "train/kernel_from_dump.hpp"
#include "train/key_anchors.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <charconv>
#include <cstring>
#include <exception>
#include <filesystem>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

namespace deepmem {

// ---- configuration --------------------------------------------------------------------------
void TrainConfig::validate() const {
    auto need = [](bool ok, const char* key, const std::string& what) {
        if (!ok) throw InputError(std::string("config key ") + key + ": " + what);
    };
    need(!manifest.empty(), "data.manifest", "missing (path of a dataset manifest.json)");
    need(!object_type.empty(), "data.type", "missing (e.g. task_struct)");
    need(split_by == "dump" || split_by == "build", "data.split_by", "must be dump or build");
    need(freed_off_base == "ignore" || freed_off_base == "negative", "data.freed_off_base", "must be ignore or negative");
    need((split_by == "build") == !holdout_build.empty(), "data.holdout_build",
         split_by == "build" ? "missing (the build(s) to leave out, e.g. 6.12 or 5.10.0-46-amd64)"
                             : "needs data.split_by = build");
    need(!output.empty(), "run.output", "missing (path of the model file to write)");
    need(key_nodes >= 1 && key_nodes <= 4096, "keys.count", "must be in 1..4096");
    need(min_frequency > 0 && min_frequency <= 1, "keys.min_frequency", "must be in (0, 1]");
    need(key_frequency == "overall" || key_frequency == "per_build", "keys.frequency", "must be overall or per_build");
    need(min_per_build == 0 || key_frequency == "per_build", "keys.min_per_build", "needs keys.frequency = per_build");
    need(min_per_build <= 4096, "keys.min_per_build", "must be in 0..4096");
    need(embed_width >= 1 && embed_width <= ModelConfig::kMaxWidth, "model.embed_width", "must be in 1..4096");
    need(iterations >= 1 && iterations <= ModelConfig::kMaxIterations, "model.iterations", "must be in 1..64");
    need(sigma_layers >= 1 && sigma_layers <= ModelConfig::kMaxLayers, "model.sigma_layers", "must be in 1..16");
    need(classifier_width >= 1 && classifier_width <= ModelConfig::kMaxWidth, "model.classifier_width", "must be in 1..4096");
    need(keep_prob > 0 && keep_prob <= 1, "model.keep_prob", "must be in (0, 1]");
    need(learning_rate > 0 && std::isfinite(learning_rate), "optimiser.learning_rate", "must be > 0");
    need(weight_decay >= 0 && std::isfinite(weight_decay), "optimiser.weight_decay", "must be ≥ 0");
    need(schedule == "constant" || schedule == "cosine", "optimiser.schedule", "must be constant or cosine");
    need(schedule_steps <= kMaxSteps && (schedule_steps == 0 || schedule_steps >= steps), "optimiser.schedule_steps",
         "must be 0 (= run.steps) or in run.steps..1000000000: the horizon the run is stopped before or at");
    need(schedule_steps == 0 || schedule == "cosine", "optimiser.schedule_steps", "needs optimiser.schedule = cosine");
    need(clip_norm >= 0 && std::isfinite(clip_norm), "optimiser.clip_norm", "must be ≥ 0 (0 = off)");
    need(positives >= 1 && positives <= (1u << 20), "batch.positives", "must be in 1..1048576");
    need(negatives_per_positive >= 0 && negatives_per_positive <= 1000, "batch.negatives_per_positive", "must be in 0..1000");
    need(hard_negative_fraction >= 0 && hard_negative_fraction <= 1, "batch.hard_negative_fraction", "must be in [0, 1]");
    need(none_weight > 0 && std::isfinite(none_weight), "batch.none_weight", "must be > 0");
    need(mined_fraction >= 0 && mined_fraction <= 1, "batch.mined_fraction", "must be in [0, 1]");
    need(content_noise >= 0 && content_noise <= 1, "batch.content_noise", "must be in [0, 1]");
    need(plant_rate >= 0 && plant_rate <= 1, "batch.plant_rate", "must be in [0, 1]");
    need(absent_rate >= 0 && absent_rate <= 1, "batch.absent_rate", "must be in [0, 1]");
    need(hard_negative_fraction + mined_fraction <= 1, "batch.mined_fraction",
         "hard_negative_fraction + mined_fraction must be ≤ 1");
    need(steps >= 1 && steps <= kMaxSteps, "run.steps", "must be in 1..1000000000");
    need(validate_every >= 1 && validate_every <= kMaxSteps, "run.validate_every", "must be in 1..1000000000");
    need(checkpoint_every >= 1 && checkpoint_every <= kMaxSteps, "run.checkpoint_every", "must be in 1..1000000000");
    need(keep == "last" || keep == "best", "run.keep", "must be last or best");
    need(threads >= 0 && threads <= kMaxThreads, "run.threads",
         "must be in 0.." + std::to_string(kMaxThreads) + " (0 = all cores)");
    need(alignment == "none" || alignment == "learned", "votes.alignment", "must be none or learned");
    (void)vote_window_list();
    (void)object_types();
}

std::vector<std::string> TrainConfig::object_types() const {
    std::vector<std::string> out;
    for (size_t a = 0; a <= object_type.size();) {
        const size_t b = std::min(object_type.find(',', a), object_type.size());
        std::string item = object_type.substr(a, b - a);
        const size_t from = item.find_first_not_of(" \t"), to = item.find_last_not_of(" \t");
        item = from == std::string::npos ? "" : item.substr(from, to - from + 1);
        if (!is_object_type_name(item))
            throw InputError("config key data.type: '" + object_type.substr(0, 200) +
                             "' must be an object type (a C identifier) or a comma list of them (e.g. task_struct,cred)");
        if (std::find(out.begin(), out.end(), item) != out.end())
            throw InputError("config key data.type: " + item + " named twice");
        out.push_back(std::move(item));
        a = b + 1;
    }
    if (out.size() > Model::kMaxParts)
        throw InputError("config key data.type: " + std::to_string(out.size()) + " types (at most " +
                         std::to_string(Model::kMaxParts) + ")");
    return out;
}

std::vector<uint32_t> TrainConfig::vote_window_list() const {
    std::vector<uint32_t> out;
    const std::string bad = "must be a comma list of byte counts 0.." + std::to_string(Model::kMaxVoteWindow) + " (e.g. 0,32,64)";
    for (size_t a = 0; a <= vote_windows.size();) {
        const size_t b = std::min(vote_windows.find(',', a), vote_windows.size());
        std::string item = vote_windows.substr(a, b - a);
        while (!item.empty() && item.front() == ' ') item.erase(0, 1);
        while (!item.empty() && item.back() == ' ') item.pop_back();
        uint32_t v = 0;
        auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
        if (item.empty() || ec != std::errc() || p != item.data() + item.size() || v > Model::kMaxVoteWindow)
            throw InputError("config key votes.windows: '" + vote_windows + "' " + bad);
        if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
        a = b + 1;
    }
    return out;
}

namespace {

std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.9g", v);
    return b;
}

// The keys that define the training trajectory (what --resume must find unchanged).
std::string trajectory_ini(const TrainConfig& c) {
    std::ostringstream o;
    std::string types;   // the list as parsed: "a, b" and "a,b" are one trajectory
    for (const std::string& t : c.object_types()) types += (types.empty() ? "" : ",") + t;
    o << "[data]\nmanifest = " << c.manifest << "\ntype = " << types
      << "\nmax_train_dumps = " << c.max_train_dumps << "\nmax_validation_dumps = " << c.max_validation_dumps;
    if (c.split_by != "dump") o << "\nsplit_by = " << c.split_by << "\nholdout_build = " << c.holdout_build;   // older models' text unchanged
    if (c.freed_off_base != "ignore") o << "\nfreed_off_base = " << c.freed_off_base;
    o << "\n\n[keys]\ncount = " << c.key_nodes << "\nmin_frequency = " << num(c.min_frequency);
    if (c.key_frequency != "overall") o << "\nfrequency = " << c.key_frequency;   // older models' text unchanged
    if (c.min_per_build) o << "\nmin_per_build = " << c.min_per_build;
    o
      << "\n\n[model]\nembed_width = " << c.embed_width << "\niterations = " << c.iterations
      << "\nsigma_layers = " << c.sigma_layers << "\nclassifier_width = " << c.classifier_width
      << "\nkeep_prob = " << num(c.keep_prob) << "\n\n[optimiser]\nlearning_rate = " << num(c.learning_rate)
      << "\nweight_decay = " << num(c.weight_decay) << "\nclip_norm = " << num(c.clip_norm)
      << (c.schedule == "constant" ? std::string()   // older models' text unchanged
                                   : "\nschedule = " + c.schedule + "\nschedule_steps = " + std::to_string(c.schedule_horizon()))
      << "\n\n[batch]\npositives = " << c.positives << "\nnegatives_per_positive = " << num(c.negatives_per_positive)
      << "\nhard_negative_fraction = " << num(c.hard_negative_fraction) << "\nnone_weight = " << num(c.none_weight)
      << "\nmined_fraction = " << num(c.mined_fraction) << "\ncontent_noise = " << num(c.content_noise);
    if (c.plant_rate > 0) o << "\nplant_rate = " << num(c.plant_rate);   // older models' text unchanged
    if (c.absent_rate > 0) o << "\nabsent_rate = " << num(c.absent_rate);
    o << "\n\n[run]\nseed = " << c.seed << "\n";
    if (c.mined_fraction > 0) o << "checkpoint_every = " << c.checkpoint_every << "\n";   // mining steps
    return o.str();
}

// Whether a model's configuration text (to_ini) has the trajectory `identity` (trajectory_ini): the
// text up to run.steps. "" when it has; else the first key whose value differs, "section.key: was X,
// now Y" (a key left out of one text, as older or default values are, is "the default" there).
std::string trajectory_difference(const std::string& text, const std::string& identity) {
    if (text.starts_with(identity) && text.compare(identity.size(), 8, "steps = ") == 0) return "";
    auto keys = [](const std::string& t, bool cut) {   // section.key → value, in order
        std::vector<std::pair<std::string, std::string>> out;
        std::istringstream in(t);
        std::string line, section;
        while (std::getline(in, line)) {
            if (cut && line.starts_with("steps = ")) break;
            if (line.starts_with("[")) section = line.substr(1, line.find(']') - 1);
            else if (const size_t eq = line.find(" = "); eq != std::string::npos)
                out.emplace_back(section + "." + line.substr(0, eq), line.substr(eq + 3));
        }
        return out;
    };
    const auto was = keys(text, true), now = keys(identity, false);
    auto value = [](const auto& kv, const std::string& k) {
        for (const auto& [key, v] : kv)
            if (key == k) return v;
        return std::string("the default");
    };
    auto shown = [](const std::string& v) {   // a float key's text (num: 0.0500000007) as written (0.05)
        float f = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), f);
        if (ec != std::errc() || end != v.data() + v.size() || num(f) != v) return v;
        char b[32];
        return std::string(b, std::to_chars(b, b + sizeof b, f).ptr);
    };
    for (const auto* side : {&now, &was})
        for (const auto& [k, v] : *side)
            if (value(was, k) != value(now, k)) return k + ": was " + shown(value(was, k)) + ", now " + shown(value(now, k));
    return "the text differs";
}

}  // namespace

std::string TrainConfig::to_ini() const {
    std::ostringstream o;
    o << trajectory_ini(*this) << "steps = " << steps << "\nvalidate_every = " << validate_every;
    if (mined_fraction == 0) o << "\ncheckpoint_every = " << checkpoint_every;
    o << "\nthreads = " << threads << "\noutput = " << output << "\n";
    if (keep != "last") o << "keep = " << keep << "\n";   // older models' text unchanged
    if (!optimiser_state) o << "optimiser_state = false\n";   // older models' text unchanged
    if (vote_windows != "0" || alignment != "none") {   // older models' text unchanged
        o << "\n[votes]\n";
        if (vote_windows != "0") o << "windows = " << vote_windows << "\n";
        if (alignment != "none") o << "alignment = " << alignment << "\n";
    }
    return o.str();
}

uint64_t TrainConfig::schedule_horizon() const { return schedule_steps ? schedule_steps : steps; }

float learning_rate_at(const TrainConfig& c, uint64_t step) {
    const uint64_t horizon = c.schedule_horizon();
    if (c.schedule != "cosine" || horizon == 0) return c.learning_rate;
    const double t = double(std::min(step, horizon) - (step > 0)) / double(horizon);   // 0 at step 1
    return float(0.5 * double(c.learning_rate) * (1 + std::cos(3.14159265358979323846 * t)));
}

// ---- validation -----------------------------------------------------------------------------
namespace {

// Every node's class under the model's network (the argmax of its probabilities, all a vote needs:
// detect/detect.hpp), one vector per dump; a joint model's are joint classes.
std::vector<std::vector<uint32_t>> dump_classes(const Model& model, const std::vector<LabeledDump>& dumps) {
    InferenceNet net(model.config, model.params);
    std::vector<std::vector<uint32_t>> out;
    Mat<float> probs;
    for (const LabeledDump& d : dumps) {
        net.run(graph_input(d.graph), probs);
        out.push_back(argmax_classes(probs));
    }
    return out;
}

// One type model's classes (Model::type_class) from the joint ones.
std::vector<std::vector<uint32_t>> own_classes(const std::vector<std::vector<uint32_t>>& joint, uint32_t first, uint32_t keys) {
    std::vector<std::vector<uint32_t>> out;
    for (const auto& v : joint) {
        out.emplace_back(v.size());
        for (size_t n = 0; n < v.size(); ++n) out.back()[n] = Model::type_class(v[n], first, keys);
    }
    return out;
}

std::vector<uint32_t> all_nodes(const MemoryGraph& g) {
    std::vector<uint32_t> all(g.node_count());
    std::iota(all.begin(), all.end(), 0u);
    return all;
}

// validate_windows and validate_model over each dump's node classes (a single-type model's, or a
// joint model's part's own: own_classes).
std::vector<Calibration> windows_of(const Model& model, const std::vector<LabeledDump>& dumps,
                                    const std::vector<std::vector<uint32_t>>& classes, std::span<const uint32_t> windows) {
    Model m = model;
    std::vector<Calibration> out;
    for (uint32_t w : windows) {
        m.vote_window = w;
        std::vector<std::vector<Candidate>> cands(dumps.size());
        std::vector<CalibrationSet> sets;
        for (size_t i = 0; i < dumps.size(); ++i) {
            cands[i] = vote(dumps[i].graph, m, all_nodes(dumps[i].graph), classes[i]);
            sets.push_back({cands[i], dumps[i].truth});
        }
        out.push_back(calibrate_threshold(model.object_type, sets, model.single_vote_bound()));
    }
    return out;
}

Calibration calibration_of(const Model& model, const std::vector<LabeledDump>& dumps,
                           const std::vector<std::vector<uint32_t>>& classes, VoteAgreement* agreement,
                           TypeScore* at_model_threshold) {
    std::vector<std::vector<Candidate>> cands(dumps.size());
    std::vector<CalibrationSet> sets;
    for (size_t i = 0; i < dumps.size(); ++i) {
        cands[i] = vote(dumps[i].graph, model, all_nodes(dumps[i].graph), classes[i]);
        sets.push_back({cands[i], dumps[i].truth});
    }
    Calibration cal = calibrate_threshold(model.object_type, sets, model.single_vote_bound());
    if (at_model_threshold) *at_model_threshold = score_at_threshold(model.object_type, sets, model.threshold);
    if (agreement) {   // at the calibrated threshold
        *agreement = {};
        agreement->key_votes.assign(model.key_nodes.size(), 0);
        for (size_t i = 0; i < dumps.size(); ++i) {
            const VoteAgreement a =
                vote_agreement(model, votes_of(dumps[i].graph, model, all_nodes(dumps[i].graph), classes[i]), cal.threshold);
            agreement->objects += a.objects;
            agreement->agreeing += a.agreeing;
            for (size_t c = 0; c < a.key_votes.size(); ++c) agreement->key_votes[c] += a.key_votes[c];
        }
    }
    return cal;
}

// validate_types over the classes of dump_classes (kept by train() for calibrate_votes).
std::vector<TypeValidation> types_of(const Model& model, const std::vector<LabeledDump>& dumps,
                                     const std::vector<std::vector<uint32_t>>& joint) {
    std::vector<uint32_t> first;
    std::vector<TypeValidation> out;
    for (const Model& m : model.type_models(&first)) {   // a single-type model's classes are its own
        std::vector<std::vector<uint32_t>> part;   // a joint model's part's own classes (a single type's: `joint`, not copied)
        if (model.joint()) part = own_classes(joint, first[out.size()], uint32_t(m.key_nodes.size()));
        out.push_back({m.object_type, calibration_of(m, dumps, model.joint() ? part : joint, nullptr, nullptr), {}});
    }
    return out;
}

void refuse_joint(const Model& model, const char* what) {
    if (model.joint())
        throw InputError(std::string(what) + ": model of " + model.object_type +
                         " is joint (several types): validate its type models (Model::type_models)");
}

}  // namespace

std::vector<Calibration> validate_windows(const Model& model, const std::vector<LabeledDump>& dumps,
                                          std::span<const uint32_t> windows) {
    refuse_joint(model, "validate_windows");
    return windows_of(model, dumps, dump_classes(model, dumps), windows);
}

Calibration validate_model(const Model& model, const std::vector<LabeledDump>& dumps, VoteAgreement* agreement,
                           TypeScore* at_model_threshold) {
    refuse_joint(model, "validate_model");
    return calibration_of(model, dumps, dump_classes(model, dumps), agreement, at_model_threshold);
}

std::vector<TypeValidation> validate_types(const Model& model, const std::vector<LabeledDump>& dumps) {
    return types_of(model, dumps, dump_classes(model, dumps));
}

std::vector<KernelBuild> kernel_builds_of(const std::vector<LabeledDump>& dumps) {
    std::vector<KernelBuild> out;
    for (const LabeledDump& d : dumps) {
        KernelBuild b{d.kernel_release, ""};
        if (const auto& kb = d.graph.info().kernel_banner) b = {kb->banner.release, kb->banner.text};
        if (b.release.empty() || std::find(out.begin(), out.end(), b) != out.end()) continue;
        out.push_back(std::move(b));
    }
    return out;
}

uint32_t learned_alignment(const std::vector<LabeledDump>& dumps, const std::string& type, uint32_t word_size,
                           uint64_t* objects, size_t* builds) {
    uint64_t bits = 0, n = 0;   // OR of the bases: its lowest set bit is the largest power of two dividing all
    std::set<std::string> releases;
    for (const LabeledDump& d : dumps)
        for (const TruthObject& o : d.truth)
            if (o.type == type) {
                bits |= o.vaddr, ++n;
                releases.insert(d.kernel_release);
            }
    if (objects) *objects = n;
    if (builds) *builds = releases.size();
    if (n < kMinAlignmentObjects) return 0;
    const uint64_t a = bits ? std::min<uint64_t>(bits & -bits, kMaxLearnedAlignment) : kMaxLearnedAlignment;
    return a > word_size ? uint32_t(a) : 0;
}

// ---- sampling -------------------------------------------------------------------------------
namespace {

uint64_t splitmix(uint64_t& s) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// A uniform double in [0, 1) from the next draw's top 53 bits.
double uniform(uint64_t& s) { return double(splitmix(s) >> 11) * 0x1.0p-53; }

// One training dump's target pools.
struct Pools {
    std::vector<uint32_t> classes;    // per node (kIgnoredClass = never a target)
    std::vector<uint32_t> positives;  // nodes of class ≥ 1
    std::vector<uint32_t> hard;       // class-0 nodes whose length equals a key node's
    std::vector<uint32_t> mined;      // class-0 nodes the model of the last checkpoint lets vote
    std::vector<std::vector<uint32_t>> type_positives;   // a joint model's: the positives of each type
    std::vector<uint64_t> taken;      // … and of each type, its key-node nodes that are an earlier type's
};

// See Mining and Ranks in the contract. Returns the number of mined nodes.
uint64_t mine(const Model& model, const std::vector<LabeledDump>& dumps, std::vector<Pools>& pools, Communicator& comm) {
    InferenceNet net(model.config, model.params);
    Mat<float> probs;
    uint64_t total = 0;
    for (size_t d = 0; d < dumps.size(); ++d) {
        if (!comm.owns(d)) continue;
        net.run(graph_input(dumps[d].graph), probs);
        auto length = dumps[d].graph.length();
        Pools& p = pools[d];
        p.mined.clear();
        for (uint32_t n = 0; n < p.classes.size(); ++n) {
            if (p.classes[n] != 0) continue;
            Eigen::Index c = 0;
            probs.row(n).maxCoeff(&c);
            if (c > 0 && model.key_nodes[size_t(c) - 1].matches(length[n])) p.mined.push_back(n);
        }
    }
    for (size_t d = 0; d < dumps.size(); ++d) {
        std::vector<uint32_t>& mined = pools[d].mined;
        if (comm.size() > 1) {   // from the rank that mined it
            std::vector<uint8_t> bytes(mined.size() * sizeof(uint32_t));
            if (!bytes.empty()) std::memcpy(bytes.data(), mined.data(), bytes.size());   // (no memcpy from null)
            comm.broadcast(bytes, int(d % uint64_t(comm.size())));
            mined.resize(bytes.size() / sizeof(uint32_t));
            if (!bytes.empty()) std::memcpy(mined.data(), bytes.data(), bytes.size());
        }
        total += mined.size();
    }
    return total;
}

// Each type's labels of one dump and key nodes (one type, or a joint model's: see Joint in the
// contract); `keys` is every type's key nodes in order.
Pools make_pools(const LabeledDump& d, std::span<const NodeLabels> labels, std::span<const std::vector<KeyNode>> type_keys,
                 const std::vector<KeyNode>& keys, bool freed_off_base_negative) {
    Pools p;
    if (labels.size() == 1) {
        p.classes = node_classes(labels[0], type_keys[0], freed_off_base_negative);
    } else {   // a key node of some type wins; else ignored in a freed object of some type; else 0
        p.classes.assign(d.graph.node_count(), 0);
        p.taken.assign(labels.size(), 0);
        std::vector<char> ignored(d.graph.node_count(), 0);
        uint32_t first = 1;
        for (size_t t = 0; t < labels.size(); ++t) {
            const std::vector<uint32_t> c = node_classes(labels[t], type_keys[t], freed_off_base_negative);
            for (size_t n = 0; n < c.size(); ++n) {
                if (c[n] == kIgnoredClass) ignored[n] = 1;
                else if (c[n] >= 1 && p.classes[n] == 0) p.classes[n] = first + c[n] - 1;
                else if (c[n] >= 1) ++p.taken[t];   // an earlier type's key node already
            }
            first += uint32_t(type_keys[t].size());
        }
        for (size_t n = 0; n < ignored.size(); ++n)
            if (ignored[n] && p.classes[n] == 0) p.classes[n] = kIgnoredClass;
        p.type_positives.resize(labels.size());
    }
    auto length = d.graph.length();
    auto can_vote = [&](uint32_t len) {
        return std::any_of(keys.begin(), keys.end(), [&](const KeyNode& k) { return k.matches(len); });
    };
    std::vector<uint32_t> type_of;   // joint class → its type
    for (size_t t = 0; t < type_keys.size() && labels.size() > 1; ++t) type_of.insert(type_of.end(), type_keys[t].size(), uint32_t(t));
    for (uint32_t n = 0; n < p.classes.size(); ++n) {
        if (p.classes[n] == kIgnoredClass) continue;
        if (p.classes[n] >= 1) {
            p.positives.push_back(n);
            if (!type_of.empty()) p.type_positives[type_of[p.classes[n] - 1]].push_back(n);
        } else if (can_vote(length[n])) {
            p.hard.push_back(n);
        }
    }
    return p;
}

// `want` distinct draws from pool (or from 0..n−1 when pool is null) accepted by `ok`.
template <class Ok>
void draw(uint64_t& rng, const std::vector<uint32_t>* pool, uint32_t n, size_t want, std::set<uint32_t>& taken,
          std::vector<uint32_t>& out, Ok ok) {
    const size_t size = pool ? pool->size() : n;
    if (size == 0) return;
    size_t got = 0;
    for (size_t tries = 0; got < want && tries < want * 8 + 64; ++tries) {
        uint32_t node = pool ? (*pool)[splitmix(rng) % size] : uint32_t(splitmix(rng) % size);
        if (!ok(node) || !taken.insert(node).second) continue;
        out.push_back(node);
        ++got;
    }
}

}  // namespace

void plant_pointers(GraphBatch& b, std::span<const uint32_t> length, uint32_t word, double rate, uint64_t& rng) {
    // See Planting in trainer.hpp. A node is "with edges" when the batch kept its in-edges (hops ≤
    // T−2, extract_batch): only those can be split and be the planted pointer's target D.
    constexpr int ln = 0, rn = 1, lp = 2, rp = 3;   // EdgeKind order
    const uint32_t n0 = b.nodes(), fb = b.feature_bytes;
    using Rows = std::array<std::vector<uint32_t>, kNeighbourKinds>;
    std::vector<Rows> in(n0);
    std::vector<uint32_t> eligible;
    std::vector<char> with_edges(n0, 0);
    for (uint32_t r = 0; r < n0; ++r) {
        for (int k = 0; k < kNeighbourKinds; ++k) {
            auto row = b.in[size_t(k)].view().row(r);
            in[r][size_t(k)].assign(row.begin(), row.end());
            with_edges[r] |= !row.empty();
        }
        if (with_edges[r]) eligible.push_back(r);
    }
    if (eligible.size() < 2) return;
    std::vector<uint32_t> len(n0);
    for (uint32_t r = 0; r < n0; ++r) len[r] = length[b.node_ids[r]];
    const double f = uniform(rng) * rate;
    auto add = [](std::vector<uint32_t>& v, uint32_t x) { if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x); };
    for (uint32_t c : eligible) {
        const uint32_t words = len[c] / word;
        if (words < 2) continue;   // a one-word segment would vanish: not modelled
        const double p_split = 1 - std::pow(1 - f, double(words));
        if (uniform(rng) >= p_split) continue;
        const uint32_t w = uint32_t(splitmix(rng) % words);
        uint32_t d;
        do d = eligible[splitmix(rng) % eligible.size()];
        while (d == c);
        uint8_t* row = b.features.data() + size_t(c) * fb;
        const uint32_t at = w * word;   // the planted pointer's offset in the segment
        if (w == 0) {   // the segment now starts one word later: another label
            std::memmove(row, row + std::min(word, fb), fb - std::min(word, fb));
            std::fill(row + fb - std::min(word, fb), row + fb, uint8_t{0});
            add(in[c][lp], d);
            for (uint32_t left : in[c][ln])
                if (with_edges[left]) add(in[left][rp], d);
            len[c] -= word;
            if (c < b.targets.size() && !b.labels.empty()) b.labels[c] = 0;   // targets are rows 0..M−1
        } else if (w + 1 == words) {   // its last word: the right boundary grows
            if (at < fb) std::fill(row + at, row + fb, uint8_t{0});
            add(in[c][rp], d);
            for (uint32_t right : in[c][rn])
                if (with_edges[right]) add(in[right][lp], d);
            len[c] = at;
        } else {   // split in two: c keeps [0, at), a new node c' takes [at + word, len)
            const uint32_t c2 = uint32_t(in.size());
            std::vector<uint8_t> tail(fb, 0);
            if (at + word < fb) std::copy(row + at + word, row + fb, tail.begin());
            if (at < fb) std::fill(row + at, row + fb, uint8_t{0});
            b.features.insert(b.features.end(), tail.begin(), tail.end());
            Rows r2;
            r2[ln] = {c};
            r2[rn] = in[c][rn];
            r2[lp] = {d};
            r2[rp] = in[c][rp];
            for (uint32_t right : in[c][rn])
                if (right < with_edges.size() && with_edges[right])
                    for (uint32_t& x : in[right][ln]) x = x == c ? c2 : x;
            in[c][rn] = {c2};
            in[c][rp] = {d};
            in.push_back(std::move(r2));
            with_edges.push_back(1);
            len.push_back(len[c] - at - word);
            len[c] = at;
            b.node_ids.push_back(b.node_ids[c]);
        }
    }
    for (int k = 0; k < kNeighbourKinds; ++k) {
        Csr& csr = b.in[size_t(k)];
        csr.offsets.assign(1, 0);
        csr.sources.clear();
        for (Rows& r : in) {
            std::vector<uint32_t>& v = r[size_t(k)];
            std::sort(v.begin(), v.end());
            v.erase(std::unique(v.begin(), v.end()), v.end());
            csr.sources.insert(csr.sources.end(), v.begin(), v.end());
            csr.offsets.push_back(csr.sources.size());
        }
    }
}

void drop_absent_pages(GraphBatch& b, std::span<const uint64_t> vaddr, double rate, uint64_t& rng) {
    const double f = uniform(rng) * rate;
    uint64_t salt = splitmix(rng);
    const uint64_t cut = f >= 1 ? ~uint64_t{0} : uint64_t(f * 0x1.0p64);
    const uint32_t n = b.nodes(), targets = uint32_t(b.targets.size());
    std::vector<char> absent(n, 0);
    for (uint32_t r = targets; r < n; ++r) {
        uint64_t h = (vaddr[b.node_ids[r]] >> 12) ^ salt;   // one draw per page: a page is absent whole
        absent[r] = splitmix(h) < cut;
    }
    for (Csr& csr : b.in) {
        std::vector<uint64_t> offsets{0};
        std::vector<uint32_t> sources;
        const CsrView v = csr.view();
        for (uint32_t r = 0; r < n; ++r) {
            for (uint32_t s : v.row(r))
                if (!absent[s]) sources.push_back(s);
            offsets.push_back(sources.size());
        }
        csr.offsets = std::move(offsets);
        csr.sources = std::move(sources);
    }
}

namespace {

GraphBatch sample_batch(const TrainConfig& cfg, const std::vector<LabeledDump>& dumps, const std::vector<Pools>& pools,
                        uint64_t step, uint32_t iterations) {
    uint64_t rng = cfg.seed * 0x2545f4914f6cdd1dull ^ (step * 0x9e3779b97f4a7c15ull);
    // Only dumps with positives are drawn.
    std::vector<size_t> usable;
    for (size_t i = 0; i < pools.size(); ++i)
        if (!pools[i].positives.empty()) usable.push_back(i);
    const size_t d = usable[splitmix(rng) % usable.size()];
    const Pools& p = pools[d];
    std::set<uint32_t> taken;
    std::vector<uint32_t> targets;
    if (p.type_positives.empty()) {
        draw(rng, &p.positives, 0, std::min<size_t>(cfg.positives, p.positives.size()), taken, targets,
             [](uint32_t) { return true; });
    } else {   // a share of each type's (Joint in the contract)
        const size_t share = (cfg.positives + p.type_positives.size() - 1) / p.type_positives.size();
        for (const std::vector<uint32_t>& pool : p.type_positives)
            draw(rng, &pool, 0, std::min(share, pool.size()), taken, targets, [](uint32_t) { return true; });
    }
    const size_t pos = targets.size();
    const size_t neg = size_t(std::lround(double(pos) * cfg.negatives_per_positive));
    const size_t hard = size_t(std::lround(double(neg) * cfg.hard_negative_fraction));
    const size_t mined = p.mined.empty() ? 0 : size_t(std::lround(double(neg) * cfg.mined_fraction));
    draw(rng, &p.mined, 0, mined, taken, targets, [](uint32_t) { return true; });
    draw(rng, &p.hard, 0, hard, taken, targets, [](uint32_t) { return true; });
    draw(rng, nullptr, uint32_t(p.classes.size()), pos + neg - targets.size(), taken, targets,
         [&](uint32_t n) { return p.classes[n] == 0; });
    std::vector<uint32_t> labels;
    for (uint32_t t : targets) labels.push_back(p.classes[t]);
    GraphBatch b = extract_batch(graph_input(dumps[d].graph), targets, labels, iterations);
    if (cfg.plant_rate > 0)   // see Planting in the contract
        plant_pointers(b, dumps[d].graph.length(), dumps[d].graph.params().word_size, cfg.plant_rate, rng);
    if (cfg.absent_rate > 0)   // see Absence in the contract
        drop_absent_pages(b, dumps[d].graph.vaddr(), cfg.absent_rate, rng);
    if (cfg.content_noise > 0) {   // see Noise in the contract
        const double f = uniform(rng) * cfg.content_noise;
        const uint64_t cut = uint64_t(f * 0x1.0p64 >= 0x1.0p64 ? ~uint64_t{0} : uint64_t(f * 0x1.0p64));
        auto length = dumps[d].graph.length();
        for (uint32_t local = 0; local < b.nodes(); ++local) {
            const uint32_t bytes = std::min(length[b.node_ids[local]], b.feature_bytes);
            uint8_t* row = b.features.data() + size_t(local) * b.feature_bytes;
            for (uint32_t i = 0; i < bytes; ++i) {
                const uint64_t r = splitmix(rng);
                if (r < cut) row[i] = uint8_t(r >> 56) ^ uint8_t(r);   // a new byte value
            }
        }
    }
    return b;
}

// One step's loss and gradient (see Ranks in the contract): the whole batch on one process; else
// this rank's targets of it, normalised by the whole batch's weights, summed over the ranks.
float batch_gradient(Gnn<float>& net, const Model& model, const GraphBatch& b, StepOptions opt, Communicator& comm,
                     Params<float>& grad, std::vector<float>& flat) {
    if (comm.size() == 1) {
        const float loss = net.forward(model.params, b, opt);
        net.backward(model.params, b, grad);
        return loss;
    }
    float total = 0;   // summed as Gnn::forward sums a whole batch's weights
    std::vector<uint32_t> rows, targets, labels;
    for (uint32_t i = 0; i < b.targets.size(); ++i) {
        total += opt.class_weights.empty() ? 1.f : opt.class_weights[b.labels[i]];
        if (!comm.owns(i)) continue;
        rows.push_back(i);
        targets.push_back(b.targets[i]);
        labels.push_back(b.labels[i]);
    }
    float loss = 0;
    if (rows.empty()) {
        grad = Params<float>::zeros(model.config);
    } else {
        const GraphBatch share = extract_batch(b.input(), targets, labels, model.config.iterations);
        opt.dropout_rows = rows;
        opt.weight_total = total;
        loss = net.forward(model.params, share, opt);
        net.backward(model.params, share, grad);
    }
    flat.clear();
    for (const auto& t : grad.tensors) flat.insert(flat.end(), t.data(), t.data() + t.size());
    flat.push_back(loss);
    comm.sum(flat);
    size_t at = 0;
    for (auto& t : grad.tensors) {
        std::copy_n(flat.begin() + ptrdiff_t(at), t.size(), t.data());
        at += size_t(t.size());
    }
    return flat.back();
}

std::string duration(double s) {
    char b[32];
    if (s >= 3600) std::snprintf(b, sizeof b, "%dh%02dm", int(s / 3600), int(std::fmod(s, 3600) / 60));
    else if (s >= 60) std::snprintf(b, sizeof b, "%dm%02ds", int(s / 60), int(std::fmod(s, 60)));
    else std::snprintf(b, sizeof b, "%.0fs", s);
    return b;
}

std::string now_utc() {
    std::time_t t = std::time(nullptr);
    char b[32];
    std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return b;
}

std::string score_line(const Calibration& c) {
    char b[200];
    std::snprintf(b, sizeof b, "threshold %.4f  precision %.4f  recall %.4f  F1 %.4f  (TP %llu FP %llu FN %llu)",
                  c.threshold, c.score.precision(), c.score.recall(), c.score.f1(), (unsigned long long)c.score.tp,
                  (unsigned long long)c.score.fp, (unsigned long long)c.score.fn);
    return b;
}

}  // namespace

namespace {

// See Windows in the contract: per object type (a joint model's every part), the vote window of
// best validation F1 (the smallest of equal F1), then the threshold and vote agreement at it; one
// inference pass per dump for all the types, none when `classes` holds the model's (dump_classes).
void calibrate_votes(const TrainConfig& cfg, const std::vector<LabeledDump>& val_dumps, Model& model, TrainResult& result,
                     const std::function<void(const std::string&)>& log, std::vector<std::vector<uint32_t>> classes = {}) {
    const auto joint = classes.empty() ? dump_classes(model, val_dumps) : std::move(classes);
    std::vector<uint32_t> first;
    const std::vector<Model> types = model.type_models(&first);
    const std::vector<uint32_t> windows = cfg.vote_window_list();
    result.types.clear();
    for (size_t t = 0; t < types.size(); ++t) {
        Model m = types[t];
        std::vector<std::vector<uint32_t>> part;   // as in types_of: a single type's classes are `joint`, not copied
        if (model.joint()) part = own_classes(joint, first[t], uint32_t(m.key_nodes.size()));
        const auto& classes = model.joint() ? part : joint;
        const std::string who = model.joint() ? m.object_type + ": " : "";
        m.vote_window = 0;
        if (windows != std::vector<uint32_t>{0}) {
            const std::vector<Calibration> cals = windows_of(m, val_dumps, classes, windows);
            size_t best = 0;
            for (size_t w = 0; w < windows.size(); ++w) {
                log(who + "vote window " + std::to_string(windows[w]) + " bytes: " + score_line(cals[w]));
                const double f = cals[w].score.f1(), fb = cals[best].score.f1();
                if (f > fb || (f == fb && windows[w] < windows[best])) best = w;
            }
            m.vote_window = windows[best];
            log(who + "vote window chosen on the validation dumps: " + std::to_string(m.vote_window) + " bytes");
        }
        TypeValidation v{m.object_type, {}, {}};
        v.validation = calibration_of(m, val_dumps, classes, &v.agreement, nullptr);
        if (model.joint()) {
            TypePart& part = model.parts[t];
            part.vote_window = m.vote_window;
            part.threshold = v.validation.threshold;
            part.validation_objects = v.agreement.objects;
            part.validation_agreeing = v.agreement.agreeing;
        } else {
            model.vote_window = m.vote_window;
            model.threshold = v.validation.threshold;
            model.provenance.validation_objects = v.agreement.objects;
            model.provenance.validation_agreeing = v.agreement.agreeing;
            result.validation = v.validation;
            result.agreement = v.agreement;
        }
        result.types.push_back(std::move(v));
    }
}

// The base alignment of `from` (and its parts') onto `to`, of the same types.
void copy_alignment(const Model& from, Model& to) {
    to.base_alignment = from.base_alignment;
    for (size_t t = 0; t < to.parts.size() && t < from.parts.size(); ++t) to.parts[t].base_alignment = from.parts[t].base_alignment;
}

// votes.alignment (Alignment in the contract): each type's base alignment from `dumps`' labels when
// learned; `none` sets 0, so a checkpoint or a recalibrated model loses the alignment it had.
void learn_alignment(const TrainConfig& cfg, const std::vector<LabeledDump>& dumps, Model& model,
                     const std::function<void(const std::string&)>& log, const char* which) {
    for (size_t t = 0; t < std::max<size_t>(model.parts.size(), 1); ++t) {   // each part, or the model itself
        const std::string& type = model.joint() ? model.parts[t].object_type : model.object_type;
        uint32_t& to = model.joint() ? model.parts[t].base_alignment : model.base_alignment;
        if (cfg.alignment != "learned") {
            if (to != 0) log(type + ": base alignment " + std::to_string(to) + " bytes dropped (votes.alignment = none)");
            to = 0;
            continue;
        }
        uint64_t objects = 0;
        size_t builds = 0;
        to = learned_alignment(dumps, type, model.graph.word_size, &objects, &builds);
        log(type + ": base alignment " + (to ? std::to_string(to) + " bytes" : std::string("none")) + " (learned from " +
            std::to_string(objects) + " labeled objects of the " + which + " dumps, " + std::to_string(builds) +
            (builds == 1 ? " build" : " builds") +
            (objects < kMinAlignmentObjects ? "; too few: at least " + std::to_string(kMinAlignmentObjects) : std::string()) + ")");
        if (to && builds < 2)
            log("warning: " + type + ": base alignment learned from one kernel build: a static object "
                "(init_cred) lies on the line that build's link gave it, another build's may not (train/trainer.hpp Alignment)");
    }
}

Manifest manifest_of(const TrainConfig& cfg) {
    return cfg.split_by == "build" ? Manifest::load(cfg.manifest).holding_out(cfg.holdout_build) : Manifest::load(cfg.manifest);
}

}  // namespace

namespace {

// What both recalibrations start from: the model (of the configuration's type) and the graphs and
// labels of the manifest's validation dumps, checked against its graph parameters.
struct Recalibration {
    Model model;
    Manifest manifest;
    std::vector<LabeledDump> val_dumps;
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
};
Recalibration start_recalibration(const TrainConfig& cfg, const std::string& model_path,
                                  const std::function<void(const std::string&)>& log, bool single_type = false) {
    cfg.validate();
    if (cfg.threads > 0) omp_set_num_threads(cfg.threads);
    Recalibration r;
    {
        const std::string outputs[] = {cfg.output}, inputs[] = {cfg.manifest};
        refuse_output_over_inputs(outputs, inputs);
    }
    r.model = Model::load(model_path);
    if (single_type && r.model.joint())
        throw InputError("--image-absent: model '" + model_path + "' is joint (" + r.model.object_type +
                         "); a threshold for dumps without the kernel image is chosen for single-type models");
    std::string named;   // data.type's list as a joint model names its types
    for (const std::string& t : cfg.object_types()) named += (named.empty() ? "" : "+") + t;
    if (r.model.object_type != named)
        throw InputError("model '" + model_path + "' detects " + r.model.object_type + ", the configuration names " + cfg.object_type);
    r.manifest = manifest_of(cfg);
    std::vector<std::string> val_names = r.manifest.validation;
    if (cfg.max_validation_dumps && val_names.size() > cfg.max_validation_dumps) val_names.resize(cfg.max_validation_dumps);
    if (val_names.empty()) throw InputError("manifest '" + cfg.manifest + "' has no validation dumps");
    log("recalibrating " + model_path + " on " + std::to_string(val_names.size()) + " validation dumps of " + r.manifest.path);
    r.val_dumps = load_dumps(r.manifest, val_names);
    Detector check;   // the one comparison of graph parameters (InputError naming the parameter)
    check.add_model(r.model, model_path);
    for (const LabeledDump& d : r.val_dumps) check.check_graph(d.graph);
    return r;
}

// run.output: the model, without Adam's moments when run.optimiser_state is false.
void save_output(const TrainConfig& cfg, const Model& model) {
    if (cfg.optimiser_state) return model.save(cfg.output);
    Model shipped = model;
    shipped.adam_state.m = {};
    shipped.adam_state.v = {};
    shipped.save(cfg.output);
}

TrainResult finish_recalibration(const TrainConfig& cfg, Recalibration& r, TrainResult result, const std::string& what) {
    r.model.provenance.add_recalibration(cfg.manifest, "manifest_sha256 = " + r.manifest.sha256 + "\n" + what);
    save_output(cfg, r.model);
    result.model = std::move(r.model);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - r.t0).count();
    return result;
}

}  // namespace

namespace {

// One layout of `type` per build of `names` (the builds' first dump whose directory names a kernel
// file that gives one), only builds among `releases` when it is not empty; what could not be had is
// logged.
std::vector<StructLayout> manifest_layouts(const Manifest& m, const std::vector<std::string>& names, const std::string& type,
                                           const std::vector<std::string>& releases,
                                           const std::function<void(const std::string&)>& log) {
    std::vector<StructLayout> out;
    std::set<std::string> done, failed;
    for (const std::string& name : names) {
        auto b = m.build_of.find(name);
        const std::string release = b == m.build_of.end() ? "" : b->second;
        if (release.empty() || done.count(release) ||
            (!releases.empty() && std::find(releases.begin(), releases.end(), release) == releases.end()))
            continue;
        try {
            const KernelFiles files = dump_dir_kernel_files(m.dump_dir(name));
            if (!files.kernel) throw InputError("its directory names no kernel file");
            out.push_back(flat_members(btf::load_kernel_btf(*files.kernel), type));
            done.insert(release);
        } catch (const std::exception& e) {
            if (failed.insert(release).second) log("key-node anchors: build " + release + " (" + name + "): " + e.what());
        }
    }
    return out;
}

void log_anchors(const Model& model, size_t anchored, size_t layouts, const std::function<void(const std::string&)>& log) {
    log("key-node anchors: " + std::to_string(anchored) + " of " + std::to_string(model.key_nodes.size()) +
        (model.key_nodes.size() == 1 ? " key node" : " key nodes") + " anchored at members of " + model.object_type + " in " + std::to_string(layouts) + " build layout" +
        (layouts == 1 ? "" : "s"));
}

}  // namespace

TrainResult anchor(const TrainConfig& cfg, const std::string& model_path, const std::vector<std::string>& kernel_files,
                   const std::function<void(const std::string&)>& log) {
    const auto t0 = std::chrono::steady_clock::now();
    if (cfg.output.empty()) throw InputError("--anchor: run.output names no file to write");
    Model model = Model::load(model_path);
    if (model.joint()) throw InputError("--anchor: model '" + model_path + "' is joint (" + model.object_type + "): its key nodes are of several types");
    std::vector<std::string> releases;
    for (const KernelBuild& b : model.provenance.kernel_builds) releases.push_back(b.release);
    std::vector<StructLayout> layouts;
    std::string from;
    if (!kernel_files.empty()) {
        for (const std::string& f : kernel_files) {
            btf::KernelImage k = btf::load_kernel_image(f);
            const std::vector<KernelBanner> banners = kernel_file_banners(k);
            const bool ours = std::any_of(banners.begin(), banners.end(), [&](const KernelBanner& b) {
                return std::find(releases.begin(), releases.end(), b.release) != releases.end();
            });
            if (!releases.empty() && !ours)
                throw InputError("--kernel " + f + ": " +
                                 (banners.empty() ? std::string("no kernel banner (raw BTF?)") : "kernel " + banners.front().release) +
                                 ", not one of the builds model '" + model_path + "' was trained on");
            layouts.push_back(flat_members(k.btf, model.object_type));
            from += (from.empty() ? "" : ", ") + f;
        }
    } else {
        const Manifest m = manifest_of(cfg);
        std::vector<std::string> names = m.train;
        names.insert(names.end(), m.validation.begin(), m.validation.end());
        layouts = manifest_layouts(m, names, model.object_type, releases, log);
        from = m.path;
    }
    if (layouts.empty()) throw InputError("--anchor: no layout of struct " + model.object_type + " from any of the model's builds");
    {
        const std::string outputs[] = {cfg.output}, inputs[] = {model_path};
        refuse_output_over_inputs(outputs, inputs);
    }
    const size_t n = anchor_model(model, layouts);
    log_anchors(model, n, layouts.size(), log);
    model.provenance.training_config += "\n[anchored]\nfrom = " + from + "\n";
    save_output(cfg, model);
    TrainResult r;
    r.model = std::move(model);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

TrainResult recalibrate(const TrainConfig& cfg, const std::string& model_path,
                        const std::function<void(const std::string&)>& log) {
    Recalibration r = start_recalibration(cfg, model_path, log);
    TrainResult result;
    learn_alignment(cfg, r.val_dumps, r.model, log, "validation");
    calibrate_votes(cfg, r.val_dumps, r.model, result, log);
    const std::vector<Model> types = r.model.type_models();
    for (size_t t = 0; t < types.size(); ++t)
        log("recalibrated (" + std::to_string(r.val_dumps.size()) + " dumps): " +
            (r.model.joint() ? types[t].object_type + ": " : "") + score_line(result.types[t].validation) +
            "; vote window " + std::to_string(types[t].vote_window) + " bytes");
    return finish_recalibration(cfg, r, std::move(result),
                                "windows = " + cfg.vote_windows + "\nalignment = " + cfg.alignment);
}

TrainResult recalibrate_image_absent(const TrainConfig& cfg, const std::string& model_path,
                                     const std::function<void(const std::string&)>& log) {
    Recalibration r = start_recalibration(cfg, model_path, log, /*single_type=*/true);
    const size_t all = r.val_dumps.size();
    std::erase_if(r.val_dumps, [](const LabeledDump& d) { return !lacks_kernel_image(d.graph); });
    if (r.val_dumps.empty())
        throw InputError("every validation dump of " + r.manifest.path +
                         " holds the kernel image: the threshold for dumps without it is chosen on dumps cut below it "
                         "(tools/make-cut-set)");
    if (r.val_dumps.size() < all)
        log(std::to_string(all - r.val_dumps.size()) + " of " + std::to_string(all) +
            " validation dumps hold the kernel image (their cut left it): left out");
    TrainResult result;
    TypeScore own;   // the model's threshold on the same dumps
    result.validation = validate_model(r.model, r.val_dumps, nullptr, &own);
    const std::string dumps = std::to_string(r.val_dumps.size()) + " validation dumps without the kernel image";
    if (!(result.validation.score.f1() > 0))
        throw InputError("no threshold finds a " + r.model.object_type + " on the " + dumps + " (" +
                         score_line(result.validation) + "): the model keeps no threshold for such dumps");
    log("on the " + dumps + ": " + score_line(Calibration{r.model.threshold, own}) + " (the model's threshold); " +
        score_line(result.validation) + " (the best)");
    // A tie keeps the one threshold: a second one must earn its place on validation.
    if (result.validation.score.f1() > own.f1()) {
        r.model.image_absent_threshold = result.validation.threshold;
        log("threshold for dumps without the kernel image: " + std::to_string(r.model.image_absent_threshold));
    } else {
        r.model.image_absent_threshold = 0;
        result.validation = {r.model.threshold, own};
        log("the model's threshold does as well there: no threshold of its own for dumps without the kernel image");
    }
    result.types = {{r.model.object_type, result.validation, {}}};
    return finish_recalibration(cfg, r, std::move(result),
                                "image_absent_threshold = " + std::to_string(r.model.image_absent_threshold));
}

// ---- the loop -------------------------------------------------------------------------------
namespace {

// Rank 0's error, when it has one, thrown on every rank ("rank 0: …" on the others), so that no
// rank waits in a collective the others left (Ranks in the contract).
void rethrow_on_every_rank(Communicator& comm, const std::exception_ptr& failed) {
    if (comm.size() > 1) {
        std::string error;
        if (failed) try { std::rethrow_exception(failed); } catch (const std::exception& e) { error = e.what(); }
        error = broadcast_text(comm, error, 0);
        if (comm.rank() != 0 && !error.empty()) throw InputError("rank 0: " + error);
    }
    if (failed) std::rethrow_exception(failed);
}

// What keeps `saved` (a checkpoint, or run.keep = best's snapshot) from continuing a run whose new
// model would be `fresh`: other key nodes, object types, network shape or graph parameters (the
// dataset's); empty when it can continue it. The trajectory keys are trajectory_difference's.
std::string continuation_difference(const Model& saved, const Model& fresh) {
    bool parts = saved.parts.size() == fresh.parts.size();
    for (size_t t = 0; parts && t < saved.parts.size(); ++t)
        parts = saved.parts[t].object_type == fresh.parts[t].object_type && saved.parts[t].key_count == fresh.parts[t].key_count;
    // (their anchors aside: the written model has them, a checkpoint of the loop not yet)
    auto ranges = [](const Model& m) {
        std::vector<std::tuple<uint32_t, uint32_t, float, bool>> r;
        for (const KeyNode& k : m.key_nodes) r.emplace_back(k.offset, k.length, k.weight, k.open_end);
        return r;
    };
    if (ranges(saved) != ranges(fresh)) return "other key nodes than the dataset's";
    if (!parts) return "other object types than the run's";
    if (!(saved.config == fresh.config)) return "another network shape";
    if (!(saved.graph == fresh.graph)) return "other graph parameters than the dataset's";
    return "";
}

}  // namespace

TrainResult train(const TrainConfig& cfg, bool resume, const std::function<void(const std::string&)>& log_rank0,
                  Communicator& comm) {
    auto log = [&](const std::string& line) {
        if (comm.rank() == 0) log_rank0(line);
    };
    const bool root = comm.rank() == 0;
    cfg.validate();
    if (cfg.threads > 0) omp_set_num_threads(cfg.threads);
    const auto t0 = std::chrono::steady_clock::now();
    auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    const std::string ckpt = cfg.output + ".ckpt", best_file = cfg.output + ".best";
    const bool keep_best = cfg.keep == "best";   // run.keep = best: see Keep in the contract
    {   // Before hours of training: the outputs are not inputs, and their directory takes a file
        // (the probe's temporary is removed at once).
        const std::string outputs[] = {cfg.output, ckpt, best_file}, inputs[] = {cfg.manifest};
        refuse_output_over_inputs(std::span(outputs, keep_best ? 3 : 2), inputs);
        if (root) {
            AtomicFile probe(cfg.output);
            const char* roles[] = {"run.output: '", "the checkpoint '", "run.keep = best: the best model's snapshot '"};
            for (size_t i = 0; i < (keep_best ? 3u : 2u); ++i)   // a rename over a directory fails only at the end
                if (std::filesystem::is_directory(outputs[i])) throw InputError(roles[i] + outputs[i] + "' is a directory");
        }
    }

    // --resume: the checkpoint's trajectory and step are checked before the dumps load (minutes on a
    // real dataset); its key nodes and shape after (they come from the dumps).
    const std::string identity = trajectory_ini(cfg);
    std::optional<Model> checkpoint;   // rank 0's
    if (resume) {
        std::exception_ptr failed;
        if (root) try {
            checkpoint = Model::load(ckpt);
            if (const std::string diff = trajectory_difference(checkpoint->provenance.training_config, identity); !diff.empty())
                throw InputError("checkpoint '" + ckpt + "' was written with a different training configuration (" + diff +
                                 "); --resume may change run.steps, validate_every, threads, output, keep and votes.windows"
                                 " only (under optimiser.schedule = cosine, keep the horizon with optimiser.schedule_steps)");
            if (checkpoint->adam_state.step > cfg.steps)   // else the loop would not run and the output be the checkpoint's later step
                throw InputError("checkpoint '" + ckpt + "' is at step " + std::to_string(checkpoint->adam_state.step) +
                                 ", past run.steps " + std::to_string(cfg.steps) +
                                 ": --resume continues a run to a run.steps at or after its checkpoint");
        } catch (...) {
            failed = std::current_exception();
        }
        rethrow_on_every_rank(comm, failed);
    }

    const Manifest m = manifest_of(cfg);
    auto take = [](std::vector<std::string> v, uint32_t n) {
        if (n && v.size() > n) v.resize(n);
        return v;
    };
    const auto train_names = take(m.train, cfg.max_train_dumps), val_names = take(m.validation, cfg.max_validation_dumps);
    if (train_names.empty()) throw InputError("manifest '" + cfg.manifest + "' has no train dumps");
    if (val_names.empty()) throw InputError("manifest '" + cfg.manifest + "' has no validation dumps");
    log("loading " + std::to_string(train_names.size()) + " train and " + std::to_string(val_names.size()) +
        " validation dumps of " + m.path);
    const auto train_dumps = load_dumps(m, train_names);
    const auto val_dumps = root ? load_dumps(m, val_names) : std::vector<LabeledDump>{};

    const std::vector<std::string> types = cfg.object_types();
    std::vector<std::string> builds;
    if (cfg.key_frequency == "per_build")
        for (const auto& d : train_dumps) {
            if (d.kernel_release.empty())
                throw InputError("keys.frequency = per_build: train dump '" + d.name + "' has no kernel_release in its meta.json");
            builds.push_back(d.kernel_release);
        }
    // labels[d][t]: dump d's labels of type t; each type's key nodes chosen apart (Joint)
    std::vector<std::vector<NodeLabels>> labels(train_dumps.size());
    std::vector<std::vector<KeyNode>> type_keys;
    std::vector<KeyNode> keys;
    for (size_t t = 0; t < types.size(); ++t) {
        std::vector<NodeLabels> of_type;
        for (const auto& d : train_dumps) of_type.push_back(label_nodes(d, types[t]));
        try {
            type_keys.push_back(select_key_nodes(of_type, cfg.key_nodes, cfg.min_frequency, builds, cfg.min_per_build));
        } catch (const InputError& e) {   // e.g. no live object of the type: name it, and the types there are
            std::set<std::string> labeled;
            for (const auto& d : train_dumps)
                for (const TruthObject& o : d.truth) labeled.insert(o.type);
            std::string list;
            for (const std::string& l : labeled) list += (list.empty() ? "" : ", ") + l;
            throw InputError("config key data.type: " + types[t] + ": " + e.what() + " (labeled types: " +
                             (list.empty() ? "none" : list) + ")");
        }
        keys.insert(keys.end(), type_keys.back().begin(), type_keys.back().end());
        for (size_t d = 0; d < train_dumps.size(); ++d) labels[d].push_back(std::move(of_type[d]));
    }
    std::vector<Pools> pools;
    std::vector<uint64_t> objects(types.size(), 0);
    uint64_t positives = 0, hard = 0;
    for (size_t i = 0; i < train_dumps.size(); ++i) {
        pools.push_back(make_pools(train_dumps[i], labels[i], type_keys, keys, cfg.freed_off_base == "negative"));
        for (size_t t = 0; t < types.size(); ++t) objects[t] += labels[i][t].objects;
        positives += pools.back().positives.size();
        hard += pools.back().hard.size();
    }
    labels = {};
    for (size_t t = 0; t < types.size(); ++t) {
        std::ostringstream o;
        o << objects[t] << " " << types[t] << " objects, " << type_keys[t].size() << " key nodes (offset/length[+ = open end]/weight):";
        for (const auto& k : type_keys[t]) o << " " << k.text();
        if (types.size() == 1)
            o << "; " << positives << " key-node nodes, " << hard << " same-length negatives (" << duration(since()) << ")";
        log(o.str());
    }
    for (size_t t = 0; t < types.size() && types.size() > 1; ++t) {   // attacker 20: a type lost every positive, silently
        uint64_t taken = 0, own = 0;
        for (const Pools& p : pools) {
            taken += p.taken[t];
            own += p.type_positives[t].size();
        }
        if (taken)
            log("warning: " + types[t] + ": " + std::to_string(taken) + " of its " + std::to_string(taken + own) +
                " key-node nodes are key nodes of a type listed before it, and train as that type's" +
                (own ? "" : ": it has none left and will detect nothing; train it apart"));
    }
    if (types.size() > 1)
        log("joint model of " + std::to_string(types.size()) + " types, " + std::to_string(keys.size()) + " key nodes: " +
            std::to_string(positives) + " key-node nodes, " + std::to_string(hard) + " same-length negatives (" +
            duration(since()) + ")");

    ModelConfig mc;
    mc.input_width = train_dumps.front().graph.params().feature_bytes;
    mc.embed_width = cfg.embed_width;
    mc.iterations = cfg.iterations;
    mc.sigma.assign(cfg.sigma_layers, {cfg.embed_width, Activation::None});
    mc.sigma.back().activation = Activation::Relu;   // the reference σ: linears, one ReLU at the end
    mc.classifier_hidden = {{cfg.classifier_width, Activation::Relu}};
    mc.classes = uint32_t(keys.size() + 1);
    mc.keep_prob = cfg.keep_prob;

    // Rank 0: a new model, or the checkpoint when it continues the new one (continuation_difference).
    auto start_model = [&] {
        Model model = Model::create(mc, cfg.seed);
        model.adam.lr = cfg.learning_rate;
        model.adam.weight_decay = cfg.weight_decay;
        model.adam.clip_norm = cfg.clip_norm;
        model.object_type = types.front();
        model.key_nodes = keys;
        // Until calibrate_votes: a placeholder a checkpoint may hold (Model::validate refuses one
        // key node's vote, the default 0.5 under a key node of weight ≥ 0.5).
        model.threshold = std::max(model.threshold, std::nextafter(model.single_vote_bound(), INFINITY));
        if (types.size() > 1) {   // a joint model (Joint): each type's placeholder likewise
            model.object_type.clear();
            model.threshold = 0;
            for (size_t t = 0; t < types.size(); ++t) {
                model.object_type += (t ? "+" : "") + types[t];
                Model part;
                part.key_nodes = type_keys[t];
                model.parts.push_back(TypePart{types[t], uint32_t(type_keys[t].size()),
                                               std::max(0.5f, std::nextafter(part.single_vote_bound(), INFINITY))});
            }
        }
        model.graph = train_dumps.front().graph.params();
        model.class_weights.assign(mc.classes, 1.f);
        model.class_weights[0] = cfg.none_weight;
        if (resume) {
            if (const std::string why = continuation_difference(*checkpoint, model); !why.empty())
                throw InputError("checkpoint '" + ckpt + "' does not continue this run: " + why);
            model = std::move(*checkpoint);
            checkpoint.reset();
            log("resuming from " + ckpt + " at step " + std::to_string(model.adam_state.step));
        }
        return model;
    };
    Model model;
    std::exception_ptr failed;   // rank 0's, sent to every rank
    if (root) try {
        model = start_model();
    } catch (...) {
        failed = std::current_exception();
    }
    if (root && !failed) try {   // not part of the trajectory: set on a resumed checkpoint too
        learn_alignment(cfg, train_dumps, model, log, "train");
    } catch (...) {
        failed = std::current_exception();
    }
    rethrow_on_every_rank(comm, failed);
    if (comm.size() > 1) {   // rank 0's model on every rank
        std::vector<uint8_t> bytes;
        if (root) bytes = model.to_bytes();
        comm.broadcast(bytes, 0);
        if (!root) model = Model::from_bytes(bytes);
    }
    model.provenance.dataset_manifest_sha256 = m.sha256;
    model.provenance.kernel_build = m.kernel;
    model.provenance.seed = cfg.seed;
    model.provenance.training_config = cfg.to_ini();

    Gnn<float> net(mc);
    Params<float> grad;
    std::vector<float> flat;   // gradient and loss summed over the ranks
    TrainResult result;
    double loss_avg = 0, nodes_done = 0, targets_done = 0;
    const double loop_start = since();
    double last_log = -1e9;
    const uint64_t first = model.adam_state.step + 1;
    auto mining = [&](uint64_t step) {
        if (cfg.mined_fraction <= 0 || step == 0 || step % cfg.checkpoint_every != 0) return;
        const uint64_t n = mine(model, train_dumps, pools, comm);
        log("mined " + std::to_string(n) + " confusable class-0 nodes at step " + std::to_string(step));
    };
    if (resume) mining(model.adam_state.step);
    // run.keep = best (Keep in the contract): the snapshot of the best validation F1 so far, rank 0's.
    std::optional<Model> best;
    double best_f1 = -1;
    std::vector<std::vector<uint32_t>> last_classes;   // the last step's validation classes, for calibrate_votes
    auto validate_at = [&](uint64_t step, const Model* snapshot) {   // rank 0: log, and keep the best
        const Model& m = snapshot ? *snapshot : model;
        double f1 = 0;
        auto classes = dump_classes(m, val_dumps);
        const std::vector<TypeValidation> vs = types_of(m, val_dumps, classes);
        if (!snapshot && step == cfg.steps) last_classes = std::move(classes);
        for (const TypeValidation& v : vs) {
            if (!snapshot)
                log("validation at step " + std::to_string(step) + ": " + (m.joint() ? v.type + ": " : "") + score_line(v.validation));
            f1 += v.validation.score.f1() / double(vs.size());
        }
        if (!keep_best || f1 <= best_f1) return;
        best_f1 = f1;
        best = m;
        if (!snapshot) best->save(best_file);
    };
    if (root && keep_best && resume && !std::filesystem::exists(best_file))
        log("warning: no " + best_file + ": the best is chosen among the validations from step " + std::to_string(first) +
            " on (a run before the resume with run.keep = last leaves none)");
    if (root && keep_best && resume && std::filesystem::exists(best_file)) {   // the run's best before the resume
        std::string why;
        try {
            Model b = Model::load(best_file);
            if (const std::string diff = trajectory_difference(b.provenance.training_config, identity); !diff.empty())
                why = "another training configuration (" + diff + ")";
            else if (b.adam_state.step >= first)
                why = "its step " + std::to_string(b.adam_state.step) + " is not before the checkpoint's next step " + std::to_string(first);
            else if (const std::string diff = continuation_difference(b, model); !diff.empty())
                why = diff;
            else {
                copy_alignment(model, b);   // judged as this run's model is (votes.alignment may have changed)
                validate_at(b.adam_state.step, &b);
                log("best so far: the model of step " + std::to_string(b.adam_state.step) + ", validation F1 " + num(best_f1) +
                    " (" + best_file + ")");
            }
        } catch (const std::exception& e) {
            why = e.what();
        }
        if (!why.empty()) log("warning: ignoring " + best_file + ": " + why);
    }
    for (uint64_t step = first; step <= cfg.steps; ++step) {
        GraphBatch b = sample_batch(cfg, train_dumps, pools, step, mc.iterations);
        StepOptions opt;
        opt.dropout = true;
        opt.dropout_seed = cfg.seed * 1000003ull + step;
        opt.class_weights = model.class_weights;
        const float loss = batch_gradient(net, model, b, opt, comm, grad, flat);
        AdamConfig adam = model.adam;   // this step's rate (the model file keeps optimiser.learning_rate)
        adam.lr = learning_rate_at(cfg, step);
        adam_step(mc, adam, model.params, grad, model.adam_state);
        if (!std::isfinite(loss)) throw InputError("training diverged at step " + std::to_string(step) + " (loss " + num(loss) + "); lower optimiser.learning_rate");
        loss_avg = step == first ? loss : 0.95 * loss_avg + 0.05 * loss;
        nodes_done += b.nodes();
        targets_done += b.targets.size();
        ++result.steps_run;
        const double t = since();
        if (t - last_log >= 10 || step == cfg.steps || step == first) {
            last_log = t;
            const double el = t - loop_start, rate = double(step - first + 1) / std::max(el, 1e-9);
            char line[320];
            // loss: a moving average (weight 0.05 per step) from this run's first step; the checkpoint
            // does not keep it, so after --resume it starts again (newcomer 19 read the jump as a change).
            std::snprintf(line, sizeof line, "step %llu/%llu  loss %.4f  %.2f steps/s  %.0f targets/s  %.0f nodes/s  ETA %s%s%s",
                          (unsigned long long)step, (unsigned long long)cfg.steps, loss_avg, rate, targets_done / el,
                          nodes_done / el, duration(double(cfg.steps - step) / rate).c_str(),
                          comm.size() > 1 ? ("  (" + std::to_string(comm.size()) + " ranks)").c_str() : "",
                          resume && first > 1 ? ("  (loss averaged from step " + std::to_string(first) + ", the resume)").c_str() : "");
            log(line);
        }
        if (step % cfg.checkpoint_every == 0 && step != cfg.steps) {
            if (root) model.save(ckpt);
            mining(step);
        }
        if (root && ((step % cfg.validate_every == 0 && step != cfg.steps) || (keep_best && step == cfg.steps)))
            validate_at(step, nullptr);
    }
    if (root && keep_best && first > cfg.steps)   // resumed at its last step: the loop did not validate it
        validate_at(model.adam_state.step, nullptr);
    if (root) {   // rank 0 alone validates and writes (Ranks in the contract)
        const bool kept_earlier = keep_best && best && best->adam_state.step != model.adam_state.step;
        if (kept_earlier) {
            model.save(ckpt);   // the last step's state stays the one --resume continues from
            log("keeping the model of step " + std::to_string(best->adam_state.step) + " (run.keep = best: the highest validation F1, " +
                num(best_f1) + ")");
            Provenance now = model.provenance;   // this run's (a snapshot reloaded on --resume may carry an older date or sha)
            model = std::move(*best);
            model.provenance = std::move(now);
            free_storage(last_classes);   // the last step's: not the kept model's
        }
        calibrate_votes(cfg, val_dumps, model, result, log, std::move(last_classes));   // none (keep = last): computed there
        model.provenance.date = now_utc();
        model.provenance.kernel_builds = kernel_builds_of(train_dumps);
        for (KernelBuild& b : kernel_builds_of(val_dumps))
            if (std::find(model.provenance.kernel_builds.begin(), model.provenance.kernel_builds.end(), b) ==
                model.provenance.kernel_builds.end())
                model.provenance.kernel_builds.push_back(std::move(b));
        for (const TypeValidation& v : result.types) {
            log("final validation (" + std::to_string(val_dumps.size()) + " dumps): " + (model.joint() ? v.type + ": " : "") +
                score_line(v.validation) + "; vote agreement " + std::to_string(v.agreement.agreeing) + " of " +
                std::to_string(v.agreement.objects) + " candidate objects");
            if (v.validation.score.tp == 0)   // newcomer 19: a type that will detect nothing, said at once
                log("warning: " + v.type + ": no validation object found at any threshold: the model detects none "
                    "(train longer, or check the type's labels)");
        }
        if (!model.joint()) {   // the key nodes' places by member, for dumps of other builds (anchor())
            std::vector<std::string> names = train_names;
            names.insert(names.end(), val_names.begin(), val_names.end());
            const std::vector<StructLayout> layouts = manifest_layouts(m, names, model.object_type, {}, log);
            log_anchors(model, layouts.empty() ? 0 : anchor_model(model, layouts), layouts.size(), log);
        }
        std::string builds;
        for (const KernelBuild& b : model.provenance.kernel_builds) builds += (builds.empty() ? "" : ", ") + b.release;
        log("kernel builds: " + (builds.empty() ? std::string("unknown (no banner, no meta.json release)") : builds));
        save_output(cfg, model);
        if (!kept_earlier) model.save(ckpt);
    }
    result.model = std::move(model);
    result.seconds = since();
    return result;
}

}  // namespace deepmem
