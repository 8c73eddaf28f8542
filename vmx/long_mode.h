// IA-32e (long) mode for guests under unrestricted guest (pure, host-tested): what a guest's
// WRMSR to IA32_EFER and its MOV to CR0 that changes PG do, and the "IA-32e mode guest" VM-entry
// control that must follow EFER.LMA.
//
// Lantern intercepts both: IA32_EFER through the MSR bitmap and CR0.PG through the CR0
// guest/host mask (SDM Vol. 3C 24.6.6), so the VMCS guest EFER and the entry control are always
// the hypervisor's decision: with the "load IA32_EFER" entry control, VM entry checks that
// EFER.LMA equals "IA-32e mode guest" and, when CR0.PG = 1, that LME equals LMA (SDM Vol. 3C
// 26.2.4 / 26.3.1.1); with "IA-32e mode guest" = 1 it also checks CR0.PG = 1 and CR4.PAE = 1.
#pragma once

#include <cstdint>

#include "vmx/cr_access.h"  // kCr0PgBit, kCr0CdBit, kCr0NwBit

namespace lantern::vmx {

// IA32_EFER (SDM Vol. 3A 2.2.1, Figure 2-4; Vol. 4 Table 2-2, MSR 0xC0000080).
inline constexpr uint32_t kMsrIa32Efer = 0xc0000080;
inline constexpr uint64_t kEferSce = 1ull << 0;   // SYSCALL enable
inline constexpr uint64_t kEferLme = 1ull << 8;   // IA-32e mode enable
inline constexpr uint64_t kEferLma = 1ull << 10;  // IA-32e mode active (read-only)
inline constexpr uint64_t kEferNxe = 1ull << 11;  // execute-disable enable
// CR4.PAE (SDM Vol. 3A 2.5).
inline constexpr uint64_t kCr4PaeBit = 1ull << 5;
// Bit 9 of the VM-entry controls, "IA-32e mode guest" (SDM Vol. 3C 24.8.1, Table 24-12).
inline constexpr uint32_t kEntryIa32eModeGuest = 1u << 9;
// Bit 13 of a segment's access rights, L: 64-bit code segment (SDM Vol. 3C 24.4.1, Table 24-2).
inline constexpr uint32_t kSegmentArLong = 1u << 13;
// Bit 14 of a segment's access rights, D/B: for CS the default operand size, 32-bit when set
// (SDM Vol. 3C 24.4.1, Table 24-2; Vol. 3A 3.4.5).
inline constexpr uint32_t kSegmentArDefaultBig = 1u << 14;

struct EferWriteResult {
  bool gp = false;          // inject #GP(0), change nothing
  const char* reason = "";  // why, for the log
  uint64_t efer = 0;        // the new guest IA32_EFER
};

// A guest WRMSR to IA32_EFER. `writable` are the bits the guest may set (SCE, LME, NXE as the
// CPU offers them). #GP for any other bit (reserved, SDM Vol. 4 Table 2-2) and for changing LME
// while CR0.PG = 1 (SDM Vol. 3A 9.8.5: LME may change only with paging off). LMA is read-only:
// the written value of bit 10 is ignored and the current LMA is kept.
EferWriteResult evaluate_efer_write(uint64_t current_efer, uint64_t value, uint64_t guest_cr0,
                                    uint64_t writable);

struct PagingTransition {
  bool gp = false;
  const char* reason = "";
  uint64_t efer = 0;        // the new guest IA32_EFER (LMA updated)
  bool ia32e_mode = false;  // the new value of the "IA-32e mode guest" entry control
};

// A guest MOV to CR0 (SDM Vol. 3A 9.8.5 "Initializing IA-32e Mode", Vol. 2B MOV CR):
//  - PG 0 -> 1 with EFER.LME = 1 activates IA-32e mode (LMA = 1); it needs CR4.PAE = 1 (#GP
//    otherwise).
//  - PG 1 -> 0 with LMA = 1 deactivates it (LMA = 0); only from compatibility mode: in 64-bit
//    code (CS.L = 1) it is #GP.
//  - Anything else leaves EFER as it is.
PagingTransition evaluate_paging_transition(uint64_t old_cr0, uint64_t new_cr0, uint64_t cr4, uint64_t efer,
                                            bool cs_long);

// The VM-entry controls with "IA-32e mode guest" set exactly when `efer` has LMA.
uint32_t entry_controls_following_efer(uint32_t entry_controls, uint64_t efer);

// Operand size of a MOV to/from CRn (SDM Vol. 2B MOV CR): 64 bits in 64-bit mode (IA-32e mode
// active and CS.L = 1), 32 bits otherwise.
uint64_t cr_operand_mask(bool ia32e_mode, bool cs_long);

// PAE paging (CR0.PG = 1, CR4.PAE = 1, IA32_EFER.LMA = 0) keeps its four PDPTEs in registers
// loaded by MOV to CR0/CR3/CR4 (SDM Vol. 3A 4.4.1). Under EPT they are the VMCS fields
// GUEST_PDPTR0-3, which the processor loads itself only for MOVs it executes; a MOV the
// hypervisor emulates must load them too (SDM Vol. 3C 28.4.1, 26.3.2.4).
inline constexpr uint64_t kCr4PgeBit = 1ull << 7;    // SDM Vol. 3A 2.5
inline constexpr uint64_t kCr4PseBit = 1ull << 4;
inline constexpr uint64_t kCr4SmepBit = 1ull << 20;
inline constexpr uint64_t kPae3PdptMask = 0xffffffe0ull;  // CR3 bits 31:5 (SDM Vol. 3A Table 4-7)

// Whether the MOV to CR`cr` from `old_value` to `new_value` loads the PDPTEs, given the CR0,
// CR4 and EFER in force after it (SDM Vol. 3A 4.4.1: MOV to CR3; MOV to CR0 changing PG, CD or
// NW; MOV to CR4 changing PAE, PGE, PSE or SMEP; each only when PAE paging is in use after it).
bool mov_to_cr_loads_pdptes(unsigned cr, uint64_t old_value, uint64_t new_value, uint64_t cr0_after,
                            uint64_t cr4_after, uint64_t efer);
// A PDPTE with P = 1 and a reserved bit set (bits 2:1, 8:5, 63:max_phys_bits; SDM Vol. 3A
// Table 4-8): the MOV that loads it is #GP(0) and changes nothing.
bool pae_pdpte_reserved_bits_set(uint64_t pdpte, uint8_t max_phys_bits);

}  // namespace lantern::vmx
