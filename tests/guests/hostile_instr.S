/* hostile_instr: executes every privileged, VMX and SVM instruction in ring 0 (32-bit protected
 * mode, IF = 0), each with operands chosen to provoke the hypervisor (invalid CR0/CR4/XCR0 values,
 * MOV from CR3 into ESP, VMX instructions on garbage, unknown hypercalls), then random byte
 * sequences for ever. A fault resumes after the instruction (hostile.inc: `resume_eip`).
 *
 * UART lines, in order:
 *   hostile_instr: privileged done, faults <n>
 *   hostile_instr: vmx done, faults <n>
 *   hostile_instr: svm done, faults <n>
 *   hostile_instr: random <n>                every 0x1000 sequences of 16 random bytes
 * Random phase: 32-bit paging maps guest RAM and aliases the rest of the 4 GiB onto scratch
 * frames (a wild access or ESP stays in guest RAM); 16 bytes
 * from a fixed xorshift32 seed (INS/OUTS opcodes 0x6c-0x6f turned into IN/OUT DX: a REP INS with
 * a count of a scratch address would overwrite this guest's page tables), padded with INT3, entered with every general register pointing
 * into a scratch area; faults, INT3 and the x2APIC timer (100 Hz, a
 * runaway loop) return to the next sequence. A sequence may still end the vCPU (a write beyond
 * guest memory, a triple fault, the exit port): that is what the hypervisor must
 * survive, with the reason recorded. */
#include "guest_header.inc"
GUEST_HEADER("hostile_instr")
#include "hostile.inc"

#define SCRATCH 0x44000            /* operands of memory forms; 64-byte aligned */
#define STACK_TOP 0x4f000
#define PAD_AREA 0x50000           /* 64 KiB of INT3 around the random buffer */
#define PAD_BYTES 0x10000
#define RANDOM_BUF 0x58000
#define RANDOM_LEN 16
#define RANDOM_PD 0x70000
#define RANDOM_PT 0x71000
#define RANDOM_ALIAS_PT 0x72000
#define SCRATCH_FRAMES 0x100000    /* 16 frames every page above 4 MiB maps to */
#define GUEST_RAM 0x200000         /* vmx/hw/guest_vm.h kGuestMemoryBytes */
#define PRINT_EVERY 0x1000
#define MSR_APIC_BASE 0x1b
#define MSR_EFER 0xc0000080
#define EFER_SVME (1 << 12)        /* AMD APM Vol. 2 3.1.7: EFER.SVME */
#define X2_SVR 0x80f
#define X2_LVT_TIMER 0x832
#define X2_INITIAL 0x838
#define X2_DIVIDE 0x83e

/* TRY(insn; insn...): run instructions with the standard operands (reset_regs); a fault in any
 * of them resumes after the last. TRYB(bytes): the same for an encoding given as bytes. */
#define TRY(...) call reset_regs; movl $77f, resume_eip; __VA_ARGS__; 77:
#define TRYB(...) TRY(.byte __VA_ARGS__)

pm32_main:
  cld
  mov $STACK_TOP, %esp
  mov $hello, %esi
  call puts32

  /* ---- privileged instructions ---- */
  /* Control registers: every CR0 bit but PE and PG set alone, every CR4 bit set alone, then
   * restored (the host #GPs what it owns: NE clear, VMXE, SMXE; the CPU the reserved bits). */
  mov %cr0, %eax
  mov %eax, saved_cr0
  mov %cr4, %eax
  mov %eax, saved_cr4
  mov $1, %ebx
1:
  mov %ebx, bit
  TRY(mov saved_cr0, %eax; mov bit, %ecx; bts %ecx, %eax; mov %eax, %cr0)
  TRY(mov saved_cr0, %eax; mov %eax, %cr0)
  mov bit, %ebx
  inc %ebx
  cmp $31, %ebx
  jb 1b
  xor %ebx, %ebx
