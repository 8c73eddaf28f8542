#include "svm/exit_code.h"

namespace lantern::svm {
namespace {

struct ExitCodeInfo {
  uint64_t code;
  std::string_view name;
  guest::ExitKind kind;
};
constexpr ExitCodeInfo kExitCodes[] = {
#define LANTERN_SVM_EXIT(NAME, CODE, KIND) {CODE, #NAME, guest::ExitKind::KIND},
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

guest::ExitKind exit_kind(uint64_t exitcode) {
  if (is_vmexit_invalid(exitcode)) return guest::ExitKind::kInvalid;
  if (exitcode == kVmexitBusy) return guest::ExitKind::kBusy;
  const ExitCodeInfo* e = find(exitcode);
  return e != nullptr ? e->kind : guest::ExitKind::kUnknown;
}

}  // namespace lantern::svm
