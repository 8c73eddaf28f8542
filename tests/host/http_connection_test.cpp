// The HTTP/1.1 connection engine (web/http/http_connection.h): framing, pipelining, keep-alive,
// HEAD, limits, malformed input, timeouts and chunked streaming against a slow send buffer.
#include "web/http/http_connection.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace lantern::web::http {
namespace {

using nlohmann::json;

// Answers every request with its method and path in the body; special paths:
//   /stream/N  a BodySource producing N pieces "piece-<i>;"    /empty  204
//   /close     a response that asks for the connection to close
class RecordingHandler : public RequestHandler {
 public:
  struct Source : BodySource {
    Source(RecordingHandler& h, int n) : handler(h), pieces(n) {}
    bool next(std::string& out, size_t max_bytes) override {
      ++handler.next_calls;
      handler.max_bytes_asked.push_back(max_bytes);
      if (produced == pieces) return false;
      const std::string piece = "piece-" + std::to_string(produced++) + ";";
      out += piece;
      handler.stream_bytes_produced += piece.size();
      return produced < pieces;
    }
    RecordingHandler& handler;
    int pieces;
    int produced = 0;
  };

  Response handle(const Request& request) override {
    requests.push_back(request);
    Response r;
    if (request.path.rfind("/stream/", 0) == 0) {
      r.stream = std::make_unique<Source>(*this, std::stoi(request.path.substr(8)));
      return r;
    }
    if (request.path == "/empty") {
      r.status = 204;
      return r;
    }
    if (request.path == "/close") r.close_after = true;
    if (request.path == "/inject") r.headers.push_back({"x-bad", "a\r\nSet-Cookie: evil=1"});
    r.headers.push_back({"x-seq", std::to_string(requests.size())});
    r.body = request.method_text + " " + request.path + (request.body.empty() ? "" : " " + request.body);
    return r;
  }

