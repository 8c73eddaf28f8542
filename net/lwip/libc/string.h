/* The few <string.h> functions lwIP's core needs, for its freestanding C build only (-nostdinc;
 * never on the C++ include path). Defined by the kernel runtime (kernel/runtime) or, for
 * strncmp, by net/lwip/libc_extras.cpp. */
#ifndef LANTERN_NET_LWIP_LIBC_STRING_H
#define LANTERN_NET_LWIP_LIBC_STRING_H
#include <stddef.h>
void* memcpy(void* dst, const void* src, size_t n);
void* memmove(void* dst, const void* src, size_t n);
void* memset(void* dst, int value, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
int strncmp(const char* a, const char* b, size_t n);
#endif
