#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "guest/guest_page_walk.h"
#include "guest/loader/bzimage.h"
#include "guest/loader/guest_memory.h"
#include "guest/loader/memory_map.h"

namespace lantern::guest {
namespace {

using namespace bzimage;
constexpr uint64_t kMiB = 1ull << 20;

void put8(std::vector<uint8_t>& v, size_t off, uint8_t x) {
  v.at(off) = x;
}
void put16(std::vector<uint8_t>& v, size_t off, uint16_t x) {
  v.at(off) = x & 0xff;
  v.at(off + 1) = x >> 8;
}
void put32(std::vector<uint8_t>& v, size_t off, uint32_t x) {
  for (int i = 0; i < 4; ++i) v.at(off + i) = static_cast<uint8_t>(x >> (8 * i));
}
void put64(std::vector<uint8_t>& v, size_t off, uint64_t x) {
  put32(v, off, static_cast<uint32_t>(x));
  put32(v, off + 4, static_cast<uint32_t>(x >> 32));
}
uint8_t get8(const std::vector<uint8_t>& v, uint64_t off) {
  return v.at(off);
}
uint16_t get16(const std::vector<uint8_t>& v, uint64_t off) {
  uint16_t x = 0;
  std::memcpy(&x, v.data() + off, 2);
  return x;
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

// What a synthetic bzImage declares; the defaults look like a small x86-64 defconfig kernel.
struct ImageSpec {
  uint8_t setup_sects = 1;
  uint16_t version = 0x020f;
  uint8_t loadflags = kLoadedHigh;
  uint16_t xloadflags = kXlfKernel64 | kXlfCanBeLoadedAbove4G;
  uint32_t initrd_addr_max = 0x7fffffff;
  uint32_t kernel_alignment = 0x200000;
  uint8_t relocatable = 1;
  uint32_t cmdline_size = 2047;
  uint64_t pref_address = 0x1000000;
  uint32_t init_size = 0x400000;
  size_t kernel_bytes = 3000;  // protected-mode part; syssize covers it
};

// Boot sector + setup sectors (header at 0x1F1) + the protected-mode part, a byte pattern.
std::vector<uint8_t> make_bzimage(const ImageSpec& s = {}) {
  const size_t setup = (s.setup_sects == 0 ? 4u : s.setup_sects) + 1u;
  std::vector<uint8_t> v(setup * 512 + s.kernel_bytes, 0);
  put8(v, 0x1f1, s.setup_sects);
  put32(v, 0x1f4, static_cast<uint32_t>((s.kernel_bytes + 15) / 16));
  put16(v, 0x1fe, 0xaa55);
  put8(v, 0x200, 0xeb);  // jmp short: the header ends at 0x202 + 0x6a = 0x26c
  put8(v, 0x201, 0x6a);
  std::memcpy(v.data() + 0x202, "HdrS", 4);
  put16(v, 0x206, s.version);
  put8(v, 0x211, s.loadflags);
  put32(v, 0x214, 0x100000);
  put32(v, 0x22c, s.initrd_addr_max);
  put32(v, 0x230, s.kernel_alignment);
  put8(v, 0x234, s.relocatable);
  put16(v, 0x236, s.xloadflags);
  put32(v, 0x238, s.cmdline_size);
  put64(v, 0x258, s.pref_address);
  put32(v, 0x260, s.init_size);
  for (size_t i = 0; i < s.kernel_bytes; ++i) v[setup * 512 + i] = static_cast<uint8_t>(i * 7 + 1);
  return v;
}

struct Guest {
  explicit Guest(uint64_t mib)
      : ram(mib * kMiB, 0xaa), memory(ram), map(*GuestMemoryMap::for_ram(mib * kMiB)) {}
  std::vector<uint8_t> ram;
  ByteSpanGuestMemory memory;
  GuestMemoryMap map;
};

std::vector<uint8_t> bytes_of(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 13 + seed);
  return v;
}

Result<BootImage> boot(Guest& g, const std::vector<uint8_t>& kernel, const std::vector<uint8_t>& initrd = {},
                       std::string_view cmdline = "console=ttyS0") {
  BootRequest request;
  request.kernel = kernel;
  request.initrd = initrd;
  request.cmdline = cmdline;
  return load(request, g.map, g.memory);
}

TEST(BzimageHeader, LooksLikeBzimageNeedsBootFlagAndHdrS) {
  const auto image = make_bzimage();
  EXPECT_TRUE(looks_like_bzimage(image));
  auto no_flag = image;
  put16(no_flag, 0x1fe, 0);
  EXPECT_FALSE(looks_like_bzimage(no_flag));
  auto no_magic = image;
  no_magic[0x202] = 'X';
  EXPECT_FALSE(looks_like_bzimage(no_magic));
  const std::vector<uint8_t> short_image(image.begin(), image.begin() + 0x205);
  EXPECT_FALSE(looks_like_bzimage(short_image));
  const std::vector<uint8_t> elf = {0x7f, 'E', 'L', 'F', 1, 1, 1, 0};
  EXPECT_FALSE(looks_like_bzimage(elf));
  EXPECT_STREQ(kernel_format_name(), "linux-bzimage");
}

TEST(BzimageHeader, ParsesTheFieldsALoaderNeeds) {
  ImageSpec spec;
  spec.kernel_bytes = 3000;
  const auto image = make_bzimage(spec);
  auto h = parse_header(image);
  ASSERT_TRUE(h.has_value()) << h.error().message;
  EXPECT_EQ(h->setup_sects, 1);
  EXPECT_EQ(h->syssize, 188u);  // ceil(3000 / 16)
  EXPECT_EQ(h->version, 0x020f);
  EXPECT_EQ(h->loadflags, kLoadedHigh);
  EXPECT_EQ(h->xloadflags, kXlfKernel64 | kXlfCanBeLoadedAbove4G);
  EXPECT_EQ(h->code32_start, 0x100000u);
  EXPECT_EQ(h->initrd_addr_max, 0x7fffffffu);
  EXPECT_EQ(h->kernel_alignment, 0x200000u);
  EXPECT_TRUE(h->relocatable_kernel);
  EXPECT_EQ(h->cmdline_size, 2047u);
  EXPECT_EQ(h->pref_address, 0x1000000u);
  EXPECT_EQ(h->init_size, 0x400000u);
  EXPECT_EQ(h->header_end, 0x26cu);
  EXPECT_EQ(h->kernel_offset, 1024u);
  EXPECT_EQ(h->kernel_bytes, 3000u);  // the file's rest: syssize * 16 rounds up to 3008
}

TEST(BzimageHeader, SetupSectsZeroMeansFourAndMissingFieldsTakeTheirDefaults) {
  ImageSpec spec;
  spec.setup_sects = 0;
  spec.cmdline_size = 0;
  spec.initrd_addr_max = 0;
  const auto image = make_bzimage(spec);
  auto h = parse_header(image);
  ASSERT_TRUE(h.has_value()) << h.error().message;
  EXPECT_EQ(h->setup_sects, 4);
  EXPECT_EQ(h->kernel_offset, 5u * 512);
  EXPECT_EQ(h->cmdline_size, 255u);            // boot.rst: before 2.06
  EXPECT_EQ(h->initrd_addr_max, 0x37ffffffu);  // boot.rst: before 2.03
}

TEST(BzimageHeader, FieldsPastTheHeadersEndReadAsZero) {
  auto image = make_bzimage();
  image[0x201] = 0x36;     // header ends at 0x238: no cmdline_size, pref_address, init_size
  put16(image, 0x236, 0);  // bytes 0x236-0x237 are inside; XLF_KERNEL_64 cleared there
  auto refused = parse_header(image);
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnsupported);
  put16(image, 0x236, kXlfKernel64);
  auto h = parse_header(image);
  ASSERT_FALSE(h.has_value());  // init_size reads 0, smaller than the kernel
  EXPECT_EQ(h.error().code, ErrorCode::kMalformed);
  EXPECT_NE(std::string(h.error().message).find("init_size"), std::string::npos);
}

TEST(BzimageHeader, RefusesAMissingBootFlag) {
  auto image = make_bzimage();
  put16(image, 0x1fe, 0x1234);
  auto h = parse_header(image);
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(h.error().detail, 0x1234u);
  EXPECT_NE(std::string(h.error().message).find("0xAA55"), std::string::npos);
}

TEST(BzimageHeader, RefusesAMissingHdrSMagic) {
  auto image = make_bzimage();
  image[0x205] = 'Z';
  auto h = parse_header(image);
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().code, ErrorCode::kNotFound);
  EXPECT_NE(std::string(h.error().message).find("HdrS"), std::string::npos);
}

