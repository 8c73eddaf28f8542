#include "web/api/console_options.h"

#include "kernel/boot/cmdline.h"

namespace lantern::web::api {
namespace {

// RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool valid_token(std::string_view token) {
  if (token.empty() || token.size() > kMaxTokenLength) return false;
  size_t i = 0;
  for (; i < token.size(); ++i) {
    const char c = token[i];
    const bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && c != '-' && c != '.' && c != '_' && c != '~' && c != '+' && c != '/') break;
  }
  if (i == 0) return false;
  for (; i < token.size(); ++i) {
    if (token[i] != '=') return false;
  }
  return true;
}

Result<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return make_error(ErrorCode::kInvalidArgument, "console.bind: bad port");
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return make_error(ErrorCode::kInvalidArgument, "console.bind: bad port");
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value == 0 || value > 65535)
    return make_error(ErrorCode::kInvalidArgument, "console.bind: port must be 1-65535", value);
  return static_cast<uint16_t>(value);
}

}  // namespace

Result<ConsoleOptions> parse_console_options(std::string_view cmdline) {
  ConsoleOptions options;
  if (auto bind = cmdline_value(cmdline, "console.bind")) {
    const std::string_view value = *bind;
    if (value == "off" || value == "none") {
      options.enabled = false;
    } else {
      const size_t colon = value.find(':');
      const std::string_view address = value.substr(0, colon);
      if (!address.empty()) {
        auto parsed = net::parse_ipv4(address);
        if (!parsed) return make_error(ErrorCode::kInvalidArgument, "console.bind: bad IPv4 address");
        options.bind_address = *parsed;
      }
      if (colon != std::string_view::npos) {
        options.port = TRY(parse_port(value.substr(colon + 1)));
      } else if (address.empty()) {
        return make_error(ErrorCode::kInvalidArgument, "console.bind: empty (use ADDR, :PORT, ADDR:PORT or off)");
      }
    }
  }
  if (auto token = cmdline_value(cmdline, "console.token")) {
    if (!valid_token(*token)) {
      return make_error(ErrorCode::kInvalidArgument,
                        "console.token: 1-128 characters of A-Z a-z 0-9 - . _ ~ + / (then '=' padding)");
    }
    options.token = std::string(*token);
  }
  options.readonly_open = cmdline_has_flag(cmdline, "console.readonly_open");
  return options;
}

}  // namespace lantern::web::api
