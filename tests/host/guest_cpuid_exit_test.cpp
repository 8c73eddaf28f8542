#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "guest/cpuid_exit.h"

namespace lantern::guest {
namespace {

constexpr uint32_t kCpuid01EcxOsxsave = 1u << 27;  // SDM Vol. 2A CPUID, Table 3-10
constexpr uint32_t kCpuid01EdxApic = 1u << 9;      // SDM Vol. 2A CPUID, Table 3-11

// A vCPU as the CPUID exit sees it: its registers, its guest inputs, a policy that answers from
// its inputs and records every call, and a RIP the completion moves by the instruction's length.
struct FakeCpuidSeam {
  uint64_t regs_rax = 0, regs_rbx = 0, regs_rcx = 0, regs_rdx = 0;
  bool apic = true;
  bool osxsave = false;
  uint64_t guest_xcr0 = 1;
  int cr4_reads = 0;
  struct PolicyCall {
    uint32_t leaf, subleaf;
  };
  std::vector<PolicyCall> policy_calls;
  int completions = 0;

  uint64_t rax() { return regs_rax; }
  uint64_t rcx() { return regs_rcx; }
  void set_cpuid_result(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    regs_rax = a;
    regs_rbx = b;
    regs_rcx = c;
    regs_rdx = d;
  }
  bool apic_enabled() { return apic; }
  uint64_t xcr0() { return guest_xcr0; }
  Result<bool> cr4_osxsave() {
    ++cr4_reads;
    return osxsave;
  }
  CpuidRegisters policy_cpuid(uint32_t leaf, uint32_t subleaf, const CpuidGuestInputs& in) {
    policy_calls.push_back({leaf, subleaf});
    CpuidRegisters r;
    r.eax = 0x8000'0000u | leaf;  // bit 31 set: a zero-extension shows in RAX's upper half
    r.ebx = subleaf;
    r.ecx = (in.cr4_osxsave ? kCpuid01EcxOsxsave : 0) | static_cast<uint32_t>(in.xcr0 << 1);
    r.edx = in.apic_enabled ? kCpuid01EdxApic : 0;
    return r;
  }
  Result<void> complete_instruction() {
    ++completions;
    return ok();
  }
};

Result<void> cpuid(FakeCpuidSeam& seam, CpuidLeafCache& cache, uint64_t rax, uint64_t rcx) {
  seam.regs_rax = rax;
  seam.regs_rcx = rcx;
  seam.regs_rbx = ~uint64_t{0};
  seam.regs_rdx = ~uint64_t{0};
  return emulate_cpuid(seam, cache);
}

TEST(GuestCpuidExit, LeafAndSubleafAreTheLow32BitsOfRaxAndRcx) {
  FakeCpuidSeam seam;
  CpuidLeafCache cache;
  ASSERT_TRUE(cpuid(seam, cache, 0xdead'beef'0000'0007ull, 0xffff'ffff'0000'0001ull));
  ASSERT_EQ(seam.policy_calls.size(), 1u);
  EXPECT_EQ(seam.policy_calls[0].leaf, 7u);
  EXPECT_EQ(seam.policy_calls[0].subleaf, 1u);
}

TEST(GuestCpuidExit, ResultIsZeroExtendedIntoAllFourRegisters) {
  FakeCpuidSeam seam;
  CpuidLeafCache cache;
  ASSERT_TRUE(cpuid(seam, cache, 0xffff'ffff'0000'0002ull, 5));
  EXPECT_EQ(seam.regs_rax, 0x8000'0002ull);
  EXPECT_EQ(seam.regs_rbx, 5u);
  EXPECT_EQ(seam.regs_rcx, 2u);  // XCR0 1 << 1, upper half cleared
  EXPECT_EQ(seam.regs_rdx, kCpuid01EdxApic);
  EXPECT_EQ(seam.completions, 1);
}

TEST(GuestCpuidExit, RepeatedLeafComesFromTheCache) {
  FakeCpuidSeam seam;
  CpuidLeafCache cache;
  ASSERT_TRUE(cpuid(seam, cache, 4, 0));
  ASSERT_TRUE(cpuid(seam, cache, 4, 0));
  EXPECT_EQ(seam.policy_calls.size(), 1u);
  EXPECT_EQ(seam.regs_rax, 0x8000'0004ull);
  EXPECT_EQ(seam.completions, 2);
  ASSERT_TRUE(cpuid(seam, cache, 4, 1));  // another subleaf is another answer
  EXPECT_EQ(seam.policy_calls.size(), 2u);
}

TEST(GuestCpuidExit, Leaf1FollowsApicEnableAndCr4Osxsave) {
  FakeCpuidSeam seam;
  CpuidLeafCache cache;
  ASSERT_TRUE(cpuid(seam, cache, 1, 0));
  EXPECT_EQ(seam.regs_rdx, kCpuid01EdxApic);
  EXPECT_EQ(seam.regs_rcx & kCpuid01EcxOsxsave, 0u);
  seam.apic = false;
  ASSERT_TRUE(cpuid(seam, cache, 1, 0));
  EXPECT_EQ(seam.regs_rdx, 0u);
  seam.osxsave = true;
  ASSERT_TRUE(cpuid(seam, cache, 1, 0));
  EXPECT_EQ(seam.regs_rcx & kCpuid01EcxOsxsave, kCpuid01EcxOsxsave);
  EXPECT_EQ(seam.policy_calls.size(), 3u);
}

TEST(GuestCpuidExit, OnlyLeaf1ReadsCr4) {
  FakeCpuidSeam seam;
  CpuidLeafCache cache;
  ASSERT_TRUE(cpuid(seam, cache, 0, 0));
  ASSERT_TRUE(cpuid(seam, cache, 0xd, 0));
  EXPECT_EQ(seam.cr4_reads, 0);
  ASSERT_TRUE(cpuid(seam, cache, 1, 0));
  EXPECT_EQ(seam.cr4_reads, 1);
}

TEST(GuestCpuidExit, Leaf0dFollowsXcr0) {
  FakeCpuidSeam seam;
  CpuidLeafCache cache;
  ASSERT_TRUE(cpuid(seam, cache, 0xd, 0));
  seam.guest_xcr0 = 7;
  ASSERT_TRUE(cpuid(seam, cache, 0xd, 0));
  EXPECT_EQ(seam.regs_rcx, 7u << 1);
  EXPECT_EQ(seam.policy_calls.size(), 2u);
}

// RIP, its code size and the interrupt shadow, as a backend keeps them.
struct FakeRipSeam {
  uint64_t guest_rip = 0;
  CodeSize size = CodeSize::k64;
  bool shadow = true;
  int code_size_reads = 0;

  uint64_t rip() { return guest_rip; }
  Result<void> set_rip(uint64_t rip) {
    guest_rip = rip;
    return ok();
  }
  Result<CodeSize> code_size() {
    ++code_size_reads;
    return size;
  }
  Result<void> clear_interrupt_shadow() {
    shadow = false;
    return ok();
  }
};

TEST(GuestCompleteEmulatedInstruction, AdvancesAndEndsTheShadow) {
  FakeRipSeam seam;
  seam.guest_rip = 0x1000;
  ASSERT_TRUE(complete_emulated_instruction(seam, 0x1002));
  EXPECT_EQ(seam.guest_rip, 0x1002u);
  EXPECT_FALSE(seam.shadow);
  EXPECT_EQ(seam.code_size_reads, 0);  // no 64 KiB crossing: the code size is not needed
}

TEST(GuestCompleteEmulatedInstruction, WrapsIpAndEipByCodeSize) {
  FakeRipSeam seam;
  seam.size = CodeSize::k16;
  seam.guest_rip = 0xffff;
  ASSERT_TRUE(complete_emulated_instruction(seam, 0x10001));
  EXPECT_EQ(seam.guest_rip, 0x1u);
  seam.size = CodeSize::k32;
  seam.guest_rip = 0xffff'fffe;
  ASSERT_TRUE(complete_emulated_instruction(seam, 0x1'0000'0000));
  EXPECT_EQ(seam.guest_rip, 0u);
  seam.size = CodeSize::k32;
  seam.guest_rip = 0xfffe;
  ASSERT_TRUE(complete_emulated_instruction(seam, 0x1'0001));  // a 64 KiB crossing inside a 32-bit segment
  EXPECT_EQ(seam.guest_rip, 0x1'0001u);
  seam.size = CodeSize::k64;
  seam.guest_rip = 0xffff'ffff'ffff'ffffull;
  ASSERT_TRUE(complete_emulated_instruction(seam, 0x1));  // 64-bit: the address wraps modulo 2^64 only
  EXPECT_EQ(seam.guest_rip, 0x1u);
}

}  // namespace
}  // namespace lantern::guest
