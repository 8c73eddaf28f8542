// Ending an emulator run from inside (selftest mode).
#pragma once

namespace lantern::power {

// QEMU: isa-debug-exit at port 0xf4 (exit status (value << 1) | 1). Bochs: the "Shutdown"
// string on port 0x8900 (Bochs then exits with status 1). On real hardware both are no-ops and
// the CPU halts.
[[noreturn]] void exit_emulator(bool passed);

}  // namespace lantern::power
