// The MSR emulation of both backends: what an RDMSR or WRMSR exit of the guest gets. Vendor-neutral
// and host-tested (tests/host/guest_msr_emulation_test.cpp): it reaches the vCPU only through a
// seam (a template parameter, so the exit path has no virtual calls) that each backend implements
// over its own VMCS/VMCB and vCPU state.
//
// The core decides, the same for every backend:
//   x2APIC registers 0x800-0x8FF      the vlapic (SDM Vol. 3A 11.12.1.2); #GP outside x2APIC mode,
//                                      for reserved and write-only/read-only registers
//   IA32_APIC_BASE 0x1B               next_apic_base() (SDM Vol. 3A 11.4.4, 11.12.5), the vlapic follows;
//                                      the page moves (11.4.5) only where no RAM or device is
//   IA32_TSC_DEADLINE 0x6E0           the vlapic's deadline (SDM Vol. 3A 11.5.4.1), in guest TSC
//   IA32_TIME_STAMP_COUNTER 0x10,     GuestTsc (guest/platform_msrs.h) when the backend offsets the
//   IA32_TSC_ADJUST 0x3B              guest's TSC
//   IA32_TSC_AUX 0xC0000103           when the backend offers RDTSCP (SDM Vol. 4 Table 2-2: bits
//                                      63:32 reserved)
//   IA32_MISC_ENABLE, IA32_MCG_CAP/STATUS, IA32_MTRRCAP, IA32_MTRR_DEF_TYPE, IA32_BIOS_SIGN_ID
//                                      guest/platform_msrs.h
// then asks the backend for its own MSRs (EFER, XSS, PAT, ...), and gives what nobody emulates to
// the VM's UnknownMsrPolicy (guest/vm.h).
//
// The seam:
//   VirtualLapic& vlapic();
//   uint64_t& apic_base();                 IA32_APIC_BASE as the guest sees it
//   uint8_t physical_address_bits();       the width next_apic_base() checks the base against
//   bool apic_page_can_move_to(uint64_t page);   the guest-physical page is neither guest RAM nor
//                                          a device's: its accesses exit to the vCPU, so the APIC
//                                          page can answer there
//   uint64_t host_tsc();                   the host's TSC now
//   bool tsc_offsetting();                 the guest's TSC is the host's + an offset the core may move
//   GuestTsc tsc();  Result<void> set_tsc(const GuestTsc&);   the offset (the backend's TSC_OFFSET) and
//                                                             IA32_TSC_ADJUST
//   static constexpr bool kVlapicCountsGuestTsc;   the vlapic's clock is the guest's TSC (true) or the
//                                                  host's (false: a deadline is moved by the offset)
//   bool tsc_aux_offered();  uint64_t& tsc_aux();  void load_tsc_aux();   RDTSCP's IA32_TSC_AUX
//   uint64_t& misc_enable();  uint64_t& mtrr_def_type();
//   void before_vlapic_write();            what may be deliverable changes (the arbiter runs again)
//   void send_ipi(const IpiRequest&);  void level_eoi(uint8_t vector);  void logical_id_changed();
//   Result<MsrOutcome> backend_msr_read(uint32_t msr);
//   Result<MsrOutcome> backend_msr_write(uint32_t msr, uint64_t value);   kNotEmulated when not its own
//   static constexpr bool kReturnsUnknownMsrsToCaller;   the run loop can hand MsrRead/MsrWrite to
//                                                        its caller (otherwise kToCaller reads 0 and
//                                                        drops writes)
#pragma once

#include <cstdint>

#include "guest/platform_msrs.h"
#include "guest/vlapic.h"
#include "guest/vm.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

inline constexpr uint32_t kMsrIa32ApicBase = 0x1b;       // SDM Vol. 3A 11.4.4
inline constexpr uint32_t kMsrX2apicFirst = 0x800;       // SDM Vol. 3A 11.12.1.2, Table 11-6
inline constexpr uint32_t kMsrX2apicLast = 0x8ff;
inline constexpr uint32_t kMsrIa32TscAux = 0xc0000103;   // SDM Vol. 4 Table 2-2; APM Vol. 2 13.2.4

enum class MsrAction : uint8_t {
  kDone,         // the instruction completes (RDMSR: `value` into EDX:EAX); the RIP advances
  kGp,           // #GP(0), nothing changes, the RIP stays on the instruction (a fault)
  kToCaller,     // the run loop returns MsrRead/MsrWrite to its caller
  kNotEmulated,  // only from a backend's own hook and emulate_msr_*(): nobody here has it
};

struct MsrOutcome {
  MsrAction action = MsrAction::kNotEmulated;
  uint64_t value = 0;                // RDMSR's value with kDone
  const char* gp_reason = nullptr;  // with kGp, when there is more to say than "#GP"
};

constexpr MsrOutcome msr_done(uint64_t value = 0) { return MsrOutcome{MsrAction::kDone, value, nullptr}; }
constexpr MsrOutcome msr_gp(const char* reason = nullptr) { return MsrOutcome{MsrAction::kGp, 0, reason}; }

