// printf-style formatter; see format.h for the supported subset.
//
// Floating point is converted exactly with big-integer arithmetic ("Dragon4"-style fixed
// precision digit generation, Steele & White 1990): v = m * 2^e is written as the fraction
// r / s, scaled by a power of ten so that 1 <= r/s < 10, and each digit is floor(r/s) followed
// by r = (r mod s) * 10. The remainder after the last wanted digit decides the rounding
// exactly (ties to even). IEEE 754 binary64 layout: 1 sign bit, 11 exponent bits (bias 1023),
// 52 fraction bits (IEEE 754-2008 section 3.4).
#include "kernel/lib/format.h"

#include <cstdint>

#include "kernel/lib/big_uint.h"
#include "kernel/lib/string.h"

namespace lantern::lib {
namespace {

// ---- Output -----------------------------------------------------------------------------

class Writer {
 public:
  Writer(char* buf, size_t size) : buf_(buf), size_(size) {}
  Writer(FormatSink sink, void* ctx) : sink_(sink), sink_ctx_(ctx) {}

  void put(char c) {
    if (sink_ != nullptr) {
      chunk_[chunk_len_++] = c;
      if (chunk_len_ == sizeof(chunk_)) flush();
    } else if (size_ != 0 && total_ < size_ - 1) {
      buf_[total_] = c;
    }
    ++total_;
  }
  void put_n(const char* s, size_t n) {
    for (size_t i = 0; i < n; ++i) put(s[i]);
  }
  void repeat(char c, int64_t n) {
    for (int64_t i = 0; i < n; ++i) put(c);
  }

  // NUL-terminates (buffer mode) or flushes (sink mode); returns the would-be length.
  int finish() {
    if (sink_ != nullptr) {
      flush();
    } else if (size_ != 0) {
      buf_[total_ < size_ - 1 ? total_ : size_ - 1] = '\0';
    }
    // C11 7.21.6.5: the result is the length that would have been written; it cannot be
    // represented beyond INT_MAX, where C says the call fails (negative result).
    return total_ > 0x7fffffffu ? -1 : static_cast<int>(total_);
  }

 private:
  void flush() {
    if (chunk_len_ != 0) sink_(sink_ctx_, chunk_, chunk_len_);
    chunk_len_ = 0;
  }

