// list-tasks: deepmem embedded in another tool, the way libyara is. Built against an installed
// libdeepmem through pkg-config:
//
//   c++ -std=c++20 -O2 list-tasks.cpp $(pkg-config --cflags --libs deepmem) -o list-tasks
//   ./list-tasks data/models/task_struct.cereal dump.elf        # or a .dmg from `dmgraph build`
//
// Prints one line per detected object: address, physical address, score. Stops after --max N.
#include <detect/detect.hpp>
#include <graph/layers.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (argc != 3 && !(argc == 5 && std::string(argv[3]) == "--max")) {
        std::fprintf(stderr, "usage: list-tasks MODEL DUMP [--max N]\n");
        return 2;
    }
    const unsigned long max = argc == 5 ? std::strtoul(argv[4], nullptr, 10) : ~0ul;
    try {
        deepmem::Detector detector;
        detector.add_model(argv[1]);
        deepmem::MemoryGraph graph = detector.open_graph(argv[2]);
        unsigned long shown = 0;
        detector.scan(graph, [&](const deepmem::Detection& d) {
            std::printf("%s %s %s %.3f\n", d.type.c_str(), deepmem::hex(d.vaddr).c_str(),
                        d.paddr ? deepmem::hex(*d.paddr).c_str() : "-", double(d.score));
            return ++shown < max;
        });
        std::printf("%lu objects in %u nodes\n", shown, graph.node_count());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "list-tasks: error: %s\n", e.what());
        return 1;
    }
    return 0;
}
