#include "vmx/hw/vcpu.h"

#include <atomic>
#include <new>

#include "guest/cpuid_exit.h"
#include "guest/hw/cpuid_hw.h"
#include "guest/hw/locked_event_queue.h"
#include "guest/nested_paging.h"
#include "guest/platform_msrs.h"
#include "guest/run_loop.h"
#include "vmx/hw/vcpu_msr_seam.h"
#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/descriptors.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/log.h"
#include "kernel/core/time.h"
#include "kernel/core/memory.h"
#include "kernel/lib/string.h"
#include "vmx/cr_access.h"
#include "vmx/exit_qualification.h"
#include "vmx/hw/vmx_operation.h"
#include "guest/hw/xstate_hw.h"
#include "vmx/long_mode.h"
#include "vmx/vmx_controls.h"
#include "guest/xstate.h"

extern "C" char vmx_exit_entry[];
extern "C" void interrupt_dispatch(lantern::interrupts::Frame* frame);

namespace lantern::vmx {
namespace {

using F16 = VmcsField16;
using F32 = VmcsField32;
using F64 = VmcsField64;
using FN = VmcsFieldNatural;

std::atomic<uint32_t> g_vcpus_started{0};

// CR0 bits (SDM Vol. 3A 2.5).
constexpr uint64_t kCr0Pe = 1u << 0;
constexpr uint64_t kCr0Et = 1u << 4;
constexpr uint64_t kCr0Pg = 1u << 31;
// RFLAGS bit 1 is reserved and always 1 (SDM Vol. 1 3.4.3).
constexpr uint64_t kRflagsReserved1 = 1u << 1;
// DR7 after reset: 0x400 (SDM Vol. 3B 18.2.4, bit 10 reserved 1).
constexpr uint64_t kDr7Reset = 0x400;
// VMCS link pointer: all ones when VMCS shadowing is not used (SDM Vol. 3C 24.4.2, 26.3.1.5).
constexpr uint64_t kVmcsLinkPointerNone = ~uint64_t{0};

// Segment access rights as in the VMCS (SDM Vol. 3C 24.4.1, Table 24-2): bits 3:0 type,
// bit 4 S, bits 6:5 DPL, bit 7 P, bit 12 AVL, bit 13 L, bit 14 D/B, bit 15 G, bit 16 unusable.
constexpr uint32_t kArCode16 = 0x9b;     // P, S, type 11: execute/read, accessed
constexpr uint32_t kArData16 = 0x93;     // P, S, type 3: read/write, accessed
constexpr uint32_t kArTssBusy32 = 0x8b;  // P, type 11: busy 32-bit TSS (26.3.1.2: TR type 3 or 11)
constexpr uint32_t kArUnusable = 1u << 16;
constexpr uint32_t kRealModeLimit = 0xffff;
constexpr uint32_t kRealModeIdtLimit = 0x3ff;  // 256 four-byte IVT entries (SDM Vol. 3A 21.1.4)

// CR4.OSXSAVE (SDM Vol. 3A 2.5).
constexpr uint64_t kCr4Osxsave = 1u << 18;

// Guest interruptibility: blocking by STI (bit 0) and by MOV SS (bit 1) end once the next
// instruction completes, so skipping an instruction clears them (SDM Vol. 3C 24.4.2, Table 24-3).
constexpr uint32_t kInterruptibilityShadow = guest::kInterruptibilityStiBlocking | guest::kInterruptibilityMovSsBlocking;

// #UD for VMX instructions executed by the guest (SDM Vol. 3A Table 6-1, vector 6).
constexpr uint8_t kVectorInvalidOpcode = 6;
constexpr uint8_t kVectorGeneralProtection = 13;
constexpr uint8_t kVectorNmi = 2;
// Guest activity states (SDM Vol. 3C 24.4.2): 0 active, 1 HLT.
constexpr uint32_t kActivityActive = 0;
constexpr uint32_t kActivityHlt = 1;

// Exits the host's own events cause, not the guest's execution: a host interrupt
// (external-interrupt exiting) or a host NMI (NMI exiting; the exception bitmap is 0, so no guest
// exception exits as EXCEPTION_NMI). SDM Vol. 3C 24.6.1, 25.2.
constexpr bool exit_caused_by_host(uint32_t raw_reason) {
  const ExitReasonField f = ExitReasonField::from_raw(raw_reason);
  return !f.entry_failure && (f.basic == static_cast<uint16_t>(ExitReason::EXTERNAL_INTERRUPT) ||
                              f.basic == static_cast<uint16_t>(ExitReason::EXCEPTION_NMI));
}

Result<uint64_t> alloc_page(uint8_t fill) {
  const uint64_t phys = TRY(memory::alloc_frame());
  lib::mem_set(paging::phys_to_ptr<void>(phys), fill, paging::kPageSize);
  return phys;
}

void free_page(uint64_t phys) {
  if (phys != 0) (void)memory::free_frame(phys);
}

// The entry stub (vmx/hw/vmx_entry.S): enters the guest and returns at its next exit with 0, or
// with RFLAGS when VMLAUNCH/VMRESUME failed. It saves only RBP and RBX, so every other general
// register is clobbered here: run() keeps its loop's values in RBX and its frame, instead of the
// stub pushing and popping all the callee-saved registers at every exit. RBX stays saved so that
// `this` can live in a register across the entry.
[[gnu::always_inline]] inline uint64_t vmx_enter(guest::GeneralRegisters* regs, uint64_t launched, VmxFastPath* fast) {
  uint64_t flags;
  asm volatile("call vmx_enter"
               : "=a"(flags), "+D"(regs), "+S"(launched), "+d"(fast)
               :
               : "rcx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "cc", "memory");
  return flags;
}

uint16_t read_fs_selector() {
  uint16_t s;
  asm volatile("movw %%fs, %0" : "=r"(s));
  return s;
}
uint16_t read_gs_selector() {
  uint16_t s;
  asm volatile("movw %%gs, %0" : "=r"(s));
  return s;
}
uint64_t read_gdtr_base() {
  DescriptorPointer p{};
  asm volatile("sgdt %0" : "=m"(p));
  return p.base;
}
uint64_t read_idtr_base() {
  DescriptorPointer p{};
  asm volatile("sidt %0" : "=m"(p));
  return p.base;
}

// SYSENTER MSRs (SDM Vol. 4 Table 2-2) and the fixed-bit MSRs (SDM Vol. 3D A.7, A.8).
constexpr uint32_t kMsrSysenterCs = 0x174;
constexpr uint32_t kMsrSysenterEsp = 0x175;
constexpr uint32_t kMsrSysenterEip = 0x176;
// IA32_PAT (SDM Vol. 4 Table 2-2) and its power-up value: WB, WT, UC-, UC twice (Vol. 3A 11.12.4).
constexpr uint32_t kMsrIa32Pat = 0x277;
constexpr uint64_t kPatPowerUp = 0x0007040600070406ull;

}  // namespace

uint32_t vcpus_started() {
  return g_vcpus_started.load();
}

// ---- Life cycle ------------------------------------------------------------------------------

Result<VmxVcpu*> VmxVcpu::create(uint32_t vm_id, uint32_t vcpu_id) {
  const VmxCapabilities* caps = capabilities();
  if (caps == nullptr || !this_cpu_in_vmx_operation()) {
    return make_error(ErrorCode::kUnsupported, "this core is not in VMX operation");
  }
  void* mem = kmalloc(sizeof(VmxVcpu), 64);
  if (mem == nullptr) return make_error(ErrorCode::kOutOfMemory, "no memory for a vCPU");
  auto* vcpu = new (mem) VmxVcpu(vm_id, vcpu_id);

  auto fail = [vcpu](const Error& e) -> Result<VmxVcpu*> {
    destroy(vcpu);
    return e;
  };
  // VMCS region: revision identifier in bits 30:0 of the first dword (SDM Vol. 3C 24.2).
  auto vmcs = alloc_page(0);
  if (!vmcs) return fail(vmcs.error());
  vcpu->vmcs_phys_ = *vmcs;
  *paging::phys_to_ptr<uint32_t>(vcpu->vmcs_phys_) = caps->vmcs_revision_id & 0x7fffffff;
  // I/O bitmaps A (ports 0-0x7fff) and B (0x8000-0xffff) and the MSR bitmap (read low, read high,
  // write low, write high: 1 KiB each), a set bit means "exit" (SDM Vol. 3C 24.6.4, 24.6.9).
  // Lantern's guests get intercept-everything by default.
  auto io_a = alloc_page(0xff);
  if (!io_a) return fail(io_a.error());
  vcpu->io_bitmap_a_phys_ = *io_a;
  auto io_b = alloc_page(0xff);
  if (!io_b) return fail(io_b.error());
  vcpu->io_bitmap_b_phys_ = *io_b;
  auto msr = alloc_page(0xff);
  if (!msr) return fail(msr.error());
  vcpu->msr_bitmap_phys_ = *msr;
  // Extended state: the guest's area starts in the init state (FCW/MXCSR at reset values);
  // the host's is filled by XSAVE/FXSAVE at every entry (SDM Vol. 1 13.7, 10.5).
  auto guest_xstate = alloc_page(0);
  if (!guest_xstate) return fail(guest_xstate.error());
  vcpu->guest_xstate_phys_ = *guest_xstate;
  (void)guest::init_guest_xsave_area(paging::phys_to_ptr<uint8_t>(vcpu->guest_xstate_phys_), paging::kPageSize);
  auto host_xstate_area = alloc_page(0);
  if (!host_xstate_area) return fail(host_xstate_area.error());
  vcpu->host_xstate_phys_ = *host_xstate_area;
  vcpu->guest_xcr0_ = guest::kXcr0Reset;
  vcpu->init_vlapic();
  // VMCLEAR initialises the launch state to "clear" (SDM Vol. 3C 24.11.3).
  if (auto r = hw::vmclear(vcpu->vmcs_phys_); !r) return fail(r.error());
  return vcpu;
}

void VmxVcpu::destroy(VmxVcpu* vcpu) {
  if (vcpu == nullptr) return;
  if (vcpu->bound_cpu_ >= 0 && static_cast<uint32_t>(vcpu->bound_cpu_) == this_cpu().index) {
    (void)vcpu->unbind_from_current_processor();
  }
  vcpu->leave_group();
  free_page(vcpu->vmcs_phys_);
  free_page(vcpu->io_bitmap_a_phys_);
  free_page(vcpu->io_bitmap_b_phys_);
  free_page(vcpu->msr_bitmap_phys_);
  free_page(vcpu->guest_xstate_phys_);
  free_page(vcpu->host_xstate_phys_);
  vcpu->~VmxVcpu();
  kfree(vcpu);
}

Result<void> VmxVcpu::setup(uint64_t eptp, const GuestEntry& entry) {
  if (setup_done_) return make_error(ErrorCode::kInvalidState, "vCPU is already set up");
  const uint32_t me = this_cpu().index;
  cpu::InterruptsOff irq_off;
  bool temporary = false;
  if (bound_cpu_ >= 0 && static_cast<uint32_t>(bound_cpu_) != me) {
    return make_error(ErrorCode::kBusy, "vCPU is bound to another core", static_cast<uint64_t>(bound_cpu_));
  }
  if (bound_cpu_ < 0) {
    TRY(hw::vmptrld(vmcs_phys_));
    temporary = true;
  }
  Result<void> r = write_controls(eptp);
  if (r) r = write_guest_state(entry);
  if (temporary) {
    auto cleared = hw::vmclear(vmcs_phys_);
    if (r && !cleared) r = cleared;
  }
  if (!r) return r;
  eptp_ = eptp;
  setup_done_ = true;
  g_vcpus_started.fetch_add(1);
  return ok();
}

Result<void> VmxVcpu::bind_to_current_processor() {
  const uint32_t me = this_cpu().index;
  if (bound_cpu_ >= 0) {
    if (static_cast<uint32_t>(bound_cpu_) == me) return ok();
    return make_error(ErrorCode::kBusy, "vCPU is bound to another core", static_cast<uint64_t>(bound_cpu_));
  }
  if (!this_cpu_in_vmx_operation())
    return make_error(ErrorCode::kUnsupported, "this core is not in VMX operation");
  cpu::InterruptsOff irq_off;
  TRY(hw::vmptrld(vmcs_phys_));
  fast_.host_rsp = 0;  // vmx_enter writes HOST_RSP at the first entry on this core
  if (auto r = write_host_state(); !r) {
    (void)hw::vmclear(vmcs_phys_);
    return r;
  }
  bound_cpu_ = static_cast<int32_t>(me);
  cpuid_cache_.clear();  // leaves such as 0BH describe the core the vCPU runs on
  load_guest_tsc_aux();
  return ok();
}

Result<void> VmxVcpu::reload_on_this_cpu() {
  if (bound_cpu_ < 0 || static_cast<uint32_t>(bound_cpu_) != this_cpu().index) {
    return make_error(ErrorCode::kInvalidState, "vCPU is not bound to this core");
  }
  cpu::InterruptsOff irq_off;
  fast_.host_rsp = 0;
  load_guest_tsc_aux();
  return hw::vmptrld(vmcs_phys_);
}

Result<void> VmxVcpu::unbind_from_current_processor() {
  if (bound_cpu_ < 0) return make_error(ErrorCode::kInvalidState, "vCPU is not bound");
  if (static_cast<uint32_t>(bound_cpu_) != this_cpu().index) {
    return make_error(ErrorCode::kBusy, "vCPU is bound to another core", static_cast<uint64_t>(bound_cpu_));
  }
  cpu::InterruptsOff irq_off;
  TRY(hw::vmclear(vmcs_phys_));
  bound_cpu_ = -1;
  launched_ = false;  // VMCLEAR made the launch state "clear": the next entry is a VMLAUNCH
  return ok();
}

// ---- VMCS contents ---------------------------------------------------------------------------

Result<void> VmxVcpu::write_controls(uint64_t eptp) {
  const VmxCapabilities& caps = *capabilities();
  // Pin-based (SDM Vol. 3C 24.6.1): host interrupts and NMIs always exit.
  const auto pin = TRY(adjust_controls(pin_based::kExternalInterruptExiting | pin_based::kNmiExiting,
                                       pin_based::kVirtualNmis, caps.pinbased_ctls));
  // Primary processor-based (24.6.2): HLT exits, I/O and MSR bitmaps, secondary controls, and
  // CR8 loads and stores: without them (and without a TPR shadow) a guest's MOV to CR8 would set
  // the physical APIC's TPR, which VM exits do not restore, and could mask the host's own
  // interrupts on that core (25.3, 29.3); CR8 is the vlapic's TPR instead.
  // TSC offsetting when offered: a guest WRMSR to IA32_TIME_STAMP_COUNTER moves its TSC (25.3).
  const auto primary =
      TRY(adjust_controls(proc_based::kHltExiting | proc_based::kUseIoBitmaps | proc_based::kUseMsrBitmaps |
                              proc_based::kActivateSecondaryControls | proc_based::kCr8LoadExiting |
                              proc_based::kCr8StoreExiting,
                          proc_based::kUseTscOffsetting, caps.procbased_ctls));
  // Secondary (24.6.2): EPT and unrestricted guest (real-mode guests need it, 26.3.1.1);
  // RDTSCP and RDPID, and INVPCID, when offered (without "enable RDTSCP" / "enable INVPCID"
  // they are #UD, 25.3).
  const auto secondary =
      TRY(adjust_controls(proc_based2::kEnableEpt | proc_based2::kUnrestrictedGuest,
                          proc_based2::kEnableRdtscp | proc_based2::kEnableInvpcid, caps.procbased2_ctls));
  tsc_offsetting_ = (primary.value & proc_based::kUseTscOffsetting) != 0;
  rdtscp_enabled_ = (secondary.value & proc_based2::kEnableRdtscp) != 0;
  invpcid_enabled_ = (secondary.value & proc_based2::kEnableInvpcid) != 0;
  cpuid_cache_.clear();  // leaf 07H and 8000_0001H follow the RDTSCP/INVPCID controls
  load_guest_tsc_aux();  // this core, where the VMCS is current
  // VM-exit controls (24.7.1): 64-bit host, acknowledge interrupts on exit (the vector lands
  // in VM_EXIT_INTR_INFO), save debug controls, save/load IA32_EFER and IA32_PAT when offered.
  // An exit sets DR7 to 400H and clears IA32_DEBUGCTL (27.5.1): the guest's values survive it
  // only when the exit saves them into GUEST_DR7/GUEST_IA32_DEBUGCTL (27.3.1) and the next
  // entry loads them back (26.3.2.1), or the guest's breakpoints vanish at its first exit.
  const auto exit = TRY(adjust_controls(
      exit_ctls::kHostAddressSpaceSize | exit_ctls::kAcknowledgeInterruptOnExit | exit_ctls::kSaveDebugControls,
      exit_ctls::kSaveIa32Efer | exit_ctls::kLoadIa32Efer | exit_ctls::kSaveIa32Pat | exit_ctls::kLoadIa32Pat,
      caps.exit_ctls));
  // VM-entry controls (24.8.1): not IA-32e mode; load debug controls (DR7, IA32_DEBUGCTL);
  // load IA32_EFER and IA32_PAT when offered.
  const auto entry = TRY(adjust_controls(entry_ctls::kLoadDebugControls,
                                         entry_ctls::kLoadIa32Efer | entry_ctls::kLoadIa32Pat, caps.entry_ctls));
  // With all three PAT controls the guest's IA32_PAT is switched by entry and exit, so the guest
  // may own it (guest_owns_pat()); its power-up value is 0x0007040600070406 (SDM Vol. 3A 11.12.4).
  constexpr uint32_t kPatExit = exit_ctls::kSaveIa32Pat | exit_ctls::kLoadIa32Pat;
  pat_switched_ = (exit.value & kPatExit) == kPatExit && (entry.value & entry_ctls::kLoadIa32Pat) != 0;

  pin_controls_ = pin.value;
  primary_controls_ = primary.value;
  preemption_timer_allowed_ = caps.preemption_timer;
  activity_hlt_allowed_ = caps.activity_hlt;
  nmi_window_allowed_ = caps.nmi_window_exiting && (pin.value & pin_based::kVirtualNmis) != 0;

  TRY(vmcs_write(hw_, F32::PIN_BASED_VM_EXEC_CONTROL, pin.value));
  TRY(vmcs_write(hw_, F32::CPU_BASED_VM_EXEC_CONTROL, primary.value));
  TRY(vmcs_write(hw_, F32::SECONDARY_VM_EXEC_CONTROL, secondary.value));
  TRY(vmcs_write(hw_, F32::VM_EXIT_CONTROLS, exit.value));
  TRY(vmcs_write(hw_, F32::VM_ENTRY_CONTROLS, entry.value));
  if ((entry.value & entry_ctls::kLoadIa32Pat) != 0) TRY(vmcs_write(hw_, F64::GUEST_IA32_PAT, kPatPowerUp));
  if (tsc_offsetting_) TRY(vmcs_write(hw_, F64::TSC_OFFSET, tsc_offset_));
  TRY(vmcs_write(hw_, F32::EXCEPTION_BITMAP, 0));
  TRY(vmcs_write(hw_, F32::PAGE_FAULT_ERROR_CODE_MASK, 0));
  TRY(vmcs_write(hw_, F32::PAGE_FAULT_ERROR_CODE_MATCH, 0));
  TRY(vmcs_write(hw_, F32::CR3_TARGET_COUNT, 0));
  TRY(vmcs_write(hw_, F32::VM_EXIT_MSR_STORE_COUNT, 0));
  TRY(vmcs_write(hw_, F32::VM_EXIT_MSR_LOAD_COUNT, 0));
  TRY(vmcs_write(hw_, F32::VM_ENTRY_MSR_LOAD_COUNT, 0));
  TRY(vmcs_write(hw_, F32::VM_ENTRY_INTR_INFO_FIELD, 0));
  TRY(vmcs_write(hw_, F64::IO_BITMAP_A, io_bitmap_a_phys_));
  TRY(vmcs_write(hw_, F64::IO_BITMAP_B, io_bitmap_b_phys_));
  TRY(vmcs_write(hw_, F64::MSR_BITMAP, msr_bitmap_phys_));
  TRY(vmcs_write(hw_, F64::EPT_POINTER, eptp));
  TRY(vmcs_write(hw_, F64::TSC_OFFSET, 0));
  TRY(vmcs_write(hw_, F64::VMCS_LINK_POINTER, kVmcsLinkPointerNone));

  // CR0/CR4: bits VMX operation fixes (SDM Vol. 3D A.7, A.8) are owned by the host (guest/host
  // mask, 24.6.6); the guest reads its own view from the read shadow. With unrestricted guest,
  // PE and PG may take any value (26.3.1.1): PE is the guest's alone; PG stays host-owned so
  // that a MOV to CR0 changing it exits and the vCPU switches EFER.LMA and the "IA-32e mode
  // guest" entry control with it (vcpu_long_mode.cpp, vmx/long_mode.h). CD and NW are emulated
  // (kCr0EmulatedCaching, vmx/cr_access.h).
  const uint64_t cr0_fixed0 = cpu::rdmsr(kMsrVmxCr0Fixed0);
  const uint64_t cr0_fixed1 = cpu::rdmsr(kMsrVmxCr0Fixed1);
  const uint64_t cr4_fixed0 = cpu::rdmsr(kMsrVmxCr4Fixed0);
  const uint64_t cr4_fixed1 = cpu::rdmsr(kMsrVmxCr4Fixed1);
  const uint64_t cr0_mask = (((cr0_fixed0 | ~cr0_fixed1) & 0xffffffffu) & ~kCr0Pe) | kCr0Pg | kCr0EmulatedCaching;
  const uint64_t cr4_mask = (cr4_fixed0 | ~cr4_fixed1) & 0xffffffffu;
  TRY(vmcs_write(hw_, FN::CR0_GUEST_HOST_MASK, cr0_mask));
  TRY(vmcs_write(hw_, FN::CR0_READ_SHADOW, kCr0Et));
  TRY(vmcs_write(hw_, FN::CR4_GUEST_HOST_MASK, cr4_mask));
  TRY(vmcs_write(hw_, FN::CR4_READ_SHADOW, 0));
  (void)cr4_fixed1;
  return ok();
}

Result<void> VmxVcpu::write_guest_state(const GuestEntry& entry) {
  if (entry.mode != GuestMode::kRealMode) {
    return make_error(ErrorCode::kUnsupported, "only real-mode guests are supported so far");
  }
  const uint64_t cr0_fixed0 = cpu::rdmsr(kMsrVmxCr0Fixed0);
  const uint64_t cr0_fixed1 = cpu::rdmsr(kMsrVmxCr0Fixed1);
  const uint64_t cr4_fixed0 = cpu::rdmsr(kMsrVmxCr4Fixed0);
  const uint64_t cr4_fixed1 = cpu::rdmsr(kMsrVmxCr4Fixed1);
  // Real mode: PE = PG = 0 (allowed under unrestricted guest), other fixed bits honoured.
  const uint64_t cr0 = ((cr0_fixed0 & ~(kCr0Pe | kCr0Pg)) | kCr0Et) & cr0_fixed1;
  const uint64_t cr4 = cr4_fixed0 & cr4_fixed1;
  TRY(vmcs_write(hw_, FN::GUEST_CR0, cr0));
  TRY(vmcs_write(hw_, FN::GUEST_CR3, 0));
  TRY(vmcs_write(hw_, FN::GUEST_CR4, cr4));
  TRY(vmcs_write(hw_, FN::GUEST_DR7, kDr7Reset));
  TRY(vmcs_write(hw_, FN::GUEST_RSP, entry.rsp));
  TRY(vmcs_write(hw_, FN::GUEST_RIP, entry.rip));
  TRY(vmcs_write(hw_, FN::GUEST_RFLAGS, kRflagsReserved1));

  // Segments in real mode: base = selector << 4, 64 KiB limit (SDM Vol. 3C 26.3.1.2 with
  // unrestricted guest: CS type 11, data type 3, SS DPL 0).
  TRY(vmcs_write(hw_, F16::GUEST_CS_SELECTOR, entry.cs_selector));
  TRY(vmcs_write(hw_, FN::GUEST_CS_BASE, static_cast<uint64_t>(entry.cs_selector) << 4));
  TRY(vmcs_write(hw_, F32::GUEST_CS_LIMIT, kRealModeLimit));
  TRY(vmcs_write(hw_, F32::GUEST_CS_AR_BYTES, kArCode16));
  const F16 data_selectors[] = {F16::GUEST_DS_SELECTOR, F16::GUEST_ES_SELECTOR, F16::GUEST_FS_SELECTOR,
                                F16::GUEST_GS_SELECTOR, F16::GUEST_SS_SELECTOR};
  const FN data_bases[] = {FN::GUEST_DS_BASE, FN::GUEST_ES_BASE, FN::GUEST_FS_BASE, FN::GUEST_GS_BASE,
                           FN::GUEST_SS_BASE};
  const F32 data_limits[] = {F32::GUEST_DS_LIMIT, F32::GUEST_ES_LIMIT, F32::GUEST_FS_LIMIT,
                             F32::GUEST_GS_LIMIT, F32::GUEST_SS_LIMIT};
  const F32 data_ar[] = {F32::GUEST_DS_AR_BYTES, F32::GUEST_ES_AR_BYTES, F32::GUEST_FS_AR_BYTES,
                         F32::GUEST_GS_AR_BYTES, F32::GUEST_SS_AR_BYTES};
  for (int i = 0; i < 5; ++i) {
    TRY(vmcs_write(hw_, data_selectors[i], 0));
    TRY(vmcs_write(hw_, data_bases[i], 0));
    TRY(vmcs_write(hw_, data_limits[i], kRealModeLimit));
    TRY(vmcs_write(hw_, data_ar[i], kArData16));
  }
  TRY(vmcs_write(hw_, F16::GUEST_LDTR_SELECTOR, 0));
  TRY(vmcs_write(hw_, FN::GUEST_LDTR_BASE, 0));
  TRY(vmcs_write(hw_, F32::GUEST_LDTR_LIMIT, kRealModeLimit));
  TRY(vmcs_write(hw_, F32::GUEST_LDTR_AR_BYTES, kArUnusable));
  TRY(vmcs_write(hw_, F16::GUEST_TR_SELECTOR, 0));
  TRY(vmcs_write(hw_, FN::GUEST_TR_BASE, 0));
  TRY(vmcs_write(hw_, F32::GUEST_TR_LIMIT, kRealModeLimit));
  TRY(vmcs_write(hw_, F32::GUEST_TR_AR_BYTES, kArTssBusy32));
  TRY(vmcs_write(hw_, FN::GUEST_GDTR_BASE, 0));
  TRY(vmcs_write(hw_, F32::GUEST_GDTR_LIMIT, kRealModeLimit));
  TRY(vmcs_write(hw_, FN::GUEST_IDTR_BASE, 0));
  TRY(vmcs_write(hw_, F32::GUEST_IDTR_LIMIT, kRealModeIdtLimit));

  // Non-register state (SDM Vol. 3C 24.4.2): active, nothing blocked, no pending #DB.
  TRY(vmcs_write(hw_, F32::GUEST_INTERRUPTIBILITY_INFO, 0));
  TRY(vmcs_write(hw_, F32::GUEST_ACTIVITY_STATE, 0));
  TRY(vmcs_write(hw_, FN::GUEST_PENDING_DBG_EXCEPTIONS, 0));
  TRY(vmcs_write(hw_, F64::GUEST_IA32_DEBUGCTL, 0));
  TRY(vmcs_write(hw_, F32::GUEST_SYSENTER_CS, 0));
  TRY(vmcs_write(hw_, FN::GUEST_SYSENTER_ESP, 0));
  TRY(vmcs_write(hw_, FN::GUEST_SYSENTER_EIP, 0));
  const uint32_t entry_controls = TRY(vmcs_read(hw_, F32::VM_ENTRY_CONTROLS));
  if ((entry_controls & entry_ctls::kLoadIa32Efer) != 0) {
    TRY(vmcs_write(hw_, F64::GUEST_IA32_EFER, 0));  // real mode: LME = LMA = 0
  }
  // A restart (INIT + SIPI) of a vCPU that was in long mode: "IA-32e mode guest" must follow
  // EFER.LMA = 0 again, or the real-mode entry fails its checks (SDM Vol. 3C 26.2.1.3, 26.3.1.1).
  if ((entry_controls & kEntryIa32eModeGuest) != 0) {
    TRY(vmcs_write(hw_, F32::VM_ENTRY_CONTROLS, entry_controls & ~kEntryIa32eModeGuest));
  }
  (void)cr4_fixed1;
  (void)cr0_fixed1;
  return ok();
}

// Host state of *this* core, loaded by every VM exit (SDM Vol. 3C 24.5, checked by 26.2.3).
Result<void> VmxVcpu::write_host_state() {
  PerCpu& me = this_cpu();
  TRY(vmcs_write(hw_, FN::HOST_CR0, cpu::read_cr0()));
  TRY(vmcs_write(hw_, FN::HOST_CR3, cpu::read_cr3()));
  TRY(vmcs_write(hw_, FN::HOST_CR4, cpu::read_cr4()));
  // Selectors need RPL = 0 and TI = 0 (26.2.3); FS/GS as this core has them.
  TRY(vmcs_write(hw_, F16::HOST_CS_SELECTOR, kKernelCodeSelector));
  TRY(vmcs_write(hw_, F16::HOST_SS_SELECTOR, kKernelDataSelector));
  TRY(vmcs_write(hw_, F16::HOST_DS_SELECTOR, kKernelDataSelector));
  TRY(vmcs_write(hw_, F16::HOST_ES_SELECTOR, kKernelDataSelector));
  TRY(vmcs_write(hw_, F16::HOST_FS_SELECTOR, static_cast<uint16_t>(read_fs_selector() & 0xfff8)));
  TRY(vmcs_write(hw_, F16::HOST_GS_SELECTOR, static_cast<uint16_t>(read_gs_selector() & 0xfff8)));
  TRY(vmcs_write(hw_, F16::HOST_TR_SELECTOR, kTssSelector));
  TRY(vmcs_write(hw_, FN::HOST_FS_BASE, cpu::rdmsr(cpu::kMsrFsBase)));
  TRY(vmcs_write(hw_, FN::HOST_GS_BASE, cpu::rdmsr(cpu::kMsrGsBase)));  // this core's PerCpu
  TRY(vmcs_write(hw_, FN::HOST_TR_BASE, reinterpret_cast<uint64_t>(&me.tss)));
  TRY(vmcs_write(hw_, FN::HOST_GDTR_BASE, read_gdtr_base()));
  TRY(vmcs_write(hw_, FN::HOST_IDTR_BASE, read_idtr_base()));
  TRY(vmcs_write(hw_, F32::HOST_IA32_SYSENTER_CS, static_cast<uint32_t>(cpu::rdmsr(kMsrSysenterCs))));
  TRY(vmcs_write(hw_, FN::HOST_IA32_SYSENTER_ESP, cpu::rdmsr(kMsrSysenterEsp)));
  TRY(vmcs_write(hw_, FN::HOST_IA32_SYSENTER_EIP, cpu::rdmsr(kMsrSysenterEip)));
  const uint32_t exit_controls = TRY(vmcs_read(hw_, F32::VM_EXIT_CONTROLS));
  if ((exit_controls & exit_ctls::kLoadIa32Efer) != 0) {
    TRY(vmcs_write(hw_, F64::HOST_IA32_EFER, cpu::rdmsr(cpu::kMsrEfer)));
  }
  if ((exit_controls & exit_ctls::kLoadIa32Pat) != 0) {
    TRY(vmcs_write(hw_, F64::HOST_IA32_PAT, cpu::rdmsr(kMsrIa32Pat)));
  }
  TRY(vmcs_write(hw_, FN::HOST_RIP, reinterpret_cast<uint64_t>(vmx_exit_entry)));
  // HOST_RSP is written by vmx_enter when its stack pointer differs from the last one written
  // (VmxFastPath::host_rsp).
  return ok();
}

Result<void> VmxVcpu::set_preemption_timer(uint32_t value) {
  if (bound_cpu_ < 0 || static_cast<uint32_t>(bound_cpu_) != this_cpu().index) {
    return make_error(ErrorCode::kInvalidState, "vCPU is not bound to this core");
  }
  if (!preemption_timer_allowed_) return make_error(ErrorCode::kUnsupported, "no VMX preemption timer");
  requested_preemption_timer_ = value;  // run() may aim it earlier, at a vlapic timer deadline
  arbitrate_ = true;
  return apply_preemption_timer(value);
}

Result<void> VmxVcpu::set_return_backstop(uint32_t ticks) {
  if (bound_cpu_ < 0 || static_cast<uint32_t>(bound_cpu_) != this_cpu().index) {
    return make_error(ErrorCode::kInvalidState, "vCPU is not bound to this core");
  }
  if (!preemption_timer_allowed_) return make_error(ErrorCode::kUnsupported, "no VMX preemption timer");
  return_backstop_ = ticks;
  arbitrate_ = true;  // the next arbitration aims the timer
  return ok();
}

Result<void> VmxVcpu::apply_preemption_timer(uint32_t value) {
  uint32_t pin = pin_controls_;
  if (value != 0) {
    pin |= pin_based::kActivatePreemptionTimer;
    TRY(vmcs_write(hw_, F32::VMX_PREEMPTION_TIMER_VALUE, value));
  } else {
    pin &= ~pin_based::kActivatePreemptionTimer;
  }
  if (pin != pin_controls_) {
    TRY(vmcs_write(hw_, F32::PIN_BASED_VM_EXEC_CONTROL, pin));
    pin_controls_ = pin;
  }
  return ok();
}

Result<void> VmxVcpu::sleep_in_hlt(uint32_t preemption_timer_value) {
  if (!can_sleep_in_hlt())
    return make_error(ErrorCode::kUnsupported, "no HLT activity state or preemption timer");
  TRY(set_preemption_timer(preemption_timer_value));
  // Activity state 1 = HLT (SDM Vol. 3C 24.4.2, Table 24-3; allowed per IA32_VMX_MISC bit 6).
  TRY(vmcs_write(hw_, F32::GUEST_ACTIVITY_STATE, kActivityHlt));
  arbiter_.halt_in_guest();
  arbitrate_ = true;
  return ok();
}

// ---- Running ---------------------------------------------------------------------------------

Result<size_t> VmxVcpu::queue_event(guest::PendingEventType type, uint32_t vector,
                                    std::optional<uint32_t> error_code) {
  size_t position;
  {
    IrqSpinlockGuard guard(events_lock_);
    position = TRY(events_.queue_event(type, vector, error_code));
  }
  // Release: the owner that sees the bit also sees the queued event when it takes the lock.
  attention_.fetch_or(kAttentionEvents, std::memory_order_release);
  kick_owner();  // a vCPU bound elsewhere exits (or its core wakes) and run() injects
  return position;
}

guest::PendingEventSnapshot VmxVcpu::pending_events() const {
  IrqSpinlockGuard guard(events_lock_);
  return events_.snapshot();
}

size_t VmxVcpu::pending_event_count() const {
  IrqSpinlockGuard guard(events_lock_);
  return events_.size();
}

// The arbiter's seam onto this VMCS (guest/event_arbiter.h): the entry's event slot is
// VM_ENTRY_INTR_INFO_FIELD; the windows are "interrupt-window exiting" and "NMI-window exiting"
// (SDM Vol. 3C 24.6.2), collected in `primary` and written once after the pass.
struct VmxVcpu::ArbiterSeam {
  VmxVcpu& vcpu;
  uint32_t primary;

