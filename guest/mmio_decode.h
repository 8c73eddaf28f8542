// A minimal x86 instruction decoder for MMIO exits (the xAPIC page and the VM's devices, reached
// through EPT violations or nested page faults): the guest's instruction is fetched by the
// hypervisor and decoded here to find the register, the direction, the operand size and the
// instruction length. Portable: bytes in, a description out.
//
// Supported forms (SDM Vol. 2B MOV, Vol. 2A 2.1 instruction format):
//   88 /r      MOV r/m8, r8             89 /r      MOV r/m16/32/64, r16/32/64   (stores)
//   8A /r      MOV r8, r/m8             8B /r      MOV r16/32/64, r/m16/32/64   (loads)
//   C6 /0 ib   MOV r/m8, imm8           C7 /0 iw/id MOV r/m16/32/64, imm16/imm32 (sign-extended
//                                                  to 64 bits with REX.W)
//   A0 / A2    MOV AL, moffs8 / MOV moffs8, AL
//   A1 / A3    MOV eAX, moffs / MOV moffs, eAX (an absolute address, no ModRM)
// with any ModRM/SIB/displacement form, the operand-size (66), address-size (67) and
// segment-override prefixes, and REX in 64-bit code. Anything else is kUnsupported with a
// message: the caller stops the vCPU, never the host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "guest/instruction_pointer.h"  // CodeSize
#include "guest/io_bus.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

// The code segment's default operand/address size (SDM Vol. 3A 3.4.5: CS.D; 64-bit: CS.L).
struct MmioMove {
  bool store = false;      // memory is the destination (88, 89, A2, A3, C6, C7); false: a load
  bool immediate = false;  // C6/C7: the stored value is `imm`, not a register
  // The register in hardware order (ModRM.reg + REX.R; 0 for the moffs forms). With an 8-bit
  // operand and no REX prefix, ModRM.reg 4-7 name AH, CH, DH and BH: gpr 0-3 with high_byte
  // set; with REX they name SPL, BPL, SIL and DIL (SDM Vol. 2A 2.1.5 Table 2-2, Vol. 1 3.4.1.1).
  uint8_t gpr = 0;
  bool high_byte = false;
  uint8_t width = 4;  // operand size in bytes: 1, 2, 4 or 8 (SDM Vol. 1 3.6, Vol. 2A 2.2.1.2)
  uint64_t imm = 0;   // C6/C7: the immediate, zero-extended (sign-extended for C7 with REX.W)
  uint8_t length = 0;  // bytes, prefixes included (<= 15, SDM Vol. 2A 2.3.11)
};

inline constexpr size_t kMaxInstructionBytes = 15;

Result<MmioMove> decode_mmio_move(std::span<const uint8_t> bytes, CodeSize code_size);

// The bytes a store writes to memory: the immediate, or the register's low `width` bytes (bits
// 15:8 for AH..BH), zero-extended.
uint64_t mmio_store_value(const MmioMove& move, uint64_t reg);

// The register after a load of `value` (the low `width` bytes are used): an 8-bit or 16-bit load
// replaces only those bits of the register, a 32-bit load zero-extends into all 64 bits, a 64-bit
// load replaces it (SDM Vol. 1 3.4.1.1).
uint64_t mmio_load_result(const MmioMove& move, uint64_t reg, uint64_t value);

// Carries out a decoded move on `device` at `offset` with the move's width and returns the
// register's value afterwards: a store writes mmio_store_value(move, reg) and returns `reg`; a
// load returns mmio_load_result() of what the device reads. Both backends' MMIO exits end here.
uint64_t perform_mmio_move(const MmioMove& move, guest::MmioDevice& device, uint64_t offset, uint64_t reg);

}  // namespace lantern::guest
