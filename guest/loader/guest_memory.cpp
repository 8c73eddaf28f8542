#include "guest/loader/guest_memory.h"

#include "kernel/lib/string.h"

namespace lantern::guest {

Result<void> ByteSpanGuestMemory::write(uint64_t gpa, std::span<const uint8_t> bytes) {
  if (!contains(gpa, bytes.size())) return make_error(ErrorCode::kInvalidArgument, "guest write outside guest RAM", gpa);
  if (!bytes.empty()) lib::mem_copy(ram_.data() + gpa, bytes.data(), bytes.size());
  return ok();
}

Result<void> ByteSpanGuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
  if (!contains(gpa, out.size())) return make_error(ErrorCode::kInvalidArgument, "guest read outside guest RAM", gpa);
  if (!out.empty()) lib::mem_copy(out.data(), ram_.data() + gpa, out.size());
  return ok();
}

Result<void> ByteSpanGuestMemory::fill(uint64_t gpa, uint8_t value, uint64_t length) {
  if (!contains(gpa, length)) return make_error(ErrorCode::kInvalidArgument, "guest fill outside guest RAM", gpa);
  if (length != 0) lib::mem_set(ram_.data() + gpa, value, length);
  return ok();
}

}  // namespace lantern::guest
