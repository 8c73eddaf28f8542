#include "vmx/hw/vm_registry.h"

#include "kernel/core/spinlock.h"

namespace lantern::vmx {
namespace {

IrqSpinlock g_lock;
PublishedVm g_vms[kMaxPublishedVms];  // guarded by g_lock
size_t g_count = 0;                   // guarded by g_lock

PublishedVm* find_locked(uint32_t vm_id) {
  for (size_t i = 0; i < g_count; ++i) {
    if (g_vms[i].vm->vm_id == vm_id) return &g_vms[i];
  }
  return nullptr;
}

}  // namespace

Result<void> publish_vm(GuestVm& vm, std::string_view program) {
  IrqSpinlockGuard guard(g_lock);
  if (find_locked(vm.vm_id) != nullptr) return make_error(ErrorCode::kAlreadyExists, "VM already published", vm.vm_id);
  if (g_count == kMaxPublishedVms) return make_error(ErrorCode::kFull, "the VM table is full", kMaxPublishedVms);
  PublishedVm& entry = g_vms[g_count];
  entry = PublishedVm{};
  entry.vm = &vm;
  const size_t length = program.size() < sizeof(entry.program) - 1 ? program.size() : sizeof(entry.program) - 1;
  for (size_t i = 0; i < length; ++i) entry.program[i] = program[i];
  ++g_count;
  return ok();
}

Result<void> publish_vcpu(const GuestVm& vm, VmxVcpu& vcpu) {
  IrqSpinlockGuard guard(g_lock);
  PublishedVm* entry = find_locked(vm.vm_id);
  if (entry == nullptr) return make_error(ErrorCode::kNotFound, "VM not published", vm.vm_id);
  for (uint32_t i = 0; i < entry->vcpu_count; ++i) {
    if (entry->vcpus[i]->vcpu_id() == vcpu.vcpu_id())
      return make_error(ErrorCode::kAlreadyExists, "vCPU already published", vcpu.vcpu_id());
  }
  if (entry->vcpu_count == kMaxVcpusPerPublishedVm)
    return make_error(ErrorCode::kFull, "the VM's vCPU table is full", kMaxVcpusPerPublishedVm);
  entry->vcpus[entry->vcpu_count++] = &vcpu;
  return ok();
}

size_t published_vms(PublishedVm* out, size_t capacity) {
  IrqSpinlockGuard guard(g_lock);
  const size_t n = g_count < capacity ? g_count : capacity;
  for (size_t i = 0; i < n; ++i) out[i] = g_vms[i];
  return n;
}

size_t published_vm_count() {
  IrqSpinlockGuard guard(g_lock);
  return g_count;
}

GuestVm* find_published_vm(uint32_t vm_id) {
  IrqSpinlockGuard guard(g_lock);
  PublishedVm* entry = find_locked(vm_id);
  return entry != nullptr ? entry->vm : nullptr;
}

VmxVcpu* find_published_vcpu(uint32_t vm_id, uint32_t vcpu_id) {
  IrqSpinlockGuard guard(g_lock);
  PublishedVm* entry = find_locked(vm_id);
  if (entry == nullptr) return nullptr;
  for (uint32_t i = 0; i < entry->vcpu_count; ++i) {
    if (entry->vcpus[i]->vcpu_id() == vcpu_id) return entry->vcpus[i];
  }
  return nullptr;
}

std::string_view published_program(uint32_t vm_id) {
  IrqSpinlockGuard guard(g_lock);
  PublishedVm* entry = find_locked(vm_id);
  return entry != nullptr ? std::string_view(entry->program) : std::string_view();
}

}  // namespace lantern::vmx