  std::vector<Request> requests;
  int next_calls = 0;
  std::vector<size_t> max_bytes_asked;
  size_t stream_bytes_produced = 0;
};

struct ParsedResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool has(const std::string& name) const { return headers.count(name) != 0; }
  std::string get(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Splits `wire` into responses. `head_only[i]` says the i-th answered a HEAD (no body).
// Fails the test on any framing error.
std::vector<ParsedResponse> parse_responses(const std::string& wire, std::vector<bool> head_only = {}) {
  std::vector<ParsedResponse> out;
  size_t pos = 0;
  while (pos < wire.size()) {
    ParsedResponse r;
    const size_t end = wire.find("\r\n\r\n", pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << "incomplete response head at " << pos << ": " << wire.substr(pos);
      return out;
    }
    const std::string head = wire.substr(pos, end - pos);
    pos = end + 4;
    EXPECT_EQ(head.rfind("HTTP/1.1 ", 0), 0u) << head;
    r.status = std::stoi(head.substr(9, 3));
    size_t line = head.find("\r\n");
    while (line != std::string::npos) {
      const size_t next = head.find("\r\n", line + 2);
      const std::string field =
          head.substr(line + 2, next == std::string::npos ? std::string::npos : next - line - 2);
      const size_t colon = field.find(':');
      EXPECT_NE(colon, std::string::npos) << field;
      std::string name = field.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      EXPECT_EQ(r.headers.count(name), 0u) << "duplicate " << name;
      r.headers[name] = field.substr(colon + 2);
      line = next;
    }
    const bool no_body = (out.size() < head_only.size() && head_only[out.size()]) || r.status == 204;
    if (no_body) {
    } else if (r.has("content-length")) {
      const size_t n = std::stoul(r.get("content-length"));
      EXPECT_LE(pos + n, wire.size());
      r.body = wire.substr(pos, n);
      pos += n;
    } else if (r.get("transfer-encoding") == "chunked") {
      for (;;) {
        const size_t eol = wire.find("\r\n", pos);
        if (eol == std::string::npos) {
          ADD_FAILURE() << "unterminated chunk size";
          return out;
        }
        const size_t n = std::stoul(wire.substr(pos, eol - pos), nullptr, 16);
        pos = eol + 2;
        if (n == 0) {
          EXPECT_EQ(wire.substr(pos, 2), "\r\n");
          pos += 2;
          break;
        }
        r.body += wire.substr(pos, n);
        pos += n;
        EXPECT_EQ(wire.substr(pos, 2), "\r\n");
        pos += 2;
      }
    } else {
      r.body = wire.substr(pos);  // until close
      pos = wire.size();
    }
    out.push_back(std::move(r));
  }
  return out;
}

struct Fixture {
  RecordingHandler handler;
  ConnectionLimits limits;
  ConnectionCounters counters;
  std::unique_ptr<HttpConnection> conn;
  uint64_t now = 1000;
  size_t acked = 0;  // what the glue would pass to tcp_recved

  Fixture() { conn = std::make_unique<HttpConnection>(handler, limits, now, &counters, "10.0.2.2:1234"); }
  explicit Fixture(const ConnectionLimits& l) : limits(l) {
    conn = std::make_unique<HttpConnection>(handler, limits, now, &counters);
  }

  void send(std::string_view bytes) {
    conn->on_receive(bytes, now);
    acked += conn->take_consumed_input();
  }
  // Takes output as a TCP send buffer of `room` bytes per step would, until nothing is left.
  std::string drain(size_t room = 65535) {
    std::string wire;
    for (int guard = 0; guard < 1000000; ++guard) {
      const std::string_view v = conn->peek_output(room);
      if (v.empty()) break;
      wire.append(v);
      conn->consume_output(v.size(), now);
      acked += conn->take_consumed_input();
    }
    return wire;
  }
};

void expect_error(const ParsedResponse& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status);
  EXPECT_EQ(r.get("content-type"), "application/json; charset=utf-8");
  EXPECT_EQ(r.get("connection"), "close");
  const json body = json::parse(r.body, nullptr, false);
  ASSERT_FALSE(body.is_discarded()) << r.body;
  ASSERT_TRUE(body.contains("error")) << r.body;
  EXPECT_EQ(body["error"]["code"], code) << r.body;
  EXPECT_TRUE(body["error"]["message"].is_string());
}

TEST(HttpConnection, ParsesARequest) {
  Fixture f;
  const std::string input =
      "GET /api/v1/vcpus?x=1&name=a%20b HTTP/1.1\r\nHost: lantern\r\nX-Thing:  padded value \t\r\n\r\n";
  f.send(input);
  ASSERT_EQ(f.handler.requests.size(), 1u);
  const Request& r = f.handler.requests[0];
  EXPECT_EQ(r.method, Method::kGet);
  EXPECT_EQ(r.method_text, "GET");
  EXPECT_EQ(r.target, "/api/v1/vcpus?x=1&name=a%20b");
  EXPECT_EQ(r.path, "/api/v1/vcpus");
  EXPECT_EQ(r.query, "x=1&name=a%20b");
  EXPECT_EQ(r.query_param("name"), "a b");
  EXPECT_EQ(r.http_major, 1u);
  EXPECT_EQ(r.http_minor, 1u);
  EXPECT_EQ(r.header("host"), "lantern");
  EXPECT_EQ(r.header("x-thing"), "padded value");
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[1].name, "x-thing");  // lower-cased
  EXPECT_EQ(r.peer, "10.0.2.2:1234");

  const auto responses = parse_responses(f.drain());
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].status, 200);
  EXPECT_EQ(responses[0].body, "GET /api/v1/vcpus");
  EXPECT_EQ(responses[0].get("content-length"), "17");
  EXPECT_EQ(responses[0].get("content-type"), "application/json; charset=utf-8");
  EXPECT_FALSE(responses[0].has("connection"));  // HTTP/1.1: persistent by default
  EXPECT_FALSE(f.conn->should_close());
  EXPECT_EQ(f.acked, input.size());  // every byte parsed and acknowledged
  EXPECT_EQ(f.counters.requests, 1u);
  EXPECT_EQ(f.counters.responses, 1u);
}

