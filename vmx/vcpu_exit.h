// What VmxVcpu::run() hands back: the exit reason with its data, one struct per kind.
// Pure data, shared by the vCPU loop, the selftests and (later) the console's exit log.
//
// Register conventions (the vCPU API):
//   Hypercall  nr in rax; args in rdi, rsi, rdx, rcx, r8, r9; the result goes to rax.
//   IoWrite    data is the low `width` bytes of rax (SDM Vol. 2B OUT).
//   MsrWrite   value is edx:eax (SDM Vol. 2B WRMSR).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <variant>

namespace lantern::vmx {

namespace exits {
// Handled inside run() (CPUID, interrupt window, INVD/WBINVD, ...): just run again.
struct Nothing {};
struct Hypercall {
  uint64_t nr;
  std::array<uint64_t, 6> args;
};
struct IoRead {
  uint16_t port;
  uint8_t width;  // bytes: 1, 2 or 4
};
struct IoWrite {
  uint16_t port;
  uint8_t width;
  uint32_t data;
};
struct MsrRead {
  uint32_t msr;
};
struct MsrWrite {
  uint32_t msr;
  uint64_t value;
};
// A host interrupt arrived while the guest ran; run() already dispatched it to the host handler.
struct ExternalInterrupt {
  uint8_t vector;
};
struct Halt {};
struct NestedPageFault {
  uint64_t gpa;
  uint8_t access;  // guest::kAccessRead | kAccessWrite | kAccessExecute of the faulting access (guest/nested_paging.h)
};
// The guest shut down (triple fault): the vCPU is stopped.
struct SystemDown {};
// VM entry failed after the VMLAUNCH/VMRESUME instruction itself succeeded (exit reason bit 31,
// SDM Vol. 3C 26.8): reason is the basic exit reason (33 invalid guest state, 34 MSR loading,
// 41 machine-check); vm_instruction_error is 0 for these.
struct FailEntry {
  uint32_t reason;
  uint64_t qualification;
};
}  // namespace exits

using VmExit = std::variant<exits::Nothing, exits::Hypercall, exits::IoRead, exits::IoWrite,
                            exits::MsrRead, exits::MsrWrite, exits::ExternalInterrupt, exits::Halt,
                            exits::NestedPageFault, exits::SystemDown, exits::FailEntry>;

// "nothing", "hypercall", ...: names for logs and the console, by variant index.
constexpr std::string_view vm_exit_kind_name(const VmExit& e) {
  constexpr std::string_view kNames[] = {"nothing",    "hypercall",         "io_read",
                                         "io_write",   "msr_read",          "msr_write",
                                         "external_interrupt", "halt",      "nested_page_fault",
                                         "system_down", "fail_entry"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == std::variant_size_v<VmExit>);
  return e.index() < std::variant_size_v<VmExit> ? kNames[e.index()] : std::string_view("?");
}

// The reason a run loop records (VmxVcpu::stop_by_owner) when it gives up on an exit that run()
// handed back and no device or hypercall took. Static text, for the console's `stop_reason`.
constexpr const char* unhandled_exit_stop_reason(const VmExit& e) {
  constexpr const char* kReasons[] = {
      "the run loop stopped after an exit handled inside the vCPU",
      "unknown hypercall",
      "port read nothing answered",
      "port write nothing took",
      "MSR read nothing answered",
      "MSR write nothing took",
      "the run loop stopped after a host interrupt",
      "HLT nothing woke",
      "nested page fault outside guest memory (EPT violation)",
      "guest triple fault (shutdown)",
      "VM entry failed (invalid guest state, MSR loading or machine check)"};
  static_assert(sizeof(kReasons) / sizeof(kReasons[0]) == std::variant_size_v<VmExit>);
  return e.index() < std::variant_size_v<VmExit> ? kReasons[e.index()] : "unknown exit";
}

}  // namespace lantern::vmx
