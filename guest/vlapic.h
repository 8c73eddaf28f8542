// The emulated local APIC of one vCPU (SDM Vol. 3A Chapter 11 "Advanced Programmable Interrupt
// Controller (APIC)"). Portable: no hardware access, time is passed in explicitly as TSC values.
//
// Two register views of the same state: the xAPIC MMIO page (read_mmio/write_mmio, reached through
// EPT violations on the APIC page) and the x2APIC MSRs 0x800-0x8FF (read_msr/write_msr, reached
// through RDMSR/WRMSR exits). set_x2apic_mode() is called by the owner when the guest flips
// IA32_APIC_BASE.EXTD (bit 10, SDM 11.12.1); in x2APIC mode the MMIO view errors and vice versa.
//
// Interrupt flow the vCPU loop drives: accept_interrupt() (IRR), highest_deliverable() (what may be
// injected now), acknowledge() when it injects (IRR -> ISR), the guest's EOI write (ISR cleared).
// Side effects the caller must act on are collected after each write: take_ipi() (ICR writes other
// than self-IPIs) and take_level_eoi() (EOI of a level-triggered vector, to forward to the IOAPIC).
//
// Timer (SDM 11.5.4): set_time()/poll_timer() with the guest's TSC; next_deadline() tells the
// hypervisor when to arm its preemption timer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "guest/io_bus.h"
#include "guest/vm.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

// SDM 11.6.1, Figure 11-12: ICR bits 10:8.
enum class IpiDeliveryMode : uint8_t {
  kFixed = 0,
  kLowestPriority = 1,
  kSmi = 2,
  kNmi = 4,
  kInit = 5,
  kStartup = 6,
};

// SDM 11.6.1: ICR bits 19:18 (destination shorthand).
enum class IpiShorthand : uint8_t {
  kNone = 0,
  kSelf = 1,
  kAllIncludingSelf = 2,
  kAllExcludingSelf = 3,
};

// What a guest ICR write asks for. The caller routes it to the target vCPUs of the VM.
struct IpiRequest {
  IpiDeliveryMode delivery_mode = IpiDeliveryMode::kFixed;
  uint8_t vector = 0;  // ICR 7:0 (for SIPI: the start page)
  IpiShorthand shorthand = IpiShorthand::kNone;
  bool logical_destination = false;  // ICR bit 11
  uint32_t destination = 0;          // xAPIC: ICR 63:56; x2APIC: ICR 63:32
  bool level_assert = true;          // ICR bit 14
  bool level_triggered = false;      // ICR bit 15
  uint32_t source_apic_id = 0;
};

enum class LapicTimerMode : uint8_t {  // SDM 11.5.1, Figure 11-8: LVT timer bits 18:17
  kOneShot = 0,
  kPeriodic = 1,
  kTscDeadline = 2,
};

// Whether a local APIC with logical destination register `ldr` (and, in xAPIC mode, destination
// format register `dfr`) is among the logical destination `mda` of an IPI or an I/O APIC message:
// xAPIC flat model (DFR 31:28 = 1111b: the 8-bit MDA and LDR 31:24 share a set bit) or cluster
// model (0000b: MDA 7:4 = LDR 31:28, and MDA 3:0 shares a bit with LDR 27:24), with an all-ones
// MDA a broadcast (SDM Vol. 3A 11.6.2.2); x2APIC cluster: MDA 31:16 = LDR 31:16 and a shared bit
// in 15:0 (SDM 11.12.10.2).
bool logical_destination_matches(uint32_t mda, uint32_t ldr, uint32_t dfr, bool x2apic);

