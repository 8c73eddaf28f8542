#include "svm/exit_code.h"

namespace lantern::svm {
namespace {

struct ExitCodeInfo {
  uint64_t code;
  std::string_view name;
  ExitKind kind;
};
constexpr ExitCodeInfo kExitCodes[] = {
#define LANTERN_SVM_EXIT(NAME, CODE, KIND) {CODE, #NAME, ExitKind::KIND},
#include "svm/exit_codes.def"
#undef LANTERN_SVM_EXIT
};

const ExitCodeInfo* find(uint64_t exitcode) {
  for (const ExitCodeInfo& e : kExitCodes) {
    if (e.code == exitcode) return &e;
  }
  return nullptr;
}

}  // namespace

std::string_view exit_code_name(uint64_t exitcode) {
  if (is_vmexit_invalid(exitcode)) return "VMEXIT_INVALID";
  if (exitcode == kVmexitBusy) return "VMEXIT_BUSY";
  const ExitCodeInfo* e = find(exitcode);
  return e != nullptr ? e->name : "VMEXIT_UNKNOWN";
}

ExitKind exit_kind(uint64_t exitcode) {
  if (is_vmexit_invalid(exitcode)) return ExitKind::kInvalid;
  if (exitcode == kVmexitBusy) return ExitKind::kBusy;
  const ExitCodeInfo* e = find(exitcode);
  return e != nullptr ? e->kind : ExitKind::kUnknown;
}

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
    case ExitKind::kInterruptWindow: return "interrupt_window";
    case ExitKind::kNmiWindow: return "nmi_window";
    case ExitKind::kShutdown: return "shutdown";
    case ExitKind::kException: return "exception";
    case ExitKind::kSvmInstruction: return "svm_instruction";
    case ExitKind::kControlRegister: return "control_register";
    case ExitKind::kDebugRegister: return "debug_register";
    case ExitKind::kDescriptorTable: return "descriptor_table";
    case ExitKind::kOtherInstruction: return "other_instruction";
    case ExitKind::kOther: return "other";
    case ExitKind::kInvalid: return "invalid";
    case ExitKind::kBusy: return "busy";
    case ExitKind::kUnknown: return "unknown";
  }
  return "unknown";
}

}  // namespace lantern::svm
