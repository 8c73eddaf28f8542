#include "kernel/arch/x86_64/gdt.h"

namespace lantern::gdt {
namespace {

// Segment descriptor bits (SDM Vol. 3 3.4.5, Figure 3-8).
constexpr uint64_t kPresent = 1ull << 47;
constexpr uint64_t kCodeOrData = 1ull << 44;   // S = 1
constexpr uint64_t kExecutable = 1ull << 43;   // type bit 3
constexpr uint64_t kReadWrite = 1ull << 41;    // type bit 1: readable code / writable data
constexpr uint64_t kLongMode = 1ull << 53;     // L
constexpr uint64_t kGranularity = 1ull << 55;  // G
constexpr uint64_t kDefaultBig = 1ull << 54;   // D/B
constexpr uint64_t kLimitLow = 0xffff;
constexpr uint64_t kLimitHigh = 0xfull << 48;
constexpr uint64_t kTssAvailable = 0x9ull << 40;  // type 9: 64-bit TSS (available), SDM Table 3-2

}  // namespace

void load_for_cpu(PerCpu& cpu) {
  auto& e = cpu.gdt.entries;
  e[0] = 0;
  e[1] =
      kPresent | kCodeOrData | kExecutable | kReadWrite | kLongMode | kGranularity | kLimitLow | kLimitHigh;
  e[2] = kPresent | kCodeOrData | kReadWrite | kDefaultBig | kGranularity | kLimitLow | kLimitHigh;
  const uint64_t base = reinterpret_cast<uint64_t>(&cpu.tss);
  const uint64_t limit = sizeof(Tss64) - 1;
  // 16-byte TSS descriptor (SDM Vol. 3 Figure 8-4).
  e[3] =
      (limit & 0xffff) | ((base & 0xffffff) << 16) | kTssAvailable | kPresent | (((base >> 24) & 0xff) << 56);
  e[4] = base >> 32;
  cpu.tss.iomap_base = sizeof(Tss64);  // no I/O permission bitmap

  DescriptorPointer ptr{sizeof(cpu.gdt) - 1, reinterpret_cast<uint64_t>(&cpu.gdt)};
  asm volatile(
      "lgdt %0\n"
      "movw %1, %%ax\n"
      "movw %%ax, %%ds\n"
      "movw %%ax, %%es\n"
      "movw %%ax, %%ss\n"
      "pushq %2\n"
      "leaq 1f(%%rip), %%rax\n"
      "pushq %%rax\n"
      "lretq\n"
      "1:\n"
      "ltr %w3\n"
      :
      : "m"(ptr), "i"(kKernelDataSelector), "i"(static_cast<uint64_t>(kKernelCodeSelector)), "r"(kTssSelector)
      : "rax", "memory");
}

}  // namespace lantern::gdt
