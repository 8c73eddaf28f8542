// Host tests for the Multiboot2 boot information parser (kernel/boot/multiboot2.h) and the
// kernel command line helpers (kernel/boot/cmdline.h).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "kernel/boot/cmdline.h"
#include "kernel/boot/multiboot2.h"

namespace lantern::multiboot2 {
namespace {

// Builds a boot information structure the way a loader lays it out (spec 3.6.2): fixed part,
// tags padded to 8 bytes, end tag. total_size is patched in by bytes().
class Builder {
 public:
  Builder() { buf_.resize(8, 0); }

  Builder& tag(uint32_t type, const std::vector<uint8_t>& payload) {
    put32(type);
    put32(static_cast<uint32_t>(8 + payload.size()));
    buf_.insert(buf_.end(), payload.begin(), payload.end());
    pad();
    return *this;
  }
  Builder& string_tag(uint32_t type, std::string_view s) {
    std::vector<uint8_t> p(s.begin(), s.end());
    p.push_back(0);
    return tag(type, p);
  }
  Builder& cmdline(std::string_view s) { return string_tag(1, s); }
  Builder& loader_name(std::string_view s) { return string_tag(2, s); }
  Builder& module(uint32_t start, uint32_t end, std::string_view s) {
    std::vector<uint8_t> p;
    append32(p, start);
    append32(p, end);
    p.insert(p.end(), s.begin(), s.end());
    p.push_back(0);
    return tag(3, p);
  }
  Builder& meminfo(uint32_t lower, uint32_t upper) {
    std::vector<uint8_t> p;
    append32(p, lower);
    append32(p, upper);
    return tag(4, p);
  }
  struct Entry {
    uint64_t base, length;
    uint32_t type;
  };
  Builder& mmap(const std::vector<Entry>& entries, uint32_t entry_size = 24) {
    std::vector<uint8_t> p;
    append32(p, entry_size);
    append32(p, 0);  // entry_version
    for (const Entry& e : entries) {
      std::vector<uint8_t> raw;
      append64(raw, e.base);
      append64(raw, e.length);
      append32(raw, e.type);
      append32(raw, 0);
      raw.resize(entry_size, 0xEE);  // larger entry_size: trailing bytes to skip
      p.insert(p.end(), raw.begin(), raw.end());
    }
    return tag(6, p);
  }
  Builder& framebuffer(uint64_t addr, uint32_t pitch, uint32_t w, uint32_t h, uint8_t bpp, uint8_t type) {
    std::vector<uint8_t> p;
    append64(p, addr);
    append32(p, pitch);
    append32(p, w);
    append32(p, h);
    p.push_back(bpp);
    p.push_back(type);
    p.push_back(0);  // reserved
    p.push_back(0);
    return tag(8, p);
  }
  Builder& rsdp(uint32_t type, size_t len, uint8_t fill) {
    std::vector<uint8_t> p(len);
    for (size_t i = 0; i < len; ++i) p[i] = static_cast<uint8_t>(fill + i);
    return tag(type, p);
  }
  Builder& end() {
    put32(0);
    put32(8);
    return *this;
  }
  // Raw bytes with no padding (to build broken layouts).
  Builder& raw32(uint32_t v) {
    put32(v);
    return *this;
  }
  size_t size() const { return buf_.size(); }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out = buf_;
    const uint32_t total = static_cast<uint32_t>(out.size());
    std::memcpy(out.data(), &total, 4);
    return out;
  }

  static void append32(std::vector<uint8_t>& v, uint32_t x) {
    for (int i = 0; i < 4; ++i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
  }
  static void append64(std::vector<uint8_t>& v, uint64_t x) {
    append32(v, static_cast<uint32_t>(x));
    append32(v, static_cast<uint32_t>(x >> 32));
  }

 private:
  void put32(uint32_t x) { append32(buf_, x); }
  void pad() {
    while (buf_.size() % 8 != 0) buf_.push_back(0);
  }
  std::vector<uint8_t> buf_;
};

// 8-byte aligned copy of a blob (the parser requires the alignment, spec 3.6.2).
class Aligned {
 public:
  explicit Aligned(const std::vector<uint8_t>& bytes, size_t misalign = 0)
      : words_((bytes.size() + misalign + 7) / 8 + 1), size_(bytes.size()), misalign_(misalign) {
    if (!bytes.empty()) std::memcpy(data(), bytes.data(), bytes.size());
  }
  uint8_t* data() { return reinterpret_cast<uint8_t*>(words_.data()) + misalign_; }
  std::span<const uint8_t> span(size_t n) { return {data(), n}; }
  std::span<const uint8_t> span() { return span(size_); }
  void set32(size_t off, uint32_t v) { std::memcpy(data() + off, &v, 4); }

