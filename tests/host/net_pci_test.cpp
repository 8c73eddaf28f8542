// PCI configuration space: access helpers, enumeration, BAR sizing, capabilities (MSI, MSI-X,
// virtio), CF8 and ECAM address computation, MCFG parsing. Runs against FakePciConfig.
#include <gtest/gtest.h>

#include <vector>

#include "net/pci/config_mechanisms.h"
#include "net/pci/pci.h"
#include "net/pci/pci_bar.h"
#include "net/pci/pci_capabilities.h"
#include "net/virtio/virtio_pci.h"
#include "tests/host/net_test_fakes.h"

namespace lantern::net::pci {
namespace {

using testing::FakePciConfig;
using testing::RamMmio;

constexpr PciAddress kHostBridge{0, 0, 0, 0};
constexpr PciAddress kIsa{0, 0, 1, 0};
constexpr PciAddress kIde{0, 0, 1, 1};
constexpr PciAddress kAcpi{0, 0, 1, 3};
constexpr PciAddress kE1000{0, 0, 2, 0};
constexpr PciAddress kVirtio{0, 0, 3, 0};
constexpr PciAddress kVirtioTransitional{0, 0, 4, 0};
constexpr PciAddress kLoop{0, 0, 5, 0};
constexpr PciAddress kSingle{0, 0, 6, 0};
constexpr PciAddress kSingleGhost{0, 0, 6, 1};
constexpr PciAddress kBridge{0, 0, 7, 0};
constexpr PciAddress kBehindBridge{0, 1, 0, 0};
constexpr PciAddress kMsiDevice{0, 0, 8, 0};

// virtio_pci_cap body from byte 2: cap_len, cfg_type, bar, pad[3], offset, length[, mult].
std::vector<uint8_t> virtio_cap(uint8_t cfg_type, uint8_t bar, uint32_t offset, uint32_t length,
                                int multiplier = -1, uint8_t cap_len = 0) {
  std::vector<uint8_t> b;
  b.push_back(cap_len ? cap_len : (multiplier >= 0 ? 20 : 16));
  b.push_back(cfg_type);
  b.push_back(bar);
  b.insert(b.end(), {0, 0, 0});
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(offset >> (8 * i)));
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(length >> (8 * i)));
  if (multiplier >= 0) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(uint32_t(multiplier) >> (8 * i)));
  }
  return b;
}

// The capability chain QEMU gives a modern virtio-net: MSI-X then five vendor capabilities.
void add_virtio_caps(FakePciConfig::Function& f) {
  FakePciConfig::add_cap(f, 0x98, cap_id::kMsiX, 0x84,
                         {0x02, 0x00,                // control: table size 3 (N-1 = 2)
                          0x01, 0x00, 0x00, 0x00,    // table: BIR 1, offset 0
                          0x01, 0x08, 0x00, 0x00});  // PBA: BIR 1, offset 0x800
  FakePciConfig::add_cap(f, 0x84, cap_id::kVendorSpecific, 0x70, virtio_cap(5, 0, 0, 0, -1, 20));
  FakePciConfig::add_cap(f, 0x70, cap_id::kVendorSpecific, 0x60, virtio_cap(2, 4, 0x3000, 0x1000, 4));
  FakePciConfig::add_cap(f, 0x60, cap_id::kVendorSpecific, 0x50, virtio_cap(4, 4, 0x2000, 0x1000));
  FakePciConfig::add_cap(f, 0x50, cap_id::kVendorSpecific, 0x40, virtio_cap(3, 4, 0x1000, 0x1000));
  FakePciConfig::add_cap(f, 0x40, cap_id::kVendorSpecific, 0x00, virtio_cap(1, 4, 0x0000, 0x1000));
}

class PciTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cfg.add(kHostBridge, 0x8086, 0x1237, 0x06, 0x00);                    // i440FX
    cfg.add(kIsa, 0x8086, 0x7000, 0x06, 0x01, 0, kHeaderMultiFunction);  // PIIX3, multi-function
    cfg.add(kIde, 0x8086, 0x7010, 0x01, 0x01, 0x80);
    cfg.add(kAcpi, 0x8086, 0x7113, 0x06, 0x80);

    auto& e = cfg.add(kE1000, 0x8086, 0x100E, 0x02, 0x00, 0, 0, 0x03);
    FakePciConfig::set_bar(e, 0, 0xC0000000, 128 * 1024);  // as Bochs shows it
    FakePciConfig::set_bar(e, 1, 0xC001, 0x40);            // I/O BAR, 64 ports
    e.set16(0x2C, 0x8086);
    e.set16(0x2E, 0x001E);
    e.set8(0x3C, 11);
    e.set8(0x3D, 1);
    e.set16(0x04, command::kMemorySpace | command::kIoSpace);

    auto& v = cfg.add(kVirtio, 0x1AF4, 0x1041, 0x02, 0x00, 0, 0, 0x01);
    FakePciConfig::set_bar(v, 1, 0xFEBF1000, 0x1000);
    FakePciConfig::set_bar(v, 4, 0xFE000000 | 0xC, 0x4000, /*is64=*/true);  // 64-bit, prefetch
    v.set16(0x2C, 0x1AF4);
    v.set16(0x2E, 0x1100);
    v.set8(0x3D, 1);
    add_virtio_caps(v);

    auto& t = cfg.add(kVirtioTransitional, 0x1AF4, 0x1000, 0x02, 0x00);
    t.set16(0x2E, 0x0001);  // subsystem device ID 1: network
    add_virtio_caps(t);

    auto& l = cfg.add(kLoop, 0x1234, 0x0001, 0xFF, 0x00);
    FakePciConfig::add_cap(l, 0x40, cap_id::kPowerManagement, 0x50);
    FakePciConfig::add_cap(l, 0x50, cap_id::kMsi, 0x40);  // points back: a loop

    cfg.add(kSingle, 0x1234, 0x0002, 0x03, 0x00);       // no multi-function bit...
    cfg.add(kSingleGhost, 0x1234, 0x0002, 0x03, 0x00);  // ...but answers on function 1

    auto& b = cfg.add(kBridge, 0x8086, 0x244E, 0x06, 0x04, 0, kHeaderTypeBridge);
    b.set8(0x18, 0);
    b.set8(0x19, 1);
    b.set8(0x1A, 1);
    cfg.add(kBehindBridge, 0x1234, 0x0003, 0x02, 0x00);

    auto& m = cfg.add(kMsiDevice, 0x1234, 0x0004, 0x02, 0x00);
    // MSI at 0x50: 64-bit, per-vector masking, 4 vectors capable (MMC = 2).
    FakePciConfig::add_cap(m, 0x50, cap_id::kMsi, 0x00, {static_cast<uint8_t>((2 << 1) | 0x80), 0x01});
  }

  FakePciConfig cfg;
};

// ---- Address computation --------------------------------------------------------------

TEST(PciAddressTest, Cf8EncodingFollowsMechanismOne) {
  EXPECT_EQ(config_address_cf8({0, 0, 2, 0}, 0x10), 0x80001010u);
  EXPECT_EQ(config_address_cf8({0, 0xFF, 31, 7}, 0xFF), 0x80FFFFFCu);  // bits 1:0 dropped
  EXPECT_EQ(config_address_cf8({0, 1, 0, 1}, 0x3C), 0x8001013Cu);
}

TEST(PciAddressTest, EcamAddressFromMcfgAllocation) {
  McfgAllocation a{0xB0000000, 0, 0, 255};
  auto addr = ecam_address(a, {0, 0, 2, 0}, 0x10);
  ASSERT_TRUE(addr);
  EXPECT_EQ(*addr, 0xB0010010u);  // device 2 << 15
  addr = ecam_address(a, {0, 3, 31, 7}, 0xFFC);
  ASSERT_TRUE(addr);
  EXPECT_EQ(*addr, 0xB0000000u + (3u << 20) + (31u << 15) + (7u << 12) + 0xFFC);
}

