#include "kernel/arch/x86_64/percpu.h"

#include "kernel/arch/x86_64/cpu.h"

namespace lantern {
namespace {
PerCpu* g_cpus[kMaxCpus];
std::atomic<uint32_t> g_cpu_count{0};
}  // namespace

PerCpu* this_cpu_or_null() {
  if (cpu::rdmsr(cpu::kMsrGsBase) == 0) return nullptr;
  return &this_cpu();
}

void install_percpu(PerCpu* cpu) {
  cpu->self = cpu;
  cpu::wrmsr(cpu::kMsrGsBase, reinterpret_cast<uint64_t>(cpu));
}

void register_cpu(PerCpu* cpu) {
  if (cpu->index < kMaxCpus) g_cpus[cpu->index] = cpu;
  g_cpu_count.fetch_add(1);
}

uint32_t cpu_count() {
  return g_cpu_count.load();
}

PerCpu* cpu_by_index(uint32_t index) {
  return index < kMaxCpus ? g_cpus[index] : nullptr;
}

}  // namespace lantern
