// A guest's own paging: linear address -> guest-physical address through the page tables the
// guest built, read through a seam. Portable (host-tested). Used where the hypervisor must read
// what the guest's code sees, e.g. the instruction behind an MMIO exit.
//
// Modes (SDM Vol. 3A 4.1.1, Table 4-1):
//   CR0.PG = 0                       no paging: linear = physical (32-bit outside IA-32e mode)
//   CR0.PG = 1, CR4.PAE = 0          32-bit paging (4.3): PD, PT; 4 MiB pages with CR4.PSE
//   CR0.PG = 1, CR4.PAE = 1, LMA = 0 PAE paging (4.4): PDPT (4 entries), PD, PT; 2 MiB pages
//   CR0.PG = 1, LMA = 1              4-level paging (4.5): PML4, PDPT, PD, PT; 1 GiB / 2 MiB pages
// 5-level paging (CR4.LA57) is refused (kUnsupported). Only presence is checked: the walk answers
// "where", never whether the guest may access (no U/S, R/W or NX checks; the CPU made those).
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::guest {

struct GuestPagingState {
  uint64_t cr0 = 0;
  uint64_t cr3 = 0;
  uint64_t cr4 = 0;
  uint64_t efer = 0;
};

// Reads guest-physical memory for the walker (the kernel walks the VM's EPT; tests use a map).
class GuestPhysicalReader {
 public:
  virtual ~GuestPhysicalReader() = default;
  // kNotFound when `gpa` is not guest RAM.
  virtual Result<uint64_t> read_u64(uint64_t gpa) const = 0;
  virtual Result<uint32_t> read_u32(uint64_t gpa) const = 0;
};

// kNotFound for a non-present entry on the way (detail: the level, 4 = PML4 ... 1 = PT) or a
// table outside guest RAM; kUnsupported for 5-level paging; kInvalidArgument for a
// non-canonical address in IA-32e mode.
Result<uint64_t> guest_linear_to_physical(uint64_t linear, const GuestPagingState& state,
                                          const GuestPhysicalReader& memory);

}  // namespace lantern::guest
