/* The VMRUN stub (APM Vol. 2 15.5 "VMRUN Instruction", 15.17 "Global Interrupt Flag, STGI and
 * CLGI"):
 *
 *   void svm_vmrun(uint64_t guest_vmcb_pa, uint64_t host_vmcb_pa, SvmGuestGprs* gprs);
 *
 * Called with RFLAGS.IF = 0. CLGI holds every interrupt and NMI pending; STI then lets a
 * physical interrupt that arrives while the guest runs cause a #VMEXIT (INTR intercept with
 * V_INTR_MASKING, APM 15.21.1) instead of being ignored with the host's IF = 0. STI's one-
 * instruction interrupt shadow is long over when VMRUN executes (QEMU 7.2 mishandles VMRUN in
 * an STI shadow, emulators.md).
 *
 * VMRUN switches RAX/RSP/RIP/RFLAGS, the segment registers visible in real mode, CRs, DR6/DR7,
 * EFER and CR2 (APM 15.5.1); the rest (FS/GS/TR/LDTR hidden state, KernelGsBase, STAR, LSTAR,
 * CSTAR, SFMASK, SYSENTER_*) goes through VMSAVE/VMLOAD (APM 15.5.2): the host's is saved in
 * its own VMCB-format page first and loaded back after the guest's is saved. The guest's RAX
 * lives in its VMCB; the other general registers are loaded from and saved to *gprs, in
 * SvmGuestGprs order (svm/hw/svm_vcpu.h): rbx rcx rdx rsi rdi rbp r8 .. r15.
 */
.text
.global svm_vmrun
.type svm_vmrun, @function
svm_vmrun:
  push %rbp
  push %rbx
  push %r12
  push %r13
  push %r14
  push %r15
  push %rdx                /* 16(%rsp): gprs */
  push %rsi                /*  8(%rsp): host VMCB */
  push %rdi                /*  0(%rsp): guest VMCB */

  clgi
  sti
  mov %rsi, %rax
  vmsave %rax              /* host FS/GS/TR/LDTR, KernelGsBase, syscall and sysenter MSRs */

  mov %rdx, %rax
  mov 0(%rax), %rbx
  mov 8(%rax), %rcx
  mov 16(%rax), %rdx
  mov 24(%rax), %rsi
  mov 32(%rax), %rdi
  mov 40(%rax), %rbp
  mov 48(%rax), %r8
  mov 56(%rax), %r9
  mov 64(%rax), %r10
  mov 72(%rax), %r11
  mov 80(%rax), %r12
  mov 88(%rax), %r13
  mov 96(%rax), %r14
  mov 104(%rax), %r15

  mov 0(%rsp), %rax
  vmload %rax
  vmrun %rax
  /* #VMEXIT: RAX, RSP and RIP are the host's again (APM 15.6). */
  vmsave %rax

  mov 16(%rsp), %rax
  mov %rbx, 0(%rax)
  mov %rcx, 8(%rax)
  mov %rdx, 16(%rax)
  mov %rsi, 24(%rax)
  mov %rdi, 32(%rax)
  mov %rbp, 40(%rax)
  mov %r8, 48(%rax)
  mov %r9, 56(%rax)
  mov %r10, 64(%rax)
  mov %r11, 72(%rax)
  mov %r12, 80(%rax)
  mov %r13, 88(%rax)
  mov %r14, 96(%rax)
  mov %r15, 104(%rax)

  mov 8(%rsp), %rax
  vmload %rax              /* the host's hidden segment state and MSRs back */
  cli
  stgi                     /* pending interrupts wait for the caller to set IF again */

  add $24, %rsp
  pop %r15
  pop %r14
  pop %r13
  pop %r12
  pop %rbx
  pop %rbp
  ret
.size svm_vmrun, . - svm_vmrun
.section .note.GNU-stack, "", @progbits
