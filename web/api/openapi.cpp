#include "web/api/openapi.h"

#include <initializer_list>
#include <string>
#include <utility>

#include "guest/exit_kind.h"
#include "guest/general_registers.h"
#include "guest/pending_events.h"

namespace lantern::web::api {
namespace {

using Props = std::initializer_list<std::pair<const char*, Json>>;

Json integer(uint64_t maximum = 0) {
  Json j{{"type", "integer"}, {"minimum", 0}};
  if (maximum != 0) j["maximum"] = maximum;
  return j;
}
Json boolean() {
  return Json{{"type", "boolean"}};
}
Json text() {
  return Json{{"type", "string"}};
}
Json one_of(std::initializer_list<const char*> values) {
  Json e = Json::array();
  for (const char* v : values) e.push_back(v);
  return Json{{"type", "string"}, {"enum", std::move(e)}};
}
// A register/VMCS value: "0x" and exactly `digits` lower-case hex digits.
Json hex(unsigned digits) {
  return Json{{"type", "string"}, {"pattern", "^0x[0-9a-f]{" + std::to_string(digits) + "}$"}};
}
Json nullable(Json schema) {
  schema["nullable"] = true;
  return schema;
}
Json array_of(Json items) {
  return Json{{"type", "array"}, {"items", std::move(items)}};
}
Json ref(std::string_view name) {
  return Json{{"$ref", "#/components/schemas/" + std::string(name)}};
}

// Every listed property is always present; nothing else is.
Json object(Props props) {
  Json properties = Json::object();
  Json required = Json::array();
  for (const auto& [name, schema] : props) {
    properties[name] = schema;
    required.push_back(name);
  }
  return Json{{"type", "object"},
              {"required", std::move(required)},
              {"properties", std::move(properties)},
              {"additionalProperties", false}};
}
Json with(Json object_schema, const char* name, Json schema) {
  object_schema["properties"][name] = std::move(schema);
  object_schema["required"].push_back(name);
  return object_schema;
}

// An optional property: present only when the request asked for it.
Json with_optional(Json object_schema, const char* name, Json schema) {
  object_schema["properties"][name] = std::move(schema);
  return object_schema;
}

// The vendor-neutral kind of an exit (guest/exit_kind.h), every name it can take.
Json exit_kind_schema() {
  Json e = Json::array();
  for (int k = 0; k <= static_cast<int>(guest::ExitKind::kUnknown); ++k) {
    e.push_back(std::string(guest::exit_kind_name(static_cast<guest::ExitKind>(k))));
  }
  return Json{{"type", "string"}, {"enum", std::move(e)}};
}

// A VMX basic exit reason (SDM Vol. 3D Appendix C) as a count's key.
Json vmx_basic_reason_schema() {
  return object({{"reason", integer(0xffff)}, {"name", text()}, {"kind", exit_kind_schema()}});
}

Json exit_reason_schema() {
  return with(vmx_basic_reason_schema(), "entry_failure", boolean());
}

// An SVM exit code (APM Vol. 2 Appendix C): reason -1 is VMEXIT_INVALID.
Json svm_exit_code_schema() {
  return object({{"reason", Json{{"type", "integer"}, {"minimum", -1}}}, {"name", text()}, {"kind", exit_kind_schema()}});
}
Json one_of_schemas(Json a, Json b) {
  return Json{{"oneOf", Json::array({std::move(a), std::move(b)})}};
}

Json pending_event_schema() {
  return object({{"type", one_of({"interrupt", "nmi", "exception"})},
                 {"vector", integer(255)},
                 {"error_code", nullable(integer(UINT32_MAX))}});
}

Json vm_devices_schema() {
  return object({{"uart_bytes_in", integer()},
                 {"uart_bytes_out", integer()},
                 {"uart_bytes_read", integer()},
                 {"uart_input_refused", integer()},
                 {"unclaimed_port_reads", integer()},
                 {"unclaimed_port_writes", integer()},
                 {"unclaimed_ports",
                  array_of(object({{"port", integer(0xffff)}, {"reads", integer()}, {"writes", integer()}}))},
                 {"unclaimed_accesses_unlisted", integer()}});
}

Json vm_schema() {
  Json s =
      object({{"vm", integer()},
              {"kind", one_of({"demo", "user"})},
              {"name", text()},
              {"program", text()},
              {"kernel_format", nullable(text())},  // multiboot-elf32, multiboot-elf64, multiboot-aout-kludge, linux-bzimage
              {"cmdline", text()},
              {"state", one_of({"running", "stopped", "exited", "failed"})},
              {"memory_bytes", integer()},
              {"vcpu_count", integer()},
              {"cpu", nullable(integer())},
              {"console_bytes", integer()},
              {"exit_status", nullable(integer())},
              {"exit_code", nullable(integer())},
              {"exit_cause", nullable(text())},  // debug_exit (0xf4), shutdown_port (0x8900)
              {"failure", nullable(text())},
              {"resets", integer()},
              {"devices", nullable(vm_devices_schema())}});
  s["description"] =
      "kind user: a --vm VM (state running, exited with exit_code = the value written to 0xf4 and "
      "exit_status = QEMU's (code << 1) | 1, or failed with failure = the reason); kind demo: a built-in "
      "guest.";
  return s;
}

Json registers_schema() {
  Json s = object({{"vm", integer()}, {"vcpu", integer()}, {"backend", one_of({"vmx", "svm"})}});
  for (unsigned i = 0; i < guest::kGprCount; ++i) {
    if (i == guest::kGprRspIndex) continue;
    s = with(std::move(s), std::string(guest::gpr_name(i)).c_str(), hex(16));
  }
  for (const char* name : {"rsp", "rip", "rflags", "cr0", "cr2", "cr3", "cr4", "efer"}) {
    s = with(std::move(s), name, hex(16));
  }
  const Json segment =
      object({{"selector", hex(4)}, {"base", hex(16)}, {"limit", hex(8)}, {"access_rights", hex(8)}});
  return with(std::move(s), "segments",
              object({{"es", segment},
                      {"cs", segment},
                      {"ss", segment},
                      {"ds", segment},
                      {"fs", segment},
                      {"gs", segment},
                      {"ldtr", segment},
                      {"tr", segment}}));
}

Json path_parameter(std::string_view name) {
  return Json{{"name", std::string(name)},
              {"in", "path"},
              {"required", true},
              {"description", name == "vm" ? "VM number (GET /api/v1/vms)" : "vCPU number within the VM"},
              {"schema", integer(UINT32_MAX)}};
}

// "PatternText" (GET /api/v1/debug/stream) and "RawBytes" are the non-JSON bodies.
Json media(std::string_view schema) {
  if (schema == "PatternText") return Json{{"text/plain", {{"schema", {{"type", "string"}}}}}};
  // "RawBytes": guest serial input, taken as is whatever its media type.
  if (schema == "RawBytes")
    return Json{{"application/octet-stream", {{"schema", {{"type", "string"}, {"format", "binary"}}}}}};
  return Json{{"application/json", {{"schema", ref(schema)}}}};
}

}  // namespace

Json openapi_schemas() {
  Json s;
  s["Error"] = object({{"error", object({{"code", text()}, {"message", text()}})}});
  s["System"] =
      object({{"name", text()},
              {"version", text()},
              {"uptime_ms", integer()},
              {"cpus_online", integer()},
              {"vcpus", integer()},
              {"hv", one_of({"vmx", "svm", "none"})},
              {"vmx", object({{"available", boolean()},
                              {"cpuid", boolean()},
                              {"cores", integer()},
                              {"reason", text()},
                              {"vmcs_revision", hex(8)},
                              {"capabilities", object({{"ept", boolean()},
                                                       {"ept_large_pages", boolean()},
                                                       {"ept_1g_pages", boolean()},
                                                       {"vpid", boolean()},
                                                       {"unrestricted_guest", boolean()},
                                                       {"preemption_timer", boolean()},
                                                       {"nmi_window", boolean()},
                                                       {"activity_hlt", boolean()},
                                                       {"true_controls", boolean()},
                                                       {"xsaves", boolean()}})}})},
              {"svm", object({{"available", boolean()},
                              {"cpuid", boolean()},
                              {"cores", integer()},
                              {"reason", text()},
                              {"revision", integer(255)},
                              {"asids", integer(UINT32_MAX)},
                              {"capabilities", object({{"nested_paging", boolean()},
                                                       {"next_rip_save", boolean()},
                                                       {"vmcb_clean", boolean()},
                                                       {"flush_by_asid", boolean()},
                                                       {"decode_assists", boolean()},
                                                       {"pause_filter", boolean()},
                                                       {"avic", boolean()},
                                                       {"vgif", boolean()},
                                                       {"lbr_virtualization", boolean()}})}})},
              {"cmdline", text()},
              {"network", object({{"ip", text()},
                                  {"nic", text()},
                                  {"pools", array_of(object({{"name", text()},
                                                             {"used", integer()},
                                                             {"max", integer()},
                                                             {"avail", integer()},
                                                             {"errors", integer()}}))}})},
              {"console", object({{"connections_open", integer()},
                                  {"connections_total", integer()},
                                  {"requests", integer()},
                                  {"refused", integer()},
                                  {"framing_errors", integer()},
                                  {"timeouts", integer()},
                                  {"aborted", integer()}})},
              {"memory", object({{"heap", object({{"bytes_in_use", integer()},
                                                  {"bytes_reserved", integer()},
                                                  {"live_allocations", integer()}})},
                                 {"frames", object({{"total", integer()}, {"free", integer()}})}})}});
  s["CpuList"] = object(
      {{"cpus", array_of(object({{"index", integer()},
                                 {"apic_id", integer()},
                                 {"bsp", boolean()},
                                 {"vmx", one_of({"on", "off", "unsupported"})},
                                 {"svm", one_of({"on", "off", "unsupported"})},
                                 {"vcpus", array_of(object({{"vm", integer()}, {"vcpu", integer()}}))}}))}});
  s["Vm"] = vm_schema();
  s["VmList"] = object({{"vms", array_of(ref("Vm"))}});
  s["VmDetail"] = with(vm_schema(), "vcpus", array_of(ref("Vcpu")));
  s["Vcpu"] = object({{"vm", integer()},
                      {"vcpu", integer()},
                      {"backend", one_of({"vmx", "svm"})},
                      {"cpu", nullable(integer())},
                      {"state", one_of({"created", "running", "halted", "stopped"})},
                      {"launched", boolean()},
                      {"in_hlt", boolean()},
                      {"exits", integer()},
                      {"last_exit", nullable(one_of_schemas(exit_reason_schema(), svm_exit_code_schema()))},
                      {"stop_reason", nullable(text())},
                      {"pending_events", integer()},
                      {"events_injected", integer()}});
  // GET /api/v1/vcpus?exit_counts=true: the "counts" of Exits, per vCPU. One shape for both
  // backends: reason is the VMX basic exit reason or the SVM EXITCODE (-1: VMEXIT_INVALID).
  s["VcpuList"] = object(
      {{"vcpus",
        array_of(with_optional(s["Vcpu"], "exit_counts", array_of(with(svm_exit_code_schema(), "count", integer()))))}});
  s["Registers"] = registers_schema();
  s["VmcsField"] = object(
      {{"name", text()},
       {"encoding", hex(4)},
       {"width", one_of({"16", "32", "64", "natural"})},
       {"group", one_of({"control", "read_only", "guest", "host"})},
       {"value", Json{{"type", "string"}, {"pattern", "^0x([0-9a-f]{4}|[0-9a-f]{8}|[0-9a-f]{16})$"}}}});
  s["VmcsDump"] = object(
      {{"vm", integer()}, {"vcpu", integer()}, {"count", integer()}, {"fields", array_of(ref("VmcsField"))}});
  s["VmcbField"] =
      object({{"name", text()},
              {"offset", integer(0xfff)},
              {"width", Json{{"type", "integer"}, {"enum", Json::array({8, 16, 32, 64})}}},
              {"area", one_of({"control", "save"})},
              {"value", Json{{"type", "string"},
                             {"pattern", "^0x([0-9a-f]{2}|[0-9a-f]{4}|[0-9a-f]{8}|[0-9a-f]{16})$"}}}});
  s["VmcbDump"] = object(
      {{"vm", integer()}, {"vcpu", integer()}, {"count", integer()}, {"fields", array_of(ref("VmcbField"))}});
  s["PendingEvent"] = pending_event_schema();
  s["EventQueue"] = object({{"vm", integer()},
                            {"vcpu", integer()},
                            {"capacity", integer()},
                            {"count", integer()},
                            {"events", array_of(with(pending_event_schema(), "position", integer()))}});
  Json request = Json{{"type", "object"},
                      {"required", {"type", "vector"}},
                      {"properties",
                       {{"type", one_of({"interrupt", "nmi", "exception"})},
                        {"vector", integer(255)},
                        {"error_code", integer(UINT32_MAX)}}},
                      {"additionalProperties", false}};
  request["description"] =
      "NMI: vector 2. exception: vectors 0-31 except 2, error_code exactly for 8, 10-14, 17, 21 "
      "(SDM Vol. 3A 6.3.1, Table 6-1). interrupt: vectors 16-255, no error_code.";
  s["EventRequest"] = std::move(request);
  s["EventAccepted"] = object({{"vm", integer()},
                               {"vcpu", integer()},
                               {"position", integer()},
                               {"capacity", integer()},
                               {"event", ref("PendingEvent")}});
  Json vmx_exits = object(
      {{"vm", integer()},
       {"vcpu", integer()},
       {"backend", one_of({"vmx"})},
       {"total", integer()},
       {"tsc", integer()},
       {"counts", array_of(with(vmx_basic_reason_schema(), "count", integer()))},
       {"recent",
        array_of(with(with(with(with(exit_reason_schema(), "raw_reason", hex(8)), "qualification", hex(16)),
                           "rip", hex(16)),
                      "tsc", integer()))}});
  // SVM: reason is the EXITCODE, name its APM name, kind the vendor-neutral kind; qualification
  // repeats EXITINFO1.
  Json svm_recent = svm_exit_code_schema();
  for (const char* name : {"raw_reason", "qualification", "exitinfo1", "exitinfo2", "rip"}) {
    svm_recent = with(std::move(svm_recent), name, hex(16));
  }
  Json svm_exits = object({{"vm", integer()},
                           {"vcpu", integer()},
                           {"backend", one_of({"svm"})},
                           {"total", integer()},
                           {"tsc", integer()},
                           {"counts", array_of(with(svm_exit_code_schema(), "count", integer()))},
                           {"recent", array_of(with(std::move(svm_recent), "tsc", integer()))}});
  s["Exits"] = one_of_schemas(std::move(vmx_exits), std::move(svm_exits));
  s["ConsoleText"] = object({{"vm", integer()},
                             {"start", integer()},
                             {"next", integer()},
                             {"missed", integer()},
                             {"text", text()}});
  s["ConsoleAccepted"] = object({{"vm", integer()}, {"accepted", integer()}});
  s["ResetAccepted"] = object({{"vm", integer()}, {"reset", one_of({"requested"})}});
  s["LogChunk"] = object({{"next", integer()},
                          {"missed", integer()},
                          {"lines", array_of(object({{"seq", integer()},
                                                     {"timestamp_ns", integer()},
                                                     {"cpu", integer()},
                                                     {"level", text()},
                                                     {"text", text()},
                                                     {"truncated", boolean()}}))}});
  s["OpenApiDocument"] = Json{{"type", "object"}, {"required", {"openapi", "info", "paths"}}};
  return s;
}

Json openapi_document(std::span<const Route> routes) {
  Json paths = Json::object();
  for (const Route& route : routes) {
    Json parameters = Json::array();
    // Path parameters, in pattern order.
    std::string_view rest = route.pattern;
    while (!rest.empty()) {
      const size_t open = rest.find('{');
      if (open == std::string_view::npos) break;
      const size_t close = rest.find('}', open);
      if (close == std::string_view::npos) break;
      parameters.push_back(path_parameter(rest.substr(open + 1, close - open - 1)));
      rest = rest.substr(close + 1);
    }
    for (const QueryParam& q : route.query) {
      Json schema{{"type", std::string(q.type)}};
      if (q.type == "integer") schema["minimum"] = 0;
      parameters.push_back({{"name", std::string(q.name)},
                            {"in", "query"},
                            {"required", false},
                            {"description", std::string(q.description)},
                            {"schema", std::move(schema)}});
    }
    Json responses = Json::object();
    for (const RouteResponse& r : route.responses) {
      responses[std::to_string(r.status)] = {{"description", std::string(r.description)},
                                             {"content", media(r.schema)}};
    }
    Json operation;
    operation["operationId"] = std::string(route.operation_id);
    operation["summary"] = std::string(route.summary);
    if (!parameters.empty()) operation["parameters"] = std::move(parameters);
    if (!route.request_schema.empty()) {
      operation["requestBody"] = {{"required", true}, {"content", media(route.request_schema)}};
    }
    operation["responses"] = std::move(responses);
    operation["x-lantern-mutating"] = route.mutating;
    std::string method(http::method_name(route.method));
    for (char& c : method) c = static_cast<char>(c - 'A' + 'a');
    paths[std::string(route.pattern)][method] = std::move(operation);
  }

  Json doc;
  doc["openapi"] = std::string(kOpenApiVersion);
  doc["info"] = {
      {"title", "Lantern console API"},
      {"version", "1.0.0"},
      {"description",
       "Lantern's live debug console (a lab tool, not a hardened service): VMs, vCPUs, registers, "
       "VMCS fields, exits, guest console and event injection. Register and VMCS values are hex strings; "
       "counters are numbers. Every error is {\"error\": {\"code\", \"message\"}}. Any route answers 405 "
       "(with Allow) for a method it does not serve, 413/431 for oversized requests. HEAD is served "
       "wherever GET is. With console.token= set, send 'Authorization: Bearer <token>' (401 otherwise; "
       "GET/HEAD stay open with console.readonly_open=1)."}};
  doc["servers"] = Json::array({Json{{"url", "/"}}});
  doc["security"] = Json::array({Json{{"bearerAuth", Json::array()}}, Json::object()});
  doc["paths"] = std::move(paths);
  doc["components"] = {{"securitySchemes", {{"bearerAuth", {{"type", "http"}, {"scheme", "bearer"}}}}},
                       {"schemas", openapi_schemas()}};
  return doc;
}

}  // namespace lantern::web::api