2:
  mov %ebx, bit
  TRY(mov saved_cr4, %eax; mov bit, %ecx; bts %ecx, %eax; mov %eax, %cr4)
  TRY(mov saved_cr4, %eax; mov %eax, %cr4)
  mov bit, %ebx
  inc %ebx
  cmp $32, %ebx
  jb 2b
  TRY(mov saved_cr0, %eax; and $~0x20, %eax; mov %eax, %cr0)      /* clear NE: host-owned */
  TRY(mov saved_cr0, %eax; and $~1, %eax; or $0x80000000, %eax; mov %eax, %cr0)  /* PG without PE */
  TRY(mov saved_cr0, %eax; mov %eax, %cr0)
  TRY(mov %cr3, %eax; mov %eax, %cr3)
  TRY(mov %esp, saved_esp; mov %cr3, %esp; mov saved_esp, %esp)   /* MOV from CR3 into ESP */
  TRY(mov %esp, saved_esp; mov %esp, %cr3; mov saved_esp, %esp; xor %eax, %eax; mov %eax, %cr3)
  TRY(mov %cr2, %eax; mov %eax, %cr2)
  TRYB(0xf0, 0x0f, 0x20, 0xc0)      /* LOCK MOV EAX, CR0: AMD's CR8 alias, #UD on Intel */
  TRYB(0x0f, 0x20, 0xc8)            /* MOV EAX, CR1: #UD */
  TRYB(0x0f, 0x22, 0xe8)            /* MOV CR5, EAX: #UD */
  TRYB(0x0f, 0x20, 0xf8)            /* MOV EAX, CR7 */
  TRY(mov %dr0, %eax; mov %eax, %dr0)
  TRY(mov %dr1, %eax; mov %eax, %dr1)
  TRY(mov %dr2, %eax; mov %eax, %dr2)
  TRY(mov %dr3, %eax; mov %eax, %dr3)
  TRY(mov %dr6, %eax; mov %eax, %dr6)
  TRY(mov %dr7, %eax; mov %eax, %dr7)
  TRYB(0x0f, 0x21, 0xe0)            /* MOV EAX, DR4 */
  TRYB(0x0f, 0x23, 0xe8)            /* MOV DR5, EAX */
  TRY(mov $0xffffffff, %eax; mov %eax, %dr7)                     /* reserved DR7 bits */
  TRY(mov $0x400, %eax; mov %eax, %dr7)
  /* Descriptor tables and tasks. */
  TRY(sgdt (%ebx); lgdt (%ebx))
  TRY(sidt (%ebx); lidt (%ebx))
  TRY(sldt %ax; lldt %ax)
  TRY(str %ax)
  TRY(mov $0x18, %ax; ltr %ax)       /* beyond the GDT: #GP */
  TRY(xor %eax, %eax; ltr %ax)       /* null: #GP */
  TRY(mov $0x10, %ax; ltr %ax)       /* a data segment: #GP */
  TRY(smsw %ax; lmsw %ax)
  TRY(mov $0xf, %ax; lmsw %ax; mov saved_cr0, %eax; mov %eax, %cr0)
  TRY(clts)
  TRY(mov $0x08, %eax; lar %eax, %edx; lsl %eax, %edx; verr %ax; verw %ax)
  TRY(mov $0xfff8, %eax; lar %eax, %edx)
  /* Caches and TLBs. */
  TRY(invd)
  TRY(wbinvd)
  TRYB(0xf3, 0x0f, 0x09)            /* WBNOINVD */
  TRY(invlpg (%ebx))
  TRYB(0x66, 0x0f, 0x38, 0x82, 0x03)  /* INVPCID eax, [ebx]: #UD unless enabled */
  TRY(clflush (%ebx))
  TRYB(0x66, 0x0f, 0xae, 0x3b)      /* CLFLUSHOPT [ebx] */
  TRYB(0x66, 0x0f, 0xae, 0x33)      /* CLWB [ebx] */
  /* MSRs, counters, time. */
  TRY(mov $0x10, %ecx; rdmsr; wrmsr)
  TRY(mov $0x3a, %ecx; rdmsr; wrmsr)                 /* IA32_FEATURE_CONTROL */
  TRY(mov $0x480, %ecx; rdmsr)                        /* IA32_VMX_BASIC */
  TRY(mov $MSR_EFER, %ecx; rdmsr; or $EFER_SVME, %eax; wrmsr)
  TRY(mov $MSR_EFER, %ecx; rdmsr; or $0x00008000, %eax; wrmsr)   /* reserved bit */
  TRY(mov $MSR_EFER, %ecx; mov $0xffffffff, %eax; mov %eax, %edx; wrmsr)
  TRY(mov $0x9b, %ecx; rdmsr)                         /* IA32_SMM_MONITOR_CTL */
  TRY(mov $0xc0010114, %ecx; rdmsr; wrmsr)            /* AMD VM_CR */
  TRY(mov $0xc0010117, %ecx; rdmsr; mov $0x10000, %eax; xor %edx, %edx; wrmsr)  /* AMD VM_HSAVE_PA */
  TRY(mov $0xffffffff, %ecx; rdmsr; wrmsr)
  TRY(rdtsc)
  TRYB(0x0f, 0x01, 0xf9)            /* RDTSCP: #UD unless enabled */
  TRY(xor %ecx, %ecx; rdpmc)
  TRY(mov $0x40000000, %ecx; rdpmc)
  TRYB(0xf3, 0x0f, 0xc7, 0xf8)      /* RDPID eax */
  TRY(rdrand %eax)
  TRY(rdseed %eax)
  TRY(pause)
  /* CPUID across leaves. */
  TRY(xor %eax, %eax; cpuid)
  TRY(mov $1, %eax; cpuid)
  TRY(mov $7, %eax; xor %ecx, %ecx; cpuid)
  TRY(mov $0xd, %eax; mov $1, %ecx; cpuid)
  TRY(mov $0xd, %eax; mov $63, %ecx; cpuid)
  TRY(mov $0x40000000, %eax; cpuid)
  TRY(mov $0x40000010, %eax; cpuid)
  TRY(mov $0x4fffffff, %eax; cpuid)
  TRY(mov $0x80000000, %eax; cpuid)
  TRY(mov $0x8000000a, %eax; cpuid)                  /* SVM features */
  TRY(mov $0xffffffff, %eax; mov $0xffffffff, %ecx; cpuid)
  /* Extended state: XSETBV needs CR4.OSXSAVE (bit 18). */
  TRY(mov saved_cr4, %eax; or $(1 << 18), %eax; mov %eax, %cr4)
  TRY(xor %ecx, %ecx; xgetbv)
  TRY(xor %ecx, %ecx; xor %eax, %eax; xsetbv)         /* x87 off: #GP */
  TRY(xor %ecx, %ecx; mov $2, %eax; xsetbv)           /* SSE without x87 */
  TRY(xor %ecx, %ecx; mov $0xffffffff, %eax; mov %eax, %edx; xsetbv)
  TRY(mov $1, %ecx; mov $1, %eax; xsetbv)             /* XCR1 */
  TRY(mov $0xffffffff, %ecx; mov $1, %eax; xsetbv)
  TRY(xor %ecx, %ecx; mov $7, %eax; xsetbv)           /* x87, SSE, AVX */
  TRY(xor %ecx, %ecx; mov $3, %eax; xsetbv)
  TRY(mov $0xffffffff, %eax; mov %eax, %edx; xsave (%ebx))
  TRY(movl $0xffffffff, 512(%ebx); mov $0xffffffff, %eax; mov %eax, %edx; xrstor (%ebx))  /* bad header: #GP */
  TRY(movl $0, 512(%ebx); movl $0, 516(%ebx); mov $3, %eax; xor %edx, %edx; xrstor (%ebx))
  TRYB(0x0f, 0xc7, 0x2b)            /* XRSTORS [ebx]: #UD unless enabled */
  TRYB(0x0f, 0xc7, 0x23)            /* XSAVES [ebx] */
  TRY(fxsave (%ebx))
  TRY(movl $0xffffffff, 24(%ebx); fxrstor (%ebx))     /* MXCSR reserved bits: #GP */
  TRY(fninit)
  /* Waiting. HLT with IF = 0: the host wakes the vCPU. */
  TRY(hlt)
  TRY(mov %ebx, %eax; xor %ecx, %ecx; xor %edx, %edx; monitor %eax, %ecx, %edx)
  TRY(xor %eax, %eax; xor %ecx, %ecx; mwait %eax, %ecx)
  TRYB(0xf3, 0x0f, 0xae, 0xf3)      /* UMONITOR ebx */
  TRYB(0xf2, 0x0f, 0xae, 0xf0)      /* UMWAIT eax */
  TRYB(0x66, 0x0f, 0xae, 0xf0)      /* TPAUSE eax */
  /* Mode and system-call instructions. */
  TRYB(0x0f, 0x34)                  /* SYSENTER with SYSENTER_CS = 0: #GP */
  TRYB(0x0f, 0x35)                  /* SYSEXIT */
  TRYB(0x0f, 0x05)                  /* SYSCALL */
  TRYB(0x0f, 0x07)                  /* SYSRET */
  TRYB(0x0f, 0x01, 0xf8)            /* SWAPGS */
  TRYB(0x0f, 0xaa)                  /* RSM */
  TRYB(0x0f, 0x37)                  /* GETSEC */
  TRYB(0x0f, 0x01, 0xcf)            /* ENCLS */
  TRYB(0x0f, 0x01, 0xd7)            /* ENCLU */
  TRYB(0x0f, 0x01, 0xc0)            /* ENCLV */
  TRYB(0x0f, 0x01, 0xc5)            /* PCONFIG */
  TRYB(0x0f, 0x01, 0xee)            /* RDPKRU */
  TRYB(0x0f, 0x01, 0xca)            /* CLAC */
  TRYB(0x0f, 0x01, 0xcb)            /* STAC */
  TRYB(0x0f, 0x01, 0xe8)            /* SERIALIZE */
  TRYB(0x0f, 0xff, 0x00)            /* UD0 */
  TRYB(0x0f, 0xb9, 0x00)            /* UD1 */
  TRY(ud2)
  TRY(int3)
  TRYB(0xf1)                        /* INT1 (ICEBP) */
  TRY(int $0x80)
  TRY(int $0x02)
  TRY(int $0xff)
  TRY(mov $0x7fffffff, %eax; add %eax, %eax; into)
  TRY(bound %eax, (%ebx))
  TRYB(0xf0, 0x90)                  /* LOCK NOP: #UD */
  TRY(mov $0x3fd, %dx; in %dx, %al; mov $0x80, %dx; out %al, %dx)
  TRY(mov $0x10, %ax; mov %ax, %ss)                  /* an interrupt shadow */
  TRY(sti; cli)
  TRY(pushf; popf)
  /* Hypercalls the hypervisor does not know, and bad arguments to the one it does. */
  TRY(mov $0xffffffff, %eax; vmcall)
  TRY(mov $0x20, %eax; vmcall)
  TRY(mov $0x31, %eax; vmcall)
  TRY(mov $HC_INJECT_INTERRUPT, %eax; mov $0x2, %edi; vmcall)   /* vector 2 as an interrupt */
  TRY(mov $HC_INJECT_INTERRUPT, %eax; mov $0x1000, %edi; vmcall)
  mov faults, %eax
  mov $privileged_text, %esi
  call putline

  /* ---- VMX: every instruction exits (SDM Vol. 3C 25.1.2) or is #UD; the host gives #UD ---- */
  TRY(mov $0x480, %ecx; rdmsr)                        /* VMX capability MSRs */
  TRY(mov $0x48b, %ecx; rdmsr)
  TRY(mov saved_cr4, %eax; or $(1 << 13), %eax; mov %eax, %cr4)   /* CR4.VMXE: host #GP */
  TRY(vmxon (%ebx))
  TRY(vmclear (%ebx))
  TRY(vmptrld (%ebx))
  TRY(vmptrst (%ebx))
  TRY(mov $0x681e, %eax; vmread %eax, %edx)
  TRY(mov $0x681e, %eax; vmwrite %edx, %eax)
  TRY(vmlaunch)
  TRY(vmresume)
  TRY(vmxoff)
  TRY(xor %eax, %eax; invept (%ebx), %eax)
  TRY(xor %eax, %eax; invvpid (%ebx), %eax)
  TRY(xor %eax, %eax; vmfunc)
  TRY(mov saved_cr4, %eax; or $(1 << 14), %eax; mov %eax, %cr4)   /* CR4.SMXE */
  mov faults, %eax
  mov $vmx_text, %esi
  call putline

  /* ---- SVM (AMD APM Vol. 3): #UD here (no SVM on this vCPU, EFER.SVME refused) ---- */
  TRY(mov %ebx, %eax; vmrun)
  TRY(vmmcall)
  TRY(mov %ebx, %eax; vmload)
  TRY(mov %ebx, %eax; vmsave)
  TRY(stgi)
  TRY(clgi)
  TRY(mov %ebx, %eax; skinit)
  TRY(mov %ebx, %eax; xor %ecx, %ecx; invlpga)
  TRYB(0x0f, 0x01, 0xfe)            /* INVLPGB */
  TRYB(0x0f, 0x01, 0xff)            /* TLBSYNC */
  TRYB(0xf2, 0x0f, 0x01, 0xff)      /* PVALIDATE */
  TRYB(0xf3, 0x0f, 0x01, 0xff)      /* RMPADJUST */
  mov faults, %eax
  mov $svm_text, %esi
  call putline

  /* ---- random byte sequences ---- */
  /* 32-bit paging (SDM Vol. 3A 4.3) that maps all 4 GiB: the first 4 MiB identity (guest RAM
   * is the first 2 MiB), every other page onto 16 scratch frames. A wild access or a wild ESP
   * lands in scratch memory (or is the guest's #PF above RAM in the first 4 MiB), never on an
   * address the hypervisor has no memory for. */
  mov $RANDOM_PD, %edi
  xor %eax, %eax
  mov $(3 * 1024), %ecx            /* PD, identity PT, alias PT */
  rep stosl
  mov $RANDOM_PD, %edi
  mov $(RANDOM_ALIAS_PT + 3), %eax /* present, writable */
  mov $1024, %ecx
  rep stosl
  movl $(RANDOM_PT + 3), RANDOM_PD
  mov $RANDOM_PT, %edi
  mov $3, %eax
  mov $(GUEST_RAM >> 12), %ecx
