// String port I/O (INS/OUTS, with or without REP): the vendor-neutral loop that moves elements
// between guest memory and the VM's port bus. Portable (host-tested). The backend decodes the
// exit (VMX: exit qualification and VM-exit instruction information, SDM Vol. 3C 28.2.1 and
// 28.2.5) into a StringIoOp and gives guest memory as linear addresses through a seam.
//
// Semantics (SDM Vol. 2B "INS/INSB/INSW/INSD", "OUTS/OUTSB/OUTSW/OUTSD", "REP/REPE/REPZ/..."):
// - INS reads the port and stores at ES:(E/R)DI; OUTS loads DS:(E/R)SI (or the overriding
//   segment) and writes the port.
// - After each element the index register moves by the element size: up with RFLAGS.DF = 0,
//   down with DF = 1.
// - The address size (16, 32 or 64 bits) picks SI/ESI/RSI, DI/EDI/RDI and CX/ECX/RCX: a 16-bit
//   update keeps the register's upper bits; a 32-bit update zero-extends (SDM Vol. 1 3.4.1.1).
// - REP repeats while the count register is not 0 and decrements it after each element; a
//   count of 0 moves nothing. The CPU may stop between iterations and resume the instruction
//   later (Vol. 2B REP: "interrupted"): run_string_io() moves at most `max_elements` and then
//   reports the instruction incomplete, so the caller re-enters the guest at the same RIP.
#pragma once

#include <cstddef>
#include <cstdint>

#include "guest/io_bus.h"
#include "kernel/lib/result.h"

namespace lantern::guest {

struct StringIoOp {
  bool in = false;            // INS (port -> memory); false: OUTS (memory -> port)
  uint8_t width = 1;          // bytes per element: 1, 2 or 4
  bool rep = false;           // REP prefix: repeat (E/R)CX times
  uint8_t address_bits = 32;  // 16, 32 or 64
  uint64_t segment_base = 0;  // ES (INS) or the source segment (OUTS); 0 for ES/DS in 64-bit mode
  uint16_t port = 0;
};

// The registers a string I/O instruction reads and updates.
struct StringIoRegisters {
  uint64_t rsi = 0;
  uint64_t rdi = 0;
  uint64_t rcx = 0;
  bool direction_down = false;  // RFLAGS.DF (bit 10)
};

// Guest memory by linear address (the backend walks the guest's paging and nested paging).
// Either call fails with no partial effect on an unmapped or non-RAM address.
class GuestLinearMemory {
 public:
  virtual ~GuestLinearMemory() = default;
  virtual Result<void> read(uint64_t linear, uint8_t* out, size_t n) = 0;
  virtual Result<void> write(uint64_t linear, const uint8_t* in, size_t n) = 0;
};

struct StringIoProgress {
  bool complete = false;  // the instruction is done: advance RIP past it
  uint64_t elements = 0;  // elements moved by this call
};

// Moves up to `max_elements` (at least 1) elements. On a memory error the registers describe the
// elements moved so far and the error is returned (the caller stops the vCPU with it); for INS
// the port was already read for the failing element, as on hardware where the store faults.
// kInvalidArgument for a width other than 1, 2, 4 or an address size other than 16, 32, 64.
Result<StringIoProgress> run_string_io(const StringIoOp& op, StringIoRegisters& regs,
                                       GuestLinearMemory& memory, PortBus& ports, uint64_t max_elements);

}  // namespace lantern::guest
