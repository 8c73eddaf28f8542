#include "net/stack/http_listener.h"

#include <array>
#include <string>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/log.h"
#include "kernel/core/time.h"
#include "lwip/tcp.h"
#include "net/stack/http_placeholder.h"
#include "net/stack/tcp_listen.h"

namespace lantern::net {
namespace {

// tcp_poll() interval in TCP coarse timer ticks (TCP_TMR_INTERVAL = 250 ms, lwIP tcp_priv.h; the
// poll callback fires every 2 ticks of the slow timer, i.e. every 500 ms per unit).
constexpr u8_t kPollInterval = 2;     // about 1 s
constexpr uint8_t kIdlePollsMax = 10;  // about 10 s without progress: abort

// CPUID.01H:ECX.VMX[bit 5] (Intel SDM Vol. 3C 24.6 "Discovering support for VMX").
constexpr uint32_t kCpuidEcxVmx = 1u << 5;

struct Connection {
  bool used = false;
  struct tcp_pcb* pcb = nullptr;
  std::array<char, http::kMaxRequestHeadBytes> request{};
  size_t received = 0;
  bool answered = false;
  std::string response;
  size_t queued = 0;  // bytes of `response` handed to tcp_write
  uint8_t idle_polls = 0;
};

std::array<Connection, kMaxHttpConnections> g_connections;
StackCounters* g_counters = nullptr;

void release(Connection& c) {
  c.used = false;
  c.pcb = nullptr;
  c.received = 0;
  c.answered = false;
  std::string().swap(c.response);
  c.queued = 0;
  c.idle_polls = 0;
}

// Detaches the callbacks and closes gracefully (FIN after the queued data); aborts when lwIP
// cannot allocate for the close (tcp_close() returns ERR_MEM only then).
void close_connection(Connection& c) {
  struct tcp_pcb* pcb = c.pcb;
  release(c);
  tcp_arg(pcb, nullptr);
  tcp_recv(pcb, nullptr);
  tcp_sent(pcb, nullptr);
  tcp_err(pcb, nullptr);
  tcp_poll(pcb, nullptr, 0);
  if (tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
}

// Queues as much of the response as the send buffer takes; closes once all of it is queued.
// Returns ERR_ABRT if the connection was aborted.
err_t send_more(Connection& c) {
  while (c.queued < c.response.size()) {
    const size_t room = tcp_sndbuf(c.pcb);
    if (room == 0) break;
    size_t chunk = c.response.size() - c.queued;
    if (chunk > room) chunk = room;
    if (chunk > 0xFFFF) chunk = 0xFFFF;
    const err_t err = tcp_write(c.pcb, c.response.data() + c.queued, static_cast<u16_t>(chunk),
                                TCP_WRITE_FLAG_COPY);
    if (err == ERR_MEM) break;  // retried from the sent/poll callbacks
    if (err != ERR_OK) {
      struct tcp_pcb* pcb = c.pcb;
      release(c);
      tcp_arg(pcb, nullptr);
      tcp_abort(pcb);
      return ERR_ABRT;
    }
    c.queued += chunk;
  }
  tcp_output(c.pcb);
  if (c.queued == c.response.size()) close_connection(c);
  return ERR_OK;
}

http::SystemInfo system_info() {
  http::SystemInfo info;
  info.version = LANTERN_VERSION;
  info.uptime_ms = time::now_ns() / 1000000;
  info.cpus = cpu_count();
  info.vmx_cpuid = (cpu::cpuid(1).ecx & kCpuidEcxVmx) != 0;
  info.vmx_available = false;
  info.vmx_reason = info.vmx_cpuid ? "VMX is not brought up yet" : "CPUID.1:ECX.VMX[bit 5] is 0";
  return info;
}

err_t answer(Connection& c, bool too_large) {
  const http::Response response =
      too_large ? http::respond_too_large()
                : http::respond(std::string_view(c.request.data(), c.received), system_info());
  c.answered = true;
  c.response = response.text;
  c.queued = 0;
  if (g_counters) ++g_counters->http_responses;
  return send_more(c);
}

err_t on_recv(void* arg, struct tcp_pcb* pcb, struct pbuf* p, err_t err) {
  auto* c = static_cast<Connection*>(arg);
  if (c == nullptr) {  // already detached
    if (p) {
      tcp_recved(pcb, p->tot_len);
      pbuf_free(p);
    }
    return ERR_OK;
  }
  if (p == nullptr) {  // the peer closed its side (FIN)
    if (!c->answered) close_connection(*c);
    return ERR_OK;
  }
  if (err != ERR_OK) {
    // We took the pbuf (freed it): ERR_OK tells lwIP so. Returning err would make lwIP keep it
    // as refused data and free it again.
    pbuf_free(p);
    return ERR_OK;
  }
  c->idle_polls = 0;
  const u16_t total = p->tot_len;
  if (!c->answered) {
    const size_t room = c->request.size() - c->received;
    const u16_t take = static_cast<u16_t>(total < room ? total : room);
    pbuf_copy_partial(p, c->request.data() + c->received, take, 0);
    c->received += take;
  }
  tcp_recved(pcb, total);
  pbuf_free(p);
  if (c->answered) return ERR_OK;  // a body or pipelined bytes: ignored, we close after answering
  const std::string_view seen(c->request.data(), c->received);
  if (auto head = http::request_head_length(seen)) {
    c->received = *head;
    return answer(*c, false);
  }
  if (c->received == c->request.size()) return answer(*c, true);
  return ERR_OK;
}

err_t on_sent(void* arg, struct tcp_pcb*, u16_t) {
  auto* c = static_cast<Connection*>(arg);
  if (c == nullptr) return ERR_OK;
  c->idle_polls = 0;
  return send_more(*c);
}

err_t on_poll(void* arg, struct tcp_pcb* pcb) {
  auto* c = static_cast<Connection*>(arg);
  if (c == nullptr) return ERR_OK;
  if (++c->idle_polls > kIdlePollsMax) {
    release(*c);
    tcp_arg(pcb, nullptr);
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  if (c->answered) return send_more(*c);
  return ERR_OK;
}

void on_error(void* arg, err_t) {
  // lwIP already freed the pcb (RST, or an abort of its own).
  if (auto* c = static_cast<Connection*>(arg)) release(*c);
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
    if (g_counters) ++g_counters->http_refused;
    LOG_WARN("http: all %zu connection slots busy; refusing a connection", kMaxHttpConnections);
    tcp_abort(pcb);
    return ERR_ABRT;
  }
  slot->used = true;
  slot->pcb = pcb;
  if (g_counters) ++g_counters->http_connections;
  tcp_arg(pcb, slot);
  tcp_recv(pcb, on_recv);
  tcp_sent(pcb, on_sent);
  tcp_err(pcb, on_error);
  tcp_poll(pcb, on_poll, kPollInterval);
  tcp_nagle_disable(pcb);  // one small response: send it now
  return ERR_OK;
}

}  // namespace

Result<void> http_listener_start(uint16_t port, StackCounters* counters) {
  g_counters = counters;
  TRY(tcp_listen_on(port, TCP_DEFAULT_LISTEN_BACKLOG, on_accept));
  return ok();
}

size_t http_open_connections() {
  size_t n = 0;
  for (const auto& c : g_connections) n += c.used ? 1 : 0;
  return n;
}

}  // namespace lantern::net
