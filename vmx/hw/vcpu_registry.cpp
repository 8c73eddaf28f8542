#include "vmx/hw/vcpu_registry.h"

#include "guest/hw/vm_registry.h"
#include "kernel/core/spinlock.h"

namespace lantern::vmx {
namespace {

struct PublishedVcpus {
  uint32_t vm_id = 0;
  VmxVcpu* vcpus[guest::kMaxVcpusPerVm] = {};  // vcpu ids are below kMaxVcpusPerVm
  uint32_t count = 0;
};

IrqSpinlock g_lock;
PublishedVcpus g_vms[guest::kMaxPublishedVms];  // guarded by g_lock
size_t g_count = 0;                             // guarded by g_lock

PublishedVcpus* find_locked(uint32_t vm_id) {
  for (size_t i = 0; i < g_count; ++i) {
    if (g_vms[i].vm_id == vm_id) return &g_vms[i];
  }
  return nullptr;
}

}  // namespace

Result<void> publish_vcpu(const guest::GuestVm& vm, VmxVcpu& vcpu) {
  if (guest::find_published_vm(vm.vm_id) == nullptr) return make_error(ErrorCode::kNotFound, "VM not published", vm.vm_id);
  IrqSpinlockGuard guard(g_lock);
  PublishedVcpus* entry = find_locked(vm.vm_id);
  if (entry == nullptr) {
    if (g_count == guest::kMaxPublishedVms) return make_error(ErrorCode::kFull, "the vCPU table is full", g_count);
    entry = &g_vms[g_count++];
    *entry = PublishedVcpus{};
    entry->vm_id = vm.vm_id;
  }
  for (uint32_t i = 0; i < entry->count; ++i) {
    if (entry->vcpus[i]->vcpu_id() == vcpu.vcpu_id())
      return make_error(ErrorCode::kAlreadyExists, "vCPU already published", vcpu.vcpu_id());
  }
  if (entry->count == guest::kMaxVcpusPerVm)
    return make_error(ErrorCode::kFull, "the VM's vCPU table is full", guest::kMaxVcpusPerVm);
  entry->vcpus[entry->count++] = &vcpu;
  return ok();
}

size_t published_vcpus(uint32_t vm_id, VmxVcpu** out, size_t capacity) {
  IrqSpinlockGuard guard(g_lock);
  const PublishedVcpus* entry = find_locked(vm_id);
  if (entry == nullptr) return 0;
  const size_t n = entry->count < capacity ? entry->count : capacity;
  for (size_t i = 0; i < n; ++i) out[i] = entry->vcpus[i];
  return n;
}

VmxVcpu* find_published_vcpu(uint32_t vm_id, uint32_t vcpu_id) {
  IrqSpinlockGuard guard(g_lock);
  PublishedVcpus* entry = find_locked(vm_id);
  if (entry == nullptr) return nullptr;
  for (uint32_t i = 0; i < entry->count; ++i) {
    if (entry->vcpus[i]->vcpu_id() == vcpu_id) return entry->vcpus[i];
  }
  return nullptr;
}

}  // namespace lantern::vmx
