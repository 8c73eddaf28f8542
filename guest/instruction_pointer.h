// How far the instruction pointer counts, for a backend that completes an instruction it
// emulated: the code's default operand size decides whether IP (16 bits), EIP (32) or RIP (64)
// advances, and the pointer wraps at that width (SDM Vol. 1 3.5 "Instruction Pointer", 3.6
// "Operand-size and address-size attributes"; Vol. 3A 5.2.1: the D flag of the CS descriptor,
// and in IA-32e mode CS.L = 1 for 64-bit code, 3.4.5). A VMX guest whose RIP has bits 63:32 set
// outside 64-bit mode fails VM entry (SDM Vol. 3C 26.3.1.4), so the wrap is not optional.
#pragma once

#include <cstdint>

namespace lantern::guest {

enum class CodeSize : uint8_t { k16, k32, k64 };

// From the guest's EFER.LMA and its CS descriptor's L and D/B bits.
constexpr CodeSize code_size_of(bool long_mode_active, bool cs_l, bool cs_d) {
  if (long_mode_active && cs_l) return CodeSize::k64;
  return cs_d ? CodeSize::k32 : CodeSize::k16;
}

// The instruction pointer after an instruction that ends at `next` (its RIP plus its length).
constexpr uint64_t wrap_instruction_pointer(uint64_t next, CodeSize size) {
  switch (size) {
    case CodeSize::k64: return next;
    case CodeSize::k32: return next & 0xffffffffu;
    case CodeSize::k16: return next & 0xffffu;
  }
  return next;
}

// Whether an instruction of `length` bytes (at most 15, SDM Vol. 2A 2.3.11) that ends at `next`
// can need wrap_instruction_pointer() at all: only when it crossed a 64 KiB boundary, i.e. the
// low 16 bits of `next` are below its length. The common case costs one comparison and no read
// of the code size.
constexpr bool next_rip_may_wrap(uint64_t next, uint64_t length) { return (next & 0xffff) < length; }

}  // namespace lantern::guest
