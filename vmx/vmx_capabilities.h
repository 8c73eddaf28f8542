// What this CPU's VMX can do, read once per core from the capability MSRs
// (SDM Vol. 3D Appendix A) and shown by GET /api/v1/system.
//
// read_capabilities(hw) only reads MSRs that exist: IA32_VMX_PROCBASED_CTLS2 only when the
// primary controls allow "activate secondary controls" (A.3.3), IA32_VMX_EPT_VPID_CAP only when
// the secondary controls allow EPT or VPID (A.10), the TRUE_* MSRs only when IA32_VMX_BASIC
// bit 55 is set (A.1), IA32_VMX_PROCBASED_CTLS3 only when "activate tertiary controls" is
// allowed (A.3.4). Reading a missing MSR would #GP on hardware.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"
#include "vmx/vmx_controls.h"
#include "vmx/vmx_hw.h"

namespace lantern::vmx {

// The MSR values as read (0 for an MSR that does not exist on this CPU).
struct VmxCapabilityMsrs {
  uint64_t basic = 0;           // 0x480
  uint64_t pinbased = 0;        // 0x481
  uint64_t procbased = 0;       // 0x482
  uint64_t exit = 0;            // 0x483
  uint64_t entry = 0;           // 0x484
  uint64_t misc = 0;            // 0x485
  uint64_t procbased2 = 0;      // 0x48B
  uint64_t ept_vpid_cap = 0;    // 0x48C
  uint64_t true_pinbased = 0;   // 0x48D
  uint64_t true_procbased = 0;  // 0x48E
  uint64_t true_exit = 0;       // 0x48F
  uint64_t true_entry = 0;      // 0x490
  uint64_t procbased3 = 0;      // 0x492
};

// INVEPT/INVVPID types (SDM Vol. 3D A.10, IA32_VMX_EPT_VPID_CAP).
struct InveptTypes {
  bool supported = false;       // bit 20: INVEPT
  bool single_context = false;  // bit 25
  bool all_context = false;     // bit 26
};
struct InvvpidTypes {
  bool supported = false;                         // bit 32: INVVPID
  bool individual_address = false;                // bit 40
  bool single_context = false;                    // bit 41
  bool all_context = false;                       // bit 42
  bool single_context_retaining_globals = false;  // bit 43
};

struct VmxCapabilities {
  VmxCapabilityMsrs msrs;

  // IA32_VMX_BASIC (A.1).
  uint32_t vmcs_revision_id = 0;           // bits 30:0
  uint32_t vmcs_region_bytes = 0;          // bits 44:32
  bool physical_address_32bit = false;     // bit 48: VMXON/VMCS addresses limited to 32 bits
  uint8_t vmcs_memory_type = 0;            // bits 53:50 (6 = write-back)
  bool ins_outs_info = false;              // bit 54: INS/OUTS report instruction information
  bool true_controls = false;              // bit 55: TRUE_* MSRs in effect
  bool no_error_code_consistency = false;  // bit 56: exceptions injectable with/without code

  // The effective control capabilities (TRUE_* when bit 55, else 0x481-0x484), and the
  // secondary/tertiary ones (0 when absent): pass these to adjust_controls().
  uint64_t pinbased_ctls = 0;
  uint64_t procbased_ctls = 0;
  uint64_t exit_ctls = 0;
  uint64_t entry_ctls = 0;
  uint64_t procbased2_ctls = 0;
  uint64_t procbased3_ctls = 0;

