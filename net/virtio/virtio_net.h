// VirtioNetDevice: the virtio-net driver logic (virtio 1.0 spec 5.1) over the modern PCI
// transport, written against the MmioWindow and DmaAllocator seams.
//
// One receive queue (index 0, receiveq1) and one transmit queue (index 1, transmitq1) (5.1.2).
// Every buffer is one descriptor holding a 12-byte virtio_net_hdr followed by the frame
// (VIRTIO_F_VERSION_1 makes the header 12 bytes, num_buffers included: 5.1.6). Offered
// features accepted: VERSION_1 (required), MAC, STATUS, and RING_EVENT_IDX when allowed;
// no checksum/segmentation offload, no mergeable buffers, no control queue.
// A polling driver: interrupts stay unconfigured unless MSI-X vectors are given in the config.
// Single-threaded: one core owns the device.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "kernel/lib/result.h"
#include "net/dma.h"
#include "net/nic.h"
#include "net/virtio/virtio_pci.h"
#include "net/virtio/virtqueue.h"

namespace lantern::net::virtio {

// struct virtio_net_hdr (5.1.6) as laid out when VIRTIO_F_VERSION_1 is negotiated.
struct VirtioNetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;
};
static_assert(sizeof(VirtioNetHdr) == 12, "virtio 1.0 5.1.6: 12-byte header with VERSION_1");
inline constexpr uint8_t kNetHdrGsoNone = 0;  // VIRTIO_NET_HDR_GSO_NONE

// Device configuration layout (5.1.4): mac[6], le16 status, le16 max_virtqueue_pairs.
namespace net_cfg {
inline constexpr uint32_t kMac = 0;
inline constexpr uint32_t kStatus = 6;
inline constexpr uint16_t kStatusLinkUp = 1;  // VIRTIO_NET_S_LINK_UP
}  // namespace net_cfg

inline constexpr uint16_t kReceiveQueue = 0;   // receiveq1 (5.1.2)
inline constexpr uint16_t kTransmitQueue = 1;  // transmitq1

struct VirtioNetConfig {
  uint16_t max_queue_size = 256;  // rounded down to a power of two and to the device's maximum
  uint32_t poll_limit = 100000;   // reads of device_status while waiting for reset
  bool allow_event_idx = true;
  uint16_t config_vector = kNoVector;  // MSI-X table entries, or kNoVector (none)
  uint16_t rx_vector = kNoVector;
  uint16_t tx_vector = kNoVector;
  // Used when the device does not offer VIRTIO_NET_F_MAC (5.1.5: the driver then picks one).
  MacAddress fallback_mac = {0x52, 0x54, 0x00, 0x4c, 0x54, 0x4e};  // locally administered
};

class VirtioNetDevice {
 public:
  static constexpr uint32_t kBufferBytes = 2048;  // >= 12 + 1514 (5.1.6.3.1: at least 1526)
  static constexpr size_t kHeaderBytes = sizeof(VirtioNetHdr);

  VirtioNetDevice(const VirtioPciWindows& windows, DmaAllocator& dma) : transport_(windows), dma_(dma) {}

  // Device initialisation, 3.1.1: reset, ACKNOWLEDGE, DRIVER, feature negotiation,
  // FEATURES_OK (re-read), queue setup, receive buffers, DRIVER_OK. On failure after
  // ACKNOWLEDGE, sets FAILED. kUnsupported (VERSION_1 not offered, or FEATURES_OK not kept),
  // kNotFound (queue missing), kTimeout (reset), kInvalidArgument (no windows),
  // kOutOfMemory. Call once.
  Result<void> init(const VirtioNetConfig& config = VirtioNetConfig{});

  // Copies header + frame into a transmit buffer and notifies the device if it asks.
  // kInvalidState before init or when the device needs a reset; kInvalidArgument for frames
  // outside [14, 1514] bytes; kFull (counted in tx_ring_full) when every buffer is in flight.
  Result<void> transmit(std::span<const uint8_t> frame);
  size_t reclaim_transmitted();

  // Delivers received frames (header stripped) to `sink` and requeues their buffers. Drops and
  // counts: used lengths below 12 + 14 (rx_runts), frames above 1518 (rx_oversize), lengths
  // beyond the buffer or malformed completions (rx_errors). At most `max_frames` used entries
  // (0: one queue's worth). Returns frames delivered.
  size_t poll_receive(FrameSink sink, size_t max_frames = 0);
  template <typename F>
  size_t poll_receive_with(F&& on_frame, size_t max_frames = 0) {
    auto sink = FrameSink::from(on_frame);
    return poll_receive(sink, max_frames);
  }

  // VIRTIO_NET_S_LINK_UP when VIRTIO_NET_F_STATUS was negotiated, else always up (5.1.4).
  bool link_up();
  bool needs_reset() { return (transport_.status() & device_status::kDeviceNeedsReset) != 0; }
  uint8_t read_isr() { return transport_.read_isr(); }

  bool initialized() const { return initialized_; }
  uint64_t features() const { return features_; }
  const MacAddress& mac() const { return mac_; }
  const NicCounters& counters() const { return counters_; }
  const SplitVirtqueue& rx_queue() const { return rx_; }
  const SplitVirtqueue& tx_queue() const { return tx_; }
  VirtioPciTransport& transport() { return transport_; }

 private:
  Result<void> negotiate(const VirtioNetConfig& config);
  Result<void> setup_queue(uint16_t index, uint16_t max_size, uint16_t vector, SplitVirtqueue& queue,
                           DmaBuffer& buffers);
  void read_mac(const VirtioNetConfig& config);
  Result<void> post_receive_buffer(uint16_t slot);
  Result<void> fail(Error error);

  VirtioPciTransport transport_;
  DmaAllocator& dma_;
  bool initialized_ = false;
  uint64_t features_ = 0;
  MacAddress mac_{};
  NicCounters counters_{};
  SplitVirtqueue rx_;
  SplitVirtqueue tx_;
  DmaBuffer rx_buffers_{};
  DmaBuffer tx_buffers_{};
  // Free transmit buffer slots (a stack); tokens of in-flight chains are slot numbers.
  std::array<uint16_t, SplitVirtqueue::kMaxSize> tx_free_{};
  uint16_t tx_free_count_ = 0;
};

}  // namespace lantern::net::virtio