8:
  stosl
  add $0x1000, %eax
  loop 8b
  mov $RANDOM_ALIAS_PT, %edi
  xor %ebx, %ebx
  mov $1024, %ecx
11:
  mov %ebx, %eax
  and $0xf, %eax
  shl $12, %eax
  add $(SCRATCH_FRAMES + 3), %eax
  stosl
  inc %ebx
  loop 11b
  mov $RANDOM_PD, %eax
  mov %eax, %cr3
  mov saved_cr0, %eax
  or $0x80000000, %eax             /* CR0.PG: exits, the host's bit */
  mov %eax, saved_cr0
  mov %eax, %cr0
  call timer_start
  mov $PAD_AREA, %edi              /* INT3 everywhere a wild jump nearby may land */
  mov $0xcc, %al
  mov $PAD_BYTES, %ecx
  rep stosb
  movl $0x2545f491, seed
random_next:
  cli
  mov $0x10, %ax
  mov %ax, %ds
  mov %ax, %es
  mov %ax, %fs
  mov %ax, %gs
  mov %ax, %ss
  mov $STACK_TOP, %esp
  lgdtl gdt_desc
  lidtl idt_desc
  mov saved_cr4, %eax
  mov %eax, %cr4
  mov $RANDOM_PD, %eax
  mov %eax, %cr3
  mov saved_cr0, %eax              /* exits only when PG or another host bit changed */
  mov %eax, %cr0
  mov $0x400, %eax
  mov %eax, %dr7
  cld
  incl sequences
  testl $(PRINT_EVERY - 1), sequences
  jnz 3f
  mov sequences, %eax
  mov $random_text, %esi
  call putline
