// The guest page walker (guest/guest_page_walk.h) over hand-built page tables in a fake
// guest-physical memory: each paging mode, large pages, and the not-present and refusal paths.
#include "guest/guest_page_walk.h"

#include <gtest/gtest.h>

#include <map>

namespace lantern::guest {
namespace {

constexpr uint64_t kCr0Pg = 1ull << 31, kCr0Pe = 1;
constexpr uint64_t kCr4Pse = 1ull << 4, kCr4Pae = 1ull << 5, kCr4La57 = 1ull << 12;
constexpr uint64_t kEferLme = 1ull << 8, kEferLma = 1ull << 10;
constexpr uint64_t kP = 1, kRw = 2, kPs = 1ull << 7;

class FakeMemory final : public GuestPhysicalReader {
 public:
  std::map<uint64_t, uint64_t> words;  // 8-byte aligned guest-physical address -> value
  Result<uint64_t> read_u64(uint64_t gpa) const override {
    auto it = words.find(gpa);
    if (it == words.end()) return make_error(ErrorCode::kNotFound, "not RAM", gpa);
    return it->second;
  }
  Result<uint32_t> read_u32(uint64_t gpa) const override {
    auto it = words.find(gpa & ~7ull);
    if (it == words.end()) return make_error(ErrorCode::kNotFound, "not RAM", gpa);
    return static_cast<uint32_t>((gpa & 4) != 0 ? it->second >> 32 : it->second);
  }
  void put32(uint64_t gpa, uint32_t value) {
    uint64_t& w = words[gpa & ~7ull];
    if ((gpa & 4) != 0) w = (w & 0xffffffffull) | (uint64_t{value} << 32);
    else w = (w & ~0xffffffffull) | value;
  }
};

TEST(GuestPageWalk, PagingOffIsIdentity) {
  FakeMemory m;
  EXPECT_EQ(guest_linear_to_physical(0x1234'5678'9abcull, {kCr0Pe, 0, 0, 0}, m).value(), 0x5678'9abcull);
}

TEST(GuestPageWalk, FourLevelWith4KiB2MiBAnd1GiBPages) {
  FakeMemory m;
  const GuestPagingState s{kCr0Pe | kCr0Pg, 0x1000, kCr4Pae, kEferLme | kEferLma};
  // 0x0000'7f80'4020'3abc: PML4 index 255, PDPT 1, PD 1, PT 3.
  m.words[0x1000 + 255 * 8] = 0x2000 | kP | kRw;
  m.words[0x2000 + 1 * 8] = 0x3000 | kP;
  m.words[0x3000 + 1 * 8] = 0x4000 | kP;
  m.words[0x4000 + 3 * 8] = 0x00ab'c000 | kP | (1ull << 63);  // NX set: ignored by the walk
  EXPECT_EQ(guest_linear_to_physical(0x0000'7f80'4020'3abcull, s, m).value(), 0xab'cabcull);
  // A 2 MiB page at PD index 2.
  m.words[0x3000 + 2 * 8] = 0x0060'0000 | kP | kPs;
  EXPECT_EQ(guest_linear_to_physical(0x0000'7f80'4045'6789ull, s, m).value(), 0x65'6789ull);
  // A 1 GiB page at PDPT index 0 of PML4 0 (the identity map kvm-unit-tests builds).
  m.words[0x1000] = 0x5000 | kP;
  m.words[0x5000 + 3 * 8] = 0xc000'0000 | kP | kPs;
  EXPECT_EQ(guest_linear_to_physical(0xfee0'0300ull, s, m).value(), 0xfee0'0300ull);
  // Upper half: PML4 index 511.
  m.words[0x1000 + 511 * 8] = 0x6000 | kP;
  m.words[0x6000 + 511 * 8] = 0x4000'0000 | kP | kPs;
  EXPECT_EQ(guest_linear_to_physical(0xffff'ffff'c000'1234ull, s, m).value(), 0x4000'1234ull);
}

TEST(GuestPageWalk, FourLevelRefusals) {
  FakeMemory m;
  const GuestPagingState s{kCr0Pe | kCr0Pg, 0x1000, kCr4Pae, kEferLma};
  m.words[0x1000] = 0x2000;  // PML4E 0 not present
  auto r = guest_linear_to_physical(0x1000, s, m);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().detail, 4u);
  m.words[0x1000] = 0x2000 | kP;  // PDPT page missing from RAM
  EXPECT_EQ(guest_linear_to_physical(0x1000, s, m).error().code, ErrorCode::kNotFound);
  m.words[0x2000] = 0x3000 | kP;
  m.words[0x3000] = 0x4000 | kP;
  m.words[0x4000 + 8] = 0;  // PTE 1 not present
  r = guest_linear_to_physical(0x1000, s, m);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().detail, 1u);
  EXPECT_EQ(guest_linear_to_physical(0x0000'8000'0000'0000ull, s, m).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(guest_linear_to_physical(0x1000, {kCr0Pg, 0x1000, kCr4Pae | kCr4La57, kEferLma}, m).error().code,
            ErrorCode::kUnsupported);
}

TEST(GuestPageWalk, PaeWithOneFourKiBAndOneTwoMiBPage) {
  FakeMemory m;
  const GuestPagingState s{kCr0Pe | kCr0Pg, 0x1020, kCr4Pae, 0};  // PDPT 32-byte aligned
  // 0xc0a0'1234: PDPTE 3, PDE 5, PTE 1.
  m.words[0x1020 + 3 * 8] = 0x2000 | kP;
  m.words[0x2000 + 5 * 8] = 0x3000 | kP;
  m.words[0x3000 + 1 * 8] = 0x7'7777'7000ull | kP;  // above 4 GiB: PAE reaches it
  EXPECT_EQ(guest_linear_to_physical(0xc0a0'1234ull, s, m).value(), 0x7'7777'7234ull);
  m.words[0x2000 + 6 * 8] = 0x0120'0000 | kP | kPs;
  EXPECT_EQ(guest_linear_to_physical(0xc0c1'2345ull, s, m).value(), 0x0121'2345ull);
  m.words[0x1020] = 0;
  EXPECT_EQ(guest_linear_to_physical(0x1000, s, m).error().detail, 3u);
}

TEST(GuestPageWalk, ThirtyTwoBitWithAndWithoutPse) {
  FakeMemory m;
  GuestPagingState s{kCr0Pe | kCr0Pg, 0x1000, 0, 0};
  // 0x0040'3abc: PDE 1, PTE 3.
  m.put32(0x1000 + 1 * 4, 0x2000 | kP);
  m.put32(0x2000 + 3 * 4, 0x0009'9000 | kP);
  EXPECT_EQ(guest_linear_to_physical(0x0040'3abcull, s, m).value(), 0x9'9abcull);
  // PDE 0x3fb maps a 4 MiB page with PSE; without CR4.PSE the PS bit is ignored (a PT pointer).
  m.put32(0x1000 + 0x3fb * 4, 0xfec0'0000u | kP | kPs);
  s.cr4 = kCr4Pse;
  EXPECT_EQ(guest_linear_to_physical(0xfee0'0310ull, s, m).value(), 0xfec0'0000ull + 0x20'0310ull);
  s.cr4 = 0;
  m.put32(0xfec0'0000u + 0x200 * 4, 0x5000 | kP);
  EXPECT_EQ(guest_linear_to_physical(0xfee0'0310ull, s, m).value(), 0x5310ull);
  m.put32(0x1000 + 2 * 4, 0);
  EXPECT_EQ(guest_linear_to_physical(0x0080'0000ull, s, m).error().detail, 2u);
}

}  // namespace
}  // namespace lantern::guest
