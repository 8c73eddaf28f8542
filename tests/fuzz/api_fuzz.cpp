// Fuzz target: the console API behind the HTTP server: the router (web/api/router.h), the
// event-request JSON validation (web/api/event_request.h) and every handler, through the whole
// Api with the host tests' fake backend (tests/host/api_fake_backend.h).
//
// Input, as text: the first line is "<METHOD> <target>", then header lines "name: value" up to an
// empty line, then the body. Whether a token is configured, whether the backend injects an error
// and how full the event queue is are derived from the input.
//
// Invariants checked on every input:
//   - the status is one the API documents (never 500 from a healthy backend);
//   - every response carries JSON (or the debug stream's pattern text); every error is exactly
//     {"error": {"code": <string>, "message": <string>}}; 405 carries Allow;
//   - parse_event_request() accepts only events that obey the SDM's rules (NMI is vector 2;
//     exceptions 0-31 except 2 with an error code exactly for 8, 10-14, 17, 21; interrupts 16-255
//     without one), and its error codes are the three documented ones;
//   - a POST of an event to an existing running vCPU with a JSON content type is answered 202 exactly
//     when parse_event_request() accepts the body and the queue has room, and the queue then holds
//     one more event;
//   - match_route() agrees with the route table (method, literal segments, parameters).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_check.h"
#include "tests/host/api_fake_backend.h"
#include "web/api/api.h"
#include "web/api/event_request.h"
#include "web/api/router.h"

