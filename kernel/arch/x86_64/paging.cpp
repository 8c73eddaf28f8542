#include "kernel/arch/x86_64/paging.h"

#include "kernel/arch/x86_64/cpu.h"
#include "kernel/core/memory.h"
#include "kernel/core/spinlock.h"
#include "kernel/lib/string.h"

extern "C" char __kernel_text_start[], __kernel_text_end[];
extern "C" char __kernel_rodata_start[], __kernel_rodata_end[];
extern "C" char __kernel_data_start[], __kernel_data_end[];

namespace lantern::paging {
namespace {

// Paging-structure entry bits (SDM Vol. 3 4.5, Tables 4-14 to 4-20).
constexpr uint64_t kPtePresent = 1ull << 0;
constexpr uint64_t kPteWritable = 1ull << 1;
constexpr uint64_t kPteWriteThrough = 1ull << 3;  // PWT
constexpr uint64_t kPteCacheDisable = 1ull << 4;  // PCD
constexpr uint64_t kPteLarge = 1ull << 7;         // PS in a PDPTE (1 GiB) or PDE (2 MiB)
constexpr uint64_t kPteGlobal = 1ull << 8;
constexpr uint64_t kPteNoExecute = 1ull << 63;  // XD, needs IA32_EFER.NXE
constexpr uint64_t kPteAddressMask = 0x000ffffffffff000ull;

constexpr uint64_t kMmioWindowSize = 64ull << 30;

IrqSpinlock g_lock;
uint64_t g_pml4_phys = 0;
bool g_nx = false;
bool g_huge_direct = false;
uint64_t g_mmio_next = MMIO_MAP_BASE;

unsigned index_at(uint64_t virt, int level) {
  return (virt >> (12 + 9 * (level - 1))) & 511;
}

uint64_t* table_at(uint64_t phys) {
  return phys_to_ptr<uint64_t>(phys & kPteAddressMask);
}

Result<uint64_t> new_table() {
  const uint64_t frame = TRY(memory::alloc_frame());
  lib::mem_set(phys_to_ptr<void>(frame), 0, kPageSize);
  return frame;
}

uint64_t leaf_bits(uint64_t flags) {
  uint64_t bits = kPtePresent;
  if (flags & kWritable) bits |= kPteWritable;
  if (!(flags & kExecutable) && g_nx) bits |= kPteNoExecute;
  if (flags & kUncached) bits |= kPteCacheDisable | kPteWriteThrough;
  return bits;
}

// Returns the entry for virt at `level` (1 = PTE, 2 = PDE), creating tables on the way.
Result<uint64_t*> walk_create(uint64_t pml4_phys, uint64_t virt, int level) {
  uint64_t* table = table_at(pml4_phys);
  for (int l = 4; l > level; --l) {
    uint64_t& entry = table[index_at(virt, l)];
    if (!(entry & kPtePresent)) {
      // Intermediate entries are permissive; the leaf decides (SDM Vol. 3 4.6).
      entry = TRY(new_table()) | kPtePresent | kPteWritable;
    } else if (entry & kPteLarge) {
      return make_error(ErrorCode::kAlreadyExists, "address is inside a large page", virt);
    }
    table = table_at(entry);
  }
  return &table[index_at(virt, level)];
}

Result<void> map_locked(uint64_t pml4, uint64_t virt, uint64_t phys, uint64_t flags, PageSize size) {
  const uint64_t align = size == PageSize::k2MiB ? kLargePageSize : kPageSize;
  if ((virt | phys) & (align - 1)) {
    return make_error(ErrorCode::kInvalidArgument, "unaligned address for this page size", virt);
  }
  uint64_t* entry = TRY(walk_create(pml4, virt, size == PageSize::k2MiB ? 2 : 1));
  if (*entry & kPtePresent) return make_error(ErrorCode::kAlreadyExists, "page already mapped", virt);
  *entry = phys | leaf_bits(flags) | (size == PageSize::k2MiB ? kPteLarge : 0);
  return ok();
}

Result<void> map_kernel_section(uint64_t pml4, const char* start, const char* end, uint64_t flags) {
  for (uint64_t v = reinterpret_cast<uint64_t>(start); v < reinterpret_cast<uint64_t>(end); v += kPageSize) {
    TRY(map_locked(pml4, v, v - KERNEL_VMA, flags, PageSize::k4KiB));
  }
  return ok();
}

}  // namespace

uint64_t kernel_cr3() {
  return g_pml4_phys;
}
bool large_direct_map_pages() {
  return g_huge_direct;
}

Result<uint64_t> virt_to_phys(uint64_t virt) {
  if (virt >= KERNEL_VMA) return virt - KERNEL_VMA;
  if (virt >= DIRECT_MAP_BASE && virt < MMIO_MAP_BASE) return virt - DIRECT_MAP_BASE;
  return translate(virt);
}

Result<void> init(uint64_t direct_map_bytes) {
  // CPUID.80000001H:EDX[20] NX, [26] 1-GByte pages (SDM Vol. 2A, CPUID).
  const auto ext = cpu::cpuid(0x80000001);
  g_nx = (ext.edx >> 20) & 1;
  g_huge_direct = (ext.edx >> 26) & 1;
  const uint64_t pml4 = TRY(new_table());

  // The direct map: read/write, never executable.
  const uint64_t gib = (direct_map_bytes + kHugePageSize - 1) / kHugePageSize;
  for (uint64_t g = 0; g < gib; ++g) {
    const uint64_t virt = DIRECT_MAP_BASE + g * kHugePageSize;
    const uint64_t phys = g * kHugePageSize;
    if (g_huge_direct) {
      uint64_t* pml4_table = table_at(pml4);
      uint64_t& pml4e = pml4_table[index_at(virt, 4)];
      if (!(pml4e & kPtePresent)) pml4e = TRY(new_table()) | kPtePresent | kPteWritable;
      table_at(pml4e)[index_at(virt, 3)] = phys | leaf_bits(kWritable) | kPteLarge | kPteGlobal;
    } else {
      for (uint64_t off = 0; off < kHugePageSize; off += kLargePageSize) {
        TRY(map_locked(pml4, virt + off, phys + off, kWritable, PageSize::k2MiB));
      }
    }
  }
  // The kernel image, per section: text R-X, rodata R--, data/bss RW-.
  TRY(map_kernel_section(pml4, __kernel_text_start, __kernel_text_end, kExecutable));
  TRY(map_kernel_section(pml4, __kernel_rodata_start, __kernel_rodata_end, 0));
  TRY(map_kernel_section(pml4, __kernel_data_start, __kernel_data_end, kWritable));

  g_pml4_phys = pml4;
  cpu::write_cr3(pml4);
  return ok();
}

Result<void> map(uint64_t virt, uint64_t phys, uint64_t flags, PageSize size) {
  IrqSpinlockGuard guard(g_lock);
  return map_locked(g_pml4_phys, virt, phys, flags, size);
}

Result<uint64_t> translate(uint64_t virt) {
  uint64_t* table = table_at(g_pml4_phys);
  for (int level = 4; level >= 1; --level) {
    const uint64_t entry = table[index_at(virt, level)];
    if (!(entry & kPtePresent)) return make_error(ErrorCode::kNotFound, "address not mapped", virt);
    if (level == 1 || (entry & kPteLarge)) {
      const uint64_t page_bytes = 1ull << (12 + 9 * (level - 1));
      const uint64_t base = entry & kPteAddressMask & ~(page_bytes - 1);
      return base | (virt & (page_bytes - 1));
    }
    table = table_at(entry);
  }
  return make_error(ErrorCode::kNotFound, "address not mapped", virt);
}

Result<void> unmap(uint64_t virt, PageSize size) {
  IrqSpinlockGuard guard(g_lock);
  const int level = size == PageSize::k2MiB ? 2 : 1;
  uint64_t* table = table_at(g_pml4_phys);
  for (int l = 4; l > level; --l) {
    const uint64_t entry = table[index_at(virt, l)];
    if (!(entry & kPtePresent) || (entry & kPteLarge)) {
      return make_error(ErrorCode::kNotFound, "no page of that size mapped there", virt);
    }
    table = table_at(entry);
  }
  uint64_t& leaf = table[index_at(virt, level)];
  if (!(leaf & kPtePresent)) return make_error(ErrorCode::kNotFound, "page not mapped", virt);
  leaf = 0;
  // Only this core's TLB is flushed: kernel mappings are not removed while other cores may
  // hold them (MMIO windows and test pages are per-user). See docs/architecture.md.
  cpu::invlpg(virt);
  return ok();
}

Result<uintptr_t> map_mmio(uint64_t phys, uint64_t size) {
  if (size == 0) return make_error(ErrorCode::kInvalidArgument, "empty MMIO range", phys);
  const uint64_t first = phys & ~(kPageSize - 1);
  const uint64_t last = (phys + size + kPageSize - 1) & ~(kPageSize - 1);
  IrqSpinlockGuard guard(g_lock);
  if (g_mmio_next + (last - first) > MMIO_MAP_BASE + kMmioWindowSize) {
    return make_error(ErrorCode::kOutOfMemory, "MMIO window exhausted", phys);
  }
  const uint64_t virt = g_mmio_next;
  for (uint64_t off = 0; off < last - first; off += kPageSize) {
    TRY(map_locked(g_pml4_phys, virt + off, first + off, kWritable | kUncached, PageSize::k4KiB));
  }
  g_mmio_next += (last - first) + kPageSize;  // a guard page between windows
  return virt + (phys - first);
}

}  // namespace lantern::paging