 private:
  std::vector<uint64_t> words_;
  size_t size_;
  size_t misalign_;
};

void expect_error(const Result<BootInfo>& r, ErrorCode code, uint64_t detail, std::string_view message_part) {
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_EQ(r.error().detail, detail) << r.error().message;
  EXPECT_NE(std::string(r.error().message).find(message_part), std::string::npos) << r.error().message;
}

Builder full_builder() {
  Builder b;
  b.cmdline("loglevel=4 selftest ip=10.0.2.15")
      .loader_name("GRUB 2.06")
      .meminfo(639, 523136)
      .mmap({{0, 0x9fc00, 1},
             {0x9fc00, 0x400, 2},
             {0x100000, 0x7ee0000, 1},
             {0x7fe0000, 0x20000, 3},
             {0xfffc0000, 0x40000, 2},
             {0x100000000, 0x40000000, 1}})
      .module(0x200000, 0x280000, "guest-linux console=ttyS0")
      .module(0x280000, 0x280000, "")
      .framebuffer(0xfd000000, 4096, 1024, 768, 32, 1)
      .tag(9, {1, 2, 3, 4})  // ELF symbols: skipped
      .tag(0x1234, {})       // unknown type: skipped
      .rsdp(14, 20, 0x10)
      .rsdp(15, 36, 0x40)
      .end();
  return b;
}

TEST(Multiboot2Parse, HappyPathAllTags) {
  Aligned blob(full_builder().bytes());
  Result<BootInfo> r = parse(blob.span());
  ASSERT_TRUE(r.has_value()) << r.error().message << " @" << r.error().detail;
  const BootInfo& info = *r;
  EXPECT_EQ(info.total_size, full_builder().size());
  ASSERT_TRUE(info.cmdline.has_value());
  EXPECT_EQ(*info.cmdline, "loglevel=4 selftest ip=10.0.2.15");
  ASSERT_TRUE(info.boot_loader_name.has_value());
  EXPECT_EQ(*info.boot_loader_name, "GRUB 2.06");
  ASSERT_TRUE(info.basic_meminfo.has_value());
  EXPECT_EQ(info.basic_meminfo->lower_kib, 639u);
  EXPECT_EQ(info.basic_meminfo->upper_kib, 523136u);

  ASSERT_TRUE(info.has_memory_map);
  ASSERT_EQ(info.memory_map().size(), 6u);
  EXPECT_EQ(info.memory_map()[2].base, 0x100000u);
  EXPECT_EQ(info.memory_map()[2].length, 0x7ee0000u);
  EXPECT_TRUE(info.memory_map()[2].available());
  EXPECT_EQ(info.memory_map()[3].type, static_cast<uint32_t>(MemoryType::kAcpiReclaimable));
  EXPECT_EQ(info.memory_map()[5].base, 0x100000000u);
  EXPECT_EQ(info.usable_memory_bytes(), 0x9fc00u + 0x7ee0000u + 0x40000000u);

  ASSERT_EQ(info.modules().size(), 2u);
  EXPECT_EQ(info.modules()[0].start, 0x200000u);
  EXPECT_EQ(info.modules()[0].end, 0x280000u);
  EXPECT_EQ(info.modules()[0].size(), 0x80000u);
  EXPECT_EQ(info.modules()[0].cmdline, "guest-linux console=ttyS0");
  EXPECT_EQ(info.modules()[1].cmdline, "");
  EXPECT_EQ(info.modules()[1].size(), 0u);

  ASSERT_TRUE(info.framebuffer.has_value());
  EXPECT_EQ(info.framebuffer->addr, 0xfd000000u);
  EXPECT_EQ(info.framebuffer->pitch, 4096u);
  EXPECT_EQ(info.framebuffer->width, 1024u);
  EXPECT_EQ(info.framebuffer->height, 768u);
  EXPECT_EQ(info.framebuffer->bpp, 32u);
  EXPECT_EQ(info.framebuffer->type, 1u);

  ASSERT_TRUE(info.acpi_rsdp.has_value());
  EXPECT_EQ(info.acpi_rsdp->version, 2u);
  ASSERT_EQ(info.acpi_rsdp->bytes().size(), 36u);
  for (size_t i = 0; i < 36; ++i) EXPECT_EQ(info.acpi_rsdp->bytes()[i], 0x40 + i);
}

TEST(Multiboot2Parse, StringsPointIntoBlob) {
  Aligned blob(full_builder().bytes());
  Result<BootInfo> r = parse(blob.span());
  ASSERT_TRUE(r.has_value());
  const uint8_t* p = reinterpret_cast<const uint8_t*>(r->cmdline->data());
  EXPECT_GE(p, blob.data());
  EXPECT_LT(p, blob.data() + blob.span().size());
}

TEST(Multiboot2Parse, OnlyEndTag) {
  Aligned blob(Builder().end().bytes());
  Result<BootInfo> r = parse(blob.span());
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->cmdline.has_value());
  EXPECT_FALSE(r->has_memory_map);
  EXPECT_FALSE(r->acpi_rsdp.has_value());
  EXPECT_EQ(r->modules().size(), 0u);
  EXPECT_EQ(r->usable_memory_bytes(), 0u);
}

TEST(Multiboot2Parse, OldRsdpOnly) {
  Aligned blob(Builder().rsdp(14, 20, 0x80).end().bytes());
  Result<BootInfo> r = parse(blob.span());
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->acpi_rsdp.has_value());
  EXPECT_EQ(r->acpi_rsdp->version, 1u);
  ASSERT_EQ(r->acpi_rsdp->bytes().size(), 20u);
  EXPECT_EQ(r->acpi_rsdp->bytes()[0], 0x80u);
  EXPECT_EQ(r->acpi_rsdp->bytes()[19], 0x80u + 19);
}

