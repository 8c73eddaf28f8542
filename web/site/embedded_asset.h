// The browser console's files (web/ui/), embedded in the kernel image at build time.
// tools/embed_ui.py gzips each file and generates the table ui_assets() returns
// (build/generated/web/ui_assets.cpp); nothing here is written by hand except this declaration.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace lantern::web::site {

struct EmbeddedAsset {
  std::string_view path;          // URL path: "/" for index.html, "/ui/<file>" for the rest
  std::string_view content_type;  // "text/javascript; charset=utf-8", ...
  std::string_view etag;          // strong entity tag of the gzip bytes, quotes included (RFC 9110 8.8.3)
  std::string_view gzip;          // the file, gzip-compressed (RFC 1952)
  size_t identity_size;           // the file's size before compression
};

// Every embedded file, sorted by path.
std::span<const EmbeddedAsset> ui_assets();

}  // namespace lantern::web::site
