// The console's HTTP/1.1 server on lwIP's raw TCP API (kernel-only, owner core only: the BSP that
// runs net::poll()). Each accepted connection gets a web::http::HttpConnection (the portable
// engine: framing, keep-alive, pipelining, limits, timeouts); this file only moves bytes between
// it and lwIP:
//   - receive: every pbuf is copied into the engine and freed at once; tcp_recved() acknowledges
//     only what the engine consumed, so a client pipelining faster than it reads is held back by
//     its TCP window.
//   - send: as much output as tcp_sndbuf() allows (BodySource pieces are pulled only then), more
//     from the sent callback as ACKs free the buffer, and from the poll callback after ERR_MEM.
//   - tcp_poll every ~1 s drives the engine's timeouts (request 5 s -> 408, idle 15 s, stalled
//     output 15 s -> reset) and a lingering close: after the last response the send side is shut
//     (FIN) and input is read and dropped until the peer's FIN or ~2 s, so a client still sending
//     never gets a reset that could destroy the response it has not read yet.
//   - errors (tcp_err) free the connection; nothing is left behind: every pbuf is freed where it
//     is received and every connection object is deleted on close, abort or error.
// Up to kMaxHttpConnections at once; more are refused with a RST (counted: http_refused).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/lib/result.h"
#include "web/http/http_connection.h"
#include "net/stack/ip_config.h"
#include "web/http/message.h"

namespace lantern::web::kernel {

// lwipopts.h MEMP_NUM_TCP_PCB is 40: 32 console connections + 4 discard (net/stack) + spare;
// PCBs in TIME_WAIT are reclaimed by lwIP when it runs out (tcp_alloc kills the oldest).
inline constexpr size_t kMaxHttpConnections = 32;

// Listens on `port` (any IPv4 address) and serves every request with `handler`, which must live
// for the rest of the boot. Call once on the owner core after net::start(). Errors:
// kInvalidState when the network is not running (no NIC, ip=off) or when already started; lwIP's
// failures as tcp_listen_on() reports them. On success http_server_status().port is the port.
// `address` (network order) 0.0.0.0: any local address (console.bind=, web/api/console_options.h).
Result<void> http_server_start(uint16_t port, http::RequestHandler* handler, const net::Ipv4& address = net::Ipv4{});

// The server's port and counters. Owner core (the BSP, where lwIP and the API handlers run).
struct HttpServerStatus {
  uint16_t port = 0;            // 0 until http_server_start() succeeded
  uint64_t connections = 0;     // accepted
  uint64_t refused = 0;         // no free connection slot: reset
  uint64_t requests = 0;        // complete requests handed to the handler
  uint64_t responses = 0;       // responses queued (the handler's and framing errors)
  uint64_t framing_errors = 0;  // 400/413/414/431/501 answered by the server itself
  uint64_t timeouts = 0;        // 408s, idle closes, stalled sends reset
  uint64_t aborted = 0;         // connections reset (by us, by the peer or by lwIP)
  uint64_t open = 0;            // connections open now
};
HttpServerStatus http_server_status();

}  // namespace lantern::web::kernel
