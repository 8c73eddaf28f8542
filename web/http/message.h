// HTTP/1.1 messages as the console's server hands them to the application, and the one seam
// between the server (web/http/) and the API (web/api/): RequestHandler. Portable.
//
// The server (web/http/server.h) owns framing: parsing with http-parser, keep-alive, pipelining,
// HEAD (headers only, same Content-Length as GET), limits (431/413/414), timeouts and writing.
// The handler only sees a complete, size-checked request and returns a Response.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lantern::web::http {

enum class Method : uint8_t { kGet, kHead, kPost, kPut, kDelete, kPatch, kOptions, kOther };
std::string_view method_name(Method m);

struct Header {
  std::string name;  // lower-case (RFC 9110 5.1: field names are case-insensitive)
  std::string value; // leading/trailing whitespace removed
};

struct Request {
  Method method = Method::kGet;
  std::string method_text;  // as sent ("GET", "BREW", ...)
  std::string target;       // request-target as sent: "/api/v1/vcpus?x=1"
  std::string path;         // target up to '?', percent-decoding NOT applied
  std::string query;        // after '?', without it ("" when absent)
  unsigned http_major = 1;
  unsigned http_minor = 1;
  std::vector<Header> headers;
  std::string body;
  std::string peer;  // "10.0.2.2:51234", for the log; may be empty

  // First header with this (case-insensitive) name.
  std::optional<std::string_view> header(std::string_view name) const;
  // The value of ?key=value in the query ("" for a bare key), nullopt when absent. No decoding
  // beyond %XX and '+'.
  std::optional<std::string> query_param(std::string_view key) const;
};

// A large body produced piece by piece (the VMCS dump): the server asks for the next piece
// while the TCP send buffer has room and sends the body with chunked transfer coding (RFC 9112
// 7.1) for HTTP/1.1 clients, or with Connection: close framing for HTTP/1.0 clients.
class BodySource {
 public:
  virtual ~BodySource() = default;
  // Appends the next piece to `out` (at most about `max_bytes`). Returns false when the body has
  // ended (nothing more will be appended).
  virtual bool next(std::string& out, size_t max_bytes) = 0;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json; charset=utf-8";
  std::vector<Header> headers;  // extra headers, e.g. {"allow", "GET, POST"}
  std::string body;             // used when `stream` is null
  std::unique_ptr<BodySource> stream;

  bool close_after = false;  // the server closes the connection after this response
};

// "OK", "Not Found", ... (RFC 9110 15); "Unknown" for codes it does not know.
std::string_view reason_phrase(int status);

// The one error shape of the API (design.md): {"error": {"code": "<snake_case>", "message": ...}}
// with the JSON content type. The server uses it for framing errors (400, 408, 413, 414, 431),
// the API for everything else.
Response error_response(int status, std::string_view code, std::string_view message);

// The application behind the server. Called on the core that owns lwIP, once per complete
// request, in arrival order per connection. May take time (a snapshot from another core is
// bounded by the backend's own timeout) but must always return.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  virtual Response handle(const Request& request) = 0;
};

}  // namespace lantern::web::http
