// Host tests for the physical frame allocator (kernel/mm/frame_allocator.h).
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "kernel/mm/frame_allocator.h"

namespace lantern::mm {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr uint64_t kGiB = 1024 * kMiB;

// An allocator plus 8-byte aligned bitmap storage of exactly the size it asks for.
struct Harness {
  explicit Harness(uint64_t max_phys)
      : max_phys(max_phys), storage(FrameAllocator::bitmap_bytes_for(max_phys) / 8) {}
  Result<void> init(std::vector<PhysRange> usable, std::vector<PhysRange> reserved = {}) {
    return fa.init(usable, reserved, storage.data(), storage.size() * 8, max_phys);
  }
  // Allocates until kOutOfMemory; returns every address handed out.
  std::vector<uint64_t> drain() {
    std::vector<uint64_t> out;
    while (true) {
      Result<uint64_t> r = fa.alloc_frame();
      if (!r.has_value()) {
        EXPECT_EQ(r.error().code, ErrorCode::kOutOfMemory);
        break;
      }
      out.push_back(*r);
    }
    return out;
  }
  uint64_t max_phys;
  std::vector<uint64_t> storage;
  FrameAllocator fa;
};

bool overlaps(uint64_t pa, uint64_t base, uint64_t end) {
  return pa + kFrameSize > base && pa < end;
}

TEST(FrameAllocatorInit, BitmapBytesFor) {
  // 4 GiB = 2^20 frames = 2^14 words per bitmap, two bitmaps of 8-byte words.
  EXPECT_EQ(FrameAllocator::bitmap_bytes_for(4 * kGiB), 2u * 16384 * 8);
  // 8191 bytes -> 1 whole frame -> one word per bitmap.
  EXPECT_EQ(FrameAllocator::bitmap_bytes_for(8191), 16u);
  // 64 frames + a partial one -> still one word per bitmap.
  EXPECT_EQ(FrameAllocator::bitmap_bytes_for(64 * kFrameSize + 4095), 16u);
  // 65 frames -> two words per bitmap.
  EXPECT_EQ(FrameAllocator::bitmap_bytes_for(65 * kFrameSize), 32u);
  EXPECT_EQ(FrameAllocator::bitmap_bytes_for(0), 0u);
}

TEST(FrameAllocatorInit, RejectsBadArguments) {
  Harness h(16 * kMiB);
  std::vector<PhysRange> usable{{0, 16 * kMiB}};
  Result<void> small = h.fa.init(usable, {}, h.storage.data(), h.storage.size() * 8 - 1, 16 * kMiB);
  ASSERT_FALSE(small.has_value());
  EXPECT_EQ(small.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(small.error().detail, FrameAllocator::bitmap_bytes_for(16 * kMiB));

  Result<void> misaligned = h.fa.init(usable, {}, reinterpret_cast<uint8_t*>(h.storage.data()) + 4,
                                      h.storage.size() * 8 - 8, 8 * kMiB);
  ASSERT_FALSE(misaligned.has_value());
  EXPECT_EQ(misaligned.error().code, ErrorCode::kInvalidArgument);

  Result<void> null_storage = h.fa.init(usable, {}, nullptr, 1 << 20, 16 * kMiB);
  ASSERT_FALSE(null_storage.has_value());
  EXPECT_EQ(null_storage.error().code, ErrorCode::kInvalidArgument);

  Result<void> low = h.fa.init(usable, {}, h.storage.data(), h.storage.size() * 8, kMiB);
  ASSERT_FALSE(low.has_value());
  EXPECT_EQ(low.error().code, ErrorCode::kInvalidArgument);

  // A failed init leaves the allocator unusable rather than half-initialised.
  Result<uint64_t> r = h.fa.alloc_frame();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidState);
  EXPECT_EQ(h.fa.total_frames(), 0u);
}

TEST(FrameAllocatorInit, UseBeforeInitIsInvalidState) {
  FrameAllocator fa;
  Result<uint64_t> a = fa.alloc_frame();
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code, ErrorCode::kInvalidState);
  Result<uint64_t> c = fa.alloc_contiguous(1, 0);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidState);
  Result<void> f = fa.free_frame(2 * kMiB);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fa.is_free(2 * kMiB));
}