TEST(Multiboot2Parse, NewRsdpWinsWhateverTheOrder) {
  Aligned blob(Builder().rsdp(15, 36, 0x40).rsdp(14, 20, 0x10).end().bytes());
  Result<BootInfo> r = parse(blob.span());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->acpi_rsdp->version, 2u);
  EXPECT_EQ(r->acpi_rsdp->bytes().size(), 36u);
  EXPECT_EQ(r->acpi_rsdp->bytes()[0], 0x40u);
}

TEST(Multiboot2Parse, LargerMmapEntrySizeIsHonoured) {
  Aligned blob(Builder().mmap({{0x100000, 0x1000, 1}, {0x200000, 0x3000, 2}}, 40).end().bytes());
  Result<BootInfo> r = parse(blob.span());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  ASSERT_EQ(r->memory_map().size(), 2u);
  EXPECT_EQ(r->memory_map()[1].base, 0x200000u);
  EXPECT_EQ(r->memory_map()[1].length, 0x3000u);
  EXPECT_EQ(r->memory_map()[1].type, 2u);
}

TEST(Multiboot2Parse, BytesAfterEndTagAndTotalSizeIgnored) {
  Builder b;
  b.cmdline("a").end();
  std::vector<uint8_t> bytes = b.bytes();
  // Junk after total_size: the span is longer than the structure.
  bytes.insert(bytes.end(), {0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x00});
  Aligned blob(bytes);
  Result<BootInfo> r = parse(blob.span());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r->cmdline, "a");
  EXPECT_EQ(r->total_size, bytes.size() - 8);
}

TEST(Multiboot2Parse, ParseIntoResetsPreviousContents) {
  Aligned full(full_builder().bytes());
  BootInfo info;
  ASSERT_TRUE(parse_into(full.span(), info).has_value());
  ASSERT_EQ(info.modules().size(), 2u);
  Aligned empty(Builder().end().bytes());
  ASSERT_TRUE(parse_into(empty.span(), info).has_value());
  EXPECT_EQ(info.modules().size(), 0u);
  EXPECT_FALSE(info.cmdline.has_value());
  EXPECT_EQ(info.memory_map().size(), 0u);
}

