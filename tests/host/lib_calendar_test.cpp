#include "kernel/lib/calendar.h"

#include <gtest/gtest.h>

namespace lantern::lib {
namespace {

// Expected values from Python's calendar.timegm.
TEST(LibCalendar, DaysAroundTheEpochAndLeapDays) {
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(1969, 12, 31), -1);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11017);  // after 2000-02-29 (2000 is a leap year)
  EXPECT_EQ(days_from_civil(2024, 2, 29), 19782);
  EXPECT_EQ(days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28), 1);  // 2100 is not
}

TEST(LibCalendar, SecondsFromCivil) {
  EXPECT_EQ(seconds_from_civil(CivilTime{2026, 12, 5, 23, 39, 8}), 1796513948);
  EXPECT_EQ(seconds_from_civil(CivilTime{1999, 12, 31, 23, 59, 59}), 946684799);
  EXPECT_EQ(seconds_from_civil(CivilTime{2100, 3, 1, 12, 0, 1}), 4107585601);
}

}  // namespace
}  // namespace lantern::lib
