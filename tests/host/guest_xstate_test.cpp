#include "guest/xstate.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>

namespace lantern::guest {
namespace {

constexpr uint64_t kSkylakeX = kXcr0X87 | kXcr0Sse | kXcr0Avx | kXcr0Avx512 | kXcr0Pkru;
constexpr uint64_t kSseOnly = kXcr0X87 | kXcr0Sse;

TEST(GuestXstate, ValidValuesPass) {
  EXPECT_EQ(check_xsetbv(0, kXcr0X87, kSkylakeX), XsetbvFault::kOk);
  EXPECT_EQ(check_xsetbv(0, kXcr0X87 | kXcr0Sse, kSkylakeX), XsetbvFault::kOk);
  EXPECT_EQ(check_xsetbv(0, kXcr0X87 | kXcr0Sse | kXcr0Avx, kSkylakeX), XsetbvFault::kOk);
  EXPECT_EQ(check_xsetbv(0, kSkylakeX, kSkylakeX), XsetbvFault::kOk);
  const uint64_t all = kXcr0X87 | kXcr0Sse | kXcr0BndRegs | kXcr0BndCsr | kXcr0TileCfg | kXcr0TileData;
  EXPECT_EQ(check_xsetbv(0, all, all), XsetbvFault::kOk);
}

TEST(GuestXstate, EachRuleFaults) {
  EXPECT_EQ(check_xsetbv(1, kSseOnly, kSkylakeX), XsetbvFault::kNotXcr0);
  EXPECT_EQ(check_xsetbv(0xffffffffu, kSseOnly, kSkylakeX), XsetbvFault::kNotXcr0);
  EXPECT_EQ(check_xsetbv(0, 0, kSkylakeX), XsetbvFault::kX87Clear);
  EXPECT_EQ(check_xsetbv(0, kXcr0Sse, kSkylakeX), XsetbvFault::kX87Clear);
  EXPECT_EQ(check_xsetbv(0, kXcr0X87 | kXcr0Avx, kSkylakeX), XsetbvFault::kAvxWithoutSse);
  EXPECT_EQ(check_xsetbv(0, kSseOnly | kXcr0Avx, kSseOnly), XsetbvFault::kUnsupportedBit);
  EXPECT_EQ(check_xsetbv(0, kSseOnly | (1ull << 63), kSkylakeX), XsetbvFault::kUnsupportedBit);
  const uint64_t mpx = kSseOnly | kXcr0BndRegs | kXcr0BndCsr;
  EXPECT_EQ(check_xsetbv(0, kSseOnly | kXcr0BndRegs, mpx), XsetbvFault::kBndMismatch);
  EXPECT_EQ(check_xsetbv(0, kSseOnly | kXcr0BndCsr, mpx), XsetbvFault::kBndMismatch);
  EXPECT_EQ(check_xsetbv(0, kSseOnly | kXcr0Avx | kXcr0Opmask, kSkylakeX), XsetbvFault::kAvx512Incomplete);
  EXPECT_EQ(check_xsetbv(0, kSseOnly | kXcr0Avx512, kSkylakeX), XsetbvFault::kAvx512Incomplete);
  const uint64_t amx = kSseOnly | kXcr0TileCfg | kXcr0TileData;
  EXPECT_EQ(check_xsetbv(0, kSseOnly | kXcr0TileData, amx), XsetbvFault::kAmxMismatch);
}

TEST(GuestXstate, FaultNamesAreDistinct) {
  EXPECT_STREQ(xsetbv_fault_name(XsetbvFault::kOk), "ok");
  EXPECT_STRNE(xsetbv_fault_name(XsetbvFault::kX87Clear), xsetbv_fault_name(XsetbvFault::kAvxWithoutSse));
  EXPECT_STREQ(xsetbv_fault_name(static_cast<XsetbvFault>(200)), "?");
}

TEST(GuestXstate, InitialGuestArea) {
  std::array<uint8_t, 1024> area;
  area.fill(0xcc);
  ASSERT_TRUE(init_guest_xsave_area(area.data(), area.size()));
  uint16_t fcw;
  uint32_t mxcsr;
  uint64_t xstate_bv;
  std::memcpy(&fcw, area.data() + kFxsaveFcwOffset, 2);
  std::memcpy(&mxcsr, area.data() + kFxsaveMxcsrOffset, 4);
  std::memcpy(&xstate_bv, area.data() + kXsaveHeaderOffset, 8);
  EXPECT_EQ(fcw, 0x037f);
  EXPECT_EQ(mxcsr, 0x1f80u);
  EXPECT_EQ(xstate_bv, 0u);
  EXPECT_EQ(area[160], 0);  // XMM0 (legacy area byte 160) cleared
  EXPECT_EQ(area[kXsaveMinimumBytes], 0xcc);  // nothing past the header is touched
  EXPECT_FALSE(init_guest_xsave_area(area.data(), kXsaveMinimumBytes - 1));
  EXPECT_FALSE(init_guest_xsave_area(nullptr, 4096));
}

TEST(GuestXstate, XssSupportFromCpuidLeafDSubleaf1) {
  // Skylake-like: XSAVEOPT|XSAVEC|XGETBV1|XSAVES (EAX 0xf), PT (bit 8) in ECX.
  const XssSupport with = decode_xss_support(0xf, 1u << 8, 0);
  EXPECT_TRUE(with.xsaves);
  EXPECT_EQ(with.supported, 1ull << 8);
  const XssSupport high = decode_xss_support(kCpuidXsaveSubleaf1EaxXsaves, 0, 1);
  EXPECT_EQ(high.supported, 1ull << 32);
  // Haswell-like: XSAVEOPT only, no XSAVES: no IA32_XSS at all.
  const XssSupport without = decode_xss_support(0x1, 1u << 8, 0);
  EXPECT_FALSE(without.xsaves);
  EXPECT_EQ(without.supported, 0u);
}

TEST(GuestXstate, XssWritesOnlyAllowedBits) {
  EXPECT_TRUE(xss_write_allowed(0, 0));
  EXPECT_FALSE(xss_write_allowed(1ull << 8, 0));
  EXPECT_TRUE(xss_write_allowed(1ull << 8, 1ull << 8));
  EXPECT_FALSE(xss_write_allowed((1ull << 8) | (1ull << 11), 1ull << 8));
}

// Skylake-X's layout, as Bochs's skylake_x model reports it (CPUID.(EAX=0DH,ECX=i), i = 2, 5-7).
XstateComponent (&skylake_x_components())[kXstateComponents] {
  static XstateComponent c[kXstateComponents];
  c[2] = {256, 576, false};
  c[5] = {64, 1088, false};
  c[6] = {512, 1152, false};
  c[7] = {1024, 1664, false};
  return c;
}

TEST(GuestXstate, StandardSizeIsTheEndOfTheHighestComponent) {
  const auto& c = skylake_x_components();
  EXPECT_EQ(xsave_standard_size(kSseOnly, c), 576u);
  EXPECT_EQ(xsave_standard_size(kXcr0X87, c), 576u);
  EXPECT_EQ(xsave_standard_size(kSseOnly | kXcr0Avx, c), 832u);
  EXPECT_EQ(xsave_standard_size(kSseOnly | kXcr0Avx | kXcr0Avx512, c), 2688u);
}

TEST(GuestXstate, CompactedSizePacksTheComponents) {
  const auto& c = skylake_x_components();
  EXPECT_EQ(xsave_compacted_size(kSseOnly, c), 576u);
  EXPECT_EQ(xsave_compacted_size(kSseOnly | kXcr0Avx, c), 832u);
  // 576 + 256 + 64 + 512 + 1024: what Linux computes for XCR0 0xe7 in the compacted format.
  EXPECT_EQ(xsave_compacted_size(kSseOnly | kXcr0Avx | kXcr0Avx512, c), 2432u);
  // A gap left by a component that is off does not count.
  EXPECT_EQ(xsave_compacted_size(kSseOnly | (1ull << 7), c), 1600u);
}

TEST(GuestXstate, CompactedSizeAlignsWhereAsked) {
  XstateComponent c[kXstateComponents];
  c[2] = {256, 576, false};
  c[17] = {64, 2752, true};
  c[18] = {8192, 2816, true};
  // 832 is 64-aligned; 832 + 64 = 896 is too: no padding. Then a component of 8 bytes.
  EXPECT_EQ(xsave_compacted_size(kSseOnly | kXcr0Avx | kXcr0TileCfg | kXcr0TileData, c), 832u + 64 + 8192);
  XstateComponent d[kXstateComponents];
  d[3] = {8, 960, false};
  d[4] = {64, 1024, true};
  // 576 + 8 = 584, rounded up to 640 for component 4.
  EXPECT_EQ(xsave_compacted_size(kSseOnly | (1ull << 3) | (1ull << 4), d), 640u + 64);
  EXPECT_EQ(xsave_standard_size(kSseOnly | (1ull << 3) | (1ull << 4), d), 1088u);
}

}  // namespace
}  // namespace lantern::guest
