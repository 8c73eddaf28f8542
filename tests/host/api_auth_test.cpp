// The auth matrix: no token / token with read-only closed / token with read-only open, for
// read-only and mutating requests, with no, wrong and right credentials.
#include <gtest/gtest.h>

#include "api_fake_backend.h"
#include "api_test_util.h"
#include "web/api/api.h"
#include "web/api/auth.h"

namespace lantern::web::api {
namespace {

using testing::body_json;
using testing::FakeBackend;
using testing::header_value;
using testing::make_request;

constexpr const char* kToken = "s3cret-token";

enum class Credential { kNone, kWrong, kRight, kOtherScheme, kLowerCaseScheme };

http::Request with_credential(http::Request r, Credential c) {
  switch (c) {
    case Credential::kNone: break;
    case Credential::kWrong: r.headers.push_back({"authorization", "Bearer s3cret-tokeN"}); break;
    case Credential::kRight: r.headers.push_back({"authorization", std::string("Bearer ") + kToken}); break;
    case Credential::kOtherScheme:
      r.headers.push_back({"authorization", std::string("Basic ") + kToken});
      break;
    case Credential::kLowerCaseScheme:
      r.headers.push_back({"authorization", std::string("bearer  ") + kToken});
      break;
  }
  return r;
}

http::Request read_request() {
  return make_request(http::Method::kGet, "/api/v1/vcpus");
}
http::Request write_request() {
  return make_request(http::Method::kPost, "/api/v1/vms/0/vcpus/0/events", R"({"type":"nmi","vector":2})",
                      {{"content-type", "application/json"}});
}

TEST(ApiAuth, Matrix) {
  struct Case {
    const char* token;
    bool readonly_open;
    bool mutating;
    Credential credential;
    int status;
  } cases[] = {
      // No token configured: everything is open.
      {"", false, false, Credential::kNone, 200},
      {"", false, true, Credential::kNone, 202},
      {"", false, true, Credential::kWrong, 202},
      // Token, read-only closed.
      {kToken, false, false, Credential::kNone, 401},
      {kToken, false, false, Credential::kWrong, 401},
      {kToken, false, false, Credential::kOtherScheme, 401},
      {kToken, false, false, Credential::kRight, 200},
      {kToken, false, false, Credential::kLowerCaseScheme, 200},
      {kToken, false, true, Credential::kNone, 401},
      {kToken, false, true, Credential::kWrong, 401},
      {kToken, false, true, Credential::kRight, 202},
      // Token, read-only open.
      {kToken, true, false, Credential::kNone, 200},
      {kToken, true, false, Credential::kWrong, 200},
      {kToken, true, true, Credential::kNone, 401},
      {kToken, true, true, Credential::kWrong, 401},
      {kToken, true, true, Credential::kOtherScheme, 401},
      {kToken, true, true, Credential::kRight, 202},
  };
  for (const Case& c : cases) {
    FakeBackend backend;
    backend.add_vcpu(0, 0);
    Api api(backend, AuthConfig{c.token, c.readonly_open});
    http::Response r =
        api.handle(with_credential(c.mutating ? write_request() : read_request(), c.credential));
    SCOPED_TRACE(::testing::Message()
                 << "token=" << c.token << " readonly_open=" << c.readonly_open << " mutating=" << c.mutating
                 << " credential=" << static_cast<int>(c.credential));
    EXPECT_EQ(r.status, c.status);
    if (c.status == 401) {
      EXPECT_EQ(body_json(r)["error"]["code"], "unauthorized");
      EXPECT_EQ(header_value(r, "www-authenticate").rfind("Bearer realm=\"lantern\"", 0), 0u);
      EXPECT_EQ(backend.queue_calls, 0) << "a refused request must not reach the backend";
    }
  }
}

TEST(ApiAuth, WrongTokenSaysInvalidToken) {
  FakeBackend backend;
  Api api(backend, AuthConfig{kToken, false});
  http::Response r = api.handle(with_credential(read_request(), Credential::kWrong));
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(header_value(r, "www-authenticate").find("error=\"invalid_token\""), std::string::npos);
  r = api.handle(read_request());
  EXPECT_EQ(header_value(r, "www-authenticate").find("error="), std::string::npos);
}

TEST(ApiAuth, UnknownRoutesDoNotLeakWithoutTheToken) {
  FakeBackend backend;
  Api api(backend, AuthConfig{kToken, false});
  EXPECT_EQ(api.handle(make_request(http::Method::kGet, "/api/v1/nope")).status, 401);
  EXPECT_EQ(api.handle(make_request(http::Method::kDelete, "/api/v1/system")).status, 401);
  Api open_reads(backend, AuthConfig{kToken, true});
  EXPECT_EQ(open_reads.handle(make_request(http::Method::kGet, "/api/v1/nope")).status, 404);
  // A method other than GET/HEAD counts as mutating even where it is not allowed.
  EXPECT_EQ(open_reads.handle(make_request(http::Method::kDelete, "/api/v1/system")).status, 401);
  EXPECT_EQ(
      open_reads
          .handle(with_credential(make_request(http::Method::kDelete, "/api/v1/system"), Credential::kRight))
          .status,
      405);
}

TEST(ApiAuth, ConstantTimeEquals) {
  EXPECT_TRUE(constant_time_equals("abc", "abc"));
  EXPECT_FALSE(constant_time_equals("abc", "abd"));
  EXPECT_FALSE(constant_time_equals("abc", "ab"));
  EXPECT_FALSE(constant_time_equals("abc", "abcd"));
  EXPECT_FALSE(constant_time_equals("abc", ""));
  EXPECT_FALSE(constant_time_equals("abc", std::string_view("abc\0", 4)));
  EXPECT_TRUE(constant_time_equals("", ""));
}

TEST(ApiAuth, BearerTokenParsing) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("BEARER   abc  "), "abc");
  EXPECT_EQ(bearer_token("Bearer"), std::nullopt);
  EXPECT_EQ(bearer_token("Bearer "), std::nullopt);
  EXPECT_EQ(bearer_token("Bearerabc"), std::nullopt);
  EXPECT_EQ(bearer_token("Basic abc"), std::nullopt);
  EXPECT_EQ(bearer_token(""), std::nullopt);
}

