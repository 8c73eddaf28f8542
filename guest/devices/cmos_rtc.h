// The PC's CMOS real-time clock (Motorola MC146818A, as QEMU's `mc146818rtc` presents it) at
// ports 0x70-0x71. Portable (host-tested); not thread-safe (the platform's owner serializes).
//
// Interface (MC146818A datasheet, "Address Map" and "Register A-D"; QEMU hw/rtc/mc146818rtc.c):
//  - 0x70 (write-only): bits 6:0 select one of 128 CMOS bytes; bit 7 is the PC's NMI-disable
//    gate (kept and readable through nmi_disabled(), it gates nothing here). Reads return 0xff
//    (the index register is write-only; QEMU reads it as 0xff).
//  - 0x71: the selected byte.
// The 128 bytes: 0x00-0x09 the clock (seconds, seconds alarm, minutes, minutes alarm, hours,
// hours alarm, day of week, day of month, month, year), 0x0a-0x0d status registers A-D, and
// 114 bytes of RAM 0x0e-0x7f, of which 0x32 is the century (IBM PC AT convention, QEMU
// RTC_CENTURY) and a PC BIOS fills the memory-size bytes (QEMU hw/i386/pc.c pc_cmos_init()).
//
// Behaviour, chosen for a guest that boots without firmware (Linux mach_get_cmos_time(),
// mc146818_get_time(), rtc-cmos):
//  - Time comes from a wall-clock seam (UTC seconds since 1970-01-01) plus an offset the guest
//    sets by writing the clock registers. Fields are BCD unless status B's DM bit (bit 2) is
//    set, 24-hour unless B's 24/12 bit (bit 1) is clear; in 12-hour mode hours are 1-12 with
//    bit 7 = PM. The day of week is 1-7 with Sunday = 1, derived from the date.
//  - Writes to the clock registers are accepted: with B.SET (bit 7) clear each write takes
//    effect at once; with B.SET set the writes collect in a frozen copy (which reads return)
//    and take effect when SET is cleared, as on the chip where SET stops the update cycle.
//    The written time is kept as an offset from the wall clock, so it keeps advancing. The
//    written day of week is ignored (it is derived from the date); fields out of range are
//    clamped (second/minute 0-59, hour 0-23, day 1-31, month 1-12); dates before 1970 become
//    1970-01-01 00:00:00.
//  - Status A: the update-in-progress bit (UIP, bit 7) always reads 0 — a UIP bit that never
//    sticks. The clock is read in one step from the wall clock, so there is no update cycle to
//    race; Linux's wait loops (while UIP is set) end at once. Bits 6:0 (divider, rate select)
//    are read/write, 0x26 at reset (32.768 kHz time base, 1024 Hz rate), as QEMU sets them.
//  - Status B: read/write, 0x02 at reset (24-hour, BCD, no interrupts enabled).
//  - Status C: reads 0. The device raises no interrupt (no periodic, alarm or update-ended
//    interrupt and no IRQ 8 output), so no flag is ever set.
//  - Status D: reads 0x80 (VRT, valid RAM and time); writes are ignored.
//  - RAM 0x0e-0x7f (and the alarm bytes 0x01/0x03/0x05) read and write as plain memory. At
//    reset: shutdown status 0x0f = 0; base memory 0x15/0x16 = 640 (KiB); extended memory
//    0x17/0x18 and 0x30/0x31 = KiB above 1 MiB, capped at 65535; 0x34/0x35 = 64 KiB blocks
//    above 16 MiB, capped at 65535; everything else 0. The VM's RAM is taken as at most
//    3072 MiB, all below 4 GiB (Lantern's guest memory map), so the above-4 GiB bytes
//    0x5b-0x5d stay 0.
//  - reset() restores registers and RAM to the values above but keeps the clock offset (the
//    battery-backed clock keeps the time the guest set).
#pragma once

#include <cstdint>

#include "guest/io_bus.h"

namespace lantern::guest {

// A calendar date and time, UTC, as the clock registers hold it (before BCD/12-hour encoding).
struct RtcCalendarTime {
  uint32_t year = 1970;     // full year, e.g. 2024
  uint8_t month = 1;        // 1-12
  uint8_t day = 1;          // 1-31
  uint8_t hour = 0;         // 0-23
  uint8_t minute = 0;       // 0-59
  uint8_t second = 0;       // 0-59
  uint8_t day_of_week = 5;  // 1-7, Sunday = 1 (1970-01-01 was a Thursday)
};

// Seconds since 1970-01-01 00:00:00 UTC to calendar time (proleptic Gregorian) and back.
RtcCalendarTime rtc_calendar_from_seconds(uint64_t seconds);
uint64_t rtc_seconds_from_calendar(const RtcCalendarTime& time);

class CmosRtc final : public PortDevice {
 public:
  static constexpr uint16_t kIndexPort = 0x70;
  static constexpr uint16_t kDataPort = 0x71;
  static constexpr uint32_t kPortCount = 2;
  static constexpr uint32_t kCmosBytes = 128;  // 14 clock/status bytes + 114 bytes of RAM

