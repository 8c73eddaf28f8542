// The user's own VMs (`./lantern --vm`): Multiboot v1 kernels from tagged GRUB modules
// (guest/vm_spec.h), each on the QEMU-compatible guest platform (guest/devices/guest_platform.h),
// each vCPU on an application processor of its own. Kernel-only.
//
// Life cycle:
//   build_user_vms()            BSP, before the APs start: plan the VMs from the boot modules,
//                               build each (guest RAM, EPT, kernel, modules and Multiboot
//                               information, guest/loader/multiboot1.h), then give the built ones
//                               cores (guest::place_vms). A VM that cannot be built or placed is
//                               `failed` with the reason, logged; the rest go on.
//   prepare_user_vcpu_on_this_cpu()  each AP, before it reports online: creates, sets up and
//                               binds the vCPU placed on this core: vCPU 0 in the MB 3.2 entry
//                               state, the others waiting for INIT/SIPI from the guest.
//   run_user_vm_on_this_cpu()   each AP after online: returns at once when no vCPU is placed here;
//                               otherwise runs it, and after the VM ends (exit port, failure)
//                               waits for a reset, forever.
//   check_user_vms_started()    BSP, before READY: a VM whose vCPU 0 never got its core fails.
// A VM that ends (isa-debug-exit 0xf4, the shutdown port 0x8900) or fails stops all its vCPUs
// and frees its guest RAM and EPT; its record, console output and counters stay for the console.
// A reset (POST /vms/{vm}/reset) builds RAM and EPT again from the boot modules, which stay in
// memory, and restarts the same vCPUs.
//
// With tagged modules present the demo guests are off on every core: cores without a user vCPU
// idle and serve mailbox work (docs/lab-guide.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "guest/devices/guest_platform.h"
#include "kernel/lib/result.h"

namespace lantern::vmx {

void build_user_vms(uint32_t physical_cpus);
// True when the boot modules hold tagged VM modules (even if every VM failed).
bool user_vms_requested();
Result<void> prepare_user_vcpu_on_this_cpu();
void run_user_vm_on_this_cpu();
void check_user_vms_started();

enum class UserVmState : uint8_t { kStarting, kRunning, kExited, kFailed };

// What the console shows for one user VM (a copy: safe to keep).
struct UserVmStatus {
  uint32_t vm = 0;
  std::string name;
  std::string kernel_format;  // "multiboot-elf32", ... ("" when the kernel was never loaded)
  std::string cmdline;
  uint64_t memory_bytes = 0;
  uint32_t vcpu_count = 0;
  int32_t cpu = -1;  // vCPU 0's core
  UserVmState state = UserVmState::kStarting;
  uint32_t exit_code = 0;         // kExited: the value written to 0xf4 (0 for the shutdown port)
  uint64_t exit_status = 0;       // kExited: what QEMU would exit with ((code << 1) | 1 for 0xf4)
  const char* exit_cause = "";    // kExited: guest::exit_cause_name()
  std::string failure;            // kFailed: the reason
  uint32_t resets = 0;
  uint64_t console_bytes = 0;
  guest::PlatformCounters devices;
  // Ports without a device the guest touched (up to guest::PortBus::kMaxUnclaimedPorts).
  struct Port {
    uint16_t port = 0;
    uint64_t reads = 0, writes = 0;
  };
  std::vector<Port> unclaimed_ports;
};

// Every user VM in plan order; empty without --vm.
std::vector<UserVmStatus> user_vm_statuses();
bool is_user_vm(uint32_t vm_id);

// Console input for the VM's UART receive side: all of `bytes` or nothing. kNotFound: no such
// user VM; kFull: the UART's input buffer lacks room (429); kInvalidState: the VM does not run
// (409); kInvalidArgument: more bytes than the buffer ever holds (413).
Result<void> push_user_vm_input(uint32_t vm_id, std::span<const uint8_t> bytes);
// Asks the core of the VM's vCPU 0 to restart it from its boot modules (asynchronous: the VM's
// `resets` grows and its state turns `running` when done). kNotFound; kInvalidState for a VM
// that never got a vCPU (refused at build); kBusy while that core's mailbox still holds work.
Result<void> request_user_vm_reset(uint32_t vm_id);

}  // namespace lantern::vmx
