// The legacy i8259A interrupt-controller pair of a PC (master 0x20/0x21, slave 0xa0/0xa1), as a
// guest that masks it sees it. Portable (host-tested).
//
// This model accepts the initialization sequence and the operation commands and keeps what a
// guest reads back: the mask (OCW1), and IRR/ISR through OCW3. It never delivers an interrupt:
// Lantern's guests get interrupts through their local APIC (and later the IOAPIC), so IRR and
// ISR always read 0 and a poll command reads "no interrupt". A guest that programs the PIC and
// waits for a PIC interrupt waits forever; that is the documented limit of this device.
//
// Command decoding, Intel 8259A datasheet (231468), "Programming the 8259A":
//  - A0=0 with D4=1: ICW1 (starts initialization; D0 = ICW4 needed, D1 = single, no ICW3).
//    Initialization clears the mask, sets read-register to IRR and ends special mask mode.
//  - then A0=1: ICW2 (vector base, D7-D3), ICW3 (unless single), ICW4 (if D0 of ICW1).
//  - A0=1 after initialization: OCW1, the interrupt mask register.
//  - A0=0 with D4=0, D3=0: OCW2 (EOI and rotation commands: accepted, nothing is in service).
//  - A0=0 with D4=0, D3=1: OCW3 (D1:D0 = 10 read IRR, 11 read ISR; D2 = poll; D6:D5 special mask).
#pragma once

#include <cstdint>

#include "guest/io_bus.h"

namespace lantern::guest {

class I8259 {
 public:
  void reset() { *this = I8259{}; }
  void write_command(uint8_t value);  // A0 = 0
  void write_data(uint8_t value);     // A0 = 1
  uint8_t read_command();             // IRR, ISR or the poll word, per OCW3
  uint8_t read_data() const { return imr_; }

  uint8_t mask() const { return imr_; }
  uint8_t vector_base() const { return vector_base_; }
  bool initialized() const { return init_step_ == InitStep::kDone && icw1_seen_; }
  bool auto_eoi() const { return icw4_ & 0x02; }  // ICW4 D1: AEOI
  uint8_t cascade() const { return icw3_; }
  bool reads_isr() const { return read_isr_; }
  bool special_mask() const { return special_mask_; }

 private:
  enum class InitStep : uint8_t { kIcw2, kIcw3, kIcw4, kDone };
  InitStep init_step_ = InitStep::kDone;
  bool icw1_seen_ = false;
  bool needs_icw4_ = false;
  bool single_ = false;
  bool read_isr_ = false;
  bool poll_ = false;
  bool special_mask_ = false;
  uint8_t imr_ = 0;
  uint8_t vector_base_ = 0;
  uint8_t icw3_ = 0;
  uint8_t icw4_ = 0;
};

// Both chips on the port bus: 0x20-0x21 and 0xa0-0xa1 (the same device object claims both).
class I8259Pair final : public PortDevice {
 public:
  static constexpr uint16_t kMasterBase = 0x20;
  static constexpr uint16_t kSlaveBase = 0xa0;
  static constexpr uint32_t kPortCount = 2;

  I8259& master() { return master_; }
  I8259& slave() { return slave_; }
  const I8259& master() const { return master_; }
  const I8259& slave() const { return slave_; }
  void reset() {
    master_.reset();
    slave_.reset();
  }

  uint32_t port_read(uint16_t port, uint8_t width) override;
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;

 private:
  I8259& chip_for(uint16_t port) { return port >= kSlaveBase ? slave_ : master_; }
  I8259 master_;
  I8259 slave_;
};

}  // namespace lantern::guest
