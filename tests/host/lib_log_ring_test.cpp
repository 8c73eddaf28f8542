// lantern::lib::LogRing: sequence numbers, overwrite accounting, long-text splitting and
// reader resumption.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernel/lib/log_ring.h"

namespace lantern::lib {
namespace {

std::vector<LogRecord> read_all(const LogRing& ring, uint64_t since, LogRing::ReadResult* result) {
  std::vector<LogRecord> out(ring.capacity() + 4);
  *result = ring.read_since(since, out);
  out.resize(result->count);
  return out;
}

TEST(LibLogRing, AppendsAndReadsInOrder) {
  std::vector<LogRecord> storage(8);
  LogRing ring(storage);
  EXPECT_EQ(ring.append(LogLevel::kInfo, 0, 100, "boot"), 0u);
  EXPECT_EQ(ring.append(LogLevel::kWarn, 3, 200, "vmx off"), 1u);
  EXPECT_EQ(ring.size(), 2u);
  LogRing::ReadResult r;
  auto records = read_all(ring, 0, &r);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].seq, 0u);
  EXPECT_EQ(records[0].text_view(), "boot");
  EXPECT_EQ(records[0].timestamp, 100u);
  EXPECT_EQ(records[1].level, LogLevel::kWarn);
  EXPECT_EQ(records[1].cpu, 3u);
  EXPECT_EQ(records[1].text_view(), "vmx off");
  EXPECT_EQ(records[1].flags, 0);
  EXPECT_EQ(r.next_seq, 2u);
  EXPECT_EQ(r.missed, 0u);
  EXPECT_FALSE(r.reset);
  // Nothing new since next_seq.
  records = read_all(ring, r.next_seq, &r);
  EXPECT_TRUE(records.empty());
  EXPECT_EQ(r.next_seq, 2u);
  EXPECT_STREQ(log_level_name(LogLevel::kWarn), "warn");
  EXPECT_STREQ(log_level_name(static_cast<LogLevel>(42)), "unknown");
}

TEST(LibLogRing, OverwriteCountsDroppedAndReportsMissed) {
  std::vector<LogRecord> storage(4);
  LogRing ring(storage);
  for (int i = 0; i < 10; ++i) ring.append(LogLevel::kInfo, 0, i, "msg " + std::to_string(i));
  EXPECT_EQ(ring.dropped(), 6u);
  EXPECT_EQ(ring.oldest_seq(), 6u);
  EXPECT_EQ(ring.size(), 4u);
  LogRing::ReadResult r;
  auto records = read_all(ring, 2, &r);
  EXPECT_EQ(r.missed, 4u);  // 2..5 were overwritten
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0].seq, 6u);
  EXPECT_EQ(records[0].text_view(), "msg 6");
  EXPECT_EQ(records[3].text_view(), "msg 9");
  EXPECT_EQ(r.next_seq, 10u);
}

TEST(LibLogRing, SmallOutputBufferPagesThrough) {
  std::vector<LogRecord> storage(16);
  LogRing ring(storage);
  for (int i = 0; i < 10; ++i) ring.append(LogLevel::kDebug, 1, i, std::to_string(i));
  std::vector<LogRecord> out(3);
  uint64_t since = 0;
  std::string seen;
  for (int page = 0; page < 10; ++page) {
    const LogRing::ReadResult r = ring.read_since(since, out);
    for (size_t i = 0; i < r.count; ++i) seen += out[i].text_view();
    if (r.count == 0) break;
    since = r.next_seq;
  }
  EXPECT_EQ(seen, "0123456789");
  EXPECT_EQ(since, 10u);
}

TEST(LibLogRing, LongTextIsSplitNotCut) {
  std::vector<LogRecord> storage(32);
  LogRing ring(storage);
  std::string text;
  for (int i = 0; i < 450; ++i) text += static_cast<char>('a' + i % 26);
  EXPECT_EQ(ring.append(LogLevel::kError, 2, 7, text), 0u);
  EXPECT_EQ(ring.next_seq(), 3u);
  LogRing::ReadResult r;
  auto records = read_all(ring, 0, &r);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].flags, kLogContinues);
  EXPECT_EQ(records[1].flags, kLogContinues | kLogContinuation);
  EXPECT_EQ(records[2].flags, kLogContinuation);
  EXPECT_EQ(records[0].length, LogRecord::kTextMax);
  std::string joined;
  for (const auto& rec : records) {
    joined += rec.text_view();
    EXPECT_EQ(rec.level, LogLevel::kError);
    EXPECT_EQ(rec.timestamp, 7u);
  }
  EXPECT_EQ(joined, text);
  // Exactly kTextMax bytes is one record.
  ring.append(LogLevel::kInfo, 0, 0, std::string(LogRecord::kTextMax, 'x'));
  EXPECT_EQ(ring.next_seq(), 4u);
}

