// The CPUID exit of both backends, and completing an emulated instruction. Vendor-neutral and
// host-tested (tests/host/guest_cpuid_exit_test.cpp); each reaches the vCPU through a seam (a
// template parameter: the exit path has no virtual calls).
//
// emulate_cpuid(): the leaf from EAX and the subleaf from ECX (SDM Vol. 2A CPUID), the answer from
// the vCPU's CpuidLeafCache under the guest inputs the leaf depends on, or on a miss from the
// backend's policy (guest_cpuid() over the processor's answer) then cached; EAX..EDX written
// zero-extended into RAX..RDX (CPUID in 64-bit mode clears the upper halves, SDM Vol. 2A CPUID),
// and the instruction completed by the backend. Its seam:
//   uint64_t rax();  uint64_t rcx();
//   void set_cpuid_result(uint64_t rax, uint64_t rbx, uint64_t rcx, uint64_t rdx);
//   bool apic_enabled();  uint64_t xcr0();                  IA32_APIC_BASE.EN, the guest's XCR0
//   Result<bool> cr4_osxsave();                             asked only where cpuid_leaf_reads_cr4()
//   CpuidRegisters policy_cpuid(uint32_t leaf, uint32_t subleaf, const CpuidGuestInputs&);
//   Result<void> complete_instruction();                    RIP past the CPUID, shadow cleared
//
// complete_emulated_instruction(): the instruction pointer after an instruction the backend
// emulated, IP/EIP/RIP by the code size (guest/instruction_pointer.h), and the STI/MOV-SS
// interrupt shadow it was in ended (SDM Vol. 3C 24.4.2 "blocking by STI/MOV SS"; APM Vol. 2
// Table B-1, offset 068h). Its seam:
//   uint64_t rip();  Result<void> set_rip(uint64_t);  Result<CodeSize> code_size();
//   Result<void> clear_interrupt_shadow();
#pragma once

#include <cstdint>

#include "guest/cpuid_cache.h"
#include "guest/cpuid_policy.h"
#include "guest/instruction_pointer.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

// Always inlined: it is the CPUID exit's whole handler on a backend's exit path.
template <class Seam>
[[gnu::always_inline]] inline Result<void> emulate_cpuid(Seam& seam, CpuidLeafCache& cache) {
  const uint32_t leaf = static_cast<uint32_t>(seam.rax());
  const uint32_t subleaf = static_cast<uint32_t>(seam.rcx());
  CpuidGuestInputs inputs{false, seam.apic_enabled(), seam.xcr0()};
  if (cpuid_leaf_reads_cr4(leaf)) inputs.cr4_osxsave = TRY(seam.cr4_osxsave());
  const uint64_t key = cpuid_input_key(leaf, inputs);
  CpuidRegisters r;
  if (const CpuidRegisters* cached = cache.find(leaf, subleaf, key)) {
    r = *cached;
  } else {
    r = seam.policy_cpuid(leaf, subleaf, inputs);
    cache.store(leaf, subleaf, key, r);
  }
  seam.set_cpuid_result(r.eax, r.ebx, r.ecx, r.edx);  // uint32_t -> uint64_t: zero-extended
  return seam.complete_instruction();
}

// The instruction at the seam's RIP ended at `next` (its RIP plus its length).
template <class Seam>
Result<void> complete_emulated_instruction(Seam& seam, uint64_t next) {
  const uint64_t rip = seam.rip();
  uint64_t pointer = next;
  if (next_rip_may_wrap(next, next - rip)) pointer = wrap_instruction_pointer(next, TRY(seam.code_size()));
  TRY(seam.set_rip(pointer));
  return seam.clear_interrupt_shadow();
}

}  // namespace lantern::guest
