// The hypercall sites of a guest program (tests/guests/guest_header.inc HYPERCALL): every listed
// VMCALL (0F 01 C1, SDM Vol. 2B) becomes VMMCALL (0F 01 D9, APM Vol. 3 "VMMCALL") before the
// program runs under SVM, where VMCALL raises #UD. The header's table says where the sites are
// (offset 32: the guest-physical start and end of an array of 32-bit site addresses), so no byte
// pattern is guessed. Portable (host-tested).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "kernel/lib/result.h"

namespace lantern::svm {

inline constexpr size_t kGuestSiteTableOffset = 32;  // two little-endian 32-bit GPAs: start, end
inline constexpr size_t kGuestHeaderWithSitesBytes = 40;

// Rewrites the sites of `image` (a guest program as loaded at guest-physical `load_address`) in
// place and returns how many it rewrote. kInvalidArgument, with nothing changed, when the header
// is too short, the table lies outside the image or is not a whole number of entries, or a site
// is outside the image or does not hold VMCALL.
Result<size_t> rewrite_hypercalls_to_vmmcall(std::span<uint8_t> image, uint64_t load_address);

}  // namespace lantern::svm
