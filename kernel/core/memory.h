// Physical frames and the kernel heap, for the whole kernel (SMP-safe).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/boot/multiboot2.h"
#include "kernel/lib/result.h"
#include "kernel/runtime/heap_hooks.h"  // kmalloc / kfree

namespace lantern::memory {

// Builds the frame allocator from the Multiboot2 memory map, reserving the kernel image,
// the boot information, the modules and the first MiB. Returns the direct-map size needed.
Result<uint64_t> init_frames(const multiboot2::BootInfo& info, uint64_t boot_info_phys,
                             uint64_t boot_info_size);
void init_heap();

Result<uint64_t> alloc_frame();
Result<uint64_t> alloc_contiguous(size_t frames, uint64_t align_bytes);
Result<void> free_frame(uint64_t phys);
Result<void> free_contiguous(uint64_t phys, size_t frames);

struct Stats {
  uint64_t total_frames;
  uint64_t free_frames;
  uint64_t heap_bytes_in_use;
  uint64_t heap_bytes_reserved;
  uint64_t heap_live_allocations;
};
Stats stats();

}  // namespace lantern::memory
