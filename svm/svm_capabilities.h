// SVM capability detection as a pure function of CPUID and VM_CR, so the host tests can feed it
// any CPU: the features, or the reason SVM is unavailable (the log and /system print it).
//
//   CPUID 8000_0000H:EAX      highest extended leaf (must reach 8000_000AH)
//   CPUID 8000_0001H:ECX[2]   SVM (APM Vol. 3 Appendix E.4.2; APM Vol. 2 15.4 "Enabling SVM")
//   CPUID 8000_000AH (APM Vol. 3 E.4.9): EAX[7:0] SVM revision, EBX number of ASIDs (NASID),
//     EDX features: 0 NP, 1 LbrVirt, 2 SVML, 3 NRIPS, 4 TscRateMsr, 5 VmcbClean, 6 FlushByAsid,
//     7 DecodeAssists, 10 PauseFilter, 12 PauseFilterThreshold, 13 AVIC, 15 V_VMSAVE_VMLOAD,
//     16 VGIF.
//   VM_CR (MSR C001_0114H, APM Vol. 2 15.30.1): bit 3 LOCK, bit 4 SVMDIS. SVMDIS = 1 means
//     EFER.SVME cannot be set; with LOCK = 1 only the firmware could clear it (15.4).
#pragma once

#include <cstdint>
#include <string_view>

namespace lantern::svm {

inline constexpr uint32_t kCpuidExtendedMax = 0x80000000;
inline constexpr uint32_t kCpuidExtendedFeatures = 0x80000001;
inline constexpr uint32_t kCpuidSvmFeatures = 0x8000000a;
inline constexpr uint32_t kCpuid80000001EcxSvm = 1u << 2;
inline constexpr uint32_t kMsrVmCr = 0xc0010114;    // APM 15.30.1
inline constexpr uint32_t kMsrVmHsavePa = 0xc0010117;  // APM 15.30.4
inline constexpr uint64_t kVmCrLock = 1u << 3;
inline constexpr uint64_t kVmCrSvmDisable = 1u << 4;
inline constexpr uint64_t kEferSvme = 1u << 12;  // APM Vol. 2 3.1.7 EFER.SVME

// CPUID 8000_000AH:EDX bits (APM Vol. 3 E.4.9).
namespace svm_feature {
inline constexpr uint32_t kNestedPaging = 1u << 0;
inline constexpr uint32_t kLbrVirtualization = 1u << 1;
inline constexpr uint32_t kSvmLock = 1u << 2;
inline constexpr uint32_t kNextRipSave = 1u << 3;
inline constexpr uint32_t kTscRateMsr = 1u << 4;
inline constexpr uint32_t kVmcbClean = 1u << 5;
inline constexpr uint32_t kFlushByAsid = 1u << 6;
inline constexpr uint32_t kDecodeAssists = 1u << 7;
inline constexpr uint32_t kPauseFilter = 1u << 10;
inline constexpr uint32_t kPauseFilterThreshold = 1u << 12;
inline constexpr uint32_t kAvic = 1u << 13;
inline constexpr uint32_t kVirtualVmsaveVmload = 1u << 15;
inline constexpr uint32_t kVgif = 1u << 16;
}  // namespace svm_feature

struct SvmCpuid {
  uint32_t max_extended_leaf = 0;      // 8000_0000H:EAX
  uint32_t ext_features_ecx = 0;       // 8000_0001H:ECX
  uint32_t svm_eax = 0, svm_ebx = 0, svm_edx = 0;  // 8000_000AH
};

struct SvmFeatures {
  uint8_t revision = 0;
  uint32_t asid_count = 0;  // NASID: ASIDs 1 .. asid_count-1 are usable by guests (ASID 0 is the host)
  bool nested_paging = false;
  bool lbr_virtualization = false;
  bool next_rip_save = false;
  bool vmcb_clean = false;
  bool flush_by_asid = false;
  bool decode_assists = false;
  bool pause_filter = false;
  bool avic = false;
  bool vgif = false;
  uint32_t raw_edx = 0;
};

struct SvmDetection {
  bool available = false;
  // Why SVM cannot be used (a static string), or nullptr when available.
  const char* unavailable_reason = nullptr;
  SvmFeatures features;
};

// `vm_cr` is only looked at when CPUID reports SVM (reading the MSR otherwise raises #GP).
// Lantern needs nested paging, so a CPU without NP is reported unavailable with that reason.
SvmDetection detect_svm(const SvmCpuid& cpuid, uint64_t vm_cr);

}  // namespace lantern::svm
