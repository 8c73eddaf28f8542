// ACPI static table parser. Section numbers refer to the ACPI Specification 6.5, section 5.2,
// unless marked "PCI FW" (PCI Firmware Specification 3.x).
#include "kernel/acpi/acpi_tables.h"

namespace lantern::acpi {
namespace {

// Little-endian field loads assembled from bytes: no alignment assumptions, no libc.
// Callers guarantee off + width <= bytes.size().
uint16_t load_u16(std::span<const uint8_t> bytes, size_t off) {
  return static_cast<uint16_t>(bytes[off] | (bytes[off + 1] << 8));
}

uint32_t load_u32(std::span<const uint8_t> bytes, size_t off) {
  return static_cast<uint32_t>(bytes[off]) | (static_cast<uint32_t>(bytes[off + 1]) << 8) |
         (static_cast<uint32_t>(bytes[off + 2]) << 16) | (static_cast<uint32_t>(bytes[off + 3]) << 24);
}

uint64_t load_u64(std::span<const uint8_t> bytes, size_t off) {
  return static_cast<uint64_t>(load_u32(bytes, off)) |
         (static_cast<uint64_t>(load_u32(bytes, off + 4)) << 32);
}

template <size_t N>
std::array<char, N> load_chars(std::span<const uint8_t> bytes, size_t off) {
  std::array<char, N> out{};
  for (size_t i = 0; i < N; ++i) out[i] = static_cast<char>(bytes[off + i]);
  return out;
}

// ACPI checksums (5.2.5.3, 5.2.6): all bytes, including the checksum byte, sum to 0 mod 256.
bool checksum_ok(std::span<const uint8_t> bytes) {
  uint8_t sum = 0;
  for (uint8_t b : bytes) sum = static_cast<uint8_t>(sum + b);
  return sum == 0;
}

// Wraps reader.read() and insists on getting exactly the requested length back.
Result<std::span<const uint8_t>> read_exact(PhysicalMemoryReader& reader, uint64_t phys, size_t length) {
  auto bytes = TRY(reader.read(phys, length));
  if (bytes.size() < length) {
    return make_error(ErrorCode::kTruncated, "acpi: physical read returned fewer bytes", phys);
  }
  return bytes.first(length);
}

// ---- RSDP, 5.2.5.3 -------------------------------------------------------------------------
constexpr char kRsdpSignature[8] = {'R', 'S', 'D', ' ', 'P', 'T', 'R', ' '};  // "RSD PTR "
constexpr size_t kRsdpOemIdOff = 9;
constexpr size_t kRsdpRevisionOff = 15;
constexpr size_t kRsdpRsdtOff = 16;
constexpr size_t kRsdpLengthOff = 20;
constexpr size_t kRsdpXsdtOff = 24;
// Byte 32 is the extended checksum, bytes 33-35 reserved; both are covered by the length sum.

bool has_rsdp_signature(std::span<const uint8_t> bytes) {
  if (bytes.size() < sizeof(kRsdpSignature)) return false;
  for (size_t i = 0; i < sizeof(kRsdpSignature); ++i) {
    if (bytes[i] != static_cast<uint8_t>(kRsdpSignature[i])) return false;
  }
  return true;
}

// ---- Locating the RSDP on IA-PC, 5.2.5.1 ---------------------------------------------------
constexpr uint64_t kEbdaSegmentPointer = 0x40E;  // "the 16-bit real mode segment ... at 40:0Eh"
constexpr size_t kEbdaScanLength = 1024;         // "the first 1 KB of the EBDA"
constexpr uint64_t kBiosAreaStart = 0xE0000;     // "the BIOS read-only memory space between
constexpr uint64_t kBiosAreaEnd = 0x100000;      //  0E0000h and 0FFFFFh" (end exclusive here)
constexpr size_t kRsdpAlignment = 16;            // "on 16-byte boundaries"
constexpr uint64_t kRealModeLimit = 0x100000;    // a real-mode segment cannot reach past 1 MiB

// Tries every 16-byte boundary of `window` (starting at physical `base`). A candidate is
// re-read through the reader with its full length, so an RSDP straddling the end of the window
// is still validated against real memory rather than against the window's edge.
Result<Rsdp> scan_window(PhysicalMemoryReader& reader, uint64_t base, std::span<const uint8_t> window,
                         size_t* rejected) {
  for (size_t off = 0; off + sizeof(kRsdpSignature) <= window.size(); off += kRsdpAlignment) {
    if (!has_rsdp_signature(window.subspan(off))) continue;
    const uint64_t phys = base + off;
    auto v1 = reader.read(phys, Rsdp::kV1Size);
    if (!v1.has_value() || v1->size() < Rsdp::kV1Size) {
      ++*rejected;
      continue;
    }
    size_t want = Rsdp::kV1Size;
    if ((*v1)[kRsdpRevisionOff] >= 2) {
      want = Rsdp::kV2Size;
      auto v2 = reader.read(phys, Rsdp::kV2Size);
      if (v2.has_value() && v2->size() >= Rsdp::kV2Size) {
        const uint32_t length = load_u32(*v2, kRsdpLengthOff);
        if (length > want) want = length;
      }
    }
    auto full = reader.read(phys, want);
    if (!full.has_value()) {
      ++*rejected;
      continue;
    }
    auto rsdp = parse_rsdp(*full);
    if (!rsdp.has_value()) {
      ++*rejected;
      continue;
    }
    rsdp->physical_address = phys;
    return rsdp;
  }
  return make_error(ErrorCode::kNotFound, "acpi: no RSDP in window");
}

// ---- SDT header, 5.2.6 ---------------------------------------------------------------------
constexpr size_t kSdtSignatureOff = 0;
constexpr size_t kSdtLengthOff = 4;
constexpr size_t kSdtRevisionOff = 8;
// Byte 9 is the checksum, covered by the whole-table sum.
constexpr size_t kSdtOemIdOff = 10;
constexpr size_t kSdtOemTableIdOff = 16;
constexpr size_t kSdtOemRevisionOff = 24;
constexpr size_t kSdtCreatorIdOff = 28;
constexpr size_t kSdtCreatorRevisionOff = 32;

bool signature_is(const SdtHeader& header, const char* sig) {
  return header.signature == make_signature(sig);
}

// ---- MADT, 5.2.12 --------------------------------------------------------------------------
constexpr size_t kMadtLocalApicAddressOff = 36;  // Local Interrupt Controller Address (u32)
constexpr size_t kMadtFlagsOff = 40;             // Flags (u32)
constexpr size_t kMadtEntriesOff = 44;           // Interrupt Controller Structure[n]

// Interrupt Controller Structure types (5.2.12, "Interrupt Controller Structure Types").
constexpr uint8_t kMadtTypeLocalApic = 0x0;              // 5.2.12.2
constexpr uint8_t kMadtTypeIoApic = 0x1;                 // 5.2.12.3
constexpr uint8_t kMadtTypeInterruptOverride = 0x2;      // 5.2.12.5
constexpr uint8_t kMadtTypeLocalApicNmi = 0x4;           // 5.2.12.7
constexpr uint8_t kMadtTypeLocalApicAddrOverride = 0x5;  // 5.2.12.8
constexpr uint8_t kMadtTypeLocalX2Apic = 0x9;            // 5.2.12.12
constexpr uint8_t kMadtTypeLocalX2ApicNmi = 0xA;         // 5.2.12.13

// Every structure starts with Type (u8) and Length (u8).
constexpr size_t kMadtEntryHeaderSize = 2;

// 5.2.12.2 Processor Local APIC: UID u8 @2, APIC ID u8 @3, Flags u32 @4; length 8.
constexpr size_t kLocalApicSize = 8;
// 5.2.12.3 I/O APIC: ID u8 @2, reserved @3, Address u32 @4, GSI Base u32 @8; length 12.
constexpr size_t kIoApicSize = 12;
// 5.2.12.5 Interrupt Source Override: Bus u8 @2, Source u8 @3, GSI u32 @4, Flags u16 @8;
// length 10.
constexpr size_t kOverrideSize = 10;
// 5.2.12.7 Local APIC NMI: UID u8 @2 (0xFF = all), Flags u16 @3, LINT# u8 @5; length 6.
constexpr size_t kLocalApicNmiSize = 6;
constexpr uint8_t kLocalApicNmiAllProcessors = 0xFF;
// 5.2.12.8 Local APIC Address Override: reserved u16 @2, Address u64 @4; length 12.
constexpr size_t kLocalApicAddrOverrideSize = 12;
// 5.2.12.12 Processor Local x2APIC: reserved u16 @2, x2APIC ID u32 @4, Flags u32 @8,
// UID u32 @12; length 16.
constexpr size_t kLocalX2ApicSize = 16;
// 5.2.12.13 Local x2APIC NMI: Flags u16 @2, UID u32 @4 (0xFFFFFFFF = all), LINT# u8 @8,
// reserved 3 bytes; length 12.
constexpr size_t kLocalX2ApicNmiSize = 12;

Result<void> add_cpu(MadtInfo& info, const MadtCpu& cpu, size_t offset) {
  for (const MadtCpu& existing : info.all_cpus()) {
    if (existing.apic_id == cpu.apic_id) {
      // 5.2.12.12: IDs < 255 must use type 0 and IDs >= 255 type 9, so a second entry for
      // the same ID is a firmware bug; keep the first so a CPU is never counted twice.
      ++info.duplicate_cpu_entries;
      return ok();
    }
  }
  if (info.cpu_count >= MadtInfo::kMaxCpus) {
    return make_error(ErrorCode::kFull, "acpi: MADT lists more CPUs than supported", offset);
  }
  info.cpus[info.cpu_count++] = cpu;
  return ok();
}

Result<void> add_nmi(MadtInfo& info, const MadtLocalNmi& nmi, size_t offset) {
  if (info.nmi_count >= MadtInfo::kMaxNmis) {
    return make_error(ErrorCode::kFull, "acpi: MADT lists more local NMIs than supported", offset);
  }
  info.nmis[info.nmi_count++] = nmi;
  return ok();
}

Result<void> parse_madt_entry(MadtInfo& info, std::span<const uint8_t> entry, size_t offset) {
  const uint8_t type = entry[0];
  auto need = [&](size_t size) { return entry.size() >= size; };
  switch (type) {
    case kMadtTypeLocalApic: {
      if (!need(kLocalApicSize)) break;
      MadtCpu cpu;
      cpu.acpi_uid = entry[2];
      cpu.apic_id = entry[3];
      cpu.flags = load_u32(entry, 4);
      cpu.x2apic = false;
      return add_cpu(info, cpu, offset);
    }
    case kMadtTypeLocalX2Apic: {
      if (!need(kLocalX2ApicSize)) break;
      MadtCpu cpu;
      cpu.apic_id = load_u32(entry, 4);
      cpu.flags = load_u32(entry, 8);
      cpu.acpi_uid = load_u32(entry, 12);
      cpu.x2apic = true;
      return add_cpu(info, cpu, offset);
    }
    case kMadtTypeIoApic: {
      if (!need(kIoApicSize)) break;
      if (info.io_apic_count >= MadtInfo::kMaxIoApics) {
        return make_error(ErrorCode::kFull, "acpi: MADT lists more I/O APICs than supported", offset);
      }
      MadtIoApic& io = info.io_apics[info.io_apic_count++];
      io.id = entry[2];
      io.address = load_u32(entry, 4);
      io.gsi_base = load_u32(entry, 8);
      return ok();
    }
    case kMadtTypeInterruptOverride: {
      if (!need(kOverrideSize)) break;
      if (info.override_count >= MadtInfo::kMaxOverrides) {
        return make_error(ErrorCode::kFull, "acpi: MADT lists more interrupt source overrides than supported",
                          offset);
      }
      MadtInterruptOverride& iso = info.overrides[info.override_count++];
      iso.bus = entry[2];
      iso.source = entry[3];
      iso.gsi = load_u32(entry, 4);
      iso.flags = load_u16(entry, 8);
      return ok();
    }
    case kMadtTypeLocalApicNmi: {
      if (!need(kLocalApicNmiSize)) break;
      MadtLocalNmi nmi;
      nmi.acpi_uid = entry[2] == kLocalApicNmiAllProcessors ? MadtLocalNmi::kAllProcessors : entry[2];
      nmi.flags = load_u16(entry, 3);
      nmi.lint = entry[5];
      nmi.x2apic = false;
      return add_nmi(info, nmi, offset);
    }
    case kMadtTypeLocalX2ApicNmi: {
      if (!need(kLocalX2ApicNmiSize)) break;
      MadtLocalNmi nmi;
      nmi.flags = load_u16(entry, 2);
      nmi.acpi_uid = load_u32(entry, 4);  // 0xFFFFFFFF already equals kAllProcessors
      nmi.lint = entry[8];
      nmi.x2apic = true;
      return add_nmi(info, nmi, offset);
    }
    case kMadtTypeLocalApicAddrOverride: {
      if (!need(kLocalApicAddrOverrideSize)) break;
      // 5.2.12.8: "If defined, OSPM must use the address specified in this structure for all
      // Local APICs" instead of the 32-bit header field.
      info.local_apic_address = load_u64(entry, 4);
      info.local_apic_address_overridden = true;
      return ok();
    }
    default: ++info.skipped_entries; return ok();
  }
  return make_error(ErrorCode::kMalformed, "acpi: MADT entry shorter than its structure", offset);
}

// ---- MCFG, PCI FW 4.1.2 --------------------------------------------------------------------
constexpr size_t kMcfgAllocationsOff = 44;  // 36-byte header + 8 reserved bytes
constexpr size_t kMcfgAllocationSize = 16;  // Base u64 @0, Segment u16 @8, Start bus u8 @10,
                                            // End bus u8 @11, reserved u32 @12

}  // namespace

Signature make_signature(const char sig[4]) {
  Signature s;
  for (size_t i = 0; i < 4; ++i) s.chars[i] = sig[i];
  return s;
}

Result<Rsdp> parse_rsdp(std::span<const uint8_t> bytes) {
  if (bytes.size() < Rsdp::kV1Size) {
    return make_error(ErrorCode::kTruncated, "acpi: RSDP shorter than 20 bytes", bytes.size());
  }
  if (!has_rsdp_signature(bytes)) {
    return make_error(ErrorCode::kMalformed, "acpi: RSDP signature is not \"RSD PTR \"");
  }
  if (!checksum_ok(bytes.first(Rsdp::kV1Size))) {
    return make_error(ErrorCode::kBadChecksum, "acpi: RSDP checksum (first 20 bytes) fails");
  }
  Rsdp rsdp;
  rsdp.revision = bytes[kRsdpRevisionOff];
  rsdp.oem_id = load_chars<6>(bytes, kRsdpOemIdOff);
  rsdp.rsdt_address = load_u32(bytes, kRsdpRsdtOff);
  rsdp.length = Rsdp::kV1Size;
  if (rsdp.revision < 2) return rsdp;  // ACPI 1.0 structure: no Length, no XSDT

  if (bytes.size() < Rsdp::kV2Size) {
    return make_error(ErrorCode::kTruncated, "acpi: RSDP revision >= 2 but shorter than 36 bytes",
                      bytes.size());
  }
  const uint32_t length = load_u32(bytes, kRsdpLengthOff);
  if (length < Rsdp::kV2Size) {
    return make_error(ErrorCode::kMalformed, "acpi: RSDP length field below 36", length);
  }
  if (length > bytes.size()) {
    return make_error(ErrorCode::kTruncated, "acpi: RSDP length field runs past the bytes given", length);
  }
  if (!checksum_ok(bytes.first(length))) {
    return make_error(ErrorCode::kBadChecksum, "acpi: RSDP extended checksum fails", length);
  }
  rsdp.length = length;
  rsdp.xsdt_address = load_u64(bytes, kRsdpXsdtOff);
  return rsdp;
}

Result<Rsdp> find_rsdp_in_bios_area(PhysicalMemoryReader& reader) {
  size_t rejected = 0;
  // 1. The first 1 KiB of the EBDA, if the BDA names one.
  auto segment_bytes = reader.read(kEbdaSegmentPointer, 2);
  if (segment_bytes.has_value() && segment_bytes->size() >= 2) {
    const uint64_t ebda = static_cast<uint64_t>(load_u16(*segment_bytes, 0)) << 4;
    if (ebda != 0 && ebda + kEbdaScanLength <= kRealModeLimit) {
      auto window = reader.read(ebda, kEbdaScanLength);
      if (window.has_value()) {
        auto found = scan_window(reader, ebda, *window, &rejected);
        if (found.has_value()) return found;
      }
    }
  }
  // 2. The BIOS read-only area 0xE0000-0xFFFFF.
  auto window = reader.read(kBiosAreaStart, kBiosAreaEnd - kBiosAreaStart);
  if (window.has_value()) {
    auto found = scan_window(reader, kBiosAreaStart, *window, &rejected);
    if (found.has_value()) return found;
  }
  return make_error(ErrorCode::kNotFound,
                    "acpi: no valid RSDP in the EBDA or 0xE0000-0xFFFFF (detail: rejected)", rejected);
}

Result<SdtHeader> parse_sdt_header(std::span<const uint8_t> table) {
  if (table.size() < SdtHeader::kSize) {
    return make_error(ErrorCode::kTruncated, "acpi: table shorter than its 36-byte header", table.size());
  }
  SdtHeader header;
  header.signature.chars = load_chars<4>(table, kSdtSignatureOff);
  header.length = load_u32(table, kSdtLengthOff);
  header.revision = table[kSdtRevisionOff];
  header.oem_id = load_chars<6>(table, kSdtOemIdOff);
  header.oem_table_id = load_chars<8>(table, kSdtOemTableIdOff);
  header.oem_revision = load_u32(table, kSdtOemRevisionOff);
  header.creator_id = load_u32(table, kSdtCreatorIdOff);
  header.creator_revision = load_u32(table, kSdtCreatorRevisionOff);
  if (header.length < SdtHeader::kSize) {
    return make_error(ErrorCode::kMalformed, "acpi: table length field below 36", header.length);
  }
  if (header.length > table.size()) {
    return make_error(ErrorCode::kTruncated, "acpi: table length runs past the bytes given", header.length);
  }
  if (!checksum_ok(table.first(header.length))) {
    return make_error(ErrorCode::kBadChecksum, "acpi: table checksum fails", header.length);
  }
  return header;
}

Result<std::span<const uint8_t>> read_table_at(PhysicalMemoryReader& reader, uint64_t phys) {
  auto head = TRY(read_exact(reader, phys, SdtHeader::kSize));
  const uint32_t length = load_u32(head, kSdtLengthOff);
  if (length < SdtHeader::kSize) {
    return make_error(ErrorCode::kMalformed, "acpi: table length field below 36", length);
  }
  auto table = TRY(read_exact(reader, phys, length));
  TRY(parse_sdt_header(table));
  return table;
}

Result<TableDirectory> read_root_table(PhysicalMemoryReader& reader, const Rsdp& rsdp) {
  TableDirectory dir;
  dir.is_xsdt = rsdp.has_xsdt();
  dir.root_address = dir.is_xsdt ? rsdp.xsdt_address : rsdp.rsdt_address;
  if (dir.root_address == 0) {
    return make_error(ErrorCode::kNotFound, "acpi: RSDP gives no RSDT/XSDT address");
  }
  auto table = TRY(read_table_at(reader, dir.root_address));
  dir.root_header = TRY(parse_sdt_header(table));
  // 5.2.7: RSDT signature "RSDT", 32-bit entries; 5.2.8: XSDT signature "XSDT", 64-bit entries.
  if (!signature_is(dir.root_header, dir.is_xsdt ? "XSDT" : "RSDT")) {
    return make_error(ErrorCode::kMalformed, "acpi: root table signature is not RSDT/XSDT", dir.root_address);
  }
  const size_t entry_size = dir.is_xsdt ? 8 : 4;
  const size_t body = dir.root_header.length - SdtHeader::kSize;
  if (body % entry_size != 0) {
    return make_error(ErrorCode::kMalformed, "acpi: root table entry area is not a whole number of entries",
                      body);
  }
  const size_t count = body / entry_size;
  if (count > TableDirectory::kMaxTables) {
    return make_error(ErrorCode::kFull, "acpi: root table lists more than 64 tables", count);
  }
  for (size_t i = 0; i < count; ++i) {
    const size_t off = SdtHeader::kSize + i * entry_size;
    TableEntry& entry = dir.entries[i];
    entry.address = dir.is_xsdt ? load_u64(table, off) : load_u32(table, off);
    auto sig =
        entry.address == 0
            ? Result<std::span<const uint8_t>>(make_error(ErrorCode::kNotFound, "acpi: null table pointer"))
            : read_exact(reader, entry.address, 4);
    if (sig.has_value()) {
      entry.signature.chars = load_chars<4>(*sig, 0);
      entry.readable = true;
    }
  }
  dir.count = count;
  return dir;
}

Result<std::span<const uint8_t>> find_table(PhysicalMemoryReader& reader, const TableDirectory& directory,
                                            const char sig[4]) {
  const Signature wanted = make_signature(sig);
  bool have_error = false;
  Error first_error{};
  for (const TableEntry& entry : directory.tables()) {
    if (!entry.readable || entry.signature != wanted) continue;
    auto table = read_table_at(reader, entry.address);
    if (table.has_value()) {
      // Re-check the signature on the bytes actually validated.
      Signature got;
      got.chars = load_chars<4>(*table, kSdtSignatureOff);
      if (got == wanted) return table;
      table = make_error(ErrorCode::kMalformed, "acpi: table signature changed under us", entry.address);
    }
    if (!have_error) {
      have_error = true;
      first_error = table.error();
    }
  }
  if (have_error) return first_error;
  return make_error(ErrorCode::kNotFound, "acpi: no table with that signature");
}

size_t MadtInfo::enabled_cpu_count() const {
  size_t n = 0;
  for (const MadtCpu& cpu : all_cpus()) n += cpu.enabled() ? 1 : 0;
  return n;
}

size_t MadtInfo::usable_cpu_count() const {
  size_t n = 0;
  for (const MadtCpu& cpu : all_cpus()) n += cpu.usable() ? 1 : 0;
  return n;
}

uint32_t MadtInfo::isa_irq_to_gsi(uint8_t irq, uint16_t* flags_out) const {
  // 5.2.12.5: ISA IRQs are identity-mapped to GSIs unless an override (bus 0) says otherwise.
  for (const MadtInterruptOverride& iso : override_list()) {
    if (iso.bus == 0 && iso.source == irq) {
      if (flags_out != nullptr) *flags_out = iso.flags;
      return iso.gsi;
    }
  }
  if (flags_out != nullptr) *flags_out = 0;
  return irq;
}

Result<MadtInfo> parse_madt(std::span<const uint8_t> table) {
  const SdtHeader header = TRY(parse_sdt_header(table));
  if (!signature_is(header, "APIC")) {
    return make_error(ErrorCode::kMalformed, "acpi: MADT signature is not \"APIC\"");
  }
  if (header.length < kMadtEntriesOff) {
    return make_error(ErrorCode::kTruncated, "acpi: MADT shorter than 44 bytes", header.length);
  }
  const std::span<const uint8_t> madt = table.first(header.length);

  MadtInfo info;
  info.local_apic_address = load_u32(madt, kMadtLocalApicAddressOff);
  info.flags = load_u32(madt, kMadtFlagsOff);

  size_t offset = kMadtEntriesOff;
  while (offset < madt.size()) {
    if (madt.size() - offset < kMadtEntryHeaderSize) {
      return make_error(ErrorCode::kMalformed, "acpi: MADT entry header runs past the table", offset);
    }
    const size_t length = madt[offset + 1];
    if (length < kMadtEntryHeaderSize) {
      return make_error(ErrorCode::kMalformed, "acpi: MADT entry length below 2", offset);
    }
    if (length > madt.size() - offset) {
      return make_error(ErrorCode::kMalformed, "acpi: MADT entry runs past the table", offset);
    }
    TRY(parse_madt_entry(info, madt.subspan(offset, length), offset));
    offset += length;
  }
  return info;
}

Result<McfgInfo> parse_mcfg(std::span<const uint8_t> table) {
  const SdtHeader header = TRY(parse_sdt_header(table));
  if (!signature_is(header, "MCFG")) {
    return make_error(ErrorCode::kMalformed, "acpi: MCFG signature is not \"MCFG\"");
  }
  if (header.length < kMcfgAllocationsOff) {
    return make_error(ErrorCode::kTruncated, "acpi: MCFG shorter than 44 bytes", header.length);
  }
  const size_t body = header.length - kMcfgAllocationsOff;
  if (body % kMcfgAllocationSize != 0) {
    return make_error(ErrorCode::kMalformed,
                      "acpi: MCFG allocation area is not a whole number of 16-byte entries", body);
  }
  const size_t count = body / kMcfgAllocationSize;
  if (count > McfgInfo::kMaxAllocations) {
    return make_error(ErrorCode::kFull, "acpi: MCFG lists more allocations than supported", count);
  }
  McfgInfo info;
  for (size_t i = 0; i < count; ++i) {
    const size_t off = kMcfgAllocationsOff + i * kMcfgAllocationSize;
    McfgAllocation& a = info.allocations[i];
    a.base_address = load_u64(table, off);
    a.segment = load_u16(table, off + 8);
    a.start_bus = table[off + 10];
    a.end_bus = table[off + 11];
    if (a.start_bus > a.end_bus) {
      return make_error(ErrorCode::kMalformed, "acpi: MCFG allocation start bus above end bus", off);
    }
  }
  info.count = count;
  return info;
}

}  // namespace lantern::acpi
