/* vlapic guest (vmx/hw/vmx_selftests.cpp, vmx_vlapic). 32-bit protected mode (pm32.inc): the
 * xAPIC page at 0xfee00000 is out of real mode's reach. Handlers report by VMCALL 0x31 (vector,
 * error code) and do not EOI: the main line does. Each step ends with a VMCALL 0x6N whose
 * arguments the host checks:
 *   0x60 xAPIC MMIO: TPR after MOV m32,imm32; TPR after MOV m32,r32; version; ID
 *   0x66 the APIC page moved and back: IA32_APIC_BASE at the new base; version read there;
 *        version read at the power-up base again
 *   0x61 x2APIC: IA32_APIC_BASE, ID, version, SVR (kept across the switch)
 *   (a WRMSR to the read-only x2APIC ID: #GP(0), reported by the handler)
 *   0x62 one-shot timer woke HLT: handled count, TSC ticks slept
 *   0x63 TSC-deadline timer woke HLT: handled count, TSC ticks slept, IA32_TSC_DEADLINE after
 *   0x64 periodic timer, 5 ticks: handled count, TSC ticks, current count after stopping
 *   0x65 self-IPIs (SELF_IPI MSR, ICR self shorthand, ICR to the own x2APIC ID): handled
 *        count, ISR bits 63:32, PPR
 * then 0x42 to the exit port. */
#include "guest_header.inc"
GUEST_HEADER("vlapic")

#include "pm32.inc"

#define TIMER_VECTOR 0x44
#define SELF_IPI_VECTOR 0x45
#define ICR_SELF_VECTOR 0x46
#define ICR_DEST_VECTOR 0x47
/* In TSC ticks per bus clock (CPUID 0x40000010) x bus clocks: the host checks the minimum. */
#define ONESHOT_COUNT 200000
#define DEADLINE_TICKS 300000
#define PERIOD_COUNT 100000
/* x2APIC MSRs (SDM Vol. 3A 11.12.1.2, Table 11-6). */
#define MSR_APIC_BASE 0x1b
#define MSR_TSC_DEADLINE 0x6e0
#define X2_ID 0x802
#define X2_VERSION 0x803
#define X2_TPR 0x808
#define X2_PPR 0x80a
#define X2_EOI 0x80b
#define X2_SVR 0x80f
#define X2_ISR1 0x811
#define X2_ICR 0x830
#define X2_LVT_TIMER 0x832
#define X2_INITIAL 0x838
#define X2_CURRENT 0x839
#define X2_DIVIDE 0x83e
#define X2_SELF_IPI 0x83f
#define XAPIC 0xfee00000
/* Where kvm-unit-tests' apic test moves the page: neither RAM nor a device in the test VMs. */
#define ALT_XAPIC 0xfed40000

