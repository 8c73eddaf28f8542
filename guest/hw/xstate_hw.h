// XSAVE-family instructions for the vCPU's extended-state switch, and the host's xstate facts.
// Kernel-only.
#pragma once

#include <cstdint>

#include "guest/xstate.h"

namespace lantern::guest {

enum class XstateMode : uint8_t {
  kNone,    // neither XSAVE nor FXSR: nothing to switch
  kFxsave,  // FXSAVE/FXRSTOR (x87 + SSE), CPUID.01H:EDX[24]
  kXsave,   // XSAVE/XRSTOR with XCR0 switched, CPUID.01H:ECX[26]
};

struct HostXstate {
  XstateMode mode = XstateMode::kNone;
  uint64_t cpu_xcr0 = 0;      // CPUID.(EAX=0DH,ECX=0):EDX:EAX, what the processor supports
  uint64_t guest_xcr0 = 0;    // what guests may enable (the above, limited to fit one page)
  uint64_t host_xcr0 = 0;     // XCR0 while the host runs (x87 | SSE)
  uint32_t area_bytes = 0;    // save-area size for guest_xcr0
  XstateComponent components[kXstateComponents];  // CPUID.(EAX=0DH,ECX=i) for cpu_xcr0's bits
  // IA32_XSS (SDM Vol. 1 13.3): present when CPUID.(EAX=0DH,ECX=1):EAX[3] (XSAVES) is set.
  // Lantern's host uses XSAVE, not XSAVES, and enables no supervisor component (host_xss = 0);
  // guests get no XSAVES either (the "enable XSAVES/XRSTORS" control stays 0), so the IA32_XSS
  // bits guests may set (guest_xss) are none for now. The vCPU still switches the MSR on
  // entry/exit whenever the guest's value differs from the host's.
  bool xsaves = false;
  uint64_t cpu_xss = 0;    // IA32_XSS bits the processor supports
  uint64_t host_xss = 0;   // IA32_XSS while the host runs
  uint64_t guest_xss = 0;  // IA32_XSS bits guests may set
};

// The host side of extended-state switching, on every core before its first guest entry (each
// backend's per-core enable calls it): CR4.OSXSAVE and the host's XCR0 = x87 | SSE when
// CPUID.01H:ECX[26] (XSAVE), else FXSAVE when CPUID.01H:EDX[24] (FXSR); IA32_XSS = 0 when XSAVES
// exists (SDM Vol. 1 13.2, 13.3). The first core records the facts host_xstate() returns and
// logs them (`xstate: ...`).
void enable_host_xstate_on_this_cpu();
const HostXstate& host_xstate();

namespace hw {

// XSETBV/XGETBV (SDM Vol. 2C): ECX selects the XCR, EDX:EAX the value.
inline void xsetbv(uint32_t index, uint64_t value) {
  asm volatile("xsetbv" ::"c"(index), "a"(static_cast<uint32_t>(value)), "d"(static_cast<uint32_t>(value >> 32))
               : "memory");
}
inline uint64_t xgetbv(uint32_t index) {
  uint32_t lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(index));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}
// XSAVE/XRSTOR with the requested-feature bitmap EDX:EAX = all ones, i.e. RFBM = XCR0 (SDM Vol.
// 1 13.7, 13.8); the area must be 64-byte aligned.
inline void xsave(void* area) {
  asm volatile("xsave64 (%0)" ::"r"(area), "a"(0xffffffffu), "d"(0xffffffffu) : "memory");
}
inline void xrstor(const void* area) {
  asm volatile("xrstor64 (%0)" ::"r"(area), "a"(0xffffffffu), "d"(0xffffffffu) : "memory");
}
// FXSAVE/FXRSTOR: 512-byte area, 16-byte aligned (SDM Vol. 2A FXSAVE).
inline void fxsave(void* area) { asm volatile("fxsave64 (%0)" ::"r"(area) : "memory"); }
inline void fxrstor(const void* area) { asm volatile("fxrstor64 (%0)" ::"r"(area) : "memory"); }

}  // namespace hw
}  // namespace lantern::guest
