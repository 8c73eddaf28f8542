/* Multiboot v1 entry and AP trampoline for the multiboot test guests (mbguest, mbecho).
 * Multiboot Specification 0.6.96: 3.1.1 (header in the first 8192 bytes, 4-byte aligned),
 * 3.1.3 (magic 0x1BADB002, flags, checksum), 3.2 (entry: 32-bit protected mode, paging off,
 * EAX = 0x2BADB002, EBX = information address, no usable stack). */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* bit 0: page-aligned modules, bit 1: memory information */

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .text
    .code32
    .globl _start
_start:
    cli
    movl $stack_top, %esp
    pushl %ebx                  /* information address */
    pushl %eax                  /* bootloader magic */
    call guest_main
1:  cli
    hlt
    jmp 1b

/* Where an AP lands once the trampoline is in protected mode: count itself, then halt. */
    .globl ap_main
ap_main:
    lock incl ap_started
1:  cli
    hlt
    jmp 1b

/* #GP handler for probe_msr() in mbguest.c: skips the faulting 2-byte RDMSR (0F 32) and notes
 * the fault. A #GP pushes an error code (SDM Vol. 3A 6.15, "Interrupt 13"). */
    .globl gp_handler
gp_handler:
    addl $4, %esp               /* the error code */
    addl $2, (%esp)             /* the saved EIP: past RDMSR */
    movl $1, gp_seen
    iret

/* The AP trampoline: linked to run at 0x8000 (SIPI vector 0x08: CS = 0x0800, IP = 0, SDM
 * Vol. 3A 9.4.4.1), stored inside the image; guest_main copies it down before the SIPIs. */
    .section .trampoline, "ax"
    .code16
    .globl trampoline_start
trampoline_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl ap_gdt_descriptor
    movl %cr0, %eax
    orl $1, %eax                /* CR0.PE (SDM Vol. 3A 2.5) */
    movl %eax, %cr0
    ljmpl $0x08, $ap_protected
    .code32
ap_protected:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl $ap_main, %eax
    jmp *%eax
    .align 8
ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* flat 4 GiB 32-bit code (SDM Vol. 3A 3.4.5) */
    .quad 0x00cf92000000ffff    /* flat 4 GiB data */
ap_gdt_descriptor:
    .word 23
    .long ap_gdt
    .globl trampoline_end
trampoline_end:

    .bss
    .align 16
    .globl ap_started
ap_started:
    .long 0
    .globl gp_seen
gp_seen:
    .long 0
    .align 16
    .space 16384
stack_top:
    .section .note.GNU-stack, "", @progbits
