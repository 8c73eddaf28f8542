// PCI configuration space: addresses, the access seam, header decoding, the command register
// and bus enumeration. Portable: every config access goes through PciConfigAccess, which the
// kernel implements with configuration mechanism #1 (ports 0xCF8/0xCFC) or ECAM
// (net/pci/config_mechanisms.h) and host tests implement over a RAM model.
//
// References: PCI Local Bus Specification 3.0 (below "PCI 3.0"), 6.1 (configuration space
// organisation), 6.2 (the type 0 header), 3.2.2.3.2 (configuration mechanism #1);
// PCI-to-PCI Bridge Architecture Specification 1.2, 3.2 (the type 1 header).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::net::pci {

struct PciAddress {
  uint16_t segment = 0;  // PCI segment group (ECAM / ACPI MCFG); always 0 for 0xCF8/0xCFC
  uint8_t bus = 0;       // 0..255
  uint8_t device = 0;    // 0..31 (PCI 3.0 3.2.2.3.2: 5-bit device number)
  uint8_t function = 0;  // 0..7 (3-bit function number)

  friend bool operator==(const PciAddress&, const PciAddress&) = default;
};

inline constexpr uint8_t kMaxDevicesPerBus = 32;
inline constexpr uint8_t kMaxFunctionsPerDevice = 8;
inline constexpr uint16_t kConfigSpaceBytes = 256;           // conventional config space (PCI 3.0 6.1)
inline constexpr uint16_t kExtendedConfigSpaceBytes = 4096;  // PCIe extended space (ECAM only)

// The access seam. Offsets are byte offsets into the function's configuration space; read32 and
// write32 are called with dword-aligned offsets only (the helpers below guarantee it). A read
// of an absent function returns 0xFFFFFFFF (PCI 3.0 6.1: a master abort on a configuration read
// returns all ones), so implementations need no error path.
class PciConfigAccess {
 public:
  virtual uint32_t read32(PciAddress address, uint16_t offset) = 0;
  virtual void write32(PciAddress address, uint16_t offset, uint32_t value) = 0;

  // 8/16-bit accesses derived from dword accesses. Writes are read-modify-write of the
  // containing dword: beware of RW1C bits sharing that dword (the Status register shares
  // dword 1 with Command, so use set_command_bits() rather than write16(…, 0x04, …)).
  uint8_t read8(PciAddress address, uint16_t offset);
  uint16_t read16(PciAddress address, uint16_t offset);  // offset must be even
  void write8(PciAddress address, uint16_t offset, uint8_t value);
  void write16(PciAddress address, uint16_t offset, uint16_t value);  // offset must be even

 protected:
  PciConfigAccess() = default;
  ~PciConfigAccess() = default;
  PciConfigAccess(const PciConfigAccess&) = default;
  PciConfigAccess& operator=(const PciConfigAccess&) = default;
};

// Header register offsets common to every header type (PCI 3.0 6.1, figure 6-1).
namespace reg {
inline constexpr uint16_t kVendorId = 0x00;
inline constexpr uint16_t kDeviceId = 0x02;
inline constexpr uint16_t kCommand = 0x04;
inline constexpr uint16_t kStatus = 0x06;
inline constexpr uint16_t kRevisionId = 0x08;
inline constexpr uint16_t kProgIf = 0x09;
inline constexpr uint16_t kSubclass = 0x0A;
inline constexpr uint16_t kClassCode = 0x0B;
inline constexpr uint16_t kCacheLineSize = 0x0C;
inline constexpr uint16_t kLatencyTimer = 0x0D;
inline constexpr uint16_t kHeaderType = 0x0E;
inline constexpr uint16_t kBar0 = 0x10;                 // BARs: 0x10..0x24 (type 0), 0x10..0x14 (type 1)
inline constexpr uint16_t kSubsystemVendorId = 0x2C;    // type 0 only
inline constexpr uint16_t kSubsystemId = 0x2E;          // type 0 only
inline constexpr uint16_t kCapabilitiesPointer = 0x34;  // types 0 and 1
inline constexpr uint16_t kInterruptLine = 0x3C;
inline constexpr uint16_t kInterruptPin = 0x3D;
// Type 1 (PCI-to-PCI bridge) header, bridge spec 1.2, 3.2.5.2-3.2.5.4.
inline constexpr uint16_t kPrimaryBus = 0x18;
inline constexpr uint16_t kSecondaryBus = 0x19;
inline constexpr uint16_t kSubordinateBus = 0x1A;
}  // namespace reg

// Command register bits (PCI 3.0 6.2.2, figure 6-2).
namespace command {
inline constexpr uint16_t kIoSpace = 1u << 0;
inline constexpr uint16_t kMemorySpace = 1u << 1;
inline constexpr uint16_t kBusMaster = 1u << 2;
inline constexpr uint16_t kInterruptDisable = 1u << 10;  // INTx# disable
}  // namespace command

