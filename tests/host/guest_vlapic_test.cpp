#include "guest/vlapic.h"

#include <gtest/gtest.h>

namespace lantern::guest {
namespace {

using L = VirtualLapic;

L enabled_xapic(uint32_t id = 3, uint32_t ratio = 1) {
  L l(id, ratio);
  EXPECT_TRUE(l.write_mmio(L::kOffSvr, 0x1FF).has_value());
  return l;
}

L enabled_x2apic(uint32_t id = 3, uint32_t ratio = 1) {
  L l(id, ratio);
  l.set_x2apic_mode(true);
  EXPECT_TRUE(l.write_msr(0x80F, 0x1FF).has_value());
  return l;
}

uint32_t mmio(L& l, uint32_t off) {
  auto r = l.read_mmio(off);
  EXPECT_TRUE(r.has_value()) << off;
  return r.has_value() ? *r : 0xDEADBEEF;
}

uint64_t msr(L& l, uint32_t m) {
  auto r = l.read_msr(m);
  EXPECT_TRUE(r.has_value()) << m;
  return r.has_value() ? *r : 0xDEADBEEF;
}

TEST(GuestVlapicRegisters, ResetValues) {
  L l(5);
  EXPECT_EQ(mmio(l, L::kOffId), 5u << 24);
  EXPECT_EQ(mmio(l, L::kOffVersion), 0x00060014u);
  EXPECT_EQ(mmio(l, L::kOffSvr), 0xFFu);
  EXPECT_FALSE(l.software_enabled());
  EXPECT_EQ(mmio(l, L::kOffDfr), 0xFFFFFFFFu);
  for (uint32_t off : {L::kOffLvtCmci, L::kOffLvtTimer, L::kOffLvtThermal, L::kOffLvtPerf, L::kOffLvtLint0,
                       L::kOffLvtLint1, L::kOffLvtError})
    EXPECT_EQ(mmio(l, off), 0x10000u) << off;
  EXPECT_EQ(mmio(l, L::kOffTpr), 0u);
  EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 0u);
}

TEST(GuestVlapicRegisters, XapicReadWriteTable) {
  L l = enabled_xapic();
  struct Row {
    uint32_t off, write, expect;
  } rows[] = {
      {L::kOffTpr, 0xFFFFFF45, 0x45},
      {L::kOffSvr, 0xFFFFFFFF, 0x3FF},
      {L::kOffLdr, 0x12345678, 0x12000000},
      {L::kOffDfr, 0x00000000, 0x0FFFFFFF},
      {L::kOffLvtTimer, 0xFFFFFFFF, 0x000500FF | 0x20000},  // mode 11 reserved: kept old (00)
      {L::kOffLvtLint0, 0xFFFFFFFF, 0x0001A7FF},
      {L::kOffLvtError, 0xFFFFFFFF, 0x000100FF},
      {L::kOffLvtThermal, 0x000004FE, 0x000004FE},
      {L::kOffTimerDivide, 0xFFFFFFFF, 0xB},
      {L::kOffIcrHigh, 0xFFFFFFFF, 0xFF000000},
      // read-only registers: writes ignored
      {L::kOffId, 0xFFFFFFFF, 3u << 24},
      {L::kOffVersion, 0, 0x00060014},
      {L::kOffPpr, 0xFF, 0x45},
      {L::kOffIrr, 0xFFFFFFFF, 0},
      {L::kOffIsr + 0x70, 0xFFFFFFFF, 0},
  };
  for (const auto& r : rows) {
    ASSERT_TRUE(l.write_mmio(r.off, r.write).has_value()) << std::hex << r.off;
    if (r.off == L::kOffLvtTimer) {
      // Mode bits 18:17 = 11 are reserved: the old mode (one-shot) is kept.
      EXPECT_EQ(mmio(l, r.off), 0x000100FFu) << std::hex << r.off;
      continue;
    }
    EXPECT_EQ(mmio(l, r.off), r.expect) << std::hex << r.off;
  }
}

TEST(GuestVlapicRegisters, XapicBadAccesses) {
  L l = enabled_xapic();
  EXPECT_FALSE(l.read_mmio(0x24).has_value());    // not 16-byte aligned
  EXPECT_FALSE(l.read_mmio(0x1000).has_value());  // beyond the page
  EXPECT_FALSE(l.read_mmio(0x000).has_value());   // reserved
  EXPECT_FALSE(l.read_mmio(0x3F0).has_value());   // SELF_IPI is x2APIC-only
  EXPECT_FALSE(l.write_mmio(0x3F0, 0x40).has_value());
  EXPECT_FALSE(l.write_mmio(0x3A0, 1).has_value());
  EXPECT_FALSE(l.write_mmio(0x31, 1).has_value());
  EXPECT_FALSE(l.read_msr(0x802).has_value());  // x2APIC MSRs in xAPIC mode
  l.set_x2apic_mode(true);
  EXPECT_FALSE(l.read_mmio(L::kOffId).has_value());  // MMIO gone in x2APIC mode
}

TEST(GuestVlapicRegisters, X2apicMsrErrors) {
  L l = enabled_x2apic();
  // Reserved / xAPIC-only registers.
  for (uint32_t m : {0x800u, 0x809u, 0x80Cu, 0x80Eu, 0x831u, 0x83Au, 0x8FFu, 0x7FFu, 0x900u})
    EXPECT_FALSE(l.read_msr(m).has_value()) << std::hex << m;
  // Write-only registers.
  EXPECT_FALSE(l.read_msr(0x80B).has_value());
  EXPECT_FALSE(l.read_msr(0x83F).has_value());
  // Read-only registers.
  for (uint32_t m : {0x802u, 0x803u, 0x80Au, 0x80Du, 0x810u, 0x818u, 0x827u, 0x839u})
    EXPECT_FALSE(l.write_msr(m, 0).has_value()) << std::hex << m;
  // Reserved bits 63:32, non-zero EOI / ESR, DFR.
  EXPECT_FALSE(l.write_msr(0x808, 1ull << 32).has_value());
  EXPECT_FALSE(l.write_msr(0x80B, 1).has_value());
  EXPECT_FALSE(l.write_msr(0x828, 1).has_value());
  EXPECT_FALSE(l.write_msr(0x80E, 0).has_value());
  EXPECT_FALSE(l.write_msr(0x83F, 0x100).has_value());
  EXPECT_TRUE(l.write_msr(0x80B, 0).has_value());
  EXPECT_TRUE(l.write_msr(0x828, 0).has_value());
  EXPECT_TRUE(l.write_msr(0x808, 0x20).has_value());
  EXPECT_EQ(msr(l, 0x808), 0x20u);
  EXPECT_EQ(msr(l, 0x80A), 0x20u);
  EXPECT_EQ(msr(l, 0x803), 0x00060014u);
}

TEST(GuestVlapicRegisters, IdAndLdrViews) {
  L l(0x25);
  EXPECT_EQ(mmio(l, L::kOffId), 0x25000000u);
  ASSERT_TRUE(l.write_mmio(L::kOffLdr, 0x80000000).has_value());
  EXPECT_EQ(mmio(l, L::kOffLdr), 0x80000000u);
  l.set_x2apic_mode(true);
  EXPECT_EQ(msr(l, 0x802), 0x25u);
  // SDM 11.12.10.2: cluster 0x2 in 31:16, bit 5 in 15:0.
  EXPECT_EQ(msr(l, 0x80D), 0x00020020u);
  L big(0x12345);
  big.set_x2apic_mode(true);
  EXPECT_EQ(msr(big, 0x802), 0x12345u);
  EXPECT_EQ(msr(big, 0x80D), (0x1234u << 16) | (1u << 5));
}

TEST(GuestVlapicPriority, PprFollowsTprAndIsr) {
  L l = enabled_xapic();
  EXPECT_EQ(l.ppr(), 0);
  ASSERT_TRUE(l.write_mmio(L::kOffTpr, 0x37).has_value());
  EXPECT_EQ(l.ppr(), 0x37);
  ASSERT_TRUE(l.accept_interrupt(0x51, false));
  ASSERT_TRUE(l.acknowledge(0x51).has_value());
  EXPECT_EQ(l.ppr(), 0x50);  // ISRV class above TPR class: ISRV[7:4] << 4
  ASSERT_TRUE(l.write_mmio(L::kOffTpr, 0x5A).has_value());
  EXPECT_EQ(l.ppr(), 0x5A);  // equal classes: TPR
  EXPECT_EQ(mmio(l, L::kOffPpr), 0x5Au);
}

TEST(GuestVlapicPriority, Cr8IsTprBits7To4) {
  L l = enabled_xapic();
  ASSERT_TRUE(l.write_mmio(L::kOffTpr, 0x5A).has_value());
  EXPECT_EQ(l.cr8(), 5u);
  l.write_cr8(0x9);
  EXPECT_EQ(l.tpr(), 0x90);  // TPR[3:0] cleared (SDM Vol. 3A 11.8.6.1)
  EXPECT_EQ(mmio(l, L::kOffTpr), 0x90u);
  ASSERT_TRUE(l.accept_interrupt(0x85, false));
  EXPECT_FALSE(l.highest_deliverable().has_value());  // class 8 is below CR8 9
  l.write_cr8(0x7);
  EXPECT_EQ(l.highest_deliverable(), std::optional<uint8_t>(0x85));
  l.write_cr8(0);
  EXPECT_EQ(l.tpr(), 0u);
}

TEST(GuestVlapicPriority, TprBlocksSameAndLowerClass) {
  L l = enabled_xapic();
  ASSERT_TRUE(l.write_mmio(L::kOffTpr, 0x40).has_value());
  ASSERT_TRUE(l.accept_interrupt(0x4F, false));
  EXPECT_FALSE(l.highest_deliverable().has_value());  // class 4 not above 4
  ASSERT_TRUE(l.accept_interrupt(0x50, false));
  EXPECT_EQ(l.highest_deliverable(), std::optional<uint8_t>(0x50));
  ASSERT_TRUE(l.write_mmio(L::kOffTpr, 0x3F).has_value());
  ASSERT_TRUE(l.acknowledge(0x50).has_value());
  EXPECT_FALSE(l.highest_deliverable().has_value());  // 0x4F below in-service 0x50's class
  EXPECT_FALSE(l.acknowledge(0x50).has_value());      // no longer in IRR
}

TEST(GuestVlapicFlow, NestedIrrIsrEoi) {
  L l = enabled_xapic();
  ASSERT_TRUE(l.accept_interrupt(0x30, false));
  ASSERT_EQ(l.highest_deliverable(), std::optional<uint8_t>(0x30));
  ASSERT_TRUE(l.acknowledge(0x30).has_value());
  EXPECT_TRUE(l.isr_bit(0x30));
  EXPECT_FALSE(l.irr_bit(0x30));
  EXPECT_EQ(mmio(l, L::kOffIsr + 0x10), 1u << 16);  // vector 0x30 = ISR word 1 bit 16
  // A higher-class interrupt nests; a lower one waits.
  ASSERT_TRUE(l.accept_interrupt(0x80, false));
  ASSERT_TRUE(l.accept_interrupt(0x31, false));
  ASSERT_EQ(l.highest_deliverable(), std::optional<uint8_t>(0x80));
  ASSERT_TRUE(l.acknowledge(0x80).has_value());
  EXPECT_FALSE(l.highest_deliverable().has_value());
  // EOI clears the highest ISR bit (0x80) first.
  ASSERT_TRUE(l.write_mmio(L::kOffEoi, 0).has_value());
  EXPECT_FALSE(l.isr_bit(0x80));
  EXPECT_TRUE(l.isr_bit(0x30));
  EXPECT_FALSE(l.highest_deliverable().has_value());  // 0x31 same class as in-service 0x30
  EXPECT_FALSE(l.take_level_eoi().has_value());       // edge
  ASSERT_TRUE(l.write_mmio(L::kOffEoi, 0).has_value());
  EXPECT_EQ(l.highest_deliverable(), std::optional<uint8_t>(0x31));
  // EOI with nothing in service does nothing.
  ASSERT_TRUE(l.write_mmio(L::kOffEoi, 0).has_value());
  EXPECT_TRUE(l.irr_bit(0x31));
}

TEST(GuestVlapicFlow, LevelTriggeredEoiReported) {
  L l = enabled_x2apic();
  ASSERT_TRUE(l.accept_interrupt(0x61, true));
  EXPECT_TRUE(l.tmr_bit(0x61));
  EXPECT_EQ(msr(l, 0x818 + 3), 1u << 1);  // TMR word 3 bit 1
  ASSERT_TRUE(l.acknowledge(0x61).has_value());
  ASSERT_TRUE(l.write_msr(0x80B, 0).has_value());
  EXPECT_EQ(l.take_level_eoi(), std::optional<uint8_t>(0x61));
  EXPECT_FALSE(l.take_level_eoi().has_value());
  // The same vector re-arriving edge-triggered clears TMR: its EOI is not reported.
  ASSERT_TRUE(l.accept_interrupt(0x61, false));
  EXPECT_FALSE(l.tmr_bit(0x61));
  ASSERT_TRUE(l.acknowledge(0x61).has_value());
  ASSERT_TRUE(l.write_msr(0x80B, 0).has_value());
  EXPECT_FALSE(l.take_level_eoi().has_value());
}

TEST(GuestVlapicFlow, IllegalVectorsSetEsr) {
  L l = enabled_xapic();
  EXPECT_FALSE(l.accept_interrupt(15, false));
  EXPECT_FALSE(l.irr_bit(15));
  EXPECT_EQ(mmio(l, L::kOffEsr), 0u);  // latched only by an ESR write
  ASSERT_TRUE(l.write_mmio(L::kOffEsr, 0).has_value());
  EXPECT_EQ(mmio(l, L::kOffEsr), 1u << 6);
  ASSERT_TRUE(l.write_mmio(L::kOffIcrLow, 0x00040005).has_value());  // self, vector 5
  EXPECT_FALSE(l.take_ipi().has_value());
  ASSERT_TRUE(l.write_mmio(L::kOffEsr, 0).has_value());
  EXPECT_EQ(mmio(l, L::kOffEsr), 1u << 5);
}

TEST(GuestVlapicFlow, SoftwareDisable) {
  L l = enabled_xapic();
  ASSERT_TRUE(l.write_mmio(L::kOffLvtTimer, 0x20).has_value());
  ASSERT_TRUE(l.accept_interrupt(0x40, false));
  ASSERT_TRUE(l.write_mmio(L::kOffSvr, 0x0FF).has_value());  // disable
  EXPECT_FALSE(l.software_enabled());
  EXPECT_EQ(mmio(l, L::kOffLvtTimer), 0x10020u);  // masked by the disable
  ASSERT_TRUE(l.write_mmio(L::kOffLvtTimer, 0x21).has_value());
  EXPECT_EQ(mmio(l, L::kOffLvtTimer), 0x10021u);  // mask cannot be cleared
  EXPECT_TRUE(l.irr_bit(0x40));                   // kept
  EXPECT_FALSE(l.highest_deliverable().has_value());
  EXPECT_FALSE(l.accept_interrupt(0x50, false));
  EXPECT_FALSE(l.irr_bit(0x50));
  ASSERT_TRUE(l.write_mmio(L::kOffSvr, 0x1FF).has_value());
  EXPECT_EQ(l.highest_deliverable(), std::optional<uint8_t>(0x40));
  EXPECT_EQ(mmio(l, L::kOffLvtTimer), 0x10021u);  // still masked until rewritten
}

TEST(GuestVlapicIpi, XapicIcrFields) {
  L l = enabled_xapic(7);
  ASSERT_TRUE(l.write_mmio(L::kOffIcrHigh, 0x02000000).has_value());
  // INIT, level assert, level-triggered, physical, destination 2.
  ASSERT_TRUE(l.write_mmio(L::kOffIcrLow, 0x0000C500).has_value());
  auto ipi = l.take_ipi();
  ASSERT_TRUE(ipi.has_value());
  EXPECT_EQ(ipi->delivery_mode, IpiDeliveryMode::kInit);
  EXPECT_EQ(ipi->destination, 2u);
  EXPECT_EQ(ipi->shorthand, IpiShorthand::kNone);
  EXPECT_TRUE(ipi->level_assert);
  EXPECT_TRUE(ipi->level_triggered);
  EXPECT_EQ(ipi->source_apic_id, 7u);
  EXPECT_FALSE(l.take_ipi().has_value());
  // SIPI to start page 0x9A.
  ASSERT_TRUE(l.write_mmio(L::kOffIcrLow, 0x0000069A).has_value());
  ipi = l.take_ipi();
  ASSERT_TRUE(ipi.has_value());
  EXPECT_EQ(ipi->delivery_mode, IpiDeliveryMode::kStartup);
  EXPECT_EQ(ipi->vector, 0x9A);
  EXPECT_EQ(mmio(l, L::kOffIcrLow), 0x0000069Au);
  EXPECT_EQ(mmio(l, L::kOffIcrHigh), 0x02000000u);
  // NMI to all excluding self, logical destination bit kept.
  ASSERT_TRUE(l.write_mmio(L::kOffIcrLow, 0x000C0C00).has_value());
  ipi = l.take_ipi();
  ASSERT_TRUE(ipi.has_value());
  EXPECT_EQ(ipi->delivery_mode, IpiDeliveryMode::kNmi);
  EXPECT_EQ(ipi->shorthand, IpiShorthand::kAllExcludingSelf);
  EXPECT_TRUE(ipi->logical_destination);
}

TEST(GuestVlapicIpi, Shorthands) {
  L l = enabled_xapic();
  // Self: delivered locally, nothing for the caller.
  ASSERT_TRUE(l.write_mmio(L::kOffIcrLow, 0x00040041).has_value());
  EXPECT_FALSE(l.take_ipi().has_value());
  EXPECT_TRUE(l.irr_bit(0x41));
  // Self with NMI delivery is invalid: dropped.
  ASSERT_TRUE(l.write_mmio(L::kOffIcrLow, 0x00040400).has_value());
  EXPECT_FALSE(l.take_ipi().has_value());
  // All including self: the caller delivers to every vCPU (this one included).
  ASSERT_TRUE(l.write_mmio(L::kOffIcrLow, 0x00080042).has_value());
  auto ipi = l.take_ipi();
  ASSERT_TRUE(ipi.has_value());
  EXPECT_EQ(ipi->shorthand, IpiShorthand::kAllIncludingSelf);
  EXPECT_EQ(ipi->vector, 0x42);
  EXPECT_FALSE(l.irr_bit(0x42));
  // Fixed IPI with an illegal vector is not sent.
  ASSERT_TRUE(l.write_mmio(L::kOffIcrLow, 0x0000000F).has_value());
  EXPECT_FALSE(l.take_ipi().has_value());
}

TEST(GuestVlapicIpi, X2apicIcrIs64Bit) {
  L l = enabled_x2apic(1);
  ASSERT_TRUE(l.write_msr(0x830, (0x12345ull << 32) | 0x4055).has_value());
  auto ipi = l.take_ipi();
  ASSERT_TRUE(ipi.has_value());
  EXPECT_EQ(ipi->destination, 0x12345u);
  EXPECT_EQ(ipi->vector, 0x55);
  EXPECT_EQ(ipi->delivery_mode, IpiDeliveryMode::kFixed);
  EXPECT_EQ(msr(l, 0x830), (0x12345ull << 32) | 0x4055);
  // Self shorthand through the x2APIC ICR.
  ASSERT_TRUE(l.write_msr(0x830, 0x40066).has_value());
  EXPECT_TRUE(l.irr_bit(0x66));
  EXPECT_FALSE(l.take_ipi().has_value());
}

TEST(GuestVlapicIpi, SelfIpiMsr) {
  L l = enabled_x2apic();
  ASSERT_TRUE(l.write_msr(0x83F, 0x77).has_value());
  EXPECT_TRUE(l.irr_bit(0x77));
  EXPECT_FALSE(l.tmr_bit(0x77));
  EXPECT_EQ(msr(l, 0x820 + 3), 1u << 23);  // IRR word 3 bit 23
  EXPECT_EQ(l.highest_deliverable(), std::optional<uint8_t>(0x77));
  EXPECT_FALSE(l.take_ipi().has_value());
  ASSERT_TRUE(l.write_msr(0x83F, 0x3).has_value());  // illegal vector: not delivered
  EXPECT_FALSE(l.irr_bit(0x3));
}

TEST(GuestVlapicTimer, OneShot) {
  L l = enabled_xapic(0, 2);                                       // 2 TSC per bus clock
  ASSERT_TRUE(l.write_mmio(L::kOffTimerDivide, 0xB).has_value());  // divide by 1
  ASSERT_TRUE(l.write_mmio(L::kOffLvtTimer, 0x30).has_value());
  l.set_time(1000);
  ASSERT_TRUE(l.write_mmio(L::kOffTimerInitial, 100).has_value());
  EXPECT_EQ(l.next_deadline(), 1200u);
  EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 100u);
  EXPECT_EQ(l.poll_timer(1100), 0u);
  EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 50u);
  EXPECT_FALSE(l.irr_bit(0x30));
  EXPECT_EQ(l.poll_timer(1200), 1u);
  EXPECT_TRUE(l.irr_bit(0x30));
  EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 0u);
  EXPECT_EQ(l.next_deadline(), L::kNoDeadline);
  EXPECT_EQ(l.poll_timer(5000), 0u);  // one-shot does not rearm
  EXPECT_EQ(mmio(l, L::kOffTimerInitial), 100u);
  // Writing 0 stops a running timer.
  ASSERT_TRUE(l.write_mmio(L::kOffTimerInitial, 10).has_value());
  ASSERT_TRUE(l.write_mmio(L::kOffTimerInitial, 0).has_value());
  EXPECT_EQ(l.next_deadline(), L::kNoDeadline);
}

