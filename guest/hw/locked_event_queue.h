// A vCPU's pending-event queue held under its lock: what both backends' arbiter seams hand
// guest::EventArbiter from lock_queue() (guest/event_arbiter.h). Kernel-only (IrqSpinlock).
#pragma once

#include "guest/pending_events.h"
#include "kernel/core/spinlock.h"

namespace lantern::guest {

struct LockedEventQueue {
  IrqSpinlockGuard guard;
  PendingEventQueue& queue;
};

}  // namespace lantern::guest
