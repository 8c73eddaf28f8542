/* GeneralRegisters' layout as plain #defines, included by both guest/general_registers.h (which
 * static_asserts every offset against the struct) and the asm entry/exit stub
 * (vmx/hw/vmx_entry.S), so the numbers exist once. Offset = 8 * the hardware register number
 * (SDM Vol. 2A Table 3-1); slot 4 (RSP) is unused: the guest RSP is GUEST_RSP in the VMCS.
 * Preprocessor-only: no C++ here, the assembler includes it. */
#pragma once

#define LANTERN_GPR_RAX 0
#define LANTERN_GPR_RCX 8
#define LANTERN_GPR_RDX 16
#define LANTERN_GPR_RBX 24
#define LANTERN_GPR_RSP_UNUSED 32
#define LANTERN_GPR_RBP 40
#define LANTERN_GPR_RSI 48
#define LANTERN_GPR_RDI 56
#define LANTERN_GPR_R8 64
#define LANTERN_GPR_R9 72
#define LANTERN_GPR_R10 80
#define LANTERN_GPR_R11 88
#define LANTERN_GPR_R12 96
#define LANTERN_GPR_R13 104
#define LANTERN_GPR_R14 112
#define LANTERN_GPR_R15 120
#define LANTERN_GPR_SIZE 128