TEST(GuestVlapicTimer, PeriodicReloads) {
  L l = enabled_xapic();
  ASSERT_TRUE(l.write_mmio(L::kOffTimerDivide, 0x0).has_value());   // divide by 2
  ASSERT_TRUE(l.write_mmio(L::kOffLvtTimer, 0x20031).has_value());  // periodic, vector 0x31
  EXPECT_EQ(l.timer_mode(), LapicTimerMode::kPeriodic);
  ASSERT_TRUE(l.write_mmio(L::kOffTimerInitial, 50).has_value());  // period 100 TSC
  EXPECT_EQ(l.next_deadline(), 100u);
  EXPECT_EQ(l.poll_timer(100), 1u);
  EXPECT_TRUE(l.irr_bit(0x31));
  EXPECT_EQ(l.next_deadline(), 200u);
  EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 50u);  // reloaded
  EXPECT_EQ(l.poll_timer(150), 0u);
  EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 25u);
  ASSERT_TRUE(l.acknowledge(0x31).has_value());
  ASSERT_TRUE(l.write_mmio(L::kOffEoi, 0).has_value());
  EXPECT_EQ(l.poll_timer(200), 1u);
  EXPECT_TRUE(l.irr_bit(0x31));
  // Three periods missed: one interrupt, three expirations, phase kept.
  EXPECT_EQ(l.poll_timer(530), 3u);
  EXPECT_EQ(l.next_deadline(), 600u);
  EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 35u);
}

