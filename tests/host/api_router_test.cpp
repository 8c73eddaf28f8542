// The route matcher and the Api's 404/405/400 answers for paths.
#include <gtest/gtest.h>

#include "api_fake_backend.h"
#include "api_test_util.h"
#include "web/api/api.h"
#include "web/api/router.h"

namespace lantern::web::api {
namespace {

using http::Method;
using testing::body_json;
using testing::FakeBackend;
using testing::get;
using testing::header_value;
using testing::make_request;

http::Response dummy(const RouteContext&) {
  return http::Response{};
}

constexpr Route kTable[] = {
    {Method::kGet, "/a", dummy, "a", "", {}, "", {}, false},
    {Method::kGet, "/a/{vm}", dummy, "avm", "", {}, "", {}, false},
    {Method::kGet, "/a/{vm}/b/{vcpu}/c", dummy, "c", "", {}, "", {}, false},
    {Method::kPost, "/a/{vm}/b/{vcpu}/c", dummy, "cpost", "", {}, "", {}, true},
    {Method::kPost, "/p", dummy, "p", "", {}, "", {}, true},
};

TEST(ApiRouter, MatchesLiteralAndParameterisedPatterns) {
  Match m = match_route(kTable, Method::kGet, "/a");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(m.route->operation_id, "a");

  m = match_route(kTable, Method::kGet, "/a/7");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(m.route->operation_id, "avm");
  EXPECT_TRUE(m.params.has_vm);
  EXPECT_EQ(m.params.vm, 7u);
  EXPECT_FALSE(m.params.has_vcpu);

  m = match_route(kTable, Method::kGet, "/a/4294967295/b/012/c");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(m.route->operation_id, "c");
  EXPECT_EQ(m.params.vm, 4294967295u);
  EXPECT_EQ(m.params.vcpu, 12u);

  m = match_route(kTable, Method::kPost, "/a/1/b/2/c");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(m.route->operation_id, "cpost");
}

TEST(ApiRouter, HeadMatchesGetRoutesOnly) {
  Match m = match_route(kTable, Method::kHead, "/a/1");
  ASSERT_EQ(m.kind, MatchKind::kFound);
  EXPECT_EQ(m.route->operation_id, "avm");
  m = match_route(kTable, Method::kHead, "/p");
  EXPECT_EQ(m.kind, MatchKind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "POST");
}

TEST(ApiRouter, UnknownShapesAreNotFound) {
  for (const char* path : {"", "/", "/b", "/a/", "/a/1/", "/a/1/b", "/a/1/b/2", "/a/1/b/2/c/d", "/a//b/2/c",
                           "//a", "/A", "/a/1/b/2/C"}) {
    EXPECT_EQ(match_route(kTable, Method::kGet, path).kind, MatchKind::kNotFound) << path;
  }
}

TEST(ApiRouter, WrongMethodListsTheAllowedOnes) {
  Match m = match_route(kTable, Method::kDelete, "/a/1/b/2/c");
  EXPECT_EQ(m.kind, MatchKind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, HEAD, POST");
  m = match_route(kTable, Method::kPost, "/a");
  EXPECT_EQ(m.kind, MatchKind::kMethodNotAllowed);
  EXPECT_EQ(m.allow, "GET, HEAD");
}

TEST(ApiRouter, NonDecimalOrOverflowingParametersAreBadParameters) {
  for (const char* path :
       {"/a/x", "/a/-1", "/a/+1", "/a/1.0", "/a/4294967296", "/a/0x10", "/a/%31", "/a/1 "}) {
    const Match m = match_route(kTable, Method::kGet, path);
    EXPECT_EQ(m.kind, MatchKind::kBadParameter) << path;
    EXPECT_NE(m.message.find("{vm}"), std::string::npos) << m.message;
  }
  const Match m = match_route(kTable, Method::kGet, "/a/1/b/x/c");
  EXPECT_EQ(m.kind, MatchKind::kBadParameter);
  EXPECT_NE(m.message.find("{vcpu}"), std::string::npos);
}

TEST(ApiRouter, DecimalParsers) {
  uint64_t v64 = 0;
  EXPECT_TRUE(parse_decimal_u64("18446744073709551615", v64));
  EXPECT_EQ(v64, UINT64_MAX);
  EXPECT_FALSE(parse_decimal_u64("18446744073709551616", v64));
  EXPECT_FALSE(parse_decimal_u64("", v64));
  EXPECT_FALSE(parse_decimal_u64("1a", v64));
  uint32_t v32 = 0;
  EXPECT_TRUE(parse_decimal_u32("00042", v32));
  EXPECT_EQ(v32, 42u);
  EXPECT_FALSE(parse_decimal_u32("4294967296", v32));
}

// The real table through Api: error shape, codes and the Allow header.
TEST(ApiRouter, ApiAnswersUnknownPathsWith404InTheErrorShape) {
  FakeBackend backend;
  Api api(backend, AuthConfig{});
  for (const char* path : {"/", "/api/v1", "/api/v1/", "/api/v2/system", "/api/v1/system/",
                           "/api/v1/vms/0/vcpus", "/api/v1/vms/0/vcpus/0/nope"}) {
    http::Response r = api.handle(get(path));
    EXPECT_EQ(r.status, 404) << path;
    const nlohmann::json j = body_json(r);
    EXPECT_EQ(j["error"]["code"], "not_found") << path;
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_EQ(j.size(), 1u);
    EXPECT_EQ(r.content_type, "application/json; charset=utf-8");
  }
}

TEST(ApiRouter, ApiAnswersWrongMethodWith405AndAllow) {
  FakeBackend backend;
  Api api(backend, AuthConfig{});
  struct Case {
    Method method;
    const char* path;
    const char* allow;
  } cases[] = {
      {Method::kPost, "/api/v1/system", "GET, HEAD"},
      {Method::kDelete, "/api/v1/vcpus", "GET, HEAD"},
      {Method::kPut, "/api/v1/vms/0/vcpus/0/events", "GET, HEAD, POST"},
      {Method::kPost, "/api/v1/vms/0/vcpus/0/regs", "GET, HEAD"},
      {Method::kOptions, "/api/v1/openapi.json", "GET, HEAD"},
  };
  for (const Case& c : cases) {
    http::Response r = api.handle(make_request(c.method, c.path));
    EXPECT_EQ(r.status, 405) << c.path;
    EXPECT_EQ(header_value(r, "allow"), c.allow) << c.path;
    EXPECT_EQ(body_json(r)["error"]["code"], "method_not_allowed");
  }
}

TEST(ApiRouter, ApiAnswersBadPathParametersWith400) {
  FakeBackend backend;
  backend.add_vcpu(0, 0);
  Api api(backend, AuthConfig{});
  http::Response r = api.handle(get("/api/v1/vms/zero/vcpus/0/regs"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(body_json(r)["error"]["code"], "invalid_parameter");
  EXPECT_EQ(backend.snapshot_calls, 0);
}

TEST(ApiRouter, UnknownPathMessageDoesNotEchoControlBytes) {
  FakeBackend backend;
  Api api(backend, AuthConfig{});
  http::Response r = api.handle(get(std::string("/x\x01\xff\n")));
  EXPECT_EQ(r.status, 404);
  const std::string message = body_json(r)["error"]["message"];
  for (char c : message) EXPECT_TRUE(c >= 0x20 && c <= 0x7e) << static_cast<int>(c);
}

}  // namespace
}  // namespace lantern::web::api
