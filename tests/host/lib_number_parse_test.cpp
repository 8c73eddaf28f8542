// lantern::lib number parsing against the host C library's strtod/strtoll/strtoull.
#include <gtest/gtest.h>

#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "kernel/lib/big_uint.h"
#include "kernel/lib/format.h"
#include "kernel/lib/number_parse.h"

namespace lantern::lib {
namespace {

uint64_t bits_of(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof(b));
  return b;
}

double from_bits(uint64_t b) {
  double d;
  std::memcpy(&d, &b, sizeof(d));
  return d;
}

// Same bits, same end pointer, and the same errno as glibc's strtod.
void expect_strtod_like_libc(const std::string& text) {
  char* libc_end = nullptr;
  errno = 0;
  const double expected = std::strtod(text.c_str(), &libc_end);
  const bool libc_range = errno == ERANGE;
  char* our_end = nullptr;
  NumberStatus status = NumberStatus::kBadBase;
  const uint64_t actual = parse_double_bits(text.c_str(), &our_end, &status);
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(from_bits(actual))) << text;
    EXPECT_EQ(actual >> 63, bits_of(expected) >> 63) << text;
  } else {
    EXPECT_EQ(actual, bits_of(expected))
        << "\"" << text << "\" libc " << expected << " ours " << from_bits(actual);
  }
  EXPECT_EQ(our_end - text.c_str(), libc_end - text.c_str()) << text;
  EXPECT_EQ(status == NumberStatus::kOutOfRange, libc_range) << text;
}

TEST(LibNumberParse, DoubleSpecialSpellings) {
  const char* inputs[] = {
      "0",     "-0",    "+0.0",        "0e999999", "1",        "-1",   "  \t\n42",     "3.14",    "-2.5e-3",
      "1E10",  "1e+10", ".5",          "5.",       "+.5e",     "1e",   "1e+",          "1e-x",    ".",
      "-",     "",      "abc",         " - 1",     "inf",      "-INF", "Infinity",     "infinit", "infinityx",
      "nan",   "-NaN",  "nan(abc_1)x", "nan(",     "nan(a b)", "0x",   "00000.000001", "1.5.5",   "1e-0",
      "0.000", "1_000", "9e-1",        "123abc"};
  for (const char* s : inputs) expect_strtod_like_libc(s);
}

TEST(LibNumberParse, HexFloatsMatchLibc) {
  const char* inputs[] = {"0x1p3",
                          "-0X1.8P-1",
                          "0x.8",
                          "0x1.",
                          "0x1p",
                          "0x1p+",
                          "0x.p1",
                          "0xp1",
                          "0x1.fffffffffffff8p0",
                          "0x1.fffffffffffff7ffp0",
                          "0x1.00000000000008p0",
                          "0x1.000000000000080000001p0",
                          "0x1p-1074",
                          "0x1p-1075",
                          "0x1.1p-1075",
                          "0x1p1023",
                          "0x1p1024",
                          "0x123456789abcdef0123456789p-100",
                          "0x0.0000000000001p-1022",
                          "0x1p-99999999999"};
  for (const char* s : inputs) expect_strtod_like_libc(s);
}

TEST(LibNumberParse, DoubleHardCases) {
  const char* inputs[] = {
      "1.7976931348623157e308",  // DBL_MAX
      "1.7976931348623158e308",  // rounds to DBL_MAX
      "1.7976931348623159e308",  // overflows
      "1e309",
      "-1e400",
      "2.2250738585072014e-308",  // DBL_MIN, exactly representable decimal-to-normal
      "2.2250738585072011e-308",  // largest subnormal neighbourhood
      "2.2250738585072012e-308",
      "4.9406564584124654e-324",  // smallest subnormal
      "2.4703282292062328e-324",  // just above half of it: rounds up
      "2.4703282292062327e-324",  // just below: rounds to zero
      "1e-320",
      "1e-400",
      "9007199254740993",  // 2^53 + 1: tie, rounds to even
      "9007199254740995",
      "9007199254740992.5",
      "18446744073709551615",
      "18446744073709551616",
      "1e23",
      "8.98846567431158e307",
      "0.1",
      "0.2",
      "0.3",
      "123456789012345678901234567890",
      "3.141592653589793238462643383279502884197169399375105820974944",
      "2.7182818284590452353602874713527e-200",
      "7.2057594037927933e16",
      "5e-324",
      "1e22",
      "1e-22",
      "4.35679e-10",
      "1.00000000000000011102230246251565404236316680908203125",  // exact halfway 1 + 2^-53
      "1.00000000000000011102230246251565404236316680908203124",
      "1.00000000000000011102230246251565404236316680908203126",
  };
  for (const char* s : inputs) expect_strtod_like_libc(s);
}

