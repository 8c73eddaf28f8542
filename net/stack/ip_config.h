// The network configuration on the kernel command line (portable, host-tested).
//
//   (nothing) or ip=dhcp          DHCP (slirp hands out 10.0.2.15)
//   ip=10.0.2.15/24 gw=10.0.2.2   static address, prefix length 1..32, optional gateway
//   ip=off | ip=none              no networking at all (no NIC is touched)
//
// Strict on purpose: a typo must produce a clear log line, not a surprise address. Dotted quads
// are four decimal numbers 0..255 without signs, spaces or leading zeros ("010" could mean 8 or
// 10: inet_aton reads it as octal, so it is refused rather than guessed).
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "kernel/lib/result.h"

namespace lantern::net {

using Ipv4 = std::array<uint8_t, 4>;  // network order: {10, 0, 2, 15}

enum class AddressMode : uint8_t { kDhcp, kStatic, kDisabled };

struct IpConfig {
  AddressMode mode = AddressMode::kDhcp;
  Ipv4 address{};
  uint8_t prefix_length = 0;  // kStatic only, 1..32
  Ipv4 netmask{};
  bool has_gateway = false;
  Ipv4 gateway{};
};

// "A.B.C.D" -> octets. kMalformed for anything else.
Result<Ipv4> parse_ipv4(std::string_view text);

// The netmask of a prefix length (RFC 4632 3.1): /24 -> 255.255.255.0. prefix <= 32.
Ipv4 prefix_to_netmask(uint8_t prefix_length);

// Reads ip= and gw= from the command line (kernel/boot/cmdline.h rules: the last occurrence of
// a key wins). kInvalidArgument, with a message naming the problem, for: a malformed address or
// prefix, a missing /prefix, an address that is 0.0.0.0, multicast/reserved (>= 224.0.0.0),
// loopback (127/8), or the network or broadcast address of its subnet (prefix <= 30); a gateway
// outside the subnet or equal to the address; gw= without a static ip=.
Result<IpConfig> parse_ip_config(std::string_view cmdline);

// "10.0.2.15" into `out` (at least 16 bytes); returns the length written (without the NUL).
size_t format_ipv4(const Ipv4& address, char* out, size_t size);

}  // namespace lantern::net
