#include <gtest/gtest.h>

#include "vmx/testing/fake_vmx_hw.h"
#include "vmx/vmx_capabilities.h"
#include "vmx/vmx_controls.h"

namespace lantern::vmx {
namespace {

constexpr uint64_t cap_msr(uint32_t allowed0, uint32_t allowed1) {
  return (static_cast<uint64_t>(allowed1) << 32) | allowed0;
}

// Secondary-controls allowed-1 values of Bochs CPU models (/work/shared/emulators.md).
struct BochsModel {
  const char* name;
  uint32_t secondary_allowed1;
  bool pml;          // bit 17
  bool xsaves;       // bit 20
  bool tsc_scaling;  // bit 25
};
constexpr BochsModel kBochsModels[] = {
    {"corei7_haswell_4770", 0x47fff, false, false, false},
    {"broadwell_ult", 0x57fff, false, false, false},
    {"corei7_skylake_x", 0x2177fff, true, true, true},
    {"corei7_icelake_u", 0x2977fff, true, true, true},
    {"tigerlake", 0x2977fff, true, true, true},
};

// ---- adjust_controls ----------------------------------------------------------------------

TEST(VmxControls, MustBeOneBitsAreForcedOn) {
  const uint64_t msr = cap_msr(pin_based::kDefault1, 0x7f);
  auto v = adjust_controls(pin_based::kExternalInterruptExiting | pin_based::kNmiExiting, msr);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, 0x16u | 0x1u | 0x8u);
}

TEST(VmxControls, RequiredBitTheCpuLacksIsAnError) {
  const uint64_t msr = cap_msr(0x16, 0x3f);  // no preemption timer (bit 6)
  auto v = adjust_controls(pin_based::kActivatePreemptionTimer | pin_based::kNmiExiting, msr);
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(v.error().detail, pin_based::kActivatePreemptionTimer);
}

TEST(VmxControls, OptionalBitsAreDroppedAndReported) {
  const uint64_t msr = cap_msr(0x16, 0x3f);
  auto v = adjust_controls(pin_based::kNmiExiting | pin_based::kVirtualNmis,
                           pin_based::kActivatePreemptionTimer | pin_based::kProcessPostedInterrupts, msr);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->value, 0x16u | pin_based::kNmiExiting | pin_based::kVirtualNmis);
  EXPECT_EQ(v->dropped_optional, pin_based::kActivatePreemptionTimer | pin_based::kProcessPostedInterrupts);

  // Optional bits the CPU has are kept, and nothing is reported.
  auto all = adjust_controls(0, pin_based::kVirtualNmis, msr);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->value, 0x16u | pin_based::kVirtualNmis);
  EXPECT_EQ(all->dropped_optional, 0u);
}

TEST(VmxControls, ContradictoryCapabilityMsrIsMalformed) {
  // Bit 4 must be 1 but may not be 1.
  auto v = adjust_controls(0, cap_msr(0x10, 0x0f));
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().code, ErrorCode::kMalformed);
  EXPECT_EQ(v.error().detail, 0x10u);
}

TEST(VmxControls, BochsSecondaryControls) {
  const uint32_t required =
      proc_based2::kEnableEpt | proc_based2::kEnableVpid | proc_based2::kUnrestrictedGuest;
  const uint32_t optional = proc_based2::kEnablePml | proc_based2::kEnableXsavesXrstors |
                            proc_based2::kUseTscScaling | proc_based2::kEnableRdtscp;
  for (const BochsModel& m : kBochsModels) {
    auto v = adjust_controls(required, optional, cap_msr(0, m.secondary_allowed1));
    ASSERT_TRUE(v.has_value()) << m.name;
    EXPECT_EQ((v->value & required), required) << m.name;
    EXPECT_TRUE(v->value & proc_based2::kEnableRdtscp) << m.name;
    EXPECT_EQ((v->value & proc_based2::kEnablePml) != 0, m.pml) << m.name;
    EXPECT_EQ((v->dropped_optional & proc_based2::kEnablePml) != 0, !m.pml) << m.name;
    EXPECT_EQ((v->value & proc_based2::kUseTscScaling) != 0, m.tsc_scaling) << m.name;
    // No model offers mode-based execute control (bit 22): requiring it fails.
    auto mbec = adjust_controls(proc_based2::kModeBasedExecuteControl, cap_msr(0, m.secondary_allowed1));
    ASSERT_FALSE(mbec.has_value()) << m.name;
    EXPECT_EQ(mbec.error().detail, proc_based2::kModeBasedExecuteControl);
  }
}

