// Does a model fit this dump? (issue #11 item 6, issue #9 items 2–3). A model learns one kernel's
// struct layouts; on another build whose layout moved, its votes split or shift and it can report
// every object at a wrong base with no error. Two checks, reported per model:
//
// Contract
//   Builds     The model's builds: provenance.kernel_builds (model format 3); for a format-2 file,
//              the release in provenance.kernel_build, which dmtrain wrote from the dataset manifest
//              as "<kernel package> <package version>" with Debian's package name
//              "linux-image-<release>[-unsigned]". The dump's build: the graph's kernel banner
//              (graph/kernel_banner.hpp). BuildMatch, best first:
//                SameBuild     a model build with the dump's banner, or its release when the model
//                              build has no banner;
//                SameVersion   a model build of the same major.minor (another ABI or flavour, e.g.
//                              6.1.0-57-rt-amd64 for a 6.1.0-47-amd64 model);
//                OtherVersion  none of the same major.minor (e.g. 6.12 or 5.10 for a 6.1 model);
//                Unknown       no banner in the dump, or no build recorded in the model.
//   Agreement  On the dump's candidate objects: the bases that received votes (exact bases, whatever
//              the model's vote window: a shift the window tolerates is still reported) are
//              grouped around the bases the Overlap rule keeps (each other base goes to the kept one
//              of highest score within R); a group whose summed score reaches the threshold is a
//              candidate object — enough key nodes saw an object here. Two checks on them:
//              split     a candidate object *agrees* when its kept base holds at least kAgreeShare
//                        of its group's score. When a layout moved part of an object, the key nodes
//                        before and after the move vote for bases that far apart (e.g. 64 bytes) and
//                        agreement collapses. dmtrain measures the same figure on its validation
//                        dumps at its final threshold and stores it in the model.
//              missing   per key node, the candidate objects whose kept base it voted for. A key
//                        node of weight (training frequency) ≥ kSureKeyWeight that votes for fewer
//                        than half that share of the agreeing ones is missing here (of all candidate
//                        objects, models that split votes by design misfired: the 32-bit module
//                        model agrees on 48% at validation, 5 real modules of 12 candidates on a
//                        test dump, every key node voting for all 5): its field moved or changed
//                        size, so the model may report objects at a consistent wrong base with no
//                        split at all (PREEMPT_RT's task_struct: every key node moved by 64 bytes
//                        but four near its end, which vanished; all 139 reported 64 bytes off).
//   Fit        A model does not fit when the build is OtherVersion; or, with at least
//              kMinAgreementObjects candidate objects, when agreement falls more than
//              kAgreementMargin below the model's validation figure (kExpectedAgreement for models
//              without one) and so far that `objects` draws agreeing each with that figure (at most
//              kMaxChanceAgreement) give at most `agreeing` with probability under kAgreementChance
//              (agreement_by_chance: a handful of candidates are no evidence — the 32-bit module model,
//              48% at validation, had 1 of 5 agreeing on a dump of its own build, a 21% draw; 0 of 251
//              is not chance), or missing key nodes carry at least kMissingShare of the key-node
//              weight — unless the dump lacks memory the kernel maps (dmdetect's rule) and its build is
//              the model's (the missing memory silenced them) or unknown (a cut that took the kernel
//              image and its banner: either, said so, and not Checked). SameVersion alone is reported, not a misfit: a cloud build of the trained
//              version detects like the generic one; the votes tell a moved layout. No candidate
//              object at all: nothing measured, so not a misfit, but the reason says so and dmdetect
//              warns (a model that finds nothing is never silent; assess_fit's `reach` says why).
//              A model whose key nodes were chosen per build (its training configuration has
//              `[keys] frequency = per_build`, train/trainer.hpp) holds the layouts of several
//              builds: on any one dump the other layouts' key nodes are missing or vote shifted
//              bases by design, so neither vote check applies; it is judged by build and by
//              Fields (the reason says so unless the dump's build is one it was trained on). Its
//              validation agreement does not help: measured over dumps of all its builds, it is no
//              figure for one build's (6.1 mm_struct: 54% at validation, 0 of 51 on 6.1.0-53 with
//              every object found; the 6.12 one 100%, 0 of 24 with every object off its base).
//              Checked (ModelFit::checked): SameBuild, or the votes measured; what --require-fit asks.
//   Fields     A third check, none of the model's: when the detections' fields were read with
//              the dump's own types (train/interpret.hpp, the kernel's BTF), a model the votes
//              could not judge (per-build key nodes, the dump not of its builds) does not fit
//              when at least kMinAgreementObjects of its detections were read and more than
//              kBadFieldShare of them have a bad value (ObjectField::misread: not a member missing
//              from the BTF; one read through another detected object — a parent task, a file, a
//              dentry, a cred — counts once per such object, helper 61: one parent's tgid made 378
//              children's ppid bad): an object reported off its base reads its neighbours' bytes as its
//              pointers and names. Elsewhere the count is reported, not a verdict: values read
//              through objects many detections share (a parent's tgid, a cred, a dentry) let one
//              write spoil hundreds (helper 60: one tgid of −1 made the same-build task_struct
//              model, 487 of 487 votes agreeing, a misfit, and so withdrew a hidden task's verdict). On 16 validation dumps of 8 builds no model was trained on,
//              the 6.12 mm_struct model reported every mm_struct of 6.12.90 and 6.12.107 off its
//              base, "fits" (its key nodes are per build: no vote check), and every one read
//              "exe: f_path.dentry unreadable"; the correct detections had bad fields in at most
//              18% (task_struct: exited tasks, creds freed), ≤ 2% for the other types. Unless the dump
//              lacks memory the kernel maps (unreadable values are then expected): said, not a
//              misfit, not Checked. judge_fields(); not Checked by itself either. After a misfit
//              of this check alone, only the detections with a bad field lose their "hidden"
//              verdict.
//   Rows       Detector::scan measures agreement when asked (DetectOptions::measure_agreement): it
//              then runs the network on agreement_rows() instead of the voting rows — every node
//              that carries a key node (detect.hpp carries(): its length, or the first part of a key
//              node split by planted pointers) within 3R of a voting row at half the threshold
//              (of two bases splitting a candidate object's votes, one holds at least half; the
//              window covers every base within R of it and their voters) — so that the bases that
//              compete with a candidate get their votes too, even when none reaches the threshold
//              alone. Detections are unchanged (a superset of the voting rows gives the same ones).
//              A single-type model whose key nodes were chosen per build (keys_per_build: no vote
//              check judges it) is run on its voting rows, and its agreement counted over them,
//              unless it finds nothing: then again on agreement_rows(), for the diagnosis (split
//              votes, no candidate). On a 556 k-node graph the six per-version models' rows for
//              file fell from 409,834 to 4,872 so.
//   Sample     (issue 15: a 62 MiB kdump crafted so that 4 M nodes carry cred's and file's key nodes
//              ran 15 s of agreement rows, its voting rows none.) When the agreement rows exceed the
//              voting rows by more than DetectOptions::agreement_rows_budget, the network runs on the
//              voting rows (the detections) and on the others only near a sample of the virtual
//              address space: regions of `chunk` bytes, each kept with probability `share` = budget /
//              extra rows by a fixed hash of its index (the same sample on every run), and the rows
//              within `margin` = 3R of a kept region. Only candidate objects whose kept base lies in a
//              kept region are counted: every base within R of it and their voters lie within 3R, so
//              each one counted has the votes the whole run would give it (up to Overlap chains across
//              a region's edge), and which objects are counted does not depend on whether their votes
//              split. VoteAgreement::share says it (the probability, not the share of regions a
//              dump's draw kept); the counts are the sample's. Single-type models only: a joint
//              network's agreement rows run whole. The budget bounds the rows in expectation over
//              regions, not for every input: the hash is fixed, so a crafted dump may put its extra
//              rows in kept regions (helper 76; a cap by hash order is not built); what their run
//              costs is bounded by DetectOptions::network_work, past which the agreement falls back
//              to the voting rows' votes, unsampled.
#pragma once

