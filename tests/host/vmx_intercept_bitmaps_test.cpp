// I/O and MSR bitmap logic (vmx/intercept_bitmaps.h): SDM Vol. 3C 24.6.4, 24.6.9, 25.1.3.
#include "vmx/intercept_bitmaps.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace lantern::vmx {
namespace {

struct Io {
  std::array<uint8_t, kIoBitmapBytes> a{};
  std::array<uint8_t, kIoBitmapBytes> b{};
  IoBitmaps bitmaps() { return IoBitmaps{a.data(), b.data()}; }
  Io() { intercept_all_io(bitmaps()); }
  size_t clear_bits() const {
    size_t n = 0;
    for (uint8_t v : a) n += 8 - __builtin_popcount(v);
    for (uint8_t v : b) n += 8 - __builtin_popcount(v);
    return n;
  }
};

struct Msr {
  std::array<uint8_t, kMsrBitmapBytes> page{};
  Msr() { intercept_all_msrs(page.data()); }
  size_t clear_bits() const {
    size_t n = 0;
    for (uint8_t v : page) n += 8 - __builtin_popcount(v);
    return n;
  }
};

TEST(VmxIoBitmap, DefaultInterceptsEveryPortAndWidth) {
  Io io;
  for (uint32_t port : {0u, 0x80u, 0x3f8u, 0x7fffu, 0x8000u, 0xcf8u, 0xfffcu, 0xffffu}) {
    EXPECT_TRUE(io_access_exits(io.bitmaps(), port, 1)) << port;
  }
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0x7ffe, 4));
  EXPECT_EQ(io.clear_bits(), 0u);
}

TEST(VmxIoBitmap, PassthroughOfOnePortClearsExactlyItsBit) {
  Io io;
  ASSERT_TRUE(set_io_intercept(io.bitmaps(), {0x80, 1}, false));
  EXPECT_FALSE(io_access_exits(io.bitmaps(), 0x80, 1));
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0x81, 1));
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0x7f, 1));
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0x80, 2));  // 0x81 still intercepted
  EXPECT_EQ(io.a[0x80 / 8], static_cast<uint8_t>(~(1u << 0)));
  EXPECT_EQ(io.clear_bits(), 1u);
}

TEST(VmxIoBitmap, LastPortOfBitmapAIsBitmapA) {
  Io io;
  ASSERT_TRUE(set_io_intercept(io.bitmaps(), {0x7fff, 1}, false));
  EXPECT_EQ(io.a[kIoBitmapBytes - 1], 0x7f);  // bit 7 of the last byte of A
  EXPECT_EQ(io.b[0], 0xff);
  EXPECT_FALSE(io_access_exits(io.bitmaps(), 0x7fff, 1));
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0x8000, 1));
}

TEST(VmxIoBitmap, FirstPortOfBitmapBIsBitmapB) {
  Io io;
  ASSERT_TRUE(set_io_intercept(io.bitmaps(), {0x8000, 1}, false));
  EXPECT_EQ(io.b[0], 0xfe);
  EXPECT_EQ(io.a[kIoBitmapBytes - 1], 0xff);
  EXPECT_FALSE(io_access_exits(io.bitmaps(), 0x8000, 1));
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0x7fff, 1));
}

TEST(VmxIoBitmap, LastPortFFFF) {
  Io io;
  ASSERT_TRUE(set_io_intercept(io.bitmaps(), {0xffff, 1}, false));
  EXPECT_EQ(io.b[kIoBitmapBytes - 1], 0x7f);
  EXPECT_FALSE(io_access_exits(io.bitmaps(), 0xffff, 1));
  // A word access at 0xFFFF wraps around the I/O space: always exits (SDM Vol. 3C 25.1.3).
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0xffff, 2));
  EXPECT_EQ(io.clear_bits(), 1u);
}

