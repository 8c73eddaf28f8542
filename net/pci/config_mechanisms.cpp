#include "net/pci/config_mechanisms.h"

namespace lantern::net::pci {

bool Cf8ConfigAccess::reachable(PciAddress address, uint16_t offset) {
  return address.segment == 0 && address.device < kMaxDevicesPerBus &&
         address.function < kMaxFunctionsPerDevice && offset < kConfigSpaceBytes;
}

uint32_t Cf8ConfigAccess::read32(PciAddress address, uint16_t offset) {
  if (!reachable(address, offset)) return 0xFFFFFFFFu;
  ports_.out32(kConfigAddressPort, config_address_cf8(address, offset));
  return ports_.in32(kConfigDataPort);
}

void Cf8ConfigAccess::write32(PciAddress address, uint16_t offset, uint32_t value) {
  if (!reachable(address, offset)) return;
  ports_.out32(kConfigAddressPort, config_address_cf8(address, offset));
  ports_.out32(kConfigDataPort, value);
}

Result<uint64_t> ecam_address(const McfgAllocation& allocation, PciAddress address, uint16_t offset) {
  if (address.segment != allocation.segment || address.bus < allocation.start_bus ||
      address.bus > allocation.end_bus) {
    return make_error(ErrorCode::kInvalidArgument, "ecam: bus outside the MCFG allocation", address.bus);
  }
  if (address.device >= kMaxDevicesPerBus || address.function >= kMaxFunctionsPerDevice ||
      offset >= kExtendedConfigSpaceBytes) {
    return make_error(ErrorCode::kInvalidArgument, "ecam: device/function/offset out of range", offset);
  }
  // PCIe Base 3.0 table 7-1: bus 27:20, device 19:15, function 14:12, register 11:0.
  return allocation.base + ((static_cast<uint64_t>(address.bus) << 20) |
                            (static_cast<uint64_t>(address.device) << 15) |
                            (static_cast<uint64_t>(address.function) << 12) | offset);
}

namespace {

constexpr size_t kAcpiHeaderBytes = 36;      // ACPI 6.x, table 5-29
constexpr size_t kMcfgFirstAllocation = 44;  // header + 8 reserved bytes (PCI FW 3.0, table 4-2)
constexpr size_t kMcfgAllocationBytes = 16;  // PCI FW 3.0, table 4-3

uint32_t le32(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint32_t>(b[at]) | static_cast<uint32_t>(b[at + 1]) << 8 |
         static_cast<uint32_t>(b[at + 2]) << 16 | static_cast<uint32_t>(b[at + 3]) << 24;
}

uint64_t le64(std::span<const uint8_t> b, size_t at) {
  return static_cast<uint64_t>(le32(b, at)) | static_cast<uint64_t>(le32(b, at + 4)) << 32;
}

// Offset into an ECAM window that starts at the allocation's start bus, or ~0 if unreachable.
uint32_t window_offset(const McfgAllocation& allocation, PciAddress address, uint16_t offset) {
  auto absolute = ecam_address(allocation, address, offset);
  if (!absolute) return 0xFFFFFFFFu;
  uint64_t start = static_cast<uint64_t>(allocation.start_bus) << 20;
  return static_cast<uint32_t>((*absolute - allocation.base) - start);
}

}  // namespace

Result<McfgTable> parse_mcfg(std::span<const uint8_t> table) {
  if (table.size() < kMcfgFirstAllocation) {
    return make_error(ErrorCode::kTruncated, "mcfg: shorter than its fixed part", table.size());
  }
  if (table[0] != 'M' || table[1] != 'C' || table[2] != 'F' || table[3] != 'G') {
    return make_error(ErrorCode::kMalformed, "mcfg: bad signature", le32(table, 0));
  }
  uint32_t length = le32(table, 4);  // ACPI header Length, offset 4
  if (length < kMcfgFirstAllocation) {
    return make_error(ErrorCode::kMalformed, "mcfg: length below the fixed part", length);
  }
  if (length > table.size()) {
    return make_error(ErrorCode::kTruncated, "mcfg: length beyond the bytes given", length);
  }
  uint8_t sum = 0;
  for (size_t i = 0; i < length; ++i) sum = static_cast<uint8_t>(sum + table[i]);
  if (sum != 0) return make_error(ErrorCode::kBadChecksum, "mcfg: checksum", sum);
  static_assert(kAcpiHeaderBytes + 8 == kMcfgFirstAllocation);

  McfgTable out;
  for (size_t at = kMcfgFirstAllocation; at + kMcfgAllocationBytes <= length; at += kMcfgAllocationBytes) {
    if (out.count == out.allocations.size()) break;
    McfgAllocation a;
    a.base = le64(table, at);
    a.segment = static_cast<uint16_t>(table[at + 8] | table[at + 9] << 8);
    a.start_bus = table[at + 10];
    a.end_bus = table[at + 11];
    if (a.end_bus < a.start_bus) {
      return make_error(ErrorCode::kMalformed, "mcfg: end bus below start bus", at);
    }
    out.allocations[out.count++] = a;
  }
  return out;
}

uint32_t EcamConfigAccess::read32(PciAddress address, uint16_t offset) {
  uint32_t at = window_offset(allocation_, address, static_cast<uint16_t>(offset & ~3u));
  if (at == 0xFFFFFFFFu) return 0xFFFFFFFFu;
  return window_.read32(at);
}

void EcamConfigAccess::write32(PciAddress address, uint16_t offset, uint32_t value) {
  uint32_t at = window_offset(allocation_, address, static_cast<uint16_t>(offset & ~3u));
  if (at == 0xFFFFFFFFu) return;
  window_.write32(at, value);
}

}  // namespace lantern::net::pci
