// available_memory(): /proc/meminfo, the cgroup v2 / v1 memory controller files, RLIMIT_AS and
// DEEPMEM_MEMORY_LIMIT, whichever is smallest. Every read is best effort: a file that is missing or malformed
// contributes nothing.
#include "graph/memory_budget.hpp"

#include "graph/layers.hpp"

#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace deepmem {

namespace {

std::optional<uint64_t> read_number(const std::string& path) {
    std::ifstream in(path);
    std::string word;
    if (!(in >> word) || word.empty() || !std::isdigit(static_cast<unsigned char>(word[0]))) return std::nullopt;
    try {
        return std::stoull(word);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// Value of `key` in a "key value" file (memory.stat) or "Key: value kB" file (meminfo).
std::optional<uint64_t> read_keyed(const std::string& path, std::string_view key) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.size() <= key.size() || line.compare(0, key.size(), key) != 0) continue;
        char next = line[key.size()];
        if (next != ' ' && next != ':') continue;
        std::istringstream rest(line.substr(key.size() + 1));
        uint64_t v;
        if (rest >> v) return v;
    }
    return std::nullopt;
}

// The cgroup path of this process for a v1 controller ("memory") or v2 (empty controller).
std::optional<std::string> cgroup_path(std::string_view controller) {
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    while (std::getline(in, line)) {
        auto a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        std::string_view list(line.data() + a + 1, b - a - 1);
        bool match = controller.empty() ? list.empty() : false;
        for (size_t at = 0; !controller.empty() && at <= list.size();) {
            size_t comma = std::min(list.find(',', at), list.size());
            if (list.substr(at, comma - at) == controller) match = true;
            at = comma + 1;
        }
        if (match) return line.substr(b + 1);
    }
    return std::nullopt;
}

// `dir` and each ancestor up to `root` (inclusive).
std::vector<std::string> up_to(const std::string& root, const std::string& rel) {
    std::vector<std::string> out;
    std::string r = rel;
    while (!r.empty() && r.back() == '/') r.pop_back();
    for (;;) {
        out.push_back(root + r);
        if (r.empty()) break;
        r.erase(r.rfind('/') == std::string::npos ? 0 : r.rfind('/'));
    }
    return out;
}

// min over the cgroup and its ancestors of limit − non-reclaimable usage.
std::optional<uint64_t> cgroup_available(const char* root, const std::string& rel, const char* limit_file,
                                         const char* usage_file, const char* active, const char* inactive) {
    std::optional<uint64_t> best;
    for (const std::string& dir : up_to(root, rel)) {
        auto limit = read_number(dir + "/" + limit_file);   // "max" (v2, no limit) reads as nothing
        auto usage = read_number(dir + "/" + usage_file);
        if (!limit || !usage || *limit >= (uint64_t{1} << 60)) continue;   // v1 spells "no limit" as ~2^63
        uint64_t cache = read_keyed(dir + "/memory.stat", active).value_or(0) +
                         read_keyed(dir + "/memory.stat", inactive).value_or(0);
        uint64_t used = *usage > cache ? *usage - cache : 0;
        uint64_t avail = *limit > used ? *limit - used : 0;
        if (!best || avail < *best) best = avail;
    }
    return best;
}

// RLIMIT_AS minus the address space already mapped (VmSize), or nullopt without a limit.
std::optional<uint64_t> address_space_left() {
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return std::nullopt;
    const uint64_t used = read_keyed("/proc/self/status", "VmSize").value_or(0) * 1024;
    const uint64_t limit = rl.rlim_cur;
    return limit > used ? limit - used : 0;
}

const MemoryStage* g_stage = nullptr;
std::optional<std::pair<std::string, uint64_t>> g_left;   // the innermost stage an exception left

}  // namespace

// parse_size's units, each 1024 times the one before it (either case)
constexpr std::string_view kUnits = "kmgt";

