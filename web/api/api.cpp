#include "web/api/api.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "svm/vmcb.h"
#include "vmx/vmcs_fields.h"
#include "web/api/event_request.h"
#include "web/api/json_shape.h"
#include "web/api/openapi.h"

namespace lantern::web::api {
namespace {

using http::error_response;
using http::Method;
using http::Request;
using http::Response;

// Echo client input in a message safely: printable ASCII only, bounded.
std::string printable(std::string_view s, size_t max = 64) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c <= 0x7e) ? c : '?';
  if (s.size() > max) out += "...";
  return out;
}

std::string vcpu_label(const PathParams& p) {
  return "vCPU " + std::to_string(p.vcpu) + " of VM " + std::to_string(p.vm);
}

// RFC 9110 10.2.3: a client may retry a 429/503 after this many seconds.
void add_retry_after(Response& r) {
  r.headers.push_back({"retry-after", "1"});
}

// An optional ?since=<decimal u64> (0 when absent).
std::optional<uint64_t> since_param(const Request& request, Response& error) {
  const std::optional<std::string> since = request.query_param("since");
  uint64_t value = 0;
  if (since && !parse_decimal_u64(*since, value)) {
    error = error_response(
        400, "invalid_parameter",
        "?since= must be a decimal offset from 0 to 18446744073709551615, got \"" + printable(*since) + "\"");
    return std::nullopt;
  }
  return value;
}

std::optional<VcpuSummary> find_vcpu(ConsoleBackend& backend, const PathParams& p) {
  for (VcpuSummary& v : backend.vcpus()) {
    if (v.vm == p.vm && v.vcpu == p.vcpu) return std::move(v);
  }
  return std::nullopt;
}

Response vcpu_not_found(const PathParams& p) {
  return error_response(404, "not_found", "no " + vcpu_label(p) + " (GET /api/v1/vcpus lists them)");
}

// ---- Handlers -----------------------------------------------------------------------------

Response get_system(const RouteContext& c) {
  SystemSummary summary = c.backend.system();
  summary.cmdline = redact_cmdline(summary.cmdline);  // the token must not leak to open readers
  return json_response(system_json(summary));
}

Response get_cpus(const RouteContext& c) {
  Json cpus = Json::array();
  for (const CpuSummary& cpu : c.backend.cpus()) cpus.push_back(cpu_json(cpu));
  return json_response(Json{{"cpus", std::move(cpus)}});
}

Response get_vms(const RouteContext& c) {
  Json vms = Json::array();
  for (const VmSummary& vm : c.backend.vms()) vms.push_back(vm_json(vm));
  return json_response(Json{{"vms", std::move(vms)}});
}

Response get_vm(const RouteContext& c) {
  for (const VmSummary& vm : c.backend.vms()) {
    if (vm.vm != c.params.vm) continue;
    Json j = vm_json(vm);
    Json vcpus = Json::array();
    for (const VcpuSummary& v : c.backend.vcpus()) {
      if (v.vm == vm.vm) vcpus.push_back(vcpu_json(v));
    }
    j["vcpus"] = std::move(vcpus);
    return json_response(j);
  }
  return error_response(404, "not_found",
                        "no VM " + std::to_string(c.params.vm) + " (GET /api/v1/vms lists them)");
}

Response get_vcpus(const RouteContext& c) {
  bool exit_counts = false;
  if (const std::optional<std::string> flag = c.request.query_param("exit_counts")) {
    if (*flag == "true" || *flag == "1") {
      exit_counts = true;
    } else if (*flag != "false" && *flag != "0") {
      return error_response(400, "invalid_parameter", "?exit_counts= takes true or false (or 1 or 0)");
    }
  }
  Json vcpus = Json::array();
  for (const VcpuSummary& v : c.backend.vcpus()) vcpus.push_back(vcpu_json(v, exit_counts));
  return json_response(Json{{"vcpus", std::move(vcpus)}});
}

Response get_vcpu(const RouteContext& c) {
  const std::optional<VcpuSummary> v = find_vcpu(c.backend, c.params);
  if (!v) return vcpu_not_found(c.params);
  return json_response(vcpu_json(*v));
}

