// What the firmware told us: ACPI tables (MADT, MCFG) found through the Multiboot2 RSDP
// tag or the BIOS area, read through the direct map.
#pragma once

#include "kernel/acpi/acpi_tables.h"
#include "kernel/boot/multiboot2.h"
#include "kernel/lib/result.h"

namespace lantern::platform {

struct Info {
  acpi::MadtInfo madt;
  bool has_mcfg;
  acpi::McfgInfo mcfg;
};

Result<void> discover(const multiboot2::BootInfo& boot, uint64_t direct_map_bytes);
const Info& info();

}  // namespace lantern::platform
