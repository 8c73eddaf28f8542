#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "guest/loader/guest_memory.h"
#include "guest/loader/mp_table.h"

namespace lantern::guest {
namespace {

using namespace mp_table;
constexpr uint64_t kMiB = 1ull << 20;

uint16_t get16(const std::vector<uint8_t>& v, uint64_t off) {
  return static_cast<uint16_t>(v[off] | (v[off + 1] << 8));
}
uint32_t get32(const std::vector<uint8_t>& v, uint64_t off) {
  return uint32_t{v[off]} | (uint32_t{v[off + 1]} << 8) | (uint32_t{v[off + 2]} << 16) |
         (uint32_t{v[off + 3]} << 24);
}
uint8_t sum(const std::vector<uint8_t>& v, uint64_t off, uint64_t n) {
  uint8_t s = 0;
  for (uint64_t i = 0; i < n; ++i) s = static_cast<uint8_t>(s + v[off + i]);
  return s;
}
std::string text(const std::vector<uint8_t>& v, uint64_t off, size_t n) {
  return std::string(reinterpret_cast<const char*>(v.data() + off), n);
}

// Linux's search (arch/x86/kernel/mpparse.c, smp_scan_config): 16-byte steps, "_MP_", length 1,
// the 16 bytes sum to 0, spec revision 1 or 4. Returns the address or 0.
uint64_t find_floating_pointer(const std::vector<uint8_t>& ram, uint64_t base, uint64_t length) {
  for (uint64_t a = base; a < base + length; a += 16) {
    if (text(ram, a, 4) == "_MP_" && ram[a + 8] == 1 && sum(ram, a, 16) == 0 &&
        (ram[a + 9] == 1 || ram[a + 9] == 4))
      return a;
  }
  return 0;
}

struct ParsedCpu {
  uint8_t apic_id, apic_version, flags;
  uint32_t signature, features;
};
struct ParsedShort {  // bus, I/O APIC and interrupt entries: the 8 raw bytes
  uint8_t b[8];
};
struct Parsed {
  uint64_t mpc = 0;
  uint16_t length = 0, entry_count = 0;
  uint32_t lapic = 0;
  std::vector<ParsedCpu> cpus;
  std::vector<ParsedShort> buses, ioapics, intsrcs, lintsrcs;
  std::vector<uint8_t> order;  // entry types as they appear
  bool unknown_entry = false;
};

// The configuration table the way smp_check_mpc / smp_read_mpc read it.
Parsed parse(const std::vector<uint8_t>& ram, uint64_t fp) {
  Parsed p;
  p.mpc = get32(ram, fp + 4);
  EXPECT_EQ(text(ram, p.mpc, 4), "PCMP");
  p.length = get16(ram, p.mpc + 4);
  EXPECT_EQ(sum(ram, p.mpc, p.length), 0) << "base table checksum";
  EXPECT_EQ(ram[p.mpc + 6], 4) << "spec revision 1.4";
  p.entry_count = get16(ram, p.mpc + 34);
  p.lapic = get32(ram, p.mpc + 36);
  uint64_t at = p.mpc + 44;
  while (at < p.mpc + p.length) {
    const uint8_t type = ram[at];
    p.order.push_back(type);
    if (type == 0) {
      p.cpus.push_back({ram[at + 1], ram[at + 2], ram[at + 3], get32(ram, at + 4), get32(ram, at + 8)});
      for (int i = 12; i < 20; ++i) EXPECT_EQ(ram[at + i], 0) << "processor reserved byte " << i;
      at += 20;
      continue;
    }
    if (type > 4) {
      p.unknown_entry = true;
      break;
    }
    ParsedShort s;
    std::memcpy(s.b, ram.data() + at, 8);
    (type == 1 ? p.buses : type == 2 ? p.ioapics : type == 3 ? p.intsrcs : p.lintsrcs).push_back(s);
    at += 8;
  }
  EXPECT_EQ(at, p.mpc + p.length) << "entries end exactly at the base table length";
  return p;
}

struct MpTableFixture : ::testing::Test {
  std::vector<uint8_t> ram = std::vector<uint8_t>(2 * kMiB, 0);
  ByteSpanGuestMemory memory{ram};
};

TEST_F(MpTableFixture, FloatingPointerFoundWhereLinuxLooks) {
  const auto layout = write(memory, MpConfig{.cpu_count = 1, .ioapic_id = 1});
  ASSERT_TRUE(layout.has_value()) << layout.error().message;
  EXPECT_EQ(layout->floating_pointer_address, 0xf0000u);
  EXPECT_EQ(find_floating_pointer(ram, 0xf0000, 0x10000), 0xf0000u);
  EXPECT_EQ(find_floating_pointer(ram, 0x0, 0x400), 0u);
  EXPECT_EQ(find_floating_pointer(ram, 639 * 0x400, 0x400), 0u);
  // The structure byte by byte (MP 4.1).
  EXPECT_EQ(get32(ram, 0xf0004), 0xf0010u);  // the configuration table right after it
  EXPECT_EQ(ram[0xf0008], 1);                // length in paragraphs
  EXPECT_EQ(ram[0xf0009], 4);                // spec revision 1.4
  EXPECT_EQ(ram[0xf000b], 0);                // feature byte 1: a table is present
  EXPECT_EQ(ram[0xf000c], 0);                // feature byte 2: IMCRP clear, virtual wire
  EXPECT_EQ(ram[0xf000d] | ram[0xf000e] | ram[0xf000f], 0);
  EXPECT_EQ(sum(ram, 0xf0000, 16), 0);
}

TEST_F(MpTableFixture, HeaderFieldsAndLayout) {
  const auto layout = write(memory, MpConfig{.cpu_count = 2, .ioapic_id = 2});
  ASSERT_TRUE(layout.has_value());
  EXPECT_EQ(layout->config_table_address, 0xf0010u);
  EXPECT_EQ(layout->config_table_bytes, 44u + 2 * 20 + 19 * 8);
  EXPECT_EQ(layout->config_table_bytes, config_table_bytes(2));
  EXPECT_EQ(layout->entry_count, 2 + 1 + 1 + 15 + 2);
  EXPECT_EQ(layout->end(), 0xf0010u + layout->config_table_bytes);
  const uint64_t h = 0xf0010;
  EXPECT_EQ(text(ram, h, 4), "PCMP");
  EXPECT_EQ(get16(ram, h + 4), layout->config_table_bytes);
  EXPECT_EQ(ram[h + 6], 4);
  EXPECT_EQ(text(ram, h + 8, 8), "LANTERN ");
  EXPECT_EQ(text(ram, h + 16, 12), "GUEST       ");
  EXPECT_EQ(get32(ram, h + 28), 0u);  // no OEM table
  EXPECT_EQ(get16(ram, h + 32), 0u);
  EXPECT_EQ(get16(ram, h + 34), layout->entry_count);
  EXPECT_EQ(get32(ram, h + 36), 0xfee00000u);
  EXPECT_EQ(get16(ram, h + 40), 0u);  // no extended table
  EXPECT_EQ(ram[h + 42], 0);
  EXPECT_EQ(sum(ram, h, layout->config_table_bytes), 0);
  // Nothing written past the end.
  EXPECT_EQ(ram[layout->end()], 0);
}

void check_table(const std::vector<uint8_t>& ram, uint16_t cpus, uint8_t ioapic_id) {
  const uint64_t fp = find_floating_pointer(ram, 0xf0000, 0x10000);
  ASSERT_NE(fp, 0u);
  const Parsed p = parse(ram, fp);
  EXPECT_FALSE(p.unknown_entry);
  EXPECT_EQ(p.lapic, 0xfee00000u);
  EXPECT_EQ(p.entry_count, cpus + 1 + 1 + 15 + 2);
  EXPECT_EQ(p.order.size(), p.entry_count);
  for (size_t i = 1; i < p.order.size(); ++i) EXPECT_LE(p.order[i - 1], p.order[i]) << "sorted by type";

  ASSERT_EQ(p.cpus.size(), cpus);
  for (uint16_t i = 0; i < cpus; ++i) {
    EXPECT_EQ(p.cpus[i].apic_id, i);
    EXPECT_EQ(p.cpus[i].apic_version, 0x14);
    EXPECT_EQ(p.cpus[i].flags, i == 0 ? 0x03 : 0x01) << "enabled, BSP on CPU 0 only";
    EXPECT_EQ((p.cpus[i].signature >> 8) & 0xf, 6u) << "family 6";
    EXPECT_EQ(p.cpus[i].features, 0x201u) << "FPU and APIC";
  }

  ASSERT_EQ(p.buses.size(), 1u);
  EXPECT_EQ(p.buses[0].b[1], 0);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(p.buses[0].b + 2), 6), "ISA   ");

