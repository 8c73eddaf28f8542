// SvmVcpu: one virtual CPU of a guest VM on the SVM backend. One VMCB, an ASID, the IOPM and
// MSRPM (everything intercepted), a host VMCB-format page for VMSAVE/VMLOAD, under nested paging
// (the VM's n_CR3). Kernel-only.
//
//   create(vm, vcpu_id, n_cr3, rip, rsp)  real-mode vCPU bound to the calling core
//   run()          the event arbiter (re-injection from EXITINTINFO, the pending-event queue,
//                  the vlapic; windows through V_IRQ + VINTR and the IRET intercept), one VMRUN,
//                  then the exit handled through the dispatch table; returns what the loop must
//                  do (host work after a host interrupt or while the guest halts)
//   queue_event()  any core: the pending-event queue (guest/pending_events.h), the owner is kicked
//
// Exits handled inside run(): CPUID, HLT, IOIO (the VM's PortBus, INS/OUTS over the guest's RAM;
// next RIP from EXITINFO2), MSR (the core's MSR emulation, guest/msr_emulation.h, with EFER,
// PAT, PKRS and the AMD MSRs of this vCPU; others by the VM's unknown-MSR policy), VMMCALL (hypercalls 0-2 of vmx/hw/guest_vm.h), VINTR, IRET, INTR, NMI,
// INIT, the SVM instructions and XSETBV (#UD), NPF on the APIC page (the vlapic in xAPIC mode,
// nothing otherwise) or a VM MMIO device (emulated MOV).
// SHUTDOWN, VMEXIT_INVALID, any other NPF and any exit without a handler stop this vCPU alone
// with a recorded reason. RIP moves by NRIP only where CPUID says the CPU saves it, otherwise
// by the known instruction lengths (svm/exit_info.h next_rip()).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "guest/cpuid_cache.h"
#include "guest/event_arbiter.h"
#include "guest/instruction_pointer.h"
#include "guest/loader/entry_state.h"
#include "guest/posted_vcpu_events.h"
#include "guest/published_vcpu_state.h"
#include "guest/msr_emulation.h"
#include "guest/vm.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/core/spinlock.h"
#include "kernel/lib/result.h"
#include "svm/exit_code.h"
#include "svm/permission_maps.h"
#include "svm/hw/svm_vcpu.h"
#include "svm/vmcb.h"
#include "guest/general_registers.h"
#include "guest/mmio_decode.h"
#include "guest/pending_events.h"
#include "guest/vlapic.h"

namespace lantern::svm {

struct SvmExitRecord {
  uint64_t exitcode;
  uint64_t exitinfo1;
  uint64_t exitinfo2;
  uint64_t rip;  // guest RIP at the exit
  uint64_t tsc;  // host TSC at the exit
};

// Why run() returned: what its caller does next.
enum class SvmRunOutcome : uint8_t {
  kHandled,        // exits handled inside, and the caller's turn: a run of them long enough
                   // (RunLoopSeam::kHandledExitsPerTurn) or the VM asked its loops to leave
  kHypercall,      // the hypercall handler (set_hypercall_handler) took a VMMCALL
  kHostInterrupt,  // a host interrupt exited the guest: host work and the mailbox first
  kHalted,         // the guest waits in HLT and this core slept until a host interrupt
  kStopped,        // stopped for good (stop_message())
};

// Everything the console reads about one SVM vCPU, taken on its owning core at one moment.
struct SvmCapture {
  uint32_t vm = 0;
  uint32_t vcpu = 0;
  int32_t cpu = -1;
  bool launched = false;
  bool halted = false;
  bool parked = false;  // waiting for a SIPI after INIT
  bool stopped = false;
  const char* stop_message = nullptr;
  guest::GeneralRegisters regs{};  // RAX from the VMCB, the rest from the VMRUN stub's save area
  Vmcb vmcb{};
  uint64_t total_exits = 0;
  uint64_t events_injected = 0;
  std::array<uint64_t, kExitCountSlots> exit_counts{};
  std::array<SvmExitRecord, 64> recent{};  // newest first
  size_t recent_count = 0;
  uint64_t tsc = 0;
};

class SvmVcpu {
 public:
  static constexpr size_t kExitRingSize = 64;
  static constexpr size_t kStopLogExits = 8;  // recent exits a stopping vCPU logs
  static constexpr uint32_t kAttentionEvents = 1u << 0;
  static constexpr uint32_t kAttentionPosted = 1u << 1;  // interrupts, INIT or SIPI from other cores

