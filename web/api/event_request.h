// The body of POST /api/v1/vms/{vm}/vcpus/{vcpu}/events, parsed and validated. Portable.
//
//   {"type": "interrupt" | "nmi" | "exception", "vector": N, "error_code": N?}
//
// Parsing never throws (nlohmann/json with allow_exceptions = false; every type is checked before
// it is read). Any other member is refused, so a typo ("error-code") is not silently ignored.
// The architectural rules are guest::make_pending_event()'s (SDM Vol. 3A 6.3.1, Table 6-1, and
// 10.5.2): NMI is vector 2; exceptions 0-31 (not 2) with an error code exactly for vectors 8,
// 10-14, 17 and 21; external interrupts 16-255, no error code.
#pragma once

#include <string>
#include <string_view>

#include "kernel/lib/result.h"
#include "guest/pending_events.h"

namespace lantern::web::api {

struct EventRequestError {
  std::string code;  // "invalid_json", "invalid_request" (shape/types), "invalid_event" (rules)
  std::string message;
};

// The validated event, or a 400 error (code + message).
struct EventRequestResult {
  bool ok = false;
  guest::PendingEvent event{};
  EventRequestError error;
};

EventRequestResult parse_event_request(std::string_view body);

// True for "application/json" with optional parameters (RFC 9110 8.3.1: type/subtype are
// case-insensitive), e.g. "application/json; charset=utf-8".
bool is_json_media_type(std::string_view content_type);

}  // namespace lantern::web::api
