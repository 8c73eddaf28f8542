// virtio-net driver logic over a fake modern virtio-pci device: a common-configuration model
// (feature select, status, per-queue registers), RAM notify/ISR/device windows, and a device
// backend that walks the driver's virtqueues in fake DMA memory.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "net/virtio/virtio_net.h"
#include "net/virtio/virtio_pci.h"
#include "tests/host/net_test_fakes.h"

namespace lantern::net::virtio {
namespace {

using testing::FakeDma;
using testing::RamMmio;

class FakeCommonCfg : public MmioWindow {
 public:
  struct Queue {
    uint16_t max = 256;
    uint16_t size = 0;
    uint16_t msix = kNoVector;
    uint16_t enable = 0;
    uint16_t notify_off = 0;
    uint64_t desc = 0, driver = 0, device = 0;
  };

  uint8_t read8(uint32_t off) override { return static_cast<uint8_t>(read(off, 1)); }
  uint16_t read16(uint32_t off) override { return static_cast<uint16_t>(read(off, 2)); }
  uint32_t read32(uint32_t off) override { return static_cast<uint32_t>(read(off, 4)); }
  void write8(uint32_t off, uint8_t v) override { write(off, 1, v); }
  void write16(uint32_t off, uint16_t v) override { write(off, 2, v); }
  void write32(uint32_t off, uint32_t v) override { write(off, 4, v); }

  Queue& queue(uint16_t i) { return queues[i]; }

  uint64_t device_features = feature::kVersion1 | feature::kNetMac | feature::kNetStatus |
                             feature::kRingEventIdx | feature::kNetCsum | feature::kNetMrgRxbuf |
                             feature::kNetCtrlVq;
  uint64_t driver_features = 0;
  uint8_t status = 0x7F;  // garbage until reset
  uint8_t generation = 0;
  uint16_t num_queues = 3;
  uint16_t msix_config = kNoVector;
  bool refuse_features_ok = false;
  bool accept_msix = true;
  std::vector<uint8_t> status_writes;
  Queue queues[4];
  int width_errors = 0;

 private:
  uint64_t read(uint32_t off, int width) {
    Queue& q = queues[select_ & 3];
    switch (off) {
      case common_cfg::kDeviceFeatureSelect: return check(width, 4, dfsel_);
      case common_cfg::kDeviceFeature:
        return check(width, 4,
                     dfsel_ == 0   ? device_features & 0xFFFFFFFF
                     : dfsel_ == 1 ? device_features >> 32
                                   : 0);
      case common_cfg::kDriverFeatureSelect: return check(width, 4, drvsel_);
      case common_cfg::kNumQueues: return check(width, 2, num_queues);
      case common_cfg::kMsixConfig: return check(width, 2, msix_config);
      case common_cfg::kDeviceStatus: return check(width, 1, status);
      case common_cfg::kConfigGeneration: return check(width, 1, generation);
      case common_cfg::kQueueSelect: return check(width, 2, select_);
      case common_cfg::kQueueSize: return check(width, 2, q.size ? q.size : q.max);
      case common_cfg::kQueueMsixVector: return check(width, 2, q.msix);
      case common_cfg::kQueueEnable: return check(width, 2, q.enable);
      case common_cfg::kQueueNotifyOff: return check(width, 2, q.notify_off);
      default: ++width_errors; return 0;
    }
  }
  uint64_t check(int width, int expected, uint64_t v) {
    if (width != expected) ++width_errors;
    return v;
  }
  static void set_half(uint64_t& field, uint32_t off, uint32_t base, uint32_t v) {
    if (off == base)
      field = (field & ~0xFFFFFFFFull) | v;
    else
      field = (field & 0xFFFFFFFFull) | (uint64_t{v} << 32);
  }
  void write(uint32_t off, int width, uint32_t v) {
    Queue& q = queues[select_ & 3];
    switch (off) {
      case common_cfg::kDeviceFeatureSelect:
        check(width, 4, 0);
        dfsel_ = v;
        return;
      case common_cfg::kDriverFeatureSelect:
        check(width, 4, 0);
        drvsel_ = v;
        return;
      case common_cfg::kDriverFeature:
        check(width, 4, 0);
        if (drvsel_ < 2) set_half(driver_features, drvsel_ == 0 ? 0 : 4, 0, v);
        return;
      case common_cfg::kMsixConfig:
        check(width, 2, 0);
        msix_config = v;
        return;
      case common_cfg::kDeviceStatus:
        check(width, 1, 0);
        status_writes.push_back(static_cast<uint8_t>(v));
        if (v == 0) {
          status = 0;
          driver_features = 0;
          for (Queue& each : queues) each = Queue{each.max, 0, kNoVector, 0, each.notify_off};
          return;
        }
        if (refuse_features_ok) v &= ~device_status::kFeaturesOk;
        status = static_cast<uint8_t>(v);
        return;
      case common_cfg::kQueueSelect:
        check(width, 2, 0);
        select_ = static_cast<uint16_t>(v);
        return;
      case common_cfg::kQueueSize:
        check(width, 2, 0);
        q.size = static_cast<uint16_t>(v);
        return;
      case common_cfg::kQueueMsixVector:
        check(width, 2, 0);
        q.msix = accept_msix ? static_cast<uint16_t>(v) : kNoVector;
        return;
      case common_cfg::kQueueEnable:
        check(width, 2, 0);
        q.enable = static_cast<uint16_t>(v);
        return;
      case common_cfg::kQueueDesc:
      case common_cfg::kQueueDesc + 4:
        check(width, 4, 0);
        set_half(q.desc, off, common_cfg::kQueueDesc, v);
        return;
      case common_cfg::kQueueDriver:
      case common_cfg::kQueueDriver + 4:
        check(width, 4, 0);
        set_half(q.driver, off, common_cfg::kQueueDriver, v);
        return;
      case common_cfg::kQueueDevice:
      case common_cfg::kQueueDevice + 4:
        check(width, 4, 0);
        set_half(q.device, off, common_cfg::kQueueDevice, v);
        return;
      default: ++width_errors; return;
    }
  }
  uint32_t dfsel_ = 0;
  uint32_t drvsel_ = 0;
  uint16_t select_ = 0;
};

// The device side of one queue, read from the addresses the driver programmed.
struct DeviceQueue {
  FakeDma* dma;
  FakeCommonCfg::Queue* q;
  uint16_t last_avail = 0;

