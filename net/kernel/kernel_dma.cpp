#include "net/kernel/kernel_dma.h"

#include "kernel/arch/x86_64/paging.h"
#include "kernel/core/memory.h"
#include "kernel/lib/string.h"

namespace lantern::net::kernel {

Result<DmaBuffer> KernelDmaAllocator::alloc_dma(size_t size, size_t align) {
  if (size == 0) return make_error(ErrorCode::kInvalidArgument, "DMA allocation of 0 bytes");
  if (align == 0 || (align & (align - 1)) != 0) {
    return make_error(ErrorCode::kInvalidArgument, "DMA alignment is not a power of two", align);
  }
  const uint64_t frames = (size + paging::kPageSize - 1) / paging::kPageSize;
  const uint64_t frame_align = align < paging::kPageSize ? paging::kPageSize : align;
  const uint64_t phys = TRY(memory::alloc_contiguous(frames, frame_align));
  void* virt = paging::phys_to_ptr<void>(phys);
  lib::mem_set(virt, 0, frames * paging::kPageSize);
  bytes_ += frames * paging::kPageSize;
  return DmaBuffer{virt, phys, size};
}

}  // namespace lantern::net::kernel
