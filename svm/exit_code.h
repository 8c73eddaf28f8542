// SVM exit codes (APM Vol. 2 Appendix C; the table is svm/exit_codes.def), their names, and
// their mapping to vendor-neutral exit kinds, as pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "guest/exit_kind.h"

namespace lantern::svm {

// Exit codes the backend names in code (APM Table C-1).
inline constexpr uint64_t kVmexitCr4Write = 0x14;
inline constexpr uint64_t kVmexitExcp0 = 0x40;
inline constexpr uint64_t kVmexitIntr = 0x60;
inline constexpr uint64_t kVmexitNmi = 0x61;
inline constexpr uint64_t kVmexitInit = 0x63;
inline constexpr uint64_t kVmexitVintr = 0x64;
inline constexpr uint64_t kVmexitCpuid = 0x72;
inline constexpr uint64_t kVmexitIret = 0x74;
inline constexpr uint64_t kVmexitHlt = 0x78;
inline constexpr uint64_t kVmexitIoio = 0x7b;
inline constexpr uint64_t kVmexitMsr = 0x7c;
inline constexpr uint64_t kVmexitShutdown = 0x7f;
inline constexpr uint64_t kVmexitVmrun = 0x80;
inline constexpr uint64_t kVmexitVmmcall = 0x81;
inline constexpr uint64_t kVmexitNpf = 0x400;
inline constexpr uint64_t kVmexitInvalid = ~uint64_t{0};      // -1
inline constexpr uint64_t kVmexitBusy = ~uint64_t{0} - 1;     // -2

// VMEXIT_INVALID is -1 (APM Table C-1). QEMU 7.2 writes it zero-extended, 0x00000000FFFFFFFF, so
// only the low 32 bits are compared (no valid exit code has them all set).
constexpr bool is_vmexit_invalid(uint64_t exitcode) {
  return static_cast<uint32_t>(exitcode) == 0xffffffffu;
}

// Exit counters by slot: codes 000h-0FFh in slots 0-255, 400h-40Fh (NPF, AVIC, VMGEXIT) in
// 256-271; VMEXIT_INVALID, VMEXIT_BUSY and any other code share the last slot, which reads back
// as -1 (VMEXIT_INVALID, by far the likeliest of them).
inline constexpr size_t kExitCountSlots = 0x100 + 0x10 + 1;
constexpr size_t exit_count_slot(uint64_t exitcode) {
  if (exitcode < 0x100) return static_cast<size_t>(exitcode);
  if (exitcode >= 0x400 && exitcode < 0x410) return static_cast<size_t>(0x100 + (exitcode - 0x400));
  return kExitCountSlots - 1;
}
constexpr uint64_t exit_code_of_slot(size_t slot) {
  if (slot < 0x100) return slot;
  if (slot < 0x110) return 0x400 + (slot - 0x100);
  return kVmexitInvalid;
}

// "VMEXIT_CPUID", "VMEXIT_INVALID", ... or "VMEXIT_UNKNOWN".
std::string_view exit_code_name(uint64_t exitcode);
// The vendor-neutral kind of an exit code (guest::exit_kind_name() names it).
guest::ExitKind exit_kind(uint64_t exitcode);

}  // namespace lantern::svm
