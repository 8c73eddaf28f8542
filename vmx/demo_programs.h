// Which guest program each core's demo VM runs. The kernel command line may name one per core:
//
//   vmx.demo.programs=NAME[,NAME]...
//
// The i-th name is core i's program (core 0 is the BSP). Cores beyond the list, and empty
// entries (`demo,,hostile_storm`), run the default program "demo". A name is what a guest
// program's header carries (tests/guests/guest_header.inc): 1 to 16 characters from
// [a-z0-9_-]. Portable (host-tested); vmx/hw/guest_vm.cpp looks the program up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "kernel/lib/result.h"

namespace lantern::vmx {

inline constexpr std::string_view kDefaultDemoProgram = "demo";
inline constexpr std::string_view kDemoProgramsOption = "vmx.demo.programs";
inline constexpr size_t kMaxGuestProgramName = 16;  // the header's name field (guest_vm.h)

// The program for core `cpu_index` given the option's value (nullopt when the option is
// absent). kInvalidArgument when the name at that index is longer than kMaxGuestProgramName or
// holds a character outside [a-z0-9_-]; the detail is the entry's index.
Result<std::string_view> demo_program_for_cpu(std::optional<std::string_view> programs, uint32_t cpu_index);

}  // namespace lantern::vmx