TEST(BzimageHeader, RefusesProtocol205) {
  ImageSpec spec;
  spec.version = 0x0205;
  auto h = parse_header(make_bzimage(spec));
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(h.error().detail, 0x0205u);
  EXPECT_NE(std::string(h.error().message).find("older than 2.06"), std::string::npos);
  spec.version = 0x0206;
  EXPECT_TRUE(parse_header(make_bzimage(spec)).has_value());
}

TEST(BzimageHeader, RefusesAKernelWithoutA64BitEntry) {
  ImageSpec spec;
  spec.xloadflags = kXlfCanBeLoadedAbove4G;
  auto h = parse_header(make_bzimage(spec));
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(std::string(h.error().message).find("XLF_KERNEL_64"), std::string::npos);
}

TEST(BzimageHeader, RefusesAZImageWithoutLoadedHigh) {
  ImageSpec spec;
  spec.loadflags = 0;
  auto h = parse_header(make_bzimage(spec));
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(std::string(h.error().message).find("LOADED_HIGH"), std::string::npos);
}

TEST(BzimageHeader, RefusesATruncatedProtectedModePart) {
  auto image = make_bzimage();  // 3000 bytes declared as syssize 188 (3008)
  image.resize(image.size() - 100);
  auto h = parse_header(image);
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().code, ErrorCode::kTruncated);
  EXPECT_EQ(h.error().detail, 3008u);
  EXPECT_NE(std::string(h.error().message).find("syssize"), std::string::npos);

  // Up to 15 bytes short of syssize * 16 is the paragraph rounding, not truncation.
  auto rounded = make_bzimage();
  rounded.resize(rounded.size() - 2);
  auto ok = parse_header(rounded);
  ASSERT_TRUE(ok.has_value()) << ok.error().message;
  EXPECT_EQ(ok->kernel_bytes, 2998u);

  // No protected-mode part at all.
  auto setup_only = make_bzimage();
  setup_only.resize(1024);
  auto none = parse_header(setup_only);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, ErrorCode::kTruncated);
  EXPECT_NE(std::string(none.error().message).find("protected-mode kernel"), std::string::npos);
}