// W3C Server Timing: how long the owning core took to answer, for clients and `./lantern bench`.
Response with_capture_timing(Response r, const VcpuSnapshot& snapshot) {
  const uint64_t us = snapshot.capture_ns / 1000;
  std::string fraction = std::to_string(us % 1000);
  fraction.insert(0, 3 - fraction.size(), '0');
  r.headers.push_back({"server-timing", "snapshot;dur=" + std::to_string(us / 1000) + "." + fraction});
  return r;
}

Response get_regs(const RouteContext& c) {
  Result<VcpuSnapshot> snapshot = c.backend.snapshot(c.params.vm, c.params.vcpu);
  if (!snapshot) return backend_error_response(snapshot.error(), vcpu_label(c.params));
  return with_capture_timing(json_response(regs_json(*snapshot)), *snapshot);
}

// The control block of the other backend: 404 with the route that does answer.
Response wrong_backend(const PathParams& p, Backend backend) {
  if (backend == Backend::kSvm) {
    return error_response(404, "no_vmcs",
                          vcpu_label(p) +
                              " runs on the SVM backend: it has a VMCB, not a VMCS (GET "
                              "/api/v1/vms/{vm}/vcpus/{vcpu}/vmcb)");
  }
  return error_response(404, "no_vmcb",
                        vcpu_label(p) +
                            " runs on the VMX backend: it has a VMCS, not a VMCB (GET "
                            "/api/v1/vms/{vm}/vcpus/{vcpu}/vmcs)");
}

