// The two devices today's demo, bench and self-test guests use, as PortBus devices:
//   DemoUart  ports 0x3f8-0x3ff: a 16550 transmitter only. A write to THR (+0) hands the byte to
//             a ConsoleOutput; LSR (+5) reads 0x60 (THR empty, transmitter empty); every other
//             register reads 0 and ignores writes (PC16550D datasheet, Table 2; LSR bits 5, 6).
//   ExitPort  port 0xf4 (QEMU's isa-debug-exit, emulators.md): a write ends the VM with that
//             value as its status (Vm::request_exit); reads float high.
// Minimal on purpose: the full 16550 and the exit ports of the guest platform replace them.
// Portable (host-tested).
#pragma once

#include <cstdint>

#include "guest/io_bus.h"
#include "guest/vm.h"

namespace lantern::guest {

class ConsoleOutput {
 public:
  virtual ~ConsoleOutput() = default;
  virtual void put_char(char c) = 0;
};

class DemoUart final : public PortDevice {
 public:
  static constexpr uint16_t kBase = 0x3f8;
  static constexpr uint32_t kPortCount = 8;
  static constexpr uint16_t kLsrOffset = 5;
  static constexpr uint32_t kLsrIdle = 0x60;  // LSR bit 5 THRE, bit 6 TEMT

  explicit DemoUart(ConsoleOutput& output) : output_(output) {}
  uint32_t port_read(uint16_t port, uint8_t width) override;
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;

 private:
  ConsoleOutput& output_;
};

class ExitPort final : public PortDevice {
 public:
  static constexpr uint16_t kPort = 0xf4;

  explicit ExitPort(Vm& vm) : vm_(vm) {}
  uint32_t port_read(uint16_t port, uint8_t width) override;
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;

 private:
  Vm& vm_;
};

// Registers both on vm.ports. Errors as PortBus::register_range().
Result<void> register_demo_devices(Vm& vm, DemoUart& uart, ExitPort& exit_port);

}  // namespace lantern::guest
