// Does a model fit this dump? (contract: detect/fit.hpp)
#include "detect/fit.hpp"

#include "engine/kernels.hpp"
#include "graph/layers.hpp"
#include "graph/text_lines.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>
#include <unordered_set>

namespace deepmem {

double agreement_by_chance(const VoteAgreement& a, double expected) {
    const uint64_t n = a.objects, k = a.agreeing;
    if (n == 0 || k >= n) return 1.0;
    const double p = std::clamp(expected, 0.0, kMaxChanceAgreement);
    if (p <= 0) return 1.0;   // nothing expected to agree: any count is likely
    // Σ_{i ≤ k} C(n, i) p^i (1 − p)^(n − i), each term from logarithms (n may be 10^5 candidates)
    const double lp = std::log(p), lq = std::log1p(-p), ln1 = std::lgamma(double(n) + 1);
    double sum = 0;
    for (uint64_t i = 0; i <= k; ++i) {
        const double term = std::exp(ln1 - std::lgamma(double(i) + 1) - std::lgamma(double(n - i) + 1) + double(i) * lp +
                                     double(n - i) * lq);
        sum += term;
        if (sum >= 1) return 1.0;
    }
    return sum;
}

namespace {

bool kept_region(uint64_t region, double share) noexcept {
    constexpr uint64_t kSalt = 0x6a09e667f3bcc909ull;   // a fixed sample: the same counts on every run
    return double(kernels::mix64(region ^ kSalt)) < share * 0x1p64;
}

}  // namespace

bool AgreementSample::counts(uint64_t base) const noexcept {
    return chunk == 0 || kept_region(base / chunk, share);
}

bool AgreementSample::runs(uint64_t vaddr) const noexcept {
    if (chunk == 0) return true;
    const uint64_t lo = vaddr > margin ? vaddr - margin : 0, hi = vaddr + margin < vaddr ? UINT64_MAX : vaddr + margin;
    for (uint64_t r = lo / chunk; r <= hi / chunk; ++r)   // at most two regions: chunk ≥ 2 margin
        if (kept_region(r, share)) return true;
    return false;
}

AgreementSample agreement_sample(const Model& model, uint64_t extra, uint64_t budget) {
    AgreementSample s;
    if (extra <= budget) return s;
    s.share = double(budget) / double(extra);
    s.margin = 3 * overlap_radius(model);
    s.chunk = uint64_t{1} << 16;   // ≥ 8 margins: a kept region's rows span at most 1.25× it
    while (s.chunk < 8 * s.margin && s.chunk < (uint64_t{1} << 40)) s.chunk <<= 1;
    return s;
}

VoteAgreement vote_agreement(const Model& model, std::span<const std::pair<uint64_t, uint32_t>> votes, float threshold,
                             const AgreementSample& sample) {
    const std::vector<Candidate> bases = bases_of(model, votes, 0, 0);   // exact bases, aligned or not: a shift splits them
    const std::vector<Candidate> kept = apply_overlap_rule(model, bases);   // sorted by vaddr
    const uint64_t radius = overlap_radius(model);
    std::vector<double> sum(kept.size());
    for (size_t i = 0; i < kept.size(); ++i) sum[i] = kept[i].score;
    auto by_vaddr = [](const Candidate& c, uint64_t v) { return c.vaddr < v; };
    for (const Candidate& b : bases) {
        auto it = std::lower_bound(kept.begin(), kept.end(), b.vaddr > radius ? b.vaddr - radius + 1 : 0, by_vaddr);
        auto owner = kept.end();
        for (; it != kept.end() && it->vaddr < b.vaddr + radius; ++it) {
            if (it->vaddr == b.vaddr) {   // kept itself
                owner = kept.end();
                break;
            }
            if (owner == kept.end() || it->score > owner->score) owner = it;
        }
        if (owner != kept.end()) sum[size_t(owner - kept.begin())] += b.score;
    }
    VoteAgreement a;
    a.key_votes.assign(model.key_nodes.size(), 0);
    std::vector<char> candidate(kept.size(), 0);
    a.share = sample.share;
    for (size_t i = 0; i < kept.size(); ++i) {
        if (!(sum[i] >= double(threshold)) || !sample.counts(kept[i].vaddr)) continue;
        candidate[i] = 1;
        ++a.objects;
        a.agreeing += double(kept[i].score) >= kAgreeShare * sum[i];
    }
    for (const auto& [base, cls] : votes) {   // one vote per (base, class)
        auto it = std::lower_bound(kept.begin(), kept.end(), base, by_vaddr);
        if (it != kept.end() && it->vaddr == base && candidate[size_t(it - kept.begin())]) ++a.key_votes[cls - 1];
    }
    return a;
}

std::vector<uint32_t> agreement_rows(const MemoryGraph& graph, const Model& model, float threshold,
                                     InferenceNet::Clock::time_point deadline) {
    // carriers: every node that carries a key node (its length, or the first part of a split one),
    // voting_rows' rows at −∞ (detect.hpp), from the same O(N log K) pass as the seeds.
    const uint64_t reach = 3 * overlap_radius(model);
    std::vector<uint32_t> carriers;
    const std::vector<uint32_t> seeds =
        voting_rows(graph, model, std::min(threshold, threshold / 2), reach ? &carriers : nullptr, /*aligned=*/false, deadline);
    if (reach == 0 || seeds.empty()) return seeds;
    auto vaddr = graph.vaddr();
    std::vector<uint32_t> out;   // ascending: the windows ascend with the seeds
    uint64_t covered = 0;        // [0, covered) is done
    auto at = carriers.begin();
    for (uint32_t r : seeds) {
        const uint64_t v = vaddr[r];
        const uint64_t lo = std::max(covered, v > reach ? v - reach : 0);
        const uint64_t hi = v + reach + 1 < v ? UINT64_MAX : v + reach + 1;
        if (lo >= hi) continue;
        auto [first, last] = graph.nodes_between(lo, hi);
        at = std::lower_bound(at, carriers.end(), first);
        for (; at != carriers.end() && *at < last; ++at) out.push_back(*at);
        covered = hi;
    }
    return out;   // ⊇ seeds: a seed carries a key node and lies in its own window
}

bool keys_per_build(const Model& model) {
    return model.provenance.training_config.find("\nfrequency = per_build") != std::string::npos;
}

const char* to_string(BuildMatch m) {
    switch (m) {
    case BuildMatch::SameBuild: return "same-build";
    case BuildMatch::SameVersion: return "same-version";
    case BuildMatch::OtherVersion: return "other-version";
    case BuildMatch::Unknown: break;
    }
    return "unknown";
}

std::vector<KernelBuild> model_builds(const Model& model) {
    if (!model.provenance.kernel_builds.empty()) return model.provenance.kernel_builds;
    // Format 2: "<package> <version>", the package named linux-image-<release>[-unsigned].
    std::string_view pkg = model.provenance.kernel_build;
    pkg = pkg.substr(0, pkg.find(' '));
    constexpr std::string_view kPrefix = "linux-image-", kUnsigned = "-unsigned";
    if (!pkg.starts_with(kPrefix)) return {};
    pkg.remove_prefix(kPrefix.size());
    if (pkg.ends_with(kUnsigned)) pkg.remove_suffix(kUnsigned.size());
    if (kernel_version_of(pkg).empty()) return {};
    return {KernelBuild{std::string(pkg), ""}};
}

BuildMatch match_build(const Model& model, const std::optional<FoundBanner>& dump) {
    const std::vector<KernelBuild> builds = model_builds(model);
    if (!dump || builds.empty()) return BuildMatch::Unknown;
    const KernelBanner& b = dump->banner;
    const std::string version = kernel_version_of(b.release);
    BuildMatch best = BuildMatch::OtherVersion;
    for (const KernelBuild& k : builds) {
        if (k.banner.empty() ? k.release == b.release : k.banner == b.text) return BuildMatch::SameBuild;
        if (!version.empty() && kernel_version_of(k.release) == version) best = BuildMatch::SameVersion;
    }
    return best;
}

namespace {

std::string releases(const Model& model) {
    std::string s;
    const auto builds = model_builds(model);
    std::set<std::string> seen;
    for (const KernelBuild& k : builds) {
        if (!seen.insert(k.release).second) continue;
        if (seen.size() > 4) return s + ", …";
        s += (s.empty() ? "" : ", ") + k.release;
    }
    return s;
}

std::string percent(double f) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f%%", 100 * f);
    return b;
}

// Sample: where the candidate objects were counted, "" when everywhere
std::string sampled_where(const VoteAgreement& a) {
    return a.share < 1 ? "in the sampled " + percent(a.share) + " of the address space" : "";
}

}  // namespace

