// Fuzz target: the Multiboot v1 loader (guest/loader/multiboot1.h), as `--vm kernel=` reaches it
// with any file a user names: the header search, ELF32/ELF64/a.out-kludge loading, module
// placement and the information block, into a guest of 2-8 MiB.
//
// The input is the kernel image. The guest's RAM size, up to three modules (slices of the input)
// and the command line are derived from the input (InputDerivedChoices). Invariants:
//   - find_header() and load() never crash and never read outside the image (ASan);
//   - every byte the loader writes lies in RAM of the guest memory map (never the 640 KiB-1 MiB
//     hole, the APIC windows or beyond RAM), checked at each write;
//   - after a successful load: the header was found; the modules are in order, page-aligned,
//     above the kernel's end, hold the module bytes, lie in RAM and overlap neither each other,
//     the kernel nor the information block; the information block is page-aligned above the last
//     module, inside RAM, with mods_count, the command line and mem_lower/upper as given; the entry
//     state is MB 3.2's (EAX magic, EBX the block, RIP the entry, PE set, PG and IF clear);
//   - a failed load carries a message.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "guest/loader/guest_memory.h"
#include "guest/loader/memory_map.h"
#include "guest/loader/multiboot1.h"
#include "tests/fuzz/fuzz_check.h"

namespace lantern::guest {
namespace {

using namespace multiboot1;

// Guest RAM that checks every write against the memory map before it lands.
class CheckedMemory final : public GuestMemory {
 public:
  CheckedMemory(std::vector<uint8_t>& ram, const GuestMemoryMap& map) : inner_(ram), map_(map) {}
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
  void check(uint64_t gpa, uint64_t length) const {
    if (length == 0) return;
    FUZZ_CHECK(map_.is_ram(gpa, length), "a loader write outside guest RAM");
  }
  ByteSpanGuestMemory inner_;
  const GuestMemoryMap& map_;
};

uint32_t get32(const std::vector<uint8_t>& ram, uint64_t at) {
  FUZZ_CHECK(at + 4 <= ram.size(), "an information field outside RAM");
  uint32_t v = 0;
  std::memcpy(&v, ram.data() + at, 4);
  return v;
}

std::string get_string(const std::vector<uint8_t>& ram, uint64_t at) {
  FUZZ_CHECK(at < ram.size(), "a string outside RAM");
  const char* s = reinterpret_cast<const char*>(ram.data() + at);
  const size_t n = strnlen(s, ram.size() - at);
  FUZZ_CHECK(n < ram.size() - at, "a string without its NUL");
  return std::string(s, n);
}

bool overlap(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1) {
  return a0 < b1 && b0 < a1;
}

void run(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> image(data, size);
  fuzz::InputDerivedChoices choices(data, size);
  const uint64_t mib = uint64_t{1} << choices.in_range(1, 3);  // 2, 4 or 8 MiB
  const Result<GuestMemoryMap> map = GuestMemoryMap::for_ram(mib << 20);
  FUZZ_CHECK(map.has_value(), "memory map");
  // One buffer for every run (allocating megabytes per input would dominate the run time).
  static std::vector<uint8_t> ram;
  ram.assign(map->ram_bytes(), 0xaa);
  CheckedMemory memory(ram, *map);

  // Modules: slices of the input (possibly empty, which the loader refuses).
  const size_t module_count = static_cast<size_t>(choices.in_range(0, 3));
  std::vector<ModuleInput> modules;
  std::vector<std::string> strings;
  strings.reserve(module_count);
  for (size_t i = 0; i < module_count; ++i) {
    const size_t from = size == 0 ? 0 : static_cast<size_t>(choices.in_range(0, size - 1));
    const size_t length = size == 0 ? 0 : static_cast<size_t>(choices.in_range(0, size - from));
    strings.push_back("mod" + std::to_string(i) + (choices.one_in(2) ? " arg=x" : ""));
    modules.push_back(ModuleInput{image.subspan(from, length), strings.back()});
  }
  const std::string cmdline = choices.one_in(4) ? std::string() : "kernel.flat a,b c=" + std::to_string(size);

  const Result<Header> header = find_header(image);
  BootRequest request;
  request.kernel = image;
  request.cmdline = cmdline;
  request.modules = modules;
  const Result<BootImage> boot = load(request, *map, memory);
  if (!boot) {
    FUZZ_CHECK(boot.error().message != nullptr && boot.error().message[0] != '\0',
               "a refusal without a message");
    return;
  }
  FUZZ_CHECK(header.has_value(), "loaded without a header");
  const BootImage& b = *boot;
  FUZZ_CHECK(b.kernel.lowest < b.kernel.end && b.kernel.end <= ram.size(), "kernel range");
  FUZZ_CHECK(b.module_count == modules.size(), "module count");
  uint64_t previous_end = b.kernel.end;
  for (size_t i = 0; i < b.module_count; ++i) {
    const PlacedModule& m = b.modules[i];
    FUZZ_CHECK(m.start % kPageSize == 0, "module alignment");
    FUZZ_CHECK(m.start >= previous_end, "modules in order above the kernel");
    FUZZ_CHECK(m.end - m.start == modules[i].bytes.size(), "module length");
    FUZZ_CHECK(map->is_ram(m.start, m.end - m.start), "module outside RAM");
    FUZZ_CHECK(std::memcmp(ram.data() + m.start, modules[i].bytes.data(), modules[i].bytes.size()) == 0,
               "module bytes");
    FUZZ_CHECK(!overlap(m.start, m.end, b.kernel.lowest, b.kernel.end), "module over the kernel");
    previous_end = m.end;
  }
  FUZZ_CHECK(b.info_address % kPageSize == 0 && b.info_address >= previous_end,
             "information block placement");
  FUZZ_CHECK(b.info_address < b.info_end && b.info_end <= ram.size(), "information block range");
  FUZZ_CHECK(map->is_ram(b.info_address, b.info_end - b.info_address), "information block outside RAM");
  FUZZ_CHECK(!overlap(b.info_address, b.info_end, b.kernel.lowest, b.kernel.end),
             "information over the kernel");

  const uint64_t info = b.info_address;
  const uint32_t flags = get32(ram, info + kInfoOffsetFlags);
  FUZZ_CHECK((flags & kInfoMemory) != 0, "no memory information");
  FUZZ_CHECK(get32(ram, info + kInfoOffsetMemLower) == map->mem_lower_kib(), "mem_lower");
  FUZZ_CHECK(get32(ram, info + kInfoOffsetMemUpper) == map->mem_upper_kib(), "mem_upper");
  if ((flags & kInfoCmdline) != 0) {
    FUZZ_CHECK(get_string(ram, get32(ram, info + kInfoOffsetCmdline)) == cmdline, "command line");
  }
  if ((flags & kInfoModules) != 0) {
    FUZZ_CHECK(get32(ram, info + kInfoOffsetModsCount) == b.module_count, "mods_count");
    const uint32_t list = get32(ram, info + kInfoOffsetModsAddr);
    for (size_t i = 0; i < b.module_count; ++i) {
      const uint64_t entry = list + i * kModuleEntryBytes;
      FUZZ_CHECK(get32(ram, entry) == b.modules[i].start && get32(ram, entry + 4) == b.modules[i].end,
                 "module entry");
      FUZZ_CHECK(get_string(ram, get32(ram, entry + 8)) == modules[i].string, "module string");
    }
  } else {
    FUZZ_CHECK(b.module_count == 0, "modules without the modules flag");
  }
  FUZZ_CHECK(b.entry.rax == kBootloaderMagic && b.entry.rbx == info, "EAX/EBX at entry");
  FUZZ_CHECK(b.entry.rip == b.kernel.entry, "entry point");
  FUZZ_CHECK((b.entry.cr0 & 1) != 0 && (b.entry.cr0 & (1ull << 31)) == 0, "CR0 at entry");
  FUZZ_CHECK((b.entry.rflags & (1ull << 9)) == 0, "IF at entry");
}

}  // namespace
}  // namespace lantern::guest

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lantern::guest::run(data, size);
  return 0;
}
