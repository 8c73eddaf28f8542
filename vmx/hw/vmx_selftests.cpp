// In-kernel VMX self-tests (`selftest` on the command line). Without VMX (QEMU TCG) each test
// passes after logging "skipped: no VMX"; under Bochs they drive tests/guests/selftest.S through
// the real VMX instructions.
#include <atomic>
#include <string_view>
#include <variant>

#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/log.h"
#include "kernel/core/selftest.h"
#include "kernel/core/time.h"
#include "kernel/lib/string.h"
#include "vmx/cr_access.h"
#include "kernel/core/core_mailbox.h"
#include "vmx/hw/guest_vm.h"
#include "vmx/hw/vcpu.h"
#include "vmx/hw/vmx_instructions.h"
#include "guest/cpuid_policy.h"
#include "guest/hw/host_xmm_probes.h"
#include "vmx/hw/vmx_operation.h"
#include "guest/hw/xstate_hw.h"
#include "vmx/long_mode.h"
#include "guest/xstate.h"

namespace lantern::vmx {
namespace {

bool skip_without_vmx(const char* test) {
  if (this_cpu_in_vmx_operation()) return false;
  const char* why = unavailable_reason();
  LOG_INFO("selftest %s: skipped: no VMX (%s)", test, why != nullptr ? why : "this core is not in VMX operation");
  return true;
}

// Runs until an exit the test has to look at (handled-inside and host-interrupt exits are skipped).
Result<VmExit> next_exit(VmxVcpu& vcpu) {
  for (int i = 0; i < 10000; ++i) {
    VmExit exit = TRY(vcpu.run());
    if (!std::holds_alternative<exits::Nothing>(exit) && !std::holds_alternative<exits::ExternalInterrupt>(exit)) {
      return exit;
    }
  }
  return make_error(ErrorCode::kTimeout, "the guest made no visible exit in 10000 entries");
}

// The guests' MSR step (selftest.S and longmode.S): RDMSR 0x1234 is completed with
// 0x1122334455667788 and the guest reports EDX and EAX by hypercall `report_nr`; then WRMSR 0x4321
// with EDX:EAX = 0x01020304:0xaabbccdd.
Result<void> expect_msr_round_trip(VmxVcpu& vcpu, uint64_t report_nr) {
  VmExit e = TRY(next_exit(vcpu));
  auto* rd = std::get_if<exits::MsrRead>(&e);
  SELFTEST_EXPECT(rd != nullptr && rd->msr == 0x1234);
  TRY(vcpu.complete_msr_read(0x1122334455667788ull));
  e = TRY(next_exit(vcpu));
  auto* hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == report_nr && hc->args[0] == 0x55667788 && hc->args[1] == 0x11223344);
  e = TRY(next_exit(vcpu));
  auto* wr = std::get_if<exits::MsrWrite>(&e);
  SELFTEST_EXPECT(wr != nullptr && wr->msr == 0x4321 && wr->value == 0x01020304aabbccddull);
  return ok();
}

struct VcpuGuard {
  VmxVcpu* vcpu;
  ~VcpuGuard() { VmxVcpu::destroy(vcpu); }
};
// Declared before the VcpuGuard, so the vCPU goes first and then its VM (memory, EPT).
struct VmGuard {
  VmxVm* vm;
  ~VmGuard() { destroy_guest_vm(vm); }
};

// VM ids of the self-test guests: the test's base id plus 100 per core, so the copies that run
// at once on every core have distinct VMs (and distinct console prefixes).
uint32_t vm_id_for_this_core(uint32_t base) { return base + 100 * this_cpu().index; }

// How long the BSP waits for an AP's copy of a guest test (emulated time; Bochs runs every CPU
// in one host thread, so the APs' copies are no faster than the BSP's).
constexpr uint64_t kCoreTestTimeoutUs = 120'000'000;

// "cpuN: <message>" for a failure on core N: the SELFTEST FAIL line names the core. One buffer
// per core, written once per failing test run (the message must outlive the Result).
constexpr size_t kFailureTextBytes = 112;
char g_failure_text[kMaxCpus][kFailureTextBytes];
const char* name_core_in_failure(uint32_t core, const char* message) {
  char* out = g_failure_text[core % kMaxCpus];
  size_t n = 0;
  auto put = [&](char c) {
    if (n + 1 < kFailureTextBytes) out[n++] = c;
  };
  for (const char* p = "cpu"; *p != '\0'; ++p) put(*p);
  char digits[10];
  int d = 0;
  uint32_t v = core;
  do {
    digits[d++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && d < 10);
  while (d > 0) put(digits[--d]);
  put(':');
  put(' ');
  for (const char* p = message != nullptr ? message : ""; *p != '\0'; ++p) put(*p);
  out[n] = '\0';
  return out;
}

// Runs `body` on every online core at once: posts it to each AP through the mailbox, runs the
// BSP's own copy, then collects every AP's result. The first failure (in core order: the BSP's,
// then the APs') is returned with the core named in its message; every failure is logged.
Result<void> run_on_every_core(const char* test, CoreWork body) {
  const uint32_t me = this_cpu().index;
  bool posted[kMaxCpus] = {};
  uint32_t cores = 0;
  uint32_t passed = 0;
  Error first{};
  auto record = [&](uint32_t core, const Result<void>& r) {
    ++cores;
    if (r) {
      ++passed;
      return;
    }
    LOG_ERROR("selftest %s: cpu%u FAIL %s (%s, line/detail %llu)", test, core, r.error().message,
              error_code_name(r.error().code), static_cast<unsigned long long>(r.error().detail));
    if (first.code == ErrorCode::kOk) {
      first = Error{r.error().code, name_core_in_failure(core, r.error().message), r.error().detail};
    }
  };
  for (uint32_t i = 0; i < kMaxCpus; ++i) {
    if (i == me || cpu_by_index(i) == nullptr) continue;
    auto p = post_core_work(i, body, i);
    if (p) {
      posted[i] = true;
    } else {
      record(i, p);
    }
  }
  Result<void> mine = body(me);
  // Collect the APs first so that a failing BSP copy never leaves work behind in the mailboxes.
  Result<void> theirs[kMaxCpus];
  for (uint32_t i = 0; i < kMaxCpus; ++i) {
    if (posted[i]) theirs[i] = wait_core_work(i, kCoreTestTimeoutUs);
  }
  record(me, mine);
  for (uint32_t i = 0; i < kMaxCpus; ++i) {
    if (posted[i]) record(i, theirs[i]);
  }
  if (first.code != ErrorCode::kOk) return first;
  LOG_INFO("selftest %s: passed on %u of %u cores at once", test, passed, cores);
  return ok();
}

LANTERN_SELFTEST(vmx_every_core_in_vmx_operation) {
  if (skip_without_vmx("vmx_every_core_in_vmx_operation")) return ok();
  SELFTEST_EXPECT(capabilities() != nullptr);
  SELFTEST_EXPECT(cores_in_vmx_operation() == cpu_count());
  return ok();
}

LANTERN_SELFTEST(vmx_vmfail_is_a_value) {
  if (skip_without_vmx("vmx_vmfail_is_a_value")) return ok();
  VmGuard vm_guard{TRY(create_guest_vm(900, "selftest"))};
  VmxVm* vm = vm_guard.vm;
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, 0))};
  // The vCPU's VMCS is current: VMPTRLD of an unaligned address is VMfailValid with error 9
  // (SDM Vol. 3C 30.4, Table 30-1), and the current VMCS stays.
  auto bad_load = hw::vmptrld(0x1001);
  SELFTEST_EXPECT(!bad_load);
  SELFTEST_EXPECT(is_vm_instruction_error(bad_load.error(), VmInstructionError::kVmptrldInvalidAddress));
  // VMWRITE to a read-only field (VM_EXIT_REASON): error 13, unless the CPU allows writes to
  // exit-information fields (IA32_VMX_MISC bit 29).
  if (!capabilities()->vmwrite_exit_info) {
    auto bad_write = hw::vmwrite(encoding_of(VmcsField32::VM_EXIT_REASON), 0);
    SELFTEST_EXPECT(!bad_write);
    SELFTEST_EXPECT(is_vm_instruction_error(bad_write.error(), VmInstructionError::kVmwriteReadOnlyComponent));
  }
  // VMREAD of a field the VMCS lacks: VMfailValid with error 12 (SDM Vol. 3C 30.4, Table 30-1;
  // encodings in Vol. 3D Appendix B).
  auto bad_read = hw::vmread(0x6c7e);  // a host-state natural-width index no CPU defines
  SELFTEST_EXPECT(!bad_read);
  SELFTEST_EXPECT(is_vm_instruction_error(bad_read.error(), VmInstructionError::kUnsupportedVmcsComponent));
  // VMCLEAR of the current VMCS leaves none current (SDM Vol. 3C 30.3 VMCLEAR): VMREAD and
  // VMWRITE are then VMfailInvalid (detail 0).
  SELFTEST_EXPECT(guard.vcpu->unbind_from_current_processor().has_value());
  auto no_vmcs_read = hw::vmread(encoding_of(VmcsFieldNatural::GUEST_RIP));
  SELFTEST_EXPECT(!no_vmcs_read && no_vmcs_read.error().code == ErrorCode::kVmxInstructionFailed &&
                  no_vmcs_read.error().detail == 0);
  auto no_vmcs_write = hw::vmwrite(encoding_of(VmcsFieldNatural::GUEST_RIP), 0);
  SELFTEST_EXPECT(!no_vmcs_write && no_vmcs_write.error().code == ErrorCode::kVmxInstructionFailed &&
                  no_vmcs_write.error().detail == 0);
  SELFTEST_EXPECT(guard.vcpu->bind_to_current_processor().has_value());
  // setup() is once only; binding twice on the same core is harmless.
  auto again = guard.vcpu->setup(vm->nested_root, GuestEntry{});
  SELFTEST_EXPECT(!again && again.error().code == ErrorCode::kInvalidState);
  SELFTEST_EXPECT(guard.vcpu->bind_to_current_processor().has_value());
  return ok();
}

