// Portable parser of the ACPI static tables Lantern needs to bring up the machine: the RSDP,
// the RSDT/XSDT root directory, the MADT (CPUs, I/O APICs, interrupt overrides, NMIs) and the
// MCFG (PCI Express ECAM windows).
//
// References: ACPI Specification 6.5, section 5.2 "ACPI System Description Tables":
//   5.2.5 RSDP (5.2.5.1 finding it on IA-PC, 5.2.5.3 its layout), 5.2.6 System Description Table
//   Header, 5.2.7 RSDT, 5.2.8 XSDT, 5.2.12 MADT. MCFG: PCI Firmware Specification 3.x, section
//   4.1.2 "MCFG Table Description".
//
// Physical memory is reached only through PhysicalMemoryReader, so every function runs on the
// host under GoogleTest against a fake. Nothing allocates; every field read is bounds-checked
// against the span it comes from, and table lengths are checked against what the reader returned.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "kernel/lib/result.h"

namespace lantern::acpi {

// The seam to physical memory. The kernel implements it over its direct map, refusing ranges
// outside known RAM/ACPI regions; tests implement it over a std::map of byte regions.
// A successful read returns a span of exactly `length` bytes that stays valid while the reader
// lives (the parser never copies table bodies).
class PhysicalMemoryReader {
 public:
  virtual ~PhysicalMemoryReader() = default;
  virtual Result<std::span<const uint8_t>> read(uint64_t phys, size_t length) = 0;
};

// A 4-character table signature ("APIC", "MCFG", ...). ACPI 6.5 5.2.6: Signature.
struct Signature {
  std::array<char, 4> chars{};
  std::string_view view() const { return std::string_view(chars.data(), chars.size()); }
  // Compared byte by byte: std::array's operator== lowers to memcmp, which the freestanding
  // kernel need not provide.
  bool operator==(const Signature& other) const {
    for (size_t i = 0; i < chars.size(); ++i) {
      if (chars[i] != other.chars[i]) return false;
    }
    return true;
  }
};

// Copies 4 characters (not NUL-terminated) into a Signature.
Signature make_signature(const char sig[4]);

// ---------------------------------------------------------------------------------------------
// RSDP, ACPI 6.5 5.2.5.3.
// ---------------------------------------------------------------------------------------------
struct Rsdp {
  static constexpr size_t kV1Size = 20;  // checksum covers "the first 20 bytes"
  static constexpr size_t kV2Size = 36;  // Length is 36 for revision 2 and later

  uint8_t revision = 0;           // 0 = ACPI 1.0 (no XSDT); 2 = ACPI 2.0 and later
  std::array<char, 6> oem_id{};   // OEMID, not NUL-terminated
  uint32_t rsdt_address = 0;      // 32-bit physical address of the RSDT
  uint32_t length = kV1Size;      // whole structure size (20 for revision < 2)
  uint64_t xsdt_address = 0;      // 64-bit physical address of the XSDT (revision >= 2 only)
  uint64_t physical_address = 0;  // where it was found (0 when parsed from a copy, e.g. GRUB's)

  bool has_xsdt() const { return revision >= 2 && xsdt_address != 0; }
};

// Validates and decodes an RSDP: signature "RSD PTR ", checksum over the first 20 bytes and,
// for revision >= 2, the Length field (>= 36, <= bytes.size()) and the extended checksum over
// Length bytes. Errors: kTruncated (span too short), kMalformed (signature, length),
// kBadChecksum (message says which checksum).
Result<Rsdp> parse_rsdp(std::span<const uint8_t> bytes);

// ACPI 6.5 5.2.5.1: scans the first 1 KiB of the EBDA (real-mode segment stored at 0x40E) and
// then 0xE0000-0xFFFFF, on 16-byte boundaries, for a valid RSDP. Candidates whose checksum
// fails are skipped. kNotFound (detail = number of rejected candidates) if none is valid.
Result<Rsdp> find_rsdp_in_bios_area(PhysicalMemoryReader& reader);

// ---------------------------------------------------------------------------------------------
// System Description Table header, ACPI 6.5 5.2.6: 36 bytes at the start of every
// table except the RSDP and FACS.
// ---------------------------------------------------------------------------------------------
struct SdtHeader {
  static constexpr size_t kSize = 36;

  Signature signature;
  uint32_t length = 0;  // whole table, header included
  uint8_t revision = 0;
  std::array<char, 6> oem_id{};
  std::array<char, 8> oem_table_id{};
  uint32_t oem_revision = 0;
  uint32_t creator_id = 0;
  uint32_t creator_revision = 0;
};

// Decodes the header of `table` and validates it against the span: length >= 36 (kMalformed),
// length <= table.size() (kTruncated), checksum over `length` bytes (kBadChecksum).
Result<SdtHeader> parse_sdt_header(std::span<const uint8_t> table);

// ---------------------------------------------------------------------------------------------
// Root directory: RSDT (5.2.7, 32-bit entries) or XSDT (5.2.8, 64-bit entries).
// ---------------------------------------------------------------------------------------------
struct TableEntry {
  uint64_t address = 0;   // physical address of the table, as listed in the root table
  Signature signature;    // the table's first four bytes (zero if unreadable)
  bool readable = false;  // false if the reader refused the address (entry kept, not hidden)
};

struct TableDirectory {
  static constexpr size_t kMaxTables = 64;

