/* Event-injection guest (vmx/hw/vmx_selftests.cpp, vmx_event_injection). Runs in 32-bit
 * protected mode (pm32.inc), because only protected mode delivers exception error codes (SDM
 * Vol. 3A 6.13; with unrestricted guest and CR0.PE = 0 an injected event cannot carry one, SDM
 * Vol. 3C 26.2.1.3). Every handler reports by VMCALL 0x31 (pm32.inc). The main line announces
 * each step by VMCALL 0x30 (edi = step), so the host queues the step's events when the guest is
 * ready for them. */
#include "guest_header.inc"
GUEST_HEADER("events")

#define HC_EV_READY 0x30
#define HC_EV_WINDOW 0x32
#define HC_EV_DONE 0x33

#include "pm32.inc"

pm32_main:
  sti

  /* Steps 1-4: an interrupt, an NMI, #GP with an error code, #UD without. */
  mov $1, %ebx
2:
  mov $HC_EV_READY, %eax
  mov %ebx, %edi
  HYPERCALL
  inc %ebx
  cmp $5, %ebx
  jne 2b

  /* Step 5: IF = 0, the interrupt must wait for the interrupt window (after STI + one insn). */
  cli
  mov $HC_EV_READY, %eax
  mov $5, %edi
  HYPERCALL
  mov $HC_EV_WINDOW, %eax
  mov handled, %edi
  HYPERCALL
  sti
  nop

  /* Step 6: three events at once, delivered exception, NMI (nested), then the interrupt. */
  mov $HC_EV_READY, %eax
  mov $6, %edi
  HYPERCALL

  /* Step 7: a second NMI, queued while the first one's handler runs, waits for that handler's
   * IRET, which returns here with IF = 0 into a loop that makes no exit: the NMI must arrive
   * right after the IRET (SVM: the IRET intercept, then a single step over it), not at the next
   * exit the guest happens to make. Reports how many of the two arrived within the loop. */
  cli
  mov handled, %ebp
  mov $HC_EV_READY, %eax
  mov $7, %edi
  HYPERCALL
  mov $1000, %ecx
4:
  mov handled, %edi
  sub %ebp, %edi
  cmp $2, %edi
  je 5f
  dec %ecx
  jnz 4b
5:
  mov $HC_EV_WINDOW, %eax
  HYPERCALL
  sti

  /* Step 8: single-stepping over an instruction the hypervisor emulates. POPF sets TF, which
   * traps from after the next instruction on (SDM Vol. 3A 18.3.1.4): the CPUID, which exits to
   * the hypervisor, must be followed by its #DB like the PUSHF, AND and POPF after it (the POPF
   * clears TF, but TF was set at its start). Reports the #DBs taken: 4. */
  mov $HC_EV_READY, %eax
  mov $8, %edi
  HYPERCALL
  mov handled, %ebp
  xor %eax, %eax
  pushf
  orl $0x100, (%esp)
  popf
  cpuid
  pushf
  andl $~0x100, (%esp)
  popf
  mov handled, %edi
  sub %ebp, %edi
  mov $HC_EV_WINDOW, %eax
  HYPERCALL

  mov $HC_EV_DONE, %eax
  mov handled, %edi
  HYPERCALL
3:
  hlt
  jmp 3b

