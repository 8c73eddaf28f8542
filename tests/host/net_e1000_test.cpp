// e1000 (82540EM) driver logic against a fake register file and fake DMA memory. The test
// plays the hardware: it completes transmit descriptors (DD, TDH) and fills receive
// descriptors (buffer, length, status, errors, RDH).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "net/e1000/descriptor_ring.h"
#include "net/e1000/e1000_device.h"
#include "net/e1000/e1000_regs.h"
#include "tests/host/net_test_fakes.h"

namespace lantern::net::e1000 {
namespace {

using testing::FakeDma;
using testing::RamMmio;

// A register file with the side effects the driver relies on: CTRL.RST self-clears, EERD
// answers from an EEPROM image, ICR clears on read, IMS/IMC set and clear the mask.
class FakeE1000 : public RamMmio {
 public:
  FakeE1000() : RamMmio(kRegisterWindowBytes) {
    // EEPROM words 0..2: MAC 52:54:00:12:34:56, low byte first (8254x SDM 5.6.1).
    eeprom[0] = 0x5452;
    eeprom[1] = 0x1200;
    eeprom[2] = 0x5634;
    set(Reg::kStatus, status::kLu | status::kFd | (2u << status::kSpeedShift));
  }

  uint32_t read32(uint32_t off) override {
    if (off == static_cast<uint32_t>(Reg::kIcr)) {
      uint32_t v = RamMmio::read32(off);
      RamMmio::write32(off, 0);
      return v;
    }
    return RamMmio::read32(off);
  }

  void write32(uint32_t off, uint32_t v) override {
    switch (static_cast<Reg>(off)) {
      case Reg::kCtrl:
        if (v & ctrl::kRst) {
          ++resets;
          if (!reset_sticks) v &= ~ctrl::kRst;
          RamMmio::write32(static_cast<uint32_t>(Reg::kIms), 0);
        }
        break;
      case Reg::kEerd:
        if ((v & eerd::kStart) && eeprom_present) {
          uint32_t addr = (v >> eerd::kAddrShift) & 0xFF;
          v = (v & 0xFFFF) | eerd::kDone | (uint32_t{eeprom[addr & 63]} << eerd::kDataShift);
        }
        break;
      case Reg::kIms: v |= RamMmio::read32(off); break;
      case Reg::kImc: RamMmio::write32(static_cast<uint32_t>(Reg::kIms), RamMmio::read32(0xD0) & ~v); break;
      default: break;
    }
    RamMmio::write32(off, v);
  }

  uint32_t get(Reg r) { return RamMmio::read32(static_cast<uint32_t>(r)); }
  void set(Reg r, uint32_t v) { RamMmio::write32(static_cast<uint32_t>(r), v); }

  // --- The hardware side ---------------------------------------------------------------

  // Transmits every descriptor in [TDH, TDT): records the frame, sets DD (| extra status).
  void process_tx(FakeDma& dma, uint8_t extra_status = 0, size_t limit = SIZE_MAX) {
    uint32_t count = get(Reg::kTdlen) / 16;
    uint64_t base = (uint64_t{get(Reg::kTdbah)} << 32) | get(Reg::kTdbal);
    while (get(Reg::kTdh) != get(Reg::kTdt) && limit-- > 0) {
      uint32_t head = get(Reg::kTdh);
      auto* d = reinterpret_cast<TxDescriptor*>(dma.translate(base + 16 * head, 16));
      ASSERT_NE(d, nullptr);
      EXPECT_TRUE(d->command & tx_command::kEop);
      EXPECT_TRUE(d->command & tx_command::kRs);
      uint8_t* data = dma.translate(d->buffer_address, d->length);
      ASSERT_NE(data, nullptr);
      sent.emplace_back(data, data + d->length);
      d->status |= tx_status::kDd | extra_status;
      set(Reg::kTdh, (head + 1) % count);
    }
  }

