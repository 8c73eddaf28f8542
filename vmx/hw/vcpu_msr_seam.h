// The MSR emulation's seam (guest/msr_emulation.h) onto a VmxVcpu: its vlapic, which counts the
// guest's TSC (guest_tsc()), IA32_APIC_BASE, TSC_OFFSET in the VMCS (SDM Vol. 3C 25.3), RDTSCP's
// IA32_TSC_AUX, the platform MSR values, IPIs to the vCPUs of its group, level-triggered EOIs to
// the VM's I/O APIC, and its own MSRs (IA32_EFER, IA32_XSS: vcpu_long_mode.cpp). Kernel-only;
// included by the files that run the emulation (vcpu.cpp, vcpu_vlapic.cpp).
#pragma once

#include "guest/msr_emulation.h"
#include "kernel/arch/x86_64/cpu.h"
#include "vmx/hw/vcpu.h"

namespace lantern::vmx {

struct VmxVcpu::MsrSeam {
  static constexpr bool kVlapicCountsGuestTsc = true;        // set_time(guest_tsc())
  static constexpr bool kReturnsUnknownMsrsToCaller = true;  // run() returns MsrRead/MsrWrite

  VmxVcpu& vcpu;

  guest::VirtualLapic& vlapic() { return vcpu.vlapic_; }
  uint64_t& apic_base() { return vcpu.apic_base_; }
  uint8_t physical_address_bits();  // vcpu_vlapic.cpp
  bool apic_page_can_move_to(uint64_t page);  // vcpu_vlapic.cpp
  uint64_t host_tsc() { return cpu::rdtsc(); }
  bool tsc_offsetting() { return vcpu.tsc_offsetting_; }
  guest::GuestTsc tsc() { return guest::GuestTsc{vcpu.tsc_offset_, vcpu.tsc_adjust_}; }
  Result<void> set_tsc(const guest::GuestTsc& tsc) {
    vcpu.tsc_offset_ = tsc.offset;
    vcpu.tsc_adjust_ = tsc.adjust;
    return vmcs_write(vcpu.hw_, VmcsField64::TSC_OFFSET, tsc.offset);
  }
  bool tsc_aux_offered() { return vcpu.rdtscp_enabled_; }
  uint64_t& tsc_aux() { return vcpu.tsc_aux_; }
  void load_tsc_aux() { vcpu.load_guest_tsc_aux(); }
  uint64_t& misc_enable() { return vcpu.misc_enable_; }
  uint64_t& mtrr_def_type() { return vcpu.mtrr_def_type_; }
  void before_vlapic_write() { vcpu.arbitrate_ = true; }
  void send_ipi(const guest::IpiRequest& ipi) { vcpu.deliver_ipi(ipi); }
  void level_eoi(uint8_t vector) {
    if (vcpu.vm_core_ != nullptr && vcpu.vm_core_->level_eoi_listener != nullptr) {
      vcpu.vm_core_->level_eoi_listener->level_eoi(vector);
    }
  }
  void logical_id_changed() { vcpu.publish_logical_id(); }
  Result<guest::MsrOutcome> backend_msr_read(uint32_t msr) { return vcpu.backend_msr_read(msr); }
  Result<guest::MsrOutcome> backend_msr_write(uint32_t msr, uint64_t value) {
    return vcpu.backend_msr_write(msr, value);
  }
};

}  // namespace lantern::vmx