TEST(FrameAllocatorInit, LowMemoryIsNeverHandedOut) {
  Harness h(4 * kMiB);
  ASSERT_TRUE(h.init({{0, 0x9fc00}, {0, 4 * kMiB}}).has_value());
  EXPECT_EQ(h.fa.total_frames(), 3 * kMiB / kFrameSize);
  EXPECT_EQ(h.fa.free_frames(), h.fa.total_frames());
  std::vector<uint64_t> got = h.drain();
  ASSERT_EQ(got.size(), 3 * kMiB / kFrameSize);
  for (uint64_t pa : got) {
    EXPECT_GE(pa, kLowMemoryLimit);
    EXPECT_LT(pa, 4 * kMiB);
    EXPECT_EQ(pa % kFrameSize, 0u);
  }
  Result<void> f0 = h.fa.free_frame(0);
  ASSERT_FALSE(f0.has_value());
  EXPECT_EQ(f0.error().code, ErrorCode::kInvalidArgument);
  Result<void> f1 = h.fa.free_frame(0x8000);
  ASSERT_FALSE(f1.has_value());
  EXPECT_EQ(f1.error().code, ErrorCode::kInvalidArgument);
}

TEST(FrameAllocatorReserved, ReservedRangesAreNeverReturned) {
  // usable: [1 MiB, 64 MiB); kernel image, modules, ACPI tables, the bitmap reserved.
  struct Span {
    uint64_t base, end;  // outward-rounded expectation
  };
  const std::vector<PhysRange> reserved{
      {2 * kMiB, kMiB + 100},         // kernel image, unaligned end
      {5 * kMiB + 1, 9},              // a module inside one frame
      {8 * kMiB + 4000, 200},         // straddles a frame boundary
      {63 * kMiB + 12 * kKiB, kMiB},  // ACPI tables past the end of usable RAM
      {40 * kMiB, 0},                 // empty: reserves nothing
  };
  const std::vector<Span> expected{{2 * kMiB, 3 * kMiB + 4 * kKiB},
                                   {5 * kMiB, 5 * kMiB + 4 * kKiB},
                                   {8 * kMiB, 8 * kMiB + 8 * kKiB},
                                   {63 * kMiB + 12 * kKiB, 64 * kMiB}};
  Harness h(64 * kMiB);
  ASSERT_TRUE(h.init({{kMiB, 63 * kMiB}}, reserved).has_value());
  uint64_t reserved_frames = 0;
  for (const Span& s : expected) reserved_frames += (s.end - s.base) / kFrameSize;
  EXPECT_EQ(h.fa.total_frames(), 63 * kMiB / kFrameSize - reserved_frames);
  for (const Span& s : expected) {
    for (uint64_t pa = s.base; pa < s.end; pa += kFrameSize) EXPECT_FALSE(h.fa.is_free(pa));
  }
  EXPECT_TRUE(h.fa.is_free(40 * kMiB));

  std::vector<uint64_t> got = h.drain();
  EXPECT_EQ(got.size(), h.fa.total_frames());
  std::set<uint64_t> unique(got.begin(), got.end());
  EXPECT_EQ(unique.size(), got.size());
  for (uint64_t pa : got) {
    for (const Span& s : expected) EXPECT_FALSE(overlaps(pa, s.base, s.end)) << std::hex << pa;
  }
  // Freeing a reserved frame is an error: it was never usable.
  Result<void> f = h.fa.free_frame(2 * kMiB);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, ErrorCode::kInvalidArgument);
}

TEST(FrameAllocatorReserved, OverlappingUsableAndReservedRanges) {
  Harness h(32 * kMiB);
  // Two overlapping usable ranges cover [1 MiB, 12 MiB); a reserved range sticks out of both
  // ends of a hole-adjacent region, another covers the whole of a third usable range.
  ASSERT_TRUE(h.init({{kMiB, 8 * kMiB}, {6 * kMiB, 6 * kMiB}, {20 * kMiB, kMiB}},
                     {{10 * kMiB, 4 * kMiB}, {19 * kMiB, 4 * kMiB}})
                  .has_value());
  EXPECT_EQ(h.fa.total_frames(), 9 * kMiB / kFrameSize);  // [1, 10) MiB
  for (uint64_t pa : h.drain()) {
    EXPECT_GE(pa, kMiB);
    EXPECT_LT(pa, 10 * kMiB);
  }
}

