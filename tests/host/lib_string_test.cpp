// lantern::lib memory/string primitives against the host C library, over every small
// size/offset combination (the word loops have head/tail cases).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernel/lib/bit_array.h"
#include "kernel/lib/string.h"

namespace lantern::lib {
namespace {

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

TEST(LibString, MemCopyAllSizesAndOffsets) {
  const auto src = random_bytes(200, 1);
  for (size_t src_off = 0; src_off < 8; ++src_off) {
    for (size_t dst_off = 0; dst_off < 8; ++dst_off) {
      for (size_t n = 0; n < 100; ++n) {
        std::vector<uint8_t> dst(200, 0xee);
        EXPECT_EQ(mem_copy(dst.data() + dst_off, src.data() + src_off, n), dst.data() + dst_off);
        ASSERT_EQ(std::memcmp(dst.data() + dst_off, src.data() + src_off, n), 0);
        for (size_t i = 0; i < dst_off; ++i) ASSERT_EQ(dst[i], 0xee);
        for (size_t i = dst_off + n; i < dst.size(); ++i) ASSERT_EQ(dst[i], 0xee);
      }
    }
  }
}

TEST(LibString, MemMoveOverlapsBothWays) {
  const auto original = random_bytes(256, 2);
  for (size_t from = 0; from < 40; ++from) {
    for (size_t to = 0; to < 40; ++to) {
      for (size_t n : {0u, 1u, 7u, 8u, 9u, 31u, 64u, 100u}) {
        auto ours = original;
        auto libc = original;
        mem_move(ours.data() + to, ours.data() + from, n);
        std::memmove(libc.data() + to, libc.data() + from, n);
        ASSERT_EQ(ours, libc) << "from " << from << " to " << to << " n " << n;
      }
    }
  }
}

TEST(LibString, MemSetAndCompare) {
  for (size_t off = 0; off < 8; ++off) {
    for (size_t n = 0; n < 80; ++n) {
      std::vector<uint8_t> buf(100, 0x11);
      mem_set(buf.data() + off, 0x1a5, n);  // only the low byte counts
      for (size_t i = 0; i < buf.size(); ++i) {
        ASSERT_EQ(buf[i], (i >= off && i < off + n) ? 0xa5 : 0x11);
      }
    }
  }
  const auto a = random_bytes(64, 3);
  for (size_t n = 0; n <= 64; ++n) {
    for (size_t diff = 0; diff < n; ++diff) {
      auto b = a;
      b[diff] = static_cast<uint8_t>(b[diff] + 1);
      const int ours = mem_compare(a.data(), b.data(), n);
      const int libc = std::memcmp(a.data(), b.data(), n);
      ASSERT_EQ(ours < 0, libc < 0);
      ASSERT_EQ(ours > 0, libc > 0);
    }
    EXPECT_EQ(mem_compare(a.data(), a.data(), n), 0);
  }
  const uint8_t hi[1] = {0xff};
  const uint8_t lo[1] = {0x01};
  EXPECT_GT(mem_compare(hi, lo, 1), 0);  // unsigned comparison
}

TEST(LibString, CStrings) {
  EXPECT_EQ(str_length(""), 0u);
  EXPECT_EQ(str_length("lantern"), 7u);
  EXPECT_EQ(str_length_bounded("lantern", 3), 3u);
  EXPECT_EQ(str_length_bounded("ab", 10), 2u);
  const char* pairs[][2] = {{"", ""},      {"a", ""},     {"", "a"},       {"abc", "abd"},
                            {"abc", "ab"}, {"\xff", "a"}, {"same", "same"}};
  for (const auto& p : pairs) {
    const int ours = str_compare(p[0], p[1]);
    const int libc = std::strcmp(p[0], p[1]);
    EXPECT_EQ(ours < 0, libc < 0) << p[0] << " vs " << p[1];
    EXPECT_EQ(ours > 0, libc > 0) << p[0] << " vs " << p[1];
    for (size_t n = 0; n < 6; ++n) {
      const int o = str_ncompare(p[0], p[1], n);
      const int l = std::strncmp(p[0], p[1], n);
      EXPECT_EQ(o < 0, l < 0);
      EXPECT_EQ(o > 0, l > 0);
    }
  }
  const char* s = "hello world";
  EXPECT_EQ(str_find_char(s, 'o'), s + 4);
  EXPECT_EQ(str_find_last_char(s, 'o'), s + 7);
  EXPECT_EQ(str_find_char(s, '\0'), s + 11);
  EXPECT_EQ(str_find_char(s, 'z'), nullptr);
  EXPECT_EQ(str_find_last_char(s, 'z'), nullptr);
  EXPECT_EQ(mem_find(s, 'w', 11), s + 6);
  EXPECT_EQ(mem_find(s, 'w', 6), nullptr);
}

}  // namespace
}  // namespace lantern::lib

TEST(LibBitArray, BitsCountFromTheLowBitOfByteZero) {
  uint8_t bytes[3] = {};
  lantern::lib::set_bit(bytes, 0, true);
  lantern::lib::set_bit(bytes, 9, true);
  lantern::lib::set_bit(bytes, 23, true);
  EXPECT_EQ(bytes[0], 0x01);
  EXPECT_EQ(bytes[1], 0x02);
  EXPECT_EQ(bytes[2], 0x80);
  EXPECT_TRUE(lantern::lib::test_bit(bytes, 9));
  EXPECT_FALSE(lantern::lib::test_bit(bytes, 8));
  lantern::lib::set_bit(bytes, 9, false);
  EXPECT_EQ(bytes[1], 0x00);
  EXPECT_TRUE(lantern::lib::test_bit(bytes, 23));
}
