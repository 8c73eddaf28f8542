/* hostile_triple: faults while delivering faults, in a loop, until the last one is a triple
 * fault (32-bit protected mode). The IDT gates of vector 0x40 and of #NP (11) are not present:
 * INT 0x40 raises #NP, whose delivery raises #NP again, a double fault (SDM Vol. 3A 6.15,
 * Table 6-5: contributory after contributory). The #DF handler (hostile.inc) resumes the loop.
 * After DOUBLE_FAULTS rounds the #DF gate goes too: a fault while delivering #DF is a triple
 * fault, the processor's shutdown, which in VMX non-root operation is a VM exit (SDM Vol. 3C
 * 25.2): the vCPU must stop with that reason and nothing else may notice.
 * Lines: `hostile_triple: double faults <n>` after the loop, then `hostile_triple: triple fault
 * now`; `hostile_triple: survived` must never appear. */
#include "guest_header.inc"
GUEST_HEADER("hostile_triple")
#include "hostile.inc"

#define DOUBLE_FAULTS 64
#define VECTOR_NP 11
#define VECTOR_DF 8
#define GATE_PRESENT_WORD(v) (idt + (v) * 8 + 4)   /* bit 15: P (SDM Vol. 3A Figure 6-2) */

pm32_main:
  cld
  mov $0x4f000, %esp
  andw $0x7fff, GATE_PRESENT_WORD(0x40)
  andw $0x7fff, GATE_PRESENT_WORD(VECTOR_NP)
  xor %ebx, %ebx
1:
  movl $2f, resume_eip
  int $0x40
2:
  cmpl $VECTOR_DF, fault_vector
  jne 3f
  incl %ebx
3:
  movl $0, fault_vector
  cmp $DOUBLE_FAULTS, %ebx
  jb 1b
  mov $df_text, %esi
  mov %ebx, %eax
  call putline
  mov $now_text, %esi
  call puts32
  andw $0x7fff, GATE_PRESENT_WORD(VECTOR_DF)
  movl $4f, resume_eip
  int $0x40
4:
  mov $survived_text, %esi
  call puts32
5:
  hlt
  jmp 5b

df_text: .asciz "hostile_triple: double faults "
now_text: .asciz "hostile_triple: triple fault now\n"
survived_text: .asciz "hostile_triple: survived\n"
