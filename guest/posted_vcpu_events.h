// What other cores post to one vCPU between two of its entries, for either backend: fixed
// interrupts for its local APIC (with their trigger mode), INIT and SIPI. Any core posts (lock
// free); the owning core takes them before it enters the guest. The vCPU sets its own attention
// bit and kicks its core after a post. Portable.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace lantern::guest {

class PostedVcpuEvents {
 public:
  void post_interrupt(uint8_t vector, bool level_triggered) {
    const uint64_t bit = uint64_t{1} << (vector & 63);
    // The level bit first: take_interrupts() reads a vector's bit before its level bit.
    if (level_triggered) level_vectors_[vector >> 6].fetch_or(bit, std::memory_order_acq_rel);
    vectors_[vector >> 6].fetch_or(bit, std::memory_order_acq_rel);
  }
  void post_init() { init_.store(true, std::memory_order_seq_cst); }
  void post_sipi(uint8_t vector) { sipi_.store(kSipiPosted | vector, std::memory_order_seq_cst); }

  bool init_or_sipi_pending() const {
    return init_.load(std::memory_order_relaxed) || sipi_.load(std::memory_order_relaxed) != 0;
  }

  struct InitSipi {
    bool init = false;
    std::optional<uint8_t> sipi;  // the start vector, when a SIPI was posted
  };
  // Owner core. The SIPI is read first: an INIT posted before it is then seen too, and a SIPI
  // posted after this read stays for the next take. The INIT comes first (SDM Vol. 3A 9.4.4).
  InitSipi take_init_sipi() {
    InitSipi out;
    const uint32_t sipi = sipi_.exchange(0, std::memory_order_seq_cst);
    out.init = init_.exchange(false, std::memory_order_seq_cst);
    if ((sipi & kSipiPosted) != 0) out.sipi = static_cast<uint8_t>(sipi & 0xff);
    return out;
  }

  // Owner core: accept(vector, level_triggered) for each posted vector, lowest first.
  template <typename Accept>
  void take_interrupts(Accept accept) {
    for (size_t word = 0; word < vectors_.size(); ++word) {
      uint64_t bits = vectors_[word].exchange(0, std::memory_order_acq_rel);
      if (bits == 0) continue;
      const uint64_t level = level_vectors_[word].fetch_and(~bits, std::memory_order_acq_rel) & bits;
      while (bits != 0) {
        const unsigned bit = static_cast<unsigned>(__builtin_ctzll(bits));
        bits &= bits - 1;
        accept(static_cast<uint8_t>(word * 64 + bit), ((level >> bit) & 1) != 0);
      }
    }
  }

  // Drops the posted interrupts (an INIT, a reset); INIT and SIPI with clear().
  void clear_interrupts() {
    for (auto& word : vectors_) word.store(0, std::memory_order_relaxed);
    for (auto& word : level_vectors_) word.store(0, std::memory_order_relaxed);
  }
  void clear() {
    clear_interrupts();
    init_.store(false, std::memory_order_relaxed);
    sipi_.store(0, std::memory_order_relaxed);
  }

 private:
  static constexpr uint32_t kSipiPosted = 0x100;
  std::array<std::atomic<uint64_t>, 4> vectors_{};        // 256 bits
  std::array<std::atomic<uint64_t>, 4> level_vectors_{};  // ... those level-triggered
  std::atomic<bool> init_{false};
  std::atomic<uint32_t> sipi_{0};  // kSipiPosted | vector
};

}  // namespace lantern::guest
