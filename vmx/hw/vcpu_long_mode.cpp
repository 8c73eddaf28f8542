// VmxVcpu, continued: what the vCPU owns beyond the exit table in vcpu.cpp — the guest's
// IA-32e mode (IA32_EFER and the CR0.PG transition, vmx/long_mode.h), its IA32_XSS, and the
// I/O and MSR bitmaps (vmx/intercept_bitmaps.h). Kernel-only.
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/log.h"
#include "vmx/cr_access.h"
#include "vmx/hw/vcpu.h"
#include "guest/hw/xstate_hw.h"
#include "vmx/long_mode.h"
#include "vmx/vmx_controls.h"
#include "guest/xstate.h"

namespace lantern::vmx {
namespace {

using F32 = VmcsField32;
using F64 = VmcsField64;
using FN = VmcsFieldNatural;

// CPUID.80000001H:EDX (SDM Vol. 2A CPUID, Table 3-8): bit 11 SYSCALL/SYSRET, bit 20 execute
// disable, bit 29 Intel 64 architecture (long mode).
constexpr uint32_t kCpuidExtendedFeatures = 0x80000001;
constexpr uint32_t kCpuidExt1EdxSyscall = 1u << 11;
constexpr uint32_t kCpuidExt1EdxNx = 1u << 20;
constexpr uint32_t kCpuidExt1EdxLm = 1u << 29;
constexpr uint8_t kVectorGeneralProtection = 13;

// The IA32_EFER bits a guest may set: those the CPU has.
uint64_t writable_efer_bits() {
  if (cpu::cpuid(0x80000000).eax < kCpuidExtendedFeatures) return 0;
  const uint32_t edx = cpu::cpuid(kCpuidExtendedFeatures).edx;
  uint64_t bits = 0;
  if ((edx & kCpuidExt1EdxSyscall) != 0) bits |= kEferSce;
  if ((edx & kCpuidExt1EdxNx) != 0) bits |= kEferNxe;
  if ((edx & kCpuidExt1EdxLm) != 0) bits |= kEferLme;
  return bits;
}

}  // namespace

// The guest's EFER lives in the VMCS and is loaded by VM entry ("load IA32_EFER", SDM Vol. 3C
// 24.8.1, 26.3.2.1); without that control the guest cannot own an EFER: #GP. IA32_XSS exists
// only when the CPU has XSAVES (SDM Vol. 4 2.1); the guest's is switched at entry and exit.
Result<guest::MsrOutcome> VmxVcpu::backend_msr_read(uint32_t msr) {
  if (msr == kMsrIa32Efer) {
    const uint32_t entry = TRY(vmcs_read(hw_, F32::VM_ENTRY_CONTROLS));
    if ((entry & entry_ctls::kLoadIa32Efer) == 0) return guest::msr_gp("IA32_EFER without the load-IA32_EFER entry control");
    return guest::msr_done(TRY(vmcs_read(hw_, F64::GUEST_IA32_EFER)));
  }
  if (msr == guest::kMsrIa32Xss) {
    if (!guest::host_xstate().xsaves) return guest::msr_gp("no IA32_XSS on this CPU");
    return guest::msr_done(guest_xss_);
  }
  return guest::MsrOutcome{};
}

Result<guest::MsrOutcome> VmxVcpu::backend_msr_write(uint32_t msr, uint64_t value) {
  if (msr == kMsrIa32Efer) {
    const uint32_t entry = TRY(vmcs_read(hw_, F32::VM_ENTRY_CONTROLS));
    if ((entry & entry_ctls::kLoadIa32Efer) == 0) return guest::msr_gp("IA32_EFER without the load-IA32_EFER entry control");
    const uint64_t efer = TRY(vmcs_read(hw_, F64::GUEST_IA32_EFER));
    const uint64_t cr0 = TRY(vmcs_read(hw_, FN::GUEST_CR0));
    const EferWriteResult r = evaluate_efer_write(efer, value, cr0, writable_efer_bits());
    if (r.gp) return guest::msr_gp(r.reason);
    TRY(vmcs_write(hw_, F64::GUEST_IA32_EFER, r.efer));
    TRY(vmcs_write(hw_, F32::VM_ENTRY_CONTROLS, entry_controls_following_efer(entry, r.efer)));
    return guest::msr_done();
  }
  if (msr == guest::kMsrIa32Xss) {
    const guest::HostXstate& x = guest::host_xstate();
    if (!x.xsaves) return guest::msr_gp("no IA32_XSS on this CPU");
    if (!guest::xss_write_allowed(value, x.guest_xss)) return guest::msr_gp("IA32_XSS: a component guests may not enable");
    guest_xss_ = value;  // loaded by switch_to_guest_xstate() at the next entry
    return guest::msr_done();
  }
  return guest::MsrOutcome{};
}

void VmxVcpu::load_guest_tsc_aux() {
  if (rdtscp_enabled_) cpu::wrmsr(guest::kMsrIa32TscAux, tsc_aux_);
}

Result<bool> VmxVcpu::apply_paging_transition(uint64_t old_cr0, uint64_t new_cr0) {
  if (((old_cr0 ^ new_cr0) & kCr0PgBit) == 0) return true;
  const uint32_t entry = TRY(vmcs_read(hw_, F32::VM_ENTRY_CONTROLS));
  if ((entry & entry_ctls::kLoadIa32Efer) == 0) return true;  // EFER is never the guest's then (LME = 0)
  const uint64_t efer = TRY(vmcs_read(hw_, F64::GUEST_IA32_EFER));
  const uint64_t cr4 = TRY(vmcs_read(hw_, FN::GUEST_CR4));
  const uint32_t cs_ar = TRY(vmcs_read(hw_, F32::GUEST_CS_AR_BYTES));
  const PagingTransition t =
      evaluate_paging_transition(old_cr0, new_cr0, cr4, efer, (cs_ar & kSegmentArLong) != 0);
  if (t.gp) {
    LOG_DEBUG("vmx: vm%u vcpu%u: MOV to CR0 0x%llx -> #GP: %s", vm_id_, vcpu_id_,
              static_cast<unsigned long long>(new_cr0), t.reason);
    TRY(inject_exception_now(kVectorGeneralProtection, 0));
    return false;
  }
  if (t.efer != efer) {
    TRY(vmcs_write(hw_, F64::GUEST_IA32_EFER, t.efer));
    LOG_DEBUG("vmx: vm%u vcpu%u: IA-32e mode %s", vm_id_, vcpu_id_, t.ia32e_mode ? "activated" : "left");
  }
  // "IA-32e mode guest" follows EFER.LMA (SDM Vol. 3C 24.8.1; checked at entry, 26.2.4).
  const uint32_t new_entry = entry_controls_following_efer(entry, t.efer);
  if (new_entry != entry) TRY(vmcs_write(hw_, F32::VM_ENTRY_CONTROLS, new_entry));
  return true;
}

Result<bool> VmxVcpu::load_pae_pdptes(unsigned cr, uint64_t old_value, uint64_t new_value, uint64_t cr0_after,
                                      uint64_t cr4_after, uint64_t cr3_after) {
  const uint32_t entry = TRY(vmcs_read(hw_, F32::VM_ENTRY_CONTROLS));
  const uint64_t efer =
      (entry & entry_ctls::kLoadIa32Efer) != 0 ? TRY(vmcs_read(hw_, F64::GUEST_IA32_EFER)) : 0;
  if (!mov_to_cr_loads_pdptes(cr, old_value, new_value, cr0_after, cr4_after, efer)) return true;
  // The four PDPTEs: 32 bytes at CR3[31:5] (SDM Vol. 3A 4.4.1, Table 4-7).
  uint64_t pdptes[4] = {};
  const size_t read = TRY(read_guest_physical(cr3_after & kPae3PdptMask, reinterpret_cast<uint8_t*>(pdptes),
                                              sizeof(pdptes)));
  if (read != sizeof(pdptes)) {
    return make_error(ErrorCode::kInvalidArgument, "PAE PDPTEs outside guest memory", cr3_after);
  }
  uint8_t max_phys_bits = 36;  // CPUID.80000008H:EAX[7:0] (SDM Vol. 2A CPUID) when the leaf exists
  if (cpu::cpuid(0x80000000).eax >= 0x80000008) {
    max_phys_bits = static_cast<uint8_t>(cpu::cpuid(0x80000008).eax & 0xff);
  }
  for (uint64_t pdpte : pdptes) {
    if (pae_pdpte_reserved_bits_set(pdpte, max_phys_bits)) {
      LOG_DEBUG("vmx: vm%u vcpu%u: MOV to CR%u loads PDPTE 0x%llx with reserved bits -> #GP", vm_id_, vcpu_id_, cr,
                static_cast<unsigned long long>(pdpte));
      TRY(inject_exception_now(kVectorGeneralProtection, 0));
      return false;
    }
  }
  TRY(vmcs_write(hw_, F64::GUEST_PDPTR0, pdptes[0]));
  TRY(vmcs_write(hw_, F64::GUEST_PDPTR1, pdptes[1]));
  TRY(vmcs_write(hw_, F64::GUEST_PDPTR2, pdptes[2]));
  TRY(vmcs_write(hw_, F64::GUEST_PDPTR3, pdptes[3]));
  return true;
}

Result<uint64_t> VmxVcpu::guest_cr_operand_mask() {
  const uint32_t entry = TRY(vmcs_read(hw_, F32::VM_ENTRY_CONTROLS));
  const uint32_t cs_ar = TRY(vmcs_read(hw_, F32::GUEST_CS_AR_BYTES));
  return cr_operand_mask((entry & kEntryIa32eModeGuest) != 0, (cs_ar & kSegmentArLong) != 0);
}

Result<GuestLongModeState> VmxVcpu::long_mode_state() {
  if (bound_cpu_ < 0 || static_cast<uint32_t>(bound_cpu_) != this_cpu().index) {
    return make_error(ErrorCode::kInvalidState, "vCPU is not bound to this core");
  }
  cpu::InterruptsOff irq_off;
  GuestLongModeState s;
  const uint32_t entry = TRY(vmcs_read(hw_, F32::VM_ENTRY_CONTROLS));
  if ((entry & entry_ctls::kLoadIa32Efer) != 0) s.efer = TRY(vmcs_read(hw_, F64::GUEST_IA32_EFER));
  s.ia32e_mode = (entry & kEntryIa32eModeGuest) != 0;
  s.cs_long = (TRY(vmcs_read(hw_, F32::GUEST_CS_AR_BYTES)) & kSegmentArLong) != 0;
  s.cr0 = TRY(vmcs_read(hw_, FN::GUEST_CR0));
  s.cr4 = TRY(vmcs_read(hw_, FN::GUEST_CR4));
  return s;
}

// ---- I/O and MSR bitmaps --------------------------------------------------------------------

Result<void> VmxVcpu::set_io_intercept(IoPortRange range, bool on) {
  if (bound_cpu_ >= 0 && static_cast<uint32_t>(bound_cpu_) != this_cpu().index) {
    return make_error(ErrorCode::kBusy, "vCPU is bound to another core", static_cast<uint64_t>(bound_cpu_));
  }
  return vmx::set_io_intercept(IoBitmaps{paging::phys_to_ptr<uint8_t>(io_bitmap_a_phys_),
                                         paging::phys_to_ptr<uint8_t>(io_bitmap_b_phys_)},
                               range, on);
}

Result<void> VmxVcpu::set_msr_intercept(MsrRange range, MsrAccess access, bool on) {
  if (bound_cpu_ >= 0 && static_cast<uint32_t>(bound_cpu_) != this_cpu().index) {
    return make_error(ErrorCode::kBusy, "vCPU is bound to another core", static_cast<uint64_t>(bound_cpu_));
  }
  // IA32_EFER and IA32_XSS are the vCPU's own (long mode, xstate switching): never passed through.
  if (!on) {
    for (uint32_t owned : {kMsrIa32Efer, guest::kMsrIa32Xss}) {
      if (owned >= range.first && owned - range.first < range.count) {
        return make_error(ErrorCode::kInvalidArgument, "IA32_EFER/IA32_XSS are emulated by the vCPU", owned);
      }
    }
  }
  return vmx::set_msr_intercept(paging::phys_to_ptr<uint8_t>(msr_bitmap_phys_), range, access, on);
}

bool VmxVcpu::io_intercepted(uint32_t port, uint32_t width) const {
  return io_access_exits(IoBitmaps{paging::phys_to_ptr<uint8_t>(io_bitmap_a_phys_),
                                   paging::phys_to_ptr<uint8_t>(io_bitmap_b_phys_)},
                         port, width);
}

bool VmxVcpu::msr_intercepted(uint32_t msr, bool write) const {
  return msr_access_exits(paging::phys_to_ptr<const uint8_t>(msr_bitmap_phys_), msr, write);
}

}  // namespace lantern::vmx
