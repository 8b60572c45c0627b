// libFuzzer target: Model::from_bytes (engine/engine.hpp) on arbitrary bytes, each input tried as
// is and with its header length and checksum recomputed so the payload parser behind them is
// reached. Anything but a ModelError must be a model whose every tensor matches its config and
// that round-trips (an older format version is rewritten as the current one, then stable).
#include "engine/engine.hpp"

#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

void require(bool ok) {
    if (!ok) std::abort();
}

void load(std::span<const uint8_t> bytes) {
    using namespace deepmem;
    try {
        const Model m = Model::from_bytes(bytes);
        const auto shapes = parameter_shapes(m.config);
        require(m.params.tensors.size() == shapes.size());
        for (size_t i = 0; i < shapes.size(); ++i)
            require(m.params.tensors[i].rows() == shapes[i].first && m.params.tensors[i].cols() == shapes[i].second);
        require(m.key_nodes.size() + 1 == m.config.classes);
        // An older format is read and written as the current one: what is written must read back
        // and write the same bytes again (for a current-format input, the input's own bytes).
        const auto again = m.to_bytes();
        require(Model::from_bytes(again).to_bytes() == again);
        if (std::memcmp(bytes.data() + 8, again.data() + 8, 4) == 0)   // same format version
            require(again.size() == bytes.size() && std::memcmp(again.data(), bytes.data(), bytes.size()) == 0);
    } catch (const ModelError&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    load({data, size});
    if (size >= 32) {
        std::vector<uint8_t> fixed(data, data + size);
        const uint64_t len = size - 32;
        for (int i = 0; i < 8; ++i) fixed[16 + i] = uint8_t(len >> (8 * i));
        const uint64_t h = deepmem::fnv1a64({fixed.data() + 32, len});
        for (int i = 0; i < 8; ++i) fixed[24 + i] = uint8_t(h >> (8 * i));
        load(fixed);
    }
    return 0;
}
