// Portable parser of the Multiboot2 boot information structure.
//
// Reference: the Multiboot2 Specification version 2.0 (GNU HTML edition), section 3.6 "Boot
// information" (3.6.2 "Basic tags structure" onwards; subsection numbers below follow it).
// The loader leaves a pointer to the structure in EBX; the kernel reads total_size from its
// first 8 bytes, builds a span of that many bytes and calls parse() or parse_into().
//
// The parser never allocates and never reads outside the span: every tag header, field and
// string is bounds-checked against the tag and against total_size. Strings are returned as
// std::string_view pointing INTO the blob, so the blob must outlive the BootInfo (the kernel
// keeps the loader's copy mapped and reserved).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "kernel/lib/result.h"

namespace lantern::multiboot2 {

// Tag types (Multiboot2 spec 3.6.2 onwards; each subsection gives its tag's type value).
enum class TagType : uint32_t {
  kEnd = 0,                // 3.6.2 terminating tag: type 0, size 8
  kCmdline = 1,            // 3.6.5 Boot command line
  kBootLoaderName = 2,     // 3.6.9 Boot loader name
  kModule = 3,             // 3.6.6 Modules
  kBasicMemInfo = 4,       // 3.6.3 Basic memory information
  kBiosBootDevice = 5,     // 3.6.4 BIOS Boot device (skipped)
  kMemoryMap = 6,          // 3.6.8 Memory map
  kVbeInfo = 7,            // 3.6.11 VBE info (skipped)
  kFramebuffer = 8,        // 3.6.12 Framebuffer info
  kElfSections = 9,        // 3.6.7 ELF-Symbols (skipped)
  kApmTable = 10,          // 3.6.10 APM table (skipped)
  kEfi32SystemTable = 11,  // 3.6.13 (skipped)
  kEfi64SystemTable = 12,  // 3.6.14 (skipped)
  kSmbios = 13,            // 3.6.15 SMBIOS tables (skipped)
  kAcpiOldRsdp = 14,       // 3.6.16 ACPI old RSDP (copy of RSDPv1)
  kAcpiNewRsdp = 15,       // 3.6.17 ACPI new RSDP (copy of RSDPv2)
  kNetworking = 16,        // 3.6.18 (skipped)
  kEfiMemoryMap = 17,      // 3.6.19 (skipped)
};

// Memory map entry types, spec section 3.6.8.
enum class MemoryType : uint32_t {
  kAvailable = 1,        // "1 indicates available RAM"
  kReserved = 2,         // any other value is reserved; 2 is what firmware reports
  kAcpiReclaimable = 3,  // "3 indicates usable memory holding ACPI information"
  kNvs = 4,              // "4 indicates reserved memory which needs to be preserved on hibernation"
  kBadRam = 5,           // "5 indicates a memory which is occupied by defective RAM modules"
};

struct MemoryMapEntry {
  uint64_t base = 0;
  uint64_t length = 0;
  uint32_t type = 0;  // raw value; compare with MemoryType
  bool available() const { return type == static_cast<uint32_t>(MemoryType::kAvailable); }
};

struct BasicMemInfo {
  uint32_t lower_kib = 0;  // mem_lower: KiB of lower memory, starting at 0 (max 640)
  uint32_t upper_kib = 0;  // mem_upper: KiB of upper memory, starting at 1 MiB
};

struct Module {
  uint64_t start = 0;        // mod_start: physical address of the first byte
  uint64_t end = 0;          // mod_end: physical address one past the last byte (GRUB: start + size)
  std::string_view cmdline;  // the module's string (NUL stripped; may be empty)
  uint64_t size() const { return end - start; }
};

// The RSDP copied out of tag 14 or 15. Bytes are copied so the ACPI code does not depend on
// the blob. ACPI 6.5 section 5.2.5.3: RSDP v1 (revision 0) is 20 bytes, v2+ is 36 bytes.
struct AcpiRsdp {
  static constexpr size_t kV1Size = 20;  // ACPI 6.5 Table 5.3: Length field absent, 20 bytes
  static constexpr size_t kV2Size = 36;  // ACPI 6.5 Table 5.3: Length = 36 for revision 2
  std::array<uint8_t, kV2Size> data{};
  size_t length = 0;    // number of valid bytes in data (20 or 36)
  uint8_t version = 0;  // 1 for tag 14 (old RSDP), 2 for tag 15 (new RSDP)
  std::span<const uint8_t> bytes() const { return {data.data(), length}; }
};

// Framebuffer tag (spec 3.6.12): parsed but unused by the kernel (it logs to serial).
struct Framebuffer {
  uint64_t addr = 0;
  uint32_t pitch = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint8_t bpp = 0;
  uint8_t type = 0;  // 0 indexed, 1 direct RGB, 2 EGA text (spec 3.6.12)
};

struct BootInfo {
  static constexpr size_t kMaxMemoryMapEntries = 128;
  static constexpr size_t kMaxModules = 64;  // the build's guest programs plus the VMs' kernels and modules

  uint32_t total_size = 0;
  std::optional<std::string_view> cmdline;
  std::optional<std::string_view> boot_loader_name;
  std::optional<BasicMemInfo> basic_meminfo;
  std::optional<Framebuffer> framebuffer;
  // Tag 15 wins over tag 14 when both are present (the newer copy carries the XSDT).
  std::optional<AcpiRsdp> acpi_rsdp;

  bool has_memory_map = false;
  std::array<MemoryMapEntry, kMaxMemoryMapEntries> memory_map_storage{};
  size_t memory_map_count = 0;

  std::array<Module, kMaxModules> module_storage{};
  size_t module_count = 0;

  std::span<const MemoryMapEntry> memory_map() const { return {memory_map_storage.data(), memory_map_count}; }
  std::span<const Module> modules() const { return {module_storage.data(), module_count}; }

  // Sum of the lengths of all "available" (type 1) memory map entries. Entries are summed
  // as reported (the loader does not emit overlapping entries); saturates instead of wrapping.
  uint64_t usable_memory_bytes() const;
};

// Size of the fixed part (u32 total_size, u32 reserved) and of each tag header
// (u32 type, u32 size): spec 3.6.2.
inline constexpr size_t kFixedPartSize = 8;
inline constexpr size_t kTagHeaderSize = 8;
// "Tags follow one another padded when necessary in order for each tag to start at 8-bytes
// aligned address" and the structure itself starts 8-byte aligned: spec 3.6.2.
inline constexpr size_t kTagAlign = 8;

// Parses the whole boot information structure. `blob` may be longer than total_size (the
// extra bytes are ignored) but not shorter. Errors carry the byte offset of the offending
// tag or field (relative to the start of the blob) as detail. Unknown tags are skipped.
// Duplicated single-instance tags (cmdline, loader name, meminfo, mmap, framebuffer, either
// RSDP type) are rejected as kMalformed: a loader never emits them and they are ambiguous.
Result<BootInfo> parse(std::span<const uint8_t> blob);

// Same as parse() but fills a caller-owned BootInfo (about 3.7 KiB), so the kernel can keep it
// in .bss instead of returning it by value on a small boot stack. `info` is reset first; on
// error its contents are unspecified.
Result<void> parse_into(std::span<const uint8_t> blob, BootInfo& info);

}  // namespace lantern::multiboot2