TEST(GuestVlapicTimer, MaskedTimerRaisesNothing) {
  L l = enabled_xapic();
  ASSERT_TRUE(l.write_mmio(L::kOffTimerDivide, 0xB).has_value());
  ASSERT_TRUE(l.write_mmio(L::kOffLvtTimer, 0x30031).has_value());  // periodic, masked
  ASSERT_TRUE(l.write_mmio(L::kOffTimerInitial, 10).has_value());
  EXPECT_EQ(l.next_deadline(), L::kNoDeadline);
  EXPECT_EQ(l.poll_timer(25), 2u);  // still counts
  EXPECT_FALSE(l.irr_bit(0x31));
  EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 5u);
  ASSERT_TRUE(l.write_mmio(L::kOffLvtTimer, 0x20031).has_value());  // unmask
  EXPECT_EQ(l.next_deadline(), 30u);
  EXPECT_EQ(l.poll_timer(30), 1u);
  EXPECT_TRUE(l.irr_bit(0x31));
}

TEST(GuestVlapicTimer, TscDeadline) {
  L l = enabled_x2apic();
  l.write_tsc_deadline(500);  // ignored outside TSC-deadline mode
  EXPECT_EQ(l.read_tsc_deadline(), 0u);
  ASSERT_TRUE(l.write_msr(0x832, 0x40045).has_value());  // TSC-deadline, vector 0x45
  EXPECT_EQ(l.timer_mode(), LapicTimerMode::kTscDeadline);
  ASSERT_TRUE(l.write_msr(0x838, 1000).has_value());  // initial count ignored
  EXPECT_EQ(msr(l, 0x838), 0u);
  EXPECT_EQ(l.next_deadline(), L::kNoDeadline);
  l.write_tsc_deadline(700);
  EXPECT_EQ(l.read_tsc_deadline(), 700u);
  EXPECT_EQ(l.next_deadline(), 700u);
  EXPECT_EQ(msr(l, 0x839), 0u);  // current count reads 0
  EXPECT_EQ(l.poll_timer(699), 0u);
  EXPECT_EQ(l.poll_timer(700), 1u);
  EXPECT_TRUE(l.irr_bit(0x45));
  EXPECT_EQ(l.read_tsc_deadline(), 0u);
  EXPECT_EQ(l.next_deadline(), L::kNoDeadline);
  // Writing 0 disarms; a deadline in the past fires at the next poll.
  l.write_tsc_deadline(900);
  l.write_tsc_deadline(0);
  EXPECT_EQ(l.next_deadline(), L::kNoDeadline);
  l.write_tsc_deadline(10);
  EXPECT_EQ(l.poll_timer(800), 1u);
  // Leaving TSC-deadline mode disarms.
  l.write_tsc_deadline(2000);
  ASSERT_TRUE(l.write_msr(0x832, 0x00045).has_value());
  EXPECT_EQ(l.next_deadline(), L::kNoDeadline);
  EXPECT_EQ(l.read_tsc_deadline(), 0u);
}

