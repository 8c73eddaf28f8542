#include "vmx/demo_programs.h"

namespace lantern::vmx {
namespace {

bool valid_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

}  // namespace

Result<std::string_view> demo_program_for_cpu(std::optional<std::string_view> programs, uint32_t cpu_index) {
  if (!programs) return kDefaultDemoProgram;
  std::string_view rest = *programs;
  uint32_t index = 0;
  for (;;) {
    const size_t comma = rest.find(',');
    const std::string_view entry = rest.substr(0, comma);
    if (index == cpu_index) {
      if (entry.empty()) return kDefaultDemoProgram;
      if (entry.size() > kMaxGuestProgramName) {
        return make_error(ErrorCode::kInvalidArgument, "guest program name longer than 16 characters", index);
      }
      for (char c : entry) {
        if (!valid_name_char(c)) {
          return make_error(ErrorCode::kInvalidArgument, "guest program name outside [a-z0-9_-]", index);
        }
      }
      return entry;
    }
    if (comma == std::string_view::npos) return kDefaultDemoProgram;  // the list is shorter
    rest.remove_prefix(comma + 1);
    ++index;
  }
}

}  // namespace lantern::vmx
