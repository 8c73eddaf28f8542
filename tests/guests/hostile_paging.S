/* hostile_paging: writes its own page tables, and then the xAPIC page, with unusual
 * instructions (32-bit protected mode).
 *
 * Part 1, 32-bit paging (SDM Vol. 3A 4.3): a page directory whose last entry maps the directory
 * itself, one page table identity-mapping the first 4 MiB. The test page V = 0x300000 (outside
 * guest RAM as an identity page) is pointed alternately at two marker frames A and B by a PTE
 * write done with MOV, XCHG, LOCK CMPXCHG, LOCK XADD, LOCK BTS/BTR, REP MOVSD, STOSD, MOVNTI,
 * SSE MOVD, PUSH (with ESP in the page table), CMPXCHG8B, ADD and SUB, and through the
 * self-map at 0xffc00000; after each, INVLPG (or a CR3 reload) and a read of V must see the
 * marker it points to. Then the PTE is made not present: a read of V must #PF with CR2 = V.
 * Line: `hostile_paging: pte writes <n>, wrong <m>, page faults <k>`.
 *
 * Part 2, PAE paging without IA-32e mode (SDM Vol. 3A 4.4): the four PDPTEs are loaded at the
 * MOV to CR0 that sets PG, an exit the hypervisor emulates, so it must load them itself (SDM
 * Vol. 3C 28.4.1 "Guest-Physical Address Translation"... 26.3.2.4). A read of marker A through
 * a 2 MiB page. Line: `hostile_paging: pae ok <marker>`.
 *
 * Part 3, the xAPIC page at 0xfee00000 with paging off: MOVs through an FS segment based at the
 * page, at reserved, read-only and unaligned offsets (the hypervisor emulates or ignores them),
 * then LOCK OR to the TPR, which it does not emulate: the vCPU must stop with that reason.
 * Lines: `hostile_paging: apic movs done <version>`, then `hostile_paging: apic lock or` (the
 * last; `hostile_paging: survived` must never appear). */
#include "guest_header.inc"
GUEST_HEADER("hostile_paging")
#include "hostile.inc"

#define STACK_TOP 0x4f000
#define PD 0x60000
#define PT0 0x61000
#define PDPT 0x62000               /* PAE: 32-byte aligned */
#define PAE_PD 0x63000
#define FRAME_A 0x80000
#define FRAME_B 0x81000
#define MARK_A 0x41414141
#define MARK_B 0x42424242
#define PAGE_V 0x300000
#define PTE_V (PT0 + (PAGE_V >> 12) * 4)
#define SELFMAP_PTE_V (0xffc00000 + (PAGE_V >> 12) * 4)   /* PD[1023] = PD: PT0 at 0xffc00000 */
#define P_RW 0x3                   /* present, writable (SDM Vol. 3A Table 4-6) */
#define PDE_2M 0x83                /* PAE PDE: present, writable, PS (Table 4-10) */
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define CR4_OSFXSR 0x200
#define APIC 0xfee00000
#define APIC_SELECTOR 0x18

/* CHECK(expected frame): flush V, read it, count a write and a wrong marker. */
#define CHECK(frame) invlpg PAGE_V; mov $(frame), %eax; call check_v

pm32_main:
  cld
  mov $STACK_TOP, %esp
  mov $hello, %esi
  call puts32
  movl $MARK_A, FRAME_A
  movl $MARK_B, FRAME_B
  /* Page directory: PD[0] -> PT0, PD[1023] -> PD (the self-map). */
  mov $PD, %edi
  xor %eax, %eax
  mov $2048, %ecx
  rep stosl
  movl $(PT0 + P_RW), PD
  movl $(PD + P_RW), PD + 1023 * 4
  mov $PT0, %edi
  mov $P_RW, %eax
  mov $1024, %ecx
