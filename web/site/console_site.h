// The console's front door: serves the browser UI's embedded files (embedded_asset.h) at `/` and
// `/ui/...`, and hands every other request to the API (web/api/api.h).
//
// The files are public: they hold no hypervisor state, and the page must load before it can ask
// for a token. Everything the page shows comes through the API, with the token when one is set.
//
// Representation (docs/api.md "The browser console"): the files exist only gzip-compressed
// (RFC 9110 8.4.1). A client that sends no Accept-Encoding accepts any coding (RFC 9110 12.5.3)
// and gets gzip; one whose Accept-Encoding rules gzip out gets 406 not_acceptable with a message
// (keeping an uncompressed copy would double the image for clients no browser is). Every answer
// carries a strong ETag, `Cache-Control: no-cache` (reuse only after revalidation, so a new kernel
// shows its new UI at once) and `Vary: Accept-Encoding`; If-None-Match with a matching tag
// answers 304 (RFC 9110 13.1.2, 15.4.5).
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "web/http/message.h"
#include "web/site/embedded_asset.h"

namespace lantern::web::site {

// True when a client with this Accept-Encoding (nullopt: the header is absent) takes gzip:
// absent header, "gzip"/"x-gzip" or "*" with q > 0, unless gzip itself is listed with q=0
// (RFC 9110 12.5.3, 12.4.2).
bool accepts_gzip(std::optional<std::string_view> accept_encoding);

// True when an If-None-Match field value matches `etag`: "*", or any listed tag equal to it
// under the weak comparison (a W/ prefix ignored), RFC 9110 13.1.2 and 8.8.3.2.
bool if_none_match_matches(std::string_view if_none_match, std::string_view etag);

// The asset served at `path`, or nullptr.
const EmbeddedAsset* find_asset(std::span<const EmbeddedAsset> assets, std::string_view path);

// The answer to a request for `asset` (GET or HEAD; other methods get 405 with Allow).
http::Response asset_response(const EmbeddedAsset& asset, const http::Request& request);

class ConsoleSite final : public http::RequestHandler {
 public:
  ConsoleSite(http::RequestHandler& api, std::span<const EmbeddedAsset> assets) : api_(api), assets_(assets) {}
  http::Response handle(const http::Request& request) override;

 private:
  http::RequestHandler& api_;
  std::span<const EmbeddedAsset> assets_;
};

}  // namespace lantern::web::site
