// An Intel 82093AA I/O APIC at its default base 0xFEC00000: 24 interrupt input pins, each turned
// into an interrupt message for the local APICs by its redirection-table entry. Portable
// (host-tested). Not thread-safe: the core serializes every call into one VM's devices (MMIO
// exits, set_irq_level from the devices, end_of_interrupt from the vlapics alike). The delivery
// sink is called synchronously from set_irq_level(), end_of_interrupt() and mmio_write(), after
// the device's own state (remote IRR, counters) is updated, so a sink may call back in.
//
// Reference: Intel 82093AA I/O Advanced Programmable Interrupt Controller (IOAPIC) datasheet
// (290566-001), cited as "DS x.y":
//  - 3.0 / 3.1, Table 1: two memory-mapped registers, IOREGSEL at +0x00 (bits 7:0 select an
//    IOAPIC register) and IOWIN at +0x10 (the selected register's data, Dword accesses only).
//    "a byte memory write ... loads the IOREGSEL Register", so IOREGSEL takes byte and Dword
//    writes; IOWIN takes Dword accesses only. Any other offset or width reads 0 and ignores
//    writes (counted in counters().ignored_accesses).
//  - 3.2, Table 2: the registers behind IOWIN:
//      0x00 IOAPICID  (DS 3.2.1) bits 27:24 the ID, read/write; the rest reserved (read 0)
//      0x01 IOAPICVER (DS 3.2.2) 0x00170011: version 0x11, maximum redirection entry 0x17 (23)
//      0x02 IOAPICARB (DS 3.2.3) bits 27:24 the arbitration ID, loaded when IOAPICID is written
//      0x10-0x3F IOREDTBL0-23 (DS 3.2.4): pin n is 0x10 + 2n (bits 31:0) and 0x11 + 2n (63:32)
//    Registers not in the table read 0 and ignore writes.
//  - 3.2.4, redirection-table entry bits: 7:0 vector, 10:8 delivery mode, 11 destination mode
//    (1 = logical), 12 delivery status (RO), 13 input pin polarity (1 = active low), 14 remote IRR
//    (RO), 15 trigger mode (1 = level), 16 mask, 63:56 destination; 55:17 reserved (read 0 here).
//
// The model, and where it simplifies the chip:
//  - Interrupt messages are handed to the sink at once, so delivery status (bit 12) always reads 0
//    (idle). Writes to bits 12 and 14 are ignored (DS 3.2.4: read-only).
//  - A pin no device has driven yet (no set_irq_level call) rests at its inactive level whatever
//    its polarity, as a pulled-up PCI line or a pulled-down ISA line would.
//  - Edge-triggered pin: an effective rising edge (the line going from de-asserted to asserted,
//    polarity applied) on an unmasked pin sends one message. Edges on a masked pin are lost
//    (DS 3.2.4 bit 16: "not delivered or held pending").
//  - Level-triggered pin: while the line is asserted, the pin unmasked and remote IRR clear, one
//    message is sent and remote IRR is set; the local APIC's EOI for the vector clears it
//    (end_of_interrupt), and a line still asserted sends the next message then.
//  - An RTE write that leaves a level-triggered pin unmasked, asserted and with remote IRR clear
//    sends a message then (unmasking an asserted level line). An RTE write that selects edge
//    trigger clears remote IRR. A change of polarity alone is not an edge.
//  - reset() restores the power-up state of DS 3.2.4 ("xxx1 xxxx xxxx xxxxh": every pin masked),
//    with the other RTE bits 0 (edge, active high, fixed, physical, vector 0) and IOREGSEL 0; the
//    ID returns to the one given to the constructor (what firmware would have programmed, and
//    what the MP table announces), the arbitration ID with it. Input line levels and counters are
//    kept: the lines belong to the devices, not to the IOAPIC.
#pragma once

#include <cstddef>
#include <cstdint>

#include "guest/io_bus.h"

namespace lantern::guest {

// One interrupt message as the IOAPIC sends it to the local APICs (DS 3.2.4 fields).
struct IoapicMessage {
  uint8_t vector;            // bits 7:0
  uint8_t delivery_mode;     // bits 10:8: 0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT
  bool logical_destination;  // bit 11: destination is a logical set of local APICs, not an APIC ID
  uint8_t destination;       // bits 63:56
  bool level_triggered;      // bit 15: the local APIC must broadcast an EOI for this vector
  uint8_t pin;               // the input pin that caused the message (0-23)
};

class Ioapic final : public MmioDevice {
 public:
  static constexpr uint64_t kDefaultBase = 0xfec00000;  // DS 3.1, Table 1: FEC0 xy00h, xy = 00
  static constexpr uint64_t kWindowSize = 0x1000;       // the 4 KiB page memory_map.h reserves
  static constexpr uint8_t kPinCount = 24;              // DS 3.2.2: maximum redirection entry 0x17, pins 0-23

  // Memory-mapped registers (DS 3.1, Table 1).
  static constexpr uint64_t kIoRegSel = 0x00;
  static constexpr uint64_t kIoWin = 0x10;

  // Register addresses behind IOWIN (DS 3.2, Table 2).
  static constexpr uint8_t kRegId = 0x00;
  static constexpr uint8_t kRegVersion = 0x01;
  static constexpr uint8_t kRegArbitration = 0x02;
  static constexpr uint8_t kRegRedirectionBase = 0x10;  // pin n: 0x10 + 2n (low), 0x11 + 2n (high)

