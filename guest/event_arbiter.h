// The event arbiter of one vCPU: before each guest entry, which event goes into the entry's one
// event slot (SDM Vol. 3C 26.5; APM Vol. 2 15.20), which windows bring the guest back out when
// it can take what still waits, and when a HLT ends. Vendor-neutral and host-tested
// (tests/host/guest_event_arbiter_test.cpp): it reaches the hardware only through a seam the
// backend implements, which keeps its own encoding (VMX: VM_ENTRY_INTR_INFO_FIELD and the
// interrupt-window / NMI-window controls; SVM: EVENTINJ, V_IRQ + VINTR and the IRET intercept).
//
// One pass (arbitrate()), in priority order:
//   0. While the vCPU waits for a SIPI nothing is delivered (SDM Vol. 3A 9.4, 11.4.7.3).
//   1. The event the newest exit interrupted goes in again (SDM Vol. 3C 27.2.4; APM 15.7.2); the
//      backend holds it and reports whether it placed it.
//   2. The pending-event queue: its head per decide_injection(), one event per entry. After a
//      queued event went in while others wait, the rest wait for an exit the guest causes
//      (QueuedEventGate, pending_events.h).
//   3. The vlapic's highest deliverable vector, as an external interrupt (IRR -> ISR, SDM Vol. 3A
//      11.8.4), when the slot is free and the gate open; otherwise an interrupt window, so the
//      queue stays first.
//   4. Windows: what is blocked asks for the window that ends the blocking.
// An injection ends a HLT sleep in the guest; a vCPU asleep with nothing injected stays asleep.
//
// HLT (on_guest_hlt()): an event that can be delivered now ends the HLT at once (SDM Vol. 2A HLT:
// an NMI, an exception or an interrupt the guest accepts, RFLAGS.IF = 1); otherwise, with
// IF = 1 and a vlapic timer armed, a backend that can keep the guest halted in the guest (VMX:
// the HLT activity state with the preemption timer at the deadline) does so; anything else
// halts outside the guest, where the backend waits for host interrupts (a posted event, the
// host's tick) and asks hlt_can_end() again.
//
// The seam (a template parameter, so the entry path has no virtual calls):
//   Result<InjectionContext> injection_context();   RFLAGS, interruptibility, event slot busy, now
//   Result<bool> reinject_interrupted_event();       places the re-injection it holds; true if it did
//   lock_queue()                                     an object holding the queue's lock while it
//                                                    lives, its member `queue` the PendingEventQueue&
//                                                    (other cores insert at the head: the lock is
//                                                    held from the look to the pop)
//   Result<void> inject(const PendingEvent&, EventSource);   into the event slot
//   void request_interrupt_window();  void request_nmi_window();
//   Result<void> wake_from_hlt();                    the guest leaves its HLT for the injected event
//   Result<void> stay_in_hlt();                      the guest enters still halted
//   Result<void> hold_in_wait_for_sipi();            the guest enters still waiting for a SIPI
#pragma once

#include <cstdint>
#include <optional>

#include "guest/pending_events.h"
#include "guest/vlapic.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

enum class EventSource : uint8_t {
  kQueue,   // the pending-event queue (console, hypercalls)
  kVlapic,  // the vlapic's deliverable vector
};

// Where a HLT leaves the vCPU.
enum class HltState : uint8_t {
  kRunning,
  kHaltedInGuest,  // entered halted (VMX activity state HLT); an injection or the wake-up timer ends it
  kHaltedOutside,  // kept out of the guest; ends when hlt_can_end() says so
};

enum class HltDecision : uint8_t {
  kResume,         // an event can be delivered now: the HLT completes at once
  kHaltInGuest,    // stay halted in the guest until the vlapic timer's deadline or an event
  kHaltOutside,    // the backend waits outside the guest
};

struct HltContext {
  uint64_t guest_rflags = 0;
  std::optional<PendingEvent> queue_head;
  std::optional<uint8_t> vlapic_vector;  // VirtualLapic::highest_deliverable()
  uint64_t vlapic_deadline = VirtualLapic::kNoDeadline;
  bool can_halt_in_guest = false;  // the backend has a HLT activity state and a wake-up timer
};