  // Writes one frame into the descriptor at RDH. False if the ring is empty (RDH == RDT).
  bool receive(FakeDma& dma, const std::vector<uint8_t>& frame, uint8_t status_bits, uint8_t errors = 0,
               int length_override = -1) {
    uint32_t count = get(Reg::kRdlen) / 16;
    uint32_t head = get(Reg::kRdh);
    if (head == get(Reg::kRdt)) return false;
    uint64_t base = (uint64_t{get(Reg::kRdbah)} << 32) | get(Reg::kRdbal);
    auto* d = reinterpret_cast<RxDescriptor*>(dma.translate(base + 16 * head, 16));
    EXPECT_NE(d, nullptr);
    EXPECT_EQ(d->status, 0);  // software handed it over clean
    size_t n = std::min<size_t>(frame.size(), kRxBufferBytes);
    uint8_t* buffer = dma.translate(d->buffer_address, kRxBufferBytes);
    EXPECT_NE(buffer, nullptr);
    std::memcpy(buffer, frame.data(), n);
    d->length = static_cast<uint16_t>(length_override >= 0 ? length_override : n);
    d->errors = errors;
    d->status = status_bits;
    set(Reg::kRdh, (head + 1) % count);
    return true;
  }
  bool receive_ok(FakeDma& dma, const std::vector<uint8_t>& frame) {
    return receive(dma, frame, rx_status::kDd | rx_status::kEop);
  }

  uint16_t eeprom[64] = {};
  bool eeprom_present = true;
  bool reset_sticks = false;
  int resets = 0;
  std::vector<std::vector<uint8_t>> sent;
};

std::vector<uint8_t> frame_of(size_t n, uint8_t seed) {
  std::vector<uint8_t> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = static_cast<uint8_t>(seed + i);
  return f;
}

class E1000Test : public ::testing::Test {
 protected:
  void init(E1000Config config = {}) {
    auto r = dev.init(config);
    ASSERT_TRUE(r) << r.error().message;
  }
  size_t poll(std::vector<std::vector<uint8_t>>& out, size_t max = 0) {
    return dev.poll_receive_with([&](std::span<const uint8_t> f) { out.emplace_back(f.begin(), f.end()); },
                                 max);
  }

  FakeE1000 hw;
  FakeDma dma;
  E1000Device dev{hw, dma};
};

// ---- Register and descriptor layout -------------------------------------------------------

TEST(E1000LayoutTest, RegisterOffsetsMatchTheSdm) {
  EXPECT_EQ(static_cast<uint32_t>(Reg::kCtrl), 0x0000u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kStatus), 0x0008u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kEerd), 0x0014u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kIcr), 0x00C0u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kIms), 0x00D0u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kImc), 0x00D8u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kRctl), 0x0100u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kTctl), 0x0400u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kTipg), 0x0410u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kRdt), 0x2818u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kTdt), 0x3818u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kMta), 0x5200u);
  EXPECT_EQ(static_cast<uint32_t>(Reg::kRal0), 0x5400u);
  EXPECT_EQ(tipg::kRecommended, 0x0060200Au);
  StatusRegister s{status::kLu | (1u << status::kSpeedShift)};
  EXPECT_TRUE(s.link_up());
  EXPECT_FALSE(s.full_duplex());
  EXPECT_EQ(s.speed_mbps(), 100u);
}

// ---- Ring bookkeeping ----------------------------------------------------------------------