std::string score_text(float x) {
    char b[32];
    std::snprintf(b, sizeof b, std::fabs(x) >= 0.01f && std::fabs(x) < 1e6f ? "%.2f" : "%g", double(x));
    return b;
}

std::vector<size_t> missing_key_nodes(const Model& model, const VoteAgreement& agreement) {
    std::vector<size_t> missing;
    if (keys_per_build(model) || agreement.objects < kMinAgreementObjects) return missing;
    for (size_t c = 0; c < model.key_nodes.size() && c < agreement.key_votes.size(); ++c) {
        const KeyNode& k = model.key_nodes[c];
        if (k.weight >= kSureKeyWeight && double(agreement.key_votes[c]) < 0.5 * k.weight * double(agreement.agreeing))
            missing.push_back(c);
    }
    return missing;
}

std::optional<double> placed_threshold_scale(const Model& model, const VoteAgreement& placed, float threshold) {
    double total = 0, missing = 0;
    for (const KeyNode& k : model.key_nodes) total += k.weight;
    for (size_t c : missing_key_nodes(model, placed)) missing += model.key_nodes[c].weight;
    if (missing == 0 || total <= 0 || missing > kMaxPlacedMissingShare * total) return std::nullopt;
    const double scale = 1 - missing / total;
    // never down to one key node's vote (every base it voted for would be reported)
    if (!(double(threshold) * scale > double(model.single_vote_bound()))) return std::nullopt;
    return scale;
}