// Whether an IPI sent by the local APIC `source_id` reaches the one with ID `target_id` (SDM
// Vol. 3A 11.6.2): by its shorthand, else a broadcast (all ones: 0xFF in xAPIC mode, 0xFFFFFFFF
// in x2APIC mode, 11.12.9), a physical destination equal to the ID, or a logical destination
// the target accepts (`accepts_logical(mda)`, asked only for logical IPIs).
template <typename AcceptsLogical>
bool ipi_reaches(const IpiRequest& ipi, uint32_t source_id, uint32_t target_id, bool x2apic,
                 AcceptsLogical accepts_logical) {
  switch (ipi.shorthand) {
    case IpiShorthand::kSelf: return target_id == source_id;
    case IpiShorthand::kAllIncludingSelf: return true;
    case IpiShorthand::kAllExcludingSelf: return target_id != source_id;
    case IpiShorthand::kNone: break;
  }
  if (ipi.destination == (x2apic ? 0xffffffffu : 0xffu)) return true;
  if (!ipi.logical_destination) return target_id == ipi.destination;
  return accepts_logical(ipi.destination);
}

// Delivers an IPI from the vCPU `source_id` to the vCPUs of its VM: `target_of(id)` gives the
// vCPU with that ID (= APIC ID) or nullptr, for id 0 .. kMaxVcpusPerVm - 1. Each target reached
// (ipi_reaches()) gets, by delivery mode (SDM Vol. 3A 11.6.1): fixed and lowest priority its
// vector (post_interrupt(vector, level_triggered)), lowest priority only the first target found
// (11.6.2.4 lets the choice among equals be the hardware's), NMI post_nmi(), INIT post_init(),
// start-up post_sipi(vector); an INIT level de-assert reaches no vCPU, nor does SMI. The
// targets' post_*() calls must be safe from any core (each backend posts lock-free and kicks
// the target's owner). Both backends and every VM kind route their IPIs through this.
template <typename TargetOf>
void deliver_ipi(const IpiRequest& ipi, uint32_t source_id, bool x2apic, TargetOf target_of) {
  if (ipi.delivery_mode == IpiDeliveryMode::kInit && ipi.level_triggered && !ipi.level_assert) return;
  for (uint32_t id = 0; id < kMaxVcpusPerVm; ++id) {
    auto* target = target_of(id);
    if (target == nullptr) continue;
    const auto accepts = [target](uint32_t mda) { return target->accepts_logical_destination(mda); };
    if (!ipi_reaches(ipi, source_id, id, x2apic, accepts)) continue;
    switch (ipi.delivery_mode) {
      case IpiDeliveryMode::kFixed:
      case IpiDeliveryMode::kLowestPriority: target->post_interrupt(ipi.vector, ipi.level_triggered); break;
      case IpiDeliveryMode::kNmi: target->post_nmi(); break;
      case IpiDeliveryMode::kInit: target->post_init(); break;
      case IpiDeliveryMode::kStartup: target->post_sipi(ipi.vector); break;
      default: break;  // SMI: nothing to deliver it to
    }
    if (ipi.delivery_mode == IpiDeliveryMode::kLowestPriority) break;
  }
}

class VirtualLapic {
 public:
  // xAPIC MMIO offsets (SDM 11.4.1 Table 11-1); x2APIC MSR = 0x800 + (offset >> 4) (Table 11-6).
  static constexpr uint32_t kOffId = 0x20;
  static constexpr uint32_t kOffVersion = 0x30;
  static constexpr uint32_t kOffTpr = 0x80;
  static constexpr uint32_t kOffApr = 0x90;
  static constexpr uint32_t kOffPpr = 0xA0;
  static constexpr uint32_t kOffEoi = 0xB0;
  static constexpr uint32_t kOffLdr = 0xD0;
  static constexpr uint32_t kOffDfr = 0xE0;
  static constexpr uint32_t kOffSvr = 0xF0;
  static constexpr uint32_t kOffIsr = 0x100;  // 8 registers, 0x100-0x170
  static constexpr uint32_t kOffTmr = 0x180;  // 0x180-0x1F0
  static constexpr uint32_t kOffIrr = 0x200;  // 0x200-0x270
  static constexpr uint32_t kOffEsr = 0x280;
  static constexpr uint32_t kOffLvtCmci = 0x2F0;
  static constexpr uint32_t kOffIcrLow = 0x300;
  static constexpr uint32_t kOffIcrHigh = 0x310;
  static constexpr uint32_t kOffLvtTimer = 0x320;
  static constexpr uint32_t kOffLvtThermal = 0x330;
  static constexpr uint32_t kOffLvtPerf = 0x340;
  static constexpr uint32_t kOffLvtLint0 = 0x350;
  static constexpr uint32_t kOffLvtLint1 = 0x360;
  static constexpr uint32_t kOffLvtError = 0x370;
  static constexpr uint32_t kOffTimerInitial = 0x380;
  static constexpr uint32_t kOffTimerCurrent = 0x390;
  static constexpr uint32_t kOffTimerDivide = 0x3E0;
  static constexpr uint32_t kMsrBase = 0x800;
  static constexpr uint32_t kMsrIcr = 0x830;
  static constexpr uint32_t kMsrSelfIpi = 0x83F;      // SDM 11.12.11
  static constexpr uint32_t kMsrTscDeadline = 0x6E0;  // IA32_TSC_DEADLINE, SDM 11.5.4.1
  // SDM 11.4.8 Figure 11-7: version 0x14 (integrated APIC), max LVT entry 6 in bits 23:16.
  static constexpr uint32_t kVersion = 0x14 | (6u << 16);
  static constexpr uint64_t kNoDeadline = ~0ull;
  static constexpr uint32_t kMaxTscPerBusClock = 1u << 20;

