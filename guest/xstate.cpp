#include "guest/xstate.h"

namespace lantern::guest {

bool init_guest_xsave_area(uint8_t* area, size_t size) {
  if (area == nullptr || size < kXsaveMinimumBytes) return false;
  for (size_t i = 0; i < kXsaveMinimumBytes; ++i) area[i] = 0;
  area[kFxsaveFcwOffset] = static_cast<uint8_t>(kFcwReset & 0xff);
  area[kFxsaveFcwOffset + 1] = static_cast<uint8_t>(kFcwReset >> 8);
  for (size_t i = 0; i < 4; ++i) {
    area[kFxsaveMxcsrOffset + i] = static_cast<uint8_t>(kMxcsrReset >> (8 * i));
  }
  return true;
}

const char* xsetbv_fault_name(XsetbvFault f) {
  switch (f) {
    case XsetbvFault::kOk: return "ok";
    case XsetbvFault::kNotXcr0: return "ECX is not 0 (only XCR0 is writable)";
    case XsetbvFault::kX87Clear: return "XCR0 bit 0 (x87) must be 1";
    case XsetbvFault::kUnsupportedBit: return "XCR0 sets a bit the host does not support";
    case XsetbvFault::kAvxWithoutSse: return "XCR0 enables AVX without SSE";
    case XsetbvFault::kBndMismatch: return "XCR0 bits 3 and 4 (MPX) differ";
    case XsetbvFault::kAvx512Incomplete: return "XCR0 bits 7:5 (AVX-512) are partial or lack AVX";
    case XsetbvFault::kAmxMismatch: return "XCR0 bits 17 and 18 (AMX) differ";
  }
  return "?";
}

XsetbvFault check_xsetbv(uint32_t xcr_index, uint64_t value, uint64_t supported_xcr0) {
  // SDM Vol. 2C XSETBV, Operation and exceptions; Vol. 1 13.3 for the bit dependencies.
  if (xcr_index != 0) return XsetbvFault::kNotXcr0;
  if ((value & kXcr0X87) == 0) return XsetbvFault::kX87Clear;
  if ((value & ~supported_xcr0) != 0) return XsetbvFault::kUnsupportedBit;
  if ((value & kXcr0Avx) != 0 && (value & kXcr0Sse) == 0) return XsetbvFault::kAvxWithoutSse;
  if (((value & kXcr0BndRegs) != 0) != ((value & kXcr0BndCsr) != 0)) return XsetbvFault::kBndMismatch;
  const uint64_t avx512 = value & kXcr0Avx512;
  if (avx512 != 0 && (avx512 != kXcr0Avx512 || (value & kXcr0Avx) == 0)) {
    return XsetbvFault::kAvx512Incomplete;
  }
  if (((value & kXcr0TileCfg) != 0) != ((value & kXcr0TileData) != 0)) return XsetbvFault::kAmxMismatch;
  return XsetbvFault::kOk;
}

uint32_t xsave_standard_size(uint64_t features, const XstateComponent (&components)[kXstateComponents]) {
  uint32_t end = kXsaveMinimumBytes;
  for (size_t i = 2; i < kXstateComponents; ++i) {
    if ((features & (1ull << i)) == 0) continue;
    const uint32_t component_end = components[i].offset + components[i].size;
    if (component_end > end) end = component_end;
  }
  return end;
}

uint32_t xsave_compacted_size(uint64_t features, const XstateComponent (&components)[kXstateComponents]) {
  uint32_t end = kXsaveMinimumBytes;
  for (size_t i = 2; i < kXstateComponents; ++i) {
    if ((features & (1ull << i)) == 0) continue;
    if (components[i].align64) end = (end + 63u) & ~63u;
    end += components[i].size;
  }
  return end;
}

XssSupport decode_xss_support(uint32_t eax, uint32_t ecx, uint32_t edx) {
  XssSupport x;
  if ((eax & kCpuidXsaveSubleaf1EaxXsaves) == 0) return x;
  x.xsaves = true;
  x.supported = (static_cast<uint64_t>(edx) << 32) | ecx;
  return x;
}

bool xss_write_allowed(uint64_t value, uint64_t allowed) {
  return (value & ~allowed) == 0;
}

}  // namespace lantern::guest
