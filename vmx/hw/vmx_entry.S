/* VM entry and exit for VmxVcpu::run() (vmx/hw/vcpu.cpp).
 *
 *   rax = vmx_enter(rdi = GeneralRegisters* regs, rsi = launched, rdx = VmxFastPath* fast)
 *
 * Saves only RBP (the frame pointer) and RBX, and pushes `fast` and `regs`: the caller,
 * VmxVcpu::run(), reaches the stub through an inline-asm CALL that declares every other general
 * register clobbered, so it keeps its loop's values in RBX and its frame instead of the stub
 * saving and restoring all the callee-saved registers at every exit. The stub then writes HOST_RSP
 * (VMCS field 0x6c14, SDM Vol. 3D Appendix B.4.4) with the resulting stack pointer unless
 * fast->host_rsp says the current VMCS already holds it (KVM does the same), loads the guest's
 * general registers from `regs` (VM entry does not load them: SDM Vol. 3C 26.3.2 lists what it
 * loads), then VMRESUME when `launched` != 0, else VMLAUNCH.
 *
 * On success the CPU continues at HOST_RIP = vmx_exit_entry with RSP = HOST_RSP (SDM Vol. 3C
 * 27.5.3): the stub stores the guest registers back into `regs`, restores RBX and RBP and
 * returns 0. When VMLAUNCH/VMRESUME fail (VMfailInvalid CF=1 / VMfailValid ZF=1, SDM Vol. 3C
 * 30.2) execution falls through: the stub returns RFLAGS, which is never 0 (bit 1 is always 1).
 *
 * Null-hypercall fast path: when fast->enabled != 0 and the exit is a VMCALL (basic reason 18,
 * SDM Vol. 3D Appendix C) with guest RAX = 0 and no STI/MOV-SS blocking, the stub advances
 * GUEST_RIP by VM_EXIT_INSTRUCTION_LEN, counts it in fast->null_hypercalls, leaves RAX = 0 (the
 * result) and resumes the guest without returning to C++. VmxVcpu::run() turns the path off
 * whenever an event is pending, so injection decisions are never skipped.
 *
 * GeneralRegisters layout: 8 * hardware register number (guest/general_registers_layout.h,
 * static_asserted in guest/general_registers.h). Slot 4 (rsp)
 * is unused: the guest RSP is GUEST_RSP in the VMCS. VM exits clear RFLAGS except bit 1
 * (SDM Vol. 3C 27.5.3), so the host continues with IF = 0 and DF = 0. */

#include "guest/general_registers_layout.h"
#include "vmx/hw/vmx_entry_layout.h"

/* Every VMCS field encoding as an assembler symbol VMCS_<NAME>, from the one field table
 * (SDM Vol. 3D Appendix B), e.g. VMCS_HOST_RSP = 0x6c14. */
#define LANTERN_VMCS_FIELD(NAME, ENCODING, WIDTH, GROUP, READ_ONLY) .set VMCS_##NAME, ENCODING;
#include "vmx/vmcs_fields.def"
#undef LANTERN_VMCS_FIELD

#define REG_RAX LANTERN_GPR_RAX
#define REG_RCX LANTERN_GPR_RCX
#define REG_RDX LANTERN_GPR_RDX
#define REG_RBX LANTERN_GPR_RBX
#define REG_RBP LANTERN_GPR_RBP
#define REG_RSI LANTERN_GPR_RSI
#define REG_RDI LANTERN_GPR_RDI
#define REG_R8 LANTERN_GPR_R8
#define REG_R9 LANTERN_GPR_R9
#define REG_R10 LANTERN_GPR_R10
#define REG_R11 LANTERN_GPR_R11
#define REG_R12 LANTERN_GPR_R12
#define REG_R13 LANTERN_GPR_R13
#define REG_R14 LANTERN_GPR_R14
#define REG_R15 LANTERN_GPR_R15
#define EXIT_REASON_VMCALL LANTERN_EXIT_REASON_VMCALL
#define FAST_ENABLED LANTERN_FAST_ENABLED
#define FAST_NULL_HYPERCALLS LANTERN_FAST_NULL_HYPERCALLS
#define FAST_HOST_RSP LANTERN_FAST_HOST_RSP

