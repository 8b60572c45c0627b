// Detections as text: table, JSON Lines and CSV out; JSON Lines and CSV back in (detect/detect.hpp).
#include "detect/detect.hpp"

#include "graph/layers.hpp"
#include "graph/text_lines.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

namespace deepmem {

namespace {

constexpr std::string_view kCsvHeader = "type,vaddr,paddr,score,votes";

std::string score_text(float s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", double(s));
    return buf;
}

// The raw value of "key": in one flat JSON object line: a string's contents (no escapes in what
// dmdetect writes) or a bare token (number, null); nullopt when the key is absent.
std::optional<std::string_view> json_value(std::string_view line, std::string_view key, uint64_t offset) {
    const std::string pat = "\"" + std::string(key) + "\"";
    size_t p = line.find(pat);
    if (p == std::string_view::npos) return std::nullopt;
    p = line.find_first_not_of(" \t", p + pat.size());
    if (p == std::string_view::npos || line[p] != ':') throw FormatError(offset, "expected ':' after \"" + std::string(key) + "\"");
    p = line.find_first_not_of(" \t", p + 1);
    if (p == std::string_view::npos) throw FormatError(offset, "no value for \"" + std::string(key) + "\"");
    if (line[p] == '"') {
        size_t e = line.find('"', p + 1);
        if (e == std::string_view::npos) throw FormatError(offset, "unterminated string for \"" + std::string(key) + "\"");
        return line.substr(p + 1, e - p - 1);
    }
    size_t e = line.find_first_of(",} \t", p);
    return line.substr(p, (e == std::string_view::npos ? line.size() : e) - p);
}

uint64_t address_field(std::string_view s, const char* what, uint64_t offset) {
    if (!s.starts_with("0x")) throw FormatError(offset, std::string(what) + " '" + std::string(s) + "' (expected 0x… hex)");
    try {
        return parse_address(std::string(s), what);
    } catch (const InputError& e) {
        throw FormatError(offset, e.what());
    }
}

template <class T> T number_field(std::string_view s, const char* what, uint64_t offset) {
    T v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || p != s.data() + s.size())
        throw FormatError(offset, std::string(what) + " '" + std::string(s) + "' is not a number");
    return v;
}

Detection detection_from(std::string_view type, std::string_view vaddr, std::optional<std::string_view> paddr,
                         std::string_view score, std::string_view votes, uint64_t offset) {
    if (type.empty()) throw FormatError(offset, "detection with an empty type");
    Detection d{std::string(type), address_field(vaddr, "vaddr", offset), std::nullopt,
                number_field<float>(score, "score", offset), number_field<uint32_t>(votes, "votes", offset)};
    if (paddr && !paddr->empty() && *paddr != "null") d.paddr = address_field(*paddr, "paddr", offset);
    return d;
}

}  // namespace

DetectionFormat parse_detection_format(const std::string& s) {
    if (s == "table") return DetectionFormat::Table;
    if (s == "json") return DetectionFormat::Json;
    if (s == "csv") return DetectionFormat::Csv;
    throw InputError("unknown output format '" + s + "' (expected table, json or csv)");
}

std::string format_detections(std::span<const Detection> detections, DetectionFormat format) {
    std::string out;
    if (format == DetectionFormat::Csv) out = std::string(kCsvHeader) + "\n";
    size_t width = 4;
    for (const Detection& d : detections) width = std::max(width, d.type.size());
    char buf[160];
    if (format == DetectionFormat::Table) {
        std::snprintf(buf, sizeof buf, "%-*s  %-18s  %-14s  %9s  %5s\n", int(width), "type", "vaddr", "paddr", "score", "votes");
        out += buf;
    }
    std::vector<std::pair<std::string, uint64_t>> counts;   // per type, in the detections' order
    for (const Detection& d : detections) {
        const std::string paddr = d.paddr ? hex(*d.paddr) : "";
        switch (format) {
        case DetectionFormat::Table:
            std::snprintf(buf, sizeof buf, "%-*s  %-18s  %-14s  %9s  %5u\n", int(width), d.type.c_str(),
                          hex(d.vaddr).c_str(), d.paddr ? paddr.c_str() : "-", score_text(d.score).c_str(), d.votes);
            out += buf;
            break;
        case DetectionFormat::Json:
            out += "{\"type\":\"" + d.type + "\",\"vaddr\":\"" + hex(d.vaddr) + "\",\"paddr\":" +
                   (d.paddr ? "\"" + paddr + "\"" : "null") + ",\"score\":" + score_text(d.score) +
                   ",\"votes\":" + std::to_string(d.votes) + "}\n";
            break;
        case DetectionFormat::Csv:
            out += d.type + "," + hex(d.vaddr) + "," + paddr + "," + score_text(d.score) + "," + std::to_string(d.votes) + "\n";
            break;
        }
        if (counts.empty() || counts.back().first != d.type) counts.emplace_back(d.type, 0);
        ++counts.back().second;
    }
    if (format == DetectionFormat::Table) {
        for (const auto& [type, n] : counts) out += "# " + type + ": " + std::to_string(n) + "\n";
        out += "# total: " + std::to_string(detections.size()) + "\n";
    }
    return out;
}

std::vector<Detection> parse_detections(std::span<const uint8_t> text) {
    std::vector<Detection> out;
    TextLines lines(text);
    enum { Unknown, Json, Csv } kind = Unknown;
    while (auto tl = lines.next()) {
        std::string_view line = tl->text;
        const uint64_t offset = tl->at;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        if (line.empty()) continue;
        if (kind == Unknown) {
            if (line.front() == '{') {
                kind = Json;
            } else if (line == kCsvHeader) {
                kind = Csv;
                continue;
            } else {
                throw FormatError(offset, "expected JSON Lines detections or the CSV header \"" +
                                              std::string(kCsvHeader) + "\" (dmdetect --format json|csv)");
            }
        }
        if (kind == Json) {
            if (line.front() != '{' || line.back() != '}') throw FormatError(offset, "expected one JSON object per line");
            if (json_value(line, "record", offset)) continue;   // kernel and fit records (detect/fit.hpp)
            auto type = json_value(line, "type", offset), vaddr = json_value(line, "vaddr", offset),
                 score = json_value(line, "score", offset), votes = json_value(line, "votes", offset);
            if (!type || !vaddr || !score || !votes)
                throw FormatError(offset, "detection without \"type\", \"vaddr\", \"score\" and \"votes\"");
            out.push_back(detection_from(*type, *vaddr, json_value(line, "paddr", offset), *score, *votes, offset));
        } else {
            std::string_view f[5];
            size_t n = 0, p = 0;
            for (; n < 5; ++n) {
                size_t c = line.find(',', p);
                f[n] = line.substr(p, c == std::string_view::npos ? std::string_view::npos : c - p);
                if (c == std::string_view::npos) break;
                p = c + 1;
            }
            if (n != 4) throw FormatError(offset, "expected 5 comma-separated fields: " + std::string(kCsvHeader));
            out.push_back(detection_from(f[0], f[1], f[2], f[3], f[4], offset));
        }
    }
    return out;
}

std::vector<Detection> read_detections(const std::string& path) {
    return parse_detections(read_whole_file(path, "detections"));
}


}  // namespace deepmem
