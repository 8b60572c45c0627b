// /proc/kallsyms parser: "<hex address> <type char> <name>[\t[<module>]]" per line.
#include "graph/layers.hpp"
#include "train/labeler.hpp"
#include "graph/text_lines.hpp"

#include <charconv>

namespace deepmem {

Kallsyms Kallsyms::parse(std::span<const uint8_t> text) {
    std::vector<KernelSymbol> symbols;
    TextLines lines(text);
    while (auto l = lines.next()) {
        std::string_view line = l->text;
        const uint64_t at = l->at;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) continue;

        uint64_t addr = 0;
        auto sp = line.find(' ');
        if (sp == 0 || sp == std::string_view::npos || sp > 16)
            throw FormatError(at, "kallsyms line '<hex address> <type> <name>'");
        auto [p, ec] = std::from_chars(line.data(), line.data() + sp, addr, 16);
        if (ec != std::errc() || p != line.data() + sp) throw FormatError(at, "hexadecimal symbol address");
        if (line.size() < sp + 4 || line[sp + 2] != ' ' || line[sp + 1] == ' ' || line[sp + 1] == '\t')
            throw FormatError(at + sp, "' <type char> <name>' after the address");
        std::string_view rest = line.substr(sp + 3);
        std::string_view name = rest, module;
        if (auto tab = rest.find('\t'); tab != std::string_view::npos) {
            name = rest.substr(0, tab);
            module = rest.substr(tab + 1);
            if (module.size() < 2 || module.front() != '[' || module.back() != ']')
                throw FormatError(at + sp + 3 + tab, "'\\t[module]' after the symbol name");
        }
        if (name.empty() || name.find(' ') != std::string_view::npos)
            throw FormatError(at + sp + 3, "a symbol name without spaces");
        if (!module.empty()) module = module.substr(1, module.size() - 2);
        symbols.push_back({addr, line[sp + 1], std::string(name), std::string(module)});
    }
    return from_symbols(std::move(symbols));
}

Kallsyms Kallsyms::from_symbols(std::vector<KernelSymbol> symbols) {
    Kallsyms k;
    bool any_nonzero = false;
    for (const KernelSymbol& s : symbols) {
        any_nonzero |= s.address != 0;
        auto& table = s.module.empty() ? k.core_ : k.module_;
        table.emplace(s.name, s.address);   // first definition wins, like kallsyms_lookup_name
        ++k.count_;
    }
    if (k.count_ == 0) throw InputError("kallsyms file has no symbols");
    if (!any_nonzero)
        throw InputError("kallsyms addresses are all zero (read /proc/kallsyms as root, kptr_restrict)");
    k.symbols_ = std::move(symbols);
    return k;
}

Kallsyms Kallsyms::load(const std::string& path) {
    MappedFile f(path);
    return parse(f.bytes());
}

std::optional<uint64_t> Kallsyms::address(std::string_view name) const {
    if (auto it = core_.find(name); it != core_.end()) return it->second;
    if (auto it = module_.find(name); it != module_.end()) return it->second;
    return std::nullopt;
}

uint64_t Kallsyms::require(std::string_view name) const {
    if (auto a = address(name)) return *a;
    throw InputError("kallsyms: symbol '" + std::string(name) + "' not found");
}

}  // namespace deepmem