TEST(Multiboot2Parse, MaxMemoryMapEntriesAndModulesAccepted) {
  std::vector<Builder::Entry> entries;
  for (uint64_t i = 0; i < BootInfo::kMaxMemoryMapEntries; ++i) {
    entries.push_back({i * 0x10000, 0x1000, 1});
  }
  Builder b;
  b.mmap(entries);
  for (uint32_t i = 0; i < BootInfo::kMaxModules; ++i) b.module(i * 0x1000, i * 0x1000 + 1, "m");
  Aligned blob(b.end().bytes());
  Result<BootInfo> r = parse(blob.span());
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->memory_map().size(), BootInfo::kMaxMemoryMapEntries);
  EXPECT_EQ(r->modules().size(), BootInfo::kMaxModules);
  EXPECT_EQ(r->usable_memory_bytes(), 0x1000u * BootInfo::kMaxMemoryMapEntries);
}

TEST(Multiboot2BootInfo, UsableMemorySaturates) {
  Aligned blob(Builder().mmap({{0, UINT64_MAX - 5, 1}, {0, 100, 1}, {0, 1000, 2}}).end().bytes());
  Result<BootInfo> r = parse(blob.span());
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->usable_memory_bytes(), UINT64_MAX);
}

// ---- Malformed structures ----------------------------------------------------------------

TEST(Multiboot2Malformed, BlobShorterThanFixedPart) {
  Aligned blob(std::vector<uint8_t>{16, 0, 0, 0, 0, 0, 0});
  expect_error(parse(blob.span()), ErrorCode::kTruncated, 7, "fixed part");
  expect_error(parse(std::span<const uint8_t>()), ErrorCode::kTruncated, 0, "fixed part");
}

TEST(Multiboot2Malformed, TotalSizeBelowEight) {
  Aligned blob(Builder().end().bytes());
  blob.set32(0, 4);
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 4, "total_size below 8");
}

TEST(Multiboot2Malformed, TotalSizeExceedsBlob) {
  std::vector<uint8_t> bytes = Builder().cmdline("x").end().bytes();
  Aligned blob(bytes);
  expect_error(parse(blob.span(bytes.size() - 1)), ErrorCode::kTruncated, bytes.size(), "total_size exceeds");
}

TEST(Multiboot2Malformed, TagRunsPastTotalSize) {
  Builder b;
  b.cmdline("hello").end();
  Aligned blob(b.bytes());
  blob.set32(12, 64);  // cmdline tag (at offset 8) claims 64 bytes; total_size is 32
  expect_error(parse(blob.span()), ErrorCode::kTruncated, 8, "tag runs past");
}

TEST(Multiboot2Malformed, TagHeaderRunsPastTotalSize) {
  Builder b;
  b.cmdline("hello").raw32(0);  // 4 bytes of a header, then total_size
  Aligned blob(b.bytes());
  expect_error(parse(blob.span()), ErrorCode::kTruncated, 24, "header runs past");
}

TEST(Multiboot2Malformed, MisalignedStructure) {
  std::vector<uint8_t> bytes = Builder().end().bytes();
  Aligned blob(bytes, 4);
  Result<BootInfo> r = parse(blob.span());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kMalformed);
  EXPECT_EQ(r.error().detail, reinterpret_cast<uintptr_t>(blob.data()));
}

TEST(Multiboot2Malformed, MisalignedTagPaddingPastTotalSize) {
  // A 12-byte tag ending exactly at total_size: the next tag would start at the 8-byte
  // boundary 4 bytes past the end.
  Builder b;
  b.raw32(0x77).raw32(12).raw32(0xabcd);
  Aligned blob(b.bytes());
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 8, "padding");
}

TEST(Multiboot2Malformed, UnpaddedTagsDoNotParse) {
  // A loader that forgets the padding: an unknown 12-byte tag immediately followed by an end
  // tag at offset 20. The parser looks for the next tag at offset 24 and finds the end tag's
  // size field (8) as a type and 0 as a size.
  Builder b;
  b.raw32(0x77).raw32(12).raw32(0xabcd).raw32(0).raw32(8).raw32(0);
  Aligned blob(b.bytes());
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 24, "size below 8");
}

TEST(Multiboot2Malformed, MissingEndTag) {
  Aligned blob(Builder().cmdline("no end").meminfo(1, 2).bytes());
  Result<BootInfo> r = parse(blob.span());
  expect_error(r, ErrorCode::kMalformed, Builder().cmdline("no end").meminfo(1, 2).size(), "no end tag");
}

