// Bearer-token access control for the console (design.md, issue 5 "Security basics"). Portable.
//
// With no token configured the console is open. With `console.token=<t>`:
//   - every mutating request needs `Authorization: Bearer <t>` (RFC 6750 2.1);
//   - read-only requests (GET, HEAD) need it too unless `console.readonly_open=1`.
// A refused request gets 401 in the API's error shape with a `WWW-Authenticate: Bearer` challenge
// (RFC 6750 3). The token is compared in time that depends only on the configured token's length.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "web/api/console_options.h"
#include "web/http/message.h"

namespace lantern::web::api {

struct AuthConfig {
  std::string token;           // "" = no token: everything is open
  bool readonly_open = false;  // with a token, GET/HEAD stay open
};

// From the console's command-line options (console_options.h: `console.token=`, validated, and
// `console.readonly_open=1`).
AuthConfig auth_config_from(const ConsoleOptions& options);

// The command line with every `console.token=` value replaced by "<redacted>", for GET /system
// (which may be open to readers without the token).
std::string redact_cmdline(std::string_view cmdline);

// Equal strings -> true. Runs over all of `expected` whatever `given` is.
bool constant_time_equals(std::string_view expected, std::string_view given);

// The token from an `Authorization` value: scheme "Bearer" (case-insensitive, RFC 9110 11.1),
// one or more spaces, then the token. nullopt for another scheme or an empty token.
std::optional<std::string_view> bearer_token(std::string_view authorization);

// nullopt when the request may proceed, else the 401 response.
std::optional<http::Response> check_auth(const AuthConfig& config, const http::Request& request,
                                         bool mutating);

}  // namespace lantern::web::api
