// In-kernel self-tests of the SVM guest vCPU (`SvmVcpu`, the vCPU the demo and the user VMs run),
// with the guest programs of the VMX self-tests (tests/guests/; their listed VMCALLs become
// VMMCALL when create_svm_guest_vm() loads them, svm/hypercall_sites.h):
//   svm_protected_mode            32-bit protected mode (pm32.inc) as the VMCB shows it, an
//                                 exception with its error code through its IDT
//   svm_event_injection           interrupts, NMIs and exceptions through EVENTINJ, the interrupt
//                                 window (V_IRQ + VINTR), the NMI's IRET window, a queue from another core
//   svm_xstate_isolation          the host's and the guest's XMM/MXCSR kept apart across exits
//   svm_long_mode                 64-bit mode under the guest's own page tables (NPT below them)
//   svm_vlapic                    the vlapic: xAPIC page by NPF, x2APIC MSRs, the three timer modes
//                                 waking HLT, self-IPIs
//   svm_vlapic_ipi_between_vcpus  a fixed IPI and INIT/SIPI from a vCPU on one core to one on another
// All but the last run on every core at once. Hypercalls 3 and up reach the test through the
// vCPU's hypercall handler; every other exit is handled inside the vCPU, as for the demo.
// Without SVM each passes after "skipped: no SVM".
#include <atomic>
#include <optional>
#include <string_view>
#include <utility>

#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/core_mailbox.h"
#include "kernel/core/log.h"
#include "kernel/core/selftest.h"
#include "kernel/core/time.h"
#include "svm/event_injection.h"
#include "svm/exit_code.h"
#include "svm/hw/svm_guest_vcpu.h"
#include "svm/hw/svm_guest_vm.h"
#include "svm/hw/svm_selftest_support.h"
#include "svm/permission_maps.h"
#include "svm/vmcb.h"
#include "guest/hw/guest_vm.h"
#include "guest/hw/host_xmm_probes.h"
#include "guest/pending_events.h"
#include "guest/vlapic.h"

namespace lantern::svm {
namespace {

constexpr uint64_t kNoErrorCode = 0xffffffff;
// Emulated time a guest gets from one hypercall to the next.
constexpr uint64_t kStepTimeoutNs = 30'000'000'000ull;
// How long the BSP waits for another core's part of a two-core test.
constexpr uint64_t kCoreTestTimeoutUs = 120'000'000;
// A halted guest's vlapic timer is seen at the core's next host interrupt (SVM has no preemption
// timer): the APs get the 100 Hz tick the BSP runs from boot, as for the demo VMs.
constexpr uint32_t kHostTickHz = 100;

// Bits of the VMCB save area (APM 15.5.1 Figure 15-4 segment attributes; APM Vol. 2 3.1.1 CR0,
// 3.1.3 CR4, 3.1.7 EFER).
constexpr uint16_t kSegAttribLong = 1u << 9;     // CS.L
constexpr uint16_t kSegAttribDefault32 = 1u << 10;  // CS.D
constexpr uint64_t kCr0Pe = 1u << 0;
constexpr uint64_t kCr0Pg = 1u << 31;
constexpr uint64_t kCr4Pae = 1u << 5;
constexpr uint64_t kCr4Osfxsr = 1u << 9;
constexpr uint64_t kEferLme = 1u << 8;
constexpr uint64_t kEferLma = 1u << 10;
// CPUID.01H:ECX[5] VMX, [26] XSAVE, [27] OSXSAVE, [31] hypervisor; 8000_0001H:EDX[29] long mode.
constexpr uint64_t kCpuid1EcxVmx = 1u << 5;
constexpr uint64_t kCpuid1EcxXsave = 1u << 26;
constexpr uint64_t kCpuid1EcxOsxsave = 1u << 27;
constexpr uint64_t kCpuid1EcxHypervisor = 1u << 31;
constexpr uint64_t kCpuid80000001EdxLm = 1u << 29;

void start_host_tick_on_this_core() {
  if (this_cpu().index != 0) apic::start_periodic_timer(kHostTickHz, interrupts::kVectorTimer);
}

struct Hypercall {
  uint64_t nr = 0;
  uint64_t args[SvmVcpu::kHypercallArgs] = {};
};

// One SvmVcpu bound to this core running a guest program: in a VM of its own (start) or as
// another vCPU of a VM someone else owns (join). The hypercalls the vCPU hands to its handler
// are taken here one at a time; answer_next() sets the guest's RAX for the next one.
class GuestUnderTest {
 public:
  GuestUnderTest() = default;
  GuestUnderTest(const GuestUnderTest&) = delete;
  GuestUnderTest& operator=(const GuestUnderTest&) = delete;
  ~GuestUnderTest() {
    if (vcpu_ != nullptr) {
      vm_->vcpus.leave(*vcpu_);
      SvmVcpu::destroy(vcpu_);
    }
    if (owns_vm_) destroy_svm_guest_vm(vm_);
  }

  Result<void> start(uint32_t vm_id, std::string_view program, uint32_t vcpu_id) {
    vm_ = TRY(create_svm_guest_vm(vm_id, program));
    owns_vm_ = true;
    return add_vcpu(vcpu_id);
  }
  Result<void> join(SvmGuestVm& vm, uint32_t vcpu_id) {
    vm_ = &vm;
    return add_vcpu(vcpu_id);
  }