TEST(FrameAllocatorReserved, UnalignedUsableRangesRoundInward) {
  Harness h(8 * kMiB);
  ASSERT_TRUE(h.init({{kMiB + 1, kMiB - 2},              // [1M+4K, 2M-4K): 254 frames
                      {3 * kMiB + 100, 3 * kFrameSize},  // only 2 whole frames inside
                      {5 * kMiB + 1, 100}})              // no whole frame
                  .has_value());
  EXPECT_EQ(h.fa.total_frames(), 254u + 2u);
  EXPECT_FALSE(h.fa.is_free(kMiB));
  EXPECT_TRUE(h.fa.is_free(kMiB + kFrameSize));
  EXPECT_TRUE(h.fa.is_free(2 * kMiB - 2 * kFrameSize));
  EXPECT_FALSE(h.fa.is_free(2 * kMiB - kFrameSize));
  EXPECT_FALSE(h.fa.is_free(3 * kMiB));
  EXPECT_TRUE(h.fa.is_free(3 * kMiB + kFrameSize));
  EXPECT_TRUE(h.fa.is_free(3 * kMiB + 2 * kFrameSize));
  EXPECT_FALSE(h.fa.is_free(3 * kMiB + 3 * kFrameSize));
  EXPECT_FALSE(h.fa.is_free(5 * kMiB));
}

TEST(FrameAllocatorMaxPhys, RangesAboveMaxPhysAreClippedAndCounted) {
  Harness h(12 * kMiB);
  ASSERT_TRUE(h.init({{kMiB, 7 * kMiB},        // fully below
                      {10 * kMiB, 4 * kMiB},   // straddles max_phys: 2 MiB clipped
                      {16 * kMiB, 16 * kMiB},  // fully above: 16 MiB clipped
                      {4 * kGiB, 1 * kGiB}})   // far above: 1 GiB clipped
                  .has_value());
  EXPECT_EQ(h.fa.total_frames(), (7 + 2) * kMiB / kFrameSize);
  EXPECT_EQ(h.fa.clipped_bytes(), 2 * kMiB + 16 * kMiB + 1 * kGiB);
  EXPECT_EQ(h.fa.max_phys(), 12 * kMiB);
  for (uint64_t pa : h.drain()) EXPECT_LT(pa, 12 * kMiB);
  Result<void> f = h.fa.free_frame(12 * kMiB);
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().code, ErrorCode::kInvalidArgument);
}

TEST(FrameAllocatorMaxPhys, WrappingLengthSaturates) {
  Harness h(8 * kMiB);
  ASSERT_TRUE(h.init({{2 * kMiB, UINT64_MAX}}, {{7 * kMiB, UINT64_MAX}}).has_value());
  EXPECT_EQ(h.fa.total_frames(), 5 * kMiB / kFrameSize);  // [2, 7) MiB
  EXPECT_GT(h.fa.clipped_bytes(), 0u);
}

TEST(FrameAllocatorMaxPhys, UnalignedMaxPhysRoundsDown) {
  // The frame [8 MiB, 8 MiB + 4 KiB) is not wholly below max_phys: it is not managed.
  Harness h(8 * kMiB + 1);
  ASSERT_TRUE(h.init({{kMiB, 8 * kMiB}}).has_value());
  EXPECT_EQ(h.fa.max_phys(), 8 * kMiB);
  EXPECT_EQ(h.fa.total_frames(), 7 * kMiB / kFrameSize);
  EXPECT_EQ(h.fa.clipped_bytes(), kMiB);
  EXPECT_FALSE(h.fa.is_free(8 * kMiB));
}

TEST(FrameAllocatorAlloc, ExhaustionIsOutOfMemoryWithMessage) {
  Harness h(4 * kMiB);
  ASSERT_TRUE(h.init({{kMiB, 16 * kFrameSize}}).has_value());
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(h.fa.alloc_frame().has_value());
  EXPECT_EQ(h.fa.free_frames(), 0u);
  Result<uint64_t> r = h.fa.alloc_frame();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kOutOfMemory);
  EXPECT_NE(std::string(r.error().message).find("out of physical frames"), std::string::npos);
  Result<uint64_t> c = h.fa.alloc_contiguous(1, 0);
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kOutOfMemory);
  EXPECT_NE(std::string(c.error().message).find("contiguous"), std::string::npos);
}

