// The hypervisor log: leveled, timestamped lines on COM1, kept in a ring for /api/v1/log.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "kernel/lib/log_ring.h"

namespace lantern::log {

enum class Level : uint8_t { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

const char* level_name(Level level);
// Accepts error|warn|info|debug or 0..3.
bool parse_level(std::string_view text, Level* out);
void set_level(Level level);
Level level();

void init_ring();  // once the heap exists: records before it are on COM1 only
// Copies records with sequence number >= since into out; returns how many. *dropped (when
// non-null) receives how many records the ring has overwritten since boot.
uint64_t read_ring(uint64_t since, std::span<lib::LogRecord> out, uint64_t* dropped);
// The same with the ring's full answer (next sequence number, records missed since `since`).
lib::LogRing::ReadResult read_ring_since(uint64_t since, std::span<lib::LogRecord> out);
void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
// A bare contract line (READY, SELFTEST ...): no prefix, never filtered.
void contract_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace lantern::log

#define LOG_ERROR(...) ::lantern::log::write(::lantern::log::Level::kError, __VA_ARGS__)
#define LOG_WARN(...) ::lantern::log::write(::lantern::log::Level::kWarn, __VA_ARGS__)
#define LOG_INFO(...) ::lantern::log::write(::lantern::log::Level::kInfo, __VA_ARGS__)
#define LOG_DEBUG(...) ::lantern::log::write(::lantern::log::Level::kDebug, __VA_ARGS__)
