// String port I/O (guest/string_io.h): INS/OUTS element by element against a fake linear memory
// and a recording port device; REP counts, the direction flag, address-size wrap, the per-call
// bound, and memory errors.
#include "guest/string_io.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

namespace lantern::guest {
namespace {

class FakeLinearMemory final : public GuestLinearMemory {
 public:
  std::map<uint64_t, uint8_t> bytes;  // mapped linear bytes
  Result<void> read(uint64_t linear, uint8_t* out, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      if (!bytes.count(linear + i)) return make_error(ErrorCode::kNotFound, "not mapped", linear + i);
    }
    for (size_t i = 0; i < n; ++i) out[i] = bytes[linear + i];
    return ok();
  }
  Result<void> write(uint64_t linear, const uint8_t* in, size_t n) override {
    for (size_t i = 0; i < n; ++i) {
      if (!bytes.count(linear + i)) return make_error(ErrorCode::kNotFound, "not mapped", linear + i);
    }
    for (size_t i = 0; i < n; ++i) bytes[linear + i] = in[i];
    return ok();
  }
  void map(uint64_t linear, size_t n, uint8_t fill = 0) {
    for (size_t i = 0; i < n; ++i) bytes[linear + i] = fill;
  }
};

class RecordingPort final : public PortDevice {
 public:
  std::vector<std::pair<uint8_t, uint32_t>> writes;  // (width, value)
  uint32_t next_read = 0x11223344;
  uint32_t reads = 0;
  uint32_t port_read(uint16_t, uint8_t) override {
    ++reads;
    return next_read++;
  }
  void port_write(uint16_t, uint8_t width, uint32_t value) override { writes.emplace_back(width, value); }
};

constexpr uint16_t kPort = 0x3f8;

class StringIoTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(bus.register_range(kPort, 1, &port).has_value()); }
  PortBus bus;
  RecordingPort port;
  FakeLinearMemory memory;
};

TEST_F(StringIoTest, RepOutsbWritesEachByteInOrderAndCountsDown) {
  const char text[] = "hi!";
  for (int i = 0; i < 3; ++i) memory.bytes[0x1000 + i] = static_cast<uint8_t>(text[i]);
  StringIoRegisters regs{.rsi = 0x1000, .rdi = 0, .rcx = 3, .direction_down = false};
  const StringIoOp op{
      .in = false, .width = 1, .rep = true, .address_bits = 32, .segment_base = 0, .port = kPort};
  auto r = run_string_io(op, regs, memory, bus, 100);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->elements, 3u);
  ASSERT_EQ(port.writes.size(), 3u);
  EXPECT_EQ(port.writes[0].second, static_cast<uint32_t>('h'));
  EXPECT_EQ(port.writes[2].second, static_cast<uint32_t>('!'));
  EXPECT_EQ(regs.rsi, 0x1003u);
  EXPECT_EQ(regs.rcx, 0u);
}

TEST_F(StringIoTest, InswStoresLittleEndianAndTheDirectionFlagMovesDown) {
  memory.map(0x2000, 8);
  StringIoRegisters regs{.rsi = 0, .rdi = 0x2004, .rcx = 2, .direction_down = true};
  const StringIoOp op{
      .in = true, .width = 2, .rep = true, .address_bits = 64, .segment_base = 0, .port = kPort};
  auto r = run_string_io(op, regs, memory, bus, 100);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(port.reads, 2u);
  EXPECT_EQ(memory.bytes[0x2004], 0x44);  // first element at the starting RDI
  EXPECT_EQ(memory.bytes[0x2005], 0x33);
  EXPECT_EQ(memory.bytes[0x2002], 0x45);  // second element 2 bytes below
  EXPECT_EQ(memory.bytes[0x2003], 0x33);
  EXPECT_EQ(regs.rdi, 0x2000u);
}

TEST_F(StringIoTest, WithoutRepOneElementMovesAndRcxIsUntouched) {
  memory.map(0x3000, 4, 0xab);
  StringIoRegisters regs{.rsi = 0x3000, .rdi = 0, .rcx = 0x55, .direction_down = false};
  const StringIoOp op{
      .in = false, .width = 4, .rep = false, .address_bits = 32, .segment_base = 0, .port = kPort};
  auto r = run_string_io(op, regs, memory, bus, 100);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->complete);
  ASSERT_EQ(port.writes.size(), 1u);
  EXPECT_EQ(port.writes[0], std::make_pair(uint8_t{4}, 0xababababu));
  EXPECT_EQ(regs.rsi, 0x3004u);
  EXPECT_EQ(regs.rcx, 0x55u);
}

TEST_F(StringIoTest, RepWithACountOfZeroMovesNothing) {
  StringIoRegisters regs{.rsi = 0x1000, .rdi = 0, .rcx = 0xffffffff00000000ull, .direction_down = false};
  const StringIoOp op{
      .in = false, .width = 1, .rep = true, .address_bits = 32, .segment_base = 0, .port = kPort};
  auto r = run_string_io(op, regs, memory, bus, 100);
  ASSERT_TRUE(r.has_value());  // ECX is 0: the upper half of RCX is not the count
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->elements, 0u);
  EXPECT_TRUE(port.writes.empty());
  EXPECT_EQ(regs.rsi, 0x1000u);
}

