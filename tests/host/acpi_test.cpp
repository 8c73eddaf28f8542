// Host tests for kernel/acpi/acpi_tables: RSDP, RSDT/XSDT, table lookup, MADT and MCFG.
// Tables are built here byte by byte (ACPI 6.5 section 5.2 layouts) with checksums computed by
// a helper, and physical memory is a fake reader backed by a std::map of regions.
#include "kernel/acpi/acpi_tables.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace lantern::acpi {
namespace {

using Bytes = std::vector<uint8_t>;

// ---- byte helpers ---------------------------------------------------------------------------
void put_u8(Bytes& b, size_t off, uint8_t v) {
  if (b.size() < off + 1) b.resize(off + 1);
  b[off] = v;
}
void put_u16(Bytes& b, size_t off, uint16_t v) {
  for (size_t i = 0; i < 2; ++i) put_u8(b, off + i, static_cast<uint8_t>(v >> (8 * i)));
}
void put_u32(Bytes& b, size_t off, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) put_u8(b, off + i, static_cast<uint8_t>(v >> (8 * i)));
}
void put_u64(Bytes& b, size_t off, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) put_u8(b, off + i, static_cast<uint8_t>(v >> (8 * i)));
}
void put_str(Bytes& b, size_t off, const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) put_u8(b, off + i, static_cast<uint8_t>(s[i]));
}

// Sets b[checksum_off] so that b[0..length) sums to 0 mod 256.
void fix_checksum(Bytes& b, size_t checksum_off, size_t length) {
  b[checksum_off] = 0;
  uint8_t sum = 0;
  for (size_t i = 0; i < length; ++i) sum = static_cast<uint8_t>(sum + b[i]);
  b[checksum_off] = static_cast<uint8_t>(-sum);
}

uint8_t sum_of(const Bytes& b, size_t length) {
  uint8_t sum = 0;
  for (size_t i = 0; i < length; ++i) sum = static_cast<uint8_t>(sum + b[i]);
  return sum;
}

// ---- table builders -------------------------------------------------------------------------
// RSDP (5.2.5.3). Revision 0 gives the 20-byte ACPI 1.0 form; revision 2 the 36-byte form.
Bytes make_rsdp(uint8_t revision, uint32_t rsdt, uint64_t xsdt = 0) {
  Bytes b(revision >= 2 ? 36 : 20, 0);
  put_str(b, 0, "RSD PTR ");
  put_str(b, 9, "LNTRN ");
  put_u8(b, 15, revision);
  put_u32(b, 16, rsdt);
  if (revision >= 2) {
    put_u32(b, 20, 36);
    put_u64(b, 24, xsdt);
  }
  fix_checksum(b, 8, 20);
  if (revision >= 2) fix_checksum(b, 32, 36);
  return b;
}

// A table: 36-byte SDT header (5.2.6) + body, with length and checksum filled in.
Bytes make_table(const std::string& sig, const Bytes& body, uint8_t revision = 1) {
  Bytes b(36, 0);
  put_str(b, 0, sig);
  put_u8(b, 8, revision);
  put_str(b, 10, "LNTRN ");
  put_str(b, 16, "TESTTBL ");
  put_u32(b, 24, 1);
  put_str(b, 28, "LTST");
  put_u32(b, 32, 1);
  b.insert(b.end(), body.begin(), body.end());
  put_u32(b, 4, static_cast<uint32_t>(b.size()));
  fix_checksum(b, 9, b.size());
  return b;
}

Bytes make_rsdt(const std::vector<uint32_t>& addrs) {
  Bytes body;
  for (uint32_t a : addrs) put_u32(body, body.size(), a);
  return make_table("RSDT", body);
}

Bytes make_xsdt(const std::vector<uint64_t>& addrs) {
  Bytes body;
  for (uint64_t a : addrs) put_u64(body, body.size(), a);
  return make_table("XSDT", body);
}

// MADT body builder (5.2.12): address + flags, then interrupt controller structures.
struct MadtBuilder {
  Bytes body;
  MadtBuilder(uint32_t lapic_address = 0xFEE00000, uint32_t flags = 1) {
    put_u32(body, 0, lapic_address);
    put_u32(body, 4, flags);
  }
  MadtBuilder& lapic(uint8_t uid, uint8_t apic_id, uint32_t flags) {  // type 0, length 8
    size_t o = body.size();
    put_u8(body, o, 0);
    put_u8(body, o + 1, 8);
    put_u8(body, o + 2, uid);
    put_u8(body, o + 3, apic_id);
    put_u32(body, o + 4, flags);
    return *this;
  }
  MadtBuilder& ioapic(uint8_t id, uint32_t addr, uint32_t gsi_base) {  // type 1, length 12
    size_t o = body.size();
    put_u8(body, o, 1);
    put_u8(body, o + 1, 12);
    put_u8(body, o + 2, id);
    put_u8(body, o + 3, 0);
    put_u32(body, o + 4, addr);
    put_u32(body, o + 8, gsi_base);
    return *this;
  }
  MadtBuilder& iso(uint8_t bus, uint8_t source, uint32_t gsi, uint16_t flags) {  // type 2, 10
    size_t o = body.size();
    put_u8(body, o, 2);
    put_u8(body, o + 1, 10);
    put_u8(body, o + 2, bus);
    put_u8(body, o + 3, source);
    put_u32(body, o + 4, gsi);
    put_u16(body, o + 8, flags);
    return *this;
  }
  MadtBuilder& lapic_nmi(uint8_t uid, uint16_t flags, uint8_t lint) {  // type 4, length 6
    size_t o = body.size();
    put_u8(body, o, 4);
    put_u8(body, o + 1, 6);
    put_u8(body, o + 2, uid);
    put_u16(body, o + 3, flags);
    put_u8(body, o + 5, lint);
    return *this;
  }
  MadtBuilder& lapic_override(uint64_t addr) {  // type 5, length 12
    size_t o = body.size();
    put_u8(body, o, 5);
    put_u8(body, o + 1, 12);
    put_u16(body, o + 2, 0);
    put_u64(body, o + 4, addr);
    return *this;
  }
  MadtBuilder& x2apic(uint32_t x2apic_id, uint32_t flags, uint32_t uid) {  // type 9, length 16
    size_t o = body.size();
    put_u8(body, o, 9);
    put_u8(body, o + 1, 16);
    put_u16(body, o + 2, 0);
    put_u32(body, o + 4, x2apic_id);
    put_u32(body, o + 8, flags);
    put_u32(body, o + 12, uid);
    return *this;
  }
  MadtBuilder& x2apic_nmi(uint32_t uid, uint16_t flags, uint8_t lint) {  // type 0xA, length 12
    size_t o = body.size();
    put_u8(body, o, 0xA);
    put_u8(body, o + 1, 12);
    put_u16(body, o + 2, flags);
    put_u32(body, o + 4, uid);
    put_u8(body, o + 8, lint);
    put_u8(body, o + 11, 0);
    return *this;
  }
  MadtBuilder& raw(const Bytes& bytes) {
    body.insert(body.end(), bytes.begin(), bytes.end());
    return *this;
  }
  Bytes build() const { return make_table("APIC", body, 3); }
};

