#include "guest/devices/cmos_rtc.h"

namespace lantern::guest {
namespace {

constexpr uint64_t kSecondsPerDay = 86400;
constexpr int64_t kFirstYear = 1970;  // the epoch
constexpr int64_t kLastYear = 9999;   // four decimal digits: century 99, year 99

bool is_leap_year(int64_t year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

// Leap years in [1, year), Gregorian rules; year >= 1.
int64_t leap_years_before(int64_t year) {
  const int64_t previous = year - 1;
  return previous / 4 - previous / 100 + previous / 400;
}

// Days from 1970-01-01 to January 1 of `year` (year >= 1970).
int64_t days_before_year(int64_t year) {
  return (year - kFirstYear) * 365 + leap_years_before(year) - leap_years_before(kFirstYear);
}

// Days before the first of each month in a common year.
constexpr uint16_t kDaysBeforeMonth[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};

int64_t days_before_month(int64_t year, uint8_t month) {
  return kDaysBeforeMonth[month - 1] + ((month > 2 && is_leap_year(year)) ? 1 : 0);
}

// The last second the registers can show: 9999-12-31 23:59:59.
const uint64_t kLastSecond = static_cast<uint64_t>(days_before_year(kLastYear + 1)) * kSecondsPerDay - 1;

uint8_t clamp(uint8_t value, uint8_t low, uint8_t high) {
  if (value < low) return low;
  if (value > high) return high;
  return value;
}

// 1970-01-01 was a Thursday: day 5 when Sunday is 1 (MC146818A: day of week 1-7, Sunday = 1).
uint8_t day_of_week_for(uint64_t days_since_epoch) {
  return static_cast<uint8_t>((days_since_epoch + 4) % 7 + 1);
}

}  // namespace

RtcCalendarTime rtc_calendar_from_seconds(uint64_t seconds) {
  if (seconds > kLastSecond) seconds = kLastSecond;
  const uint64_t days = seconds / kSecondsPerDay;
  const uint64_t second_of_day = seconds % kSecondsPerDay;
  RtcCalendarTime t;
  t.hour = static_cast<uint8_t>(second_of_day / 3600);
  t.minute = static_cast<uint8_t>(second_of_day / 60 % 60);
  t.second = static_cast<uint8_t>(second_of_day % 60);
  t.day_of_week = day_of_week_for(days);
  // No year has more than 366 days, so this starts at or before the right year.
  int64_t year = kFirstYear + static_cast<int64_t>(days / 366);
  while (days_before_year(year + 1) <= static_cast<int64_t>(days)) ++year;
  const int64_t day_of_year = static_cast<int64_t>(days) - days_before_year(year);
  uint8_t month = 12;
  while (month > 1 && days_before_month(year, month) > day_of_year) --month;
  t.year = static_cast<uint32_t>(year);
  t.month = month;
  t.day = static_cast<uint8_t>(day_of_year - days_before_month(year, month) + 1);
  return t;
}

uint64_t rtc_seconds_from_calendar(const RtcCalendarTime& time) {
  if (time.year < kFirstYear) return 0;
  const int64_t year = time.year > kLastYear ? kLastYear : time.year;
  const uint8_t month = clamp(time.month, 1, 12);
  const uint8_t day = clamp(time.day, 1, 31);
  const int64_t days = days_before_year(year) + days_before_month(year, month) + (day - 1);
  const uint64_t seconds = static_cast<uint64_t>(days) * kSecondsPerDay +
                           uint64_t{clamp(time.hour, 0, 23)} * 3600 +
                           uint64_t{clamp(time.minute, 0, 59)} * 60 + clamp(time.second, 0, 59);
  return seconds > kLastSecond ? kLastSecond : seconds;
}

CmosRtc::CmosRtc(const Config& config) : config_(config) {
  if (config_.ram_bytes > kMaxRamBytes) config_.ram_bytes = kMaxRamBytes;
  reset();
}

void CmosRtc::reset() {
  index_ = 0;
  nmi_disabled_ = false;
  for (uint8_t& b : cmos_) b = 0;
  cmos_[kStatusA] = kStatusAReset;
  cmos_[kStatusB] = kStatusBReset;
  cmos_[kShutdownStatus] = 0;  // normal power-on, no resume vector (IBM PC AT BIOS)
  fill_memory_size();
  frozen_ = RtcCalendarTime{};
}

// The memory-size bytes as a PC BIOS leaves them (QEMU hw/i386/pc.c pc_cmos_init()).
void CmosRtc::fill_memory_size() {
  constexpr uint64_t kKiB = 1024, kMiB = 1024 * 1024;
  constexpr uint64_t kBaseMemoryKiB = 640;  // conventional memory below the 640 KiB hole
  constexpr uint64_t kField16Max = 0xffff;
  const uint64_t ram = config_.ram_bytes;

  uint64_t base_kib = ram / kKiB;
  if (base_kib > kBaseMemoryKiB) base_kib = kBaseMemoryKiB;
  cmos_[kBaseMemoryLow] = static_cast<uint8_t>(base_kib);
  cmos_[kBaseMemoryHigh] = static_cast<uint8_t>(base_kib >> 8);

  // Extended memory: KiB above 1 MiB, a 16-bit field (so at most 64 MiB - 1 KiB shows here).
  uint64_t extended_kib = ram > kMiB ? (ram - kMiB) / kKiB : 0;
  if (extended_kib > kField16Max) extended_kib = kField16Max;
  cmos_[kExtendedMemoryLow] = static_cast<uint8_t>(extended_kib);
  cmos_[kExtendedMemoryHigh] = static_cast<uint8_t>(extended_kib >> 8);
  cmos_[kExtendedMemoryCopyLow] = static_cast<uint8_t>(extended_kib);
  cmos_[kExtendedMemoryCopyHigh] = static_cast<uint8_t>(extended_kib >> 8);

  // Memory between 16 MiB and 4 GiB in 64 KiB blocks, a 16-bit field.
  constexpr uint64_t kBlock = 64 * kKiB;
  uint64_t blocks = ram > 16 * kMiB ? (ram - 16 * kMiB) / kBlock : 0;
  if (blocks > kField16Max) blocks = kField16Max;
  cmos_[kMemoryAbove16MLow] = static_cast<uint8_t>(blocks);
  cmos_[kMemoryAbove16MHigh] = static_cast<uint8_t>(blocks >> 8);
}

uint64_t CmosRtc::wall_seconds() const {
  if (config_.wall_clock == nullptr) return kDefaultWallClockSeconds;
  return config_.wall_clock(config_.wall_clock_context);
}

uint64_t CmosRtc::guest_seconds() const {
  const uint64_t wall = wall_seconds();
  if (offset_seconds_ < 0) {
    const uint64_t back = static_cast<uint64_t>(-offset_seconds_);
    return wall > back ? wall - back : 0;
  }
  return wall + static_cast<uint64_t>(offset_seconds_);
}

// Datasheet "Register B", DM bit: 1 = binary, 0 = BCD.
uint8_t CmosRtc::encode(uint8_t binary) const {
  if (cmos_[kStatusB] & kStatusBBinary) return binary;
  return static_cast<uint8_t>(((binary / 10) << 4) | (binary % 10));
}

uint8_t CmosRtc::decode(uint8_t encoded) const {
  if (cmos_[kStatusB] & kStatusBBinary) return encoded;
  return static_cast<uint8_t>((encoded >> 4) * 10 + (encoded & 0x0f));
}

// Datasheet "Register B", 24/12 bit, and "Time, Calendar and Alarm Data Modes": in 12-hour
// mode the hours are 1-12 with bit 7 set for PM; midnight is 12 AM, noon 12 PM.
uint8_t CmosRtc::encode_hours(uint8_t hour) const {
  if (cmos_[kStatusB] & kStatusB24Hour) return encode(hour);
  const bool pm = hour >= 12;
  uint8_t hour12 = hour % 12;
  if (hour12 == 0) hour12 = 12;
  return static_cast<uint8_t>(encode(hour12) | (pm ? kHoursPm : 0));
}

uint8_t CmosRtc::decode_hours(uint8_t encoded) const {
  if (cmos_[kStatusB] & kStatusB24Hour) return decode(encoded);
  const bool pm = (encoded & kHoursPm) != 0;
  uint8_t hour = decode(static_cast<uint8_t>(encoded & ~kHoursPm));
  if (hour == 12) hour = 0;
  return pm ? static_cast<uint8_t>(hour + 12) : hour;
}

uint8_t CmosRtc::read_register(uint8_t index) const {
  switch (index) {
    case kSeconds:
    case kMinutes:
    case kHours:
    case kDayOfWeek:
    case kDayOfMonth:
    case kMonth:
    case kYear:
    case kCentury: {
      const RtcCalendarTime t =
          (cmos_[kStatusB] & kStatusBSet) ? frozen_ : rtc_calendar_from_seconds(guest_seconds());
      switch (index) {
        case kSeconds: return encode(t.second);
        case kMinutes: return encode(t.minute);
        case kHours: return encode_hours(t.hour);
        case kDayOfWeek: return encode(t.day_of_week);
        case kDayOfMonth: return encode(t.day);
        case kMonth: return encode(t.month);
        case kYear: return encode(static_cast<uint8_t>(t.year % 100));
        default: return encode(static_cast<uint8_t>(t.year / 100));
      }
    }
    case kStatusA: return static_cast<uint8_t>(cmos_[kStatusA] & ~kStatusAUpdateInProgress);
    case kStatusC: return 0;  // no interrupt flags: the device raises none
    case kStatusD: return kStatusDValid;
    default: return cmos_[index & kIndexMask];
  }
}

void CmosRtc::commit(const RtcCalendarTime& time) {
  offset_seconds_ =
      static_cast<int64_t>(rtc_seconds_from_calendar(time)) - static_cast<int64_t>(wall_seconds());
}

void CmosRtc::write_clock_field(uint8_t index, uint8_t value) {
  const bool frozen = (cmos_[kStatusB] & kStatusBSet) != 0;
  RtcCalendarTime t = frozen ? frozen_ : rtc_calendar_from_seconds(guest_seconds());
  switch (index) {
    case kSeconds: t.second = clamp(decode(value), 0, 59); break;
    case kMinutes: t.minute = clamp(decode(value), 0, 59); break;
    case kHours: t.hour = clamp(decode_hours(value), 0, 23); break;
    case kDayOfWeek: return;  // derived from the date
    case kDayOfMonth: t.day = clamp(decode(value), 1, 31); break;
    case kMonth: t.month = clamp(decode(value), 1, 12); break;
    case kYear: t.year = t.year / 100 * 100 + clamp(decode(value), 0, 99); break;
    case kCentury: t.year = uint32_t{clamp(decode(value), 0, 99)} * 100 + t.year % 100; break;
    default: return;
  }
  if (frozen) {
    // The fields stay as written (a later write may fix a day the month does not have); only
    // the day of week follows the date.
    t.day_of_week = day_of_week_for(rtc_seconds_from_calendar(t) / kSecondsPerDay);
    frozen_ = t;
  } else {
    commit(t);
  }
}

void CmosRtc::write_register(uint8_t index, uint8_t value) {
  switch (index) {
    case kSeconds:
    case kMinutes:
    case kHours:
    case kDayOfWeek:
    case kDayOfMonth:
    case kMonth:
    case kYear:
    case kCentury: write_clock_field(index, value); break;
    case kStatusA:
      // UIP is read-only (datasheet "Register A").
      cmos_[kStatusA] = static_cast<uint8_t>(value & ~kStatusAUpdateInProgress);
      break;
    case kStatusB: {
      const bool was_set = (cmos_[kStatusB] & kStatusBSet) != 0;
      const bool set = (value & kStatusBSet) != 0;
      // Setting SET clears UIE (datasheet "Register B", UIE bit).
      if (set) value = static_cast<uint8_t>(value & ~kStatusBUpdateIrq);
      if (set && !was_set) frozen_ = rtc_calendar_from_seconds(guest_seconds());
      cmos_[kStatusB] = value;
      if (was_set && !set) commit(frozen_);
      break;
    }
    case kStatusC:
    case kStatusD: break;  // read-only
    default: cmos_[index & kIndexMask] = value; break;
  }
}

uint8_t CmosRtc::peek(uint8_t index) const {
  return read_register(static_cast<uint8_t>(index & kIndexMask));
}

uint32_t CmosRtc::port_read(uint16_t port, uint8_t width) {
  uint32_t value = 0;
  for (uint8_t i = 0; i < width; ++i) {
    const uint32_t p = uint32_t{port} + i;
    uint8_t b = 0xff;  // the index port is write-only; anything past 0x71 decodes nothing
    if (p == kDataPort) b = read_register(index_);
    value |= uint32_t{b} << (8 * i);
  }
  return value;
}

void CmosRtc::port_write(uint16_t port, uint8_t width, uint32_t value) {
  for (uint8_t i = 0; i < width; ++i) {
    const uint32_t p = uint32_t{port} + i;
    const uint8_t b = static_cast<uint8_t>(value >> (8 * i));
    if (p == kIndexPort) {
      index_ = static_cast<uint8_t>(b & kIndexMask);
      nmi_disabled_ = (b & kIndexNmiDisable) != 0;
    } else if (p == kDataPort) {
      write_register(index_, b);
    }
  }
}

}  // namespace lantern::guest