TEST(HttpConnection, AbsoluteFormTargetIsReducedToItsPath) {
  Fixture f;
  f.send("GET http://lantern:80/api/v1/system?a=1 HTTP/1.1\r\nHost: lantern\r\n\r\n");
  ASSERT_EQ(f.handler.requests.size(), 1u);
  EXPECT_EQ(f.handler.requests[0].path, "/api/v1/system");
  EXPECT_EQ(f.handler.requests[0].query, "a=1");
}

TEST(HttpConnection, KeepAliveServesRequestsOneAfterAnother) {
  Fixture f;
  for (int i = 0; i < 3; ++i) {
    f.send("GET /r" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto responses = parse_responses(f.drain());
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].body, "GET /r" + std::to_string(i));
    EXPECT_FALSE(f.conn->should_close());
  }
  EXPECT_EQ(f.handler.requests.size(), 3u);
}

TEST(HttpConnection, PipelinedResponsesComeInRequestOrder) {
  Fixture f;
  f.send(
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /d HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto responses = parse_responses(f.drain(7), {false, false, true, false});
  ASSERT_EQ(responses.size(), 4u);
  EXPECT_EQ(responses[0].body, "GET /a");
  EXPECT_EQ(responses[1].body, "POST /b hello");
  EXPECT_EQ(responses[2].body, "");
  EXPECT_EQ(responses[2].get("content-length"), "7");  // the body "HEAD /c" is announced, not sent
  EXPECT_EQ(responses[3].body, "GET /d");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(responses[i].get("x-seq"), std::to_string(i + 1));
}

TEST(HttpConnection, HeadCarriesTheRealContentLengthAndNoBody) {
  Fixture f;
  f.send("HEAD /thing HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
  const std::string wire = f.drain();
  // The handler's body for HEAD /thing is "HEAD /thing" (11 bytes): announced, never sent, and
  // the next response starts right after the head.
  const size_t second = wire.find("HTTP/1.1 200", 1);
  ASSERT_NE(second, std::string::npos);
  EXPECT_NE(wire.substr(0, second).find("Content-Length: 11\r\n"), std::string::npos);
  EXPECT_EQ(wire.substr(second - 4, 4), "\r\n\r\n");
  const auto responses = parse_responses(wire, {true, false});
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[1].body, "GET /after");
  EXPECT_EQ(f.handler.requests[0].method, Method::kHead);
}

TEST(HttpConnection, ConnectionCloseIsHonouredAndLaterBytesIgnored) {
  Fixture f;
  const std::string first = "GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
  f.send(first);
  EXPECT_EQ(f.handler.requests.size(), 1u);
  EXPECT_FALSE(f.conn->should_close());  // still has output
  const auto responses = parse_responses(f.drain());
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].get("connection"), "close");
  EXPECT_TRUE(f.conn->should_close());
  f.send("GET /c HTTP/1.1\r\n\r\n");
  EXPECT_EQ(f.handler.requests.size(), 1u);
  EXPECT_EQ(f.acked, first.size() + 19u);  // dropped bytes are still acknowledged
}

TEST(HttpConnection, HandlerMayAskToClose) {
  Fixture f;
  f.send("GET /close HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
  const auto responses = parse_responses(f.drain());
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].get("connection"), "close");
  EXPECT_TRUE(f.conn->should_close());
  EXPECT_EQ(f.handler.requests.size(), 1u);
}

TEST(HttpConnection, Http10ClosesUnlessKeepAliveIsAsked) {
  {
    Fixture f;
    f.send("GET /a HTTP/1.0\r\n\r\n");
    const auto responses = parse_responses(f.drain());
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].get("connection"), "close");
    EXPECT_TRUE(f.conn->should_close());
    EXPECT_EQ(f.handler.requests[0].http_minor, 0u);
  }
  {
    Fixture f;
    f.send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    auto responses = parse_responses(f.drain());
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].get("connection"), "keep-alive");
    EXPECT_FALSE(f.conn->should_close());
    f.send("GET /b HTTP/1.0\r\n\r\n");
    responses = parse_responses(f.drain());
    ASSERT_EQ(responses.size(), 1u);
    EXPECT_EQ(responses[0].body, "GET /b");
    EXPECT_TRUE(f.conn->should_close());
  }
}