// MPS INTI flags (5.2.12.5): polarity bits 1:0, trigger bits 3:2.
constexpr uint16_t kActiveHighLevel = 0x1 | (0x3 << 2);
constexpr uint16_t kActiveLowLevel = 0x3 | (0x3 << 2);
constexpr uint16_t kActiveHighEdge = 0x1 | (0x1 << 2);

// The layout the Bochs BIOS produces (see shared/emulators.md): LAPIC IDs 0..N-1, IOAPIC ID N,
// IRQ0 -> GSI 2 and level/active-high overrides for the PCI IRQs.
Bytes make_bochs_madt(uint8_t cpus) {
  MadtBuilder m(0xFEE00000, MadtInfo::kFlagPcatCompat);
  for (uint8_t i = 0; i < cpus; ++i) m.lapic(i, i, MadtCpu::kFlagEnabled);
  m.ioapic(cpus, 0xFEC00000, 0);
  m.iso(0, 0, 2, 0);
  m.iso(0, 5, 5, kActiveHighLevel);
  m.iso(0, 9, 9, kActiveHighLevel);
  m.iso(0, 10, 10, kActiveHighLevel);
  m.iso(0, 11, 11, kActiveHighLevel);
  m.lapic_nmi(0xFF, 0, 1);
  return m.build();
}

// MCFG (PCI Firmware spec 4.1.2): 8 reserved bytes, then 16-byte allocations.
struct McfgAlloc {
  uint64_t base;
  uint16_t segment;
  uint8_t start;
  uint8_t end;
};
Bytes make_mcfg(const std::vector<McfgAlloc>& allocs) {
  Bytes body(8, 0);
  for (const McfgAlloc& a : allocs) {
    size_t o = body.size();
    put_u64(body, o, a.base);
    put_u16(body, o + 8, a.segment);
    put_u8(body, o + 10, a.start);
    put_u8(body, o + 11, a.end);
    put_u32(body, o + 12, 0);
  }
  return make_table("MCFG", body, 1);
}

std::span<const uint8_t> span_of(const Bytes& b) {
  return std::span(b.data(), b.size());
}

// ---- fake physical memory --------------------------------------------------------------------
// Regions never overlap in these tests; a read must fall entirely inside one region.
class FakeMemory : public PhysicalMemoryReader {
 public:
  void map(uint64_t base, Bytes bytes) { regions_[base] = std::move(bytes); }
  // Writes bytes inside an already-mapped region.
  void poke(uint64_t phys, const Bytes& bytes) {
    auto it = region_for(phys, bytes.size());
    ASSERT_NE(it, regions_.end());
    std::memcpy(it->second.data() + (phys - it->first), bytes.data(), bytes.size());
  }
  Result<std::span<const uint8_t>> read(uint64_t phys, size_t length) override {
    ++reads;
    auto it = region_for(phys, length);
    if (it == regions_.end()) {
      return make_error(ErrorCode::kInvalidArgument, "fake: unmapped physical range", phys);
    }
    return std::span<const uint8_t>(it->second.data() + (phys - it->first), length);
  }
  size_t reads = 0;

 private:
  std::map<uint64_t, Bytes>::iterator region_for(uint64_t phys, size_t length) {
    auto it = regions_.upper_bound(phys);
    if (it == regions_.begin()) return regions_.end();
    --it;
    const uint64_t off = phys - it->first;
    if (off > it->second.size() || length > it->second.size() - off) return regions_.end();
    return it;
  }
  std::map<uint64_t, Bytes> regions_;
};

// The BDA word at 0x40E holding the EBDA segment.
Bytes bda_with_ebda_segment(uint16_t segment) {
  Bytes b(2, 0);
  put_u16(b, 0, segment);
  return b;
}

// ===========================================================================================
// RSDP parsing
// ===========================================================================================
TEST(AcpiRsdp, ParsesV1) {
  Bytes b = make_rsdp(0, 0x7FE1234);
  auto r = parse_rsdp(span_of(b));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->revision, 0);
  EXPECT_EQ(r->rsdt_address, 0x7FE1234u);
  EXPECT_EQ(r->length, 20u);
  EXPECT_EQ(r->xsdt_address, 0u);
  EXPECT_FALSE(r->has_xsdt());
  EXPECT_EQ(std::string(r->oem_id.data(), 6), "LNTRN ");
  EXPECT_EQ(r->physical_address, 0u);
}

TEST(AcpiRsdp, ParsesV2) {
  Bytes b = make_rsdp(2, 0x7FE0000, 0x1'2345'6780ull);
  auto r = parse_rsdp(span_of(b));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->revision, 2);
  EXPECT_EQ(r->rsdt_address, 0x7FE0000u);
  EXPECT_EQ(r->length, 36u);
  EXPECT_EQ(r->xsdt_address, 0x1'2345'6780ull);
  EXPECT_TRUE(r->has_xsdt());
}

TEST(AcpiRsdp, V2WithLongerLengthCoversExtraBytes) {
  Bytes b = make_rsdp(2, 0x1000, 0x2000);
  b.resize(40, 0xAB);
  put_u32(b, 20, 40);
  fix_checksum(b, 32, 40);
  auto r = parse_rsdp(span_of(b));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->length, 40u);
  // The same bytes, but the span stops at 36: length runs past what was given.
  auto t = parse_rsdp(std::span(b.data(), 36));
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code, ErrorCode::kTruncated);
}

TEST(AcpiRsdp, BadChecksum) {
  Bytes b = make_rsdp(0, 0x1000);
  b[16] ^= 0x40;  // corrupt the RSDT address without fixing the checksum
  auto r = parse_rsdp(span_of(b));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kBadChecksum);
  EXPECT_NE(std::string(r.error().message).find("first 20 bytes"), std::string::npos);
}

