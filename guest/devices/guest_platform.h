// One VM's QEMU-compatible legacy platform: the devices of guest/devices/ on one PortBus.
// Portable (host-tested). The exit core sends every intercepted IN/OUT here (port_read /
// port_write), then checks exit_latch() to learn whether the guest asked to end its VM and
// reset_requested() to learn whether it asked to be reset; the console reads counters() and
// pushes input through push_console_input(). Interrupt lines leave through the irq sink.
//
// | ports         | device                                   |
// |---------------|------------------------------------------|
// | 0x20-0x21     | i8259 master (I8259Pair)                 |
// | 0x60, 0x64    | i8042 keyboard controller, no devices    |
// | 0x70-0x71     | CMOS RTC and RAM (CmosRtc)               |
// | 0x80          | POST code, ignored (PostCodePort)        |
// | 0xa0-0xa1     | i8259 slave (I8259Pair)                  |
// | 0xf4-0xf7     | isa-debug-exit (DebugExitPort)           |
// | 0x3f8-0x3ff   | COM1 16550A UART (Uart16550), IRQ 4      |
// | 0x510-0x511   | fw_cfg (FwCfg)                           |
// | 0xcf8-0xcff   | PCI configuration, no devices; byte 0xcf9 |
// |               | is the Reset Control Register            |
// | 0x8900        | Bochs shutdown port (ShutdownPort)       |
// Any other port reads all-ones, drops writes, and is counted per port (PortBus).
//
// Not thread-safe: the core holds one lock per VM platform around every call, because the
// vCPUs of one VM may run on several cores and the console's input arrives on its own core.
#pragma once

#include <cstdint>

#include <span>

#include "guest/devices/cmos_rtc.h"
#include "guest/devices/exit_ports.h"
#include "guest/devices/fw_cfg.h"
#include "guest/devices/i8042.h"
#include "guest/devices/i8259.h"
#include "guest/devices/pci_config_none.h"
#include "guest/devices/reset_latch.h"
#include "guest/devices/uart16550.h"
#include "guest/io_bus.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

struct PlatformConfig {
  uint64_t ram_bytes = 0;  // fw_cfg RAM size and the CMOS memory-size bytes
  uint16_t cpu_count = 1;  // fw_cfg CPU count: the VM's vCPUs
  uint16_t max_cpus = 1;   // fw_cfg max CPUs
  // The RTC's wall clock: UTC seconds since 1970-01-01. Null: the RTC reads a fixed time,
  // CmosRtc::kDefaultWallClockSeconds (2024-01-01 00:00:00 UTC), that does not advance.
  CmosRtc::WallClock wall_clock_seconds = nullptr;
  void* wall_clock_context = nullptr;
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
  uint64_t reset_requests = 0;       // guest reset requests (i8042, 0xcf9), latched or not
  uint64_t irq_line_changes = 0;     // level changes reported to the irq sink
  uint64_t i8042_device_bytes_dropped = 0;  // bytes for the absent keyboard/mouse
};

class GuestPlatform {
 public:
  explicit GuestPlatform(const PlatformConfig& config);
  GuestPlatform(const GuestPlatform&) = delete;
  GuestPlatform& operator=(const GuestPlatform&) = delete;

  // Registers every device on the bus. Call once; kAlreadyExists on a second call.
  Result<void> attach();

  // One guest port access; afterwards the interrupt lines are re-evaluated (irq sink).
  uint32_t port_read(uint16_t port, uint8_t width);
  void port_write(uint16_t port, uint8_t width, uint32_t value);

  // The VM reset: device state back to power-on, the exit and reset requests cleared, UART
  // input emptied, the interrupt lines re-evaluated (a line the reset drops is reported).
  // Counters keep counting across resets; the RTC keeps the time the guest set.
  void reset();

  const ExitLatch& exit_latch() const { return exit_; }
  bool exit_requested() const { return exit_.requested(); }

  // The guest asked for a reset (i8042 0xFE pulse or output-port write, or 0xcf9). The core
  // restarts the VM when it sees this after an I/O exit: reset() (which clears it) and the
  // vCPUs back to their entry state. clear_reset_request() clears it without a device reset.
  const ResetLatch& reset_latch() const { return reset_; }
  bool reset_requested() const { return reset_.requested(); }
  ResetCause reset_cause() const { return reset_.cause(); }
  void clear_reset_request() { reset_.clear(); }

  // The UART's interrupt output, for the IOAPIC pin of COM1 (Uart16550::kCom1Irq).
  bool uart_irq_asserted() const { return uart_.irq_asserted(); }

  // Interrupt-line output: called with (context, ISA IRQ, level) whenever a line's level
  // changes, once per change and never twice with the same level. Today only IRQ 4 (COM1)
  // has an output; the i8259 pair, the i8042 and the RTC raise nothing. Setting a sink does
  // not call it; the first call reports the first change after it is set.
  using IrqSink = void (*)(void* context, uint8_t isa_irq, bool asserted);
  void set_irq_sink(IrqSink sink, void* context) {
    irq_sink_ = sink;
    irq_sink_context_ = context;
  }

  // Console input for the UART, then the interrupt lines re-evaluated (a receive interrupt
  // the input raises reaches the sink). Everything is queued or nothing (kFull), as
  // Uart16550::push_input. Use this rather than uart().push_input().
  Result<void> push_console_input(std::span<const uint8_t> bytes);

  PlatformCounters counters() const;

  PortBus& bus() { return bus_; }
  const PortBus& bus() const { return bus_; }
  Uart16550& uart() { return uart_; }
  const FwCfg& fw_cfg() const { return fw_cfg_; }
  const I8259Pair& pic() const { return pic_; }
  const CmosRtc& rtc() const { return rtc_; }
  const I8042& i8042() const { return i8042_; }
  const PciConfigNone& pci() const { return pci_; }

 private:
  void update_irq_lines();

  PortBus bus_;
  ExitLatch exit_;
  ResetLatch reset_;
  Uart16550 uart_;
  DebugExitPort debug_exit_;
  ShutdownPort shutdown_;
  FwCfg fw_cfg_;
  I8259Pair pic_;
  PciConfigNone pci_;
  PostCodePort post_;
  CmosRtc rtc_;
  I8042 i8042_;
  IrqSink irq_sink_ = nullptr;
  void* irq_sink_context_ = nullptr;
  bool uart_irq_level_ = false;  // the level last reported (or the initial level: deasserted)
  uint64_t irq_line_changes_ = 0;
  bool attached_ = false;
};

}  // namespace lantern::guest