TEST(Multiboot2Malformed, EndTagWithWrongSize) {
  Builder b;
  b.raw32(0).raw32(16).raw32(0).raw32(0);
  Aligned blob(b.bytes());
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 8, "end tag size");
}

TEST(Multiboot2Malformed, ZeroSizeTag) {
  Builder b;
  b.cmdline("ok").raw32(5).raw32(0).end();
  Aligned blob(b.bytes());
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 24, "size below 8");
}

TEST(Multiboot2Malformed, MmapEntrySizeTooSmall) {
  for (uint32_t entry_size : {0u, 8u, 16u, 23u}) {
    std::vector<uint8_t> p;
    Builder::append32(p, entry_size);
    Builder::append32(p, 0);
    p.resize(p.size() + 48, 0);
    Aligned blob(Builder().tag(6, p).end().bytes());
    expect_error(parse(blob.span()), ErrorCode::kMalformed, 8 + 8, "entry_size below 24");
  }
}

TEST(Multiboot2Malformed, MmapPartialEntry) {
  std::vector<uint8_t> p;
  Builder::append32(p, 24);
  Builder::append32(p, 0);
  p.resize(p.size() + 24 + 16, 0);  // one entry and two thirds of another
  Aligned blob(Builder().tag(6, p).end().bytes());
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 8, "do not fit");
}

TEST(Multiboot2Malformed, MmapTagTooSmallForHeader) {
  Aligned blob(Builder().tag(6, {24, 0, 0, 0}).end().bytes());
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 8, "memory map tag too small");
}

TEST(Multiboot2Malformed, TooManyMmapEntries) {
  std::vector<Builder::Entry> entries(BootInfo::kMaxMemoryMapEntries + 1, {0, 0x1000, 1});
  Aligned blob(Builder().cmdline("c").mmap(entries).end().bytes());
  expect_error(parse(blob.span()), ErrorCode::kFull, 24, "more entries");
}

TEST(Multiboot2Malformed, TooManyModules) {
  Builder b;
  for (uint32_t i = 0; i <= BootInfo::kMaxModules; ++i) b.module(0, 1, "");
  Aligned blob(b.end().bytes());
  // Each module tag with an empty string is 17 bytes, padded to 24.
  expect_error(parse(blob.span()), ErrorCode::kFull, 8 + 24 * BootInfo::kMaxModules, "more modules");
}

TEST(Multiboot2Malformed, UnterminatedCmdline) {
  Aligned blob(Builder().cmdline("ok").tag(1, {'a', 'b', 'c'}).end().bytes());
  // A second cmdline would also be a duplicate; use the loader name tag for the string check.
  Aligned blob2(Builder().tag(2, {'a', 'b', 'c'}).end().bytes());
  expect_error(parse(blob2.span()), ErrorCode::kMalformed, 8, "not NUL-terminated");
  Aligned blob3(Builder().tag(1, {'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'}).end().bytes());
  expect_error(parse(blob3.span()), ErrorCode::kMalformed, 8, "not NUL-terminated");
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 8 + 16, "duplicate");
}

TEST(Multiboot2Malformed, EmptyStringTagHasNoRoomForNul) {
  Aligned blob(Builder().tag(1, {}).end().bytes());
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 8, "too small for its string");
}

TEST(Multiboot2Malformed, UnterminatedModuleString) {
  std::vector<uint8_t> p;
  Builder::append32(p, 0x1000);
  Builder::append32(p, 0x2000);
  p.push_back('x');
  p.push_back('y');
  Aligned blob(Builder().tag(3, p).end().bytes());
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 8, "not NUL-terminated");
}

TEST(Multiboot2Malformed, ModuleTooSmall) {
  Aligned blob(Builder().tag(3, {0, 0, 0, 0}).end().bytes());
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 8, "module tag too small");
}

TEST(Multiboot2Malformed, ModuleEndBelowStart) {
  Aligned blob(Builder().meminfo(1, 2).module(0x3000, 0x2fff, "m").end().bytes());
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 24 + 12, "end is below");
}