TEST(GuestVlapicTimer, CurrentCountWithDivideValues) {
  // SDM 11.5.4 Figure 11-10: encoding -> divisor.
  struct Row {
    uint32_t dcr, divisor;
  } rows[] = {{0x0, 2}, {0x1, 4}, {0x2, 8}, {0x3, 16}, {0x8, 32}, {0x9, 64}, {0xA, 128}, {0xB, 1}};
  for (const auto& r : rows) {
    L l = enabled_xapic(0, 3);  // 3 TSC per bus clock
    ASSERT_TRUE(l.write_mmio(L::kOffTimerDivide, r.dcr).has_value());
    ASSERT_TRUE(l.write_mmio(L::kOffLvtTimer, 0x30).has_value());
    ASSERT_TRUE(l.write_mmio(L::kOffTimerInitial, 1000).has_value());
    uint64_t per_count = 3ull * r.divisor;
    EXPECT_EQ(l.next_deadline(), 1000 * per_count) << r.dcr;
    l.set_time(10 * per_count + per_count - 1);
    EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 990u) << r.dcr;
    l.set_time(1000 * per_count - 1);
    EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 1u) << r.dcr;
  }
}

TEST(GuestVlapicTimer, DivideChangeWhileCounting) {
  L l = enabled_xapic();
  ASSERT_TRUE(l.write_mmio(L::kOffTimerDivide, 0xB).has_value());  // 1
  ASSERT_TRUE(l.write_mmio(L::kOffLvtTimer, 0x30).has_value());
  ASSERT_TRUE(l.write_mmio(L::kOffTimerInitial, 100).has_value());
  l.set_time(40);
  ASSERT_TRUE(l.write_mmio(L::kOffTimerDivide, 0x1).has_value());  // 4
  EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 60u);
  EXPECT_EQ(l.next_deadline(), 40u + 60 * 4);
  l.set_time(44);
  EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 59u);
}

