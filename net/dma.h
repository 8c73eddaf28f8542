// DmaAllocator: the seam through which drivers get memory a device can read and write.
//
// A DMA buffer has two addresses: `virt`, where the CPU reads and writes it, and `phys`, the
// bus address programmed into descriptors and registers. The kernel implements the allocator
// with physically contiguous frames from the frame allocator, mapped through the direct map
// (write-back cacheable: PCI DMA on x86 is cache-coherent, Intel SDM Vol. 3A, 11.3). Host tests
// implement it over a RAM arena with a made-up physical base. Drivers in net/ allocate at
// initialisation only and never free: a NIC lives as long as the kernel.
//
// Ordering helpers: descriptors live in ordinary (write-back) memory that the device reads and
// writes behind the compiler's back. Every load of a device-written field goes through
// dma_load() and every store the device will read through dma_store(), and a driver publishes
// descriptors (ring tail / avail index) only after dma_wmb(). On x86 stores are not reordered
// with older stores and loads not with older loads (Intel SDM Vol. 3A, 8.2.2), so these are
// compiler barriers there; dma_mb() is a full fence (MFENCE), needed where a store must be
// visible before a later load (virtio 1.0 spec 2.4.7.2: publish avail idx, then read the
// device's event-suppression fields).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::net {

struct DmaBuffer {
  void* virt = nullptr;
  uint64_t phys = 0;
  size_t size = 0;
};

class DmaAllocator {
 public:
  // `size` bytes, zero-filled, physically contiguous, aligned to `align` (a power of two) both
  // virtually and physically. kOutOfMemory when exhausted, kInvalidArgument for size 0 or a bad
  // alignment.
  virtual Result<DmaBuffer> alloc_dma(size_t size, size_t align) = 0;

 protected:
  DmaAllocator() = default;
  ~DmaAllocator() = default;
  DmaAllocator(const DmaAllocator&) = default;
  DmaAllocator& operator=(const DmaAllocator&) = default;
};

template <typename T>
inline T dma_load(const T* p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <typename T>
inline void dma_store(T* p, T value) {
  __atomic_store_n(p, value, __ATOMIC_RELEASE);
}
// Orders earlier stores to DMA memory before later stores (descriptor before tail/index).
inline void dma_wmb() {
  __atomic_thread_fence(__ATOMIC_RELEASE);
}
// Orders earlier DMA-memory reads before later reads (index before the entries it covers).
inline void dma_rmb() {
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
}
// Full fence: earlier stores are globally visible before later loads.
inline void dma_mb() {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

}  // namespace lantern::net
