#include "guest/loader/multiboot1.h"

namespace lantern::guest::multiboot1 {
namespace {

uint16_t le16(std::span<const uint8_t> b, uint64_t off) {
  return static_cast<uint16_t>(b[off] | (b[off + 1] << 8));
}
uint32_t le32(std::span<const uint8_t> b, uint64_t off) {
  return uint32_t{b[off]} | (uint32_t{b[off + 1]} << 8) | (uint32_t{b[off + 2]} << 16) | (uint32_t{b[off + 3]} << 24);
}
uint64_t le64(std::span<const uint8_t> b, uint64_t off) {
  return uint64_t{le32(b, off)} | (uint64_t{le32(b, off + 4)} << 32);
}

constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
constexpr uint64_t k4GiB = 1ull << 32;

// ELF identification and header fields (TIS ELF 1.2 Book I Figure 1-3 / ELF-64 1.5 Table 2).
constexpr uint8_t kElfMagic[4] = {0x7f, 'E', 'L', 'F'};
constexpr size_t kEiClass = 4, kEiData = 5;
constexpr uint8_t kElfClass32 = 1, kElfClass64 = 2, kElfDataLsb = 1;
constexpr uint16_t kElfTypeExec = 2;              // ET_EXEC
constexpr uint16_t kMachine386 = 3, kMachineX8664 = 62;  // EM_386, EM_X86_64
constexpr uint32_t kProgramLoad = 1;              // PT_LOAD
constexpr size_t kElf32HeaderBytes = 52, kElf64HeaderBytes = 64;
constexpr size_t kElf32PhdrBytes = 32, kElf64PhdrBytes = 56;

struct Segment {
  uint64_t file_offset = 0, file_size = 0, vaddr = 0, paddr = 0, mem_size = 0;
};

bool is_elf(std::span<const uint8_t> image) {
  if (image.size() < 4) return false;
  for (size_t i = 0; i < 4; ++i)
    if (image[i] != kElfMagic[i]) return false;
  return true;
}

Result<void> place_segment(const Segment& s, std::span<const uint8_t> image, const GuestMemoryMap& map,
                           GuestMemory& memory, LoadedKernel& kernel, bool& any) {
  if (s.mem_size == 0) return ok();
  if (s.file_size > s.mem_size)
    return make_error(ErrorCode::kMalformed, "kernel segment: file size larger than memory size", s.paddr);
  if (s.file_offset > image.size() || s.file_size > image.size() - s.file_offset)
    return make_error(ErrorCode::kTruncated, "kernel segment data runs past the end of the image (truncated file?)", s.file_offset);
  if (s.paddr >= k4GiB || s.mem_size > k4GiB - s.paddr)
    return make_error(ErrorCode::kInvalidArgument, "kernel segment above 4 GiB", s.paddr);
  if (!map.is_ram(s.paddr, s.mem_size)) {
    if (s.paddr + s.mem_size > map.ram_bytes())
      return make_error(ErrorCode::kInvalidArgument, "kernel segment outside guest RAM (raise mem=)", s.paddr);
    return make_error(ErrorCode::kInvalidArgument, "kernel segment over a reserved window of the guest memory map (640 KiB-1 MiB hole)", s.paddr);
  }
  TRY(memory.write(s.paddr, image.subspan(s.file_offset, s.file_size)));
  TRY(memory.fill(s.paddr + s.file_size, 0, s.mem_size - s.file_size));
  if (!any || s.paddr < kernel.lowest) kernel.lowest = s.paddr;
  if (!any || s.paddr + s.mem_size > kernel.end) kernel.end = s.paddr + s.mem_size;
  any = true;
  return ok();
}

Result<LoadedKernel> load_elf(std::span<const uint8_t> image, const GuestMemoryMap& map, GuestMemory& memory) {
  if (image.size() < kEiData + 1) return make_error(ErrorCode::kTruncated, "ELF header truncated", image.size());
  const bool is64 = image[kEiClass] == kElfClass64;
  if (!is64 && image[kEiClass] != kElfClass32) return make_error(ErrorCode::kMalformed, "ELF class is neither 32- nor 64-bit", image[kEiClass]);
  if (image[kEiData] != kElfDataLsb) return make_error(ErrorCode::kMalformed, "ELF image is not little-endian", image[kEiData]);
  if (image.size() < (is64 ? kElf64HeaderBytes : kElf32HeaderBytes))
    return make_error(ErrorCode::kTruncated, "ELF header truncated", image.size());
  const uint16_t type = le16(image, 16);
  const uint16_t machine = le16(image, 18);
  if (type != kElfTypeExec) return make_error(ErrorCode::kMalformed, "ELF image is not an executable (ET_EXEC)", type);
  if (machine != (is64 ? kMachineX8664 : kMachine386))
    return make_error(ErrorCode::kMalformed, "ELF machine is not x86 (EM_386 / EM_X86_64)", machine);

  uint64_t entry = 0, phoff = 0;
  uint16_t phentsize = 0, phnum = 0;
  if (is64) {
    entry = le64(image, 24);
    phoff = le64(image, 32);
    phentsize = le16(image, 54);
    phnum = le16(image, 56);
  } else {
    entry = le32(image, 24);
    phoff = le32(image, 28);
    phentsize = le16(image, 42);
    phnum = le16(image, 44);
  }
  const size_t min_phent = is64 ? kElf64PhdrBytes : kElf32PhdrBytes;
  if (phnum == 0) return make_error(ErrorCode::kMalformed, "ELF image has no program headers");
  if (phentsize < min_phent) return make_error(ErrorCode::kMalformed, "ELF program header entries too small", phentsize);
  if (phoff > image.size() || uint64_t{phnum} * phentsize > image.size() - phoff)
    return make_error(ErrorCode::kTruncated, "ELF program headers run past the end of the image (truncated file?)", phoff);

  LoadedKernel kernel;
  kernel.format = is64 ? KernelFormat::kElf64 : KernelFormat::kElf32;
  bool any = false;
  bool entry_translated = false;
  uint64_t physical_entry = entry;
  for (uint16_t i = 0; i < phnum; ++i) {
    const uint64_t p = phoff + uint64_t{i} * phentsize;
    Segment s;
    uint32_t ptype = le32(image, p);
    if (is64) {
      s.file_offset = le64(image, p + 8);
      s.vaddr = le64(image, p + 16);
      s.paddr = le64(image, p + 24);
      s.file_size = le64(image, p + 32);
      s.mem_size = le64(image, p + 40);
    } else {
      s.file_offset = le32(image, p + 4);
      s.vaddr = le32(image, p + 8);
      s.paddr = le32(image, p + 12);
      s.file_size = le32(image, p + 16);
      s.mem_size = le32(image, p + 20);
    }
    if (ptype != kProgramLoad) continue;
    TRY(place_segment(s, image, map, memory, kernel, any));
    // GRUB 2 (loader/multiboot_elfxx.c) enters at e_entry translated from virtual to physical
    // through the segment that holds it.
    if (!entry_translated && entry >= s.vaddr && entry - s.vaddr < s.mem_size) {
      physical_entry = entry - s.vaddr + s.paddr;
      entry_translated = true;
    }
  }
  if (!any) return make_error(ErrorCode::kMalformed, "ELF image has no loadable (PT_LOAD) segment");
  if (physical_entry >= map.ram_bytes())
    return make_error(ErrorCode::kInvalidArgument, "kernel entry point outside guest RAM", physical_entry);
  kernel.entry = static_cast<uint32_t>(physical_entry);
  return kernel;
}

Result<LoadedKernel> load_aout_kludge(const Header& h, std::span<const uint8_t> image, const GuestMemoryMap& map,
                                      GuestMemory& memory) {
  // MB 3.1.4: the text starts at file offset header_offset - (header_addr - load_addr).
  if (h.load_addr > h.header_addr)
    return make_error(ErrorCode::kMalformed, "multiboot address fields: load_addr above header_addr", h.load_addr);
  if (h.header_addr - h.load_addr > h.offset)
    return make_error(ErrorCode::kMalformed, "multiboot address fields: header_addr - load_addr reaches before the file start", h.header_addr);
  Segment s;
  s.file_offset = h.offset - (h.header_addr - h.load_addr);
  s.paddr = s.vaddr = h.load_addr;
  if (h.load_end_addr == 0) {
    s.file_size = image.size() - s.file_offset;  // "the text and data segments occupy the whole OS image file"
  } else {
    if (h.load_end_addr < h.load_addr)
      return make_error(ErrorCode::kMalformed, "multiboot address fields: load_end_addr below load_addr", h.load_end_addr);
    s.file_size = h.load_end_addr - h.load_addr;
    if (s.file_size > image.size() - s.file_offset)
      return make_error(ErrorCode::kTruncated, "image shorter than load_end_addr - load_addr (truncated file?)", image.size());
  }
  s.mem_size = s.file_size;
  if (h.bss_end_addr != 0) {
    if (h.bss_end_addr < h.load_addr + s.file_size)
      return make_error(ErrorCode::kMalformed, "multiboot address fields: bss_end_addr below the end of the loaded data", h.bss_end_addr);
    s.mem_size = h.bss_end_addr - h.load_addr;
  }
  LoadedKernel kernel;
  kernel.format = KernelFormat::kAoutKludge;
  bool any = false;
  TRY(place_segment(s, image, map, memory, kernel, any));
  if (!any) return make_error(ErrorCode::kMalformed, "multiboot address fields load nothing");
  if (h.entry_addr >= map.ram_bytes())
    return make_error(ErrorCode::kInvalidArgument, "kernel entry point outside guest RAM", h.entry_addr);
  kernel.entry = h.entry_addr;
  return kernel;
}

Result<void> put32(GuestMemory& memory, uint64_t gpa, uint32_t value) {
  const uint8_t b[4] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value >> 16),
                        static_cast<uint8_t>(value >> 24)};
  return memory.write(gpa, b);
}
Result<void> put64(GuestMemory& memory, uint64_t gpa, uint64_t value) {
  TRY(put32(memory, gpa, static_cast<uint32_t>(value)));
  return put32(memory, gpa + 4, static_cast<uint32_t>(value >> 32));
}
Result<void> put_string(GuestMemory& memory, uint64_t gpa, std::string_view s) {
  TRY(memory.write(gpa, {reinterpret_cast<const uint8_t*>(s.data()), s.size()}));
  return memory.fill(gpa + s.size(), 0, 1);
}

}  // namespace

