// Training: labeled dumps → graphs + node targets → key nodes → the training loop (paper §3.3,
// §4.2), what `dmtrain config.ini` runs.
//
// Contract
//   Dataset     A manifest.json written by tools/make-dataset names the dumps of each split
//               ("train", "validation", "test"); dump NAME lives in <manifest dir>/NAME with
//               dump.elf and labels.jsonl. dmtrain reads the train and validation splits only;
//               the test split is for evaluation (dmeval) and never opened here. With
//               data.split_by = build, dumps of data.holdout_build are left out of both
//               (leave-one-build-out; manifest.json's "builds" lists each build's dumps).
//   Aliases     Objects the labeler names by an alias the graph did not scan (init_task in the
//               kernel image, modules in the module area: the graph scans their pages once, at
//               the direct map) are moved to the graph's address through their paddr on load.
//   Node label  A node of a graph lies in a labeled object o of the trained type when
//               o.vaddr ≤ node.vaddr < o.vaddr + o.size; its label is (offset = node.vaddr −
//               o.vaddr, length = node.length), or, when the segment runs past the object's end,
//               (offset, o.size − offset, open end). Nodes in freed objects are ignored (neither
//               key node nor "none"); every other node is class 0 unless its label is a key node.
//   Freed       With data.freed_off_base = negative (issue #13 item 4), a node in a freed object
//               whose offset in that object is no key node's offset is class 0 instead of ignored:
//               were it to vote, it would be for a base inside the dead object, a shifted answer (a
//               freed cred whose rcu_head.next still points starts its one key segment at 168,
//               not 160, and voted 8 bytes past its base: most of the cred model's false
//               positives). Nodes at a key node's offset stay ignored, whatever their length (a
//               split key's first part included): their votes go to the freed object's own base,
//               neither TP nor FP (detect.hpp Evaluate).
//   Key nodes   Over the live training objects of the type, the frequency of a label is the
//               fraction of objects that contain a node with it. The `key_nodes` most frequent
//               labels with frequency ≥ `min_frequency` become classes 1..K−1 (ties: lower
//               offset first), each with its frequency as voting weight.
//               With `[keys] frequency = per_build` (issue #9: builds lay a struct out differently,
//               so a label of one build's layout occurs in few objects of the whole set) the
//               frequency is counted over each kernel build's objects apart (the dump's
//               meta.json kernel_release); a label qualifies when it reaches min_frequency in some
//               build, its weight is its highest frequency in a build, and the `key_nodes` keys
//               are taken in rounds, each build's next most frequent label not yet taken (builds
//               in name order), so that every build gets its share however many dumps it has.
//               `[keys] min_per_build = N` (per_build only; 0 = off) then takes more, past
//               `key_nodes`, until each build has min(N, its qualifying labels) of its labels
//               among the keys: with 20 keys over 9 builds the rounds gave 6.1-rt's mm_struct 2
//               of its 8 labels, so its objects could score at most 2 against a threshold of 2.5.
//   Batches     Step s (1-based) is a pure function of (seed, s): one training dump, up to
//               `positives` key-node nodes of it and `negatives_per_positive` times as many class-0
//               targets, a `hard_negative_fraction` of them drawn from nodes whose length equals
//               some key node's length (the only negatives that can vote), the rest uniformly;
//               dropout masks are seeded by (seed, s). Class balancing: sampling fixes the ratio;
//               `none_weight` scales class 0's loss weight.
//   Noise       With content_noise > 0, each step draws a fraction f ∈ [0, content_noise] and
//               replaces that fraction of the batch nodes' content bytes (within each segment's true
//               length) with random ones — augmentation against tampered or decayed object fields.
//   Planting    With plant_rate > 0 (issue #13: one 8-byte write into a counter splits a segment
//               and adds edges), each step draws a rate f ∈ [0, plant_rate] and plants a pointer in
//               each batch node whose in-edges the batch holds with probability 1 − (1 − f)^words
//               (segments of ≥ 2 words), at a random word of it, to a random other such node D:
//               the memory graph as if that word held a pointer into D (plant_pointers). Labels
//               follow the votes (detect/detect.hpp): a key-node target cut short keeps its class
//               (its first part still carries the key node); one whose first word was planted
//               starts a word later and becomes class 0. Drawn after the batch, before noise.
//   Absence     With absent_rate > 0 (issue #11: a dump cut short, or lacking pages, has no nodes
//               there, so segments pointing into them lose those neighbours' messages: a raw dump
//               without its top 10 MiB of per-CPU areas gave 0 of 451 task_structs at the model's
//               threshold), each step draws a rate f ∈ [0, absent_rate] and makes each 4 KiB page
//               of the batch's non-target nodes absent with probability f: every edge out of a node
//               starting in such a page is dropped, as if the dump lacked the page
//               (drop_absent_pages). Drawn after planting, before noise.
//   Mining      With mined_fraction > 0, at every checkpoint step the current model classifies every
//               node of the training dumps; class-0 nodes it would let vote become that dump's
//               "mined" negatives until the next checkpoint, and that fraction of each step's
//               negatives is drawn from them (hard-negative mining). Mining at checkpoints keeps
//               --resume exact: the resumed run mines from the same model state.
//   Checkpoint  Every `checkpoint_every` steps the model (parameters, Adam moments, step count,
//               config text) is written atomically to <output>.ckpt. --resume loads it, checks the
//               configuration is the same, and continues at the next step; the result is
//               bit-identical to an uninterrupted run with the same thread count. Refused
//               (InputError): before the dumps load, another trajectory (the first differing key
//               named) or a run.steps before the checkpoint's step; after, other key nodes, types,
//               network shape or graph parameters than the dataset gives (the same check for
//               run.keep = best's snapshot, which is then ignored with a warning).
//   Ranks       Under mpirun (train/distributed.hpp) every rank loads the training dumps and draws
//               the same batch; rank r trains on the targets i ≡ r (mod ranks) with the loss
//               normalised by the whole batch's target weights and dropout masks drawn for each
//               target's row in the whole batch, the ranks' gradients and losses are summed, and
//               clipping and Adam run identically on every rank: the weights equal the single
//               process's up to float summation order. Rank 0 alone creates or loads (--resume) the
//               model and sends it to the others, loads the validation dumps, validates, logs and
//               writes the checkpoints and the model. Mining: rank r mines the training dumps
//               d ≡ r (mod ranks) and sends each dump's list to every rank. --resume is bit-identical
//               to an uninterrupted run with the same rank and thread counts (tested on 2 ranks).
//   Validation  Every `validate_every` steps and at the end: the full-graph inference on every
//               validation dump, votes, and the threshold maximising F1 of detected objects over
//               all validation dumps, above the largest key-node weight (Model::single_vote_bound: a
//               lone vote never makes an object; calibrate_threshold); precision/recall/F1 at that
//               threshold are printed. The final
//               model carries that threshold, the vote agreement on the validation dumps at it
//               (detect/fit.hpp) and the kernel builds of the train and validation dumps
//               (kernel_builds_of). Validation changes no training state.
//   Joint       data.type = a comma list of object types (issue 12: one pass for every type) trains
//               one joint model (Model::parts, engine.hpp): the types' key nodes are chosen apart, as
//               above, and become the classes of one classifier, the first type's first; a node is
//               class c of the type whose key node it carries, ignored when it lies in a freed
//               object of some type and carries no key node (under freed_off_base = negative: and
//               lies at a key node's offset of that type), else class 0. A step draws ⌈positives /
//               types⌉ key-node targets of each type (all of a type's when it has fewer), so that
//               types of many objects (dentry) do not crowd out types of few (module); negatives as
//               above, over the key nodes of every type. Validation, vote windows and thresholds
//               are chosen per type, from one inference pass per dump. --recalibrate chooses a joint
//               model's windows and thresholds afresh; --image-absent is for single-type models.
//   Schedule    optimiser.schedule = cosine: step s (1-based) uses the learning rate
//               lr · ½(1 + cos(π (s − 1) / S)), S = optimiser.schedule_steps (≥ run.steps) or else
//               run.steps: lr at the first step, lr · ½(1 + cos(π (S − 1) / S)) at step S (2.5e-6 lr at
//               S = 1000), so the last steps settle instead of moving the model as much as the first
//               (learning_rate_at). S is part of the trajectory: a run stopped early (run.steps < S)
//               and resumed keeps it with schedule_steps. The model file keeps learning_rate.
//   Keep        With run.keep = best, the model also validates at the last step, and the output is
//               the model of the highest validation F1 (a joint model: the mean over its types) among
//               the validations (validate_every) and the last step, the earliest of equal F1: its
//               parameters and adam_state.step (the kept step; the configuration text still says
//               the run's steps). Its snapshot is written to <output>.best at each new best (with
//               Adam's moments, whatever optimiser_state says), and --resume loads it when its
//               trajectory, key nodes, shape and graph parameters match (a warning says why not
//               otherwise), so a resumed run keeps what it had; a snapshot of another thread or rank
//               count is of another float trajectory. The checkpoint stays the last step's state. A single-type model's F1 can swing between validations when
//               one node class decides every vote (cred: one key node, 10⁷ candidate nodes):
//               validation P 0.94 at step 1000, 0.66 at 1500. The choice is a validation choice:
//               the test split is never opened here.
//   Alignment   votes.alignment = learned sets each type's Model::base_alignment (detect/detect.hpp
//               Alignment) from the labels before the first step: the largest power of two A ≤ 64
//               (kMaxLearnedAlignment) that divides the address of every labeled object of the type, live and freed, in the
//               train dumps (--recalibrate: in the manifest's validation dumps), when they hold at
//               least kMinAlignmentObjects of them (fewer leave 0: eight objects of a 64-byte aligned
//               cache are all page-aligned once in 2^48 draws, but one object is in 64); A = the word
//               size (no filter) is stored as 0. Validation, keep = best (a snapshot from before a
//               --resume too) and the thresholds are then judged with it. `none` (the default) sets 0,
//               also on a resumed checkpoint or a recalibrated model that had one. Below 64 the labels
//               can still show a size's accident: a cache aligned to a word whose slots are 192 bytes
//               (dentry on x86-64) or 16 (dentry on rt builds) teaches what another build's struct size
//               breaks; cred_jar (SLAB_HWCACHE_ALIGN, 64) and init_cred (32) do not. Learn it over several
//               builds (a warning says when the labels hold one): a static object
//               (init_cred) lies where the link put it, the same in every dump of one build
//               (6.1.0-57-686-pae's dumps alone teach 128 bytes; 6.1.0-47-686-pae's init_cred is on
//               a 32-byte line). Not part of the trajectory: --resume may change it.
//   Windows     votes.windows lists vote windows (Model::vote_window, detect/detect.hpp Window) to
//               choose from: at the end each is tried on the validation dumps (one inference pass,
//               votes and calibration per window) and the one of highest F1 is kept, the smallest
//               of equal F1; "0" (the default) keeps exact votes and skips the comparison. Not part of
//               the training trajectory: --resume may change it.
#pragma once

