#include "vmx/hw/vmx_user_vcpu.h"

#include <new>
#include <variant>

#include "guest/hw/guest_vm.h"
#include "guest/platform_msrs.h"
#include "guest/vm_spec.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/core/spinlock.h"
#include "vmx/hw/guest_vm.h"
#include "vmx/hw/vcpu_registry.h"
#include "vmx/hw/vmx_operation.h"

namespace lantern::vmx {
namespace {

// The vCPU group of each user VM (its vlapics' IPIs, VmxVcpu::join_group), claimed by the
// VM's first vCPU to be created. User VMs are never freed, so neither are their groups.
struct UserVmGroup {
  uint32_t vm_id = 0;
  bool used = false;
  VcpuGroup group;
};
IrqSpinlock g_groups_lock;
UserVmGroup g_groups[guest::kMaxVms];  // guarded by g_groups_lock

VcpuGroup* user_vm_vcpu_group(uint32_t vm_id) {
  IrqSpinlockGuard guard(g_groups_lock);
  for (UserVmGroup& g : g_groups) {
    if (g.used && g.vm_id == vm_id) return &g.group;
  }
  for (UserVmGroup& g : g_groups) {
    if (!g.used) {
      g.used = true;
      g.vm_id = vm_id;
      return &g.group;
    }
  }
  return nullptr;  // join_group() refuses it: more VMs than guest::kMaxVms
}

// MSRs the guest reaches without an exit (MSR bitmap bits clear, SDM Vol. 3C 24.6.9). Safe to
// hand over: VM entry loads and VM exit saves the SYSENTER and FS/GS base MSRs with the guest
// state (SDM Vol. 3C 24.4.1, 26.3.2.1, 27.3.1); the SYSCALL/SWAPGS MSRs matter only to
// instructions the host never uses (SDM Vol. 2B SYSCALL, SWAPGS), and each core runs one VM's
// vCPU; IA32_TIME_STAMP_COUNTER is read-only here: the guest's TSC is the host's (TSC_OFFSET 0),
// and a write, which would move the host's, raises #GP like any MSR Lantern does not emulate.
struct GuestOwnedMsr {
  uint32_t msr;
  MsrAccess access;
};
constexpr GuestOwnedMsr kGuestOwnedMsrs[] = {
    {0x10, MsrAccess::kRead},            // IA32_TIME_STAMP_COUNTER
    {0x174, MsrAccess::kReadWrite},      // IA32_SYSENTER_CS
    {0x175, MsrAccess::kReadWrite},      // IA32_SYSENTER_ESP
    {0x176, MsrAccess::kReadWrite},      // IA32_SYSENTER_EIP
    {0xc0000100, MsrAccess::kReadWrite},  // IA32_FS_BASE
    {0xc0000101, MsrAccess::kReadWrite},  // IA32_GS_BASE
    {0xc0000081, MsrAccess::kReadWrite},  // IA32_STAR
    {0xc0000082, MsrAccess::kReadWrite},  // IA32_LSTAR
    {0xc0000083, MsrAccess::kReadWrite},  // IA32_CSTAR
    {0xc0000084, MsrAccess::kReadWrite},  // IA32_FMASK
    {0xc0000102, MsrAccess::kReadWrite},  // IA32_KERNEL_GS_BASE
};


Result<void> hand_msrs_to_guest(VmxVcpu& vcpu) {
  for (const GuestOwnedMsr& m : kGuestOwnedMsrs) TRY(vcpu.set_msr_intercept(MsrRange{m.msr, 1}, m.access, false));
  // IA32_PAT: the guest's own when entry and exit switch it.
  if (vcpu.guest_owns_pat()) TRY(vcpu.set_msr_intercept(MsrRange{guest::kMsrIa32Pat, 1}, MsrAccess::kReadWrite, false));
  return ok();
}

// The VMX backend's user vCPU: a VmxVcpu with the VM's devices attached (port I/O and MSRs
// inside run()); an exit neither it nor the devices take ends the VM.
class VmxUserVcpu final : public guest::UserVcpu {
 public:
  VmxUserVcpu(guest::GuestVm& vm, VmxVcpu& vcpu) : vm_(vm), vcpu_(vcpu) {}

