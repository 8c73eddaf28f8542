// The PC's keyboard controller (Intel 8042, "i8042") with nothing plugged into it: no keyboard
// on the first port and no mouse on the second (AUX) port. Ports 0x60 (data) and 0x64 (status
// read, command write). Portable (host-tested); not thread-safe (the platform's owner serializes).
//
// Why it exists: Linux probes the controller at boot (drivers/input/serio/i8042.c) and uses it
// to reboot (command 0xFE, arch/x86/kernel/reboot.c); a stock kernel must find a controller
// that answers, conclude that nothing is attached, and move on without hanging or retrying.
//
// Registers (IBM PC AT Technical Reference, "Keyboard Controller"; the bit names Linux uses in
// include/linux/i8042.h; QEMU hw/input/pckbd.c):
//  - Status (read 0x64): bit 0 OBF (a byte waits at 0x60), bit 1 IBF (always 0: every write is
//    taken at once), bit 2 SYS (the system flag, config byte bit 2), bit 3 CMD (the last write
//    went to 0x64), bit 4 keylock (1 = not inhibited; always 1), bit 5 AUXDATA (the byte at
//    0x60 came from the AUX side), bit 6 timeout, bit 7 parity error (always 0).
//  - Config byte ("command byte", internal RAM byte 0; commands 0x20 read / 0x60 write):
//    bit 0 keyboard interrupt, bit 1 AUX interrupt, bit 2 system flag, bit 4 keyboard disabled,
//    bit 5 AUX disabled, bit 6 scancode translation. At reset 0x45: translation, keyboard
//    interrupt and the system flag, what a PC BIOS leaves after POST (the guest starts after
//    firmware would have run).
//  - Output port (commands 0xD0 read / 0xD1 write): bit 0 the CPU reset line (0 = reset
//    asserted), bit 1 the A20 gate. 0xCF at reset (QEMU's value: reset high, A20 on, the
//    clock/data lines high). A20 is recorded, never applied (guest RAM is never wrapped).
//
// Commands (write to 0x64):
//  0x20-0x3F read internal RAM byte (0x20: the config byte); 0x60-0x7F write it (the next data
//  byte); 0xA7/0xA8 disable/enable the AUX port and 0xAD/0xAE the keyboard port (config bits 5
//  and 4); 0xA9/0xAB AUX/keyboard interface test -> 0x00 (the lines test good: a port with
//  nothing attached has its clock and data pulled high); 0xAA self test -> 0x55 and sets the
//  system flag; 0xD0 read output port; 0xD1 write output port (bit 0 clear resets the CPU);
//  0xD2/0xD3 write the next data byte into the output buffer as if it came from the keyboard /
//  the AUX device (the controller's internal loopback, used by Linux's AUX and MUX checks);
//  0xD4 send the next data byte to the AUX device; 0xDD/0xDF A20 off/on; 0xF0-0xFF pulse
//  output-port bits 3:0 low for each 0 in the command's low nibble: bit 0 clear (0xFE, also
//  0xF0/0xF2/...) pulses the reset line and requests a reset. Other commands are ignored and
//  counted.
//
// No device: a data byte written to 0x60 without a pending controller command goes to the
// keyboard and a byte after 0xD4 goes to the AUX device; neither device exists, so the byte is
// dropped (counted), nothing is placed in the output buffer, and the status timeout bit (6) is
// set until the next command. Linux's atkbd then gets no ACK for GETID/SETLEDS, gives up after
// its own command timeouts and reports no keyboard; the keyboard port stays registered but
// empty.
//
// Interrupts: the controller raises none (no IRQ 1 or IRQ 12 output). Linux polls the status
// port for every controller command, so probing works; its AUX IRQ delivery test (0xD3 0xA5
// with the AUX interrupt enabled) sees no IRQ 12 within 250 ms, so it concludes there is no
// AUX port and never probes for a mouse.
#pragma once

#include <cstdint>

#include "guest/devices/reset_latch.h"
#include "guest/io_bus.h"