  // Active optional features (allowed-1 and, where a chain is needed, the chain too).
  bool secondary_controls = false;  // primary bit 31 allowed
  bool tertiary_controls = false;   // primary bit 17 allowed
  bool ept = false;                 // secondary bit 1
  bool ept_walk_length_4 = false;   // EPT_VPID_CAP bit 6
  bool ept_execute_only = false;    // EPT_VPID_CAP bit 0
  bool ept_uc = false;              // EPT_VPID_CAP bit 8: EPT structures may be UC
  bool ept_wb = false;              // EPT_VPID_CAP bit 14: EPT structures may be WB
  bool ept_2m_pages = false;        // EPT_VPID_CAP bit 16
  bool ept_1g_pages = false;        // EPT_VPID_CAP bit 17
  bool ept_accessed_dirty = false;  // EPT_VPID_CAP bit 21
  InveptTypes invept;
  bool vpid = false;  // secondary bit 5
  InvvpidTypes invvpid;
  bool unrestricted_guest = false;     // secondary bit 7 (needs EPT)
  bool pml = false;                    // secondary bit 17
  bool ept_violation_ve = false;       // secondary bit 18
  bool xsaves = false;                 // secondary bit 20
  bool tsc_scaling = false;            // secondary bit 25
  bool virtual_nmis = false;           // pin-based bit 5
  bool nmi_window_exiting = false;     // primary bit 22
  bool preemption_timer = false;       // pin-based bit 6
  uint8_t preemption_timer_rate = 0;   // MISC bits 4:0: timer ticks when TSC bit <rate> changes
  bool save_preemption_timer = false;  // exit control bit 22

  // IA32_VMX_MISC (A.6).
  bool activity_hlt = false;            // bit 6
  bool activity_shutdown = false;       // bit 7
  bool activity_wait_for_sipi = false;  // bit 8
  uint16_t cr3_target_count = 0;        // bits 24:16
  uint32_t max_msr_list_entries = 0;    // 512 * (bits 27:25 + 1)
  bool vmwrite_exit_info = false;       // bit 29: VMWRITE to VM-exit information fields allowed
  bool zero_length_injection = false;   // bit 30: inject software events with length 0
};

// Pure decoding of already-read MSRs. kMalformed when IA32_VMX_BASIC reports a VMCS region
// larger than 4096 bytes (A.1: "never greater than 4096").
Result<VmxCapabilities> decode_capabilities(const VmxCapabilityMsrs& msrs);

template <VmxHardware Hw>
Result<VmxCapabilities> read_capabilities(Hw& hw) {
  VmxCapabilityMsrs m;
  m.basic = TRY(hw.rdmsr(kMsrVmxBasic));
  m.pinbased = TRY(hw.rdmsr(kMsrVmxPinbasedCtls));
  m.procbased = TRY(hw.rdmsr(kMsrVmxProcbasedCtls));
  m.exit = TRY(hw.rdmsr(kMsrVmxExitCtls));
  m.entry = TRY(hw.rdmsr(kMsrVmxEntryCtls));
  m.misc = TRY(hw.rdmsr(kMsrVmxMisc));
  if ((m.basic & kVmxBasicTrueControls) != 0) {
    m.true_pinbased = TRY(hw.rdmsr(kMsrVmxTruePinbasedCtls));
    m.true_procbased = TRY(hw.rdmsr(kMsrVmxTrueProcbasedCtls));
    m.true_exit = TRY(hw.rdmsr(kMsrVmxTrueExitCtls));
    m.true_entry = TRY(hw.rdmsr(kMsrVmxTrueEntryCtls));
  }
  const uint64_t procbased = (m.basic & kVmxBasicTrueControls) != 0 ? m.true_procbased : m.procbased;
  if ((allowed1_of(procbased) & proc_based::kActivateSecondaryControls) != 0) {
    m.procbased2 = TRY(hw.rdmsr(kMsrVmxProcbasedCtls2));
    if ((allowed1_of(m.procbased2) & (proc_based2::kEnableEpt | proc_based2::kEnableVpid)) != 0) {
      m.ept_vpid_cap = TRY(hw.rdmsr(kMsrVmxEptVpidCap));
    }
  }
  if ((allowed1_of(procbased) & proc_based::kActivateTertiaryControls) != 0) {
    m.procbased3 = TRY(hw.rdmsr(kMsrVmxProcbasedCtls3));
  }
  return decode_capabilities(m);
}

}  // namespace lantern::vmx
