// The host's own real-time clock (the PC's MC146818-compatible CMOS RTC at ports 0x70/0x71),
// read once at boot so that guests' emulated RTCs can show the current time. Kernel-only.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::cmos_clock {

// Seconds since 1970-01-01T00:00:00Z from the RTC; kTimeout when its update-in-progress flag
// never clears, kInvalidArgument when the registers hold no valid date.
Result<int64_t> read_unix_seconds();

}  // namespace lantern::cmos_clock