TEST(HttpConnection, ContentLengthAndChunkedRequestBodies) {
  Fixture f;
  f.send("POST /p HTTP/1.1\r\nContent-Length: 11\r\n\r\n{\"a\":\"b\"}\r\n");
  f.send("POST /q HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  ASSERT_EQ(f.handler.requests.size(), 2u);
  EXPECT_EQ(f.handler.requests[0].body, "{\"a\":\"b\"}\r\n");
  EXPECT_EQ(f.handler.requests[1].body, "abcde");
  EXPECT_EQ(parse_responses(f.drain()).size(), 2u);
}

TEST(HttpConnection, ExpectContinueIsAnsweredBeforeTheBody) {
  Fixture f;
  f.send("POST /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  EXPECT_EQ(f.drain(), "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_TRUE(f.handler.requests.empty());
  f.send("hello");
  const auto responses = parse_responses(f.drain());
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].body, "POST /p hello");

  Fixture big;  // too large: the final 413 instead of 100
  big.send("POST /p HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 99999\r\n\r\n");
  expect_error(parse_responses(big.drain())[0], 413, "body_too_large");

  Fixture no_body;  // nothing to wait for: no 100
  no_body.send("GET /g HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(parse_responses(no_body.drain())[0].status, 200);
}

TEST(HttpConnection, NoContentResponsesHaveNoLength) {
  Fixture f;
  f.send("GET /empty HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n");
  const auto responses = parse_responses(f.drain());
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[0].status, 204);
  EXPECT_FALSE(responses[0].has("content-length"));
  EXPECT_FALSE(responses[0].has("content-type"));
  EXPECT_EQ(responses[1].body, "GET /x");
}

TEST(HttpConnection, HandlerHeadersCannotSplitTheResponse) {
  Fixture f;
  f.send("GET /inject HTTP/1.1\r\n\r\n");
  const std::string wire = f.drain();
  EXPECT_EQ(wire.find("Set-Cookie"), std::string::npos);
  EXPECT_EQ(wire.find("x-bad"), std::string::npos);
  EXPECT_EQ(parse_responses(wire).size(), 1u);
}

// ---- limits -------------------------------------------------------------------------------------

TEST(HttpConnection, TargetLongerThanTheLimitIs414) {
  Fixture ok;
  ok.send("GET /" + std::string(2047, 'a') + " HTTP/1.1\r\n\r\n");  // exactly 2048: accepted
  EXPECT_EQ(parse_responses(ok.drain())[0].status, 200);

  Fixture f;
  f.send("GET /" + std::string(2048, 'a') + " HTTP/1.1\r\n\r\n");
  const auto responses = parse_responses(f.drain());
  ASSERT_EQ(responses.size(), 1u);
  expect_error(responses[0], 414, "uri_too_long");
  EXPECT_TRUE(f.conn->should_close());
  EXPECT_TRUE(f.handler.requests.empty());
  EXPECT_EQ(f.counters.framing_errors, 1u);
}

TEST(HttpConnection, HeadLargerThan8KiBIs431) {
  const std::string line = "GET / HTTP/1.1\r\n";
  auto head_of = [&](size_t total) {  // a request head of exactly `total` bytes
    std::string h = line + "X-Pad: ";
    h += std::string(total - h.size() - 4, 'p');
    return h + "\r\n\r\n";
  };
  Fixture ok;
  ok.send(head_of(8192));
  EXPECT_EQ(parse_responses(ok.drain())[0].status, 200);

  Fixture f;
  f.send(head_of(8193));
  const auto responses = parse_responses(f.drain());
  ASSERT_EQ(responses.size(), 1u);
  expect_error(responses[0], 431, "headers_too_large");
  EXPECT_TRUE(f.conn->should_close());
  EXPECT_TRUE(f.handler.requests.empty());
}

