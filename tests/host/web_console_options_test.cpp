#include "web/api/console_options.h"

#include <gtest/gtest.h>

namespace lantern::web::api {
namespace {

TEST(ConsoleOptions, DefaultsAreAnyAddressPort80NoToken) {
  auto o = parse_console_options("loglevel=info");
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->enabled);
  EXPECT_EQ(o->bind_address, (net::Ipv4{0, 0, 0, 0}));
  EXPECT_EQ(o->port, 80);
  EXPECT_TRUE(o->token.empty());
  EXPECT_FALSE(o->readonly_open);
}

TEST(ConsoleOptions, BindAcceptsAddressPortAndBoth) {
  auto port_only = parse_console_options("console.bind=:8080");
  ASSERT_TRUE(port_only.has_value());
  EXPECT_EQ(port_only->port, 8080);
  EXPECT_EQ(port_only->bind_address, (net::Ipv4{0, 0, 0, 0}));
  auto address_only = parse_console_options("console.bind=10.0.2.15");
  ASSERT_TRUE(address_only.has_value());
  EXPECT_EQ(address_only->bind_address, (net::Ipv4{10, 0, 2, 15}));
  EXPECT_EQ(address_only->port, 80);
  auto both = parse_console_options("console.bind=10.0.2.15:65535");
  ASSERT_TRUE(both.has_value());
  EXPECT_EQ(both->port, 65535);
  auto off = parse_console_options("console.bind=off");
  ASSERT_TRUE(off.has_value());
  EXPECT_FALSE(off->enabled);
}

TEST(ConsoleOptions, MalformedBindIsAnError) {
  for (const char* bad : {"console.bind=", "console.bind=:0", "console.bind=:65536", "console.bind=:80x",
                          "console.bind=10.0.2:80", "console.bind=host:80", "console.bind=:"}) {
    auto o = parse_console_options(bad);
    ASSERT_FALSE(o.has_value()) << bad;
    EXPECT_EQ(o.error().code, ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(ConsoleOptions, TokenFollowsRfc6750AndReadonlyOpenIsAFlag) {
  auto o = parse_console_options("console.token=s3cr.et-_~+/== console.readonly_open=1");
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->token, "s3cr.et-_~+/==");
  EXPECT_TRUE(o->readonly_open);
  for (const char* bad : {"console.token=", "console.token==abc", "console.token=a=b", "console.token=a\"b",
                          "console.token=a,b"}) {
    EXPECT_FALSE(parse_console_options(bad).has_value()) << bad;
  }
  EXPECT_FALSE(parse_console_options(std::string("console.token=") + std::string(129, 'a')).has_value());
  EXPECT_TRUE(parse_console_options(std::string("console.token=") + std::string(128, 'a')).has_value());
}

}  // namespace
}  // namespace lantern::web::api