TEST(LibNumberParse, DoubleManyDigitsUseStickyTail) {
  // 1 + 2^-53 exactly, then a long zero run and a final 1: strictly above the tie -> up.
  std::string halfway = "1.00000000000000011102230246251565404236316680908203125";
  expect_strtod_like_libc(halfway + std::string(2000, '0'));
  expect_strtod_like_libc(halfway + std::string(2000, '0') + "1");
  // 900 integer digits overflow; 900 fractional zeros before the digits underflow.
  expect_strtod_like_libc(std::string(900, '9'));
  expect_strtod_like_libc("0." + std::string(900, '0') + "123");
  expect_strtod_like_libc("0." + std::string(300, '0') + "123456789" + std::string(700, '7'));
  expect_strtod_like_libc(std::string(305, '1') + "e-10");
  // Exact decimal expansion of the smallest subnormal (751 significant digits).
  char buf[1200];
  format(buf, sizeof(buf), "%.1074f", DBL_TRUE_MIN);
  expect_strtod_like_libc(buf);
  format(buf, sizeof(buf), "%.1100e", DBL_MIN);
  expect_strtod_like_libc(buf);
}

TEST(LibNumberParse, DoubleIntegersUpTo2Pow53AreExact) {
  std::mt19937_64 rng(53);
  for (int i = 0; i < 5000; ++i) {
    const uint64_t v = rng() >> (11 + rng() % 53);
    const std::string text = std::to_string(v);
    EXPECT_EQ(parse_double_bits(text.c_str(), nullptr), bits_of(static_cast<double>(v))) << text;
  }
}

TEST(LibNumberParse, RandomDoublesRoundTripThroughPercent17g) {
  std::mt19937_64 rng(0x5eed);
  for (int i = 0; i < 20000; ++i) {
    const double v = from_bits(rng());
    if (std::isnan(v)) continue;
    char text[64];
    format(text, sizeof(text), "%.17g", v);
    char* end = nullptr;
    ASSERT_EQ(parse_double_bits(text, &end), bits_of(v)) << text;
    ASSERT_EQ(*end, '\0');
  }
}

TEST(LibNumberParse, RandomDecimalStringsMatchLibc) {
  std::mt19937_64 rng(0xdec);
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    if (rng() % 2) text += '-';
    const int int_digits = static_cast<int>(rng() % 25);
    for (int d = 0; d < int_digits; ++d) text += static_cast<char>('0' + rng() % 10);
    if (rng() % 2) {
      text += '.';
      const int frac_digits = static_cast<int>(rng() % 25);
      for (int d = 0; d < frac_digits; ++d) text += static_cast<char>('0' + rng() % 10);
    }
    if (rng() % 2) {
      text += 'e';
      text += std::to_string(static_cast<int>(rng() % 700) - 350);
    }
    expect_strtod_like_libc(text);
  }
}

TEST(LibNumberParse, DoubleParsesNlohmannStyleTokensAtEnd) {
  char* end = nullptr;
  EXPECT_EQ(parse_double("12.5,", &end), 12.5);
  EXPECT_EQ(*end, ',');
  NumberStatus status = NumberStatus::kOk;
  EXPECT_EQ(parse_double("1e999", nullptr, &status), HUGE_VAL);
  EXPECT_EQ(status, NumberStatus::kOutOfRange);
  EXPECT_EQ(parse_double("-1e999", nullptr, &status), -HUGE_VAL);
}

void expect_integers_like_libc(const char* text, int base) {
  // Both start from the same sentinel: glibc leaves *end alone for a bad base (AddressSanitizer's
  // strtol interceptors do not, so for a bad base only our own pointer is checked).
  const bool bad_base = base != 0 && (base < 2 || base > 36);
  char* const sentinel = const_cast<char*>(text) + 1000;
  char* libc_end = sentinel;
  errno = 0;
  const unsigned long long expected_u = std::strtoull(text, &libc_end, base);
  const int errno_u = errno;
  char* our_end = sentinel;
  NumberStatus status = NumberStatus::kOk;
  EXPECT_EQ(parse_u64(text, &our_end, base, &status), expected_u) << text << " base " << base;
  EXPECT_EQ(our_end, bad_base ? sentinel : libc_end) << text << " base " << base;
  EXPECT_EQ(status == NumberStatus::kOutOfRange, errno_u == ERANGE) << text;
  EXPECT_EQ(status == NumberStatus::kBadBase, errno_u == EINVAL) << text;

  libc_end = sentinel;
  our_end = sentinel;
  errno = 0;
  const long long expected_s = std::strtoll(text, &libc_end, base);
  const int errno_s = errno;
  EXPECT_EQ(parse_i64(text, &our_end, base, &status), expected_s) << text << " base " << base;
  EXPECT_EQ(our_end, bad_base ? sentinel : libc_end) << text << " base " << base;
  EXPECT_EQ(status == NumberStatus::kOutOfRange, errno_s == ERANGE) << text;
  EXPECT_EQ(status == NumberStatus::kBadBase, errno_s == EINVAL) << text;
}