Result<Header> find_header(std::span<const uint8_t> image) {
  const size_t limit = image.size() < kSearchBytes ? image.size() : kSearchBytes;
  bool magic_seen = false;
  for (size_t off = 0; off + 12 <= limit; off += 4) {
    if (le32(image, off) != kHeaderMagic) continue;
    magic_seen = true;
    const uint32_t flags = le32(image, off + 4);
    const uint32_t checksum = le32(image, off + 8);
    if (static_cast<uint32_t>(kHeaderMagic + flags + checksum) != 0) continue;
    Header h;
    h.offset = static_cast<uint32_t>(off);
    h.flags = flags;
    if (flags & kFlagAddressFields) {
      if (off + 32 > image.size())
        return make_error(ErrorCode::kTruncated, "multiboot header address fields run past the end of the image", off);
      h.has_address_fields = true;
      h.header_addr = le32(image, off + 12);
      h.load_addr = le32(image, off + 16);
      h.load_end_addr = le32(image, off + 20);
      h.bss_end_addr = le32(image, off + 24);
      h.entry_addr = le32(image, off + 28);
    }
    return h;
  }
  if (magic_seen) return make_error(ErrorCode::kBadChecksum, "multiboot header checksum does not sum to zero (broken header)");
  return make_error(ErrorCode::kNotFound, "no multiboot header in the first 8192 bytes (not a Multiboot v1 kernel)");
}

