// printf-style formatting without libc and without heap (portable, namespace lantern::lib).
//
// format_v() behaves like C99 vsnprintf(): it writes at most size-1 characters plus a NUL
// (always NUL-terminates when size > 0; buf may be nullptr when size == 0) and returns the
// length the full output would have had. kernel/runtime/libc.cpp exposes it as
// snprintf/vsnprintf for libstdc++ and nlohmann/json.
//
// Supported: conversions d i u o x X c s p n(ignored, consumes the pointer) % and the
// floating-point f F e E g G; flags - + space # 0; width and precision (numbers or *);
// length modifiers hh h l ll q L j z Z t. Output matches glibc, including:
//   - %e/%f/%g are exact and correctly rounded (ties to even, like glibc in the default
//     rounding mode) at any precision, so "%.17g" round-trips every double;
//   - inf/nan print as inf/nan/-nan (INF/NAN for F E G) and ignore the 0 flag;
//   - %p prints "0x..." (like %#lx) or "(nil)"; %s of nullptr prints "(null)" (nothing when
//     the precision is below 6, like glibc).
// Not supported: %a/%A, wide characters (%lc %ls), positional arguments (%1$d): they are
// copied to the output verbatim. Floating-point needs SSE (x86-64 passes doubles in XMM
// registers): in a translation unit built with -mgeneral-regs-only, %e/%f/%g print "?" and do
// not consume an argument.
//
// Stack use: about 1.6 KiB for a floating-point conversion, a few hundred bytes otherwise.
// Speed (host, -O2): "%.17g" of a random double about 2 us, of a typical value well below.
#pragma once

#include <cstdarg>
#include <cstddef>

namespace lantern::lib {

int format_v(char* buf, size_t size, const char* fmt, va_list args);
int format(char* buf, size_t size, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

// Streaming variant: output is handed to `sink` in chunks (never NUL-terminated); returns the
// total number of characters produced. Useful for the serial console and the log.
using FormatSink = void (*)(void* ctx, const char* data, size_t len);
int format_to_v(FormatSink sink, void* ctx, const char* fmt, va_list args);
int format_to(FormatSink sink, void* ctx, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

}  // namespace lantern::lib
