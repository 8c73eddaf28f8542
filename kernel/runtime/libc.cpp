// The C library subset the kernel links against: libstdc++.a, nlohmann/json and lwIP call these
// (see /work/shared/dependencies.md, "nlohmann/json inside the kernel"). Each forwards to the
// portable, host-tested code in kernel/lib. Signatures follow glibc's headers, which libstdc++'s
// headers include even in the freestanding kernel build.
//
// Deliberately absent: stdio streams, malloc/free (use kmalloc/new), locales beyond "C",
// strtof/strtold (nothing needs them; a float parse through double would double-round).
#undef _FORTIFY_SOURCE  // glibc's inline wrappers would clash with these definitions

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/single_threaded.h>

#include "kernel/lib/format.h"
#include "kernel/lib/number_parse.h"
#include "kernel/lib/string.h"
#include "kernel/runtime/panic.h"

namespace {

// TODO(per-CPU errno): errno is one global for now, so concurrent strtod/strtoull callers on
// different CPUs can see each other's ERANGE. The plan is a field in lantern::PerCpu
// (kernel/arch/x86_64/percpu.h) returned by __errno_location() through %gs once every CPU
// has its GS base, keeping this global for early boot (this_cpu_or_null() == nullptr).
int g_errno = 0;

void set_errno_from(lantern::lib::NumberStatus status) {
  switch (status) {
    case lantern::lib::NumberStatus::kOk: break;
    case lantern::lib::NumberStatus::kOutOfRange: g_errno = ERANGE; break;
    case lantern::lib::NumberStatus::kBadBase: g_errno = EINVAL; break;
  }
}

// localeconv(): the "C" locale (C11 7.11.2.1). Only decimal_point and thousands_sep matter
// to nlohmann/json; CHAR_MAX means "not available" for the monetary char fields.
char kDecimalPoint[] = ".";
char kEmpty[] = "";
lconv g_c_locale = {
    .decimal_point = kDecimalPoint,
    .thousands_sep = kEmpty,
    .grouping = kEmpty,
    .int_curr_symbol = kEmpty,
    .currency_symbol = kEmpty,
    .mon_decimal_point = kEmpty,
    .mon_thousands_sep = kEmpty,
    .mon_grouping = kEmpty,
    .positive_sign = kEmpty,
    .negative_sign = kEmpty,
    .int_frac_digits = CHAR_MAX,
    .frac_digits = CHAR_MAX,
    .p_cs_precedes = CHAR_MAX,
    .p_sep_by_space = CHAR_MAX,
    .n_cs_precedes = CHAR_MAX,
    .n_sep_by_space = CHAR_MAX,
    .p_sign_posn = CHAR_MAX,
    .n_sign_posn = CHAR_MAX,
};

}  // namespace

extern "C" {

// libstdc++ (ext/atomicity.h) skips atomic reference counting when this is nonzero. The kernel
// runs on every CPU, so it must stay 0.
char __libc_single_threaded = 0;

int* __errno_location() noexcept {
  return &g_errno;
}

// ---- <string.h> ---------------------------------------------------------------------------

void* memcpy(void* dst, const void* src, size_t n) noexcept {
  return lantern::lib::mem_copy(dst, src, n);
}
void* memmove(void* dst, const void* src, size_t n) noexcept {
  return lantern::lib::mem_move(dst, src, n);
}
void* memset(void* dst, int value, size_t n) noexcept {
  return lantern::lib::mem_set(dst, value, n);
}
int memcmp(const void* a, const void* b, size_t n) noexcept {
  return lantern::lib::mem_compare(a, b, n);
}
void* memchr(const void* p, int value, size_t n) noexcept {
  return const_cast<void*>(lantern::lib::mem_find(p, value, n));
}
size_t strlen(const char* s) noexcept {
  return lantern::lib::str_length(s);
}
size_t strnlen(const char* s, size_t max_len) noexcept {
  return lantern::lib::str_length_bounded(s, max_len);
}
int strcmp(const char* a, const char* b) noexcept {
  return lantern::lib::str_compare(a, b);
}
int strncmp(const char* a, const char* b, size_t n) noexcept {
  return lantern::lib::str_ncompare(a, b, n);
}
char* strchr(const char* s, int c) noexcept {
  return const_cast<char*>(lantern::lib::str_find_char(s, c));
}
char* strrchr(const char* s, int c) noexcept {
  return const_cast<char*>(lantern::lib::str_find_last_char(s, c));
}

// ---- <stdio.h> ----------------------------------------------------------------------------

int vsnprintf(char* buf, size_t size, const char* fmt, va_list args) noexcept {
  return lantern::lib::format_v(buf, size, fmt, args);
}

int snprintf(char* buf, size_t size, const char* fmt, ...) noexcept {
  va_list args;
  va_start(args, fmt);
  const int n = lantern::lib::format_v(buf, size, fmt, args);
  va_end(args);
  return n;
}

// ---- <stdlib.h> ---------------------------------------------------------------------------

#if defined(__SSE2__)
double strtod(const char* s, char** end) noexcept {
  lantern::lib::NumberStatus status = lantern::lib::NumberStatus::kOk;
  const double v = lantern::lib::parse_double(s, end, &status);
  set_errno_from(status);
  return v;
}
#endif

long strtol(const char* s, char** end, int base) noexcept {
  lantern::lib::NumberStatus status = lantern::lib::NumberStatus::kOk;
  const int64_t v = lantern::lib::parse_i64(s, end, base, &status);
  set_errno_from(status);
  return v;
}

long long strtoll(const char* s, char** end, int base) noexcept {
  lantern::lib::NumberStatus status = lantern::lib::NumberStatus::kOk;
  const int64_t v = lantern::lib::parse_i64(s, end, base, &status);
  set_errno_from(status);
  return v;
}

unsigned long strtoul(const char* s, char** end, int base) noexcept {
  lantern::lib::NumberStatus status = lantern::lib::NumberStatus::kOk;
  const uint64_t v = lantern::lib::parse_u64(s, end, base, &status);
  set_errno_from(status);
  return v;
}

unsigned long long strtoull(const char* s, char** end, int base) noexcept {
  lantern::lib::NumberStatus status = lantern::lib::NumberStatus::kOk;
  const uint64_t v = lantern::lib::parse_u64(s, end, base, &status);
  set_errno_from(status);
  return v;
}

// glibc: (int) strtol(s, NULL, 10); errno is not touched.
int atoi(const char* s) noexcept {
  return static_cast<int>(lantern::lib::parse_i64(s, nullptr, 10, nullptr));
}
long atol(const char* s) noexcept {
  return lantern::lib::parse_i64(s, nullptr, 10, nullptr);
}

[[noreturn]] void abort() noexcept {
  lantern::panic("abort() called");
}

// assert() failures (nlohmann/json's JSON_ASSERT is assert() unless NDEBUG).
[[noreturn]] void __assert_fail(const char* assertion, const char* file, unsigned int line,
                                const char* function) noexcept {
  lantern::panic("assertion failed: %s (%s:%u, %s)", assertion, file, line,
                 function != nullptr ? function : "?");
}

// ---- <locale.h> ---------------------------------------------------------------------------

lconv* localeconv() noexcept {
  return &g_c_locale;
}

}  // extern "C"
