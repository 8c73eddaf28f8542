#include "svm/hw/svm_guest_vcpu.h"

#include <new>

#include "guest/hw/locked_event_queue.h"
#include "guest/hw/cpuid_hw.h"
#include "guest/cpuid_exit.h"
#include "guest/platform_msrs.h"
#include "guest/run_loop.h"
#include "svm/hw/svm_msr_seam.h"
#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/time.h"
#include "kernel/lib/string.h"
#include "svm/cr4_write.h"
#include "svm/event_injection.h"
#include "svm/exit_code.h"
#include "svm/exit_info.h"
#include "svm/hw/svm_operation.h"
#include "svm/permission_maps.h"
#include "svm/vmcb_controls.h"
#include "svm/vmcb_reset.h"
#include "guest/hw/guest_vm.h"
#include "guest/hw/xstate_hw.h"

extern "C" void svm_vmrun(uint64_t guest_vmcb_pa, uint64_t host_vmcb_pa, lantern::svm::SvmGuestGprs* gprs);

namespace lantern::svm {
namespace {

std::atomic<uint32_t> g_vcpus_started{0};

constexpr uint64_t kIopmPages = kIopmBytes / paging::kPageSize;
constexpr uint64_t kMsrpmPages = kMsrpmBytes / paging::kPageSize;

constexpr uint64_t kCr0Pe = 1u << 0;  // CR0.PE, protected mode (APM Vol. 2 3.1.1)


// INTERCEPT_VECTOR_4 bit 13: XSETBV (APM Table B-1). Guests get no XSAVE (CPUID hides it), so
// XSETBV answers #UD and can never change the host's XCR0.
constexpr uint32_t kInterceptXsetbv = 1u << 13;
// INTERCEPT_CR_WRITES bit 4: MOV to CR4 (APM Table B-1, offset 02h).
constexpr uint16_t kInterceptCr4Write = 1u << 4;
constexpr uint64_t kVmexitXsetbv = 0x8d;  // APM Table C-1
constexpr uint64_t kVmexitSkinit = 0x86;
constexpr uint64_t kVmexitVmload = 0x82;
constexpr uint64_t kVmexitVmsave = 0x83;
constexpr uint64_t kVmexitStgi = 0x84;
constexpr uint64_t kVmexitClgi = 0x85;

// IA32_APIC_BASE (SDM Vol. 3A 11.4.4): BSP bit 8, EXTD bit 10, EN bit 11.
using guest::kApicBaseBsp;
using guest::kApicBaseDefault;
using guest::kApicBaseEnable;
// The vlapic timer's bus clock: the TSC divided down to at most this rate (as the VMX backend).
constexpr uint64_t kNominalBusHz = 100'000'000;

// Lantern's signature at CPUID 0x40000000 under SVM (guest/cpuid_policy.h); the demo and bench
// guests pick VMMCALL over VMCALL by it.
constexpr char kCpuidHypervisorSignature[13] = "LanternSVMhv";

class FrameAllocatorPages {
 public:
  static Result<uint64_t> zeroed(uint64_t pages) {
    const uint64_t phys = TRY(memory::alloc_contiguous(pages, paging::kPageSize));
    lib::mem_set(paging::phys_to_ptr<void>(phys), 0, pages * paging::kPageSize);
    return phys;
  }
};

}  // namespace

uint32_t svm_vcpus_started() {
  return g_vcpus_started.load(std::memory_order_relaxed);
}

Result<SvmVcpu*> SvmVcpu::create(guest::Vm& vm, uint32_t vcpu_id, uint64_t n_cr3, uint64_t rip,
                                 uint64_t rsp) {
  if (!this_cpu_in_svm_operation())
    return make_error(ErrorCode::kUnsupported, "this core is not in SVM operation");
  void* mem = kmalloc(sizeof(SvmVcpu), 64);
  if (mem == nullptr) return make_error(ErrorCode::kOutOfMemory, "no memory for an SVM vCPU");
  auto* vcpu = new (mem) SvmVcpu(vm, vcpu_id);
  if (auto r = vcpu->setup(n_cr3, rip, rsp); !r) {
    destroy(vcpu);
    return r.error();
  }
  g_vcpus_started.fetch_add(1, std::memory_order_relaxed);
  return vcpu;
}

void SvmVcpu::destroy(SvmVcpu* vcpu) {
  if (vcpu == nullptr) return;
  vcpu->release();
  vcpu->~SvmVcpu();
  kfree(vcpu);
}

void SvmVcpu::release() {
  if (iopm_phys_ != 0) (void)memory::free_contiguous(iopm_phys_, kIopmPages);
  if (msrpm_phys_ != 0) (void)memory::free_contiguous(msrpm_phys_, kMsrpmPages);
  if (vmcb_phys_ != 0) (void)memory::free_contiguous(vmcb_phys_, 1);
  if (host_vmcb_phys_ != 0) (void)memory::free_contiguous(host_vmcb_phys_, 1);
  iopm_phys_ = msrpm_phys_ = vmcb_phys_ = host_vmcb_phys_ = 0;
  vmcb_ = nullptr;
}

Result<void> SvmVcpu::setup(uint64_t n_cr3, uint64_t rip, uint64_t rsp) {
  vmcb_phys_ = TRY(FrameAllocatorPages::zeroed(1));
  host_vmcb_phys_ = TRY(FrameAllocatorPages::zeroed(1));
  iopm_phys_ = TRY(FrameAllocatorPages::zeroed(kIopmPages));
  msrpm_phys_ = TRY(FrameAllocatorPages::zeroed(kMsrpmPages));
  intercept_all_io(paging::phys_to_ptr<uint8_t>(iopm_phys_));
  intercept_all_msrs(paging::phys_to_ptr<uint8_t>(msrpm_phys_));
  bound_cpu_ = static_cast<int32_t>(this_cpu().index);

  uint64_t ratio = time::tsc_hz() / kNominalBusHz;
  if (ratio == 0) ratio = 1;
  if (ratio > guest::VirtualLapic::kMaxTscPerBusClock) ratio = guest::VirtualLapic::kMaxTscPerBusClock;
  tsc_per_bus_clock_ = static_cast<uint32_t>(ratio);
  vlapic_ = guest::VirtualLapic(vcpu_id_, tsc_per_bus_clock_);
  // Power-up (SDM 11.4.4): enabled, xAPIC mode, default base; vCPU 0 is the bootstrap processor.
  apic_base_ = kApicBaseDefault | kApicBaseEnable | (vcpu_id_ == 0 ? kApicBaseBsp : 0);

  reset_emulated_state();

  vmcb_ = paging::phys_to_ptr<Vmcb>(vmcb_phys_);
  VmcbStart start;
  start.iopm_pa = iopm_phys_;
  start.msrpm_pa = msrpm_phys_;
  start.asid = allocate_asid();
  start.n_cr3 = n_cr3;
  start.extra_intercept_vector_4 = kInterceptXsetbv;
  start.rip = rip;
  start.rsp = rsp;
  reset_vmcb_to_real_mode(*vmcb_, start);
  // MOV to CR4 is emulated (svm/cr4_write.h): INTERCEPT_CR_WRITES bit 4 (APM Table B-1, offset 02h).
  vmcb_->control.intercept_cr_writes = kInterceptCr4Write;
  // The features CR4's bits depend on: leaves 01H and (07H, 0) as the guest sees them.
  const guest::CpuidRegisters leaf1 = guest_cpuid(1, 0);
  const guest::CpuidRegisters leaf7 = guest_cpuid(7, 0);
  cr4_allowed_ = cr4_allowed_bits(Cr4CpuidView{leaf1.ecx, leaf1.edx, leaf7.ebx, leaf7.ecx});
  return ok();
}

// ---- Events ---------------------------------------------------------------------------------

Result<size_t> SvmVcpu::queue_event(guest::PendingEventType type, uint32_t vector,
                                    std::optional<uint32_t> error_code) {
  size_t position = 0;
  {
    IrqSpinlockGuard guard(events_lock_);
    position = TRY(events_.queue_event(type, vector, error_code));
  }
  attention_.fetch_or(kAttentionEvents, std::memory_order_release);
  kick_owner();
  return position;
}

guest::PendingEventSnapshot SvmVcpu::pending_events() const {
  IrqSpinlockGuard guard(events_lock_);
  return events_.snapshot();
}

size_t SvmVcpu::pending_event_count() const {
  IrqSpinlockGuard guard(events_lock_);
  return events_.size();
}

void SvmVcpu::kick_owner() {
  // The wake-up IPI is a host interrupt: a running guest exits (INTR intercept, APM 15.13.1)
  // and a halted core wakes; either way the loop re-enters through run().
  PerCpu* self = this_cpu_or_null();
  if (bound_cpu_ >= 0 && (self == nullptr || self->index != static_cast<uint32_t>(bound_cpu_))) {
    if (PerCpu* target = cpu_by_index(static_cast<uint32_t>(bound_cpu_)); target != nullptr) {
      apic::send_fixed_ipi(target->apic_id, interrupts::kVectorWakeup);
    }
  }
}

bool SvmVcpu::hlt_can_end() {
  std::optional<guest::PendingEvent> head;
  {
    IrqSpinlockGuard guard(events_lock_);
    head = events_.peek();
  }
  return arbiter_.hlt_can_end(vmcb_->save.rflags, head, vlapic_.highest_deliverable());
}

bool SvmVcpu::newest_exit_from_host() const {
  const uint64_t newest = ring_[(ring_next_ + kExitRingSize - 1) % kExitRingSize].exitcode;
  return newest == kVmexitIntr || newest == kVmexitNmi;
}

// The arbiter's seam onto this VMCB (guest/event_arbiter.h): the entry's event slot is EVENTINJ
// (APM 15.20); the windows are V_IRQ + the VINTR intercept (15.21.4) and the IRET intercept
// (15.21.6), collected here and applied after the pass. A HLT never sleeps in the guest here,
// and a vCPU waiting for a SIPI never reaches the pass (pre_enter() keeps it out of the guest).
struct SvmVcpu::ArbiterSeam {
  SvmVcpu& vcpu;
  bool interrupt_window = false;
  bool nmi_window = false;