#include "detect/detect.hpp"
#include "engine/engine.hpp"
#include "graph/memory_graph.hpp"
#include "train/distributed.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace deepmem {

struct TrainConfig {
    // [data]
    std::string manifest;            // dataset manifest.json
    std::string object_type;         // e.g. task_struct; a comma list trains one joint model (Joint)
    uint32_t max_train_dumps = 0;    // 0 = every train dump (first N in manifest order otherwise)
    uint32_t max_validation_dumps = 0;
    std::string split_by = "dump";   // dump: the manifest's splits; build: leave holdout_build out
    std::string holdout_build;       // with split_by = build (see Manifest::holding_out)
    std::string freed_off_base = "ignore";   // ignore | negative: see Freed in the contract
    // [keys]
    uint32_t key_nodes = 20;
    double min_frequency = 0.5;
    std::string key_frequency = "overall";   // overall | per_build (see the contract)
    uint32_t min_per_build = 0;              // per_build: each build's labels among the keys, at least
    // [model]
    uint32_t embed_width = 64, iterations = 3, sigma_layers = 3, classifier_width = 64;
    float keep_prob = 0.8f;
    // [optimiser]
    float learning_rate = 1e-3f, weight_decay = 0.f, clip_norm = 5.f;
    std::string schedule = "constant";   // constant | cosine: see Schedule in the contract
    uint64_t schedule_steps = 0;         // the schedule's horizon S (0 = run.steps)
    uint64_t schedule_horizon() const;   // S
    // [batch]
    uint32_t positives = 128;
    float negatives_per_positive = 3.f, hard_negative_fraction = 0.5f, none_weight = 1.f;
    float mined_fraction = 0.f;      // 0 = no hard-negative mining
    float content_noise = 0.f;       // up to this fraction of a batch's content bytes randomised
    float plant_rate = 0.f;          // up to this fraction of a batch's words made planted pointers
    float absent_rate = 0.f;         // up to this fraction of a batch's pages made absent (Absence)
    // [run]
    uint64_t steps = 2000, validate_every = 500, checkpoint_every = 200, seed = 1;
    static constexpr uint64_t kMaxSteps = 1000000000;   // bound of steps and the *_every keys
    int threads = 0;                 // 0 = OpenMP default
    std::string output;              // final model path; checkpoint = output + ".ckpt"
    std::string keep = "last";       // last | best: see Keep in the contract
    // Adam's moments in `output` (false: they are left out, the file is a third of the size, as the
    // shipped models; the checkpoint keeps them, --resume is unchanged). Also what --recalibrate writes.
    bool optimiser_state = true;
    // [votes]
    std::string vote_windows = "0";  // comma list of vote windows (bytes) to choose from; see Windows
    std::string alignment = "none";  // none | learned: see Alignment
    std::vector<uint32_t> vote_window_list() const;   // parsed, distinct, in order; InputError when bad
    std::vector<std::string> object_types() const;    // data.type's list, in order; InputError when bad

