// The kernel's ConsoleBackend (web/api/console_model.h): reads the VM registry, the vCPUs'
// captures from their owning cores, the guest consoles, the log ring and the network status.
// Kernel-only; every call runs on the BSP (the core that owns lwIP and the HTTP server).
#pragma once

#include <cstdint>

#include "web/api/console_model.h"

namespace lantern::web {

class KernelConsoleBackend final : public api::ConsoleBackend {
 public:
  // `capture_timeout_us`: how long a snapshot waits for the owning core before kTimeout (503).
  explicit KernelConsoleBackend(uint64_t capture_timeout_us) : capture_timeout_us_(capture_timeout_us) {}

  api::SystemSummary system() override;
  std::vector<api::CpuSummary> cpus() override;
  std::vector<api::VmSummary> vms() override;
  std::vector<api::VcpuSummary> vcpus() override;
  Result<api::VcpuSnapshot> snapshot(uint32_t vm, uint32_t vcpu) override;
  Result<guest::PendingEventSnapshot> pending_events(uint32_t vm, uint32_t vcpu) override;
  Result<size_t> queue_event(uint32_t vm, uint32_t vcpu, guest::PendingEventType type, uint32_t vector,
                             std::optional<uint32_t> error_code) override;
  Result<api::ConsoleText> console(uint32_t vm, uint64_t since, size_t max_bytes) override;
  Result<void> console_input(uint32_t vm, std::string_view bytes) override;
  Result<void> reset_vm(uint32_t vm) override;
  api::LogChunk log(uint64_t since, size_t max_lines) override;

 private:
  uint64_t capture_timeout_us_;
};

}  // namespace lantern::web
