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

TEST(VmxLongMode, PdptesLoadOnlyUnderPaePagingWithoutLma) {
  constexpr uint64_t kPg = kCr0PgBit, kPe = 1;
  constexpr uint64_t kPae = kCr4PaeBit;
  // MOV to CR0 turning PG on with CR4.PAE and LMA = 0: PAE paging starts, the PDPTEs load.
  EXPECT_TRUE(mov_to_cr_loads_pdptes(0, kPe, kPe | kPg, kPe | kPg, kPae, 0));
  // The same with LME: IA-32e mode, no PDPTE registers (SDM Vol. 3A 4.5).
  EXPECT_FALSE(mov_to_cr_loads_pdptes(0, kPe, kPe | kPg, kPe | kPg, kPae, kEferLme | kEferLma));
  // 32-bit paging (no PAE) and paging off load nothing.
  EXPECT_FALSE(mov_to_cr_loads_pdptes(0, kPe, kPe | kPg, kPe | kPg, 0, 0));
  EXPECT_FALSE(mov_to_cr_loads_pdptes(0, kPe | kPg, kPe, kPe, kPae, 0));
  // CR0 changes other than PG, CD, NW do not reload them; CD does.
  EXPECT_FALSE(mov_to_cr_loads_pdptes(0, kPe | kPg, kPe | kPg | 2, kPe | kPg | 2, kPae, 0));
  EXPECT_TRUE(mov_to_cr_loads_pdptes(0, kPe | kPg, kPe | kPg | kCr0CdBit, kPe | kPg | kCr0CdBit, kPae, 0));
  // CR4: PAE, PGE, PSE, SMEP reload; OSFXSR does not.
  EXPECT_TRUE(mov_to_cr_loads_pdptes(4, kPae, kPae | kCr4PgeBit, kPe | kPg, kPae | kCr4PgeBit, 0));
  EXPECT_TRUE(mov_to_cr_loads_pdptes(4, kPae, kPae | kCr4SmepBit, kPe | kPg, kPae | kCr4SmepBit, 0));
  EXPECT_FALSE(mov_to_cr_loads_pdptes(4, kPae, kPae | 0x200, kPe | kPg, kPae | 0x200, 0));
  // CR3 always, under PAE paging.
  EXPECT_TRUE(mov_to_cr_loads_pdptes(3, 0x1000, 0x1000, kPe | kPg, kPae, 0));
  EXPECT_FALSE(mov_to_cr_loads_pdptes(3, 0x1000, 0x2000, kPe, kPae, 0));
}

TEST(VmxLongMode, PdpteReservedBits) {
  EXPECT_FALSE(pae_pdpte_reserved_bits_set(0x63001, 36));          // present, address only
  EXPECT_FALSE(pae_pdpte_reserved_bits_set(0x63001 | 0x18, 36));   // PWT, PCD are allowed
  EXPECT_FALSE(pae_pdpte_reserved_bits_set(0xfffffffffffffffe, 36));  // not present: ignored
  EXPECT_TRUE(pae_pdpte_reserved_bits_set(0x63003, 36));           // RW (bit 1) is reserved here
  EXPECT_TRUE(pae_pdpte_reserved_bits_set(0x63005, 36));           // US (bit 2)
  EXPECT_TRUE(pae_pdpte_reserved_bits_set(0x63001 | 0x20, 36));    // bit 5
  EXPECT_TRUE(pae_pdpte_reserved_bits_set(0x63001 | 0x100, 36));   // bit 8
  EXPECT_TRUE(pae_pdpte_reserved_bits_set((uint64_t{1} << 36) | 1, 36));  // beyond MAXPHYADDR
  EXPECT_FALSE(pae_pdpte_reserved_bits_set((uint64_t{1} << 36) | 1, 39));
  EXPECT_TRUE(pae_pdpte_reserved_bits_set((uint64_t{1} << 63) | 1, 52));   // XD is reserved too
}

}  // namespace
}  // namespace lantern::vmx
