// Multiboot2 boot information parser. Section numbers refer to the Multiboot2 specification
// version 2.0 (GNU HTML edition), section 3.6 "Boot information".
#include "kernel/boot/multiboot2.h"

namespace lantern::multiboot2 {
namespace {

// Little-endian field loads assembled from bytes: no alignment assumptions, no libc.
// Callers guarantee off + width <= bytes.size().
uint32_t load_u32(std::span<const uint8_t> bytes, size_t off) {
  return static_cast<uint32_t>(bytes[off]) | (static_cast<uint32_t>(bytes[off + 1]) << 8) |
         (static_cast<uint32_t>(bytes[off + 2]) << 16) | (static_cast<uint32_t>(bytes[off + 3]) << 24);
}

uint64_t load_u64(std::span<const uint8_t> bytes, size_t off) {
  return static_cast<uint64_t>(load_u32(bytes, off)) |
         (static_cast<uint64_t>(load_u32(bytes, off + 4)) << 32);
}

// A tag as located in the blob: `body` covers the whole tag (header included, padding
// excluded); `offset` is where it starts in the blob, used as error detail.
struct Tag {
  uint32_t type;
  std::span<const uint8_t> body;
  size_t offset;
};

// Reads a NUL-terminated string occupying body[start..]; the NUL must lie inside the tag.
Result<std::string_view> tag_string(const Tag& tag, size_t start) {
  if (start >= tag.body.size()) {
    return make_error(ErrorCode::kMalformed, "multiboot2: tag too small for its string", tag.offset);
  }
  for (size_t i = start; i < tag.body.size(); ++i) {
    if (tag.body[i] == 0) {
      return std::string_view(reinterpret_cast<const char*>(tag.body.data() + start), i - start);
    }
  }
  return make_error(ErrorCode::kMalformed, "multiboot2: string not NUL-terminated inside its tag",
                    tag.offset);
}

// Spec 3.6.6 Modules: u32 type=3, u32 size, u32 mod_start, u32 mod_end, string.
constexpr size_t kModuleStartOff = 8;
constexpr size_t kModuleEndOff = 12;
constexpr size_t kModuleStringOff = 16;

// Spec 3.6.3 Basic memory information: u32 type=4, u32 size=16, u32 mem_lower, u32 mem_upper.
constexpr size_t kMemInfoLowerOff = 8;
constexpr size_t kMemInfoUpperOff = 12;
constexpr size_t kMemInfoSize = 16;

// Spec 3.6.8 Memory map: u32 type=6, u32 size, u32 entry_size, u32 entry_version, then
// entries of u64 base_addr, u64 length, u32 type, u32 reserved ("entry_size is guaranteed
// to be a multiple of 8"; the entry as defined is 24 bytes).
constexpr size_t kMmapEntrySizeOff = 8;
constexpr size_t kMmapEntriesOff = 16;
constexpr size_t kMmapMinEntrySize = 24;
constexpr size_t kMmapEntryBaseOff = 0;
constexpr size_t kMmapEntryLengthOff = 8;
constexpr size_t kMmapEntryTypeOff = 16;

// Spec 3.6.12 Framebuffer info: u32 type=8, u32 size, u64 framebuffer_addr, u32 pitch,
// u32 width, u32 height, u8 bpp, u8 framebuffer_type, reserved, then color_info.
constexpr size_t kFbAddrOff = 8;
constexpr size_t kFbPitchOff = 16;
constexpr size_t kFbWidthOff = 20;
constexpr size_t kFbHeightOff = 24;
constexpr size_t kFbBppOff = 28;
constexpr size_t kFbTypeOff = 29;
constexpr size_t kFbMinSize = 30;  // through framebuffer_type

// Spec 3.6.16/3.6.17: u32 type, u32 size, then a copy of the RSDP.
constexpr size_t kRsdpOff = 8;

Result<void> parse_module(const Tag& tag, BootInfo& info) {
  if (tag.body.size() < kModuleStringOff) {
    return make_error(ErrorCode::kMalformed, "multiboot2: module tag too small", tag.offset);
  }
  if (info.module_count >= BootInfo::kMaxModules) {
    return make_error(ErrorCode::kFull, "multiboot2: more modules than BootInfo::kMaxModules", tag.offset);
  }
  Module mod;
  mod.start = load_u32(tag.body, kModuleStartOff);
  mod.end = load_u32(tag.body, kModuleEndOff);
  if (mod.end < mod.start) {
    return make_error(ErrorCode::kMalformed, "multiboot2: module end is below its start",
                      tag.offset + kModuleEndOff);
  }
  mod.cmdline = TRY(tag_string(tag, kModuleStringOff));
  info.module_storage[info.module_count++] = mod;
  return ok();
}

Result<void> parse_memory_map(const Tag& tag, BootInfo& info) {
  if (tag.body.size() < kMmapEntriesOff) {
    return make_error(ErrorCode::kMalformed, "multiboot2: memory map tag too small", tag.offset);
  }
  const uint32_t entry_size = load_u32(tag.body, kMmapEntrySizeOff);
  if (entry_size < kMmapMinEntrySize) {
    return make_error(ErrorCode::kMalformed, "multiboot2: memory map entry_size below 24 bytes",
                      tag.offset + kMmapEntrySizeOff);
  }
  const size_t entries_bytes = tag.body.size() - kMmapEntriesOff;
  if (entries_bytes % entry_size != 0) {
    return make_error(ErrorCode::kMalformed, "multiboot2: memory map entries do not fit the tag exactly",
                      tag.offset);
  }
  const size_t count = entries_bytes / entry_size;
  if (count > BootInfo::kMaxMemoryMapEntries) {
    return make_error(ErrorCode::kFull, "multiboot2: memory map has more entries than kMaxMemoryMapEntries",
                      tag.offset);
  }
  for (size_t i = 0; i < count; ++i) {
    const size_t off = kMmapEntriesOff + i * entry_size;
    MemoryMapEntry& e = info.memory_map_storage[i];
    e.base = load_u64(tag.body, off + kMmapEntryBaseOff);
    e.length = load_u64(tag.body, off + kMmapEntryLengthOff);
    e.type = load_u32(tag.body, off + kMmapEntryTypeOff);
  }
  info.memory_map_count = count;
  info.has_memory_map = true;
  return ok();
}

Result<void> parse_rsdp(const Tag& tag, BootInfo& info) {
  const bool is_new = tag.type == static_cast<uint32_t>(TagType::kAcpiNewRsdp);
  const size_t want = is_new ? AcpiRsdp::kV2Size : AcpiRsdp::kV1Size;
  if (tag.body.size() < kRsdpOff + want) {
    return make_error(ErrorCode::kMalformed, "multiboot2: ACPI RSDP tag too small for the RSDP", tag.offset);
  }
  // An old RSDP never replaces a new one, whatever the tag order.
  if (!is_new && info.acpi_rsdp.has_value() && info.acpi_rsdp->version == 2) return ok();
  AcpiRsdp rsdp;
  for (size_t i = 0; i < want; ++i) rsdp.data[i] = tag.body[kRsdpOff + i];
  rsdp.length = want;
  rsdp.version = is_new ? 2 : 1;
  info.acpi_rsdp = rsdp;
  return ok();
}

Result<void> parse_tag(const Tag& tag, BootInfo& info) {
  switch (static_cast<TagType>(tag.type)) {
    case TagType::kCmdline: info.cmdline = TRY(tag_string(tag, kTagHeaderSize)); return ok();
    case TagType::kBootLoaderName: info.boot_loader_name = TRY(tag_string(tag, kTagHeaderSize)); return ok();
    case TagType::kModule: return parse_module(tag, info);
    case TagType::kBasicMemInfo:
      if (tag.body.size() < kMemInfoSize) {
        return make_error(ErrorCode::kMalformed, "multiboot2: basic meminfo tag too small", tag.offset);
      }
      info.basic_meminfo =
          BasicMemInfo{load_u32(tag.body, kMemInfoLowerOff), load_u32(tag.body, kMemInfoUpperOff)};
      return ok();
    case TagType::kMemoryMap: return parse_memory_map(tag, info);
    case TagType::kFramebuffer: {
      if (tag.body.size() < kFbMinSize) {
        return make_error(ErrorCode::kMalformed, "multiboot2: framebuffer tag too small", tag.offset);
      }
      Framebuffer fb;
      fb.addr = load_u64(tag.body, kFbAddrOff);
      fb.pitch = load_u32(tag.body, kFbPitchOff);
      fb.width = load_u32(tag.body, kFbWidthOff);
      fb.height = load_u32(tag.body, kFbHeightOff);
      fb.bpp = tag.body[kFbBppOff];
      fb.type = tag.body[kFbTypeOff];
      info.framebuffer = fb;
      return ok();
    }
    case TagType::kAcpiOldRsdp:
    case TagType::kAcpiNewRsdp: return parse_rsdp(tag, info);
    default: return ok();  // unknown or uninteresting tag: skipped by its size (spec 3.6.2)
  }
}

// Tags that may appear at most once. Bit index = tag type (all < 32).
constexpr uint32_t kSingleInstanceMask = (1u << static_cast<uint32_t>(TagType::kCmdline)) |
                                         (1u << static_cast<uint32_t>(TagType::kBootLoaderName)) |
                                         (1u << static_cast<uint32_t>(TagType::kBasicMemInfo)) |
                                         (1u << static_cast<uint32_t>(TagType::kMemoryMap)) |
                                         (1u << static_cast<uint32_t>(TagType::kFramebuffer)) |
                                         (1u << static_cast<uint32_t>(TagType::kAcpiOldRsdp)) |
                                         (1u << static_cast<uint32_t>(TagType::kAcpiNewRsdp));

}  // namespace

uint64_t BootInfo::usable_memory_bytes() const {
  uint64_t total = 0;
  for (const MemoryMapEntry& e : memory_map()) {
    if (!e.available()) continue;
    total = (e.length > UINT64_MAX - total) ? UINT64_MAX : total + e.length;
  }
  return total;
}

Result<void> parse_into(std::span<const uint8_t> blob, BootInfo& info) {
  info = BootInfo{};
  // Spec 3.6.2: the structure's "start is 8-bytes aligned".
  const uintptr_t addr = reinterpret_cast<uintptr_t>(blob.data());
  if (addr % kTagAlign != 0) {
    return make_error(ErrorCode::kMalformed, "multiboot2: boot info is not 8-byte aligned", addr);
  }
  if (blob.size() < kFixedPartSize) {
    return make_error(ErrorCode::kTruncated, "multiboot2: blob smaller than the 8-byte fixed part",
                      blob.size());
  }
  // Spec 3.6.2 fixed part: u32 total_size (includes the fixed part and the end tag), u32 reserved.
  const uint32_t total_size = load_u32(blob, 0);
  if (total_size < kFixedPartSize) {
    return make_error(ErrorCode::kMalformed, "multiboot2: total_size below 8", total_size);
  }
  if (total_size > blob.size()) {
    return make_error(ErrorCode::kTruncated, "multiboot2: total_size exceeds the blob", total_size);
  }
  const std::span<const uint8_t> bytes = blob.first(total_size);
  info.total_size = total_size;

  uint32_t seen = 0;
  size_t off = kFixedPartSize;
  while (true) {
    if (off == bytes.size()) {
      return make_error(ErrorCode::kMalformed, "multiboot2: no end tag before total_size", off);
    }
    if (bytes.size() - off < kTagHeaderSize) {
      return make_error(ErrorCode::kTruncated, "multiboot2: tag header runs past total_size", off);
    }
    const uint32_t type = load_u32(bytes, off);
    const uint32_t size = load_u32(bytes, off + 4);
    if (size < kTagHeaderSize) {
      return make_error(ErrorCode::kMalformed, "multiboot2: tag size below 8", off);
    }
    if (size > bytes.size() - off) {
      return make_error(ErrorCode::kTruncated, "multiboot2: tag runs past total_size", off);
    }
    const Tag tag{type, bytes.subspan(off, size), off};
    if (type == static_cast<uint32_t>(TagType::kEnd)) {
      // Spec 3.6.2: the terminating tag is "type 0, size 8"; anything after it is ignored.
      if (size != kTagHeaderSize) {
        return make_error(ErrorCode::kMalformed, "multiboot2: end tag size is not 8", off);
      }
      return ok();
    }
    if (type < 32 && (kSingleInstanceMask & (1u << type)) != 0) {
      if ((seen & (1u << type)) != 0) {
        return make_error(ErrorCode::kMalformed, "multiboot2: duplicate single-instance tag", off);
      }
      seen |= 1u << type;
    }
    TRY(parse_tag(tag, info));
    // Next tag starts at the next 8-byte boundary (spec 3.6.2); size <= remaining so no overflow.
    const size_t end = off + size;
    const size_t padded = (end + (kTagAlign - 1)) & ~(kTagAlign - 1);
    if (padded > bytes.size()) {
      return make_error(ErrorCode::kMalformed,
                        "multiboot2: tag padding runs past total_size (misaligned tag)", off);
    }
    off = padded;
  }
}

Result<BootInfo> parse(std::span<const uint8_t> blob) {
  BootInfo info;
  TRY(parse_into(blob, info));
  return info;
}

}  // namespace lantern::multiboot2
