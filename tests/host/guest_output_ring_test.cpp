#include "guest/output_ring.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>

namespace lantern::guest {
namespace {

std::string write_all(OutputRing& ring, const std::string& text) {
  for (char c : text) ring.put(c);
  return text;
}

std::string read(const OutputRing& ring, uint64_t since, size_t capacity, OutputRing::Slice* slice) {
  std::string out(capacity, '\0');
  *slice = ring.read_since(since, out.data(), capacity);
  out.resize(slice->length);
  return out;
}

TEST(OutputRing, EmptyRingReturnsNothingAndNextZero) {
  OutputRing ring;
  OutputRing::Slice s;
  EXPECT_EQ(read(ring, 0, 64, &s), "");
  EXPECT_EQ(s.start, 0u);
  EXPECT_EQ(s.next, 0u);
}

TEST(OutputRing, ReadsFromAnOffsetAndReportsNext) {
  OutputRing ring;
  write_all(ring, "hello world\n");
  OutputRing::Slice s;
  EXPECT_EQ(read(ring, 6, 64, &s), "world\n");
  EXPECT_EQ(s.start, 6u);
  EXPECT_EQ(s.next, 12u);
  write_all(ring, "more");
  EXPECT_EQ(read(ring, s.next, 64, &s), "more");
  EXPECT_EQ(s.next, 16u);
}

TEST(OutputRing, CapacityLimitsTheCopyAndNextContinuesExactly) {
  OutputRing ring;
  write_all(ring, "abcdefghij");
  OutputRing::Slice s;
  EXPECT_EQ(read(ring, 0, 4, &s), "abcd");
  EXPECT_EQ(s.next, 4u);
  EXPECT_EQ(read(ring, s.next, 4, &s), "efgh");
  EXPECT_EQ(read(ring, s.next, 4, &s), "ij");
  EXPECT_EQ(s.next, 10u);
}

TEST(OutputRing, OverwrittenBytesAreReportedAsMissedThroughStart) {
  OutputRing ring;
  std::string all;
  for (size_t i = 0; i < OutputRing::kBytes + 100; ++i) all.push_back(static_cast<char>('a' + i % 26));
  write_all(ring, all);
  OutputRing::Slice s;
  const std::string got = read(ring, 0, 2 * OutputRing::kBytes, &s);
  // Only the newest kReadableBytes are held: missed = start - since.
  const uint64_t gone = all.size() - OutputRing::kReadableBytes;
  EXPECT_EQ(s.start, gone);
  EXPECT_EQ(s.next, all.size());
  EXPECT_EQ(got, all.substr(gone));
}

TEST(OutputRing, SinceBeyondTheStreamReturnsNothingWithTheCurrentTotal) {
  OutputRing ring;
  write_all(ring, "abc");
  OutputRing::Slice s;
  EXPECT_EQ(read(ring, 1000, 64, &s), "");
  EXPECT_EQ(s.start, 3u);
  EXPECT_EQ(s.next, 3u);
}

// A reader racing the writer never returns a byte that is not the one written at its offset.
TEST(OutputRing, ConcurrentReaderNeverSeesTornBytes) {
  OutputRing ring;
  auto byte_at = [](uint64_t offset) { return static_cast<char>(offset * 7 % 251); };
  constexpr uint64_t kWrites = 2'000'000;
  // The writer pauses after a first stretch until the reader has read once, so the reads overlap
  // the writes however the two threads are scheduled.
  std::atomic<bool> first_read_done{false};
  std::thread writer([&] {
    for (uint64_t i = 0; i < kWrites; ++i) {
      if (i == kWrites / 4) {
        while (!first_read_done.load(std::memory_order_acquire)) std::this_thread::yield();
      }
      ring.put(byte_at(i));
    }
  });
  std::string buffer(OutputRing::kBytes, '\0');
  uint64_t since = 0, checked = 0, reads = 0;
  while (since < kWrites) {
    const OutputRing::Slice s = ring.read_since(since, buffer.data(), buffer.size());
    for (size_t i = 0; i < s.length; ++i) ASSERT_EQ(buffer[i], byte_at(s.start + i)) << "offset " << s.start + i;
    ASSERT_GE(s.start, since);
    ASSERT_EQ(s.next, s.start + s.length);
    checked += s.length;
    since = s.next;
    ++reads;
    first_read_done.store(true, std::memory_order_release);
  }
  writer.join();
  EXPECT_GT(checked, 0u);
  EXPECT_GT(reads, 1u);
}

}  // namespace
}  // namespace lantern::guest
