// Split virtqueue (virtio 1.0 spec 2.4): the descriptor table, the available ring (driver ->
// device) and the used ring (device -> driver), with the driver's bookkeeping.
//
// Memory: one DmaBuffer holds the three parts, laid out by virtqueue_layout() with the
// alignments of spec 2.4 (descriptor table 16, available ring 2, used ring 4). The modern PCI
// transport programs each part's address separately (4.1.4.3: queue_desc, queue_driver,
// queue_device), so the legacy 4096-byte used-ring alignment (2.4.2) is not needed.
//
// Indices: avail->idx and used->idx are free-running 16-bit counters that wrap from 65535 to 0
// (2.4.5, 2.4.6); the ring slot of index i is i mod size, and size is a power of two
// (2.4: "Queue Size value is always a power of 2"), so i & (size - 1) is correct across the wrap.
// Differences between indices are taken in uint16_t arithmetic for the same reason.
//
// Free descriptors are chained through their `next` fields (free_head_ -> ... ), so adding a
// chain of n descriptors takes the first n from the free list in order. Each chain's head index
// carries a caller token returned by get_used().
//
// Fields are little-endian (2.4: le16/le32/le64); this code runs on x86 only, so native.
// Single-threaded: callers serialise access to one queue.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "kernel/lib/result.h"
#include "net/dma.h"

namespace lantern::net::virtio {

// struct virtq_desc (2.4.4).
struct VirtqDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(VirtqDesc) == 16, "virtio 1.0 2.4.4: descriptors are 16 bytes");

namespace desc_flags {
inline constexpr uint16_t kNext = 1;      // VIRTQ_DESC_F_NEXT: chain continues at `next`
inline constexpr uint16_t kWrite = 2;     // VIRTQ_DESC_F_WRITE: device-writable
inline constexpr uint16_t kIndirect = 4;  // VIRTQ_DESC_F_INDIRECT (not used by this driver)
}  // namespace desc_flags

// struct virtq_used_elem (2.4.6).
struct VirtqUsedElem {
  uint32_t id;   // head of the chain
  uint32_t len;  // bytes the device wrote into the chain's writable part
};
static_assert(sizeof(VirtqUsedElem) == 8);

inline constexpr uint16_t kAvailFlagNoInterrupt = 1;  // VIRTQ_AVAIL_F_NO_INTERRUPT (2.4.7)
inline constexpr uint16_t kUsedFlagNoNotify = 1;      // VIRTQ_USED_F_NO_NOTIFY (2.4.8)

// Alignments, spec 2.4 ("Alignment requirements" table).
inline constexpr size_t kDescAlign = 16;
inline constexpr size_t kAvailAlign = 2;
inline constexpr size_t kUsedAlign = 4;

struct VirtqueueLayout {
  size_t desc_offset = 0;
  size_t avail_offset = 0;
  size_t used_offset = 0;
  size_t total_bytes = 0;
  // Part sizes (2.4): 16 * n; 6 + 2 * n (flags, idx, ring[n], used_event); 6 + 8 * n.
  size_t desc_bytes = 0;
  size_t avail_bytes = 0;
  size_t used_bytes = 0;
};

// kInvalidArgument unless size is a power of two in [1, 32768] (2.4: max queue size 32768).
Result<VirtqueueLayout> virtqueue_layout(uint16_t size);

// vring_need_event (2.4.7.2 / 2.4.8.2): true if moving the index from `old_idx` to `new_idx`
// crossed `event_idx`, i.e. event_idx lies in [old_idx, new_idx) modulo 2^16.
constexpr bool virtq_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

struct VirtqBuffer {
  uint64_t phys = 0;
  uint32_t len = 0;
};

struct VirtqUsed {
  uint64_t token = 0;
  uint32_t len = 0;  // as reported by the device: bound it by the buffer size before use
  uint16_t head = 0;
};

class SplitVirtqueue {
 public:
  static constexpr uint16_t kMaxSize = 1024;  // bookkeeping arrays are sized for this

