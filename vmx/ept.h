// An EPT (extended page table) builder: maps guest-physical ranges to host-physical ranges
// with 1 GiB / 2 MiB / 4 KiB pages, over a page-allocator seam so the host tests can run it on
// ordinary memory.
//
// Formats (SDM Vol. 3C 28.3.2 "EPT Translation Mechanism", Tables 28-1..28-6):
//   every entry: bit 0 read, bit 1 write, bit 2 execute (supervisor-mode execute with
//                mode-based execute control), bit 8 accessed, bit 10 user-mode execute;
//                an entry is not present when bits 2:0 are all 0.
//   PML4E (Table 28-1), PDPTE/PDE referencing a table (28-3, 28-5): bits 51:12 = next table;
//                bits 7:3 reserved 0.
//   PDPTE mapping 1 GiB (28-2), PDE mapping 2 MiB (28-4), PTE mapping 4 KiB (28-6):
//                bits 5:3 EPT memory type, bit 6 ignore PAT, bit 7 = 1 for the large pages
//                (ignored in a PTE), bit 9 dirty, bits 51:30/51:21/51:12 = page address,
//                bit 63 suppress #VE.
//   EPTP (SDM Vol. 3C 24.6.11): bits 2:0 memory type of the paging structures (UC=0, WB=6),
//                bits 5:3 page-walk length - 1 (3 for 4 levels), bit 6 enable A/D flags,
//                bits 51:12 PML4 address.
// Misconfigurations this builder refuses to create (28.3.3.1): write without read, execute-only
// without the capability, reserved memory types 2, 3, 7.
//
// INVEPT: adding a translation where none was present needs no invalidation (28.4.2: no
// mappings are cached from not-present entries). Changing or removing a present entry does
// (28.4.3.1); invept_needed() reports it until clear_invept_needed().
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::vmx {

// The page allocator seam: the kernel's frame allocator, or a fake in the tests.
struct PageAllocator {
  // A 4 KiB-aligned, zero-filled 4 KiB page; returns its physical address.
  virtual Result<uint64_t> alloc_zeroed_page() = 0;
  // Where the kernel (or the test) can access that physical page.
  virtual void* phys_to_virt(uint64_t phys) = 0;
  // Returns a page from alloc_zeroed_page() (used when an EPT is torn down).
  virtual void free_page(uint64_t phys) = 0;

 protected:
  ~PageAllocator() = default;
};

// Permission bits, as in bits 2:0 of an EPT entry.
inline constexpr uint8_t kEptRead = 1u << 0;
inline constexpr uint8_t kEptWrite = 1u << 1;
inline constexpr uint8_t kEptExecute = 1u << 2;
inline constexpr uint8_t kEptRwx = kEptRead | kEptWrite | kEptExecute;

// EPT memory types (SDM Vol. 3C 28.3.7 / Vol. 3A 11.3: 0 UC, 1 WC, 4 WT, 5 WP, 6 WB).
enum class EptMemoryType : uint8_t {
  kUncacheable = 0,
  kWriteCombining = 1,
  kWriteThrough = 4,
  kWriteProtected = 5,
  kWriteBack = 6,
};

// Entry bits (SDM Vol. 3C Tables 28-1..28-6).
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

// EPTP fields (SDM Vol. 3C 24.6.11).
namespace eptp {
inline constexpr uint64_t kMemoryTypeUc = 0;
inline constexpr uint64_t kMemoryTypeWb = 6;
inline constexpr unsigned kWalkLengthShift = 3;  // bits 5:3 = walk length - 1
inline constexpr uint64_t kEnableAccessedDirty = 1u << 6;
}  // namespace eptp

inline constexpr uint64_t kPageSize4K = uint64_t{1} << 12;
inline constexpr uint64_t kPageSize2M = uint64_t{1} << 21;
inline constexpr uint64_t kPageSize1G = uint64_t{1} << 30;
// A 4-level walk translates 48 bits of guest-physical address (SDM Vol. 3C 28.3.2).
inline constexpr uint64_t kEptGuestPhysLimit = uint64_t{1} << 48;

// EPTP for a 4-level EPT at pml4_phys. memory_type must be UC or WB (24.6.11).
Result<uint64_t> make_eptp(uint64_t pml4_phys, EptMemoryType memory_type, bool enable_accessed_dirty);

// The builder's knowledge of the CPU (from VmxCapabilities).
struct EptFeatures {
  bool pages_2m = false;       // IA32_VMX_EPT_VPID_CAP bit 16
  bool pages_1g = false;       // bit 17
  bool execute_only = false;   // bit 0
  uint8_t max_phys_bits = 52;  // host MAXPHYADDR (CPUID.80000008H:EAX[7:0])
};

enum class EptMapMode : uint8_t {
  kFailIfMapped,  // any existing translation in the range -> kAlreadyExists, nothing changed
  kRemap,         // replace existing translations (splitting large pages as needed)
};

struct EptTranslation {
  uint64_t hpa = 0;         // the host-physical address gpa translates to
  uint8_t permissions = 0;  // kEptRead | kEptWrite | kEptExecute
  EptMemoryType memory_type = EptMemoryType::kUncacheable;
  bool ignore_pat = false;
  uint64_t page_size = 0;  // 4 KiB, 2 MiB or 1 GiB
  uint64_t entry = 0;      // the raw leaf entry
};

class EptBuilder {
 public:
  // Allocates the PML4.
  static Result<EptBuilder> create(PageAllocator& allocator, const EptFeatures& features);

  // Maps [gpa, gpa+size) to [hpa, hpa+size). gpa, hpa and size must be 4 KiB-aligned and size
  // non-zero; gpa+size <= 2^48; hpa+size <= 2^max_phys_bits. Uses the largest page size that
  // alignment, the remaining length and the features allow.
  Result<void> map(uint64_t gpa, uint64_t hpa, uint64_t size, uint8_t permissions, EptMemoryType memory_type,
                   EptMapMode mode = EptMapMode::kFailIfMapped);
  // Removes every translation in [gpa, gpa+size); holes are fine. Large pages that straddle
  // the range boundary are split so the part outside stays mapped.
  Result<void> unmap(uint64_t gpa, uint64_t size);
  // Changes the permissions of every translation in [gpa, gpa+size). Every page in the range
  // must be mapped (kNotFound otherwise, with nothing changed).
  Result<void> protect(uint64_t gpa, uint64_t size, uint8_t permissions);
  // kNotFound when gpa has no translation.
  Result<EptTranslation> translate(uint64_t gpa) const;

  uint64_t pml4_phys() const { return pml4_phys_; }
  // EPTP with WB paging structures and a 4-level walk.
  uint64_t eptp(bool enable_accessed_dirty = false) const;

  bool invept_needed() const { return invept_needed_; }
  void clear_invept_needed() { invept_needed_ = false; }
  // How many table pages (including the PML4) have been allocated.
  uint64_t table_pages() const { return table_pages_; }

  // Frees every paging-structure page reachable from the PML4 at `pml4_phys` (the PML4 itself,
  // PDPTs, PDs and PTs; never the guest memory the leaves map) through `allocator`. Returns how
  // many pages were freed. The EPT must no longer be in use (no VMCS running on it).
  static uint64_t release_tables(PageAllocator& allocator, uint64_t pml4_phys);

 private:
  EptBuilder(PageAllocator& allocator, const EptFeatures& features, uint64_t pml4_phys)
      : allocator_(&allocator), features_(features), pml4_phys_(pml4_phys) {}

  uint64_t* table(uint64_t phys) const;
  Result<void> check_range(uint64_t gpa, uint64_t size) const;
  Result<void> check_leaf_attributes(uint8_t permissions, EptMemoryType memory_type) const;
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
  EptFeatures features_;
  uint64_t pml4_phys_;
  uint64_t table_pages_ = 1;
  bool invept_needed_ = false;
};

}  // namespace lantern::vmx
