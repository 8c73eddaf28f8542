// Pure decoders for VM-exit information, each built from the raw integer the VMCS holds.
// Nothing here touches hardware; every decoder is table-tested on the host.
//
// Sources (SDM Vol. 3C, section numbers of the edition whose VMCS chapter is 24 and whose
// VM-exit chapter is 27; newer editions shift both chapters by one):
//   27.2.1  Basic VM-exit information: exit qualifications
//           Table 27-3 control-register accesses, Table 27-5 I/O instructions,
//           Table 27-7 EPT violations
//   24.9.2  Information for VM exits due to vectored events (VM-exit interruption information)
//   24.9.3  Information for VM exits that occur during event delivery (IDT-vectoring info)
//   24.8.3  VM-entry controls for event injection, checked as VM entry does (26.2.1.3)
#pragma once

#include <cstdint>
#include <string_view>

#include "guest/pending_events.h"
#include "kernel/lib/result.h"

namespace lantern::vmx {

// ---- I/O instructions (Table 27-5) ---------------------------------------------------------
struct IoQualification {
  uint8_t size_bytes;      // bits 2:0: 0 = 1 byte, 1 = 2 bytes, 3 = 4 bytes (2 is not used)
  bool in;                 // bit 3: direction, 0 = OUT, 1 = IN
  bool string;             // bit 4: INS/OUTS
  bool rep;                // bit 5: REP prefixed
  bool immediate_operand;  // bit 6: operand encoding, 0 = DX, 1 = immediate
  uint16_t port;           // bits 31:16

  // kMalformed when bits 2:0 hold an encoding the SDM does not define. Inline: every I/O
  // exit decodes one.
  static Result<IoQualification> decode(uint64_t qualification);
};

inline Result<IoQualification> IoQualification::decode(uint64_t q) {
  // Table 27-5, bits 2:0: size of access, 0 = 1-byte, 1 = 2-byte, 3 = 4-byte.
  uint8_t size = 0;
  switch (q & 0x7) {
    case 0: size = 1; break;
    case 1: size = 2; break;
    case 3: size = 4; break;
    default:
      return make_error(ErrorCode::kMalformed,
                        "I/O exit qualification: undefined access size encoding (bits 2:0)", q & 0x7);
  }
  return IoQualification{size,
                         ((q >> 3) & 1) != 0,  // bit 3: direction (1 = IN)
                         ((q >> 4) & 1) != 0,  // bit 4: string instruction
                         ((q >> 5) & 1) != 0,  // bit 5: REP prefixed
                         ((q >> 6) & 1) != 0,  // bit 6: operand encoding (1 = immediate)
                         static_cast<uint16_t>((q >> 16) & 0xffff)};  // bits 31:16: port
}

// ---- Control-register accesses (Table 27-3) ------------------------------------------------
enum class CrAccessType : uint8_t {
  kMovToCr = 0,    // bits 5:4 = 0
  kMovFromCr = 1,  // bits 5:4 = 1
  kClts = 2,       // bits 5:4 = 2
  kLmsw = 3,       // bits 5:4 = 3
};
std::string_view cr_access_type_name(CrAccessType t);

struct CrAccessQualification {
  uint8_t cr;                 // bits 3:0: control register number (0 for CLTS and LMSW)
  CrAccessType access_type;   // bits 5:4
  bool lmsw_memory_operand;   // bit 6: LMSW operand type, 0 = register, 1 = memory
  uint8_t gpr;                // bits 11:8: MOV CR general-purpose register (hardware index)
  uint16_t lmsw_source_data;  // bits 31:16: LMSW source data

  // kMalformed for a CR number other than 0, 3, 4 or 8 on MOV CR.
  static Result<CrAccessQualification> decode(uint64_t qualification);
};

// ---- EPT violations (Table 27-7) -----------------------------------------------------------
struct EptViolationQualification {
  bool read;                       // bit 0: the access was a data read
  bool write;                      // bit 1: the access was a data write
  bool fetch;                      // bit 2: the access was an instruction fetch
  bool readable;                   // bit 3: the GPA was readable (AND of bit 0 of the entries)
  bool writable;                   // bit 4: the GPA was writable
  bool executable;                 // bit 5: executable (for supervisor mode with mode-based
                                   //        execute control)
  bool user_executable;            // bit 6: executable for user mode (mode-based execute only)
  bool guest_linear_valid;         // bit 7: GUEST_LINEAR_ADDRESS is valid
  bool translated_access;          // bit 8 (if bit 7): access to the translation of a linear
                                   //        address, not to a paging-structure entry
  bool user_mode_linear;           // bit 9 (advanced EPT violation info): user-mode address
  bool linear_read_write;          // bit 10 (advanced info): linear address is read/write
  bool linear_execute_disable;     // bit 11 (advanced info): linear address is execute-disable
  bool nmi_unblocking;             // bit 12: NMI unblocking due to IRET
  bool shadow_stack;               // bit 13: shadow-stack access
  bool supervisor_shadow_stack;    // bit 14: supervisor shadow-stack control
  bool guest_paging_verification;  // bit 15: guest-paging verification
  bool asynchronous;               // bit 16: asynchronous to instruction execution