TEST(DescriptorRingTest, SizesMustBeMultiplesOfEight) {
  DescriptorRing r;
  EXPECT_EQ(r.init(0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.init(12).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.init(65536).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(r.init(8));
  EXPECT_TRUE(r.init(65528));
}

TEST(DescriptorRingTest, HeadTailArithmeticKeepsOneSlotFree) {
  DescriptorRing r;
  ASSERT_TRUE(r.init(8));
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.free_slots(), 7);
  for (uint16_t i = 0; i < 7; ++i) EXPECT_EQ(r.produce(), i);
  EXPECT_TRUE(r.full());
  EXPECT_EQ(r.in_flight(), 7);
  EXPECT_EQ(r.next_to_use(), 7);
  EXPECT_EQ(r.consume(), 0);
  EXPECT_EQ(r.consume(), 1);
  EXPECT_EQ(r.free_slots(), 2);
  EXPECT_EQ(r.produce(), 7);
  EXPECT_EQ(r.produce(), 0);  // wraps
  EXPECT_EQ(r.next_to_use(), 1);
  EXPECT_TRUE(r.full());
  EXPECT_TRUE(r.head_plausible(2));  // == next_to_clean
  EXPECT_TRUE(r.head_plausible(1));  // == next_to_use: everything done
  EXPECT_TRUE(r.head_plausible(5));
  EXPECT_FALSE(r.head_plausible(8));  // outside the ring
  for (int i = 0; i < 7; ++i) (void)r.consume();
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.head_plausible(4));  // nothing in flight: only head == tail is possible
  EXPECT_TRUE(r.head_plausible(1));
}

// ---- Initialisation -------------------------------------------------------------------------

TEST_F(E1000Test, InitProgramsTheDevice) {
  hw.set(Reg::kIcr, intr::kLsc);
  hw.RamMmio::write32(static_cast<uint32_t>(Reg::kMta) + 4 * 5, 0xFFFFFFFF);
  init();
  EXPECT_EQ(hw.resets, 1);
  EXPECT_TRUE(dev.initialized());
  EXPECT_EQ(dev.mac_source(), MacSource::kEeprom);
  EXPECT_EQ(dev.mac(), (MacAddress{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}));
  EXPECT_EQ(hw.get(Reg::kRal0), 0x12005452u);
  EXPECT_EQ(hw.get(Reg::kRah0), 0x5634u | kRahAddressValid);
  EXPECT_EQ(hw.RamMmio::read32(static_cast<uint32_t>(Reg::kMta) + 4 * 5), 0u);
  EXPECT_EQ(hw.get(Reg::kIcr), 0u);  // drained
  EXPECT_EQ(hw.get(Reg::kIms), 0u);  // everything masked
  uint32_t c = hw.get(Reg::kCtrl);
  EXPECT_TRUE(c & ctrl::kSlu);
  EXPECT_FALSE(c & (ctrl::kRst | ctrl::kLrst | ctrl::kPhyRst));
  // Receive ring: the configured number of descriptors, all but one given to hardware.
  constexpr uint32_t kRx = E1000Config{}.rx_descriptors;
  static_assert(kRx == 128, "the default ring must outsize lwIP's TCP window (e1000_device.h)");
  EXPECT_EQ(hw.get(Reg::kRdbal), static_cast<uint32_t>(dev.rx_ring_phys()));
  EXPECT_EQ(dev.rx_ring_phys() % 16, 0u);
  EXPECT_EQ(hw.get(Reg::kRdlen), kRx * 16);
  EXPECT_EQ(hw.get(Reg::kRdh), 0u);
  EXPECT_EQ(hw.get(Reg::kRdt), kRx - 1);
  uint32_t rctl = hw.get(Reg::kRctl);
  EXPECT_TRUE(rctl & rctl::kEn);
  EXPECT_TRUE(rctl & rctl::kBam);
  EXPECT_TRUE(rctl & rctl::kSecrc);
  EXPECT_EQ(rctl & (rctl::kBsizeMask | rctl::kBsex | rctl::kLpe | rctl::kUpe), 0u);
  // Transmit ring: empty.
  EXPECT_EQ(hw.get(Reg::kTdbal), static_cast<uint32_t>(dev.tx_ring_phys()));
  EXPECT_EQ(hw.get(Reg::kTdlen), 32u * 16);
  EXPECT_EQ(hw.get(Reg::kTdh), 0u);
  EXPECT_EQ(hw.get(Reg::kTdt), 0u);
  uint32_t tctl = hw.get(Reg::kTctl);
  EXPECT_TRUE(tctl & tctl::kEn);
  EXPECT_TRUE(tctl & tctl::kPsp);
  EXPECT_EQ((tctl >> tctl::kCtShift) & 0xFF, 0x0Fu);
  EXPECT_EQ((tctl >> tctl::kColdShift) & 0x3FF, 0x40u);
  EXPECT_EQ(hw.get(Reg::kTipg), 0x0060200Au);
  EXPECT_TRUE(dev.link_up());
  EXPECT_EQ(dev.status().speed_mbps(), 1000u);
  EXPECT_EQ(hw.faults, 0u);
}

