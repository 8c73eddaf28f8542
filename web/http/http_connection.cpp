#include "web/http/http_connection.h"

#include <utility>

#include "http_parser.h"

namespace lantern::web::http {

struct HttpConnection::ParserState {
  http_parser parser{};
  uint64_t now_ms = 0;  // the caller's clock during the current call
  bool keep_alive = true;
};

namespace {

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view trim(std::string_view s) {  // RFC 9110 5.5: OWS around field values
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool equals_lower(std::string_view value, std::string_view lower_text) {
  if (value.size() != lower_text.size()) return false;
  for (size_t i = 0; i < value.size(); ++i) {
    if (lower(value[i]) != lower_text[i]) return false;
  }
  return true;
}

Method method_of(unsigned m) {
  switch (m) {
    case HTTP_GET: return Method::kGet;
    case HTTP_HEAD: return Method::kHead;
    case HTTP_POST: return Method::kPost;
    case HTTP_PUT: return Method::kPut;
    case HTTP_DELETE: return Method::kDelete;
    case HTTP_PATCH: return Method::kPatch;
    case HTTP_OPTIONS: return Method::kOptions;
    default: return Method::kOther;
  }
}

// A header name or value the handler produced must not contain CR or LF (RFC 9110 5.5): that
// would split the response.
bool safe_field(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

// RFC 9110 6.4.1: no content in 1xx, 204 and 304 responses, and no Content-Length in 1xx/204.
bool status_has_no_content(int status) {
  return status < 200 || status == 204 || status == 304;
}

std::string hex(size_t n) {  // RFC 9112 7.1: chunk-size = 1*HEXDIG
  std::string out;
  do {
    out.insert(out.begin(), "0123456789abcdef"[n & 0xF]);
    n >>= 4;
  } while (n != 0);
  return out;
}

}  // namespace

// The parser's C callbacks; each finds its connection through http_parser::data.
struct HttpConnection::ParserHooks {
  static HttpConnection& of(http_parser* p) { return *static_cast<HttpConnection*>(p->data); }

  static int on_message_begin(http_parser* p) {
    HttpConnection& c = of(p);
    c.reset_request();
    c.in_request_ = true;
    c.request_started_ms_ = c.parser_->now_ms;
    return 0;
  }

  static int on_url(http_parser* p, const char* at, size_t length) {
    HttpConnection& c = of(p);
    c.request_.method = method_of(p->method);  // known once the request-target starts
    if (c.request_.target.size() + length > c.limits_.max_target_bytes) {
      c.failure_ = Failure::kUriTooLong;
      return -1;
    }
    c.request_.target.append(at, length);
    return 0;
  }

  static int on_header_field(http_parser* p, const char* at, size_t length) {
    HttpConnection& c = of(p);
    if (c.last_was_value_ || c.request_.headers.empty()) {
      c.request_.headers.push_back(Header{});
      c.last_was_value_ = false;
    }
    std::string& name = c.request_.headers.back().name;
    for (size_t i = 0; i < length; ++i) name += lower(at[i]);
    return 0;
  }

  static int on_header_value(http_parser* p, const char* at, size_t length) {
    HttpConnection& c = of(p);
    if (c.request_.headers.empty()) return -1;  // the parser never does this
    c.request_.headers.back().value.append(at, length);
    c.last_was_value_ = true;
    return 0;
  }

  static int on_headers_complete(http_parser* p) {
    HttpConnection& c = of(p);
    Request& r = c.request_;
    r.method = method_of(p->method);
    r.method_text = http_method_str(static_cast<http_method>(p->method));
    r.http_major = p->http_major;
    r.http_minor = p->http_minor;
    for (Header& h : r.headers) h.value = std::string(trim(h.value));
    if (p->http_major != 1) {  // RFC 9112 2.3: only HTTP/1.x is spoken here
      c.failure_ = Failure::kBadRequest;
      c.failure_detail_ = "unsupported HTTP version (HTTP/1.0 and HTTP/1.1 are)";
      return -1;
    }
    for (const Header& h : r.headers) {
      if (h.name == "transfer-encoding" && !equals_lower(h.value, "chunked")) {
        c.failure_ = Failure::kNotImplemented;
        c.failure_detail_ = "transfer codings other than chunked are not supported";
        return -1;
      }
    }
    // Content-Length (RFC 9112 6.3): ULLONG_MAX when absent.
    if (p->content_length != UINT64_MAX && p->content_length > c.limits_.max_body_bytes) {
      c.failure_ = Failure::kBodyTooLarge;
      return -1;
    }
    // Origin-form "/path?query"; absolute-form "http://host/path" is reduced to its path
    // (RFC 9112 3.2.2: a server MUST accept it); anything else ("*", authority-form) is refused.
    std::string_view target(r.target);
    if (!target.empty() && target.front() != '/') {
      const size_t scheme = target.find("://");
      const size_t slash = scheme == std::string_view::npos ? scheme : target.find('/', scheme + 3);
      if (slash == std::string_view::npos) {
        c.failure_ = Failure::kBadRequest;
        c.failure_detail_ = "the request target must be an absolute path";
        return -1;
      }
      target.remove_prefix(slash);
    }
    // Expect: 100-continue (RFC 9110 10.1.1): a client waiting before it sends the body (curl
    // does for bodies over 1 KiB) is told to go on, after any responses queued before it.
    const bool body_follows =
        (p->content_length != UINT64_MAX && p->content_length > 0) || (p->flags & F_CHUNKED);
    const auto expect = r.header("expect");
    if (expect && equals_lower(*expect, "100-continue") && r.http_minor >= 1 && body_follows) {
      Outgoing go_on;
      go_on.head = "HTTP/1.1 100 Continue\r\n\r\n";
      go_on.framing = Framing::kNone;
      if (!c.has_output()) c.last_output_progress_ms_ = c.parser_->now_ms;
      c.queue_.push_back(std::move(go_on));
    }
    const size_t question = target.find('?');
    r.path = std::string(target.substr(0, question));
    r.query = question == std::string_view::npos ? std::string() : std::string(target.substr(question + 1));
    if (const size_t hash = r.query.find('#'); hash != std::string::npos) r.query.resize(hash);
    if (const size_t hash = r.path.find('#'); hash != std::string::npos) r.path.resize(hash);
    return 0;
  }

  static int on_body(http_parser* p, const char* at, size_t length) {
    HttpConnection& c = of(p);
    if (c.request_.body.size() + length > c.limits_.max_body_bytes) {  // chunked bodies
      c.failure_ = Failure::kBodyTooLarge;
      return -1;
    }
    c.request_.body.append(at, length);
    return 0;
  }

  static int on_message_complete(http_parser* p) {
    HttpConnection& c = of(p);
    c.request_complete_ = true;
    c.parser_->keep_alive = http_should_keep_alive(p) != 0 && !p->upgrade;
    // Stop here: http_parser_execute() returns with HPE_PAUSED right after this request, the
    // connection answers it, then parsing resumes with the next pipelined one.
    http_parser_pause(p, 1);
    return 0;
  }

  static const http_parser_settings& settings() {
    static const http_parser_settings s = [] {
      http_parser_settings v;
      http_parser_settings_init(&v);
      v.on_message_begin = on_message_begin;
      v.on_url = on_url;
      v.on_header_field = on_header_field;
      v.on_header_value = on_header_value;
      v.on_headers_complete = on_headers_complete;
      v.on_body = on_body;
      v.on_message_complete = on_message_complete;
      return v;
    }();
    return s;
  }
};

HttpConnection::HttpConnection(RequestHandler& handler, const ConnectionLimits& limits, uint64_t now_ms,
                               ConnectionCounters* counters, std::string peer)
    : handler_(handler),
      limits_(limits),
      counters_(counters),
      peer_(std::move(peer)),
      parser_(std::make_unique<ParserState>()),
      last_activity_ms_(now_ms),
      last_output_progress_ms_(now_ms) {
  // The parser counts the request line and header fields (up to the blank line) and fails with
  // HPE_HEADER_OVERFLOW beyond this. One process-wide setting; every connection uses the same.
  http_parser_set_max_header_size(static_cast<uint32_t>(limits_.max_head_bytes));
  http_parser_init(&parser_->parser, HTTP_REQUEST);
  parser_->parser.data = this;
  parser_->now_ms = now_ms;
  reset_request();
}

HttpConnection::~HttpConnection() = default;

void HttpConnection::reset_request() {
  request_ = Request{};
  request_.peer = peer_;
  in_request_ = false;
  request_complete_ = false;
  last_was_value_ = false;
  failure_ = Failure::kNone;
  failure_detail_ = "";
}

void HttpConnection::on_receive(std::string_view bytes, uint64_t now_ms) {
  parser_->now_ms = now_ms;
  last_activity_ms_ = now_ms;
  if (input_stopped_) {
    consumed_unreported_ += bytes.size();  // after an error or a close: read and dropped
    return;
  }
  pending_input_.append(bytes.data(), bytes.size());
  process_input();
}

void HttpConnection::on_peer_closed(uint64_t now_ms) {
  parser_->now_ms = now_ms;
  peer_closed_ = true;
  process_input();
}

void HttpConnection::process_input() {
  while (!input_stopped_ && !closing_ && !pending_input_.empty() &&
         queue_.size() < limits_.max_queued_responses) {
    http_parser* p = &parser_->parser;
    const size_t n =
        http_parser_execute(p, &ParserHooks::settings(), pending_input_.data(), pending_input_.size());
    pending_input_.erase(0, n);
    consumed_unreported_ += n;
    const http_errno err = HTTP_PARSER_ERRNO(p);
    if (err == HPE_PAUSED) {
      handle_complete_request();
      http_parser_pause(p, 0);
      continue;
    }
    if (err == HPE_OK) continue;
    if (failure_ == Failure::kNone) {
      if (err == HPE_HEADER_OVERFLOW) {
        failure_ = Failure::kHeadTooLarge;
      } else if (err == HPE_INVALID_TRANSFER_ENCODING) {
        failure_ = Failure::kNotImplemented;
        failure_detail_ = "transfer codings other than chunked are not supported";
      } else {
        failure_ = Failure::kBadRequest;
        failure_detail_ = http_errno_description(err);
      }
    }
    queue_failure(failure_, failure_detail_);
  }
  if (peer_closed_ && !input_stopped_ && pending_input_.empty()) {
    // Nothing more will come: a partial request is dropped (nobody would read an answer to it);
    // responses already queued still go out, then the connection closes.
    stop_input();
    closing_ = true;
  }
}

void HttpConnection::handle_complete_request() {
  if (counters_) ++counters_->requests;
  const bool keep_alive = parser_->keep_alive;
  Response response = handler_.handle(request_);
  queue_response(std::move(response), request_, keep_alive);
  reset_request();
}

void HttpConnection::queue_response(Response response, const Request& request, bool keep_alive) {
  if (!has_output()) last_output_progress_ms_ = parser_->now_ms;
  Outgoing out;
  const bool http10 = request.http_major == 1 && request.http_minor == 0;
  const bool head_only = request.method == Method::kHead;
  out.close_after = !keep_alive || response.close_after;
  if (status_has_no_content(response.status)) {
    out.framing = Framing::kNone;
  } else if (response.stream) {
    out.framing = http10 ? Framing::kUntilClose : Framing::kChunked;
    if (http10) out.close_after = true;  // RFC 9112 6.3 item 8: the close ends the body
  } else {
    out.framing = Framing::kLength;
  }

  std::string& h = out.head;
  h.reserve(160);
  h += "HTTP/1.1 ";  // RFC 9110 6.2: our highest minor version, whatever the client's
  h += std::to_string(response.status);
  h += ' ';
  h += reason_phrase(response.status);
  h += "\r\n";
  if (out.framing != Framing::kNone && !response.content_type.empty() && safe_field(response.content_type)) {
    h += "Content-Type: ";
    h += response.content_type;
    h += "\r\n";
  }
  if (out.framing == Framing::kLength) {
    h += "Content-Length: ";
    h += std::to_string(response.body.size());
    h += "\r\n";
  } else if (out.framing == Framing::kChunked) {
    h += "Transfer-Encoding: chunked\r\n";
  }
  // API answers are live state: never cached. A handler that knows better (the console's
  // embedded pages, revalidated by ETag) says so with its own Cache-Control.
  bool handler_cache_control = false;
  for (const Header& extra : response.headers) handler_cache_control |= extra.name == "cache-control";
  if (!handler_cache_control) h += "Cache-Control: no-store\r\n";
  for (const Header& extra : response.headers) {
    if (extra.name.empty() || !safe_field(extra.name) || !safe_field(extra.value)) continue;
    h += extra.name;
    h += ": ";
    h += extra.value;
    h += "\r\n";
  }
  if (out.close_after) {
    h += "Connection: close\r\n";  // RFC 9112 9.6
  } else if (http10) {
    h += "Connection: keep-alive\r\n";  // RFC 9112 C.2.2: 1.0 persistence is opt-in
  }
  h += "\r\n";

  if (!head_only && out.framing == Framing::kLength) out.body = std::move(response.body);
  if (!head_only && (out.framing == Framing::kChunked || out.framing == Framing::kUntilClose)) {
    out.stream = std::move(response.stream);
    if (counters_) ++counters_->streamed;
  }
  if (counters_) ++counters_->responses;
  if (out.close_after) {
    stop_input();
    closing_ = true;
  }
  queue_.push_back(std::move(out));
}

void HttpConnection::queue_failure(Failure failure, const char* detail) {
  if (counters_) ++counters_->framing_errors;
  switch (failure) {
    case Failure::kUriTooLong:
      queue_error(414, "uri_too_long", "the request target is longer than the server accepts");
      break;
    case Failure::kHeadTooLarge:
      queue_error(431, "headers_too_large",
                  "the request line and header fields are larger than the server accepts");
      break;
    case Failure::kBodyTooLarge:
      queue_error(413, "body_too_large", "the request body is larger than the server accepts");
      break;
    case Failure::kNotImplemented: queue_error(501, "not_implemented", detail); break;
    case Failure::kBadRequest:
    case Failure::kNone: queue_error(400, "bad_request", *detail ? detail : "malformed request"); break;
  }
}

void HttpConnection::queue_error(int status, std::string_view code, std::string_view message) {
  Response r = error_response(status, code, message);
  r.close_after = true;  // the framing is lost: nothing after this request can be trusted
  Request shape;         // only the method matters (no body for HEAD); version is 1.1
  shape.method = in_request_ ? request_.method : Method::kGet;
  queue_response(std::move(r), shape, false);
  reset_request();
}

void HttpConnection::stop_input() {
  input_stopped_ = true;
  consumed_unreported_ += pending_input_.size();
  std::string().swap(pending_input_);
}

bool HttpConnection::has_output() const {
  return out_pos_ < out_.size() || !queue_.empty();
}

bool HttpConnection::should_close() const {
  return closing_ && !has_output();
}

size_t HttpConnection::take_consumed_input() {
  return std::exchange(consumed_unreported_, 0);
}

bool HttpConnection::refill_output(size_t room) {
  constexpr size_t kChunkOverhead = 16 + 2 + 2 + 5;  // hex size, CRLF, CRLF, last-chunk
  while (!queue_.empty()) {
    Outgoing& front = queue_.front();
    if (!front_head_done_) {
      out_ = std::move(front.head);
      out_ += front.body;
      std::string().swap(front.body);
      front_head_done_ = true;
      if (!front.stream) {
        queue_.pop_front();
        front_head_done_ = false;
      }
      return true;
    }
    // Streaming: one piece, sized to what the caller can take now.
    size_t want = room > kChunkOverhead ? room - kChunkOverhead : 1;
    if (want > limits_.max_stream_piece) want = limits_.max_stream_piece;
    std::string piece;
    const bool more = front.stream->next(piece, want);
    if (!piece.empty()) {
      if (front.framing == Framing::kChunked) {  // RFC 9112 7.1: chunk-size CRLF data CRLF
        out_ = hex(piece.size());
        out_ += "\r\n";
        out_ += piece;
        out_ += "\r\n";
      } else {
        out_ = std::move(piece);
      }
    }
    if (!more) {
      if (front.framing == Framing::kChunked) out_ += "0\r\n\r\n";  // last-chunk, no trailers
      queue_.pop_front();
      front_head_done_ = false;
    }
    if (!out_.empty()) return true;
    if (more) return false;  // the source had nothing right now; asked again later
  }
  return false;
}

std::string_view HttpConnection::peek_output(size_t room) {
  if (room == 0 || abort_) return {};
  if (out_pos_ >= out_.size()) {
    out_.clear();
    out_pos_ = 0;
    if (!refill_output(room)) return {};
  }
  const size_t left = out_.size() - out_pos_;
  return std::string_view(out_).substr(out_pos_, left < room ? left : room);
}

void HttpConnection::consume_output(size_t n, uint64_t now_ms) {
  parser_->now_ms = now_ms;
  const size_t left = out_.size() - out_pos_;
  out_pos_ += n < left ? n : left;
  last_output_progress_ms_ = now_ms;
  last_activity_ms_ = now_ms;
  if (out_pos_ >= out_.size()) {
    std::string().swap(out_);  // a big fixed body is not kept once it is handed over
    out_pos_ = 0;
  }
  if (!pending_input_.empty() && queue_.size() < limits_.max_queued_responses) process_input();
}

void HttpConnection::on_tick(uint64_t now_ms) {
  parser_->now_ms = now_ms;
  if (abort_) return;
  if (has_output()) {
    if (now_ms - last_output_progress_ms_ >= limits_.send_stall_timeout_ms) {
      abort_ = true;
      if (counters_) ++counters_->timeouts;
    }
    return;
  }
  if (closing_) return;
  if (in_request_) {
    if (now_ms - request_started_ms_ >= limits_.request_timeout_ms) {
      if (counters_) ++counters_->timeouts;
      queue_error(408, "request_timeout", "the request did not arrive in time");
    }
    return;
  }
  if (pending_input_.empty() && now_ms - last_activity_ms_ >= limits_.idle_timeout_ms) {
    if (counters_) ++counters_->timeouts;
    stop_input();
    closing_ = true;  // RFC 9112 9.5: a server may close an idle connection
  }
}

}  // namespace lantern::web::http
