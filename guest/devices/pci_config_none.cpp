#include "guest/devices/pci_config_none.h"

namespace lantern::guest {

uint32_t PciConfigNone::port_read(uint16_t port, uint8_t width) {
  if (port == kAddressPort && width == 4) return address_;
  return 0xffffffffu;  // the bus masks to the access width
}

void PciConfigNone::port_write(uint16_t port, uint8_t width, uint32_t value) {
  if (port == kAddressPort && width == 4) address_ = value & kAddressMask;
}

}  // namespace lantern::guest
