#include "guest/general_registers.h"

namespace lantern::guest {
namespace {

// Member for each hardware register number (SDM Vol. 2A Table 3-1).
constexpr uint64_t GeneralRegisters::*kSlots[kGprCount] = {
    &GeneralRegisters::rax,        &GeneralRegisters::rcx, &GeneralRegisters::rdx, &GeneralRegisters::rbx,
    &GeneralRegisters::rsp_unused, &GeneralRegisters::rbp, &GeneralRegisters::rsi, &GeneralRegisters::rdi,
    &GeneralRegisters::r8,         &GeneralRegisters::r9,  &GeneralRegisters::r10, &GeneralRegisters::r11,
    &GeneralRegisters::r12,        &GeneralRegisters::r13, &GeneralRegisters::r14, &GeneralRegisters::r15};

Result<void> check_index(unsigned index) {
  if (index >= kGprCount) {
    return make_error(ErrorCode::kInvalidArgument, "register index out of range (0-15)", index);
  }
  if (index == kGprRspIndex) {
    return make_error(ErrorCode::kInvalidArgument,
                      "rsp (index 4) lives in the VMCS (GUEST_RSP), not in GeneralRegisters", index);
  }
  return ok();
}

constexpr uint64_t width_mask(unsigned width_bytes) {
  return width_bytes >= 8 ? ~uint64_t{0} : (uint64_t{1} << (8 * width_bytes)) - 1;
}

struct SubRegisterName {
  SubRegister reg;
  std::string_view name;
};

constexpr SubRegisterName kSubRegisterNames[] = {
    {SubRegister::kEax, "eax"},   {SubRegister::kEcx, "ecx"},   {SubRegister::kEdx, "edx"},
    {SubRegister::kEbx, "ebx"},   {SubRegister::kEsp, "esp"},   {SubRegister::kEbp, "ebp"},
    {SubRegister::kEsi, "esi"},   {SubRegister::kEdi, "edi"},   {SubRegister::kR8d, "r8d"},
    {SubRegister::kR9d, "r9d"},   {SubRegister::kR10d, "r10d"}, {SubRegister::kR11d, "r11d"},
    {SubRegister::kR12d, "r12d"}, {SubRegister::kR13d, "r13d"}, {SubRegister::kR14d, "r14d"},
    {SubRegister::kR15d, "r15d"}, {SubRegister::kAx, "ax"},     {SubRegister::kCx, "cx"},
    {SubRegister::kDx, "dx"},     {SubRegister::kBx, "bx"},     {SubRegister::kSp, "sp"},
    {SubRegister::kBp, "bp"},     {SubRegister::kSi, "si"},     {SubRegister::kDi, "di"},
    {SubRegister::kR8w, "r8w"},   {SubRegister::kR9w, "r9w"},   {SubRegister::kR10w, "r10w"},
    {SubRegister::kR11w, "r11w"}, {SubRegister::kR12w, "r12w"}, {SubRegister::kR13w, "r13w"},
    {SubRegister::kR14w, "r14w"}, {SubRegister::kR15w, "r15w"}, {SubRegister::kAl, "al"},
    {SubRegister::kCl, "cl"},     {SubRegister::kDl, "dl"},     {SubRegister::kBl, "bl"},
    {SubRegister::kSpl, "spl"},   {SubRegister::kBpl, "bpl"},   {SubRegister::kSil, "sil"},
    {SubRegister::kDil, "dil"},   {SubRegister::kR8b, "r8b"},   {SubRegister::kR9b, "r9b"},
    {SubRegister::kR10b, "r10b"}, {SubRegister::kR11b, "r11b"}, {SubRegister::kR12b, "r12b"},
    {SubRegister::kR13b, "r13b"}, {SubRegister::kR14b, "r14b"}, {SubRegister::kR15b, "r15b"},
    {SubRegister::kAh, "ah"},     {SubRegister::kCh, "ch"},     {SubRegister::kDh, "dh"},
    {SubRegister::kBh, "bh"},
};

}  // namespace

std::string_view sub_register_name(SubRegister r) {
  for (const auto& entry : kSubRegisterNames) {
    if (entry.reg == r) return entry.name;
  }
  return "?";
}

Result<SubRegister> find_sub_register(std::string_view name) {
  for (const auto& entry : kSubRegisterNames) {
    if (entry.name == name) return entry.reg;
  }
  return make_error(ErrorCode::kNotFound, "no such sub-register name");
}

Result<uint64_t> GeneralRegisters::get_reg_of_index(unsigned index) const {
  TRY(check_index(index));
  return this->*kSlots[index];
}

Result<void> GeneralRegisters::set_reg_of_index(unsigned index, uint64_t value) {
  TRY(check_index(index));
  this->*kSlots[index] = value;
  return ok();
}

Result<uint64_t> GeneralRegisters::get_by_width(unsigned index, unsigned width_bytes) const {
  if (width_bytes != 1 && width_bytes != 2 && width_bytes != 4 && width_bytes != 8) {
    return make_error(ErrorCode::kInvalidArgument, "operand width must be 1, 2, 4 or 8 bytes", width_bytes);
  }
  const uint64_t full = TRY(get_reg_of_index(index));
  return full & width_mask(width_bytes);
}

Result<void> GeneralRegisters::set_by_width(unsigned index, unsigned width_bytes, uint64_t value) {
  TRY(check_index(index));
  uint64_t& slot = this->*kSlots[index];
  switch (width_bytes) {
    case 8: slot = value; return ok();
    case 4:
      // SDM Vol. 1 3.4.1.1: 32-bit operands generate a 32-bit result, zero-extended to 64 bits.
      slot = value & 0xffffffffu;
      return ok();
    case 2:
    case 1:
      // SDM Vol. 1 3.4.1.1: 8- and 16-bit operands leave the upper 56/48 bits unchanged.
      slot = (slot & ~width_mask(width_bytes)) | (value & width_mask(width_bytes));
      return ok();
    default:
      return make_error(ErrorCode::kInvalidArgument, "operand width must be 1, 2, 4 or 8 bytes", width_bytes);
  }
}

Result<uint64_t> GeneralRegisters::get(SubRegister r) const {
  const unsigned index = sub_register_index(r);
  switch (sub_register_view(r)) {
    case SubRegisterView::kDword: return get_by_width(index, 4);
    case SubRegisterView::kWord: return get_by_width(index, 2);
    case SubRegisterView::kLowByte: return get_by_width(index, 1);
    case SubRegisterView::kHighByte: {
      if (index > 3) break;
      const uint64_t full = TRY(get_reg_of_index(index));
      return (full >> 8) & 0xff;
    }
  }
  return make_error(ErrorCode::kInvalidArgument, "not a sub-register", static_cast<uint8_t>(r));
}

Result<void> GeneralRegisters::set(SubRegister r, uint64_t value) {
  const unsigned index = sub_register_index(r);
  switch (sub_register_view(r)) {
    case SubRegisterView::kDword: return set_by_width(index, 4, value);
    case SubRegisterView::kWord: return set_by_width(index, 2, value);
    case SubRegisterView::kLowByte: return set_by_width(index, 1, value);
    case SubRegisterView::kHighByte: {
      if (index > 3) break;
      TRY(check_index(index));
      uint64_t& slot = this->*kSlots[index];
      // ah/ch/dh/bh are bits 15:8 (SDM Vol. 1 3.4.1, Figure 3-5); all other bits unchanged.
      slot = (slot & ~uint64_t{0xff00}) | ((value & 0xff) << 8);
      return ok();
    }
  }
  return make_error(ErrorCode::kInvalidArgument, "not a sub-register", static_cast<uint8_t>(r));
}

Result<uint32_t> GeneralRegisters::get32(Gpr r) const {
  const uint64_t v = TRY(get_by_width(static_cast<unsigned>(r), 4));
  return static_cast<uint32_t>(v);
}

Result<void> GeneralRegisters::set32(Gpr r, uint32_t value) {
  return set_by_width(static_cast<unsigned>(r), 4, value);
}

Result<void> GeneralRegisters::set16(Gpr r, uint16_t value) {
  return set_by_width(static_cast<unsigned>(r), 2, value);
}

Result<void> GeneralRegisters::set8l(Gpr r, uint8_t value) {
  return set_by_width(static_cast<unsigned>(r), 1, value);
}

Result<void> GeneralRegisters::set8h(Gpr r, uint8_t value) {
  const unsigned index = static_cast<unsigned>(r);
  if (index > 3) {
    return make_error(ErrorCode::kInvalidArgument,
                      "only rax, rcx, rdx and rbx have a high-byte view (ah/ch/dh/bh)", index);
  }
  return set(static_cast<SubRegister>(0x40 | index), value);
}

}  // namespace lantern::guest
