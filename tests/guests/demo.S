/* The demo guest: one per core by default. Prints a banner, then loops forever:
 * heartbeat hypercall, CPUID, a UART status read, HLT (woken by the host's timer), and every
 * 1024 rounds a line with the round number. */
#include "guest_header.inc"
GUEST_HEADER("demo")

main:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %ss
  mov $0x1000, %sp
  cld
  mov $banner, %si
  call puts
  mov $1, %eax              /* CPUID.1:EBX[31:24] = our vCPU id */
  xor %ecx, %ecx
  cpuid
  mov %ebx, %eax
  shr $24, %eax
  call puthex32
  mov $hv_text, %si
  call puts
  mov $0x40000000, %eax     /* hypervisor leaf: signature in ebx, ecx, edx */
  cpuid
  mov %ebx, sig
  mov %ecx, sig + 4
  mov %edx, sig + 8
  mov $sig, %si
  call puts
  mov $'\n', %al
  call putc

  xor %ebp, %ebp
round:
  mov $HC_HEARTBEAT, %eax
  mov %ebp, %edi
  vmcall
  xor %eax, %eax
  cpuid
  mov $(UART + 5), %dx      /* line status */
  in %dx, %al
  hlt
  inc %ebp
  test $0x3ff, %ebp
  jnz round
  mov $tick_text, %si
  call puts
  mov %ebp, %eax
  call puthex32
  mov $'\n', %al
  call putc
  jmp round

#include "common.inc"

banner: .asciz "Lantern demo guest (real mode) on vCPU "
hv_text: .asciz ", hypervisor "
tick_text: .asciz "demo: rounds "
sig: .fill 13, 1, 0