  Result<Turn> run() override {
    const VmExit exit = TRY(vcpu_.run());
    if (vm_.exit_requested) return Turn::kGuest;  // the loop ends the VM
    const bool handled = TRY(handle_device_exit(vm_, vcpu_, exit));
    if (!handled) {
      if (std::holds_alternative<exits::Hypercall>(exit)) {
        vcpu_.set_hypercall_result(~uint64_t{0});  // no hypercalls for user VMs
        return Turn::kGuest;
      }
      if (const auto* npf = std::get_if<exits::NestedPageFault>(&exit)) {
        return make_error(ErrorCode::kUnsupported,
                          "the guest accessed guest-physical memory with neither RAM nor a device", npf->gpa);
      }
      const std::string_view kind = vm_exit_kind_name(exit);
      LOG_ERROR("vm%u vcpu%u: unhandled exit %.*s", vm_.vm_id, vcpu_.vcpu_id(), static_cast<int>(kind.size()),
                kind.data());
      return make_error(ErrorCode::kUnsupported, "the vCPU made an exit Lantern does not handle for this VM");
    }
    if (std::holds_alternative<exits::ExternalInterrupt>(exit) || std::holds_alternative<exits::Halt>(exit) ||
        std::holds_alternative<exits::Nothing>(exit)) {
      return Turn::kHostWork;
    }
    return Turn::kGuest;
  }
  Result<void> after_host_work() override { return vcpu_.reload_on_this_cpu(); }
  bool stopped() const override { return vcpu_.stopped(); }
  void stop_outside_run(const char* reason) override { vcpu_.stop_outside_run(reason); }
  Result<void> restart(const guest::UserVcpuStart& start) override { return vcpu_.restart(start.nested_root, *start.entry); }
  void post_init() override { vcpu_.post_init(); }
  void post_sipi(uint8_t vector) override { vcpu_.post_sipi(vector); }
  void post_interrupt(uint8_t vector, bool level_triggered) override { vcpu_.post_interrupt(vector, level_triggered); }
  void post_nmi() override { vcpu_.post_nmi(); }
  bool accepts_logical_destination(uint32_t destination) const override {
    return vcpu_.accepts_logical_destination(destination);
  }

 private:
  guest::GuestVm& vm_;
  VmxVcpu& vcpu_;
};

Result<guest::NestedPagingFeatures> vmx_nested_paging() {
  const VmxCapabilities* caps = capabilities();
  if (caps == nullptr) return make_error(ErrorCode::kUnsupported, "VMX is not available");
  if (!caps->ept || !caps->unrestricted_guest || !caps->ept_wb || !caps->ept_walk_length_4) {
    return make_error(ErrorCode::kUnsupported, "EPT with WB 4-level tables and unrestricted guest are needed");
  }
  guest::NestedPagingFeatures features;
  features.pages_2m = caps->ept_2m_pages;
  features.pages_1g = caps->ept_1g_pages;
  features.execute_only = caps->ept_execute_only;
  // CPUID.80000008H:EAX[7:0] = physical-address width (SDM Vol. 2A CPUID).
  features.max_phys_bits =
      cpu::cpuid(0x80000000).eax >= 0x80000008 ? static_cast<uint8_t>(cpu::cpuid(0x80000008).eax & 0xff) : 36;
  return features;
}

uint64_t vmx_nested_root(const guest::NestedPageTableBuilder& tables) { return tables.eptp(); }

Result<guest::UserVcpu*> create_vmx_user_vcpu(const guest::UserVcpuStart& start) {
  guest::GuestVm& vm = *start.vm;
  VmxVcpu* vcpu = TRY(VmxVcpu::create(vm.vm_id, start.vcpu_id));
  Result<void> step = vcpu->setup(start.nested_root, GuestEntry{});
  if (step) step = hand_msrs_to_guest(*vcpu);
  if (step) step = vcpu->join_group(user_vm_vcpu_group(vm.vm_id));
  if (step) step = vcpu->bind_to_current_processor();
  // A console snapshot reaches the core even while the guest keeps interrupts off (Linux's
  // decompressor runs for seconds with IF = 0 and no exit).
  if (step) step = arm_return_backstop(*vcpu);
  // vCPU 0 starts at the kernel's entry (MB 3.2); the others wait for INIT/SIPI (SDM Vol. 3A 9.4).
  if (step && start.vcpu_id == 0) step = vcpu->apply_entry_state(*start.entry);
  void* mem = step ? kmalloc(sizeof(VmxUserVcpu), alignof(VmxUserVcpu)) : nullptr;
  if (step && mem == nullptr) step = make_error(ErrorCode::kOutOfMemory, "no memory for a user vCPU");
  if (!step) {
    VmxVcpu::destroy(vcpu);
    return step.error();
  }
  if (start.vcpu_id != 0) vcpu->post_init();
  vcpu->attach_vm(&vm);
  if (auto p = publish_vcpu(vm, *vcpu); !p) LOG_ERROR("vm%u: publish vCPU: %s", vm.vm_id, p.error().message);
  return new (mem) VmxUserVcpu(vm, *vcpu);
}

constexpr guest::UserVmBackend kVmxUserVmBackend{"vmx",
                                          VcpuGroup::kMaxVcpus,
                                          "more vCPUs than a VM's vCPU group holds (16)",
                                          &vmx_nested_paging,
                                          &vmx_nested_root,
                                          &create_vmx_user_vcpu};

}  // namespace

const guest::UserVmBackend& vmx_user_vm_backend() { return kVmxUserVmBackend; }

}  // namespace lantern::vmx