TEST(ApiAuth, ConfigFromTheConsoleOptions) {
  auto options = parse_console_options("loglevel=info console.token=abc console.readonly_open=1");
  ASSERT_TRUE(options.has_value());
  AuthConfig c = auth_config_from(*options);
  EXPECT_EQ(c.token, "abc");
  EXPECT_TRUE(c.readonly_open);
  options = parse_console_options("console.token=a console.token=b== console.readonly_open=0");
  ASSERT_TRUE(options.has_value());
  c = auth_config_from(*options);
  EXPECT_EQ(c.token, "b==");  // the last word wins
  EXPECT_FALSE(c.readonly_open);
  options = parse_console_options("selftest");
  ASSERT_TRUE(options.has_value());
  c = auth_config_from(*options);
  EXPECT_TRUE(c.token.empty());
  EXPECT_FALSE(c.readonly_open);
}

TEST(ApiAuth, TokenIsRedactedFromTheSystemCommandLine) {
  EXPECT_EQ(redact_cmdline("a console.token=s3cret  b\tconsole.token=x console.tokens=y"),
            "a console.token=<redacted>  b\tconsole.token=<redacted> console.tokens=y");
  EXPECT_EQ(redact_cmdline(""), "");
  FakeBackend backend;
  backend.system_summary.cmdline = std::string("loglevel=debug console.token=") + kToken;
  Api api(backend, AuthConfig{kToken, true});
  http::Response r = api.handle(make_request(http::Method::kGet, "/api/v1/system"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(body_json(r)["cmdline"], "loglevel=debug console.token=<redacted>");
  EXPECT_EQ(r.body.find(kToken), std::string::npos);
}

}  // namespace
}  // namespace lantern::web::api
