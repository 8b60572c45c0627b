// BTF (BPF Type Format) of a kernel build: the struct layouts the ground-truth labeler walks.
//
// Contract
//   Btf::parse      a raw .BTF blob (the kernel's documented format, docs.kernel.org/bpf/btf.html;
//                   little-endian, base BTF only). Every offset, length, string reference and type
//                   reference is checked at parse time; a malformed blob is a FormatError whose
//                   offset is the byte offset inside the blob. After parse, no accessor can read
//                   outside the blob, and type chains that loop are reported, not followed forever.
//   load_kernel_btf a kernel file as shipped: a bzImage (vmlinuz, xz payload decompressed with
//                   liblzma), an uncompressed vmlinux ELF32/ELF64 (the .BTF section) or a raw .BTF file
//                   (e.g. a copy of /sys/kernel/btf/vmlinux).
//   Nothing here knows any kernel version: callers ask for fields by name.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace deepmem::btf {

enum class Kind : uint8_t {
    Void = 0, Int = 1, Ptr = 2, Array = 3, Struct = 4, Union = 5, Enum = 6, Fwd = 7,
    Typedef = 8, Volatile = 9, Const = 10, Restrict = 11, Func = 12, FuncProto = 13,
    Var = 14, Datasec = 15, Float = 16, DeclTag = 17, TypeTag = 18, Enum64 = 19,
};
const char* to_string(Kind);

// A struct/union member. `bit_offset` counts from the start of the enclosing type;
// `bitfield_size` is 0 for ordinary members.
struct Member {
    std::string_view name;   // empty for anonymous struct/union members
    uint32_t type = 0;
    uint64_t bit_offset = 0;
    uint32_t bitfield_size = 0;
};

struct Enumerator {
    std::string_view name;
    int64_t value = 0;
};

// One decoded type. Which fields mean something depends on `kind`:
//   size   Int/Struct/Union/Enum/Enum64/Float/Datasec: byte size
//   ref    Ptr/Typedef/Volatile/Const/Restrict/TypeTag/Func/Var/DeclTag: referenced type;
//          Array: element type; FuncProto: return type
//   nelems Array: element count
//   int_bits / int_offset / int_encoding for Int
struct Type {
    Kind kind = Kind::Void;
    bool kind_flag = false;
    std::string_view name;
    uint64_t size = 0;
    uint32_t ref = 0;
    uint32_t nelems = 0;
    uint8_t int_bits = 0, int_offset = 0, int_encoding = 0;
    uint64_t blob_offset = 0;              // where this type's record starts in the blob
    std::vector<Member> members;           // Struct/Union
    std::vector<Enumerator> enumerators;   // Enum/Enum64
};

// Where a (possibly nested, dotted) member path lands inside a struct.
struct Field {
    uint64_t bit_offset = 0;
    uint32_t bitfield_size = 0;
    uint32_t type = 0;   // the member's declared type (not resolved)
    uint64_t byte_offset() const noexcept { return bit_offset / 8; }
};

class Btf {
public:
    // Parses and validates a raw BTF blob; the bytes are copied. Throws FormatError.
    static Btf parse(std::span<const uint8_t> blob);

    uint32_t type_count() const noexcept { return static_cast<uint32_t>(types_.size()); }  // incl. void
    const Type& type(uint32_t id) const;     // throws InputError for an id out of range

    // First type with this name and kind (Struct by default); nullopt when absent.
    std::optional<uint32_t> find(std::string_view name, Kind kind = Kind::Struct) const;
    // Strips Typedef/Volatile/Const/Restrict/TypeTag; throws FormatError on a loop.
    uint32_t resolve(uint32_t id) const;
    // Byte size of a type (pointers are `pointer_size()` bytes); throws FormatError on loops,
    // overflow or a type without size (void, function).
    uint64_t size_of(uint32_t id) const;
    // Pointer width of the target, taken from the "long" integer type (8 when absent).
    uint64_t pointer_size() const noexcept { return pointer_size_; }
    // The blob as parsed (header included), e.g. to compare BTF from two sources byte for byte.
    std::span<const uint8_t> bytes() const noexcept { return blob_; }

    // Member by dotted path ("f_path.dentry"), descending through anonymous struct/union
    // members as the C compiler does. `struct_id` may be a typedef of a struct. nullopt if absent.
    std::optional<Field> member(uint32_t struct_id, std::string_view path) const;
    // Value of a named enumerator of any enum in the blob; nullopt if absent.
    std::optional<int64_t> enumerator(std::string_view name) const;

private:
    std::optional<Field> member_in(uint32_t struct_id, std::string_view name, unsigned depth) const;
    std::vector<uint8_t> blob_;
    std::vector<Type> types_;
    std::unordered_multimap<std::string_view, uint32_t> by_name_;
    uint64_t pointer_size_ = 8;
};

// Locates the BTF of a kernel file and parses it. Accepts a bzImage, a vmlinux ELF, or raw BTF.
// Throws InputError (cannot open, no BTF, unsupported compression) or FormatError.
Btf load_kernel_btf(const std::string& path);

// The pieces of load_kernel_btf, for tests and fuzzers.
// Decompresses the payload of a bzImage (boot protocol ≥ 2.08 header, else the first xz stream
// found by magic). Throws FormatError / InputError.
std::vector<uint8_t> decompress_bzimage(std::span<const uint8_t> image);
// The bytes of section `name` of a little-endian ELF (32- or 64-bit: amd64 and i386 kernels);
// nullopt when there is no such section.
std::optional<std::span<const uint8_t>> elf_section(std::span<const uint8_t> elf, std::string_view name);
// Every "Linux version <release> (…" banner line inside a kernel image, in file order. There can
// be several: 6.1 links a weak placeholder (init/version.c) beside the real one
// (init/version-timestamp.c), differing in the build number.
std::vector<std::string> find_linux_banners(std::span<const uint8_t> image);

// Loads a kernel file (as load_kernel_btf) and also returns its banners, for cross-checks.
struct KernelImage {
    Btf btf;
    std::vector<std::string> banners;   // empty for raw BTF
};
KernelImage load_kernel_image(const std::string& path);

}  // namespace deepmem::btf
