#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "guest/event_arbiter.h"

namespace lantern::guest {
namespace {

using T = PendingEventType;

// A vCPU's hardware as the arbiter sees it: the guest's RFLAGS and interruptibility, one event
// slot, the two window requests and the HLT activity, with every call recorded.
struct FakeSeam {
  uint64_t rflags = kRflagsIf;
  uint32_t interruptibility = 0;
  std::optional<PendingEvent> slot;  // the event the next entry delivers
  std::optional<EventSource> slot_source;
  std::optional<PendingEvent> held_reinjection;  // what the newest exit interrupted
  bool interrupt_window = false;
  bool nmi_window = false;
  bool activity_halted = false;
  int wakes = 0;
  int wait_for_sipi_holds = 0;
  PendingEventQueue queue;
  std::vector<PendingEvent> delivered;  // every event delivered, in order

  Result<InjectionContext> injection_context() {
    InjectionContext c;
    c.guest_rflags = rflags;
    c.interruptibility = interruptibility;
    c.event_slot_busy = slot.has_value();
    return c;
  }
  Result<bool> reinject_interrupted_event() {
    if (!held_reinjection) return false;
    slot = held_reinjection;
    slot_source.reset();
    held_reinjection.reset();
    return true;
  }
  struct LockedQueue {
    FakeSeam& seam;
    PendingEventQueue& queue;
    explicit LockedQueue(FakeSeam& s) : seam(s), queue(s.queue) {
      EXPECT_FALSE(seam.queue_locked) << "the queue's lock taken twice";
      seam.queue_locked = true;
    }
    ~LockedQueue() { seam.queue_locked = false; }
  };
  LockedQueue lock_queue() { return LockedQueue(*this); }
  bool queue_locked = false;
  Result<void> inject(const PendingEvent& event, EventSource source) {
    EXPECT_FALSE(slot.has_value()) << "the arbiter overwrote a busy event slot";
    slot = event;
    slot_source = source;
    return ok();
  }
  void request_interrupt_window() { interrupt_window = true; }
  void request_nmi_window() { nmi_window = true; }
  Result<void> wake_from_hlt() {
    activity_halted = false;
    ++wakes;
    return ok();
  }
  Result<void> stay_in_hlt() {
    activity_halted = true;
    return ok();
  }
  Result<void> hold_in_wait_for_sipi() {
    ++wait_for_sipi_holds;
    return ok();
  }

  // One guest entry: the slot's event is delivered, the windows are consumed.
  void enter() {
    if (slot) delivered.push_back(*slot);
    slot.reset();
    slot_source.reset();
    interrupt_window = false;
    nmi_window = false;
  }
};

// Runs passes and entries like a backend's loop; each exit is caused by the guest unless told.
struct Loop {
  FakeSeam seam;
  VirtualLapic vlapic{0};
  EventArbiter arbiter;
  uint64_t exits = 0;

  explicit Loop(EventArbiter::Policy policy = {}) : arbiter(policy) {}

  EventArbiter::PassResult pass(bool newest_exit_from_host = false, bool waiting_for_sipi = false) {
    EventArbiter::Pass p;
    p.exits = exits;
    p.newest_exit_from_host = newest_exit_from_host;
    p.queue_may_have_events = true;
    p.waiting_for_sipi = waiting_for_sipi;
    auto r = arbiter.arbitrate(seam, vlapic, p);
    EXPECT_TRUE(r.has_value());
    return r.has_value() ? r.value() : EventArbiter::PassResult{};
  }
  // A pass, an entry and the exit that follows it.
  void step(bool exit_from_host = false) {
    (void)pass(last_exit_from_host);
    seam.enter();
    ++exits;
    last_exit_from_host = exit_from_host;
  }
  bool last_exit_from_host = false;

