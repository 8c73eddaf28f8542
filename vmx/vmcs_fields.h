// VMCS fields, generated from the single table in vmx/vmcs_fields.def.
//
//   enum class VmcsField16 / VmcsField32 / VmcsField64 / VmcsFieldNatural
//       one typed enum per width, enumerators named exactly as in the SDM (GUEST_RIP, ...),
//       so a width-typed accessor cannot be called with a field of the wrong width.
//   kVmcsFields            constexpr array of VmcsFieldInfo{name, encoding, width, group, read_only}
//   find_field_by_name()   "GUEST_RIP" or "EPT_POINTER_HIGH" -> the field
//   find_field_by_encoding()  0x681e or 0x201b -> the field
//
// Encoding layout (SDM Vol. 3C 24.11.2 "VMREAD, VMWRITE, and Encodings of VMCS Fields",
// Table 24-21 "Structure of VMCS Component Encoding"):
//   bit 0      access type: 0 = full, 1 = high (only for 64-bit fields)
//   bits 9:1   index
//   bits 11:10 type: 0 = control, 1 = VM-exit information (read-only data), 2 = guest state,
//              3 = host state
//   bit 12     reserved (0)
//   bits 14:13 width: 0 = 16-bit, 1 = 64-bit, 2 = 32-bit, 3 = natural-width
//   bits 31:15 reserved (0)
// Every table entry is checked against this layout at compile time, below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernel/lib/result.h"

