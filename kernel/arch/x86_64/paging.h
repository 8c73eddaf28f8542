// Kernel page tables: the direct map of physical memory, the kernel image with per-section
// permissions, and uncached MMIO windows. Layout: docs/architecture.md.
#pragma once

#include <cstdint>

#include "kernel/arch/x86_64/boot_layout.h"
#include "kernel/lib/result.h"

namespace lantern::paging {

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kLargePageSize = 2ull << 20;
constexpr uint64_t kHugePageSize = 1ull << 30;

// Mapping flags (translated to PTE bits in paging.cpp).
constexpr uint64_t kWritable = 1u << 0;
constexpr uint64_t kExecutable = 1u << 1;
constexpr uint64_t kUncached = 1u << 2;

enum class PageSize { k4KiB, k2MiB };

inline uint64_t phys_to_virt(uint64_t phys) {
  return DIRECT_MAP_BASE + phys;
}
template <typename T>
T* phys_to_ptr(uint64_t phys) {
  return reinterpret_cast<T*>(phys_to_virt(phys));
}
// Direct-map and kernel-image addresses convert arithmetically; anything else is walked.
Result<uint64_t> virt_to_phys(uint64_t virt);

// Builds the kernel's own page tables (direct map of [0, direct_map_bytes), kernel image,
// no identity map) and switches this CPU to them.
Result<void> init(uint64_t direct_map_bytes);
uint64_t kernel_cr3();
bool large_direct_map_pages();  // 1 GiB pages in use for the direct map

Result<void> map(uint64_t virt, uint64_t phys, uint64_t flags, PageSize size);
Result<void> unmap(uint64_t virt, PageSize size);
Result<uint64_t> translate(uint64_t virt);

// Maps [phys, phys+size) uncached (PCD|PWT -> PAT entry 3 = UC, SDM Vol. 3 Table 13-11) in the
// MMIO window and returns the virtual address of phys.
Result<uintptr_t> map_mmio(uint64_t phys, uint64_t size);

}  // namespace lantern::paging
