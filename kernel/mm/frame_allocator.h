// Physical frame allocator (portable): 4 KiB frames tracked in a caller-supplied bitmap.
//
// Built from the firmware memory map's usable ranges minus reserved ranges (kernel image,
// boot modules, ACPI tables, the Multiboot2 info, the bitmap storage itself, ...). Usable
// ranges are rounded inward and reserved ranges outward to 4 KiB, so a partially reserved
// frame is never handed out. Frames below 1 MiB (frame 0 included) are never handed out:
// the kernel keeps low memory for the AP start-up trampoline (Intel SDM Vol. 3A, "MP
// Initialization Protocol Algorithm": the SIPI vector names a 4 KiB page below 1 MiB) and for
// firmware structures.
//
// Storage layout: two bitmaps of one bit per frame below max_phys, each rounded up to a
// whole number of 64-bit words: `usable` (1 = this frame may ever be handed out) followed by
// `free` (1 = currently free). The usable bitmap lets free_frame() reject frames that were
// never allocatable. 2 bits per frame: 64 KiB of bitmap per GiB of physical address space.
//
// Frames are NOT zeroed (the allocator never touches the memory it manages).
// Not thread-safe: the kernel wraps the allocator in a spinlock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernel/lib/result.h"

namespace lantern::mm {

inline constexpr uint64_t kFrameSize = 4096;          // 4-KByte page: Intel SDM Vol. 3A, 4.5
inline constexpr uint64_t kLowMemoryLimit = 1 << 20;  // 1 MiB: never handed out (see above)

struct PhysRange {
  uint64_t base;
  uint64_t length;
};

class FrameAllocator {
 public:
  // Bytes of bitmap storage needed to manage physical addresses [0, max_phys): two bitmaps of
  // floor(max_phys / 4096) bits, each rounded up to a multiple of 8 bytes.
  static size_t bitmap_bytes_for(uint64_t max_phys);

  // (Re)initialises the allocator. `bitmap_storage` must be 8-byte aligned, at least
  // bitmap_bytes_for(max_phys) bytes, and must stay valid (and be listed in `reserved`, if it
  // lies in usable RAM) for the allocator's lifetime. `max_phys` is the exclusive upper bound
  // of managed physical memory; it must exceed 1 MiB and is rounded down to 4 KiB. Usable
  // ranges (or parts of them) at or above max_phys are clipped and counted in clipped_bytes(),
  // so the kernel can log what it ignored. Ranges may overlap each other; a length that would
  // wrap around 2^64 saturates. Errors: kInvalidArgument (bad storage/max_phys; detail = needed
  // bytes or max_phys). A failed init() leaves the allocator empty (allocations fail).
  Result<void> init(std::span<const PhysRange> usable, std::span<const PhysRange> reserved,
                    void* bitmap_storage, size_t bitmap_bytes, uint64_t max_phys);

  // One free 4 KiB frame (its physical address), searched next-fit from the last allocation.
  // kOutOfMemory when none is left; kInvalidState before init().
  Result<uint64_t> alloc_frame();

  // `frames` physically contiguous free frames whose first address is a multiple of
  // `align_bytes` (a power of two; values below 4096, including 0, mean 4096). Used for 2 MiB
  // pages, VMXON/VMCS regions, DMA rings. First-fit from the bottom of memory.
  // kInvalidArgument for frames == 0 or a non-power-of-two alignment; kOutOfMemory (detail =
  // frames) when no such run exists.
  Result<uint64_t> alloc_contiguous(size_t frames, uint64_t align_bytes);

  // Returns one frame. kInvalidArgument if `pa` is not 4 KiB aligned or was never usable
  // (reserved, below 1 MiB, outside the map, at/above max_phys); kInvalidState on a double free.
  Result<void> free_frame(uint64_t pa);
  // Returns `frames` frames starting at `pa` (e.g. a run from alloc_contiguous()). Every frame
  // is checked first: on any error (as free_frame(), detail = the offending address, or
  // kInvalidArgument for frames == 0 or a run past the managed range) nothing is freed.
  Result<void> free_contiguous(uint64_t pa, size_t frames);

  uint64_t free_frames() const { return free_count_; }
  uint64_t total_frames() const { return total_count_; }
  // Bytes of usable RAM that init() dropped because they lay at or above max_phys.
  uint64_t clipped_bytes() const { return clipped_bytes_; }
  uint64_t max_phys() const { return frame_limit_ * kFrameSize; }
  // True if `pa`'s frame is usable and currently free (false outside the managed range).
  bool is_free(uint64_t pa) const;

 private:
  static size_t words_for(uint64_t frames) { return static_cast<size_t>((frames + 63) / 64); }
  bool test(const uint64_t* bits, uint64_t frame) const { return (bits[frame / 64] >> (frame % 64)) & 1; }
  // Index of the first frame in [first, first + count) that is not free, or first + count.
  uint64_t first_non_free(uint64_t first, uint64_t count) const;
  // Sets (value=true) or clears the bits of frames [first, end) in `bits`.
  void set_range(uint64_t* bits, uint64_t first, uint64_t end, bool value);
  void take(uint64_t frame, uint64_t count);

  uint64_t* usable_ = nullptr;
  uint64_t* free_ = nullptr;
  size_t words_ = 0;          // words per bitmap
  uint64_t frame_limit_ = 0;  // frames [0, frame_limit_) are tracked
  uint64_t free_count_ = 0;
  uint64_t total_count_ = 0;
  uint64_t clipped_bytes_ = 0;
  size_t hint_word_ = 0;  // next-fit: word where the last alloc_frame() found a frame
};

}  // namespace lantern::mm
