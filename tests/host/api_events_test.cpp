// GET/POST .../events: body validation (every rule), status codes and the queue position.
#include <gtest/gtest.h>

#include "api_fake_backend.h"
#include "api_test_util.h"
#include "web/api/api.h"
#include "web/api/event_request.h"

namespace lantern::web::api {
namespace {

using nlohmann::json;
using testing::body_json;
using testing::FakeBackend;
using testing::get;
using testing::header_value;
using testing::make_request;
using testing::post_json;

constexpr const char* kEvents = "/api/v1/vms/0/vcpus/0/events";

class ApiEvents : public ::testing::Test {
 protected:
  ApiEvents() : api(backend, AuthConfig{}) {
    backend.add_vcpu(0, 0);
    backend.add_vcpu(0, 1, VcpuState::kStopped);
  }
  FakeBackend backend;
  Api api;
};

TEST(ApiEventRequest, AcceptsEveryArchitecturallyValidEvent) {
  struct Case {
    const char* body;
    guest::PendingEventType type;
    uint8_t vector;
    std::optional<uint32_t> error_code;
  } cases[] = {
      {R"({"type":"interrupt","vector":32})", guest::PendingEventType::kExternalInterrupt, 32, std::nullopt},
      {R"({"type":"interrupt","vector":16})", guest::PendingEventType::kExternalInterrupt, 16, std::nullopt},
      {R"({"type":"interrupt","vector":255})", guest::PendingEventType::kExternalInterrupt, 255, std::nullopt},
      {R"({"type":"nmi","vector":2})", guest::PendingEventType::kNmi, 2, std::nullopt},
      {R"({"type":"exception","vector":0})", guest::PendingEventType::kHardwareException, 0, std::nullopt},
      {R"({"type":"exception","vector":6})", guest::PendingEventType::kHardwareException, 6, std::nullopt},
      {R"({"type":"exception","vector":31})", guest::PendingEventType::kHardwareException, 31, std::nullopt},
      {R"({"vector":13,"error_code":0,"type":"exception"})", guest::PendingEventType::kHardwareException, 13,
       0u},
      {R"({"type":"exception","vector":14,"error_code":4294967295})",
       guest::PendingEventType::kHardwareException, 14, 0xffffffffu},
  };
  for (const Case& c : cases) {
    const EventRequestResult r = parse_event_request(c.body);
    ASSERT_TRUE(r.ok) << c.body << ": " << r.error.message;
    EXPECT_EQ(r.event.type, c.type) << c.body;
    EXPECT_EQ(r.event.vector, c.vector) << c.body;
    EXPECT_EQ(r.event.has_error_code, c.error_code.has_value()) << c.body;
    EXPECT_EQ(r.event.error_code, c.error_code.value_or(0)) << c.body;
  }
}

// SDM Vol. 3A 6.3.1, Table 6-1: vectors with an error code need one; the others refuse one.
TEST(ApiEventRequest, ExceptionErrorCodeExactlyForVectorsThatHaveOne) {
  for (uint32_t vector = 0; vector < 32; ++vector) {
    if (vector == 2) continue;
    const bool has = vector == 8 || (vector >= 10 && vector <= 14) || vector == 17 || vector == 21;
    const std::string base = R"({"type":"exception","vector":)" + std::to_string(vector);
    const EventRequestResult with = parse_event_request(base + R"(,"error_code":5})");
    const EventRequestResult without = parse_event_request(base + "}");
    EXPECT_EQ(with.ok, has) << vector;
    EXPECT_EQ(without.ok, !has) << vector;
    const EventRequestResult& refused = has ? without : with;
    EXPECT_EQ(refused.error.code, "invalid_event") << vector;
  }
}

TEST(ApiEventRequest, RefusesEveryInvalidBody) {
  struct Case {
    const char* body;
    const char* code;
  } cases[] = {
      {"", "invalid_json"},
      {"{", "invalid_json"},
      {R"({"type":"nmi","vector":2,})", "invalid_json"},
      {"[1,2]", "invalid_request"},
      {"\"nmi\"", "invalid_request"},
      {"null", "invalid_request"},
      {R"({})", "invalid_request"},
      {R"({"vector":32})", "invalid_request"},
      {R"({"type":"interrupt"})", "invalid_request"},
      {R"({"type":5,"vector":32})", "invalid_request"},
      {R"({"type":"INTERRUPT","vector":32})", "invalid_request"},
      {R"({"type":"external_interrupt","vector":32})", "invalid_request"},
      {R"({"type":"interrupt","vector":"32"})", "invalid_request"},
      {R"({"type":"interrupt","vector":32.0})", "invalid_request"},
      {R"({"type":"interrupt","vector":32.5})", "invalid_request"},
      {R"({"type":"interrupt","vector":-1})", "invalid_request"},
      {R"({"type":"interrupt","vector":256})", "invalid_request"},
      {R"({"type":"interrupt","vector":18446744073709551616})", "invalid_request"},
      {R"({"type":"interrupt","vector":null})", "invalid_request"},
      {R"({"type":"interrupt","vector":true})", "invalid_request"},
      {R"({"type":"interrupt","vector":32,"priority":1})", "invalid_request"},
      {R"({"type":"exception","vector":13,"error-code":0})", "invalid_request"},
      {R"({"type":"exception","vector":13,"error_code":"0"})", "invalid_request"},
      {R"({"type":"exception","vector":13,"error_code":-1})", "invalid_request"},
      {R"({"type":"exception","vector":13,"error_code":4294967296})", "invalid_request"},
      {R"({"type":"exception","vector":13,"error_code":null})", "invalid_request"},
      // Architectural rules.
      {R"({"type":"nmi","vector":3})", "invalid_event"},
      {R"({"type":"nmi","vector":2,"error_code":0})", "invalid_event"},
      {R"({"type":"exception","vector":2})", "invalid_event"},
      {R"({"type":"exception","vector":32})", "invalid_event"},
      {R"({"type":"exception","vector":14})", "invalid_event"},
      {R"({"type":"exception","vector":3,"error_code":0})", "invalid_event"},
      {R"({"type":"interrupt","vector":15})", "invalid_event"},
      {R"({"type":"interrupt","vector":0})", "invalid_event"},
      {R"({"type":"interrupt","vector":32,"error_code":0})", "invalid_event"},
  };
  for (const Case& c : cases) {
    const EventRequestResult r = parse_event_request(c.body);
    EXPECT_FALSE(r.ok) << c.body;
    EXPECT_EQ(r.error.code, c.code) << c.body;
    EXPECT_FALSE(r.error.message.empty()) << c.body;
  }
}

TEST(ApiEventRequest, JsonMediaTypes) {
  EXPECT_TRUE(is_json_media_type("application/json"));
  EXPECT_TRUE(is_json_media_type("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(is_json_media_type("application/json ;charset=UTF-8"));
  EXPECT_FALSE(is_json_media_type("application/x-www-form-urlencoded"));
  EXPECT_FALSE(is_json_media_type("text/json"));
  EXPECT_FALSE(is_json_media_type("application/jsonx"));
  EXPECT_FALSE(is_json_media_type(""));
}

TEST_F(ApiEvents, PostAnswers202WithThePositionAndGetListsTheQueue) {
  http::Response r = api.handle(post_json(kEvents, R"({"type":"interrupt","vector":48})"));
  ASSERT_EQ(r.status, 202);
  json j = body_json(r);
  EXPECT_EQ(j["position"], 0);
  EXPECT_EQ(j["capacity"], 8);
  EXPECT_EQ(j["event"], (json{{"type", "interrupt"}, {"vector", 48}, {"error_code", nullptr}}));

  // An exception goes ahead of the interrupt (delivery order, guest/pending_events.h).
  r = api.handle(post_json(kEvents, R"({"type":"exception","vector":13,"error_code":16})"));
  ASSERT_EQ(r.status, 202);
  EXPECT_EQ(body_json(r)["position"], 0);
  r = api.handle(post_json(kEvents, R"({"type":"nmi","vector":2})"));
  EXPECT_EQ(body_json(r)["position"], 1);

  r = api.handle(get(kEvents));
  ASSERT_EQ(r.status, 200);
  j = body_json(r);
  EXPECT_EQ(j["count"], 3);
  EXPECT_EQ(j["capacity"], 8);
  ASSERT_EQ(j["events"].size(), 3u);
  EXPECT_EQ(j["events"][0],
            (json{{"type", "exception"}, {"vector", 13}, {"error_code", 16}, {"position", 0}}));
  EXPECT_EQ(j["events"][1]["type"], "nmi");
  EXPECT_EQ(j["events"][2]["type"], "interrupt");
  EXPECT_EQ(j["events"][2]["position"], 2);
}

TEST_F(ApiEvents, QueueFullIs429) {
  for (int i = 0; i < 8; ++i) {
    http::Response r = api.handle(post_json(kEvents, R"({"type":"interrupt","vector":40})"));
    ASSERT_EQ(r.status, 202);
    EXPECT_EQ(body_json(r)["position"], i);
  }
  http::Response r = api.handle(post_json(kEvents, R"({"type":"interrupt","vector":40})"));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(body_json(r)["error"]["code"], "event_queue_full");
  EXPECT_EQ(header_value(r, "retry-after"), "1");
}

TEST_F(ApiEvents, StoppedVcpuIs409) {
  http::Response r = api.handle(post_json("/api/v1/vms/0/vcpus/1/events", R"({"type":"nmi","vector":2})"));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(body_json(r)["error"]["code"], "vcpu_stopped");
}

TEST_F(ApiEvents, UnknownVcpuIs404BeforeTheBodyIsRead) {
  http::Response r = api.handle(post_json("/api/v1/vms/0/vcpus/9/events", "not json"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(body_json(r)["error"]["code"], "not_found");
  EXPECT_EQ(backend.queue_calls, 0);
  r = api.handle(get("/api/v1/vms/3/vcpus/0/events"));
  EXPECT_EQ(r.status, 404);
}

TEST_F(ApiEvents, InvalidBodiesAre400AndNeverReachTheBackend) {
  for (const char* body :
       {"{", R"({"type":"nmi","vector":3})", R"({"type":"interrupt","vector":32,"x":1})"}) {
    http::Response r = api.handle(post_json(kEvents, body));
    EXPECT_EQ(r.status, 400) << body;
    const json j = body_json(r);
    EXPECT_TRUE(j["error"]["code"] == "invalid_json" || j["error"]["code"] == "invalid_request" ||
                j["error"]["code"] == "invalid_event")
        << body;
  }
  EXPECT_EQ(backend.queue_calls, 0);
}

TEST_F(ApiEvents, NonJsonContentTypeIs415) {
  const std::string body = R"({"type":"nmi","vector":2})";
  http::Response r = api.handle(make_request(http::Method::kPost, kEvents, body));  // no Content-Type
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(body_json(r)["error"]["code"], "unsupported_media_type");
  r = api.handle(make_request(http::Method::kPost, kEvents, body,
                              {{"content-type", "application/x-www-form-urlencoded"}}));
  EXPECT_EQ(r.status, 415);
  r = api.handle(make_request(http::Method::kPost, kEvents, body,
                              {{"content-type", "application/json; charset=utf-8"}}));
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(backend.queue_calls, 1);
}

TEST_F(ApiEvents, BackendErrorsMapToStatusCodes) {
  struct Case {
    ErrorCode code;
    int status;
    const char* error;
  } cases[] = {
      {ErrorCode::kTimeout, 503, "snapshot_timeout"},  {ErrorCode::kFull, 429, "event_queue_full"},
      {ErrorCode::kInvalidState, 409, "vcpu_stopped"}, {ErrorCode::kInvalidArgument, 400, "invalid_event"},
      {ErrorCode::kNotFound, 404, "not_found"},        {ErrorCode::kOutOfMemory, 500, "internal_error"},
  };
  for (const Case& c : cases) {
    backend.queue_error = make_error(c.code, "injected");
    http::Response r = api.handle(post_json(kEvents, R"({"type":"interrupt","vector":32})"));
    EXPECT_EQ(r.status, c.status) << error_code_name(c.code);
    EXPECT_EQ(body_json(r)["error"]["code"], c.error);
  }
}

}  // namespace
}  // namespace lantern::web::api