TEST(PciAddressTest, EcamRejectsOutOfRange) {
  McfgAllocation a{0xE0000000, 1, 4, 7};
  EXPECT_EQ(ecam_address(a, {0, 4, 0, 0}, 0).error().code, ErrorCode::kInvalidArgument);  // seg
  EXPECT_EQ(ecam_address(a, {1, 3, 0, 0}, 0).error().code, ErrorCode::kInvalidArgument);  // bus
  EXPECT_EQ(ecam_address(a, {1, 8, 0, 0}, 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ecam_address(a, {1, 4, 0, 0}, 4096).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ecam_address(a, {1, 4, 32, 0}, 0).error().code, ErrorCode::kInvalidArgument);
  auto ok_addr = ecam_address(a, {1, 5, 0, 0}, 0);
  ASSERT_TRUE(ok_addr);
  EXPECT_EQ(*ok_addr, 0xE0000000u + (5u << 20));  // base is bus 0's, even with start bus 4
}

TEST(PciAddressTest, EcamAccessUsesWindowFromStartBus) {
  McfgAllocation a{0xE0000000, 0, 2, 3};
  RamMmio window(2u << 20);  // buses 2 and 3
  EcamConfigAccess ecam(window, a);
  ecam.write32({0, 3, 1, 2}, 0x10, 0xDEADBEEF);
  uint32_t at = (1u << 20) + (1u << 15) + (2u << 12) + 0x10;
  EXPECT_EQ(window.read32(at), 0xDEADBEEFu);
  EXPECT_EQ(ecam.read32({0, 3, 1, 2}, 0x10), 0xDEADBEEFu);
  EXPECT_EQ(ecam.read32({0, 1, 0, 0}, 0), 0xFFFFFFFFu);  // bus outside the allocation
  EXPECT_EQ(ecam.bus_range().first, 2);
  EXPECT_EQ(ecam.bus_range().last, 3);
  EXPECT_EQ(window.faults, 0u);
}

class FakePorts : public PortIo {
 public:
  explicit FakePorts(PciConfigAccess& cfg) : cfg_(cfg) {}
  uint32_t in32(uint16_t port) override {
    ++accesses;
    if (port != kConfigDataPort || !(address_ & kConfigAddressEnable)) return 0xFFFFFFFF;
    return cfg_.read32(decode(), static_cast<uint16_t>(address_ & 0xFC));
  }
  void out32(uint16_t port, uint32_t value) override {
    ++accesses;
    if (port == kConfigAddressPort) address_ = value;
    if (port == kConfigDataPort) cfg_.write32(decode(), static_cast<uint16_t>(address_ & 0xFC), value);
  }
  int accesses = 0;

 private:
  PciAddress decode() const {
    return {0, static_cast<uint8_t>(address_ >> 16), static_cast<uint8_t>((address_ >> 11) & 31),
            static_cast<uint8_t>((address_ >> 8) & 7)};
  }
  PciConfigAccess& cfg_;
  uint32_t address_ = 0;
};

TEST_F(PciTest, Cf8AccessReadsThroughPorts) {
  FakePorts ports(cfg);
  Cf8ConfigAccess cf8(ports);
  EXPECT_EQ(cf8.read32(kE1000, 0), 0x100E8086u);
  EXPECT_EQ(cf8.read16(kE1000, 2), 0x100Eu);
  int before = ports.accesses;
  EXPECT_EQ(cf8.read32({1, 0, 2, 0}, 0), 0xFFFFFFFFu);  // segment 1 unreachable by CF8
  EXPECT_EQ(cf8.read32(kE1000, 0x100), 0xFFFFFFFFu);    // extended space unreachable
  EXPECT_EQ(ports.accesses, before);
  cf8.write32(kE1000, 0x3C, 0x0000010A);
  EXPECT_EQ(cfg.find(kE1000)->cfg[0x3C], 0x0A);
}

// ---- MCFG --------------------------------------------------------------------------------

std::vector<uint8_t> make_mcfg(std::vector<McfgAllocation> allocs) {
  std::vector<uint8_t> t(44 + 16 * allocs.size(), 0);
  t[0] = 'M';
  t[1] = 'C';
  t[2] = 'F';
  t[3] = 'G';
  uint32_t len = static_cast<uint32_t>(t.size());
  std::memcpy(&t[4], &len, 4);
  for (size_t i = 0; i < allocs.size(); ++i) {
    size_t at = 44 + 16 * i;
    std::memcpy(&t[at], &allocs[i].base, 8);
    std::memcpy(&t[at + 8], &allocs[i].segment, 2);
    t[at + 10] = allocs[i].start_bus;
    t[at + 11] = allocs[i].end_bus;
  }
  uint8_t sum = 0;
  for (uint8_t b : t) sum = static_cast<uint8_t>(sum + b);
  t[9] = static_cast<uint8_t>(-sum);  // checksum byte
  return t;
}

TEST(McfgTest, ParsesAllocations) {
  auto t = make_mcfg({{0xB0000000, 0, 0, 255}, {0xC0000000, 1, 0, 15}});
  auto m = parse_mcfg(t);
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_EQ(m->count, 2u);
  EXPECT_EQ(m->allocations[0].base, 0xB0000000u);
  EXPECT_EQ(m->allocations[0].end_bus, 255);
  EXPECT_EQ(m->allocations[1].segment, 1);
  EXPECT_EQ(m->allocations[1].end_bus, 15);
}

TEST(McfgTest, RejectsMalformedTables) {
  auto good = make_mcfg({{0xB0000000, 0, 0, 255}});
  EXPECT_EQ(parse_mcfg(std::span(good).first(40)).error().code, ErrorCode::kTruncated);
  EXPECT_EQ(parse_mcfg(std::span(good).first(50)).error().code, ErrorCode::kTruncated);
  auto bad_sum = good;
  bad_sum[50] ^= 1;
  EXPECT_EQ(parse_mcfg(bad_sum).error().code, ErrorCode::kBadChecksum);
  auto bad_sig = make_mcfg({});
  bad_sig[0] = 'X';
  EXPECT_EQ(parse_mcfg(bad_sig).error().code, ErrorCode::kMalformed);
  auto reversed = make_mcfg({{0xB0000000, 0, 9, 3}});
  EXPECT_EQ(parse_mcfg(reversed).error().code, ErrorCode::kMalformed);
  auto empty = make_mcfg({});
  auto e = parse_mcfg(empty);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->count, 0u);
}