TEST(FrameAllocatorAlloc, FreeThenReallocate) {
  Harness h(4 * kMiB);
  ASSERT_TRUE(h.init({{kMiB, 8 * kFrameSize}}).has_value());
  std::vector<uint64_t> got = h.drain();
  ASSERT_EQ(got.size(), 8u);
  ASSERT_TRUE(h.fa.free_frame(got[5]).has_value());
  EXPECT_EQ(h.fa.free_frames(), 1u);
  EXPECT_TRUE(h.fa.is_free(got[5]));
  Result<uint64_t> again = h.fa.alloc_frame();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, got[5]);
  EXPECT_EQ(h.fa.free_frames(), 0u);
  for (uint64_t pa : got) ASSERT_TRUE(h.fa.free_frame(pa).has_value());
  EXPECT_EQ(h.fa.free_frames(), 8u);
  EXPECT_EQ(h.drain().size(), 8u);
}

TEST(FrameAllocatorAlloc, NextFitKeepsMovingForward) {
  Harness h(64 * kMiB);
  ASSERT_TRUE(h.init({{kMiB, 63 * kMiB}}).has_value());
  uint64_t prev = 0;
  for (int i = 0; i < 1000; ++i) {
    Result<uint64_t> r = h.fa.alloc_frame();
    ASSERT_TRUE(r.has_value());
    EXPECT_GT(*r, prev);
    prev = *r;
  }
  EXPECT_EQ(h.fa.free_frames(), h.fa.total_frames() - 1000);
}

TEST(FrameAllocatorFree, DoubleFreeAndBadFrees) {
  Harness h(4 * kMiB);
  ASSERT_TRUE(h.init({{kMiB, kMiB}}, {{kMiB + 4 * kFrameSize, kFrameSize}}).has_value());
  Result<uint64_t> a = h.fa.alloc_frame();
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(h.fa.free_frame(*a).has_value());
  Result<void> twice = h.fa.free_frame(*a);
  ASSERT_FALSE(twice.has_value());
  EXPECT_EQ(twice.error().code, ErrorCode::kInvalidState);
  EXPECT_EQ(twice.error().detail, *a);
  // Never allocated but free: also a double free.
  Result<void> never = h.fa.free_frame(kMiB + 100 * kFrameSize);
  ASSERT_FALSE(never.has_value());
  EXPECT_EQ(never.error().code, ErrorCode::kInvalidState);

  Result<void> unaligned = h.fa.free_frame(*a + 8);
  ASSERT_FALSE(unaligned.has_value());
  EXPECT_EQ(unaligned.error().code, ErrorCode::kInvalidArgument);
  Result<void> reserved = h.fa.free_frame(kMiB + 4 * kFrameSize);
  ASSERT_FALSE(reserved.has_value());
  EXPECT_EQ(reserved.error().code, ErrorCode::kInvalidArgument);
  Result<void> hole = h.fa.free_frame(3 * kMiB);  // below max_phys but not in the map
  ASSERT_FALSE(hole.has_value());
  EXPECT_EQ(hole.error().code, ErrorCode::kInvalidArgument);
  Result<void> beyond = h.fa.free_frame(1ull << 40);
  ASSERT_FALSE(beyond.has_value());
  EXPECT_EQ(beyond.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(h.fa.free_frames(), h.fa.total_frames());
}

TEST(FrameAllocatorContiguous, AlignedRunsFor2MiBPages) {
  Harness h(32 * kMiB);
  ASSERT_TRUE(h.init({{kMiB, 31 * kMiB}}).has_value());
  // Dirty the first 2 MiB-aligned region so the allocator has to skip it.
  ASSERT_TRUE(h.fa.alloc_contiguous(1, 2 * kMiB + 0).has_value());  // takes 2 MiB
  Result<uint64_t> big = h.fa.alloc_contiguous(512, 2 * kMiB);
  ASSERT_TRUE(big.has_value()) << big.error().message;
  EXPECT_EQ(*big % (2 * kMiB), 0u);
  EXPECT_EQ(*big, 4 * kMiB);
  for (uint64_t pa = *big; pa < *big + 2 * kMiB; pa += kFrameSize) EXPECT_FALSE(h.fa.is_free(pa));
  EXPECT_TRUE(h.fa.is_free(*big + 2 * kMiB));
  EXPECT_EQ(h.fa.free_frames(), h.fa.total_frames() - 513);
  // The allocated frames are freed one by one.
  for (uint64_t pa = *big; pa < *big + 2 * kMiB; pa += kFrameSize) {
    ASSERT_TRUE(h.fa.free_frame(pa).has_value());
  }
  EXPECT_EQ(h.fa.free_frames(), h.fa.total_frames() - 1);
}

TEST(FrameAllocatorContiguous, FreeContiguousReturnsTheWholeRun) {
  Harness h(16 * kMiB);
  ASSERT_TRUE(h.init({{0, 16 * kMiB}}).has_value());
  const uint64_t before = h.fa.free_frames();
  Result<uint64_t> run = h.fa.alloc_contiguous(512, 2 * kMiB);
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(h.fa.free_frames(), before - 512);
  ASSERT_TRUE(h.fa.free_contiguous(*run, 512).has_value());
  EXPECT_EQ(h.fa.free_frames(), before);
  for (uint64_t i = 0; i < 512; ++i) EXPECT_TRUE(h.fa.is_free(*run + i * kFrameSize));
  // The same 2 MiB run can be handed out again.
  Result<uint64_t> again = h.fa.alloc_contiguous(512, 2 * kMiB);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *run);
}

