// The kernel's fatal-error path. Implemented in the kernel proper (it prints
// "LANTERN PANIC <reason>" and a register dump on COM1, see the design's boot log contract,
// then halts every CPU). Declared here so the runtime can call it.
#pragma once

namespace lantern {

// printf-style message (lantern::lib::format); never returns.
[[noreturn]] void panic(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace lantern
