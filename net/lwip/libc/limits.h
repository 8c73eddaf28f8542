/* <limits.h> for lwIP's freestanding C build. GCC's own limits.h would #include_next the C
 * library's (dependencies.md pitfall); the compiler's predefined macros are all lwIP needs. */
#ifndef LANTERN_NET_LWIP_LIBC_LIMITS_H
#define LANTERN_NET_LWIP_LIBC_LIMITS_H
#define CHAR_BIT __CHAR_BIT__
#define SCHAR_MAX __SCHAR_MAX__
#define SHRT_MAX __SHRT_MAX__
#define INT_MAX __INT_MAX__
#define INT_MIN (-INT_MAX - 1)
#define UINT_MAX (INT_MAX * 2U + 1U)
#define LONG_MAX __LONG_MAX__
#define LONG_MIN (-LONG_MAX - 1L)
#define ULONG_MAX (LONG_MAX * 2UL + 1UL)
#endif
