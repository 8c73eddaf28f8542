#include "guest/io_bus.h"

#include <gtest/gtest.h>

#include <map>

namespace lantern::guest {
namespace {

class RecordingPorts : public PortDevice {
 public:
  uint32_t port_read(uint16_t port, uint8_t width) override {
    last_width = width;
    return values.count(port) ? values[port] : 0x12345678;
  }
  void port_write(uint16_t port, uint8_t width, uint32_t value) override {
    last_width = width;
    values[port] = value;
  }
  std::map<uint16_t, uint32_t> values;
  uint8_t last_width = 0;
};

class RecordingMmio : public MmioDevice {
 public:
  uint64_t mmio_read(uint64_t offset, uint8_t) override { return 0x1000 + offset; }
  void mmio_write(uint64_t offset, uint8_t, uint64_t value) override { writes[offset] = value; }
  std::map<uint64_t, uint64_t> writes;
};

TEST(GuestPortBus, DispatchesToTheClaimingDeviceAndMasksToWidth) {
  PortBus bus;
  RecordingPorts uart;
  ASSERT_TRUE(bus.register_range(0x3f8, 8, &uart).has_value());
  bus.write(0x3f8, 1, 0x1ff);
  EXPECT_EQ(uart.values[0x3f8], 0xffu);
  EXPECT_EQ(bus.read(0x3f8, 1), 0xffu);
  EXPECT_EQ(bus.read(0x3ff, 2), 0x5678u);
  EXPECT_EQ(uart.last_width, 2);
  EXPECT_EQ(bus.device_at(0x400), nullptr);
  EXPECT_EQ(bus.unclaimed().port_reads, 0u);
}

TEST(GuestPortBus, UnclaimedPortsReadAllOnesAndAreCountedPerPort) {
  PortBus bus;
  EXPECT_EQ(bus.read(0x70, 1), 0xffu);
  EXPECT_EQ(bus.read(0x70, 2), 0xffffu);
  EXPECT_EQ(bus.read(0x71, 4), 0xffffffffu);
  bus.write(0x70, 1, 0);
  EXPECT_EQ(bus.unclaimed().port_reads, 3u);
  EXPECT_EQ(bus.unclaimed().port_writes, 1u);
  ASSERT_EQ(bus.unclaimed_port_count(), 2u);
  EXPECT_EQ(bus.unclaimed_ports()[0].port, 0x70);
  EXPECT_EQ(bus.unclaimed_ports()[0].reads, 2u);
  EXPECT_EQ(bus.unclaimed_ports()[0].writes, 1u);
  EXPECT_EQ(bus.unclaimed_ports()[1].port, 0x71);
}

TEST(GuestPortBus, RepeatedAndAlternatingUnclaimedPortsKeepTheirOwnCounts) {
  PortBus bus;
  for (int i = 0; i < 3; ++i) bus.write(0x80, 1, 0);
  bus.write(0x81, 1, 0);
  bus.write(0x80, 1, 0);
  (void)bus.read(0x81, 1);
  (void)bus.read(0x81, 1);
  ASSERT_EQ(bus.unclaimed_port_count(), 2u);
  EXPECT_EQ(bus.unclaimed_ports()[0].port, 0x80);
  EXPECT_EQ(bus.unclaimed_ports()[0].writes, 4u);
  EXPECT_EQ(bus.unclaimed_ports()[0].reads, 0u);
  EXPECT_EQ(bus.unclaimed_ports()[1].port, 0x81);
  EXPECT_EQ(bus.unclaimed_ports()[1].writes, 1u);
  EXPECT_EQ(bus.unclaimed_ports()[1].reads, 2u);
}

TEST(GuestPortBus, ResolvedDeviceOverloadsMatchTheLookupOnes) {
  PortBus bus;
  RecordingPorts dev;
  ASSERT_TRUE(bus.register_range(0x60, 4, &dev).has_value());
  bus.write(bus.device_at(0x61), 0x61, 2, 0x1abcd);
  EXPECT_EQ(dev.values[0x61], 0xabcdu);
  EXPECT_EQ(bus.read(bus.device_at(0x61), 0x61, 1), 0xcdu);
  EXPECT_EQ(bus.read(bus.device_at(0x61), 0x61, 3), 0xffffffffu);  // bad width: unclaimed
  EXPECT_EQ(bus.read(bus.device_at(0x70), 0x70, 1), 0xffu);
  bus.write(nullptr, 0x70, 1, 0);
  EXPECT_EQ(bus.unclaimed().port_reads, 2u);
  EXPECT_EQ(bus.unclaimed().port_writes, 1u);
}

TEST(GuestPortBus, BadWidthIsUnclaimedNotDispatched) {
  PortBus bus;
  RecordingPorts dev;
  ASSERT_TRUE(bus.register_range(0x80, 1, &dev).has_value());
  EXPECT_EQ(bus.read(0x80, 3), 0xffffffffu);
  EXPECT_EQ(dev.last_width, 0);
  EXPECT_EQ(bus.unclaimed().port_reads, 1u);
}

TEST(GuestPortBus, TableOfDistinctUnclaimedPortsIsBoundedAndCountsTheOverflow) {
  PortBus bus;
  for (uint32_t p = 0; p < PortBus::kMaxUnclaimedPorts + 10; ++p) bus.write(p, 1, 0);
  EXPECT_EQ(bus.unclaimed_port_count(), PortBus::kMaxUnclaimedPorts);
  EXPECT_EQ(bus.unclaimed_ports_dropped(), 10u);
  EXPECT_EQ(bus.unclaimed().port_writes, PortBus::kMaxUnclaimedPorts + 10);
}

TEST(GuestPortBus, RefusesOverlapEmptyAndOutOfRangeRegistrations) {
  PortBus bus;
  RecordingPorts a, b;
  ASSERT_TRUE(bus.register_range(0x510, 2, &a).has_value());
  EXPECT_EQ(bus.register_range(0x511, 1, &b).error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(bus.register_range(0x50f, 2, &b).error().code, ErrorCode::kAlreadyExists);
  EXPECT_TRUE(bus.register_range(0x50f, 1, &b).has_value());
  EXPECT_EQ(bus.register_range(0x600, 0, &b).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(bus.register_range(0xffff, 2, &b).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(bus.register_range(0xffff, 1, &b).has_value());
  EXPECT_EQ(bus.register_range(0x700, 1, nullptr).error().code, ErrorCode::kInvalidArgument);
}

TEST(GuestPortBus, RangeTableFullIsAnError) {
  PortBus bus;
  RecordingPorts dev;
  for (size_t i = 0; i < PortBus::kMaxRanges; ++i)
    ASSERT_TRUE(bus.register_range(static_cast<uint16_t>(i * 2), 1, &dev).has_value());
  EXPECT_EQ(bus.register_range(0x1000, 1, &dev).error().code, ErrorCode::kFull);
}

TEST(GuestMmioBus, DispatchesByWindowWithOffsetsAndCountsUnclaimed) {
  MmioBus bus;
  RecordingMmio ioapic;
  ASSERT_TRUE(bus.register_window(0xfec00000, 0x1000, &ioapic).has_value());
  EXPECT_EQ(bus.read(0xfec00010, 4), 0x1010u);
  bus.write(0xfec00040, 4, 0x1'0000'0001ull);
  EXPECT_EQ(ioapic.writes[0x40], 1u);
  EXPECT_EQ(bus.read(0xfed00000, 4), 0xffffffffu);
  EXPECT_EQ(bus.read(0xfed00000, 8), ~0ull);
  bus.write(0xfed00000, 1, 5);
  EXPECT_EQ(bus.unclaimed().mmio_reads, 2u);
  EXPECT_EQ(bus.unclaimed().mmio_writes, 1u);
  EXPECT_EQ(bus.register_window(0xfec00800, 0x1000, &ioapic).error().code,
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(bus.register_window(~0ull - 10, 0x100, &ioapic).error().code,
            ErrorCode::kInvalidArgument);
}

TEST(GuestMmioBus, ClaimsAnyOfARangeThatMeetsAWindow) {
  MmioBus bus;
  RecordingMmio device;
  ASSERT_TRUE(bus.register_window(0xfec00100, 0x20, &device).has_value());  // inside one page
  EXPECT_TRUE(bus.claims_any_of(0xfec00000, 0x1000));
  EXPECT_TRUE(bus.claims_any_of(0xfec0011f, 1));
  EXPECT_FALSE(bus.claims_any_of(0xfec00120, 0x1000));
  EXPECT_FALSE(bus.claims_any_of(0xfec00000, 0x100));
  EXPECT_FALSE(bus.claims_any_of(0xfed40000, 0x1000));
}

}  // namespace
}  // namespace lantern::guest