  // Must run on the core that will own the vCPU, in SVM operation. `vm` outlives the vCPU.
  static Result<SvmVcpu*> create(guest::Vm& vm, uint32_t vcpu_id, uint64_t n_cr3, uint64_t rip, uint64_t rsp);
  static void destroy(SvmVcpu* vcpu);

  // Owner core only. Enters the guest until an exit it does not handle inside, a HLT it sleeps
  // through on this core, or the caller's turn (guest/run_loop.h); publishes the state when it
  // returns. An error (a failed VMCB update, an event the arbiter could not encode) stops the
  // vCPU with a recorded reason, like a stop exit.
  Result<SvmRunOutcome> run();
  void capture(SvmCapture& out) const;

  // The guest's RAM (guest-physical 0 .. bytes at host-physical `phys`): where INS/OUTS move
  // their data. Without it string port I/O stops the vCPU. Owner core.
  void set_guest_ram(uint64_t phys, uint64_t bytes) {
    ram_phys_ = phys;
    ram_bytes_ = bytes;
  }
  // Loads a loader's register state (guest/loader/entry_state.h) into the save area. Owner core.
  Result<void> apply_entry_state(const guest::EntryState& state);
  // A VM reset: the power-on state on new nested page tables, then `state`; pending events, the
  // vlapic and the emulated MSRs start over, the counters stay. Owner core.
  Result<void> restart(uint64_t n_cr3, const guest::EntryState& state);
  // Lets the guest reach MSRs without an exit (MSRPM bits clear, APM 15.11) or intercepts them
  // again. Owner core.
  Result<void> set_msr_intercept(MsrRange range, MsrAccess access, bool on);
  // The run loop gives up on the vCPU for `reason` (owner core; the console shows it stopped).
  void stop_outside_run(const char* reason);
  // Any core: a fixed interrupt for the vlapic's IRR (an I/O APIC message), taken before the
  // next VMRUN; the owner is kicked.
  void post_interrupt(uint8_t vector, bool level_triggered);
  // Any core: INIT resets the vlapic (x2APIC mode kept), drops pending events and parks the vCPU
  // waiting for a SIPI with every interrupt blocked (SDM Vol. 3A 9.4, 11.4.7.3); a SIPI while it
  // waits starts it in real mode at CS = vector << 8, IP 0. The owner is kicked.
  void post_init();
  void post_sipi(uint8_t vector);
  // Any core: an NMI from another vCPU's ICR, queued like the console's (queue_event).
  void post_nmi() { (void)queue_event(guest::PendingEventType::kNmi, 2, std::nullopt); }
  bool waiting_for_sipi() const { return wait_for_sipi_; }
  // Any core: whether this vCPU's vlapic is among the logical destination `mda` (SDM Vol. 3A
  // 11.6.2.2), from the LDR/DFR the owner last published.
  bool accepts_logical_destination(uint32_t mda) const;
  // Where the vlapic's IPIs go (owner core, from an ICR write): without a sink they are dropped.
  using IpiSink = void (*)(void* context, const guest::IpiRequest& ipi, bool x2apic);
  void set_ipi_sink(IpiSink sink, void* context) {
    ipi_sink_ = sink;
    ipi_context_ = context;
  }