  // A software-enabled vlapic with `vector` requested.
  void raise_vlapic(uint8_t vector) {
    ASSERT_TRUE(vlapic.write_mmio(VirtualLapic::kOffSvr, 0x1ff).has_value());
    ASSERT_TRUE(vlapic.accept_interrupt(vector, false));
  }
};

std::vector<uint8_t> vectors(const std::vector<PendingEvent>& events) {
  std::vector<uint8_t> v;
  for (const auto& e : events) v.push_back(e.vector);
  return v;
}

TEST(GuestEventArbiter, InjectsOneQueuedEventPerEntryInPriorityOrder) {
  Loop loop;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x31).has_value());
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kNmi, 2).has_value());
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kHardwareException, 13, 0).has_value());
  const auto first = loop.pass();
  EXPECT_TRUE(first.injected_queued);
  ASSERT_TRUE(loop.seam.slot.has_value());
  EXPECT_EQ(loop.seam.slot->vector, 13);  // the exception first
  EXPECT_EQ(loop.seam.slot_source, EventSource::kQueue);
  EXPECT_EQ(loop.seam.queue.size(), 3u);  // exactly one left the queue
  EXPECT_TRUE(loop.arbiter.queue_pending());
  loop.seam.enter();
  ++loop.exits;
  for (int i = 0; i < 3; ++i) loop.step();
  EXPECT_EQ(vectors(loop.seam.delivered), (std::vector<uint8_t>{13, 2, 0x30, 0x31}));
  EXPECT_TRUE(loop.seam.queue.empty());
  loop.step();
  EXPECT_FALSE(loop.arbiter.queue_pending());
  EXPECT_EQ(loop.seam.delivered.size(), 4u);
}

TEST(GuestEventArbiter, ReinjectionGoesBeforeTheQueue) {
  Loop loop;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kHardwareException, 6).has_value());
  PendingEvent interrupted{T::kExternalInterrupt, 0x40, false, 0};
  loop.seam.held_reinjection = interrupted;
  const auto r = loop.pass();
  EXPECT_TRUE(r.reinjected);
  EXPECT_FALSE(r.injected_queued);
  ASSERT_TRUE(loop.seam.slot.has_value());
  EXPECT_EQ(loop.seam.slot->vector, 0x40);
  EXPECT_EQ(loop.seam.queue.size(), 1u);  // the exception waits for the next entry
  // VMX: a queued exception behind a busy slot asks for no window (the next exit retries it).
  EXPECT_FALSE(loop.seam.interrupt_window);
  loop.seam.enter();
  ++loop.exits;
  loop.step();
  EXPECT_EQ(vectors(loop.seam.delivered), (std::vector<uint8_t>{0x40, 6}));
}

TEST(GuestEventArbiter, QueuedInterruptBehindABusySlotAsksForAnInterruptWindow) {
  Loop loop;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
  loop.seam.held_reinjection = PendingEvent{T::kExternalInterrupt, 0x40, false, 0};
  (void)loop.pass();
  EXPECT_TRUE(loop.seam.interrupt_window);
  EXPECT_EQ(loop.seam.slot->vector, 0x40);
}

TEST(GuestEventArbiterSvmPolicy, AnyQueuedEventBehindABusySlotAsksForAnInterruptWindow) {
  Loop loop(EventArbiter::Policy{true});
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kNmi, 2).has_value());
  loop.seam.held_reinjection = PendingEvent{T::kExternalInterrupt, 0x40, false, 0};
  (void)loop.pass();
  EXPECT_TRUE(loop.seam.interrupt_window);
  EXPECT_FALSE(loop.seam.nmi_window);
}

TEST(GuestEventArbiter, GateHoldsTheQueueUntilAnExitTheGuestCauses) {
  Loop loop;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kNmi, 2).has_value());
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
  loop.step(/*exit_from_host=*/true);  // the NMI goes in; a host interrupt exits right after
  EXPECT_TRUE(loop.arbiter.gate_held());
  loop.step(/*exit_from_host=*/true);  // nothing goes in at the host's exit
  loop.step(/*exit_from_host=*/true);
  EXPECT_EQ(vectors(loop.seam.delivered), (std::vector<uint8_t>{2}));
  EXPECT_EQ(loop.seam.queue.size(), 1u);
  loop.step(/*exit_from_host=*/false);  // still the host's exit before this pass
  EXPECT_EQ(loop.seam.delivered.size(), 1u);
  loop.step();  // the guest caused the newest exit: the gate opens
  EXPECT_EQ(vectors(loop.seam.delivered), (std::vector<uint8_t>{2, 0x30}));
  EXPECT_FALSE(loop.arbiter.gate_held());
}

TEST(GuestEventArbiter, GateNeedsANewExitNotTheOneBeforeTheInjection) {
  Loop loop;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x31).has_value());
  (void)loop.pass();  // 0x30 into the slot, gate held at this exit count
  loop.seam.enter();
  // A second pass before any exit (the entry failed to happen): the gate stays shut.
  (void)loop.pass();
  EXPECT_FALSE(loop.seam.slot.has_value());
  EXPECT_TRUE(loop.arbiter.gate_held());
}

TEST(GuestEventArbiter, HeldGateAsksForNoWindowUnderTheVmxPolicy) {
  Loop loop;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x31).has_value());
  loop.step(true);
  (void)loop.pass(true);
  EXPECT_FALSE(loop.seam.interrupt_window);
}