TEST(BzimageHeader, RefusesAnImageShorterThanItsHeader) {
  const auto image = make_bzimage();
  const std::vector<uint8_t> inside_header(image.begin(), image.begin() + 0x240);  // header ends 0x26c
  auto h = parse_header(inside_header);
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().code, ErrorCode::kTruncated);
  EXPECT_EQ(h.error().detail, 0x26cu);
  EXPECT_NE(std::string(h.error().message).find("inside the setup header"), std::string::npos);

  const std::vector<uint8_t> tiny(image.begin(), image.begin() + 100);
  auto t = parse_header(tiny);
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code, ErrorCode::kTruncated);
  EXPECT_FALSE(looks_like_bzimage(tiny));
}

TEST(BzimageHeader, RefusesInitSizeBelowTheKernelAndABadAlignment) {
  ImageSpec small_init;
  small_init.init_size = 1000;
  auto h = parse_header(make_bzimage(small_init));
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().code, ErrorCode::kMalformed);
  EXPECT_EQ(h.error().detail, 1000u);

  ImageSpec odd_alignment;
  odd_alignment.kernel_alignment = 0x300000;
  auto a = parse_header(make_bzimage(odd_alignment));
  ASSERT_FALSE(a.has_value());
  EXPECT_EQ(a.error().code, ErrorCode::kMalformed);
  EXPECT_NE(std::string(a.error().message).find("power of two"), std::string::npos);
}