TEST(Multiboot2Malformed, SmallFixedTags) {
  Aligned meminfo(Builder().tag(4, {1, 0, 0, 0}).end().bytes());
  expect_error(parse(meminfo.span()), ErrorCode::kMalformed, 8, "meminfo tag too small");
  Aligned fb(Builder().tag(8, std::vector<uint8_t>(21, 0)).end().bytes());
  expect_error(parse(fb.span()), ErrorCode::kMalformed, 8, "framebuffer tag too small");
  Aligned old_rsdp(Builder().rsdp(14, 19, 0).end().bytes());
  expect_error(parse(old_rsdp.span()), ErrorCode::kMalformed, 8, "RSDP tag too small");
  Aligned new_rsdp(Builder().rsdp(15, 20, 0).end().bytes());
  expect_error(parse(new_rsdp.span()), ErrorCode::kMalformed, 8, "RSDP tag too small");
}

TEST(Multiboot2Malformed, DuplicateMemoryMap) {
  Aligned blob(Builder().mmap({{0, 1, 1}}).mmap({{0, 2, 1}}).end().bytes());
  expect_error(parse(blob.span()), ErrorCode::kMalformed, 8 + 40, "duplicate");
}

// ---- Fuzz-style robustness (run under ASan/UBSan with LANTERN_SANITIZE=ON) ----------------

TEST(Multiboot2Fuzz, EveryTruncationLengthFailsCleanly) {
  const std::vector<uint8_t> bytes = full_builder().bytes();
  for (size_t n = 0; n < bytes.size(); ++n) {
    // (a) The span is cut but total_size still claims the full size.
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(n));
    Aligned a(cut);
    Result<BootInfo> ra = parse(a.span());
    EXPECT_FALSE(ra.has_value()) << "length " << n;
    // (b) total_size patched to the truncated length, so the tag walk goes deeper.
    if (n >= 4) {
      Aligned b(cut);
      b.set32(0, static_cast<uint32_t>(n));
      Result<BootInfo> rb = parse(b.span());
      EXPECT_FALSE(rb.has_value()) << "patched length " << n;
    }
  }
  Aligned whole(bytes);
  EXPECT_TRUE(parse(whole.span()).has_value());
}

TEST(Multiboot2Fuzz, RandomMutationsNeverCrash) {
  const std::vector<uint8_t> bytes = full_builder().bytes();
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;  // Knuth MMIX LCG
    return static_cast<uint32_t>(state >> 33);
  };
  size_t accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> m = bytes;
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int f = 0; f < flips; ++f) {
      m[next() % m.size()] = static_cast<uint8_t>(next());
    }
    Aligned blob(m);
    Result<BootInfo> r = parse(blob.span());
    if (r.has_value()) {
      ++accepted;
      // Whatever was accepted must lie within the blob.
      EXPECT_LE(r->total_size, m.size());
      if (r->cmdline) {
        const auto* p = reinterpret_cast<const uint8_t*>(r->cmdline->data());
        EXPECT_GE(p, blob.data());
        EXPECT_LE(p + r->cmdline->size(), blob.data() + m.size());
      }
      EXPECT_LE(r->memory_map().size(), BootInfo::kMaxMemoryMapEntries);
      for (const Module& mod : r->modules()) EXPECT_LE(mod.start, mod.end);
    }
  }
  // Mutations in string bytes/addresses keep the structure valid: some must be accepted.
  EXPECT_GT(accepted, 0u);
}

}  // namespace
}  // namespace lantern::multiboot2

// ---- Command line helpers ----------------------------------------------------------------

