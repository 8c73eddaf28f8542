// A byte ring for a guest's console output: one writer (the core that owns the vCPU) and
// readers on any core (the debug console), without a lock. Readers name what they want by
// stream offset (bytes written since the VM started), so a lab script can follow the output
// with `?since=` and always learns how much it missed. Portable (host-tested).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace lantern::guest {

class OutputRing {
 public:
  // Holds a whole Linux boot log (about 20-30 KiB to the shell prompt), which the kernel writes
  // in one burst when its serial console registers: a client polling once a second loses none.
  static constexpr size_t kBytes = 64 * 1024;
  // One slot is always reserved for the byte being written, so a reader can tell a torn slot
  // from a held one without a lock: at most this many bytes are readable.
  static constexpr size_t kReadableBytes = kBytes - 1;

  // Writer side (one core).
  void put(char c) {
    const uint64_t offset = total_.load(std::memory_order_relaxed);
    // A reader that sees this byte (and then fences) also sees the count up to `offset`, so it
    // knows the slot may have been overwritten (the seqlock pattern; no cost on x86).
    std::atomic_thread_fence(std::memory_order_release);
    bytes_[offset % kBytes].store(c, std::memory_order_relaxed);
    total_.store(offset + 1, std::memory_order_release);  // the byte is in place before the count
  }
  uint64_t total() const { return total_.load(std::memory_order_acquire); }

  // start: stream offset of out[0]. It is past `since` when the ring no longer holds those bytes
  // or the writer overtook the copy (missed = start - since). next: what to pass as `since` next
  // time. length: bytes copied, at most capacity. A `since` beyond the stream returns nothing,
  // with next = the current total.
  struct Slice {
    uint64_t start = 0;
    uint64_t next = 0;
    size_t length = 0;
  };
  Slice read_since(uint64_t since, char* out, size_t capacity) const;

 private:
  // Relaxed atomics: a reader may race the writer on a slot; read_since() drops what it raced.
  std::array<std::atomic<char>, kBytes> bytes_{};
  std::atomic<uint64_t> total_{0};
};

}  // namespace lantern::guest