TEST(BzimageLoad, KernelLoadsAtPrefAddressWithInitSizeReserved) {
  Guest g(64);
  const auto image = make_bzimage();
  auto b = boot(g, image);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->kernel_address, 0x1000000u);
  EXPECT_EQ(b->kernel_end, 0x1400000u);
  EXPECT_EQ(std::memcmp(g.ram.data() + 0x1000000, image.data() + 1024, 3000), 0);
  EXPECT_EQ(g.ram[0x1000000 + 3000], 0xaa);  // nothing beyond the protected-mode part is written
  EXPECT_EQ(g.ram[0x1000000 - 1], 0xaa);
}

TEST(BzimageLoad, RelocatableKernelAlignsUpAndFixedKernelStaysPut) {
  ImageSpec aligned;
  aligned.pref_address = 0x1100000;
  aligned.kernel_alignment = 0x400000;
  Guest g1(64);
  auto b1 = boot(g1, make_bzimage(aligned));
  ASSERT_TRUE(b1.has_value()) << b1.error().message;
  EXPECT_EQ(b1->kernel_address, 0x1400000u);
  EXPECT_EQ(b1->entry.rip, 0x1400200u);

  ImageSpec small_alignment;  // kernel_alignment below 2 MiB is raised to 2 MiB
  small_alignment.pref_address = 0x1100000;
  small_alignment.kernel_alignment = 0x1000;
  Guest g2(64);
  auto b2 = boot(g2, make_bzimage(small_alignment));
  ASSERT_TRUE(b2.has_value()) << b2.error().message;
  EXPECT_EQ(b2->kernel_address, 0x1200000u);

  ImageSpec fixed;
  fixed.relocatable = 0;
  fixed.pref_address = 0x1100000;
  Guest g3(64);
  auto b3 = boot(g3, make_bzimage(fixed));
  ASSERT_TRUE(b3.has_value()) << b3.error().message;
  EXPECT_EQ(b3->kernel_address, 0x1100000u);

  ImageSpec too_low;
  too_low.relocatable = 0;
  too_low.pref_address = 0x10000;
  Guest g4(64);
  auto b4 = boot(g4, make_bzimage(too_low));
  ASSERT_FALSE(b4.has_value());
  EXPECT_EQ(b4.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(std::string(b4.error().message).find("below 1 MiB"), std::string::npos);
}

TEST(BzimageLoad, ZeroPageHoldsTheHeaderAndTheLoadersFields) {
  Guest g(64);
  ImageSpec spec;
  spec.loadflags = kLoadedHigh | kCanUseHeap | kQuietFlag;
  const auto image = make_bzimage(spec);
  const auto initrd = bytes_of(10000, 3);
  auto b = boot(g, image, initrd, "console=ttyS0 root=/dev/ram0");
  ASSERT_TRUE(b.has_value()) << b.error().message;
  const uint64_t zp = b->zero_page_address;
  EXPECT_EQ(zp, 0x8000u);

  // The setup header, copied from 0x1F1 to its end (0x26c), then the loader's writes.
  EXPECT_EQ(get8(g.ram, zp + 0x1f1), 1);
  EXPECT_EQ(get16(g.ram, zp + 0x1fe), 0xaa55);
  EXPECT_EQ(get32(g.ram, zp + 0x202), kHeaderMagic);
  EXPECT_EQ(get16(g.ram, zp + 0x206), 0x020f);
  EXPECT_EQ(get16(g.ram, zp + 0x236), kXlfKernel64 | kXlfCanBeLoadedAbove4G);
  EXPECT_EQ(get32(g.ram, zp + 0x238), 2047u);
  EXPECT_EQ(get64(g.ram, zp + 0x258), 0x1000000u);
  EXPECT_EQ(get32(g.ram, zp + 0x260), 0x400000u);
  EXPECT_EQ(get8(g.ram, zp + 0x210), 0xff);         // type_of_loader: undefined
  EXPECT_EQ(get8(g.ram, zp + 0x211), kLoadedHigh);  // no heap, not quiet
  EXPECT_EQ(get16(g.ram, zp + 0x224), 0);           // heap_end_ptr
  EXPECT_EQ(get32(g.ram, zp + 0x214), b->kernel_address);
  EXPECT_EQ(get32(g.ram, zp + 0x228), 0xa000u);  // cmd_line_ptr
  EXPECT_EQ(get32(g.ram, zp + 0x0c8), 0u);       // ext_cmd_line_ptr
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(g.ram.data() + 0xa000)),
            "console=ttyS0 root=/dev/ram0");
  EXPECT_EQ(get32(g.ram, zp + 0x218), b->initrd_address);
  EXPECT_EQ(get32(g.ram, zp + 0x21c), 10000u);
  EXPECT_EQ(get32(g.ram, zp + 0x0c0), 0u);
  EXPECT_EQ(get32(g.ram, zp + 0x0c4), 0u);
  // Everything else zero: screen_info, the sentinel at 0x1EF, past the header.
  EXPECT_EQ(get64(g.ram, zp + 0x000), 0u);
  EXPECT_EQ(get8(g.ram, zp + 0x1ef), 0);
  EXPECT_EQ(get32(g.ram, zp + 0x26c), 0u);
  EXPECT_EQ(get64(g.ram, zp + 0xff8), 0u);

  // e820: the five ranges of the guest memory map.
  EXPECT_EQ(get8(g.ram, zp + 0x1e8), 5);
  const uint64_t e = zp + 0x2d0;
  EXPECT_EQ(get64(g.ram, e + 0), 0u);
  EXPECT_EQ(get64(g.ram, e + 8), 0xa0000u);
  EXPECT_EQ(get32(g.ram, e + 16), 1u);
  EXPECT_EQ(get64(g.ram, e + 20), 0xa0000u);
  EXPECT_EQ(get64(g.ram, e + 28), 0x60000u);
  EXPECT_EQ(get32(g.ram, e + 36), 2u);
  EXPECT_EQ(get64(g.ram, e + 40), 0x100000u);
  EXPECT_EQ(get64(g.ram, e + 48), 63 * kMiB);
  EXPECT_EQ(get32(g.ram, e + 56), 1u);
  EXPECT_EQ(get64(g.ram, e + 80), 0xfee00000u);
  EXPECT_EQ(get64(g.ram, e + 100), 0u);  // nothing after the fifth entry
}

