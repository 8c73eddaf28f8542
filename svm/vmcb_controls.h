// Bits inside the VMCB control fields (APM Vol. 2 Table B-1).
#pragma once

#include <cstdint>

namespace lantern::svm {

// INTERCEPT_VECTOR_3, offset 00Ch (APM Table B-1).
namespace intercept3 {
inline constexpr uint32_t kIntr = 1u << 0;
inline constexpr uint32_t kNmi = 1u << 1;
inline constexpr uint32_t kSmi = 1u << 2;
inline constexpr uint32_t kInit = 1u << 3;
inline constexpr uint32_t kVintr = 1u << 4;
inline constexpr uint32_t kCpuid = 1u << 18;
inline constexpr uint32_t kIret = 1u << 20;
inline constexpr uint32_t kHlt = 1u << 24;
inline constexpr uint32_t kIoioProt = 1u << 27;
inline constexpr uint32_t kMsrProt = 1u << 28;
inline constexpr uint32_t kShutdown = 1u << 31;
}  // namespace intercept3

// INTERCEPT_VECTOR_4, offset 010h (APM Table B-1). VMRUN must be intercepted or VMRUN fails
// with VMEXIT_INVALID (APM 15.5.1 "Canonicalization and Consistency Checks").
namespace intercept4 {
inline constexpr uint32_t kVmrun = 1u << 0;
inline constexpr uint32_t kVmmcall = 1u << 1;
inline constexpr uint32_t kVmload = 1u << 2;
inline constexpr uint32_t kVmsave = 1u << 3;
inline constexpr uint32_t kStgi = 1u << 4;
inline constexpr uint32_t kClgi = 1u << 5;
inline constexpr uint32_t kSkinit = 1u << 6;
// The SVM instructions a guest may not use: each is intercepted and answered with #UD.
inline constexpr uint32_t kSvmInstructions = kVmrun | kVmload | kVmsave | kStgi | kClgi | kSkinit;
}  // namespace intercept4

// VIRTUAL_INTERRUPT_CONTROL, offset 060h (APM Table B-1, 15.21): V_TPR 7:0 (with
// V_INTR_MASKING the guest's CR8 reads and writes it, bits 3:0, APM 15.21.4), V_IRQ bit 8, V_INTR_PRIO
// 19:16, V_IGN_TPR 20, V_INTR_MASKING 24 (the guest's RFLAGS.IF masks only virtual interrupts,
// the host's masks physical ones), V_INTR_VECTOR 39:32.
namespace vintr {
inline constexpr uint64_t kTprMask = 0xff;
inline constexpr uint64_t kVirq = 1u << 8;
inline constexpr unsigned kPriorityShift = 16;
inline constexpr uint64_t kIgnoreTpr = 1u << 20;
inline constexpr uint64_t kMasking = 1u << 24;
inline constexpr unsigned kVectorShift = 32;
}  // namespace vintr

// TLB_CONTROL (APM 15.16.1). QEMU 7.2 honours only 0 and 1 (emulators.md).
inline constexpr uint8_t kTlbControlDoNothing = 0;
inline constexpr uint8_t kTlbControlFlushAll = 1;
// NP_ENABLE bit 0 (APM 15.25.3).
inline constexpr uint64_t kNpEnable = 1u << 0;
// INTERRUPT_SHADOW bit 0 (APM Table B-1).
inline constexpr uint64_t kInterruptShadow = 1u << 0;

}  // namespace lantern::svm
