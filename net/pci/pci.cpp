#include "net/pci/pci.h"

namespace lantern::net::pci {

uint8_t PciConfigAccess::read8(PciAddress address, uint16_t offset) {
  uint32_t dword = read32(address, static_cast<uint16_t>(offset & ~3u));
  return static_cast<uint8_t>(dword >> ((offset & 3u) * 8));
}

uint16_t PciConfigAccess::read16(PciAddress address, uint16_t offset) {
  uint32_t dword = read32(address, static_cast<uint16_t>(offset & ~3u));
  return static_cast<uint16_t>(dword >> ((offset & 2u) * 8));
}

void PciConfigAccess::write8(PciAddress address, uint16_t offset, uint8_t value) {
  uint16_t aligned = static_cast<uint16_t>(offset & ~3u);
  unsigned shift = (offset & 3u) * 8;
  uint32_t dword = read32(address, aligned);
  dword = (dword & ~(0xFFu << shift)) | (static_cast<uint32_t>(value) << shift);
  write32(address, aligned, dword);
}

void PciConfigAccess::write16(PciAddress address, uint16_t offset, uint16_t value) {
  uint16_t aligned = static_cast<uint16_t>(offset & ~3u);
  unsigned shift = (offset & 2u) * 8;
  uint32_t dword = read32(address, aligned);
  dword = (dword & ~(0xFFFFu << shift)) | (static_cast<uint32_t>(value) << shift);
  write32(address, aligned, dword);
}

uint8_t PciHeader::bar_count() const {
  switch (header_type) {
    case kHeaderTypeGeneral: return 6;  // PCI 3.0 6.2.5.1: BARs at 0x10..0x24
    case kHeaderTypeBridge: return 2;   // bridge spec 1.2, 3.2.5.1: BARs at 0x10..0x14
    default: return 0;
  }
}

Result<PciHeader> read_header(PciConfigAccess& access, PciAddress address) {
  uint32_t id = access.read32(address, reg::kVendorId);
  if ((id & 0xFFFFu) == kInvalidVendorId) {
    return make_error(ErrorCode::kNotFound, "pci: no function at this address", address.bus);
  }
  PciHeader h;
  h.address = address;
  h.vendor_id = static_cast<uint16_t>(id);
  h.device_id = static_cast<uint16_t>(id >> 16);
  uint32_t cmd_status = access.read32(address, reg::kCommand);
  h.command = static_cast<uint16_t>(cmd_status);
  h.status = static_cast<uint16_t>(cmd_status >> 16);
  uint32_t class_rev = access.read32(address, reg::kRevisionId);
  h.revision = static_cast<uint8_t>(class_rev);
  h.prog_if = static_cast<uint8_t>(class_rev >> 8);
  h.subclass = static_cast<uint8_t>(class_rev >> 16);
  h.class_code = static_cast<uint8_t>(class_rev >> 24);
  uint8_t header_type = access.read8(address, reg::kHeaderType);
  h.header_type = header_type & kHeaderTypeMask;
  h.multifunction = (header_type & kHeaderMultiFunction) != 0;
  uint32_t interrupt = access.read32(address, reg::kInterruptLine);
  h.interrupt_line = static_cast<uint8_t>(interrupt);
  h.interrupt_pin = static_cast<uint8_t>(interrupt >> 8);
  if (h.header_type == kHeaderTypeGeneral) {
    uint32_t subsystem = access.read32(address, reg::kSubsystemVendorId);
    h.subsystem_vendor_id = static_cast<uint16_t>(subsystem);
    h.subsystem_id = static_cast<uint16_t>(subsystem >> 16);
  } else if (h.header_type == kHeaderTypeBridge) {
    uint32_t buses = access.read32(address, reg::kPrimaryBus);
    h.secondary_bus = static_cast<uint8_t>(buses >> 8);
    h.subordinate_bus = static_cast<uint8_t>(buses >> 16);
  }
  // The capabilities pointer is only meaningful in type 0/1 headers with Status bit 4 set
  // (PCI 3.0 6.7); type 2 (CardBus) keeps it at 0x14.
  if (h.has_capabilities() && (h.header_type == kHeaderTypeGeneral || h.header_type == kHeaderTypeBridge)) {
    h.capabilities_pointer = access.read8(address, reg::kCapabilitiesPointer);
  }
  return h;
}

uint16_t set_command_bits(PciConfigAccess& access, PciAddress address, uint16_t set, uint16_t clear) {
  uint16_t command = static_cast<uint16_t>(access.read32(address, reg::kCommand));
  command = static_cast<uint16_t>((command | set) & ~clear);
  // Upper half (Status) written as 0: its error bits are RW1C (PCI 3.0 6.2.3).
  access.write32(address, reg::kCommand, command);
  return command;
}

const PciHeader* PciDeviceList::find(uint16_t vendor_id, uint16_t device_id) const {
  for (const PciHeader& h : *this) {
    if (h.vendor_id == vendor_id && h.device_id == device_id) return &h;
  }
  return nullptr;
}

const PciHeader* PciDeviceList::find_class(uint8_t class_code, uint8_t subclass) const {
  for (const PciHeader& h : *this) {
    if (h.class_code == class_code && h.subclass == subclass) return &h;
  }
  return nullptr;
}

namespace {

void record(PciDeviceList& out, const PciHeader& header, size_t& total) {
  ++total;
  if (out.count < out.functions.size()) {
    out.functions[out.count++] = header;
  } else {
    ++out.dropped;
  }
}

}  // namespace

Result<size_t> enumerate(PciConfigAccess& access, PciDeviceList& out, PciBusRange range, uint16_t segment) {
  out.count = 0;
  out.dropped = 0;
  if (range.first > range.last) {
    return make_error(ErrorCode::kInvalidArgument, "pci: empty bus range", range.first);
  }
  size_t total = 0;
  for (unsigned bus = range.first; bus <= range.last; ++bus) {
    for (uint8_t device = 0; device < kMaxDevicesPerBus; ++device) {
      PciAddress f0{segment, static_cast<uint8_t>(bus), device, 0};
      auto header0 = read_header(access, f0);
      if (!header0) continue;  // no function 0: the device is absent (PCI 3.0 6.2.1)
      record(out, *header0, total);
      if (!header0->multifunction) continue;
      for (uint8_t function = 1; function < kMaxFunctionsPerDevice; ++function) {
        auto header = read_header(access, PciAddress{segment, static_cast<uint8_t>(bus), device, function});
        if (header) record(out, *header, total);
      }
    }
  }
  if (out.dropped != 0) {
    return make_error(ErrorCode::kFull, "pci: more functions than the list holds", total);
  }
  return total;
}

}  // namespace lantern::net::pci
