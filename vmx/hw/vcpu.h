// VmxVcpu: one virtual CPU backed by a VMCS (the vCPU API). Kernel-only.
//
//   create(vm_id, vcpu_id)      VMCS (revision from IA32_VMX_BASIC, VMCLEARed), I/O bitmaps A/B
//                               and MSR bitmap intercepting everything, the event queue.
//   setup(eptp, entry)          controls, EPT pointer and the whole initial guest state; once.
//   bind_to_current_processor() VMPTRLD here + host state of this core; bound elsewhere = kBusy.
//   unbind_from_current_processor()  VMCLEAR (the next run() on a new binding VMLAUNCHes).
//   run()                       VMLAUNCH first, VMRESUME after; returns the exit with its data.
//                               A VMfail is an error value carrying VM_INSTRUCTION_ERROR.
//   complete_io_read/complete_msr_read   finish IoRead/MsrRead exits and advance RIP.
//
// Exits are dispatched through one table indexed by basic exit reason; an exit without a
// handler takes the unexpected-exit path: VMCS dump to the log, the vCPU stops alone with a
// recorded reason, and run() returns kInvalidState from then on. Every exit is counted per
// reason and recorded in a ring of the last 64 (reason, qualification, RIP, TSC).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "guest/event_arbiter.h"
#include "guest/posted_vcpu_events.h"
#include "guest/guest_page_walk.h"
#include "guest/loader/entry_state.h"
#include "guest/msr_emulation.h"
#include "guest/published_vcpu_state.h"
#include "guest/vm.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/core/spinlock.h"
#include "kernel/lib/result.h"
#include "guest/cpuid_cache.h"
#include "vmx/exit_reason.h"
#include "vmx/exit_qualification.h"
#include "guest/general_registers.h"
#include "vmx/hw/vmx_entry_layout.h"
#include "vmx/hw/vmx_instructions.h"
#include "vmx/intercept_bitmaps.h"
#include "guest/pending_events.h"
#include "vmx/vcpu_exit.h"
#include "guest/vlapic.h"
#include "vmx/vmx_capabilities.h"

namespace lantern::vmx {

enum class GuestMode : uint8_t {
  kRealMode,  // CR0.PE = 0 under "unrestricted guest" (SDM Vol. 3C 26.3.1.1)
};

struct GuestEntry {
  GuestMode mode = GuestMode::kRealMode;
  uint16_t cs_selector = 0;  // real mode: CS base = selector << 4
  uint64_t rip = 0;          // offset within CS
  uint64_t rsp = 0;          // SS = 0
};

// The guest's IA-32e mode as the VMCS holds it (see vmx/long_mode.h).

struct GuestLongModeState {
  uint64_t efer = 0;        // GUEST_IA32_EFER
  bool ia32e_mode = false;  // the "IA-32e mode guest" VM-entry control
  bool cs_long = false;     // GUEST_CS_AR_BYTES.L
  uint64_t cr0 = 0;         // GUEST_CR0
  uint64_t cr4 = 0;         // GUEST_CR4
};

struct ExitRecord {
  uint32_t reason;         // raw VM_EXIT_REASON
  uint64_t qualification;  // EXIT_QUALIFICATION
  uint64_t rip;            // GUEST_RIP at the exit
  uint64_t tsc;            // host TSC at the exit
};

// Segment access rights in the VMCS (SDM Vol. 3C 24.4.1, Table 24-2): bit 13 L (64-bit code),
// bit 14 D/B (32-bit default operand size).
inline constexpr uint32_t kArLong = 1u << 13;
inline constexpr uint32_t kArDefault32 = 1u << 14;

// Lantern's signature at CPUID 0x40000000 under VMX (guest/cpuid_policy.h: leaves 0x40000000-
// 0x4FFFFFFF are reserved for hypervisors and return zeros on bare hardware, SDM Vol. 2A CPUID).
inline constexpr char kCpuidHypervisorSignature[13] = "LanternVMXhv";

class VmxVcpu;
// The vCPUs of one VM, indexed by vcpu_id (= x2APIC ID): how a vlapic IPI finds its target.
// Owned by the VM; a vCPU joins at creation and leaves when destroyed.
struct VcpuGroup {
  static constexpr size_t kMaxVcpus = guest::kMaxVcpusPerVm;
  std::array<std::atomic<VmxVcpu*>, kMaxVcpus> members{};
};

// Shared with vmx/hw/vmx_entry.S (offsets in vmx/hw/vmx_entry_layout.h). host_rsp caches the HOST_RSP the
// stub last wrote into the current VMCS: it writes the field again only when its stack pointer differs (0 =
// unknown, after the VMCS was loaded on a core).
struct VmxFastPath {
  uint64_t enabled = 0;
  uint64_t null_hypercalls = 0;
  uint64_t host_rsp = 0;
};
static_assert(offsetof(VmxFastPath, enabled) == LANTERN_FAST_ENABLED &&
              offsetof(VmxFastPath, null_hypercalls) == LANTERN_FAST_NULL_HYPERCALLS &&
              offsetof(VmxFastPath, host_rsp) == LANTERN_FAST_HOST_RSP);
static_assert(static_cast<int>(ExitReason::VMCALL) == LANTERN_EXIT_REASON_VMCALL);

class VmxVcpu {
 public:
  static constexpr size_t kExitRingSize = 64;

