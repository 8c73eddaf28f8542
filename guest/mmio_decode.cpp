#include "guest/mmio_decode.h"

namespace lantern::guest {
namespace {

// Legacy prefixes (SDM Vol. 2A 2.1.1): segment overrides, operand size, address size.
bool is_segment_override(uint8_t b) {
  return b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x64 || b == 0x65;
}
constexpr uint8_t kPrefixOperandSize = 0x66;
constexpr uint8_t kPrefixAddressSize = 0x67;
// The MOV forms (SDM Vol. 2B MOV): the even opcode of each pair is the 8-bit form.
constexpr uint8_t kOpStore8 = 0x88;         // MOV r/m8, r8
constexpr uint8_t kOpStore = 0x89;          // MOV r/m16/32/64, r16/32/64
constexpr uint8_t kOpLoad8 = 0x8a;          // MOV r8, r/m8
constexpr uint8_t kOpLoad = 0x8b;           // MOV r16/32/64, r/m16/32/64
constexpr uint8_t kOpStoreImm8 = 0xc6;      // MOV r/m8, imm8 (ModRM.reg = 0)
constexpr uint8_t kOpStoreImm = 0xc7;       // MOV r/m16/32/64, imm16/32 (ModRM.reg = 0)
constexpr uint8_t kOpLoadAlMoffs = 0xa0;    // MOV AL, moffs8
constexpr uint8_t kOpLoadEaxMoffs = 0xa1;   // MOV eAX, moffs
constexpr uint8_t kOpStoreAlMoffs = 0xa2;   // MOV moffs8, AL
constexpr uint8_t kOpStoreEaxMoffs = 0xa3;  // MOV moffs, eAX
constexpr uint8_t kRexW = 0x08;             // REX.W: 64-bit operand size (SDM Vol. 2A 2.2.1.2)
constexpr uint8_t kRexR = 0x04;             // REX.R: extends ModRM.reg

uint64_t width_mask(uint8_t width) { return width >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * width)) - 1; }

}  // namespace

