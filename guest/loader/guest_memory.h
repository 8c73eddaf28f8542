// The seam between the loaders and a VM's RAM: guest-physical reads and writes, bounds-checked.
// Portable. The kernel backs it with the VM's host block (through the direct map); host tests
// back it with a std::vector.
#pragma once

#include <cstdint>
#include <span>

#include "kernel/lib/result.h"

namespace lantern::guest {

class GuestMemory {
 public:
  virtual ~GuestMemory() = default;
  // Bytes of RAM at guest-physical 0.
  virtual uint64_t size() const = 0;
  // kInvalidArgument when [gpa, gpa + n) is not inside [0, size()).
  virtual Result<void> write(uint64_t gpa, std::span<const uint8_t> bytes) = 0;
  virtual Result<void> read(uint64_t gpa, std::span<uint8_t> out) const = 0;
  virtual Result<void> fill(uint64_t gpa, uint8_t value, uint64_t length) = 0;
};

// Guest RAM that is one contiguous host buffer (the kernel's VM block, or a test's vector).
class ByteSpanGuestMemory final : public GuestMemory {
 public:
  explicit ByteSpanGuestMemory(std::span<uint8_t> ram) : ram_(ram) {}
  uint64_t size() const override { return ram_.size(); }
  Result<void> write(uint64_t gpa, std::span<const uint8_t> bytes) override;
  Result<void> read(uint64_t gpa, std::span<uint8_t> out) const override;
  Result<void> fill(uint64_t gpa, uint8_t value, uint64_t length) override;

 private:
  bool contains(uint64_t gpa, uint64_t length) const { return gpa <= ram_.size() && length <= ram_.size() - gpa; }
  std::span<uint8_t> ram_;
};

}  // namespace lantern::guest
