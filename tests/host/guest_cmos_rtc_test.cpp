#include <gtest/gtest.h>

#include "guest/devices/cmos_rtc.h"

namespace lantern::guest {
namespace {

// A wall clock the test moves by hand.
struct FakeClock {
  uint64_t seconds = 0;
  static uint64_t read(void* ctx) { return static_cast<FakeClock*>(ctx)->seconds; }
};

constexpr uint64_t kJuly15 = 1721051130;  // 2024-07-15 13:45:30 UTC, a Monday

CmosRtc make_rtc(FakeClock& clock, uint64_t ram_bytes = 256ull << 20) {
  CmosRtc::Config config;
  config.ram_bytes = ram_bytes;
  config.wall_clock = &FakeClock::read;
  config.wall_clock_context = &clock;
  return CmosRtc(config);
}

uint8_t cmos_read(CmosRtc& rtc, uint8_t index) {
  rtc.port_write(CmosRtc::kIndexPort, 1, index);
  return static_cast<uint8_t>(rtc.port_read(CmosRtc::kDataPort, 1));
}

void cmos_write(CmosRtc& rtc, uint8_t index, uint8_t value) {
  rtc.port_write(CmosRtc::kIndexPort, 1, index);
  rtc.port_write(CmosRtc::kDataPort, 1, value);
}

TEST(GuestCmosRtc, CalendarConversionRoundTripsKnownDates) {
  const RtcCalendarTime t = rtc_calendar_from_seconds(kJuly15);
  EXPECT_EQ(t.year, 2024u);
  EXPECT_EQ(t.month, 7);
  EXPECT_EQ(t.day, 15);
  EXPECT_EQ(t.hour, 13);
  EXPECT_EQ(t.minute, 45);
  EXPECT_EQ(t.second, 30);
  EXPECT_EQ(t.day_of_week, 2);                                        // Monday, Sunday = 1
  const RtcCalendarTime leap = rtc_calendar_from_seconds(951782400);  // 2000-02-29
  EXPECT_EQ(leap.month, 2);
  EXPECT_EQ(leap.day, 29);
  EXPECT_EQ(leap.day_of_week, 3);                                       // Tuesday
  const RtcCalendarTime c2100 = rtc_calendar_from_seconds(4107585600);  // 2100-03-01 12:00, not leap
  EXPECT_EQ(c2100.year, 2100u);
  EXPECT_EQ(c2100.month, 3);
  EXPECT_EQ(c2100.day, 1);
  for (uint64_t s : {uint64_t{0}, uint64_t{946684799}, uint64_t{951782400}, kJuly15, uint64_t{4107585600}})
    EXPECT_EQ(rtc_seconds_from_calendar(rtc_calendar_from_seconds(s)), s);
  EXPECT_EQ(rtc_calendar_from_seconds(0).day_of_week, 5);  // 1970-01-01, a Thursday
}

TEST(GuestCmosRtc, TimeReadsInBcdAt24HoursByDefault) {
  FakeClock clock{kJuly15};
  CmosRtc rtc = make_rtc(clock);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kStatusB), 0x02);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kSeconds), 0x30);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMinutes), 0x45);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kHours), 0x13);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kDayOfWeek), 0x02);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kDayOfMonth), 0x15);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMonth), 0x07);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kYear), 0x24);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kCentury), 0x20);
  clock.seconds += 61;  // the clock follows the wall clock
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kSeconds), 0x31);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMinutes), 0x46);
}

TEST(GuestCmosRtc, BinaryModeWhenStatusBDmIsSet) {
  FakeClock clock{kJuly15};
  CmosRtc rtc = make_rtc(clock);
  cmos_write(rtc, CmosRtc::kStatusB, CmosRtc::kStatusB24Hour | CmosRtc::kStatusBBinary);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kSeconds), 30);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMinutes), 45);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kHours), 13);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kDayOfMonth), 15);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kYear), 24);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kCentury), 20);
}

