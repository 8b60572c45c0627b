// How much memory this process may still take, so that big allocations (a memory graph of a
// multi-GiB dump) are refused up front with figures instead of failing half way.
#pragma once

#include "graph/text_lines.hpp"   // format_bytes, the one spelling of sizes in messages

#include <cstdint>
#include <optional>
#include <string>

namespace deepmem {

struct MemoryBudget {
    uint64_t bytes = 0;    // what may still be allocated
    std::string source;    // where the figure comes from, for messages ("MemAvailable", …)
};

// The smallest of:
//   DEEPMEM_MEMORY_LIMIT   when set: bytes, or with a K/M/G/T suffix (powers of 1024), to lower the
//                          limit (tests force a small one); it cannot raise it past the figures
//                          below, which mmap and malloc enforce anyway. InputError when it is not
//                          such a number.
//   RLIMIT_AS              getrlimit(RLIMIT_AS) (`ulimit -v`) minus this process's VmSize in
//                          /proc/self/status: the address space it may still map (issue #11 item 5).
//   MemAvailable           /proc/meminfo
//   cgroup limits          for the process's cgroup and each ancestor with a limit: the limit minus
//                          the usage that is not reclaimable page cache — v2 memory.max −
//                          (memory.current − active_file − inactive_file); v1 memory.limit_in_bytes −
//                          (memory.usage_in_bytes − total_active_file − total_inactive_file).
// nullopt when none of them can be read (then nothing is refused).
std::optional<MemoryBudget> available_memory();

// A size as DEEPMEM_MEMORY_LIMIT and the tools' memory options spell it: decimal bytes, or with a
// K/M/G/T suffix (powers of 1024; "KiB", "KB", "k" alike; a lower-case "b", bits, is refused).
// InputError naming `what` otherwise.
uint64_t parse_size(const std::string& s, const std::string& what);

// Empties `v` (a std::vector, unordered_map …) and gives its storage back: `v = {}` would keep a
// vector's capacity (the initializer-list assignment assigns no elements and frees nothing).
template <class V>
void free_storage(V& v) noexcept {
    V().swap(v);
}

// Gives the heap's free pages back to the system (glibc's malloc_trim: every arena, pages inside
// it too, not only its top), so that a step's freed working set does not stay in the process's
// RSS under the next step's (dmdetect between models: 4 MB on the dev dump). No-op elsewhere.
void return_free_heap() noexcept;

// One malloc arena for the whole process (glibc's M_ARENA_MAX = 1): each OpenMP thread otherwise
// gets its own, whose freed blocks the next allocation of another thread cannot reuse. For tools
// whose threads allocate a few large blocks (dmdetect's row blocks): all six models on the dev .dmg,
// 2 threads, three runs each: peak RSS 102–113 MB → 100–102 MB, same time. No-op elsewhere.
void share_one_heap_arena() noexcept;

// What the process is doing and how much memory that is expected to take, for the one line a
// tool prints when std::bad_alloc reaches its main (tools/cli.hpp, out_of_memory_message). A
// stage lasts for the scope of a MemoryStage; stages nest (the innermost is reported). A stage
// left by an exception is remembered (the innermost such) until the next stage begins, since the
// report is printed after the stack has unwound. Set by the main thread only.
class MemoryStage {
public:
    // `what`: "building the memory graph of dump.raw"; `need_bytes`: 0 when unknown.
    MemoryStage(std::string what, uint64_t need_bytes = 0);
    ~MemoryStage();
    MemoryStage(const MemoryStage&) = delete;
    MemoryStage& operator=(const MemoryStage&) = delete;
private:
    std::string what_;
    uint64_t need_ = 0;
    const MemoryStage* outer_;
    int uncaught_;   // std::uncaught_exceptions() at construction
    friend std::string out_of_memory_message();
};

// "out of memory while building the memory graph of d.raw: needs about 1.2 GiB, limit 800 MiB
// from RLIMIT_AS (ulimit -v) minus VmSize" — the stage, its need and available_memory() read now;
// "while running" / "needs an unknown amount" / "no limit known" when those are missing.
std::string out_of_memory_message();

// "1.2 GiB available (MemAvailable)", or "available unknown": available_memory() in messages.
std::string describe(const std::optional<MemoryBudget>& budget);

}  // namespace deepmem