  // `memory` must be at least virtqueue_layout(size).total_bytes, with virt and phys 16-byte
  // aligned; it is zeroed here. `event_idx`: VIRTIO_F_EVENT_IDX was negotiated (6: bit 29).
  // kInvalidArgument for a size that is not a power of two in [1, kMaxSize] or bad memory.
  Result<void> init(uint16_t size, const DmaBuffer& memory, bool event_idx);

  uint16_t size() const { return size_; }
  uint16_t num_free() const { return num_free_; }
  bool event_idx() const { return event_idx_; }
  uint64_t desc_phys() const { return phys_ + layout_.desc_offset; }
  uint64_t avail_phys() const { return phys_ + layout_.avail_offset; }  // "driver area"
  uint64_t used_phys() const { return phys_ + layout_.used_offset; }    // "device area"
  uint16_t avail_idx() const { return avail_idx_; }                     // next avail->idx to publish
  uint16_t last_used_idx() const { return last_used_idx_; }

  // Exposes a chain: device-readable buffers first, then device-writable ones (2.4.4.2: the
  // driver MUST NOT place a readable descriptor after a writable one), and publishes it in the
  // available ring (3.2.1.1-3.2.1.3). Returns the head descriptor index.
  // kInvalidArgument: empty chain, or longer than the queue; kFull: not enough free
  // descriptors now (nothing is written).
  Result<uint16_t> add_buffer(std::span<const VirtqBuffer> readable, std::span<const VirtqBuffer> writable,
                              uint64_t token);

  // After add_buffer() calls: whether the device wants a notification for what was published
  // since the last call (2.4.8.2: avail_event with EVENT_IDX, else the used ring's NO_NOTIFY
  // flag). Resets the "published since" point.
  bool kick_prepare();

  // True if the device has returned a chain not yet collected.
  bool has_used() const;

  // The next used chain, or nullopt when none. Returns the chain's descriptors to the free
  // list. kMalformed if the device reports an index jump larger than the queue (detail = the
  // jump) or a head that is not an outstanding chain (detail = the id); the bad entry is skipped.
  Result<std::optional<VirtqUsed>> get_used();

  // Interrupt suppression (2.4.7.2). enable_interrupts() returns true if used entries arrived
  // meanwhile (the caller should poll again before sleeping).
  void disable_interrupts();
  bool enable_interrupts();

  // Test/debug views of the rings (read-only).
  const VirtqDesc* descriptors() const { return desc_; }

 private:
  uint16_t* avail_flags() { return avail_; }
  uint16_t* avail_idx_field() { return avail_ + 1; }
  uint16_t* avail_ring() { return avail_ + 2; }
  uint16_t* used_event() { return avail_ + 2 + size_; }
  uint16_t* used_flags() const { return used_; }
  uint16_t* used_idx_field() const { return used_ + 1; }
  VirtqUsedElem* used_ring() const { return reinterpret_cast<VirtqUsedElem*>(used_ + 2); }
  uint16_t* avail_event() const { return reinterpret_cast<uint16_t*>(used_ring() + size_); }

  uint16_t size_ = 0;
  uint16_t num_free_ = 0;
  uint16_t free_head_ = 0;
  uint16_t avail_idx_ = 0;         // shadow of avail->idx
  uint16_t kicked_avail_idx_ = 0;  // avail idx at the last kick_prepare()
  uint16_t last_used_idx_ = 0;
  bool event_idx_ = false;
  bool interrupts_enabled_ = true;
  uint64_t phys_ = 0;
  VirtqueueLayout layout_{};
  VirtqDesc* desc_ = nullptr;
  uint16_t* avail_ = nullptr;
  uint16_t* used_ = nullptr;
  std::array<uint64_t, kMaxSize> tokens_{};
  std::array<uint16_t, kMaxSize> chain_length_{};  // 0: not an outstanding head
};

}  // namespace lantern::net::virtio
