// SvmVcpu: starting from a loader's register state, starting over (a VM reset), the MSRs the
// platform emulates alike on both backends, interrupts, INIT and SIPI posted by other cores, the
// vlapic's IPIs, the xAPIC page and MMIO devices reached through NPF, and string port I/O.
// Kernel-only.
#include "guest/guest_page_walk.h"
#include "guest/hw/kernel_services.h"
#include "guest/nested_paging.h"
#include "guest/platform_msrs.h"
#include "guest/string_io.h"
#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/log.h"
#include "kernel/lib/string.h"
#include "svm/cr4_write.h"
#include "svm/event_injection.h"
#include "svm/exit_info.h"
#include "svm/hw/svm_guest_vcpu.h"
#include "svm/hw/svm_msr_seam.h"
#include "svm/hw/svm_operation.h"
#include "svm/svm_capabilities.h"
#include "svm/vmcb_controls.h"
#include "svm/vmcb_reset.h"
#include "guest/mmio_decode.h"

namespace lantern::svm {
namespace {

// Segment attributes in the VMCB's packed format (APM Vol. 2 15.5.1, Figure 15-4): bit 9 L,
// bit 10 D/B; an unusable segment is not present (P = 0).
constexpr uint16_t kAttribLong = 1u << 9;
constexpr uint16_t kAttribDefaultBig = 1u << 10;

uint16_t packed_attrib(const guest::SegmentState& s) { return s.usable ? guest::packed_descriptor_attributes(s) : 0; }

void load_segment(VmcbSegment& to, const guest::SegmentState& from) {
  to.selector = from.selector;
  to.attrib = packed_attrib(from);
  to.limit = from.limit;
  to.base = from.base;
}

constexpr uint64_t kRflagsDirection = 1u << 10;  // RFLAGS.DF (APM Vol. 2 3.1.6)
constexpr uint64_t kEferLma = 1u << 10;          // EFER.LMA, long mode active (APM Vol. 2 3.1.7)

// IA32_APIC_BASE at power-up (SDM Vol. 3A 11.4.4): base 0xFEE00000, EN (bit 11), BSP (bit 8).
constexpr uint64_t kApicBasePowerUp = 0xfee00000 | (1u << 11);
constexpr uint64_t kApicBaseBsp = 1u << 8;

using guest::kMsrIa32TscAux;  // APM Vol. 2 13.2.4 (RDTSCP)
constexpr uint32_t kMsrEfer = 0xc0000080;    // APM Vol. 2 3.1.7
// CPUID 8000_0001H:EDX[27] RDTSCP (APM Vol. 3 E.4.2): TSC_AUX exists.
constexpr uint32_t kCpuid80000001EdxRdtscp = 1u << 27;

bool cpu_has_tsc_aux() {
  return cpu::cpuid(0x80000000).eax >= kCpuidExtendedFeatures &&
         (cpu::cpuid(kCpuidExtendedFeatures).edx & kCpuid80000001EdxRdtscp) != 0;
}

// CPUID.(EAX=07H,ECX=0):ECX[31] PKS (SDM Vol. 2A CPUID): IA32_PKRS exists. The guest sees the
// CPU's leaf 07H ECX unchanged, so it may use PKS whenever the CPU has it.
bool cpu_has_pkrs() {
  return cpu::cpuid(0).eax >= 7 && (cpu::cpuid(7, 0).ecx & guest::kCpuid07EcxPks) != 0;
}

// INS/OUTS move at most this many elements per exit; a REP with more left re-enters at the same
// RIP (SDM Vol. 2B REP: the instruction may be interrupted between iterations).
constexpr uint64_t kStringIoElementsPerExit = 1024;

// Guest-physical memory as the guest's RAM block (guest-physical 0 .. bytes).
class RamGuestPhysical final : public guest::GuestPhysicalReader {
 public:
  RamGuestPhysical(uint64_t phys, uint64_t bytes) : phys_(phys), bytes_(bytes) {}
  Result<uint64_t> read_u64(uint64_t gpa) const override {
    uint64_t v = 0;
    TRY(copy_out(gpa, &v, sizeof v));
    return v;
  }
  Result<uint32_t> read_u32(uint64_t gpa) const override {
    uint32_t v = 0;
    TRY(copy_out(gpa, &v, sizeof v));
    return v;
  }
  uint8_t* host_byte(uint64_t gpa) const {
    return gpa < bytes_ ? paging::phys_to_ptr<uint8_t>(phys_ + gpa) : nullptr;
  }