// ---- Access helpers and header -----------------------------------------------------------

TEST_F(PciTest, NarrowAccessesAreDerivedFromDwords) {
  EXPECT_EQ(cfg.read8(kE1000, 0x0B), 0x02);  // class
  EXPECT_EQ(cfg.read8(kE1000, 0x08), 0x03);  // revision
  EXPECT_EQ(cfg.read16(kE1000, 0x02), 0x100E);
  cfg.write8(kE1000, 0x80, 0x5A);  // device-specific region: writable in the model
  cfg.write8(kE1000, 0x81, 0xA5);
  cfg.write16(kE1000, 0x82, 0x1234);
  EXPECT_EQ(cfg.read32(kE1000, 0x80), 0x1234A55Au);
  cfg.write16(kE1000, 0x80, 0xBEEF);
  EXPECT_EQ(cfg.read32(kE1000, 0x80), 0x1234BEEFu);
  EXPECT_EQ(cfg.misaligned, 0);
}

TEST_F(PciTest, ReadsE1000Header) {
  auto h = read_header(cfg, kE1000);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->vendor_id, 0x8086);
  EXPECT_EQ(h->device_id, 0x100E);
  EXPECT_EQ(h->class_code, kClassNetwork);
  EXPECT_EQ(h->subclass, kSubclassEthernet);
  EXPECT_EQ(h->prog_if, 0);
  EXPECT_EQ(h->revision, 3);
  EXPECT_EQ(h->header_type, kHeaderTypeGeneral);
  EXPECT_FALSE(h->multifunction);
  EXPECT_EQ(h->interrupt_line, 11);
  EXPECT_EQ(h->interrupt_pin, 1);
  EXPECT_EQ(h->subsystem_vendor_id, 0x8086);
  EXPECT_EQ(h->subsystem_id, 0x001E);
  EXPECT_FALSE(h->has_capabilities());
  EXPECT_EQ(h->capabilities_pointer, 0);
  EXPECT_EQ(h->bar_count(), 6);
}

TEST_F(PciTest, AbsentFunctionIsNotFound) {
  EXPECT_EQ(read_header(cfg, {0, 0, 20, 0}).error().code, ErrorCode::kNotFound);
}

TEST_F(PciTest, BridgeHeaderDecodesBusNumbers) {
  auto h = read_header(cfg, kBridge);
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->is_bridge());
  EXPECT_EQ(h->secondary_bus, 1);
  EXPECT_EQ(h->subordinate_bus, 1);
  EXPECT_EQ(h->bar_count(), 2);
  EXPECT_EQ(h->subsystem_id, 0);  // not part of a type 1 header
}

TEST_F(PciTest, CommandBitsLeaveStatusErrorsAlone) {
  auto& f = *cfg.find(kE1000);
  f.set16(0x06, 0x8000);  // Detected Parity Error (RW1C) pending
  uint16_t c =
      set_command_bits(cfg, kE1000, command::kBusMaster | command::kInterruptDisable, command::kIoSpace);
  EXPECT_EQ(c, command::kMemorySpace | command::kBusMaster | command::kInterruptDisable);
  EXPECT_EQ(f.command(), c);
  EXPECT_EQ(f.dword(0x04) >> 16, 0x8000u);  // not cleared by the command write
}

// ---- Enumeration -----------------------------------------------------------------------

TEST_F(PciTest, FullScanFindsEveryFunctionInOrder) {
  PciDeviceList list;
  auto n = enumerate(cfg, list);
  ASSERT_TRUE(n) << n.error().message;
  std::vector<PciAddress> expected = {
      kHostBridge,         kIsa,  kIde,    kAcpi,   kE1000,     kVirtio,
      kVirtioTransitional, kLoop, kSingle, kBridge, kMsiDevice, kBehindBridge};
  ASSERT_EQ(*n, expected.size());
  ASSERT_EQ(list.count, expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(list.functions[i].address, expected[i]) << "index " << i;
  }
  EXPECT_EQ(list.dropped, 0u);
  // Functions 1 and 3 of the multi-function PIIX3; no ghost 00:06.1.
  EXPECT_TRUE(list.functions[1].multifunction);
  const PciHeader* e1000 = list.find(0x8086, 0x100E);
  ASSERT_NE(e1000, nullptr);
  EXPECT_EQ(e1000->address, kE1000);
  EXPECT_EQ(list.find(0xDEAD, 0xBEEF), nullptr);
  const PciHeader* ide = list.find_class(0x01, 0x01);
  ASSERT_NE(ide, nullptr);
  EXPECT_EQ(ide->address, kIde);
}

TEST_F(PciTest, ScanOfOneBus) {
  PciDeviceList list;
  auto n = enumerate(cfg, list, PciBusRange{1, 1});
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 1u);
  EXPECT_EQ(list.functions[0].address, kBehindBridge);
  EXPECT_EQ(enumerate(cfg, list, PciBusRange{2, 1}).error().code, ErrorCode::kInvalidArgument);
}

