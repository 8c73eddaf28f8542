// Fuzz target: the Linux bzImage loader (guest/loader/bzimage.h), as `--vm kernel=` reaches it
// with any file a user names: the setup header checks, kernel and initrd placement, the zero
// page, the command line, the GDT and the page tables, into a guest of 4-64 MiB.
//
// The input is the kernel image. The guest's RAM size, an initrd (a slice of the input, or none)
// and the command line (sometimes longer than 255 bytes) are derived from the input
// (InputDerivedChoices). Invariants:
//   - looks_like_bzimage(), parse_header() and load() never crash and never read outside the
//     image (ASan);
//   - every byte the loader writes lies in RAM of the guest memory map (never the 640 KiB-1 MiB
//     hole, the APIC windows or beyond RAM) and, below 1 MiB, under 0x9F000; checked at each write;
//   - after a successful load: the image looks like a bzImage and parse_header() agrees with the
//     header the load used; the kernel sits at or above 1 MiB (a relocatable one 2 MiB-aligned at
//     or above pref_address) with init_size bytes of RAM and holds the protected-mode part; the
//     initrd (if any) is page-aligned, above the kernel's end, below initrd_addr_max, in RAM and
//     holds its bytes; the zero page holds the image's setup header outside the fields the loader
//     writes, type_of_loader 0xFF, cmd_line_ptr at the NUL-terminated command line, the ramdisk
//     fields and the e820 table; the entry state is the 64-bit protocol's (RIP = kernel + 0x200,
//     RSI = the zero page, PE/PG, LME/LMA, PAE, 64-bit CS 0x10, data 0x18, IF clear);
//   - a failed load carries a message.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "guest/loader/bzimage.h"
#include "guest/loader/guest_memory.h"
#include "guest/loader/memory_map.h"
#include "tests/fuzz/fuzz_check.h"

namespace lantern::guest {
namespace {

using namespace bzimage;

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint8_t kUntouched = 0xaa;

// Guest RAM that checks every write against the memory map before it lands and remembers where
// it wrote, so that the next run starts from untouched RAM without refilling 64 MiB.
class CheckedMemory final : public GuestMemory {
 public:
  CheckedMemory(std::span<uint8_t> ram, const GuestMemoryMap& map, std::vector<MemoryRange>& written)
      : inner_(ram), map_(map), written_(written) {}
  uint64_t size() const override { return inner_.size(); }
  Result<void> write(uint64_t gpa, std::span<const uint8_t> bytes) override {
    check(gpa, bytes.size());
    return inner_.write(gpa, bytes);
  }
  Result<void> read(uint64_t gpa, std::span<uint8_t> out) const override { return inner_.read(gpa, out); }
  Result<void> fill(uint64_t gpa, uint8_t value, uint64_t length) override {
    check(gpa, length);
    return inner_.fill(gpa, value, length);
  }

