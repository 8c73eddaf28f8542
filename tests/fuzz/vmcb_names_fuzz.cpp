// Fuzz target: the VMCB field lookups (svm/vmcb.h) and the SVM exit-code names (svm/exit_code.h),
// as the console's GET .../vmcb?name= and its exit lists reach them with any text or value.
//
// The input is the name; its first two bytes are also read as an offset and its first eight as
// an exit code, and the whole input (repeated) fills a VMCB image. Invariants:
//   - find_vmcb_field_by_name() finds a field only by its exact APM name, and the field at that
//     field's offset is the same one; nullptr otherwise, and then no table row has that name;
//   - find_vmcb_field_by_offset() finds a field only at exactly its offset, inside its area
//     (control below 0x400, save from 0x400), within the 4 KiB VMCB;
//   - read_vmcb_field() gives the field's little-endian bytes, zero-extended to 64 bits;
//   - exit_code_name() and guest::exit_kind_name(exit_kind()) always give a non-empty name.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "svm/exit_code.h"
#include "svm/vmcb.h"
#include "tests/fuzz/fuzz_check.h"

namespace lantern::svm {
namespace {

void check_field(const VmcbFieldInfo& f, const std::string& detail) {
  FUZZ_CHECK(f.width == 8 || f.width == 16 || f.width == 32 || f.width == 64, detail);
  FUZZ_CHECK(f.offset + f.width / 8 <= kVmcbBytes, detail);
  FUZZ_CHECK((f.area == VmcbArea::kControl) == (f.offset < kVmcbSaveAreaOffset), detail);
}

void run(const uint8_t* data, size_t size) {
  const std::string name(reinterpret_cast<const char*>(data), size);  // exact size: ASan sees overreads
  const VmcbFieldInfo* by_name = find_vmcb_field_by_name(name);
  if (by_name != nullptr) {
    FUZZ_CHECK(by_name->name == name, name);
    check_field(*by_name, name);
    FUZZ_CHECK(find_vmcb_field_by_offset(by_name->offset) == by_name, name);
  } else {
    for (const VmcbFieldInfo& f : kVmcbFields) FUZZ_CHECK(f.name != name, name);
  }

  static Vmcb vmcb;  // 4 KiB: filled from the input
  auto* bytes = reinterpret_cast<uint8_t*>(&vmcb);
  for (size_t i = 0; i < sizeof(Vmcb); ++i) bytes[i] = size == 0 ? 0 : data[i % size];

  if (size >= 2) {
    const uint16_t offset = static_cast<uint16_t>(data[0] | data[1] << 8);
    const VmcbFieldInfo* at = find_vmcb_field_by_offset(offset);
    if (at != nullptr) {
      FUZZ_CHECK(at->offset == offset, name);
      check_field(*at, name);
      FUZZ_CHECK(find_vmcb_field_by_name(at->name) == at, name);
      uint64_t expected = 0;
      for (unsigned b = 0; b < at->width / 8; ++b) expected |= uint64_t{bytes[at->offset + b]} << (8 * b);
      FUZZ_CHECK(read_vmcb_field(vmcb, *at) == expected, name);
    } else {
      for (const VmcbFieldInfo& f : kVmcbFields) FUZZ_CHECK(f.offset != offset, name);
    }
  }
  uint64_t exitcode = 0;
  std::memcpy(&exitcode, data, size < 8 ? size : 8);
  FUZZ_CHECK(!exit_code_name(exitcode).empty(), name);
  FUZZ_CHECK(!guest::exit_kind_name(exit_kind(exitcode)).empty(), name);
}

}  // namespace
}  // namespace lantern::svm

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lantern::svm::run(data, size);
  return 0;
}
