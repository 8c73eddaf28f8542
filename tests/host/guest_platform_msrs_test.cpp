// The platform MSRs (guest/platform_msrs.h): IA32_MISC_ENABLE's reset value, writes that keep
// the read-only bits, #GP for reserved bits; the machine-check MSRs of a platform without banks.
#include "guest/platform_msrs.h"

#include <gtest/gtest.h>

namespace lantern::guest {
namespace {

TEST(GuestMiscEnable, ResetShowsFastStringsAndNoBtsPebsOrPmu) {
  EXPECT_EQ(kMiscEnableReset, 0x1801u);
  EXPECT_EQ(kMiscEnableReset & kMiscEnablePerfMonAvailable, 0u);
}

TEST(GuestMiscEnable, WritableBitsAreStoredAndReadOnlyBitsKept) {
  // kvm-unit-tests x86/msr.c writes 0x400c50809 with bits 7, 11 and 12 taken from the old value.
  const uint64_t wanted = (0x400c50809ull & ~0x1880ull) | (kMiscEnableReset & 0x1880ull);
  const MiscEnableWrite w = evaluate_misc_enable_write(kMiscEnableReset, wanted);
  EXPECT_FALSE(w.gp);
  EXPECT_EQ(w.value, wanted);
  // Writing the read-only bits changes nothing of them.
  const MiscEnableWrite cleared = evaluate_misc_enable_write(kMiscEnableReset, 0);
  EXPECT_FALSE(cleared.gp);
  EXPECT_EQ(cleared.value, kMiscEnableBtsUnavailable | kMiscEnablePebsUnavailable);
  const MiscEnableWrite perfmon = evaluate_misc_enable_write(0, kMiscEnablePerfMonAvailable);
  EXPECT_FALSE(perfmon.gp);
  EXPECT_EQ(perfmon.value, 0u);
}

TEST(GuestMiscEnable, ReservedBitsAreRefused) {
  for (unsigned bit : {1u, 2u, 4u, 6u, 8u, 10u, 13u, 15u, 17u, 19u, 21u, 24u, 33u, 35u, 63u}) {
    const MiscEnableWrite w = evaluate_misc_enable_write(kMiscEnableReset, kMiscEnableReset | (1ull << bit));
    EXPECT_TRUE(w.gp) << "bit " << bit;
    EXPECT_EQ(w.value, kMiscEnableReset) << "bit " << bit;
  }
}

TEST(GuestMachineCheckMsrs, NoBanksAndStatusTakesOnlyZero) {
  EXPECT_FALSE(machine_check_msr(kMsrIa32McgCap, false, 0).gp);
  EXPECT_EQ(machine_check_msr(kMsrIa32McgCap, false, 0).value, 0u);
  EXPECT_TRUE(machine_check_msr(kMsrIa32McgCap, true, 0).gp);  // read-only
  EXPECT_FALSE(machine_check_msr(kMsrIa32McgStatus, false, 0).gp);
  EXPECT_FALSE(machine_check_msr(kMsrIa32McgStatus, true, 0).gp);
  EXPECT_TRUE(machine_check_msr(kMsrIa32McgStatus, true, 1).gp);
  EXPECT_TRUE(machine_check_msr(0x400, false, 0).gp);  // IA32_MC0_CTL: no banks
}

TEST(GuestPlatformMsrs, MtrrCapReadsZeroAndRefusesWrites) {
  EXPECT_FALSE(mtrr_msr(kMsrIa32MtrrCap, false, kMtrrDefTypeReset, 0).gp);
  EXPECT_EQ(mtrr_msr(kMsrIa32MtrrCap, false, kMtrrDefTypeReset, 0).value, 0u);
  EXPECT_TRUE(mtrr_msr(kMsrIa32MtrrCap, true, kMtrrDefTypeReset, 0).gp);
}

TEST(GuestPlatformMsrs, MtrrDefTypeKeepsTypeAndEnables) {
  EXPECT_EQ(kMtrrDefTypeReset, 0x806u);  // E = 1, type WB
  EXPECT_EQ(mtrr_msr(kMsrIa32MtrrDefType, false, 0xc06, 0).value, 0xc06u);
  const PlatformMsrAccess disable = mtrr_msr(kMsrIa32MtrrDefType, true, kMtrrDefTypeReset, 0x006);
  EXPECT_FALSE(disable.gp);
  EXPECT_EQ(disable.value, 0x006u);
  EXPECT_FALSE(mtrr_msr(kMsrIa32MtrrDefType, true, kMtrrDefTypeReset, 0xc00).gp);  // UC default
}

TEST(GuestPlatformMsrs, MtrrDefTypeRefusesReservedBitsAndTypes) {
  EXPECT_TRUE(mtrr_msr(kMsrIa32MtrrDefType, true, kMtrrDefTypeReset, 0x1806).gp);  // bit 12
  EXPECT_TRUE(mtrr_msr(kMsrIa32MtrrDefType, true, kMtrrDefTypeReset, 0x802).gp);   // type 2 is reserved
  EXPECT_TRUE(mtrr_msr(kMsrIa32MtrrDefType, true, kMtrrDefTypeReset, 0x807).gp);   // type 7 is reserved
  EXPECT_EQ(mtrr_msr(kMsrIa32MtrrDefType, true, kMtrrDefTypeReset, 0x807).value, kMtrrDefTypeReset);
  EXPECT_TRUE(mtrr_msr(0x200, false, kMtrrDefTypeReset, 0).gp);  // no variable-range MSRs
}

}  // namespace
}  // namespace lantern::guest