TEST(PciEnumerateTest, MoreThan64FunctionsIsReportedNotOverrun) {
  FakePciConfig many;
  for (uint8_t bus = 0; bus < 3; ++bus) {
    for (uint8_t dev = 0; dev < 32; ++dev) {
      if (bus == 2 && dev >= 6) break;
      many.add({0, bus, dev, 0}, 0x1234, static_cast<uint16_t>(bus * 32 + dev), 0xFF, 0);
    }
  }
  PciDeviceList list;
  auto n = enumerate(many, list);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().code, ErrorCode::kFull);
  EXPECT_EQ(n.error().detail, 70u);
  EXPECT_EQ(list.count, 64u);
  EXPECT_EQ(list.dropped, 6u);
  EXPECT_EQ(list.functions[63].device_id, 63);
}

// ---- BARs --------------------------------------------------------------------------------

TEST(PciBarDecodeTest, Table) {
  struct Row {
    uint32_t low, high, sized_low, sized_high;
    BarKind kind;
    bool prefetchable;
    uint64_t base, size;
  };
  const Row rows[] = {
      {0xC0000000, 0, 0xFFFE0000, 0, BarKind::kMemory32, false, 0xC0000000, 128 * 1024},
      {0xC001, 0, 0xFFFFFFC1, 0, BarKind::kIo, false, 0xC000, 0x40},
      {0xC001, 0, 0x0000FFC1, 0, BarKind::kIo, false, 0xC000, 0x40},  // 16-bit I/O decoder
      {0xFE00000C, 0, 0xFFFFC00C, 0xFFFFFFFF, BarKind::kMemory64, true, 0xFE000000, 0x4000},
      {0x0000000C, 0x8, 0x0000000C, 0xFFFFFFFE, BarKind::kMemory64, true, 0x800000000,
       0x200000000},                                                                // 8 GiB BAR above 4 GiB
      {0x000A0002, 0, 0xFFFE0002, 0, BarKind::kMemory32, false, 0xA0000, 0x20000},  // <1 MiB
      {0, 0, 0, 0, BarKind::kNone, false, 0, 0},
  };
  for (const Row& r : rows) {
    auto bar = decode_bar(2, r.low, r.high, r.sized_low, r.sized_high);
    ASSERT_TRUE(bar) << std::hex << r.low;
    EXPECT_EQ(bar->index, 2);
    EXPECT_EQ(bar->kind, r.kind) << std::hex << r.low;
    EXPECT_EQ(bar->prefetchable, r.prefetchable);
    EXPECT_EQ(bar->base, r.base) << std::hex << r.low;
    EXPECT_EQ(bar->size, r.size) << std::hex << r.low;
  }
}

TEST(PciBarDecodeTest, RejectsReservedTypeAndHoles) {
  EXPECT_EQ(decode_bar(0, 0x6, 0, 0xFFFFF006, 0).error().code, ErrorCode::kMalformed);  // 11b
  EXPECT_EQ(decode_bar(0, 0x0, 0, 0xFFF0F000, 0).error().code, ErrorCode::kMalformed);  // hole
  EXPECT_EQ(decode_bar(0, 0x1, 0, 0xFFFFF0F1, 0).error().code, ErrorCode::kMalformed);
}

