// The hardware seam for VMX: VMREAD, VMWRITE and RDMSR as a compile-time interface.
//
// Portable code is written as templates over a type satisfying VmxHardware. The kernel
// instantiates them with a thin asm-backed type (added later in a kernel-only source);
// host tests instantiate them with FakeVmxHw (vmx/testing/fake_vmx_hw.h), a map-backed VMCS
// with failure injection. No virtual call on the hot path, and portable code never includes
// an asm header.
//
// Contract for an implementation:
//   Result<uint64_t> vmread(uint32_t encoding)
//       VMfailValid   -> vmx_fail_valid(VM_INSTRUCTION_ERROR)  (e.g. 12 for an unsupported field)
//       VMfailInvalid -> vmx_fail_invalid()
//   Result<void> vmwrite(uint32_t encoding, uint64_t value)   same failures
//   Result<uint64_t> rdmsr(uint32_t msr)                      kUnsupported if the MSR faults
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernel/lib/result.h"
#include "vmx/vm_instruction_error.h"
#include "vmx/vmcs_fields.h"

namespace lantern::vmx {

template <typename Hw>
concept VmxHardware = requires(Hw& hw, uint32_t encoding, uint64_t value, uint32_t msr) {
  requires std::is_same_v<decltype(hw.vmread(encoding)), Result<uint64_t>>;
  requires std::is_same_v<decltype(hw.vmwrite(encoding, value)), Result<void>>;
  requires std::is_same_v<decltype(hw.rdmsr(msr)), Result<uint64_t>>;
};

// ---- Width-typed accessors (the only way portable code touches a VMCS field) ---------------
template <VmxHardware Hw>
[[gnu::always_inline]] inline Result<uint16_t> vmcs_read(Hw& hw, VmcsField16 field) {
  const uint64_t v = TRY(hw.vmread(encoding_of(field)));
  return static_cast<uint16_t>(v);
}
template <VmxHardware Hw>
[[gnu::always_inline]] inline Result<uint32_t> vmcs_read(Hw& hw, VmcsField32 field) {
  const uint64_t v = TRY(hw.vmread(encoding_of(field)));
  return static_cast<uint32_t>(v);
}
template <VmxHardware Hw>
[[gnu::always_inline]] inline Result<uint64_t> vmcs_read(Hw& hw, VmcsField64 field) {
  return hw.vmread(encoding_of(field));
}
template <VmxHardware Hw>
[[gnu::always_inline]] inline Result<uint64_t> vmcs_read(Hw& hw, VmcsFieldNatural field) {
  return hw.vmread(encoding_of(field));
}

template <VmxHardware Hw>
[[gnu::always_inline]] inline Result<void> vmcs_write(Hw& hw, VmcsField16 field, uint16_t value) {
  return hw.vmwrite(encoding_of(field), value);
}
template <VmxHardware Hw>
[[gnu::always_inline]] inline Result<void> vmcs_write(Hw& hw, VmcsField32 field, uint32_t value) {
  return hw.vmwrite(encoding_of(field), value);
}
template <VmxHardware Hw>
[[gnu::always_inline]] inline Result<void> vmcs_write(Hw& hw, VmcsField64 field, uint64_t value) {
  return hw.vmwrite(encoding_of(field), value);
}
template <VmxHardware Hw>
[[gnu::always_inline]] inline Result<void> vmcs_write(Hw& hw, VmcsFieldNatural field, uint64_t value) {
  return hw.vmwrite(encoding_of(field), value);
}

// Reads one field by reference (full or _HIGH half), truncated to the access width.
template <VmxHardware Hw>
[[gnu::always_inline]] inline Result<uint64_t> vmcs_read(Hw& hw, const VmcsFieldRef& ref) {
  const uint64_t v = TRY(hw.vmread(ref.encoding()));
  switch (ref.access_width()) {
    case VmcsWidth::k16: return v & 0xffff;
    case VmcsWidth::k32: return v & 0xffffffffu;
    default: return v;
  }
}

// Calls fn(const VmcsFieldInfo&, uint64_t value) for every field of kVmcsFields this CPU
// supports, in table order. A field whose VMREAD fails with VM-instruction error 12
// (unsupported VMCS component) is skipped; any other failure stops the walk and is returned.
// Returns the number of fields reported. This is how the console's VMCS dump shows "every
// field this CPU supports".
template <VmxHardware Hw, typename Fn>
Result<size_t> for_each_supported_field(Hw& hw, Fn&& fn) {
  size_t reported = 0;
  for (const VmcsFieldInfo& info : kVmcsFields) {
    Result<uint64_t> value = hw.vmread(info.encoding);
    if (!value.has_value()) {
      if (is_vm_instruction_error(value.error(), VmInstructionError::kUnsupportedVmcsComponent)) {
        continue;
      }
      return value.error();
    }
    fn(info, *value);
    ++reported;
  }
  return reported;
}

}  // namespace lantern::vmx