TEST(VmxIoBitmap, RangeSpanningBothBitmaps) {
  Io io;
  ASSERT_TRUE(set_io_intercept(io.bitmaps(), {0x7ffe, 4}, false));  // 0x7ffe..0x8001
  EXPECT_EQ(io.clear_bits(), 4u);
  EXPECT_FALSE(io_access_exits(io.bitmaps(), 0x7ffe, 4));
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0x7ffd, 1));
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0x8002, 1));
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0x7fff, 4));  // reaches 0x8002
  ASSERT_TRUE(set_io_intercept(io.bitmaps(), {0x7fff, 2}, true));
  EXPECT_EQ(io.clear_bits(), 2u);
  EXPECT_FALSE(io_access_exits(io.bitmaps(), 0x7ffe, 1));
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0x7fff, 1));
  EXPECT_TRUE(io_access_exits(io.bitmaps(), 0x8000, 1));
  EXPECT_FALSE(io_access_exits(io.bitmaps(), 0x8001, 1));
}

TEST(VmxIoBitmap, WholeSpaceAndBack) {
  Io io;
  ASSERT_TRUE(set_io_intercept(io.bitmaps(), {0, kIoPortCount}, false));
  EXPECT_EQ(io.clear_bits(), size_t{kIoPortCount});
  EXPECT_FALSE(io_access_exits(io.bitmaps(), 0xfffc, 4));
  ASSERT_TRUE(set_io_intercept(io.bitmaps(), {0, kIoPortCount}, true));
  EXPECT_EQ(io.clear_bits(), 0u);
}

TEST(VmxIoBitmap, InvalidRangesChangeNothing) {
  Io io;
  EXPECT_FALSE(set_io_intercept(io.bitmaps(), {0x80, 0}, false));
  EXPECT_FALSE(set_io_intercept(io.bitmaps(), {0xffff, 2}, false));
  EXPECT_FALSE(set_io_intercept(io.bitmaps(), {0x10000, 1}, false));
  EXPECT_FALSE(set_io_intercept(io.bitmaps(), {1, kIoPortCount}, false));
  EXPECT_FALSE(set_io_intercept(io.bitmaps(), {0xfff0, 0xffffffffu}, false));
  EXPECT_EQ(io.clear_bits(), 0u);
}

TEST(VmxMsrBitmap, DefaultInterceptsEverything) {
  Msr m;
  for (uint32_t msr : {0u, 0x10u, 0x1fffu, 0x2000u, 0xc0000080u, 0xc0001fffu, 0xc0002000u, 0x40000000u}) {
    EXPECT_TRUE(msr_access_exits(m.page.data(), msr, false)) << msr;
    EXPECT_TRUE(msr_access_exits(m.page.data(), msr, true)) << msr;
  }
}

TEST(VmxMsrBitmap, ReadPassthroughOfLowMsrUsesTheReadLowQuarter) {
  Msr m;
  ASSERT_TRUE(set_msr_intercept(m.page.data(), {0x10, 1}, MsrAccess::kRead, false));
  EXPECT_EQ(m.page[0x10 / 8], 0xfe);  // read low: bytes 0-1023
  EXPECT_EQ(m.clear_bits(), 1u);
  EXPECT_FALSE(msr_access_exits(m.page.data(), 0x10, false));
  EXPECT_TRUE(msr_access_exits(m.page.data(), 0x10, true));
  EXPECT_TRUE(msr_access_exits(m.page.data(), 0x11, false));
}

TEST(VmxMsrBitmap, WritePassthroughOfLowMsrUsesTheWriteLowQuarter) {
  Msr m;
  ASSERT_TRUE(set_msr_intercept(m.page.data(), {0x1fff, 1}, MsrAccess::kWrite, false));
  EXPECT_EQ(m.page[2048 + 1023], 0x7f);  // write low, last bit
  EXPECT_EQ(m.clear_bits(), 1u);
  EXPECT_FALSE(msr_access_exits(m.page.data(), 0x1fff, true));
  EXPECT_TRUE(msr_access_exits(m.page.data(), 0x1fff, false));
}