  SvmVcpu& vcpu() { return *vcpu_; }
  SvmGuestVm& vm() { return *vm_; }
  void answer_next(uint64_t rax) { answer_ = rax; }
  uint64_t halts() const { return halts_; }

  // One run() of the vCPU; a stopped vCPU is a failure.
  Result<SvmRunOutcome> step() {
    const SvmRunOutcome outcome = TRY(vcpu_->run());
    if (outcome == SvmRunOutcome::kStopped) {
      LOG_ERROR("selftest: vm%u vcpu%u stopped: %s", vm_->vm_id, vcpu_->vcpu_id(),
                vcpu_->stop_message() != nullptr ? vcpu_->stop_message() : "(no reason)");
      return make_error(ErrorCode::kInvalidState, "the guest's vCPU stopped");
    }
    if (outcome == SvmRunOutcome::kHalted) ++halts_;
    return outcome;
  }

  // Runs until the guest's next hypercall (numbers 3 and up).
  Result<Hypercall> next_hypercall() {
    const uint64_t deadline = time::now_ns() + kStepTimeoutNs;
    while (!seen_) {
      TRY(step());
      if (seen_) break;
      if (vm_->exit_requested) {
        return make_error(ErrorCode::kInvalidState, "the guest wrote the exit port, not a hypercall", vm_->exit_status);
      }
      if (time::now_ns() >= deadline) return make_error(ErrorCode::kTimeout, "the guest made no hypercall in time");
    }
    const Hypercall h = *seen_;
    seen_.reset();
    return h;
  }

  // Runs until the guest writes the exit port, and returns the value; a hypercall first fails.
  Result<uint32_t> run_to_exit_port() {
    const uint64_t deadline = time::now_ns() + kStepTimeoutNs;
    while (!vm_->exit_requested) {
      TRY(step());
      if (seen_) {
        LOG_ERROR("selftest: vm%u: hypercall 0x%llx before the exit port", vm_->vm_id,
                  static_cast<unsigned long long>(seen_->nr));
        return make_error(ErrorCode::kInvalidState, "the guest made a hypercall before the exit port");
      }
      if (time::now_ns() >= deadline) return make_error(ErrorCode::kTimeout, "the guest did not reach the exit port");
    }
    return vm_->exit_status;
  }

  // Runs until run() reports the guest halted (its IF = 0 or nothing to wake it).
  Result<void> run_until_halted() {
    const uint64_t deadline = time::now_ns() + kStepTimeoutNs;
    for (;;) {
      if (TRY(step()) == SvmRunOutcome::kHalted) return ok();
      if (seen_) return make_error(ErrorCode::kInvalidState, "the guest made a hypercall instead of HLT");
      if (time::now_ns() >= deadline) return make_error(ErrorCode::kTimeout, "the guest did not halt");
    }
  }

 private:
  // Runs inside run(), after the host's x87/SSE state is back: general registers only, so that
  // svm_xstate_isolation sees the host's XMM registers as it left them.
  __attribute__((target("general-regs-only"))) static bool take(void* context, uint64_t nr,
                                                               const uint64_t (&args)[SvmVcpu::kHypercallArgs],
                                                               uint64_t& result) {
    auto* self = static_cast<GuestUnderTest*>(context);
    Hypercall h;
    h.nr = nr;
    for (size_t i = 0; i < SvmVcpu::kHypercallArgs; ++i) h.args[i] = args[i];
    self->seen_ = h;
    result = self->answer_;
    self->answer_ = 0;
    return true;
  }
  Result<void> add_vcpu(uint32_t vcpu_id) {
    vcpu_ = TRY(SvmVcpu::create(*vm_, vcpu_id, vm_->nested_root, guest::kGuestLoadAddress, guest::kGuestStackTop));
    vcpu_->set_guest_ram(vm_->memory_phys, guest::kGuestMemoryBytes);
    vcpu_->set_hypercall_handler(&take, this);
    return vm_->vcpus.join(*vcpu_);
  }

