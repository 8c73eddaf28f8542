// lwIP's system layer for NO_SYS=1 (lwIP: src/include/lwip/sys.h, arch.h): the clock, the
// lightweight protection, diagnostics, asserts and the random source. Kernel-only.
#include <cstdarg>
#include <cstdint>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/core/log.h"
#include "kernel/core/panic.h"
#include "kernel/core/time.h"
#include "kernel/lib/format.h"
#include "lwip/sys.h"

namespace lantern::net::lwip_port {
namespace {

// CPUID.01H:ECX bit 30 = RDRAND (Intel SDM Vol. 2A, CPUID, Table 3-10).
constexpr uint32_t kCpuidEcxRdrand = 1u << 30;
// Intel SDM Vol. 1, 7.3.17.1: retry RDRAND up to 10 times when CF=0 (transient underflow).
constexpr int kRdrandRetries = 10;

enum class RandSource : uint8_t { kUnknown, kRdrand, kTsc };
RandSource g_rand_source = RandSource::kUnknown;
uint64_t g_tsc_state = 0;

bool rdrand32(uint32_t* out) {
  for (int i = 0; i < kRdrandRetries; ++i) {
    uint32_t value;
    uint8_t ok;
    asm volatile("rdrand %0; setc %1" : "=r"(value), "=qm"(ok)::"cc");
    if (ok) {
      *out = value;
      return true;
    }
  }
  return false;
}

// splitmix64 (Steele, Lea, Flood 2014) over the TSC: not cryptographic, but distinct per call
// and per boot, which is what TCP ISNs and DHCP XIDs need inside an emulator without RDRAND.
uint32_t tsc_mix() {
  g_tsc_state += 0x9E3779B97F4A7C15ull ^ cpu::rdtsc();
  uint64_t z = g_tsc_state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return static_cast<uint32_t>(z ^ (z >> 31));
}

}  // namespace
}  // namespace lantern::net::lwip_port

using namespace lantern;

// Milliseconds since TSC calibration; wraps after 49 days, which lwIP's timeouts tolerate
// (timeouts.c compares with TIME_LESS_THAN, modulo 2^32).
extern "C" u32_t sys_now(void) { return static_cast<u32_t>(time::now_ns() / 1000000); }

// SYS_LIGHTWEIGHT_PROT: interrupts off on this core (lwIP has one owner core, the BSP; this only
// guards against an interrupt handler on the same core, which net/ never lets into lwIP).
extern "C" sys_prot_t sys_arch_protect(void) {
  const sys_prot_t flags = cpu::read_rflags();
  cpu::disable_interrupts();
  return flags;
}
extern "C" void sys_arch_unprotect(sys_prot_t flags) {
  if (flags & cpu::kRflagsIf) cpu::enable_interrupts();
}

extern "C" void lantern_lwip_diag(const char* fmt, ...) {
  char line[192];
  va_list args;
  va_start(args, fmt);
  lib::format_v(line, sizeof(line), fmt, args);
  va_end(args);
  LOG_INFO("lwip: %s", line);
}

extern "C" void lantern_lwip_assert(const char* message, const char* file, int line) {
  panic("lwIP assertion \"%s\" failed at %s:%d", message, file, line);
}

extern "C" uint32_t lantern_lwip_rand(void) {
  using net::lwip_port::RandSource;
  auto& source = net::lwip_port::g_rand_source;
  if (source == RandSource::kUnknown) {
    const bool has_rdrand = (cpu::cpuid(1).ecx & net::lwip_port::kCpuidEcxRdrand) != 0;
    source = has_rdrand ? RandSource::kRdrand : RandSource::kTsc;
  }
  uint32_t value;
  if (source == RandSource::kRdrand && net::lwip_port::rdrand32(&value)) return value;
  return net::lwip_port::tsc_mix();
}
