// What both backends take from the kernel to build a guest: its nested page tables' pages and
// the built-in guest programs among the boot modules. Kernel-only.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "guest/nested_paging.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

// Pages for nested page tables (EPT or NPT), zeroed, from the kernel's frame allocator.
PageAllocator& kernel_page_allocator();

// The guest program `name` among the boot modules (the header of tests/guests/guest_header.inc:
// "LNTGUEST" at offset 8, the NUL-padded name in the 16 bytes at 16). kNotFound when no module
// carries that name.
Result<std::span<const uint8_t>> find_guest_program(std::string_view name);

}  // namespace lantern::guest
