// The OpenAPI document against the route table the server dispatches from, and every handler's
// output against the schema the document gives it.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "api_fake_backend.h"
#include "api_test_util.h"
#include "web/api/api.h"
#include "web/api/openapi.h"

namespace lantern::web::api {
namespace {

using nlohmann::json;
using testing::body_json;
using testing::FakeBackend;
using testing::get;
using testing::validate_schema;

std::string lower_method(http::Method m) {
  std::string s(http::method_name(m));
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "/api/v1/vms/{vm}/vcpus/{vcpu}" -> "/api/v1/vms/3/vcpus/1".
std::string concrete(std::string pattern) {
  pattern = std::regex_replace(pattern, std::regex("\\{vm\\}"), "3");
  return std::regex_replace(pattern, std::regex("\\{vcpu\\}"), "1");
}

json served_document() {
  FakeBackend backend;
  Api api(backend, AuthConfig{});
  http::Response r = api.handle(get("/api/v1/openapi.json"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json; charset=utf-8");
  return body_json(r);
}

TEST(ApiOpenApi, ServedDocumentIsOpenApi30) {
  const json doc = served_document();
  ASSERT_TRUE(doc.is_object());
  EXPECT_TRUE(std::regex_match(doc["openapi"].get<std::string>(), std::regex("3\\.0\\.[0-9]+")));
  EXPECT_TRUE(doc["info"]["title"].is_string());
  EXPECT_TRUE(doc["info"]["version"].is_string());
  EXPECT_TRUE(doc["paths"].is_object());
  EXPECT_TRUE(doc["components"]["schemas"].is_object());
  EXPECT_EQ(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
}

TEST(ApiOpenApi, EveryRouteIsDescribed) {
  const json doc = served_document();
  ASSERT_FALSE(api_routes().empty());
  for (const Route& route : api_routes()) {
    const std::string path(route.pattern);
    ASSERT_TRUE(doc["paths"].contains(path)) << path;
    const std::string method = lower_method(route.method);
    ASSERT_TRUE(doc["paths"][path].contains(method)) << method << " " << path;
    const json& op = doc["paths"][path][method];
    EXPECT_EQ(op["operationId"], std::string(route.operation_id));
    EXPECT_EQ(op["x-lantern-mutating"], route.mutating);
    // Path parameters match the pattern's.
    std::set<std::string> declared;
    for (const json& p : op.value("parameters", json::array())) {
      if (p["in"] == "path") {
        declared.insert(p["name"].get<std::string>());
        EXPECT_EQ(p["required"], true);
      }
    }
    std::set<std::string> in_pattern;
    if (path.find("{vm}") != std::string::npos) in_pattern.insert("vm");
    if (path.find("{vcpu}") != std::string::npos) in_pattern.insert("vcpu");
    EXPECT_EQ(declared, in_pattern) << path;
    // Every response has a schema that resolves; errors use the Error schema.
    ASSERT_FALSE(op["responses"].empty()) << path;
    for (auto it = op["responses"].begin(); it != op["responses"].end(); ++it) {
      if (path == "/api/v1/debug/stream" && it.key() == "200") {  // the one text/plain body
        EXPECT_EQ(it.value()["content"]["text/plain"]["schema"]["type"], "string");
        continue;
      }
      const std::string ref = it.value()["content"]["application/json"]["schema"]["$ref"];
      const std::string name = ref.substr(std::string("#/components/schemas/").size());
      EXPECT_TRUE(doc["components"]["schemas"].contains(name)) << ref;
      if (it.key()[0] != '2') {
        EXPECT_EQ(name, "Error") << path << " " << it.key();
      }
    }
  }
}

// The other direction: every documented (path, method) is routable, i.e. not 404 or 405.
TEST(ApiOpenApi, EveryDocumentedOperationIsRoutable) {
  const json doc = served_document();
  size_t operations = 0;
  for (auto path = doc["paths"].begin(); path != doc["paths"].end(); ++path) {
    for (auto op = path.value().begin(); op != path.value().end(); ++op) {
      const std::string m = op.key();
      const http::Method method = m == "get"    ? http::Method::kGet
                                  : m == "post" ? http::Method::kPost
                                                : http::Method::kOther;
      ASSERT_NE(method, http::Method::kOther) << m;
      const Match match = match_route(api_routes(), method, concrete(path.key()));
      EXPECT_EQ(match.kind, MatchKind::kFound) << m << " " << path.key();
      ++operations;
    }
  }
  EXPECT_EQ(operations, api_routes().size());
}

TEST(ApiOpenApi, EverySchemaReferenceResolves) {
  const json doc = served_document();
  std::vector<std::string> missing;
  std::function<void(const json&)> walk = [&](const json& j) {
    if (j.is_object()) {
      if (j.contains("$ref")) {
        const std::string ref = j["$ref"];
        const std::string name = ref.substr(std::string("#/components/schemas/").size());
        if (!doc["components"]["schemas"].contains(name)) missing.push_back(ref);
      }
      for (const auto& [k, v] : j.items()) walk(v);
    } else if (j.is_array()) {
      for (const auto& v : j) walk(v);
    }
  };
  walk(doc);
  EXPECT_TRUE(missing.empty()) << missing.front();
}

// Every success and error body the handlers produce is exactly what the document says: the
// validator refuses members the schema does not list, so a field added to a handler without a
// schema (or the reverse) fails here.
TEST(ApiOpenApi, HandlerOutputMatchesTheDocumentedSchemas) {
  FakeBackend backend;
  backend.add_vcpu(3, 1);
  backend.add_vcpu(3, 2, VcpuState::kStopped);
  backend.add_svm_vcpu(4, 0);
  backend.vcpu_list[0].cpu = -1;
  backend.vm_list.push_back(
      testing::FakeBackend::demo_vm(3, "demo", VmState::kRunning, 1 << 20, 2, 3, std::nullopt));
  VmSummary exited = testing::FakeBackend::user_vm(4, "mbguest", VmState::kExited);
  exited.exit_code = 7;
  exited.exit_status = 15;
  exited.exit_cause = "debug_exit";
  backend.vm_list.push_back(exited);
  VmSummary failed = testing::FakeBackend::user_vm(5, "broken", VmState::kFailed);
  failed.failure = "no multiboot header in the first 8192 bytes (not a Multiboot v1 kernel)";
  failed.kernel_format.clear();
  backend.vm_list.push_back(failed);
  backend.vm_list.push_back(testing::FakeBackend::user_vm(6, "mbecho", VmState::kRunning));
  backend.cpu_list.push_back(CpuSummary{0, 0, true, CpuVmxState::kOn, {{3, 1}}, CpuVmxState::kOff});
  backend.system_summary.net_pools.push_back(NetPoolLevel{"PBUF_POOL", 1, 2, 3, 0});
  backend.console_output[3] = "hi";
  backend.log_lines.push_back(LogLine{0, 5, 0, "info", "boot", false});
  backend.queues[{3, 1}].queue_event(guest::PendingEventType::kHardwareException, 14, 2u).value();
  backend.queues[{3, 1}].queue_event(guest::PendingEventType::kNmi, 2).value();
  Api api(backend, AuthConfig{});
  const json doc = served_document();
  const json& schemas = doc["components"]["schemas"];

  struct Probe {
    http::Request request;
    int status;
  };
  std::vector<Probe> probes;
  for (const Route& route : api_routes()) {
    if (route.method != http::Method::kGet || route.pattern == "/api/v1/debug/stream")
      continue;  // text/plain
    std::string target = concrete(std::string(route.pattern));
    if (route.pattern.ends_with("/vmcb")) target = "/api/v1/vms/4/vcpus/0/vmcb";  // an SVM vCPU's
    probes.push_back({get(target), 200});
  }
  // The SVM vCPU through the shared routes, and each control block's route on the other backend.
  for (const char* tail : {"", "/regs", "/exits", "/events"}) {
    probes.push_back({get(std::string("/api/v1/vms/4/vcpus/0") + tail), 200});
  }
  probes.push_back({get("/api/v1/vms/4/vcpus/0/vmcb?name=EXITCODE,CS_SELECTOR"), 200});
  probes.push_back({get("/api/v1/vcpus?exit_counts=true"), 200});  // VMX and SVM counts
  probes.push_back({get("/api/v1/vcpus?exit_counts=yes"), 400});
  probes.push_back({get("/api/v1/vms/4/vcpus/0/vmcb?name=GUEST_RIP"), 400});
  probes.push_back({get("/api/v1/vms/4/vcpus/0/vmcs"), 404});
  probes.push_back({get("/api/v1/vms/3/vcpus/1/vmcb"), 404});
  probes.push_back({get("/api/v1/debug/stream"), 400});  // ?bytes= is required
  probes.push_back({get("/api/v1/vms/3/vcpus/1/vmcs?name=GUEST_RIP,EPT_POINTER_HIGH"), 200});
  probes.push_back(
      {testing::post_json("/api/v1/vms/3/vcpus/1/events", R"({"type":"interrupt","vector":33})"), 202});
  probes.push_back({testing::post_json("/api/v1/vms/3/vcpus/1/events", R"({"type":"nmi","vector":9})"), 400});
  probes.push_back({testing::post_json("/api/v1/vms/3/vcpus/2/events", R"({"type":"nmi","vector":2})"), 409});
  probes.push_back({get("/api/v1/vms/9/vcpus/1/regs"), 404});
  probes.push_back({get("/api/v1/vms/3/console?since=x"), 400});
  probes.push_back({get("/api/v1/vms/4"), 200});
  probes.push_back({get("/api/v1/vms/5"), 200});
  probes.push_back({testing::make_request(http::Method::kPost, "/api/v1/vms/6/console", "hello"), 202});
  probes.push_back(
      {testing::make_request(http::Method::kPost, "/api/v1/vms/6/console", "0123456789ab"), 429});
  probes.push_back(
      {testing::make_request(http::Method::kPost, "/api/v1/vms/6/console", std::string(17, 'x')), 413});
  probes.push_back({testing::make_request(http::Method::kPost, "/api/v1/vms/3/console", "x"), 409});
  probes.push_back({testing::make_request(http::Method::kPost, "/api/v1/vms/9/console", "x"), 404});
  probes.push_back({testing::make_request(http::Method::kPost, "/api/v1/vms/6/reset"), 202});
  probes.push_back({testing::make_request(http::Method::kPost, "/api/v1/vms/5/reset"), 409});
  probes.push_back({testing::make_request(http::Method::kPost, "/api/v1/vms/9/reset"), 404});

  for (Probe& p : probes) {
    http::Response r = api.handle(p.request);
    ASSERT_EQ(r.status, p.status) << p.request.target;
    const json body = body_json(r);
    const Match match = match_route(api_routes(), p.request.method, p.request.path);
    ASSERT_EQ(match.kind, MatchKind::kFound);
    const std::string method = lower_method(match.route->method);
    const json& responses = doc["paths"][std::string(match.route->pattern)][method]["responses"];
    ASSERT_TRUE(responses.contains(std::to_string(p.status)))
        << p.request.target << ": status " << p.status << " is not documented";
    const json& schema = responses[std::to_string(p.status)]["content"]["application/json"]["schema"];
    std::vector<std::string> errors;
    validate_schema(body, schema, schemas, p.request.target, errors);
    EXPECT_TRUE(errors.empty()) << errors.size() << " violations, first: " << errors.front();
  }
}

// docs/api.md documents every route as a heading "`METHOD /api/v1/...`", so a new route needs docs.
TEST(ApiOpenApi, EveryRouteIsInTheApiReference) {
  std::ifstream file(std::string(LANTERN_SOURCE_DIR) + "/docs/api.md");
  ASSERT_TRUE(file.good());
  std::stringstream text;
  text << file.rdbuf();
  std::string headings;
  std::string line;
  while (std::getline(text, line)) {
    if (line.rfind("### ", 0) == 0) headings += line + "\n";
  }
  for (const Route& route : api_routes()) {
    const std::string entry =
        "`" + std::string(http::method_name(route.method)) + " " + std::string(route.pattern) + "`";
    EXPECT_NE(headings.find(entry), std::string::npos) << entry << " has no heading in docs/api.md";
  }
}

// The validator itself must be able to fail.
TEST(ApiOpenApi, SchemaValidatorCatchesDrift) {
  const json schemas = served_document()["components"]["schemas"];
  std::vector<std::string> errors;
  validate_schema(json{{"error", {{"code", "x"}, {"message", "y"}, {"extra", 1}}}},
                  json{{"$ref", "#/components/schemas/Error"}}, schemas, "e", errors);
  EXPECT_EQ(errors.size(), 1u);
  errors.clear();
  validate_schema(json{{"error", {{"code", "x"}}}}, json{{"$ref", "#/components/schemas/Error"}}, schemas,
                  "e", errors);
  EXPECT_EQ(errors.size(), 1u);
  errors.clear();
  validate_schema(
      json{
          {"name", "A"}, {"encoding", "0x681e"}, {"width", "natural"}, {"group", "guest"}, {"value", "0x12"}},
      json{{"$ref", "#/components/schemas/VmcsField"}}, schemas, "f", errors);
  EXPECT_EQ(errors.size(), 1u) << "a value with the wrong number of digits";
}

}  // namespace
}  // namespace lantern::web::api
