// VM-instruction error numbers (SDM Vol. 3C 30.4 "VM Instruction Error Numbers", Table 30-1;
// 31.4 in editions that renumber the VMX chapters) and the Error values a failed VMX
// instruction becomes. A VMX failure is a value carrying VM_INSTRUCTION_ERROR; never dropped.
#pragma once

#include <cstdint>
#include <string_view>

#include "kernel/lib/result.h"

namespace lantern::vmx {

enum class VmInstructionError : uint32_t {
  kVmcallInVmxRoot = 1,
  kVmclearInvalidAddress = 2,
  kVmclearVmxonPointer = 3,
  kVmlaunchNonClearVmcs = 4,
  kVmresumeNonLaunchedVmcs = 5,
  kVmresumeAfterVmxoff = 6,
  kEntryInvalidControlFields = 7,
  kEntryInvalidHostStateFields = 8,
  kVmptrldInvalidAddress = 9,
  kVmptrldVmxonPointer = 10,
  kVmptrldIncorrectRevision = 11,
  kUnsupportedVmcsComponent = 12,  // VMREAD/VMWRITE from/to unsupported VMCS component
  kVmwriteReadOnlyComponent = 13,
  kVmxonInVmxRoot = 15,
  kEntryInvalidExecutiveVmcsPointer = 16,
  kEntryNonLaunchedExecutiveVmcs = 17,
  kEntryExecutiveVmcsNotVmxonPointer = 18,
  kVmcallNonClearVmcs = 19,
  kVmcallInvalidExitControls = 20,
  kVmcallIncorrectMsegRevision = 22,
  kVmxoffUnderDualMonitor = 23,
  kVmcallInvalidSmmMonitorFeatures = 24,
  kEntryInvalidExecutiveControls = 25,
  kEntryEventsBlockedByMovSs = 26,
  kInvalidInveptInvvpidOperand = 28,
};

constexpr std::string_view vm_instruction_error_name(uint32_t number) {
  switch (number) {
    case 1: return "VMCALL executed in VMX root operation";
    case 2: return "VMCLEAR with invalid physical address";
    case 3: return "VMCLEAR with VMXON pointer";
    case 4: return "VMLAUNCH with non-clear VMCS";
    case 5: return "VMRESUME with non-launched VMCS";
    case 6: return "VMRESUME after VMXOFF";
    case 7: return "VM entry with invalid control field(s)";
    case 8: return "VM entry with invalid host-state field(s)";
    case 9: return "VMPTRLD with invalid physical address";
    case 10: return "VMPTRLD with VMXON pointer";
    case 11: return "VMPTRLD with incorrect VMCS revision identifier";
    case 12: return "VMREAD/VMWRITE from/to unsupported VMCS component";
    case 13: return "VMWRITE to read-only VMCS component";
    case 15: return "VMXON executed in VMX root operation";
    case 16: return "VM entry with invalid executive-VMCS pointer";
    case 17: return "VM entry with non-launched executive VMCS";
    case 18: return "VM entry with executive-VMCS pointer not VMXON pointer";
    case 19: return "VMCALL with non-clear VMCS";
    case 20: return "VMCALL with invalid VM-exit control fields";
    case 22: return "VMCALL with incorrect MSEG revision identifier";
    case 23: return "VMXOFF under dual-monitor treatment of SMIs and SMM";
    case 24: return "VMCALL with invalid SMM-monitor features";
    case 25: return "VM entry with invalid VM-execution control fields in executive VMCS";
    case 26: return "VM entry with events blocked by MOV SS";
    case 28: return "Invalid operand to INVEPT/INVVPID";
    default: return "unknown VM-instruction error";
  }
}

// VMfailValid (SDM Vol. 3C 30.2, ZF = 1): detail = VM_INSTRUCTION_ERROR.
constexpr Error vmx_fail_valid(uint32_t vm_instruction_error) {
  return make_error(ErrorCode::kVmxInstructionFailed, "VMX instruction failed (VMfailValid)",
                    vm_instruction_error);
}
// VMfailInvalid (CF = 1): there is no current VMCS, so no error number; detail = 0.
constexpr Error vmx_fail_invalid() {
  return make_error(ErrorCode::kVmxInstructionFailed,
                    "VMX instruction failed (VMfailInvalid: no current VMCS)", 0);
}
constexpr bool is_vm_instruction_error(const Error& e, VmInstructionError which) {
  return e.code == ErrorCode::kVmxInstructionFailed && e.detail == static_cast<uint32_t>(which);
}

}  // namespace lantern::vmx
