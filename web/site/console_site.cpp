#include "web/site/console_site.h"

#include <string>

namespace lantern::web::site {
namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f(item) for each comma-separated list item, whitespace trimmed, empty items skipped
// (RFC 9110 5.6.1).
template <typename F>
void for_each_list_item(std::string_view list, F&& f) {
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

// The weight of one Accept-Encoding item "coding;q=0.5" (RFC 9110 12.4.2): false for q=0 (any of
// "0", "0.", "0.0", "0.00", "0.000"), true otherwise, including a missing or malformed q.
bool weight_is_nonzero(std::string_view params) {
  while (!params.empty()) {
    const size_t semicolon = params.find(';');
    const std::string_view param = trim(params.substr(0, semicolon));
    if (param.size() >= 2 && lower(param[0]) == 'q' && trim(param.substr(1)).starts_with('=')) {
      std::string_view value = trim(trim(param.substr(1)).substr(1));
      if (value.empty() || value[0] != '0') return true;
      value.remove_prefix(1);
      if (value.empty()) return false;
      if (value[0] != '.') return true;
      for (char c : value.substr(1)) {
        if (c != '0') return true;
      }
      return false;
    }
    if (semicolon == std::string_view::npos) break;
    params.remove_prefix(semicolon + 1);
  }
  return true;
}

}  // namespace

bool accepts_gzip(std::optional<std::string_view> accept_encoding) {
  if (!accept_encoding) return true;  // RFC 9110 12.5.3: no field, any coding is acceptable
  std::optional<bool> gzip, any;
  for_each_list_item(*accept_encoding, [&](std::string_view item) {
    const size_t semicolon = item.find(';');
    const std::string_view coding = trim(item.substr(0, semicolon));
    const bool nonzero = weight_is_nonzero(semicolon == std::string_view::npos ? "" : item.substr(semicolon + 1));
    if (equals_ignore_case(coding, "gzip") || equals_ignore_case(coding, "x-gzip")) {
      gzip = gzip.value_or(false) || nonzero;
    } else if (coding == "*") {
      any = any.value_or(false) || nonzero;
    }
  });
  if (gzip) return *gzip;
  return any.value_or(false);
}

bool if_none_match_matches(std::string_view if_none_match, std::string_view etag) {
  const std::string_view ours = etag.starts_with("W/") ? etag.substr(2) : etag;
  bool matched = false;
  for_each_list_item(if_none_match, [&](std::string_view tag) {
    if (tag == "*") matched = true;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == ours) matched = true;
  });
  return matched;
}

const EmbeddedAsset* find_asset(std::span<const EmbeddedAsset> assets, std::string_view path) {
  for (const EmbeddedAsset& asset : assets) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

http::Response asset_response(const EmbeddedAsset& asset, const http::Request& request) {
  if (request.method != http::Method::kGet && request.method != http::Method::kHead) {
    http::Response r = http::error_response(
        405, "method_not_allowed", std::string(asset.path) + " is a page of the browser console: GET or HEAD only");
    r.headers.push_back({"allow", "GET, HEAD"});
    return r;
  }
  http::Response r;
  r.headers.push_back({"etag", std::string(asset.etag)});
  r.headers.push_back({"cache-control", "no-cache"});
  r.headers.push_back({"vary", "Accept-Encoding"});
  if (const auto tags = request.header("if-none-match"); tags && if_none_match_matches(*tags, asset.etag)) {
    r.status = 304;  // RFC 9110 15.4.5: no body; the validators and Cache-Control are repeated
    r.content_type.clear();
    return r;
  }
  if (!accepts_gzip(request.header("accept-encoding"))) {
    http::Response refused = http::error_response(
        406, "not_acceptable",
        "the console's pages are stored gzip-compressed only and this request's Accept-Encoding "
        "rules gzip out; use a client that accepts gzip (curl --compressed)");
    refused.headers.push_back({"vary", "Accept-Encoding"});
    return refused;
  }
  r.content_type = std::string(asset.content_type);
  r.headers.push_back({"content-encoding", "gzip"});
  r.headers.push_back({"x-content-type-options", "nosniff"});
  // Nothing is loaded from anywhere but the console itself (works offline, and a page that
  // shows guest output cannot be made to run or fetch anything else).
  r.headers.push_back({"content-security-policy",
                       "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                       "frame-ancestors 'none'; form-action 'none'"});
  r.body = std::string(asset.gzip);
  return r;
}

http::Response ConsoleSite::handle(const http::Request& request) {
  if (const EmbeddedAsset* asset = find_asset(assets_, request.path)) return asset_response(*asset, request);
  return api_.handle(request);
}

}  // namespace lantern::web::site
