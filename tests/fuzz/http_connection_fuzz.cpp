// Fuzz target: the HTTP/1.1 connection engine (web/http/http_connection.h).
//
// The input is the byte stream a client sends. It is delivered in pieces split at points derived
// from the input (InputDerivedChoices), with the clock stepping between pieces (timeouts), output
// drained through send buffers of varying room or left waiting (pipelining back-pressure), and
// finally the peer's FIN. The handler answers by path: /stream/N (a chunked BodySource of N
// pieces), /status/NNN, /close; it echoes the request's X-Echo header into a response header.
//
// Invariants checked on every input:
//   - everything sent parses as a sequence of well-framed HTTP/1.1 responses: status line, header
//     fields without CR/LF/NUL inside, and a body framed by Content-Length, by chunked coding, or
//     (only for the last response, which then says Connection: close) by the close;
//   - no body on 1xx/204/304 or on an answer to HEAD;
//   - the handler's responses leave in the order the handler made them, none lost or repeated;
//   - nothing follows a response that says Connection: close;
//   - a BodySource is never asked for more than max_stream_piece bytes;
//   - input reported as consumed never exceeds the input received;
//   - after the peer's FIN and a full drain the connection wants to close (unless it aborted).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_check.h"
#include "web/http/http_connection.h"

namespace lantern::web::http {
namespace {

using fuzz::InputDerivedChoices;

class FuzzHandler final : public RequestHandler {
 public:
  struct Source final : BodySource {
    Source(FuzzHandler& h, unsigned n) : handler(h), pieces(n) {}
    bool next(std::string& out, size_t max_bytes) override {
      FUZZ_CHECK(max_bytes >= 1 && max_bytes <= handler.max_stream_piece, std::to_string(max_bytes));
      if (produced == pieces) return false;
      ++produced;
      const size_t n = 1 + (produced * 37) % (max_bytes < 200 ? max_bytes : 200);
      out.append(n, static_cast<char>('a' + produced % 26));
      return produced < pieces;
    }
    FuzzHandler& handler;
    unsigned pieces;
    unsigned produced = 0;
  };

  explicit FuzzHandler(size_t piece) : max_stream_piece(piece) {}

  Response handle(const Request& request) override {
    FUZZ_CHECK(request.http_major == 1, request.target);
    FUZZ_CHECK(request.target.size() <= ConnectionLimits{}.max_target_bytes, request.target);
    FUZZ_CHECK(request.body.size() <= ConnectionLimits{}.max_body_bytes, request.target);
    const bool head = request.method == Method::kHead;
    Response r;
    std::string_view path(request.path);
    unsigned number = 0;
    const auto read_number = [&](std::string_view prefix) {
      if (path.substr(0, prefix.size()) != prefix) return false;
      number = 0;
      for (char c : path.substr(prefix.size())) {
        if (c < '0' || c > '9' || number > 10000) return false;
        number = number * 10 + static_cast<unsigned>(c - '0');
      }
      return true;
    };
    if (read_number("/stream/") && number <= 64) {
      r.stream = std::make_unique<Source>(*this, number);
    } else if (read_number("/status/") && number >= 100 && number <= 599) {
      r.status = static_cast<int>(number);
    }
    if (path == "/close") r.close_after = true;
    if (auto echo = request.header("x-echo")) r.headers.push_back({"x-echo", std::string(*echo)});
    r.headers.push_back({"x-seq", std::to_string(made.size() + 1)});
    r.body = request.method_text + " " + request.path + " " + std::to_string(request.body.size());
    made.push_back(Made{head, r.status});
    return r;
  }