Result<void> guest_exits_on_this_core(uint64_t) {
  if (skip_without_vmx("vmx_guest_exits")) return ok();
  VmGuard vm_guard{TRY(create_guest_vm(vm_id_for_this_core(901), "selftest"))};
  VmxVm* vm = vm_guard.vm;
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, 3))};
  VmxVcpu& vcpu = *guard.vcpu;
  guest::GeneralRegisters& regs = vcpu.registers();
  regs.r8 = 0x8888888888888888ull;
  regs.r9 = 0x9999999999999999ull;
  regs.r15 = 0xf15f15f15f15f15full;

  // 1. VMCALL round trip: number and arguments, r8/r9 untouched by the entry/exit stub.
  VmExit e = TRY(next_exit(vcpu));
  auto* hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr);
  SELFTEST_EXPECT(hc->nr == 0x10);
  SELFTEST_EXPECT(hc->args[0] == 0x11 && hc->args[1] == 0x22 && hc->args[2] == 0x33 && hc->args[3] == 0x44);
  SELFTEST_EXPECT(hc->args[4] == 0x8888888888888888ull && hc->args[5] == 0x9999999999999999ull);
  vcpu.set_hypercall_result(0xc0ffee);
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x11 && hc->args[0] == 0xc0ffee);
  SELFTEST_EXPECT(regs.r15 == 0xf15f15f15f15f15full);

  // 2. OUT of each width: port, width and the matching part of rax.
  e = TRY(next_exit(vcpu));
  auto* out = std::get_if<exits::IoWrite>(&e);
  SELFTEST_EXPECT(out != nullptr && out->port == 0x80 && out->width == 1 && out->data == 0x5a);
  e = TRY(next_exit(vcpu));
  out = std::get_if<exits::IoWrite>(&e);
  SELFTEST_EXPECT(out != nullptr && out->port == 0x84 && out->width == 2 && out->data == 0xbeef);
  e = TRY(next_exit(vcpu));
  out = std::get_if<exits::IoWrite>(&e);
  SELFTEST_EXPECT(out != nullptr && out->port == 0x88 && out->width == 4 && out->data == 0xdeadbeef);

  // 3. IN of each width, completed by the host: AL/AX keep the other bits, EAX replaces them.
  e = TRY(next_exit(vcpu));
  auto* in = std::get_if<exits::IoRead>(&e);
  SELFTEST_EXPECT(in != nullptr && in->port == 0x60 && in->width == 1);
  SELFTEST_EXPECT(!vcpu.run());  // run() refuses until the read is completed
  TRY(vcpu.complete_io_read(0x7e));
  e = TRY(next_exit(vcpu));
  in = std::get_if<exits::IoRead>(&e);
  SELFTEST_EXPECT(in != nullptr && in->port == 0x64 && in->width == 2);
  TRY(vcpu.complete_io_read(0xabcd));
  e = TRY(next_exit(vcpu));
  in = std::get_if<exits::IoRead>(&e);
  SELFTEST_EXPECT(in != nullptr && in->port == 0x68 && in->width == 4);
  TRY(vcpu.complete_io_read(0xcafef00d));
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x12);
  SELFTEST_EXPECT(hc->args[0] == 0x1122337e && hc->args[1] == 0x1122abcd && hc->args[2] == 0xcafef00d);

  // 4. CPUID handled inside: VMX hidden, hypervisor bit set, vCPU id as APIC ID, signature.
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x13);
  SELFTEST_EXPECT((hc->args[0] & (1u << 31)) != 0 && (hc->args[0] & (1u << 5)) == 0);
  SELFTEST_EXPECT((hc->args[1] >> 24) == 3);
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::CPUID)) == 1);
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x14);
  char signature[13] = {};
  lib::mem_copy(signature + 0, &hc->args[0], 4);
  lib::mem_copy(signature + 4, &hc->args[1], 4);
  lib::mem_copy(signature + 8, &hc->args[2], 4);
  SELFTEST_EXPECT(lib::mem_compare(signature, kCpuidHypervisorSignature, 12) == 0);
  SELFTEST_EXPECT(hc->args[3] == guest::kCpuidHypervisorTimingLeaf);  // the highest hypervisor leaf

  // 5. RDMSR completed as EDX:EAX; WRMSR value from EDX:EAX.
  TRY(expect_msr_round_trip(vcpu, 0x15));

  // 6. HLT, then the exit port. Before them the guest's CPUID at 0x1000:0xfffe (handled inside
  //    run(), no exit here) must leave IP = 0 (16-bit code wraps at 64 KiB); otherwise its next
  //    fetch is beyond CS's limit and the guest never reaches the HLT.
  e = TRY(next_exit(vcpu));
  SELFTEST_EXPECT(std::holds_alternative<exits::Halt>(e));
  e = TRY(next_exit(vcpu));
  out = std::get_if<exits::IoWrite>(&e);
  SELFTEST_EXPECT(out != nullptr && out->port == 0xf4 && out->data == 0x42);

  // 7. An exit without a handler: the vCPU stops alone with the reason recorded (the VMCS dump
  //    is in the log), and stays stopped.
  auto unexpected = vcpu.run();
  SELFTEST_EXPECT(!unexpected && unexpected.error().code == ErrorCode::kInvalidState);
  SELFTEST_EXPECT(vcpu.stopped());
  SELFTEST_EXPECT((vcpu.stop_exit_reason() & 0xffff) == static_cast<uint32_t>(ExitReason::IO_INSTRUCTION));
  SELFTEST_EXPECT(!vcpu.run());

  // Accounting: every exit counted, the ring holds the latest first.
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::VMCALL)) == 6);
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::IO_INSTRUCTION)) == 8);
  ExitRecord recent[2];
  SELFTEST_EXPECT(vcpu.recent_exits(recent, 2) == 2);
  SELFTEST_EXPECT((recent[0].reason & 0xffff) == static_cast<uint32_t>(ExitReason::IO_INSTRUCTION));
  SELFTEST_EXPECT((recent[1].reason & 0xffff) == static_cast<uint32_t>(ExitReason::IO_INSTRUCTION));
  SELFTEST_EXPECT(recent[0].rip != recent[1].rip);
  return ok();
}

