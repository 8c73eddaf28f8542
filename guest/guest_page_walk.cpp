#include "guest/guest_page_walk.h"

namespace lantern::guest {
namespace {

// Control bits (SDM Vol. 3A 2.5 "Control Registers", 2.2.1 "Extended Feature Enable Register").
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pse = 1ull << 4;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kCr4La57 = 1ull << 12;
constexpr uint64_t kEferLma = 1ull << 10;

// Paging-structure entries (SDM Vol. 3A 4.3 Table 4-4..4-6, 4.4 Table 4-8..4-11, 4.5 Table
// 4-15..4-20): bit 0 present, bit 7 page size (a PDE or PDPTE that maps a page).
constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kPageSize = 1ull << 7;
// Bits 51:12 of a PAE / 4-level entry hold the next table's or page's address (M = 52 at most).
constexpr uint64_t kAddressMask = 0x000ffffffffff000ull;

Error not_present(unsigned level) {
  return make_error(ErrorCode::kNotFound, "guest page walk: an entry on the way is not present", level);
}

// 32-bit paging (SDM Vol. 3A 4.3): CR3[31:12] -> PD (index 31:22) -> PT (index 21:12).
Result<uint64_t> walk_32bit(uint32_t linear, const GuestPagingState& s, const GuestPhysicalReader& memory) {
  const uint64_t pde_address = (s.cr3 & 0xfffff000u) + ((linear >> 22) & 0x3ffu) * 4;
  const uint32_t pde = TRY(memory.read_u32(pde_address));
  if ((pde & kPresent) == 0) return not_present(2);
  if ((pde & kPageSize) != 0 && (s.cr4 & kCr4Pse) != 0) {
    // A 4 MiB page: bits 31:22 of the PDE, plus bits 20:13 as physical bits 39:32 (PSE-36,
    // Table 4-5).
    const uint64_t high = (static_cast<uint64_t>(pde >> 13) & 0xffu) << 32;
    return high | (pde & 0xffc00000u) | (linear & 0x3fffffu);
  }
  const uint64_t pte_address = (pde & 0xfffff000u) + ((linear >> 12) & 0x3ffu) * 4;
  const uint32_t pte = TRY(memory.read_u32(pte_address));
  if ((pte & kPresent) == 0) return not_present(1);
  return (pte & 0xfffff000u) | (linear & 0xfffu);
}

// The PD and PT levels shared by PAE and 4-level paging (9 index bits each).
Result<uint64_t> walk_pd(uint64_t linear, uint64_t pd, const GuestPhysicalReader& memory) {
  const uint64_t pde = TRY(memory.read_u64((pd & kAddressMask) + ((linear >> 21) & 0x1ff) * 8));
  if ((pde & kPresent) == 0) return not_present(2);
  if ((pde & kPageSize) != 0) return (pde & kAddressMask & ~0x1fffffull) | (linear & 0x1fffff);  // 2 MiB
  const uint64_t pte = TRY(memory.read_u64((pde & kAddressMask) + ((linear >> 12) & 0x1ff) * 8));
  if ((pte & kPresent) == 0) return not_present(1);
  return (pte & kAddressMask) | (linear & 0xfff);
}

}  // namespace

Result<uint64_t> guest_linear_to_physical(uint64_t linear, const GuestPagingState& s,
                                          const GuestPhysicalReader& memory) {
  const bool ia32e = (s.efer & kEferLma) != 0;
  if ((s.cr0 & kCr0Pg) == 0) return ia32e ? linear : (linear & 0xffffffffu);
  if ((s.cr4 & kCr4Pae) == 0) return walk_32bit(static_cast<uint32_t>(linear), s, memory);
  if (!ia32e) {
    // PAE paging (SDM Vol. 3A 4.4): CR3[31:5] -> 4 PDPTEs (index 31:30). The CPU caches the
    // PDPTEs at MOV to CR3 (4.4.1); reading them from memory matches unless the guest changed
    // them without reloading CR3.
    const uint32_t low = static_cast<uint32_t>(linear);
    const uint64_t pdpte = TRY(memory.read_u64((s.cr3 & 0xffffffe0u) + ((low >> 30) & 3u) * 8));
    if ((pdpte & kPresent) == 0) return not_present(3);
    return walk_pd(low, pdpte, memory);
  }
  if ((s.cr4 & kCr4La57) != 0) return make_error(ErrorCode::kUnsupported, "guest page walk: 5-level paging");
  // 4-level paging (SDM Vol. 3A 4.5): bits 63:47 must equal bit 47 (canonical, 3.3.7.1).
  const uint64_t upper = linear >> 47;
  if (upper != 0 && upper != 0x1ffff) {
    return make_error(ErrorCode::kInvalidArgument, "guest page walk: non-canonical address");
  }
  const uint64_t pml4e = TRY(memory.read_u64((s.cr3 & kAddressMask) + ((linear >> 39) & 0x1ff) * 8));
  if ((pml4e & kPresent) == 0) return not_present(4);
  const uint64_t pdpte = TRY(memory.read_u64((pml4e & kAddressMask) + ((linear >> 30) & 0x1ff) * 8));
  if ((pdpte & kPresent) == 0) return not_present(3);
  if ((pdpte & kPageSize) != 0) return (pdpte & kAddressMask & ~0x3fffffffull) | (linear & 0x3fffffff);  // 1 GiB
  return walk_pd(linear, pdpte, memory);
}

}  // namespace lantern::guest