  // Needs this core in VMX operation (VMCLEAR initialises the VMCS). Freed by destroy().
  static Result<VmxVcpu*> create(uint32_t vm_id, uint32_t vcpu_id);
  // Unbinds (if bound here) and frees the VMCS, bitmaps and object.
  static void destroy(VmxVcpu* vcpu);

  // Second call: kInvalidState. Callable bound (on the owning core) or unbound.
  Result<void> setup(uint64_t eptp, const GuestEntry& entry);
  Result<void> bind_to_current_processor();
  Result<void> unbind_from_current_processor();
  // Makes this vCPU's VMCS current again on the core it is bound to (VMPTRLD), after other work
  // on that core loaded other VMCSs. The launch state is kept (no VMCLEAR).
  Result<void> reload_on_this_cpu();

  // Loads a loader's register state (guest/loader/entry_state.h: segments, control registers,
  // RFLAGS, RIP, RSP and the general registers) over the state setup() wrote. Bound core only,
  // before the first run(). vmx/hw/vcpu_entry_state.cpp.
  Result<void> apply_entry_state(const guest::EntryState& state);
  // Starts the vCPU over from `state` under a new EPT (a VM reset): VMCLEAR and VMPTRLD (the next
  // entry is a VMLAUNCH), controls and guest state written again, registers, pending events,
  // vlapic, extended state and the stop reason cleared, cached EPT translations invalidated.
  // Exit counters keep counting. Bound core only, outside run().
  Result<void> restart(uint64_t eptp, const guest::EntryState& state);
  // Stops the vCPU outside run() with `reason` (a VM that ended): run() refuses until restart().
  // Bound core only.
  void stop_outside_run(const char* reason);

  // Any core: run() returns to its caller at the next exit, even one it would handle inside, so
  // the caller's loop gets to its core's mailbox. For guests the wake-up IPI cannot force out:
  // Bochs takes no external-interrupt exit while the guest's RFLAGS.IF is 0. Cleared when run()
  // returns for it.
  void request_return() { return_requested_.store(true, std::memory_order_release); }

  // Must run on the bound core. Disables interrupts around the entry itself.
  Result<VmExit> run();
  Result<void> complete_io_read(uint32_t value);
  Result<void> complete_msr_read(uint64_t value);
  void set_hypercall_result(uint64_t value) { regs_.rax = value; }

  // Arms the VMX preemption timer for the next entries (0 = off). The value counts down at
  // TSC >> rate (SDM Vol. 3C 25.5.1); an expiry is handled inside run() (Nothing).
  Result<void> set_preemption_timer(uint32_t value);
  // Ends every exit-free stretch of guest execution after at most `ticks` preemption-timer
  // ticks (0 = off) and returns from run() then (Nothing), so the caller gets to its mailbox
  // and host work within a bound even when host interrupts cannot force an exit: Bochs takes
  // no external-interrupt exit while the guest keeps RFLAGS.IF = 0. Not applied while the
  // guest sleeps in HLT (a host interrupt wakes it then). The timer's value reloads at every
  // entry (SDM Vol. 3C 25.5.1), so this costs nothing on the exit path. Bound core only; kept
  // across restart().
  Result<void> set_return_backstop(uint32_t ticks);

