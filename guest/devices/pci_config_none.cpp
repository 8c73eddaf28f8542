#include "guest/devices/pci_config_none.h"

namespace lantern::guest {

uint32_t PciConfigNone::port_read(uint16_t port, uint8_t width) {
  if (port == kAddressPort && width == 4) return address_;
  if (port == kResetControlPort && width == 1) return reset_control_;
  return 0xffffffffu;  // the bus masks to the access width
}

void PciConfigNone::port_write(uint16_t port, uint8_t width, uint32_t value) {
  if (port == kAddressPort && width == 4) {
    address_ = value & kAddressMask;
  } else if (port == kResetControlPort && width == 1) {
    const uint8_t byte = static_cast<uint8_t>(value);
    reset_control_ = byte & kResetControlMask;
    if ((byte & kResetCpu) && reset_latch_ != nullptr) reset_latch_->request(ResetCause::kResetControl, byte);
  }
}

}  // namespace lantern::guest
