#include "web/kernel/temporary_system_handler.h"

#include <nlohmann/json.hpp>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/time.h"
#include "lwip/stats.h"
#include "net/stack/net.h"
#include "web/kernel/net_pools.h"

namespace lantern::web::kernel {
namespace {

using nlohmann::json;

constexpr uint64_t kMaxStreamTestBytes = 16u << 20;

// N bytes of "0123456789abcdef" repeated; byte i is the pattern's (i % 16)th.
class PatternSource final : public http::BodySource {
 public:
  explicit PatternSource(uint64_t total) : total_(total) {}
  bool next(std::string& out, size_t max_bytes) override {
    static constexpr char kPattern[] = "0123456789abcdef";
    uint64_t n = total_ - sent_;
    if (n > max_bytes) n = max_bytes;
    for (uint64_t i = 0; i < n; ++i) out += kPattern[(sent_ + i) % 16];
    sent_ += n;
    return sent_ < total_;
  }

 private:
  uint64_t total_;
  uint64_t sent_ = 0;
};

http::Response stream_test_response(const http::Request& request) {
  const auto bytes = request.query_param("bytes");
  uint64_t n = 0;
  bool valid = bytes.has_value() && !bytes->empty() && bytes->size() <= 9;
  if (valid) {
    for (char c : *bytes) {
      if (c < '0' || c > '9') valid = false;
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
  }
  if (!valid || n > kMaxStreamTestBytes) {
    return http::error_response(400, "bad_request", "bytes=N with N at most 16777216 is required");
  }
  http::Response r;
  r.content_type = "text/plain; charset=utf-8";
  r.stream = std::make_unique<PatternSource>(n);
  return r;
}

// CPUID.01H:ECX.VMX[bit 5] (Intel SDM Vol. 3C 24.6 "Discovering support for VMX").
constexpr uint32_t kCpuidEcxVmx = 1u << 5;

http::Response system_response() {
  const bool vmx_cpuid = (cpu::cpuid(1).ecx & kCpuidEcxVmx) != 0;
  json vmx = {{"available", false}, {"cpuid_vmx", vmx_cpuid}};
  vmx["reason"] = vmx_cpuid ? "VMX is not brought up yet" : "CPUID.1:ECX.VMX[bit 5] is 0";
  json pools = json::array();
  for (const auto& p : net_pool_levels()) {
    pools.push_back(
        {{"name", p.name}, {"used", p.used}, {"max", p.max}, {"avail", p.avail}, {"errors", p.errors}});
  }
  const net::NetStatus st = net::status();
  const net::StackCounters& s = st.stack;
  const net::NicCounters& nic = st.counters;
  json net_counters = {{"nic_rx_packets", nic.rx_packets},
                       {"nic_rx_drops", nic.rx_drops},
                       {"nic_rx_errors", nic.rx_errors},
                       {"nic_tx_packets", nic.tx_packets},
                       {"nic_tx_ring_full", nic.tx_ring_full},
                       {"rx_frames", s.rx_frames},
                       {"rx_no_pbuf", s.rx_no_pbuf},
                       {"rx_input_errors", s.rx_input_errors},
                       {"tx_frames", s.tx_frames},
                       {"tx_dropped", s.tx_dropped},
                       {"interrupts", s.interrupts},
                       {"polls", s.polls},
                       {"tcp_drops", lwip_stats.tcp.drop},
                       {"tcp_mem_errors", lwip_stats.tcp.memerr},
                       {"tcp_xmit", lwip_stats.tcp.xmit},
                       {"tcp_recv", lwip_stats.tcp.recv}};
  json body = {{"name", "lantern"},
               {"version", LANTERN_VERSION},
               {"uptime_ms", time::now_ns() / 1000000},
               {"cpus", cpu_count()},
               {"vmx", std::move(vmx)},
               {"net_pools", std::move(pools)},
               {"net", std::move(net_counters)},
               {"http",
                {{"open", s.http_open},
                 {"connections", s.http_connections},
                 {"refused", s.http_refused},
                 {"requests", s.http_requests},
                 {"responses", s.http_responses},
                 {"framing_errors", s.http_framing_errors},
                 {"timeouts", s.http_timeouts},
                 {"aborted", s.http_aborted}}}};
  http::Response r;
  r.body = body.dump();
  return r;
}

}  // namespace

http::Response TemporarySystemHandler::handle(const http::Request& request) {
  if (request.path == "/api/v1/debug/stream" &&
      (request.method == http::Method::kGet || request.method == http::Method::kHead)) {
    return stream_test_response(request);
  }
  if (request.path != "/api/v1/system") {
    return http::error_response(404, "not_found",
                                "no such resource (this temporary handler serves /api/v1/system)");
  }
  if (request.method != http::Method::kGet && request.method != http::Method::kHead) {
    http::Response r = http::error_response(405, "method_not_allowed", "only GET and HEAD are allowed here");
    r.headers.push_back({"Allow", "GET, HEAD"});
    return r;
  }
  return system_response();
}

}  // namespace lantern::web::kernel
