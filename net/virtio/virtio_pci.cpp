#include "net/virtio/virtio_pci.h"

namespace lantern::net::virtio {

bool is_virtio_net(const pci::PciHeader& header) {
  if (header.vendor_id != kVendorVirtio) return false;
  if (header.device_id == kDeviceIdNetModern) return true;
  // 4.1.2.1: transitional devices carry the device type in the Subsystem Device ID.
  return header.device_id == kDeviceIdNetTransitional && header.subsystem_id == kDeviceTypeNet;
}

Result<void> VirtioPciTransport::reset(uint32_t poll_limit) {
  set_status(0);
  for (uint32_t polls = 0; polls < poll_limit; ++polls) {
    if (status() == 0) return ok();
  }
  return make_error(ErrorCode::kTimeout, "virtio: device_status did not read back 0", status());
}

uint64_t VirtioPciTransport::device_features() {
  w_.common->write32(common_cfg::kDeviceFeatureSelect, 0);
  uint64_t low = w_.common->read32(common_cfg::kDeviceFeature);
  w_.common->write32(common_cfg::kDeviceFeatureSelect, 1);
  uint64_t high = w_.common->read32(common_cfg::kDeviceFeature);
  return low | (high << 32);
}

void VirtioPciTransport::set_driver_features(uint64_t features) {
  w_.common->write32(common_cfg::kDriverFeatureSelect, 0);
  w_.common->write32(common_cfg::kDriverFeature, static_cast<uint32_t>(features));
  w_.common->write32(common_cfg::kDriverFeatureSelect, 1);
  w_.common->write32(common_cfg::kDriverFeature, static_cast<uint32_t>(features >> 32));
}

Result<uint16_t> VirtioPciTransport::queue_max_size(uint16_t index) {
  if (index >= num_queues()) {
    return make_error(ErrorCode::kNotFound, "virtio: queue index beyond num_queues", index);
  }
  w_.common->write16(common_cfg::kQueueSelect, index);
  uint16_t size = w_.common->read16(common_cfg::kQueueSize);
  if (size == 0) return make_error(ErrorCode::kNotFound, "virtio: queue unavailable", index);
  return size;
}

Result<void> VirtioPciTransport::enable_queue(uint16_t index, uint16_t size, uint64_t desc, uint64_t driver,
                                              uint64_t device, uint16_t msix_vector) {
  if (index >= kMaxQueues) {
    return make_error(ErrorCode::kInvalidArgument, "virtio: queue index too large", index);
  }
  w_.common->write16(common_cfg::kQueueSelect, index);
  w_.common->write16(common_cfg::kQueueSize, size);
  w_.common->write16(common_cfg::kQueueMsixVector, msix_vector);
  if (msix_vector != kNoVector && w_.common->read16(common_cfg::kQueueMsixVector) == kNoVector) {
    return make_error(ErrorCode::kIoError, "virtio: device refused the queue MSI-X vector", index);
  }
  uint64_t notify_off = w_.common->read16(common_cfg::kQueueNotifyOff);
  uint64_t offset = notify_off * w_.notify_off_multiplier;
  if (offset + 2 > w_.notify_length) {
    return make_error(ErrorCode::kMalformed, "virtio: notify offset outside the notify region", offset);
  }
  notify_offset_[index] = static_cast<uint32_t>(offset);
  w_.common->write64(common_cfg::kQueueDesc, desc);
  w_.common->write64(common_cfg::kQueueDriver, driver);
  w_.common->write64(common_cfg::kQueueDevice, device);
  w_.common->write16(common_cfg::kQueueEnable, 1);
  return ok();
}

void VirtioPciTransport::notify(uint16_t index) {
  if (index >= kMaxQueues) return;
  w_.notify->write16(notify_offset_[index], index);
}

}  // namespace lantern::net::virtio