TEST(BzimageLoad, AHeaderClaimingToRunPastItsRoomIsCopiedOnlyTo0x290) {
  auto image = make_bzimage();
  image[0x201] = 0xff;  // header "ends" at 0x301, over the zero page's e820 table
  for (size_t off = 0x26c; off < 0x301; ++off) image[off] = 0x77;
  Guest g(64);
  auto b = boot(g, image);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->header.header_end, 0x301u);
  EXPECT_EQ(get8(g.ram, 0x8000 + 0x28f), 0x77);
  EXPECT_EQ(get8(g.ram, 0x8000 + 0x290), 0);
  EXPECT_EQ(get64(g.ram, 0x8000 + 0x2d0), 0u);  // the first e820 entry, base 0
  EXPECT_EQ(get64(g.ram, 0x8000 + 0x2d8), 0xa0000u);
}

TEST(BzimageLoad, InitrdAtTheTopOfRamPageAligned) {
  Guest g(64);
  const auto initrd = bytes_of(10000, 5);
  auto b = boot(g, make_bzimage(), initrd);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->initrd_address, 0x3ffd000u);  // (64 MiB - 10000) rounded down to 4 KiB
  EXPECT_EQ(b->initrd_address % 4096, 0u);
  EXPECT_EQ(b->initrd_size, 10000u);
  EXPECT_EQ(std::memcmp(g.ram.data() + b->initrd_address, initrd.data(), initrd.size()), 0);
}