TEST(HttpConnection, ManySmallHeadersOver8KiBAre431) {
  Fixture f;
  std::string head = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 500; ++i) head += "X-H" + std::to_string(i) + ": 0123456789\r\n";
  f.send(head + "\r\n");
  expect_error(parse_responses(f.drain())[0], 431, "headers_too_large");
}

TEST(HttpConnection, BodyLargerThan16KiBIs413BeforeItArrives) {
  Fixture ok;
  ok.send("POST /p HTTP/1.1\r\nContent-Length: 16384\r\n\r\n" + std::string(16384, 'b'));
  EXPECT_EQ(parse_responses(ok.drain())[0].status, 200);
  EXPECT_EQ(ok.handler.requests[0].body.size(), 16384u);

  Fixture f;
  f.send("POST /p HTTP/1.1\r\nContent-Length: 16385\r\n\r\n");  // refused on the head alone
  const auto responses = parse_responses(f.drain());
  ASSERT_EQ(responses.size(), 1u);
  expect_error(responses[0], 413, "body_too_large");
  EXPECT_TRUE(f.conn->should_close());
}

TEST(HttpConnection, ChunkedBodyLargerThan16KiBIs413) {
  Fixture f;
  std::string req = "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) req += "1000\r\n" + std::string(4096, 'c') + "\r\n";  // 20 KiB
  f.send(req + "0\r\n\r\n");
  expect_error(parse_responses(f.drain())[0], 413, "body_too_large");
  EXPECT_TRUE(f.handler.requests.empty());
}