  bool is_xsdt = false;
  uint64_t root_address = 0;  // physical address of the RSDT/XSDT that was used
  SdtHeader root_header;
  size_t count = 0;
  std::array<TableEntry, kMaxTables> entries{};

  std::span<const TableEntry> tables() const { return std::span(entries.data(), count); }
};

// Reads the XSDT when rsdp.revision >= 2 and its address is non-zero, else the RSDT. Validates
// the signature ("XSDT"/"RSDT", kMalformed), the header (see parse_sdt_header), that the entry
// area is a whole number of entries (kMalformed), and that there are at most 64 entries (kFull,
// detail = entry count). A corrupt XSDT is an error; there is no silent fallback to the RSDT.
// Each entry's signature is read through the reader; an entry the reader refuses is kept with
// readable = false so a single bogus pointer does not hide the others.
Result<TableDirectory> read_root_table(PhysicalMemoryReader& reader, const Rsdp& rsdp);

// Returns the first table listed with signature `sig` whose header and checksum are valid
// (span of exactly header.length bytes). kNotFound if none is listed; otherwise, if every
// match is invalid, the error of the first match (kBadChecksum, kMalformed, reader errors...).
Result<std::span<const uint8_t>> find_table(PhysicalMemoryReader& reader, const TableDirectory& directory,
                                            const char sig[4]);

// Reads one table at `phys` (header first, then header.length bytes) and validates it.
Result<std::span<const uint8_t>> read_table_at(PhysicalMemoryReader& reader, uint64_t phys);

// ---------------------------------------------------------------------------------------------
// MADT, ACPI 6.5 5.2.12.
// ---------------------------------------------------------------------------------------------

// MPS INTI flags, ACPI 6.5 5.2.12.5: bits 1:0 polarity, bits 3:2 trigger mode.
enum class Polarity : uint8_t {
  kConforms = 0,    // 00: conforms to the bus specification (ISA: active high)
  kActiveHigh = 1,  // 01
  kReserved = 2,    // 10
  kActiveLow = 3,   // 11
};
enum class TriggerMode : uint8_t {
  kConforms = 0,  // 00: conforms to the bus specification (ISA: edge)
  kEdge = 1,      // 01
  kReserved = 2,  // 10
  kLevel = 3,     // 11
};
constexpr Polarity inti_polarity(uint16_t flags) {
  return static_cast<Polarity>(flags & 0x3);
}
constexpr TriggerMode inti_trigger(uint16_t flags) {
  return static_cast<TriggerMode>((flags >> 2) & 0x3);
}

// One logical processor, from a Processor Local APIC (type 0, 5.2.12.2) or Processor Local
// x2APIC (type 9, 5.2.12.12) entry.
struct MadtCpu {
  // Local APIC Flags, ACPI 6.5 5.2.12.2.
  static constexpr uint32_t kFlagEnabled = 1u << 0;        // bit 0: Enabled
  static constexpr uint32_t kFlagOnlineCapable = 1u << 1;  // bit 1: Online Capable (6.3+)

  uint32_t apic_id = 0;   // (x2)APIC ID
  uint32_t acpi_uid = 0;  // ACPI Processor UID (8-bit for type 0, 32-bit for type 9)
  uint32_t flags = 0;     // raw Local APIC Flags
  bool x2apic = false;    // came from a type-9 entry

  bool enabled() const { return (flags & kFlagEnabled) != 0; }
  // "Online Capable" only has meaning when Enabled is clear (5.2.12.2).
  bool online_capable() const { return !enabled() && (flags & kFlagOnlineCapable) != 0; }
  // Usable = enabled now, or may be brought online later. Entries with neither are kept but
  // must be ignored by the OS.
  bool usable() const { return enabled() || online_capable(); }
};

// I/O APIC entry, type 1, ACPI 6.5 5.2.12.3.
struct MadtIoApic {
  uint8_t id = 0;
  uint32_t address = 0;   // 32-bit physical MMIO base
  uint32_t gsi_base = 0;  // Global System Interrupt Base: first GSI of its redirection table
};

// Interrupt Source Override entry, type 2, ACPI 6.5 5.2.12.5.
struct MadtInterruptOverride {
  uint8_t bus = 0;     // 0 = ISA ("Constant, meaning ISA")
  uint8_t source = 0;  // bus-relative interrupt source (ISA IRQ)
  uint32_t gsi = 0;    // Global System Interrupt it is wired to
  uint16_t flags = 0;  // MPS INTI flags
  Polarity polarity() const { return inti_polarity(flags); }
  TriggerMode trigger() const { return inti_trigger(flags); }
};

// Local APIC NMI (type 4, 5.2.12.7) or Local x2APIC NMI (type 0xA, 5.2.12.13).
struct MadtLocalNmi {
  // A type-4 UID of 0xFF and a type-0xA UID of 0xFFFFFFFF both mean "all processors"; both
  // are stored as kAllProcessors.
  static constexpr uint32_t kAllProcessors = 0xFFFFFFFFu;

