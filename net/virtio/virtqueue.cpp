#include "net/virtio/virtqueue.h"

namespace lantern::net::virtio {

namespace {

constexpr size_t align_up(size_t value, size_t align) {
  return (value + align - 1) & ~(align - 1);
}

bool is_power_of_two(uint32_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

}  // namespace

Result<VirtqueueLayout> virtqueue_layout(uint16_t size) {
  if (!is_power_of_two(size) || size > 32768) {
    return make_error(ErrorCode::kInvalidArgument, "virtq: size must be a power of two", size);
  }
  VirtqueueLayout l;
  l.desc_bytes = size_t{16} * size;
  l.avail_bytes = 6 + size_t{2} * size;
  l.used_bytes = 6 + size_t{8} * size;
  l.desc_offset = 0;
  l.avail_offset = align_up(l.desc_offset + l.desc_bytes, kAvailAlign);
  l.used_offset = align_up(l.avail_offset + l.avail_bytes, kUsedAlign);
  l.total_bytes = l.used_offset + l.used_bytes;
  return l;
}

Result<void> SplitVirtqueue::init(uint16_t size, const DmaBuffer& memory, bool event_idx) {
  if (!is_power_of_two(size) || size > kMaxSize) {
    return make_error(ErrorCode::kInvalidArgument, "virtq: unsupported queue size", size);
  }
  VirtqueueLayout layout = TRY(virtqueue_layout(size));
  if (memory.virt == nullptr || memory.size < layout.total_bytes ||
      (reinterpret_cast<uintptr_t>(memory.virt) % kDescAlign) != 0 || (memory.phys % kDescAlign) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "virtq: ring memory too small or misaligned", memory.size);
  }
  auto* bytes = static_cast<uint8_t*>(memory.virt);
  for (size_t i = 0; i < layout.total_bytes; ++i) bytes[i] = 0;
  size_ = size;
  layout_ = layout;
  phys_ = memory.phys;
  desc_ = reinterpret_cast<VirtqDesc*>(bytes + layout.desc_offset);
  avail_ = reinterpret_cast<uint16_t*>(bytes + layout.avail_offset);
  used_ = reinterpret_cast<uint16_t*>(bytes + layout.used_offset);
  event_idx_ = event_idx;
  interrupts_enabled_ = true;
  avail_idx_ = 0;
  kicked_avail_idx_ = 0;
  last_used_idx_ = 0;
  // Free list 0 -> 1 -> ... -> size-1.
  for (uint16_t i = 0; i < size; ++i) {
    desc_[i].next = static_cast<uint16_t>(i + 1 < size ? i + 1 : 0);
    chain_length_[i] = 0;
    tokens_[i] = 0;
  }
  free_head_ = 0;
  num_free_ = size;
  return ok();
}

Result<uint16_t> SplitVirtqueue::add_buffer(std::span<const VirtqBuffer> readable,
                                            std::span<const VirtqBuffer> writable, uint64_t token) {
  size_t total = readable.size() + writable.size();
  if (total == 0 || total > size_) {
    return make_error(ErrorCode::kInvalidArgument, "virtq: chain empty or longer than queue", total);
  }
  if (total > num_free_) {
    return make_error(ErrorCode::kFull, "virtq: not enough free descriptors", num_free_);
  }
  // 3.2.1.1: place the buffers into free descriptors, chained through `next`.
  uint16_t head = free_head_;
  uint16_t index = head;
  uint16_t last = head;
  for (size_t i = 0; i < total; ++i) {
    bool is_writable = i >= readable.size();
    const VirtqBuffer& b = is_writable ? writable[i - readable.size()] : readable[i];
    VirtqDesc& d = desc_[index];
    d.addr = b.phys;
    d.len = b.len;
    d.flags = static_cast<uint16_t>((is_writable ? desc_flags::kWrite : 0) |
                                    (i + 1 < total ? desc_flags::kNext : 0));
    last = index;
    index = d.next;  // the free list's next entry is the chain's next descriptor
  }
  free_head_ = desc_[last].next;
  num_free_ = static_cast<uint16_t>(num_free_ - total);
  tokens_[head] = token;
  chain_length_[head] = static_cast<uint16_t>(total);

  // 3.2.1.2 / 3.2.1.3: ring entry, then (after a write barrier) the index.
  avail_ring()[avail_idx_ & (size_ - 1)] = head;
  avail_idx_ = static_cast<uint16_t>(avail_idx_ + 1);
  dma_wmb();
  dma_store(avail_idx_field(), avail_idx_);
  return head;
}

bool SplitVirtqueue::kick_prepare() {
  // 3.2.1.4: the index must be visible before the suppression field is read.
  dma_mb();
  uint16_t old_idx = kicked_avail_idx_;
  uint16_t new_idx = avail_idx_;
  kicked_avail_idx_ = new_idx;
  if (old_idx == new_idx) return false;
  if (event_idx_) return virtq_need_event(dma_load(avail_event()), new_idx, old_idx);
  return (dma_load(used_flags()) & kUsedFlagNoNotify) == 0;
}

bool SplitVirtqueue::has_used() const {
  if (size_ == 0) return false;
  return dma_load(used_idx_field()) != last_used_idx_;
}

Result<std::optional<VirtqUsed>> SplitVirtqueue::get_used() {
  if (size_ == 0) return std::optional<VirtqUsed>{};
  uint16_t used_idx = dma_load(used_idx_field());
  if (used_idx == last_used_idx_) return std::optional<VirtqUsed>{};
  uint16_t pending = static_cast<uint16_t>(used_idx - last_used_idx_);
  if (pending > size_) {
    return make_error(ErrorCode::kMalformed, "virtq: used index ran ahead of the queue", pending);
  }
  dma_rmb();  // the entry is read only after the index that covers it
  VirtqUsedElem elem = used_ring()[last_used_idx_ & (size_ - 1)];
  last_used_idx_ = static_cast<uint16_t>(last_used_idx_ + 1);
  if (event_idx_ && interrupts_enabled_) {
    // 2.4.7.2: interrupt me when the device moves past the entry I consumed last.
    dma_store(used_event(), last_used_idx_);
  }
  if (elem.id >= size_ || chain_length_[elem.id] == 0) {
    return make_error(ErrorCode::kMalformed, "virtq: used id is not an outstanding chain", elem.id);
  }
  uint16_t head = static_cast<uint16_t>(elem.id);
  uint16_t length = chain_length_[head];
  // Walk the chain as we wrote it (chain_length_ bounds the walk; `next` is ours).
  uint16_t last = head;
  for (uint16_t i = 1; i < length; ++i) last = desc_[last].next;
  desc_[last].next = free_head_;
  free_head_ = head;
  num_free_ = static_cast<uint16_t>(num_free_ + length);
  chain_length_[head] = 0;
  VirtqUsed used;
  used.token = tokens_[head];
  used.len = elem.len;
  used.head = head;
  return std::optional<VirtqUsed>{used};
}

void SplitVirtqueue::disable_interrupts() {
  if (size_ == 0) return;
  interrupts_enabled_ = false;
  if (event_idx_) {
    // 2.4.7.1: with EVENT_IDX the driver keeps flags at 0 and uses used_event alone; an event
    // index already passed is not crossed again until the index wraps all the way round.
    dma_store(used_event(), static_cast<uint16_t>(last_used_idx_ - 1));
  } else {
    dma_store(avail_flags(), kAvailFlagNoInterrupt);
  }
}

bool SplitVirtqueue::enable_interrupts() {
  if (size_ == 0) return false;
  interrupts_enabled_ = true;
  if (event_idx_) {
    dma_store(used_event(), last_used_idx_);
  } else {
    dma_store(avail_flags(), uint16_t{0});
  }
  dma_mb();  // publish before re-checking, or an entry added meanwhile raises no interrupt
  return has_used();
}

}  // namespace lantern::net::virtio