  SvmGuestVm* vm_ = nullptr;
  bool owns_vm_ = false;
  SvmVcpu* vcpu_ = nullptr;
  std::optional<Hypercall> seen_;
  uint64_t answer_ = 0;
  uint64_t halts_ = 0;
};

uint32_t vm_id_for_this_core(uint32_t base) { return base + 100 * this_cpu().index; }

// The next hypercall must be `nr` with args[0] = `arg0` (when given); logs what came instead.
Result<bool> expect_hypercall(GuestUnderTest& guest, const char* test, uint64_t nr, std::optional<uint64_t> arg0) {
  const Hypercall h = TRY(guest.next_hypercall());
  if (h.nr == nr && (!arg0 || h.args[0] == *arg0)) return true;
  LOG_ERROR("%s: cpu%u: expected hypercall 0x%llx (0x%llx), got 0x%llx (0x%llx, 0x%llx)", test, this_cpu().index,
            static_cast<unsigned long long>(nr), static_cast<unsigned long long>(arg0.value_or(0)),
            static_cast<unsigned long long>(h.nr), static_cast<unsigned long long>(h.args[0]),
            static_cast<unsigned long long>(h.args[1]));
  return false;
}

// pm32.inc's handlers report each event by hypercall 0x31: vector, error code (or all ones).
constexpr uint64_t kPmReport = 0x31;
Result<bool> expect_report(GuestUnderTest& guest, const char* test, uint64_t vector, uint64_t error_code) {
  const Hypercall h = TRY(guest.next_hypercall());
  if (h.nr == kPmReport && h.args[0] == vector && (h.args[1] & 0xffffffffu) == error_code) return true;
  LOG_ERROR("%s: cpu%u: expected vector 0x%llx error 0x%llx, got hypercall 0x%llx (0x%llx, 0x%llx)", test,
            this_cpu().index, static_cast<unsigned long long>(vector), static_cast<unsigned long long>(error_code),
            static_cast<unsigned long long>(h.nr), static_cast<unsigned long long>(h.args[0]),
            static_cast<unsigned long long>(h.args[1]));
  return false;
}

// ---- 32-bit protected mode and events (tests/guests/events.S) ----------------------------------

constexpr uint64_t kEvReady = 0x30;
constexpr uint64_t kEvWindow = 0x32;
constexpr uint64_t kEvDone = 0x33;

Result<void> protected_mode_on_this_core(uint64_t) {
  if (skip_without_svm("svm_protected_mode")) return ok();
  GuestUnderTest guest;
  TRY(guest.start(vm_id_for_this_core(920), "events", 0));
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, "svm_protected_mode", kEvReady, 1)));
  // pm32.inc's switch, as the guest's own MOV to CR0 and far jump left it: CR0.PE without paging,
  // CS = 0x08 with a 32-bit default size and base 0, its GDT (3 entries) and IDT (0x48 gates).
  const Vmcb& vmcb = guest.vcpu().vmcb();
  SELFTEST_EXPECT((vmcb.save.cr0 & kCr0Pe) != 0 && (vmcb.save.cr0 & kCr0Pg) == 0);
  SELFTEST_EXPECT(vmcb.save.cs.selector == 0x08 && vmcb.save.cs.base == 0);
  SELFTEST_EXPECT((vmcb.save.cs.attrib & kSegAttribDefault32) != 0 && (vmcb.save.cs.attrib & kSegAttribLong) == 0);
  SELFTEST_EXPECT(vmcb.save.ss.selector == 0x10 && vmcb.save.ds.selector == 0x10);
  SELFTEST_EXPECT(vmcb.save.gdtr.limit == 3 * 8 - 1 && vmcb.save.idtr.limit == 0x48 * 8 - 1);
  SELFTEST_EXPECT(vmcb.save.rip > guest::kGuestLoadAddress && vmcb.save.rip < guest::kGuestLoadAddress + 0x1000);
  // Only protected mode delivers an error code (in real mode it is dropped): #GP(0x1238)
  // reaches the guest's IDT with it.
  TRY(guest.vcpu().queue_event(guest::PendingEventType::kHardwareException, 13, 0x1238));
  SELFTEST_EXPECT(TRY(expect_report(guest, "svm_protected_mode", 13, 0x1238)));
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, "svm_protected_mode", kEvReady, 2)));
  SELFTEST_EXPECT(!guest.vcpu().stopped());
  return ok();
}

std::atomic<SvmVcpu*> g_remote_vcpu{nullptr};
std::atomic<int> g_remote_result{-1};
void queue_from_remote_core(interrupts::Frame&) {
  SvmVcpu* vcpu = g_remote_vcpu.exchange(nullptr);
  if (vcpu == nullptr) return;
  auto queued = vcpu->queue_event(guest::PendingEventType::kExternalInterrupt, 0x43, std::nullopt);
  g_remote_result.store(queued ? static_cast<int>(*queued) : -2);
}

