// The per-vCPU queue of events waiting to be injected into the guest, and the pure decision
// "inject now, or ask for a window exit first".
//
// Vendor-neutral: both backends use it. The console's POST .../events lands here (through the
// owning core's mailbox); a backend's vCPU calls decide_injection() before every guest entry and
// encodes the result itself (VMX: VM_ENTRY_INTR_INFO_FIELD, vmx/exit_qualification.h
// entry_interruption_info(); SVM: EVENTINJ, svm/event_injection.h). The queue holds at most 8
// events and keeps them in delivery order: hardware exceptions before NMIs before external
// interrupts, FIFO within a class.
//
// Software interrupts (INT n) are not queued: injecting one needs the instruction length and only
// makes sense when emulating an INT instruction (SDM Vol. 3C 24.8.3), so the backends re-inject
// them only from what an exit reports as interrupted (VMX: IDT-vectoring information, SVM:
// EXITINTINFO).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "guest/loader/entry_state.h"  // kRflagsIf
#include "kernel/lib/result.h"

namespace lantern::guest {

enum class PendingEventType : uint8_t {
  kExternalInterrupt,  // vectors 16-255, no error code
  kNmi,                // vector 2, no error code
  kHardwareException,  // vectors 0-31 except 2; error code exactly for 8, 10-14, 17, 21
};
// "interrupt", "nmi", "exception": the console API's names.
std::string_view pending_event_type_name(PendingEventType t);
Result<PendingEventType> parse_pending_event_type(std::string_view name);

// SDM Vol. 3A 6.3.1 / Table 6-1: exceptions that push an error code:
// #DF(8), #TS(10), #NP(11), #SS(12), #GP(13), #PF(14), #AC(17), #CP(21).
constexpr bool exception_has_error_code(uint32_t vector) {
  return vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21;
}

// SDM Vol. 3A 6.3.1 / Table 6-1, class "Fault": #DE(0), #BR(5), #UD(6), #NM(7), #TS(10), #NP(11),
// #SS(12), #GP(13), #PF(14), #MF(16), #AC(17), #XM(19), #VE(20), #CP(21). #DB(1) is a fault or a
// trap depending on its cause and is left out, as are the traps #BP(3)/#OF(4) and the aborts.
constexpr bool exception_is_fault_class(uint32_t vector) {
  return vector == 0 || (vector >= 5 && vector <= 7) || (vector >= 10 && vector <= 14) || vector == 16 ||
         vector == 17 || (vector >= 19 && vector <= 21);
}

// The RFLAGS image that delivering a fault-class exception pushes. The processor sets RF in the
// RFLAGS image it pushes for every fault except an instruction breakpoint #DB (SDM Vol. 3A 18.3.1.1,
// 2.3 "RF"), so returning with IRET does not re-trigger a breakpoint on the faulting instruction.
// VM entry delivers an injected event with the guest-state RFLAGS (SDM Vol. 3C 26.6.1), so a
// hypervisor that injects a fault it found while emulating an instruction sets RF itself.
inline constexpr uint64_t kRflagsRf = 1u << 16;  // SDM Vol. 1 3.4.3, RFLAGS.RF
constexpr uint64_t rflags_for_injected_exception(uint64_t guest_rflags, uint32_t vector) {
  return exception_is_fault_class(vector) ? (guest_rflags | kRflagsRf) : guest_rflags;
}

struct PendingEvent {
  PendingEventType type = PendingEventType::kExternalInterrupt;
  uint8_t vector = 0;
  bool has_error_code = false;
  uint32_t error_code = 0;
};

// Checks an event against the rules above; kInvalidArgument with a message naming the rule.
Result<PendingEvent> make_pending_event(PendingEventType type, uint32_t vector,
                                        std::optional<uint32_t> error_code);

// What the console shows (GET .../events).
struct PendingEventSnapshot {
  std::array<PendingEvent, 8> events{};
  size_t count = 0;
};

class PendingEventQueue {
 public:
  static constexpr size_t kCapacity = 8;

  // Validates and queues an event. Returns its position in delivery order (0 = injected next).
  // kFull when 8 events are waiting; kInvalidArgument for an invalid event.
  Result<size_t> queue_event(PendingEventType type, uint32_t vector,
                             std::optional<uint32_t> error_code = std::nullopt);
  Result<size_t> queue_event(const PendingEvent& event);

  // The event that will be injected next, if any.
  std::optional<PendingEvent> peek() const;
  std::optional<PendingEvent> pop();
  void clear() { count_ = 0; }

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  bool full() const { return count_ == kCapacity; }
  PendingEventSnapshot snapshot() const;

