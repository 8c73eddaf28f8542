#include "vmx/vmx_controls.h"

namespace lantern::vmx {

Result<AdjustedControls> adjust_controls(uint32_t required, uint32_t optional, uint64_t capability_msr) {
  const uint32_t must_be_one = allowed0_of(capability_msr);
  const uint32_t may_be_one = allowed1_of(capability_msr);
  // SDM Vol. 3D A.3.1: a control whose allowed-0 bit is 1 must be 1, and then its allowed-1
  // bit is 1 too. A capability MSR that says otherwise is corrupt (or a broken emulator).
  if ((must_be_one & ~may_be_one) != 0) {
    return make_error(ErrorCode::kMalformed,
                      "VMX capability MSR requires a control bit that it does not allow",
                      must_be_one & ~may_be_one);
  }
  const uint32_t missing = required & ~may_be_one;
  if (missing != 0) {
    return make_error(ErrorCode::kUnsupported,
                      "a required VMX control is not supported by this CPU (detail = bits)", missing);
  }
  AdjustedControls out;
  out.dropped_optional = optional & ~may_be_one & ~required;
  out.value = ((required | optional) & may_be_one) | must_be_one;
  return out;
}

Result<uint32_t> adjust_controls(uint32_t desired, uint64_t capability_msr) {
  const AdjustedControls adjusted = TRY(adjust_controls(desired, 0, capability_msr));
  return adjusted.value;
}

Result<uint64_t> adjust_tertiary_controls(uint64_t required, uint64_t optional, uint64_t capability_msr) {
  const uint64_t missing = required & ~capability_msr;
  if (missing != 0) {
    return make_error(ErrorCode::kUnsupported,
                      "a required tertiary VMX control is not supported (detail = bits)", missing);
  }
  return (required | optional) & capability_msr;
}

}  // namespace lantern::vmx
