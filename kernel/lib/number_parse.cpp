// strtod/strtoll/strtoull equivalents; see number_parse.h.
//
// Decimal to binary64 conversion is exact: the decimal significand D and exponent E give the
// fraction num/den = D * 10^E, which is scaled by a power of two so that the integer quotient
// q = floor(num * 2^sh / den) has 55 or 56 bits. q keeps the 53 result bits plus a guard bit;
// the bits below and a nonzero division remainder form the sticky bit for round-half-even
// (IEEE 754-2008 section 4.3.1). binary64: 11 exponent bits, bias 1023, 52 fraction bits,
// subnormals are m * 2^-1074 (IEEE 754-2008 section 3.4).
#include "kernel/lib/number_parse.h"

#include <cstddef>

#include "kernel/lib/big_uint.h"

namespace lantern::lib {
namespace {

constexpr uint64_t kSignBit = uint64_t{1} << 63;
constexpr uint64_t kInfinityBits = 0x7ff0000000000000ull;
constexpr uint64_t kQuietNanBits = 0x7ff8000000000000ull;
constexpr uint64_t kFractionMask = (uint64_t{1} << 52) - 1;

// Digits beyond the 800th significant one only matter through "was any of them nonzero":
// every halfway point between two doubles has at most 767 significant digits, so it is a
// multiple of the last kept digit's unit and the dropped tail can never cross one.
constexpr int kMaxDigits = 800;

// num and den stay below 10^1124 * 2^56 (about 3790 bits): see parse_double_bits.
using ParseBig = detail::BigUint<124>;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c | 0x20) : c;
}

// Case-insensitive prefix match against a lowercase word.
bool matches_word(const char* p, const char* word) {
  for (; *word != '\0'; ++p, ++word) {
    if (to_lower(*p) != *word) return false;
  }
  return true;
}

// Digit value in bases up to 36, or 99 for a non-digit.
unsigned digit_value(char c) {
  if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0');
  const char l = to_lower(c);
  if (l >= 'a' && l <= 'z') return static_cast<unsigned>(l - 'a') + 10;
  return 99;
}

void set_status(NumberStatus* status, NumberStatus value) {
  if (status != nullptr) *status = value;
}

void set_end(char** end, const char* p) {
  if (end != nullptr) *end = const_cast<char*>(p);
}

// q >> shift, and whether the highest dropped bit is set and whether any lower dropped bit is.
struct Shifted {
  uint64_t value;
  bool round;
  bool sticky;
};

Shifted shift_right_for_rounding(uint64_t q, int shift) {
  if (shift <= 0) return {q, false, false};
  if (shift > 64) return {0, false, q != 0};
  const uint64_t value = shift == 64 ? 0 : q >> shift;
  const bool round = ((q >> (shift - 1)) & 1) != 0;
  const uint64_t below = shift - 1 == 0 ? 0 : (q & ((uint64_t{1} << (shift - 1)) - 1));
  return {value, round, below != 0};
}

// Rounds the exact value (q + fraction) * 2^-sh, q in [2^54, 2^56), to binary64 bits;
// `sticky` says the fraction below q is nonzero.
uint64_t round_to_double(uint64_t q, int sh, bool sticky, NumberStatus* status) {
  const int qbits = 64 - __builtin_clzll(q);
  int e2 = qbits - 1 - sh;  // floor(log2(value))
  const bool subnormal = e2 < -1022;
  // Normal: keep 53 bits. Subnormal: the result counts units of 2^-1074, i.e. q * 2^(1074-sh).
  const int drop = subnormal ? sh - 1074 : qbits - 53;
  Shifted s = shift_right_for_rounding(q, drop);
  uint64_t mant = s.value;
  const bool inexact = s.round || s.sticky || sticky;
  if (s.round && (s.sticky || sticky || (mant & 1) != 0)) ++mant;
  if (subnormal) {
    // mant <= 2^52 here; 2^52 is exactly the bit pattern of the smallest normal.
    if (inexact) set_status(status, NumberStatus::kOutOfRange);
    return mant;
  }
  if (mant == (uint64_t{1} << 53)) {
    mant >>= 1;
    ++e2;
  }
  if (e2 > 1023) {
    set_status(status, NumberStatus::kOutOfRange);
    return kInfinityBits;
  }
  return (static_cast<uint64_t>(e2 + 1023) << 52) | (mant & kFractionMask);
}

