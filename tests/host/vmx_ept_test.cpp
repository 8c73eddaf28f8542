#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <map>
#include <memory>

#include "guest/nested_paging.h"

namespace lantern::vmx {
namespace {

// The EPT format of the nested-paging builder (guest/nested_paging.h), under its VMX names.
using namespace lantern::guest;
using EptBuilder = NestedPageTableBuilder;
using EptFeatures = NestedPagingFeatures;
using EptMemoryType = MemoryType;
using EptMapMode = MapMode;
constexpr uint8_t kEptRead = kAccessRead;
constexpr uint8_t kEptWrite = kAccessWrite;
constexpr uint8_t kEptExecute = kAccessExecute;
constexpr uint8_t kEptRwx = kAccessRwx;

// Pages live in host memory; "physical" addresses are handed out from 0x100000 upwards.
class FakePageAllocator final : public PageAllocator {
 public:
  Result<uint64_t> alloc_zeroed_page() override {
    if (fail_after >= 0 && allocations >= fail_after) {
      return make_error(ErrorCode::kOutOfMemory, "fake allocator exhausted");
    }
    ++allocations;
    const uint64_t phys = next_phys_;
    next_phys_ += kPageSize4K;
    auto page = std::make_unique<Page>();
    page->words.fill(0);
    pages_[phys] = std::move(page);
    return phys + (hand_out_unaligned ? 8 : 0);
  }
  void* phys_to_virt(uint64_t phys) override {
    auto it = pages_.find(phys);
    if (it == pages_.end()) {
      ADD_FAILURE() << "phys_to_virt of an unknown page " << std::hex << phys;
      return &scratch_;
    }
    return it->second->words.data();
  }
  void free_page(uint64_t phys) override {
    ++frees;
    if (pages_.erase(phys) != 1) ADD_FAILURE() << "free_page of an unknown page " << std::hex << phys;
  }
  size_t live_pages() const { return pages_.size(); }
  // The entry at `index` of the table at `phys`.
  uint64_t entry(uint64_t phys, unsigned index) {
    return static_cast<uint64_t*>(phys_to_virt(phys & ept_entry::kAddressMask))[index];
  }

  int allocations = 0;
  int frees = 0;
  int fail_after = -1;
  bool hand_out_unaligned = false;

