// INS/OUTS exits on a VM with a port bus: decode the exit into a guest::StringIoOp, give the
// portable loop (guest/string_io.h) guest memory through the guest's paging and the EPT, and
// write the registers back.
#include "guest/string_io.h"
#include "vmx/hw/vcpu.h"
#include "vmx/hw/vmx_operation.h"
#include "vmx/vmx_controls.h"

namespace lantern::vmx {
namespace {

using FN = VmcsFieldNatural;
using F32 = VmcsField32;

// Elements moved per exit: a long REP returns to the guest at the same RIP after this many, so
// pending events are delivered between iterations as on hardware (SDM Vol. 2B REP).
constexpr uint64_t kStringIoElementsPerExit = 1024;

// VM-exit instruction-information field for INS/OUTS (SDM Vol. 3C 28.2.5, Table 28-8):
// bits 9:7 address size (0 = 16, 1 = 32, 2 = 64 bit), bits 17:15 segment register (OUTS only;
// INS always stores through ES).
constexpr unsigned kInfoAddressSizeShift = 7;
constexpr uint32_t kInfoAddressSizeMask = 0x7;
constexpr unsigned kInfoSegmentShift = 15;
constexpr uint32_t kInfoSegmentMask = 0x7;
enum SegmentRegister : uint32_t { kEs = 0, kCs = 1, kSs = 2, kDs = 3, kFs = 4, kGs = 5 };

constexpr uint64_t kRflagsDirection = 1u << 10;  // RFLAGS.DF (SDM Vol. 1 3.4.3.2)

template <typename Hw>
Result<uint64_t> segment_base(Hw& hw, uint32_t segment) {
  switch (segment) {
    case kEs: return vmcs_read(hw, FN::GUEST_ES_BASE);
    case kCs: return vmcs_read(hw, FN::GUEST_CS_BASE);
    case kSs: return vmcs_read(hw, FN::GUEST_SS_BASE);
    case kDs: return vmcs_read(hw, FN::GUEST_DS_BASE);
    case kFs: return vmcs_read(hw, FN::GUEST_FS_BASE);
    case kGs: return vmcs_read(hw, FN::GUEST_GS_BASE);
    default:
      return make_error(ErrorCode::kMalformed, "INS/OUTS instruction information names no segment", segment);
  }
}

}  // namespace

// Guest memory by linear address for the string I/O loop: the guest's paging, then the EPT.
// Each call checks every byte is mapped before it copies, so a failure leaves memory as it was.
class VcpuLinearMemory final : public guest::GuestLinearMemory {
 public:
  VcpuLinearMemory(VmxVcpu& vcpu, const guest::GuestPagingState& paging) : vcpu_(vcpu), paging_(paging) {}

  Result<void> read(uint64_t linear, uint8_t* out, size_t n) override {
    uint64_t gpa[4];
    TRY(translate(linear, n, gpa));
    for (size_t i = 0; i < n; ++i) TRY(vcpu_.read_guest_physical(gpa[i], out + i, 1));
    return ok();
  }
  Result<void> write(uint64_t linear, const uint8_t* in, size_t n) override {
    uint64_t gpa[4];
    TRY(translate(linear, n, gpa));
    for (size_t i = 0; i < n; ++i) TRY(vcpu_.write_guest_physical(gpa[i], in + i, 1));
    return ok();
  }

 private:
  // An element is at most 4 bytes and may cross a page: each byte is translated.
  Result<void> translate(uint64_t linear, size_t n, uint64_t (&gpa)[4]) {
    if (n > 4) return make_error(ErrorCode::kInvalidArgument, "string I/O element over 4 bytes", n);
    const VmxVcpu::EptGuestTables tables(vcpu_);
    for (size_t i = 0; i < n; ++i) {
      gpa[i] = TRY(guest::guest_linear_to_physical(linear + i, paging_, tables));
      if (!vcpu_.ept_host_address(gpa[i])) {
        return make_error(ErrorCode::kNotFound, "string I/O buffer outside guest RAM", gpa[i]);
      }
    }
    return ok();
  }

  VmxVcpu& vcpu_;
  const guest::GuestPagingState& paging_;
};

Result<VmExit> VmxVcpu::on_string_io(const ExitInfo& exit) {
  // The I/O exit keeps the guest's extended state loaded (ExitTableEntry::keeps_guest_xstate),
  // but the page walks, the element loop and this file are ordinary host code that may use
  // SSE registers: the host's state goes back first.
  ensure_host_xstate();
  const IoQualification io = TRY(IoQualification::decode(exit.qualification));
  if (!capabilities()->ins_outs_info) {
    return stop(exit,
                "string I/O (INS/OUTS): this CPU gives no INS/OUTS instruction information "
                "(IA32_VMX_BASIC[54] is 0)");
  }
  const uint32_t info = TRY(vmcs_read(hw_, F32::VMX_INSTRUCTION_INFO));
  const uint32_t size_code = (info >> kInfoAddressSizeShift) & kInfoAddressSizeMask;
  if (size_code > 2)
    return stop(exit, "string I/O (INS/OUTS): undefined address size in the instruction information");
  const uint32_t segment = io.in ? kEs : (info >> kInfoSegmentShift) & kInfoSegmentMask;
  const GuestLongModeState mode = TRY(long_mode_state());
  // In 64-bit mode ES, CS, SS and DS have base 0; FS and GS keep theirs (SDM Vol. 3A 3.4.4).
  const bool sixty_four_bit = mode.ia32e_mode && mode.cs_long;
  uint64_t base = 0;
  if (!sixty_four_bit || segment == kFs || segment == kGs) {
    auto b = segment_base(hw_, segment);
    if (!b) return stop(exit, "string I/O (INS/OUTS): the instruction information names no segment");
    base = *b;
  }
  const guest::StringIoOp op{.in = io.in,
                             .width = io.size_bytes,
                             .rep = io.rep,
                             .address_bits = static_cast<uint8_t>(16u << size_code),
                             .segment_base = base,
                             .port = io.port};
  const uint64_t rflags = TRY(vmcs_read(hw_, FN::GUEST_RFLAGS));
  guest::StringIoRegisters regs{.rsi = regs_.rsi,
                                .rdi = regs_.rdi,
                                .rcx = regs_.rcx,
                                .direction_down = (rflags & kRflagsDirection) != 0};
  const guest::GuestPagingState paging = TRY(guest_paging_state());
  VcpuLinearMemory memory(*this, paging);
  auto progress = guest::run_string_io(op, regs, memory, vm_core_->ports, kStringIoElementsPerExit);
  regs_.rsi = regs.rsi;
  regs_.rdi = regs.rdi;
  regs_.rcx = regs.rcx;
  if (!progress) {
    return stop(exit,
                progress.error().code == ErrorCode::kNotFound
                    ? "string I/O (INS/OUTS): the buffer is not mapped by the guest or is outside guest RAM"
                    : "string I/O (INS/OUTS): the access could not be emulated");
  }
  if (progress->complete) TRY(advance_rip(exit));
  return VmExit{exits::Nothing{}};
}

}  // namespace lantern::vmx
