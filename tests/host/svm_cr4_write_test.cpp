#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "svm/cr4_write.h"

namespace lantern::svm {
namespace {

// A CPU with the common features: leaf 1 EDX VME DE PSE PAE MCE PGE FXSR SSE, ECX PCID (no
// XSAVE: the SVM backend hides it); leaf 7 EBX FSGSBASE SMEP SMAP, ECX UMIP (no LA57).
Cr4CpuidView typical_guest() {
  Cr4CpuidView v;
  v.leaf1_edx = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 6) | (1u << 7) | (1u << 13) | (1u << 24) | (1u << 25);
  v.leaf1_ecx = 1u << 17;
  v.leaf7_ebx = (1u << 0) | (1u << 7) | (1u << 20);
  v.leaf7_ecx = 1u << 2;
  return v;
}

constexpr uint64_t kCr0Wp = 1u << 16;

TEST(SvmCr4Write, AllowedBitsFollowTheGuestsCpuid) {
  const uint64_t allowed = cr4_allowed_bits(typical_guest());
  for (uint64_t bit : {cr4::kVme, cr4::kPvi, cr4::kTsd, cr4::kDe, cr4::kPse, cr4::kPae, cr4::kMce, cr4::kPge,
                       cr4::kPce, cr4::kOsfxsr, cr4::kOsxmmexcpt, cr4::kUmip, cr4::kFsgsbase, cr4::kPcide,
                       cr4::kSmep, cr4::kSmap}) {
    EXPECT_NE(allowed & bit, 0u) << bit;
  }
  // Hidden from this guest: XSAVE, LA57, PKU, CET, PKS; never on SVM: VMXE (13), SMXE (14).
  for (uint64_t bit : {cr4::kOsxsave, cr4::kLa57, cr4::kPke, cr4::kCet, cr4::kPks, uint64_t{1} << 13,
                       uint64_t{1} << 14, uint64_t{1} << 28, uint64_t{1} << 32}) {
    EXPECT_EQ(allowed & bit, 0u) << bit;
  }
  // Only TSD and PCE without any feature bit.
  EXPECT_EQ(cr4_allowed_bits(Cr4CpuidView{}), cr4::kTsd | cr4::kPce);
}

TEST(SvmCr4Write, ReservedOrHiddenBitsAreGp) {
  const uint64_t allowed = cr4_allowed_bits(typical_guest());
  const Cr4Write osxsave = evaluate_cr4_write(cr4::kPae, cr4::kPae | cr4::kOsxsave, allowed, 0, 0, false);
  EXPECT_TRUE(osxsave.general_protection);
  EXPECT_TRUE(evaluate_cr4_write(0, uint64_t{1} << 13, allowed, 0, 0, false).general_protection);  // VMXE
  EXPECT_TRUE(evaluate_cr4_write(0, uint64_t{1} << 40, allowed, 0, 0, false).general_protection);
  const Cr4Write fine = evaluate_cr4_write(0, cr4::kPae | cr4::kOsfxsr, allowed, 0, 0, false);
  EXPECT_FALSE(fine.general_protection);
  EXPECT_EQ(fine.why, nullptr);
}

TEST(SvmCr4Write, LongModeRules) {
  const uint64_t allowed = cr4_allowed_bits(typical_guest());
  const uint64_t lm = cr4::kPae | cr4::kOsfxsr;
  EXPECT_TRUE(evaluate_cr4_write(lm, cr4::kOsfxsr, allowed, 0, 0, true).general_protection);  // PAE cleared
  EXPECT_FALSE(evaluate_cr4_write(lm, cr4::kOsfxsr, allowed, 0, 0, false).general_protection);
  // PCIDE: only in long mode, only with CR3[11:0] = 0; clearing it is fine.
  EXPECT_TRUE(evaluate_cr4_write(lm, lm | cr4::kPcide, allowed, 0, 0, false).general_protection);
  EXPECT_TRUE(evaluate_cr4_write(lm, lm | cr4::kPcide, allowed, 0, 0x1005, true).general_protection);
  EXPECT_FALSE(evaluate_cr4_write(lm, lm | cr4::kPcide, allowed, 0, 0x1000, true).general_protection);
  EXPECT_FALSE(evaluate_cr4_write(lm | cr4::kPcide, lm | cr4::kPcide, allowed, 0, 0x1005, true).general_protection);
  EXPECT_FALSE(evaluate_cr4_write(lm | cr4::kPcide, lm, allowed, 0, 0x1005, true).general_protection);
}

TEST(SvmCr4Write, CetNeedsWriteProtect) {
  Cr4CpuidView v = typical_guest();
  v.leaf7_ecx |= 1u << 7;  // CET_SS
  const uint64_t allowed = cr4_allowed_bits(v);
  EXPECT_TRUE(evaluate_cr4_write(0, cr4::kCet, allowed, 0, 0, false).general_protection);
  EXPECT_FALSE(evaluate_cr4_write(0, cr4::kCet, allowed, kCr0Wp, 0, false).general_protection);
}

TEST(SvmCr4Write, PagingBitsFlushTheTlb) {
  const uint64_t allowed = cr4_allowed_bits(typical_guest());
  EXPECT_TRUE(evaluate_cr4_write(cr4::kPae, cr4::kPae | cr4::kPge, allowed, 0, 0, false).flush_tlb);
  EXPECT_TRUE(evaluate_cr4_write(cr4::kPae | cr4::kPge, cr4::kPae, allowed, 0, 0, false).flush_tlb);
  EXPECT_TRUE(evaluate_cr4_write(cr4::kPae, cr4::kPae | cr4::kSmep, allowed, 0, 0, false).flush_tlb);
  EXPECT_FALSE(evaluate_cr4_write(cr4::kPae, cr4::kPae | cr4::kOsfxsr, allowed, 0, 0, false).flush_tlb);
  EXPECT_FALSE(evaluate_cr4_write(cr4::kPae, cr4::kPae, allowed, 0, 0, false).flush_tlb);
}

TEST(SvmCr4Write, DecodesMovToCrWithPrefixesAndRex) {
  // mov %rax,%cr4 (0f 22 e0): CR4 from RAX.
  auto m = decode_mov_to_cr(std::vector<uint8_t>{0x0f, 0x22, 0xe0}, guest::CodeSize::k64);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cr, 4);
  EXPECT_EQ(m->gpr, 0);
  EXPECT_EQ(m->length, 3);
  // mov %r9,%cr4 (41 0f 22 e1): REX.B picks R9.
  m = decode_mov_to_cr(std::vector<uint8_t>{0x41, 0x0f, 0x22, 0xe1, 0x90}, guest::CodeSize::k64);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->gpr, 9);
  EXPECT_EQ(m->length, 4);
  // mov %rax,%cr8 (44 0f 22 c0): REX.R extends the control register.
  m = decode_mov_to_cr(std::vector<uint8_t>{0x44, 0x0f, 0x22, 0xc0}, guest::CodeSize::k64);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cr, 8);
  // 32-bit code: 0x41 is INC ECX, not REX; a 66 prefix is skipped.
  EXPECT_FALSE(decode_mov_to_cr(std::vector<uint8_t>{0x41, 0x0f, 0x22, 0xe1}, guest::CodeSize::k32));
  m = decode_mov_to_cr(std::vector<uint8_t>{0x66, 0x0f, 0x22, 0xe3}, guest::CodeSize::k32);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->gpr, 3);
  EXPECT_EQ(m->length, 4);
  // ModRM.mod is ignored: 0f 22 20 is still a register operand (RAX to CR4).
  m = decode_mov_to_cr(std::vector<uint8_t>{0x0f, 0x22, 0x20}, guest::CodeSize::k16);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->cr, 4);
  EXPECT_EQ(m->gpr, 0);
}

TEST(SvmCr4Write, RefusesWhatIsNotAMovToCr) {
  EXPECT_FALSE(decode_mov_to_cr(std::vector<uint8_t>{0x0f, 0x20, 0xe0}, guest::CodeSize::k64));  // MOV from CR4
  EXPECT_FALSE(decode_mov_to_cr(std::vector<uint8_t>{0x0f, 0x22}, guest::CodeSize::k64));        // truncated
  EXPECT_FALSE(decode_mov_to_cr(std::vector<uint8_t>{}, guest::CodeSize::k64));
  std::vector<uint8_t> too_long(18, 0x66);  // 15 prefixes, then 0f 22 e0: 18 bytes
  too_long[15] = 0x0f;
  too_long[16] = 0x22;
  too_long[17] = 0xe0;
  EXPECT_FALSE(decode_mov_to_cr(too_long, guest::CodeSize::k64));
}

}  // namespace
}  // namespace lantern::svm
