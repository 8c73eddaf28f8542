#include "guest/demo_devices.h"

namespace lantern::guest {

uint32_t DemoUart::port_read(uint16_t port, uint8_t) {
  return port == kBase + kLsrOffset ? kLsrIdle : 0;
}

void DemoUart::port_write(uint16_t port, uint8_t, uint32_t value) {
  if (port == kBase) output_.put_char(static_cast<char>(value & 0xff));  // THR
}

uint32_t ExitPort::port_read(uint16_t, uint8_t) { return 0xffffffffu; }

void ExitPort::port_write(uint16_t, uint8_t, uint32_t value) { vm_.request_exit(value); }

Result<void> register_demo_devices(Vm& vm, DemoUart& uart, ExitPort& exit_port) {
  TRY(vm.ports.register_range(DemoUart::kBase, DemoUart::kPortCount, &uart));
  TRY(vm.ports.register_range(ExitPort::kPort, 1, &exit_port));
  return ok();
}

}  // namespace lantern::guest