uint64_t parse_size(const std::string& s, const std::string& what) {
    uint64_t v = 0;   // digits first: no space or sign (stoull would read " -5" as 2^64 − 5, no limit)
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
    const size_t used = ec == std::errc{} ? size_t(end - s.data()) : 0;
    if (used == 0) throw InputError(what + " '" + s + "' is not a size (e.g. 512M, 4G)");
    std::string unit = s.substr(used);
    // "1.5G" (newcomer 79: was "an unknown unit", though G is one): whole numbers only, the example
    // the input's own size in the next smaller unit when that is whole ("0.5T": 512G), else 1.5G's
    if (!unit.empty() && (unit[0] == '.' || unit[0] == ',')) {
        std::string example = "1536M for 1.5G";
        uint64_t frac = 0, scale = 1;
        size_t i = 1;
        for (; i < unit.size() && i <= 9 && unit[i] >= '0' && unit[i] <= '9'; ++i) frac = frac * 10 + uint64_t(unit[i] - '0'), scale *= 10;
        const size_t u = i < unit.size() ? kUnits.find(char(std::tolower(static_cast<unsigned char>(unit[i])))) : std::string_view::npos;
        if (i > 1 && u != std::string_view::npos && u > 0 && v < (uint64_t{1} << 40) && frac * 1024 % scale == 0)
            example = std::to_string(v * 1024 + frac * 1024 / scale) + char(std::toupper(static_cast<unsigned char>(kUnits[u - 1]))) + " for " + s;
        throw InputError(what + " '" + s + "' is not a whole number of bytes or units (e.g. " + example + ")");
    }
    // "b" is bits in "512Kb" or "1Gb" (helper 67: read as bytes, eight times the size meant): only B.
    if (!unit.empty() && unit.back() == 'b')
        throw InputError(what + " '" + s + "': 'b' is bits; sizes are in bytes (e.g. 512K, 512KB, 512KiB)");
    if (!unit.empty() && unit.back() == 'B') unit.pop_back();
    if (unit.size() == 2 && (unit[1] == 'i' || unit[1] == 'I')) unit.pop_back();
    int shift = 0;
    if (unit.empty()) shift = 0;
    else if (const size_t u = unit.size() == 1 ? kUnits.find(char(std::tolower(static_cast<unsigned char>(unit[0])))) : std::string_view::npos;
             u != std::string_view::npos)
        shift = 10 * (1 + static_cast<int>(u));
    else throw InputError(what + " '" + s + "' has an unknown unit (use K, M, G or T)");
    if (shift && v > (~uint64_t{0} >> shift)) throw InputError(what + " '" + s + "' is too large");
    return v << shift;
}

std::optional<MemoryBudget> available_memory() {
    std::optional<MemoryBudget> best;
    auto consider = [&](std::optional<uint64_t> v, const char* source) {
        if (v && (!best || *v < best->bytes)) best = MemoryBudget{*v, source};
    };
    // The environment's limit is one bound among the others, never a way past them: a 10G limit
    // under `ulimit -v 400000` must not promise what mmap and malloc will refuse.
    if (const char* env = std::getenv("DEEPMEM_MEMORY_LIMIT"); env && *env)
        consider(parse_size(env, "DEEPMEM_MEMORY_LIMIT"), "DEEPMEM_MEMORY_LIMIT");
    consider(address_space_left(), "RLIMIT_AS (ulimit -v) minus VmSize");
    if (auto kb = read_keyed("/proc/meminfo", "MemAvailable")) consider(*kb * 1024, "MemAvailable in /proc/meminfo");
    if (auto rel = cgroup_path(""))
        consider(cgroup_available("/sys/fs/cgroup", *rel, "memory.max", "memory.current", "active_file", "inactive_file"),
                 "the cgroup's memory.max");
    if (auto rel = cgroup_path("memory")) {
        const char* root = "/sys/fs/cgroup/memory";
        // Inside a container the process's own cgroup is usually mounted as the root.
        consider(cgroup_available(root, *rel, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_active_file",
                                  "total_inactive_file"),
                 "the cgroup's memory.limit_in_bytes");
        consider(cgroup_available(root, "", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_active_file",
                                  "total_inactive_file"),
                 "the cgroup's memory.limit_in_bytes");
    }
    return best;
}

MemoryStage::MemoryStage(std::string what, uint64_t need_bytes)
    : what_(std::move(what)), need_(need_bytes), outer_(g_stage), uncaught_(std::uncaught_exceptions()) {
    g_stage = this;
    g_left.reset();
}

MemoryStage::~MemoryStage() {
    g_stage = outer_;
    if (std::uncaught_exceptions() > uncaught_ && !g_left) {
        try {
            g_left.emplace(what_, need_);
        } catch (const std::exception&) {   // no memory for the copy: the report says less
        }
    }
}

std::string out_of_memory_message() {
    std::string what = "running";
    uint64_t need = 0;
    if (g_stage) what = g_stage->what_, need = g_stage->need_;
    else if (g_left) std::tie(what, need) = *g_left;
    std::string msg = "out of memory while " + what + ": ";
    msg += need ? "needs about " + format_bytes(need) : "needs an unknown amount";
    std::optional<MemoryBudget> avail;
    try {
        avail = available_memory();
    } catch (const std::exception&) {   // a malformed DEEPMEM_MEMORY_LIMIT, or no memory left to read files
    }
    msg += avail ? ", limit " + format_bytes(avail->bytes) + " from " + avail->source : ", no limit known";
    return msg;
}

std::string describe(const std::optional<MemoryBudget>& budget) {
    return budget ? format_bytes(budget->bytes) + " available (" + budget->source + ")" : "available unknown";
}

void return_free_heap() noexcept {
#if defined(__GLIBC__)
    ::malloc_trim(0);
#endif
}

void share_one_heap_arena() noexcept {
#if defined(__GLIBC__)
    ::mallopt(M_ARENA_MAX, 1);
#endif
}

}  // namespace deepmem
