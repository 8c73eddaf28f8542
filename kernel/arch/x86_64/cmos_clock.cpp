#include "kernel/arch/x86_64/cmos_clock.h"

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/lib/calendar.h"

namespace lantern::cmos_clock {
namespace {

// MC146818 (and the PC's CMOS RTC) registers: index port 0x70 (bit 7 keeps NMIs masked as
// the boot code left them is not touched here: it is written as 0), data port 0x71; time at
// 0x00 seconds, 0x02 minutes, 0x04 hours, 0x07 day, 0x08 month, 0x09 year; status A bit 7 =
// update in progress (UIP); status B bit 1 = 24-hour mode, bit 2 = binary (not BCD); the
// century at 0x32 (the PC/AT convention QEMU and Bochs follow).
constexpr uint16_t kIndexPort = 0x70;
constexpr uint16_t kDataPort = 0x71;
constexpr uint8_t kRegSeconds = 0x00, kRegMinutes = 0x02, kRegHours = 0x04, kRegDay = 0x07, kRegMonth = 0x08,
                  kRegYear = 0x09, kRegStatusA = 0x0a, kRegStatusB = 0x0b, kRegCentury = 0x32;
constexpr uint8_t kStatusAUpdateInProgress = 1u << 7;
constexpr uint8_t kStatusB24Hour = 1u << 1;
constexpr uint8_t kStatusBBinary = 1u << 2;
constexpr uint8_t kHoursPm = 1u << 7;  // 12-hour mode

uint8_t read_register(uint8_t index) {
  cpu::outb(kIndexPort, index);
  return cpu::inb(kDataPort);
}

struct Raw {
  uint8_t second, minute, hour, day, month, year, century;
  bool operator==(const Raw&) const = default;
};

Raw read_raw() {
  return Raw{read_register(kRegSeconds), read_register(kRegMinutes), read_register(kRegHours),
             read_register(kRegDay),     read_register(kRegMonth),   read_register(kRegYear),
             read_register(kRegCentury)};
}

bool wait_for_update_done() {
  for (int i = 0; i < 1'000'000; ++i) {
    if ((read_register(kRegStatusA) & kStatusAUpdateInProgress) == 0) return true;
    cpu::pause();
  }
  return false;
}

uint8_t from_bcd(uint8_t v) { return static_cast<uint8_t>((v >> 4) * 10 + (v & 0xf)); }

}  // namespace

Result<int64_t> read_unix_seconds() {
  // Two equal readings with no update in between (an update may start at any time).
  Raw a{}, b{};
  for (int attempt = 0; attempt < 8; ++attempt) {
    if (!wait_for_update_done()) return make_error(ErrorCode::kTimeout, "the RTC's update-in-progress flag never cleared");
    a = read_raw();
    if (!wait_for_update_done()) return make_error(ErrorCode::kTimeout, "the RTC's update-in-progress flag never cleared");
    b = read_raw();
    if (a == b) break;
  }
  const uint8_t status_b = read_register(kRegStatusB);
  const bool binary = (status_b & kStatusBBinary) != 0;
  auto value = [&](uint8_t v) { return binary ? v : from_bcd(v); };
  const bool pm = (status_b & kStatusB24Hour) == 0 && (b.hour & kHoursPm) != 0;
  uint8_t hour = value(static_cast<uint8_t>(b.hour & ~kHoursPm));
  if ((status_b & kStatusB24Hour) == 0) hour = static_cast<uint8_t>(hour % 12 + (pm ? 12 : 0));
  const uint8_t century = value(b.century);
  lib::CivilTime t;
  t.year = (century >= 19 && century <= 30 ? century : 20) * 100 + value(b.year);
  t.month = value(b.month);
  t.day = value(b.day);
  t.hour = hour;
  t.minute = value(b.minute);
  t.second = value(b.second);
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 || t.second > 59) {
    return make_error(ErrorCode::kInvalidArgument, "the RTC holds no valid date");
  }
  return lib::seconds_from_civil(t);
}

}  // namespace lantern::cmos_clock