TEST(GuestVlapicTimer, RatioClampedAndTimeMonotonic) {
  L l = enabled_xapic(0, 0);  // 0 -> 1
  ASSERT_TRUE(l.write_mmio(L::kOffTimerDivide, 0xB).has_value());
  ASSERT_TRUE(l.write_mmio(L::kOffLvtTimer, 0x30).has_value());
  l.set_time(100);
  ASSERT_TRUE(l.write_mmio(L::kOffTimerInitial, 10).has_value());
  EXPECT_EQ(l.next_deadline(), 110u);
  l.set_time(50);  // backwards: ignored
  EXPECT_EQ(mmio(l, L::kOffTimerCurrent), 10u);
  // Huge ratio and count: no overflow past 64 bits.
  L h = enabled_xapic(0, 0xFFFFFFFF);
  ASSERT_TRUE(h.write_mmio(L::kOffTimerDivide, 0xA).has_value());  // 128
  ASSERT_TRUE(h.write_mmio(L::kOffLvtTimer, 0x30).has_value());
  ASSERT_TRUE(h.write_mmio(L::kOffTimerInitial, 0xFFFFFFFF).has_value());
  EXPECT_EQ(h.next_deadline(), 0xFFFFFFFFull * 128 * L::kMaxTscPerBusClock);
}

}  // namespace

