// The console's front door (web/site/console_site.h): the embedded browser UI at `/` and `/ui/...`
// with gzip, ETag, Cache-Control and 304, everything else handed to the API; and the real
// embedded table that tools/embed_ui.py generated from web/ui/.
#include "web/site/console_site.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>
#include <string>

#include "web/http/http_connection.h"

namespace lantern::web::site {
namespace {

using http::Method;
using http::Request;
using http::Response;

TEST(ConsoleSiteAcceptEncoding, GzipWhenTheClientTakesIt) {
  struct Case {
    std::optional<std::string_view> header;
    bool gzip;
  };
  const Case cases[] = {
      {std::nullopt, true},                   // no field: any coding (RFC 9110 12.5.3)
      {"gzip, deflate, br, zstd", true},      // Chromium
      {"GZIP", true},                         // codings are case-insensitive
      {"x-gzip", true},
      {"deflate, gzip;q=0.5", true},
      {"*", true},
      {"identity", false},
      {"", false},                            // empty field: identity only
      {"gzip;q=0", false},
      {"gzip; q=0.000, identity", false},
      {"*;q=0", false},
      {"*, gzip;q=0", false},                 // gzip's own weight wins over *
      {"br", false},
      {"gzip;q=0.001", true},
      {"gzip;q=1.0", true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(accepts_gzip(c.header), c.gzip) << (c.header ? std::string(*c.header) : "(absent)");
  }
}

TEST(ConsoleSiteIfNoneMatch, WeakComparisonOverTheList) {
  constexpr std::string_view kTag = "\"abc123\"";
  EXPECT_TRUE(if_none_match_matches("\"abc123\"", kTag));
  EXPECT_TRUE(if_none_match_matches("W/\"abc123\"", kTag));
  EXPECT_TRUE(if_none_match_matches("\"x\", \"abc123\"", kTag));
  EXPECT_TRUE(if_none_match_matches("*", kTag));
  EXPECT_FALSE(if_none_match_matches("\"abc12\"", kTag));
  EXPECT_FALSE(if_none_match_matches("abc123", kTag));  // unquoted is not the same tag
  EXPECT_FALSE(if_none_match_matches("", kTag));
}

// Answers every request with 200 "api:<path>", so forwarding is visible.
class FakeApi final : public http::RequestHandler {
 public:
  Response handle(const Request& request) override {
    ++calls;
    Response r;
    r.body = "api:" + request.path;
    return r;
  }
  int calls = 0;
};

constexpr EmbeddedAsset kAssets[] = {
    {"/", "text/html; charset=utf-8", "\"tag-index\"", std::string_view("\x1f\x8b\x08\x00index", 9), 300},
    {"/ui/app.css", "text/css; charset=utf-8", "\"tag-css\"", std::string_view("\x1f\x8b\x08\x00css", 7), 100},
};

Request get(std::string path, Method method = Method::kGet) {
  Request r;
  r.method = method;
  r.method_text = std::string(http::method_name(method));
  r.path = std::move(path);
  r.target = r.path;
  return r;
}

std::string header_of(const Response& r, std::string_view name) {
  for (const http::Header& h : r.headers) {
    if (h.name == name) return h.value;
  }
  return "";
}

TEST(ConsoleSite, ServesTheIndexGzippedWithValidators) {
  FakeApi api;
  ConsoleSite site(api, kAssets);
  Request request = get("/");
  request.headers.push_back({"accept-encoding", "gzip, deflate"});
  const Response r = site.handle(request);
  EXPECT_EQ(api.calls, 0);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(r.body, kAssets[0].gzip);
  EXPECT_EQ(header_of(r, "content-encoding"), "gzip");
  EXPECT_EQ(header_of(r, "etag"), "\"tag-index\"");
  EXPECT_EQ(header_of(r, "cache-control"), "no-cache");
  EXPECT_EQ(header_of(r, "vary"), "Accept-Encoding");
  EXPECT_NE(header_of(r, "content-security-policy").find("default-src 'self'"), std::string::npos);
}

TEST(ConsoleSite, HeadIsServedLikeGet) {
  FakeApi api;
  ConsoleSite site(api, kAssets);
  const Response r = site.handle(get("/ui/app.css", Method::kHead));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, kAssets[1].gzip);  // the connection sends the head only, with this length
  EXPECT_EQ(r.content_type, "text/css; charset=utf-8");
}

TEST(ConsoleSite, MatchingIfNoneMatchAnswers304WithoutABody) {
  FakeApi api;
  ConsoleSite site(api, kAssets);
  Request request = get("/ui/app.css");
  request.headers.push_back({"if-none-match", "\"old\", W/\"tag-css\""});
  const Response r = site.handle(request);
  EXPECT_EQ(r.status, 304);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(header_of(r, "etag"), "\"tag-css\"");
  EXPECT_EQ(header_of(r, "cache-control"), "no-cache");

  request.headers.back().value = "\"old\"";
  EXPECT_EQ(site.handle(request).status, 200);
}

TEST(ConsoleSite, AClientThatRefusesGzipGets406WithTheErrorShape) {
  FakeApi api;
  ConsoleSite site(api, kAssets);
  Request request = get("/");
  request.headers.push_back({"accept-encoding", "identity"});
  const Response r = site.handle(request);
  EXPECT_EQ(r.status, 406);
  const nlohmann::json body = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_FALSE(body.is_discarded());
  EXPECT_EQ(body["error"]["code"], "not_acceptable");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("curl --compressed"), std::string::npos);
}

TEST(ConsoleSite, OtherMethodsOnAPageAre405WithAllow) {
  FakeApi api;
  ConsoleSite site(api, kAssets);
  const Response r = site.handle(get("/", Method::kPost));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header_of(r, "allow"), "GET, HEAD");
  EXPECT_EQ(api.calls, 0);
}

