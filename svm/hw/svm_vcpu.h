// A bring-up SVM vCPU: one VMCB, an ASID, the IOPM and MSRPM, a host VMCB-format page for
// VMSAVE/VMLOAD, and a guest VM of 2 MiB under nested paging (guest/nested_paging.h in NPT
// format) loaded with a flat real-mode guest program from the boot modules. It runs the guest
// until the next exit and hands the raw exit to its caller; the vendor-neutral run loop of the
// vCPU core will take over that role. Kernel-only; used by svm/hw/svm_selftests.cpp.
#pragma once

#include <cstdint>
#include <string_view>

#include "kernel/lib/result.h"
#include "svm/vmcb.h"

namespace lantern::svm {

// General registers VMRUN does not switch, in svm_entry.S order (RAX lives in the VMCB).
struct SvmGuestGprs {
  uint64_t rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
};
static_assert(sizeof(SvmGuestGprs) == 14 * 8);

struct SvmExit {
  uint64_t exitcode;
  uint64_t exitinfo1;
  uint64_t exitinfo2;
  uint64_t exitintinfo;
  uint64_t rip;  // the guest RIP at the exit
};

class SvmBringUpVcpu {
 public:
  // Loads guest program `program` (tests/guests, GUEST_HEADER name) at GPA 0x1000 and sets up a
  // real-mode vCPU starting there. kUnsupported when this core is not in SVM operation.
  static Result<SvmBringUpVcpu*> create(std::string_view program);
  static void destroy(SvmBringUpVcpu* vcpu);

  // One VMRUN. kInvalidState once the vCPU stopped (shutdown, VMEXIT_INVALID).
  Result<SvmExit> run();
  // Moves RIP past the intercepted instruction (svm/exit_info.h next_rip: NRIP only where CPUID
  // says it exists).
  Result<void> skip_instruction(const SvmExit& exit);
  // Queues #UD for the next VMRUN (the answer to an intercepted SVM instruction).
  Result<void> inject_undefined_opcode();

  Vmcb& vmcb() { return *vmcb_; }
  SvmGuestGprs& gprs() { return gprs_; }
  bool stopped() const { return stopped_; }
  uint32_t asid() const { return asid_; }

 private:
  SvmBringUpVcpu() = default;
  Result<void> setup(std::string_view program);
  void release();

  Vmcb* vmcb_ = nullptr;
  uint64_t vmcb_phys_ = 0;
  uint64_t host_vmcb_phys_ = 0;
  uint64_t iopm_phys_ = 0;
  uint64_t msrpm_phys_ = 0;
  uint64_t memory_phys_ = 0;
  uint64_t npt_pml4_phys_ = 0;
  uint32_t asid_ = 0;
  bool stopped_ = false;
  SvmGuestGprs gprs_{};
};

}  // namespace lantern::svm
