#include "net/virtio/virtio_net.h"

namespace lantern::net::virtio {

namespace {

void copy_bytes(uint8_t* dst, const uint8_t* src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = src[i];
}

uint16_t round_down_power_of_two(uint16_t v) {
  uint16_t p = 1;
  while (p <= v / 2) p = static_cast<uint16_t>(p * 2);
  return v == 0 ? 0 : p;
}

}  // namespace

Result<void> VirtioNetDevice::fail(Error error) {
  transport_.add_status(device_status::kFailed);  // 3.1.1 step 8 / 2.1.1
  return error;
}

Result<void> VirtioNetDevice::negotiate(const VirtioNetConfig& config) {
  uint64_t offered = transport_.device_features();
  if ((offered & feature::kVersion1) == 0) {
    return fail(make_error(ErrorCode::kUnsupported, "virtio-net: VIRTIO_F_VERSION_1 not offered", offered));
  }
  uint64_t wanted = feature::kVersion1 | feature::kNetMac | feature::kNetStatus;
  if (config.allow_event_idx) wanted |= feature::kRingEventIdx;
  features_ = offered & wanted;
  transport_.set_driver_features(features_);
  transport_.add_status(device_status::kFeaturesOk);
  // 3.1.1 step 6: re-read; if FEATURES_OK is clear the device refused this subset.
  if ((transport_.status() & device_status::kFeaturesOk) == 0) {
    return fail(make_error(ErrorCode::kUnsupported, "virtio-net: device refused FEATURES_OK", features_));
  }
  return ok();
}

Result<void> VirtioNetDevice::setup_queue(uint16_t index, uint16_t max_size, uint16_t vector,
                                          SplitVirtqueue& queue, DmaBuffer& buffers) {
  uint16_t device_max = TRY(transport_.queue_max_size(index));
  uint16_t size = max_size < device_max ? max_size : device_max;
  if (size > SplitVirtqueue::kMaxSize) size = SplitVirtqueue::kMaxSize;
  size = round_down_power_of_two(size);
  if (size == 0) {
    return make_error(ErrorCode::kInvalidArgument, "virtio-net: queue size 0", index);
  }
  VirtqueueLayout layout = TRY(virtqueue_layout(size));
  DmaBuffer ring = TRY(dma_.alloc_dma(layout.total_bytes, 4096));
  TRY(queue.init(size, ring, (features_ & feature::kRingEventIdx) != 0));
  buffers = TRY(dma_.alloc_dma(size_t{size} * kBufferBytes, kBufferBytes));
  return transport_.enable_queue(index, size, queue.desc_phys(), queue.avail_phys(), queue.used_phys(),
                                 vector);
}

void VirtioNetDevice::read_mac(const VirtioNetConfig& config) {
  MmioWindow* cfg = transport_.device_config();
  if ((features_ & feature::kNetMac) == 0 || cfg == nullptr) {
    mac_ = config.fallback_mac;
    return;
  }
  // 2.3.1 / 4.1.4.3: retry until config_generation is the same before and after the read.
  for (int attempt = 0; attempt < 16; ++attempt) {
    uint8_t before = transport_.config_generation();
    for (uint32_t i = 0; i < mac_.size(); ++i) mac_[i] = cfg->read8(net_cfg::kMac + i);
    if (transport_.config_generation() == before) return;
  }
}

Result<void> VirtioNetDevice::post_receive_buffer(uint16_t slot) {
  VirtqBuffer buffer{rx_buffers_.phys + uint64_t{slot} * kBufferBytes, kBufferBytes};
  TRY(rx_.add_buffer({}, std::span<const VirtqBuffer>(&buffer, 1), slot));
  return ok();
}

Result<void> VirtioNetDevice::init(const VirtioNetConfig& config) {
  if (!transport_.valid()) {
    return make_error(ErrorCode::kInvalidArgument, "virtio-net: common/notify/isr missing");
  }
  if (initialized_) return make_error(ErrorCode::kInvalidState, "virtio-net: already running");
  TRY(transport_.reset(config.poll_limit == 0 ? 1 : config.poll_limit));
  transport_.add_status(device_status::kAcknowledge);
  transport_.add_status(device_status::kDriver);
  TRY(negotiate(config));

  if (config.config_vector != kNoVector) transport_.set_config_msix_vector(config.config_vector);
  auto rx = setup_queue(kReceiveQueue, config.max_queue_size, config.rx_vector, rx_, rx_buffers_);
  if (!rx) return fail(rx.error());
  auto tx = setup_queue(kTransmitQueue, config.max_queue_size, config.tx_vector, tx_, tx_buffers_);
  if (!tx) return fail(tx.error());
  read_mac(config);

  for (uint16_t slot = 0; slot < rx_.size(); ++slot) {
    auto posted = post_receive_buffer(slot);
    if (!posted) return fail(posted.error());
  }
  tx_free_count_ = 0;
  for (uint16_t slot = tx_.size(); slot > 0; --slot) {
    tx_free_[tx_free_count_++] = static_cast<uint16_t>(slot - 1);
  }
  transport_.add_status(device_status::kDriverOk);  // 3.1.1 step 8
  initialized_ = true;
  if (rx_.kick_prepare()) transport_.notify(kReceiveQueue);
  return ok();
}

size_t VirtioNetDevice::reclaim_transmitted() {
  if (!initialized_) return 0;
  size_t reclaimed = 0;
  for (uint16_t i = 0; i < tx_.size(); ++i) {
    auto used = tx_.get_used();
    if (!used) {
      ++counters_.tx_errors;  // malformed completion, entry skipped
      continue;
    }
    if (!used->has_value()) break;
    uint64_t slot = (*used)->token;
    if (slot < tx_.size() && tx_free_count_ < tx_.size()) {
      tx_free_[tx_free_count_++] = static_cast<uint16_t>(slot);
    }
    ++reclaimed;
  }
  return reclaimed;
}

Result<void> VirtioNetDevice::transmit(std::span<const uint8_t> frame) {
  if (!initialized_) return make_error(ErrorCode::kInvalidState, "virtio-net: not initialised");
  if (frame.size() < kEthernetHeaderBytes || frame.size() > kEthernetMaxFrameBytes) {
    return make_error(ErrorCode::kInvalidArgument, "virtio-net: frame size out of range", frame.size());
  }
  (void)reclaim_transmitted();
  if (tx_free_count_ == 0 || tx_.num_free() == 0) {
    ++counters_.tx_ring_full;
    return make_error(ErrorCode::kFull, "virtio-net: transmit queue full", tx_.size());
  }
  uint16_t slot = tx_free_[--tx_free_count_];
  auto* buffer = static_cast<uint8_t*>(tx_buffers_.virt) + size_t{slot} * kBufferBytes;
  for (size_t i = 0; i < kHeaderBytes; ++i) buffer[i] = 0;  // no offloads, GSO_NONE (5.1.6.2)
  copy_bytes(buffer + kHeaderBytes, frame.data(), frame.size());
  VirtqBuffer out{tx_buffers_.phys + uint64_t{slot} * kBufferBytes,
                  static_cast<uint32_t>(kHeaderBytes + frame.size())};
  auto added = tx_.add_buffer(std::span<const VirtqBuffer>(&out, 1), {}, slot);
  if (!added) {
    tx_free_[tx_free_count_++] = slot;
    ++counters_.tx_ring_full;
    return added.error();
  }
  if (tx_.kick_prepare()) transport_.notify(kTransmitQueue);
  ++counters_.tx_packets;
  counters_.tx_bytes += frame.size();
  return ok();
}

size_t VirtioNetDevice::poll_receive(FrameSink sink, size_t max_frames) {
  if (!initialized_) return 0;
  if (max_frames == 0) max_frames = rx_.size();
  size_t delivered = 0;
  size_t requeued = 0;
  for (size_t n = 0; n < max_frames; ++n) {
    auto used = rx_.get_used();
    if (!used) {
      ++counters_.rx_errors;  // malformed completion: no buffer to give back
      continue;
    }
    if (!used->has_value()) break;
    uint64_t slot = (*used)->token;
    uint32_t len = (*used)->len;
    if (slot >= rx_.size()) {
      ++counters_.rx_errors;
      continue;
    }
    if (len > kBufferBytes) {
      ++counters_.rx_errors;  // device claims more than the buffer holds
    } else if (len < kHeaderBytes + kEthernetHeaderBytes) {
      ++counters_.rx_runts;
      ++counters_.rx_drops;
    } else if (len - kHeaderBytes > kEthernetMaxVlanFrameBytes) {
      ++counters_.rx_oversize;
      ++counters_.rx_drops;
    } else {
      const auto* buffer = static_cast<const uint8_t*>(rx_buffers_.virt) + size_t{slot} * kBufferBytes;
      size_t frame_len = len - kHeaderBytes;
      if (sink.fn) sink(std::span<const uint8_t>(buffer + kHeaderBytes, frame_len));
      ++counters_.rx_packets;
      counters_.rx_bytes += frame_len;
      ++delivered;
    }
    if (post_receive_buffer(static_cast<uint16_t>(slot))) ++requeued;
  }
  if (requeued != 0 && rx_.kick_prepare()) transport_.notify(kReceiveQueue);
  return delivered;
}

bool VirtioNetDevice::link_up() {
  MmioWindow* cfg = transport_.device_config();
  if ((features_ & feature::kNetStatus) == 0 || cfg == nullptr) return true;
  return (cfg->read16(net_cfg::kStatus) & net_cfg::kStatusLinkUp) != 0;
}

}  // namespace lantern::net::virtio