TEST_F(E1000Test, MacFallsBackToReceiveAddressRegisters) {
  hw.eeprom_present = false;
  hw.set(Reg::kRal0, 0x33221102);
  hw.set(Reg::kRah0, 0x5544 | kRahAddressValid);
  init(E1000Config{.poll_limit = 50});
  EXPECT_EQ(dev.mac_source(), MacSource::kReceiveAddress);
  EXPECT_EQ(dev.mac(), (MacAddress{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}));
}

TEST_F(E1000Test, BlankEepromFallsBackToo) {
  hw.eeprom[0] = hw.eeprom[1] = hw.eeprom[2] = 0xFFFF;  // multicast bit set: not a station MAC
  hw.set(Reg::kRal0, 0x33221102);
  hw.set(Reg::kRah0, 0x5544 | kRahAddressValid);
  init();
  EXPECT_EQ(dev.mac_source(), MacSource::kReceiveAddress);
}

TEST_F(E1000Test, NoMacAnywhereIsNotFound) {
  hw.eeprom_present = false;
  auto r = dev.init(E1000Config{.poll_limit = 10});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(dev.initialized());
  EXPECT_EQ(dev.transmit(frame_of(60, 0)).error().code, ErrorCode::kInvalidState);
  std::vector<std::vector<uint8_t>> got;
  EXPECT_EQ(poll(got), 0u);
}

TEST_F(E1000Test, StuckResetTimesOut) {
  hw.reset_sticks = true;
  int delays = 0;
  static int* counter;
  counter = &delays;
  auto r = dev.init(E1000Config{.poll_limit = 20, .delay_us = [](uint32_t) { ++*counter; }});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_GE(delays, 20);
}

TEST_F(E1000Test, RejectsBadRingSizesAndAllocationFailure) {
  EXPECT_EQ(dev.init(E1000Config{.rx_descriptors = 12}).error().code, ErrorCode::kInvalidArgument);
  dma.fail_after = 2;
  EXPECT_EQ(dev.init().error().code, ErrorCode::kOutOfMemory);
  EXPECT_FALSE(dev.initialized());
}

TEST_F(E1000Test, LinkStateFollowsStatusLu) {
  init();
  EXPECT_TRUE(dev.link_up());
  hw.set(Reg::kStatus, 0);
  EXPECT_FALSE(dev.link_up());
}

TEST_F(E1000Test, InterruptMaskHelpers) {
  init();
  dev.enable_interrupts(intr::kRxt0 | intr::kLsc);
  EXPECT_EQ(hw.get(Reg::kIms), intr::kRxt0 | intr::kLsc);
  hw.set(Reg::kIcr, intr::kRxt0);
  EXPECT_EQ(dev.read_and_clear_interrupt_cause(), intr::kRxt0);
  EXPECT_EQ(dev.read_and_clear_interrupt_cause(), 0u);
  dev.disable_interrupts();
  EXPECT_EQ(hw.get(Reg::kIms), 0u);
}

// ---- Transmit --------------------------------------------------------------------------------

