#include "net/pci/pci_bar.h"

namespace lantern::net::pci {

namespace {

// True if `mask` is ones from some bit up to bit 63 and zeros below (a power-of-two size).
bool is_contiguous_high_mask(uint64_t mask) {
  uint64_t size = ~mask + 1;
  return size != 0 && (size & (size - 1)) == 0;
}

uint16_t bar_offset(uint8_t index) {
  return static_cast<uint16_t>(reg::kBar0 + 4u * index);
}

}  // namespace

Result<PciBar> decode_bar(uint8_t index, uint32_t value_low, uint32_t value_high, uint32_t sized_low,
                          uint32_t sized_high) {
  PciBar bar;
  bar.index = index;
  if (value_low & bar_bits::kIoSpace) {
    uint32_t mask = sized_low & bar_bits::kIoAddressMask;
    if (mask == 0) return bar;  // unimplemented
    // Devices that decode only 16 bits of I/O address may return 0 in bits 31:16
    // (PCI 3.0 6.2.5.1: "the upper 16 bits ... must be zero" is allowed for x86 I/O space).
    if ((mask & 0xFFFF0000u) == 0) mask |= 0xFFFF0000u;
    uint64_t mask64 = 0xFFFFFFFF00000000ull | mask;
    if (!is_contiguous_high_mask(mask64)) {
      return make_error(ErrorCode::kMalformed, "pci: I/O BAR size is not a power of two", index);
    }
    bar.kind = BarKind::kIo;
    bar.base = value_low & bar_bits::kIoAddressMask;
    bar.size = ~mask64 + 1;
    return bar;
  }
  uint32_t type = value_low & bar_bits::kMemTypeMask;
  bool is64 = false;
  if (type == bar_bits::kMemType64) {
    is64 = true;
  } else if (type != bar_bits::kMemType32 && type != bar_bits::kMemTypeBelow1M) {
    return make_error(ErrorCode::kMalformed, "pci: reserved memory BAR type", index);
  }
  uint64_t mask = sized_low & bar_bits::kMemAddressMask;
  mask |= is64 ? (static_cast<uint64_t>(sized_high) << 32) : 0xFFFFFFFF00000000ull;
  bool implemented = is64 ? (mask != 0) : ((sized_low & bar_bits::kMemAddressMask) != 0);
  if (!implemented) return bar;
  if (!is_contiguous_high_mask(mask)) {
    return make_error(ErrorCode::kMalformed, "pci: memory BAR size is not a power of two", index);
  }
  bar.kind = is64 ? BarKind::kMemory64 : BarKind::kMemory32;
  bar.prefetchable = (value_low & bar_bits::kMemPrefetchable) != 0;
  bar.base = (value_low & bar_bits::kMemAddressMask) | (is64 ? static_cast<uint64_t>(value_high) << 32 : 0);
  bar.size = ~mask + 1;
  return bar;
}

Result<PciBar> probe_bar(PciConfigAccess& access, PciAddress address, uint8_t index, uint8_t bar_count) {
  if (index >= bar_count || bar_count > 6) {
    return make_error(ErrorCode::kInvalidArgument, "pci: BAR index out of range", index);
  }
  uint16_t offset = bar_offset(index);
  uint32_t value_low = access.read32(address, offset);
  bool is64 =
      (value_low & bar_bits::kIoSpace) == 0 && (value_low & bar_bits::kMemTypeMask) == bar_bits::kMemType64;
  if (is64 && index + 1 >= bar_count) {
    return make_error(ErrorCode::kMalformed, "pci: 64-bit BAR in the last slot", index);
  }

  // Decode off while the BAR holds all ones (PCI 3.0 6.2.5.1 implementation note).
  uint16_t command = static_cast<uint16_t>(access.read32(address, reg::kCommand));
  uint16_t decode = command::kIoSpace | command::kMemorySpace;
  if (command & decode) {
    access.write32(address, reg::kCommand, static_cast<uint16_t>(command & ~decode));
  }
  access.write32(address, offset, 0xFFFFFFFFu);
  uint32_t sized_low = access.read32(address, offset);
  access.write32(address, offset, value_low);
  uint32_t value_high = 0;
  uint32_t sized_high = 0;
  if (is64) {
    uint16_t high = static_cast<uint16_t>(offset + 4);
    value_high = access.read32(address, high);
    access.write32(address, high, 0xFFFFFFFFu);
    sized_high = access.read32(address, high);
    access.write32(address, high, value_high);
  }
  if (command & decode) access.write32(address, reg::kCommand, command);
  return decode_bar(index, value_low, value_high, sized_low, sized_high);
}

Result<std::array<PciBar, 6>> probe_bars(PciConfigAccess& access, const PciHeader& header) {
  std::array<PciBar, 6> bars{};
  uint8_t count = header.bar_count();
  for (uint8_t i = 0; i < 6; ++i) bars[i].index = i;
  for (uint8_t i = 0; i < count; ++i) {
    PciBar bar = TRY(probe_bar(access, header.address, i, count));
    bars[i] = bar;
    if (bar.kind == BarKind::kMemory64) ++i;  // the next slot is this BAR's upper dword
  }
  return bars;
}

}  // namespace lantern::net::pci
