#include "web/kernel/http_server.h"

#include <array>
#include <string>
#include <string_view>

#include "kernel/core/log.h"
#include "kernel/core/time.h"
#include "lwip/ip4_addr.h"
#include "lwip/tcp.h"
#include "net/stack/net.h"
#include "net/stack/tcp_listen.h"

namespace lantern::web::kernel {
namespace {

// tcp_poll() interval in units of two TCP coarse ticks (TCP_TMR_INTERVAL = 250 ms, lwIP
// tcp_priv.h; tcp_slowtmr runs every second tick): 2 units is about 1 s.
constexpr u8_t kPollInterval = 2;
// Lingering close: after our FIN, input is read and dropped for this many polls (~2 s) at most.
constexpr uint8_t kDrainPolls = 2;
// tcp_write() takes a u16_t length.
constexpr size_t kMaxWrite = 0xFFFF;

struct ServerConnection {
  ServerConnection(http::RequestHandler& handler, const http::ConnectionLimits& limits, uint64_t now_ms,
                   http::ConnectionCounters* counters, std::string peer, struct tcp_pcb* p, size_t s)
      : engine(handler, limits, now_ms, counters, std::move(peer)), pcb(p), slot(s) {}
  http::HttpConnection engine;
  struct tcp_pcb* pcb;
  size_t slot;
  bool peer_closed = false;
  bool draining = false;  // our FIN is queued; input is dropped until the peer's FIN
  uint8_t drain_polls = 0;
  bool waiting_for_memory = false;  // tcp_write said ERR_MEM (lwIP's segments or heap ran out)
};

std::array<ServerConnection*, kMaxHttpConnections> g_slots{};
http::RequestHandler* g_handler = nullptr;
http::ConnectionLimits g_limits;
http::ConnectionCounters g_counters;
uint16_t g_port = 0;
uint64_t g_connections = 0, g_refused = 0, g_aborted = 0;
bool g_started = false;

uint64_t now_ms() {
  return time::now_ns() / 1000000;
}

size_t open_connections() {
  size_t n = 0;
  for (const ServerConnection* c : g_slots) n += c != nullptr ? 1 : 0;
  return n;
}

void free_connection(ServerConnection* c) {
  g_slots[c->slot] = nullptr;
  delete c;
}

void detach(struct tcp_pcb* pcb) {
  tcp_arg(pcb, nullptr);
  tcp_recv(pcb, nullptr);
  tcp_sent(pcb, nullptr);
  tcp_err(pcb, nullptr);
  tcp_poll(pcb, nullptr, 0);
}

// Opens the receive window by what the engine consumed.
void acknowledge(ServerConnection* c) {
  size_t n = c->engine.take_consumed_input();
  while (n > 0) {
    const u16_t part = static_cast<u16_t>(n > 0xFFFF ? 0xFFFF : n);
    tcp_recved(c->pcb, part);
    n -= part;
  }
}

// Resets the connection. The callback that called this must return ERR_ABRT to lwIP.
err_t abort_connection(ServerConnection* c) {
  struct tcp_pcb* pcb = c->pcb;
  detach(pcb);  // tcp_abort() calls the error callback: it must not see `c` again
  free_connection(c);
  ++g_aborted;
  tcp_abort(pcb);
  return ERR_ABRT;
}

// Final close: every received byte acknowledged (tcp_close() resets a connection with unread
// data, lwIP tcp.c tcp_close_shutdown), callbacks detached, the object freed; lwIP finishes the
// FIN handshake on its own. tcp_close() fails only when it cannot allocate the FIN: then reset.
err_t close_connection(ServerConnection* c) {
  struct tcp_pcb* pcb = c->pcb;
  acknowledge(c);
  detach(pcb);
  free_connection(c);
  if (tcp_close(pcb) != ERR_OK) {
    ++g_aborted;
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  return ERR_OK;
}

// The engine is done: FIN after the queued output (tcp_shutdown of the send side only), then
// read and drop until the peer's FIN or kDrainPolls (lingering close, RFC 9112 9.6).
err_t finish(ServerConnection* c) {
  acknowledge(c);
  if (c->peer_closed) return close_connection(c);
  if (tcp_shutdown(c->pcb, 0, 1) != ERR_OK) return close_connection(c);
  c->draining = true;
  c->drain_polls = 0;
  return ERR_OK;
}

// Moves engine output into the send buffer while it has room. ERR_OK, or the tcp_write() error
// other than ERR_MEM (ERR_MEM: lwIP's TCP segments or heap ran out; retried later).
err_t write_output(ServerConnection* c) {
  const uint64_t now = now_ms();
  bool wrote = false;
  err_t result = ERR_OK;
  c->waiting_for_memory = false;
  for (;;) {
    size_t room = tcp_sndbuf(c->pcb);
    if (room == 0 || tcp_sndqueuelen(c->pcb) >= TCP_SND_QUEUELEN) break;
    if (room > kMaxWrite) room = kMaxWrite;
    const std::string_view out = c->engine.peek_output(room);
    if (out.empty()) break;
    const err_t err = tcp_write(c->pcb, out.data(), static_cast<u16_t>(out.size()), TCP_WRITE_FLAG_COPY);
    if (err == ERR_MEM) {
      c->waiting_for_memory = true;
      break;
    }
    if (err != ERR_OK) {
      result = err;
      break;
    }
    c->engine.consume_output(out.size(), now);
    wrote = true;
  }
  acknowledge(c);
  if (wrote) tcp_output(c->pcb);
  return result;
}

// Writes what the send buffer takes, then closes or aborts if the engine says so. Returns
// ERR_ABRT when the pcb was aborted.
err_t pump(ServerConnection* c) {
  if (c->draining) return ERR_OK;
  if (write_output(c) != ERR_OK) return abort_connection(c);
  if (c->engine.should_abort()) return abort_connection(c);
  if (c->engine.should_close()) return finish(c);
  return ERR_OK;
}

// Segments or heap were just freed (an ACK on `freed_by`): other connections that met ERR_MEM
// write now instead of at their next poll (~1 s). Only writes: closing or aborting another pcb
// from inside this pcb's callback is left to that pcb's own sent/poll callbacks.
void retry_waiting_for_memory(const ServerConnection* freed_by) {
  for (ServerConnection* other : g_slots) {
    if (other != nullptr && other != freed_by && other->waiting_for_memory && !other->draining) {
      (void)write_output(other);
    }
  }
}

err_t on_recv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t err) {
  auto* c = static_cast<ServerConnection*>(arg);
  if (c == nullptr) {  // not ours any more (never expected: detach() removes this callback)
    if (p != nullptr) {
      tcp_recved(pcb, p->tot_len);
      pbuf_free(p);
    }
    return ERR_OK;
  }
  if (p == nullptr) {  // the peer's FIN
    c->peer_closed = true;
    if (c->draining) return close_connection(c);
    c->engine.on_peer_closed(now_ms());
    return pump(c);
  }
  if (err != ERR_OK) {  // lwIP 2.1 never passes data with an error; taking the pbuf means freeing it
    pbuf_free(p);
    return ERR_OK;
  }
  if (c->draining) {
    tcp_recved(pcb, p->tot_len);
    pbuf_free(p);
    return ERR_OK;
  }
  const uint64_t now = now_ms();
  for (struct pbuf* q = p; q != nullptr; q = q->next) {
    c->engine.on_receive(std::string_view(static_cast<const char*>(q->payload), q->len), now);
  }
  pbuf_free(p);
  return pump(c);
}

err_t on_sent(void* arg, struct tcp_pcb*, u16_t) {
  auto* c = static_cast<ServerConnection*>(arg);
  if (c == nullptr) return ERR_OK;
  const err_t err = pump(c);
  retry_waiting_for_memory(err == ERR_ABRT ? nullptr : c);
  return err;
}

err_t on_poll(void* arg, struct tcp_pcb*) {
  auto* c = static_cast<ServerConnection*>(arg);
  if (c == nullptr) return ERR_OK;
  if (c->draining) {
    if (++c->drain_polls >= kDrainPolls) return close_connection(c);
    return ERR_OK;
  }
  const uint64_t timeouts_before = g_counters.timeouts;
  const bool was_in_request = c->engine.in_request();
  const bool had_output = c->engine.has_output();
  c->engine.on_tick(now_ms());
  if (g_counters.timeouts != timeouts_before) {
    const struct tcp_pcb* p = c->pcb;
    // An idle close is routine (browsers keep connections open); a 408 or a reset is not. The TCP
    // state tells a stalled peer or network apart from a stalled server.
    const bool routine = !had_output && !was_in_request;
    log::write(
        routine ? log::Level::kInfo : log::Level::kWarn,
        "http: %s: %s (%zu input bytes unparsed, %zu responses queued; tcp state %d snd_nxt %u lastack %u "
        "snd_wnd %u rcv_nxt %u rcv_wnd %u queuelen %u nrtx %u persist %u unacked %d unsent %d)",
        c->engine.peer().c_str(),
        had_output       ? "output stalled: reset"
        : was_in_request ? "request incomplete: 408"
                         : "idle: closing",
        c->engine.pending_input_bytes(), c->engine.queued_responses(), static_cast<int>(p->state),
        static_cast<unsigned>(p->snd_nxt), static_cast<unsigned>(p->lastack),
        static_cast<unsigned>(p->snd_wnd), static_cast<unsigned>(p->rcv_nxt),
        static_cast<unsigned>(p->rcv_wnd), static_cast<unsigned>(p->snd_queuelen),
        static_cast<unsigned>(p->nrtx), static_cast<unsigned>(p->persist_backoff), p->unacked != nullptr,
        p->unsent != nullptr);
  }
  return pump(c);
}

void on_error(void* arg, err_t) {
  // lwIP has already freed the pcb (a RST from the peer, or its own abort).
  if (auto* c = static_cast<ServerConnection*>(arg)) {
    ++g_aborted;
    free_connection(c);
  }
}

std::string peer_of(const struct tcp_pcb* pcb) {
  char ip[IP4ADDR_STRLEN_MAX];
  if (ip4addr_ntoa_r(ip_2_ip4(&pcb->remote_ip), ip, sizeof(ip)) == nullptr) return {};
  return std::string(ip) + ":" + std::to_string(pcb->remote_port);
}

err_t on_accept(void*, struct tcp_pcb* pcb, err_t err) {
  if (err != ERR_OK || pcb == nullptr) return ERR_VAL;
  size_t slot = kMaxHttpConnections;
  for (size_t i = 0; i < kMaxHttpConnections; ++i) {
    if (g_slots[i] == nullptr) {
      slot = i;
      break;
    }
  }
  if (slot == kMaxHttpConnections) {
    ++g_refused;
    LOG_WARN("http: all %zu connection slots busy; refusing a connection", kMaxHttpConnections);
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  auto* c = new ServerConnection(*g_handler, g_limits, now_ms(), &g_counters, peer_of(pcb), pcb, slot);
  g_slots[slot] = c;
  ++g_connections;
  tcp_arg(pcb, c);
  tcp_recv(pcb, on_recv);
  tcp_sent(pcb, on_sent);
  tcp_err(pcb, on_error);
  tcp_poll(pcb, on_poll, kPollInterval);
  // Responses are written in as few tcp_write() calls as the buffer allows and pushed with one
  // tcp_output(): Nagle (RFC 896) would only delay the last segment of each response.
  tcp_nagle_disable(pcb);
  return ERR_OK;
}

}  // namespace

Result<void> http_server_start(uint16_t port, http::RequestHandler* handler, const net::Ipv4& address) {
  if (handler == nullptr)
    return make_error(ErrorCode::kInvalidArgument, "http_server_start without a handler");
  if (g_started) return make_error(ErrorCode::kInvalidState, "http server already started");
  if (!net::status().running) return make_error(ErrorCode::kInvalidState, "the network is not running");
  g_handler = handler;
  TRY(net::tcp_listen_on(port, TCP_DEFAULT_LISTEN_BACKLOG, on_accept, address));
  g_started = true;
  g_port = port;
  LOG_INFO("http: console listening on port %u (%zu connections, request %llu ms, idle %llu ms)",
           static_cast<unsigned>(port), kMaxHttpConnections,
           static_cast<unsigned long long>(g_limits.request_timeout_ms),
           static_cast<unsigned long long>(g_limits.idle_timeout_ms));
  return ok();
}

HttpServerStatus http_server_status() {
  HttpServerStatus s;
  s.port = g_port;
  s.connections = g_connections;
  s.refused = g_refused;
  s.requests = g_counters.requests;
  s.responses = g_counters.responses;
  s.framing_errors = g_counters.framing_errors;
  s.timeouts = g_counters.timeouts;
  s.aborted = g_aborted;
  s.open = open_connections();
  return s;
}

}  // namespace lantern::web::kernel
