#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "guest/loader/entry_state.h"
#include "guest/loader/guest_memory.h"
#include "guest/loader/memory_map.h"
#include "guest/loader/multiboot1.h"

namespace lantern::guest {
namespace {

using namespace multiboot1;
constexpr uint64_t kMiB = 1ull << 20;

void put16(std::vector<uint8_t>& v, size_t off, uint16_t x) {
  if (v.size() < off + 2) v.resize(off + 2);
  v[off] = x & 0xff;
  v[off + 1] = x >> 8;
}
void put32(std::vector<uint8_t>& v, size_t off, uint32_t x) {
  if (v.size() < off + 4) v.resize(off + 4);
  for (int i = 0; i < 4; ++i) v[off + i] = static_cast<uint8_t>(x >> (8 * i));
}
void put64(std::vector<uint8_t>& v, size_t off, uint64_t x) {
  put32(v, off, static_cast<uint32_t>(x));
  put32(v, off + 4, static_cast<uint32_t>(x >> 32));
}
uint32_t get32(const std::vector<uint8_t>& v, uint64_t off) {
  uint32_t x = 0;
  std::memcpy(&x, v.data() + off, 4);
  return x;
}
uint64_t get64(const std::vector<uint8_t>& v, uint64_t off) {
  uint64_t x = 0;
  std::memcpy(&x, v.data() + off, 8);
  return x;
}
std::string get_string(const std::vector<uint8_t>& v, uint64_t off) {
  return std::string(reinterpret_cast<const char*>(v.data() + off));
}

void put_mb_header(std::vector<uint8_t>& v, size_t off, uint32_t flags) {
  put32(v, off, kHeaderMagic);
  put32(v, off + 4, flags);
  put32(v, off + 8, static_cast<uint32_t>(0u - (kHeaderMagic + flags)));
}

struct Seg {
  uint64_t vaddr, paddr;
  std::vector<uint8_t> data;
  uint64_t memsz;
};

// A minimal ELF executable: header, program headers, a multiboot header at 0x100, segment data.
std::vector<uint8_t> make_elf(bool is64, uint64_t entry, const std::vector<Seg>& segs, uint32_t mb_flags = 0) {
  std::vector<uint8_t> v(0x200, 0);
  v[0] = 0x7f; v[1] = 'E'; v[2] = 'L'; v[3] = 'F';
  v[4] = is64 ? 2 : 1;
  v[5] = 1;
  v[6] = 1;
  put16(v, 16, 2);
  put16(v, 18, is64 ? 62 : 3);
  put32(v, 20, 1);
  const size_t phoff = is64 ? 64 : 52;
  const size_t phent = is64 ? 56 : 32;
  if (is64) {
    put64(v, 24, entry);
    put64(v, 32, phoff);
    put16(v, 52, 64);
    put16(v, 54, static_cast<uint16_t>(phent));
    put16(v, 56, static_cast<uint16_t>(segs.size()));
  } else {
    put32(v, 24, static_cast<uint32_t>(entry));
    put32(v, 28, static_cast<uint32_t>(phoff));
    put16(v, 40, 52);
    put16(v, 42, static_cast<uint16_t>(phent));
    put16(v, 44, static_cast<uint16_t>(segs.size()));
  }
  put_mb_header(v, 0x100, mb_flags);
  size_t data_off = 0x200;
  for (size_t i = 0; i < segs.size(); ++i) {
    const size_t p = phoff + i * phent;
    if (is64) {
      put32(v, p, 1);
      put64(v, p + 8, data_off);
      put64(v, p + 16, segs[i].vaddr);
      put64(v, p + 24, segs[i].paddr);
      put64(v, p + 32, segs[i].data.size());
      put64(v, p + 40, segs[i].memsz);
    } else {
      put32(v, p, 1);
      put32(v, p + 4, static_cast<uint32_t>(data_off));
      put32(v, p + 8, static_cast<uint32_t>(segs[i].vaddr));
      put32(v, p + 12, static_cast<uint32_t>(segs[i].paddr));
      put32(v, p + 16, static_cast<uint32_t>(segs[i].data.size()));
      put32(v, p + 20, static_cast<uint32_t>(segs[i].memsz));
    }
    v.resize(data_off + segs[i].data.size());
    std::memcpy(v.data() + data_off, segs[i].data.data(), segs[i].data.size());
    data_off = v.size();
  }
  return v;
}

struct Guest {
  explicit Guest(uint64_t mib) : ram(mib * kMiB, 0xaa), memory(ram), map(*GuestMemoryMap::for_ram(mib * kMiB)) {}
  std::vector<uint8_t> ram;
  ByteSpanGuestMemory memory;
  GuestMemoryMap map;
};

TEST(GuestMemoryMapTest, PcLayoutForMemMiB) {
  auto map = GuestMemoryMap::for_ram(128 * kMiB);
  ASSERT_TRUE(map.has_value());
  const auto r = map->ranges();
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].base, 0u);
  EXPECT_EQ(r[0].length, 0xa0000u);
  EXPECT_EQ(r[0].type, MemoryRangeType::kRam);
  EXPECT_EQ(r[1].base, 0xa0000u);
  EXPECT_EQ(r[1].end(), 0x100000u);
  EXPECT_EQ(r[1].type, MemoryRangeType::kReserved);
  EXPECT_EQ(r[2].base, 0x100000u);
  EXPECT_EQ(r[2].end(), 128 * kMiB);
  EXPECT_EQ(r[3].base, 0xfec00000u);
  EXPECT_EQ(r[4].base, 0xfee00000u);
  EXPECT_EQ(r[4].type, MemoryRangeType::kReserved);
  EXPECT_EQ(map->mem_lower_kib(), 640u);
  EXPECT_EQ(map->mem_upper_kib(), 127u * 1024);
  EXPECT_TRUE(map->is_ram(0, 0x1000));
  EXPECT_FALSE(map->is_ram(0x9f000, 0x2000));  // crosses into the hole
  EXPECT_FALSE(map->is_ram(128 * kMiB - 0x1000, 0x2000));
  EXPECT_EQ(*map->find_ram(0x9f800, 0x1000, 0x1000), 0x100000u);  // skips the hole
  EXPECT_FALSE(map->find_ram(128 * kMiB - 0x800, 0x1000, 0x1000).has_value());
}