TEST(GuestEventArbiterSvmPolicy, HeldGateAsksForAnInterruptWindow) {
  Loop loop(EventArbiter::Policy{true});
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x31).has_value());
  loop.step(true);
  (void)loop.pass(true);
  EXPECT_TRUE(loop.seam.interrupt_window);  // its VINTR exit is the guest-caused one
  EXPECT_FALSE(loop.seam.slot.has_value());
}

TEST(GuestEventArbiter, InterruptWithIfClearAsksForAnInterruptWindow) {
  Loop loop;
  loop.seam.rflags = 0;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
  (void)loop.pass();
  EXPECT_FALSE(loop.seam.slot.has_value());
  EXPECT_TRUE(loop.seam.interrupt_window);
  EXPECT_FALSE(loop.seam.nmi_window);
  loop.seam.enter();
  loop.seam.rflags = kRflagsIf;  // the window exit: IF is set again
  ++loop.exits;
  (void)loop.pass();
  ASSERT_TRUE(loop.seam.slot.has_value());
  EXPECT_EQ(loop.seam.slot->vector, 0x30);
}

TEST(GuestEventArbiter, InterruptInAnStiOrMovSsShadowAsksForAnInterruptWindow) {
  for (uint32_t shadow : {kInterruptibilityStiBlocking, kInterruptibilityMovSsBlocking}) {
    Loop loop;
    loop.seam.interruptibility = shadow;
    ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
    (void)loop.pass();
    EXPECT_FALSE(loop.seam.slot.has_value()) << shadow;
    EXPECT_TRUE(loop.seam.interrupt_window) << shadow;
  }
}

TEST(GuestEventArbiter, NmiUnderNmiBlockingAsksForAnNmiWindow) {
  Loop loop;
  loop.seam.interruptibility = kInterruptibilityNmiBlocking;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kNmi, 2).has_value());
  (void)loop.pass();
  EXPECT_FALSE(loop.seam.slot.has_value());
  EXPECT_TRUE(loop.seam.nmi_window);
  EXPECT_FALSE(loop.seam.interrupt_window);
}

TEST(GuestEventArbiter, ExceptionIgnoresIfAndShadows) {
  Loop loop;
  loop.seam.rflags = 0;
  loop.seam.interruptibility = kInterruptibilityStiBlocking | kInterruptibilityNmiBlocking;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kHardwareException, 14, 2).has_value());
  (void)loop.pass();
  ASSERT_TRUE(loop.seam.slot.has_value());
  EXPECT_EQ(loop.seam.slot->vector, 14);
  EXPECT_FALSE(loop.seam.interrupt_window);
}

TEST(GuestEventArbiter, VlapicVectorIsInjectedAndAcknowledged) {
  Loop loop;
  loop.raise_vlapic(0x50);
  const auto r = loop.pass();
  EXPECT_TRUE(r.vlapic_vector);
  ASSERT_TRUE(loop.seam.slot.has_value());
  EXPECT_EQ(loop.seam.slot->vector, 0x50);
  EXPECT_EQ(loop.seam.slot_source, EventSource::kVlapic);
  EXPECT_FALSE(loop.vlapic.irr_bit(0x50));
  EXPECT_TRUE(loop.vlapic.isr_bit(0x50));
}

TEST(GuestEventArbiter, QueueGoesBeforeTheVlapicWhichAsksForAWindow) {
  Loop loop;
  loop.raise_vlapic(0x50);
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
  (void)loop.pass();
  ASSERT_TRUE(loop.seam.slot.has_value());
  EXPECT_EQ(loop.seam.slot->vector, 0x30);
  EXPECT_TRUE(loop.vlapic.irr_bit(0x50));  // still requested, not acknowledged
  EXPECT_TRUE(loop.seam.interrupt_window);
}

TEST(GuestEventArbiter, VlapicWaitsBehindAHeldGate) {
  Loop loop;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x31).has_value());
  loop.step(/*exit_from_host=*/true);
  loop.raise_vlapic(0x50);
  (void)loop.pass(/*newest_exit_from_host=*/true);
  EXPECT_FALSE(loop.seam.slot.has_value());  // neither the queue nor the vlapic
  EXPECT_TRUE(loop.vlapic.irr_bit(0x50));
  EXPECT_TRUE(loop.seam.interrupt_window);
}

TEST(GuestEventArbiter, BlockedNmiDoesNotHoldTheVlapicBack) {
  Loop loop;
  loop.seam.interruptibility = kInterruptibilityNmiBlocking;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kNmi, 2).has_value());
  loop.raise_vlapic(0x50);
  (void)loop.pass();
  ASSERT_TRUE(loop.seam.slot.has_value());
  EXPECT_EQ(loop.seam.slot->vector, 0x50);
  EXPECT_TRUE(loop.seam.nmi_window);
}

