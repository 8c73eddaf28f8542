#include "guest/nested_paging.h"

namespace lantern::guest {
namespace {

constexpr int kPml4Level = 3;  // PML4E: 512 GiB per entry
constexpr unsigned kEntriesPerTable = 512;
// An EPT entry that references the next table: full permissions, so the leaf decides
// (SDM Vol. 3C 29.3.2: the access rights are the AND of all levels).
constexpr uint64_t kEptTableEntryBits = ept_entry::kRead | ept_entry::kWrite | ept_entry::kExecute;
// An NPT entry that references the next table: present, writable, user, NX clear, so the leaf
// decides (APM Vol. 2 5.6 "Page-Protection Checks": the rights are the most restrictive of all
// levels; 15.25.5: nested walks are user accesses, so U/S = 1 everywhere).
constexpr uint64_t kNptTableEntryBits = npt_entry::kPresent | npt_entry::kWrite | npt_entry::kUser;
// The power-on PAT (APM Vol. 2 7.8.2, Table 7-10): index 0 WB, 1 WT, 2 UC-, 3 UC (4-7 repeat).
// Lantern never reprograms the PAT, so these indexes select these types through the host PAT.
constexpr unsigned kPatIndexWriteBack = 0;
constexpr unsigned kPatIndexWriteThrough = 1;
constexpr unsigned kPatIndexUncacheable = 3;

constexpr uint64_t span_of(int level) {
  return uint64_t{1} << (12 + 9 * level);
}
constexpr unsigned index_of(uint64_t gpa, int level) {
  return static_cast<unsigned>((gpa >> (12 + 9 * level)) & (kEntriesPerTable - 1));
}
// A leaf: any present PTE, or a PDPTE/PDE with bit 7 set (EPT: SDM Tables 29-2, 29-4; NPT: the
// PS bit, APM Vol. 2 5.4.1). Bit 7 is the same in both formats.
constexpr bool is_leaf(uint64_t entry, int level) {
  static_assert(ept_entry::kLargePage == npt_entry::kLargePage);
  return level == 0 || ((level == 1 || level == 2) && (entry & ept_entry::kLargePage) != 0);
}
constexpr bool is_valid_memory_type(MemoryType t) {
  switch (t) {
    case MemoryType::kUncacheable:
    case MemoryType::kWriteCombining:
    case MemoryType::kWriteThrough:
    case MemoryType::kWriteProtected:
    case MemoryType::kWriteBack: return true;
  }
  return false;
}
// The PAT/PCD/PWT bits of an NPT leaf at `level` selecting PAT entry `index`
// (APM Vol. 2 7.8.3 "PAT Indexing": index = PAT*4 + PCD*2 + PWT).
constexpr uint64_t npt_pat_bits(unsigned index, int level) {
  return ((index & 1) != 0 ? npt_entry::kWriteThrough : 0) | ((index & 2) != 0 ? npt_entry::kCacheDisable : 0) |
         ((index & 4) != 0 ? (level > 0 ? npt_entry::kPatLarge : npt_entry::kPat4K) : 0);
}
constexpr unsigned npt_pat_index(uint64_t entry, int level) {
  const uint64_t pat_bit = level > 0 ? npt_entry::kPatLarge : npt_entry::kPat4K;
  return ((entry & npt_entry::kWriteThrough) != 0 ? 1u : 0u) | ((entry & npt_entry::kCacheDisable) != 0 ? 2u : 0u) |
         ((entry & pat_bit) != 0 ? 4u : 0u);
}
// Address bits of a leaf at `level`: a large NPT leaf keeps its PAT bit in bit 12, inside the
// 4 KiB address field, so the page-size alignment masks it out.
constexpr uint64_t leaf_address(uint64_t entry, int level) {
  return entry & ept_entry::kAddressMask & ~(span_of(level) - 1);
}

}  // namespace

Result<uint64_t> make_eptp(uint64_t pml4_phys, MemoryType memory_type, bool enable_accessed_dirty) {
  if ((pml4_phys & (kPageSize4K - 1)) != 0 || (pml4_phys & ~ept_entry::kAddressMask) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "EPT PML4 address must be 4 KiB-aligned and below 2^52",
                      pml4_phys);
  }
  // SDM Vol. 3C 25.6.11: the EPT paging-structure memory type is UC (0) or WB (6).
  if (memory_type != MemoryType::kUncacheable && memory_type != MemoryType::kWriteBack) {
    return make_error(ErrorCode::kInvalidArgument, "EPTP memory type must be UC (0) or WB (6)",
                      static_cast<uint8_t>(memory_type));
  }
  return pml4_phys | static_cast<uint64_t>(memory_type) |
         (uint64_t{4 - 1} << eptp::kWalkLengthShift) |  // 4-level walk, stored as length - 1
         (enable_accessed_dirty ? eptp::kEnableAccessedDirty : 0);
}

