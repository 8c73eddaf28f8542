// The vendor-neutral part of a VM: what every backend's vCPUs of that VM share. The exit core
// sends intercepted port I/O to `ports` and decides unknown MSRs by `unknown_msrs`; a device
// that ends the VM (the exit port) sets `exit_requested`, and the run loop returns to its caller
// at the next exit. Portable; used only by the cores that run this VM's vCPUs.
#pragma once

#include <atomic>
#include <cstdint>

#include "guest/io_bus.h"

namespace lantern::guest {

// vCPU ids (= initial APIC IDs) of one VM run 0 .. kMaxVcpusPerVm - 1: the size of the tables
// IPIs and I/O APIC messages find their target vCPU in.
inline constexpr uint32_t kMaxVcpusPerVm = 16;

// What the exit core does with an RDMSR/WRMSR of an MSR neither the core nor the backend
// emulates.
enum class UnknownMsrPolicy : uint8_t {
  kToCaller,             // the run loop returns MsrRead/MsrWrite to its caller
  kReadZeroIgnoreWrite,  // handled inside: reads return 0, writes are dropped
  kInjectGp,             // handled inside: #GP(0) in the guest, as on hardware for an MSR that
                         // does not exist (SDM Vol. 2B RDMSR/WRMSR, "Protected Mode Exceptions")
};

// Told when a local APIC of the VM ends a level-triggered interrupt: the EOI broadcast an I/O
// APIC uses to clear its Remote IRR (SDM Vol. 3A 11.8.5; 82093AA datasheet 3.2.4).
class LevelEoiListener {
 public:
  virtual ~LevelEoiListener() = default;
  virtual void level_eoi(uint8_t vector) = 0;
};

struct Vm {
  uint32_t vm_id = 0;
  PortBus ports;
  MmioBus mmio;
  UnknownMsrPolicy unknown_msrs = UnknownMsrPolicy::kToCaller;
  // When set, a VMCALL with RAX = this number queues external interrupt RDI for the calling
  // vCPU inside the run loop (RAX = 0, or all ones when the queue refuses it) instead of
  // returning the hypercall to the caller. 0 = off (hypercall 0 is the null hypercall).
  uint64_t self_interrupt_hypercall = 0;
  bool exit_requested = false;  // a device asked to end the VM (the exit port)
  // Another core asks this VM's run loops to return to their callers at their next exit, even
  // one handled inside (a reset or a stop). The wake-up IPI alone does not do it for a guest
  // that never leaves the guest for a host interrupt: Bochs takes no external-interrupt exit
  // while the guest's RFLAGS.IF is 0 (seen with a polling guest under Bochs 2.7).
  std::atomic<bool> leave_run{false};
  uint32_t exit_status = 0;
  // The VM's I/O APIC (level-triggered EOIs go to it); nullptr when it has none.
  LevelEoiListener* level_eoi_listener = nullptr;

  void request_exit(uint32_t status) {
    exit_status = status;
    exit_requested = true;
  }
  // Whether a vCPU's run loop returns to its caller after an exit it handled inside: the VM
  // ended, or another core asked its loops to leave. Owner core, one relaxed load.
  bool run_loop_must_return() const { return exit_requested || leave_run.load(std::memory_order_relaxed); }
};

}  // namespace lantern::guest
