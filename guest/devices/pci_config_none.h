// PCI configuration mechanism #1 with nothing behind it, and the POST-code port 0x80.
// Portable (host-tested).
//
// PCI Local Bus Specification 3.0, section 3.2.2.3.2 "Software Generation of Configuration
// Transactions": CONFIG_ADDRESS is the 32-bit register at 0xcf8 (bit 31 enable, 30:24 reserved
// and read as 0, 23:16 bus, 15:11 device, 10:8 function, 7:2 register, 1:0 read as 0); only a
// full-dword access addresses it. CONFIG_DATA is 0xcfc-0xcff, any width. A configuration read
// of a device that does not exist ends in a master abort, which returns all-ones (the vendor ID
// 0xffff a driver probes for), so every data read here is all-ones and writes go nowhere.
// Byte and word accesses to 0xcf8-0xcfb are not CONFIG_ADDRESS: they read all-ones and are
// dropped, except a byte access to 0xcf9, which is the Reset Control Register.
//
// Reset Control Register, byte 0xcf9 (Intel PCH datasheets, "RST_CNT—Reset Control Register";
// QEMU's PIIX3/ICH9 model it the same way): bit 1 SYS_RST selects a hard (1) or soft (0) reset,
// bit 2 RST_CPU starts the reset, bit 3 FULL_RST selects a full (power-cycle) reset. A byte
// write with RST_CPU set (0x06 hard, 0x0e full, and 0x04 soft) requests a reset of the VM
// through the ResetLatch: the VM has no partial reset, so every kind restarts it whole. A write
// without RST_CPU (Linux writes 0x02 first to select the kind) only stores the bits. Reads
// return the last value written, bits 3:1 (bit 0 and bits 7:4 read 0).
#pragma once

#include <cstdint>

#include "guest/devices/reset_latch.h"
#include "guest/io_bus.h"

namespace lantern::guest {

class PciConfigNone final : public PortDevice {
 public:
  static constexpr uint16_t kAddressPort = 0xcf8;
  static constexpr uint16_t kDataPort = 0xcfc;
  static constexpr uint32_t kPortCount = 8;  // 0xcf8-0xcff
  static constexpr uint32_t kAddressMask = 0x80fffffc;
  static constexpr uint16_t kResetControlPort = 0xcf9;
  // RST_CNT bits (Intel PCH datasheet, Reset Control Register).
  static constexpr uint8_t kResetSystem = 1u << 1;  // SYS_RST: hard reset
  static constexpr uint8_t kResetCpu = 1u << 2;     // RST_CPU: start the reset
  static constexpr uint8_t kResetFull = 1u << 3;    // FULL_RST: full reset
  static constexpr uint8_t kResetControlMask = kResetSystem | kResetCpu | kResetFull;

  // `reset_latch` receives the resets 0xcf9 requests; may be null (the writes are then stored
  // only).
  explicit PciConfigNone(ResetLatch* reset_latch = nullptr) : reset_latch_(reset_latch) {}

  // Power-on: CONFIG_ADDRESS 0, Reset Control 0.
  void reset() {
    address_ = 0;
    reset_control_ = 0;
  }

  uint32_t address() const { return address_; }
  uint8_t reset_control() const { return reset_control_; }
  uint32_t port_read(uint16_t port, uint8_t width) override;
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;

 private:
  ResetLatch* reset_latch_;
  uint32_t address_ = 0;
  uint8_t reset_control_ = 0;
};

// Port 0x80, the POST diagnostic port: writes are ignored, reads return all-ones (QEMU's
// ioport80 device returns 0xff per byte). Claimed so it is not counted as a port without a device.
class PostCodePort final : public PortDevice {
 public:
  static constexpr uint16_t kPort = 0x80;
  uint32_t port_read(uint16_t, uint8_t) override { return 0xffffffffu; }
  void port_write(uint16_t, uint8_t, uint32_t value) override { last_ = static_cast<uint8_t>(value); }
  uint8_t last() const { return last_; }

 private:
  uint8_t last_ = 0;
};

}  // namespace lantern::guest