 private:
  struct Page {
    alignas(4096) std::array<uint64_t, 512> words;
  };
  std::map<uint64_t, std::unique_ptr<Page>> pages_;
  uint64_t next_phys_ = 0x100000;
  Page scratch_{};
};

constexpr EptFeatures kAllPages{true, true, false, 46};
constexpr EptFeatures kOnly4K{false, false, false, 46};
constexpr uint64_t kGiB = kPageSize1G;
constexpr uint64_t kMiB2 = kPageSize2M;
constexpr uint64_t k4K = kPageSize4K;

EptBuilder make_builder(FakePageAllocator& alloc, const EptFeatures& features) {
  auto b = EptBuilder::create(alloc, features);
  EXPECT_TRUE(b.has_value());
  return *b;
}

TEST(VmxEpt, EptpValue) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  EXPECT_EQ(ept.pml4_phys(), 0x100000u);
  // WB (6) | walk length 4-1 in bits 5:3 (0x18) = 0x1e (SDM Vol. 3C 24.6.11).
  EXPECT_EQ(ept.eptp(), 0x10001eu);
  EXPECT_EQ(ept.eptp(true), 0x10005eu);
  auto uc = make_eptp(0x200000, EptMemoryType::kUncacheable, false);
  ASSERT_TRUE(uc.has_value());
  EXPECT_EQ(*uc, 0x200018u);
  EXPECT_EQ(make_eptp(0x200008, EptMemoryType::kWriteBack, false).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(make_eptp(0x200000, EptMemoryType::kWriteThrough, false).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(make_eptp(uint64_t{1} << 52, EptMemoryType::kWriteBack, false).error().code,
            ErrorCode::kInvalidArgument);
}

TEST(VmxEpt, SingleFourKPageEntriesBitByBit) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  const uint64_t gpa = 0x0000'0080'4020'3000ull;  // PML4 1, PDPT 1, PD 1, PT 3
  const uint64_t hpa = 0x0000'0012'3456'7000ull;
  ASSERT_TRUE(ept.map(gpa, hpa, k4K, kEptRead | kEptWrite, EptMemoryType::kWriteBack).has_value());
  EXPECT_EQ(ept.table_pages(), 4u);  // PML4, PDPT, PD, PT

  const uint64_t pml4e = alloc.entry(ept.pml4_phys(), 1);
  EXPECT_EQ(pml4e & 0x7, 0x7u) << "table entries carry R/W/X so the leaf decides";
  EXPECT_EQ(pml4e & 0xf8, 0u) << "bits 7:3 reserved in a PML4E";
  const uint64_t pdpte = alloc.entry(pml4e, 1);
  EXPECT_EQ(pdpte & ept_entry::kLargePage, 0u);
  EXPECT_EQ(pdpte & 0x7, 0x7u);
  const uint64_t pde = alloc.entry(pdpte, 1);
  EXPECT_EQ(pde & ept_entry::kLargePage, 0u);
  const uint64_t pte = alloc.entry(pde, 3);
  EXPECT_EQ(pte & ept_entry::kAddressMask, hpa);
  EXPECT_EQ(pte & ept_entry::kRead, ept_entry::kRead);
  EXPECT_EQ(pte & ept_entry::kWrite, ept_entry::kWrite);
  EXPECT_EQ(pte & ept_entry::kExecute, 0u);
  EXPECT_EQ((pte >> 3) & 7, 6u) << "memory type WB in bits 5:3";
  EXPECT_EQ(pte & ept_entry::kIgnorePat, 0u);
  EXPECT_EQ(pte & ~(ept_entry::kAddressMask | 0x3f), 0u) << "no other bits set";
  // Neighbouring slots stay empty.
  EXPECT_EQ(alloc.entry(pde, 2), 0u);
  EXPECT_EQ(alloc.entry(pde, 4), 0u);

  auto t = ept.translate(gpa + 0x123);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->hpa, hpa + 0x123);
  EXPECT_EQ(t->page_size, k4K);
  EXPECT_EQ(t->permissions, kEptRead | kEptWrite);
  EXPECT_EQ(t->memory_type, EptMemoryType::kWriteBack);
  EXPECT_FALSE(ept.invept_needed()) << "adding a translation needs no INVEPT";
  EXPECT_EQ(ept.translate(gpa + k4K).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(ept.translate(gpa - k4K).error().code, ErrorCode::kNotFound);
}

TEST(VmxEpt, OneGibPageWhenAlignedAndSupported) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  ASSERT_TRUE(ept.map(kGiB, 4 * kGiB, kGiB, kEptRwx, EptMemoryType::kWriteBack).has_value());
  EXPECT_EQ(ept.table_pages(), 2u);  // PML4 + PDPT only
  const uint64_t pdpte = alloc.entry(alloc.entry(ept.pml4_phys(), 0), 1);
  EXPECT_NE(pdpte & ept_entry::kLargePage, 0u) << "bit 7 marks a 1 GiB page";
  EXPECT_EQ(pdpte & ept_entry::kAddressMask, 4 * kGiB);
  EXPECT_EQ(pdpte & 0x3fffe000ull, 0u) << "bits 29:12 reserved in a 1 GiB PDPTE";
  auto t = ept.translate(kGiB + 0x12345678);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->page_size, kGiB);
  EXPECT_EQ(t->hpa, 4 * kGiB + 0x12345678);
}

TEST(VmxEpt, MixedPageSizesFollowAlignment) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  // [2M-4K, 4M+4K): one 4 KiB page, one 2 MiB page, one 4 KiB page.
  const uint64_t gpa = kMiB2 - k4K;
  ASSERT_TRUE(ept.map(gpa, gpa, kMiB2 + 2 * k4K, kEptRwx, EptMemoryType::kWriteBack).has_value());
  struct Probe {
    uint64_t gpa;
    uint64_t size;
  } probes[] = {{kMiB2 - k4K, k4K},     {kMiB2, kMiB2},   {kMiB2 + 0x1000, kMiB2}, {2 * kMiB2 - k4K, kMiB2},
                {2 * kMiB2 - 1, kMiB2}, {2 * kMiB2, k4K}, {2 * kMiB2 + 0xfff, k4K}};
  for (const Probe& p : probes) {
    auto t = ept.translate(p.gpa);
    ASSERT_TRUE(t.has_value()) << std::hex << p.gpa;
    EXPECT_EQ(t->page_size, p.size) << std::hex << p.gpa;
    EXPECT_EQ(t->hpa, p.gpa) << std::hex << p.gpa;
  }
  EXPECT_EQ(ept.translate(2 * kMiB2 + k4K).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(ept.translate(kMiB2 - 2 * k4K).error().code, ErrorCode::kNotFound);
}