namespace lantern::web::api {
namespace {

using fuzz::InputDerivedChoices;
using nlohmann::json;

http::Method method_from(std::string_view text) {
  if (text == "GET") return http::Method::kGet;
  if (text == "HEAD") return http::Method::kHead;
  if (text == "POST") return http::Method::kPost;
  if (text == "PUT") return http::Method::kPut;
  if (text == "DELETE") return http::Method::kDelete;
  if (text == "PATCH") return http::Method::kPatch;
  if (text == "OPTIONS") return http::Method::kOptions;
  return http::Method::kOther;
}

std::string_view take_line(std::string_view& text) {
  const size_t end = text.find('\n');
  std::string_view line = text.substr(0, end);
  text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

void check_event_rules(const EventRequestResult& parsed, std::string_view body) {
  if (!parsed.ok) {
    FUZZ_CHECK(parsed.error.code == "invalid_json" || parsed.error.code == "invalid_request" ||
                   parsed.error.code == "invalid_event",
               parsed.error.code);
    FUZZ_CHECK(!parsed.error.message.empty(), body);
    return;
  }
  const guest::PendingEvent& e = parsed.event;
  switch (e.type) {
    case guest::PendingEventType::kNmi: FUZZ_CHECK(e.vector == 2 && !e.has_error_code, body); break;
    case guest::PendingEventType::kHardwareException:
      FUZZ_CHECK(e.vector < 32 && e.vector != 2, body);
      FUZZ_CHECK(e.has_error_code == guest::exception_has_error_code(e.vector), body);
      break;
    case guest::PendingEventType::kExternalInterrupt: FUZZ_CHECK(e.vector >= 16 && !e.has_error_code, body); break;
  }
  // An accepted body is a JSON object naming the type it was parsed as.
  const json j = json::parse(body, nullptr, false);
  FUZZ_CHECK(j.is_object() && j.contains("type") && j["type"].is_string(), body);
  FUZZ_CHECK(j["type"].get<std::string>() == guest::pending_event_type_name(e.type), body);
}

void check_match(const http::Request& request) {
  const Match m = match_route(api_routes(), request.method, request.path);
  switch (m.kind) {
    case MatchKind::kFound: {
      FUZZ_CHECK(m.route != nullptr, request.path);
      const bool method_ok = m.route->method == request.method ||
                             (request.method == http::Method::kHead && m.route->method == http::Method::kGet);
      FUZZ_CHECK(method_ok, request.path);
      // Same number of segments, literals equal, parameters decimal uint32.
      std::string_view pattern = m.route->pattern;
      std::string_view path = request.path;
      while (!pattern.empty() || !path.empty()) {
        FUZZ_CHECK(!pattern.empty() && !path.empty(), request.path);
        const size_t ps = pattern.find('/', 1);
        const size_t qs = path.find('/', 1);
        const std::string_view pseg = pattern.substr(0, ps);
        const std::string_view qseg = path.substr(0, qs);
        if (is_path_parameter(pseg.substr(1))) {
          uint32_t value = 0;
          FUZZ_CHECK(parse_decimal_u32(qseg.substr(1), value), request.path);
        } else {
          FUZZ_CHECK(pseg == qseg, request.path);
        }
        pattern.remove_prefix(ps == std::string_view::npos ? pattern.size() : ps);
        path.remove_prefix(qs == std::string_view::npos ? path.size() : qs);
      }
      if (m.params.has_vm) FUZZ_CHECK(m.route->pattern.find("{vm}") != std::string_view::npos, request.path);
      break;
    }
    case MatchKind::kMethodNotAllowed: FUZZ_CHECK(!m.allow.empty() && m.route == nullptr, request.path); break;
    case MatchKind::kBadParameter: FUZZ_CHECK(!m.message.empty(), request.path); break;
    case MatchKind::kNotFound: FUZZ_CHECK(m.route == nullptr, request.path); break;
  }
}

// The whole body (a streamed one up to `cap` bytes).
std::string collect_body(http::Response& r, size_t cap) {
  if (!r.stream) return r.body;
  std::string out;
  for (int guard = 0; guard < 1000000 && out.size() < cap; ++guard) {
    std::string piece;
    const bool more = r.stream->next(piece, 4096);
    FUZZ_CHECK(piece.size() <= 4096, "a body source overran max_bytes");
    out += piece;
    if (!more) return out;
  }
  return out;
}

void run(const uint8_t* data, size_t size) {
  InputDerivedChoices choose(data, size);
  std::string_view text(reinterpret_cast<const char*>(data), size);

  http::Request request;
  const std::string_view request_line = take_line(text);
  const size_t space = request_line.find(' ');
  request.method_text = std::string(request_line.substr(0, space));
  request.method = method_from(request.method_text);
  request.target = space == std::string_view::npos ? "" : std::string(request_line.substr(space + 1));
  const size_t question = request.target.find('?');
  request.path = request.target.substr(0, question);
  request.query = question == std::string::npos ? "" : request.target.substr(question + 1);
  for (std::string_view line = take_line(text); !line.empty(); line = take_line(text)) {
    const size_t colon = line.find(':');
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    request.headers.push_back({lower(line.substr(0, colon)), std::string(value)});
  }
  request.body = std::string(text);

  testing::FakeBackend backend;
  backend.system_summary.cpus_online = 2;
  backend.cpu_list = {CpuSummary{0, 0, true, CpuVmxState::kOn, {{0, 0}}},
                      CpuSummary{1, 1, false, CpuVmxState::kOn, {{0, 1}}}};
  backend.vm_list.push_back(VmSummary{});
  backend.add_vcpu(0, 0);
  backend.add_vcpu(0, 1, VcpuState::kStopped);
  backend.console_output[0] = "hello from the guest\n";
  backend.log_lines.push_back(LogLine{0, 1, 0, "info", "boot", false});
  const size_t preload = choose.in_range(0, guest::PendingEventQueue::kCapacity);
  for (size_t i = 0; i < preload; ++i) {
    (void)backend.queues[{0, 0}].queue_event(guest::PendingEventType::kExternalInterrupt, 32, std::nullopt);
  }
  const bool inject = choose.one_in(8);
  if (inject) backend.snapshot_error = make_error(ErrorCode::kTimeout, "injected");
  AuthConfig auth;
  if (choose.one_in(4)) auth.token = "s3cret";
  auth.readonly_open = choose.one_in(2);

  check_match(request);
  const EventRequestResult parsed = parse_event_request(request.body);
  check_event_rules(parsed, request.body);

  const size_t queued_before = backend.queues[{0, 0}].snapshot().count;
  Api api(backend, auth);
  http::Response response = api.handle(request);

  const int s = response.status;
  FUZZ_CHECK(s == 200 || s == 202 || s == 400 || s == 401 || s == 403 || s == 404 || s == 405 || s == 409 ||
                 s == 415 || s == 429 || s == 503,
             std::to_string(s) + " " + request.target);
  const std::string body = collect_body(response, 64 * 1024);
  if (response.content_type.rfind("text/plain", 0) == 0) {
    for (size_t i = 0; i < body.size(); ++i) FUZZ_CHECK(body[i] == "0123456789abcdef"[i % 16], request.target);
  } else {
    FUZZ_CHECK(response.content_type.rfind("application/json", 0) == 0, response.content_type);
    const json j = json::parse(body, nullptr, false);
    FUZZ_CHECK(!j.is_discarded(), body);
    if (s >= 400) {
      FUZZ_CHECK(j.is_object() && j.size() == 1 && j.contains("error"), body);
      const json& e = j["error"];
      FUZZ_CHECK(e.is_object() && e.contains("code") && e["code"].is_string() && e.contains("message") &&
                     e["message"].is_string(),
                 body);
    }
  }
  if (s == 405) {
    bool has_allow = false;
    for (const http::Header& h : response.headers) has_allow = has_allow || h.name == "allow";
    FUZZ_CHECK(has_allow, request.target);
  }

  // POST .../vms/0/vcpus/0/events, allowed through auth, JSON body declared: 202 iff valid + room.
  const Match m = match_route(api_routes(), request.method, request.path);
  const auto content_type = request.header("content-type");
  const bool authorized = auth.token.empty() || request.header("authorization") == "Bearer s3cret";
  if (m.kind == MatchKind::kFound && request.method == http::Method::kPost && m.params.vm == 0 &&
      m.params.vcpu == 0 && authorized && content_type && is_json_media_type(*content_type)) {
    const bool room = queued_before < guest::PendingEventQueue::kCapacity;
    FUZZ_CHECK((s == 202) == (parsed.ok && room), std::to_string(s) + " " + request.body);
    if (!parsed.ok) FUZZ_CHECK(s == 400, request.body);
    const size_t queued_after = backend.queues[{0, 0}].snapshot().count;
    FUZZ_CHECK(queued_after == queued_before + (s == 202 ? 1 : 0), request.body);
  }
}

}  // namespace
}  // namespace lantern::web::api

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lantern::web::api::run(data, size);
  return 0;
}
