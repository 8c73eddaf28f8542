// Basic VM-exit reasons (SDM Vol. 3D Appendix C "VMX Basic Exit Reasons", Table C-1) and the
// layout of the 32-bit VM_EXIT_REASON field (SDM Vol. 3C 24.9.1 "Basic VM-Exit Information",
// "Format of Exit Reason").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lantern::vmx {

// X(NAME, number). Numbers 35, 38, 42 and 71 are not assigned by the SDM.
#define LANTERN_EXIT_REASONS(X) \
  X(EXCEPTION_NMI, 0)           \
  X(EXTERNAL_INTERRUPT, 1)      \
  X(TRIPLE_FAULT, 2)            \
  X(INIT_SIGNAL, 3)             \
  X(SIPI, 4)                    \
  X(IO_SMI, 5)                  \
  X(OTHER_SMI, 6)               \
  X(INTERRUPT_WINDOW, 7)        \
  X(NMI_WINDOW, 8)              \
  X(TASK_SWITCH, 9)             \
  X(CPUID, 10)                  \
  X(GETSEC, 11)                 \
  X(HLT, 12)                    \
  X(INVD, 13)                   \
  X(INVLPG, 14)                 \
  X(RDPMC, 15)                  \
  X(RDTSC, 16)                  \
  X(RSM, 17)                    \
  X(VMCALL, 18)                 \
  X(VMCLEAR, 19)                \
  X(VMLAUNCH, 20)               \
  X(VMPTRLD, 21)                \
  X(VMPTRST, 22)                \
  X(VMREAD, 23)                 \
  X(VMRESUME, 24)               \
  X(VMWRITE, 25)                \
  X(VMXOFF, 26)                 \
  X(VMXON, 27)                  \
  X(CR_ACCESS, 28)              \
  X(DR_ACCESS, 29)              \
  X(IO_INSTRUCTION, 30)         \
  X(MSR_READ, 31)               \
  X(MSR_WRITE, 32)              \
  X(INVALID_GUEST_STATE, 33)    \
  X(MSR_LOAD_FAIL, 34)          \
  X(MWAIT_INSTRUCTION, 36)      \
  X(MONITOR_TRAP_FLAG, 37)      \
  X(MONITOR_INSTRUCTION, 39)    \
  X(PAUSE_INSTRUCTION, 40)      \
  X(MCE_DURING_VMENTRY, 41)     \
  X(TPR_BELOW_THRESHOLD, 43)    \
  X(APIC_ACCESS, 44)            \
  X(EOI_INDUCED, 45)            \
  X(GDTR_IDTR, 46)              \
  X(LDTR_TR, 47)                \
  X(EPT_VIOLATION, 48)          \
  X(EPT_MISCONFIG, 49)          \
  X(INVEPT, 50)                 \
  X(RDTSCP, 51)                 \
  X(PREEMPTION_TIMER, 52)       \
  X(INVVPID, 53)                \
  X(WBINVD, 54)                 \
  X(XSETBV, 55)                 \
  X(APIC_WRITE, 56)             \
  X(RDRAND, 57)                 \
  X(INVPCID, 58)                \
  X(VMFUNC, 59)                 \
  X(ENCLS, 60)                  \
  X(RDSEED, 61)                 \
  X(PML_FULL, 62)               \
  X(XSAVES, 63)                 \
  X(XRSTORS, 64)                \
  X(PCONFIG, 65)                \
  X(SPP_EVENT, 66)              \
  X(UMWAIT, 67)                 \
  X(TPAUSE, 68)                 \
  X(LOADIWKEY, 69)              \
  X(ENCLV, 70)                  \
  X(ENQCMD_PASID_FAIL, 72)      \
  X(ENQCMDS_PASID_FAIL, 73)     \
  X(BUS_LOCK, 74)               \
  X(NOTIFY, 75)                 \
  X(SEAMCALL, 76)               \
  X(TDCALL, 77)                 \
  X(RDMSRLIST, 78)              \
  X(WRMSRLIST, 79)

enum class ExitReason : uint16_t {
#define LANTERN_EXIT_REASON_ENUM(name, number) name = number,
  LANTERN_EXIT_REASONS(LANTERN_EXIT_REASON_ENUM)
#undef LANTERN_EXIT_REASON_ENUM
};

// One past the highest basic exit reason the table knows: the size of a dispatch table.
inline constexpr size_t kExitReasonTableSize = 80;

// "EPT_VIOLATION", ...; "UNKNOWN" for a number not in the table (never out of bounds).
constexpr std::string_view exit_reason_name(uint32_t basic_reason) {
  switch (basic_reason) {
#define LANTERN_EXIT_REASON_CASE(name, number) \
  case number: return #name;
    LANTERN_EXIT_REASONS(LANTERN_EXIT_REASON_CASE)
#undef LANTERN_EXIT_REASON_CASE
  }
  return "UNKNOWN";
}
constexpr std::string_view exit_reason_name(ExitReason r) {
  return exit_reason_name(static_cast<uint32_t>(r));
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
