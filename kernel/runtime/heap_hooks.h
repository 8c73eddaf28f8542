// The kernel heap as seen by the C++ runtime (operator new/delete in cxxrt.cpp). Implemented by
// the kernel's memory code on top of lantern::lib::HeapAllocator, under a spinlock.
#pragma once

#include <cstddef>

namespace lantern {

// `size` bytes aligned to `align` (a power of two, at most 4096), or nullptr when the heap is
// exhausted. Must accept size 0 (returning a unique pointer) and be callable on any CPU.
void* kmalloc(size_t size, size_t align);
// Frees a kmalloc() result; nullptr is ignored.
void kfree(void* ptr);

}  // namespace lantern
