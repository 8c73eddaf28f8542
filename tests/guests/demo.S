/* The demo guest: one per core by default. Switches to 32-bit protected mode (pm32.inc) with an
 * IDT for all 256 vectors, prints a banner, turns on x2APIC mode and a periodic vlapic timer at
 * 100 Hz (its period from the hypervisor timing leaf 0x40000010), then loops forever: heartbeat
 * hypercall, CPUID, a UART status read, RDMSR/WRMSR, HLT (woken by the timer). Every 256 timer
 * ticks it prints `demo: rounds <n> ticks <t>`.
 *
 * Every event the hypervisor injects from its pending-event queue prints one line on the UART:
 *   IRQ 0x<vector>                 external interrupt (any vector but the timer's)
 *   NMI                            NMI
 *   EXC 0x<vector> ERR 0x<code>    exception with an error code (8, 10-14, 17, 21)
 *   EXC 0x<vector>                 exception without one
 * and returns to where the guest was (an injected exception is not a fault of the guest's own,
 * so the saved EIP is the next instruction to run).
 *
 * The heartbeat hypercall is VMCALL (0F 01 C1) under Lantern's VMX backend and VMMCALL
 * (0F 01 D9, APM Vol. 3) under its SVM backend, where VMCALL raises #UD: the guest reads the
 * hypervisor signature ("LanternVMXhv" or "LanternSVMhv") and patches the third byte. */
#include "guest_header.inc"
GUEST_HEADER("demo")

#define IDT_VECTORS 256
#define PM32_HANDLER demo_event
#include "pm32.inc"

#define TIMER_VECTOR 0xec
#define SPURIOUS_VECTOR 0xff
#define TIMER_HZ 100
#define TICKS_PER_LINE 256
#define FALLBACK_BUS_KHZ 10000
/* SDM Vol. 3A Table 6-1: the exceptions that push an error code, as a bit mask of vectors. */
#define ERROR_CODE_VECTORS ((1 << 8) | (0x1f << 10) | (1 << 17) | (1 << 21))
#define MSR_APIC_BASE 0x1b
#define MSR_TSC 0x10
#define X2_TPR 0x808
#define X2_EOI 0x80b
#define X2_SVR 0x80f
#define X2_LVT_TIMER 0x832
#define X2_INITIAL 0x838
#define X2_DIVIDE 0x83e
#define SIGNATURE_SVM_ECX 0x536e7265      /* "ernS" of "LanternSVMhv" (CPUID 0x40000000 ECX) */
#define VMMCALL_THIRD_BYTE 0xd9

pm32_main:
  cld
  mov $banner, %esi
  call puts32
  mov $1, %eax                      /* CPUID.1:EBX[31:24] = our vCPU id */
  xor %ecx, %ecx
  cpuid
  mov %ebx, %eax
  shr $24, %eax
  call puthex32
  mov $hv_text, %esi
  call puts32
  mov $0x40000000, %eax             /* hypervisor leaf: signature in ebx, ecx, edx */
  cpuid
  mov %ebx, sig
  mov %ecx, sig + 4
  mov %edx, sig + 8
  mov $sig, %esi
  call puts32
  cmpl $SIGNATURE_SVM_ECX, sig + 4
  jne 1f
  movb $VMMCALL_THIRD_BYTE, hypercall + 2
1:
  mov $'\n', %al
  call putc32

  /* x2APIC mode (EXTD with EN kept, SDM 11.12.5), software enable (SVR bit 8). */
  mov $MSR_APIC_BASE, %ecx
  rdmsr
  or $0xc00, %eax
  wrmsr
  mov $X2_SVR, %ecx
  mov $(0x100 | SPURIOUS_VECTOR), %eax
  xor %edx, %edx
  wrmsr
  /* Periodic timer (LVT bits 18:17 = 1), divide by 1, period = bus kHz * 1000 / TIMER_HZ. */
  mov $0x40000010, %eax
  cpuid
  test %ebx, %ebx
  jnz 1f
  mov $FALLBACK_BUS_KHZ, %ebx
