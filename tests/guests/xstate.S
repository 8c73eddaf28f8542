/* Extended-state guest (vmx/hw/vmx_selftests.cpp, vmx_xstate_isolation), in 32-bit protected
 * mode (pm32.inc; VEX/AVX instructions are #UD in real mode, SDM Vol. 2A 2.3.11).
 *   0x40  CPUID.01H:ECX                      (then CR4.OSFXSR/OSXMMEXCPT, and OSXSAVE with XSAVE)
 *   XSETBV with four invalid values, each a #GP(0) reported by the IDT handler (0x31, 13, 0)
 *   0x42  XGETBV(0) after a valid XSETBV (x87|SSE, plus AVX when CPUID says so)
 *   0x43  the pattern is in XMM0, XMM7, MXCSR (and YMM1 with AVX); then 0x44 three times while
 *         the host clobbers its own XMM registers between the exits
 *   0x45  edi = mismatch bits (0: XMM0, 1: XMM7, 2: MXCSR, 3: YMM1): 0 when intact */
#include "guest_header.inc"
GUEST_HEADER("xstate")

#define HC_XS_CPUID 0x40
#define HC_XS_XCR0 0x42
#define HC_XS_LOADED 0x43
#define HC_XS_TICK 0x44
#define HC_XS_RESULT 0x45
#define CPUID1_ECX_XSAVE (1 << 26)
#define CPUID1_ECX_AVX (1 << 28)
/* CR4 bits (SDM Vol. 3A 2.5): OSFXSR 9, OSXMMEXCPT 10, OSXSAVE 18. */
#define CR4_SSE ((1 << 9) | (1 << 10))
#define CR4_OSXSAVE (1 << 18)

#include "pm32.inc"

pm32_main:
  mov $1, %eax
  xor %ecx, %ecx
  cpuid
  mov %ecx, %ebp
  mov $HC_XS_CPUID, %eax
  mov %ebp, %edi
  HYPERCALL

  mov %cr4, %eax
  or $CR4_SSE, %eax
  test $CPUID1_ECX_XSAVE, %ebp
  jz 1f
  or $CR4_OSXSAVE, %eax
1:
  mov %eax, %cr4
  test $CPUID1_ECX_XSAVE, %ebp
  jz no_xsave

  movl $3, skip_len           /* XSETBV is 0f 01 d1 */
  xor %ecx, %ecx              /* XCR0 = 0: bit 0 clear */
  xor %edx, %edx
  xor %eax, %eax
  xsetbv
  xor %ecx, %ecx              /* x87 | AVX without SSE */
  xor %edx, %edx
  mov $5, %eax
  xsetbv
  mov $1, %ecx                /* XCR1 */
  xor %edx, %edx
  mov $3, %eax
  xsetbv
  xor %ecx, %ecx              /* bit 62: not supported */
  mov $0x40000000, %edx
  mov $3, %eax
  xsetbv
  movl $0, skip_len

  xor %ecx, %ecx
  xor %edx, %edx
  mov $3, %eax
  test $CPUID1_ECX_AVX, %ebp
  jz 2f
  mov $7, %eax
2:
  xsetbv
  xor %ecx, %ecx
  xgetbv
  mov %eax, %edi
  mov %edx, %esi
  mov $HC_XS_XCR0, %eax
  HYPERCALL
  jmp 3f
no_xsave:
  and $~CPUID1_ECX_AVX, %ebp  /* no XSAVE, no AVX state */
3:
  movdqu gpat0, %xmm0
  movdqu gpat1, %xmm7
  ldmxcsr gmxcsr
  test $CPUID1_ECX_AVX, %ebp
  jz 4f
  vmovdqu gypat, %ymm1
4:
  mov $HC_XS_LOADED, %eax
  HYPERCALL
  mov $HC_XS_TICK, %eax
  HYPERCALL
  mov $HC_XS_TICK, %eax
  HYPERCALL
  mov $HC_XS_TICK, %eax
  HYPERCALL

  movdqu %xmm0, out0
  movdqu %xmm7, out1
  stmxcsr outmx
  xor %ebx, %ebx
  cld
  mov $gpat0, %esi
  mov $out0, %edi
  mov $16, %ecx
  repe cmpsb
  je 5f
  or $1, %ebx
5:
  mov $gpat1, %esi
  mov $out1, %edi
  mov $16, %ecx
  repe cmpsb
  je 6f
  or $2, %ebx
6:
  mov outmx, %eax
  cmp gmxcsr, %eax
  je 7f
  or $4, %ebx
7:
  test $CPUID1_ECX_AVX, %ebp
  jz 8f
  vmovdqu %ymm1, outy
  mov $gypat, %esi
  mov $outy, %edi
  mov $32, %ecx
  repe cmpsb
  je 8f
  or $8, %ebx
8:
  mov $HC_XS_RESULT, %eax
  mov %ebx, %edi
  HYPERCALL
  /* CR4: setting VMXE is #GP(0) (MOV to CR4 is 0f 22 e0); reading CR4 shows the shadow. */
  movl $3, skip_len
  mov %cr4, %eax
  or $(1 << 13), %eax
  mov %eax, %cr4
  movl $0, skip_len
  mov %cr4, %eax
  mov %eax, %edi
  mov $0x46, %eax
  HYPERCALL
9:
  hlt
  jmp 9b

  .balign 32
gpat0: .long 0x01234567, 0x89abcdef, 0xfedcba98, 0x76543210
gpat1: .long 0x11111111, 0x22222222, 0x33333333, 0x44444444
gypat: .long 0xa5a5a5a5, 0x5a5a5a5a, 0xdeadbeef, 0xfeedface, 0x0badf00d, 0xcafebabe, 0x13579bdf, 0x2468ace0
gmxcsr: .long 0x7f80           /* all exceptions masked, RC = 11b (toward zero): SDM Vol. 1 10.2.3 */
out0: .fill 16, 1, 0
out1: .fill 16, 1, 0
outy: .fill 32, 1, 0
outmx: .long 0