  static constexpr EptViolationQualification decode(uint64_t q) {
    auto bit = [q](unsigned n) { return ((q >> n) & 1) != 0; };
    return EptViolationQualification{bit(0),  bit(1),  bit(2),           bit(3),  bit(4),  bit(5),
                                     bit(6),  bit(7),  bit(7) && bit(8), bit(9),  bit(10), bit(11),
                                     bit(12), bit(13), bit(14),          bit(15), bit(16)};
  }
};

// ---- Interruption information (24.9.2, 24.9.3, 24.8.3) --------------------------------------
// Interruption type, bits 10:8 (same values in all three fields).
enum class InterruptionType : uint8_t {
  kExternalInterrupt = 0,
  kReserved = 1,
  kNmi = 2,
  kHardwareException = 3,
  kSoftwareInterrupt = 4,
  kPrivilegedSoftwareException = 5,  // INT1
  kSoftwareException = 6,            // INT3, INTO
  kOtherEvent = 7,                   // e.g. MTF injection (vector 0)
};
std::string_view interruption_type_name(InterruptionType t);

inline constexpr uint32_t kIntrInfoVectorMask = 0xff;  // bits 7:0
inline constexpr uint32_t kIntrInfoTypeShift = 8;      // bits 10:8
inline constexpr uint32_t kIntrInfoTypeMask = 0x7u << 8;
inline constexpr uint32_t kIntrInfoErrorCodeValid = 1u << 11;  // bit 11
inline constexpr uint32_t kIntrInfoNmiUnblocking = 1u << 12;   // bit 12 (exit info only)
inline constexpr uint32_t kIntrInfoValid = 1u << 31;           // bit 31

struct InterruptionInfo {
  uint8_t vector;         // bits 7:0
  InterruptionType type;  // bits 10:8
  bool error_code_valid;  // bit 11
  bool nmi_unblocking;    // bit 12: NMI unblocking due to IRET (VM-exit field only)
  bool valid;             // bit 31

  // VM_EXIT_INTR_INFO (24.9.2): bit 12 meaningful.
  static constexpr InterruptionInfo decode_exit(uint32_t raw) {
    return InterruptionInfo{static_cast<uint8_t>(raw & kIntrInfoVectorMask),
                            static_cast<InterruptionType>((raw >> kIntrInfoTypeShift) & 7),
                            (raw & kIntrInfoErrorCodeValid) != 0, (raw & kIntrInfoNmiUnblocking) != 0,
                            (raw & kIntrInfoValid) != 0};
  }
  // IDT_VECTORING_INFO_FIELD (24.9.3): bit 12 is undefined, so it is reported as false.
  static constexpr InterruptionInfo decode_idt_vectoring(uint32_t raw) {
    InterruptionInfo info = decode_exit(raw);
    info.nmi_unblocking = false;
    return info;
  }
};

// VM_ENTRY_INTR_INFO_FIELD (24.8.3): vector, type, deliver-error-code (bit 11), valid (bit 31);
// bits 30:12 reserved. Validated as VM entry would (26.2.1.3):
//   - type 1 (reserved) is rejected; type 7 (other event) requires vector 0 (MTF);
//   - NMI requires vector 2; a hardware exception requires vector <= 31;
//   - an error code may only be delivered for a hardware exception.
// Whether the vector *architecturally* pushes an error code is the caller's policy
// (see guest/pending_events.h); VM entry only requires CR0.PE for it.
Result<uint32_t> encode_entry_interruption_info(InterruptionType type, uint8_t vector,
                                                bool deliver_error_code);

// Whether VM_ENTRY_INTR_INFO_FIELD already holds an event for the next entry: its valid bit
// (31) alone decides (24.8.3); the other bits of an invalid field mean nothing.
constexpr bool entry_event_slot_busy(uint32_t entry_interruption_info) {
  return (entry_interruption_info & kIntrInfoValid) != 0;
}

// The VM_ENTRY_INTR_INFO_FIELD value that injects a queued event (24.8.3): vector, its type
// (external interrupt 0, NMI 2, hardware exception 3), deliver-error-code, valid.
uint32_t entry_interruption_info(const guest::PendingEvent& event);

// ---- Re-injection of an event whose delivery was interrupted by a VM exit ---------------------
// SDM Vol. 3C 27.2.4 / 24.9.3: when IDT_VECTORING_INFO_FIELD is valid, the event must be
// injected again on the next VM entry with the same vector, type and error code; software
// interrupts and software/privileged-software exceptions also need the exit instruction
// length in VM_ENTRY_INSTRUCTION_LEN.
struct Reinjection {
  uint32_t entry_interruption_info;  // for VM_ENTRY_INTR_INFO_FIELD
  uint32_t error_code;               // for VM_ENTRY_EXCEPTION_ERROR_CODE (if bit 11 set)
  uint32_t instruction_length;       // for VM_ENTRY_INSTRUCTION_LEN (0 = leave unchanged)
};
// nullopt when the IDT-vectoring information is not valid (bit 31 clear).
std::optional<Reinjection> reinjection_from_idt_vectoring(uint32_t idt_vectoring_info,
                                                          uint32_t idt_vectoring_error_code,
                                                          uint32_t exit_instruction_length);

}  // namespace lantern::vmx