Result<void> event_injection_on_this_core(uint64_t) {
  if (skip_without_svm("svm_event_injection")) return ok();
  constexpr const char* kTest = "svm_event_injection";
  GuestUnderTest guest;
  TRY(guest.start(vm_id_for_this_core(921), "events", 0));
  SvmVcpu& vcpu = guest.vcpu();
  using guest::PendingEventType;

  // 1-4: each event arrives in the guest's IDT with its vector (and an error code exactly when
  // the vector has one), injected through EVENTINJ.
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvReady, 1)));
  SELFTEST_EXPECT(TRY(vcpu.queue_event(PendingEventType::kExternalInterrupt, 0x40, std::nullopt)) == 0);
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 0x40, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvReady, 2)));
  TRY(vcpu.queue_event(PendingEventType::kNmi, 2, std::nullopt));
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 2, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvReady, 3)));
  TRY(vcpu.queue_event(PendingEventType::kHardwareException, 13, 0x1238));
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 13, 0x1238)));
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvReady, 4)));
  TRY(vcpu.queue_event(PendingEventType::kHardwareException, 6, std::nullopt));
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 6, kNoErrorCode)));
  SELFTEST_EXPECT(vcpu.published().events_injected.load() == 4);

  // 5: with RFLAGS.IF = 0 the interrupt waits: V_IRQ + the VINTR intercept (APM 15.21.4) bring
  // the exit once the guest's STI and the instruction in its shadow ran; then EVENTINJ.
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvReady, 5)));
  const uint64_t vintr_before = vcpu.exit_count(kVmexitVintr);
  TRY(vcpu.queue_event(PendingEventType::kExternalInterrupt, 0x41, std::nullopt));
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvWindow, 4)));  // nothing delivered with IF = 0
  SELFTEST_EXPECT(vcpu.pending_event_count() == 1);
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 0x41, kNoErrorCode)));
  SELFTEST_EXPECT(vcpu.exit_count(kVmexitVintr) > vintr_before);

  // 6: three at once, queued lowest priority first: the exception goes first, the NMI nests in
  // its handler, and the interrupt waits for the IRET that sets IF again. A host interrupt is
  // pending at the VMRUN that injects the exception (a self-IPI sent with interrupts off, as the
  // BSP's timer tick may be): its INTR exit comes right after the delivery, before the handler's
  // first instruction, and must not let the NMI in ahead of the handler's report.
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvReady, 6)));
  SELFTEST_EXPECT(TRY(vcpu.queue_event(PendingEventType::kExternalInterrupt, 0x40, std::nullopt)) == 0);
  SELFTEST_EXPECT(TRY(vcpu.queue_event(PendingEventType::kNmi, 2, std::nullopt)) == 0);
  SELFTEST_EXPECT(TRY(vcpu.queue_event(PendingEventType::kHardwareException, 13, 0)) == 0);
  const uint64_t intr_before = vcpu.exit_count(kVmexitIntr);
  {
    cpu::InterruptsOff irq_off;  // the host takes the interrupt when this scope ends
    apic::send_fixed_ipi(this_cpu().apic_id, interrupts::kVectorWakeup);
    TRY(guest.step());
  }
  SELFTEST_EXPECT(vcpu.exit_count(kVmexitIntr) > intr_before);
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 13, 0)));
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 2, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 0x40, kNoErrorCode)));

  // 7: a second NMI queued while the first one's handler runs goes in right after the handler's
  // IRET, which returns into a loop with IF = 0 and no exits: the IRET intercept, then the
  // single step over the IRET (its #DB exit), not the interrupt window.
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvReady, 7)));
  const uint64_t debug_exits_before = vcpu.exit_count(kVmexitExcp0 + kVectorDebug);
  TRY(vcpu.queue_event(PendingEventType::kNmi, 2, std::nullopt));
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 2, kNoErrorCode)));  // inside the first handler
  TRY(vcpu.queue_event(PendingEventType::kNmi, 2, std::nullopt));
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 2, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvWindow, 2)));  // both NMIs within the loop
  SELFTEST_EXPECT(vcpu.exit_count(kVmexitExcp0 + kVectorDebug) == debug_exits_before + 1);
  SELFTEST_EXPECT((vcpu.vmcb().save.rflags & kRflagsTf) == 0);
  SELFTEST_EXPECT((vcpu.vmcb().control.intercept_exceptions & kInterceptDebug) == 0);

  // 8: with TF set, the CPUID the vCPU emulates is followed by a single-step #DB like the three
  // instructions the processor runs after it.
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvReady, 8)));
  for (int i = 0; i < 4; ++i) SELFTEST_EXPECT(TRY(expect_report(guest, kTest, kVectorDebug, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvWindow, 4)));
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, kEvDone, 14)));
  SELFTEST_EXPECT(vcpu.pending_event_count() == 0);

  // 7. The guest halts. On the BSP, cpu1 queues an interrupt while this core sleeps with the
  //    guest in HLT: the queue is locked and cpu1 kicks this core with the wake-up IPI (cpu1
  //    runs its own copy meanwhile: the call-function IPI reaches it as an INTR exit).
  TRY(guest.run_until_halted());
  if (cpu_count() > 1 && this_cpu().index == 0 && cpu_by_index(1) != nullptr) {
    g_remote_vcpu.store(&vcpu);
    g_remote_result.store(-1);
    interrupts::set_handler(interrupts::kVectorCallFunction, &queue_from_remote_core);
    apic::send_fixed_ipi(cpu_by_index(1)->apic_id, interrupts::kVectorCallFunction);
    Result<bool> reported = expect_report(guest, kTest, 0x43, kNoErrorCode);
    // cpu1 stores its result after queue_event() returned; the guest may have been faster.
    for (int i = 0; i < 1000000 && g_remote_result.load() == -1; ++i) cpu::pause();
    interrupts::set_handler(interrupts::kVectorCallFunction, nullptr);
    g_remote_vcpu.store(nullptr);
    SELFTEST_EXPECT(g_remote_result.load() == 0);
    SELFTEST_EXPECT(TRY(std::move(reported)));
  }

  // The queue's rules through the vCPU: invalid events and a full queue are errors.
  auto bad = vcpu.queue_event(PendingEventType::kHardwareException, 13, std::nullopt);  // #GP needs an error code
  SELFTEST_EXPECT(!bad && bad.error().code == ErrorCode::kInvalidArgument);
  bad = vcpu.queue_event(PendingEventType::kNmi, 3, std::nullopt);
  SELFTEST_EXPECT(!bad && bad.error().code == ErrorCode::kInvalidArgument);
  for (uint32_t i = 0; i < guest::PendingEventQueue::kCapacity; ++i) {
    SELFTEST_EXPECT(TRY(vcpu.queue_event(PendingEventType::kExternalInterrupt, 0x50 + i, std::nullopt)) == i);
  }
  bad = vcpu.queue_event(PendingEventType::kExternalInterrupt, 0x60, std::nullopt);
  SELFTEST_EXPECT(!bad && bad.error().code == ErrorCode::kFull);
  SELFTEST_EXPECT(!vcpu.stopped());
  return ok();
}

// ---- Extended state (tests/guests/xstate.S) ------------------------------------------------------

