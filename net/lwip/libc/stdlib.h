/* <stdlib.h> for lwIP's freestanding C build: netif_find() uses atoi (net/lwip/libc_extras.cpp). */
#ifndef LANTERN_NET_LWIP_LIBC_STDLIB_H
#define LANTERN_NET_LWIP_LIBC_STDLIB_H
#include <stddef.h>
int atoi(const char* s);
#endif