1:
  stosl
  add $0x1000, %eax
  loop 1b
  movl $(FRAME_A + P_RW), PTE_V
  mov $PD, %eax
  mov %eax, %cr3
  mov %cr4, %eax
  or $CR4_OSFXSR, %eax
  mov %eax, %cr4
  mov %cr0, %eax
  or $CR0_PG, %eax
  mov %eax, %cr0                   /* exits: PG is the host's */
  CHECK(FRAME_A)

  /* The unusual writers; each leaves the PTE pointing at the frame named in its CHECK. */
  mov $(FRAME_B + P_RW), %eax
  xchg %eax, PTE_V
  CHECK(FRAME_B)
  mov PTE_V, %eax                  /* the value now, with the accessed bit the read set */
  mov $(FRAME_A + P_RW), %ecx
  lock cmpxchg %ecx, PTE_V
  CHECK(FRAME_A)
  mov $(FRAME_B - FRAME_A), %eax
  lock xadd %eax, PTE_V
  CHECK(FRAME_B)
  lock btrl $12, PTE_V             /* 0x81003 -> 0x80003 */
  CHECK(FRAME_A)
  lock btsl $12, PTE_V
  CHECK(FRAME_B)
  movl $(FRAME_A + P_RW), scratch
  mov $scratch, %esi
  mov $PTE_V, %edi
  mov $1, %ecx
  rep movsl
  CHECK(FRAME_A)
  mov $(FRAME_B + P_RW), %eax
  mov $PTE_V, %edi
  stosl
  CHECK(FRAME_B)
  mov $(FRAME_A + P_RW), %eax
  movnti %eax, PTE_V
  sfence
  CHECK(FRAME_A)
  mov $(FRAME_B + P_RW), %eax
  movd %eax, %xmm0
  movd %xmm0, PTE_V
  CHECK(FRAME_B)
  mov %esp, saved_esp
  mov $(PTE_V + 4), %esp
  pushl $(FRAME_A + P_RW)
  mov saved_esp, %esp
  CHECK(FRAME_A)
  mov PTE_V, %eax                  /* CMPXCHG8B: edx:eax = old pair, ecx:ebx = new */
  mov PTE_V + 4, %edx
  mov $(FRAME_B + P_RW), %ebx
  mov %edx, %ecx
  lock cmpxchg8b PTE_V
  CHECK(FRAME_B)
  subl $(FRAME_B - FRAME_A), PTE_V
  CHECK(FRAME_A)
  addl $(FRAME_B - FRAME_A), PTE_V
  CHECK(FRAME_B)
  movl $(FRAME_A + P_RW), SELFMAP_PTE_V
  CHECK(FRAME_A)
  mov $(FRAME_B + P_RW), %eax
  xchg %eax, SELFMAP_PTE_V
  mov %cr3, %eax                   /* a full flush this time */
  mov %eax, %cr3
  mov $FRAME_B, %eax
  call check_v
  /* Not present: a read of V faults (#PF, vector 14) with CR2 = V. */
  andl $~1, PTE_V
  invlpg PAGE_V
  movl $2f, resume_eip
  movl $0, fault_vector
  mov PAGE_V, %eax
2:
  movl $0, resume_eip
  cmpl $14, fault_vector
  jne 3f
  mov %cr2, %eax
  cmp $PAGE_V, %eax
  jne 3f
  incl page_faults
3:
  mov $pte_text, %esi
  call puts32
  mov writes, %eax
  call puthex32
  mov $wrong_text, %esi
  call puts32
  mov wrong, %eax
  call puthex32
  mov $pf_text, %esi
  mov page_faults, %eax
  call putline
  cmpl $0, wrong_mask
  je 6f
  mov $mask_text, %esi
  mov wrong_mask, %eax
  call putline
