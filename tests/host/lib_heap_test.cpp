// lantern::lib::HeapAllocator: alignment, no overlap, coalescing, growth, exhaustion and
// misuse detection.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernel/lib/heap.h"

namespace lantern::lib {
namespace {

// Hands out chunks of host memory up to a byte budget, remembering what was asked.
struct Grower {
  size_t budget = 0;
  size_t chunk = 64 * 1024;
  std::vector<std::unique_ptr<uint8_t[]>> chunks;
  std::vector<size_t> requests;

  static Result<std::span<uint8_t>> grow(void* ctx, size_t min_bytes) {
    auto* self = static_cast<Grower*>(ctx);
    self->requests.push_back(min_bytes);
    const size_t bytes = min_bytes > self->chunk ? min_bytes : self->chunk;
    if (bytes > self->budget) return make_error(ErrorCode::kOutOfMemory, "test budget spent");
    self->budget -= bytes;
    self->chunks.push_back(std::make_unique<uint8_t[]>(bytes + 8));
    // Deliberately misaligned by 8 bytes: the heap must trim to 16-byte edges.
    return std::span<uint8_t>(self->chunks.back().get() + 8, bytes);
  }
};

struct Corruption {
  std::vector<std::string> reports;
  static void report(void* ctx, const char* why) { static_cast<Corruption*>(ctx)->reports.push_back(why); }
};

class LibHeap : public ::testing::Test {
 protected:
  Grower grower_;
  Corruption corruption_;
  HeapAllocator heap_{&Grower::grow, &grower_, &Corruption::report, &corruption_};

