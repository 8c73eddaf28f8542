// Fuzz target: the Multiboot2 boot-information parser (kernel/boot/multiboot2.h).
//
// The input is the boot information structure, copied into an 8-byte-aligned buffer of exactly its
// size (so AddressSanitizer catches any read past it). Invariants on every accepted input:
//   - total_size lies within 8..input size, and parse() and parse_into() agree;
//   - every string (command line, loader name, module strings) lies inside the blob and within
//     total_size, and has no NUL inside;
//   - at most 128 memory-map entries and 16 modules; each module's end >= its start;
//   - usable_memory_bytes() is at least each available entry's length (it saturates, never wraps).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernel/boot/multiboot2.h"
#include "tests/fuzz/fuzz_check.h"

namespace lantern::multiboot2 {
namespace {

void check_inside(std::string_view s, const uint8_t* blob, uint32_t total_size) {
  const auto* begin = reinterpret_cast<const uint8_t*>(s.data());
  FUZZ_CHECK(s.empty() || (begin >= blob && begin + s.size() <= blob + total_size), s);
  FUZZ_CHECK(s.find('\0') == std::string_view::npos, s);
}

void run(const uint8_t* data, size_t size) {
  // The parser requires 8-byte alignment (spec 3.6.2); a uint64_t buffer gives it.
  std::vector<uint64_t> storage((size + 7) / 8 + (size == 0 ? 1 : 0));
  auto* blob = reinterpret_cast<uint8_t*>(storage.data());
  if (size) std::memcpy(blob, data, size);
  const std::span<const uint8_t> span(blob, size);

  const Result<BootInfo> parsed = parse(span);
  static BootInfo filled;  // 3.7 KiB: as the kernel does, not on the stack
  const Result<void> into = parse_into(span, filled);
  FUZZ_CHECK(parsed.has_value() == into.has_value(), "parse() and parse_into() disagree");
  if (!parsed) {
    FUZZ_CHECK(parsed.error().code == into.error().code, "different errors");
    return;
  }
  const BootInfo& info = *parsed;
  FUZZ_CHECK(info.total_size >= kFixedPartSize && info.total_size <= size, std::to_string(info.total_size));
  FUZZ_CHECK(filled.total_size == info.total_size && filled.module_count == info.module_count &&
                 filled.memory_map_count == info.memory_map_count,
             "parse_into() filled something else");
  if (info.cmdline) check_inside(*info.cmdline, blob, info.total_size);
  if (info.boot_loader_name) check_inside(*info.boot_loader_name, blob, info.total_size);
  FUZZ_CHECK(info.memory_map_count <= BootInfo::kMaxMemoryMapEntries, "memory map overflow");
  FUZZ_CHECK(info.module_count <= BootInfo::kMaxModules, "module overflow");
  for (const Module& m : info.modules()) {
    FUZZ_CHECK(m.end >= m.start, "module end below start");
    check_inside(m.cmdline, blob, info.total_size);
  }
  const uint64_t usable = info.usable_memory_bytes();
  for (const MemoryMapEntry& e : info.memory_map()) {
    if (e.available()) FUZZ_CHECK(usable >= e.length, "usable memory wrapped around");
  }
  if (info.acpi_rsdp) {
    FUZZ_CHECK(info.acpi_rsdp->length == AcpiRsdp::kV1Size || info.acpi_rsdp->length == AcpiRsdp::kV2Size,
               std::to_string(info.acpi_rsdp->length));
  }
}

}  // namespace
}  // namespace lantern::multiboot2

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lantern::multiboot2::run(data, size);
  return 0;
}
