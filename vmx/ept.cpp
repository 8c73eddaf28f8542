#include "vmx/ept.h"

namespace lantern::vmx {
namespace {

constexpr int kPml4Level = 3;  // PML4E: 512 GiB per entry
constexpr unsigned kEntriesPerTable = 512;
// A table entry that references the next table: full permissions, so the leaf decides
// (SDM Vol. 3C 28.3.2: the access rights are the AND of all levels).
constexpr uint64_t kTableEntryBits = ept_entry::kRead | ept_entry::kWrite | ept_entry::kExecute;
// Leaf bits that a split copies into every smaller leaf.
constexpr uint64_t kLeafAttributeBits = ept_entry::kPermissionMask | ept_entry::kMemoryTypeMask |
                                        ept_entry::kIgnorePat | ept_entry::kUserExecute |
                                        ept_entry::kSuppressVe;

constexpr uint64_t span_of(int level) {
  return uint64_t{1} << (12 + 9 * level);
}
constexpr unsigned index_of(uint64_t gpa, int level) {
  return static_cast<unsigned>((gpa >> (12 + 9 * level)) & (kEntriesPerTable - 1));
}
// SDM Vol. 3C 28.3.2: an entry is present when any of bits 2:0 is set.
constexpr bool is_present(uint64_t entry) {
  return (entry & ept_entry::kPermissionMask) != 0;
}
// A leaf: any present PTE, or a PDPTE/PDE with bit 7 set (Tables 28-2, 28-4).
constexpr bool is_leaf(uint64_t entry, int level) {
  return level == 0 || ((level == 1 || level == 2) && (entry & ept_entry::kLargePage) != 0);
}
constexpr bool is_valid_memory_type(EptMemoryType t) {
  switch (t) {
    case EptMemoryType::kUncacheable:
    case EptMemoryType::kWriteCombining:
    case EptMemoryType::kWriteThrough:
    case EptMemoryType::kWriteProtected:
    case EptMemoryType::kWriteBack: return true;
  }
  return false;
}
constexpr uint64_t make_leaf(uint64_t hpa, int level, uint8_t permissions, EptMemoryType type) {
  return (hpa & ept_entry::kAddressMask) | (permissions & ept_entry::kPermissionMask) |
         (static_cast<uint64_t>(type) << ept_entry::kMemoryTypeShift) |
         (level > 0 ? ept_entry::kLargePage : 0);
}

}  // namespace

Result<uint64_t> make_eptp(uint64_t pml4_phys, EptMemoryType memory_type, bool enable_accessed_dirty) {
  if ((pml4_phys & (kPageSize4K - 1)) != 0 || (pml4_phys & ~ept_entry::kAddressMask) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "EPT PML4 address must be 4 KiB-aligned and below 2^52",
                      pml4_phys);
  }
  // SDM Vol. 3C 24.6.11: the EPT paging-structure memory type is UC (0) or WB (6).
  if (memory_type != EptMemoryType::kUncacheable && memory_type != EptMemoryType::kWriteBack) {
    return make_error(ErrorCode::kInvalidArgument, "EPTP memory type must be UC (0) or WB (6)",
                      static_cast<uint8_t>(memory_type));
  }
  return pml4_phys | static_cast<uint64_t>(memory_type) |
         (uint64_t{4 - 1} << eptp::kWalkLengthShift) |  // 4-level walk, stored as length - 1
         (enable_accessed_dirty ? eptp::kEnableAccessedDirty : 0);
}

Result<EptBuilder> EptBuilder::create(PageAllocator& allocator, const EptFeatures& features) {
  const uint64_t pml4 = TRY(allocator.alloc_zeroed_page());
  if ((pml4 & (kPageSize4K - 1)) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "page allocator returned an unaligned page", pml4);
  }
  return EptBuilder(allocator, features, pml4);
}

uint64_t EptBuilder::eptp(bool enable_accessed_dirty) const {
  return pml4_phys_ | eptp::kMemoryTypeWb | (uint64_t{4 - 1} << eptp::kWalkLengthShift) |
         (enable_accessed_dirty ? eptp::kEnableAccessedDirty : 0);
}

uint64_t* EptBuilder::table(uint64_t phys) const {
  return static_cast<uint64_t*>(allocator_->phys_to_virt(phys & ept_entry::kAddressMask));
}

Result<void> EptBuilder::check_range(uint64_t gpa, uint64_t size) const {
  if (size == 0) return make_error(ErrorCode::kInvalidArgument, "EPT range size is zero");
  if ((gpa | size) & (kPageSize4K - 1)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "EPT guest-physical address and size must be 4 KiB-aligned", gpa);
  }
  if (gpa >= kEptGuestPhysLimit || size > kEptGuestPhysLimit - gpa) {
    return make_error(ErrorCode::kInvalidArgument, "EPT range ends above 2^48 (4-level EPT limit)", gpa);
  }
  return ok();
}

