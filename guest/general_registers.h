// The guest's general-purpose registers as saved by a backend's exit stub (vmx/hw/vmx_entry.S;
// SvmVcpu keeps its copy in the same struct, with RAX in the VMCB).
//
// The layout is the hardware register-number order (SDM Vol. 2A, Table 2-2 "32-Bit
// Addressing Forms with the ModR/M Byte" and Table 3-1 "Register Codes Associated With +rb,
// +rw, +rd, +ro"): rax=0, rcx=1, rdx=2, rbx=3, rsp=4, rbp=5, rsi=6, rdi=7, r8..r15=8..15.
// The same numbering is used by VM-exit qualifications (SDM Vol. 3C 27.2.1, Table 27-3) and
// the VM-exit instruction-information field, so a decoded register index indexes this struct.
//
// Slot 4 (rsp) is never used: the guest RSP lives in the VMCS (GUEST_RSP, SDM Vol. 3C
// 24.4.1) or the VMCB (RSP, APM Vol. 2 Table B-2), so reading or writing index 4 here is an
// error rather than a silent no-op.
//
// The asm entry/exit stub saves and restores this struct by offset; the offsets below are
// static_asserted so the stub and this header cannot drift apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "kernel/lib/result.h"
#include "guest/general_registers_layout.h"

namespace lantern::guest {

// Hardware register numbers (SDM Vol. 2A Table 3-1).
enum class Gpr : uint8_t {
  kRax = 0,
  kRcx = 1,
  kRdx = 2,
  kRbx = 3,
  kRsp = 4,  // lives in the VMCS (GUEST_RSP); rejected by every accessor here
  kRbp = 5,
  kRsi = 6,
  kRdi = 7,
  kR8 = 8,
  kR9 = 9,
  kR10 = 10,
  kR11 = 11,
  kR12 = 12,
  kR13 = 13,
  kR14 = 14,
  kR15 = 15,
};

inline constexpr unsigned kGprCount = 16;
inline constexpr unsigned kGprRspIndex = 4;

// Name of a 64-bit register by hardware index ("rax".."r15"); "?" when index > 15.
constexpr std::string_view gpr_name(unsigned index) {
  constexpr std::string_view kNames[kGprCount] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                                  "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};
  return index < kGprCount ? kNames[index] : std::string_view("?");
}

// Every named sub-register. The value packs (view << 4) | hardware index so accessors need no
// table: view 1 = 32-bit (eax..r15d), 2 = 16-bit (ax..r15w), 3 = low byte (al..r15b),
// 4 = high byte of the low word (ah, ch, dh, bh: only indices 0-3 have one, SDM Vol. 1 3.4.1).
enum class SubRegister : uint8_t {
  // 32-bit views.
  kEax = 0x10,
  kEcx,
  kEdx,
  kEbx,
  kEsp,
  kEbp,
  kEsi,
  kEdi,
  kR8d,
  kR9d,
  kR10d,
  kR11d,
  kR12d,
  kR13d,
  kR14d,
  kR15d,
  // 16-bit views.
  kAx = 0x20,
  kCx,
  kDx,
  kBx,
  kSp,
  kBp,
  kSi,
  kDi,
  kR8w,
  kR9w,
  kR10w,
  kR11w,
  kR12w,
  kR13w,
  kR14w,
  kR15w,
  // Low-byte views.
  kAl = 0x30,
  kCl,
  kDl,
  kBl,
  kSpl,
  kBpl,
  kSil,
  kDil,
  kR8b,
  kR9b,
  kR10b,
  kR11b,
  kR12b,
  kR13b,
  kR14b,
  kR15b,
  // High-byte views (bits 15:8 of rax, rcx, rdx, rbx).
  kAh = 0x40,
  kCh,
  kDh,
  kBh,
};

enum class SubRegisterView : uint8_t { kDword = 1, kWord = 2, kLowByte = 3, kHighByte = 4 };

constexpr unsigned sub_register_index(SubRegister r) {
  return static_cast<uint8_t>(r) & 0xf;
}
constexpr SubRegisterView sub_register_view(SubRegister r) {
  return static_cast<SubRegisterView>(static_cast<uint8_t>(r) >> 4);
}
// "eax", "r9w", "ah", ...
std::string_view sub_register_name(SubRegister r);
// Inverse of sub_register_name(); kNotFound for an unknown name.
Result<SubRegister> find_sub_register(std::string_view name);

struct GeneralRegisters {
  uint64_t rax;
  uint64_t rcx;
  uint64_t rdx;
  uint64_t rbx;
  uint64_t rsp_unused;  // slot 4: the guest RSP is GUEST_RSP in the VMCS
  uint64_t rbp;
  uint64_t rsi;
  uint64_t rdi;
  uint64_t r8;
  uint64_t r9;
  uint64_t r10;
  uint64_t r11;
  uint64_t r12;
  uint64_t r13;
  uint64_t r14;
  uint64_t r15;

