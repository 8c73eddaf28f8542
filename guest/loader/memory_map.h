// A VM's guest-physical memory map: `mem` MiB of RAM at guest-physical 0 on a PC layout.
// Portable (host-tested). The same table feeds the Multiboot v1 memory map (mmap_*) now and a
// Linux zero page's e820 table later; the type values are the ones both use.
//
// | range                      | type     | why                                              |
// |----------------------------|----------|--------------------------------------------------|
// | 0 - 0x9ffff                | RAM      | low memory, 640 KiB                               |
// | 0xa0000 - 0xfffff          | reserved | the legacy VGA/ROM hole up to 1 MiB              |
// | 0x100000 - mem - 1         | RAM      | the rest of guest RAM                            |
// | 0xfec00000 - 0xfec00fff    | reserved | IOAPIC (Intel 82093AA datasheet, default base)   |
// | 0xfee00000 - 0xfee00fff    | reserved | local APIC (SDM Vol. 3A 11.4.1, default base)    |
// Guest RAM is capped at kMaxRamBytes so that it stays below the 32-bit MMIO windows and every
// address fits a Multiboot v1 (32-bit) field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernel/lib/result.h"

namespace lantern::guest {

// Address range types: ACPI 6.5 section 15 "System Address Map Interfaces", Table 15.1
// (AddressRangeMemory = 1, AddressRangeReserved = 2); the Multiboot 0.6.96 spec section 3.3
// uses the same values ("1 indicates available RAM", other values are reserved).
enum class MemoryRangeType : uint32_t {
  kRam = 1,
  kReserved = 2,
};

struct MemoryRange {
  uint64_t base = 0;
  uint64_t length = 0;
  MemoryRangeType type = MemoryRangeType::kReserved;
  uint64_t end() const { return base + length; }
};

class GuestMemoryMap {
 public:
  static constexpr uint64_t kMiB = 1ull << 20;
  static constexpr uint64_t kLowRamEnd = 0xa0000;     // 640 KiB
  static constexpr uint64_t kHighRamStart = 0x100000;  // 1 MiB
  static constexpr uint64_t kIoApicBase = 0xfec00000;
  static constexpr uint64_t kLocalApicBase = 0xfee00000;
  static constexpr uint64_t kApicWindowSize = 0x1000;
  static constexpr uint64_t kMinRamBytes = 2 * kMiB;
  static constexpr uint64_t kMaxRamBytes = 3072 * kMiB;
  static constexpr size_t kMaxRanges = 8;
  static constexpr size_t kE820EntryBytes = 20;  // u64 addr, u64 size, u32 type (boot protocol)

  // kInvalidArgument for RAM below kMinRamBytes, above kMaxRamBytes or not a multiple of 4 KiB.
  static Result<GuestMemoryMap> for_ram(uint64_t ram_bytes);

  std::span<const MemoryRange> ranges() const { return {ranges_, count_}; }
  uint64_t ram_bytes() const { return ram_bytes_; }

  // True when [base, base + length) lies inside one RAM range.
  bool is_ram(uint64_t base, uint64_t length) const;
  // Lowest address >= `from`, aligned to `align` (a power of two), where `length` bytes of RAM
  // fit inside one RAM range; kOutOfMemory when none does.
  Result<uint64_t> find_ram(uint64_t from, uint64_t length, uint64_t align) const;

  // Multiboot mem_lower / mem_upper (spec 0.6.96 section 3.3): KiB of RAM from 0 and from 1 MiB.
  uint32_t mem_lower_kib() const { return static_cast<uint32_t>(kLowRamEnd / 1024); }
  uint32_t mem_upper_kib() const { return static_cast<uint32_t>((ram_bytes_ - kHighRamStart) / 1024); }

  // The table as packed e820 entries (Linux boot protocol, struct boot_e820_entry: u64 addr,
  // u64 size, u32 type), for a zero page. Returns the number of entries written, or kFull when
  // `out` is too small.
  Result<size_t> write_e820(std::span<uint8_t> out) const;

 private:
  MemoryRange ranges_[kMaxRanges];
  size_t count_ = 0;
  uint64_t ram_bytes_ = 0;
};

}  // namespace lantern::guest