  void SetUp() override { grower_.budget = 64 * 1024 * 1024; }
  void TearDown() override {
    EXPECT_TRUE(heap_.check()) << (corruption_.reports.empty() ? "" : corruption_.reports[0]);
  }
};

TEST_F(LibHeap, AllocateWriteRelease) {
  void* p = heap_.allocate(100);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
  EXPECT_GE(heap_.usable_size(p), 100u);
  std::memset(p, 0xab, 100);
  EXPECT_TRUE(heap_.owns(p));
  EXPECT_GT(heap_.bytes_in_use(), 100u);
  heap_.release(p);
  EXPECT_EQ(heap_.bytes_in_use(), 0u);
  EXPECT_EQ(heap_.stats().free_blocks, 1u);  // everything coalesced back
  heap_.release(nullptr);                    // ignored
  EXPECT_TRUE(corruption_.reports.empty());
}

TEST_F(LibHeap, ZeroSizeAllocationsAreUnique) {
  void* a = heap_.allocate(0);
  void* b = heap_.allocate(0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  heap_.release(a);
  heap_.release(b);
}

TEST_F(LibHeap, HonoursEveryAlignmentUpTo4096) {
  std::vector<void*> live;
  for (size_t align = 1; align <= HeapAllocator::kMaxAlign; align <<= 1) {
    for (size_t size : {1u, 17u, 100u, 4096u, 5000u}) {
      void* p = heap_.allocate(size, align);
      ASSERT_NE(p, nullptr) << size << " align " << align;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (align < 16 ? 16 : align), 0u);
      std::memset(p, 0x5a, size);
      live.push_back(p);
    }
  }
  ASSERT_TRUE(heap_.check());
  for (void* p : live) heap_.release(p);
  EXPECT_EQ(heap_.bytes_in_use(), 0u);
}

TEST_F(LibHeap, RejectsBadAlignmentAndHugeSizes) {
  EXPECT_EQ(heap_.allocate(16, 24), nullptr);    // not a power of two
  EXPECT_EQ(heap_.allocate(16, 8192), nullptr);  // above kMaxAlign
  EXPECT_EQ(heap_.allocate(HeapAllocator::kMaxAllocation + 1), nullptr);
  EXPECT_EQ(heap_.allocate(SIZE_MAX), nullptr);
  EXPECT_EQ(heap_.stats().failed_allocations, 4u);
}

TEST_F(LibHeap, GrowsWithLargeEnoughRequests) {
  void* big = heap_.allocate(1 << 20);
  ASSERT_NE(big, nullptr);
  ASSERT_FALSE(grower_.requests.empty());
  EXPECT_GE(grower_.requests.back(), size_t{1} << 20);
  std::memset(big, 1, 1 << 20);
  void* aligned_big = heap_.allocate(3 << 20, 4096);
  ASSERT_NE(aligned_big, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(aligned_big) % 4096, 0u);
  EXPECT_EQ(heap_.stats().regions, grower_.chunks.size());
  heap_.release(big);
  heap_.release(aligned_big);
}

TEST_F(LibHeap, ExhaustionReturnsNullAndRecovers) {
  grower_.budget = 256 * 1024;
  std::vector<void*> live;
  for (;;) {
    void* p = heap_.allocate(1000);
    if (p == nullptr) break;
    live.push_back(p);
    ASSERT_LT(live.size(), 1000u) << "budget not enforced";
  }
  EXPECT_GT(live.size(), 150u);  // most of the 256 KiB was usable
  EXPECT_EQ(heap_.stats().failed_allocations, 1u);
  EXPECT_EQ(heap_.allocate(1000), nullptr);
  heap_.release(live.back());
  live.pop_back();
  void* again = heap_.allocate(1000);
  EXPECT_NE(again, nullptr);  // freed memory is reused
  live.push_back(again);
  for (void* p : live) heap_.release(p);
  EXPECT_EQ(heap_.bytes_in_use(), 0u);
}

TEST_F(LibHeap, NoGrowCallbackMeansOnlyAddedRegions) {
  HeapAllocator heap(nullptr, nullptr, &Corruption::report, &corruption_);
  EXPECT_EQ(heap.allocate(16), nullptr);
  alignas(16) static uint8_t arena[4096];
  ASSERT_TRUE(heap.add_region(arena).has_value());
  void* p = heap.allocate(1000);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(heap.allocate(4000), nullptr);
  heap.release(p);
  EXPECT_NE(heap.allocate(4000), nullptr);
  EXPECT_TRUE(heap.check());
}

TEST_F(LibHeap, AddRegionValidates) {
  alignas(16) static uint8_t arena[8192];
  EXPECT_FALSE(heap_.add_region(std::span<uint8_t>(arena, 40)).has_value());  // too small
  EXPECT_FALSE(heap_.add_region(std::span<uint8_t>(static_cast<uint8_t*>(nullptr), 0)).has_value());
  ASSERT_TRUE(heap_.add_region(std::span<uint8_t>(arena, 4096)).has_value());
  const Result<void> overlap = heap_.add_region(std::span<uint8_t>(arena + 2048, 4096));
  ASSERT_FALSE(overlap.has_value());
  EXPECT_EQ(overlap.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(heap_.add_region(std::span<uint8_t>(arena + 4096, 4096)).has_value());
  EXPECT_EQ(heap_.stats().regions, 2u);
}

TEST_F(LibHeap, DoubleFreeIsReported) {
  void* a = heap_.allocate(64);
  void* b = heap_.allocate(64);
  void* c = heap_.allocate(64);
  heap_.release(b);
  EXPECT_TRUE(corruption_.reports.empty());
  heap_.release(b);
  ASSERT_EQ(corruption_.reports.size(), 1u);
  EXPECT_NE(corruption_.reports[0].find("double free"), std::string::npos);
  // Also after b was merged into its freed neighbour.
  heap_.release(a);
  heap_.release(b);
  ASSERT_EQ(corruption_.reports.size(), 2u);
  EXPECT_NE(corruption_.reports[1].find("double free"), std::string::npos);
  heap_.release(c);
  corruption_.reports.clear();
}

TEST_F(LibHeap, ForeignAndInteriorPointersAreReported) {
  void* p = heap_.allocate(256);
  ASSERT_NE(p, nullptr);
  int on_stack = 0;
  heap_.release(&on_stack);
  ASSERT_EQ(corruption_.reports.size(), 1u);
  EXPECT_NE(corruption_.reports[0].find("not allocated by this heap"), std::string::npos);
  heap_.release(static_cast<uint8_t*>(p) + 8);   // misaligned interior pointer
  heap_.release(static_cast<uint8_t*>(p) + 64);  // aligned interior pointer: bad magic
  EXPECT_EQ(corruption_.reports.size(), 3u);
  EXPECT_EQ(heap_.usable_size(&on_stack), 0u);
  EXPECT_EQ(corruption_.reports.size(), 4u);
  EXPECT_TRUE(heap_.check());  // nothing was changed by the bad calls
  heap_.release(p);
  EXPECT_EQ(corruption_.reports.size(), 4u);
  corruption_.reports.clear();
}

TEST_F(LibHeap, OverrunIntoNextHeaderIsReported) {
  void* a = heap_.allocate(32);
  void* b = heap_.allocate(32);
  ASSERT_EQ(static_cast<uint8_t*>(b) - static_cast<uint8_t*>(a), 48);  // adjacent blocks
  const size_t usable = heap_.usable_size(a);
  std::memset(a, 0x41, usable + 8);  // clobbers b's prev_size boundary tag
  heap_.release(a);
  ASSERT_EQ(corruption_.reports.size(), 1u);
  heap_.release(b);
  ASSERT_EQ(corruption_.reports.size(), 2u);
  EXPECT_FALSE(heap_.check());
  corruption_.reports.clear();
  // Repair the tag so that TearDown's check passes.
  reinterpret_cast<uint64_t*>(b)[-2] = 48;
  heap_.release(a);
  heap_.release(b);
  EXPECT_TRUE(corruption_.reports.empty());
}

// Random allocations and frees: every payload keeps its own fill pattern (so any overlap is
// caught), alignment is checked, and check() validates the structure as it goes.
TEST_F(LibHeap, RandomWorkloadNeverOverlaps) {
  std::mt19937_64 rng(1234);
  struct Live {
    uint8_t* p;
    size_t size;
    uint8_t fill;
  };
  std::vector<Live> live;
  auto verify = [](const Live& l) {
    for (size_t i = 0; i < l.size; ++i) {
      if (l.p[i] != l.fill) return false;
    }
    return true;
  };
  for (int op = 0; op < 30000; ++op) {
    if (live.empty() || rng() % 100 < 55) {
      size_t size;
      switch (rng() % 4) {
        case 0: size = rng() % 32; break;
        case 1: size = rng() % 256; break;
        case 2: size = rng() % 4096; break;
        default: size = rng() % 70000; break;
      }
      const size_t align = size_t{1} << (rng() % 4 == 0 ? rng() % 13 : 4);
      auto* p = static_cast<uint8_t*>(heap_.allocate(size, align));
      ASSERT_NE(p, nullptr);
      ASSERT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u);
      ASSERT_GE(heap_.usable_size(p), size);
      const auto fill = static_cast<uint8_t>(rng());
      std::memset(p, fill, size);
      live.push_back({p, size, fill});
    } else {
      const size_t i = rng() % live.size();
      ASSERT_TRUE(verify(live[i])) << "payload overwritten at op " << op;
      heap_.release(live[i].p);
      live[i] = live.back();
      live.pop_back();
    }
    if (op % 1000 == 0) {
      ASSERT_TRUE(heap_.check()) << op;
    }
  }
  for (const Live& l : live) {
    ASSERT_TRUE(verify(l));
    heap_.release(l.p);
  }
  EXPECT_TRUE(corruption_.reports.empty());
  const HeapStats s = heap_.stats();
  EXPECT_EQ(s.bytes_in_use, 0u);
  EXPECT_EQ(s.live_allocations, 0u);
  EXPECT_EQ(s.free_blocks, s.regions);  // fully coalesced: one free block per region
  EXPECT_EQ(s.bytes_free + s.regions * HeapAllocator::kRegionOverhead, s.region_bytes);
  EXPECT_EQ(s.total_allocations, s.total_releases);
}

// A container-like workload (vectors doubling, many small strings, map nodes) in a fixed
// arena must not fragment its way to failure while the live set stays a quarter of it.
TEST_F(LibHeap, SteadyStateChurnDoesNotFragmentToFailure) {
  HeapAllocator heap(nullptr, nullptr, &Corruption::report, &corruption_);
  static std::vector<uint8_t> arena(4 << 20);
  ASSERT_TRUE(heap.add_region(arena).has_value());
  std::mt19937_64 rng(99);
  std::map<uint8_t*, size_t> live;
  size_t live_bytes = 0;
  for (int op = 0; op < 200000; ++op) {
    const bool grow_vector = rng() % 50 == 0;
    size_t size = grow_vector ? (size_t{16} << (rng() % 14)) : 8 + rng() % 120;
    if (live_bytes + size < (1 << 20) && rng() % 2 == 0) {
      auto* p = static_cast<uint8_t*>(heap.allocate(size));
      ASSERT_NE(p, nullptr) << "fragmentation failure at op " << op << " live " << live_bytes;
      live[p] = size;
      live_bytes += size;
    } else if (!live.empty()) {
      auto it = live.lower_bound(reinterpret_cast<uint8_t*>(rng() % (uintptr_t{1} << 47)));
      if (it == live.end()) it = live.begin();
      live_bytes -= it->second;
      heap.release(it->first);
      live.erase(it);
    }
  }
  for (auto& [p, size] : live) heap.release(p);
  EXPECT_TRUE(heap.check());
  EXPECT_EQ(heap.stats().free_blocks, 1u);
  EXPECT_TRUE(corruption_.reports.empty());
}

}  // namespace
}  // namespace lantern::lib
