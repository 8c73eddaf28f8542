// Host-side fakes for the net/ seams: RAM-backed MMIO windows, a DMA arena with made-up
// physical addresses, and a PCI configuration space model that implements BAR sizing, RW1C
// status bits and absent functions. Used by tests/host/net_*_test.cpp only.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <new>
#include <utility>
#include <vector>

#include "net/dma.h"
#include "net/mmio.h"
#include "net/pci/pci.h"

namespace lantern::net::testing {

// A window over plain RAM, little-endian, bounds-checked (out-of-range reads return all ones
// and count as faults so tests can assert none happened).
class RamMmio : public MmioWindow {
 public:
  explicit RamMmio(size_t bytes) : mem_(bytes, 0) {}
  uint8_t read8(uint32_t off) override { return get<uint8_t>(off); }
  uint16_t read16(uint32_t off) override { return get<uint16_t>(off); }
  uint32_t read32(uint32_t off) override { return get<uint32_t>(off); }
  void write8(uint32_t off, uint8_t v) override { put(off, v); }
  void write16(uint32_t off, uint16_t v) override { put(off, v); }
  void write32(uint32_t off, uint32_t v) override { put(off, v); }

  std::vector<uint8_t>& bytes() { return mem_; }
  size_t faults = 0;
  std::vector<std::pair<uint32_t, uint32_t>> write_log;  // (offset, value) of every write

 protected:
  template <typename T>
  T get(uint32_t off) {
    if (size_t{off} + sizeof(T) > mem_.size()) {
      ++faults;
      return static_cast<T>(~T{0});
    }
    T v;
    std::memcpy(&v, mem_.data() + off, sizeof(T));
    return v;
  }
  template <typename T>
  void put(uint32_t off, T v) {
    write_log.emplace_back(off, static_cast<uint32_t>(v));
    if (size_t{off} + sizeof(T) > mem_.size()) {
      ++faults;
      return;
    }
    std::memcpy(mem_.data() + off, &v, sizeof(T));
  }
  std::vector<uint8_t> mem_;
};

// A DMA arena: physical address = kPhysBase + offset into the arena. Allocations are aligned
// in both spaces because the arena itself is 4096-aligned.
class FakeDma : public DmaAllocator {
 public:
  static constexpr uint64_t kPhysBase = 0x40000000;
  explicit FakeDma(size_t bytes = 4 << 20) : bytes_(bytes) {
    arena_ = static_cast<uint8_t*>(::operator new (bytes, std::align_val_t{4096}));
    std::memset(arena_, 0xA5, bytes);  // not zero: alloc_dma must zero
  }
  ~FakeDma() { ::operator delete (arena_, std::align_val_t{4096}); }
  FakeDma(const FakeDma&) = delete;
  FakeDma& operator=(const FakeDma&) = delete;

  Result<DmaBuffer> alloc_dma(size_t size, size_t align) override {
    ++allocations;
    if (fail_after >= 0 && allocations > fail_after) {
      return make_error(ErrorCode::kOutOfMemory, "fake dma: injected failure");
    }
    if (size == 0 || align == 0 || (align & (align - 1)) != 0) {
      return make_error(ErrorCode::kInvalidArgument, "fake dma: bad request");
    }
    size_t start = (used_ + align - 1) & ~(align - 1);
    if (start + size > bytes_) return make_error(ErrorCode::kOutOfMemory, "fake dma: full");
    used_ = start + size;
    std::memset(arena_ + start, 0, size);
    return DmaBuffer{arena_ + start, kPhysBase + start, size};
  }

  // CPU pointer for a bus address range, or nullptr if it is not inside the arena.
  uint8_t* translate(uint64_t phys, size_t len = 1) {
    if (phys < kPhysBase || phys - kPhysBase + len > bytes_) return nullptr;
    return arena_ + (phys - kPhysBase);
  }

  int allocations = 0;
  int fail_after = -1;  // >= 0: allocations beyond this count fail

 private:
  uint8_t* arena_;
  size_t bytes_;
  size_t used_ = 0;
};

// PCI configuration space model.
class FakePciConfig : public pci::PciConfigAccess {
 public:
  struct Function {
    std::array<uint8_t, 256> cfg{};
    std::array<uint8_t, 256> writable{};  // per-byte: 1 if software may change it
    std::array<uint32_t, 6> bar_mask{};   // writable address bits of each BAR dword
    int bar_writes_with_decode_on = 0;

    uint32_t dword(uint16_t off) const {
      uint32_t v;
      std::memcpy(&v, cfg.data() + off, 4);
      return v;
    }
    void set32(uint16_t off, uint32_t v) { std::memcpy(cfg.data() + off, &v, 4); }
    void set16(uint16_t off, uint16_t v) { std::memcpy(cfg.data() + off, &v, 2); }
    void set8(uint16_t off, uint8_t v) { cfg[off] = v; }
    uint16_t command() const { return static_cast<uint16_t>(dword(0x04)); }
  };