#include "detect/detect.hpp"
#include "graph/kernel_banner.hpp"

#include <optional>
#include <span>
#include <string>
#include <vector>

namespace deepmem {

inline constexpr double kAgreeShare = 0.9;
inline constexpr uint64_t kMinAgreementObjects = 5;
inline constexpr double kAgreementMargin = 0.15;
inline constexpr double kExpectedAgreement = 0.95;
inline constexpr double kSureKeyWeight = 0.9;
inline constexpr double kMissingShare = 0.1;
inline constexpr double kAgreementChance = 0.01;     // see Fit: a lower agreement is chance above this
inline constexpr double kMaxChanceAgreement = 0.99;  // the expected share a chance draw is measured at, at most
inline constexpr double kBadFieldShare = 0.5;
inline constexpr double kMaxPlacedMissingShare = 0.5;

// See Sample. Default (chunk 0): nothing sampled, every row runs and every candidate object counts.
struct AgreementSample {
    uint64_t chunk = 0;    // bytes of virtual address space a region spans (a power of two); 0: no sample
    uint64_t margin = 0;   // 3R: rows this close to a kept region run too
    double share = 1;      // the probability a region is kept
    bool counts(uint64_t base) const noexcept;   // a candidate object whose kept base is here is counted
    bool runs(uint64_t vaddr) const noexcept;    // a row here runs (in a kept region or within margin)
};
// See Sample: for agreement rows `extra` beyond the voting rows; no sample when extra ≤ budget.
AgreementSample agreement_sample(const Model& model, uint64_t extra, uint64_t budget);

// See Fit: P(X ≤ a.agreeing) for X ~ Binomial(a.objects, min(expected, kMaxChanceAgreement)); 1 when
// every object agreed or none was measured.
double agreement_by_chance(const VoteAgreement& a, double expected);
// See Agreement: over every vote of a graph (votes_of(), sorted).
// With a sample (Sample), only the candidate objects it counts, and `share` set from it.
VoteAgreement vote_agreement(const Model& model, std::span<const std::pair<uint64_t, uint32_t>> votes, float threshold,
                             const AgreementSample& sample = {});
// See Agreement, missing: the indices of the key nodes missing on the dump (none for a per_build
// model or under kMinAgreementObjects candidate objects), ascending.
std::vector<size_t> missing_key_nodes(const Model& model, const VoteAgreement& agreement);
// Placed threshold (issue #9 item 5): a model whose key nodes were placed in another build's layout
// (train/key_anchors.hpp) and run again, `placed` that run's agreement. Key nodes still missing there
// (a field the build dropped, so its anchor places nothing and the node keeps its trained range, or
// a segment the build cut otherwise) add nothing to any object's score on this dump, so the
// threshold keeps its share of the weight that can vote: the factor 1 − missing weight / total
// weight to multiply it by. nullopt when none is missing, when more than kMaxPlacedMissingShare
// of the weight is (what is left is too little to tell objects apart at any share: the threshold
// stays, and the fit check says the layout differs), or when `threshold`, the one the placed run
// detected at (the trained one, or the model's for dumps without the kernel image), so scaled would
// be at or below one key node's vote (Model::single_vote_bound). Measured on the placed run's candidate objects,
// so at least kMinAgreementObjects must reach the trained threshold there. The 6.1 task_struct model
// on two 5.10 dumps: 6 of its 20 key nodes silent, 13.63 → 9.54; their live tasks scored 11.1–15.1
// (67 of 151 on one dump 13.1, under 13.63: a placed key node silent on those), other memory at most
// 10.1 (init_task's direct-map alias) and 9.1 (freed task_structs).
std::optional<double> placed_threshold_scale(const Model& model, const VoteAgreement& placed, float threshold);
// See Rows: ascending, a superset of voting_rows(graph, model, threshold); `deadline` as voting_rows'.
std::vector<uint32_t> agreement_rows(const MemoryGraph& graph, const Model& model, float threshold,
                                     InferenceNet::Clock::time_point deadline = InferenceNet::Clock::time_point::max());
// Whether the model's key nodes were chosen per build (its training configuration has `[keys]
// frequency = per_build`, train/trainer.hpp): Fit's vote checks do not apply to it.
bool keys_per_build(const Model& model);

enum class BuildMatch : uint8_t { SameBuild, SameVersion, OtherVersion, Unknown };
const char* to_string(BuildMatch);   // "same-build", "same-version", "other-version", "unknown"

// See Builds: the model's builds, format 3 or derived from a format-2 kernel_build.
std::vector<KernelBuild> model_builds(const Model& model);
BuildMatch match_build(const Model& model, const std::optional<FoundBanner>& dump);

struct ModelFit {
    std::string type, source;           // object type; model file (or caller's label)
    BuildMatch build = BuildMatch::Unknown;
    VoteAgreement agreement;            // on the dump
    std::optional<double> expected;     // the model's validation agreement, when recorded
    std::vector<std::string> missing;   // key nodes missing on the dump, "offset/length"
    bool fits = true;
    // The fit was checked, not just not refuted: the dump's build is one the model was trained on
    // (SameBuild), or the votes were measured (at least kMinAgreementObjects candidate objects, a
    // model not per_build). A dump with no banner and nothing found, or another build whose objects
    // are too few to vote on, is neither: `--require-fit` fails on it (attacker 14 #11: the 6.1
    // model on a cut 6.12 dump whose banner was lost found 0 objects, and --require-fit exited 0);
    // nor is one with no banner whose missing key nodes the memory it lacks may explain.
    bool checked = false;
    // Why the vote agreement was not judged ("" when it was): too few candidate objects, or a model
    // whose key nodes were chosen per build (its votes cannot show a moved layout).
    std::string not_judged;
    std::string reason;                 // why not, or what is worth knowing ("" when nothing)
    std::optional<float> threshold;     // the threshold the run used (ScoreReach), when given
    std::optional<float> trained_threshold;   // the one it was calibrated at, when dmdetect scaled it (Placed threshold)
    // Fields: detections of the type whose fields were read, and those of them with a bad value.
    uint64_t fields_read = 0, fields_bad = 0;
    // Fields decided this misfit (the votes could not judge): a detection whose fields read clean
    // keeps its "hidden" verdict (dmdetect withdraws the others'; train/interpret.hpp withdraw_hidden).
    bool misfit_by_fields = false;
    bool per_build = false;   // key nodes chosen per build (the vote checks do not apply)
    // Why its network was not run (Detector::last_not_run, past the work limit): it detected
    // nothing and measured nothing — not "found nothing". "" when it ran. The caller sets it.
    std::string not_run;
    // The objects of its type the run reported, when the caller says (dmdetect: after its overlap
    // rules; none when not run): a "yes" beside 0 found reads as what it is (reviewer 83).
    std::optional<uint64_t> found;
};
// Appends a clause to `fit.reason` ("; " between clauses).
void add_reason(ModelFit& fit, const std::string& clause);
// What a detection run saw of a model's scores: the threshold it used and the highest candidate
// score (Detector::last_best_scores: none without a candidate; below the threshold, a lower bound).
struct ScoreReach {
    float threshold = 0;
    std::optional<float> best;
};
// A score or threshold as messages print it: two decimals, or %g where those would hide it.
std::string score_text(float x);
// With `reach` of a run that reported nothing (best absent or below the threshold), the reason says
// why in scores (attacker 13: "found nothing" blamed the model when the user's threshold was just
// above every score): a threshold above max_score(model) is named as such, in place of the guess
// at a layout or memory it lacks; otherwise the highest score seen. Candidate objects (Agreement)
// there had the threshold's worth of votes only split between nearby bases: the reason says so.
//
// `lack`: what the dump lacks of the memory the kernel maps (a cut or partial capture; dmdetect's
// rule): Pages, absent pages ≥ 1/64 of the kernel's and ≥ 256; Tables, page tables too (whole
// address ranges gone: vmalloc's, where modules live, on a dump cut below its tables). Key nodes
// whose edges lead into it lose their votes with no layout change (issue #11: a raw dump cut 16 MiB
// short, 450 of 451 task_structs found, 3 key nodes of 15% of the weight silent); on the model's
// own build, or an unknown one, such missing key nodes are then reported in the reason, not a
// misfit. With Tables, so is an agreement below the validation's (the module model on the dev dump
// cut to 160 MiB: 1 of 11), but the fit is then not Checked (one planted entry makes a dump lack
// tables); with Pages alone that still reads as a moved layout.
enum class MemoryLack { None, Pages, Tables };
ModelFit assess_fit(const Model& model, const std::string& source, const std::optional<FoundBanner>& dump,
                    const VoteAgreement& agreement, const std::optional<ScoreReach>& reach = std::nullopt,
                    MemoryLack lack = MemoryLack::None);
// See Fields: counts the interpreted detections of fit.type (Detection::fields not empty) and those
// with a misread field (ObjectField::misread; its "key: reason" from the "bad" field, train/
// interpret.hpp, is quoted as the example) and amends fit (fits, checked, reason).
void judge_fields(ModelFit& fit, std::span<const Detection> detections, MemoryLack lack = MemoryLack::None);

// Of several models, the one per object type whose builds match `dump` best (BuildMatch order).
// Ties: on the same build, the model of fewer builds (a model made for that build); on another
// build of a trained version, the model of more builds of the dump's version and flavour
// (kernel_flavour_of(banner): rt-amd64, cloud-amd64, amd64 …; none, so neither count decides, when
// the banner's release and version disagree on PREEMPT_RT), then of fewer builds of its version and
// other flavours (a model made for the flavour: the 6.1/ cred model, not 6.1-rt/'s that also saw
// the rt build, for 6.1.0-53-amd64); otherwise the model of more builds (it saw more layouts);
// then the earlier one. The indices kept,
// ascending. For `dmdetect DUMP` over the shipped models (data/models and its subfolders).
// `notes`, when given: one line per object type that had more than one model, naming the model
// chosen, each set aside and why, with the models named by `sources` (one per model, e.g. its
// path; else "model N"): "task_struct: chose b.cereal (same-build, 1 build); set aside
// a.cereal (other-version, 1 build): the chosen model's builds match the dump's kernel
// 6.1.0-47-amd64 better"; models set aside for the same reason are listed together before it
// ("set aside a.cereal (…), c.cereal (…): …"). dmdetect prints them as notes.
// `word_size` (the graph's: 4 under 32-bit and PAE paging, 8 under x86-64; 0 for any): models
// trained on another word size are never picked (their graphs cannot match); a type left with
// none gets a note saying so.
// `lacks_image` (the dump lacks the kernel image, detect.hpp lacks_kernel_image; its banner went with
// it, as a rule): among models that match the dump's builds alike, one with a threshold for such
// dumps (Model::image_absent_threshold) comes before the build counts.
std::vector<size_t> pick_models(std::span<const Model> models, const std::optional<FoundBanner>& dump,
                                std::vector<std::string>* notes = nullptr, std::span<const std::string> sources = {},
                                uint32_t word_size = 0, bool lacks_image = false);
// `dmdetect --list-models`: what each model file holds, read from the file alone (no dump): `models`
// as loaded, `sources` their paths (one each). One entry per object type (a joint model's types one
// each, Model::type_models, marked joint), giving the word size, the kernel builds it was trained on (model_builds),
// the detection threshold and the one for dumps without the kernel image (json null when it has
// none), the vote window (bytes), the validation vote agreement (0 of 0: not measured), the key
// nodes (KeyNode::text: offset/length[+]/weight, bytes from the object's start) and the training
// date. Json: one {"record":"model",…} line each; Table: a few text lines each; Csv: refused
// (InputError) — key-node lists are not one column.
// `picks` (the shipped models, which `dmdetect DUMP` chooses among): also, per single-type model,
// the kernel builds it would be picked for (pick_models over the listed single-type models, for
// each build any of them records, at that model's word size, the dump holding its kernel image)
// and whether it is picked for a dump with no kernel banner ("picked_for", "picked_without_banner";
// a joint model: not picked). Builds no model records (another ABI of a recorded version, …) and
// dumps lacking the kernel image (whose picks prefer models with image_absent_threshold) are not
// listed; two builds of one release with different banners are one entry.
std::string format_model_list(std::span<const Model> models, std::span<const std::string> sources,
                              DetectionFormat format, bool picks = false);

// "4-byte words (32-bit or PAE paging)" / "8-byte words (x86-64 paging)": a graph's word size as
// the notes and errors about it say it.
std::string word_size_text(uint32_t word_size);

// What the output says of a model's fit, one word (the table's "# fit TYPE: WORD", JSON "verdict"):
// NotRun — its network was not run (ModelFit::not_run); No — a misfit (!fits); Yes — fits and the fit
// was Checked on at least one candidate object; Unknown — neither refuted nor checked (no candidate
// object, no banner, per-build key nodes on another build…). JSON "fits" is true for Yes, false
// for No, null otherwise (newcomer 82: "fits":true beside "checked":false on a crafted dump).
enum class FitVerdict : uint8_t { Yes, No, Unknown, NotRun };
FitVerdict fit_verdict(const ModelFit& fit);
const char* to_string(FitVerdict);   // "yes", "no", "unknown", "not run"

// The kernel and fit lines dmdetect writes before its detections: for `Json`, one
// {"record":"kernel",…} line (release, banner, where found; "release":null without a banner; with
// `lacks_image` given, "kernel_image":"lacking"|"present", detect.hpp lacks_kernel_image) and one
// {"record":"fit",…} line per model ("fits" and "verdict": FitVerdict; "found" when ModelFit::found is set; with "threshold" when the run's is known, "not_run" when it
// was not run: ModelFit::not_run, "sampled" when its agreement was measured on a sample: Sample); for `Table`, the same as "# " comment lines ("# fit TYPE: NOT
// RUN, BUILD: why" for a model not run); for `Csv`, nothing (its one header line stays the only non-detection
// line). parse_detections() skips lines with a "record" key.
std::string format_fit_report(const std::optional<FoundBanner>& dump, std::span<const ModelFit> fits,
                              DetectionFormat format, std::optional<bool> lacks_image = {});

// The dump's one verdict on hiding (newcomer 82 MED 5: hidden objects were counted per type in a
// footer, the models' fit apart, and nothing said in one place whether the dump shows hiding).
// Made of the "hidden" fields of the detections of kCrossViewTypes (train/interpret.hpp: the
// cross-view against the kernel's lists, after dmdetect withdrew a misfit model's) and of what
// leaves it incomplete, one phrase each: a model not run, not fitting or finding nothing; objects
// whose verdict is null; objects not read (no fields); memory the dump lacks; the caller's reasons.
struct DumpVerdict {
    uint64_t judged = 0;                                     // detections with a true/false "hidden"
    uint64_t not_judged = 0;                                 // of kCrossViewTypes, the others (null, not read)
    std::vector<std::string> types;                          // of kCrossViewTypes, those found (judged or not), in its order
    std::vector<std::pair<std::string, uint64_t>> hidden;   // per type with any, its "hidden": true ones
    std::vector<std::string> incomplete;
    uint64_t held_by_hidden = 0;                             // files with kHeldByHiddenKey
    uint64_t broken = 0;   // of not_judged, those a kernel list broken in memory misses (kBrokenListReason)
    std::vector<std::string> not_asked;   // of kCrossViewTypes, those the user left out (dmdetect --types), in its order
    uint64_t hidden_total() const noexcept;
};
// Incomplete, among others, when `fits` (if any) holds no model of a type of kCrossViewTypes ("module,
// file not looked for: no model of theirs was run": --weights, --tree) — unless `asked` (the types the
// user asked for, dmdetect --types; empty: all) leaves that type out: then it is named in not_asked,
// and the verdict on the types asked for can be complete (newcomer 104: `--types task_struct
// --fail-on-hidden` exited 6 with all 488 tasks judged).
// `lacking`: what the dump lacks ("22 MiB of the memory the kernel maps"), empty when nothing; `why`: the
// caller's reasons, first (dmdetect: --tree judges tasks alone; no kernel symbols to walk lists with).
DumpVerdict dump_verdict(std::span<const Detection> found, std::span<const ModelFit> fits, const std::string& lacking,
                         std::span<const std::string> why = {}, std::span<const std::string> asked = {});
// `Table` and `Csv` (before the CSV header, a comment line: is_comment_line), one line:
//   "# verdict: HIDDEN: 3 task_struct, 1 module (of 450 objects judged[, 12 not judged])[; 5 files held
//    by the hidden tasks][; incomplete: …]"
//   "# verdict: none hidden among 450 objects judged"                     (complete)
//   "# verdict: INCOMPLETE: 0 hidden among 22 of 281 objects (task_struct, file); 259 not judged: …"
//                                                   (some judged, not all; the types found, `types`)
//   "# verdict: not judged: …"                                            (none judged)
// with " (module, file not asked for: --types)" at the end of the line when `not_asked`;
// with "; N not judged on kernel lists broken in memory (a smeared capture, or tampering)" after the
// counts when `broken` (dmdetect --fail-on-hidden: exit 7 rather than 6);
// `Json`: {"record":"verdict","hidden":N,"hidden_by_type":{…},"held_by_hidden":N,"judged":N,"not_judged":N,"broken":N,"complete":bool
// (some object judged, nothing incomplete),"incomplete":[…],"types":[…],"not_asked":[…]} (DumpVerdict::types, not_asked).
std::string format_dump_verdict(const DumpVerdict& verdict, DetectionFormat format);

}  // namespace deepmem
