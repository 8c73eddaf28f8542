/* The guest side of the in-kernel VMX self-tests (vmx/hw/vmx_selftests.cpp). Each step makes
 * exactly the exits the host test expects, in this order; values read back are reported by
 * hypercall so the host can check the architectural semantics. */
#include "guest_header.inc"
GUEST_HEADER("selftest")

main:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %ss
  mov $0x1000, %sp

  /* 1. VMCALL with arguments (r8/r9 are out of reach in real mode: the host checks that they
   *    come back unchanged). The host answers 0xc0ffee in rax. */
  mov $0x10, %eax
  mov $0x11, %edi
  mov $0x22, %esi
  mov $0x33, %edx
  mov $0x44, %ecx
  HYPERCALL
  /* 2. Report the result. */
  mov %eax, %edi
  mov $0x11, %eax
  HYPERCALL

  /* 3. OUT of each width. */
  mov $0x5a, %al
  out %al, $0x80
  mov $0x84, %dx
  mov $0xbeef, %ax
  out %ax, %dx
  mov $0x88, %dx
  mov $0xdeadbeef, %eax
  out %eax, %dx

  /* 4. IN of each width: the host completes 0x7e, 0xabcd, 0xcafef00d. */
  mov $0x11223344, %eax
  in $0x60, %al
  mov %eax, %edi
  mov $0x11223344, %eax
  mov $0x64, %dx
  in %dx, %ax
  mov %eax, %esi
  mov $0x68, %dx
  in %dx, %eax
  mov %eax, %edx
  mov $0x12, %eax
  HYPERCALL

  /* 5. CPUID leaf 1 and the hypervisor leaf. */
  mov $1, %eax
  xor %ecx, %ecx
  cpuid
  mov %ecx, %edi
  mov %ebx, %esi
  mov $0x13, %eax
  HYPERCALL
  mov $0x40000000, %eax
  cpuid
  mov %ebx, %edi
  mov %ecx, %esi
  mov %eax, %ecx
  mov $0x14, %eax
  HYPERCALL

  /* 6. RDMSR (host completes 0x1122334455667788) and WRMSR. */
  mov $0x1234, %ecx
  rdmsr
  mov %eax, %edi
  mov %edx, %esi
  mov $0x15, %eax
  HYPERCALL
  mov $0x4321, %ecx
  mov $0xaabbccdd, %eax
  mov $0x01020304, %edx
  wrmsr

  /* 7. IP wraps at 64 KiB in 16-bit code (SDM Vol. 1 3.5, 3.6): a CPUID (handled inside the
   *    host) at 0x1000:0xfffe completes at 0x1000:0x0000, where a far jump comes back. A host
   *    that leaves IP = 0x10000 makes the next fetch exceed CS's 64 KiB limit: #GP, and this
   *    guest never reaches step 8. */
  mov $0x1000, %ax
  mov %ax, %ds
  movw $0xa20f, 0xfffe             /* CPUID: 0F A2 */
  movb $0xea, 0x0000               /* JMP ptr16:16 (SDM Vol. 2A JMP: EA cd) */
  movw $ip_wrapped, 0x0001
  movw $0, 0x0003
  xor %ax, %ax
  mov %ax, %ds
  xor %eax, %eax
  ljmp $0x1000, $0xfffe
ip_wrapped:

  /* 8. HLT, then the exit port. */
  hlt
  mov $0x42, %al
  out %al, $EXIT_PORT

  /* 9. An exit Lantern cannot complete: string I/O (OUTSB) stops this vCPU alone, with the
   *    reason recorded (vmx/hw/vcpu.cpp on_io). */
  xor %si, %si
  mov $0x80, %dx
  outsb
  jmp .
