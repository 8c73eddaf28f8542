#include "guest/hw/xstate_hw.h"

#include <atomic>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/core/log.h"

namespace lantern::guest {
namespace {

// CPUID feature bits (SDM Vol. 2A CPUID, Table 3-10/3-11): 01H:ECX[26] XSAVE, 01H:EDX[24] FXSR.
constexpr uint32_t kCpuid1EcxXsave = 1u << 26;
constexpr uint32_t kCpuid1EdxFxsr = 1u << 24;
// CR4.OSXSAVE (SDM Vol. 3A 2.5): enables XSETBV/XGETBV and the XSAVE family.
constexpr uint64_t kCr4Osxsave = 1u << 18;
constexpr uint32_t kCpuidXsaveLeaf = 0xd;
constexpr uint64_t kPageBytes = 4096;

HostXstate g_host_xstate;
std::atomic<bool> g_host_xstate_valid{false};

}  // namespace

void enable_host_xstate_on_this_cpu() {
  const cpu::CpuidResult leaf1 = cpu::cpuid(1);
  HostXstate x;
  if ((leaf1.ecx & kCpuid1EcxXsave) != 0) {
    cpu::write_cr4(cpu::read_cr4() | kCr4Osxsave);
    const cpu::CpuidResult d0 = cpu::cpuid(kCpuidXsaveLeaf, 0);
    x.mode = XstateMode::kXsave;
    x.cpu_xcr0 = (static_cast<uint64_t>(d0.edx) << 32) | d0.eax;
    x.host_xcr0 = x.cpu_xcr0 & (kXcr0X87 | kXcr0Sse);
    for (uint32_t i = 2; i < kXstateComponents; ++i) {
      if ((x.cpu_xcr0 & (1ull << i)) == 0) continue;
      const cpu::CpuidResult di = cpu::cpuid(kCpuidXsaveLeaf, i);
      x.components[i] = XstateComponent{di.eax, di.ebx, (di.ecx & kCpuidXsaveComponentAlign64) != 0};
    }
    hw::xsetbv(0, x.host_xcr0);
    // ECX: the size for every supported component (CPUID.(EAX=0DH,ECX=0)); one page per area,
    // so beyond that guests get x87/SSE/AVX only (AVX ends at byte 832, SDM Vol. 1 13.4).
    x.guest_xcr0 = x.cpu_xcr0;
    x.area_bytes = d0.ecx;
    if (d0.ecx > kPageBytes) {
      x.guest_xcr0 &= kXcr0X87 | kXcr0Sse | kXcr0Avx;
      x.area_bytes = 832;
    }
    // IA32_XSS exists when CPUID.(EAX=0DH,ECX=1):EAX[3] says XSAVES (SDM Vol. 1 13.2); the host
    // runs with 0 in it (no supervisor component in use).
    const cpu::CpuidResult d1 = cpu::cpuid(kCpuidXsaveLeaf, 1);
    const XssSupport xss = decode_xss_support(d1.eax, d1.ecx, d1.edx);
    x.xsaves = xss.xsaves;
    x.cpu_xss = xss.supported;
    if (x.xsaves) cpu::wrmsr(kMsrIa32Xss, x.host_xss);
  } else if ((leaf1.edx & kCpuid1EdxFxsr) != 0) {
    x.mode = XstateMode::kFxsave;
    x.area_bytes = kFxsaveAreaBytes;
  }
  if (!g_host_xstate_valid.exchange(true)) {
    g_host_xstate = x;
    LOG_INFO("xstate: %s, CPU XCR0 0x%llx, guests may enable 0x%llx, host XCR0 0x%llx, area %u bytes",
             x.mode == XstateMode::kXsave ? "XSAVE" : (x.mode == XstateMode::kFxsave ? "FXSAVE" : "none"),
             static_cast<unsigned long long>(x.cpu_xcr0), static_cast<unsigned long long>(x.guest_xcr0),
             static_cast<unsigned long long>(x.host_xcr0), x.area_bytes);
    for (uint32_t i = 2; i < kXstateComponents; ++i) {
      if (x.components[i].size == 0) continue;
      LOG_INFO("xstate: component %u at %u, %u bytes%s", i, x.components[i].offset, x.components[i].size,
               x.components[i].align64 ? ", 64-byte aligned when compacted" : "");
    }
    if (x.xsaves) {
      LOG_INFO(
          "xstate: IA32_XSS switched on entry/exit (XSAVES present; CPU XSS bits 0x%llx, host XSS "
          "0x%llx, "
          "guests may set 0x%llx)",
          static_cast<unsigned long long>(x.cpu_xss), static_cast<unsigned long long>(x.host_xss),
          static_cast<unsigned long long>(x.guest_xss));
    } else {
      LOG_INFO(
          "xstate: IA32_XSS not switched: this CPU has no XSAVES (CPUID.(EAX=0DH,ECX=1):EAX[3] = 0)");
    }
  }
}


const HostXstate& host_xstate() { return g_host_xstate; }

}  // namespace lantern::guest