// The next hypercall, with the guest devices (UART, HLT, ...) handled on the way.
Result<exits::Hypercall> next_hypercall(VmxVm& vm, VmxVcpu& vcpu) {
  for (int i = 0; i < 100; ++i) {
    VmExit exit = TRY(next_exit(vcpu));
    if (auto* hc = std::get_if<exits::Hypercall>(&exit)) return *hc;
    const bool handled = TRY(handle_device_exit(vm, vcpu, exit));
    if (!handled) return make_error(ErrorCode::kInvalidState, "guest made an exit the test does not expect");
  }
  return make_error(ErrorCode::kTimeout, "the guest made no hypercall in 100 exits");
}

// Hypercalls of tests/guests/events.S.
constexpr uint64_t kEvReady = 0x30;
constexpr uint64_t kEvReport = 0x31;
constexpr uint64_t kEvWindow = 0x32;
constexpr uint64_t kEvDone = 0x33;
constexpr uint64_t kNoErrorCode = 0xffffffff;

std::atomic<VmxVcpu*> g_remote_vcpu{nullptr};
std::atomic<int> g_remote_result{-1};
void queue_from_remote_core(interrupts::Frame&) {
  VmxVcpu* vcpu = g_remote_vcpu.exchange(nullptr);
  if (vcpu == nullptr) return;
  auto queued = vcpu->queue_event(guest::PendingEventType::kExternalInterrupt, 0x43);
  g_remote_result.store(queued ? static_cast<int>(*queued) : -2);
}

Result<void> event_injection_on_this_core(uint64_t) {
  if (skip_without_vmx("vmx_event_injection")) return ok();
  VmGuard vm_guard{TRY(create_guest_vm(vm_id_for_this_core(902), "events"))};
  VmxVm* vm = vm_guard.vm;
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, 0))};
  VmxVcpu& vcpu = *guard.vcpu;
  auto expect_ready = [&](uint64_t step) -> Result<bool> {
    const exits::Hypercall hc = TRY(next_hypercall(*vm, vcpu));
    if (hc.nr != kEvReady || hc.args[0] != step) {
      LOG_ERROR("vmx_event_injection: expected ready %llu, got hypercall 0x%llx (0x%llx)",
                static_cast<unsigned long long>(step), static_cast<unsigned long long>(hc.nr),
                static_cast<unsigned long long>(hc.args[0]));
      return false;
    }
    return true;
  };
  auto expect_report = [&](uint64_t vector, uint64_t error_code) -> Result<bool> {
    const exits::Hypercall hc = TRY(next_hypercall(*vm, vcpu));
    if (hc.nr != kEvReport || hc.args[0] != vector || (hc.args[1] & 0xffffffffu) != error_code) {
      LOG_ERROR("vmx_event_injection: expected vector 0x%llx error 0x%llx, got hypercall 0x%llx (0x%llx, 0x%llx)",
                static_cast<unsigned long long>(vector), static_cast<unsigned long long>(error_code),
                static_cast<unsigned long long>(hc.nr), static_cast<unsigned long long>(hc.args[0]),
                static_cast<unsigned long long>(hc.args[1]));
      return false;
    }
    return true;
  };

  // 1-4: each event arrives in the guest's IDT with its vector (and error code exactly when the
  // vector has one).
  SELFTEST_EXPECT(TRY(expect_ready(1)));
  SELFTEST_EXPECT(TRY(vcpu.queue_event(guest::PendingEventType::kExternalInterrupt, 0x40)) == 0);
  SELFTEST_EXPECT(TRY(expect_report(0x40, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(expect_ready(2)));
  TRY(vcpu.queue_event(guest::PendingEventType::kNmi, 2));
  SELFTEST_EXPECT(TRY(expect_report(2, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(expect_ready(3)));
  TRY(vcpu.queue_event(guest::PendingEventType::kHardwareException, 13, 0x1238));
  SELFTEST_EXPECT(TRY(expect_report(13, 0x1238)));
  SELFTEST_EXPECT(TRY(expect_ready(4)));
  TRY(vcpu.queue_event(guest::PendingEventType::kHardwareException, 6));
  SELFTEST_EXPECT(TRY(expect_report(6, kNoErrorCode)));
  SELFTEST_EXPECT(vcpu.events_injected() == 4);

  // 5: with RFLAGS.IF = 0 the interrupt waits (interrupt-window exiting), and goes in after STI
  // and the instruction in its shadow.
  SELFTEST_EXPECT(TRY(expect_ready(5)));
  TRY(vcpu.queue_event(guest::PendingEventType::kExternalInterrupt, 0x41));
  const exits::Hypercall window = TRY(next_hypercall(*vm, vcpu));
  SELFTEST_EXPECT(window.nr == kEvWindow && window.args[0] == 4);
  SELFTEST_EXPECT(vcpu.pending_event_count() == 1);
  SELFTEST_EXPECT(TRY(expect_report(0x41, kNoErrorCode)));
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::INTERRUPT_WINDOW)) >= 1);

  // 6: three at once, queued lowest priority first: the exception goes first, the NMI nests in
  // its handler, and the interrupt waits for the IRET that sets IF again. A host interrupt is
  // pending at the entry that injects the exception (a self-IPI sent with interrupts off, as the
  // BSP's timer tick may be): its exit comes right after the delivery, before the handler's first
  // instruction, and must not let the NMI in ahead of the handler's report.
  SELFTEST_EXPECT(TRY(expect_ready(6)));
  SELFTEST_EXPECT(TRY(vcpu.queue_event(guest::PendingEventType::kExternalInterrupt, 0x40)) == 0);
  SELFTEST_EXPECT(TRY(vcpu.queue_event(guest::PendingEventType::kNmi, 2)) == 0);
  SELFTEST_EXPECT(TRY(vcpu.queue_event(guest::PendingEventType::kHardwareException, 13, 0)) == 0);
  const uint64_t host_exits_before = vcpu.exit_count(static_cast<uint32_t>(ExitReason::EXTERNAL_INTERRUPT));
  {
    cpu::InterruptsOff irq_off;
    apic::send_fixed_ipi(this_cpu().apic_id, interrupts::kVectorWakeup);
    SELFTEST_EXPECT(TRY(expect_report(13, 0)));
  }
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::EXTERNAL_INTERRUPT)) > host_exits_before);
  SELFTEST_EXPECT(TRY(expect_report(2, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(expect_report(0x40, kNoErrorCode)));

  // 7: a second NMI queued while the first one's handler runs goes in right after the handler's
  // IRET (IRET ends virtual-NMI blocking, SDM Vol. 3C 25.3; NMI-window exiting, 24.6.2, brings
  // the exit at once), although the IRET returns into a loop with IF = 0 and no exits.
  SELFTEST_EXPECT(TRY(expect_ready(7)));
  TRY(vcpu.queue_event(guest::PendingEventType::kNmi, 2));
  SELFTEST_EXPECT(TRY(expect_report(2, kNoErrorCode)));  // inside the first handler
  const uint64_t nmi_windows_before = vcpu.exit_count(static_cast<uint32_t>(ExitReason::NMI_WINDOW));
  TRY(vcpu.queue_event(guest::PendingEventType::kNmi, 2));
  SELFTEST_EXPECT(TRY(expect_report(2, kNoErrorCode)));
  const exits::Hypercall both = TRY(next_hypercall(*vm, vcpu));
  SELFTEST_EXPECT(both.nr == kEvWindow && both.args[0] == 2);  // both NMIs within the loop
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::NMI_WINDOW)) == nmi_windows_before + 1);

  // 8: with TF set, the CPUID the vCPU emulates is followed by a single-step #DB like the three
  // instructions the processor runs after it.
  SELFTEST_EXPECT(TRY(expect_ready(8)));
  for (int i = 0; i < 4; ++i) SELFTEST_EXPECT(TRY(expect_report(1, kNoErrorCode)));
  const exits::Hypercall steps = TRY(next_hypercall(*vm, vcpu));
  SELFTEST_EXPECT(steps.nr == kEvWindow && steps.args[0] == 4);
  const exits::Hypercall done = TRY(next_hypercall(*vm, vcpu));
  SELFTEST_EXPECT(done.nr == kEvDone && done.args[0] == 14);
  SELFTEST_EXPECT(vcpu.pending_event_count() == 0);

  // 7. From another core: an AP queues an interrupt while this core's guest sleeps in HLT; the
  //    queue is locked and the AP kicks this core with the wake-up IPI, which makes the guest exit.
  //    Only the BSP's copy does this step (cpu1 queues into it while cpu1 runs its own copy:
  //    the IPI reaches cpu1 as a host interrupt exit of its guest).
  VmExit e = TRY(next_exit(vcpu));
  SELFTEST_EXPECT(std::holds_alternative<exits::Halt>(e));
  if (cpu_count() > 1 && this_cpu().index == 0 && cpu_by_index(1) != nullptr) {
    if (vcpu.can_sleep_in_hlt()) TRY(vcpu.sleep_in_hlt(0xffffffffu));
    g_remote_vcpu.store(&vcpu);
    g_remote_result.store(-1);
    interrupts::set_handler(interrupts::kVectorCallFunction, &queue_from_remote_core);
    apic::send_fixed_ipi(cpu_by_index(1)->apic_id, interrupts::kVectorCallFunction);
    bool kicked = false;
    Result<bool> reported = false;
    for (int i = 0; i < 10000; ++i) {
      auto exit = vcpu.run();
      if (!exit) {
        reported = exit.error();
        break;
      }
      if (auto* ext = std::get_if<exits::ExternalInterrupt>(&*exit); ext && ext->vector == interrupts::kVectorWakeup) {
        kicked = true;
      }
      if (auto* hc = std::get_if<exits::Hypercall>(&*exit)) {
        reported = hc->nr == kEvReport && hc->args[0] == 0x43 && (hc->args[1] & 0xffffffffu) == kNoErrorCode;
        break;
      }
    }
    // The AP stores its result after queue_event() returned; the guest may have been faster.
    for (int i = 0; i < 1000000 && g_remote_result.load() == -1; ++i) cpu::pause();
    interrupts::set_handler(interrupts::kVectorCallFunction, nullptr);
    SELFTEST_EXPECT(g_remote_result.load() == 0);
    SELFTEST_EXPECT(TRY(std::move(reported)));
    SELFTEST_EXPECT(kicked);
  }

  // The queue's rules through the vCPU API: invalid events and a full queue are errors.
  auto bad = vcpu.queue_event(guest::PendingEventType::kHardwareException, 13);  // #GP needs an error code
  SELFTEST_EXPECT(!bad && bad.error().code == ErrorCode::kInvalidArgument);
  bad = vcpu.queue_event(guest::PendingEventType::kNmi, 3);
  SELFTEST_EXPECT(!bad && bad.error().code == ErrorCode::kInvalidArgument);
  for (uint32_t i = 0; i < guest::PendingEventQueue::kCapacity; ++i) {
    SELFTEST_EXPECT(TRY(vcpu.queue_event(guest::PendingEventType::kExternalInterrupt, 0x50 + i)) == i);
  }
  bad = vcpu.queue_event(guest::PendingEventType::kExternalInterrupt, 0x60);
  SELFTEST_EXPECT(!bad && bad.error().code == ErrorCode::kFull);
  SELFTEST_EXPECT(!vcpu.stopped());
  return ok();
}

