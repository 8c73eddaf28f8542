// Bringing up the application processors (INIT-SIPI-SIPI) and per-CPU set-up.
#pragma once

#include <cstdint>
#include <span>

#include "kernel/arch/x86_64/percpu.h"
#include "kernel/lib/result.h"

namespace lantern::smp {

// GDT/TSS with IST stacks, GS base, IDT: for the BSP (static stacks) and every AP.
void setup_cpu_tables(PerCpu& cpu, uint64_t ist_stacks_base);

// Starts every APIC ID in `apic_ids` except this CPU's. Returns how many came online.
// A CPU that does not answer is logged and skipped: the others still start.
uint32_t start_application_processors(std::span<const uint32_t> apic_ids);

// Counts this AP in (cpu_count(), the READY line) and tells the BSP it came up. The composition
// root calls it from ap_entry() once the layers above have set this core up.
void mark_this_cpu_online(PerCpu& cpu);

}  // namespace lantern::smp
