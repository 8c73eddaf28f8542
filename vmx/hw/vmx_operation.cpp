#include "vmx/hw/vmx_operation.h"

#include <atomic>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/spinlock.h"
#include "kernel/lib/string.h"
#include "vmx/hw/vmx_instructions.h"
#include "guest/hw/core_backend.h"
#include "guest/hw/xstate_hw.h"

namespace lantern::vmx {
namespace {

// CPUID.01H:ECX[5] = VMX (SDM Vol. 2A CPUID, Table 3-10; Vol. 3C 23.6 "Discovering Support
// for VMX").
constexpr uint32_t kCpuid1EcxVmx = 1u << 5;
// IA32_FEATURE_CONTROL (MSR 0x3A, SDM Vol. 4 Table 2-2; Vol. 3C 23.7 "Enabling and Entering
// VMX Operation"): bit 0 lock, bit 2 enable VMX outside SMX operation.
constexpr uint64_t kFeatureControlLock = 1u << 0;
constexpr uint64_t kFeatureControlVmxOutsideSmx = 1u << 2;
// CR4.VMXE, bit 13 (SDM Vol. 3A 2.5).
constexpr uint64_t kCr4Vmxe = 1u << 13;
// IA32_VMX_BASIC bits 30:0: VMCS revision identifier (SDM Vol. 3D A.1); the VMXON region's
// first 31 bits hold it too (SDM Vol. 3C 24.11.5).
constexpr uint32_t kRevisionIdMask = 0x7fffffff;

struct CoreState {
  uint64_t vmxon_region_phys = 0;
};
CoreState g_cores[kMaxCpus];
std::atomic<uint32_t> g_cores_in_vmx{0};
Spinlock g_capabilities_lock;
VmxCapabilities g_capabilities;
std::atomic<bool> g_capabilities_valid{false};
std::atomic<const char*> g_unavailable_reason{nullptr};
std::atomic<bool> g_unavailable_logged{false};

Result<void> unavailable(const char* reason, ErrorCode code, uint64_t detail) {
  g_unavailable_reason.store(reason);
  // One warning for the whole machine; the other cores say it at debug level.
  if (!g_unavailable_logged.exchange(true)) {
    LOG_WARN("vmx: unavailable: %s (detail 0x%llx); no guests will run", reason,
             static_cast<unsigned long long>(detail));
  } else {
    LOG_DEBUG("vmx: unavailable on this core: %s", reason);
  }
  return make_error(code, reason, detail);
}

void log_capabilities(const VmxCapabilities& c) {
  LOG_INFO("vmx: VMCS revision 0x%x, %u-byte regions, %s controls; EPT %s (2M %s, 1G %s, A/D %s, "
           "INVEPT %s), VPID %s, unrestricted guest %s, preemption timer %s (rate 2^%u), "
           "virtual NMIs %s, HLT activity %s",
           c.vmcs_revision_id, c.vmcs_region_bytes, c.true_controls ? "TRUE_*" : "legacy",
           c.ept ? "yes" : "no", c.ept_2m_pages ? "yes" : "no", c.ept_1g_pages ? "yes" : "no",
           c.ept_accessed_dirty ? "yes" : "no", c.invept.supported ? "yes" : "no",
           c.vpid ? "yes" : "no", c.unrestricted_guest ? "yes" : "no",
           c.preemption_timer ? "yes" : "no", c.preemption_timer_rate,
           c.virtual_nmis ? "yes" : "no", c.activity_hlt ? "yes" : "no");
}

// CR0/CR4 must honour IA32_VMX_CR0/CR4_FIXED0 (bits fixed to 1) and _FIXED1 (bits that may be
// 1) in VMX operation (SDM Vol. 3D A.7, A.8; Vol. 3C 23.8 "Restrictions on VMX Operation").
Result<void> apply_fixed_bits() {
  const uint64_t cr0_fixed0 = cpu::rdmsr(kMsrVmxCr0Fixed0);
  const uint64_t cr0_fixed1 = cpu::rdmsr(kMsrVmxCr0Fixed1);
  const uint64_t cr4_fixed0 = cpu::rdmsr(kMsrVmxCr4Fixed0);
  const uint64_t cr4_fixed1 = cpu::rdmsr(kMsrVmxCr4Fixed1);
  const uint64_t cr0 = (cpu::read_cr0() | cr0_fixed0) & cr0_fixed1;
  const uint64_t cr4 = (cpu::read_cr4() | cr4_fixed0 | kCr4Vmxe) & cr4_fixed1;
  if ((cr4 & kCr4Vmxe) == 0) {
    return make_error(ErrorCode::kUnsupported, "IA32_VMX_CR4_FIXED1 does not allow CR4.VMXE",
                      cr4_fixed1);
  }
  cpu::write_cr0(cr0);
  cpu::write_cr4(cr4);
  return ok();
}

}  // namespace

Result<void> enable_on_this_cpu() {
  cpu::InterruptsOff irq_off;
  PerCpu& me = this_cpu();
  if (me.index >= kMaxCpus) return make_error(ErrorCode::kInvalidArgument, "CPU index out of range", me.index);
  CoreState& core = g_cores[me.index];
  if (guest::this_core_backend() == guest::CoreBackend::kVmx) {
    return make_error(ErrorCode::kAlreadyExists, "this core is already in VMX operation");
  }

  if ((cpu::cpuid(1).ecx & kCpuid1EcxVmx) == 0) {
    return unavailable("CPUID.01H:ECX[5] (VMX) is 0: this CPU or emulator does not offer VMX",
                       ErrorCode::kUnsupported, 0);
  }
  const uint64_t feature_control = cpu::rdmsr(cpu::kMsrFeatureControl);
  if ((feature_control & kFeatureControlLock) != 0) {
    if ((feature_control & kFeatureControlVmxOutsideSmx) == 0) {
      return unavailable("IA32_FEATURE_CONTROL is locked with VMX outside SMX disabled (firmware setting)",
                         ErrorCode::kUnsupported, feature_control);
    }
  } else {
    cpu::wrmsr(cpu::kMsrFeatureControl, feature_control | kFeatureControlVmxOutsideSmx | kFeatureControlLock);
  }

  hw::KernelVmxHw hardware;
  auto caps = read_capabilities(hardware);
  if (!caps) {
    return unavailable("the VMX capability MSRs are inconsistent", caps.error().code, caps.error().detail);
  }
  g_capabilities_lock.lock();
  if (!g_capabilities_valid.load()) {
    g_capabilities = *caps;
    g_capabilities_valid.store(true);
    log_capabilities(g_capabilities);
  }
  const uint32_t first_revision = g_capabilities.vmcs_revision_id;
  g_capabilities_lock.unlock();
  if (caps->vmcs_revision_id != first_revision) {
    return unavailable("this core reports a different VMCS revision than the first one",
                       ErrorCode::kUnsupported, caps->vmcs_revision_id);
  }

  if (core.vmxon_region_phys == 0) {
    auto frame = memory::alloc_frame();
    if (!frame) return frame.error();
    core.vmxon_region_phys = *frame;
  }
  auto* region = paging::phys_to_ptr<uint32_t>(core.vmxon_region_phys);
  lib::mem_set(region, 0, paging::kPageSize);
  region[0] = caps->vmcs_revision_id & kRevisionIdMask;

  const uint64_t saved_cr0 = cpu::read_cr0();
  const uint64_t saved_cr4 = cpu::read_cr4();
  TRY(apply_fixed_bits());
  if (auto r = hw::vmxon(core.vmxon_region_phys); !r) {
    cpu::write_cr4(saved_cr4);
    cpu::write_cr0(saved_cr0);
    LOG_ERROR("vmx: cpu%u: VMXON failed: %s (VM-instruction error %llu)", me.index, r.error().message,
              static_cast<unsigned long long>(r.error().detail));
    return r.error();
  }
  // Drop any EPT-derived translations a previous owner of this core left (SDM Vol. 3C 28.4.3.1).
  if (caps->invept.supported && caps->invept.all_context) {
    if (auto r = hw::invept(hw::InveptType::kAllContext, 0); !r) {
      LOG_WARN("vmx: cpu%u: INVEPT all-context failed: %s", me.index, r.error().message);
    }
  }
  guest::enable_host_xstate_on_this_cpu();
  guest::set_this_core_backend(guest::CoreBackend::kVmx);
  const uint32_t n = g_cores_in_vmx.fetch_add(1) + 1;
  LOG_INFO("vmx: cpu%u in VMX root operation (VMXON region 0x%llx; %u core(s) so far)", me.index,
           static_cast<unsigned long long>(core.vmxon_region_phys), n);
  return ok();
}

uint32_t cores_in_vmx_operation() { return g_cores_in_vmx.load(); }

bool this_cpu_in_vmx_operation() { return guest::this_core_backend() == guest::CoreBackend::kVmx; }

const VmxCapabilities* capabilities() {
  return g_capabilities_valid.load() ? &g_capabilities : nullptr;
}

const char* unavailable_reason() {
  return g_cores_in_vmx.load() > 0 ? nullptr : g_unavailable_reason.load();
}

}  // namespace lantern::vmx