TEST(BzimageLoad, InitrdStaysBelowInitrdAddrMax) {
  ImageSpec spec;
  spec.initrd_addr_max = 0x27fffff;  // last byte at 40 MiB - 1
  Guest g(64);
  const auto initrd = bytes_of(0x1800, 9);
  auto b = boot(g, make_bzimage(spec), initrd);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->initrd_address, 0x2800000u - 0x2000);
  EXPECT_LE(b->initrd_address + b->initrd_size - 1, 0x27fffffu);
  EXPECT_GE(b->initrd_address, b->kernel_end);
  EXPECT_EQ(get32(g.ram, 0x8000 + 0x218), 0x2800000u - 0x2000);
}

TEST(BzimageLoad, NoInitrdLeavesTheRamdiskFieldsZero) {
  Guest g(64);
  auto b = boot(g, make_bzimage());
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->initrd_address, 0u);
  EXPECT_EQ(b->initrd_size, 0u);
  EXPECT_EQ(get32(g.ram, 0x8000 + 0x218), 0u);
  EXPECT_EQ(get32(g.ram, 0x8000 + 0x21c), 0u);
  EXPECT_EQ(g.ram[64 * kMiB - 1], 0xaa);
}

class RamReader final : public GuestPhysicalReader {
 public:
  explicit RamReader(const std::vector<uint8_t>& ram) : ram_(ram) {}
  Result<uint64_t> read_u64(uint64_t gpa) const override {
    if (gpa + 8 > ram_.size()) return make_error(ErrorCode::kNotFound, "outside RAM");
    return get64(ram_, gpa);
  }
  Result<uint32_t> read_u32(uint64_t gpa) const override {
    if (gpa + 4 > ram_.size()) return make_error(ErrorCode::kNotFound, "outside RAM");
    return get32(ram_, gpa);
  }

 private:
  const std::vector<uint8_t>& ram_;
};

TEST(BzimageLoad, PageTablesIdentityMapTheFirst4GiBWith2MiBPages) {
  Guest g(64);
  auto b = boot(g, make_bzimage());
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->page_tables_address, 0x2000u);
  EXPECT_EQ(get64(g.ram, 0x2000), 0x3000u | 0x3);
  EXPECT_EQ(get64(g.ram, 0x2008), 0u);
  for (uint64_t i = 0; i < 4; ++i) EXPECT_EQ(get64(g.ram, 0x3000 + i * 8), (0x4000 + i * 0x1000) | 0x3) << i;
  EXPECT_EQ(get64(g.ram, 0x3000 + 4 * 8), 0u);
  for (uint64_t i = 0; i < 2048; ++i) {
    ASSERT_EQ(get64(g.ram, 0x4000 + i * 8), (i << 21) | 0x83) << i;  // P, R/W, PS
  }
  // The guest's view through its own page tables, as the CPU will walk them.
  RamReader reader(g.ram);
  GuestPagingState paging{b->entry.cr0, b->entry.cr3, b->entry.cr4, b->entry.efer};
  for (uint64_t linear : {0x0ull, 0x8000ull, 0x1000200ull, 0x3ffd123ull, 0xfee00000ull, 0xffffffffull}) {
    auto physical = guest_linear_to_physical(linear, paging, reader);
    ASSERT_TRUE(physical.has_value()) << std::hex << linear << " " << physical.error().message;
    EXPECT_EQ(*physical, linear);
  }
  EXPECT_FALSE(guest_linear_to_physical(1ull << 32, paging, reader).has_value());
}

