#include "guest/posted_vcpu_events.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace {

using lantern::guest::PostedVcpuEvents;

std::vector<std::pair<int, bool>> take(PostedVcpuEvents& e) {
  std::vector<std::pair<int, bool>> out;
  e.take_interrupts([&](uint8_t vector, bool level) { out.emplace_back(vector, level); });
  return out;
}

TEST(GuestPostedVcpuEvents, InterruptsLowestFirstWithTheirTriggerMode) {
  PostedVcpuEvents e;
  e.post_interrupt(0xfe, false);
  e.post_interrupt(0x31, true);
  e.post_interrupt(0x30, false);
  e.post_interrupt(0x31, true);  // twice: once in the IRR
  EXPECT_EQ(take(e), (std::vector<std::pair<int, bool>>{{0x30, false}, {0x31, true}, {0xfe, false}}));
  EXPECT_TRUE(take(e).empty());
  e.post_interrupt(0x31, false);  // the level bit went with the vector taken before
  EXPECT_EQ(take(e), (std::vector<std::pair<int, bool>>{{0x31, false}}));
}

TEST(GuestPostedVcpuEvents, InitThenSipi) {
  PostedVcpuEvents e;
  EXPECT_FALSE(e.init_or_sipi_pending());
  e.post_init();
  e.post_sipi(0x08);
  EXPECT_TRUE(e.init_or_sipi_pending());
  const auto both = e.take_init_sipi();
  EXPECT_TRUE(both.init);
  ASSERT_TRUE(both.sipi.has_value());
  EXPECT_EQ(*both.sipi, 0x08);
  EXPECT_FALSE(e.init_or_sipi_pending());
  e.post_sipi(0x00);  // vector 0 is a SIPI all the same
  const auto sipi = e.take_init_sipi();
  EXPECT_FALSE(sipi.init);
  ASSERT_TRUE(sipi.sipi.has_value());
  EXPECT_EQ(*sipi.sipi, 0x00);
}

TEST(GuestPostedVcpuEvents, ClearDropsEverything) {
  PostedVcpuEvents e;
  e.post_interrupt(0x40, true);
  e.post_init();
  e.post_sipi(0x10);
  e.clear_interrupts();
  EXPECT_TRUE(take(e).empty());
  EXPECT_TRUE(e.init_or_sipi_pending());
  e.clear();
  EXPECT_FALSE(e.init_or_sipi_pending());
  e.post_interrupt(0x40, false);
  EXPECT_EQ(take(e), (std::vector<std::pair<int, bool>>{{0x40, false}}));  // no stale level bit
}

}  // namespace
