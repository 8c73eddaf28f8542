#include "guest/hw/kernel_services.h"

#include "kernel/arch/x86_64/paging.h"
#include "kernel/core/boot_state.h"
#include "kernel/core/memory.h"
#include "kernel/lib/string.h"

namespace lantern::guest {
namespace {

// The guest program header (tests/guests/guest_header.inc).
constexpr char kGuestMagic[8] = {'L', 'N', 'T', 'G', 'U', 'E', 'S', 'T'};
constexpr size_t kGuestMagicOffset = 8;
constexpr size_t kGuestNameOffset = 16;
constexpr size_t kGuestNameBytes = 16;
constexpr size_t kGuestHeaderBytes = kGuestNameOffset + kGuestNameBytes;

class KernelPageAllocator final : public PageAllocator {
 public:
  Result<uint64_t> alloc_zeroed_page() override {
    const uint64_t phys = TRY(memory::alloc_frame());
    lib::mem_set(paging::phys_to_ptr<void>(phys), 0, paging::kPageSize);
    return phys;
  }
  void* phys_to_virt(uint64_t phys) override { return paging::phys_to_ptr<void>(phys); }
  void free_page(uint64_t phys) override { (void)memory::free_frame(phys); }
};
KernelPageAllocator g_page_allocator;

}  // namespace

PageAllocator& kernel_page_allocator() {
  return g_page_allocator;
}

Result<std::span<const uint8_t>> find_guest_program(std::string_view name) {
  for (const auto& module : boot_state().multiboot.modules()) {
    if (module.size() < kGuestHeaderBytes) continue;
    const auto* bytes = paging::phys_to_ptr<const uint8_t>(module.start);
    if (lib::mem_compare(bytes + kGuestMagicOffset, kGuestMagic, sizeof(kGuestMagic)) != 0) continue;
    const char* stored = reinterpret_cast<const char*>(bytes + kGuestNameOffset);
    size_t len = 0;
    while (len < kGuestNameBytes && stored[len] != '\0') ++len;
    if (std::string_view(stored, len) == name) return std::span<const uint8_t>(bytes, module.size());
  }
  return make_error(ErrorCode::kNotFound, "no boot module holds the guest program");
}

}  // namespace lantern::guest
