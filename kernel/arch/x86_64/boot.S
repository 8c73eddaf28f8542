/* Lantern entry: Multiboot2 header, 32-bit protected-mode entry, switch to long mode,
 * then a jump to the higher-half kernel.
 *
 * Machine state at entry (Multiboot2 spec 3.3 "I386 machine state"): EAX = 0x36d76289,
 * EBX = physical address of the boot information, 32-bit protected mode, paging off,
 * interrupts off, ESP undefined. */
#include "kernel/arch/x86_64/boot_layout.h"

.set MB2_HEADER_MAGIC, 0xe85250d6      /* Multiboot2 spec 3.1.1 */
.set MB2_ARCH_I386, 0                  /* 32-bit (protected) mode of i386 */
.set MB2_BOOTLOADER_MAGIC, 0x36d76289  /* Multiboot2 spec 3.3: EAX at entry */

.set CR0_PE, 1 << 0     /* SDM Vol. 3 2.5: protection enable */
.set CR0_WP, 1 << 16    /* write protect in ring 0 */
.set CR0_PG, 1 << 31    /* paging */
.set CR4_PAE, 1 << 5    /* SDM Vol. 3 2.5: physical address extension (required for IA-32e) */
.set MSR_EFER, 0xc0000080  /* SDM Vol. 4 Table 2-2: IA32_EFER */
.set EFER_LME, 1 << 8      /* IA-32e mode enable */
.set EFER_NXE, 1 << 11     /* execute-disable enable */

.set PTE_PRESENT, 1 << 0   /* SDM Vol. 3 Table 4-15..4-19 */
.set PTE_WRITABLE, 1 << 1
.set PTE_HUGE, 1 << 7      /* PS: the PDE maps a 2 MiB page */

.set COM1, 0x3f8

/* ---- Multiboot2 header --------------------------------------------------------------- */
.section .multiboot2, "a"
.balign 8
mb2_header_start:
  .long MB2_HEADER_MAGIC
  .long MB2_ARCH_I386
  .long mb2_header_end - mb2_header_start
  .long -(MB2_HEADER_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header_start))
  /* End tag (Multiboot2 spec 3.1.3): type 0, flags 0, size 8. */
  .balign 8
  .short 0
  .short 0
  .long 8
mb2_header_end:

/* ---- 32-bit entry -------------------------------------------------------------------- */
.section .boot.text, "ax"
.code32
.global _start
_start:
  cli
  cld
  movl $(boot_stack_top - KERNEL_VMA), %esp
  movl %eax, (boot_multiboot_magic - KERNEL_VMA)
  movl %ebx, (boot_multiboot_info - KERNEL_VMA)

  cmpl $MB2_BOOTLOADER_MAGIC, %eax
  jne .Lno_multiboot

  /* CPUID.80000001H:EDX[29] = long mode available (SDM Vol. 2A CPUID). */
  movl $0x80000000, %eax
  cpuid
  cmpl $0x80000001, %eax
  jb .Lno_long_mode
  movl $0x80000001, %eax
  cpuid
  btl $29, %edx
  jnc .Lno_long_mode
  movl %edx, %ebp            /* keep EDX[20] (NX) for EFER.NXE below */

  /* Boot page tables: boot_pd maps the first 4 GiB with 2 MiB pages. It is reachable
   *   at 0 (identity, for this code and the AP trampoline),
   *   at DIRECT_MAP_BASE (the direct map, before the kernel builds its own), and
   *   at KERNEL_VMA (the kernel image; first GiB only). */
  movl $(boot_pd - KERNEL_VMA), %edi
  xorl %ecx, %ecx
1:
  movl %ecx, %eax
  shll $21, %eax                           /* low 32 bits of i * 2 MiB */
  orl $(PTE_PRESENT | PTE_WRITABLE | PTE_HUGE), %eax
  movl %ecx, %edx
  shrl $11, %edx                           /* high 32 bits of i * 2 MiB */
  movl %eax, (%edi, %ecx, 8)
  movl %edx, 4(%edi, %ecx, 8)
  incl %ecx
  cmpl $2048, %ecx
  jne 1b

  /* boot_pdpt_low[0..3] -> the four boot_pd pages. */
  movl $(boot_pdpt_low - KERNEL_VMA), %edi
  movl $(boot_pd - KERNEL_VMA + (PTE_PRESENT | PTE_WRITABLE)), %eax
  xorl %ecx, %ecx