using namespace guest::selftest_probes;  // Xmm, host_load_xmm, host_read_xmm7, host_read_mxcsr

Result<void> xstate_isolation_on_this_core(uint64_t) {
  if (skip_without_vmx("vmx_xstate_isolation")) return ok();
  VmGuard vm_guard{TRY(create_guest_vm(vm_id_for_this_core(903), "xstate"))};
  VmxVm* vm = vm_guard.vm;
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, 0))};
  VmxVcpu& vcpu = *guard.vcpu;
  const guest::HostXstate& x = guest::host_xstate();
  SELFTEST_EXPECT(x.mode != guest::XstateMode::kNone);

  exits::Hypercall hc = TRY(next_hypercall(*vm, vcpu));
  SELFTEST_EXPECT(hc.nr == 0x40);
  const uint32_t features = static_cast<uint32_t>(hc.args[0]);
  const bool xsave = (features & (1u << 26)) != 0;  // CPUID.01H:ECX[26]
  const bool avx = xsave && (features & (1u << 28)) != 0 && (x.guest_xcr0 & guest::kXcr0Avx) != 0;
  SELFTEST_EXPECT(xsave == (x.mode == guest::XstateMode::kXsave));
  if (xsave) {
    // Four invalid XSETBVs, each a #GP(0) in the guest; the XCR0 stays x87 only.
    for (int i = 0; i < 4; ++i) {
      hc = TRY(next_hypercall(*vm, vcpu));
      SELFTEST_EXPECT(hc.nr == 0x31 && hc.args[0] == 13 && (hc.args[1] & 0xffffffffu) == 0);
      SELFTEST_EXPECT(vcpu.guest_xcr0() == guest::kXcr0Reset);
    }
    // The valid one is loaded: the guest reads it back with XGETBV (no exit).
    hc = TRY(next_hypercall(*vm, vcpu));
    const uint64_t expected = avx ? (guest::kXcr0X87 | guest::kXcr0Sse | guest::kXcr0Avx) : (guest::kXcr0X87 | guest::kXcr0Sse);
    SELFTEST_EXPECT(hc.nr == 0x42 && hc.args[0] == expected && hc.args[1] == 0);
    SELFTEST_EXPECT(vcpu.guest_xcr0() == expected);
    SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::XSETBV)) == 5);
    SELFTEST_EXPECT(guest::hw::xgetbv(0) == x.host_xcr0);  // the host's XCR0 is back after the exits
  }
  // The guest loads its pattern; then, at each exit, the host puts its own values in the same
  // registers, and checks that the guest's never show up on the host side.
  const Xmm host_pattern{0x5555aaaa5555aaaaull, 0x0f0f0f0ff0f0f0f0ull};
  const uint32_t host_mxcsr = host_read_mxcsr();
  host_load_xmm(host_pattern);
  hc = TRY(next_hypercall(*vm, vcpu));
  Xmm seen = host_read_xmm7();
  SELFTEST_EXPECT(hc.nr == 0x43);
  SELFTEST_EXPECT(seen.lo == host_pattern.lo && seen.hi == host_pattern.hi);
  SELFTEST_EXPECT(host_read_mxcsr() == host_mxcsr);
  for (int i = 0; i < 3; ++i) {
    host_load_xmm(Xmm{host_pattern.lo + i, host_pattern.hi - i});
    hc = TRY(next_hypercall(*vm, vcpu));
    seen = host_read_xmm7();
    SELFTEST_EXPECT(hc.nr == 0x44);
    SELFTEST_EXPECT(seen.lo == host_pattern.lo + i && seen.hi == host_pattern.hi - i);
    SELFTEST_EXPECT(host_read_mxcsr() == host_mxcsr);
  }
  // The guest compares what it reads back with what it loaded: nothing changed.
  hc = TRY(next_hypercall(*vm, vcpu));
  SELFTEST_EXPECT(hc.nr == 0x45);
  SELFTEST_EXPECT(hc.args[0] == 0);
  // CR4 through the mask and read shadow: setting VMXE is #GP(0) (no nested VMX); the guest
  // reads VMXE = 0 (shadow) and its own OSFXSR; the real CR4 keeps VMXE (SDM Vol. 3C 24.6.6).
  hc = TRY(next_hypercall(*vm, vcpu));
  SELFTEST_EXPECT(hc.nr == 0x31 && hc.args[0] == 13 && (hc.args[1] & 0xffffffffu) == 0);
  hc = TRY(next_hypercall(*vm, vcpu));
  SELFTEST_EXPECT(hc.nr == 0x46 && (hc.args[0] & kCr4VmxeBit) == 0 && (hc.args[0] & (1u << 9)) != 0);
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::CR_ACCESS)) >= 1);
  SELFTEST_EXPECT(!vcpu.stopped());
  LOG_INFO("selftest vmx_xstate_isolation: cpu%u: %s, guest XCR0 0x%llx, AVX %s", this_cpu().index,
           xsave ? "XSAVE" : "FXSAVE", static_cast<unsigned long long>(vcpu.guest_xcr0()), avx ? "yes" : "no");
  return ok();
}

