// lwIP's memory pool levels for the console (kernel-only; owner core, or any core accepting torn
// counters). /api/v1/system reports them as `net_pools`; the integration tests compare them
// before and after a burst of abuse to prove nothing leaked.
#pragma once

#include <vector>

#include "web/api/console_model.h"

namespace lantern::web::kernel {

// One entry per lwIP memp pool in lwIP's own order (memp_std.h names: "UDP_PCB", "TCP_PCB",
// "TCP_PCB_LISTEN", "TCP_SEG", "REASSDATA", "FRAG_PBUF", "ARP_QUEUE", "SYS_TIMEOUT", "PBUF"
// (PBUF_REF/ROM headers), "PBUF_POOL"), then "heap" (lwIP's mem.c heap: PBUF_RAM, i.e. queued TCP
// output), then "TCP_PCB_TIME_WAIT": how many of TCP_PCB's `used` are in TIME_WAIT (RFC 9293
// 3.6.1: held for 2 MSL after an active close, reclaimed by lwIP when the pool runs dry), with
// avail 0. From lwip_stats (lwipopts.h: MEMP_STATS, MEM_STATS).
std::vector<api::NetPoolLevel> net_pool_levels();

}  // namespace lantern::web::kernel
