#include "guest/vlapic.h"

namespace lantern::guest {
namespace {

// LVT slots: CMCI (0x2F0), then timer..error (0x320-0x370).
constexpr size_t kLvtCmci = 0;  // the timer's slot, kLvtTimer, is in vlapic.h

// Writable bits per LVT (SDM 11.5.1 Figure 11-8): vector 7:0, delivery mode 10:8, polarity 13,
// trigger mode 15, mask 16, timer mode 18:17. Delivery status (12) and remote IRR (14) are RO.
constexpr uint32_t kLvtWritable[] = {
    0x000107FF,  // CMCI: vector, delivery mode, mask
    0x000700FF,  // timer: vector, mask, timer mode
    0x000107FF,  // thermal
    0x000107FF,  // performance counters
    0x0001A7FF,  // LINT0: + polarity, trigger mode
    0x0001A7FF,  // LINT1
    0x000100FF,  // error: vector, mask
};

// Register indices (offset >> 4, = MSR - 0x800), SDM Table 11-1 / 11-6.
constexpr uint32_t kIdxId = 0x02, kIdxVersion = 0x03, kIdxTpr = 0x08, kIdxApr = 0x09, kIdxPpr = 0x0A,
                   kIdxEoi = 0x0B, kIdxLdr = 0x0D, kIdxDfr = 0x0E, kIdxSvr = 0x0F, kIdxIsr = 0x10,
                   kIdxTmr = 0x18, kIdxIrr = 0x20, kIdxEsr = 0x28, kIdxCmci = 0x2F, kIdxIcrLow = 0x30,
                   kIdxIcrHigh = 0x31, kIdxLvtFirst = 0x32, kIdxLvtLast = 0x37, kIdxInitial = 0x38,
                   kIdxCurrent = 0x39, kIdxDivide = 0x3E, kIdxSelfIpi = 0x3F;

// ESR bits (SDM 11.5.3 Figure 11-9).
constexpr uint32_t kEsrSendIllegalVector = 1u << 5;
constexpr uint32_t kEsrReceiveIllegalVector = 1u << 6;

// ICR low writable bits (SDM 11.6.1 Figure 11-12): 11:0, level 14, trigger 15, shorthand 19:18.
constexpr uint32_t kIcrLowWritable = 0x000CCFFF;

}  // namespace

VirtualLapic::VirtualLapic(uint32_t apic_id, uint32_t tsc_per_bus_clock)
    : apic_id_(apic_id),
      tsc_per_bus_clock_(tsc_per_bus_clock == 0                   ? 1
                         : tsc_per_bus_clock > kMaxTscPerBusClock ? kMaxTscPerBusClock
                                                                  : tsc_per_bus_clock) {
  reset();
}

void VirtualLapic::reset() {
  // SDM 11.4.7.1 (state after power-up/reset): TPR/ISR/IRR/TMR/ICR/LDR/ESR 0, DFR all ones,
  // SVR 0xFF (software-disabled), LVTs masked, timer stopped.
  tpr_ = 0;
  xapic_ldr_ = 0;
  dfr_ = 0xFFFFFFFF;
  svr_ = 0xFF;
  isr_ = {};
  tmr_ = {};
  irr_ = {};
  esr_ = esr_pending_ = 0;
  icr_ = 0;
  lvt_.fill(kLvtMask);
  timer_initial_ = 0;
  timer_divide_ = 0;
  timer_armed_ = false;
  tsc_deadline_ = 0;
  ipi_.reset();
  level_eoi_.reset();
}

std::optional<uint8_t> VirtualLapic::highest(const Bits256& b) {
  for (int word = 7; word >= 0; --word) {
    if (b[word] == 0) continue;
    return static_cast<uint8_t>(word * 32 + 31 - __builtin_clz(b[word]));
  }
  return std::nullopt;
}

uint8_t VirtualLapic::ppr() const {
  // SDM 11.8.3.1: PPR = TPR if TPR[7:4] >= ISRV[7:4], else ISRV[7:4] << 4.
  uint32_t isrv = highest(isr_).value_or(0);
  if ((tpr_ & 0xF0) >= (isrv & 0xF0)) return static_cast<uint8_t>(tpr_);
  return static_cast<uint8_t>(isrv & 0xF0);
}

uint32_t VirtualLapic::ldr() const {
  if (!x2apic_) return xapic_ldr_;
  // SDM 11.12.10.2: cluster ID = x2APIC ID[19:4] in LDR 31:16, bit (ID[3:0]) in LDR 15:0.
  return ((apic_id_ >> 4) << 16) | (1u << (apic_id_ & 0xF));
}

bool VirtualLapic::accept_interrupt(uint8_t vector, bool level_triggered) {
  if (vector < 16) {  // SDM 11.5.3: vectors 0-15 are illegal; "receive illegal vector"
    esr_pending_ |= kEsrReceiveIllegalVector;
    return false;
  }
  if (!software_enabled()) return false;  // SDM 11.4.7.2
  set(irr_, vector);
  // SDM 11.8.4: TMR set for level-triggered, cleared for edge-triggered interrupts.
  if (level_triggered)
    set(tmr_, vector);
  else
    clear(tmr_, vector);
  return true;
}

std::optional<uint8_t> VirtualLapic::highest_deliverable() const {
  if (!software_enabled()) return std::nullopt;
  auto v = highest(irr_);
  if (!v) return std::nullopt;
  // SDM 11.8.3: delivered only when its priority class exceeds the PPR's class.
  if ((*v & 0xF0) <= (ppr() & 0xF0)) return std::nullopt;
  return v;
}

Result<void> VirtualLapic::acknowledge(uint8_t vector) {
  if (!test(irr_, vector))
    return make_error(ErrorCode::kInvalidState, "vlapic: vector not pending in IRR", vector);
  clear(irr_, vector);
  set(isr_, vector);
  return ok();
}

void VirtualLapic::do_eoi() {
  // SDM 11.8.5: EOI clears the highest-priority ISR bit; a level-triggered vector (TMR set) is
  // reported so the caller can broadcast the EOI to the IOAPIC.
  auto v = highest(isr_);
  if (!v) return;
  clear(isr_, *v);
  if (test(tmr_, *v)) level_eoi_ = *v;
}

std::optional<IpiRequest> VirtualLapic::take_ipi() {
  auto r = ipi_;
  ipi_.reset();
  return r;
}

std::optional<uint8_t> VirtualLapic::take_level_eoi() {
  auto r = level_eoi_;
  level_eoi_.reset();
  return r;
}

void VirtualLapic::send_ipi(uint64_t icr) {
  IpiRequest r;
  r.vector = static_cast<uint8_t>(icr & 0xFF);
  r.delivery_mode = static_cast<IpiDeliveryMode>((icr >> 8) & 7);
  r.logical_destination = (icr >> 11) & 1;
  r.level_assert = (icr >> 14) & 1;
  r.level_triggered = (icr >> 15) & 1;
  r.shorthand = static_cast<IpiShorthand>((icr >> 18) & 3);
  // SDM 11.6.1: xAPIC destination in ICR 63:56, x2APIC destination in ICR 63:32.
  r.destination = x2apic_ ? static_cast<uint32_t>(icr >> 32) : static_cast<uint32_t>(icr >> 56);
  r.source_apic_id = apic_id_;
  if ((r.delivery_mode == IpiDeliveryMode::kFixed || r.delivery_mode == IpiDeliveryMode::kLowestPriority) &&
      r.vector < 16) {
    esr_pending_ |= kEsrSendIllegalVector;  // SDM 11.5.3
    return;
  }
  if (r.shorthand == IpiShorthand::kSelf) {
    // SDM 11.6.1 (valid ICR combinations table): the self shorthand is valid with fixed delivery only; the
    // interrupt goes straight into this APIC's IRR. Other modes are dropped.
    if (r.delivery_mode == IpiDeliveryMode::kFixed) accept_interrupt(r.vector, r.level_triggered);
    return;
  }
  ipi_ = r;
}

void VirtualLapic::write_svr(uint32_t value) {
  // SDM 11.9 Figure 11-23: vector 7:0, enable 8, focus check 9 writable (EOI-broadcast
  // suppression, bit 12, only when version bit 24 says so: it does not).
  svr_ = value & 0x3FF;
  if (!software_enabled()) {
    // SDM 11.4.7.2: software disable sets the mask bit of every LVT.
    for (auto& l : lvt_) l |= kLvtMask;
  }
}

void VirtualLapic::write_lvt(size_t lvt, uint32_t value) {
  uint32_t old = lvt_[lvt];
  uint32_t v = (old & ~kLvtWritable[lvt]) | (value & kLvtWritable[lvt]);
  if (!software_enabled()) v |= kLvtMask;  // SDM 11.4.7.2: masks cannot be cleared
  if (lvt == kLvtTimer && ((v >> 17) & 3) == 3) v = (v & ~(3u << 17)) | (old & (3u << 17));
  lvt_[lvt] = v;
  if (lvt == kLvtTimer && ((old ^ v) & (3u << 17)) != 0) {
    // SDM 11.5.4.1: switching between TSC-deadline and the count modes disarms the timer.
    bool was_deadline = ((old >> 17) & 3) == 2, is_deadline = ((v >> 17) & 3) == 2;
    if (was_deadline != is_deadline) {
      timer_armed_ = false;
      timer_initial_ = 0;
      tsc_deadline_ = 0;
    }
  }
}

LapicTimerMode VirtualLapic::timer_mode() const {
  return static_cast<LapicTimerMode>((lvt_[kLvtTimer] >> 17) & 3);
}

uint64_t VirtualLapic::ticks_per_count() const {
  // SDM 11.5.4 Figure 11-10: divide value bits 3,1:0; 0b111 = 1, else 2^(value+1).
  uint32_t d = ((timer_divide_ & 8) >> 1) | (timer_divide_ & 3);
  uint64_t divisor = d == 7 ? 1 : (2ull << d);
  return divisor * tsc_per_bus_clock_;
}

void VirtualLapic::arm_count_timer(uint32_t initial) {
  // SDM 11.5.4: writing the initial count starts the timer; 0 stops it.
  timer_initial_ = initial;
  timer_armed_ = initial != 0;
  timer_fire_ = now_ + initial * ticks_per_count();
}

uint32_t VirtualLapic::current_count() const {
  // SDM 11.5.4: the count drops by one every divisor bus clocks; computed from the time left.
  if (timer_mode() == LapicTimerMode::kTscDeadline || !timer_armed_ || now_ >= timer_fire_) return 0;
  uint64_t tpc = ticks_per_count();
  return static_cast<uint32_t>((timer_fire_ - now_ + tpc - 1) / tpc);
}

uint64_t VirtualLapic::read_tsc_deadline() const {
  return timer_mode() == LapicTimerMode::kTscDeadline ? tsc_deadline_ : 0;
}

void VirtualLapic::write_tsc_deadline(uint64_t deadline) {
  if (timer_mode() != LapicTimerMode::kTscDeadline) return;  // SDM 11.5.4.1: ignored
  tsc_deadline_ = deadline;
  timer_armed_ = deadline != 0;  // writing 0 disarms
  timer_fire_ = deadline;
}

void VirtualLapic::set_time(uint64_t now_tsc) {
  if (now_tsc > now_) now_ = now_tsc;
}

uint32_t VirtualLapic::poll_timer(uint64_t now_tsc) {
  set_time(now_tsc);
  if (!timer_armed_ || now_ < timer_fire_) return 0;
  uint32_t expirations = 1;
  switch (timer_mode()) {
    case LapicTimerMode::kTscDeadline:
      tsc_deadline_ = 0;  // SDM 11.5.4.1: the MSR reads 0 once the timer fired
      timer_armed_ = false;
      break;
    case LapicTimerMode::kPeriodic: {
      // SDM 11.5.4: periodic mode reloads the current count from the initial count.
      uint64_t period = timer_initial_ * ticks_per_count();
      uint64_t missed = (now_ - timer_fire_) / period;
      expirations = static_cast<uint32_t>(missed + 1 > 0xFFFFFFFF ? 0xFFFFFFFF : missed + 1);
      timer_fire_ += (missed + 1) * period;
      break;
    }
    default:  // one-shot: the count stays at 0
      timer_armed_ = false;
      break;
  }
  uint32_t lvt = lvt_[kLvtTimer];
  if (!(lvt & kLvtMask)) accept_interrupt(static_cast<uint8_t>(lvt & 0xFF), false);
  return expirations;
}

Result<uint64_t> VirtualLapic::read_reg(uint32_t index) {
  if (index >= kIdxIsr && index < kIdxIsr + 8) return isr_[index - kIdxIsr];
  if (index >= kIdxTmr && index < kIdxTmr + 8) return tmr_[index - kIdxTmr];
  if (index >= kIdxIrr && index < kIdxIrr + 8) return irr_[index - kIdxIrr];
  if (index >= kIdxLvtFirst && index <= kIdxLvtLast) return lvt_[index - kIdxLvtFirst + 1];
  switch (index) {
    case kIdxId: return x2apic_ ? apic_id_ : (apic_id_ & 0xFF) << 24;  // SDM 11.4.6 / 11.12.5.1
    case kIdxVersion: return kVersion;
    case kIdxTpr: return tpr_;
    case kIdxPpr: return ppr();
    case kIdxLdr: return ldr();
    case kIdxSvr: return svr_;
    case kIdxEsr: return esr_;
    case kIdxCmci: return lvt_[kLvtCmci];
    case kIdxInitial: return timer_initial_;
    case kIdxCurrent: return current_count();
    case kIdxDivide: return timer_divide_;
    default: break;
  }
  if (x2apic_) {
    if (index == kIdxIcrLow) return icr_ & ~(1ull << 12);  // delivery status always idle
  } else {
    switch (index) {
      case kIdxApr: return 0;  // no arbitration in a vCPU
      case kIdxDfr: return dfr_;
      case kIdxIcrLow: return static_cast<uint32_t>(icr_);
      case kIdxIcrHigh: return static_cast<uint32_t>(icr_ >> 32);
      case kIdxEoi: return 0;  // xAPIC: EOI reads 0 (write-only in x2APIC)
      default: break;
    }
  }
  return make_error(ErrorCode::kInvalidArgument, "vlapic: read of reserved/write-only register", index);
}

Result<void> VirtualLapic::write_reg(uint32_t index, uint64_t value) {
  const uint32_t v32 = static_cast<uint32_t>(value);
  if (index >= kIdxLvtFirst && index <= kIdxLvtLast) {
    write_lvt(index - kIdxLvtFirst + 1, v32);
    return ok();
  }
  switch (index) {
    case kIdxTpr: tpr_ = v32 & 0xFF; return ok();  // SDM 11.8.3.1: bits 7:0
    case kIdxEoi:
      // SDM 11.12.1.2: in x2APIC mode a non-zero EOI write is #GP.
      if (x2apic_ && value != 0)
        return make_error(ErrorCode::kInvalidArgument, "vlapic: non-zero x2APIC EOI", value);
      do_eoi();
      return ok();
    case kIdxSvr: write_svr(v32); return ok();
    case kIdxEsr:
      if (x2apic_ && value != 0)
        return make_error(ErrorCode::kInvalidArgument, "vlapic: non-zero x2APIC ESR", value);
      // SDM 11.5.3: a write latches the errors seen since the last write.
      esr_ = esr_pending_;
      esr_pending_ = 0;
      return ok();
    case kIdxCmci: write_lvt(kLvtCmci, v32); return ok();
    case kIdxInitial:
      if (timer_mode() != LapicTimerMode::kTscDeadline) arm_count_timer(v32);  // 11.5.4.1
      return ok();
    case kIdxDivide: {
      // SDM 11.5.4 Figure 11-10: bits 0, 1, 3. A running count keeps its value and continues
      // at the new rate.
      uint32_t current = current_count();
      timer_divide_ = v32 & 0xB;
      if (timer_armed_ && timer_mode() != LapicTimerMode::kTscDeadline)
        timer_fire_ = now_ + current * ticks_per_count();
      return ok();
    }
    default: break;
  }
  if (x2apic_) {
    switch (index) {
      case kIdxIcrLow:
        icr_ = value & (0xFFFFFFFF00000000ull | kIcrLowWritable);
        send_ipi(icr_);
        return ok();
      case kIdxSelfIpi:
        // SDM 11.12.11: bits 7:0 vector; edge-triggered fixed interrupt to self.
        if (value > 0xFF)
          return make_error(ErrorCode::kInvalidArgument, "vlapic: SELF_IPI reserved bits", value);
        if (v32 < 16)
          esr_pending_ |= kEsrSendIllegalVector;
        else
          accept_interrupt(static_cast<uint8_t>(v32), false);
        return ok();
      default: break;
    }
    return make_error(ErrorCode::kInvalidArgument, "vlapic: write to read-only/reserved MSR", index);
  }
  switch (index) {
    case kIdxLdr: xapic_ldr_ = v32 & 0xFF000000; return ok();  // SDM 11.6.2.2: bits 31:24
    case kIdxDfr: dfr_ = v32 | 0x0FFFFFFF; return ok();        // SDM 11.6.2.2: model 31:28
    case kIdxIcrHigh:
      icr_ = (icr_ & 0xFFFFFFFFull) | (static_cast<uint64_t>(v32 & 0xFF000000) << 32);
      return ok();
    case kIdxIcrLow:
      // SDM 11.6.1: writing the low half sends the IPI.
      icr_ = (icr_ & 0xFFFFFFFF00000000ull) | (v32 & kIcrLowWritable);
      send_ipi(icr_);
      return ok();
    // Read-only registers: writes are ignored by an xAPIC.
    case kIdxId:
    case kIdxVersion:
    case kIdxApr:
    case kIdxPpr:
    case kIdxCurrent: return ok();
    default: break;
  }
  if (index >= kIdxIsr && index < kIdxIrr + 8) return ok();  // ISR/TMR/IRR are read-only
  return make_error(ErrorCode::kInvalidArgument, "vlapic: write to reserved register", index);
}

Result<uint64_t> VirtualLapic::read_msr(uint32_t msr) {
  if (!x2apic_ || msr < kMsrBase || msr > kMsrBase + 0xFF)
    return make_error(ErrorCode::kInvalidArgument, "vlapic: x2APIC MSR not accessible", msr);
  return read_reg(msr - kMsrBase);
}

Result<void> VirtualLapic::write_msr(uint32_t msr, uint64_t value) {
  if (!x2apic_ || msr < kMsrBase || msr > kMsrBase + 0xFF)
    return make_error(ErrorCode::kInvalidArgument, "vlapic: x2APIC MSR not accessible", msr);
  uint32_t index = msr - kMsrBase;
  // SDM 11.12.1.2: bits 63:32 are reserved in every x2APIC register except the ICR.
  if (index != kIdxIcrLow && (value >> 32) != 0)
    return make_error(ErrorCode::kInvalidArgument, "vlapic: reserved bits 63:32 set", msr);
  // ID, version, LDR, PPR, ISR/TMR/IRR, current count are read-only in x2APIC mode.
  if (index == kIdxId || index == kIdxVersion || index == kIdxLdr || index == kIdxPpr ||
      index == kIdxCurrent || (index >= kIdxIsr && index < kIdxIrr + 8))
    return make_error(ErrorCode::kInvalidArgument, "vlapic: write to read-only MSR", msr);
  return write_reg(index, value);
}

Result<uint32_t> VirtualLapic::read_mmio(uint32_t offset) {
  if (x2apic_ || offset > 0xFF0 || (offset & 0xF) != 0)
    return make_error(ErrorCode::kInvalidArgument, "vlapic: bad xAPIC MMIO access", offset);
  auto r = read_reg(offset >> 4);
  if (!r) return r.error();
  return static_cast<uint32_t>(*r);
}

Result<void> VirtualLapic::write_mmio(uint32_t offset, uint32_t value) {
  if (x2apic_ || offset > 0xFF0 || (offset & 0xF) != 0)
    return make_error(ErrorCode::kInvalidArgument, "vlapic: bad xAPIC MMIO access", offset);
  if ((offset >> 4) == kIdxSelfIpi)
    return make_error(ErrorCode::kInvalidArgument, "vlapic: SELF_IPI is x2APIC-only", offset);
  return write_reg(offset >> 4, value);
}

bool logical_destination_matches(uint32_t mda, uint32_t ldr, uint32_t dfr, bool x2apic) {
  if (x2apic) return (mda >> 16) == (ldr >> 16) && (mda & ldr & 0xffffu) != 0;
  const uint32_t logical_id = ldr >> 24;
  mda &= 0xffu;
  if (mda == 0xffu) return true;
  if ((dfr >> 28) == 0xfu) return (mda & logical_id) != 0;
  return (mda >> 4) == (logical_id >> 4) && (mda & logical_id & 0xfu) != 0;
}

void VirtualLapic::follow_apic_base(uint64_t apic_base) {
  if ((apic_base & kApicBaseEnable) == 0) {
    reset();
    x2apic_ = false;
  } else {
    x2apic_ = (apic_base & kApicBaseExtd) != 0;
  }
}

Result<uint64_t> next_apic_base(uint64_t current, uint64_t value, uint8_t max_phys_bits) {
  constexpr uint64_t kReservedLow = 0x2ffu;  // bits 7:0 and 9
  const uint64_t reserved = kReservedLow | ~((uint64_t{1} << max_phys_bits) - 1);
  if ((value & reserved) != 0) return make_error(ErrorCode::kInvalidArgument, "IA32_APIC_BASE: reserved bits");
  const bool enable = (value & kApicBaseEnable) != 0;
  const bool extd = (value & kApicBaseExtd) != 0;
  const bool was_enabled = (current & kApicBaseEnable) != 0;
  const bool was_x2apic = was_enabled && (current & kApicBaseExtd) != 0;
  if (extd && !enable) return make_error(ErrorCode::kInvalidArgument, "IA32_APIC_BASE: EXTD without EN");
  if (was_x2apic && enable && !extd) {
    return make_error(ErrorCode::kInvalidArgument, "IA32_APIC_BASE: x2APIC to xAPIC without disabling first");
  }
  if (!was_enabled && extd) return make_error(ErrorCode::kInvalidArgument, "IA32_APIC_BASE: disabled to x2APIC");
  return (value & (kApicBasePageMask | kApicBaseEnable | kApicBaseExtd)) | (current & kApicBaseBsp);
}

uint64_t ApicPageDevice::mmio_read(uint64_t offset, uint8_t width) {
  if (access_ != ApicPageAccess::kXapicRegisters) {
    return width >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * width)) - 1;  // nothing on the bus
  }
  const uint32_t in_register = static_cast<uint32_t>(offset & 0xf);
  if (in_register >= 4) return 0;  // bytes 4-15 of each 16-byte slot are reserved (Table 11-1)
  auto r = vlapic_.read_mmio(static_cast<uint32_t>(offset & 0xff0));
  if (!r) return 0;  // reserved registers read as 0
  const uint64_t value = *r >> (8 * in_register);
  return width >= 4 ? value : value & ((uint64_t{1} << (8 * width)) - 1);
}

void ApicPageDevice::mmio_write(uint64_t offset, uint8_t width, uint64_t value) {
  if (access_ != ApicPageAccess::kXapicRegisters || width != 4 || (offset & 0xf) != 0) return;
  (void)vlapic_.write_mmio(static_cast<uint32_t>(offset), static_cast<uint32_t>(value));
}

}  // namespace lantern::guest
