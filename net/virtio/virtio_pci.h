// virtio over PCI, modern interface (virtio 1.0 spec 4.1): device identification, the common
// configuration structure (4.1.4.3), device status and feature bits, and VirtioPciTransport,
// which drives those registers through MmioWindow seams.
//
// The kernel finds the regions with pci::read_virtio_layout() (net/pci/pci_capabilities.h),
// maps the BARs they name and hands one MmioWindow per region, each starting at the region's
// offset in its BAR. Transitional devices (1AF4:1000) are driven through the same modern
// capabilities; their legacy I/O BAR is never touched.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/lib/result.h"
#include "net/mmio.h"
#include "net/pci/pci.h"

namespace lantern::net::virtio {

// 4.1.2: vendor 1AF4h; modern device ID 1040h + device type; transitional IDs 1000h-103Fh with
// the device type in the Subsystem Device ID (4.1.2.1). Device type 1 is network (5).
inline constexpr uint16_t kVendorVirtio = 0x1AF4;
inline constexpr uint16_t kModernDeviceIdBase = 0x1040;
inline constexpr uint16_t kDeviceTypeNet = 1;
inline constexpr uint16_t kDeviceIdNetModern = kModernDeviceIdBase + kDeviceTypeNet;  // 1041h
inline constexpr uint16_t kDeviceIdNetTransitional = 0x1000;

// True for 1AF4:1041, and for 1AF4:1000 whose subsystem device ID says "network".
bool is_virtio_net(const pci::PciHeader& header);

// struct virtio_pci_common_cfg field offsets (4.1.4.3).
namespace common_cfg {
inline constexpr uint32_t kDeviceFeatureSelect = 0x00;  // le32 RW
inline constexpr uint32_t kDeviceFeature = 0x04;        // le32 RO
inline constexpr uint32_t kDriverFeatureSelect = 0x08;  // le32 RW
inline constexpr uint32_t kDriverFeature = 0x0C;        // le32 RW
inline constexpr uint32_t kMsixConfig = 0x10;           // le16 RW
inline constexpr uint32_t kNumQueues = 0x12;            // le16 RO
inline constexpr uint32_t kDeviceStatus = 0x14;         // u8 RW
inline constexpr uint32_t kConfigGeneration = 0x15;     // u8 RO
inline constexpr uint32_t kQueueSelect = 0x16;          // le16 RW
inline constexpr uint32_t kQueueSize = 0x18;            // le16 RW (max on read after select)
inline constexpr uint32_t kQueueMsixVector = 0x1A;      // le16 RW
inline constexpr uint32_t kQueueEnable = 0x1C;          // le16 RW
inline constexpr uint32_t kQueueNotifyOff = 0x1E;       // le16 RO
inline constexpr uint32_t kQueueDesc = 0x20;            // le64 RW
inline constexpr uint32_t kQueueDriver = 0x28;          // le64 RW ("queue_avail")
inline constexpr uint32_t kQueueDevice = 0x30;          // le64 RW ("queue_used")
inline constexpr uint32_t kSize = 0x38;
}  // namespace common_cfg

// The same layout as a struct, to pin the offsets above against the spec's declaration.
struct VirtioPciCommonCfg {
  uint32_t device_feature_select;
  uint32_t device_feature;
  uint32_t driver_feature_select;
  uint32_t driver_feature;
  uint16_t msix_config;
  uint16_t num_queues;
  uint8_t device_status;
  uint8_t config_generation;
  uint16_t queue_select;
  uint16_t queue_size;
  uint16_t queue_msix_vector;
  uint16_t queue_enable;
  uint16_t queue_notify_off;
  uint64_t queue_desc;
  uint64_t queue_driver;
  uint64_t queue_device;
};
static_assert(sizeof(VirtioPciCommonCfg) == common_cfg::kSize);
static_assert(offsetof(VirtioPciCommonCfg, device_status) == common_cfg::kDeviceStatus);
static_assert(offsetof(VirtioPciCommonCfg, queue_select) == common_cfg::kQueueSelect);
static_assert(offsetof(VirtioPciCommonCfg, queue_notify_off) == common_cfg::kQueueNotifyOff);
static_assert(offsetof(VirtioPciCommonCfg, queue_desc) == common_cfg::kQueueDesc);
static_assert(offsetof(VirtioPciCommonCfg, queue_device) == common_cfg::kQueueDevice);

inline constexpr uint16_t kNoVector = 0xFFFF;  // VIRTIO_MSI_NO_VECTOR (4.1.4.3 / 4.1.5.1.2)

// Device status bits (2.1).
namespace device_status {
inline constexpr uint8_t kAcknowledge = 1;
inline constexpr uint8_t kDriver = 2;
inline constexpr uint8_t kDriverOk = 4;
inline constexpr uint8_t kFeaturesOk = 8;
inline constexpr uint8_t kDeviceNeedsReset = 64;
inline constexpr uint8_t kFailed = 128;
}  // namespace device_status

// Feature bits (6 "Reserved Feature Bits"; 5.1.3 for the network device).
namespace feature {
inline constexpr uint64_t bit(unsigned n) {
  return uint64_t{1} << n;
}
inline constexpr uint64_t kNetCsum = bit(0);            // VIRTIO_NET_F_CSUM
inline constexpr uint64_t kNetMac = bit(5);             // VIRTIO_NET_F_MAC
inline constexpr uint64_t kNetMrgRxbuf = bit(15);       // VIRTIO_NET_F_MRG_RXBUF
inline constexpr uint64_t kNetStatus = bit(16);         // VIRTIO_NET_F_STATUS
inline constexpr uint64_t kNetCtrlVq = bit(17);         // VIRTIO_NET_F_CTRL_VQ
inline constexpr uint64_t kRingIndirectDesc = bit(28);  // VIRTIO_F_RING_INDIRECT_DESC
inline constexpr uint64_t kRingEventIdx = bit(29);      // VIRTIO_F_RING_EVENT_IDX
inline constexpr uint64_t kVersion1 = bit(32);          // VIRTIO_F_VERSION_1
}  // namespace feature

// ISR status bits (4.1.4.5): reading the byte clears it.
namespace isr {
inline constexpr uint8_t kQueueInterrupt = 1u << 0;
inline constexpr uint8_t kConfigInterrupt = 1u << 1;
}  // namespace isr

// The windows a modern virtio-pci device needs (4.1.4.1: common, notify and ISR are mandatory).
struct VirtioPciWindows {
  MmioWindow* common = nullptr;
  MmioWindow* notify = nullptr;
  uint32_t notify_length = 0;          // bytes of the notify region (capability `length`)
  uint32_t notify_off_multiplier = 0;  // 4.1.4.4
  MmioWindow* isr = nullptr;
  MmioWindow* device = nullptr;  // device-specific configuration; may be null
};

class VirtioPciTransport {
 public:
  explicit VirtioPciTransport(const VirtioPciWindows& windows) : w_(windows) {}

