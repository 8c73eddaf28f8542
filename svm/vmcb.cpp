#include "svm/vmcb.h"

#include "kernel/lib/string.h"

namespace lantern::svm {

const VmcbFieldInfo* find_vmcb_field_by_name(std::string_view name) {
  for (const VmcbFieldInfo& f : kVmcbFields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const VmcbFieldInfo* find_vmcb_field_by_offset(uint16_t offset) {
  for (const VmcbFieldInfo& f : kVmcbFields) {
    if (f.offset == offset) return &f;
  }
  return nullptr;
}

uint64_t read_vmcb_field(const Vmcb& vmcb, const VmcbFieldInfo& field) {
  uint64_t value = 0;
  // x86 is little-endian: the low bytes of `value` take the field's bytes.
  lib::mem_copy(&value, reinterpret_cast<const uint8_t*>(&vmcb) + field.offset, field.width / 8);
  return value;
}

}  // namespace lantern::svm