  // tsc_per_bus_clock: TSC ticks per APIC bus clock (timer count at divide-by-1); clamped to
  // [1, kMaxTscPerBusClock] so deadlines cannot overflow 64 bits.
  explicit VirtualLapic(uint32_t apic_id, uint32_t tsc_per_bus_clock = 1);

  // The state after INIT / power-up (SDM 11.4.7.1): software-disabled, LVTs masked.
  void reset();

  uint32_t apic_id() const { return apic_id_; }
  bool x2apic_mode() const { return x2apic_; }
  void set_x2apic_mode(bool on) { x2apic_ = on; }
  // Follows an accepted IA32_APIC_BASE value (next_apic_base()): EN = 0 hardware-disables the
  // APIC, which loses its state (SDM Vol. 3A 11.4.3); otherwise EXTD picks the register view.
  void follow_apic_base(uint64_t apic_base);
  bool software_enabled() const { return (svr_ & kSvrEnable) != 0; }

  // x2APIC MSRs 0x800-0x8FF. Errors (the caller injects #GP(0)): not in x2APIC mode, reserved or
  // xAPIC-only registers (APR, DFR, ICR high), reads of write-only (EOI, SELF_IPI), writes to
  // read-only registers, non-zero bits 63:32 (except ICR), non-zero writes to EOI and ESR.
  Result<uint64_t> read_msr(uint32_t msr);
  Result<void> write_msr(uint32_t msr, uint64_t value);

  // The xAPIC page. Errors: x2APIC mode, offset beyond 0xFF0 or not 16-byte aligned (the caller
  // only passes aligned 4-byte accesses), reserved offsets. Writes to read-only registers are
  // ignored as on hardware.
  Result<uint32_t> read_mmio(uint32_t offset);
  Result<void> write_mmio(uint32_t offset, uint32_t value);

  // IA32_TSC_DEADLINE (SDM 11.5.4.1): reads 0 and ignores writes outside TSC-deadline mode.
  uint64_t read_tsc_deadline() const;
  void write_tsc_deadline(uint64_t deadline);

  // A fixed interrupt arriving (from an IPI, the IOAPIC, an LVT). false when refused: the APIC
  // is software-disabled (SDM 11.4.7.2), or vector < 16 (illegal, ESR bit 6, SDM 11.5.3).
  bool accept_interrupt(uint8_t vector, bool level_triggered);
  // Highest IRR vector whose priority class exceeds PPR's (SDM 11.8.3); none when disabled.
  std::optional<uint8_t> highest_deliverable() const;
  // True while any IRR bit is set: the run loop's cheap test of whether the vlapic needs
  // arbitration before the next entry.
  bool has_requests() const {
    uint32_t any = 0;
    for (uint32_t word : irr_) any |= word;
    return any != 0;
  }
  // The hypervisor injected `vector`: IRR -> ISR (SDM 11.8.4). kInvalidState if not in IRR.
  Result<void> acknowledge(uint8_t vector);

