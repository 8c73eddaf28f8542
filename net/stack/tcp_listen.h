// One way to open a listening TCP socket on lwIP's raw API, for every listener in net/stack.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"
#include "lwip/tcp.h"
#include "net/stack/ip_config.h"

namespace lantern::net {

// tcp_new + tcp_bind(address, port) + tcp_listen_with_backlog + tcp_accept. `address` in network
// order; 0.0.0.0 (the default) is any local address. On failure the PCB is closed and the error
// says which step failed (detail: lwIP's err_t, negated).
Result<struct tcp_pcb*> tcp_listen_on(uint16_t port, uint8_t backlog, tcp_accept_fn on_accept,
                                      const Ipv4& address = Ipv4{});

}  // namespace lantern::net