  struct Made {
    bool head;
    int status;
  };
  std::vector<Made> made;
  size_t max_stream_piece;
};

// One response read off the wire; `rest` moves past it.
struct Parsed {
  int status = 0;
  bool close = false;
  long seq = 0;  // x-seq, 0 for the server's own responses (errors, 100 Continue)
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Reads one response from `wire` (advancing it). `head_for` tells whether the handler's response
// with a given x-seq answered a HEAD. The last response may run to the end of the output only
// when it is close-delimited or the connection aborted (`truncated_ok`).
Parsed read_response(std::string_view& wire, const FuzzHandler& handler, bool truncated_ok) {
  Parsed p;
  const size_t line_end = wire.find("\r\n");
  FUZZ_CHECK(line_end != std::string_view::npos || truncated_ok, wire);
  if (line_end == std::string_view::npos) {
    wire = {};
    return p;
  }
  const std::string_view line = wire.substr(0, line_end);
  FUZZ_CHECK(line.size() >= 13 && line.substr(0, 9) == "HTTP/1.1 " && is_digit(line[9]) && is_digit(line[10]) &&
                 is_digit(line[11]) && line[12] == ' ',
             line);
  p.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  FUZZ_CHECK(p.status >= 100 && p.status <= 599, line);
  wire.remove_prefix(line_end + 2);

  long content_length = -1;
  bool chunked = false;
  for (;;) {
    const size_t end = wire.find("\r\n");
    FUZZ_CHECK(end != std::string_view::npos || truncated_ok, wire);
    if (end == std::string_view::npos) {
      wire = {};
      return p;
    }
    const std::string_view field = wire.substr(0, end);
    wire.remove_prefix(end + 2);
    if (field.empty()) break;
    const size_t colon = field.find(": ");
    FUZZ_CHECK(colon != std::string_view::npos && colon > 0, field);
    for (char c : field) FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0', field);
    const std::string name = lower(field.substr(0, colon));
    const std::string_view value = field.substr(colon + 2);
    if (name == "content-length") {
      FUZZ_CHECK(content_length < 0 && !value.empty() && value.size() < 9, field);
      content_length = 0;
      for (char c : value) {
        FUZZ_CHECK(is_digit(c), field);
        content_length = content_length * 10 + (c - '0');
      }
    } else if (name == "transfer-encoding") {
      FUZZ_CHECK(value == "chunked" && !chunked, field);
      chunked = true;
    } else if (name == "connection") {
      p.close = value == "close";
    } else if (name == "x-seq") {
      p.seq = std::stol(std::string(value));
    }
  }
  const bool no_content = p.status < 200 || p.status == 204 || p.status == 304;
  FUZZ_CHECK(!(content_length >= 0 && chunked), "both Content-Length and chunked");
  if (no_content) {
    FUZZ_CHECK(content_length < 0 && !chunked, "framing header on a response without content");
    return p;
  }
  bool head = false;
  if (p.seq > 0) {
    FUZZ_CHECK(static_cast<size_t>(p.seq) <= handler.made.size(), std::to_string(p.seq));
    head = handler.made[static_cast<size_t>(p.seq) - 1].head;
  } else if (content_length > 0 && wire.empty() && p.close) {
    head = true;  // the server's own error answering a HEAD: head only, then the close
  }
  if (head) return p;
  if (content_length >= 0) {
    FUZZ_CHECK(wire.size() >= static_cast<size_t>(content_length) || truncated_ok, "short body");
    wire.remove_prefix(std::min(wire.size(), static_cast<size_t>(content_length)));
    return p;
  }
  if (chunked) {  // RFC 9112 7.1
    for (;;) {
      const size_t end = wire.find("\r\n");
      FUZZ_CHECK(end != std::string_view::npos || truncated_ok, "chunk size line");
      if (end == std::string_view::npos) {
        wire = {};
        return p;
      }
      size_t size = 0;
      FUZZ_CHECK(end > 0 && end <= 16, wire.substr(0, end));
      for (char c : wire.substr(0, end)) {
        const bool hex_digit = is_digit(c) || (c >= 'a' && c <= 'f');
        FUZZ_CHECK(hex_digit, wire.substr(0, end));
        size = size * 16 + static_cast<size_t>(is_digit(c) ? c - '0' : c - 'a' + 10);
      }
      wire.remove_prefix(end + 2);
      if (wire.size() < size + 2) {
        FUZZ_CHECK(truncated_ok, "short chunk");
        wire = {};
        return p;
      }
      FUZZ_CHECK(wire.substr(size, 2) == "\r\n", "chunk not followed by CRLF");
      wire.remove_prefix(size + 2);
      if (size == 0) return p;  // last-chunk; no trailers
    }
  }
  // Delimited by the close (HTTP/1.0 streamed): must be the last and say so.
  FUZZ_CHECK(p.close, "a body without framing on a connection that stays open");
  wire = {};
  return p;
}

void run(const uint8_t* data, size_t size) {
  InputDerivedChoices choose(data, size);
  ConnectionLimits limits;
  if (choose.one_in(4)) limits.max_queued_responses = choose.in_range(1, 4);
  FuzzHandler handler(limits.max_stream_piece);
  ConnectionCounters counters;
  uint64_t now = 1000;
  HttpConnection connection(handler, limits, now, &counters, "10.0.2.2:4242");

  std::string sent;
  size_t received = 0;
  size_t acknowledged = 0;
  const auto drain = [&](size_t room) {
    for (int guard = 0; guard < 100000; ++guard) {
      const std::string_view out = connection.peek_output(room);
      if (out.empty()) return;
      FUZZ_CHECK(out.size() <= room, "peek_output returned more than the room");
      const size_t taken = choose.one_in(8) ? out.size() / 2 + 1 : out.size();
      sent.append(out.data(), taken);
      connection.consume_output(taken, now);
    }
    FUZZ_CHECK(false, "output never ran dry");
  };

  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    const size_t piece = std::min<size_t>(input.size(), choose.in_range(1, choose.one_in(3) ? 8 : 600));
    connection.on_receive(input.substr(0, piece), now);
    received += piece;
    input.remove_prefix(piece);
    acknowledged += connection.take_consumed_input();
    FUZZ_CHECK(acknowledged <= received, "consumed more input than received");
    switch (choose.in_range(0, 7)) {
      case 0: now += 6000; break;   // past request_timeout_ms
      case 1: now += 16000; break;  // past idle and send-stall timeouts
      default: now += choose.in_range(0, 50); break;
    }
    if (choose.one_in(2)) connection.on_tick(now);
    if (!choose.one_in(4)) drain(choose.in_range(1, choose.one_in(2) ? 64 : 8192));
  }
  connection.on_peer_closed(now);
  drain(choose.in_range(1, 8192));
  connection.on_tick(now + 1);
  drain(8192);
  acknowledged += connection.take_consumed_input();
  FUZZ_CHECK(acknowledged <= received, "consumed more input than received");

  const bool aborted = connection.should_abort();
  if (!aborted) {
    FUZZ_CHECK(!connection.has_output(), "output left after a full drain");
    FUZZ_CHECK(connection.should_close(), "connection does not close after the peer's FIN");
  }

  std::string_view wire(sent);
  long next_seq = 1;
  bool closed = false;
  while (!wire.empty()) {
    FUZZ_CHECK(!closed, "bytes after a response that said Connection: close");
    const Parsed p = read_response(wire, handler, aborted);
    if (p.seq != 0) {
      FUZZ_CHECK(p.seq == next_seq, "handler responses out of order: " + std::to_string(p.seq));
      ++next_seq;
    }
    closed = p.close;
  }
  if (!aborted) {
    FUZZ_CHECK(static_cast<size_t>(next_seq - 1) == handler.made.size(), "a handler response was not sent");
  }
  FUZZ_CHECK(counters.requests == handler.made.size(), "request counter differs from handler calls");
}

}  // namespace
}  // namespace lantern::web::http

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lantern::web::http::run(data, size);
  return 0;
}
