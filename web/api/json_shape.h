// JSON shaping of the console model (console_model.h) for API v1. Portable.
//
// Register and VMCS values are hex strings with a fixed number of digits per width
// ("0x00000000fee00000" for 64-bit and natural-width values), because JSON numbers lose precision
// above 2^53 (design.md). Counters, indices and offsets are numbers. Objects keep insertion order.
// Every string that came from a guest or the backend is dumped with invalid UTF-8 replaced
// (U+FFFD), so a guest cannot make the kernel's JSON writer fail (JSON_NOEXCEPTION aborts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "svm/vmcb.h"
#include "vmx/vmcs_fields.h"
#include "web/api/console_model.h"
#include "web/http/message.h"

namespace lantern::web::api {

using Json = nlohmann::ordered_json;

// "0x" followed by exactly `digits` lower-case hex digits (1-16); higher bits are dropped.
std::string hex_string(uint64_t value, unsigned digits);
inline std::string hex16(uint64_t v) {
  return hex_string(v, 4);
}
inline std::string hex32(uint64_t v) {
  return hex_string(v, 8);
}
inline std::string hex64(uint64_t v) {
  return hex_string(v, 16);
}
// Digits for a VMCS width: 16 -> 4, 32 -> 8, 64 and natural -> 16 (natural = 64 bits in IA-32e
// mode, SDM Vol. 3C 24.11.2).
unsigned vmcs_width_digits(vmx::VmcsWidth width);

// Compact, with invalid UTF-8 replaced. Never fails.
std::string dump(const Json& value);
// A 200 (or `status`) response with this JSON body.
http::Response json_response(const Json& value, int status = 200);

std::string_view cpu_vmx_state_name(CpuVmxState s);
std::string_view vcpu_state_name(VcpuState s);
std::string_view vm_state_name(VmState s);
std::string_view backend_name(Backend b);

Json system_json(const SystemSummary& s);
Json cpu_json(const CpuSummary& c);
// Every property is always present; those that do not apply are null (see docs/api.md).
Json vm_json(const VmSummary& v);
// With `exit_counts`, the summary's per-reason counters as "exit_counts" (the shape of the
// "counts" of exits_json()).
Json vcpu_json(const VcpuSummary& v, bool exit_counts = false);
Json regs_json(const VcpuSnapshot& s);
// One field of the dump. `high` = the _HIGH half of a 64-bit field (32 bits, encoding | 1).
Json vmcs_field_json(const vmx::VmcsFieldInfo& info, uint64_t value, bool high = false);
// One VMCB field: {"name", "offset" (bytes from the VMCB's start), "width" (bits), "area"
// ("control" or "save"), "value" (hex, width/4 digits)}.
Json vmcb_field_json(const svm::VmcbFieldInfo& info, uint64_t value);
// {"vm", "vcpu", "count", "fields": [...]}: the values whose field_index is in kVmcbFields.
Json vmcb_json(uint32_t vm, uint32_t vcpu, const std::vector<VmcbValue>& values);
// An SVM exit code: {"reason": code, "name": "VMEXIT_CPUID", "kind": "cpuid"}; VMEXIT_INVALID
// reads as reason -1 whether the CPU stored it sign- or zero-extended (QEMU 7.2).
Json svm_exit_code_json(uint64_t exitcode);
Json pending_event_json(const guest::PendingEvent& e);
Json events_json(uint32_t vm, uint32_t vcpu, const guest::PendingEventSnapshot& q);
Json exits_json(const VcpuSnapshot& s);
Json console_json(uint32_t vm, const ConsoleText& c);
Json log_json(const LogChunk& c);

// The VMCS dump, streamed: {"vm":V,"vcpu":C,"count":N,"fields":[...]} emitted in pieces of
// whole fields (at least one field per piece, then as many as fit in max_bytes), so the kernel
// never holds the whole document. Entries whose field_index is outside kVmcsFields are skipped.
class VmcsDumpSource final : public http::BodySource {
 public:
  VmcsDumpSource(uint32_t vm, uint32_t vcpu, std::vector<VmcsValue> values);
  bool next(std::string& out, size_t max_bytes) override;

 private:
  enum class Stage : uint8_t { kHeader, kFields, kEnd, kDone };
  uint32_t vm_, vcpu_;
  std::vector<VmcsValue> values_;
  size_t index_ = 0;
  size_t emitted_ = 0;
  Stage stage_ = Stage::kHeader;
};

}  // namespace lantern::web::api
