#include "vmx/hw/vcpu_capture.h"

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/core_mailbox.h"
#include "vmx/hw/vmx_instructions.h"
#include "vmx/vmx_hw.h"

namespace lantern::vmx {
namespace {

void capture_software_state(const VmxVcpu& vcpu, VcpuCapture& out) {
  out.vm = vcpu.vm_id();
  out.vcpu = vcpu.vcpu_id();
  out.cpu = vcpu.bound_cpu();
  out.launched = vcpu.launched();
  out.halted = vcpu.halted();
  out.parked = vcpu.waiting_for_sipi();
  out.stopped = vcpu.stopped();
  out.stop_message = vcpu.stop_message();
  out.regs = vcpu.registers();
  out.cr2 = vcpu.guest_cr2();
  out.total_exits = vcpu.total_exits();
  out.events_injected = vcpu.events_injected();
  for (size_t r = 0; r < kExitReasonTableSize; ++r) out.exit_counts[r] = vcpu.exit_count(static_cast<uint32_t>(r));
  out.recent_count = vcpu.recent_exits(out.recent.data(), out.recent.size());
  out.tsc = cpu::rdtsc();
}

// One capture buffer per target core, written by that core. Static: a capture that timed out
// still lands here when the owner gets to it, long after the caller has gone; the mailbox slot
// stays busy until then, so no second request can share the buffer.
VcpuCapture g_remote_capture[kMaxCpus];

Result<void> capture_on_owner(uint64_t vcpu_address) {
  const uint32_t me = this_cpu().index;
  if (me >= kMaxCpus) return make_error(ErrorCode::kInvalidState, "core index out of range", me);
  return capture_vcpu_here(*reinterpret_cast<VmxVcpu*>(vcpu_address), g_remote_capture[me]);
}

}  // namespace

Result<void> capture_vcpu_here(VmxVcpu& vcpu, VcpuCapture& out) {
  const int32_t owner = vcpu.bound_cpu();
  if (owner != static_cast<int32_t>(this_cpu().index)) {
    return make_error(ErrorCode::kInvalidState, "the vCPU is not bound to this core", static_cast<uint64_t>(owner));
  }
  out = VcpuCapture{};
  capture_software_state(vcpu, out);
  if (!vcpu.is_setup()) return ok();
  // Mailbox work may have run guests of its own and left another VMCS current.
  if (hw::vmptrst() != vcpu.vmcs_phys()) TRY(vcpu.reload_on_this_cpu());
  hw::KernelVmxHw hw;
  size_t index = 0;
  // for_each_supported_field walks kVmcsFields in order and skips unsupported fields; match
  // each reported field back to its index.
  TRY(for_each_supported_field(hw, [&](const VmcsFieldInfo& info, uint64_t value) {
    while (index < kVmcsFieldCount && kVmcsFields[index].encoding != info.encoding) ++index;
    if (index == kVmcsFieldCount) return;
    out.vmcs_values[index] = value;
    out.vmcs_supported[index] = true;
  }));
  out.vmcs_valid = true;
  return ok();
}

Result<void> capture_vcpu(VmxVcpu& vcpu, VcpuCapture& out, uint64_t timeout_us) {
  const int32_t owner = vcpu.bound_cpu();
  if (owner < 0) {
    out = VcpuCapture{};
    capture_software_state(vcpu, out);  // no VMCS is current anywhere: nothing more to read
    return ok();
  }
  const auto core = static_cast<uint32_t>(owner);
  if (core == this_cpu().index) return capture_vcpu_here(vcpu, out);
  if (core >= kMaxCpus) return make_error(ErrorCode::kInvalidState, "bound to an unknown core", core);
  TRY(post_core_work(core, &capture_on_owner, reinterpret_cast<uint64_t>(&vcpu)));
  vcpu.request_return();  // a guest the wake-up IPI cannot force out (VmxVcpu::request_return)
  TRY(wait_core_work(core, timeout_us));
  out = g_remote_capture[core];
  return ok();
}

}  // namespace lantern::vmx
