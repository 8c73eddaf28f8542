/* The triple-fault guest (vmx/hw/vmx_selftests.cpp, vmx_triple_fault_on_ap). Says hello by
 * hypercall 0x50, then loads an IDT (real-mode IVT) with limit 0 and executes INT3. Vector 3 lies
 * beyond the limit: #GP; vector 13 lies beyond it too: #DF; vector 8 as well: shutdown (SDM Vol. 3A
 * 20.1.4 "Interrupt and Exception Handling" in real mode, 6.15 "Interrupt 8 - Double Fault
 * Exception": a fault while delivering #DF is a triple fault). In VMX non-root operation the
 * shutdown is a VM exit with basic reason 2, triple fault (SDM Vol. 3C 25.2, Appendix C). The
 * host never sees anything after the INT3: the hypercall 0x51 below must not happen. */
#include "guest_header.inc"
GUEST_HEADER("triple")

#define HC_TRIPLE_HELLO 0x50
#define HC_TRIPLE_SURVIVED 0x51

main:
  cli
  xor %ax, %ax
  mov %ax, %ds
  mov %ax, %ss
  mov $0x1000, %sp
  mov $HC_TRIPLE_HELLO, %eax
  HYPERCALL
  lidt empty_idt
  int3
  mov $HC_TRIPLE_SURVIVED, %eax
  HYPERCALL
1:
  hlt
  jmp 1b

empty_idt:
  .word 0          /* limit 0: no vector fits */
  .long 0          /* base 0 */
