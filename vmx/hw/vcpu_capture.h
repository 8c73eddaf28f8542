// What the console reads about one vCPU, captured on the core that owns it (a VMCS can only be
// read on the core where it is current, SDM Vol. 3C 24.1 and 31.6), and the way to ask for it
// from any core: capture_vcpu() reads directly when the vCPU is bound to the calling core and
// otherwise posts the read to the owning core's mailbox (core_mailbox.h) and waits, bounded.
// The IPI that wakes the owner forces a running guest out (external-interrupt exiting), so the
// answer comes at the guest's next exit even when it spins with interrupts off. Kernel-only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "kernel/lib/result.h"
#include "vmx/exit_reason.h"
#include "guest/general_registers.h"
#include "vmx/hw/vcpu.h"
#include "vmx/vmcs_fields.h"

namespace lantern::vmx {

struct VcpuCapture {
  uint32_t vm = 0;
  uint32_t vcpu = 0;
  int32_t cpu = -1;
  bool launched = false;
  bool halted = false;   // sleeping in HLT (activity state HLT) at the capture
  bool parked = false;   // INIT received, waiting for a SIPI
  bool stopped = false;
  const char* stop_message = nullptr;  // static text, when stopped
  guest::GeneralRegisters regs{};
  uint64_t cr2 = 0;  // switched by hand, not in the VMCS
  uint64_t total_exits = 0;
  uint64_t events_injected = 0;
  std::array<uint64_t, kExitReasonTableSize> exit_counts{};
  std::array<ExitRecord, VmxVcpu::kExitRingSize> recent{};  // newest first
  size_t recent_count = 0;
  // Every field of kVmcsFields; vmcs_supported[i] says whether this CPU has field i.
  bool vmcs_valid = false;  // false: the vCPU was not set up or not bound (nothing to read)
  std::array<uint64_t, kVmcsFieldCount> vmcs_values{};
  std::array<bool, kVmcsFieldCount> vmcs_supported{};
  uint64_t tsc = 0;  // host TSC at the capture
};

// Fills `out` from `vcpu`. Must run on the core the vCPU is bound to; makes the vCPU's VMCS
// current again first if other work left another one current (VMPTRST, SDM Vol. 3C 30.3).
Result<void> capture_vcpu_here(VmxVcpu& vcpu, VcpuCapture& out);

// The default bound on the owner's answer, and the one the console uses.
inline constexpr uint64_t kCaptureTimeoutUs = 250'000;

// Captures `vcpu` wherever it is bound. kTimeout when the owning core does not answer within
// `timeout_us`; kBusy while an earlier request to that core is still outstanding (both map to
// 503 in the console). An unbound vCPU is captured without its VMCS.
Result<void> capture_vcpu(VmxVcpu& vcpu, VcpuCapture& out, uint64_t timeout_us = kCaptureTimeoutUs);

}  // namespace lantern::vmx
