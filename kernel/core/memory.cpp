#include "kernel/core/memory.h"

#include "kernel/arch/x86_64/boot_layout.h"
#include "kernel/arch/x86_64/paging.h"
#include "kernel/core/log.h"
#include "kernel/core/panic.h"
#include "kernel/core/spinlock.h"
#include "kernel/lib/heap.h"
#include "kernel/mm/frame_allocator.h"

extern "C" char __kernel_phys_start[], __kernel_phys_end[];

namespace lantern::memory {
namespace {

constexpr uint64_t kFourGiB = 4ull << 30;
constexpr uint64_t kHeapGrowMinBytes = 2ull << 20;
constexpr size_t kMaxReserved = 8 + multiboot2::BootInfo::kMaxModules;

mm::FrameAllocator g_frames;
IrqSpinlock g_frames_lock;
IrqSpinlock g_heap_lock;
bool g_heap_ready = false;

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) & ~(a - 1);
}

// The first place in available RAM below 4 GiB (reachable through the boot direct map)
// where `bytes` fit without touching a reserved range.
Result<uint64_t> place_bitmap(const multiboot2::BootInfo& info, std::span<const mm::PhysRange> reserved,
                              uint64_t bytes) {
  for (const auto& e : info.memory_map()) {
    if (!e.available()) continue;
    uint64_t candidate =
        align_up(e.base < mm::kLowMemoryLimit ? mm::kLowMemoryLimit : e.base, mm::kFrameSize);
    const uint64_t end = e.base + e.length;
    bool moved = true;
    while (moved && candidate + bytes <= end && candidate + bytes <= kFourGiB) {
      moved = false;
      for (const auto& r : reserved) {
        if (candidate < r.base + r.length && r.base < candidate + bytes) {
          candidate = align_up(r.base + r.length, mm::kFrameSize);
          moved = true;
        }
      }
    }
    if (!moved && candidate + bytes <= end && candidate + bytes <= kFourGiB) return candidate;
  }
  return make_error(ErrorCode::kOutOfMemory, "no room below 4 GiB for the frame bitmap", bytes);
}

Result<std::span<uint8_t>> grow_heap(void*, size_t min_bytes) {
  const uint64_t bytes =
      align_up(min_bytes < kHeapGrowMinBytes ? kHeapGrowMinBytes : min_bytes, mm::kFrameSize);
  const uint64_t phys = TRY(alloc_contiguous(bytes / mm::kFrameSize, mm::kFrameSize));
  return std::span<uint8_t>(paging::phys_to_ptr<uint8_t>(phys), bytes);
}

void heap_corruption(void*, const char* why) {
  panic("heap corruption: %s", why);
}

lib::HeapAllocator g_heap{&grow_heap, nullptr, &heap_corruption, nullptr};

}  // namespace

Result<uint64_t> init_frames(const multiboot2::BootInfo& info, uint64_t boot_info_phys,
                             uint64_t boot_info_size) {
  mm::PhysRange usable[multiboot2::BootInfo::kMaxMemoryMapEntries];
  size_t usable_count = 0;
  uint64_t max_phys = 0;
  for (const auto& e : info.memory_map()) {
    if (!e.available() || e.length == 0) continue;
    usable[usable_count++] = {e.base, e.length};
    if (e.base + e.length > max_phys) max_phys = e.base + e.length;
  }
  if (usable_count == 0) return make_error(ErrorCode::kNotFound, "the memory map lists no available RAM");

  mm::PhysRange reserved[kMaxReserved];
  size_t reserved_count = 0;
  const uint64_t kernel_start = reinterpret_cast<uint64_t>(__kernel_phys_start);
  const uint64_t kernel_end = reinterpret_cast<uint64_t>(__kernel_phys_end);
  reserved[reserved_count++] = {0, mm::kLowMemoryLimit};  // BIOS data, EBDA, AP trampoline
  reserved[reserved_count++] = {kernel_start, kernel_end - kernel_start};
  reserved[reserved_count++] = {boot_info_phys, boot_info_size};
  for (const auto& m : info.modules()) reserved[reserved_count++] = {m.start, m.size()};

  const size_t bitmap_bytes = mm::FrameAllocator::bitmap_bytes_for(max_phys);
  const uint64_t bitmap_phys =
      TRY(place_bitmap(info, std::span<const mm::PhysRange>(reserved, reserved_count), bitmap_bytes));
  reserved[reserved_count++] = {bitmap_phys, bitmap_bytes};

  TRY(g_frames.init(std::span<const mm::PhysRange>(usable, usable_count),
                    std::span<const mm::PhysRange>(reserved, reserved_count),
                    paging::phys_to_ptr<void>(bitmap_phys), bitmap_bytes, max_phys));
  LOG_INFO("memory: %llu MiB usable, %llu MiB free, frame bitmap %zu bytes at 0x%llx",
           static_cast<unsigned long long>(g_frames.total_frames() * mm::kFrameSize >> 20),
           static_cast<unsigned long long>(g_frames.free_frames() * mm::kFrameSize >> 20), bitmap_bytes,
           static_cast<unsigned long long>(bitmap_phys));
  return max_phys > kFourGiB ? max_phys : kFourGiB;
}

void init_heap() {
  g_heap_ready = true;
}

Result<uint64_t> alloc_frame() {
  IrqSpinlockGuard guard(g_frames_lock);
  return g_frames.alloc_frame();
}

Result<uint64_t> alloc_contiguous(size_t frames, uint64_t align_bytes) {
  IrqSpinlockGuard guard(g_frames_lock);
  return g_frames.alloc_contiguous(frames, align_bytes);
}

Result<void> free_frame(uint64_t phys) {
  IrqSpinlockGuard guard(g_frames_lock);
  return g_frames.free_frame(phys);
}

Result<void> free_contiguous(uint64_t phys, size_t frames) {
  IrqSpinlockGuard guard(g_frames_lock);
  return g_frames.free_contiguous(phys, frames);
}

Stats stats() {
  Stats s{};
  {
    IrqSpinlockGuard guard(g_frames_lock);
    s.total_frames = g_frames.total_frames();
    s.free_frames = g_frames.free_frames();
  }
  IrqSpinlockGuard guard(g_heap_lock);
  s.heap_bytes_in_use = g_heap.bytes_in_use();
  s.heap_bytes_reserved = g_heap.bytes_in_use() + g_heap.bytes_free();
  s.heap_live_allocations = g_heap.live_allocations();
  return s;
}

}  // namespace lantern::memory

namespace lantern {

void* kmalloc(size_t size, size_t align) {
  if (!memory::g_heap_ready) panic("kmalloc(%zu) before the heap exists", size);
  IrqSpinlockGuard guard(memory::g_heap_lock);
  return memory::g_heap.allocate(size, align);
}

void kfree(void* p) {
  if (p == nullptr) return;
  IrqSpinlockGuard guard(memory::g_heap_lock);
  memory::g_heap.release(p);
}

}  // namespace lantern
