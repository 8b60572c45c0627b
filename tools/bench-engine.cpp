// bench-engine [G.dmg | --synthetic N]: how fast the GNN engine is on this machine.
//
//   bench-engine G.dmg [--classes K] [--iterations T] [--batch-targets M] [--steps S]
//   bench-engine --synthetic 5000000 [--seed S] …
//
// Prints (1) the measured Eigen float GEMM GFLOP/s (square 1024³ and the engine's N×64·64×64
// shape), (2) the inference fast path over the whole graph: seconds, node-iterations/s
// (nodes × T / s), achieved GFLOP/s and its share of the GEMM peak, both on the executed flops
// (GEMM + aggregation work the fast path actually did: folded layers, v·W1 once, no σ work at
// t = 1), and the model flops (the unfolded model evaluated literally) as "model-equivalent"
// GFLOP/s, (3) the training path forward and forward+backward on T-hop mini-batches:
// node-iterations/s over the batch nodes. Threads: OMP_NUM_THREADS. Every line names the graph.
#include "engine/engine.hpp"
#include "graph/memory_graph.hpp"

#include <boost/program_options.hpp>

#include <omp.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <unordered_set>

namespace po = boost::program_options;
using namespace deepmem;

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct SyntheticGraph {
    std::array<Csr, kNeighbourKinds> in;
    std::vector<uint8_t> features;
};

// Degrees like a kernel memory graph: ln/rn chains (a node has its left/right neighbour with
// probability 0.85), lp/rp ≈ Poisson(1) pointer edges each, half to nearby nodes (same slab), half
// anywhere; content bytes mostly small values and zeros.
SyntheticGraph synthetic(uint32_t n, uint64_t seed) {
    SyntheticGraph g;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    std::poisson_distribution<int> pois(1.0);
    g.features.resize(size_t(n) * 64);
    for (auto& b : g.features) b = u(rng) < 0.5 ? 0 : uint8_t(rng());
    for (int k = 0; k < kNeighbourKinds; ++k) {
        Csr& c = g.in[k];
        c.offsets.reserve(size_t(n) + 1);
        c.sources.reserve(size_t(n) * 11 / 10);
        for (uint32_t i = 0; i < n; ++i) {
            if (k == 0 && i > 0 && u(rng) < 0.85) c.sources.push_back(i - 1);
            if (k == 1 && i + 1 < n && u(rng) < 0.85) c.sources.push_back(i + 1);
            if (k >= 2)
                for (int e = pois(rng); e > 0; --e) {
                    const uint64_t near = i + (rng() % 4096) - 2048;
                    c.sources.push_back(u(rng) < 0.5 && near < n ? uint32_t(near) : uint32_t(rng() % n));
                }
            c.offsets.push_back(c.sources.size());
        }
    }
    return g;
}

