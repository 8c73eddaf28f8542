// Kernel command line helpers (portable). The command line is the Multiboot2 "boot command
// line" string (spec 3.6.5): words separated by spaces, each either `key=value` or a bare
// `flag`. Used by several subsystems (loglevel=, selftest, ip=, console.token=, ...).
//
// Rules: words are split on ASCII space, tab, CR and LF; a word's key is everything before
// its first '=' (the value may itself contain '='); a bare word has an empty value; when a
// key appears more than once the LAST occurrence wins (as on Linux, later words override).
// No quoting is supported. Nothing is copied: results point into `cmdline`.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace lantern {

// The value of `key`, "" for a bare flag, or nullopt when the key is absent (or empty).
std::optional<std::string_view> cmdline_value(std::string_view cmdline, std::string_view key);

// True when `key` is present as a bare flag, or as key=value with a value other than
// "0", "no", "off" or "false" (so `selftest`, `selftest=1` enable; `selftest=0` disables).
bool cmdline_has_flag(std::string_view cmdline, std::string_view key);

// `key`'s value parsed as an unsigned integer: decimal, or hexadecimal with a 0x/0X prefix.
// nullopt when absent, empty, not a number, or above UINT64_MAX.
std::optional<uint64_t> cmdline_u64(std::string_view cmdline, std::string_view key);

}  // namespace lantern
