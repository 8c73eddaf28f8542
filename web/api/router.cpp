#include "web/api/router.h"

#include <limits>

namespace lantern::web::api {
namespace {

// Splits off the next '/'-separated segment. Returns false when `rest` is exhausted.
bool next_segment(std::string_view& rest, std::string_view& segment, bool& done) {
  if (done) return false;
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    segment = rest;
    done = true;
  } else {
    segment = rest.substr(0, slash);
    rest = rest.substr(slash + 1);
  }
  return true;
}

enum class ShapeResult : uint8_t { kNoMatch, kMatch, kBadParameter };

ShapeResult match_shape(std::string_view pattern, std::string_view path, PathParams& params,
                        std::string& message) {
  PathParams out;
  bool pattern_done = false, path_done = false;
  std::string_view pattern_segment, path_segment;
  std::string bad;
  while (true) {
    const bool more_pattern = next_segment(pattern, pattern_segment, pattern_done);
    const bool more_path = next_segment(path, path_segment, path_done);
    if (!more_pattern || !more_path) {
      if (more_pattern != more_path) return ShapeResult::kNoMatch;
      break;
    }
    if (!is_path_parameter(pattern_segment)) {
      if (pattern_segment != path_segment) return ShapeResult::kNoMatch;
      continue;
    }
    if (path_segment.empty()) return ShapeResult::kNoMatch;
    const bool is_vm = pattern_segment == "{vm}";
    uint32_t value = 0;
    if (!parse_decimal_u32(path_segment, value)) {
      if (bad.empty()) bad = is_vm ? "vm" : "vcpu";
      continue;
    }
    if (is_vm) {
      out.vm = value;
      out.has_vm = true;
    } else {
      out.vcpu = value;
      out.has_vcpu = true;
    }
  }
  if (!bad.empty()) {
    message = "path parameter {" + bad + "} must be a decimal number from 0 to 4294967295";
    return ShapeResult::kBadParameter;
  }
  params = out;
  return ShapeResult::kMatch;
}

bool method_matches(http::Method route_method, http::Method method) {
  if (route_method == method) return true;
  return route_method == http::Method::kGet && method == http::Method::kHead;
}

template <typename T>
bool parse_decimal(std::string_view text, T& out) {
  if (text.empty() || text.size() > 20) return false;
  T value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const T digit = static_cast<T>(c - '0');
    if (value > (std::numeric_limits<T>::max() - digit) / 10) return false;
    value = static_cast<T>(value * 10 + digit);
  }
  out = value;
  return true;
}

}  // namespace

bool is_path_parameter(std::string_view segment) {
  return segment == "{vm}" || segment == "{vcpu}";
}

bool parse_decimal_u32(std::string_view text, uint32_t& out) {
  return parse_decimal(text, out);
}
bool parse_decimal_u64(std::string_view text, uint64_t& out) {
  return parse_decimal(text, out);
}

Match match_route(std::span<const Route> routes, http::Method method, std::string_view path) {
  Match match;
  bool shape_matched = false;
  bool get_allowed = false, post_allowed = false;
  for (const Route& route : routes) {
    PathParams params;
    std::string message;
    const ShapeResult shape = match_shape(route.pattern, path, params, message);
    if (shape == ShapeResult::kNoMatch) continue;
    if (shape == ShapeResult::kBadParameter) {
      // Every route sharing this shape would reject the same segment.
      match.kind = MatchKind::kBadParameter;
      match.message = std::move(message);
      return match;
    }
    shape_matched = true;
    if (route.method == http::Method::kGet) get_allowed = true;
    if (route.method == http::Method::kPost) post_allowed = true;
    if (method_matches(route.method, method)) {
      match.kind = MatchKind::kFound;
      match.route = &route;
      match.params = params;
      return match;
    }
  }
  if (!shape_matched) return match;
  match.kind = MatchKind::kMethodNotAllowed;
  if (get_allowed) match.allow = "GET, HEAD";
  if (post_allowed) match.allow += match.allow.empty() ? "POST" : ", POST";
  return match;
}

}  // namespace lantern::web::api
