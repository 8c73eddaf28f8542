// Fuzz target: the ACPI table parsers (kernel/acpi/acpi_tables.h).
//
// The input is used twice:
//   1. as one table: parse_rsdp(), parse_sdt_header(), parse_madt() and parse_mcfg() on a buffer of
//      exactly the input's size (AddressSanitizer catches any read past it);
//   2. as physical memory from 0xE0000 (the start of the BIOS area scanned for the RSDP, ACPI 6.5 5.2.5.1) through
//      a reader that refuses everything outside it: find_rsdp_in_bios_area(), read_root_table(),
//      find_table("APIC"/"MCFG") and the MADT/MCFG parsers over what they find. Tables point at each
//      other with physical addresses inside the window.
// Invariants on every accepted structure: signatures and checksums hold over the length the parser
// reported, lengths lie within what was read, counts within their documented limits, MADT CPU
// APIC IDs unique and enabled <= usable <= all, MCFG bus ranges ordered.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "kernel/acpi/acpi_tables.h"
#include "tests/fuzz/fuzz_check.h"

namespace lantern::acpi {
namespace {

constexpr uint64_t kWindowBase = 0xE0000;  // ACPI 6.5 5.2.5.1: BIOS read-only area 0xE0000-0xFFFFF
constexpr size_t kBiosAreaBytes = 0x20000;

uint8_t sum(std::span<const uint8_t> bytes) {
  uint8_t s = 0;
  for (uint8_t b : bytes) s = static_cast<uint8_t>(s + b);
  return s;
}

// Physical memory = the input at kWindowBase. Table-sized reads are handed out as fresh exact-size
// copies, so a read past `length` is caught by AddressSanitizer; the 128 KiB scan of the BIOS area
// points into the window itself (copying it on every run would make the target too slow to fuzz).
class WindowReader final : public PhysicalMemoryReader {
 public:
  static constexpr size_t kCopyUpTo = 64 * 1024;
  explicit WindowReader(std::span<const uint8_t> window) : window_(window) {}
  Result<std::span<const uint8_t>> read(uint64_t phys, size_t length) override {
    if (phys < kWindowBase || phys - kWindowBase > window_.size() || length > window_.size() - (phys - kWindowBase)) {
      return make_error(ErrorCode::kNotFound, "outside the fuzzed window", phys);
    }
    FUZZ_CHECK(++reads_ < 100000, "the parser keeps reading");
    const auto first = window_.begin() + static_cast<ptrdiff_t>(phys - kWindowBase);
    if (length > kCopyUpTo) return std::span<const uint8_t>(&*first, length);
    copies_.emplace_back(first, first + static_cast<ptrdiff_t>(length));
    return std::span<const uint8_t>(copies_.back().data(), length);
  }