using namespace guest::selftest_probes;  // Xmm, host_load_xmm, host_read_xmm7, host_read_mxcsr

Result<void> xstate_isolation_on_this_core(uint64_t) {
  if (skip_without_svm("svm_xstate_isolation")) return ok();
  GuestUnderTest guest;
  TRY(guest.start(vm_id_for_this_core(922), "xstate", 0));
  // 0x40: CPUID.01H:ECX as the guest sees it: no XSAVE/OSXSAVE (the SVM vCPU switches x87/SSE
  // with FXSAVE only), no VMX, the hypervisor bit. So the guest takes its FXSAVE-only path.
  Hypercall h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x40);
  SELFTEST_EXPECT((h.args[0] & (kCpuid1EcxXsave | kCpuid1EcxOsxsave | kCpuid1EcxVmx)) == 0);
  SELFTEST_EXPECT((h.args[0] & kCpuid1EcxHypervisor) != 0);
  // The guest loads its pattern into XMM0, XMM7 and MXCSR; at each exit the host puts its own
  // values in the same registers and checks that the guest's never show up on the host side.
  const Xmm host_pattern{0x5555aaaa5555aaaaull, 0x0f0f0f0ff0f0f0f0ull};
  const uint32_t host_mxcsr = host_read_mxcsr();
  host_load_xmm(host_pattern);
  h = TRY(guest.next_hypercall());
  Xmm seen = host_read_xmm7();
  SELFTEST_EXPECT(h.nr == 0x43);
  SELFTEST_EXPECT(seen.lo == host_pattern.lo && seen.hi == host_pattern.hi);
  SELFTEST_EXPECT(host_read_mxcsr() == host_mxcsr);
  for (uint64_t i = 0; i < 3; ++i) {
    host_load_xmm(Xmm{host_pattern.lo + i, host_pattern.hi - i});
    h = TRY(guest.next_hypercall());
    seen = host_read_xmm7();
    SELFTEST_EXPECT(h.nr == 0x44);
    SELFTEST_EXPECT(seen.lo == host_pattern.lo + i && seen.hi == host_pattern.hi - i);
    SELFTEST_EXPECT(host_read_mxcsr() == host_mxcsr);
  }
  // 0x45: the guest compares what it reads back with what it loaded: nothing changed.
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x45 && h.args[0] == 0);
  // The guest's own CR4 write (OSFXSR|OSXMMEXCPT) is in the save area. xstate.S's last step, a
  // MOV to CR4 with VMXE, is not run here: CR4 writes are not intercepted, and where the
  // emulator does not raise the #GP itself (QEMU 7.2 TCG) the next VMRUN refuses the state with
  // VMEXIT_INVALID, which stops this vCPU alone.
  SELFTEST_EXPECT((guest.vcpu().vmcb().save.cr4 & kCr4Osfxsr) != 0);
  SELFTEST_EXPECT(!guest.vcpu().stopped());
  return ok();
}

// ---- 64-bit long mode (tests/guests/longmode.S) -------------------------------------------------

// The ports longmode.S uses: OUT is recorded, IN 0x60 reads 0x7e and IN 0x8004 0xcafef00d.
class RecordingPorts final : public guest::PortDevice {
 public:
  struct Write {
    uint16_t port;
    uint8_t width;
    uint32_t value;
  };
  static constexpr size_t kMaxWrites = 8;
  uint32_t port_read(uint16_t port, uint8_t) override {
    if (port == 0x60) return 0x7e;
    if (port == 0x8004) return 0xcafef00d;
    return 0xffffffffu;
  }
  void port_write(uint16_t port, uint8_t width, uint32_t value) override {
    if (count < kMaxWrites) writes[count] = Write{port, width, value};
    ++count;
  }
  bool wrote(size_t i, uint16_t port, uint8_t width, uint32_t value) const {
    return i < count && i < kMaxWrites && writes[i].port == port && writes[i].width == width &&
           writes[i].value == value;
  }
  Write writes[kMaxWrites] = {};
  size_t count = 0;
};