 private:
  void check(uint64_t gpa, uint64_t length) {
    if (length == 0) return;
    FUZZ_CHECK(map_.is_ram(gpa, length), "a loader write outside guest RAM");
    FUZZ_CHECK(gpa >= GuestMemoryMap::kHighRamStart || gpa + length <= kCmdlineAreaEnd,
               "a loader write at or above 0x9F000 in low memory");
    written_.push_back(MemoryRange{gpa, length, MemoryRangeType::kRam});
  }
  ByteSpanGuestMemory inner_;
  const GuestMemoryMap& map_;
  std::vector<MemoryRange>& written_;
};

uint8_t get8(std::span<const uint8_t> ram, uint64_t at) {
  FUZZ_CHECK(at < ram.size(), "a zero-page field outside RAM");
  return ram[at];
}
uint32_t get32(std::span<const uint8_t> ram, uint64_t at) {
  FUZZ_CHECK(at + 4 <= ram.size(), "a zero-page field outside RAM");
  uint32_t v = 0;
  std::memcpy(&v, ram.data() + at, 4);
  return v;
}

// Offsets of the setup header the loader writes (boot.rst "Details of Header Fields").
bool written_by_loader(uint32_t off) {
  return off == kOffsetTypeOfLoader || off == kOffsetLoadflags ||
         (off >= kOffsetCode32Start && off < kOffsetCode32Start + 4) ||
         (off >= kOffsetRamdiskImage && off < kOffsetRamdiskSize + 4) ||
         (off >= kOffsetHeapEndPtr && off < kOffsetHeapEndPtr + 2) ||
         (off >= kOffsetCmdLinePtr && off < kOffsetCmdLinePtr + 4);
}

void check_boot(const BootImage& b, std::span<const uint8_t> image, std::span<const uint8_t> initrd,
                const std::string& cmdline, const GuestMemoryMap& map, std::span<const uint8_t> ram) {
  FUZZ_CHECK(looks_like_bzimage(image), "loaded without the bzImage signatures");
  const Result<SetupHeader> parsed = parse_header(image);
  FUZZ_CHECK(parsed.has_value(), "loaded an image parse_header() refuses");
  const SetupHeader& h = b.header;
  FUZZ_CHECK(parsed->version == h.version && parsed->init_size == h.init_size &&
                 parsed->kernel_offset == h.kernel_offset && parsed->kernel_bytes == h.kernel_bytes,
             "parse_header() disagrees with load()");
  FUZZ_CHECK(
      h.version >= kMinimumVersion && (h.xloadflags & kXlfKernel64) != 0 && (h.loadflags & kLoadedHigh) != 0,
      "loaded a header the checks should refuse");
  FUZZ_CHECK(h.kernel_bytes > 0 && h.kernel_bytes <= h.init_size, "kernel size against init_size");
  FUZZ_CHECK(h.kernel_offset + h.kernel_bytes <= image.size(), "kernel bytes outside the image");

  // The kernel.
  FUZZ_CHECK(b.kernel_address >= GuestMemoryMap::kHighRamStart, "kernel below 1 MiB");
  FUZZ_CHECK(b.kernel_end == b.kernel_address + h.init_size, "kernel_end");
  FUZZ_CHECK(map.is_ram(b.kernel_address, h.init_size), "kernel's init_size range outside RAM");
  if (h.relocatable_kernel) {
    FUZZ_CHECK(b.kernel_address % kMinKernelAlignment == 0, "relocatable kernel alignment");
    if (h.kernel_alignment != 0)
      FUZZ_CHECK(b.kernel_address % h.kernel_alignment == 0, "kernel_alignment not honoured");
    FUZZ_CHECK(h.pref_address == 0 || b.kernel_address >= h.pref_address, "kernel below pref_address");
  } else {
    FUZZ_CHECK(h.pref_address == 0 || b.kernel_address == h.pref_address, "fixed kernel not at pref_address");
  }
  FUZZ_CHECK(std::memcmp(ram.data() + b.kernel_address, image.data() + h.kernel_offset, h.kernel_bytes) == 0,
             "kernel bytes");

  // The initrd.
  if (initrd.empty()) {
    FUZZ_CHECK(b.initrd_address == 0 && b.initrd_size == 0, "an initrd without one");
  } else {
    FUZZ_CHECK(b.initrd_size == initrd.size(), "initrd size");
    FUZZ_CHECK(b.initrd_address % kPageSize == 0, "initrd alignment");
    FUZZ_CHECK(b.initrd_address >= b.kernel_end, "initrd below the kernel's end");
    FUZZ_CHECK(b.initrd_address + b.initrd_size - 1 <= h.initrd_addr_max, "initrd above initrd_addr_max");
    FUZZ_CHECK(map.is_ram(b.initrd_address, b.initrd_size), "initrd outside RAM");
    FUZZ_CHECK(std::memcmp(ram.data() + b.initrd_address, initrd.data(), initrd.size()) == 0, "initrd bytes");
  }

  // The zero page.
  const uint64_t zp = b.zero_page_address;
  FUZZ_CHECK(zp == kZeroPageAddress, "zero page address");
  const uint32_t copied_end = h.header_end < kZeroPageHeaderLimit ? h.header_end : kZeroPageHeaderLimit;
  for (uint32_t off = kOffsetSetupSects; off < copied_end; ++off) {
    if (written_by_loader(off)) continue;
    FUZZ_CHECK(ram[zp + off] == image[off], "setup header not copied into the zero page");
  }
  FUZZ_CHECK(get8(ram, zp + kOffsetTypeOfLoader) == kTypeOfLoaderUndefined, "type_of_loader");
  FUZZ_CHECK((get8(ram, zp + kOffsetLoadflags) & (kLoadedHigh | kCanUseHeap)) == kLoadedHigh, "loadflags");
  FUZZ_CHECK(get32(ram, zp + kOffsetCmdLinePtr) == b.cmdline_address, "cmd_line_ptr");
  FUZZ_CHECK(get32(ram, zp + kOffsetRamdiskImage) == b.initrd_address, "ramdisk_image");
  FUZZ_CHECK(get32(ram, zp + kOffsetRamdiskSize) == b.initrd_size, "ramdisk_size");
  FUZZ_CHECK(get8(ram, zp + kZeroPageE820Entries) == map.ranges().size(), "e820_entries");
  FUZZ_CHECK(get32(ram, zp + kZeroPageE820Table + 16) == static_cast<uint32_t>(map.ranges()[0].type),
             "e820 entry");
  FUZZ_CHECK(b.cmdline_address + cmdline.size() < kCmdlineAreaEnd, "command line room");
  FUZZ_CHECK(std::memcmp(ram.data() + b.cmdline_address, cmdline.data(), cmdline.size()) == 0 &&
                 ram[b.cmdline_address + cmdline.size()] == 0,
             "command line");
  FUZZ_CHECK(cmdline.size() <= h.cmdline_size, "command line longer than cmdline_size");

  // The entry state.
  const EntryState& s = b.entry;
  FUZZ_CHECK(s.rip == b.kernel_address + kEntry64Offset, "RIP at entry");
  FUZZ_CHECK(s.rsi == zp, "RSI at entry");
  FUZZ_CHECK((s.cr0 & (kCr0Pe | kCr0Pg)) == (kCr0Pe | kCr0Pg) && (s.cr4 & kCr4Pae) != 0, "CR0/CR4 at entry");
  FUZZ_CHECK((s.efer & (kEferLme | kEferLma)) == (kEferLme | kEferLma), "EFER at entry");
  FUZZ_CHECK(s.cr3 == b.page_tables_address, "CR3 at entry");
  FUZZ_CHECK(s.cs.selector == kBootCsSelector && s.cs.long_mode && !s.cs.default_big, "CS at entry");
  FUZZ_CHECK(s.ds.selector == kBootDsSelector && s.ss.selector == kBootDsSelector &&
                 s.es.selector == kBootDsSelector,
             "data segments at entry");
  FUZZ_CHECK((s.rflags & kRflagsIf) == 0, "IF at entry");
}

void run(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> image(data, size);
  fuzz::InputDerivedChoices choices(data, size);
  static const uint64_t kRamChoices[] = {4 * kMiB, 16 * kMiB, 32 * kMiB, 64 * kMiB};
  const uint64_t ram_bytes = kRamChoices[choices.in_range(0, 3)];
  const Result<GuestMemoryMap> map = GuestMemoryMap::for_ram(ram_bytes);
  FUZZ_CHECK(map.has_value(), "memory map");
  // One 64 MiB buffer for every run; each run undoes its own writes.
  static std::vector<uint8_t> buffer(64 * kMiB, kUntouched);
  static std::vector<MemoryRange> written;
  const std::span<uint8_t> ram(buffer.data(), ram_bytes);
  written.clear();
  CheckedMemory memory(ram, *map, written);

  std::span<const uint8_t> initrd;
  if (size > 0 && !choices.one_in(3)) {
    const size_t from = static_cast<size_t>(choices.in_range(0, size - 1));
    initrd = image.subspan(from, static_cast<size_t>(choices.in_range(0, size - from)));
  }
  std::string cmdline;
  switch (choices.in_range(0, 3)) {
    case 0: break;
    case 1: cmdline = "console=ttyS0 root=/dev/ram0 size=" + std::to_string(size); break;
    case 2: cmdline = std::string(choices.in_range(200, 300), 'x'); break;  // around the 255 default
    default:  // sometimes exactly the low-memory room (0xA000-0x9EFFF), which leaves no byte for the NUL
      cmdline =
          std::string(choices.one_in(8) ? kCmdlineAreaEnd - kCmdlineAddress : choices.in_range(1, 5000), 'y');
      break;
  }

  BootRequest request;
  request.kernel = image;
  request.initrd = initrd;
  request.cmdline = cmdline;
  const Result<BootImage> boot = load(request, *map, memory);
  if (!boot) {
    FUZZ_CHECK(boot.error().message != nullptr && boot.error().message[0] != '\0',
               "a refusal without a message");
  } else {
    check_boot(*boot, image, initrd, cmdline, *map, ram);
  }
  for (const MemoryRange& w : written) std::memset(buffer.data() + w.base, kUntouched, w.length);
}

}  // namespace
}  // namespace lantern::guest

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lantern::guest::run(data, size);
  return 0;
}
