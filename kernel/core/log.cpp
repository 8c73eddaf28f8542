#include "kernel/core/log.h"

#include <cstdarg>

#include "kernel/arch/x86_64/percpu.h"
#include "kernel/arch/x86_64/serial.h"
#include "kernel/core/spinlock.h"
#include "kernel/core/time.h"
#include "kernel/lib/format.h"
#include "kernel/lib/log_ring.h"
#include "kernel/runtime/heap_hooks.h"

namespace lantern::log {
namespace {

constexpr size_t kLineBytes = 512;

constexpr size_t kRingRecords = 2048;

IrqSpinlock g_lock;
Level g_level = Level::kInfo;
lib::LogRing* g_ring = nullptr;  // null until the heap exists

uint32_t current_cpu() {
  PerCpu* c = this_cpu_or_null();
  return c ? c->index : 0;
}

}  // namespace

const char* level_name(Level level) {
  switch (level) {
    case Level::kError: return "error";
    case Level::kWarn: return "warn";
    case Level::kInfo: return "info";
    case Level::kDebug: return "debug";
  }
  return "?";
}

bool parse_level(std::string_view text, Level* out) {
  static constexpr std::string_view kNames[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; ++i) {
    if (text == kNames[i] || (text.size() == 1 && text[0] == '0' + i)) {
      *out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

void set_level(Level level) {
  g_level = level;
}
Level level() {
  return g_level;
}

void init_ring() {
  void* storage = kmalloc(sizeof(lib::LogRecord) * kRingRecords, alignof(lib::LogRecord));
  void* ring = kmalloc(sizeof(lib::LogRing), alignof(lib::LogRing));
  if (storage == nullptr || ring == nullptr) {
    LOG_WARN("log: no memory for the log ring; the log stays on COM1 only");
    return;
  }
  auto* records = new (storage) lib::LogRecord[kRingRecords];
  auto* created = new (ring) lib::LogRing(std::span<lib::LogRecord>(records, kRingRecords));
  IrqSpinlockGuard guard(g_lock);
  g_ring = created;
}

uint64_t read_ring(uint64_t since, std::span<lib::LogRecord> out, uint64_t* dropped) {
  IrqSpinlockGuard guard(g_lock);
  if (g_ring == nullptr) return 0;
  if (dropped) *dropped = g_ring->dropped();
  return g_ring->read_since(since, out).count;
}

lib::LogRing::ReadResult read_ring_since(uint64_t since, std::span<lib::LogRecord> out) {
  IrqSpinlockGuard guard(g_lock);
  if (g_ring == nullptr) return {};
  return g_ring->read_since(since, out);
}

void write(Level level, const char* fmt, ...) {
  if (level > g_level) return;
  char line[kLineBytes];
  const uint64_t ns = time::now_ns();
  int prefix = lib::format(
      line, sizeof(line), "[%5llu.%06llu] cpu%u %s: ", static_cast<unsigned long long>(ns / 1'000'000'000),
      static_cast<unsigned long long>((ns / 1000) % 1'000'000), current_cpu(), level_name(level));
  if (prefix < 0) prefix = 0;
  va_list args;
  va_start(args, fmt);
  const int body = lib::format_v(line + prefix, sizeof(line) - prefix, fmt, args);
  va_end(args);
  size_t length = static_cast<size_t>(prefix) + (body > 0 ? static_cast<size_t>(body) : 0);
  static constexpr char kCut[] = " [...]";
  if (length >= sizeof(line) - 1) {
    // Over-long lines are cut visibly, never silently.
    length = sizeof(line) - 1 - sizeof(kCut);
    for (size_t i = 0; i < sizeof(kCut) - 1; ++i) line[length + i] = kCut[i];
    length += sizeof(kCut) - 1;
  }
  line[length] = '\n';
  IrqSpinlockGuard guard(g_lock);
  serial::write(line, length + 1);
  if (g_ring != nullptr) {
    g_ring->append(static_cast<lib::LogLevel>(level), current_cpu(), ns,
                   std::string_view(line + prefix, length - static_cast<size_t>(prefix)));
  }
}

void contract_line(const char* fmt, ...) {
  char line[kLineBytes];
  va_list args;
  va_start(args, fmt);
  int n = lib::format_v(line, sizeof(line) - 1, fmt, args);
  va_end(args);
  if (n < 0) n = 0;
  size_t length = static_cast<size_t>(n) < sizeof(line) - 2 ? static_cast<size_t>(n) : sizeof(line) - 2;
  line[length] = '\n';
  IrqSpinlockGuard guard(g_lock);
  serial::write(line, length + 1);
}

}  // namespace lantern::log
