// C library functions lwIP's core calls that the kernel runtime does not otherwise need
// (dependencies.md: strncmp in lwip_strnstr, atoi in netif_find). Weak, so a strong definition
// in kernel/runtime wins without a duplicate-symbol error. Kernel-only (the host has libc).
#include <cstddef>

extern "C" __attribute__((weak)) int strncmp(const char* a, const char* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const unsigned char ca = static_cast<unsigned char>(a[i]);
    const unsigned char cb = static_cast<unsigned char>(b[i]);
    if (ca != cb) return ca < cb ? -1 : 1;
    if (ca == 0) return 0;
  }
  return 0;
}

// Decimal only, optional sign, stops at the first non-digit; no overflow detection (C11
// 7.22.1.2 leaves overflow undefined; lwIP passes interface numbers 0..255).
extern "C" __attribute__((weak)) int atoi(const char* s) {
  while (*s == ' ' || (*s >= '\t' && *s <= '\r')) ++s;
  bool negative = false;
  if (*s == '+' || *s == '-') negative = (*s++ == '-');
  unsigned value = 0;
  while (*s >= '0' && *s <= '9') value = value * 10 + static_cast<unsigned>(*s++ - '0');
  return negative ? -static_cast<int>(value) : static_cast<int>(value);
}
