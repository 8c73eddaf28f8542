#include "vmx/vmx_capabilities.h"

namespace lantern::vmx {
namespace {

constexpr bool bit(uint64_t v, unsigned n) {
  return ((v >> n) & 1) != 0;
}

}  // namespace

Result<VmxCapabilities> decode_capabilities(const VmxCapabilityMsrs& m) {
  VmxCapabilities c;
  c.msrs = m;

  // IA32_VMX_BASIC (SDM Vol. 3D A.1).
  c.vmcs_revision_id = static_cast<uint32_t>(m.basic & 0x7fffffff);       // bits 30:0
  c.vmcs_region_bytes = static_cast<uint32_t>((m.basic >> 32) & 0x1fff);  // bits 44:32
  if (c.vmcs_region_bytes == 0 || c.vmcs_region_bytes > 4096) {
    return make_error(ErrorCode::kMalformed, "IA32_VMX_BASIC reports a VMCS region size outside 1-4096 bytes",
                      c.vmcs_region_bytes);
  }
  c.physical_address_32bit = bit(m.basic, 48);
  c.vmcs_memory_type = static_cast<uint8_t>((m.basic >> 50) & 0xf);  // bits 53:50
  c.ins_outs_info = bit(m.basic, 54);
  c.true_controls = bit(m.basic, 55);
  c.no_error_code_consistency = bit(m.basic, 56);

  // A.2: the TRUE_* MSRs replace 0x481-0x484 when bit 55 is set.
  c.pinbased_ctls = c.true_controls ? m.true_pinbased : m.pinbased;
  c.procbased_ctls = c.true_controls ? m.true_procbased : m.procbased;
  c.exit_ctls = c.true_controls ? m.true_exit : m.exit;
  c.entry_ctls = c.true_controls ? m.true_entry : m.entry;

  const uint32_t pin1 = allowed1_of(c.pinbased_ctls);
  const uint32_t proc1 = allowed1_of(c.procbased_ctls);
  const uint32_t exit1 = allowed1_of(c.exit_ctls);

  c.secondary_controls = (proc1 & proc_based::kActivateSecondaryControls) != 0;
  c.tertiary_controls = (proc1 & proc_based::kActivateTertiaryControls) != 0;
  c.procbased2_ctls = c.secondary_controls ? m.procbased2 : 0;
  c.procbased3_ctls = c.tertiary_controls ? m.procbased3 : 0;
  const uint32_t sec1 = allowed1_of(c.procbased2_ctls);

  c.ept = (sec1 & proc_based2::kEnableEpt) != 0;
  c.vpid = (sec1 & proc_based2::kEnableVpid) != 0;
  // Unrestricted guest requires "enable EPT" (SDM Vol. 3C 26.2.1.1).
  c.unrestricted_guest = c.ept && (sec1 & proc_based2::kUnrestrictedGuest) != 0;
  c.pml = c.ept && (sec1 & proc_based2::kEnablePml) != 0;
  c.ept_violation_ve = c.ept && (sec1 & proc_based2::kEptViolationVe) != 0;
  c.xsaves = (sec1 & proc_based2::kEnableXsavesXrstors) != 0;
  c.tsc_scaling = (sec1 & proc_based2::kUseTscScaling) != 0;

  // IA32_VMX_EPT_VPID_CAP (A.10); meaningful only when EPT or VPID is available.
  const uint64_t cap = (c.ept || c.vpid) ? m.ept_vpid_cap : 0;
  if (c.ept) {
    c.ept_execute_only = bit(cap, 0);
    c.ept_walk_length_4 = bit(cap, 6);
    c.ept_uc = bit(cap, 8);
    c.ept_wb = bit(cap, 14);
    c.ept_2m_pages = bit(cap, 16);
    c.ept_1g_pages = bit(cap, 17);
    c.ept_accessed_dirty = bit(cap, 21);
    c.invept.supported = bit(cap, 20);
    c.invept.single_context = c.invept.supported && bit(cap, 25);
    c.invept.all_context = c.invept.supported && bit(cap, 26);
  }
  if (c.vpid) {
    c.invvpid.supported = bit(cap, 32);
    c.invvpid.individual_address = c.invvpid.supported && bit(cap, 40);
    c.invvpid.single_context = c.invvpid.supported && bit(cap, 41);
    c.invvpid.all_context = c.invvpid.supported && bit(cap, 42);
    c.invvpid.single_context_retaining_globals = c.invvpid.supported && bit(cap, 43);
  }

  c.virtual_nmis = (pin1 & pin_based::kVirtualNmis) != 0;
  // NMI-window exiting needs virtual NMIs (SDM Vol. 3C 26.2.1.1).
  c.nmi_window_exiting = c.virtual_nmis && (proc1 & proc_based::kNmiWindowExiting) != 0;
  c.preemption_timer = (pin1 & pin_based::kActivatePreemptionTimer) != 0;
  c.save_preemption_timer = c.preemption_timer && (exit1 & exit_ctls::kSavePreemptionTimer) != 0;

  // IA32_VMX_MISC (A.6).
  c.preemption_timer_rate = static_cast<uint8_t>(m.misc & 0x1f);  // bits 4:0
  c.activity_hlt = bit(m.misc, 6);
  c.activity_shutdown = bit(m.misc, 7);
  c.activity_wait_for_sipi = bit(m.misc, 8);
  c.cr3_target_count = static_cast<uint16_t>((m.misc >> 16) & 0x1ff);               // bits 24:16
  c.max_msr_list_entries = 512u * (static_cast<uint32_t>((m.misc >> 25) & 7) + 1);  // 27:25
  c.vmwrite_exit_info = bit(m.misc, 29);
  c.zero_length_injection = bit(m.misc, 30);
  return c;
}

}  // namespace lantern::vmx