ModelFit assess_fit(const Model& model, const std::string& source, const std::optional<FoundBanner>& dump,
                    const VoteAgreement& agreement, const std::optional<ScoreReach>& reach, MemoryLack lack) {
    ModelFit f;
    if (reach) f.threshold = reach->threshold;
    f.type = model.object_type;
    f.source = source;
    f.build = match_build(model, dump);
    f.agreement = agreement;
    const Provenance& p = model.provenance;
    if (p.validation_objects) f.expected = double(p.validation_agreeing) / double(p.validation_objects);
    std::vector<std::string> why;
    if (f.build == BuildMatch::OtherVersion) {
        f.fits = false;
        why.push_back("the dump's kernel " + dump->banner.release + " is another version than the model was trained on (" +
                      releases(model) + ")");
    } else if (f.build == BuildMatch::SameVersion) {
        why.push_back("the dump's kernel " + dump->banner.release + " is another build of the version the model was trained on (" +
                      releases(model) + ")");
    }
    // Keys chosen per build: no vote check.
    const bool per_build = keys_per_build(model);
    if (per_build && f.build != BuildMatch::SameBuild)
        why.push_back("its key nodes hold the layouts of " + std::to_string(model_builds(model).size()) +
                      " builds, so its votes cannot tell a moved layout: judged by build (and by its objects' fields when they are read)");
    f.per_build = per_build;
    if (per_build) f.not_judged = "key nodes chosen per build";
    else if (agreement.objects < kMinAgreementObjects)
        f.not_judged = "fewer than " + std::to_string(kMinAgreementObjects) + " candidate objects";
    // Memory the dump lacks may explain missing votes only on the model's own build, or an unknown one.
    const bool own_or_unknown = f.build == BuildMatch::SameBuild || f.build == BuildMatch::Unknown;
    double total = 0, missing = 0;
    bool unsure = false;   // missing key nodes excused by absent memory on an unknown build
    if (!per_build)
        for (const KeyNode& k : model.key_nodes) total += k.weight;
    for (size_t c : missing_key_nodes(model, agreement)) {
        const KeyNode& k = model.key_nodes[c];
        f.missing.push_back(std::to_string(k.offset) + "/" + std::to_string(k.length));
        missing += k.weight;
    }
    if (!f.missing.empty() && missing >= kMissingShare * total) {
        // On the model's own build, key nodes a lacking dump silenced are absence, not a moved layout.
        // With no banner (a cut that took the kernel image) the two cannot be told apart: not a misfit,
        // and not checked either (--require-fit fails).
        const bool absence = lack != MemoryLack::None && own_or_unknown;
        if (!absence) f.fits = false;
        unsure = absence && f.build == BuildMatch::Unknown;
        std::string names;
        for (const std::string& k : f.missing) names += (names.empty() ? "" : ", ") + k;
        why.push_back("key node" + std::string(f.missing.size() > 1 ? "s " : " ") + names + " (" + percent(missing / total) +
                      " of the key-node weight, in nearly every trained object) voted for at most half as many of the " +
                      std::to_string(agreement.agreeing) + " agreeing candidate objects: " +
                      (!absence ? "the struct layout differs"
                       : f.build == BuildMatch::SameBuild
                           ? "the memory their edges lead to is missing from the dump (the model's own build)"
                           : "the memory their edges lead to is missing from the dump, or the struct layout differs "
                             "(the dump's build is unknown)"));
    }
    const double floor = f.expected.value_or(kExpectedAgreement) - kAgreementMargin;
    if (!per_build && agreement.objects >= kMinAgreementObjects && agreement.fraction() < floor &&
        agreement_by_chance(agreement, f.expected.value_or(kExpectedAgreement)) < kAgreementChance) {
        // When whole address ranges are gone with their page tables (modules live in vmalloc space)
        // the missing memory may explain it: not called a misfit, and not checked either, on any
        // build — one planted page-table entry pointing past the dump makes a dump "lack tables"
        // (attacker 18: a 6.12 dump under a 6.1 banner, agreement 0 of 251, passed --require-fit).
        const bool absence = lack == MemoryLack::Tables && own_or_unknown;
        if (!absence) f.fits = false;
        unsure = unsure || absence;
        why.push_back("key-node votes agree on " + std::to_string(agreement.agreeing) + " of " +
                      std::to_string(agreement.objects) + " candidate objects (" + percent(agreement.fraction()) +
                      (agreement.share < 1 ? " " + sampled_where(agreement) : "") +
                      (f.expected ? ", " + percent(*f.expected) + " on its validation dumps" : "") + "): " +
                      (!absence ? "the struct layout differs"
                       : f.build == BuildMatch::SameBuild
                           ? "the memory their votes come from may be missing from the dump (the model's own build; "
                             "not checked)"
                           : "the memory their votes come from is missing from the dump, or the struct layout differs "
                             "(the dump's build is unknown)"));
    }
    // Nothing to measure (tester 11: a model of a build whose layout moved found 0 objects with
    // no word): not a misfit the votes show, but never a silent "fits".
    const bool nothing = reach && !(reach->best && *reach->best >= reach->threshold);
    const bool unreachable = nothing && reach->threshold > max_score(model);
    const std::string where = agreement.share < 1 ? sampled_where(agreement) : "anywhere in the dump";
    if (agreement.objects == 0)
        why.push_back(unreachable ? "no candidate object"
                                  : "no candidate object: no base gathered the threshold's worth of key-node votes " + where +
                                        " (a struct layout the model does not know, or memory the dump lacks?)");
    if (nothing) {
        const std::string t = score_text(reach->threshold);
        // A candidate object's group reaches the threshold (Agreement), no base of it alone did.
        if (agreement.objects > 0)
            why.push_back(std::to_string(agreement.objects) + " candidate object" + (agreement.objects > 1 ? "s" : "") +
                          " had the threshold's worth of votes only split between nearby bases");
        if (unreachable)
            why.push_back("the threshold " + t + " is above the highest score the model can give (" +
                          score_text(max_score(model)) + ", all " + std::to_string(model.key_nodes.size()) +
                          " key nodes voting)");
        else if (reach->best)   // a lower bound: the run skipped rows that cannot reach the threshold
            why.push_back("the highest score seen is " + score_text(*reach->best) + ", below the threshold " + t +
                          " (bases the run skipped may score more, still below it)");
    }
    for (const std::string& w : why) add_reason(f, w);
    f.checked = f.fits && !unsure &&
                (f.build == BuildMatch::SameBuild || (!per_build && agreement.objects >= kMinAgreementObjects));
    return f;
}

