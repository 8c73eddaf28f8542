// The two ways to reach PCI configuration space, as PciConfigAccess implementations over seams:
//
//  * Configuration mechanism #1 (PCI Local Bus Specification 3.0, 3.2.2.3.2): write an address
//    dword to port 0xCF8, then read/write the data dword at port 0xCFC. Segment 0 and the
//    first 256 bytes only. The two port accesses are not atomic: the kernel must hold one lock
//    around every Cf8ConfigAccess call (or use it from one core only).
//  * ECAM, enhanced configuration access (PCI Express Base Specification 3.0, 7.2.2): a 4 KiB
//    memory window per function, located through the ACPI MCFG table (PCI Firmware
//    Specification 3.0, 4.1.2). Bochs's i440FX and QEMU's `-M pc` have no MCFG; `-M q35` does.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "kernel/lib/result.h"
#include "net/mmio.h"
#include "net/pci/pci.h"

namespace lantern::net::pci {

// ---- Configuration mechanism #1 ------------------------------------------------------
inline constexpr uint16_t kConfigAddressPort = 0xCF8;
inline constexpr uint16_t kConfigDataPort = 0xCFC;
inline constexpr uint32_t kConfigAddressEnable = 1u << 31;  // PCI 3.0 3.2.2.3.2, figure 3-2

// The CONFIG_ADDRESS dword: enable bit 31, bus 23:16, device 15:11, function 10:8,
// register 7:2 (bits 1:0 zero).
constexpr uint32_t config_address_cf8(PciAddress address, uint16_t offset) {
  return kConfigAddressEnable | (static_cast<uint32_t>(address.bus) << 16) |
         (static_cast<uint32_t>(address.device & 0x1F) << 11) |
         (static_cast<uint32_t>(address.function & 0x7) << 8) | (offset & 0xFCu);
}

// The port seam the kernel implements with IN/OUT (and host tests with a model).
class PortIo {
 public:
  virtual uint32_t in32(uint16_t port) = 0;
  virtual void out32(uint16_t port, uint32_t value) = 0;

 protected:
  PortIo() = default;
  ~PortIo() = default;
  PortIo(const PortIo&) = default;
  PortIo& operator=(const PortIo&) = default;
};

class Cf8ConfigAccess final : public PciConfigAccess {
 public:
  explicit Cf8ConfigAccess(PortIo& ports) : ports_(ports) {}
  // Segment != 0, device > 31, function > 7 or offset >= 256: reads all ones, writes dropped.
  uint32_t read32(PciAddress address, uint16_t offset) override;
  void write32(PciAddress address, uint16_t offset, uint32_t value) override;

 private:
  static bool reachable(PciAddress address, uint16_t offset);
  PortIo& ports_;
};

// ---- ECAM ------------------------------------------------------------------------------

// One MCFG "configuration space base address allocation structure" (PCI Firmware
// Specification 3.0, table 4-3).
struct McfgAllocation {
  uint64_t base = 0;  // ECAM address of bus 0 of this segment, even if start_bus > 0
  uint16_t segment = 0;
  uint8_t start_bus = 0;
  uint8_t end_bus = 0;
};

// ECAM address of (address, offset): base + bus << 20 | device << 15 | function << 12 | offset
// (PCIe Base 3.0, table 7-1). kInvalidArgument if the segment differs, the bus lies outside
// [start_bus, end_bus], device > 31, function > 7 or offset >= 4096.
Result<uint64_t> ecam_address(const McfgAllocation& allocation, PciAddress address, uint16_t offset);

inline constexpr size_t kMaxMcfgAllocations = 8;
struct McfgTable {
  std::array<McfgAllocation, kMaxMcfgAllocations> allocations{};
  size_t count = 0;
};

// Parses a whole MCFG table (ACPI header included, as found through the RSDT/XSDT): signature
// "MCFG", the header's length no larger than `table`, a zero byte checksum (ACPI 6.x, 5.2.6),
// then 16-byte allocations from byte 44. kTruncated / kMalformed / kBadChecksum accordingly;
// allocations past kMaxMcfgAllocations are ignored; end_bus < start_bus is kMalformed.
Result<McfgTable> parse_mcfg(std::span<const uint8_t> table);

// Configuration access through an ECAM window that starts at `allocation`'s start bus, i.e. a
// window over [base + start_bus << 20, base + (end_bus + 1) << 20). Unreachable addresses read
// all ones and drop writes.
class EcamConfigAccess final : public PciConfigAccess {
 public:
  EcamConfigAccess(MmioWindow& window, const McfgAllocation& allocation)
      : window_(window), allocation_(allocation) {}
  uint32_t read32(PciAddress address, uint16_t offset) override;
  void write32(PciAddress address, uint16_t offset, uint32_t value) override;
  PciBusRange bus_range() const { return {allocation_.start_bus, allocation_.end_bus}; }

 private:
  MmioWindow& window_;
  McfgAllocation allocation_;
};

}  // namespace lantern::net::pci
