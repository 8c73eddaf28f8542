// VmxVcpu: starting from a loader's register state (guest/loader/entry_state.h) and starting
// over (a VM reset). Kernel-only.
#include <atomic>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "guest/platform_msrs.h"
#include "kernel/core/log.h"
#include "vmx/cr_access.h"
#include "vmx/hw/vcpu.h"
#include "vmx/hw/vmx_operation.h"
#include "vmx/long_mode.h"
#include "vmx/vmx_controls.h"
#include "guest/xstate.h"

namespace lantern::vmx {
namespace {

using F16 = VmcsField16;
using F32 = VmcsField32;
using FN = VmcsFieldNatural;

// Segment access rights as in the VMCS (SDM Vol. 3C 24.4.1, Table 24-2): the descriptor's
// attribute bits with 11:8 moved to 15:12, bit 16 unusable.
constexpr uint32_t kArUnusable = 1u << 16;

uint32_t access_rights(const guest::SegmentState& s) {
  if (!s.usable) return kArUnusable;
  const uint32_t packed = guest::packed_descriptor_attributes(s);
  return (packed & 0xffu) | ((packed & 0xf00u) << 4);
}

bool on_bound_core(int32_t bound) { return bound >= 0 && static_cast<uint32_t>(bound) == this_cpu().index; }

}  // namespace

Result<void> VmxVcpu::apply_entry_state(const guest::EntryState& s) {
  if (!on_bound_core(bound_cpu_)) return make_error(ErrorCode::kInvalidState, "vCPU is not bound to this core");
  cpu::InterruptsOff irq_off;
  // CR0/CR4 must keep the bits VMX operation fixes (SDM Vol. 3D A.7, A.8), except PE and PG under
  // unrestricted guest (SDM Vol. 3C 26.3.1.1). The guest reads its own view through the read
  // shadows write_controls() set.
  const uint64_t cr0_fixed0 = cpu::rdmsr(kMsrVmxCr0Fixed0);
  const uint64_t cr0_fixed1 = cpu::rdmsr(kMsrVmxCr0Fixed1);
  const uint64_t cr4_fixed0 = cpu::rdmsr(kMsrVmxCr4Fixed0);
  const uint64_t cr4_fixed1 = cpu::rdmsr(kMsrVmxCr4Fixed1);
  const uint64_t pe_pg = guest::kCr0Pe | guest::kCr0Pg;
  const uint64_t cr0 = ((s.cr0 | (cr0_fixed0 & ~pe_pg)) & (cr0_fixed1 | pe_pg)) & ~kCr0EmulatedCaching;
  const uint64_t cr4 = (s.cr4 | cr4_fixed0) & cr4_fixed1;
  TRY(vmcs_write(hw_, FN::GUEST_CR0, cr0));
  TRY(vmcs_write(hw_, FN::GUEST_CR3, s.cr3));
  TRY(vmcs_write(hw_, FN::GUEST_CR4, cr4));
  TRY(vmcs_write(hw_, FN::CR0_READ_SHADOW, s.cr0));
  TRY(vmcs_write(hw_, FN::CR4_READ_SHADOW, s.cr4));
  TRY(vmcs_write(hw_, FN::GUEST_RIP, s.rip));
  TRY(vmcs_write(hw_, FN::GUEST_RSP, s.rsp));
  TRY(vmcs_write(hw_, FN::GUEST_RFLAGS, s.rflags | guest::kRflagsReserved1));

  struct SegmentFields {
    F16 selector;
    FN base;
    F32 limit;
    F32 ar;
    const guest::SegmentState* state;
  };
  const SegmentFields segments[] = {
      {F16::GUEST_CS_SELECTOR, FN::GUEST_CS_BASE, F32::GUEST_CS_LIMIT, F32::GUEST_CS_AR_BYTES, &s.cs},
      {F16::GUEST_DS_SELECTOR, FN::GUEST_DS_BASE, F32::GUEST_DS_LIMIT, F32::GUEST_DS_AR_BYTES, &s.ds},
      {F16::GUEST_ES_SELECTOR, FN::GUEST_ES_BASE, F32::GUEST_ES_LIMIT, F32::GUEST_ES_AR_BYTES, &s.es},
      {F16::GUEST_FS_SELECTOR, FN::GUEST_FS_BASE, F32::GUEST_FS_LIMIT, F32::GUEST_FS_AR_BYTES, &s.fs},
      {F16::GUEST_GS_SELECTOR, FN::GUEST_GS_BASE, F32::GUEST_GS_LIMIT, F32::GUEST_GS_AR_BYTES, &s.gs},
      {F16::GUEST_SS_SELECTOR, FN::GUEST_SS_BASE, F32::GUEST_SS_LIMIT, F32::GUEST_SS_AR_BYTES, &s.ss},
      {F16::GUEST_TR_SELECTOR, FN::GUEST_TR_BASE, F32::GUEST_TR_LIMIT, F32::GUEST_TR_AR_BYTES, &s.tr},
      {F16::GUEST_LDTR_SELECTOR, FN::GUEST_LDTR_BASE, F32::GUEST_LDTR_LIMIT, F32::GUEST_LDTR_AR_BYTES, &s.ldtr},
  };
  for (const SegmentFields& f : segments) {
    TRY(vmcs_write(hw_, f.selector, f.state->selector));
    TRY(vmcs_write(hw_, f.base, f.state->base));
    TRY(vmcs_write(hw_, f.limit, f.state->limit));
    TRY(vmcs_write(hw_, f.ar, access_rights(*f.state)));
  }
  TRY(vmcs_write(hw_, FN::GUEST_GDTR_BASE, s.gdtr.base));
  TRY(vmcs_write(hw_, F32::GUEST_GDTR_LIMIT, s.gdtr.limit));
  TRY(vmcs_write(hw_, FN::GUEST_IDTR_BASE, s.idtr.base));
  TRY(vmcs_write(hw_, F32::GUEST_IDTR_LIMIT, s.idtr.limit));
  const uint32_t entry_controls = TRY(vmcs_read(hw_, F32::VM_ENTRY_CONTROLS));
  if ((entry_controls & entry_ctls::kLoadIa32Efer) != 0) {
    TRY(vmcs_write(hw_, VmcsField64::GUEST_IA32_EFER, s.efer));
  } else if (s.efer != 0) {
    return make_error(ErrorCode::kUnsupported, "a start in long mode needs the \"load IA32_EFER\" entry control");
  }
  // A loader may start the vCPU in 64-bit mode (a Linux bzImage): "IA-32e mode guest" follows
  // EFER.LMA (SDM Vol. 3C 24.8.1, checked at entry 26.2.4).
  const uint32_t following = entry_controls_following_efer(entry_controls, s.efer);
  if (following != entry_controls) TRY(vmcs_write(hw_, F32::VM_ENTRY_CONTROLS, following));

  regs_ = guest::GeneralRegisters{};
  regs_.rax = s.rax;
  regs_.rbx = s.rbx;
  regs_.rcx = s.rcx;
  regs_.rdx = s.rdx;
  regs_.rsi = s.rsi;
  regs_.rdi = s.rdi;
  regs_.rbp = s.rbp;
  return ok();
}

Result<void> VmxVcpu::restart(uint64_t eptp, const guest::EntryState& state) {
  if (!setup_done_) return make_error(ErrorCode::kInvalidState, "vCPU is not set up");
  if (!on_bound_core(bound_cpu_)) return make_error(ErrorCode::kInvalidState, "vCPU is not bound to this core");
  cpu::InterruptsOff irq_off;
  ensure_host_xstate();
  // VMCLEAR makes the launch state "clear" (the next entry is a VMLAUNCH); VMPTRLD makes the
  // VMCS current again with its contents kept (SDM Vol. 3C 24.11.3).
  TRY(hw::vmclear(vmcs_phys_));
  launched_ = false;
  TRY(hw::vmptrld(vmcs_phys_));
  fast_.host_rsp = 0;

  stop_message_ = nullptr;
  stop_exit_reason_ = 0;
  pending_completion_ = PendingCompletion::kNone;
  {
    IrqSpinlockGuard guard(events_lock_);
    events_.clear();
  }
  arbiter_.reset();
  reinjection_.reset();
  attention_.store(0, std::memory_order_relaxed);
  posted_.clear();
  wait_for_sipi_ = false;
  requested_preemption_timer_ = 0;
  guest_cr2_ = 0;
  guest_xcr0_ = guest::kXcr0Reset;
  guest_xss_ = 0;
  misc_enable_ = guest::kMiscEnableReset;
  mtrr_def_type_ = guest::kMtrrDefTypeReset;
  tsc_offset_ = 0;
  tsc_adjust_ = 0;
  tsc_aux_ = 0;
  (void)guest::init_guest_xsave_area(paging::phys_to_ptr<uint8_t>(guest_xstate_phys_), paging::kPageSize);
  init_vlapic();
  arbitrate_ = true;

  TRY(write_controls(eptp));
  eptp_ = eptp;
  TRY(write_guest_state(GuestEntry{}));
  TRY(apply_entry_state(state));
  // Translations cached for an earlier EPT whose tables were freed may carry the same EPTP
  // (SDM Vol. 3C 28.3.1, 28.3.3.4): drop every EPT-derived translation.
  if (auto r = hw::invept(hw::InveptType::kAllContext, 0); !r) {
    LOG_WARN("vmx: vm%u vcpu%u: INVEPT (all contexts) failed: %s", vm_id_, vcpu_id_, r.error().message);
  }
  publish_state();
  return ok();
}

void VmxVcpu::stop_outside_run(const char* reason) {
  if (!on_bound_core(bound_cpu_)) return;
  stop_message_ = reason;
  stop_exit_reason_ = 0;
  publish_state();
}

}  // namespace lantern::vmx