// Hexadecimal floating constant after its "0x" (C11 6.4.4.2): hex digits with an optional
// '.', then an optional binary exponent "p[+-]digits".
uint64_t parse_hex_double(const char* p, char** end, uint64_t sign, NumberStatus* status) {
  uint64_t mant = 0;
  int64_t exp2 = 0;
  bool sticky = false;
  bool any_digit = false;
  for (; digit_value(*p) < 16; ++p) {
    any_digit = true;
    const unsigned d = digit_value(*p);
    if (mant < (uint64_t{1} << 59)) {
      mant = mant * 16 + d;
    } else {
      exp2 += 4;
      sticky |= d != 0;
    }
  }
  if (*p == '.') {
    ++p;
    for (; digit_value(*p) < 16; ++p) {
      any_digit = true;
      const unsigned d = digit_value(*p);
      if (mant < (uint64_t{1} << 59)) {
        mant = mant * 16 + d;
        exp2 -= 4;
      } else {
        sticky |= d != 0;
      }
    }
  }
  (void)any_digit;  // the caller checked that a hex digit follows the prefix
  if (*p == 'p' || *p == 'P') {
    const char* q = p + 1;
    bool negative = false;
    if (*q == '+' || *q == '-') {
      negative = *q == '-';
      ++q;
    }
    if (is_digit(*q)) {
      int64_t e = 0;
      for (; is_digit(*q); ++q) {
        if (e < 100000000) e = e * 10 + (*q - '0');
      }
      exp2 += negative ? -e : e;
      p = q;
    }
  }
  set_end(end, p);
  if (mant == 0) return sign;
  // value = (mant + sticky) * 2^exp2; normalise mant to 55 bits for round_to_double().
  const int b = 64 - __builtin_clzll(mant);
  if (exp2 + b > 1100) {
    set_status(status, NumberStatus::kOutOfRange);
    return sign | kInfinityBits;
  }
  if (exp2 + b < -1100) {
    set_status(status, NumberStatus::kOutOfRange);
    return sign;
  }
  uint64_t q;
  if (b > 55) {
    sticky |= (mant & ((uint64_t{1} << (b - 55)) - 1)) != 0;
    q = mant >> (b - 55);
  } else {
    q = mant << (55 - b);
  }
  const int sh = -static_cast<int>(exp2 + b - 55);
  return sign | round_to_double(q, sh, sticky, status);
}

}  // namespace

uint64_t parse_double_bits(const char* s, char** end, NumberStatus* status) {
  set_status(status, NumberStatus::kOk);
  const char* p = s;
  while (is_space(*p)) ++p;
  uint64_t sign = 0;
  if (*p == '+' || *p == '-') {
    if (*p == '-') sign = kSignBit;
    ++p;
  }

  if (matches_word(p, "inf")) {
    p += 3;
    if (matches_word(p, "inity")) p += 5;
    set_end(end, p);
    return sign | kInfinityBits;
  }
  if (matches_word(p, "nan")) {
    p += 3;
    if (*p == '(') {  // nan(n-char-sequence): letters, digits and '_' (C11 7.22.1.3p3)
      const char* q = p + 1;
      while (digit_value(*q) != 99 || *q == '_') ++q;
      if (*q == ')') p = q + 1;
    }
    set_end(end, p);
    return sign | kQuietNanBits;
  }

  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') &&
      (digit_value(p[2]) < 16 || (p[2] == '.' && digit_value(p[3]) < 16))) {
    return parse_hex_double(p + 2, end, sign, status);
  }

  // Significant digits (leading zeros dropped) and the decimal exponent of the last one kept.
  char digits[kMaxDigits];
  int nd = 0;
  int64_t exp10 = 0;
  bool dropped_nonzero = false;
  bool any_digit = false;
  for (; is_digit(*p); ++p) {
    any_digit = true;
    if (nd == 0 && *p == '0') continue;
    if (nd < kMaxDigits) {
      digits[nd++] = *p;
    } else {
      ++exp10;
      dropped_nonzero |= *p != '0';
    }
  }
  if (*p == '.') {
    const char* q = p + 1;
    if (any_digit || is_digit(*q)) {
      p = q;
      for (; is_digit(*p); ++p) {
        any_digit = true;
        if (nd == 0 && *p == '0') {
          --exp10;
        } else if (nd < kMaxDigits) {
          digits[nd++] = *p;
          --exp10;
        } else {
          dropped_nonzero |= *p != '0';
        }
      }
    }
  }
  if (!any_digit) {
    set_end(end, s);
    return 0;
  }
  if (*p == 'e' || *p == 'E') {
    const char* q = p + 1;
    bool exp_negative = false;
    if (*q == '+' || *q == '-') {
      exp_negative = *q == '-';
      ++q;
    }
    if (is_digit(*q)) {
      int64_t e = 0;
      for (; is_digit(*q); ++q) {
        if (e < 100000000) e = e * 10 + (*q - '0');  // saturate: anything this big is 0 or inf
      }
      exp10 += exp_negative ? -e : e;
      p = q;
    }
  }
  set_end(end, p);

  while (nd > 0 && digits[nd - 1] == '0') {  // trailing zeros only make the numbers bigger
    --nd;
    ++exp10;
  }
  if (nd == 0) return sign;  // zero, whatever the exponent
  // value = D * 10^exp10 with D of nd digits, so 10^(nd-1+exp10) <= value < 10^(nd+exp10).
  if (nd + exp10 > 310) {  // above DBL_MAX (1.8e308)
    set_status(status, NumberStatus::kOutOfRange);
    return sign | kInfinityBits;
  }
  if (nd + exp10 < -324) {  // below 10^-325, under half the smallest subnormal (4.9e-324)
    set_status(status, NumberStatus::kOutOfRange);
    return sign;
  }

  // Fast path: an integer of at most 19 digits is exact in uint64_t.
  if (nd <= 19 && exp10 >= 0 && nd + exp10 <= 19 && !dropped_nonzero) {
    uint64_t v = 0;
    for (int i = 0; i < nd; ++i) v = v * 10 + static_cast<uint64_t>(digits[i] - '0');
    for (int64_t i = 0; i < exp10; ++i) v *= 10;
    if (v < (uint64_t{1} << 53)) {
      if (v == 0) return sign;
      // Exact: place the integer's bits directly.
      const int bits = 64 - __builtin_clzll(v);
      const uint64_t mant = v << (53 - bits);
      return sign | (static_cast<uint64_t>(bits - 1 + 1023) << 52) | (mant & kFractionMask);
    }
  }

  ParseBig num;
  ParseBig den(1);
  // D in chunks of 9 digits.
  for (int i = 0; i < nd;) {
    uint32_t chunk = 0;
    uint32_t scale = 1;
    for (int j = 0; j < 9 && i < nd; ++j, ++i) {
      chunk = chunk * 10 + static_cast<uint32_t>(digits[i] - '0');
      scale *= 10;
    }
    num.mul_add_small(scale, chunk);
  }
  if (exp10 >= 0)
    num.mul_pow10(static_cast<unsigned>(exp10));
  else
    den.mul_pow10(static_cast<unsigned>(-exp10));

  // Scale so that q = floor(num * 2^sh / den) lies in [2^54, 2^56).
  const int sh = 55 - (static_cast<int>(num.bit_length()) - static_cast<int>(den.bit_length()));
  if (sh > 0)
    num.shift_left(static_cast<size_t>(sh));
  else
    den.shift_left(static_cast<size_t>(-sh));
  // Binary long division for the 56 quotient bits.
  den.shift_left(55);
  uint64_t q = 0;
  for (int bit = 55; bit >= 0; --bit) {
    if (num.compare(den) >= 0) {
      num.subtract(den);
      q |= uint64_t{1} << bit;
    }
    if (bit != 0) den.shift_right_one();
  }
  const bool sticky = !num.is_zero() || dropped_nonzero;
  return sign | round_to_double(q, sh, sticky, status);
}

