// The guest's port-I/O and MMIO buses: where emulated devices register, and where the
// vendor-neutral exit core sends every intercepted IN/OUT and every MMIO access it decodes.
// Portable (host-tested). One bus pair per VM; the bus is used only by the cores that run
// that VM's vCPUs, and devices do their own locking where two vCPUs may reach them at once.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::guest {

// A device on the port-I/O bus. `width` is 1, 2 or 4 bytes (SDM Vol. 3C 28.2.1, Table 28-5:
// "size of access"); `port` is the port the guest used, not an offset. Reads return the value
// zero-extended to 32 bits; only the low `width` bytes are used.
class PortDevice {
 public:
  virtual ~PortDevice() = default;
  virtual uint32_t port_read(uint16_t port, uint8_t width) = 0;
  virtual void port_write(uint16_t port, uint8_t width, uint32_t value) = 0;
};

// A device on the MMIO bus. `offset` is relative to the start of the registered window;
// `width` is 1, 2, 4 or 8 bytes.
class MmioDevice {
 public:
  virtual ~MmioDevice() = default;
  virtual uint64_t mmio_read(uint64_t offset, uint8_t width) = 0;
  virtual void mmio_write(uint64_t offset, uint8_t width, uint64_t value) = 0;
};

// Counters of accesses that reached no device, for the console's per-VM view.
struct UnclaimedCounters {
  uint64_t port_reads = 0;
  uint64_t port_writes = 0;
  uint64_t mmio_reads = 0;
  uint64_t mmio_writes = 0;
};

// Port-I/O bus: up to kMaxRanges port ranges, each owned by one device. Ranges may not overlap.
// An access to a port no device claims reads as all-ones (what an ISA bus with nothing on it
// returns) and drops writes; both are counted, per port, in a bounded table of distinct ports.
class PortBus {
 public:
  static constexpr size_t kMaxRanges = 32;
  static constexpr size_t kMaxUnclaimedPorts = 64;

  struct UnclaimedPort {
    uint16_t port = 0;
    uint64_t reads = 0;
    uint64_t writes = 0;
  };

  // kInvalidArgument for an empty range, a range past 0xffff or a width other than 1/2/4;
  // kAlreadyExists when it overlaps a registered range; kFull when the table is full.
  Result<void> register_range(uint16_t first_port, uint32_t count, PortDevice* device);

  // The device that claims `port`, or nullptr. Inline: every port-I/O exit looks one up.
  PortDevice* device_at(uint16_t port) const {
    for (size_t i = 0; i < range_count_; ++i) {
      const Range& r = ranges_[i];
      if (port >= r.first && uint32_t{port} < r.first + r.count) return r.device;
    }
    return nullptr;
  }

  // Dispatch one guest access. `width` must be 1, 2 or 4 (checked: anything else reads as
  // all-ones and is counted as unclaimed).
  uint32_t read(uint16_t port, uint8_t width);
  void write(uint16_t port, uint8_t width, uint32_t value);
  // The same for a caller that already has device_at(port) (the exit path looks it up once).
  // Inline, with the unclaimed count of the port counted last (a guest polling one port).
  uint32_t read(PortDevice* device, uint16_t port, uint8_t width) {
    if (device == nullptr || !valid_width(width)) {
      count_unclaimed(port, false);
      return all_ones(valid_width(width) ? width : 4);
    }
    return device->port_read(port, width) & all_ones(width);
  }
  void write(PortDevice* device, uint16_t port, uint8_t width, uint32_t value) {
    if (device == nullptr || !valid_width(width)) {
      count_unclaimed(port, true);
      return;
    }
    device->port_write(port, width, value & all_ones(width));
  }

  const UnclaimedCounters& unclaimed() const { return unclaimed_; }
  // Distinct unclaimed ports seen, in first-seen order; ports beyond kMaxUnclaimedPorts are
  // counted in unclaimed() and in unclaimed_ports_dropped() but not listed.
  const UnclaimedPort* unclaimed_ports() const { return unclaimed_ports_; }
  size_t unclaimed_port_count() const { return unclaimed_port_count_; }
  uint64_t unclaimed_ports_dropped() const { return unclaimed_ports_dropped_; }

 private:
  struct Range {
    uint16_t first = 0;
    uint32_t count = 0;
    PortDevice* device = nullptr;
  };
  static constexpr bool valid_width(uint8_t width) { return width == 1 || width == 2 || width == 4; }
  static constexpr uint32_t all_ones(uint8_t width) { return width >= 4 ? 0xffffffffu : (1u << (width * 8)) - 1; }
  void count_unclaimed(uint16_t port, bool is_write) {
    if (is_write)
      ++unclaimed_.port_writes;
    else
      ++unclaimed_.port_reads;
    // A guest polling one port (a POST-code or delay port) hits the entry counted last.
    if (last_unclaimed_ < unclaimed_port_count_ && unclaimed_ports_[last_unclaimed_].port == port) {
      ++(is_write ? unclaimed_ports_[last_unclaimed_].writes : unclaimed_ports_[last_unclaimed_].reads);
      return;
    }
    count_unclaimed_elsewhere(port, is_write);
  }
  // count_unclaimed() for a port other than the one counted last.
  void count_unclaimed_elsewhere(uint16_t port, bool is_write);

  Range ranges_[kMaxRanges];
  size_t range_count_ = 0;
  UnclaimedCounters unclaimed_;
  UnclaimedPort unclaimed_ports_[kMaxUnclaimedPorts];
  size_t unclaimed_port_count_ = 0;
  size_t last_unclaimed_ = 0;  // index of the entry counted last, checked first
  uint64_t unclaimed_ports_dropped_ = 0;
};

// MMIO bus: guest-physical windows, each owned by one device. Windows may not overlap.
// Unclaimed reads return all-ones and writes are dropped; both are counted.
class MmioBus {
 public:
  static constexpr size_t kMaxWindows = 16;

  Result<void> register_window(uint64_t base, uint64_t size, MmioDevice* device);

  // The device whose window holds `gpa` (and the offset into it), or nullptr.
  MmioDevice* device_at(uint64_t gpa, uint64_t* offset) const;
  // Whether any device's window meets [base, base + size).
  bool claims_any_of(uint64_t base, uint64_t size) const;

  uint64_t read(uint64_t gpa, uint8_t width);
  void write(uint64_t gpa, uint8_t width, uint64_t value);

  const UnclaimedCounters& unclaimed() const { return unclaimed_; }

 private:
  struct Window {
    uint64_t base = 0;
    uint64_t size = 0;
    MmioDevice* device = nullptr;
  };
  // The first window that meets [base, base + size), or nullptr.
  const Window* window_meeting(uint64_t base, uint64_t size) const;
  Window windows_[kMaxWindows];
  size_t window_count_ = 0;
  UnclaimedCounters unclaimed_;
};

}  // namespace lantern::guest