 private:
  Result<void> copy_out(uint64_t gpa, void* out, size_t n) const {
    if (gpa >= bytes_ || bytes_ - gpa < n) return make_error(ErrorCode::kNotFound, "outside guest RAM", gpa);
    lib::mem_copy(out, paging::phys_to_ptr<const uint8_t>(phys_ + gpa), n);
    return ok();
  }
  uint64_t phys_;
  uint64_t bytes_;
};

// The guest's linear addresses through its own paging (when on) onto its RAM, byte by byte
// (an element of at most 4 bytes may cross a page).
class RamGuestLinear final : public guest::GuestLinearMemory {
 public:
  RamGuestLinear(const RamGuestPhysical& ram, const guest::GuestPagingState& paging) : ram_(ram), paging_(paging) {}
  Result<void> read(uint64_t linear, uint8_t* out, size_t n) override {
    for (size_t i = 0; i < n; ++i) out[i] = *TRY(byte_at(linear + i));
    return ok();
  }
  Result<void> write(uint64_t linear, const uint8_t* in, size_t n) override {
    for (size_t i = 0; i < n; ++i) *TRY(byte_at(linear + i)) = in[i];
    return ok();
  }

 private:
  Result<uint8_t*> byte_at(uint64_t linear) {
    const uint64_t gpa = TRY(guest::guest_linear_to_physical(linear, paging_, ram_));
    uint8_t* host = ram_.host_byte(gpa);
    if (host == nullptr) return make_error(ErrorCode::kNotFound, "string I/O buffer outside guest RAM", gpa);
    return host;
  }
  const RamGuestPhysical& ram_;
  const guest::GuestPagingState& paging_;
};

}  // namespace

void SvmVcpu::reset_emulated_state() {
  misc_enable_ = guest::kMiscEnableReset;
  mtrr_def_type_ = guest::kMtrrDefTypeReset;
  tsc_aux_ = 0;
  if (cpu_has_tsc_aux()) cpu::wrmsr(kMsrIa32TscAux, 0);  // RDTSCP reads it without an exit
  // IA32_PKRS is 0 at reset (SDM Vol. 3A Table 10-1). VMRUN and #VMEXIT neither load nor save it
  // and the host never sets CR4.PKS, so the guest's value lives in this core's register.
  if (cpu_has_pkrs()) cpu::wrmsr(guest::kMsrIa32Pkrs, 0);
  lib::mem_set(guest_fx_, 0, sizeof(guest_fx_));
  // The x87/SSE state after FNINIT with MXCSR at its reset value, as an FXSAVE image (SDM Vol. 1
  // Table 10-2: FCW at byte 0, MXCSR at byte 24; 8.1.5 FNINIT's FCW 037FH; 10.2.3 MXCSR 1F80H).
  const uint16_t fcw = 0x037f;
  const uint32_t mxcsr = 0x1f80;
  lib::mem_copy(guest_fx_ + 0, &fcw, sizeof(fcw));
  lib::mem_copy(guest_fx_ + 24, &mxcsr, sizeof(mxcsr));
}

Result<void> SvmVcpu::apply_entry_state(const guest::EntryState& state) {
  if (bound_cpu_ != static_cast<int32_t>(this_cpu().index)) {
    return make_error(ErrorCode::kInvalidState, "vCPU is not bound to this core");
  }
  VmcbSaveArea& s = vmcb_->save;
  load_segment(s.cs, state.cs);
  load_segment(s.ds, state.ds);
  load_segment(s.es, state.es);
  load_segment(s.fs, state.fs);
  load_segment(s.gs, state.gs);
  load_segment(s.ss, state.ss);
  load_segment(s.tr, state.tr);
  load_segment(s.ldtr, state.ldtr);
  s.gdtr = VmcbSegment{0, 0, state.gdtr.limit, state.gdtr.base};
  s.idtr = VmcbSegment{0, 0, state.idtr.limit, state.idtr.base};
  s.cpl = state.ss.dpl;  // the CPL is SS.DPL (APM Vol. 2 15.5.1)
  s.cr0 = state.cr0 | kResetCr0;
  s.cr3 = state.cr3;
  s.cr4 = state.cr4;
  s.efer = state.efer | kEferSvme;  // the guest's EFER.SVME must be 1 (APM 15.5.1)
  s.rflags = state.rflags | guest::kRflagsReserved1;
  s.rip = state.rip;
  s.rsp = state.rsp;
  s.rax = state.rax;
  gprs_ = SvmGuestGprs{};
  gprs_.rbx = state.rbx;
  gprs_.rcx = state.rcx;
  gprs_.rdx = state.rdx;
  gprs_.rsi = state.rsi;
  gprs_.rdi = state.rdi;
  gprs_.rbp = state.rbp;
  vmcb_->control.interrupt_shadow = 0;
  return ok();
}

Result<void> SvmVcpu::restart(uint64_t n_cr3, const guest::EntryState& state) {
  if (bound_cpu_ != static_cast<int32_t>(this_cpu().index)) {
    return make_error(ErrorCode::kInvalidState, "vCPU is not bound to this core");
  }
  stop_message_ = nullptr;
  reset_nmi_blocking();
  reinject_.reset();
  {
    IrqSpinlockGuard guard(events_lock_);
    events_.clear();
  }
  arbiter_.reset();
  attention_.store(0, std::memory_order_relaxed);
  posted_.clear();
  wait_for_sipi_ = false;
  vlapic_ = guest::VirtualLapic(vcpu_id_, tsc_per_bus_clock_);
  apic_base_ = kApicBasePowerUp | (vcpu_id_ == 0 ? kApicBaseBsp : 0);
  reset_emulated_state();

  VmcbControlArea& c = vmcb_->control;
  c.n_cr3 = n_cr3;
  // The old tables' translations may be cached under this ASID (APM 15.16.1): flush them.
  c.tlb_control = kTlbControlFlushAll;
  c.tsc_offset = 0;
  tsc_adjust_ = 0;  // IA32_TSC_ADJUST resets to 0 with the TSC (SDM Vol. 3B 18.17.3)
  c.eventinj = 0;
  c.virtual_interrupt_control = vintr::kMasking;
  c.intercept_vector_3 &= ~intercept3::kIret;
  VmcbSaveArea& s = vmcb_->save;
  s.dr6 = kResetDr6;
  s.dr7 = kResetDr7;
  s.g_pat = kPowerOnPat;
  s.cr2 = 0;
  TRY(apply_entry_state(state));
  publish_logical_id();
  publish_state();
  return ok();
}

void SvmVcpu::route_vlapic_side_effects() {
  MsrSeam seam{*this};
  guest::route_vlapic_side_effects(seam);
}

void SvmVcpu::publish_logical_id() {
  published_ldr_.store(vlapic_.ldr(), std::memory_order_relaxed);
  published_dfr_.store(vlapic_.x2apic_mode() ? 0xffffffffu : vlapic_.dfr(), std::memory_order_relaxed);
  published_x2apic_.store(vlapic_.x2apic_mode(), std::memory_order_release);
}

bool SvmVcpu::accepts_logical_destination(uint32_t mda) const {
  const bool x2apic = published_x2apic_.load(std::memory_order_acquire);
  return guest::logical_destination_matches(mda, published_ldr_.load(std::memory_order_relaxed),
                                          published_dfr_.load(std::memory_order_relaxed), x2apic);
}

uint64_t* SvmVcpu::gpr_slot(uint8_t index) {
  // Hardware register order (SDM Vol. 2A Table 2-2): RAX and RSP live in the VMCB.
  switch (index) {
    case 0: return &vmcb_->save.rax;
    case 1: return &gprs_.rcx;
    case 2: return &gprs_.rdx;
    case 3: return &gprs_.rbx;
    case 4: return &vmcb_->save.rsp;
    case 5: return &gprs_.rbp;
    case 6: return &gprs_.rsi;
    case 7: return &gprs_.rdi;
    case 8: return &gprs_.r8;
    case 9: return &gprs_.r9;
    case 10: return &gprs_.r10;
    case 11: return &gprs_.r11;
    case 12: return &gprs_.r12;
    case 13: return &gprs_.r13;
    case 14: return &gprs_.r14;
    case 15: return &gprs_.r15;
    default: return nullptr;
  }
}

size_t SvmVcpu::fetch_instruction(std::span<uint8_t> bytes, guest::CodeSize& code_size) const {
  if (ram_bytes_ == 0) return 0;
  const VmcbSaveArea& s = vmcb_->save;
  code_size = this->code_size();
  const bool sixty_four_bit = code_size == guest::CodeSize::k64;
  const guest::GuestPagingState paging{s.cr0, s.cr3, s.cr4, s.efer};
  const RamGuestPhysical ram(ram_phys_, ram_bytes_);
  RamGuestLinear memory(ram, paging);
  const uint64_t fetch_at = (sixty_four_bit ? 0 : s.cs.base) + s.rip;
  size_t fetched = 0;
  while (fetched < bytes.size() && memory.read(fetch_at + fetched, bytes.data() + fetched, 1)) ++fetched;
  return fetched;
}

Result<SvmRunOutcome> SvmVcpu::on_cr4_write(const Exit& exit) {
  uint8_t bytes[guest::kMaxInstructionBytes] = {};
  guest::CodeSize code_size = guest::CodeSize::k16;
  const size_t fetched = fetch_instruction(bytes, code_size);
  if (fetched == 0) return stop(exit, "MOV to CR4: the instruction is not in guest RAM");
  auto mov = decode_mov_to_cr(std::span<const uint8_t>(bytes, fetched), code_size);
  if (!mov || mov->cr != 4) return stop(exit, "a CR4 write by an instruction the SVM backend does not emulate");
  const uint64_t* reg = gpr_slot(mov->gpr);
  if (reg == nullptr) return stop(exit, "MOV to CR4 from a register that does not exist");
  // Outside 64-bit mode the operand is 32 bits (SDM Vol. 2B MOV CR: "the upper 32 bits are ignored").
  const uint64_t value = code_size == guest::CodeSize::k64 ? *reg : (*reg & 0xffffffffu);
  VmcbSaveArea& s = vmcb_->save;
  const Cr4Write w = evaluate_cr4_write(s.cr4, value, cr4_allowed_, s.cr0, s.cr3, (s.efer & kEferLma) != 0);
  if (w.general_protection) {
    TRY(inject_exception(kVectorGeneralProtection, 0));  // RIP stays on the faulting MOV
    return SvmRunOutcome::kHandled;
  }
  s.cr4 = value;
  if (w.flush_tlb) vmcb_->control.tlb_control = kTlbControlFlushAll;  // APM 15.16.2
  TRY(complete_emulated_instruction(s.rip + mov->length));
  return SvmRunOutcome::kHandled;
}

Result<SvmRunOutcome> SvmVcpu::on_mmio(const Exit& exit, guest::MmioDevice& device, uint64_t offset) {
  uint8_t bytes[guest::kMaxInstructionBytes] = {};
  guest::CodeSize code_size = guest::CodeSize::k16;
  const size_t fetched = fetch_instruction(bytes, code_size);
  if (fetched == 0) return stop(exit, "MMIO access: the instruction is not in guest RAM");
  auto move = guest::decode_mmio_move(std::span<const uint8_t>(bytes, fetched), code_size);
  if (!move) return stop(exit, "MMIO access by an instruction the SVM backend does not emulate");
  uint64_t* reg = move->immediate ? nullptr : gpr_slot(move->gpr);
  if (!move->immediate && reg == nullptr) return stop(exit, "MMIO access through a register that does not exist");
  const uint64_t after = guest::perform_mmio_move(*move, device, offset, reg != nullptr ? *reg : 0);
  if (!move->store) *reg = after;
  TRY(complete_emulated_instruction(vmcb_->save.rip + move->length));
  return SvmRunOutcome::kHandled;
}

Result<void> SvmVcpu::set_msr_intercept(MsrRange range, MsrAccess access, bool on) {
  return svm::set_msr_intercept(paging::phys_to_ptr<uint8_t>(msrpm_phys_), range, access, on);
}

void SvmVcpu::stop_outside_run(const char* reason) {
  stop_message_ = reason;
  publish_state();
}

void SvmVcpu::post_interrupt(uint8_t vector, bool level_triggered) {
  posted_.post_interrupt(vector, level_triggered);
  attention_.fetch_or(kAttentionPosted, std::memory_order_release);
  kick_owner();
}

void SvmVcpu::post_init() {
  posted_.post_init();
  attention_.fetch_or(kAttentionPosted, std::memory_order_release);
  kick_owner();
}

void SvmVcpu::post_sipi(uint8_t vector) {
  posted_.post_sipi(vector);
  attention_.fetch_or(kAttentionPosted, std::memory_order_release);
  kick_owner();
}

void SvmVcpu::enter_wait_for_sipi() {
  // After INIT the local APIC is as after power-up except its ID, and x2APIC mode stays (SDM
  // Vol. 3A 11.4.7.3, 11.12.5.1); the processor then waits for a SIPI (SDM 9.4).
  const bool x2apic = vlapic_.x2apic_mode();
  vlapic_ = guest::VirtualLapic(vcpu_id_, tsc_per_bus_clock_);
  vlapic_.set_x2apic_mode(x2apic);
  posted_.clear_interrupts();
  {
    IrqSpinlockGuard guard(events_lock_);
    events_.clear();
  }
  arbiter_.reset();
  vmcb_->control.eventinj = 0;
  reinject_.reset();
  reset_nmi_blocking();
  wait_for_sipi_ = true;
  publish_logical_id();
}

void SvmVcpu::start_from_sipi(uint8_t vector) {
  // The SIPI's real-mode start (SDM Vol. 3A 9.4.4, 11.6.1): CS selector vector << 8, base
  // vector << 12, IP 0; everything else at its INIT value (APM Vol. 2 14.1.3).
  VmcbSaveArea& s = vmcb_->save;
  for (VmcbSegment* seg : {&s.es, &s.ss, &s.ds, &s.fs, &s.gs}) *seg = VmcbSegment{0, 0x93, 0xffff, 0};
  s.cs = VmcbSegment{static_cast<uint16_t>(vector << 8), 0x9b, 0xffff, uint64_t{vector} << 12};
  s.gdtr = VmcbSegment{0, 0, 0xffff, 0};
  s.idtr = VmcbSegment{0, 0, 0xffff, 0};
  s.ldtr = VmcbSegment{0, 0x82, 0xffff, 0};
  s.tr = VmcbSegment{0, 0x8b, 0xffff, 0};
  s.cpl = 0;
  s.cr0 = kResetCr0;
  s.cr2 = 0;
  s.cr3 = 0;
  s.cr4 = 0;
  s.efer = kEferSvme;
  s.rflags = guest::kRflagsReserved1;
  s.rip = 0;
  s.rsp = 0;
  s.rax = 0;
  s.dr6 = kResetDr6;
  s.dr7 = kResetDr7;
  gprs_ = SvmGuestGprs{};
  vmcb_->control.interrupt_shadow = 0;
  wait_for_sipi_ = false;
}

void SvmVcpu::take_posted_interrupts() {
  if (posted_.init_or_sipi_pending()) {
    const guest::PostedVcpuEvents::InitSipi posted = posted_.take_init_sipi();
    if (posted.init) enter_wait_for_sipi();
    if (posted.sipi && wait_for_sipi_) start_from_sipi(*posted.sipi);  // a SIPI outside wait-for-SIPI is ignored
  }
  if (wait_for_sipi_) {
    posted_.clear_interrupts();  // every interrupt is blocked while it waits (SDM Vol. 3A 9.4)
    return;
  }
  posted_.take_interrupts([this](uint8_t vector, bool level) { (void)vlapic_.accept_interrupt(vector, level); });
}

// The legacy performance counters every AMD family 10h+ CPU has, PerfEvtSel0-3 (C001_0000h-
// C001_0003h) and PerfCtr0-3 (C001_0004h-C001_0007h) (APM Vol. 2 13.2.1; no CPUID bit hides
// them): no PMU is virtualized, so they read 0 and writes are dropped, as with KVM's PMU off.
constexpr uint32_t kMsrAmdLegacyPerfFirst = 0xc0010000;
constexpr uint32_t kMsrAmdLegacyPerfLast = 0xc0010007;
// Interrupt Pending Message (C001_0055h, BKDG for family 0Fh/10h "IntPend"): Linux's idle routine
// for AMD erratum 400 reads it for the C1E-on-CMP-halt bits (27:28). No C1E is emulated, so it
// reads 0 and writes are dropped.
constexpr uint32_t kMsrAmdInterruptPending = 0xc0010055;

bool SvmVcpu::MsrSeam::tsc_aux_offered() { return cpu_has_tsc_aux(); }

// No NPT mapping (guest RAM) and no device window on the page: its accesses are NPFs, which
// on_npf() answers at the vCPU's APIC base. nCR3 holds the PML4's address in bits 51:12 (APM
// 15.25.4).
bool SvmVcpu::MsrSeam::apic_page_can_move_to(uint64_t page) {
  if (vcpu.vm_.mmio.claims_any_of(page, paging::kPageSize)) return false;
  const guest::NestedPageTableBuilder npt = guest::NestedPageTableBuilder::attach(
      guest::kernel_page_allocator(), guest::PageTableFormat::kNpt, vcpu.vmcb_->control.n_cr3 & ~uint64_t{0xfff});
  return !npt.translate(page).has_value();
}

void SvmVcpu::MsrSeam::load_tsc_aux() { cpu::wrmsr(kMsrIa32TscAux, vcpu.tsc_aux_); }  // this core runs only this vCPU's guest

// The guest's EFER lives in the VMCB, SVME always set and never seen by the guest (APM 15.5.1).
Result<guest::MsrOutcome> SvmVcpu::backend_msr_read(uint32_t msr) {
  if (msr >= kMsrAmdLegacyPerfFirst && msr <= kMsrAmdLegacyPerfLast) return guest::msr_done(0);
  switch (msr) {
    case kMsrEfer: return guest::msr_done(vmcb_->save.efer & ~kEferSvme);
    case guest::kMsrIa32Pat: return guest::msr_done(vmcb_->save.g_pat);  // the guest's PAT under NPT (APM 15.25.8)
    case kMsrAmdInterruptPending: return guest::msr_done(0);
    case guest::kMsrIa32Pkrs:
      if (!cpu_has_pkrs()) break;
      return guest::msr_done(cpu::rdmsr(guest::kMsrIa32Pkrs));  // this core runs only this vCPU's guest
    default: break;
  }
  return guest::MsrOutcome{};
}

Result<guest::MsrOutcome> SvmVcpu::backend_msr_write(uint32_t msr, uint64_t value) {
  if (msr >= kMsrAmdLegacyPerfFirst && msr <= kMsrAmdLegacyPerfLast) return guest::msr_done();
  switch (msr) {
    case kMsrEfer:
      vmcb_->save.efer = value | kEferSvme;
      return guest::msr_done();
    case guest::kMsrIa32Pat:
      if (!guest::is_valid_pat(value)) return guest::msr_gp("IA32_PAT: a reserved memory type");
      vmcb_->save.g_pat = value;
      return guest::msr_done();
    case kMsrAmdInterruptPending: return guest::msr_done();
    case guest::kMsrIa32Pkrs:
      if (!cpu_has_pkrs()) break;
      if (!guest::is_valid_pkrs(value)) return guest::msr_gp("IA32_PKRS bits 63:32 are reserved");
      cpu::wrmsr(guest::kMsrIa32Pkrs, value);  // this core runs only this vCPU's guest
      return guest::msr_done();
    default: break;
  }
  return guest::MsrOutcome{};
}

Result<SvmRunOutcome> SvmVcpu::on_string_io(const Exit& exit) {
  const IoioInfo io = IoioInfo::decode(exit.exitinfo1);
  if (ram_bytes_ == 0) return stop(exit, "string port I/O (INS/OUTS) in a VM without RAM for it");
  if (io.width != 1 && io.width != 2 && io.width != 4) return stop(exit, "string port I/O of an invalid width");
  const VmcbSaveArea& s = vmcb_->save;
  const bool sixty_four_bit = (s.efer & kEferLma) != 0 && (s.cs.attrib & kAttribLong) != 0;
  // The address size from EXITINFO1 (A16/A32/A64, APM 15.10.2); where it names none, or 64 bits
  // outside 64-bit mode, the code segment's default (CS.D, APM Vol. 1 2.2.2) stands in.
  uint8_t address_bits = io.address_width;
  if (address_bits == 0 || (address_bits == 64 && !sixty_four_bit)) {
    address_bits = sixty_four_bit ? 64 : ((s.cs.attrib & kAttribDefaultBig) != 0 ? 32 : 16);
  }
  // INS stores through ES; OUTS loads through DS unless a prefix overrides it, which EXITINFO1
  // names only with decode assists (APM 15.10.2 SEG, 15.33). In 64-bit mode ES and DS have base 0.
  const SvmFeatures* f = features();
  const uint8_t segment = io.in ? 0 : ((f != nullptr && f->decode_assists) ? io.segment : 3);
  const VmcbSegment* bases[6] = {&s.es, &s.cs, &s.ss, &s.ds, &s.fs, &s.gs};
  if (segment > 5) return stop(exit, "string port I/O through a segment that does not exist");
  const uint64_t base = (sixty_four_bit && segment < 4) ? 0 : bases[segment]->base;
  const guest::StringIoOp op{.in = io.in,
                             .width = io.width,
                             .rep = io.rep,
                             .address_bits = address_bits,
                             .segment_base = base,
                             .port = io.port};
  guest::StringIoRegisters regs{.rsi = gprs_.rsi,
                                .rdi = gprs_.rdi,
                                .rcx = gprs_.rcx,
                                .direction_down = (s.rflags & kRflagsDirection) != 0};
  const guest::GuestPagingState paging{s.cr0, s.cr3, s.cr4, s.efer};
  const RamGuestPhysical ram(ram_phys_, ram_bytes_);
  RamGuestLinear memory(ram, paging);
  auto progress = guest::run_string_io(op, regs, memory, vm_.ports, kStringIoElementsPerExit);
  gprs_.rsi = regs.rsi;
  gprs_.rdi = regs.rdi;
  gprs_.rcx = regs.rcx;
  if (!progress) {
    return stop(exit, progress.error().code == ErrorCode::kNotFound
                          ? "string I/O (INS/OUTS): the buffer is not mapped by the guest or is outside guest RAM"
                          : "string I/O (INS/OUTS): the access could not be emulated");
  }
  if (progress->complete) TRY(skip_instruction(exit));  // EXITINFO2 holds the next RIP (APM 15.10.2)
  return SvmRunOutcome::kHandled;
}

}  // namespace lantern::svm