TEST(AcpiRsdp, BadExtendedChecksum) {
  Bytes b = make_rsdp(2, 0x1000, 0x2000);
  b[24] ^= 0x10;  // corrupt the XSDT address: only the extended checksum covers it
  ASSERT_EQ(sum_of(b, 20), 0);
  auto r = parse_rsdp(span_of(b));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kBadChecksum);
  EXPECT_NE(std::string(r.error().message).find("extended"), std::string::npos);
}

TEST(AcpiRsdp, BadSignature) {
  Bytes b = make_rsdp(0, 0x1000);
  b[0] = 'X';
  fix_checksum(b, 8, 20);
  auto r = parse_rsdp(span_of(b));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
}

TEST(AcpiRsdp, TooShort) {
  Bytes b = make_rsdp(0, 0x1000);
  for (size_t n = 0; n < 20; ++n) {
    Bytes cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = parse_rsdp(span_of(cut));
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_EQ(r.error().code, ErrorCode::kTruncated) << n;
  }
}

TEST(AcpiRsdp, V2GivenOnly20Bytes) {
  Bytes b = make_rsdp(2, 0x1000, 0x2000);
  Bytes cut(b.begin(), b.begin() + 20);
  auto r = parse_rsdp(span_of(cut));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kTruncated);
}

TEST(AcpiRsdp, V2LengthBelow36) {
  Bytes b = make_rsdp(2, 0x1000, 0x2000);
  put_u32(b, 20, 20);
  fix_checksum(b, 32, 36);
  auto r = parse_rsdp(span_of(b));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  EXPECT_EQ(r.error().detail, 20u);
}

// ===========================================================================================
// RSDP search in the BIOS areas (5.2.5.1)
// ===========================================================================================
TEST(AcpiRsdpScan, FoundInEbda) {
  FakeMemory mem;
  mem.map(0x40E, bda_with_ebda_segment(0x9FC0));  // EBDA at 0x9FC00
  Bytes ebda(1024, 0);
  Bytes rsdp = make_rsdp(2, 0x7FE0000, 0x7FE1000);
  std::copy(rsdp.begin(), rsdp.end(), ebda.begin() + 0x40);
  mem.map(0x9FC00, ebda);
  mem.map(0xE0000, Bytes(0x20000, 0));
  auto r = find_rsdp_in_bios_area(mem);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->physical_address, 0x9FC40u);
  EXPECT_EQ(r->xsdt_address, 0x7FE1000u);
}

TEST(AcpiRsdpScan, FoundInBiosArea) {
  FakeMemory mem;
  mem.map(0x40E, bda_with_ebda_segment(0x9FC0));
  mem.map(0x9FC00, Bytes(1024, 0));
  Bytes bios(0x20000, 0);
  Bytes rsdp = make_rsdp(0, 0x0FFF0000);  // Bochs BIOS: revision 0 RSDP in the F segment
  std::copy(rsdp.begin(), rsdp.end(), bios.begin() + 0x1FA50);
  mem.map(0xE0000, bios);
  auto r = find_rsdp_in_bios_area(mem);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->physical_address, 0xFFA50u);
  EXPECT_EQ(r->rsdt_address, 0x0FFF0000u);
  EXPECT_EQ(r->revision, 0);
}

TEST(AcpiRsdpScan, EbdaSearchedBeforeBiosArea) {
  FakeMemory mem;
  mem.map(0x40E, bda_with_ebda_segment(0x9F80));  // EBDA at 0x9F800, 2 KiB long
  Bytes ebda(2048, 0);
  Bytes in_ebda = make_rsdp(0, 0x1111000);
  // The last 16-byte slot of the scanned 1 KiB: the RSDP straddles the window's end.
  std::copy(in_ebda.begin(), in_ebda.end(), ebda.begin() + 0x3F0);
  mem.map(0x9F800, ebda);
  Bytes bios(0x20000, 0);
  Bytes in_bios = make_rsdp(0, 0x2222000);
  std::copy(in_bios.begin(), in_bios.end(), bios.begin());
  mem.map(0xE0000, bios);
  auto r = find_rsdp_in_bios_area(mem);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->rsdt_address, 0x1111000u);
  EXPECT_EQ(r->physical_address, 0x9FBF0u);
}

TEST(AcpiRsdpScan, NoEbdaStillScansBiosArea) {
  FakeMemory mem;  // no BDA mapping at all, as if the reader refuses page 0
  Bytes bios(0x20000, 0);
  Bytes rsdp = make_rsdp(2, 0x1000, 0x2000);
  std::copy(rsdp.begin(), rsdp.end(), bios.begin() + 0x10);
  mem.map(0xE0000, bios);
  auto r = find_rsdp_in_bios_area(mem);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->physical_address, 0xE0010u);
}

TEST(AcpiRsdpScan, SkipsBadCandidatesAndMisalignedSignatures) {
  FakeMemory mem;
  mem.map(0x40E, bda_with_ebda_segment(0));  // segment 0: no EBDA
  Bytes bios(0x20000, 0);
  Bytes bad = make_rsdp(0, 0x3333000);
  bad[16] ^= 1;  // checksum now fails
  std::copy(bad.begin(), bad.end(), bios.begin() + 0x100);
  Bytes misaligned = make_rsdp(0, 0x4444000);
  std::copy(misaligned.begin(), misaligned.end(), bios.begin() + 0x208);  // not 16-aligned
  Bytes good = make_rsdp(0, 0x5555000);
  std::copy(good.begin(), good.end(), bios.begin() + 0x300);
  mem.map(0xE0000, bios);
  auto r = find_rsdp_in_bios_area(mem);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->rsdt_address, 0x5555000u);
  EXPECT_EQ(r->physical_address, 0xE0300u);
}

TEST(AcpiRsdpScan, NotFound) {
  FakeMemory mem;
  mem.map(0x40E, bda_with_ebda_segment(0x9FC0));
  mem.map(0x9FC00, Bytes(1024, 0));
  Bytes bios(0x20000, 0);
  Bytes bad = make_rsdp(2, 0x1000, 0x2000);
  bad[25] ^= 1;  // extended checksum fails
  std::copy(bad.begin(), bad.end(), bios.begin() + 0x800);
  mem.map(0xE0000, bios);
  auto r = find_rsdp_in_bios_area(mem);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().detail, 1u);  // one rejected candidate
}

TEST(AcpiRsdpScan, NothingMapped) {
  FakeMemory mem;
  auto r = find_rsdp_in_bios_area(mem);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
}

// ===========================================================================================
// Root table (RSDT/XSDT) and table lookup
// ===========================================================================================

