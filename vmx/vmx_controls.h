// VM-execution, VM-exit and VM-entry control bits, and the allowed-0/allowed-1 adjustment
// every control word goes through before it is written to the VMCS.
//
// Bits: SDM Vol. 3C 24.6.1 (pin-based), 24.6.2 (primary, secondary and tertiary
// processor-based), 24.7.1 (VM-exit controls), 24.8.1 (VM-entry controls).
// Capability MSRs: SDM Vol. 3D Appendix A.1-A.5.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::vmx {

// ---- Capability MSRs (SDM Vol. 3D Appendix A, Table 2-2 of Vol. 4) ------------------------
inline constexpr uint32_t kMsrVmxBasic = 0x480;              // A.1
inline constexpr uint32_t kMsrVmxPinbasedCtls = 0x481;       // A.3.1
inline constexpr uint32_t kMsrVmxProcbasedCtls = 0x482;      // A.3.2
inline constexpr uint32_t kMsrVmxExitCtls = 0x483;           // A.4.1
inline constexpr uint32_t kMsrVmxEntryCtls = 0x484;          // A.5
inline constexpr uint32_t kMsrVmxMisc = 0x485;               // A.6
inline constexpr uint32_t kMsrVmxCr0Fixed0 = 0x486;          // A.7
inline constexpr uint32_t kMsrVmxCr0Fixed1 = 0x487;          // A.7
inline constexpr uint32_t kMsrVmxCr4Fixed0 = 0x488;          // A.8
inline constexpr uint32_t kMsrVmxCr4Fixed1 = 0x489;          // A.8
inline constexpr uint32_t kMsrVmxVmcsEnum = 0x48a;           // A.9
inline constexpr uint32_t kMsrVmxProcbasedCtls2 = 0x48b;     // A.3.3
inline constexpr uint32_t kMsrVmxEptVpidCap = 0x48c;         // A.10
inline constexpr uint32_t kMsrVmxTruePinbasedCtls = 0x48d;   // A.3.1
inline constexpr uint32_t kMsrVmxTrueProcbasedCtls = 0x48e;  // A.3.2
inline constexpr uint32_t kMsrVmxTrueExitCtls = 0x48f;       // A.4.1
inline constexpr uint32_t kMsrVmxTrueEntryCtls = 0x490;      // A.5
inline constexpr uint32_t kMsrVmxVmfunc = 0x491;             // A.11
inline constexpr uint32_t kMsrVmxProcbasedCtls3 = 0x492;     // A.3.4

// IA32_VMX_BASIC bit 55: the TRUE_* control MSRs exist and may report default1 bits as 0.
inline constexpr uint64_t kVmxBasicTrueControls = uint64_t{1} << 55;

// ---- Pin-based VM-execution controls (SDM Vol. 3C 24.6.1) ----------------------------------
namespace pin_based {
inline constexpr uint32_t kExternalInterruptExiting = 1u << 0;
inline constexpr uint32_t kNmiExiting = 1u << 3;
inline constexpr uint32_t kVirtualNmis = 1u << 5;
inline constexpr uint32_t kActivatePreemptionTimer = 1u << 6;
inline constexpr uint32_t kProcessPostedInterrupts = 1u << 7;
// Bits 1, 2, 4 are default1 (SDM Vol. 3D A.3.1).
inline constexpr uint32_t kDefault1 = 0x00000016;
}  // namespace pin_based

// ---- Primary processor-based VM-execution controls (SDM Vol. 3C 24.6.2) --------------------
namespace proc_based {
inline constexpr uint32_t kInterruptWindowExiting = 1u << 2;
inline constexpr uint32_t kUseTscOffsetting = 1u << 3;
inline constexpr uint32_t kHltExiting = 1u << 7;
inline constexpr uint32_t kInvlpgExiting = 1u << 9;
inline constexpr uint32_t kMwaitExiting = 1u << 10;
inline constexpr uint32_t kRdpmcExiting = 1u << 11;
inline constexpr uint32_t kRdtscExiting = 1u << 12;
inline constexpr uint32_t kCr3LoadExiting = 1u << 15;
inline constexpr uint32_t kCr3StoreExiting = 1u << 16;
inline constexpr uint32_t kActivateTertiaryControls = 1u << 17;
inline constexpr uint32_t kCr8LoadExiting = 1u << 19;
inline constexpr uint32_t kCr8StoreExiting = 1u << 20;
inline constexpr uint32_t kUseTprShadow = 1u << 21;
inline constexpr uint32_t kNmiWindowExiting = 1u << 22;
inline constexpr uint32_t kMovDrExiting = 1u << 23;
inline constexpr uint32_t kUnconditionalIoExiting = 1u << 24;
inline constexpr uint32_t kUseIoBitmaps = 1u << 25;
inline constexpr uint32_t kMonitorTrapFlag = 1u << 27;
inline constexpr uint32_t kUseMsrBitmaps = 1u << 28;
inline constexpr uint32_t kMonitorExiting = 1u << 29;
inline constexpr uint32_t kPauseExiting = 1u << 30;
inline constexpr uint32_t kActivateSecondaryControls = 1u << 31;
// Bits 1, 4-6, 8, 13-16, 26 are default1 (SDM Vol. 3D A.3.2).
inline constexpr uint32_t kDefault1 = 0x0401e172;
}  // namespace proc_based

