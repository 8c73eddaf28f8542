#include "guest/cpuid_policy.h"

#include "guest/platform_msrs.h"

namespace lantern::guest {
namespace {

// Leaves (SDM Vol. 2A CPUID; APM Vol. 3 Appendix E).
constexpr uint32_t kLeafFeatures = 0x1;
constexpr uint32_t kLeafPower = 0x6;
constexpr uint32_t kLeafStructuredFeatures = 0x7;
constexpr uint32_t kLeafPmu = 0xa;
constexpr uint32_t kLeafExtendedTopology = 0xb;
constexpr uint32_t kLeafXsave = 0xd;
constexpr uint32_t kLeafTscCrystal = 0x15;
constexpr uint32_t kLeafFrequency = 0x16;
constexpr uint32_t kLeafV2ExtendedTopology = 0x1f;
constexpr uint32_t kLeafExtendedFeatures = 0x80000001;
constexpr uint32_t kLeafSvmFeatures = 0x8000000a;

// Leaf 01H ECX (SDM Vol. 2A Table 3-10): [3] MONITOR, [4] DS-CPL, [5] VMX, [6] SMX, [7] EST,
// [8] TM2, [15] PDCM, [21] x2APIC, [24] TSC-deadline, [26] XSAVE, [27] OSXSAVE, [31] hypervisor
// present (reserved for hypervisors, 0 on bare hardware).
constexpr uint32_t k01EcxMonitor = 1u << 3;
constexpr uint32_t k01EcxVmx = 1u << 5;
constexpr uint32_t k01EcxPowerThermal = (1u << 4) | (1u << 6) | (1u << 7) | (1u << 8);
constexpr uint32_t k01EcxPdcm = 1u << 15;
constexpr uint32_t k01EcxX2apic = 1u << 21;
constexpr uint32_t k01EcxTscDeadline = 1u << 24;
constexpr uint32_t k01EcxXsave = 1u << 26;
constexpr uint32_t k01EcxOsxsave = 1u << 27;
constexpr uint32_t k01EcxHypervisor = 1u << 31;
// Leaf 01H EDX (Table 3-11): [9] APIC, [21] DS, [22] ACPI thermal MSRs, [29] TM, [31] PBE.
constexpr uint32_t k01EdxApic = 1u << 9;
constexpr uint32_t k01EdxPowerThermal = (1u << 21) | (1u << 22) | (1u << 29) | (1u << 31);
// Leaf 06H EAX[2]: ARAT, the APIC timer runs on in every C-state.
constexpr uint32_t k06EaxArat = 1u << 2;
// Leaf 07H subleaf 0: EBX[10] INVPCID; ECX[5] WAITPKG, [16] LA57, [22] RDPID.
constexpr uint32_t k07EbxInvpcid = 1u << 10;
constexpr uint32_t k07EcxWaitpkg = 1u << 5;
constexpr uint32_t k07EcxLa57 = 1u << 16;
constexpr uint32_t k07EcxRdpid = 1u << 22;
// Leaf 80000001H: ECX[2] SVM (APM Vol. 3 E.4.2), EDX[27] RDTSCP.
constexpr uint32_t k80000001EcxSvm = 1u << 2;
constexpr uint32_t k80000001EdxRdtscp = 1u << 27;

uint32_t signature_word(const char* s) {
  return static_cast<uint32_t>(static_cast<uint8_t>(s[0])) | static_cast<uint32_t>(static_cast<uint8_t>(s[1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[2])) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[3])) << 24;
}

CpuidRegisters hypervisor_leaf(uint32_t leaf, const CpuidOffer& offer) {
  CpuidRegisters r{};
  if (leaf == kCpuidHypervisorLeaf) {
    r.eax = kCpuidHypervisorTimingLeaf;  // the highest hypervisor leaf
    r.ebx = signature_word(offer.signature + 0);
    r.ecx = signature_word(offer.signature + 4);
    r.edx = signature_word(offer.signature + 8);
  } else if (leaf == kCpuidHypervisorTimingLeaf) {
    const uint64_t tsc_khz = offer.tsc_hz / 1000;
    r.eax = static_cast<uint32_t>(tsc_khz);
    r.ebx = static_cast<uint32_t>(tsc_khz / offer.tsc_per_bus_clock);
  }
  return r;
}

}  // namespace

