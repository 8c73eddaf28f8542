// A TCP discard service (RFC 863) over lwIP's raw TCP API (kernel-only, owner core only): reads
// and drops everything, acknowledging it at once (tcp_recved) so the receive window stays open;
// closes on the peer's FIN, forgets the connection on an error. It is the sink for
// `./lantern bench`'s bulk-upload figure (tools/bench.py, BENCH tcp_rx_<nic>).
//
// Up to kMaxDiscardConnections at once (more are refused with a RST) so it can never take the
// TCP PCBs the HTTP console needs; a connection idle for about 30 s is aborted. Each closed
// connection logs `discard: connection closed after <n> bytes` (the bench checks that figure).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::net {

inline constexpr uint16_t kDiscardPort = 9;  // RFC 863: "TCP port 9"
// lwipopts.h MEMP_NUM_TCP_PCB is 40: 32 console slots (web/kernel/http_server.h) + 4 here + spare.
inline constexpr size_t kMaxDiscardConnections = 4;

struct DiscardCounters {
  uint64_t connections = 0;  // accepted
  uint64_t refused = 0;      // no free slot: reset
  uint64_t bytes = 0;        // payload bytes received and dropped, all connections
  uint64_t closed = 0;       // closed after the peer's FIN
  uint64_t aborted = 0;      // reset by the peer, lwIP error, or idle
};

// Binds and listens on `port` (any IPv4 address). kOutOfMemory / kBusy as lwIP reports them.
// Owner core only, after lwip_init(); once per boot (kInvalidState the second time).
Result<void> discard_listener_start(uint16_t port);

// A copy of the counters (owner core; from another core the fields may be torn).
DiscardCounters discard_counters();
size_t discard_open_connections();

}  // namespace lantern::net