3:
  mov $RANDOM_BUF, %edi
  mov $(RANDOM_LEN / 4), %ebx
4:
  call xorshift
  mov $4, %ecx
9:
  mov %al, %dl                     /* INS/OUTS (0x6c-0x6f) become IN/OUT DX (0xec-0xef): with */
  and $0xfc, %dl                   /* a REP prefix and ECX pointing at scratch, INS would sweep */
  cmp $0x6c, %dl                   /* over this guest's page tables and end this phase at once */
  jne 10f
  xor $0x80, %al
10:
  stosb
  shr $8, %eax
  loop 9b
  dec %ebx
  jnz 4b
  mov $0xcccccccc, %eax            /* INT3 after the sequence */
  stosl
  stosl
  movl $random_next, resume_eip
  movb $1, abort_on_timer
  mov $SCRATCH, %eax
  mov %eax, %ebx
  mov %eax, %ecx
  mov %eax, %edx
  mov %eax, %esi
  mov %eax, %edi
  mov %eax, %ebp
  sti
  jmp RANDOM_BUF

/* xorshift32 (Marsaglia 2003): eax = next. */
xorshift:
  mov seed, %eax
  mov %eax, %edx
  shl $13, %edx
  xor %edx, %eax
  mov %eax, %edx
  shr $17, %edx
  xor %edx, %eax
  mov %eax, %edx
  shl $5, %edx
  xor %edx, %eax
  mov %eax, seed
  ret

