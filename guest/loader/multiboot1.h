// Multiboot v1 loader (portable, host-tested): finds and checks a kernel's Multiboot header,
// loads the kernel (ELF32, ELF64 or the a.out kludge) and its modules into guest RAM, writes the
// Multiboot information structure and says how the vCPU starts.
//
// Reference: the Multiboot Specification version 0.6.96 (GNU), cited as "MB 3.1.x" etc.:
//  - 3.1.1 "OS image format": the header lies entirely within the first 8192 bytes, 32-bit aligned.
//  - 3.1.2 "The layout of Multiboot header": magic, flags, checksum, then (flag bit 16) header_addr,
//    load_addr, load_end_addr, bss_end_addr, entry_addr at offsets 12-28.
//  - 3.1.3 "The magic fields": magic 0x1BADB002; magic + flags + checksum == 0 (mod 2^32); flag
//    bits 0-15 are requirements a loader that cannot meet them must refuse; bit 0 = modules
//    page-aligned, bit 1 = memory information, bit 2 = video mode table.
//  - 3.1.4 "The address fields of Multiboot header" (the a.out kludge).
//  - 3.2 "Machine state": EAX = 0x2BADB002, EBX = the information's physical address, CS a
//    32-bit read/execute segment with offset 0 and limit 0xFFFFFFFF, DS/ES/FS/GS/SS 32-bit
//    read/write segments with offset 0 and limit 0xFFFFFFFF, A20 on, CR0 PG clear and PE set,
//    EFLAGS VM and IF clear; ESP, GDTR and IDTR undefined (the OS sets its own).
//  - 3.3 "Boot information format": flags, mem_lower/upper, cmdline, mods, mmap, loader name.
// ELF: the System V ABI (TIS ELF 1.2, Book I, "ELF Header" Figure 1-3, "Program Header"
// Figure 2-1) and the ELF-64 Object File Format 1.5 (sections 3 and 6). Like GRUB 2, segments
// load at p_paddr and the entry point is translated from the segment that holds e_entry.
//
// Placement in guest RAM: kernel segments where they ask (they must lie in RAM of the guest
// memory map, never over the 640 KiB-1 MiB hole or the APIC windows); modules page-aligned above
// the kernel's highest byte (its bss included); the information block (structure, memory map,
// module list, strings) page-aligned above the last module. Nothing overlaps.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "guest/loader/entry_state.h"
#include "guest/loader/guest_memory.h"
#include "guest/loader/memory_map.h"
#include "kernel/lib/result.h"

namespace lantern::guest::multiboot1 {

inline constexpr uint32_t kHeaderMagic = 0x1badb002;      // MB 3.1.3
inline constexpr uint32_t kBootloaderMagic = 0x2badb002;  // MB 3.2, in EAX
inline constexpr uint32_t kSearchBytes = 8192;            // MB 3.1.1
inline constexpr uint32_t kFlagPageAlignModules = 1u << 0;
inline constexpr uint32_t kFlagMemoryInfo = 1u << 1;
inline constexpr uint32_t kFlagVideoMode = 1u << 2;
inline constexpr uint32_t kFlagAddressFields = 1u << 16;  // the a.out kludge
inline constexpr uint32_t kRequirementMask = 0x0000ffff;
inline constexpr uint32_t kSupportedRequirements = kFlagPageAlignModules | kFlagMemoryInfo;

// Multiboot information flags (MB 3.3).
inline constexpr uint32_t kInfoMemory = 1u << 0;
inline constexpr uint32_t kInfoCmdline = 1u << 2;
inline constexpr uint32_t kInfoModules = 1u << 3;
inline constexpr uint32_t kInfoMemoryMap = 1u << 6;
inline constexpr uint32_t kInfoLoaderName = 1u << 9;
// Offsets in the information structure (MB 3.3).
inline constexpr uint32_t kInfoOffsetFlags = 0, kInfoOffsetMemLower = 4, kInfoOffsetMemUpper = 8,
                          kInfoOffsetCmdline = 16, kInfoOffsetModsCount = 20, kInfoOffsetModsAddr = 24,
                          kInfoOffsetMmapLength = 44, kInfoOffsetMmapAddr = 48,
                          kInfoOffsetLoaderName = 64;
inline constexpr uint32_t kInfoBytes = 120;      // the 0.6.96 structure through the framebuffer fields
inline constexpr uint32_t kModuleEntryBytes = 16;  // mod_start, mod_end, string, reserved
inline constexpr uint32_t kMmapEntryBytes = 24;    // size (=20), base_addr, length, type
inline constexpr uint64_t kPageSize = 4096;

struct Header {
  uint32_t offset = 0;  // file offset of the magic
  uint32_t flags = 0;
  bool has_address_fields = false;
  uint32_t header_addr = 0, load_addr = 0, load_end_addr = 0, bss_end_addr = 0, entry_addr = 0;
};

// The first header (4-byte aligned, within the first 8192 bytes) whose magic and checksum
// match. kNotFound without one; kBadChecksum when a magic was found but no checksum matched;
// kTruncated when the address fields would run past the image.
Result<Header> find_header(std::span<const uint8_t> image);

enum class KernelFormat : uint8_t { kElf32, kElf64, kAoutKludge };
constexpr const char* kernel_format_name(KernelFormat f) {
  switch (f) {
    case KernelFormat::kElf32: return "multiboot-elf32";
    case KernelFormat::kElf64: return "multiboot-elf64";
    case KernelFormat::kAoutKludge: return "multiboot-aout-kludge";
  }
  return "unknown";
}

struct LoadedKernel {
  KernelFormat format = KernelFormat::kElf32;
  uint32_t entry = 0;
  uint64_t lowest = 0;  // lowest guest-physical byte loaded
  uint64_t end = 0;     // one past the highest byte loaded or zeroed (bss included)
  uint32_t header_flags = 0;
};

// Loads the kernel image's segments into `memory`, checked against `map`.
Result<LoadedKernel> load_kernel(std::span<const uint8_t> image, const GuestMemoryMap& map, GuestMemory& memory);

struct ModuleInput {
  std::span<const uint8_t> bytes;
  std::string_view string;  // the module's string in the information structure
};

struct PlacedModule {
  uint64_t start = 0;
  uint64_t end = 0;  // one past the last byte (mod_end, as GRUB sets it)
};

inline constexpr size_t kMaxModules = 16;

struct BootRequest {
  std::span<const uint8_t> kernel;
  std::string_view cmdline;
  std::span<const ModuleInput> modules;
  std::string_view loader_name = "Lantern";
};

struct BootImage {
  LoadedKernel kernel;
  PlacedModule modules[kMaxModules];
  size_t module_count = 0;
  uint64_t info_address = 0;
  uint64_t info_end = 0;  // one past the information block
  EntryState entry;
};

// Everything: the kernel, the modules, the information block and the entry state. Errors name
// the first problem (see multiboot1.cpp for every message).
Result<BootImage> load(const BootRequest& request, const GuestMemoryMap& map, GuestMemory& memory);

// The machine state of MB 3.2 for `entry` and `info_address`: 32-bit protected mode, paging off,
// flat 4 GiB CS (selector 0x08) and data segments (0x10), IF clear.
EntryState entry_state(uint32_t entry, uint32_t info_address);

}  // namespace lantern::guest::multiboot1