void judge_fields(ModelFit& fit, std::span<const Detection> detections, MemoryLack lack) {
    fit.fields_read = fit.fields_bad = 0;
    std::string example;   // the first bad value's reason
    // A misread through an object that is itself one of the detections (a parent task found by the
    // task_struct model, a file, a dentry, a cred) counts once per such object: one edited parent's
    // tgid spoils its hundreds of children's ppid (helper 61: 378 of 460, a fitting model made a
    // misfit). Through anything else — an object reported off its base reads a neighbour's word as its
    // pointer, e.g. 113 off-base mm_structs all took &init_user_ns for exe_file — once per detection.
    std::unordered_set<uint64_t> detected, counted;
    for (const Detection& d : detections) detected.insert(d.vaddr);
    for (const Detection& d : detections) {
        if (d.type != fit.type || d.fields.empty()) continue;
        ++fit.fields_read;
        const ObjectField* misread = nullptr;   // a member the kernel's BTF lacks is the build's, not a misread
        for (const ObjectField& f : d.fields) {
            if (!f.misread) continue;
            const bool counts = f.through == 0 || !detected.count(f.through) || counted.insert(f.through).second;
            if (counts && !misread) misread = &f;
        }
        if (!misread) continue;
        ++fit.fields_bad;
        if (const ObjectField* bad = field_of(d, "bad"); bad && example.empty()) {   // "key: reason", comma-joined
            const std::string entry = misread->key + ": ";
            for (size_t at = bad->text.find(entry); at != std::string::npos; at = bad->text.find(entry, at + 1))
                if (at == 0 || bad->text[at - 1] == ',') {   // "uid: " not inside "euid: "
                    example = bad->text.substr(at, bad->text.find(',', at) - at);
                    break;
                }
        }
    }
    if (fit.fields_read < kMinAgreementObjects || double(fit.fields_bad) <= kBadFieldShare * double(fit.fields_read)) return;
    const std::string counts = std::to_string(fit.fields_bad) + " of the " + std::to_string(fit.fields_read) +
                               " detections read with the dump's own types have a bad field (" + example + ")";
    if (!fit.per_build || fit.build == BuildMatch::SameBuild) {   // the votes judged: reported only
        add_reason(fit, counts + (fit.fits ? ": values read through other objects, or edited ones; the key-node votes "
                                             "judge this model's fit"
                                           : ""));
        return;
    }
    const bool absence = lack != MemoryLack::None;
    if (!absence && fit.fits) fit.misfit_by_fields = true;
    if (!absence) fit.fits = false;
    fit.checked = fit.checked && !absence && fit.fits;
    add_reason(fit, counts + ": " +
                        (absence ? "the memory the dump lacks, or objects reported off their base (not checked)"
                                 : "objects reported off their base, not objects of the type, or an edited object that many of them point to"));
}

void add_reason(ModelFit& fit, const std::string& clause) { fit.reason += (fit.reason.empty() ? "" : "; ") + clause; }

std::string word_size_text(uint32_t word_size) {
    return std::to_string(word_size) + "-byte words (" + (word_size == 4 ? "32-bit or PAE" : "x86-64") + " paging)";
}

std::string format_model_list(std::span<const Model> models, std::span<const std::string> sources,
                              DetectionFormat format, bool picks) {
    if (format == DetectionFormat::Csv) throw InputError("--list-models writes table or json, not csv");
    const bool json = format == DetectionFormat::Json;
    // What dmdetect DUMP would pick, per single-type model: for each build a listed model records
    // (the dump's banner being that build's), and for a dump without a banner.
    std::vector<std::vector<std::string>> picked_for(models.size());
    std::vector<char> picked_bannerless(models.size(), 0);
    if (picks) {
        std::vector<Model> single;
        std::vector<size_t> index;   // single[i] is models[index[i]]
        std::vector<std::pair<KernelBuild, uint32_t>> builds;   // distinct, first-seen order, with a word size
        for (size_t f = 0; f < models.size(); ++f) {
            if (models[f].joint()) continue;
            single.push_back(models[f]);
            index.push_back(f);
            for (const KernelBuild& b : model_builds(models[f]))
                if (std::find(builds.begin(), builds.end(), std::pair{b, models[f].graph.word_size}) == builds.end())
                    builds.emplace_back(b, models[f].graph.word_size);
        }
        // A build recorded without its banner (format-2 files) stands for any banner of its release:
        // where another model records that release's banner, a dump carries that one.
        std::erase_if(builds, [&](const std::pair<KernelBuild, uint32_t>& e) {
            return e.first.banner.empty() && std::any_of(builds.begin(), builds.end(), [&](const auto& o) {
                       return !o.first.banner.empty() && o.first.release == e.first.release && o.second == e.second;
                   });
        });
        std::stable_sort(builds.begin(), builds.end(), [](const auto& a, const auto& b) { return a.first.release < b.first.release; });
        for (const auto& [b, width] : builds) {
            FoundBanner dump;
            dump.banner.text = b.banner;
            dump.banner.release = b.release;
            for (size_t i : pick_models(single, dump, nullptr, {}, width))
                if (auto& l = picked_for[index[i]]; std::find(l.begin(), l.end(), b.release) == l.end()) l.push_back(b.release);
        }
        std::set<uint32_t> widths;
        for (const Model& m : single) widths.insert(m.graph.word_size);
        for (uint32_t width : widths)
            for (size_t i : pick_models(single, std::nullopt, nullptr, {}, width)) picked_bannerless[index[i]] = 1;
    }
    std::string out;
    for (size_t f = 0; f < models.size(); ++f) {
        const std::vector<Model> types = models[f].joint() ? models[f].type_models() : std::vector<Model>{};
        for (const Model& m : models[f].joint() ? std::span<const Model>(types) : models.subspan(f, 1)) {
            std::string builds, keys;
            for (const KernelBuild& b : model_builds(m))
                builds += (builds.empty() ? "" : json ? "," : ", ") + (json ? json_string(b.release) : b.release);
            for (const KeyNode& k : m.key_nodes) keys += (keys.empty() ? "" : json ? "," : " ") + (json ? json_string(k.text()) : k.text());
            const Provenance& p = m.provenance;
            // its threshold, window and alignment came from these manifests' validation dumps too
            std::string recal;
            for (const std::string& manifest : models[f].provenance.recalibrated_on())
                recal += (recal.empty() ? "" : json ? "," : ", ") + (json ? json_string(manifest) : manifest);
            const bool measured = p.validation_objects > 0, absent = m.image_absent_threshold > 0;
            auto num = [](float x) {   // six digits: the threshold the model holds, not the 2 decimals of a fit line
                char b[32];
                std::snprintf(b, sizeof b, "%.6g", double(x));
                return std::string(b);
            };
            const size_t anchored = m.anchored_key_nodes();
            if (json) {
                out += "{\"record\":\"model\",\"type\":" + json_string(m.object_type) + ",\"model\":" + json_string(sources[f]) +
                       ",\"joint\":" + (models[f].joint() ? "true" : "false") + ",\"word_size\":" + std::to_string(m.graph.word_size) +
                       ",\"builds\":[" + builds + "],\"threshold\":" + num(m.threshold) + ",\"image_absent_threshold\":" +
                       (absent ? num(m.image_absent_threshold) : "null") + ",\"vote_window\":" + std::to_string(m.vote_window) +
                       ",\"base_alignment\":" + std::to_string(m.base_alignment) + ",\"anchored_key_nodes\":" + std::to_string(anchored) +
                       ",\"validation_objects\":" + std::to_string(p.validation_objects) + ",\"validation_agreeing\":" +
                       std::to_string(p.validation_agreeing) + ",\"key_nodes\":[" + keys + "],\"trained\":" + json_string(p.date) +
                       ",\"recalibrated_on\":[" + recal + "]";
                if (picks) {
                    std::string list;
                    for (const std::string& r : picked_for[f]) list += (list.empty() ? "" : ",") + json_string(r);
                    out += ",\"picked_for\":[" + list + "],\"picked_without_banner\":" + (picked_bannerless[f] ? "true" : "false");
                }
                out += "}\n";
            } else {
                out += m.object_type + ": " + sources[f] + (models[f].joint() ? " (joint model of " + std::to_string(types.size()) + " types)" : "") +
                       "\n  " + word_size_text(m.graph.word_size) + "; builds: " + (builds.empty() ? "not recorded" : builds) +
                       "\n  threshold " + num(m.threshold) +
                       (absent ? ", " + num(m.image_absent_threshold) + " on dumps without the kernel image" : "") +
                       "; vote window " + std::to_string(m.vote_window) + " bytes" +
                       (m.base_alignment ? "; bases aligned to " + std::to_string(m.base_alignment) + " bytes" : "") +
                       (anchored ? "; " + std::to_string(anchored) + " key nodes anchored at struct members (placed by the dump's BTF on other builds)" : "") +
                       "; validation vote agreement " +
                       (measured ? std::to_string(p.validation_agreeing) + " of " + std::to_string(p.validation_objects) : "not measured") +
                       "; trained " + (p.date.empty() ? "(no date)" : p.date) +
                       (recal.empty() ? "" : "; recalibrated on " + recal) + "\n  " + std::to_string(m.key_nodes.size()) +
                       (m.key_nodes.size() == 1 ? " key node" : " key nodes") + " (offset/length[+ = open end]/weight): " + keys + "\n";
                if (picks) {
                    std::string list;
                    for (const std::string& r : picked_for[f]) list += (list.empty() ? "" : ", ") + r;
                    out += std::string("  dmdetect DUMP picks it for (among the builds the models record): ") +
                           (models[f].joint() ? "no dump (a joint model is given with --weights)"
                                              : list.empty() && !picked_bannerless[f] ? "none (another model of its type fits each better)"
                                              : list.empty() ? "dumps without a kernel banner"
                                                             : list + (picked_bannerless[f] ? "; dumps without a kernel banner" : "")) +
                           "\n";
                }
            }
        }
    }
    return out;
}

