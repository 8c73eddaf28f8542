// GDT, TSS and IDT layouts for 64-bit mode (SDM Vol. 3 3.4.5, 7.7, 6.14).
#pragma once

#include <cstdint>

namespace lantern {

// GDT selectors (the same in every CPU's GDT). VM exits load host CS/SS/TR from these.
constexpr uint16_t kKernelCodeSelector = 0x08;
constexpr uint16_t kKernelDataSelector = 0x10;
constexpr uint16_t kTssSelector = 0x18;

// IST slots (1-based as in the IDT gate, SDM Vol. 3 6.14.5).
constexpr uint8_t kIstDoubleFault = 1;
constexpr uint8_t kIstNmi = 2;
constexpr uint8_t kIstMachineCheck = 3;
constexpr int kIstCount = 3;

// 64-bit TSS (SDM Vol. 3 Figure 8-11).
struct __attribute__((packed)) Tss64 {
  uint32_t reserved0;
  uint64_t rsp[3];
  uint64_t reserved1;
  uint64_t ist[7];
  uint64_t reserved2;
  uint16_t reserved3;
  uint16_t iomap_base;
};
static_assert(sizeof(Tss64) == 104);

// null, code64, data, TSS (a 16-byte system descriptor).
struct GdtTable {
  uint64_t entries[5];
};

struct __attribute__((packed)) DescriptorPointer {
  uint16_t limit;
  uint64_t base;
};

}  // namespace lantern
