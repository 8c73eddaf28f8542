// Kernel command line helpers; see cmdline.h for the word syntax.
#include "kernel/boot/cmdline.h"

namespace lantern {
namespace {

constexpr bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// Hand-written comparisons: std::string_view's compare/find/substr would pull memcmp, memchr
// and the out_of_range thrower into the freestanding kernel.
constexpr bool equals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string_view> cmdline_value(std::string_view cmdline, std::string_view key) {
  if (key.empty()) return std::nullopt;
  std::optional<std::string_view> found;
  size_t i = 0;
  while (i < cmdline.size()) {
    while (i < cmdline.size() && is_space(cmdline[i])) ++i;
    const size_t start = i;
    while (i < cmdline.size() && !is_space(cmdline[i])) ++i;
    if (i == start) break;  // only trailing whitespace was left
    const char* word = cmdline.data() + start;
    const size_t word_len = i - start;
    size_t eq = 0;
    while (eq < word_len && word[eq] != '=') ++eq;
    if (!equals(std::string_view(word, eq), key)) continue;
    found = (eq == word_len) ? std::string_view() : std::string_view(word + eq + 1, word_len - eq - 1);
  }
  return found;
}

bool cmdline_has_flag(std::string_view cmdline, std::string_view key) {
  const std::optional<std::string_view> value = cmdline_value(cmdline, key);
  if (!value.has_value()) return false;
  using namespace std::string_view_literals;
  return !equals(*value, "0"sv) && !equals(*value, "no"sv) && !equals(*value, "off"sv) &&
         !equals(*value, "false"sv);
}

std::optional<uint64_t> cmdline_u64(std::string_view cmdline, std::string_view key) {
  std::optional<std::string_view> value = cmdline_value(cmdline, key);
  if (!value.has_value() || value->empty()) return std::nullopt;
  std::string_view digits = *value;
  uint64_t base = 10;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
    base = 16;
    digits = std::string_view(digits.data() + 2, digits.size() - 2);
  }
  uint64_t result = 0;
  for (char c : digits) {
    uint64_t d;
    if (c >= '0' && c <= '9')
      d = static_cast<uint64_t>(c - '0');
    else if (base == 16 && c >= 'a' && c <= 'f')
      d = static_cast<uint64_t>(c - 'a' + 10);
    else if (base == 16 && c >= 'A' && c <= 'F')
      d = static_cast<uint64_t>(c - 'A' + 10);
    else
      return std::nullopt;
    if (result > (UINT64_MAX - d) / base) return std::nullopt;  // would overflow
    result = result * base + d;
  }
  return result;
}

}  // namespace lantern
