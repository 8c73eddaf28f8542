// The console's JSON API v1 (design.md "The console API, v1"): the one route table, its handlers,
// and Api, the RequestHandler the HTTP server calls. Portable: all hypervisor state comes through
// ConsoleBackend, so the whole API runs under host tests with a fake backend.
//
// Wiring (kernel): construct once, after the backend, and hand it to the server:
//   static KernelConsoleBackend backend(...);
//   static web::api::Api api(backend, web::api::auth_config_from(*web::api::parse_console_options(cmdline)));
//   server.set_handler(&api);   // or however web/http/server.h takes a RequestHandler&
// The Api keeps a reference to the backend; both must outlive the server.
#pragma once

#include <cstddef>
#include <span>

#include "web/api/auth.h"
#include "web/api/console_model.h"
#include "web/api/router.h"
#include "web/http/message.h"

namespace lantern::web::api {

// At most this many bytes of guest console text per GET .../console.
inline constexpr size_t kConsoleMaxBytes = 16 * 1024;
// At most this many log lines per GET /api/v1/log.
inline constexpr size_t kLogMaxLines = 256;

// Every route the API serves, in the order the OpenAPI document lists them.
std::span<const Route> api_routes();

// Maps a backend error to the API's status and error code (design.md):
//   kNotFound -> 404, kTimeout -> 503, kFull -> 429, kInvalidState -> 409,
//   kInvalidArgument -> 400; anything else is a bug -> 500 (never a panic).
http::Response backend_error_response(const Error& error, std::string_view context);

class Api final : public http::RequestHandler {
 public:
  Api(ConsoleBackend& backend, AuthConfig auth);
  http::Response handle(const http::Request& request) override;

  const AuthConfig& auth() const { return auth_; }

 private:
  ConsoleBackend& backend_;
  AuthConfig auth_;
};

}  // namespace lantern::web::api
