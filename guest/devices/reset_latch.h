// "This VM asked to be reset": the counterpart of ExitLatch (exit_ports.h) for the guest's
// reset lines. Portable (host-tested). The devices that can reset a PC set it:
//  - the i8042 keyboard controller: command 0xFE pulses output-port bit 0, the CPU reset line
//    (any 0xF0-0xFF pulse command with bit 0 clear does the same), or command 0xD1 writes the
//    output port with bit 0 clear;
//  - the Reset Control Register at 0xCF9 (Intel PCH datasheets, "RST_CNT—Reset Control
//    Register", I/O 0xCF9): a byte write with RST_CPU (bit 2) set.
// The core reads GuestPlatform::reset_requested() after each I/O exit and restarts the VM
// (GuestPlatform::reset() clears the latch). The first request wins until it is cleared.
#pragma once

#include <cstdint>

namespace lantern::guest {

enum class ResetCause : uint8_t {
  kNone = 0,
  kI8042Pulse,       // i8042 command 0xFE (a pulse of the reset line, output-port bit 0)
  kI8042OutputPort,  // i8042 command 0xD1 with output-port bit 0 clear
  kResetControl,     // a write to the Reset Control Register 0xCF9 with RST_CPU set
};

constexpr const char* reset_cause_name(ResetCause cause) {
  switch (cause) {
    case ResetCause::kNone: return "none";
    case ResetCause::kI8042Pulse: return "i8042 0xFE";
    case ResetCause::kI8042OutputPort: return "i8042 0xD1";
    case ResetCause::kResetControl: return "0xCF9";
  }
  return "unknown";
}

class ResetLatch {
 public:
  bool requested() const { return cause_ != ResetCause::kNone; }
  ResetCause cause() const { return cause_; }
  // The byte the guest wrote that asked for the reset (the i8042 command or output-port value,
  // or the 0xCF9 value).
  uint8_t value() const { return value_; }
  // Requests seen since construction, including those that found the latch already set.
  uint64_t requests() const { return requests_; }

  void request(ResetCause cause, uint8_t value) {
    ++requests_;
    if (requested()) return;
    cause_ = cause;
    value_ = value;
  }
  // Clears the request; the request count keeps counting.
  void clear() {
    cause_ = ResetCause::kNone;
    value_ = 0;
  }

 private:
  ResetCause cause_ = ResetCause::kNone;
  uint8_t value_ = 0;
  uint64_t requests_ = 0;
};

}  // namespace lantern::guest