double gemm_gflops(Eigen::Index m, Eigen::Index k, Eigen::Index n, int reps) {
    Mat<float> a = Mat<float>::Random(m, k), b = Mat<float>::Random(k, n), c(m, n);
    c.noalias() = a * b;   // warm-up
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        auto t0 = Clock::now();
        c.noalias() = a * b;
        best = std::min(best, since(t0));
    }
    if (c(0, 0) == 12345.f) std::puts("");   // keep the product alive
    return 2.0 * double(m) * double(k) * double(n) / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        po::options_description o("bench-engine options");
        o.add_options()("help,h", "this help")("graph", po::value<std::string>(), "memory graph (.dmg) from dmgraph build")(
            "synthetic", po::value<uint32_t>(), "use a synthetic graph of N nodes instead")(
            "seed", po::value<uint64_t>()->default_value(1), "synthetic graph and weights seed")(
            "classes", po::value<uint32_t>()->default_value(8), "classifier classes K")(
            "iterations", po::value<uint32_t>()->default_value(3), "T")(
            "batch-targets", po::value<uint32_t>()->default_value(2048), "targets per training batch")(
            "steps", po::value<int>()->default_value(5), "training batches timed")(
            "reps", po::value<int>()->default_value(3), "inference runs (best is reported)");
        po::positional_options_description pos;
        pos.add("graph", 1);
        po::variables_map vm;
        po::store(po::command_line_parser(argc, argv).options(o).positional(pos).run(), vm);
        if (vm.count("help") || (vm.count("graph") == vm.count("synthetic"))) {
            std::cout << "usage: bench-engine G.dmg | --synthetic N [options]\n" << o;
            return vm.count("help") ? 0 : 2;
        }
        po::notify(vm);
        const int threads = omp_get_max_threads();

        // ---- the graph
        std::string label;
        GraphInput input;
        MemoryGraph real;
        SyntheticGraph syn;
        auto t0 = Clock::now();
        if (vm.count("graph")) {
            real = MemoryGraph::load(vm["graph"].as<std::string>());
            input = {{real.in(EdgeKind::LeftNeighbour), real.in(EdgeKind::RightNeighbour),
                      real.in(EdgeKind::LeftPointer), real.in(EdgeKind::RightPointer)},
                     real.features(), real.params().feature_bytes};
            label = "graph " + vm["graph"].as<std::string>();
        } else {
            syn = synthetic(vm["synthetic"].as<uint32_t>(), vm["seed"].as<uint64_t>());
            input = {{syn.in[0].view(), syn.in[1].view(), syn.in[2].view(), syn.in[3].view()}, syn.features, 64};
            label = "synthetic graph";
        }
        const uint64_t N = input.nodes();
        uint64_t E[kNeighbourKinds];
        for (int k = 0; k < kNeighbourKinds; ++k) E[k] = input.in[k].sources.size();
        std::printf("%s: %llu nodes, edges ln %llu rn %llu lp %llu rp %llu (loaded in %.2f s), %d threads\n",
                    label.c_str(), (unsigned long long)N, (unsigned long long)E[0], (unsigned long long)E[1],
                    (unsigned long long)E[2], (unsigned long long)E[3], since(t0), threads);

        // ---- GEMM peak
        const double peak = gemm_gflops(1024, 1024, 1024, 5);
        const double skinny = gemm_gflops(1 << 18, 64, 64, 5);
        std::printf("Eigen float GEMM: %.1f GFLOP/s (1024x1024x1024), %.1f GFLOP/s (262144x64 * 64x64)\n", peak, skinny);

        // ---- model
        ModelConfig cfg;
        cfg.iterations = vm["iterations"].as<uint32_t>();
        cfg.classes = vm["classes"].as<uint32_t>();
        const Params<float> p = Params<float>::init(cfg, vm["seed"].as<uint64_t>());
        const uint32_t T = cfg.iterations;

        // ---- inference fast path over the whole graph
        InferenceNet fast(cfg, p);
        Mat<float> probs;
        double best = 1e30;
        for (int r = 0; r < vm["reps"].as<int>(); ++r) {
            t0 = Clock::now();
            fast.run(input, probs);
            best = std::min(best, since(t0));
        }
        const double gf = fast.last_flops() / best / 1e9, mgf = fast.last_model_flops() / best / 1e9;
        std::printf("%s: inference forward T=%u over %llu nodes (σ folded to %zu layer(s)): %.3f s, "
                    "%.3g node-iterations/s\n"
                    "  executed: %.2f GFLOP per run, %.1f GFLOP/s = %.0f%% of the 1024^3 GEMM peak\n"
                    "  model (unfolded, literal): %.2f GFLOP per run, %.1f model-equivalent GFLOP/s\n",
                    label.c_str(), T, (unsigned long long)N, fast.folded_sigma_layers(), best, double(N) * T / best,
                    fast.last_flops() / 1e9, gf, 100.0 * gf / peak, fast.last_model_flops() / 1e9, mgf);

        // ---- training path on T-hop batches
        const uint32_t M = std::min<uint64_t>(vm["batch-targets"].as<uint32_t>(), N);
        std::mt19937_64 rng(vm["seed"].as<uint64_t>() + 1);
        Gnn<float> net(cfg);
        Params<float> grad;
        double f_time = 0, fb_time = 0, f_flops = 0, batch_nodes = 0;
        const int steps = vm["steps"].as<int>();
        for (int s = 0; s <= steps; ++s) {   // step 0 warms the buffers up
            std::vector<uint32_t> targets, labels;
            std::unordered_set<uint32_t> seen;
            while (targets.size() < M) {
                const uint32_t n = uint32_t(rng() % N);
                if (seen.insert(n).second) { targets.push_back(n); labels.push_back(uint32_t(rng() % cfg.classes)); }
            }
            const GraphBatch b = extract_batch(input, targets, labels, T);
            auto a = Clock::now();
            net.forward(p, b, {true, uint64_t(s), {}});
            const double tf = since(a);
            net.backward(p, b, grad);
            const double tfb = since(a);
            if (s == 0) continue;
            f_time += tf;
            fb_time += tfb;
            f_flops += net.last_forward_flops();
            batch_nodes += b.nodes();
        }
        std::printf("%s: training path, %d batches of %u targets (%.0f nodes each after %u-hop extraction):\n"
                    "  forward %.3g node-iterations/s, %.1f GFLOP/s; forward+backward %.3g node-iterations/s, "
                    "~%.1f GFLOP/s (backward counted as 2x forward flops)\n",
                    label.c_str(), steps, M, batch_nodes / steps, T - 1, batch_nodes * T / f_time, f_flops / f_time / 1e9,
                    batch_nodes * T / fb_time, 3 * f_flops / fb_time / 1e9);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-engine: %s\n", e.what());
        return 1;
    }
}
