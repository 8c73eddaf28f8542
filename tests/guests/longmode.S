/* A 64-bit long-mode guest (vmx/hw/vmx_selftests.cpp, vmx_long_mode). It starts in real mode,
 * switches to 32-bit protected mode (pm32.inc), builds its own 4-level page tables in guest
 * memory, enables PAE, sets IA32_EFER.LME (WRMSR: the vCPU emulates EFER), enables paging (a MOV
 * to CR0 that exits: the vCPU activates IA-32e mode), far-jumps to a 64-bit code segment and
 * then makes exactly the exits the host test expects, in this order (svm_long_mode runs it too). */
#include "guest_header.inc"
GUEST_HEADER("longmode")
#include "pm32.inc"

/* Paging structures (SDM Vol. 3A 4.5, IA-32e paging): 4 KiB each, in guest RAM. */
#define PML4 0x70000
#define PDPT 0x71000
#define PD 0x72000
#define PT 0x73000
#define PD_ALIAS 0x74000
#define PTE_P_RW 0x3               /* present, writable (Table 4-14..4-19) */
#define PDE_2M 0x83                /* present, writable, PS: a 2 MiB page (Table 4-17) */
#define ALIAS_1G 0x40000000        /* PDPT[1] -> PD_ALIAS -> 2 MiB page at 0 */
#define HIGH_ALIAS 0xffffff8000000000 /* PML4[511] -> PDPT: the top 512 GiB alias the bottom */
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100             /* bit 8 (SDM Vol. 3A 2.2.1) */
#define CR4_PAE 0x20               /* bit 5 (SDM Vol. 3A 2.5) */
#define CR0_PG 0x80000000          /* bit 31 */
#define CODE64 0x18

  .code32
pm32_main:
  cld
  /* Zero the five tables. */
  mov $PML4, %edi
  xor %eax, %eax
  mov $(5 * 4096 / 4), %ecx
  rep stosl
  movl $(PDPT + PTE_P_RW), PML4
  movl $(PDPT + PTE_P_RW), PML4 + 511 * 8
  movl $(PD + PTE_P_RW), PDPT
  movl $(PD_ALIAS + PTE_P_RW), PDPT + 8
  movl $(PT + PTE_P_RW), PD
  movl $PDE_2M, PD_ALIAS
  /* PT: identity map of the first 2 MiB with 4 KiB pages. */
  mov $PT, %edi
  mov $PTE_P_RW, %eax
  mov $512, %ecx
1:
  mov %eax, (%edi)
  add $4096, %eax
  add $8, %edi
  loop 1b

  mov %cr4, %eax
  or $CR4_PAE, %eax
  mov %eax, %cr4
  mov $PML4, %eax
  mov %eax, %cr3
  mov $MSR_EFER, %ecx
  rdmsr
  or $EFER_LME, %eax
  wrmsr
  lgdtl gdt64_desc
  mov %cr0, %eax
  or $CR0_PG, %eax
  mov %eax, %cr0              /* exits: IA-32e mode active, compatibility mode */
  ljmpl $CODE64, $long64

  .code64
long64:
  mov $0x1000, %rsp
  /* 1. VMCALL with six 64-bit arguments; the host answers 0xdeadbeefcafebabe in rax. */
  mov $0x60, %eax
  movabs $0x0123456789abcdef, %rdi
  movabs $0xfedcba9876543210, %rsi
  movabs $0x1122334455667788, %rdx
  movabs $0x8877665544332211, %rcx
  movabs $0xa5a5a5a55a5a5a5a, %r8
  movabs $0x0f0f0f0ff0f0f0f0, %r9
  HYPERCALL
  mov %rax, %rdi
  mov $0x61, %eax
  HYPERCALL

  /* 2. The mode: EFER (RDMSR, emulated), CR0, CR4, and a value written through the identity
   *    map read back through the 1 GiB alias and the high alias. */
  mov $MSR_EFER, %ecx
  rdmsr
  shl $32, %rdx
  or %rax, %rdx
  mov %rdx, %rdi
  mov %cr0, %rsi
  mov %cr4, %rdx
  mov $magic, %ebx
  movabs $0x1234abcd5678ef00, %rax
  mov %rax, (%rbx)
  mov $ALIAS_1G, %ecx
  mov (%rcx, %rbx), %rcx
  movabs $HIGH_ALIAS, %r8
  mov (%r8, %rbx), %r8
  mov $0x62, %eax
  HYPERCALL

  /* 3. Port I/O: OUT of each width (rax's upper bits are not data), IN of byte and dword. */
  movabs $0x777777777777775a, %rax
  out %al, $0x80
  mov $0x8000, %edx
  movabs $0x777777777777beef, %rax
  out %ax, %dx
  mov $0xfffc, %edx
  movabs $0x77777777deadbeef, %rax
  out %eax, %dx
  mov $-1, %rax
  mov $0x60, %edx
  in %dx, %al                 /* host: 0x7e, the other 56 bits stay */
  mov %rax, %rdi
  mov $-1, %rax
  mov $0x8004, %edx
  in %dx, %eax                /* host: 0xcafef00d, zero-extended into rax */
  mov %rax, %rsi
  mov $0x63, %eax
  HYPERCALL

  /* 4. RDMSR (host: 0x1122334455667788) clears the upper halves of rax and rdx; WRMSR takes
   *    edx:eax only. */
  mov $-1, %rax
  mov $-1, %rdx
  mov $0x1234, %ecx
  rdmsr
  mov %rax, %rdi
  mov %rdx, %rsi
  mov $0x64, %eax
  HYPERCALL
  mov $0x4321, %ecx
  movabs $0xffffffffaabbccdd, %rax
  movabs $0xffffffff01020304, %rdx
  wrmsr

  /* 5. CPUID: long mode visible, results zero-extended into 64-bit registers. */
  mov $-1, %rbx
  mov $0x80000001, %eax
  cpuid
  mov %rdx, %rdi
  mov %rbx, %rsi
  mov $1, %eax
  cpuid
  mov %rcx, %rdx
  mov $0x65, %eax
  HYPERCALL

  /* 6. Passthrough: the host clears the intercepts of port 0x80 and of RDMSR 0x10 (TSC), so
   *    neither exits; then it intercepts port 0x80 again. */
  mov $0x66, %eax
  HYPERCALL
  mov $0x11, %al
  out %al, $0x80
  mov $0x10, %ecx
  rdmsr
  shl $32, %rdx
  or %rax, %rdx
  mov %rdx, %rdi
  mov $0x67, %eax
  HYPERCALL
  mov $0x22, %al
  out %al, $0x80

  /* 6b. CR8 is the vlapic's TPR[7:4] (SDM Vol. 3A 11.8.6.1), never the core's: write 9, read it
   *     back, report it, then lower it to 0 again. */
  mov $9, %eax
  mov %rax, %cr8
  mov %cr8, %rdi
  mov $0x68, %eax
  HYPERCALL
  xor %eax, %eax
  mov %rax, %cr8

  /* 7. The exit port. */
  mov $0x64, %al
  out %al, $EXIT_PORT
  hlt
  jmp .

  .balign 8
gdt64:
  .quad 0
  .quad 0x00cf9a000000ffff    /* 0x08: 32-bit code, as pm32.inc */
  .quad 0x00cf92000000ffff    /* 0x10: data */
  .quad 0x00af9a000000ffff    /* 0x18: 64-bit code: L = 1, D = 0 (SDM Vol. 3A 3.4.5, 5.2.1) */
gdt64_desc:
  .word 4 * 8 - 1
  .long gdt64
  .balign 8
magic:
  .quad 0
