#include "guest/event_arbiter.h"

namespace lantern::guest {

bool event_ends_hlt(uint64_t guest_rflags, const std::optional<PendingEvent>& queue_head,
                    std::optional<uint8_t> vlapic_vector) {
  const bool interrupts_on = (guest_rflags & kRflagsIf) != 0;
  if (queue_head && (queue_head->type != PendingEventType::kExternalInterrupt || interrupts_on)) return true;
  return interrupts_on && vlapic_vector.has_value();
}

HltDecision EventArbiter::on_guest_hlt(const HltContext& context) {
  if (event_ends_hlt(context.guest_rflags, context.queue_head, context.vlapic_vector)) {
    hlt_ = HltState::kRunning;
    return HltDecision::kResume;  // injected at the next entry: HLT returns
  }
  // Only an interrupt can end this HLT: the vlapic timer's, if the guest accepts interrupts.
  const bool timer_can_wake = (context.guest_rflags & kRflagsIf) != 0 &&
                              context.vlapic_deadline != VirtualLapic::kNoDeadline;
  if (timer_can_wake && context.can_halt_in_guest) {
    hlt_ = HltState::kHaltedInGuest;
    return HltDecision::kHaltInGuest;
  }
  hlt_ = HltState::kHaltedOutside;
  return HltDecision::kHaltOutside;
}

bool EventArbiter::hlt_can_end(uint64_t guest_rflags, const std::optional<PendingEvent>& queue_head,
                               std::optional<uint8_t> vlapic_vector) {
  if (!event_ends_hlt(guest_rflags, queue_head, vlapic_vector)) return false;
  hlt_ = HltState::kRunning;
  return true;
}

}  // namespace lantern::guest