TEST(GuestPlatformMsrs, PatFieldsMustBeMemoryTypes) {
  using lantern::guest::is_valid_pat;
  EXPECT_TRUE(is_valid_pat(0x0007040600070406ull));  // the power-on value
  EXPECT_TRUE(is_valid_pat(0x0606060606060606ull));
  EXPECT_TRUE(is_valid_pat(0x0700050401000000ull));
  EXPECT_FALSE(is_valid_pat(0x0000000000000002ull));  // type 2 is reserved
  EXPECT_FALSE(is_valid_pat(0x0300000000000000ull));  // type 3, in the last field
  EXPECT_FALSE(is_valid_pat(0x0000000000080000ull));  // 8 and above
}

TEST(GuestPlatformMsrs, PkrsTakesOnlyTheLow32Bits) {
  EXPECT_TRUE(lantern::guest::is_valid_pkrs(0));
  EXPECT_TRUE(lantern::guest::is_valid_pkrs(0xffffffffull));
  EXPECT_TRUE(lantern::guest::is_valid_pkrs(0x55555554ull));
  EXPECT_FALSE(lantern::guest::is_valid_pkrs(1ull << 32));
  EXPECT_FALSE(lantern::guest::is_valid_pkrs(0x8000000000000000ull));
}

namespace lantern::guest {
namespace {

TEST(GuestTscAdjust, WritingTheAdjustMovesTheTscBySameAmount) {
  // kvm-unit-tests x86/tsc_adjust.c: 0 at first; writing 1e11 moves the TSC 1e11 ahead.
  GuestTsc tsc;
  EXPECT_EQ(tsc.adjust, 0u);
  EXPECT_EQ(guest_tsc_at(tsc, 1000), 1000u);
  tsc = write_tsc_adjust(tsc, 100000000000ull);
  EXPECT_EQ(tsc.adjust, 100000000000ull);
  EXPECT_EQ(guest_tsc_at(tsc, 2000), 100000002000ull);
  // Back to 0: the TSC moves back by the same amount, and keeps counting with the host.
  tsc = write_tsc_adjust(tsc, 0);
  EXPECT_EQ(tsc.adjust, 0u);
  EXPECT_EQ(guest_tsc_at(tsc, 3000), 3000u);
  // A negative adjust (two's complement) moves the TSC back.
  tsc = write_tsc_adjust(tsc, ~uint64_t{0} - 99);  // -100
  EXPECT_EQ(guest_tsc_at(tsc, 3000), 2900u);
}

TEST(GuestTscAdjust, WritingTheTscMovesTheAdjustBySameAmount) {
  GuestTsc tsc = write_tsc_adjust(GuestTsc{}, 50);  // the guest's TSC runs 50 ahead
  EXPECT_EQ(guest_tsc_at(tsc, 1000), 1050u);
  // WRMSR TSC of 100000000000 while the guest's TSC reads 1050: both move by 100000000000 - 1050.
  tsc = write_time_stamp_counter(tsc, 1000, 100000000000ull);
  EXPECT_EQ(guest_tsc_at(tsc, 1000), 100000000000ull);
  EXPECT_EQ(guest_tsc_at(tsc, 1010), 100000000010ull);
  EXPECT_EQ(tsc.adjust, 50u + (100000000000ull - 1050u));
  // A write into the past: the adjust value goes down (wrapping below zero).
  tsc = write_time_stamp_counter(GuestTsc{}, 5000, 1000);
  EXPECT_EQ(guest_tsc_at(tsc, 5000), 1000u);
  EXPECT_EQ(tsc.adjust, uint64_t{0} - 4000u);
}

}  // namespace
}  // namespace lantern::guest
