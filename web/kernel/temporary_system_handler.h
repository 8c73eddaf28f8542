// TEMPORARY: the console's request handler until the real API router (web/api/) is wired in.
// It keeps what the old placeholder listener (net/stack/http_placeholder, removed) served, plus the
// lwIP pool levels, so the server and its tests have something real to talk to:
//
//   GET|HEAD /api/v1/system -> 200 {"name":"lantern","version":...,"uptime_ms":...,"cpus":N,
//                                   "vmx":{"available":false,"cpuid_vmx":...,"reason":...},
//                                   "net_pools":[{"name","used","max","avail","errors"},...],
//                                   "http":{"open":...,"connections":...,"requests":...}}
//   other methods there     -> 405 method_not_allowed (Allow: GET, HEAD)
//   GET /api/v1/debug/stream?bytes=N  (N <= 16 MiB) -> 200, N bytes of "0123456789abcdef"
//                              repeated, text/plain, produced by a BodySource piece by piece, so
//                              tests can prove large bodies stream through lwIP (http_test.py)
//   anything else           -> 404 not_found
//
// The integrator replaces it with the web/api router in the http_server_start() call
// (kernel/core/main.cpp) and deletes these two files (http_test.py's streaming check then moves
// to a streamed API resource such as the VMCS dump).
#pragma once

#include "web/http/message.h"

namespace lantern::web::kernel {

class TemporarySystemHandler final : public http::RequestHandler {
 public:
  http::Response handle(const http::Request& request) override;
};

}  // namespace lantern::web::kernel
