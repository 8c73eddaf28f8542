// The placeholder HTTP endpoint (net/stack/http_placeholder.h): framing and responses.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "net/stack/http_placeholder.h"

namespace lantern::net::http {
namespace {

using nlohmann::json;

SystemInfo info() {
  SystemInfo i;
  i.version = "0.1.0";
  i.uptime_ms = 12345;
  i.cpus = 4;
  i.vmx_available = false;
  i.vmx_cpuid = false;
  i.vmx_reason = "CPUID.1:ECX.VMX is 0";
  return i;
}

struct Parsed {
  int status = 0;
  std::string head;
  json body;
};

// Splits a response and checks the framing every response must have.
Parsed parse(const Response& r) {
  Parsed p;
  const size_t end = r.text.find("\r\n\r\n");
  EXPECT_NE(end, std::string::npos);
  p.head = r.text.substr(0, end + 2);
  const std::string body = r.text.substr(end + 4);
  EXPECT_EQ(r.text.rfind("HTTP/1.1 ", 0), 0u);
  p.status = std::stoi(r.text.substr(9, 3));
  EXPECT_EQ(p.status, r.status);
  EXPECT_NE(p.head.find("\r\nContent-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(p.head.find("\r\nConnection: close\r\n"), std::string::npos);
  EXPECT_NE(p.head.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
  p.body = json::parse(body, nullptr, false);
  EXPECT_FALSE(p.body.is_discarded()) << body;
  return p;
}

TEST(NetStackHttp, FramingNeedsBlankLine) {
  EXPECT_FALSE(request_head_length(""));
  EXPECT_FALSE(request_head_length("GET / HTTP/1.1\r\n"));
  EXPECT_FALSE(request_head_length("GET / HTTP/1.1\r\nHost: x\r\n\r"));
  EXPECT_FALSE(request_head_length("GET / HTTP/1.1\n\n"));  // bare LF is not enough here
  EXPECT_EQ(request_head_length("GET / HTTP/1.1\r\n\r\n"), 18u);
  EXPECT_EQ(request_head_length("GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), 27u);
}

TEST(NetStackHttp, SystemAnswers200WithJson) {
  auto p = parse(respond("GET /api/v1/system HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", info()));
  EXPECT_EQ(p.status, 200);
  EXPECT_EQ(p.body["name"], "lantern");
  EXPECT_EQ(p.body["version"], "0.1.0");
  EXPECT_EQ(p.body["uptime_ms"], 12345);
  EXPECT_EQ(p.body["cpus"], 4);
  EXPECT_EQ(p.body["vmx"]["available"], false);
  EXPECT_EQ(p.body["vmx"]["cpuid_vmx"], false);
  EXPECT_EQ(p.body["vmx"]["reason"], "CPUID.1:ECX.VMX is 0");
}

TEST(NetStackHttp, SystemWithQueryAndHttp10) {
  EXPECT_EQ(respond("GET /api/v1/system?pretty=1 HTTP/1.0\r\n\r\n", info()).status, 200);
}

TEST(NetStackHttp, VmxAvailableHasNoReason) {
  SystemInfo i = info();
  i.vmx_available = true;
  i.vmx_cpuid = true;
  auto p = parse(respond("GET /api/v1/system HTTP/1.1\r\n\r\n", i));
  EXPECT_EQ(p.body["vmx"]["available"], true);
  EXPECT_FALSE(p.body["vmx"].contains("reason"));
}

TEST(NetStackHttp, EverythingElseIs404) {
  for (const char* req : {"GET / HTTP/1.1\r\n\r\n", "GET /api/v1/systems HTTP/1.1\r\n\r\n",
                          "GET /api/v1/system/ HTTP/1.1\r\n\r\n", "POST /api/v1/system HTTP/1.1\r\n\r\n",
                          "get /api/v1/system HTTP/1.1\r\n\r\n", "DELETE /x HTTP/1.1\r\n\r\n"}) {
    auto p = parse(respond(req, info()));
    EXPECT_EQ(p.status, 404) << req;
    EXPECT_EQ(p.body["error"]["code"], "not_found") << req;
    EXPECT_TRUE(p.body["error"]["message"].is_string());
  }
}

TEST(NetStackHttp, MalformedRequestsAre400) {
  for (const char* req : {"", "\r\n\r\n", "GET\r\n\r\n", "GET /api/v1/system\r\n\r\n",
                          "GET  /api/v1/system HTTP/1.1\r\n\r\n", "GET /api/v1/system HTTP/1.1 x\r\n\r\n",
                          "GET /api/v1/system HTTP/2.0\r\n\r\n", "GET api/v1/system HTTP/1.1\r\n\r\n",
                          " GET /api/v1/system HTTP/1.1\r\n\r\n", "G(T /api/v1/system HTTP/1.1\r\n\r\n",
                          "GET /api/v1/system HTTP/1.1", "GET http://x/api/v1/system HTTP/1.1\r\n\r\n"}) {
    auto p = parse(respond(req, info()));
    EXPECT_EQ(p.status, 400) << req;
    EXPECT_EQ(p.body["error"]["code"], "bad_request") << req;
  }
  // Embedded NUL and binary garbage never crash and are refused.
  const std::string binary("\x00\xff\x01GET / HTTP/1.1\r\n\r\n", 20);
  EXPECT_EQ(respond(binary, info()).status, 400);
}

TEST(NetStackHttp, TooLargeIs400) {
  auto p = parse(respond_too_large());
  EXPECT_EQ(p.status, 400);
  EXPECT_EQ(p.body["error"]["code"], "bad_request");
}

}  // namespace
}  // namespace lantern::net::http
