#include "guest/loader/bzimage.h"

namespace lantern::guest::bzimage {
namespace {

uint16_t le16(std::span<const uint8_t> b, uint64_t off) {
  return static_cast<uint16_t>(b[off] | (b[off + 1] << 8));
}
uint32_t le32(std::span<const uint8_t> b, uint64_t off) {
  return uint32_t{b[off]} | (uint32_t{b[off + 1]} << 8) | (uint32_t{b[off + 2]} << 16) |
         (uint32_t{b[off + 3]} << 24);
}
uint64_t le64(std::span<const uint8_t> b, uint64_t off) {
  return uint64_t{le32(b, off)} | (uint64_t{le32(b, off + 4)} << 32);
}

constexpr uint64_t align_down(uint64_t v, uint64_t a) {
  return v & ~(a - 1);
}
constexpr bool is_power_of_two(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}
constexpr uint64_t k4GiB = 1ull << 32;
constexpr uint64_t k2MiB = 2ull << 20;

// Descriptors of the boot GDT (SDM Vol. 3A 3.4.5 "Segment Descriptors", Figure 3-8): base 0,
// limit 0xFFFFF with G = 1 (4 GiB), P = 1, DPL 0, S = 1.
// __BOOT_CS: type 0xB (execute/read, accessed), L = 1, D = 0 (64-bit code, SDM 5.2.1).
constexpr uint64_t kGdtBootCs = 0x00af9b000000ffffull;
// __BOOT_DS: type 0x3 (read/write, accessed), D/B = 1.
constexpr uint64_t kGdtBootDs = 0x00cf93000000ffffull;

// Paging-structure entry bits (SDM Vol. 3A 4.5 "4-Level Paging", Tables 4-15, 4-16, 4-18).
constexpr uint64_t kPagePresent = 1ull << 0;
constexpr uint64_t kPageWritable = 1ull << 1;
constexpr uint64_t kPageSize2MiB = 1ull << 7;  // PS in a page-directory entry
constexpr uint64_t kPageDirectories = 4;       // 4 x 1 GiB = the first 4 GiB
constexpr uint64_t kEntriesPerTable = 512;

// The header field at `off` (`width` bytes), or 0 when the header ends before it.
uint64_t header_field(std::span<const uint8_t> image, uint32_t header_end, uint32_t off, uint32_t width) {
  if (off + width > header_end) return 0;
  switch (width) {
    case 1: return image[off];
    case 2: return le16(image, off);
    case 4: return le32(image, off);
    default: return le64(image, off);
  }
}

Result<void> put8(GuestMemory& memory, uint64_t gpa, uint8_t value) {
  const uint8_t b[1] = {value};
  return memory.write(gpa, b);
}
Result<void> put16(GuestMemory& memory, uint64_t gpa, uint16_t value) {
  const uint8_t b[2] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8)};
  return memory.write(gpa, b);
}
Result<void> put32(GuestMemory& memory, uint64_t gpa, uint32_t value) {
  const uint8_t b[4] = {static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8),
                        static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24)};
  return memory.write(gpa, b);
}
Result<void> put64(GuestMemory& memory, uint64_t gpa, uint64_t value) {
  TRY(put32(memory, gpa, static_cast<uint32_t>(value)));
  return put32(memory, gpa + 4, static_cast<uint32_t>(value >> 32));
}

// The protected-mode kernel's load address: pref_address (or 1 MiB, the traditional
// code32_start, when the header has none); a relocatable kernel goes to the lowest address at
// or above it, aligned to kernel_alignment (2 MiB at least), with init_size bytes of RAM.
Result<uint64_t> place_kernel(const SetupHeader& h, const GuestMemoryMap& map) {
  const uint64_t floor = h.pref_address != 0 ? h.pref_address : GuestMemoryMap::kHighRamStart;
  if (floor >= map.ram_bytes())
    return make_error(ErrorCode::kOutOfMemory, "bzImage: pref_address lies beyond guest RAM (raise mem=)",
                      floor);
  if (h.relocatable_kernel) {
    const uint64_t align = h.kernel_alignment > k2MiB ? h.kernel_alignment : k2MiB;
    auto start = map.find_ram(floor, h.init_size, align);
    if (!start)
      return make_error(
          ErrorCode::kOutOfMemory,
          "bzImage: guest RAM too small for the kernel's init_size above pref_address (raise mem=)",
          h.init_size);
    return *start;
  }
  // A fixed load address below 1 MiB would land on the boot structures in low memory.
  if (floor < GuestMemoryMap::kHighRamStart)
    return make_error(ErrorCode::kUnsupported,
                      "bzImage: non-relocatable kernel with a load address below 1 MiB", floor);
  if (!map.is_ram(floor, h.init_size))
    return make_error(
        ErrorCode::kOutOfMemory,
        "bzImage: guest RAM too small for the kernel's init_size at its fixed load address (raise mem=)",
        h.init_size);
  return floor;
}