  // Index port bit 7: the PC's NMI-disable gate, not part of the CMOS address.
  static constexpr uint8_t kIndexNmiDisable = 0x80;
  static constexpr uint8_t kIndexMask = 0x7f;

  // Clock and status registers (MC146818A datasheet, "Address Map").
  static constexpr uint8_t kSeconds = 0x00, kSecondsAlarm = 0x01, kMinutes = 0x02, kMinutesAlarm = 0x03,
                           kHours = 0x04, kHoursAlarm = 0x05, kDayOfWeek = 0x06, kDayOfMonth = 0x07,
                           kMonth = 0x08, kYear = 0x09, kStatusA = 0x0a, kStatusB = 0x0b, kStatusC = 0x0c,
                           kStatusD = 0x0d;
  // PC BIOS bytes (QEMU pc_cmos_init(); IBM PC AT CMOS map).
  static constexpr uint8_t kShutdownStatus = 0x0f, kBaseMemoryLow = 0x15, kBaseMemoryHigh = 0x16,
                           kExtendedMemoryLow = 0x17, kExtendedMemoryHigh = 0x18,
                           kExtendedMemoryCopyLow = 0x30, kExtendedMemoryCopyHigh = 0x31, kCentury = 0x32,
                           kMemoryAbove16MLow = 0x34, kMemoryAbove16MHigh = 0x35;

  // Status A (datasheet "Register A"): bit 7 UIP, bits 6:4 divider, 3:0 rate select.
  static constexpr uint8_t kStatusAUpdateInProgress = 0x80;
  static constexpr uint8_t kStatusAReset = 0x26;  // DV = 010 (32.768 kHz), RS = 0110 (1024 Hz)
  // Status B (datasheet "Register B").
  static constexpr uint8_t kStatusBSet = 0x80;              // SET: stop updates, allow setting
  static constexpr uint8_t kStatusBUpdateIrq = 0x10;        // UIE, cleared when SET is set
  static constexpr uint8_t kStatusBBinary = 0x04;           // DM: 1 = binary, 0 = BCD
  static constexpr uint8_t kStatusB24Hour = 0x02;           // 24/12: 1 = 24-hour mode
  static constexpr uint8_t kStatusBReset = kStatusB24Hour;  // 24-hour, BCD, no interrupts
  // Status D (datasheet "Register D"): bit 7 VRT, valid RAM and time.
  static constexpr uint8_t kStatusDValid = 0x80;
  // 12-hour mode: hours bit 7 = PM.
  static constexpr uint8_t kHoursPm = 0x80;

  // The wall clock: UTC seconds since 1970-01-01 00:00:00.
  using WallClock = uint64_t (*)(void* context);
  // What the clock reads when no wall clock is given: 2024-01-01 00:00:00 UTC, not advancing.
  static constexpr uint64_t kDefaultWallClockSeconds = 1704067200;
  // The RAM the memory-size bytes describe is capped here (Lantern's guest memory map).
  static constexpr uint64_t kMaxRamBytes = 3072ull << 20;

  struct Config {
    uint64_t ram_bytes = 0;
    WallClock wall_clock = nullptr;  // nullptr: kDefaultWallClockSeconds
    void* wall_clock_context = nullptr;
  };

  explicit CmosRtc(const Config& config);

  // Registers and RAM back to the values above; the clock offset is kept.
  void reset();

  uint8_t index() const { return index_; }
  bool nmi_disabled() const { return nmi_disabled_; }
  // The guest's time: the wall clock plus the offset its writes set.
  uint64_t guest_seconds() const;
  int64_t offset_seconds() const { return offset_seconds_; }
  // A CMOS byte as the guest would read it through 0x71 (no side effects).
  uint8_t peek(uint8_t index) const;

  uint32_t port_read(uint16_t port, uint8_t width) override;
  void port_write(uint16_t port, uint8_t width, uint32_t value) override;

 private:
  uint64_t wall_seconds() const;
  uint8_t read_register(uint8_t index) const;
  void write_register(uint8_t index, uint8_t value);
  uint8_t encode(uint8_t binary) const;
  uint8_t decode(uint8_t encoded) const;
  uint8_t encode_hours(uint8_t hour) const;
  uint8_t decode_hours(uint8_t encoded) const;
  void write_clock_field(uint8_t index, uint8_t value);
  void commit(const RtcCalendarTime& time);
  void fill_memory_size();

  Config config_;
  uint8_t index_ = 0;
  bool nmi_disabled_ = false;
  uint8_t cmos_[kCmosBytes] = {};
  int64_t offset_seconds_ = 0;
  // While status B's SET bit is set: the frozen time the guest reads and edits.
  RtcCalendarTime frozen_;
};

}  // namespace lantern::guest