  // Any core. kFull / kInvalidArgument as PendingEventQueue::queue_event.
  Result<size_t> queue_event(guest::PendingEventType type, uint32_t vector, std::optional<uint32_t> error_code);
  guest::PendingEventSnapshot pending_events() const;
  size_t pending_event_count() const;
  const guest::PublishedVcpuState& published() const { return published_; }
  // Hypercalls other than 0-2 go to `handler` (owner core, before run()): it returns true and sets
  // `result` (the guest's RAX) when it knows the number. args = RDI, RSI, RDX, RCX, R8, R9 (the
  // guest programs' ABI, tests/guests/README.md; outside 64-bit mode the guest sees only the low
  // halves and cannot reach R8/R9).
  static constexpr size_t kHypercallArgs = 6;
  using HypercallHandler = bool (*)(void* context, uint64_t nr, const uint64_t (&args)[kHypercallArgs],
                                    uint64_t& result);
  void set_hypercall_handler(HypercallHandler handler, void* context) {
    hypercall_handler_ = handler;
    hypercall_context_ = context;
  }

  // Owner core, between runs: the guest state as the last exit left it, and the vlapic.
  const Vmcb& vmcb() const { return *vmcb_; }
  const guest::VirtualLapic& vlapic() const { return vlapic_; }
  // TSC ticks per tick of the vlapic timer's bus clock (CPUID 0x40000010 EBX = TSC kHz / this).
  uint32_t vlapic_tsc_per_bus_clock() const { return tsc_per_bus_clock_; }

  uint32_t vm_id() const { return vm_.vm_id; }
  uint32_t vcpu_id() const { return vcpu_id_; }
  int32_t bound_cpu() const { return bound_cpu_; }
  bool stopped() const { return stop_message_ != nullptr; }
  const char* stop_message() const { return stop_message_; }
  uint64_t total_exits() const { return total_exits_; }
  uint64_t exit_count(uint64_t exitcode) const { return exit_counts_[exit_count_slot(exitcode)]; }
  // Any core: the counter of one slot (exit_code.h exit_count_slot) with a relaxed load, without a
  // capture; at most a few exits old (the owning core stores each with a relaxed store).
  uint64_t exit_count_slot_relaxed(size_t slot) const {
    return slot < kExitCountSlots ? __atomic_load_n(&exit_counts_[slot], __ATOMIC_RELAXED) : 0;
  }

  struct Exit {
    uint64_t exitcode, exitinfo1, exitinfo2, exitintinfo, rip;
  };
  using Handler = Result<SvmRunOutcome> (SvmVcpu::*)(const Exit&);

 private:
  SvmVcpu(guest::Vm& vm, uint32_t vcpu_id) : vm_(vm), vcpu_id_(vcpu_id) {}
  Result<void> setup(uint64_t n_cr3, uint64_t rip, uint64_t rsp);
  // run()'s steps for guest::run_vcpu() (svm_guest_vcpu.cpp).
  struct RunLoopSeam;
  Result<bool> pre_enter();
  Result<void> enter_and_decode(Exit& exit);
  void release();

  // The event arbiter's pass (guest/event_arbiter.h) through ArbiterSeam, then the windows.
  Result<void> arbitrate_events();
  struct ArbiterSeam;
  // Outside the guest after its HLT: whether an event ends the HLT now (the arbiter decides).
  bool hlt_can_end();
  Result<void> skip_instruction(const Exit& exit);
  // RIP = `next` (in the code segment's width) and the interrupt shadow ended: what completing
  // an emulated instruction leaves (skip_instruction(), MMIO moves).
  Result<void> complete_emulated_instruction(uint64_t next);
  [[gnu::noinline, gnu::cold]] Result<void> raise_single_step_trap();
  struct RipSeam;    // guest::complete_emulated_instruction() onto the VMCB (svm_guest_vcpu.cpp)
  struct CpuidSeam;  // guest::emulate_cpuid() onto this vCPU (svm_guest_vcpu.cpp)
  Result<void> inject_exception(uint8_t vector, std::optional<uint32_t> error_code);
  Result<SvmRunOutcome> stop(const Exit& exit, const char* message);
  void record_exit(const Exit& exit);
  void publish_state();
  void kick_owner();

