// The MPI world (contract: train/distributed.hpp). OpenMPI's C API: the job needs four calls
// (reduce, broadcast, barrier, abort) on MPI_COMM_WORLD, which Boost.MPI would only wrap (and
// Boost.MPI's Debian package pulls in Boost.Serialization for nothing used here).
#include "train/distributed.hpp"

#include "graph/layers.hpp"

#include <algorithm>
#include <climits>
#include <cstdlib>

#if DEEPMEM_MPI
#include <mpi.h>
#endif

namespace deepmem {

namespace {

// The environment mpirun (OpenMPI) or a PMI/PMIx launcher gives every rank it starts.
bool started_by_mpirun() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
        if (std::getenv(v)) return true;
    return false;
}

#if DEEPMEM_MPI
// Calls of at most INT_MAX elements (MPI counts are int).
template <class F> void in_chunks(uint64_t n, F f) {
    for (uint64_t at = 0; at < n;) {
        const int count = int(std::min<uint64_t>(n - at, INT_MAX));
        f(at, count);
        at += uint64_t(count);
    }
}

class MpiWorld final : public Communicator {
public:
    MpiWorld(int& argc, char**& argv) {
        MPI_Init(&argc, &argv);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &size_);
    }
    ~MpiWorld() override { MPI_Finalize(); }
    int rank() const noexcept override { return rank_; }
    int size() const noexcept override { return size_; }
    void sum(std::span<float> v) override {
        if (size_ == 1) return;
        in_chunks(v.size(), [&](uint64_t at, int n) {
            float* p = v.data() + at;
            MPI_Reduce(rank_ == 0 ? MPI_IN_PLACE : p, p, n, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
            MPI_Bcast(p, n, MPI_FLOAT, 0, MPI_COMM_WORLD);
        });
    }
    void broadcast(std::vector<uint8_t>& b, int root) override {
        if (size_ == 1) return;
        uint64_t n = b.size();
        MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
        b.resize(n);
        in_chunks(n, [&](uint64_t at, int count) { MPI_Bcast(b.data() + at, count, MPI_BYTE, root, MPI_COMM_WORLD); });
    }
    void barrier() override { MPI_Barrier(MPI_COMM_WORLD); }
    [[noreturn]] void abort(int status) override {
        MPI_Abort(MPI_COMM_WORLD, status);
        std::exit(status);
    }

private:
    int rank_ = 0, size_ = 1;
};
#endif

}  // namespace

bool mpi_supported() noexcept { return DEEPMEM_MPI != 0; }

std::unique_ptr<Communicator> mpi_world(int& argc, char**& argv) {
    if (!started_by_mpirun()) return std::make_unique<Communicator>();
#if DEEPMEM_MPI
    return std::make_unique<MpiWorld>(argc, argv);
#else
    (void)argc, (void)argv;
    const char* n = std::getenv("OMPI_COMM_WORLD_SIZE");
    if (n && std::atoi(n) > 1)
        throw InputError("started by mpirun as one of " + std::string(n) +
                         " ranks, but this build has no MPI support (install libopenmpi-dev and rebuild; meson option mpi)");
    return std::make_unique<Communicator>();
#endif
}

}  // namespace deepmem
