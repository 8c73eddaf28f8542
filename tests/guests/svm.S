/* The SVM bring-up guest (svm/hw/svm_selftests.cpp, svm_guest_exits): every exit a first SVM
 * vCPU must handle without NRIP, in this order, then a triple fault. Real mode at 0000:1000.
 * Hypercalls use VMMCALL (0F 01 D9, APM Vol. 3): the VMCALL of the VMX guests raises #UD on AMD.
 *   1. CPUID leaf 0 (2 bytes): the host answers EAX=0x53564d21 ("!MVS") and EBX/ECX/EDX.
 *   2. OUT 0x5a to port 0x80 (2 bytes, imm8 form): IOIO, next RIP from EXITINFO2.
 *   3. IN from port 0x84 into AL via DX (1 byte): IOIO; the host completes 0x7e.
 *   4. RDMSR 0x1234 (2 bytes): the host completes EDX:EAX = 0x11223344:0x55667788.
 *   5. VMMCALL 0x30 (3 bytes): reports CPUID's EAX (edi), the IN value (esi), RDMSR EAX (edx)
 *      and EDX (ecx); the host answers 0xc0ffee in EAX.
 *   6. VMMCALL 0x31: reports the previous answer (edi).
 *   7. VMRUN (an SVM instruction): #UD, raised by the CPU in real mode or injected by the host on
 *      VMEXIT_VMRUN; the real-mode IVT entry 6 points at
 *      ud_handler, which reports by VMMCALL 0x32 and skips the 3-byte VMRUN.
 *   8. HLT (1 byte).
 *   9. A triple fault: INT3 with an IDT limit of 0 (#GP, #DF, shutdown; APM Vol. 2 8.2.9), so
 *      VMEXIT_SHUTDOWN. VMMCALL 0x3f after it must never run. */
#include "guest_header.inc"
GUEST_HEADER("svm")

main:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %ss
  mov $0x1000, %sp
  movw $ud_handler, 6 * 4          /* IVT entry 6 (#UD): offset, segment 0 */
  movw $0, 6 * 4 + 2

  xor %eax, %eax
  cpuid
  mov %eax, %edi
  mov $0x5a, %al
  out %al, $0x80
  mov $0x84, %dx
  mov $0, %eax
  in %dx, %al
  mov %eax, %esi
  mov $0x1234, %ecx
  rdmsr
  mov %edx, %ecx
  mov %eax, %edx
  mov $0x30, %eax
  vmmcall
  mov %eax, %edi
  mov $0x31, %eax
  vmmcall
  vmrun
after_vmrun:
  hlt
  lidt empty_idt
  int3
  mov $0x3f, %eax
  vmmcall
1:
  hlt
  jmp 1b

ud_handler:
  mov $0x32, %eax
  mov %sp, %bp
  mov (%bp), %di                   /* the faulting IP, as pushed */
  vmmcall
  addw $3, (%bp)                   /* VMRUN is 0F 01 D8 */
  iret

empty_idt:
  .word 0
  .long 0
