#include "svm/hw/svm_vcpu.h"

#include <new>

#include "guest/nested_paging.h"
#include "guest/hw/kernel_services.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/log.h"
#include "kernel/core/memory.h"
#include "kernel/lib/string.h"
#include "svm/event_injection.h"
#include "svm/exit_code.h"
#include "svm/exit_info.h"
#include "svm/hw/svm_guest_vm.h"
#include "svm/hw/svm_operation.h"
#include "svm/permission_maps.h"
#include "svm/vmcb_controls.h"
#include "svm/vmcb_reset.h"

extern "C" void svm_vmrun(uint64_t guest_vmcb_pa, uint64_t host_vmcb_pa, lantern::svm::SvmGuestGprs* gprs);

namespace lantern::svm {
namespace {

constexpr uint64_t kGuestLoadAddress = 0x1000;  // tests/guests/guest.ld
constexpr uint64_t kGuestMemoryBytes = 2ull << 20;
constexpr uint64_t kIopmPages = kIopmBytes / paging::kPageSize;
constexpr uint64_t kMsrpmPages = kMsrpmBytes / paging::kPageSize;

Result<uint64_t> alloc_zeroed(uint64_t pages) {
  const uint64_t phys = TRY(memory::alloc_contiguous(pages, paging::kPageSize));
  lib::mem_set(paging::phys_to_ptr<void>(phys), 0, pages * paging::kPageSize);
  return phys;
}

uint8_t max_phys_bits() {
  // CPUID 8000_0008H:EAX[7:0] physical-address size (APM Vol. 3 E.4.7).
  if (cpu::cpuid(0x80000000).eax >= 0x80000008) return static_cast<uint8_t>(cpu::cpuid(0x80000008).eax & 0xff);
  return 40;
}

}  // namespace

Result<SvmBringUpVcpu*> SvmBringUpVcpu::create(std::string_view program) {
  if (!this_cpu_in_svm_operation()) return make_error(ErrorCode::kUnsupported, "this core is not in SVM operation");
  void* mem = kmalloc(sizeof(SvmBringUpVcpu), 16);
  if (mem == nullptr) return make_error(ErrorCode::kOutOfMemory, "no memory for an SVM vCPU");
  auto* vcpu = new (mem) SvmBringUpVcpu();
  if (auto r = vcpu->setup(program); !r) {
    destroy(vcpu);
    return r.error();
  }
  return vcpu;
}

void SvmBringUpVcpu::destroy(SvmBringUpVcpu* vcpu) {
  if (vcpu == nullptr) return;
  vcpu->release();
  vcpu->~SvmBringUpVcpu();
  kfree(vcpu);
}

void SvmBringUpVcpu::release() {
  if (npt_pml4_phys_ != 0) (void)guest::NestedPageTableBuilder::release_tables(guest::kernel_page_allocator(), npt_pml4_phys_);
  if (memory_phys_ != 0) (void)memory::free_contiguous(memory_phys_, kGuestMemoryBytes / paging::kPageSize);
  if (iopm_phys_ != 0) (void)memory::free_contiguous(iopm_phys_, kIopmPages);
  if (msrpm_phys_ != 0) (void)memory::free_contiguous(msrpm_phys_, kMsrpmPages);
  if (vmcb_phys_ != 0) (void)memory::free_frame(vmcb_phys_);
  if (host_vmcb_phys_ != 0) (void)memory::free_frame(host_vmcb_phys_);
  npt_pml4_phys_ = memory_phys_ = iopm_phys_ = msrpm_phys_ = vmcb_phys_ = host_vmcb_phys_ = 0;
}

Result<void> SvmBringUpVcpu::setup(std::string_view program) {
  const std::span<const uint8_t> image = TRY(guest::find_guest_program(program));
  if (image.size() > kGuestMemoryBytes - kGuestLoadAddress) {
    return make_error(ErrorCode::kInvalidArgument, "guest program larger than guest memory", image.size());
  }
  memory_phys_ = TRY(memory::alloc_contiguous(kGuestMemoryBytes / paging::kPageSize, kGuestMemoryBytes));
  auto* ram = paging::phys_to_ptr<uint8_t>(memory_phys_);
  lib::mem_set(ram, 0, kGuestMemoryBytes);
  lib::mem_copy(ram + kGuestLoadAddress, image.data(), image.size());

  guest::NestedPagingFeatures npt;
  npt.format = guest::PageTableFormat::kNpt;
  npt.pages_2m = true;  // NPT always has 2 MiB pages (APM 15.25.1: the host's long-mode formats)
  npt.max_phys_bits = max_phys_bits();
  npt.no_execute = (cpu::rdmsr(cpu::kMsrEfer) & (1u << 11)) != 0;  // EFER.NXE (APM 3.1.7)
  auto tables = TRY(guest::NestedPageTableBuilder::create(guest::kernel_page_allocator(), npt));
  npt_pml4_phys_ = tables.pml4_phys();
  TRY(tables.map(0, memory_phys_, kGuestMemoryBytes, guest::kAccessRwx, guest::MemoryType::kWriteBack));

  vmcb_phys_ = TRY(alloc_zeroed(1));
  host_vmcb_phys_ = TRY(alloc_zeroed(1));
  iopm_phys_ = TRY(alloc_zeroed(kIopmPages));
  msrpm_phys_ = TRY(alloc_zeroed(kMsrpmPages));
  intercept_all_io(paging::phys_to_ptr<uint8_t>(iopm_phys_));
  intercept_all_msrs(paging::phys_to_ptr<uint8_t>(msrpm_phys_));
  asid_ = allocate_asid();

  vmcb_ = paging::phys_to_ptr<Vmcb>(vmcb_phys_);
  VmcbStart start;
  start.iopm_pa = iopm_phys_;
  start.msrpm_pa = msrpm_phys_;
  start.asid = asid_;
  start.n_cr3 = tables.ncr3();
  start.rip = kGuestLoadAddress;
  start.rsp = kGuestLoadAddress;
  reset_vmcb_to_real_mode(*vmcb_, start);
  return ok();
}

Result<SvmExit> SvmBringUpVcpu::run() {
  if (stopped_) return make_error(ErrorCode::kInvalidState, "the vCPU has stopped");
  {
    cpu::InterruptsOff irq_off;
    svm_vmrun(vmcb_phys_, host_vmcb_phys_, &gprs_);
  }  // a host interrupt that caused VMEXIT_INTR is taken here
  VmcbControlArea& c = vmcb_->control;
  c.tlb_control = kTlbControlDoNothing;
  const SvmExit exit{c.exitcode, c.exitinfo1, c.exitinfo2, c.exitintinfo, vmcb_->save.rip};
  if (is_vmexit_invalid(exit.exitcode) || exit.exitcode == kVmexitShutdown) {
    stopped_ = true;
    LOG_INFO("svm: vCPU (ASID %u) stopped: %.*s at rip 0x%llx", asid_,
             static_cast<int>(exit_code_name(exit.exitcode).size()), exit_code_name(exit.exitcode).data(),
             static_cast<unsigned long long>(exit.rip));
  }
  // An event still being delivered at the exit is in EXITINTINFO (APM 15.7.2); EVENTINJ is
  // not cleared by the CPU, so it is cleared here or the event would be injected again.
  c.eventinj = 0;
  return exit;
}

Result<void> SvmBringUpVcpu::skip_instruction(const SvmExit& exit) {
  const SvmFeatures* f = features();
  const uint64_t next = TRY(next_rip(exit.exitcode, exit.rip, exit.exitinfo2, vmcb_->control.nrip,
                                     f != nullptr && f->next_rip_save));
  // Real mode: IP wraps at 64 KiB.
  vmcb_->save.rip = (vmcb_->save.cr0 & 1) != 0 ? next : (next & 0xffff);
  return ok();
}

Result<void> SvmBringUpVcpu::inject_undefined_opcode() {
  vmcb_->control.eventinj = TRY(encode_eventinj({kVectorUndefinedOpcode, EventType::kException, false, 0}));
  return ok();
}

}  // namespace lantern::svm