TEST(ApicBase, TransitionsFollowFigure11_26) {
  constexpr uint64_t xapic = kApicBaseDefault | kApicBaseEnable | kApicBaseBsp;
  constexpr uint64_t x2apic = xapic | kApicBaseExtd;
  // Disable (what kvm-unit-tests' reset_apic does), then enable again; BSP is kept.
  EXPECT_EQ(*next_apic_base(xapic, kApicBaseDefault | kApicBaseBsp, 39), kApicBaseDefault | kApicBaseBsp);
  EXPECT_EQ(*next_apic_base(kApicBaseDefault | kApicBaseBsp, kApicBaseDefault | kApicBaseEnable, 39), xapic);
  EXPECT_EQ(*next_apic_base(xapic, x2apic, 39), x2apic);
  EXPECT_EQ(*next_apic_base(x2apic, kApicBaseDefault, 39), kApicBaseDefault | kApicBaseBsp);
  EXPECT_FALSE(next_apic_base(x2apic, xapic, 39));                             // x2APIC -> xAPIC
  EXPECT_FALSE(next_apic_base(kApicBaseDefault, x2apic, 39));                  // disabled -> x2APIC
  EXPECT_FALSE(next_apic_base(xapic, kApicBaseDefault | kApicBaseExtd, 39));   // EXTD without EN
  EXPECT_FALSE(next_apic_base(xapic, xapic | (1ull << 9), 39));                // reserved bit 9
  EXPECT_FALSE(next_apic_base(xapic, xapic | (1ull << 39), 39));               // above MAXPHYADDR
  // The page may move (SDM 11.4.5); whether the guest's platform has room there is the caller's.
  EXPECT_EQ(*next_apic_base(xapic, 0xfed40000u | kApicBaseEnable, 39), 0xfed40000u | kApicBaseEnable | kApicBaseBsp);
}