// The highest page-aligned address where `size` bytes of RAM fit at or above `lowest` and below
// `limit` (boot.rst "Details of Header Fields": initrd_addr_max is the highest address the
// initrd's last byte may occupy).
Result<uint64_t> place_initrd(uint64_t size, uint64_t lowest, uint64_t limit, const GuestMemoryMap& map) {
  bool found = false;
  uint64_t best = 0;
  for (const MemoryRange& r : map.ranges()) {
    if (r.type != MemoryRangeType::kRam) continue;
    const uint64_t top = r.end() < limit ? r.end() : limit;
    if (top < size) continue;
    const uint64_t start = align_down(top - size, kPageSize);
    if (start < r.base || start < lowest) continue;
    if (!found || start > best) best = start;
    found = true;
  }
  if (!found)
    return make_error(
        ErrorCode::kOutOfMemory,
        "bzImage: initrd does not fit between the kernel's end and initrd_addr_max (raise mem=)", size);
  return best;
}

Result<void> write_gdt(GuestMemory& memory) {
  TRY(memory.fill(kGdtAddress, 0, kGdtEntries * 8));  // 0x00 and 0x08 stay null
  TRY(put64(memory, kGdtAddress + kBootCsSelector, kGdtBootCs));
  return put64(memory, kGdtAddress + kBootDsSelector, kGdtBootDs);
}

// PML4[0] -> PDPT, PDPT[0..3] -> four page directories of 2 MiB pages: 0-4 GiB identity-mapped,
// present and writable.
Result<void> write_page_tables(GuestMemory& memory) {
  TRY(memory.fill(kPml4Address, 0, kPageSize));
  TRY(memory.fill(kPdptAddress, 0, kPageSize));
  TRY(put64(memory, kPml4Address, kPdptAddress | kPagePresent | kPageWritable));
  for (uint64_t d = 0; d < kPageDirectories; ++d) {
    const uint64_t directory = kPageDirectoriesAddress + d * kPageSize;
    TRY(put64(memory, kPdptAddress + d * 8, directory | kPagePresent | kPageWritable));
    // One directory at a time, 64 entries per write.
    constexpr uint64_t kChunk = 64;
    uint8_t chunk[kChunk * 8];
    for (uint64_t first = 0; first < kEntriesPerTable; first += kChunk) {
      for (uint64_t i = 0; i < kChunk; ++i) {
        const uint64_t page = (d * kEntriesPerTable + first + i) * k2MiB;
        const uint64_t entry = page | kPagePresent | kPageWritable | kPageSize2MiB;
        for (unsigned b = 0; b < 8; ++b) chunk[i * 8 + b] = static_cast<uint8_t>(entry >> (8 * b));
      }
      TRY(memory.write(directory + first * 8, chunk));
    }
  }
  return ok();
}

