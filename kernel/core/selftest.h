// In-kernel tests, run when the kernel command line has `selftest`. Each prints
// `SELFTEST <name> ok` or `SELFTEST <name> FAIL <why>`; the run ends with
// `selftest: <N> passed, <M> failed` and the emulator is told to exit (kernel/core/power.h).
#pragma once

#include "kernel/lib/result.h"

namespace lantern::selftest {

using TestFunction = Result<void> (*)();

class Registrar {
 public:
  Registrar(const char* name, TestFunction fn);
};

struct Summary {
  int passed;
  int failed;
};
Summary run_all();

}  // namespace lantern::selftest

#define LANTERN_SELFTEST(name)                                                              \
  static ::lantern::Result<void> selftest_##name();                                         \
  static ::lantern::selftest::Registrar selftest_registrar_##name(#name, &selftest_##name); \
  static ::lantern::Result<void> selftest_##name()

// Fails the enclosing self-test with the condition's text and line.
#define SELFTEST_EXPECT(cond)                                                                        \
  do {                                                                                               \
    if (!(cond)) return ::lantern::make_error(::lantern::ErrorCode::kInvalidState, #cond, __LINE__); \
  } while (0)
