#include "guest/devices/i8042.h"

namespace lantern::guest {

void I8042::reset() {
  for (uint8_t& b : ram_) b = 0;
  ram_[0] = kConfigReset;
  output_port_ = kOutputPortResetValue;
  output_byte_ = 0;
  output_full_ = false;
  output_from_aux_ = false;
  last_was_command_ = true;
  timeout_ = false;
  pending_command_ = 0;
}

uint8_t I8042::status() const {
  uint8_t s = kStatusNotInhibited;  // no keylock: never inhibited
  if (output_full_) s |= kStatusOutputFull;
  if (output_full_ && output_from_aux_) s |= kStatusAuxData;
  if (ram_[0] & kConfigSystemFlag) s |= kStatusSystemFlag;
  if (last_was_command_) s |= kStatusLastWasCommand;
  if (timeout_) s |= kStatusTimeout;
  return s;  // IBF and parity error never set
}

void I8042::put_output(uint8_t byte, bool from_aux) {
  output_byte_ = byte;
  output_full_ = true;
  output_from_aux_ = from_aux;
}

void I8042::drop_device_byte() {
  ++counters_.device_bytes_dropped;
  timeout_ = true;  // no device answered
}

void I8042::request_reset(ResetCause cause, uint8_t value) {
  if (reset_latch_ != nullptr) reset_latch_->request(cause, value);
}

void I8042::command(uint8_t cmd) {
  last_was_command_ = true;
  timeout_ = false;
  pending_command_ = 0;
  if (cmd >= kCmdReadRamFirst && cmd <= kCmdReadRamLast) {
    put_output(ram_[cmd - kCmdReadRamFirst], false);
    return;
  }
  if (cmd >= kCmdWriteRamFirst && cmd <= kCmdWriteRamLast) {
    pending_command_ = cmd;
    return;
  }
  if (cmd >= kCmdPulseFirst) {
    // Each 0 in bits 3:0 pulses that output-port bit low; bit 0 is the CPU reset line.
    if (!(cmd & kOutputPortReset)) request_reset(ResetCause::kI8042Pulse, cmd);
    return;
  }
  switch (cmd) {
    case kCmdAuxDisable: ram_[0] |= kConfigAuxDisabled; break;
    case kCmdAuxEnable: ram_[0] &= static_cast<uint8_t>(~kConfigAuxDisabled); break;
    case kCmdKeyboardDisable: ram_[0] |= kConfigKeyboardDisabled; break;
    case kCmdKeyboardEnable: ram_[0] &= static_cast<uint8_t>(~kConfigKeyboardDisabled); break;
    case kCmdAuxTest:
    case kCmdKeyboardTest: put_output(kInterfaceTestPassed, false); break;
    case kCmdSelfTest:
      ram_[0] |= kConfigSystemFlag;
      put_output(kSelfTestPassed, false);
      break;
    case kCmdReadOutputPort: put_output(output_port_, false); break;
    case kCmdWriteOutputPort:
    case kCmdWriteKeyboardBuffer:
    case kCmdWriteAuxBuffer:
    case kCmdWriteAuxDevice: pending_command_ = cmd; break;
    case kCmdA20Off: output_port_ &= static_cast<uint8_t>(~kOutputPortA20); break;
    case kCmdA20On: output_port_ |= kOutputPortA20; break;
    default: ++counters_.unknown_commands; break;
  }
}

void I8042::data(uint8_t byte) {
  last_was_command_ = false;
  const uint8_t cmd = pending_command_;
  pending_command_ = 0;
  if (cmd >= kCmdWriteRamFirst && cmd <= kCmdWriteRamLast) {
    ram_[cmd - kCmdWriteRamFirst] = byte;
    return;
  }
  switch (cmd) {
    case kCmdWriteOutputPort:
      output_port_ = byte;
      if (!(byte & kOutputPortReset)) request_reset(ResetCause::kI8042OutputPort, byte);
      break;
    case kCmdWriteKeyboardBuffer: put_output(byte, false); break;
    case kCmdWriteAuxBuffer: put_output(byte, true); break;
    case kCmdWriteAuxDevice:  // for the AUX device, which is absent
    default:                  // no command pending: for the keyboard, which is absent
      drop_device_byte();
      break;
  }
}

uint32_t I8042::port_read(uint16_t port, uint8_t width) {
  // Only byte accesses reach the two registers; the bytes of a wider access beyond the port
  // decode nothing and read all-ones.
  uint32_t value = 0xffffffffu;
  uint8_t b = 0xff;
  if (port == kStatusCommandPort) {
    b = status();
  } else if (port == kDataPort) {
    b = output_byte_;
    output_full_ = false;
    output_from_aux_ = false;
  }
  value = (value & ~0xffu) | b;
  return width >= 4 ? value : value & ((1u << (8 * width)) - 1);
}

void I8042::port_write(uint16_t port, uint8_t, uint32_t value) {
  const uint8_t b = static_cast<uint8_t>(value);
  if (port == kStatusCommandPort) {
    command(b);
  } else if (port == kDataPort) {
    data(b);
  }
}

}  // namespace lantern::guest