  Result<guest::InjectionContext> injection_context() {
    guest::InjectionContext context;
    context.guest_rflags = TRY(vmcs_read(vcpu.hw_, FN::GUEST_RFLAGS));
    context.interruptibility = TRY(vmcs_read(vcpu.hw_, F32::GUEST_INTERRUPTIBILITY_INFO));
    context.event_slot_busy = entry_event_slot_busy(TRY(vmcs_read(vcpu.hw_, F32::VM_ENTRY_INTR_INFO_FIELD)));
    return context;
  }
  Result<bool> reinject_interrupted_event() {
    if (!vcpu.reinjection_) return false;
    const Reinjection re = *vcpu.reinjection_;
    vcpu.reinjection_.reset();
    // An event a handler injected for this entry (a #GP it raised) goes first.
    if ((TRY(vmcs_read(vcpu.hw_, F32::VM_ENTRY_INTR_INFO_FIELD)) & kIntrInfoValid) != 0) return false;
    TRY(vmcs_write(vcpu.hw_, F32::VM_ENTRY_INTR_INFO_FIELD, re.entry_interruption_info));
    if ((re.entry_interruption_info & kIntrInfoErrorCodeValid) != 0) {
      TRY(vmcs_write(vcpu.hw_, F32::VM_ENTRY_EXCEPTION_ERROR_CODE, re.error_code));
    }
    if (re.instruction_length != 0) TRY(vmcs_write(vcpu.hw_, F32::VM_ENTRY_INSTRUCTION_LEN, re.instruction_length));
    return true;
  }
  guest::LockedEventQueue lock_queue() {
    return guest::LockedEventQueue{IrqSpinlockGuard(vcpu.events_lock_), vcpu.events_};
  }
  Result<void> inject(const guest::PendingEvent& event, guest::EventSource source) {
    uint32_t info = entry_interruption_info(event);
    // With unrestricted guest and CR0.PE = 0 the "deliver error code" bit must be 0, or the
    // VM entry fails (SDM Vol. 3C 26.2.1.3): real mode pushes no error codes.
    if ((info & kIntrInfoErrorCodeValid) != 0) {
      const uint64_t guest_cr0 = TRY(vmcs_read(vcpu.hw_, FN::GUEST_CR0));
      if ((guest_cr0 & kCr0Pe) == 0) info &= ~kIntrInfoErrorCodeValid;
    }
    if ((info & kIntrInfoErrorCodeValid) != 0) {
      TRY(vmcs_write(vcpu.hw_, F32::VM_ENTRY_EXCEPTION_ERROR_CODE, event.error_code));
    }
    TRY(vmcs_write(vcpu.hw_, F32::VM_ENTRY_INTR_INFO_FIELD, info));
    if (source == guest::EventSource::kQueue) {
      ++vcpu.events_injected_;
    } else {
      ++vcpu.vlapic_injected_;
    }
    return ok();
  }
  void request_interrupt_window() { primary |= proc_based::kInterruptWindowExiting; }
  void request_nmi_window() {
    if (vcpu.nmi_window_allowed_) primary |= proc_based::kNmiWindowExiting;
  }
  // Only some events may be injected in the HLT activity state (SDM Vol. 3C 26.3.1.5): the
  // event ends the HLT, so the guest enters active and the wake-up timer is dropped.
  Result<void> wake_from_hlt() {
    TRY(vmcs_write(vcpu.hw_, F32::GUEST_ACTIVITY_STATE, kActivityActive));
    vcpu.requested_preemption_timer_ = 0;
    return ok();
  }
  // A host interrupt that made the halted guest exit may have been recorded as the end of its
  // HLT (Bochs saves "active"); only an event for the guest or the wake-up timer ends the
  // sleep, so it goes back in halted (SDM Vol. 3C 24.4.2).
  Result<void> stay_in_hlt() {
    const uint32_t activity = TRY(vmcs_read(vcpu.hw_, F32::GUEST_ACTIVITY_STATE));
    if (activity != kActivityHlt) TRY(vmcs_write(vcpu.hw_, F32::GUEST_ACTIVITY_STATE, kActivityHlt));
    return ok();
  }
  // Parked after INIT (vcpu_vlapic.cpp enter_wait_for_sipi): stays halted, although a host
  // interrupt's exit may have recorded it active.
  Result<void> hold_in_wait_for_sipi() { return vmcs_write(vcpu.hw_, F32::GUEST_ACTIVITY_STATE, kActivityHlt); }
};

// The event arbiter's pass before an entry: posted INIT/SIPI/vectors -> vlapic and the vlapic
// timer (only while armed), then guest::EventArbiter (re-injection, the queue behind its gate,
// the vlapic, windows, HLT), then the controls it asked for and the preemption timer.
// Afterwards it decides whether the next entries may skip it.
inline Result<void> VmxVcpu::arbitrate_events() {
  const uint32_t attention = attention_.exchange(0, std::memory_order_acquire);
  if ((attention & kAttentionPosted) != 0 || vlapic_.next_deadline() != guest::VirtualLapic::kNoDeadline) {
    TRY(vlapic_before_entry());  // posted IPIs and an expired vlapic timer -> IRR
  }
  guest::EventArbiter::Pass pass;
  pass.exits = total_exits_;
  pass.newest_exit_from_host = exit_caused_by_host(ring_[(ring_next_ + kExitRingSize - 1) % kExitRingSize].reason);
  pass.queue_may_have_events = (attention & kAttentionEvents) != 0;
  pass.waiting_for_sipi = wait_for_sipi_;
  ArbiterSeam seam{*this, primary_controls_};
  const guest::EventArbiter::PassResult arbitrated = TRY(arbiter_.arbitrate(seam, vlapic_, pass));
  if (seam.primary != primary_controls_) {
    TRY(vmcs_write(hw_, F32::CPU_BASED_VM_EXEC_CONTROL, seam.primary));
    primary_controls_ = seam.primary;
  }
  const uint32_t windows = primary_controls_ & (proc_based::kInterruptWindowExiting | proc_based::kNmiWindowExiting);
  const bool timer_armed = vlapic_.next_deadline() != guest::VirtualLapic::kNoDeadline;
  if (!wait_for_sipi_) TRY(aim_preemption_timer());
  // The stub may resume null hypercalls itself only while nothing waits for injection and no
  // preemption timer aimed at a vlapic deadline needs restarting at every resume.
  fast_.enabled = (fast_allowed_ && !arbiter_.queue_pending() && windows == 0 && !wait_for_sipi_ &&
                   !arbitrated.vlapic_vector && !(preemption_timer_allowed_ && timer_armed))
                      ? 1
                      : 0;
  arbitrate_ = arbiter_.queue_pending() || wait_for_sipi_ || arbiter_.halted_in_guest() ||
               vlapic_.has_requests() || timer_armed || requested_preemption_timer_ != 0 || windows != 0;
  return ok();
}

inline Result<void> VmxVcpu::pre_enter() {
  if (!arbitrate_ && attention_.load(std::memory_order_relaxed) == 0) return ok();
  // The arbiter is built -mgeneral-regs-only like the exit path (cmake/kernel.cmake), so the
  // guest's extended state may stay loaded; INIT/SIPI reset the guest's save area, which must
  // not be live then.
  if (posted_.init_or_sipi_pending()) ensure_host_xstate();
  return arbitrate_events();
}

inline Result<void> VmxVcpu::enter_and_decode(ExitInfo& exit) {
  // Interrupts are off for the whole run(): nothing on this core sees the guest's state.
  ensure_guest_xstate();
  const uint64_t flags = vmx_enter(&regs_, launched_ ? 1 : 0, &fast_);
  if (flags != 0) {
    ensure_host_xstate();
    // VMfailInvalid (CF, bit 0) or VMfailValid (ZF, bit 6): SDM Vol. 3C 30.2.
    if ((flags & 1) != 0) return vmx_fail_invalid();
    const uint32_t number = TRY(vmcs_read(hw_, F32::VM_INSTRUCTION_ERROR));
    return vmx_fail_valid(number);
  }
  launched_ = true;
  exit.raw_reason = TRY(vmcs_read(hw_, F32::VM_EXIT_REASON));
  exit.basic = static_cast<uint16_t>(exit.raw_reason & 0xffff);
  exit.qualification = 0;
  exit.rip = TRY(vmcs_read(hw_, FN::GUEST_RIP));
  exit.instruction_length = ExitInfo::kLengthUnread;
  return ok();
}

// run()'s steps for guest::run_vcpu() (guest/run_loop.h). Exits handled inside (Nothing) go
// straight back into the guest; every other exit returns to the caller. Another core's
// request reaches the loop as attention bits (read by pre_enter) plus the wake-up IPI, whose
// host-interrupt exit returns to the caller (mailbox work, captures). A guest that runs
// without exits the host sees is bounded by the return backstop (set_return_backstop), not
// by a count of handled exits.
struct VmxVcpu::RunLoopSeam {
  using Exit = ExitInfo;
  using Outcome = VmExit;
  static constexpr uint32_t kHandledExitsPerTurn = 0;
  VmxVcpu& vcpu;