6:

  /* Part 2: PAE paging, IA32_EFER.LME = 0. */
  mov %cr0, %eax
  and $~CR0_PG, %eax
  mov %eax, %cr0                   /* exits */
  mov $PDPT, %edi
  xor %eax, %eax
  mov $(0x2000 / 4), %ecx          /* PDPT page and PAE_PD */
  rep stosl
  movl $(PAE_PD + 1), PDPT         /* PDPTE: present only (Table 4-8: RW is reserved here) */
  movl $PDE_2M, PAE_PD             /* 0-2 MiB identity */
  mov %cr4, %eax
  or $CR4_PAE, %eax
  mov %eax, %cr4
  mov $PDPT, %eax
  mov %eax, %cr3
  mov %cr0, %eax
  or $CR0_PG, %eax
  mov %eax, %cr0                   /* exits: the hypervisor must load the PDPTEs */
  mov FRAME_A, %eax
  mov $pae_text, %esi
  call putline
  mov %cr0, %eax
  and $~CR0_PG, %eax
  mov %eax, %cr0
  mov %cr4, %eax
  and $~CR4_PAE, %eax
  mov %eax, %cr4

  /* Part 3: the xAPIC page, paging off. FS: a data segment based at the page. */
  lgdtl apic_gdt_desc
  mov $APIC_SELECTOR, %ax
  mov %ax, %fs
  mov %fs:0x30, %eax               /* version */
  mov %eax, apic_version
  mov %fs:0x20, %ecx               /* ID */
  movl $0x10, %fs:0x80             /* TPR */
  mov $0x20, %ebx
  mov %ebx, %fs:0x60(,%ebx,1)      /* TPR again (0x60 + 0x20), through a SIB byte */
  mov %fs:0x80, %edx
  movl $0xffffffff, %fs:0x30       /* read-only: ignored */
  movl $0xffffffff, %fs:0x20       /* ID */
  movl $0x12345678, %fs:0x3f0      /* reserved offset */
  mov %fs:0x3f0, %eax
  mov %fs:0x83, %eax               /* unaligned */
  mov %eax, %fs:0x81
  mov %fs:0xffc, %eax              /* last dword of the page */
  movl $0, %fs:0x80
  mov apic_version, %eax
  mov $apic_text, %esi
  call putline
  mov $lock_text, %esi
  call puts32
  lock orl $0x10, %fs:0x80         /* not emulated: the vCPU stops here */
  mov $survived_text, %esi
  call puts32
4:
  hlt
  jmp 4b

/* eax = the frame V should map: count the write, and a wrong marker. */
check_v:
  mov (%eax), %edx                 /* the marker through the identity map */
  cmp PAGE_V, %edx
  je 5f
  incl wrong
  mov writes, %ecx                 /* which writer: bit n = the n-th check */
  bts %ecx, wrong_mask
5:
  incl writes
  ret

  .balign 8
apic_gdt:
  .quad 0
  .quad 0x00cf9a000000ffff         /* 0x08: code, as pm32.inc */
  .quad 0x00cf92000000ffff         /* 0x10: data */
  .quad 0xfecf92e00000ffff         /* 0x18: data, base 0xfee00000, limit 4 GiB (SDM Vol. 3A 3.4.5) */
apic_gdt_desc:
  .word 4 * 8 - 1
  .long apic_gdt
hello: .asciz "hostile_paging: page tables and the xAPIC page, unusual writers\n"
pte_text: .asciz "hostile_paging: pte writes "
wrong_text: .asciz ", wrong "
pf_text: .asciz ", page faults "
mask_text: .asciz "hostile_paging: wrong writers (bit n = check n) "
pae_text: .asciz "hostile_paging: pae ok "
apic_text: .asciz "hostile_paging: apic movs done "
lock_text: .asciz "hostile_paging: apic lock or\n"
survived_text: .asciz "hostile_paging: survived\n"
  .balign 4
scratch: .long 0
saved_esp: .long 0
writes: .long 0
wrong: .long 0
wrong_mask: .long 0
page_faults: .long 0
apic_version: .long 0
