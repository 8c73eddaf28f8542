#include "svm/cr4_write.h"

namespace lantern::svm {
namespace {

// CPUID.01H:EDX (SDM Vol. 2A Table 3-11): VME 1, DE 2, PSE 3, PAE 6, MCE 7, PGE 13, FXSR 24, SSE 25.
constexpr uint32_t kEdxVme = 1u << 1;
constexpr uint32_t kEdxDe = 1u << 2;
constexpr uint32_t kEdxPse = 1u << 3;
constexpr uint32_t kEdxPae = 1u << 6;
constexpr uint32_t kEdxMce = 1u << 7;
constexpr uint32_t kEdxPge = 1u << 13;
constexpr uint32_t kEdxFxsr = 1u << 24;
constexpr uint32_t kEdxSse = 1u << 25;
// CPUID.01H:ECX (Table 3-10): PCID 17, XSAVE 26.
constexpr uint32_t kEcxPcid = 1u << 17;
constexpr uint32_t kEcxXsave = 1u << 26;
// CPUID.(07H,0):EBX: FSGSBASE 0, SMEP 7, SMAP 20; ECX: UMIP 2, PKU 3, CET_SS 7, LA57 16, PKS 31.
constexpr uint32_t kEbx7Fsgsbase = 1u << 0;
constexpr uint32_t kEbx7Smep = 1u << 7;
constexpr uint32_t kEbx7Smap = 1u << 20;
constexpr uint32_t kEcx7Umip = 1u << 2;
constexpr uint32_t kEcx7Pku = 1u << 3;
constexpr uint32_t kEcx7CetSs = 1u << 7;
constexpr uint32_t kEcx7La57 = 1u << 16;
constexpr uint32_t kEcx7Pks = 1u << 31;

constexpr uint64_t kCr0Wp = 1u << 16;  // SDM Vol. 3A 2.5
constexpr uint64_t kCr3PcidBits = 0xfff;

// Bits whose change drops cached translations (SDM Vol. 3A 4.10.4.1).
constexpr uint64_t kPagingBits = cr4::kPse | cr4::kPae | cr4::kPge | cr4::kPcide | cr4::kSmep | cr4::kSmap |
                                 cr4::kPke | cr4::kLa57 | cr4::kPks;

bool is_legacy_prefix(uint8_t b) {
  switch (b) {
    case 0x66: case 0x67: case 0xf2: case 0xf3:
    case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65:
      return true;
    default:
      return false;
  }
}

}  // namespace

uint64_t cr4_allowed_bits(const Cr4CpuidView& c) {
  uint64_t allowed = cr4::kTsd | cr4::kPce;
  const auto has = [](uint32_t word, uint32_t bit) { return (word & bit) != 0; };
  if (has(c.leaf1_edx, kEdxVme)) allowed |= cr4::kVme | cr4::kPvi;
  if (has(c.leaf1_edx, kEdxDe)) allowed |= cr4::kDe;
  if (has(c.leaf1_edx, kEdxPse)) allowed |= cr4::kPse;
  if (has(c.leaf1_edx, kEdxPae)) allowed |= cr4::kPae;
  if (has(c.leaf1_edx, kEdxMce)) allowed |= cr4::kMce;
  if (has(c.leaf1_edx, kEdxPge)) allowed |= cr4::kPge;
  if (has(c.leaf1_edx, kEdxFxsr)) allowed |= cr4::kOsfxsr;
  if (has(c.leaf1_edx, kEdxSse)) allowed |= cr4::kOsxmmexcpt;
  if (has(c.leaf1_ecx, kEcxPcid)) allowed |= cr4::kPcide;
  if (has(c.leaf1_ecx, kEcxXsave)) allowed |= cr4::kOsxsave;
  if (has(c.leaf7_ebx, kEbx7Fsgsbase)) allowed |= cr4::kFsgsbase;
  if (has(c.leaf7_ebx, kEbx7Smep)) allowed |= cr4::kSmep;
  if (has(c.leaf7_ebx, kEbx7Smap)) allowed |= cr4::kSmap;
  if (has(c.leaf7_ecx, kEcx7Umip)) allowed |= cr4::kUmip;
  if (has(c.leaf7_ecx, kEcx7Pku)) allowed |= cr4::kPke;
  if (has(c.leaf7_ecx, kEcx7CetSs)) allowed |= cr4::kCet;
  if (has(c.leaf7_ecx, kEcx7La57)) allowed |= cr4::kLa57;
  if (has(c.leaf7_ecx, kEcx7Pks)) allowed |= cr4::kPks;
  return allowed;
}

Cr4Write evaluate_cr4_write(uint64_t old_cr4, uint64_t new_cr4, uint64_t allowed, uint64_t cr0, uint64_t cr3,
                            bool long_mode_active) {
  Cr4Write w;
  const auto fault = [&w](const char* why) {
    w.general_protection = true;
    w.why = why;
    return w;
  };
  if ((new_cr4 & ~allowed) != 0) return fault("a reserved CR4 bit, or one whose feature CPUID does not show");
  if (long_mode_active && (new_cr4 & cr4::kPae) == 0) return fault("CR4.PAE cleared in long mode");
  if (long_mode_active && ((new_cr4 ^ old_cr4) & cr4::kLa57) != 0) return fault("CR4.LA57 changed in long mode");
  const bool pcide_set = (new_cr4 & cr4::kPcide) != 0 && (old_cr4 & cr4::kPcide) == 0;
  if (pcide_set && !long_mode_active) return fault("CR4.PCIDE set outside long mode");
  if (pcide_set && (cr3 & kCr3PcidBits) != 0) return fault("CR4.PCIDE set with CR3[11:0] not 0");
  if ((new_cr4 & cr4::kCet) != 0 && (cr0 & kCr0Wp) == 0) return fault("CR4.CET set with CR0.WP clear");
  w.flush_tlb = ((new_cr4 ^ old_cr4) & kPagingBits) != 0;
  return w;
}

Result<MovToCr> decode_mov_to_cr(std::span<const uint8_t> bytes, guest::CodeSize code_size) {
  size_t at = 0;
  while (at < bytes.size() && at < guest::kMaxInstructionBytes && is_legacy_prefix(bytes[at])) ++at;
  uint8_t rex = 0;
  if (code_size == guest::CodeSize::k64 && at < bytes.size() && (bytes[at] & 0xf0) == 0x40) rex = bytes[at++];
  if (at + 3 > bytes.size()) return make_error(ErrorCode::kUnsupported, "MOV to CR: instruction truncated");
  if (bytes[at] != 0x0f || bytes[at + 1] != 0x22) {
    return make_error(ErrorCode::kUnsupported, "not a MOV to a control register (0F 22 /r)", bytes[at]);
  }
  const uint8_t modrm = bytes[at + 2];
  MovToCr m;
  m.cr = static_cast<uint8_t>(((modrm >> 3) & 7) | ((rex & 0x4) << 1));  // REX.R
  m.gpr = static_cast<uint8_t>((modrm & 7) | ((rex & 0x1) << 3));        // REX.B
  m.length = static_cast<uint8_t>(at + 3);
  if (m.length > guest::kMaxInstructionBytes) return make_error(ErrorCode::kUnsupported, "MOV to CR longer than 15 bytes");
  return m;
}

}  // namespace lantern::svm