Result<void> long_mode_on_this_core(uint64_t) {
  if (skip_without_svm("svm_long_mode")) return ok();
  RecordingPorts ports;  // outlives the VM whose port bus points at it
  GuestUnderTest guest;
  TRY(guest.start(vm_id_for_this_core(923), "longmode", 0));
  SvmVcpu& vcpu = guest.vcpu();
  for (const auto& [first, count] : {std::pair<uint16_t, uint32_t>{0x60, 1}, {0x80, 1}, {0x8000, 8}, {0xfffc, 4}}) {
    TRY(guest.vm().ports.register_range(first, count, &ports));
  }

  // 1. Six 64-bit arguments in rdi, rsi, rdx, rcx, r8, r9; the result goes back in rax. The
  //    guest set EFER.LME (WRMSR, emulated) and CR0.PG itself: the CPU activated long mode under
  //    the guest's own page tables (EFER.LMA), and CS is a 64-bit segment.
  guest.answer_next(0xdeadbeefcafebabeull);
  Hypercall h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x60);
  SELFTEST_EXPECT(h.args[0] == 0x0123456789abcdefull && h.args[1] == 0xfedcba9876543210ull);
  SELFTEST_EXPECT(h.args[2] == 0x1122334455667788ull && h.args[3] == 0x8877665544332211ull);
  SELFTEST_EXPECT(h.args[4] == 0xa5a5a5a55a5a5a5aull && h.args[5] == 0x0f0f0f0ff0f0f0f0ull);
  const VmcbSaveArea& s = vcpu.vmcb().save;
  SELFTEST_EXPECT((s.efer & (kEferLme | kEferLma)) == (kEferLme | kEferLma));
  SELFTEST_EXPECT((s.cs.attrib & kSegAttribLong) != 0 && s.cs.selector == 0x18);
  SELFTEST_EXPECT((s.cr0 & (kCr0Pg | kCr0Pe)) == (kCr0Pg | kCr0Pe) && (s.cr4 & kCr4Pae) != 0);
  SELFTEST_EXPECT(s.cr3 == 0x70000);  // the guest's PML4 (longmode.S), translated through NPT
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x61 && h.args[0] == 0xdeadbeefcafebabeull);

  // 2. The guest's own view: EFER.LME|LMA (RDMSR, emulated), CR0.PG|PE, CR4.PAE, and its paging:
  //    a value written through the identity map reads back through two aliases.
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x62);
  SELFTEST_EXPECT((h.args[0] & (kEferLme | kEferLma)) == (kEferLme | kEferLma));
  SELFTEST_EXPECT((h.args[1] & (kCr0Pg | kCr0Pe)) == (kCr0Pg | kCr0Pe) && (h.args[2] & kCr4Pae) != 0);
  SELFTEST_EXPECT(h.args[3] == 0x1234abcd5678ef00ull && h.args[4] == 0x1234abcd5678ef00ull);

  // 3. 64-bit port I/O through the VM's port bus: OUT data is the matching part of rax; IN AL
  //    keeps bits 63:8, IN EAX zero-extends.
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x63);
  SELFTEST_EXPECT(ports.wrote(0, 0x80, 1, 0x5a) && ports.wrote(1, 0x8000, 2, 0xbeef) &&
                  ports.wrote(2, 0xfffc, 4, 0xdeadbeef));
  SELFTEST_EXPECT(h.args[0] == 0xffffffffffffff7eull && h.args[1] == 0xcafef00dull);

  // 4. RDMSR of an MSR the VM reads as 0: EDX:EAX = 0 with the upper halves of rax and rdx
  //    cleared (the guest set both to all ones).
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x64 && h.args[0] == 0 && h.args[1] == 0);

  // 5. CPUID: long mode visible, EBX zero-extended; the hypervisor bit, no VMX.
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x65);
  SELFTEST_EXPECT((h.args[0] & kCpuid80000001EdxLm) != 0 && (h.args[1] >> 32) == 0);
  SELFTEST_EXPECT((h.args[2] & kCpuid1EcxHypervisor) != 0 && (h.args[2] & kCpuid1EcxVmx) == 0);

  // 6. Passthrough through the MSRPM (APM 15.11): with RDMSR of the TSC (0x10) no longer
  //    intercepted, the guest reads it without an MSR exit. (The value is the emulator's: QEMU
  //    7.2 TCG returns 0 here, so it is logged, not checked.)
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x66);
  TRY(vcpu.set_msr_intercept(MsrRange{0x10, 1}, MsrAccess::kRead, false));
  const uint64_t msr_exits = vcpu.exit_count(kVmexitMsr);
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x67);
  const uint64_t passthrough_tsc = h.args[0];
  SELFTEST_EXPECT(vcpu.exit_count(kVmexitMsr) == msr_exits);
  SELFTEST_EXPECT(ports.wrote(3, 0x80, 1, 0x11));

  // 6b. CR8 (V_INTR_MASKING: the guest's writes go to V_TPR, APM 15.21.4, not to this core's
  //     TPR): the guest reads back 9, the vlapic holds TPR 0x90, and this core's own CR8 is
  //     what it was.
  const uint64_t host_cr8 = cpu::read_cr8();
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x68 && h.args[0] == 9);
  SELFTEST_EXPECT(vcpu.vlapic().tpr() == 0x90);  // V_TPR came back into the vlapic
  SELFTEST_EXPECT(cpu::read_cr8() == host_cr8);

  // 7. The exit port, still in 64-bit mode.
  SELFTEST_EXPECT(TRY(guest.run_to_exit_port()) == 0x64);
  SELFTEST_EXPECT(vcpu.vlapic().tpr() == 0);  // the guest's MOV of 0 to CR8
  SELFTEST_EXPECT(ports.wrote(4, 0x80, 1, 0x22) && ports.count == 5);
  SELFTEST_EXPECT((vcpu.vmcb().save.efer & kEferLma) != 0 && (vcpu.vmcb().save.cs.attrib & kSegAttribLong) != 0);
  SELFTEST_EXPECT(!vcpu.stopped());
  LOG_INFO("selftest svm_long_mode: cpu%u: vm%u in 64-bit mode, EFER 0x%llx, CR0 0x%llx, CR4 0x%llx, %llu exits, "
           "TSC read without an exit 0x%llx",
           this_cpu().index, guest.vm().vm_id, static_cast<unsigned long long>(vcpu.vmcb().save.efer),
           static_cast<unsigned long long>(vcpu.vmcb().save.cr0), static_cast<unsigned long long>(vcpu.vmcb().save.cr4),
           static_cast<unsigned long long>(vcpu.total_exits()), static_cast<unsigned long long>(passthrough_tsc));
  return ok();
}

// ---- The vlapic (tests/guests/vlapic.S) ----------------------------------------------------------

