// Extended processor state (XSAVE) facts the hypervisor needs, as pure code: the XCR0 bits,
// the rules an XSETBV must satisfy (a guest's XSETBV always exits, SDM Vol. 3C 25.1.2, and
// Lantern validates it before loading the guest's XCR0), and the legacy-area defaults a fresh
// guest starts with. The kernel side (XSAVE/XRSTOR around guest entry) is in guest/hw/xstate_hw.h and each backend's vCPU.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lantern::guest {

// XCR0 state-component bits (SDM Vol. 1 13.1, 13.3).
inline constexpr uint64_t kXcr0X87 = 1ull << 0;
inline constexpr uint64_t kXcr0Sse = 1ull << 1;
inline constexpr uint64_t kXcr0Avx = 1ull << 2;
inline constexpr uint64_t kXcr0BndRegs = 1ull << 3;
inline constexpr uint64_t kXcr0BndCsr = 1ull << 4;
inline constexpr uint64_t kXcr0Opmask = 1ull << 5;
inline constexpr uint64_t kXcr0ZmmHi256 = 1ull << 6;
inline constexpr uint64_t kXcr0Hi16Zmm = 1ull << 7;
inline constexpr uint64_t kXcr0Pkru = 1ull << 9;
inline constexpr uint64_t kXcr0TileCfg = 1ull << 17;
inline constexpr uint64_t kXcr0TileData = 1ull << 18;
inline constexpr uint64_t kXcr0Avx512 = kXcr0Opmask | kXcr0ZmmHi256 | kXcr0Hi16Zmm;

// XCR0 after reset and for a new vCPU: x87 only (SDM Vol. 1 13.3).
inline constexpr uint64_t kXcr0Reset = kXcr0X87;

// Legacy region of the XSAVE/FXSAVE area (SDM Vol. 1 10.5.1, Table 10-2): FCW at byte 0,
// MXCSR at byte 24; their power-up values are 0x037f (SDM Vol. 1 8.1.5) and 0x1f80 (10.2.3.1).
inline constexpr size_t kFxsaveFcwOffset = 0;
inline constexpr size_t kFxsaveMxcsrOffset = 24;
inline constexpr uint16_t kFcwReset = 0x037f;
inline constexpr uint32_t kMxcsrReset = 0x1f80;
inline constexpr size_t kFxsaveAreaBytes = 512;
// XSAVE header: XSTATE_BV at byte 512, XCOMP_BV at 520 (SDM Vol. 1 13.4.2).
inline constexpr size_t kXsaveHeaderOffset = 512;
inline constexpr size_t kXsaveMinimumBytes = 576;  // legacy area + header

// One state component's place in the XSAVE area, from CPUID.(EAX=0DH,ECX=i) for i >= 2 (SDM
// Vol. 2A CPUID leaf 0DH): EAX its size, EBX its offset in the standard format, ECX[1] whether
// the compacted format aligns it to 64 bytes.
struct XstateComponent {
  uint32_t size = 0;
  uint32_t offset = 0;
  bool align64 = false;
};
// Components 0..18 (x87 .. AMX tile data); 0 and 1 live in the legacy area.
inline constexpr size_t kXstateComponents = 19;
// CPUID.(EAX=0DH,ECX=i):ECX[1]: the component is 64-byte aligned when compacted.
inline constexpr uint32_t kCpuidXsaveComponentAlign64 = 1u << 1;

// The standard-format size of an area holding `features` (CPUID.(EAX=0DH,ECX=0):EBX for XCR0
// = features): the end of the highest component, at least 576 bytes (SDM Vol. 1 13.4.1).
uint32_t xsave_standard_size(uint64_t features, const XstateComponent (&components)[kXstateComponents]);
// The compacted-format size (CPUID.(EAX=0DH,ECX=1):EBX for XCR0 | IA32_XSS = features): 576,
// then each component in order, 64-byte aligned where it asks (SDM Vol. 1 13.4.3).
uint32_t xsave_compacted_size(uint64_t features, const XstateComponent (&components)[kXstateComponents]);

// Writes the state a vCPU starts with into a zeroed save area of at least 576 bytes: x87 and
// SSE in their init configuration with FCW and MXCSR at their reset values, XSTATE_BV = 0 (so
// XRSTOR puts every other component in its init state). False when the area is too small.
bool init_guest_xsave_area(uint8_t* area, size_t size);

// Why an XSETBV faults, or kOk. Every reason is a #GP(0) in the guest (SDM Vol. 2C XSETBV,
// "Protected Mode Exceptions").
enum class XsetbvFault : uint8_t {
  kOk,
  kNotXcr0,             // ECX != 0: only XCR0 is writable
  kX87Clear,            // bit 0 must be 1
  kUnsupportedBit,      // a bit the processor does not support (CPUID.(EAX=0DH,ECX=0):EDX:EAX)
  kAvxWithoutSse,       // bit 2 needs bit 1
  kBndMismatch,         // bits 3 and 4 are set together or not at all
  kAvx512Incomplete,    // bits 7:5 are all set or all clear, and need bit 2
  kAmxMismatch,         // bits 17 and 18 are set together or not at all
};
const char* xsetbv_fault_name(XsetbvFault f);

// `supported_xcr0` is what the host offers guests (at most CPUID.(EAX=0DH,ECX=0):EDX:EAX).
XsetbvFault check_xsetbv(uint32_t xcr_index, uint64_t value, uint64_t supported_xcr0);

// IA32_XSS: the supervisor state components XSAVES/XRSTORS manage (SDM Vol. 1 13.3; Vol. 4
// Table 2-2, MSR 0xDA0; reset value 0).
inline constexpr uint32_t kMsrIa32Xss = 0xda0;
// CPUID.(EAX=0DH,ECX=1):EAX[3]: XSAVES/XRSTORS and IA32_XSS are supported; ECX/EDX of that
// subleaf are the IA32_XSS bits the processor supports (SDM Vol. 1 13.2, Vol. 2A CPUID).
inline constexpr uint32_t kCpuidXsaveSubleaf1EaxXsaves = 1u << 3;

struct XssSupport {
  bool xsaves = false;     // XSAVES/XRSTORS and IA32_XSS exist
  uint64_t supported = 0;  // IA32_XSS bits the processor supports
};
// Decodes CPUID.(EAX=0DH,ECX=1). No XSAVES: nothing supported, whatever ECX/EDX say.
XssSupport decode_xss_support(uint32_t eax, uint32_t ecx, uint32_t edx);
// A WRMSR to IA32_XSS: true when `value` sets only bits in `allowed` (else #GP(0), SDM Vol. 4
// Table 2-2: reserved bits of IA32_XSS fault).
bool xss_write_allowed(uint64_t value, uint64_t allowed);

}  // namespace lantern::guest
