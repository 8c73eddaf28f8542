#include "vmx/cr_access.h"

#include <gtest/gtest.h>

namespace lantern::vmx {
namespace {

// Bochs-like fixed bits: CR0 PE|NE|PG fixed to 1, CR4 VMXE fixed to 1 (SDM Vol. 3D A.7, A.8).
constexpr uint64_t kNe = 1ull << 5;
constexpr uint64_t kEt = 1ull << 4;
constexpr CrWriteContext kCr0{kCr0PeBit | kNe | kCr0PgBit, 0xffffffffull, kCr0PeBit | kCr0PgBit, 0};
constexpr CrWriteContext kCr4{kCr4VmxeBit, 0x3727ffull, 0, kCr4VmxeBit | kCr4SmxeBit};

TEST(VmxCrAccess, Cr0AllowedChangesKeepFixedBitsInTheRealRegister) {
  const CrWriteResult r = evaluate_cr0_write(kCr0, kEt | kCr0PeBit);
  EXPECT_FALSE(r.gp);
  EXPECT_EQ(r.read_shadow, kEt | kCr0PeBit);           // the guest reads NE = 0, as written
  EXPECT_EQ(r.guest_value, kEt | kCr0PeBit | kNe);     // the real register keeps NE
  const CrWriteResult real = evaluate_cr0_write(kCr0, kEt);  // back to real mode: PE/PG are the guest's
  EXPECT_FALSE(real.gp);
  EXPECT_EQ(real.guest_value, kEt | kNe);
}

TEST(VmxCrAccess, Cr0ForbiddenCombinationsAreGp) {
  EXPECT_TRUE(evaluate_cr0_write(kCr0, kCr0PgBit).gp);                    // PG without PE
  EXPECT_TRUE(evaluate_cr0_write(kCr0, kCr0PeBit | kCr0NwBit).gp);        // NW without CD
  EXPECT_FALSE(evaluate_cr0_write(kCr0, kCr0PeBit | kCr0NwBit | kCr0CdBit).gp);
  EXPECT_TRUE(evaluate_cr0_write(kCr0, (1ull << 32) | kCr0PeBit).gp);     // bits 63:32
  EXPECT_STRNE(evaluate_cr0_write(kCr0, kCr0PgBit).reason, "");
}

TEST(VmxCrAccess, Cr4VmxeIsShadowedAndCannotBeSet) {
  // Clearing VMXE (as every guest does) works: the shadow says 0, the register keeps 1.
  const CrWriteResult r = evaluate_cr4_write(kCr4, 1ull << 9);
  EXPECT_FALSE(r.gp);
  EXPECT_EQ(r.read_shadow, 1ull << 9);
  EXPECT_EQ(r.guest_value, (1ull << 9) | kCr4VmxeBit);
  // Setting VMXE/SMXE (no nested VMX) or an unsupported/reserved bit is #GP.
  EXPECT_TRUE(evaluate_cr4_write(kCr4, kCr4VmxeBit).gp);
  EXPECT_TRUE(evaluate_cr4_write(kCr4, kCr4SmxeBit).gp);
  EXPECT_TRUE(evaluate_cr4_write(kCr4, 1ull << 31).gp);
  EXPECT_TRUE(evaluate_cr4_write(kCr4, 1ull << 40).gp);
}

TEST(VmxCrAccess, Cr0CachingBitsLiveInTheShadowOnly) {
  CrWriteContext c;
  c.fixed0 = 0x80000021;
  c.fixed1 = 0xffffffff;
  c.guest_owned = kCr0PeBit | kCr0PgBit;
  c.emulated = kCr0EmulatedCaching;
  const CrWriteResult cd = evaluate_cr0_write(c, 0xc0050033);  // Linux's prepare_set: CD on
  EXPECT_FALSE(cd.gp);
  EXPECT_EQ(cd.read_shadow, 0xc0050033u);
  EXPECT_EQ(cd.guest_value, 0x80050033u);
  const CrWriteResult both = evaluate_cr0_write(c, 0xe0050033);
  EXPECT_EQ(both.read_shadow, 0xe0050033u);
  EXPECT_EQ(both.guest_value, 0x80050033u);
  EXPECT_TRUE(evaluate_cr0_write(c, 0xa0050033).gp);  // NW without CD is still #GP
}

}  // namespace
}  // namespace lantern::vmx
