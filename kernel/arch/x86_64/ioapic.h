// I/O APICs (Intel 82093AA datasheet): every redirection entry starts masked.
#pragma once

#include <cstdint>

#include "kernel/acpi/acpi_tables.h"
#include "kernel/lib/result.h"

namespace lantern::ioapic {

Result<void> init(const acpi::MadtInfo& madt);
uint32_t gsi_count();
// Routes a GSI to `vector` on the CPU with `apic_id`, fixed delivery, physical destination.
Result<void> route(uint32_t gsi, uint8_t vector, uint32_t apic_id, bool level_triggered, bool active_low);
Result<void> mask(uint32_t gsi, bool masked);

// Remaps the legacy 8259 PICs away from the exception vectors and masks them.
void disable_legacy_pic();

}  // namespace lantern::ioapic