TEST(VmxMsrBitmap, HighMsrsUseTheHighQuarters) {
  Msr m;
  ASSERT_TRUE(set_msr_intercept(m.page.data(), {0xc0000000, 1}, MsrAccess::kReadWrite, false));
  EXPECT_EQ(m.page[1024], 0xfe);  // read high, first bit
  EXPECT_EQ(m.page[3072], 0xfe);  // write high, first bit
  ASSERT_TRUE(set_msr_intercept(m.page.data(), {0xc0001fff, 1}, MsrAccess::kRead, false));
  EXPECT_EQ(m.page[2047], 0x7f);  // read high, last bit
  EXPECT_EQ(m.page[4095], 0xff);  // write high untouched
  EXPECT_EQ(m.clear_bits(), 3u);
  EXPECT_FALSE(msr_access_exits(m.page.data(), 0xc0001fff, false));
  EXPECT_TRUE(msr_access_exits(m.page.data(), 0xc0001fff, true));
  // The low MSR with the same offset is unaffected.
  EXPECT_TRUE(msr_access_exits(m.page.data(), 0x0, false));
  EXPECT_TRUE(msr_access_exits(m.page.data(), 0x1fff, false));
}

TEST(VmxMsrBitmap, WholeLowRangeAndBack) {
  Msr m;
  ASSERT_TRUE(set_msr_intercept(m.page.data(), {0, 0x2000}, MsrAccess::kReadWrite, false));
  EXPECT_EQ(m.clear_bits(), 2u * 0x2000);
  for (size_t i = 0; i < 1024; ++i) ASSERT_EQ(m.page[i], 0);
  for (size_t i = 1024; i < 2048; ++i) ASSERT_EQ(m.page[i], 0xff);
  ASSERT_TRUE(set_msr_intercept(m.page.data(), {0, 0x2000}, MsrAccess::kReadWrite, true));
  EXPECT_EQ(m.clear_bits(), 0u);
}

TEST(VmxMsrBitmap, OutOfRangeMsrsAlwaysExitAndCannotBePassedThrough) {
  Msr m;
  for (uint32_t msr : {0x2000u, 0x40000000u, 0xbfffffffu, 0xc0002000u, 0xffffffffu}) {
    auto r = set_msr_intercept(m.page.data(), {msr, 1}, MsrAccess::kReadWrite, false);
    ASSERT_FALSE(r) << msr;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_TRUE(set_msr_intercept(m.page.data(), {msr, 1}, MsrAccess::kRead, true)) << msr;  // already exits
    EXPECT_TRUE(msr_access_exits(m.page.data(), msr, false));
    EXPECT_TRUE(msr_access_exits(m.page.data(), msr, true));
  }
  EXPECT_EQ(m.clear_bits(), 0u);
}

TEST(VmxMsrBitmap, RangesCrossingARangeEdgeAreRejectedWithNothingChanged) {
  Msr m;
  EXPECT_FALSE(set_msr_intercept(m.page.data(), {0x1fff, 2}, MsrAccess::kRead, false));      // 0x1fff-0x2000
  EXPECT_FALSE(set_msr_intercept(m.page.data(), {0xbfffffff, 2}, MsrAccess::kRead, false));  // into high
  EXPECT_FALSE(set_msr_intercept(m.page.data(), {0xc0001fff, 2}, MsrAccess::kRead, false));  // out of high
  EXPECT_FALSE(set_msr_intercept(m.page.data(), {0x1fff, 2}, MsrAccess::kRead, true));
  EXPECT_FALSE(set_msr_intercept(m.page.data(), {0, 0}, MsrAccess::kRead, false));
  EXPECT_FALSE(set_msr_intercept(m.page.data(), {0xffffffff, 2}, MsrAccess::kRead, true));  // wraps
  EXPECT_EQ(m.clear_bits(), 0u);
}

}  // namespace
}  // namespace lantern::vmx