TEST(VmxControls, TrueMsrsChosenByBasicBit55) {
  const ControlCapabilityMsrs legacy = control_capability_msrs(0);
  EXPECT_EQ(legacy.pinbased, 0x481u);
  EXPECT_EQ(legacy.procbased, 0x482u);
  EXPECT_EQ(legacy.exit, 0x483u);
  EXPECT_EQ(legacy.entry, 0x484u);
  const ControlCapabilityMsrs true_msrs = control_capability_msrs(uint64_t{1} << 55);
  EXPECT_EQ(true_msrs.pinbased, 0x48du);
  EXPECT_EQ(true_msrs.procbased, 0x48eu);
  EXPECT_EQ(true_msrs.exit, 0x48fu);
  EXPECT_EQ(true_msrs.entry, 0x490u);
  // Other bits of IA32_VMX_BASIC do not matter.
  EXPECT_EQ(control_capability_msrs(~(uint64_t{1} << 55)).procbased, 0x482u);
}

TEST(VmxControls, TertiaryControls) {
  const uint64_t msr = proc_based3::kLoadIwkeyExiting | proc_based3::kIpiVirtualization;
  auto v = adjust_tertiary_controls(proc_based3::kIpiVirtualization, proc_based3::kEnableHlat, msr);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(*v, proc_based3::kIpiVirtualization);
  auto missing = adjust_tertiary_controls(proc_based3::kEnableHlat, 0, msr);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(missing.error().detail, proc_based3::kEnableHlat);
}

// ---- read_capabilities over the fake -------------------------------------------------------

constexpr uint64_t kBasicRevision = 0x12;
constexpr uint64_t kBasicBase = kBasicRevision | (uint64_t{0x1000} << 32) |  // 4 KiB region
                                (uint64_t{6} << 50) |                        // WB
                                (uint64_t{1} << 54);                         // INS/OUTS info
constexpr uint64_t kEptVpidCapAll = (1ull << 0) | (1ull << 6) | (1ull << 14) | (1ull << 16) | (1ull << 17) |
                                    (1ull << 20) | (1ull << 21) | (1ull << 25) | (1ull << 26) | (1ull << 32) |
                                    (1ull << 40) | (1ull << 41) | (1ull << 42) | (1ull << 43);

testing::FakeVmcs fake_cpu(uint32_t secondary_allowed1, bool true_controls) {
  testing::FakeVmcs hw;
  hw.msrs[kMsrVmxBasic] = kBasicBase | (true_controls ? kVmxBasicTrueControls : 0);
  hw.msrs[kMsrVmxPinbasedCtls] = cap_msr(0x16, 0x7f);
  hw.msrs[kMsrVmxProcbasedCtls] = cap_msr(proc_based::kDefault1, 0xfffdfffe);  // no tertiary
  hw.msrs[kMsrVmxExitCtls] = cap_msr(exit_ctls::kDefault1, 0x7fffff);
  hw.msrs[kMsrVmxEntryCtls] = cap_msr(entry_ctls::kDefault1, 0xffff);
  // Preemption-timer rate 5; HLT, shutdown, wait-for-SIPI; 4 CR3 targets; MSR lists of 512;
  // VMWRITE to exit-information fields.
  hw.msrs[kMsrVmxMisc] = 5 | (1u << 6) | (1u << 7) | (1u << 8) | (4u << 16) | (1u << 29);
  hw.msrs[kMsrVmxProcbasedCtls2] = cap_msr(0, secondary_allowed1);
  hw.msrs[kMsrVmxEptVpidCap] = kEptVpidCapAll;
  if (true_controls) {
    hw.msrs[kMsrVmxTruePinbasedCtls] = cap_msr(0x16, 0x7f);
    // CR3-load/store exiting (bits 15, 16) may be 0 with the TRUE MSR.
    hw.msrs[kMsrVmxTrueProcbasedCtls] = cap_msr(proc_based::kDefault1 & ~0x18000u, 0xfffdfffe);
    hw.msrs[kMsrVmxTrueExitCtls] = cap_msr(exit_ctls::kDefault1 & ~0x4u, 0x7fffff);
    hw.msrs[kMsrVmxTrueEntryCtls] = cap_msr(entry_ctls::kDefault1 & ~0x4u, 0xffff);
  }
  return hw;
}

