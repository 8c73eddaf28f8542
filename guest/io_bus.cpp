#include "guest/io_bus.h"

namespace lantern::guest {
namespace {

constexpr bool valid_mmio_width(uint8_t width) {
  return width == 1 || width == 2 || width == 4 || width == 8;
}
constexpr uint64_t all_ones_64(uint8_t width) {
  return width >= 8 ? ~0ull : (1ull << (width * 8)) - 1;
}

}  // namespace

Result<void> PortBus::register_range(uint16_t first_port, uint32_t count, PortDevice* device) {
  if (device == nullptr || count == 0 || uint32_t{first_port} + count > 0x10000)
    return make_error(ErrorCode::kInvalidArgument, "port range empty or past 0xffff", first_port);
  for (size_t i = 0; i < range_count_; ++i) {
    const Range& r = ranges_[i];
    const uint32_t end = uint32_t{first_port} + count;
    if (first_port < r.first + r.count && r.first < end)
      return make_error(ErrorCode::kAlreadyExists, "port range overlaps a device", r.first);
  }
  if (range_count_ == kMaxRanges)
    return make_error(ErrorCode::kFull, "port bus range table full", kMaxRanges);
  ranges_[range_count_++] = Range{first_port, count, device};
  return ok();
}

void PortBus::count_unclaimed_elsewhere(uint16_t port, bool is_write) {
  for (size_t i = 0; i < unclaimed_port_count_; ++i) {
    if (unclaimed_ports_[i].port == port) {
      ++(is_write ? unclaimed_ports_[i].writes : unclaimed_ports_[i].reads);
      last_unclaimed_ = i;
      return;
    }
  }
  if (unclaimed_port_count_ == kMaxUnclaimedPorts) {
    ++unclaimed_ports_dropped_;
    return;
  }
  last_unclaimed_ = unclaimed_port_count_;
  UnclaimedPort& slot = unclaimed_ports_[unclaimed_port_count_++];
  slot = UnclaimedPort{port, is_write ? 0u : 1u, is_write ? 1u : 0u};
}

uint32_t PortBus::read(uint16_t port, uint8_t width) {
  return read(valid_width(width) ? device_at(port) : nullptr, port, width);
}

void PortBus::write(uint16_t port, uint8_t width, uint32_t value) {
  write(valid_width(width) ? device_at(port) : nullptr, port, width, value);
}

Result<void> MmioBus::register_window(uint64_t base, uint64_t size, MmioDevice* device) {
  if (device == nullptr || size == 0 || base + size < base)
    return make_error(ErrorCode::kInvalidArgument, "MMIO window empty or wraps", base);
  if (const Window* w = window_meeting(base, size); w != nullptr)
    return make_error(ErrorCode::kAlreadyExists, "MMIO window overlaps a device", w->base);
  if (window_count_ == kMaxWindows)
    return make_error(ErrorCode::kFull, "MMIO bus window table full", kMaxWindows);
  windows_[window_count_++] = Window{base, size, device};
  return ok();
}

MmioDevice* MmioBus::device_at(uint64_t gpa, uint64_t* offset) const {
  for (size_t i = 0; i < window_count_; ++i) {
    const Window& w = windows_[i];
    if (gpa >= w.base && gpa - w.base < w.size) {
      if (offset != nullptr) *offset = gpa - w.base;
      return w.device;
    }
  }
  return nullptr;
}

const MmioBus::Window* MmioBus::window_meeting(uint64_t base, uint64_t size) const {
  for (size_t i = 0; i < window_count_; ++i) {
    const Window& w = windows_[i];
    if (base < w.base + w.size && w.base < base + size) return &w;
  }
  return nullptr;
}

bool MmioBus::claims_any_of(uint64_t base, uint64_t size) const { return window_meeting(base, size) != nullptr; }

uint64_t MmioBus::read(uint64_t gpa, uint8_t width) {
  uint64_t offset = 0;
  MmioDevice* device = valid_mmio_width(width) ? device_at(gpa, &offset) : nullptr;
  if (device == nullptr) {
    ++unclaimed_.mmio_reads;
    return all_ones_64(valid_mmio_width(width) ? width : 8);
  }
  return device->mmio_read(offset, width) & all_ones_64(width);
}

void MmioBus::write(uint64_t gpa, uint8_t width, uint64_t value) {
  uint64_t offset = 0;
  MmioDevice* device = valid_mmio_width(width) ? device_at(gpa, &offset) : nullptr;
  if (device == nullptr) {
    ++unclaimed_.mmio_writes;
    return;
  }
  device->mmio_write(offset, width, value & all_ones_64(width));
}

}  // namespace lantern::guest
