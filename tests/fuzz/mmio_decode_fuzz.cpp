// Fuzz target: the MMIO instruction decoder (guest/mmio_decode.h).
//
// The first input byte picks the code size (16/32/64-bit); the rest is the instruction bytes the
// hypervisor fetched, copied into a buffer of exactly that size. Invariants on every accepted input:
//   - the reported length is at least 2 (opcode + ModRM), at most 15 (SDM Vol. 2A 2.3.11) and never
//     more than the bytes given;
//   - the opcode the decoder acted on decides the form: 88/89 are register stores, 8A/8B loads,
//     C6 /0 and C7 /0 immediate stores whose immediate is the instruction's last 1, 2 or 4 bytes,
//     A0-A3 moves of AL/eAX; the 8-bit opcodes (88, 8A, C6, A0, A2) move one byte;
//   - the register index fits the code size (0-7 without REX, 0-15 in 64-bit code), and AH..BH
//     (high_byte) appear only for one-byte moves of registers 0-3;
//   - decoding exactly the reported bytes gives the same answer (the length is self-consistent).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_check.h"
#include "guest/mmio_decode.h"

namespace lantern::guest {
namespace {

void run(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const CodeSize code_size = data[0] % 3 == 0   ? CodeSize::k16
                             : data[0] % 3 == 1 ? CodeSize::k32
                                                : CodeSize::k64;
  const std::vector<uint8_t> bytes(data + 1, data + size);
  const Result<MmioMove> decoded = decode_mmio_move(bytes, code_size);
  if (!decoded) return;
  const MmioMove& m = *decoded;
  FUZZ_CHECK(m.length >= 2 && m.length <= kMaxInstructionBytes, std::to_string(m.length));
  FUZZ_CHECK(m.length <= bytes.size(), std::to_string(m.length) + " > " + std::to_string(bytes.size()));
  FUZZ_CHECK(m.gpr < (code_size == CodeSize::k64 ? 16 : 8), std::to_string(m.gpr));
  // Find the opcode after the legacy prefixes and REX.
  size_t i = 0;
  bool address_override = false;  // 67 (SDM Vol. 2A 2.1.1)
  while (i < m.length) {
    const uint8_t b = bytes[i];
    address_override = address_override || b == 0x67;
    const bool legacy =
        b == 0x66 || b == 0x67 || b == 0x26 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x64 || b == 0x65;
    const bool rex = code_size == CodeSize::k64 && (b & 0xf0) == 0x40;
    if (!legacy && !rex) break;
    ++i;
  }
  FUZZ_CHECK(i + 1 < m.length, "no opcode and ModRM (or offset) inside the reported length");
  const uint8_t opcode = bytes[i];
  // MOV AL/eAX, moffs (A0/A1) and MOV moffs, AL/eAX (A2/A3) have no ModRM: the offset follows the
  // opcode, as wide as the address size (SDM Vol. 2B MOV; Vol. 2A 2.2.1.4; Vol. 1 3.6).
  const bool moffs = opcode >= 0xa0 && opcode <= 0xa3;
  const bool byte_form = opcode == 0x88 || opcode == 0x8a || opcode == 0xc6 || opcode == 0xa0 || opcode == 0xa2;
  FUZZ_CHECK(opcode == 0x88 || opcode == 0x89 || opcode == 0x8a || opcode == 0x8b || opcode == 0xc6 ||
                 opcode == 0xc7 || moffs,
             std::to_string(opcode));
  FUZZ_CHECK(m.width == 1 || m.width == 2 || m.width == 4 || m.width == 8, std::to_string(m.width));
  FUZZ_CHECK((m.width == 1) == byte_form, "operand size does not match the opcode");
  FUZZ_CHECK(!m.high_byte || (m.width == 1 && m.gpr < 4), "AH..BH outside a one-byte move");
  if (moffs) {
    const size_t address_bytes = code_size == CodeSize::k64   ? (address_override ? 4 : 8)
                                 : code_size == CodeSize::k32 ? (address_override ? 2 : 4)
                                                              : (address_override ? 4 : 2);
    FUZZ_CHECK(m.length - (i + 1) == address_bytes,
               std::to_string(m.length - (i + 1)) + " offset bytes, not " + std::to_string(address_bytes));
    FUZZ_CHECK(m.gpr == 0 && !m.high_byte && m.store == (opcode == 0xa2 || opcode == 0xa3),
               "moffs form is not MOV AL/eAX<->memory");
  } else {
    FUZZ_CHECK(m.store == (opcode != 0x8a && opcode != 0x8b), "direction does not match the opcode");
  }
  FUZZ_CHECK(m.immediate == (opcode == 0xc6 || opcode == 0xc7), "immediate does not match the opcode");
  if (m.immediate) {
    FUZZ_CHECK(((bytes[i + 1] >> 3) & 7) == 0, "C6/C7 with ModRM.reg other than /0");
    const size_t imm_bytes = m.width == 1 ? 1 : (m.width == 2 ? 2 : 4);
    const size_t at = m.length - imm_bytes;
    uint64_t imm = 0;
    for (size_t k = 0; k < imm_bytes; ++k) imm |= static_cast<uint64_t>(bytes[at + k]) << (8 * k);
    if (m.width == 8 && (imm & 0x80000000u) != 0) imm |= 0xffffffff00000000ull;  // sign-extended
    FUZZ_CHECK(imm == m.imm, "the immediate is not the instruction's last bytes");
  }
  const std::vector<uint8_t> exact(bytes.begin(), bytes.begin() + m.length);
  const Result<MmioMove> again = decode_mmio_move(exact, code_size);
  FUZZ_CHECK(again && again->length == m.length && again->gpr == m.gpr && again->store == m.store &&
                 again->imm == m.imm && again->width == m.width && again->high_byte == m.high_byte,
             "decoding exactly the reported bytes gives another answer");
}

}  // namespace
}  // namespace lantern::guest

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lantern::guest::run(data, size);
  return 0;
}