  Result<guest::InjectionContext> injection_context() {
    SvmInjectionContext context;
    context.guest_rflags = vcpu.vmcb_->save.rflags;
    context.interrupt_shadow = (vcpu.vmcb_->control.interrupt_shadow & kInterruptShadow) != 0;
    context.nmi_blocked = vcpu.nmi_blocked_;
    context.eventinj_busy = (vcpu.vmcb_->control.eventinj & event_bits::kValid) != 0;
    return injection_context_for(context);
  }
  Result<bool> reinject_interrupted_event() {
    if (!vcpu.reinject_) return false;
    vcpu.vmcb_->control.eventinj = *vcpu.reinject_;  // what the last exit interrupted (APM 15.7.2)
    vcpu.reinject_.reset();
    return true;
  }
  guest::LockedEventQueue lock_queue() {
    return guest::LockedEventQueue{IrqSpinlockGuard(vcpu.events_lock_), vcpu.events_};
  }
  Result<void> inject(const guest::PendingEvent& event, guest::EventSource source) {
    vcpu.vmcb_->control.eventinj = TRY(eventinj_for_accepted(event));
    if (source == guest::EventSource::kQueue) ++vcpu.events_injected_;
    if (event.type == guest::PendingEventType::kNmi) vcpu.nmi_blocked_ = true;  // until its IRET
    return ok();
  }
  void request_interrupt_window() { interrupt_window = true; }
  void request_nmi_window() { nmi_window = true; }
  Result<void> wake_from_hlt() { return ok(); }
  Result<void> stay_in_hlt() { return ok(); }
  Result<void> hold_in_wait_for_sipi() { return ok(); }
};

Result<void> SvmVcpu::arbitrate_events() {
  vlapic_.poll_timer(cpu::rdtsc());  // an expired timer's vector is in the IRR before the pass
  guest::EventArbiter::Pass pass;
  pass.exits = total_exits_;
  pass.newest_exit_from_host = newest_exit_from_host();
  pass.queue_may_have_events = false;  // queue changes arrive as note_queue_changed()
  pass.waiting_for_sipi = wait_for_sipi_;
  ArbiterSeam seam{*this};
  TRY(arbiter_.arbitrate(seam, vlapic_, pass));

  // Windows: the interrupt window is V_IRQ + the VINTR intercept (APM 15.21.4). The NMI window
  // is the IRET intercept while the handler runs (15.21.6), then a single step over the IRET
  // (svm/event_injection.h): its #DB exit comes right after the IRET, whatever IF it restores.
  VmcbControlArea& c = vmcb_->control;
  c.virtual_interrupt_control = seam.interrupt_window ? with_interrupt_window(c.virtual_interrupt_control)
                                                      : without_interrupt_window(c.virtual_interrupt_control);
  if (seam.nmi_window && nmi_unblock_pending_ && !iret_single_step_) {
    rflags_before_iret_step_ = vmcb_->save.rflags;
    vmcb_->save.rflags = rflags_for_iret_single_step(vmcb_->save.rflags);
    c.intercept_exceptions |= kInterceptDebug;
    iret_single_step_ = true;
  }
  if ((seam.nmi_window || nmi_blocked_) && !nmi_unblock_pending_) {
    c.intercept_vector_3 |= intercept3::kIret;
  } else {
    c.intercept_vector_3 &= ~intercept3::kIret;
  }
  return ok();
}

Result<void> SvmVcpu::inject_exception(uint8_t vector, std::optional<uint32_t> error_code) {
  // Real mode pushes no error code (SDM Vol. 3A 20.1.4 / APM Vol. 2 8.4).
  if ((vmcb_->save.cr0 & kCr0Pe) == 0) error_code.reset();
  EventInjection e;
  e.vector = vector;
  e.type = EventType::kException;
  e.error_code_valid = error_code.has_value();
  e.error_code = error_code.value_or(0);
  vmcb_->control.eventinj = TRY(encode_eventinj(e));
  // EVENTINJ delivers the event with the save area's RFLAGS (APM 15.20): a fault found while
  // emulating an instruction pushes RF set, as the processor's own faults do (guest/pending_events.h).
  vmcb_->save.rflags = guest::rflags_for_injected_exception(vmcb_->save.rflags, vector);
  return ok();
}

// ---- The run loop ------------------------------------------------------------------------------

// run()'s steps for guest::run_vcpu() (guest/run_loop.h). SVM has no preemption timer, and Bochs
// takes no INTR exit for the wake-up IPI while the guest's RFLAGS.IF is 0: a guest whose exits
// are all handled inside (a UART polled with interrupts off) still gives its core a turn for
// host and mailbox work (console captures, a reset) after kHandledExitsPerTurn exits.
struct SvmVcpu::RunLoopSeam {
  using Exit = SvmVcpu::Exit;
  using Outcome = SvmRunOutcome;
  static constexpr uint32_t kHandledExitsPerTurn = 256;
  SvmVcpu& vcpu;