/* The standard operands: memory forms address SCRATCH. */
reset_regs:
  mov $SCRATCH, %ebx
  mov $SCRATCH, %esi
  mov $(SCRATCH + 0x800), %edi
  xor %eax, %eax
  xor %ecx, %ecx
  xor %edx, %edx
  ret

/* x2APIC periodic timer at 100 Hz on HOSTILE_TIMER_VECTOR (as demo.S). */
timer_start:
  mov $MSR_APIC_BASE, %ecx
  rdmsr
  or $0xc00, %eax
  wrmsr
  mov $X2_SVR, %ecx
  mov $0x1ff, %eax
  xor %edx, %edx
  wrmsr
  mov $0x40000010, %eax
  cpuid
  test %ebx, %ebx
  jnz 5f
  mov $10000, %ebx
5:
  imul $10, %ebx
  mov $X2_DIVIDE, %ecx
  mov $0xb, %eax
  xor %edx, %edx
  wrmsr
  mov $X2_LVT_TIMER, %ecx
  mov $(HOSTILE_TIMER_VECTOR | (1 << 17)), %eax
  wrmsr
  mov $X2_INITIAL, %ecx
  mov %ebx, %eax
  wrmsr
  movb $1, timer_on
  ret

hello: .asciz "hostile_instr: ring 0, privileged, VMX, SVM, then random bytes\n"
privileged_text: .asciz "hostile_instr: privileged done, faults "
vmx_text: .asciz "hostile_instr: vmx done, faults "
svm_text: .asciz "hostile_instr: svm done, faults "
random_text: .asciz "hostile_instr: random "
  .balign 4
saved_cr0: .long 0
saved_cr4: .long 0
saved_esp: .long 0
bit: .long 0
seed: .long 0
sequences: .long 0
