// Civil dates (proleptic Gregorian, UTC) to and from seconds since 1970-01-01T00:00:00Z.
// Portable (host-tested in tests/host/lib_calendar_test.cpp). The day counts follow the usual
// era arithmetic: a 400-year era has 146097 days, and a year is counted from March so that the
// leap day ends it.
#pragma once

#include <cstdint>

namespace lantern::lib {

struct CivilTime {
  int32_t year = 1970;
  uint8_t month = 1;   // 1-12
  uint8_t day = 1;     // 1-31
  uint8_t hour = 0;    // 0-23
  uint8_t minute = 0;  // 0-59
  uint8_t second = 0;  // 0-59
};

// Days from 1970-01-01 to year-month-day (negative before it).
constexpr int64_t days_from_civil(int32_t year, uint32_t month, uint32_t day) {
  const int64_t y = static_cast<int64_t>(year) - (month <= 2 ? 1 : 0);
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t year_of_era = y - era * 400;                                       // 0-399
  const int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;  // 0-365
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;  // 719468 = days from 0000-03-01 to 1970-01-01
}

constexpr int64_t seconds_from_civil(const CivilTime& t) {
  return days_from_civil(t.year, t.month, t.day) * 86400 + int64_t{t.hour} * 3600 + int64_t{t.minute} * 60 +
         t.second;
}

}  // namespace lantern::lib