TEST_F(PciTest, SizesE1000BarsLikeBochs) {
  auto& f = *cfg.find(kE1000);
  auto bar0 = probe_bar(cfg, kE1000, 0);
  ASSERT_TRUE(bar0);
  EXPECT_EQ(bar0->kind, BarKind::kMemory32);
  EXPECT_EQ(bar0->base, 0xC0000000u);
  EXPECT_EQ(bar0->size, 128u * 1024);
  EXPECT_FALSE(bar0->prefetchable);
  auto bar1 = probe_bar(cfg, kE1000, 1);
  ASSERT_TRUE(bar1);
  EXPECT_EQ(bar1->kind, BarKind::kIo);
  EXPECT_EQ(bar1->base, 0xC000u);
  EXPECT_EQ(bar1->size, 0x40u);
  // The BARs and the command register are as firmware left them, and decode was off while
  // the BARs held all ones.
  EXPECT_EQ(f.dword(0x10), 0xC0000000u);
  EXPECT_EQ(f.dword(0x14), 0xC001u);
  EXPECT_EQ(f.command(), command::kMemorySpace | command::kIoSpace);
  EXPECT_EQ(f.bar_writes_with_decode_on, 0);
  auto bar2 = probe_bar(cfg, kE1000, 2);
  ASSERT_TRUE(bar2);
  EXPECT_FALSE(bar2->present());
  EXPECT_EQ(probe_bar(cfg, kE1000, 6).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(PciTest, Sizes64BitPrefetchableBar) {
  auto header = read_header(cfg, kVirtio);
  ASSERT_TRUE(header);
  auto bars = probe_bars(cfg, *header);
  ASSERT_TRUE(bars);
  EXPECT_FALSE((*bars)[0].present());
  EXPECT_EQ((*bars)[1].kind, BarKind::kMemory32);
  EXPECT_EQ((*bars)[1].size, 0x1000u);
  EXPECT_EQ((*bars)[4].kind, BarKind::kMemory64);
  EXPECT_TRUE((*bars)[4].prefetchable);
  EXPECT_EQ((*bars)[4].base, 0xFE000000u);
  EXPECT_EQ((*bars)[4].size, 0x4000u);
  EXPECT_EQ((*bars)[5].kind, BarKind::kNone);  // upper dword of BAR4
  EXPECT_EQ(cfg.find(kVirtio)->dword(0x20), 0xFE00000Cu);
  EXPECT_EQ(cfg.find(kVirtio)->dword(0x24), 0u);
}

TEST_F(PciTest, SixtyFourBitBarInLastSlotIsMalformed) {
  auto& f = *cfg.find(kSingle);
  f.set32(0x24, 0xF0000004);  // type 10b in BAR5: no room for an upper dword
  EXPECT_EQ(probe_bar(cfg, kSingle, 5).error().code, ErrorCode::kMalformed);
  auto header = read_header(cfg, kSingle);
  ASSERT_TRUE(header);
  EXPECT_EQ(probe_bars(cfg, *header).error().code, ErrorCode::kMalformed);
}

// ---- Capabilities ------------------------------------------------------------------------

TEST_F(PciTest, WalksVirtioCapabilityList) {
  auto header = read_header(cfg, kVirtio);
  ASSERT_TRUE(header);
  EXPECT_TRUE(header->has_capabilities());
  auto caps = read_capabilities(cfg, *header);
  ASSERT_TRUE(caps);
  ASSERT_EQ(caps->count, 6u);
  EXPECT_EQ(caps->items[0].id, cap_id::kMsiX);
  EXPECT_EQ(caps->items[0].offset, 0x98);
  EXPECT_EQ(caps->items[5].offset, 0x40);
  const PciCapability* vendor = caps->find(cap_id::kVendorSpecific);
  ASSERT_NE(vendor, nullptr);
  EXPECT_EQ(vendor->offset, 0x84);
  EXPECT_EQ(caps->find(cap_id::kMsi), nullptr);
}

TEST_F(PciTest, CapabilityLoopIsMalformed) {
  auto header = read_header(cfg, kLoop);
  ASSERT_TRUE(header);
  auto caps = read_capabilities(cfg, *header);
  ASSERT_FALSE(caps);
  EXPECT_EQ(caps.error().code, ErrorCode::kMalformed);
  EXPECT_LE(cfg.reads, 200);  // bounded: 48 entries at most
}

TEST_F(PciTest, CapabilityPointerSanity) {
  auto& f = *cfg.find(kLoop);
  f.cfg[0x51] = 0x20;  // next pointer into the header
  auto header = read_header(cfg, kLoop);
  ASSERT_TRUE(header);
  auto caps = read_capabilities(cfg, *header);
  ASSERT_FALSE(caps);
  EXPECT_EQ(caps.error().detail, 0x20u);
  // Reserved low bits of a pointer are masked off: 0x53 means 0x50.
  f.cfg[0x41] = 0x53;
  f.cfg[0x51] = 0x00;
  caps = read_capabilities(cfg, *header);
  ASSERT_TRUE(caps);
  ASSERT_EQ(caps->count, 2u);
  EXPECT_EQ(caps->items[1].offset, 0x50);
  // Without Status bit 4 the pointer is ignored.
  f.cfg[0x06] = 0;
  header = read_header(cfg, kLoop);
  ASSERT_TRUE(header);
  caps = read_capabilities(cfg, *header);
  ASSERT_TRUE(caps);
  EXPECT_EQ(caps->count, 0u);
}

TEST_F(PciTest, Msi64BitWithMasking) {
  auto msi = decode_msi(cfg, kMsiDevice, 0x50);
  ASSERT_TRUE(msi);
  EXPECT_TRUE(msi->is_64bit);
  EXPECT_TRUE(msi->per_vector_masking);
  EXPECT_EQ(msi->vectors_capable, 4);
  EXPECT_FALSE(msi->enabled);
  uint64_t address = x86_msi_address(3);
  EXPECT_EQ(address, 0xFEE03000u);
  ASSERT_TRUE(program_msi(cfg, kMsiDevice, *msi, address, x86_msi_data(0x41)));
  auto& f = *cfg.find(kMsiDevice);
  EXPECT_EQ(f.dword(0x54), 0xFEE03000u);
  EXPECT_EQ(f.dword(0x58), 0u);
  EXPECT_EQ(f.dword(0x5C) & 0xFFFF, 0x41u);
  uint16_t control = static_cast<uint16_t>(f.dword(0x50) >> 16);
  EXPECT_TRUE(control & msi_control::kEnable);
  EXPECT_EQ(control & msi_control::kMultipleMessageEnableMask, 0);
  ASSERT_TRUE(set_msi_vector_masked(cfg, kMsiDevice, *msi, 2, true));
  EXPECT_EQ(f.dword(0x60), 0x4u);
  ASSERT_TRUE(set_msi_vector_masked(cfg, kMsiDevice, *msi, 2, false));
  EXPECT_EQ(f.dword(0x60), 0x0u);
  EXPECT_EQ(set_msi_vector_masked(cfg, kMsiDevice, *msi, 4, true).error().code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE(disable_msi(cfg, kMsiDevice, *msi));
  EXPECT_FALSE((f.dword(0x50) >> 16) & msi_control::kEnable);
}

TEST_F(PciTest, Msi32BitLayoutAndLimits) {
  auto& f = *cfg.find(kMsiDevice);
  f.cfg[0x52] = 0x00;  // 32-bit, 1 vector, no masking
  f.cfg[0x53] = 0x00;
  auto msi = decode_msi(cfg, kMsiDevice, 0x50);
  ASSERT_TRUE(msi);
  EXPECT_FALSE(msi->is_64bit);
  EXPECT_EQ(msi->data_offset(), 0x58);
  EXPECT_EQ(program_msi(cfg, kMsiDevice, *msi, 0x1'0000'0000ull, 0x30).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(program_msi(cfg, kMsiDevice, *msi, 0xFEE00002, 0x30).error().code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE(program_msi(cfg, kMsiDevice, *msi, 0xFEE00000, 0x30));
  EXPECT_EQ(f.dword(0x54), 0xFEE00000u);
  EXPECT_EQ(f.dword(0x58) & 0xFFFF, 0x30u);
  EXPECT_EQ(set_msi_vector_masked(cfg, kMsiDevice, *msi, 0, true).error().code, ErrorCode::kUnsupported);
  f.cfg[0xF2] = 0x80;
  f.cfg[0xF3] = 0x01;  // 64-bit + masking at 0xF0: 0x18 bytes needed, 0x10 available
  EXPECT_EQ(decode_msi(cfg, kMsiDevice, 0xF0).error().code, ErrorCode::kMalformed);
}

TEST_F(PciTest, MsixDecodeAndTableProgramming) {
  auto msix = decode_msix(cfg, kVirtio, 0x98);
  ASSERT_TRUE(msix);
  EXPECT_EQ(msix->table_size, 3);
  EXPECT_EQ(msix->table_bar, 1);
  EXPECT_EQ(msix->table_offset, 0u);
  EXPECT_EQ(msix->pba_bar, 1);
  EXPECT_EQ(msix->pba_offset, 0x800u);
  EXPECT_FALSE(msix->enabled);

  set_msix_control(cfg, kVirtio, *msix, true, true);
  uint16_t control = static_cast<uint16_t>(cfg.find(kVirtio)->dword(0x98) >> 16);
  EXPECT_EQ(control, msix_control::kEnable | msix_control::kFunctionMask | 0x2);
  set_msix_control(cfg, kVirtio, *msix, true, false);
  control = static_cast<uint16_t>(cfg.find(kVirtio)->dword(0x98) >> 16);
  EXPECT_EQ(control, msix_control::kEnable | 0x2);

  RamMmio bar(0x1000);
  bar.write32(2 * 16 + 12, 1);  // entry 2 masked at reset
  ASSERT_TRUE(program_msix_entry(bar, *msix, 2, x86_msi_address(1), x86_msi_data(0x50), false));
  EXPECT_EQ(bar.read32(2 * 16 + 0), 0xFEE01000u);
  EXPECT_EQ(bar.read32(2 * 16 + 4), 0u);
  EXPECT_EQ(bar.read32(2 * 16 + 8), 0x50u);
  EXPECT_EQ(bar.read32(2 * 16 + 12), 0u);
  // Masked while rewritten: the first write touches vector control and sets the mask.
  ASSERT_FALSE(bar.write_log.empty());
  size_t first = bar.write_log.size() - 5;
  EXPECT_EQ(bar.write_log[first].first, 2u * 16 + 12);
  EXPECT_EQ(bar.write_log[first].second & 1, 1u);
  EXPECT_EQ(program_msix_entry(bar, *msix, 3, 0xFEE00000, 0x20, false).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(bar.faults, 0u);
}

TEST_F(PciTest, MsixReservedBirIsMalformed) {
  cfg.find(kVirtio)->cfg[0x9C] = 0x07;  // table BIR 7
  EXPECT_EQ(decode_msix(cfg, kVirtio, 0x98).error().code, ErrorCode::kMalformed);
  EXPECT_EQ(decode_msix(cfg, kVirtio, 0xF8).error().code, ErrorCode::kMalformed);  // no room
}

TEST_F(PciTest, VirtioLayoutFromVendorCapabilities) {
  auto header = read_header(cfg, kVirtio);
  ASSERT_TRUE(header);
  auto caps = read_capabilities(cfg, *header);
  ASSERT_TRUE(caps);
  auto layout = read_virtio_layout(cfg, kVirtio, *caps);
  ASSERT_TRUE(layout) << layout.error().message;
  ASSERT_TRUE(layout->common && layout->notify && layout->isr && layout->device && layout->pci);
  EXPECT_EQ(layout->common->bar, 4);
  EXPECT_EQ(layout->common->offset, 0u);
  EXPECT_EQ(layout->common->length, 0x1000u);
  EXPECT_EQ(layout->isr->offset, 0x1000u);
  EXPECT_EQ(layout->device->offset, 0x2000u);
  EXPECT_EQ(layout->notify->offset, 0x3000u);
  EXPECT_EQ(layout->notify->notify_off_multiplier, 4u);
  EXPECT_EQ(layout->notify->cap_offset, 0x70);
  EXPECT_EQ(layout->pci->type, VirtioCfgType::kPci);
}

TEST_F(PciTest, VirtioLayoutSkipsReservedAndKeepsFirst) {
  auto& f = *cfg.find(kVirtio);
  // A second common cfg in front of the chain, with a reserved bar: ignored.
  FakePciConfig::add_cap(f, 0xB0, cap_id::kVendorSpecific, 0x98, virtio_cap(1, 7, 0x100, 0x100));
  f.cfg[0x34] = 0xB0;
  // And a notify cap too short to carry its multiplier, before the real one.
  FakePciConfig::add_cap(f, 0xC4, cap_id::kVendorSpecific, 0xB0, virtio_cap(2, 4, 0x8000, 0x10, -1));
  FakePciConfig::add_cap(f, 0xD8, cap_id::kVendorSpecific, 0xC4, virtio_cap(3, 2, 0x5000, 0x10));
  f.cfg[0x34] = 0xD8;
  auto header = read_header(cfg, kVirtio);
  ASSERT_TRUE(header);
  auto caps = read_capabilities(cfg, *header);
  ASSERT_TRUE(caps);
  auto layout = read_virtio_layout(cfg, kVirtio, *caps);
  ASSERT_TRUE(layout);
  EXPECT_EQ(layout->common->bar, 4);           // the reserved-bar one was skipped
  EXPECT_EQ(layout->notify->offset, 0x3000u);  // the short one was skipped
  EXPECT_EQ(layout->isr->bar, 2);              // the first ISR cap wins
  EXPECT_EQ(layout->isr->offset, 0x5000u);
}

TEST_F(PciTest, VirtioLayoutNeedsCommonNotifyIsr) {
  auto& f = *cfg.find(kVirtio);
  f.cfg[0x73] = 0x42;  // notify cap's cfg_type becomes reserved
  auto header = read_header(cfg, kVirtio);
  ASSERT_TRUE(header);
  auto caps = read_capabilities(cfg, *header);
  ASSERT_TRUE(caps);
  auto layout = read_virtio_layout(cfg, kVirtio, *caps);
  ASSERT_FALSE(layout);
  EXPECT_EQ(layout.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(layout.error().detail, 2u);
  // A device without capabilities at all (the e1000).
  auto e1000 = read_header(cfg, kE1000);
  ASSERT_TRUE(e1000);
  auto none = read_capabilities(cfg, *e1000);
  ASSERT_TRUE(none);
  EXPECT_EQ(read_virtio_layout(cfg, kE1000, *none).error().code, ErrorCode::kNotFound);
}

TEST_F(PciTest, IdentifiesVirtioNetModernAndTransitional) {
  auto modern = read_header(cfg, kVirtio);
  auto transitional = read_header(cfg, kVirtioTransitional);
  auto e1000 = read_header(cfg, kE1000);
  ASSERT_TRUE(modern && transitional && e1000);
  EXPECT_TRUE(virtio::is_virtio_net(*modern));
  EXPECT_TRUE(virtio::is_virtio_net(*transitional));
  EXPECT_FALSE(virtio::is_virtio_net(*e1000));
  cfg.find(kVirtioTransitional)->set16(0x2E, 2);  // subsystem 2: a block device
  transitional = read_header(cfg, kVirtioTransitional);
  ASSERT_TRUE(transitional);
  EXPECT_FALSE(virtio::is_virtio_net(*transitional));
}

}  // namespace
}  // namespace lantern::net::pci
