#include "web/api/event_request.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

namespace lantern::web::api {
namespace {

using nlohmann::json;

EventRequestResult fail(std::string_view code, std::string message) {
  EventRequestResult r;
  r.error.code = std::string(code);
  r.error.message = std::move(message);
  return r;
}

// A JSON integer within [0, max]; nullopt otherwise (floats such as 32.0 are refused too).
std::optional<uint64_t> integer_in_range(const json& value, uint64_t max) {
  if (!value.is_number_integer()) return std::nullopt;
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    return v <= max ? std::optional<uint64_t>(v) : std::nullopt;
  }
  const int64_t v = value.get<int64_t>();
  if (v < 0 || static_cast<uint64_t>(v) > max) return std::nullopt;
  return static_cast<uint64_t>(v);
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

bool is_json_media_type(std::string_view content_type) {
  constexpr std::string_view kJson = "application/json";
  const size_t semicolon = content_type.find(';');
  std::string_view type = content_type.substr(0, semicolon);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  if (type.size() != kJson.size()) return false;
  for (size_t i = 0; i < kJson.size(); ++i) {
    if (lower(type[i]) != kJson[i]) return false;
  }
  return true;
}

EventRequestResult parse_event_request(std::string_view body) {
  const json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail("invalid_json", "the body is not valid JSON");
  if (!doc.is_object()) {
    return fail("invalid_request", "the body must be a JSON object {\"type\", \"vector\", \"error_code\"?}");
  }
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    const std::string& key = it.key();
    if (key != "type" && key != "vector" && key != "error_code") {
      // The key came from valid JSON, so it is valid UTF-8; bound its length for the message.
      return fail("invalid_request", "unknown member \"" + key.substr(0, 64) +
                                         "\" (allowed: \"type\", \"vector\", \"error_code\")");
    }
  }

  const auto type_it = doc.find("type");
  if (type_it == doc.end()) return fail("invalid_request", "\"type\" is required");
  if (!type_it->is_string()) {
    return fail("invalid_request", "\"type\" must be a string: \"interrupt\", \"nmi\" or \"exception\"");
  }
  const Result<guest::PendingEventType> type =
      guest::parse_pending_event_type(type_it->get_ref<const std::string&>());
  if (!type) return fail("invalid_request", type.error().message);

  const auto vector_it = doc.find("vector");
  if (vector_it == doc.end()) return fail("invalid_request", "\"vector\" is required");
  // Vectors are 8 bits (SDM Vol. 3A 6.2: 256 vectors).
  const std::optional<uint64_t> vector = integer_in_range(*vector_it, 255);
  if (!vector) return fail("invalid_request", "\"vector\" must be an integer from 0 to 255");

  std::optional<uint32_t> error_code;
  const auto error_code_it = doc.find("error_code");
  if (error_code_it != doc.end()) {
    // The error code is pushed as 32 bits in IA-32e mode (SDM Vol. 3A 6.14.2) and written to the
    // 32-bit VM_ENTRY_EXCEPTION_ERROR_CODE field (SDM Vol. 3C 24.8.3).
    const std::optional<uint64_t> code = integer_in_range(*error_code_it, UINT32_MAX);
    if (!code) return fail("invalid_request", "\"error_code\" must be an integer from 0 to 4294967295");
    error_code = static_cast<uint32_t>(*code);
  }

  const Result<guest::PendingEvent> event =
      guest::make_pending_event(*type, static_cast<uint32_t>(*vector), error_code);
  if (!event) return fail("invalid_event", event.error().message);
  EventRequestResult r;
  r.ok = true;
  r.event = *event;
  return r;
}

}  // namespace lantern::web::api