  // Puts the guest in the HLT activity state (SDM Vol. 3C 24.4.2) with the preemption timer
  // armed: the vCPU sleeps inside VMX non-root until the timer expires (the expiry makes it
  // active again; run() returns Nothing) or a host interrupt exits. kUnsupported when the CPU
  // lacks the HLT activity state or the preemption timer.
  Result<void> sleep_in_hlt(uint32_t preemption_timer_value);
  bool can_sleep_in_hlt() const { return preemption_timer_allowed_ && activity_hlt_allowed_; }
  // Entry and exit switch IA32_PAT (0x277): RDMSR/WRMSR of it may pass through the MSR bitmap,
  // and the CPU checks the memory types a WRMSR writes (SDM Vol. 3A 11.12.2).
  bool guest_owns_pat() const { return pat_switched_; }
  // The guest's TSC now: the host's plus TSC_OFFSET (the vlapic's clock, SDM Vol. 3C 25.3).
  uint64_t guest_tsc() const { return cpu::rdtsc() + tsc_offset_; }

  // I/O and MSR bitmaps (vmx/intercept_bitmaps.h): every access exits by default; passthrough
  // is explicit. Callable on the bound core between run()s, or while unbound; the change
  // applies from the next entry. Errors as set_io_intercept()/set_msr_intercept() there.
  Result<void> set_io_intercept(IoPortRange range, bool on);
  Result<void> set_msr_intercept(MsrRange range, MsrAccess access, bool on);
  bool io_intercepted(uint32_t port, uint32_t width = 1) const;
  bool msr_intercepted(uint32_t msr, bool write) const;

  // Must run on the bound core.
  Result<GuestLongModeState> long_mode_state();
  // The guest's IA32_XSS (switched at entry/exit when the CPU has XSAVES, xstate_hw.h).
  uint64_t guest_xss() const { return guest_xss_; }

  guest::GeneralRegisters& registers() { return regs_; }
  const guest::GeneralRegisters& registers() const { return regs_; }
  // Queues an event for injection (the bounded queue of 8: kFull when full, kInvalidArgument
  // for an invalid event; see pending_events.h). Callable from any core: the queue is locked,
  // and a vCPU bound to another core is kicked (a wake-up IPI forces a VM exit or ends its
  // core's HLT) so the event goes in at the next entry. Returns the event's position.
  Result<size_t> queue_event(guest::PendingEventType type, uint32_t vector,
                             std::optional<uint32_t> error_code = std::nullopt);
  guest::PendingEventSnapshot pending_events() const;
  // The guest's XCR0 (set by its validated XSETBVs).
  uint64_t guest_xcr0() const { return guest_xcr0_; }
  size_t pending_event_count() const;
  uint64_t events_injected() const { return events_injected_; }

  uint32_t vm_id() const { return vm_id_; }
  uint32_t vcpu_id() const { return vcpu_id_; }
  bool is_setup() const { return setup_done_; }
  bool bound() const { return bound_cpu_ >= 0; }
  int32_t bound_cpu() const { return bound_cpu_; }
  uint64_t guest_cr2() const { return guest_cr2_; }
  bool launched() const { return launched_; }
  bool halted() const { return arbiter_.halted_in_guest(); }  // in activity state HLT (SDM Vol. 3C 24.4.2)
  uint64_t vmcs_phys() const { return vmcs_phys_; }
  bool stopped() const { return stop_message_ != nullptr; }
  const char* stop_message() const { return stop_message_; }
  uint32_t stop_exit_reason() const { return stop_exit_reason_; }
  // Owner core: the run loop gives up on this vCPU (an exit it does not handle, a failed run(),
  // the guest's exit-port write). Records `reason` (static text) unless a reason is already
  // recorded, and publishes it, so the console shows the vCPU stopped; run() refuses from then on.
  void stop_by_owner(const char* reason);

