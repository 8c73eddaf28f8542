// The placeholder HTTP listener on TCP port 80 over lwIP's raw TCP API (kernel-only, owner core
// only). Reads each request head until CRLF CRLF (at most http::kMaxRequestHeadBytes), answers
// with net/stack/http_placeholder.h and closes. Up to kMaxHttpConnections at once; more are
// refused with a RST. A connection idle for 10 s is aborted.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/lib/result.h"
#include "net/stack/net.h"

namespace lantern::net {

inline constexpr size_t kMaxHttpConnections = 32;  // lwipopts.h MEMP_NUM_TCP_PCB is 40

Result<void> http_listener_start(uint16_t port, StackCounters* counters);
size_t http_open_connections();

}  // namespace lantern::net
