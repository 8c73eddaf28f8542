// The Intel MultiProcessor Specification table a guest without ACPI (Linux with `acpi=off`) finds
// its CPUs, its I/O APIC and its ISA interrupt routing in. Portable (host-tested).
//
// Reference: Intel MultiProcessor Specification, version 1.4 (May 1997), cited as "MP x.y":
//  - 4.1, Figure 4-2: the 16-byte MP floating pointer structure: "_MP_", the configuration
//    table's physical address, length 1 (in 16-byte paragraphs), spec revision 4, checksum (all
//    16 bytes sum to 0), feature byte 1 = 0 (a configuration table is present), feature byte 2
//    bit 7 (IMCRP) = 0 (virtual wire mode: no IMCR at ports 0x22/0x23), feature bytes 3-5 0.
//    It must lie in the first KiB of the EBDA, the last KiB of base memory or the BIOS ROM
//    0xF0000-0xFFFFF, on a 16-byte boundary; Linux (arch/x86/kernel/mpparse.c,
//    smp_scan_config) scans 0x0-0x3FF, 639K-640K, 0xF0000-0xFFFFF and the EBDA for it and
//    accepts it when the signature, length 1, the checksum and revision 1 or 4 match.
//  - 4.2: the 44-byte configuration table header: "PCMP", base table length, spec
//    revision 4, checksum (the base table sums to 0), OEM ID (8), product ID (12), OEM table
//    pointer/size (0), entry count, local APIC address, extended table length/checksum (0).
//    Linux also refuses a table whose local APIC address is 0.
//  - 4.3: the base table entries, in the order the spec recommends:
//      0 processor (20 bytes, 4.3.1), 1 bus (8 bytes, 4.3.2), 2 I/O APIC (8 bytes,
//      4.3.3), 3 I/O interrupt assignment (8 bytes, 4.3.4), 4 local interrupt assignment
//      (8 bytes, 4.3.5).
//
// What write() lays down (the floating pointer at `address`, the configuration table right after):
//  - one processor entry per CPU: local APIC ID i, version 0x14 (an integrated xAPIC, what QEMU
//    reports), enabled, the bootstrap-processor flag on CPU 0, signature family 6 model 0
//    stepping 0, features FPU and APIC (CPUID.1:EDX bits 0 and 9);
//  - bus 0, "ISA   ";
//  - the I/O APIC: config.ioapic_id, version 0x11 (82093AA), enabled, config.ioapic_address;
//  - ISA IRQs 0-15 except 2 (the cascade) to the I/O APIC's pins: IRQ 0 (the timer) to pin 2,
//    every other IRQ n to pin n; type INT, polarity and trigger "conforms to bus" (for ISA: edge,
//    active high);
//  - ExtINT to LINT0 and NMI to LINT1 of every local APIC (destination 0xFF).
#pragma once

#include <cstdint>

#include "guest/loader/guest_memory.h"
#include "kernel/lib/result.h"

namespace lantern::guest::mp_table {

// Where the floating pointer may go: the BIOS ROM area (MP 4, "Find the MP Floating Pointer").
inline constexpr uint64_t kBiosAreaStart = 0xf0000;
inline constexpr uint64_t kBiosAreaEnd = 0x100000;  // exclusive
inline constexpr uint64_t kDefaultAddress = kBiosAreaStart;

inline constexpr uint32_t kFloatingPointerBytes = 16;  // MP 4.1
inline constexpr uint32_t kHeaderBytes = 44;           // MP 4.2
inline constexpr uint32_t kProcessorEntryBytes = 20;   // MP 4.3.1
inline constexpr uint32_t kShortEntryBytes = 8;        // MP 4.3.2-4.3.5: bus, I/O APIC, interrupts
inline constexpr uint16_t kMaxCpus = 254;              // local APIC IDs 0-253; 0xFF means "all local APICs"

// Entry types (MP 4.3).
inline constexpr uint8_t kEntryProcessor = 0, kEntryBus = 1, kEntryIoApic = 2, kEntryIoInterrupt = 3,
                         kEntryLocalInterrupt = 4;
// Interrupt types of entries 3 and 4 (MP 4.3.4, Table 4-11).
inline constexpr uint8_t kInterruptInt = 0, kInterruptNmi = 1, kInterruptSmi = 2, kInterruptExtInt = 3;

inline constexpr uint8_t kLocalApicVersion = 0x14;  // an integrated APIC (MP 4.3.1: 1xh)
inline constexpr uint8_t kIoApicVersion = 0x11;     // 82093AA IOAPICVER bits 7:0
inline constexpr uint8_t kIsaIrqCount = 16;
inline constexpr uint8_t kTimerIoApicPin = 2;  // ISA IRQ 0 arrives on I/O APIC pin 2
inline constexpr uint8_t kCascadeIrq = 2;      // ISA IRQ 2 is the 8259 cascade: no entry

struct MpConfig {
  uint16_t cpu_count = 1;
  uint8_t ioapic_id = 0;
  uint64_t ioapic_address = 0xfec00000;  // 82093AA default base (DS 3.1, Table 1)
  uint64_t lapic_address = 0xfee00000;   // SDM Vol. 3A 11.4.1, default local APIC base
};

// Where write() put things, for the caller's logs.
struct MpTableLayout {
  uint64_t floating_pointer_address = 0;
  uint32_t floating_pointer_bytes = kFloatingPointerBytes;
  uint64_t config_table_address = 0;
  uint32_t config_table_bytes = 0;  // header and entries (the base table length)
  uint16_t entry_count = 0;
  uint64_t end() const { return config_table_address + config_table_bytes; }
};

// Bytes the configuration table takes for `cpu_count` CPUs (header and entries).
uint32_t config_table_bytes(uint16_t cpu_count);

// Writes the floating pointer at `address` and the configuration table right after it.
// kInvalidArgument for cpu_count 0 or above kMaxCpus, an address not on a 16-byte boundary or
// with the tables not wholly inside 0xF0000-0xFFFFF, an APIC address above 4 GiB (the table's
// fields are 32-bit) or a zero local APIC address; the GuestMemory's error when guest RAM does
// not reach the BIOS area.
Result<MpTableLayout> write(GuestMemory& memory, const MpConfig& config, uint64_t address = kDefaultAddress);

}  // namespace lantern::guest::mp_table
