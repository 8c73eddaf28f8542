#include "guest/exit_kind.h"

namespace lantern::guest {

std::string_view exit_kind_name(ExitKind kind) {
  switch (kind) {
    case ExitKind::kCpuid: return "cpuid";
    case ExitKind::kHlt: return "hlt";
    case ExitKind::kIo: return "io";
    case ExitKind::kMsr: return "msr";
    case ExitKind::kHypercall: return "hypercall";
    case ExitKind::kNestedPageFault: return "nested_page_fault";
    case ExitKind::kInterrupt: return "interrupt";
    case ExitKind::kNmi: return "nmi";
    case ExitKind::kSmi: return "smi";
    case ExitKind::kInit: return "init";
    case ExitKind::kSipi: return "sipi";
    case ExitKind::kInterruptWindow: return "interrupt_window";
    case ExitKind::kNmiWindow: return "nmi_window";
    case ExitKind::kTimer: return "timer";
    case ExitKind::kShutdown: return "shutdown";
    case ExitKind::kException: return "exception";
    case ExitKind::kVirtualizationInstruction: return "virtualization_instruction";
    case ExitKind::kControlRegister: return "control_register";
    case ExitKind::kDebugRegister: return "debug_register";
    case ExitKind::kDescriptorTable: return "descriptor_table";
    case ExitKind::kApic: return "apic";
    case ExitKind::kOtherInstruction: return "other_instruction";
    case ExitKind::kOther: return "other";
    case ExitKind::kInvalid: return "invalid";
    case ExitKind::kBusy: return "busy";
    case ExitKind::kUnknown: return "unknown";
  }
  return "unknown";
}

}  // namespace lantern::guest