TEST(GuestCmosRtc, TwelveHourModeSetsPmBitAndMapsMidnightAndNoonTo12) {
  FakeClock clock{kJuly15};
  CmosRtc rtc = make_rtc(clock);
  cmos_write(rtc, CmosRtc::kStatusB, 0x00);          // 12-hour, BCD
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kHours), 0x81);  // 13:45 = 1 PM
  clock.seconds = 1704067200;                        // 00:00 = 12 AM
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kHours), 0x12);
  clock.seconds = 1704067200 + 12 * 3600;  // 12:00 = 12 PM
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kHours), 0x92);
  cmos_write(rtc, CmosRtc::kStatusB, CmosRtc::kStatusBBinary);  // 12-hour, binary
  clock.seconds = 1704067200 + 23 * 3600;                       // 23:00 = 11 PM
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kHours), 0x80 | 11);
}

TEST(GuestCmosRtc, UipNeverSetAcrossManyReadsAndStatusRegistersAtReset) {
  FakeClock clock{kJuly15};
  CmosRtc rtc = make_rtc(clock);
  for (int i = 0; i < 5000; ++i) {
    clock.seconds += (i % 3 == 0) ? 1 : 0;
    ASSERT_EQ(cmos_read(rtc, CmosRtc::kStatusA) & CmosRtc::kStatusAUpdateInProgress, 0) << i;
  }
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kStatusA), 0x26);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kStatusC), 0x00);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kStatusD), 0x80);
  cmos_write(rtc, CmosRtc::kStatusA, 0xa6);  // UIP is read-only
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kStatusA), 0x26);
  cmos_write(rtc, CmosRtc::kStatusD, 0x00);  // read-only
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kStatusD), 0x80);
  cmos_write(rtc, CmosRtc::kStatusB, 0x72);  // interrupt enables: no flags ever appear in C
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kStatusC), 0x00);
}

TEST(GuestCmosRtc, WrittenTimeIsKeptAsOffsetAndKeepsAdvancing) {
  FakeClock clock{kJuly15};
  CmosRtc rtc = make_rtc(clock);
  // Linux's mc146818_set_time(): SET, the fields, then SET cleared.
  cmos_write(rtc, CmosRtc::kStatusB, 0x82);
  cmos_write(rtc, CmosRtc::kSeconds, 0x09);
  cmos_write(rtc, CmosRtc::kMinutes, 0x08);
  cmos_write(rtc, CmosRtc::kHours, 0x07);
  cmos_write(rtc, CmosRtc::kDayOfMonth, 0x06);
  cmos_write(rtc, CmosRtc::kMonth, 0x05);
  cmos_write(rtc, CmosRtc::kYear, 0x31);
  // While SET holds, reads show the frozen, edited copy even as the wall clock moves.
  clock.seconds += 100;
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kSeconds), 0x09);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kYear), 0x31);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kDayOfWeek), 0x03);  // 2031-05-06 is a Tuesday
  cmos_write(rtc, CmosRtc::kStatusB, 0x02);
  EXPECT_EQ(rtc.guest_seconds(), 1935817689u);  // 2031-05-06 07:08:09
  clock.seconds += 5;
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kSeconds), 0x14);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMinutes), 0x08);
  // Without SET a single field takes effect at once.
  cmos_write(rtc, CmosRtc::kMinutes, 0x30);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMinutes), 0x30);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kSeconds), 0x14);
  EXPECT_EQ(rtc.guest_seconds(), 1935817689u + 5 + 22 * 60);
  // The offset survives a reset (the battery-backed clock); status registers do not.
  cmos_write(rtc, CmosRtc::kStatusB, 0x06);
  rtc.reset();
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kStatusB), 0x02);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMinutes), 0x30);
}

TEST(GuestCmosRtc, OutOfRangeWritesAreClampedAndBinaryWritesDecodeAsBinary) {
  FakeClock clock{kJuly15};
  CmosRtc rtc = make_rtc(clock);
  cmos_write(rtc, CmosRtc::kStatusB, CmosRtc::kStatusB24Hour | CmosRtc::kStatusBBinary);
  cmos_write(rtc, CmosRtc::kMinutes, 99);  // clamped to 59
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMinutes), 59);
  cmos_write(rtc, CmosRtc::kHours, 5);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kHours), 5);
  // 12-hour write: 11 PM in binary = 0x8b.
  cmos_write(rtc, CmosRtc::kStatusB, CmosRtc::kStatusBBinary);
  cmos_write(rtc, CmosRtc::kHours, 0x80 | 11);
  cmos_write(rtc, CmosRtc::kStatusB, CmosRtc::kStatusB24Hour | CmosRtc::kStatusBBinary);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kHours), 23);
}