TEST(BzimageLoad, GdtHoldsBootCsAndBootDs) {
  Guest g(64);
  auto b = boot(g, make_bzimage());
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(b->gdt_address, 0x1000u);
  EXPECT_EQ(get64(g.ram, 0x1000), 0u);
  EXPECT_EQ(get64(g.ram, 0x1008), 0u);
  const uint64_t cs = get64(g.ram, 0x1010);
  const uint64_t ds = get64(g.ram, 0x1018);
  EXPECT_EQ(cs, 0x00af9b000000ffffull);
  EXPECT_EQ(ds, 0x00cf93000000ffffull);
  // Decoded (SDM Vol. 3A Figure 3-8): type, S, P, L, D/B, G.
  EXPECT_EQ((cs >> 40) & 0xf, 0xbu);
  EXPECT_EQ((cs >> 44) & 1, 1u);
  EXPECT_EQ((cs >> 47) & 1, 1u);
  EXPECT_EQ((cs >> 53) & 1, 1u);  // L
  EXPECT_EQ((cs >> 54) & 1, 0u);  // D
  EXPECT_EQ((ds >> 40) & 0xf, 0x3u);
  EXPECT_EQ((ds >> 53) & 1, 0u);
  EXPECT_EQ((ds >> 54) & 1, 1u);
  EXPECT_EQ((ds >> 55) & 1, 1u);
}

TEST(BzimageLoad, EntryStateIsThe64BitBootProtocols) {
  Guest g(64);
  auto b = boot(g, make_bzimage());
  ASSERT_TRUE(b.has_value()) << b.error().message;
  const EntryState& s = b->entry;
  EXPECT_EQ(s.rip, 0x1000200u);
  EXPECT_EQ(s.rsi, 0x8000u);
  EXPECT_EQ(s.rsp, 0xa000u);
  EXPECT_EQ(s.rflags, 0x2u);
  EXPECT_EQ(s.cr0, kCr0Pe | kCr0Et | kCr0Pg);
  EXPECT_EQ(s.cr3, 0x2000u);
  EXPECT_EQ(s.cr4, 1u << 5);
  EXPECT_EQ(s.efer, (1u << 8) | (1u << 10));
  EXPECT_EQ(s.cs.selector, 0x10);
  EXPECT_TRUE(s.cs.long_mode);
  EXPECT_FALSE(s.cs.default_big);
  EXPECT_EQ(s.cs.type, kSegmentTypeCodeExecuteReadAccessed);
  EXPECT_TRUE(s.cs.code_or_data);
  for (const SegmentState* d : {&s.ds, &s.es, &s.ss, &s.fs, &s.gs}) {
    EXPECT_EQ(d->selector, 0x18);
    EXPECT_EQ(d->base, 0u);
    EXPECT_EQ(d->limit, 0xffffffffu);
    EXPECT_EQ(d->type, kSegmentTypeDataReadWriteAccessed);
    EXPECT_TRUE(d->default_big);
    EXPECT_FALSE(d->long_mode);
    EXPECT_TRUE(d->usable);
  }
  EXPECT_EQ(s.gdtr.base, 0x1000u);
  EXPECT_EQ(s.gdtr.limit, 0x1fu);
  EXPECT_EQ(s.idtr.limit, 0u);
  EXPECT_EQ(s.tr.type, kSegmentTypeTss32Busy);
  EXPECT_FALSE(s.tr.code_or_data);
  EXPECT_TRUE(s.tr.usable);
  EXPECT_FALSE(s.ldtr.usable);
  EXPECT_EQ(s.rax, 0u);
  EXPECT_EQ(s.rbx, 0u);
}

TEST(BzimageLoad, LeavesTheMpTableAreaAndTheVgaHoleAlone) {
  Guest g(64);
  auto b = boot(g, make_bzimage(), bytes_of(5000, 1), std::string(2047, 'x'));
  ASSERT_TRUE(b.has_value()) << b.error().message;
  for (uint64_t a = 0x9f000; a < 0x100000; ++a) ASSERT_EQ(g.ram[a], 0xaa) << std::hex << a;
  for (uint64_t a = 0; a < 0x1000; ++a) ASSERT_EQ(g.ram[a], 0xaa) << std::hex << a;
  EXPECT_EQ(g.ram[0xa000 + 2047], 0);  // the command line's NUL
}