    // Throws InputError naming the key when a value is out of range. train() also refuses, before
    // any work, an output that is the manifest and a run.output whose directory takes no file.
    void validate() const;
    // The effective configuration as INI text (every key, in section order): stored in the model
    // and compared on --resume.
    std::string to_ini() const;
};

inline constexpr uint64_t kMinAlignmentObjects = 16;
// A slab cache aligns its objects at most to a cache line (SLAB_HWCACHE_ALIGN: L1_CACHE_BYTES, 64 on
// x86-64 and Debian's 686-pae; mm/slab_common.c calculate_alignment) or to an explicit `align`
// (task_struct's, kernel/fork.c: L1 as well); labels show more when the slot size is a multiple of
// a larger power of two (file's 256-byte slots, mm_struct's 1536-byte ones), which another build's
// struct size changes. Learning stops here.
inline constexpr uint64_t kMaxLearnedAlignment = 64;

// One dump of the dataset: its graph and its live/freed objects of every type.
struct LabeledDump {
    std::string name;
    MemoryGraph graph;
    std::vector<TruthObject> truth;
    std::string kernel_release;   // meta.json's "kernel_release" (`uname -r` in the guest); "" when absent
};

// Alignment in the contract: the largest power of two ≤ kMaxLearnedAlignment dividing the vaddr of
// every object of `type` in `dumps`' labels (live and freed), 0 when they hold fewer than
// kMinAlignmentObjects or it is no more than `word_size`; `objects` receives their count and
// `builds` the number of distinct kernel releases of the dumps holding them, from the same pass.
uint32_t learned_alignment(const std::vector<LabeledDump>& dumps, const std::string& type, uint32_t word_size,
                           uint64_t* objects = nullptr, size_t* builds = nullptr);

