// A minimal x86 instruction decoder for MMIO exits (the xAPIC page, reached through EPT
// violations): the guest's instruction is fetched by the hypervisor and decoded here to find the
// register, the direction and the instruction length. Portable: bytes in, a description out.
//
// Supported forms (SDM Vol. 2B MOV, Vol. 2A 2.1 instruction format):
//   89 /r      MOV r/m32, r32     (a store of a register)
//   8B /r      MOV r32, r/m32     (a load into a register)
//   C7 /0 id   MOV r/m32, imm32   (a store of an immediate)
//   A1 / A3    MOV EAX, moffs32 / MOV moffs32, EAX (an absolute address, as compilers emit
//              for a constant pointer into EAX)
// with a 32-bit operand size only, any ModRM/SIB/displacement form, the operand-size (66),
// address-size (67) and segment-override prefixes, and REX (without W) in 64-bit code.
// Anything else is kUnsupported with a message: the caller stops the vCPU, never the host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernel/lib/result.h"

namespace lantern::vmx {

// The code segment's default operand/address size (SDM Vol. 3A 3.4.5: CS.D; 64-bit: CS.L).
enum class CodeSize : uint8_t { k16, k32, k64 };

struct MmioMove {
  bool store = false;      // memory is the destination (89, C7); false: a load (8B)
  bool immediate = false;  // C7: the stored value is `imm`, not a register
  uint8_t gpr = 0;         // register index in hardware order (ModRM.reg + REX.R)
  uint32_t imm = 0;
  uint8_t length = 0;  // bytes, prefixes included (<= 15, SDM Vol. 2A 2.3.11)
};

inline constexpr size_t kMaxInstructionBytes = 15;

Result<MmioMove> decode_mmio_move(std::span<const uint8_t> bytes, CodeSize code_size);

}  // namespace lantern::vmx