TEST_F(E1000Test, TransmitHandsFramesToHardware) {
  init();
  auto f1 = frame_of(60, 1);
  auto f2 = frame_of(1514, 2);
  ASSERT_TRUE(dev.transmit(f1));
  ASSERT_TRUE(dev.transmit(f2));
  EXPECT_EQ(hw.get(Reg::kTdt), 2u);
  hw.process_tx(dma);
  ASSERT_EQ(hw.sent.size(), 2u);
  EXPECT_EQ(hw.sent[0], f1);
  EXPECT_EQ(hw.sent[1], f2);
  EXPECT_EQ(dev.counters().tx_packets, 2u);
  EXPECT_EQ(dev.counters().tx_bytes, 1574u);
  EXPECT_EQ(dev.reclaim_transmitted(), 2u);
  EXPECT_TRUE(dev.tx_ring().empty());
}

TEST_F(E1000Test, TransmitRejectsBadSizes) {
  init();
  EXPECT_EQ(dev.transmit(frame_of(13, 0)).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(dev.transmit(frame_of(1515, 0)).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(hw.get(Reg::kTdt), 0u);
  EXPECT_EQ(dev.counters().tx_packets, 0u);
}

TEST_F(E1000Test, RingFullIsCountedAndRecovers) {
  init(E1000Config{.rx_descriptors = 8, .tx_descriptors = 8});
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(dev.transmit(frame_of(64, static_cast<uint8_t>(i))));
  auto full = dev.transmit(frame_of(64, 9));
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, ErrorCode::kFull);
  EXPECT_EQ(dev.counters().tx_ring_full, 1u);
  EXPECT_EQ(dev.counters().tx_packets, 7u);
  // The hardware finishes three; the next transmit reclaims them and succeeds.
  hw.process_tx(dma, 0, 3);
  ASSERT_TRUE(dev.transmit(frame_of(64, 10)));
  EXPECT_EQ(dev.tx_ring().in_flight(), 5);
  // Wrap the tail all the way round.
  hw.process_tx(dma);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(dev.transmit(frame_of(64, static_cast<uint8_t>(i))));
    hw.process_tx(dma);
  }
  EXPECT_EQ(hw.sent.size(), 28u);
  EXPECT_EQ(hw.sent.back(), frame_of(64, 19));
  EXPECT_EQ(dev.counters().tx_ring_full, 1u);
}

TEST_F(E1000Test, TransmitErrorsAreCounted) {
  init();
  ASSERT_TRUE(dev.transmit(frame_of(100, 0)));
  hw.process_tx(dma, tx_status::kEc);
  EXPECT_EQ(dev.reclaim_transmitted(), 1u);
  EXPECT_EQ(dev.counters().tx_errors, 1u);
}

// ---- Receive ----------------------------------------------------------------------------------

TEST_F(E1000Test, ReceiveDeliversAndRefills) {
  init(E1000Config{.rx_descriptors = 8, .tx_descriptors = 8});
  EXPECT_EQ(hw.get(Reg::kRdt), 7u);
  std::vector<std::vector<uint8_t>> got;
  EXPECT_EQ(poll(got), 0u);  // nothing yet
  ASSERT_TRUE(hw.receive_ok(dma, frame_of(60, 1)));
  ASSERT_TRUE(hw.receive_ok(dma, frame_of(1514, 2)));
  EXPECT_EQ(poll(got), 2u);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], frame_of(60, 1));
  EXPECT_EQ(got[1], frame_of(1514, 2));
  EXPECT_EQ(dev.counters().rx_packets, 2u);
  EXPECT_EQ(dev.counters().rx_bytes, 1574u);
  EXPECT_EQ(hw.get(Reg::kRdt), 1u);  // two descriptors given back: tail moved 7 -> 1
  EXPECT_EQ(dev.rx_ring().in_flight(), 7);
}