 private:
  // Queues an event make_pending_event() accepted (kFull when full).
  Result<size_t> insert(const PendingEvent& checked);

  std::array<PendingEvent, kCapacity> events_{};  // sorted by delivery order
  size_t count_ = 0;
};

// ---- The injection decision ------------------------------------------------------------------

// Guest interruptibility state, in the layout of VMX's GUEST_INTERRUPTIBILITY_INFO (SDM Vol. 3C
// 24.4.2, Table 24-3); SVM fills STI blocking from the VMCB's interrupt shadow and NMI blocking
// from its own record of an NMI in progress (svm/event_injection.h).
inline constexpr uint32_t kInterruptibilityStiBlocking = 1u << 0;    // blocking by STI
inline constexpr uint32_t kInterruptibilityMovSsBlocking = 1u << 1;  // blocking by MOV SS
inline constexpr uint32_t kInterruptibilitySmiBlocking = 1u << 2;    // blocking by SMI
inline constexpr uint32_t kInterruptibilityNmiBlocking = 1u << 3;    // blocking by NMI
inline constexpr uint32_t kInterruptibilityEnclave = 1u << 4;        // enclave interruption

struct InjectionContext {
  uint64_t guest_rflags = 0;      // the guest's RFLAGS
  uint32_t interruptibility = 0;  // kInterruptibility* bits
  // The entry's one event slot already holds an event (VMX: VM_ENTRY_INTR_INFO_FIELD valid,
  // SVM: EVENTINJ.V), e.g. a re-injection.
  bool event_slot_busy = false;
};

enum class InjectionAction : uint8_t {
  kNone,                    // nothing is pending
  kInjectNow,               // inject the head event and pop the queue
  kRequestInterruptWindow,  // VMX "interrupt-window exiting" (SDM Vol. 3C 24.6.2 bit 2), SVM V_IRQ + VINTR
  kRequestNmiWindow,        // VMX "NMI-window exiting" (SDM Vol. 3C 24.6.2 bit 22); SVM: IRET intercept
  kEntrySlotBusy,           // an event (e.g. a re-injection) already occupies the entry slot
};
std::string_view injection_action_name(InjectionAction a);

struct InjectionDecision {
  InjectionAction action = InjectionAction::kNone;
  PendingEvent event{};  // the head event when action is kInjectNow / a window request
};

// Pure: decides for the head of the queue (highest priority).
//   - A hardware exception is never blocked by RFLAGS.IF or the interruptibility state.
//   - An NMI is blocked by NMI blocking, MOV-SS blocking (SDM Vol. 3C 26.3.1.5: VM entry
//     fails when injecting an NMI with MOV-SS blocking) and STI blocking (some processors
//     also fail that entry, ibid.): request an NMI window.
//   - An external interrupt needs RFLAGS.IF = 1 and neither STI nor MOV-SS blocking
//     (26.3.1.5): otherwise request an interrupt window.
// Lower-priority events wait behind a blocked head.
InjectionDecision decide_injection(const std::optional<PendingEvent>& head, const InjectionContext& context);
inline InjectionDecision decide_injection(const PendingEventQueue& queue, const InjectionContext& context) {
  return decide_injection(queue.peek(), context);
}

// ---- When the queue may inject again ----------------------------------------------------------
// One event goes in per VM entry (SDM Vol. 3C 26.5). After an entry that delivered a queued event
// while others still wait, the next one waits for an exit the guest causes. An exit the host
// causes (an external interrupt, a host NMI) can come right after the delivery, before the
// handler's first instruction (VM exits after VM entry are evaluated once the injected event is
// delivered, SDM Vol. 3C 26.7); injecting the next event there would let the host's interrupts
// decide where the guest takes it. The arbiter asks open() before every entry while the gate is
// held (it runs before each entry while events wait), so the newest exit is all it needs.
class QueuedEventGate {
 public:
  // A queued event went in and more wait; `exits` counts the exits so far.
  void hold(uint64_t exits) {
    held_ = true;
    held_at_exits_ = exits;
  }
  // Before an entry: may the queue inject? `exits` counts the exits so far and
  // `newest_exit_from_host` says whether the newest was caused by the host.
  bool open(uint64_t exits, bool newest_exit_from_host) {
    if (held_ && exits != held_at_exits_ && !newest_exit_from_host) held_ = false;
    return !held_;
  }
  bool held() const { return held_; }
  void reset() { held_ = false; }

 private:
  bool held_ = false;
  uint64_t held_at_exits_ = 0;
};

}  // namespace lantern::guest
