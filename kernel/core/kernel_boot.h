// The kernel base's part of booting: what every layer above needs before it starts (serial log,
// per-CPU tables, Multiboot2 information, memory, paging, heap, time, ACPI, APICs, the timer
// tick), and the application processors. The composition root (root/main.cpp, root/ap_entry.cpp)
// calls these in order and brings the layers above up in between; kernel/ never calls upward.
#pragma once

#include <cstdint>
#include <string_view>

#include "kernel/arch/x86_64/percpu.h"

namespace lantern::kernel_boot {

// The bootstrap processor's base: from the first serial byte to a running 100 Hz tick with
// interrupts enabled. Panics when a step without which the machine is unusable fails. Returns the
// kernel command line (a view into the reserved Multiboot2 information).
std::string_view init_bootstrap_processor();

// Enabled CPUs in the MADT, at most kMaxCpus: the CPUs start_application_processors() will try.
uint32_t enabled_cpus();

// Starts every enabled CPU of the MADT but this one (INIT-SIPI-SIPI). Each AP sets up its tables
// and local APIC, then calls root::ap_entry(). Records the count in boot_state().cpus_expected
// and returns how many came online.
uint32_t start_application_processors();

// `debug.crash=page_fault|invalid_opcode|divide_error`: faults on purpose, so tests can check the
// panic report end to end. Does nothing without the option.
void crash_if_asked(std::string_view cmdline);

// The BSP's idle loop once nothing else runs on it: `poll` (the root passes the network's) between
// interrupts, halting when `work_pending` says there is nothing left. Never returns.
[[noreturn]] void idle_loop_with(void (*poll)(), bool (*work_pending)());

}  // namespace lantern::kernel_boot

namespace lantern::root {

// An application processor's entry into the layers above the kernel base, defined by the
// composition root (root/ap_entry.cpp). Called once per AP after its tables and local APIC are
// set up; it must call smp::mark_this_cpu_online() once the core counts for the READY line, and
// never returns.
[[noreturn]] void ap_entry(PerCpu& cpu);

}  // namespace lantern::root