// On this core: tests/guests/longmode.S builds its own 4-level page tables, sets EFER.LME and
// CR0.PG (the vCPU activates IA-32e mode: EFER.LMA and the "IA-32e mode guest" entry control),
// far-jumps to 64-bit code and makes 64-bit hypercalls, port I/O, RDMSR/WRMSR and CPUID; then
// passthrough of one port and one MSR through the bitmaps.
Result<void> long_mode_on_this_core(uint64_t) {
  if (skip_without_vmx("vmx_long_mode")) return ok();
  VmGuard vm_guard{TRY(create_guest_vm(vm_id_for_this_core(906), "longmode"))};
  VmxVm* vm = vm_guard.vm;
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, 0))};
  VmxVcpu& vcpu = *guard.vcpu;
  guest::GeneralRegisters& regs = vcpu.registers();
  regs.r15 = 0xf15f15f15f15f15full;
  const uint32_t kIo = static_cast<uint32_t>(ExitReason::IO_INSTRUCTION);
  const uint32_t kRdmsr = static_cast<uint32_t>(ExitReason::MSR_READ);

  // 1. Six 64-bit arguments in rdi, rsi, rdx, rcx, r8, r9; the result goes back in rax.
  VmExit e = TRY(next_exit(vcpu));
  auto* hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x60);
  SELFTEST_EXPECT(hc->args[0] == 0x0123456789abcdefull && hc->args[1] == 0xfedcba9876543210ull);
  SELFTEST_EXPECT(hc->args[2] == 0x1122334455667788ull && hc->args[3] == 0x8877665544332211ull);
  SELFTEST_EXPECT(hc->args[4] == 0xa5a5a5a55a5a5a5aull && hc->args[5] == 0x0f0f0f0ff0f0f0f0ull);
  const GuestLongModeState mode = TRY(vcpu.long_mode_state());
  SELFTEST_EXPECT(mode.ia32e_mode && mode.cs_long);
  SELFTEST_EXPECT((mode.efer & (kEferLme | kEferLma)) == (kEferLme | kEferLma));
  SELFTEST_EXPECT((mode.cr0 & kCr0PgBit) != 0 && (mode.cr4 & kCr4PaeBit) != 0);
  vcpu.set_hypercall_result(0xdeadbeefcafebabeull);
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x61 && hc->args[0] == 0xdeadbeefcafebabeull);
  SELFTEST_EXPECT(regs.r15 == 0xf15f15f15f15f15full);

  // 2. The guest's own view: EFER.LME|LMA (emulated RDMSR), CR0.PG|PE, CR4.PAE, and its paging:
  //    a value written through the identity map reads back through two aliases.
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x62);
  SELFTEST_EXPECT((hc->args[0] & (kEferLme | kEferLma)) == (kEferLme | kEferLma));
  SELFTEST_EXPECT((hc->args[1] & (kCr0PgBit | kCr0PeBit)) == (kCr0PgBit | kCr0PeBit));
  SELFTEST_EXPECT((hc->args[2] & kCr4PaeBit) != 0);
  SELFTEST_EXPECT(hc->args[3] == 0x1234abcd5678ef00ull && hc->args[4] == 0x1234abcd5678ef00ull);

  // 3. 64-bit port I/O: OUT data is the matching part of rax; IN AL keeps bits 63:8, IN EAX
  //    zero-extends.
  e = TRY(next_exit(vcpu));
  auto* out = std::get_if<exits::IoWrite>(&e);
  SELFTEST_EXPECT(out != nullptr && out->port == 0x80 && out->width == 1 && out->data == 0x5a);
  e = TRY(next_exit(vcpu));
  out = std::get_if<exits::IoWrite>(&e);
  SELFTEST_EXPECT(out != nullptr && out->port == 0x8000 && out->width == 2 && out->data == 0xbeef);
  e = TRY(next_exit(vcpu));
  out = std::get_if<exits::IoWrite>(&e);
  SELFTEST_EXPECT(out != nullptr && out->port == 0xfffc && out->width == 4 && out->data == 0xdeadbeef);
  e = TRY(next_exit(vcpu));
  auto* in = std::get_if<exits::IoRead>(&e);
  SELFTEST_EXPECT(in != nullptr && in->port == 0x60 && in->width == 1);
  TRY(vcpu.complete_io_read(0x7e));
  e = TRY(next_exit(vcpu));
  in = std::get_if<exits::IoRead>(&e);
  SELFTEST_EXPECT(in != nullptr && in->port == 0x8004 && in->width == 4);
  TRY(vcpu.complete_io_read(0xcafef00d));
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x63);
  SELFTEST_EXPECT(hc->args[0] == 0xffffffffffffff7eull && hc->args[1] == 0xcafef00dull);

  // 4. RDMSR completes EDX:EAX with the upper halves cleared; WRMSR's value is EDX:EAX.
  TRY(expect_msr_round_trip(vcpu, 0x64));

  // 5. CPUID: CPUID.80000001H:EDX[29] (Intel 64) visible, EBX zero-extended; hypervisor bit.
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x65);
  SELFTEST_EXPECT((hc->args[0] & (1u << 29)) != 0 && (hc->args[1] >> 32) == 0);
  SELFTEST_EXPECT((hc->args[2] & (1u << 31)) != 0 && (hc->args[2] & (1u << 5)) == 0);

  // 6. Passthrough through the bitmaps: port 0x80 and RDMSR 0x10 make no exit; IA32_EFER can
  //    never be passed through; intercepting port 0x80 again makes it exit again.
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x66);
  SELFTEST_EXPECT(vcpu.io_intercepted(0x80) && vcpu.msr_intercepted(0x10, false));
  TRY(vcpu.set_io_intercept(IoPortRange{0x80, 1}, false));
  TRY(vcpu.set_msr_intercept(MsrRange{0x10, 1}, MsrAccess::kRead, false));
  SELFTEST_EXPECT(!vcpu.set_msr_intercept(MsrRange{kMsrIa32Efer, 1}, MsrAccess::kRead, false));
  SELFTEST_EXPECT(!vcpu.set_msr_intercept(MsrRange{0x40000000, 1}, MsrAccess::kRead, false));
  SELFTEST_EXPECT(!vcpu.io_intercepted(0x80) && vcpu.io_intercepted(0x81) &&
                  !vcpu.msr_intercepted(0x10, false));
  SELFTEST_EXPECT(vcpu.msr_intercepted(0x10, true));
  const uint64_t io_exits = vcpu.exit_count(kIo);
  const uint64_t rdmsr_exits = vcpu.exit_count(kRdmsr);
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x67 && hc->args[0] != 0);  // the TSC, read directly
  SELFTEST_EXPECT(vcpu.exit_count(kIo) == io_exits && vcpu.exit_count(kRdmsr) == rdmsr_exits);
  TRY(vcpu.set_io_intercept(IoPortRange{0x80, 1}, true));
  e = TRY(next_exit(vcpu));
  out = std::get_if<exits::IoWrite>(&e);
  SELFTEST_EXPECT(out != nullptr && out->port == 0x80 && out->data == 0x22);

  // 6b. MOV to/from CR8 reach the vlapic's TPR (CR8-load/store exiting): the guest reads back 9,
  //     the vlapic holds TPR 0x90, and this core's own TPR (its CR8) is what it was.
  const uint64_t host_cr8 = cpu::read_cr8();
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x68 && hc->args[0] == 9);
  SELFTEST_EXPECT(vcpu.vlapic().tpr() == 0x90);
  SELFTEST_EXPECT(cpu::read_cr8() == host_cr8);

  // 7. The exit port, still in 64-bit mode.
  e = TRY(next_exit(vcpu));
  out = std::get_if<exits::IoWrite>(&e);
  SELFTEST_EXPECT(out != nullptr && out->port == 0xf4 && out->data == 0x64);
  SELFTEST_EXPECT(!vcpu.stopped());
  SELFTEST_EXPECT(vcpu.vlapic().tpr() == 0);  // the guest's MOV of 0 to CR8
  const GuestLongModeState end = TRY(vcpu.long_mode_state());
  SELFTEST_EXPECT(end.ia32e_mode && end.cs_long);
  LOG_INFO(
      "selftest vmx_long_mode: cpu%u: vm%u in 64-bit mode, EFER 0x%llx, CR0 0x%llx, CR4 0x%llx, %llu exits",
      this_cpu().index, vm->vm_id, static_cast<unsigned long long>(end.efer),
      static_cast<unsigned long long>(end.cr0), static_cast<unsigned long long>(end.cr4),
      static_cast<unsigned long long>(vcpu.total_exits()));
  return ok();
}

