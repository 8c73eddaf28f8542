#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

#include "guest/msr_emulation.h"

namespace lantern::guest {
namespace {

constexpr uint32_t kMsrBackendOwn = 0xc0000080;  // a backend's own MSR in the fake (EFER's number)
constexpr uint32_t kMsrNobodys = 0x1234;
constexpr uint32_t kMsrX2apicId = 0x802;        // SDM Vol. 3A Table 11-6
constexpr uint32_t kMsrX2apicSvr = 0x80f;
constexpr uint32_t kMsrX2apicLvtTimer = 0x832;
constexpr uint64_t kSvrEnable = 1u << 8;          // SDM Vol. 3A 11.9, Figure 11-23
constexpr uint64_t kLvtTimerTscDeadline = 2u << 17;  // SDM Vol. 3A 11.5.1, Figure 11-8
constexpr uint64_t kApicEnabledXapic = kApicBaseDefault | kApicBaseEnable | kApicBaseBsp;

// A vCPU as the MSR emulation sees it: its vlapic and MSR values, a host TSC the test sets,
// the offset field, and every IPI, EOI and hardware load recorded.
template <bool kCountsGuestTsc, bool kToCallerOffered>
struct FakeMsrSeam {
  static constexpr bool kVlapicCountsGuestTsc = kCountsGuestTsc;
  static constexpr bool kReturnsUnknownMsrsToCaller = kToCallerOffered;

  VirtualLapic lapic{3};
  uint64_t apic_base_value = kApicEnabledXapic;
  uint64_t host_tsc_now = 1000;
  bool offsetting = true;
  GuestTsc tsc_state;
  bool aux_offered = true;
  uint64_t aux = 0;
  std::vector<uint64_t> aux_loads;
  uint64_t misc = kMiscEnableReset;
  uint64_t mtrr = kMtrrDefTypeReset;
  uint64_t backend_own = 0;
  int vlapic_writes = 0;
  int logical_id_publishes = 0;
  std::vector<IpiRequest> ipis;
  std::vector<uint8_t> level_eois;
  std::set<uint64_t> ram_or_device_pages;

