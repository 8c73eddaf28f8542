// In-kernel VMX self-tests (`selftest` on the command line). Without VMX (QEMU TCG) each test
// passes after logging "skipped: no VMX"; under Bochs they drive tests/guests/selftest.S through
// the real VMX instructions.
#include <variant>

#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/log.h"
#include "kernel/core/selftest.h"
#include "kernel/lib/string.h"
#include "vmx/hw/guest_vm.h"
#include "vmx/hw/vcpu.h"
#include "vmx/hw/vmx_instructions.h"
#include "vmx/hw/vmx_operation.h"

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

struct VcpuGuard {
  VmxVcpu* vcpu;
  ~VcpuGuard() { VmxVcpu::destroy(vcpu); }
};

LANTERN_SELFTEST(vmx_every_core_in_vmx_operation) {
  if (skip_without_vmx("vmx_every_core_in_vmx_operation")) return ok();
  SELFTEST_EXPECT(capabilities() != nullptr);
  SELFTEST_EXPECT(cores_in_vmx_operation() == cpu_count());
  return ok();
}

LANTERN_SELFTEST(vmx_vmfail_is_a_value) {
  if (skip_without_vmx("vmx_vmfail_is_a_value")) return ok();
  GuestVm* vm = TRY(create_guest_vm(900, "selftest"));
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
  // setup() is once only; binding twice on the same core is harmless.
  auto again = guard.vcpu->setup(vm->eptp, GuestEntry{});
  SELFTEST_EXPECT(!again && again.error().code == ErrorCode::kInvalidState);
  SELFTEST_EXPECT(guard.vcpu->bind_to_current_processor().has_value());
  return ok();
}

LANTERN_SELFTEST(vmx_guest_exits) {
  if (skip_without_vmx("vmx_guest_exits")) return ok();
  GuestVm* vm = TRY(create_guest_vm(901, "selftest"));
  VcpuGuard guard{TRY(create_bound_vcpu(*vm, 3))};
  VmxVcpu& vcpu = *guard.vcpu;
  GeneralRegisters& regs = vcpu.registers();
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
  SELFTEST_EXPECT(hc->args[3] == kCpuidHypervisorLeaf);

  // 5. RDMSR completed as EDX:EAX; WRMSR value from EDX:EAX.
  e = TRY(next_exit(vcpu));
  auto* rd = std::get_if<exits::MsrRead>(&e);
  SELFTEST_EXPECT(rd != nullptr && rd->msr == 0x1234);
  TRY(vcpu.complete_msr_read(0x1122334455667788ull));
  e = TRY(next_exit(vcpu));
  hc = std::get_if<exits::Hypercall>(&e);
  SELFTEST_EXPECT(hc != nullptr && hc->nr == 0x15 && hc->args[0] == 0x55667788 && hc->args[1] == 0x11223344);
  e = TRY(next_exit(vcpu));
  auto* wr = std::get_if<exits::MsrWrite>(&e);
  SELFTEST_EXPECT(wr != nullptr && wr->msr == 0x4321 && wr->value == 0x01020304aabbccddull);

  // 6. HLT, then the exit port.
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
  SELFTEST_EXPECT((vcpu.stop_exit_reason() & 0xffff) == static_cast<uint32_t>(ExitReason::CR_ACCESS));
  SELFTEST_EXPECT(!vcpu.run());

  // Accounting: every exit counted, the ring holds the latest first.
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::VMCALL)) == 6);
  SELFTEST_EXPECT(vcpu.exit_count(static_cast<uint32_t>(ExitReason::IO_INSTRUCTION)) == 7);
  ExitRecord recent[2];
  SELFTEST_EXPECT(vcpu.recent_exits(recent, 2) == 2);
  SELFTEST_EXPECT((recent[0].reason & 0xffff) == static_cast<uint32_t>(ExitReason::CR_ACCESS));
  SELFTEST_EXPECT((recent[1].reason & 0xffff) == static_cast<uint32_t>(ExitReason::IO_INSTRUCTION));
  return ok();
}

}  // namespace
}  // namespace lantern::vmx
