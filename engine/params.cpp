// Hyper-parameter validation, parameter layout and initialisation, the engine's typed error.
#include "engine/engine.hpp"

#include <cmath>
#include <random>

namespace deepmem {

namespace {
const char* kKindNames[kNeighbourKinds] = {"ln", "rn", "lp", "rp"};

[[noreturn]] void bad_config(const std::string& what) {
    throw ModelError(ModelError::Kind::BadConfig, 0, what);
}
void check_layers(const std::vector<LayerSpec>& layers, const char* name, bool allow_empty) {
    if (!allow_empty && layers.empty()) bad_config(std::string(name) + ": needs at least one layer");
    if (layers.size() > ModelConfig::kMaxLayers)
        bad_config(std::string(name) + ": more than " + std::to_string(ModelConfig::kMaxLayers) + " layers");
    for (const auto& l : layers) {
        if (l.width == 0 || l.width > ModelConfig::kMaxWidth)
            bad_config(std::string(name) + ": layer width " + std::to_string(l.width) + " not in 1.." +
                       std::to_string(ModelConfig::kMaxWidth));
        if (l.activation != Activation::None && l.activation != Activation::Relu)
            bad_config(std::string(name) + ": unknown activation");
    }
}
}  // namespace

ModelError::ModelError(Kind k, uint64_t off, const std::string& what)
    : std::runtime_error(std::string("model ") + to_string(k) + (off ? " at byte " + std::to_string(off) : "") +
                         ": " + what),
      kind(k), offset(off) {}

ModelError ModelError::naming(const std::string& subject) const {
    const std::string w = what();
    const size_t colon = w.find(": ");   // after "model <kind>[ at byte N]"
    return ModelError(kind, offset, subject + ": " + (colon == std::string::npos ? w : w.substr(colon + 2)));
}

const char* to_string(ModelError::Kind k) {
    switch (k) {
        case ModelError::Kind::Io: return "I/O error";
        case ModelError::Kind::Truncated: return "file truncated";
        case ModelError::Kind::BadMagic: return "bad magic";
        case ModelError::Kind::BadVersion: return "unsupported format version";
        case ModelError::Kind::BadChecksum: return "checksum mismatch";
        case ModelError::Kind::BadShape: return "shape mismatch";
        case ModelError::Kind::BadConfig: return "invalid configuration";
        case ModelError::Kind::BadBatch: return "invalid graph or batch";
        case ModelError::Kind::BadValue: return "meaningless value";
    }
    return "error";
}

void ModelConfig::validate() const {
    auto in_range = [](uint32_t v, uint32_t lo, uint32_t hi) { return v >= lo && v <= hi; };
    if (!in_range(input_width, 1, kMaxWidth)) bad_config("input width " + std::to_string(input_width));
    if (!in_range(embed_width, 1, kMaxWidth)) bad_config("embedding width " + std::to_string(embed_width));
    if (!in_range(iterations, 1, kMaxIterations)) bad_config("iterations T = " + std::to_string(iterations));
    if (!in_range(classes, 2, kMaxClasses)) bad_config("classes K = " + std::to_string(classes) + " (need ≥ 2)");
    check_layers(sigma, "sigma", false);
    check_layers(classifier_hidden, "classifier", true);
    if (sigma.back().width != embed_width)
        bad_config("last sigma layer width " + std::to_string(sigma.back().width) + " ≠ embedding width " +
                   std::to_string(embed_width));
    if (!(keep_prob > 0.f && keep_prob <= 1.f)) bad_config("dropout keep probability not in (0, 1]");
}

std::vector<std::pair<uint32_t, uint32_t>> parameter_shapes(const ModelConfig& c) {
    std::vector<std::pair<uint32_t, uint32_t>> s;
    s.emplace_back(c.input_width, c.embed_width);
    for (int k = 0; k < kNeighbourKinds; ++k) {
        uint32_t in = c.embed_width;
        for (const auto& l : c.sigma) {
            s.emplace_back(in, l.width);
            s.emplace_back(1, l.width);
            in = l.width;
        }
    }
    uint32_t in = c.embed_width;
    for (const auto& l : c.classifier_hidden) {
        s.emplace_back(in, l.width);
        s.emplace_back(1, l.width);
        in = l.width;
    }
    s.emplace_back(in, c.classes);
    s.emplace_back(1, c.classes);
    return s;
}

std::vector<std::string> parameter_names(const ModelConfig& c) {
    std::vector<std::string> n{"W1"};
    for (int k = 0; k < kNeighbourKinds; ++k)
        for (size_t l = 0; l < c.sigma.size(); ++l) {
            n.push_back(std::string("sigma_") + kKindNames[k] + "." + std::to_string(l) + ".W");
            n.push_back(std::string("sigma_") + kKindNames[k] + "." + std::to_string(l) + ".b");
        }
    for (size_t j = 0; j <= c.classifier_hidden.size(); ++j) {
        n.push_back("classifier." + std::to_string(j) + ".W");
        n.push_back("classifier." + std::to_string(j) + ".b");
    }
    return n;
}

bool parameter_is_weight(const ModelConfig&, size_t i) { return i == 0 || i % 2 == 1; }

template <class S> Params<S> Params<S>::zeros(const ModelConfig& c) {
    c.validate();
    Params p;
    p.sigma_depth = static_cast<uint32_t>(c.sigma.size());
    p.classifier_depth = static_cast<uint32_t>(c.classifier_hidden.size() + 1);
    for (auto [r, cols] : parameter_shapes(c)) p.tensors.push_back(Mat<S>::Zero(r, cols));
    return p;
}

template <class S> Params<S> Params<S>::init(const ModelConfig& c, uint64_t seed) {
    Params p = zeros(c);
    std::mt19937_64 rng(seed);
    // Activation following each weight matrix, in tensor order, picks Glorot or He scaling.
    std::vector<Activation> after{Activation::None};   // W1 feeds tanh: Glorot
    for (int k = 0; k < kNeighbourKinds; ++k)
        for (const auto& l : c.sigma) after.push_back(l.activation);
    for (const auto& l : c.classifier_hidden) after.push_back(l.activation);
    after.push_back(Activation::None);
    size_t w = 0;
    for (size_t i = 0; i < p.tensors.size(); ++i) {
        if (!parameter_is_weight(c, i)) continue;
        auto& t = p.tensors[i];
        double fan_in = double(t.rows()), fan_out = double(t.cols());
        double limit = after[w++] == Activation::Relu ? std::sqrt(6.0 / fan_in) : std::sqrt(6.0 / (fan_in + fan_out));
        std::uniform_real_distribution<double> u(-limit, limit);
        for (Eigen::Index e = 0; e < t.size(); ++e) t.data()[e] = static_cast<S>(u(rng));
    }
    return p;
}

template struct Params<float>;
template struct Params<double>;

}  // namespace deepmem