TEST(LibLogRing, SplitsOnUtf8Boundaries) {
  std::vector<LogRecord> storage(8);
  LogRing ring(storage);
  // 199 ASCII bytes then a 4-byte character straddling the 200-byte boundary.
  const std::string text = std::string(199, 'a') + "\xF0\x9F\x98\x80" + "tail";
  ring.append(LogLevel::kInfo, 0, 0, text);
  LogRing::ReadResult r;
  auto records = read_all(ring, 0, &r);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].length, 199u);
  EXPECT_EQ(records[1].text_view(), "\xF0\x9F\x98\x80tail");
  // Invalid UTF-8 (a run of continuation bytes) is still split, at the byte limit.
  const std::string junk(300, '\x80');
  ring.append(LogLevel::kInfo, 0, 0, junk);
  records = read_all(ring, r.next_seq, &r);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].length, LogRecord::kTextMax);
  EXPECT_EQ(records[1].length, 100u);
}

TEST(LibLogRing, OverlongTextIsMarkedTruncated) {
  std::vector<LogRecord> storage(64);
  LogRing ring(storage);
  const std::string text((LogRing::kMaxPartsPerMessage + 2) * LogRecord::kTextMax, 'z');
  ring.append(LogLevel::kInfo, 0, 0, text);
  EXPECT_EQ(ring.next_seq(), LogRing::kMaxPartsPerMessage);
  LogRing::ReadResult r;
  auto records = read_all(ring, 0, &r);
  ASSERT_EQ(records.size(), LogRing::kMaxPartsPerMessage);
  EXPECT_EQ(records.back().flags, kLogContinuation | kLogTruncated);
  EXPECT_EQ(records.front().flags, kLogContinues);
  // A ring smaller than kMaxPartsPerMessage truncates to its own capacity, so one message
  // never overwrites its own beginning.
  std::vector<LogRecord> small_storage(3);
  LogRing small(small_storage);
  small.append(LogLevel::kInfo, 0, 0, std::string(1000, 'q'));
  EXPECT_EQ(small.next_seq(), 3u);
  EXPECT_EQ(small.dropped(), 0u);
  records = read_all(small, 0, &r);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].flags, kLogContinues);
  EXPECT_EQ(records[2].flags, kLogContinuation | kLogTruncated);
}

TEST(LibLogRing, EmptyTextAndZeroCapacity) {
  std::vector<LogRecord> storage(2);
  LogRing ring(storage);
  ring.append(LogLevel::kInfo, 0, 0, "");
  LogRing::ReadResult r;
  auto records = read_all(ring, 0, &r);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].length, 0u);
  EXPECT_EQ(records[0].flags, 0);

  LogRing none(std::span<LogRecord>{});
  EXPECT_EQ(none.append(LogLevel::kInfo, 0, 0, "lost"), 0u);
  EXPECT_EQ(none.dropped(), 1u);
  EXPECT_EQ(none.size(), 0u);
  std::vector<LogRecord> out(2);
  const LogRing::ReadResult nr = none.read_since(0, out);
  EXPECT_EQ(nr.count, 0u);
  EXPECT_EQ(nr.missed, 1u);
}

TEST(LibLogRing, FutureSinceRestartsFromOldest) {
  std::vector<LogRecord> storage(4);
  LogRing ring(storage);
  ring.append(LogLevel::kInfo, 0, 0, "a");
  ring.append(LogLevel::kInfo, 0, 0, "b");
  LogRing::ReadResult r;
  auto records = read_all(ring, 1000, &r);
  EXPECT_TRUE(r.reset);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].text_view(), "a");
  EXPECT_EQ(r.next_seq, 2u);
}

}  // namespace
}  // namespace lantern::lib