TEST(ConsoleSite, EverythingElseGoesToTheApi) {
  FakeApi api;
  ConsoleSite site(api, kAssets);
  for (const char* path : {"/api/v1/vcpus", "/ui/missing.mjs", "/index.html", "/ui/app.css/x", "/favicon.ico"}) {
    const Response r = site.handle(get(path));
    EXPECT_EQ(r.body, std::string("api:") + path);
  }
  EXPECT_EQ(api.calls, 5);
}

TEST(ConsoleSite, PagesKeepTheirCacheControlOnTheWireAndApiAnswersStayNoStore) {
  FakeApi api;
  ConsoleSite site(api, kAssets);
  http::ConnectionLimits limits;
  http::HttpConnection conn(site, limits, 0, nullptr);
  conn.on_receive("GET /ui/app.css HTTP/1.1\r\nHost: x\r\n\r\nGET /api/v1/system HTTP/1.1\r\nHost: x\r\n\r\n", 0);
  std::string wire;
  for (std::string_view v = conn.peek_output(65535); !v.empty(); v = conn.peek_output(65535)) {
    wire.append(v);
    conn.consume_output(v.size(), 0);
  }
  const size_t second = wire.find("HTTP/1.1 200", 1);
  ASSERT_NE(second, std::string::npos) << wire;
  const std::string page = wire.substr(0, second);
  const std::string api_answer = wire.substr(second);
  EXPECT_NE(page.find("cache-control: no-cache\r\n"), std::string::npos) << page;
  EXPECT_EQ(page.find("no-store"), std::string::npos) << page;
  EXPECT_NE(page.find("content-encoding: gzip\r\n"), std::string::npos) << page;
  EXPECT_NE(page.find("Content-Length: 7\r\n"), std::string::npos) << page;
  EXPECT_NE(api_answer.find("Cache-Control: no-store\r\n"), std::string::npos) << api_answer;
}

// The table the build embedded from web/ui/ (tools/embed_ui.py).
TEST(ConsoleSiteEmbeddedUi, EveryFileIsGzipWithAUniqueTagAndTheFirstLoadFitsTheBudget) {
  const auto assets = ui_assets();
  ASSERT_NE(find_asset(assets, "/"), nullptr);
  EXPECT_EQ(find_asset(assets, "/")->content_type, "text/html; charset=utf-8");
  ASSERT_NE(find_asset(assets, "/ui/js/main.mjs"), nullptr);
  EXPECT_EQ(find_asset(assets, "/ui/js/main.mjs")->content_type, "text/javascript; charset=utf-8");
  ASSERT_NE(find_asset(assets, "/ui/app.css"), nullptr);
  std::set<std::string_view> tags;
  size_t total = 0;
  for (const EmbeddedAsset& a : assets) {
    ASSERT_GE(a.gzip.size(), 18u) << a.path;  // RFC 1952: 10-byte header + 8-byte trailer
    EXPECT_EQ(static_cast<unsigned char>(a.gzip[0]), 0x1f) << a.path;
    EXPECT_EQ(static_cast<unsigned char>(a.gzip[1]), 0x8b) << a.path;
    EXPECT_EQ(a.gzip[2], 8) << a.path;  // CM = deflate
    EXPECT_TRUE(a.path == "/" || a.path.starts_with("/ui/")) << a.path;
    EXPECT_FALSE(a.path.starts_with("/ui/test/")) << "unit tests are not part of the page: " << a.path;
    EXPECT_TRUE(tags.insert(a.etag).second) << "duplicate ETag " << a.etag;
    total += a.gzip.size();
  }
  EXPECT_LE(total, 150000u) << "the page's first load is over budget";
}

}  // namespace
}  // namespace lantern::web::site