// The MSRs the core may emulate (some only when the backend offers them: the TSC ones, TSC_AUX).
constexpr bool core_emulates_msr(uint32_t msr) {
  if (msr - kMsrX2apicFirst <= kMsrX2apicLast - kMsrX2apicFirst) return true;
  switch (msr) {
    case kMsrIa32TimeStampCounter:
    case kMsrIa32TscAdjust:
    case kMsrIa32ApicBase:
    case kMsrIa32McgCap:
    case kMsrIa32McgStatus:
    case kMsrIa32MiscEnable:
    case kMsrIa32BiosSignId:
    case kMsrIa32MtrrCap:
    case kMsrIa32MtrrDefType:
    case VirtualLapic::kMsrTscDeadline:
    case kMsrIa32TscAux: return true;
    default: return false;
  }
}

// An MSR nobody emulates, by the VM's policy: kGp, kDone (reads 0, writes dropped) or kToCaller,
// which needs a run loop that can return it.
constexpr MsrAction unknown_msr_action(UnknownMsrPolicy policy, bool returns_to_caller) {
  if (policy == UnknownMsrPolicy::kInjectGp) return MsrAction::kGp;  // SDM Vol. 2B RDMSR/WRMSR: no such MSR
  if (policy == UnknownMsrPolicy::kToCaller && returns_to_caller) return MsrAction::kToCaller;
  return MsrAction::kDone;
}

// Whether an accepted IA32_APIC_BASE value has the enabled APIC's page (SDM Vol. 3A 11.4.4) away
// from its power-up base, which every guest platform keeps free of RAM and devices. A disabled
// APIC has no page.
constexpr bool apic_page_relocated(uint64_t apic_base) {
  return (apic_base & kApicBaseEnable) != 0 && (apic_base & kApicBasePageMask) != kApicBaseDefault;
}

// The IPI and the level-triggered EOI a vlapic write left, and its logical ID, to the seam.
template <class Seam>
void route_vlapic_side_effects(Seam& seam) {
  VirtualLapic& vlapic = seam.vlapic();
  if (auto ipi = vlapic.take_ipi()) seam.send_ipi(*ipi);
  if (auto vector = vlapic.take_level_eoi()) seam.level_eoi(*vector);
  seam.logical_id_changed();
}

namespace msr_detail {

// The vlapic's clock now: the guest's TSC, or the host's.
template <class Seam>
uint64_t vlapic_now(Seam& seam) {
  const uint64_t host = seam.host_tsc();
  if constexpr (Seam::kVlapicCountsGuestTsc) {
    return guest_tsc_at(seam.tsc(), host);
  } else {
    return host;
  }
}

// How far the guest's TSC runs ahead of the vlapic's clock: 0 when the vlapic counts the guest's.
template <class Seam>
uint64_t vlapic_clock_lag(Seam& seam) {
  if constexpr (Seam::kVlapicCountsGuestTsc) {
    return 0;
  } else {
    return seam.tsc().offset;
  }
}

}  // namespace msr_detail

// RDMSR of `msr` by the core, else by the backend: kDone, kGp or kNotEmulated.
template <class Seam>
Result<MsrOutcome> emulate_msr_read(Seam& seam, uint32_t msr) {
  if (msr - kMsrX2apicFirst <= kMsrX2apicLast - kMsrX2apicFirst) {
    VirtualLapic& vlapic = seam.vlapic();
    vlapic.set_time(msr_detail::vlapic_now(seam));  // the current-count register reads the clock
    const Result<uint64_t> r = vlapic.read_msr(msr);
    if (!r) return msr_gp(r.error().message);
    return msr_done(*r);
  }
  switch (msr) {
    case kMsrIa32ApicBase: return msr_done(seam.apic_base());
    case VirtualLapic::kMsrTscDeadline: {
      const uint64_t deadline = seam.vlapic().read_tsc_deadline();
      return msr_done(deadline == 0 ? 0 : deadline + msr_detail::vlapic_clock_lag(seam));  // 0: disarmed
    }
    case kMsrIa32TimeStampCounter:
      if (!seam.tsc_offsetting()) break;
      return msr_done(guest_tsc_at(seam.tsc(), seam.host_tsc()));  // what RDTSC reads
    case kMsrIa32TscAdjust:
      if (!seam.tsc_offsetting()) break;
      return msr_done(seam.tsc().adjust);
    case kMsrIa32TscAux:
      if (!seam.tsc_aux_offered()) break;
      return msr_done(seam.tsc_aux());
    case kMsrIa32MiscEnable: return msr_done(seam.misc_enable());
    case kMsrIa32BiosSignId: return msr_done(0);  // no microcode update is loaded
    case kMsrIa32McgCap:
    case kMsrIa32McgStatus: {
      const PlatformMsrAccess a = machine_check_msr(msr, false, 0);
      return a.gp ? msr_gp() : msr_done(a.value);
    }
    case kMsrIa32MtrrCap:
    case kMsrIa32MtrrDefType: {
      const PlatformMsrAccess a = mtrr_msr(msr, false, seam.mtrr_def_type(), 0);
      return a.gp ? msr_gp() : msr_done(a.value);
    }
    default: break;
  }
  return seam.backend_msr_read(msr);
}

