#include "guest/devices/ioapic.h"

namespace lantern::guest {
namespace {

// The last register address of the redirection table: IOREDTBL23 high (DS 3.2, Table 2).
constexpr uint8_t kRegRedirectionLast = Ioapic::kRegRedirectionBase + 2 * Ioapic::kPinCount - 1;

}  // namespace

Ioapic::Ioapic(uint8_t id) : reset_id_(static_cast<uint8_t>(id & kIdMask)) {
  reset();
}

void Ioapic::reset() {
  id_ = reset_id_;
  arbitration_id_ = reset_id_;  // DS 3.2.3: loaded together with the ID
  ioregsel_ = 0;                // DS 3.1.1: default 00h
  for (uint64_t& entry : rte_) entry = kRteResetValue;
}

bool Ioapic::input_asserted(uint8_t pin) const {
  if (!driven_[pin]) return false;  // no device on the pin: it rests at its inactive level
  const bool active_low = rte_[pin] & kRteActiveLow;
  return line_[pin] != active_low;
}

void Ioapic::deliver(uint8_t pin) {
  const uint64_t entry = rte_[pin];
  const bool level = entry & kRteLevelTriggered;
  if (level) rte_[pin] |= kRteRemoteIrr;  // DS 3.2.4 bit 14: set when the local APIC accepts it
  ++counters_.deliveries[pin];
  const IoapicMessage message{
      .vector = static_cast<uint8_t>(entry & kRteVectorMask),
      .delivery_mode = static_cast<uint8_t>((entry & kRteDeliveryModeMask) >> kRteDeliveryModeShift),
      .logical_destination = (entry & kRteLogicalDestination) != 0,
      .destination = static_cast<uint8_t>(entry >> kRteDestinationShift),
      .level_triggered = level,
      .pin = pin,
  };
  if (sink_ == nullptr) {
    ++counters_.messages_without_sink;
    return;
  }
  sink_(sink_context_, message);
}

void Ioapic::deliver_level_if_pending(uint8_t pin) {
  const uint64_t entry = rte_[pin];
  if (!(entry & kRteLevelTriggered) || (entry & kRteMasked) || (entry & kRteRemoteIrr)) return;
  if (!input_asserted(pin)) return;
  deliver(pin);
}

void Ioapic::set_irq_level(uint8_t pin, bool asserted) {
  if (pin >= kPinCount) {
    ++counters_.bad_pin_inputs;
    return;
  }
  const bool was_asserted = input_asserted(pin);
  line_[pin] = asserted;
  driven_[pin] = true;
  const bool now_asserted = input_asserted(pin);
  const uint64_t entry = rte_[pin];
  if (entry & kRteLevelTriggered) {
    deliver_level_if_pending(pin);
    return;
  }
  // Edge-triggered: one message per rising edge of the (polarity-corrected) input; an edge on a
  // masked pin is lost (DS 3.2.4 bit 16).
  if (!was_asserted && now_asserted && !(entry & kRteMasked)) deliver(pin);
}

void Ioapic::end_of_interrupt(uint8_t vector) {
  for (uint8_t pin = 0; pin < kPinCount; ++pin) {
    const uint64_t entry = rte_[pin];
    if (!(entry & kRteLevelTriggered) || (entry & kRteVectorMask) != vector) continue;
    // DS 3.2.4 bit 14: "reset when an EOI message is received from a local APIC".
    rte_[pin] &= ~kRteRemoteIrr;
    deliver_level_if_pending(pin);
  }
}

uint32_t Ioapic::read_register(uint8_t index) const {
  if (index == kRegId) return uint32_t{id_} << kIdShift;
  if (index == kRegVersion) return kVersionValue;
  if (index == kRegArbitration) return uint32_t{arbitration_id_} << kIdShift;
  if (index >= kRegRedirectionBase && index <= kRegRedirectionLast) {
    const uint8_t pin = static_cast<uint8_t>((index - kRegRedirectionBase) / 2);
    const bool high = (index - kRegRedirectionBase) & 1;
    return static_cast<uint32_t>(high ? rte_[pin] >> 32 : rte_[pin]);
  }
  return 0;  // not a register of the 82093AA (DS 3.2, Table 2)
}

void Ioapic::write_register(uint8_t index, uint32_t value) {
  if (index == kRegId) {
    // DS 3.2.1: bits 27:24 writable; DS 3.2.3: the arbitration ID is loaded with the same value.
    id_ = static_cast<uint8_t>((value >> kIdShift) & kIdMask);
    arbitration_id_ = id_;
    return;
  }
  if (index >= kRegRedirectionBase && index <= kRegRedirectionLast) {
    const uint8_t pin = static_cast<uint8_t>((index - kRegRedirectionBase) / 2);
    const bool high = (index - kRegRedirectionBase) & 1;
    const uint64_t entry = rte_[pin];
    const uint64_t updated =
        high ? (entry & 0xffffffffull) | (uint64_t{value} << 32) : (entry & ~0xffffffffull) | value;
    write_redirection_entry(pin, updated);
  }
  // IOAPICVER and IOAPICARB are read-only (DS 3.2.2, 3.2.3); other addresses are not registers.
}

void Ioapic::write_redirection_entry(uint8_t pin, uint64_t value) {
  const uint64_t kept = rte_[pin] & (kRteDeliveryStatus | kRteRemoteIrr);  // read-only bits
  uint64_t entry = (value & kRteWritableMask) | kept;
  // Remote IRR is "undefined for edge triggered interrupts"; switching to edge clears it so a
  // later switch back to level does not start out blocked.
  if (!(entry & kRteLevelTriggered)) entry &= ~kRteRemoteIrr;
  rte_[pin] = entry;
  deliver_level_if_pending(pin);  // an unmasked, asserted level line with remote IRR clear
}

uint64_t Ioapic::mmio_read(uint64_t offset, uint8_t width) {
  if (width == 4 && offset == kIoRegSel) return ioregsel_;  // DS 3.1.1: bits 31:8 reserved
  if (width == 4 && offset == kIoWin) return read_register(ioregsel_);
  ++counters_.ignored_accesses;
  return 0;
}

void Ioapic::mmio_write(uint64_t offset, uint8_t width, uint64_t value) {
  // DS 3.0: IOREGSEL is loaded by a byte write; Dword writes are the usual access (Linux).
  if ((width == 1 || width == 4) && offset == kIoRegSel) {
    ioregsel_ = static_cast<uint8_t>(value);
    return;
  }
  if (width == 4 && offset == kIoWin) {
    write_register(ioregsel_, static_cast<uint32_t>(value));
    return;
  }
  ++counters_.ignored_accesses;
}

}  // namespace lantern::guest