TEST(ApicBase, TheVlapicFollowsEnAndExtd) {
  VirtualLapic v(0);
  v.follow_apic_base(kApicBaseDefault | kApicBaseEnable | kApicBaseExtd);
  EXPECT_TRUE(v.x2apic_mode());
  v.follow_apic_base(kApicBaseDefault);  // disabled: reset, xAPIC view
  EXPECT_FALSE(v.x2apic_mode());
  v.follow_apic_base(kApicBaseDefault | kApicBaseEnable);
  EXPECT_FALSE(v.x2apic_mode());
}

TEST(ApicPage, WhatAnAccessMeetsFollowsEnAndExtd) {
  constexpr uint64_t kXapic = kApicBaseDefault | kApicBaseEnable | kApicBaseBsp;
  EXPECT_EQ(apic_page_access(kXapic, 0xfee00030), ApicPageAccess::kXapicRegisters);
  EXPECT_EQ(apic_page_access(kXapic, 0xfee00fff), ApicPageAccess::kXapicRegisters);
  EXPECT_EQ(apic_page_access(kXapic, 0xfee01000), ApicPageAccess::kNotApicPage);
  EXPECT_EQ(apic_page_access(kXapic, 0xfedfffff), ApicPageAccess::kNotApicPage);
  // Disabled (EN clear) or x2APIC mode: the page is still where the base says, with nothing there.
  EXPECT_EQ(apic_page_access(kApicBaseDefault | kApicBaseBsp, 0xfee00030), ApicPageAccess::kNoDevice);
  EXPECT_EQ(apic_page_access(kXapic | kApicBaseExtd, 0xfee00080), ApicPageAccess::kNoDevice);
  EXPECT_EQ(apic_page_access(kXapic | kApicBaseExtd, 0x1000), ApicPageAccess::kNotApicPage);
}

TEST(ApicPage, NothingAnswersOutsideXapicMode) {
  VirtualLapic v(0);
  ApicPageDevice page(v, ApicPageAccess::kNoDevice);
  EXPECT_EQ(page.mmio_read(0x30, 4), 0xffffffffu);
  EXPECT_EQ(page.mmio_read(0x31, 1), 0xffu);
  EXPECT_EQ(page.mmio_read(0x80, 2), 0xffffu);
  EXPECT_EQ(page.mmio_read(0x80, 8), ~uint64_t{0});
  page.mmio_write(0xf0, 4, 0x1ff);  // dropped: the vlapic stays software-disabled
  EXPECT_FALSE(v.software_enabled());
}