  VirtqDesc* desc() { return reinterpret_cast<VirtqDesc*>(dma->translate(q->desc)); }
  uint16_t* avail() { return reinterpret_cast<uint16_t*>(dma->translate(q->driver)); }
  uint16_t* used() { return reinterpret_cast<uint16_t*>(dma->translate(q->device)); }
  bool pending() { return last_avail != avail()[1]; }
  uint16_t pop() { return avail()[2 + (last_avail++ & (q->size - 1))]; }
  void push_used(uint32_t id, uint32_t len) {
    auto* ring = reinterpret_cast<VirtqUsedElem*>(used() + 2);
    ring[used()[1] & (q->size - 1)] = VirtqUsedElem{id, len};
    used()[1] = static_cast<uint16_t>(used()[1] + 1);
  }
};

class VirtioNetTest : public ::testing::Test {
 protected:
  VirtioNetTest() : notify(0x1000), isr(4), device_cfg(0x100) {
    const uint8_t mac[6] = {0x52, 0x54, 0x00, 0xAB, 0xCD, 0xEF};
    std::memcpy(device_cfg.bytes().data(), mac, 6);
    device_cfg.write16(net_cfg::kStatus, net_cfg::kStatusLinkUp);
    common.queues[0].notify_off = 0;
    common.queues[1].notify_off = 1;
  }
  VirtioPciWindows windows() { return VirtioPciWindows{&common, &notify, 0x1000, 4, &isr, &device_cfg}; }
  void init(VirtioNetConfig config = {}) {
    auto r = dev.init(config);
    ASSERT_TRUE(r) << r.error().message;
    rxq = DeviceQueue{&dma, &common.queues[kReceiveQueue]};
    txq = DeviceQueue{&dma, &common.queues[kTransmitQueue]};
  }
  // Device transmits everything the driver queued; returns the frames (header checked).
  std::vector<std::vector<uint8_t>> device_transmit() {
    std::vector<std::vector<uint8_t>> frames;
    while (txq.pending()) {
      uint16_t head = txq.pop();
      const VirtqDesc& d = txq.desc()[head];
      EXPECT_EQ(d.flags & (desc_flags::kWrite | desc_flags::kNext), 0);
      uint8_t* p = dma.translate(d.addr, d.len);
      EXPECT_NE(p, nullptr);
      EXPECT_GE(d.len, 12u);
      for (int i = 0; i < 12; ++i) EXPECT_EQ(p[i], 0) << "header byte " << i;
      frames.emplace_back(p + 12, p + d.len);
      txq.push_used(head, 0);
    }
    return frames;
  }
  // Device receives one frame into the next receive buffer.
  bool device_receive(const std::vector<uint8_t>& frame, int len_override = -1) {
    if (!rxq.pending()) return false;
    uint16_t head = rxq.pop();
    const VirtqDesc& d = rxq.desc()[head];
    EXPECT_EQ(d.flags, desc_flags::kWrite);
    EXPECT_GE(d.len, 12 + frame.size());
    uint8_t* p = dma.translate(d.addr, d.len);
    EXPECT_NE(p, nullptr);
    VirtioNetHdr hdr{};
    hdr.num_buffers = 1;
    std::memcpy(p, &hdr, 12);
    std::memcpy(p + 12, frame.data(), frame.size());
    rxq.push_used(head, len_override >= 0 ? uint32_t(len_override) : uint32_t(12 + frame.size()));
    return true;
  }
  size_t poll(std::vector<std::vector<uint8_t>>& out) {
    return dev.poll_receive_with([&](std::span<const uint8_t> f) { out.emplace_back(f.begin(), f.end()); });
  }
  size_t notifies_for(uint16_t queue) {
    size_t n = 0;
    for (auto& [off, value] : notify.write_log) {
      if (off == common.queues[queue].notify_off * 4u && value == queue) ++n;
    }
    return n;
  }

