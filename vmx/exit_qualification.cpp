#include "vmx/exit_qualification.h"

namespace lantern::vmx {

std::string_view cr_access_type_name(CrAccessType t) {
  switch (t) {
    case CrAccessType::kMovToCr: return "mov_to_cr";
    case CrAccessType::kMovFromCr: return "mov_from_cr";
    case CrAccessType::kClts: return "clts";
    case CrAccessType::kLmsw: return "lmsw";
  }
  return "?";
}

Result<CrAccessQualification> CrAccessQualification::decode(uint64_t q) {
  CrAccessQualification out{static_cast<uint8_t>(q & 0xf),               // bits 3:0: CR number
                            static_cast<CrAccessType>((q >> 4) & 0x3),   // bits 5:4: access type
                            ((q >> 6) & 1) != 0,                         // bit 6: LMSW operand type
                            static_cast<uint8_t>((q >> 8) & 0xf),        // bits 11:8: GPR
                            static_cast<uint16_t>((q >> 16) & 0xffff)};  // bits 31:16: LMSW source data
  if (out.access_type == CrAccessType::kMovToCr || out.access_type == CrAccessType::kMovFromCr) {
    // Only CR0, CR3, CR4 and CR8 can cause MOV-CR exits (SDM Vol. 3C 25.1.3).
    if (out.cr != 0 && out.cr != 3 && out.cr != 4 && out.cr != 8) {
      return make_error(ErrorCode::kMalformed,
                        "CR-access exit qualification: MOV CR names a control register that "
                        "cannot cause a VM exit",
                        out.cr);
    }
  }
  return out;
}

std::string_view interruption_type_name(InterruptionType t) {
  switch (t) {
    case InterruptionType::kExternalInterrupt: return "external_interrupt";
    case InterruptionType::kReserved: return "reserved";
    case InterruptionType::kNmi: return "nmi";
    case InterruptionType::kHardwareException: return "hardware_exception";
    case InterruptionType::kSoftwareInterrupt: return "software_interrupt";
    case InterruptionType::kPrivilegedSoftwareException: return "privileged_software_exception";
    case InterruptionType::kSoftwareException: return "software_exception";
    case InterruptionType::kOtherEvent: return "other_event";
  }
  return "?";
}

Result<uint32_t> encode_entry_interruption_info(InterruptionType type, uint8_t vector,
                                                bool deliver_error_code) {
  // SDM Vol. 3C 26.2.1.3 "VM-Entry Control Fields", event injection checks.
  switch (type) {
    case InterruptionType::kReserved:
      return make_error(ErrorCode::kInvalidArgument, "interruption type 1 is reserved and fails VM entry", 1);
    case InterruptionType::kNmi:
      if (vector != 2) {
        return make_error(ErrorCode::kInvalidArgument, "an injected NMI must use vector 2", vector);
      }
      break;
    case InterruptionType::kHardwareException:
      if (vector > 31) {
        return make_error(ErrorCode::kInvalidArgument,
                          "an injected hardware exception must use a vector 0-31", vector);
      }
      break;
    case InterruptionType::kOtherEvent:
      if (vector != 0) {
        return make_error(ErrorCode::kInvalidArgument,
                          "interruption type 7 (other event) requires vector 0 (pending MTF)", vector);
      }
      break;
    default: break;
  }
  if (deliver_error_code && type != InterruptionType::kHardwareException) {
    return make_error(ErrorCode::kInvalidArgument, "only a hardware exception can deliver an error code",
                      static_cast<uint8_t>(type));
  }
  return static_cast<uint32_t>(vector) | (static_cast<uint32_t>(type) << kIntrInfoTypeShift) |
         (deliver_error_code ? kIntrInfoErrorCodeValid : 0) | kIntrInfoValid;
}

namespace {

constexpr InterruptionType interruption_type_of(guest::PendingEventType t) {
  switch (t) {
    case guest::PendingEventType::kExternalInterrupt: return InterruptionType::kExternalInterrupt;
    case guest::PendingEventType::kNmi: return InterruptionType::kNmi;
    case guest::PendingEventType::kHardwareException: return InterruptionType::kHardwareException;
  }
  return InterruptionType::kReserved;
}

}  // namespace

uint32_t entry_interruption_info(const guest::PendingEvent& event) {
  // 24.8.3: bits 7:0 vector, 10:8 type, 11 deliver error code, 31 valid.
  return static_cast<uint32_t>(event.vector) |
         (static_cast<uint32_t>(interruption_type_of(event.type)) << kIntrInfoTypeShift) |
         (event.has_error_code ? kIntrInfoErrorCodeValid : 0) | kIntrInfoValid;
}

std::optional<Reinjection> reinjection_from_idt_vectoring(uint32_t idt_vectoring_info,
                                                          uint32_t idt_vectoring_error_code,
                                                          uint32_t exit_instruction_length) {
  const InterruptionInfo info = InterruptionInfo::decode_idt_vectoring(idt_vectoring_info);
  if (!info.valid) return std::nullopt;
  // Keep vector (7:0), type (10:8) and error-code-valid (11); bit 12 is undefined in the
  // IDT-vectoring field and bits 30:12 are reserved in the entry field (SDM Vol. 3C 24.8.3).
  const uint32_t entry =
      (idt_vectoring_info & (kIntrInfoVectorMask | kIntrInfoTypeMask | kIntrInfoErrorCodeValid)) |
      kIntrInfoValid;
  uint32_t length = 0;
  switch (info.type) {
    case InterruptionType::kSoftwareInterrupt:
    case InterruptionType::kPrivilegedSoftwareException:
    case InterruptionType::kSoftwareException:
      // These need VM_ENTRY_INSTRUCTION_LEN (SDM Vol. 3C 24.8.3), taken from the exit.
      length = exit_instruction_length;
      break;
    default: break;
  }
  return Reinjection{entry, info.error_code_valid ? idt_vectoring_error_code : 0, length};
}

}  // namespace lantern::vmx
