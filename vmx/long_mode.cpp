#include "vmx/long_mode.h"

#include "vmx/cr_access.h"

namespace lantern::vmx {

EferWriteResult evaluate_efer_write(uint64_t current_efer, uint64_t value, uint64_t guest_cr0,
                                    uint64_t writable) {
  EferWriteResult r;
  const uint64_t requested = value & ~kEferLma;
  if ((requested & ~writable) != 0) {
    r.gp = true;
    r.reason = "IA32_EFER reserved or unsupported bit";
    return r;
  }
  if ((guest_cr0 & kCr0PgBit) != 0 && ((requested ^ current_efer) & kEferLme) != 0) {
    r.gp = true;
    r.reason = "IA32_EFER.LME changed while CR0.PG = 1";
    return r;
  }
  r.efer = requested | (current_efer & kEferLma);
  return r;
}

PagingTransition evaluate_paging_transition(uint64_t old_cr0, uint64_t new_cr0, uint64_t cr4, uint64_t efer,
                                            bool cs_long) {
  PagingTransition t;
  t.efer = efer;
  t.ia32e_mode = (efer & kEferLma) != 0;
  const bool was_paging = (old_cr0 & kCr0PgBit) != 0;
  const bool paging = (new_cr0 & kCr0PgBit) != 0;
  if (!was_paging && paging && (efer & kEferLme) != 0) {
    if ((cr4 & kCr4PaeBit) == 0) {
      t.gp = true;
      t.reason = "CR0.PG with IA32_EFER.LME needs CR4.PAE";
      return t;
    }
    t.efer = efer | kEferLma;
    t.ia32e_mode = true;
  } else if (was_paging && !paging && (efer & kEferLma) != 0) {
    if (cs_long) {
      t.gp = true;
      t.reason = "CR0.PG cleared in 64-bit mode";
      return t;
    }
    t.efer = efer & ~kEferLma;
    t.ia32e_mode = false;
  }
  return t;
}

uint32_t entry_controls_following_efer(uint32_t entry_controls, uint64_t efer) {
  return (efer & kEferLma) != 0 ? (entry_controls | kEntryIa32eModeGuest)
                                : (entry_controls & ~kEntryIa32eModeGuest);
}

uint64_t cr_operand_mask(bool ia32e_mode, bool cs_long) {
  return (ia32e_mode && cs_long) ? ~uint64_t{0} : 0xffffffffull;
}

bool mov_to_cr_loads_pdptes(unsigned cr, uint64_t old_value, uint64_t new_value, uint64_t cr0_after,
                            uint64_t cr4_after, uint64_t efer) {
  const bool pae_paging =
      (cr0_after & kCr0PgBit) != 0 && (cr4_after & kCr4PaeBit) != 0 && (efer & kEferLma) == 0;
  if (!pae_paging) return false;
  const uint64_t changed = old_value ^ new_value;
  switch (cr) {
    case 0: return (changed & (kCr0PgBit | kCr0CdBit | kCr0NwBit)) != 0;
    case 3: return true;
    case 4: return (changed & (kCr4PaeBit | kCr4PgeBit | kCr4PseBit | kCr4SmepBit)) != 0;
    default: return false;
  }
}

bool pae_pdpte_reserved_bits_set(uint64_t pdpte, uint8_t max_phys_bits) {
  if ((pdpte & 1) == 0) return false;  // not present: the other bits are ignored
  constexpr uint64_t kLowReserved = 0x6 | 0x1e0;  // bits 2:1 and 8:5
  const uint64_t high_reserved = max_phys_bits >= 64 ? 0 : ~uint64_t{0} << max_phys_bits;
  return (pdpte & (kLowReserved | high_reserved)) != 0;
}

}  // namespace lantern::vmx
