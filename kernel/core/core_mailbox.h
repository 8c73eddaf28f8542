// A per-core work mailbox: the BSP (or any core) hands a function to another core and waits,
// bounded, for its result. One slot per core; the poster wakes the target with the
// interrupts::kVectorCallFunction IPI (the IPI itself only wakes the core: no handler is needed,
// so tests that install their own kVectorCallFunction handler do not disturb the mailbox).
//
// Where the work runs:
// - An AP with no vCPU (the `selftest` and `bench` boots, or no VMX) idles in
//   idle_loop_on_this_cpu(): CLI, look at the slot, STI;HLT (STI's interrupt shadow makes the
//   check-then-halt race free, SDM Vol. 2B STI). Work runs with interrupts enabled.
// - An AP running the demo vCPU (default boot) polls the slot in run_vcpu_loop_on_this_cpu()
//   after every host-interrupt, HLT and handled-inside exit: the IPI forces the VM exit. Work that
//   runs guests of its own makes other VMCSs current; the loop makes the demo VMCS current again
//   afterwards (VmxVcpu::reload_on_this_cpu()).
// A posted work item that times out stays in its slot: the core is busy until the work returns,
// and the result is thrown away by the next post. Kernel-only.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern {

using CoreWork = Result<void> (*)(uint64_t arg);

// Posts `work(arg)` to core `cpu_index` and sends the wake-up IPI. kInvalidArgument for this core
// or a core that is not online; kBusy while the previous work on that core has not finished.
Result<void> post_core_work(uint32_t cpu_index, CoreWork work, uint64_t arg);
// True once the work posted to `cpu_index` has returned (its result waits for collect).
bool core_work_done(uint32_t cpu_index);
// Waits up to `timeout_us` for the posted work and returns its result (kTimeout: the work is
// still running; kInvalidState: nothing was posted). The slot is free again afterwards, except
// after a timeout.
Result<void> wait_core_work(uint32_t cpu_index, uint64_t timeout_us);
// post + wait.
Result<void> run_on_core(uint32_t cpu_index, CoreWork work, uint64_t arg, uint64_t timeout_us);

// Runs the work posted to this core, if any. Returns true when work ran. Call with interrupts
// enabled or disabled; the work itself runs with interrupts enabled.
bool poll_core_mailbox();
// An AP's idle loop: polls the mailbox and halts until the next interrupt. Never returns.
[[noreturn]] void idle_loop_on_this_cpu();

}  // namespace lantern
