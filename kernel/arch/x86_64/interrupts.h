// The IDT, interrupt dispatch and the vector map.
#pragma once

#include <cstdint>

namespace lantern::interrupts {

// Saved by kernel/arch/x86_64/isr.S (general registers) and by the CPU (SDM Vol. 3 6.14.2).
struct Frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error_code;
  uint64_t rip, cs, rflags, rsp, ss;
};
static_assert(sizeof(Frame) == 22 * 8);

// Vector map. 0-31 are exceptions (SDM Vol. 3 Table 6-1); 0x20-0x2f stay free because the
// legacy PIC is remapped there before it is masked.
constexpr uint8_t kVectorLegacyPicBase = 0x20;
constexpr uint8_t kVectorTimer = 0x40;         // LAPIC timer
constexpr uint8_t kVectorCallFunction = 0x41;  // IPI: run queued work on this core
constexpr uint8_t kVectorWakeup = 0x42;        // IPI: just leave HLT / force a VM exit
constexpr uint8_t kVectorIoApicBase = 0x50;    // IOAPIC GSI n is routed to 0x50 + n (24 inputs: to 0x67)
constexpr uint8_t kVectorNicMsi = 0x70;        // the NIC's MSI / MSI-X vector (net/kernel/nic_probe.cpp)
constexpr uint8_t kVectorSpurious = 0xff;      // LAPIC spurious vector (low nibble 0xf)

using Handler = void (*)(Frame& frame);

void init_idt();  // once, on the BSP
void load_idt();  // on every CPU
void set_handler(uint8_t vector, Handler handler);

const char* exception_name(uint64_t vector);

}  // namespace lantern::interrupts
