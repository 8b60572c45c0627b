// Exceptions and OpenMP: an exception that leaves a parallel region (or one iteration of a
// worksharing loop) calls std::terminate — a `std::bad_alloc` in a region aborts the whole tool
// (exit 134) instead of printing one line. Every `#pragma omp parallel` region in deepmem runs its
// body through a ParallelErrors:
//
//     ParallelErrors errors;
//   #pragma omp parallel for
//     for (int64_t i = 0; i < n; ++i)
//         errors.run([&] { ... });          // `return` where the loop said `continue`
//     errors.rethrow();                     // after the region: the first exception, as thrown
//
// The first exception thrown by any iteration is kept (later ones are dropped), iterations that
// start after it are skipped, and rethrow() hands it to the caller on the calling thread, where
// the usual catch-at-main policy applies. For a region with a body of its own (`#pragma omp
// parallel { ... #pragma omp for ... }`), wrap each iteration and each statement after the loop
// that may throw (e.g. the merge under `omp critical`); never wrap a worksharing loop whole, as a
// thread leaving it early would skip its barrier.
#pragma once

#include <atomic>
#include <exception>
#include <mutex>
#include <utility>

namespace deepmem {

class ParallelErrors {
public:
    // Runs body() unless an earlier call failed; an exception it throws is captured, never rethrown.
    template <class Body>
    void run(Body&& body) noexcept {
        if (failed_.load(std::memory_order_relaxed)) return;
        try {
            std::forward<Body>(body)();
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!first_) first_ = std::current_exception();
            failed_.store(true, std::memory_order_relaxed);
        }
    }
    bool failed() const noexcept { return failed_.load(std::memory_order_relaxed); }
    // Call after the region, outside it: throws the first captured exception, if any.
    void rethrow() {
        if (first_) std::rethrow_exception(std::exchange(first_, nullptr));
    }

private:
    std::mutex mutex_;
    std::exception_ptr first_;
    std::atomic<bool> failed_{false};
};

}  // namespace deepmem
