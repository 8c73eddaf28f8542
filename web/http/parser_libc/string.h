/* <string.h> for http-parser's freestanding C build: it calls memset only (defined by the
 * kernel runtime, kernel/runtime). */
#ifndef LANTERN_WEB_HTTP_PARSER_LIBC_STRING_H
#define LANTERN_WEB_HTTP_PARSER_LIBC_STRING_H
#include <stddef.h>
void* memset(void* dst, int value, size_t n);
#endif