  bool valid() const { return w_.common && w_.notify && w_.isr; }

  // 4.1.4.3.2: write 0 to device_status, then wait until it reads back 0.
  Result<void> reset(uint32_t poll_limit);
  uint8_t status() { return w_.common->read8(common_cfg::kDeviceStatus); }
  void set_status(uint8_t status) { w_.common->write8(common_cfg::kDeviceStatus, status); }
  void add_status(uint8_t bits) { set_status(static_cast<uint8_t>(status() | bits)); }

  uint64_t device_features();  // both 32-bit halves via the select register
  void set_driver_features(uint64_t features);
  uint16_t num_queues() { return w_.common->read16(common_cfg::kNumQueues); }
  uint8_t config_generation() { return w_.common->read8(common_cfg::kConfigGeneration); }
  void set_config_msix_vector(uint16_t vector) { w_.common->write16(common_cfg::kMsixConfig, vector); }

  // Selects queue `index` and returns its maximum size; kNotFound if it is 0 (no such queue,
  // 4.1.4.3) or the index is not below num_queues.
  Result<uint16_t> queue_max_size(uint16_t index);
  // Programs and enables queue `index` (4.1.5.1.3): size, MSI-X vector, the three area
  // addresses, then queue_enable = 1. Records the queue's notify offset. kIoError if the device
  // refuses the MSI-X vector (reads back NO_VECTOR, 4.1.5.1.2.1); kMalformed if the notify
  // offset lies outside the notify region (4.1.4.4); kInvalidArgument for index >= 8.
  Result<void> enable_queue(uint16_t index, uint16_t size, uint64_t desc, uint64_t driver, uint64_t device,
                            uint16_t msix_vector);
  // 4.1.5.2: write the queue index, 16 bits, at queue_notify_off * notify_off_multiplier.
  void notify(uint16_t index);
  // Reading the ISR byte acknowledges the interrupt (4.1.4.5).
  uint8_t read_isr() { return w_.isr->read8(0); }
  MmioWindow* device_config() { return w_.device; }

  static constexpr uint16_t kMaxQueues = 8;

 private:
  VirtioPciWindows w_;
  uint32_t notify_offset_[kMaxQueues] = {};
};

}  // namespace lantern::net::virtio
