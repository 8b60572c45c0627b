// Shared by the text inputs (kallsyms, the guest view, label files, the dataset manifest): a line
// reader that yields each line without its '\n' together with the byte offset where it starts, for
// FormatError, and the string-field lookup of the JSON this project writes itself; the one
// JSON string writer of the outputs; the one rule for text safe to print on a terminal; and the one
// spelling of byte sizes in messages.
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

// Terminal text: the one rule for a string read from a file or a dump that is printed (a .dmg's
// warnings, a kernel string): valid UTF-8 (no overlong form, surrogate or code point above
// U+10FFFF) holding no C0 control or DEL, no C1 control (U+0080–U+009F: CSI and OSC on terminals
// that honour them) and no bidi control (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069:
// text that reads differently from its bytes). Such text cannot drive the terminal.
struct TerminalChar {
    size_t length = 1;   // bytes: 1–4 for a UTF-8 character, 1 for a byte that starts none
    bool safe = false;
    uint32_t code_point = 0;   // the character's; for a byte that starts none, the byte
};

// The character (or invalid byte) at s[i], i < s.size().
constexpr TerminalChar terminal_char_at(std::string_view s, size_t i) noexcept {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = byte(i);
    if (c < 0x80) return {1, c >= 0x20 && c != 0x7f, c};
    const size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return {1, false, c};
    uint32_t cp = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
    for (size_t k = 1; k < n; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) return {1, false, c};
        cp = cp << 6 | (byte(i + k) & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
        return {1, false, c};   // overlong, above U+10FFFF, a surrogate
    const bool control = cp <= 0x9f || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
                         (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
    return {n, !control, cp};
}

// Offset of the first byte of `s` that is not terminal text; npos when all of it is.
constexpr size_t first_unsafe_terminal_byte(std::string_view s) noexcept {
    for (size_t i = 0; i < s.size();) {
        const TerminalChar ch = terminal_char_at(s, i);
        if (!ch.safe) return i;
        i += ch.length;
    }
    return std::string_view::npos;
}

constexpr bool is_terminal_text(std::string_view s) noexcept {
    return first_unsafe_terminal_byte(s) == std::string_view::npos;
}

// `s` made terminal text: each unsafe character (its whole UTF-8 sequence) and each byte that is
// not UTF-8 becomes one '?'; the rest is kept.
inline std::string terminal_text(std::string_view s) {
    std::string o;
    o.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const TerminalChar ch = terminal_char_at(s, i);
        if (ch.safe) o.append(s.substr(i, ch.length));
        else o += '?';
        i += ch.length;
    }
    return o;
}

// `s` with each line break ('\n', '\r') as `as`: one line of an output, whatever a file name or a
// message holds (a name holding "\n# batch: …" must not forge a line: attacker 89).
inline std::string one_line(std::string_view s, char as = ' ') {
    std::string o(s);
    for (char& c : o)
        if (c == '\n' || c == '\r') c = as;
    return o;
}

// `s` as a quoted JSON string of printable ASCII: '"' and '\\' escaped, control bytes as \u00XX,
// each valid UTF-8 character above U+007F as its code point (\uXXXX; above U+FFFF a surrogate
// pair: our own text's "…" is \u2026), and each byte that starts no valid UTF-8 character (kernel
// strings are raw bytes) as \u00XX, its Latin-1 reading.
inline std::string json_string(std::string_view s) {
    std::string o = "\"";
    const auto escape = [&](uint32_t unit) {
        char b[8];
        std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(unit));
        o += b;
    };
    for (size_t i = 0; i < s.size();) {
        const TerminalChar ch = terminal_char_at(s, i);   // a valid UTF-8 character, or one byte
        const uint32_t cp = ch.code_point;
        if (cp == '"' || cp == '\\') {
            o += '\\';
            o += static_cast<char>(cp);
        } else if (cp >= 0x20 && cp < 0x7f) {
            o += static_cast<char>(cp);
        } else if (cp > 0xffff) {
            escape(0xd800 + ((cp - 0x10000) >> 10));
            escape(0xdc00 + ((cp - 0x10000) & 0x3ff));
        } else {
            escape(cp);
        }
        i += ch.length;
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
