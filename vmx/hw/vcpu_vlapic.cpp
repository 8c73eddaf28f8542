// The vlapic side of VmxVcpu: the emulated local APIC (guest/vlapic.h) wired into the exit path.
//
//   RDMSR/WRMSR 0x800-0x8FF, 0x6E0 (IA32_TSC_DEADLINE), 0x1B (IA32_APIC_BASE): the core's MSR
//                             emulation (guest/msr_emulation.h) through VmxVcpu::MsrSeam; here
//                             the seam's physical-address width and the side effects of a write
//   EPT violation on the page at IA32_APIC_BASE: the instruction is fetched and decoded
//                             (guest/mmio_decode.h), RIP advanced; in xAPIC mode the register is
//                             read/written, with the APIC disabled or in x2APIC mode reads
//                             return all-ones and writes are dropped (guest::ApicPageDevice)
//   before every entry        posted IPIs -> IRR, the timer polled against the TSC, the highest
//                             deliverable vector injected (or an interrupt window requested), and
//                             the VMX preemption timer armed for the next timer deadline
//   HLT                       with RFLAGS.IF = 1 and an armed timer: the guest sleeps in the HLT
//                             activity state until the deadline (handled inside, Nothing)
//
// Kept apart from vcpu.cpp so the exit paths there only carry one-line hooks.
#include <atomic>

#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/log.h"
#include "kernel/core/time.h"
#include "guest/guest_page_walk.h"
#include "guest/hw/kernel_services.h"
#include "guest/nested_paging.h"
#include "kernel/lib/string.h"
#include "vmx/exit_qualification.h"
#include "vmx/hw/vcpu.h"
#include "vmx/hw/vcpu_msr_seam.h"
#include "vmx/hw/vmx_operation.h"
#include "guest/mmio_decode.h"
#include "vmx/vmx_controls.h"
#include "guest/xstate.h"

