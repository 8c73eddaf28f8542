// One VM's QEMU-compatible legacy platform: the devices of guest/devices/ on one PortBus.
// Portable (host-tested). The exit core sends every intercepted IN/OUT here (port_read /
// port_write), then checks exit_latch() to learn whether the guest asked to end its VM; the
// console reads counters() and pushes input through uart().push_input().
//
// | ports         | device                                   |
// |---------------|------------------------------------------|
// | 0x20-0x21     | i8259 master (I8259Pair)                 |
// | 0x80          | POST code, ignored (PostCodePort)        |
// | 0xa0-0xa1     | i8259 slave (I8259Pair)                  |
// | 0xf4-0xf7     | isa-debug-exit (DebugExitPort)           |
// | 0x3f8-0x3ff   | COM1 16550A UART (Uart16550), IRQ 4      |
// | 0x510-0x511   | fw_cfg (FwCfg)                           |
// | 0xcf8-0xcff   | PCI configuration, no devices            |
// | 0x8900        | Bochs shutdown port (ShutdownPort)       |
// Any other port reads all-ones, drops writes, and is counted per port (PortBus).
//
// Not thread-safe: the core holds one lock per VM platform around every call, because the
// vCPUs of one VM may run on several cores and the console's input arrives on its own core.
#pragma once

#include <cstdint>

#include "guest/devices/exit_ports.h"
#include "guest/devices/fw_cfg.h"
#include "guest/devices/i8259.h"
#include "guest/devices/pci_config_none.h"
#include "guest/devices/uart16550.h"
#include "guest/io_bus.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

struct PlatformConfig {
  uint64_t ram_bytes = 0;  // fw_cfg RAM size
  uint16_t cpu_count = 1;  // fw_cfg CPU count: the VM's vCPUs
  uint16_t max_cpus = 1;   // fw_cfg max CPUs
};

// What the console shows for a VM's devices.
struct PlatformCounters {
  uint64_t uart_bytes_in = 0;        // console input accepted into the UART
  uint64_t uart_bytes_out = 0;       // bytes the guest transmitted
  uint64_t uart_bytes_read = 0;      // bytes the guest read from the UART
  uint64_t uart_input_refused = 0;   // console pushes refused because the buffer was full
  uint64_t unclaimed_port_reads = 0;
  uint64_t unclaimed_port_writes = 0;
  uint64_t unclaimed_ports = 0;      // distinct ports without a device, as listed by PortBus
  uint64_t unclaimed_accesses_unlisted = 0;  // accesses to ports beyond PortBus's table
};

class GuestPlatform {
 public:
  explicit GuestPlatform(const PlatformConfig& config);
  GuestPlatform(const GuestPlatform&) = delete;
  GuestPlatform& operator=(const GuestPlatform&) = delete;

  // Registers every device on the bus. Call once; kAlreadyExists on a second call.
  Result<void> attach();

  uint32_t port_read(uint16_t port, uint8_t width) { return bus_.read(port, width); }
  void port_write(uint16_t port, uint8_t width, uint32_t value) { bus_.write(port, width, value); }

  // The VM reset: device state back to power-on, the exit request cleared, UART input emptied.
  // Counters keep counting across resets.
  void reset();

  const ExitLatch& exit_latch() const { return exit_; }
  bool exit_requested() const { return exit_.requested(); }
  // The UART's interrupt output, for the IOAPIC pin of COM1 (Uart16550::kCom1Irq).
  bool uart_irq_asserted() const { return uart_.irq_asserted(); }

  PlatformCounters counters() const;

  PortBus& bus() { return bus_; }
  const PortBus& bus() const { return bus_; }
  Uart16550& uart() { return uart_; }
  const FwCfg& fw_cfg() const { return fw_cfg_; }
  const I8259Pair& pic() const { return pic_; }

 private:
  PortBus bus_;
  ExitLatch exit_;
  Uart16550 uart_;
  DebugExitPort debug_exit_;
  ShutdownPort shutdown_;
  FwCfg fw_cfg_;
  I8259Pair pic_;
  PciConfigNone pci_;
  PostCodePort post_;
  bool attached_ = false;
};

}  // namespace lantern::guest