constexpr uint64_t kVlTimerVector = 0x44;
constexpr uint64_t kVlOneShotCount = 200000;
constexpr uint64_t kVlDeadlineTicks = 300000;
constexpr uint64_t kVlPeriodCount = 100000;
constexpr uint32_t kVlVcpuId = 2;

Result<void> vlapic_on_this_core(uint64_t) {
  if (skip_without_svm("svm_vlapic")) return ok();
  constexpr const char* kTest = "svm_vlapic";
  start_host_tick_on_this_core();
  GuestUnderTest guest;
  TRY(guest.start(vm_id_for_this_core(924), "vlapic", kVlVcpuId));
  SvmVcpu& vcpu = guest.vcpu();
  const uint64_t tpc = vcpu.vlapic_tsc_per_bus_clock();

  // 1. xAPIC page through NPF exits and the MOV decoder: TPR written by MOV m32,imm32 and
  //    MOV m32,r32 reads back through MOV r32,m32; version and ID (bits 31:24).
  Hypercall h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x60);
  SELFTEST_EXPECT(h.args[0] == 0x20 && h.args[1] == 0x30);
  SELFTEST_EXPECT(h.args[2] == guest::VirtualLapic::kVersion && h.args[3] == (kVlVcpuId << 24));
  SELFTEST_EXPECT(vcpu.exit_count(kVmexitNpf) == 6);

  // 1b. The APIC page moves to 0xfed40000 (neither RAM nor a device here) and back: the
  //     registers answer at each base in turn (SDM Vol. 3A 11.4.5).
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x66);
  SELFTEST_EXPECT(h.args[0] == (0xfed40000u | (1u << 11)));
  SELFTEST_EXPECT(h.args[1] == guest::VirtualLapic::kVersion && h.args[2] == guest::VirtualLapic::kVersion);
  SELFTEST_EXPECT(vcpu.exit_count(kVmexitNpf) == 9);  // TPR cleared, then a read at each base

  // 2. x2APIC mode: IA32_APIC_BASE shows EN and EXTD at the default base (not BSP: vCPU 2); the
  //    ID MSR is the full x2APIC ID; the SVR written through the page survived the switch.
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x61);
  SELFTEST_EXPECT(h.args[0] == (0xfee00000u | (1u << 11) | (1u << 10)));
  SELFTEST_EXPECT(h.args[1] == kVlVcpuId && h.args[2] == guest::VirtualLapic::kVersion && h.args[3] == 0x1ff);
  SELFTEST_EXPECT(vcpu.vlapic().x2apic_mode());

  // 3. WRMSR to the read-only ID: #GP(0) in the guest, the vCPU keeps running.
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 13, 0)));

  // 4. One-shot: the guest's HLT sleeps until the timer interrupt wakes it.
  const uint64_t halts_before = guest.halts();
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, kVlTimerVector, kNoErrorCode)));
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x62 && h.args[0] == 2);
  SELFTEST_EXPECT(h.args[1] >= kVlOneShotCount * tpc);
  SELFTEST_EXPECT(guest.halts() > halts_before);
  const uint64_t one_shot_ticks = h.args[1];

  // 5. TSC deadline: the same, and IA32_TSC_DEADLINE reads 0 once it fired.
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, kVlTimerVector, kNoErrorCode)));
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x63 && h.args[0] == 3);
  SELFTEST_EXPECT(h.args[1] >= kVlDeadlineTicks && h.args[2] == 0);
  const uint64_t deadline_ticks = h.args[1];

  // 6. Periodic: five ticks (or more, if one more fell before the guest stopped the timer), no
  //    faster than the period; the current count reads 0 once stopped.
  uint64_t ticks = 0;
  for (int i = 0; i < 20; ++i) {
    h = TRY(guest.next_hypercall());
    if (h.nr != kPmReport) break;
    SELFTEST_EXPECT(h.args[0] == kVlTimerVector);
    ++ticks;
  }
  SELFTEST_EXPECT(ticks >= 5 && h.nr == 0x64 && h.args[0] == 3 + ticks);
  SELFTEST_EXPECT(h.args[1] >= 5 * kVlPeriodCount * tpc && h.args[2] == 0);
  const uint64_t periodic_ticks = h.args[1];

  // 7. Self-IPIs: the SELF_IPI MSR, the ICR's self shorthand and the ICR to the own ID, each
  //    taken after its WRMSR; after the EOIs nothing is in service and the PPR is 0.
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 0x45, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 0x46, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, 0x47, kNoErrorCode)));
  h = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(h.nr == 0x65 && h.args[0] == 6 + ticks);
  SELFTEST_EXPECT(h.args[1] == 0 && h.args[2] == 0);
  SELFTEST_EXPECT(TRY(guest.run_to_exit_port()) == 0x42);
  SELFTEST_EXPECT(!vcpu.stopped());
  LOG_INFO("selftest svm_vlapic: cpu%u: one-shot woke HLT after %llu ticks, TSC deadline after %llu, %llu periodic "
           "ticks in %llu, 3 self-IPIs (TSC ticks per bus clock %llu)",
           this_cpu().index, static_cast<unsigned long long>(one_shot_ticks),
           static_cast<unsigned long long>(deadline_ticks), static_cast<unsigned long long>(ticks),
           static_cast<unsigned long long>(periodic_ticks), static_cast<unsigned long long>(tpc));
  return ok();
}