TEST(GuestEventArbiter, VlapicWithIfClearAsksForAnInterruptWindow) {
  Loop loop;
  loop.seam.rflags = 0;
  loop.raise_vlapic(0x50);
  (void)loop.pass();
  EXPECT_FALSE(loop.seam.slot.has_value());
  EXPECT_TRUE(loop.seam.interrupt_window);
  EXPECT_TRUE(loop.vlapic.irr_bit(0x50));
}

TEST(GuestEventArbiter, WaitForSipiBlocksEverything) {
  Loop loop;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kHardwareException, 6).has_value());
  loop.raise_vlapic(0x50);
  loop.seam.held_reinjection = PendingEvent{T::kExternalInterrupt, 0x40, false, 0};
  (void)loop.pass(false, /*waiting_for_sipi=*/true);
  EXPECT_FALSE(loop.seam.slot.has_value());
  EXPECT_FALSE(loop.seam.interrupt_window);
  EXPECT_EQ(loop.seam.wait_for_sipi_holds, 1);
  EXPECT_EQ(loop.seam.queue.size(), 1u);
  EXPECT_TRUE(loop.vlapic.irr_bit(0x50));
}

TEST(GuestEventArbiter, OwnerQueuedEventsAreSeenWithoutAnAttentionBit) {
  Loop loop;
  EventArbiter::Pass p;
  p.queue_may_have_events = false;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
  ASSERT_TRUE(loop.arbiter.arbitrate(loop.seam, loop.vlapic, p).has_value());
  EXPECT_FALSE(loop.seam.slot.has_value());  // nobody said the queue changed
  loop.arbiter.note_queue_changed();
  ASSERT_TRUE(loop.arbiter.arbitrate(loop.seam, loop.vlapic, p).has_value());
  ASSERT_TRUE(loop.seam.slot.has_value());
  EXPECT_EQ(loop.seam.slot->vector, 0x30);
}

TEST(GuestEventArbiterHlt, DeliverableEventEndsTheHltAtOnce) {
  EventArbiter arbiter;
  HltContext c;
  c.guest_rflags = kRflagsIf;
  c.vlapic_vector = 0x50;
  EXPECT_EQ(arbiter.on_guest_hlt(c), HltDecision::kResume);
  c.vlapic_vector.reset();
  c.queue_head = PendingEvent{T::kExternalInterrupt, 0x30, false, 0};
  EXPECT_EQ(arbiter.on_guest_hlt(c), HltDecision::kResume);
  // IF = 0: an NMI or an exception still ends it, an interrupt does not.
  c.guest_rflags = 0;
  EXPECT_EQ(arbiter.on_guest_hlt(c), HltDecision::kHaltOutside);
  c.queue_head = PendingEvent{T::kNmi, 2, false, 0};
  EXPECT_EQ(arbiter.on_guest_hlt(c), HltDecision::kResume);
  EXPECT_FALSE(arbiter.halted());
}

TEST(GuestEventArbiterHlt, ArmedTimerHaltsInTheGuestWhenTheBackendCan) {
  EventArbiter arbiter;
  HltContext c;
  c.guest_rflags = kRflagsIf;
  c.vlapic_deadline = 1000;
  c.can_halt_in_guest = true;
  EXPECT_EQ(arbiter.on_guest_hlt(c), HltDecision::kHaltInGuest);
  EXPECT_TRUE(arbiter.halted_in_guest());
  c.can_halt_in_guest = false;
  EXPECT_EQ(arbiter.on_guest_hlt(c), HltDecision::kHaltOutside);
  c.can_halt_in_guest = true;
  c.vlapic_deadline = VirtualLapic::kNoDeadline;
  EXPECT_EQ(arbiter.on_guest_hlt(c), HltDecision::kHaltOutside);
  c.vlapic_deadline = 1000;
  c.guest_rflags = 0;  // the timer's interrupt could not wake it
  EXPECT_EQ(arbiter.on_guest_hlt(c), HltDecision::kHaltOutside);
}