TEST(HttpConnection, UnsupportedTransferCodingIs501) {
  Fixture f;
  f.send("POST /p HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
  expect_error(parse_responses(f.drain())[0], 501, "not_implemented");
  Fixture g;
  g.send("POST /p HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
  expect_error(parse_responses(g.drain())[0], 501, "not_implemented");
}

TEST(HttpConnection, MalformedRequestsAre400AndClose) {
  const char* cases[] = {
      "BLAH\r\n\r\n",
      "GET /api/v1/system HTTP/9.9\r\n\r\n",
      "\x00\xff\xfe\r\n\r\n",
      "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
      "GET / FTP/1.1\r\n\r\n",
      "GET  HTTP/1.1\r\n\r\n",
      "GET * HTTP/1.1\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (const char* c : cases) {
    Fixture f;
    f.send(std::string_view(c, std::char_traits<char>::length(c) + (c[0] == 0 ? 7 : 0)));
    const auto responses = parse_responses(f.drain());
    ASSERT_EQ(responses.size(), 1u) << c;
    expect_error(responses[0], 400, "bad_request");
    EXPECT_TRUE(f.conn->should_close()) << c;
    EXPECT_TRUE(f.handler.requests.empty()) << c;
  }
}

TEST(HttpConnection, ErrorAfterGoodPipelinedRequestsKeepsTheirOrder) {
  Fixture f;
  f.send("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGARBAGE\r\n\r\n");
  const auto responses = parse_responses(f.drain());
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[0].body, "GET /a");
  EXPECT_EQ(responses[1].body, "GET /b");
  expect_error(responses[2], 400, "bad_request");
  EXPECT_TRUE(f.conn->should_close());
}

// ---- byte at a time, backpressure -------------------------------------------------------------

TEST(HttpConnection, ByteAtATimeGivesTheSameResult) {
  const std::string input =
      "GET /a?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
      "HEAD /d HTTP/1.1\r\n\r\n"
      "GET /e HTTP/1.0\r\n\r\n";
  Fixture whole;
  whole.send(input);
  const std::string expected = whole.drain();

  Fixture f;
  std::string wire;
  for (char c : input) {
    f.send(std::string_view(&c, 1));
    wire += f.drain(1);
  }
  EXPECT_EQ(wire, expected);
  const auto responses = parse_responses(wire, {false, false, false, true, false});
  ASSERT_EQ(responses.size(), 5u);
  EXPECT_EQ(responses[1].body, "POST /b xyz");
  EXPECT_EQ(responses[2].body, "POST /c hi");
  EXPECT_EQ(responses[4].get("connection"), "close");
  EXPECT_TRUE(f.conn->should_close());
  EXPECT_EQ(f.acked, input.size());
}

TEST(HttpConnection, PipelinedInputIsHeldBackWhileResponsesWait) {
  Fixture f;
  std::string input;
  for (int i = 0; i < 10; ++i) input += "GET /" + std::to_string(i) + " HTTP/1.1\r\n\r\n";
  f.send(input);
  // Only max_queued_responses are answered before the client reads; the rest is not acknowledged.
  EXPECT_EQ(f.handler.requests.size(), f.limits.max_queued_responses);
  EXPECT_LT(f.acked, input.size());
  EXPECT_EQ(f.conn->queued_responses(), f.limits.max_queued_responses);
  const auto responses = parse_responses(f.drain(10));
  ASSERT_EQ(responses.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(responses[i].body, "GET /" + std::to_string(i));
  EXPECT_EQ(f.acked, input.size());
}

TEST(HttpConnection, MutatedInputNeverBreaksTheOutputFraming) {
  // Valid requests with bytes flipped, fed in pieces of random size: whatever the parser makes of
  // them, the output is a sequence of well-formed responses and the engine ends up idle or closing.
  const std::string base =
      "GET /a?x=1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd"
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\nGET /d HTTP/1.0\r\n\r\n";
  uint32_t seed = 12345;
  auto rnd = [&seed](uint32_t n) {
    seed = seed * 1103515245u + 12345u;  // any LCG will do: only reproducibility matters
    return (seed >> 8) % n;
  };
  for (int round = 0; round < 2000; ++round) {
    std::string input = base;
    for (uint32_t flips = rnd(4); flips > 0; --flips) input[rnd(input.size())] = static_cast<char>(rnd(256));
    Fixture f;
    std::string wire;
    for (size_t pos = 0; pos < input.size();) {
      const size_t n = 1 + rnd(40);
      f.send(std::string_view(input).substr(pos, n));
      pos += n;
      wire += f.drain(1 + rnd(100));
    }
    std::vector<bool> head_only(16, false);  // no HEAD in these inputs unless a flip makes one
    for (const auto& r : parse_responses(wire, head_only)) {
      EXPECT_GE(r.status, 200) << "round " << round;
      EXPECT_LT(r.status, 600) << "round " << round;
    }
    EXPECT_LE(f.acked, input.size());
    if (HasFailure()) break;
  }
}

// ---- streaming ----------------------------------------------------------------------------------

TEST(HttpConnection, StreamedBodyIsChunkedAndPulledAsRoomFrees) {
  Fixture f;
  f.send("GET /stream/50 HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n");
  EXPECT_EQ(f.handler.next_calls, 0);  // nothing is produced before there is room to send it
  std::string wire;
  const size_t room = 20;  // a send buffer that frees 20 bytes at a time
  size_t sent = 0;
  for (int step = 0; step < 100000; ++step) {
    const std::string_view v = f.conn->peek_output(room);
    if (v.empty()) break;
    EXPECT_LE(v.size(), room);
    wire.append(v);
    sent += v.size();
    // Never more produced than sent plus one piece (and its chunk framing) in hand.
    EXPECT_LE(f.handler.stream_bytes_produced, sent + 64) << "step " << step;
    f.conn->consume_output(v.size(), f.now);
  }
  for (size_t asked : f.handler.max_bytes_asked) {
    EXPECT_GE(asked, 1u);
    EXPECT_LE(asked, room);
  }
  const auto responses = parse_responses(wire);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_EQ(responses[0].get("transfer-encoding"), "chunked");
  EXPECT_FALSE(responses[0].has("content-length"));
  std::string expected;
  for (int i = 0; i < 50; ++i) expected += "piece-" + std::to_string(i) + ";";
  EXPECT_EQ(responses[0].body, expected);
  EXPECT_EQ(responses[1].body, "GET /after");
  EXPECT_EQ(f.counters.streamed, 1u);
  EXPECT_FALSE(f.conn->should_close());
}

TEST(HttpConnection, StreamedBodyToHttp10IsRawAndCloses) {
  Fixture f;
  f.send("GET /stream/3 HTTP/1.0\r\n\r\n");
  const std::string wire = f.drain(1000);
  const auto responses = parse_responses(wire);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_FALSE(responses[0].has("transfer-encoding"));
  EXPECT_FALSE(responses[0].has("content-length"));
  EXPECT_EQ(responses[0].get("connection"), "close");
  EXPECT_EQ(responses[0].body, "piece-0;piece-1;piece-2;");
  EXPECT_TRUE(f.conn->should_close());
}

TEST(HttpConnection, HeadOfAStreamedResourceNeverPullsTheBody) {
  Fixture f;
  f.send("HEAD /stream/5 HTTP/1.1\r\n\r\n");
  const auto responses = parse_responses(f.drain(), {true});
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].get("transfer-encoding"), "chunked");
  EXPECT_EQ(f.handler.next_calls, 0);
}