 private:
  std::span<const uint8_t> window_;
  std::deque<std::vector<uint8_t>> copies_;  // a deque: earlier spans stay valid as it grows
  size_t reads_ = 0;
};

void check_table(std::span<const uint8_t> table, const char* signature) {
  const Result<SdtHeader> h = parse_sdt_header(table);
  FUZZ_CHECK(h.has_value(), "a table handed out does not parse");
  FUZZ_CHECK(h->length == table.size(), "span is not exactly the table's length");
  FUZZ_CHECK(sum(table) == 0, "checksum does not hold");
  FUZZ_CHECK(signature == nullptr || std::memcmp(table.data(), signature, 4) == 0, signature);
}

void check_madt(const Result<MadtInfo>& madt) {
  if (!madt) return;
  const MadtInfo& m = *madt;
  FUZZ_CHECK(m.cpu_count <= MadtInfo::kMaxCpus && m.io_apic_count <= MadtInfo::kMaxIoApics &&
                 m.override_count <= MadtInfo::kMaxOverrides && m.nmi_count <= MadtInfo::kMaxNmis,
             "MADT count beyond its limit");
  FUZZ_CHECK(m.enabled_cpu_count() <= m.usable_cpu_count() && m.usable_cpu_count() <= m.cpu_count,
             "enabled <= usable <= all does not hold");
  for (size_t i = 0; i < m.cpu_count; ++i) {
    for (size_t j = i + 1; j < m.cpu_count; ++j) {
      FUZZ_CHECK(m.cpus[i].apic_id != m.cpus[j].apic_id, "duplicate APIC ID kept");
    }
  }
  for (uint8_t irq = 0; irq < 16; ++irq) {
    bool overridden = false;
    for (const MadtInterruptOverride& o : m.override_list()) overridden = overridden || (o.bus == 0 && o.source == irq);
    if (!overridden) FUZZ_CHECK(m.isa_irq_to_gsi(irq) == irq, "identity GSI without an override");
  }
}

void check_mcfg(const Result<McfgInfo>& mcfg, size_t table_length) {
  if (!mcfg) return;
  FUZZ_CHECK(mcfg->count <= McfgInfo::kMaxAllocations, "MCFG count beyond its limit");
  FUZZ_CHECK(44 + 16 * mcfg->count == table_length, "MCFG allocations do not fill the table");  // PCI FW 3.x 4.1.2
  for (const McfgAllocation& a : mcfg->list()) FUZZ_CHECK(a.start_bus <= a.end_bus, "bus range reversed");
}

void run(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  const std::span<const uint8_t> span(bytes);

  // 1. The input as one table.
  if (const Result<Rsdp> rsdp = parse_rsdp(span)) {
    FUZZ_CHECK(size >= Rsdp::kV1Size && std::memcmp(data, "RSD PTR ", 8) == 0, "RSDP signature");
    FUZZ_CHECK(sum(span.first(Rsdp::kV1Size)) == 0, "RSDP checksum");
    if (rsdp->revision >= 2) {
      FUZZ_CHECK(rsdp->length >= Rsdp::kV2Size && rsdp->length <= size, "RSDP length");
      FUZZ_CHECK(sum(span.first(rsdp->length)) == 0, "RSDP extended checksum");
    }
  }
  if (const Result<SdtHeader> h = parse_sdt_header(span)) {
    FUZZ_CHECK(h->length >= SdtHeader::kSize && h->length <= size, "SDT length");
    FUZZ_CHECK(sum(span.first(h->length)) == 0, "SDT checksum");
  }
  const Result<MadtInfo> madt = parse_madt(span);
  if (madt) check_table(span.first(parse_sdt_header(span)->length), "APIC");
  check_madt(madt);
  const Result<McfgInfo> mcfg = parse_mcfg(span);
  if (mcfg) {
    const size_t length = parse_sdt_header(span)->length;
    check_table(span.first(length), "MCFG");
    check_mcfg(mcfg, length);
  }

  // 2. The input as the start of the BIOS area (zero-filled to its 128 KiB), tables pointing at
  // each other.
  // One zero-filled area reused across runs (allocating 128 KiB under ASan each run is slow):
  // the previous input's bytes are cleared, this input's copied in.
  static std::vector<uint8_t> area(kBiosAreaBytes, 0);
  static size_t previous = 0;
  std::memset(area.data(), 0, previous);
  previous = std::min(size, kBiosAreaBytes);
  std::memcpy(area.data(), data, previous);
  WindowReader reader(area);  // inputs longer than the area are cut to it
  const Result<Rsdp> found = find_rsdp_in_bios_area(reader);
  if (!found) return;
  FUZZ_CHECK(found->physical_address >= kWindowBase && found->physical_address % 16 == 0, "RSDP address");
  const Result<TableDirectory> directory = read_root_table(reader, *found);
  if (!directory) return;
  FUZZ_CHECK(directory->count <= TableDirectory::kMaxTables, "root table count beyond its limit");
  if (const Result<std::span<const uint8_t>> apic = find_table(reader, *directory, "APIC")) {
    check_table(*apic, "APIC");
    check_madt(parse_madt(*apic));
  }
  if (const Result<std::span<const uint8_t>> table = find_table(reader, *directory, "MCFG")) {
    check_table(*table, "MCFG");
    check_mcfg(parse_mcfg(*table), table->size());
  }
}

}  // namespace
}  // namespace lantern::acpi

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lantern::acpi::run(data, size);
  return 0;
}
