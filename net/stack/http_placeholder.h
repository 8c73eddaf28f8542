// The placeholder HTTP endpoint on TCP port 80 (portable, host-tested): request framing and the
// response text. The real console (its own issue) replaces this; until then the kernel answers
//
//   GET /api/v1/system  -> 200 {"name":"lantern","version":...,"uptime_ms":...,"cpus":N,
//                               "vmx":{"available":false,...}}
//   a malformed request -> 400 {"error":{"code":"bad_request","message":...}}
//   anything else       -> 404 {"error":{"code":"not_found","message":...}}
//
// always with Content-Type: application/json, Content-Length and Connection: close (RFC 9112
// 9.6: the server closes after the response). JSON is built with nlohmann::json; in the kernel
// it is compiled with JSON_NOEXCEPTION and JSON_NO_IO (cmake/kernel.cmake).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lantern::net::http {

// A request head larger than this is refused with 431-style closing (RFC 6585 5): answered 400.
inline constexpr size_t kMaxRequestHeadBytes = 4096;

// The length of the request head including the blank line that ends it (RFC 9112 2.1: the head
// ends with CRLF CRLF), or nullopt while it is still incomplete.
std::optional<size_t> request_head_length(std::string_view received);

struct SystemInfo {
  std::string_view version;
  uint64_t uptime_ms = 0;
  uint32_t cpus = 0;
  bool vmx_available = false;  // Lantern can run guests
  bool vmx_cpuid = false;      // CPUID.01H:ECX.VMX[bit 5] (Intel SDM Vol. 3C 24.6)
  std::string_view vmx_reason; // why not available
};

struct Response {
  int status = 0;
  std::string text;  // status line, headers, blank line, body
};

// Answers one request head (request line + headers, as received: bytes up to and including the
// blank line, or anything shorter when the client overflowed kMaxRequestHeadBytes).
Response respond(std::string_view request_head, const SystemInfo& info);

// The same, for a head that never completed within kMaxRequestHeadBytes.
Response respond_too_large();

}  // namespace lantern::net::http
