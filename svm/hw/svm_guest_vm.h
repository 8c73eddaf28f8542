// Guest VMs on the SVM backend as the kernel runs them today: 2 MiB of guest memory under
// nested paging (guest/nested_paging.h in NPT format), a guest program from the boot modules
// (tests/guests/), the demo devices (guest/demo_devices.h: the UART to a per-VM console, the
// exit port) and one SvmVcpu bound to its core; the published table the console reads; and the
// per-core demo loop, the SVM twin of vmx/hw/guest_vm.h's. Kernel-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "guest/demo_devices.h"
#include "guest/nested_paging.h"
#include "guest/vm.h"
#include "kernel/lib/result.h"
#include "svm/hw/svm_guest_vcpu.h"
#include "guest/hw/guest_vm.h"

namespace lantern::svm {

// The vCPUs of one SvmGuestVm by vcpu id (= APIC ID): where their vlapics' IPIs go, routed by
// guest::deliver_ipi() (guest/vlapic.h: destinations and delivery modes, SDM Vol. 3A 11.6). Each
// target is posted lock-free and its owner core kicked.
class SvmVcpuGroup {
 public:
  static constexpr uint32_t kMaxVcpus = guest::kMaxVcpusPerVm;
  // On `vcpu`'s owner core, before it runs: routes its vlapic's IPIs through this group.
  // kInvalidArgument for a vcpu id past kMaxVcpus, kAlreadyExists when the id is taken.
  Result<void> join(SvmVcpu& vcpu);
  // Before `vcpu` is destroyed.
  void leave(SvmVcpu& vcpu);

 private:
  static void deliver(void* context, const guest::IpiRequest& ipi, bool x2apic);
  std::atomic<SvmVcpu*> members_[kMaxVcpus] = {};
};

// The vendor-neutral guest VM (guest/hw/guest_vm.h: RAM, nCR3 as its nested root, console,
// demo devices) and what the SVM demo adds.
struct SvmGuestVm : guest::GuestVm {
  uint64_t npt_pml4_phys = 0;
  SvmVcpuGroup vcpus;
  char program[17] = {};
};

// A VM with guest::kGuestMemoryBytes of RAM under NPT, the demo devices, its unknown MSRs reading 0,
// and the guest program `program_name` from the boot modules at guest::kGuestLoadAddress with its
// hypercall sites rewritten to VMMCALL (svm/hypercall_sites.h). kNotFound without that program.
Result<SvmGuestVm*> create_svm_guest_vm(uint32_t vm_id, std::string_view program_name);
// Frees the VM's RAM, nested page tables and the VM; its vCPUs must be destroyed first.
void destroy_svm_guest_vm(SvmGuestVm* vm);

// ---- The published VMs and vCPUs (the console's view); entries stay until reboot ----------
struct PublishedSvmVm {
  SvmGuestVm* vm = nullptr;  // nullptr for a user VM's vCPU (guest/hw/user_vms.h lists the VM)
  SvmVcpu* vcpu = nullptr;   // one entry per vCPU
};
inline constexpr size_t kMaxPublishedSvmVms = 64;
size_t published_svm_vms(PublishedSvmVm* out, size_t capacity);
SvmGuestVm* find_published_svm_vm(uint32_t vm_id);
// A user VM's vCPU (svm/hw/svm_user_vms.h): the console lists and captures it like the demo's.
Result<void> publish_user_vcpu(SvmVcpu* vcpu);
SvmVcpu* find_published_svm_vcpu(uint32_t vm_id, uint32_t vcpu_id);

// Captures `vcpu` on the core that owns it (directly when that is this core, otherwise through
// its mailbox, kernel/core/core_mailbox.h; the wake-up IPI forces the guest out with an INTR exit).
// kTimeout / kBusy as vmx::capture_vcpu().
Result<void> capture_svm_vcpu(SvmVcpu& vcpu, SvmCapture& out, uint64_t timeout_us);

// The demo on each core in SVM operation: one VM with one vCPU running the "demo" guest.
// prepare_* creates and binds it (before the core reports online, so READY counts it); run_*
// loops while the guest runs and returns at once without one. Off when the VMX backend runs
// this core, and with `selftest`, `bench` or `vmx.demo=0`/`svm.demo=0` on the command line.
using HostWork = void (*)();
Result<void> prepare_demo_vcpu_on_this_cpu();
void run_vcpu_loop_on_this_cpu(HostWork host_work = nullptr);

// `bench` mode without VMX (on the BSP): runs tests/guests/bench.S in an SvmVcpu and prints
// `BENCH svm_<name> <n> ticks` lines (guest TSC ticks per operation minus the RDTSC baseline,
// minimum over the iterations), the SVM twin of vmx::run_benchmarks().
Result<void> run_benchmarks();

}  // namespace lantern::svm