namespace lantern::vmx {

// Encoding bits 14:13 (SDM Vol. 3C 24.11.2).
enum class VmcsWidth : uint8_t { k16 = 0, k64 = 1, k32 = 2, kNatural = 3 };
// Encoding bits 11:10 (SDM Vol. 3C 24.11.2).
enum class VmcsGroup : uint8_t { kControl = 0, kReadOnlyData = 1, kGuest = 2, kHost = 3 };

// "16", "32", "64", "natural": the console's "width" value.
constexpr std::string_view vmcs_width_name(VmcsWidth w) {
  switch (w) {
    case VmcsWidth::k16: return "16";
    case VmcsWidth::k64: return "64";
    case VmcsWidth::k32: return "32";
    case VmcsWidth::kNatural: return "natural";
  }
  return "?";
}
// "control", "read_only", "guest", "host": the console's "group" value.
constexpr std::string_view vmcs_group_name(VmcsGroup g) {
  switch (g) {
    case VmcsGroup::kControl: return "control";
    case VmcsGroup::kReadOnlyData: return "read_only";
    case VmcsGroup::kGuest: return "guest";
    case VmcsGroup::kHost: return "host";
  }
  return "?";
}

// Bit layout of an encoding (SDM Vol. 3C 24.11.2, Table 24-21).
inline constexpr uint32_t kVmcsEncodingHighAccess = 1u << 0;
inline constexpr uint32_t kVmcsEncodingIndexShift = 1;
inline constexpr uint32_t kVmcsEncodingIndexMask = 0x1ffu;                // bits 9:1
inline constexpr uint32_t kVmcsEncodingTypeShift = 10;                    // bits 11:10
inline constexpr uint32_t kVmcsEncodingWidthShift = 13;                   // bits 14:13
inline constexpr uint32_t kVmcsEncodingReservedMask = ~uint32_t{0x6fff};  // bit 12, bits 31:15

constexpr VmcsWidth vmcs_encoding_width(uint32_t encoding) {
  return static_cast<VmcsWidth>((encoding >> kVmcsEncodingWidthShift) & 3);
}
constexpr VmcsGroup vmcs_encoding_group(uint32_t encoding) {
  return static_cast<VmcsGroup>((encoding >> kVmcsEncodingTypeShift) & 3);
}
constexpr uint32_t vmcs_encoding_index(uint32_t encoding) {
  return (encoding >> kVmcsEncodingIndexShift) & kVmcsEncodingIndexMask;
}
// Build an encoding from its parts, as hvpp does, e.g. for probing.
constexpr uint32_t make_vmcs_encoding(VmcsWidth width, VmcsGroup group, uint32_t index, bool high = false) {
  return (static_cast<uint32_t>(width) << kVmcsEncodingWidthShift) |
         (static_cast<uint32_t>(group) << kVmcsEncodingTypeShift) |
         ((index & kVmcsEncodingIndexMask) << kVmcsEncodingIndexShift) | (high ? 1u : 0u);
}

// ---- The typed enums ---------------------------------------------------------------------
#define LANTERN_VMCS_ENUM_k16(name, encoding) name = encoding,
#define LANTERN_VMCS_ENUM_k32(name, encoding)
#define LANTERN_VMCS_ENUM_k64(name, encoding)
#define LANTERN_VMCS_ENUM_kNatural(name, encoding)
#define LANTERN_VMCS_FIELD(name, encoding, width, group, read_only) LANTERN_VMCS_ENUM_##width(name, encoding)
enum class VmcsField16 : uint32_t {
#include "vmx/vmcs_fields.def"
};
#undef LANTERN_VMCS_ENUM_k16
#define LANTERN_VMCS_ENUM_k16(name, encoding)
#undef LANTERN_VMCS_ENUM_k32
#define LANTERN_VMCS_ENUM_k32(name, encoding) name = encoding,
enum class VmcsField32 : uint32_t {
#include "vmx/vmcs_fields.def"
};
#undef LANTERN_VMCS_ENUM_k32
#define LANTERN_VMCS_ENUM_k32(name, encoding)
#undef LANTERN_VMCS_ENUM_k64
#define LANTERN_VMCS_ENUM_k64(name, encoding) name = encoding,
enum class VmcsField64 : uint32_t {
#include "vmx/vmcs_fields.def"
};
#undef LANTERN_VMCS_ENUM_k64
#define LANTERN_VMCS_ENUM_k64(name, encoding)
#undef LANTERN_VMCS_ENUM_kNatural
#define LANTERN_VMCS_ENUM_kNatural(name, encoding) name = encoding,
enum class VmcsFieldNatural : uint32_t {
#include "vmx/vmcs_fields.def"
};
#undef LANTERN_VMCS_FIELD
#undef LANTERN_VMCS_ENUM_k16
#undef LANTERN_VMCS_ENUM_k32
#undef LANTERN_VMCS_ENUM_k64
#undef LANTERN_VMCS_ENUM_kNatural

constexpr uint32_t encoding_of(VmcsField16 f) {
  return static_cast<uint32_t>(f);
}
constexpr uint32_t encoding_of(VmcsField32 f) {
  return static_cast<uint32_t>(f);
}
constexpr uint32_t encoding_of(VmcsField64 f) {
  return static_cast<uint32_t>(f);
}
constexpr uint32_t encoding_of(VmcsFieldNatural f) {
  return static_cast<uint32_t>(f);
}
// The high half of a 64-bit field: a 32-bit access to bits 63:32 (SDM Vol. 3C 24.11.2).
constexpr uint32_t high_encoding_of(VmcsField64 f) {
  return static_cast<uint32_t>(f) | kVmcsEncodingHighAccess;
}

// ---- The info table ----------------------------------------------------------------------
struct VmcsFieldInfo {
  std::string_view name;
  uint32_t encoding;  // full access (bit 0 clear)
  VmcsWidth width;
  VmcsGroup group;
  bool read_only;
};

inline constexpr VmcsFieldInfo kVmcsFields[] = {
#define LANTERN_VMCS_FIELD(name, encoding, width, group, read_only) \
  VmcsFieldInfo{#name, encoding, VmcsWidth::width, VmcsGroup::group, read_only},
#include "vmx/vmcs_fields.def"
#undef LANTERN_VMCS_FIELD
};
inline constexpr size_t kVmcsFieldCount = sizeof(kVmcsFields) / sizeof(kVmcsFields[0]);

// A field as named or encoded by a user: the field, and whether the _HIGH half is meant.
struct VmcsFieldRef {
  const VmcsFieldInfo* info = nullptr;
  bool high = false;  // only for 64-bit fields

  constexpr uint32_t encoding() const { return info->encoding | (high ? 1u : 0u); }
  // The high half of a 64-bit field reads as 32 bits.
  constexpr VmcsWidth access_width() const { return high ? VmcsWidth::k32 : info->width; }
};

// Exact SDM name, or NAME_HIGH for the high half of a 64-bit field. kNotFound otherwise.
Result<VmcsFieldRef> find_field_by_name(std::string_view name);
// Full encoding, or full | 1 for the high half of a 64-bit field. kNotFound for an encoding
// not in the table, kInvalidArgument for a HIGH access to a field that is not 64-bit or for
// reserved bits set.
Result<VmcsFieldRef> find_field_by_encoding(uint32_t encoding);

// ---- Compile-time consistency checks (SDM Vol. 3C 24.11.2) ---------------------------------
namespace detail {

constexpr bool vmcs_table_is_consistent() {
  for (size_t i = 0; i < kVmcsFieldCount; ++i) {
    const VmcsFieldInfo& f = kVmcsFields[i];
    if ((f.encoding & kVmcsEncodingHighAccess) != 0) return false;    // bit 0: full access
    if ((f.encoding & kVmcsEncodingReservedMask) != 0) return false;  // bit 12, bits 31:15
    if (vmcs_encoding_width(f.encoding) != f.width) return false;     // bits 14:13
    if (vmcs_encoding_group(f.encoding) != f.group) return false;     // bits 11:10
    if (f.read_only != (f.group == VmcsGroup::kReadOnlyData)) return false;
  }
  return true;
}

constexpr bool vmcs_table_is_unique() {
  for (size_t i = 0; i < kVmcsFieldCount; ++i) {
    for (size_t j = i + 1; j < kVmcsFieldCount; ++j) {
      if (kVmcsFields[i].encoding == kVmcsFields[j].encoding) return false;
      if (kVmcsFields[i].name == kVmcsFields[j].name) return false;
    }
  }
  return true;
}

}  // namespace detail

static_assert(detail::vmcs_table_is_consistent(),
              "a VMCS field's encoding disagrees with its width/group/read-only columns");
static_assert(detail::vmcs_table_is_unique(), "duplicate VMCS field name or encoding");

// Spot checks against the SDM Appendix B values named in the issue.
static_assert(encoding_of(VmcsFieldNatural::GUEST_RIP) == 0x681e);
static_assert(encoding_of(VmcsField32::VM_EXIT_REASON) == 0x4402);
static_assert(encoding_of(VmcsField64::EPT_POINTER) == 0x201a);
static_assert(encoding_of(VmcsField32::VM_INSTRUCTION_ERROR) == 0x4400);
static_assert(high_encoding_of(VmcsField64::EPT_POINTER) == 0x201b);

}  // namespace lantern::vmx