// ---- An IPI between two vCPUs on two cores (tests/guests/ipi.S) ----------------------------------

constexpr uint64_t kIpiVector = 0x45;
std::atomic<SvmGuestVm*> g_ipi_vm{nullptr};
std::atomic<uint64_t> g_ipi_restart_cs{~uint64_t{0}};

// On cpu1: vCPU 1 of the BSP's VM receives the fixed IPI in its IDT, then INIT parks it and the
// SIPI restarts it in real mode, where it reports its CS.
Result<void> ipi_receiver_on_this_core(uint64_t) {
  constexpr const char* kTest = "svm_vlapic_ipi_between_vcpus";
  SvmGuestVm* vm = g_ipi_vm.load();
  if (vm == nullptr) return make_error(ErrorCode::kInvalidState, "no VM for the IPI receiver");
  start_host_tick_on_this_core();
  GuestUnderTest guest;
  TRY(guest.join(*vm, 1));
  SELFTEST_EXPECT(TRY(expect_report(guest, kTest, kIpiVector, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, 0x72, std::nullopt)));
  SELFTEST_EXPECT(!guest.vcpu().vlapic().isr_bit(kIpiVector));  // the guest's EOI cleared it
  const Hypercall restart = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(restart.nr == 0x73);
  g_ipi_restart_cs.store(restart.args[0]);
  SELFTEST_EXPECT(!guest.vcpu().waiting_for_sipi());
  SELFTEST_EXPECT((guest.vcpu().vmcb().save.cr0 & kCr0Pe) == 0);  // real mode again
  SELFTEST_EXPECT(guest.vcpu().vlapic().x2apic_mode() && !guest.vcpu().vlapic().software_enabled());  // INIT reset
  return ok();
}

// vCPU 0 on the BSP writes its ICR: a fixed IPI to x2APIC ID 1, then INIT and SIPI.
Result<void> ipi_sender(GuestUnderTest& guest, uint64_t& sipi_vector) {
  constexpr const char* kTest = "svm_vlapic_ipi_between_vcpus";
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, 0x70, std::nullopt)));
  SELFTEST_EXPECT(TRY(expect_hypercall(guest, kTest, 0x71, std::nullopt)));  // vCPU 1 was ready; ICR written
  const Hypercall sent = TRY(guest.next_hypercall());
  SELFTEST_EXPECT(sent.nr == 0x74);
  sipi_vector = sent.args[0];
  return ok();
}

LANTERN_SELFTEST(svm_vlapic_ipi_between_vcpus) {
  if (skip_without_svm("svm_vlapic_ipi_between_vcpus")) return ok();
  if (cpu_count() < 2 || cpu_by_index(1) == nullptr || this_cpu().index == 1) {
    LOG_INFO("selftest svm_vlapic_ipi_between_vcpus: skipped: needs a second core");
    return ok();
  }
  GuestUnderTest guest;  // owns the VM: destroyed after cpu1's vCPU (waited for below)
  TRY(guest.start(925, "ipi", 0));
  g_ipi_vm.store(&guest.vm());
  g_ipi_restart_cs.store(~uint64_t{0});
  TRY(post_core_work(1, &ipi_receiver_on_this_core, 0));
  uint64_t sipi_vector = ~uint64_t{0};
  const Result<void> sender = ipi_sender(guest, sipi_vector);
  // Always collect cpu1's result first, so its vCPU is gone before the VM.
  const Result<void> receiver = wait_core_work(1, kCoreTestTimeoutUs);
  g_ipi_vm.store(nullptr);
  TRY(sender);
  if (!receiver) {
    LOG_ERROR("selftest svm_vlapic_ipi_between_vcpus: cpu1: %s (line/detail %llu)", receiver.error().message,
              static_cast<unsigned long long>(receiver.error().detail));
    return receiver.error();
  }
  SELFTEST_EXPECT(!guest.vcpu().vlapic().irr_bit(kIpiVector) && !guest.vcpu().vlapic().isr_bit(kIpiVector));
  SELFTEST_EXPECT(sipi_vector != 0 && sipi_vector < 0x100 && g_ipi_restart_cs.load() == (sipi_vector << 8));
  LOG_INFO("selftest svm_vlapic_ipi_between_vcpus: vm925 vcpu0 (cpu0) -> vcpu1 (cpu1): vector 0x45 delivered; "
           "INIT + SIPI 0x%llx restarted vcpu1 at CS 0x%llx",
           static_cast<unsigned long long>(sipi_vector), static_cast<unsigned long long>(g_ipi_restart_cs.load()));
  return ok();
}

LANTERN_SELFTEST(svm_protected_mode) {
  return run_on_every_core("svm_protected_mode", &protected_mode_on_this_core);
}
LANTERN_SELFTEST(svm_event_injection) {
  return run_on_every_core("svm_event_injection", &event_injection_on_this_core);
}
LANTERN_SELFTEST(svm_xstate_isolation) {
  return run_on_every_core("svm_xstate_isolation", &xstate_isolation_on_this_core);
}
LANTERN_SELFTEST(svm_long_mode) {
  return run_on_every_core("svm_long_mode", &long_mode_on_this_core);
}
LANTERN_SELFTEST(svm_vlapic) {
  return run_on_every_core("svm_vlapic", &vlapic_on_this_core);
}

}  // namespace
}  // namespace lantern::svm
