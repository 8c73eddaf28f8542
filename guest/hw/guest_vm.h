// A guest VM as the kernel runs it, whichever backend runs its vCPUs: the vendor-neutral VM
// (guest/vm.h: id, buses, MSR policy, exit request) plus its RAM under nested paging, the console
// its UART writes to and the demo devices. The built-in guest programs' load address, memory
// size and hypercall numbers live here too: both backends load the same programs. Kernel-only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "guest/demo_devices.h"
#include "guest/output_ring.h"
#include "guest/vm.h"

namespace lantern::guest {

// Guest programs start with this header (tests/guests/guest_header.inc), loaded at GPA 0x1000:
//   offset 0   a jump over the header
//   offset 8   "LNTGUEST"
//   offset 16  the program's name, NUL-padded to 16 bytes
//   offset 32  the guest-physical start and end of its hypercall-site table (svm/hypercall_sites.h)
inline constexpr uint64_t kGuestLoadAddress = 0x1000;
inline constexpr uint64_t kGuestStackTop = 0x1000;  // real mode: SS:SP = 0:0x1000, below the code
inline constexpr uint64_t kGuestMemoryBytes = 2ull << 20;

// Hypercall numbers shared with tests/guests/*.S (RAX at VMCALL/VMMCALL; arguments in RBX, RCX,
// RDX, RSI).
inline constexpr uint64_t kHypercallNull = 0;
inline constexpr uint64_t kHypercallHeartbeat = 1;
inline constexpr uint64_t kHypercallInjectInterrupt = 2;  // queue external interrupt args[0]
inline constexpr uint64_t kHypercallBenchResult = 0x20;   // id, total ticks, iterations, min

// The per-VM console: what the guest wrote to its UART. Lines also go to the log, prefixed
// `guest vmN: `.
class GuestConsole {
 public:
  static constexpr size_t kBufferBytes = OutputRing::kReadableBytes;
  void put(uint32_t vm_id, char c);
  uint64_t total_bytes() const { return output_.total(); }
  // What the guest wrote from stream offset `since` on (OutputRing::read_since); any core.
  OutputRing::Slice read_since(uint64_t since, char* out, size_t capacity) const {
    return output_.read_since(since, out, capacity);
  }

 private:
  OutputRing output_;
  char line_[120] = {};
  size_t line_len_ = 0;
};

struct GuestVm : Vm, ConsoleOutput {
  uint64_t memory_phys = 0;  // guest-physical 0 .. the VM's RAM size maps here
  uint64_t nested_root = 0;  // what its vCPUs load: the EPTP (VMX) or nCR3 (SVM); 0 = none yet
  GuestConsole console;
  DemoUart uart{*this};
  ExitPort exit_port{*this};

  void put_char(char c) override { console.put(vm_id, c); }
};

}  // namespace lantern::guest
