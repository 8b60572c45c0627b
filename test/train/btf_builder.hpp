// Hand-built BTF blobs for tests: the documented on-disk format written field by field, so the
// parser is checked against the spec and not against itself.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace deepmem::test {

struct BtfMember {
    std::string name;
    uint32_t type;
    uint32_t bit_offset;
    uint32_t bitfield_size = 0;
};

class BtfBuilder {
public:
    uint32_t str(std::string_view s) {
        if (s.empty()) return 0;
        uint32_t off = static_cast<uint32_t>(strings_.size());
        strings_.append(s);
        strings_.push_back('\0');
        return off;
    }
    uint32_t next_id() const { return next_; }

    uint32_t int_type(std::string_view name, uint32_t size, uint32_t bits, bool is_signed = true) {
        uint32_t id = record(name, 1, 0, false, size);
        u32((is_signed ? 1u << 24 : 0u) | bits);
        return id;
    }
    uint32_t ptr(uint32_t to) { return record("", 2, 0, false, to); }
    uint32_t typedef_(std::string_view name, uint32_t to) { return record(name, 8, 0, false, to); }
    uint32_t const_(uint32_t to) { return record("", 10, 0, false, to); }
    uint32_t array(uint32_t elem, uint32_t index_type, uint32_t n) {
        uint32_t id = record("", 3, 0, false, 0);
        u32(elem);
        u32(index_type);
        u32(n);
        return id;
    }
    // kind 4 (struct) or 5 (union); kind_flag set when any member is a bitfield.
    uint32_t composite(bool is_union, std::string_view name, uint32_t size, const std::vector<BtfMember>& ms) {
        bool kflag = false;
        for (const auto& m : ms) kflag |= m.bitfield_size != 0;
        uint32_t id = record(name, is_union ? 5 : 4, static_cast<uint32_t>(ms.size()), kflag, size);
        for (const auto& m : ms) {
            u32(str(m.name));
            u32(m.type);
            u32(kflag ? (m.bitfield_size << 24) | m.bit_offset : m.bit_offset);
        }
        return id;
    }
    uint32_t struct_(std::string_view name, uint32_t size, const std::vector<BtfMember>& ms) {
        return composite(false, name, size, ms);
    }
    uint32_t union_(std::string_view name, uint32_t size, const std::vector<BtfMember>& ms) {
        return composite(true, name, size, ms);
    }
    uint32_t enum_(std::string_view name, uint32_t size, const std::vector<std::pair<std::string, int32_t>>& es) {
        uint32_t id = record(name, 6, static_cast<uint32_t>(es.size()), true, size);
        for (const auto& [n, v] : es) {
            u32(str(n));
            u32(static_cast<uint32_t>(v));
        }
        return id;
    }
    // A raw record, for malformed input.
    uint32_t record(std::string_view name, uint32_t kind, uint32_t vlen, bool kflag, uint32_t size_or_type) {
        u32(str(name));
        u32((kflag ? 1u << 31 : 0u) | (kind << 24) | vlen);
        u32(size_or_type);
        return next_++;
    }
    void u32(uint32_t v) {
        uint8_t b[4];
        std::memcpy(b, &v, 4);
        types_.insert(types_.end(), b, b + 4);
    }

    std::vector<uint8_t> blob() const {
        std::vector<uint8_t> out;
        auto put16 = [&](uint16_t v) { out.push_back(v & 0xff); out.push_back(v >> 8); };
        auto put32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) out.push_back((v >> (8 * i)) & 0xff); };
        put16(0xEB9F);
        out.push_back(1);   // version
        out.push_back(0);   // flags
        put32(24);          // hdr_len
        put32(0);
        put32(static_cast<uint32_t>(types_.size()));
        put32(static_cast<uint32_t>(types_.size()));
        put32(static_cast<uint32_t>(strings_.size()));
        out.insert(out.end(), types_.begin(), types_.end());
        out.insert(out.end(), strings_.begin(), strings_.end());
        return out;
    }

private:
    std::vector<uint8_t> types_;
    std::string strings_ = std::string(1, '\0');
    uint32_t next_ = 1;
};

}  // namespace deepmem::test