// ---- Secondary processor-based VM-execution controls (SDM Vol. 3C 24.6.2) ------------------
namespace proc_based2 {
inline constexpr uint32_t kVirtualizeApicAccesses = 1u << 0;
inline constexpr uint32_t kEnableEpt = 1u << 1;
inline constexpr uint32_t kDescriptorTableExiting = 1u << 2;
inline constexpr uint32_t kEnableRdtscp = 1u << 3;
inline constexpr uint32_t kVirtualizeX2apicMode = 1u << 4;
inline constexpr uint32_t kEnableVpid = 1u << 5;
inline constexpr uint32_t kWbinvdExiting = 1u << 6;
inline constexpr uint32_t kUnrestrictedGuest = 1u << 7;
inline constexpr uint32_t kApicRegisterVirtualization = 1u << 8;
inline constexpr uint32_t kVirtualInterruptDelivery = 1u << 9;
inline constexpr uint32_t kPauseLoopExiting = 1u << 10;
inline constexpr uint32_t kRdrandExiting = 1u << 11;
inline constexpr uint32_t kEnableInvpcid = 1u << 12;
inline constexpr uint32_t kEnableVmFunctions = 1u << 13;
inline constexpr uint32_t kVmcsShadowing = 1u << 14;
inline constexpr uint32_t kEnableEnclsExiting = 1u << 15;
inline constexpr uint32_t kRdseedExiting = 1u << 16;
inline constexpr uint32_t kEnablePml = 1u << 17;
inline constexpr uint32_t kEptViolationVe = 1u << 18;
inline constexpr uint32_t kConcealVmxFromPt = 1u << 19;
inline constexpr uint32_t kEnableXsavesXrstors = 1u << 20;
inline constexpr uint32_t kPasidTranslation = 1u << 21;
inline constexpr uint32_t kModeBasedExecuteControl = 1u << 22;
inline constexpr uint32_t kSubPageWritePermissions = 1u << 23;
inline constexpr uint32_t kPtUsesGuestPhysicalAddresses = 1u << 24;
inline constexpr uint32_t kUseTscScaling = 1u << 25;
inline constexpr uint32_t kEnableUserWaitAndPause = 1u << 26;
inline constexpr uint32_t kEnablePconfig = 1u << 27;
inline constexpr uint32_t kEnableEnclvExiting = 1u << 28;
inline constexpr uint32_t kVmmBusLockDetection = 1u << 30;
inline constexpr uint32_t kInstructionTimeout = 1u << 31;
}  // namespace proc_based2

// ---- Tertiary processor-based VM-execution controls (SDM Vol. 3C 24.6.2, 64-bit) -----------
namespace proc_based3 {
inline constexpr uint64_t kLoadIwkeyExiting = uint64_t{1} << 0;
inline constexpr uint64_t kEnableHlat = uint64_t{1} << 1;
inline constexpr uint64_t kEptPagingWrite = uint64_t{1} << 2;
inline constexpr uint64_t kGuestPagingVerification = uint64_t{1} << 3;
inline constexpr uint64_t kIpiVirtualization = uint64_t{1} << 4;
inline constexpr uint64_t kVirtualizeIa32SpecCtrl = uint64_t{1} << 7;
}  // namespace proc_based3

// ---- Primary VM-exit controls (SDM Vol. 3C 24.7.1) ----------------------------------------
namespace exit_ctls {
inline constexpr uint32_t kSaveDebugControls = 1u << 2;
inline constexpr uint32_t kHostAddressSpaceSize = 1u << 9;
inline constexpr uint32_t kLoadIa32PerfGlobalCtrl = 1u << 12;
inline constexpr uint32_t kAcknowledgeInterruptOnExit = 1u << 15;
inline constexpr uint32_t kSaveIa32Pat = 1u << 18;
inline constexpr uint32_t kLoadIa32Pat = 1u << 19;
inline constexpr uint32_t kSaveIa32Efer = 1u << 20;
inline constexpr uint32_t kLoadIa32Efer = 1u << 21;
inline constexpr uint32_t kSavePreemptionTimer = 1u << 22;
inline constexpr uint32_t kClearIa32Bndcfgs = 1u << 23;
inline constexpr uint32_t kConcealVmxFromPt = 1u << 24;
inline constexpr uint32_t kClearIa32RtitCtl = 1u << 25;
inline constexpr uint32_t kClearIa32LbrCtl = 1u << 26;
inline constexpr uint32_t kClearUinv = 1u << 27;
inline constexpr uint32_t kLoadCetState = 1u << 28;
inline constexpr uint32_t kLoadPkrs = 1u << 29;
inline constexpr uint32_t kSaveIa32PerfGlobalCtrl = 1u << 30;
inline constexpr uint32_t kActivateSecondaryControls = 1u << 31;
// Bits 0-8, 10, 11, 13, 14, 16, 17 are default1 (SDM Vol. 3D A.4.1).
inline constexpr uint32_t kDefault1 = 0x00036dff;
}  // namespace exit_ctls

