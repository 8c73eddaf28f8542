// The VMX vCPUs the console can see, by VM: a core publishes its vCPU once its VM is published
// (guest/hw/vm_registry.h). Entries stay until reboot, so a pointer handed out here stays
// valid. Any core may publish or look up (a spinlock guards the table). Kernel-only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "guest/hw/guest_vm.h"
#include "kernel/lib/result.h"
#include "vmx/hw/vcpu.h"

namespace lantern::vmx {

// kNotFound when the VM was not published (guest::publish_vm); kAlreadyExists for a vCPU id
// published before; kFull past guest::kMaxPublishedVms VMs.
Result<void> publish_vcpu(const guest::GuestVm& vm, VmxVcpu& vcpu);
// The published vCPUs of VM `vm_id` in publication order (at most guest::kMaxVcpusPerVm);
// returns how many.
size_t published_vcpus(uint32_t vm_id, VmxVcpu** out, size_t capacity);
// nullptr when not published.
VmxVcpu* find_published_vcpu(uint32_t vm_id, uint32_t vcpu_id);

}  // namespace lantern::vmx
