#include "svm/svm_capabilities.h"

namespace lantern::svm {

SvmDetection detect_svm(const SvmCpuid& cpuid, uint64_t vm_cr) {
  SvmDetection d;
  if (cpuid.max_extended_leaf < kCpuidExtendedFeatures ||
      (cpuid.ext_features_ecx & kCpuid80000001EcxSvm) == 0) {
    d.unavailable_reason = "CPUID 8000_0001H:ECX[2] (SVM) is 0: this CPU or emulator does not offer SVM";
    return d;
  }
  if (cpuid.max_extended_leaf < kCpuidSvmFeatures) {
    d.unavailable_reason = "CPUID leaf 8000_000AH (SVM features) is missing";
    return d;
  }
  SvmFeatures& f = d.features;
  const uint32_t edx = cpuid.svm_edx;
  f.revision = static_cast<uint8_t>(cpuid.svm_eax & 0xff);  // EAX[7:0] SvmRev
  f.asid_count = cpuid.svm_ebx;                              // EBX NASID
  f.nested_paging = (edx & svm_feature::kNestedPaging) != 0;
  f.lbr_virtualization = (edx & svm_feature::kLbrVirtualization) != 0;
  f.next_rip_save = (edx & svm_feature::kNextRipSave) != 0;
  f.vmcb_clean = (edx & svm_feature::kVmcbClean) != 0;
  f.flush_by_asid = (edx & svm_feature::kFlushByAsid) != 0;
  f.decode_assists = (edx & svm_feature::kDecodeAssists) != 0;
  f.pause_filter = (edx & svm_feature::kPauseFilter) != 0;
  f.avic = (edx & svm_feature::kAvic) != 0;
  f.vgif = (edx & svm_feature::kVgif) != 0;
  f.raw_edx = edx;
  if ((vm_cr & kVmCrSvmDisable) != 0) {
    d.unavailable_reason = (vm_cr & kVmCrLock) != 0
                               ? "VM_CR.SVMDIS is set and locked: SVM is disabled by the firmware"
                               : "VM_CR.SVMDIS is set: SVM is disabled";
    return d;
  }
  if (!f.nested_paging) {
    d.unavailable_reason = "CPUID 8000_000AH:EDX[0] (nested paging) is 0: Lantern needs NPT";
    return d;
  }
  if (f.asid_count < 2) {
    d.unavailable_reason = "CPUID 8000_000AH:EBX (NASID) offers no guest ASID";
    return d;
  }
  d.available = true;
  return d;
}

}  // namespace lantern::svm