Result<void> EptBuilder::check_leaf_attributes(uint8_t permissions, EptMemoryType memory_type) const {
  if (permissions == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "EPT permissions are empty (an entry with bits 2:0 clear is not present; "
                      "use unmap)");
  }
  if ((permissions & ~kEptRwx) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "EPT permissions have bits other than R/W/X", permissions);
  }
  // SDM Vol. 3C 28.3.3.1: write without read is an EPT misconfiguration.
  if ((permissions & kEptWrite) != 0 && (permissions & kEptRead) == 0) {
    return make_error(ErrorCode::kInvalidArgument, "EPT write permission requires read permission",
                      permissions);
  }
  // 28.3.3.1: execute-only needs IA32_VMX_EPT_VPID_CAP bit 0.
  if (permissions == kEptExecute && !features_.execute_only) {
    return make_error(ErrorCode::kUnsupported, "execute-only EPT translations are not supported by this CPU");
  }
  if (!is_valid_memory_type(memory_type)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "EPT memory type must be UC(0), WC(1), WT(4), WP(5) or WB(6)",
                      static_cast<uint8_t>(memory_type));
  }
  return ok();
}

uint64_t* EptBuilder::lookup(uint64_t gpa, int* level) const {
  uint64_t* t = table(pml4_phys_);
  for (int l = kPml4Level;; --l) {
    uint64_t* entry = &t[index_of(gpa, l)];
    if (!is_present(*entry) || is_leaf(*entry, l)) {
      *level = l;
      return entry;
    }
    t = table(*entry);
  }
}

Result<void> EptBuilder::split(uint64_t* entry, int level) {
  const uint64_t old = *entry;
  const uint64_t child_phys = TRY(allocator_->alloc_zeroed_page());
  ++table_pages_;
  uint64_t* child = table(child_phys);
  const int child_level = level - 1;
  const uint64_t base = old & ept_entry::kAddressMask & ~(span_of(level) - 1);
  const uint64_t attributes = old & kLeafAttributeBits;
  for (unsigned i = 0; i < kEntriesPerTable; ++i) {
    child[i] = (base + i * span_of(child_level)) | attributes | (child_level > 0 ? ept_entry::kLargePage : 0);
  }
  *entry = child_phys | kTableEntryBits;
  invept_needed_ = true;  // the large translation may be cached (28.4.3.1)
  return ok();
}

Result<uint64_t*> EptBuilder::walk_create(uint64_t gpa, int level) {
  uint64_t* t = table(pml4_phys_);
  for (int l = kPml4Level; l > level; --l) {
    uint64_t* entry = &t[index_of(gpa, l)];
    if (!is_present(*entry)) {
      const uint64_t phys = TRY(allocator_->alloc_zeroed_page());
      ++table_pages_;
      *entry = phys | kTableEntryBits;
    } else if (is_leaf(*entry, l)) {
      TRY(split(entry, l));
    }
    t = table(*entry);
  }
  return &t[index_of(gpa, level)];
}

uint64_t EptBuilder::next_mapped(uint64_t gpa, uint64_t end) const {
  uint64_t cur = gpa;
  while (cur < end) {
    int level = 0;
    const uint64_t* entry = lookup(cur, &level);
    if (is_present(*entry)) return cur;
    cur = (cur & ~(span_of(level) - 1)) + span_of(level);
  }
  return end;
}

Result<void> EptBuilder::map(uint64_t gpa, uint64_t hpa, uint64_t size, uint8_t permissions,
                             EptMemoryType memory_type, EptMapMode mode) {
  TRY(check_range(gpa, size));
  TRY(check_leaf_attributes(permissions, memory_type));
  if ((hpa & (kPageSize4K - 1)) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "host-physical address must be 4 KiB-aligned", hpa);
  }
  const uint64_t phys_limit = uint64_t{1} << features_.max_phys_bits;
  if (hpa >= phys_limit || size > phys_limit - hpa) {
    return make_error(ErrorCode::kInvalidArgument, "host-physical range ends above MAXPHYADDR", hpa);
  }
  const uint64_t end = gpa + size;
  if (mode == EptMapMode::kFailIfMapped) {
    const uint64_t first = next_mapped(gpa, end);
    if (first != end) {
      return make_error(ErrorCode::kAlreadyExists, "guest-physical range overlaps an existing EPT mapping",
                        first);
    }
  }

  uint64_t cur = gpa;
  while (cur < end) {
    const uint64_t host = hpa + (cur - gpa);
    const uint64_t remaining = end - cur;
    int existing_level = 0;
    lookup(cur, &existing_level);
    // Largest page the alignment, length and CPU allow. A large page is not used where a
    // table already exists at that level: the smaller pages go into that table instead.
    int level = 0;
    for (int l = 2; l >= 1; --l) {
      const bool supported = (l == 2) ? features_.pages_1g : features_.pages_2m;
      const uint64_t span = span_of(l);
      if (supported && (cur % span) == 0 && (host % span) == 0 && remaining >= span && existing_level >= l) {
        level = l;
        break;
      }
    }
    uint64_t* entry = TRY(walk_create(cur, level));
    if (is_present(*entry)) invept_needed_ = true;  // replacing a translation (kRemap)
    *entry = make_leaf(host, level, permissions, memory_type);
    cur += span_of(level);
  }
  return ok();
}

