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

}  // namespace lantern::vmx
