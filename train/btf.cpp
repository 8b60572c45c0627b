// BTF parser: the documented on-disk format (include/uapi/linux/btf.h), validated once at parse.
//
// Layout: struct btf_header { u16 magic=0xEB9F; u8 version=1; u8 flags; u32 hdr_len;
//                             u32 type_off, type_len, str_off, str_len; }  (offsets after hdr_len)
// then a sequence of struct btf_type { u32 name_off; u32 info; u32 size_or_type; } each followed
// by kind-specific data. Type ids are 1-based in record order; id 0 is void.
#include "train/btf.hpp"

#include "graph/layers.hpp"

#include <algorithm>
#include <cstring>
#include <string.h>   // strnlen (POSIX)
#include <limits>

namespace deepmem::btf {

namespace {

uint32_t le32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;   // x86 and the BTF we accept are both little-endian
}
uint16_t le16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

constexpr unsigned kMaxKind = 19;
constexpr unsigned kMaxChain = 64;   // typedef/const/… chains deeper than this are loops in practice

}  // namespace

const char* to_string(Kind k) {
    static const char* names[] = {"void", "int", "ptr", "array", "struct", "union", "enum", "fwd",
                                  "typedef", "volatile", "const", "restrict", "func", "func_proto",
                                  "var", "datasec", "float", "decl_tag", "type_tag", "enum64"};
    auto i = static_cast<unsigned>(k);
    return i <= kMaxKind ? names[i] : "?";
}