TEST(VmxEpt, AttachedToTheRootTranslatesAsTheBuilder) {
  // A vCPU keeps only its EPTP: attach() to the same PML4 must see every translation, page
  // sizes and unmapped holes included, and allocate nothing.
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  ASSERT_TRUE(ept.map(kMiB2 - k4K, 0x40000000 + kMiB2 - k4K, kMiB2 + 2 * k4K, kEptRwx, EptMemoryType::kWriteBack)
                  .has_value());
  const size_t pages_before = alloc.live_pages();
  const NestedPageTableBuilder view = NestedPageTableBuilder::attach(alloc, PageTableFormat::kEpt, ept.pml4_phys());
  for (uint64_t gpa : {kMiB2 - k4K, kMiB2, kMiB2 + 0x1234, 2 * kMiB2 + 0xfff, 2 * kMiB2 + k4K, uint64_t{0}}) {
    auto a = ept.translate(gpa);
    auto b = view.translate(gpa);
    ASSERT_EQ(a.has_value(), b.has_value()) << std::hex << gpa;
    if (a) {
      EXPECT_EQ(b->hpa, a->hpa) << std::hex << gpa;
      EXPECT_EQ(b->page_size, a->page_size) << std::hex << gpa;
    }
  }
  EXPECT_EQ(view.translate(kMiB2 + 0x1234)->hpa, 0x40000000u + kMiB2 + 0x1234);
  EXPECT_EQ(alloc.live_pages(), pages_before);
}

TEST(VmxEpt, NoLargePagesWithoutCapabilityOrHostAlignment) {
  FakePageAllocator alloc;
  EptBuilder small = make_builder(alloc, kOnly4K);
  ASSERT_TRUE(small.map(0, 0, kMiB2, kEptRwx, EptMemoryType::kWriteBack).has_value());
  EXPECT_EQ(small.translate(kMiB2 - 1)->page_size, k4K);
  EXPECT_EQ(small.table_pages(), 4u);

  FakePageAllocator alloc2;
  EptBuilder misaligned = make_builder(alloc2, kAllPages);
  // GPA 2 MiB-aligned, HPA only 4 KiB-aligned: 4 KiB pages.
  ASSERT_TRUE(misaligned.map(kMiB2, kMiB2 + k4K, kMiB2, kEptRwx, EptMemoryType::kWriteBack).has_value());
  auto t = misaligned.translate(kMiB2 + 5 * k4K);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->page_size, k4K);
  EXPECT_EQ(t->hpa, kMiB2 + 6 * k4K);

  // 2 MiB supported but 1 GiB not: a 1 GiB range becomes 512 2 MiB pages.
  FakePageAllocator alloc3;
  EptBuilder no1g = make_builder(alloc3, EptFeatures{true, false, false, 46});
  ASSERT_TRUE(no1g.map(0, 0, kGiB, kEptRwx, EptMemoryType::kWriteBack).has_value());
  EXPECT_EQ(no1g.translate(kGiB - 1)->page_size, kMiB2);
  EXPECT_EQ(no1g.table_pages(), 3u);
}

TEST(VmxEpt, OverlapIsRejectedAndChangesNothing) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  ASSERT_TRUE(ept.map(0x10000, 0x10000, 4 * k4K, kEptRwx, EptMemoryType::kWriteBack).has_value());
  // Starts in a hole, overlaps at 0x10000.
  auto r = ept.map(0x8000, 0x900000, 0x10000, kEptRead, EptMemoryType::kUncacheable);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(r.error().detail, 0x10000u);
  EXPECT_EQ(ept.translate(0x8000).error().code, ErrorCode::kNotFound) << "nothing was mapped";
  EXPECT_EQ(ept.translate(0x10000)->hpa, 0x10000u) << "nothing was replaced";

  // Overlap with a large page from inside it.
  ASSERT_TRUE(ept.map(kGiB, kGiB, kGiB, kEptRwx, EptMemoryType::kWriteBack).has_value());
  EXPECT_EQ(ept.map(kGiB + 0x5000, 0, k4K, kEptRwx, EptMemoryType::kWriteBack).error().code,
            ErrorCode::kAlreadyExists);
  EXPECT_FALSE(ept.invept_needed());
}

