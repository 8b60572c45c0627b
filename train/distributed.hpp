// One job over several processes (MPI ranks): what data-parallel training (train/trainer.hpp) and
// batch detection (dmdetect) need from MPI, and nothing else.
//
// Contract
//   Ranks        Rank r of `size` processes; item i of a list (a target of a batch, a dump) belongs
//                to rank i mod size (owns()).
//   Single       The base class is the single process: rank 0 of 1, every collective a no-op. The
//                library (libdeepmem) never links MPI; its functions take a Communicator and
//                default to single_process().
//   MPI world    mpi_world() (train/distributed.cpp, linked only into dmtrain and dmdetect through
//                `distributed_dep`, with Debian's OpenMPI when the meson option `mpi` found it)
//                initialises MPI only when the process was started by mpirun (OpenMPI's
//                OMPI_COMM_WORLD_SIZE or a PMI/PMIx rank in the environment): a plain run never
//                calls MPI_Init, so it needs neither mpirun nor an MPI daemon. Without MPI support
//                it returns the single process, and refuses to run as one of several mpirun ranks
//                (each would write the same outputs).
//   Failures     Collectives abort the whole job on an MPI error (MPI_ERRORS_ARE_FATAL). After an
//                error on one rank, abort() ends every rank: the others may be blocked in a
//                collective and would wait forever.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace deepmem {

class Communicator {
public:
    virtual ~Communicator() = default;
    virtual int rank() const noexcept { return 0; }
    virtual int size() const noexcept { return 1; }
    bool owns(uint64_t item) const noexcept { return item % uint64_t(size()) == uint64_t(rank()); }
    // Element-wise sum over the ranks of `values` (same length on every rank), written back on
    // every rank. Every rank gets bit-identical sums (summed on rank 0, then broadcast:
    // MPI_Allreduce does not promise that, and replicated Adam updates need it).
    virtual void sum(std::span<float> values) { (void)values; }
    // Rank `root`'s `bytes` on every rank (resized on the others).
    virtual void broadcast(std::vector<uint8_t>& bytes, int root) { (void)bytes, (void)root; }
    virtual void barrier() {}
    // Ends every rank of the job with `status` (the single process: exit).
    [[noreturn]] virtual void abort(int status) { std::exit(status); }
};

inline Communicator& single_process() {
    static Communicator one;
    return one;
}

// Rank `root`'s text on every rank.
inline std::string broadcast_text(Communicator& comm, const std::string& text, int root) {
    if (comm.size() == 1) return text;
    std::vector<uint8_t> b(text.begin(), text.end());
    comm.broadcast(b, root);
    return {b.begin(), b.end()};
}

// The world this process was started in (see MPI world in the contract); finalises MPI when
// destroyed. Throws InputError when started as one of several ranks by a build without MPI.
std::unique_ptr<Communicator> mpi_world(int& argc, char**& argv);
// Whether this build has MPI support (meson option `mpi`).
bool mpi_supported() noexcept;

}  // namespace deepmem