// Status register bits (PCI 3.0 6.2.3, figure 6-3).
namespace status {
inline constexpr uint16_t kInterruptStatus = 1u << 3;  // INTx# asserted
inline constexpr uint16_t kCapabilitiesList = 1u << 4;
}  // namespace status

// Header Type register (PCI 3.0 6.2.1): bits 6:0 layout, bit 7 multi-function.
inline constexpr uint8_t kHeaderTypeMask = 0x7F;
inline constexpr uint8_t kHeaderMultiFunction = 0x80;
inline constexpr uint8_t kHeaderTypeGeneral = 0x00;
inline constexpr uint8_t kHeaderTypeBridge = 0x01;
inline constexpr uint8_t kHeaderTypeCardBus = 0x02;

inline constexpr uint16_t kInvalidVendorId = 0xFFFF;  // nothing answered (PCI 3.0 6.2.1)

struct PciHeader {
  PciAddress address;
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint16_t command = 0;
  uint16_t status = 0;
  uint8_t revision = 0;
  uint8_t prog_if = 0;
  uint8_t subclass = 0;
  uint8_t class_code = 0;
  uint8_t header_type = 0;  // bits 6:0 only
  bool multifunction = false;
  uint8_t interrupt_line = 0;        // what firmware routed INTx to (0xFF: unknown / not connected)
  uint8_t interrupt_pin = 0;         // 0 none, 1..4 INTA#..INTD# (PCI 3.0 6.2.4)
  uint16_t subsystem_vendor_id = 0;  // type 0 headers only, else 0
  uint16_t subsystem_id = 0;
  uint8_t capabilities_pointer = 0;  // raw; 0 unless the Status register's bit 4 is set
  uint8_t secondary_bus = 0;         // type 1 headers only
  uint8_t subordinate_bus = 0;

  bool has_capabilities() const { return (status & status::kCapabilitiesList) != 0; }
  bool is_bridge() const { return header_type == kHeaderTypeBridge; }
  // Number of BAR slots in this header layout: 6 (type 0), 2 (type 1), 0 otherwise.
  uint8_t bar_count() const;
};

// Reads and decodes the header of one function. kNotFound if the vendor ID reads 0xFFFF.
Result<PciHeader> read_header(PciConfigAccess& access, PciAddress address);

// Sets then clears bits in the Command register. The Status half of that dword is written as
// zero, which leaves its RW1C bits alone (PCI 3.0 6.2.3). Returns the new command value.
uint16_t set_command_bits(PciConfigAccess& access, PciAddress address, uint16_t set, uint16_t clear);

// ---- Enumeration ---------------------------------------------------------------------
//
// Strategy: a brute-force scan of every (bus, device) in the given bus range, rather than
// recursion through bridges' secondary bus numbers. Reasons: (1) it needs no trust in
// bridge programming: a bridge whose secondary bus points back at its own bus would make a
// recursive walk loop, and a bus that firmware left unnumbered is still reported if reachable;
// (2) no recursion depth on a small kernel stack; (3) the cost is bounded and small: 256 × 32
// function-0 vendor reads (8192 dword reads) once at boot. Within a device, functions 1..7
// are probed only when function 0 exists and sets the multi-function bit (PCI 3.0 6.2.1):
// single-function devices may answer for every function number, which would list them 8 times.

inline constexpr size_t kMaxPciFunctions = 64;

struct PciBusRange {
  uint8_t first = 0;
  uint8_t last = 255;  // inclusive
};

struct PciDeviceList {
  std::array<PciHeader, kMaxPciFunctions> functions{};
  size_t count = 0;
  size_t dropped = 0;  // functions found after the list was full

  const PciHeader* begin() const { return functions.data(); }
  const PciHeader* end() const { return functions.data() + count; }
  // First function with this vendor/device ID, or nullptr.
  const PciHeader* find(uint16_t vendor_id, uint16_t device_id) const;
  // First function with this class/subclass, or nullptr.
  const PciHeader* find_class(uint8_t class_code, uint8_t subclass) const;
};

// Scans `range` in (bus, device, function) order into `out` (reset first). On success returns
// the number of functions found. If more than kMaxPciFunctions exist, the first 64 stay in
// `out`, `out.dropped` counts the rest and the result is kFull (detail = total found).
// kInvalidArgument if range.first > range.last.
Result<size_t> enumerate(PciConfigAccess& access, PciDeviceList& out, PciBusRange range = PciBusRange{},
                         uint16_t segment = 0);

// Class codes used by net/ (PCI Code and ID Assignment Specification 1.x, class 02h).
inline constexpr uint8_t kClassNetwork = 0x02;
inline constexpr uint8_t kSubclassEthernet = 0x00;
inline constexpr uint8_t kClassBridge = 0x06;
inline constexpr uint8_t kSubclassPciToPci = 0x04;

}  // namespace lantern::net::pci