  static uint64_t key(pci::PciAddress a) {
    return (uint64_t{a.segment} << 24) | (uint64_t{a.bus} << 16) | (uint64_t{a.device} << 8) | a.function;
  }

  // A type 0 (or type 1) function with the given identity; everything from 0x40 up writable,
  // plus command, cache line, latency, interrupt line.
  Function& add(pci::PciAddress a, uint16_t vendor, uint16_t device, uint8_t class_code, uint8_t subclass,
                uint8_t prog_if = 0, uint8_t header_type = 0, uint8_t revision = 0) {
    Function& f = functions_[key(a)];
    f.set16(0x00, vendor);
    f.set16(0x02, device);
    f.set8(0x08, revision);
    f.set8(0x09, prog_if);
    f.set8(0x0A, subclass);
    f.set8(0x0B, class_code);
    f.set8(0x0E, header_type);
    for (int i = 0x40; i < 256; ++i) f.writable[i] = 1;
    f.writable[0x04] = f.writable[0x05] = 1;
    f.writable[0x0C] = f.writable[0x0D] = f.writable[0x3C] = 1;
    return f;
  }

  // A BAR whose firmware value is `value` (flag bits included) decoding `size` bytes. For a
  // 64-bit BAR pass the full 64-bit value; the next slot becomes its upper dword.
  static void set_bar(Function& f, int index, uint64_t value, uint64_t size, bool is64 = false) {
    uint64_t flag_mask = (value & 1) ? 0x3 : 0xF;
    uint64_t addr_mask = ~(size - 1) & ~flag_mask;
    f.set32(static_cast<uint16_t>(0x10 + 4 * index), static_cast<uint32_t>(value));
    f.bar_mask[index] = static_cast<uint32_t>(addr_mask);
    if (is64) {
      f.set32(static_cast<uint16_t>(0x14 + 4 * index), static_cast<uint32_t>(value >> 32));
      f.bar_mask[index + 1] = static_cast<uint32_t>(addr_mask >> 32);
    }
  }

  // Capability: id at `off`, next pointer, then `body` bytes from off + 2.
  static void add_cap(Function& f, uint8_t off, uint8_t id, uint8_t next, std::vector<uint8_t> body = {}) {
    f.cfg[off] = id;
    f.cfg[off + 1] = next;
    for (size_t i = 0; i < body.size(); ++i) f.cfg[off + 2 + i] = body[i];
    f.cfg[0x06] |= 0x10;  // Status: capabilities list
    if (f.cfg[0x34] == 0) f.cfg[0x34] = off;
  }

  Function* find(pci::PciAddress a) {
    auto it = functions_.find(key(a));
    return it == functions_.end() ? nullptr : &it->second;
  }

  uint32_t read32(pci::PciAddress a, uint16_t off) override {
    ++reads;
    if (off & 3) ++misaligned;
    Function* f = find(a);
    if (!f || off >= 256) return 0xFFFFFFFFu;
    return f->dword(off & 0xFC);
  }

  void write32(pci::PciAddress a, uint16_t off, uint32_t v) override {
    ++writes;
    if (off & 3) ++misaligned;
    Function* f = find(a);
    if (!f || off >= 256) return;
    off &= 0xFC;
    uint8_t header_type = f->cfg[0x0E] & 0x7F;
    int bar_slots = header_type == 0 ? 6 : header_type == 1 ? 2 : 0;
    if (off >= 0x10 && off < 0x10 + 4 * bar_slots) {
      int i = (off - 0x10) / 4;
      if (f->command() & 0x3) ++f->bar_writes_with_decode_on;
      uint32_t old = f->dword(off);
      f->set32(off, (old & ~f->bar_mask[i]) | (v & f->bar_mask[i]));
      return;
    }
    if (off == 0x04) {
      uint16_t status = static_cast<uint16_t>(f->dword(0x04) >> 16);
      uint16_t rw1c = 0xF900;  // PCI 3.0 6.2.3: error bits 15:11 and 8 are RW1C
      status = static_cast<uint16_t>(status & ~((v >> 16) & rw1c));
      f->set32(0x04, (uint32_t{status} << 16) | (v & 0xFFFF));
      return;
    }
    for (int i = 0; i < 4; ++i) {
      if (f->writable[off + i]) f->cfg[off + i] = static_cast<uint8_t>(v >> (8 * i));
    }
  }

  int reads = 0;
  int writes = 0;
  int misaligned = 0;

 private:
  std::map<uint64_t, Function> functions_;
};

}  // namespace lantern::net::testing