// ---- VM-entry controls (SDM Vol. 3C 24.8.1) -----------------------------------------------
namespace entry_ctls {
inline constexpr uint32_t kLoadDebugControls = 1u << 2;
inline constexpr uint32_t kIa32eModeGuest = 1u << 9;
inline constexpr uint32_t kEntryToSmm = 1u << 10;
inline constexpr uint32_t kDeactivateDualMonitor = 1u << 11;
inline constexpr uint32_t kLoadIa32PerfGlobalCtrl = 1u << 13;
inline constexpr uint32_t kLoadIa32Pat = 1u << 14;
inline constexpr uint32_t kLoadIa32Efer = 1u << 15;
inline constexpr uint32_t kLoadIa32Bndcfgs = 1u << 16;
inline constexpr uint32_t kConcealVmxFromPt = 1u << 17;
inline constexpr uint32_t kLoadIa32RtitCtl = 1u << 18;
inline constexpr uint32_t kLoadUinv = 1u << 19;
inline constexpr uint32_t kLoadCetState = 1u << 20;
inline constexpr uint32_t kLoadGuestIa32LbrCtl = 1u << 21;
inline constexpr uint32_t kLoadPkrs = 1u << 22;
// Bits 0-8 and 12 are default1 (SDM Vol. 3D A.5).
inline constexpr uint32_t kDefault1 = 0x000011ff;
}  // namespace entry_ctls

// ---- Adjustment (SDM Vol. 3D A.3-A.5) ------------------------------------------------------
// A capability MSR's low 32 bits are the allowed-0 settings (a 1 there means the control must
// be 1), its high 32 bits the allowed-1 settings (a 0 there means the control must be 0).
constexpr uint32_t allowed0_of(uint64_t capability_msr) {
  return static_cast<uint32_t>(capability_msr);
}
constexpr uint32_t allowed1_of(uint64_t capability_msr) {
  return static_cast<uint32_t>(capability_msr >> 32);
}

// Every bit of `desired` is required: returns desired | must-be-one bits, or kUnsupported
// (detail = the desired bits the CPU cannot set). kMalformed when the MSR is contradictory
// (a bit that must be 1 but may not be 1).
Result<uint32_t> adjust_controls(uint32_t desired, uint64_t capability_msr);

struct AdjustedControls {
  uint32_t value = 0;             // what to write to the VMCS
  uint32_t dropped_optional = 0;  // optional bits the CPU lacks (silently left out)
};
// `required` bits must be settable (else kUnsupported, detail = missing bits); `optional` bits
// are kept when the CPU allows them and reported in dropped_optional otherwise.
Result<AdjustedControls> adjust_controls(uint32_t required, uint32_t optional, uint64_t capability_msr);

// Tertiary controls have no allowed-0 half: IA32_VMX_PROCBASED_CTLS3 is a 64-bit allowed-1
// mask (SDM Vol. 3D A.3.4).
Result<uint64_t> adjust_tertiary_controls(uint64_t required, uint64_t optional, uint64_t capability_msr);

// Which MSRs report the pin-based, primary processor-based, exit and entry capabilities:
// the TRUE_* MSRs (0x48D-0x490) when IA32_VMX_BASIC bit 55 is set, else 0x481-0x484
// (SDM Vol. 3D A.2). The secondary controls always come from 0x48B.
struct ControlCapabilityMsrs {
  uint32_t pinbased;
  uint32_t procbased;
  uint32_t exit;
  uint32_t entry;
};
constexpr ControlCapabilityMsrs control_capability_msrs(uint64_t vmx_basic) {
  if ((vmx_basic & kVmxBasicTrueControls) != 0) {
    return {kMsrVmxTruePinbasedCtls, kMsrVmxTrueProcbasedCtls, kMsrVmxTrueExitCtls, kMsrVmxTrueEntryCtls};
  }
  return {kMsrVmxPinbasedCtls, kMsrVmxProcbasedCtls, kMsrVmxExitCtls, kMsrVmxEntryCtls};
}

}  // namespace lantern::vmx
