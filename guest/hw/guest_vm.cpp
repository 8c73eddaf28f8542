#include "guest/hw/guest_vm.h"

#include "kernel/core/log.h"

namespace lantern::guest {

void GuestConsole::put(uint32_t vm_id, char c) {
  output_.put(c);
  if (c == '\r') return;
  if (c == '\n' || line_len_ == sizeof(line_) - 1) {
    LOG_INFO("guest vm%u: %.*s", vm_id, static_cast<int>(line_len_), line_);
    line_len_ = 0;
    if (c == '\n') return;
  }
  line_[line_len_++] = (c >= 0x20 && c < 0x7f) ? c : '.';
}

}  // namespace lantern::guest
