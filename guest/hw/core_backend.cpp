#include "guest/hw/core_backend.h"

#include <atomic>

#include "kernel/arch/x86_64/percpu.h"

namespace lantern::guest {
namespace {

std::atomic<CoreBackend> g_backend[kMaxCpus] = {};

}  // namespace

void set_this_core_backend(CoreBackend backend) {
  const uint32_t index = this_cpu().index;
  if (index < kMaxCpus) g_backend[index].store(backend, std::memory_order_release);
}

CoreBackend this_core_backend() {
  const uint32_t index = this_cpu().index;
  return index < kMaxCpus ? g_backend[index].load(std::memory_order_acquire) : CoreBackend::kNone;
}

}  // namespace lantern::guest