std::vector<size_t> pick_models(std::span<const Model> models, const std::optional<FoundBanner>& dump,
                                std::vector<std::string>* notes, std::span<const std::string> sources, uint32_t word_size,
                                bool lacks_image) {
    auto rank = [](BuildMatch m) {
        switch (m) {
        case BuildMatch::SameBuild: return 0;
        case BuildMatch::SameVersion: return 1;
        case BuildMatch::Unknown: return 2;
        case BuildMatch::OtherVersion: break;
        }
        return 3;
    };
    struct Candidate {
        // (rank, no threshold for a dump lacking the image, −builds of the dump's version and flavour,
        // builds of its version and another flavour (both 0 unless SameVersion), tie, index): least wins
        std::tuple<int, int, int64_t, int64_t, int64_t, size_t> key;
        BuildMatch match;
        int64_t builds, flavour = 0, other_flavour = 0;
    };
    const std::string version = dump ? kernel_version_of(dump->banner.release) : "",
                      flavour = dump ? kernel_flavour_of(dump->banner) : "";
    std::map<std::string, std::vector<Candidate>> by_type;
    std::map<std::string, uint32_t> other_width;   // types with a model of another word size only: that size
    for (size_t i = 0; i < models.size(); ++i) {
        if (word_size && models[i].graph.word_size != word_size) {
            other_width.emplace(models[i].object_type, models[i].graph.word_size);
            continue;
        }
        const BuildMatch m = match_build(models[i], dump);
        const int r = rank(m);
        const auto builds = int64_t(model_builds(models[i]).size());
        const int unready = lacks_image && !(models[i].image_absent_threshold > 0);
        int64_t same = 0, other = 0;
        if (m == BuildMatch::SameVersion && !flavour.empty())   // no flavour known: the build counts decide
            for (const KernelBuild& k : model_builds(models[i]))
                if (kernel_version_of(k.release) == version) ++(kernel_flavour_of(k.release) == flavour ? same : other);
        by_type[models[i].object_type].push_back({{r, unready, -same, other, r == 0 ? builds : -builds, i}, m, builds, same, other});
    }
    auto name = [&](size_t i) { return i < sources.size() ? sources[i] : "model " + std::to_string(i); };
    auto what = [](const Candidate& c) {
        return std::string(to_string(c.match)) + ", " + std::to_string(c.builds) + (c.builds == 1 ? " build" : " builds");
    };
    // Why the chosen `c` won over `o`, in the order of the key.
    auto why = [&](const Candidate& c, const Candidate& o) -> std::string {
        const std::string counts = " (" + std::to_string(c.builds) + " against " + std::to_string(o.builds) + ")";
        if (std::get<0>(c.key) != std::get<0>(o.key)) {
            if (c.match == BuildMatch::Unknown)   // a model without builds over one of another version
                return "the chosen model records no kernel build, and this one was trained on another version than "
                       "the dump's kernel " + dump->banner.release;
            return "the chosen model's builds match the dump's kernel " + dump->banner.release + " better";
        }
        if (std::get<1>(c.key) != std::get<1>(o.key))
            return "the dump lacks the kernel image, and only the chosen model has a threshold for such dumps";
        if (c.flavour != o.flavour)
            return "neither was trained on the dump's build; the chosen model saw more builds of its version and flavour " +
                   flavour + " (" + std::to_string(c.flavour) + " against " + std::to_string(o.flavour) + ")";
        if (c.other_flavour != o.other_flavour)
            return "neither was trained on the dump's build; both saw " + std::to_string(c.flavour) + " of its version and flavour " +
                   flavour + ", the chosen model fewer of other flavours (" + std::to_string(c.other_flavour) + " against " +
                   std::to_string(o.other_flavour) + ": a model made for this flavour)";
        if (c.builds != o.builds) {
            if (c.match == BuildMatch::SameBuild)
                return "both were trained on the dump's build; the chosen model was made for fewer builds" + counts;
            return std::string(dump ? "neither was trained on the dump's build" : "the dump has no kernel banner to match them against") +
                   "; the chosen model was trained on more builds" + counts + ", so it saw more layouts";
        }
        return "they match the dump alike; the chosen model comes first in path order";
    };
    std::vector<size_t> out;
    if (notes && dump && flavour != kernel_flavour_of(dump->banner.release))
        notes->push_back("the banner's release " + dump->banner.release + " and its version \"" + dump->banner.version +
                         "\" disagree on PREEMPT_RT (an edited banner?): no model is preferred for a flavour");
    if (notes)
        for (const auto& [type, width] : other_width)
            if (!by_type.count(type))
                notes->push_back(type + ": no model for this dump's " + word_size_text(word_size) +
                                 "; its models are for " + std::to_string(width) + "-byte words");
    for (auto& [type, cands] : by_type) {
        std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) { return a.key < b.key; });
        const Candidate& chosen = cands.front();
        out.push_back(std::get<5>(chosen.key));
        if (!notes || cands.size() < 2) continue;
        // the models set aside for one reason together, the reason said once (newcomer 82: a 1–2 kB
        // line per type, "the chosen model's builds match … better" five times)
        std::vector<std::pair<std::string, std::string>> aside;   // (why, the models), first-seen order
        for (size_t k = 1; k < cands.size(); ++k) {
            const std::string reason = why(chosen, cands[k]), model = name(std::get<5>(cands[k].key)) + " (" + what(cands[k]) + ")";
            auto it = std::find_if(aside.begin(), aside.end(), [&](const auto& a) { return a.first == reason; });
            if (it == aside.end()) aside.emplace_back(reason, model);
            else it->second += ", " + model;
        }
        std::string line = type + ": chose " + name(std::get<5>(chosen.key)) + " (" + what(chosen) + ")";
        for (const auto& [reason, models_aside] : aside) line += "; set aside " + models_aside + ": " + reason;
        notes->push_back(std::move(line));
    }
    std::sort(out.begin(), out.end());
    return out;
}