// The guest self-tests above run on every core at once (the BSP's copy and one per AP).
LANTERN_SELFTEST(vmx_guest_exits) {
  if (skip_without_vmx("vmx_guest_exits")) return ok();
  return run_on_every_core("vmx_guest_exits", &guest_exits_on_this_core);
}
LANTERN_SELFTEST(vmx_event_injection) {
  if (skip_without_vmx("vmx_event_injection")) return ok();
  return run_on_every_core("vmx_event_injection", &event_injection_on_this_core);
}
LANTERN_SELFTEST(vmx_xstate_isolation) {
  if (skip_without_vmx("vmx_xstate_isolation")) return ok();
  return run_on_every_core("vmx_xstate_isolation", &xstate_isolation_on_this_core);
}
LANTERN_SELFTEST(vmx_long_mode) {
  if (skip_without_vmx("vmx_long_mode")) return ok();
  return run_on_every_core("vmx_long_mode", &long_mode_on_this_core);
}

// ---- vlapic (tests/guests/vlapic.S) -----------------------------------------------------------

// Values of tests/guests/vlapic.S.
constexpr uint64_t kVlTimerVector = 0x44;
constexpr uint64_t kVlOneShotCount = 200000;
constexpr uint64_t kVlDeadlineTicks = 300000;
constexpr uint64_t kVlPeriodCount = 100000;
constexpr uint32_t kVlVcpuId = 2;

// The next exit, which must be a hypercall: a HLT the vlapic should have handled inside (or any
// other exit) is a failure here, not something to paper over with the device model.
Result<exits::Hypercall> strict_hypercall(VmxVcpu& vcpu, const char* step) {
  const VmExit e = TRY(next_exit(vcpu));
  if (const auto* hc = std::get_if<exits::Hypercall>(&e)) return *hc;
  const std::string_view kind = vm_exit_kind_name(e);
  LOG_ERROR("vmx_vlapic: %s: expected a hypercall, got %.*s", step, static_cast<int>(kind.size()),
            kind.data());
  return make_error(ErrorCode::kInvalidState, "vlapic guest made an unexpected exit");
}

Result<void> vlapic_on_this_core(uint64_t) {
  if (skip_without_vmx("vmx_vlapic")) return ok();
  VmGuard vm_guard{TRY(create_guest_vm(vm_id_for_this_core(906), "vlapic"))};  // freed after the vCPUs (declared first)
  VmxVm* vm = vm_guard.vm;
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, kVlVcpuId))};
  VmxVcpu& vcpu = *guard.vcpu;
  const uint64_t tpc = vcpu.vlapic_tsc_per_bus_clock();
  auto report = [&](const char* step, uint64_t vector, uint64_t error_code) -> Result<bool> {
    const exits::Hypercall hc = TRY(strict_hypercall(vcpu, step));
    const bool good = hc.nr == kEvReport && hc.args[0] == vector && (hc.args[1] & 0xffffffffu) == error_code;
    if (!good) {
      LOG_ERROR("vmx_vlapic: %s: expected vector 0x%llx error 0x%llx, got hypercall 0x%llx (0x%llx, 0x%llx)",
                step, static_cast<unsigned long long>(vector), static_cast<unsigned long long>(error_code),
                static_cast<unsigned long long>(hc.nr), static_cast<unsigned long long>(hc.args[0]),
                static_cast<unsigned long long>(hc.args[1]));
    }
    return good;
  };

  // 1. xAPIC page through EPT violations and the MOV decoder: TPR written by MOV m32,imm32 and
  //    MOV m32,r32 reads back through MOV r32,m32; version and ID (bits 31:24) as the SDM says.
  exits::Hypercall hc = TRY(strict_hypercall(vcpu, "xAPIC MMIO"));
  SELFTEST_EXPECT(hc.nr == 0x60);
  SELFTEST_EXPECT(hc.args[0] == 0x20 && hc.args[1] == 0x30);
  SELFTEST_EXPECT(hc.args[2] == guest::VirtualLapic::kVersion);
  SELFTEST_EXPECT(hc.args[3] == (kVlVcpuId << 24));
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::EPT_VIOLATION)) == 6);

  // 1b. The APIC page moves to 0xfed40000 (neither RAM nor a device here) and back: the
  //     registers answer at each base in turn (SDM Vol. 3A 11.4.5).
  hc = TRY(strict_hypercall(vcpu, "APIC page moved"));
  SELFTEST_EXPECT(hc.nr == 0x66);
  SELFTEST_EXPECT(hc.args[0] == (0xfed40000u | (1u << 11)));
  SELFTEST_EXPECT(hc.args[1] == guest::VirtualLapic::kVersion && hc.args[2] == guest::VirtualLapic::kVersion);
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::EPT_VIOLATION)) == 9);  // TPR cleared, then a read at each base

  // 2. x2APIC mode: IA32_APIC_BASE shows EN and EXTD at the default base (not BSP: vCPU 2); the
  //    ID MSR is the full x2APIC ID; the SVR written through the page survived the switch.
  hc = TRY(strict_hypercall(vcpu, "x2APIC MSRs"));
  SELFTEST_EXPECT(hc.nr == 0x61);
  SELFTEST_EXPECT(hc.args[0] == (0xfee00000u | (1u << 11) | (1u << 10)));
  SELFTEST_EXPECT(hc.args[1] == kVlVcpuId && hc.args[2] == guest::VirtualLapic::kVersion && hc.args[3] == 0x1ff);
  SELFTEST_EXPECT(vcpu.vlapic().x2apic_mode());

  // 3. WRMSR to the read-only ID: #GP(0) in the guest, the vCPU keeps running.
  SELFTEST_EXPECT(TRY(report("x2APIC ID write", 13, 0)));

  // 4. One-shot: HLT sleeps (inside run(): no Halt exit) until the timer interrupt.
  SELFTEST_EXPECT(TRY(report("one-shot", kVlTimerVector, kNoErrorCode)));
  hc = TRY(strict_hypercall(vcpu, "one-shot done"));
  SELFTEST_EXPECT(hc.nr == 0x62 && hc.args[0] == 2);
  SELFTEST_EXPECT(hc.args[1] >= kVlOneShotCount * tpc);
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::HLT)) == 1);
  const uint64_t one_shot_ticks = hc.args[1];

  // 5. TSC deadline: the same, and IA32_TSC_DEADLINE reads 0 once it fired.
  SELFTEST_EXPECT(TRY(report("TSC deadline", kVlTimerVector, kNoErrorCode)));
  hc = TRY(strict_hypercall(vcpu, "TSC deadline done"));
  SELFTEST_EXPECT(hc.nr == 0x63 && hc.args[0] == 3);
  SELFTEST_EXPECT(hc.args[1] >= kVlDeadlineTicks && hc.args[2] == 0);
  const uint64_t deadline_ticks = hc.args[1];

  // 6. Periodic: five ticks (or more, if one more fell before the guest stopped the timer), no
  //    faster than the period; the current count reads 0 once stopped.
  uint64_t ticks = 0;
  for (int i = 0; i < 20; ++i) {
    hc = TRY(strict_hypercall(vcpu, "periodic"));
    if (hc.nr != kEvReport) break;
    SELFTEST_EXPECT(hc.args[0] == kVlTimerVector);
    ++ticks;
  }
  SELFTEST_EXPECT(ticks >= 5 && hc.nr == 0x64 && hc.args[0] == 3 + ticks);
  SELFTEST_EXPECT(hc.args[1] >= 5 * kVlPeriodCount * tpc && hc.args[2] == 0);
  const uint64_t periodic_ticks = hc.args[1];

  // 7. Self-IPIs: the SELF_IPI MSR, the ICR's self shorthand and the ICR to the own ID, each
  //    taken after its WRMSR; after the EOIs nothing is in service and the PPR is 0.
  SELFTEST_EXPECT(TRY(report("SELF_IPI", 0x45, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(report("ICR self", 0x46, kNoErrorCode)));
  SELFTEST_EXPECT(TRY(report("ICR own ID", 0x47, kNoErrorCode)));
  hc = TRY(strict_hypercall(vcpu, "self-IPIs done"));
  SELFTEST_EXPECT(hc.nr == 0x65 && hc.args[0] == 6 + ticks);
  SELFTEST_EXPECT(hc.args[1] == 0 && hc.args[2] == 0);
  const VmExit end = TRY(next_exit(vcpu));
  const auto* out = std::get_if<exits::IoWrite>(&end);
  SELFTEST_EXPECT(out != nullptr && out->port == 0xf4 && out->data == 0x42);
  SELFTEST_EXPECT(vcpu.vlapic_interrupts_injected() == 5 + ticks);
  SELFTEST_EXPECT(!vcpu.stopped());
  LOG_INFO(
      "selftest vmx_vlapic: cpu%u: one-shot woke HLT after %llu ticks, TSC deadline after %llu, %llu "
      "periodic "
      "ticks in %llu, 3 self-IPIs (TSC ticks per bus clock %llu)",
      this_cpu().index, static_cast<unsigned long long>(one_shot_ticks),
      static_cast<unsigned long long>(deadline_ticks), static_cast<unsigned long long>(ticks),
      static_cast<unsigned long long>(periodic_ticks), static_cast<unsigned long long>(tpc));
  return ok();
}

LANTERN_SELFTEST(vmx_vlapic) {
  if (skip_without_vmx("vmx_vlapic")) return ok();
  return run_on_every_core("vmx_vlapic", &vlapic_on_this_core);
}

// Two vCPUs of one VM on two cores (tests/guests/ipi.S): vCPU 0 on the BSP writes its ICR, a
// fixed IPI to x2APIC ID 1; vCPU 1 on cpu1 receives it in its IDT (the vector is posted to its
// vlapic and cpu1 is kicked with the wake-up IPI).
constexpr uint64_t kIpiVector = 0x45;
std::atomic<VmxVm*> g_ipi_vm{nullptr};
std::atomic<uint64_t> g_ipi_restart_cs{~uint64_t{0}};

Result<void> ipi_receiver_on_this_core(uint64_t) {
  VmxVm* vm = g_ipi_vm.load();
  if (vm == nullptr) return make_error(ErrorCode::kInvalidState, "no VM for the IPI receiver");
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, 1))};
  VmxVcpu& vcpu = *guard.vcpu;
  exits::Hypercall hc = TRY(next_hypercall(*vm, vcpu));
  SELFTEST_EXPECT(hc.nr == kEvReport && hc.args[0] == kIpiVector &&
                  (hc.args[1] & 0xffffffffu) == kNoErrorCode);
  hc = TRY(next_hypercall(*vm, vcpu));
  SELFTEST_EXPECT(hc.nr == 0x72);
  SELFTEST_EXPECT(vcpu.vlapic_interrupts_injected() == 1);
  SELFTEST_EXPECT(!vcpu.vlapic().isr_bit(kIpiVector));  // the guest's EOI cleared it
  // INIT parks this vCPU, the SIPI restarts it in real mode; it reports its CS.
  for (int i = 0; i < 5000; ++i) {
    const VmExit exit = TRY(next_exit(vcpu));
    if (const auto* restart = std::get_if<exits::Hypercall>(&exit)) {
      SELFTEST_EXPECT(restart->nr == 0x73);
      g_ipi_restart_cs.store(restart->args[0]);
      SELFTEST_EXPECT(!vcpu.waiting_for_sipi());
      SELFTEST_EXPECT(vcpu.vlapic().x2apic_mode() && !vcpu.vlapic().software_enabled());  // INIT reset
      return ok();
    }
    if (!TRY(handle_device_exit(*vm, vcpu, exit))) {
      return make_error(ErrorCode::kInvalidState, "the IPI receiver made an unexpected exit");
    }
  }
  return make_error(ErrorCode::kTimeout, "vCPU 1 did not restart after INIT/SIPI");
}