Btf Btf::parse(std::span<const uint8_t> in) {
    Btf b;
    b.blob_.assign(in.begin(), in.end());
    const uint8_t* d = b.blob_.data();
    const uint64_t n = b.blob_.size();

    if (n < 24) throw FormatError(0, "BTF header (24 bytes), blob is " + std::to_string(n) + " bytes");
    uint16_t magic = le16(d);
    if (magic == 0x9FEB) throw FormatError(0, "little-endian BTF (this blob is big-endian)");
    if (magic != 0xEB9F) throw FormatError(0, "BTF magic 0xeb9f");
    if (d[2] != 1) throw FormatError(2, "BTF version 1, found " + std::to_string(d[2]));
    const uint64_t hdr_len = le32(d + 4);
    if (hdr_len < 24 || hdr_len > n) throw FormatError(4, "BTF hdr_len in [24, blob size]");
    const uint64_t type_off = le32(d + 8), type_len = le32(d + 12);
    const uint64_t str_off = le32(d + 16), str_len = le32(d + 20);
    const uint64_t types_begin = hdr_len + type_off, types_end = types_begin + type_len;
    const uint64_t strs_begin = hdr_len + str_off, strs_end = strs_begin + str_len;
    if (types_end > n) throw FormatError(8, "type section inside the blob");
    if (strs_end > n) throw FormatError(16, "string section inside the blob");
    if (type_off % 4 != 0) throw FormatError(8, "4-byte aligned type section");
    if (str_len == 0 || d[strs_begin] != 0) throw FormatError(strs_begin, "string section starting with NUL");
    if (d[strs_end - 1] != 0) throw FormatError(strs_end - 1, "string section ending with NUL");

    // name_off → string_view, checked against the string section (which ends with NUL, so
    // every in-range offset has a terminator before strs_end) and at most kMaxName bytes: the
    // kernel's own BTF check refuses longer ones (kernel/bpf/btf.c, KSYM_NAME_LEN, 512 since 6.1),
    // and without the bound each type naming one 8 MiB string was measured end to end again
    // (attacker 108: 21,845 types, 51.8 s).
    constexpr size_t kMaxName = 1024;
    auto str = [&](uint32_t off, uint64_t where) -> std::string_view {
        if (off >= str_len) throw FormatError(where, "name offset inside the string section");
        const char* s = reinterpret_cast<const char*>(d + strs_begin + off);
        const size_t len = ::strnlen(s, std::min<uint64_t>(kMaxName + 1, str_len - off));
        if (len > kMaxName) throw FormatError(strs_begin + off, "a name of at most 1024 bytes");
        return std::string_view(s, len);
    };

    b.types_.emplace_back();   // id 0: void
    uint64_t pos = types_begin;
    while (pos < types_end) {
        if (types_end - pos < 12) throw FormatError(pos, "12-byte btf_type record");
        Type t;
        t.blob_offset = pos;
        const uint32_t name_off = le32(d + pos), info = le32(d + pos + 4), st = le32(d + pos + 8);
        const unsigned kind = (info >> 24) & 0x1f;
        const uint32_t vlen = info & 0xffff;
        if (kind == 0 || kind > kMaxKind) throw FormatError(pos + 4, "BTF kind 1..19, found " + std::to_string(kind));
        t.kind = static_cast<Kind>(kind);
        t.kind_flag = (info >> 31) & 1;
        t.name = str(name_off, pos);
        const uint64_t rec = pos;
        pos += 12;
        auto need = [&](uint64_t bytes) {
            if (types_end - pos < bytes)
                throw FormatError(pos, std::string("kind-specific data of a ") + to_string(t.kind) + " (" +
                                           std::to_string(bytes) + " bytes)");
        };
        switch (t.kind) {
        case Kind::Int: {
            need(4);
            uint32_t enc = le32(d + pos);
            t.size = st;
            t.int_bits = enc & 0xff;
            t.int_offset = (enc >> 16) & 0xff;
            t.int_encoding = (enc >> 24) & 0x0f;
            if (t.int_bits > 128 || t.int_offset + t.int_bits > 8ull * t.size)
                throw FormatError(pos, "int bits that fit the int's size");
            pos += 4;
            break;
        }
        case Kind::Ptr: case Kind::Typedef: case Kind::Volatile: case Kind::Const:
        case Kind::Restrict: case Kind::Func: case Kind::TypeTag:
            t.ref = st;
            break;
        case Kind::Fwd:
            break;
        case Kind::Float:
            t.size = st;
            break;
        case Kind::Array:
            need(12);
            t.ref = le32(d + pos);
            t.nelems = le32(d + pos + 8);
            if (le32(d + pos + 4) >= 0x80000000u) throw FormatError(pos + 4, "array index type id");
            pos += 12;
            break;
        case Kind::Struct: case Kind::Union:
            t.size = st;
            need(12ull * vlen);
            t.members.reserve(vlen);
            for (uint32_t i = 0; i < vlen; ++i, pos += 12) {
                Member m;
                m.name = str(le32(d + pos), pos);
                m.type = le32(d + pos + 4);
                uint32_t off = le32(d + pos + 8);
                if (t.kind_flag) {
                    m.bit_offset = off & 0xffffff;
                    m.bitfield_size = off >> 24;
                } else {
                    m.bit_offset = off;
                }
                t.members.push_back(m);
            }
            break;
        case Kind::Enum:
            t.size = st;
            need(8ull * vlen);
            for (uint32_t i = 0; i < vlen; ++i, pos += 8) {
                uint32_t raw = le32(d + pos + 4);
                int64_t v = t.kind_flag ? static_cast<int64_t>(static_cast<int32_t>(raw)) : static_cast<int64_t>(raw);
                t.enumerators.push_back({str(le32(d + pos), pos), v});
            }
            break;
        case Kind::Enum64:
            t.size = st;
            need(12ull * vlen);
            for (uint32_t i = 0; i < vlen; ++i, pos += 12) {
                uint64_t v = le32(d + pos + 4) | (static_cast<uint64_t>(le32(d + pos + 8)) << 32);
                t.enumerators.push_back({str(le32(d + pos), pos), static_cast<int64_t>(v)});
            }
            break;
        case Kind::FuncProto:
            t.ref = st;
            need(8ull * vlen);
            for (uint32_t i = 0; i < vlen; ++i, pos += 8) {
                str(le32(d + pos), pos);
                if (le32(d + pos + 4) >= 0x80000000u) throw FormatError(pos + 4, "parameter type id");
            }
            break;
        case Kind::Var:
            t.ref = st;
            need(4);
            pos += 4;
            break;
        case Kind::Datasec:
            t.size = st;
            need(12ull * vlen);
            pos += 12ull * vlen;
            break;
        case Kind::DeclTag:
            t.ref = st;
            need(4);
            pos += 4;
            break;
        case Kind::Void:
            break;
        }
        if (b.types_.size() >= 0x7fffffffu) throw FormatError(rec, "fewer than 2^31 types");
        b.types_.push_back(std::move(t));
    }

    // Second pass: every type reference must name an existing type.
    const uint64_t count = b.types_.size();
    for (uint32_t id = 1; id < count; ++id) {
        const Type& t = b.types_[id];
        switch (t.kind) {
        case Kind::Ptr: case Kind::Typedef: case Kind::Volatile: case Kind::Const: case Kind::Restrict:
        case Kind::Func: case Kind::TypeTag: case Kind::Array: case Kind::FuncProto: case Kind::Var:
        case Kind::DeclTag:
            if (t.ref >= count) throw FormatError(t.blob_offset + 8, "type id below " + std::to_string(count));
            break;
        case Kind::Struct: case Kind::Union:
            for (uint64_t i = 0; i < t.members.size(); ++i)
                if (t.members[i].type >= count)
                    throw FormatError(t.blob_offset + 12 + 12 * i + 4, "member type id below " + std::to_string(count));
            break;
        default:
            break;
        }
        if (!t.name.empty()) b.by_name_.emplace(t.name, id);
    }

    if (auto l = b.find("long int", Kind::Int)) {
        uint64_t s = b.types_[*l].size;
        if (s == 4 || s == 8) b.pointer_size_ = s;
    }
    return b;
}