TEST(VmxEpt, RemapInsideLargePageSplitsIt) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  ASSERT_TRUE(ept.map(0, 0x4000'0000, kMiB2, kEptRwx, EptMemoryType::kWriteThrough).has_value());
  ASSERT_EQ(ept.translate(0)->page_size, kMiB2);
  ASSERT_TRUE(
      ept.map(0x5000, 0xabc000, k4K, kEptRead, EptMemoryType::kUncacheable, EptMapMode::kRemap).has_value());
  EXPECT_TRUE(ept.invept_needed());
  auto remapped = ept.translate(0x5008);
  ASSERT_TRUE(remapped.has_value());
  EXPECT_EQ(remapped->hpa, 0xabc008u);
  EXPECT_EQ(remapped->page_size, k4K);
  EXPECT_EQ(remapped->permissions, kEptRead);
  EXPECT_EQ(remapped->memory_type, EptMemoryType::kUncacheable);
  // The rest of the former 2 MiB page keeps its translation and attributes.
  for (uint64_t gpa : {uint64_t{0}, uint64_t{0x4000}, uint64_t{0x6000}, kMiB2 - k4K}) {
    auto t = ept.translate(gpa);
    ASSERT_TRUE(t.has_value()) << std::hex << gpa;
    EXPECT_EQ(t->hpa, 0x4000'0000 + gpa);
    EXPECT_EQ(t->page_size, k4K);
    EXPECT_EQ(t->permissions, kEptRwx);
    EXPECT_EQ(t->memory_type, EptMemoryType::kWriteThrough);
    EXPECT_EQ(t->entry & ept_entry::kLargePage, 0u);
  }
  // The PDE now references a table.
  const uint64_t pde = alloc.entry(alloc.entry(alloc.entry(ept.pml4_phys(), 0), 0), 0);
  EXPECT_EQ(pde & ept_entry::kLargePage, 0u);
  EXPECT_EQ(pde & 0x7, 0x7u);
}

TEST(VmxEpt, RemapWithLargePageOverExistingTableUsesThatTable) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  ASSERT_TRUE(ept.map(0x3000, 0x3000, k4K, kEptRwx, EptMemoryType::kWriteBack).has_value());
  const uint64_t pages_before = ept.table_pages();
  ASSERT_TRUE(
      ept.map(0, 0x8000'0000, kMiB2, kEptRead, EptMemoryType::kWriteBack, EptMapMode::kRemap).has_value());
  EXPECT_EQ(ept.table_pages(), pages_before) << "no table leaked or replaced";
  auto t = ept.translate(0x3000);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->hpa, 0x8000'3000u);
  EXPECT_EQ(t->permissions, kEptRead);
  EXPECT_EQ(t->page_size, k4K);
}

TEST(VmxEpt, UnmapSplitsOneGibDownToFourK) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  ASSERT_TRUE(ept.map(0, 0, kGiB, kEptRwx, EptMemoryType::kWriteBack).has_value());
  ASSERT_TRUE(ept.unmap(0x20'3000, k4K).has_value());
  EXPECT_TRUE(ept.invept_needed());
  EXPECT_EQ(ept.translate(0x20'3000).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(ept.translate(0x20'2000)->page_size, k4K);
  EXPECT_EQ(ept.translate(0x20'4fff)->hpa, 0x20'4fffu);
  EXPECT_EQ(ept.translate(0x40'0000)->page_size, kMiB2) << "other 2 MiB pieces stay large";
  EXPECT_EQ(ept.translate(kGiB - 1)->hpa, kGiB - 1);

  // Unmapping a range with holes is fine and removes the rest.
  ASSERT_TRUE(ept.unmap(0x20'0000, kMiB2).has_value());
  for (uint64_t gpa = 0x20'0000; gpa < 0x40'0000; gpa += 0x7000) {
    EXPECT_EQ(ept.translate(gpa).error().code, ErrorCode::kNotFound) << std::hex << gpa;
  }
  EXPECT_TRUE(ept.translate(0x1f'f000).has_value());
  EXPECT_TRUE(ept.translate(0x40'0000).has_value());
  // Unmapping nothing succeeds.
  EXPECT_TRUE(ept.unmap(0x100'0000'0000ull, kGiB).has_value());
}

TEST(VmxEpt, ProtectChangesPermissionsAndNeedsAFullyMappedRange) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  ASSERT_TRUE(ept.map(0, 0, kMiB2, kEptRwx, EptMemoryType::kWriteBack).has_value());
  ASSERT_TRUE(ept.map(kMiB2 + k4K, kMiB2 + k4K, k4K, kEptRwx, EptMemoryType::kWriteBack).has_value());
  // Same permissions: no change, no split, no INVEPT.
  const uint64_t pages = ept.table_pages();
  ASSERT_TRUE(ept.protect(0x1000, k4K, kEptRwx).has_value());
  EXPECT_EQ(ept.table_pages(), pages);
  EXPECT_FALSE(ept.invept_needed());

  ASSERT_TRUE(ept.protect(0x1000, 2 * k4K, kEptRead | kEptExecute).has_value());
  EXPECT_TRUE(ept.invept_needed());
  EXPECT_EQ(ept.translate(0x1000)->permissions, kEptRead | kEptExecute);
  EXPECT_EQ(ept.translate(0x2fff)->permissions, kEptRead | kEptExecute);
  EXPECT_EQ(ept.translate(0x3000)->permissions, kEptRwx);
  EXPECT_EQ(ept.translate(0x0)->permissions, kEptRwx);
  EXPECT_EQ(ept.translate(0x1000)->memory_type, EptMemoryType::kWriteBack);

  ept.clear_invept_needed();
  // [2M, 2M+8K) has a hole at 2M: nothing changes.
  auto r = ept.protect(kMiB2 - k4K, 3 * k4K, kEptRead);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().detail, kMiB2);
  EXPECT_EQ(ept.translate(kMiB2 - k4K)->permissions, kEptRwx);
  EXPECT_FALSE(ept.invept_needed());
}

TEST(VmxEpt, InvalidArgumentsAreRejected) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  struct Case {
    const char* what;
    uint64_t gpa, hpa, size;
    uint8_t perms;
    EptMemoryType type;
    ErrorCode expected;
  } cases[] = {
      {"zero size", 0, 0, 0, kEptRwx, EptMemoryType::kWriteBack, ErrorCode::kInvalidArgument},
      {"gpa misaligned", 0x800, 0, k4K, kEptRwx, EptMemoryType::kWriteBack, ErrorCode::kInvalidArgument},
      {"size misaligned", 0, 0, 0x1800, kEptRwx, EptMemoryType::kWriteBack, ErrorCode::kInvalidArgument},
      {"hpa misaligned", 0, 0x10, k4K, kEptRwx, EptMemoryType::kWriteBack, ErrorCode::kInvalidArgument},
      {"above 2^48", (uint64_t{1} << 48) - k4K, 0, 2 * k4K, kEptRwx, EptMemoryType::kWriteBack,
       ErrorCode::kInvalidArgument},
      {"gpa wraps", ~uint64_t{0xfff}, 0, 2 * k4K, kEptRwx, EptMemoryType::kWriteBack,
       ErrorCode::kInvalidArgument},
      {"hpa above MAXPHYADDR", 0, uint64_t{1} << 46, k4K, kEptRwx, EptMemoryType::kWriteBack,
       ErrorCode::kInvalidArgument},
      {"no permissions", 0, 0, k4K, 0, EptMemoryType::kWriteBack, ErrorCode::kInvalidArgument},
      {"write without read", 0, 0, k4K, kEptWrite, EptMemoryType::kWriteBack, ErrorCode::kInvalidArgument},
      {"write+execute without read", 0, 0, k4K, kEptWrite | kEptExecute, EptMemoryType::kWriteBack,
       ErrorCode::kInvalidArgument},
      {"stray permission bit", 0, 0, k4K, 0x9, EptMemoryType::kWriteBack, ErrorCode::kInvalidArgument},
      {"execute-only unsupported", 0, 0, k4K, kEptExecute, EptMemoryType::kWriteBack,
       ErrorCode::kUnsupported},
      {"memory type 2", 0, 0, k4K, kEptRwx, static_cast<EptMemoryType>(2), ErrorCode::kInvalidArgument},
      {"memory type 3", 0, 0, k4K, kEptRwx, static_cast<EptMemoryType>(3), ErrorCode::kInvalidArgument},
      {"memory type 7", 0, 0, k4K, kEptRwx, static_cast<EptMemoryType>(7), ErrorCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto r = ept.map(c.gpa, c.hpa, c.size, c.perms, c.type);
    ASSERT_FALSE(r.has_value()) << c.what;
    EXPECT_EQ(r.error().code, c.expected) << c.what;
  }
  EXPECT_EQ(ept.table_pages(), 1u) << "nothing was allocated for rejected requests";
  EXPECT_EQ(ept.translate(uint64_t{1} << 48).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ept.unmap(0, 0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(ept.protect(0x10, k4K, kEptRead).error().code, ErrorCode::kInvalidArgument);

  // Execute-only works when the CPU supports it.
  FakePageAllocator alloc2;
  EptBuilder xo = make_builder(alloc2, EptFeatures{true, true, true, 46});
  ASSERT_TRUE(xo.map(0, 0, k4K, kEptExecute, EptMemoryType::kWriteBack).has_value());
  EXPECT_EQ(xo.translate(0)->permissions, kEptExecute);
}

TEST(VmxEpt, AllocationFailuresPropagate) {
  FakePageAllocator alloc;
  alloc.fail_after = 0;
  auto none = EptBuilder::create(alloc, kAllPages);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code, ErrorCode::kOutOfMemory);

  FakePageAllocator alloc2;
  alloc2.fail_after = 2;  // PML4 and PDPT succeed, the PD fails
  EptBuilder ept = make_builder(alloc2, kAllPages);
  auto r = ept.map(0, 0, k4K, kEptRwx, EptMemoryType::kWriteBack);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kOutOfMemory);
  EXPECT_EQ(ept.translate(0).error().code, ErrorCode::kNotFound);

  // A split that cannot allocate fails cleanly and keeps the large page.
  FakePageAllocator alloc3;
  EptBuilder big = make_builder(alloc3, kAllPages);
  ASSERT_TRUE(big.map(0, 0, kMiB2, kEptRwx, EptMemoryType::kWriteBack).has_value());
  alloc3.fail_after = alloc3.allocations;
  EXPECT_EQ(big.unmap(0x1000, k4K).error().code, ErrorCode::kOutOfMemory);
  EXPECT_EQ(big.translate(0x1000)->page_size, kMiB2);

  FakePageAllocator alloc4;
  alloc4.hand_out_unaligned = true;
  EXPECT_EQ(EptBuilder::create(alloc4, kAllPages).error().code, ErrorCode::kInvalidArgument);
}

TEST(VmxEpt, ReleaseTablesFreesEveryTablePageAndNothingElse) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  // A 1 GiB page, 2 MiB pages and 4 KiB pages in different PML4 slots: PML4, 2 PDPTs, PDs, PTs.
  ASSERT_TRUE(ept.map(0, 0x40000000, kGiB, kEptRwx, EptMemoryType::kWriteBack));
  ASSERT_TRUE(ept.map(kGiB, 0x80000000, 4 * kMiB2, kEptRwx, EptMemoryType::kWriteBack));
  ASSERT_TRUE(ept.map(kGiB + 4 * kMiB2, 0x90000000, 3 * k4K, kEptRead, EptMemoryType::kWriteBack));
  ASSERT_TRUE(ept.map(uint64_t{1} << 40, 0xa0000000, k4K, kEptRwx, EptMemoryType::kUncacheable));
  const uint64_t tables = ept.table_pages();
  ASSERT_EQ(static_cast<uint64_t>(alloc.allocations), tables);
  ASSERT_GE(tables, 6u);
  EXPECT_EQ(EptBuilder::release_tables(alloc, ept.pml4_phys()), tables);
  EXPECT_EQ(static_cast<uint64_t>(alloc.frees), tables);
  EXPECT_EQ(alloc.live_pages(), 0u);
}

TEST(VmxEpt, ReleaseTablesAfterSplitAndUnmap) {
  FakePageAllocator alloc;
  EptBuilder ept = make_builder(alloc, kAllPages);
  ASSERT_TRUE(ept.map(0, 0x200000, 2 * kMiB2, kEptRwx, EptMemoryType::kWriteBack));
  ASSERT_TRUE(ept.unmap(k4K, k4K));  // splits the first 2 MiB page into a PT
  ASSERT_GT(ept.table_pages(), 3u);
  EXPECT_EQ(EptBuilder::release_tables(alloc, ept.eptp()), ept.table_pages());  // EPTP bits ignored
  EXPECT_EQ(alloc.live_pages(), 0u);
  EXPECT_EQ(EptBuilder::release_tables(alloc, 0), 0u);
}

}  // namespace
}  // namespace lantern::vmx