  // IOAPICID / IOAPICARB: the 4-bit ID in bits 27:24 (DS 3.2.1, 3.2.3).
  static constexpr uint32_t kIdShift = 24;
  static constexpr uint32_t kIdMask = 0x0f;
  // IOAPICVER (DS 3.2.2): maximum redirection entry 0x17 in bits 23:16, version 0x11 in 7:0.
  static constexpr uint32_t kVersionValue = 0x00170011;

  // Redirection-table entry bits (DS 3.2.4).
  static constexpr uint64_t kRteVectorMask = 0xff;      // bits 7:0
  static constexpr uint32_t kRteDeliveryModeShift = 8;  // bits 10:8
  static constexpr uint64_t kRteDeliveryModeMask = 0x7ull << 8;
  static constexpr uint64_t kRteLogicalDestination = 1ull << 11;
  static constexpr uint64_t kRteDeliveryStatus = 1ull << 12;  // read-only
  static constexpr uint64_t kRteActiveLow = 1ull << 13;
  static constexpr uint64_t kRteRemoteIrr = 1ull << 14;  // read-only
  static constexpr uint64_t kRteLevelTriggered = 1ull << 15;
  static constexpr uint64_t kRteMasked = 1ull << 16;
  static constexpr uint32_t kRteDestinationShift = 56;  // bits 63:56
  // The bits a guest write changes: everything defined except the two read-only bits.
  static constexpr uint64_t kRteWritableMask = kRteVectorMask | kRteDeliveryModeMask |
                                               kRteLogicalDestination | kRteActiveLow | kRteLevelTriggered |
                                               kRteMasked | (0xffull << 56);
  static constexpr uint64_t kRteResetValue = kRteMasked;  // DS 3.2.4 default "xxx1 xxxx xxxx xxxxh"

  using DeliverySink = void (*)(void* context, const IoapicMessage& message);

  // `id` is the 4-bit IOAPIC ID (bits above 3 are dropped), the value the MP table announces.
  explicit Ioapic(uint8_t id);

  // Power-up state, see the header comment.
  void reset();

  // Where messages go. Without a sink, messages are counted (messages_without_sink) and dropped;
  // the pin's state (remote IRR) changes as if they had been sent.
  void set_delivery_sink(DeliverySink sink, void* context) {
    sink_ = sink;
    sink_context_ = context;
  }

  // The input line of `pin` (0-23; others are ignored and counted), as the device drives it:
  // `asserted` is the electrical level, high = true. The RTE's polarity bit decides whether that
  // is an asserted interrupt: an active-low pin is asserted while the line is low.
  void set_irq_level(uint8_t pin, bool asserted);

  // A local APIC's EOI broadcast for `vector` (SDM Vol. 3A 11.8.5, for a level-triggered
  // interrupt): clears remote IRR of every level-triggered pin with that vector; a pin whose line
  // is still asserted and which is unmasked sends its message again.
  void end_of_interrupt(uint8_t vector);

  // MmioDevice: offsets relative to the window base (see the header comment).
  uint64_t mmio_read(uint64_t offset, uint8_t width) override;
  void mmio_write(uint64_t offset, uint8_t width, uint64_t value) override;

  // Read-only views for the console (and tests).
  uint8_t id() const { return id_; }
  uint8_t selected_register() const { return ioregsel_; }
  // The full 64-bit redirection-table entry of `pin` as the guest reads it; 0 for pin >= 24.
  uint64_t redirection_entry(uint8_t pin) const { return pin < kPinCount ? rte_[pin] : 0; }
  // The electrical level last given to set_irq_level for `pin`; false for pin >= 24.
  bool line_level(uint8_t pin) const { return pin < kPinCount && line_[pin]; }

  struct Counters {
    uint64_t deliveries[kPinCount] = {};  // messages sent (or dropped without a sink) per pin
    uint64_t messages_without_sink = 0;   // messages dropped because no sink was set
    uint64_t ignored_accesses = 0;        // MMIO accesses at an offset or width the chip ignores
    uint64_t bad_pin_inputs = 0;          // set_irq_level calls for pin >= 24
  };
  const Counters& counters() const { return counters_; }
  uint64_t deliveries(uint8_t pin) const { return pin < kPinCount ? counters_.deliveries[pin] : 0; }

 private:
  uint32_t read_register(uint8_t index) const;
  void write_register(uint8_t index, uint32_t value);
  void write_redirection_entry(uint8_t pin, uint64_t value);
  // The line of `pin` with the RTE's polarity applied: true while the interrupt is asserted.
  bool input_asserted(uint8_t pin) const;
  // A level-triggered pin that is asserted, unmasked and has remote IRR clear sends its message.
  void deliver_level_if_pending(uint8_t pin);
  void deliver(uint8_t pin);

  uint8_t reset_id_;
  uint8_t id_ = 0;
  uint8_t arbitration_id_ = 0;
  uint8_t ioregsel_ = 0;
  uint64_t rte_[kPinCount] = {};
  bool line_[kPinCount] = {};
  bool driven_[kPinCount] = {};  // set_irq_level was called for the pin at least once
  DeliverySink sink_ = nullptr;
  void* sink_context_ = nullptr;
  Counters counters_;
};

}  // namespace lantern::guest