  // Null hypercalls resumed by the asm stub are counted (as VMCALL) but not in the ring.
  uint64_t exit_count(uint32_t basic_reason) const { return exit_count_relaxed(basic_reason); }
  uint64_t total_exits() const { return total_exits_ + fast_.null_hypercalls; }
  // Any core: exit_count() read with relaxed loads, without a capture. The owning core writes
  // each counter with a relaxed store (record_exit), so a reader sees a count that is at most a
  // few exits old; the counters are not a consistent snapshot of one moment.
  uint64_t exit_count_relaxed(uint32_t basic_reason) const {
    if (basic_reason >= kExitReasonTableSize) return 0;
    uint64_t n = __atomic_load_n(&exit_counts_[basic_reason], __ATOMIC_RELAXED);
    if (basic_reason == static_cast<uint32_t>(ExitReason::VMCALL)) {
      n += __atomic_load_n(&fast_.null_hypercalls, __ATOMIC_RELAXED);
    }
    return n;
  }
  uint64_t fast_null_hypercalls() const { return fast_.null_hypercalls; }
  // The stub's null-hypercall fast path (on by default).
  void set_fast_null_hypercall(bool on) {
    fast_allowed_ = on;
    arbitrate_ = true;  // fast_.enabled is recomputed before the next entry
  }
  // Attaches the vendor-neutral VM (owner core, before run()): port I/O goes to vm->ports and
  // unknown MSRs follow vm->unknown_msrs; without one every IoRead/IoWrite/MsrRead/MsrWrite
  // returns to the caller. The run loop returns once vm->exit_requested is set.
  void attach_vm(guest::Vm* vm) { vm_core_ = vm; }
  // Any core: the state the owner last published (guest/published_vcpu_state.h).
  const guest::PublishedVcpuState& published() const { return published_; }
  // Copies up to `capacity` most recent exits, newest first; returns how many. Owner core only.
  size_t recent_exits(ExitRecord* out, size_t capacity) const;

  // ---- vlapic (vmx/hw/vcpu_vlapic.cpp) ----
  // The emulated local APIC (x2APIC MSRs 0x800-0x8FF, IA32_TSC_DEADLINE, IA32_APIC_BASE and the
  // xAPIC page at IA32_APIC_BASE through EPT violations are handled inside run()). Owner core only.
  guest::VirtualLapic& vlapic() { return vlapic_; }
  const guest::VirtualLapic& vlapic() const { return vlapic_; }
  uint64_t apic_base() const { return apic_base_; }
  // Joins `group` at index vcpu_id (IPIs between vCPUs of one VM). kInvalidArgument when the
  // id does not fit, kBusy when the slot is taken.
  Result<void> join_group(VcpuGroup* group);
  // A fixed interrupt for this vCPU's vlapic from any core (another vCPU's IPI, a device):
  // posted lock-free, moved into the IRR (and, level-triggered, the TMR) before the next entry;
  // the owner core is kicked.
  void post_interrupt(uint8_t vector, bool level_triggered = false);
  // Whether this vCPU's local APIC is among the logical destination `mda` (SDM Vol. 3A
  // 11.6.2.2): xAPIC flat or cluster model from the guest's LDR/DFR, x2APIC cluster (11.12.10.2).
  // Any core: reads the logical ID the owner last published.
  bool accepts_logical_destination(uint32_t mda) const;
  // INIT and SIPI from another vCPU's ICR (any core): INIT resets the vlapic (keeping x2APIC mode),
  // drops pending events and parks the vCPU halted with interrupts blocked ("wait-for-SIPI",
  // SDM Vol. 3A 9.4, 11.4.7.3); a SIPI while waiting restarts it in real mode at CS = vector << 8,
  // IP = 0 (SDM 8.4.4.1 / 9.4.4). A SIPI at any other time is ignored.
  void post_init();
  void post_sipi(uint8_t vector);
  // An NMI from another vCPU's ICR (any core): queued like the console's (queue_event).
  void post_nmi() { (void)queue_event(guest::PendingEventType::kNmi, 2); }
  bool waiting_for_sipi() const { return wait_for_sipi_; }
  // TSC ticks per vlapic bus clock (the timer's count rate at divide-by-1).
  uint32_t vlapic_tsc_per_bus_clock() const { return vlapic_tsc_per_bus_clock_; }
  uint64_t vlapic_interrupts_injected() const { return vlapic_injected_; }

  // Logs every VMCS field this CPU supports (must run on the bound core).
  void dump_vmcs(const char* why);