  char* buf_ = nullptr;
  size_t size_ = 0;
  FormatSink sink_ = nullptr;
  void* sink_ctx_ = nullptr;
  char chunk_[64];
  size_t chunk_len_ = 0;
  size_t total_ = 0;
};

// ---- Conversion specification -----------------------------------------------------------

enum class Length { kNone, kChar, kShort, kLong, kLongLong, kLongDouble, kIntMax, kSize, kPtrDiff };

struct Spec {
  bool left = false;   // '-'
  bool plus = false;   // '+'
  bool space = false;  // ' '
  bool alt = false;    // '#'
  bool zero = false;   // '0'
  int width = 0;
  int precision = -1;  // -1: not given
  Length length = Length::kNone;
};

// Pads `body_len` characters of output (after a `prefix_len` prefix) to the field width.
struct Padding {
  int64_t before_spaces = 0;
  int64_t zeros = 0;
  int64_t after_spaces = 0;
};

Padding compute_padding(const Spec& spec, int64_t prefix_len, int64_t body_len, bool zero_allowed) {
  Padding p;
  const int64_t total = prefix_len + body_len;
  if (spec.width > total) {
    const int64_t pad = spec.width - total;
    if (spec.left)
      p.after_spaces = pad;
    else if (spec.zero && zero_allowed)
      p.zeros = pad;
    else
      p.before_spaces = pad;
  }
  return p;
}

// ---- Integers ---------------------------------------------------------------------------

void emit_integer(Writer& w, const Spec& spec, uint64_t magnitude, bool negative, bool is_signed,
                  unsigned base, bool upper, bool force_hex_prefix) {
  char digits[24];  // 2^64 in octal is 22 digits
  int ndigits = 0;
  const char* alphabet = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  if (!(magnitude == 0 && spec.precision == 0)) {
    uint64_t v = magnitude;
    do {
      digits[ndigits++] = alphabet[v % base];
      v /= base;
    } while (v != 0);
  }

  char prefix[3];
  int prefix_len = 0;
  if (is_signed) {
    if (negative)
      prefix[prefix_len++] = '-';
    else if (spec.plus)
      prefix[prefix_len++] = '+';
    else if (spec.space)
      prefix[prefix_len++] = ' ';
  }
  if (base == 16 && (force_hex_prefix || (spec.alt && magnitude != 0))) {
    prefix[prefix_len++] = '0';
    prefix[prefix_len++] = upper ? 'X' : 'x';
  }

  int precision = spec.precision;
  // C11 7.21.6.1p6 '#' with o: "increase the precision, if and only if necessary, to force
  // the first digit of the result to be a zero".
  if (base == 8 && spec.alt && (ndigits == 0 || digits[ndigits - 1] != '0')) {
    if (precision < ndigits + 1) precision = ndigits + 1;
  }
  int64_t zeros = precision > ndigits ? precision - ndigits : 0;
  // The 0 flag is ignored when a precision is given (C11 7.21.6.1p6).
  Padding pad = compute_padding(spec, prefix_len, zeros + ndigits, spec.precision < 0);
  w.repeat(' ', pad.before_spaces);
  w.put_n(prefix, static_cast<size_t>(prefix_len));
  w.repeat('0', pad.zeros + zeros);
  while (ndigits > 0) w.put(digits[--ndigits]);
  w.repeat(' ', pad.after_spaces);
}

void emit_string(Writer& w, const Spec& spec, const char* s) {
  if (s == nullptr) {
    // glibc prints "(null)" unless the precision is too small to hold it.
    s = (spec.precision < 0 || spec.precision >= 6) ? "(null)" : "";
  }
  const size_t len =
      spec.precision < 0 ? str_length(s) : str_length_bounded(s, static_cast<size_t>(spec.precision));
  Padding pad = compute_padding(spec, 0, static_cast<int64_t>(len), false);
  w.repeat(' ', pad.before_spaces);
  w.put_n(s, len);
  w.repeat(' ', pad.after_spaces);
}

// ---- Floating point ---------------------------------------------------------------------

// Significant digits of a double never exceed 767 (the exact expansion of the smallest
// normal's neighbours); every digit after those is an exact zero.
constexpr int kMaxDigits = 800;

struct Digits {
  char d[kMaxDigits + 1];
  int count = 0;  // digits stored; digits past `count` are zero
  int point = 0;  // value = 0.d[0]d[1]... * 10^point
  char at(int i) const { return (i >= 0 && i < count) ? d[i] : '0'; }
};

// 10^k <= 2^1078 for the scaled fractions below: 1280 bits is enough for every double.
using FloatBig = detail::BigUint<40>;

// Exact decimal digits of v = m * 2^e (m > 0), rounded half-to-even either to `n`
// significant digits (fixed == false, n >= 1) or to the 10^-n place (fixed == true, n >= 0).
void exact_digits(uint64_t m, int e, bool fixed, int n, Digits* out) {
  FloatBig r(m);
  FloatBig s(1);
  if (e >= 0)
    r.shift_left(static_cast<size_t>(e));
  else
    s.shift_left(static_cast<size_t>(-e));

  // floor(log10 v) estimate from floor(log2 v): 78913 / 2^18 is just below log10(2); the
  // loops below fix the estimate up exactly.
  const int log2v = static_cast<int>(64 - __builtin_clzll(m)) - 1 + e;
  int k = (log2v * 78913) >> 18;
  if (k >= 0)
    s.mul_pow10(static_cast<unsigned>(k));
  else
    r.mul_pow10(static_cast<unsigned>(-k));
  FloatBig s10 = s;
  s10.mul_add_small(10, 0);
  while (r.compare(s10) >= 0) {
    s = s10;
    s10.mul_add_small(10, 0);
    ++k;
  }
  while (r.compare(s) < 0) {
    r.mul_add_small(10, 0);
    --k;
  }
  // Now 10^k <= v < 10^(k+1) and 1 <= r/s < 10.
  out->point = k + 1;
  out->count = 0;
  const int64_t want = fixed ? static_cast<int64_t>(k) + 1 + n : n;
  if (want < 0) return;  // v < 10^-(n+1): rounds to zero
  if (want == 0) {
    // Only the rounding of v / 10^(k+1) = (r/s)/10 to an integer matters: up iff r > 5s
    // (an exact tie rounds to the even 0).
    FloatBig twice_r = r;
    twice_r.shift_left(1);
    if (twice_r.compare(s10) > 0) {
      out->d[0] = '1';
      out->count = 1;
      out->point = k + 2;
    }
    return;
  }
  const int count = want > kMaxDigits ? kMaxDigits : static_cast<int>(want);
  for (int i = 0; i < count; ++i) {
    if (i != 0) r.mul_add_small(10, 0);
    out->d[i] = static_cast<char>('0' + r.divide_small_quotient(s));
  }
  out->count = count;
  // r/s in [0, 1) is what is left below the last digit.
  FloatBig twice_r = r;
  twice_r.shift_left(1);
  const int c = twice_r.compare(s);
  const bool round_up = c > 0 || (c == 0 && ((out->d[count - 1] - '0') & 1) != 0);
  if (!round_up) return;
  int i = count - 1;
  while (i >= 0 && out->d[i] == '9') out->d[i--] = '0';
  if (i >= 0) {
    ++out->d[i];
    return;
  }
  // 99..9 rounded up to 100..0: one more integer digit.
  out->d[0] = '1';
  ++out->point;
  if (fixed && count < kMaxDigits) out->d[out->count++] = '0';
}

void emit_fixed_body(Writer& w, const Digits& digits, int frac, bool point) {
  if (digits.point <= 0) {
    w.put('0');
  } else {
    for (int i = 0; i < digits.point; ++i) w.put(digits.at(i));
  }
  if (point) w.put('.');
  for (int i = 0; i < frac; ++i) w.put(digits.at(digits.point + i));
}

int64_t fixed_body_length(const Digits& digits, int frac, bool point) {
  return (digits.point <= 0 ? 1 : digits.point) + (point ? 1 : 0) + frac;
}

int64_t exp_body_length(int frac, bool point, int exp10) {
  int exp_digits = 2;
  for (int a = exp10 < 0 ? -exp10 : exp10; a >= 100; a /= 10) ++exp_digits;
  return 1 + (point ? 1 : 0) + frac + 2 + exp_digits;
}

void emit_exp_body(Writer& w, const Digits& digits, int frac, bool point, int exp10, bool upper) {
  w.put(digits.at(0));
  if (point) w.put('.');
  for (int i = 1; i <= frac; ++i) w.put(digits.at(i));
  w.put(upper ? 'E' : 'e');
  w.put(exp10 < 0 ? '-' : '+');
  char buf[8];
  int n = 0;
  int a = exp10 < 0 ? -exp10 : exp10;
  do {
    buf[n++] = static_cast<char>('0' + a % 10);
    a /= 10;
  } while (a != 0);
  if (n < 2) buf[n++] = '0';
  while (n > 0) w.put(buf[--n]);
}

[[maybe_unused]] void emit_double_bits(Writer& w, const Spec& spec, uint64_t bits, char conv) {
  const bool negative = (bits >> 63) != 0;
  const int biased = static_cast<int>((bits >> 52) & 0x7ff);
  const uint64_t fraction = bits & ((uint64_t{1} << 52) - 1);
  const bool upper = conv == 'F' || conv == 'E' || conv == 'G';

  char sign = 0;
  if (negative)
    sign = '-';
  else if (spec.plus)
    sign = '+';
  else if (spec.space)
    sign = ' ';
  const int sign_len = sign != 0 ? 1 : 0;

  if (biased == 0x7ff) {  // infinity or NaN: never zero-padded
    const char* text = fraction == 0 ? (upper ? "INF" : "inf") : (upper ? "NAN" : "nan");
    Padding pad = compute_padding(spec, sign_len, 3, false);
    w.repeat(' ', pad.before_spaces);
    if (sign != 0) w.put(sign);
    w.put_n(text, 3);
    w.repeat(' ', pad.after_spaces);
    return;
  }

  uint64_t m;
  int e;
  if (biased == 0) {  // zero or subnormal: m * 2^-1074
    m = fraction;
    e = -1074;
  } else {
    m = fraction | (uint64_t{1} << 52);
    e = biased - 1075;
  }
  int precision = spec.precision < 0 ? 6 : spec.precision;
  if (precision > 100000) precision = 100000;  // keeps lengths far from int overflow

  Digits digits;
  bool exp_style = false;
  int frac = precision;
  int exp10 = 0;
  const char lower_conv = static_cast<char>(conv | 0x20);
  if (lower_conv == 'f') {
    if (m != 0) exact_digits(m, e, true, precision, &digits);
  } else {
    const int significant = lower_conv == 'g' ? (precision == 0 ? 1 : precision) : precision + 1;
    if (m != 0) {
      exact_digits(m, e, false, significant, &digits);
    } else {
      digits.d[0] = '0';
      digits.count = 1;
      digits.point = 1;
    }
    exp10 = digits.point - 1;
    if (lower_conv == 'e') {
      exp_style = true;
    } else {
      // C11 7.21.6.1p8 %g: style e if X < -4 or X >= P, else style f with precision P-1-X.
      exp_style = exp10 < -4 || exp10 >= significant;
      frac = exp_style ? significant - 1 : significant - 1 - exp10;
      if (!spec.alt) {  // drop trailing zeros
        int last_nonzero = -1;
        for (int i = 0; i < digits.count && i < significant; ++i) {
          if (digits.d[i] != '0') last_nonzero = i;
        }
        const int needed = exp_style ? last_nonzero : last_nonzero + 1 - digits.point;
        if (needed < frac) frac = needed < 0 ? 0 : needed;
      }
    }
  }
  const bool point = frac > 0 || spec.alt;
  const int64_t body =
      exp_style ? exp_body_length(frac, point, exp10) : fixed_body_length(digits, frac, point);
  Padding pad = compute_padding(spec, sign_len, body, true);
  w.repeat(' ', pad.before_spaces);
  if (sign != 0) w.put(sign);
  w.repeat('0', pad.zeros);
  if (exp_style)
    emit_exp_body(w, digits, frac, point, exp10, upper);
  else
    emit_fixed_body(w, digits, frac, point);
  w.repeat(' ', pad.after_spaces);
}

// ---- Driver -----------------------------------------------------------------------------

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int64_t signed_arg(va_list& args, Length length) {
  switch (length) {
    case Length::kChar: return static_cast<signed char>(va_arg(args, int));
    case Length::kShort: return static_cast<short>(va_arg(args, int));
    case Length::kLong: return va_arg(args, long);
    case Length::kLongLong: return va_arg(args, long long);
    case Length::kIntMax: return va_arg(args, intmax_t);
    case Length::kSize: return va_arg(args, long);  // ssize_t
    case Length::kPtrDiff: return va_arg(args, ptrdiff_t);
    default: return va_arg(args, int);
  }
}

uint64_t unsigned_arg(va_list& args, Length length) {
  switch (length) {
    case Length::kChar: return static_cast<unsigned char>(va_arg(args, unsigned));
    case Length::kShort: return static_cast<unsigned short>(va_arg(args, unsigned));
    case Length::kLong: return va_arg(args, unsigned long);
    case Length::kLongLong: return va_arg(args, unsigned long long);
    case Length::kIntMax: return va_arg(args, uintmax_t);
    case Length::kSize: return va_arg(args, size_t);
    case Length::kPtrDiff: return static_cast<uint64_t>(va_arg(args, ptrdiff_t));
    default: return va_arg(args, unsigned);
  }
}

// Reads a decimal field width/precision, saturating far below INT_MAX.
int read_number(const char*& p) {
  int v = 0;
  while (is_digit(*p)) {
    if (v < 100000000) v = v * 10 + (*p - '0');
    ++p;
  }
  return v;
}

int run(Writer& w, const char* fmt, va_list args_in) {
  va_list args;
  va_copy(args, args_in);
  const char* p = fmt;
  while (*p != '\0') {
    if (*p != '%') {
      w.put(*p++);
      continue;
    }
    const char* spec_start = p++;
    Spec spec;
    for (;; ++p) {
      if (*p == '-')
        spec.left = true;
      else if (*p == '+')
        spec.plus = true;
      else if (*p == ' ')
        spec.space = true;
      else if (*p == '#')
        spec.alt = true;
      else if (*p == '0')
        spec.zero = true;
      else
        break;
    }
    if (*p == '*') {
      ++p;
      int width = va_arg(args, int);
      if (width < 0) {  // C11 7.21.6.1p5: a negative width is a '-' flag and a positive width
        spec.left = true;
        width = width < -100000000 ? 100000000 : -width;
      }
      spec.width = width > 100000000 ? 100000000 : width;
    } else {
      spec.width = read_number(p);
    }
    if (*p == '.') {
      ++p;
      if (*p == '*') {
        ++p;
        const int precision = va_arg(args, int);
        spec.precision = precision < 0 ? -1 : (precision > 100000000 ? 100000000 : precision);
      } else {
        spec.precision = read_number(p);
      }
    }
    switch (*p) {
      case 'h':
        ++p;
        if (*p == 'h') {
          ++p;
          spec.length = Length::kChar;
        } else {
          spec.length = Length::kShort;
        }
        break;
      case 'l':
        ++p;
        if (*p == 'l') {
          ++p;
          spec.length = Length::kLongLong;
        } else {
          spec.length = Length::kLong;
        }
        break;
      case 'q':
        ++p;
        spec.length = Length::kLongLong;
        break;
      case 'L':
        ++p;
        spec.length = Length::kLongDouble;
        break;
      case 'j':
        ++p;
        spec.length = Length::kIntMax;
        break;
      case 'z':
      case 'Z':
        ++p;
        spec.length = Length::kSize;
        break;
      case 't':
        ++p;
        spec.length = Length::kPtrDiff;
        break;
      default: break;
    }
    const char conv = *p;
    if (conv == '\0') {  // truncated specification: copy it verbatim
      w.put_n(spec_start, static_cast<size_t>(p - spec_start));
      break;
    }
    ++p;
    switch (conv) {
      case 'd':
      case 'i': {
        const int64_t v = signed_arg(args, spec.length);
        const uint64_t magnitude = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
        emit_integer(w, spec, magnitude, v < 0, true, 10, false, false);
        break;
      }
      case 'u':
      case 'o':
      case 'x':
      case 'X': {
        const unsigned base = conv == 'u' ? 10 : (conv == 'o' ? 8 : 16);
        emit_integer(w, spec, unsigned_arg(args, spec.length), false, false, base, conv == 'X', false);
        break;
      }
      case 'p': {
        const void* ptr = va_arg(args, void*);
        if (ptr == nullptr) {
          Spec s = spec;
          s.precision = -1;
          emit_string(w, s, "(nil)");
        } else {
          // glibc prints pointers as %#lx, honouring the + and space flags.
          emit_integer(w, spec, reinterpret_cast<uintptr_t>(ptr), false, true, 16, false, true);
        }
        break;
      }
      case 'c': {
        const char c = static_cast<char>(va_arg(args, int));
        Padding pad = compute_padding(spec, 0, 1, false);
        w.repeat(' ', pad.before_spaces);
        w.put(c);
        w.repeat(' ', pad.after_spaces);
        break;
      }
      case 's': emit_string(w, spec, va_arg(args, const char*)); break;
      case 'n': (void)va_arg(args, void*); break;  // deliberately not supported (writes memory)
      case '%': w.put('%'); break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G': {
#if defined(__SSE2__)
        double v;
        if (spec.length == Length::kLongDouble)
          v = static_cast<double>(va_arg(args, long double));
        else
          v = va_arg(args, double);
        uint64_t bits;
        __builtin_memcpy(&bits, &v, sizeof(bits));
        emit_double_bits(w, spec, bits, conv);
#else
        w.put('?');
#endif
        break;
      }
      default:  // unsupported: copy the specification verbatim, like glibc
        w.put_n(spec_start, static_cast<size_t>(p - spec_start));
        break;
    }
  }
  va_end(args);
  return w.finish();
}

}  // namespace

int format_v(char* buf, size_t size, const char* fmt, va_list args) {
  Writer w(buf, size);
  return run(w, fmt, args);
}

int format(char* buf, size_t size, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  const int n = format_v(buf, size, fmt, args);
  va_end(args);
  return n;
}

int format_to_v(FormatSink sink, void* ctx, const char* fmt, va_list args) {
  Writer w(sink, ctx);
  return run(w, fmt, args);
}

int format_to(FormatSink sink, void* ctx, const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  const int n = format_to_v(sink, ctx, fmt, args);
  va_end(args);
  return n;
}

}  // namespace lantern::lib
