// Basic VM-exit reasons (SDM Vol. 3D Appendix C "VMX Basic Exit Reasons", Table C-1) and the
// layout of the 32-bit VM_EXIT_REASON field (SDM Vol. 3C 24.9.1 "Basic VM-Exit Information",
// "Format of Exit Reason").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "guest/exit_kind.h"

namespace lantern::vmx {

// X(NAME, number, KIND): the SDM name, the basic exit reason and the vendor-neutral kind
// (guest/exit_kind.h). Numbers 35, 38, 42 and 71 are not assigned by the SDM.
#define LANTERN_EXIT_REASONS(X)                 \
  X(EXCEPTION_NMI, 0, kException)               \
  X(EXTERNAL_INTERRUPT, 1, kInterrupt)          \
  X(TRIPLE_FAULT, 2, kShutdown)                 \
  X(INIT_SIGNAL, 3, kInit)                      \
  X(SIPI, 4, kSipi)                             \
  X(IO_SMI, 5, kSmi)                            \
  X(OTHER_SMI, 6, kSmi)                         \
  X(INTERRUPT_WINDOW, 7, kInterruptWindow)      \
  X(NMI_WINDOW, 8, kNmiWindow)                  \
  X(TASK_SWITCH, 9, kOther)                     \
  X(CPUID, 10, kCpuid)                          \
  X(GETSEC, 11, kOtherInstruction)              \
  X(HLT, 12, kHlt)                              \
  X(INVD, 13, kOtherInstruction)                \
  X(INVLPG, 14, kOtherInstruction)              \
  X(RDPMC, 15, kOtherInstruction)               \
  X(RDTSC, 16, kOtherInstruction)               \
  X(RSM, 17, kOtherInstruction)                 \
  X(VMCALL, 18, kHypercall)                     \
  X(VMCLEAR, 19, kVirtualizationInstruction)    \
  X(VMLAUNCH, 20, kVirtualizationInstruction)   \
  X(VMPTRLD, 21, kVirtualizationInstruction)    \
  X(VMPTRST, 22, kVirtualizationInstruction)    \
  X(VMREAD, 23, kVirtualizationInstruction)     \
  X(VMRESUME, 24, kVirtualizationInstruction)   \
  X(VMWRITE, 25, kVirtualizationInstruction)    \
  X(VMXOFF, 26, kVirtualizationInstruction)     \
  X(VMXON, 27, kVirtualizationInstruction)      \
  X(CR_ACCESS, 28, kControlRegister)            \
  X(DR_ACCESS, 29, kDebugRegister)              \
  X(IO_INSTRUCTION, 30, kIo)                    \
  X(MSR_READ, 31, kMsr)                         \
  X(MSR_WRITE, 32, kMsr)                        \
  X(INVALID_GUEST_STATE, 33, kInvalid)          \
  X(MSR_LOAD_FAIL, 34, kInvalid)                \
  X(MWAIT_INSTRUCTION, 36, kOtherInstruction)   \
  X(MONITOR_TRAP_FLAG, 37, kOther)              \
  X(MONITOR_INSTRUCTION, 39, kOtherInstruction) \
  X(PAUSE_INSTRUCTION, 40, kOtherInstruction)   \
  X(MCE_DURING_VMENTRY, 41, kInvalid)           \
  X(TPR_BELOW_THRESHOLD, 43, kApic)             \
  X(APIC_ACCESS, 44, kApic)                     \
  X(EOI_INDUCED, 45, kApic)                     \
  X(GDTR_IDTR, 46, kDescriptorTable)            \
  X(LDTR_TR, 47, kDescriptorTable)              \
  X(EPT_VIOLATION, 48, kNestedPageFault)        \
  X(EPT_MISCONFIG, 49, kNestedPageFault)        \
  X(INVEPT, 50, kVirtualizationInstruction)     \
  X(RDTSCP, 51, kOtherInstruction)              \
  X(PREEMPTION_TIMER, 52, kTimer)               \
  X(INVVPID, 53, kVirtualizationInstruction)    \
  X(WBINVD, 54, kOtherInstruction)              \
  X(XSETBV, 55, kOtherInstruction)              \
  X(APIC_WRITE, 56, kApic)                      \
  X(RDRAND, 57, kOtherInstruction)              \
  X(INVPCID, 58, kOtherInstruction)             \
  X(VMFUNC, 59, kVirtualizationInstruction)     \
  X(ENCLS, 60, kOtherInstruction)               \
  X(RDSEED, 61, kOtherInstruction)              \
  X(PML_FULL, 62, kOther)                       \
  X(XSAVES, 63, kOtherInstruction)              \
  X(XRSTORS, 64, kOtherInstruction)             \
  X(PCONFIG, 65, kOtherInstruction)             \
  X(SPP_EVENT, 66, kOther)                      \
  X(UMWAIT, 67, kOtherInstruction)              \
  X(TPAUSE, 68, kOtherInstruction)              \
  X(LOADIWKEY, 69, kOtherInstruction)           \
  X(ENCLV, 70, kOtherInstruction)               \
  X(ENQCMD_PASID_FAIL, 72, kOther)              \
  X(ENQCMDS_PASID_FAIL, 73, kOther)             \
  X(BUS_LOCK, 74, kOther)                       \
  X(NOTIFY, 75, kOther)                         \
  X(SEAMCALL, 76, kOtherInstruction)            \
  X(TDCALL, 77, kOtherInstruction)              \
  X(RDMSRLIST, 78, kMsr)                        \
  X(WRMSRLIST, 79, kMsr)

enum class ExitReason : uint16_t {
#define LANTERN_EXIT_REASON_ENUM(name, number, kind) name = number,
  LANTERN_EXIT_REASONS(LANTERN_EXIT_REASON_ENUM)
#undef LANTERN_EXIT_REASON_ENUM
};

// One past the highest basic exit reason the table knows: the size of a dispatch table.
inline constexpr size_t kExitReasonTableSize = 80;

// "EPT_VIOLATION", ...; "UNKNOWN" for a number not in the table (never out of bounds).
constexpr std::string_view exit_reason_name(uint32_t basic_reason) {
  switch (basic_reason) {
#define LANTERN_EXIT_REASON_CASE(name, number, kind) \
  case number: return #name;
    LANTERN_EXIT_REASONS(LANTERN_EXIT_REASON_CASE)
#undef LANTERN_EXIT_REASON_CASE
  }
  return "UNKNOWN";
}
constexpr std::string_view exit_reason_name(ExitReason r) {
  return exit_reason_name(static_cast<uint32_t>(r));
}

// The vendor-neutral kind of a basic exit reason; kUnknown for a number not in the table.
constexpr guest::ExitKind exit_kind(uint32_t basic_reason) {
  switch (basic_reason) {
#define LANTERN_EXIT_REASON_KIND(name, number, kind) \
  case number: return guest::ExitKind::kind;
    LANTERN_EXIT_REASONS(LANTERN_EXIT_REASON_KIND)
#undef LANTERN_EXIT_REASON_KIND
  }
  return guest::ExitKind::kUnknown;
}

constexpr bool is_known_exit_reason(uint32_t basic_reason) {
  return exit_reason_name(basic_reason) != "UNKNOWN";
}

// The VM_EXIT_REASON field (SDM Vol. 3C 24.9.1, "Format of Exit Reason").
struct ExitReasonField {
  uint16_t basic;      // bits 15:0
  bool enclave_mode;   // bit 27: exit from enclave mode
  bool pending_mtf;    // bit 28: pending MTF VM exit
  bool from_vmx_root;  // bit 29: exit from VMX root operation (SMM dual-monitor)
  bool entry_failure;  // bit 31: VM-entry failure

  static constexpr ExitReasonField from_raw(uint32_t raw) {
    return ExitReasonField{static_cast<uint16_t>(raw & 0xffff), ((raw >> 27) & 1) != 0,
                           ((raw >> 28) & 1) != 0, ((raw >> 29) & 1) != 0, ((raw >> 31) & 1) != 0};
  }
};

}  // namespace lantern::vmx