// ---- peer close and timeouts ------------------------------------------------------------------

TEST(HttpConnection, PeerCloseAfterACompleteRequestStillAnswers) {
  Fixture f;
  f.send("GET /a HTTP/1.1\r\n\r\n");
  f.conn->on_peer_closed(f.now);
  EXPECT_FALSE(f.conn->should_close());
  EXPECT_EQ(parse_responses(f.drain()).size(), 1u);
  EXPECT_TRUE(f.conn->should_close());
}

TEST(HttpConnection, PeerCloseMidRequestClosesSilently) {
  Fixture f;
  f.send("GET /api/v1/sys");
  f.conn->on_peer_closed(f.now);
  EXPECT_TRUE(f.drain().empty());
  EXPECT_TRUE(f.conn->should_close());
  EXPECT_TRUE(f.handler.requests.empty());
}

TEST(HttpConnection, SlowRequestGets408) {
  Fixture f;
  f.send("GET /api/v1/system HTTP/1.1\r\nHo");
  f.now += f.limits.request_timeout_ms - 1;
  f.conn->on_tick(f.now);
  EXPECT_FALSE(f.conn->has_output());
  f.send("st: x\r\n");  // trickling bytes do not restart the clock
  f.now += 1;
  f.conn->on_tick(f.now);
  const auto responses = parse_responses(f.drain());
  ASSERT_EQ(responses.size(), 1u);
  expect_error(responses[0], 408, "request_timeout");
  EXPECT_TRUE(f.conn->should_close());
  EXPECT_EQ(f.counters.timeouts, 1u);
  EXPECT_TRUE(f.handler.requests.empty());
}

TEST(HttpConnection, IdleConnectionIsClosedQuietly) {
  Fixture f;
  f.send("GET /a HTTP/1.1\r\n\r\n");
  f.drain();
  f.now += f.limits.idle_timeout_ms - 1;
  f.conn->on_tick(f.now);
  EXPECT_FALSE(f.conn->should_close());
  f.now += 1;
  f.conn->on_tick(f.now);
  EXPECT_TRUE(f.conn->should_close());
  EXPECT_FALSE(f.conn->has_output());
  EXPECT_FALSE(f.conn->should_abort());
}

TEST(HttpConnection, StalledOutputIsAborted) {
  Fixture f;
  f.send("GET /a HTTP/1.1\r\n\r\n");
  f.now += f.limits.send_stall_timeout_ms - 1;
  f.conn->on_tick(f.now);
  EXPECT_FALSE(f.conn->should_abort());
  const std::string_view v = f.conn->peek_output(5);  // some progress resets the clock
  f.conn->consume_output(v.size(), f.now);
  f.now += f.limits.send_stall_timeout_ms - 1;
  f.conn->on_tick(f.now);
  EXPECT_FALSE(f.conn->should_abort());
  f.now += 1;
  f.conn->on_tick(f.now);
  EXPECT_TRUE(f.conn->should_abort());
  EXPECT_TRUE(f.conn->peek_output(100).empty());
}

}  // namespace
}  // namespace lantern::web::http
