#include "web/kernel/net_pools.h"

#include "lwip/memp.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/stats.h"

#if !MEMP_STATS || !MEM_STATS
#error "net_pool_levels() needs MEMP_STATS and MEM_STATS (net/lwip/port/lwipopts.h)"
#endif

namespace lantern::web::kernel {
namespace {

// The memp_t order (lwip/memp.h builds the enum from the same list).
constexpr const char* kPoolNames[] = {
#define LWIP_MEMPOOL(name, num, size, desc) #name,
#include "lwip/priv/memp_std.h"
};
static_assert(sizeof(kPoolNames) / sizeof(kPoolNames[0]) == MEMP_MAX, "one name per lwIP pool");

api::NetPoolLevel level(const char* name, const struct stats_mem& s) {
  api::NetPoolLevel l;
  l.name = name;
  l.used = s.used;
  l.max = s.max;
  l.avail = s.avail;
  l.errors = s.err;
  return l;
}

}  // namespace

std::vector<api::NetPoolLevel> net_pool_levels() {
  std::vector<api::NetPoolLevel> out;
  out.reserve(MEMP_MAX + 2);
  for (size_t i = 0; i < MEMP_MAX; ++i) {
    const struct stats_mem* s = lwip_stats.memp[i];
    if (s != nullptr) out.push_back(level(kPoolNames[i], *s));
  }
  out.push_back(level("heap", lwip_stats.mem));
  api::NetPoolLevel time_wait;
  time_wait.name = "TCP_PCB_TIME_WAIT";
  for (const struct tcp_pcb* pcb = tcp_tw_pcbs; pcb != nullptr; pcb = pcb->next) ++time_wait.used;
  out.push_back(time_wait);
  return out;
}

}  // namespace lantern::web::kernel
