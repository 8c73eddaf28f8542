#include "kernel/core/time.h"

#include "kernel/arch/x86_64/cpu.h"

namespace lantern::time {
namespace {

// 8254 PIT (Intel 82C54 datasheet; PC wiring: input clock 1.193182 MHz, channel 2 gated by
// port 0x61 bit 0, its output readable at port 0x61 bit 5).
constexpr uint32_t kPitHz = 1193182;
constexpr uint16_t kPitChannel2 = 0x42;
constexpr uint16_t kPitCommand = 0x43;
constexpr uint16_t kPortB = 0x61;
constexpr uint8_t kPortBGate2 = 0x01;
constexpr uint8_t kPortBSpeaker = 0x02;
constexpr uint8_t kPortBOut2 = 0x20;
constexpr uint8_t kPitChannel2Mode0LoHi = 0xb0;  // SC=10, RW=11 (lobyte/hibyte), M=000, binary
constexpr uint32_t kCalibrationMs = 20;

uint64_t g_tsc_hz = 0;
uint64_t g_tsc_start = 0;
uint64_t g_ns_per_tick_q32 = 0;  // nanoseconds per TSC tick in 32.32 fixed point

}  // namespace

Result<void> calibrate() {
  const uint32_t count = kPitHz * kCalibrationMs / 1000;
  cpu::outb(kPortB, static_cast<uint8_t>((cpu::inb(kPortB) & ~kPortBSpeaker) | kPortBGate2));
  cpu::outb(kPitCommand, kPitChannel2Mode0LoHi);
  cpu::outb(kPitChannel2, count & 0xff);
  cpu::outb(kPitChannel2, static_cast<uint8_t>(count >> 8));
  const uint64_t start = cpu::rdtsc();
  uint64_t spins = 0;
  while (!(cpu::inb(kPortB) & kPortBOut2)) {
    if (++spins > 200'000'000)
      return make_error(ErrorCode::kTimeout, "PIT channel 2 never reached terminal count");
  }
  const uint64_t ticks = cpu::rdtsc() - start;
  if (ticks == 0) return make_error(ErrorCode::kIoError, "TSC does not advance");
  g_tsc_hz = ticks * kPitHz / count;
  g_ns_per_tick_q32 = (1'000'000'000ull << 32) / g_tsc_hz;
  g_tsc_start = start;
  return ok();
}

uint64_t tsc_hz() {
  return g_tsc_hz;
}

uint64_t tsc_to_ns(uint64_t ticks) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(ticks) * g_ns_per_tick_q32) >> 32);
}

uint64_t now_ns() {
  if (g_tsc_hz == 0) return 0;
  return tsc_to_ns(cpu::rdtsc() - g_tsc_start);
}

namespace {
int64_t g_wall_clock_base = 0;  // UTC seconds at g_wall_clock_at_ns (0: not set)
uint64_t g_wall_clock_at_ns = 0;
}  // namespace

void set_wall_clock(int64_t unix_seconds, uint64_t at_ns) {
  g_wall_clock_base = unix_seconds;
  g_wall_clock_at_ns = at_ns;
}

int64_t wall_clock_seconds() {
  if (g_wall_clock_base == 0) return 0;
  return g_wall_clock_base + static_cast<int64_t>((now_ns() - g_wall_clock_at_ns) / 1'000'000'000ull);
}

void delay_us(uint64_t microseconds) {
  const uint64_t end = now_ns() + microseconds * 1000;
  while (now_ns() < end) cpu::pause();
}

}  // namespace lantern::time
