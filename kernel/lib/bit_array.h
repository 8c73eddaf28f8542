// Bits in a byte array, least significant bit of byte 0 first: the layout of the VMX I/O and MSR
// bitmaps (SDM Vol. 3C 25.6.4, 25.6.9) and of the SVM IOPM and MSRPM (APM Vol. 2 15.10.1, 15.11).
// The caller checks that `bit` lies inside the array.
#pragma once

#include <cstdint>

namespace lantern::lib {

inline void set_bit(uint8_t* bytes, uint32_t bit, bool value) {
  const uint8_t mask = static_cast<uint8_t>(1u << (bit % 8));
  if (value) {
    bytes[bit / 8] |= mask;
  } else {
    bytes[bit / 8] &= static_cast<uint8_t>(~mask);
  }
}

inline bool test_bit(const uint8_t* bytes, uint32_t bit) { return ((bytes[bit / 8] >> (bit % 8)) & 1) != 0; }

}  // namespace lantern::lib
