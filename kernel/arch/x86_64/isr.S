/* Interrupt entry stubs. Every vector pushes an error code (a zero where the CPU does not,
 * SDM Vol. 3 6.13 / Table 6-1) and its number, then joins isr_common, which saves the
 * general registers and the x87/SSE state (the kernel's C++ uses SSE), calls
 * interrupt_dispatch(Frame*), and returns with IRETQ. */

.macro ISR_NOERR vector
  .balign 16
  pushq $0
  pushq $\vector
  jmp isr_common
.endm
.macro ISR_ERR vector
  .balign 16
  pushq $\vector
  jmp isr_common
.endm

.text
.balign 16
.global isr_stubs
isr_stubs:
.set v, 0
.rept 256
  /* #DF(8) #TS(10) #NP(11) #SS(12) #GP(13) #PF(14) #AC(17) #CP(21) #VC(29) #SX(30) push an error code. */
  .if v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30
    ISR_ERR v
  .else
    ISR_NOERR v
  .endif
  .set v, v + 1
.endr

isr_common:
  pushq %rax
  pushq %rbx
  pushq %rcx
  pushq %rdx
  pushq %rsi
  pushq %rdi
  pushq %rbp
  pushq %r8
  pushq %r9
  pushq %r10
  pushq %r11
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, %r12            /* r12 (callee-saved) = Frame* */
  andq $-16, %rsp
  subq $512, %rsp
  fxsave64 (%rsp)            /* SDM Vol. 1 10.5: 512-byte, 16-byte-aligned area */
  cld
  movq %r12, %rdi
  call interrupt_dispatch
  fxrstor64 (%rsp)
  movq %r12, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %r11
  popq %r10
  popq %r9
  popq %r8
  popq %rbp
  popq %rdi
  popq %rsi
  popq %rdx
  popq %rcx
  popq %rbx
  popq %rax
  addq $16, %rsp             /* vector and error code */
  iretq

.section .note.GNU-stack,"",@progbits
