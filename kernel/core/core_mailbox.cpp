#include "kernel/core/core_mailbox.h"

#include <atomic>

#include "kernel/arch/x86_64/apic.h"
#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/interrupts.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/time.h"

namespace lantern {
namespace {

enum class SlotState : uint32_t { kIdle, kPosted, kRunning, kDone };

struct alignas(64) Slot {
  std::atomic<SlotState> state{SlotState::kIdle};
  CoreWork work = nullptr;
  uint64_t arg = 0;
  Error error{};  // code kOk: the work succeeded
};
Slot g_slots[kMaxCpus];

}  // namespace

Result<void> post_core_work(uint32_t cpu_index, CoreWork work, uint64_t arg) {
  if (work == nullptr) return make_error(ErrorCode::kInvalidArgument, "no work function");
  PerCpu* target = cpu_by_index(cpu_index);
  if (target == nullptr || !target->online.load(std::memory_order_acquire)) {
    return make_error(ErrorCode::kInvalidArgument, "core is not online", cpu_index);
  }
  if (cpu_index == this_cpu().index)
    return make_error(ErrorCode::kInvalidArgument, "cannot post to this core", cpu_index);
  Slot& slot = g_slots[cpu_index];
  SlotState expected = SlotState::kDone;  // an uncollected result from a timed-out wait
  (void)slot.state.compare_exchange_strong(expected, SlotState::kIdle, std::memory_order_acq_rel);
  if (slot.state.load(std::memory_order_acquire) != SlotState::kIdle) {
    return make_error(ErrorCode::kBusy, "the core's previous work has not finished", cpu_index);
  }
  slot.work = work;
  slot.arg = arg;
  slot.error = Error{};
  slot.state.store(SlotState::kPosted, std::memory_order_release);
  apic::send_fixed_ipi(target->apic_id, interrupts::kVectorCallFunction);
  return ok();
}

bool core_work_done(uint32_t cpu_index) {
  return cpu_index < kMaxCpus && g_slots[cpu_index].state.load(std::memory_order_acquire) == SlotState::kDone;
}

Result<void> wait_core_work(uint32_t cpu_index, uint64_t timeout_us) {
  if (cpu_index >= kMaxCpus)
    return make_error(ErrorCode::kInvalidArgument, "core index out of range", cpu_index);
  Slot& slot = g_slots[cpu_index];
  if (slot.state.load(std::memory_order_acquire) == SlotState::kIdle) {
    return make_error(ErrorCode::kInvalidState, "no work was posted to the core", cpu_index);
  }
  const uint64_t deadline = time::now_ns() + timeout_us * 1000;
  while (slot.state.load(std::memory_order_acquire) != SlotState::kDone) {
    if (time::now_ns() >= deadline) {
      return make_error(ErrorCode::kTimeout, "the core did not finish its work in time", cpu_index);
    }
    cpu::pause();
  }
  const Error error = slot.error;
  slot.state.store(SlotState::kIdle, std::memory_order_release);
  if (error.code != ErrorCode::kOk) return error;
  return ok();
}

Result<void> run_on_core(uint32_t cpu_index, CoreWork work, uint64_t arg, uint64_t timeout_us) {
  TRY(post_core_work(cpu_index, work, arg));
  return wait_core_work(cpu_index, timeout_us);
}

bool poll_core_mailbox() {
  const uint32_t me = this_cpu().index;
  if (me >= kMaxCpus) return false;
  Slot& slot = g_slots[me];
  SlotState expected = SlotState::kPosted;
  if (!slot.state.compare_exchange_strong(expected, SlotState::kRunning, std::memory_order_acq_rel))
    return false;
  const bool were_enabled = cpu::interrupts_enabled();
  cpu::enable_interrupts();
  auto result = slot.work(slot.arg);
  if (!were_enabled) cpu::disable_interrupts();
  slot.error = result ? Error{} : result.error();
  slot.state.store(SlotState::kDone, std::memory_order_release);
  return true;
}

void idle_loop_on_this_cpu() {
  for (;;) {
    cpu::disable_interrupts();
    if (poll_core_mailbox()) continue;
    cpu::enable_interrupts_and_halt();  // STI shadow: an IPI after the check still ends the HLT
  }
}

}  // namespace lantern