namespace lantern::guest {

class I8042 final : public PortDevice {
 public:
  static constexpr uint16_t kDataPort = 0x60;
  static constexpr uint16_t kStatusCommandPort = 0x64;

  // Status register bits.
  static constexpr uint8_t kStatusOutputFull = 0x01, kStatusInputFull = 0x02, kStatusSystemFlag = 0x04,
                           kStatusLastWasCommand = 0x08, kStatusNotInhibited = 0x10, kStatusAuxData = 0x20,
                           kStatusTimeout = 0x40, kStatusParityError = 0x80;
  // Config byte bits.
  static constexpr uint8_t kConfigKeyboardIrq = 0x01, kConfigAuxIrq = 0x02, kConfigSystemFlag = 0x04,
                           kConfigKeyboardDisabled = 0x10, kConfigAuxDisabled = 0x20, kConfigTranslate = 0x40;
  static constexpr uint8_t kConfigReset = kConfigTranslate | kConfigSystemFlag | kConfigKeyboardIrq;
  // Output port bits.
  static constexpr uint8_t kOutputPortReset = 0x01;  // 1 = the CPU runs, 0 = reset asserted
  static constexpr uint8_t kOutputPortA20 = 0x02;
  static constexpr uint8_t kOutputPortResetValue = 0xcf;  // QEMU: reset, A20, lines high

  // Controller commands.
  static constexpr uint8_t kCmdReadRamFirst = 0x20, kCmdReadRamLast = 0x3f, kCmdWriteRamFirst = 0x60,
                           kCmdWriteRamLast = 0x7f, kCmdAuxDisable = 0xa7, kCmdAuxEnable = 0xa8,
                           kCmdAuxTest = 0xa9, kCmdSelfTest = 0xaa, kCmdKeyboardTest = 0xab,
                           kCmdKeyboardDisable = 0xad, kCmdKeyboardEnable = 0xae, kCmdReadOutputPort = 0xd0,
                           kCmdWriteOutputPort = 0xd1, kCmdWriteKeyboardBuffer = 0xd2,
                           kCmdWriteAuxBuffer = 0xd3, kCmdWriteAuxDevice = 0xd4, kCmdA20Off = 0xdd,
                           kCmdA20On = 0xdf, kCmdPulseFirst = 0xf0, kCmdPulseReset = 0xfe;
  static constexpr uint8_t kSelfTestPassed = 0x55;
  static constexpr uint8_t kInterfaceTestPassed = 0x00;
  static constexpr uint32_t kRamBytes = 32;  // internal RAM 0x00-0x1f; byte 0 is the config byte

  struct Counters {
    uint64_t device_bytes_dropped = 0;  // bytes for the absent keyboard or AUX device
    uint64_t unknown_commands = 0;      // commands this controller does not implement
  };

  // `reset_latch` receives the 0xFE pulse and 0xD1 writes with bit 0 clear; may be null.
  explicit I8042(ResetLatch* reset_latch = nullptr) : reset_latch_(reset_latch) { reset(); }

  // Power-on state (after firmware): config 0x45, output port 0xCF, output buffer empty.
  // Counters are kept.
  void reset();

  uint8_t config() const { return ram_[0]; }
  uint8_t output_port() const { return output_port_; }
  uint8_t status() const;
  const Counters& counters() const { return counters_; }

  uint32_t port_read(uint16_t port, uint8_t width) override;
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;

 private:
  void command(uint8_t cmd);
  void data(uint8_t byte);
  void put_output(uint8_t byte, bool from_aux);
  void drop_device_byte();
  void request_reset(ResetCause cause, uint8_t value);

  ResetLatch* reset_latch_;
  uint8_t ram_[kRamBytes] = {};
  uint8_t output_port_ = kOutputPortResetValue;
  uint8_t output_byte_ = 0;  // the byte at 0x60; a read with OBF clear returns it again
  bool output_full_ = false;
  bool output_from_aux_ = false;
  bool last_was_command_ = true;
  bool timeout_ = false;
  uint8_t pending_command_ = 0;  // a command waiting for its data byte, or 0
  Counters counters_;
};

}  // namespace lantern::guest
