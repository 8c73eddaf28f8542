// The VMs and vCPUs the console can see. A core publishes its VM and vCPU once they exist (the
// demo does it in prepare_demo_vcpu_on_this_cpu); the console (web/kernel/) looks them up by id.
// Published entries stay until reboot: nothing published is ever freed, so a pointer handed out
// here stays valid. Transient guests (the selftest and bench VMs) are not published.
// Any core may publish or look up (a spinlock guards the table). Kernel-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernel/lib/result.h"
#include "vmx/hw/guest_vm.h"
#include "vmx/hw/vcpu.h"

namespace lantern::vmx {

inline constexpr size_t kMaxPublishedVms = 64;
inline constexpr size_t kMaxVcpusPerPublishedVm = 16;

struct PublishedVm {
  GuestVm* vm = nullptr;
  char program[17] = {};  // the guest program's name, NUL-terminated
  VmxVcpu* vcpus[kMaxVcpusPerPublishedVm] = {};
  uint32_t vcpu_count = 0;
};

// kAlreadyExists for a VM id published before; kFull when the table is full.
Result<void> publish_vm(GuestVm& vm, std::string_view program);
// kNotFound when the VM was not published; kAlreadyExists for a vCPU id published before;
// kFull past kMaxVcpusPerPublishedVm.
Result<void> publish_vcpu(const GuestVm& vm, VmxVcpu& vcpu);

// Copies of the table's entries in publication order; returns how many (at most capacity).
size_t published_vms(PublishedVm* out, size_t capacity);
size_t published_vm_count();
// nullptr when not published.
GuestVm* find_published_vm(uint32_t vm_id);
VmxVcpu* find_published_vcpu(uint32_t vm_id, uint32_t vcpu_id);
// The program name of a published VM ("" when not published).
std::string_view published_program(uint32_t vm_id);

}  // namespace lantern::vmx