TEST(GuestMemoryMapTest, RefusesSizesOutsideTheRule) {
  EXPECT_EQ(GuestMemoryMap::for_ram(1 * kMiB).error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(GuestMemoryMap::for_ram(3073 * kMiB).has_value());
  EXPECT_FALSE(GuestMemoryMap::for_ram(2 * kMiB + 1).has_value());
  EXPECT_TRUE(GuestMemoryMap::for_ram(2 * kMiB).has_value());
  EXPECT_TRUE(GuestMemoryMap::for_ram(3072 * kMiB).has_value());
}

TEST(GuestMemoryMapTest, E820TableForALinuxZeroPage) {
  auto map = GuestMemoryMap::for_ram(64 * kMiB);
  std::vector<uint8_t> out(5 * 20);
  auto n = map->write_e820(out);
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(get64(out, 40), 0x100000u);            // entry 2 addr
  EXPECT_EQ(get64(out, 48), 63 * kMiB);             // entry 2 size
  EXPECT_EQ(get32(out, 56), 1u);                    // RAM
  EXPECT_EQ(get64(out, 80), 0xfee00000u);
  EXPECT_EQ(get32(out, 96), 2u);
  std::vector<uint8_t> small(4 * 20);
  EXPECT_EQ(map->write_e820(small).error().code, ErrorCode::kFull);
}

TEST(Multiboot1Header, FoundAlignedWithinTheFirst8KiBWithChecksum) {
  std::vector<uint8_t> img(0x3000, 0);
  put_mb_header(img, 0x1ffc, 0x3);  // would end past byte 8192: not "completely within"
  EXPECT_EQ(find_header(img).error().code, ErrorCode::kNotFound);
  put_mb_header(img, 0x1ff4, 0x3);  // ends exactly at byte 8192
  auto h = find_header(img);
  ASSERT_TRUE(h.has_value());
  EXPECT_EQ(h->offset, 0x1ff4u);
  EXPECT_EQ(h->flags, 3u);
  EXPECT_FALSE(h->has_address_fields);

  std::vector<uint8_t> late(0x3000, 0);
  put_mb_header(late, 0x2000, 0);  // past the first 8192 bytes
  EXPECT_EQ(find_header(late).error().code, ErrorCode::kNotFound);

  std::vector<uint8_t> unaligned(0x100, 0);
  put_mb_header(unaligned, 0x12, 0);
  EXPECT_EQ(find_header(unaligned).error().code, ErrorCode::kNotFound);

  std::vector<uint8_t> broken(0x100, 0);
  put_mb_header(broken, 0x10, 0);
  put32(broken, 0x18, 0x12345678);  // checksum off
  const auto e = find_header(broken);
  EXPECT_EQ(e.error().code, ErrorCode::kBadChecksum);
  EXPECT_NE(std::string(e.error().message).find("checksum"), std::string::npos);

  std::vector<uint8_t> short_fields(0x20, 0);
  put_mb_header(short_fields, 0x10, kFlagAddressFields);
  short_fields.resize(0x1c);
  EXPECT_EQ(find_header(short_fields).error().code, ErrorCode::kTruncated);
}

TEST(Multiboot1Load, Elf32SegmentsWithBssZeroFillAndEntryTranslation) {
  Guest g(16);
  // Linked at a virtual address, loaded at its physical one (GRUB semantics).
  auto img = make_elf(false, 0xc0100010, {{0xc0100000, 0x100000, {1, 2, 3, 4}, 0x2000}, {0xc0104000, 0x104000, {9}, 0x10}});
  auto k = load_kernel(img, g.map, g.memory);
  ASSERT_TRUE(k.has_value()) << k.error().message;
  EXPECT_EQ(k->format, KernelFormat::kElf32);
  EXPECT_EQ(k->entry, 0x100010u);
  EXPECT_EQ(k->lowest, 0x100000u);
  EXPECT_EQ(k->end, 0x104010u);
  EXPECT_EQ(g.ram[0x100000], 1);
  EXPECT_EQ(g.ram[0x100003], 4);
  EXPECT_EQ(g.ram[0x100004], 0);  // bss zeroed (RAM was 0xaa)
  EXPECT_EQ(g.ram[0x101fff], 0);
  EXPECT_EQ(g.ram[0x102000], 0xaa);  // beyond p_memsz untouched
  EXPECT_EQ(g.ram[0x104000], 9);
  EXPECT_EQ(g.ram[0x10400f], 0);
}

TEST(Multiboot1Load, Elf64BelowFourGiB) {
  Guest g(16);
  auto img = make_elf(true, 0x200000, {{0x200000, 0x200000, {0xf4, 0xeb, 0xfe}, 0x1000}});
  auto k = load_kernel(img, g.map, g.memory);
  ASSERT_TRUE(k.has_value()) << k.error().message;
  EXPECT_EQ(k->format, KernelFormat::kElf64);
  EXPECT_EQ(k->entry, 0x200000u);
  EXPECT_EQ(g.ram[0x200001], 0xeb);
  EXPECT_EQ(g.ram[0x200fff], 0);
}

TEST(Multiboot1Load, AoutKludgeUsesTheAddressFields) {
  Guest g(4);
  // Header at file offset 8; header_addr 0x100008 -> text starts at file offset 0, at 0x100000.
  std::vector<uint8_t> img(0x40, 0x5a);
  put_mb_header(img, 8, kFlagAddressFields);
  put32(img, 20, 0x100008);  // header_addr
  put32(img, 24, 0x100000);  // load_addr
  put32(img, 28, 0x100040);  // load_end_addr
  put32(img, 32, 0x101000);  // bss_end_addr
  put32(img, 36, 0x100030);  // entry_addr
  img[0] = 0x11;
  img[0x3f] = 0x22;
  auto k = load_kernel(img, g.map, g.memory);
  ASSERT_TRUE(k.has_value()) << k.error().message;
  EXPECT_EQ(k->format, KernelFormat::kAoutKludge);
  EXPECT_EQ(k->entry, 0x100030u);
  EXPECT_EQ(k->end, 0x101000u);
  EXPECT_EQ(g.ram[0x100000], 0x11);
  EXPECT_EQ(g.ram[0x10003f], 0x22);
  EXPECT_EQ(g.ram[0x100040], 0);  // bss
  EXPECT_EQ(g.ram[0x100fff], 0);
  // load_end_addr = 0: the whole file from the text start.
  put32(img, 28, 0);
  put32(img, 32, 0);
  Guest g2(4);
  auto k2 = load_kernel(img, g2.map, g2.memory);
  ASSERT_TRUE(k2.has_value());
  EXPECT_EQ(k2->end, 0x100040u);
  // load_end_addr beyond the file: truncated.
  put32(img, 28, 0x100080);
  EXPECT_EQ(load_kernel(img, g2.map, g2.memory).error().code, ErrorCode::kTruncated);
  // load_addr above header_addr.
  put32(img, 28, 0);
  put32(img, 24, 0x100010);
  EXPECT_EQ(load_kernel(img, g2.map, g2.memory).error().code, ErrorCode::kMalformed);
}

TEST(Multiboot1Load, RefusalsCarryClearReasons) {
  Guest g(4);
  auto good = make_elf(false, 0x100000, {{0x100000, 0x100000, std::vector<uint8_t>(0x100, 1), 0x100}});
  ASSERT_TRUE(load_kernel(good, g.map, g.memory).has_value());

  auto expect_refused = [&](const std::vector<uint8_t>& img, ErrorCode code, const char* words) {
    auto r = load_kernel(img, g.map, g.memory);
    ASSERT_FALSE(r.has_value()) << words;
    EXPECT_EQ(r.error().code, code) << r.error().message;
    EXPECT_NE(std::string(r.error().message).find(words), std::string::npos) << r.error().message;
  };
  expect_refused({}, ErrorCode::kInvalidArgument, "zero length");
  auto truncated = good;
  truncated.resize(0x280);  // segment data cut short
  expect_refused(truncated, ErrorCode::kTruncated, "truncated");
  auto no_phdrs = good;
  put32(no_phdrs, 28, 0x10000);  // e_phoff past the end
  expect_refused(no_phdrs, ErrorCode::kTruncated, "program headers");
  expect_refused(make_elf(false, 0x100000, {{0x100000, 0x100000, {1}, 8 * kMiB}}), ErrorCode::kInvalidArgument,
                 "outside guest RAM");
  expect_refused(make_elf(false, 0xb8000, {{0xb8000, 0xb8000, {1}, 0x10}}), ErrorCode::kInvalidArgument,
                 "reserved window");
  expect_refused(make_elf(false, 0x100000, {{0x100000, 0x100000, {1}, 0x10}}, kFlagVideoMode), ErrorCode::kUnsupported,
                 "video mode");
  expect_refused(make_elf(false, 0x100000, {{0x100000, 0x100000, {1, 2}, 1}}), ErrorCode::kMalformed,
                 "file size larger");
  expect_refused(make_elf(false, 0x900000, {{0x100000, 0x100000, {1}, 1}}), ErrorCode::kInvalidArgument,
                 "entry point");
  std::vector<uint8_t> plain(0x100, 0);
  put_mb_header(plain, 0, 0);
  expect_refused(plain, ErrorCode::kMalformed, "neither ELF");
  std::vector<uint8_t> none(0x100, 0);
  expect_refused(none, ErrorCode::kNotFound, "no multiboot header");
}

TEST(Multiboot1Load, ModulesInformationAndEntryState) {
  Guest g(32);
  auto img = make_elf(false, 0x100000, {{0x100000, 0x100000, {0x90}, 0x3100}});
  const std::vector<uint8_t> m0(5000, 7), m1 = {'e', 'n', 'v'};
  const ModuleInput mods[] = {{m0, "first.bin arg"}, {m1, "env"}};
  BootRequest req;
  req.kernel = img;
  req.cmdline = "apic.flat a,b  c";
  req.modules = mods;
  auto boot = load(req, g.map, g.memory);
  ASSERT_TRUE(boot.has_value()) << boot.error().message;

  // Modules page-aligned, above the kernel's bss, in order, not overlapping.
  ASSERT_EQ(boot->module_count, 2u);
  EXPECT_EQ(boot->modules[0].start, 0x104000u);
  EXPECT_EQ(boot->modules[0].end, 0x104000u + 5000);
  EXPECT_EQ(boot->modules[1].start, 0x106000u);
  EXPECT_EQ(g.ram[0x104000 + 4999], 7);
  EXPECT_EQ(get_string(g.ram, 0x106000).substr(0, 3), "env");
  EXPECT_GE(boot->info_address, boot->modules[1].end);
  EXPECT_EQ(boot->info_address % 4096, 0u);

  const uint64_t info = boot->info_address;
  const uint32_t flags = get32(g.ram, info);
  EXPECT_EQ(flags, kInfoMemory | kInfoCmdline | kInfoModules | kInfoMemoryMap | kInfoLoaderName);
  EXPECT_EQ(get32(g.ram, info + 4), 640u);
  EXPECT_EQ(get32(g.ram, info + 8), 31u * 1024);
  EXPECT_EQ(get_string(g.ram, get32(g.ram, info + 16)), "apic.flat a,b  c");
  EXPECT_EQ(get32(g.ram, info + 20), 2u);
  const uint32_t mods_addr = get32(g.ram, info + 24);
  EXPECT_EQ(get32(g.ram, mods_addr), 0x104000u);
  EXPECT_EQ(get32(g.ram, mods_addr + 4), 0x104000u + 5000);
  EXPECT_EQ(get_string(g.ram, get32(g.ram, mods_addr + 8)), "first.bin arg");
  EXPECT_EQ(get32(g.ram, mods_addr + 12), 0u);
  EXPECT_EQ(get_string(g.ram, get32(g.ram, mods_addr + 16 + 8)), "env");
  EXPECT_EQ(get_string(g.ram, get32(g.ram, info + 64)), "Lantern");

  // Walk the memory map the way a guest does: entry at mmap_addr, next at +size+4.
  const uint32_t mmap_len = get32(g.ram, info + 44);
  uint64_t at = get32(g.ram, info + 48);
  const uint64_t mmap_end = at + mmap_len;
  std::vector<std::pair<uint64_t, uint32_t>> seen;
  while (at < mmap_end) {
    seen.emplace_back(get64(g.ram, at + 4), get32(g.ram, at + 20));
    EXPECT_EQ(get32(g.ram, at), 20u);
    at += get32(g.ram, at) + 4;
  }
  const std::vector<std::pair<uint64_t, uint32_t>> expected = {
      {0, 1}, {0xa0000, 2}, {0x100000, 1}, {0xfec00000, 2}, {0xfee00000, 2}};
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(get64(g.ram, get32(g.ram, info + 48) + 2 * 24 + 12), 31 * kMiB);  // high RAM length

  // MB 3.2 machine state.
  const EntryState& s = boot->entry;
  EXPECT_EQ(s.rax, 0x2badb002u);
  EXPECT_EQ(s.rbx, info);
  EXPECT_EQ(s.rip, 0x100000u);
  EXPECT_EQ(s.cr0 & kCr0Pe, kCr0Pe);
  EXPECT_EQ(s.cr0 & kCr0Pg, 0u);
  EXPECT_EQ(s.rflags & kRflagsIf, 0u);
  EXPECT_EQ(s.cs.base, 0u);
  EXPECT_EQ(s.cs.limit, 0xffffffffu);
  EXPECT_TRUE(s.cs.default_big);
  EXPECT_FALSE(s.cs.long_mode);
  EXPECT_EQ(s.cs.type, kSegmentTypeCodeExecuteReadAccessed);
  for (const SegmentState* d : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
    EXPECT_EQ(d->base, 0u);
    EXPECT_EQ(d->limit, 0xffffffffu);
    EXPECT_EQ(d->type, kSegmentTypeDataReadWriteAccessed);
    EXPECT_TRUE(d->default_big);
  }
}

TEST(Multiboot1Load, ModuleRefusals) {
  Guest g(2);
  auto img = make_elf(false, 0x100000, {{0x100000, 0x100000, {1}, 0x1000}});
  const std::vector<uint8_t> empty;
  const ModuleInput zero[] = {{empty, "zero"}};
  BootRequest req;
  req.kernel = img;
  req.modules = zero;
  auto r = load(req, g.map, g.memory);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(std::string(r.error().message).find("zero length"), std::string::npos);
  const std::vector<uint8_t> big(1 * kMiB, 1);  // 2 MiB guest: 1 MiB + kernel page + this does not fit
  const ModuleInput too_big[] = {{big, "big"}};
  req.modules = too_big;
  r = load(req, g.map, g.memory);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kOutOfMemory);
  EXPECT_NE(std::string(r.error().message).find("mem="), std::string::npos);
}