Result<NestedPageTableBuilder> NestedPageTableBuilder::create(PageAllocator& allocator, const NestedPagingFeatures& features) {
  const uint64_t pml4 = TRY(allocator.alloc_zeroed_page());
  if ((pml4 & (kPageSize4K - 1)) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "page allocator returned an unaligned page", pml4);
  }
  return NestedPageTableBuilder(allocator, features, pml4);
}

uint64_t NestedPageTableBuilder::eptp(bool enable_accessed_dirty) const {
  return pml4_phys_ | eptp::kMemoryTypeWb | (uint64_t{4 - 1} << eptp::kWalkLengthShift) |
         (enable_accessed_dirty ? eptp::kEnableAccessedDirty : 0);
}

bool NestedPageTableBuilder::is_present(uint64_t entry) const {
  // EPT: present when any of bits 2:0 is set (SDM Vol. 3C 29.3.2); NPT: the P bit (APM 5.4.1).
  if (features_.format == PageTableFormat::kEpt) return (entry & ept_entry::kPermissionMask) != 0;
  return (entry & npt_entry::kPresent) != 0;
}

uint64_t NestedPageTableBuilder::table_entry(uint64_t table_phys) const {
  return table_phys | (features_.format == PageTableFormat::kEpt ? kEptTableEntryBits : kNptTableEntryBits);
}

uint64_t NestedPageTableBuilder::make_leaf(uint64_t hpa, int level, uint8_t permissions, MemoryType type) const {
  const uint64_t large = level > 0 ? ept_entry::kLargePage : 0;
  if (features_.format == PageTableFormat::kEpt) {
    return (hpa & ept_entry::kAddressMask) | (permissions & ept_entry::kPermissionMask) |
           (static_cast<uint64_t>(type) << ept_entry::kMemoryTypeShift) | large;
  }
  unsigned pat_index = kPatIndexWriteBack;
  if (type == MemoryType::kWriteThrough) pat_index = kPatIndexWriteThrough;
  if (type == MemoryType::kUncacheable) pat_index = kPatIndexUncacheable;
  return (hpa & npt_entry::kAddressMask) | npt_entry::kPresent | npt_entry::kUser |
         ((permissions & kAccessWrite) != 0 ? npt_entry::kWrite : 0) |
         ((permissions & kAccessExecute) == 0 ? npt_entry::kNoExecute : 0) | npt_pat_bits(pat_index, level) | large;
}

uint8_t NestedPageTableBuilder::leaf_permissions(uint64_t entry) const {
  if (features_.format == PageTableFormat::kEpt) return static_cast<uint8_t>(entry & ept_entry::kPermissionMask);
  if ((entry & npt_entry::kPresent) == 0) return 0;
  return static_cast<uint8_t>(kAccessRead | ((entry & npt_entry::kWrite) != 0 ? kAccessWrite : 0) |
                              ((entry & npt_entry::kNoExecute) == 0 ? kAccessExecute : 0));
}

MemoryType NestedPageTableBuilder::leaf_memory_type(uint64_t entry, int level) const {
  if (features_.format == PageTableFormat::kEpt) {
    return static_cast<MemoryType>((entry & ept_entry::kMemoryTypeMask) >> ept_entry::kMemoryTypeShift);
  }
  // The power-on PAT (APM Vol. 2 Table 7-10); UC- (index 2, 6) reads back as UC.
  switch (npt_pat_index(entry, level) & 3) {
    case kPatIndexWriteBack: return MemoryType::kWriteBack;
    case kPatIndexWriteThrough: return MemoryType::kWriteThrough;
    default: return MemoryType::kUncacheable;
  }
}

uint64_t* NestedPageTableBuilder::table(uint64_t phys) const {
  return static_cast<uint64_t*>(allocator_->phys_to_virt(phys & ept_entry::kAddressMask));
}

Result<void> NestedPageTableBuilder::check_range(uint64_t gpa, uint64_t size) const {
  if (size == 0) return make_error(ErrorCode::kInvalidArgument, "nested-paging range size is zero");
  if ((gpa | size) & (kPageSize4K - 1)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "nested-paging guest-physical address and size must be 4 KiB-aligned", gpa);
  }
  if (gpa >= kNestedGuestPhysLimit || size > kNestedGuestPhysLimit - gpa) {
    return make_error(ErrorCode::kInvalidArgument, "nested-paging range ends above 2^48 (4-level limit)", gpa);
  }
  return ok();
}