LANTERN_SELFTEST(vmx_vlapic_ipi_between_vcpus) {
  if (skip_without_vmx("vmx_vlapic_ipi_between_vcpus")) return ok();
  if (cpu_count() < 2 || cpu_by_index(1) == nullptr || this_cpu().index == 1) {
    LOG_INFO("selftest vmx_vlapic_ipi_between_vcpus: skipped: needs a second core");
    return ok();
  }
  VmGuard vm_guard{TRY(create_guest_vm(908, "ipi"))};  // freed after the vCPUs (declared first)
  VmxVm* vm = vm_guard.vm;
  g_ipi_vm.store(vm);
  g_ipi_restart_cs.store(~uint64_t{0});
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, 0))};
  VmxVcpu& vcpu = *guard.vcpu;
  TRY(post_core_work(1, &ipi_receiver_on_this_core, 0));
  exits::Hypercall hc = TRY(next_hypercall(*vm, vcpu));
  Result<void> sender = ok();
  if (hc.nr != 0x70) sender = make_error(ErrorCode::kInvalidState, "the sender did not start");
  if (sender) {
    hc = TRY(next_hypercall(*vm, vcpu));  // the guest waited for vCPU 1 and wrote the ICR
    if (hc.nr != 0x71) sender = make_error(ErrorCode::kInvalidState, "the sender did not send");
  }
  uint64_t sipi_vector = ~uint64_t{0};
  if (sender) {
    hc = TRY(next_hypercall(*vm, vcpu));  // INIT and SIPI sent to vCPU 1
    if (hc.nr != 0x74) sender = make_error(ErrorCode::kInvalidState, "the sender did not send INIT/SIPI");
    sipi_vector = hc.args[0];
  }
  // Always collect cpu1's result, so no work is left in its mailbox.
  const Result<void> receiver = wait_core_work(1, kCoreTestTimeoutUs);
  g_ipi_vm.store(nullptr);
  TRY(sender);
  if (!receiver)
    return Error{receiver.error().code, name_core_in_failure(1, receiver.error().message),
                 receiver.error().detail};
  SELFTEST_EXPECT(vcpu.vlapic_interrupts_injected() == 0);  // the IPI went to vCPU 1 only
  SELFTEST_EXPECT(sipi_vector != 0 && sipi_vector < 0x100 && g_ipi_restart_cs.load() == (sipi_vector << 8));
  LOG_INFO(
      "selftest vmx_vlapic_ipi_between_vcpus: vm908 vcpu0 (cpu0) -> vcpu1 (cpu1): vector 0x45 delivered; "
      "INIT + SIPI 0x%llx restarted vcpu1 at CS 0x%llx",
      static_cast<unsigned long long>(sipi_vector), static_cast<unsigned long long>(g_ipi_restart_cs.load()));
  return ok();
}

