#include "svm/hypercall_sites.h"

namespace lantern::svm {
namespace {

// VMCALL is 0F 01 C1 (SDM Vol. 2B), VMMCALL 0F 01 D9 (APM Vol. 3): they differ in the third byte.
constexpr uint8_t kVmcall[3] = {0x0f, 0x01, 0xc1};
constexpr uint8_t kVmmcallThirdByte = 0xd9;

uint32_t read_u32(std::span<const uint8_t> bytes, size_t offset) {
  return static_cast<uint32_t>(bytes[offset]) | (static_cast<uint32_t>(bytes[offset + 1]) << 8) |
         (static_cast<uint32_t>(bytes[offset + 2]) << 16) | (static_cast<uint32_t>(bytes[offset + 3]) << 24);
}

// The image offset of guest-physical `gpa` when `bytes` bytes from there lie inside the image.
bool image_offset(uint64_t gpa, uint64_t bytes, uint64_t load_address, size_t image_size, size_t& offset) {
  if (gpa < load_address) return false;
  const uint64_t off = gpa - load_address;
  if (off > image_size || bytes > image_size - off) return false;
  offset = static_cast<size_t>(off);
  return true;
}

}  // namespace

Result<size_t> rewrite_hypercalls_to_vmmcall(std::span<uint8_t> image, uint64_t load_address) {
  if (image.size() < kGuestHeaderWithSitesBytes) {
    return make_error(ErrorCode::kInvalidArgument, "guest program shorter than its header", image.size());
  }
  const uint32_t start = read_u32(image, kGuestSiteTableOffset);
  const uint32_t end = read_u32(image, kGuestSiteTableOffset + 4);
  size_t table = 0;
  if (end < start || (end - start) % 4 != 0 || !image_offset(start, end - start, load_address, image.size(), table)) {
    return make_error(ErrorCode::kInvalidArgument, "hypercall-site table outside the guest program", start);
  }
  const size_t count = (end - start) / 4;
  // Check every site first, so a bad table changes nothing.
  for (size_t i = 0; i < count; ++i) {
    const uint32_t site = read_u32(image, table + 4 * i);
    size_t at = 0;
    if (!image_offset(site, sizeof(kVmcall), load_address, image.size(), at)) {
      return make_error(ErrorCode::kInvalidArgument, "hypercall site outside the guest program", site);
    }
    if (image[at] != kVmcall[0] || image[at + 1] != kVmcall[1] || image[at + 2] != kVmcall[2]) {
      return make_error(ErrorCode::kInvalidArgument, "hypercall site does not hold VMCALL", site);
    }
  }
  for (size_t i = 0; i < count; ++i) {
    size_t at = 0;
    (void)image_offset(read_u32(image, table + 4 * i), sizeof(kVmcall), load_address, image.size(), at);
    image[at + 2] = kVmmcallThirdByte;
  }
  return count;
}

}  // namespace lantern::svm
