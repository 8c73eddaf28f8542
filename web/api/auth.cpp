#include "web/api/auth.h"

#include "kernel/boot/cmdline.h"

namespace lantern::web::api {
namespace {

using http::error_response;

constexpr std::string_view kTokenKey = "console.token";

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// RFC 6750 3: the challenge; error="invalid_token" when a token was sent but is wrong.
http::Response unauthorized(bool token_sent) {
  http::Response r =
      error_response(401, "unauthorized",
                     token_sent ? "the bearer token is not valid for this console"
                                : "this console needs a token: send 'Authorization: Bearer <console.token>'");
  r.headers.push_back({"www-authenticate", token_sent ? "Bearer realm=\"lantern\", error=\"invalid_token\""
                                                      : "Bearer realm=\"lantern\""});
  return r;
}

}  // namespace

AuthConfig auth_config_from(const ConsoleOptions& options) {
  return AuthConfig{options.token, options.readonly_open};
}

std::string redact_cmdline(std::string_view cmdline) {
  // Same word splitting as kernel/boot/cmdline.h: ASCII space, tab, CR, LF.
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  const std::string prefix = std::string(kTokenKey) + "=";
  std::string out;
  size_t i = 0;
  while (i < cmdline.size()) {
    if (is_space(cmdline[i])) {
      out += cmdline[i++];
      continue;
    }
    size_t end = i;
    while (end < cmdline.size() && !is_space(cmdline[end])) ++end;
    const std::string_view word = cmdline.substr(i, end - i);
    if (word.substr(0, prefix.size()) == prefix) {
      out += prefix;
      out += "<redacted>";
    } else {
      out += word;
    }
    i = end;
  }
  return out;
}

bool constant_time_equals(std::string_view expected, std::string_view given) {
  // The loop runs over `expected` only, so the time does not reveal how much of `given` matched
  // (nor its length beyond "longer or shorter").
  unsigned diff = expected.size() == given.size() ? 0u : 1u;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0u;
    diff |= static_cast<unsigned char>(expected[i]) ^ g;
  }
  return diff == 0;
}

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (lower(authorization[i]) != kScheme[i]) return std::nullopt;
  }
  std::string_view rest = authorization.substr(kScheme.size());
  if (rest.front() != ' ') return std::nullopt;
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  if (rest.empty()) return std::nullopt;
  return rest;
}

std::optional<http::Response> check_auth(const AuthConfig& config, const http::Request& request,
                                         bool mutating) {
  if (config.token.empty()) return std::nullopt;
  if (!mutating && config.readonly_open) return std::nullopt;
  const std::optional<std::string_view> authorization = request.header("authorization");
  if (!authorization) return unauthorized(false);
  const std::optional<std::string_view> token = bearer_token(*authorization);
  if (!token) return unauthorized(false);
  if (!constant_time_equals(config.token, *token)) return unauthorized(true);
  return std::nullopt;
}

}  // namespace lantern::web::api
