#include <gtest/gtest.h>

#include <vector>

#include "guest/devices/ioapic.h"

namespace lantern::guest {
namespace {

struct Sink {
  std::vector<IoapicMessage> messages;
  static void put(void* ctx, const IoapicMessage& m) { static_cast<Sink*>(ctx)->messages.push_back(m); }
};

// Register access the way Linux does it: a Dword write of the register address to IOREGSEL,
// then a Dword access to IOWIN.
uint32_t read_reg(Ioapic& io, uint8_t reg) {
  io.mmio_write(Ioapic::kIoRegSel, 4, reg);
  return static_cast<uint32_t>(io.mmio_read(Ioapic::kIoWin, 4));
}
void write_reg(Ioapic& io, uint8_t reg, uint32_t value) {
  io.mmio_write(Ioapic::kIoRegSel, 4, reg);
  io.mmio_write(Ioapic::kIoWin, 4, value);
}
void write_rte(Ioapic& io, uint8_t pin, uint64_t value) {
  // Linux writes the high half first, then the low half (which may unmask).
  write_reg(io, static_cast<uint8_t>(0x11 + 2 * pin), static_cast<uint32_t>(value >> 32));
  write_reg(io, static_cast<uint8_t>(0x10 + 2 * pin), static_cast<uint32_t>(value));
}
uint64_t read_rte(Ioapic& io, uint8_t pin) {
  const uint64_t low = read_reg(io, static_cast<uint8_t>(0x10 + 2 * pin));
  const uint64_t high = read_reg(io, static_cast<uint8_t>(0x11 + 2 * pin));
  return (high << 32) | low;
}

constexpr uint64_t kLevel = Ioapic::kRteLevelTriggered;
constexpr uint64_t kMasked = Ioapic::kRteMasked;
constexpr uint64_t kActiveLow = Ioapic::kRteActiveLow;
constexpr uint64_t kRemoteIrr = Ioapic::kRteRemoteIrr;

struct IoapicFixture : ::testing::Test {
  Ioapic io{2};
  Sink sink;
  void SetUp() override { io.set_delivery_sink(&Sink::put, &sink); }
};

TEST(GuestIoapic, VersionIdAndArbitrationThroughIoregselAndIowin) {
  Ioapic io(5);
  EXPECT_EQ(read_reg(io, Ioapic::kRegVersion), 0x00170011u);  // version 0x11, max entry 23
  EXPECT_EQ(read_reg(io, Ioapic::kRegId), 5u << 24);
  EXPECT_EQ(read_reg(io, Ioapic::kRegArbitration), 5u << 24);
  EXPECT_EQ(io.mmio_read(Ioapic::kIoRegSel, 4), Ioapic::kRegArbitration);  // IOREGSEL reads back

  write_reg(io, Ioapic::kRegId, 0xffffffff);  // only bits 27:24 are writable
  EXPECT_EQ(read_reg(io, Ioapic::kRegId), 0x0f000000u);
  EXPECT_EQ(read_reg(io, Ioapic::kRegArbitration), 0x0f000000u);  // loaded with the ID
  EXPECT_EQ(io.id(), 0x0f);

  write_reg(io, Ioapic::kRegVersion, 0);  // read-only
  write_reg(io, Ioapic::kRegArbitration, 0);
  EXPECT_EQ(read_reg(io, Ioapic::kRegVersion), 0x00170011u);
  EXPECT_EQ(read_reg(io, Ioapic::kRegArbitration), 0x0f000000u);
  EXPECT_EQ(read_reg(io, 0x03), 0u);  // not a register
  EXPECT_EQ(read_reg(io, 0x40), 0u);  // past IOREDTBL23
}

TEST(GuestIoapic, ResetMasksEveryPinAndRestoresTheId) {
  Ioapic io(3);
  for (uint8_t pin = 0; pin < Ioapic::kPinCount; ++pin) EXPECT_EQ(read_rte(io, pin), 0x10000u) << int{pin};
  write_rte(io, 7, 0xab00000000008031ull);
  write_reg(io, Ioapic::kRegId, 9u << 24);
  io.reset();
  EXPECT_EQ(io.redirection_entry(7), 0x10000u);
  EXPECT_EQ(read_reg(io, Ioapic::kRegId), 3u << 24);
  EXPECT_EQ(io.selected_register(), Ioapic::kRegId);  // read_reg above selected it after reset
}

TEST(GuestIoapic, RedirectionEntryHalvesReadBackWithReservedBitsZero) {
  Ioapic io(0);
  write_reg(io, 0x10 + 2 * 4 + 1, 0xffffffff);  // pin 4 high: only 63:56 defined
  write_reg(io, 0x10 + 2 * 4, 0xffffffff);      // pin 4 low: 55:17 reserved, 12 and 14 read-only
  EXPECT_EQ(read_reg(io, 0x11 + 2 * 4), 0xff000000u);
  EXPECT_EQ(read_reg(io, 0x10 + 2 * 4), 0x0001afffu);
  EXPECT_EQ(io.redirection_entry(4), 0xff0000000001afffull);
  EXPECT_EQ(io.redirection_entry(5), 0x10000u);  // the neighbour is untouched
  EXPECT_EQ(io.redirection_entry(24), 0u);       // no such pin
}

TEST(GuestIoapic, OtherOffsetsAndWidthsAreIgnored) {
  Ioapic io(0);
  io.mmio_write(Ioapic::kIoRegSel, 4, Ioapic::kRegVersion);
  EXPECT_EQ(io.mmio_read(Ioapic::kIoWin, 2), 0u);  // IOWIN is Dword only
  EXPECT_EQ(io.mmio_read(Ioapic::kIoWin, 8), 0u);
  EXPECT_EQ(io.mmio_read(0x20, 4), 0u);
  EXPECT_EQ(io.mmio_read(0x04, 4), 0u);
  io.mmio_write(0x20, 4, 0x12);
  io.mmio_write(Ioapic::kIoRegSel, 2, 0x12);  // IOREGSEL takes byte or Dword writes only
  EXPECT_EQ(io.selected_register(), Ioapic::kRegVersion);
  EXPECT_EQ(io.counters().ignored_accesses, 6u);
  io.mmio_write(Ioapic::kIoRegSel, 1, Ioapic::kRegId);  // DS 3.0: a byte write loads IOREGSEL
  EXPECT_EQ(io.selected_register(), Ioapic::kRegId);
  EXPECT_EQ(io.mmio_read(Ioapic::kIoWin, 4), 0u);  // ID 0
}

TEST_F(IoapicFixture, MaskedPinsDeliverNothing) {
  io.set_irq_level(1, true);  // edge, masked after reset
  io.set_irq_level(1, false);
  write_rte(io, 3, kMasked | kLevel | 0x41);
  io.set_irq_level(3, true);
  io.end_of_interrupt(0x41);
  EXPECT_TRUE(sink.messages.empty());
  EXPECT_EQ(io.deliveries(1), 0u);
  EXPECT_EQ(io.deliveries(3), 0u);
  EXPECT_EQ(io.redirection_entry(3) & kRemoteIrr, 0u);
  // An edge that came while masked is lost, not held pending (DS 3.2.4 bit 16).
  write_rte(io, 1, 0x31);
  EXPECT_TRUE(sink.messages.empty());
}

TEST_F(IoapicFixture, EdgeDeliversOncePerRisingEdge) {
  write_rte(io, 1, 0x31);  // vector 0x31, fixed, physical, edge, active high, unmasked, dest 0
  io.set_irq_level(1, true);
  io.set_irq_level(1, true);  // still high: no new edge
  ASSERT_EQ(sink.messages.size(), 1u);
  EXPECT_EQ(sink.messages[0].vector, 0x31);
  EXPECT_EQ(sink.messages[0].pin, 1);
  EXPECT_FALSE(sink.messages[0].level_triggered);
  io.set_irq_level(1, false);  // falling edge: nothing
  EXPECT_EQ(sink.messages.size(), 1u);
  io.set_irq_level(1, true);
  EXPECT_EQ(sink.messages.size(), 2u);
  EXPECT_EQ(io.deliveries(1), 2u);
  EXPECT_EQ(io.redirection_entry(1) & kRemoteIrr, 0u);  // remote IRR is for level pins
  io.end_of_interrupt(0x31);                            // an EOI does not matter to edge pins
  EXPECT_EQ(sink.messages.size(), 2u);
}

TEST_F(IoapicFixture, LevelDeliversSetsRemoteIrrAndWaitsForEoi) {
  write_rte(io, 4, kLevel | 0x24);
  io.set_irq_level(4, true);
  ASSERT_EQ(sink.messages.size(), 1u);
  EXPECT_TRUE(sink.messages[0].level_triggered);
  EXPECT_EQ(sink.messages[0].vector, 0x24);
  EXPECT_EQ(read_rte(io, 4) & kRemoteIrr, kRemoteIrr);
  io.set_irq_level(4, true);  // still asserted, remote IRR set: nothing more
  io.set_irq_level(4, false);
  io.set_irq_level(4, true);
  EXPECT_EQ(sink.messages.size(), 1u);
  io.end_of_interrupt(0x25);  // another vector: nothing
  EXPECT_EQ(sink.messages.size(), 1u);
  EXPECT_EQ(io.redirection_entry(4) & kRemoteIrr, kRemoteIrr);
}

TEST_F(IoapicFixture, EoiWithTheLineStillHighDeliversAgain) {
  write_rte(io, 4, kLevel | 0x24);
  io.set_irq_level(4, true);
  io.end_of_interrupt(0x24);
  ASSERT_EQ(sink.messages.size(), 2u);
  EXPECT_EQ(io.redirection_entry(4) & kRemoteIrr, kRemoteIrr);  // set again by the new message
  EXPECT_EQ(io.deliveries(4), 2u);
}

TEST_F(IoapicFixture, EoiWithTheLineLowDoesNotDeliver) {
  write_rte(io, 4, kLevel | 0x24);
  io.set_irq_level(4, true);
  io.set_irq_level(4, false);
  io.end_of_interrupt(0x24);
  EXPECT_EQ(sink.messages.size(), 1u);
  EXPECT_EQ(io.redirection_entry(4) & kRemoteIrr, 0u);
  io.set_irq_level(4, true);  // the next assertion is delivered
  EXPECT_EQ(sink.messages.size(), 2u);
}

TEST_F(IoapicFixture, EoiClearsEveryLevelPinWithTheVector) {
  write_rte(io, 10, kLevel | 0x50);
  write_rte(io, 11, kLevel | 0x50);
  write_rte(io, 12, kLevel | 0x51);
  io.set_irq_level(10, true);
  io.set_irq_level(11, true);
  io.set_irq_level(12, true);
  io.set_irq_level(10, false);
  io.set_irq_level(11, false);
  io.end_of_interrupt(0x50);
  EXPECT_EQ(io.redirection_entry(10) & kRemoteIrr, 0u);
  EXPECT_EQ(io.redirection_entry(11) & kRemoteIrr, 0u);
  EXPECT_EQ(io.redirection_entry(12) & kRemoteIrr, kRemoteIrr);
  EXPECT_EQ(sink.messages.size(), 3u);
}

TEST_F(IoapicFixture, ActiveLowPinsAssertOnALowLine) {
  // Edge, active low: a falling line is the effective rising edge.
  write_rte(io, 9, kActiveLow | 0x39);
  io.set_irq_level(9, true);  // idle high: not asserted
  EXPECT_TRUE(sink.messages.empty());
  io.set_irq_level(9, false);
  ASSERT_EQ(sink.messages.size(), 1u);
  EXPECT_EQ(sink.messages[0].vector, 0x39);
  io.set_irq_level(9, true);
  EXPECT_EQ(sink.messages.size(), 1u);

  // Level, active low (the PCI INTx convention): asserted while low.
  write_rte(io, 16, kActiveLow | kLevel | 0x60);
  EXPECT_EQ(sink.messages.size(), 1u);  // no device has driven the line yet: not asserted
  io.set_irq_level(16, true);
  EXPECT_EQ(sink.messages.size(), 1u);
  io.set_irq_level(16, false);
  ASSERT_EQ(sink.messages.size(), 2u);
  EXPECT_EQ(sink.messages[1].pin, 16);
  io.set_irq_level(16, true);  // de-asserted
  io.end_of_interrupt(0x60);
  EXPECT_EQ(sink.messages.size(), 2u);
  EXPECT_EQ(io.redirection_entry(16) & kRemoteIrr, 0u);
}

TEST_F(IoapicFixture, UnmaskingAnAssertedLevelLineDelivers) {
  write_rte(io, 5, kMasked | kLevel | 0x45);
  io.set_irq_level(5, true);
  EXPECT_TRUE(sink.messages.empty());
  write_rte(io, 5, kLevel | 0x45);  // unmask
  ASSERT_EQ(sink.messages.size(), 1u);
  EXPECT_EQ(sink.messages[0].vector, 0x45);
  write_rte(io, 5, kLevel | 0x45);  // rewriting with remote IRR set: no second message
  EXPECT_EQ(sink.messages.size(), 1u);
  EXPECT_EQ(io.redirection_entry(5) & kRemoteIrr, kRemoteIrr);
}

TEST_F(IoapicFixture, UnmaskingAnAssertedEdgeLineDoesNotDeliver) {
  write_rte(io, 6, kMasked | 0x46);
  io.set_irq_level(6, true);
  write_rte(io, 6, 0x46);
  EXPECT_TRUE(sink.messages.empty());
  io.set_irq_level(6, false);
  io.set_irq_level(6, true);
  EXPECT_EQ(sink.messages.size(), 1u);
}

TEST_F(IoapicFixture, DestinationLogicalModeAndDeliveryModePassThrough) {
  // Vector 0x77, delivery mode 1 (lowest priority), logical, level, destination 0x0c.
  write_rte(io, 20, (0x0cull << 56) | kLevel | Ioapic::kRteLogicalDestination | (1u << 8) | 0x77);
  io.set_irq_level(20, true);
  ASSERT_EQ(sink.messages.size(), 1u);
  const IoapicMessage& m = sink.messages[0];
  EXPECT_EQ(m.vector, 0x77);
  EXPECT_EQ(m.delivery_mode, 1);
  EXPECT_TRUE(m.logical_destination);
  EXPECT_EQ(m.destination, 0x0c);
  EXPECT_TRUE(m.level_triggered);
  EXPECT_EQ(m.pin, 20);

  // Physical, NMI (4), edge, destination 3.
  write_rte(io, 21, (3ull << 56) | (4u << 8));
  io.set_irq_level(21, true);
  ASSERT_EQ(sink.messages.size(), 2u);
  EXPECT_EQ(sink.messages[1].delivery_mode, 4);
  EXPECT_FALSE(sink.messages[1].logical_destination);
  EXPECT_EQ(sink.messages[1].destination, 3);
  EXPECT_FALSE(sink.messages[1].level_triggered);
}

TEST_F(IoapicFixture, ReadOnlyBitsIgnoreWritesAndEdgeClearsRemoteIrr) {
  // Delivery status and remote IRR written as 1 on an idle pin read 0.
  write_rte(io, 8, kLevel | kMasked | kRemoteIrr | Ioapic::kRteDeliveryStatus | 0x28);
  EXPECT_EQ(io.redirection_entry(8), kLevel | kMasked | 0x28);
  // Remote IRR set by a delivery survives a level write that tries to clear it...
  write_rte(io, 8, kLevel | 0x28);
  io.set_irq_level(8, true);
  ASSERT_EQ(sink.messages.size(), 1u);
  write_rte(io, 8, kLevel | 0x28);
  EXPECT_EQ(io.redirection_entry(8) & kRemoteIrr, kRemoteIrr);
  EXPECT_EQ(sink.messages.size(), 1u);
  // ...and a write that selects edge trigger clears it.
  write_rte(io, 8, 0x28);
  EXPECT_EQ(io.redirection_entry(8) & kRemoteIrr, 0u);
  EXPECT_EQ(io.redirection_entry(8) & Ioapic::kRteDeliveryStatus, 0u);
}

TEST(GuestIoapic, WithoutASinkMessagesAreCountedAndStateStillChanges) {
  Ioapic io(0);
  write_rte(io, 4, kLevel | 0x24);
  io.set_irq_level(4, true);
  EXPECT_EQ(io.counters().messages_without_sink, 1u);
  EXPECT_EQ(io.deliveries(4), 1u);
  EXPECT_EQ(io.redirection_entry(4) & kRemoteIrr, kRemoteIrr);
  io.set_irq_level(30, true);  // no such pin
  EXPECT_EQ(io.counters().bad_pin_inputs, 1u);
  EXPECT_FALSE(io.line_level(30));
  EXPECT_TRUE(io.line_level(4));
}

// The sink may call back into the device (a vlapic that EOIs at once): the state it sees is
// already updated, so the EOI re-delivers exactly once per call and nothing recurses forever.
TEST(GuestIoapic, ASinkThatEoisAtOnceSeesRemoteIrrSet) {
  struct Reentrant {
    Ioapic* io = nullptr;
    int calls = 0;
    static void put(void* ctx, const IoapicMessage& m) {
      auto* self = static_cast<Reentrant*>(ctx);
      ++self->calls;
      EXPECT_NE(self->io->redirection_entry(m.pin) & Ioapic::kRteRemoteIrr, 0u);
      if (self->calls == 1) {
        self->io->set_irq_level(m.pin, false);  // the handler quiets the device, then EOIs
        self->io->end_of_interrupt(m.vector);
      }
    }
  };
  Ioapic io(0);
  Reentrant r;
  r.io = &io;
  io.set_delivery_sink(&Reentrant::put, &r);
  write_rte(io, 4, kLevel | 0x24);
  io.set_irq_level(4, true);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(io.redirection_entry(4) & Ioapic::kRteRemoteIrr, 0u);
}

}  // namespace
}  // namespace lantern::guest
