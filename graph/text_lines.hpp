// Shared by the text inputs (kallsyms, the guest view, label files, the dataset manifest): a line
// reader that yields each line without its '\n' together with the byte offset where it starts, for
// FormatError, and the string-field lookup of the JSON this project writes itself; the one
// JSON string writer of the outputs; and the one spelling of byte sizes in messages.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

// The string value of the first "key":"value" in `json` (labels.jsonl, manifest.json: written
// without spaces around ':' and without escapes in these values); nullopt when absent or unterminated.
inline std::optional<std::string_view> json_string_field(std::string_view json, std::string_view key) {
    const std::string pat = "\"" + std::string(key) + "\":\"";
    size_t p = json.find(pat);
    if (p == std::string_view::npos) return std::nullopt;
    p += pat.size();
    const size_t e = json.find('"', p);
    if (e == std::string_view::npos) return std::nullopt;
    return json.substr(p, e - p);
}

// A C0 control byte or DEL: what text shown on a terminal must not hold (a kernel string, a warning
// read from a file). Bytes ≥ 0x80 are judged by the caller (UTF-8 or not).
constexpr bool is_control_byte(unsigned char c) noexcept { return c < 0x20 || c == 0x7f; }

// `s` as a quoted JSON string: '"' and '\\' escaped, bytes outside printable ASCII as \u00XX (kernel
// strings are raw bytes, not UTF-8: each byte is escaped on its own).
inline std::string json_string(std::string_view s) {
    std::string o = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            char b[8];
            std::snprintf(b, sizeof b, "\\u%04x", c);
            o += b;
        } else {
            o += static_cast<char>(c);
        }
    }
    return o + "\"";
}

// "3 MiB", "1.5 GiB", "640 MiB", "12 KiB", "100 bytes": binary units; a whole number of the unit
// is printed whole, else one decimal below 10 and none above.
inline std::string format_bytes(uint64_t bytes) {
    static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (u < 6 && bytes >= (uint64_t{1} << (10 * (u + 1)))) ++u;
    char buf[40];
    if (u == 0 || bytes % (uint64_t{1} << (10 * u)) == 0)
        std::snprintf(buf, sizeof buf, "%llu %s", static_cast<unsigned long long>(bytes >> (10 * u)), units[u]);
    else {
        const double v = static_cast<double>(bytes) / static_cast<double>(uint64_t{1} << (10 * u));
        std::snprintf(buf, sizeof buf, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
    }
    return buf;
}

// "pfn 0x10", "pfns 0x10, 0x11, 0x30", "first pfns 0x10, 0x11, 0x30, …": the `shown` items of a
// list of `total`, with "first" and "…" only when some are left out — a list shown whole is
// named whole, without "first". `one`/`many`: the noun for one item / several.
inline std::string sample_list(std::string_view one, std::string_view many, const std::vector<std::string>& shown,
                               uint64_t total) {
    std::string s = total > shown.size() ? "first " : "";
    s += total == 1 ? one : many;
    for (size_t i = 0; i < shown.size(); ++i) s += (i == 0 ? " " : ", ") + shown[i];
    return total > shown.size() ? s + ", …" : s;
}

}  // namespace deepmem