Result<void> NestedPageTableBuilder::check_leaf_attributes(uint8_t permissions, MemoryType memory_type) const {
  if (permissions == 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "nested-paging permissions are empty (no access means not present; "
                      "use unmap)");
  }
  if ((permissions & ~kAccessRwx) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "nested-paging permissions have bits other than R/W/X", permissions);
  }
  // SDM Vol. 3C 29.3.3.1: write without read is an EPT misconfiguration.
  if ((permissions & kAccessWrite) != 0 && (permissions & kAccessRead) == 0) {
    return make_error(ErrorCode::kInvalidArgument, "write permission requires read permission (SDM 29.3.3.1, APM 5.4.1)",
                      permissions);
  }
  // SDM 29.3.3.1: execute-only needs IA32_VMX_EPT_VPID_CAP bit 0.
  if (permissions == kAccessExecute && !features_.execute_only) {
    return make_error(ErrorCode::kUnsupported, "execute-only translations are not supported by this CPU or format");
  }
  if (features_.format == PageTableFormat::kNpt) {
    // APM Vol. 2 5.4.1: P grants read; there is no write-only or execute-only encoding.
    if ((permissions & kAccessRead) == 0) {
      return make_error(ErrorCode::kUnsupported, "NPT translations are always readable (P grants read)",
                        permissions);
    }
    // Without host EFER.NXE bit 63 is reserved (APM 15.25.3, 5.3.3): no non-executable leaves.
    if ((permissions & kAccessExecute) == 0 && !features_.no_execute) {
      return make_error(ErrorCode::kUnsupported, "NPT no-execute needs the host's EFER.NXE");
    }
    // Only the types the power-on PAT holds (APM Vol. 2 Table 7-10: WB, WT, UC-, UC).
    if (memory_type != MemoryType::kWriteBack && memory_type != MemoryType::kWriteThrough &&
        memory_type != MemoryType::kUncacheable) {
      return make_error(ErrorCode::kUnsupported, "NPT memory type must be WB, WT or UC (the power-on PAT)",
                        static_cast<uint8_t>(memory_type));
    }
    return ok();
  }
  if (!is_valid_memory_type(memory_type)) {
    return make_error(ErrorCode::kInvalidArgument,
                      "EPT memory type must be UC(0), WC(1), WT(4), WP(5) or WB(6)",
                      static_cast<uint8_t>(memory_type));
  }
  return ok();
}

