// Panics: for broken invariants only. Anything a guest or a client does is an error value.
#pragma once

#include "kernel/runtime/panic.h"  // [[noreturn]] void lantern::panic(const char* fmt, ...)

namespace lantern {
namespace interrupts {
struct Frame;
}

// Prints `LANTERN PANIC <reason>`, the interrupted state, control registers and a
// frame-pointer backtrace to COM1, then stops this CPU (the others keep running).
[[noreturn]] void panic_with_frame(const interrupts::Frame& frame, const char* reason);

}  // namespace lantern

#define LANTERN_ASSERT(cond)                                                                  \
  do {                                                                                        \
    if (!(cond)) ::lantern::panic("assertion failed: %s (%s:%d)", #cond, __FILE__, __LINE__); \
  } while (0)
