// A vCPU's CPUID answers after its policy (hidden features, vlapic timer leaves, hypervisor
// leaves), computed once per (leaf, subleaf) and kept until an input they depend on changes.
// Portable (host-tested): the vCPU supplies the guest inputs and computes a missing answer.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace lantern::guest {

// The four registers CPUID loads (SDM Vol. 2A CPUID).
struct CpuidRegisters {
  uint32_t eax = 0;
  uint32_t ebx = 0;
  uint32_t ecx = 0;
  uint32_t edx = 0;
};

// Guest state that a policy answer depends on, besides the vCPU's fixed configuration (its ID,
// its VM-execution controls, the host's xstate and TSC rate, the core it is bound to).
struct CpuidGuestInputs {
  bool cr4_osxsave = false;   // CPUID.01H:ECX[27] OSXSAVE mirrors CR4.OSXSAVE (SDM Vol. 2A CPUID)
  bool apic_enabled = false;  // CPUID.01H:EDX[9] APIC follows IA32_APIC_BASE[11] (SDM Vol. 3A 11.4.3)
  uint64_t xcr0 = 0;          // CPUID.(0DH,0/1):EBX: the XSAVE area size for XCR0 (SDM Vol. 2A CPUID leaf 0DH)
};

constexpr uint32_t kCpuidFeatureLeaf = 0x1;
constexpr uint32_t kCpuidXsaveStateLeaf = 0xd;

// Whether answering `leaf` needs the guest's CR4 (a VMREAD): only leaf 01H does.
constexpr bool cpuid_leaf_reads_cr4(uint32_t leaf) { return leaf == kCpuidFeatureLeaf; }

// The inputs `leaf`'s answer depends on, folded into one key. An entry stored under one key is
// stale under any other: this is the invalidation rule (XCR0 for leaf 0DH; CR4.OSXSAVE and the
// APIC enable bit for leaf 01H; nothing for the other leaves).
constexpr uint64_t cpuid_input_key(uint32_t leaf, const CpuidGuestInputs& in) {
  if (leaf == kCpuidFeatureLeaf) return (in.cr4_osxsave ? 1u : 0u) | (in.apic_enabled ? 2u : 0u);
  if (leaf == kCpuidXsaveStateLeaf) return in.xcr0;
  return 0;
}

// Direct-mapped: a (leaf, subleaf) pair has one slot; a colliding pair replaces it.
class CpuidLeafCache {
 public:
  static constexpr size_t kEntries = 32;

  const CpuidRegisters* find(uint32_t leaf, uint32_t subleaf, uint64_t input_key) const {
    const Entry& e = entries_[slot(leaf, subleaf)];
    if (e.input_key != input_key || e.leaf != leaf || e.subleaf != subleaf) return nullptr;
    return &e.registers;
  }
  // `input_key` is cpuid_input_key()'s, never kEmpty.
  void store(uint32_t leaf, uint32_t subleaf, uint64_t input_key, const CpuidRegisters& registers) {
    entries_[slot(leaf, subleaf)] = Entry{leaf, subleaf, input_key, registers};
  }
  // The vCPU's fixed configuration changed (controls, core, TSC rate): every answer is stale.
  void clear() { entries_ = {}; }

 private:
  // The input key of an empty slot. No leaf's key takes it: 01H's are 0-3, others' 0, and 0DH's
  // is XCR0, whose bit 63 is reserved and 0 (SDM Vol. 1 13.3).
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Entry {  // 32 bytes: a slot is found with a shift
    uint32_t leaf = 0;
    uint32_t subleaf = 0;
    uint64_t input_key = kEmpty;
    CpuidRegisters registers;
  };
  static_assert(sizeof(Entry) == 32);
  // Basic leaves 0-1FH with subleaf 0 get distinct slots; the extended (8000_00xxH) and
  // hypervisor (4000_00xxH) ranges are folded in by their top bits.
  static constexpr size_t slot(uint32_t leaf, uint32_t subleaf) {
    return (leaf + (leaf >> 28) * 7 + subleaf * 5) % kEntries;
  }
  std::array<Entry, kEntries> entries_{};
};

}  // namespace lantern::guest