// A machine laid out like Bochs: RSDT lists FACP, APIC, SSDT, HPET.
struct BochsMachine {
  FakeMemory mem;
  static constexpr uint32_t kRsdt = 0x0FFF0000;
  static constexpr uint32_t kFacp = 0x0FFF0100;
  static constexpr uint32_t kApic = 0x0FFF0200;
  static constexpr uint32_t kSsdt = 0x0FFF0400;
  static constexpr uint32_t kHpet = 0x0FFF0600;
  Bytes madt = make_bochs_madt(4);
  BochsMachine() {
    mem.map(kRsdt, make_rsdt({kFacp, kApic, kSsdt, kHpet}));
    mem.map(kFacp, make_table("FACP", Bytes(80, 0)));
    mem.map(kApic, madt);
    mem.map(kSsdt, make_table("SSDT", Bytes(20, 0x5A)));
    mem.map(kHpet, make_table("HPET", Bytes(20, 0)));
    Bytes bios(0x20000, 0);
    Bytes rsdp = make_rsdp(0, kRsdt);
    std::copy(rsdp.begin(), rsdp.end(), bios.begin() + 0x1FA50);
    mem.map(0xE0000, bios);
  }
};

TEST(AcpiRootTable, BochsLayoutEndToEnd) {
  BochsMachine m;
  auto rsdp = find_rsdp_in_bios_area(m.mem);
  ASSERT_TRUE(rsdp.has_value()) << rsdp.error().message;
  auto dir = read_root_table(m.mem, *rsdp);
  ASSERT_TRUE(dir.has_value()) << dir.error().message;
  EXPECT_FALSE(dir->is_xsdt);
  EXPECT_EQ(dir->root_address, BochsMachine::kRsdt);
  ASSERT_EQ(dir->tables().size(), 4u);
  const char* expect[] = {"FACP", "APIC", "SSDT", "HPET"};
  const uint32_t addrs[] = {BochsMachine::kFacp, BochsMachine::kApic, BochsMachine::kSsdt,
                            BochsMachine::kHpet};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(dir->tables()[i].signature.view(), expect[i]);
    EXPECT_EQ(dir->tables()[i].address, addrs[i]);
    EXPECT_TRUE(dir->tables()[i].readable);
  }
  auto apic = find_table(m.mem, *dir, "APIC");
  ASSERT_TRUE(apic.has_value()) << apic.error().message;
  EXPECT_EQ(apic->size(), m.madt.size());
  auto madt = parse_madt(*apic);
  ASSERT_TRUE(madt.has_value()) << madt.error().message;
  EXPECT_EQ(madt->usable_cpu_count(), 4u);
  ASSERT_EQ(madt->io_apic_count, 1u);
  EXPECT_EQ(madt->io_apics[0].id, 4);  // Bochs: IOAPIC ID = number of CPUs
  auto mcfg = find_table(m.mem, *dir, "MCFG");
  ASSERT_FALSE(mcfg.has_value());
  EXPECT_EQ(mcfg.error().code, ErrorCode::kNotFound);
}

TEST(AcpiRootTable, XsdtPreferredOverRsdt) {
  FakeMemory mem;
  mem.map(0x1000, make_rsdt({0x3000}));
  mem.map(0x1'0000'2000ull, make_xsdt({0x4000, 0x1'0000'5000ull}));
  mem.map(0x3000, make_table("OLD1", {}));
  mem.map(0x4000, make_table("FACP", {}));
  mem.map(0x1'0000'5000ull, make_table("APIC", MadtBuilder().body));
  Bytes rsdp_bytes = make_rsdp(2, 0x1000, 0x1'0000'2000ull);
  auto rsdp = parse_rsdp(span_of(rsdp_bytes));
  ASSERT_TRUE(rsdp.has_value());
  auto dir = read_root_table(mem, *rsdp);
  ASSERT_TRUE(dir.has_value()) << dir.error().message;
  EXPECT_TRUE(dir->is_xsdt);
  EXPECT_EQ(dir->root_address, 0x1'0000'2000ull);
  EXPECT_EQ(dir->root_header.signature.view(), "XSDT");
  ASSERT_EQ(dir->count, 2u);
  EXPECT_EQ(dir->entries[0].signature.view(), "FACP");
  EXPECT_EQ(dir->entries[1].address, 0x1'0000'5000ull);
  EXPECT_EQ(dir->entries[1].signature.view(), "APIC");
  EXPECT_FALSE(find_table(mem, *dir, "OLD1").has_value());
}

TEST(AcpiRootTable, RsdtUsedForRevision0) {
  FakeMemory mem;
  mem.map(0x1000, make_rsdt({0x3000}));
  mem.map(0x3000, make_table("FACP", {}));
  Bytes rsdp_bytes = make_rsdp(0, 0x1000);
  auto rsdp = parse_rsdp(span_of(rsdp_bytes));
  ASSERT_TRUE(rsdp.has_value());
  auto dir = read_root_table(mem, *rsdp);
  ASSERT_TRUE(dir.has_value()) << dir.error().message;
  EXPECT_FALSE(dir->is_xsdt);
  ASSERT_EQ(dir->count, 1u);
  EXPECT_EQ(dir->entries[0].signature.view(), "FACP");
}

TEST(AcpiRootTable, RsdtFallbackWhenXsdtAddressZero) {
  FakeMemory mem;
  mem.map(0x1000, make_rsdt({0x3000, 0x3100}));
  mem.map(0x3000, make_table("FACP", {}));
  mem.map(0x3100, make_table("APIC", MadtBuilder().body));
  Bytes rsdp_bytes = make_rsdp(2, 0x1000, 0);
  auto rsdp = parse_rsdp(span_of(rsdp_bytes));
  ASSERT_TRUE(rsdp.has_value());
  auto dir = read_root_table(mem, *rsdp);
  ASSERT_TRUE(dir.has_value()) << dir.error().message;
  EXPECT_FALSE(dir->is_xsdt);
  EXPECT_EQ(dir->root_address, 0x1000u);
  ASSERT_EQ(dir->count, 2u);
  EXPECT_EQ(dir->entries[1].signature.view(), "APIC");
}

TEST(AcpiRootTable, NoRootAddress) {
  FakeMemory mem;
  Rsdp rsdp;  // revision 0, rsdt 0
  auto dir = read_root_table(mem, rsdp);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code, ErrorCode::kNotFound);
}

