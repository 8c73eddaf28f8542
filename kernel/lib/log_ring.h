// Fixed-capacity ring of log records: the kernel log's memory, read by the console's
// /api/v1/log (portable, namespace lantern::lib). Storage is supplied by the caller; nothing is
// allocated. Not thread-safe: the kernel serialises append() and read_since() with a lock.
//
// Every record gets the next sequence number (starting at 0). When the ring is full the oldest
// record is overwritten and counted in dropped(); a reader that asks for records since a
// sequence number that has already been overwritten is told how many it missed.
//
// Text longer than LogRecord::kTextMax bytes is never cut silently: it is split over several
// consecutive records (flags kLogContinues / kLogContinuation, split on UTF-8 character
// boundaries), up to kMaxPartsPerMessage records; beyond that the last record carries
// kLogTruncated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace lantern::lib {

enum class LogLevel : uint8_t { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3, kTrace = 4 };

// "error", "warn", "info", "debug", "trace" ("unknown" for anything else).
const char* log_level_name(LogLevel level);

// Record flags.
constexpr uint8_t kLogContinues = 1 << 0;     // the message goes on in record seq + 1
constexpr uint8_t kLogContinuation = 1 << 1;  // this record continues record seq - 1
constexpr uint8_t kLogTruncated = 1 << 2;     // the message's tail was discarded (too long)

struct LogRecord {
  static constexpr size_t kTextMax = 200;

  uint64_t seq = 0;
  uint64_t timestamp = 0;  // whatever clock the caller uses (TSC or nanoseconds)
  uint32_t cpu = 0;
  LogLevel level = LogLevel::kInfo;
  uint8_t flags = 0;
  uint16_t length = 0;  // bytes of text used (not NUL-terminated)
  char text[kTextMax];

  std::string_view text_view() const { return std::string_view(text, length); }
};

class LogRing {
 public:
  static constexpr size_t kMaxPartsPerMessage = 16;  // 3200 bytes of text per append()

  explicit LogRing(std::span<LogRecord> storage) : records_(storage) {}
  LogRing(const LogRing&) = delete;
  LogRing& operator=(const LogRing&) = delete;

  // Appends one message (one or more records). Returns the sequence number of its first
  // record. With zero capacity nothing is stored and every record counts as dropped.
  uint64_t append(LogLevel level, uint32_t cpu, uint64_t timestamp, std::string_view text);

  struct ReadResult {
    size_t count = 0;       // records copied into `out`, oldest first
    uint64_t next_seq = 0;  // pass this as `since` next time
    uint64_t missed = 0;    // records after `since` that were overwritten before this read
    bool reset = false;     // `since` was in the future (e.g. the kernel restarted): read
                            // restarted from the oldest record
  };
  // Copies records with seq >= since into out (as many as fit).
  ReadResult read_since(uint64_t since, std::span<LogRecord> out) const;

  uint64_t next_seq() const { return next_seq_; }
  // Oldest record still held; equals next_seq() when the ring is empty.
  uint64_t oldest_seq() const;
  // Records overwritten (or not stored for lack of capacity) since the start.
  uint64_t dropped() const { return dropped_; }
  size_t size() const { return static_cast<size_t>(next_seq_ - oldest_seq()); }
  size_t capacity() const { return records_.size(); }

 private:
  void push(LogLevel level, uint32_t cpu, uint64_t timestamp, uint8_t flags, std::string_view text);

  std::span<LogRecord> records_;
  uint64_t next_seq_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace lantern::lib
