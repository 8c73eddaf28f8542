// Pure encoders and decoders of the VMCB's event and exit-information fields (host-tested from
// tables of raw values):
//   EVENTINJ / EXITINTINFO   APM Vol. 2 15.20 "Event Injection" (Figure 15-7) and 15.7.2
//                            "Intercepts During IDT Interrupt Delivery": the same layout
//                            bits 7:0 VECTOR, 10:8 TYPE, 11 EV (error code valid), 31 V (valid),
//                            63:32 ERRORCODE. TYPE: 0 INTR, 2 NMI, 3 exception, 4 software INTn.
//   IOIO EXITINFO1           APM 15.10.2 "IN and OUT Behavior" (Figure 15-2): bit 0 TYPE (1 = IN),
//                            2 STR, 3 REP, 4/5/6 SZ8/SZ16/SZ32, 7/8/9 A16/A32/A64, 12:10 SEG,
//                            31:16 PORT; EXITINFO2 holds the next RIP.
//   NPF EXITINFO1            APM 15.25.6 "Nested versus Guest Page Faults, Fault Ordering": a #PF
//                            error code (bit 0 P, 1 RW, 2 US, 3 RSV, 4 ID) plus bit 32 (fault on
//                            the final guest-physical address) and bit 33 (fault on a guest
//                            page-table access); EXITINFO2 holds the faulting GPA.
//   next_rip()               where the guest resumes after an intercepted instruction: NRIP when
//                            the CPU saves it (CPUID 8000_000AH:EDX[3], APM 15.7.1), otherwise the
//                            known instruction lengths (CPUID 0F A2, RDMSR 0F 32, WRMSR 0F 30: 2
//                            bytes; HLT F4: 1; VMMCALL 0F 01 D9: 3) or, for IOIO, EXITINFO2.
#pragma once

#include <cstdint>

#include "kernel/lib/result.h"

namespace lantern::svm {

enum class EventType : uint8_t {
  kExternalInterrupt = 0,
  kNmi = 2,
  kException = 3,
  kSoftwareInterrupt = 4,
};

struct EventInjection {
  uint8_t vector = 0;
  EventType type = EventType::kExternalInterrupt;
  bool error_code_valid = false;
  uint32_t error_code = 0;
};

namespace event_bits {
inline constexpr uint64_t kVectorMask = 0xff;
inline constexpr unsigned kTypeShift = 8;
inline constexpr uint64_t kTypeMask = uint64_t{7} << 8;
inline constexpr uint64_t kErrorCodeValid = 1u << 11;
inline constexpr uint64_t kValid = 1u << 31;
inline constexpr unsigned kErrorCodeShift = 32;
}  // namespace event_bits

// The EVENTINJ value for `event`. kInvalidArgument for types 1, 5-7 (reserved), an NMI whose vector
// is not 2, or an error code on anything but an exception (APM 15.20).
Result<uint64_t> encode_eventinj(const EventInjection& event);
// EXITINTINFO (or EVENTINJ) decoded; false when V is clear (nothing was being delivered).
bool decode_exitintinfo(uint64_t value, EventInjection* out);

struct IoioInfo {
  bool in = false;  // TYPE: 1 = IN, 0 = OUT
  bool string = false;
  bool rep = false;
  uint8_t width = 0;          // bytes: 1, 2 or 4 (0 if no size bit is set)
  uint8_t address_width = 0;  // bits: 16, 32, 64 (string instructions)
  uint8_t segment = 0;        // SEG, 0 = ES ... 5 = GS
  uint16_t port = 0;
  static IoioInfo decode(uint64_t exitinfo1);
};

struct NpfInfo {
  bool present = false;         // bit 0: the nested entry was present (a protection fault)
  bool write = false;           // bit 1
  bool user = false;            // bit 2 (always set: nested walks are user accesses)
  bool reserved_bit = false;    // bit 3: a reserved bit was set in a nested entry
  bool fetch = false;           // bit 4: instruction fetch
  bool final_address = false;   // bit 32: the fault was on the guest's final physical address
  bool guest_page_table = false;  // bit 33: the fault was on a guest page-table access
  static NpfInfo decode(uint64_t exitinfo1);
};

// Length of the intercepted instruction when NRIP is absent, or 0 for an exit whose length is
// not fixed (Appendix C codes other than CPUID, HLT, MSR, VMMCALL).
uint8_t fixed_instruction_length(uint64_t exitcode);

// The RIP to resume at after emulating the intercepted instruction of `exitcode` at `rip`. With
// next_rip_save the VMCB's NRIP is used; without it IOIO takes EXITINFO2 and CPUID/HLT/MSR/VMMCALL
// their fixed lengths. kUnsupported for any other exit without NRIP. The address wraps at 2^64;
// callers in 16/32-bit code truncate it to the code-segment size.
Result<uint64_t> next_rip(uint64_t exitcode, uint64_t rip, uint64_t exitinfo2, uint64_t nrip, bool next_rip_save);

}  // namespace lantern::svm
