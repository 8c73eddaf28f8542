// Types shared by every NIC driver in net/: the MAC address, the counters the console reports,
// and the receive callback. Nothing here touches hardware.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace lantern::net {

// IEEE 802.3 frame sizes (without the 4-byte FCS, which both NICs strip/append themselves).
inline constexpr size_t kEthernetHeaderBytes = 14;          // destination, source, EtherType
inline constexpr size_t kEthernetMaxFrameBytes = 1514;      // 1500-byte MTU + header
inline constexpr size_t kEthernetMaxVlanFrameBytes = 1518;  // + 802.1Q tag

using MacAddress = std::array<uint8_t, 6>;

// What a driver counts. Packets and bytes count frames handed to the stack / accepted from
// it; drops are frames thrown away for their shape (runt, oversize); errors are frames the
// device flagged (bad CRC, symbol errors, ...) or completions the device reported broken.
struct NicCounters {
  uint64_t rx_packets = 0;
  uint64_t rx_bytes = 0;
  uint64_t rx_drops = 0;     // rx_runts + rx_oversize
  uint64_t rx_runts = 0;     // shorter than an Ethernet header
  uint64_t rx_oversize = 0;  // longer than a buffer / spanning descriptors
  uint64_t rx_errors = 0;    // error bits in the descriptor, or a malformed completion
  uint64_t tx_packets = 0;
  uint64_t tx_bytes = 0;
  uint64_t tx_errors = 0;     // error bits in a completed transmit descriptor
  uint64_t tx_ring_full = 0;  // transmit() refused because no descriptor was free
};

// The receive callback: a frame (Ethernet header onward, no FCS) valid only during the call.
// A plain function pointer + context so it works in the kernel without allocation.
struct FrameSink {
  void (*fn)(void* context, std::span<const uint8_t> frame) = nullptr;
  void* context = nullptr;

  void operator()(std::span<const uint8_t> frame) const { fn(context, frame); }

  // Wraps any callable that outlives the FrameSink (typically a lambda on the caller's stack).
  template <typename F>
  static FrameSink from(F& callable) {
    return FrameSink{[](void* ctx, std::span<const uint8_t> frame) { (*static_cast<F*>(ctx))(frame); },
                     &callable};
  }
};

}  // namespace lantern::net
