// Host-side XMM probes for the xstate self-tests (VMX and SVM): the host's own values in
// XMM0/XMM7 and MXCSR around guest runs, to show a guest's extended state never leaks into the
// host's. Kernel-only, self-tests only.
#pragma once

#include <cstdint>

namespace lantern::guest::selftest_probes {

struct alignas(16) Xmm {
  uint64_t lo, hi;
};
inline void host_load_xmm(const Xmm& v) {
  asm volatile("movdqu %0, %%xmm0\n\tmovdqu %0, %%xmm7" ::"m"(v) : "xmm0", "xmm7");
}
inline Xmm host_read_xmm7() {
  Xmm v;
  asm volatile("movdqu %%xmm7, %0" : "=m"(v));
  return v;
}
inline uint32_t host_read_mxcsr() {
  uint32_t v;
  asm volatile("stmxcsr %0" : "=m"(v));
  return v;
}

}  // namespace lantern::guest::selftest_probes