  // Full 64-bit access by hardware index. Index 4 (rsp) and > 15 are kInvalidArgument.
  Result<uint64_t> get_reg_of_index(unsigned index) const;
  Result<void> set_reg_of_index(unsigned index, uint64_t value);
  Result<uint64_t> get(Gpr r) const { return get_reg_of_index(static_cast<unsigned>(r)); }
  Result<void> set(Gpr r, uint64_t value) { return set_reg_of_index(static_cast<unsigned>(r), value); }

  // Access by operand width in bytes (1, 2, 4 or 8), as I/O and MOV-CR exits need it.
  // Writes follow SDM Vol. 1 3.4.1.1: a 4-byte write zero-extends into bits 63:32, 1- and
  // 2-byte writes leave the other bits unchanged. Reads return the low `width` bytes.
  Result<uint64_t> get_by_width(unsigned index, unsigned width_bytes) const;
  Result<void> set_by_width(unsigned index, unsigned width_bytes, uint64_t value);

  // Named sub-register views (eax..r15d, ax..r15w, al..r15b, ah/ch/dh/bh), same rules.
  Result<uint64_t> get(SubRegister r) const;
  Result<void> set(SubRegister r, uint64_t value);

  // Shorthands over a 64-bit register number.
  Result<uint32_t> get32(Gpr r) const;
  Result<void> set32(Gpr r, uint32_t value);  // zeroes bits 63:32
  Result<void> set16(Gpr r, uint16_t value);  // keeps bits 63:16
  Result<void> set8l(Gpr r, uint8_t value);   // keeps bits 63:8
  Result<void> set8h(Gpr r, uint8_t value);   // rax/rcx/rdx/rbx only; keeps all but 15:8
};

// The asm stub addresses the registers by these offsets (8 * hardware index).
inline constexpr size_t kGeneralRegistersSize = LANTERN_GPR_SIZE;
static_assert(std::is_standard_layout_v<GeneralRegisters>);
static_assert(std::is_trivially_copyable_v<GeneralRegisters>);
static_assert(sizeof(GeneralRegisters) == kGeneralRegistersSize);
static_assert(offsetof(GeneralRegisters, rax) == LANTERN_GPR_RAX);
static_assert(offsetof(GeneralRegisters, rcx) == LANTERN_GPR_RCX);
static_assert(offsetof(GeneralRegisters, rdx) == LANTERN_GPR_RDX);
static_assert(offsetof(GeneralRegisters, rbx) == LANTERN_GPR_RBX);
static_assert(offsetof(GeneralRegisters, rsp_unused) == LANTERN_GPR_RSP_UNUSED);
static_assert(offsetof(GeneralRegisters, rbp) == LANTERN_GPR_RBP);
static_assert(offsetof(GeneralRegisters, rsi) == LANTERN_GPR_RSI);
static_assert(offsetof(GeneralRegisters, rdi) == LANTERN_GPR_RDI);
static_assert(offsetof(GeneralRegisters, r8) == LANTERN_GPR_R8);
static_assert(offsetof(GeneralRegisters, r9) == LANTERN_GPR_R9);
static_assert(offsetof(GeneralRegisters, r10) == LANTERN_GPR_R10);
static_assert(offsetof(GeneralRegisters, r11) == LANTERN_GPR_R11);
static_assert(offsetof(GeneralRegisters, r12) == LANTERN_GPR_R12);
static_assert(offsetof(GeneralRegisters, r13) == LANTERN_GPR_R13);
static_assert(offsetof(GeneralRegisters, r14) == LANTERN_GPR_R14);
static_assert(offsetof(GeneralRegisters, r15) == LANTERN_GPR_R15);

}  // namespace lantern::guest
