// Per-CPU data, reached through the GS base (IA32_GS_BASE, SDM Vol. 4 Table 2-2).
#pragma once

#include <atomic>
#include <cstdint>

#include "kernel/arch/x86_64/descriptors.h"

namespace lantern {

constexpr uint32_t kMaxCpus = 64;
constexpr uint64_t kKernelStackSize = 64 * 1024;
constexpr uint64_t kIstStackSize = 16 * 1024;

struct PerCpu {
  PerCpu* self;  // must stay first: this_cpu() reads %gs:0
  uint32_t index;
  uint32_t apic_id;
  alignas(16) GdtTable gdt;
  Tss64 tss;
  uint64_t stack_top;
  std::atomic<bool> online;
  uint64_t online_tsc;
  uint64_t timer_ticks;
};

inline PerCpu& this_cpu() {
  PerCpu* p;
  asm volatile("movq %%gs:0, %0" : "=r"(p));
  return *p;
}

// Null until the CPU has its GS base set (early boot, panics before per-CPU setup).
PerCpu* this_cpu_or_null();
void install_percpu(PerCpu* cpu);

uint32_t cpu_count();                  // CPUs that reported in
PerCpu* cpu_by_index(uint32_t index);  // nullptr if out of range
void register_cpu(PerCpu* cpu);

}  // namespace lantern
