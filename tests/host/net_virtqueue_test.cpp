// Split virtqueue bookkeeping (virtio 1.0 spec 2.4): layout, free list, chains, ring full,
// 16-bit index wrap-around, malformed completions and event suppression. The test plays the
// device by reading the available ring and writing the used ring directly.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "net/virtio/virtqueue.h"
#include "tests/host/net_test_fakes.h"

namespace lantern::net::virtio {
namespace {

using testing::FakeDma;

// The device's view of a queue.
class DeviceSide {
 public:
  DeviceSide(FakeDma& dma, const SplitVirtqueue& q) : size_(q.size()) {
    desc_ = reinterpret_cast<VirtqDesc*>(dma.translate(q.desc_phys()));
    avail_ = reinterpret_cast<uint16_t*>(dma.translate(q.avail_phys()));
    used_ = reinterpret_cast<uint16_t*>(dma.translate(q.used_phys()));
  }
  uint16_t avail_flags() const { return avail_[0]; }
  uint16_t avail_idx() const { return avail_[1]; }
  uint16_t avail_entry(uint16_t i) const { return avail_[2 + (i & (size_ - 1))]; }
  uint16_t used_event() const { return avail_[2 + size_]; }
  VirtqDesc& desc(uint16_t i) { return desc_[i]; }
  void set_used_flags(uint16_t f) { used_[0] = f; }
  uint16_t used_idx() const { return used_[1]; }
  void set_used_idx(uint16_t i) { used_[1] = i; }
  void set_avail_event(uint16_t e) { used_[2 + 4 * size_] = e; }
  // Takes the next available chain and returns it as used with `len`.
  uint16_t complete_next(uint32_t len) {
    uint16_t head = avail_entry(next_avail_++);
    push_used(head, len);
    return head;
  }
  void push_used(uint32_t id, uint32_t len) {
    auto* ring = reinterpret_cast<VirtqUsedElem*>(used_ + 2);
    ring[used_[1] & (size_ - 1)] = VirtqUsedElem{id, len};
    used_[1] = static_cast<uint16_t>(used_[1] + 1);
  }
  uint16_t next_avail_ = 0;

 private:
  uint16_t size_;
  VirtqDesc* desc_;
  uint16_t* avail_;
  uint16_t* used_;
};

class VirtqueueTest : public ::testing::Test {
 protected:
  void make(uint16_t size, bool event_idx = false) {
    auto layout = virtqueue_layout(size);
    ASSERT_TRUE(layout);
    auto mem = dma.alloc_dma(layout->total_bytes, 4096);
    ASSERT_TRUE(mem);
    ASSERT_TRUE(q.init(size, *mem, event_idx));
    dev = std::make_unique<DeviceSide>(dma, q);
  }
  VirtqBuffer buf(uint64_t phys, uint32_t len) { return VirtqBuffer{phys, len}; }

