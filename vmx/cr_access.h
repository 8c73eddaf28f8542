// What a guest's MOV to CR0/CR4 does under Lantern's guest/host masks (pure, host-tested).
//
// Bits set in the guest/host mask are the host's: a MOV to CRx that would give one of them a
// value different from the read shadow exits (SDM Vol. 3C 25.1.3). The guest's view of those
// bits is the read shadow; the real register keeps the bits VMX operation fixes
// (IA32_VMX_CR0/CR4_FIXED0/1, SDM Vol. 3D A.7, A.8), with PE and PG left to an unrestricted
// guest (SDM Vol. 3C 26.3.1.1).
#pragma once

#include <cstdint>

namespace lantern::vmx {

// CR0 (SDM Vol. 3A 2.5).
inline constexpr uint64_t kCr0PeBit = 1ull << 0;
inline constexpr uint64_t kCr0NwBit = 1ull << 29;
inline constexpr uint64_t kCr0CdBit = 1ull << 30;
inline constexpr uint64_t kCr0PgBit = 1ull << 31;
// CR4 (SDM Vol. 3A 2.5): VMXE 13, SMXE 14.
inline constexpr uint64_t kCr4VmxeBit = 1ull << 13;
inline constexpr uint64_t kCr4SmxeBit = 1ull << 14;

struct CrWriteContext {
  uint64_t fixed0 = 0;        // bits the real register must have set
  uint64_t fixed1 = 0;        // bits the real register may have set
  uint64_t guest_owned = 0;   // bits exempt from fixed0 (CR0.PE/PG with unrestricted guest)
  uint64_t forbidden = 0;     // bits the guest may not set although the CPU has them (CR4.VMXE)
  uint64_t emulated = 0;      // bits only the read shadow holds; the real register keeps them 0
};

// CR0.CD and CR0.NW are emulated: the guest reads and writes them (its caching choice), the
// real CR0 keeps caching on (as KVM does). Under EPT the nested page tables' memory types decide
// caching. With CD guest-owned, a Linux guest under Bochs 2.7 was seen with GUEST_CR0 0xe0050033
// (CD and NW) after writing CD alone, and its next write clearing CD was the #GP case "NW without
// CD" (SDM Vol. 3A 2.5, Table 12-5).
inline constexpr uint64_t kCr0EmulatedCaching = kCr0CdBit | kCr0NwBit;

struct CrWriteResult {
  bool gp = false;            // inject #GP(0), change nothing
  const char* reason = "";    // why, for the log
  uint64_t guest_value = 0;   // new GUEST_CRx
  uint64_t read_shadow = 0;   // new CRx_READ_SHADOW
};

// MOV to CR0: #GP for bits 63:32, PG without PE, NW without CD (SDM Vol. 2B MOV CR, Vol. 3A 2.5).
CrWriteResult evaluate_cr0_write(const CrWriteContext& context, uint64_t value);
// MOV to CR4: #GP for a bit outside fixed1 (reserved or unsupported here) or a forbidden bit.
CrWriteResult evaluate_cr4_write(const CrWriteContext& context, uint64_t value);

}  // namespace lantern::vmx
