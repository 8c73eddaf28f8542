// The nested-paging builder: maps guest-physical ranges to host-physical ranges with 1 GiB /
// 2 MiB / 4 KiB pages in one of two formats, over a page-allocator seam so the host tests can
// run it on ordinary memory. Both formats are 4-level radix trees indexed by the same address
// bits (512 entries per table, bits 47:39 / 38:30 / 29:21 / 20:12), so one walker serves both;
// only the entry encoding differs.
//
// EPT (Intel VMX; SDM Vol. 3C 29.3.2 "EPT Translation Mechanism", Tables 29-1..29-6):
//   every entry: bit 0 read, bit 1 write, bit 2 execute, bit 8 accessed, bit 10 user-mode
//                execute; an entry is not present when bits 2:0 are all 0.
//   PML4E, PDPTE/PDE referencing a table: bits 51:12 = next table; bits 7:3 reserved 0.
//   PDPTE mapping 1 GiB, PDE mapping 2 MiB, PTE mapping 4 KiB: bits 5:3 EPT memory type,
//                bit 6 ignore PAT, bit 7 = 1 for the large pages (ignored in a PTE), bit 9
//                dirty, bits 51:30/51:21/51:12 = page address, bit 63 suppress #VE.
//   EPTP (SDM Vol. 3C 25.6.11): bits 2:0 memory type of the paging structures (UC=0, WB=6),
//                bits 5:3 page-walk length - 1 (3 for 4 levels), bit 6 enable A/D flags,
//                bits 51:12 PML4 address.
//   Misconfigurations refused (29.3.3.1): write without read, execute-only without the
//   capability, reserved memory types 2, 3, 7.
//
// NPT (AMD SVM; APM Vol. 2 15.25 "Nested Paging"): ordinary x86-64 long-mode page-table entries
// (APM Vol. 2 5.3.3, 5.4 "Page-Translation-Table Entry Fields"):
//   bit 0 P, bit 1 R/W, bit 2 U/S, bit 3 PWT, bit 4 PCD, bit 5 A, bit 6 D (leaves), bit 7 PS in
//   a PDPE/PDE (large page), PAT bit 7 in a PTE and bit 12 in a large leaf, bits 51:12 address,
//   bit 63 NX (needs the host's EFER.NXE, APM 15.25.3: the nested walk uses the host's paging
//   mode).
//   Every nested walk is a user access (APM 15.25.5 "Nested Table Walk"), so every entry has
//   U/S = 1 or the guest faults. Read is implied by P: an NPT leaf cannot be write-only or
//   execute-only. The memory type is the host PAT entry that PAT/PCD/PWT select (APM 15.25.8);
//   Lantern keeps the power-on PAT (APM Vol. 2 7.8.2: PA0 WB, PA1 WT, PA2 UC-, PA3 UC), so the
//   builder encodes WB as index 0, WT as 1 and UC as 3, and refuses WC and WP.
//   nCR3 (APM 15.25.4) is the PML4's physical address; the builder leaves its PWT/PCD clear.
//
// Invalidation: adding a translation where none was present needs none (SDM 29.4.2; APM 15.16:
// not-present entries are not cached). Changing or removing a present entry does (INVEPT, or
// TLB_CONTROL flush on the next VMRUN); tlb_flush_needed() reports it until cleared.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::guest {

// The page allocator seam: the kernel's frame allocator, or a fake in the tests.
struct PageAllocator {
  // A 4 KiB-aligned, zero-filled 4 KiB page; returns its physical address.
  virtual Result<uint64_t> alloc_zeroed_page() = 0;
  // Where the kernel (or the test) can access that physical page.
  virtual void* phys_to_virt(uint64_t phys) = 0;
  // Returns a page from alloc_zeroed_page() (used when the tables are torn down).
  virtual void free_page(uint64_t phys) = 0;

 protected:
  ~PageAllocator() = default;
};

// Which entry encoding the builder writes.
enum class PageTableFormat : uint8_t {
  kEpt,  // Intel EPT (SDM Vol. 3C 29.3.2)
  kNpt,  // AMD nested paging: x86-64 long-mode entries (APM Vol. 2 15.25)
};

// Access permissions of a translation, format-independent (EPT stores them as bits 2:0).
inline constexpr uint8_t kAccessRead = 1u << 0;
inline constexpr uint8_t kAccessWrite = 1u << 1;
inline constexpr uint8_t kAccessExecute = 1u << 2;
inline constexpr uint8_t kAccessRwx = kAccessRead | kAccessWrite | kAccessExecute;

// Memory types (SDM Vol. 3A 12.3 / APM Vol. 2 7.4: 0 UC, 1 WC, 4 WT, 5 WP, 6 WB); EPT stores
// them in bits 5:3 of a leaf (SDM Vol. 3C 29.3.7).
enum class MemoryType : uint8_t {
  kUncacheable = 0,
  kWriteCombining = 1,
  kWriteThrough = 4,
  kWriteProtected = 5,
  kWriteBack = 6,
};