  ASSERT_EQ(p.ioapics.size(), 1u);
  const uint8_t* io = p.ioapics[0].b;
  EXPECT_EQ(io[1], ioapic_id);
  EXPECT_EQ(io[2], 0x11);
  EXPECT_EQ(io[3], 0x01);  // usable
  EXPECT_EQ(io[4] | (io[5] << 8) | (io[6] << 16) | (uint32_t{io[7]} << 24), 0xfec00000u);

  ASSERT_EQ(p.intsrcs.size(), 15u);
  std::vector<uint8_t> irqs;
  for (const ParsedShort& s : p.intsrcs) {
    EXPECT_EQ(s.b[1], 0) << "type INT";
    EXPECT_EQ(s.b[2] | (s.b[3] << 8), 0) << "conforms to the bus";
    EXPECT_EQ(s.b[4], 0) << "ISA bus";
    EXPECT_EQ(s.b[6], ioapic_id);
    EXPECT_EQ(s.b[7], s.b[5] == 0 ? 2 : s.b[5]) << "IRQ 0 on pin 2, IRQ n on pin n";
    irqs.push_back(s.b[5]);
  }
  EXPECT_EQ(irqs, (std::vector<uint8_t>{0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}));

  ASSERT_EQ(p.lintsrcs.size(), 2u);
  EXPECT_EQ(std::vector<uint8_t>(p.lintsrcs[0].b, p.lintsrcs[0].b + 8),
            (std::vector<uint8_t>{4, 3, 0, 0, 0, 0, 0xff, 0}));  // ExtINT -> LINT0 of all
  EXPECT_EQ(std::vector<uint8_t>(p.lintsrcs[1].b, p.lintsrcs[1].b + 8),
            (std::vector<uint8_t>{4, 1, 0, 0, 0, 0, 0xff, 1}));  // NMI -> LINT1 of all
}

