#include "svm/exit_info.h"

#include "svm/exit_code.h"

namespace lantern::svm {

Result<uint64_t> encode_eventinj(const EventInjection& event) {
  switch (event.type) {
    case EventType::kExternalInterrupt:
    case EventType::kException:
    case EventType::kSoftwareInterrupt: break;
    case EventType::kNmi:
      // APM 15.20: an NMI is injected with vector 2.
      if (event.vector != 2) return make_error(ErrorCode::kInvalidArgument, "an NMI has vector 2", event.vector);
      break;
    default: return make_error(ErrorCode::kInvalidArgument, "reserved EVENTINJ type", static_cast<uint8_t>(event.type));
  }
  if (event.error_code_valid && event.type != EventType::kException) {
    return make_error(ErrorCode::kInvalidArgument, "only an exception carries an error code (APM 15.20)");
  }
  return static_cast<uint64_t>(event.vector) | (static_cast<uint64_t>(event.type) << event_bits::kTypeShift) |
         (event.error_code_valid ? event_bits::kErrorCodeValid : 0) | event_bits::kValid |
         (event.error_code_valid ? static_cast<uint64_t>(event.error_code) << event_bits::kErrorCodeShift : 0);
}

bool decode_exitintinfo(uint64_t value, EventInjection* out) {
  if ((value & event_bits::kValid) == 0) return false;
  out->vector = static_cast<uint8_t>(value & event_bits::kVectorMask);
  out->type = static_cast<EventType>((value & event_bits::kTypeMask) >> event_bits::kTypeShift);
  out->error_code_valid = (value & event_bits::kErrorCodeValid) != 0;
  out->error_code = out->error_code_valid ? static_cast<uint32_t>(value >> event_bits::kErrorCodeShift) : 0;
  return true;
}

IoioInfo IoioInfo::decode(uint64_t q) {
  auto bit = [q](unsigned n) { return ((q >> n) & 1) != 0; };
  IoioInfo i;
  i.in = bit(0);
  i.string = bit(2);
  i.rep = bit(3);
  i.width = bit(4) ? 1 : bit(5) ? 2 : bit(6) ? 4 : 0;
  i.address_width = bit(7) ? 16 : bit(8) ? 32 : bit(9) ? 64 : 0;
  i.segment = static_cast<uint8_t>((q >> 10) & 7);
  i.port = static_cast<uint16_t>(q >> 16);
  return i;
}

NpfInfo NpfInfo::decode(uint64_t q) {
  auto bit = [q](unsigned n) { return ((q >> n) & 1) != 0; };
  return NpfInfo{bit(0), bit(1), bit(2), bit(3), bit(4), bit(32), bit(33)};
}

uint8_t fixed_instruction_length(uint64_t exitcode) {
  switch (exitcode) {
    case kVmexitCpuid: return 2;    // 0F A2
    case kVmexitMsr: return 2;      // RDMSR 0F 32, WRMSR 0F 30
    case kVmexitHlt: return 1;      // F4
    case kVmexitVmmcall: return 3;  // 0F 01 D9
    default: return 0;
  }
}

Result<uint64_t> next_rip(uint64_t exitcode, uint64_t rip, uint64_t exitinfo2, uint64_t nrip, bool next_rip_save) {
  if (next_rip_save) return nrip;
  if (exitcode == kVmexitIoio) return exitinfo2;  // APM 15.10.2: EXITINFO2 = next RIP
  const uint8_t length = fixed_instruction_length(exitcode);
  if (length == 0) {
    return make_error(ErrorCode::kUnsupported, "no NRIP and no known instruction length for this exit", exitcode);
  }
  return rip + length;
}

}  // namespace lantern::svm