Result<void> write_zero_page(const SetupHeader& h, std::span<const uint8_t> image, const BootImage& boot,
                             const GuestMemoryMap& map, GuestMemory& memory) {
  const uint64_t zp = kZeroPageAddress;
  // boot.rst "64-bit Boot Protocol": zero the boot_params, then copy the setup header into it.
  TRY(memory.fill(zp, 0, kZeroPageBytes));
  const uint32_t header_end = h.header_end < kZeroPageHeaderLimit ? h.header_end : kZeroPageHeaderLimit;
  TRY(memory.write(zp + kOffsetSetupSects, image.subspan(kOffsetSetupSects, header_end - kOffsetSetupSects)));

  // The fields a boot loader writes (boot.rst "Details of Header Fields", "write" / "modify").
  TRY(put8(memory, zp + kOffsetTypeOfLoader, kTypeOfLoaderUndefined));
  // LOADED_HIGH kept; no heap (heap_end_ptr is for the real-mode setup code this loader skips),
  // no QUIET_FLAG, no KEEP_SEGMENTS; kernel-internal bits as the image has them.
  const uint8_t loadflags =
      static_cast<uint8_t>((h.loadflags & ~(kCanUseHeap | kQuietFlag | kKeepSegments)) | kLoadedHigh);
  TRY(put8(memory, zp + kOffsetLoadflags, loadflags));
  TRY(put16(memory, zp + kOffsetHeapEndPtr, 0));
  TRY(put32(memory, zp + kOffsetCode32Start, static_cast<uint32_t>(boot.kernel_address)));
  TRY(put32(memory, zp + kOffsetRamdiskImage, static_cast<uint32_t>(boot.initrd_address)));
  TRY(put32(memory, zp + kOffsetRamdiskSize, static_cast<uint32_t>(boot.initrd_size)));
  TRY(put32(memory, zp + kOffsetCmdLinePtr, static_cast<uint32_t>(boot.cmdline_address)));
  // zero-page.rst: the high halves of the 64-bit initrd and command-line addresses.
  TRY(put32(memory, zp + kZeroPageExtRamdiskImage, static_cast<uint32_t>(boot.initrd_address >> 32)));
  TRY(put32(memory, zp + kZeroPageExtRamdiskSize, static_cast<uint32_t>(boot.initrd_size >> 32)));
  TRY(put32(memory, zp + kZeroPageExtCmdLinePtr, static_cast<uint32_t>(boot.cmdline_address >> 32)));

  // zero-page.rst: e820_entries and e820_table.
  uint8_t e820[GuestMemoryMap::kMaxRanges * GuestMemoryMap::kE820EntryBytes];
  const size_t entries = TRY(map.write_e820(e820));
  static_assert(GuestMemoryMap::kMaxRanges <= kZeroPageE820MaxEntries,
                "the zero page holds 128 e820 entries");
  TRY(memory.write(zp + kZeroPageE820Table,
                   std::span<const uint8_t>(e820, entries * GuestMemoryMap::kE820EntryBytes)));
  return put8(memory, zp + kZeroPageE820Entries, static_cast<uint8_t>(entries));
}

}  // namespace

bool looks_like_bzimage(std::span<const uint8_t> image) {
  if (image.size() < kOffsetHeaderMagic + 4) return false;
  return le16(image, kOffsetBootFlag) == kBootFlag && le32(image, kOffsetHeaderMagic) == kHeaderMagic;
}

