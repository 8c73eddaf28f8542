// Thin wrappers over x86-64 instructions. Kernel-only: portable code never includes this.
#pragma once

#include <cstdint>

namespace lantern::cpu {

// ---- Port I/O (SDM Vol. 1 18.2) ----
inline void outb(uint16_t port, uint8_t v) {
  asm volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}
inline void outw(uint16_t port, uint16_t v) {
  asm volatile("outw %0, %1" ::"a"(v), "Nd"(port));
}
inline void outl(uint16_t port, uint32_t v) {
  asm volatile("outl %0, %1" ::"a"(v), "Nd"(port));
}
inline uint8_t inb(uint16_t port) {
  uint8_t v;
  asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
inline uint16_t inw(uint16_t port) {
  uint16_t v;
  asm volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
inline uint32_t inl(uint16_t port) {
  uint32_t v;
  asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
// A write to port 0x80 (POST code) takes about 1 us on PC hardware: the classic I/O delay.
inline void io_wait() {
  outb(0x80, 0);
}

// ---- MSRs ----
inline uint64_t rdmsr(uint32_t msr) {
  uint32_t lo, hi;
  asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
inline void wrmsr(uint32_t msr, uint64_t v) {
  asm volatile("wrmsr" ::"c"(msr), "a"(static_cast<uint32_t>(v)), "d"(static_cast<uint32_t>(v >> 32)));
}

// SDM Vol. 4 Table 2-2.
constexpr uint32_t kMsrApicBase = 0x1b;
constexpr uint32_t kMsrFeatureControl = 0x3a;
constexpr uint32_t kMsrEfer = 0xc0000080;
constexpr uint32_t kMsrFsBase = 0xc0000100;
constexpr uint32_t kMsrGsBase = 0xc0000101;
constexpr uint32_t kMsrKernelGsBase = 0xc0000102;
constexpr uint32_t kMsrTscDeadline = 0x6e0;

// ---- CPUID ----
struct CpuidResult {
  uint32_t eax, ebx, ecx, edx;
};
inline CpuidResult cpuid(uint32_t leaf, uint32_t subleaf = 0) {
  CpuidResult r;
  asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
  return r;
}

// ---- Control registers ----
inline uint64_t read_cr0() {
  uint64_t v;
  asm volatile("mov %%cr0, %0" : "=r"(v));
  return v;
}
inline uint64_t read_cr2() {
  uint64_t v;
  asm volatile("mov %%cr2, %0" : "=r"(v));
  return v;
}
inline uint64_t read_cr3() {
  uint64_t v;
  asm volatile("mov %%cr3, %0" : "=r"(v));
  return v;
}
inline uint64_t read_cr4() {
  uint64_t v;
  asm volatile("mov %%cr4, %0" : "=r"(v));
  return v;
}
// CR8 is the local APIC's TPR[7:4] in 64-bit mode (SDM Vol. 3A 11.8.6.1).
inline uint64_t read_cr8() {
  uint64_t v;
  asm volatile("mov %%cr8, %0" : "=r"(v));
  return v;
}
inline void write_cr0(uint64_t v) {
  asm volatile("mov %0, %%cr0" ::"r"(v) : "memory");
}
inline void write_cr2(uint64_t v) {
  asm volatile("mov %0, %%cr2" : : "r"(v) : "memory");
}
inline void write_cr3(uint64_t v) {
  asm volatile("mov %0, %%cr3" ::"r"(v) : "memory");
}
inline void write_cr4(uint64_t v) {
  asm volatile("mov %0, %%cr4" ::"r"(v) : "memory");
}

// ---- Misc ----
inline uint64_t rdtsc() {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
inline void pause() {
  asm volatile("pause");
}
inline void halt() {
  asm volatile("hlt");
}
inline void disable_interrupts() {
  asm volatile("cli" ::: "memory");
}
inline void enable_interrupts() {
  asm volatile("sti" ::: "memory");
}
inline void enable_interrupts_and_halt() {
  asm volatile("sti; hlt" ::: "memory");
}
inline uint64_t read_rflags() {
  uint64_t v;
  asm volatile("pushfq; popq %0" : "=r"(v));
  return v;
}
constexpr uint64_t kRflagsIf = 1ull << 9;  // SDM Vol. 1 3.4.3: interrupt enable flag
inline bool interrupts_enabled() {
  return (read_rflags() & kRflagsIf) != 0;
}
inline void invlpg(uint64_t virt) {
  asm volatile("invlpg (%0)" ::"r"(virt) : "memory");
}
inline void flush_tlb() {
  write_cr3(read_cr3());
}

[[noreturn]] inline void halt_forever() {
  for (;;) {
    disable_interrupts();
    halt();
  }
}

// Saves RFLAGS.IF, disables interrupts, restores on destruction.
class InterruptsOff {
 public:
  InterruptsOff() : were_enabled_(interrupts_enabled()) { disable_interrupts(); }
  ~InterruptsOff() {
    if (were_enabled_) enable_interrupts();
  }
  InterruptsOff(const InterruptsOff&) = delete;
  InterruptsOff& operator=(const InterruptsOff&) = delete;

 private:
  bool were_enabled_;
};

}  // namespace lantern::cpu
