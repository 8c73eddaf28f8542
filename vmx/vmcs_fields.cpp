#include "vmx/vmcs_fields.h"

namespace lantern::vmx {

namespace {
constexpr std::string_view kHighSuffix = "_HIGH";
}  // namespace

Result<VmcsFieldRef> find_field_by_name(std::string_view name) {
  for (const VmcsFieldInfo& f : kVmcsFields) {
    if (f.name == name) return VmcsFieldRef{&f, false};
  }
  // NAME_HIGH: the high half of a 64-bit field (SDM Vol. 3C 24.11.2).
  if (name.size() > kHighSuffix.size() && name.substr(name.size() - kHighSuffix.size()) == kHighSuffix) {
    const std::string_view base = name.substr(0, name.size() - kHighSuffix.size());
    for (const VmcsFieldInfo& f : kVmcsFields) {
      if (f.name == base && f.width == VmcsWidth::k64) return VmcsFieldRef{&f, true};
    }
  }
  return make_error(ErrorCode::kNotFound, "no VMCS field with that name");
}

Result<VmcsFieldRef> find_field_by_encoding(uint32_t encoding) {
  if ((encoding & kVmcsEncodingReservedMask) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "VMCS encoding has reserved bits set (bit 12 or bits 31:15)", encoding);
  }
  const bool high = (encoding & kVmcsEncodingHighAccess) != 0;
  if (high && vmcs_encoding_width(encoding) != VmcsWidth::k64) {
    return make_error(ErrorCode::kInvalidArgument, "high access type (bit 0) is only valid for 64-bit fields",
                      encoding);
  }
  const uint32_t full = encoding & ~kVmcsEncodingHighAccess;
  for (const VmcsFieldInfo& f : kVmcsFields) {
    if (f.encoding == full) return VmcsFieldRef{&f, high};
  }
  return make_error(ErrorCode::kNotFound, "no VMCS field with that encoding", encoding);
}

}  // namespace lantern::vmx
