#include "guest/devices/exit_ports.h"

namespace lantern::guest {

void DebugExitPort::port_write(uint16_t, uint8_t, uint32_t value) {
  // QEMU hw/misc/debugexit.c debug_exit_write(): exit((val << 1) | 1), val as written.
  latch_.request(ExitCause::kDebugExit, value, (uint64_t{value} << 1) | 1);
}

void ShutdownPort::port_write(uint16_t, uint8_t width, uint32_t value) {
  // Only byte writes carry the string; a wider write is not part of the protocol and restarts it.
  if (width != 1) {
    matched_ = 0;
    return;
  }
  const char c = static_cast<char>(value & 0xff);
  if (c == kMagic[matched_]) {
    if (++matched_ == kMagicLength) {
      matched_ = 0;
      latch_.request(ExitCause::kShutdownPort, 0, 0);
    }
  } else {
    matched_ = (c == kMagic[0]) ? 1 : 0;
  }
}

}  // namespace lantern::guest
