// Helpers shared by the libFuzzer harnesses: an invariant check that stops the run with a message
// (libFuzzer then saves the input as a crash reproducer), and a small deterministic generator for
// the decisions a harness derives from its input (split points, clock steps, buffer room).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace lantern::fuzz {

// A broken invariant is a finding, like a sanitizer report: print it and abort.
[[noreturn]] inline void invariant_failed(const char* file, int line, const char* what, std::string_view detail) {
  std::fprintf(stderr, "FUZZ INVARIANT FAILED %s:%d: %s (%.*s)\n", file, line, what,
               static_cast<int>(detail.size() > 400 ? 400 : detail.size()), detail.data());
  std::abort();
}

#define FUZZ_CHECK(condition, detail)                                                 \
  do {                                                                                \
    if (!(condition)) ::lantern::fuzz::invariant_failed(__FILE__, __LINE__, #condition, (detail)); \
  } while (0)

// xorshift64* seeded from every input byte (FNV-1a): each mutation of the input also changes the
// decisions derived from it, and a saved reproducer replays the same decisions.
class InputDerivedChoices {
 public:
  InputDerivedChoices(const uint8_t* data, size_t size) {
    uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64-bit offset basis
    for (size_t i = 0; i < size; ++i) {
      h ^= data[i];
      h *= 0x100000001b3ull;  // FNV-1a 64-bit prime
    }
    state_ = h | 1;  // xorshift needs a non-zero state
  }
  uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545f4914f6cdd1dull;  // xorshift64* multiplier (Vigna 2016)
  }
  // Uniform enough in [low, high].
  uint64_t in_range(uint64_t low, uint64_t high) { return low + next() % (high - low + 1); }
  bool one_in(uint64_t n) { return next() % n == 0; }

 private:
  uint64_t state_;
};

}  // namespace lantern::fuzz
