#include "guest/devices/i8259.h"

namespace lantern::guest {
namespace {

// 8259A datasheet, ICW1/OCW2/OCW3 formats.
constexpr uint8_t kIcw1 = 1u << 4;        // D4 = 1 marks ICW1
constexpr uint8_t kIcw1NeedsIcw4 = 1u << 0;
constexpr uint8_t kIcw1Single = 1u << 1;
constexpr uint8_t kOcw3 = 1u << 3;        // D3 = 1 (with D4 = 0) marks OCW3, D3 = 0 is OCW2
constexpr uint8_t kOcw3ReadRegister = 1u << 1;  // RR: act on RIS
constexpr uint8_t kOcw3ReadIsr = 1u << 0;       // RIS: 1 = ISR, 0 = IRR
constexpr uint8_t kOcw3Poll = 1u << 2;
constexpr uint8_t kOcw3SpecialMaskAct = 1u << 6;  // ESMM
constexpr uint8_t kOcw3SpecialMask = 1u << 5;     // SMM

}  // namespace

void I8259::write_command(uint8_t value) {
  if (value & kIcw1) {
    // "Initialization Command Word 1": the mask is cleared, IRR is selected for reading, special
    // mask mode ends; ICW2 comes next.
    icw1_seen_ = true;
    needs_icw4_ = value & kIcw1NeedsIcw4;
    single_ = value & kIcw1Single;
    imr_ = 0;
    read_isr_ = false;
    poll_ = false;
    special_mask_ = false;
    icw4_ = 0;
    init_step_ = InitStep::kIcw2;
    return;
  }
  if (value & kOcw3) {
    if (value & kOcw3ReadRegister) read_isr_ = value & kOcw3ReadIsr;
    poll_ = value & kOcw3Poll;
    if (value & kOcw3SpecialMaskAct) special_mask_ = value & kOcw3SpecialMask;
    return;
  }
  // OCW2: EOI / rotate / set priority. With nothing ever in service there is nothing to change.
}

void I8259::write_data(uint8_t value) {
  switch (init_step_) {
    case InitStep::kIcw2:
      vector_base_ = value & 0xf8;  // ICW2 D7-D3: T7-T3 of the vector (x86 mode)
      init_step_ = single_ ? (needs_icw4_ ? InitStep::kIcw4 : InitStep::kDone) : InitStep::kIcw3;
      return;
    case InitStep::kIcw3:
      icw3_ = value;
      init_step_ = needs_icw4_ ? InitStep::kIcw4 : InitStep::kDone;
      return;
    case InitStep::kIcw4:
      icw4_ = value;
      init_step_ = InitStep::kDone;
      return;
    case InitStep::kDone:
      imr_ = value;  // OCW1
      return;
  }
}

uint8_t I8259::read_command() {
  if (poll_) {
    // Poll word: D7 = 1 when an interrupt is requested. Never, here. The poll ends on the read.
    poll_ = false;
    return 0;
  }
  return 0;  // IRR or ISR (per read_isr_): nothing is ever requested or in service
}

uint32_t I8259Pair::port_read(uint16_t port, uint8_t width) {
  // The chips have 8-bit registers; wider accesses read the register at `port` in the low byte
  // and float (all-ones) above it.
  const uint32_t high = width >= 4 ? 0xffffff00u : (((1u << (8 * width)) - 1) & ~0xffu);
  I8259& chip = chip_for(port);
  const uint8_t b = (port & 1) ? chip.read_data() : chip.read_command();
  return high | b;
}

void I8259Pair::port_write(uint16_t port, uint8_t, uint32_t value) {
  I8259& chip = chip_for(port);
  if (port & 1)
    chip.write_data(static_cast<uint8_t>(value));
  else
    chip.write_command(static_cast<uint8_t>(value));
}

}  // namespace lantern::guest
