// The API's one route table type and the matcher over it. Portable.
//
// A Route carries everything both the server and the OpenAPI document need: method, path pattern
// ({vm} and {vcpu} are the only parameters), handler, summary, query parameters, request and
// response schemas and whether it changes state (auth). web/api/api.cpp declares the table once;
// the router dispatches from it and web/api/openapi.cpp describes it, so they cannot drift.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "web/http/message.h"

namespace lantern::web::api {

class ConsoleBackend;

// The values of a matched pattern's path parameters.
struct PathParams {
  uint32_t vm = 0;
  uint32_t vcpu = 0;
  bool has_vm = false;
  bool has_vcpu = false;
};

struct RouteContext {
  ConsoleBackend& backend;
  const http::Request& request;
  PathParams params;
};
using RouteHandler = http::Response (*)(const RouteContext& context);

// A query parameter (path parameters are implied by the pattern).
struct QueryParam {
  std::string_view name;
  std::string_view type;  // OpenAPI type: "integer" or "string"
  std::string_view description;
};

struct RouteResponse {
  int status;
  std::string_view description;
  std::string_view schema;  // components/schemas name; "Error" for errors
};

struct Route {
  http::Method method;
  std::string_view pattern;  // "/api/v1/vms/{vm}/vcpus/{vcpu}/regs"
  RouteHandler handler;
  std::string_view operation_id;
  std::string_view summary;
  std::span<const QueryParam> query;
  std::string_view request_schema;  // "" when the route takes no body
  std::span<const RouteResponse> responses;
  bool mutating;  // needs the token whenever one is configured
};

enum class MatchKind : uint8_t {
  kFound,             // route and params are set
  kNotFound,          // no pattern has this shape
  kMethodNotAllowed,  // a pattern matches, not for this method; allow is set
  kBadParameter,      // the shape matches but {vm}/{vcpu} is not a decimal uint32; message is set
};

struct Match {
  MatchKind kind = MatchKind::kNotFound;
  const Route* route = nullptr;
  PathParams params;
  std::string allow;    // "GET, HEAD" / "GET, HEAD, POST" (RFC 9110 10.2.1)
  std::string message;  // for kBadParameter
};

// HEAD matches GET routes (the server sends the headers only).
Match match_route(std::span<const Route> routes, http::Method method, std::string_view path);

// Pattern segments: "{vm}" and "{vcpu}" are parameters, anything else a literal.
bool is_path_parameter(std::string_view segment);
// Decimal uint32 without sign, spaces or leading '+'; leading zeros allowed.
bool parse_decimal_u32(std::string_view text, uint32_t& out);
bool parse_decimal_u64(std::string_view text, uint64_t& out);

}  // namespace lantern::web::api
