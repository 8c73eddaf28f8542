// HOST TESTS ONLY. A fake of the VMX hardware seam (vmx/vmx_hw.h): a std::map-backed VMCS and
// MSR file with failure injection. Never include this from kernel or portable code: it uses
// <map> and <set>. No CMakeLists.txt here on purpose, so nothing in this folder is built into
// the kernel.
#pragma once

#include <cstdint>
#include <map>
#include <set>

#include "kernel/lib/result.h"
#include "vmx/vm_instruction_error.h"
#include "vmx/vmcs_fields.h"
#include "vmx/vmx_hw.h"

namespace lantern::vmx::testing {

class FakeVmxHw {
 public:
  // ---- VMCS ----
  // Fields present in `values` are supported; others fail with VM-instruction error 12.
  std::map<uint32_t, uint64_t> values;
  // Per-encoding injected failure: VMfailValid with this VM-instruction error.
  std::map<uint32_t, uint32_t> fail_vmread;
  std::map<uint32_t, uint32_t> fail_vmwrite;
  // When false, every VMREAD/VMWRITE fails with VMfailInvalid (no current VMCS).
  bool vmcs_loaded = true;
  // When true, VMWRITE to read-only data fields succeeds (IA32_VMX_MISC bit 29).
  bool vmwrite_exit_info_allowed = false;

  // ---- MSRs ----
  // MSRs present here read successfully; others fail as if RDMSR raised #GP.
  std::map<uint32_t, uint64_t> msrs;
  std::set<uint32_t> msrs_read;  // every MSR number that was asked for, present or not

  int vmread_calls = 0;
  int vmwrite_calls = 0;

  // Marks every field of the table as supported, with value 0.
  void support_all_fields() {
    for (const VmcsFieldInfo& f : kVmcsFields) values.emplace(f.encoding, 0);
  }

  Result<uint64_t> vmread(uint32_t encoding) {
    ++vmread_calls;
    if (!vmcs_loaded) return vmx_fail_invalid();
    if (auto it = fail_vmread.find(encoding); it != fail_vmread.end()) {
      return vmx_fail_valid(it->second);
    }
    const bool high = (encoding & kVmcsEncodingHighAccess) != 0;
    auto it = values.find(encoding & ~kVmcsEncodingHighAccess);
    if (it == values.end() || (high && vmcs_encoding_width(encoding) != VmcsWidth::k64)) {
      return vmx_fail_valid(static_cast<uint32_t>(VmInstructionError::kUnsupportedVmcsComponent));
    }
    return high ? (it->second >> 32) : truncate(encoding, it->second);
  }

  Result<void> vmwrite(uint32_t encoding, uint64_t value) {
    ++vmwrite_calls;
    if (!vmcs_loaded) return vmx_fail_invalid();
    if (auto it = fail_vmwrite.find(encoding); it != fail_vmwrite.end()) {
      return vmx_fail_valid(it->second);
    }
    const bool high = (encoding & kVmcsEncodingHighAccess) != 0;
    auto it = values.find(encoding & ~kVmcsEncodingHighAccess);
    if (it == values.end() || (high && vmcs_encoding_width(encoding) != VmcsWidth::k64)) {
      return vmx_fail_valid(static_cast<uint32_t>(VmInstructionError::kUnsupportedVmcsComponent));
    }
    if (vmcs_encoding_group(encoding) == VmcsGroup::kReadOnlyData && !vmwrite_exit_info_allowed) {
      return vmx_fail_valid(static_cast<uint32_t>(VmInstructionError::kVmwriteReadOnlyComponent));
    }
    if (high) {
      it->second = (it->second & 0xffffffffu) | (value << 32);
    } else {
      it->second = truncate(encoding, value);
    }
    return ok();
  }

  Result<uint64_t> rdmsr(uint32_t msr) {
    msrs_read.insert(msr);
    auto it = msrs.find(msr);
    if (it == msrs.end()) {
      return make_error(ErrorCode::kUnsupported, "RDMSR of a missing MSR (#GP)", msr);
    }
    return it->second;
  }

 private:
  // VMWRITE/VMREAD of a 16- or 32-bit field keep only that many bits (SDM Vol. 3C 30.3).
  static uint64_t truncate(uint32_t encoding, uint64_t value) {
    switch (vmcs_encoding_width(encoding)) {
      case VmcsWidth::k16: return value & 0xffff;
      case VmcsWidth::k32: return value & 0xffffffffu;
      default: return value;
    }
  }
};

// The name the VMX issue uses.
using FakeVmcs = FakeVmxHw;

static_assert(VmxHardware<FakeVmxHw>);

}  // namespace lantern::vmx::testing
