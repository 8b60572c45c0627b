// Line reader shared by the text inputs (kallsyms, the guest view, label files): yields each line
// without its '\n' together with the byte offset where it starts, for FormatError.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace deepmem {

struct TextLine {
    std::string_view text;
    uint64_t at = 0;   // offset of the line's first byte in the whole text
};

class TextLines {
public:
    explicit TextLines(std::span<const uint8_t> bytes)
        : all_(reinterpret_cast<const char*>(bytes.data()), bytes.size()) {}
    std::optional<TextLine> next() {
        if (pos_ >= all_.size()) return std::nullopt;
        uint64_t eol = all_.find('\n', pos_);
        if (eol == std::string_view::npos) eol = all_.size();
        TextLine line{all_.substr(pos_, eol - pos_), pos_};
        pos_ = eol + 1;
        return line;
    }
private:
    std::string_view all_;
    uint64_t pos_ = 0;
};

}  // namespace deepmem