// Whether an event ends a HLT now: an exception or an NMI always; an interrupt (queued or the
// vlapic's) only with RFLAGS.IF = 1 (SDM Vol. 2A HLT).
bool event_ends_hlt(uint64_t guest_rflags, const std::optional<PendingEvent>& queue_head,
                    std::optional<uint8_t> vlapic_vector);

// How a backend's arbiter differs.
struct ArbiterPolicy {
  // Whenever the queue waits for the slot or the gate, ask for an interrupt window: its exit is
  // one the guest causes, for a backend with no timer of its own to bring one (SVM has no
  // preemption timer). Without it (VMX) only a blocked interrupt asks for the window.
  bool interrupt_window_while_queue_waits = false;
};

class EventArbiter {
 public:
  using Policy = ArbiterPolicy;

  // What the backend knows about this entry.
  struct Pass {
    uint64_t exits = 0;                  // the vCPU's exits so far (QueuedEventGate)
    bool newest_exit_from_host = false;  // the newest exit was a host interrupt or NMI
    // The queue may hold events the arbiter has not seen (another core queued one). The arbiter
    // also looks while it knows of events left from an earlier pass.
    bool queue_may_have_events = true;
    bool waiting_for_sipi = false;
  };

  struct PassResult {
    bool reinjected = false;       // step 1 placed an event
    bool injected_queued = false;  // step 2 injected the queue's head
    bool vlapic_vector = false;    // the vlapic had a deliverable vector (injected or waiting)
  };

  constexpr explicit EventArbiter(Policy policy = {}) : policy_(policy) {}

  template <typename Seam>
  [[gnu::always_inline]] inline Result<PassResult> arbitrate(Seam& seam, VirtualLapic& vlapic, const Pass& pass);

  // The guest executed HLT (the backend has advanced RIP past it and refreshed the vlapic).
  HltDecision on_guest_hlt(const HltContext& context);
  // Outside the guest: whether the HLT is over (event_ends_hlt()); if so the vCPU runs again.
  bool hlt_can_end(uint64_t guest_rflags, const std::optional<PendingEvent>& queue_head,
                   std::optional<uint8_t> vlapic_vector);
  // The backend put the guest in its HLT sleep itself (a caller's own sleep request).
  void halt_in_guest() { hlt_ = HltState::kHaltedInGuest; }
  // The backend ends the HLT itself: its wake-up timer expired while halted in the guest, or its
  // caller waits outside the guest and runs the vCPU again when it wants.
  void resume_from_hlt() { hlt_ = HltState::kRunning; }
  HltState hlt_state() const { return hlt_; }
  bool halted() const { return hlt_ != HltState::kRunning; }
  bool halted_in_guest() const { return hlt_ == HltState::kHaltedInGuest; }

  // Events known to wait in the queue after the last look (the owner's own view, no lock).
  bool queue_pending() const { return queue_pending_; }
  // An event was queued (by the owner itself, or another core's attention bit was taken outside
  // a pass): the next pass looks at the queue.
  void note_queue_changed() { queue_pending_ = true; }
  bool gate_held() const { return gate_.held(); }

  // INIT, a reset or a restart: nothing pending, gate open, running.
  void reset() {
    gate_.reset();
    queue_pending_ = false;
    hlt_ = HltState::kRunning;
  }

 private:
  template <typename Seam>
  [[gnu::always_inline]] inline Result<void> arbitrate_queue(Seam& seam, const Pass& pass, PassResult& result);
  template <typename Seam>
  [[gnu::always_inline]] inline Result<void> arbitrate_vlapic(Seam& seam, VirtualLapic& vlapic, PassResult& result);
  template <typename Seam>
  Result<void> end_hlt_for_injection(Seam& seam) {
    if (hlt_ == HltState::kRunning) return ok();
    const bool in_guest = hlt_ == HltState::kHaltedInGuest;
    hlt_ = HltState::kRunning;
    return in_guest ? seam.wake_from_hlt() : ok();
  }