TEST(GuestCmosRtc, IndexKeepsNmiBitAndRamReadsBack) {
  FakeClock clock{kJuly15};
  CmosRtc rtc = make_rtc(clock);
  rtc.port_write(CmosRtc::kIndexPort, 1, 0x80 | 0x40);
  EXPECT_TRUE(rtc.nmi_disabled());
  EXPECT_EQ(rtc.index(), 0x40);
  rtc.port_write(CmosRtc::kDataPort, 1, 0x5a);
  EXPECT_EQ(cmos_read(rtc, 0x40), 0x5a);
  EXPECT_FALSE(rtc.nmi_disabled());
  EXPECT_EQ(rtc.port_read(CmosRtc::kIndexPort, 1), 0xffu);  // write-only
  cmos_write(rtc, 0x7f, 0xa5);                              // the last RAM byte
  EXPECT_EQ(cmos_read(rtc, 0x7f), 0xa5);
  cmos_write(rtc, CmosRtc::kSecondsAlarm, 0x33);  // alarm bytes are plain storage
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kSecondsAlarm), 0x33);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kShutdownStatus), 0x00);
  rtc.reset();
  EXPECT_EQ(cmos_read(rtc, 0x40), 0x00);
}

TEST(GuestCmosRtc, MemorySizeBytesFor256MiB) {
  FakeClock clock{kJuly15};
  CmosRtc rtc = make_rtc(clock, 256ull << 20);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kBaseMemoryLow), 0x80);  // 640 = 0x0280
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kBaseMemoryHigh), 0x02);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kExtendedMemoryLow), 0xff);  // 255 MiB in KiB, capped
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kExtendedMemoryHigh), 0xff);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kExtendedMemoryCopyLow), 0xff);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kExtendedMemoryCopyHigh), 0xff);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMemoryAbove16MLow), 0x00);  // 240 MiB / 64 KiB = 0x0f00
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMemoryAbove16MHigh), 0x0f);
}

TEST(GuestCmosRtc, MemorySizeBytesFor4GiBAreCappedAt3072MiB) {
  FakeClock clock{kJuly15};
  CmosRtc rtc = make_rtc(clock, 4ull << 30);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kBaseMemoryLow), 0x80);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kBaseMemoryHigh), 0x02);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kExtendedMemoryLow), 0xff);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kExtendedMemoryHigh), 0xff);
  // (3072 - 16) MiB / 64 KiB = 48896 = 0xbf00
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMemoryAbove16MLow), 0x00);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMemoryAbove16MHigh), 0xbf);
  EXPECT_EQ(cmos_read(rtc, 0x5b), 0x00);  // nothing above 4 GiB
  EXPECT_EQ(cmos_read(rtc, 0x5c), 0x00);
}

TEST(GuestCmosRtc, MemorySizeBytesFor32MiBFitTheExtendedField) {
  FakeClock clock{kJuly15};
  CmosRtc rtc = make_rtc(clock, 32ull << 20);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kExtendedMemoryLow), 0x00);  // 31 MiB = 31744 KiB = 0x7c00
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kExtendedMemoryHigh), 0x7c);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMemoryAbove16MLow), 0x00);  // 16 MiB / 64 KiB = 0x0100
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMemoryAbove16MHigh), 0x01);
}

TEST(GuestCmosRtc, WithoutAWallClockTheDefaultTimeIsFixed) {
  CmosRtc rtc(CmosRtc::Config{64ull << 20, nullptr, nullptr});
  EXPECT_EQ(rtc.guest_seconds(), CmosRtc::kDefaultWallClockSeconds);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kYear), 0x24);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kMonth), 0x01);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kDayOfMonth), 0x01);
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kDayOfWeek), 0x02);  // 2024-01-01 was a Monday
  EXPECT_EQ(cmos_read(rtc, CmosRtc::kHours), 0x00);
}

}  // namespace
}  // namespace lantern::guest
