// The monotonic clock: the TSC, calibrated once against the PIT.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::time {

// On the BSP, interrupts off. Measures the TSC over 20 ms of PIT channel 2.
Result<void> calibrate();
uint64_t tsc_hz();
// Nanoseconds since calibration (0 before). The TSC is assumed synchronised between
// cores, which holds in QEMU and Bochs and on CPUs with an invariant TSC.
uint64_t now_ns();
uint64_t tsc_to_ns(uint64_t ticks);
void delay_us(uint64_t microseconds);

// Wall-clock time (UTC seconds since 1970) from a reading taken at `now_ns()` = `at_ns` (the
// host's RTC at boot, kernel/arch/x86_64/cmos_clock.h), advanced by the monotonic clock. 0
// until set.
void set_wall_clock(int64_t unix_seconds, uint64_t at_ns);
int64_t wall_clock_seconds();

}  // namespace lantern::time
