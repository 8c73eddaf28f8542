// The vendor-neutral meaning of a VM exit: the core's exit model. Each backend maps its raw exit
// code onto one kind (vmx::exit_kind() from the basic exit reason, SDM Vol. 3D Appendix C;
// svm::exit_kind() from EXITCODE, APM Vol. 2 Appendix C) and keeps the raw code and qualification
// beside it, so logs, the console and the run loop can reason about "an I/O exit" without knowing
// the vendor, and still show exactly what the hardware reported.
#pragma once

#include <cstdint>
#include <string_view>

namespace lantern::guest {

enum class ExitKind : uint8_t {
  kCpuid,
  kHlt,
  kIo,
  kMsr,
  kHypercall,                  // VMCALL / VMMCALL
  kNestedPageFault,            // EPT violation or misconfiguration / NPF
  kInterrupt,                  // a host interrupt arrived
  kNmi,                        // a host NMI (SVM; VMX reports NMIs as exceptions, reason 0)
  kSmi,
  kInit,                       // INIT signal
  kSipi,                       // start-up IPI (VMX, in wait-for-SIPI)
  kInterruptWindow,            // the guest can take an interrupt now
  kNmiWindow,                  // the guest can take an NMI now (SVM: the IRET intercept)
  kTimer,                      // the hypervisor's own timer (VMX-preemption timer)
  kShutdown,                   // triple fault / shutdown
  kException,                  // an intercepted exception vector (VMX: or an NMI)
  kVirtualizationInstruction,  // VMX or SVM instructions the guest may not use: #UD
  kControlRegister,
  kDebugRegister,
  kDescriptorTable,
  kApic,                       // an APIC-virtualization exit (VMX: APIC access, APIC write, EOI, TPR)
  kOtherInstruction,           // another intercepted instruction (RDTSC, INVD, XSETBV, ...)
  kOther,                      // an event that is not an instruction (task switch, bus lock, ...)
  kInvalid,                    // the entry failed: invalid guest state, MSR loading, machine check
  kBusy,                       // VMEXIT_BUSY (SEV-SNP)
  kUnknown,                    // not in the vendor's table
};

// "cpuid", "hlt", "io", ...: the kind's name for logs and the console (API v1 `kind`).
std::string_view exit_kind_name(ExitKind kind);

}  // namespace lantern::guest