Result<LoadedKernel> load_kernel(std::span<const uint8_t> image, const GuestMemoryMap& map, GuestMemory& memory) {
  if (image.empty()) return make_error(ErrorCode::kInvalidArgument, "kernel module is empty (zero length)");
  const Header h = TRY(find_header(image));
  const uint32_t unsupported = h.flags & kRequirementMask & ~kSupportedRequirements;
  if (unsupported != 0)
    return make_error(ErrorCode::kUnsupported, "multiboot header requires a video mode or another feature Lantern does not provide (flag bits 2-15)", unsupported);
  if (map.ram_bytes() > memory.size())
    return make_error(ErrorCode::kInvalidArgument, "guest memory map larger than the guest RAM given to the loader", map.ram_bytes());
  // MB 3.1.2: with flag bit 16 the address fields win over the executable's own headers.
  LoadedKernel kernel;
  if (h.has_address_fields)
    kernel = TRY(load_aout_kludge(h, image, map, memory));
  else if (is_elf(image))
    kernel = TRY(load_elf(image, map, memory));
  else
    return make_error(ErrorCode::kMalformed, "kernel is neither ELF nor has multiboot address fields (flag bit 16)");
  kernel.header_flags = h.flags;
  return kernel;
}

EntryState entry_state(uint32_t entry, uint32_t info_address) {
  EntryState s;
  s.rip = entry;
  s.rax = kBootloaderMagic;
  s.rbx = info_address;
  s.rflags = kRflagsReserved1;  // IF and VM clear (MB 3.2)
  s.cr0 = kCr0Pe | kCr0Et;      // protected mode, paging off
  SegmentState code;
  code.selector = 0x08;
  code.limit = 0xffffffff;
  code.type = kSegmentTypeCodeExecuteReadAccessed;
  SegmentState data = code;
  data.selector = 0x10;
  data.type = kSegmentTypeDataReadWriteAccessed;
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  set_minimal_tr_and_ldtr(s);  // MB 3.2 defines neither a TSS nor an LDT
  // GDTR and IDTR are undefined at entry (MB 3.2); an empty table makes that explicit.
  return s;
}

