/* Application-processor start-up code. smp.cpp copies it to AP_TRAMPOLINE_PHYS (a page
 * below 1 MiB) and sends INIT-SIPI-SIPI with vector AP_TRAMPOLINE_PHYS >> 12 (SDM Vol. 3
 * 9.4.4.1). The AP starts in real mode at CS:IP = vector:0000 and walks to long mode
 * (SDM Vol. 3 10.8.5) on the boot page tables, then jumps to the higher half, where it
 * switches to the kernel's page tables and its own stack. */
#include "kernel/arch/x86_64/boot_layout.h"

#define T(label) ((label) - ap_trampoline_start + AP_TRAMPOLINE_PHYS)
#define DATA(offset) (AP_TRAMPOLINE_PHYS + AP_TRAMPOLINE_DATA_OFFSET + (offset))

.section .rodata.ap_trampoline, "a"
.balign 4096
.global ap_trampoline_start
ap_trampoline_start:
.code16
  cli
  cld
  xorw %ax, %ax
  movw %ax, %ds
  movw %ax, %es
  movw %ax, %ss
  lgdtl T(tramp_gdt_pointer)
  movl %cr0, %eax
  orl $1, %eax                         /* CR0.PE */
  movl %eax, %cr0
  ljmpl $0x08, $T(tramp_protected)

.code32
tramp_protected:
  movw $0x10, %ax
  movw %ax, %ds
  movw %ax, %es
  movw %ax, %ss
  movl %cr4, %eax
  orl $(1 << 5), %eax                  /* CR4.PAE */
  movl %eax, %cr4
  movl DATA(AP_DATA_BOOT_CR3), %eax
  movl %eax, %cr3
  movl $0xc0000080, %ecx               /* IA32_EFER */
  rdmsr
  orl DATA(AP_DATA_EFER), %eax         /* LME (bit 8), NXE (bit 11) when available */
  wrmsr
  movl %cr0, %eax
  orl $0x80010001, %eax                /* PG | WP | PE */
  movl %eax, %cr0
  ljmpl $0x18, $T(tramp_long)

.code64
tramp_long:
  movw $0x10, %ax
  movw %ax, %ds
  movw %ax, %es
  movw %ax, %ss
  movq DATA(AP_DATA_ENTRY), %rax
  jmpq *%rax

.balign 16
tramp_gdt:
  .quad 0
  .quad 0x00cf9a000000ffff             /* 0x08: 32-bit code */
  .quad 0x00cf92000000ffff             /* 0x10: data */
  .quad 0x00af9a000000ffff             /* 0x18: 64-bit code */
tramp_gdt_end:
tramp_gdt_pointer:
  .short tramp_gdt_end - tramp_gdt - 1
  .long T(tramp_gdt)
.global ap_trampoline_end
ap_trampoline_end:

/* Higher half, still on the boot page tables: switch to the kernel's tables, take this
 * CPU's stack and enter C++. */
.text
.global ap_long_mode_entry
ap_long_mode_entry:
  movabsq $(DIRECT_MAP_BASE + AP_TRAMPOLINE_PHYS + AP_TRAMPOLINE_DATA_OFFSET), %rbx
  movq AP_DATA_FINAL_CR3(%rbx), %rax
  movq %rax, %cr3
  movq AP_DATA_STACK_TOP(%rbx), %rsp
  movq AP_DATA_PERCPU(%rbx), %rdi
  xorl %ebp, %ebp
  call enable_sse_on_this_cpu
  call ap_main
1:
  cli
  hlt
  jmp 1b

.section .note.GNU-stack,"",@progbits