FitVerdict fit_verdict(const ModelFit& f) {
    if (!f.not_run.empty()) return FitVerdict::NotRun;
    if (!f.fits) return FitVerdict::No;
    return f.agreement.objects > 0 && f.checked ? FitVerdict::Yes : FitVerdict::Unknown;
}

const char* to_string(FitVerdict v) {
    switch (v) {
        case FitVerdict::Yes: return "yes";
        case FitVerdict::No: return "no";
        case FitVerdict::Unknown: return "unknown";
        case FitVerdict::NotRun: return "not run";
    }
    return "?";
}

std::string format_fit_report(const std::optional<FoundBanner>& dump, std::span<const ModelFit> fits,
                              DetectionFormat format, std::optional<bool> lacks_image) {
    std::string out;   // (CSV: the table's lines, comment lines before its header: newcomer 90, no fit line in a CSV)
    auto missing = [](const ModelFit& f) {
        std::string s;
        for (const std::string& k : f.missing) s += (s.empty() ? "\"" : ",\"") + k + "\"";
        return s;
    };
    const bool json = format == DetectionFormat::Json;
    auto fraction = [](double f) {
        char b[32];
        std::snprintf(b, sizeof b, "%.4f", f);
        return std::string(b);
    };
    if (json) {
        out += "{\"record\":\"kernel\",\"release\":";
        if (dump) {
            out += json_string(dump->banner.release) + ",\"banner\":" + json_string(dump->banner.text) +
                   ",\"found\":\"" + (dump->in_kernel_image() ? "kernel image" : "outside the kernel image") +
                   "\",\"vaddr\":" + (dump->vaddr ? "\"" + hex(*dump->vaddr) + "\"" : "null") + ",\"paddr\":\"" +
                   hex(dump->paddr) + "\"";
        } else {
            out += "null,\"banner\":null";
        }
        if (lacks_image) out += std::string(",\"kernel_image\":\"") + (*lacks_image ? "lacking" : "present") + "\"";
        out += "}\n";
    } else if (dump) {
        out += "# kernel: " + dump->banner.release + " (" +
               (dump->in_kernel_image() ? "banner in the kernel image at " + hex(*dump->vaddr)
                                        : "banner outside the kernel image, at paddr " + hex(dump->paddr)) +
               ")\n# banner: " + dump->banner.text + "\n";
    } else {
        out += "# kernel: unknown (no `Linux version` banner in the dump)\n";
    }
    if (!json && lacks_image && *lacks_image) out += "# kernel image: lacking (models detect at their thresholds for such dumps)\n";
    for (const ModelFit& f : fits) {
        const bool measured = f.agreement.objects > 0;
        const FitVerdict verdict = fit_verdict(f);
        if (json) {
            // "fits" true only where the table says "yes"; null where it says "unknown" or "not run"
            // (newcomer 79: "fits":true beside "reason":"not run"; newcomer 82: beside "checked":false)
            out += "{\"record\":\"fit\",\"type\":" + json_string(f.type) + ",\"model\":" + json_string(f.source) +
                   ",\"fits\":" + (verdict == FitVerdict::Yes ? "true" : verdict == FitVerdict::No ? "false" : "null") +
                   ",\"verdict\":\"" + to_string(verdict) + "\",\"build\":\"" + to_string(f.build) +
                   "\",\"agreement\":" + (measured ? fraction(f.agreement.fraction()) : "null") +
                   ",\"objects\":" + std::to_string(f.agreement.objects) + ",\"agreeing\":" +
                   std::to_string(f.agreement.agreeing) +
                   (f.agreement.share < 1 ? ",\"sampled\":" + fraction(f.agreement.share) : "") + ",\"validation_agreement\":" +
                   (f.expected ? fraction(*f.expected) : "null") + ",\"missing_key_nodes\":[" + missing(f) +
                   "],\"reason\":" + json_string(f.reason) + ",\"checked\":" + (f.checked ? "true" : "false") +
                   // (a model not run has no votes to judge: newcomer 95 read "not run" beside
                   // "fewer than 5 candidate objects" as a contradiction)
                   ",\"not_judged\":" + (f.not_judged.empty() || verdict == FitVerdict::NotRun ? "null" : json_string(f.not_judged)) +
                   (f.threshold ? ",\"threshold\":" + score_text(*f.threshold) : "") +
                   (f.trained_threshold ? ",\"trained_threshold\":" + score_text(*f.trained_threshold) : "") +
                   (f.fields_read ? ",\"fields_read\":" + std::to_string(f.fields_read) + ",\"fields_bad\":" + std::to_string(f.fields_bad) : "") +
                   (f.found ? ",\"found\":" + std::to_string(*f.found) : "") +
                   (f.not_run.empty() ? "" : ",\"not_run\":" + json_string(f.not_run)) + "}\n";
        } else if (verdict == FitVerdict::NotRun) {
            out += "# fit " + f.type + ": NOT RUN, " + to_string(f.build) + ": " + f.not_run + "\n";
        } else {
            // a "yes" whose votes were not judged rests on the build alone: said (newcomer 84 M3: "yes"
            // beside 43.8% agreeing read as a pass of the votes)
            const std::string word = verdict == FitVerdict::No ? "NO"
                                     : verdict == FitVerdict::Yes && !f.not_judged.empty() ? "yes by build"
                                                                                           : to_string(verdict);
            // votes not judged are not evidence: said first, their figures after (newcomer 87 MED 8:
            // "yes" beside 2.7 %, read as a contradiction)
            const std::string counted = std::to_string(f.agreement.agreeing) + " of " + std::to_string(f.agreement.objects) +
                                        " candidate objects";
            const std::string votes =
                !measured             ? "votes agree on no candidate object"
                : f.not_judged.empty() ? "votes agree on " + counted + " (" + percent(f.agreement.fraction()) + ")"
                                       : "votes not judged (" + f.not_judged + "): " + counted + " agree (" +
                                             percent(f.agreement.fraction()) +
                                             (f.expected ? ", validation " + percent(*f.expected) : "") + ")";
            out += "# fit " + f.type + ": " + word + ", " + to_string(f.build) + ", " + votes +
                   (f.agreement.share < 1 ? " " + sampled_where(f.agreement) : "") +
                   (f.expected && (f.not_judged.empty() || !measured) ? ", validation " + percent(*f.expected) : "") +
                   (f.threshold ? ", threshold " + score_text(*f.threshold) : "") +
                   (f.trained_threshold ? " (trained " + score_text(*f.trained_threshold) + ")" : "") +
                   (f.fields_read ? ", a bad field in " + std::to_string(f.fields_bad) + " of " + std::to_string(f.fields_read) + " read" : "") +
                   (f.found ? ", " + std::to_string(*f.found) + " found" : "") +
                   (f.reason.empty() ? "" : ": " + f.reason) + "\n";
        }
    }
    return out;
}

