// libFuzzer target: the BTF parser and every accessor over what it accepts. Any input must end in
// a parsed Btf or a FormatError/InputError; accessors on a parsed Btf may only throw those.
// Inputs whose first byte is 'K' go to the kallsyms parser, 'V' to the guest-view parser, 'E' to
// the vmlinux ELF section lookup (then BTF of the .BTF section), so one corpus covers all four.
#include "graph/layers.hpp"
#include "train/btf.hpp"
#include "train/labeler.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

using namespace deepmem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::span<const uint8_t> in(data, size);
    try {
        if (size > 0 && data[0] == 'K') {
            auto k = Kallsyms::parse(in.subspan(1));
            (void)k.address("init_task");
            return 0;
        }
        if (size > 0 && data[0] == 'V') {
            auto v = GuestView::parse(in.subspan(1));
            (void)v.modules;
            return 0;
        }
        if (size > 0 && data[0] == 'E') {
            if (auto sec = btf::elf_section(in.subspan(1), ".BTF")) (void)btf::Btf::parse(*sec);
            return 0;
        }
        auto b = btf::Btf::parse(in);
        for (uint32_t id = 0; id < b.type_count(); ++id) {
            const auto& t = b.type(id);
            try {
                (void)b.resolve(id);
                (void)b.size_of(id);
            } catch (const FormatError&) {
            }
            try {
                for (const auto& m : t.members) {
                    if (!m.name.empty()) (void)b.member(id, std::string(m.name) + ".x");
                }
                (void)b.member(id, "a.b");
            } catch (const FormatError&) {
            }
            if (!t.name.empty()) (void)b.find(t.name, t.kind);
        }
        (void)b.enumerator("MODULE_STATE_UNFORMED");
    } catch (const FormatError&) {
    } catch (const InputError&) {
    }
    return 0;
}