  Result<bool> pre_enter() { return vcpu.pre_enter(); }
  SvmRunOutcome outcome_without_entry() { return SvmRunOutcome::kHalted; }
  Result<void> enter_and_decode(Exit& exit) { return vcpu.enter_and_decode(exit); }
  Result<SvmRunOutcome> dispatch(Exit& exit) { return (vcpu.*handler_for(exit.exitcode))(exit); }
  bool handled_inside(SvmRunOutcome outcome) { return outcome == SvmRunOutcome::kHandled; }
  void post_exit() {}  // run() publishes at its return, at least every kHandledExitsPerTurn exits
  bool leave_requested() { return vcpu.vm_.run_loop_must_return(); }
};

Result<SvmRunOutcome> SvmVcpu::run() {
  if (stopped()) return SvmRunOutcome::kStopped;
  RunLoopSeam seam{*this};
  Result<SvmRunOutcome> outcome = guest::run_vcpu(seam);
  if (!outcome && !stopped()) {
    stop_message_ = "the SVM backend failed to handle an exit";
    LOG_ERROR("svm: vm%u vcpu%u: %s: %s (%s, detail %llu); the vCPU stops", vm_.vm_id, vcpu_id_,
              stop_message_, outcome.error().message, error_code_name(outcome.error().code),
              static_cast<unsigned long long>(outcome.error().detail));
  }
  publish_state();
  log_dropped_host_debug_traps();
  return outcome;
}

// Before an entry: what other cores posted (INIT/SIPI, vectors, queue changes); a vCPU in HLT
// or waiting for a SIPI sleeps on this core until a host interrupt unless an event ends the
// HLT (false: no entry this time); then the arbiter's pass.
Result<bool> SvmVcpu::pre_enter() {
  const uint32_t attention = attention_.exchange(0, std::memory_order_acq_rel);
  if ((attention & kAttentionPosted) != 0) take_posted_interrupts();
  if ((attention & kAttentionEvents) != 0) arbiter_.note_queue_changed();  // queue_event() from any core
  if (wait_for_sipi_ || arbiter_.halted()) {
    vlapic_.poll_timer(cpu::rdtsc());
    if (wait_for_sipi_ || !hlt_can_end()) {
      // Sleep until the next host interrupt (the 100 Hz tick, a wake-up IPI, the NIC); STI's
      // shadow covers HLT, so an interrupt between the check and HLT still wakes the core.
      cpu::disable_interrupts();
      if (attention_.load(std::memory_order_acquire) == 0) cpu::enable_interrupts_and_halt();
      cpu::enable_interrupts();
      return false;
    }
  }
  TRY(arbitrate_events());
  return true;
}

// VMRUN with the guest's CR8 and x87/SSE state, then the exit as the handlers see it (recorded
// in the ring). A host interrupt that caused VMEXIT_INTR is taken when interrupts come back on.
Result<void> SvmVcpu::enter_and_decode(Exit& exit) {
  VmcbControlArea& c = vmcb_->control;
  // The guest's CR8 is V_TPR (V_INTR_MASKING, APM 15.21.4) and also the vlapic's TPR[7:4] (SDM
  // Vol. 3A 11.8.6.1): V_TPR carries the vlapic's value in, and a CR8 write the guest made comes
  // back into the vlapic, whose TPR decides what the arbiter delivers.
  const uint64_t cr8_in = vlapic_.cr8();
  c.virtual_interrupt_control = (c.virtual_interrupt_control & ~vintr::kTprMask) | cr8_in;
  {
    cpu::InterruptsOff irq_off;
    guest::hw::fxsave(host_fx_);
    guest::hw::fxrstor(guest_fx_);
    svm_vmrun(vmcb_phys_, host_vmcb_phys_, &gprs_);
    guest::hw::fxsave(guest_fx_);
    guest::hw::fxrstor(host_fx_);
  }
  launched_ = true;
  if (const uint64_t cr8_out = c.virtual_interrupt_control & 0xf; cr8_out != cr8_in) vlapic_.write_cr8(cr8_out);
  c.tlb_control = kTlbControlDoNothing;
  exit = Exit{c.exitcode, c.exitinfo1, c.exitinfo2, c.exitintinfo, vmcb_->save.rip};
  // EVENTINJ is consumed by VMRUN; what was not delivered is in EXITINTINFO (APM 15.20, 15.7.2).
  c.eventinj = 0;
  reinject_ = reinjection_from_exitintinfo(exit.exitintinfo);
  if (nmi_unblock_pending_ && exit.rip != iret_rip_) {
    nmi_blocked_ = false;  // the NMI handler's IRET has completed
    nmi_unblock_pending_ = false;
  }
  record_exit(exit);
  return ok();
}

SvmVcpu::Handler SvmVcpu::handler_for(uint64_t exitcode) {
  if (is_vmexit_invalid(exitcode)) return &SvmVcpu::on_unexpected;
  switch (exitcode) {
    case kVmexitIntr:
    case kVmexitNmi: return &SvmVcpu::on_host_interrupt;
    case kVmexitInit: return &SvmVcpu::on_init;
    case kVmexitVintr: return &SvmVcpu::on_vintr;
    case kVmexitIret: return &SvmVcpu::on_iret;
    case kVmexitExcp0 + kVectorDebug: return &SvmVcpu::on_debug_exception;
    case kVmexitCpuid: return &SvmVcpu::on_cpuid;
    case kVmexitHlt: return &SvmVcpu::on_hlt;
    case kVmexitIoio: return &SvmVcpu::on_ioio;
    case kVmexitMsr: return &SvmVcpu::on_msr;
    case kVmexitVmmcall: return &SvmVcpu::on_vmmcall;
    case kVmexitVmrun:
    case kVmexitVmload:
    case kVmexitVmsave:
    case kVmexitStgi:
    case kVmexitClgi:
    case kVmexitSkinit:
    case kVmexitXsetbv: return &SvmVcpu::on_undefined_opcode;
    case kVmexitShutdown: return &SvmVcpu::on_shutdown;
    case kVmexitNpf: return &SvmVcpu::on_npf;
    case kVmexitCr4Write: return &SvmVcpu::on_cr4_write;
    default: return &SvmVcpu::on_unexpected;
  }
}

void SvmVcpu::record_exit(const Exit& exit) {
  uint64_t& count = exit_counts_[exit_count_slot(exit.exitcode)];
  __atomic_store_n(&count, count + 1, __ATOMIC_RELAXED);  // single writer; see exit_count_slot_relaxed()
  ++total_exits_;
  ring_[ring_next_] = SvmExitRecord{exit.exitcode, exit.exitinfo1, exit.exitinfo2, exit.rip, cpu::rdtsc()};
  ring_next_ = (ring_next_ + 1) % kExitRingSize;
}

void SvmVcpu::publish_state() {
  published_.store(total_exits_, ring_[(ring_next_ + kExitRingSize - 1) % kExitRingSize].exitcode, events_injected_,
                   launched_, arbiter_.halted(), wait_for_sipi_, stop_message_);
}

void SvmVcpu::capture(SvmCapture& out) const {
  out.vm = vm_.vm_id;
  out.vcpu = vcpu_id_;
  out.cpu = bound_cpu_;
  out.launched = launched_;
  out.halted = arbiter_.halted();
  out.parked = wait_for_sipi_;
  out.stopped = stopped();
  out.stop_message = stop_message_;
  out.regs = guest::GeneralRegisters{};
  out.regs.rax = vmcb_->save.rax;
  out.regs.rbx = gprs_.rbx;
  out.regs.rcx = gprs_.rcx;
  out.regs.rdx = gprs_.rdx;
  out.regs.rsi = gprs_.rsi;
  out.regs.rdi = gprs_.rdi;
  out.regs.rbp = gprs_.rbp;
  out.regs.r8 = gprs_.r8;
  out.regs.r9 = gprs_.r9;
  out.regs.r10 = gprs_.r10;
  out.regs.r11 = gprs_.r11;
  out.regs.r12 = gprs_.r12;
  out.regs.r13 = gprs_.r13;
  out.regs.r14 = gprs_.r14;
  out.regs.r15 = gprs_.r15;
  lib::mem_copy(&out.vmcb, vmcb_, sizeof(Vmcb));
  out.total_exits = total_exits_;
  out.events_injected = events_injected_;
  out.exit_counts = exit_counts_;
  const size_t available = total_exits_ < kExitRingSize ? static_cast<size_t>(total_exits_) : kExitRingSize;
  out.recent_count = available < out.recent.size() ? available : out.recent.size();
  for (size_t i = 0; i < out.recent_count; ++i)
    out.recent[i] = ring_[(ring_next_ + kExitRingSize - 1 - i) % kExitRingSize];
  out.tsc = cpu::rdtsc();
}

// ---- Handlers ---------------------------------------------------------------------------------

Result<SvmRunOutcome> SvmVcpu::stop(const Exit& exit, const char* message) {
  stop_message_ = message;
  const std::string_view name = exit_code_name(exit.exitcode);
  LOG_ERROR(
      "svm: vm%u vcpu%u: %s (%.*s, exitcode 0x%llx, exitinfo1 0x%llx, exitinfo2 0x%llx, rip 0x%llx); the "
      "vCPU stops",
      vm_.vm_id, vcpu_id_, message, static_cast<int>(name.size()), name.data(),
      static_cast<unsigned long long>(exit.exitcode), static_cast<unsigned long long>(exit.exitinfo1),
      static_cast<unsigned long long>(exit.exitinfo2), static_cast<unsigned long long>(exit.rip));
  // Where VMRUN keeps the host state (APM 15.30.4) beside this vCPU's VMCBs and the guest's paging
  // state: a save area that holds host values shows up here.
  LOG_ERROR("svm: vm%u vcpu%u: VM_HSAVE_PA 0x%llx, VMCB 0x%llx, host VMCB 0x%llx; guest CR0 0x%llx CR3 0x%llx "
            "CR4 0x%llx EFER 0x%llx CS 0x%x RSP 0x%llx; N_CR3 0x%llx",
            vm_.vm_id, vcpu_id_, static_cast<unsigned long long>(cpu::rdmsr(kMsrVmHsavePa)),
            static_cast<unsigned long long>(vmcb_phys_), static_cast<unsigned long long>(host_vmcb_phys_),
            static_cast<unsigned long long>(vmcb_->save.cr0), static_cast<unsigned long long>(vmcb_->save.cr3),
            static_cast<unsigned long long>(vmcb_->save.cr4), static_cast<unsigned long long>(vmcb_->save.efer),
            static_cast<unsigned>(vmcb_->save.cs.selector), static_cast<unsigned long long>(vmcb_->save.rsp),
            static_cast<unsigned long long>(vmcb_->control.n_cr3));
  // The latest exits, newest (this one) first: an exit whose RIP is a host address shows when
  // the save area first held host state.
  for (size_t back = 1; back <= kStopLogExits && back <= total_exits_; ++back) {
    const SvmExitRecord& r = ring_[(ring_next_ + kExitRingSize - back) % kExitRingSize];
    LOG_ERROR("svm: vm%u vcpu%u: exit -%zu: exitcode 0x%llx exitinfo1 0x%llx exitinfo2 0x%llx rip 0x%llx tsc %llu",
              vm_.vm_id, vcpu_id_, back, static_cast<unsigned long long>(r.exitcode),
              static_cast<unsigned long long>(r.exitinfo1), static_cast<unsigned long long>(r.exitinfo2),
              static_cast<unsigned long long>(r.rip), static_cast<unsigned long long>(r.tsc));
  }
  return SvmRunOutcome::kStopped;
}

Result<SvmRunOutcome> SvmVcpu::on_unexpected(const Exit& exit) {
  if (is_vmexit_invalid(exit.exitcode)) return stop(exit, "VMRUN refused the guest state (VMEXIT_INVALID)");
  return stop(exit, "an exit the SVM backend does not handle");
}

Result<SvmRunOutcome> SvmVcpu::on_shutdown(const Exit& exit) {
  return stop(exit, "the guest shut down (triple fault)");
}

Result<SvmRunOutcome> SvmVcpu::on_npf(const Exit& exit) {
  // EXITINFO2 holds the faulting guest-physical address (APM 15.25.6). The APIC page and the
  // VM's MMIO devices are not mapped, so their accesses come here.
  const uint64_t gpa = exit.exitinfo2;
  const guest::ApicPageAccess apic = guest::apic_page_access(apic_base_, gpa);
  if (apic != guest::ApicPageAccess::kNotApicPage) {
    // xAPIC mode: the vlapic's registers; disabled or x2APIC mode: nothing answers.
    const bool registers = apic == guest::ApicPageAccess::kXapicRegisters;
    if (registers) vlapic_.set_time(cpu::rdtsc());
    guest::ApicPageDevice page(vlapic_, apic);
    const SvmRunOutcome outcome = TRY(on_mmio(exit, page, gpa & 0xfff));
    if (registers) route_vlapic_side_effects();
    return outcome;
  }
  uint64_t offset = 0;
  if (guest::MmioDevice* device = vm_.mmio.device_at(gpa, &offset); device != nullptr) {
    return on_mmio(exit, *device, offset);
  }
  // The guest never runs on the host's page tables: a save area holding the host's CR3 means the
  // emulator took a #VMEXIT while the host was running and overwrote the guest's state with the
  // host's. QEMU 7.2's multi-threaded TCG does this on CPU 0 when another vCPU's thread restores
  // x87 state (FXRSTOR and kin) at the moment CPU 0's #VMEXIT clears its nested-paging flag
  // (target/i386/tcg/sysemu/fpu_helper.c cpu_clear_ignne: an unlocked write of first_cpu's
  // hflags2). The guest's state is lost; what helps is QEMU with -accel tcg,thread=single.
  if (vmcb_->save.cr3 == cpu::read_cr3()) {
    return stop(exit, "the emulator overwrote the guest's state with the host's (QEMU TCG hflags2 race on CPU 0: "
                      "use -accel tcg,thread=single; docs/lab-guide.md)");
  }
  return stop(exit, "nested page fault outside guest memory");
}

Result<SvmRunOutcome> SvmVcpu::on_host_interrupt(const Exit&) {
  return SvmRunOutcome::kHostInterrupt;
}

Result<SvmRunOutcome> SvmVcpu::on_init(const Exit&) {
  // INIT is the host's (APM 15.13.3): the BSP's own INIT to another core never targets a core
  // running a guest after boot, so there is nothing to forward; the guest just goes on.
  LOG_WARN("svm: vm%u vcpu%u: INIT intercepted and dropped", vm_.vm_id, vcpu_id_);
  return SvmRunOutcome::kHandled;
}

Result<SvmRunOutcome> SvmVcpu::on_vintr(const Exit&) {
  // The guest can take an interrupt now: drop the virtual one; the arbiter injects the real
  // event through EVENTINJ before the next VMRUN.
  vmcb_->control.virtual_interrupt_control =
      without_interrupt_window(vmcb_->control.virtual_interrupt_control);
  return SvmRunOutcome::kHandled;
}

// The single step over an NMI handler's IRET ended (arbitrate_events()); the IRET loaded the
// guest's own RFLAGS, so the step's TF and RF are gone with it.
Result<SvmRunOutcome> SvmVcpu::on_debug_exception(const Exit&) {
  const bool guests_own = !iret_single_step_ || iret_single_step_debug_is_guests(rflags_before_iret_step_);
  end_iret_single_step();
  // A trap: RIP is already past the instruction it follows (SDM Vol. 3A Table 6-1).
  if (guests_own) TRY(inject_exception(kVectorDebug, std::nullopt));
  return SvmRunOutcome::kHandled;
}

void SvmVcpu::end_iret_single_step() {
  iret_single_step_ = false;
  vmcb_->control.intercept_exceptions &= ~kInterceptDebug;
}

// No NMI handler running (a reset, INIT): no IRET to wait for or step over.
void SvmVcpu::reset_nmi_blocking() {
  nmi_blocked_ = false;
  nmi_unblock_pending_ = false;
  if (iret_single_step_) end_iret_single_step();
}

Result<SvmRunOutcome> SvmVcpu::on_iret(const Exit& exit) {
  // The NMI handler is about to execute IRET (the intercept comes first, APM 15.21.6): NMI
  // blocking ends once it has, i.e. at the next exit with another RIP (enter_and_decode()).
  nmi_unblock_pending_ = nmi_blocked_;
  iret_rip_ = exit.rip;
  vmcb_->control.intercept_vector_3 &= ~intercept3::kIret;
  return SvmRunOutcome::kHandled;
}

Result<void> SvmVcpu::skip_instruction(const Exit& exit) {
  const SvmFeatures* f = features();
  const uint64_t next = TRY(next_rip(exit.exitcode, exit.rip, exit.exitinfo2, vmcb_->control.nrip,
                                     f != nullptr && f->next_rip_save));
  return complete_emulated_instruction(next);
}

// The instruction pointer's seam (guest/cpuid_exit.h complete_emulated_instruction()): RIP in
// the VMCB, the code size from EFER.LMA and CS, the interrupt shadow in the VMCB's control area.
struct SvmVcpu::RipSeam {
  SvmVcpu& vcpu;