namespace lantern::vmx {
namespace {

using F32 = VmcsField32;
using FN = VmcsFieldNatural;

// The vlapic timer's bus clock: the TSC divided down to at most this rate.
constexpr uint64_t kNominalBusHz = 100'000'000;

constexpr uint64_t kCr0Pg = 1u << 31;  // SDM Vol. 3A 2.5
constexpr uint64_t kCr0Et = 1u << 4;   // SDM Vol. 3A 2.5 (the read shadow's reset value)
// RFLAGS bit 1 is reserved and always 1 (SDM Vol. 1 3.4.3).
constexpr uint64_t kRflagsReserved1 = 1u << 1;
constexpr uint8_t kVectorGeneralProtection = 13;
constexpr uint32_t kActivityActive = 0;  // SDM Vol. 3C 24.4.2
constexpr uint32_t kActivityHlt = 1;

uint8_t guest_max_phys_bits() {
  // CPUID.80000008H:EAX[7:0] (SDM Vol. 2A CPUID); 36 when the leaf is missing.
  if (cpu::cpuid(0x80000000).eax >= 0x80000008)
    return static_cast<uint8_t>(cpu::cpuid(0x80000008).eax & 0xff);
  return 36;
}

}  // namespace

void VmxVcpu::init_vlapic() {
  const uint64_t hz = time::tsc_hz();
  uint64_t ratio = hz / kNominalBusHz;
  if (ratio == 0) ratio = 1;
  if (ratio > guest::VirtualLapic::kMaxTscPerBusClock) ratio = guest::VirtualLapic::kMaxTscPerBusClock;
  vlapic_tsc_per_bus_clock_ = static_cast<uint32_t>(ratio);
  vlapic_ = guest::VirtualLapic(vcpu_id_, vlapic_tsc_per_bus_clock_);
  cpuid_cache_.clear();  // leaves 15H, 16H and 4000_0010H announce this rate
  // Power-up (SDM 11.4.4): enabled, xAPIC mode, default base; vCPU 0 is the bootstrap processor.
  apic_base_ = guest::kApicBaseDefault | guest::kApicBaseEnable | (vcpu_id_ == 0 ? guest::kApicBaseBsp : 0);
  publish_logical_id();
}

Result<void> VmxVcpu::join_group(VcpuGroup* group) {
  if (group == nullptr || vcpu_id_ >= VcpuGroup::kMaxVcpus) {
    return make_error(ErrorCode::kInvalidArgument, "vCPU id outside the VM's vCPU group", vcpu_id_);
  }
  VmxVcpu* expected = nullptr;
  if (!group->members[vcpu_id_].compare_exchange_strong(expected, this)) {
    return make_error(ErrorCode::kBusy, "another vCPU of the VM has this id", vcpu_id_);
  }
  group_ = group;
  return ok();
}

void VmxVcpu::leave_group() {
  if (group_ == nullptr) return;
  VmxVcpu* expected = this;
  (void)group_->members[vcpu_id_].compare_exchange_strong(expected, nullptr);
  group_ = nullptr;
}

void VmxVcpu::kick_owner() {
  // The wake-up IPI is a host interrupt: a running guest exits ("external-interrupt exiting",
  // SDM Vol. 3C 24.6.1) and a halted core wakes; either way the loop re-enters through run().
  const int32_t owner = bound_cpu_.load(std::memory_order_acquire);
  PerCpu* self = this_cpu_or_null();
  if (owner >= 0 && (self == nullptr || self->index != static_cast<uint32_t>(owner))) {
    if (PerCpu* target = cpu_by_index(static_cast<uint32_t>(owner)); target != nullptr) {
      apic::send_fixed_ipi(target->apic_id, interrupts::kVectorWakeup);
    }
  }
}

void VmxVcpu::post_interrupt(uint8_t vector, bool level_triggered) {
  posted_.post_interrupt(vector, level_triggered);
  attention_.fetch_or(kAttentionPosted, std::memory_order_release);
  kick_owner();
}

void VmxVcpu::post_init() {
  posted_.post_init();
  attention_.fetch_or(kAttentionPosted, std::memory_order_release);
  kick_owner();
}

void VmxVcpu::post_sipi(uint8_t vector) {
  posted_.post_sipi(vector);
  attention_.fetch_or(kAttentionPosted, std::memory_order_release);
  kick_owner();
}

Result<void> VmxVcpu::enter_wait_for_sipi() {
  ensure_host_xstate();
  // SDM 11.4.7.3: after INIT the local APIC is as after power-up except its ID (and, SDM
  // 11.12.5.1, x2APIC mode stays); SDM 9.4: the processor then waits for a SIPI with every
  // interrupt blocked. Modelled as the HLT activity state with no injection.
  const bool x2apic = vlapic_.x2apic_mode();
  vlapic_.reset();
  vlapic_.set_x2apic_mode(x2apic);
  publish_logical_id();
  posted_.clear_interrupts();
  {
    IrqSpinlockGuard guard(events_lock_);
    events_.clear();
  }
  arbiter_.reset();
  reinjection_.reset();
  TRY(vmcs_write(hw_, F32::VM_ENTRY_INTR_INFO_FIELD, 0));
  const uint32_t primary =
      primary_controls_ & ~(proc_based::kInterruptWindowExiting | proc_based::kNmiWindowExiting);
  if (primary != primary_controls_) {
    TRY(vmcs_write(hw_, F32::CPU_BASED_VM_EXEC_CONTROL, primary));
    primary_controls_ = primary;
  }
  requested_preemption_timer_ = 0;
  if ((pin_controls_ & pin_based::kActivatePreemptionTimer) != 0) TRY(apply_preemption_timer(0));
  // RFLAGS.IF stays 1 although nothing is injected while parked (the injection paths check
  // wait_for_sipi_): Bochs does not leave a guest's HLT for a host interrupt (external-interrupt
  // exiting) when the guest's IF is 0, and the SIPI's kick must make it exit.
  TRY(vmcs_write(hw_, FN::GUEST_RFLAGS, kRflagsReserved1 | guest::kRflagsIf));
  TRY(vmcs_write(hw_, F32::GUEST_INTERRUPTIBILITY_INFO, 0));
  TRY(vmcs_write(hw_, F32::GUEST_ACTIVITY_STATE, kActivityHlt));
  wait_for_sipi_ = true;
  return ok();
}

Result<void> VmxVcpu::start_from_sipi(uint8_t vector) {
  ensure_host_xstate();  // the guest's save area is reset below
  // SDM 9.4.4 / 8.4.4.1: the SIPI vector VV starts the processor in real mode at VV00:0000.
  GuestEntry entry;
  entry.mode = GuestMode::kRealMode;
  entry.cs_selector = static_cast<uint16_t>(vector << 8);
  entry.rip = 0;
  entry.rsp = 0;
  TRY(write_guest_state(entry));  // also active, RFLAGS = 2, nothing blocked
  TRY(vmcs_write(hw_, FN::CR0_READ_SHADOW, kCr0Et));
  TRY(vmcs_write(hw_, FN::CR4_READ_SHADOW, 0));
  regs_ = guest::GeneralRegisters{};
  guest_xcr0_ = guest::kXcr0Reset;
  (void)guest::init_guest_xsave_area(paging::phys_to_ptr<uint8_t>(guest_xstate_phys_), paging::kPageSize);
  pending_completion_ = PendingCompletion::kNone;
  wait_for_sipi_ = false;
  return ok();
}

Result<void> VmxVcpu::vlapic_before_entry() {
  // INIT/SIPI posted by other vCPUs (guest::PostedVcpuEvents::take_init_sipi: SIPI read first).
  if (posted_.init_or_sipi_pending()) {
    const guest::PostedVcpuEvents::InitSipi posted = posted_.take_init_sipi();
    if (posted.init) TRY(enter_wait_for_sipi());
    if (posted.sipi && wait_for_sipi_) TRY(start_from_sipi(*posted.sipi));
  }
  posted_.take_interrupts([this](uint8_t vector, bool level) { (void)vlapic_.accept_interrupt(vector, level); });
  // The vlapic counts in the guest's TSC (the host's + TSC_OFFSET; no TSC scaling).
  (void)vlapic_.poll_timer(guest_tsc());
  return ok();
}

Result<void> VmxVcpu::aim_preemption_timer() {
  if (!preemption_timer_allowed_) return ok();  // the timer is polled at the next exit instead
  // The VMX preemption timer counts down from its VMCS value at every entry, at TSC >> rate
  // (SDM Vol. 3C 25.5.1): aim it at the vlapic's next deadline, or the caller's own value if
  // that comes first. Rounded up so the exit is never early.
  uint32_t value = requested_preemption_timer_;
  const uint64_t deadline = vlapic_.next_deadline();
  if (deadline != guest::VirtualLapic::kNoDeadline) {
    const uint64_t now = guest_tsc();  // the deadline is in guest TSC; the timer counts the same ticks
    const uint8_t rate = capabilities()->preemption_timer_rate;
    uint64_t ticks = deadline > now ? ((deadline - now) >> rate) + 1 : 1;
    if (ticks > 0xffffffffu) ticks = 0xffffffffu;
    if (value == 0 || ticks < value) value = static_cast<uint32_t>(ticks);
  }
  if (return_backstop_ != 0 && !arbiter_.halted_in_guest() && (value == 0 || return_backstop_ < value)) {
    value = return_backstop_;
  }
  if (value != 0 || (pin_controls_ & pin_based::kActivatePreemptionTimer) != 0) {
    TRY(apply_preemption_timer(value));
  }
  return ok();
}

Result<std::optional<VmExit>> VmxVcpu::vlapic_on_hlt() {
  TRY(vlapic_before_entry());
  guest::HltContext context;
  context.guest_rflags = TRY(vmcs_read(hw_, FN::GUEST_RFLAGS));
  {
    IrqSpinlockGuard guard(events_lock_);
    context.queue_head = events_.peek();
  }
  context.vlapic_vector = vlapic_.highest_deliverable();
  context.vlapic_deadline = vlapic_.next_deadline();
  context.can_halt_in_guest = can_sleep_in_hlt();
  switch (arbiter_.on_guest_hlt(context)) {
    case guest::HltDecision::kResume:
      return std::optional<VmExit>{exits::Nothing{}};  // injected at the next entry: HLT returns
    case guest::HltDecision::kHaltInGuest:
      // Sleep inside VMX non-root until the timer deadline (the preemption timer is aimed at it
      // before the entry) or until an event is injected (a posted IPI, a queued event).
      TRY(vmcs_write(hw_, F32::GUEST_ACTIVITY_STATE, kActivityHlt));
      requested_preemption_timer_ = 0;
      return std::optional<VmExit>{exits::Nothing{}};
    case guest::HltDecision::kHaltOutside: break;
  }
  arbiter_.resume_from_hlt();  // the caller waits (exits::Halt) and runs the vCPU again
  return std::optional<VmExit>{};
}

uint8_t VmxVcpu::MsrSeam::physical_address_bits() { return guest_max_phys_bits(); }

// No EPT mapping (guest RAM) and no device window on the page: its accesses are EPT violations,
// which vlapic_mmio() answers at the vCPU's APIC base.
bool VmxVcpu::MsrSeam::apic_page_can_move_to(uint64_t page) {
  if (vcpu.vm_core_ != nullptr && vcpu.vm_core_->mmio.claims_any_of(page, paging::kPageSize)) return false;
  return !vcpu.ept_host_address(page).has_value();
}

void VmxVcpu::route_vlapic_side_effects() {
  MsrSeam seam{*this};
  guest::route_vlapic_side_effects(seam);
}

void VmxVcpu::publish_logical_id() {
  published_ldr_.store(vlapic_.ldr(), std::memory_order_relaxed);
  published_dfr_.store(vlapic_.x2apic_mode() ? 0xffffffffu : vlapic_.dfr(), std::memory_order_relaxed);
  published_x2apic_.store(vlapic_.x2apic_mode(), std::memory_order_release);
}

bool VmxVcpu::accepts_logical_destination(uint32_t mda) const {
  const bool x2apic = published_x2apic_.load(std::memory_order_acquire);
  return guest::logical_destination_matches(mda, published_ldr_.load(std::memory_order_relaxed),
                                     published_dfr_.load(std::memory_order_relaxed), x2apic);
}

void VmxVcpu::deliver_ipi(const guest::IpiRequest& ipi) {
  // The VM's vCPUs by APIC ID: this one, and the others of its group (guest::deliver_ipi).
  guest::deliver_ipi(ipi, vcpu_id_, vlapic_.x2apic_mode(), [this](uint32_t id) -> VmxVcpu* {
    if (id == vcpu_id_) return this;
    return group_ != nullptr ? group_->members[id].load() : nullptr;
  });
}

std::optional<uint64_t> VmxVcpu::ept_host_address(uint64_t gpa) const {
  // This vCPU's EPT (SDM Vol. 3C 29.3.2), walked by the builder that made it.
  const guest::NestedPageTableBuilder ept = guest::NestedPageTableBuilder::attach(
      guest::kernel_page_allocator(), guest::PageTableFormat::kEpt, eptp_ & guest::ept_entry::kAddressMask);
  const Result<guest::NestedTranslation> t = ept.translate(gpa);
  if (!t) return std::nullopt;
  return t->hpa;
}

// Calls copy(host_phys, offset, chunk) for each 4 KiB-page piece of [gpa, gpa + n) the EPT maps,
// in order; returns how many bytes that covered before the first unmapped byte.
template <typename Copy>
size_t VmxVcpu::for_each_guest_page(uint64_t gpa, size_t n, Copy copy) const {
  size_t done = 0;
  while (done < n) {
    const std::optional<uint64_t> host = ept_host_address(gpa + done);
    if (!host) return done;
    const size_t in_page = guest::kPageSize4K - ((gpa + done) & (guest::kPageSize4K - 1));
    const size_t chunk = n - done < in_page ? n - done : in_page;
    copy(*host, done, chunk);
    done += chunk;
  }
  return n;
}

Result<size_t> VmxVcpu::read_guest_physical(uint64_t gpa, uint8_t* out, size_t n) const {
  return for_each_guest_page(gpa, n, [out](uint64_t host, size_t offset, size_t chunk) {
    lib::mem_copy(out + offset, paging::phys_to_ptr<const uint8_t>(host), chunk);
  });
}

Result<size_t> VmxVcpu::write_guest_physical(uint64_t gpa, const uint8_t* in, size_t n) {
  return for_each_guest_page(gpa, n, [in](uint64_t host, size_t offset, size_t chunk) {
    lib::mem_copy(paging::phys_to_ptr<uint8_t>(host), in + offset, chunk);
  });
}

Result<uint64_t> VmxVcpu::EptGuestTables::read_u64(uint64_t gpa) const {
  uint8_t b[8];
  if (TRY(vcpu_.read_guest_physical(gpa, b, sizeof(b))) != sizeof(b)) {
    return make_error(ErrorCode::kNotFound, "guest page table outside guest RAM", gpa);
  }
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}

Result<uint32_t> VmxVcpu::EptGuestTables::read_u32(uint64_t gpa) const {
  return static_cast<uint32_t>(TRY(read_u64(gpa & ~7ull)) >> ((gpa & 4) * 8));
}

Result<guest::GuestPagingState> VmxVcpu::guest_paging_state() {
  const GuestLongModeState mode = TRY(long_mode_state());
  return guest::GuestPagingState{mode.cr0, TRY(vmcs_read(hw_, FN::GUEST_CR3)), mode.cr4, mode.efer};
}

Result<std::optional<VmExit>> VmxVcpu::vlapic_mmio(const ExitInfo& exit, uint64_t gpa, bool write) {
  const guest::ApicPageAccess access = guest::apic_page_access(apic_base_, gpa);
  if (access == guest::ApicPageAccess::kNotApicPage) {
    return std::optional<VmExit>{};  // not the APIC page: a nested page fault for the caller
  }
  const bool registers = access == guest::ApicPageAccess::kXapicRegisters;
  if (registers) vlapic_.set_time(guest_tsc());  // timer writes count from now; the current count reads it
  // A write's side effects (IPIs, a level EOI into the VM's I/O APIC) run host code.
  if (registers && write) ensure_host_xstate();
  guest::ApicPageDevice page(vlapic_, access);
  auto done = TRY(emulate_mmio_move(
      exit, write, page, gpa & 0xfff,
      "xAPIC MMIO: unsupported instruction (only MOV between a register or an immediate and memory)",
      "xAPIC MMIO: the decoded direction does not match the EPT violation"));
  if (registers && write) route_vlapic_side_effects();
  return done;
}

Result<std::optional<VmExit>> VmxVcpu::device_mmio(const ExitInfo& exit, uint64_t gpa, bool write) {
  uint64_t offset = 0;
  guest::MmioDevice* device = vm_core_ != nullptr ? vm_core_->mmio.device_at(gpa, &offset) : nullptr;
  if (device == nullptr) return std::optional<VmExit>{};  // no device there: a nested page fault
  ensure_host_xstate();  // devices are host code (guest/README.md)
  return emulate_mmio_move(
      exit, write, *device, offset,
      "device MMIO: unsupported instruction (only MOV between a register or an immediate and memory)",
      "device MMIO: the decoded direction does not match the EPT violation");
}

Result<std::optional<VmExit>> VmxVcpu::emulate_mmio_move(const ExitInfo& exit, bool write, guest::MmioDevice& device,
                                                         uint64_t offset, const char* unsupported,
                                                         const char* mismatch) {
  auto stop_with = [&](const char* why) -> Result<std::optional<VmExit>> { return stop(exit, why).error(); };
  // The faulting instruction: CS base + RIP (64-bit code: RIP alone, SDM Vol. 3A 3.4.4), through
  // the guest's own page tables when its paging is on.
  const uint64_t cs_base = TRY(vmcs_read(hw_, FN::GUEST_CS_BASE));
  const uint32_t cs_ar = TRY(vmcs_read(hw_, F32::GUEST_CS_AR_BYTES));
  const guest::CodeSize code_size = guest::code_size_of(true, (cs_ar & kArLong) != 0, (cs_ar & kArDefault32) != 0);
  const uint64_t linear = code_size == guest::CodeSize::k64 ? exit.rip : ((cs_base + exit.rip) & 0xffffffffu);
  const guest::GuestPagingState paging_state = TRY(guest_paging_state());
  const EptGuestTables tables(*this);
  // Byte by byte up to the end of each page: an instruction may cross into the next page.
  uint8_t bytes[guest::kMaxInstructionBytes] = {};
  size_t fetched = 0;
  while (fetched < sizeof(bytes)) {
    const uint64_t at = linear + fetched;
    auto gpa = guest::guest_linear_to_physical(at, paging_state, tables);
    if (!gpa) break;
    const size_t in_page = 0x1000 - static_cast<size_t>(at & 0xfff);
    const size_t want = in_page < sizeof(bytes) - fetched ? in_page : sizeof(bytes) - fetched;
    const size_t got = TRY(read_guest_physical(*gpa, bytes + fetched, want));
    fetched += got;
    if (got < want) break;
  }
  auto move = guest::decode_mmio_move(std::span<const uint8_t>(bytes, fetched), code_size);
  if (!move) return stop_with(unsupported);
  if (move->store != write) return stop_with(mismatch);
  // RSP lives in the VMCS, the other registers in regs_ (guest/general_registers.h).
  constexpr unsigned kRsp = static_cast<unsigned>(guest::Gpr::kRsp);
  const bool in_vmcs = move->gpr == kRsp;
  const uint64_t reg = move->immediate ? 0
                       : in_vmcs       ? TRY(vmcs_read(hw_, FN::GUEST_RSP))
                                       : TRY(regs_.get_reg_of_index(move->gpr));
  const uint64_t after = guest::perform_mmio_move(*move, device, offset, reg);
  if (!move->store) {
    if (in_vmcs) {
      TRY(vmcs_write(hw_, FN::GUEST_RSP, after));
    } else {
      TRY(regs_.set_reg_of_index(move->gpr, after));
    }
  }
  // EPT violations carry no instruction length (SDM Vol. 3C 27.2.5): the decoder's is used.
  ExitInfo decoded = exit;
  decoded.instruction_length = move->length;
  TRY(advance_rip(decoded));
  return std::optional<VmExit>{exits::Nothing{}};
}

}  // namespace lantern::vmx