Result<SetupHeader> parse_header(std::span<const uint8_t> image) {
  if (image.size() < kOffsetBootFlag + 2)
    return make_error(ErrorCode::kTruncated,
                      "bzImage: image shorter than the 512-byte boot sector (truncated file?)", image.size());
  if (le16(image, kOffsetBootFlag) != kBootFlag)
    return make_error(ErrorCode::kNotFound,
                      "bzImage: no boot sector signature 0xAA55 at 0x1FE (not a Linux kernel image)",
                      le16(image, kOffsetBootFlag));
  if (image.size() < kOffsetVersion + 2)
    return make_error(ErrorCode::kTruncated, "bzImage: image ends inside the setup header (truncated file?)",
                      image.size());
  if (le32(image, kOffsetHeaderMagic) != kHeaderMagic)
    return make_error(
        ErrorCode::kNotFound,
        "bzImage: no \"HdrS\" magic at 0x202 (not a bzImage, or a kernel older than protocol 2.00)",
        le32(image, kOffsetHeaderMagic));

  SetupHeader h;
  // boot.rst "64-bit Boot Protocol": the header ends at 0x202 + the byte at 0x201 (the jump's
  // displacement lands right after it).
  h.header_end = kOffsetHeaderMagic + image[kOffsetJump + 1];
  if (image.size() < h.header_end)
    return make_error(ErrorCode::kTruncated, "bzImage: image ends inside the setup header (truncated file?)",
                      h.header_end);
  h.version = le16(image, kOffsetVersion);
  if (h.version < kMinimumVersion)
    return make_error(ErrorCode::kUnsupported,
                      "bzImage: boot protocol older than 2.06 (detail: the version, major << 8 | minor)",
                      h.version);

  const auto field = [&](uint32_t off, uint32_t width) {
    return header_field(image, h.header_end, off, width);
  };
  h.loadflags = static_cast<uint8_t>(field(kOffsetLoadflags, 1));
  h.xloadflags = static_cast<uint16_t>(field(kOffsetXloadflags, 2));
  if ((h.loadflags & kLoadedHigh) == 0)
    return make_error(ErrorCode::kUnsupported,
                      "bzImage: loadflags LOADED_HIGH clear (a zImage loading at 0x10000 is not supported)",
                      h.loadflags);
  if ((h.xloadflags & kXlfKernel64) == 0)
    return make_error(ErrorCode::kUnsupported,
                      "bzImage: xloadflags XLF_KERNEL_64 clear (no 64-bit entry point at +0x200: a 32-bit "
                      "kernel or protocol before 2.12)",
                      h.xloadflags);

  const uint8_t setup_sects = static_cast<uint8_t>(field(kOffsetSetupSects, 1));
  h.setup_sects = setup_sects == 0 ? kDefaultSetupSects : setup_sects;
  h.syssize = static_cast<uint32_t>(field(kOffsetSyssize, 4));
  h.code32_start = static_cast<uint32_t>(field(kOffsetCode32Start, 4));
  const uint32_t initrd_addr_max = static_cast<uint32_t>(field(kOffsetInitrdAddrMax, 4));
  h.initrd_addr_max = initrd_addr_max == 0 ? kDefaultInitrdAddrMax : initrd_addr_max;
  h.kernel_alignment = static_cast<uint32_t>(field(kOffsetKernelAlignment, 4));
  h.relocatable_kernel = field(kOffsetRelocatableKernel, 1) != 0;
  const uint32_t cmdline_size = static_cast<uint32_t>(field(kOffsetCmdlineSize, 4));
  h.cmdline_size = cmdline_size == 0 ? kDefaultCmdlineSize : cmdline_size;
  h.pref_address = field(kOffsetPrefAddress, 8);
  h.init_size = static_cast<uint32_t>(field(kOffsetInitSize, 4));

  // boot.rst "Loading The Rest of The Kernel": the protected-mode kernel follows the
  // (setup_sects + 1) sectors of boot sector and setup code; syssize counts it in 16-byte units.
  h.kernel_offset = (uint64_t{h.setup_sects} + 1) * kSectorBytes;
  if (h.kernel_offset >= image.size())
    return make_error(
        ErrorCode::kTruncated,
        "bzImage: image ends before its protected-mode kernel at (setup_sects + 1) * 512 (truncated file?)",
        h.kernel_offset);
  if (h.syssize == 0)
    return make_error(ErrorCode::kMalformed, "bzImage: syssize is 0 (no protected-mode kernel)");
  const uint64_t file_bytes = image.size() - h.kernel_offset;
  const uint64_t declared_bytes = uint64_t{h.syssize} * 16;
  // syssize rounds the kernel up to a whole paragraph, so the file may hold up to 15 bytes less.
  if (file_bytes + 15 < declared_bytes)
    return make_error(ErrorCode::kTruncated,
                      "bzImage: protected-mode kernel shorter than syssize * 16 says (truncated file?)",
                      declared_bytes);
  h.kernel_bytes = file_bytes < declared_bytes ? file_bytes : declared_bytes;
  if (h.init_size < h.kernel_bytes)
    return make_error(
        ErrorCode::kMalformed,
        "bzImage: init_size smaller than the protected-mode kernel (or 0: protocol before 2.10)",
        h.init_size);
  if (h.relocatable_kernel && h.kernel_alignment != 0 && !is_power_of_two(h.kernel_alignment))
    return make_error(ErrorCode::kMalformed, "bzImage: kernel_alignment is not a power of two",
                      h.kernel_alignment);
  return h;
}