  Result<SvmRunOutcome> on_unexpected(const Exit& exit);
  Result<SvmRunOutcome> on_host_interrupt(const Exit& exit);
  Result<SvmRunOutcome> on_init(const Exit& exit);
  Result<SvmRunOutcome> on_vintr(const Exit& exit);
  Result<SvmRunOutcome> on_iret(const Exit& exit);
  Result<SvmRunOutcome> on_debug_exception(const Exit& exit);
  void end_iret_single_step();
  void reset_nmi_blocking();
  Result<SvmRunOutcome> on_cpuid(const Exit& exit);
  Result<SvmRunOutcome> on_hlt(const Exit& exit);
  Result<SvmRunOutcome> on_ioio(const Exit& exit);
  Result<SvmRunOutcome> on_msr(const Exit& exit);
  Result<SvmRunOutcome> on_vmmcall(const Exit& exit);
  Result<SvmRunOutcome> on_undefined_opcode(const Exit& exit);
  Result<SvmRunOutcome> on_shutdown(const Exit& exit);
  Result<SvmRunOutcome> on_npf(const Exit& exit);
  Result<SvmRunOutcome> on_cr4_write(const Exit& exit);
  // This vCPU's CPUID answer under Lantern's policy (guest/cpuid_policy.h); on_cpuid() caches it.
  // Out of line: only a cache miss (and setup) needs it.
  [[gnu::noinline]] guest::CpuidRegisters guest_cpuid(uint32_t leaf, uint32_t subleaf) const;
  // No XSAVE for guests, so neither CR4.OSXSAVE nor XCR0 changes an answer; IA32_APIC_BASE.EN does.
  guest::CpuidGuestInputs cpuid_inputs() const {
    return guest::CpuidGuestInputs{false, (apic_base_ & guest::kApicBaseEnable) != 0, 0};
  }
  // The guest's instruction at CS:RIP through its paging (no decode assists, APM 15.33): the
  // number of bytes fetched (0: no RAM, or not in guest RAM) and the code size it runs with.
  size_t fetch_instruction(std::span<uint8_t> bytes, guest::CodeSize& code_size) const;
  // The guest code's default operand size (guest/instruction_pointer.h): EFER.LMA (bit 10, APM
  // Vol. 2 3.1.7), and CS.L and CS.D/B in the VMCB's packed attributes (bits 9 and 10, APM 15.5.1
  // Figure 15-4).
  guest::CodeSize code_size() const {
    const VmcbSaveArea& s = vmcb_->save;
    return guest::code_size_of((s.efer & (1u << 10)) != 0, (s.cs.attrib & (1u << 9)) != 0,
                               (s.cs.attrib & (1u << 10)) != 0);
  }
  // The MSR emulation (guest/msr_emulation.h) runs through MsrSeam (svm_msr_seam.h).
  struct MsrSeam;
  // The MSRs the vCPU emulates itself (EFER, PAT, PKRS, the AMD legacy performance counters and
  // Interrupt Pending; svm_guest_vcpu_state.cpp); kNotEmulated for any other.
  Result<guest::MsrOutcome> backend_msr_read(uint32_t msr);
  Result<guest::MsrOutcome> backend_msr_write(uint32_t msr, uint64_t value);
  Result<SvmRunOutcome> on_string_io(const Exit& exit);
  Result<SvmRunOutcome> on_mmio(const Exit& exit, guest::MmioDevice& device, uint64_t offset);
  void route_vlapic_side_effects();
  void publish_logical_id();
  void enter_wait_for_sipi();
  void start_from_sipi(uint8_t vector);
  uint64_t* gpr_slot(uint8_t index);
  void reset_emulated_state();
  void take_posted_interrupts();
  static Handler handler_for(uint64_t exitcode);

