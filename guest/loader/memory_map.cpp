#include "guest/loader/memory_map.h"

namespace lantern::guest {
namespace {

void put_le(uint8_t* out, uint64_t value, unsigned bytes) {
  for (unsigned i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(value >> (8 * i));
}

}  // namespace

Result<GuestMemoryMap> GuestMemoryMap::for_ram(uint64_t ram_bytes) {
  if (ram_bytes < kMinRamBytes) return make_error(ErrorCode::kInvalidArgument, "guest RAM below the 2 MiB minimum", ram_bytes);
  if (ram_bytes > kMaxRamBytes) return make_error(ErrorCode::kInvalidArgument, "guest RAM above the 3072 MiB maximum", ram_bytes);
  if (ram_bytes % 0x1000 != 0) return make_error(ErrorCode::kInvalidArgument, "guest RAM not a multiple of 4 KiB", ram_bytes);
  GuestMemoryMap map;
  map.ram_bytes_ = ram_bytes;
  map.ranges_[0] = {0, kLowRamEnd, MemoryRangeType::kRam};
  map.ranges_[1] = {kLowRamEnd, kHighRamStart - kLowRamEnd, MemoryRangeType::kReserved};
  map.ranges_[2] = {kHighRamStart, ram_bytes - kHighRamStart, MemoryRangeType::kRam};
  map.ranges_[3] = {kIoApicBase, kApicWindowSize, MemoryRangeType::kReserved};
  map.ranges_[4] = {kLocalApicBase, kApicWindowSize, MemoryRangeType::kReserved};
  map.count_ = 5;
  return map;
}

bool GuestMemoryMap::is_ram(uint64_t base, uint64_t length) const {
  if (base + length < base) return false;
  for (const MemoryRange& r : ranges()) {
    if (r.type == MemoryRangeType::kRam && base >= r.base && base + length <= r.end()) return true;
  }
  return false;
}

Result<uint64_t> GuestMemoryMap::find_ram(uint64_t from, uint64_t length, uint64_t align) const {
  for (const MemoryRange& r : ranges()) {
    if (r.type != MemoryRangeType::kRam) continue;
    uint64_t start = from > r.base ? from : r.base;
    start = (start + align - 1) & ~(align - 1);
    if (start >= r.base && start <= r.end() && length <= r.end() - start) return start;
  }
  return make_error(ErrorCode::kOutOfMemory, "no room left in guest RAM", length);
}

Result<size_t> GuestMemoryMap::write_e820(std::span<uint8_t> out) const {
  if (out.size() < count_ * kE820EntryBytes) return make_error(ErrorCode::kFull, "e820 table buffer too small", count_);
  for (size_t i = 0; i < count_; ++i) {
    uint8_t* e = out.data() + i * kE820EntryBytes;
    put_le(e, ranges_[i].base, 8);
    put_le(e + 8, ranges_[i].length, 8);
    put_le(e + 16, static_cast<uint32_t>(ranges_[i].type), 4);
  }
  return count_;
}

}  // namespace lantern::guest