  // One exit as the handlers see it. The qualification is read only for the reasons whose
  // table entry asks for it (others have none, SDM Vol. 3C 27.2.1); the instruction length
  // is read on first use (instruction_length()).
  struct ExitInfo {
    uint32_t raw_reason;
    uint16_t basic;
    uint64_t qualification;
    uint64_t rip;
    uint32_t instruction_length;  // kLengthUnread until read
    static constexpr uint32_t kLengthUnread = ~0u;
  };
  using ExitHandler = Result<VmExit> (VmxVcpu::*)(const ExitInfo&);
  // A dispatch-table entry: the handler, and whether it reads EXIT_QUALIFICATION and may leave
  // events to arbitrate before the next entry (ACRN's need_exit_qualification, vmexit.c).
  struct ExitTableEntry {
    ExitHandler handler = nullptr;
    bool needs_qualification = false;
    bool quiet = false;  // touches no event, vlapic, window or activity state
    // The handler's own path uses no SSE/x87 (vcpu.cpp is built with -mgeneral-regs-only) and
    // calls ensure_host_xstate() before anything else: the guest's extended state may stay
    // loaded across the exit.
    bool keeps_guest_xstate = false;
    // Caused by executing an instruction (CPUID, I/O, RDMSR...): such an exit never interrupts
    // the delivery of an event, so IDT-vectoring information is not read (SDM Vol. 3C 27.2.4).
    bool instruction = false;
  };

  // Attention bits: set by other cores (or interrupt handlers) and read before every entry
  // with one relaxed load; the pre-entry work that takes locks runs only when one is set.
  static constexpr uint32_t kAttentionEvents = 1u << 0;  // queue_event(): the queue changed
  static constexpr uint32_t kAttentionPosted = 1u << 1;  // post_interrupt/init/sipi

 private:
  VmxVcpu(uint32_t vm_id, uint32_t vcpu_id) : vm_id_(vm_id), vcpu_id_(vcpu_id) {}

  Result<void> write_controls(uint64_t eptp);
  Result<void> write_guest_state(const GuestEntry& entry);
  Result<void> write_host_state();
  // RIP past the exit's instruction, IP/EIP wrapped, the STI/MOV-SS shadow cleared.
  Result<void> advance_rip(const ExitInfo& exit);
  struct RipSeam;  // guest::complete_emulated_instruction() onto the VMCS (vcpu.cpp)
  // advance_rip() inlined, for the handlers in vcpu.cpp on the exit path (a call, its frame and
  // the Result copies cost a tenth of a CPUID exit); an instruction that crossed a 64 KiB
  // boundary goes to advance_rip().
  [[gnu::always_inline]] inline Result<void> advance_rip_inline(const ExitInfo& exit);
  [[gnu::always_inline]] inline Result<uint32_t> instruction_length(const ExitInfo& exit);
  static bool msr_emulated(uint32_t msr);
  Result<VmExit> stop(const ExitInfo& exit, const char* message);
  [[gnu::always_inline]] inline Result<VmExit> handle_exit(ExitInfo& exit);
  // handle_exit()'s steps for one table entry, then `handler` (inlined with a constant entry for
  // the hot reasons).
  template <typename Handler>
  [[gnu::always_inline]] inline Result<VmExit> dispatch_exit(ExitInfo& exit, const ExitTableEntry& entry,
                                                             Handler handler);
  // The steps of run(), inlined into it (one frame on the exit path). Before an entry: the
  // event arbiter's work, only when attention bits or local state need it.
  [[gnu::always_inline]] inline Result<void> pre_enter();
  // Owner core: refreshes published_ (at every return from run(), and when an exit handled
  // inside it brings the exit count to a multiple of kPublishEveryExits: a guest that never
  // halts on a core without a host timer tick still shows its exits growing).
  void publish_state();
  // The event arbiter's pass (guest/event_arbiter.h) through ArbiterSeam, then the windows,
  // the preemption timer and whether the next entries may skip the pass.
  [[gnu::always_inline]] inline Result<void> arbitrate_events();
  // The arbiter's seam onto this VMCS (vcpu.cpp).
  struct ArbiterSeam;
  // VMfail -> error; success -> the decoded exit (reason, RIP; recorded in the ring).
  [[gnu::always_inline]] inline Result<void> enter_and_decode(ExitInfo& exit);
  // run()'s steps for guest::run_vcpu() (vcpu.cpp).
  struct RunLoopSeam;
  [[gnu::always_inline]] inline void record_exit(const ExitInfo& exit);

