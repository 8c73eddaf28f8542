// Guest IA-32e mode transitions (vmx/long_mode.h): SDM Vol. 3A 9.8.5, Vol. 3C 26.2.4.
#include "vmx/long_mode.h"

#include <gtest/gtest.h>

#include "vmx/cr_access.h"

namespace lantern::vmx {
namespace {

constexpr uint64_t kWritable = kEferSce | kEferLme | kEferNxe;
constexpr uint64_t kPe = kCr0PeBit;
constexpr uint64_t kPg = kCr0PgBit;

TEST(VmxLongMode, EferWriteSetsLmeWithPagingOff) {
  const EferWriteResult r = evaluate_efer_write(0, kEferLme | kEferSce, kPe, kWritable);
  EXPECT_FALSE(r.gp);
  EXPECT_EQ(r.efer, kEferLme | kEferSce);
}

TEST(VmxLongMode, EferWriteRejectsReservedAndUnofferedBits) {
  EXPECT_TRUE(evaluate_efer_write(0, 1ull << 1, 0, kWritable).gp);
  EXPECT_TRUE(evaluate_efer_write(0, 1ull << 63, 0, kWritable).gp);
  EXPECT_TRUE(evaluate_efer_write(0, kEferNxe, 0, kEferSce | kEferLme).gp);  // no NX on this CPU
  EXPECT_FALSE(evaluate_efer_write(0, kEferNxe, 0, kWritable).gp);
}

TEST(VmxLongMode, EferLmaIsReadOnly) {
  // Writing LMA = 1 with paging off does not activate long mode...
  EXPECT_EQ(evaluate_efer_write(0, kEferLme | kEferLma, 0, kWritable).efer, kEferLme);
  // ... and writing LMA = 0 while active keeps it (SCE toggled, LME unchanged).
  const EferWriteResult r =
      evaluate_efer_write(kEferLme | kEferLma, kEferLme | kEferSce, kPe | kPg, kWritable);
  EXPECT_FALSE(r.gp);
  EXPECT_EQ(r.efer, kEferLme | kEferLma | kEferSce);
}

TEST(VmxLongMode, EferLmeCannotChangeWithPagingOn) {
  EXPECT_TRUE(evaluate_efer_write(0, kEferLme, kPe | kPg, kWritable).gp);             // set
  EXPECT_TRUE(evaluate_efer_write(kEferLme | kEferLma, 0, kPe | kPg, kWritable).gp);  // clear
  EXPECT_FALSE(evaluate_efer_write(kEferLme, 0, kPe, kWritable).gp);                  // paging off: fine
}

TEST(VmxLongMode, PagingOnWithLmeActivatesIa32eMode) {
  const PagingTransition t = evaluate_paging_transition(kPe, kPe | kPg, kCr4PaeBit, kEferLme, false);
  EXPECT_FALSE(t.gp);
  EXPECT_EQ(t.efer, kEferLme | kEferLma);
  EXPECT_TRUE(t.ia32e_mode);
}

TEST(VmxLongMode, PagingOnWithLmeNeedsPae) {
  const PagingTransition t = evaluate_paging_transition(kPe, kPe | kPg, 0, kEferLme, false);
  EXPECT_TRUE(t.gp);
}

TEST(VmxLongMode, PagingOnWithoutLmeIsLegacyPaging) {
  const PagingTransition t = evaluate_paging_transition(kPe, kPe | kPg, 0, kEferSce, false);
  EXPECT_FALSE(t.gp);
  EXPECT_EQ(t.efer, kEferSce);
  EXPECT_FALSE(t.ia32e_mode);
}

TEST(VmxLongMode, PagingOffLeavesIa32eModeOnlyFromCompatibilityMode) {
  const uint64_t active = kEferLme | kEferLma;
  EXPECT_TRUE(evaluate_paging_transition(kPe | kPg, kPe, kCr4PaeBit, active, true).gp);
  const PagingTransition t = evaluate_paging_transition(kPe | kPg, kPe, kCr4PaeBit, active, false);
  EXPECT_FALSE(t.gp);
  EXPECT_EQ(t.efer, kEferLme);
  EXPECT_FALSE(t.ia32e_mode);
}

TEST(VmxLongMode, UnchangedPgKeepsTheMode) {
  const uint64_t active = kEferLme | kEferLma;
  const PagingTransition t =
      evaluate_paging_transition(kPe | kPg, kPe | kPg | (1u << 16), kCr4PaeBit, active, true);
  EXPECT_FALSE(t.gp);
  EXPECT_EQ(t.efer, active);
  EXPECT_TRUE(t.ia32e_mode);
}

TEST(VmxLongMode, EntryControlFollowsLma) {
  constexpr uint32_t kOther = (1u << 2) | (1u << 15);
  EXPECT_EQ(entry_controls_following_efer(kOther, kEferLme | kEferLma), kOther | kEntryIa32eModeGuest);
  EXPECT_EQ(entry_controls_following_efer(kOther | kEntryIa32eModeGuest, kEferLme), kOther);
  EXPECT_EQ(entry_controls_following_efer(kOther, 0), kOther);
}

TEST(VmxLongMode, CrOperandSize) {
  EXPECT_EQ(cr_operand_mask(true, true), ~uint64_t{0});
  EXPECT_EQ(cr_operand_mask(true, false), 0xffffffffull);  // compatibility mode
  EXPECT_EQ(cr_operand_mask(false, false), 0xffffffffull);
}

}  // namespace
}  // namespace lantern::vmx