2:
  movl %eax, (%edi, %ecx, 8)
  addl $4096, %eax
  incl %ecx
  cmpl $4, %ecx
  jne 2b

  /* boot_pdpt_high[510] -> first boot_pd page: KERNEL_VMA maps physical 0..1 GiB. */
  movl $(boot_pd - KERNEL_VMA + (PTE_PRESENT | PTE_WRITABLE)), %eax
  movl %eax, (boot_pdpt_high - KERNEL_VMA + 510 * 8)

  movl $(boot_pml4 - KERNEL_VMA), %edi
  movl $(boot_pdpt_low - KERNEL_VMA + (PTE_PRESENT | PTE_WRITABLE)), %eax
  movl %eax, (%edi)                                  /* PML4[0]: identity */
  movl %eax, (DIRECT_MAP_PML4_INDEX * 8)(%edi)       /* PML4[256]: direct map */
  movl $(boot_pdpt_high - KERNEL_VMA + (PTE_PRESENT | PTE_WRITABLE)), %eax
  movl %eax, (511 * 8)(%edi)                         /* PML4[511]: kernel */

  /* Enter IA-32e mode (SDM Vol. 3 10.8.5 "Initializing IA-32e Mode"). */
  movl %cr4, %eax
  orl $CR4_PAE, %eax
  movl %eax, %cr4
  movl $(boot_pml4 - KERNEL_VMA), %eax
  movl %eax, %cr3
  movl $MSR_EFER, %ecx
  rdmsr
  orl $EFER_LME, %eax
  btl $20, %ebp              /* CPUID.80000001H:EDX[20]: execute-disable bit available */
  jnc 3f
  orl $EFER_NXE, %eax
3:
  wrmsr
  movl %cr0, %eax
  orl $(CR0_PG | CR0_WP | CR0_PE), %eax
  movl %eax, %cr0

  lgdt boot_gdt_pointer
  ljmp $BOOT_GDT_CODE64, $long_mode_entry

.Lno_multiboot:
  movl $msg_no_multiboot, %esi
  jmp .Lfatal32
.Lno_long_mode:
  movl $msg_no_long_mode, %esi
.Lfatal32:
  /* Print the message on COM1 at the firmware's settings, then stop. */
  movb (%esi), %al
  testb %al, %al
  jz .Lhalt32
  movw $(COM1 + 5), %dx       /* line status register */
4:
  inb %dx, %al
  testb $0x20, %al            /* THR empty (16550 LSR bit 5) */
  jz 4b
  movb (%esi), %al
  movw $COM1, %dx
  outb %al, %dx
  incl %esi
  jmp .Lfatal32
.Lhalt32:
  hlt
  jmp .Lhalt32

.code64
long_mode_entry:
  movw $BOOT_GDT_DATA, %ax
  movw %ax, %ds
  movw %ax, %es
  movw %ax, %ss
  xorw %ax, %ax
  movw %ax, %fs
  movw %ax, %gs
  movabsq $higher_half_entry, %rax
  jmpq *%rax

.section .boot.data, "aw"
.balign 16
boot_gdt:
  .quad 0
  .quad 0x00af9a000000ffff    /* 0x08: 64-bit ring-0 code (SDM Vol. 3 3.4.5, L=1) */
  .quad 0x00cf92000000ffff    /* 0x10: ring-0 data */
boot_gdt_end:
boot_gdt_pointer:
  .short boot_gdt_end - boot_gdt - 1
  .long boot_gdt
msg_no_multiboot:
  .asciz "LANTERN PANIC not started by a Multiboot2 loader\r\n"
msg_no_long_mode:
  .asciz "LANTERN PANIC this CPU has no 64-bit long mode\r\n"

/* ---- 64-bit, higher half ------------------------------------------------------------- */
.text
higher_half_entry:
  movabsq $boot_stack_top, %rsp
  xorl %ebp, %ebp
  call enable_sse_on_this_cpu
  call kernel_main
5:
  cli
  hlt
  jmp 5b

/* SSE is needed by compiled C++ (nlohmann/json, libstdc++): CR0.EM=0, CR0.MP=1,
 * CR4.OSFXSR=1, CR4.OSXMMEXCPT=1 (SDM Vol. 3 13.1.3). Clobbers rax only. */
.global enable_sse_on_this_cpu
enable_sse_on_this_cpu:
  movq %cr0, %rax
  andq $~(1 << 2), %rax       /* EM */
  orq $(1 << 1), %rax         /* MP */
  movq %rax, %cr0
  movq %cr4, %rax
  orq $((1 << 9) | (1 << 10)), %rax
  movq %rax, %cr4
  fninit
  ret

.bss
.balign 4096
.global boot_pml4
boot_pml4: .skip 4096
.global boot_pdpt_low
boot_pdpt_low: .skip 4096
boot_pdpt_high: .skip 4096
boot_pd: .skip 4096 * 4
.balign 16
.global boot_stack_bottom
boot_stack_bottom: .skip BOOT_STACK_SIZE
.global boot_stack_top
boot_stack_top:

.data
.balign 8
.global boot_multiboot_magic
boot_multiboot_magic: .long 0
.global boot_multiboot_info
boot_multiboot_info: .long 0
.section .note.GNU-stack,"",@progbits