// WRMSR of `value` to `msr` by the core, else by the backend: kDone, kGp or kNotEmulated.
template <class Seam>
Result<MsrOutcome> emulate_msr_write(Seam& seam, uint32_t msr, uint64_t value) {
  const bool x2apic = msr - kMsrX2apicFirst <= kMsrX2apicLast - kMsrX2apicFirst;
  if (x2apic || msr == kMsrIa32ApicBase || msr == VirtualLapic::kMsrTscDeadline) {
    // Any vlapic write may change what is deliverable (EOI, TPR, timer, IPIs, enable), and a
    // timer write counts from now.
    seam.before_vlapic_write();
    VirtualLapic& vlapic = seam.vlapic();
    vlapic.set_time(msr_detail::vlapic_now(seam));
    if (x2apic) {
      const Result<void> r = vlapic.write_msr(msr, value);
      if (!r) return msr_gp(r.error().message);
      route_vlapic_side_effects(seam);
    } else if (msr == VirtualLapic::kMsrTscDeadline) {
      // 0 disarms the timer (SDM Vol. 3A 11.5.4.1) whatever the offset.
      vlapic.write_tsc_deadline(value == 0 ? 0 : value - msr_detail::vlapic_clock_lag(seam));
    } else {
      // A disabled APIC loses its state (SDM Vol. 3A 11.4.3); EXTD switches the register view.
      const Result<uint64_t> next = next_apic_base(seam.apic_base(), value, seam.physical_address_bits());
      if (!next) return msr_gp(next.error().message);
      if (apic_page_relocated(*next) && !seam.apic_page_can_move_to(*next & kApicBasePageMask)) {
        // The page over RAM or a device would need its nested mapping taken away per vCPU.
        return msr_gp("IA32_APIC_BASE: the APIC page cannot move onto guest RAM or a device");
      }
      seam.apic_base() = *next;
      vlapic.follow_apic_base(*next);
      seam.logical_id_changed();
    }
    return msr_done();
  }
  switch (msr) {
    case kMsrIa32TimeStampCounter:
    case kMsrIa32TscAdjust: {
      if (!seam.tsc_offsetting()) break;
      // A write of either moves the TSC and IA32_TSC_ADJUST together (SDM Vol. 3B 18.17.3).
      const GuestTsc now = seam.tsc();
      TRY(seam.set_tsc(msr == kMsrIa32TimeStampCounter ? write_time_stamp_counter(now, seam.host_tsc(), value)
                                                       : write_tsc_adjust(now, value)));
      return msr_done();
    }
    case kMsrIa32TscAux:
      if (!seam.tsc_aux_offered()) break;
      if ((value >> 32) != 0) return msr_gp("IA32_TSC_AUX bits 63:32 are reserved");
      seam.tsc_aux() = value;
      seam.load_tsc_aux();
      return msr_done();
    case kMsrIa32MiscEnable: {
      const MiscEnableWrite w = evaluate_misc_enable_write(seam.misc_enable(), value);
      if (w.gp) return msr_gp("IA32_MISC_ENABLE reserved bits");
      seam.misc_enable() = w.value;
      return msr_done();
    }
    case kMsrIa32BiosSignId: return msr_done();  // no microcode update: dropped
    case kMsrIa32McgCap:
    case kMsrIa32McgStatus: return machine_check_msr(msr, true, value).gp ? msr_gp() : msr_done();
    case kMsrIa32MtrrCap:
    case kMsrIa32MtrrDefType: {
      const PlatformMsrAccess a = mtrr_msr(msr, true, seam.mtrr_def_type(), value);
      if (a.gp) return msr_gp();
      seam.mtrr_def_type() = a.value;
      return msr_done();
    }
    default: break;
  }
  return seam.backend_msr_write(msr, value);
}

// RDMSR/WRMSR as the guest gets it: the emulation above, then the VM's unknown-MSR policy.
template <class Seam>
Result<MsrOutcome> msr_read(Seam& seam, uint32_t msr, UnknownMsrPolicy policy) {
  const MsrOutcome outcome = TRY(emulate_msr_read(seam, msr));
  if (outcome.action != MsrAction::kNotEmulated) return outcome;
  return MsrOutcome{unknown_msr_action(policy, Seam::kReturnsUnknownMsrsToCaller), 0, nullptr};
}

template <class Seam>
Result<MsrOutcome> msr_write(Seam& seam, uint32_t msr, uint64_t value, UnknownMsrPolicy policy) {
  const MsrOutcome outcome = TRY(emulate_msr_write(seam, msr, value));
  if (outcome.action != MsrAction::kNotEmulated) return outcome;
  return MsrOutcome{unknown_msr_action(policy, Seam::kReturnsUnknownMsrsToCaller), 0, nullptr};
}

}  // namespace lantern::guest
