// How much memory this process may still take, so that big allocations (a memory graph of a
// multi-GiB dump) are refused up front with figures instead of failing half way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace deepmem {

struct MemoryBudget {
    uint64_t bytes = 0;    // what may still be allocated
    std::string source;    // where the figure comes from, for messages ("MemAvailable", …)
};

// The smallest of:
//   DEEPMEM_MEMORY_LIMIT   when set: bytes, or with a K/M/G/T suffix (powers of 1024); it replaces
//                          the two figures below (to force a small limit in tests, or to override
//                          a pessimistic reading). InputError when it is not such a number.
//   MemAvailable           /proc/meminfo
//   cgroup limits          for the process's cgroup and each ancestor with a limit: the limit minus
//                          the usage that is not reclaimable page cache — v2 memory.max −
//                          (memory.current − active_file − inactive_file); v1 memory.limit_in_bytes −
//                          (memory.usage_in_bytes − total_active_file − total_inactive_file).
// nullopt when none of them can be read (then nothing is refused).
std::optional<MemoryBudget> available_memory();

// "1.5 GiB", "640 MiB", "12 KiB": the one spelling of memory sizes in messages.
std::string format_bytes(uint64_t bytes);

}  // namespace deepmem