struct Manifest {
    std::string path, sha256, kernel;   // kernel: "<package> <version>" (comma lists for several builds)
    std::vector<std::string> train, validation, test;
    // Each dump's build, its kernel release (uname -r, the "kernel_release" of its record in
    // "dumps"; "" when absent), and the dumps of each build in manifest order.
    std::map<std::string, std::string> build_of;
    std::map<std::string, std::vector<std::string>> by_build;
    static Manifest load(const std::string& path);   // throws FormatError / InputError
    std::string dump_dir(const std::string& name) const;
    // Leave builds out: `holdout` is a comma list; an entry matches a release equal to it or
    // starting with it followed by '.', '-' or '+' ("6.12" matches every 6.12 build, "6.1" none of
    // them). The result keeps train and validation dumps of the other builds only, and its test
    // split is every dump of the matched builds. Throws InputError when an entry matches no build
    // or no train or validation dump is left.
    Manifest holding_out(const std::string& holdout) const;
};

// Builds the graphs (default GraphParams) of the named dumps — each directory's dump.elf, else its
// dump.raw (a cut copy: tools/make-cut-set) — with their labels; progress(i, n) per dump.
std::vector<LabeledDump> load_dumps(const Manifest&, const std::vector<std::string>& names,
                                    const std::function<void(size_t, size_t)>& progress = {});