namespace {
// `names` joined by `sep`, each as `text` gives it
template <class Names, class Text>
std::string joined(const Names& names, const char* sep, Text text) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : sep) + text(n);
    return out;
}
std::string as_is(std::string_view name) { return std::string(name); }
// "task_struct, module, file" (kCrossViewTypes)
std::string cross_view_types_text() { return joined(kCrossViewTypes, ", ", as_is); }
}  // namespace

uint64_t DumpVerdict::hidden_total() const noexcept {
    uint64_t n = 0;
    for (const auto& [type, count] : hidden) n += count;
    return n;
}

DumpVerdict dump_verdict(std::span<const Detection> found, std::span<const ModelFit> fits, const std::string& lacking,
                         std::span<const std::string> why, std::span<const std::string> asked) {
    DumpVerdict v;
    v.incomplete.assign(why.begin(), why.end());
    std::map<std::string, uint64_t> null_of, unread_of, unwalked_of;   // per cross-view type
    std::set<std::string, std::less<>> seen;
    for (const Detection& d : found) {
        if (!is_cross_view_type(d.type)) continue;
        seen.insert(d.type);
        const ObjectField* h = field_of(d, "hidden");
        if (!h || h->json == "null") {   // no "hidden": not read, or read with no list walked
            const bool read = std::any_of(d.fields.begin(), d.fields.end(), [](const ObjectField& f) { return f.key != kBelowTrainedKey; });
            ++(h ? null_of : read ? unwalked_of : unread_of)[d.type];
            ++v.not_judged;
            if (const ObjectField* bad = field_of(d, "bad"); h && bad && bad->text.find(kBrokenListReason) != std::string::npos)
                ++v.broken;
            continue;
        }
        ++v.judged;
        if (field_of(d, kHeldByHiddenKey)) ++v.held_by_hidden;
        if (h->json != "true") continue;
        auto it = std::find_if(v.hidden.begin(), v.hidden.end(), [&](const auto& p) { return p.first == d.type; });
        if (it == v.hidden.end()) v.hidden.emplace_back(d.type, 1);
        else ++it->second;
    }
    for (std::string_view t : kCrossViewTypes)
        if (seen.contains(t)) v.types.emplace_back(t);
    std::string unrun;   // cross-view types no model was run for (newcomer 90: `--types module` read "none hidden")
    for (std::string_view t : kCrossViewTypes)
        if (!asked.empty() && std::find(asked.begin(), asked.end(), t) == asked.end()) v.not_asked.emplace_back(t);
        else if (!fits.empty() && std::none_of(fits.begin(), fits.end(), [&](const ModelFit& f) { return f.type == t; }))
            unrun += (unrun.empty() ? "" : ", ") + std::string(t);
    if (!unrun.empty()) v.incomplete.push_back(unrun + " not looked for: no model of theirs was run");
    for (const ModelFit& f : fits) {
        if (!is_cross_view_type(f.type)) continue;
        const FitVerdict fv = fit_verdict(f);
        if (fv == FitVerdict::NotRun) v.incomplete.push_back("model " + f.type + " not run");
        else if (fv == FitVerdict::No) v.incomplete.push_back("model " + f.type + " does not fit this dump");
        else if (f.found && *f.found == 0) v.incomplete.push_back("model " + f.type + " found nothing");
    }
    for (const auto& [type, n] : null_of)
        v.incomplete.push_back(std::to_string(n) + " " + type + " with no hidden verdict (null: their bad field says why)");
    for (const auto& [type, n] : unread_of) v.incomplete.push_back(std::to_string(n) + " " + type + " not read (no fields)");
    for (const auto& [type, n] : unwalked_of)   // (newcomer 90: "not read" for tasks read with --kernel and no symbols)
        v.incomplete.push_back(std::to_string(n) + " " + type + " read, no kernel list walked to judge them by");
    if (!lacking.empty()) v.incomplete.push_back("the dump lacks " + lacking);
    if (!v.judged && v.incomplete.empty()) v.incomplete.push_back("no " + cross_view_types_text() + " found");
    return v;
}