namespace lantern {
namespace {

TEST(CmdlineValue, KeyValueAndBareFlag) {
  constexpr std::string_view c = "loglevel=4 selftest ip=10.0.2.15/24 console.token=abc";
  EXPECT_EQ(cmdline_value(c, "loglevel"), std::optional<std::string_view>("4"));
  EXPECT_EQ(cmdline_value(c, "ip"), std::optional<std::string_view>("10.0.2.15/24"));
  EXPECT_EQ(cmdline_value(c, "console.token"), std::optional<std::string_view>("abc"));
  ASSERT_TRUE(cmdline_value(c, "selftest").has_value());
  EXPECT_TRUE(cmdline_value(c, "selftest")->empty());
  EXPECT_FALSE(cmdline_value(c, "missing").has_value());
}

TEST(CmdlineValue, KeyMustMatchWholeWord) {
  constexpr std::string_view c = "loglevel2=3 xselftest log";
  EXPECT_FALSE(cmdline_value(c, "loglevel").has_value());
  EXPECT_FALSE(cmdline_value(c, "selftest").has_value());
  EXPECT_FALSE(cmdline_value(c, "lo").has_value());
  EXPECT_EQ(cmdline_value(c, "loglevel2"), std::optional<std::string_view>("3"));
  EXPECT_EQ(cmdline_value(c, "log"), std::optional<std::string_view>(""));
}

TEST(CmdlineValue, LastOccurrenceWins) {
  EXPECT_EQ(cmdline_value("a=1 b=2 a=3", "a"), std::optional<std::string_view>("3"));
  EXPECT_EQ(cmdline_value("a=1 a", "a"), std::optional<std::string_view>(""));
}

TEST(CmdlineValue, ValueMayContainEquals) {
  EXPECT_EQ(cmdline_value("opt=x=y=z", "opt"), std::optional<std::string_view>("x=y=z"));
  EXPECT_EQ(cmdline_value("ip= next", "ip"), std::optional<std::string_view>(""));
}

TEST(CmdlineValue, WhitespaceAndEdges) {
  EXPECT_EQ(cmdline_value("  \t a=1\t\tb=2 \n", "b"), std::optional<std::string_view>("2"));
  EXPECT_EQ(cmdline_value("  \t a=1\t\tb=2 \n", "a"), std::optional<std::string_view>("1"));
  EXPECT_FALSE(cmdline_value("", "a").has_value());
  EXPECT_FALSE(cmdline_value("   ", "a").has_value());
  EXPECT_FALSE(cmdline_value("a=1", "").has_value());
  EXPECT_FALSE(cmdline_value("=5", "").has_value());
}

TEST(CmdlineHasFlag, PresenceAndFalseValues) {
  EXPECT_TRUE(cmdline_has_flag("selftest", "selftest"));
  EXPECT_TRUE(cmdline_has_flag("x selftest=1", "selftest"));
  EXPECT_TRUE(cmdline_has_flag("selftest=yes", "selftest"));
  EXPECT_FALSE(cmdline_has_flag("selftest=0", "selftest"));
  EXPECT_FALSE(cmdline_has_flag("selftest=off", "selftest"));
  EXPECT_FALSE(cmdline_has_flag("selftest=no", "selftest"));
  EXPECT_FALSE(cmdline_has_flag("selftest=false", "selftest"));
  EXPECT_FALSE(cmdline_has_flag("selftests", "selftest"));
  EXPECT_FALSE(cmdline_has_flag("", "selftest"));
  EXPECT_TRUE(cmdline_has_flag("selftest=0 selftest", "selftest"));  // last wins
}

TEST(CmdlineU64, DecimalHexAndErrors) {
  EXPECT_EQ(cmdline_u64("loglevel=4", "loglevel"), std::optional<uint64_t>(4));
  EXPECT_EQ(cmdline_u64("mem=0x1F000", "mem"), std::optional<uint64_t>(0x1f000));
  EXPECT_EQ(cmdline_u64("mem=0XfF", "mem"), std::optional<uint64_t>(0xff));
  EXPECT_EQ(cmdline_u64("n=18446744073709551615", "n"), std::optional<uint64_t>(UINT64_MAX));
  EXPECT_EQ(cmdline_u64("n=0xffffffffffffffff", "n"), std::optional<uint64_t>(UINT64_MAX));
  EXPECT_FALSE(cmdline_u64("n=18446744073709551616", "n").has_value());
  EXPECT_FALSE(cmdline_u64("n=0x10000000000000000", "n").has_value());
  EXPECT_FALSE(cmdline_u64("n=12a", "n").has_value());
  EXPECT_FALSE(cmdline_u64("n=0x", "n").has_value());
  EXPECT_FALSE(cmdline_u64("n=", "n").has_value());
  EXPECT_FALSE(cmdline_u64("n", "n").has_value());
  EXPECT_FALSE(cmdline_u64("m=1", "n").has_value());
  EXPECT_FALSE(cmdline_u64("n=-1", "n").has_value());
  EXPECT_EQ(cmdline_u64("n=0", "n"), std::optional<uint64_t>(0));
}

}  // namespace
}  // namespace lantern
