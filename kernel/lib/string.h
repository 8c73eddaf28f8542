// Memory and C-string primitives for the freestanding kernel (portable, namespace lantern::lib).
// kernel/runtime/libc.cpp forwards the C library's memcpy/memset/strlen/... here, so these must
// never call those C functions themselves (see string.cpp for how loops are kept from being
// turned back into memcpy/memset calls by the compiler).
#pragma once

#include <cstddef>

namespace lantern::lib {

// memcpy: copies n bytes; the ranges must not overlap. Returns dst.
void* mem_copy(void* dst, const void* src, size_t n);
// memmove: copies n bytes; the ranges may overlap. Returns dst.
void* mem_move(void* dst, const void* src, size_t n);
// memset: fills n bytes with (unsigned char)value. Returns dst.
void* mem_set(void* dst, int value, size_t n);
// memcmp: <0, 0, >0 comparing the first n bytes as unsigned char.
int mem_compare(const void* a, const void* b, size_t n);
// memchr: first byte equal to (unsigned char)value in [p, p+n), or nullptr.
const void* mem_find(const void* p, int value, size_t n);

// strlen / strnlen (never reads past s[max_len - 1]).
size_t str_length(const char* s);
size_t str_length_bounded(const char* s, size_t max_len);
// strcmp / strncmp: compare as unsigned char.
int str_compare(const char* a, const char* b);
int str_ncompare(const char* a, const char* b, size_t n);
// strchr / strrchr: searching for '\0' finds the terminator, as in C.
const char* str_find_char(const char* s, int c);
const char* str_find_last_char(const char* s, int c);

}  // namespace lantern::lib