// EPT entry bits (SDM Vol. 3C Tables 29-1..29-6).
namespace ept_entry {
inline constexpr uint64_t kRead = 1u << 0;
inline constexpr uint64_t kWrite = 1u << 1;
inline constexpr uint64_t kExecute = 1u << 2;
inline constexpr uint64_t kPermissionMask = 0x7;
inline constexpr unsigned kMemoryTypeShift = 3;  // bits 5:3 (leaf entries)
inline constexpr uint64_t kMemoryTypeMask = uint64_t{7} << 3;
inline constexpr uint64_t kIgnorePat = 1u << 6;  // leaf entries
inline constexpr uint64_t kLargePage = 1u << 7;  // PDPTE (1 GiB) / PDE (2 MiB)
inline constexpr uint64_t kAccessed = 1u << 8;
inline constexpr uint64_t kDirty = 1u << 9;  // leaf entries
inline constexpr uint64_t kUserExecute = 1u << 10;
inline constexpr uint64_t kSuppressVe = uint64_t{1} << 63;       // leaf entries
inline constexpr uint64_t kAddressMask = 0x000ffffffffff000ull;  // bits 51:12
}  // namespace ept_entry

// NPT entry bits: x86-64 long-mode page-table entries (APM Vol. 2 5.4.1, Figures 5-18..5-25).
namespace npt_entry {
inline constexpr uint64_t kPresent = 1u << 0;
inline constexpr uint64_t kWrite = 1u << 1;
inline constexpr uint64_t kUser = 1u << 2;  // required on every level (APM 15.25.5)
inline constexpr uint64_t kWriteThrough = 1u << 3;  // PWT: PAT index bit 0
inline constexpr uint64_t kCacheDisable = 1u << 4;  // PCD: PAT index bit 1
inline constexpr uint64_t kAccessed = 1u << 5;
inline constexpr uint64_t kDirty = 1u << 6;      // leaves
inline constexpr uint64_t kLargePage = 1u << 7;  // PS in a PDPE (1 GiB) / PDE (2 MiB)
inline constexpr uint64_t kPat4K = 1u << 7;      // PAT index bit 2 in a PTE
inline constexpr uint64_t kPatLarge = 1u << 12;  // PAT index bit 2 in a 1 GiB / 2 MiB leaf
inline constexpr uint64_t kNoExecute = uint64_t{1} << 63;
inline constexpr uint64_t kAddressMask = 0x000ffffffffff000ull;  // bits 51:12
}  // namespace npt_entry

// EPTP fields (SDM Vol. 3C 25.6.11).
namespace eptp {
inline constexpr uint64_t kMemoryTypeUc = 0;
inline constexpr uint64_t kMemoryTypeWb = 6;
inline constexpr unsigned kWalkLengthShift = 3;  // bits 5:3 = walk length - 1
inline constexpr uint64_t kEnableAccessedDirty = 1u << 6;
}  // namespace eptp

inline constexpr uint64_t kPageSize4K = uint64_t{1} << 12;
inline constexpr uint64_t kPageSize2M = uint64_t{1} << 21;
inline constexpr uint64_t kPageSize1G = uint64_t{1} << 30;
// A 4-level walk translates 48 bits of guest-physical address (SDM Vol. 3C 29.3.2; APM 5.3.3).
inline constexpr uint64_t kNestedGuestPhysLimit = uint64_t{1} << 48;

// EPTP for a 4-level EPT at pml4_phys. memory_type must be UC or WB (SDM Vol. 3C 25.6.11).
Result<uint64_t> make_eptp(uint64_t pml4_phys, MemoryType memory_type, bool enable_accessed_dirty);

// The builder's knowledge of the CPU (from VmxCapabilities or SvmFeatures).
struct NestedPagingFeatures {
  bool pages_2m = false;       // EPT: IA32_VMX_EPT_VPID_CAP bit 16; NPT: always (APM 15.25.1)
  bool pages_1g = false;       // EPT: bit 17; NPT: CPUID 80000001H:EDX[26] Page1GB
  bool execute_only = false;   // EPT: bit 0; NPT: never (read is implied by P)
  uint8_t max_phys_bits = 52;  // host MAXPHYADDR (CPUID.80000008H:EAX[7:0])
  PageTableFormat format = PageTableFormat::kEpt;
  bool no_execute = true;      // NPT: host EFER.NXE = 1, so bit 63 is NX rather than reserved
};

enum class MapMode : uint8_t {
  kFailIfMapped,  // any existing translation in the range -> kAlreadyExists, nothing changed
  kRemap,         // replace existing translations (splitting large pages as needed)
};

struct NestedTranslation {
  uint64_t hpa = 0;         // the host-physical address gpa translates to
  uint8_t permissions = 0;  // kAccessRead | kAccessWrite | kAccessExecute
  MemoryType memory_type = MemoryType::kUncacheable;
  bool ignore_pat = false;  // EPT only
  uint64_t page_size = 0;   // 4 KiB, 2 MiB or 1 GiB
  uint64_t entry = 0;       // the raw leaf entry
};

