// Local APIC (xAPIC MMIO or x2APIC MSRs) and its timer.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::apic {

// On the BSP: detects x2APIC (CPUID.01H:ECX[21]), enables the APIC and maps the xAPIC page
// when needed. On APs: enables this core's APIC in the mode the BSP chose.
Result<void> init_this_cpu(bool bsp);
bool x2apic_mode();
uint32_t id();
void end_of_interrupt();

// Inter-processor interrupts (SDM Vol. 3 11.6.1).
void send_fixed_ipi(uint32_t apic_id, uint8_t vector);
void send_init(uint32_t apic_id);
void send_startup(uint32_t apic_id, uint8_t page);
void send_nmi(uint32_t apic_id);

// Timer: calibrated against the TSC once on the BSP (time::tsc_hz() must be known).
Result<void> calibrate_timer();
uint64_t timer_hz();  // timer input clock after the divider
void start_periodic_timer(uint32_t hz, uint8_t vector);

}  // namespace lantern::apic