TEST(VmxCapabilities, BochsModelsReportTheirFeatures) {
  for (const BochsModel& m : kBochsModels) {
    testing::FakeVmcs hw = fake_cpu(m.secondary_allowed1, true);
    auto caps = read_capabilities(hw);
    ASSERT_TRUE(caps.has_value()) << m.name << ": " << caps.error().message;
    EXPECT_EQ(caps->vmcs_revision_id, kBasicRevision) << m.name;
    EXPECT_EQ(caps->vmcs_region_bytes, 4096u);
    EXPECT_EQ(caps->vmcs_memory_type, 6);
    EXPECT_TRUE(caps->true_controls);
    EXPECT_TRUE(caps->secondary_controls);
    EXPECT_TRUE(caps->ept) << m.name;
    EXPECT_TRUE(caps->vpid) << m.name;
    EXPECT_TRUE(caps->unrestricted_guest) << m.name;
    EXPECT_EQ(caps->pml, m.pml) << m.name;
    EXPECT_EQ(caps->xsaves, m.xsaves) << m.name;
    EXPECT_EQ(caps->tsc_scaling, m.tsc_scaling) << m.name;
    EXPECT_TRUE(caps->ept_violation_ve) << m.name;  // bit 18 in every model
    EXPECT_EQ(caps->procbased2_ctls, cap_msr(0, m.secondary_allowed1));
    EXPECT_FALSE(hw.msrs_read.count(kMsrVmxProcbasedCtls3)) << "no tertiary controls offered";
  }
}

TEST(VmxCapabilities, TrueControlMsrsUsedOnlyWithBit55) {
  testing::FakeVmcs with_true = fake_cpu(0x47fff, true);
  auto a = read_capabilities(with_true);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(allowed0_of(a->procbased_ctls), proc_based::kDefault1 & ~0x18000u);
  EXPECT_EQ(allowed0_of(a->exit_ctls), exit_ctls::kDefault1 & ~0x4u);
  EXPECT_TRUE(with_true.msrs_read.count(kMsrVmxTrueEntryCtls));

  testing::FakeVmcs legacy = fake_cpu(0x47fff, false);
  auto b = read_capabilities(legacy);
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(b->true_controls);
  EXPECT_EQ(allowed0_of(b->procbased_ctls), proc_based::kDefault1);
  for (uint32_t msr : {0x48du, 0x48eu, 0x48fu, 0x490u}) {
    EXPECT_FALSE(legacy.msrs_read.count(msr)) << std::hex << msr;
  }
}

TEST(VmxCapabilities, EptAndVpidDetails) {
  testing::FakeVmcs hw = fake_cpu(0x2977fff, true);
  auto c = read_capabilities(hw);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->ept_execute_only);
  EXPECT_TRUE(c->ept_walk_length_4);
  EXPECT_TRUE(c->ept_wb);
  EXPECT_FALSE(c->ept_uc);
  EXPECT_TRUE(c->ept_2m_pages);
  EXPECT_TRUE(c->ept_1g_pages);
  EXPECT_TRUE(c->ept_accessed_dirty);
  EXPECT_TRUE(c->invept.supported && c->invept.single_context && c->invept.all_context);
  EXPECT_TRUE(c->invvpid.supported && c->invvpid.individual_address && c->invvpid.single_context &&
              c->invvpid.all_context && c->invvpid.single_context_retaining_globals);
  EXPECT_TRUE(c->preemption_timer);
  EXPECT_EQ(c->preemption_timer_rate, 5);
  EXPECT_TRUE(c->save_preemption_timer);
  EXPECT_TRUE(c->virtual_nmis);
  EXPECT_TRUE(c->nmi_window_exiting);
  EXPECT_TRUE(c->activity_hlt && c->activity_shutdown && c->activity_wait_for_sipi);
  EXPECT_EQ(c->cr3_target_count, 4);
  EXPECT_EQ(c->max_msr_list_entries, 512u);
  EXPECT_TRUE(c->vmwrite_exit_info);
  EXPECT_FALSE(c->zero_length_injection);

  // Only 2 MiB pages, no INVEPT: the flags follow the MSR bit by bit.
  hw.msrs[kMsrVmxEptVpidCap] = (1ull << 6) | (1ull << 14) | (1ull << 16) | (1ull << 25);
  auto d = read_capabilities(hw);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->ept_2m_pages);
  EXPECT_FALSE(d->ept_1g_pages);
  EXPECT_FALSE(d->ept_execute_only);
  EXPECT_FALSE(d->invept.supported);
  EXPECT_FALSE(d->invept.single_context) << "single-context means nothing without INVEPT";
  EXPECT_FALSE(d->invvpid.supported);
}

