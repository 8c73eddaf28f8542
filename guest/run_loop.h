// The run loop both backends share: pre-enter -> enter -> decode -> dispatch -> post-exit.
// Portable (host-tested through a fake backend: tests/host/guest_run_loop_test.cpp).
//
// A backend hands run_vcpu() its steps as a seam (a template parameter, so that every step
// inlines into one loop: the VMX exit path is measured in Bochs ticks). The loop owns the
// decisions every backend makes alike:
//   - an exit handled inside goes straight back into the guest, anything else returns;
//   - an error from any step returns at once, and nothing after it runs;
//   - a pre-enter that refuses the entry (a vCPU that slept in the host through its HLT)
//     returns the backend's outcome for that, without entering;
//   - after a handled exit, a leave request (the VM ended, another core's request for a
//     turn) returns that exit's outcome; otherwise the post-exit work runs before the next
//     entry;
//   - a backend whose guest may run without exits the host can see (no preemption timer, an
//     interrupt the emulator does not turn into an exit) gives the caller a turn after
//     kHandledExitsPerTurn handled exits in a row; 0 means never.
//
// The seam:
//   using Exit;                       what enter_and_decode() fills and dispatch() reads
//   using Outcome;                    what run_vcpu() returns
//   static constexpr uint32_t kHandledExitsPerTurn;
//   Result<bool> pre_enter();         false: do not enter, return outcome_without_entry()
//   Outcome outcome_without_entry();
//   Result<void> enter_and_decode(Exit&);
//   Result<Outcome> dispatch(Exit&);
//   bool handled_inside(const Outcome&);
//   bool leave_requested();           after a handled exit
//   void post_exit();                 after a handled exit the loop goes on from
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::guest {

template <typename Seam>
[[gnu::always_inline]] inline Result<typename Seam::Outcome> run_vcpu(Seam& seam) {
  uint32_t handled_in_a_row = 0;
  for (;;) {
    if (!TRY(seam.pre_enter())) return seam.outcome_without_entry();
    typename Seam::Exit exit;
    TRY(seam.enter_and_decode(exit));
    Result<typename Seam::Outcome> outcome = seam.dispatch(exit);
    if (!outcome || !seam.handled_inside(*outcome)) return outcome;
    if (seam.leave_requested()) return outcome;
    seam.post_exit();
    if constexpr (Seam::kHandledExitsPerTurn != 0) {
      if (++handled_in_a_row == Seam::kHandledExitsPerTurn) return outcome;
    }
  }
}

}  // namespace lantern::guest