  FakeCommonCfg common;
  RamMmio notify;
  RamMmio isr;
  RamMmio device_cfg;
  FakeDma dma;
  VirtioNetDevice dev{windows(), dma};
  DeviceQueue rxq{};
  DeviceQueue txq{};
};

std::vector<uint8_t> frame_of(size_t n, uint8_t seed) {
  std::vector<uint8_t> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = static_cast<uint8_t>(seed * 7 + i);
  return f;
}

TEST(VirtioNetLayoutTest, HeaderAndCommonConfig) {
  EXPECT_EQ(sizeof(VirtioNetHdr), 12u);
  EXPECT_EQ(offsetof(VirtioNetHdr, num_buffers), 10u);
  EXPECT_EQ(common_cfg::kQueueDriver, 0x28u);
  EXPECT_EQ(feature::kVersion1, uint64_t{1} << 32);
}

TEST_F(VirtioNetTest, InitNegotiatesAndSetsUpQueues) {
  init();
  // 3.1.1: reset, ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, in that order.
  std::vector<uint8_t> expected = {0, 1, 3, 11, 15};
  EXPECT_EQ(common.status_writes, expected);
  EXPECT_EQ(common.status, 15);
  EXPECT_EQ(common.driver_features,
            feature::kVersion1 | feature::kNetMac | feature::kNetStatus | feature::kRingEventIdx);
  EXPECT_EQ(dev.features(), common.driver_features);
  for (uint16_t q : {kReceiveQueue, kTransmitQueue}) {
    const auto& cq = common.queues[q];
    EXPECT_EQ(cq.size, 256);
    EXPECT_EQ(cq.enable, 1);
    EXPECT_EQ(cq.msix, kNoVector);
  }
  EXPECT_EQ(common.queues[0].desc, dev.rx_queue().desc_phys());
  EXPECT_EQ(common.queues[0].driver, dev.rx_queue().avail_phys());
  EXPECT_EQ(common.queues[0].device, dev.rx_queue().used_phys());
  EXPECT_EQ(common.queues[1].desc, dev.tx_queue().desc_phys());
  EXPECT_EQ(common.queues[2].enable, 0);  // the control queue is left alone
  EXPECT_EQ(dev.mac(), (MacAddress{0x52, 0x54, 0x00, 0xAB, 0xCD, 0xEF}));
  // Every receive buffer posted and the device told about it.
  EXPECT_EQ(rxq.avail()[1], 256);
  EXPECT_EQ(dev.rx_queue().num_free(), 0);
  EXPECT_EQ(notifies_for(kReceiveQueue), 1u);
  EXPECT_TRUE(dev.link_up());
  EXPECT_EQ(common.width_errors, 0);
  EXPECT_EQ(notify.faults, 0u);
}

TEST_F(VirtioNetTest, RequiresVersion1) {
  common.device_features &= ~feature::kVersion1;  // a legacy-only device
  auto r = dev.init();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
  EXPECT_TRUE(common.status & device_status::kFailed);
  EXPECT_FALSE(common.status & device_status::kFeaturesOk);
  EXPECT_EQ(common.queues[0].enable, 0);
  EXPECT_FALSE(dev.initialized());
  EXPECT_EQ(dev.transmit(frame_of(60, 0)).error().code, ErrorCode::kInvalidState);
}

TEST_F(VirtioNetTest, DeviceRefusingFeaturesOkFails) {
  common.refuse_features_ok = true;
  auto r = dev.init();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnsupported);
  EXPECT_TRUE(common.status & device_status::kFailed);
  EXPECT_FALSE(common.status & device_status::kDriverOk);
}

TEST_F(VirtioNetTest, MissingQueueFails) {
  common.queues[1].max = 0;
  auto r = dev.init();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(common.status & device_status::kFailed);
}

TEST_F(VirtioNetTest, RefusedMsixVectorFails) {
  common.accept_msix = false;
  auto r = dev.init(VirtioNetConfig{.rx_vector = 1, .tx_vector = 2});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kIoError);
}

