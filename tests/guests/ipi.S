/* Two vCPUs of one VM (vmx/hw/vmx_selftests.cpp, vmx_vlapic_ipi_between_vcpus), 32-bit protected
 * mode (pm32.inc). Both start here; CPUID.1:EBX[31:24] tells them apart.
 *   vCPU 1 (receiver): own stack, x2APIC on, software-enabled, IF = 1, sets `ready`, then HLTs;
 *     the interrupt is reported by the pm32 handler (VMCALL 0x31, vector 0x45), then VMCALL 0x72
 *     after its EOI.
 *   vCPU 0 (sender): x2APIC on, VMCALL 0x70, waits for `ready`, writes the ICR: fixed IPI,
 *     vector 0x45, physical destination x2APIC ID 1 (SDM Vol. 3A 11.12.9), then VMCALL 0x71.
 * Then INIT/SIPI (SDM 8.4.4.1): once vCPU 1 reported (ready = 2), vCPU 0 sends it INIT and a
 * SIPI whose vector is the page of `sipi_entry`, then VMCALL 0x74 (edi = that vector). vCPU 1
 * restarts in real mode at vector:0000 and reports its CS by VMCALL 0x73. */
#include "guest_header.inc"
GUEST_HEADER("ipi")

#include "pm32.inc"

#define IPI_VECTOR 0x45

pm32_main:
  mov $1, %eax
  xor %ecx, %ecx
  cpuid
  shr $24, %ebx                     /* vCPU id */
  test %ebx, %ebx
  jz 1f
  mov $0x800, %esp                  /* the receiver's own stack, below the sender's */
1:
  mov $0x1b, %ecx                   /* IA32_APIC_BASE: EXTD with EN kept (SDM 11.12.5) */
  rdmsr
  or $0xc00, %eax
  wrmsr
  mov $0x80f, %ecx                  /* SVR: software enable, spurious vector 0xff */
  mov $0x1ff, %eax
  xor %edx, %edx
  wrmsr
  test %ebx, %ebx
  jnz receiver

sender:
  mov $0x70, %eax
  HYPERCALL
2:
  pause
  cmpl $1, ready
  jne 2b
  mov $0x830, %ecx                  /* x2APIC ICR: destination in 63:32 */
  mov $IPI_VECTOR, %eax
  mov $1, %edx
  wrmsr
  mov $0x71, %eax
  HYPERCALL
6:
  pause
  cmpl $2, ready
  jne 6b
  mov $0x830, %ecx
  mov $0x4500, %eax                 /* INIT (delivery mode 101), level assert (bit 14) */
  mov $1, %edx
  wrmsr
  mov $sipi_entry, %ebx
  shr $12, %ebx                     /* the SIPI vector: the start page number */
  mov $0x600, %eax                  /* Start-up (delivery mode 110) */
  or %ebx, %eax
  wrmsr
  mov %ebx, %edi
  mov $0x74, %eax
  HYPERCALL
3:
  hlt
  jmp 3b

receiver:
  sti
  movl $1, ready
4:
  hlt                               /* a wake-up without the interrupt just halts again */
  cmpl $0, handled
  je 4b
  mov $0x80b, %ecx                  /* EOI */
  xor %eax, %eax
  xor %edx, %edx
  wrmsr
  mov $0x72, %eax
  HYPERCALL
  movl $2, ready                    /* after the report: INIT may come any time now */
5:
  hlt
  jmp 5b

  .balign 4
ready: .long 0

/* Where the SIPI restarts vCPU 1: real mode, CS = page << 8, IP = 0. */
  .code16
  .balign 4096
sipi_entry:
  xor %edi, %edi
  mov %cs, %di
  mov $0x73, %eax
  HYPERCALL
7:
  hlt
  jmp 7b
