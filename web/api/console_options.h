// The debug console's settings on the kernel command line (portable, host-tested).
//
//   console.bind=[A.B.C.D][:PORT]   address and TCP port of the HTTP listener. Default
//                                   0.0.0.0:80 (any local address). `console.bind=:8080` keeps
//                                   the address; `console.bind=10.0.2.15` keeps the port.
//                                   `console.bind=off` runs no console at all.
//   console.token=TOKEN             with a token every mutating request (POST) needs
//                                   `Authorization: Bearer TOKEN` (401 otherwise), and so do
//                                   read-only requests unless console.readonly_open=1.
//                                   1..128 characters of RFC 6750 b64token: A-Z a-z 0-9 - . _ ~ + /
//                                   and trailing '='.
//   console.readonly_open=1         with a token, GET/HEAD stay open to everyone.
//
// Strict: a malformed value is an error naming the problem, and the kernel then runs no
// console rather than an unintended one (logged).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kernel/lib/result.h"
#include "net/stack/ip_config.h"

namespace lantern::web::api {

inline constexpr uint16_t kDefaultConsolePort = 80;
inline constexpr size_t kMaxTokenLength = 128;

struct ConsoleOptions {
  bool enabled = true;
  net::Ipv4 bind_address{};  // 0.0.0.0: any local address
  uint16_t port = kDefaultConsolePort;
  std::string token;          // empty: no authentication
  bool readonly_open = false;
};

// kInvalidArgument with a message for a malformed console.bind= or console.token=.
Result<ConsoleOptions> parse_console_options(std::string_view cmdline);

}  // namespace lantern::web::api
