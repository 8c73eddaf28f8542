// The SVM encoding of the event arbiter's work (guest/event_arbiter.h), as pure functions over
// the vendor-neutral pending events (guest/pending_events.h) and the VMCB's event fields
// (host-tested):
//
//   eventinj_for()                  a queued event as an EVENTINJ value (APM Vol. 2 15.20);
//                                   eventinj_for_accepted() without checking it again
//   injection_context_for()         the guest's RFLAGS.IF, INTERRUPT_SHADOW (APM Table B-1,
//                                   offset 068h), whether an injected NMI's handler is still
//                                   running and EVENTINJ.V, as the arbiter's InjectionContext
//   decide_svm_injection()          decide_injection() over that context
//   reinjection_from_exitintinfo()  what EXITINTINFO (APM 15.7.2) asks to inject again
//   with_interrupt_window()/without_interrupt_window()
//                                   V_INTR_CONTROL with/without a virtual interrupt pending
//                                   (V_IRQ, V_IGN_TPR, V_INTR_PRIO 0Fh; APM 15.21.4): with the
//                                   VINTR intercept set, the guest exits as soon as it could
//                                   take an interrupt (the interrupt window)
//
// The NMI window has no control of its own on SVM: the backend intercepts IRET while an
// injected NMI's handler runs (APM 15.21.6 and Table B-1 INTERCEPT_VECTOR_3 bit 20). That exit
// comes before the IRET executes; to see the IRET complete whatever RFLAGS.IF it restores, the
// backend then single-steps it (rflags_for_iret_single_step(), the #DB intercept): the #DB exit
// right after it is the NMI window.
#pragma once

#include <cstdint>
#include <optional>

#include "kernel/lib/result.h"
#include "guest/pending_events.h"

namespace lantern::svm {

// Exception vectors the SVM vCPUs raise for instructions they emulate (APM Vol. 2 8.2).
inline constexpr uint8_t kVectorUndefinedOpcode = 6;     // #UD
inline constexpr uint8_t kVectorGeneralProtection = 13;  // #GP

// kInvalidArgument for an event the queue would not hold (make_pending_event()'s rules).
Result<uint64_t> eventinj_for(const guest::PendingEvent& event);
// The same for an event make_pending_event() already accepted (the arbiter's: from the queue, which
// checks at insertion, or the vlapic, whose vectors are 16-255): encode_eventinj()'s checks only.
Result<uint64_t> eventinj_for_accepted(const guest::PendingEvent& event);

struct SvmInjectionContext {
  uint64_t guest_rflags = 0;      // save area RFLAGS
  bool interrupt_shadow = false;  // INTERRUPT_SHADOW bit 0: after STI or MOV SS
  bool nmi_blocked = false;       // an injected NMI's handler has not executed IRET yet
  bool eventinj_busy = false;     // EVENTINJ.V is already set (a re-injection goes first)
};

// The VMX layout the arbiter reads (SDM Vol. 3C Table 24-3): the interrupt shadow blocks like STI
// blocking, an NMI handler in progress like NMI blocking, a set EVENTINJ.V like a valid VM-entry
// interruption-information field.
inline guest::InjectionContext injection_context_for(const SvmInjectionContext& context) {
  guest::InjectionContext c;
  c.guest_rflags = context.guest_rflags;
  c.interruptibility = (context.interrupt_shadow ? guest::kInterruptibilityStiBlocking : 0u) |
                       (context.nmi_blocked ? guest::kInterruptibilityNmiBlocking : 0u);
  c.event_slot_busy = context.eventinj_busy;
  return c;
}

// Pure. Exceptions are never blocked; an NMI waits for the NMI window (nmi_blocked) and the
// interrupt shadow; an external interrupt needs RFLAGS.IF = 1 and no interrupt shadow.
guest::InjectionDecision decide_svm_injection(const std::optional<guest::PendingEvent>& head,
                                            const SvmInjectionContext& context);

// The EVENTINJ value that re-delivers what EXITINTINFO holds, or nullopt when nothing was being
// delivered (V clear) or when it was a software interrupt (INTn, type 4) or a software
// exception (INT3/INTO: #BP, #OF): the saved RIP still points at that instruction, so the guest
// executes it again (re-injecting it would need NRIP for the return address, APM 15.20).
std::optional<uint64_t> reinjection_from_exitintinfo(uint64_t exitintinfo);

uint64_t with_interrupt_window(uint64_t v_intr_control);
uint64_t without_interrupt_window(uint64_t v_intr_control);
bool interrupt_window_open_requested(uint64_t v_intr_control);

// Single-stepping over an NMI handler's IRET. TF set at the start of an instruction brings a #DB
// trap after it, even when the instruction (IRET, POPF) loads a new TF (SDM Vol. 3A 18.3.1.4; APM
// Vol. 2 13.1.4); RF keeps an instruction breakpoint on the IRET itself from firing (SDM Vol. 1
// 3.4.3). The #DB is intercepted (INTERCEPT_EXCEPTIONS bit 1, APM 15.12).
inline constexpr uint8_t kVectorDebug = 1;              // #DB
inline constexpr uint64_t kRflagsTf = 1u << 8;          // SDM Vol. 1 3.4.3.3, RFLAGS.TF
inline constexpr uint32_t kInterceptDebug = 1u << kVectorDebug;
inline constexpr uint64_t kDr6SingleStep = 1u << 14;  // DR6.BS (SDM Vol. 3A 18.2.3)
constexpr uint64_t rflags_for_iret_single_step(uint64_t rflags) { return rflags | kRflagsTf | guest::kRflagsRf; }
// Whether the #DB that ended the single step is also the guest's own: it had TF set itself
// before the IRET (its single step of the NMI handler), so it expects that #DB too.
constexpr bool iret_single_step_debug_is_guests(uint64_t rflags_before_step) {
  return (rflags_before_step & kRflagsTf) != 0;
}

}  // namespace lantern::svm