// Per-node labels of `type` in one dump. A segment that runs past its object's end is labeled
// with its length inside the object and open_end (what follows the object is not the object's).
struct SegmentLabel {
    uint32_t offset = 0, length = 0;   // offset = kNoObject / kIgnored for sentinels
    bool open_end = false;
    auto operator<=>(const SegmentLabel&) const = default;
};
struct NodeLabels {
    static constexpr uint32_t kNoObject = ~0u, kIgnored = ~0u - 1;
    std::vector<SegmentLabel> label;   // kIgnored: in a freed object
    std::vector<SegmentLabel> freed;   // per node: its label in the freed object holding it (kNoObject: none)
    uint64_t objects = 0;   // live objects of the type
};
NodeLabels label_nodes(const LabeledDump&, const std::string& type);

// Key-node selection over several dumps' labels (see the contract). `builds`: empty (one
// frequency over all objects), or each dump's kernel build (per-build frequencies and rounds).
std::vector<KeyNode> select_key_nodes(const std::vector<NodeLabels>&, uint32_t max_keys, double min_frequency,
                                      std::span<const std::string> builds = {}, uint32_t min_per_build = 0);

// The learning rate of step `step` (1-based) under optimiser.schedule (Schedule in the contract).
float learning_rate_at(const TrainConfig&, uint64_t step);

// Class of every node (0 = none, c ≥ 1 = key_nodes[c−1], kIgnoredClass = not a target);
// `freed_off_base_negative`: see Freed in the contract.
inline constexpr uint32_t kIgnoredClass = ~0u;
std::vector<uint32_t> node_classes(const NodeLabels&, const std::vector<KeyNode>&, bool freed_off_base_negative = false);

// Validation of a single-type model on labeled dumps: votes on every dump, calibrated threshold and scores;
// with `agreement`, also the vote agreement (detect/fit.hpp) over all dumps at that threshold; with
// `at_model_threshold`, the scores at Model::threshold.
Calibration validate_model(const Model&, const std::vector<LabeledDump>&, VoteAgreement* agreement = nullptr,
                           TypeScore* at_model_threshold = nullptr);
// The calibration of the model under each vote window (the model's own vote_window ignored), one
// inference pass per dump: what votes.windows chooses from.
std::vector<Calibration> validate_windows(const Model&, const std::vector<LabeledDump>&, std::span<const uint32_t> windows);
// (Both throw InputError for a joint model.) One object type's validation: its calibration (threshold
// and scores) and, at the end of training, its vote agreement at that threshold.
struct TypeValidation {
    std::string type;
    Calibration validation;
    VoteAgreement agreement;
};
// Each type model's calibration (Model::type_models) from one inference pass per dump: a joint
// model's every type, or the one type of a single-type model; no agreement.
std::vector<TypeValidation> validate_types(const Model&, const std::vector<LabeledDump>&);

