/* Constants shared by assembly and C++: the virtual memory layout (docs/architecture.md). */
#pragma once

#define KERNEL_VMA 0xffffffff80000000
#define DIRECT_MAP_BASE 0xffff800000000000
#define DIRECT_MAP_PML4_INDEX 256
#define MMIO_MAP_BASE 0xffffc00000000000
#define BOOT_STACK_SIZE 65536
#define BOOT_GDT_CODE64 0x08
#define BOOT_GDT_DATA 0x10
#define AP_TRAMPOLINE_PHYS 0x8000

/* The AP trampoline page (kernel/arch/x86_64/ap_trampoline.S): code from offset 0, a
 * parameter block at AP_TRAMPOLINE_DATA_OFFSET filled by smp.cpp. */
#define AP_TRAMPOLINE_DATA_OFFSET 0xf00
#define AP_DATA_BOOT_CR3 0x00  /* u64: page tables with the low identity map (< 4 GiB) */
#define AP_DATA_FINAL_CR3 0x08 /* u64: the kernel's page tables */
#define AP_DATA_STACK_TOP 0x10 /* u64 */
#define AP_DATA_PERCPU 0x18    /* u64: PerCpu* */
#define AP_DATA_ENTRY 0x20     /* u64: higher-half entry (ap_long_mode_entry) */
#define AP_DATA_EFER 0x28      /* u64: EFER bits to set (LME, NXE) */
