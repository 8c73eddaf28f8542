// One HTTP/1.1 server connection as a byte engine: bytes in (from TCP), bytes out (to TCP), a
// clock passed in by the caller. No lwIP, no allocation outside the C++ heap, no clock of its own,
// so every rule below is host-tested (tests/host/http_connection_test.cpp). The lwIP glue is
// web/kernel/http_server.cpp.
//
// Framing (RFC 9112), parsed with http-parser 2.9.4:
//   - Persistent connections (RFC 9112 9.3): HTTP/1.1 stays open unless the request says
//     `Connection: close`; HTTP/1.0 closes unless it says `Connection: keep-alive` (answered with
//     `Connection: keep-alive`).
//   - Pipelining (RFC 9112 9.3.2): requests are handled in arrival order and their responses are
//     sent in that order. At most `max_queued_responses` responses wait to be sent; beyond that
//     the connection stops parsing and stops acknowledging input (take_consumed_input()), so TCP
//     flow control holds the client back.
//   - HEAD (RFC 9110 9.3.2): the handler's response head with the real Content-Length, no body.
//   - `Expect: 100-continue` with a body to come: `100 Continue` (RFC 9110 10.1.1) in order, or
//     the final 413 when the announced body is too large.
//   - Request bodies: Content-Length, or chunked transfer coding. Any other transfer coding is
//     501 Not Implemented (RFC 9112 6.1: "A server that receives a request message with a
//     transfer coding it does not understand SHOULD respond with 501").
//   - Responses with a BodySource are sent with `Transfer-Encoding: chunked` (RFC 9112 7.1) to
//     HTTP/1.1 clients, and raw followed by a close to HTTP/1.0 clients (RFC 9112 6.3 item 8).
//     Each piece is pulled from the BodySource only when the caller asks for output and has room:
//     the body never exists whole in memory.
//   - Limits, each answered with the JSON error shape (error_response) and then a close:
//       request-target > max_target_bytes (2 KiB)            -> 414 uri_too_long
//       request line + header fields > max_head_bytes (8 KiB) -> 431 headers_too_large
//       body > max_body_bytes (16 KiB)                        -> 413 body_too_large
//       not HTTP, bad syntax, HTTP major version != 1          -> 400 bad_request
//       transfer coding other than chunked                     -> 501 not_implemented
//       request not complete request_timeout_ms after its first byte -> 408 request_timeout
//   - Idle (no request in progress, nothing to send) for idle_timeout_ms: closed without a word
//     (RFC 9112 9.5). Output waiting with no progress for send_stall_timeout_ms: aborted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "web/http/message.h"

namespace lantern::web::http {

struct ConnectionLimits {
  size_t max_target_bytes = 2 * 1024;      // 414 (RFC 9112 3: recommends at least 8000 octets; our
                                           // routes are short, so 2 KiB is plenty and keeps memory low)
  size_t max_head_bytes = 8 * 1024;        // 431 (RFC 6585 5), request line + fields + blank line
  size_t max_body_bytes = 16 * 1024;       // 413 (RFC 9110 15.5.14)
  size_t max_queued_responses = 4;         // pipelined responses waiting before input is held back
  size_t max_stream_piece = 4 * 1024;      // largest piece asked of a BodySource at once
  uint64_t request_timeout_ms = 5000;      // first byte of a request to its last: else 408
  uint64_t idle_timeout_ms = 15000;        // keep-alive connection with nothing going on: close
  uint64_t send_stall_timeout_ms = 15000;  // output waiting, none taken: abort
};

// Counts shared by all connections of one server (the kernel mirrors them into net::status()).
struct ConnectionCounters {
  uint64_t requests = 0;        // complete requests given to the handler
  uint64_t responses = 0;       // responses queued (the handler's and the server's own errors)
  uint64_t framing_errors = 0;  // 400/413/414/431/501 answered by the server itself
  uint64_t timeouts = 0;        // 408 sent, idle closes and stalled sends aborted
  uint64_t streamed = 0;        // responses sent from a BodySource
};

class HttpConnection {
 public:
  HttpConnection(RequestHandler& handler, const ConnectionLimits& limits, uint64_t now_ms,
                 ConnectionCounters* counters = nullptr, std::string peer = {});
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Bytes received from the peer. All are taken (copied); how many were processed, and so may be
  // acknowledged to TCP, is reported by take_consumed_input().
  void on_receive(std::string_view bytes, uint64_t now_ms);
  // The peer will send nothing more (TCP FIN). Requests already complete are still answered; a
  // partial one is dropped; then the connection closes.
  void on_peer_closed(uint64_t now_ms);
  // Periodic timer (the kernel calls it about once a second): timeouts.
  void on_tick(uint64_t now_ms);