// ?name=A,B: exact SDM names (or NAME_HIGH for the high half of a 64-bit field).
Response get_vmcs(const RouteContext& c) {
  const std::optional<VcpuSummary> summary = find_vcpu(c.backend, c.params);
  if (!summary) return vcpu_not_found(c.params);
  if (summary->backend != Backend::kVmx) return wrong_backend(c.params, summary->backend);
  std::vector<vmx::VmcsFieldRef> selected;
  const std::optional<std::string> names = c.request.query_param("name");
  if (names) {
    std::string_view rest(*names);
    while (true) {
      const size_t comma = rest.find(',');
      const std::string_view name = rest.substr(0, comma);
      if (name.empty()) {
        return error_response(400, "invalid_parameter",
                              "?name= takes one or more exact VMCS field names separated by commas, "
                              "e.g. ?name=GUEST_RIP,VM_EXIT_REASON");
      }
      const Result<vmx::VmcsFieldRef> field = vmx::find_field_by_name(name);
      if (!field) {
        return error_response(400, "unknown_vmcs_field",
                              "no VMCS field named \"" + printable(name) +
                                  "\" (names are the SDM's, exact and upper-case, e.g. GUEST_RIP)");
      }
      selected.push_back(*field);
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }

  Result<VcpuSnapshot> snapshot = c.backend.snapshot(c.params.vm, c.params.vcpu);
  if (!snapshot) return backend_error_response(snapshot.error(), vcpu_label(c.params));

  if (!names) {
    Response r = with_capture_timing(Response{}, *snapshot);
    r.stream = std::make_unique<VmcsDumpSource>(c.params.vm, c.params.vcpu, std::move(snapshot->vmcs));
    return r;
  }
  Json fields = Json::array();
  for (const vmx::VmcsFieldRef& ref : selected) {
    const size_t index = static_cast<size_t>(ref.info - vmx::kVmcsFields);
    const VmcsValue* found = nullptr;
    for (const VmcsValue& v : snapshot->vmcs) {
      if (v.field_index == index) found = &v;
    }
    if (found == nullptr) {
      return error_response(404, "vmcs_field_unsupported",
                            std::string(ref.info->name) +
                                " is not supported by this CPU (VMREAD fails "
                                "with VM-instruction error 12), so it is not in the dump");
    }
    fields.push_back(vmcs_field_json(*ref.info, found->value, ref.high));
  }
  Json j;
  j["vm"] = c.params.vm;
  j["vcpu"] = c.params.vcpu;
  j["count"] = fields.size();
  j["fields"] = std::move(fields);
  return json_response(j);
}

// ?name=A,B: exact APM Vol. 2 Appendix B names (EXITCODE, RIP, CS_SELECTOR, ...).
Response get_vmcb(const RouteContext& c) {
  const std::optional<VcpuSummary> summary = find_vcpu(c.backend, c.params);
  if (!summary) return vcpu_not_found(c.params);
  if (summary->backend != Backend::kSvm) return wrong_backend(c.params, summary->backend);
  std::vector<uint16_t> selected;
  const std::optional<std::string> names = c.request.query_param("name");
  if (names) {
    std::string_view rest(*names);
    while (true) {
      const size_t comma = rest.find(',');
      const std::string_view name = rest.substr(0, comma);
      if (name.empty()) {
        return error_response(400, "invalid_parameter",
                              "?name= takes one or more exact VMCB field names separated by commas, "
                              "e.g. ?name=EXITCODE,RIP");
      }
      const svm::VmcbFieldInfo* field = svm::find_vmcb_field_by_name(name);
      if (field == nullptr) {
        return error_response(400, "unknown_vmcb_field",
                              "no VMCB field named \"" + printable(name) +
                                  "\" (names are the AMD APM Vol. 2 Appendix B's, exact and upper-case, "
                                  "e.g. EXITCODE)");
      }
      selected.push_back(static_cast<uint16_t>(field - svm::kVmcbFields));
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }
  Result<VcpuSnapshot> snapshot = c.backend.snapshot(c.params.vm, c.params.vcpu);
  if (!snapshot) return backend_error_response(snapshot.error(), vcpu_label(c.params));
  if (!names)
    return with_capture_timing(json_response(vmcb_json(c.params.vm, c.params.vcpu, snapshot->vmcb)),
                               *snapshot);
  std::vector<VmcbValue> values;
  for (uint16_t index : selected) {
    for (const VmcbValue& v : snapshot->vmcb) {
      if (v.field_index == index) values.push_back(v);
    }
  }
  return with_capture_timing(json_response(vmcb_json(c.params.vm, c.params.vcpu, values)), *snapshot);
}

Response get_events(const RouteContext& c) {
  const Result<guest::PendingEventSnapshot> queue = c.backend.pending_events(c.params.vm, c.params.vcpu);
  if (!queue) return backend_error_response(queue.error(), vcpu_label(c.params));
  return json_response(events_json(c.params.vm, c.params.vcpu, *queue));
}

Response post_event(const RouteContext& c) {
  const std::optional<std::string_view> content_type = c.request.header("content-type");
  if (!content_type || !is_json_media_type(*content_type)) {
    return error_response(415, "unsupported_media_type",
                          "the body must be JSON: send 'Content-Type: application/json' (curl --json)");
  }
  if (!find_vcpu(c.backend, c.params)) return vcpu_not_found(c.params);
  const EventRequestResult parsed = parse_event_request(c.request.body);
  if (!parsed.ok) return error_response(400, parsed.error.code, parsed.error.message);
  const guest::PendingEvent& e = parsed.event;
  const Result<size_t> position =
      c.backend.queue_event(c.params.vm, c.params.vcpu, e.type, e.vector,
                            e.has_error_code ? std::optional<uint32_t>(e.error_code) : std::nullopt);
  if (!position) return backend_error_response(position.error(), vcpu_label(c.params));
  Json j;
  j["vm"] = c.params.vm;
  j["vcpu"] = c.params.vcpu;
  j["position"] = *position;
  j["capacity"] = guest::PendingEventQueue::kCapacity;
  j["event"] = pending_event_json(e);
  return json_response(j, 202);
}

Response get_exits(const RouteContext& c) {
  const Result<VcpuSnapshot> snapshot = c.backend.snapshot(c.params.vm, c.params.vcpu);
  if (!snapshot) return backend_error_response(snapshot.error(), vcpu_label(c.params));
  return with_capture_timing(json_response(exits_json(*snapshot)), *snapshot);
}

Response get_console(const RouteContext& c) {
  Response error;
  const std::optional<uint64_t> since = since_param(c.request, error);
  if (!since) return error;
  const Result<ConsoleText> text = c.backend.console(c.params.vm, *since, kConsoleMaxBytes);
  if (!text) return backend_error_response(text.error(), "VM " + std::to_string(c.params.vm));
  return json_response(console_json(c.params.vm, *text));
}

std::string vm_label(const PathParams& p) {
  return "VM " + std::to_string(p.vm);
}

Response with_retry_after(Response r) {
  add_retry_after(r);
  return r;
}

// Raw bytes of guest serial input (any media type: the body is taken as is).
Response post_console(const RouteContext& c) {
  if (c.request.body.empty()) {
    return error_response(400, "empty_body",
                          "send the bytes for the guest's serial input as the request body");
  }
  const Result<void> r = c.backend.console_input(c.params.vm, c.request.body);
  if (r) {
    Json j;
    j["vm"] = c.params.vm;
    j["accepted"] = c.request.body.size();
    return json_response(j, 202);
  }
  const std::string vm = vm_label(c.params);
  switch (r.error().code) {
    case ErrorCode::kNotFound:
      return error_response(404, "not_found", "no " + vm + " (GET /api/v1/vms lists them)");
    case ErrorCode::kFull:
      return with_retry_after(error_response(429, "console_input_full",
                                             "the serial input buffer of " + vm + " lacks room for " +
                                                 std::to_string(c.request.body.size()) +
                                                 " bytes; retry once the guest has read some"));
    case ErrorCode::kInvalidArgument:
      return error_response(
          413, "console_input_too_large",
          vm + ": " + r.error().message + " (" + std::to_string(r.error().detail) + " bytes)");
    case ErrorCode::kInvalidState:
      return error_response(409, "vm_not_running",
                            vm + " does not run (" + std::string(r.error().message) + ")");
    case ErrorCode::kUnsupported:
      return error_response(409, "no_console_input", vm + ": " + r.error().message);
    default: return backend_error_response(r.error(), vm);
  }
}

Response post_reset(const RouteContext& c) {
  const Result<void> r = c.backend.reset_vm(c.params.vm);
  if (r) {
    Json j;
    j["vm"] = c.params.vm;
    j["reset"] = "requested";
    return json_response(j, 202);
  }
  const std::string vm = vm_label(c.params);
  switch (r.error().code) {
    case ErrorCode::kNotFound:
      return error_response(404, "not_found", "no " + vm + " (GET /api/v1/vms lists them)");
    case ErrorCode::kInvalidState:
    case ErrorCode::kUnsupported: return error_response(409, "cannot_reset", vm + ": " + r.error().message);
    case ErrorCode::kTimeout:
    case ErrorCode::kBusy:
      return with_retry_after(error_response(
          503, "core_busy", "the core that runs " + vm + " still has earlier work in its mailbox; retry"));
    default: return backend_error_response(r.error(), vm);
  }
}

Response get_log(const RouteContext& c) {
  Response error;
  const std::optional<uint64_t> since = since_param(c.request, error);
  if (!since) return error;
  return json_response(log_json(c.backend.log(*since, kLogMaxLines)));
}

// N bytes of "0123456789abcdef" repeated (byte i is the pattern's (i % 16)th), produced piece by
// piece: a known large streamed body for checking a client's (or the server's) chunked path and
// throughput, on any machine (the VMCS dump needs VMX).
class PatternSource final : public http::BodySource {
 public:
  explicit PatternSource(uint64_t total) : total_(total) {}
  bool next(std::string& out, size_t max_bytes) override {
    static constexpr char kPattern[] = "0123456789abcdef";
    if (sent_ == total_) return false;  // ended: nothing appended
    uint64_t n = total_ - sent_;
    if (n > max_bytes) n = max_bytes;
    if (n == 0) n = 1;
    for (uint64_t i = 0; i < n; ++i) out += kPattern[(sent_ + i) % 16];
    sent_ += n;
    return true;
  }

 private:
  uint64_t total_;
  uint64_t sent_ = 0;
};

constexpr uint64_t kMaxStreamBytes = 16u << 20;

Response get_debug_stream(const RouteContext& c) {
  const std::optional<std::string> bytes = c.request.query_param("bytes");
  uint64_t n = 0;
  bool valid = bytes.has_value() && !bytes->empty() && bytes->size() <= 9;
  for (size_t i = 0; valid && i < bytes->size(); ++i) {
    const char ch = (*bytes)[i];
    if (ch < '0' || ch > '9') valid = false;
    n = n * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (!valid || n > kMaxStreamBytes) {
    return error_response(400, "invalid_parameter", "?bytes=N with N from 0 to 16777216 is required");
  }
  Response r;
  r.content_type = "text/plain; charset=utf-8";
  r.stream = std::make_unique<PatternSource>(n);
  return r;
}

Response get_openapi(const RouteContext&) {
  return json_response(openapi_document(api_routes()));
}

// ---- The route table ------------------------------------------------------------------------

constexpr RouteResponse kSystemResponses[] = {
    {200,
     "Name, version, uptime, CPUs, the backend (hv), VMX and SVM status and capabilities, network and "
     "console counters",
     "System"},
    {401, "A token is configured and the request did not carry it", "Error"},
};
constexpr RouteResponse kCpusResponses[] = {
    {200, "Physical CPUs with their VMX and SVM state and bound vCPUs", "CpuList"},
    {401, "A token is configured and the request did not carry it", "Error"},
};
constexpr RouteResponse kVmsResponses[] = {
    {200, "Every VM with its state and memory", "VmList"},
    {401, "A token is configured and the request did not carry it", "Error"},
};
constexpr RouteResponse kVmResponses[] = {
    {200, "One VM and its vCPUs", "VmDetail"},
    {400, "{vm} is not a decimal number", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
    {404, "No such VM", "Error"},
};
constexpr RouteResponse kVcpusResponses[] = {
    {200, "Every vCPU (read without the owning core; counters may be a few exits old)", "VcpuList"},
    {400, "?exit_counts= is not true, false, 1 or 0", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
};
constexpr RouteResponse kVcpuResponses[] = {
    {200, "One vCPU's summary", "Vcpu"},
    {400, "{vm} or {vcpu} is not a decimal number", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
    {404, "No such vCPU", "Error"},
};
constexpr RouteResponse kRegsResponses[] = {
    {200, "General registers, rsp, rip, rflags, control registers, EFER and segments (hex strings)",
     "Registers"},
    {400, "{vm} or {vcpu} is not a decimal number", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
    {404, "No such vCPU", "Error"},
    {503, "The owning core did not answer the snapshot request in time", "Error"},
};
constexpr RouteResponse kVmcsResponses[] = {
    {200, "Every VMCS field this CPU supports (streamed), or the fields named by ?name=", "VmcsDump"},
    {400, "A bad path parameter, or ?name= names no VMCS field", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
    {404, "No such vCPU, an SVM vCPU (it has a VMCB), or a named field this CPU does not support", "Error"},
    {503, "The owning core did not answer the snapshot request in time", "Error"},
};
constexpr RouteResponse kVmcbResponses[] = {
    {200, "Every VMCB control-area and save-area field, or the fields named by ?name=", "VmcbDump"},
    {400, "A bad path parameter, or ?name= names no VMCB field", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
    {404, "No such vCPU, or a VMX vCPU (it has a VMCS)", "Error"},
    {503, "The owning core did not answer the snapshot request in time", "Error"},
};
constexpr RouteResponse kEventsGetResponses[] = {
    {200, "The pending-event queue in delivery order (capacity 8)", "EventQueue"},
    {400, "{vm} or {vcpu} is not a decimal number", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
    {404, "No such vCPU", "Error"},
    {503, "The owning core did not answer in time", "Error"},
};
constexpr RouteResponse kEventsPostResponses[] = {
    {202, "Queued; position 0 is injected next", "EventAccepted"},
    {400, "Malformed JSON, unknown member, wrong type, or an event that breaks an architectural rule",
     "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
    {404, "No such vCPU", "Error"},
    {409, "The vCPU has stopped", "Error"},
    {415, "The body is not application/json", "Error"},
    {429, "The pending-event queue is full (8 events)", "Error"},
    {503, "The owning core did not answer in time", "Error"},
};
constexpr RouteResponse kExitsResponses[] = {
    {200, "Exit counters per basic exit reason and the most recent exits (newest first)", "Exits"},
    {400, "{vm} or {vcpu} is not a decimal number", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
    {404, "No such vCPU", "Error"},
    {503, "The owning core did not answer the snapshot request in time", "Error"},
};
constexpr RouteResponse kConsoleResponses[] = {
    {200, "Guest serial output from ?since= (at most 16 KiB; pass `next` as ?since= next time)",
     "ConsoleText"},
    {400, "{vm} or ?since= is not a decimal number", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
    {404, "No such VM", "Error"},
};
constexpr RouteResponse kConsolePostResponses[] = {
    {202, "All bytes queued for the guest's UART receive side", "ConsoleAccepted"},
    {400, "{vm} is not a decimal number, or the body is empty", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
    {404, "No such VM", "Error"},
    {409, "The VM does not run, or its UART has no receive side (demo guests)", "Error"},
    {413, "More bytes than the input buffer holds (4096)", "Error"},
    {429, "The input buffer lacks room for the bytes (nothing was queued); Retry-After", "Error"},
};
constexpr RouteResponse kResetResponses[] = {
    {202, "The VM's core restarts it from its boot modules (GET the VM: resets grows, state running)",
     "ResetAccepted"},
    {400, "{vm} is not a decimal number", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
    {404, "No such VM", "Error"},
    {409, "Nothing to restart: a demo VM, or a VM refused at boot", "Error"},
    {503, "The VM's core still has earlier work in its mailbox; Retry-After", "Error"},
};
constexpr RouteResponse kLogResponses[] = {
    {200, "Hypervisor log lines from ?since= (at most 256)", "LogChunk"},
    {400, "?since= is not a decimal number", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
};
constexpr RouteResponse kDebugStreamResponses[] = {
    {200, "N bytes of 0123456789abcdef repeated, streamed (chunked)", "PatternText"},
    {400, "?bytes= is missing, not a decimal number or above 16777216", "Error"},
    {401, "A token is configured and the request did not carry it", "Error"},
};
constexpr QueryParam kBytesQuery[] = {
    {"bytes", "integer", "How many bytes to send (0-16777216)."},
};
constexpr RouteResponse kOpenApiResponses[] = {
    {200, "This OpenAPI 3.0 document, generated from the server's route table", "OpenApiDocument"},
    {401, "A token is configured and the request did not carry it", "Error"},
};

constexpr QueryParam kVmcsQuery[] = {
    {"name", "string",
     "Comma-separated exact SDM field names (e.g. GUEST_RIP,VM_EXIT_REASON; NAME_HIGH for the high half "
     "of a 64-bit field). Absent: every supported field."},
};
constexpr QueryParam kVmcbQuery[] = {
    {"name", "string",
     "Comma-separated exact AMD APM Vol. 2 Appendix B field names (e.g. EXITCODE,RIP,CS_SELECTOR). "
     "Absent: every control-area and save-area field."},
};
constexpr QueryParam kVcpusQuery[] = {
    {"exit_counts", "string",
     "true (or 1): each vCPU also carries exit_counts, its exits per reason read without the owning "
     "core, so a dashboard needs no snapshot per vCPU. Absent, false or 0: left out."},
};
constexpr QueryParam kSinceQuery[] = {
    {"since", "integer", "Offset to start from (the `next` of the previous answer); 0 when absent."},
};

constexpr std::string_view kVcpuPath = "/api/v1/vms/{vm}/vcpus/{vcpu}";

constexpr Route kRoutes[] = {
    {Method::kGet,
     "/api/v1/system",
     get_system,
     "getSystem",
     "Hypervisor summary",
     {},
     "",
     kSystemResponses,
     false},
    {Method::kGet, "/api/v1/cpus", get_cpus, "listCpus", "Physical CPUs", {}, "", kCpusResponses, false},
    {Method::kGet, "/api/v1/vms", get_vms, "listVms", "VMs", {}, "", kVmsResponses, false},
    {Method::kGet, "/api/v1/vms/{vm}", get_vm, "getVm", "One VM", {}, "", kVmResponses, false},
    {Method::kGet, "/api/v1/vcpus", get_vcpus, "listVcpus", "Every vCPU", kVcpusQuery, "", kVcpusResponses,
     false},
    {Method::kGet, kVcpuPath, get_vcpu, "getVcpu", "One vCPU's summary", {}, "", kVcpuResponses, false},
    {Method::kGet,
     "/api/v1/vms/{vm}/vcpus/{vcpu}/regs",
     get_regs,
     "getRegisters",
     "Guest registers (snapshot from the owning core)",
     {},
     "",
     kRegsResponses,
     false},
    {Method::kGet, "/api/v1/vms/{vm}/vcpus/{vcpu}/vmcs", get_vmcs, "getVmcs",
     "VMCS fields (snapshot from the owning core)", kVmcsQuery, "", kVmcsResponses, false},
    {Method::kGet, "/api/v1/vms/{vm}/vcpus/{vcpu}/vmcb", get_vmcb, "getVmcb",
     "VMCB fields of an SVM vCPU (snapshot from the owning core)", kVmcbQuery, "", kVmcbResponses, false},
    {Method::kGet,
     "/api/v1/vms/{vm}/vcpus/{vcpu}/events",
     get_events,
     "listPendingEvents",
     "The pending-event queue",
     {},
     "",
     kEventsGetResponses,
     false},
    {Method::kPost,
     "/api/v1/vms/{vm}/vcpus/{vcpu}/events",
     post_event,
     "queueEvent",
     "Queue an interrupt, NMI or exception for injection",
     {},
     "EventRequest",
     kEventsPostResponses,
     true},
    {Method::kGet,
     "/api/v1/vms/{vm}/vcpus/{vcpu}/exits",
     get_exits,
     "getExits",
     "Exit counters and recent exits (snapshot from the owning core)",
     {},
     "",
     kExitsResponses,
     false},
    {Method::kGet, "/api/v1/vms/{vm}/console", get_console, "getConsole", "Guest serial output", kSinceQuery,
     "", kConsoleResponses, false},
    {Method::kPost,
     "/api/v1/vms/{vm}/console",
     post_console,
     "postConsoleInput",
     "Guest serial input: the raw body into the VM's UART receive buffer (all or nothing)",
     {},
     "RawBytes",
     kConsolePostResponses,
     true},
    {Method::kPost,
     "/api/v1/vms/{vm}/reset",
     post_reset,
     "resetVm",
     "Restart the VM from its loaded image",
     {},
     "",
     kResetResponses,
     true},
    {Method::kGet, "/api/v1/log", get_log, "getLog", "The hypervisor log ring", kSinceQuery, "",
     kLogResponses, false},
    {Method::kGet, "/api/v1/debug/stream", get_debug_stream, "getDebugStream",
     "A known streamed body, for checking clients and the server's chunked path", kBytesQuery, "",
     kDebugStreamResponses, false},
    {Method::kGet,
     "/api/v1/openapi.json",
     get_openapi,
     "getOpenApi",
     "This API's OpenAPI 3.0 description",
     {},
     "",
     kOpenApiResponses,
     false},
};

}  // namespace

std::span<const Route> api_routes() {
  return kRoutes;
}

Response backend_error_response(const Error& error, std::string_view context) {
  const std::string subject(context);
  switch (error.code) {
    case ErrorCode::kNotFound:
      return error_response(404, "not_found", "no " + subject + " (" + error.message + ")");
    case ErrorCode::kTimeout: {
      Response r = error_response(503, "snapshot_timeout",
                                  "the core that owns " + subject +
                                      " did not answer in time; the guest may be spinning with interrupts "
                                      "off. Retry (" +
                                      error.message + ")");
      add_retry_after(r);
      return r;
    }
    case ErrorCode::kFull: {
      Response r = error_response(429, "event_queue_full",
                                  "the pending-event queue of " + subject +
                                      " is full (8 events); retry once the guest has taken some");
      add_retry_after(r);
      return r;
    }
    case ErrorCode::kInvalidState:
      return error_response(409, "vcpu_stopped", subject + " has stopped (" + error.message + ")");
    case ErrorCode::kInvalidArgument:
      return error_response(400, "invalid_event", subject + ": " + error.message);
    default:
      // Not an answer the API expects from the backend: a bug to report, never a panic.
      return error_response(
          500, "internal_error",
          subject + ": backend error " + error_code_name(error.code) + " (" + error.message + ")");
  }
}

Api::Api(ConsoleBackend& backend, AuthConfig auth) : backend_(backend), auth_(std::move(auth)) {}

Response Api::handle(const Request& request) {
  const Match match = match_route(api_routes(), request.method, request.path);
  // A matched route says whether it mutates; otherwise only GET and HEAD count as read-only.
  const bool mutating = match.route != nullptr
                            ? match.route->mutating
                            : !(request.method == Method::kGet || request.method == Method::kHead);
  if (std::optional<Response> refused = check_auth(auth_, request, mutating)) return std::move(*refused);

  switch (match.kind) {
    case MatchKind::kFound: break;
    case MatchKind::kNotFound:
      return error_response(
          404, "not_found",
          "no resource at " + printable(request.path, 128) + " (GET /api/v1/openapi.json lists every route)");
    case MatchKind::kMethodNotAllowed: {
      Response r = error_response(
          405, "method_not_allowed",
          printable(request.method_text.empty() ? http::method_name(request.method)
                                                : std::string_view(request.method_text),
                    16) +
              " is not allowed on " + printable(request.path, 128) + "; allowed: " + match.allow);
      r.headers.push_back({"allow", match.allow});
      return r;
    }
    case MatchKind::kBadParameter: return error_response(400, "invalid_parameter", match.message);
  }
  return match.route->handler(RouteContext{backend_, request, match.params});
}

}  // namespace lantern::web::api
