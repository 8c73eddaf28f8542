// Facts gathered at boot that later subsystems and self-tests read.
#pragma once

#include <cstdint>

#include "kernel/boot/multiboot2.h"

namespace lantern {

struct BootState {
  multiboot2::BootInfo multiboot;  // string views point into the boot information (reserved)
  uint32_t cpus_expected = 0;      // enabled CPUs in the MADT
};

const BootState& boot_state();

}  // namespace lantern
