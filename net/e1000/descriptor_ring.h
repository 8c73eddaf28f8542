// Head/tail bookkeeping for an e1000 descriptor ring, with no hardware in it.
//
// The hardware owns the descriptors in [head, tail) (Intel 8254x SDM 3.2.6 for receive,
// 3.3.1 for transmit): it consumes from head, software appends at tail. head == tail means the
// hardware owns nothing, so one slot always stays with software and at most size - 1
// descriptors are in flight. Software tracks:
//   next_to_use   the slot it fills next; written to RDT/TDT after filling (the tail);
//   next_to_clean the oldest slot handed to hardware and not yet reclaimed (DD bit not seen).
// in_flight = (next_to_use - next_to_clean) mod size; free = size - 1 - in_flight.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::net::e1000 {

class DescriptorRing {
 public:
  // size: a multiple of 8 descriptors (RDLEN/TDLEN are multiples of 128 bytes: 13.4.27,
  // 13.4.38), at least 8 and at most 65528 (RDLEN/TDLEN bits 19:7 hold up to 8191 × 8 × 16).
  Result<void> init(uint32_t size);

  uint16_t size() const { return size_; }
  uint16_t next_to_use() const { return next_to_use_; }
  uint16_t next_to_clean() const { return next_to_clean_; }
  uint16_t in_flight() const {
    return static_cast<uint16_t>((next_to_use_ + size_ - next_to_clean_) % size_);
  }
  uint16_t free_slots() const { return static_cast<uint16_t>(size_ - 1 - in_flight()); }
  bool full() const { return size_ != 0 && free_slots() == 0; }
  bool empty() const { return in_flight() == 0; }
  uint16_t next(uint16_t index) const { return static_cast<uint16_t>((index + 1) % size_); }
  // True if `head` (as read from RDH/TDH) lies in [next_to_clean, next_to_use], the only
  // values hardware can legitimately report.
  bool head_plausible(uint32_t head) const;

  // Hands the slot at next_to_use to hardware and returns it. Precondition: !full().
  uint16_t produce();
  // Reclaims the slot at next_to_clean and returns it. Precondition: !empty().
  uint16_t consume();

 private:
  uint16_t size_ = 0;
  uint16_t next_to_use_ = 0;
  uint16_t next_to_clean_ = 0;
};

}  // namespace lantern::net::e1000