EntryState entry_state(uint64_t kernel_address, uint64_t zero_page_address) {
  EntryState s;
  s.rip = kernel_address + kEntry64Offset;
  s.rsi = zero_page_address;
  s.rsp = kStackTop;
  s.rflags = kRflagsReserved1;  // IF clear ("interrupt must be disabled")
  s.cr0 = kCr0Pe | kCr0Et | kCr0Pg;
  s.cr3 = kPml4Address;
  s.cr4 = kCr4Pae;
  s.efer = kEferLme | kEferLma;
  SegmentState code;
  code.selector = kBootCsSelector;
  code.limit = 0xffffffff;
  code.type = kSegmentTypeCodeExecuteReadAccessed;
  code.long_mode = true;
  code.default_big = false;  // L = 1 requires D = 0 (SDM Vol. 3A 5.2.1)
  SegmentState data;
  data.selector = kBootDsSelector;
  data.limit = 0xffffffff;
  data.type = kSegmentTypeDataReadWriteAccessed;
  s.cs = code;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  set_minimal_tr_and_ldtr(s);  // the protocol defines neither a TSS nor an LDT
  s.gdtr.base = kGdtAddress;
  s.gdtr.limit = static_cast<uint16_t>(kGdtEntries * 8 - 1);
  // IDTR stays empty: interrupts are disabled and the kernel loads its own IDT.
  return s;
}

Result<BootImage> load(const BootRequest& request, const GuestMemoryMap& map, GuestMemory& memory) {
  if (map.ram_bytes() > memory.size())
    return make_error(ErrorCode::kInvalidArgument,
                      "guest memory map larger than the guest RAM given to the loader", map.ram_bytes());
  BootImage boot;
  boot.header = TRY(parse_header(request.kernel));
  const SetupHeader& h = boot.header;

  // boot.rst: cmdline_size is the longest command line without its terminating NUL.
  if (request.cmdline.size() > h.cmdline_size)
    return make_error(ErrorCode::kInvalidArgument,
                      "bzImage: command line longer than the kernel's cmdline_size", h.cmdline_size);
  if (request.cmdline.size() + 1 > kCmdlineAreaEnd - kCmdlineAddress)
    return make_error(ErrorCode::kInvalidArgument,
                      "bzImage: command line longer than its room in low memory (0xA000-0x9EFFF)",
                      request.cmdline.size());
  if (!map.is_ram(kGdtAddress, kCmdlineAreaEnd - kGdtAddress))
    return make_error(ErrorCode::kInvalidArgument,
                      "bzImage: no guest RAM at 0x1000-0x9EFFF for the boot structures", kGdtAddress);

  boot.kernel_address = TRY(place_kernel(h, map));
  boot.kernel_end = boot.kernel_address + h.init_size;
  TRY(memory.write(boot.kernel_address, request.kernel.subspan(h.kernel_offset, h.kernel_bytes)));

  if (!request.initrd.empty()) {
    // The initrd's last byte at initrd_addr_max at most, inside RAM and below 4 GiB.
    uint64_t limit = uint64_t{h.initrd_addr_max} + 1;
    if (map.ram_bytes() < limit) limit = map.ram_bytes();
    if (k4GiB < limit) limit = k4GiB;
    boot.initrd_address = TRY(place_initrd(request.initrd.size(), boot.kernel_end, limit, map));
    boot.initrd_size = request.initrd.size();
    TRY(memory.write(boot.initrd_address, request.initrd));
  }

  boot.cmdline_address = kCmdlineAddress;
  TRY(memory.write(kCmdlineAddress,
                   {reinterpret_cast<const uint8_t*>(request.cmdline.data()), request.cmdline.size()}));
  TRY(memory.fill(kCmdlineAddress + request.cmdline.size(), 0, 1));
  boot.gdt_address = kGdtAddress;
  TRY(write_gdt(memory));
  boot.page_tables_address = kPml4Address;
  TRY(write_page_tables(memory));
  boot.zero_page_address = kZeroPageAddress;
  TRY(write_zero_page(h, request.kernel, boot, map, memory));

  boot.entry = entry_state(boot.kernel_address, kZeroPageAddress);
  return boot;
}

std::string with_tsc_early_khz(std::string_view cmdline, uint64_t tsc_khz) {
  constexpr std::string_view kKey = "tsc_early_khz=";
  for (size_t at = cmdline.find(kKey); at != std::string_view::npos; at = cmdline.find(kKey, at + 1)) {
    if (at == 0 || cmdline[at - 1] == ' ') return std::string(cmdline);  // the user's own value wins
  }
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + tsc_khz % 10);
    tsc_khz /= 10;
  } while (tsc_khz != 0);
  std::string out(cmdline);
  if (!out.empty()) out += ' ';
  out += kKey;
  while (n != 0) out += digits[--n];
  return out;
}

}  // namespace lantern::guest::bzimage
