// A guest VM as the kernel runs it today: guest memory under EPT, a loaded guest program (a GRUB
// module built from tests/guests/), the minimal guest devices (a 16550 UART transmitter at 0x3f8
// whose output goes to a per-VM console buffer and to the log, and the QEMU-compatible exit
// port 0xf4), and the per-core loop that runs one vCPU bound to its core. Kernel-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "guest/demo_devices.h"
#include "guest/vm.h"
#include "kernel/lib/result.h"
#include "guest/nested_paging.h"
#include "vmx/hw/vcpu.h"
#include "guest/output_ring.h"

namespace lantern::vmx {

// Guest programs start with this header (tests/guests/guest_header.inc), loaded at GPA 0x1000:
//   offset 0   a jump over the header
//   offset 8   "LNTGUEST"
//   offset 16  the program's name, NUL-padded to 16 bytes
//   offset 32  the guest-physical start and end of its hypercall-site table (svm/hypercall_sites.h)
inline constexpr uint64_t kGuestLoadAddress = 0x1000;
inline constexpr uint64_t kGuestStackTop = 0x1000;  // real mode: SS:SP = 0:0x1000, below the code
inline constexpr uint64_t kGuestMemoryBytes = 2ull << 20;

// The per-VM console: what the guest wrote to its UART. Lines also go to the log, prefixed.
class GuestConsole {
 public:
  static constexpr size_t kBufferBytes = guest::OutputRing::kReadableBytes;
  void put(uint32_t vm_id, char c);
  uint64_t total_bytes() const { return output_.total(); }
  // What the guest wrote from stream offset `since` on (guest::OutputRing::read_since); any core.
  guest::OutputRing::Slice read_since(uint64_t since, char* out, size_t capacity) const {
    return output_.read_since(since, out, capacity);
  }

 private:
  guest::OutputRing output_;
  char line_[120] = {};
  size_t line_len_ = 0;
};

// The vendor-neutral VM (guest/vm.h: id, port bus, MSR policy, exit request) plus what this
// kernel adds: guest memory under EPT, the console and the vCPU group.
struct GuestVm : guest::Vm, guest::ConsoleOutput {
  uint64_t memory_phys = 0;  // GPA 0 .. kGuestMemoryBytes maps here
  uint64_t eptp = 0;
  GuestConsole console;
  VcpuGroup vcpus;  // by vcpu_id: the targets of vlapic IPIs
  guest::DemoUart uart{*this};
  guest::ExitPort exit_port{*this};

  void put_char(char c) override { console.put(vm_id, c); }
};

// Creates a VM with kGuestMemoryBytes of RAM (EPT identity of GPA 0.. onto one contiguous host
// block) and loads the guest program `name` from the boot modules. kNotFound when no module
// carries that name.
Result<GuestVm*> create_guest_vm(uint32_t vm_id, std::string_view program_name);
// Frees what create_guest_vm() allocated: the guest memory, every EPT paging-structure page
// and the GuestVm itself. Its vCPUs must be destroyed first (no VMCS may still use the EPT).
void destroy_guest_vm(GuestVm* vm);
// A vCPU of `vm` created, set up (real mode at the load address), joined to the VM's vCPU group
// (vlapic IPIs) and bound to this core.
Result<VmxVcpu*> create_bound_vcpu(GuestVm& vm, uint32_t vcpu_id);
// Arms `vcpu`'s 100 Hz return backstop (VmxVcpu::set_return_backstop): a guest that runs with
// interrupts off still leaves run() for its core's mailbox. Without a preemption timer this
// does nothing (the wake-up IPI is all there is). Bound core only.
Result<void> arm_return_backstop(VmxVcpu& vcpu);

// Handles the exits the guest devices own: UART and exit-port I/O, other ports (reads return
// all ones), MSR reads (0) and writes (ignored; the vlapic's MSRs never get here), HLT that the
// vlapic did not turn into a timed sleep (a 100 Hz wake-up or the next host interrupt), and
// hypercall 0 (null, returns 0). Returns false for an exit the caller must handle (a hypercall
// other than 0, a nested page fault, a stop).
Result<bool> handle_device_exit(GuestVm& vm, VmxVcpu& vcpu, const VmExit& exit);

// Hypercall numbers shared with tests/guests/*.S.
inline constexpr uint64_t kHypercallNull = 0;
inline constexpr uint64_t kHypercallHeartbeat = 1;
inline constexpr uint64_t kHypercallInjectInterrupt = 2;  // queue external interrupt args[0]
inline constexpr uint64_t kHypercallBenchResult = 0x20;   // id, total ticks, iterations, min

// The demo: on each core in VMX operation, one VM with one vCPU running the "demo" guest.
// prepare_* creates and binds it (call before the core reports online, so READY can count it);
// run_* loops forever when a vCPU was prepared and returns at once otherwise. The demo is off
// with `selftest`, `bench` or `vmx.demo=0` on the command line.
// host_work (may be null) runs between exits whenever the guest is idle or a host interrupt
// arrived (the BSP passes net::poll), so a core running a vCPU still does its host duties.
using HostWork = void (*)();
Result<void> prepare_demo_vcpu_on_this_cpu();
void run_vcpu_loop_on_this_cpu(HostWork host_work = nullptr);

// `bench` mode (on the BSP): runs tests/guests/bench.S and prints
// `BENCH <name> <n> ticks` lines (guest TSC ticks per operation, minimum over the iterations).
Result<void> run_benchmarks();

}  // namespace lantern::vmx
