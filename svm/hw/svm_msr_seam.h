// The MSR emulation's seam (guest/msr_emulation.h) onto an SvmVcpu: its vlapic, which counts the
// host's TSC (a guest's IA32_TSC_DEADLINE is moved by TSC_OFFSET), IA32_APIC_BASE, TSC_OFFSET in
// the VMCB (APM Vol. 2 15.30.5), RDTSCP's TSC_AUX, the platform MSR values, IPIs through the
// vCPU's IPI sink, level-triggered EOIs to the VM's I/O APIC, and its own MSRs (EFER, PAT, the
// AMD ones: svm_guest_vcpu_state.cpp). Kernel-only; included by the files that run the emulation.
#pragma once

#include "guest/msr_emulation.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/core/log.h"
#include "svm/hw/svm_guest_vcpu.h"

namespace lantern::svm {

struct SvmVcpu::MsrSeam {
  static constexpr bool kVlapicCountsGuestTsc = false;        // set_time(host TSC)
  static constexpr bool kReturnsUnknownMsrsToCaller = false;  // run() handles every MSR exit

  SvmVcpu& vcpu;

  guest::VirtualLapic& vlapic() { return vcpu.vlapic_; }
  uint64_t& apic_base() { return vcpu.apic_base_; }
  // CPUID.80000008H:EAX[7:0] = physical-address width (APM Vol. 3, CPUID Fn8000_0008).
  uint8_t physical_address_bits() { return static_cast<uint8_t>(cpu::cpuid(0x80000008).eax & 0xff); }
  bool apic_page_can_move_to(uint64_t page);  // svm_guest_vcpu_state.cpp
  uint64_t host_tsc() { return cpu::rdtsc(); }
  bool tsc_offsetting() { return true; }
  guest::GuestTsc tsc() { return guest::GuestTsc{vcpu.vmcb_->control.tsc_offset, vcpu.tsc_adjust_}; }
  Result<void> set_tsc(const guest::GuestTsc& tsc) {
    vcpu.vmcb_->control.tsc_offset = tsc.offset;
    vcpu.tsc_adjust_ = tsc.adjust;
    return ok();
  }
  bool tsc_aux_offered();  // svm_guest_vcpu_state.cpp
  uint64_t& tsc_aux() { return vcpu.tsc_aux_; }
  void load_tsc_aux();  // svm_guest_vcpu_state.cpp
  uint64_t& misc_enable() { return vcpu.misc_enable_; }
  uint64_t& mtrr_def_type() { return vcpu.mtrr_def_type_; }
  void before_vlapic_write() {}  // the arbiter runs before every entry
  void send_ipi(const guest::IpiRequest& ipi) {
    if (vcpu.ipi_sink_ != nullptr) {
      vcpu.ipi_sink_(vcpu.ipi_context_, ipi, vcpu.vlapic_.x2apic_mode());
    } else {
      LOG_DEBUG("svm: vm%u vcpu%u: IPI dropped (no other vCPU to reach)", vcpu.vm_.vm_id, vcpu.vcpu_id_);
    }
  }
  void level_eoi(uint8_t vector) {
    if (vcpu.vm_.level_eoi_listener != nullptr) vcpu.vm_.level_eoi_listener->level_eoi(vector);
  }
  void logical_id_changed() { vcpu.publish_logical_id(); }
  Result<guest::MsrOutcome> backend_msr_read(uint32_t msr) { return vcpu.backend_msr_read(msr); }
  Result<guest::MsrOutcome> backend_msr_write(uint32_t msr, uint64_t value) {
    return vcpu.backend_msr_write(msr, value);
  }
};

}  // namespace lantern::svm