uint64_t* NestedPageTableBuilder::lookup(uint64_t gpa, int* level) const {
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

Result<void> NestedPageTableBuilder::split(uint64_t* entry, int level) {
  const uint64_t old = *entry;
  const uint64_t child_phys = TRY(allocator_->alloc_zeroed_page());
  ++table_pages_;
  uint64_t* child = table(child_phys);
  const int child_level = level - 1;
  const uint64_t base = leaf_address(old, level);
  // Every smaller leaf keeps the large leaf's permissions and memory type (re-encoded: an NPT
  // leaf's PAT bit moves from bit 12 to bit 7 at 4 KiB).
  const uint8_t permissions = leaf_permissions(old);
  const MemoryType type = leaf_memory_type(old, level);
  for (unsigned i = 0; i < kEntriesPerTable; ++i) {
    child[i] = make_leaf(base + i * span_of(child_level), child_level, permissions, type);
  }
  *entry = table_entry(child_phys);
  tlb_flush_needed_ = true;  // the large translation may be cached (SDM 29.4.3.1; APM 15.16)
  return ok();
}

Result<uint64_t*> NestedPageTableBuilder::walk_create(uint64_t gpa, int level) {
  uint64_t* t = table(pml4_phys_);
  for (int l = kPml4Level; l > level; --l) {
    uint64_t* entry = &t[index_of(gpa, l)];
    if (!is_present(*entry)) {
      const uint64_t phys = TRY(allocator_->alloc_zeroed_page());
      ++table_pages_;
      *entry = table_entry(phys);
    } else if (is_leaf(*entry, l)) {
      TRY(split(entry, l));
    }
    t = table(*entry);
  }
  return &t[index_of(gpa, level)];
}

uint64_t NestedPageTableBuilder::next_mapped(uint64_t gpa, uint64_t end) const {
  uint64_t cur = gpa;
  while (cur < end) {
    int level = 0;
    const uint64_t* entry = lookup(cur, &level);
    if (is_present(*entry)) return cur;
    cur = (cur & ~(span_of(level) - 1)) + span_of(level);
  }
  return end;
}

Result<void> NestedPageTableBuilder::map(uint64_t gpa, uint64_t hpa, uint64_t size, uint8_t permissions,
                             MemoryType memory_type, MapMode mode) {
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
  if (mode == MapMode::kFailIfMapped) {
    const uint64_t first = next_mapped(gpa, end);
    if (first != end) {
      return make_error(ErrorCode::kAlreadyExists, "guest-physical range overlaps an existing nested-paging mapping",
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
    if (is_present(*entry)) tlb_flush_needed_ = true;  // replacing a translation (kRemap)
    *entry = make_leaf(host, level, permissions, memory_type);
    cur += span_of(level);
  }
  return ok();
}

Result<void> NestedPageTableBuilder::unmap(uint64_t gpa, uint64_t size) {
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
    tlb_flush_needed_ = true;
    cur = base + span;
  }
  return ok();
}

Result<void> NestedPageTableBuilder::protect(uint64_t gpa, uint64_t size, uint8_t permissions) {
  TRY(check_range(gpa, size));
  TRY(check_leaf_attributes(permissions, MemoryType::kWriteBack));  // the type is kept
  const uint64_t end = gpa + size;
  // First pass: the whole range must be mapped; nothing changes if it is not.
  for (uint64_t cur = gpa; cur < end;) {
    int level = 0;
    const uint64_t* entry = lookup(cur, &level);
    if (!is_present(*entry)) {
      return make_error(ErrorCode::kNotFound, "nested-paging protect: part of the range is not mapped", cur);
    }
    cur = (cur & ~(span_of(level) - 1)) + span_of(level);
  }
  for (uint64_t cur = gpa; cur < end;) {
    int level = 0;
    uint64_t* entry = lookup(cur, &level);
    const uint64_t span = span_of(level);
    const uint64_t base = cur & ~(span - 1);
    if (base < cur || span > end - base) {
      if (leaf_permissions(*entry) == permissions) {
        cur = base + span;  // already right: no need to split
        continue;
      }
      TRY(split(entry, level));
      continue;
    }
    const uint64_t updated = make_leaf(leaf_address(*entry, level), level, permissions,
                                       leaf_memory_type(*entry, level));
    if (updated != *entry) {
      *entry = updated;
      tlb_flush_needed_ = true;
    }
    cur = base + span;
  }
  return ok();
}

Result<NestedTranslation> NestedPageTableBuilder::translate(uint64_t gpa) const {
  if (gpa >= kNestedGuestPhysLimit) {
    return make_error(ErrorCode::kInvalidArgument, "guest-physical address above 2^48 (4-level limit)",
                      gpa);
  }
  int level = 0;
  const uint64_t* entry = lookup(gpa, &level);
  if (!is_present(*entry)) {
    return make_error(ErrorCode::kNotFound, "no nested-paging translation for this guest-physical address", gpa);
  }
  const uint64_t span = span_of(level);
  NestedTranslation t;
  t.entry = *entry;
  t.page_size = span;
  t.hpa = leaf_address(*entry, level) | (gpa & (span - 1));
  t.permissions = leaf_permissions(*entry);
  t.memory_type = leaf_memory_type(*entry, level);
  t.ignore_pat = features_.format == PageTableFormat::kEpt && (*entry & ept_entry::kIgnorePat) != 0;
  return t;
}

namespace {

// Frees the table at `phys` (at `level`, 3 = PML4) and every table below it: an entry
// references a table when it is present and is not a large-page leaf (bit 7 in a PDPTE/PDE);
// PTEs are always leaves (SDM Vol. 3C Tables 29-1..29-6; APM Vol. 2 5.4.1). Every table entry
// this builder writes has bit 0 set in either format (EPT read, NPT P), so bit 0 tells.
uint64_t release_table(PageAllocator& allocator, uint64_t phys, int level) {
  uint64_t freed = 0;
  if (level > 0) {
    const auto* entries = static_cast<const uint64_t*>(allocator.phys_to_virt(phys));
    for (unsigned i = 0; i < kEntriesPerTable; ++i) {
      const uint64_t e = entries[i];
      if ((e & 1) == 0) continue;
      if (level < kPml4Level && (e & ept_entry::kLargePage) != 0) continue;
      freed += release_table(allocator, e & ept_entry::kAddressMask, level - 1);
    }
  }
  allocator.free_page(phys);
  return freed + 1;
}

}  // namespace

uint64_t NestedPageTableBuilder::release_tables(PageAllocator& allocator, uint64_t pml4_phys) {
  if (pml4_phys == 0) return 0;
  return release_table(allocator, pml4_phys & ept_entry::kAddressMask, kPml4Level);
}

}  // namespace lantern::guest
