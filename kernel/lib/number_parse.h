// Number parsing with the C library's strtod/strtoll/strtoull semantics (portable, namespace
// lantern::lib). kernel/runtime/libc.cpp exposes these as strtod/strtol/strtoull/... for
// nlohmann/json and lwIP; `status` becomes errno there.
//
// Common rules (C11 7.22.1.3, 7.22.1.4): leading isspace() characters are skipped, then an
// optional sign. `*end` (when end is not nullptr) receives the first character not used; when
// no number was recognised it receives `s` itself and the result is 0.
#pragma once

#include <cstdint>

namespace lantern::lib {

enum class NumberStatus : uint8_t {
  kOk = 0,
  kOutOfRange,  // ERANGE: the result was clamped (or underflowed to zero / a subnormal)
  kBadBase,     // EINVAL: base is neither 0 nor in [2, 36]
};

// strtod, returning the IEEE 754 binary64 bit pattern (integer-only code: usable from code
// built without SSE). Accepts decimal numbers with an optional fraction and exponent
// ("-12.5e-3"), hexadecimal floating constants ("0x1.8p3"), "inf"/"infinity" and
// "nan"/"nan(chars)" in any case. The result is correctly rounded (round half to even) for
// every input, however many digits it has. Uses about 2 KiB of stack (exact big-integer
// arithmetic); typical JSON numbers take well under a microsecond.
// Overflow gives +-infinity and kOutOfRange; a nonzero value that rounds to zero or to an
// inexact subnormal gives kOutOfRange too (as glibc does).
uint64_t parse_double_bits(const char* s, char** end, NumberStatus* status = nullptr);

#if defined(__SSE2__)
// strtod. Needs SSE (the result is returned in an XMM register).
double parse_double(const char* s, char** end, NumberStatus* status = nullptr);
#endif

// strtoull: base 0 means "0x"/"0X" prefix -> 16, leading "0" -> 8, else 10; base 16 also
// accepts a "0x" prefix (only when a hex digit follows it). A leading '-' negates the result
// in unsigned arithmetic. Overflow returns UINT64_MAX with kOutOfRange. A bad base returns 0
// with kBadBase and leaves *end untouched (glibc behaviour).
uint64_t parse_u64(const char* s, char** end, int base, NumberStatus* status = nullptr);

// strtoll: overflow returns INT64_MAX or INT64_MIN with kOutOfRange.
int64_t parse_i64(const char* s, char** end, int base, NumberStatus* status = nullptr);

}  // namespace lantern::lib
