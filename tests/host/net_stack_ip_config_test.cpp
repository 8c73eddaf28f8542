// ip= / gw= command-line parsing (net/stack/ip_config.h).
#include <gtest/gtest.h>

#include "net/stack/ip_config.h"

namespace lantern::net {
namespace {

TEST(NetStackIpv4, ParsesDottedQuads) {
  auto a = parse_ipv4("10.0.2.15");
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (Ipv4{10, 0, 2, 15}));
  auto b = parse_ipv4("255.255.255.0");
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, (Ipv4{255, 255, 255, 0}));
  auto c = parse_ipv4("0.0.0.0");
  ASSERT_TRUE(c);
  EXPECT_EQ(*c, (Ipv4{0, 0, 0, 0}));
}

TEST(NetStackIpv4, RejectsMalformedAndTruncated) {
  for (const char* bad : {"", ".", "10", "10.0.2", "10.0.2.", "10.0.2.15.", "10.0.2.15.1", "256.0.0.1",
                          "10.0.2.999", "10..2.15", "1234.0.0.1", "10.0.2.15 ", " 10.0.2.15", "+10.0.2.15",
                          "10.0.2.-1", "010.0.2.15", "10.0.2.015", "10.0.2.0x1", "a.b.c.d", "10.0.2.15/24"}) {
    auto r = parse_ipv4(bad);
    EXPECT_FALSE(r) << "accepted '" << bad << "'";
    if (!r) {
      EXPECT_EQ(r.error().code, ErrorCode::kMalformed) << bad;
    }
  }
}

TEST(NetStackIpv4, NetmaskFromPrefix) {
  EXPECT_EQ(prefix_to_netmask(24), (Ipv4{255, 255, 255, 0}));
  EXPECT_EQ(prefix_to_netmask(8), (Ipv4{255, 0, 0, 0}));
  EXPECT_EQ(prefix_to_netmask(20), (Ipv4{255, 255, 240, 0}));
  EXPECT_EQ(prefix_to_netmask(32), (Ipv4{255, 255, 255, 255}));
  EXPECT_EQ(prefix_to_netmask(1), (Ipv4{128, 0, 0, 0}));
  EXPECT_EQ(prefix_to_netmask(0), (Ipv4{0, 0, 0, 0}));
}

TEST(NetStackIpv4, Formats) {
  char buf[16];
  EXPECT_EQ(format_ipv4({10, 0, 2, 15}, buf, sizeof(buf)), 9u);
  EXPECT_STREQ(buf, "10.0.2.15");
  EXPECT_EQ(format_ipv4({255, 255, 255, 255}, buf, sizeof(buf)), 15u);
  EXPECT_STREQ(buf, "255.255.255.255");
  char small[5];
  EXPECT_EQ(format_ipv4({192, 168, 100, 200}, small, sizeof(small)), 4u);  // truncated, NUL kept
  EXPECT_STREQ(small, "192.");
}

TEST(NetStackIpConfig, DhcpByDefaultAndOnRequest) {
  for (const char* cmdline : {"", "loglevel=debug", "ip=dhcp", "ip=10.0.2.15/24 ip=dhcp"}) {
    auto c = parse_ip_config(cmdline);
    ASSERT_TRUE(c) << cmdline;
    EXPECT_EQ(c->mode, AddressMode::kDhcp) << cmdline;
  }
}

TEST(NetStackIpConfig, Disabled) {
  for (const char* cmdline : {"ip=off", "ip=none"}) {
    auto c = parse_ip_config(cmdline);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->mode, AddressMode::kDisabled);
  }
}

TEST(NetStackIpConfig, StaticWithGateway) {
  auto c = parse_ip_config("loglevel=info ip=10.0.2.15/24 gw=10.0.2.2 selftest");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->mode, AddressMode::kStatic);
  EXPECT_EQ(c->address, (Ipv4{10, 0, 2, 15}));
  EXPECT_EQ(c->prefix_length, 24);
  EXPECT_EQ(c->netmask, (Ipv4{255, 255, 255, 0}));
  EXPECT_TRUE(c->has_gateway);
  EXPECT_EQ(c->gateway, (Ipv4{10, 0, 2, 2}));
}

TEST(NetStackIpConfig, StaticWithoutGatewayAndHostRoutes) {
  auto c = parse_ip_config("ip=192.168.1.7/16");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->has_gateway);
  EXPECT_EQ(c->netmask, (Ipv4{255, 255, 0, 0}));
  // /31 and /32 have no network/broadcast addresses (RFC 3021).
  EXPECT_TRUE(parse_ip_config("ip=10.0.0.0/31"));
  EXPECT_TRUE(parse_ip_config("ip=10.0.0.255/32"));
}

TEST(NetStackIpConfig, LastOccurrenceWins) {
  auto c = parse_ip_config("ip=10.0.2.15/24 ip=10.0.3.20/24 gw=10.0.3.1");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->address, (Ipv4{10, 0, 3, 20}));
  EXPECT_EQ(c->gateway, (Ipv4{10, 0, 3, 1}));
}

TEST(NetStackIpConfig, RejectsBadInput) {
  for (const char* bad : {
           "ip=10.0.2.15",              // no prefix
           "ip=10.0.2.15/",             // empty prefix
           "ip=10.0.2.15/0",            // prefix 0
           "ip=10.0.2.15/33",           // prefix too long
           "ip=10.0.2.15/024",          // three digits
           "ip=10.0.2.15/08",           // leading zero
           "ip=10.0.2.15/2x",           // junk
           "ip=10.0.2.15/24/8",         // two slashes
           "ip=10.0.2/24",              // truncated address
           "ip=10.0.2.256/24",          // octet out of range
           "ip=/24",                    // no address
           "ip=0.1.2.3/8",              // 0/8
           "ip=127.0.0.1/8",            // loopback
           "ip=224.0.0.5/24",           // multicast
           "ip=250.1.1.1/8",            // reserved
           "ip=10.0.2.0/24",            // network address
           "ip=10.0.2.255/24",          // broadcast address
           "ip=10.0.2.15/24 gw=10.0.3.2",   // gateway outside the subnet
           "ip=10.0.2.15/24 gw=10.0.2.15",  // gateway is us
           "ip=10.0.2.15/24 gw=10.0.2",     // malformed gateway
           "ip=10.0.2.15/24 gw=",           // empty gateway
           "ip=",                           // empty address
           "ip",                            // bare flag
           "gw=10.0.2.2",                   // gateway without static ip
           "ip=dhcp gw=10.0.2.2",
           "ip=off gw=10.0.2.2",
           "ip=garbage",
       }) {
    auto c = parse_ip_config(bad);
    EXPECT_FALSE(c) << "accepted '" << bad << "'";
    if (!c) {
      EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument) << bad;
    }
  }
}

}  // namespace
}  // namespace lantern::net
