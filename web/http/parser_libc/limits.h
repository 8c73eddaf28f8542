/* <limits.h> for http-parser's freestanding C build. GCC's own limits.h would #include_next the C
 * library's; the compiler's predefined macros are all it needs (it defines ULLONG_MAX itself
 * when absent). */
#ifndef LANTERN_WEB_HTTP_PARSER_LIBC_LIMITS_H
#define LANTERN_WEB_HTTP_PARSER_LIBC_LIMITS_H
#define CHAR_BIT __CHAR_BIT__
#define INT_MAX __INT_MAX__
#define UINT_MAX (INT_MAX * 2U + 1U)
#define ULLONG_MAX (__LONG_LONG_MAX__ * 2ULL + 1ULL)
#endif