class NestedPageTableBuilder {
 public:
  // Allocates the PML4.
  static Result<NestedPageTableBuilder> create(PageAllocator& allocator, const NestedPagingFeatures& features);
  // The tables that already hang off `pml4_phys` (built by another builder, e.g. the VM's), for
  // translate() by whoever keeps only the root (a vCPU's EPTP or nCR3): allocates nothing.
  // `allocator` maps table pages to addresses; only `format` of the features matters to translate.
  static NestedPageTableBuilder attach(PageAllocator& allocator, PageTableFormat format, uint64_t pml4_phys) {
    NestedPagingFeatures features;
    features.format = format;
    return NestedPageTableBuilder(allocator, features, pml4_phys);
  }

  // Maps [gpa, gpa+size) to [hpa, hpa+size). gpa, hpa and size must be 4 KiB-aligned and size
  // non-zero; gpa+size <= 2^48; hpa+size <= 2^max_phys_bits. Uses the largest page size that
  // alignment, the remaining length and the features allow.
  Result<void> map(uint64_t gpa, uint64_t hpa, uint64_t size, uint8_t permissions, MemoryType memory_type,
                   MapMode mode = MapMode::kFailIfMapped);
  // Removes every translation in [gpa, gpa+size); holes are fine. Large pages that straddle
  // the range boundary are split so the part outside stays mapped.
  Result<void> unmap(uint64_t gpa, uint64_t size);
  // Changes the permissions of every translation in [gpa, gpa+size). Every page in the range
  // must be mapped (kNotFound otherwise, with nothing changed).
  Result<void> protect(uint64_t gpa, uint64_t size, uint8_t permissions);
  // kNotFound when gpa has no translation.
  Result<NestedTranslation> translate(uint64_t gpa) const;

  PageTableFormat format() const { return features_.format; }
  uint64_t pml4_phys() const { return pml4_phys_; }
  // EPTP with WB paging structures and a 4-level walk (EPT format).
  uint64_t eptp(bool enable_accessed_dirty = false) const;
  // N_CR3 for the VMCB (NPT format; APM 15.25.4): the PML4 address, PWT/PCD clear.
  uint64_t ncr3() const { return pml4_phys_; }

  bool tlb_flush_needed() const { return tlb_flush_needed_; }
  void clear_tlb_flush_needed() { tlb_flush_needed_ = false; }
  // EPT spelling of the same flag.
  bool invept_needed() const { return tlb_flush_needed_; }
  void clear_invept_needed() { tlb_flush_needed_ = false; }
  // How many table pages (including the PML4) have been allocated.
  uint64_t table_pages() const { return table_pages_; }

  // Frees every paging-structure page reachable from the PML4 at `pml4_phys` (the PML4 itself,
  // PDPTs, PDs and PTs; never the guest memory the leaves map) through `allocator`. Returns how
  // many pages were freed. The tables must no longer be in use (no VMCS/VMCB running on them).
  // Both formats mark "present" with bit 0 set for every entry this builder writes that
  // references a table, and large leaves with bit 7, so one walk frees either.
  static uint64_t release_tables(PageAllocator& allocator, uint64_t pml4_phys);

 private:
  NestedPageTableBuilder(PageAllocator& allocator, const NestedPagingFeatures& features, uint64_t pml4_phys)
      : allocator_(&allocator), features_(features), pml4_phys_(pml4_phys) {}

  uint64_t* table(uint64_t phys) const;
  Result<void> check_range(uint64_t gpa, uint64_t size) const;
  Result<void> check_leaf_attributes(uint8_t permissions, MemoryType memory_type) const;
  bool is_present(uint64_t entry) const;
  uint64_t table_entry(uint64_t table_phys) const;
  uint64_t make_leaf(uint64_t hpa, int level, uint8_t permissions, MemoryType type) const;
  uint8_t leaf_permissions(uint64_t entry) const;
  MemoryType leaf_memory_type(uint64_t entry, int level) const;
  // Walks towards `gpa` without allocating; stops at a not-present entry or a leaf.
  // Returns the entry pointer and its level (3 = PML4E ... 0 = PTE).
  uint64_t* lookup(uint64_t gpa, int* level) const;
  // Allocates a table and fills it with 512 smaller leaves equal to the large leaf `*entry`.
  Result<void> split(uint64_t* entry, int level);
  // Entry at `level` for gpa, creating tables above it and splitting large pages on the way.
  Result<uint64_t*> walk_create(uint64_t gpa, int level);
  // First address >= gpa (and < end) with a present translation, or end.
  uint64_t next_mapped(uint64_t gpa, uint64_t end) const;

  PageAllocator* allocator_;
  NestedPagingFeatures features_;
  uint64_t pml4_phys_;
  uint64_t table_pages_ = 1;
  bool tlb_flush_needed_ = false;
};

}  // namespace lantern::guest
