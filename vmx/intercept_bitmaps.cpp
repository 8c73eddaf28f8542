#include "vmx/intercept_bitmaps.h"

#include "kernel/lib/bit_array.h"

namespace lantern::vmx {
namespace {

// Quarters of the MSR bitmap (SDM Vol. 3C 24.6.9).
constexpr size_t kMsrReadLowOffset = 0;
constexpr size_t kMsrReadHighOffset = 1024;
constexpr size_t kMsrWriteLowOffset = 2048;
constexpr size_t kMsrWriteHighOffset = 3072;

using lib::set_bit;
using lib::test_bit;

// The quarter offset and bit index of `msr`, or false when the MSR is in no bitmap range.
bool locate_msr(uint32_t msr, bool write, size_t& offset, uint32_t& bit) {
  if (msr <= kMsrLowLast) {
    offset = write ? kMsrWriteLowOffset : kMsrReadLowOffset;
    bit = msr - kMsrLowFirst;
    return true;
  }
  if (msr >= kMsrHighFirst && msr <= kMsrHighLast) {
    offset = write ? kMsrWriteHighOffset : kMsrReadHighOffset;
    bit = msr - kMsrHighFirst;
    return true;
  }
  return false;
}

}  // namespace

void intercept_all_io(IoBitmaps bitmaps) {
  for (size_t i = 0; i < kIoBitmapBytes; ++i) {
    bitmaps.a[i] = 0xff;
    bitmaps.b[i] = 0xff;
  }
}

void intercept_all_msrs(uint8_t* msr_bitmap) {
  for (size_t i = 0; i < kMsrBitmapBytes; ++i) msr_bitmap[i] = 0xff;
}

Result<void> set_io_intercept(IoBitmaps bitmaps, IoPortRange range, bool on) {
  if (range.count == 0) return make_error(ErrorCode::kInvalidArgument, "empty I/O port range");
  if (range.first >= kIoPortCount || range.count > kIoPortCount - range.first) {
    return make_error(ErrorCode::kInvalidArgument, "I/O port range goes past port 0xFFFF", range.first);
  }
  for (uint32_t port = range.first; port < range.first + range.count; ++port) {
    if (port < kIoBitmapBFirstPort) {
      set_bit(bitmaps.a, port, on);
    } else {
      set_bit(bitmaps.b, port - kIoBitmapBFirstPort, on);
    }
  }
  return ok();
}

bool io_access_exits(IoBitmaps bitmaps, uint32_t port, uint32_t width) {
  // An access wrapping around the 64 KiB I/O space exits (SDM Vol. 3C 25.1.3).
  if (port >= kIoPortCount || width == 0 || width > kIoPortCount - port) return true;
  for (uint32_t p = port; p < port + width; ++p) {
    const bool bit =
        p < kIoBitmapBFirstPort ? test_bit(bitmaps.a, p) : test_bit(bitmaps.b, p - kIoBitmapBFirstPort);
    if (bit) return true;
  }
  return false;
}

Result<void> set_msr_intercept(uint8_t* msr_bitmap, MsrRange range, MsrAccess access, bool on) {
  if (range.count == 0) return make_error(ErrorCode::kInvalidArgument, "empty MSR range");
  if (range.count - 1 > UINT32_MAX - range.first) {
    return make_error(ErrorCode::kInvalidArgument, "MSR range wraps past 0xFFFFFFFF", range.first);
  }
  const uint32_t last = range.first + (range.count - 1);
  const bool in_low = last <= kMsrLowLast;
  const bool in_high = range.first >= kMsrHighFirst && last <= kMsrHighLast;
  if (!in_low && !in_high) {
    const bool touches_low = range.first <= kMsrLowLast;
    const bool touches_high = range.first <= kMsrHighLast && last >= kMsrHighFirst;
    if (touches_low || touches_high) {
      return make_error(ErrorCode::kInvalidArgument, "MSR range crosses the edge of an MSR bitmap range",
                        range.first);
    }
    // Entirely outside both ranges: RDMSR/WRMSR always exit (SDM Vol. 3C 25.1.3).
    if (on) return ok();
    return make_error(ErrorCode::kInvalidArgument,
                      "MSR outside 0-0x1FFF and 0xC0000000-0xC0001FFF always exits", range.first);
  }
  for (uint32_t i = 0; i < range.count; ++i) {
    const uint32_t msr = range.first + i;
    size_t offset = 0;
    uint32_t bit = 0;
    if ((static_cast<uint8_t>(access) & static_cast<uint8_t>(MsrAccess::kRead)) != 0) {
      (void)locate_msr(msr, false, offset, bit);
      set_bit(msr_bitmap + offset, bit, on);
    }
    if ((static_cast<uint8_t>(access) & static_cast<uint8_t>(MsrAccess::kWrite)) != 0) {
      (void)locate_msr(msr, true, offset, bit);
      set_bit(msr_bitmap + offset, bit, on);
    }
  }
  return ok();
}

bool msr_access_exits(const uint8_t* msr_bitmap, uint32_t msr, bool write) {
  size_t offset = 0;
  uint32_t bit = 0;
  if (!locate_msr(msr, write, offset, bit)) return true;
  return test_bit(msr_bitmap + offset, bit);
}

}  // namespace lantern::vmx