  Result<VmExit> on_unexpected(const ExitInfo& exit);
  Result<VmExit> on_exception_or_nmi(const ExitInfo& exit);
  Result<VmExit> on_external_interrupt(const ExitInfo& exit);
  Result<VmExit> on_triple_fault(const ExitInfo& exit);
  Result<VmExit> on_interrupt_window(const ExitInfo& exit);
  [[gnu::always_inline]] inline Result<VmExit> on_cpuid(const ExitInfo& exit);
  struct CpuidSeam;  // guest/cpuid_exit.h onto this vCPU (vcpu.cpp)
  guest::CpuidRegisters policy_cpuid(uint32_t leaf, uint32_t subleaf, const guest::CpuidGuestInputs& inputs);
  Result<VmExit> on_hlt(const ExitInfo& exit);
  Result<VmExit> on_skip_instruction(const ExitInfo& exit);
  Result<VmExit> on_vmcall(const ExitInfo& exit);
  Result<bool> inject_own_interrupt_now(uint8_t vector);
  Result<VmExit> on_vmx_instruction(const ExitInfo& exit);
  [[gnu::always_inline]] inline Result<VmExit> on_io(const ExitInfo& exit);
  [[gnu::always_inline]] inline Result<VmExit> on_msr_read(const ExitInfo& exit);
  Result<VmExit> on_msr_write(const ExitInfo& exit);
  Result<VmExit> on_ept_violation(const ExitInfo& exit);
  Result<VmExit> on_preemption_timer(const ExitInfo& exit);
  Result<VmExit> on_xsetbv(const ExitInfo& exit);
  Result<VmExit> on_cr_access(const ExitInfo& exit);

  // Writes a hardware exception into the VM-entry interruption field for the next entry (the
  // error code is dropped in real mode, where none is pushed).
  Result<void> inject_exception_now(uint8_t vector, std::optional<uint32_t> error_code);
  // The MSR emulation (guest/msr_emulation.h) runs through MsrSeam (vcpu_msr_seam.h).
  struct MsrSeam;
  // vcpu_long_mode.cpp: the MSRs the vCPU emulates itself (IA32_EFER, IA32_XSS); kNotEmulated
  // for any other.
  Result<guest::MsrOutcome> backend_msr_read(uint32_t msr);
  Result<guest::MsrOutcome> backend_msr_write(uint32_t msr, uint64_t value);
  // RDMSR (write false) / WRMSR of `value`: the core's emulation (guest/msr_emulation.h), or the
  // VM's unknown-MSR policy (vcpu.cpp).
  [[gnu::noinline]] Result<VmExit> emulate_msr(const ExitInfo& exit, uint32_t msr, bool write, uint64_t value);
  [[gnu::always_inline]] inline Result<VmExit> unknown_msr(const ExitInfo& exit, uint32_t msr, bool write,
                                                           uint64_t value);
  // A MOV to CR0 from old_cr0 to new_cr0: updates EFER.LMA and the "IA-32e mode guest" entry
  // control (vmx/long_mode.h). False when the move is #GP (injected; nothing changed).
  Result<bool> apply_paging_transition(uint64_t old_cr0, uint64_t new_cr0);
  // A MOV to CR`cr` the vCPU emulates, with the control registers it leaves: when it loads the
  // PAE PDPTEs (vmx/long_mode.h), reads them from guest memory into GUEST_PDPTR0-3. False when
  // a PDPTE has reserved bits (#GP injected; the caller changes nothing); an error when the
  // PDPTEs lie outside guest memory.
  Result<bool> load_pae_pdptes(unsigned cr, uint64_t old_value, uint64_t new_value, uint64_t cr0_after,
                               uint64_t cr4_after, uint64_t cr3_after);
  // Operand mask of MOV CR in the guest's current mode.
  Result<uint64_t> guest_cr_operand_mask();
  void switch_to_guest_xstate();
  void switch_to_host_xstate();
  // The guest's extended state is loaded once per run() and stays loaded across exits whose
  // handlers keep it (ExitTableEntry::keeps_guest_xstate); anything else restores the host's.
  void ensure_guest_xstate() {
    if (!guest_xstate_loaded_) {
      switch_to_guest_xstate();
      guest_xstate_loaded_ = true;
    }
  }
  void ensure_host_xstate() {
    if (guest_xstate_loaded_) {
      switch_to_host_xstate();
      guest_xstate_loaded_ = false;
    }
  }

  static constexpr std::array<ExitTableEntry, kExitReasonTableSize> build_exit_table();
  static const std::array<ExitTableEntry, kExitReasonTableSize>& exit_table();

