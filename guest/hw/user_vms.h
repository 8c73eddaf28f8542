// The user's own VMs (`./lantern --vm`): Multiboot v1 kernels from tagged GRUB modules
// (guest/vm_spec.h), each on the QEMU-compatible guest platform (guest/devices/guest_platform.h),
// each vCPU on an application processor of its own, on whichever backend runs the cores (VMX, or
// SVM where VMX does not: the backend's UserVmBackend and UserVcpu below). Kernel-only.
//
// Life cycle:
//   build_user_vms()            BSP, before the APs start: plan the VMs from the boot modules,
//                               build each (guest RAM, nested page tables, kernel, modules and Multiboot
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
// and frees its guest RAM and nested page tables; its record, console output and counters stay for the console.
// A reset (POST /vms/{vm}/reset) builds RAM and nested page tables again from the boot modules, which stay in
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
#include "guest/loader/entry_state.h"
#include "guest/nested_paging.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

struct GuestVm;

// What the vCPU of a user VM starts from; `vm` is the VM's shared object (console, port bus,
// vCPU group), `entry` applies to vCPU 0 (the others wait for INIT/SIPI).
struct UserVcpuStart {
  GuestVm* vm = nullptr;
  uint32_t vcpu_id = 0;
  uint64_t nested_root = 0;  // EPTP or nCR3
  uint64_t ram_phys = 0;     // guest-physical 0 .. ram_bytes maps here
  uint64_t ram_bytes = 0;
  const guest::EntryState* entry = nullptr;
};


// One vCPU of a user VM as the shared user-VM loop drives it; each backend implements it
// (VMX here, SVM in svm/hw/svm_user_vms.cpp). Owner-core methods unless said otherwise.
class UserVcpu {
 public:
  enum class Turn : uint8_t {
    kGuest,     // back into the guest
    kHostWork,  // a host interrupt, HLT or a request to leave the guest: the core's mailbox first
  };
  virtual ~UserVcpu() = default;
  // Enters the guest and handles what the vCPU and the VM's devices handle. An error ends the VM
  // with its message (an exit nothing handles, a stopped vCPU, a failed entry).
  virtual Result<Turn> run() = 0;
  // After mailbox work ran on this core between two turns.
  virtual Result<void> after_host_work() = 0;
  virtual bool stopped() const = 0;
  virtual void stop_outside_run(const char* reason) = 0;
  // A VM reset: the vCPU starts over on the VM's new RAM and nested page tables, vCPU 0 at the
  // entry (the others then get INIT from the shared loop).
  virtual Result<void> restart(const UserVcpuStart& start) = 0;
  // Any core: INIT (the vCPU waits for a SIPI, SDM Vol. 3A 9.4) and I/O APIC deliveries.
  virtual void post_init() = 0;
  virtual void post_sipi(uint8_t vector) = 0;
  virtual void post_interrupt(uint8_t vector, bool level_triggered) = 0;
  virtual void post_nmi() = 0;
  virtual bool accepts_logical_destination(uint32_t destination) const = 0;
};

// The backend that runs user VMs on this boot's cores (VMX or SVM).
struct UserVmBackend {
  const char* name = "";
  uint32_t max_vcpus_per_vm = 1;  // a VM with more is refused with `too_many_vcpus`
  const char* too_many_vcpus = "";
  // The nested paging the backend offers for guest RAM, or why it cannot run user VMs.
  Result<guest::NestedPagingFeatures> (*nested_paging)() = nullptr;
  // What the vCPUs load as their nested root: EPTP (VMX) or nCR3 (SVM).
  uint64_t (*nested_root)(const guest::NestedPageTableBuilder& tables) = nullptr;
  // Creates, sets up, binds (to this core) and publishes the vCPU; vCPU 0 starts at the entry,
  // the others wait for INIT/SIPI.
  Result<UserVcpu*> (*create_vcpu)(const UserVcpuStart& start) = nullptr;
  // Whether a Linux guest learns the TSC frequency from the CPUID the vCPUs show (Intel's
  // leaves 15H/16H). When not (an AMD CPU under SVM), a Linux VM's command line gets
  // tsc_early_khz= (guest::bzimage::with_tsc_early_khz), so the guest needs no PIT.
  bool cpuid_announces_tsc_frequency = true;
};

// The VMX backend's user vCPUs.
// Plans and builds the VMs for `backend` (which must outlive the boot).
void build_user_vms(uint32_t physical_cpus, const UserVmBackend& backend);
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

// Any core: vCPU `vcpu_id` of user VM `vm_id` once its core created it, else nullptr (the
// targets of one vCPU's IPIs).
UserVcpu* user_vm_vcpu(uint32_t vm_id, uint32_t vcpu_id);

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

}  // namespace lantern::guest
