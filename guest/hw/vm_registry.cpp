#include "guest/hw/vm_registry.h"

#include "kernel/core/spinlock.h"

namespace lantern::guest {
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

size_t published_vms(PublishedVm* out, size_t capacity) {
  IrqSpinlockGuard guard(g_lock);
  const size_t n = g_count < capacity ? g_count : capacity;
  for (size_t i = 0; i < n; ++i) out[i] = g_vms[i];
  return n;
}

GuestVm* find_published_vm(uint32_t vm_id) {
  IrqSpinlockGuard guard(g_lock);
  PublishedVm* entry = find_locked(vm_id);
  return entry != nullptr ? entry->vm : nullptr;
}

}  // namespace lantern::guest
