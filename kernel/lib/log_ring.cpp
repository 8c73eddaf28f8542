// Fixed-capacity log ring; see log_ring.h.
#include "kernel/lib/log_ring.h"

#include "kernel/lib/string.h"

namespace lantern::lib {

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kTrace: return "trace";
  }
  return "unknown";
}

uint64_t LogRing::oldest_seq() const {
  const uint64_t cap = records_.size();
  return next_seq_ > cap ? next_seq_ - cap : 0;
}

void LogRing::push(LogLevel level, uint32_t cpu, uint64_t timestamp, uint8_t flags, std::string_view text) {
  const uint64_t seq = next_seq_++;
  if (records_.empty()) {
    ++dropped_;
    return;
  }
  if (seq >= records_.size()) ++dropped_;  // the slot still holds record seq - capacity
  LogRecord& r = records_[seq % records_.size()];
  r.seq = seq;
  r.timestamp = timestamp;
  r.cpu = cpu;
  r.level = level;
  r.flags = flags;
  r.length = static_cast<uint16_t>(text.size());
  mem_copy(r.text, text.data(), text.size());
}

uint64_t LogRing::append(LogLevel level, uint32_t cpu, uint64_t timestamp, std::string_view text) {
  const uint64_t first = next_seq_;
  size_t max_parts = kMaxPartsPerMessage;
  if (!records_.empty() && records_.size() < max_parts) max_parts = records_.size();
  size_t offset = 0;
  for (size_t part = 0;; ++part) {
    size_t len = text.size() - offset;
    if (len > LogRecord::kTextMax) {
      len = LogRecord::kTextMax;
      // Do not split a UTF-8 sequence: move the cut back over at most 3 continuation bytes
      // (10xxxxxx, RFC 3629 section 3). Invalid UTF-8 is split where it falls.
      auto continuation = [&](size_t i) { return (static_cast<uint8_t>(text[i]) & 0xc0) == 0x80; };
      size_t cut = len;
      while (cut > len - 3 && continuation(offset + cut)) --cut;
      if (!continuation(offset + cut)) len = cut;
    }
    const bool more = offset + len < text.size();
    uint8_t flags = part != 0 ? kLogContinuation : 0;
    if (more && part + 1 == max_parts) {
      push(level, cpu, timestamp, flags | kLogTruncated, text.substr(offset, len));
      break;
    }
    if (more) flags |= kLogContinues;
    push(level, cpu, timestamp, flags, text.substr(offset, len));
    offset += len;
    if (!more) break;
  }
  return first;
}

LogRing::ReadResult LogRing::read_since(uint64_t since, std::span<LogRecord> out) const {
  ReadResult result;
  const uint64_t oldest = oldest_seq();
  if (since > next_seq_) {
    result.reset = true;
    since = oldest;
  }
  if (since < oldest) {
    result.missed = oldest - since;
    since = oldest;
  }
  uint64_t seq = since;
  while (seq < next_seq_ && result.count < out.size()) {
    out[result.count++] = records_[seq % records_.size()];
    ++seq;
  }
  result.next_seq = seq;
  return result;
}

}  // namespace lantern::lib