TEST(AcpiRootTable, CorruptChecksum) {
  FakeMemory mem;
  Bytes rsdt = make_rsdt({0x3000});
  rsdt[36] ^= 0x01;
  mem.map(0x1000, rsdt);
  Rsdp rsdp;
  rsdp.rsdt_address = 0x1000;
  auto dir = read_root_table(mem, rsdp);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code, ErrorCode::kBadChecksum);
}

TEST(AcpiRootTable, HeaderLengthBelow36) {
  FakeMemory mem;
  Bytes rsdt = make_rsdt({});
  put_u32(rsdt, 4, 35);
  fix_checksum(rsdt, 9, 36);
  mem.map(0x1000, rsdt);
  Rsdp rsdp;
  rsdp.rsdt_address = 0x1000;
  auto dir = read_root_table(mem, rsdp);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code, ErrorCode::kMalformed);
  EXPECT_EQ(dir.error().detail, 35u);
}

TEST(AcpiRootTable, LengthRunsPastMapping) {
  FakeMemory mem;
  Bytes rsdt = make_rsdt({0x3000, 0x3100});
  put_u32(rsdt, 4, static_cast<uint32_t>(rsdt.size() + 64));  // claims 64 more bytes
  fix_checksum(rsdt, 9, rsdt.size());
  mem.map(0x1000, rsdt);
  Rsdp rsdp;
  rsdp.rsdt_address = 0x1000;
  auto dir = read_root_table(mem, rsdp);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code, ErrorCode::kInvalidArgument);  // the reader's refusal
}

TEST(AcpiRootTable, WrongSignature) {
  FakeMemory mem;
  mem.map(0x1000, make_xsdt({0x3000}));  // an XSDT where the RSDT should be
  Rsdp rsdp;
  rsdp.rsdt_address = 0x1000;
  auto dir = read_root_table(mem, rsdp);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code, ErrorCode::kMalformed);
}

TEST(AcpiRootTable, PartialXsdtEntry) {
  FakeMemory mem;
  Bytes body;
  put_u64(body, 0, 0x3000);
  put_u32(body, 8, 0x4000);  // 12 bytes: one and a half 64-bit entries
  mem.map(0x2000, make_table("XSDT", body));
  Bytes rsdp_bytes = make_rsdp(2, 0, 0x2000);
  auto rsdp = parse_rsdp(span_of(rsdp_bytes));
  ASSERT_TRUE(rsdp.has_value());
  auto dir = read_root_table(mem, *rsdp);
  ASSERT_FALSE(dir.has_value());
  EXPECT_EQ(dir.error().code, ErrorCode::kMalformed);
}

TEST(AcpiRootTable, SixtyFourEntriesFitSixtyFiveDoNot) {
  FakeMemory mem;
  std::vector<uint32_t> addrs;
  for (uint32_t i = 0; i < 65; ++i) {
    addrs.push_back(0x10000 + i * 0x100);
    mem.map(addrs.back(), make_table("SSDT", {}));
  }
  std::vector<uint32_t> first64(addrs.begin(), addrs.begin() + 64);
  mem.map(0x1000, make_rsdt(first64));
  mem.map(0x2000, make_rsdt(addrs));
  Rsdp rsdp;
  rsdp.rsdt_address = 0x1000;
  auto dir = read_root_table(mem, rsdp);
  ASSERT_TRUE(dir.has_value()) << dir.error().message;
  EXPECT_EQ(dir->count, 64u);
  EXPECT_EQ(dir->entries[63].address, addrs[63]);
  rsdp.rsdt_address = 0x2000;
  auto too_many = read_root_table(mem, rsdp);
  ASSERT_FALSE(too_many.has_value());
  EXPECT_EQ(too_many.error().code, ErrorCode::kFull);
  EXPECT_EQ(too_many.error().detail, 65u);
}

TEST(AcpiRootTable, UnreadableEntryIsKeptAndSkipped) {
  FakeMemory mem;
  mem.map(0x1000, make_rsdt({0xDEAD0000, 0, 0x3000}));
  mem.map(0x3000, make_table("APIC", MadtBuilder().lapic(0, 0, 1).body));
  Rsdp rsdp;
  rsdp.rsdt_address = 0x1000;
  auto dir = read_root_table(mem, rsdp);
  ASSERT_TRUE(dir.has_value()) << dir.error().message;
  ASSERT_EQ(dir->count, 3u);
  EXPECT_FALSE(dir->entries[0].readable);
  EXPECT_EQ(dir->entries[0].address, 0xDEAD0000u);
  EXPECT_FALSE(dir->entries[1].readable);
  EXPECT_TRUE(dir->entries[2].readable);
  auto apic = find_table(mem, *dir, "APIC");
  ASSERT_TRUE(apic.has_value()) << apic.error().message;
}

TEST(AcpiFindTable, CorruptChecksum) {
  BochsMachine m;
  m.mem.poke(BochsMachine::kApic + 44, {0x77});  // first MADT entry's type byte
  Rsdp rsdp;
  rsdp.rsdt_address = BochsMachine::kRsdt;
  auto dir = read_root_table(m.mem, rsdp);
  ASSERT_TRUE(dir.has_value()) << dir.error().message;
  auto apic = find_table(m.mem, *dir, "APIC");
  ASSERT_FALSE(apic.has_value());
  EXPECT_EQ(apic.error().code, ErrorCode::kBadChecksum);
  // Other tables are unaffected.
  EXPECT_TRUE(find_table(m.mem, *dir, "HPET").has_value());
}

TEST(AcpiFindTable, HeaderLengthBelow36) {
  FakeMemory mem;
  Bytes t = make_table("HPET", Bytes(20, 0));
  put_u32(t, 4, 0);
  fix_checksum(t, 9, t.size());
  mem.map(0x3000, t);
  mem.map(0x1000, make_rsdt({0x3000}));
  Rsdp rsdp;
  rsdp.rsdt_address = 0x1000;
  auto dir = read_root_table(mem, rsdp);
  ASSERT_TRUE(dir.has_value());
  auto hpet = find_table(mem, *dir, "HPET");
  ASSERT_FALSE(hpet.has_value());
  EXPECT_EQ(hpet.error().code, ErrorCode::kMalformed);
}