Result<void> EptBuilder::unmap(uint64_t gpa, uint64_t size) {
  TRY(check_range(gpa, size));
  const uint64_t end = gpa + size;
  uint64_t cur = gpa;
  while (cur < end) {
    cur = next_mapped(cur, end);
    if (cur >= end) break;
    int level = 0;
    uint64_t* entry = lookup(cur, &level);
    const uint64_t span = span_of(level);
    const uint64_t base = cur & ~(span - 1);
    if (base < cur || span > end - base) {
      TRY(split(entry, level));  // keep the part outside the range mapped
      continue;
    }
    *entry = 0;
    invept_needed_ = true;
    cur = base + span;
  }
  return ok();
}

Result<void> EptBuilder::protect(uint64_t gpa, uint64_t size, uint8_t permissions) {
  TRY(check_range(gpa, size));
  TRY(check_leaf_attributes(permissions, EptMemoryType::kWriteBack));
  const uint64_t end = gpa + size;
  // First pass: the whole range must be mapped; nothing changes if it is not.
  for (uint64_t cur = gpa; cur < end;) {
    int level = 0;
    const uint64_t* entry = lookup(cur, &level);
    if (!is_present(*entry)) {
      return make_error(ErrorCode::kNotFound, "EPT protect: part of the range is not mapped", cur);
    }
    cur = (cur & ~(span_of(level) - 1)) + span_of(level);
  }
  for (uint64_t cur = gpa; cur < end;) {
    int level = 0;
    uint64_t* entry = lookup(cur, &level);
    const uint64_t span = span_of(level);
    const uint64_t base = cur & ~(span - 1);
    if (base < cur || span > end - base) {
      if ((*entry & ept_entry::kPermissionMask) == permissions) {
        cur = base + span;  // already right: no need to split
        continue;
      }
      TRY(split(entry, level));
      continue;
    }
    const uint64_t updated = (*entry & ~ept_entry::kPermissionMask) | permissions;
    if (updated != *entry) {
      *entry = updated;
      invept_needed_ = true;
    }
    cur = base + span;
  }
  return ok();
}

Result<EptTranslation> EptBuilder::translate(uint64_t gpa) const {
  if (gpa >= kEptGuestPhysLimit) {
    return make_error(ErrorCode::kInvalidArgument, "guest-physical address above 2^48 (4-level EPT limit)",
                      gpa);
  }
  int level = 0;
  const uint64_t* entry = lookup(gpa, &level);
  if (!is_present(*entry)) {
    return make_error(ErrorCode::kNotFound, "no EPT translation for this guest-physical address", gpa);
  }
  const uint64_t span = span_of(level);
  EptTranslation t;
  t.entry = *entry;
  t.page_size = span;
  t.hpa = (*entry & ept_entry::kAddressMask & ~(span - 1)) | (gpa & (span - 1));
  t.permissions = static_cast<uint8_t>(*entry & ept_entry::kPermissionMask);
  t.memory_type =
      static_cast<EptMemoryType>((*entry & ept_entry::kMemoryTypeMask) >> ept_entry::kMemoryTypeShift);
  t.ignore_pat = (*entry & ept_entry::kIgnorePat) != 0;
  return t;
}

namespace {

// Frees the table at `phys` (at `level`, 3 = PML4) and every table below it: an entry
// references a table when it is present (bits 2:0) and is not a large-page leaf (bit 7 in a
// PDPTE/PDE); PTEs are always leaves (SDM Vol. 3C Tables 28-1..28-6).
uint64_t release_table(PageAllocator& allocator, uint64_t phys, int level) {
  uint64_t freed = 0;
  if (level > 0) {
    const auto* entries = static_cast<const uint64_t*>(allocator.phys_to_virt(phys));
    for (unsigned i = 0; i < kEntriesPerTable; ++i) {
      const uint64_t e = entries[i];
      if ((e & ept_entry::kPermissionMask) == 0) continue;
      if (level < kPml4Level && (e & ept_entry::kLargePage) != 0) continue;
      freed += release_table(allocator, e & ept_entry::kAddressMask, level - 1);
    }
  }
  allocator.free_page(phys);
  return freed + 1;
}

}  // namespace

uint64_t EptBuilder::release_tables(PageAllocator& allocator, uint64_t pml4_phys) {
  if (pml4_phys == 0) return 0;
  return release_table(allocator, pml4_phys & ept_entry::kAddressMask, kPml4Level);
}

}  // namespace lantern::vmx
