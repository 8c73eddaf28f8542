#include "net/stack/netif_bridge.h"

#include <span>

#include "lwip/etharp.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"
#include "netif/ethernet.h"

namespace lantern::net {
namespace {

constexpr uint16_t kMtu = 1500;  // Ethernet II payload (IEEE 802.3 / RFC 894)

// One frame's worth of contiguous bytes for chained pbufs (lwIP owns one core: one buffer).
alignas(16) uint8_t g_tx_bounce[kEthernetMaxFrameBytes];

err_t linkoutput(struct netif* netif, struct pbuf* p) {
  auto& bridge = *static_cast<NetifBridge*>(netif->state);
  if (p->tot_len > sizeof(g_tx_bounce) || p->tot_len < kEthernetHeaderBytes) {
    ++bridge.counters->tx_dropped;
    LINK_STATS_INC(link.lenerr);
    return ERR_IF;
  }
  std::span<const uint8_t> frame;
  if (p->next == nullptr) {
    frame = std::span<const uint8_t>(static_cast<const uint8_t*>(p->payload), p->len);
  } else {
    const u16_t copied = pbuf_copy_partial(p, g_tx_bounce, p->tot_len, 0);
    frame = std::span<const uint8_t>(g_tx_bounce, copied);
  }
  auto sent = bridge.nic->transmit(frame);
  if (!sent && sent.error().code == ErrorCode::kFull) {
    bridge.nic->reclaim_transmitted();
    sent = bridge.nic->transmit(frame);
  }
  if (!sent) {
    ++bridge.counters->tx_dropped;
    LINK_STATS_INC(link.drop);
    return ERR_MEM;  // TCP retransmits; ARP/DHCP retry on their timers
  }
  ++bridge.counters->tx_frames;
  LINK_STATS_INC(link.xmit);
  return ERR_OK;
}

}  // namespace

err_t netif_bridge_init(struct netif* netif) {
  auto& bridge = *static_cast<NetifBridge*>(netif->state);
  netif->name[0] = 'e';
  netif->name[1] = 'n';
  netif->output = etharp_output;
  netif->linkoutput = linkoutput;
  netif->mtu = kMtu;
  netif->hwaddr_len = ETH_HWADDR_LEN;
  for (size_t i = 0; i < ETH_HWADDR_LEN; ++i) netif->hwaddr[i] = bridge.nic->mac()[i];
  netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
#if LWIP_NETIF_HOSTNAME
  netif->hostname = "lantern";  // DHCP option 12 (RFC 2132 3.14)
#endif
  return ERR_OK;
}

size_t netif_bridge_receive(NetifBridge& bridge, size_t budget) {
  auto deliver = [&bridge](std::span<const uint8_t> frame) {
    // The drivers already drop runts and oversize frames; this guards the bridge itself.
    if (frame.size() < kEthernetHeaderBytes || frame.size() > kEthernetMaxVlanFrameBytes) {
      ++bridge.counters->rx_malformed;
      LINK_STATS_INC(link.lenerr);
      return;
    }
    struct pbuf* p = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(frame.size()), PBUF_POOL);
    if (p == nullptr) {
      // Pool exhausted: drop (the descriptor goes back to the NIC regardless), TCP backs off.
      ++bridge.counters->rx_no_pbuf;
      LINK_STATS_INC(link.memerr);
      return;
    }
    pbuf_take(p, frame.data(), static_cast<u16_t>(frame.size()));
    LINK_STATS_INC(link.recv);
    if (bridge.netif.input(p, &bridge.netif) != ERR_OK) {
      ++bridge.counters->rx_input_errors;
      pbuf_free(p);
      return;
    }
    ++bridge.counters->rx_frames;
  };
  return bridge.nic->poll_receive(FrameSink::from(deliver), budget);
}

}  // namespace lantern::net
