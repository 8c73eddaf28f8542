// The two ports through which a test guest ends its own VM (portable, host-tested):
//  - isa-debug-exit at 0xf4 (QEMU `-device isa-debug-exit,iobase=0xf4,iosize=0x04`): writing v
//    ends QEMU with exit status (v << 1) | 1 (QEMU hw/misc/debugexit.c; the project's emulator
//    notes). Any width, any of the 4 ports.
//  - the Bochs shutdown port 0x8900: the bytes "Shutdown" written in sequence power the machine
//    off (Bochs iodev/unmapped.cc); a wrong byte restarts the match.
// Both end only the VM they belong to: they set the VM's ExitLatch, which the core reads after
// the I/O exit to stop that VM's vCPUs. Nothing reaches the host or the emulator under it.
#pragma once

#include <cstdint>

#include "guest/io_bus.h"

namespace lantern::guest {

enum class ExitCause : uint8_t {
  kNone = 0,
  kDebugExit,     // isa-debug-exit at 0xf4
  kShutdownPort,  // "Shutdown" written to 0x8900
};

constexpr const char* exit_cause_name(ExitCause cause) {
  switch (cause) {
    case ExitCause::kNone: return "none";
    case ExitCause::kDebugExit: return "debug_exit";
    case ExitCause::kShutdownPort: return "shutdown_port";
  }
  return "unknown";
}

// "This VM asked to end": the first request wins; later ones are ignored until reset().
class ExitLatch {
 public:
  bool requested() const { return cause_ != ExitCause::kNone; }
  ExitCause cause() const { return cause_; }
  // The value the guest wrote to 0xf4 (0 for the shutdown port).
  uint32_t value() const { return value_; }
  // What QEMU would exit with: (value << 1) | 1 for 0xf4; 0 for the shutdown port. 64-bit, so a
  // 32-bit value loses nothing.
  uint64_t status() const { return status_; }

  void request(ExitCause cause, uint32_t value, uint64_t status) {
    if (requested()) return;
    cause_ = cause;
    value_ = value;
    status_ = status;
  }
  void reset() { *this = ExitLatch{}; }

 private:
  ExitCause cause_ = ExitCause::kNone;
  uint32_t value_ = 0;
  uint64_t status_ = 0;
};

class DebugExitPort final : public PortDevice {
 public:
  static constexpr uint16_t kBase = 0xf4;
  static constexpr uint32_t kPortCount = 4;  // iosize=0x04

  explicit DebugExitPort(ExitLatch& latch) : latch_(latch) {}
  // The device has no readable register; reads return 0.
  uint32_t port_read(uint16_t, uint8_t) override { return 0; }
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;

 private:
  ExitLatch& latch_;
};

class ShutdownPort final : public PortDevice {
 public:
  static constexpr uint16_t kPort = 0x8900;
  static constexpr char kMagic[] = "Shutdown";
  static constexpr uint32_t kMagicLength = 8;

  explicit ShutdownPort(ExitLatch& latch) : latch_(latch) {}
  uint32_t port_read(uint16_t, uint8_t) override { return 0xff; }  // nothing to read: the bus floats
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;
  void reset() { matched_ = 0; }

 private:
  ExitLatch& latch_;
  uint32_t matched_ = 0;
};

}  // namespace lantern::guest