// The real test guest the build makes (tests/guests/multiboot): an ELF32 whose AP trampoline
// segment has a virtual address (0x8000) different from its load address.
TEST(Multiboot1Load, TheProjectsMultibootTestGuest) {
  const std::string path = std::string(LANTERN_BINARY_DIR) + "/tests/guests/mbguest.elf";
  std::ifstream f(path, std::ios::binary);
  if (!f) GTEST_SKIP() << path << " not built (LANTERN_BUILD_KERNEL=OFF)";
  const std::vector<uint8_t> img((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  Guest g(16);
  const std::vector<uint8_t> env = {'x', '\n'};
  const ModuleInput mods[] = {{env, "env"}};
  BootRequest req;
  req.kernel = img;
  req.cmdline = "exit=3";
  req.modules = mods;
  auto boot = load(req, g.map, g.memory);
  ASSERT_TRUE(boot.has_value()) << boot.error().message;
  EXPECT_EQ(boot->kernel.format, KernelFormat::kElf32);
  EXPECT_EQ(boot->kernel.lowest, 0x100000u);
  EXPECT_EQ(boot->entry.rip, 0x10000cu);  // _start, after the 12-byte multiboot header
  EXPECT_EQ(g.ram[0x10000c], 0xfa);       // cli
  EXPECT_EQ(boot->kernel.header_flags, kFlagPageAlignModules | kFlagMemoryInfo);
  EXPECT_GE(boot->modules[0].start, boot->kernel.end);
}

TEST(GuestMemoryTest, BoundsChecked) {
  std::vector<uint8_t> ram(16);
  ByteSpanGuestMemory m(ram);
  const uint8_t b[4] = {1, 2, 3, 4};
  EXPECT_TRUE(m.write(12, b).has_value());
  EXPECT_FALSE(m.write(13, b).has_value());
  EXPECT_FALSE(m.fill(~0ull, 0, 2).has_value());
  uint8_t out[4];
  EXPECT_TRUE(m.read(12, out).has_value());
  EXPECT_EQ(out[3], 4);
}

}  // namespace
}  // namespace lantern::guest

