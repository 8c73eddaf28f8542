#include "guest/string_io.h"

namespace lantern::guest {
namespace {

uint64_t address_mask(uint8_t bits) {
  return bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
}

// Writes `value` into `reg` at the address size: 16 bits keep the upper bits, 32 bits
// zero-extend (SDM Vol. 1 3.4.1.1), 64 bits replace.
void set_at_address_size(uint64_t& reg, uint64_t value, uint8_t bits) {
  if (bits == 16) {
    reg = (reg & ~uint64_t{0xffff}) | (value & 0xffff);
  } else {
    reg = value & address_mask(bits);
  }
}

}  // namespace

Result<StringIoProgress> run_string_io(const StringIoOp& op, StringIoRegisters& regs,
                                       GuestLinearMemory& memory, PortBus& ports, uint64_t max_elements) {
  if (op.width != 1 && op.width != 2 && op.width != 4) {
    return make_error(ErrorCode::kInvalidArgument, "string I/O element size must be 1, 2 or 4 bytes",
                      op.width);
  }
  if (op.address_bits != 16 && op.address_bits != 32 && op.address_bits != 64) {
    return make_error(ErrorCode::kInvalidArgument, "string I/O address size must be 16, 32 or 64 bits",
                      op.address_bits);
  }
  const uint64_t mask = address_mask(op.address_bits);
  // Outside 64-bit mode a linear address is 32 bits wide (SDM Vol. 3A 3.4: segment base +
  // offset wraps at 4 GiB).
  const uint64_t linear_mask = op.address_bits == 64 ? ~uint64_t{0} : 0xffffffffu;
  uint64_t& index = op.in ? regs.rdi : regs.rsi;
  StringIoProgress progress;
  if (max_elements == 0) max_elements = 1;
  while (progress.elements < max_elements) {
    if (op.rep && (regs.rcx & mask) == 0) break;
    const uint64_t linear = (op.segment_base + (index & mask)) & linear_mask;
    uint8_t bytes[4] = {};
    if (op.in) {
      const uint32_t value = ports.read(op.port, op.width);
      for (uint8_t i = 0; i < op.width; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
      TRY(memory.write(linear, bytes, op.width));
    } else {
      TRY(memory.read(linear, bytes, op.width));
      uint32_t value = 0;
      for (uint8_t i = op.width; i-- > 0;) value = (value << 8) | bytes[i];
      ports.write(op.port, op.width, value);
    }
    const uint64_t step = op.width;
    set_at_address_size(index, regs.direction_down ? (index & mask) - step : (index & mask) + step,
                        op.address_bits);
    ++progress.elements;
    if (!op.rep) break;
    set_at_address_size(regs.rcx, (regs.rcx & mask) - 1, op.address_bits);
  }
  progress.complete = !op.rep || (regs.rcx & mask) == 0;
  return progress;
}

}  // namespace lantern::guest
