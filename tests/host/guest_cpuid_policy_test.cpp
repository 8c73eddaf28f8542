// Lantern's CPUID policy (guest/cpuid_policy.h): what a guest sees, for both backends' offers.
#include <gtest/gtest.h>

#include <cstring>

#include "guest/cpuid_policy.h"
#include "guest/platform_msrs.h"

namespace lantern::guest {
namespace {

constexpr uint32_t kAllOnes = 0xffffffffu;
constexpr CpuidRegisters kAll{kAllOnes, kAllOnes, kAllOnes, kAllOnes};

XstateComponent g_components[kXstateComponents] = {};

CpuidOffer intel_offer() {
  CpuidOffer o;
  o.vcpu_id = 3;
  std::memcpy(o.signature, "LanternVMXhv", 13);
  o.xsave = true;
  o.guest_xcr0 = kXcr0X87 | kXcr0Sse | kXcr0Avx;
  g_components[2] = XstateComponent{256, 576, false};  // AVX: 256 bytes at 576 (SDM Vol. 1 13.4)
  o.xstate_components = &g_components;
  o.rdtscp = false;
  o.invpcid = false;
  o.tsc_adjust = true;
  o.frequency_leaves = true;
  o.tsc_hz = 2'000'000'000;
  o.tsc_per_bus_clock = 20;
  return o;
}

CpuidOffer amd_offer() {
  CpuidOffer o = intel_offer();
  std::memcpy(o.signature, "LanternSVMhv", 13);
  o.xsave = false;
  o.rdtscp = true;
  o.invpcid = true;
  o.frequency_leaves = false;
  return o;
}

TEST(GuestCpuidPolicy, Leaf1HidesWhatIsNotEmulatedAndShowsWhatIs) {
  CpuidGuestInputs in{false, true, kXcr0X87 | kXcr0Sse};
  const CpuidRegisters r = guest_cpuid(1, 0, kAll, intel_offer(), in);
  EXPECT_EQ(r.ebx >> 24, 3u);                     // initial APIC ID = vCPU id
  EXPECT_EQ(r.ebx & 0x00ffffffu, 0x00ffffffu);    // the rest as the processor says
  EXPECT_EQ(r.ecx & (1u << 5), 0u);               // VMX
  EXPECT_EQ(r.ecx & (1u << 3), 0u);               // MONITOR
  EXPECT_EQ(r.ecx & (1u << 15), 0u);              // PDCM
  EXPECT_EQ(r.ecx & ((1u << 4) | (1u << 6) | (1u << 7) | (1u << 8)), 0u);  // thermal/power
  EXPECT_NE(r.ecx & (1u << 31), 0u);              // hypervisor present
  EXPECT_NE(r.ecx & (1u << 21), 0u);              // x2APIC
  EXPECT_NE(r.ecx & (1u << 24), 0u);              // TSC deadline
  EXPECT_NE(r.ecx & (1u << 26), 0u);              // XSAVE: the backend switches XCR0
  EXPECT_EQ(r.ecx & (1u << 27), 0u);              // OSXSAVE follows CR4, which is clear
  EXPECT_NE(r.edx & (1u << 9), 0u);               // APIC enabled
  EXPECT_EQ(r.edx & ((1u << 21) | (1u << 22) | (1u << 29) | (1u << 31)), 0u);

  in.cr4_osxsave = true;
  in.apic_enabled = false;
  const CpuidRegisters s = guest_cpuid(1, 0, CpuidRegisters{}, intel_offer(), in);
  EXPECT_NE(s.ecx & (1u << 27), 0u);  // OSXSAVE now, even though the processor said 0
  EXPECT_EQ(s.edx & (1u << 9), 0u);   // IA32_APIC_BASE.EN clear: no APIC (SDM Vol. 3A 11.4.3)
  EXPECT_NE(s.ecx & (1u << 21), 0u);  // x2APIC whatever the processor has

  // Without XCR0 switching neither XSAVE nor OSXSAVE, even with CR4.OSXSAVE set.
  const CpuidRegisters a = guest_cpuid(1, 0, kAll, amd_offer(), in);
  EXPECT_EQ(a.ecx & ((1u << 26) | (1u << 27)), 0u);
}

TEST(GuestCpuidPolicy, Leaf7FollowsWhatTheBackendLetsTheGuestRun) {
  const CpuidGuestInputs in{};
  const CpuidRegisters intel = guest_cpuid(7, 0, kAll, intel_offer(), in);
  EXPECT_EQ(intel.ebx & (1u << 10), 0u);  // INVPCID: not enabled
  EXPECT_EQ(intel.ecx & (1u << 22), 0u);  // RDPID: no RDTSCP
  EXPECT_EQ(intel.ecx & (1u << 16), 0u);  // LA57: the page walker has 4 levels
  EXPECT_EQ(intel.ecx & (1u << 5), 0u);   // WAITPKG
  EXPECT_NE(intel.ebx & kCpuid07EbxTscAdjust, 0u);

  const CpuidRegisters amd = guest_cpuid(7, 0, CpuidRegisters{}, amd_offer(), in);
  EXPECT_NE(amd.ebx & kCpuid07EbxTscAdjust, 0u);  // emulated whatever the processor has
  const CpuidRegisters amd_all = guest_cpuid(7, 0, kAll, amd_offer(), in);
  EXPECT_NE(amd_all.ebx & (1u << 10), 0u);
  EXPECT_NE(amd_all.ecx & (1u << 22), 0u);

  CpuidOffer no_adjust = intel_offer();
  no_adjust.tsc_adjust = false;
  EXPECT_EQ(guest_cpuid(7, 0, kAll, no_adjust, in).ebx & kCpuid07EbxTscAdjust, 0u);
  // Other subleaves pass through.
  EXPECT_EQ(guest_cpuid(7, 1, kAll, intel_offer(), in).ecx, kAllOnes);
}

TEST(GuestCpuidPolicy, TimingLeavesAnnounceTheTscAndTheApicTimer) {
  const CpuidGuestInputs in{};
  EXPECT_EQ(guest_cpuid(0, 0, CpuidRegisters{0xd, 0, 0, 0}, intel_offer(), in).eax, 0x16u);
  EXPECT_EQ(guest_cpuid(0, 0, CpuidRegisters{0x20, 0, 0, 0}, intel_offer(), in).eax, 0x20u);
  EXPECT_EQ(guest_cpuid(0, 0, CpuidRegisters{0xd, 0, 0, 0}, amd_offer(), in).eax, 0xdu);

  const CpuidRegisters crystal = guest_cpuid(0x15, 0, kAll, intel_offer(), in);
  // TSC = ECX * EBX / EAX (SDM Vol. 2A CPUID leaf 15H).
  EXPECT_EQ(uint64_t{crystal.ecx} * crystal.ebx / crystal.eax, 2'000'000'000u);
  EXPECT_EQ(crystal.ecx, 100'000'000u);
  const CpuidRegisters mhz = guest_cpuid(0x16, 0, kAll, intel_offer(), in);
  EXPECT_EQ(mhz.eax, 2000u);
  EXPECT_EQ(mhz.ecx, 100u);
  EXPECT_EQ(guest_cpuid(0x16, 0, kAll, amd_offer(), in).eax, kAllOnes);  // not announced: untouched

  const CpuidRegisters power = guest_cpuid(6, 0, kAll, amd_offer(), in);
  EXPECT_EQ(power.eax, 1u << 2);  // ARAT only
  EXPECT_EQ(power.ecx, 0u);

  const CpuidRegisters base = guest_cpuid(kCpuidHypervisorLeaf, 0, kAll, amd_offer(), in);
  EXPECT_EQ(base.eax, kCpuidHypervisorTimingLeaf);
  char signature[13] = {};
  std::memcpy(signature + 0, &base.ebx, 4);
  std::memcpy(signature + 4, &base.ecx, 4);
  std::memcpy(signature + 8, &base.edx, 4);
  EXPECT_STREQ(signature, "LanternSVMhv");
  const CpuidRegisters timing = guest_cpuid(kCpuidHypervisorTimingLeaf, 0, kAll, intel_offer(), in);
  EXPECT_EQ(timing.eax, 2'000'000u);  // TSC kHz
  EXPECT_EQ(timing.ebx, 100'000u);    // APIC bus kHz
  EXPECT_EQ(timing.ecx, 0u);
  // The rest of the hypervisor range reads zeros, never the processor's answer.
  const CpuidRegisters other = guest_cpuid(0x40000100, 0, kAll, intel_offer(), in);
  EXPECT_EQ(other.eax | other.ebx | other.ecx | other.edx, 0u);
  EXPECT_FALSE(cpuid_leaf_asks_processor(0x4fffffff));
  EXPECT_TRUE(cpuid_leaf_asks_processor(0x80000001));
}

TEST(GuestCpuidPolicy, XsaveLeafShowsWhatGuestsMayEnable) {
  const CpuidGuestInputs in{true, true, kXcr0X87 | kXcr0Sse | kXcr0Avx};
  const CpuidRegisters r = guest_cpuid(0xd, 0, kAll, intel_offer(), in);
  EXPECT_EQ(r.eax, static_cast<uint32_t>(kXcr0X87 | kXcr0Sse | kXcr0Avx));
  EXPECT_EQ(r.edx, 0u);
  EXPECT_EQ(r.ebx, 832u);  // legacy 512 + header 64 + AVX 256
  EXPECT_EQ(r.ecx, 832u);
  const CpuidRegisters sub1 = guest_cpuid(0xd, 1, kAll, intel_offer(), in);
  EXPECT_EQ(sub1.eax & kCpuidXsaveSubleaf1EaxXsaves, 0u);
  EXPECT_EQ(sub1.ecx | sub1.edx, 0u);
  const CpuidRegisters amd = guest_cpuid(0xd, 0, kAll, amd_offer(), in);
  EXPECT_EQ(amd.eax | amd.ebx | amd.ecx | amd.edx, 0u);
}

TEST(GuestCpuidPolicy, TopologyAndExtendedLeaves) {
  const CpuidGuestInputs in{};
  EXPECT_EQ(guest_cpuid(0xb, 0, kAll, intel_offer(), in).edx, 3u);
  EXPECT_EQ(guest_cpuid(0x1f, 1, kAll, amd_offer(), in).edx, 3u);
  const CpuidRegisters ext = guest_cpuid(0x80000001, 0, kAll, intel_offer(), in);
  EXPECT_EQ(ext.ecx & (1u << 2), 0u);   // SVM (APM Vol. 3 E.4.2)
  EXPECT_EQ(ext.edx & (1u << 27), 0u);  // RDTSCP not enabled
  EXPECT_NE(guest_cpuid(0x80000001, 0, kAll, amd_offer(), in).edx & (1u << 27), 0u);
  const CpuidRegisters svm = guest_cpuid(0x8000000a, 0, kAll, amd_offer(), in);
  EXPECT_EQ(svm.eax | svm.ebx | svm.ecx | svm.edx, 0u);
  const CpuidRegisters pmu = guest_cpuid(0xa, 0, kAll, intel_offer(), in);
  EXPECT_EQ(pmu.eax | pmu.ebx | pmu.ecx | pmu.edx, 0u);
  EXPECT_EQ(guest_cpuid(0x80000008, 0, kAll, intel_offer(), in).eax, kAllOnes);  // untouched
}

}  // namespace
}  // namespace lantern::guest
