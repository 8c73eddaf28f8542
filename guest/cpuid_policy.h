// Lantern's CPUID policy, the same for both backends: what a guest sees for (leaf, subleaf),
// given the processor's own answer, what the backend can offer (CpuidOffer, fixed per vCPU
// until its controls change) and the guest state a leaf depends on (CpuidGuestInputs). Pure and
// host-tested; each backend executes CPUID and calls guest_cpuid() (VMX caches the answer in a
// CpuidLeafCache, guest/cpuid_cache.h).
//
// The policy (SDM Vol. 2A CPUID; APM Vol. 3 Appendix E):
//   - hidden because nothing emulates them: VMX and SVM (no nested virtualization), MONITOR/MWAIT,
//     PDCM, the thermal/power bits, the PMU (leaf 0AH zero), the SVM leaf 8000000AH, LA57 (the
//     guest-page walker has 4 levels), WAITPKG; RDTSCP/RDPID, INVPCID and XSAVE unless the
//     backend lets the guest run them;
//   - shown because Lantern emulates them: the hypervisor bit, x2APIC, the TSC-deadline timer,
//     the APIC bit as IA32_APIC_BASE.EN says, ARAT (the only leaf-06H bit), IA32_TSC_ADJUST when
//     the backend offsets the TSC; the initial APIC ID (01H:EBX[31:24]) and x2APIC ID (0BH/1FH
//     EDX) are the vCPU id;
//   - announced so a guest OS needs no PIT to calibrate: where the backend says so (Intel's
//     convention), leaves 15H (TSC/crystal) and 16H (frequencies) with max leaf raised to 16H;
//     always, the hypervisor leaves 40000000H (signature, max 40000010H) and 40000010H (TSC kHz,
//     APIC bus kHz: the VMware/KVM convention).
#pragma once

#include <cstdint>

#include "guest/cpuid_cache.h"
#include "guest/xstate.h"

namespace lantern::guest {

struct CpuidOffer {
  uint32_t vcpu_id = 0;
  char signature[13] = {};               // 12 characters at 40000000H EBX, ECX, EDX
  bool xsave = false;                    // the backend switches XCR0 for guests
  uint64_t guest_xcr0 = 0;               // with xsave: XCR0 bits guests may enable
  const XstateComponent (*xstate_components)[kXstateComponents] = nullptr;  // with xsave
  bool rdtscp = false;                   // RDTSCP and RDPID run in the guest
  bool invpcid = false;                  // INVPCID runs in the guest
  bool tsc_adjust = false;               // IA32_TSC_ADJUST is emulated
  bool frequency_leaves = false;         // announce leaves 15H and 16H
  uint64_t tsc_hz = 0;                   // the guest's TSC rate
  uint32_t tsc_per_bus_clock = 1;        // the vlapic timer counts at tsc_hz / this
};

// The first hypervisor leaf and the last leaf of the range CPUID never passes to the processor.
inline constexpr uint32_t kCpuidHypervisorLeaf = 0x40000000;
inline constexpr uint32_t kCpuidHypervisorTimingLeaf = 0x40000010;
inline constexpr uint32_t kCpuidHypervisorLeafLast = 0x4fffffff;

// Whether the processor's answer is needed at all (hypervisor leaves are Lantern's own).
constexpr bool cpuid_leaf_asks_processor(uint32_t leaf) {
  return leaf < kCpuidHypervisorLeaf || leaf > kCpuidHypervisorLeafLast;
}

// What the guest sees. `processor` is the CPU's answer for (leaf, subleaf) (ignored for the
// hypervisor leaves).
CpuidRegisters guest_cpuid(uint32_t leaf, uint32_t subleaf, const CpuidRegisters& processor,
                           const CpuidOffer& offer, const CpuidGuestInputs& inputs);

}  // namespace lantern::guest