  uint64_t rip() { return vcpu.vmcb_->save.rip; }
  Result<void> set_rip(uint64_t rip) {
    vcpu.vmcb_->save.rip = rip;
    return ok();
  }
  Result<guest::CodeSize> code_size() { return vcpu.code_size(); }
  // Emulating the instruction ends an interrupt shadow it was in (APM Table B-1, offset 068h).
  Result<void> clear_interrupt_shadow() {
    vcpu.vmcb_->control.interrupt_shadow &= ~kInterruptShadow;
    return ok();
  }
};

Result<void> SvmVcpu::complete_emulated_instruction(uint64_t next) {
  RipSeam seam{*this};
  TRY(guest::complete_emulated_instruction(seam, next));
  if ((vmcb_->save.rflags & kRflagsTf) != 0) [[unlikely]] return raise_single_step_trap();
  return ok();
}

// The emulated instruction ends as if the processor had run it: with RFLAGS.TF set at its
// start, a single-step #DB trap follows it, DR6.BS set (SDM Vol. 3A 18.3.1.4, 18.2.3; APM Vol. 2
// 13.1.4). Not while the vCPU single-steps an IRET itself (IRET is never emulated). Out of line:
// the exit path of every emulated instruction pays only for the TF test.
Result<void> SvmVcpu::raise_single_step_trap() {
  if (iret_single_step_) return ok();
  vmcb_->save.dr6 |= kDr6SingleStep;
  return inject_exception(kVectorDebug, std::nullopt);
}

// CPUID as the guest sees it: the host's leaves under this vCPU's policy, and the hypervisor leaves.
guest::CpuidRegisters SvmVcpu::guest_cpuid(uint32_t leaf, uint32_t subleaf) const {
  guest::CpuidOffer offer;
  offer.vcpu_id = vcpu_id_;
  lib::mem_copy(offer.signature, kCpuidHypervisorSignature, sizeof(offer.signature));
  offer.xsave = false;           // no XSAVE for guests: the host switches x87/SSE with FXSAVE only
  offer.rdtscp = true;           // RDTSCP/RDPID run in the guest (not intercepted; TSC_AUX is emulated)
  offer.invpcid = true;          // INVPCID runs in the guest (not intercepted)
  offer.tsc_adjust = true;       // IA32_TSC_ADJUST moves the VMCB's TSC_OFFSET (guest/platform_msrs.h)
  offer.frequency_leaves = false;  // AMD has no 15H/16H: Linux gets tsc_early_khz= instead
  offer.tsc_hz = time::tsc_hz();
  offer.tsc_per_bus_clock = tsc_per_bus_clock_;
  return guest::hw::guest_cpuid_on_this_cpu(leaf, subleaf, offer, cpuid_inputs());
}


// The CPUID exit's seam (guest/cpuid_exit.h): RAX in the VMCB, the other registers in gprs_; the
// answers depend on the vCPU's fixed offer and, for leaf 01H, on IA32_APIC_BASE.EN only (no XSAVE
// for guests: neither CR4.OSXSAVE nor XCR0 changes one).
struct SvmVcpu::CpuidSeam {
  SvmVcpu& vcpu;
  const Exit& exit;

