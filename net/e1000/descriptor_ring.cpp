#include "net/e1000/descriptor_ring.h"

#include "net/e1000/e1000_regs.h"

namespace lantern::net::e1000 {

Result<void> DescriptorRing::init(uint32_t size) {
  if (size < kRingGranule || size % kRingGranule != 0 || size > 65528) {
    return make_error(ErrorCode::kInvalidArgument, "e1000: ring size must be a multiple of 8 in [8, 65528]",
                      size);
  }
  size_ = static_cast<uint16_t>(size);
  next_to_use_ = 0;
  next_to_clean_ = 0;
  return ok();
}

bool DescriptorRing::head_plausible(uint32_t head) const {
  if (head >= size_) return false;
  uint32_t from_clean = (head + size_ - next_to_clean_) % size_;
  return from_clean <= in_flight();
}

uint16_t DescriptorRing::produce() {
  uint16_t slot = next_to_use_;
  next_to_use_ = next(next_to_use_);
  return slot;
}

uint16_t DescriptorRing::consume() {
  uint16_t slot = next_to_clean_;
  next_to_clean_ = next(next_to_clean_);
  return slot;
}

}  // namespace lantern::net::e1000