Result<MmioMove> decode_mmio_move(std::span<const uint8_t> bytes, CodeSize code_size) {
  size_t i = 0;
  bool operand_override = false;
  bool address_override = false;
  uint8_t rex = 0;
  auto need = [&](size_t n) { return i + n <= bytes.size() && i + n <= kMaxInstructionBytes; };
  for (;;) {
    if (!need(1))
      return make_error(ErrorCode::kUnsupported, "mmio decode: instruction too long or truncated");
    const uint8_t b = bytes[i];
    if (b == kPrefixOperandSize) {
      operand_override = true;
    } else if (b == kPrefixAddressSize) {
      address_override = true;
    } else if (is_segment_override(b)) {
      // The segment only changes the linear address, which the exit already resolved.
    } else {
      break;
    }
    ++i;
  }
  // REX (40-4F) in 64-bit mode only, right before the opcode (SDM Vol. 2A 2.2.1).
  if (code_size == CodeSize::k64 && (bytes[i] & 0xf0) == 0x40) {
    rex = bytes[i++];
    if (!need(1)) return make_error(ErrorCode::kUnsupported, "mmio decode: truncated after REX");
  }
  // Address size: 16 bits in 16-bit code without 67 or in 32-bit code with it (SDM Vol. 1 3.6).
  const bool address16 =
      code_size == CodeSize::k16 ? !address_override : (code_size == CodeSize::k32 && address_override);

  const uint8_t opcode = bytes[i++];
  const bool byte_form = opcode == kOpStore8 || opcode == kOpLoad8 || opcode == kOpStoreImm8 ||
                         opcode == kOpLoadAlMoffs || opcode == kOpStoreAlMoffs;
  // Operand size (SDM Vol. 1 3.6, Table 3-4; Vol. 2A 2.2.1.2): the 8-bit forms are 8-bit whatever
  // the prefixes; otherwise REX.W makes it 64 bits, else 66 switches between the code segment's
  // default (16 bits in 16-bit code, 32 bits otherwise) and the other of 16/32.
  uint8_t width = 4;
  if (byte_form) {
    width = 1;
  } else if ((rex & kRexW) != 0) {
    width = 8;
  } else if ((code_size == CodeSize::k16) != operand_override) {
    width = 2;
  }
  MmioMove m;
  m.width = width;
  if (opcode == kOpLoadAlMoffs || opcode == kOpLoadEaxMoffs || opcode == kOpStoreAlMoffs ||
      opcode == kOpStoreEaxMoffs) {
    // The offset follows the opcode, as wide as the address size: 2, 4 or (64-bit code without
    // 67) 8 bytes (SDM Vol. 2B MOV, "moffs"; Vol. 2A 2.2.1.4). No ModRM; the register is AL/eAX.
    const size_t offset_bytes = address16 ? 2 : (code_size == CodeSize::k64 && !address_override ? 8 : 4);
    if (!need(offset_bytes)) return make_error(ErrorCode::kUnsupported, "mmio decode: truncated moffs");
    m.store = opcode == kOpStoreAlMoffs || opcode == kOpStoreEaxMoffs;
    m.gpr = 0;  // AL/AX/EAX/RAX (REX.B does not apply to A0-A3)
    m.length = static_cast<uint8_t>(i + offset_bytes);
    return m;
  }
  const bool store_register = opcode == kOpStore8 || opcode == kOpStore;
  const bool load = opcode == kOpLoad8 || opcode == kOpLoad;
  const bool store_immediate = opcode == kOpStoreImm8 || opcode == kOpStoreImm;
  if (!store_register && !load && !store_immediate) {
    return make_error(ErrorCode::kUnsupported, "mmio decode: not a MOV between a register or an immediate and memory",
                      opcode);
  }
  if (!need(1)) return make_error(ErrorCode::kUnsupported, "mmio decode: truncated before ModRM");
  // ModRM (SDM Vol. 2A 2.1.5, Tables 2-1 and 2-2).
  const uint8_t modrm = bytes[i++];
  const uint8_t mod = modrm >> 6;
  const uint8_t reg = (modrm >> 3) & 7;
  const uint8_t rm = modrm & 7;
  if (mod == 3) return make_error(ErrorCode::kUnsupported, "mmio decode: register operand, not memory");
  if (store_immediate && reg != 0)
    return make_error(ErrorCode::kUnsupported, "mmio decode: C6/C7 with reg != 0");
  size_t displacement = 0;
  if (address16) {
    // 16-bit addressing: mod 00 rm 110 is disp16; mod 01 disp8; mod 10 disp16.
    if (mod == 0 && rm == 6) displacement = 2;
    if (mod == 1) displacement = 1;
    if (mod == 2) displacement = 2;
  } else {
    // 32/64-bit addressing: rm 100 adds a SIB byte; mod 00 rm 101 is disp32 (RIP-relative in
    // 64-bit mode, same length); SIB base 101 with mod 00 adds disp32 (Table 2-3).
    if (rm == 4) {
      if (!need(1)) return make_error(ErrorCode::kUnsupported, "mmio decode: truncated before SIB");
      const uint8_t sib = bytes[i++];
      if (mod == 0 && (sib & 7) == 5) displacement = 4;
    }
    if (mod == 0 && rm == 5) displacement = 4;
    if (mod == 1) displacement = 1;
    if (mod == 2) displacement = 4;
  }
  if (!need(displacement)) return make_error(ErrorCode::kUnsupported, "mmio decode: truncated displacement");
  i += displacement;
  m.store = !load;
  if (store_immediate) {
    // imm8 for C6, imm16 for a 16-bit C7, imm32 otherwise: sign-extended to 64 bits under REX.W.
    const size_t imm_bytes = width == 1 ? 1 : (width == 2 ? 2 : 4);
    if (!need(imm_bytes)) return make_error(ErrorCode::kUnsupported, "mmio decode: truncated immediate");
    uint64_t imm = 0;
    for (size_t k = 0; k < imm_bytes; ++k) imm |= static_cast<uint64_t>(bytes[i + k]) << (8 * k);
    if (width == 8 && (imm & 0x80000000u) != 0) imm |= 0xffffffff00000000ull;
    m.immediate = true;
    m.imm = imm;
    i += imm_bytes;
  } else if (byte_form && rex == 0 && reg >= 4) {
    m.gpr = static_cast<uint8_t>(reg - 4);  // AH, CH, DH, BH
    m.high_byte = true;
  } else {
    m.gpr = static_cast<uint8_t>(reg | ((rex & kRexR) != 0 ? 8 : 0));
  }
  m.length = static_cast<uint8_t>(i);
  return m;
}

uint64_t mmio_store_value(const MmioMove& move, uint64_t reg) {
  if (move.immediate) return move.imm & width_mask(move.width);
  return (move.high_byte ? reg >> 8 : reg) & width_mask(move.width);
}

uint64_t mmio_load_result(const MmioMove& move, uint64_t reg, uint64_t value) {
  if (move.width == 4) return value & 0xffffffffu;  // zero-extends into bits 63:32
  const unsigned shift = move.high_byte ? 8 : 0;
  const uint64_t mask = width_mask(move.width) << shift;
  return (reg & ~mask) | ((value << shift) & mask);
}

uint64_t perform_mmio_move(const MmioMove& move, guest::MmioDevice& device, uint64_t offset, uint64_t reg) {
  if (move.store) {
    device.mmio_write(offset, move.width, mmio_store_value(move, reg));
    return reg;
  }
  return mmio_load_result(move, reg, device.mmio_read(offset, move.width));
}

}  // namespace lantern::guest
