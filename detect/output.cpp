// Detections as text: table, JSON Lines and CSV out; JSON Lines and CSV back in (detect/detect.hpp).
#include "detect/detect.hpp"

#include "graph/layers.hpp"
#include "graph/text_lines.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <set>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <utility>

namespace deepmem {

namespace {

constexpr std::string_view kCsvHeader = "type,vaddr,paddr,score,votes";
// The boolean fields that are a verdict on an object (train/interpret.hpp), counted per type in a
// table's footer (newcomer 82: EXITED and FREED rows with no legend, "# task_struct: 276" alone).
// Each with what it means, for the legend line (only the keys the table has).
constexpr std::array<std::string_view, 4> kVerdictKeys = {"exited", "freed", "hidden", kBelowTrainedKey};
constexpr std::array<std::string_view, 4> kVerdictMeaning = {
    "TASK_DEAD in __state, off the kernel's lists by right", "on its slab cache's freelist, its bytes not yet reused",
    "alive but missing from a list the kernel keeps it on (missing_from)",
    "scored under the threshold its model was calibrated at, reported at the threshold scaled for its placed key "
    "nodes (the warning says why)"};

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
                number_field<float>(score, "score", offset), number_field<uint32_t>(votes, "votes", offset), {}};
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

const ObjectField* field_of(const Detection& d, std::string_view key) {
    for (const ObjectField& f : d.fields)
        if (f.key == key) return &f;
    return nullptr;
}
ObjectField* field_of(Detection& d, std::string_view key) {
    return const_cast<ObjectField*>(field_of(std::as_const(d), key));
}

void mark_below_trained(std::span<Detection> detections, std::string_view type, float trained) {
    for (Detection& d : detections)
        if (d.type == type) {
            const bool below = d.score < trained;
            d.fields.push_back({std::string(kBelowTrainedKey), below ? "true" : "false", below ? "BELOW" : "no"});
        }
}

namespace {

// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
std::string csv_field(const std::string& v) {
    if (v.find_first_of(",\"\r\n") == std::string::npos && !v.starts_with('#')) return v;   // (a row is never a comment line)
    std::string q = "\"";
    for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
}

// The keys of the fields of `ds`, in first-seen order.
std::vector<std::string> field_keys(std::span<const Detection> ds) {
    std::vector<std::string> keys;
    for (const Detection& d : ds)
        for (const ObjectField& f : d.fields)
            if (std::find(keys.begin(), keys.end(), f.key) == keys.end()) keys.push_back(f.key);
    return keys;
}

std::string table_cell(const ObjectField* f) {
    if (!f) return "";
    if (f->json == "null") return "?";
    return f->text.empty() ? "-" : f->text;
}

// Table sections per type, each with its own field columns (detections are sorted by type).
std::string fields_table(std::span<const Detection> detections, size_t width) {
    std::string out;
    for (size_t lo = 0; lo < detections.size();) {
        size_t hi = lo;
        while (hi < detections.size() && detections[hi].type == detections[lo].type) ++hi;
        const std::span<const Detection> section = detections.subspan(lo, hi - lo);
        const std::vector<std::string> keys = field_keys(section);
        std::vector<size_t> w;
        for (const std::string& k : keys) {
            size_t m = k.size();
            for (const Detection& d : section) m = std::max(m, table_cell(field_of(d, k)).size());
            w.push_back(std::min<size_t>(m, 64));   // a long path widens its column only so far
        }
        auto row = [&](const std::string& head, const std::vector<std::string>& cells) {
            std::string line = head;
            for (size_t i = 0; i < cells.size(); ++i) {
                line += "  " + cells[i];
                if (i + 1 < cells.size() && cells[i].size() < w[i]) line.append(w[i] - cells[i].size(), ' ');
            }
            while (!line.empty() && line.back() == ' ') line.pop_back();
            return line + "\n";
        };
        char buf[160];
        std::snprintf(buf, sizeof buf, "%-*s  %-18s  %-14s  %9s  %5s", int(width), "type", "vaddr", "paddr", "score", "votes");
        if (lo > 0) out += "\n";
        out += row(buf, keys);
        for (const Detection& d : section) {
            std::snprintf(buf, sizeof buf, "%-*s  %-18s  %-14s  %9s  %5u", int(width), d.type.c_str(), hex(d.vaddr).c_str(),
                          d.paddr ? hex(*d.paddr).c_str() : "-", score_text(d.score).c_str(), d.votes);
            std::vector<std::string> cells;
            for (const std::string& k : keys) cells.push_back(table_cell(field_of(d, k)));
            out += row(buf, cells);
        }
        lo = hi;
    }
    return out;
}

// kCsvHeader, alone or followed by field columns.
bool is_csv_header(std::string_view line) {
    return line.starts_with(kCsvHeader) && (line.size() == kCsvHeader.size() || line[kCsvHeader.size()] == ',');
}

}  // namespace

std::string format_detections(std::span<const Detection> detections, DetectionFormat format) {
    std::string out;
    const bool with_fields = std::any_of(detections.begin(), detections.end(), [](const Detection& d) { return !d.fields.empty(); });
    const std::vector<std::string> csv_keys = format == DetectionFormat::Csv ? field_keys(detections) : std::vector<std::string>{};
    if (format == DetectionFormat::Csv) {
        out = std::string(kCsvHeader);
        for (const std::string& k : csv_keys) out += "," + csv_field(k);
        out += "\n";
    }
    size_t width = 4;
    for (const Detection& d : detections) width = std::max(width, d.type.size());
    char buf[160];
    if (format == DetectionFormat::Table && with_fields) {
        out += fields_table(detections, width);
    } else if (format == DetectionFormat::Table) {
        std::snprintf(buf, sizeof buf, "%-*s  %-18s  %-14s  %9s  %5s\n", int(width), "type", "vaddr", "paddr", "score", "votes");
        out += buf;
    }
    std::vector<std::pair<std::string, uint64_t>> counts;   // per type, in the detections' order
    // per type and verdict field (kVerdictKeys): whether the type has it, and its true and null values
    struct VerdictCounts {
        std::array<bool, kVerdictKeys.size()> has{};
        std::array<uint64_t, kVerdictKeys.size()> marked{}, unsaid{};
    };
    std::map<std::string, VerdictCounts> verdicts_of;
    for (const Detection& d : detections) {
        const std::string paddr = d.paddr ? hex(*d.paddr) : "";
        switch (format) {
        case DetectionFormat::Table:
            if (with_fields) break;
            std::snprintf(buf, sizeof buf, "%-*s  %-18s  %-14s  %9s  %5u\n", int(width), d.type.c_str(),
                          hex(d.vaddr).c_str(), d.paddr ? paddr.c_str() : "-", score_text(d.score).c_str(), d.votes);
            out += buf;
            break;
        case DetectionFormat::Json:
            out += "{\"type\":" + json_string(d.type) + ",\"vaddr\":\"" + hex(d.vaddr) + "\",\"paddr\":" +
                   (d.paddr ? "\"" + paddr + "\"" : "null") + ",\"score\":" + score_text(d.score) +
                   ",\"votes\":" + std::to_string(d.votes);
            for (const ObjectField& f : d.fields) out += "," + json_string(f.key) + ":" + f.json;
            out += "}\n";
            break;
        case DetectionFormat::Csv:
            out += d.type + "," + hex(d.vaddr) + "," + paddr + "," + score_text(d.score) + "," + std::to_string(d.votes);
            for (const std::string& k : csv_keys) {
                // booleans as JSON spells them (the table's EXITED/FREED/HIDDEN words are for eyes:
                // a script testing one spelling counted none of them, newcomer 84); null and a
                // column of another type both empty
                const ObjectField* f = field_of(d, k);
                const bool boolean = f && (f->json == "true" || f->json == "false");
                out += "," + (!f || f->json == "null" ? std::string() : boolean ? f->json : csv_field(f->text));
            }
            out += "\n";
            break;
        }
        if (counts.empty() || counts.back().first != d.type) counts.emplace_back(d.type, 0);
        ++counts.back().second;
        for (size_t k = 0; k < kVerdictKeys.size(); ++k)
            if (const ObjectField* f = field_of(d, std::string(kVerdictKeys[k]))) {
                VerdictCounts& c = verdicts_of[d.type];
                c.has[k] = true;
                c.marked[k] += f->json == "true";
                c.unsaid[k] += f->json == "null";
            }
    }
    if (format == DetectionFormat::Table) {
        std::array<bool, kVerdictKeys.size()> shown{};
        for (const auto& [type, n] : counts) {
            std::string verdicts;
            const VerdictCounts& c = verdicts_of[type];
            for (size_t k = 0; k < kVerdictKeys.size(); ++k)
                if (c.has[k]) {
                    shown[k] = true;
                    verdicts += (verdicts.empty() ? " (" : ", ") + std::string(kVerdictKeys[k]) + " " + std::to_string(c.marked[k]);
                    if (c.unsaid[k]) verdicts += " (" + std::to_string(c.unsaid[k]) + " null)";   // not said: neither
                }
            out += "# " + type + ": " + std::to_string(n) + (verdicts.empty() ? "" : verdicts + ")") + "\n";
        }
        out += "# total: " + std::to_string(detections.size()) + "\n";
        std::string legend;
        for (size_t k = 0; k < kVerdictKeys.size(); ++k)
            if (shown[k]) legend += (legend.empty() ? "# " : "; ") + std::string(kVerdictKeys[k]) + ": " + std::string(kVerdictMeaning[k]);
        if (!legend.empty()) out += legend + "\n";
    }
    return out;
}

std::string format_warnings(std::span<const std::string> warnings, DetectionFormat format) {
    std::string out;
    for (const std::string& w : warnings) {
        if (format == DetectionFormat::Json) {
            out += "{\"record\":\"warning\",\"message\":" + json_string(w) + "}\n";
            continue;
        }
        out += std::string(kWarningLine) + one_line(w) + "\n";
    }
    return out;
}

std::string format_batch_error(std::string_view dump, std::string_view message, DetectionFormat format, bool stopped) {
    if (format == DetectionFormat::Json)
        return "{\"dump\":" + json_string(dump) + ",\"record\":\"" + (stopped ? "stopped" : "error") +
               "\",\"message\":" + json_string(message) + "}\n";
    const std::string line = one_line(std::string(stopped ? kStoppedLine : kErrorLine) +
                                      (format == DetectionFormat::Csv ? std::string(dump) + ": " : "") + std::string(message)) +
                             "\n";
    return format == DetectionFormat::Table ? name_dump_records(line, format, DumpRecords{dump}) : line;
}

std::string format_batch_summary(uint64_t dumps, uint64_t failed, uint64_t stopped, uint64_t hidden, uint64_t incomplete,
                                 DetectionFormat format) {
    if (format == DetectionFormat::Json)
        return "{\"record\":\"batch\",\"dumps\":" + std::to_string(dumps) + ",\"failed\":" + std::to_string(failed) +
               ",\"stopped\":" + std::to_string(stopped) + ",\"hidden\":" + std::to_string(hidden) +
               ",\"incomplete\":" + std::to_string(incomplete) + "}\n";
    return std::string(kBatchLine) + std::to_string(dumps) + " dump" + (dumps == 1 ? "" : "s") + ", " + std::to_string(failed) +
           " failed, " + std::to_string(stopped) + " stopped by the time limit, " + std::to_string(hidden) +
           " with hidden objects, " + std::to_string(incomplete) + " not judged whole\n";
}

std::string name_dump_records(std::string_view text, DetectionFormat format, const DumpRecords& batch) {
    std::string out;
    const std::string name = one_line(batch.dump, '?');   // one record a line whatever the file's name
    if (format == DetectionFormat::Table) return "# dump: " + name + "\n" + std::string(text);
    if (format == DetectionFormat::Csv) out = "# dump: " + name + "\n";
    std::string prefix;   // what each record starts with
    if (format == DetectionFormat::Json) {
        prefix = "{\"dump\":" + json_string(batch.dump) + ",";
    } else {
        prefix = csv_field(name) + ",";
    }
    TextLines lines(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    while (auto tl = lines.next()) {
        const std::string_view line = tl->text;
        if (line.empty()) continue;
        if (format == DetectionFormat::Csv && is_comment_line(line)) {
            out += std::string(line) + "\n";   // a warning or verdict names no dump (parse_detections skips it)
        } else if (format == DetectionFormat::Csv && is_csv_header(line)) {
            out += "dump," + std::string(line) + "\n";
        } else if (format == DetectionFormat::Json && line.front() == '{') {
            out += prefix;
            out += line.substr(1);
            out += '\n';
        } else {
            out += (format == DetectionFormat::Csv ? prefix : std::string()) + std::string(line) + "\n";
        }
    }
    return out;
}

std::vector<Detection> parse_detections(std::span<const uint8_t> text, std::vector<std::string>* run_types) {
    std::vector<Detection> out;
    std::set<std::string, std::less<>> run_seen;   // run_types, for finding
    TextLines lines(text);
    enum { Unknown, Json, Csv } kind = Unknown;
    bool named = false;                  // CSV: the dump column (name_dump_records)
    std::optional<std::string> dump;     // the dump the records name, as written
    auto same_dump = [&](std::string_view d, uint64_t offset) {
        if (!dump) dump = std::string(d);
        else if (*dump != d)
            throw FormatError(offset, "detections of several dumps (" + *dump + ", " + std::string(d) +
                                          "): keep one dump's records to compare them with its labels");
    };
    while (auto tl = lines.next()) {
        std::string_view line = tl->text;
        const uint64_t offset = tl->at;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
        if (line.empty()) continue;
        if (kind != Json && is_comment_line(line)) continue;   // format_warnings, format_dump_verdict
        if (kind == Unknown) {
            if (line.front() == '{') {
                kind = Json;
            } else if (is_csv_header(line) || (line.starts_with("dump,") && is_csv_header(line.substr(5)))) {
                kind = Csv;
                named = !is_csv_header(line);
                continue;
            } else {
                throw FormatError(offset, "expected JSON Lines detections or the CSV header \"" +
                                              std::string(kCsvHeader) + "\" (dmdetect --format json|csv)");
            }
        }
        if (kind == Json) {
            if (line.front() != '{' || line.back() != '}') throw FormatError(offset, "expected one JSON object per line");
            // The keys are looked for where they are written: "dump" first (name_dump_records), then
            // "record" for kernel and fit records (detect/fit.hpp); a field value (a comm, a path)
            // that happens to read "dump" or "record" is neither.
            std::string_view rest = line.substr(1);
            if (rest.starts_with("\"dump\":")) {
                const std::optional<std::string_view> d = json_value(line, "dump", offset);
                same_dump(*d, offset);
                const size_t after = size_t(d->data() + d->size() + 1 - line.data());
                if (after >= line.size() || line[after] != ',') throw FormatError(offset, "expected ',' after \"dump\"");
                rest = line.substr(after + 1);
            }
            if (rest.starts_with("\"record\"")) {
                if (run_types && rest.starts_with("\"record\":\"fit\"")) {
                    const auto t = json_value(rest, "type", offset);
                    if (!t || t->empty()) throw FormatError(offset, "fit record without a \"type\"");
                    if (run_seen.emplace(*t).second) run_types->emplace_back(*t);   // a set: 50 k records took 13 s
                }
                continue;
            }
            auto type = json_value(line, "type", offset), vaddr = json_value(line, "vaddr", offset),
                 score = json_value(line, "score", offset), votes = json_value(line, "votes", offset);
            if (!type || !vaddr || !score || !votes)
                throw FormatError(offset, "detection without \"type\", \"vaddr\", \"score\" and \"votes\"");
            out.push_back(detection_from(*type, *vaddr, json_value(line, "paddr", offset), *score, *votes, offset));
        } else {
            if (named && line.starts_with("dump,") && is_csv_header(line.substr(5))) continue;   // the next dump's header
            if (named) {   // the dump column: plain, or quoted with '"' doubled
                size_t end = line.find(',');
                if (line.front() == '"') {
                    for (end = 1;; end += 2) {   // past each doubled '"'
                        end = line.find('"', end);
                        if (end == std::string_view::npos) throw FormatError(offset, "unterminated quoted dump name");
                        if (end + 1 >= line.size() || line[end + 1] != '"') break;
                    }
                    ++end;
                }
                if (end >= line.size() || line[end] != ',') throw FormatError(offset, "expected the dump column, then " + std::string(kCsvHeader));
                same_dump(line.substr(0, end), offset);
                line.remove_prefix(end + 1);
            }
            std::string_view f[5];
            size_t n = 0, p = 0;
            for (; n < 5; ++n) {
                size_t c = line.find(',', p);
                f[n] = line.substr(p, c == std::string_view::npos ? std::string_view::npos : c - p);
                if (c == std::string_view::npos) break;
                p = c + 1;
            }
            // Field columns (after the five) may hold quoted commas: only the first five are read.
            if (n < 4) throw FormatError(offset, "expected 5 comma-separated fields: " + std::string(kCsvHeader));
            out.push_back(detection_from(f[0], f[1], f[2], f[3], f[4], offset));
        }
    }
    return out;
}

std::vector<Detection> read_detections(const std::string& path, std::vector<std::string>* run_types) {
    return parse_detections(read_whole_file(path, "detections"), run_types);
}


}  // namespace deepmem
