// What other cores (the console) may read about a vCPU without a capture, the same for both
// backends. The owning core stores every field with relaxed atomic stores whenever its run()
// returns (so at least at every host-interrupt exit) and every so many exits handled inside it
// (VMX: every 256th); readers load each field relaxed. Each field is individually current as of
// that moment; together they are not a consistent snapshot of one exit (a capture on the owning
// core is: vmx/hw/vcpu_capture.h, svm/hw/svm_guest_vm.h).
#pragma once

#include <atomic>
#include <cstdint>

namespace lantern::guest {

struct PublishedVcpuState {
  std::atomic<uint64_t> total_exits{0};
  std::atomic<uint64_t> last_exit_code{0};  // raw: VMX VM_EXIT_REASON, SVM EXITCODE
  std::atomic<uint64_t> events_injected{0};
  std::atomic<bool> launched{false};
  std::atomic<bool> halted{false};  // sleeping in HLT
  std::atomic<bool> parked{false};  // waiting for a SIPI after INIT
  std::atomic<const char*> stop_message{nullptr};

  // The owner's store of all of it.
  void store(uint64_t exits, uint64_t last_code, uint64_t injected, bool is_launched, bool is_halted,
             bool is_parked, const char* stop) {
    constexpr auto kRelaxed = std::memory_order_relaxed;
    total_exits.store(exits, kRelaxed);
    last_exit_code.store(last_code, kRelaxed);
    events_injected.store(injected, kRelaxed);
    launched.store(is_launched, kRelaxed);
    halted.store(is_halted, kRelaxed);
    parked.store(is_parked, kRelaxed);
    stop_message.store(stop, kRelaxed);
  }
};

}  // namespace lantern::guest