  [[gnu::always_inline]] Result<bool> pre_enter() {
    TRY(vcpu.pre_enter());
    return true;  // a HLT sleeps inside the guest (activity state HLT + preemption timer)
  }
  [[gnu::always_inline]] VmExit outcome_without_entry() { return VmExit{exits::Nothing{}}; }
  [[gnu::always_inline]] Result<void> enter_and_decode(ExitInfo& exit) { return vcpu.enter_and_decode(exit); }
  [[gnu::always_inline]] Result<VmExit> dispatch(ExitInfo& exit) { return vcpu.handle_exit(exit); }
  [[gnu::always_inline]] bool handled_inside(const VmExit& outcome) { return outcome.index() == 0; }
  [[gnu::always_inline]] void post_exit() {
    if ((vcpu.total_exits_ & (kPublishEveryExits - 1)) == 0) vcpu.publish_state();
  }
  [[gnu::always_inline]] bool leave_requested() {
    if (vcpu.vm_core_ != nullptr && vcpu.vm_core_->run_loop_must_return()) return true;
    // One relaxed load per handled exit; the exchange only when a request is there.
    return vcpu.return_requested_.load(std::memory_order_relaxed) && vcpu.return_requested_.exchange(false);
  }
};

Result<VmExit> VmxVcpu::run() {
  if (stop_message_ != nullptr) {
    return make_error(ErrorCode::kInvalidState, stop_message_, stop_exit_reason_);
  }
  if (!setup_done_) return make_error(ErrorCode::kInvalidState, "vCPU is not set up");
  if (bound_cpu_ < 0 || static_cast<uint32_t>(bound_cpu_) != this_cpu().index) {
    return make_error(ErrorCode::kInvalidState, "vCPU is not bound to this core");
  }
  if (pending_completion_ != PendingCompletion::kNone) {
    return make_error(ErrorCode::kInvalidState, "complete the pending IoRead/MsrRead exit first");
  }
  cpu::InterruptsOff irq_off;
  // CR2 is not in the VMCS (SDM Vol. 3C 27.3.1 lists what an exit saves): the guest's value is
  // switched by hand, once per run(). Inside run() nothing on this core but the guest writes
  // CR2: interrupts are off, and a page fault in the host panics. MOV to CR2 serializes (SDM
  // Vol. 3A 9.3), so only when it differs.
  if (cpu::read_cr2() != guest_cr2_) cpu::write_cr2(guest_cr2_);
  struct OnReturn {
    VmxVcpu& vcpu;
    ~OnReturn() {
      vcpu.guest_cr2_ = cpu::read_cr2();
      vcpu.ensure_host_xstate();
      vcpu.publish_state();
    }
  } on_return{*this};
  RunLoopSeam seam{*this};
  return guest::run_vcpu(seam);
}

// The guest's x87/SSE/AVX... registers and XCR0 are live only between these two calls, with
// interrupts off and no compiled code in between but the call into the entry stub (which
// touches no extended state). XCR0 is not switched by VM entry/exit (SDM Vol. 3C 26, 27), so
// it is switched here (SDM Vol. 1 13.3, 13.7, 13.8).
void VmxVcpu::switch_to_guest_xstate() {
  const guest::HostXstate& x = guest::host_xstate();
  void* host_area = paging::phys_to_ptr<void>(host_xstate_phys_);
  void* guest_area = paging::phys_to_ptr<void>(guest_xstate_phys_);
  if (x.mode == guest::XstateMode::kXsave) {
    guest::hw::xsave(host_area);
    if (guest_xcr0_ != x.host_xcr0) guest::hw::xsetbv(0, guest_xcr0_);
    // IA32_XSS is not switched by VM entry/exit either (SDM Vol. 1 13.3; Vol. 3C 26, 27).
    if (x.xsaves && guest_xss_ != x.host_xss) cpu::wrmsr(guest::kMsrIa32Xss, guest_xss_);
    guest::hw::xrstor(guest_area);
  } else if (x.mode == guest::XstateMode::kFxsave) {
    guest::hw::fxsave(host_area);
    guest::hw::fxrstor(guest_area);
  }
}

void VmxVcpu::switch_to_host_xstate() {
  const guest::HostXstate& x = guest::host_xstate();
  void* host_area = paging::phys_to_ptr<void>(host_xstate_phys_);
  void* guest_area = paging::phys_to_ptr<void>(guest_xstate_phys_);
  if (x.mode == guest::XstateMode::kXsave) {
    guest::hw::xsave(guest_area);
    if (guest_xcr0_ != x.host_xcr0) guest::hw::xsetbv(0, x.host_xcr0);
    if (x.xsaves && guest_xss_ != x.host_xss) cpu::wrmsr(guest::kMsrIa32Xss, x.host_xss);
    guest::hw::xrstor(host_area);
  } else if (x.mode == guest::XstateMode::kFxsave) {
    guest::hw::fxsave(guest_area);
    guest::hw::fxrstor(host_area);
  }
}

Result<void> VmxVcpu::inject_exception_now(uint8_t vector, std::optional<uint32_t> error_code) {
  arbitrate_ = true;  // the entry slot is taken: the vlapic must see it before the entry
  uint32_t info = TRY(
      encode_entry_interruption_info(InterruptionType::kHardwareException, vector, error_code.has_value()));
  // With unrestricted guest and CR0.PE = 0, "deliver error code" must be 0 (SDM Vol. 3C 26.2.1.3).
  const uint64_t guest_cr0 = TRY(vmcs_read(hw_, FN::GUEST_CR0));
  if ((guest_cr0 & kCr0Pe) == 0) info &= ~kIntrInfoErrorCodeValid;
  if ((info & kIntrInfoErrorCodeValid) != 0) {
    TRY(vmcs_write(hw_, F32::VM_ENTRY_EXCEPTION_ERROR_CODE, *error_code));
  }
  TRY(vmcs_write(hw_, F32::VM_ENTRY_INTR_INFO_FIELD, info));
  const uint64_t rflags = TRY(vmcs_read(hw_, FN::GUEST_RFLAGS));
  const uint64_t delivered_rflags = guest::rflags_for_injected_exception(rflags, vector);
  if (delivered_rflags != rflags) TRY(vmcs_write(hw_, FN::GUEST_RFLAGS, delivered_rflags));
  return ok();
}

constexpr std::array<VmxVcpu::ExitTableEntry, kExitReasonTableSize> VmxVcpu::build_exit_table() {
  std::array<ExitTableEntry, kExitReasonTableSize> t{};
  // Quiet: the handler touches no event, vlapic, window or activity state (the vlapic's MSR
  // handlers mark the arbiter themselves). With qualification: SDM Vol. 3C 27.2.1, Table 27-2
  // lists the reasons that have one.
  auto set = [&t](ExitReason r, ExitHandler h, bool needs_qualification, bool quiet, bool keeps = false) {
    t[static_cast<size_t>(r)] = ExitTableEntry{h, needs_qualification, quiet, keeps, false};
  };
  // Instruction-caused exits (SDM Vol. 3C 25.1.2, 25.1.3): never during event delivery.
  auto instruction = [&t](ExitReason r, ExitHandler h, bool needs_qualification, bool quiet, bool keeps) {
    t[static_cast<size_t>(r)] = ExitTableEntry{h, needs_qualification, quiet, keeps, true};
  };
  set(ExitReason::EXCEPTION_NMI, &VmxVcpu::on_exception_or_nmi, true, false);
  set(ExitReason::EXTERNAL_INTERRUPT, &VmxVcpu::on_external_interrupt, false, false);
  set(ExitReason::TRIPLE_FAULT, &VmxVcpu::on_triple_fault, false, false);
  set(ExitReason::INTERRUPT_WINDOW, &VmxVcpu::on_interrupt_window, false, false);
  set(ExitReason::NMI_WINDOW, &VmxVcpu::on_interrupt_window, false, false);
  instruction(ExitReason::CPUID, &VmxVcpu::on_cpuid, false, true, true);
  set(ExitReason::HLT, &VmxVcpu::on_hlt, false, false);
  instruction(ExitReason::INVD, &VmxVcpu::on_skip_instruction, false, true, true);
  instruction(ExitReason::WBINVD, &VmxVcpu::on_skip_instruction, false, true, true);
  instruction(ExitReason::VMCALL, &VmxVcpu::on_vmcall, false, true, true);
  for (ExitReason r : {ExitReason::VMCLEAR, ExitReason::VMLAUNCH, ExitReason::VMPTRLD, ExitReason::VMPTRST,
                       ExitReason::VMREAD, ExitReason::VMRESUME, ExitReason::VMWRITE, ExitReason::VMXOFF,
                       ExitReason::VMXON, ExitReason::INVEPT, ExitReason::INVVPID}) {
    set(r, &VmxVcpu::on_vmx_instruction, true, true);
  }
  instruction(ExitReason::IO_INSTRUCTION, &VmxVcpu::on_io, true, true, true);
  instruction(ExitReason::MSR_READ, &VmxVcpu::on_msr_read, false, true, true);
  instruction(ExitReason::MSR_WRITE, &VmxVcpu::on_msr_write, false, true, true);
  set(ExitReason::EPT_VIOLATION, &VmxVcpu::on_ept_violation, true, false);
  set(ExitReason::PREEMPTION_TIMER, &VmxVcpu::on_preemption_timer, false, false);
  set(ExitReason::XSETBV, &VmxVcpu::on_xsetbv, false, true);
  set(ExitReason::CR_ACCESS, &VmxVcpu::on_cr_access, true, false);
  return t;
}

const std::array<VmxVcpu::ExitTableEntry, kExitReasonTableSize>& VmxVcpu::exit_table() {
  static constexpr std::array<ExitTableEntry, kExitReasonTableSize> kTable = build_exit_table();
  return kTable;
}

template <typename Handler>
inline Result<VmExit> VmxVcpu::dispatch_exit(ExitInfo& exit, const ExitTableEntry& entry, Handler handler) {
  if (!entry.keeps_guest_xstate) ensure_host_xstate();
  if (entry.needs_qualification || entry.handler == nullptr) {
    exit.qualification = TRY(vmcs_read(hw_, FN::EXIT_QUALIFICATION));
  }
  record_exit(exit);
  // A failed VM entry has a reason without a handler (33, 34, 41; SDM Vol. 3C 26.8).
  if (entry.handler == nullptr && ExitReasonField::from_raw(exit.raw_reason).entry_failure) {
    // VM entry failed while loading guest state (SDM Vol. 3C 26.8): the vCPU cannot go on.
    ensure_host_xstate();
    (void)stop(exit, "VM entry failed (invalid guest state, MSR loading or machine check)");
    return VmExit{exits::FailEntry{exit.basic, exit.qualification}};
  }
  // An event whose delivery the exit interrupted is delivered again (SDM Vol. 3C 27.2.4): the
  // arbiter's pass places it before anything else.
  const uint32_t idt_vectoring = entry.instruction ? 0 : TRY(vmcs_read(hw_, F32::IDT_VECTORING_INFO_FIELD));
  if ((idt_vectoring & kIntrInfoValid) != 0) {
    const uint32_t error_code = TRY(vmcs_read(hw_, F32::IDT_VECTORING_ERROR_CODE));
    exit.instruction_length = TRY(vmcs_read(hw_, F32::VM_EXIT_INSTRUCTION_LEN));
    reinjection_ = reinjection_from_idt_vectoring(idt_vectoring, error_code, exit.instruction_length);
    arbitrate_ = true;
    ensure_host_xstate();
  }
  if (!entry.quiet) arbitrate_ = true;
  if (entry.handler == nullptr) return on_unexpected(exit);
  return handler(exit);
}

inline Result<VmExit> VmxVcpu::handle_exit(ExitInfo& exit) {
  // The most frequent exits take their table entry as a constant, so that its flags fold away,
  // and call their handler directly, so that it inlines here (as KVM's vmx_handle_exit does for
  // its hot reasons); the table still lists every handler.
  static constexpr std::array<ExitTableEntry, kExitReasonTableSize> kTable = build_exit_table();
  constexpr auto at = [](ExitReason r) { return kTable[static_cast<size_t>(r)]; };
  switch (static_cast<ExitReason>(exit.basic)) {
    case ExitReason::CPUID:
      return dispatch_exit(exit, at(ExitReason::CPUID), [this](const ExitInfo& e) { return on_cpuid(e); });
    case ExitReason::MSR_READ:
      return dispatch_exit(exit, at(ExitReason::MSR_READ), [this](const ExitInfo& e) { return on_msr_read(e); });
    case ExitReason::IO_INSTRUCTION:
      return dispatch_exit(exit, at(ExitReason::IO_INSTRUCTION), [this](const ExitInfo& e) { return on_io(e); });
    case ExitReason::VMCALL:
      return dispatch_exit(exit, at(ExitReason::VMCALL), [this](const ExitInfo& e) { return on_vmcall(e); });
    default: {
      const ExitTableEntry entry = exit.basic < kTable.size() ? kTable[exit.basic] : ExitTableEntry{};
      return dispatch_exit(exit, entry, [this, &entry](const ExitInfo& e) { return (this->*entry.handler)(e); });
    }
  }
}

void VmxVcpu::publish_state() {
  published_.store(total_exits_ + fast_.null_hypercalls, ring_[(ring_next_ + kExitRingSize - 1) % kExitRingSize].reason,
                   events_injected_, launched_, arbiter_.halted_in_guest(), wait_for_sipi_, stop_message_);
}

inline void VmxVcpu::record_exit(const ExitInfo& exit) {
  if (exit.basic < kExitReasonTableSize) {
    // Single writer; other cores read it with exit_count_relaxed().
    uint64_t& count = exit_counts_[exit.basic];
    __atomic_store_n(&count, count + 1, __ATOMIC_RELAXED);
  }
  ++total_exits_;
  ring_[ring_next_] = ExitRecord{exit.raw_reason, exit.qualification, exit.rip, cpu::rdtsc()};
  ring_next_ = (ring_next_ + 1) % kExitRingSize;
}

size_t VmxVcpu::recent_exits(ExitRecord* out, size_t capacity) const {
  const size_t available = total_exits_ < kExitRingSize ? static_cast<size_t>(total_exits_) : kExitRingSize;
  const size_t n = capacity < available ? capacity : available;
  for (size_t i = 0; i < n; ++i) {
    out[i] = ring_[(ring_next_ + kExitRingSize - 1 - i) % kExitRingSize];
  }
  return n;
}

inline Result<uint32_t> VmxVcpu::instruction_length(const ExitInfo& exit) {
  if (exit.instruction_length != ExitInfo::kLengthUnread) return exit.instruction_length;
  return vmcs_read(hw_, F32::VM_EXIT_INSTRUCTION_LEN);
}

// guest::complete_emulated_instruction() onto the VMCS: the code size from the "IA-32e mode
// guest" entry control (EFER.LMA after entry, SDM Vol. 3C 24.8.1) and the CS access rights (L bit
// 13, D/B bit 14; SDM Vol. 3C 24.4.1 Table 24-2); the shadow is blocking by STI / by MOV SS in
// the interruptibility state (24.4.2 Table 24-3).
struct VmxVcpu::RipSeam {
  VmxVcpu& vcpu;
  uint64_t guest_rip;

