#include <gtest/gtest.h>

#include <array>
#include <map>
#include <memory>

#include "guest/nested_paging.h"

// The NPT format of the nested-paging builder (APM Vol. 2 15.25): x86-64 long-mode entries.
namespace lantern::guest {
namespace {

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
    return static_cast<uint64_t*>(phys_to_virt(phys & npt_entry::kAddressMask))[index];
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

NestedPagingFeatures npt_features(bool pages_1g = true) {
  NestedPagingFeatures f;
  f.format = PageTableFormat::kNpt;
  f.pages_2m = true;
  f.pages_1g = pages_1g;
  f.max_phys_bits = 46;
  return f;
}

NestedPageTableBuilder make_npt(FakePageAllocator& alloc, const NestedPagingFeatures& f = npt_features()) {
  auto b = NestedPageTableBuilder::create(alloc, f);
  EXPECT_TRUE(b.has_value());
  return *b;
}

TEST(GuestNpt, FourKLeafAndTablesHaveUserBitAndLeafBitsFollowTheApm) {
  FakePageAllocator alloc;
  NestedPageTableBuilder npt = make_npt(alloc);
  EXPECT_EQ(npt.ncr3(), npt.pml4_phys());
  ASSERT_TRUE(npt.map(0x5000, 0x12345000, kPageSize4K, kAccessRead | kAccessWrite, MemoryType::kWriteBack));
  const uint64_t pml4e = alloc.entry(npt.pml4_phys(), 0);
  const uint64_t pdpe = alloc.entry(pml4e, 0);
  const uint64_t pde = alloc.entry(pdpe, 0);
  const uint64_t pte = alloc.entry(pde, 5);
  // Tables: P | R/W | U/S, NX clear, no PS (APM 15.25.5: nested walks are user accesses).
  for (uint64_t table_entry : {pml4e, pdpe, pde}) {
    EXPECT_EQ(table_entry & 0x8000'0000'0000'0fffull, 0x7u) << std::hex << table_entry;
  }
  // Leaf: P, R/W, U/S, PAT index 0 (WB), NX because execute was not asked for.
  EXPECT_EQ(pte, 0x8000'0000'1234'5007ull);
  auto t = npt.translate(0x5abc);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->hpa, 0x12345abcu);
  EXPECT_EQ(t->permissions, kAccessRead | kAccessWrite);
  EXPECT_EQ(t->memory_type, MemoryType::kWriteBack);
  EXPECT_EQ(t->page_size, kPageSize4K);
  EXPECT_FALSE(npt.tlb_flush_needed());
}

TEST(GuestNpt, LargePagesMemoryTypesAndExecute) {
  FakePageAllocator alloc;
  NestedPageTableBuilder npt = make_npt(alloc);
  ASSERT_TRUE(npt.map(0, 0x4000'0000, kPageSize1G, kAccessRwx, MemoryType::kWriteBack));
  ASSERT_TRUE(npt.map(kPageSize1G, 0x8000'0000, kPageSize2M, kAccessRead | kAccessExecute, MemoryType::kUncacheable));
  ASSERT_TRUE(npt.map(kPageSize1G + kPageSize2M, 0x9000'0000, kPageSize4K, kAccessRead, MemoryType::kWriteThrough));
  const uint64_t pdpt = alloc.entry(npt.pml4_phys(), 0);
  const uint64_t pdpe0 = alloc.entry(pdpt, 0);
  EXPECT_EQ(pdpe0, 0x4000'0000ull | 0x80 | 0x7) << "1 GiB: PS, P, R/W, U/S, WB, executable";
  const uint64_t pd = alloc.entry(pdpt, 1);
  EXPECT_EQ(alloc.entry(pd, 0), 0x8000'0000ull | 0x80 | 0x18 | 0x5) << "2 MiB: PS, PCD+PWT (PAT 3 = UC), no R/W";
  const uint64_t pte = alloc.entry(alloc.entry(pd, 1), 0);
  EXPECT_EQ(pte, 0x8000'0000'9000'0000ull | 0x8 | 0x5) << "4 KiB: PWT (PAT 1 = WT), NX, read-only";
  EXPECT_EQ(npt.translate(0x3fff'ffff)->page_size, kPageSize1G);
  EXPECT_EQ(npt.translate(kPageSize1G + 0x1234)->memory_type, MemoryType::kUncacheable);
  EXPECT_EQ(npt.translate(kPageSize1G + 0x1234)->permissions, kAccessRead | kAccessExecute);
  EXPECT_EQ(npt.translate(kPageSize1G + kPageSize2M)->memory_type, MemoryType::kWriteThrough);
  EXPECT_EQ(npt.translate(kPageSize1G + kPageSize2M)->permissions, kAccessRead);
}

TEST(GuestNpt, SplitKeepsAttributesAndProtectReencodes) {
  FakePageAllocator alloc;
  NestedPageTableBuilder npt = make_npt(alloc);
  ASSERT_TRUE(npt.map(0, 0x20'0000, kPageSize2M, kAccessRead | kAccessExecute, MemoryType::kUncacheable));
  ASSERT_TRUE(npt.unmap(0x1000, kPageSize4K));
  EXPECT_TRUE(npt.tlb_flush_needed());
  EXPECT_EQ(npt.translate(0x1000).error().code, ErrorCode::kNotFound);
  auto t = npt.translate(0x2000);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->page_size, kPageSize4K);
  EXPECT_EQ(t->hpa, 0x20'2000u);
  EXPECT_EQ(t->permissions, kAccessRead | kAccessExecute);
  EXPECT_EQ(t->memory_type, MemoryType::kUncacheable);
  npt.clear_tlb_flush_needed();
  ASSERT_TRUE(npt.protect(0x2000, kPageSize4K, kAccessRwx));
  EXPECT_TRUE(npt.tlb_flush_needed());
  EXPECT_EQ(npt.translate(0x2000)->permissions, kAccessRwx);
  EXPECT_EQ(npt.translate(0x2000)->memory_type, MemoryType::kUncacheable);
  EXPECT_EQ(npt.translate(0x2000)->entry & npt_entry::kNoExecute, 0u);
  EXPECT_EQ(npt.translate(0x3000)->entry & npt_entry::kWrite, 0u) << "its neighbour keeps read+execute";
  // A 4 KiB NPT split needs only 2 MiB support; with no 1 GiB pages a 1 GiB range uses 2 MiB.
  FakePageAllocator alloc2;
  NestedPageTableBuilder small = make_npt(alloc2, npt_features(false));
  ASSERT_TRUE(small.map(0, 0, kPageSize1G, kAccessRwx, MemoryType::kWriteBack));
  EXPECT_EQ(small.translate(0)->page_size, kPageSize2M);
  EXPECT_EQ(NestedPageTableBuilder::release_tables(alloc2, small.pml4_phys()), small.table_pages());
  EXPECT_EQ(alloc2.live_pages(), 0u);
}

TEST(GuestNpt, EncodingsNptCannotExpressAreRefused) {
  FakePageAllocator alloc;
  NestedPageTableBuilder npt = make_npt(alloc);
  struct Case {
    const char* what;
    uint8_t perms;
    MemoryType type;
  } cases[] = {
      {"execute-only", kAccessExecute, MemoryType::kWriteBack},
      {"write-combining (not in the power-on PAT)", kAccessRwx, MemoryType::kWriteCombining},
      {"write-protected (not in the power-on PAT)", kAccessRwx, MemoryType::kWriteProtected},
  };
  for (const Case& c : cases) {
    auto r = npt.map(0, 0, kPageSize4K, c.perms, c.type);
    ASSERT_FALSE(r.has_value()) << c.what;
    EXPECT_EQ(r.error().code, ErrorCode::kUnsupported) << c.what;
  }
  EXPECT_EQ(npt.map(0, 0, kPageSize4K, kAccessWrite, MemoryType::kWriteBack).error().code,
            ErrorCode::kInvalidArgument);
  // Without the host's EFER.NXE, bit 63 is reserved: only executable leaves.
  FakePageAllocator alloc2;
  NestedPagingFeatures no_nx = npt_features();
  no_nx.no_execute = false;
  NestedPageTableBuilder plain = make_npt(alloc2, no_nx);
  EXPECT_EQ(plain.map(0, 0, kPageSize4K, kAccessRead, MemoryType::kWriteBack).error().code,
            ErrorCode::kUnsupported);
  ASSERT_TRUE(plain.map(0, 0, kPageSize4K, kAccessRwx, MemoryType::kWriteBack));
  EXPECT_EQ(plain.translate(0)->entry & npt_entry::kNoExecute, 0u);
  EXPECT_EQ(npt.table_pages(), 1u);
}

}  // namespace
}  // namespace lantern::guest