  FakeDma dma;
  SplitVirtqueue q;
  std::unique_ptr<DeviceSide> dev;
};

TEST(VirtqueueLayoutTest, SizesAndAlignment) {
  auto l = virtqueue_layout(256);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->desc_bytes, 4096u);
  EXPECT_EQ(l->avail_offset, 4096u);
  EXPECT_EQ(l->avail_bytes, 6u + 512);
  EXPECT_EQ(l->used_offset, 4616u);  // 4096 + 518 = 4614, rounded up to 4
  EXPECT_EQ(l->used_bytes, 6u + 2048);
  EXPECT_EQ(l->total_bytes, 4616u + 2054);
  auto one = virtqueue_layout(1);
  ASSERT_TRUE(one);
  EXPECT_EQ(one->used_offset, 24u);
  EXPECT_EQ(one->used_offset % kUsedAlign, 0u);
  EXPECT_TRUE(virtqueue_layout(32768));
  EXPECT_FALSE(virtqueue_layout(0));
  EXPECT_FALSE(virtqueue_layout(3));
  EXPECT_FALSE(virtqueue_layout(384));
}

TEST(VirtqueueInitTest, RejectsBadSizesAndMemory) {
  FakeDma dma;
  auto mem = dma.alloc_dma(1 << 16, 4096);
  ASSERT_TRUE(mem);
  SplitVirtqueue q;
  EXPECT_EQ(q.init(6, *mem, false).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(q.init(2048, *mem, false).error().code, ErrorCode::kInvalidArgument);  // > kMaxSize
  DmaBuffer small = *mem;
  small.size = 100;
  EXPECT_EQ(q.init(8, small, false).error().code, ErrorCode::kInvalidArgument);
  DmaBuffer skewed = *mem;
  skewed.virt = static_cast<uint8_t*>(skewed.virt) + 8;
  skewed.phys += 8;
  EXPECT_EQ(q.init(8, skewed, false).error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(q.init(8, *mem, false));
  EXPECT_EQ(q.num_free(), 8);
}

TEST_F(VirtqueueTest, SingleBufferIsPublished) {
  make(8);
  VirtqBuffer b = buf(0x1000, 64);
  auto head = q.add_buffer(std::span(&b, 1), {}, 77);
  ASSERT_TRUE(head);
  EXPECT_EQ(dev->avail_idx(), 1);
  EXPECT_EQ(dev->avail_entry(0), *head);
  EXPECT_EQ(dev->desc(*head).addr, 0x1000u);
  EXPECT_EQ(dev->desc(*head).len, 64u);
  EXPECT_EQ(dev->desc(*head).flags, 0);
  EXPECT_EQ(q.num_free(), 7);
  EXPECT_TRUE(q.kick_prepare());
  EXPECT_FALSE(q.kick_prepare());  // nothing new since
  EXPECT_FALSE(q.has_used());
  auto none = q.get_used();
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  dev->complete_next(10);
  EXPECT_TRUE(q.has_used());
  auto used = q.get_used();
  ASSERT_TRUE(used);
  ASSERT_TRUE(used->has_value());
  EXPECT_EQ((*used)->token, 77u);
  EXPECT_EQ((*used)->len, 10u);
  EXPECT_EQ((*used)->head, *head);
  EXPECT_EQ(q.num_free(), 8);
}

TEST_F(VirtqueueTest, ChainPutsReadableBeforeWritable) {
  make(8);
  VirtqBuffer out[] = {buf(0x1000, 12), buf(0x2000, 100)};
  VirtqBuffer in[] = {buf(0x3000, 1)};
  auto head = q.add_buffer(out, in, 5);
  ASSERT_TRUE(head);
  EXPECT_EQ(q.num_free(), 5);
  uint16_t i0 = *head;
  const VirtqDesc& d0 = dev->desc(i0);
  EXPECT_EQ(d0.addr, 0x1000u);
  EXPECT_EQ(d0.flags, desc_flags::kNext);
  uint16_t i1 = d0.next;
  const VirtqDesc& d1 = dev->desc(i1);
  EXPECT_EQ(d1.addr, 0x2000u);
  EXPECT_EQ(d1.flags, desc_flags::kNext);
  const VirtqDesc& d2 = dev->desc(d1.next);
  EXPECT_EQ(d2.addr, 0x3000u);
  EXPECT_EQ(d2.len, 1u);
  EXPECT_EQ(d2.flags, desc_flags::kWrite);  // last: no NEXT
  EXPECT_NE(i0, i1);
  // A writable-only chain (receive buffer).
  auto rx = q.add_buffer({}, in, 6);
  ASSERT_TRUE(rx);
  EXPECT_EQ(dev->desc(*rx).flags, desc_flags::kWrite);
  EXPECT_EQ(dev->avail_idx(), 2);
}

TEST_F(VirtqueueTest, RingFullAndOversizedChains) {
  make(4);
  VirtqBuffer b = buf(0x1000, 1);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(q.add_buffer(std::span(&b, 1), {}, i));
  EXPECT_EQ(q.num_free(), 0);
  auto full = q.add_buffer(std::span(&b, 1), {}, 9);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, ErrorCode::kFull);
  EXPECT_EQ(dev->avail_idx(), 4);  // nothing published
  VirtqBuffer five[5] = {b, b, b, b, b};
  EXPECT_EQ(q.add_buffer(five, {}, 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(q.add_buffer({}, {}, 0).error().code, ErrorCode::kInvalidArgument);
  // One completes: a one-descriptor chain fits again, a two-descriptor chain does not.
  dev->complete_next(0);
  ASSERT_TRUE(q.get_used());
  EXPECT_EQ(q.num_free(), 1);
  VirtqBuffer two[2] = {b, b};
  EXPECT_EQ(q.add_buffer(two, {}, 0).error().code, ErrorCode::kFull);
  EXPECT_TRUE(q.add_buffer(std::span(&b, 1), {}, 10));
}

TEST_F(VirtqueueTest, OutOfOrderCompletionRebuildsFreeList) {
  make(8);
  VirtqBuffer b = buf(0x1000, 1);
  VirtqBuffer pair[2] = {b, b};
  auto a = q.add_buffer(pair, {}, 1);  // 2 descriptors
  auto c = q.add_buffer(std::span(&b, 1), {}, 2);
  auto d = q.add_buffer(pair, {}, 3);  // 2 descriptors
  ASSERT_TRUE(a && c && d);
  EXPECT_EQ(q.num_free(), 3);
  dev->push_used(*d, 0);
  dev->push_used(*a, 0);
  auto u1 = q.get_used();
  auto u2 = q.get_used();
  ASSERT_TRUE(u1 && u2 && u1->has_value() && u2->has_value());
  EXPECT_EQ((*u1)->token, 3u);
  EXPECT_EQ((*u2)->token, 1u);
  EXPECT_EQ(q.num_free(), 7);
  // Every free descriptor can be handed out again: fill the queue completely.
  VirtqBuffer seven[7] = {b, b, b, b, b, b, b};
  auto big = q.add_buffer(seven, {}, 4);
  ASSERT_TRUE(big);
  EXPECT_EQ(q.num_free(), 0);
  // The seven descriptors are distinct and exclude the one still held by chain `c`.
  std::vector<bool> seen(8, false);
  uint16_t i = *big;
  for (int n = 0; n < 7; ++n) {
    ASSERT_LT(i, 8);
    EXPECT_FALSE(seen[i]);
    EXPECT_NE(i, *c);
    seen[i] = true;
    i = dev->desc(i).next;
  }
}

TEST_F(VirtqueueTest, IndicesWrapFrom65535ToZero) {
  make(4);
  VirtqBuffer b = buf(0x1000, 1);
  bool saw_wrap = false;
  for (uint32_t n = 0; n < 70000; ++n) {
    uint16_t before = q.avail_idx();
    auto head = q.add_buffer(std::span(&b, 1), {}, n);
    ASSERT_TRUE(head) << n;
    if (before == 65535) {
      saw_wrap = true;
      EXPECT_EQ(q.avail_idx(), 0);
      EXPECT_EQ(dev->avail_idx(), 0);
      EXPECT_EQ(dev->avail_entry(65535), *head);  // slot 65535 & 3 = 3
    }
    dev->complete_next(n & 0xFF);
    auto used = q.get_used();
    ASSERT_TRUE(used) << n;
    ASSERT_TRUE(used->has_value()) << n;
    ASSERT_EQ((*used)->token, n);
    ASSERT_EQ((*used)->len, n & 0xFF);
  }
  EXPECT_TRUE(saw_wrap);
  EXPECT_EQ(q.avail_idx(), static_cast<uint16_t>(70000));
  EXPECT_EQ(q.last_used_idx(), static_cast<uint16_t>(70000));
  EXPECT_EQ(q.num_free(), 4);
}

TEST_F(VirtqueueTest, BatchesStraddlingTheWrap) {
  make(8);
  VirtqBuffer b = buf(0x1000, 1);
  // Walk to 65532 in batches of 4, then a batch of 8 that crosses 65535 -> 0 -> 3.
  for (uint32_t n = 0; n < 65532; n += 4) {
    for (int k = 0; k < 4; ++k) ASSERT_TRUE(q.add_buffer(std::span(&b, 1), {}, k));
    for (int k = 0; k < 4; ++k) dev->complete_next(0);
    for (int k = 0; k < 4; ++k) ASSERT_TRUE(q.get_used());
  }
  ASSERT_EQ(q.avail_idx(), 65532);
  for (uint64_t k = 0; k < 8; ++k) ASSERT_TRUE(q.add_buffer(std::span(&b, 1), {}, 100 + k));
  EXPECT_EQ(dev->avail_idx(), 4);
  for (int k = 0; k < 8; ++k) dev->complete_next(0);
  EXPECT_EQ(dev->used_idx(), 4);
  for (uint64_t k = 0; k < 8; ++k) {
    auto used = q.get_used();
    ASSERT_TRUE(used && used->has_value());
    EXPECT_EQ((*used)->token, 100 + k);
  }
  auto none = q.get_used();
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

TEST_F(VirtqueueTest, MalformedCompletions) {
  make(8);
  VirtqBuffer b = buf(0x1000, 1);
  auto head = q.add_buffer(std::span(&b, 1), {}, 1);
  ASSERT_TRUE(head);
  // A head the driver never exposed.
  dev->push_used(static_cast<uint32_t>(*head + 1), 0);
  auto bad = q.get_used();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kMalformed);
  EXPECT_EQ(q.num_free(), 7);  // nothing freed by the bogus entry
  // An id beyond the table.
  dev->push_used(4000, 0);
  EXPECT_EQ(q.get_used().error().detail, 4000u);
  // The real completion still works afterwards.
  dev->push_used(*head, 3);
  auto good = q.get_used();
  ASSERT_TRUE(good && good->has_value());
  EXPECT_EQ((*good)->token, 1u);
  // A used index that runs more than a queue ahead.
  dev->set_used_idx(static_cast<uint16_t>(q.last_used_idx() + 9));
  auto jump = q.get_used();
  ASSERT_FALSE(jump);
  EXPECT_EQ(jump.error().detail, 9u);
  // A duplicate completion of an already-returned head.
  make(8);
  head = q.add_buffer(std::span(&b, 1), {}, 1);
  ASSERT_TRUE(head);
  dev->push_used(*head, 0);
  dev->push_used(*head, 0);
  EXPECT_TRUE(q.get_used());
  EXPECT_EQ(q.get_used().error().code, ErrorCode::kMalformed);
  EXPECT_EQ(q.num_free(), 8);
}

TEST_F(VirtqueueTest, FlagBasedSuppression) {
  make(8);
  VirtqBuffer b = buf(0x1000, 1);
  dev->set_used_flags(kUsedFlagNoNotify);
  ASSERT_TRUE(q.add_buffer(std::span(&b, 1), {}, 1));
  EXPECT_FALSE(q.kick_prepare());
  dev->set_used_flags(0);
  ASSERT_TRUE(q.add_buffer(std::span(&b, 1), {}, 2));
  EXPECT_TRUE(q.kick_prepare());
  q.disable_interrupts();
  EXPECT_EQ(dev->avail_flags(), kAvailFlagNoInterrupt);
  EXPECT_FALSE(q.enable_interrupts());
  EXPECT_EQ(dev->avail_flags(), 0);
  dev->complete_next(0);
  q.disable_interrupts();
  EXPECT_TRUE(q.enable_interrupts());  // something arrived while disabled
}

TEST(VirtqNeedEventTest, Arithmetic) {
  EXPECT_TRUE(virtq_need_event(0, 1, 0));
  EXPECT_FALSE(virtq_need_event(1, 1, 0));  // event at 1 not yet crossed (1 -> 2 would)
  EXPECT_TRUE(virtq_need_event(5, 8, 3));
  EXPECT_FALSE(virtq_need_event(9, 8, 3));
  EXPECT_FALSE(virtq_need_event(2, 8, 3));         // already passed before old
  EXPECT_TRUE(virtq_need_event(65535, 1, 65534));  // across the wrap
  EXPECT_TRUE(virtq_need_event(0, 2, 65535));
  EXPECT_FALSE(virtq_need_event(3, 2, 65535));
  EXPECT_FALSE(virtq_need_event(7, 7, 7));  // nothing moved
}

TEST_F(VirtqueueTest, EventIdxSuppression) {
  make(8, /*event_idx=*/true);
  VirtqBuffer b = buf(0x1000, 1);
  dev->set_avail_event(2);  // "kick me when you publish entry 2"
  ASSERT_TRUE(q.add_buffer(std::span(&b, 1), {}, 1));
  ASSERT_TRUE(q.add_buffer(std::span(&b, 1), {}, 2));
  EXPECT_FALSE(q.kick_prepare());  // idx 0 -> 2: entry 2 not yet published
  ASSERT_TRUE(q.add_buffer(std::span(&b, 1), {}, 3));
  EXPECT_TRUE(q.kick_prepare());           // 2 -> 3 crosses it
  dev->set_used_flags(kUsedFlagNoNotify);  // ignored under EVENT_IDX
  dev->set_avail_event(3);
  ASSERT_TRUE(q.add_buffer(std::span(&b, 1), {}, 4));
  EXPECT_TRUE(q.kick_prepare());
  // The driver asks for an interrupt after each entry it consumes.
  dev->complete_next(0);
  dev->complete_next(0);
  ASSERT_TRUE(q.get_used());
  EXPECT_EQ(dev->used_event(), 1);
  q.disable_interrupts();
  EXPECT_EQ(dev->avail_flags(), 0);  // flags stay 0 with EVENT_IDX (2.4.7.1)
  EXPECT_EQ(dev->used_event(), 0);   // already passed: no interrupt
  ASSERT_TRUE(q.get_used());
  EXPECT_EQ(dev->used_event(), 0);  // not re-armed while disabled
  EXPECT_FALSE(q.enable_interrupts());
  EXPECT_EQ(dev->used_event(), 2);
}

}  // namespace
}  // namespace lantern::net::virtio
