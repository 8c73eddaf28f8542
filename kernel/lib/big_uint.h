// Fixed-capacity arbitrary-precision unsigned integer used by the exact decimal <-> binary
// floating-point conversions in format.cpp and number_parse.cpp. Header-only, no heap.
// Callers size the capacity so that it can never be exceeded; if an operation would need more
// words anyway it sets overflowed() instead of writing out of bounds, and the result is wrong
// but memory-safe (tests assert it never happens).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lantern::lib::detail {

template <size_t kWords>
class BigUint {
 public:
  BigUint() = default;
  explicit BigUint(uint64_t v) { set_u64(v); }

  void set_u64(uint64_t v) {
    size_ = 0;
    while (v != 0) {
      words_[size_++] = static_cast<uint32_t>(v);
      v >>= 32;
    }
  }

  bool is_zero() const { return size_ == 0; }
  bool overflowed() const { return overflowed_; }
  size_t size() const { return size_; }

  // Number of significant bits (0 for zero).
  size_t bit_length() const {
    if (size_ == 0) return 0;
    return (size_ - 1) * 32 + (32 - static_cast<size_t>(__builtin_clz(words_[size_ - 1])));
  }

  // this = this * m + add.
  void mul_add_small(uint32_t m, uint32_t add) {
    uint64_t carry = add;
    for (size_t i = 0; i < size_; ++i) {
      const uint64_t t = static_cast<uint64_t>(words_[i]) * m + carry;
      words_[i] = static_cast<uint32_t>(t);
      carry = t >> 32;
    }
    if (carry != 0) push(static_cast<uint32_t>(carry));
  }

  // this *= 10^k.
  void mul_pow10(unsigned k) {
    while (k >= 9) {
      mul_add_small(1000000000u, 0);
      k -= 9;
    }
    static constexpr uint32_t kSmall[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
    if (k > 0) mul_add_small(kSmall[k], 0);
  }

  // this <<= bits.
  void shift_left(size_t bits) {
    if (size_ == 0 || bits == 0) return;
    const size_t word_shift = bits / 32;
    const unsigned bit_shift = static_cast<unsigned>(bits % 32);
    const size_t new_size = size_ + word_shift + (bit_shift != 0 ? 1 : 0);
    if (new_size > kWords) {
      overflowed_ = true;
      return;
    }
    if (bit_shift == 0) {
      for (size_t i = size_; i-- > 0;) words_[i + word_shift] = words_[i];
    } else {
      words_[size_ + word_shift] = 0;
      for (size_t i = size_; i-- > 0;) {
        words_[i + word_shift + 1] |= words_[i] >> (32 - bit_shift);
        words_[i + word_shift] = words_[i] << bit_shift;
      }
    }
    for (size_t i = 0; i < word_shift && i < kWords; ++i) words_[i] = 0;
    size_ = new_size;
    trim();
  }

  // this >>= 1.
  void shift_right_one() {
    for (size_t i = 0; i < size_; ++i) {
      uint32_t next = (i + 1 < size_) ? words_[i + 1] : 0;
      words_[i] = (words_[i] >> 1) | (next << 31);
    }
    trim();
  }

  // -1, 0, 1.
  int compare(const BigUint& o) const {
    if (size_ != o.size_) return size_ < o.size_ ? -1 : 1;
    for (size_t i = size_; i-- > 0;) {
      if (words_[i] != o.words_[i]) return words_[i] < o.words_[i] ? -1 : 1;
    }
    return 0;
  }

  // this -= o; requires this >= o.
  void subtract(const BigUint& o) {
    int64_t borrow = 0;
    for (size_t i = 0; i < size_; ++i) {
      int64_t t =
          static_cast<int64_t>(words_[i]) - borrow - static_cast<int64_t>(i < o.size_ ? o.words_[i] : 0);
      borrow = t < 0 ? 1 : 0;
      words_[i] = static_cast<uint32_t>(t + (borrow << 32));
    }
    trim();
  }

  // this += o.
  void add(const BigUint& o) {
    uint64_t carry = 0;
    const size_t n = size_ > o.size_ ? size_ : o.size_;
    for (size_t i = 0; i < n; ++i) {
      uint64_t t = carry + (i < size_ ? words_[i] : 0) + (i < o.size_ ? o.words_[i] : 0);
      if (i >= size_) {
        if (i >= kWords) {
          overflowed_ = true;
          return;
        }
        size_ = i + 1;
      }
      words_[i] = static_cast<uint32_t>(t);
      carry = t >> 32;
    }
    if (carry != 0) push(static_cast<uint32_t>(carry));
  }

  // Quotient of this / d when it is known to be below 10 (digit generation); this becomes the
  // remainder.
  uint32_t divide_small_quotient(const BigUint& d) {
    uint32_t q = 0;
    while (compare(d) >= 0) {
      subtract(d);
      ++q;
    }
    return q;
  }

 private:
  void push(uint32_t w) {
    if (size_ >= kWords) {
      overflowed_ = true;
      return;
    }
    words_[size_++] = w;
  }
  void trim() {
    while (size_ > 0 && words_[size_ - 1] == 0) --size_;
  }

  uint32_t words_[kWords] = {};
  size_t size_ = 0;
  bool overflowed_ = false;
};

}  // namespace lantern::lib::detail