  // vlapic hooks (vmx/hw/vcpu_vlapic.cpp): nullopt = not a vlapic exit, the normal path goes on.
  void init_vlapic();
  void leave_group();
  void kick_owner();
  Result<void> apply_preemption_timer(uint32_t value);
  Result<void> vlapic_before_entry();
  Result<void> enter_wait_for_sipi();
  Result<void> start_from_sipi(uint8_t vector);
  // After the arbiter's pass: the VMX preemption timer aimed at the vlapic's next deadline, the
  // caller's value or the return backstop, whichever comes first.
  Result<void> aim_preemption_timer();
  Result<std::optional<VmExit>> vlapic_on_hlt();
  Result<std::optional<VmExit>> vlapic_mmio(const ExitInfo& exit, uint64_t gpa, bool write);
  void route_vlapic_side_effects();
  void publish_logical_id();
  Result<std::optional<VmExit>> device_mmio(const ExitInfo& exit, uint64_t gpa, bool write);
  // One MOV between a register (or an immediate) and an MMIO register of `device` at `offset`,
  // decoded at the guest's RIP; RIP advanced. Stops the vCPU with `unsupported` when the
  // instruction is not one the decoder knows (guest/mmio_decode.h).
  Result<std::optional<VmExit>> emulate_mmio_move(const ExitInfo& exit, bool write, guest::MmioDevice& device,
                                                  uint64_t offset, const char* unsupported, const char* mismatch);
  void deliver_ipi(const guest::IpiRequest& ipi);
  // Guest memory (vcpu_vlapic.cpp): a guest-physical address through this vCPU's EPT, bytes
  // copied up to the first unmapped one, and the guest's own paging for linear addresses.
  std::optional<uint64_t> ept_host_address(uint64_t gpa) const;
  template <typename Copy>
  size_t for_each_guest_page(uint64_t gpa, size_t n, Copy copy) const;
  Result<size_t> read_guest_physical(uint64_t gpa, uint8_t* out, size_t n) const;
  Result<size_t> write_guest_physical(uint64_t gpa, const uint8_t* in, size_t n);
  Result<guest::GuestPagingState> guest_paging_state();
  class EptGuestTables final : public guest::GuestPhysicalReader {
   public:
    explicit EptGuestTables(const VmxVcpu& vcpu) : vcpu_(vcpu) {}
    Result<uint64_t> read_u64(uint64_t gpa) const override;
    Result<uint32_t> read_u32(uint64_t gpa) const override;

   private:
    const VmxVcpu& vcpu_;
  };
  // IA32_TSC_AUX into the hardware MSR (RDTSCP/RDPID read it there); the host never uses it.
  void load_guest_tsc_aux();
  friend class VcpuLinearMemory;  // vcpu_string_io.cpp: guest memory for INS/OUTS
  // INS/OUTS on a VM with a port bus (vcpu_string_io.cpp); decodes the qualification itself, so
  // that on_io's decoded fields stay in registers.
  Result<VmExit> on_string_io(const ExitInfo& exit);