TEST(GuestEventArbiterHlt, SleepingVcpuStaysAsleepUntilAnInjection) {
  Loop loop;
  HltContext c;
  c.guest_rflags = kRflagsIf;
  c.vlapic_deadline = 1000;
  c.can_halt_in_guest = true;
  ASSERT_EQ(loop.arbiter.on_guest_hlt(c), HltDecision::kHaltInGuest);
  loop.step(/*exit_from_host=*/true);  // nothing to deliver: re-entered halted
  EXPECT_TRUE(loop.seam.activity_halted);
  EXPECT_TRUE(loop.arbiter.halted_in_guest());
  loop.step(true);
  EXPECT_TRUE(loop.seam.activity_halted);
  EXPECT_EQ(loop.seam.wakes, 0);
  // A posted IPI lands in the IRR: its injection ends the sleep.
  loop.raise_vlapic(0x50);
  (void)loop.pass(true);
  EXPECT_EQ(loop.seam.wakes, 1);
  EXPECT_FALSE(loop.seam.activity_halted);
  EXPECT_FALSE(loop.arbiter.halted());
  ASSERT_TRUE(loop.seam.slot.has_value());
  EXPECT_EQ(loop.seam.slot->vector, 0x50);
}

TEST(GuestEventArbiterHlt, QueuedEventEndsTheSleep) {
  Loop loop;
  loop.arbiter.halt_in_guest();
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kNmi, 2).has_value());
  (void)loop.pass();
  EXPECT_EQ(loop.seam.wakes, 1);
  EXPECT_FALSE(loop.arbiter.halted());
}

TEST(GuestEventArbiterHlt, TimerDeadlineWakesTheSleepingVcpu) {
  Loop loop;
  ASSERT_TRUE(loop.vlapic.write_mmio(VirtualLapic::kOffSvr, 0x1ff).has_value());
  // One-shot timer, vector 0x60, divide by 1 (SDM Vol. 3A 11.5.4): fires 100 ticks from now.
  ASSERT_TRUE(loop.vlapic.write_mmio(VirtualLapic::kOffTimerDivide, 0xb).has_value());
  ASSERT_TRUE(loop.vlapic.write_mmio(VirtualLapic::kOffLvtTimer, 0x60).has_value());
  loop.vlapic.set_time(0);
  ASSERT_TRUE(loop.vlapic.write_mmio(VirtualLapic::kOffTimerInitial, 100).has_value());
  HltContext c;
  c.guest_rflags = kRflagsIf;
  c.vlapic_deadline = loop.vlapic.next_deadline();
  c.can_halt_in_guest = true;
  ASSERT_EQ(loop.arbiter.on_guest_hlt(c), HltDecision::kHaltInGuest);
  (void)loop.vlapic.poll_timer(50);
  (void)loop.pass(true);
  EXPECT_TRUE(loop.arbiter.halted_in_guest());  // before the deadline: still asleep
  EXPECT_FALSE(loop.seam.slot.has_value());
  loop.seam.enter();
  EXPECT_EQ(loop.vlapic.poll_timer(100), 1u);  // the backend's wake-up timer brings this exit
  (void)loop.pass(false);
  EXPECT_FALSE(loop.arbiter.halted());
  ASSERT_TRUE(loop.seam.slot.has_value());
  EXPECT_EQ(loop.seam.slot->vector, 0x60);
  EXPECT_EQ(loop.seam.wakes, 1);
}

TEST(GuestEventArbiterHlt, HaltedOutsideEndsWhenAnEventCanBeDelivered) {
  EventArbiter arbiter;
  HltContext c;
  c.guest_rflags = kRflagsIf;
  ASSERT_EQ(arbiter.on_guest_hlt(c), HltDecision::kHaltOutside);
  EXPECT_TRUE(arbiter.halted());
  EXPECT_FALSE(arbiter.hlt_can_end(kRflagsIf, std::nullopt, std::nullopt));
  EXPECT_FALSE(arbiter.hlt_can_end(0, PendingEvent{T::kExternalInterrupt, 0x30, false, 0}, 0x50));
  EXPECT_TRUE(arbiter.halted());
  EXPECT_TRUE(arbiter.hlt_can_end(kRflagsIf, std::nullopt, 0x50));
  EXPECT_FALSE(arbiter.halted());
}

TEST(GuestEventArbiter, ResetOpensTheGateAndEndsTheHlt) {
  Loop loop;
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x30).has_value());
  ASSERT_TRUE(loop.seam.queue.queue_event(T::kExternalInterrupt, 0x31).has_value());
  loop.step(true);
  loop.arbiter.halt_in_guest();
  ASSERT_TRUE(loop.arbiter.gate_held());
  loop.arbiter.reset();
  EXPECT_FALSE(loop.arbiter.gate_held());
  EXPECT_FALSE(loop.arbiter.halted());
  EXPECT_FALSE(loop.arbiter.queue_pending());
}

}  // namespace
}  // namespace lantern::guest