TEST(LibNumberParse, IntegersMatchLibc) {
  const char* inputs[] = {"0",
                          "1",
                          "-1",
                          "+7",
                          "  42xyz",
                          "077",
                          "08",
                          "0x",
                          "0x1g",
                          "0X1F",
                          "0xffffffffffffffff",
                          "0x10000000000000000",
                          "18446744073709551615",
                          "18446744073709551616",
                          "-18446744073709551615",
                          "-18446744073709551616",
                          "9223372036854775807",
                          "9223372036854775808",
                          "-9223372036854775808",
                          "-9223372036854775809",
                          "99999999999999999999999999",
                          "",
                          "-",
                          " + 1",
                          "z",
                          "zz",
                          "1010102",
                          "Zz9",
                          "0b101"};
  const int bases[] = {0, 2, 8, 10, 16, 36, 1, 37, -1};
  for (const char* s : inputs) {
    for (int base : bases) expect_integers_like_libc(s, base);
  }
}

TEST(LibNumberParse, RandomIntegersMatchLibc) {
  std::mt19937_64 rng(64);
  for (int i = 0; i < 20000; ++i) {
    const int base = static_cast<int>(rng() % 37);
    if (base == 1) continue;
    char text[64];
    const uint64_t v = rng() >> (rng() % 64);
    switch (rng() % 3) {
      case 0: std::snprintf(text, sizeof(text), "%llu", static_cast<unsigned long long>(v)); break;
      case 1: std::snprintf(text, sizeof(text), "-%llx", static_cast<unsigned long long>(v)); break;
      default: std::snprintf(text, sizeof(text), "0x%llX9", static_cast<unsigned long long>(v)); break;
    }
    expect_integers_like_libc(text, base);
  }
}

}  // namespace
}  // namespace lantern::lib

namespace lantern::lib {
namespace {

// The capacities chosen for the conversions' big integers cover their worst cases.
TEST(LibBigUint, ParseCapacityCoversWorstCase) {
  // number_parse.cpp: D < 10^800 and den <= 10^1124, then 55 + 56 bits of scaling.
  detail::BigUint<124> num(1);
  num.mul_pow10(800);
  detail::BigUint<124> den(1);
  den.mul_pow10(1124);
  const int sh = 55 - (static_cast<int>(num.bit_length()) - static_cast<int>(den.bit_length()));
  num.shift_left(static_cast<size_t>(sh));
  den.shift_left(55);
  EXPECT_FALSE(num.overflowed());
  EXPECT_FALSE(den.overflowed());
  EXPECT_LE(num.size(), 124u);
}

TEST(LibBigUint, FormatCapacityCoversWorstCase) {
  // format.cpp: r = (2^53 - 1) * 10^324 * 10 * 2 for the smallest values, s = 10^309 * 10.
  detail::BigUint<40> r((uint64_t{1} << 53) - 1);
  r.mul_pow10(326);
  r.shift_left(1);
  EXPECT_FALSE(r.overflowed());
  detail::BigUint<40> s(1);
  s.shift_left(971);
  s.mul_pow10(2);
  detail::BigUint<40> top(1);
  top.mul_pow10(310);
  EXPECT_FALSE(top.overflowed());
  detail::BigUint<2> tiny(1);
  tiny.shift_left(100);  // does not fit: flagged, not written out of bounds
  EXPECT_TRUE(tiny.overflowed());
}

TEST(LibBigUint, ArithmeticAgreesWithUint64) {
  detail::BigUint<4> a(0xffffffffull);
  a.mul_add_small(0xffffffffu, 0xffffffffu);  // (2^32-1)^2 + 2^32-1 = 2^64 - 2^32
  EXPECT_EQ(a.bit_length(), 64u);
  detail::BigUint<4> b(0xffffffff00000000ull);
  EXPECT_EQ(a.compare(b), 0);
  a.shift_left(4);
  a.shift_right_one();
  a.shift_right_one();
  a.shift_right_one();
  a.shift_right_one();
  EXPECT_EQ(a.compare(b), 0);
  detail::BigUint<4> c(7);
  b.add(c);
  b.subtract(a);
  EXPECT_EQ(b.compare(c), 0);
  detail::BigUint<4> thirty(30);
  detail::BigUint<4> seven(7);
  EXPECT_EQ(thirty.divide_small_quotient(seven), 4u);
  EXPECT_EQ(thirty.compare(detail::BigUint<4>(2)), 0);
}

}  // namespace
}  // namespace lantern::lib
