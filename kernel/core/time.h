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

}  // namespace lantern::time