CpuidRegisters guest_cpuid(uint32_t leaf, uint32_t subleaf, const CpuidRegisters& processor,
                           const CpuidOffer& offer, const CpuidGuestInputs& inputs) {
  if (!cpuid_leaf_asks_processor(leaf)) return hypervisor_leaf(leaf, offer);
  CpuidRegisters r = processor;
  switch (leaf) {
    case 0:
      if (offer.frequency_leaves && r.eax < kLeafFrequency) r.eax = kLeafFrequency;
      break;
    case kLeafFeatures:
      r.ebx = (r.ebx & 0x00ffffffu) | (offer.vcpu_id << 24);  // initial APIC ID
      r.ecx &= ~(k01EcxVmx | k01EcxMonitor | k01EcxPdcm | k01EcxPowerThermal | k01EcxOsxsave);
      r.ecx |= k01EcxHypervisor | k01EcxX2apic | k01EcxTscDeadline;
      // OSXSAVE mirrors the guest's own CR4.OSXSAVE; XSAVE only where the backend switches XCR0.
      if (inputs.cr4_osxsave) r.ecx |= k01EcxOsxsave;
      if (!offer.xsave) r.ecx &= ~(k01EcxXsave | k01EcxOsxsave);
      r.edx &= ~(k01EdxPowerThermal | k01EdxApic);
      if (inputs.apic_enabled) r.edx |= k01EdxApic;  // SDM Vol. 3A 11.4.3
      break;
    case kLeafPower:
      // Only ARAT: no thermal sensor, HWP, APERF/MPERF or energy bias (their MSRs are not emulated).
      r = CpuidRegisters{k06EaxArat, 0, 0, 0};
      break;
    case kLeafStructuredFeatures:
      if (subleaf != 0) break;
      r.ecx &= ~(k07EcxWaitpkg | k07EcxLa57);
      if (!offer.rdtscp) r.ecx &= ~k07EcxRdpid;
      if (!offer.invpcid) r.ebx &= ~k07EbxInvpcid;
      r.ebx &= ~kCpuid07EbxTscAdjust;
      if (offer.tsc_adjust) r.ebx |= kCpuid07EbxTscAdjust;
      break;
    case kLeafPmu:
    case kLeafSvmFeatures:
      r = CpuidRegisters{};
      break;
    case kLeafXsave:
      if (!offer.xsave) {
        r = CpuidRegisters{};
      } else if (subleaf == 0) {
        // Supported XCR0 bits: what guests may enable; EBX the area for the guest's XCR0, ECX for
        // every component guests may enable.
        r.eax &= static_cast<uint32_t>(offer.guest_xcr0);
        r.edx &= static_cast<uint32_t>(offer.guest_xcr0 >> 32);
        r.ebx = xsave_standard_size(inputs.xcr0, *offer.xstate_components);
        r.ecx = xsave_standard_size(offer.guest_xcr0, *offer.xstate_components);
      } else if (subleaf == 1) {
        // No XSAVES for guests: hide it and the IA32_XSS bits; EBX the compacted size for XCR0.
        r.eax &= ~kCpuidXsaveSubleaf1EaxXsaves;
        r.ebx = xsave_compacted_size(inputs.xcr0, *offer.xstate_components);
        r.ecx = 0;
        r.edx = 0;
      }
      break;
    case kLeafTscCrystal:
      // TSC = ECX (crystal Hz) * EBX / EAX; the crystal is the vlapic's bus clock.
      if (offer.frequency_leaves) {
        r = CpuidRegisters{1, offer.tsc_per_bus_clock, static_cast<uint32_t>(offer.tsc_hz / offer.tsc_per_bus_clock), 0};
      }
      break;
    case kLeafFrequency:
      // Base, maximum and bus (reference) frequency in MHz.
      if (offer.frequency_leaves) {
        const uint64_t tsc_mhz = offer.tsc_hz / 1'000'000;
        r = CpuidRegisters{static_cast<uint32_t>(tsc_mhz), static_cast<uint32_t>(tsc_mhz),
                           static_cast<uint32_t>(tsc_mhz / offer.tsc_per_bus_clock), 0};
      }
      break;
    case kLeafExtendedTopology:
    case kLeafV2ExtendedTopology:
      r.edx = offer.vcpu_id;  // this logical processor's x2APIC ID
      break;
    case kLeafExtendedFeatures:
      r.ecx &= ~k80000001EcxSvm;
      if (!offer.rdtscp) r.edx &= ~k80000001EdxRdtscp;
      break;
    default: break;
  }
  return r;
}

}  // namespace lantern::guest
