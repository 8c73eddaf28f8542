// A guest's MOV to CR4 on an SVM vCPU. The write is intercepted (INTERCEPT_CR_WRITES bit 4, APM
// Vol. 2 15.9) because VMRUN would refuse a save area whose CR4 has a reserved bit set (VMEXIT_
// INVALID, APM 15.5.1) where the guest expects #GP, and because a guest must not turn on what its
// CPUID hides (CR4.OSXSAVE without XSAVE, CR4.LA57). Without decode assists (QEMU TCG, Bochs
// ryzen) the exit carries no operand (APM 15.33), so the backend fetches the instruction and
// decodes it here. Portable: host-tested in tests/host/svm_cr4_write_test.cpp.
#pragma once

#include <cstdint>
#include <span>

#include "kernel/lib/result.h"
#include "guest/mmio_decode.h"

namespace lantern::svm {

// CR4 bits (SDM Vol. 3A 2.5, APM Vol. 2 3.1.3).
namespace cr4 {
inline constexpr uint64_t kVme = 1u << 0;
inline constexpr uint64_t kPvi = 1u << 1;
inline constexpr uint64_t kTsd = 1u << 2;
inline constexpr uint64_t kDe = 1u << 3;
inline constexpr uint64_t kPse = 1u << 4;
inline constexpr uint64_t kPae = 1u << 5;
inline constexpr uint64_t kMce = 1u << 6;
inline constexpr uint64_t kPge = 1u << 7;
inline constexpr uint64_t kPce = 1u << 8;
inline constexpr uint64_t kOsfxsr = 1u << 9;
inline constexpr uint64_t kOsxmmexcpt = 1u << 10;
inline constexpr uint64_t kUmip = 1u << 11;
inline constexpr uint64_t kLa57 = 1u << 12;
inline constexpr uint64_t kFsgsbase = 1u << 16;
inline constexpr uint64_t kPcide = 1u << 17;
inline constexpr uint64_t kOsxsave = 1u << 18;
inline constexpr uint64_t kSmep = 1u << 20;
inline constexpr uint64_t kSmap = 1u << 21;
inline constexpr uint64_t kPke = 1u << 22;
inline constexpr uint64_t kCet = 1u << 23;
inline constexpr uint64_t kPks = 1u << 24;
}  // namespace cr4

// The CPUID words that decide which CR4 bits exist (SDM Vol. 2A CPUID; APM Vol. 3 Appendix E),
// as the *guest* sees them (after the vCPU's CPUID policy).
struct Cr4CpuidView {
  uint32_t leaf1_ecx = 0;
  uint32_t leaf1_edx = 0;
  uint32_t leaf7_ebx = 0;  // CPUID.(EAX=07H,ECX=0)
  uint32_t leaf7_ecx = 0;
};

// The CR4 bits a guest may set: TSD and PCE always, the rest where the feature behind it shows in
// the guest's CPUID. Everything else (VMXE, SMXE, LAM, reserved bits) is #GP.
uint64_t cr4_allowed_bits(const Cr4CpuidView& cpuid);

struct Cr4Write {
  bool general_protection = false;  // #GP(0): the value stays as it was
  const char* why = nullptr;        // with general_protection: which rule
  bool flush_tlb = false;           // a paging-related bit changed (SDM Vol. 3A 4.10.4.1)
};

// The rules of MOV to CR4 (SDM Vol. 2B "MOV—Move to/from Control Registers", #GP(0); SDM Vol. 3A
// 4.10.1 for PCIDE; 17.2.3 / 18.x for CET): a bit outside `allowed`; clearing PAE while EFER.LMA
// is set; setting PCIDE outside long mode or while CR3[11:0] is not 0; setting CET while CR0.WP
// is clear.
Cr4Write evaluate_cr4_write(uint64_t old_cr4, uint64_t new_cr4, uint64_t allowed, uint64_t cr0, uint64_t cr3,
                            bool long_mode_active);

// A MOV to a control register: 0F 22 /r (SDM Vol. 2B MOV CR), ModRM.mod ignored (always a
// register operand), the register ModRM.rm + REX.B, the control register ModRM.reg + REX.R.
struct MovToCr {
  uint8_t cr = 0;
  uint8_t gpr = 0;     // hardware order (0 = RAX ... 15 = R15)
  uint8_t length = 0;  // bytes, prefixes included
};

// Accepts legacy prefixes (66, 67, F2, F3, segment overrides) and, in 64-bit code, one REX
// directly before the opcode. Anything else is kUnsupported.
Result<MovToCr> decode_mov_to_cr(std::span<const uint8_t> bytes, guest::CodeSize code_size);

}  // namespace lantern::svm
