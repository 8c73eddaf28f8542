// The lwIP netif over a NicDriver (kernel-only): linkoutput -> NicDriver::transmit, received
// frames -> pbuf_alloc(PBUF_RAW, PBUF_POOL) -> netif->input (ethernet_input). Owner core only.
#pragma once

#include <cstddef>

#include "lwip/netif.h"
#include "net/stack/net.h"
#include "net/stack/nic_driver.h"

namespace lantern::net {

struct NetifBridge {
  struct netif netif {};
  NicDriver* nic = nullptr;
  StackCounters* counters = nullptr;
};

// netif_add()'s init callback; netif->state must point at the NetifBridge.
err_t netif_bridge_init(struct netif* netif);

// Moves up to `budget` received frames into lwIP; returns how many the NIC delivered.
size_t netif_bridge_receive(NetifBridge& bridge, size_t budget);

}  // namespace lantern::net
