// A guest VM as the kernel runs it today: guest memory under EPT, a loaded guest program (a GRUB
// module built from tests/guests/), the minimal guest devices (a 16550 UART transmitter at 0x3f8
// whose output goes to a per-VM console buffer and to the log, and the QEMU-compatible exit
// port 0xf4), and the per-core loop that runs one vCPU bound to its core. Kernel-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "guest/hw/guest_vm.h"
#include "kernel/lib/result.h"
#include "vmx/hw/vcpu.h"

namespace lantern::vmx {

// A VM whose vCPUs VMX runs (the demo, bench and self-test VMs): the vendor-neutral guest VM
// (guest/hw/guest_vm.h) and the vCPU group its vlapics' IPIs go through.
struct VmxVm : guest::GuestVm {
  VcpuGroup vcpus;  // by vcpu_id: the targets of vlapic IPIs
};

// Creates a VM with guest::kGuestMemoryBytes of RAM (EPT identity of GPA 0.. onto one contiguous host
// block) and loads the guest program `name` from the boot modules. kNotFound when no module
// carries that name.
Result<VmxVm*> create_guest_vm(uint32_t vm_id, std::string_view program_name);
// Frees what create_guest_vm() allocated: the guest memory, every EPT paging-structure page
// and the GuestVm itself. Its vCPUs must be destroyed first (no VMCS may still use the EPT).
void destroy_guest_vm(VmxVm* vm);
// A vCPU of `vm` created, set up (real mode at the load address), joined to the VM's vCPU group
// (vlapic IPIs) and bound to this core.
Result<VmxVcpu*> create_bound_vcpu(VmxVm& vm, uint32_t vcpu_id);
// Arms `vcpu`'s 100 Hz return backstop (VmxVcpu::set_return_backstop): a guest that runs with
// interrupts off still leaves run() for its core's mailbox. Without a preemption timer this
// does nothing (the wake-up IPI is all there is). Bound core only.
Result<void> arm_return_backstop(VmxVcpu& vcpu);

// Handles the exits the guest devices own: UART and exit-port I/O, other ports (reads return
// all ones), MSR reads (0) and writes (ignored; the vlapic's MSRs never get here), HLT that the
// vlapic did not turn into a timed sleep (a 100 Hz wake-up or the next host interrupt), and
// hypercall 0 (null, returns 0). Returns false for an exit the caller must handle (a hypercall
// other than 0, a nested page fault, a stop).
Result<bool> handle_device_exit(guest::GuestVm& vm, VmxVcpu& vcpu, const VmExit& exit);

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