  uint64_t rip() { return guest_rip; }
  Result<void> set_rip(uint64_t rip) { return vmcs_write(vcpu.hw_, FN::GUEST_RIP, rip); }
  Result<guest::CodeSize> code_size() {
    const uint32_t entry = TRY(vmcs_read(vcpu.hw_, F32::VM_ENTRY_CONTROLS));
    const uint32_t cs_ar = TRY(vmcs_read(vcpu.hw_, F32::GUEST_CS_AR_BYTES));
    return guest::code_size_of((entry & kEntryIa32eModeGuest) != 0, (cs_ar & kSegmentArLong) != 0,
                               (cs_ar & kSegmentArDefaultBig) != 0);
  }
  Result<void> clear_interrupt_shadow() {
    const uint32_t interruptibility = TRY(vmcs_read(vcpu.hw_, F32::GUEST_INTERRUPTIBILITY_INFO));
    if ((interruptibility & kInterruptibilityShadow) == 0) return ok();
    return vmcs_write(vcpu.hw_, F32::GUEST_INTERRUPTIBILITY_INFO, interruptibility & ~kInterruptibilityShadow);
  }
};

// The instruction pointer wrapped as the guest's code size says (guest/instruction_pointer.h).
Result<void> VmxVcpu::advance_rip(const ExitInfo& exit) {
  const uint32_t length = TRY(instruction_length(exit));
  RipSeam seam{*this, exit.rip};
  return guest::complete_emulated_instruction(seam, exit.rip + length);
}

// advance_rip() for the hot exit path (CPUID, port I/O, VMCALL, HLT, unknown MSRs): one
// comparison decides whether the instruction crossed a 64 KiB boundary and may need IP/EIP
// wrapped (guest/instruction_pointer.h); only then advance_rip() reads the code size.
inline Result<void> VmxVcpu::advance_rip_inline(const ExitInfo& exit) {
  const uint32_t length = TRY(instruction_length(exit));
  const uint64_t next = exit.rip + length;
  if (guest::next_rip_may_wrap(next, length)) [[unlikely]] return advance_rip(exit);
  TRY(vmcs_write(hw_, FN::GUEST_RIP, next));
  const uint32_t interruptibility = TRY(vmcs_read(hw_, F32::GUEST_INTERRUPTIBILITY_INFO));
  if ((interruptibility & kInterruptibilityShadow) != 0) {
    TRY(vmcs_write(hw_, F32::GUEST_INTERRUPTIBILITY_INFO, interruptibility & ~kInterruptibilityShadow));
  }
  return ok();
}

void VmxVcpu::dump_vmcs(const char* why) {
  LOG_ERROR("vmx: vm%u vcpu%u VMCS dump (%s):", vm_id_, vcpu_id_, why);
  auto fields = for_each_supported_field(hw_, [](const VmcsFieldInfo& info, uint64_t value) {
    LOG_ERROR("  %-32.*s 0x%llx", static_cast<int>(info.name.size()), info.name.data(),
              static_cast<unsigned long long>(value));
  });
  if (!fields) {
    LOG_ERROR("  VMCS dump stopped: %s (detail %llu)", fields.error().message,
              static_cast<unsigned long long>(fields.error().detail));
  }
}

Result<VmExit> VmxVcpu::stop(const ExitInfo& exit, const char* message) {
  ensure_host_xstate();
  stop_message_ = message;
  stop_exit_reason_ = exit.raw_reason;
  const std::string_view name = exit_reason_name(exit.basic);
  LOG_ERROR("vmx: vm%u vcpu%u stopped: %s (exit reason %u %.*s, qualification 0x%llx, RIP 0x%llx)", vm_id_,
            vcpu_id_, message, exit.basic, static_cast<int>(name.size()), name.data(),
            static_cast<unsigned long long>(exit.qualification), static_cast<unsigned long long>(exit.rip));
  dump_vmcs(message);
  return make_error(ErrorCode::kInvalidState, message, exit.raw_reason);
}

void VmxVcpu::stop_by_owner(const char* reason) {
  if (stop_message_ == nullptr) stop_message_ = reason;
  publish_state();
}

// ---- Exit handlers ---------------------------------------------------------------------------

Result<VmExit> VmxVcpu::on_unexpected(const ExitInfo& exit) {
  return stop(exit, "unexpected VM exit");
}

Result<VmExit> VmxVcpu::on_exception_or_nmi(const ExitInfo& exit) {
  const uint32_t raw = TRY(vmcs_read(hw_, F32::VM_EXIT_INTR_INFO));
  const InterruptionInfo info = InterruptionInfo::decode_exit(raw);
  if (info.valid && info.type == InterruptionType::kNmi) {
    // A host NMI (NMI exiting): hand it to the host's NMI gate.
    asm volatile("int $2" ::: "memory");
    (void)kVectorNmi;
    return VmExit{exits::Nothing{}};
  }
  return on_unexpected(exit);
}

Result<VmExit> VmxVcpu::on_external_interrupt(const ExitInfo&) {
  // With "acknowledge interrupt on exit" the vector is in VM_EXIT_INTR_INFO and the interrupt
  // is already acknowledged (SDM Vol. 3C 27.2.2): run the host handler now, which also EOIs.
  const uint32_t raw = TRY(vmcs_read(hw_, F32::VM_EXIT_INTR_INFO));
  const InterruptionInfo info = InterruptionInfo::decode_exit(raw);
  if (!info.valid) return VmExit{exits::Nothing{}};
  interrupts::Frame frame{};
  frame.vector = info.vector;
  frame.cs = kKernelCodeSelector;
  frame.ss = kKernelDataSelector;
  frame.rflags = cpu::read_rflags();
  frame.rip = reinterpret_cast<uint64_t>(vmx_exit_entry);
  interrupt_dispatch(&frame);
  return VmExit{exits::ExternalInterrupt{info.vector}};
}

Result<VmExit> VmxVcpu::on_triple_fault(const ExitInfo& exit) {
  (void)stop(exit, "guest triple fault (shutdown)");
  return VmExit{exits::SystemDown{}};
}

Result<VmExit> VmxVcpu::on_interrupt_window(const ExitInfo&) {
  // The window is open: stop asking; the arbiter injects before the next entry.
  const uint32_t primary =
      primary_controls_ & ~(proc_based::kInterruptWindowExiting | proc_based::kNmiWindowExiting);
  if (primary != primary_controls_) {
    TRY(vmcs_write(hw_, F32::CPU_BASED_VM_EXEC_CONTROL, primary));
    primary_controls_ = primary;
  }
  return VmExit{exits::Nothing{}};
}

// The CPUID exit's seam (guest/cpuid_exit.h): the guest's RAX..RDX in regs_, CR4 in the VMCS,
// IA32_APIC_BASE and XCR0 as the vCPU keeps them, RIP advanced by the exit's instruction length.
struct VmxVcpu::CpuidSeam {
  VmxVcpu& vcpu;
  const ExitInfo& exit;

