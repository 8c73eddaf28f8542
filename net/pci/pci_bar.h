// Base Address Registers: decoding and sizing (PCI Local Bus Specification 3.0, 6.2.5.1).
//
// Sizing protocol: with the function's I/O and memory decode turned off (so a half-written BAR
// never claims bus addresses; PCI 3.0 6.2.5.1 implementation note), save the BAR, write all
// ones, read back the size mask, restore the BAR; for a 64-bit BAR do the same to the upper
// dword; finally restore the Command register. The size is the two's complement of the
// read-back with the low flag bits masked off.
#pragma once

#include <array>
#include <cstdint>

#include "kernel/lib/result.h"
#include "net/pci/pci.h"

namespace lantern::net::pci {

enum class BarKind : uint8_t {
  kNone,      // unimplemented (reads back zero), or the upper dword of a 64-bit BAR
  kIo,        // bit 0 = 1: I/O space
  kMemory32,  // bits 2:1 = 00b (or 01b, "below 1 MiB", PCI 2.2 only)
  kMemory64,  // bits 2:1 = 10b: this BAR and the next form one 64-bit address
};

// BAR flag bits (PCI 3.0 6.2.5.1, figures 6-5 and 6-6).
namespace bar_bits {
inline constexpr uint32_t kIoSpace = 1u << 0;
inline constexpr uint32_t kIoAddressMask = ~0x3u;    // bits 31:2
inline constexpr uint32_t kMemTypeMask = 0x3u << 1;  // bits 2:1
inline constexpr uint32_t kMemType32 = 0x0u << 1;
inline constexpr uint32_t kMemTypeBelow1M = 0x1u << 1;  // reserved in PCI 3.0
inline constexpr uint32_t kMemType64 = 0x2u << 1;
inline constexpr uint32_t kMemPrefetchable = 1u << 3;
inline constexpr uint32_t kMemAddressMask = ~0xFu;  // bits 31:4
}  // namespace bar_bits

struct PciBar {
  uint8_t index = 0;
  BarKind kind = BarKind::kNone;
  bool prefetchable = false;
  uint64_t base = 0;  // bus address (I/O port number for kIo)
  uint64_t size = 0;  // bytes (ports for kIo); a power of two, 0 for kNone

  bool is_memory() const { return kind == BarKind::kMemory32 || kind == BarKind::kMemory64; }
  bool present() const { return kind != BarKind::kNone; }
};

// Pure decoder, table-testable: `value_*` are the BAR as firmware left it, `sized_*` what
// reads back after writing all ones (the high dwords only matter for a 64-bit BAR).
// kMalformed for the reserved memory type 11b, or a size mask that is not a contiguous run of
// high ones (size not a power of two).
Result<PciBar> decode_bar(uint8_t index, uint32_t value_low, uint32_t value_high, uint32_t sized_low,
                          uint32_t sized_high);

// Sizes BAR `index` of a function whose header has `bar_count` BAR slots (PciHeader::bar_count).
// kInvalidArgument if index >= bar_count; kMalformed if a 64-bit BAR sits in the last slot.
// Leaves the BAR's value and the Command register as they were.
Result<PciBar> probe_bar(PciConfigAccess& access, PciAddress address, uint8_t index, uint8_t bar_count = 6);

// Every BAR of a function; the slot holding the upper half of a 64-bit BAR reads kNone.
// Stops at the first malformed BAR.
Result<std::array<PciBar, 6>> probe_bars(PciConfigAccess& access, const PciHeader& header);

}  // namespace lantern::net::pci
