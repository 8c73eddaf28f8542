// Boundary-tag allocator with segregated free lists; see heap.h.
//
// Region layout (all addresses 16-byte aligned):
//   [Region record, 32 bytes][block][block]...[block][sentinel header, 16 bytes]
// Block layout: [prev_size:8][magic:16 | size:48][payload...]. A free block's payload starts
// with its free-list links. Invariants: sizes are multiples of 16 and at least kMinBlock; the
// next block's prev_size equals this block's size; no two free blocks are adjacent.
#include "kernel/lib/heap.h"

namespace lantern::lib {

struct HeapAllocator::Block {
  uint64_t prev_size;  // 0: first block of its region
  uint64_t tag;        // magic in bits 63..48, size in bits 47..0

  // Links of a free block, kept in its payload.
  Block*& next_free() { return reinterpret_cast<Block**>(this + 1)[0]; }
  Block*& prev_free() { return reinterpret_cast<Block**>(this + 1)[1]; }
};

struct HeapAllocator::Region {
  Region* next;
  uintptr_t first_block;  // address of the first block
  uintptr_t sentinel;     // address of the end sentinel header
  uint64_t bytes;         // region bytes after trimming
};

namespace {

constexpr uint64_t kMagicUsed = 0xA110;
constexpr uint64_t kMagicFree = 0xF4EE;
constexpr uint64_t kMagicSentinel = 0x5E47;
constexpr uint64_t kSizeMask = (uint64_t{1} << 48) - 1;
// Header plus two free-list links.
constexpr size_t kMinBlock = 32;
constexpr size_t kRegionRecord = 32;

constexpr uintptr_t align_up(uintptr_t v, uintptr_t a) {
  return (v + a - 1) & ~(a - 1);
}
constexpr uintptr_t align_down(uintptr_t v, uintptr_t a) {
  return v & ~(a - 1);
}

int bin_of(size_t size) {
  return 63 - __builtin_clzll(size);
}

// Header accessors, templated so that they can take the private HeapAllocator::Block.
template <typename B>
uint64_t magic_of(const B* b) {
  return b->tag >> 48;
}
template <typename B>
size_t size_of(const B* b) {
  return static_cast<size_t>(b->tag & kSizeMask);
}
template <typename B>
void set_tag(B* b, uint64_t magic, size_t size) {
  b->tag = (magic << 48) | (static_cast<uint64_t>(size) & kSizeMask);
}
template <typename B>
B* block_at(uintptr_t addr) {
  return reinterpret_cast<B*>(addr);
}
template <typename B>
B* next_block(B* b) {
  return block_at<B>(reinterpret_cast<uintptr_t>(b) + size_of(b));
}
}  // namespace

HeapAllocator::HeapAllocator(GrowFn grow, void* grow_ctx, CorruptionFn corruption, void* corruption_ctx)
    : grow_(grow), grow_ctx_(grow_ctx), corruption_(corruption), corruption_ctx_(corruption_ctx) {}

void HeapAllocator::report(const char* why) const {
  if (corruption_ != nullptr) corruption_(corruption_ctx_, why);
}

Result<void> HeapAllocator::add_region(std::span<uint8_t> memory) {
  const uintptr_t raw = reinterpret_cast<uintptr_t>(memory.data());
  if (memory.data() == nullptr || memory.size() > UINTPTR_MAX - raw) {
    return make_error(ErrorCode::kInvalidArgument, "heap region is null or wraps around");
  }
  const uintptr_t begin = align_up(raw, kMinAlign);
  const uintptr_t end = align_down(raw + memory.size(), kMinAlign);
  if (end < begin || end - begin < kRegionRecord + kMinBlock + kHeaderBytes) {
    return make_error(ErrorCode::kInvalidArgument, "heap region too small", memory.size());
  }
  if (end - begin - kRegionRecord - kHeaderBytes > kSizeMask) {
    return make_error(ErrorCode::kInvalidArgument, "heap region too large", memory.size());
  }
  for (Region* r = regions_; r != nullptr; r = r->next) {
    const uintptr_t rb = reinterpret_cast<uintptr_t>(r);
    const uintptr_t re = r->sentinel + kHeaderBytes;
    if (begin < re && rb < end) {
      return make_error(ErrorCode::kInvalidArgument, "heap region overlaps another", begin);
    }
  }
  auto* region = reinterpret_cast<Region*>(begin);
  region->first_block = begin + kRegionRecord;
  region->sentinel = end - kHeaderBytes;
  region->bytes = end - begin;
  region->next = regions_;
  regions_ = region;

  Block* first = block_at<Block>(region->first_block);
  const size_t first_size = region->sentinel - region->first_block;
  first->prev_size = 0;
  set_tag(first, kMagicFree, first_size);
  Block* sentinel = block_at<Block>(region->sentinel);
  sentinel->prev_size = first_size;
  set_tag(sentinel, kMagicSentinel, 0);
  free_bytes_ += first_size;
  region_bytes_ += region->bytes;
  ++region_count_;
  insert_free(first);
  return ok();
}

void HeapAllocator::insert_free(Block* block) {
  const int bin = bin_of(size_of(block));
  block->prev_free() = nullptr;
  block->next_free() = bins_[bin];
  if (bins_[bin] != nullptr) bins_[bin]->prev_free() = block;
  bins_[bin] = block;
  bin_bitmap_ |= uint64_t{1} << bin;
  ++free_block_count_;
}

void HeapAllocator::remove_free(Block* block) {
  const int bin = bin_of(size_of(block));
  if (block->prev_free() != nullptr)
    block->prev_free()->next_free() = block->next_free();
  else
    bins_[bin] = block->next_free();
  if (block->next_free() != nullptr) block->next_free()->prev_free() = block->prev_free();
  if (bins_[bin] == nullptr) bin_bitmap_ &= ~(uint64_t{1} << bin);
  --free_block_count_;
}

HeapAllocator::Region* HeapAllocator::find_region(const void* ptr) const {
  const auto p = reinterpret_cast<uintptr_t>(ptr);
  for (Region* r = regions_; r != nullptr; r = r->next) {
    if (p >= r->first_block && p < r->sentinel) return r;
  }
  return nullptr;
}

bool HeapAllocator::owns(const void* ptr) const {
  return find_region(ptr) != nullptr;
}

// Placement of a payload of `need` block bytes aligned to `align` inside free block `b`:
// returns the gap before the new block, or SIZE_MAX when it does not fit.
static size_t placement_gap(uintptr_t b, size_t block_size, size_t need, size_t align) {
  uintptr_t payload = align_up(b + 16, align);
  size_t gap = payload - 16 - b;
  // A leading fragment must be able to stand as a free block of its own.
  if (gap != 0 && gap < kMinBlock) gap += align;
  if (gap > block_size || block_size - gap < need) return SIZE_MAX;
  return gap;
}

HeapAllocator::Block* HeapAllocator::find_fit(size_t need, size_t align, size_t* gap) const {
  uint64_t candidates = bin_bitmap_ & (~uint64_t{0} << bin_of(need));
  while (candidates != 0) {
    const int bin = __builtin_ctzll(candidates);
    candidates &= candidates - 1;
    for (Block* b = bins_[bin]; b != nullptr; b = b->next_free()) {
      const size_t g = placement_gap(reinterpret_cast<uintptr_t>(b), size_of(b), need, align);
      if (g != SIZE_MAX) {
        *gap = g;
        return b;
      }
    }
  }
  return nullptr;
}

void* HeapAllocator::carve(Block* block, size_t gap, size_t need) {
  remove_free(block);
  size_t size = size_of(block);
  if (gap != 0) {  // leading fragment stays free
    set_tag(block, kMagicFree, gap);
    Block* moved = block_at<Block>(reinterpret_cast<uintptr_t>(block) + gap);
    moved->prev_size = gap;
    size -= gap;
    set_tag(moved, kMagicFree, size);
    next_block(moved)->prev_size = size;
    insert_free(block);
    block = moved;
  }
  if (size - need >= kMinBlock) {  // trailing remainder stays free
    Block* rest = block_at<Block>(reinterpret_cast<uintptr_t>(block) + need);
    rest->prev_size = need;
    set_tag(rest, kMagicFree, size - need);
    next_block(rest)->prev_size = size - need;
    insert_free(rest);
    size = need;
  }
  set_tag(block, kMagicUsed, size);
  free_bytes_ -= size;
  used_bytes_ += size;
  if (used_bytes_ > peak_used_bytes_) peak_used_bytes_ = used_bytes_;
  ++live_allocations_;
  ++total_allocations_;
  return block + 1;
}

bool HeapAllocator::grow_for(size_t need, size_t align) {
  if (grow_ == nullptr) return false;
  const size_t min_bytes = need + align + kMinBlock + kRegionOverhead + kMinAlign;
  Result<std::span<uint8_t>> memory = grow_(grow_ctx_, min_bytes);
  if (!memory.has_value()) return false;
  return add_region(*memory).has_value();
}

void* HeapAllocator::allocate(size_t size, size_t align) {
  if (align < kMinAlign) align = kMinAlign;
  if ((align & (align - 1)) != 0 || align > kMaxAlign || size > kMaxAllocation) {
    ++failed_allocations_;
    return nullptr;
  }
  size_t need = align_up((size < kMinAlign ? kMinAlign : size) + kHeaderBytes, kMinAlign);
  if (need < kMinBlock) need = kMinBlock;
  size_t gap = 0;
  Block* block = find_fit(need, align, &gap);
  if (block == nullptr && grow_for(need, align)) block = find_fit(need, align, &gap);
  if (block == nullptr) {
    ++failed_allocations_;
    return nullptr;
  }
  return carve(block, gap, need);
}

HeapAllocator::Block* HeapAllocator::validate_live(const void* ptr) const {
  const auto p = reinterpret_cast<uintptr_t>(ptr);
  Region* region = find_region(ptr);
  if (region == nullptr || (p & (kMinAlign - 1)) != 0 || p < region->first_block + kHeaderBytes) {
    report("heap: pointer was not allocated by this heap");
    return nullptr;
  }
  Block* b = block_at<Block>(p - kHeaderBytes);
  const uint64_t magic = magic_of(b);
  if (magic == kMagicFree) {
    report("heap: double free (block is already free)");
    return nullptr;
  }
  if (magic != kMagicUsed) {
    report("heap: bad block header magic (corruption or pointer into a block)");
    return nullptr;
  }
  const size_t size = size_of(b);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(b);
  if (size < kMinBlock || (size & (kMinAlign - 1)) != 0 || size > region->sentinel - addr ||
      next_block(b)->prev_size != size) {
    report("heap: block size and next block's boundary tag disagree (overrun?)");
    return nullptr;
  }
  if (b->prev_size != 0) {
    if (b->prev_size > addr - region->first_block ||
        size_of(block_at<Block>(addr - b->prev_size)) != b->prev_size) {
      report("heap: previous block's boundary tag is corrupted");
      return nullptr;
    }
  } else if (addr != region->first_block) {
    report("heap: previous block's boundary tag is corrupted");
    return nullptr;
  }
  return b;
}

void HeapAllocator::release(void* ptr) {
  if (ptr == nullptr) return;
  Block* b = validate_live(ptr);
  if (b == nullptr) return;
  size_t size = size_of(b);
  used_bytes_ -= size;
  free_bytes_ += size;
  --live_allocations_;
  ++total_releases_;
  set_tag(b, kMagicFree, size);

  Block* next = next_block(b);
  if (magic_of(next) == kMagicFree) {
    remove_free(next);
    size += size_of(next);
    set_tag(b, kMagicFree, size);
  }
  if (b->prev_size != 0) {
    Block* prev = block_at<Block>(reinterpret_cast<uintptr_t>(b) - b->prev_size);
    if (magic_of(prev) == kMagicFree) {
      remove_free(prev);
      size += size_of(prev);
      b = prev;
      set_tag(b, kMagicFree, size);
    }
  }
  next_block(b)->prev_size = size;
  insert_free(b);
}

size_t HeapAllocator::usable_size(const void* ptr) const {
  if (ptr == nullptr) return 0;
  const Block* b = validate_live(ptr);
  if (b == nullptr) return 0;
  // The header sits directly before the payload: the rest of the block is the allocation's.
  return size_of(b) - kHeaderBytes;
}

HeapStats HeapAllocator::stats() const {
  HeapStats s;
  s.region_bytes = region_bytes_;
  s.bytes_in_use = used_bytes_;
  s.bytes_free = free_bytes_;
  s.peak_bytes_in_use = peak_used_bytes_;
  s.live_allocations = live_allocations_;
  s.free_blocks = free_block_count_;
  s.total_allocations = total_allocations_;
  s.total_releases = total_releases_;
  s.failed_allocations = failed_allocations_;
  s.regions = region_count_;
  for (int bin = kBins - 1; bin >= 0 && s.largest_free_payload == 0; --bin) {
    for (Block* b = bins_[bin]; b != nullptr; b = b->next_free()) {
      const size_t payload = size_of(b) - kHeaderBytes;
      if (payload > s.largest_free_payload) s.largest_free_payload = payload;
    }
  }
  return s;
}

bool HeapAllocator::check() const {
  size_t used = 0;
  size_t free = 0;
  size_t free_blocks = 0;
  size_t live = 0;
  for (Region* r = regions_; r != nullptr; r = r->next) {
    uintptr_t addr = r->first_block;
    uint64_t prev_size = 0;
    bool prev_free = false;
    while (addr < r->sentinel) {
      Block* b = block_at<Block>(addr);
      const uint64_t magic = magic_of(b);
      const size_t size = size_of(b);
      if (magic != kMagicUsed && magic != kMagicFree) {
        report("heap check: bad block header magic");
        return false;
      }
      if (b->prev_size != prev_size) {
        report("heap check: boundary tag does not match the previous block's size");
        return false;
      }
      if (size < kMinBlock || (size & (kMinAlign - 1)) != 0 || size > r->sentinel - addr) {
        report("heap check: block size out of range");
        return false;
      }
      const bool is_free = magic == kMagicFree;
      if (is_free && prev_free) {
        report("heap check: two adjacent free blocks (missed coalescing)");
        return false;
      }
      if (is_free) {
        free += size;
        ++free_blocks;
      } else {
        used += size;
        ++live;
      }
      prev_free = is_free;
      prev_size = size;
      addr += size;
    }
    const Block* sentinel = block_at<Block>(r->sentinel);
    if (addr != r->sentinel || magic_of(sentinel) != kMagicSentinel || sentinel->prev_size != prev_size) {
      report("heap check: region end sentinel damaged");
      return false;
    }
  }
  size_t listed = 0;
  for (int bin = 0; bin < kBins; ++bin) {
    const bool bit = (bin_bitmap_ >> bin) & 1;
    if (bit != (bins_[bin] != nullptr)) {
      report("heap check: free-list bitmap out of date");
      return false;
    }
    for (Block* b = bins_[bin]; b != nullptr; b = b->next_free()) {
      if (magic_of(b) != kMagicFree || bin_of(size_of(b)) != bin || find_region(b) == nullptr) {
        report("heap check: free list holds a block that is not free");
        return false;
      }
      if (++listed > free_blocks) break;
    }
  }
  if (used != used_bytes_ || free != free_bytes_ || free_blocks != free_block_count_ ||
      listed != free_blocks || live != live_allocations_) {
    report("heap check: accounting does not match the blocks");
    return false;
  }
  return true;
}

}  // namespace lantern::lib
