#include "vmx/mmio_decode.h"

namespace lantern::vmx {
namespace {

// Legacy prefixes (SDM Vol. 2A 2.1.1): segment overrides, operand size, address size.
bool is_segment_override(uint8_t b) {
  return b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x64 || b == 0x65;
}
constexpr uint8_t kPrefixOperandSize = 0x66;
constexpr uint8_t kPrefixAddressSize = 0x67;
constexpr uint8_t kOpStore = 0x89;     // MOV r/m32, r32
constexpr uint8_t kOpLoad = 0x8b;      // MOV r32, r/m32
constexpr uint8_t kOpStoreImm = 0xc7;  // MOV r/m32, imm32 (ModRM.reg = 0)
constexpr uint8_t kOpLoadMoffs = 0xa1;   // MOV EAX, moffs32
constexpr uint8_t kOpStoreMoffs = 0xa3;  // MOV moffs32, EAX

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
    if ((rex & 0x08) != 0) return make_error(ErrorCode::kUnsupported, "mmio decode: 64-bit operand (REX.W)");
  }
  // Operand size: 32 bits in 32/64-bit code without 66, in 16-bit code with 66 (SDM Vol. 1 3.6).
  const bool operand32 = (code_size == CodeSize::k16) == operand_override;
  if (!operand32)
    return make_error(ErrorCode::kUnsupported, "mmio decode: only 32-bit accesses are supported");
  // Address size: 16 bits in 16-bit code without 67 or in 32-bit code with it (SDM Vol. 1 3.6).
  const bool address16 =
      code_size == CodeSize::k16 ? !address_override : (code_size == CodeSize::k32 && address_override);

  const uint8_t opcode = bytes[i++];
  if (opcode == kOpLoadMoffs || opcode == kOpStoreMoffs) {
    // The offset is an address-size immediate, no ModRM (SDM Vol. 2B MOV, "moffs"; Vol. 2A
    // 2.2.1.4: 8 bytes in 64-bit mode, 4 with the 67 prefix there).
    const size_t offset_bytes = code_size == CodeSize::k64 ? (address_override ? 4 : 8) : (address16 ? 2 : 4);
    if (!need(offset_bytes)) return make_error(ErrorCode::kUnsupported, "mmio decode: truncated moffs");
    MmioMove m;
    m.store = opcode == kOpStoreMoffs;
    m.gpr = 0;  // EAX
    m.length = static_cast<uint8_t>(i + offset_bytes);
    return m;
  }
  if (opcode != kOpStore && opcode != kOpLoad && opcode != kOpStoreImm) {
    return make_error(ErrorCode::kUnsupported,
                      "mmio decode: not a MOV r32<->m32, MOV EAX<->moffs32 or MOV m32, imm32", opcode);
  }
  if (!need(1)) return make_error(ErrorCode::kUnsupported, "mmio decode: truncated before ModRM");
  // ModRM (SDM Vol. 2A 2.1.5, Tables 2-1 and 2-2).
  const uint8_t modrm = bytes[i++];
  const uint8_t mod = modrm >> 6;
  const uint8_t reg = (modrm >> 3) & 7;
  const uint8_t rm = modrm & 7;
  if (mod == 3) return make_error(ErrorCode::kUnsupported, "mmio decode: register operand, not memory");
  if (opcode == kOpStoreImm && reg != 0)
    return make_error(ErrorCode::kUnsupported, "mmio decode: C7 with reg != 0");
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
  MmioMove m;
  m.store = opcode != kOpLoad;
  m.gpr = static_cast<uint8_t>(reg | ((rex & 0x04) != 0 ? 8 : 0));  // REX.R extends ModRM.reg
  if (opcode == kOpStoreImm) {
    if (!need(4)) return make_error(ErrorCode::kUnsupported, "mmio decode: truncated immediate");
    m.immediate = true;
    m.imm = static_cast<uint32_t>(bytes[i]) | (static_cast<uint32_t>(bytes[i + 1]) << 8) |
            (static_cast<uint32_t>(bytes[i + 2]) << 16) | (static_cast<uint32_t>(bytes[i + 3]) << 24);
    m.gpr = 0;
    i += 4;
  }
  m.length = static_cast<uint8_t>(i);
  return m;
}

}  // namespace lantern::vmx
