/* lwIP architecture port for Lantern's x86-64 kernel (lwIP: src/include/lwip/arch.h, doc
 * "Porting for an OS"). Included from C (lwIP itself) and C++ (net/stack/). */
#ifndef LANTERN_NET_LWIP_ARCH_CC_H
#define LANTERN_NET_LWIP_ARCH_CC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* x86-64 is little-endian (Intel SDM Vol. 1, 1.3.1). In C++ glibc's <endian.h> may already
 * have defined it (to the same value). */
#ifndef BYTE_ORDER
#define BYTE_ORDER LITTLE_ENDIAN
#endif

/* Pitfalls from dependencies.md: no <inttypes.h> / <ctype.h> in the freestanding build. */
#define LWIP_NO_INTTYPES_H 1
#define LWIP_NO_CTYPE_H 1

/* printf formatters for lwIP's types (u32_t is unsigned int with GCC on x86-64). Only used by
 * LWIP_DEBUGF, which is compiled out, and by LWIP_PLATFORM_DIAG. */
#define X8_F "02x"
#define U16_F "hu"
#define S16_F "hd"
#define X16_F "hx"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "zu"

/* The saved RFLAGS of sys_arch_protect() (net/lwip/sys_arch.cpp). dependencies.md: must be
 * defined here, lwIP's sys.h has no default under NO_SYS. */
typedef uint64_t sys_prot_t;

/* Routed to the kernel log (lwIP's own diagnostics) and to lantern::panic (broken asserts). */
void lantern_lwip_diag(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void lantern_lwip_assert(const char* message, const char* file, int line) __attribute__((noreturn));
uint32_t lantern_lwip_rand(void);

#define LWIP_PLATFORM_DIAG(x) \
  do {                        \
    lantern_lwip_diag x;      \
  } while (0)
#define LWIP_PLATFORM_ASSERT(x) lantern_lwip_assert((x), __FILE__, __LINE__)

/* RDRAND when CPUID.01H:ECX.RDRAND[bit 30] is set (Intel SDM Vol. 1, 7.3.17), else a TSC mix.
 * Used for TCP initial sequence numbers, local ports and the DHCP transaction ID. */
#define LWIP_RAND() lantern_lwip_rand()

#ifdef __cplusplus
}
#endif

#endif /* LANTERN_NET_LWIP_ARCH_CC_H */
