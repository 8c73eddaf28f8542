// Memory and C-string primitives. These back the kernel's memcpy/memset/... (kernel/runtime/
// libc.cpp), so GCC must not recognise their loops as memcpy/memset and emit calls to those
// symbols (that would recurse forever): every function is compiled with
// -fno-tree-loop-distribute-patterns through the attribute below.
#include "kernel/lib/string.h"

#include <cstdint>

namespace lantern::lib {
namespace {

#if defined(__clang__)
// Clang has no optimize attribute; only the fuzz preset's host build uses it (the kernel is GCC's).
#define LANTERN_NO_LIBCALLS
#else
#define LANTERN_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#endif

// Unaligned 8-byte access without calling memcpy: x86-64 allows unaligned loads and stores,
// and may_alias keeps the accesses legal for any object type.
typedef uint64_t __attribute__((may_alias, aligned(1))) UnalignedWord;

constexpr size_t kWord = sizeof(uint64_t);

}  // namespace

LANTERN_NO_LIBCALLS void* mem_copy(void* dst, const void* src, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  while (n >= 4 * kWord) {
    UnalignedWord w0 = reinterpret_cast<const UnalignedWord*>(s)[0];
    UnalignedWord w1 = reinterpret_cast<const UnalignedWord*>(s)[1];
    UnalignedWord w2 = reinterpret_cast<const UnalignedWord*>(s)[2];
    UnalignedWord w3 = reinterpret_cast<const UnalignedWord*>(s)[3];
    reinterpret_cast<UnalignedWord*>(d)[0] = w0;
    reinterpret_cast<UnalignedWord*>(d)[1] = w1;
    reinterpret_cast<UnalignedWord*>(d)[2] = w2;
    reinterpret_cast<UnalignedWord*>(d)[3] = w3;
    d += 4 * kWord;
    s += 4 * kWord;
    n -= 4 * kWord;
  }
  while (n >= kWord) {
    *reinterpret_cast<UnalignedWord*>(d) = *reinterpret_cast<const UnalignedWord*>(s);
    d += kWord;
    s += kWord;
    n -= kWord;
  }
  while (n > 0) {
    *d++ = *s++;
    --n;
  }
  return dst;
}

LANTERN_NO_LIBCALLS void* mem_move(void* dst, const void* src, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  if (d == s || n == 0) return dst;
  // Compare as integers: the ranges may belong to different objects.
  const auto du = reinterpret_cast<uintptr_t>(d);
  const auto su = reinterpret_cast<uintptr_t>(s);
  if (du < su || du >= su + n) {
    // Forward copy is safe: either dst is below src, or the ranges do not overlap. Each word
    // is loaded before it is stored, and a forward walk with dst < src never overwrites
    // bytes not yet read.
    while (n >= kWord) {
      UnalignedWord w = *reinterpret_cast<const UnalignedWord*>(s);
      *reinterpret_cast<UnalignedWord*>(d) = w;
      d += kWord;
      s += kWord;
      n -= kWord;
    }
    while (n > 0) {
      *d++ = *s++;
      --n;
    }
  } else {
    // dst overlaps the tail of src: copy backwards.
    d += n;
    s += n;
    while (n >= kWord) {
      d -= kWord;
      s -= kWord;
      n -= kWord;
      UnalignedWord w = *reinterpret_cast<const UnalignedWord*>(s);
      *reinterpret_cast<UnalignedWord*>(d) = w;
    }
    while (n > 0) {
      *--d = *--s;
      --n;
    }
  }
  return dst;
}

LANTERN_NO_LIBCALLS void* mem_set(void* dst, int value, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto byte = static_cast<unsigned char>(value);
  if (n >= kWord) {
    const uint64_t word = 0x0101010101010101ull * byte;
    while (n >= 4 * kWord) {
      reinterpret_cast<UnalignedWord*>(d)[0] = word;
      reinterpret_cast<UnalignedWord*>(d)[1] = word;
      reinterpret_cast<UnalignedWord*>(d)[2] = word;
      reinterpret_cast<UnalignedWord*>(d)[3] = word;
      d += 4 * kWord;
      n -= 4 * kWord;
    }
    while (n >= kWord) {
      *reinterpret_cast<UnalignedWord*>(d) = word;
      d += kWord;
      n -= kWord;
    }
  }
  while (n > 0) {
    *d++ = byte;
    --n;
  }
  return dst;
}

LANTERN_NO_LIBCALLS int mem_compare(const void* a, const void* b, size_t n) {
  const auto* x = static_cast<const unsigned char*>(a);
  const auto* y = static_cast<const unsigned char*>(b);
  // Skip equal words quickly, then find the first differing byte.
  while (n >= kWord &&
         *reinterpret_cast<const UnalignedWord*>(x) == *reinterpret_cast<const UnalignedWord*>(y)) {
    x += kWord;
    y += kWord;
    n -= kWord;
  }
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

LANTERN_NO_LIBCALLS const void* mem_find(const void* p, int value, size_t n) {
  const auto* s = static_cast<const unsigned char*>(p);
  const auto byte = static_cast<unsigned char>(value);
  for (size_t i = 0; i < n; ++i) {
    if (s[i] == byte) return s + i;
  }
  return nullptr;
}

LANTERN_NO_LIBCALLS size_t str_length(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

LANTERN_NO_LIBCALLS size_t str_length_bounded(const char* s, size_t max_len) {
  size_t n = 0;
  while (n < max_len && s[n] != '\0') ++n;
  return n;
}

LANTERN_NO_LIBCALLS int str_compare(const char* a, const char* b) {
  const auto* x = reinterpret_cast<const unsigned char*>(a);
  const auto* y = reinterpret_cast<const unsigned char*>(b);
  while (*x != '\0' && *x == *y) {
    ++x;
    ++y;
  }
  return static_cast<int>(*x) - static_cast<int>(*y);
}

LANTERN_NO_LIBCALLS int str_ncompare(const char* a, const char* b, size_t n) {
  const auto* x = reinterpret_cast<const unsigned char*>(a);
  const auto* y = reinterpret_cast<const unsigned char*>(b);
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return static_cast<int>(x[i]) - static_cast<int>(y[i]);
    if (x[i] == '\0') return 0;
  }
  return 0;
}

LANTERN_NO_LIBCALLS const char* str_find_char(const char* s, int c) {
  const char ch = static_cast<char>(c);
  for (;; ++s) {
    if (*s == ch) return s;
    if (*s == '\0') return nullptr;
  }
}

LANTERN_NO_LIBCALLS const char* str_find_last_char(const char* s, int c) {
  const char ch = static_cast<char>(c);
  const char* last = nullptr;
  for (;; ++s) {
    if (*s == ch) last = s;
    if (*s == '\0') return last;
  }
}

}  // namespace lantern::lib