  Policy policy_;
  QueuedEventGate gate_;
  bool queue_pending_ = false;
  HltState hlt_ = HltState::kRunning;
};

template <typename Seam>
inline Result<EventArbiter::PassResult> EventArbiter::arbitrate(Seam& seam, VirtualLapic& vlapic, const Pass& pass) {
  PassResult result;
  if (pass.waiting_for_sipi) {
    TRY(seam.hold_in_wait_for_sipi());
    return result;
  }
  result.reinjected = TRY(seam.reinject_interrupted_event());
  TRY(arbitrate_queue(seam, pass, result));
  TRY(arbitrate_vlapic(seam, vlapic, result));
  if (hlt_ == HltState::kHaltedInGuest) TRY(seam.stay_in_hlt());
  return result;
}

template <typename Seam>
inline Result<void> EventArbiter::arbitrate_queue(Seam& seam, const Pass& pass, PassResult& result) {
  if (gate_.held() && !gate_.open(pass.exits, pass.newest_exit_from_host)) {
    if (policy_.interrupt_window_while_queue_waits) seam.request_interrupt_window();
    return ok();
  }
  if (!pass.queue_may_have_events && !queue_pending_) return ok();
  auto locked = seam.lock_queue();
  PendingEventQueue& queue = locked.queue;
  queue_pending_ = !queue.empty();
  if (queue.empty()) return ok();
  const InjectionContext context = TRY(seam.injection_context());
  const InjectionDecision decision = decide_injection(queue, context);
  switch (decision.action) {
    case InjectionAction::kNone: break;
    case InjectionAction::kEntrySlotBusy:
      // A re-injection owns the slot: come back when the guest can take an interrupt again.
      if (policy_.interrupt_window_while_queue_waits || decision.event.type == PendingEventType::kExternalInterrupt) {
        seam.request_interrupt_window();
      }
      break;
    case InjectionAction::kInjectNow:
      TRY(seam.inject(decision.event, EventSource::kQueue));
      TRY(end_hlt_for_injection(seam));
      (void)queue.pop();
      queue_pending_ = !queue.empty();
      if (queue_pending_) gate_.hold(pass.exits);  // the rest wait for an exit the guest causes
      result.injected_queued = true;
      break;
    case InjectionAction::kRequestInterruptWindow: seam.request_interrupt_window(); break;
    case InjectionAction::kRequestNmiWindow: seam.request_nmi_window(); break;
  }
  return ok();
}

template <typename Seam>
inline Result<void> EventArbiter::arbitrate_vlapic(Seam& seam, VirtualLapic& vlapic, PassResult& result) {
  const std::optional<uint8_t> vector = vlapic.highest_deliverable();
  if (!vector) return ok();
  result.vlapic_vector = true;
  const InjectionContext context = TRY(seam.injection_context());
  if (context.event_slot_busy || gate_.held()) {
    // The slot is taken (a re-injection or a queued event goes first), or queued events wait
    // for the guest's next exit, which the vlapic must not overtake. A queued event that is
    // still blocked with the slot free (an NMI under NMI blocking) does not hold it back.
    seam.request_interrupt_window();
    return ok();
  }
  PendingEvent interrupt;
  interrupt.type = PendingEventType::kExternalInterrupt;
  interrupt.vector = *vector;
  const InjectionDecision decision = decide_injection(interrupt, context);
  if (decision.action == InjectionAction::kInjectNow) {
    // The APIC hands the vector to the core, moving it from IRR to ISR (SDM Vol. 3A 11.8.4).
    TRY(vlapic.acknowledge(*vector));
    TRY(seam.inject(interrupt, EventSource::kVlapic));
    TRY(end_hlt_for_injection(seam));
  } else if (decision.action == InjectionAction::kRequestInterruptWindow) {
    seam.request_interrupt_window();
  }
  return ok();
}

}  // namespace lantern::guest
