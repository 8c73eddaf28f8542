// The I/O permission map (IOPM) and MSR permission map (MSRPM) of an SVM vCPU (pure,
// host-tested): which IN/OUT and RDMSR/WRMSR accesses exit when the VMCB's IOIO_PROT / MSR_PROT
// intercepts are on. A set bit means "intercept"; vCPUs start with every bit set and passthrough
// is an explicit call (the same rule as vmx/intercept_bitmaps.h).
//
// IOPM (APM Vol. 2 15.10.1 "I/O Permissions Map"): 12 KiB, physically contiguous, one bit per
// port (bit p%8 of byte p/8). An access of w bytes to port p checks the bits of p .. p+w-1; the
// bits past port 0xFFFF (in the third 4 KiB page) catch accesses that run past 0xFFFF, and stay
// set.
//
// MSRPM (APM Vol. 2 15.11 "MSR Intercepts", Table 15-5): 8 KiB, two bits per MSR, the even bit
// intercepts RDMSR and the odd bit WRMSR:
//   bytes 0x0000-0x07FF   MSRs 0000_0000h-0000_1FFFh
//   bytes 0x0800-0x0FFF   MSRs C000_0000h-C000_1FFFh
//   bytes 0x1000-0x17FF   MSRs C001_0000h-C001_1FFFh
//   bytes 0x1800-0x1FFF   reserved
// An MSR outside the three ranges is always intercepted: it cannot be passed through.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::svm {

inline constexpr size_t kIopmBytes = 12 * 1024;
inline constexpr size_t kMsrpmBytes = 8 * 1024;
inline constexpr uint32_t kIoPortCount = 0x10000;

struct PortRange {
  uint32_t first = 0;
  uint32_t count = 1;
};
struct MsrRange {
  uint32_t first = 0;
  uint32_t count = 1;
};
enum class MsrAccess : uint8_t { kRead = 1, kWrite = 2, kReadWrite = 3 };

// Fills the map with ones (every access exits).
void intercept_all_io(uint8_t* iopm);
void intercept_all_msrs(uint8_t* msrpm);

// Sets (on = intercept) or clears the bits of every port in the range. kInvalidArgument (nothing
// changed) for count 0 or a range past 0xFFFF.
Result<void> set_io_intercept(uint8_t* iopm, PortRange range, bool on);
// Whether an access of `width` bytes (1, 2 or 4) at `port` exits.
bool io_access_exits(const uint8_t* iopm, uint32_t port, uint32_t width = 1);

// Sets or clears the read and/or write bits of every MSR in the range, which must lie inside one
// of the three ranges. Outside them: intercepting (on = true) is accepted and changes nothing,
// passthrough is kInvalidArgument. Count 0, a range crossing a range boundary or wrapping past
// 2^32: kInvalidArgument. Nothing changes on an error.
Result<void> set_msr_intercept(uint8_t* msrpm, MsrRange range, MsrAccess access, bool on);
// Whether RDMSR (write = false) or WRMSR (write = true) of `msr` exits.
bool msr_access_exits(const uint8_t* msrpm, uint32_t msr, bool write);

}  // namespace lantern::svm