// The demo guest prints one console line per event injected from the pending-event queue
// (tests/guests/demo.S), and keeps running after each: what a console user sees after queueing.
LANTERN_SELFTEST(vmx_demo_event_lines) {
  if (skip_without_vmx("vmx_demo_event_lines")) return ok();
  VmGuard vm_guard{TRY(create_guest_vm(907, "demo"))};  // freed after the vCPUs (declared first)
  VmxVm* vm = vm_guard.vm;
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, 0))};
  VmxVcpu& vcpu = *guard.vcpu;
  uint64_t heartbeats = 0;
  // Runs the guest (devices handled) until `line` is in its console, or `heartbeat_goal`
  // heartbeats were seen when line is null.
  auto run_until = [&](const char* line, uint64_t heartbeat_goal) -> Result<bool> {
    static char text[guest::GuestConsole::kBufferBytes + 1];
    for (int i = 0; i < 20000; ++i) {
      const VmExit exit = TRY(next_exit(vcpu));
      if (const auto* hc = std::get_if<exits::Hypercall>(&exit); hc && hc->nr == guest::kHypercallHeartbeat)
        ++heartbeats;
      if (!TRY(handle_device_exit(*vm, vcpu, exit))) {
        return make_error(ErrorCode::kInvalidState, "the demo guest made an unexpected exit");
      }
      if (line == nullptr) {
        if (heartbeats >= heartbeat_goal) return true;
        continue;
      }
      const size_t n = vm->console.read_since(0, text, guest::GuestConsole::kBufferBytes).length;  // all it holds
      text[n] = '\0';
      if (std::string_view(text, n).find(line) != std::string_view::npos) return true;
    }
    LOG_ERROR("vmx_demo_event_lines: no '%s' in the console after 20000 exits",
              line != nullptr ? line : "(heartbeats)");
    return false;
  };
  SELFTEST_EXPECT(TRY(run_until(nullptr, 2)));  // IDT and timer are set up before the first heartbeat
  struct Case {
    guest::PendingEventType type;
    uint32_t vector;
    std::optional<uint32_t> error_code;
    const char* line;
  };
  const Case cases[] = {
      {guest::PendingEventType::kExternalInterrupt, 0x41, std::nullopt, "IRQ 0x41\n"},
      {guest::PendingEventType::kNmi, 2, std::nullopt, "NMI\n"},
      {guest::PendingEventType::kHardwareException, 13, 0x1238, "EXC 0x0d ERR 0x00001238\n"},
      {guest::PendingEventType::kHardwareException, 6, std::nullopt, "EXC 0x06\n"},
      {guest::PendingEventType::kHardwareException, 14, 0x2, "EXC 0x0e ERR 0x00000002\n"},
      {guest::PendingEventType::kExternalInterrupt, 0xd0, std::nullopt, "IRQ 0xd0\n"},
  };
  for (const Case& c : cases) {
    TRY(vcpu.queue_event(c.type, c.vector, c.error_code));
    SELFTEST_EXPECT(TRY(run_until(c.line, 0)));
  }
  // The guest resumed after every event: it goes on with heartbeats and timer ticks.
  const uint64_t before = heartbeats;
  SELFTEST_EXPECT(TRY(run_until(nullptr, before + 3)));
  SELFTEST_EXPECT(vcpu.events_injected() == sizeof(cases) / sizeof(cases[0]));
  SELFTEST_EXPECT(vcpu.vlapic_interrupts_injected() >= 1);
  SELFTEST_EXPECT(!vcpu.stopped());
  return ok();
}

// Hypercalls of tests/guests/triple.S.
constexpr uint64_t kTripleHello = 0x50;

// On this core: the "triple" guest says hello, then triple-faults. The vCPU stops with
// SystemDown and the reason recorded, stays stopped, and nothing of the guest ran after the fault.
Result<void> triple_fault_on_this_core(uint64_t) {
  if (skip_without_vmx("vmx_triple_fault_on_ap")) return ok();
  VmGuard vm_guard{TRY(create_guest_vm(vm_id_for_this_core(904), "triple"))};
  VmxVm* vm = vm_guard.vm;
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, 0))};
  VmxVcpu& vcpu = *guard.vcpu;
  const exits::Hypercall hello = TRY(next_hypercall(*vm, vcpu));
  SELFTEST_EXPECT(hello.nr == kTripleHello);
  vcpu.set_hypercall_result(0);
  const VmExit down = TRY(next_exit(vcpu));
  SELFTEST_EXPECT(std::holds_alternative<exits::SystemDown>(down));
  SELFTEST_EXPECT(vcpu.stopped());
  SELFTEST_EXPECT(vcpu.stop_message() != nullptr);
  SELFTEST_EXPECT((vcpu.stop_exit_reason() & 0xffff) == static_cast<uint32_t>(ExitReason::TRIPLE_FAULT));
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::TRIPLE_FAULT)) == 1);
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::VMCALL)) == 1);  // no 0x51
  auto again = vcpu.run();  // a stopped vCPU stays stopped
  SELFTEST_EXPECT(!again && again.error().code == ErrorCode::kInvalidState);
  LOG_INFO("selftest vmx_triple_fault_on_ap: cpu%u: vm%u vcpu0 stopped with SystemDown (%s)", this_cpu().index,
           vm->vm_id, vcpu.stop_message());
  return ok();
}

Result<void> nothing_on_this_core(uint64_t) { return ok(); }

// A guest that triple-faults on every AP at once while the BSP's own guest (the demo program)
// keeps running: each AP's vCPU stops with SystemDown, the BSP's guest keeps making heartbeat
// hypercalls before, during and after, and every AP's host side still answers the mailbox.
LANTERN_SELFTEST(vmx_triple_fault_on_ap) {
  if (skip_without_vmx("vmx_triple_fault_on_ap")) return ok();
  const uint32_t me = this_cpu().index;
  bool posted[kMaxCpus] = {};
  uint32_t aps = 0;
  for (uint32_t i = 0; i < kMaxCpus; ++i) {
    if (i != me && cpu_by_index(i) != nullptr) {
      posted[i] = true;
      ++aps;
    }
  }
  if (aps == 0) {
    LOG_INFO("selftest vmx_triple_fault_on_ap: one core: the triple fault runs on the BSP alone");
    return triple_fault_on_this_core(0);
  }
  VmGuard vm_guard{TRY(create_guest_vm(905, "demo"))};
  VmxVm* vm = vm_guard.vm;
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, 0))};
  VmxVcpu& vcpu = *guard.vcpu;
  uint64_t heartbeats = 0;
  auto run_bsp_guest_until_heartbeat = [&]() -> Result<void> {
    for (int i = 0; i < 1000; ++i) {
      const VmExit exit = TRY(next_exit(vcpu));
      if (auto* hc = std::get_if<exits::Hypercall>(&exit); hc && hc->nr == guest::kHypercallHeartbeat) {
        vcpu.set_hypercall_result(0);
        ++heartbeats;
        return ok();
      }
      if (!TRY(handle_device_exit(*vm, vcpu, exit))) {
        return make_error(ErrorCode::kInvalidState, "the BSP's demo guest made an unexpected exit");
      }
    }
    return make_error(ErrorCode::kTimeout, "the BSP's demo guest made no heartbeat in 1000 exits");
  };
  TRY(run_bsp_guest_until_heartbeat());  // the BSP's guest runs before the APs start theirs
  for (uint32_t i = 0; i < kMaxCpus; ++i) {
    if (!posted[i]) continue;
    if (auto p = post_core_work(i, &triple_fault_on_this_core, 0); !p) {
      return Error{p.error().code, name_core_in_failure(i, p.error().message), p.error().detail};
    }
  }
  // The BSP's guest runs while the APs' guests triple-fault.
  const uint64_t deadline = time::now_ns() + kCoreTestTimeoutUs * 1000;
  for (;;) {
    TRY(run_bsp_guest_until_heartbeat());
    bool all_done = true;
    for (uint32_t i = 0; i < kMaxCpus; ++i) all_done = all_done && (!posted[i] || core_work_done(i));
    if (all_done || time::now_ns() >= deadline) break;
  }
  const uint64_t heartbeats_during = heartbeats;
  for (uint32_t i = 0; i < kMaxCpus; ++i) {
    if (!posted[i]) continue;
    if (auto r = wait_core_work(i, kCoreTestTimeoutUs); !r) {
      LOG_ERROR("selftest vmx_triple_fault_on_ap: cpu%u FAIL %s (%s, line/detail %llu)", i, r.error().message,
                error_code_name(r.error().code), static_cast<unsigned long long>(r.error().detail));
      return Error{r.error().code, name_core_in_failure(i, r.error().message), r.error().detail};
    }
  }
  // After the faults: the BSP's guest goes on, and every AP's host side still takes work.
  for (int i = 0; i < 3; ++i) TRY(run_bsp_guest_until_heartbeat());
  SELFTEST_EXPECT(!vcpu.stopped());
  SELFTEST_EXPECT(heartbeats >= heartbeats_during + 3 && heartbeats_during >= 2);
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::TRIPLE_FAULT)) == 0);
  for (uint32_t i = 0; i < kMaxCpus; ++i) {
    if (!posted[i]) continue;
    if (auto r = run_on_core(i, &nothing_on_this_core, 0, kCoreTestTimeoutUs); !r) {
      return Error{r.error().code, name_core_in_failure(i, r.error().message), r.error().detail};
    }
  }
  LOG_INFO("selftest vmx_triple_fault_on_ap: %u APs' guests triple-faulted; the BSP's guest made %llu heartbeats "
           "meanwhile and %llu after; every core still answers",
           aps, static_cast<unsigned long long>(heartbeats_during), static_cast<unsigned long long>(heartbeats - heartbeats_during));
  return ok();
}

}  // namespace
}  // namespace lantern::vmx