.text
.global vmx_enter
.type vmx_enter, @function
vmx_enter:
  pushq %rbp
  pushq %rbx
  pushq %rdx                   /* fast, at 8(HOST_RSP) */
  pushq %rdi                   /* regs, found again at (HOST_RSP) after the exit */

  cmpq %rsp, FAST_HOST_RSP(%rdx)  /* HOST_RSP already holds this stack pointer: skip VMWRITE */
  je 2f
  movl $VMCS_HOST_RSP, %eax
  vmwrite %rsp, %rax
  jbe .Lfail                   /* CF or ZF: VMWRITE failed */
  movq %rsp, FAST_HOST_RSP(%rdx)
2:

  testq %rsi, %rsi             /* ZF = !launched; the MOVs below leave the flags alone */
  movq REG_RAX(%rdi), %rax
  movq REG_RCX(%rdi), %rcx
  movq REG_RDX(%rdi), %rdx
  movq REG_RBX(%rdi), %rbx
  movq REG_RBP(%rdi), %rbp
  movq REG_RSI(%rdi), %rsi
  movq REG_R8(%rdi), %r8
  movq REG_R9(%rdi), %r9
  movq REG_R10(%rdi), %r10
  movq REG_R11(%rdi), %r11
  movq REG_R12(%rdi), %r12
  movq REG_R13(%rdi), %r13
  movq REG_R14(%rdi), %r14
  movq REG_R15(%rdi), %r15
  movq REG_RDI(%rdi), %rdi
  jnz 1f
  vmlaunch
  jmp .Lfail
1:
  vmresume
.Lfail:
  pushfq
  popq %rax
  addq $16, %rsp               /* regs, fast */
  popq %rbx
  popq %rbp
  ret
.size vmx_enter, . - vmx_enter

.global vmx_exit_entry
.type vmx_exit_entry, @function
vmx_exit_entry:
  testq %rax, %rax             /* null hypercall: guest rax == 0, so rax is free until .Lslow_zero */
  jnz .Lslow
  movq 8(%rsp), %rax           /* fast (after regs) */
  cmpq $0, FAST_ENABLED(%rax)
  je .Lslow_zero
  movl $VMCS_VM_EXIT_REASON, %eax
  vmread %rax, %rax
  cmpl $EXIT_REASON_VMCALL, %eax
  jne .Lslow_zero
  pushq %rcx
  pushq %rdx
  movl $VMCS_GUEST_INTERRUPTIBILITY_INFO, %edx
  vmread %rdx, %rax
  testl $3, %eax               /* blocking by STI / MOV SS: let C++ clear it */
  jnz .Lslow_restore
  movl $VMCS_VM_EXIT_INSTRUCTION_LEN, %edx
  vmread %rdx, %rax
  movl $VMCS_GUEST_RIP, %edx
  vmread %rdx, %rcx
  addq %rax, %rcx
  vmwrite %rcx, %rdx
  movq 24(%rsp), %rcx
  incq FAST_NULL_HYPERCALLS(%rcx)
  popq %rdx
  popq %rcx
  xorl %eax, %eax              /* the hypercall's result */
  vmresume
  /* VMRESUME failed: report it like vmx_enter does (the guest registers are lost). */
  jmp .Lfail
.Lslow_restore:
  popq %rdx
  popq %rcx
.Lslow_zero:
  xorl %eax, %eax              /* guest rax was 0 */
.Lslow:
  pushq %rdi                   /* guest rdi; regs is now at 8(%rsp) */
  movq 8(%rsp), %rdi
  movq %rax, REG_RAX(%rdi)
  movq %rcx, REG_RCX(%rdi)
  movq %rdx, REG_RDX(%rdi)
  movq %rbx, REG_RBX(%rdi)
  movq %rbp, REG_RBP(%rdi)
  movq %rsi, REG_RSI(%rdi)
  movq %r8, REG_R8(%rdi)
  movq %r9, REG_R9(%rdi)
  movq %r10, REG_R10(%rdi)
  movq %r11, REG_R11(%rdi)
  movq %r12, REG_R12(%rdi)
  movq %r13, REG_R13(%rdi)
  movq %r14, REG_R14(%rdi)
  movq %r15, REG_R15(%rdi)
  popq %rax
  movq %rax, REG_RDI(%rdi)
  addq $16, %rsp               /* regs, fast */
  popq %rbx
  popq %rbp
  xorl %eax, %eax
  ret
.size vmx_exit_entry, . - vmx_exit_entry

.section .note.GNU-stack,"",@progbits
