#include "net/stack/tcp_listen.h"

namespace lantern::net {

Result<struct tcp_pcb*> tcp_listen_on(uint16_t port, uint8_t backlog, tcp_accept_fn on_accept,
                                      const Ipv4& address) {
  struct tcp_pcb* pcb = tcp_new_ip_type(IPADDR_TYPE_V4);
  if (pcb == nullptr) return make_error(ErrorCode::kOutOfMemory, "tcp_new failed");
  ip_addr_t local;
  IP_ADDR4(&local, address[0], address[1], address[2], address[3]);
  const err_t bound = tcp_bind(pcb, &local, port);
  if (bound != ERR_OK) {
    tcp_close(pcb);
    return make_error(ErrorCode::kBusy, "tcp_bind failed", static_cast<uint64_t>(-bound));
  }
  struct tcp_pcb* listener = tcp_listen_with_backlog(pcb, backlog);
  if (listener == nullptr) {
    tcp_close(pcb);
    return make_error(ErrorCode::kOutOfMemory, "tcp_listen failed");
  }
  tcp_accept(listener, on_accept);
  return listener;
}

}  // namespace lantern::net