TEST_F(E1000Test, ReceiveWrapsManyTimesWithoutLosingFrames) {
  init(E1000Config{.rx_descriptors = 8, .tx_descriptors = 8});
  std::vector<std::vector<uint8_t>> got;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(hw.receive_ok(dma, frame_of(64 + i, static_cast<uint8_t>(round * 8 + i))));
    }
    EXPECT_EQ(poll(got), 5u);
  }
  ASSERT_EQ(got.size(), 50u);
  EXPECT_EQ(got[49], frame_of(68, 9 * 8 + 4));
}

TEST_F(E1000Test, RingOverrunStopsTheFakeHardware) {
  init(E1000Config{.rx_descriptors = 8, .tx_descriptors = 8});
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(hw.receive_ok(dma, frame_of(64, 0)));
  EXPECT_FALSE(hw.receive_ok(dma, frame_of(64, 0)));  // hardware owns no descriptor
  std::vector<std::vector<uint8_t>> got;
  EXPECT_EQ(poll(got, 3), 3u);  // budget respected
  EXPECT_EQ(poll(got), 4u);
  EXPECT_TRUE(hw.receive_ok(dma, frame_of(64, 0)));
}

TEST_F(E1000Test, ReceiveDropsRuntsOversizeAndErrors) {
  init();
  std::vector<std::vector<uint8_t>> got;
  ASSERT_TRUE(hw.receive_ok(dma, frame_of(13, 0)));  // runt
  ASSERT_TRUE(hw.receive(dma, frame_of(60, 0), rx_status::kDd | rx_status::kEop,
                         rx_errors::kCe));  // CRC
  ASSERT_TRUE(hw.receive(dma, frame_of(60, 0), rx_status::kDd | rx_status::kEop, 0,
                         1600));  // oversize
  ASSERT_TRUE(hw.receive(dma, frame_of(60, 0), rx_status::kDd | rx_status::kEop, 0,
                         60000));                                   // length beyond the buffer
  ASSERT_TRUE(hw.receive(dma, frame_of(2048, 0), rx_status::kDd));  // no EOP...
  ASSERT_TRUE(hw.receive(dma, frame_of(100, 0), rx_status::kDd));   // ...still
  ASSERT_TRUE(hw.receive_ok(dma, frame_of(10, 0)));                 // ...end
  ASSERT_TRUE(hw.receive(dma, frame_of(60, 5), rx_status::kDd | rx_status::kEop,
                         rx_errors::kIpe));          // checksum-offload bit only: delivered
  ASSERT_TRUE(hw.receive_ok(dma, frame_of(14, 7)));  // smallest acceptable
  EXPECT_EQ(poll(got), 2u);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], frame_of(60, 5));
  EXPECT_EQ(got[1], frame_of(14, 7));
  const NicCounters& c = dev.counters();
  EXPECT_EQ(c.rx_runts, 1u);
  EXPECT_EQ(c.rx_errors, 1u);
  EXPECT_EQ(c.rx_oversize, 3u);  // 1600, 60000, and the three-descriptor frame once
  EXPECT_EQ(c.rx_drops, 4u);
  EXPECT_EQ(c.rx_packets, 2u);
  EXPECT_EQ(dev.rx_ring().in_flight(), E1000Config{}.rx_descriptors - 1);  // every descriptor went back
}

TEST_F(E1000Test, ReinitKeepsBuffersAndResetsRings) {
  init();
  ASSERT_TRUE(dev.transmit(frame_of(64, 0)));
  int allocations = dma.allocations;
  init();
  EXPECT_EQ(dma.allocations, allocations);
  EXPECT_EQ(hw.resets, 2);
  EXPECT_TRUE(dev.tx_ring().empty());
  EXPECT_EQ(hw.get(Reg::kTdt), 0u);
  EXPECT_EQ(dev.init(E1000Config{.rx_descriptors = 64}).error().code, ErrorCode::kInvalidState);
}

}  // namespace
}  // namespace lantern::net::e1000