TEST_F(StringIoTest, AtMostMaxElementsPerCallThenIncompleteAndResumable) {
  memory.map(0x4000, 10, 'x');
  StringIoRegisters regs{.rsi = 0x4000, .rdi = 0, .rcx = 10, .direction_down = false};
  const StringIoOp op{
      .in = false, .width = 1, .rep = true, .address_bits = 64, .segment_base = 0, .port = kPort};
  auto first = run_string_io(op, regs, memory, bus, 4);
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(first->complete);
  EXPECT_EQ(first->elements, 4u);
  EXPECT_EQ(regs.rcx, 6u);
  EXPECT_EQ(regs.rsi, 0x4004u);
  auto second = run_string_io(op, regs, memory, bus, 100);
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(second->complete);
  EXPECT_EQ(second->elements, 6u);
  EXPECT_EQ(port.writes.size(), 10u);
}

TEST_F(StringIoTest, SixteenBitAddressSizeWrapsSiAndCxAndKeepsTheUpperBits) {
  memory.map(0x10000 + 0xffff, 1, 'a');  // segment base 0x10000, SI 0xffff
  memory.map(0x10000, 1, 'b');           // SI wraps to 0
  StringIoRegisters regs{.rsi = 0xabcd0000ffffull, .rdi = 0, .rcx = 0x77770002ull, .direction_down = false};
  const StringIoOp op{
      .in = false, .width = 1, .rep = true, .address_bits = 16, .segment_base = 0x10000, .port = kPort};
  auto r = run_string_io(op, regs, memory, bus, 100);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->complete);
  ASSERT_EQ(port.writes.size(), 2u);
  EXPECT_EQ(port.writes[0].second, static_cast<uint32_t>('a'));
  EXPECT_EQ(port.writes[1].second, static_cast<uint32_t>('b'));
  EXPECT_EQ(regs.rsi, 0xabcd00000001ull);
  EXPECT_EQ(regs.rcx, 0x77770000ull);
}

TEST_F(StringIoTest, ThirtyTwoBitAddressSizeZeroExtendsTheRegisters) {
  memory.map(0xfffffffeull, 2, 'z');
  StringIoRegisters regs{
      .rsi = 0x12345678fffffffeull, .rdi = 0, .rcx = 0xffff000000000001ull, .direction_down = false};
  const StringIoOp op{
      .in = false, .width = 2, .rep = true, .address_bits = 32, .segment_base = 0, .port = kPort};
  auto r = run_string_io(op, regs, memory, bus, 100);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(regs.rsi, 0u);  // ESI wrapped to 0, RSI zero-extended
  EXPECT_EQ(regs.rcx, 0u);
}

TEST_F(StringIoTest, AnUnmappedSourceStopsBeforeThePortAndKeepsTheRegistersOfTheMovedElements) {
  memory.map(0x5000, 1, 'q');  // 0x5001 is not mapped
  StringIoRegisters regs{.rsi = 0x5000, .rdi = 0, .rcx = 3, .direction_down = false};
  const StringIoOp op{
      .in = false, .width = 1, .rep = true, .address_bits = 32, .segment_base = 0, .port = kPort};
  auto r = run_string_io(op, regs, memory, bus, 100);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(port.writes.size(), 1u);
  EXPECT_EQ(regs.rsi, 0x5001u);
  EXPECT_EQ(regs.rcx, 2u);
}

TEST_F(StringIoTest, InsFromAnUnclaimedPortStoresAllOnesAndIsCounted) {
  memory.map(0x6000, 4);
  StringIoRegisters regs{.rsi = 0, .rdi = 0x6000, .rcx = 4, .direction_down = false};
  const StringIoOp op{
      .in = true, .width = 1, .rep = true, .address_bits = 32, .segment_base = 0, .port = 0x2fe};
  auto r = run_string_io(op, regs, memory, bus, 100);
  ASSERT_TRUE(r.has_value());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(memory.bytes[0x6000 + i], 0xff);
  EXPECT_EQ(bus.unclaimed().port_reads, 4u);
}

TEST_F(StringIoTest, RefusesWidthsAndAddressSizesTheCpuDoesNotHave) {
  StringIoRegisters regs{};
  StringIoOp op{.in = false, .width = 3, .rep = false, .address_bits = 32, .segment_base = 0, .port = kPort};
  EXPECT_EQ(run_string_io(op, regs, memory, bus, 1).error().code, ErrorCode::kInvalidArgument);
  op.width = 1;
  op.address_bits = 8;
  EXPECT_EQ(run_string_io(op, regs, memory, bus, 1).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(port.writes.empty());
}

}  // namespace
}  // namespace lantern::guest
