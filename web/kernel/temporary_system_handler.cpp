#include "web/kernel/temporary_system_handler.h"

#include <nlohmann/json.hpp>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/arch/x86_64/percpu.h"
#include "kernel/core/time.h"
#include "net/stack/net.h"
#include "web/kernel/net_pools.h"

namespace lantern::web::kernel {
namespace {

using nlohmann::json;

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
  const net::StackCounters s = net::status().stack;
  json body = {{"name", "lantern"},
               {"version", LANTERN_VERSION},
               {"uptime_ms", time::now_ns() / 1000000},
               {"cpus", cpu_count()},
               {"vmx", std::move(vmx)},
               {"net_pools", std::move(pools)},
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