// The descriptor attribute bits both backends encode from (VMCB attributes, VMCS access rights).
TEST(EntryStateTest, PackedDescriptorAttributes) {
  lantern::guest::SegmentState code;  // flat 32-bit code: type B, S, P, D/B, G
  code.type = lantern::guest::kSegmentTypeCodeExecuteReadAccessed;
  EXPECT_EQ(lantern::guest::packed_descriptor_attributes(code), 0xc9bu);
  lantern::guest::SegmentState data = code;
  data.type = lantern::guest::kSegmentTypeDataReadWriteAccessed;
  data.dpl = 3;
  EXPECT_EQ(lantern::guest::packed_descriptor_attributes(data), 0xcf3u);
  lantern::guest::SegmentState code64 = code;  // 64-bit code: L set, D/B clear
  code64.long_mode = true;
  code64.default_big = false;
  EXPECT_EQ(lantern::guest::packed_descriptor_attributes(code64), 0xa9bu);
  lantern::guest::SegmentState tss;  // a busy 32-bit TSS: a system segment, byte granular
  tss.type = lantern::guest::kSegmentTypeTss32Busy;
  tss.code_or_data = false;
  tss.default_big = false;
  tss.granularity = false;
  EXPECT_EQ(lantern::guest::packed_descriptor_attributes(tss), 0x08bu);
}
