#include "kernel/arch/x86_64/interrupts.h"

#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/descriptors.h"
#include "kernel/core/panic.h"

extern "C" char isr_stubs[];

namespace lantern::interrupts {
namespace {

// 64-bit interrupt gate (SDM Vol. 3 6.14.1, Figure 6-8).
struct __attribute__((packed)) Gate {
  uint16_t offset_low;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attributes;
  uint16_t offset_mid;
  uint32_t offset_high;
  uint32_t reserved;
};
static_assert(sizeof(Gate) == 16);

constexpr uint8_t kInterruptGatePresent = 0x8e;  // P=1, DPL=0, type 0xE (64-bit interrupt gate)
constexpr int kStubSize = 16;                    // .balign 16 in isr.S

alignas(16) Gate g_idt[256];
Handler g_handlers[256];

void set_gate(uint8_t vector, uint8_t ist) {
  const uint64_t addr = reinterpret_cast<uint64_t>(isr_stubs) + vector * kStubSize;
  Gate& g = g_idt[vector];
  g.offset_low = addr & 0xffff;
  g.selector = kKernelCodeSelector;
  g.ist = ist;
  g.type_attributes = kInterruptGatePresent;
  g.offset_mid = (addr >> 16) & 0xffff;
  g.offset_high = addr >> 32;
  g.reserved = 0;
}

const char* const kExceptionNames[32] = {"divide error (#DE)",
                                         "debug (#DB)",
                                         "non-maskable interrupt (NMI)",
                                         "breakpoint (#BP)",
                                         "overflow (#OF)",
                                         "bound range exceeded (#BR)",
                                         "invalid opcode (#UD)",
                                         "device not available (#NM)",
                                         "double fault (#DF)",
                                         "coprocessor segment overrun",
                                         "invalid TSS (#TS)",
                                         "segment not present (#NP)",
                                         "stack-segment fault (#SS)",
                                         "general protection (#GP)",
                                         "page fault (#PF)",
                                         "reserved (15)",
                                         "x87 floating-point error (#MF)",
                                         "alignment check (#AC)",
                                         "machine check (#MC)",
                                         "SIMD floating-point exception (#XM)",
                                         "virtualization exception (#VE)",
                                         "control protection (#CP)",
                                         "reserved (22)",
                                         "reserved (23)",
                                         "reserved (24)",
                                         "reserved (25)",
                                         "reserved (26)",
                                         "reserved (27)",
                                         "hypervisor injection (#HV)",
                                         "VMM communication (#VC)",
                                         "security exception (#SX)",
                                         "reserved (31)"};

}  // namespace

const char* exception_name(uint64_t vector) {
  return vector < 32 ? kExceptionNames[vector] : "interrupt";
}

void init_idt() {
  for (int v = 0; v < 256; ++v) set_gate(static_cast<uint8_t>(v), 0);
  set_gate(8, kIstDoubleFault);
  set_gate(2, kIstNmi);
  set_gate(18, kIstMachineCheck);
}

void load_idt() {
  DescriptorPointer ptr{sizeof(g_idt) - 1, reinterpret_cast<uint64_t>(g_idt)};
  asm volatile("lidt %0" ::"m"(ptr));
}

void set_handler(uint8_t vector, Handler handler) {
  g_handlers[vector] = handler;
}

}  // namespace lantern::interrupts

extern "C" void interrupt_dispatch(lantern::interrupts::Frame* frame) {
  using namespace lantern;
  const uint64_t vector = frame->vector;
  if (vector < 32) {
    if (auto h = interrupts::g_handlers[vector]) {
      h(*frame);
      return;
    }
    panic_with_frame(*frame, interrupts::exception_name(vector));
  }
  if (vector == interrupts::kVectorSpurious) return;  // no EOI for spurious (SDM Vol. 3 11.9)
  if (auto h = interrupts::g_handlers[vector]) {
    h(*frame);
  }
  apic::end_of_interrupt();
}
