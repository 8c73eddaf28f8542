#include "svm/hw/svm_user_vms.h"

#include <new>

#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "svm/hw/svm_guest_vcpu.h"
#include "svm/hw/svm_guest_vm.h"
#include "svm/hw/svm_operation.h"
#include "guest/hw/guest_vm.h"
#include "guest/hw/core_backend.h"

namespace lantern::svm {
namespace {

// SVM has no preemption timer: the core's periodic tick forces a guest out (INTR intercept,
// APM 15.13.1) so console snapshots and a halted guest's vlapic timer are served. The BSP's tick
// runs from boot; an AP running a user vCPU starts the same.
constexpr uint32_t kHostTickHz = 100;

class SvmUserVcpu final : public guest::UserVcpu {
 public:
  explicit SvmUserVcpu(SvmVcpu& vcpu) : vcpu_(vcpu) { vcpu_.set_ipi_sink(&deliver_ipi, this); }

  Result<Turn> run() override {
    switch (TRY(vcpu_.run())) {
      case SvmRunOutcome::kHandled:
      case SvmRunOutcome::kHypercall:
      case SvmRunOutcome::kHostInterrupt:
      case SvmRunOutcome::kHalted: return Turn::kHostWork;
      case SvmRunOutcome::kStopped: break;
    }
    return make_error(ErrorCode::kInvalidState,
                      vcpu_.stop_message() != nullptr ? vcpu_.stop_message() : "the vCPU stopped");
  }
  Result<void> after_host_work() override { return ok(); }  // the VMCB needs no reload
  bool stopped() const override { return vcpu_.stopped(); }
  void stop_outside_run(const char* reason) override { vcpu_.stop_outside_run(reason); }
  Result<void> restart(const guest::UserVcpuStart& start) override {
    vcpu_.set_guest_ram(start.ram_phys, start.ram_bytes);
    return vcpu_.restart(start.nested_root, *start.entry);
  }
  void post_init() override { vcpu_.post_init(); }
  void post_sipi(uint8_t vector) override { vcpu_.post_sipi(vector); }
  void post_interrupt(uint8_t vector, bool level_triggered) override { vcpu_.post_interrupt(vector, level_triggered); }
  void post_nmi() override { vcpu_.post_nmi(); }
  bool accepts_logical_destination(uint32_t mda) const override { return vcpu_.accepts_logical_destination(mda); }

 private:
  // An IPI from this vCPU's vlapic (owner core) to the vCPUs of its VM, by vcpu id = APIC ID.
  static void deliver_ipi(void* context, const guest::IpiRequest& ipi, bool x2apic) {
    const SvmVcpu& source = static_cast<SvmUserVcpu*>(context)->vcpu_;
    guest::deliver_ipi(ipi, source.vcpu_id(), x2apic,
                       [&source](uint32_t id) { return guest::user_vm_vcpu(source.vm_id(), id); });
  }

  SvmVcpu& vcpu_;
};

// MSRs the guest reaches without an exit: VMLOAD and VMSAVE switch them with the guest's VMCB
// around every VMRUN (APM Vol. 2 15.5.2, the VMSAVE/VMLOAD instruction pages of Vol. 3), so the
// host's values come back at each exit. IA32_TIME_STAMP_COUNTER, PAT, EFER and TSC_AUX stay
// intercepted (emulated).
constexpr MsrRange kGuestOwnedMsrs[] = {
    {0x174, 3},         // IA32_SYSENTER_CS, _ESP, _EIP
    {0xc0000081, 4},    // STAR, LSTAR, CSTAR, SFMASK
    {0xc0000100, 3},    // FS.base, GS.base, KernelGSbase
};

Result<guest::NestedPagingFeatures> svm_nested_paging() {
  const SvmFeatures* f = features();
  if (f == nullptr) return make_error(ErrorCode::kUnsupported, "SVM is not available");
  if (!f->nested_paging) return make_error(ErrorCode::kUnsupported, "SVM without nested paging (NP)");
  guest::NestedPagingFeatures npt;
  npt.format = guest::PageTableFormat::kNpt;
  npt.pages_2m = true;  // NPT has the host's long-mode page sizes (APM Vol. 2 15.25.1)
  // CPUID 8000_0008H:EAX[7:0] physical-address size (APM Vol. 3 E.4.7).
  npt.max_phys_bits =
      cpu::cpuid(0x80000000).eax >= 0x80000008 ? static_cast<uint8_t>(cpu::cpuid(0x80000008).eax & 0xff) : 40;
  npt.no_execute = (cpu::rdmsr(cpu::kMsrEfer) & (1u << 11)) != 0;  // EFER.NXE (APM Vol. 2 3.1.7)
  return npt;
}

uint64_t svm_nested_root(const guest::NestedPageTableBuilder& tables) { return tables.ncr3(); }

Result<guest::UserVcpu*> create_svm_user_vcpu(const guest::UserVcpuStart& start) {
  if (guest::this_core_backend() == guest::CoreBackend::kVmx) return make_error(ErrorCode::kInvalidState, "the VMX backend runs this core");
  SvmVcpu* vcpu = TRY(SvmVcpu::create(*start.vm, start.vcpu_id, start.nested_root, 0, 0));
  vcpu->set_guest_ram(start.ram_phys, start.ram_bytes);
  // vCPU 0 starts at the kernel's entry (MB 3.2); the others wait for INIT/SIPI (SDM Vol. 3A 9.4).
  Result<void> step = ok();
  for (const MsrRange& range : kGuestOwnedMsrs) {
    if (step) step = vcpu->set_msr_intercept(range, MsrAccess::kReadWrite, false);
  }
  if (step && start.vcpu_id == 0) step = vcpu->apply_entry_state(*start.entry);
  void* mem = step ? kmalloc(sizeof(SvmUserVcpu), alignof(SvmUserVcpu)) : nullptr;
  if (step && mem == nullptr) step = make_error(ErrorCode::kOutOfMemory, "no memory for a user vCPU");
  if (!step) {
    SvmVcpu::destroy(vcpu);
    return step.error();
  }
  if (start.vcpu_id != 0) vcpu->post_init();
  if (this_cpu().index != 0) apic::start_periodic_timer(kHostTickHz, interrupts::kVectorTimer);
  if (auto p = publish_user_vcpu(vcpu); !p) LOG_ERROR("svm: vm%u: publish vCPU: %s", start.vm->vm_id, p.error().message);
  LOG_INFO("svm: vm%u vcpu%u bound to cpu%u", start.vm->vm_id, start.vcpu_id, this_cpu().index);
  return new (mem) SvmUserVcpu(*vcpu);
}

constexpr guest::UserVmBackend kSvmUserVmBackend{"svm",
                                               guest::kMaxVcpusPerVm,
                                               "more vCPUs than a VM's vCPU group holds (16)",
                                               &svm_nested_paging,
                                               &svm_nested_root,
                                               &create_svm_user_vcpu,
                                               /*cpuid_announces_tsc_frequency=*/false};

}  // namespace

const guest::UserVmBackend& svm_user_vm_backend() { return kSvmUserVmBackend; }

}  // namespace lantern::svm