TEST(ApicPage, RegistersInXapicMode) {
  VirtualLapic v = enabled_xapic(3);
  ApicPageDevice page(v, ApicPageAccess::kXapicRegisters);
  EXPECT_EQ(page.mmio_read(L::kOffVersion, 4), 0x00060014u);
  EXPECT_EQ(page.mmio_read(L::kOffVersion, 8), 0x00060014u);  // zero-extended
  EXPECT_EQ(page.mmio_read(L::kOffVersion + 2, 1), 0x06u);    // a byte of the register
  EXPECT_EQ(page.mmio_read(L::kOffVersion, 2), 0x0014u);
  EXPECT_EQ(page.mmio_read(L::kOffVersion + 4, 4), 0u);       // reserved bytes of the slot
  EXPECT_EQ(page.mmio_read(0x40, 4), 0u);                     // a reserved register
  page.mmio_write(L::kOffTpr, 4, 0x20);
  EXPECT_EQ(v.tpr(), 0x20);
  page.mmio_write(L::kOffTpr, 1, 0x30);      // not a 32-bit access: dropped
  page.mmio_write(L::kOffTpr + 4, 4, 0x30);  // not aligned: dropped
  EXPECT_EQ(v.tpr(), 0x20);
}

}  // namespace lantern::guest

TEST(GuestVlapicLogicalDestination, XapicFlatModel) {
  const uint32_t flat = 0xffffffffu;
  EXPECT_TRUE(lantern::guest::logical_destination_matches(0x01, 0x01000000, flat, false));
  EXPECT_TRUE(lantern::guest::logical_destination_matches(0x03, 0x02000000, flat, false));
  EXPECT_FALSE(lantern::guest::logical_destination_matches(0x02, 0x01000000, flat, false));
  EXPECT_FALSE(lantern::guest::logical_destination_matches(0x01, 0x00000000, flat, false));  // LDR never written
  EXPECT_TRUE(lantern::guest::logical_destination_matches(0xff, 0x00000000, flat, false));   // broadcast
}

TEST(GuestVlapicLogicalDestination, XapicClusterModel) {
  const uint32_t cluster = 0x0fffffffu;
  EXPECT_TRUE(lantern::guest::logical_destination_matches(0x21, 0x21000000, cluster, false));   // cluster 2, member 0
  EXPECT_TRUE(lantern::guest::logical_destination_matches(0x23, 0x22000000, cluster, false));   // cluster 2, members 0-1
  EXPECT_FALSE(lantern::guest::logical_destination_matches(0x11, 0x21000000, cluster, false));  // other cluster
  EXPECT_FALSE(lantern::guest::logical_destination_matches(0x24, 0x21000000, cluster, false));  // other member
}

TEST(GuestVlapicLogicalDestination, X2apicCluster) {
  // x2APIC ID 0x13: cluster 1, member bit 3 (SDM 11.12.10.2).
  const uint32_t ldr = (1u << 16) | (1u << 3);
  EXPECT_TRUE(lantern::guest::logical_destination_matches((1u << 16) | 0x8, ldr, 0, true));
  EXPECT_FALSE(lantern::guest::logical_destination_matches((1u << 16) | 0x4, ldr, 0, true));
  EXPECT_FALSE(lantern::guest::logical_destination_matches((2u << 16) | 0x8, ldr, 0, true));
}

// Which vCPUs an IPI reaches (SDM Vol. 3A 11.6.2): shorthands, broadcast, physical, logical.
TEST(GuestVlapicIpiReaches, ShorthandsBroadcastPhysicalLogical) {
  using lantern::guest::IpiRequest;
  using lantern::guest::IpiShorthand;
  using lantern::guest::ipi_reaches;
  auto never = [](uint32_t) { return false; };
  auto always = [](uint32_t) { return true; };
  IpiRequest ipi;
  ipi.shorthand = IpiShorthand::kSelf;
  EXPECT_TRUE(ipi_reaches(ipi, 1, 1, false, never));
  EXPECT_FALSE(ipi_reaches(ipi, 1, 0, false, never));
  ipi.shorthand = IpiShorthand::kAllExcludingSelf;
  EXPECT_FALSE(ipi_reaches(ipi, 1, 1, false, never));
  EXPECT_TRUE(ipi_reaches(ipi, 1, 0, false, never));
  ipi.shorthand = IpiShorthand::kAllIncludingSelf;
  EXPECT_TRUE(ipi_reaches(ipi, 1, 1, false, never));
  ipi.shorthand = IpiShorthand::kNone;
  ipi.destination = 0xff;  // xAPIC broadcast; in x2APIC mode an ordinary ID
  EXPECT_TRUE(ipi_reaches(ipi, 0, 3, false, never));
  EXPECT_FALSE(ipi_reaches(ipi, 0, 3, true, never));
  ipi.destination = 2;
  EXPECT_TRUE(ipi_reaches(ipi, 0, 2, false, never));
  EXPECT_FALSE(ipi_reaches(ipi, 0, 1, false, always));  // physical: the target's logical ID does not count
  ipi.logical_destination = true;
  EXPECT_TRUE(ipi_reaches(ipi, 0, 1, false, always));
  EXPECT_FALSE(ipi_reaches(ipi, 0, 2, false, never));
}
