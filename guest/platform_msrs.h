// Architectural MSRs the guest platform emulates the same way for every vCPU (SDM Vol. 4 Table 2-2
// "IA-32 Architectural MSRs"). Portable (host-tested); the backends own the per-vCPU values.
//
// IA32_MISC_ENABLE (MSR 0x1A0): a per-vCPU value that keeps the read-write bits a guest writes, reports no
// branch-trace store, no PEBS and no performance monitoring (guests get no PMU), and refuses the
// reserved bits. The read-write bits are stored and have no other effect: Limit CPUID Maxval does
// not cap CPUID leaf 0, XD Bit Disable does not hide NX, MONITOR FSM does not offer MONITOR.
#pragma once

#include <cstdint>

namespace lantern::guest {

inline constexpr uint32_t kMsrIa32MiscEnable = 0x1a0;

// Table 2-2, IA32_MISC_ENABLE.
inline constexpr uint64_t kMiscEnableFastStrings = 1ull << 0;        // R/W
inline constexpr uint64_t kMiscEnableThermalControl = 1ull << 3;     // R/W: automatic TCC
inline constexpr uint64_t kMiscEnablePerfMonAvailable = 1ull << 7;   // R/O
inline constexpr uint64_t kMiscEnableBtsUnavailable = 1ull << 11;    // R/O
inline constexpr uint64_t kMiscEnablePebsUnavailable = 1ull << 12;   // R/O
inline constexpr uint64_t kMiscEnableSpeedStep = 1ull << 16;         // R/W: EIST
inline constexpr uint64_t kMiscEnableMonitorFsm = 1ull << 18;        // R/W: MONITOR/MWAIT
inline constexpr uint64_t kMiscEnableLimitCpuidMaxval = 1ull << 22;  // R/W
inline constexpr uint64_t kMiscEnableXtprDisable = 1ull << 23;       // R/W
inline constexpr uint64_t kMiscEnableXdDisable = 1ull << 34;         // R/W

inline constexpr uint64_t kMiscEnableWritable =
    kMiscEnableFastStrings | kMiscEnableThermalControl | kMiscEnableSpeedStep | kMiscEnableMonitorFsm |
    kMiscEnableLimitCpuidMaxval | kMiscEnableXtprDisable | kMiscEnableXdDisable;
inline constexpr uint64_t kMiscEnableReadOnly =
    kMiscEnablePerfMonAvailable | kMiscEnableBtsUnavailable | kMiscEnablePebsUnavailable;

// At reset: fast strings on (as firmware leaves it), no BTS, no PEBS, no PMU.
inline constexpr uint64_t kMiscEnableReset =
    kMiscEnableFastStrings | kMiscEnableBtsUnavailable | kMiscEnablePebsUnavailable;

struct MiscEnableWrite {
  bool gp = false;     // a reserved bit is set: #GP(0), nothing changes
  uint64_t value = 0;  // the new value: the writable bits from the write, the read-only bits kept
};

constexpr MiscEnableWrite evaluate_misc_enable_write(uint64_t current, uint64_t value) {
  if ((value & ~(kMiscEnableWritable | kMiscEnableReadOnly)) != 0) return MiscEnableWrite{true, current};
  return MiscEnableWrite{false, (value & kMiscEnableWritable) | (current & kMiscEnableReadOnly)};
}

// Machine-check architecture (SDM Vol. 3B 16.3.1): the platform reports no error-reporting
// banks. IA32_MCG_CAP (0x179, read-only) reads 0: no banks, no IA32_MCG_CTL; IA32_MCG_STATUS
// (0x17A) reads 0 and takes only 0. The bank MSRs (0x400 on) do not exist and #GP.
inline constexpr uint32_t kMsrIa32McgCap = 0x179;
inline constexpr uint32_t kMsrIa32McgStatus = 0x17a;

struct PlatformMsrAccess {
  bool gp = false;     // #GP(0), nothing changes
  uint64_t value = 0;  // RDMSR: the value read
};

// RDMSR/WRMSR of IA32_MCG_CAP or IA32_MCG_STATUS; gp for any other MSR.
constexpr PlatformMsrAccess machine_check_msr(uint32_t msr, bool write, uint64_t value) {
  if (msr == kMsrIa32McgCap) return PlatformMsrAccess{write, 0};
  if (msr == kMsrIa32McgStatus) return PlatformMsrAccess{write && value != 0, 0};
  return PlatformMsrAccess{true, 0};
}

// Memory type range registers (SDM Vol. 3A 12.11): the platform has none to program. IA32_MTRRCAP
// (0xFE, read-only) reads 0: no variable ranges (VCNT 7:0), no fixed ranges (FIX bit 8), no
// write-combining (WC bit 10), no SMRR. IA32_MTRR_DEF_TYPE (0x2FF) keeps the default type (7:0,
// one of UC 0, WC 1, WT 4, WP 5, WB 6), FE (bit 10) and E (bit 11) a guest writes; it reads
// "enabled, write-back" at reset, which is what firmware leaves for all of RAM. The nested page
// tables decide the memory type (guest/nested_paging.h); these values only describe it.
inline constexpr uint32_t kMsrIa32MtrrCap = 0xfe;
inline constexpr uint32_t kMsrIa32MtrrDefType = 0x2ff;
inline constexpr uint64_t kMtrrDefTypeFixedEnable = 1ull << 10;
inline constexpr uint64_t kMtrrDefTypeEnable = 1ull << 11;
inline constexpr uint64_t kMtrrDefTypeMask = 0xffull;
inline constexpr uint64_t kMtrrTypeWriteBack = 6;
inline constexpr uint64_t kMtrrDefTypeReset = kMtrrDefTypeEnable | kMtrrTypeWriteBack;

constexpr bool is_valid_mtrr_type(uint64_t type) {
  return type == 0 || type == 1 || type == 4 || type == 5 || type == 6;  // SDM Vol. 3A Table 12-8
}

// RDMSR/WRMSR of IA32_MTRRCAP or IA32_MTRR_DEF_TYPE given the vCPU's current default-type value;
// on a write that is not refused, `value` is the new value to keep. gp for any other MSR.
constexpr PlatformMsrAccess mtrr_msr(uint32_t msr, bool write, uint64_t current, uint64_t value) {
  if (msr == kMsrIa32MtrrCap) return PlatformMsrAccess{write, 0};
  if (msr != kMsrIa32MtrrDefType) return PlatformMsrAccess{true, 0};
  if (!write) return PlatformMsrAccess{false, current};
  const uint64_t reserved = ~(kMtrrDefTypeMask | kMtrrDefTypeFixedEnable | kMtrrDefTypeEnable);
  if ((value & reserved) != 0 || !is_valid_mtrr_type(value & kMtrrDefTypeMask)) return PlatformMsrAccess{true, current};
  return PlatformMsrAccess{false, value};
}

// IA32_BIOS_SIGN_ID (0x8B, SDM Vol. 4 Table 2-2, Vol. 3A 10.11.7.1): the signature of the loaded
// microcode update in bits 63:32, which software reads after writing 0 and executing CPUID. No
// update is ever loaded here: reads return 0 and writes are accepted and dropped.
inline constexpr uint32_t kMsrIa32BiosSignId = 0x8b;

// IA32_PAT (0x277, SDM Vol. 3A 12.12.2; APM Vol. 2 7.8.1): eight 8-bit fields, each a memory
// type: UC 0, WC 1, WT 4, WP 5, WB 6, UC- 7. A WRMSR with any other value in a field (2, 3,
// 8-255) raises #GP.
inline constexpr uint32_t kMsrIa32Pat = 0x277;

constexpr bool is_valid_pat(uint64_t value) {
  for (unsigned i = 0; i < 8; ++i) {
    const uint64_t type = (value >> (8 * i)) & 0xff;
    if (type == 2 || type == 3 || type > 7) return false;
  }
  return true;
}

// IA32_PKRS (0x6E1, SDM Vol. 4 Table 2-2; Vol. 3A 4.6.2 "protection keys for supervisor
// pages"): exists when CPUID.(EAX=07H,ECX=0):ECX[31] (PKS) is 1. Bits 31:0 hold an access-disable
// and a write-disable bit for each of the 16 keys; bits 63:32 are reserved and a WRMSR that sets
// any of them raises #GP.
inline constexpr uint32_t kMsrIa32Pkrs = 0x6e1;
inline constexpr uint32_t kCpuid07EcxPks = 1u << 31;

constexpr bool is_valid_pkrs(uint64_t value) { return (value >> 32) == 0; }

// The time-stamp counter (SDM Vol. 3B 18.17): a guest's TSC reads the host's TSC plus its vCPU's
// offset (VMX TSC_OFFSET, SDM Vol. 3C 25.3; SVM TSC_OFFSET, APM Vol. 2 15.30.5). IA32_TSC_ADJUST
// (0x3B, SDM Vol. 3B 18.17.3, offered by CPUID.(EAX=07H,ECX=0):EBX[1]) reads 0 at reset and
// changes only through WRMSR: a WRMSR to it moves the TSC by the amount the adjust value changes,
// and a WRMSR to IA32_TIME_STAMP_COUNTER (0x10) moves IA32_TSC_ADJUST by the amount the TSC
// changes. Both backends keep a GuestTsc per vCPU and load `offset` into their TSC_OFFSET.
inline constexpr uint32_t kMsrIa32TimeStampCounter = 0x10;
inline constexpr uint32_t kMsrIa32TscAdjust = 0x3b;
inline constexpr uint32_t kCpuid07EbxTscAdjust = 1u << 1;

struct GuestTsc {
  uint64_t offset = 0;  // added to the host's TSC (modulo 2^64)
  uint64_t adjust = 0;  // IA32_TSC_ADJUST
};

// What the guest's RDTSC reads while the host's TSC reads `host_tsc`.
constexpr uint64_t guest_tsc_at(const GuestTsc& tsc, uint64_t host_tsc) { return host_tsc + tsc.offset; }

// WRMSR IA32_TIME_STAMP_COUNTER, `value`, while the host's TSC reads `host_tsc`.
constexpr GuestTsc write_time_stamp_counter(const GuestTsc& tsc, uint64_t host_tsc, uint64_t value) {
  const uint64_t delta = value - guest_tsc_at(tsc, host_tsc);
  return GuestTsc{tsc.offset + delta, tsc.adjust + delta};
}

// WRMSR IA32_TSC_ADJUST, `value`.
constexpr GuestTsc write_tsc_adjust(const GuestTsc& tsc, uint64_t value) {
  return GuestTsc{tsc.offset + (value - tsc.adjust), value};
}

}  // namespace lantern::guest