TEST(AcpiFindTable, LengthRunsPastMapping) {
  FakeMemory mem;
  Bytes t = make_table("HPET", Bytes(20, 0));
  put_u32(t, 4, 4096);
  fix_checksum(t, 9, t.size());
  mem.map(0x3000, t);
  mem.map(0x1000, make_rsdt({0x3000}));
  Rsdp rsdp;
  rsdp.rsdt_address = 0x1000;
  auto dir = read_root_table(mem, rsdp);
  ASSERT_TRUE(dir.has_value());
  auto hpet = find_table(mem, *dir, "HPET");
  ASSERT_FALSE(hpet.has_value());
  EXPECT_EQ(hpet.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(hpet.error().detail, 0x3000u);
}

TEST(AcpiFindTable, SkipsCorruptCopyAndReturnsValidOne) {
  FakeMemory mem;
  Bytes bad = make_table("SSDT", Bytes(8, 1));
  bad[40] ^= 0xFF;
  mem.map(0x3000, bad);
  mem.map(0x4000, make_table("SSDT", Bytes(8, 2)));
  mem.map(0x1000, make_rsdt({0x3000, 0x4000}));
  Rsdp rsdp;
  rsdp.rsdt_address = 0x1000;
  auto dir = read_root_table(mem, rsdp);
  ASSERT_TRUE(dir.has_value());
  auto ssdt = find_table(mem, *dir, "SSDT");
  ASSERT_TRUE(ssdt.has_value()) << ssdt.error().message;
  EXPECT_EQ((*ssdt)[36], 2);
}

TEST(AcpiSdtHeader, ParsesFieldsAndRejectsShortSpans) {
  Bytes t = make_table("HPET", Bytes(20, 0), 7);
  auto h = parse_sdt_header(span_of(t));
  ASSERT_TRUE(h.has_value()) << h.error().message;
  EXPECT_EQ(h->signature.view(), "HPET");
  EXPECT_EQ(h->length, 56u);
  EXPECT_EQ(h->revision, 7);
  EXPECT_EQ(std::string(h->oem_table_id.data(), 8), "TESTTBL ");
  for (size_t n = 0; n < t.size(); ++n) {
    auto r = parse_sdt_header(std::span(t.data(), n));
    ASSERT_FALSE(r.has_value()) << n;
    EXPECT_EQ(r.error().code, ErrorCode::kTruncated) << n;
  }
}

// ===========================================================================================
// MADT
// ===========================================================================================
TEST(AcpiMadt, FourCpusIoApicOverrides) {
  Bytes t = make_bochs_madt(4);
  auto r = parse_madt(span_of(t));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const MadtInfo& m = *r;
  EXPECT_EQ(m.local_apic_address, 0xFEE00000u);
  EXPECT_FALSE(m.local_apic_address_overridden);
  EXPECT_TRUE(m.pcat_compat());
  ASSERT_EQ(m.cpu_count, 4u);
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_EQ(m.cpus[i].apic_id, i);
    EXPECT_EQ(m.cpus[i].acpi_uid, i);
    EXPECT_TRUE(m.cpus[i].enabled());
    EXPECT_FALSE(m.cpus[i].x2apic);
  }
  EXPECT_EQ(m.enabled_cpu_count(), 4u);
  EXPECT_EQ(m.usable_cpu_count(), 4u);
  ASSERT_EQ(m.io_apic_count, 1u);
  EXPECT_EQ(m.io_apics[0].id, 4);
  EXPECT_EQ(m.io_apics[0].address, 0xFEC00000u);
  EXPECT_EQ(m.io_apics[0].gsi_base, 0u);
  ASSERT_EQ(m.override_count, 5u);
  EXPECT_EQ(m.overrides[0].bus, 0);
  EXPECT_EQ(m.overrides[0].source, 0);
  EXPECT_EQ(m.overrides[0].gsi, 2u);
  EXPECT_EQ(m.overrides[0].polarity(), Polarity::kConforms);
  EXPECT_EQ(m.overrides[0].trigger(), TriggerMode::kConforms);
  EXPECT_EQ(m.overrides[2].source, 9);
  EXPECT_EQ(m.overrides[2].polarity(), Polarity::kActiveHigh);
  EXPECT_EQ(m.overrides[2].trigger(), TriggerMode::kLevel);
  uint16_t flags = 0xFFFF;
  EXPECT_EQ(m.isa_irq_to_gsi(0, &flags), 2u);
  EXPECT_EQ(flags, 0);
  EXPECT_EQ(m.isa_irq_to_gsi(9, &flags), 9u);
  EXPECT_EQ(flags, kActiveHighLevel);
  EXPECT_EQ(m.isa_irq_to_gsi(4, &flags), 4u);  // no override: identity
  EXPECT_EQ(flags, 0);
  ASSERT_EQ(m.nmi_count, 1u);
  EXPECT_TRUE(m.nmis[0].applies_to_all());
  EXPECT_EQ(m.nmis[0].lint, 1);
  EXPECT_EQ(m.skipped_entries, 0u);
}

TEST(AcpiMadt, InterruptFlagDecoding) {
  EXPECT_EQ(inti_polarity(kActiveLowLevel), Polarity::kActiveLow);
  EXPECT_EQ(inti_trigger(kActiveLowLevel), TriggerMode::kLevel);
  EXPECT_EQ(inti_polarity(kActiveHighEdge), Polarity::kActiveHigh);
  EXPECT_EQ(inti_trigger(kActiveHighEdge), TriggerMode::kEdge);
  EXPECT_EQ(inti_polarity(0x2), Polarity::kReserved);
  EXPECT_EQ(inti_trigger(0x8), TriggerMode::kReserved);
}

TEST(AcpiMadt, DisabledAndOnlineCapableCpus) {
  Bytes t = MadtBuilder()
                .lapic(0, 0, MadtCpu::kFlagEnabled)
                .lapic(1, 1, 0)                            // disabled: unusable
                .lapic(2, 2, MadtCpu::kFlagOnlineCapable)  // hot-pluggable
                .lapic(3, 3, MadtCpu::kFlagEnabled | MadtCpu::kFlagOnlineCapable)
                .build();
  auto r = parse_madt(span_of(t));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->cpu_count, 4u);  // all kept
  EXPECT_TRUE(r->cpus[0].usable());
  EXPECT_FALSE(r->cpus[1].usable());
  EXPECT_FALSE(r->cpus[1].enabled());
  EXPECT_TRUE(r->cpus[2].online_capable());
  EXPECT_FALSE(r->cpus[2].enabled());
  EXPECT_TRUE(r->cpus[2].usable());
  EXPECT_TRUE(r->cpus[3].enabled());
  EXPECT_FALSE(r->cpus[3].online_capable());  // only meaningful when Enabled is clear
  EXPECT_EQ(r->enabled_cpu_count(), 2u);
  EXPECT_EQ(r->usable_cpu_count(), 3u);
}

