// The I/O bitmaps and the MSR bitmap of a vCPU (pure, host-tested): which port / MSR accesses
// cause VM exits. A set bit means "exit"; Lantern's vCPUs start with every bit set
// (intercept-everything) and passthrough is an explicit call.
//
// I/O bitmaps (SDM Vol. 3C 24.6.4): two 4 KiB pages, A for ports 0x0000-0x7FFF and B for ports
// 0x8000-0xFFFF, one bit per port (bit n%8 of byte n/8 within its page). An access of width w to
// port p exits if the bit of any port p..p+w-1 is set (25.1.3); an access wrapping past 0xFFFF
// always exits.
//
// MSR bitmap (SDM Vol. 3C 24.6.9): one 4 KiB page of four 1 KiB quarters:
//   bytes    0-1023  read bitmap for low MSRs   0x00000000-0x00001FFF
//   bytes 1024-2047  read bitmap for high MSRs  0xC0000000-0xC0001FFF
//   bytes 2048-3071  write bitmap for low MSRs
//   bytes 3072-4095  write bitmap for high MSRs
// RDMSR/WRMSR of an MSR outside both ranges always exits (25.1.3): it cannot be passed through.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::vmx {

inline constexpr size_t kIoBitmapBytes = 4096;  // each of A and B
inline constexpr size_t kMsrBitmapBytes = 4096;
inline constexpr uint32_t kIoPortCount = 0x10000;
inline constexpr uint32_t kIoBitmapBFirstPort = 0x8000;
inline constexpr uint32_t kMsrLowFirst = 0x00000000;
inline constexpr uint32_t kMsrLowLast = 0x00001fff;
inline constexpr uint32_t kMsrHighFirst = 0xc0000000;
inline constexpr uint32_t kMsrHighLast = 0xc0001fff;

// Ports [first, first + count).
struct IoPortRange {
  uint32_t first = 0;
  uint32_t count = 1;
};
// MSRs [first, first + count).
struct MsrRange {
  uint32_t first = 0;
  uint32_t count = 1;
};

enum class MsrAccess : uint8_t {
  kRead = 1,
  kWrite = 2,
  kReadWrite = 3,
};

// The two I/O bitmap pages (each kIoBitmapBytes).
struct IoBitmaps {
  uint8_t* a = nullptr;
  uint8_t* b = nullptr;
};

// Fills the pages with ones (every access exits).
void intercept_all_io(IoBitmaps bitmaps);
void intercept_all_msrs(uint8_t* msr_bitmap);

// Sets (on = intercept) or clears (on = passthrough) the bits of every port in the range, which
// may span A and B. kInvalidArgument (nothing changed) for count 0 or a range past 0xFFFF.
Result<void> set_io_intercept(IoBitmaps bitmaps, IoPortRange range, bool on);
// Whether an access of `width` bytes (1, 2 or 4) at `port` exits under these bitmaps.
bool io_access_exits(IoBitmaps bitmaps, uint32_t port, uint32_t width = 1);

// Sets or clears the read and/or write bits of every MSR in the range. The range must lie in
// one of the two bitmap ranges; an MSR outside them always exits, so intercepting it (on =
// true) is accepted and changes nothing, and passing it through (on = false) is
// kInvalidArgument. A range crossing a range boundary, count 0 or wrapping past 2^32 is
// kInvalidArgument. Nothing changes on an error.
Result<void> set_msr_intercept(uint8_t* msr_bitmap, MsrRange range, MsrAccess access, bool on);
// Whether RDMSR (write = false) or WRMSR (write = true) of `msr` exits under this bitmap.
bool msr_access_exits(const uint8_t* msr_bitmap, uint32_t msr, bool write);

}  // namespace lantern::vmx
