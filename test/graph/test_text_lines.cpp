// graph/text_lines.hpp: the terminal-text rule (valid UTF-8, no C0/DEL, no C1, no bidi control)
// and its sanitiser, on the byte sequences attacker 13 put into .dmg warnings.
#include "graph/text_lines.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using namespace deepmem;

TEST_SUITE("text_lines") {

TEST_CASE("terminal text: printable ASCII and UTF-8 pass; controls, bidi and invalid UTF-8 do not") {
    for (std::string_view ok : {"", "8 page-table pages are not in the dump", "a cut dump … (é, 日本, 😀)",
                                "\xc2\xa0 no-break space (U+00A0, just past C1)", "\u200d zero-width joiner"}) {
        INFO(ok);
        CHECK(is_terminal_text(ok));
        CHECK(terminal_text(ok) == ok);
    }
    struct Bad {
        std::string_view text;
        size_t at;   // first unsafe byte
    };
    const Bad bad[] = {
        {"esc \x1b[31m", 4},          {"tab\there", 3},         {"del \x7f", 4},
        {"c1 csi \xc2\x9b""31m", 7},  {"c1 osc \xc2\x9d", 7},   {"raw \x9b""31m", 4},
        {"rlo \xe2\x80\xae", 4},      {"lri \xe2\x81\xa6", 4},  {"lrm \xe2\x80\x8e", 4},
        {"alm \xd8\x9c", 4},          {"cut \xe2\x80", 4},      {"overlong \xc0\xaf", 9},
        {"overlong3 \xe0\x80\xaf", 10}, {"surrogate \xed\xa0\x80", 10}, {"past 10ffff \xf4\x90\x80\x80", 12},
        {"lone continuation \x80", 18},
    };
    for (const Bad& b : bad) {
        const std::string text(b.text);
        const size_t at = b.at;
        INFO(text);
        CHECK_FALSE(is_terminal_text(text));
        CHECK(first_unsafe_terminal_byte(text) == at);
        const std::string clean = terminal_text(text);
        CHECK(is_terminal_text(clean));
        CHECK(clean.substr(0, at) == text.substr(0, at));   // what precedes is kept
        CHECK(clean[at] == '?');
    }
    // One '?' per unsafe character (its whole sequence), per invalid byte.
    CHECK(terminal_text("a\xc2\x9b""b\xe2\x80\xae""c\x9b\x9b""d") == "a?b?c??d");
}

}  // TEST_SUITE

// JSON of printable ASCII: our own UTF-8 text by code point (helper's attack: "…" came out as the
// three bytes \u00e2\u0080\u00a6, 'â' and two C1 controls to any JSON reader), raw bytes by byte.
TEST_CASE("json_string: UTF-8 characters as code points, other bytes as \\u00XX") {
    CHECK(json_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(json_string("x\n\x7f") == "\"x\\u000a\\u007f\"");
    CHECK(json_string("\xe2\x80\xa6") == "\"\\u2026\"");                 // …
    CHECK(json_string("caf\xc3\xa9") == "\"caf\\u00e9\"");               // é
    CHECK(json_string("\xf0\x9f\x98\x80") == "\"\\ud83d\\ude00\"");      // U+1F600, a surrogate pair
    CHECK(json_string("\xe2\x80\xae") == "\"\\u202e\"");                 // a bidi control: escaped, harmless
    CHECK(json_string("\xe2\x80") == "\"\\u00e2\\u0080\"");              // cut sequence: byte by byte
    CHECK(json_string("\xc0\xaf") == "\"\\u00c0\\u00af\"");              // overlong '/'
    CHECK(json_string("\xed\xa0\x80") == "\"\\u00ed\\u00a0\\u0080\"");   // an encoded surrogate
    CHECK(json_string("\xff") == "\"\\u00ff\"");
}
