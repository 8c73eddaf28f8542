#include "net/stack/ip_config.h"

#include "kernel/boot/cmdline.h"

namespace lantern::net {
namespace {

uint32_t to_u32(const Ipv4& a) {
  return (uint32_t{a[0]} << 24) | (uint32_t{a[1]} << 16) | (uint32_t{a[2]} << 8) | a[3];
}

Result<uint8_t> parse_prefix(std::string_view text) {
  if (text.empty() || text.size() > 2) return make_error(ErrorCode::kInvalidArgument, "ip=: bad /prefix");
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return make_error(ErrorCode::kInvalidArgument, "ip=: bad /prefix");
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (text.size() == 2 && text[0] == '0') return make_error(ErrorCode::kInvalidArgument, "ip=: bad /prefix");
  if (value < 1 || value > 32) {
    return make_error(ErrorCode::kInvalidArgument, "ip=: prefix length must be 1..32", value);
  }
  return static_cast<uint8_t>(value);
}

}  // namespace

Result<Ipv4> parse_ipv4(std::string_view text) {
  Ipv4 out{};
  size_t part = 0;
  size_t i = 0;
  while (true) {
    size_t digits = 0;
    uint32_t value = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 4) {
      value = value * 10 + static_cast<uint32_t>(text[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0 || digits > 3 || value > 255) {
      return make_error(ErrorCode::kMalformed, "not a dotted-quad IPv4 address", part);
    }
    if (digits > 1 && text[i - digits] == '0') {
      return make_error(ErrorCode::kMalformed, "IPv4 octet with a leading zero", part);
    }
    out[part++] = static_cast<uint8_t>(value);
    if (part == 4) break;
    if (i >= text.size() || text[i] != '.') {
      return make_error(ErrorCode::kMalformed, "not a dotted-quad IPv4 address", part);
    }
    ++i;
  }
  if (i != text.size()) return make_error(ErrorCode::kMalformed, "trailing characters after IPv4 address", i);
  return out;
}

Ipv4 prefix_to_netmask(uint8_t prefix_length) {
  const uint32_t mask = prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - (prefix_length > 32 ? 32 : prefix_length));
  return Ipv4{static_cast<uint8_t>(mask >> 24), static_cast<uint8_t>(mask >> 16),
              static_cast<uint8_t>(mask >> 8), static_cast<uint8_t>(mask)};
}

Result<IpConfig> parse_ip_config(std::string_view cmdline) {
  IpConfig config;
  const auto ip = cmdline_value(cmdline, "ip");
  const auto gw = cmdline_value(cmdline, "gw");
  if (!ip || *ip == "dhcp") {
    if (gw) return make_error(ErrorCode::kInvalidArgument, "gw= needs a static ip=A.B.C.D/N");
    return config;
  }
  if (*ip == "off" || *ip == "none") {
    if (gw) return make_error(ErrorCode::kInvalidArgument, "gw= needs a static ip=A.B.C.D/N");
    config.mode = AddressMode::kDisabled;
    return config;
  }
  const size_t slash = ip->find('/');
  if (slash == std::string_view::npos) {
    return make_error(ErrorCode::kInvalidArgument, "ip= needs a prefix length: ip=A.B.C.D/N");
  }
  auto address = parse_ipv4(ip->substr(0, slash));
  if (!address) return make_error(ErrorCode::kInvalidArgument, "ip=: malformed IPv4 address");
  config.prefix_length = TRY(parse_prefix(ip->substr(slash + 1)));
  config.mode = AddressMode::kStatic;
  config.address = *address;
  config.netmask = prefix_to_netmask(config.prefix_length);

  const uint32_t a = to_u32(config.address);
  const uint32_t mask = to_u32(config.netmask);
  // RFC 1122 3.2.1.3 / RFC 5735: 0/8 "this network", 127/8 loopback, 224/4 multicast, 240/4.
  if (config.address[0] == 0) return make_error(ErrorCode::kInvalidArgument, "ip=: address in 0.0.0.0/8");
  if (config.address[0] == 127) return make_error(ErrorCode::kInvalidArgument, "ip=: loopback address");
  if (config.address[0] >= 224) {
    return make_error(ErrorCode::kInvalidArgument, "ip=: multicast or reserved address");
  }
  // RFC 1122 3.2.1.3: host part all zeros or all ones is not a host address (RFC 3021: /31
  // and /32 have no such addresses).
  if (config.prefix_length <= 30 && ((a & ~mask) == 0 || (a & ~mask) == ~mask)) {
    return make_error(ErrorCode::kInvalidArgument, "ip=: network or broadcast address of its subnet");
  }
  if (gw) {
    auto gateway = parse_ipv4(*gw);
    if (!gateway) return make_error(ErrorCode::kInvalidArgument, "gw=: malformed IPv4 address");
    const uint32_t g = to_u32(*gateway);
    if (g == a) return make_error(ErrorCode::kInvalidArgument, "gw=: gateway equals the address");
    if ((g & mask) != (a & mask)) {
      return make_error(ErrorCode::kInvalidArgument, "gw=: gateway outside the ip= subnet");
    }
    config.has_gateway = true;
    config.gateway = *gateway;
  }
  return config;
}

size_t format_ipv4(const Ipv4& address, char* out, size_t size) {
  char text[16];
  size_t n = 0;
  for (size_t i = 0; i < 4; ++i) {
    const uint8_t v = address[i];
    if (v >= 100) text[n++] = static_cast<char>('0' + v / 100);
    if (v >= 10) text[n++] = static_cast<char>('0' + (v / 10) % 10);
    text[n++] = static_cast<char>('0' + v % 10);
    if (i != 3) text[n++] = '.';
  }
  if (size == 0) return 0;
  const size_t copied = n < size - 1 ? n : size - 1;
  for (size_t i = 0; i < copied; ++i) out[i] = text[i];
  out[copied] = '\0';
  return copied;
}

}  // namespace lantern::net