  uint8_t tpr() const { return static_cast<uint8_t>(tpr_); }
  // CR8 in 64-bit mode is TPR[7:4]; a write sets TPR[7:4] from CR8[3:0] and clears TPR[3:0]
  // (SDM Vol. 3A 11.8.6.1). The caller refuses CR8 values above 15 (#GP, SDM Vol. 2B MOV CR).
  uint64_t cr8() const { return (tpr_ >> 4) & 0xF; }
  void write_cr8(uint64_t value) { tpr_ = static_cast<uint32_t>((value & 0xF) << 4); }
  // The logical destination register (xAPIC: bits 31:24 as written; x2APIC: derived from the
  // ID, SDM 11.12.10.2) and the xAPIC destination format register (model in 31:28).
  uint32_t ldr() const;
  uint32_t dfr() const { return dfr_; }
  uint8_t ppr() const;  // SDM 11.8.3.1
  bool irr_bit(uint8_t v) const { return test(irr_, v); }
  bool isr_bit(uint8_t v) const { return test(isr_, v); }
  bool tmr_bit(uint8_t v) const { return test(tmr_, v); }

  // Side effects of the last write (cleared by the next read_/write_ call that produces one).
  std::optional<IpiRequest> take_ipi();
  std::optional<uint8_t> take_level_eoi();

  // Timer. set_time() moves the clock (never backwards); poll_timer() also fires an expired
  // timer: returns the number of expirations since the last poll (periodic expirations that
  // were missed coalesce into one IRR bit). next_deadline(): TSC of the next expiration that
  // raises an interrupt, or kNoDeadline.
  void set_time(uint64_t now_tsc);
  uint32_t poll_timer(uint64_t now_tsc);
  uint64_t next_deadline() const {  // inline: the event arbiter asks before every arbitrated entry
    if (!timer_armed_ || (lvt_[kLvtTimer] & kLvtMask) || !software_enabled()) return kNoDeadline;
    return timer_fire_;
  }
  LapicTimerMode timer_mode() const;

 private:
  using Bits256 = std::array<uint32_t, 8>;
  static constexpr uint32_t kSvrEnable = 1u << 8;  // SDM 11.9, Figure 11-23
  static constexpr uint32_t kLvtMask = 1u << 16;   // SDM 11.5.1 Figure 11-8
  static constexpr size_t kLvtTimer = 1;           // LVT slot of the timer register (0x320)
  static constexpr size_t kLvtCount = 7;           // CMCI, timer, thermal, perf, LINT0/1, error

  static bool test(const Bits256& b, uint8_t v) { return (b[v >> 5] >> (v & 31)) & 1; }
  static void set(Bits256& b, uint8_t v) { b[v >> 5] |= 1u << (v & 31); }
  static void clear(Bits256& b, uint8_t v) { b[v >> 5] &= ~(1u << (v & 31)); }
  static std::optional<uint8_t> highest(const Bits256& b);

  Result<uint64_t> read_reg(uint32_t index);
  Result<void> write_reg(uint32_t index, uint64_t value);
  void write_svr(uint32_t value);
  void write_lvt(size_t lvt, uint32_t value);
  void do_eoi();
  void send_ipi(uint64_t icr);
  uint64_t ticks_per_count() const;
  uint32_t current_count() const;
  void arm_count_timer(uint32_t initial);

  uint32_t apic_id_;
  uint32_t tsc_per_bus_clock_;
  bool x2apic_ = false;
  uint32_t tpr_ = 0;
  uint32_t xapic_ldr_ = 0;
  uint32_t dfr_ = 0xFFFFFFFF;
  uint32_t svr_ = 0xFF;
  Bits256 isr_{}, tmr_{}, irr_{};
  uint32_t esr_ = 0;
  uint32_t esr_pending_ = 0;
  uint64_t icr_ = 0;
  std::array<uint32_t, kLvtCount> lvt_{};
  uint32_t timer_initial_ = 0;
  uint32_t timer_divide_ = 0;
  uint64_t now_ = 0;
  bool timer_armed_ = false;
  uint64_t timer_fire_ = 0;  // TSC of the next expiration (count or deadline timer)
  uint64_t tsc_deadline_ = 0;
  std::optional<IpiRequest> ipi_;
  std::optional<uint8_t> level_eoi_;
};