1:
  imul $(1000 / TIMER_HZ), %ebx
  mov $X2_DIVIDE, %ecx
  mov $0xb, %eax
  xor %edx, %edx
  wrmsr
  mov $X2_LVT_TIMER, %ecx
  mov $(TIMER_VECTOR | (1 << 17)), %eax
  wrmsr
  mov $X2_INITIAL, %ecx
  mov %ebx, %eax
  wrmsr
  movl $TICKS_PER_LINE, next_line
  sti

  xor %ebp, %ebp
round:
  mov $HC_HEARTBEAT, %eax
  mov %ebp, %edi
hypercall:
  vmcall                            /* or VMMCALL, patched above */
  xor %eax, %eax
  cpuid
  mov $(UART + 5), %dx              /* line status */
  in %dx, %al
  mov $MSR_TSC, %ecx                /* an MSR the host answers */
  rdmsr
  mov $X2_TPR, %ecx                 /* and one the vlapic does */
  xor %eax, %eax
  xor %edx, %edx
  wrmsr
  hlt
  inc %ebp
  mov ticks, %eax
  cmp next_line, %eax
  jb round
  addl $TICKS_PER_LINE, next_line
  mov $rounds_text, %esi
  call puts32
  mov %ebp, %eax
  call puthex32
  mov $ticks_text, %esi
  call puts32
  mov ticks, %eax
  call puthex32
  mov $'\n', %al
  call putc32
  jmp round

/* Every vector lands here (pm32.inc stubs): stack = vector, error code, eip, cs, eflags. */
demo_event:
  pusha
  cld
  mov 32(%esp), %ebx                /* vector */
  cmp $TIMER_VECTOR, %ebx
  jne 1f
  incl ticks
  call eoi
  jmp 9f
1:
  cmp $2, %ebx
  jne 2f
  mov $nmi_text, %esi
  call puts32
  jmp 8f
2:
  cmp $32, %ebx
  jae 5f
  mov $exc_text, %esi
  call puts32
  mov %ebx, %eax
  call puthex8
  mov $ERROR_CODE_VECTORS, %eax
  bt %ebx, %eax
  jnc 8f
  mov $err_text, %esi
  call puts32
  mov 36(%esp), %eax
  call puthex32
  jmp 8f
5:
  mov $irq_text, %esi
  call puts32
  mov %ebx, %eax
  call puthex8
  call eoi
8:
  mov $'\n', %al
  call putc32
9:
  popa
  add $8, %esp                      /* vector and error code */
  iret

eoi:                                /* x2APIC EOI (SDM 11.12.1.2): write 0 */
  mov $X2_EOI, %ecx
  xor %eax, %eax
  xor %edx, %edx
  wrmsr
  ret

/* 32-bit UART output. putc32: al. puts32: esi = NUL-terminated string. */
putc32:
  push %edx
  mov $UART, %dx
  out %al, %dx
  pop %edx
  ret
puts32:
  push %eax
3:
  lodsb
  test %al, %al
  jz 4f
  call putc32
  jmp 3b
4:
  pop %eax
  ret
/* puthex32: eax as 8 hex digits; puthex8: al as 2. */
puthex32:
  push %ecx
  mov $8, %ecx
  jmp 6f
puthex8:
  push %ecx
  mov $2, %ecx
  rol $24, %eax
6:
  push %ebx
  mov %eax, %ebx
7:
  rol $4, %ebx
  mov %bl, %al
  and $0xf, %al
  add $'0', %al
  cmp $'9', %al
  jbe 10f
  add $('a' - '0' - 10), %al
10:
  call putc32
  loop 7b
  pop %ebx
  pop %ecx
  ret

banner: .asciz "Lantern demo guest (32-bit, x2APIC timer) on vCPU "
hv_text: .asciz ", hypervisor "
rounds_text: .asciz "demo: rounds "
ticks_text: .asciz " ticks "
nmi_text: .asciz "NMI"
exc_text: .asciz "EXC 0x"
err_text: .asciz " ERR 0x"
irq_text: .asciz "IRQ 0x"
sig: .fill 13, 1, 0
  .balign 4
ticks: .long 0
next_line: .long 0
