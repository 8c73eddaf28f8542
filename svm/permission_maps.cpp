#include "svm/permission_maps.h"

#include "kernel/lib/bit_array.h"

namespace lantern::svm {
namespace {

// APM Vol. 2 Table 15-5: first MSR of each range and the byte offset of its vector.
struct MsrpmRange {
  uint32_t first_msr;
  uint32_t byte_offset;
};
constexpr uint32_t kMsrsPerRange = 0x2000;
constexpr MsrpmRange kMsrpmRanges[] = {
    {0x00000000, 0x0000},
    {0xc0000000, 0x0800},
    {0xc0010000, 0x1000},
};

using lib::set_bit;
using lib::test_bit;

const MsrpmRange* range_of(uint32_t msr) {
  for (const MsrpmRange& r : kMsrpmRanges) {
    if (msr >= r.first_msr && msr - r.first_msr < kMsrsPerRange) return &r;
  }
  return nullptr;
}
// The read bit of `msr` (the write bit follows it), counted from the start of the map.
uint32_t read_bit_of(const MsrpmRange& r, uint32_t msr) {
  return r.byte_offset * 8 + 2 * (msr - r.first_msr);
}

}  // namespace

void intercept_all_io(uint8_t* iopm) {
  for (size_t i = 0; i < kIopmBytes; ++i) iopm[i] = 0xff;
}

void intercept_all_msrs(uint8_t* msrpm) {
  for (size_t i = 0; i < kMsrpmBytes; ++i) msrpm[i] = 0xff;
}

Result<void> set_io_intercept(uint8_t* iopm, PortRange range, bool on) {
  if (range.count == 0) return make_error(ErrorCode::kInvalidArgument, "empty I/O port range");
  if (range.first >= kIoPortCount || range.count > kIoPortCount - range.first) {
    return make_error(ErrorCode::kInvalidArgument, "I/O port range goes past port 0xFFFF", range.first);
  }
  for (uint32_t port = range.first; port < range.first + range.count; ++port) set_bit(iopm, port, on);
  return ok();
}

bool io_access_exits(const uint8_t* iopm, uint32_t port, uint32_t width) {
  if (port >= kIoPortCount || width == 0 || width > 4) return true;
  // APM 15.10.1: the bits of every byte the access touches; past 0xFFFF they lie in the third page.
  for (uint32_t p = port; p < port + width; ++p) {
    if (test_bit(iopm, p)) return true;
  }
  return false;
}

Result<void> set_msr_intercept(uint8_t* msrpm, MsrRange range, MsrAccess access, bool on) {
  if (range.count == 0) return make_error(ErrorCode::kInvalidArgument, "empty MSR range");
  if (range.count - 1 > 0xffffffffu - range.first) {
    return make_error(ErrorCode::kInvalidArgument, "MSR range wraps past 0xFFFFFFFF", range.first);
  }
  const uint32_t last = range.first + (range.count - 1);
  const MsrpmRange* first_range = range_of(range.first);
  const MsrpmRange* last_range = range_of(last);
  if (first_range == nullptr && last_range == nullptr) {
    // Always intercepted (APM 15.11); a range that touches no permission range at all.
    bool touches = false;
    for (const MsrpmRange& r : kMsrpmRanges) {
      if (range.first < r.first_msr && last >= r.first_msr) touches = true;
    }
    if (!touches) {
      if (on) return ok();
      return make_error(ErrorCode::kInvalidArgument,
                        "MSR outside the MSRPM ranges is always intercepted (APM 15.11)", range.first);
    }
  }
  if (first_range == nullptr || first_range != last_range) {
    return make_error(ErrorCode::kInvalidArgument, "MSR range crosses an MSRPM range boundary", range.first);
  }
  for (uint32_t msr = range.first;; ++msr) {
    const uint32_t bit = read_bit_of(*first_range, msr);
    if ((static_cast<uint8_t>(access) & static_cast<uint8_t>(MsrAccess::kRead)) != 0) set_bit(msrpm, bit, on);
    if ((static_cast<uint8_t>(access) & static_cast<uint8_t>(MsrAccess::kWrite)) != 0) set_bit(msrpm, bit + 1, on);
    if (msr == last) break;
  }
  return ok();
}

bool msr_access_exits(const uint8_t* msrpm, uint32_t msr, bool write) {
  const MsrpmRange* r = range_of(msr);
  if (r == nullptr) return true;
  return test_bit(msrpm, read_bit_of(*r, msr) + (write ? 1 : 0));
}

}  // namespace lantern::svm
