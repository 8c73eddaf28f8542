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
// dropped (on QEMU's i440fx 0xcf9 is the reset control register; that belongs to the reset
// work, not here).
#pragma once

#include <cstdint>

#include "guest/io_bus.h"

namespace lantern::guest {

class PciConfigNone final : public PortDevice {
 public:
  static constexpr uint16_t kAddressPort = 0xcf8;
  static constexpr uint16_t kDataPort = 0xcfc;
  static constexpr uint32_t kPortCount = 8;  // 0xcf8-0xcff
  static constexpr uint32_t kAddressMask = 0x80fffffc;

  uint32_t address() const { return address_; }
  uint32_t port_read(uint16_t port, uint8_t width) override;
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;

 private:
  uint32_t address_ = 0;
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
