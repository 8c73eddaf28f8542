// In-kernel SVM bring-up self-tests (`selftest` on the command line). Without SVM (Intel CPUs,
// Bochs skylake_x) each test passes after logging "skipped: no SVM (<reason>)"; under QEMU TCG
// -cpu max or Bochs ryzen they run tests/guests/svm.S through VMRUN on every core at once.
#include <string_view>

#include "kernel/arch/x86_64/percpu.h"
#include "kernel/boot/cmdline.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/log.h"
#include "kernel/core/selftest.h"
#include "svm/exit_code.h"
#include "svm/exit_info.h"
#include "svm/hw/svm_operation.h"
#include "svm/hw/svm_selftest_support.h"
#include "svm/hw/svm_vcpu.h"
#include "kernel/core/core_mailbox.h"

namespace lantern::svm {
namespace {

// How long the BSP waits for an AP's copy of a test (emulated time).
constexpr uint64_t kCoreTestTimeoutUs = 120'000'000;
constexpr uint64_t kGuestEntry = 0x1000;

uint32_t low32(uint64_t v) { return static_cast<uint32_t>(v); }

bool triple_fault_step_enabled() {
  const std::string_view cmdline = boot_state().multiboot.cmdline.value_or("");
  const auto v = cmdline_value(cmdline, "svm.selftest.triple_fault");
  return !(v && (*v == "0" || *v == "off" || *v == "no"));
}

struct VcpuGuard {
  SvmBringUpVcpu* vcpu;
  ~VcpuGuard() { SvmBringUpVcpu::destroy(vcpu); }
};

// Runs until an exit the test looks at: host interrupts, NMIs and INIT/VINTR go by.
Result<SvmExit> next_exit(SvmBringUpVcpu& vcpu) {
  for (int i = 0; i < 10000; ++i) {
    const SvmExit e = TRY(vcpu.run());
    const guest::ExitKind kind = exit_kind(e.exitcode);
    if (kind != guest::ExitKind::kInterrupt && kind != guest::ExitKind::kNmi && kind != guest::ExitKind::kInterruptWindow) return e;
  }
  return make_error(ErrorCode::kTimeout, "the guest made no visible exit in 10000 VMRUNs");
}

Result<void> guest_exits_on_this_core(uint64_t) {
  if (skip_without_svm("svm_guest_exits")) return ok();
  VcpuGuard guard{TRY(SvmBringUpVcpu::create("svm"))};
  SvmBringUpVcpu& vcpu = *guard.vcpu;
  Vmcb& vmcb = vcpu.vmcb();
  SvmGuestGprs& r = vcpu.gprs();
  r.r8 = 0x8888888888888888ull;
  r.r15 = 0xf15f15f15f15f15full;

  // 1. CPUID leaf 0; RIP advances by 2 without NRIP.
  SvmExit e = TRY(next_exit(vcpu));
  SELFTEST_EXPECT(e.exitcode == kVmexitCpuid);
  SELFTEST_EXPECT(low32(vmcb.save.rax) == 0);
  const uint64_t cpuid_rip = e.rip;
  SELFTEST_EXPECT(cpuid_rip > kGuestEntry && cpuid_rip < kGuestEntry + 0x100);
  vmcb.save.rax = 0x53564d21;
  r.rbx = r.rcx = r.rdx = 0;
  TRY(vcpu.skip_instruction(e));
  SELFTEST_EXPECT(vmcb.save.rip == cpuid_rip + 2);

  // 2. OUT imm8: the next RIP comes from EXITINFO2 (APM 15.10.2).
  e = TRY(next_exit(vcpu));
  SELFTEST_EXPECT(e.exitcode == kVmexitIoio);
  IoioInfo io = IoioInfo::decode(e.exitinfo1);
  SELFTEST_EXPECT(!io.in && io.port == 0x80 && io.width == 1 && !io.string);
  SELFTEST_EXPECT((vmcb.save.rax & 0xff) == 0x5a);
  SELFTEST_EXPECT(e.exitinfo2 == e.rip + 2);
  TRY(vcpu.skip_instruction(e));

  // 3. IN AL, DX (1 byte): completed with 0x7e.
  e = TRY(next_exit(vcpu));
  SELFTEST_EXPECT(e.exitcode == kVmexitIoio);
  io = IoioInfo::decode(e.exitinfo1);
  SELFTEST_EXPECT(io.in && io.port == 0x84 && io.width == 1);
  SELFTEST_EXPECT(e.exitinfo2 == e.rip + 1);
  vmcb.save.rax = (vmcb.save.rax & ~uint64_t{0xff}) | 0x7e;
  TRY(vcpu.skip_instruction(e));

  // 4. RDMSR 0x1234 (EXITINFO1 0 = RDMSR, APM 15.11).
  e = TRY(next_exit(vcpu));
  SELFTEST_EXPECT(e.exitcode == kVmexitMsr && e.exitinfo1 == 0);
  SELFTEST_EXPECT(low32(r.rcx) == 0x1234);
  vmcb.save.rax = 0x55667788;
  r.rdx = 0x11223344;
  TRY(vcpu.skip_instruction(e));

  // 5. VMMCALL with what the guest saw: every completion landed and no instruction ran twice.
  e = TRY(next_exit(vcpu));
  SELFTEST_EXPECT(e.exitcode == kVmexitVmmcall);
  SELFTEST_EXPECT(low32(vmcb.save.rax) == 0x30);
  SELFTEST_EXPECT(low32(r.rdi) == 0x53564d21);
  SELFTEST_EXPECT(low32(r.rsi) == 0x7e);
  SELFTEST_EXPECT(low32(r.rdx) == 0x55667788 && low32(r.rcx) == 0x11223344);
  SELFTEST_EXPECT(r.r8 == 0x8888888888888888ull && r.r15 == 0xf15f15f15f15f15full);
  vmcb.save.rax = 0xc0ffee;
  TRY(vcpu.skip_instruction(e));
  SELFTEST_EXPECT(vmcb.save.rip == e.rip + 3);

  // 6. The answer reached the guest.
  e = TRY(next_exit(vcpu));
  SELFTEST_EXPECT(e.exitcode == kVmexitVmmcall && low32(vmcb.save.rax) == 0x31);
  SELFTEST_EXPECT(low32(r.rdi) == 0xc0ffee);
  TRY(vcpu.skip_instruction(e));

  // 7. VMRUN in the guest ends in the guest's #UD handler. In real mode the instruction raises
  //    #UD itself (SVM instructions need protected mode, APM Vol. 3 "VMRUN": #UD; exceptions are
  //    checked before intercepts, APM 15.7), which is what QEMU does; where the CPU reports the
  //    intercept instead, the host answers VMEXIT_VMRUN with #UD through EVENTINJ.
  const uint64_t vmrun_rip = e.rip + 3;  // right after the 3-byte VMMCALL 0x31
  e = TRY(next_exit(vcpu));
  if (e.exitcode == kVmexitVmrun) {
    SELFTEST_EXPECT(e.rip == vmrun_rip);
    TRY(vcpu.inject_undefined_opcode());
    LOG_INFO("selftest svm_guest_exits: VMRUN intercepted, #UD injected through EVENTINJ");
    e = TRY(next_exit(vcpu));
  } else {
    LOG_INFO("selftest svm_guest_exits: VMRUN raised #UD in the guest (real mode) before its intercept");
  }
  SELFTEST_EXPECT(e.exitcode == kVmexitVmmcall && low32(vmcb.save.rax) == 0x32);
  SELFTEST_EXPECT((r.rdi & 0xffff) == vmrun_rip);
  SELFTEST_EXPECT(vmcb.control.eventinj == 0);
  TRY(vcpu.skip_instruction(e));

  // 8. HLT after the #UD handler skipped VMRUN.
  e = TRY(next_exit(vcpu));
  SELFTEST_EXPECT(e.exitcode == kVmexitHlt);
  SELFTEST_EXPECT(e.rip == vmrun_rip + 3);
  TRY(vcpu.skip_instruction(e));
  SELFTEST_EXPECT(vmcb.save.rip == vmrun_rip + 4);

  // 9. Triple fault: VMEXIT_SHUTDOWN stops this vCPU and nothing else. Off with
  //    `svm.selftest.triple_fault=0`: Bochs 2.7 ends the whole emulator on a triple fault inside
  //    an SVM guest (its exception() panics before it takes the SHUTDOWN intercept).
  if (!triple_fault_step_enabled()) {
    LOG_INFO("selftest svm_guest_exits: cpu%u: triple-fault step off (svm.selftest.triple_fault=0)", this_cpu().index);
    return ok();
  }
  e = TRY(next_exit(vcpu));
  SELFTEST_EXPECT(e.exitcode == kVmexitShutdown);
  SELFTEST_EXPECT(vcpu.stopped());
  auto again = vcpu.run();
  SELFTEST_EXPECT(!again && again.error().code == ErrorCode::kInvalidState);
  return ok();
}

LANTERN_SELFTEST(svm_every_core_in_svm_operation) {
  if (skip_without_svm("svm_every_core_in_svm_operation")) return ok();
  SELFTEST_EXPECT(features() != nullptr && features()->nested_paging);
  SELFTEST_EXPECT(cores_in_svm_operation() == cpu_count());
  return ok();
}

LANTERN_SELFTEST(svm_guest_exits) {
  return run_on_every_core("svm_guest_exits", &guest_exits_on_this_core);
}

}  // namespace

bool skip_without_svm(const char* test) {
  if (this_cpu_in_svm_operation()) return false;
  const char* why = unavailable_reason();
  LOG_INFO("selftest %s: skipped: no SVM (%s)", test, why != nullptr ? why : "this core is not in SVM operation");
  return true;
}

Result<void> run_on_every_core(const char* test, CoreWork body) {
  const uint32_t me = this_cpu().index;
  bool posted[kMaxCpus] = {};
  for (uint32_t i = 0; i < kMaxCpus; ++i) {
    if (i == me || cpu_by_index(i) == nullptr) continue;
    TRY(post_core_work(i, body, i));
    posted[i] = true;
  }
  Result<void> result = body(me);
  uint32_t passed = result ? 1 : 0;
  if (!result) LOG_ERROR("selftest %s: cpu%u: %s (line/detail %llu)", test, me, result.error().message,
                         static_cast<unsigned long long>(result.error().detail));
  for (uint32_t i = 0; i < kMaxCpus; ++i) {
    if (!posted[i]) continue;
    Result<void> theirs = wait_core_work(i, kCoreTestTimeoutUs);
    if (theirs) {
      ++passed;
      continue;
    }
    LOG_ERROR("selftest %s: cpu%u: %s (line/detail %llu)", test, i, theirs.error().message,
              static_cast<unsigned long long>(theirs.error().detail));
    if (result) result = theirs;
  }
  if (result) LOG_INFO("selftest %s: passed on %u core(s) at once", test, passed);
  return result;
}

}  // namespace lantern::svm