  // The guest's and the host's x87/SSE state (FXSAVE images, SDM Vol. 1 10.5.1): switched
  // around every VMRUN, which does not switch them (APM 15.5.1), so the host never runs with a
  // guest's MXCSR or control word and host code never clobbers the guest's XMM registers.
  // Guests get no XSAVE (CPUID hides it, XSETBV is #UD), so FXSAVE covers all their state.
  alignas(16) uint8_t guest_fx_[512] = {};
  alignas(16) uint8_t host_fx_[512] = {};
  SvmGuestGprs gprs_{};  // handed to svm_vmrun()
  guest::Vm& vm_;
  uint32_t vcpu_id_;
  int32_t bound_cpu_ = -1;
  Vmcb* vmcb_ = nullptr;
  uint64_t vmcb_phys_ = 0;
  uint64_t host_vmcb_phys_ = 0;
  uint64_t iopm_phys_ = 0;
  uint64_t msrpm_phys_ = 0;
  bool launched_ = false;
  // An injected NMI's handler runs until its IRET completes. The IRET intercept exits before the
  // IRET executes (APM 15.21.6), so blocking ends at the first later exit whose RIP has moved on.
  bool nmi_blocked_ = false;
  bool nmi_unblock_pending_ = false;  // the handler's IRET was intercepted at iret_rip_
  uint64_t iret_rip_ = 0;
  // A queued NMI waits for that IRET: the vCPU single-steps it (svm/event_injection.h), with
  // the RFLAGS it had before the step.
  bool iret_single_step_ = false;
  uint64_t rflags_before_iret_step_ = 0;
  std::optional<uint64_t> reinject_;  // from the last EXITINTINFO
  const char* stop_message_ = nullptr;
  HypercallHandler hypercall_handler_ = nullptr;
  void* hypercall_context_ = nullptr;

  uint64_t ram_phys_ = 0;
  uint64_t ram_bytes_ = 0;
  // Emulated MSRs (guest/platform_msrs.h) and the guest's TSC: RDTSC adds TSC_OFFSET (APM 15.30.5).
  uint64_t misc_enable_ = 0;
  uint64_t mtrr_def_type_ = 0;
  uint64_t tsc_aux_ = 0;
  uint64_t tsc_adjust_ = 0;  // IA32_TSC_ADJUST; with the VMCB's TSC_OFFSET a guest::GuestTsc
  guest::PostedVcpuEvents posted_;  // post_interrupt(), post_init(), post_sipi()
  bool wait_for_sipi_ = false;
  std::atomic<uint32_t> published_ldr_{0};
  std::atomic<uint32_t> published_dfr_{0xffffffffu};
  std::atomic<bool> published_x2apic_{false};
  IpiSink ipi_sink_ = nullptr;
  void* ipi_context_ = nullptr;

  guest::VirtualLapic vlapic_{0};
  uint32_t tsc_per_bus_clock_ = 1;
  uint64_t apic_base_ = 0;
  uint64_t cr4_allowed_ = 0;  // the CR4 bits the guest may set (cr4_allowed_bits of its CPUID)
  guest::CpuidLeafCache cpuid_cache_;  // guest_cpuid() answers by (leaf, subleaf, APIC enable)

  mutable IrqSpinlock events_lock_;
  guest::PendingEventQueue events_;  // guarded by events_lock_
  // The event arbiter (guest/event_arbiter.h): the queued-event gate, the HLT state. SVM has no
  // preemption timer to bring an exit the guest causes, so whenever the queue waits the vCPU
  // asks for an interrupt window, whose VINTR exit is one.
  guest::EventArbiter arbiter_{guest::EventArbiter::Policy{true}};
  bool newest_exit_from_host() const;  // the newest exit was INTR or NMI
  std::atomic<uint32_t> attention_{0};
  uint64_t events_injected_ = 0;

  std::array<uint64_t, kExitCountSlots> exit_counts_{};
  uint64_t total_exits_ = 0;
  std::array<SvmExitRecord, kExitRingSize> ring_{};
  size_t ring_next_ = 0;
  guest::PublishedVcpuState published_;
};

// SVM vCPUs created since boot (the READY line's vcpus= adds them).
uint32_t svm_vcpus_started();

}  // namespace lantern::svm