#if defined(__SSE2__)
double parse_double(const char* s, char** end, NumberStatus* status) {
  const uint64_t bits = parse_double_bits(s, end, status);
  double d;
  __builtin_memcpy(&d, &bits, sizeof(d));
  return d;
}
#endif

namespace {

// The common part of strtoull/strtoll: magnitude, sign and overflow.
struct IntegerParse {
  uint64_t magnitude = 0;
  bool negative = false;
  bool overflow = false;
  bool valid = false;
};

IntegerParse parse_integer(const char* s, char** end, int base, NumberStatus* status) {
  set_status(status, NumberStatus::kOk);
  IntegerParse r;
  if (base != 0 && (base < 2 || base > 36)) {
    set_status(status, NumberStatus::kBadBase);  // *end is left untouched, as glibc does
    return r;
  }
  const char* p = s;
  while (is_space(*p)) ++p;
  if (*p == '+' || *p == '-') {
    r.negative = *p == '-';
    ++p;
  }
  if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && digit_value(p[2]) < 16) {
    p += 2;
    base = 16;
  } else if (base == 0) {
    base = p[0] == '0' ? 8 : 10;
  }
  const uint64_t b = static_cast<uint64_t>(base);
  for (;; ++p) {
    const unsigned d = digit_value(*p);
    if (d >= b) break;
    r.valid = true;
    if (r.magnitude > (UINT64_MAX - d) / b)
      r.overflow = true;
    else
      r.magnitude = r.magnitude * b + d;
  }
  set_end(end, r.valid ? p : s);
  return r;
}

}  // namespace

uint64_t parse_u64(const char* s, char** end, int base, NumberStatus* status) {
  const IntegerParse r = parse_integer(s, end, base, status);
  if (!r.valid) return 0;
  if (r.overflow) {
    set_status(status, NumberStatus::kOutOfRange);
    return UINT64_MAX;
  }
  return r.negative ? 0 - r.magnitude : r.magnitude;
}

int64_t parse_i64(const char* s, char** end, int base, NumberStatus* status) {
  const IntegerParse r = parse_integer(s, end, base, status);
  if (!r.valid) return 0;
  const uint64_t limit = r.negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  if (r.overflow || r.magnitude > limit) {
    set_status(status, NumberStatus::kOutOfRange);
    return r.negative ? INT64_MIN : INT64_MAX;
  }
  return r.negative ? static_cast<int64_t>(0 - r.magnitude) : static_cast<int64_t>(r.magnitude);
}

}  // namespace lantern::lib
