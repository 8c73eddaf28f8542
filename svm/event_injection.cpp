#include "svm/event_injection.h"

#include "svm/exit_info.h"
#include "svm/vmcb_controls.h"

namespace lantern::svm {
namespace {

constexpr uint8_t kVectorBreakpoint = 3;  // #BP (INT3), APM Vol. 2 8.2
constexpr uint8_t kVectorOverflow = 4;    // #OF (INTO)
constexpr uint64_t kVirqPriorityHighest = 0xf;  // V_INTR_PRIO, APM 15.21.4

}  // namespace

Result<uint64_t> eventinj_for(const guest::PendingEvent& event) {
  return eventinj_for_accepted(TRY(guest::make_pending_event(
      event.type, event.vector, event.has_error_code ? std::optional<uint32_t>(event.error_code) : std::nullopt)));
}

Result<uint64_t> eventinj_for_accepted(const guest::PendingEvent& event) {
  EventInjection e;
  e.vector = event.vector;
  switch (event.type) {
    case guest::PendingEventType::kExternalInterrupt: e.type = EventType::kExternalInterrupt; break;
    case guest::PendingEventType::kNmi: e.type = EventType::kNmi; break;
    case guest::PendingEventType::kHardwareException: e.type = EventType::kException; break;
  }
  e.error_code_valid = event.has_error_code;
  e.error_code = event.error_code;
  return encode_eventinj(e);
}

guest::InjectionDecision decide_svm_injection(const std::optional<guest::PendingEvent>& head,
                                            const SvmInjectionContext& context) {
  return guest::decide_injection(head, injection_context_for(context));
}

std::optional<uint64_t> reinjection_from_exitintinfo(uint64_t exitintinfo) {
  EventInjection e;
  if (!decode_exitintinfo(exitintinfo, &e)) return std::nullopt;
  if (e.type == EventType::kSoftwareInterrupt) return std::nullopt;
  if (e.type == EventType::kException && (e.vector == kVectorBreakpoint || e.vector == kVectorOverflow)) {
    return std::nullopt;
  }
  // Same vector, type and error code (APM 15.7.2: EXITINTINFO has EVENTINJ's layout).
  return exitintinfo & (event_bits::kVectorMask | event_bits::kTypeMask | event_bits::kErrorCodeValid |
                        event_bits::kValid | (uint64_t{0xffffffff} << event_bits::kErrorCodeShift));
}

uint64_t with_interrupt_window(uint64_t v_intr_control) {
  constexpr uint64_t kPriorityMask = uint64_t{0xf} << vintr::kPriorityShift;
  return (v_intr_control & ~kPriorityMask) | vintr::kVirq | vintr::kIgnoreTpr |
         (kVirqPriorityHighest << vintr::kPriorityShift);
}

uint64_t without_interrupt_window(uint64_t v_intr_control) {
  return v_intr_control & ~vintr::kVirq;
}

bool interrupt_window_open_requested(uint64_t v_intr_control) {
  return (v_intr_control & vintr::kVirq) != 0;
}

}  // namespace lantern::svm
