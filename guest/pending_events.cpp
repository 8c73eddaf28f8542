#include "guest/pending_events.h"

namespace lantern::guest {
namespace {

// Delivery priority: lower is delivered first.
constexpr int priority_of(PendingEventType t) {
  switch (t) {
    case PendingEventType::kHardwareException: return 0;
    case PendingEventType::kNmi: return 1;
    case PendingEventType::kExternalInterrupt: return 2;
  }
  return 3;
}

}  // namespace

std::string_view pending_event_type_name(PendingEventType t) {
  switch (t) {
    case PendingEventType::kExternalInterrupt: return "interrupt";
    case PendingEventType::kNmi: return "nmi";
    case PendingEventType::kHardwareException: return "exception";
  }
  return "?";
}

Result<PendingEventType> parse_pending_event_type(std::string_view name) {
  if (name == "interrupt") return PendingEventType::kExternalInterrupt;
  if (name == "nmi") return PendingEventType::kNmi;
  if (name == "exception") return PendingEventType::kHardwareException;
  return make_error(ErrorCode::kInvalidArgument,
                    "event type must be \"interrupt\", \"nmi\" or \"exception\"");
}

Result<PendingEvent> make_pending_event(PendingEventType type, uint32_t vector,
                                        std::optional<uint32_t> error_code) {
  switch (type) {
    case PendingEventType::kNmi:
      // The NMI is vector 2 (SDM Vol. 3A 6.3.1, Table 6-1).
      if (vector != 2) {
        return make_error(ErrorCode::kInvalidArgument, "an NMI must use vector 2", vector);
      }
      if (error_code) {
        return make_error(ErrorCode::kInvalidArgument, "an NMI has no error code");
      }
      break;
    case PendingEventType::kHardwareException:
      // Vectors 0-31 are exceptions (SDM Vol. 3A 6.3.1); vector 2 is the NMI.
      if (vector > 31) {
        return make_error(ErrorCode::kInvalidArgument, "an exception vector must be 0-31", vector);
      }
      if (vector == 2) {
        return make_error(ErrorCode::kInvalidArgument, "vector 2 is the NMI: queue it with type \"nmi\"",
                          vector);
      }
      if (exception_has_error_code(vector) && !error_code) {
        return make_error(ErrorCode::kInvalidArgument,
                          "this exception pushes an error code (vectors 8, 10-14, 17, 21): "
                          "error_code is required",
                          vector);
      }
      if (!exception_has_error_code(vector) && error_code) {
        return make_error(ErrorCode::kInvalidArgument,
                          "this exception has no error code (only vectors 8, 10-14, 17, 21 "
                          "do): remove error_code",
                          vector);
      }
      break;
    case PendingEventType::kExternalInterrupt:
      // Vectors 0-15 are illegal for interrupts delivered by the local APIC (SDM Vol. 3A
      // 10.5.2 "Valid Interrupt Vectors").
      if (vector < 16 || vector > 255) {
        return make_error(ErrorCode::kInvalidArgument, "an external interrupt vector must be 16-255", vector);
      }
      if (error_code) {
        return make_error(ErrorCode::kInvalidArgument, "an external interrupt has no error code");
      }
      break;
    default: return make_error(ErrorCode::kInvalidArgument, "unknown event type", static_cast<uint8_t>(type));
  }
  PendingEvent event;
  event.type = type;
  event.vector = static_cast<uint8_t>(vector);
  event.has_error_code = error_code.has_value();
  event.error_code = error_code.value_or(0);
  return event;
}

Result<size_t> PendingEventQueue::queue_event(PendingEventType type, uint32_t vector,
                                              std::optional<uint32_t> error_code) {
  return insert(TRY(make_pending_event(type, vector, error_code)));
}

Result<size_t> PendingEventQueue::queue_event(const PendingEvent& event) {
  // Re-validate: the event may have been built by hand.
  return insert(TRY(
      make_pending_event(event.type, event.vector,
                         event.has_error_code ? std::optional<uint32_t>(event.error_code) : std::nullopt)));
}

Result<size_t> PendingEventQueue::insert(const PendingEvent& checked) {
  if (full()) {
    return make_error(ErrorCode::kFull, "pending-event queue is full (capacity 8)", kCapacity);
  }
  // Insert after every event of the same or higher priority: FIFO within a class.
  size_t position = 0;
  while (position < count_ && priority_of(events_[position].type) <= priority_of(checked.type)) {
    ++position;
  }
  for (size_t i = count_; i > position; --i) events_[i] = events_[i - 1];
  events_[position] = checked;
  ++count_;
  return position;
}

std::optional<PendingEvent> PendingEventQueue::peek() const {
  if (count_ == 0) return std::nullopt;
  return events_[0];
}

std::optional<PendingEvent> PendingEventQueue::pop() {
  if (count_ == 0) return std::nullopt;
  const PendingEvent head = events_[0];
  for (size_t i = 1; i < count_; ++i) events_[i - 1] = events_[i];
  --count_;
  return head;
}

PendingEventSnapshot PendingEventQueue::snapshot() const {
  PendingEventSnapshot s;
  for (size_t i = 0; i < count_; ++i) s.events[i] = events_[i];
  s.count = count_;
  return s;
}

std::string_view injection_action_name(InjectionAction a) {
  switch (a) {
    case InjectionAction::kNone: return "none";
    case InjectionAction::kInjectNow: return "inject_now";
    case InjectionAction::kRequestInterruptWindow: return "request_interrupt_window";
    case InjectionAction::kRequestNmiWindow: return "request_nmi_window";
    case InjectionAction::kEntrySlotBusy: return "entry_slot_busy";
  }
  return "?";
}

InjectionDecision decide_injection(const std::optional<PendingEvent>& head, const InjectionContext& context) {
  if (!head) return InjectionDecision{InjectionAction::kNone, {}};
  if (context.event_slot_busy) {
    // Only one event can be injected per VM entry (SDM Vol. 3C 26.5).
    return InjectionDecision{InjectionAction::kEntrySlotBusy, *head};
  }
  const uint32_t intr = context.interruptibility;
  switch (head->type) {
    case PendingEventType::kHardwareException: return InjectionDecision{InjectionAction::kInjectNow, *head};
    case PendingEventType::kNmi: {
      const uint32_t blockers =
          kInterruptibilityNmiBlocking | kInterruptibilityMovSsBlocking | kInterruptibilityStiBlocking;
      if ((intr & blockers) != 0) {
        return InjectionDecision{InjectionAction::kRequestNmiWindow, *head};
      }
      return InjectionDecision{InjectionAction::kInjectNow, *head};
    }
    case PendingEventType::kExternalInterrupt: {
      const bool blocked = (context.guest_rflags & kRflagsIf) == 0 ||
                           (intr & (kInterruptibilityStiBlocking | kInterruptibilityMovSsBlocking)) != 0;
      if (blocked) return InjectionDecision{InjectionAction::kRequestInterruptWindow, *head};
      return InjectionDecision{InjectionAction::kInjectNow, *head};
    }
  }
  return InjectionDecision{InjectionAction::kNone, {}};
}

}  // namespace lantern::guest
