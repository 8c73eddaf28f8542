#include "guest/output_ring.h"

namespace lantern::guest {

OutputRing::Slice OutputRing::read_since(uint64_t since, char* out, size_t capacity) const {
  const uint64_t total_before = total();
  const uint64_t oldest_held = total_before > kReadableBytes ? total_before - kReadableBytes : 0;
  uint64_t start = since < oldest_held ? oldest_held : since;
  if (start > total_before) start = total_before;
  const uint64_t end = total_before - start > capacity ? start + capacity : total_before;
  for (uint64_t offset = start; offset < end; ++offset) out[offset - start] = bytes_[offset % kBytes].load(std::memory_order_relaxed);
  // The writer may have run meanwhile. Byte t lands in the slot of byte t - kBytes before the
  // count becomes t + 1, so with a count of `after` the byte at offset `after` may already have
  // overwritten offset after - kBytes: everything older than after + 1 - kBytes is suspect.
  std::atomic_thread_fence(std::memory_order_acquire);  // the copy above happens before this count
  const uint64_t after = total_.load(std::memory_order_relaxed);
  const uint64_t oldest_stable = after + 1 > kBytes ? after + 1 - kBytes : 0;
  if (oldest_stable > start) {
    const uint64_t new_start = oldest_stable < end ? oldest_stable : end;
    const size_t skip = static_cast<size_t>(new_start - start);
    for (size_t i = skip; i < end - start; ++i) out[i - skip] = out[i];
    start = new_start;
  }
  return Slice{start, end, static_cast<size_t>(end - start)};
}

}  // namespace lantern::guest