Result<BootImage> load(const BootRequest& request, const GuestMemoryMap& map, GuestMemory& memory) {
  if (request.modules.size() > kMaxModules)
    return make_error(ErrorCode::kInvalidArgument, "more than 16 multiboot modules", request.modules.size());
  for (size_t i = 0; i < request.modules.size(); ++i) {
    if (request.modules[i].bytes.empty())
      return make_error(ErrorCode::kInvalidArgument, "a multiboot module is empty (zero length)", i);
  }
  BootImage boot;
  boot.kernel = TRY(load_kernel(request.kernel, map, memory));

  // Modules: page-aligned (MB 3.1.3 flag bit 0 is always honoured), above the kernel.
  uint64_t cursor = align_up(boot.kernel.end, kPageSize);
  for (size_t i = 0; i < request.modules.size(); ++i) {
    const std::span<const uint8_t> bytes = request.modules[i].bytes;
    auto start = map.find_ram(cursor, bytes.size(), kPageSize);
    if (!start) return make_error(ErrorCode::kOutOfMemory, "guest RAM too small for the multiboot modules (raise mem=)", i);
    TRY(memory.write(*start, bytes));
    boot.modules[i] = PlacedModule{*start, *start + bytes.size()};
    cursor = *start + bytes.size();
  }
  boot.module_count = request.modules.size();

  // The information block: structure, memory map, module list, then the strings.
  const std::span<const MemoryRange> ranges = map.ranges();
  const uint64_t mmap_offset = kInfoBytes;
  const uint64_t mods_offset = mmap_offset + ranges.size() * kMmapEntryBytes;
  uint64_t strings_offset = mods_offset + request.modules.size() * kModuleEntryBytes;
  uint64_t size = strings_offset + request.cmdline.size() + 1 + request.loader_name.size() + 1;
  for (const ModuleInput& m : request.modules) size += m.string.size() + 1;
  auto info = map.find_ram(align_up(cursor, kPageSize), size, kPageSize);
  if (!info) return make_error(ErrorCode::kOutOfMemory, "guest RAM too small for the multiboot information (raise mem=)", size);
  const uint64_t base = *info;
  TRY(memory.fill(base, 0, size));

  uint64_t str = base + strings_offset;
  const uint64_t cmdline_at = str;
  TRY(put_string(memory, str, request.cmdline));
  str += request.cmdline.size() + 1;
  const uint64_t loader_name_at = str;
  TRY(put_string(memory, str, request.loader_name));
  str += request.loader_name.size() + 1;

  for (size_t i = 0; i < request.modules.size(); ++i) {
    const uint64_t entry = base + mods_offset + i * kModuleEntryBytes;
    TRY(put32(memory, entry + 0, static_cast<uint32_t>(boot.modules[i].start)));
    TRY(put32(memory, entry + 4, static_cast<uint32_t>(boot.modules[i].end)));
    TRY(put32(memory, entry + 8, static_cast<uint32_t>(str)));
    TRY(put_string(memory, str, request.modules[i].string));
    str += request.modules[i].string.size() + 1;
  }
  for (size_t i = 0; i < ranges.size(); ++i) {
    // MB 3.3: `size` sits at offset -4 of each entry and does not count itself.
    const uint64_t entry = base + mmap_offset + i * kMmapEntryBytes;
    TRY(put32(memory, entry, kMmapEntryBytes - 4));
    TRY(put64(memory, entry + 4, ranges[i].base));
    TRY(put64(memory, entry + 12, ranges[i].length));
    TRY(put32(memory, entry + 20, static_cast<uint32_t>(ranges[i].type)));
  }
  TRY(put32(memory, base + kInfoOffsetFlags, kInfoMemory | kInfoCmdline | kInfoModules | kInfoMemoryMap | kInfoLoaderName));
  TRY(put32(memory, base + kInfoOffsetMemLower, map.mem_lower_kib()));
  TRY(put32(memory, base + kInfoOffsetMemUpper, map.mem_upper_kib()));
  TRY(put32(memory, base + kInfoOffsetCmdline, static_cast<uint32_t>(cmdline_at)));
  TRY(put32(memory, base + kInfoOffsetModsCount, static_cast<uint32_t>(request.modules.size())));
  TRY(put32(memory, base + kInfoOffsetModsAddr, static_cast<uint32_t>(base + mods_offset)));
  TRY(put32(memory, base + kInfoOffsetMmapLength, static_cast<uint32_t>(ranges.size() * kMmapEntryBytes)));
  TRY(put32(memory, base + kInfoOffsetMmapAddr, static_cast<uint32_t>(base + mmap_offset)));
  TRY(put32(memory, base + kInfoOffsetLoaderName, static_cast<uint32_t>(loader_name_at)));

  boot.info_address = base;
  boot.info_end = base + size;
  boot.entry = entry_state(boot.kernel.entry, static_cast<uint32_t>(base));
  return boot;
}

}  // namespace lantern::guest::multiboot1