  [[gnu::always_inline]] uint64_t rax() { return vcpu.regs_.rax; }
  [[gnu::always_inline]] uint64_t rcx() { return vcpu.regs_.rcx; }
  [[gnu::always_inline]] void set_cpuid_result(uint64_t rax, uint64_t rbx, uint64_t rcx, uint64_t rdx) {
    vcpu.regs_.rax = rax;
    vcpu.regs_.rbx = rbx;
    vcpu.regs_.rcx = rcx;
    vcpu.regs_.rdx = rdx;
  }
  [[gnu::always_inline]] bool apic_enabled() { return (vcpu.apic_base_ & guest::kApicBaseEnable) != 0; }
  [[gnu::always_inline]] uint64_t xcr0() { return vcpu.guest_xcr0_; }
  [[gnu::always_inline]] Result<bool> cr4_osxsave() {
    return (TRY(vmcs_read(vcpu.hw_, FN::GUEST_CR4)) & kCr4Osxsave) != 0;
  }
  guest::CpuidRegisters policy_cpuid(uint32_t leaf, uint32_t subleaf, const guest::CpuidGuestInputs& inputs) {
    return vcpu.policy_cpuid(leaf, subleaf, inputs);
  }
  [[gnu::always_inline]] Result<void> complete_instruction() { return vcpu.advance_rip_inline(exit); }
};

inline Result<VmExit> VmxVcpu::on_cpuid(const ExitInfo& exit) {
  CpuidSeam seam{*this, exit};
  TRY(guest::emulate_cpuid(seam, cpuid_cache_));
  return VmExit{exits::Nothing{}};
}

// What the guest sees for (leaf, subleaf): the processor's answer under Lantern's policy.
guest::CpuidRegisters VmxVcpu::policy_cpuid(uint32_t leaf, uint32_t subleaf, const guest::CpuidGuestInputs& inputs) {
  const guest::HostXstate& x = guest::host_xstate();
  guest::CpuidOffer offer;
  offer.vcpu_id = vcpu_id_;
  lib::mem_copy(offer.signature, kCpuidHypervisorSignature, sizeof(offer.signature));
  offer.xsave = x.mode == guest::XstateMode::kXsave;
  offer.guest_xcr0 = x.guest_xcr0;
  offer.xstate_components = &x.components;
  offer.rdtscp = rdtscp_enabled_;    // "enable RDTSCP" (SDM Vol. 3C 25.3): else RDTSCP/RDPID are #UD
  offer.invpcid = invpcid_enabled_;  // "enable INVPCID": else INVPCID is #UD
  offer.tsc_adjust = tsc_offsetting_;
  offer.frequency_leaves = true;  // Linux finds the TSC and APIC timer rates in 15H/16H
  offer.tsc_hz = time::tsc_hz();
  offer.tsc_per_bus_clock = vlapic_tsc_per_bus_clock_;
  return guest::hw::guest_cpuid_on_this_cpu(leaf, subleaf, offer, inputs);
}

Result<VmExit> VmxVcpu::on_hlt(const ExitInfo& exit) {
  TRY(advance_rip_inline(exit));
  if (auto handled = TRY(vlapic_on_hlt()); handled) return *handled;  // sleeps until a vlapic timer
  return VmExit{exits::Halt{}};
}

Result<VmExit> VmxVcpu::on_skip_instruction(const ExitInfo& exit) {
  TRY(advance_rip_inline(exit));
  return VmExit{exits::Nothing{}};
}

Result<VmExit> VmxVcpu::on_vmcall(const ExitInfo& exit) {
  TRY(advance_rip_inline(exit));
  if (vm_core_ != nullptr && vm_core_->self_interrupt_hypercall != 0 &&
      regs_.rax == vm_core_->self_interrupt_hypercall) {
    if (regs_.rdi <= 0xff && TRY(inject_own_interrupt_now(static_cast<uint8_t>(regs_.rdi)))) {
      regs_.rax = 0;
      return VmExit{exits::Nothing{}};
    }
    // Queued by the owner itself: no kick, the arbiter runs before the next entry.
    Result<size_t> queued = make_error(ErrorCode::kInvalidArgument, "vector out of range");
    if (regs_.rdi <= 0xff) {
      IrqSpinlockGuard guard(events_lock_);
      queued = events_.queue_event(guest::PendingEventType::kExternalInterrupt, static_cast<uint32_t>(regs_.rdi));
    }
    if (queued) {
      arbiter_.note_queue_changed();
      arbitrate_ = true;
    }
    regs_.rax = queued ? 0 : ~uint64_t{0};
    return VmExit{exits::Nothing{}};
  }
  return VmExit{
      exits::Hypercall{regs_.rax, {regs_.rdi, regs_.rsi, regs_.rdx, regs_.rcx, regs_.r8, regs_.r9}}};
}

// The owner's own interrupt while nothing else waits for the arbiter (no queued event, no
// attention bit, no vlapic request, window, timer or sleep): when the guest can take it at the
// next entry, it goes straight into the entry slot, which is what the arbiter would decide for
// a queue holding only this event (guest::decide_injection; one event per entry, SDM Vol. 3C 26.5).
// false: the caller queues it.
Result<bool> VmxVcpu::inject_own_interrupt_now(uint8_t vector) {
  if (arbitrate_ || arbiter_.queue_pending() || attention_.load(std::memory_order_relaxed) != 0) return false;
  const Result<guest::PendingEvent> event = guest::make_pending_event(guest::PendingEventType::kExternalInterrupt, vector, std::nullopt);
  if (!event) return false;
  guest::InjectionContext context;
  context.guest_rflags = TRY(vmcs_read(hw_, FN::GUEST_RFLAGS));
  context.interruptibility = TRY(vmcs_read(hw_, F32::GUEST_INTERRUPTIBILITY_INFO));
  context.event_slot_busy = entry_event_slot_busy(TRY(vmcs_read(hw_, F32::VM_ENTRY_INTR_INFO_FIELD)));
  const guest::InjectionDecision decision = guest::decide_injection(*event, context);
  if (decision.action != guest::InjectionAction::kInjectNow) return false;
  TRY(vmcs_write(hw_, F32::VM_ENTRY_INTR_INFO_FIELD, entry_interruption_info(decision.event)));
  ++events_injected_;
  return true;
}

Result<VmExit> VmxVcpu::on_vmx_instruction(const ExitInfo&) {
  // Lantern offers no nested VMX: the instruction raises #UD in the guest (SDM Vol. 3C 25.1.3
  // lists them as unconditional exits; on hardware without VMX they are #UD).
  const uint32_t info =
      TRY(encode_entry_interruption_info(InterruptionType::kHardwareException, kVectorInvalidOpcode, false));
  TRY(vmcs_write(hw_, F32::VM_ENTRY_INTR_INFO_FIELD, info));
  return VmExit{exits::Nothing{}};
}

inline Result<VmExit> VmxVcpu::on_io(const ExitInfo& exit) {
  auto q = IoQualification::decode(exit.qualification);
  if (!q) return stop(exit, "malformed I/O exit qualification");
  if (q->string) {
    if (vm_core_ == nullptr) return stop(exit, "string I/O (INS/OUTS) needs a VM with a port bus");
    return on_string_io(exit);
  }
  if (vm_core_ != nullptr) {
    // The VM's port bus owns every port: its devices, or all-ones reads and dropped writes.
    // Devices are ordinary host code: the host's extended state goes back first.
    guest::PortDevice* device = vm_core_->ports.device_at(q->port);
    if (device != nullptr) ensure_host_xstate();
    if (q->in) {
      // IN writes AL/AX/EAX; a 32-bit write zero-extends into RAX (SDM Vol. 1 3.4.1.1).
      TRY(regs_.set_by_width(static_cast<unsigned>(guest::Gpr::kRax), q->size_bytes,
                             vm_core_->ports.read(device, q->port, q->size_bytes)));
    } else {
      const uint64_t mask = q->size_bytes == 4 ? 0xffffffffu : (uint64_t{1} << (8 * q->size_bytes)) - 1;
      vm_core_->ports.write(device, q->port, q->size_bytes, static_cast<uint32_t>(regs_.rax & mask));
    }
    TRY(advance_rip_inline(exit));
    return VmExit{exits::Nothing{}};
  }
  if (q->in) {
    pending_completion_ = PendingCompletion::kIoRead;
    pending_io_width_ = q->size_bytes;
    pending_instruction_length_ = TRY(instruction_length(exit));
    return VmExit{exits::IoRead{q->port, q->size_bytes}};
  }
  const uint64_t mask = q->size_bytes == 4 ? 0xffffffffu : (uint64_t{1} << (8 * q->size_bytes)) - 1;
  const uint32_t data = static_cast<uint32_t>(regs_.rax & mask);
  TRY(advance_rip_inline(exit));
  return VmExit{exits::IoWrite{q->port, q->size_bytes, data}};
}

Result<void> VmxVcpu::complete_io_read(uint32_t value) {
  if (pending_completion_ != PendingCompletion::kIoRead) {
    return make_error(ErrorCode::kInvalidState, "no IoRead exit is waiting for completion");
  }
  if (bound_cpu_ < 0 || static_cast<uint32_t>(bound_cpu_) != this_cpu().index) {
    return make_error(ErrorCode::kInvalidState, "vCPU is not bound to this core");
  }
  // IN writes AL/AX/EAX; a 32-bit write zero-extends into RAX (SDM Vol. 1 3.4.1.1).
  TRY(regs_.set_by_width(static_cast<unsigned>(guest::Gpr::kRax), pending_io_width_, value));
  cpu::InterruptsOff irq_off;
  const uint64_t rip = TRY(vmcs_read(hw_, FN::GUEST_RIP));
  TRY(advance_rip(ExitInfo{0, 0, 0, rip, pending_instruction_length_}));
  pending_completion_ = PendingCompletion::kNone;
  return ok();
}

// MSRs the vCPU emulates (guest::core_emulates_msr() and its own, IA32_EFER and IA32_XSS) may
// log or send IPIs: they run with the host's extended state. Only the unknown-MSR policy keeps
// the guest's loaded.
bool VmxVcpu::msr_emulated(uint32_t msr) {
  switch (msr) {
    case kMsrIa32Efer:
    case guest::kMsrIa32Xss: return true;
    default: return guest::core_emulates_msr(msr);
  }
}

// Out of line: the emulation is the cold side of an MSR exit, and inlined it would grow the
// frame of the exit path every exit shares.
Result<VmExit> VmxVcpu::emulate_msr(const ExitInfo& exit, uint32_t msr, bool write, uint64_t value) {
  ensure_host_xstate();
  MsrSeam seam{*this};
  const guest::MsrOutcome outcome =
      write ? TRY(guest::emulate_msr_write(seam, msr, value)) : TRY(guest::emulate_msr_read(seam, msr));
  if (outcome.action == guest::MsrAction::kNotEmulated) return unknown_msr(exit, msr, write, value);
  if (outcome.action == guest::MsrAction::kGp) {
    LOG_DEBUG("vmx: vm%u vcpu%u: %s 0x%x (0x%llx) -> #GP: %s", vm_id_, vcpu_id_, write ? "WRMSR" : "RDMSR", msr,
              static_cast<unsigned long long>(value), outcome.gp_reason != nullptr ? outcome.gp_reason : "refused");
    TRY(inject_exception_now(kVectorGeneralProtection, 0));  // RIP stays on the instruction (a fault)
    return VmExit{exits::Nothing{}};
  }
  if (!write) {
    // RDMSR loads EDX:EAX, clearing the upper halves of RDX and RAX (SDM Vol. 2B RDMSR).
    regs_.rax = static_cast<uint32_t>(outcome.value);
    regs_.rdx = static_cast<uint32_t>(outcome.value >> 32);
  }
  TRY(advance_rip(exit));
  return VmExit{exits::Nothing{}};
}

// An MSR nobody emulates (guest::unknown_msr_action() by the VM's policy; without a VM, the
// caller's): #GP, read 0 / write dropped, or MsrRead/MsrWrite to the caller.
inline Result<VmExit> VmxVcpu::unknown_msr(const ExitInfo& exit, uint32_t msr, bool write, uint64_t value) {
  const guest::UnknownMsrPolicy policy = vm_core_ != nullptr ? vm_core_->unknown_msrs : guest::UnknownMsrPolicy::kToCaller;
  const guest::MsrAction action = guest::unknown_msr_action(policy, MsrSeam::kReturnsUnknownMsrsToCaller);
  if (action == guest::MsrAction::kGp) {
    TRY(inject_exception_now(kVectorGeneralProtection, 0));  // RIP stays on the instruction (a fault)
    return VmExit{exits::Nothing{}};
  }
  if (action == guest::MsrAction::kDone) {
    if (!write) {
      regs_.rax = 0;  // RDMSR loads EDX:EAX (SDM Vol. 2B RDMSR)
      regs_.rdx = 0;
    }
    TRY(advance_rip_inline(exit));
    return VmExit{exits::Nothing{}};
  }
  if (!write) {
    pending_completion_ = PendingCompletion::kMsrRead;
    pending_instruction_length_ = TRY(instruction_length(exit));
    return VmExit{exits::MsrRead{msr}};
  }
  TRY(advance_rip_inline(exit));
  return VmExit{exits::MsrWrite{msr, value}};
}

inline Result<VmExit> VmxVcpu::on_msr_read(const ExitInfo& exit) {
  const uint32_t msr = static_cast<uint32_t>(regs_.rcx);
  if (msr_emulated(msr)) return emulate_msr(exit, msr, false, 0);
  return unknown_msr(exit, msr, false, 0);
}

Result<void> VmxVcpu::complete_msr_read(uint64_t value) {
  if (pending_completion_ != PendingCompletion::kMsrRead) {
    return make_error(ErrorCode::kInvalidState, "no MsrRead exit is waiting for completion");
  }
  if (bound_cpu_ < 0 || static_cast<uint32_t>(bound_cpu_) != this_cpu().index) {
    return make_error(ErrorCode::kInvalidState, "vCPU is not bound to this core");
  }
  // RDMSR loads EDX:EAX, clearing the upper halves of RDX and RAX (SDM Vol. 2B RDMSR).
  TRY(regs_.set32(guest::Gpr::kRax, static_cast<uint32_t>(value)));
  TRY(regs_.set32(guest::Gpr::kRdx, static_cast<uint32_t>(value >> 32)));
  cpu::InterruptsOff irq_off;
  const uint64_t rip = TRY(vmcs_read(hw_, FN::GUEST_RIP));
  TRY(advance_rip(ExitInfo{0, 0, 0, rip, pending_instruction_length_}));
  pending_completion_ = PendingCompletion::kNone;
  return ok();
}

Result<VmExit> VmxVcpu::on_msr_write(const ExitInfo& exit) {
  const uint32_t msr = static_cast<uint32_t>(regs_.rcx);
  const uint64_t value = (regs_.rdx << 32) | (regs_.rax & 0xffffffffu);  // EDX:EAX (SDM Vol. 2B WRMSR)
  if (msr_emulated(msr)) return emulate_msr(exit, msr, true, value);
  return unknown_msr(exit, msr, true, value);
}

Result<VmExit> VmxVcpu::on_ept_violation(const ExitInfo& exit) {
  const uint64_t gpa = TRY(vmcs_read(hw_, F64::GUEST_PHYSICAL_ADDRESS));
  const EptViolationQualification q = EptViolationQualification::decode(exit.qualification);
  uint8_t access = 0;
  if (q.read) access |= guest::kAccessRead;
  if (q.write) access |= guest::kAccessWrite;
  if (q.fetch) access |= guest::kAccessExecute;
  if (auto handled = TRY(vlapic_mmio(exit, gpa, q.write)); handled) return *handled;  // the xAPIC page
  if (auto handled = TRY(device_mmio(exit, gpa, q.write)); handled) return *handled;  // the VM's devices
  return VmExit{exits::NestedPageFault{gpa, access}};
}

Result<VmExit> VmxVcpu::on_preemption_timer(const ExitInfo&) {
  if (arbiter_.halted_in_guest()) {
    // The wake-up time has come: the guest continues after its HLT (RIP was already advanced).
    TRY(vmcs_write(hw_, F32::GUEST_ACTIVITY_STATE, kActivityActive));
    TRY(set_preemption_timer(0));
    arbiter_.resume_from_hlt();
  } else if (return_backstop_ != 0) {
    // The guest ran a whole backstop period (or up to a vlapic deadline) without another exit:
    // the caller gets its turn (host interrupts Bochs did not turn into exits, its mailbox).
    return_requested_.store(true, std::memory_order_relaxed);
  }
  return VmExit{exits::Nothing{}};
}

}  // namespace lantern::vmx

namespace lantern::vmx {

Result<VmExit> VmxVcpu::on_xsetbv(const ExitInfo& exit) {
  // XSETBV always exits (SDM Vol. 3C 25.1.2); CPL and CR4.OSXSAVE were checked by the processor
  // before the exit (25.1.1). The value is checked against what the host lets guests enable.
  const uint32_t index = static_cast<uint32_t>(regs_.rcx);
  const uint64_t value = (regs_.rdx << 32) | (regs_.rax & 0xffffffffu);
  const guest::HostXstate& x = guest::host_xstate();
  const uint64_t allowed = x.mode == guest::XstateMode::kXsave ? x.guest_xcr0 : 0;
  const guest::XsetbvFault fault = guest::check_xsetbv(index, value, allowed);
  if (fault != guest::XsetbvFault::kOk) {
    LOG_DEBUG("vmx: vm%u vcpu%u: XSETBV(%u, 0x%llx) -> #GP: %s", vm_id_, vcpu_id_, index,
              static_cast<unsigned long long>(value), guest::xsetbv_fault_name(fault));
    TRY(inject_exception_now(kVectorGeneralProtection, 0));
    return VmExit{exits::Nothing{}};
  }
  guest_xcr0_ = value;  // loaded by switch_to_guest_xstate() at the next entry
  TRY(advance_rip(exit));
  return VmExit{exits::Nothing{}};
}

Result<VmExit> VmxVcpu::on_cr_access(const ExitInfo& exit) {
  // Exit qualification for control-register accesses: SDM Vol. 3C 27.2.1, Table 27-3.
  auto q = CrAccessQualification::decode(exit.qualification);
  if (!q) return stop(exit, "malformed CR-access exit qualification");
  auto read_gpr = [this](uint8_t gpr) -> Result<uint64_t> {
    if (gpr == static_cast<uint8_t>(guest::Gpr::kRsp)) return vmcs_read(hw_, FN::GUEST_RSP);
    return regs_.get_reg_of_index(gpr);
  };
  // 64-bit operands in 64-bit mode, 32-bit otherwise (SDM Vol. 2B MOV CR).
  const uint64_t kOperandMask = TRY(guest_cr_operand_mask());
  if (q->access_type == CrAccessType::kMovToCr && (q->cr == 0 || q->cr == 4)) {
    const uint64_t value = TRY(read_gpr(q->gpr)) & kOperandMask;
    CrWriteContext context;
    CrWriteResult result;
    if (q->cr == 0) {
      context.fixed0 = cpu::rdmsr(kMsrVmxCr0Fixed0);
      context.fixed1 = cpu::rdmsr(kMsrVmxCr0Fixed1);
      context.guest_owned = kCr0Pe | kCr0Pg;  // unrestricted guest (SDM Vol. 3C 26.3.1.1)
      context.emulated = kCr0EmulatedCaching;
      result = evaluate_cr0_write(context, value);
    } else {
      context.fixed0 = cpu::rdmsr(kMsrVmxCr4Fixed0);
      context.fixed1 = cpu::rdmsr(kMsrVmxCr4Fixed1);
      context.forbidden = kCr4VmxeBit | kCr4SmxeBit;  // no nested VMX/SMX: CPUID hides them
      result = evaluate_cr4_write(context, value);
    }
    if (result.gp) {
      LOG_DEBUG("vmx: vm%u vcpu%u: MOV to CR%u 0x%llx -> #GP: %s", vm_id_, vcpu_id_, q->cr,
                static_cast<unsigned long long>(value), result.reason);
      TRY(inject_exception_now(kVectorGeneralProtection, 0));
      return VmExit{exits::Nothing{}};
    }
    const uint64_t old_value = TRY(vmcs_read(hw_, q->cr == 0 ? FN::GUEST_CR0 : FN::GUEST_CR4));
    if (q->cr == 0 && !TRY(apply_paging_transition(old_value, result.guest_value))) {
      return VmExit{exits::Nothing{}};
    }
    const uint64_t cr0_after = q->cr == 0 ? result.guest_value : TRY(vmcs_read(hw_, FN::GUEST_CR0));
    const uint64_t cr4_after = q->cr == 4 ? result.guest_value : TRY(vmcs_read(hw_, FN::GUEST_CR4));
    auto loaded = load_pae_pdptes(q->cr, old_value, result.guest_value, cr0_after, cr4_after,
                                  TRY(vmcs_read(hw_, FN::GUEST_CR3)));
    if (!loaded) return stop(exit, loaded.error().message);
    if (!*loaded) return VmExit{exits::Nothing{}};
    TRY(vmcs_write(hw_, q->cr == 0 ? FN::GUEST_CR0 : FN::GUEST_CR4, result.guest_value));
    TRY(vmcs_write(hw_, q->cr == 0 ? FN::CR0_READ_SHADOW : FN::CR4_READ_SHADOW, result.read_shadow));
    TRY(advance_rip(exit));
    return VmExit{exits::Nothing{}};
  }
  if (q->cr == 3 && q->access_type == CrAccessType::kMovToCr) {
    // Only when the CPU forces CR3-load exiting: with EPT the guest's CR3 is its own.
    const uint64_t old_cr3 = TRY(vmcs_read(hw_, FN::GUEST_CR3));
    const uint64_t new_cr3 = TRY(read_gpr(q->gpr)) & kOperandMask;
    auto loaded = load_pae_pdptes(3, old_cr3, new_cr3, TRY(vmcs_read(hw_, FN::GUEST_CR0)),
                                  TRY(vmcs_read(hw_, FN::GUEST_CR4)), new_cr3);
    if (!loaded) return stop(exit, loaded.error().message);
    if (!*loaded) return VmExit{exits::Nothing{}};
    TRY(vmcs_write(hw_, FN::GUEST_CR3, new_cr3));
    TRY(advance_rip(exit));
    return VmExit{exits::Nothing{}};
  }
  if (q->cr == 3 && q->access_type == CrAccessType::kMovFromCr) {
    // RSP lives in the VMCS, not in the saved general registers.
    const uint64_t cr3 = TRY(vmcs_read(hw_, FN::GUEST_CR3)) & kOperandMask;
    if (q->gpr == static_cast<uint8_t>(guest::Gpr::kRsp)) {
      TRY(vmcs_write(hw_, FN::GUEST_RSP, cr3));
    } else {
      TRY(regs_.set_reg_of_index(q->gpr, cr3));
    }
    TRY(advance_rip(exit));
    return VmExit{exits::Nothing{}};
  }
  if (q->cr == 8 && (q->access_type == CrAccessType::kMovToCr || q->access_type == CrAccessType::kMovFromCr)) {
    // CR8 (64-bit mode only) is the vlapic's TPR[7:4] (SDM Vol. 3A 11.8.6.1).
    if (q->access_type == CrAccessType::kMovToCr) {
      const uint64_t value = TRY(read_gpr(q->gpr));
      if ((value & ~uint64_t{0xF}) != 0) {  // CR8 bits 63:4 are reserved (SDM Vol. 2B MOV CR: #GP(0))
        TRY(inject_exception_now(kVectorGeneralProtection, 0));
        return VmExit{exits::Nothing{}};
      }
      vlapic_.write_cr8(value);  // a lower TPR may let a pending interrupt in: arbitrated before the entry
    } else if (q->gpr == static_cast<uint8_t>(guest::Gpr::kRsp)) {
      TRY(vmcs_write(hw_, FN::GUEST_RSP, vlapic_.cr8()));
    } else {
      TRY(regs_.set_reg_of_index(q->gpr, vlapic_.cr8()));
    }
    TRY(advance_rip(exit));
    return VmExit{exits::Nothing{}};
  }
  // CLTS/LMSW never exit under Lantern's masks (TS is the guest's, LMSW cannot reach NE): stop
  // this vCPU with the reason, never the host.
  return stop(exit, "unsupported control-register access (CLTS or LMSW)");
}

}  // namespace lantern::vmx
