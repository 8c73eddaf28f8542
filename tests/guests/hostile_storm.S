/* hostile_storm: storms I/O ports and MSRs across every index range, in passes, for ever
 * (32-bit protected mode, IF = 0; a #GP from RDMSR/WRMSR is skipped, hostile.inc).
 * One pass:
 *   1. IN of every port 0-0xffff at widths 1, 2 and 4;
 *   2. OUT of every port but the exit port 0xf4 at widths 1, 2 and 4 (value 0x5a5a5a5a: the
 *      UART prints 'Z');
 *   3. RDMSR then WRMSR of the value read (0 after a #GP) for MSRs 0-0x1fff, 0x40000000-0x40001fff,
 *      0xc0000000-0xc0001fff, 0xc0010000-0xc0011fff and every 0x10000th index of the 32-bit space;
 *   4. the same for the x2APIC range 0x800-0x8ff after turning x2APIC mode on;
 *   5. WRMSR of all ones to 0-0x1fff, the x2APIC range and 0xc0000000-0xc0001fff;
 * then the line `hostile_storm: pass <n> done, faults <n>`. */
#include "guest_header.inc"
GUEST_HEADER("hostile_storm")
#include "hostile.inc"

#define STACK_TOP 0x4f000
#define EXIT_PORT_SKIP 0xf4
#define OUT_VALUE 0x5a5a5a5a
#define MSR_APIC_BASE 0x1b
#define RDMSR_WRMSR_LEN 2           /* both are 0F 32 / 0F 30: a #GP skips 2 bytes */

pm32_main:
  cld
  mov $STACK_TOP, %esp
  movl $RDMSR_WRMSR_LEN, skip_len
  mov $hello, %esi
  call puts32
pass:
  /* 1. IN, every port, every width. */
  xor %edx, %edx
1:
  in %dx, %al
  in %dx, %ax
  in %dx, %eax
  inc %dx
  jnz 1b
  /* 2. OUT, every port but the exit port. */
  xor %edx, %edx
  mov $OUT_VALUE, %eax
2:
  cmp $EXIT_PORT_SKIP, %dx
  je 3f
  out %al, %dx
  out %ax, %dx
  out %eax, %dx
3:
  inc %dx
  jnz 2b
  /* 3. MSR ranges, value read back. */
  mov $0, %esi
  mov $0x2000, %edi
  mov $1, %ebp
  call msr_readback
  mov $0x40000000, %esi
  mov $0x40002000, %edi
  call msr_readback
  mov $0xc0000000, %esi
  mov $0xc0002000, %edi
  call msr_readback
  mov $0xc0010000, %esi
  mov $0xc0012000, %edi
  call msr_readback
  mov $0, %esi                     /* every 0x10000th index: 0 .. 0xffff0000 */
  mov $0, %edi                     /* (end 0 = wrapped past 0xffffffff) */
  mov $0x10000, %ebp
  call msr_readback
  /* 4. x2APIC mode (IA32_APIC_BASE EXTD with EN, SDM Vol. 3A 11.12.5), its MSRs. */
  mov $MSR_APIC_BASE, %ecx
  rdmsr
  or $0xc00, %eax
  wrmsr
  mov $0x800, %esi
  mov $0x900, %edi
  mov $1, %ebp
  call msr_readback
  /* 5. All ones. */
  mov $0, %esi
  mov $0x2000, %edi
  call msr_ones
  mov $0x800, %esi
  mov $0x900, %edi
  call msr_ones
  mov $0xc0000000, %esi
  mov $0xc0002000, %edi
  call msr_ones
  incl passes
  mov $pass_text, %esi
  mov passes, %eax
  call puts32
  call puthex32
  mov $faults_text, %esi
  call puts32
  mov faults, %eax
  call puthex32
  mov $'\n', %al
  call putc32
  jmp pass

/* For ecx = esi, esi + ebp, ... while ecx != edi: RDMSR, WRMSR of what was read (0 after #GP). */
msr_readback:
  mov %esi, %ecx
4:
  xor %eax, %eax
  xor %edx, %edx
  rdmsr
  wrmsr
  add %ebp, %ecx
  cmp %edi, %ecx
  jne 4b
  ret

/* For ecx = esi .. edi - 1: WRMSR of all ones. */
msr_ones:
  mov %esi, %ecx
5:
  mov $0xffffffff, %eax
  mov %eax, %edx
  wrmsr
  inc %ecx
  cmp %edi, %ecx
  jne 5b
  ret

hello: .asciz "hostile_storm: I/O ports and MSRs, every range\n"
pass_text: .asciz "\nhostile_storm: pass "
faults_text: .asciz " done, faults "
  .balign 4
passes: .long 0
