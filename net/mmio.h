// MmioWindow: the seam every NIC driver in net/ uses to reach device registers.
//
// A window is a byte-addressed register region (a PCI BAR, or the part of one that a virtio
// capability points at). Offsets are relative to the window's start. The kernel implements it
// over an uncached mapping of the BAR; host tests implement it over RAM or a small device model
// (tests/host/net_test_fakes.h). Drivers never see a pointer into device memory.
//
// Width matters: device registers must be accessed at their natural width (e1000 registers are
// 32-bit: Intel 8254x SDM 13.1 "all registers should be accessed as 32-bit"; virtio common
// configuration fields at theirs: virtio 1.0 spec 4.1.3.1), so each width is its own call.
// 64-bit accesses are composed from two 32-bit ones, low half first: virtio 1.0 spec 4.1.3.1
// lets the driver access the high and low halves of a 64-bit field independently.
//
// The destructor is protected and non-virtual: windows are never deleted through this type,
// so the freestanding kernel needs no deleting destructor (no operator delete).
#pragma once

#include <cstdint>

namespace lantern::net {

class MmioWindow {
 public:
  virtual uint8_t read8(uint32_t offset) = 0;
  virtual uint16_t read16(uint32_t offset) = 0;
  virtual uint32_t read32(uint32_t offset) = 0;
  virtual void write8(uint32_t offset, uint8_t value) = 0;
  virtual void write16(uint32_t offset, uint16_t value) = 0;
  virtual void write32(uint32_t offset, uint32_t value) = 0;

  // Two 32-bit accesses, low dword first (see above).
  uint64_t read64(uint32_t offset) {
    uint64_t low = read32(offset);
    uint64_t high = read32(offset + 4);
    return low | (high << 32);
  }
  void write64(uint32_t offset, uint64_t value) {
    write32(offset, static_cast<uint32_t>(value));
    write32(offset + 4, static_cast<uint32_t>(value >> 32));
  }

 protected:
  MmioWindow() = default;
  ~MmioWindow() = default;
  MmioWindow(const MmioWindow&) = default;
  MmioWindow& operator=(const MmioWindow&) = default;
};

}  // namespace lantern::net