TEST_F(MpTableFixture, OneCpu) {
  ASSERT_TRUE(write(memory, MpConfig{.cpu_count = 1, .ioapic_id = 1}).has_value());
  check_table(ram, 1, 1);
}

TEST_F(MpTableFixture, TwoCpus) {
  ASSERT_TRUE(write(memory, MpConfig{.cpu_count = 2, .ioapic_id = 2}).has_value());
  check_table(ram, 2, 2);
}

TEST_F(MpTableFixture, FourCpus) {
  ASSERT_TRUE(write(memory, MpConfig{.cpu_count = 4, .ioapic_id = 4}).has_value());
  check_table(ram, 4, 4);
}

TEST_F(MpTableFixture, AnotherAddressAndApicAddressesInTheBiosArea) {
  MpConfig config{.cpu_count = 3, .ioapic_id = 9};
  config.ioapic_address = 0xfec01000;
  config.lapic_address = 0xfee10000;
  const auto layout = write(memory, config, 0xf5a40);
  ASSERT_TRUE(layout.has_value());
  EXPECT_EQ(find_floating_pointer(ram, 0xf0000, 0x10000), 0xf5a40u);
  const Parsed p = parse(ram, 0xf5a40);
  EXPECT_EQ(p.mpc, 0xf5a50u);
  EXPECT_EQ(p.lapic, 0xfee10000u);
  ASSERT_EQ(p.ioapics.size(), 1u);
  EXPECT_EQ(get32(ram, 0xf5a50 + 44 + 3 * 20 + 8 + 4), 0xfec01000u);
  EXPECT_EQ(p.ioapics[0].b[1], 9);
}

