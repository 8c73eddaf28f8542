#include "net/kernel/kernel_mmio.h"

#include "kernel/arch/x86_64/paging.h"

namespace lantern::net::kernel {

Result<void> KernelMmioWindow::map(uint64_t phys, uint64_t size) {
  if (size == 0 || size > UINT32_MAX) {
    return make_error(ErrorCode::kInvalidArgument, "MMIO window size must be 1 byte..4 GiB", size);
  }
  base_ = TRY(paging::map_mmio(phys, size));
  size_ = size;
  phys_ = phys;
  return ok();
}

Result<void> KernelMmioWindow::subwindow(const KernelMmioWindow& parent, uint64_t offset, uint64_t size) {
  if (!parent.mapped() || size == 0 || offset > parent.size_ || size > parent.size_ - offset) {
    return make_error(ErrorCode::kInvalidArgument, "MMIO subwindow outside its parent", offset);
  }
  base_ = parent.base_ + offset;
  size_ = size;
  phys_ = parent.phys_ + offset;
  return ok();
}

}  // namespace lantern::net::kernel