TEST_F(VirtioNetTest, MsixVectorsAreProgrammed) {
  init(VirtioNetConfig{.config_vector = 0, .rx_vector = 1, .tx_vector = 2});
  EXPECT_EQ(common.msix_config, 0);
  EXPECT_EQ(common.queues[0].msix, 1);
  EXPECT_EQ(common.queues[1].msix, 2);
}

TEST_F(VirtioNetTest, NotifyOffsetOutsideRegionIsMalformed) {
  common.queues[1].notify_off = 0x400;  // * 4 = 0x1000: past the 4 KiB notify region
  auto r = dev.init();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
}

TEST_F(VirtioNetTest, QueueSizeIsAPowerOfTwoWithinLimits) {
  common.queues[0].max = 100;
  init(VirtioNetConfig{.max_queue_size = 32});
  EXPECT_EQ(common.queues[0].size, 32);
  EXPECT_EQ(common.queues[1].size, 32);
}

TEST_F(VirtioNetTest, DeviceMaximumBelowConfigIsRoundedDown) {
  common.queues[0].max = 100;
  init();
  EXPECT_EQ(common.queues[0].size, 64);
  EXPECT_EQ(dev.rx_queue().size(), 64);
  EXPECT_EQ(common.queues[1].size, 256);
}

TEST_F(VirtioNetTest, FallbackMacWithoutFeature) {
  common.device_features &= ~feature::kNetMac;
  init();
  EXPECT_EQ(dev.mac(), VirtioNetConfig{}.fallback_mac);
  EXPECT_FALSE(common.driver_features & feature::kNetMac);
}

TEST_F(VirtioNetTest, LinkStatus) {
  init();
  EXPECT_TRUE(dev.link_up());
  device_cfg.write16(net_cfg::kStatus, 0);
  EXPECT_FALSE(dev.link_up());
}

TEST_F(VirtioNetTest, LinkAssumedUpWithoutStatusFeature) {
  common.device_features &= ~feature::kNetStatus;
  init();
  device_cfg.write16(net_cfg::kStatus, 0);
  EXPECT_TRUE(dev.link_up());
}

TEST_F(VirtioNetTest, TransmitSendsHeaderAndFrame) {
  init();
  auto f1 = frame_of(60, 1);
  auto f2 = frame_of(1514, 2);
  ASSERT_TRUE(dev.transmit(f1));
  ASSERT_TRUE(dev.transmit(f2));
  EXPECT_GE(notifies_for(kTransmitQueue), 1u);
  auto sent = device_transmit();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0], f1);
  EXPECT_EQ(sent[1], f2);
  EXPECT_EQ(dev.counters().tx_packets, 2u);
  EXPECT_EQ(dev.counters().tx_bytes, 1574u);
  EXPECT_EQ(dev.reclaim_transmitted(), 2u);
  EXPECT_EQ(dev.transmit(frame_of(13, 0)).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(dev.transmit(frame_of(1515, 0)).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(VirtioNetTest, TransmitQueueFullIsCountedAndRecovers) {
  init(VirtioNetConfig{.max_queue_size = 8});
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(dev.transmit(frame_of(64, static_cast<uint8_t>(i))));
  auto full = dev.transmit(frame_of(64, 99));
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, ErrorCode::kFull);
  EXPECT_EQ(dev.counters().tx_ring_full, 1u);
  auto sent = device_transmit();
  EXPECT_EQ(sent.size(), 8u);
  for (int round = 0; round < 20; ++round) {  // wraps the 8-entry rings several times
    ASSERT_TRUE(dev.transmit(frame_of(64, static_cast<uint8_t>(round))));
    auto one = device_transmit();
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0], frame_of(64, static_cast<uint8_t>(round)));
  }
  EXPECT_EQ(dev.counters().tx_packets, 28u);
}

