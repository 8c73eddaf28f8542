// Spinlocks for SMP kernel code. IrqSpinlock also disables interrupts while held, so an
// interrupt handler on the same core can never deadlock against the code it interrupted.
#pragma once

#include <atomic>
#include <cstdint>

#include "kernel/arch/x86_64/cpu.h"

namespace lantern {

class Spinlock {
 public:
  void lock() {
    const uint32_t ticket = next_.fetch_add(1, std::memory_order_relaxed);
    while (serving_.load(std::memory_order_acquire) != ticket) cpu::pause();
  }
  void unlock() { serving_.fetch_add(1, std::memory_order_release); }

 private:
  std::atomic<uint32_t> next_{0};
  std::atomic<uint32_t> serving_{0};
};

class IrqSpinlock {
 public:
  // Returns whether interrupts were enabled, for unlock().
  bool lock() {
    const bool were_enabled = cpu::interrupts_enabled();
    cpu::disable_interrupts();
    lock_.lock();
    return were_enabled;
  }
  void unlock(bool were_enabled) {
    lock_.unlock();
    if (were_enabled) cpu::enable_interrupts();
  }

 private:
  Spinlock lock_;
};

class [[nodiscard]] IrqSpinlockGuard {
 public:
  explicit IrqSpinlockGuard(IrqSpinlock& lock) : lock_(lock), were_enabled_(lock.lock()) {}
  ~IrqSpinlockGuard() { lock_.unlock(were_enabled_); }
  IrqSpinlockGuard(const IrqSpinlockGuard&) = delete;
  IrqSpinlockGuard& operator=(const IrqSpinlockGuard&) = delete;

 private:
  IrqSpinlock& lock_;
  bool were_enabled_;
};

}  // namespace lantern
