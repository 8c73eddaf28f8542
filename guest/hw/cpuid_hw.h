// Lantern's CPUID policy (guest/cpuid_policy.h) over this processor's own answer: executes CPUID
// only for the leaves that ask the processor. Kernel-only; both backends call it to answer a
// guest's CPUID they have not cached.
#pragma once

#include "guest/cpuid_policy.h"
#include "kernel/arch/x86_64/cpu.h"

namespace lantern::guest::hw {

inline CpuidRegisters guest_cpuid_on_this_cpu(uint32_t leaf, uint32_t subleaf, const CpuidOffer& offer,
                                              const CpuidGuestInputs& inputs) {
  CpuidRegisters processor;
  if (cpuid_leaf_asks_processor(leaf)) {
    const cpu::CpuidResult c = cpu::cpuid(leaf, subleaf);
    processor = CpuidRegisters{c.eax, c.ebx, c.ecx, c.edx};
  }
  return guest_cpuid(leaf, subleaf, processor, offer, inputs);
}

}  // namespace lantern::guest::hw
