// A VMCB at the processor's reset state (APM Vol. 2 14.1.3 "Processor Initialization State"):
// real mode at a caller's RIP/RSP, the intercepts every Lantern SVM vCPU takes, and nested
// paging on. Both SVM vCPUs (the production `SvmVcpu` and the bring-up vCPU of the self-tests)
// start from here. Portable: host-tested in tests/host/svm_test.cpp.
#pragma once

#include <cstdint>

#include "svm/vmcb.h"

namespace lantern::svm {

// Segment attributes in the VMCB's packed format (APM 15.5.1 Figure 15-4: descriptor bits 47:40
// in 7:0 and 55:52 in 11:8): 0x9b present code segment, readable, accessed; 0x93 present data
// segment, writable, accessed; 0x82 LDT; 0x8b busy 32-bit TSS (APM Vol. 2 4.7, 4.8).
inline constexpr uint16_t kRealModeCodeAttrib = 0x9b;
inline constexpr uint16_t kRealModeDataAttrib = 0x93;
inline constexpr uint16_t kLdtAttrib = 0x82;
inline constexpr uint16_t kBusyTssAttrib = 0x8b;

// Reset values (APM Vol. 2 14.1.3): CR0.ET, RFLAGS bit 1, DR6 0xFFFF0FF0, DR7 0x400; the
// power-on PAT (APM Vol. 2 7.8.2).
inline constexpr uint64_t kResetCr0 = 1u << 4;
inline constexpr uint64_t kResetRflags = 1u << 1;
inline constexpr uint64_t kResetDr6 = 0xffff0ff0;
inline constexpr uint64_t kResetDr7 = 0x400;
inline constexpr uint64_t kPowerOnPat = 0x0007040600070406ull;

// What differs between the vCPUs that start from reset.
struct VmcbStart {
  uint64_t iopm_pa = 0;   // IOPM_BASE_PA (APM 15.10.1)
  uint64_t msrpm_pa = 0;  // MSRPM_BASE_PA (APM 15.11)
  uint32_t asid = 0;      // GUEST_ASID, never 0 for a guest (APM 15.16)
  uint64_t n_cr3 = 0;     // the nested page tables' root (APM 15.25.3)
  uint32_t extra_intercept_vector_4 = 0;  // beyond the SVM instructions and VMMCALL
  uint64_t rip = 0;
  uint64_t rsp = 0;
};

// Fills `vmcb` (control and save area; the caller zeroed the page) for a real-mode start:
// intercepts of INTR, NMI, INIT, VINTR, CPUID, HLT, I/O, MSRs and shutdown (APM Table B-1),
// the SVM instructions and VMMCALL, V_INTR_MASKING, a full TLB flush on the first VMRUN (the
// ASID may have served another guest on this core), nested paging, no clean bits; CS/DS/ES/FS/
// GS/SS at selector 0 with limit 0xFFFF, GDTR/IDTR limit 0xFFFF, LDTR and a busy TSS; CPL 0,
// EFER.SVME (APM 15.5.1: the guest's EFER.SVME must be 1 at VMRUN), the reset CR0, RFLAGS, DR6,
// DR7 and PAT.
void reset_vmcb_to_real_mode(Vmcb& vmcb, const VmcbStart& start);

}  // namespace lantern::svm
