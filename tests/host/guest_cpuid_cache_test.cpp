#include "guest/cpuid_cache.h"

#include <gtest/gtest.h>

namespace lantern::guest {
namespace {

constexpr CpuidRegisters kAnswer{0x11, 0x22, 0x33, 0x44};

TEST(GuestCpuidCache, EmptyCacheFindsNothing) {
  CpuidLeafCache cache;
  EXPECT_EQ(cache.find(0, 0, 0), nullptr);
}

TEST(GuestCpuidCache, FindsWhatWasStoredForTheSameLeafSubleafAndKey) {
  CpuidLeafCache cache;
  cache.store(7, 0, 0, kAnswer);
  const CpuidRegisters* hit = cache.find(7, 0, 0);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->eax, 0x11u);
  EXPECT_EQ(hit->edx, 0x44u);
  EXPECT_EQ(cache.find(7, 1, 0), nullptr);  // another subleaf
  EXPECT_EQ(cache.find(6, 0, 0), nullptr);  // another leaf
}

TEST(GuestCpuidCache, AnEntryIsStaleUnderAnotherInputKey) {
  CpuidLeafCache cache;
  cache.store(0xd, 0, 0x3, kAnswer);
  EXPECT_NE(cache.find(0xd, 0, 0x3), nullptr);
  EXPECT_EQ(cache.find(0xd, 0, 0x7), nullptr);
}

TEST(GuestCpuidCache, ClearDropsEveryEntry) {
  CpuidLeafCache cache;
  cache.store(0, 0, 0, kAnswer);
  cache.store(0x80000001, 0, 0, kAnswer);
  cache.clear();
  EXPECT_EQ(cache.find(0, 0, 0), nullptr);
  EXPECT_EQ(cache.find(0x80000001, 0, 0), nullptr);
}

TEST(GuestCpuidCache, CollidingLeavesReplaceEachOtherButNeverAnswerForEachOther) {
  CpuidLeafCache cache;
  // Leaves 0 and 8000_0008H share a slot.
  cache.store(0, 0, 0, kAnswer);
  cache.store(0x80000008, 0, 0, CpuidRegisters{1, 2, 3, 4});
  EXPECT_EQ(cache.find(0, 0, 0), nullptr);
  ASSERT_NE(cache.find(0x80000008, 0, 0), nullptr);
  EXPECT_EQ(cache.find(0x80000008, 0, 0)->eax, 1u);
}

TEST(GuestCpuidCache, BasicExtendedAndHypervisorLeavesGetDistinctSlots) {
  CpuidLeafCache cache;
  const uint32_t leaves[] = {0, 1, 6, 7, 0xd, 0x15, 0x16, 0x80000000, 0x80000001, 0x40000000, 0x40000001};
  for (uint32_t leaf : leaves) cache.store(leaf, 0, 0, CpuidRegisters{leaf, 0, 0, 0});
  for (uint32_t leaf : leaves) {
    const CpuidRegisters* hit = cache.find(leaf, 0, 0);
    ASSERT_NE(hit, nullptr) << std::hex << leaf;
    EXPECT_EQ(hit->eax, leaf);
  }
}

// The invalidation rule: which guest inputs each leaf's answer depends on.
TEST(GuestCpuidCache, FeatureLeafDependsOnOsxsaveAndApicEnableOnly) {
  const CpuidGuestInputs base{false, false, 0x3};
  CpuidGuestInputs osxsave = base;
  osxsave.cr4_osxsave = true;
  CpuidGuestInputs apic = base;
  apic.apic_enabled = true;
  CpuidGuestInputs xcr0 = base;
  xcr0.xcr0 = 0x7;
  EXPECT_NE(cpuid_input_key(1, base), cpuid_input_key(1, osxsave));
  EXPECT_NE(cpuid_input_key(1, base), cpuid_input_key(1, apic));
  EXPECT_NE(cpuid_input_key(1, osxsave), cpuid_input_key(1, apic));
  EXPECT_EQ(cpuid_input_key(1, base), cpuid_input_key(1, xcr0));
  EXPECT_TRUE(cpuid_leaf_reads_cr4(1));
}

TEST(GuestCpuidCache, XsaveLeafDependsOnXcr0Only) {
  const CpuidGuestInputs base{false, false, 0x3};
  CpuidGuestInputs other_xcr0 = base;
  other_xcr0.xcr0 = 0x7;
  CpuidGuestInputs osxsave_apic = base;
  osxsave_apic.cr4_osxsave = true;
  osxsave_apic.apic_enabled = true;
  EXPECT_NE(cpuid_input_key(0xd, base), cpuid_input_key(0xd, other_xcr0));
  EXPECT_EQ(cpuid_input_key(0xd, base), cpuid_input_key(0xd, osxsave_apic));
  EXPECT_FALSE(cpuid_leaf_reads_cr4(0xd));
}

TEST(GuestCpuidCache, OtherLeavesDependOnNoGuestInput) {
  const CpuidGuestInputs a{false, false, 0x1};
  const CpuidGuestInputs b{true, true, 0xe7};
  for (uint32_t leaf : {0u, 6u, 7u, 0x15u, 0x16u, 0x80000001u, 0x40000000u, 0x40000010u}) {
    EXPECT_EQ(cpuid_input_key(leaf, a), cpuid_input_key(leaf, b)) << std::hex << leaf;
    EXPECT_FALSE(cpuid_leaf_reads_cr4(leaf));
  }
}

}  // namespace
}  // namespace lantern::guest
