#include "kernel/arch/x86_64/serial.h"

#include "kernel/arch/x86_64/cpu.h"

namespace lantern::serial {
namespace {

// 16550 register offsets from the base port (PC16550D datasheet, Table 2).
constexpr uint16_t kCom1 = 0x3f8;
constexpr uint16_t kData = 0;          // RBR/THR, or DLL when LCR.DLAB = 1
constexpr uint16_t kIntEnable = 1;     // IER, or DLM when LCR.DLAB = 1
constexpr uint16_t kFifoControl = 2;   // FCR
constexpr uint16_t kLineControl = 3;   // LCR
constexpr uint16_t kModemControl = 4;  // MCR
constexpr uint16_t kLineStatus = 5;    // LSR

constexpr uint8_t kLcrDlab = 0x80;              // divisor latch access
constexpr uint8_t kLcr8N1 = 0x03;               // 8 data bits, no parity, 1 stop bit
constexpr uint8_t kFcrEnableClear = 0xc7;       // enable FIFOs, clear both, 14-byte threshold
constexpr uint8_t kMcrDtrRtsOut2 = 0x0b;        // DTR, RTS, OUT2
constexpr uint8_t kLsrThrEmpty = 0x20;          // LSR bit 5: THR empty
constexpr uint8_t kLsrTransmitterEmpty = 0x40;  // LSR bit 6: THR and shift register empty
constexpr uint16_t kDivisor115200 = 1;          // 1.8432 MHz / (16 * 115200)

bool g_present = false;

void put_raw(char c) {
  // Bounded wait: a missing or wedged UART must not hang the kernel.
  for (int i = 0; i < 100000; ++i) {
    if (cpu::inb(kCom1 + kLineStatus) & kLsrThrEmpty) break;
    cpu::pause();
  }
  cpu::outb(kCom1 + kData, static_cast<uint8_t>(c));
}

}  // namespace

void init() {
  cpu::outb(kCom1 + kIntEnable, 0);
  cpu::outb(kCom1 + kLineControl, kLcrDlab);
  cpu::outb(kCom1 + kData, kDivisor115200 & 0xff);
  cpu::outb(kCom1 + kIntEnable, kDivisor115200 >> 8);
  cpu::outb(kCom1 + kLineControl, kLcr8N1);
  cpu::outb(kCom1 + kFifoControl, kFcrEnableClear);
  cpu::outb(kCom1 + kModemControl, kMcrDtrRtsOut2);
  // A floating bus reads 0xff: no UART there.
  g_present = cpu::inb(kCom1 + kLineStatus) != 0xff;
}

void write(const char* text, size_t length) {
  if (!g_present) return;
  for (size_t i = 0; i < length; ++i) {
    if (text[i] == '\n') put_raw('\r');
    put_raw(text[i]);
  }
}

void write(const char* text) {
  size_t n = 0;
  while (text[n] != '\0') ++n;
  write(text, n);
}

void drain() {
  if (!g_present) return;
  for (int i = 0; i < 1000000; ++i) {
    if (cpu::inb(kCom1 + kLineStatus) & kLsrTransmitterEmpty) return;
    cpu::pause();
  }
}

}  // namespace lantern::serial
