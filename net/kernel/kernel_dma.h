// KernelDmaAllocator: net/dma.h's DmaAllocator over the frame allocator (memory::alloc_contiguous)
// and the direct map (paging::phys_to_ptr). Write-back memory: PCI DMA is cache-coherent on x86
// (Intel SDM Vol. 3A 11.3), so no flushes. Never frees (NIC buffers live as long as the kernel).
// Kernel-only.
#pragma once

#include "net/dma.h"

namespace lantern::net::kernel {

class KernelDmaAllocator final : public DmaAllocator {
 public:
  Result<DmaBuffer> alloc_dma(size_t size, size_t align) override;
  uint64_t bytes_allocated() const { return bytes_; }

 private:
  uint64_t bytes_ = 0;
};

}  // namespace lantern::net::kernel
