// General-purpose allocator over memory regions obtained from a grow callback (portable,
// namespace lantern::lib). The kernel's kmalloc/kfree (and so operator new/delete, libstdc++
// containers and nlohmann/json) sit on one instance, wrapped in a spinlock: HeapAllocator
// itself is NOT thread-safe.
//
// Design: boundary tags with immediate coalescing, and segregated free lists (one list per
// power-of-two size class, first fit inside a class, any block of a larger class). Every block
// starts with a 16-byte header {size of the previous block, magic|size}; payloads are 16-byte
// aligned. Alignments up to 4096 are served by splitting a free block in front of the payload.
// Each region ends with a sentinel header, so coalescing never leaves a region.
//
// Misuse detection: release() of a pointer outside every region, of a block whose header magic
// is wrong, of an already-free block ("double free"), or whose boundary tags disagree (an
// overrun of the previous block) is reported through the corruption callback; the kernel panics
// there. If the callback returns (tests), the heap is left unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernel/lib/result.h"

namespace lantern::lib {

struct HeapStats {
  size_t region_bytes = 0;  // bytes handed to the heap (after trimming to 16-byte edges)
  size_t bytes_in_use = 0;  // bytes of blocks holding live allocations (headers included)
  size_t bytes_free = 0;    // bytes of free blocks (headers included)
  size_t peak_bytes_in_use = 0;
  size_t live_allocations = 0;
  size_t free_blocks = 0;
  size_t largest_free_payload = 0;  // biggest allocation (16-byte aligned) possible without growing
  uint64_t total_allocations = 0;
  uint64_t total_releases = 0;
  uint64_t failed_allocations = 0;  // allocate() returned nullptr
  uint32_t regions = 0;
};

class HeapAllocator {
 public:
  // Returns at least min_bytes of fresh memory (any alignment; it is trimmed to 16 bytes), or
  // an error when no more memory can be had.
  using GrowFn = Result<std::span<uint8_t>> (*)(void* ctx, size_t min_bytes);
  // Called with a static description when misuse or corruption is detected.
  using CorruptionFn = void (*)(void* ctx, const char* why);

  static constexpr size_t kMinAlign = 16;
  static constexpr size_t kMaxAlign = 4096;
  // Per-allocation overhead (the block header).
  static constexpr size_t kHeaderBytes = 16;
  // Bookkeeping per region: the region record and the end sentinel.
  static constexpr size_t kRegionOverhead = 48;
  // The largest single request accepted (the header's size field holds 48 bits).
  static constexpr size_t kMaxAllocation = size_t{1} << 46;

  // grow may be nullptr (then only add_region() supplies memory); corruption must not be.
  HeapAllocator(GrowFn grow, void* grow_ctx, CorruptionFn corruption, void* corruption_ctx);
  HeapAllocator(const HeapAllocator&) = delete;
  HeapAllocator& operator=(const HeapAllocator&) = delete;

  // Hands a region to the heap (e.g. a static early-boot arena). kInvalidArgument when it is
  // too small to hold one minimal block after alignment, or overlaps an existing region.
  Result<void> add_region(std::span<uint8_t> memory);

  // size bytes aligned to `align` (a power of two; 0 and values below 16 mean 16). nullptr
  // when align is not a power of two, is above kMaxAlign, size is above kMaxAllocation, or
  // memory is exhausted (grow failed). size 0 gives a unique minimal allocation.
  void* allocate(size_t size, size_t align = kMinAlign);
  // Frees an allocation; nullptr is ignored.
  void release(void* ptr);

  // Payload bytes usable at ptr (>= the size asked for), 0 for nullptr or a pointer that is
  // not a live allocation of this heap (reported to the corruption callback).
  size_t usable_size(const void* ptr) const;
  // True when ptr lies inside one of this heap's regions.
  bool owns(const void* ptr) const;

  size_t bytes_in_use() const { return used_bytes_; }
  size_t bytes_free() const { return free_bytes_; }
  size_t live_allocations() const { return live_allocations_; }
  HeapStats stats() const;

  // Walks every block of every region and checks headers, boundary tags, coalescing and the
  // free-list accounting. Reports the first problem to the corruption callback.
  bool check() const;

 private:
  struct Block;
  struct Region;
  static constexpr int kBins = 64;

  Region* find_region(const void* ptr) const;
  // Validates a live allocation's block; reports and returns nullptr when it is not one.
  Block* validate_live(const void* ptr) const;
  Block* find_fit(size_t need, size_t align, size_t* gap) const;
  void* carve(Block* block, size_t gap, size_t need);
  void insert_free(Block* block);
  void remove_free(Block* block);
  bool grow_for(size_t need, size_t align);
  void report(const char* why) const;

  GrowFn grow_;
  void* grow_ctx_;
  CorruptionFn corruption_;
  void* corruption_ctx_;
  Region* regions_ = nullptr;
  Block* bins_[kBins] = {};
  uint64_t bin_bitmap_ = 0;
  size_t used_bytes_ = 0;
  size_t free_bytes_ = 0;
  size_t region_bytes_ = 0;
  size_t peak_used_bytes_ = 0;
  size_t live_allocations_ = 0;
  size_t free_block_count_ = 0;
  uint64_t total_allocations_ = 0;
  uint64_t total_releases_ = 0;
  uint64_t failed_allocations_ = 0;
  uint32_t region_count_ = 0;
};

}  // namespace lantern::lib