TEST(BzimageLoad, RefusesACommandLineLongerThanCmdlineSize) {
  ImageSpec spec;
  spec.cmdline_size = 16;
  const auto image = make_bzimage(spec);
  Guest g(64);
  auto fits = boot(g, image, {}, "0123456789abcdef");  // exactly 16
  ASSERT_TRUE(fits.has_value()) << fits.error().message;
  auto b = boot(g, image, {}, "0123456789abcdefg");
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(b.error().detail, 16u);
  EXPECT_NE(std::string(b.error().message).find("cmdline_size"), std::string::npos);
}

TEST(BzimageLoad, RefusesGuestRamTooSmallForInitSize) {
  ImageSpec spec;
  spec.init_size = 20 * kMiB;
  Guest g(32);  // 16 MiB + 20 MiB does not fit in 32 MiB
  auto b = boot(g, make_bzimage(spec));
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code, ErrorCode::kOutOfMemory);
  EXPECT_EQ(b.error().detail, 20 * kMiB);
  EXPECT_NE(std::string(b.error().message).find("init_size"), std::string::npos);

  Guest tiny(16);  // pref_address 16 MiB is past the end of RAM
  auto t = boot(tiny, make_bzimage());
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code, ErrorCode::kOutOfMemory);
  EXPECT_NE(std::string(t.error().message).find("raise mem="), std::string::npos);

  Guest enough(36);
  EXPECT_TRUE(boot(enough, make_bzimage(spec)).has_value());
}

TEST(BzimageLoad, RefusesAnInitrdThatDoesNotFit) {
  Guest g(32);  // kernel 16-20 MiB: 12 MiB left above it
  auto b = boot(g, make_bzimage(), bytes_of(13 * kMiB, 2));
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code, ErrorCode::kOutOfMemory);
  EXPECT_EQ(b.error().detail, 13 * kMiB);
  EXPECT_NE(std::string(b.error().message).find("initrd"), std::string::npos);

  ImageSpec low_max;  // initrd_addr_max below the kernel's end
  low_max.initrd_addr_max = 0x13fffff;
  Guest g2(64);
  auto c = boot(g2, make_bzimage(low_max), bytes_of(4096, 2));
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code, ErrorCode::kOutOfMemory);

  Guest g3(32);
  auto fits = boot(g3, make_bzimage(), bytes_of(12 * kMiB, 2));
  ASSERT_TRUE(fits.has_value()) << fits.error().message;
  EXPECT_EQ(fits->initrd_address, 20 * kMiB);
}

TEST(BzimageLoad, RefusesAMapLargerThanTheMemoryGiven) {
  std::vector<uint8_t> ram(16 * kMiB);
  ByteSpanGuestMemory memory(ram);
  auto map = GuestMemoryMap::for_ram(64 * kMiB);
  ASSERT_TRUE(map.has_value());
  const auto image = make_bzimage();
  BootRequest request;
  request.kernel = image;
  auto b = load(request, *map, memory);
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace

TEST(BzImageCmdline, TscEarlyKhzIsAppended) {
  EXPECT_EQ(with_tsc_early_khz("console=ttyS0 acpi=off", 2'000'000), "console=ttyS0 acpi=off tsc_early_khz=2000000");
  EXPECT_EQ(with_tsc_early_khz("", 20'000), "tsc_early_khz=20000");
  EXPECT_EQ(with_tsc_early_khz("quiet", 0), "quiet tsc_early_khz=0");
}

TEST(BzImageCmdline, TheUsersOwnTscEarlyKhzWins) {
  EXPECT_EQ(with_tsc_early_khz("console=ttyS0 tsc_early_khz=1234", 2'000'000), "console=ttyS0 tsc_early_khz=1234");
  EXPECT_EQ(with_tsc_early_khz("tsc_early_khz=1234 quiet", 2'000'000), "tsc_early_khz=1234 quiet");
  // Only a whole parameter counts: "xtsc_early_khz=" is another one.
  EXPECT_EQ(with_tsc_early_khz("xtsc_early_khz=5", 7), "xtsc_early_khz=5 tsc_early_khz=7");
}

}  // namespace lantern::guest