TEST_F(MpTableFixture, LargestTableFitsAtTheDefaultAddress) {
  const auto layout = write(memory, MpConfig{.cpu_count = 254, .ioapic_id = 0});
  ASSERT_TRUE(layout.has_value()) << layout.error().message;
  EXPECT_EQ(layout->entry_count, 254 + 19);
  const Parsed p = parse(ram, find_floating_pointer(ram, 0xf0000, 0x10000));
  ASSERT_EQ(p.cpus.size(), 254u);
  EXPECT_EQ(p.cpus[253].apic_id, 253);
  EXPECT_EQ(p.cpus[253].flags, 0x01);
}

TEST_F(MpTableFixture, Refusals) {
  auto refused = [&](const MpConfig& c, uint64_t address) {
    const auto r = write(memory, c, address);
    return !r.has_value() && r.error().code == ErrorCode::kInvalidArgument;
  };
  const MpConfig good{.cpu_count = 2, .ioapic_id = 2};
  EXPECT_TRUE(refused(MpConfig{.cpu_count = 0, .ioapic_id = 1}, 0xf0000));
  EXPECT_TRUE(refused(MpConfig{.cpu_count = 255, .ioapic_id = 1}, 0xf0000));
  EXPECT_TRUE(refused(good, 0xf0008));   // not 16-byte aligned
  EXPECT_TRUE(refused(good, 0xe0000));   // below the BIOS area
  EXPECT_TRUE(refused(good, 0x9fc00));   // the EBDA: Linux would look, but not this writer
  EXPECT_TRUE(refused(good, 0x100000));  // above it
  EXPECT_TRUE(refused(good, 0xfffc0));   // the 236-byte table would run past 0xFFFFF
  EXPECT_TRUE(refused(MpConfig{.cpu_count = 254}, 0xff000));  // 5 KiB table past the end
  MpConfig high_lapic = good;
  high_lapic.lapic_address = 1ull << 32;
  EXPECT_TRUE(refused(high_lapic, 0xf0000));
  MpConfig zero_lapic = good;
  zero_lapic.lapic_address = 0;
  EXPECT_TRUE(refused(zero_lapic, 0xf0000));
  MpConfig high_ioapic = good;
  high_ioapic.ioapic_address = 0x1'0000'0000ull;
  EXPECT_TRUE(refused(high_ioapic, 0xf0000));
  // Nothing was written by any refused call.
  EXPECT_EQ(std::count_if(ram.begin(), ram.end(), [](uint8_t b) { return b != 0; }), 0);
  EXPECT_EQ(find_floating_pointer(ram, 0xf0000, 0x10000), 0u);
  // The last position where the smallest table still fits is accepted.
  const uint64_t last = (0x100000 - 16 - config_table_bytes(1)) & ~0xfull;
  EXPECT_TRUE(write(memory, MpConfig{.cpu_count = 1}, last).has_value());
}

TEST(MpTable, GuestRamThatDoesNotReachTheBiosAreaIsAnError) {
  std::vector<uint8_t> small(512 * 1024, 0);
  ByteSpanGuestMemory memory{small};
  const auto r = write(memory, MpConfig{.cpu_count = 1});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace lantern::guest
