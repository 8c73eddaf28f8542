// Thin inline-asm wrappers over the VMX instructions, each reporting failure as a value, and
// KernelVmxHw: the asm-backed type behind the VmxHardware seam (vmx/vmx_hw.h). Kernel-only.
//
// Failure conventions (SDM Vol. 3C 30.2 "Conventions"; 31.2 in editions that renumber):
//   VMsucceed      CF = 0, ZF = 0
//   VMfailInvalid  CF = 1 (no current VMCS, so no error number)  -> vmx_fail_invalid()
//   VMfailValid    ZF = 1, VM_INSTRUCTION_ERROR (0x4400) holds the error number
//                                                                 -> vmx_fail_valid(number)
// VMLAUNCH/VMRESUME live in vmx/hw/vmx_entry.S: they only return on failure.
#pragma once

#include <cstdint>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/lib/result.h"
#include "vmx/vm_instruction_error.h"
#include "vmx/vmcs_fields.h"
#include "vmx/vmx_hw.h"

namespace lantern::vmx::hw {

// VM_INSTRUCTION_ERROR, SDM Vol. 3D Appendix B.3.1 (32-bit read-only data field 0x4400).
inline constexpr uint32_t kVmInstructionErrorEncoding = 0x4400;

// Raw VMREAD with the flags, used by the failure path itself (no recursion through Result).
inline bool vmread_raw(uint32_t encoding, uint64_t* value) {
  bool cf, zf;
  uint64_t v = 0;
  asm volatile("vmread %[enc], %[val]"
               : [val] "=rm"(v), "=@ccc"(cf), "=@ccz"(zf)
               : [enc] "r"(static_cast<uint64_t>(encoding))
               : "cc");
  *value = v;
  return !cf && !zf;
}

// The failure half of vmx_result(), kept out of line so the success path of every VMX
// instruction inlines to the instruction and one flag test (the exit path runs dozens).
[[gnu::noinline, gnu::cold]] inline Result<void> vmx_failure(bool cf) {
  if (cf) return vmx_fail_invalid();
  uint64_t number = 0;
  if (!vmread_raw(kVmInstructionErrorEncoding, &number)) return vmx_fail_invalid();
  return vmx_fail_valid(static_cast<uint32_t>(number));
}

// Turns the flags after a VMX instruction into a Result (SDM Vol. 3C 30.2).
[[gnu::always_inline]] inline Result<void> vmx_result(bool cf, bool zf) {
  if (cf || zf) [[unlikely]] return vmx_failure(cf);
  return ok();
}

// The failure half for VMREAD/VMWRITE, which test one condition ("below or equal": CF = 1 or
// ZF = 1) instead of two flags. The kind is found again by reading VM_INSTRUCTION_ERROR: with
// no current VMCS (VMfailInvalid) that read fails invalid too (SDM Vol. 3C 30.2, 30.3 VMREAD).
[[gnu::noinline, gnu::cold]] inline Result<void> vmx_access_failure() {
  uint64_t number = 0;
  if (!vmread_raw(kVmInstructionErrorEncoding, &number)) return vmx_fail_invalid();
  return vmx_fail_valid(static_cast<uint32_t>(number));
}

// VMXON m64: the physical address of a 4 KiB-aligned VMXON region (SDM Vol. 3C 24.11.5).
inline Result<void> vmxon(uint64_t vmxon_region_phys) {
  bool cf, zf;
  asm volatile("vmxon %[p]" : "=@ccc"(cf), "=@ccz"(zf) : [p] "m"(vmxon_region_phys) : "cc", "memory");
  return vmx_result(cf, zf);
}
inline Result<void> vmxoff() {
  bool cf, zf;
  asm volatile("vmxoff" : "=@ccc"(cf), "=@ccz"(zf) : : "cc", "memory");
  return vmx_result(cf, zf);
}
// VMCLEAR m64: flushes the VMCS to memory and makes its launch state "clear" (SDM Vol. 3C 24.1).
inline Result<void> vmclear(uint64_t vmcs_phys) {
  bool cf, zf;
  asm volatile("vmclear %[p]" : "=@ccc"(cf), "=@ccz"(zf) : [p] "m"(vmcs_phys) : "cc", "memory");
  return vmx_result(cf, zf);
}
// VMPTRLD m64: makes the VMCS current and active on this core.
inline Result<void> vmptrld(uint64_t vmcs_phys) {
  bool cf, zf;
  asm volatile("vmptrld %[p]" : "=@ccc"(cf), "=@ccz"(zf) : [p] "m"(vmcs_phys) : "cc", "memory");
  return vmx_result(cf, zf);
}
// VMPTRST m64: the current-VMCS pointer (~0 when there is none).
inline uint64_t vmptrst() {
  uint64_t p = 0;
  asm volatile("vmptrst %[p]" : [p] "=m"(p) : : "memory");
  return p;
}
// VMREAD and VMWRITE: the instruction and one branch (the exit path runs a dozen of them).
[[gnu::always_inline]] inline Result<uint64_t> vmread(uint32_t encoding) {
  bool failed;
  uint64_t v = 0;
  asm volatile("vmread %[enc], %[val]"
               : [val] "=rm"(v), "=@ccbe"(failed)
               : [enc] "r"(static_cast<uint64_t>(encoding))
               : "cc");
  if (failed) [[unlikely]] return vmx_access_failure().error();
  return v;
}
[[gnu::always_inline]] inline Result<void> vmwrite(uint32_t encoding, uint64_t value) {
  bool failed;
  asm volatile("vmwrite %[val], %[enc]"
               : "=@ccbe"(failed)
               : [val] "rm"(value), [enc] "r"(static_cast<uint64_t>(encoding))
               : "cc");
  if (failed) [[unlikely]] return vmx_access_failure();
  return ok();
}

// INVEPT / INVVPID types (SDM Vol. 3C 28.4.3.1, 28.4.3.3; instruction pages in Vol. 3C 30.3).
enum class InveptType : uint64_t { kSingleContext = 1, kAllContext = 2 };
enum class InvvpidType : uint64_t {
  kIndividualAddress = 0,
  kSingleContext = 1,
  kAllContext = 2,
  kSingleContextRetainingGlobals = 3,
};
// INVEPT r64, m128: descriptor = {EPTP, reserved 0}.
inline Result<void> invept(InveptType type, uint64_t eptp) {
  struct alignas(16) {
    uint64_t eptp;
    uint64_t reserved;
  } descriptor{eptp, 0};
  bool cf, zf;
  asm volatile("invept %[d], %[t]"
               : "=@ccc"(cf), "=@ccz"(zf)
               : [d] "m"(descriptor), [t] "r"(static_cast<uint64_t>(type))
               : "cc", "memory");
  return vmx_result(cf, zf);
}
// INVVPID r64, m128: descriptor = {VPID in bits 15:0, reserved, linear address}.
inline Result<void> invvpid(InvvpidType type, uint16_t vpid, uint64_t linear_address = 0) {
  struct alignas(16) {
    uint64_t vpid;
    uint64_t linear_address;
  } descriptor{vpid, linear_address};
  bool cf, zf;
  asm volatile("invvpid %[d], %[t]"
               : "=@ccc"(cf), "=@ccz"(zf)
               : [d] "m"(descriptor), [t] "r"(static_cast<uint64_t>(type))
               : "cc", "memory");
  return vmx_result(cf, zf);
}

// The kernel's VmxHardware: the real instructions. RDMSR is only ever called for MSRs the
// capability logic has proven to exist (vmx_capabilities.h), so it cannot #GP here.
struct KernelVmxHw {
  [[gnu::always_inline]] Result<uint64_t> vmread(uint32_t encoding) { return hw::vmread(encoding); }
  [[gnu::always_inline]] Result<void> vmwrite(uint32_t encoding, uint64_t value) {
    return hw::vmwrite(encoding, value);
  }
  Result<uint64_t> rdmsr(uint32_t msr) { return cpu::rdmsr(msr); }
};
static_assert(VmxHardware<KernelVmxHw>);

}  // namespace lantern::vmx::hw