  // The next output bytes, at most `room` of them (fewer is fine, empty when there is nothing to
  // send now). Valid until the next call on this object. May pull one piece from a BodySource.
  std::string_view peek_output(size_t room);
  // `n` bytes of the last peek_output() were handed to TCP.
  void consume_output(size_t n, uint64_t now_ms);

  // Input bytes processed (parsed or discarded) since the last call: acknowledge them to TCP.
  size_t take_consumed_input();

  // All output is out and the connection should now be closed gracefully.
  bool should_close() const;
  // Something is wrong enough to reset the connection (stalled output).
  bool should_abort() const { return abort_; }
  // Bytes waiting to be sent in the current buffer or responses queued.
  bool has_output() const;
  size_t queued_responses() const { return queue_.size(); }
  // Received bytes not parsed yet (held while the response queue is full).
  size_t pending_input_bytes() const { return pending_input_.size(); }
  // A request has begun arriving and is not complete.
  bool in_request() const { return in_request_; }
  // The peer address given at construction ("a.b.c.d:port"), for logs.
  const std::string& peer() const { return peer_; }

  // For the parser callbacks (http_connection.cpp); not part of the interface.
  struct ParserHooks;

 private:
  enum class Framing : uint8_t { kLength, kChunked, kUntilClose, kNone };
  struct Outgoing {
    std::string head;
    std::string body;  // fixed body (kLength); empty otherwise
    std::unique_ptr<BodySource> stream;
    Framing framing = Framing::kLength;
    bool close_after = false;
  };
  enum class Failure : uint8_t {
    kNone,
    kBadRequest,
    kUriTooLong,
    kHeadTooLarge,
    kBodyTooLarge,
    kNotImplemented
  };

  void process_input();
  void handle_complete_request();
  void queue_response(Response response, const Request& request, bool keep_alive);
  void queue_failure(Failure failure, const char* detail);
  void queue_error(int status, std::string_view code, std::string_view message);
  bool refill_output(size_t room);
  void stop_input();
  void reset_request();

  RequestHandler& handler_;
  ConnectionLimits limits_;
  ConnectionCounters* counters_;
  std::string peer_;

  // Parser state (http_parser is a C struct; kept opaque here).
  struct ParserState;
  std::unique_ptr<ParserState> parser_;

  // Input
  std::string pending_input_;  // received, not yet parsed (held while the queue is full)
  size_t consumed_unreported_ = 0;
  bool input_stopped_ = false;  // after an error, a close request or the peer's FIN
  bool peer_closed_ = false;

  // The request being parsed
  Request request_;
  bool in_request_ = false;
  bool request_complete_ = false;
  uint64_t request_started_ms_ = 0;
  std::string header_field_;
  bool last_was_value_ = false;
  Failure failure_ = Failure::kNone;
  const char* failure_detail_ = "";

  // Output
  std::deque<Outgoing> queue_;
  std::string out_;  // bytes of the front response ready to go
  size_t out_pos_ = 0;
  bool front_head_done_ = false;  // out_ held the front's head (and fixed body) already
  bool closing_ = false;          // no more responses: close once out_ and queue_ are empty
  bool abort_ = false;
  uint64_t last_activity_ms_ = 0;
  uint64_t last_output_progress_ms_ = 0;
};

}  // namespace lantern::web::http