  VirtualLapic& vlapic() { return lapic; }
  uint64_t& apic_base() { return apic_base_value; }
  uint8_t physical_address_bits() { return 36; }
  bool apic_page_can_move_to(uint64_t page) { return ram_or_device_pages.count(page) == 0; }
  uint64_t host_tsc() { return host_tsc_now; }
  bool tsc_offsetting() { return offsetting; }
  GuestTsc tsc() { return tsc_state; }
  Result<void> set_tsc(const GuestTsc& tsc) {
    tsc_state = tsc;
    return ok();
  }
  bool tsc_aux_offered() { return aux_offered; }
  uint64_t& tsc_aux() { return aux; }
  void load_tsc_aux() { aux_loads.push_back(aux); }
  uint64_t& misc_enable() { return misc; }
  uint64_t& mtrr_def_type() { return mtrr; }
  void before_vlapic_write() { ++vlapic_writes; }
  void send_ipi(const IpiRequest& ipi) { ipis.push_back(ipi); }
  void level_eoi(uint8_t vector) { level_eois.push_back(vector); }
  void logical_id_changed() { ++logical_id_publishes; }
  Result<MsrOutcome> backend_msr_read(uint32_t msr) {
    if (msr == kMsrBackendOwn) return msr_done(backend_own);
    return MsrOutcome{};
  }
  Result<MsrOutcome> backend_msr_write(uint32_t msr, uint64_t value) {
    if (msr != kMsrBackendOwn) return MsrOutcome{};
    backend_own = value;
    return msr_done();
  }
};

using Seam = FakeMsrSeam<true, true>;          // VMX-like: the vlapic counts the guest's TSC
using HostClockSeam = FakeMsrSeam<false, false>;  // SVM-like: the vlapic counts the host's TSC

template <class S>
MsrOutcome read(S& seam, uint32_t msr, UnknownMsrPolicy policy = UnknownMsrPolicy::kToCaller) {
  const Result<MsrOutcome> r = msr_read(seam, msr, policy);
  EXPECT_TRUE(r.has_value());
  return r ? *r : MsrOutcome{};
}

template <class S>
MsrOutcome write(S& seam, uint32_t msr, uint64_t value, UnknownMsrPolicy policy = UnknownMsrPolicy::kToCaller) {
  const Result<MsrOutcome> r = msr_write(seam, msr, value, policy);
  EXPECT_TRUE(r.has_value());
  return r ? *r : MsrOutcome{};
}

void expect_done(const MsrOutcome& o, uint64_t value) {
  EXPECT_EQ(o.action, MsrAction::kDone);
  EXPECT_EQ(o.value, value);
}

template <class S>
void enter_x2apic(S& seam) {
  ASSERT_EQ(write(seam, kMsrIa32ApicBase, kApicBaseDefault | kApicBaseEnable | kApicBaseExtd).action, MsrAction::kDone);
}

// x2APIC mode, software-enabled, the timer in TSC-deadline mode, with the guest's TSC `offset`
// ahead of the host's.
template <class S>
void arm_tsc_deadline_mode(S& seam, uint64_t offset) {
  seam.tsc_state.offset = offset;
  enter_x2apic(seam);
  ASSERT_EQ(write(seam, kMsrX2apicSvr, kSvrEnable | 0xff).action, MsrAction::kDone);
  ASSERT_EQ(write(seam, kMsrX2apicLvtTimer, kLvtTimerTscDeadline | 0x30).action, MsrAction::kDone);
}

TEST(GuestMsrEmulation, ApicBaseReadsWhatWasAccepted) {
  Seam seam;
  expect_done(read(seam, kMsrIa32ApicBase), kApicEnabledXapic);
  enter_x2apic(seam);
  expect_done(read(seam, kMsrIa32ApicBase), kApicEnabledXapic | kApicBaseExtd);  // BSP kept
  EXPECT_TRUE(seam.lapic.x2apic_mode());
  EXPECT_GE(seam.logical_id_publishes, 1);
  EXPECT_EQ(seam.vlapic_writes, 1);
}

TEST(GuestMsrEmulation, TheApicPageMovesWhereNoRamOrDeviceIs) {
  // kvm-unit-tests' apic test_apicbase: disable, then enable at another base (SDM Vol. 3A 11.4.5).
  constexpr uint64_t kAlternate = 0xfed40000;
  Seam seam;
  seam.ram_or_device_pages = {0x100000, 0xfec00000};
  ASSERT_EQ(write(seam, kMsrIa32ApicBase, kApicBaseDefault | kApicBaseBsp).action, MsrAction::kDone);
  ASSERT_EQ(write(seam, kMsrIa32ApicBase, kAlternate | kApicBaseBsp | kApicBaseEnable).action, MsrAction::kDone);
  expect_done(read(seam, kMsrIa32ApicBase), kAlternate | kApicBaseBsp | kApicBaseEnable);
  // The registers answer at the new page, and nothing at the old one.
  EXPECT_EQ(apic_page_access(seam.apic_base_value, kAlternate + 0x30), ApicPageAccess::kXapicRegisters);
  EXPECT_EQ(apic_page_access(seam.apic_base_value, kApicBaseDefault + 0x30), ApicPageAccess::kNotApicPage);
  // And back to the power-up base, which every platform keeps free.
  ASSERT_EQ(write(seam, kMsrIa32ApicBase, kApicEnabledXapic).action, MsrAction::kDone);
  expect_done(read(seam, kMsrIa32ApicBase), kApicEnabledXapic);
}

TEST(GuestMsrEmulation, TheApicPageDoesNotMoveOntoRamOrADevice) {
  Seam seam;
  seam.ram_or_device_pages = {0x100000, 0xfec00000};
  for (uint64_t page : {uint64_t{0x100000}, uint64_t{0xfec00000}}) {
    const MsrOutcome o = write(seam, kMsrIa32ApicBase, page | kApicBaseBsp | kApicBaseEnable);
    EXPECT_EQ(o.action, MsrAction::kGp) << page;
    ASSERT_NE(o.gp_reason, nullptr);
    expect_done(read(seam, kMsrIa32ApicBase), kApicEnabledXapic);
  }
  // A disabled APIC may take the base; enabling it there is what is refused.
  ASSERT_EQ(write(seam, kMsrIa32ApicBase, 0x100000 | kApicBaseBsp).action, MsrAction::kDone);
  EXPECT_EQ(write(seam, kMsrIa32ApicBase, 0x100000 | kApicBaseBsp | kApicBaseEnable).action, MsrAction::kGp);
  expect_done(read(seam, kMsrIa32ApicBase), 0x100000 | kApicBaseBsp);
}

TEST(GuestMsrEmulation, X2apicRegistersFollowApicBaseMode) {
  Seam seam;
  // xAPIC mode: the x2APIC MSRs are #GP (SDM Vol. 3A 11.12.1.2).
  EXPECT_EQ(read(seam, kMsrX2apicId).action, MsrAction::kGp);
  enter_x2apic(seam);
  expect_done(read(seam, kMsrX2apicId), 3);  // x2APIC ID = the vCPU's APIC ID
}

TEST(GuestMsrEmulation, ApicBaseIllegalTransitionsAreGp) {
  Seam seam;
  enter_x2apic(seam);
  // x2APIC -> xAPIC without disabling first (SDM Vol. 3A 11.12.5).
  EXPECT_EQ(write(seam, kMsrIa32ApicBase, kApicBaseDefault | kApicBaseEnable).action, MsrAction::kGp);
  expect_done(read(seam, kMsrIa32ApicBase), kApicEnabledXapic | kApicBaseExtd);
  // Disable, then disabled -> x2APIC is illegal too.
  ASSERT_EQ(write(seam, kMsrIa32ApicBase, kApicBaseDefault).action, MsrAction::kDone);
  EXPECT_FALSE(seam.lapic.x2apic_mode());
  EXPECT_EQ(read(seam, kMsrX2apicId).action, MsrAction::kGp);  // disabled: no x2APIC registers
  EXPECT_EQ(write(seam, kMsrIa32ApicBase, kApicBaseDefault | kApicBaseEnable | kApicBaseExtd).action,
            MsrAction::kGp);
  // Disabled -> xAPIC is fine.
  EXPECT_EQ(write(seam, kMsrIa32ApicBase, kApicBaseDefault | kApicBaseEnable).action, MsrAction::kDone);
  expect_done(read(seam, kMsrIa32ApicBase), kApicEnabledXapic);
}

TEST(GuestMsrEmulation, ApicBaseReservedBitsAreGp) {
  Seam seam;
  const MsrOutcome low = write(seam, kMsrIa32ApicBase, kApicEnabledXapic | 1);  // bit 0 reserved
  EXPECT_EQ(low.action, MsrAction::kGp);
  EXPECT_NE(low.gp_reason, nullptr);
  // Above the 36-bit physical-address width of the fake.
  EXPECT_EQ(write(seam, kMsrIa32ApicBase, kApicEnabledXapic | (uint64_t{1} << 36)).action, MsrAction::kGp);
  expect_done(read(seam, kMsrIa32ApicBase), kApicEnabledXapic);
}

TEST(GuestMsrEmulation, DisablingTheApicResetsTheVlapic) {
  Seam seam;
  enter_x2apic(seam);
  ASSERT_EQ(write(seam, kMsrX2apicSvr, kSvrEnable | 0xff).action, MsrAction::kDone);
  EXPECT_TRUE(seam.lapic.software_enabled());
  ASSERT_EQ(write(seam, kMsrIa32ApicBase, kApicBaseDefault).action, MsrAction::kDone);
  EXPECT_FALSE(seam.lapic.software_enabled());  // SDM Vol. 3A 11.4.3: the state is lost
}

TEST(GuestMsrEmulation, X2apicIcrWriteReachesTheIpiSink) {
  Seam seam;
  enter_x2apic(seam);
  ASSERT_EQ(write(seam, kMsrX2apicSvr, kSvrEnable | 0xff).action, MsrAction::kDone);
  // ICR (SDM Vol. 3A 11.12.9): fixed, physical, vector 0x41, destination APIC ID 5 in 63:32.
  const int publishes_before = seam.logical_id_publishes;
  ASSERT_EQ(write(seam, VirtualLapic::kMsrIcr, (uint64_t{5} << 32) | 0x41).action, MsrAction::kDone);
  ASSERT_EQ(seam.ipis.size(), 1u);
  EXPECT_EQ(seam.ipis[0].vector, 0x41);
  EXPECT_EQ(seam.ipis[0].destination, 5u);
  EXPECT_EQ(seam.ipis[0].delivery_mode, IpiDeliveryMode::kFixed);
  EXPECT_EQ(seam.logical_id_publishes, publishes_before + 1);
}

TEST(GuestMsrEmulation, X2apicWriteOfReadOnlyRegisterIsGpAndSendsNothing) {
  Seam seam;
  enter_x2apic(seam);
  const MsrOutcome o = write(seam, kMsrX2apicId, 7);
  EXPECT_EQ(o.action, MsrAction::kGp);
  EXPECT_TRUE(seam.ipis.empty());
  expect_done(read(seam, kMsrX2apicId), 3);
}

TEST(GuestMsrEmulation, TscWriteMovesOffsetAndAdjustTogether) {
  Seam seam;
  seam.host_tsc_now = 10'000;
  ASSERT_EQ(write(seam, kMsrIa32TimeStampCounter, 25'000).action, MsrAction::kDone);
  EXPECT_EQ(seam.tsc_state.offset, 15'000u);
  EXPECT_EQ(seam.tsc_state.adjust, 15'000u);
  seam.host_tsc_now = 10'500;
  expect_done(read(seam, kMsrIa32TimeStampCounter), 25'500);
  expect_done(read(seam, kMsrIa32TscAdjust), 15'000);
  // IA32_TSC_ADJUST down by 5000 moves the TSC down by 5000 (SDM Vol. 3B 18.17.3).
  ASSERT_EQ(write(seam, kMsrIa32TscAdjust, 10'000).action, MsrAction::kDone);
  EXPECT_EQ(seam.tsc_state.offset, 10'000u);
  EXPECT_EQ(seam.tsc_state.adjust, 10'000u);
  expect_done(read(seam, kMsrIa32TimeStampCounter), 20'500);
}

TEST(GuestMsrEmulation, TscMsrsWithoutOffsettingGoToThePolicy) {
  Seam seam;
  seam.offsetting = false;
  EXPECT_EQ(read(seam, kMsrIa32TimeStampCounter).action, MsrAction::kToCaller);
  EXPECT_EQ(write(seam, kMsrIa32TscAdjust, 5, UnknownMsrPolicy::kInjectGp).action, MsrAction::kGp);
  EXPECT_EQ(seam.tsc_state.offset, 0u);
}

TEST(GuestMsrEmulation, TscDeadlineIsInGuestTscWhenTheVlapicCountsHostTsc) {
  HostClockSeam seam;
  arm_tsc_deadline_mode(seam, 1'000'000);
  ASSERT_EQ(write(seam, VirtualLapic::kMsrTscDeadline, 1'500'000).action, MsrAction::kDone);
  EXPECT_EQ(seam.lapic.next_deadline(), 500'000u);  // on the vlapic's (host) clock
  expect_done(read(seam, VirtualLapic::kMsrTscDeadline), 1'500'000);
  // 0 disarms whatever the offset.
  ASSERT_EQ(write(seam, VirtualLapic::kMsrTscDeadline, 0).action, MsrAction::kDone);
  expect_done(read(seam, VirtualLapic::kMsrTscDeadline), 0);
}

TEST(GuestMsrEmulation, TscDeadlineIsUntranslatedWhenTheVlapicCountsGuestTsc) {
  Seam seam;
  arm_tsc_deadline_mode(seam, 1'000'000);
  ASSERT_EQ(write(seam, VirtualLapic::kMsrTscDeadline, 1'500'000).action, MsrAction::kDone);
  EXPECT_EQ(seam.lapic.next_deadline(), 1'500'000u);
  expect_done(read(seam, VirtualLapic::kMsrTscDeadline), 1'500'000);
}

TEST(GuestMsrEmulation, MiscEnableKeepsWritableBitsAndRefusesReservedOnes) {
  Seam seam;
  expect_done(read(seam, kMsrIa32MiscEnable), kMiscEnableReset);
  // Bit 1 is reserved (SDM Vol. 4 Table 2-2).
  const MsrOutcome reserved = write(seam, kMsrIa32MiscEnable, kMiscEnableReset | 2);
  EXPECT_EQ(reserved.action, MsrAction::kGp);
  expect_done(read(seam, kMsrIa32MiscEnable), kMiscEnableReset);
  // Limit CPUID Maxval is writable; clearing the read-only BTS bit is ignored.
  ASSERT_EQ(write(seam, kMsrIa32MiscEnable, kMiscEnableLimitCpuidMaxval).action, MsrAction::kDone);
  expect_done(read(seam, kMsrIa32MiscEnable),
              kMiscEnableLimitCpuidMaxval | kMiscEnableBtsUnavailable | kMiscEnablePebsUnavailable);
}

TEST(GuestMsrEmulation, PlatformMsrs) {
  Seam seam;
  expect_done(read(seam, kMsrIa32McgCap), 0);
  EXPECT_EQ(write(seam, kMsrIa32McgCap, 0).action, MsrAction::kGp);  // read-only
  EXPECT_EQ(write(seam, kMsrIa32McgStatus, 1).action, MsrAction::kGp);
  expect_done(write(seam, kMsrIa32McgStatus, 0), 0);
  expect_done(read(seam, kMsrIa32MtrrDefType), kMtrrDefTypeReset);
  ASSERT_EQ(write(seam, kMsrIa32MtrrDefType, kMtrrDefTypeEnable | 0).action, MsrAction::kDone);  // UC
  expect_done(read(seam, kMsrIa32MtrrDefType), kMtrrDefTypeEnable);
  EXPECT_EQ(write(seam, kMsrIa32MtrrDefType, 2).action, MsrAction::kGp);  // type 2 is reserved
  ASSERT_EQ(write(seam, kMsrIa32BiosSignId, 0).action, MsrAction::kDone);
  expect_done(read(seam, kMsrIa32BiosSignId), 0);
}

TEST(GuestMsrEmulation, TscAuxWhenOffered) {
  Seam seam;
  ASSERT_EQ(write(seam, kMsrIa32TscAux, 0x1234'5678).action, MsrAction::kDone);
  EXPECT_EQ(seam.aux_loads, std::vector<uint64_t>{0x1234'5678});
  expect_done(read(seam, kMsrIa32TscAux), 0x1234'5678);
  EXPECT_EQ(write(seam, kMsrIa32TscAux, uint64_t{1} << 32).action, MsrAction::kGp);  // 63:32 reserved
  expect_done(read(seam, kMsrIa32TscAux), 0x1234'5678);
  seam.aux_offered = false;
  EXPECT_EQ(read(seam, kMsrIa32TscAux, UnknownMsrPolicy::kInjectGp).action, MsrAction::kGp);
}

TEST(GuestMsrEmulation, BackendMsrsComeBeforeThePolicy) {
  Seam seam;
  ASSERT_EQ(write(seam, kMsrBackendOwn, 0x501, UnknownMsrPolicy::kInjectGp).action, MsrAction::kDone);
  expect_done(read(seam, kMsrBackendOwn, UnknownMsrPolicy::kInjectGp), 0x501);
}

TEST(GuestMsrEmulation, UnknownMsrPolicies) {
  Seam seam;
  EXPECT_EQ(read(seam, kMsrNobodys, UnknownMsrPolicy::kToCaller).action, MsrAction::kToCaller);
  EXPECT_EQ(write(seam, kMsrNobodys, 1, UnknownMsrPolicy::kToCaller).action, MsrAction::kToCaller);
  EXPECT_EQ(read(seam, kMsrNobodys, UnknownMsrPolicy::kInjectGp).action, MsrAction::kGp);
  EXPECT_EQ(write(seam, kMsrNobodys, 1, UnknownMsrPolicy::kInjectGp).action, MsrAction::kGp);
  expect_done(read(seam, kMsrNobodys, UnknownMsrPolicy::kReadZeroIgnoreWrite), 0);
  expect_done(write(seam, kMsrNobodys, 1, UnknownMsrPolicy::kReadZeroIgnoreWrite), 0);
  // A run loop that cannot return them reads 0 and drops writes instead.
  HostClockSeam svm_like;
  expect_done(read(svm_like, kMsrNobodys, UnknownMsrPolicy::kToCaller), 0);
  EXPECT_EQ(read(svm_like, kMsrNobodys, UnknownMsrPolicy::kInjectGp).action, MsrAction::kGp);
}

TEST(GuestMsrEmulation, CoreEmulatesExactlyItsList) {
  EXPECT_TRUE(core_emulates_msr(0x800));
  EXPECT_TRUE(core_emulates_msr(0x8ff));
  EXPECT_FALSE(core_emulates_msr(0x7ff));
  EXPECT_FALSE(core_emulates_msr(0x900));
  EXPECT_TRUE(core_emulates_msr(kMsrIa32ApicBase));
  EXPECT_TRUE(core_emulates_msr(VirtualLapic::kMsrTscDeadline));
  EXPECT_TRUE(core_emulates_msr(kMsrIa32TscAux));
  EXPECT_FALSE(core_emulates_msr(kMsrBackendOwn));
  EXPECT_FALSE(core_emulates_msr(kMsrNobodys));
}

}  // namespace
}  // namespace lantern::guest
