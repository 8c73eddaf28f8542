// svm/event_injection.h from tables of raw values: EVENTINJ for queued events, the inject-or-
// open-a-window decision from RFLAGS.IF / INTERRUPT_SHADOW / NMI blocking / a busy EVENTINJ,
// EXITINTINFO re-injection, and the V_IRQ window bits; plus the exit-counter slots (exit_code.h).
#include <gtest/gtest.h>

#include <set>

#include "svm/event_injection.h"
#include "svm/exit_code.h"
#include "svm/exit_info.h"
#include "svm/vmcb_controls.h"

namespace lantern::svm {
namespace {

using guest::InjectionAction;
using guest::PendingEvent;
using guest::PendingEventType;

constexpr uint64_t kIf = 1u << 9;

PendingEvent interrupt(uint8_t v) { return PendingEvent{PendingEventType::kExternalInterrupt, v, false, 0}; }
PendingEvent nmi() { return PendingEvent{PendingEventType::kNmi, 2, false, 0}; }
PendingEvent exception(uint8_t v, std::optional<uint32_t> ec = std::nullopt) {
  return PendingEvent{PendingEventType::kHardwareException, v, ec.has_value(), ec.value_or(0)};
}

TEST(SvmEventInjection, EventinjEncodesTypeVectorAndErrorCode) {
  // APM 15.20 Figure 15-7: vector 7:0, type 10:8, EV 11, V 31, error code 63:32.
  EXPECT_EQ(eventinj_for(interrupt(0x30)).value(), 0x80000030ull);
  EXPECT_EQ(eventinj_for(nmi()).value(), 0x80000202ull);
  EXPECT_EQ(eventinj_for(exception(6)).value(), 0x80000306ull);
  EXPECT_EQ(eventinj_for(exception(13, 0x1234)).value(), 0x0000123480000b0dull);  // EV set
  EXPECT_EQ(eventinj_for(exception(14, 0xffffffff)).value(), 0xffffffff80000b0eull);
}

TEST(SvmEventInjection, EventinjRefusesWhatTheQueueWouldRefuse) {
  EXPECT_FALSE(eventinj_for(exception(13)).has_value());          // #GP needs an error code
  EXPECT_FALSE(eventinj_for(exception(6, 1)).has_value());        // #UD has none
  EXPECT_FALSE(eventinj_for(interrupt(3)).has_value());           // vectors 0-15 are not interrupts
  EXPECT_FALSE(eventinj_for(PendingEvent{PendingEventType::kNmi, 3, false, 0}).has_value());
}

TEST(SvmEventInjection, EventinjForAcceptedEventsEncodesTheSameWithoutTheQueuesChecks) {
  for (const PendingEvent& e : {interrupt(0x30), nmi(), exception(6), exception(13, 0x1234)}) {
    EXPECT_EQ(eventinj_for_accepted(e).value(), eventinj_for(e).value()) << int{e.vector};
  }
  EXPECT_EQ(eventinj_for_accepted(exception(13)).value(), 0x8000030dull);  // not checked again
  // encode_eventinj() still refuses what EVENTINJ cannot hold (APM 15.20).
  EXPECT_FALSE(eventinj_for_accepted(PendingEvent{PendingEventType::kNmi, 3, false, 0}).has_value());
  EXPECT_FALSE(eventinj_for_accepted(PendingEvent{PendingEventType::kExternalInterrupt, 0x30, true, 1}).has_value());
}

struct DecisionCase {
  const char* what;
  std::optional<PendingEvent> head;
  SvmInjectionContext context;
  InjectionAction expected;
};

TEST(SvmEventInjection, DecisionTable) {
  const DecisionCase cases[] = {
      {"nothing queued", std::nullopt, {kIf, false, false, false}, InjectionAction::kNone},
      {"interrupt, IF=1", interrupt(0x30), {kIf, false, false, false}, InjectionAction::kInjectNow},
      {"interrupt, IF=0", interrupt(0x30), {0, false, false, false}, InjectionAction::kRequestInterruptWindow},
      {"interrupt in the STI shadow", interrupt(0x30), {kIf, true, false, false},
       InjectionAction::kRequestInterruptWindow},
      {"interrupt while an NMI handler runs", interrupt(0x30), {kIf, false, true, false}, InjectionAction::kInjectNow},
      {"NMI", nmi(), {0, false, false, false}, InjectionAction::kInjectNow},
      {"NMI while an NMI handler runs", nmi(), {kIf, false, true, false}, InjectionAction::kRequestNmiWindow},
      {"NMI in the interrupt shadow", nmi(), {kIf, true, false, false}, InjectionAction::kRequestNmiWindow},
      {"exception, IF=0, shadow, NMI blocked", exception(6), {0, true, true, false}, InjectionAction::kInjectNow},
      {"anything behind a re-injection", exception(6), {kIf, false, false, true}, InjectionAction::kEntrySlotBusy},
  };
  for (const DecisionCase& c : cases) {
    EXPECT_EQ(decide_svm_injection(c.head, c.context).action, c.expected) << c.what;
  }
}

TEST(SvmEventInjection, ReinjectionKeepsHardwareEventsAndDropsSoftwareOnes) {
  // EXITINTINFO has EVENTINJ's layout (APM 15.7.2).
  EXPECT_FALSE(reinjection_from_exitintinfo(0).has_value());                    // V clear
  EXPECT_FALSE(reinjection_from_exitintinfo(0x00000030).has_value());           // V clear, vector set
  EXPECT_EQ(reinjection_from_exitintinfo(0x80000030).value(), 0x80000030ull);   // external interrupt
  EXPECT_EQ(reinjection_from_exitintinfo(0x80000202).value(), 0x80000202ull);   // NMI
  EXPECT_EQ(reinjection_from_exitintinfo(0x0000000c80000b0eull).value(), 0x0000000c80000b0eull);  // #PF, EV
  EXPECT_FALSE(reinjection_from_exitintinfo(0x80000480).has_value());           // INT 0x80 (type 4)
  EXPECT_FALSE(reinjection_from_exitintinfo(0x80000303).has_value());           // #BP from INT3
  EXPECT_FALSE(reinjection_from_exitintinfo(0x80000304).has_value());           // #OF from INTO
  // Reserved bits 30:12 are not carried into EVENTINJ.
  EXPECT_EQ(reinjection_from_exitintinfo(0x80001030).value(), 0x80000030ull);
}

TEST(SvmEventInjection, InterruptWindowSetsVirqIgnoresTprAndKeepsMasking) {
  const uint64_t with = with_interrupt_window(vintr::kMasking);
  EXPECT_TRUE(interrupt_window_open_requested(with));
  EXPECT_NE(with & vintr::kVirq, 0u);
  EXPECT_NE(with & vintr::kIgnoreTpr, 0u);
  EXPECT_NE(with & vintr::kMasking, 0u);
  EXPECT_EQ((with >> vintr::kPriorityShift) & 0xf, 0xfu);
  const uint64_t without = without_interrupt_window(with);
  EXPECT_FALSE(interrupt_window_open_requested(without));
  EXPECT_NE(without & vintr::kMasking, 0u);
}

TEST(SvmIretSingleStep, SetsTfAndRfAndKeepsEverythingElse) {
  const uint64_t rflags = 0x2 | 0x200 | 0x46;  // reserved bit 1, IF, ZF, PF
  const uint64_t stepped = rflags_for_iret_single_step(rflags);
  EXPECT_EQ(stepped & (1u << 8), 1u << 8);     // TF
  EXPECT_EQ(stepped & (1u << 16), 1u << 16);   // RF
  EXPECT_EQ(stepped & ~((1ull << 8) | (1ull << 16)), rflags);
  EXPECT_EQ(kInterceptDebug, 1u << 1);  // INTERCEPT_EXCEPTIONS bit n = vector n; #DB is 1
}

TEST(SvmIretSingleStep, TheDebugExceptionIsTheGuestsOnlyWhenItHadTfItself) {
  EXPECT_FALSE(iret_single_step_debug_is_guests(0x202));
  EXPECT_TRUE(iret_single_step_debug_is_guests(0x302));
  EXPECT_FALSE(iret_single_step_debug_is_guests(0x10202));  // RF alone is not a single step
}

TEST(SvmExitCountSlots, EveryAppendixCCodeRoundTripsAndTheRestShareTheLastSlot) {
  for (uint64_t code : {kVmexitCpuid, kVmexitHlt, kVmexitIoio, kVmexitMsr, kVmexitVmmcall, kVmexitNpf,
                        uint64_t{0}, uint64_t{0xff}, uint64_t{0x40f}}) {
    const size_t slot = exit_count_slot(code);
    EXPECT_LT(slot, kExitCountSlots - 1) << code;
    EXPECT_EQ(exit_code_of_slot(slot), code);
  }
  std::set<size_t> seen;
  for (uint64_t code = 0; code < 0x100; ++code) seen.insert(exit_count_slot(code));
  for (uint64_t code = 0x400; code < 0x410; ++code) seen.insert(exit_count_slot(code));
  EXPECT_EQ(seen.size(), kExitCountSlots - 1);  // distinct slots
  for (uint64_t code : {kVmexitInvalid, uint64_t{0xffffffff}, kVmexitBusy, uint64_t{0x100}, uint64_t{0x410}}) {
    EXPECT_EQ(exit_count_slot(code), kExitCountSlots - 1) << code;
  }
  EXPECT_TRUE(is_vmexit_invalid(exit_code_of_slot(kExitCountSlots - 1)));
}

}  // namespace
}  // namespace lantern::svm
