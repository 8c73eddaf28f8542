// KernelMmioWindow: net/mmio.h's MmioWindow over an uncached mapping from paging::map_mmio()
// (PAT UC: every access reaches the device, in order; Intel SDM Vol. 3A 11.3). Kernel-only.
// Accesses outside the window read all ones and drop writes (a bug in a driver must not
// become a stray write into whatever is mapped next).
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"
#include "net/mmio.h"

namespace lantern::net::kernel {

class KernelMmioWindow final : public MmioWindow {
 public:
  KernelMmioWindow() = default;

  // Maps [phys, phys + size) uncached. kInvalidArgument for size 0; errors of map_mmio.
  Result<void> map(uint64_t phys, uint64_t size);
  // A window onto [offset, offset + size) of an already mapped window (virtio regions in a BAR).
  Result<void> subwindow(const KernelMmioWindow& parent, uint64_t offset, uint64_t size);

  bool mapped() const { return base_ != 0; }
  uint64_t size() const { return size_; }
  uint64_t phys() const { return phys_; }

  uint8_t read8(uint32_t offset) override { return read<uint8_t>(offset); }
  uint16_t read16(uint32_t offset) override { return read<uint16_t>(offset); }
  uint32_t read32(uint32_t offset) override { return read<uint32_t>(offset); }
  void write8(uint32_t offset, uint8_t value) override { write<uint8_t>(offset, value); }
  void write16(uint32_t offset, uint16_t value) override { write<uint16_t>(offset, value); }
  void write32(uint32_t offset, uint32_t value) override { write<uint32_t>(offset, value); }

 private:
  template <typename T>
  bool inside(uint32_t offset) const {
    return base_ != 0 && offset <= size_ && sizeof(T) <= size_ - offset;
  }
  template <typename T>
  T read(uint32_t offset) {
    if (!inside<T>(offset)) return static_cast<T>(~T{0});
    return *reinterpret_cast<volatile T*>(base_ + offset);
  }
  template <typename T>
  void write(uint32_t offset, T value) {
    if (inside<T>(offset)) *reinterpret_cast<volatile T*>(base_ + offset) = value;
  }

  uintptr_t base_ = 0;
  uint64_t size_ = 0;
  uint64_t phys_ = 0;
};

}  // namespace lantern::net::kernel