TEST_F(VirtioNetTest, NoNotifyWhenDeviceSuppressesIt) {
  init(VirtioNetConfig{.allow_event_idx = false});
  EXPECT_FALSE(common.driver_features & feature::kRingEventIdx);
  txq.used()[0] = kUsedFlagNoNotify;
  ASSERT_TRUE(dev.transmit(frame_of(64, 0)));
  EXPECT_EQ(notifies_for(kTransmitQueue), 0u);
  txq.used()[0] = 0;
  ASSERT_TRUE(dev.transmit(frame_of(64, 1)));
  EXPECT_EQ(notifies_for(kTransmitQueue), 1u);
}

TEST_F(VirtioNetTest, ReceiveDeliversFramesAndReposts) {
  init(VirtioNetConfig{.max_queue_size = 8});
  std::vector<std::vector<uint8_t>> got;
  EXPECT_EQ(poll(got), 0u);
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 6; ++i) {
      ASSERT_TRUE(device_receive(frame_of(60 + i, static_cast<uint8_t>(round * 6 + i))));
    }
    EXPECT_EQ(poll(got), 6u);
    EXPECT_EQ(dev.rx_queue().num_free(), 0);  // all buffers posted again
  }
  ASSERT_EQ(got.size(), 30u);
  EXPECT_EQ(got[29], frame_of(65, 29));
  EXPECT_EQ(dev.counters().rx_packets, 30u);
  EXPECT_EQ(rxq.avail()[1], 8 + 30);
}

TEST_F(VirtioNetTest, ReceiveDropsBadLengths) {
  init(VirtioNetConfig{.max_queue_size = 8});
  ASSERT_TRUE(device_receive(frame_of(13, 0)));             // runt frame
  ASSERT_TRUE(device_receive(frame_of(60, 0), 5));          // shorter than the header
  ASSERT_TRUE(device_receive(frame_of(60, 0), 12 + 1600));  // oversize
  ASSERT_TRUE(device_receive(frame_of(60, 0), 100000));     // beyond the buffer
  ASSERT_TRUE(device_receive(frame_of(14, 3)));             // smallest good frame
  std::vector<std::vector<uint8_t>> got;
  EXPECT_EQ(poll(got), 1u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], frame_of(14, 3));
  EXPECT_EQ(dev.counters().rx_runts, 2u);
  EXPECT_EQ(dev.counters().rx_oversize, 1u);
  EXPECT_EQ(dev.counters().rx_errors, 1u);
  EXPECT_EQ(dev.counters().rx_drops, 3u);
  EXPECT_EQ(dev.rx_queue().num_free(), 0);  // every buffer went back
}

TEST_F(VirtioNetTest, MalformedUsedEntryIsCountedNotFatal) {
  init(VirtioNetConfig{.max_queue_size = 8});
  rxq.push_used(7000, 60);  // an id the driver never exposed
  ASSERT_TRUE(device_receive(frame_of(60, 1)));
  std::vector<std::vector<uint8_t>> got;
  EXPECT_EQ(poll(got), 1u);
  EXPECT_EQ(dev.counters().rx_errors, 1u);
}

TEST_F(VirtioNetTest, DeviceNeedsResetAndIsr) {
  init();
  EXPECT_FALSE(dev.needs_reset());
  common.status |= device_status::kDeviceNeedsReset;
  EXPECT_TRUE(dev.needs_reset());
  isr.write8(0, isr::kQueueInterrupt);
  EXPECT_EQ(dev.read_isr(), isr::kQueueInterrupt);
}

TEST(VirtioNetInitTest, MissingWindowsAreRejected) {
  FakeDma dma;
  VirtioNetDevice dev(VirtioPciWindows{}, dma);
  EXPECT_EQ(dev.init().error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace lantern::net::virtio