pm32_main:
  /* 1. xAPIC page (enabled, xAPIC mode after power-up). */
  movl $0x20, XAPIC + 0x80          /* C7: TPR = 0x20 */
  mov XAPIC + 0x80, %ebx            /* 8B */
  mov $0x30, %ecx
  mov %ecx, XAPIC + 0x80            /* 89 */
  mov XAPIC + 0x80, %esi
  mov XAPIC + 0x30, %edx            /* version */
  mov XAPIC + 0x20, %ecx            /* ID in bits 31:24 */
  mov %ebx, %edi
  mov $0x60, %eax
  HYPERCALL
  movl $0, XAPIC + 0x80

  /* 1b. The APIC page moves (SDM 11.4.5): disable (EN = EXTD = 0), enable at ALT_XAPIC, read the
   *     version there, then back to the power-up base with EN kept (a move while enabled). */
  mov $MSR_APIC_BASE, %ecx
  rdmsr
  mov %eax, %ebp
  and $~0xc00, %eax
  wrmsr
  mov %ebp, %eax
  and $0xfff, %eax
  or $ALT_XAPIC, %eax
  wrmsr
  rdmsr
  mov %eax, %edi
  mov ALT_XAPIC + 0x30, %esi
  mov %ebp, %eax
  wrmsr
  mov XAPIC + 0x30, %edx
  mov $0x66, %eax
  HYPERCALL

  movl $0x1ff, XAPIC + 0xf0         /* SVR: software enable, spurious vector 0xff */

  /* 2. x2APIC: set EXTD with EN kept (SDM 11.12.5). */
  mov $MSR_APIC_BASE, %ecx
  rdmsr
  or $0xc00, %eax
  wrmsr
  rdmsr
  mov %eax, %edi
  mov $X2_ID, %ecx
  rdmsr
  mov %eax, %esi
  mov $X2_VERSION, %ecx
  rdmsr
  mov %eax, %ebx
  mov $X2_SVR, %ecx
  rdmsr
  mov %eax, %ecx
  mov %ebx, %edx
  mov $0x61, %eax
  HYPERCALL

  /* 3. The x2APIC ID is read-only: #GP(0); the handler steps over the 2-byte WRMSR. */
  movl $2, skip_len
  mov $X2_ID, %ecx
  xor %eax, %eax
  xor %edx, %edx
  wrmsr
  movl $0, skip_len

  /* 4. One-shot timer, divide by 1, then HLT until it fires. */
  mov $X2_DIVIDE, %ecx
  mov $0xb, %eax
  xor %edx, %edx
  wrmsr
  mov $X2_LVT_TIMER, %ecx
  mov $TIMER_VECTOR, %eax
  wrmsr
  rdtsc
  mov %eax, t0
  mov $X2_INITIAL, %ecx
  mov $ONESHOT_COUNT, %eax
  xor %edx, %edx
  wrmsr
  sti
  hlt
  cli
  rdtsc
  sub t0, %eax
  mov %eax, %esi
  call eoi
  mov handled, %edi
  mov $0x62, %eax
  HYPERCALL

  /* 5. TSC-deadline mode (LVT timer bits 18:17 = 2). */
  mov $X2_LVT_TIMER, %ecx
  mov $(TIMER_VECTOR | (2 << 17)), %eax
  xor %edx, %edx
  wrmsr
  rdtsc
  mov %eax, t0
  add $DEADLINE_TICKS, %eax
  adc $0, %edx
  mov $MSR_TSC_DEADLINE, %ecx
  wrmsr
  sti
  hlt
  cli
  rdtsc
  sub t0, %eax
  mov %eax, %esi
  mov $MSR_TSC_DEADLINE, %ecx
  rdmsr
  mov %eax, %edx
  call eoi
  mov handled, %edi
  mov $0x63, %eax
  HYPERCALL

  /* 6. Periodic mode (bits 18:17 = 1): five ticks, each waited for in HLT, then stop. */
  mov $X2_LVT_TIMER, %ecx
  mov $(TIMER_VECTOR | (1 << 17)), %eax
  xor %edx, %edx
  wrmsr
  mov handled, %eax
  add $5, %eax
  mov %eax, target
  rdtsc
  mov %eax, t0
  mov $X2_INITIAL, %ecx
  mov $PERIOD_COUNT, %eax
  xor %edx, %edx
  wrmsr
1:
  sti
  hlt
  cli
  call eoi
  mov handled, %eax
  cmp target, %eax
  jb 1b
  mov $X2_INITIAL, %ecx
  xor %eax, %eax
  xor %edx, %edx
  wrmsr
  /* A tick that fired while IF was 0 stays in the IRR after the timer stops (SDM Vol. 3A
   * 11.5.4): take it and EOI it here, so the self-IPIs below find nothing in service. */
  mov handled, %ebx
  sti
  nop
  cli
  cmp handled, %ebx
  je 3f
  call eoi
3:
  rdtsc
  sub t0, %eax
  mov %eax, %esi
  mov $X2_CURRENT, %ecx
  rdmsr
  mov %eax, %edx
  mov handled, %edi
  mov $0x64, %eax
  HYPERCALL

  /* 7. Self-IPIs with IF = 1: each is taken right after the WRMSR. */
  sti
  mov $X2_SELF_IPI, %ecx
  mov $SELF_IPI_VECTOR, %eax
  xor %edx, %edx
  wrmsr
  nop
  cli
  call eoi
  sti
  mov $X2_ICR, %ecx                 /* fixed, shorthand self (ICR bits 19:18 = 1) */
  mov $(ICR_SELF_VECTOR | (1 << 18)), %eax
  xor %edx, %edx
  wrmsr
  nop
  cli
  call eoi
  mov $X2_ID, %ecx
  rdmsr
  mov %eax, %edx                    /* x2APIC destination: ICR 63:32 */
  mov $X2_ICR, %ecx
  mov $ICR_DEST_VECTOR, %eax        /* fixed, physical, no shorthand */
  sti
  wrmsr
  nop
  cli
  call eoi
  mov $X2_ISR1, %ecx
  rdmsr
  mov %eax, %esi
  mov $X2_PPR, %ecx
  rdmsr
  mov %eax, %edx
  mov handled, %edi
  mov $0x65, %eax
  HYPERCALL

  mov $0x42, %al
  out %al, $EXIT_PORT
2:
  hlt
  jmp 2b

eoi:                                /* x2APIC EOI: write 0 (SDM 11.12.1.2) */
  push %eax
  push %ecx
  push %edx
  mov $X2_EOI, %ecx
  xor %eax, %eax
  xor %edx, %edx
  wrmsr
  pop %edx
  pop %ecx
  pop %eax
  ret

t0: .long 0
target: .long 0