std::string format_dump_verdict(const DumpVerdict& v, DetectionFormat format) {
    const bool json = format == DetectionFormat::Json;
    const std::string by_type = joined(v.hidden, json ? "," : ", ", [json](const std::pair<std::string, uint64_t>& h) {
        return json ? json_string(h.first) + ":" + std::to_string(h.second) : std::to_string(h.second) + " " + h.first;
    });
    const std::string incomplete = json ? joined(v.incomplete, ",", json_string) : joined(v.incomplete, "; ", as_is);
    if (json)
        return "{\"record\":\"verdict\",\"hidden\":" + std::to_string(v.hidden_total()) + ",\"hidden_by_type\":{" + by_type +
               "},\"held_by_hidden\":" + std::to_string(v.held_by_hidden) + ",\"judged\":" + std::to_string(v.judged) + ",\"not_judged\":" + std::to_string(v.not_judged) + ",\"broken\":" + std::to_string(v.broken) +
               ",\"complete\":" + (v.judged && v.incomplete.empty() ? "true" : "false") + ",\"incomplete\":[" + incomplete + "],\"types\":[" + joined(v.types, ",", json_string) +
               "],\"not_asked\":[" + joined(v.not_asked, ",", json_string) + "]}\n";
    auto objects = [](uint64_t n) { return std::to_string(n) + " object" + (n == 1 ? "" : "s"); };
    // the types counted (newcomer 95: "985 of 985 objects (task_struct, module, file)" read as all
    // three judged, where only files were found and the other models not run)
    const std::string types = joined(v.types, ", ", as_is);
    // objects a list broken in memory misses: a smeared capture, or an attacker's words (reviewer 92)
    const std::string broken = v.broken ? "; " + std::to_string(v.broken) + " not judged on kernel lists broken in memory (a smeared "
                                                                        "capture, or tampering)"
                                        : "";
    std::string line;
    if (v.hidden_total())
        line = "HIDDEN: " + by_type + " (of " + objects(v.judged) + " judged" +
               (v.not_judged ? ", " + std::to_string(v.not_judged) + " not judged" : "") + ")" + broken +
               (v.held_by_hidden ? "; " + std::to_string(v.held_by_hidden) + " file" + (v.held_by_hidden == 1 ? "" : "s") +
                                       " held by the hidden tasks"
                                 : "") +
               (incomplete.empty() ? "" : "; incomplete: " + incomplete);
    else if (v.judged && incomplete.empty())
        line = "none hidden among " + objects(v.judged) + " judged";
    else if (v.judged)
        line = "INCOMPLETE: 0 hidden among " + std::to_string(v.judged) + " of " + objects(v.judged + v.not_judged) + " (" +
               types + ")" + (v.not_judged ? "; " + std::to_string(v.not_judged) + " not judged" : "") + broken + ": " + incomplete;
    else
        line = "not judged" + broken + ": " + incomplete;
    if (!v.not_asked.empty()) line += " (" + joined(v.not_asked, ", ", as_is) + " not asked for: --types)";
    return std::string(kVerdictLine) + line + "\n";
}

}  // namespace deepmem
