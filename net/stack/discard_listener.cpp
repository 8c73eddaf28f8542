#include "net/stack/discard_listener.h"

#include <array>

#include "kernel/core/log.h"
#include "lwip/tcp.h"
#include "net/stack/net.h"
#include "net/stack/tcp_listen.h"

namespace lantern::net {
namespace {

// tcp_poll() interval in units of two TCP coarse ticks (TCP_TMR_INTERVAL = 250 ms, lwIP
// tcp_priv.h; tcp_slowtmr runs every second tick): 2 units is about 1 s.
constexpr u8_t kPollInterval = 2;
constexpr uint8_t kIdlePollsMax = 30;  // about 30 s without a byte: abort

struct Connection {
  bool used = false;
  struct tcp_pcb* pcb = nullptr;
  uint64_t bytes = 0;
  uint8_t idle_polls = 0;
};

std::array<Connection, kMaxDiscardConnections> g_connections;
DiscardCounters g_counters;
bool g_started = false;

void detach(struct tcp_pcb* pcb) {
  tcp_arg(pcb, nullptr);
  tcp_recv(pcb, nullptr);
  tcp_err(pcb, nullptr);
  tcp_poll(pcb, nullptr, 0);
}

// Our side has nothing to send: closing answers the peer's FIN with ours. tcp_close() fails only
// when lwIP cannot allocate the FIN segment; then the connection is reset instead.
// Returns ERR_ABRT when the pcb was aborted (the callback must return that to lwIP).
err_t close_connection(Connection& c) {
  struct tcp_pcb* pcb = c.pcb;
  const NetStatus st = status();
  LOG_INFO(
      "discard: connection closed after %llu bytes (NIC rx %llu frames, %llu errors, %llu dropped;"
      " stack rx_no_pbuf %llu, rx_input_errors %llu, tx %llu frames, %llu dropped, %llu interrupts,"
      " %llu polls)",
      static_cast<unsigned long long>(c.bytes), static_cast<unsigned long long>(st.counters.rx_packets),
      static_cast<unsigned long long>(st.counters.rx_errors),
      static_cast<unsigned long long>(st.counters.rx_drops),
      static_cast<unsigned long long>(st.stack.rx_no_pbuf),
      static_cast<unsigned long long>(st.stack.rx_input_errors),
      static_cast<unsigned long long>(st.stack.tx_frames),
      static_cast<unsigned long long>(st.stack.tx_dropped),
      static_cast<unsigned long long>(st.stack.interrupts), static_cast<unsigned long long>(st.stack.polls));
  c = Connection{};
  ++g_counters.closed;
  detach(pcb);
  if (tcp_close(pcb) != ERR_OK) {
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  return ERR_OK;
}

err_t on_recv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t) {
  auto* c = static_cast<Connection*>(arg);
  if (p == nullptr) {  // the peer's FIN: all its data has been delivered
    if (c != nullptr) return close_connection(*c);
    if (tcp_close(pcb) == ERR_OK) return ERR_OK;  // not ours any more (callbacks detached)
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  // Drop the data, whatever `err` says (lwIP 2.1.3 always passes ERR_OK with data; returning an
  // error here would make lwIP keep `p` as refused data, so we never do). Acknowledge it at
  // once: tcp_recved() reopens the window, and lwIP sends a window update when it grew by
  // TCP_WND_UPDATE_THRESHOLD (a quarter of TCP_WND).
  const u16_t total = p->tot_len;
  tcp_recved(pcb, total);
  pbuf_free(p);
  g_counters.bytes += total;
  if (c != nullptr) {
    c->bytes += total;
    c->idle_polls = 0;
  }
  return ERR_OK;
}

err_t on_poll(void* arg, struct tcp_pcb* pcb) {
  auto* c = static_cast<Connection*>(arg);
  if (c == nullptr) return ERR_OK;
  if (++c->idle_polls <= kIdlePollsMax) return ERR_OK;
  LOG_WARN("discard: connection idle for %u s after %llu bytes; resetting",
           static_cast<unsigned>(kIdlePollsMax), static_cast<unsigned long long>(c->bytes));
  *c = Connection{};
  ++g_counters.aborted;
  detach(pcb);
  tcp_abort(pcb);
  return ERR_ABRT;
}

void on_error(void* arg, err_t) {
  // lwIP has already freed the pcb (RST from the peer, retransmissions exhausted, or its own
  // abort): only our slot is left to release.
  if (auto* c = static_cast<Connection*>(arg)) {
    *c = Connection{};
    ++g_counters.aborted;
  }
}

err_t on_accept(void*, struct tcp_pcb* pcb, err_t err) {
  if (err != ERR_OK || pcb == nullptr) return ERR_VAL;
  Connection* slot = nullptr;
  for (auto& c : g_connections) {
    if (!c.used) {
      slot = &c;
      break;
    }
  }
  if (slot == nullptr) {
    ++g_counters.refused;
    LOG_WARN("discard: all %zu connection slots busy; refusing a connection", kMaxDiscardConnections);
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  *slot = Connection{};
  slot->used = true;
  slot->pcb = pcb;
  ++g_counters.connections;
  tcp_arg(pcb, slot);
  tcp_recv(pcb, on_recv);
  tcp_err(pcb, on_error);
  tcp_poll(pcb, on_poll, kPollInterval);
  return ERR_OK;
}

}  // namespace

Result<void> discard_listener_start(uint16_t port) {
  if (g_started) return make_error(ErrorCode::kInvalidState, "discard listener already started");
  TRY(tcp_listen_on(port, kMaxDiscardConnections, on_accept));
  g_started = true;
  return ok();
}

DiscardCounters discard_counters() {
  return g_counters;
}

size_t discard_open_connections() {
  size_t n = 0;
  for (const auto& c : g_connections) n += c.used ? 1 : 0;
  return n;
}

}  // namespace lantern::net