  guest::GeneralRegisters regs_{};  // first: the asm stub is handed &regs_
  uint32_t vm_id_;
  uint32_t vcpu_id_;
  uint64_t vmcs_phys_ = 0;
  uint64_t io_bitmap_a_phys_ = 0;
  uint64_t io_bitmap_b_phys_ = 0;
  uint64_t msr_bitmap_phys_ = 0;
  uint64_t guest_xstate_phys_ = 0;      // the guest's XSAVE/FXSAVE area (64-byte aligned page)
  uint64_t host_xstate_phys_ = 0;       // the host's, saved across the guest's run
  uint64_t guest_xcr0_ = 1;             // XCR0 reset value: x87 only (SDM Vol. 1 13.3)
  uint64_t guest_cr2_ = 0;              // CR2 is switched by hand (not in the VMCS)
  uint64_t guest_xss_ = 0;              // IA32_XSS reset value: 0 (SDM Vol. 4 Table 2-2, MSR 0xDA0)
  uint64_t misc_enable_ = 0x1801;       // IA32_MISC_ENABLE: guest::kMiscEnableReset (guest/platform_msrs.h)
  uint64_t mtrr_def_type_ = 0x806;      // IA32_MTRR_DEF_TYPE: guest::kMtrrDefTypeReset (guest/platform_msrs.h)
  std::atomic<int32_t> bound_cpu_{-1};  // read by queue_event() on other cores
  bool setup_done_ = false;
  bool launched_ = false;
  bool preemption_timer_allowed_ = false;
  bool pat_switched_ = false;  // entry loads and exit saves the guest's IA32_PAT (write_controls)
  bool tsc_offsetting_ = false;  // "use TSC offsetting": the guest's TSC is the host's + tsc_offset_
  bool invpcid_enabled_ = false;  // "enable INVPCID": INVPCID runs in the guest
  bool rdtscp_enabled_ = false;  // "enable RDTSCP": RDTSCP/RDPID run in the guest, reading IA32_TSC_AUX
  uint64_t tsc_offset_ = 0;      // TSC_OFFSET (SDM Vol. 3C 25.3), set by guest writes of the TSC
  uint64_t tsc_adjust_ = 0;      // IA32_TSC_ADJUST; with tsc_offset_ a guest::GuestTsc (guest/platform_msrs.h)
  uint64_t tsc_aux_ = 0;         // the guest's IA32_TSC_AUX, in the hardware MSR while bound here
  bool nmi_window_allowed_ = false;
  bool activity_hlt_allowed_ = false;
  bool guest_xstate_loaded_ = false;  // owner core, interrupts off, inside run() only
  uint32_t pin_controls_ = 0;
  uint32_t primary_controls_ = 0;
  enum class PendingCompletion : uint8_t { kNone, kIoRead, kMsrRead };
  PendingCompletion pending_completion_ = PendingCompletion::kNone;
  uint8_t pending_io_width_ = 0;
  uint32_t pending_instruction_length_ = 0;
  const char* stop_message_ = nullptr;
  uint32_t stop_exit_reason_ = 0;
  mutable IrqSpinlock events_lock_;
  guest::PendingEventQueue events_;                   // guarded by events_lock_
  std::atomic<uint32_t> attention_{0};         // kAttention* bits, set from any core
  std::atomic<bool> return_requested_{false};  // request_return()
  // Owner-core state of the arbiter: true while something may still need arbitration before
  // the next entry (queued events, IRR bits, an armed timer, windows, HLT/SIPI sleep).
  bool arbitrate_ = true;
  // The event arbiter (guest/event_arbiter.h): the queued-event gate, whether queued events
  // wait, the HLT sleep. Only a blocked interrupt asks for a window while the queue waits: the
  // preemption timer and host interrupts bring the exits that let it go on.
  guest::EventArbiter arbiter_{guest::EventArbiter::Policy{false}};
  // The event the newest exit interrupted (IDT-vectoring information, SDM Vol. 3C 27.2.4),
  // placed into the entry slot by the arbiter's pass unless a handler injected an event first.
  std::optional<Reinjection> reinjection_;
  uint64_t events_injected_ = 0;
  hw::KernelVmxHw hw_;
  VmxFastPath fast_;
  bool fast_allowed_ = true;

  uint64_t eptp_ = 0;
  guest::Vm* vm_core_ = nullptr;
  uint32_t requested_preemption_timer_ = 0;  // set_preemption_timer()'s value (0 = off)
  uint32_t return_backstop_ = 0;             // set_return_backstop()'s ticks (0 = off)
  guest::VirtualLapic vlapic_{0};
  uint32_t vlapic_tsc_per_bus_clock_ = 1;
  uint64_t apic_base_ = 0;  // IA32_APIC_BASE as the guest sees it
  guest::CpuidLeafCache cpuid_cache_;  // policy_cpuid() answers; cleared when the fixed inputs change
  VcpuGroup* group_ = nullptr;
  guest::PostedVcpuEvents posted_;  // post_interrupt(), post_init(), post_sipi()
  // The vlapic's logical destination as other cores see it: LDR (xAPIC: bits 31:24; x2APIC: the
  // derived cluster ID) and the DFR model (bits 31:28, xAPIC only), published by the owner after
  // every vlapic write and reset (publish_logical_id()).
  std::atomic<uint32_t> published_ldr_{0};
  std::atomic<uint32_t> published_dfr_{0xffffffffu};
  std::atomic<bool> published_x2apic_{false};
  uint64_t vlapic_injected_ = 0;
  bool wait_for_sipi_ = false;

  std::array<uint64_t, kExitReasonTableSize> exit_counts_{};
  uint64_t total_exits_ = 0;
  static constexpr uint32_t kPublishEveryExits = 256;  // a power of two: total_exits_ is masked
  std::array<ExitRecord, kExitRingSize> ring_{};
  size_t ring_next_ = 0;
  guest::PublishedVcpuState published_;
};

// vCPUs created by VmxVcpu::create() since boot (the READY line's vcpus=).
uint32_t vcpus_started();

}  // namespace lantern::vmx