// The kernel builds of dumps, distinct, in order: each dump's banner (graph/kernel_banner.hpp)
// with its release, else its meta.json release with no banner; dumps with neither are skipped.
std::vector<KernelBuild> kernel_builds_of(const std::vector<LabeledDump>&);

// Planting (see the contract) on one batch: `length` is the source graph's segment lengths, `word`
// its pointer size, `rate` the largest per-word rate; draws from `rng`. Each split node's features
// lose the bytes from the planted word on; a new node for the part after it (appended, its
// node_id that of the split node) gets the bytes of the first part's window after the word,
// zero-padded (what lies beyond the kept 64 bytes is unknown), and its in-edges: ln from the first
// part, lp from D, and the rn and rp the split node had; the first part gets rn from it and rp
// from D; the right neighbour's ln now comes from it. Pointers into the split segment keep their
// edge to the first part. Rows stay sorted and distinct.
void plant_pointers(GraphBatch& b, std::span<const uint32_t> length, uint32_t word, double rate, uint64_t& rng);
// Absence (see the contract): `vaddr` of the batch's source graph; rows 0..|targets|−1 are never absent.
void drop_absent_pages(GraphBatch& b, std::span<const uint64_t> vaddr, double rate, uint64_t& rng);

// The training loop. `log` receives progress and validation lines.
struct TrainResult {
    Model model;
    Calibration validation;    // a single-type model's (a joint model: 0, see types)
    VoteAgreement agreement;   // on the validation dumps at the final threshold (also in the model)
    std::vector<TypeValidation> types;   // per object type, in the model's order (train and recalibrate)
    uint64_t steps_run = 0;
    double seconds = 0;
};
// Under several ranks (see Ranks in the contract) only rank 0's result carries the validation;
// `log` is called on rank 0 only.
TrainResult train(const TrainConfig&, bool resume, const std::function<void(const std::string&)>& log,
                  Communicator& comm = single_process());
// A trained model's vote window and threshold chosen afresh (see Windows) on the validation dumps of
// the configuration's manifest — e.g. dumps of kernel builds it was not trained on — and written to
// run.output; its weights, key nodes and kernel builds are kept, and provenance.training_config
// gains a [recalibrated] section naming the manifest. `steps` of the result is 0. Throws
// InputError (another object type, graph parameters unlike the dumps', no validation dump).
TrainResult recalibrate(const TrainConfig&, const std::string& model_path, const std::function<void(const std::string&)>& log);
// The threshold for dumps without the kernel image (Model::image_absent_threshold) chosen afresh on
// the validation dumps of the configuration's manifest that lack it (lacks_kernel_image,
// detect/detect.hpp: a dataset cut below the image, tools/make-cut-set; the others are left out,
// and said), as calibrate_threshold chooses a model's threshold (best F1); weights, key nodes, vote
// window and threshold kept, written to run.output with a [recalibrated] section naming the
// manifest. `validation` of the result is at the chosen threshold. Throws InputError as
// recalibrate(), when no validation dump lacks the image, and for a best F1 of 0 (no threshold
// finds any object: the model keeps none).
TrainResult recalibrate_image_absent(const TrainConfig&, const std::string& model_path,
                                     const std::function<void(const std::string&)>& log);

// Key-node anchors (train/key_anchors.hpp) for the model at `model_path`, no training: from
// `kernel_files` (one kernel file per build: vmlinuz, vmlinux or raw BTF, each's banner a release
// among the model's builds) or, when none is given, from the kernel file of the first train or
// validation dump of each of the manifest's builds (dump_dir_kernel_files), only the model's
// builds; written to run.output, all else as read, with an [anchored] section in its configuration
// text. train() anchors the model it writes the same way from its dumps (a build whose kernel file
// gives no layout is logged and left out). Throws InputError (no layout of the model's type from
// any build, a joint model, a kernel file of another build).
TrainResult anchor(const TrainConfig&, const std::string& model_path, const std::vector<std::string>& kernel_files,
                   const std::function<void(const std::string&)>& log);

// SHA-256 of a byte string, lowercase hex (manifest provenance).
std::string sha256_hex(std::span<const uint8_t>);

}  // namespace deepmem