// A WRMSR to IA32_APIC_BASE (SDM Vol. 3A 11.4.4: BSP bit 8, EXTD bit 10, EN bit 11, the page
// base in bits MAXPHYADDR-1:12): the register's new value, or why the write is a #GP. The
// transitions follow SDM 11.12.5, Figure 11-26 (EN=0 EXTD=1 is invalid; x2APIC -> xAPIC and
// disabled -> x2APIC are invalid); BSP is read-only here; the page base may move (11.4.5). The
// caller resets its vlapic when EN goes to 0 (SDM 11.4.3), sets its register view from EXTD,
// and decides whether its guest can have the page where it moves (msr_emulation.h). Portable.
inline constexpr uint64_t kApicBaseBsp = 1u << 8;
inline constexpr uint64_t kApicBaseExtd = 1u << 10;
inline constexpr uint64_t kApicBaseEnable = 1u << 11;
inline constexpr uint64_t kApicBaseDefault = 0xfee00000;  // SDM 11.4.1: the power-up base
inline constexpr uint64_t kApicBasePageMask = ~uint64_t{0xfff};  // the base field, bits MAXPHYADDR-1:12
Result<uint64_t> next_apic_base(uint64_t current, uint64_t value, uint8_t max_phys_bits);

// What a guest access to `gpa` meets at the APIC page of a vCPU whose IA32_APIC_BASE is
// `apic_base`. In xAPIC mode (EN set, EXTD clear) the page holds the APIC's registers (SDM Vol. 3A
// 11.4.1). A globally disabled APIC (EN clear) leaves the processor "functionally equivalent to an
// IA-32 processor without an on-chip APIC" (11.4.3), and in x2APIC mode the MMIO interface is not
// available and behaves as in the disabled state (11.12.2): the access reaches the bus, where
// nothing answers it.
enum class ApicPageAccess : uint8_t { kNotApicPage, kXapicRegisters, kNoDevice };
constexpr ApicPageAccess apic_page_access(uint64_t apic_base, uint64_t gpa) {
  // The base field is bits MAXPHYADDR-1:12; bits 11:0 hold BSP, EXTD and EN (11.4.4).
  if ((gpa & kApicBasePageMask) != (apic_base & kApicBasePageMask)) return ApicPageAccess::kNotApicPage;
  const bool xapic = (apic_base & (kApicBaseEnable | kApicBaseExtd)) == kApicBaseEnable;
  return xapic ? ApicPageAccess::kXapicRegisters : ApicPageAccess::kNoDevice;
}

// The APIC page of one vCPU as an MMIO device for the backends' MMIO exits, after
// apic_page_access() said it is the page (offset = gpa & 0xfff).
// - kXapicRegisters: the vlapic's registers. Software must use aligned 32-bit accesses (SDM
//   11.4.1); narrower reads inside a register's first four bytes return those bytes of it (as
//   KVM does), wider ones its value zero-extended; reserved offsets read 0; writes other than
//   aligned 32-bit ones, and writes the vlapic refuses (reserved registers, 11.5.3), are dropped.
// - kNoDevice: reads return all-ones and writes are dropped (an unclaimed bus access, as
//   guest::MmioBus answers one).
// The caller advances the vlapic's clock before a read and acts on its side effects after a
// write (take_ipi(), take_level_eoi()).
class ApicPageDevice final : public guest::MmioDevice {
 public:
  ApicPageDevice(VirtualLapic& vlapic, ApicPageAccess access) : vlapic_(vlapic), access_(access) {}
  uint64_t mmio_read(uint64_t offset, uint8_t width) override;
  void mmio_write(uint64_t offset, uint8_t width, uint64_t value) override;

 private:
  VirtualLapic& vlapic_;
  ApicPageAccess access_;
};

}  // namespace lantern::guest