  uint64_t rax() { return vcpu.vmcb_->save.rax; }
  uint64_t rcx() { return vcpu.gprs_.rcx; }
  void set_cpuid_result(uint64_t rax, uint64_t rbx, uint64_t rcx, uint64_t rdx) {
    vcpu.vmcb_->save.rax = rax;
    vcpu.gprs_.rbx = rbx;
    vcpu.gprs_.rcx = rcx;
    vcpu.gprs_.rdx = rdx;
  }
  bool apic_enabled() { return vcpu.cpuid_inputs().apic_enabled; }
  uint64_t xcr0() { return vcpu.cpuid_inputs().xcr0; }
  Result<bool> cr4_osxsave() { return vcpu.cpuid_inputs().cr4_osxsave; }
  guest::CpuidRegisters policy_cpuid(uint32_t leaf, uint32_t subleaf, const guest::CpuidGuestInputs&) {
    return vcpu.guest_cpuid(leaf, subleaf);
  }
  Result<void> complete_instruction() { return vcpu.skip_instruction(exit); }
};

Result<SvmRunOutcome> SvmVcpu::on_cpuid(const Exit& exit) {
  CpuidSeam seam{*this, exit};
  TRY(guest::emulate_cpuid(seam, cpuid_cache_));
  return SvmRunOutcome::kHandled;
}

Result<SvmRunOutcome> SvmVcpu::on_hlt(const Exit& exit) {
  TRY(skip_instruction(exit));
  vlapic_.poll_timer(cpu::rdtsc());
  guest::HltContext context;
  context.guest_rflags = vmcb_->save.rflags;
  {
    IrqSpinlockGuard guard(events_lock_);
    context.queue_head = events_.peek();
  }
  context.vlapic_vector = vlapic_.highest_deliverable();
  context.vlapic_deadline = vlapic_.next_deadline();
  context.can_halt_in_guest = false;  // no wake-up timer: pre_enter() sleeps until a host interrupt
  if (arbiter_.on_guest_hlt(context) == guest::HltDecision::kResume) return SvmRunOutcome::kHandled;
  return SvmRunOutcome::kHalted;
}

Result<SvmRunOutcome> SvmVcpu::on_ioio(const Exit& exit) {
  const IoioInfo io = IoioInfo::decode(exit.exitinfo1);
  if (io.string) return on_string_io(exit);
  if (io.rep) return stop(exit, "REP without a string instruction in an IOIO exit");
  if (io.width != 1 && io.width != 2 && io.width != 4) return stop(exit, "port I/O of an invalid width");
  uint64_t& rax = vmcb_->save.rax;
  if (io.in) {
    const uint32_t value = vm_.ports.read(io.port, io.width);
    // IN AL/AX leaves the rest of RAX; IN EAX zero-extends (APM Vol. 3 IN).
    if (io.width == 4) {
      rax = value;
    } else {
      const uint64_t mask = io.width == 1 ? 0xffu : 0xffffu;
      rax = (rax & ~mask) | (value & mask);
    }
  } else {
    const uint64_t mask = io.width == 1 ? 0xffu : (io.width == 2 ? 0xffffu : 0xffffffffu);
    vm_.ports.write(io.port, io.width, static_cast<uint32_t>(rax & mask));
  }
  TRY(skip_instruction(exit));  // IOIO: EXITINFO2 holds the next RIP (APM 15.10.2)
  return SvmRunOutcome::kHandled;
}

Result<SvmRunOutcome> SvmVcpu::on_msr(const Exit& exit) {
  // EXITINFO1: 0 = RDMSR, 1 = WRMSR (APM 15.11).
  const uint32_t msr = static_cast<uint32_t>(gprs_.rcx);
  MsrSeam seam{*this};
  guest::MsrOutcome outcome;
  if (exit.exitinfo1 == 0) {
    outcome = TRY(guest::msr_read(seam, msr, vm_.unknown_msrs));
    if (outcome.action == guest::MsrAction::kDone) {
      // RDMSR loads EDX:EAX, clearing the upper halves of RDX and RAX.
      vmcb_->save.rax = static_cast<uint32_t>(outcome.value);
      gprs_.rdx = static_cast<uint32_t>(outcome.value >> 32);
    }
  } else {
    const uint64_t value = (gprs_.rdx << 32) | (vmcb_->save.rax & 0xffffffffu);
    outcome = TRY(guest::msr_write(seam, msr, value, vm_.unknown_msrs));
  }
  if (outcome.action == guest::MsrAction::kGp) {
    TRY(inject_exception(kVectorGeneralProtection, 0));  // RIP stays on the faulting instruction
    return SvmRunOutcome::kHandled;
  }
  TRY(skip_instruction(exit));
  return SvmRunOutcome::kHandled;
}

Result<SvmRunOutcome> SvmVcpu::on_vmmcall(const Exit& exit) {
  TRY(skip_instruction(exit));
  uint64_t& rax = vmcb_->save.rax;
  switch (rax) {
    case guest::kHypercallNull:
    case guest::kHypercallHeartbeat: rax = 0; break;
    case guest::kHypercallInjectInterrupt: {
      Result<size_t> queued = make_error(ErrorCode::kInvalidArgument, "vector out of range");
      if (gprs_.rdi <= 0xff) {
        IrqSpinlockGuard guard(events_lock_);
        queued =
            events_.queue_event(guest::PendingEventType::kExternalInterrupt, static_cast<uint32_t>(gprs_.rdi));
      }
      if (queued) arbiter_.note_queue_changed();  // the owner's own: no attention bit
      rax = queued ? 0 : ~uint64_t{0};
      break;
    }
    default: {
      const uint64_t args[kHypercallArgs] = {gprs_.rdi, gprs_.rsi, gprs_.rdx, gprs_.rcx, gprs_.r8, gprs_.r9};
      uint64_t result = ~uint64_t{0};  // unknown hypercall
      if (hypercall_handler_ != nullptr && hypercall_handler_(hypercall_context_, rax, args, result)) {
        rax = result;
        return SvmRunOutcome::kHypercall;  // the handler's owner sees it before the guest goes on
      }
      rax = ~uint64_t{0};
      break;
    }
  }
  return SvmRunOutcome::kHandled;
}

Result<SvmRunOutcome> SvmVcpu::on_undefined_opcode(const Exit&) {
  // The SVM instructions and XSETBV are not offered to guests: #UD, RIP unchanged (APM 15.4).
  TRY(inject_exception(kVectorUndefinedOpcode, std::nullopt));
  return SvmRunOutcome::kHandled;
}

}  // namespace lantern::svm
