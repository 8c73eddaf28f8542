// Fuzz target: the VMCS name and encoding lookups (vmx/vmcs_fields.h), as the console's
// GET .../vmcs?name= reaches them with any text a client sends.
//
// The input is the name; its first four bytes are also read as an encoding. Invariants:
//   - find_field_by_name() finds a field only by its exact SDM name, or NAME_HIGH for a 64-bit
//     field (high set exactly then); kNotFound otherwise;
//   - find_field_by_encoding() of a found field's encoding (with the high-access bit when high)
//     gives the same field back, and for an arbitrary encoding it finds a field only when the
//     encoding, without bit 0, is that field's and no reserved bit (12, 31:15) is set.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_check.h"
#include "vmx/vmcs_fields.h"

namespace lantern::vmx {
namespace {

void run(const uint8_t* data, size_t size) {
  const std::string name(reinterpret_cast<const char*>(data), size);  // exact size: ASan sees overreads
  const Result<VmcsFieldRef> by_name = find_field_by_name(name);
  if (by_name) {
    const VmcsFieldInfo& f = *by_name->info;
    if (by_name->high) {
      FUZZ_CHECK(f.width == VmcsWidth::k64, name);
      FUZZ_CHECK(name == std::string(f.name) + "_HIGH", name);
    } else {
      FUZZ_CHECK(name == f.name, name);
    }
    const uint32_t encoding = f.encoding | (by_name->high ? kVmcsEncodingHighAccess : 0u);
    const Result<VmcsFieldRef> back = find_field_by_encoding(encoding);
    FUZZ_CHECK(back && back->info == &f && back->high == by_name->high, name);
  } else {
    FUZZ_CHECK(by_name.error().code == ErrorCode::kNotFound, name);
    for (const VmcsFieldInfo& f : kVmcsFields) FUZZ_CHECK(name != f.name, name);
  }

  if (size < 4) return;
  const uint32_t encoding = static_cast<uint32_t>(data[0]) | static_cast<uint32_t>(data[1]) << 8 |
                            static_cast<uint32_t>(data[2]) << 16 | static_cast<uint32_t>(data[3]) << 24;
  const Result<VmcsFieldRef> by_encoding = find_field_by_encoding(encoding);
  if (by_encoding) {
    FUZZ_CHECK((encoding & kVmcsEncodingReservedMask) == 0, name);
    FUZZ_CHECK(by_encoding->info->encoding == (encoding & ~kVmcsEncodingHighAccess), name);
    FUZZ_CHECK(by_encoding->high == ((encoding & kVmcsEncodingHighAccess) != 0), name);
    if (by_encoding->high) FUZZ_CHECK(by_encoding->info->width == VmcsWidth::k64, name);
    const std::string round_trip = std::string(by_encoding->info->name) + (by_encoding->high ? "_HIGH" : "");
    const Result<VmcsFieldRef> named = find_field_by_name(round_trip);
    FUZZ_CHECK(named && named->info == by_encoding->info && named->high == by_encoding->high, round_trip);
  }
}

}  // namespace
}  // namespace lantern::vmx

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lantern::vmx::run(data, size);
  return 0;
}
