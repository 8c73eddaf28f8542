/* Exit-cost benchmarks (`bench` on the kernel command line, vmx::run_benchmarks()).
 * Every benchmark times ITER iterations of `rdtsc; mov; <setup>; <op>; rdtsc` and reports the
 * minimum and the total delta with HC_BENCH_RESULT {id, total, iterations, min}. Id 0 is the
 * baseline (no operation), so the host prints min(op) - min(baseline).
 *
 * The hypercall is VMCALL (0F 01 C1) under Lantern's VMX backend and VMMCALL (0F 01 D9) under its
 * SVM backend (svm::run_benchmarks()), where VMCALL raises #UD: the program reads the hypervisor
 * signature at CPUID 0x40000000 first and patches the third byte of each hypercall site. */
#include "guest_header.inc"
GUEST_HEADER("bench")

#define ITER 2000
#define SIGNATURE_SVM_ECX 0x536e7265      /* "ernS" of "LanternSVMhv" (CPUID 0x40000000 ECX) */
#define VMMCALL_THIRD_BYTE 0xd9

/* BENCH id, setup, op */
.macro BENCH id, setup, op
  movl $0, total
  movl $0xffffffff, minimum
  mov $ITER, %si
1:
  rdtsc
  mov %eax, %ebp
  \setup
  \op
  rdtsc
  sub %ebp, %eax
  add %eax, total
  cmp minimum, %eax
  jae 2f
  mov %eax, minimum
2:
  dec %si
  jnz 1b
  mov $\id, %edi
  call report
.endm

main:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %ss
  mov $0x1000, %sp
  /* IVT entry 0x30 -> irq_handler (real-mode IVT: offset, segment; SDM Vol. 3A 21.1.4). */
  movw $irq_handler, 0x30 * 4
  movw $0, 0x30 * 4 + 2
  mov $0x40000000, %eax
  cpuid
  cmp $SIGNATURE_SVM_ECX, %ecx
  jne 3f
  movb $VMMCALL_THIRD_BYTE, hc_roundtrip + 2
  movb $VMMCALL_THIRD_BYTE, hc_inject + 2
  movb $VMMCALL_THIRD_BYTE, hc_report + 2
3:
  mov $0x1234, %ecx

  BENCH 0, "xor %eax, %eax", "nop"
  BENCH 1, "xor %eax, %eax", "hc_roundtrip: vmcall"
  BENCH 2, "xor %eax, %eax", "cpuid"
  BENCH 3, "xor %eax, %eax", "out %al, $0x80"
  mov $0x1234, %ecx
  BENCH 4, "xor %eax, %eax", "rdmsr"
  sti
  mov $0x30, %edi
  BENCH 5, "mov $2, %eax", "hc_inject: vmcall"  /* 2 = HC_INJECT_INTERRUPT */
  cli

  mov $0, %al
  out %al, $EXIT_PORT
  jmp .

irq_handler:
  iret

/* report: edi = id; sends {id, total, ITER, minimum}. */
report:
  mov total, %esi
  mov $ITER, %edx
  mov minimum, %ecx
  mov $HC_BENCH_RESULT, %eax
hc_report:
  vmcall
  ret

total: .long 0
minimum: .long 0
