// Physical frame allocator: two bitmaps (usable, free), next-fit single-frame allocation and
// first-fit aligned contiguous allocation. See frame_allocator.h.
#include "kernel/mm/frame_allocator.h"

namespace lantern::mm {
namespace {

constexpr uint64_t kLowFrames = kLowMemoryLimit / kFrameSize;  // frames below 1 MiB
constexpr uint64_t kAllOnes = ~uint64_t{0};

constexpr uint64_t align_down(uint64_t v, uint64_t a) {
  return v & ~(a - 1);
}

// Rounds up to a multiple of `a`; saturates to the highest multiple of `a` instead of wrapping.
constexpr uint64_t align_up_saturating(uint64_t v, uint64_t a) {
  if (v > kAllOnes - (a - 1)) return align_down(kAllOnes, a);
  return align_down(v + (a - 1), a);
}

constexpr uint64_t end_saturating(const PhysRange& r) {
  return (r.length > kAllOnes - r.base) ? kAllOnes : r.base + r.length;
}

// Bit population count without libgcc's __popcountdi2 (the kernel is built without -mpopcnt).
constexpr uint64_t popcount64(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0Full;
  return (x * 0x0101010101010101ull) >> 56;
}

// Mask of bits [lo, hi) within one word, 0 <= lo < hi <= 64.
constexpr uint64_t bit_mask(uint64_t lo, uint64_t hi) {
  const uint64_t upper = (hi == 64) ? kAllOnes : ((uint64_t{1} << hi) - 1);
  return upper & ~((uint64_t{1} << lo) - 1);
}

constexpr bool is_power_of_two(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

}  // namespace

size_t FrameAllocator::bitmap_bytes_for(uint64_t max_phys) {
  const uint64_t frames = max_phys / kFrameSize;  // only whole frames below max_phys
  return 2 * words_for(frames) * sizeof(uint64_t);
}

void FrameAllocator::set_range(uint64_t* bits, uint64_t first, uint64_t end, bool value) {
  while (first < end) {
    const uint64_t word = first / 64;
    const uint64_t lo = first % 64;
    const uint64_t hi = (end - word * 64 >= 64) ? 64 : end - word * 64;
    const uint64_t mask = bit_mask(lo, hi);
    if (value)
      bits[word] |= mask;
    else
      bits[word] &= ~mask;
    first = word * 64 + hi;
  }
}

uint64_t FrameAllocator::first_non_free(uint64_t first, uint64_t count) const {
  const uint64_t end = first + count;
  uint64_t frame = first;
  while (frame < end) {
    const uint64_t word = frame / 64;
    const uint64_t lo = frame % 64;
    const uint64_t hi = (end - word * 64 >= 64) ? 64 : end - word * 64;
    const uint64_t busy = ~free_[word] & bit_mask(lo, hi);
    if (busy != 0) return word * 64 + static_cast<uint64_t>(__builtin_ctzll(busy));
    frame = word * 64 + hi;
  }
  return end;
}

void FrameAllocator::take(uint64_t frame, uint64_t count) {
  set_range(free_, frame, frame + count, false);
  free_count_ -= count;
}

Result<void> FrameAllocator::init(std::span<const PhysRange> usable, std::span<const PhysRange> reserved,
                                  void* bitmap_storage, size_t bitmap_bytes, uint64_t max_phys) {
  usable_ = free_ = nullptr;
  words_ = 0;
  frame_limit_ = free_count_ = total_count_ = clipped_bytes_ = 0;
  hint_word_ = 0;

  if (max_phys <= kLowMemoryLimit) {
    return make_error(ErrorCode::kInvalidArgument, "frame allocator: max_phys must exceed 1 MiB", max_phys);
  }
  if (bitmap_storage == nullptr || reinterpret_cast<uintptr_t>(bitmap_storage) % alignof(uint64_t) != 0) {
    return make_error(ErrorCode::kInvalidArgument,
                      "frame allocator: bitmap storage null or not 8-byte aligned",
                      reinterpret_cast<uintptr_t>(bitmap_storage));
  }
  const size_t needed = bitmap_bytes_for(max_phys);
  if (bitmap_bytes < needed) {
    return make_error(ErrorCode::kInvalidArgument,
                      "frame allocator: bitmap storage too small for max_phys (detail = needed)", needed);
  }

  const uint64_t frame_limit = max_phys / kFrameSize;  // a partial last frame is not managed
  const uint64_t limit_bytes = frame_limit * kFrameSize;
  const size_t words = words_for(frame_limit);
  uint64_t* usable_bits = static_cast<uint64_t*>(bitmap_storage);
  uint64_t* free_bits = usable_bits + words;
  for (size_t i = 0; i < words; ++i) usable_bits[i] = 0;

  // Usable ranges, rounded inward; whatever lies at or above max_phys is clipped and counted.
  for (const PhysRange& r : usable) {
    const uint64_t start = align_up_saturating(r.base, kFrameSize);
    uint64_t end = align_down(end_saturating(r), kFrameSize);
    if (end <= start) continue;
    if (end > limit_bytes) {
      clipped_bytes_ += end - (start > limit_bytes ? start : limit_bytes);
      end = limit_bytes;
    }
    if (start < end) set_range(usable_bits, start / kFrameSize, end / kFrameSize, true);
  }

  // Low memory (frame 0 included) is never handed out.
  set_range(usable_bits, 0, kLowFrames < frame_limit ? kLowFrames : frame_limit, false);

  // Reserved ranges, rounded outward, win over usable ones.
  for (const PhysRange& r : reserved) {
    if (r.length == 0 || r.base >= limit_bytes) continue;
    const uint64_t start = align_down(r.base, kFrameSize);
    uint64_t end = end_saturating(r);
    if (end > limit_bytes) end = limit_bytes;
    end = align_up_saturating(end, kFrameSize);  // limit_bytes is aligned: cannot pass it
    set_range(usable_bits, start / kFrameSize, end / kFrameSize, false);
  }

  uint64_t total = 0;
  for (size_t i = 0; i < words; ++i) {
    free_bits[i] = usable_bits[i];
    total += popcount64(usable_bits[i]);
  }

  usable_ = usable_bits;
  free_ = free_bits;
  words_ = words;
  frame_limit_ = frame_limit;
  total_count_ = free_count_ = total;
  return ok();
}

Result<uint64_t> FrameAllocator::alloc_frame() {
  if (free_ == nullptr) {
    return make_error(ErrorCode::kInvalidState, "frame allocator: used before init()");
  }
  if (free_count_ == 0) {
    return make_error(ErrorCode::kOutOfMemory, "frame allocator: out of physical frames", 1);
  }
  // Next-fit: scan whole words from the hint, wrapping around once.
  for (size_t i = 0; i < words_; ++i) {
    size_t word = hint_word_ + i;
    if (word >= words_) word -= words_;
    if (free_[word] == 0) continue;
    const uint64_t frame = word * 64 + static_cast<uint64_t>(__builtin_ctzll(free_[word]));
    take(frame, 1);
    hint_word_ = word;
    return frame * kFrameSize;
  }
  // free_count_ said otherwise: the counters and the bitmap disagree.
  return make_error(ErrorCode::kInvalidState, "frame allocator: free count and bitmap disagree", free_count_);
}

Result<uint64_t> FrameAllocator::alloc_contiguous(size_t frames, uint64_t align_bytes) {
  if (free_ == nullptr) {
    return make_error(ErrorCode::kInvalidState, "frame allocator: used before init()");
  }
  if (frames == 0) {
    return make_error(ErrorCode::kInvalidArgument, "frame allocator: zero-frame allocation");
  }
  if (align_bytes < kFrameSize) align_bytes = kFrameSize;
  if (!is_power_of_two(align_bytes)) {
    return make_error(ErrorCode::kInvalidArgument, "frame allocator: alignment is not a power of two",
                      align_bytes);
  }
  const uint64_t align_frames = align_bytes / kFrameSize;
  const uint64_t count = frames;
  if (count <= free_count_ && align_frames < frame_limit_) {
    uint64_t start = align_up_saturating(kLowFrames, align_frames);
    while (start < frame_limit_ && count <= frame_limit_ - start) {
      const uint64_t busy = first_non_free(start, count);
      if (busy == start + count) {
        take(start, count);
        return start * kFrameSize;
      }
      start = align_up_saturating(busy + 1, align_frames);
    }
  }
  return make_error(ErrorCode::kOutOfMemory,
                    "frame allocator: no free contiguous run of the requested size and alignment", count);
}

Result<void> FrameAllocator::free_frame(uint64_t pa) {
  if (pa % kFrameSize != 0) {
    return make_error(ErrorCode::kInvalidArgument, "frame allocator: free of unaligned address", pa);
  }
  const uint64_t frame = pa / kFrameSize;
  if (frame >= frame_limit_ || !test(usable_, frame)) {
    return make_error(ErrorCode::kInvalidArgument, "frame allocator: free of a frame that was never usable",
                      pa);
  }
  if (test(free_, frame)) {
    return make_error(ErrorCode::kInvalidState, "frame allocator: double free", pa);
  }
  set_range(free_, frame, frame + 1, true);
  ++free_count_;
  return ok();
}

Result<void> FrameAllocator::free_contiguous(uint64_t pa, size_t frames) {
  if (pa % kFrameSize != 0) {
    return make_error(ErrorCode::kInvalidArgument, "frame allocator: free of unaligned address", pa);
  }
  const uint64_t first = pa / kFrameSize;
  if (frames == 0 || first >= frame_limit_ || frames > frame_limit_ - first) {
    return make_error(ErrorCode::kInvalidArgument, "frame allocator: free of a run outside the managed range",
                      pa);
  }
  for (uint64_t f = first; f < first + frames; ++f) {
    if (!test(usable_, f)) {
      return make_error(ErrorCode::kInvalidArgument, "frame allocator: free of a frame that was never usable",
                        f * kFrameSize);
    }
    if (test(free_, f))
      return make_error(ErrorCode::kInvalidState, "frame allocator: double free", f * kFrameSize);
  }
  set_range(free_, first, first + frames, true);
  free_count_ += frames;
  return ok();
}

bool FrameAllocator::is_free(uint64_t pa) const {
  const uint64_t frame = pa / kFrameSize;
  return frame < frame_limit_ && test(free_, frame);
}

}  // namespace lantern::mm