  uint32_t acpi_uid = kAllProcessors;
  uint16_t flags = 0;  // MPS INTI flags
  uint8_t lint = 0;    // LINT# input (0 or 1) the NMI is wired to
  bool x2apic = false;
  bool applies_to_all() const { return acpi_uid == kAllProcessors; }
};

struct MadtInfo {
  static constexpr size_t kMaxCpus = 256;
  static constexpr size_t kMaxIoApics = 8;
  static constexpr size_t kMaxOverrides = 32;
  static constexpr size_t kMaxNmis = 256;  // some firmware lists one LAPIC NMI per processor
  // MADT Flags, ACPI 6.5 5.2.12: bit 0 PCAT_COMPAT, "the system also has a
  // PC-AT-compatible dual-8259 setup" that the OS must mask before using the I/O APIC.
  static constexpr uint32_t kFlagPcatCompat = 1u << 0;

  uint64_t local_apic_address = 0;  // header value, or the type-5 override when present
  bool local_apic_address_overridden = false;
  uint32_t flags = 0;

  size_t cpu_count = 0;  // every CPU entry, usable or not (x2APIC duplicates excluded)
  std::array<MadtCpu, kMaxCpus> cpus{};
  size_t duplicate_cpu_entries = 0;  // entries whose APIC ID was already listed (kept: first)

  size_t io_apic_count = 0;
  std::array<MadtIoApic, kMaxIoApics> io_apics{};

  size_t override_count = 0;
  std::array<MadtInterruptOverride, kMaxOverrides> overrides{};

  size_t nmi_count = 0;
  std::array<MadtLocalNmi, kMaxNmis> nmis{};

  size_t skipped_entries = 0;  // entry types this parser does not decode (3, 6, 7, 8, 0xB...)

  bool pcat_compat() const { return (flags & kFlagPcatCompat) != 0; }
  std::span<const MadtCpu> all_cpus() const { return std::span(cpus.data(), cpu_count); }
  std::span<const MadtIoApic> io_apic_list() const { return std::span(io_apics.data(), io_apic_count); }
  std::span<const MadtInterruptOverride> override_list() const {
    return std::span(overrides.data(), override_count);
  }
  std::span<const MadtLocalNmi> nmi_list() const { return std::span(nmis.data(), nmi_count); }
  size_t enabled_cpu_count() const;
  size_t usable_cpu_count() const;
  // The GSI an ISA IRQ is delivered on (identity unless an override on bus 0 says otherwise),
  // with the override's flags (0 = conforms) through *flags when non-null.
  uint32_t isa_irq_to_gsi(uint8_t irq, uint16_t* flags = nullptr) const;
};

// Parses a whole MADT (header included). Validates the header (parse_sdt_header, signature
// "APIC"), length >= 44 (kTruncated), and every entry: length < 2 or running past the table is
// kMalformed with the entry's offset as detail; a known type shorter than its structure is
// kMalformed (detail = offset). More than 256 CPUs / 8 I/O APICs / 32 overrides / 256 NMIs is
// kFull (detail = offset of the entry that did not fit). Unknown entry types are skipped.
Result<MadtInfo> parse_madt(std::span<const uint8_t> table);

// ---------------------------------------------------------------------------------------------
// MCFG, PCI Firmware Specification 3.x section 4.1.2 "MCFG Table Description".
// ---------------------------------------------------------------------------------------------
struct McfgAllocation {
  uint64_t base_address = 0;  // ECAM base: bus N's config space starts at base + (N << 20)
  uint16_t segment = 0;       // PCI Segment Group Number
  uint8_t start_bus = 0;
  uint8_t end_bus = 0;
};

struct McfgInfo {
  static constexpr size_t kMaxAllocations = 16;
  size_t count = 0;
  std::array<McfgAllocation, kMaxAllocations> allocations{};
  std::span<const McfgAllocation> list() const { return std::span(allocations.data(), count); }
};

// Parses a whole MCFG (header included): header validation, signature "MCFG", length >= 44,
// allocation area a whole number of 16-byte entries (kMalformed), start_bus <= end_bus
// (kMalformed, detail = offset), at most 16 allocations (kFull).
Result<McfgInfo> parse_mcfg(std::span<const uint8_t> table);

}  // namespace lantern::acpi