TEST(VmxCapabilities, MissingSecondaryControlsMeansNoEptAndNoExtraMsrReads) {
  testing::FakeVmcs hw = fake_cpu(0x47fff, false);
  hw.msrs[kMsrVmxProcbasedCtls] = cap_msr(proc_based::kDefault1, 0x7ffdfffe);  // no bit 31
  hw.msrs.erase(kMsrVmxProcbasedCtls2);                                        // would #GP
  hw.msrs.erase(kMsrVmxEptVpidCap);
  auto c = read_capabilities(hw);
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_FALSE(c->secondary_controls);
  EXPECT_FALSE(c->ept || c->vpid || c->unrestricted_guest || c->ept_2m_pages);
  EXPECT_FALSE(hw.msrs_read.count(kMsrVmxProcbasedCtls2));
  EXPECT_FALSE(hw.msrs_read.count(kMsrVmxEptVpidCap));
}

TEST(VmxCapabilities, EptVpidCapReadOnlyWithEptOrVpid) {
  // Secondary controls without EPT (bit 1) or VPID (bit 5).
  testing::FakeVmcs hw = fake_cpu(0x47fff & ~0x22u, false);
  hw.msrs.erase(kMsrVmxEptVpidCap);
  auto c = read_capabilities(hw);
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(c->ept);
  EXPECT_FALSE(c->unrestricted_guest) << "unrestricted guest needs EPT";
  EXPECT_FALSE(hw.msrs_read.count(kMsrVmxEptVpidCap));
}

TEST(VmxCapabilities, TertiaryMsrReadWhenOffered) {
  testing::FakeVmcs hw = fake_cpu(0x47fff, false);
  hw.msrs[kMsrVmxProcbasedCtls] = cap_msr(proc_based::kDefault1, 0xfffffffe);  // bit 17 too
  hw.msrs[kMsrVmxProcbasedCtls3] = proc_based3::kIpiVirtualization;
  auto c = read_capabilities(hw);
  ASSERT_TRUE(c.has_value());
  EXPECT_TRUE(c->tertiary_controls);
  EXPECT_EQ(c->procbased3_ctls, proc_based3::kIpiVirtualization);
}

TEST(VmxCapabilities, MsrFailuresPropagate) {
  testing::FakeVmcs hw = fake_cpu(0x47fff, true);
  hw.msrs.erase(kMsrVmxMisc);
  auto c = read_capabilities(hw);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(c.error().detail, kMsrVmxMisc);

  testing::FakeVmcs no_true = fake_cpu(0x47fff, true);
  no_true.msrs.erase(kMsrVmxTrueExitCtls);
  auto d = read_capabilities(no_true);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().detail, kMsrVmxTrueExitCtls);
}

TEST(VmxCapabilities, MalformedBasicMsr) {
  for (uint64_t region : {uint64_t{0}, uint64_t{4097}, uint64_t{0x1fff}}) {
    testing::FakeVmcs hw = fake_cpu(0x47fff, false);
    hw.msrs[kMsrVmxBasic] = (kBasicBase & ~(uint64_t{0x1fff} << 32)) | (region << 32);
    auto c = read_capabilities(hw);
    ASSERT_FALSE(c.has_value()) << region;
    EXPECT_EQ(c.error().code, ErrorCode::kMalformed);
  }
}

}  // namespace
}  // namespace lantern::vmx
