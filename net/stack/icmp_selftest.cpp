// In-kernel self-test of ICMP echo (ping) through the real receive and transmit paths. QEMU's and
// Bochs' user networks (slirp) cannot forward ICMP from the host, so this proves it from inside:
// frames from a made-up neighbour on the netif's subnet go in where a received frame goes
// (netif->input, a PBUF_POOL pbuf, exactly as netif_bridge_receive does) and the answers are
// caught on their way out of netif->linkoutput, which still hands them to the NIC driver.
//
// It needs the stack up with an address. Self-tests run before kernel_main starts the network,
// so the test starts it itself (net::start with the boot command line; kInvalidState means it
// is already running). Without a NIC or a lease it passes with "skipped: no network".
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/log.h"
#include "kernel/core/selftest.h"
#include "lwip/ip4_addr.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "net/nic.h"
#include "net/stack/net.h"

namespace lantern {
namespace {

using net::kEthernetMaxFrameBytes;
using net::MacAddress;

// Ethernet II (RFC 894): destination MAC, source MAC, EtherType.
constexpr size_t kEthDst = 0, kEthSrc = 6, kEthType = 12, kEthHeader = 14;
constexpr uint16_t kEtherTypeIpv4 = 0x0800;  // RFC 894
constexpr uint16_t kEtherTypeArp = 0x0806;   // RFC 826
// ARP over Ethernet for IPv4 (RFC 826 "Packet format"), offsets from the ARP header.
constexpr size_t kArpOper = 6, kArpSha = 8, kArpSpa = 14, kArpTha = 18, kArpTpa = 24, kArpBytes = 28;
constexpr uint16_t kArpHardwareEthernet = 1, kArpRequest = 1, kArpReply = 2;
// IPv4 header (RFC 791 3.1), no options: IHL 5.
constexpr size_t kIpTotalLength = 2, kIpTtl = 8, kIpProtocol = 9, kIpChecksum = 10, kIpSrc = 12, kIpDst = 16;
constexpr size_t kIpHeader = 20;
constexpr uint8_t kIpVersionIhl = 0x45;  // version 4, IHL 5 words
constexpr uint8_t kIpProtocolIcmp = 1;   // RFC 790 "Assigned Internet Protocol Numbers"
// ICMP echo (RFC 792 "Echo or Echo Reply Message"): type, code, checksum, identifier, sequence.
constexpr size_t kIcmpType = 0, kIcmpChecksum = 2, kIcmpId = 4, kIcmpSeq = 6, kIcmpHeader = 8;
constexpr uint8_t kIcmpEchoRequest = 8, kIcmpEchoReply = 0;

constexpr uint16_t kEchoId = 0x4c54;  // "LT"
constexpr size_t kEchoPayload = 56;   // the classic ping payload size
// A locally administered unicast MAC (IEEE 802 clause 8.2: bit 1 of the first octet set, bit 0
// clear) for the made-up neighbour.
constexpr MacAddress kPeerMac = {0x02, 0x4c, 0x4e, 0x54, 0x00, 0x01};

// ---- frame building and reading ---------------------------------------------------------------
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}
uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t get32(const uint8_t* p) {
  return (uint32_t{get16(p)} << 16) | get16(p + 2);
}
void put_mac(uint8_t* p, const MacAddress& mac) {
  for (size_t i = 0; i < mac.size(); ++i) p[i] = mac[i];
}
bool mac_is(const uint8_t* p, const MacAddress& mac) {
  for (size_t i = 0; i < mac.size(); ++i) {
    if (p[i] != mac[i]) return false;
  }
  return true;
}

// The Internet checksum (RFC 1071): one's complement of the one's complement sum of 16-bit
// words. Over data that includes a correct checksum field it is 0.
uint16_t internet_checksum(std::span<const uint8_t> data) {
  uint32_t sum = 0;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += get16(&data[i]);
  if (i < data.size()) sum += uint32_t{data[i]} << 8;
  while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

struct Frame {
  std::array<uint8_t, kEthernetMaxFrameBytes> bytes{};
  size_t size = 0;
  std::span<const uint8_t> view() const { return {bytes.data(), size}; }
};

Frame arp_request(const MacAddress& peer_mac, uint32_t peer_ip, uint32_t target_ip) {
  Frame f;
  uint8_t* b = f.bytes.data();
  put_mac(b + kEthDst, MacAddress{0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
  put_mac(b + kEthSrc, peer_mac);
  put16(b + kEthType, kEtherTypeArp);
  uint8_t* a = b + kEthHeader;
  put16(a + 0, kArpHardwareEthernet);
  put16(a + 2, kEtherTypeIpv4);  // protocol type
  a[4] = 6;                      // hardware address length
  a[5] = 4;                      // protocol address length
  put16(a + kArpOper, kArpRequest);
  put_mac(a + kArpSha, peer_mac);
  put32(a + kArpSpa, peer_ip);
  put32(a + kArpTpa, target_ip);  // THA stays zero
  f.size = kEthHeader + kArpBytes;
  return f;
}

uint8_t payload_byte(size_t i, uint16_t seq) {
  return static_cast<uint8_t>(i * 7 + seq + 0x20);
}

Frame echo_request(const MacAddress& dst_mac, uint32_t src_ip, uint32_t dst_ip, uint16_t seq) {
  Frame f;
  uint8_t* b = f.bytes.data();
  put_mac(b + kEthDst, dst_mac);
  put_mac(b + kEthSrc, kPeerMac);
  put16(b + kEthType, kEtherTypeIpv4);
  uint8_t* ip = b + kEthHeader;
  ip[0] = kIpVersionIhl;
  put16(ip + kIpTotalLength, static_cast<uint16_t>(kIpHeader + kIcmpHeader + kEchoPayload));
  put16(ip + 4, static_cast<uint16_t>(0x1000 + seq));  // identification; flags/fragment 0
  ip[kIpTtl] = 64;
  ip[kIpProtocol] = kIpProtocolIcmp;
  put32(ip + kIpSrc, src_ip);
  put32(ip + kIpDst, dst_ip);
  put16(ip + kIpChecksum, internet_checksum({ip, kIpHeader}));
  uint8_t* icmp = ip + kIpHeader;
  icmp[kIcmpType] = kIcmpEchoRequest;
  put16(icmp + kIcmpId, kEchoId);
  put16(icmp + kIcmpSeq, seq);
  for (size_t i = 0; i < kEchoPayload; ++i) icmp[kIcmpHeader + i] = payload_byte(i, seq);
  put16(icmp + kIcmpChecksum, internet_checksum({icmp, kIcmpHeader + kEchoPayload}));
  f.size = kEthHeader + kIpHeader + kIcmpHeader + kEchoPayload;
  return f;
}

// ---- the capture hook on linkoutput ------------------------------------------------------------
constexpr size_t kMaxCaptured = 4;
std::array<Frame, kMaxCaptured> g_captured;
size_t g_captured_count = 0;  // may exceed kMaxCaptured: only the first ones are kept
netif_linkoutput_fn g_real_linkoutput = nullptr;

err_t capturing_linkoutput(struct netif* netif, struct pbuf* p) {
  if (g_captured_count < kMaxCaptured) {
    Frame& f = g_captured[g_captured_count];
    f.size = pbuf_copy_partial(p, f.bytes.data(), static_cast<u16_t>(f.bytes.size()), 0);
  }
  ++g_captured_count;
  return g_real_linkoutput(netif, p);  // the frame still leaves through the NIC driver
}

// Hands `frame` to the netif the way netif_bridge_receive hands a received frame to lwIP.
Result<void> inject(struct netif* netif, const Frame& frame) {
  struct pbuf* p = pbuf_alloc(PBUF_RAW, static_cast<u16_t>(frame.size), PBUF_POOL);
  if (p == nullptr) return make_error(ErrorCode::kOutOfMemory, "PBUF_POOL empty");
  if (pbuf_take(p, frame.bytes.data(), static_cast<u16_t>(frame.size)) != ERR_OK) {
    pbuf_free(p);
    return make_error(ErrorCode::kInvalidState, "pbuf_take failed");
  }
  if (netif->input(p, netif) != ERR_OK) {
    pbuf_free(p);
    return make_error(ErrorCode::kInvalidState, "netif->input refused the frame");
  }
  return ok();
}

// A host address on the netif's subnet that is neither ours, the gateway's, the network's nor
// the broadcast one; 0 when the subnet has no such address (/31, /32).
uint32_t neighbour_address(uint32_t ip, uint32_t mask, uint32_t gw) {
  const uint32_t host_bits = ~mask;
  for (uint32_t h = host_bits - 1; h >= 1 && h < host_bits; --h) {
    const uint32_t candidate = (ip & mask) | h;
    if (candidate != ip && candidate != gw) return candidate;
  }
  return 0;
}

struct Hook {
  explicit Hook(struct netif* n) : netif(n) {
    g_captured_count = 0;
    g_real_linkoutput = netif->linkoutput;
    netif->linkoutput = capturing_linkoutput;
  }
  ~Hook() { netif->linkoutput = g_real_linkoutput; }
  Hook(const Hook&) = delete;
  Hook& operator=(const Hook&) = delete;
  struct netif* netif;
};

uint64_t nic_tx_packets() {
  return net::status().counters.tx_packets;
}

LANTERN_SELFTEST(net_icmp_echo_reply) {
  // Start the stack if kernel_main has not yet (it has not when self-tests run at boot).
  const auto& cmdline = boot_state().multiboot.cmdline;
  auto started = net::start(cmdline ? *cmdline : std::string_view());
  const net::NetStatus st = started ? *started : net::status();
  struct netif* netif = netif_default;
  if (!st.running || netif == nullptr || !netif_is_up(netif) || ip4_addr_isany_val(*netif_ip4_addr(netif))) {
    LOG_INFO("selftest net_icmp_echo_reply: skipped: no network (nic %s, ip %s)", st.nic, st.ip);
    return ok();
  }
  const uint32_t our_ip = lwip_ntohl(ip4_addr_get_u32(netif_ip4_addr(netif)));
  const uint32_t mask = lwip_ntohl(ip4_addr_get_u32(netif_ip4_netmask(netif)));
  const uint32_t gw = lwip_ntohl(ip4_addr_get_u32(netif_ip4_gw(netif)));
  const uint32_t peer_ip = neighbour_address(our_ip, mask, gw);
  if (peer_ip == 0) {
    LOG_INFO("selftest net_icmp_echo_reply: skipped: no spare address on a /31 or /32");
    return ok();
  }
  MacAddress our_mac{};
  for (size_t i = 0; i < our_mac.size(); ++i) our_mac[i] = netif->hwaddr[i];
  SELFTEST_EXPECT(our_mac == st.mac);

  // lwIP owns one core and is not re-entrant: keep interrupts off while we are inside it.
  cpu::InterruptsOff irq_off;
  Hook hook(netif);
  const uint64_t tx_before = nic_tx_packets();

  // 1. The neighbour asks for our MAC: lwIP answers and (the request being for us) learns the
  //    neighbour's MAC, so the echo reply below needs no ARP round of its own.
  TRY(inject(netif, arp_request(kPeerMac, peer_ip, our_ip)));
  SELFTEST_EXPECT(g_captured_count == 1);
  {
    const Frame& r = g_captured[0];
    SELFTEST_EXPECT(r.size >= kEthHeader + kArpBytes);
    SELFTEST_EXPECT(mac_is(&r.bytes[kEthDst], kPeerMac) && mac_is(&r.bytes[kEthSrc], our_mac));
    SELFTEST_EXPECT(get16(&r.bytes[kEthType]) == kEtherTypeArp);
    const uint8_t* a = &r.bytes[kEthHeader];
    SELFTEST_EXPECT(get16(a + kArpOper) == kArpReply);
    SELFTEST_EXPECT(mac_is(a + kArpSha, our_mac) && get32(a + kArpSpa) == our_ip);
    SELFTEST_EXPECT(mac_is(a + kArpTha, kPeerMac) && get32(a + kArpTpa) == peer_ip);
  }

  // 2. An echo request to our IP and MAC: exactly one echo reply goes out.
  constexpr uint16_t kSeq = 1;
  TRY(inject(netif, echo_request(our_mac, peer_ip, our_ip, kSeq)));
  SELFTEST_EXPECT(g_captured_count == 2);
  {
    const Frame& r = g_captured[1];
    SELFTEST_EXPECT(r.size == kEthHeader + kIpHeader + kIcmpHeader + kEchoPayload);
    SELFTEST_EXPECT(mac_is(&r.bytes[kEthDst], kPeerMac) && mac_is(&r.bytes[kEthSrc], our_mac));
    SELFTEST_EXPECT(get16(&r.bytes[kEthType]) == kEtherTypeIpv4);
    const uint8_t* ip = &r.bytes[kEthHeader];
    SELFTEST_EXPECT(ip[0] == kIpVersionIhl && ip[kIpProtocol] == kIpProtocolIcmp && ip[kIpTtl] > 0);
    SELFTEST_EXPECT(get16(ip + kIpTotalLength) == kIpHeader + kIcmpHeader + kEchoPayload);
    SELFTEST_EXPECT(get32(ip + kIpSrc) == our_ip && get32(ip + kIpDst) == peer_ip);
    SELFTEST_EXPECT(internet_checksum({ip, kIpHeader}) == 0);
    const uint8_t* icmp = ip + kIpHeader;
    SELFTEST_EXPECT(icmp[kIcmpType] == kIcmpEchoReply && icmp[1] == 0);
    SELFTEST_EXPECT(get16(icmp + kIcmpId) == kEchoId && get16(icmp + kIcmpSeq) == kSeq);
    for (size_t i = 0; i < kEchoPayload; ++i) SELFTEST_EXPECT(icmp[kIcmpHeader + i] == payload_byte(i, kSeq));
    SELFTEST_EXPECT(internet_checksum({icmp, kIcmpHeader + kEchoPayload}) == 0);
  }
  // Both answers went through the driver's transmit (NicCounters counts accepted frames).
  SELFTEST_EXPECT(nic_tx_packets() - tx_before == 2);

  // 3. What must not be answered: a request with a broken ICMP checksum (CHECKSUM_CHECK_ICMP),
  //    and one for another host's IP (IP_FORWARD is 0). Both are dropped silently.
  Frame corrupt = echo_request(our_mac, peer_ip, our_ip, 2);
  corrupt.bytes[kEthHeader + kIpHeader + kIcmpHeader] ^= 0x01;  // payload no longer matches the sum
  TRY(inject(netif, corrupt));
  const uint32_t other_host = peer_ip - 1 != our_ip ? peer_ip - 1 : peer_ip - 2;  // not broadcast
  TRY(inject(netif, echo_request(our_mac, peer_ip, other_host, 3)));
  SELFTEST_EXPECT(g_captured_count == 2);
  SELFTEST_EXPECT(nic_tx_packets() - tx_before == 2);
  return ok();
}

}  // namespace
}  // namespace lantern