const Type& Btf::type(uint32_t id) const {
    if (id >= types_.size()) throw InputError("BTF type id " + std::to_string(id) + " out of range");
    return types_[id];
}

std::optional<uint32_t> Btf::find(std::string_view name, Kind kind) const {
    auto [lo, hi] = by_name_.equal_range(name);
    std::optional<uint32_t> best;
    for (auto it = lo; it != hi; ++it)
        if (types_[it->second].kind == kind && (!best || it->second < *best)) best = it->second;
    return best;
}

uint32_t Btf::resolve(uint32_t id) const {
    for (unsigned i = 0; i < kMaxChain; ++i) {
        const Type& t = type(id);
        switch (t.kind) {
        case Kind::Typedef: case Kind::Volatile: case Kind::Const: case Kind::Restrict: case Kind::TypeTag:
            id = t.ref;
            break;
        default:
            return id;
        }
    }
    throw FormatError(type(id).blob_offset, "a type chain shorter than 64 links (loop?)");
}

uint64_t Btf::size_of(uint32_t id) const {
    uint64_t mult = 1;
    for (unsigned i = 0; i < kMaxChain; ++i) {
        id = resolve(id);
        const Type& t = types_[id];
        uint64_t s;
        switch (t.kind) {
        case Kind::Int: case Kind::Struct: case Kind::Union: case Kind::Enum: case Kind::Enum64:
        case Kind::Float:
            s = t.size;
            break;
        case Kind::Ptr:
            s = pointer_size_;
            break;
        case Kind::Array:
            if (t.nelems != 0 && mult > std::numeric_limits<uint64_t>::max() / t.nelems)
                throw FormatError(t.blob_offset, "array size below 2^64");
            mult *= t.nelems;
            id = t.ref;
            continue;
        default:
            throw FormatError(t.blob_offset, std::string("a sized type, found ") + to_string(t.kind));
        }
        if (s != 0 && mult > std::numeric_limits<uint64_t>::max() / s)
            throw FormatError(t.blob_offset, "array size below 2^64");
        return mult * s;
    }
    throw FormatError(type(id).blob_offset, "array nesting shallower than 64 (loop?)");
}

std::optional<Field> Btf::member_in(uint32_t struct_id, std::string_view name, unsigned depth) const {
    if (depth > kMaxChain) throw FormatError(type(struct_id).blob_offset, "anonymous member nesting shallower than 64");
    const Type& t = type(resolve(struct_id));
    if (t.kind != Kind::Struct && t.kind != Kind::Union) return std::nullopt;
    for (const Member& m : t.members) {
        if (m.name == name) return Field{m.bit_offset, m.bitfield_size, m.type};
    }
    for (const Member& m : t.members) {
        if (!m.name.empty()) continue;
        if (auto f = member_in(m.type, name, depth + 1)) {
            f->bit_offset += m.bit_offset;
            return f;
        }
    }
    return std::nullopt;
}

std::optional<Field> Btf::member(uint32_t struct_id, std::string_view path) const {
    Field acc{0, 0, struct_id};
    bool first = true;
    while (true) {
        auto dot = path.find('.');
        std::string_view part = path.substr(0, dot);
        if (part.empty()) return std::nullopt;
        auto f = member_in(first ? struct_id : acc.type, part, 0);
        if (!f) return std::nullopt;
        acc.bit_offset += f->bit_offset;
        acc.bitfield_size = f->bitfield_size;
        acc.type = f->type;
        first = false;
        if (dot == std::string_view::npos) return acc;
        path.remove_prefix(dot + 1);
    }
}

std::optional<int64_t> Btf::enumerator(std::string_view name) const {
    for (const Type& t : types_)
        for (const Enumerator& e : t.enumerators)
            if (e.name == name) return e.value;
    return std::nullopt;
}

}  // namespace deepmem::btf