TEST(AcpiMadt, X2ApicEntries) {
  Bytes t = MadtBuilder()
                .lapic(0, 0, MadtCpu::kFlagEnabled)
                .x2apic(256, MadtCpu::kFlagEnabled, 1000)
                .x2apic(0x12345, 0, 1001)
                .x2apic(0, MadtCpu::kFlagEnabled, 7)  // duplicate of APIC ID 0: ignored
                .x2apic_nmi(0xFFFFFFFF, kActiveHighEdge, 1)
                .x2apic_nmi(1000, 0, 0)
                .lapic_nmi(5, kActiveLowLevel, 1)
                .build();
  auto r = parse_madt(span_of(t));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->cpu_count, 3u);
  EXPECT_EQ(r->duplicate_cpu_entries, 1u);
  EXPECT_FALSE(r->cpus[0].x2apic);
  EXPECT_EQ(r->cpus[0].acpi_uid, 0u);
  EXPECT_TRUE(r->cpus[1].x2apic);
  EXPECT_EQ(r->cpus[1].apic_id, 256u);
  EXPECT_EQ(r->cpus[1].acpi_uid, 1000u);
  EXPECT_TRUE(r->cpus[1].enabled());
  EXPECT_EQ(r->cpus[2].apic_id, 0x12345u);
  EXPECT_FALSE(r->cpus[2].usable());
  EXPECT_EQ(r->usable_cpu_count(), 2u);
  ASSERT_EQ(r->nmi_count, 3u);
  EXPECT_TRUE(r->nmis[0].x2apic);
  EXPECT_TRUE(r->nmis[0].applies_to_all());
  EXPECT_EQ(r->nmis[0].flags, kActiveHighEdge);
  EXPECT_EQ(r->nmis[1].acpi_uid, 1000u);
  EXPECT_FALSE(r->nmis[1].applies_to_all());
  EXPECT_EQ(r->nmis[1].lint, 0);
  EXPECT_FALSE(r->nmis[2].x2apic);
  EXPECT_EQ(r->nmis[2].acpi_uid, 5u);
  EXPECT_EQ(r->nmis[2].flags, kActiveLowLevel);
}

TEST(AcpiMadt, LocalApicAddressOverride) {
  Bytes t = MadtBuilder(0xFEE00000).lapic(0, 0, 1).lapic_override(0x1'FEE0'0000ull).build();
  auto r = parse_madt(span_of(t));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->local_apic_address_overridden);
  EXPECT_EQ(r->local_apic_address, 0x1'FEE0'0000ull);
}

TEST(AcpiMadt, NoPcatCompat) {
  Bytes t = MadtBuilder(0xFEE00000, 0).build();
  auto r = parse_madt(span_of(t));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(r->pcat_compat());
  EXPECT_EQ(r->cpu_count, 0u);
}

TEST(AcpiMadt, EntryLengthZero) {
  Bytes t = MadtBuilder().lapic(0, 0, 1).raw({0, 0, 0, 0}).build();
  auto r = parse_madt(span_of(t));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  EXPECT_EQ(r.error().detail, 52u);  // 44 + first entry's 8
}

TEST(AcpiMadt, EntryLengthOne) {
  // Unknown type with length 1: must be rejected as a bad length, not skipped.
  for (uint8_t type : {uint8_t{0}, uint8_t{0x7F}}) {
    Bytes t = MadtBuilder().raw({type, 1, 0, 0}).build();
    auto r = parse_madt(span_of(t));
    ASSERT_FALSE(r.has_value()) << int{type};
    EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
    EXPECT_EQ(r.error().detail, 44u);
    EXPECT_NE(std::string(r.error().message).find("below 2"), std::string::npos);
  }
}

TEST(AcpiMadt, EntryPastEnd) {
  // A LAPIC entry claiming 8 bytes with only 6 left in the table.
  Bytes t = MadtBuilder().lapic(0, 0, 1).raw({0, 8, 1, 1, 1, 0}).build();
  auto r = parse_madt(span_of(t));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  EXPECT_EQ(r.error().detail, 52u);
}

TEST(AcpiMadt, LoneTrailingByte) {
  Bytes t = MadtBuilder().lapic(0, 0, 1).raw({0}).build();
  auto r = parse_madt(span_of(t));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  EXPECT_EQ(r.error().detail, 52u);
}

TEST(AcpiMadt, KnownEntryShorterThanItsStructure) {
  // An I/O APIC entry (needs 12 bytes) declared with length 8.
  Bytes t = MadtBuilder().raw({1, 8, 0, 0, 0, 0, 0xC0, 0xFE}).build();
  auto r = parse_madt(span_of(t));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  EXPECT_EQ(r.error().detail, 44u);
}

TEST(AcpiMadt, LongerEntriesAndUnknownTypesAreAccepted) {
  // A LAPIC entry with 4 extra bytes (a future revision) and an unknown type 0x7F.
  Bytes t = MadtBuilder()
                .raw({0, 12, 3, 9, 1, 0, 0, 0, 0xEE, 0xEE, 0xEE, 0xEE})
                .raw({0x7F, 4, 0, 0})
                .lapic(4, 10, 1)
                .build();
  auto r = parse_madt(span_of(t));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->cpu_count, 2u);
  EXPECT_EQ(r->cpus[0].apic_id, 9u);
  EXPECT_EQ(r->cpus[0].acpi_uid, 3u);
  EXPECT_EQ(r->cpus[1].apic_id, 10u);
  EXPECT_EQ(r->skipped_entries, 1u);
}

TEST(AcpiMadt, WrongSignatureOrBadChecksum) {
  Bytes body = MadtBuilder().lapic(0, 0, 1).body;
  Bytes facp = make_table("FACP", body);
  auto r = parse_madt(span_of(facp));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  Bytes t = make_table("APIC", body);
  t[47] ^= 1;
  auto c = parse_madt(span_of(t));
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kBadChecksum);
}

TEST(AcpiMadt, CpuCapacity) {
  MadtBuilder m;
  for (uint32_t i = 0; i < 256; ++i) m.x2apic(i, MadtCpu::kFlagEnabled, i);
  Bytes fits = m.build();
  auto ok = parse_madt(span_of(fits));
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->cpu_count, 256u);
  EXPECT_EQ(ok->cpus[255].apic_id, 255u);
  m.x2apic(256, MadtCpu::kFlagEnabled, 256);
  Bytes over = m.build();
  auto r = parse_madt(span_of(over));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kFull);
  EXPECT_EQ(r.error().detail, 44u + 256u * 16u);
}