TEST(FrameAllocatorContiguous, FreeContiguousChecksEveryFrameFirst) {
  Harness h(16 * kMiB);
  ASSERT_TRUE(h.init({{0, 16 * kMiB}}, {{8 * kMiB, kFrameSize}}).has_value());
  Result<uint64_t> run = h.fa.alloc_contiguous(4, kFrameSize);
  ASSERT_TRUE(run.has_value());
  const uint64_t after_alloc = h.fa.free_frames();
  // One frame of the run freed already: freeing the run is a double free and frees nothing.
  ASSERT_TRUE(h.fa.free_frame(*run + 2 * kFrameSize).has_value());
  Result<void> r = h.fa.free_contiguous(*run, 4);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidState);
  EXPECT_EQ(r.error().detail, *run + 2 * kFrameSize);
  EXPECT_EQ(h.fa.free_frames(), after_alloc + 1);
  EXPECT_FALSE(h.fa.is_free(*run));
  // A run over a reserved frame, unaligned, empty or past the end: rejected.
  EXPECT_EQ(h.fa.free_contiguous(8 * kMiB, 1).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(h.fa.free_contiguous(*run + 1, 1).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(h.fa.free_contiguous(*run, 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(h.fa.free_contiguous(16 * kMiB - kFrameSize, 2).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(h.fa.free_frames(), after_alloc + 1);
  // The rest of the run frees fine in two pieces.
  ASSERT_TRUE(h.fa.free_contiguous(*run, 2).has_value());
  ASSERT_TRUE(h.fa.free_contiguous(*run + 3 * kFrameSize, 1).has_value());
  EXPECT_EQ(h.fa.free_frames(), after_alloc + 4);
}

TEST(FrameAllocatorContiguous, SkipsHolesAndReservedFrames) {
  Harness h(16 * kMiB);
  // [1 MiB, 1 MiB + 8 frames) then a reserved frame, then a run of 16 frames.
  ASSERT_TRUE(h.init({{kMiB, 4 * kMiB}}, {{kMiB + 8 * kFrameSize, kFrameSize}}).has_value());
  Result<uint64_t> r = h.fa.alloc_contiguous(10, kFrameSize);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, kMiB + 9 * kFrameSize);
  Result<uint64_t> small = h.fa.alloc_contiguous(8, 0);
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ(*small, kMiB);  // first fit: the 8-frame gap below the reserved frame
  Result<uint64_t> aligned = h.fa.alloc_contiguous(2, 64 * kKiB);
  ASSERT_TRUE(aligned.has_value());
  EXPECT_EQ(*aligned % (64 * kKiB), 0u);
  EXPECT_GE(*aligned, kMiB + 19 * kFrameSize);
}

TEST(FrameAllocatorContiguous, InvalidArgumentsAndTooLarge) {
  Harness h(8 * kMiB);
  ASSERT_TRUE(h.init({{kMiB, 7 * kMiB}}).has_value());
  Result<uint64_t> zero = h.fa.alloc_contiguous(0, 0);
  ASSERT_FALSE(zero.has_value());
  EXPECT_EQ(zero.error().code, ErrorCode::kInvalidArgument);
  Result<uint64_t> npot = h.fa.alloc_contiguous(1, 3 * kFrameSize);
  ASSERT_FALSE(npot.has_value());
  EXPECT_EQ(npot.error().code, ErrorCode::kInvalidArgument);
  Result<uint64_t> huge = h.fa.alloc_contiguous(7 * kMiB / kFrameSize + 1, 0);
  ASSERT_FALSE(huge.has_value());
  EXPECT_EQ(huge.error().code, ErrorCode::kOutOfMemory);
  EXPECT_EQ(huge.error().detail, 7 * kMiB / kFrameSize + 1);
  Result<uint64_t> giant = h.fa.alloc_contiguous(SIZE_MAX, 0);
  ASSERT_FALSE(giant.has_value());
  EXPECT_EQ(giant.error().code, ErrorCode::kOutOfMemory);
  Result<uint64_t> over_aligned = h.fa.alloc_contiguous(1, 1ull << 63);
  ASSERT_FALSE(over_aligned.has_value());
  EXPECT_EQ(over_aligned.error().code, ErrorCode::kOutOfMemory);
  // 4 MiB alignment: only 4 MiB itself qualifies for 256 frames below 8 MiB.
  Result<uint64_t> four = h.fa.alloc_contiguous(256, 4 * kMiB);
  ASSERT_TRUE(four.has_value());
  EXPECT_EQ(*four, 4 * kMiB);
  Result<uint64_t> again = h.fa.alloc_contiguous(256, 4 * kMiB);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, ErrorCode::kOutOfMemory);
  // The failed attempts changed nothing.
  EXPECT_EQ(h.fa.free_frames(), h.fa.total_frames() - 256);
}

TEST(FrameAllocatorStress, RandomAllocFreeMatchesModel) {
  Harness h(40 * kMiB);
  ASSERT_TRUE(
      h.init({{kMiB, 3 * kMiB}, {8 * kMiB, 30 * kMiB}}, {{10 * kMiB + 123, 5 * kMiB}, {30 * kMiB, 4096}})
          .has_value());
  std::set<uint64_t> held;
  uint64_t state = 12345;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (int i = 0; i < 30000; ++i) {
    const uint64_t op = next() % 8;
    if (op < 5 || held.empty()) {
      const uint64_t count = (op == 0) ? 1 + next() % 8 : 1;
      Result<uint64_t> r =
          (op == 0) ? h.fa.alloc_contiguous(count, kFrameSize << (next() % 4)) : h.fa.alloc_frame();
      if (!r.has_value()) {
        ASSERT_EQ(r.error().code, ErrorCode::kOutOfMemory);
        continue;
      }
      for (uint64_t pa = *r; pa < *r + count * kFrameSize; pa += kFrameSize) {
        ASSERT_EQ(held.count(pa), 0u) << "handed out twice: " << pa;
        ASSERT_FALSE(h.fa.is_free(pa));
        ASSERT_TRUE((pa >= kMiB && pa < 4 * kMiB) || (pa >= 8 * kMiB && pa < 38 * kMiB)) << pa;
        ASSERT_FALSE(overlaps(pa, 10 * kMiB, 15 * kMiB + 4096)) << pa;
        ASSERT_FALSE(overlaps(pa, 30 * kMiB, 30 * kMiB + 4096)) << pa;
        held.insert(pa);
      }
    } else {
      auto it = held.begin();
      std::advance(it, static_cast<long>(next() % held.size()));
      ASSERT_TRUE(h.fa.free_frame(*it).has_value());
      held.erase(it);
    }
    ASSERT_EQ(h.fa.free_frames() + held.size(), h.fa.total_frames());
  }
}

}  // namespace
}  // namespace lantern::mm
