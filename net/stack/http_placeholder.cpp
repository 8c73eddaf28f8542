#include "net/stack/http_placeholder.h"

#include <nlohmann/json.hpp>

namespace lantern::net::http {
namespace {

using nlohmann::json;

const char* reason_phrase(int status) {
  switch (status) {  // RFC 9110 15
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    default: return "Internal Server Error";
  }
}

Response make_response(int status, const json& body) {
  const std::string payload = body.dump();
  Response r;
  r.status = status;
  r.text.reserve(payload.size() + 160);
  r.text += "HTTP/1.1 ";
  r.text += std::to_string(status);
  r.text += ' ';
  r.text += reason_phrase(status);
  r.text += "\r\nContent-Type: application/json\r\nContent-Length: ";
  r.text += std::to_string(payload.size());
  r.text += "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
  r.text += payload;
  return r;
}

Response error_response(int status, const char* code, const char* message) {
  return make_response(status, json{{"error", {{"code", code}, {"message", message}}}});
}

bool is_token_char(char c) {  // RFC 9110 5.6.2 tchar, enough for methods
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '!' || c == '~' || c == '*' || c == '+' || c == '\'' ||
         c == '#' || c == '$' || c == '%' || c == '&' || c == '^' || c == '`' || c == '|';
}

}  // namespace

std::optional<size_t> request_head_length(std::string_view received) {
  const size_t end = received.find("\r\n\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  return end + 4;
}

Response respond(std::string_view head, const SystemInfo& info) {
  // Request line, RFC 9112 3: method SP request-target SP HTTP-version CRLF.
  const size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) return error_response(400, "bad_request", "incomplete request line");
  const std::string_view line = head.substr(0, eol);
  const size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) {
    return error_response(400, "bad_request", "malformed request line");
  }
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1 || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return error_response(400, "bad_request", "malformed request line");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  for (char c : method) {
    if (!is_token_char(c)) return error_response(400, "bad_request", "malformed method");
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return error_response(400, "bad_request", "unsupported HTTP version");
  }
  if (target.empty() || target[0] != '/') {
    return error_response(400, "bad_request", "request target must be an absolute path");
  }
  const std::string_view path = target.substr(0, target.find('?'));
  if (method == "GET" && path == "/api/v1/system") {
    json vmx = {{"available", info.vmx_available}, {"cpuid_vmx", info.vmx_cpuid}};
    if (!info.vmx_available) vmx["reason"] = std::string(info.vmx_reason);
    json body = {{"name", "lantern"},
                 {"version", std::string(info.version)},
                 {"uptime_ms", info.uptime_ms},
                 {"cpus", info.cpus},
                 {"vmx", std::move(vmx)}};
    return make_response(200, body);
  }
  return error_response(404, "not_found", "no such resource (this placeholder serves GET /api/v1/system)");
}

Response respond_too_large() {
  return error_response(400, "bad_request", "request head larger than 4096 bytes");
}

}  // namespace lantern::net::http