TEST(AcpiMadt, IoApicCapacity) {
  MadtBuilder m;
  for (uint8_t i = 0; i < 8; ++i) m.ioapic(i, 0xFEC00000u + i * 0x1000u, i * 24u);
  auto ok = parse_madt(span_of(m.build()));
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->io_apic_count, 8u);
  EXPECT_EQ(ok->io_apics[7].gsi_base, 168u);
  m.ioapic(8, 0xFEC08000u, 192);
  Bytes over = m.build();
  auto r = parse_madt(span_of(over));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kFull);
  EXPECT_EQ(r.error().detail, 44u + 8u * 12u);
}

TEST(AcpiMadt, OverrideCapacity) {
  MadtBuilder m;
  for (uint8_t i = 0; i < 32; ++i) m.iso(0, i, i, 0);
  auto ok = parse_madt(span_of(m.build()));
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->override_count, 32u);
  m.iso(0, 32, 32, 0);
  Bytes over = m.build();
  auto r = parse_madt(span_of(over));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kFull);
}

TEST(AcpiMadt, EveryTruncationOfTheSpan) {
  // Cutting the span short while the header still claims the full length is always an error.
  Bytes full = MadtBuilder()
                   .lapic(0, 0, 1)
                   .lapic(1, 1, 1)
                   .x2apic(300, 1, 2)
                   .ioapic(2, 0xFEC00000, 0)
                   .iso(0, 0, 2, 0)
                   .lapic_nmi(0xFF, 0, 1)
                   .x2apic_nmi(0xFFFFFFFF, 0, 1)
                   .lapic_override(0xFEE00000)
                   .build();
  for (size_t n = 0; n < full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));  // exact-size heap
    auto r = parse_madt(span_of(cut));
    ASSERT_FALSE(r.has_value()) << n;
  }
}

TEST(AcpiMadt, EveryTruncationWithConsistentHeader) {
  // Cut the table at every length, then make the header agree (length and checksum) so the
  // entry walker itself faces the cut. It must succeed exactly at entry boundaries.
  MadtBuilder m;
  m.lapic(0, 0, 1).x2apic(300, 1, 2).ioapic(2, 0xFEC00000, 0).iso(0, 9, 9, kActiveHighLevel);
  m.lapic_nmi(0xFF, 0, 1).x2apic_nmi(0xFFFFFFFF, 0, 1).lapic_override(0xFEE00000);
  Bytes full = m.build();
  std::vector<size_t> boundaries = {44};
  for (size_t len : {8, 16, 12, 10, 6, 12, 12}) boundaries.push_back(boundaries.back() + len);
  ASSERT_EQ(boundaries.back(), full.size());
  size_t successes = 0;
  for (size_t n = 0; n <= full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    if (n >= 8) put_u32(cut, 4, static_cast<uint32_t>(n));
    if (n >= 10) fix_checksum(cut, 9, n);
    cut.resize(n);  // put_* never grows past n here, but keep the heap block exact
    auto r = parse_madt(span_of(cut));
    const bool boundary = std::find(boundaries.begin(), boundaries.end(), n) != boundaries.end();
    EXPECT_EQ(r.has_value(), boundary) << n;
    if (r.has_value()) {
      ++successes;
    } else if (n > 44) {
      EXPECT_EQ(r.error().code, ErrorCode::kMalformed) << n;
    }
  }
  EXPECT_EQ(successes, boundaries.size());
}

// ===========================================================================================
// MCFG
// ===========================================================================================
TEST(AcpiMcfg, ParsesAllocations) {
  Bytes t = make_mcfg({{0xB0000000, 0, 0, 255}, {0x4'0000'0000ull, 1, 0x80, 0xFF}});
  auto r = parse_mcfg(span_of(t));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->list().size(), 2u);
  EXPECT_EQ(r->allocations[0].base_address, 0xB0000000u);
  EXPECT_EQ(r->allocations[0].segment, 0);
  EXPECT_EQ(r->allocations[0].start_bus, 0);
  EXPECT_EQ(r->allocations[0].end_bus, 255);
  EXPECT_EQ(r->allocations[1].base_address, 0x4'0000'0000ull);
  EXPECT_EQ(r->allocations[1].segment, 1);
  EXPECT_EQ(r->allocations[1].start_bus, 0x80);
}

TEST(AcpiMcfg, EmptyIsValid) {
  Bytes t = make_mcfg({});
  auto r = parse_mcfg(span_of(t));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->count, 0u);
}

TEST(AcpiMcfg, Malformed) {
  Bytes partial = make_table("MCFG", Bytes(8 + 12, 0));  // 12 bytes: not a whole allocation
  auto a = parse_mcfg(span_of(partial));
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code, ErrorCode::kMalformed);

  Bytes backwards = make_mcfg({{0xB0000000, 0, 10, 5}});
  auto b = parse_mcfg(span_of(backwards));
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code, ErrorCode::kMalformed);
  EXPECT_EQ(b.error().detail, 44u);

  Bytes no_reserved = make_table("MCFG", Bytes(4, 0));  // 40 bytes: reserved field cut
  auto c = parse_mcfg(span_of(no_reserved));
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kTruncated);

  Bytes wrong = make_table("MCFX", Bytes(8, 0));
  auto d = parse_mcfg(span_of(wrong));
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code, ErrorCode::kMalformed);
}

TEST(AcpiMcfg, Capacity) {
  std::vector<McfgAlloc> allocs;
  for (uint16_t i = 0; i < 16; ++i) allocs.push_back({0xB0000000ull + i * 0x10000000ull, i, 0, 255});
  auto ok = parse_mcfg(span_of(make_mcfg(allocs)));
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->count, 16u);
  allocs.push_back({0x1'0000'0000ull, 16, 0, 255});
  Bytes over = make_mcfg(allocs);
  auto r = parse_mcfg(span_of(over));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kFull);
  EXPECT_EQ(r.error().detail, 17u);
}

TEST(AcpiMcfg, EveryTruncation) {
  Bytes full = make_mcfg({{0xB0000000, 0, 0, 255}, {0xC0000000, 1, 0, 63}});
  for (size_t n = 0; n <= full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    if (n >= 8) put_u32(cut, 4, static_cast<uint32_t>(n));
    if (n >= 10) fix_checksum(cut, 9, n);
    cut.resize(n);
    auto r = parse_mcfg(span_of(cut));
    const bool ok_len = n == 44 || n == 60 || n == 76;
    EXPECT_EQ(r.has_value(), ok_len) << n;
  }
}

}  // namespace
}  // namespace lantern::acpi
